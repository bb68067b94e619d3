"""Activations, the initialisers that match them, normalisation and dropout kinds.

One registry knows every activation and its matching initialiser, so that
``activation="selu"`` alone gives LeCun-normal weights and AlphaDropout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Activation:
    name: str
    make: Callable[[], nn.Module]
    # The initialiser "auto" resolves to: He for the ReLU family (their output has half the
    # variance of their input), Glorot for functions that are linear near 0, LeCun for SELU.
    auto_init: str
    # True for the ReLU family: units that can die (never activate), checked by diagnostics.
    relu_like: bool = False


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("relu", nn.ReLU, "he_normal", relu_like=True),
        Activation("leaky_relu", lambda: nn.LeakyReLU(0.01), "he_normal", relu_like=True),
        Activation("prelu", nn.PReLU, "he_normal", relu_like=True),
        Activation("elu", nn.ELU, "he_normal"),
        Activation("selu", nn.SELU, "lecun_normal"),
        Activation("gelu", nn.GELU, "he_normal"),
        Activation("silu", nn.SiLU, "he_normal"),
        Activation("mish", nn.Mish, "he_normal"),
        Activation("tanh", nn.Tanh, "glorot_uniform"),
        Activation("sigmoid", nn.Sigmoid, "glorot_uniform"),
        Activation("softplus", nn.Softplus, "he_normal"),
        Activation("linear", nn.Identity, "glorot_uniform"),
    ]
}
ACTIVATION_ALIASES = {"swish": "silu", "identity": "linear", "none": "linear"}

REJECTED_ACTIVATIONS = {
    "step": (
        "activation='step' cannot be trained by gradient descent: the step function's gradient "
        "is zero everywhere (and undefined at 0), so no weight would ever change; use 'sigmoid' "
        "or 'tanh' for a smooth step, or 'relu'"
    ),
}


def _uniform_(w: torch.Tensor, variance: float, generator: torch.Generator | None) -> torch.Tensor:
    bound = math.sqrt(3.0 * variance)  # Var(U(-a, a)) = a^2 / 3
    with torch.no_grad():
        return w.uniform_(-bound, bound, generator=generator)


def _normal_(w: torch.Tensor, variance: float, generator: torch.Generator | None) -> torch.Tensor:
    with torch.no_grad():
        return w.normal_(0.0, math.sqrt(variance), generator=generator)


def _fans(w: torch.Tensor) -> tuple[int, int]:
    receptive = w[0][0].numel() if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive


# Each initialiser fills a weight of shape [fan_out, fan_in, ...] in place. The variances are
# the textbook ones: Glorot 2/(fan_in+fan_out), He 2/fan_in, LeCun 1/fan_in.
INITIALIZERS: dict[str, Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]] = {
    "glorot_uniform": lambda w, g: _uniform_(w, 2.0 / sum(_fans(w)), g),
    "glorot_normal": lambda w, g: _normal_(w, 2.0 / sum(_fans(w)), g),
    "he_uniform": lambda w, g: _uniform_(w, 2.0 / _fans(w)[0], g),
    "he_normal": lambda w, g: _normal_(w, 2.0 / _fans(w)[0], g),
    "lecun_normal": lambda w, g: _normal_(w, 1.0 / _fans(w)[0], g),
    "orthogonal": lambda w, g: nn.init.orthogonal_(w, generator=g),
}
INITIALIZER_ALIASES = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal",
                       "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal"}

REJECTED_INITIALIZERS = {
    "zeros": (
        "initializer='zeros' makes every unit of a layer compute the same function and receive "
        "the same gradient, so they stay identical forever (the symmetry problem); use 'auto' "
        "(He for ReLU-like activations, Glorot for tanh/sigmoid, LeCun for SELU)"
    ),
    "ones": (
        "initializer='ones' gives every unit the same weights, so they receive identical "
        "gradients and never differentiate (the symmetry problem); use 'auto'"
    ),
}


# The layers whose weights L1, L2, weight decay act on (not biases, norms, embeddings or
# adapters): one rule for a network alone (archtune.train.engines) and a stack of them
# (archtune.models.stacked), so that a stacked member's arithmetic stays its own.
# Layers defined elsewhere (TabM's shared BatchEnsemble weight and its k heads) say so with a
# class attribute ``penalised_weight = True``.
PENALISED_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)


def is_penalised(module: nn.Module) -> bool:
    """Whether L1, L2 and weight decay act on this layer's ``weight`` (`PENALISED_LAYERS`)."""
    return isinstance(module, PENALISED_LAYERS) or bool(getattr(module, "penalised_weight", False))


def canonical_activation(name: str) -> str:
    return ACTIVATION_ALIASES.get(name, name) if isinstance(name, str) else name


def canonical_initializer(name: str) -> str:
    return INITIALIZER_ALIASES.get(name, name) if isinstance(name, str) else name


def resolve_initializer(initializer: str, activation: str) -> str:
    """The concrete initialiser name: ``"auto"`` follows the activation."""
    if initializer == "auto":
        return ACTIVATIONS[activation].auto_init
    return initializer


def initialize_linear(
    layer: nn.Linear, initializer: str, generator: torch.Generator | None = None
) -> None:
    """Initialise a Linear layer's weight by name and zero its bias."""
    INITIALIZERS[initializer](layer.weight, generator)
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.zero_()


class ParametricActivation(nn.Module):
    """``x + alpha * (f(x) - x)`` with one learned ``alpha`` per unit, starting at 1 (so the
    layer starts as ``f``): the network can make a unit more linear where that helps
    (RealMLP's parametric activation, Holzmueller et al. 2024)."""

    def __init__(self, activation: nn.Module, width: int):
        super().__init__()
        self.activation = activation
        self.alpha = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * (self.activation(x) - x)


def make_activation(name: str, parametric: bool = False, width: int = 0) -> nn.Module:
    """The named activation; ``parametric`` wraps it in a `ParametricActivation` of ``width`` units."""
    activation = ACTIVATIONS[name].make()
    return ParametricActivation(activation, width) if parametric else activation


def make_norm(norm: str | None, width: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


def make_dropout(rate: float, activation: str) -> nn.Module:
    """Inverted dropout; AlphaDropout with SELU, which keeps its self-normalising property."""
    if rate <= 0:
        return nn.Identity()
    if activation == "selu":
        return nn.AlphaDropout(rate)
    return nn.Dropout(rate)
