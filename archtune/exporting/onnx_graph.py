"""An ONNX graph that predicts from raw columns: `ServingModule` exported by torch, with the
string-to-code step in front and the code-to-label step behind, built with onnx.helper.

Why one torch module and not a preprocessing graph written node by node: the numeric
preprocessing (missing indicators, medians, the fitted scaling, one-hot columns) is written
once, in torch (`archtune.exporting.serving`), checked against `Preprocessor.transform`, and
shared by the ONNX and TorchScript files. Only what torch cannot hold is added here: strings.
Each categorical column goes through an ``ai.onnx.ml`` LabelEncoder (its levels -> 1..k, any
other string, a missing value included, -> 0, as archtune codes unknown levels) into the
module's ``codes`` input, and a classifier's label index picks its label from a constant
tensor of the classes (Gather). The network's own tensors are renamed ``archtune/...`` so
that no column name can clash with them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from archtune.errors import InvalidParameterError
from archtune.exporting.serving import Signature, example_inputs, serving_module, signature
from archtune.files import json_bytes

EXTRA = "pip install 'archtune[onnx]'"
# ai.onnx.ml opset of the LabelEncoder (version 2 of the operator: string keys, int64 values).
ML_OPSET = 3
PREFIX = "archtune/"


def require_onnx() -> Any:
    """The onnx package, after checking that torch's exporter can run (it needs onnxscript).

    Raises
    ------
    ImportError
        onnx or onnxscript is missing; the message names the optional extra to install.
    """
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx.export's exporter is written in it)
    except ImportError as exc:
        raise ImportError(f"exporting to ONNX needs the optional packages onnx and onnxscript ({exc.name} is "
                          f"missing): {EXTRA}") from None
    return onnx


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch's exporter prints its progress and logs optional packages it skips: a library
    call should print nothing."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_module(module: torch.nn.Module, args: tuple[torch.Tensor, ...], input_names: list[str],
                  output_names: list[str], what: str) -> Any:
    """``module`` as an ONNX ModelProto (torch.onnx.export, the dynamo exporter), every input's
    first dimension dynamic ("rows").

    Raises
    ------
    InvalidParameterError
        torch cannot export the module (an operation without an ONNX form); ``what`` names it.
    """
    require_onnx()
    rows = torch.export.Dim("rows")
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(module, args, dynamo=True, input_names=input_names,
                                        output_names=output_names, dynamic_shapes=tuple({0: rows} for _ in args),
                                        external_data=False, optimize=True, verbose=False)
    except Exception as exc:  # torch's exporter raises many types; the message says which
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidParameterError(f"format='onnx': {what} could not be exported ({type(exc).__name__}: "
                                    f"{first[:300]}); format='torchscript' may still work") from None
    return program.model_proto


def network_graph(model: Any) -> Any:
    """``model.module_`` alone: input "X" float32 [rows, n_columns] (the preprocessed matrix),
    output "outputs" float32 [rows, n_outputs] (logits, or standardised values)."""
    n_columns = model.input_spec_.n_columns
    example = torch.from_numpy(np.zeros((3, n_columns), dtype="float32"))
    graph = export_module(model.module_.eval(), (example,), ["X"], ["outputs"],
                          f"the network (arch={model.model_config_.arch!r})")
    graph.producer_name = "archtune"
    return graph


def full_graph(model: Any) -> tuple[Any, Signature]:
    """The graph from raw columns to predictions, and its `Signature`.

    Inputs: one per column the model reads, named as the column, [rows]: float64 for a
    numeric column (NaN for missing), string for a categorical one (its values as archtune
    names levels: ``str(value)``, integers without ".0", booleans "True"/"False"; an unknown
    or missing value becomes code 0). Outputs: "label" [rows] and "probabilities" float64
    [rows, n_classes] for a classifier ("label" int64 [rows, n_labels], the 0/1 indicator
    matrix, for a multi-label one), "prediction" float64 for a regressor.
    """
    onnx = require_onnx()
    from onnx import TensorProto, compose, helper

    sig = signature(model)
    clash = sorted({o[0] for o in sig.outputs} & (set(sig.numeric) | set(sig.categorical)))
    if clash:
        raise InvalidParameterError(f"format='onnx': column {clash[0]!r} has the name of an output of the graph; "
                                    "rename that column and refit, or export with include_preprocessing=False")
    inputs = [name for name, n in (("numeric", len(sig.numeric)), ("codes", len(sig.categorical))) if n]
    outputs = ["label_index", "probabilities"] if sig.classes is not None else [o[0] for o in sig.outputs]
    net = export_module(serving_module(model), example_inputs(model), inputs, outputs,
                        f"the network with its preprocessing (arch={model.model_config_.arch!r})")
    graph_model = compose.add_prefix(net, PREFIX)
    graph = graph_model.graph
    front: list[Any] = []
    new_inputs = []
    axes = helper.make_tensor(f"{PREFIX}axes", TensorProto.INT64, [1], [1])
    graph.initializer.append(axes)
    for part, columns in (("numeric", list(sig.numeric)), ("codes", list(sig.categorical))):
        if not columns:
            continue
        columns_2d = []
        for j, name in enumerate(columns):
            if part == "numeric":
                new_inputs.append(helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["rows"]))
                source = name
            else:
                new_inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["rows"]))
                source = f"{PREFIX}code/{j}"
                levels = sig.categorical[name]
                front.append(helper.make_node("LabelEncoder", [name], [source], domain="ai.onnx.ml",
                                              name=f"{PREFIX}codes/{j}", keys_strings=levels,
                                              values_int64s=list(range(1, len(levels) + 1)), default_int64=0))
            columns_2d.append(f"{PREFIX}{part}/{j}")
            front.append(helper.make_node("Unsqueeze", [source, axes.name], [columns_2d[-1]],
                                          name=f"{PREFIX}unsqueeze/{part}/{j}"))
        front.append(helper.make_node("Concat", columns_2d, [f"{PREFIX}{part}"], axis=1, name=f"{PREFIX}concat/{part}"))
    back = []
    new_outputs = []
    if sig.classes is not None and sig.outputs[0][2] != "[rows]":  # multi-label: the indicator matrix as it is
        back.append(helper.make_node("Identity", [f"{PREFIX}label_index"], ["label"], name=f"{PREFIX}label"))
        back.append(helper.make_node("Identity", [f"{PREFIX}probabilities"], ["probabilities"],
                                     name=f"{PREFIX}probabilities"))
        new_outputs += [helper.make_tensor_value_info("label", TensorProto.INT64, ["rows", len(sig.classes)]),
                        helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE,
                                                      ["rows", len(sig.classes)])]
    elif sig.classes is not None:
        classes, label_type = _classes_tensor(np.asarray(model.classes_), f"{PREFIX}classes")
        graph.initializer.append(classes)
        back.append(helper.make_node("Gather", [classes.name, f"{PREFIX}label_index"], ["label"], axis=0,
                                     name=f"{PREFIX}label"))
        back.append(helper.make_node("Identity", [f"{PREFIX}probabilities"], ["probabilities"],
                                     name=f"{PREFIX}probabilities"))
        new_outputs += [helper.make_tensor_value_info("label", label_type, ["rows"]),
                        helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE,
                                                      ["rows", len(sig.classes)])]
    else:
        back.append(helper.make_node("Identity", [f"{PREFIX}prediction"], ["prediction"], name=f"{PREFIX}prediction"))
        target = model.target_encoder_
        new_outputs.append(helper.make_tensor_value_info("prediction", TensorProto.DOUBLE,
                                                         ["rows"] if target.one_d else ["rows", target.n_outputs]))
        levels = model.model_config_.quantiles
        if levels:  # loss="quantile": every level too, as predict_quantiles
            back.append(helper.make_node("Identity", [f"{PREFIX}quantiles"], ["quantiles"], name=f"{PREFIX}quantiles"))
            new_outputs.append(helper.make_tensor_value_info(
                "quantiles", TensorProto.DOUBLE,
                ["rows", len(levels)] if target.one_d else ["rows", target.n_outputs, len(levels)]))
    nodes = front + list(graph.node) + back
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    order = {name: i for i, name in enumerate(model.preprocessor_.columns_)}  # the table's column order
    graph.input.extend(sorted(new_inputs, key=lambda value: order[value.name]))
    del graph.output[:]
    graph.output.extend(new_outputs)
    graph.name = "archtune"
    graph_model.opset_import.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    graph_model.producer_name = "archtune"
    helper.set_model_props(graph_model, {"archtune.signature": json_bytes(sig.to_dict(), indent=None).decode()})
    onnx.checker.check_model(graph_model, full_check=True)
    return graph_model, sig


def _classes_tensor(classes: np.ndarray, name: str) -> tuple[Any, int]:
    """The class labels as an ONNX constant, and its element type: int64, bool, double, or
    strings (any other label, written as str)."""
    from onnx import TensorProto, helper, numpy_helper

    kind = classes.dtype.kind
    if kind in "iu":
        return numpy_helper.from_array(classes.astype("int64"), name), TensorProto.INT64
    if kind == "b":
        return numpy_helper.from_array(classes.astype(bool), name), TensorProto.BOOL
    if kind == "f":
        return numpy_helper.from_array(classes.astype("float64"), name), TensorProto.DOUBLE
    values = [str(c).encode() for c in classes.tolist()]
    return helper.make_tensor(name, TensorProto.STRING, [len(values)], values), TensorProto.STRING


def onnx_inputs(model: Any, frame: Any) -> dict[str, np.ndarray]:
    """The inputs of an ONNX file that `export` wrote with its preprocessing, for a table's
    rows: what ``session.run(None, onnx_inputs(session, X))`` takes.

    Parameters
    ----------
    model : onnxruntime.InferenceSession, onnx.ModelProto, str or path-like
        The exported file, opened by onnxruntime or onnx, or its path.
    frame : pandas.DataFrame
        Raw rows with the model's columns, of any dtype (nullable numbers, strings of any
        storage, Arrow, category, boolean; missing as NaN, None or pd.NA), read as `predict`
        reads them (`archtune.data.values.plain_numbers` / `plain_labels`).

    Returns
    -------
    dict
        Column -> float64 array (NaN = missing) for a numeric input, object array of strings
        for a categorical one (the level as archtune names it, `category_key`; "" for a
        missing value, which the graph codes as unknown, as `predict` does).

    Raises
    ------
    DataError
        ``frame`` lacks an input's column, or a numeric column holds a value that is not a
        number (named with its row).
    """
    from archtune.data.values import category_key, plain_labels, plain_numbers
    from archtune.errors import DataError

    if hasattr(model, "get_inputs"):  # onnxruntime
        specs = [(value.name, value.type == "tensor(string)") for value in model.get_inputs()]
    else:
        onnx = require_onnx()
        proto = model if hasattr(model, "graph") else onnx.load(str(model))
        specs = [(value.name, value.type.tensor_type.elem_type == onnx.TensorProto.STRING)
                 for value in proto.graph.input]
    missing = [name for name, _ in specs if name not in frame.columns]
    if missing:
        raise DataError(f"X is missing column(s) {missing[:5]} that the ONNX file takes (a file exported with "
                        "include_preprocessing=False takes the preprocessed matrix X instead)")
    feed = {}
    for name, string in specs:
        if string:
            labels = plain_labels(frame[name], category_key)
            feed[name] = np.array(["" if isinstance(label, float) else label for label in labels], dtype=object)
        else:
            feed[name] = plain_numbers(frame[name], "X")
    return feed


__all__ = ["EXTRA", "full_graph", "network_graph", "onnx_inputs", "require_onnx"]
