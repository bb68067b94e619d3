"""Sample weights: checked once, as scikit-learn's ``_check_sample_weight`` checks them.

``fit(X, y, sample_weight=w)`` accepts what scikit-learn accepts (a 1-D array, list or pandas
Series of one non-negative finite number per row, or one number for every row) and refuses
the rest with a `DataError` that names ``sample_weight`` and the row. Two decisions follow
from the loss being a weighted mean (archtune.train.losses):

- rows of weight 0 contribute nothing, so a fit drops them before anything is fitted on the
  rows (the validation split, the preprocessor, the target's scale): a zero weight is then
  exactly a removed row;
- equal weights are no weights: the weighted mean of equal weights is the plain mean, so they
  are returned as None and the fit is exactly the unweighted one.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from archtune.errors import DataError


def check_sample_weight(sample_weight: Any, n_rows: int, what: str = "sample_weight",
                        min_positive: int = 1) -> np.ndarray | None:
    """``sample_weight`` as a float64 array of shape (n_rows,), or None when it is None.

    Parameters
    ----------
    sample_weight : array-like of shape (n_rows,), number or None
        A number gives every row that weight.
    n_rows : int
        The rows of X the weights belong to.
    what : str
        The name errors use (``"validation_data sample_weight"`` for validation rows).
    min_positive : int
        Rows that must have a positive weight (2 to train: a validation split needs one).

    Raises
    ------
    DataError
        Not one number per row, not numeric, NaN or infinite, negative, or zero everywhere;
        a bad value is named with its row (1-based).
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, Real) and not isinstance(sample_weight, bool):
        values = np.full(n_rows, float(sample_weight))
    else:
        raw = sample_weight.to_numpy() if isinstance(sample_weight, (pd.Series, pd.DataFrame)) else sample_weight
        try:
            values = np.asarray(raw, dtype="float64")
        except (TypeError, ValueError):
            raise DataError(f"{what} must hold numbers (one weight per row); got {_sample(raw)!r}") from None
        if values.ndim != 1:
            raise DataError(f"{what} must be 1-dimensional, one weight per row; got shape {values.shape}")
        if len(values) != n_rows:
            raise DataError(f"{what} has {len(values)} values but X has {n_rows} rows; they must match row for row")
    values = values.copy()  # never the caller's array: the fit must not change what it was given
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise DataError(f"{what} row {bad[0] + 1}: {values[bad[0]]} is not a finite number")
    negative = np.flatnonzero(values < 0)
    if len(negative):
        raise DataError(f"{what} row {negative[0] + 1}: {values[negative[0]]:g} is negative; weights must be >= 0")
    positive = int((values > 0).sum())
    if n_rows and not positive:
        raise DataError(f"{what} is zero for every row: at least one weight must be positive")
    if n_rows and positive < min_positive:
        raise DataError(f"{what} is positive for only {positive} row(s); at least {min_positive} rows of positive "
                        "weight are needed")
    return values


def _sample(raw: Any) -> Any:
    try:
        return list(raw)[:3]
    except TypeError:
        return raw


def positive_rows(weights: np.ndarray | None) -> np.ndarray | None:
    """Positions of the rows a weighted fit trains on (weight above 0); None: every row."""
    if weights is None or (weights > 0).all():
        return None
    return np.flatnonzero(weights > 0)


def effective(weights: np.ndarray | None) -> np.ndarray | None:
    """The weights a loss needs: None when there are none or all are equal (the weighted mean
    is then the plain mean, and the unweighted arithmetic is exact)."""
    if weights is None or len(weights) == 0 or np.all(weights == weights[0]):
        return None
    return weights


__all__ = ["check_sample_weight", "effective", "positive_rows"]
