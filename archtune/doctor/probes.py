"""Measurements the detectors read: gradients, updates and losses during training, and the
pre-activations of every hidden unit on a batch of rows.

`TrainingRecorder` is a Trainer callback for the instrumented run of `diagnose`; the probe
functions work on any network, fitted or not. Everything is collected as plain floats so
that the detectors are pure functions of numbers (and testable without a network).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from archtune.train.callbacks import Callback

# Activations whose units die (zero output and zero gradient for every negative input) and
# those that saturate (flat for large inputs). LeakyReLU, PReLU, ELU and the rest keep a
# gradient everywhere and are checked for neither.
DYING = (nn.ReLU, nn.ReLU6)
SATURATING = (nn.Sigmoid, nn.Tanh, nn.Hardsigmoid, nn.Hardtanh, nn.Softsign)
# Beyond this pre-activation sigmoid's slope is below 0.018 (tanh's below 0.0014): the unit
# passes almost no gradient back.
SATURATION_Z = 4.0
PROBE_ROWS = 2048
RATIO_EVERY = 10  # after the first epoch (every step), update ratios are sampled this often


def weight_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The network's Linear and convolution layers from input to output, named "hidden layer 1", ...,
    "output layer"; skip projections are left out (they carry the identity path, not the
    depth whose gradient flow is in question)."""
    linears = [m for name, m in module.named_modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and not name.endswith((".skip", "wide_head"))]
    return [(f"hidden layer {i + 1}" if i < len(linears) - 1 else "output layer", m) for i, m in enumerate(linears)]


def _rms(t: torch.Tensor) -> float:
    return float(t.detach().double().pow(2).mean().sqrt())


@dataclass
class TrainingRecord:
    """What an instrumented run saw, step by step."""

    layers: list[str] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # training loss of each step
    grad_rms: list[list[float]] = field(default_factory=list)  # [step][layer] gradient RMS
    update_ratios: list[list[float]] = field(default_factory=list)  # [sample][layer] |dW| / |W|
    update_steps: list[int] = field(default_factory=list)  # the step of each sample
    nonfinite_step: int | None = None  # first step with a NaN/inf loss or gradient
    steps_per_epoch: int = 0
    learning_rate: float = 0.0


class TrainingRecorder(Callback):
    """Records per-step loss, per-layer gradient RMS and sampled update-to-weight ratios.

    The trainer calls ``on_batch_end`` after the optimiser step, when the step's gradients are
    still in ``.grad`` (they are cleared at the start of the next step). ``loss_fn`` must be
    wrapped by `recording_loss` so that the step's loss is seen without an extra forward pass.
    """

    def __init__(self, module: nn.Module):
        self.record = TrainingRecord()
        self._layers = weight_layers(module)
        self.record.layers = [name for name, _ in self._layers]
        self._snapshot: list[torch.Tensor] | None = None
        self.pending: list[torch.Tensor] = []
        self._losses: list[torch.Tensor] = []
        self._grads: list[torch.Tensor] = []

    def on_train_begin(self, trainer: Any) -> None:
        self.record.learning_rate = trainer.config.learning_rate

    def on_batch_end(self, trainer: Any, step: int) -> None:
        if self.pending:
            self._losses.append(self.pending[-1])
            self.pending.clear()
        grads = [m.weight.grad if m.weight.grad is not None else torch.zeros_like(m.weight)
                 for _, m in self._layers]
        # One small tensor per step; read back once at the end (no host sync per step).
        self._grads.append(torch.stack([g.detach().double().pow(2).mean().sqrt() for g in grads]))
        weights = [m.weight.detach() for _, m in self._layers]
        if self._snapshot is not None:
            self.record.update_ratios.append([
                float((w - s).norm() / s.norm().clamp_min(1e-12)) for w, s in zip(weights, self._snapshot)])
            self.record.update_steps.append(step)
            self._snapshot = None
        # Every step of the first epoch (a too-high rate does its damage in the first steps),
        # then a sample every RATIO_EVERY steps.
        if not self.record.steps_per_epoch or step % RATIO_EVERY == 0:
            self._snapshot = [w.clone() for w in weights]

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.pending.clear()  # validation losses are not training steps
        if not self.record.steps_per_epoch:
            self.record.steps_per_epoch = len(self._losses)

    def on_train_end(self, trainer: Any) -> None:
        self.record.losses = [float(v) for v in torch.stack(self._losses)] if self._losses else []
        self.record.grad_rms = torch.stack(self._grads).tolist() if self._grads else []
        for i, (loss, grads) in enumerate(zip(self.record.losses, self.record.grad_rms)):
            if not math.isfinite(loss) or not all(math.isfinite(g) for g in grads):
                self.record.nonfinite_step = i
                break


