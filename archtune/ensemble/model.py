"""An ensemble of fitted models: the weighted average of their class probabilities (or
predicted values), with the weights of greedy ensemble selection (`selection.select_weights`).

Members are networks (NeuralClassifier / NeuralRegressor), LightGBM and CatBoost on the
table (`gbm.LightGBMTable*`, `catboost_member.CatBoostTable*`) and the search's other
baselines (scikit-learn pipelines). Every kind is saved in a bundle that loads without
unpickling (`archtune.bundles.ensemble.save_ensemble`).

The task is the class: `EnsembleClassifier` or `EnsembleRegressor` (`make_ensemble` picks),
as scikit-learn's ``VotingClassifier`` / ``VotingRegressor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from archtune.ensemble.selection import combine


@dataclass
class Member:
    """One model of an ensemble.

    Attributes
    ----------
    name : str
        As in the leaderboard ("network #12 (mlp)", "lightgbm").
    model : fitted estimator
        With ``predict`` (and ``predict_proba``, ``classes_`` for classification), taking the
        table as the search received it.
    kind : {"network", "lightgbm", "catboost", "baseline", "bag"}
    val_score : float
        Its own score on the search's validation rows.
    trial : int, optional
        The number of the search trial a network member comes from.
    """

    name: str
    model: Any
    kind: str
    val_score: float
    trial: int | None = None  # the search trial a network member comes from

    def prediction(self, X: Any, classes: np.ndarray | None) -> np.ndarray:
        """Probabilities of shape (n_samples, len(classes)) in ``classes`` order (a class the
        member never saw gets 0), or values of shape (n_samples,) or (n_samples, n_outputs)."""
        if classes is None:  # values: (n_samples,) for one output, (n_samples, n_outputs) for several
            values = np.asarray(self.model.predict(X), dtype="float64")
            return values.reshape(len(values), -1)[:, 0] if values.ndim == 1 or values.shape[1] == 1 else values
        proba = np.asarray(self.model.predict_proba(X), dtype="float64")
        own = list(self.model.classes_)
        if len(own) == len(classes) and all(a == b for a, b in zip(own, classes)):
            return proba
        out = np.zeros((len(proba), len(classes)))
        position = {label: j for j, label in enumerate(classes)}
        for i, label in enumerate(own):
            out[:, position[label]] = proba[:, i]
        return out


class Ensemble(BaseEstimator):
    """A weighted average of fitted models: build one with `make_ensemble`, which returns an
    `EnsembleClassifier` (averaged class probabilities) or an `EnsembleRegressor` (averaged
    values, one or several outputs). The class is the task: scikit-learn's ``is_classifier``
    (`archtune.task.task_of`) reads it, and a regressor has no ``predict_proba`` at all.

    Parameters
    ----------
    members : list of Member
    weights : array of shape (n_members,)
        Non-negative, summing to 1 (members of weight 0 are dropped).
    classes : array of shape (n_classes,), optional
        The class labels (classification), in the order of ``predict_proba``'s columns.
    val_score : float, optional
        The ensemble's score on the validation rows it was selected on.
    columns : list of str, optional
        The table's columns as the members were fitted on them: a 2-D array given to
        ``predict`` gets these names.

    Attributes
    ----------
    classes_ : ndarray (classification)
    feature_names_in_ : ndarray of str, when the members were fitted on named columns
    n_features_in_ : int
    bundle_metadata_ : dict
        Metadata saved with the ensemble's bundle (empty before saving).
    """

    task = ""  # "classification" or "regression": the JSON name of the subclass's task

    def __init__(self, members: list[Member], weights: np.ndarray, classes: np.ndarray | None = None,
                 val_score: float | None = None, columns: list[str] | None = None):
        weights = np.asarray(weights, dtype="float64")
        keep = weights > 0
        self.members = [m for m, k in zip(members, keep) if k]
        total = weights[keep].sum()
        # Weights that already sum to 1 (a saved ensemble's, read back) are kept bit for bit:
        # dividing by a sum of 1 - 1e-16 again moves about one weight vector in ten in its last
        # bit, and the loaded ensemble would predict 1e-13 away from the one that was saved.
        self.weights = weights[keep] if abs(total - 1.0) <= 1e-9 else weights[keep] / total
        self.val_score = val_score
        self.bundle_metadata_: dict[str, Any] = {}
        # A regressor's interval calibration (archtune.conformal), set by whoever built it on
        # rows its members did not train on: a search, a bag. None: no intervals.
        self.conformal_: Any = None
        self.columns_ = [str(c) for c in columns] if columns is not None else None
        first = self.members[0].model
        self.n_features_in_ = len(columns) if columns is not None else int(getattr(first, "n_features_in_", 0) or 0)
        names = next((getattr(m.model, "feature_names_in_", None) for m in self.members
                      if getattr(m.model, "feature_names_in_", None) is not None), None)
        if names is None and columns is not None:
            names = self.columns_
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)

    # Not a scikit-learn parameter set (members and weights are fitted state): no get_params
    # for clone to rebuild it from.
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {}

    def fit(self, X: Any, y: Any = None) -> "Ensemble":
        """Not available: an ensemble is built from fitted members (a search's selection, a
        bag, `make_ensemble`), not fitted itself. (Defined so that scikit-learn's inspection
        tools, which require a ``fit``, take it: permutation importance, scorers.)

        Raises
        ------
        TypeError
            Always.
        """
        raise TypeError(f"{type(self).__name__} is built from fitted members and is not fitted again; fit its "
                        "members, then combine them with archtune.ensemble.make_ensemble")

    @property
    def networks(self) -> list[Any]:
        return [m.model for m in self.members if m.kind == "network"]

    def _classes(self) -> np.ndarray | None:
        return None

    def all_networks(self) -> list[Any]:
        """The networks among the members, a bag's included (for ``device``)."""
        found = []
        for m in self.members:
            if m.kind == "network":
                found.append(m.model)
            elif isinstance(m.model, Ensemble):
                found.extend(m.model.all_networks())
        return found

    def _average(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """The members' weighted average; ``n_threads`` and ``device`` as in ``predict``
        (archtune.predicting: threads for every member, the networks moved to the device)."""
        from archtune.predicting import predicting

        X = _as_table(X, self)
        with predicting(self.all_networks(), n_threads, device):
            return combine([m.prediction(X, self._classes()) for m in self.members], self.weights)

    def describe(self) -> pd.DataFrame:
        """One row per member: name, kind, weight, its own validation score."""
        return pd.DataFrame({"member": [m.name for m in self.members], "kind": [m.kind for m in self.members],
                             "weight": self.weights, "val_score": [m.val_score for m in self.members]})

    def summary(self) -> str:
        """"3 networks and lightgbm" for sentences."""
        networks = sum(m.kind == "network" for m in self.members)
        others = [m.name for m in self.members if m.kind != "network"]
        parts = ([f"{networks} network{'s' if networks != 1 else ''}"] if networks else []) + others
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def with_members(self, members: list[Member]) -> "Ensemble":
        """The same weights over other (for example refitted) members, in the same order."""
        copy = make_ensemble(self.task, members, self.weights, self._classes(), self.val_score, self.columns_)
        copy.bundle_metadata_ = dict(self.bundle_metadata_)
        copy.conformal_ = self.conformal_
        return copy

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary()}, val_score={self.val_score})"


