"""Dates in any container as one array of moments, and the numeric features made from them.

A date column may come as ISO strings (``"2024-03-01"``, ``"2024-03-01 14:30:00"``,
``"2024-03-01T14:30:00+02:00"``, from a CSV reader or typed by hand, in an object or a string
column), as ``datetime64`` of any unit, timezone-aware or not, as a pandas ``Period`` column,
or as Python ``datetime.date`` / ``datetime.datetime`` (or pandas ``Timestamp``) objects. Each
becomes the same ``datetime64[s]`` array of wall-clock moments (a timezone-aware value keeps
its local time: a sale at 9:00 in Paris is a morning sale), NaT where the value is missing,
and the same features (`date_features`).

Strings are dates only when they are written the ISO way (year first, four digits, dashes):
pandas' ``to_datetime`` would also read ``"1"``, ``"3/4"`` or ``"May"`` as dates, and a column
of codes or words must stay what it is. Seconds resolution covers years 1-9999 (nanoseconds,
pandas' default, stop at 2262, and ``9999-12-31`` is a common "no end" date).

This module only parses and computes; deciding a column's kind and naming bad rows is
`archtune.data.preprocess`'s job.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd

# The numeric features of a date column, in the order they enter the network's matrix.
# "hour" (the time of day in hours, minutes and seconds as its fraction) only for columns
# with a time part; "elapsed_days" counts days (with the time of day as a fraction) since a
# reference date.
DATE_FEATURES = ("year", "month", "day", "day_of_week", "day_of_year", "elapsed_days", "hour")
# A text column is a date column when at least this share of its present values are ISO
# dates; the others are then typos to report, as for numbers (preprocess.NUMERIC_SHARE).
DATE_SHARE = 0.9
SECONDS_PER_DAY = 86400
# YYYY-MM-DD, optionally a time (T or a space, HH:MM, :SS, a fraction of a second) and a
# UTC offset or Z. The offset is not applied: the local time is what the value says.
ISO_DATE = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})"
                      r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(?:\s*(?:Z|[+-]\d{2}(?::?\d{2})?))?)?\s*")


def is_date_dtype(dtype: Any) -> bool:
    """Whether a column's dtype holds dates: ``datetime64`` (any unit, with or without a
    timezone), a pandas ``Period`` dtype, or Arrow's timestamps and dates
    (``dtype_backend="pyarrow"``)."""
    return pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype)


def holds_strings(dtype: Any) -> bool:
    """Whether a column's dtype can hold strings: object, pandas' string dtypes (``string``
    with python or pyarrow storage; pandas 3 reads CSV text columns as ``str``, not object), or
    an Arrow string (``read_csv(..., dtype_backend="pyarrow")``)."""
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        kind = dtype.pyarrow_dtype
        return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind)
                    or getattr(pa.types, "is_string_view", lambda _: False)(kind))
    return dtype == object or isinstance(dtype, pd.StringDtype)


def date_share(present: pd.Series) -> float:
    """The share of the values (all present: no missing value among them) of an object or
    string column that are dates (ISO strings or date objects); 0.0 for no values."""
    if not len(present):
        return 0.0
    _, bad = parse_dates(present, np.zeros(len(present), dtype=bool))
    return float(1.0 - bad.mean())


def parse_dates(series: pd.Series, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every row of ``series`` as a wall-clock moment.

    Parameters
    ----------
    series : pandas.Series
        A date column in any of the containers the module docstring lists.
    missing : numpy.ndarray of bool
        Rows that are missing values (NaN, NaT, None, the missing markers).

    Returns
    -------
    moments : numpy.ndarray of datetime64[s]
        NaT where the value is missing or not a date.
    bad : numpy.ndarray of bool
        Rows whose value is present but not a date (a wrong type, a non-ISO string, an
        impossible date such as 2023-02-30).
    """
    missing = np.asarray(missing, dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if isinstance(series.dtype, pd.DatetimeTZDtype) or _arrow_timezone(series.dtype):
            series = series.dt.tz_localize(None)  # wall-clock time where the value was recorded
        moments = series.to_numpy()
        if moments.dtype.kind == "M":  # else Arrow dates: date objects, read below
            moments = moments.astype("datetime64[s]")
            return np.where(missing, np.datetime64("NaT", "s"), moments), np.zeros(len(series), dtype=bool)
    if isinstance(series.dtype, pd.PeriodDtype):
        # A period starts at its first second; the ordinals of a period[s] are seconds since 1970.
        seconds = series.dt.asfreq("s", how="start").array.asi8
        moments = seconds.astype("datetime64[s]")  # NaT's ordinal is numpy's NaT
        return np.where(missing, np.datetime64("NaT", "s"), moments), np.zeros(len(series), dtype=bool)
    moments = np.full(len(series), np.datetime64("NaT", "s"))
    bad = ~missing
    values = series.to_numpy(dtype=object)
    is_text = np.array([isinstance(v, str) for v in values], dtype=bool) & ~missing
    if is_text.any():
        moments[is_text], ok = _parse_iso(pd.Series(values[is_text], dtype=object))
        bad[np.flatnonzero(is_text)[ok]] = False
    for i in np.flatnonzero(~missing & ~is_text):
        moment = _date_object(values[i])
        if moment is not None:
            moments[i], bad[i] = moment, False
    return moments, bad


def _arrow_timezone(dtype: Any) -> bool:
    """Whether ``dtype`` is an Arrow timestamp with a timezone."""
    if not isinstance(dtype, pd.ArrowDtype):
        return False
    import pyarrow as pa

    return bool(pa.types.is_timestamp(dtype.pyarrow_dtype) and dtype.pyarrow_dtype.tz)


def _parse_iso(strings: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """ISO date strings as moments, and which of them are valid dates."""
    parts = strings.str.fullmatch(ISO_DATE.pattern)
    groups = strings.str.extract(ISO_DATE.pattern).astype("float64").to_numpy()
    year, month, day = groups[:, 0], groups[:, 1], groups[:, 2]
    clock = np.nan_to_num(groups[:, 3:6])  # no time part: midnight
    ok = (parts.to_numpy(dtype=bool) & (month >= 1) & (month <= 12) & (day >= 1)
          & (clock[:, 0] < 24) & (clock[:, 1] < 60) & (clock[:, 2] < 60))
    n = len(strings)
    moments = np.full(n, np.datetime64("NaT", "s"))
    if not ok.any():
        return moments, ok
    months = ((year[ok] - 1970) * 12 + month[ok] - 1).astype("int64").astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (day[ok] - 1).astype("int64")
    # A day past the month's end (2023-02-30) rolls into the next month: not a date.
    real = days.astype("datetime64[M]") == months
    seconds = (clock[ok] @ np.array([3600.0, 60.0, 1.0])).astype("int64")
    moments[np.flatnonzero(ok)[real]] = (days.astype("datetime64[s]") + seconds)[real]
    ok[np.flatnonzero(ok)[~real]] = False
    return moments, ok


def _date_object(value: Any) -> np.datetime64 | None:
    """A date-like Python object as a moment (timezone-aware: its local time), else None."""
    if isinstance(value, pd.Period):
        return np.datetime64(int(value.asfreq("s", how="start").ordinal), "s")
    if isinstance(value, dt.datetime):  # pandas' Timestamp included
        return np.datetime64(value.replace(tzinfo=None).isoformat(timespec="seconds"), "s")
    if isinstance(value, dt.date):
        return np.datetime64(value.isoformat(), "s")
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[s]")
    return None


def has_time(moments: np.ndarray) -> bool:
    """Whether any present moment is not at midnight (the column has a time part)."""
    present = moments[~np.isnat(moments)]
    return bool(np.any(present.astype("int64") % SECONDS_PER_DAY != 0))


def first_day(moments: np.ndarray) -> float:
    """The earliest present moment in days since 1970-01-01 (the reference of elapsed time)."""
    present = moments[~np.isnat(moments)]
    return float(present.astype("int64").min()) / SECONDS_PER_DAY


def date_features(moments: np.ndarray, features: tuple[str, ...] | list[str], reference: float) -> np.ndarray:
    """The numeric features of dates.

    Parameters
    ----------
    moments : numpy.ndarray of datetime64[s]
        NaT for missing values.
    features : sequence of str
        Names from `DATE_FEATURES`: year; month (1-12); day of the month (1-31); day_of_week
        (0 = Monday ... 6 = Sunday); day_of_year (1-366); elapsed_days (days since
        ``reference``, the time of day as a fraction); hour (0-24, minutes and seconds as
        its fraction).
    reference : float
        The date elapsed time counts from, in days since 1970-01-01.

    Returns
    -------
    numpy.ndarray of shape (n, len(features)), float64
        NaN in every feature of a missing moment.
    """
    missing = np.isnat(moments)
    filled = np.where(missing, np.datetime64(0, "s"), moments)
    seconds = filled.astype("int64")
    days = filled.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    years = days.astype("datetime64[Y]")
    values = {
        "year": lambda: years.astype("int64") + 1970.0,
        "month": lambda: months.astype("int64") % 12 + 1.0,
        "day": lambda: (days - months.astype("datetime64[D]")).astype("int64") + 1.0,
        # 1970-01-01 was a Thursday (3 with Monday as 0).
        "day_of_week": lambda: (days.astype("int64") + 3) % 7 + 0.0,
        "day_of_year": lambda: (days - years.astype("datetime64[D]")).astype("int64") + 1.0,
        "elapsed_days": lambda: seconds / SECONDS_PER_DAY - reference,
        "hour": lambda: (seconds % SECONDS_PER_DAY) / 3600.0,
    }
    out = np.column_stack([values[name]() for name in features]).astype("float64") if len(features) \
        else np.empty((len(moments), 0))
    out[missing] = np.nan
    return out


__all__ = ["DATE_FEATURES", "DATE_SHARE", "ISO_DATE", "date_features", "date_share", "first_day", "has_time",
           "holds_strings", "is_date_dtype", "parse_dates"]
