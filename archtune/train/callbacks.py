"""The callback protocol (four hooks, all no-ops) and the standard callbacks.

A callback may read the trainer's state (``trainer.module``, ``trainer.epoch``,
``trainer.history``) and stop training by setting ``trainer.stop_training = True``.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from archtune.errors import TrainingDivergedError

if TYPE_CHECKING:
    from archtune.train.loop import Trainer


class Callback:
    """Base class: override the hooks you need."""

    def on_train_begin(self, trainer: "Trainer") -> None:
        pass

    def on_epoch_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None:
        pass

    def on_batch_end(self, trainer: "Trainer", step: int) -> None:
        pass

    def on_train_end(self, trainer: "Trainer") -> None:
        pass


class History(Callback):
    """Keeps each epoch's logs: losses, validation metric, learning rate, seconds."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def on_train_begin(self, trainer: "Trainer") -> None:
        self.records = []

    def on_epoch_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None:
        self.records.append(dict(logs))


class TerminateOnNaN(Callback):
    """Stops training at the first epoch whose loss is NaN or infinite, and says why.

    With ``limit`` set, a finite loss above it also counts as divergence: adaptive optimisers
    (Adam and kin) bound each step, so an excessive learning rate sends the loss to 1e8 and
    beyond without ever reaching NaN.
    """

    def __init__(self, limit: float | None = None):
        self.limit = limit

    def on_epoch_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None:
        lr = trainer.config.learning_rate
        advice = f"lower learning_rate (now {lr:g}) or set gradient_clip"
        for key in ("train_loss", "val_loss"):
            value = logs.get(key)
            if value is not None and not math.isfinite(value):
                raise TrainingDivergedError(f"training diverged at epoch {logs['epoch']}: {key} became {value}; {advice}")
        value = logs["train_loss"]
        if self.limit is not None and value > self.limit:
            raise TrainingDivergedError(
                f"training diverged at epoch {logs['epoch']}: train_loss exploded to {value:.4g}, over 100 times "
                f"the loss of a constant prediction; {advice}"
            )


class EarlyStopping(Callback):
    """Stops when the monitored loss has not improved by ``min_delta`` for ``patience`` epochs,
    and restores the weights of the best epoch at the end of training."""

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best: bool = True):
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best = restore_best
        self.best = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self._stale = 0

    def on_train_begin(self, trainer: "Trainer") -> None:
        self.best, self.best_epoch, self.best_state, self._stale = math.inf, 0, None, 0

    def on_epoch_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if value is None:
            value = logs["train_loss"]
        if math.isfinite(value) and value < self.best - self.min_delta:
            self.best, self.best_epoch, self._stale = value, logs["epoch"], 0
            if self.restore_best:
                self.best_state = copy.deepcopy(trainer.module.state_dict())
            return
        self._stale += 1
        if self._stale >= self.patience:
            trainer.stop_training = True

    def on_train_end(self, trainer: "Trainer") -> None:
        if self.restore_best and self.best_state is not None:
            trainer.module.load_state_dict(self.best_state)
        trainer.best_epoch = self.best_epoch


class Checkpoint(Callback):
    """Writes the best weights so far to ``path`` (safetensors, atomically) on each improvement."""

    def __init__(self, path: str | Path, monitor: str = "val_loss"):
        self.path = Path(path)
        self.monitor = monitor
        self.best = math.inf

    def on_train_begin(self, trainer: "Trainer") -> None:
        self.best = math.inf

    def on_epoch_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None:
        from archtune.files import write_weights

        value = logs.get(self.monitor, logs["train_loss"])
        # The logged loss averages the epoch's batches, each taken before its step: the last
        # step can leave non-finite weights behind a finite loss. Those are never the best.
        if math.isfinite(value) and value < self.best and _all_finite(trainer.module):
            self.best = value
            write_weights(trainer.module, self.path)


def _all_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in module.state_dict().values() if t.is_floating_point())


class LRScheduler(Callback):
    """Sets each step's learning rate from the trainer's `LRSchedule` (warm-up included)."""

    def on_train_begin(self, trainer: "Trainer") -> None:
        self._apply(trainer, 0)

    def on_batch_end(self, trainer: "Trainer", step: int) -> None:
        self._apply(trainer, step + 1)

    def on_epoch_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None:
        trainer.schedule.epoch_end(logs.get("val_loss", logs["train_loss"]))

    @staticmethod
    def _apply(trainer: "Trainer", step: int) -> None:
        lr = trainer.config.learning_rate * trainer.schedule.factor(step)
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr


class ProgressBar(Callback):
    """A rich progress bar on stderr: epoch, loss, validation metric and time left."""

    def __init__(self, description: str = "training") -> None:
        self.description = description
        self._progress: Any = None
        self._task: Any = None

    def on_train_begin(self, trainer: "Trainer") -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("epoch {task.completed:.0f}/{task.total:.0f}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=trainer.config.max_epochs, status="")
        self._start = time.perf_counter()

    def on_epoch_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None:
        parts = [f"loss {logs['train_loss']:.4g}"]
        if "val_loss" in logs:
            parts.append(f"val_loss {logs['val_loss']:.4g}")
        metric = trainer.metric_name
        if f"val_{metric}" in logs:
            parts.append(f"val_{metric} {logs[f'val_{metric}']:.4f}")
        self._progress.update(self._task, completed=logs["epoch"], status="  ".join(parts))

    def on_train_end(self, trainer: "Trainer") -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
