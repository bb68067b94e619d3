"""TabM: an MLP of BatchEnsemble layers, k members in one network (Gorishniy, Kotelnikov and
Babenko, "TabM: Advancing Tabular Deep Learning with Parameter-Efficient Ensembling", ICLR
2025; yandex-research/tabm).

Each member sees the same input; every Linear layer's weight W is shared and each member k
owns rank-1 adapters and a bias: ``y = ((x * r_k) @ W.T) * s_k + b_k``. Only the first
layer's input adapters start random (random signs, or N(0, 1) with numeric embeddings); the
others start at one, and the biases start equal across members, so the members differ at
first only through the first adapters. Each member has its own output layer. Training
minimises the mean of the members' losses; prediction averages the members' probabilities
(classification) or values (regression), see `TabularNetwork`.

``arch_type="tabm-mini"`` (the paper's TabM-mini) keeps only the first layer's input adapters
``r_k``: ``y = (x * r_k) @ W.T + b``, every later layer a plain shared Linear; the members
differ through the input adapters and their output layers.

The paper's chunked initialisation of the first adapters (one random value per feature,
shared by a feature's embedding columns) is replaced by one value per input column, which
the paper's code calls a historical artefact.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from archtune.blocks import make_activation
from archtune.models.registry import register_model

if TYPE_CHECKING:
    from archtune.config import ModelConfig


class LinearBatchEnsemble(nn.Module):
    """A Linear layer shared by ``k`` members with per-member adapters: input [B, k, in] ->
    output [B, k, out]."""

    penalised_weight = True  # weight decay, L1 and L2 act on the shared weight (not the adapters)

    def __init__(self, fan_in: int, fan_out: int, k: int, generator: torch.Generator | None,
                 input_adapters: str = "ones"):
        super().__init__()
        bound = 1 / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=generator))
        if input_adapters == "random_signs":
            r = torch.bernoulli(torch.full((k, fan_in), 0.5), generator=generator) * 2 - 1
        elif input_adapters == "normal":
            r = torch.randn(k, fan_in, generator=generator)
        else:
            r = torch.ones(k, fan_in)
        self.r = nn.Parameter(r)
        self.s = nn.Parameter(torch.ones(k, fan_out))
        self.bias = nn.Parameter(torch.empty(fan_out).uniform_(-bound, bound, generator=generator).repeat(k, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x * self.r) @ self.weight.T) * self.s + self.bias


class ScaleEnsemble(nn.Module):
    """TabM-mini's input adapters: input [B, k, in] -> [B, k, in] scaled by one vector per
    member, ``x * r_k``."""

    def __init__(self, width: int, k: int, generator: torch.Generator | None, init: str):
        super().__init__()
        self.r = nn.Parameter(torch.randn(k, width, generator=generator) if init == "normal"
                              else torch.bernoulli(torch.full((k, width), 0.5), generator=generator) * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.r


class LinearEnsemble(nn.Module):
    """``k`` independent Linear layers: input [B, k, in] -> output [B, k, out]."""

    penalised_weight = True  # as a Linear head's weight

    def __init__(self, fan_in: int, fan_out: int, k: int, generator: torch.Generator | None = None):
        super().__init__()
        bound = 1 / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.empty(k, fan_in, fan_out).uniform_(-bound, bound, generator=generator))
        self.bias = nn.Parameter(torch.empty(k, fan_out).uniform_(-bound, bound, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bki,kio->bko", x, self.weight) + self.bias


class TabMBody(nn.Module):
    """[B, in] -> [B, k, width]: the input copied to k members, then BatchEnsemble blocks
    (Linear -> activation -> dropout)."""

    def __init__(self, layers: list[nn.Module], k: int):
        super().__init__()
        self.k = k
        self.layers = nn.Sequential(*layers)

    @property
    def ensemble_size(self) -> int:
        return self.k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.unsqueeze(1).expand(-1, self.k, -1))


@register_model("tabm")
def build_tabm(config: "ModelConfig", in_width: int, generator: torch.Generator | None) -> tuple[nn.Module, int]:
    """TabM's BatchEnsemble MLP with ``config.k`` members (``config.arch_type``: "tabm" or
    "tabm-mini"); the network's head becomes k heads."""
    k = config.k
    layers: list[nn.Module] = []
    width = in_width
    first_adapters = "normal" if config.numeric.kind else "random_signs"
    mini = config.arch_type == "tabm-mini"
    if mini:
        layers.append(ScaleEnsemble(width, k, generator, first_adapters))
    for i, size in enumerate(config.hidden_sizes):
        if mini:
            linear = nn.Linear(width, size)
            bound = 1 / math.sqrt(width)  # as LinearBatchEnsemble's shared weight
            with torch.no_grad():
                linear.weight.uniform_(-bound, bound, generator=generator)
                linear.bias.uniform_(-bound, bound, generator=generator)
        else:
            linear = LinearBatchEnsemble(width, size, k, generator, first_adapters if i == 0 else "ones")
        layers += [linear, make_activation(config.activation, config.parametric_activation, size),
                   nn.Dropout(config.dropout)]
        width = size
    return TabMBody(layers, k), width


__all__ = ["LinearBatchEnsemble", "LinearEnsemble", "ScaleEnsemble", "TabMBody", "build_tabm"]
