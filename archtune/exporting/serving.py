"""One torch module that serves a fitted network: raw numbers and category codes in, the
prediction out, with the fitted preprocessing and the target's decoding inside.

ONNX and TorchScript export this same module (`archtune.exporting.onnx_graph`,
`archtune.exporting.torchscript`), so both carry the preprocessing of
`archtune.data.preprocess.Preprocessor.transform` operation for operation, in float64 as
NumPy computes it, and only the network itself in float32.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from archtune.data.preprocess import SMOOTH_CLIP
from archtune.errors import InvalidParameterError
from archtune.exporting.ops import f64, interp, interp_table, ndtri
from archtune.quantiles import point_index
from archtune.task import task_of

# What `include_preprocessing=False` says in every refusal below.
NETWORK_ALONE = ("the network alone can still be exported with include_preprocessing=False (it takes the "
                 "preprocessed float32 matrix that model.preprocessor_.transform returns)")


@dataclass(frozen=True)
class Signature:
    """What an exported model takes and gives.

    Attributes
    ----------
    numeric : tuple of str
        The numeric columns, in the order of the numeric matrix (TorchScript) or as graph
        inputs of float64 values with NaN for missing (ONNX).
    categorical : dict
        Categorical column -> its levels; a level's code is its position + 1, and 0 is a
        missing or unknown value (as `Preprocessor` codes them).
    outputs : tuple of (name, dtype, shape)
    classes : list, optional
        The class labels of a classifier, in the order of the probability columns.
    """

    numeric: tuple[str, ...]
    categorical: dict[str, list[str]]
    outputs: tuple[tuple[str, str, str], ...]
    classes: list[Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": list(self.numeric), "categorical": self.categorical,
                "outputs": [list(o) for o in self.outputs], "classes": self.classes}


def check_exportable(model: Any) -> None:
    """Refuse, naming the column and its kind, what the serving module cannot compute.

    Raises
    ------
    InvalidParameterError
        The model was fitted on image or series arrays, or has date, text or image-path
        columns (their features are computed in Python: parsing dates, tokenising text,
        reading image files).
    """
    pre = model.preprocessor_
    for kind, shape in (("images", getattr(model, "image_shape_", None)),
                        ("series", getattr(model, "series_shape_", None))):
        if shape:
            raise InvalidParameterError(f"include_preprocessing=True: the model was fitted on an array of {kind} "
                                        f"(shape {tuple(shape)}), not a table of columns; {NETWORK_ALONE}")
    for kind, names in (("date", list(pre.dates_)), ("text", pre.text_), ("image-path", pre.image_)):
        if names:
            raise InvalidParameterError(
                f"include_preprocessing=True: column {names[0]!r} is a {kind} column, whose features archtune "
                f"computes in Python and cannot express in ONNX or TorchScript; {NETWORK_ALONE}")


class ServingModule(nn.Module):
    """`Preprocessor.transform` of numeric values and category codes, the network, and the
    prediction.

    Parameters
    ----------
    model : NeuralClassifier or NeuralRegressor
        Fitted, on a table whose columns are numeric or categorical (`check_exportable`).

    Notes
    -----
    ``forward(numeric, codes)`` takes

    - numeric : float64 [B, len(signature.numeric)], raw values, NaN for missing;
    - codes : int64 [B, len(signature.categorical)], each categorical value's code.

    It fills missing values with the training medians after noting them for the indicator
    columns, scales as fitted ("standard", "robust" with its smooth clip, "quantile",
    "maxabs" or none), adds one-hot columns and embedding codes, casts to float32 as
    `Preprocessor.transform` does, runs the network, and returns ``(label_index [B] int64,
    probabilities [B, K] float64)`` for a classifier (the label as `predict` chooses it:
    the logit's sign for two classes, the first largest logit for more; for a multi-label
    classifier ``(indicator [B, K] int64, probabilities [B, K])``, each label's sigmoid) or
    ``(values,)`` for a regressor, float64 in the target's units, clipped to the training
    range where the model clamps, [B] for a 1-D target and [B, n_outputs] otherwise.
    """

    def __init__(self, model: Any):
        super().__init__()
        check_exportable(model)
        pre = model.preprocessor_
        self.network = model.module_
        self.scaling = pre.scaling
        n = len(pre.numeric_)
        self.n_numeric = n
        # Columns a transferred preprocessor reads as entirely missing (``filled_``) are no
        # inputs: their places take NaN (numbers) or code 0 (categories), as transform does.
        filled = set(getattr(pre, "filled_", []))
        numeric_in = [name for name in pre.numeric_ if name not in filled]
        codes_in = [name for name in pre.categorical_ if name not in filled]
        self.n_numeric_in, self.n_codes_in = len(numeric_in), len(codes_in)
        self.numeric_places = ([numeric_in.index(c) if c not in filled else len(numeric_in) for c in pre.numeric_]
                               if len(numeric_in) < n else [])
        self.code_places = ([codes_in.index(c) if c not in filled else len(codes_in) for c in pre.categorical_]
                            if len(codes_in) < len(pre.categorical_) else [])
        f64 = torch.float64
        self.register_buffer("medians", torch.tensor(np.asarray(pre.medians_, dtype="float64").reshape(n), dtype=f64))
        self.register_buffer("center", torch.tensor(np.asarray(pre.center_, dtype="float64").reshape(n), dtype=f64))
        self.register_buffer("scale", torch.tensor(np.asarray(pre.scale_, dtype="float64").reshape(n), dtype=f64))
        if self.scaling == "quantile" and n:
            grids = [np.linspace(0, 1, len(qs)).tolist() for qs in pre.quantiles_]
            up_x, up_y = interp_table(pre.quantiles_, grids)
            # numpy's interp of -x over the reversed, negated quantiles: the backward pass
            # that resolves tied quantiles (Preprocessor._scale).
            down_x, down_y = interp_table([[-q for q in reversed(qs)] for qs in pre.quantiles_], grids)
            for name, value in (("up_x", up_x), ("up_y", up_y), ("down_x", down_x), ("down_y", down_y)):
                self.register_buffer(name, value)
        position = {name: j for j, name in enumerate(pre.numeric_)}
        self.indicators = [position[name] for name in pre.indicators_]
        code_of = {name: j for j, name in enumerate(pre.categorical_)}
        # One-hot blocks (column, levels) first, then the embedded columns, as transform.
        self.onehot = [(code_of[name], len(pre.categories_[name])) for name in pre.onehot_]
        onehot = set(pre.onehot_)
        self.embedded = [code_of[name] for name in pre.categorical_ if name not in onehot]
        self.classifier = task_of(model).is_classification
        target = model.target_encoder_
        if self.classifier:
            self.multilabel = target.task == "multilabel"
            self.binary = len(model.classes_) == 2 and not self.multilabel
        else:
            self.one_d = bool(target.one_d)
            self.register_buffer("target_mean", torch.tensor(np.asarray(target.mean, dtype="float64")))
            self.register_buffer("target_scale", torch.tensor(np.asarray(target.scale, dtype="float64")))
            self.clamp = target.low is not None
            # loss="quantile" (archtune.quantiles): the network gives every output's levels, and
            # the graph gives the point prediction and the quantiles.
            levels = model.model_config_.quantiles
            self.n_quantiles, self.point = len(levels), point_index(levels) if levels else 0
            if self.clamp:
                self.register_buffer("target_low", torch.tensor(np.asarray(target.low, dtype="float64")))
                self.register_buffer("target_high", torch.tensor(np.asarray(target.high, dtype="float64")))

    def preprocess(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The network's float32 input matrix [B, n_columns]."""
        if self.numeric_places:
            missing = torch.full((numeric.shape[0], 1), float("nan"), dtype=torch.float64)
            numeric = torch.cat([numeric, missing], dim=1)[:, self.numeric_places]
        if self.code_places:
            codes = torch.cat([codes, torch.zeros((codes.shape[0], 1), dtype=torch.int64)], dim=1)[:, self.code_places]
        absent = torch.isnan(numeric)
        filled = torch.where(absent, self.medians, numeric)
        blocks = [self.scaled(filled)]
        if self.indicators:
            blocks.append(absent[:, self.indicators].to(torch.float64))
        for j, levels in self.onehot:
            blocks.append((codes[:, j:j + 1] == torch.arange(1, levels + 1)).to(torch.float64))
        if self.embedded:
            blocks.append(codes[:, self.embedded].to(torch.float64))
        return torch.cat(blocks, dim=1).to(torch.float32)

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        """`Preprocessor._scale` in the same float64 arithmetic."""
        if self.scaling is None or self.n_numeric == 0:
            return x
        if self.scaling == "standard":
            return (x - self.center) / self.scale
        if self.scaling == "maxabs":
            return x / self.scale
        if self.scaling == "robust":
            z = (x - self.center) / self.scale
            return z / torch.sqrt(1 + (z / SMOOTH_CLIP) ** 2)
        up = interp(x, self.up_x, self.up_y)
        down = 1 - interp(-x, self.down_x, self.down_y)
        return ndtri(torch.clamp(0.5 * (up + down), f64(1e-7), f64(1 - 1e-7)))

    def forward(self, numeric: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.network(self.preprocess(numeric, codes)).to(torch.float64)
        if self.classifier:
            if self.multilabel:  # the 0/1 indicator matrix [B, n_labels] and each label's probability
                return (out > 0).to(torch.int64), torch.sigmoid(out)
            if self.binary:
                p = torch.sigmoid(out)
                return (out[:, 0] > 0).to(torch.int64), torch.cat([1 - p, p], dim=1)
            return torch.argmax(out, dim=1), torch.softmax(out, dim=1)
        if self.n_quantiles:
            return self.quantile_outputs(out)
        values = out * self.target_scale + self.target_mean
        if self.clamp:
            values = torch.minimum(torch.maximum(values, self.target_low), self.target_high)
        return (values[:, 0] if self.one_d else values,)


    def quantile_outputs(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(point, quantiles) of quantile outputs [B, n_outputs * n_q], as `NeuralRegressor.predict`
        and `predict_quantiles` give them: [B] and [B, n_q] for a 1-D target, [B, n_outputs] and
        [B, n_outputs, n_q] otherwise."""
        values = out.unflatten(1, (-1, self.n_quantiles)) * self.target_scale[:, None] + self.target_mean[:, None]
        if self.clamp:
            values = torch.minimum(torch.maximum(values, self.target_low[:, None]), self.target_high[:, None])
        point = values[:, :, self.point]
        return (point[:, 0], values[:, 0]) if self.one_d else (point, values)


class NumericOnly(nn.Module):
    """A `ServingModule` of a table without categorical columns, taking the numeric matrix
    alone (an exported graph has no empty input)."""

    def __init__(self, serving: ServingModule):
        super().__init__()
        self.serving = serving

    def forward(self, numeric: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.serving(numeric, torch.zeros((numeric.shape[0], 0), dtype=torch.int64))


class CodesOnly(nn.Module):
    """A `ServingModule` of a table of categorical columns only, taking the codes alone."""

    def __init__(self, serving: ServingModule):
        super().__init__()
        self.serving = serving

    def forward(self, codes: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.serving(torch.zeros((codes.shape[0], 0), dtype=torch.float64), codes)


def signature(model: Any) -> Signature:
    """The `Signature` of ``model``'s serving module (columns in ``filled_`` are no inputs)."""
    pre = model.preprocessor_
    filled = set(getattr(pre, "filled_", []))
    numeric = tuple(name for name in pre.numeric_ if name not in filled)
    categorical = {name: list(pre.categories_[name]) for name in pre.categorical_ if name not in filled}
    if task_of(model).is_classification:
        k = len(model.classes_)
        if model.target_encoder_.task == "multilabel":  # "label": the 0/1 indicator matrix, one column per label
            outputs = (("label", "int64", f"[rows, {k}]"), ("probabilities", "float64", f"[rows, {k}]"))
            return Signature(numeric, categorical, outputs, np.asarray(model.classes_).tolist())
        outputs = (("label", label_type(model.classes_), "[rows]"), ("probabilities", "float64", f"[rows, {k}]"))
        return Signature(numeric, categorical, outputs, np.asarray(model.classes_).tolist())
    target = model.target_encoder_
    shape = "[rows]" if target.one_d else f"[rows, {target.n_outputs}]"
    levels = model.model_config_.quantiles
    if levels:  # loss="quantile": the point prediction and every level (archtune.quantiles)
        q_shape = f"[rows, {len(levels)}]" if target.one_d else f"[rows, {target.n_outputs}, {len(levels)}]"
        return Signature(numeric, categorical, (("prediction", "float64", shape), ("quantiles", "float64", q_shape)))
    return Signature(numeric, categorical, (("prediction", "float64", shape),))


def label_type(classes: Any) -> str:
    """The element type of a classifier's "label" output: int64, bool or float64 labels keep
    their type, any other label is a string (str of the label)."""
    return {"i": "int64", "u": "int64", "b": "bool", "f": "float64"}.get(np.asarray(classes).dtype.kind, "string")


def serving_module(model: Any) -> nn.Module:
    """The module to export: a `ServingModule` in evaluation mode, wrapped to take only the
    inputs the table has (`NumericOnly`, `CodesOnly`). It holds a copy of the network whose
    parameters need no gradient (the model's own network is left as it is)."""
    serving = ServingModule(model).eval()
    serving.network = copy.deepcopy(serving.network)
    serving.requires_grad_(False)
    if serving.n_codes_in == 0:
        return NumericOnly(serving).eval()
    if serving.n_numeric_in == 0:
        return CodesOnly(serving).eval()
    return serving


def example_inputs(model: Any, rows: int = 3) -> tuple[torch.Tensor, ...]:
    """Inputs of ``rows`` rows to trace the serving module with: the medians (a missing value
    in the first row) and code 1 (0 in the first row)."""
    pre, sig = model.preprocessor_, signature(model)
    medians = dict(zip(pre.numeric_, pre.medians_))
    numeric = torch.tensor(np.tile(np.asarray([medians[c] for c in sig.numeric], dtype="float64"),
                                   (rows, 1)).reshape(rows, -1))
    if sig.numeric:
        numeric[0, 0] = float("nan")
    codes = torch.ones((rows, len(sig.categorical)), dtype=torch.int64)
    codes[0] = 0
    return tuple(t for t, n in ((numeric, len(sig.numeric)), (codes, len(sig.categorical))) if n)


__all__ = ["CodesOnly", "NETWORK_ALONE", "NumericOnly", "ServingModule", "Signature", "check_exportable",
           "example_inputs", "label_type", "serving_module", "signature"]
