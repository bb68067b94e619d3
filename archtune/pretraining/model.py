"""The network while it pretrains: an archtune network wrapped with its pretext task, so
that archtune's `Trainer` trains it like any supervised network."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

EVAL_SEED_OFFSET = 1  # the validation noise draws from a stream of its own
# The pretext head's task: "regression" keeps raw outputs (TabM averages its members' outputs).
HEAD_TASK = "regression"


class PretextNetwork(nn.Module):
    """``network`` (a `TabularNetwork` whose ``head`` is the pretext head) with ``task``.

    In training mode each forward pass draws fresh noise (corruption masks, partner rows) from
    a generator seeded with ``seed``; in evaluation mode from a second generator that is reset
    every time the module is switched to evaluation, so every validation pass sees the same
    corrupted rows and validation losses of different epochs compare.
    """

    def __init__(self, network: nn.Module, task: Any, seed: int):
        super().__init__()
        self.network = network
        self.task = task
        self.seed = int(seed)
        self._train_generator: torch.Generator | None = None
        self._eval_generator: torch.Generator | None = None

    def _generator(self, device: torch.device) -> torch.Generator:
        if self.training:
            if self._train_generator is None or self._train_generator.device != device:
                self._train_generator = torch.Generator(device=device).manual_seed(self.seed)
            return self._train_generator
        if self._eval_generator is None or self._eval_generator.device != device:
            self._eval_generator = torch.Generator(device=device).manual_seed(self.seed + EVAL_SEED_OFFSET)
        return self._eval_generator

    def train(self, mode: bool = True) -> "PretextNetwork":
        super().train(mode)
        if not mode:
            self._eval_generator = None  # reset: the next validation pass draws the same noise
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.task.forward(self.network, x, self._generator(x.device))

    def hidden_linears(self) -> list[nn.Linear]:
        """The network's hidden Linear layers (what max_norm constrains), not the head."""
        return self.network.hidden_linears()


__all__ = ["PretextNetwork"]
