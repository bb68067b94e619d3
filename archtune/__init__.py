"""archtune: neural networks as off-the-shelf as gradient boosting.

Public names are imported lazily (PEP 562), so that `import archtune.errors` or the CLI's
argument checking do not pay for importing PyTorch.

The public API is this package's names (`__all__`) and the names in ``__all__`` of the modules
in `PUBLIC_MODULES`; every other module is archtune's own, and its names may change between
versions (tests/test_public_api.py holds README.md to that).
"""

from __future__ import annotations

from archtune.lazy_exports import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "ArchtuneError": "archtune.errors",
    "BundleError": "archtune.errors",
    "DataError": "archtune.errors",
    "InvalidParameterError": "archtune.errors",
    "SaveError": "archtune.errors",
    "TrainingDivergedError": "archtune.errors",
    "AutoNeuralClassifier": "archtune.auto",
    "AutoNeuralRegressor": "archtune.auto",
    "NeuralClassifier": "archtune.estimators",
    "NeuralRegressor": "archtune.estimators",
    "list_datasets": "archtune.data.datasets",
    "load_dataset": "archtune.data.datasets",
    "diagnose": "archtune.doctor.diagnose",
    "distill": "archtune.shrink.distill",
    "Diagnosis": "archtune.doctor.findings",
    "Finding": "archtune.doctor.findings",
    "lr_find": "archtune.doctor.lr_finder",
    "LRFinderResult": "archtune.doctor.lr_finder",
    "load_table": "archtune.data.readers",
    "load": "archtune.bundles",
    "save": "archtune.bundles",
    "export": "archtune.exporting",
    "prune": "archtune.shrink.prune",
    "PruneReport": "archtune.shrink.prune_rounds",
    "plot_calibration": "archtune.plotting",
    "plot_confusion_matrix": "archtune.plotting",
    "plot_learning_curves": "archtune.plotting",
    "plot_lr_finder": "archtune.plotting",
    "plot_optimization_history": "archtune.plotting",
    "plot_param_importances": "archtune.plotting",
    "plot_permutation_importance": "archtune.plotting",
    "plot_residuals": "archtune.plotting",
    "pretrain": "archtune.pretraining.api",
    "Pretrained": "archtune.pretraining.result",
    "fit_population": "archtune.population",
    "SearchSpace": "archtune.tune.space",
}

# The public modules besides this one: what the README teaches, each with its `__all__`.
PUBLIC_MODULES = ("archtune.data", "archtune.space", "archtune.layers", "archtune.report", "archtune.train",
                  "archtune.ensemble", "archtune.errors", "archtune.exporting", "archtune.recipes", "archtune.transfer")

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
