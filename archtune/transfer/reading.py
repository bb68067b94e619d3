"""`read_source`: a `Source` from whatever ``init_from`` names — a fitted estimator, a bundle or
run directory, a pretraining result or bundle, or a `Source` itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from archtune.bundles.format import META_FILE, read_meta, read_network
from archtune.data.inputs import FittedInputs
from archtune.errors import BundleError, InvalidParameterError
from archtune.transfer.source import PRETRAINED, Source

ENSEMBLE_FORMAT = "archtune-ensemble"  # an ensemble bundle's "format" (archtune.bundles.ensemble)


def read_source(init_from: Any, what: str = "init_from") -> Source:
    """The `Source` that ``init_from`` names.

    Parameters
    ----------
    init_from : fitted NeuralClassifier or NeuralRegressor, str or PathLike, Source, or an object with ``to_source()``
        A fitted estimator (or a search, ``best_estimator_``); a bundle directory saved by
        `archtune.save` or by ``archtune fit``/``archtune tune`` (a search run directory is
        its best network's bundle; an ensemble bundle's run directory is used for its best
        network); a pretraining bundle (meta "estimator" "Pretrained", read by
        ``archtune.bundles.pretrained.load_pretrained``); a `Source`; or a pretraining result
        (anything with a ``to_source()`` method).
    what : str
        The parameter's name, for the errors.

    Raises
    ------
    InvalidParameterError
        An unfitted estimator, or a value of another type.
    BundleError
        A path that is not a readable network bundle (naming it).
    """
    if isinstance(init_from, Source):
        return init_from
    if isinstance(init_from, (str, os.PathLike)):
        return _from_path(Path(init_from), what)
    if callable(getattr(init_from, "to_source", None)):
        source = init_from.to_source()
        if not isinstance(source, Source):
            raise InvalidParameterError(f"{what}: {type(init_from).__name__}.to_source() returned a "
                                        f"{type(source).__name__}, not a Source")
        return source
    model = getattr(init_from, "best_estimator_", init_from)
    if getattr(model, "target_kind", None) in ("classification", "regression") and hasattr(model, "get_params"):
        if not hasattr(model, "module_"):
            raise InvalidParameterError(
                f"{what} is an unfitted {type(model).__name__}: fit it first (scikit-learn's clone unfits an "
                f"estimator given as a parameter; pass a bundle path or archtune.transfer.read_source(model) "
                f"where the estimator is cloned)")
        return _from_estimator(model)
    if hasattr(init_from, "get_params") and not hasattr(init_from, "best_estimator_"):
        raise InvalidParameterError(f"{what} is an unfitted {type(init_from).__name__}: fit it first")
    raise InvalidParameterError(
        f"{what} must be a fitted NeuralClassifier or NeuralRegressor, a bundle directory, a Source or a "
        f"pretraining result; got {what}={init_from!r:.80} of type {type(init_from).__name__}")


def _task_of(target: Any) -> tuple[str, tuple | None]:
    classes = getattr(target, "classes", None)
    return target.task, (tuple(classes.tolist()) if classes is not None else None)


def _described(classes: tuple | None, n_outputs: int) -> str:
    return f"{len(classes)} classes" if classes is not None else f"{n_outputs} output(s)"


def _from_estimator(model: Any) -> Source:
    names = getattr(model, "feature_names_in_", None)
    inputs = FittedInputs(type(model).__name__, model.model_config_.arch, int(model.n_features_in_),
                          None if names is None else tuple(map(str, names)),
                          tuple(getattr(model, "image_shape_", None) or ()),
                          tuple(getattr(model, "series_shape_", None) or ()), tuple(model.preprocessor_.columns_))
    task, classes = _task_of(model.target_encoder_)
    origin = f"a fitted {type(model).__name__} ({_described(classes, model.target_encoder_.n_outputs)})"
    return Source(model.module_, model.preprocessor_, model.model_config_, model.input_spec_, inputs, task, classes,
                  origin, tuple(getattr(model, "lineage_", None) or ()))


def _from_path(path: Path, what: str) -> Source:
    if not path.exists():
        raise BundleError(f"{what}: {path}: no such model bundle (directory not found)")
    if path.is_dir() and not (path / META_FILE).is_file():
        raise BundleError(f"{what}: {path}: not an archtune model bundle ({META_FILE} is missing: a run that "
                          "saved no network)")
    meta = read_meta(path) if (path / META_FILE).is_file() and _format(path) != ENSEMBLE_FORMAT else None
    if meta is None and path.is_dir() and _format(path) == ENSEMBLE_FORMAT:
        run = path.parent  # archtune tune saves its ensemble in RUN/ensemble-<hash> beside the best network
        if not (run / META_FILE).is_file() or _format(run) == ENSEMBLE_FORMAT:
            raise BundleError(f"{what}: {path} is an ensemble bundle and its run directory {run} holds no saved "
                              "best network; give the directory of one network's bundle")
        path, meta = run, read_meta(run)
    if meta is None:
        meta = read_meta(path)  # a file, or anything else: read_meta's error names it
    if meta.get("estimator") == PRETRAINED:
        try:
            from archtune.bundles.pretrained import load_pretrained
        except ImportError as exc:
            raise BundleError(f"{what}: {path} is a pretraining bundle, and reading it needs archtune.pretrain, "
                              f"which this installation lacks ({exc})") from None
        return load_pretrained(path).to_source()
    bundle = read_network(path)
    task, classes = _task_of(bundle.target)
    origin = f"bundle {path} ({bundle.estimator}, {_described(classes, bundle.target.n_outputs)})"
    return Source(bundle.module, bundle.preprocessor, bundle.model_config, bundle.input_spec, bundle.inputs, task,
                  classes, origin, tuple(dict(step) for step in bundle.meta.get("lineage") or ()))


def _format(directory: Path) -> Any:
    """The "format" a bundle's JSON names (None when it cannot be read: read_meta says why)."""
    import json

    try:
        return json.loads((directory / META_FILE).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        return None


__all__ = ["Source", "read_source"]
