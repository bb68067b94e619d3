"""The bundles' shared format: the network bundle's JSON fields and weights, read without
building an estimator, and the helpers every bundle kind writes and checks with.

A bundle directory (archtune.bundles.network) holds ``archtune.json`` (format, version,
parameters, preprocessing, target, history) and ``weights-<sha256 prefix>.safetensors``. This
module knows the JSON fields and the weights file: `read_meta` checks format and version,
`read_network` returns the trained network and what it reads (`NetworkBundle`), `write_bundle`
writes weights then description, each atomically; `expect` is the one check of a field, whose
`BundleError` names the field. It imports neither the estimators nor the fitting path, so that
code below them (archtune.transfer, which starts a fit from a bundle) can read bundles;
`archtune.bundles.network.load` builds the estimator from a `NetworkBundle`, and pretraining
bundles (archtune.bundles.pretrained) use the same fields. Nothing is unpickled: weights come
from safetensors, the rest from JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archtune.custom_loss import import_path, is_custom, resolve
from archtune.config import ModelConfig
from archtune.errors import BundleError, InvalidParameterError
from archtune.files import atomic_write_bytes

FORMAT = "archtune-bundle"
FORMAT_VERSION = 1
META_FILE = "archtune.json"
# The description's own SHA-256 (`description_digest`), checked by archtune.bundles.network.load like the
# weights' (bundles saved before it have none and are not checked).
DESCRIPTION_KEY = "description_sha256"
# The estimators a network bundle names, and the kind of target each reads.
TARGET_KINDS = {"NeuralClassifier": "classification", "NeuralRegressor": "regression"}


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
    expect(data, dict, what)
    dtype, values = data.get("dtype"), data.get("values")
    expect(dtype, str, f"{what}.dtype")
    expect(values, list, f"{what}.values")
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


def expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BundleError(f"bundle field {what} should be {names}, found {type(value).__name__}: {value!r:.80}")
    return value


def params_to_json(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "layers" and value is not None:
            from archtune.models.layer_compile import layer_to_dict

            value = [layer_to_dict(layer) for layer in value]
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict) and key == "class_weight":  # labels of any type, encoded
            value = {"labels": encode_labels(np.array(list(value.keys()), dtype=object), key),
                     "weights": [float(w) for w in value.values()]}
        elif key == "init_from" and value is not None:
            # A path stays a path; an object (a fitted estimator, a Source) has no JSON form:
            # the lineage records where the weights came from.
            value = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
        elif key == "loss" and is_custom(value):  # a user's callable: its import path, or refused by name
            value = {"callable": import_path(value)}
        elif isinstance(value, np.random.RandomState):
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def params_from_json(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    if isinstance(out.get("layers"), list):
        from archtune.models.layer_compile import layer_from_dict

        out["layers"] = [layer_from_dict(expect(d, dict, "params.layers[]")) for d in out["layers"]]
    if isinstance(out.get("hidden_sizes"), list):
        out["hidden_sizes"] = tuple(out["hidden_sizes"])
    if isinstance(out.get("loss"), dict):
        out["loss"] = resolve(expect(out["loss"].get("callable"), str, "params.loss.callable"), "params.loss")
    cw = out.get("class_weight")
    if isinstance(cw, dict):
        labels = decode_labels(cw.get("labels"), "params.class_weight.labels").tolist()
        out["class_weight"] = dict(zip(labels, expect(cw.get("weights"), list, "params.class_weight.weights")))
    return out


def write_bundle(directory: str | os.PathLike, weights: bytes, meta: dict[str, Any]) -> Path:
    """Write a bundle directory: the safetensors ``weights`` (named after their SHA-256),
    then ``meta`` (with ``weights_file``, ``weights_sha256`` and its own digest,
    ``description_sha256``, added) as the JSON that points to them, each atomically; an
    existing bundle there is replaced. Returns the directory."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BundleError(f"{directory}: exists and is not a directory")
    digest = hashlib.sha256(weights).hexdigest()
    weights_name = f"weights-{digest[:16]}.safetensors"
    meta = {**meta, "weights_file": weights_name, "weights_sha256": digest}
    meta[DESCRIPTION_KEY] = description_digest(json.loads(json.dumps(meta, allow_nan=False)))
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


def model_config_to_json(model_config: ModelConfig) -> dict[str, Any]:
    return params_to_json(model_config.to_dict())


def model_config_from_json(data: Any) -> ModelConfig:
    """`model_config_to_json`'s inverse; a malformed field raises BundleError (or the
    TypeError, KeyError, ValueError that `load` reports as one)."""
    mc = dict(expect(data, dict, "model_config"))
    mc["hidden_sizes"] = tuple(expect(mc.get("hidden_sizes"), list, "model_config.hidden_sizes"))
    mc["layers"] = params_from_json({"layers": expect(mc.get("layers", []), list, "model_config.layers")})["layers"]
    return ModelConfig.from_dict(mc)


def input_spec_to_json(spec: Any) -> dict[str, Any]:
    return {"n_numeric": spec.n_numeric, "cardinalities": list(spec.cardinalities),
            "embedding_dims": list(spec.embedding_dims), "text": [list(t) for t in spec.text],
            "images": [list(t) for t in spec.images], "n_continuous": spec.n_continuous,
            "bins": [list(edges) for edges in spec.bins]}


