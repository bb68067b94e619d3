"""Ensemble bundles: a directory that loads without unpickling anything.

Layout::

    archtune.json                      format "archtune-ensemble", task, classes, members, weights
    member-<i>/                        a network member's own model bundle (archtune.bundles.network)
    lightgbm-<sha256 prefix>.txt       a LightGBM member's trees, in LightGBM's text model format
                                       (one file per output of a multi-output regression)
    catboost-<sha256 prefix>.cbm       a CatBoost member, in CatBoost's binary model format
    sklearn-<sha256 prefix>.skops      a scikit-learn baseline's pipeline, in skops' format
                                       (`archtune.bundles.sklearn_member`)

Members are written first and the JSON that names them last (each file atomically), so a
crash leaves the previous bundle, the new one, or (a save killed between two network members
over an earlier bundle) a member that the JSON's checksum refuses by name. Every member file's
SHA-256 (a network member's description's) is in the JSON and checked on load: a changed or
truncated file is refused with its name. `archtune.save` of a search writes its ensemble in a
fresh folder, so that its previous one is never touched. The JSON is
strict: a non-finite number (a NaN score, NaN in the metadata) is written as null.
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
from archtune.ensemble.model import Ensemble, Member, make_ensemble
from archtune.bundles.format import decode_labels, encode_labels
from archtune.bundles.sklearn_member import baseline_from_bytes, baseline_to_bytes
from archtune.errors import BundleError
from archtune.files import atomic_write_bytes, json_bytes

FORMAT = "archtune-ensemble"
FORMAT_VERSION = 1
META_FILE = "archtune.json"
# Member files that the JSON names, by prefix (an earlier save's that it no longer names are removed).
MEMBER_PREFIXES = ("member-", "lightgbm-", "catboost-", "sklearn-")


def save_ensemble(ensemble: Ensemble, directory: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``ensemble`` to ``directory`` (created if needed): networks as their own bundles,
    LightGBM as its text model files, CatBoost in its binary model format, scikit-learn
    baselines in skops' format.

    Raises
    ------
    BundleError
        A baseline holds a type or function outside scikit-learn, NumPy and SciPy (it would
        not load), or a member is of a kind bundles do not hold; nothing is written then.
    """
    from archtune.ensemble.build import flatten_bags
    from archtune.bundles.network import save

    directory = Path(directory)
    members, weights = flatten_bags(ensemble.members, ensemble.weights)  # a bag as its networks
    # Every member's bytes first, so that a member that cannot be saved leaves nothing behind.
    files: dict[str, bytes] = {}
    entries = []
    for i, (member, weight) in enumerate(zip(members, weights)):
        entry: dict[str, Any] = {"name": member.name, "kind": member.kind, "weight": float(weight),
                                 "val_score": member.val_score}
        if member.kind == "network":
            entry["bundle"] = f"member-{i}"
        elif member.kind == "lightgbm":
            texts = [text.encode() for text in member.model.model_texts()]
            digests = [hashlib.sha256(text).hexdigest() for text in texts]
            names = [f"lightgbm-{digest[:16]}.txt" for digest in digests]
            if hasattr(member.model, "boosters_"):  # one file per output
                entry["model_files"], entry["sha256s"] = names, digests
            else:  # one booster: the entry bundles have always had
                entry["model_file"], entry["sha256"] = names[0], digests[0]
            entry["encoding"] = member.model.encoding_.to_dict()
            if ensemble.task == "classification":  # the member's own classes (its training rows')
                entry["classes"] = encode_labels(member.model.classes_, f"{member.name}'s classes")
            files.update(zip(names, texts))
        elif member.kind == "catboost":
            data = member.model.model_bytes()
            digest = hashlib.sha256(data).hexdigest()
            entry["model_file"], entry["sha256"] = f"catboost-{digest[:16]}.cbm", digest
            entry["encoding"] = member.model.encoding_.to_dict()
            if ensemble.task == "classification":
                entry["classes"] = encode_labels(member.model.classes_, f"{member.name}'s classes")
            files[entry["model_file"]] = data
        elif member.kind == "baseline":
            try:
                data, kinds = baseline_to_bytes(member.model)
            except BundleError as exc:
                raise BundleError(f"cannot save the ensemble: member {member.name!r}: {exc}") from None
            digest = hashlib.sha256(data).hexdigest()
            entry["model_file"], entry["sha256"], entry["kinds"] = f"sklearn-{digest[:16]}.skops", digest, kinds
            files[entry["model_file"]] = data
        else:
            raise BundleError(f"cannot save the ensemble: member {member.name!r} is of kind {member.kind!r}, which "
                              "bundles do not hold")
        entries.append(entry)
    directory.mkdir(parents=True, exist_ok=True)
    for member, entry in zip(members, entries):
        if member.kind == "network":
            save(member.model, directory / entry["bundle"])
            # The member's description, checksummed: a save killed between members leaves a
            # member that the previous JSON's checksum refuses, never one predicting silently.
            entry["sha256"] = hashlib.sha256((directory / entry["bundle"] / META_FILE).read_bytes()).hexdigest()
    for name, data in files.items():
        atomic_write_bytes(directory / name, data)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "task": ensemble.task,
        "classes": encode_labels(ensemble.classes_, "the ensemble's classes") if ensemble.task == "classification"
        else None,
        "columns": ensemble.columns_, "val_score": ensemble.val_score, "members": entries,
        "metadata": metadata or {},
    }
    if getattr(ensemble, "conformal_", None) is not None:  # intervals or prediction sets
        meta["conformal"] = ensemble.conformal_.to_json()
    atomic_write_bytes(directory / META_FILE, json_bytes(meta, indent=1))  # strict: NaN as null
    _remove_stale(directory, entries)
    ensemble.bundle_metadata_ = metadata or {}
    return directory


