"""Ensemble bundles: a directory that loads without unpickling anything.

Layout::

    archtune.json                      format "archtune-ensemble", task, classes, members, weights
    member-<i>/                        a network member's own model bundle (archtune.io)
    lightgbm-<sha256 prefix>.txt       a LightGBM member's trees, in LightGBM's text format

Members are written first and the JSON that names them last (each file atomically), so a
crash leaves the previous bundle or the new one. Every member file's SHA-256 is in the JSON
and checked on load: a changed or truncated file is refused with its name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from archtune.ensemble.gbm import LightGBMTableClassifier, LightGBMTableRegressor, TableEncoding
from archtune.ensemble.model import Ensemble, Member
from archtune.errors import BundleError
from archtune.files import atomic_write_bytes

FORMAT = "archtune-ensemble"
FORMAT_VERSION = 1
META_FILE = "archtune.json"


def save_ensemble(ensemble: Ensemble, directory: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``ensemble`` to ``directory`` (created if needed).

    Raises
    ------
    BundleError
        A member is of a kind that cannot be saved without pickle (a scikit-learn baseline);
        ``Ensemble.safe`` says so beforehand.
    """
    from archtune.io import encode_labels, save

    directory = Path(directory)
    unsafe = [m.name for m in ensemble.members if not m.safe]
    if unsafe:
        raise BundleError(f"cannot save the ensemble: member(s) {unsafe} can only be saved with pickle, which "
                          "archtune bundles never use; select an ensemble of networks and LightGBM instead")
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (member, weight) in enumerate(zip(ensemble.members, ensemble.weights)):
        entry: dict[str, Any] = {"name": member.name, "kind": member.kind, "weight": float(weight),
                                 "val_score": _finite(member.val_score)}
        if member.kind == "network":
            entry["bundle"] = f"member-{i}"
            save(member.model, directory / entry["bundle"])
        else:
            text = member.model.model_text().encode()
            digest = hashlib.sha256(text).hexdigest()
            entry["model_file"] = f"lightgbm-{digest[:16]}.txt"
            entry["sha256"] = digest
            entry["encoding"] = member.model.encoding_.to_dict()
            if ensemble.task == "classification":  # the member's own classes (its training rows')
                entry["classes"] = encode_labels(member.model.classes_, f"{member.name}'s classes")
            atomic_write_bytes(directory / entry["model_file"], text)
        entries.append(entry)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "task": ensemble.task,
        "classes": encode_labels(ensemble.classes_, "the ensemble's classes") if ensemble.task == "classification"
        else None,
        "columns": ensemble.columns_, "val_score": _finite(ensemble.val_score), "members": entries,
        "metadata": metadata or {},
    }
    atomic_write_bytes(directory / META_FILE, json.dumps(meta, indent=1, default=str).encode())
    _remove_stale(directory, entries)
    ensemble.bundle_metadata_ = metadata or {}
    return directory


def _finite(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _remove_stale(directory: Path, entries: list[dict[str, Any]]) -> None:
    """Member files of an earlier save that the new JSON no longer names."""
    named = {e.get("bundle") or e.get("model_file") for e in entries}
    for path in directory.iterdir():
        if path.name.startswith(("member-", "lightgbm-")) and path.name not in named:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def is_ensemble_bundle(directory: str | os.PathLike) -> bool:
    path = Path(directory) / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def load_ensemble(directory: str | os.PathLike) -> Ensemble:
    """Load an ensemble saved by `save_ensemble`; it predicts exactly as when saved.

    Raises
    ------
    BundleError
        Naming the file or field: not an ensemble bundle, an unsupported version, a member
        file missing or changed since it was saved (checksum), or an invalid description.
    """
    from archtune.io import decode_labels, load

    directory = Path(directory)
    path = directory / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{directory}: not an archtune ensemble bundle ({META_FILE} is missing)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: corrupted ensemble description ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{path}: not an archtune ensemble bundle")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: ensemble format version {meta.get('format_version')!r} is not supported "
                          f"(this archtune reads version {FORMAT_VERSION})")
    try:
        task = str(meta["task"])
        classes = decode_labels(meta["classes"], "classes") if task == "classification" else None
        members, weights = [], []
        for entry in meta["members"]:
            kind = entry["kind"]
            if kind == "network":
                model = load(_inside(directory, entry["bundle"]))
            elif kind == "lightgbm":
                own = decode_labels(entry["classes"], "classes") if task == "classification" else None
                model = _load_lightgbm(directory, entry, task, own)
            else:
                raise BundleError(f"{path}: member {entry.get('name')!r} has kind {kind!r}, which bundles never hold")
            members.append(Member(str(entry["name"]), model, kind,
                                  float("nan") if entry.get("val_score") is None else float(entry["val_score"])))
            weights.append(float(entry["weight"]))
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path}: invalid ensemble description ({type(exc).__name__}: {exc})") from None
    ensemble = Ensemble(task, members, np.asarray(weights), classes, meta.get("val_score"), meta.get("columns"))
    ensemble.bundle_metadata_ = meta.get("metadata") or {}
    return ensemble


def load_bundle(directory: str | os.PathLike) -> Any:
    """`archtune.load`: a network bundle (`archtune.io.load`) or an ensemble bundle
    (`load_ensemble`), by the format its JSON names.

    Raises
    ------
    BundleError
        Not a bundle, or an invalid one (naming the file and field).
    """
    from archtune.io import load

    return load_ensemble(directory) if is_ensemble_bundle(directory) else load(directory)


def _inside(directory: Path, name: Any) -> Path:
    if not isinstance(name, str) or Path(name).name != name:
        raise BundleError(f"{directory / META_FILE}: member file {name!r} must be a name inside the bundle")
    return directory / name


def _load_lightgbm(directory: Path, entry: dict[str, Any], task: str, classes: np.ndarray | None) -> Any:
    path = _inside(directory, entry["model_file"])
    if not path.is_file():
        raise BundleError(f"{path}: the ensemble's LightGBM member file is missing")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise BundleError(f"{path}: LightGBM member file is changed or truncated (checksum mismatch); refusing it")
    cls = LightGBMTableClassifier if task == "classification" else LightGBMTableRegressor
    try:
        return cls.from_text(data.decode("utf-8"), TableEncoding.from_dict(entry["encoding"]),
                             classes if task == "classification" else None)
    except Exception as exc:  # LightGBM's parser raises its own error type
        raise BundleError(f"{path}: not a valid LightGBM model ({type(exc).__name__}: {exc})") from None


__all__ = ["FORMAT", "is_ensemble_bundle", "load_bundle", "load_ensemble", "save_ensemble"]
