"""One member's training as its callbacks see it: `TrainingState`, and the `Callback` protocol
(four hooks, all no-ops) whose hooks receive it, with `History`, which every state keeps.

The state and the protocol refer to each other, so they live together here, with the `Engine`
protocol the state reads its member's weights through and `divergence`, which the state checks
each epoch; the loop that drives them is archtune.train.core, the standard callbacks are in
archtune.train.callbacks. A callback may read ``state.module``, ``state.config``,
``state.epoch``, ``state.history`` and ``state.metric_name``, and stop its member by setting
``state.stop_training = True``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from archtune.config import TrainConfig
from archtune.errors import TrainingDivergedError
from archtune.train.batches import Rows
from archtune.train.optim import LRSchedule


class Engine(Protocol):
    """How a step is taken for the members still in training (see archtune.train.engines)."""

    has_batchnorm: bool

    def begin(self) -> None: ...

    def train_mode(self, training: bool) -> None: ...

    def step(self, xb: torch.Tensor, yb: torch.Tensor, lrs: list[float],
             wb: torch.Tensor | None = None) -> torch.Tensor: ...

    def evaluate(self, X: Rows, y: torch.Tensor,
                 w: torch.Tensor | None = None) -> tuple[list[float], list[float], list[float]]: ...

    def snapshot(self, position: int) -> dict[str, torch.Tensor]: ...

    def member_module(self, position: int) -> torch.nn.Module: ...

    def remove(self, keep: list[int]) -> None: ...

    def regularise(self, dropout: list[float], weight_decay: list[float]) -> None: ...


class Callback:
    """Base class: override the hooks you need."""

    def on_train_begin(self, trainer: TrainingState) -> None:
        pass

    def on_epoch_end(self, trainer: TrainingState, logs: dict[str, Any]) -> None:
        pass

    def on_batch_end(self, trainer: TrainingState, step: int) -> None:
        pass

    def on_train_end(self, trainer: TrainingState) -> None:
        pass


class History(Callback):
    """Keeps each epoch's logs: losses, validation metric, learning rate, seconds."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def on_train_begin(self, trainer: TrainingState) -> None:
        self.records = []

    def on_epoch_end(self, trainer: TrainingState, logs: dict[str, Any]) -> None:
        self.records.append(dict(logs))


class TrainingState:
    """One member's training, as its callbacks see it (alone, the member is the whole run).

    Attributes
    ----------
    index : int
        The member's position in its cohort (0 when trained alone).
    config : TrainConfig
    metric_name : str
        The validation metric's name (``val_<metric_name>`` in the logs).
    epoch : int
        The last finished epoch (1-based; after ``epoch_offset`` epochs of an earlier phase).
    history : History
        ``history.records``: one dict of logs per epoch.
    best_epoch : int
        The epoch whose weights are the result: the best validation loss with early stopping,
        otherwise the last epoch.
    schedule : LRSchedule
    lr : float
        The learning rate of the next step.
    stop_training : bool
        Set it in a callback to end this member's training after the current epoch.
    status : str
        "running", then "complete", "diverged" or "stopped" (a callback raised: ``error``); or,
        when an exception leaves the training loop (``error``, as ``on_train_end`` sees it),
        "failed" (an Exception) or "interrupted" (KeyboardInterrupt, SystemExit).
    """

    def __init__(self, index: int, config: TrainConfig, metric_name: str, callbacks: Sequence[Callback],
                 steps_per_epoch: int, engine: Engine):
        self.index = index
        self.config = config
        self.metric_name = metric_name
        self.callbacks = list(callbacks)
        self.schedule = LRSchedule(config.lr_schedule, steps_per_epoch, config.max_epochs, config.warmup_epochs,
                                   plateau_patience=max(1, config.patience // 2), min_delta=config.min_delta)
        self.lr = config.learning_rate * self.schedule.factor(0)
        self.history = History()
        self.epoch = 0
        self.best_epoch = 0
        self.stop_training = False
        self.status = "running"
        self.error: BaseException | None = None
        self.best = math.inf
        self.stale = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.position = index  # where the member sits in the engine (it changes as members leave)
        self.epoch_offset = 0  # epochs of an earlier phase: this run's are numbered after them
        self._engine = engine

    @property
    def module(self) -> torch.nn.Module:
        """The member's network with its current weights."""
        return self._engine.member_module(self.position)

    def after_step(self, step: int) -> None:
        self.lr = self.config.learning_rate * self.schedule.factor(step)

    def end_epoch(self, logs: dict[str, Any], divergence_limit: float | None, interrupted: bool) -> bool:
        """Record the epoch; True when the member leaves (done, diverged or stopped)."""
        cfg = self.config
        self.epoch = logs["epoch"]
        self.history.on_epoch_end(self, logs)
        self.error = divergence(logs, divergence_limit, cfg.learning_rate)
        if self.error is not None:
            self.status = "diverged"
            return True
        monitored = logs.get("val_loss", logs["train_loss"])
        if math.isfinite(monitored) and monitored < self.best - cfg.min_delta:
            self.best, self.stale = monitored, 0
            if cfg.early_stopping:
                self.best_epoch = self.epoch
                self.best_state = self._engine.snapshot(self.position)
        else:
            self.stale += 1
        if not cfg.early_stopping:
            self.best_epoch = self.epoch
        self.schedule.epoch_end(monitored)
        try:
            for cb in self.callbacks:
                cb.on_epoch_end(self, logs)
        except Exception as exc:  # a pruner's signal, or a callback's own failure, ends this member
            self.status, self.error = "stopped", exc
            return True
        if (self.epoch - self.epoch_offset >= cfg.max_epochs or self.stop_training or interrupted
                or (cfg.early_stopping and self.stale >= cfg.patience)):
            self.status = "complete"
            return True
        return False

    def result_state(self) -> dict[str, torch.Tensor]:
        """The weights this member ends with: its best epoch's with early stopping (when one
        was finite), else its current ones."""
        if self.config.early_stopping and self.best_state is not None:
            return self.best_state
        return self._engine.snapshot(self.position)


def divergence(logs: dict[str, Any], limit: float | None, learning_rate: float) -> TrainingDivergedError | None:
    """NaN/inf, or (with ``limit``) a training loss above it. Adaptive optimisers (Adam and kin)
    bound each step, so an excessive learning rate sends the loss to 1e8 and beyond without
    ever reaching NaN: the limit catches that."""
    advice = f"lower learning_rate (now {learning_rate:g}) or set gradient_clip"
    for key in ("train_loss", "val_loss"):
        value = logs.get(key)
        if value is not None and not math.isfinite(value):
            return TrainingDivergedError(f"training diverged at epoch {logs['epoch']}: {key} became {value}; {advice}")
    if limit is not None and logs["train_loss"] > limit:
        return TrainingDivergedError(
            f"training diverged at epoch {logs['epoch']}: train_loss exploded to {logs['train_loss']:.4g}, over "
            f"100 times the loss of a constant prediction; {advice}")
    return None


__all__ = ["Callback", "Engine", "History", "TrainingState", "divergence"]
