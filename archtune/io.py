"""Model bundles: a directory with safetensors weights and a JSON description.

Layout of a bundle directory::

    archtune.json                    format, version, parameters, preprocessing, target, history
    weights-<sha256 prefix>.safetensors

The weights file is named after its content and written before the JSON that points to it,
each by write-to-temporary, fsync and rename. A crash at any moment therefore leaves either
the previous bundle or the new one, never a JSON that points at missing or partial weights.
`load` never unpickles anything: weights come from safetensors, everything else from JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from archtune.config import ModelConfig
from archtune.errors import BundleError, InvalidParameterError
from archtune.files import atomic_write_bytes, weights_bytes, write_weights  # noqa: F401  (re-exported)

FORMAT = "archtune-bundle"
FORMAT_VERSION = 1
META_FILE = "archtune.json"


# --------------------------------------------------------------------------- JSON encoding of labels


def encode_labels(values: np.ndarray, what: str) -> dict[str, Any]:
    """Class labels as JSON: their dtype and a list of plain Python values."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return {"dtype": arr.dtype.str, "values": arr.tolist()}
    if arr.dtype.kind == "U":
        return {"dtype": arr.dtype.str, "values": arr.tolist()}
    if arr.dtype.kind == "O":
        items = arr.tolist()
        for v in items:
            if not isinstance(v, (str, bool, int, float)):
                raise BundleError(f"cannot save {what}: label {v!r} of type {type(v).__name__} has no JSON form; "
                                  "use str, int, float or bool labels")
        return {"dtype": "object", "values": items}
    raise BundleError(f"cannot save {what}: labels of dtype {arr.dtype} have no JSON form")


def decode_labels(data: Any, what: str) -> np.ndarray:
    _expect(data, dict, what)
    dtype, values = data.get("dtype"), data.get("values")
    _expect(dtype, str, f"{what}.dtype")
    _expect(values, list, f"{what}.values")
    if dtype == "object":
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    try:
        np_dtype = np.dtype(dtype)
        if np_dtype.kind not in "biufU":
            raise TypeError(dtype)
        return np.asarray(values, dtype=np_dtype)
    except (TypeError, ValueError):
        raise BundleError(f"bundle field {what} has an unsupported dtype {dtype!r}") from None


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BundleError(f"bundle field {what} should be {names}, found {type(value).__name__}: {value!r:.80}")
    return value


