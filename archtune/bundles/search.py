"""Search artefacts: what `archtune.save` writes for a fitted AutoNeuralClassifier /
AutoNeuralRegressor (and `archtune tune` in its --out folder).

Layout::

    archtune.json, weights-*.safetensors   the best network's bundle (archtune.bundles.network);
                                           its "final" field names the model that predicts
    ensemble-<sha256 prefix>/              when another model predicts (an ensemble, a baseline or
                                           the bag alone, ``final_estimator_``): that model as an
                                           ensemble bundle (archtune.bundles.ensemble)

The ensemble is written first, under a temporary name renamed after its description's
SHA-256, and the network bundle's description naming it (``final``: kind, directory, sha256)
last: a save that fails leaves the previous run's pair as it was, and a directory whose pair
does not match is refused by name. A run saved before the final model was named kept its
ensemble in ``ensemble/``. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from archtune.bundles.paths import META_FILE, read_json
from archtune.errors import BundleError
from archtune.files import umask

# A run written before the final model was named in its description kept its ensemble here.
LEGACY_ENSEMBLE_DIR = "ensemble"
ENSEMBLE_PREFIX = "ensemble-"


def save_search(search: Any, directory: Path, metadata: dict[str, Any] | None) -> Path:
    """Save a fitted AutoNeuralClassifier / AutoNeuralRegressor: the best network, the final
    model beside it (when it is another one), then the network's description naming the final
    model: the one write that switches the directory over."""
    from archtune.bundles.ensemble import save_ensemble
    from archtune.bundles.network import save as save_network

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
    from archtune.bundles.ensemble import is_ensemble_bundle

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
    meta = read_json(directory / META_FILE)
    if not isinstance(meta, dict) or meta.get("format") != "archtune-bundle":
        return None
    final = meta.get("final")
    if final is None:  # a run saved before the final model was named (2026-12): its ensemble/ predicted
        from archtune.bundles.ensemble import is_ensemble_bundle

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


def load_search(directory: str | os.PathLike, best_network: bool = False) -> Any:
    """Load a saved search's final model (the ensemble its description names, else its
    network), or with ``best_network=True`` its best network; a network bundle loads as itself.

    Raises
    ------
    BundleError
        As `final_ensemble_dir`, or for an invalid bundle (naming the file and field).
    """
    from archtune.bundles.ensemble import load_ensemble
    from archtune.bundles.network import load as load_network

    if not best_network:
        ensemble = final_ensemble_dir(directory)
        if ensemble is not None:
            return load_ensemble(ensemble)
    return load_network(directory)


__all__ = ["ENSEMBLE_PREFIX", "LEGACY_ENSEMBLE_DIR", "final_ensemble_dir", "load_search", "save_search"]
