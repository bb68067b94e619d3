"""The task a search and its models are for, as a type: classification or regression.

One `Task` object per task owns what differs between them above a single network: the
estimator trials train (`NeuralClassifier` / `NeuralRegressor`), the name of the search's
estimator (`AutoNeuralClassifier` / `AutoNeuralRegressor`), the default scorer, the validation metric
the pruner watches, the target encoder and the ensemble class. A search decides its task once
(`archtune.tune.config.SearchConfig.task`); a fitted model's task is read with scikit-learn's
`is_classifier` (`task_of`), never by probing for ``predict_proba`` or ``classes_``.

Within a network, the task is refined by its target (`archtune.prepared.TaskSpec`: binary,
multiclass, multilabel (a classifier's 0/1 matrix or label sets, archtune.data.multilabel), or
regression with one or several outputs), which picks the loss and the output layer. This module imports neither PyTorch nor the estimators until a property asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archtune.errors import InvalidParameterError


@dataclass(frozen=True)
class Task:
    """Classification or regression.

    name : {"classification", "regression"}
    default_scoring : str
        The scikit-learn scorer a search ranks by when none is given.
    metric : str
        The validation metric in a fit's history (``val_<metric>``), which the pruner watches.
    """

    name: str
    default_scoring: str
    metric: str

    @property
    def is_classification(self) -> bool:
        return self.name == "classification"

    @property
    def epoch_key(self) -> str:
        """The history column of the validation metric: "val_accuracy" or "val_r2"."""
        return f"val_{self.metric}"

    @property
    def neural_class(self) -> type:
        """The estimator a trial trains: NeuralClassifier or NeuralRegressor."""
        from archtune.estimators import NeuralClassifier, NeuralRegressor

        return NeuralClassifier if self.is_classification else NeuralRegressor

    @property
    def auto_name(self) -> str:
        return "AutoNeuralClassifier" if self.is_classification else "AutoNeuralRegressor"

    @property
    def target_class(self) -> type:
        """The target encoder (archtune.data.target): ClassificationTarget or RegressionTarget."""
        from archtune.data.target import TARGETS

        return TARGETS[self.name]

    @property
    def ensemble_class(self) -> type:
        """archtune.ensemble.model.EnsembleClassifier or EnsembleRegressor."""
        from archtune.ensemble.model import EnsembleClassifier, EnsembleRegressor

        return EnsembleClassifier if self.is_classification else EnsembleRegressor

    def __str__(self) -> str:
        return self.name


CLASSIFICATION = Task("classification", default_scoring="accuracy", metric="accuracy")
REGRESSION = Task("regression", default_scoring="r2", metric="r2")
TASKS = {task.name: task for task in (CLASSIFICATION, REGRESSION)}


def task_named(name: Any) -> Task:
    """The `Task` called ``name`` (a `Task` passes through).

    Raises
    ------
    InvalidParameterError
        ``name`` is neither "classification" nor "regression".
    """
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise InvalidParameterError(f"task must be 'classification' or 'regression'; got task={name!r}")
    return TASKS[name]


def task_of(model: Any) -> Task:
    """The task of a fitted model or estimator, by scikit-learn's `is_classifier` (its
    estimator type), so that a method that merely exists is never taken for the task."""
    from sklearn.base import is_classifier

    return CLASSIFICATION if is_classifier(model) else REGRESSION


__all__ = ["CLASSIFICATION", "REGRESSION", "TASKS", "Task", "task_named", "task_of"]
