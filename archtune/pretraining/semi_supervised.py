"""scikit-learn's semi-supervised convention in ``fit``: which rows are unlabeled, the labelled
rows of X, y and the weights, and the history of a fit that pretrained first.

Unlabeled rows are marked as `sklearn.semi_supervised.SelfTrainingClassifier` reads them: the
label -1 for a classifier (the integer -1 only: ``-1.0`` and the string ``"-1"`` stay labels),
NaN for a regressor (every output NaN: a row with some outputs missing is an error, as today).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from archtune.data.table import Table
from archtune.errors import DataError
from archtune.prepared import TrainResult

UNLABELED = -1  # a classifier's mark of an unlabeled row (SelfTrainingClassifier's)


def pretrains(estimator: Any) -> bool:
    """Whether ``estimator.fit`` pretrains first (``pretrain_epochs > 0``) or starts from the
    network its ``pretrain`` made (``pretrained_``): such a fit goes through the estimator's
    own ``fit``, never a shared `prepare`."""
    return bool(estimator.get_params().get("pretrain_epochs")) or hasattr(estimator, "pretrained_")


def unlabeled_rows(y: Any, target_kind: str) -> np.ndarray:
    """Bool mask of shape (n_samples,): True where y marks the row unlabeled (see the module
    docstring). A y that cannot be read gives no unlabeled rows: `prepare` names its problem."""
    values = y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y, dtype=object
                                                                                      if _ragged(y) else None)
    if values.ndim == 0:
        return np.zeros(0, dtype=bool)
    if target_kind == "classification":
        if values.ndim != 1:
            return np.zeros(len(values), dtype=bool)
        if values.dtype.kind in "iu":
            return values == UNLABELED
        if values.dtype == object:
            return np.array([isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                             and v == UNLABELED for v in values], dtype=bool)
        return np.zeros(len(values), dtype=bool)
    try:
        numbers = values.astype("float64")
    except (TypeError, ValueError):
        return np.zeros(len(values), dtype=bool)
    missing = np.isnan(numbers)
    return missing.all(axis=1) if missing.ndim == 2 else missing


def _ragged(y: Any) -> bool:
    """A list mixing types (``[0, "a", -1]``) must stay objects, not become strings."""
    return isinstance(y, (list, tuple)) and len({type(v) for v in y}) > 1


def take_rows(X: Any, rows: np.ndarray) -> Any:
    """The rows ``rows`` (positions) of X: a table, a dict of arrays, an array of any rank, a
    scipy sparse matrix or a list, in the same kind of container."""
    if X is None:
        return None
    if isinstance(X, Table):  # read at an entry (the search's splits): kinds and weights go along
        return X.take(rows)
    if isinstance(X, dict):
        return {name: take_rows(value, rows) for name, value in X.items()}
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.iloc[rows]
    if hasattr(X, "tocsr"):  # scipy sparse
        return X.tocsr()[rows]
    if isinstance(X, (list, tuple)):
        return [X[i] for i in rows]
    return np.asarray(X)[rows]


def check_labelled(X: Any, y: Any, labelled: np.ndarray, target_kind: str) -> None:
    """X and y of the same rows, and enough labelled rows to fine-tune on: 2 classes for a
    classifier, 2 rows for a regressor; otherwise a `DataError` saying how many there are."""
    n_rows = _n_rows(X)
    if n_rows is not None and n_rows != len(labelled):
        raise DataError(f"X has {n_rows} rows but y has {len(labelled)}; they must match row for row")
    n = int(labelled.sum())
    if target_kind == "classification":
        values = np.asarray(take_rows(y, np.flatnonzero(labelled)), dtype=object)
        if values.ndim != 1:
            return  # not a class label per row: prepare names the problem
        classes = pd.unique(pd.Series(values))
        if len(classes) < 2:
            raise DataError(f"y: the labelled rows (y != -1: {n} of {len(labelled)}) hold {len(classes)} class(es)"
                            f"{' ' + repr(classes[0]) if len(classes) else ''}; a classifier needs at least 2 "
                            "classes among its labelled rows")
    elif n < 2:
        raise DataError(f"y: {n} of {len(labelled)} rows are labelled (not NaN); at least 2 labelled rows are "
                        "needed to fine-tune a regressor")


def _n_rows(X: Any) -> int | None:
    if isinstance(X, Table):
        return X.n_rows
    if isinstance(X, dict):
        return _n_rows(next(iter(X.values()))) if X else None
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    return len(X) if isinstance(X, (list, tuple)) else None


def with_pretraining(result: TrainResult, pretraining: pd.DataFrame) -> TrainResult:
    """``result`` (a fine-tuning) with the pretraining's epochs in front of its history: phase
    "pretrain" (their losses are the pretext task's), then the fine-tuning's epochs numbered on
    (``epoch`` and ``best_epoch`` shifted by the pretraining's length)."""
    records = [{**row, "phase": "pretrain"} for row in pretraining.to_dict(orient="records")]
    n = len(records)
    tuned = [{**row, **({"epoch": int(row["epoch"]) + n} if "epoch" in row else {})} for row in result.history]
    return dataclasses.replace(result, history=records + tuned,
                               best_epoch=result.best_epoch + n if result.best_epoch else 0)


__all__ = ["UNLABELED", "check_labelled", "pretrains", "take_rows", "unlabeled_rows", "with_pretraining"]
