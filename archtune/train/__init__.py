"""Training: the loop, its callbacks, optimisers and learning-rate schedules."""

from archtune.train.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    History,
    LRScheduler,
    ProgressBar,
    TerminateOnNaN,
)
from archtune.train.loop import Trainer

__all__ = [
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "LRScheduler",
    "ProgressBar",
    "TerminateOnNaN",
    "Trainer",
]
