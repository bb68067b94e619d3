"""The "layers" family's network: a declared layer list (archtune.models.layer_list),
compiled for the shape the data gives (archtune.models.layer_compile)."""

from __future__ import annotations

import math

import torch
from torch import nn

from archtune.config import ModelConfig
from archtune.errors import InvalidParameterError
from archtune.models.layer_compile import compile_layers
from archtune.models.layer_list import Shape
from archtune.models.registry import register_model


@register_model("layers")
def build_layer_list(config: ModelConfig, in_width: int, generator: torch.Generator | None) -> tuple[nn.Module, int]:
    if not config.layers:
        raise InvalidParameterError("arch='layers' needs layers=[...] (Dense, Conv2D, LSTM, ... from "
                                    "archtune.models.layer_list)")
    # Images (C, H, W) and series (T, F) arrive as flat rows: the list starts from their shape.
    shape: Shape = tuple(config.image_shape or config.series_shape) or (in_width,)
    body, out = compile_layers(config.layers, shape, generator)
    if len(shape) > 1:
        body = nn.Sequential(nn.Unflatten(1, shape), *body)
    if len(out) != 1:
        body = nn.Sequential(*body, nn.Flatten())
    return body, math.prod(out)


__all__ = ["build_layer_list"]
