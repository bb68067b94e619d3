"""Each column's kind, decided once: numeric, categorical, date, text, image or empty.

`infer_column_kinds` reads every value of the table (a stray word in a numeric column, a
decimal comma, an infinity or a non-date in a date column is a `DataError` naming the column
and row); `declare_categorical` applies the estimator's ``categorical_features``.
Everything downstream (the preprocessor, the search's space and baselines, LightGBM) reads
the kinds instead of guessing again.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from archtune.data.dates import DATE_SHARE, date_share, holds_strings, is_date_dtype
from archtune.data.frames import list_columns
from archtune.data.images import looks_like_image_paths
from archtune.data.text import looks_like_text
from archtune.data.values import (check_finite, is_missing_marker, may_hold_markers, missing_mask, parse_numeric,
                                  plain_numbers, to_datetimes)
from archtune.errors import DataError

# categorical_features="auto": integer-valued columns with at most this many distinct values
# are read as codes of categories (the usual label-encoded categoricals, as in PMLB's adult).
CATEGORICAL_INTEGER_LEVELS = 16


COLUMN_KINDS = ("numeric", "categorical", "date", "text", "image", "empty")


def infer_column_kinds(frame: pd.DataFrame, where: str = "X", text: bool = True) -> dict[str, str]:
    """Each column's kind, checking every value of the table.

    Parameters
    ----------
    frame : pandas.DataFrame
    where : str
        How errors name the table (a file name, or "X").
    text : bool
        With False, string columns are never "text" or "image" (they are categorical).

    Returns
    -------
    dict
        Column name -> "numeric", "categorical", "date" (datetime64 or Period dtypes, date
        objects, or ISO date strings: `archtune.data.dates`), "text" (several words, mostly
        distinct values; data/text.py), "image" (file names of images; data/images.py) or
        "empty" (every value missing: the column is dropped, with a warning that names it).

    Raises
    ------
    DataError
        A stray word in a numeric column, a value that is not a date in a date column, an
        infinite value (each naming its row), or a table whose every column is empty.

    Notes
    -----
    This is the one place column kinds are decided: the preprocessor, the search space, the
    baselines and the LightGBM members all read its result.
    """
    kinds: dict[str, str] = {}
    plain = plain_numeric_columns(frame)
    if plain:
        # Columns of a plain number dtype are decided as one block (a 5000-column table took
        # seconds column by column): numeric, or empty when every value is missing.
        block = frame[plain].to_numpy(dtype="float64", na_value=np.nan)
        for j in np.flatnonzero(np.isinf(block).any(axis=0))[:1]:
            check_finite(block[:, j], str(plain[j]), frame.index, where)
        present = (~np.isnan(block)).any(axis=0) if len(frame) else np.ones(len(plain), dtype=bool)
        decided = {str(c): "numeric" if has else "empty" for c, has in zip(plain, present)}
    else:
        decided = {}
    for col in frame.columns:
        series, name = frame[col], str(col)
        if name in decided:
            kinds[name] = decided[name]
        elif _is_empty(series):
            kinds[name] = "empty"
        elif _is_date_column(series, where):
            kinds[name] = "date"  # before numbers: a Period column would otherwise read as one
        elif (numeric := parse_numeric(series, where)) is not None:
            check_finite(numeric.to_numpy(dtype="float64"), name, frame.index, where)
            kinds[name] = "numeric"
        elif text and looks_like_image_paths(series):
            kinds[name] = "image"  # paths with spaces look like text too: images first
        elif text and looks_like_text(series):
            kinds[name] = "text"
        else:
            kinds[name] = "categorical"
    _report_empty([name for name, kind in kinds.items() if kind == "empty"], len(kinds), where)
    return kinds


def plain_numeric_columns(frame: pd.DataFrame) -> list[Any]:
    """The columns whose dtype is a plain number (integer or float, NumPy or nullable; not
    booleans, dates or durations): numbers whatever their values, so they can be handled as
    one block."""
    return [c for c, dtype in frame.dtypes.items()
            if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            and not pd.api.types.is_timedelta64_dtype(dtype) and not is_date_dtype(dtype)]


def _report_empty(empty: list[str], n_columns: int, where: str) -> None:
    """Entirely missing columns are dropped with a warning, as scikit-learn's SimpleImputer
    drops them; a table with nothing else is an error."""
    if not empty:
        return
    if len(empty) == n_columns:
        raise DataError(f"{where}: every column is empty (no values at all, every row is missing): "
                        f"{list_columns(empty)}")
    # No file name in the message: the CLI checks the table before fitting it, and the same
    # text from the same place is shown once.
    warnings.warn(f"{len(empty)} column(s) have no values at all (every row is missing) and are dropped: "
                  f"{list_columns(empty)}", UserWarning, stacklevel=2)


def _is_empty(series: pd.Series) -> bool:
    """Whether a column of at least one row has no value at all (markers stop at the first
    real value, so a full column costs one look)."""
    present = series.dropna()
    return len(series) > 0 and (not len(present) or (may_hold_markers(series.dtype)
                                                     and all(is_missing_marker(v) for v in present)))


# Values looked at first to rule a string column out cheaply: most are not dates.
DATE_SAMPLE = 50


def _is_date_column(series: pd.Series, where: str) -> bool:
    """Whether a column holds dates: a date dtype, or an object/string column whose present
    values are (at least DATE_SHARE of them) ISO date strings or date objects. The rest of
    such a column are typos: DataError naming the first."""
    if is_date_dtype(series.dtype):
        return True
    if not holds_strings(series.dtype):
        return False
    head = series.dropna().iloc[:4 * DATE_SAMPLE]
    head = head[~missing_mask(head).to_numpy()].iloc[:DATE_SAMPLE]
    if date_share(head) <= 0.5:
        return False
    if date_share(series[~missing_mask(series).to_numpy()]) < DATE_SHARE:
        return False
    to_datetimes(series, where)  # raises on the first value that is not a date
    return True


def declare_categorical(kinds: dict[str, str], frame: pd.DataFrame, categorical_features: Any,
                        where: str = "X") -> dict[str, str]:
    """The kinds with numeric columns turned categorical as ``categorical_features`` says:
    "from_dtype" (none), "auto" (integer-valued columns with at most CATEGORICAL_INTEGER_LEVELS
    distinct values) or a list of column names (a name not in X is an error)."""
    if categorical_features is None or (isinstance(categorical_features, str) and categorical_features == "from_dtype"):
        return kinds
    out = dict(kinds)
    if isinstance(categorical_features, str):  # "auto", checked with the other parameters
        for col in frame.columns:
            if kinds.get(str(col)) != "numeric":
                continue
            values = plain_numbers(frame[col])
            values = values[~np.isnan(values)]
            if values.size and np.all(np.mod(values, 1) == 0) and len(np.unique(values)) <= CATEGORICAL_INTEGER_LEVELS:
                out[str(col)] = "categorical"
        return out
    from archtune.errors import InvalidParameterError, nearest

    columns = [str(c) for c in frame.columns]
    for name in categorical_features:
        if str(name) not in kinds:
            raise InvalidParameterError(f"categorical_features: {where} has no column {name!r}{nearest(str(name), columns)}")
        if kinds[str(name)] == "numeric":
            out[str(name)] = "categorical"
    return out