def params_to_json(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "layers" and value is not None:
            from archtune.models.layer_list import layer_to_dict

            value = [layer_to_dict(layer) for layer in value]
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict) and key == "class_weight":  # labels of any type, encoded
            value = {"labels": encode_labels(np.array(list(value.keys()), dtype=object), key),
                     "weights": [float(w) for w in value.values()]}
        elif isinstance(value, np.random.RandomState):
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def params_from_json(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    if isinstance(out.get("layers"), list):
        from archtune.models.layer_list import layer_from_dict

        out["layers"] = [layer_from_dict(_expect(d, dict, "params.layers[]")) for d in out["layers"]]
    if isinstance(out.get("hidden_sizes"), list):
        out["hidden_sizes"] = tuple(out["hidden_sizes"])
    cw = out.get("class_weight")
    if isinstance(cw, dict):
        labels = decode_labels(cw.get("labels"), "params.class_weight.labels").tolist()
        out["class_weight"] = dict(zip(labels, _expect(cw.get("weights"), list, "params.class_weight.weights")))
    return out


# --------------------------------------------------------------------------- save / load


def save(model: Any, directory: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Save a fitted archtune estimator as a bundle directory; return its path.

    ``metadata`` (JSON-serialisable) is stored alongside, e.g. the target column's name.
    An existing bundle in ``directory`` is replaced atomically.
    """
    from archtune.estimators import ESTIMATORS

    model = getattr(model, "best_estimator_", model)
    name = type(model).__name__
    if name not in ESTIMATORS:
        raise BundleError(f"cannot save a {name}: archtune.save takes a fitted NeuralClassifier or NeuralRegressor")
    if not hasattr(model, "module_"):
        raise BundleError(f"cannot save an unfitted {name}: call fit first")
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
        "metadata": metadata or {},
    }
    target = model.target_encoder_
    if target.kind == "classification":
        meta["target"] = {"classes": encode_labels(target.classes, "classes_")}
    else:
        meta["target"] = {"mean": target.mean.tolist(), "scale": target.scale.tolist(),
                          "one_d": bool(target.one_d), "n_outputs": int(target.n_outputs)}
        if target.low is not None:  # clamp_outputs: the training target's range
            meta["target"].update(low=target.low.tolist(), high=target.high.tolist())
    return write_bundle(directory, weights_bytes(model.module_), meta)


def write_bundle(directory: str | os.PathLike, weights: bytes, meta: dict[str, Any]) -> Path:
    """Write a bundle directory: the safetensors ``weights`` (named after their SHA-256),
    then ``meta`` (with ``weights_file`` and ``weights_sha256`` added) as the JSON that points
    to them, each atomically; an existing bundle there is replaced. Returns the directory."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BundleError(f"{directory}: exists and is not a directory")
    digest = hashlib.sha256(weights).hexdigest()
    weights_name = f"weights-{digest[:16]}.safetensors"
    meta = {**meta, "weights_file": weights_name, "weights_sha256": digest}
    text = json.dumps(meta, indent=1, allow_nan=False)
    created = not directory.exists()
    weights_path = directory / weights_name
    new_weights = not weights_path.exists()
    try:
        atomic_write_bytes(weights_path, weights)
        atomic_write_bytes(directory / META_FILE, text.encode())
    except BaseException:
        # The previous JSON still points at the previous weights: drop only what this call added.
        if new_weights:
            weights_path.unlink(missing_ok=True)
        if created and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
        raise
    for stale in directory.glob("weights-*.safetensors"):
        if stale.name != weights_name:
            stale.unlink(missing_ok=True)
    # Temporary files of a save that was killed (SIGKILL, power loss) are never renamed into
    # place; the next save of the bundle removes them.
    for stale in [*directory.glob(f".{META_FILE}.*.tmp"), *directory.glob(".weights-*.safetensors.*.tmp")]:
        stale.unlink(missing_ok=True)
    return directory


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """The bundle's JSON description, checked for format and version."""
    directory = Path(directory)
    if not directory.exists():
        raise BundleError(f"{directory}: no such model bundle (directory not found)")
    if not directory.is_dir():
        raise BundleError(f"{directory}: is a file, not an archtune model bundle directory "
                          "(archtune never loads pickles or .pt files)")
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise BundleError(f"{directory}: not an archtune model bundle ({META_FILE} is missing)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{meta_path}: corrupted bundle description ({exc})") from None
    _expect(meta, dict, META_FILE)
    if meta.get("format") != FORMAT:
        raise BundleError(f"{meta_path}: not an archtune bundle (format={meta.get('format')!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"{meta_path}: bundle format version {version!r} is not supported by this archtune "
                          f"(reads version {FORMAT_VERSION}); upgrade archtune or re-save the model")
    return meta


def load(directory: str | os.PathLike) -> Any:
    """Load a bundle saved by `save`; the model predicts exactly as it did when saved.
    (`archtune.load` also reads ensemble bundles: `archtune.ensemble.bundle.load_bundle`.)

    Raises `BundleError` (naming the file and the field) for anything that is not a valid
    bundle: nothing is unpickled, weights come from safetensors and everything else from JSON.
    """
    from archtune.data.inputs import FittedInputs
    from archtune.data.preprocess import Preprocessor
    from archtune.data.target import ClassificationTarget, RegressionTarget
    from archtune.estimators import ESTIMATORS
    from archtune.fitting import FittedData, TaskSpec, set_fitted

    directory = Path(directory)
    meta = read_meta(directory)
    name = _expect(meta.get("estimator"), str, "estimator")
    if name not in ESTIMATORS:
        raise BundleError(f"{directory}: unknown estimator {name!r} in the bundle")
    try:
        params = params_from_json(_expect(meta.get("params"), dict, "params"))
        model = ESTIMATORS[name](**params)
        # Validated as fit would (but not the device: a model saved on a GPU loads on a CPU).
        model.model_config()
        model.train_config(1000, 0)
        model_config = model_config_from_json(meta.get("model_config"))
        spec = input_spec_from_json(meta.get("input_spec"))
        pre = Preprocessor.from_state(_expect(meta.get("preprocessor"), dict, "preprocessor"))
        target_d = _expect(meta.get("target"), dict, "target")
        if model.target_kind == "classification":
            target: Any = ClassificationTarget(decode_labels(target_d.get("classes"), "target.classes"))
        else:
            bounds = [np.asarray(_expect(target_d[key], list, f"target.{key}"), dtype="float64")
                      if key in target_d else None for key in ("low", "high")]
            target = RegressionTarget(
                _expect(target_d.get("n_outputs"), int, "target.n_outputs"), bool(target_d.get("one_d")),
                np.asarray(_expect(target_d.get("mean"), list, "target.mean"), dtype="float64"),
                np.asarray(_expect(target_d.get("scale"), list, "target.scale"), dtype="float64"), *bounds)
        names = meta.get("feature_names_in")
        inputs = FittedInputs(name, model_config.arch, _expect(meta.get("n_features_in"), int, "n_features_in"),
                              None if names is None else tuple(map(str, _expect(names, list, "feature_names_in"))),
                              model_config.image_shape, model_config.series_shape, tuple(pre.columns_))
    except BundleError:
        raise
    except InvalidParameterError as exc:
        raise BundleError(f"{directory / META_FILE}: invalid parameter in the bundle ({exc})") from None
    except (TypeError, KeyError, ValueError) as exc:
        raise BundleError(f"{directory / META_FILE}: invalid bundle description ({type(exc).__name__}: {exc})") from None

    task = TaskSpec(target.task, target.n_outputs, target.losses[0], target.metric)
    module = task.build_network(model_config, spec, 0)
    module.load_state_dict(read_weights(directory, meta, module))
    learning_rate = meta.get("learning_rate")  # the rate used (what learning_rate="auto" found)
    return set_fitted(model, {
        **FittedData(pre, target, inputs).attributes(),
        "module_": module.eval(),
        "input_spec_": spec,
        "model_config_": model_config,
        "best_epoch_": _expect(meta.get("best_epoch"), int, "best_epoch"),
        "learning_rate_": float(_expect(learning_rate, (int, float), "learning_rate")) if learning_rate else None,
        "history_": pd.DataFrame(_expect(meta.get("history"), list, "history")),
        "bundle_metadata_": meta.get("metadata") or {},
    })


def model_config_to_json(model_config: ModelConfig) -> dict[str, Any]:
    return params_to_json(model_config.to_dict())


def model_config_from_json(data: Any) -> ModelConfig:
    """`model_config_to_json`'s inverse; a malformed field raises BundleError (or the
    TypeError, KeyError, ValueError that `load` reports as one)."""
    mc = dict(_expect(data, dict, "model_config"))
    mc["hidden_sizes"] = tuple(_expect(mc.get("hidden_sizes"), list, "model_config.hidden_sizes"))
    mc["layers"] = params_from_json({"layers": _expect(mc.get("layers", []), list, "model_config.layers")})["layers"]
    return ModelConfig.from_dict(mc)


def input_spec_to_json(spec: Any) -> dict[str, Any]:
    return {"n_numeric": spec.n_numeric, "cardinalities": list(spec.cardinalities),
            "embedding_dims": list(spec.embedding_dims), "text": [list(t) for t in spec.text],
            "images": [list(t) for t in spec.images], "n_continuous": spec.n_continuous,
            "bins": [list(edges) for edges in spec.bins]}


def input_spec_from_json(data: Any) -> Any:
    """`input_spec_to_json`'s inverse: an `InputSpec`."""
    from archtune.models import InputSpec

    spec_d = _expect(data, dict, "input_spec")
    return InputSpec(int(spec_d["n_numeric"]), tuple(spec_d["cardinalities"]), tuple(spec_d["embedding_dims"]),
                     tuple((int(v), int(n)) for v, n in spec_d.get("text", [])),
                     tuple(tuple(int(d) for d in shape) for shape in spec_d.get("images", [])),
                     int(spec_d.get("n_continuous", 0)),
                     tuple(tuple(float(v) for v in edges) for edges in spec_d.get("bins", [])))


def read_weights(directory: Path, meta: dict[str, Any], module: nn.Module) -> dict[str, torch.Tensor]:
    """The bundle's weights for ``module``, checked against the JSON's SHA-256 and the
    module's parameter names and shapes (BundleError naming the file otherwise)."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    weights_name = _expect(meta.get("weights_file"), str, "weights_file")
    if Path(weights_name).name != weights_name:
        raise BundleError(f"{directory}: weights_file {weights_name!r} must be a file name inside the bundle")
    path = directory / weights_name
    if not path.is_file():
        raise BundleError(f"{path}: the bundle's weights file is missing")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("weights_sha256"):
        raise BundleError(f"{path}: weights file is corrupted or truncated (checksum mismatch)")
    try:
        state = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise BundleError(f"{path}: not a valid safetensors file ({exc})") from None
    expected = module.state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        raise BundleError(f"{path}: weights do not match the architecture described in {META_FILE}")
    return state


def _version() -> str:
    from archtune import __version__

    return __version__
