"""An ensemble of fitted models: the weighted average of their class probabilities (or
predicted values), with the weights of greedy ensemble selection (`selection.select_weights`).

Members are networks (NeuralClassifier / NeuralRegressor), LightGBM on the table
(`gbm.LightGBMTable*`) and the search's other baselines (scikit-learn pipelines). Networks and
LightGBM can be saved in a bundle that loads without unpickling (`bundle.save_ensemble`);
the other baselines cannot, and an ensemble holding them says so when saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from archtune.ensemble.selection import combine

# Member kinds that a bundle holds without pickle (a bag is networks: it is saved as them).
SAFE_KINDS = ("network", "lightgbm", "bag")


@dataclass
class Member:
    """One model of an ensemble.

    name : str
        As in the leaderboard ("network #12 (mlp)", "lightgbm").
    model : fitted estimator
        With ``predict`` (and ``predict_proba``, ``classes_`` for classification), taking the
        table as the search received it.
    kind : {"network", "lightgbm", "baseline", "bag"}
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

    @property
    def safe(self) -> bool:
        return self.kind in SAFE_KINDS

    def prediction(self, X: Any, classes: np.ndarray | None) -> np.ndarray:
        """Probabilities of shape (n_samples, len(classes)) in ``classes`` order (a class the
        member never saw gets 0), or values of shape (n_samples,)."""
        if classes is None:
            return np.asarray(self.model.predict(X), dtype="float64").reshape(len(X), -1)[:, 0]
        proba = np.asarray(self.model.predict_proba(X), dtype="float64")
        own = list(self.model.classes_)
        if len(own) == len(classes) and all(a == b for a, b in zip(own, classes)):
            return proba
        out = np.zeros((len(proba), len(classes)))
        position = {label: j for j, label in enumerate(classes)}
        for i, label in enumerate(own):
            out[:, position[label]] = proba[:, i]
        return out


class Ensemble:
    """A weighted average of fitted models.

    Parameters
    ----------
    task : {"classification", "regression"}
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

    def __init__(self, task: str, members: list[Member], weights: np.ndarray, classes: np.ndarray | None = None,
                 val_score: float | None = None, columns: list[str] | None = None):
        weights = np.asarray(weights, dtype="float64")
        keep = weights > 0
        self.task = task
        self.members = [m for m, k in zip(members, keep) if k]
        self.weights = weights[keep] / weights[keep].sum()
        if task == "classification":
            self.classes_ = np.asarray(classes)
        self.val_score = val_score
        self.bundle_metadata_: dict[str, Any] = {}
        self.columns_ = [str(c) for c in columns] if columns is not None else None
        first = self.members[0].model
        self.n_features_in_ = len(columns) if columns is not None else int(getattr(first, "n_features_in_", 0) or 0)
        names = next((getattr(m.model, "feature_names_in_", None) for m in self.members
                      if getattr(m.model, "feature_names_in_", None) is not None), None)
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)

    @property
    def networks(self) -> list[Any]:
        return [m.model for m in self.members if m.kind == "network"]

    @property
    def safe(self) -> bool:
        """Whether every member can be saved without pickle."""
        return all(m.safe for m in self.members)

    def _average(self, X: Any) -> np.ndarray:
        X = _as_table(X, self)
        classes = self.classes_ if self.task == "classification" else None
        return combine([m.prediction(X, classes) for m in self.members], self.weights)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape (n_samples, n_classes): the members' weighted average."""
        if self.task != "classification":
            raise AttributeError("predict_proba is for classification ensembles")
        return self._average(X)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (the most probable class of the average) or values of shape (n_samples,)."""
        average = self._average(X)
        if self.task == "classification":
            return self.classes_[np.argmax(average, axis=1)]
        return average

    def score(self, X: Any, y: Any) -> float:
        """Accuracy (classification) or R² (regression)."""
        from sklearn.metrics import accuracy_score, r2_score

        prediction = self.predict(X)
        return float(accuracy_score(y, prediction) if self.task == "classification" else r2_score(y, prediction))

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
        copy = Ensemble(self.task, members, self.weights, getattr(self, "classes_", None), self.val_score,
                        self.columns_)
        copy.bundle_metadata_ = dict(self.bundle_metadata_)
        return copy

    def __repr__(self) -> str:
        return f"Ensemble({self.task}, {self.summary()}, val_score={self.val_score})"


def _as_table(X: Any, ensemble: Ensemble) -> Any:
    """A 2-D array becomes a frame with the fitted column names (the baselines need them); a
    frame passes as it is."""
    if isinstance(X, pd.DataFrame) or ensemble.columns_ is None:
        return X
    arr = np.asarray(X)
    if arr.ndim == 2 and arr.shape[1] == len(ensemble.columns_):
        return pd.DataFrame(arr, columns=ensemble.columns_)
    return X


__all__ = ["Ensemble", "Member", "SAFE_KINDS"]
