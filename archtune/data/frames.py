"""A table as a DataFrame, and how messages name its columns and rows.

`as_frame` turns what a user passes as X (a DataFrame, an array, a dict of columns) into a
DataFrame and says whether its column names were given; `list_columns`, `column_differences`
and `row_label` word the errors that name columns and rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from archtune.errors import DataError


def as_frame(X: Any, what: str = "X") -> tuple[pd.DataFrame, bool]:
    """X as a DataFrame, and whether it came with real (string) column names."""
    if isinstance(X, pd.DataFrame):
        named = all(isinstance(c, str) for c in X.columns)
        frame = X if named else X.set_axis([f"x{i}" for i in range(X.shape[1])], axis=1)
        if frame.columns.duplicated().any():
            dup = frame.columns[frame.columns.duplicated()][0]
            raise DataError(f"{what}: duplicate column name {dup!r}")
        return frame, named
    import scipy.sparse

    if scipy.sparse.issparse(X):
        raise DataError(f"{what} is a sparse matrix, which only NeuralClassifier and NeuralRegressor accept "
                        "(as a whole matrix of numeric columns); convert it with X.toarray() if it fits in memory")
    if isinstance(X, pd.Series):
        raise DataError(f"{what} must be 2-dimensional (rows x columns); got a Series. Use X.to_frame()")
    try:
        arr = np.asarray(X)
    except Exception as exc:
        raise DataError(f"{what} cannot be read as a table: {exc}") from None
    if arr.ndim == 1:
        raise DataError(
            f"{what} must be 2-dimensional (rows x columns); got a 1-D array of {arr.shape[0]} values. "
            "Reshape your data with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample"
        )
    if arr.ndim != 2:
        raise DataError(f"{what} must be 2-dimensional (rows x columns); got shape {arr.shape}")
    if arr.dtype.kind == "c":
        raise DataError(f"{what} holds complex numbers: Complex data not supported; pass real parts and "
                        "imaginary parts as separate columns")
    if arr.dtype.kind == "m":
        raise DataError(f"{what} has dtype {arr.dtype} (durations), which is not supported; convert it to numbers")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])]), False


def column_differences(fitted: list[str], given: list[str]) -> tuple[list[str], str, list[str]]:
    """Fitted columns missing from ``given`` (with a did-you-mean hint for the first) and the
    columns of ``given`` that were not fitted."""
    from archtune.errors import nearest

    given_set, fitted_set = set(given), set(fitted)  # sets: tables may have thousands of columns
    missing = [c for c in fitted if c not in given_set]
    extra = [c for c in given if c not in fitted_set]
    hint = nearest(missing[0], extra) if missing and extra else ""
    return missing, hint, extra


def list_columns(names: list[str], limit: int = 5) -> str:
    """'a', 'b', 'c' ... for an error message."""
    return ", ".join(repr(c) for c in names[:limit]) + (" ..." if len(names) > limit else "")


def row_label(index: pd.Index, position: int) -> str:
    """How an error names the row at ``position``: its 1-based number, or its index label."""
    label = index[position]
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return f"row {position + 1}"  # 1-based data row, as a spreadsheet user counts
    if isinstance(label, np.generic):
        label = label.item()  # "row 16", not "row np.int64(16)"
    return f"row {label!r}"


# The strings pandas' read_csv reads as missing (its default na_values), plus blank strings:
# the same markers mean "missing" in a DataFrame given to archtune, at fit and predict time.
