"""Optimisers by name, and learning-rate schedules as pure functions of the step.

Schedules are computed here rather than with torch.optim.lr_scheduler so that the same
arithmetic can drive one network or a stacked population with a learning rate per member.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from archtune.config import TrainConfig


def _optimizer_class(config: TrainConfig) -> tuple[type[torch.optim.Optimizer], dict]:
    """The torch optimiser class of ``config.optimizer`` and its per-group options.

    ``momentum`` is SGD's momentum for "momentum"/"nesterov" and Adam's beta1 for the Adam
    family. Weight decay is not passed here: the trainer applies it decoupled (AdamW-style)
    to weights only, for every optimiser alike.
    """
    lr, m = config.learning_rate, config.momentum
    name = config.optimizer
    if name == "sgd":
        return torch.optim.SGD, {"lr": lr}
    if name == "momentum":
        return torch.optim.SGD, {"lr": lr, "momentum": m}
    if name == "nesterov":
        return torch.optim.SGD, {"lr": lr, "momentum": m, "nesterov": m > 0}
    if name == "adagrad":
        return torch.optim.Adagrad, {"lr": lr}
    if name == "rmsprop":
        return torch.optim.RMSprop, {"lr": lr}
    if name in ("adam", "adamw"):
        return torch.optim.Adam, {"lr": lr, "betas": (m, config.beta2)}
    if name == "nadam":
        return torch.optim.NAdam, {"lr": lr, "betas": (m, config.beta2)}
    raise AssertionError(f"unreachable: optimizer {name!r} passed validation")


def _kernels(cls: type[torch.optim.Optimizer], params: list[torch.Tensor]) -> dict[str, bool]:
    """``fused=True`` where torch has a fused kernel for the optimiser and the parameters'
    device, else ``foreach=True``. Fused kernels update all of a group's parameters in one
    call: on small networks the default per-parameter loop is about a quarter of each step
    (measured in bench/fit_overhead.py)."""
    devices = {p.device.type for p in params}
    fused = cls in (torch.optim.SGD, torch.optim.Adagrad, torch.optim.Adam)
    if fused and devices <= {"cpu", "cuda"} and all(p.dtype.is_floating_point for p in params):
        return {"fused": True}
    return {"foreach": True}


def make_optimizer(config: TrainConfig, params: Iterable[torch.nn.Parameter] | Iterable[dict]) -> torch.optim.Optimizer:
    """The optimiser named by ``config.optimizer`` over ``params`` (one network): parameters,
    or parameter groups (dicts with "params", and keys of their own that torch keeps)."""
    params = list(params)
    cls, options = _optimizer_class(config)
    flat = [p for group in params for p in group["params"]] if params and isinstance(params[0], dict) else params
    return cls(params, **options, **_kernels(cls, flat))


def make_member_optimizer(configs: Sequence[TrainConfig], params: Sequence[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """One optimiser for a cohort: a param group per member (``params[k]`` holds member k's
    weights), each with its member's rate and momentum. The members share the optimiser
    family (one torch class)."""
    classes = [_optimizer_class(c) for c in configs]
    cls = classes[0][0]
    groups = [{"params": [p], **options} for p, (_, options) in zip(params, classes)]
    return cls(groups, **_kernels(cls, list(params)))


def regularisation_factor(kind: str, progress: float) -> float:
    """Multiplier of the dropout rate or weight decay at ``progress`` (0..1) of training:
    "constant" 1; "flat_cos" 1 for the first half, then a half cosine to 0 (RealMLP)."""
    if kind == "flat_cos" and progress >= 0.5:
        return 0.5 * (1.0 + math.cos(math.pi * (2 * progress - 1)))
    return 1.0


class LRSchedule:
    """Learning-rate multiplier as a function of the global step, with linear warm-up.

    - constant: 1
    - step: x0.1 at 50% and again at 75% of training
    - exponential: decays to 1% of the base rate by the last epoch
    - cosine: half a cosine from 1 to 0
    - one_cycle: rises from 1/25 to 1 over the first 30%, then a cosine down to 1/25e4;
      it has its own warm-up, so ``warmup_epochs`` is ignored for it (and for coslog)
    - plateau: halves the rate when the monitored loss has not improved for ``patience``
      epochs (stateful: call `epoch_end` with the monitored value)
    - coslog: RealMLP's "coslog4", ``0.5 * (1 - cos(2 pi log2(1 + 15 p)))``: four cosine cycles
      on a log time axis, starting and ending at 0 (Holzmueller et al. 2024)
    """

    def __init__(self, kind: str, steps_per_epoch: int, max_epochs: int, warmup_epochs: int,
                 plateau_patience: int = 5, min_delta: float = 0.0):
        self.kind = kind
        self.total = max(1, steps_per_epoch * max_epochs)
        # one_cycle and coslog rise from (near) zero by themselves: no separate warm-up.
        self.warmup = 0 if kind in ("one_cycle", "coslog") else min(self.total - 1, steps_per_epoch * warmup_epochs)
        self.plateau_patience = max(1, plateau_patience)
        self.min_delta = min_delta
        self.plateau_factor = 1.0
        self._best = math.inf
        self._stale = 0

    def factor(self, step: int) -> float:
        """Multiplier of the base learning rate for optimisation step ``step`` (0-based)."""
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        p = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        kind = self.kind
        if kind == "constant":
            return 1.0
        if kind == "plateau":
            return self.plateau_factor
        if kind == "step":
            return 0.1 ** ((p >= 0.5) + (p >= 0.75))
        if kind == "exponential":
            return 0.01**p
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * p))
        if kind == "coslog":
            return 0.5 * (1.0 - math.cos(2 * math.pi * math.log2(1 + 15 * p)))
        if kind == "one_cycle":
            start, end, peak = 1 / 25, 1 / 25e4, 0.3
            if p < peak:
                return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * p / peak))
            return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * (p - peak) / (1 - peak)))
        raise AssertionError(f"unreachable: schedule {kind!r} passed validation")

    def epoch_end(self, monitored: float) -> None:
        if self.kind != "plateau" or not math.isfinite(monitored):
            return
        if monitored < self._best - self.min_delta:
            self._best, self._stale = monitored, 0
            return
        self._stale += 1
        if self._stale >= self.plateau_patience:
            self.plateau_factor *= 0.5
            self._stale = 0