def recording_loss(loss_fn: Any, recorder: TrainingRecorder) -> Any:
    """``loss_fn`` that also hands each loss it computes to ``recorder``."""

    def wrapped(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(outputs, targets)
        recorder.pending.append(loss.detach())
        return loss

    return wrapped


@dataclass
class UnitStats:
    """Pre-activation statistics of one hidden activation layer over a batch of rows."""

    layer: str
    kind: str  # the activation's class name
    units: int
    dead: int | None  # ReLU units whose pre-activation was <= 0 on every row (None: not a ReLU)
    saturated_share: float | None  # share of (row, unit) pre-activations beyond +-4 (sigmoid/tanh)


@torch.no_grad()
def unit_stats(module: nn.Module, X: torch.Tensor, rows: int = PROBE_ROWS) -> list[UnitStats]:
    """Run up to ``rows`` rows through ``module`` in evaluation mode and look at what each
    activation layer receives."""
    seen: list[tuple[str, nn.Module, torch.Tensor]] = []
    handles = []
    activations = [m for m in module.modules() if isinstance(m, DYING + SATURATING)]
    for i, m in enumerate(activations):
        handles.append(m.register_forward_hook(
            lambda mod, inputs, output, name=f"hidden layer {i + 1}": seen.append((name, mod, inputs[0].detach()))))
    was_training = module.training
    module.eval()
    try:
        module(X[:rows])
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    stats = []
    for name, m, z in seen:
        z = z.double()
        # A convolution's unit is a channel (dim 1), whatever its position: a channel that is
        # off on a blank background is not dead if it fires anywhere.
        per_unit = z.transpose(0, 1).reshape(z.shape[1], -1) if z.ndim > 2 else z.T
        dead = int((per_unit.max(dim=1).values <= 0).sum()) if isinstance(m, DYING) else None
        z = z.reshape(len(z), -1)
        saturated = float((z.abs() > SATURATION_Z).double().mean()) if isinstance(m, SATURATING) else None
        stats.append(UnitStats(name, type(m).__name__, per_unit.shape[0], dead, saturated))
    return stats


def gradient_rms(module: nn.Module, loss_fn: Any, X: torch.Tensor, y: torch.Tensor, batch_size: int,
                 batches: int = 5) -> list[list[float]]:
    """Per-layer weight-gradient RMS on a few mini-batches at the current weights, without
    changing them: the gradient flow of a fitted network."""
    layers = weight_layers(module)
    was_training = module.training
    module.train()
    result = []
    try:
        for b in range(batches):
            xb = X[b * batch_size:(b + 1) * batch_size]
            if len(xb) < 2:
                break
            module.zero_grad(set_to_none=True)
            loss_fn(module(xb), y[b * batch_size:(b + 1) * batch_size]).backward()
            result.append([_rms(m.weight.grad) if m.weight.grad is not None else 0.0 for _, m in layers])
    finally:
        module.zero_grad(set_to_none=True)
        module.train(was_training)
    return result


def duplicate_units(module: nn.Module, tolerance: float = 1e-4) -> list[tuple[str, int, int]]:
    """For each hidden Linear layer: (name, units, units that duplicate another unit).

    Two units are duplicates when their incoming weights and bias agree to ``tolerance``
    relative to the layer's weight scale: they compute the same function, get the same
    gradient, and stay copies of each other (the symmetry that random initialisation breaks).
    """
    result = []
    layers = weight_layers(module)[:-1]  # the output layer's units are different targets
    for name, m in layers:
        weight = m.weight.detach().reshape(len(m.weight), -1)  # a convolution's filters, flattened
        bias = m.bias.detach() if m.bias is not None else torch.zeros(len(weight))
        rows = torch.cat([weight, bias.unsqueeze(1)], dim=1).double()
        if len(rows) < 2:
            continue
        scale = rows.abs().max().clamp_min(1e-12)
        keys = torch.round(rows / (scale * tolerance))
        _, inverse, counts = torch.unique(keys, dim=0, return_inverse=True, return_counts=True)
        copies = int((counts[inverse] > 1).sum())
        result.append((name, len(rows), copies))
    return result
