"""A column's values in plain containers, whatever pandas holds them in.

pandas holds a column's values in many containers: NumPy arrays, nullable arrays (Int8-Int64,
UInt8-UInt64, Float32, Float64, boolean: pd.NA for missing), strings with python or pyarrow
storage (`string`: pd.NA; pandas 3's `str`: NaN), Arrow arrays (dtype_backend="pyarrow") and
categories. Once a column's kind is decided (archtune.data.kinds), every reader of its values
(the preprocessor, the baselines, LightGBM's encoding, the exported files' inputs) goes
through `plain_numbers` / `plain_labels` here, so that no dtype changes what a column becomes:
numbers as float64 and labels as plain strings, NaN for every missing value and missing marker
("", "NA", "null", ...: `MISSING_MARKERS`). `to_datetimes` reads a date column as moments.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from archtune.data.dates import holds_strings, is_date_dtype, parse_dates
from archtune.data.frames import row_label
from archtune.errors import DataError

# An object column whose values mostly parse as numbers is a numeric column with typos, not
# a categorical one: report the first bad value instead of silently embedding it.
NUMERIC_SHARE = 0.9
_COMMA_NUMBER = re.compile(r"[-+]?\d*,\d+")


MISSING_MARKERS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


def is_missing_marker(value: Any) -> bool:
    """Whether ``value`` is a string that pandas' readers take for a missing value (blank
    or whitespace-only strings included)."""
    return isinstance(value, str) and value.strip() in MISSING_MARKERS


def _markers(values: np.ndarray) -> np.ndarray:
    """Which of ``values`` (an object array) are missing markers."""
    return np.fromiter((isinstance(v, str) and v.strip() in MISSING_MARKERS for v in values), dtype=bool,
                       count=len(values))


def may_hold_markers(dtype: Any) -> bool:
    """Whether a column of ``dtype`` can hold missing markers: strings of any dtype, and
    categories whose levels are strings."""
    if isinstance(dtype, pd.CategoricalDtype):
        return holds_strings(dtype.categories.dtype)
    return holds_strings(dtype)


def missing_mask(series: pd.Series) -> pd.Series:
    """Missing values of a column: NaN, None, ``pd.NA``, NaT, and in columns of strings (any
    string dtype, or categories that are strings) the missing markers."""
    missing = series.isna()
    if may_hold_markers(series.dtype):
        missing |= _markers(series.to_numpy(dtype=object))
    return missing


# ---------------------------------------------------------------------------- plain values
#
# pandas holds a column's values in many containers: NumPy arrays, nullable arrays
# (Int8-Int64, UInt8-UInt64, Float32, Float64, boolean: pd.NA for missing), strings with
# python or pyarrow storage (`string`: pd.NA; pandas 3's `str`: NaN), Arrow arrays
# (dtype_backend="pyarrow") and categories. Once a column's kind is decided, every reader of
# its values (the preprocessor, the baselines, LightGBM's encoding, the exported files'
# inputs) goes through the functions below, so that no dtype changes what a column becomes:
# numbers as float64 and labels as plain strings, NaN for every missing value.


def _objects(series: pd.Series) -> np.ndarray:
    """The values as an object array of Python values, NaN for every missing one (pd.NA,
    None, NaT, NaN); categories give their values."""
    values = series.to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()
        values[missing] = np.nan
    return values


def plain_column(series: pd.Series) -> pd.Series:
    """The column in a plain NumPy container, NaN for every missing value.

    Parameters
    ----------
    series : pandas.Series
        A column of any dtype.

    Returns
    -------
    pandas.Series
        Same index and name. Numbers of a nullable or Arrow dtype (``Int8``-``Int64``,
        ``UInt8``-``UInt64``, ``Float32``, ``Float64``, ``int64[pyarrow]`` ...) as float64;
        NumPy numbers, booleans and dates, dates of any dtype and Periods as they are; any
        other column (strings of any dtype, ``boolean``, ``category``, object) as object,
        holding Python values (a category's values, not its codes), NaN for missing.
        Missing markers ("NA", "" ...) stay strings: `plain_numbers` and `plain_labels` read
        them as missing.
    """
    dtype = series.dtype
    if (isinstance(dtype, np.dtype) and dtype != object) or is_date_dtype(dtype):
        return series
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return pd.Series(series.to_numpy(dtype="float64", na_value=np.nan), index=series.index, name=series.name)
    return pd.Series(_objects(series), index=series.index, name=series.name, dtype=object)


def plain_numbers(series: pd.Series, where: str | None = None) -> np.ndarray:
    """A numeric column's values as float64, whatever its dtype, NaN for every missing value
    and missing marker.

    Without ``where`` a value that is not a number is NaN too and booleans are 1 and 0 (the
    table's kinds were checked when they were decided); with it, such a value is a
    `DataError` naming ``where``, the column and the row, as `Preprocessor.transform` says.
    """
    if where is not None:
        numbers = parse_numeric(series, where)
        if numbers is None:
            raise DataError(f"{where}: column {series.name!r} was numeric when the model was fitted but now holds text")
        values = numbers.to_numpy(dtype="float64")
        check_finite(values, str(series.name), series.index, where)
        return values
    plain = plain_column(series)
    if pd.api.types.is_numeric_dtype(plain.dtype):
        return plain.to_numpy(dtype="float64")
    values = plain.to_numpy(dtype=object)
    values = np.where(_markers(values), np.nan, values)
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def plain_labels(series: pd.Series, key: Any = str) -> np.ndarray:
    """A categorical (or text, or image-path) column's values as plain strings, whatever its
    dtype: an object array of ``key(value)`` (``str``, or `category_key`), NaN for every
    missing value and missing marker. Integers of a nullable dtype stay exact (not float64)."""
    values = _objects(series)
    out = np.full(len(values), np.nan, dtype=object)
    present = ~pd.isna(values) & ~_markers(values)
    out[present] = [key(v) for v in values[present]]
    return out


def parse_numeric(series: pd.Series, where: str) -> pd.Series | None:
    """The column as float64, or None if it is categorical. Raises on a stray non-number.
    Missing markers ("", "NA", "null", ...: `MISSING_MARKERS`) are missing values."""
    # Plain and nullable ("boolean") booleans alike are categorical, never 0/1 numbers.
    if pd.api.types.is_bool_dtype(series.dtype) or isinstance(series.dtype, pd.CategoricalDtype):
        return None
    if pd.api.types.is_timedelta64_dtype(series):
        raise DataError(f"{where}: column {series.name!r} holds durations (timedelta); convert them to numbers "
                        "first, e.g. with .dt.total_seconds()")
    if is_date_dtype(series.dtype):
        # Date columns are recognised before numbers (infer_column_kinds): here a column typed
        # numeric by the whole table, or at fit, holds dates.
        raise DataError(f"{where}: column {series.name!r} holds dates, but it is a numeric column")
    strings = holds_strings(series.dtype)
    series = plain_column(series)  # nullable and Arrow numbers as float64, the rest as object with NaN
    if pd.api.types.is_numeric_dtype(series):
        return series.astype("float64")
    if strings:
        series = series.mask(_markers(series.to_numpy()))
    present = series.notna()
    if not present.any():
        return pd.Series(np.nan, index=series.index, name=series.name)
    values = series[present]
    # A column of booleans (or booleans and strings) is categorical; an object column of Python
    # numbers is numeric, and booleans among numbers are the numbers 1 and 0 (a single True in
    # a float column must not turn every value into a category).
    boolean = values.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
    if boolean.any():
        if boolean.all() or pd.to_numeric(values[~boolean], errors="coerce").isna().any():
            return None
        series = series.map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v)
        values = series[present]
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna()
    if not bad.any():
        return pd.to_numeric(series, errors="coerce").astype("float64")
    # Numbers written with a comma ("3,14" or "1,000") would otherwise make a numeric column
    # look categorical and be silently embedded as labels: count them as numbers gone wrong.
    bad_arr = bad.to_numpy(dtype=bool)
    comma = np.array([_comma_number(v) for v in values.to_numpy()[bad_arr]], dtype=bool)
    if (len(comma) - comma.sum()) <= (1 - NUMERIC_SHARE) * len(bad_arr):
        pos = int(np.flatnonzero(present.to_numpy())[np.flatnonzero(bad_arr)[0]])
        value = series.iloc[pos]
        hint = (" (a comma as decimal mark or thousands separator? write 3.14 and 1000, or separate the "
                "file's fields with ';' or tabs)") if _comma_number(value) else ""
        raise DataError(f"{where}: column {series.name!r} {row_label(series.index, pos)}: {value!r} is not a number{hint}")
    return None


def category_key(value: Any) -> str:
    """A category's name: its string, with integer-valued numbers written as integers, so that
    a level reads the same from an int column and from a float one (3 and 3.0 are "3")."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _comma_number(value: Any) -> bool:
    return isinstance(value, str) and _COMMA_NUMBER.fullmatch(value.strip()) is not None


def to_datetimes(series: pd.Series, where: str = "X") -> np.ndarray:
    """A date column (any container: `archtune.data.dates`) as wall-clock moments.

    Parameters
    ----------
    series : pandas.Series
    where : str
        How errors name the table.

    Returns
    -------
    numpy.ndarray of datetime64[s]
        NaT where the value is missing (NaN, NaT, None, a missing marker).

    Raises
    ------
    DataError
        A present value that is not a date, naming the column and the row.
    """
    moments, bad = parse_dates(series, missing_mask(series).to_numpy())
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: column {str(series.name)!r} {row_label(series.index, pos)}: {series.iloc[pos]!r} "
                        "is not a date (dates are written YYYY-MM-DD, optionally with a time HH:MM or HH:MM:SS)")
    return moments


def check_finite(arr: np.ndarray, name: str, index: pd.Index, where: str) -> None:
    inf = np.isinf(arr)
    if inf.any():
        pos = int(np.flatnonzero(inf)[0])
        raise DataError(
            f"{where}: column {name!r} {row_label(index, pos)}: {arr[pos]} is infinite "
            "(too large to represent, or a division by zero); fix or remove it"
        )