def _remove_stale(directory: Path, entries: list[dict[str, Any]]) -> None:
    """Member files of an earlier save that the new JSON no longer names."""
    named = set()
    for entry in entries:
        named.update([entry[key] for key in ("bundle", "model_file") if key in entry] + entry.get("model_files", []))
    for path in directory.iterdir():
        if path.name.startswith(MEMBER_PREFIXES) and path.name not in named:
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
    from archtune.bundles.network import load

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
                bundle = _inside(directory, entry["bundle"])
                if "sha256" in entry:  # (bundles saved before 2026-12 have none)
                    _checked(bundle / META_FILE, entry["sha256"], "network")
                model = load(bundle)
            elif kind == "lightgbm":
                own = decode_labels(entry["classes"], "classes") if task == "classification" else None
                model = _load_lightgbm(directory, entry, task, own)
            elif kind == "catboost":
                own = decode_labels(entry["classes"], "classes") if task == "classification" else None
                model = _load_catboost(directory, entry, own)
            elif kind == "baseline":
                file = _inside(directory, entry["model_file"])
                kinds = entry["kinds"]
                if not isinstance(kinds, dict):
                    raise TypeError(f"member {entry.get('name')!r}: kinds must be an object")
                model = baseline_from_bytes(_checked(file, entry["sha256"], "scikit-learn"), kinds, str(file))
            else:
                raise BundleError(f"{path}: member {entry.get('name')!r} has kind {kind!r}, which bundles never hold")
            members.append(Member(str(entry["name"]), model, kind,
                                  float("nan") if entry.get("val_score") is None else float(entry["val_score"])))
            weights.append(float(entry["weight"]))
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path}: invalid ensemble description ({type(exc).__name__}: {exc})") from None
    ensemble = make_ensemble(task, members, np.asarray(weights), classes, meta.get("val_score"), meta.get("columns"))
    ensemble.bundle_metadata_ = meta.get("metadata") or {}
    if meta.get("conformal") is not None:
        from archtune.prediction_sets import calibration_from_json

        ensemble.conformal_ = calibration_from_json(meta["conformal"], str(path))
    return ensemble


def _inside(directory: Path, name: Any) -> Path:
    if not isinstance(name, str) or Path(name).name != name:
        raise BundleError(f"{directory / META_FILE}: member file {name!r} must be a name inside the bundle")
    return directory / name


def _checked(path: Path, sha256: Any, what: str) -> bytes:
    """The content of a member file whose SHA-256 must be ``sha256``."""
    if not path.is_file():
        raise BundleError(f"{path}: the ensemble's {what} member file is missing")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BundleError(f"{path}: {what} member file is changed or truncated (checksum mismatch); refusing it")
    return data


def _load_lightgbm(directory: Path, entry: dict[str, Any], task: str, classes: np.ndarray | None) -> Any:
    """A LightGBM member: one text file (``model_file``, ``sha256``) or one per output of a
    regression (``model_files``, ``sha256s``)."""
    several = "model_files" in entry
    names = entry["model_files"] if several else [entry["model_file"]]
    digests = entry["sha256s"] if several else [entry.get("sha256")]
    if not isinstance(names, list) or not names or not isinstance(digests, list) or len(digests) != len(names):
        raise BundleError(f"{directory / META_FILE}: member {entry.get('name')!r}: model_files and sha256s must be "
                          "lists of the same length")
    if several and task == "classification":
        raise BundleError(f"{directory / META_FILE}: member {entry.get('name')!r}: a LightGBM classifier has one "
                          "model file")
    paths = [_inside(directory, name) for name in names]
    texts = [_checked(path, digest, "LightGBM").decode("utf-8") for path, digest in zip(paths, digests)]
    cls = LightGBMTableClassifier if task == "classification" else LightGBMTableRegressor
    try:
        return cls.from_text(texts if several else texts[0], TableEncoding.from_dict(entry["encoding"]),
                             classes if task == "classification" else None)
    except Exception as exc:  # LightGBM's parser raises its own error type
        where = ", ".join(map(str, paths))
        raise BundleError(f"{where}: not a valid LightGBM model ({type(exc).__name__}: {exc})") from None


def _load_catboost(directory: Path, entry: dict[str, Any], classes: np.ndarray | None) -> Any:
    """A CatBoost member: one ``.cbm`` file (``model_file``, ``sha256``), read by CatBoost's
    own loader."""
    from archtune.ensemble.catboost_member import CatBoostTableClassifier, CatBoostTableRegressor

    path = _inside(directory, entry["model_file"])
    data = _checked(path, entry["sha256"], "CatBoost")
    cls = CatBoostTableClassifier if classes is not None else CatBoostTableRegressor
    try:
        return cls.from_bytes(data, TableEncoding.from_dict(entry["encoding"]), classes)
    except ImportError:
        raise
    except Exception as exc:  # CatBoost's loader raises its own error type
        raise BundleError(f"{path}: not a valid CatBoost model ({type(exc).__name__}: {exc})") from None


__all__ = ["FORMAT", "is_ensemble_bundle", "load_ensemble", "save_ensemble"]
