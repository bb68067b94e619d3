"""The one save / load of every bundle kind (`archtune.save`, `archtune.load`): `save` writes
the model that predicts, `load` gives it back, from Python and from every command alike. Each
kind's own reader and writer is its module of archtune.bundles; this module only dispatches.

What `save` takes:

- a fitted `NeuralClassifier` / `NeuralRegressor` (also pruned, distilled or fine-tuned):
  a network bundle (archtune.bundles.network);
- an `EnsembleClassifier` / `EnsembleRegressor`, or a bag (archtune.ensemble.bagging.Bag):
  an ensemble bundle (archtune.bundles.ensemble);
- a `Pretrained` network (archtune.pretrain): a pretraining bundle (archtune.bundles.pretrained);
- a fitted `AutoNeuralClassifier` / `AutoNeuralRegressor`: a search artefact
  (archtune.bundles.search), its best network as the directory's network bundle and, when
  another model predicts (an ensemble, a baseline or the bag alone, ``final_estimator_``),
  that model as an ensemble bundle in ``ensemble-<sha256 prefix>/`` beside it. The network
  bundle's description names which model predicts (its ``final`` field, with the ensemble
  description's SHA-256), and it is written last: a save that fails leaves the previous run's
  pair as it was, and a directory whose pair does not match is refused by name.

`load(directory)` returns what predicted before saving: the final model of a search, or the
network or ensemble a bundle holds; ``best_network=True`` returns a search's best network
instead (``archtune predict --best-network``). Nothing is unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from archtune.bundles.paths import check_path, identify
from archtune.errors import BundleError, InvalidParameterError


def save(model: Any, directory: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Save a fitted archtune model (a network, an ensemble, a bag, or a search: see the module
    docstring) in ``directory``; return its path.

    Parameters
    ----------
    model : NeuralClassifier, NeuralRegressor, EnsembleClassifier, EnsembleRegressor, Bag,
        Pretrained, AutoNeuralClassifier or AutoNeuralRegressor (fitted)
    directory : str or path-like
        Created if needed; a bundle already there is replaced.
    metadata : dict, optional
        Stored with the model (for a search, with both its network and its final model);
        values JSON cannot hold (NaN, infinities) are stored as null.

    Raises
    ------
    BundleError
        An unfitted model, or one archtune cannot save (named), or ``directory`` is a file.
    SaveError
        A write failed (the previous bundle is left as it was).
    """
    from archtune.bundles.ensemble import save_ensemble
    from archtune.bundles.network import save as save_network
    from archtune.bundles.search import save_search
    from archtune.ensemble.model import Ensemble

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BundleError(f"{directory}: exists and is not a directory")
    from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor
    from archtune.ensemble.bagging import Bag

    from archtune.pretraining.result import Pretrained

    if isinstance(model, Pretrained):
        from archtune.bundles.pretrained import save_pretrained

        return save_pretrained(model, directory)
    if isinstance(model, Bag):  # its members, as the ensemble that predicts
        model = model.ensemble
    if isinstance(model, Ensemble):
        return save_ensemble(model, directory, metadata=metadata)
    if isinstance(model, (AutoNeuralClassifier, AutoNeuralRegressor)):
        return save_search(model, directory, metadata)
    # A scikit-learn search over a network (GridSearchCV, RandomizedSearchCV): its refitted best.
    return save_network(getattr(model, "best_estimator_", model), directory, metadata=metadata)


def load(directory: str | os.PathLike, best_network: bool = False) -> Any:
    """Load what `save` wrote in ``directory``: it predicts exactly as the model did before
    saving.

    Parameters
    ----------
    directory : str or path-like
        A network bundle, an ensemble bundle, or a saved search (`archtune tune`'s --out).
    best_network : bool
        For a saved search: its best network instead of the final model (the ensemble).

    Returns
    -------
    NeuralClassifier, NeuralRegressor, EnsembleClassifier or EnsembleRegressor
        With ``bundle_metadata_``; a pretraining bundle gives its `archtune.Pretrained`.

    Raises
    ------
    BundleError
        Not a bundle (saying what ``directory`` is and what to do with it), an invalid or
        changed one (naming the file and field), or a saved search whose ensemble is missing
        or does not match its network bundle.
    """
    from archtune.bundles.ensemble import is_ensemble_bundle, load_ensemble
    from archtune.bundles.search import load_search

    directory = Path(directory)
    found = identify(directory)
    if found.kind == "pretrained":
        from archtune.bundles.pretrained import load_pretrained

        return load_pretrained(directory)
    try:
        check_path(directory, "load")
    except InvalidParameterError as exc:
        raise BundleError(str(exc)) from None
    if is_ensemble_bundle(directory):
        return load_ensemble(directory)
    return load_search(directory, best_network)


__all__ = ["load", "save"]
