"""Bagging of one configuration: K networks, each trained on K-1 folds of the rows with early
stopping on the fold it did not see; their out-of-fold predictions score the bag without a
separate validation split, and the bag predicts the average of its members (an `Ensemble`
of K networks with equal weights).

This is cross-validation bagging as AutoGluon and pytabkit use it for their final models. The
members train one after another: their rows differ, and a stacked cohort shares its batches.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

from archtune.ensemble.model import Ensemble, Member


@dataclass
class Bag:
    """A bagged configuration.

    ensemble : Ensemble
        The K members with equal weights.
    folds : list of ndarray
        Row positions (into the X given to `bag`) each member did not train on.
    oof : ndarray of shape (n_samples, n_classes) or (n_samples,)
        Out-of-fold predictions: row i predicted by the member that did not see it.
    oof_score : float
        The scorer's value on ``oof``.
    """

    ensemble: Ensemble
    folds: list[np.ndarray]
    oof: np.ndarray
    oof_score: float


def _rows(X: Any, index: np.ndarray) -> Any:
    return X.iloc[index] if isinstance(X, (pd.DataFrame, pd.Series)) else np.asarray(X)[index]


def make_folds(y: np.ndarray, n_folds: int, seed: int, stratify: bool) -> list[np.ndarray]:
    """The validation rows of each fold: every row in exactly one (stratified by class when
    every class has at least ``n_folds`` rows)."""
    positions = np.arange(len(y))
    if stratify and np.unique(y, return_counts=True)[1].min() >= n_folds:
        splitter: Any = StratifiedKFold(n_folds, shuffle=True, random_state=seed % 2**32)
        return [val for _, val in splitter.split(positions, y)]
    return [val for _, val in KFold(n_folds, shuffle=True, random_state=seed % 2**32).split(positions)]


def bag(make_estimator: Callable[[dict[str, Any]], Any], params: dict[str, Any], X: Any, y: np.ndarray,
        n_folds: int, task: str, scorer: Any, seed: int = 0, kinds: dict[str, str] | None = None,
        deadline: float | None = None, columns: list[str] | None = None,
        sample_weight: np.ndarray | None = None) -> Bag | None:
    """Train the configuration ``params`` as a bag of ``n_folds`` members.

    Parameters
    ----------
    make_estimator : callable
        ``make_estimator(params) -> unfitted NeuralClassifier / NeuralRegressor``.
    X : table of shape (n_samples, n_features), or images / series
    y : array of shape (n_samples,)
    n_folds : int
        K >= 2: members, and folds.
    scorer : callable
        A scikit-learn scorer for the out-of-fold score.
    deadline : float, optional
        `time.monotonic()` by which the bag must be done: member k may train until its
        share ``(k + 1) / K`` of the time left has passed, keeping its best epoch so far.
    sample_weight : array of shape (n_samples,), optional
        Row weights: each member trains and early-stops with its rows' weights, and the
        out-of-fold score is weighted.

    Returns
    -------
    Bag, or None when a member cannot be trained (the error is warned, naming the fold).
    """
    from archtune.doctor.lr_finder import resolve_learning_rate
    from archtune.ensemble.build import recorded
    from archtune.fitting import finish, prepare, train
    from archtune.train.callbacks import StopAtDeadline

    classes = np.unique(y) if task == "classification" else None
    folds = make_folds(y, n_folds, seed, stratify=task == "classification")
    started = time.monotonic()
    members, oof = [], None
    for k, held_out in enumerate(folds):
        trained_on = np.setdiff1d(np.arange(len(y)), held_out)
        estimator = make_estimator({**params, "random_state": seed + k})
        member_deadline = None if deadline is None else started + (deadline - started) * (k + 1) / n_folds
        try:
            prepared = resolve_learning_rate(prepare(
                estimator, _rows(X, trained_on), y[trained_on],
                validation_data=(_rows(X, held_out), y[held_out], _part(sample_weight, held_out)), kinds=kinds,
                sample_weight=_part(sample_weight, trained_on)))
            finish(estimator, prepared, train(prepared, [StopAtDeadline(member_deadline)]))
        except Exception as exc:  # one member that cannot train ends the bag, never the search
            warnings.warn(f"bagging: member {k + 1} of {n_folds} could not be trained ({type(exc).__name__}: "
                          f"{exc}); no bag", RuntimeWarning, stacklevel=2)
            return None
        member = Member(f"bag member {k + 1}", estimator, "network", float("nan"))
        prediction = member.prediction(_rows(X, held_out), classes)
        if oof is None:
            oof = np.zeros((len(y), *prediction.shape[1:]))
        oof[held_out] = prediction
        members.append(member)
    ensemble = Ensemble(task, members, np.full(n_folds, 1.0 / n_folds), classes, None, columns)
    rows = np.arange(len(y)).reshape(-1, 1)
    score = float(scorer(recorded(oof, classes), rows, y) if sample_weight is None
                  else scorer(recorded(oof, classes), rows, y, sample_weight=sample_weight))
    ensemble.val_score = score
    return Bag(ensemble, folds, oof, score)


def _part(weights: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if weights is None else weights[rows]


__all__ = ["Bag", "bag", "make_folds"]