def input_spec_from_json(data: Any) -> Any:
    """`input_spec_to_json`'s inverse: an `InputSpec`."""
    from archtune.models import InputSpec

    spec_d = expect(data, dict, "input_spec")
    return InputSpec(int(spec_d["n_numeric"]), tuple(spec_d["cardinalities"]), tuple(spec_d["embedding_dims"]),
                     tuple((int(v), int(n)) for v, n in spec_d.get("text", [])),
                     tuple(tuple(int(d) for d in shape) for shape in spec_d.get("images", [])),
                     int(spec_d.get("n_continuous", 0)),
                     tuple(tuple(float(v) for v in edges) for edges in spec_d.get("bins", [])))


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
    expect(meta, dict, META_FILE)
    if meta.get("format") != FORMAT:
        raise BundleError(f"{meta_path}: not an archtune bundle (format={meta.get('format')!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"{meta_path}: bundle format version {version!r} is not supported by this archtune "
                          f"(reads version {FORMAT_VERSION}); upgrade archtune or re-save the model")
    return meta

@dataclass(frozen=True)
class NetworkBundle:
    """A network bundle's contents: the trained network and everything it reads.

    estimator : str
        "NeuralClassifier" or "NeuralRegressor".
    params : dict
        The estimator's parameters (decoded from JSON, not validated).
    model_config : ModelConfig
    input_spec : InputSpec
    preprocessor : Preprocessor
    target : ClassificationTarget, MultiLabelTarget or RegressionTarget
    inputs : FittedInputs
    module : TabularNetwork
        In evaluation mode, with the saved weights.
    meta : dict
        The whole JSON description.
    """

    estimator: str
    params: dict
    model_config: Any
    input_spec: Any
    preprocessor: Any
    target: Any
    inputs: Any
    module: Any
    meta: dict


def read_network(directory: str | os.PathLike) -> NetworkBundle:
    """Read a network bundle saved by `archtune.bundles.network.save`.

    Raises
    ------
    BundleError
        Not a bundle, or an invalid one (naming the file and the field).
    """
    from archtune.data.inputs import FittedInputs
    from archtune.data.preprocess import Preprocessor
    from archtune.data.multilabel import MultiLabelTarget
    from archtune.data.target import ClassificationTarget, RegressionTarget
    from archtune.models import build_model

    directory = Path(directory)
    meta = read_meta(directory)
    name = expect(meta.get("estimator"), str, "estimator")
    if name not in TARGET_KINDS:
        raise BundleError(f"{directory}: unknown estimator {name!r} in the bundle")
    try:
        params = params_from_json(expect(meta.get("params"), dict, "params"))
        model_config = model_config_from_json(meta.get("model_config"))
        spec = input_spec_from_json(meta.get("input_spec"))
        pre = Preprocessor.from_state(expect(meta.get("preprocessor"), dict, "preprocessor"))
        target_d = expect(meta.get("target"), dict, "target")
        if TARGET_KINDS[name] == "classification":
            target: Any = ClassificationTarget(decode_labels(target_d.get("classes"), "target.classes"))
            if target_d.get("multilabel"):
                target = MultiLabelTarget(target.classes, bool(target_d.get("from_sets")))
        else:
            bounds = [np.asarray(expect(target_d[key], list, f"target.{key}"), dtype="float64")
                      if key in target_d else None for key in ("low", "high")]
            target = RegressionTarget(
                expect(target_d.get("n_outputs"), int, "target.n_outputs"), bool(target_d.get("one_d")),
                np.asarray(expect(target_d.get("mean"), list, "target.mean"), dtype="float64"),
                np.asarray(expect(target_d.get("scale"), list, "target.scale"), dtype="float64"), *bounds)
        names = meta.get("feature_names_in")
        inputs = FittedInputs(name, model_config.arch, expect(meta.get("n_features_in"), int, "n_features_in"),
                              None if names is None else tuple(map(str, expect(names, list, "feature_names_in"))),
                              model_config.image_shape, model_config.series_shape, tuple(pre.columns_))
    except BundleError:
        raise
    except InvalidParameterError as exc:
        raise BundleError(f"{directory / META_FILE}: invalid parameter in the bundle ({exc})") from None
    except (TypeError, KeyError, ValueError) as exc:
        raise BundleError(f"{directory / META_FILE}: invalid bundle description ({type(exc).__name__}: {exc})") from None
    # The architecture is rebuilt (seed 0, as TaskSpec.build_network) and the weights replace its own.
    module = build_model(model_config, spec, target.n_outputs, target.task, torch.Generator().manual_seed(0))
    module.load_state_dict(read_weights(directory, meta, module))
    return NetworkBundle(name, params, model_config, spec, pre, target, inputs, module.eval(), meta)


def description_digest(meta: dict[str, Any]) -> str:
    """SHA-256 of a bundle description without its own digest, in a canonical JSON form
    (sorted keys, no spaces), so that formatting does not count, only content."""
    content = {k: v for k, v in meta.items() if k != DESCRIPTION_KEY}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
                          .encode()).hexdigest()


def check_description(directory: Path, meta: dict[str, Any]) -> None:
    """Refuse a description edited since it was saved (its digest no longer matches). Like
    the weights' checksum this catches accidents and edits, not a forger who recomputes it;
    a description without a digest (saved before it existed) is not checked."""
    if DESCRIPTION_KEY in meta and meta[DESCRIPTION_KEY] != description_digest(meta):
        raise BundleError(f"{directory / META_FILE}: the bundle description was changed after it was saved "
                          "(checksum mismatch); refusing it")


def read_weights(directory: Path, meta: dict[str, Any], module: nn.Module) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    weights_name = expect(meta.get("weights_file"), str, "weights_file")
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


__all__ = ["DESCRIPTION_KEY", "FORMAT", "FORMAT_VERSION", "META_FILE", "NetworkBundle", "TARGET_KINDS",
           "check_description", "decode_labels", "description_digest", "encode_labels", "expect", "params_from_json",
           "params_to_json", "read_meta", "read_network", "read_weights"]
