"""The one artefact of a fit or a search: `save` writes the model that predicts, `load` gives it
back, from Python and from every command alike.

What `save` takes:

- a fitted `NeuralClassifier` / `NeuralRegressor` (also pruned, distilled or fine-tuned):
  a network bundle (archtune.io);
- an `EnsembleClassifier` / `EnsembleRegressor`, or a bag (archtune.ensemble.bagging.Bag):
  an ensemble bundle (archtune.ensemble.bundle);
- a `Pretrained` network (archtune.pretrain): a pretraining bundle;
- a fitted `AutoNeuralClassifier` / `AutoNeuralRegressor`: its best network as the directory's
  network bundle and, when another model predicts (an ensemble, a baseline or the bag alone,
  ``final_estimator_``), that model as an ensemble bundle in ``ensemble-<sha256 prefix>/``
  beside it. The network bundle's description names which model predicts (its ``final``
  field, with the ensemble description's SHA-256), and it is written last: a save that fails
  leaves the previous run's pair as it was, and a directory whose pair does not match is
  refused by name.

`load(directory)` returns what predicted before saving: the final model of a search, or the
network or ensemble a bundle holds; ``best_network=True`` returns a search's best network
instead (``archtune predict --best-network``). Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archtune.errors import BundleError, InvalidParameterError
from archtune.files import umask

META_FILE = "archtune.json"
# A run written before the final model was named in its description kept its ensemble here.
LEGACY_ENSEMBLE_DIR = "ensemble"
ENSEMBLE_PREFIX = "ensemble-"


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
    from archtune.ensemble.bundle import save_ensemble
    from archtune.ensemble.model import Ensemble
    from archtune.io import save as save_network

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BundleError(f"{directory}: exists and is not a directory")
    from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor
    from archtune.ensemble.bagging import Bag

    from archtune.pretraining.result import Pretrained

    if isinstance(model, Pretrained):
        from archtune.pretraining.bundle import save_pretrained

        return save_pretrained(model, directory)
    if isinstance(model, Bag):  # its members, as the ensemble that predicts
        model = model.ensemble
    if isinstance(model, Ensemble):
        return save_ensemble(model, directory, metadata=metadata)
    if isinstance(model, (AutoNeuralClassifier, AutoNeuralRegressor)):
        return _save_search(model, directory, metadata)
    # A scikit-learn search over a network (GridSearchCV, RandomizedSearchCV): its refitted best.
    return save_network(getattr(model, "best_estimator_", model), directory, metadata=metadata)


def _save_search(search: Any, directory: Path, metadata: dict[str, Any] | None) -> Path:
    """The best network, the final model beside it (when it is another one), then the network's
    description naming the final model: the one write that switches the directory over."""
    from archtune.ensemble.bundle import save_ensemble
    from archtune.io import save as save_network

    final = getattr(search, "final_estimator_", None)
    network = getattr(search, "best_estimator_", None)
    if final is None or network is None:
        raise BundleError(f"cannot save an unfitted {type(search).__name__}: call fit first")
    if final is network:
        save_network(network, directory, metadata=metadata, final={"kind": "network"})
        _remove_ensembles(directory, keep=None)
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name, then renamed after its description's digest: the
    # directory the previous description names stays untouched until the new one replaces it.
    scratch = Path(tempfile.mkdtemp(prefix=".ensemble-", suffix=".tmp", dir=directory))
    created = None  # the ensemble folder this call added (removed again if the save fails)
    try:
        os.chmod(scratch, 0o777 & ~umask())  # the mode any new folder gets (mkdtemp's is private)
        save_ensemble(final, scratch, metadata=metadata)
        digest = _digest(scratch / META_FILE)
        name = ENSEMBLE_PREFIX + digest[:16]
        target = directory / name
        if target.is_dir():  # the same ensemble saved before
            shutil.rmtree(scratch)
        else:
            os.replace(scratch, target)
            created = target
        save_network(network, directory, metadata=metadata,
                     final={"kind": "ensemble", "directory": name, "sha256": digest})
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    _remove_ensembles(directory, keep=name)
    return directory


def _remove_ensembles(directory: Path, keep: str | None) -> None:
    """Ensemble bundles of earlier saves that the description no longer names, and the scratch
    folders of saves that were killed; any other folder is the user's and stays."""
    from archtune.ensemble.bundle import is_ensemble_bundle

    for path in directory.iterdir():
        if not path.is_dir() or path.name == keep:
            continue
        earlier = (path.name == LEGACY_ENSEMBLE_DIR or path.name.startswith(ENSEMBLE_PREFIX)) and is_ensemble_bundle(path)
        scratch = path.name.startswith(".ensemble-") and path.name.endswith(".tmp")
        if earlier or scratch:
            shutil.rmtree(path, ignore_errors=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def final_ensemble_dir(directory: str | os.PathLike) -> Path | None:
    """The folder of the ensemble that predicts for ``directory`` (a saved search), or None when
    its network predicts (or ``directory`` holds no network bundle).

    Raises
    ------
    BundleError
        The description names an ensemble that is missing or not the one saved with it (a
        save interrupted between the two, or a folder edited by hand).
    """
    directory = Path(directory)
    meta = _read_json(directory / META_FILE)
    if not isinstance(meta, dict) or meta.get("format") != "archtune-bundle":
        return None
    final = meta.get("final")
    if final is None:  # a run saved before the final model was named (2026-12): its ensemble/ predicted
        from archtune.ensemble.bundle import is_ensemble_bundle

        legacy = directory / LEGACY_ENSEMBLE_DIR
        return legacy if is_ensemble_bundle(legacy) else None
    if not isinstance(final, dict) or final.get("kind") not in ("network", "ensemble"):
        raise BundleError(f"{directory / META_FILE}: invalid field final={final!r:.80}")
    if final["kind"] == "network":
        return None
    name = final.get("directory")
    if not isinstance(name, str) or Path(name).name != name or not name.startswith(ENSEMBLE_PREFIX):
        raise BundleError(f"{directory / META_FILE}: invalid field final.directory={name!r:.80}")
    path = directory / name
    if not (path / META_FILE).is_file():
        raise BundleError(f"{directory}: its final model, the ensemble {name}/, is missing; load the best network "
                          "with best_network=True (archtune predict --best-network), or save the search again")
    if _digest(path / META_FILE) != final.get("sha256"):
        raise BundleError(f"{path / META_FILE}: this ensemble is not the one saved with {directory / META_FILE} "
                          "(checksum mismatch: a save interrupted or a file edited); save the search again")
    return path


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
    from archtune.ensemble.bundle import is_ensemble_bundle, load_ensemble
    from archtune.io import load as load_network

    directory = Path(directory)
    found = identify(directory)
    if found.kind == "pretrained":
        from archtune.pretraining.bundle import load_pretrained

        return load_pretrained(directory)
    try:
        check_path(directory, "load")
    except InvalidParameterError as exc:
        raise BundleError(str(exc)) from None
    if is_ensemble_bundle(directory):
        return load_ensemble(directory)
    if not best_network:
        ensemble = final_ensemble_dir(directory)
        if ensemble is not None:
            return load_ensemble(ensemble)
    return load_network(directory)


# --------------------------------------------------------------------------- what a path is


@dataclass(frozen=True)
class PathKind:
    """What archtune finds at a path, for commands that take one.

    kind : str
        "network" (a network bundle: a fit's run, a pruned or distilled network, an ensemble's
        or a bag's member), "search" (a search's run whose ensemble predicts), "ensemble" (an
        ensemble bundle), "pretrained" (a pretraining bundle), "exported" (an ONNX or
        TorchScript file), "stopped search" (a search's folder with a study but no model yet),
        "empty", "foreign" (a folder or file archtune did not write), "missing", "unreadable"
        (an archtune.json that does not parse or is not archtune's: the loaders name the fault).
    what : str
        The same in words, for messages: "a pretraining bundle (archtune pretrain)".
    """

    kind: str
    what: str


# What each command takes, and what it says of the rest: one line naming what the path is and
# which command takes it.
COMMANDS = {
    "predict": ("network", "search", "ensemble"),
    "info": ("network", "search", "ensemble", "pretrained"),
    "export": ("network", "search"),
    "report": ("network", "search"),
    "prune": ("network", "search"),
    "distill": ("network", "search", "ensemble"),
    "load": ("network", "search", "ensemble", "pretrained"),
}
HINTS = {
    "pretrained": "fine-tune it on labelled rows with `archtune fit DATA --target COLUMN --init-from {path}` "
                  "(init_from={path} in Python), or describe it with `archtune info {path}`",
    "ensemble": "predict with it (`archtune predict {path} DATA`) or distil it into one network (`archtune distill "
                "{path} DATA`); commands that take one network take its member-<i> folders or the run folder "
                "that holds it",
    "exported": "run it with onnxruntime or torch.jit.load; archtune's commands take the bundle or run folder "
                "it was exported from",
    "stopped search": "continue it with `archtune tune DATA --target COLUMN --out {path} --resume`, or list its "
                      "trials with `archtune leaderboard {path}`",
    "empty": "give the --out folder of `archtune fit`, `tune`, `distill`, `prune` or `pretrain`",
    "foreign": "give the --out folder of `archtune fit`, `tune`, `distill`, `prune` or `pretrain`",
}


def identify(path: str | os.PathLike) -> PathKind:
    """What archtune wrote at ``path``, read from its description alone (nothing is loaded)."""
    path = Path(path)
    if not path.exists():
        return PathKind("missing", "no such model bundle or run folder (not found)")
    if path.is_file():
        if path.suffix.lower() == ".onnx":
            return PathKind("exported", "an ONNX model file (archtune export)")
        if path.with_name(path.name + ".json").is_file():  # TorchScript: its description beside it
            return PathKind("exported", "a TorchScript model file (archtune export)")
        return PathKind("foreign", "is a file, not an archtune model bundle directory (archtune never loads "
                                   "pickles or .pt files)")
    meta = _read_json(path / META_FILE)
    if meta is None and (path / META_FILE).is_file():  # the loaders say exactly what is wrong with it
        return PathKind("unreadable", f"a folder whose {META_FILE} cannot be read")
    if isinstance(meta, dict) and meta.get("format") == "archtune-ensemble":
        return PathKind("ensemble", "an ensemble bundle")
    if isinstance(meta, dict) and meta.get("format") == "archtune-bundle":
        estimator = meta.get("estimator")
        if estimator == "Pretrained":
            return PathKind("pretrained", "a pretraining bundle (archtune pretrain: a network without a head for "
                                          "a target)")
        final = meta.get("final")
        if isinstance(final, dict) and final.get("kind") == "ensemble":
            return PathKind("search", f"a search's run ({estimator}, with the ensemble that predicts)")
        return PathKind("network", f"a network bundle ({estimator})")
    if meta is not None:  # an archtune.json of another format or shape: the loaders name the fault
        return PathKind("unreadable", f"a folder whose {META_FILE} is not an archtune description")
    if any((path / name).is_file() for name in ("study.db", "study.log")):
        return PathKind("stopped search", "a search's folder with no saved model (the search stopped before "
                                          "saving one)")
    if not any(path.iterdir()):
        return PathKind("empty", "an empty folder")
    return PathKind("foreign", f"a folder archtune did not write (no {META_FILE})")


def check_path(path: str | os.PathLike, command: str) -> PathKind:
    """``path``'s kind when ``command`` takes it.

    Raises
    ------
    InvalidParameterError
        In one line: what ``path`` is, and which command takes it.
    """
    found = identify(path)
    if found.kind in COMMANDS[command] or found.kind == "unreadable":
        return found
    takes = "archtune.load takes a bundle or run folder" if command == "load" else f"`archtune {command}` takes " + {
        "predict": "a network, a search's run or an ensemble",
        "info": "a network, a search's run, an ensemble or a pretraining bundle",
        "export": "one network (a search's run exports its best network with --best-network)",
        "report": "a run folder of `archtune fit`, `tune`, `distill` or `prune`",
        "prune": "one network (a fit's or a search's run, or a network bundle)",
        "distill": "a teacher that predicts: a network, a search's run or an ensemble",
    }[command]
    hint = HINTS.get(found.kind, "").format(path=path)
    raise InvalidParameterError(f"{path}: {found.what}; {takes}" + (f"; to use it: {hint}" if hint else ""))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


__all__ = ["COMMANDS", "PathKind", "check_path", "final_ensemble_dir", "identify", "load", "save"]
