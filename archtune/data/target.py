"""Checking and encoding the target: class labels of any hashable type, or real values."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from archtune.errors import DataError


def _row(i: int) -> str:
    return f"row {i + 1}"


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds, so messages read 1, not np.int64(1)."""
    return value.item() if isinstance(value, np.generic) else value


def target_array(y: Any, what: str = "y") -> np.ndarray:
    """y as a NumPy array (1-D, or 2-D for multi-output), warning on a column vector."""
    if isinstance(y, (pd.Series, pd.DataFrame)):
        y = y.to_numpy()
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        from sklearn.exceptions import DataConversionWarning

        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples, ), for example using ravel().",
            DataConversionWarning,
            stacklevel=3,
        )
        arr = arr.ravel()
    if arr.ndim == 0 or arr.ndim > 2:
        raise DataError(f"{what} must be 1-dimensional (one label per row); got shape {arr.shape}")
    return arr


def encode_classes(y: np.ndarray, what: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """(classes, codes): sorted distinct labels and each row's index into them."""
    if y.ndim != 1:
        raise DataError(f"{what} must be 1-dimensional for classification; got shape {y.shape}")
    missing = pd.isna(y) if y.dtype.kind in "fcOUS" else np.zeros(len(y), bool)
    if np.any(missing):
        raise DataError(f"{what} {_row(int(np.flatnonzero(missing)[0]))}: the target is missing (NaN or empty)")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError(f"{what} {_row(int(np.flatnonzero(~np.isfinite(y))[0]))}: the target is infinite")
    try:
        classes, codes = np.unique(y, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in y})
        raise DataError(f"{what} mixes label types ({', '.join(kinds)}); use one type for all labels") from None
    if len(classes) < 2:
        raise DataError(
            f"{what} contains only one class ({_plain(classes[0])!r}): a classifier needs at least 2 classes"
        )
    return classes, codes.astype("int64")


def regression_target(y: np.ndarray, what: str = "y") -> np.ndarray:
    """y as a float64 matrix (rows x outputs); rejects missing and infinite values."""
    try:
        arr = np.asarray(y, dtype="float64")
    except (TypeError, ValueError):
        flat = np.asarray(y, dtype=object).reshape(len(y), -1)
        for i, row in enumerate(flat):
            for v in row:
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise DataError(f"{what} {_row(i)}: {v!r} is not a number (regression needs numeric targets)") from None
        raise
    arr = arr.reshape(len(arr), -1)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad.any(axis=1))[0])
        kind = "missing (NaN)" if np.isnan(arr[i]).any() else "infinite"
        raise DataError(f"{what} {_row(i)}: the target is {kind}")
    return arr


def check_varies(arr: np.ndarray, what: str = "y") -> None:
    """Refuse a regression target with one value in every row: the network would learn a
    constant (and R2 is undefined), which is almost always the wrong column or a filter gone wrong."""
    if len(arr) < 2:
        return
    constant = np.flatnonzero(np.all(arr == arr[0], axis=0))
    if constant.size:
        j = int(constant[0])
        output = f" output {j}" if arr.shape[1] > 1 else ""
        raise DataError(f"{what}{output} is constant ({_plain(arr[0, j])!r} in all {len(arr)} rows): "
                        "a regressor needs a target that varies")
