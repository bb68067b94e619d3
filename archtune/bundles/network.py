"""Network bundles: a fitted NeuralClassifier or NeuralRegressor (also pruned, distilled or
fine-tuned) as a directory with safetensors weights and a JSON description.

Layout of a bundle directory::

    archtune.json                    format, version, parameters, preprocessing, target, history
    weights-<sha256 prefix>.safetensors

The weights file is named after its content and written before the JSON that points to it,
each by write-to-temporary, fsync and rename (archtune.bundles.format.write_bundle). A crash at
any moment therefore leaves either the previous bundle or the new one, never a JSON that points
at missing or partial weights. `load` never unpickles anything: weights come from safetensors,
everything else from JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from archtune.bundles.format import (FORMAT, FORMAT_VERSION, META_FILE, check_description, encode_labels, expect,
                                     input_spec_to_json, model_config_to_json, params_to_json, read_network,
                                     write_bundle)
from archtune.errors import BundleError, InvalidParameterError
from archtune.files import weights_bytes


# --------------------------------------------------------------------------- save / load


def save(model: Any, directory: str | os.PathLike, metadata: dict[str, Any] | None = None,
         final: dict[str, Any] | None = None) -> Path:
    """Save a fitted NeuralClassifier or NeuralRegressor as a network bundle directory; return
    its path. (`archtune.save` saves any artefact: archtune.bundles.dispatch.)

    ``metadata`` is stored alongside, e.g. the target column's name (values JSON cannot hold,
    such as NaN, are stored as null). ``final`` (archtune.bundles.search) says which model of the
    directory predicts, when a search saved its ensemble beside this network. An existing
    bundle in ``directory`` is replaced atomically.

    Raises
    ------
    BundleError
        ``model`` is not a fitted network estimator, or ``directory`` is a file.
    """
    from archtune.estimators import ESTIMATORS
    from archtune.files import json_ready

    name = type(model).__name__
    if name not in ESTIMATORS:
        raise BundleError(f"cannot save a {name} as a network bundle: it takes a fitted NeuralClassifier or "
                          "NeuralRegressor (archtune.save takes any archtune model)")
    if not hasattr(model, "module_"):
        raise BundleError(f"cannot save an unfitted {name}: call fit first")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BundleError(f"{directory}: exists and is not a directory")
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "archtune_version": _version(),
        "estimator": name,
        "params": params_to_json(model.get_params()),
        "model_config": model_config_to_json(model.model_config_),
        "input_spec": input_spec_to_json(model.input_spec_),
        "preprocessor": model.preprocessor_.to_state(),
        "n_features_in": int(model.n_features_in_),
        "feature_names_in": (list(map(str, model.feature_names_in_)) if hasattr(model, "feature_names_in_") else None),
        "best_epoch": int(model.best_epoch_),
        "learning_rate": float(getattr(model, "learning_rate_", 0.0) or 0.0),
        "history": json.loads(model.history_.to_json(orient="records")),
        "metadata": json_ready(metadata or {}),
    }
    # Which model of the directory predicts: this network, unless a search saved its ensemble
    # beside it (archtune.bundles.search). Always written, so that an older run's ensemble left in
    # the directory is never taken for this network's.
    meta["final"] = final if final is not None else {"kind": "network"}
    if getattr(model, "lineage_", None):  # where the weights came from (init_from, pretraining)
        meta["lineage"] = [dict(step) for step in model.lineage_]
    if getattr(model, "conformal_", None) is not None:  # intervals or prediction sets
        meta["conformal"] = model.conformal_.to_json()
    target = model.target_encoder_
    if target.kind == "classification":
        meta["target"] = {"classes": encode_labels(target.classes, "classes_")}
        if target.task == "multilabel":  # one sigmoid per label (archtune.data.multilabel)
            meta["target"].update(multilabel=True, from_sets=bool(target.from_sets))
    else:
        meta["target"] = {"mean": target.mean.tolist(), "scale": target.scale.tolist(),
                          "one_d": bool(target.one_d), "n_outputs": int(target.n_outputs)}
        if target.low is not None:  # clamp_outputs: the training target's range
            meta["target"].update(low=target.low.tolist(), high=target.high.tolist())
    return write_bundle(directory, weights_bytes(model.module_), meta)


def load(directory: str | os.PathLike) -> Any:
    """Load a bundle saved by `save`; the model predicts exactly as it did when saved.
    (`archtune.load` reads any artefact: archtune.bundles.dispatch.)

    The ``init_from`` a model was fine-tuned from is not read again: its ``lineage_`` (the
    bundle's "lineage") says where the weights came from.

    Raises `BundleError` (naming the file and the field) for anything that is not a valid
    bundle: nothing is unpickled, weights come from safetensors and everything else from JSON.
    """
    from archtune.estimators import ESTIMATORS
    from archtune.fitting import set_fitted
    from archtune.prediction_sets import calibration_from_json
    from archtune.prepared import FittedData

    directory = Path(directory)
    bundle = read_network(directory)
    meta = bundle.meta
    try:
        model = ESTIMATORS[bundle.estimator](**bundle.params)
        # Validated as fit would (but not the device: a model saved on a GPU loads on a CPU).
        model.model_config()
        model.train_config(1000, 0)
    except InvalidParameterError as exc:
        raise BundleError(f"{directory / META_FILE}: invalid parameter in the bundle ({exc})") from None
    except TypeError as exc:
        raise BundleError(f"{directory / META_FILE}: invalid bundle description ({type(exc).__name__}: {exc})") from None
    learning_rate = meta.get("learning_rate")  # the rate used (what learning_rate="auto" found)
    lineage = meta.get("lineage")
    attributes = {
        **FittedData(bundle.preprocessor, bundle.target, bundle.inputs).attributes(),
        "module_": bundle.module,
        "input_spec_": bundle.input_spec,
        "model_config_": bundle.model_config,
        "best_epoch_": expect(meta.get("best_epoch"), int, "best_epoch"),
        "learning_rate_": float(expect(learning_rate, (int, float), "learning_rate")) if learning_rate else None,
        "history_": pd.DataFrame(expect(meta.get("history"), list, "history")),
        "bundle_metadata_": meta.get("metadata") or {},
        "lineage_": [dict(expect(step, dict, "lineage[]")) for step in expect(lineage, list, "lineage")]
                    if lineage is not None else None,
        "conformal_": None if meta.get("conformal") is None
                      else calibration_from_json(meta["conformal"], str(directory / META_FILE)),
    }
    check_description(directory, meta)  # last: a field of the wrong type is named first
    return set_fitted(model, attributes)


def _version() -> str:
    from archtune import __version__

    return __version__
