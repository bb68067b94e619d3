"""Ensembles of a search's networks and baselines: greedy selection (`selection`), the
ensemble model (`model`), LightGBM members that save without pickle (`gbm`) and the search's
choice (`build`). `save_ensemble` and `load_ensemble` are the ensemble bundle's writer and
reader (archtune.bundles.ensemble), imported when first used (PEP 562): that module imports
this package's modules, so importing it here would make a cycle."""

from typing import Any

from archtune.ensemble.model import Ensemble, EnsembleClassifier, EnsembleRegressor, Member, make_ensemble
from archtune.ensemble.selection import select_weights

__all__ = ["Ensemble", "EnsembleClassifier", "EnsembleRegressor", "Member", "load_ensemble", "make_ensemble",
           "save_ensemble", "select_weights"]


def __getattr__(name: str) -> Any:
    if name in ("load_ensemble", "save_ensemble"):
        from archtune.bundles import ensemble as bundle

        value = getattr(bundle, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archtune.ensemble' has no attribute {name!r}")
