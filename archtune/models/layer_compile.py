"""A declared layer list checked, compiled to a torch module with shape inference, and written
as JSON (the "layers" family's network: archtune.models.layer_network).

`check_layers` turns a list of layers (archtune.models.layer_list) or of their JSON form into
checked layer objects; `compile_layers` builds each layer for the shape the one before it
gives and runs it once on a zero batch, so that a mismatch is an `InvalidParameterError` that
names the layer's position (``layers[i]: ``) before training, not a torch error during it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from archtune.errors import InvalidParameterError, nearest
from archtune.models.layer_list import LAYERS, Embedding, Lambda, Masking, Shape
from archtune.models.layer_rules import LayerError, validate_layer


def _is_layer(layer: Any) -> bool:
    return type(layer).__name__ in LAYERS and hasattr(layer, "build") and hasattr(type(layer), "RULES")


def check_layers(layers: Any) -> tuple[Any, ...]:
    """The layer list with every argument checked, as layer objects: a dict in the bundle's JSON
    form (``{"type": "Dense", "units": 16, "activation": "relu"}``) is converted. Raises an
    `InvalidParameterError` that starts with ``layers[i]: `` for the first bad layer."""
    if isinstance(layers, Mapping):
        raise InvalidParameterError(f"layers must be a list of layers; got one dict {dict(layers)!r} "
                                    "(wrap it in [...])")
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise InvalidParameterError(f"layers must be a list of layers (Dense(64), ...); got layers={layers!r}")
    out = []
    for i, layer in enumerate(layers):
        try:
            if isinstance(layer, Mapping):
                layer = layer_from_dict(layer)
            if not _is_layer(layer):
                raise LayerError(f"{layer!r} is not an archtune layer; use {', '.join(LAYERS)} from "
                                 "archtune.models.layer_list (or their JSON form, {\"type\": \"Dense\", ...})")
            validate_layer(layer)
        except LayerError as exc:
            raise InvalidParameterError(f"layers[{i}]: {exc}") from None
        out.append(layer)
    return tuple(out)


def compile_layers(layers: Sequence[Any], shape: Shape,
                   generator: torch.Generator | None = None) -> tuple[nn.Sequential, Shape]:
    """The torch module of a layer list for inputs of ``shape``, and its output shape.

    Every argument is checked first (`check_layers`), then each layer infers its output shape
    and is run once on a zero batch of its input shape, so that a mismatch is reported here,
    with the layer's position, and not by torch in the middle of training."""
    layers = check_layers(layers)
    modules: list[nn.Module] = []
    state: dict = {"generator": generator}
    shape = tuple(shape)
    sample = torch.zeros(2, *shape)
    for i, layer in enumerate(layers):
        try:
            built, out_shape = layer.build(shape, state)
            out_shape = tuple(out_shape)
        except LayerError as exc:
            raise InvalidParameterError(f"layers[{i}]: {exc}") from None
        except InvalidParameterError:
            raise
        except Exception as exc:  # a Lambda's own code, or torch refusing the arguments
            raise InvalidParameterError(f"layers[{i}]: {layer!r} cannot take input of shape {shape}: "
                                        f"{_one_line(exc)}") from None
        if min(out_shape, default=1) < 1:
            raise InvalidParameterError(f"layers[{i}]: {layer!r} leaves an empty output of shape {out_shape} "
                                        f"from input of shape {shape}")
        try:
            with torch.no_grad():
                for module in built:
                    module.eval()
                    sample = module(sample)
        except Exception as exc:
            raise InvalidParameterError(f"layers[{i}]: {layer!r} cannot take input of shape {shape}: "
                                        f"{_one_line(exc)}") from None
        finally:
            for module in built:
                module.train()
        if sample.dim() == 0 or sample.shape[0] != 2:
            # A Lambda that flattens or slices the batch: every later layer and the loss would
            # see the wrong number of rows.
            raise InvalidParameterError(f"layers[{i}]: {layer!r} changes the batch dimension (2 rows in, "
                                        f"{tuple(sample.shape)} out); layers must keep one output per row")
        if tuple(sample.shape[1:]) != out_shape:
            raise InvalidParameterError(f"layers[{i}]: {layer!r} gives an output of shape {tuple(sample.shape[1:])} "
                                        f"on input of shape {shape}, not the {out_shape} it declares")
        modules += built
        shape = out_shape
    return nn.Sequential(*modules), shape


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def layer_to_dict(layer: Any) -> dict[str, Any]:
    if isinstance(layer, Mapping):  # already in the JSON form (layers=[{"type": ...}])
        layer = layer_from_dict(layer)
    if isinstance(layer, Lambda):
        raise InvalidParameterError("a Lambda layer holds code and cannot be saved (archtune never pickles)")
    fields = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}

    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v.item() if hasattr(v, "item") and not isinstance(v, (bool, int, float, str)) else v

    return {"type": type(layer).__name__, **{k: plain(v) for k, v in fields.items()}}


def layer_from_dict(data: Mapping[str, Any]) -> Any:
    """A layer from its JSON form, ``{"type": "Dense", "units": 16, "activation": "relu"}``.
    Its arguments are checked by `validate_layer` (through `check_layers`), not here."""
    shown = dict(data)
    data = dict(data)
    kind = data.pop("type", None)
    if kind == "Lambda":
        raise LayerError("a Lambda layer holds code and cannot be given as JSON; build it in Python")
    if kind not in LAYERS:
        known = [k for k in LAYERS if k != "Lambda"]
        hint = nearest(kind, known) if isinstance(kind, str) else ""
        what = "has no 'type'" if kind is None else f"has unknown type {kind!r}{hint}"
        raise LayerError(f"{shown!r} {what}; "
                         f"choose from {', '.join(known)}")
    cls = LAYERS[kind]
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise LayerError(f"{shown!r}: {kind} has no argument {key!r}{nearest(key, names)}; "
                             f"its arguments are {', '.join(names) or 'none'}")
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise LayerError(f"{shown!r}: {kind} needs {' and '.join(repr(m) for m in missing)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def input_scaling(layers: Sequence[Any], arch: str, scaling: str | None) -> str | None:
    """The numeric scaling a network's input gets: none when a declared layer list starts with
    Embedding (token codes must reach it unscaled) or Masking (scaled 0.0 padding would no
    longer equal mask_value, and nothing would be masked); ``scaling`` otherwise."""
    first = check_layers(layers)[:1] if arch == "layers" and layers else ()
    if first and isinstance(first[0], (Embedding, Masking)):
        return None
    return scaling