class EnsembleClassifier(ClassifierMixin, Ensemble):
    """An ensemble of classifiers: the weighted average of their class probabilities (a
    member's class it never saw gets probability 0). ``classes`` is required."""

    task = "classification"

    def __init__(self, members: list[Member], weights: np.ndarray, classes: np.ndarray | None = None,
                 val_score: float | None = None, columns: list[str] | None = None):
        if classes is None:
            raise ValueError("an EnsembleClassifier needs the classes its probabilities are ordered by")
        super().__init__(members, weights, classes, val_score, columns)
        self.classes_ = np.asarray(classes)

    def _classes(self) -> np.ndarray:
        return self.classes_

    def predict_proba(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """Class probabilities of shape (n_samples, n_classes): the members' weighted average.
        ``n_threads`` and ``device`` as in `predict`."""
        return self._average(X, n_threads, device)

    def predict(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """Class labels of shape (n_samples,): the most probable class of the average.
        ``n_threads``: threads for this call, every member's (restored after it);
        ``device``: where the network members predict (archtune.predicting)."""
        return self.classes_[np.argmax(self._average(X, n_threads, device), axis=1)]

    def predict_set(self, X: Any, coverage: float = 0.9, n_threads: int | None = None,
                    device: str | None = None) -> np.ndarray:
        """Prediction sets that hold the true class with probability ``coverage``: adaptive
        prediction sets (archtune.prediction_sets) of `predict_proba`, calibrated on rows the
        members did not train on (``conformal_``: a search's validation rows, a bag's
        out-of-fold rows).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        coverage : float, default 0.9
            In (0, 1).
        n_threads, device :
            As in `predict`.

        Returns
        -------
        ndarray of bool of shape (n_samples, n_classes)
            Whether each class (columns in the order of ``classes_``) is in each row's set;
            never an empty row.

        Raises
        ------
        InvalidParameterError
            A bad coverage, or an ensemble built without a calibration (`make_ensemble` alone).
        """
        from archtune.prediction_sets import predict_set

        return predict_set(self, X, coverage, n_threads=n_threads, device=device)


class EnsembleRegressor(RegressorMixin, Ensemble):
    """An ensemble of regressors: the weighted average of their predicted values, of shape
    (n_samples,) or (n_samples, n_outputs) as the members predict."""

    task = "regression"

    def predict(self, X: Any, n_threads: int | None = None, device: str | None = None) -> np.ndarray:
        """Values of shape (n_samples,), or (n_samples, n_outputs) for several outputs.
        ``n_threads``: threads for this call, every member's (restored after it);
        ``device``: where the network members predict (archtune.predicting)."""
        return self._average(X, n_threads, device)

    def predict_interval(self, X: Any, coverage: float = 0.9, n_threads: int | None = None,
                         device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper), each shaped like ``predict(X)``: intervals that hold the true value
        with probability ``coverage``, by split-conformal calibration (archtune.conformal) on
        rows the members did not train on (``conformal_``: a search's validation rows, a
        bag's out-of-fold rows).

        Raises
        ------
        InvalidParameterError
            A bad coverage, or an ensemble built without a calibration (`make_ensemble` alone).
        """
        from archtune.conformal import predict_interval

        return predict_interval(self, X, coverage, n_threads=n_threads, device=device)


def make_ensemble(task: str, members: list[Member], weights: np.ndarray, classes: np.ndarray | None = None,
                  val_score: float | None = None, columns: list[str] | None = None) -> Ensemble:
    """An `EnsembleClassifier` (``task="classification"``, with ``classes``) or an
    `EnsembleRegressor` (``task="regression"``) of ``members`` with ``weights``.

    Raises
    ------
    InvalidParameterError
        A member is a multi-label classifier (archtune.data.multilabel): the ensemble combines
        one-label probabilities.
    """
    from archtune.data.multilabel import refuse_multilabel

    refuse_multilabel("an ensemble", models=[m.model for m in members])
    if task == "classification":
        return EnsembleClassifier(members, weights, classes, val_score, columns)
    if task == "regression":
        return EnsembleRegressor(members, weights, None, val_score, columns)
    raise ValueError(f"task must be 'classification' or 'regression'; got {task!r}")


def _as_table(X: Any, ensemble: Ensemble) -> Any:
    """A 2-D array becomes a frame with the fitted column names (the baselines need them); a
    frame passes as it is."""
    if isinstance(X, pd.DataFrame) or ensemble.columns_ is None:
        return X
    arr = np.asarray(X)
    if arr.ndim == 2 and arr.shape[1] == len(ensemble.columns_):
        return pd.DataFrame(arr, columns=ensemble.columns_)
    return X


__all__ = ["Ensemble", "EnsembleClassifier", "EnsembleRegressor", "Member", "make_ensemble"]
