"""What a trial reports each epoch: its validation score to the pruner, and the end of its
training when the pruner, the time budget or a dead network says so.

`EpochReporter` is the training callback `archtune.tune.tuner.Search` gives each trial; it
raises `Pruned` when the pruner stops the trial, and `DeadNetworkError` when every validation
row gets the same output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from archtune.errors import DeadNetworkError
from archtune.train.callbacks import Callback
from archtune.transfer.copy import is_output

# A validation output spread at or below this is one value for every row: a dead network.
DEAD_OUTPUT_STD = 1e-9


class Pruned(Exception):
    """Raised inside training when the pruner stops a trial."""

    def __init__(self, epoch: int):
        self.epoch = epoch


class EpochReporter(Callback):
    """Hands each epoch's validation score to ``report(epoch, value) -> keep_going``, and ends
    training (keeping the best epoch so far) once ``out_of_time()`` says so."""

    def __init__(self, key: str, sign: float, report: Callable[[int, float], bool],
                 out_of_time: Callable[[], bool] | None = None):
        self.key = key
        self.sign = sign
        self.report = report
        self.out_of_time = out_of_time
        self.stopped_by_budget = False
        self.seconds = 0.0  # training time of this trial's epochs (its share, in a cohort)
        self.epochs = 0
        self.records: list[dict[str, Any]] = []  # every epoch's logs, for experiment tracking

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.records.append(dict(logs))
        self.seconds += float(logs.get("seconds") or 0.0)
        self.epochs += 1
        spread = logs.get("val_output_std")
        if spread is not None and spread <= DEAD_OUTPUT_STD and not _untrained_new_head(trainer):
            # Every validation row gets the same output: a whole layer is dead (no gradient
            # reaches the layers below it) and no further epoch can change that.
            raise DeadNetworkError(f"the network predicts the same value for every validation row at epoch "
                                   f"{logs['epoch']}: a whole layer of units is inactive (dead ReLUs, usually from "
                                   "a too-high learning rate)")
        value = logs.get(self.key)
        if value is not None and math.isfinite(value) and not self.report(logs["epoch"], self.sign * value):
            raise Pruned(logs["epoch"])
        if self.out_of_time is not None and self.out_of_time():
            trainer.stop_training = True
            self.stopped_by_budget = True


def _untrained_new_head(trainer: Any) -> bool:
    """Whether the network's output layers are all still zero: a new head (a fit from a trained
    network starts it at zero, archtune.transfer.copy) that no step has moved yet gives every
    row the same output without any dead unit. It happens when an epoch is one step and the
    schedule starts at rate 0 (coslog, RealMLP's): a few labelled rows, fine-tuned."""
    module = getattr(trainer, "module", None)
    if module is None:
        return False
    heads = [p for name, p in module.named_parameters() if is_output(name)]
    return bool(heads) and not any(bool(p.detach().any()) for p in heads)


__all__ = ["DEAD_OUTPUT_STD", "EpochReporter", "Pruned"]
