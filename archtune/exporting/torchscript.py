"""A TorchScript file of the serving module (`archtune.exporting.serving`), traced, with a JSON
description of its inputs (which column is where, each category's code) inside the file and
beside it."""

from __future__ import annotations

import copy
import io
import warnings
from typing import Any

import numpy as np
import torch

from archtune.errors import InvalidParameterError
from archtune.exporting.serving import Signature, example_inputs, serving_module, signature
from archtune.files import json_bytes

FORMAT = "archtune-torchscript"
DESCRIPTION_FILE = "archtune.json"  # its name inside the TorchScript archive (extra files)


def describe(model: Any, include_preprocessing: bool) -> dict[str, Any]:
    """What the traced module takes and returns, as JSON.

    With the preprocessing: ``forward(numeric, codes)`` (either absent when the table has no
    such column), numeric float64 [rows, len(numeric columns)] in the listed order with NaN
    for missing, codes int64 [rows, len(categorical columns)] with each level's code (its
    position in the list + 1; 0 for missing or unknown). Without it: ``forward(X)``, the
    float32 matrix of ``model.preprocessor_.transform``.
    """
    if not include_preprocessing:
        outputs = [["outputs", "float32", f"[rows, {model.module_.head.out_features}]"]]
        return {"format": FORMAT, "inputs": [{"name": "X", "dtype": "float32",
                                              "shape": f"[rows, {model.input_spec_.n_columns}]",
                                              "meaning": "model.preprocessor_.transform(X)"}],
                "outputs": outputs, "note": "logits (classifier) or standardised values (regressor)"}
    sig: Signature = signature(model)
    inputs = []
    if sig.numeric:
        inputs.append({"name": "numeric", "dtype": "float64", "shape": f"[rows, {len(sig.numeric)}]",
                       "columns": list(sig.numeric), "missing": "NaN"})
    if sig.categorical:
        inputs.append({"name": "codes", "dtype": "int64", "shape": f"[rows, {len(sig.categorical)}]",
                       "columns": list(sig.categorical), "levels": sig.categorical,
                       "code": "position in levels + 1; 0 for a missing or unknown value"})
    outputs = [list(o) for o in sig.outputs]
    if sig.classes is not None and sig.outputs[0][2] == "[rows]":  # the label's index into classes
        outputs[0] = ["label_index", "int64", "[rows]"]
    return {"format": FORMAT, "inputs": inputs, "outputs": outputs, "classes": sig.classes}


def trace(model: Any, include_preprocessing: bool) -> tuple[bytes, dict[str, Any]]:
    """The TorchScript archive's bytes (the description inside as ``archtune.json``) and the
    description.

    Raises
    ------
    InvalidParameterError
        The module cannot be traced, or the traced module does not reproduce it on a batch
        of another size (an operation whose shape tracing froze).
    """
    if include_preprocessing:
        module, args = serving_module(model), example_inputs(model)
    else:
        module = copy.deepcopy(model.module_).eval().requires_grad_(False)
        args = (torch.zeros((3, model.input_spec_.n_columns), dtype=torch.float32),)
    description = describe(model, include_preprocessing)
    with warnings.catch_warnings(), torch.no_grad():
        # TracerWarnings flag Python values read from shapes; the check below catches the
        # ones that matter (a frozen batch size).
        warnings.simplefilter("ignore")
        try:
            traced = torch.jit.trace(module, args, check_trace=False)
        except Exception as exc:  # tracing raises many types; the message says which
            raise InvalidParameterError(f"format='torchscript': the network (arch={model.model_config_.arch!r}) could "
                                        f"not be traced ({type(exc).__name__}: {str(exc).strip()[:300]})") from None
        other = tuple(torch.cat([a, a[:2]]) for a in args)
        if not all(torch.equal(a, b) for a, b in zip(_as_tuple(traced(*other)), _as_tuple(module(*other)))):
            raise InvalidParameterError(f"format='torchscript': the traced network (arch={model.model_config_.arch!r}) "
                                        "does not reproduce the module on another batch size")
        buffer = io.BytesIO()
        # torch 2.13 marks torch.jit deprecated in favour of torch.export (README says so); the
        # archive still loads with torch.jit.load and from C++ with torch::jit::load.
        torch.jit.save(traced, buffer, _extra_files={DESCRIPTION_FILE: json_bytes(description, indent=None).decode()})
    return buffer.getvalue(), description


def _as_tuple(out: Any) -> tuple[torch.Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def encode(description: dict[str, Any], frame: Any) -> tuple[torch.Tensor, ...]:
    """The traced module's inputs for a table, as the description says (for Python callers
    and tests; a C++ or Java caller does the same with the JSON).

    Parameters
    ----------
    description : dict
        From `trace` (or the ``.json`` file written beside the module).
    frame : pandas.DataFrame
        Raw rows with the model's columns, of any dtype (nullable, string, Arrow, category;
        missing values as NaN, None or pd.NA), read as `predict` reads them
        (`archtune.data.values.plain_numbers` / `plain_labels`).

    Returns
    -------
    tuple of torch.Tensor
        (numeric float64, codes int64), without the ones the module does not take.

    Raises
    ------
    DataError
        A numeric column holds a value that is not a number (named with its row).
    """
    from archtune.data.values import category_key, plain_labels, plain_numbers

    out = []
    for spec in description["inputs"]:
        if spec["name"] == "numeric":
            columns = [plain_numbers(frame[name], "X") for name in spec["columns"]]
            out.append(torch.tensor(np.column_stack(columns) if columns else np.empty((len(frame), 0))))
        elif spec["name"] == "codes":
            codes = []
            for name in spec["columns"]:
                lookup = {level: i + 1 for i, level in enumerate(spec["levels"][name])}
                codes.append([0 if isinstance(label, float) else lookup.get(label, 0)
                              for label in plain_labels(frame[name], category_key)])
            out.append(torch.tensor(np.asarray(codes, dtype="int64").T.reshape(len(frame), -1)))
    return tuple(out)


__all__ = ["DESCRIPTION_FILE", "FORMAT", "describe", "encode", "trace"]
