"""Training: the core loop (one network or a stacked cohort), its callbacks, optimisers and
learning-rate schedules."""

from archtune.train.callbacks import Callback, Checkpoint, History, ProgressBar
from archtune.train.loop import Trainer
from archtune.train.state import TrainingState
from archtune.train.tracking import MLflowLogger, TensorBoardLogger

__all__ = ["Callback", "Checkpoint", "History", "MLflowLogger", "ProgressBar", "TensorBoardLogger", "Trainer",
           "TrainingState"]
