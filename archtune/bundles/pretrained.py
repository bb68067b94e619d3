"""Pretraining bundles: a `Pretrained` network (archtune.pretrain) as an archtune bundle (the
network bundle's format, archtune.bundles.format) whose JSON says ``"estimator": "Pretrained"``.

Layout::

    archtune.json                    format, version, "estimator": "Pretrained", model_config,
                                     input_spec, preprocessor, pretext, history, lineage, ...
    weights-<sha256 prefix>.safetensors

Written and checked by archtune.bundles.format's helpers: weights first, then the JSON that names them,
each atomically; on load the weights' SHA-256 and shapes are checked and nothing is
unpickled, so a tampered or truncated bundle is a `BundleError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from archtune.data.preprocess import Preprocessor
from archtune.bundles.format import (FORMAT, FORMAT_VERSION, META_FILE, expect, input_spec_from_json,
                                     input_spec_to_json, model_config_from_json, model_config_to_json, read_meta,
                                     read_weights, write_bundle)
from archtune.errors import BundleError, InvalidParameterError
from archtune.files import weights_bytes
from archtune.models import build_model
from archtune.pretraining.model import HEAD_TASK
from archtune.pretraining.result import Pretrained

ESTIMATOR = "Pretrained"


def save_pretrained(pretrained: Pretrained, directory: str | os.PathLike) -> Path:
    """Write ``pretrained`` as a bundle directory (an existing bundle there is replaced
    atomically); return its path.

    Raises
    ------
    BundleError
        ``pretrained`` is not a `Pretrained`, or ``directory`` is a file.
    SaveError
        The disk refused the write (the previous bundle, if any, is kept).
    """
    if not isinstance(pretrained, Pretrained):
        raise BundleError(f"save_pretrained takes a Pretrained (from archtune.pretrain); got "
                          f"{type(pretrained).__name__}")
    from archtune import __version__

    names = pretrained.feature_names_in_
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "archtune_version": __version__,
        "estimator": ESTIMATOR,
        "model_config": model_config_to_json(pretrained.model_config_),
        "input_spec": input_spec_to_json(pretrained.input_spec_),
        "preprocessor": pretrained.preprocessor_.to_state(),
        "pretext": dict(pretrained.pretext_),
        "n_features_in": int(pretrained.n_features_in_),
        "feature_names_in": None if names is None else list(map(str, names)),
        "image_shape": None if pretrained.image_shape_ is None else list(pretrained.image_shape_),
        "series_shape": None if pretrained.series_shape_ is None else list(pretrained.series_shape_),
        "n_rows": int(pretrained.n_rows_),
        "best_epoch": int(pretrained.best_epoch_),
        "history": _records(pretrained.history_),
        "lineage": [dict(step) for step in pretrained.lineage_],
    }
    return write_bundle(directory, weights_bytes(pretrained.module_), meta)


def load_pretrained(directory: str | os.PathLike) -> Pretrained:
    """Load a bundle written by `save_pretrained`; the network computes what it computed
    when saved.

    Raises
    ------
    BundleError
        Not a bundle, not a "Pretrained" bundle, a malformed field (named), or weights that
        are missing, truncated, changed or of another architecture.
    """
    directory = Path(directory)
    meta = read_meta(directory)
    if meta.get("estimator") != ESTIMATOR:
        raise BundleError(f"{directory}: a bundle of a {meta.get('estimator')!r}, not of a pretrained network "
                          f"(estimator {ESTIMATOR!r}); load it with archtune.load")
    try:
        model_config = model_config_from_json(meta.get("model_config"))
        spec = input_spec_from_json(meta.get("input_spec"))
        pre = Preprocessor.from_state(expect(meta.get("preprocessor"), dict, "preprocessor"))
        pretext = expect(meta.get("pretext"), dict, "pretext")
        n_outputs = expect(pretext.get("n_outputs"), int, "pretext.n_outputs")
        expect(pretext.get("name"), str, "pretext.name")
        names = meta.get("feature_names_in")
        names = None if names is None else np.asarray(list(map(str, expect(names, list, "feature_names_in"))),
                                                      dtype=object)
        history = pd.DataFrame(expect(meta.get("history"), list, "history"))
        attributes = dict(
            n_features_in_=expect(meta.get("n_features_in"), int, "n_features_in"),
            feature_names_in_=names,
            image_shape_=_shape(meta, "image_shape"), series_shape_=_shape(meta, "series_shape"),
            n_rows_=expect(meta.get("n_rows"), int, "n_rows"),
            best_epoch_=expect(meta.get("best_epoch"), int, "best_epoch"),
            lineage_=tuple(dict(expect(step, dict, "lineage[]"))
                           for step in expect(meta.get("lineage"), list, "lineage")))
        module = build_model(model_config, spec, n_outputs, HEAD_TASK)
    except BundleError:
        raise
    except InvalidParameterError as exc:
        raise BundleError(f"{directory / META_FILE}: invalid parameter in the bundle ({exc})") from None
    except (TypeError, KeyError, ValueError) as exc:
        raise BundleError(f"{directory / META_FILE}: invalid bundle description "
                          f"({type(exc).__name__}: {exc})") from None
    module.load_state_dict(read_weights(directory, meta, module))
    return Pretrained(module_=module.eval(), preprocessor_=pre, model_config_=model_config, input_spec_=spec,
                      history_=history, pretext_=pretext, **attributes)


def _records(history: pd.DataFrame) -> list[dict[str, Any]]:
    """The history as JSON records, floats exact (pandas' JSON rounds them to 10 digits;
    json writes the shortest repr that reads back to the same float), NaN as null."""
    def plain(value: Any) -> Any:
        value = value.item() if isinstance(value, np.generic) else value
        return None if isinstance(value, float) and not np.isfinite(value) else value

    return [{str(k): plain(v) for k, v in row.items()} for row in history.to_dict(orient="records")]


def _shape(meta: dict[str, Any], key: str) -> tuple[int, ...] | None:
    value = meta.get(key)
    return None if value is None else tuple(int(d) for d in expect(value, list, key))


__all__ = ["ESTIMATOR", "load_pretrained", "save_pretrained"]
