"""Multi-layer perceptrons: plain ("mlp") and with skip connections ("resnet")."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from archtune.blocks import initialize_linear, make_activation, make_dropout, make_norm, resolve_initializer
from archtune.models.registry import register_model

if TYPE_CHECKING:
    from archtune.config import ModelConfig


def _linear(fan_in: int, fan_out: int, config: "ModelConfig", generator: torch.Generator | None) -> nn.Linear:
    layer = nn.Linear(fan_in, fan_out)
    initialize_linear(layer, resolve_initializer(config.initializer, config.activation), generator)
    return layer


@register_model("wide_deep")  # the deep path of Wide&Deep is an MLP (see TabularNetwork)
@register_model("mlp")
def build_mlp(config: "ModelConfig", in_width: int, generator: torch.Generator | None) -> tuple[nn.Module, int]:
    """Linear -> norm -> activation -> dropout, once per hidden layer.

    Normalisation sits before the activation, as in the batch-norm paper, so that the
    activation sees standardised pre-activations.
    """
    layers: list[nn.Module] = []
    width = in_width
    for size in config.hidden_sizes:
        layers += [
            _linear(width, size, config, generator),
            make_norm(config.norm, size),
            make_activation(config.activation, config.parametric_activation, size),
            make_dropout(config.dropout, config.activation),
        ]
        width = size
    # Identity placeholders are kept so that parameter names (body.4.weight, ...) depend only
    # on depth and family, not on whether dropout or norm is on: population training lines up
    # members by name.
    return nn.Sequential(*layers), width


BRANCH_SCALE = 0.1


class ResidualBlock(nn.Module):
    """x + dropout(activation(linear(norm(x)))), with a linear projection when widths differ."""

    def __init__(self, fan_in: int, fan_out: int, config: "ModelConfig", generator: torch.Generator | None):
        super().__init__()
        self.norm = make_norm(config.norm, fan_in)
        self.linear = _linear(fan_in, fan_out, config, generator)
        with torch.no_grad():
            # Each block adds its branch to the skip path, so with the activation-matched
            # variance alone the signal's scale compounds with depth (RMS ~30 after 8 blocks)
            # and deep residual nets diverge. Starting each branch small (SkipInit / ReZero's
            # idea) makes every block close to the identity at first. Measured on cpu_act and
            # house_16H: 0.1 matched PyTorch-default-initialised resnets; 1/sqrt(blocks) did not.
            self.linear.weight.mul_(BRANCH_SCALE)
        self.activation = make_activation(config.activation, config.parametric_activation, fan_out)
        self.dropout = make_dropout(config.dropout, config.activation)
        self.skip: nn.Module = nn.Identity()
        if fan_in != fan_out:
            skip = nn.Linear(fan_in, fan_out, bias=False)
            initialize_linear(skip, "glorot_uniform", generator)
            self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.dropout(self.activation(self.linear(self.norm(x))))


@register_model("resnet")
def build_resnet(config: "ModelConfig", in_width: int, generator: torch.Generator | None) -> tuple[nn.Module, int]:
    """An MLP whose hidden layers after the first are residual blocks.

    The first layer projects the input to the first hidden width; each later layer adds its
    transformation to a skip path, which keeps gradients flowing through deep stacks.
    """
    if not config.hidden_sizes:
        return nn.Identity(), in_width
    first = config.hidden_sizes[0]
    layers: list[nn.Module] = [
        _linear(in_width, first, config, generator),
        make_activation(config.activation, config.parametric_activation, first),
        make_dropout(config.dropout, config.activation),
    ]
    width = first
    for size in config.hidden_sizes[1:]:
        layers.append(ResidualBlock(width, size, config, generator))
        width = size
    return nn.Sequential(*layers), width


@register_model("sequence")
def build_sequence(config: "ModelConfig", in_width: int, generator: torch.Generator | None) -> tuple[nn.Module, int]:
    """Time series (N x T x F arrays): a convolution over the steps with global max pooling, or
    an LSTM / GRU, then the MLP layers. Without series (a table whose text columns have their
    own encoders) it is the MLP."""
    if not config.series_shape:
        return build_mlp(config, in_width, generator)
    from archtune.models.sequence import SeriesEncoder

    encoder = SeriesEncoder(config, generator)
    mlp, width = build_mlp(config, encoder.width, generator)
    return nn.Sequential(encoder, mlp), width
