"""The standard callbacks; the protocol they follow (`Callback`, `History`) is in
archtune.train.state and importable from here too.

Every hook receives the `TrainingState` of the member it belongs to (archtune.train.state),
the same object whether the network trains alone or in a cohort: a callback may read
``state.module``, ``state.config``, ``state.epoch``, ``state.history`` and
``state.metric_name``, and stop its member by setting ``state.stop_training = True``.
Early stopping, divergence and the learning-rate schedule are part of the core, not callbacks.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from archtune.train.state import Callback, History, TrainingState


class StopAtDeadline(Callback):
    """Ends training at the end of the first epoch past ``deadline`` (a `time.monotonic`
    value; None never stops), keeping the best epoch so far; ``stopped_at`` is that epoch."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self.stopped_at: int | None = None

    def on_epoch_end(self, trainer: TrainingState, logs: dict[str, Any]) -> None:
        if (self.deadline is not None and time.monotonic() >= self.deadline
                and logs["epoch"] < trainer.config.max_epochs):
            trainer.stop_training = True
            self.stopped_at = logs["epoch"]


class Checkpoint(Callback):
    """Writes the best weights so far to ``path`` (safetensors, atomically) on each improvement."""

    def __init__(self, path: str | Path, monitor: str = "val_loss"):
        self.path = Path(path)
        self.monitor = monitor
        self.best = math.inf

    def on_train_begin(self, trainer: TrainingState) -> None:
        self.best = math.inf

    def on_epoch_end(self, trainer: TrainingState, logs: dict[str, Any]) -> None:
        from archtune.files import write_weights

        value = logs.get(self.monitor, logs["train_loss"])
        # The logged loss averages the epoch's batches, each taken before its step: the last
        # step can leave non-finite weights behind a finite loss. Those are never the best.
        if math.isfinite(value) and value < self.best and _all_finite(trainer.module):
            self.best = value
            write_weights(trainer.module, self.path)


def _all_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in module.state_dict().values() if t.is_floating_point())


class ProgressBar(Callback):
    """Progress on stderr: epoch, loss, validation metric and time left. A live rich bar on a
    terminal; piped or redirected (``archtune fit ... 2>&1 | tee log``), one plain line per
    epoch at most every `PLAIN_INTERVAL` seconds (and the last), since a bar drawn into a file
    is cut to the console's guessed width."""

    PLAIN_INTERVAL = 2.0

    def __init__(self, description: str = "training") -> None:
        self.description = description
        self._progress: Any = None
        self._task: Any = None
        self._plain: Any = None  # the stream of plain lines, when stderr is not a terminal
        self._last_line = 0.0

    def on_train_begin(self, trainer: TrainingState) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self._start = time.perf_counter()
        # A later phase of a fine-tuning numbers its epochs after the earlier phase's.
        self._total = getattr(trainer, "epoch_offset", 0) + trainer.config.max_epochs
        if not console.is_terminal:
            self._plain = console.file
            return
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("epoch {task.completed:.0f}/{task.total:.0f}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=self._total, status="")

    def on_epoch_end(self, trainer: TrainingState, logs: dict[str, Any]) -> None:
        parts = [f"loss {logs['train_loss']:.4g}"]
        if "val_loss" in logs:
            parts.append(f"val_loss {logs['val_loss']:.4g}")
        metric = trainer.metric_name
        if f"val_{metric}" in logs:
            parts.append(f"val_{metric} {logs[f'val_{metric}']:.4f}")
        if self._plain is not None:
            now = time.perf_counter()
            if now - self._last_line >= self.PLAIN_INTERVAL or logs["epoch"] >= self._total:
                self._last_line = now
                self._plain.write(f"{self.description}: epoch {logs['epoch']}/{self._total}  {'  '.join(parts)}  "
                                  f"{now - self._start:.1f}s\n")
                self._plain.flush()
            return
        self._progress.update(self._task, completed=logs["epoch"], status="  ".join(parts))

    def on_train_end(self, trainer: TrainingState) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


__all__ = ["Callback", "Checkpoint", "History", "ProgressBar", "StopAtDeadline"]
