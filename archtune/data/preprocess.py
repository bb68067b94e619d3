"""Schema inference and the Preprocessor: table in, float32 matrix out.

Output layout: scaled numeric columns (a date column's features among them, in its place),
then missing-value indicators, then one-hot columns (if chosen), then one integer code per
embedded categorical column (0 = missing or unseen). Every piece of fitted state is plain JSON
(lists, floats, strings) so that model bundles never need pickle.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from archtune.checks import check_choice
from archtune.data.dates import (DATE_FEATURES, DATE_SHARE, date_features, date_share, first_day, has_time,
                                 holds_strings, is_date_dtype, parse_dates)
from archtune.data.images import looks_like_image_paths, read_image_column
from archtune.data.text import build_vocabulary, encode_texts, looks_like_text
from archtune.errors import DataError

SCALINGS = ("standard", "robust", "quantile", "maxabs", None)
CATEGORICAL_ENCODINGS = ("embedding", "onehot", "auto")
# categorical="auto": one-hot columns for at most this many levels, embeddings above (RealMLP).
ONE_HOT_MAX_LEVELS = 9
# categorical_features="auto": integer-valued columns with at most this many distinct values
# are read as codes of categories (the usual label-encoded categoricals, as in PMLB's adult).
CATEGORICAL_INTEGER_LEVELS = 16
# scaling="robust": the smooth clip's bound, x / sqrt(1 + (x / bound)^2) (RealMLP).
SMOOTH_CLIP = 3.0
# An object column whose values mostly parse as numbers is a numeric column with typos, not
# a categorical one: report the first bad value instead of silently embedding it.
NUMERIC_SHARE = 0.9
N_QUANTILES = 1000
_COMMA_NUMBER = re.compile(r"[-+]?\d*,\d+")


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


def _may_hold_markers(dtype: Any) -> bool:
    """Whether a column of ``dtype`` can hold missing markers: strings of any dtype, and
    categories whose levels are strings."""
    if isinstance(dtype, pd.CategoricalDtype):
        return holds_strings(dtype.categories.dtype)
    return holds_strings(dtype)


def missing_mask(series: pd.Series) -> pd.Series:
    """Missing values of a column: NaN, None, ``pd.NA``, NaT, and in columns of strings (any
    string dtype, or categories that are strings) the missing markers."""
    missing = series.isna()
    if _may_hold_markers(series.dtype):
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
        numbers = _to_numeric(series, where)
        if numbers is None:
            raise DataError(f"{where}: column {series.name!r} was numeric when the model was fitted but now holds text")
        values = numbers.to_numpy(dtype="float64")
        _check_finite(values, str(series.name), series.index, where)
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


def _to_numeric(series: pd.Series, where: str) -> pd.Series | None:
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
            _check_finite(block[:, j], str(plain[j]), frame.index, where)
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
        elif (numeric := _to_numeric(series, where)) is not None:
            _check_finite(numeric.to_numpy(dtype="float64"), name, frame.index, where)
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
    return len(series) > 0 and (not len(present) or (_may_hold_markers(series.dtype)
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


class Preprocessor:
    """Turns a table into the network's input matrix.

    Parameters
    ----------
    scaling : {"standard", "robust", "quantile", "maxabs", None}
        Numeric columns: standardised (default); centred on the median, divided by the
        interquartile range and smoothly clipped (``x / sqrt(1 + (x/3)^2)``, RealMLP); mapped to
        a normal distribution through their quantiles (TabM's setting); divided by their largest
        absolute value, not centred (scikit-learn's MaxAbsScaler: zeros stay zero, the
        scaling of sparse input, see `fit_sparse`); or left as they are.
    categorical : {"embedding", "onehot", "auto"}
        Categorical columns: integer codes for learned embeddings (default), one-hot columns,
        or "auto": one-hot for at most ONE_HOT_MAX_LEVELS levels, codes above.
    text : bool
        String columns that read as text (several words, mostly distinct values; see
        data/text.py) become token codes for a sequence encoder, after every other column.

    Notes
    -----
    A date column becomes numeric features (`archtune.data.dates.date_features`: year, month,
    day, day of week, day of year, days elapsed since the earliest training date, and the hour
    when it has a time part), scaled like numeric columns, with one missing-value indicator
    for the column. A column with no value at all in the training rows is dropped (``dropped_``)
    and ignored at transform time. Columns in ``filled_`` (set when a fit reuses a trained
    network's preprocessor on a table without them, archtune.transfer) are read as entirely
    missing: the median and a missing indicator, or the missing category.
    """

    def __init__(self, scaling: str | None = "standard", categorical: str = "embedding", text: bool = True):
        self.scaling = check_choice("scaling", scaling, SCALINGS)
        self.categorical = check_choice("categorical", categorical, CATEGORICAL_ENCODINGS)
        self.text = text
        self.text_: list[str] = []
        self.vocabularies_: dict[str, list[str]] = {}
        self.text_lengths_: dict[str, int] = {}
        self.image_: list[str] = []
        self.image_shapes_: dict[str, list[int]] = {}
        self.dates_: dict[str, dict[str, Any]] = {}
        self.dropped_: list[str] = []
        # Columns the fitted network reads that X does not have (a fit started from another
        # network's preprocessor, archtune.transfer): every value missing, filled as such.
        self.filled_: list[str] = []
        self.sparse_ = False  # fitted on a scipy sparse matrix (fit_sparse)

    # ------------------------------------------------------------------ fitting

    def fit(self, frame: pd.DataFrame, where: str = "X", kinds: dict[str, str] | None = None) -> "Preprocessor":
        """Learn categories, vocabularies, image sizes and scaling statistics from ``frame``.

        ``kinds`` (from `infer_column_kinds` on the whole table) fixes each column's kind, so
        that a table split for validation is typed, and its errors located, as a whole;
        without it the kinds are inferred on ``frame``.
        """
        if kinds is None:
            kinds = infer_column_kinds(frame, where, self.text)
        self.columns_: list[str] = [str(c) for c in frame.columns]
        self.numeric_: list[str] = []
        self.categorical_: list[str] = []
        self.categories_: dict[str, list[str]] = {}
        self.center_: list[float] = []
        self.scale_: list[float] = []
        self.quantiles_: list[list[float]] = []
        self.medians_: list[float] = []
        self.indicators_: list[str] = []
        self.onehot_: list[str] = []
        self.text_, self.vocabularies_, self.text_lengths_ = [], {}, {}
        self.image_, self.image_shapes_ = [], {}
        self.dates_, self.dropped_ = {}, []
        self.sparse_ = False
        plain = {str(c) for c in plain_numeric_columns(frame)}
        run: list[Any] = []  # consecutive plain numeric columns, fitted as one block
        for col in frame.columns:
            name, kind = str(col), kinds.get(str(col), "categorical")
            if kind == "numeric" and name in plain:
                run.append(col)
                continue
            if run:
                self._fit_numeric_block(frame[run], where)
                run = []
            if kind == "empty":
                self.dropped_.append(name)  # infer_column_kinds has warned
            elif kind == "numeric":
                numeric = _to_numeric(frame[col], where)
                if numeric is None:
                    raise DataError(f"{where}: column {name!r} holds text, but the table's column {name!r} is numeric")
                self._fit_numeric(name, numeric, where)
            elif kind == "date":
                self._fit_date(name, frame[col], where)
            elif kind == "image" and self.text:
                self._fit_image(name, plain_column(frame[col]))
            elif kind == "text" and self.text:
                self.text_.append(name)
                self.vocabularies_[name], self.text_lengths_[name] = build_vocabulary(plain_column(frame[col]))
            else:
                self._fit_categorical(name, frame[col])
        if run:
            self._fit_numeric_block(frame[run], where)
        if len(self.dropped_) == len(self.columns_) and self.columns_:
            raise DataError(f"{where}: every column is empty in the training rows (no values at all): "
                            f"{list_columns(self.dropped_)}")
        return self

    def _drop_empty(self, name: str) -> None:
        """A column with values in the table but none in the training rows (a validation split
        took them all): nothing to learn a scale or a median from."""
        warnings.warn(f"column {name!r} has no values in the training rows (every one is missing) and is dropped",
                      UserWarning, stacklevel=4)
        self.dropped_.append(name)

    def _fit_numeric_block(self, block: pd.DataFrame, where: str) -> None:
        """Columns of a plain number dtype, fitted together with one NumPy call per statistic
        (a 5000-column table took seconds column by column)."""
        self._fit_numeric_array([str(c) for c in block.columns], block.to_numpy(dtype="float64", na_value=np.nan),
                                block.index, where)

    def _fit_numeric(self, name: str, values: pd.Series, where: str, indicator: bool = True) -> None:
        """One numeric column (read value by value, or a date's feature)."""
        self._fit_numeric_array([name], values.to_numpy(dtype="float64").reshape(-1, 1), values.index, where,
                                indicator)

    def _fit_numeric_array(self, names: list[str], arr: np.ndarray, index: pd.Index, where: str,
                           indicator: bool = True) -> None:
        """Medians (missing values are filled with them), the scaling's centre and scale, and
        the quantiles of the columns of ``arr`` (shape (n_rows, len(names))); a column with no
        value is dropped; ``indicator`` adds missing-value indicators for columns with gaps."""
        arr = np.asfortranarray(arr)
        for j in np.flatnonzero(np.isinf(arr).any(axis=0))[:1]:
            _check_finite(arr[:, j], names[j], index, where)
        missing = np.isnan(arr)
        counts = arr.shape[0] - missing.sum(axis=0)
        if (counts == 0).any():  # nothing to learn a scale or a median from
            for j in np.flatnonzero(counts == 0):
                self._drop_empty(names[j])
            keep = counts > 0
            names, arr, missing, counts = [n for n, k in zip(names, keep) if k], arr[:, keep], missing[:, keep], \
                counts[keep]
            if not names:
                return
        with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.nanmedian(arr, axis=0) if missing.any() else np.median(arr, axis=0)
            filled = np.where(missing, medians, arr) if missing.any() else arr
            centers, scales = filled.mean(axis=0), filled.std(axis=0)
            # Checked before the scaling's own statistics: values near the float64 limit (1e308)
            # overflow the median, the mean or the variance.
            bad = ~(np.isfinite(medians) & np.isfinite(centers) & np.isfinite(scales))
            if self.scaling == "maxabs":
                centers, scales = np.zeros_like(centers), np.abs(filled).max(axis=0)
            if self.scaling == "robust":
                # Median and interquartile range (half the range where the IQR is 0), as RealMLP.
                q25, q75 = np.quantile(filled, [0.25, 0.75], axis=0)
                spread = q75 - q25
                centers = medians
                scales = np.where(spread != 0, spread, 0.5 * (filled.max(axis=0) - filled.min(axis=0)))
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where}: column {names[j]!r} has values too large to scale (largest magnitude "
                            f"{np.nanmax(np.abs(arr[:, j])):.3g}); rescale that column")
        self.numeric_ += names
        self.medians_ += [float(m) for m in medians]
        if indicator:
            self.indicators_ += [name for name, n in zip(names, counts) if n < arr.shape[0]]
        self.center_ += [float(c) for c in centers]
        self.scale_ += [float(v) if v > 0 else 1.0 for v in scales]
        if self.scaling == "quantile":
            # The TabM paper's number of quantiles, max(min(n / 30, 1000), 10). Its fitting noise,
            # which spreads tied values over several quantiles, is not needed: ties map to the
            # middle of their quantiles here (see _scale).
            n_quantiles = max(min(arr.shape[0] // 30, N_QUANTILES), 10)
            qs = np.quantile(filled, np.linspace(0, 1, n_quantiles), axis=0)
            self.quantiles_ += [[float(q) for q in qs[:, j]] for j in range(len(names))]

    def pool_channels(self, shape: tuple[int, ...], pixels: np.ndarray) -> "Preprocessor":
        """Share one centre and scale per image channel among the pixel columns of an image
        array of ``shape`` (C, H, W), as every image pipeline normalises (torchvision's
        ``Normalize``), instead of one per pixel: a convolution applies the same filter at every
        position, so every position should be scaled alike, and a pixel that hardly varied in
        the training images (a border) is not blown up for other images (a network reused for
        other classes, `init_from`, sees them). ``pixels`` (n_rows, C*H*W) are the training
        rows the per-pixel statistics were fitted on. Only for scaling "standard" and
        "maxabs"; the others stay per pixel."""
        channels = int(shape[0])
        if self.scaling not in ("standard", "maxabs") or len(self.center_) != pixels.shape[1]:
            return self
        by_channel = np.asarray(pixels, dtype=np.float64).reshape(len(pixels), channels, -1)
        size = by_channel.shape[2]
        for c in range(channels):
            values = by_channel[:, c]
            if self.scaling == "maxabs":
                center, scale = 0.0, float(np.abs(values).max())
            else:
                center, scale = float(values.mean()), float(values.std())
            self.center_[c * size:(c + 1) * size] = [center] * size
            self.scale_[c * size:(c + 1) * size] = [scale if scale > 0 else 1.0] * size
        return self

    def _fit_date(self, name: str, values: pd.Series, where: str) -> None:
        """A date column: its features (`date_features`) fitted as numeric columns, placed
        together in the numeric block; one missing-value indicator (on the first feature) for
        the column, since a missing date is missing in every feature."""
        moments = to_datetimes(values, where)
        if np.isnat(moments).all():
            self._drop_empty(name)
            return
        features = [f for f in DATE_FEATURES if f != "hour" or has_time(moments)]
        reference = first_day(moments)
        block = date_features(moments, features, reference)
        taken = set(self.columns_) | set(self.numeric_)
        self.dates_[name] = {"features": features, "reference": reference, "start": len(self.numeric_)}
        for k, feature in enumerate(features):
            label = f"{name}.{feature}"
            while label in taken:  # a real column of that name: the labels must stay unique
                label += "_"
            self._fit_numeric(label, pd.Series(block[:, k], index=values.index), where, indicator=k == 0)

    def _fit_image(self, name: str, values: pd.Series) -> None:
        """A column of image files: their pixels, read by a convolutional encoder."""
        self.image_.append(name)
        first = values.dropna().iloc[:1]  # the first image sets the size the others are resized to
        self.image_shapes_[name] = list(read_image_column(first, None, "X", name).shape[1:])

    def _fit_categorical(self, name: str, values: pd.Series) -> None:
        self.categorical_.append(name)
        labels = plain_labels(values, category_key)  # a category column's values, not its categories
        present = pd.Series(labels[~pd.isna(labels)], dtype=object)
        # Most frequent first, so codes are stable and the commonest levels get small codes
        # (ties in the order they first appear, whatever the column's dtype).
        self.categories_[name] = [str(level) for level in present.value_counts(sort=True).index]
        if self.categorical == "onehot" or (self.categorical == "auto"
                                            and len(self.categories_[name]) <= ONE_HOT_MAX_LEVELS):
            self.onehot_.append(name)

    # ------------------------------------------------------------------ transforming

    def transform(self, frame: pd.DataFrame, where: str = "X") -> np.ndarray:
        if not all(isinstance(c, str) for c in frame.columns):
            frame = frame.set_axis([str(c) for c in frame.columns], axis=1)  # fit keys columns by str(name)
        if self.filled_:
            frame = frame.assign(**{name: np.nan for name in self.filled_ if name not in frame.columns})
        dropped = set(self.dropped_)
        absent = [c for c in self.columns_ if c not in frame.columns and c not in dropped]
        if absent:
            shown = ", ".join(repr(c) for c in absent[:5]) + (" ..." if len(absent) > 5 else "")
            raise DataError(f"{where} is missing {len(absent)} column(s) seen when the preprocessor was fitted: {shown}")
        n = len(frame)
        blocks: list[np.ndarray] = []
        numeric = np.empty((n, len(self.numeric_)), dtype="float64")
        # Columns already of a numeric dtype convert as one block (a table of thousands of
        # columns predicts one row in milliseconds); the others, and any block holding an
        # infinity (whose error names the column and row), go column by column.
        dates = self._date_block(frame, numeric, where)
        dtypes = dict(frame.dtypes.items())
        fast = [j for j, name in enumerate(self.numeric_) if j not in dates
                and pd.api.types.is_numeric_dtype(dtypes[name]) and not pd.api.types.is_bool_dtype(dtypes[name])]
        if fast:
            block = frame[[self.numeric_[j] for j in fast]].to_numpy(dtype="float64", na_value=np.nan)
            if np.isinf(block).any():
                fast = []
            else:
                numeric[:, fast] = block
        done = set(fast) | dates
        for j, name in enumerate(self.numeric_):
            if j in done:
                continue
            values = _to_numeric(frame[name], where)
            if values is None:
                raise DataError(f"{where}: column {name!r} was numeric when the model was fitted but now holds text")
            arr = values.to_numpy(dtype="float64")
            _check_finite(arr, name, frame.index, where)
            numeric[:, j] = arr
        # NaN after conversion is exactly what is missing (NaN, None, or a missing marker): the
        # indicators read it, then the medians fill it.
        absent = np.isnan(numeric)
        numeric = np.where(absent, np.asarray(self.medians_, dtype="float64"), numeric)
        blocks.append(self._scale(numeric))
        self._check_representable(blocks[0], numeric, frame.index, where)
        if self.indicators_:
            position = {name: j for j, name in enumerate(self.numeric_)}
            blocks.append(absent[:, [position[name] for name in self.indicators_]].astype("float64"))
        onehot = set(self.onehot_)
        for name in self.onehot_:
            k = len(self.categories_[name])
            block = np.zeros((n, k))
            code = self._codes(frame[name], name)
            hit = code > 0
            block[np.flatnonzero(hit), code[hit] - 1] = 1.0
            blocks.append(block)
        embedded = [name for name in self.categorical_ if name not in onehot]
        blocks.append(np.column_stack([self._codes(frame[name], name) for name in embedded]).astype("float64")
                      if embedded else np.empty((n, 0)))
        if self.text_:
            blocks += [encode_texts(plain_column(frame[name]), self.vocabularies_[name],
                                    self.text_lengths_[name]).astype("float64") for name in self.text_]
        if self.image_:
            for name in self.image_:
                pixels = read_image_column(plain_column(frame[name]), tuple(self.image_shapes_[name]), where, name)
                blocks.append(pixels.reshape(n, -1).astype("float64") / 255.0)
        return np.hstack(blocks).astype("float32")

    def _date_block(self, frame: pd.DataFrame, numeric: np.ndarray, where: str) -> set[int]:
        """Write each date column's features into their places of ``numeric``; returns the
        positions written. A value that is not a date is a DataError naming column and row."""
        written: set[int] = set()
        for name, spec in self.dates_.items():
            start, k = spec["start"], len(spec["features"])
            numeric[:, start:start + k] = date_features(to_datetimes(frame[name], where), spec["features"],
                                                        spec["reference"])
            written.update(range(start, start + k))
        return written

    def _scale(self, numeric: np.ndarray) -> np.ndarray:
        if self.scaling is None or numeric.shape[1] == 0:
            return numeric
        if self.scaling == "standard":
            return (numeric - np.asarray(self.center_)) / np.asarray(self.scale_)
        if self.scaling == "maxabs":
            return numeric / np.asarray(self.scale_)
        if self.scaling == "robust":
            z = (numeric - np.asarray(self.center_)) / np.asarray(self.scale_)
            return z / np.sqrt(1 + (z / SMOOTH_CLIP) ** 2)
        out = np.empty_like(numeric)
        for j, qs in enumerate(self.quantiles_):
            grid = np.linspace(0, 1, len(qs))
            # Average of forward and backward interpolation handles tied quantiles (as in
            # scikit-learn's QuantileTransformer), then the normal quantile function.
            up = np.interp(numeric[:, j], qs, grid)
            down = 1 - np.interp(-numeric[:, j], -np.asarray(qs[::-1]), grid)
            u = np.clip(0.5 * (up + down), 1e-7, 1 - 1e-7)
            out[:, j] = ndtri(u)
        return out

    # ------------------------------------------------------------------ sparse input

    def fit_sparse(self, matrix: Any) -> "Preprocessor":
        """Learn the scaling of a scipy CSR matrix whose columns are all numeric.

        Centring would fill in every zero, so the scaling keeps zeros zero: any scaling but
        None becomes "maxabs" (each column divided by its largest absolute value on these rows;
        an all-zero column by 1). Missing values are refused before (`data.sparse.read_sparse`);
        a dense X given to the fitted model later fills a NaN with 0, the sparse default.
        """
        n = matrix.shape[1]
        if self.scaling is not None:
            self.scaling = "maxabs"
        largest = np.asarray(abs(matrix).max(axis=0).todense(), dtype="float64").ravel() if n else np.zeros(0)
        self.columns_ = [f"x{j}" for j in range(n)]
        self.numeric_ = list(self.columns_)
        self.categorical_, self.categories_, self.onehot_, self.indicators_ = [], {}, [], []
        self.center_ = [0.0] * n
        self.scale_ = [float(v) if v > 0 else 1.0 for v in largest]
        self.medians_ = [0.0] * n
        self.quantiles_ = []
        self.text_, self.vocabularies_, self.text_lengths_, self.image_, self.image_shapes_ = [], {}, {}, [], {}
        self.sparse_ = True
        return self

    def transform_sparse(self, matrix: Any, where: str = "X") -> Any:
        """A scipy CSR matrix (checked by `data.sparse.read_sparse`) scaled as fitted: a CSR
        float32 matrix, never densified. Only a preprocessor whose columns are all numeric
        and whose scaling keeps zeros zero (None or "maxabs") can read sparse input."""
        if self.categorical_ or self.text_ or self.image_ or self.scaling not in (None, "maxabs"):
            raise DataError(f"{where} is a sparse matrix, but the model was fitted on a dense table "
                            f"(scaling={self.scaling!r}{', with categorical or text columns' if self.categorical_ or self.text_ or self.image_ else ''}) "
                            f"that sparse input cannot be scaled like; pass {where}.toarray(), or fit on sparse input")
        import scipy.sparse

        # Divided value by value, as the dense path divides (the same float64 arithmetic, so a
        # sparse matrix and its dense copy give the same float32 inputs to the bit).
        data = np.asarray(matrix.data, dtype="float64") / np.asarray(self.scale_, dtype="float64")[matrix.indices]
        with np.errstate(over="ignore"):
            data = data.astype("float32")
        if not np.isfinite(data).all():
            pos = int(np.flatnonzero(~np.isfinite(data))[0])
            row = int(np.searchsorted(matrix.indptr, pos, side="right")) - 1
            raise DataError(f"{where}: sparse matrix row {row + 1}, column {int(matrix.indices[pos])}: a value is too "
                            "large to use (beyond float32 range once scaled); rescale that column")
        return scipy.sparse.csr_matrix((data, matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)

    def _check_representable(self, scaled: np.ndarray, raw: np.ndarray, index: pd.Index, where: str) -> None:
        """The network computes in float32: a value that scales beyond its range (3.4e38) would
        reach it as inf, and the loss as NaN."""
        with np.errstate(over="ignore", invalid="ignore"):
            bad = ~np.isfinite(scaled.astype("float32"))
        if bad.any():
            pos, j = (int(v[0]) for v in np.nonzero(bad))
            raise DataError(f"{where}: column {self.numeric_[j]!r} {row_label(index, pos)}: {raw[pos, j]:.6g} is too "
                            "large to use (beyond float32 range once scaled); rescale that column")

    def _codes(self, values: pd.Series, name: str) -> np.ndarray:
        lookup = {c: i + 1 for i, c in enumerate(self.categories_[name])}
        labels = plain_labels(values, category_key)
        present = ~pd.isna(labels)
        out = np.zeros(len(values), dtype="int64")
        out[present] = [lookup.get(label, 0) for label in labels[present]]
        return out

    # ------------------------------------------------------------------ shape and state

    @property
    def n_numeric_out(self) -> int:
        """Float columns before the categorical codes: scaled numbers, missing-value
        indicators, one-hot columns."""
        return len(self.numeric_) + len(self.indicators_) + sum(len(self.categories_[c]) for c in self.onehot_)

    def features_of(self, column: str) -> list[str]:
        """The names in ``numeric_`` that a column became: a date column's features, else the
        column itself."""
        if column not in self.dates_:
            return [column]
        spec = self.dates_[column]
        return self.numeric_[spec["start"]:spec["start"] + len(spec["features"])]

    def categorical_positions(self) -> dict[str, tuple[int, int, int]]:
        """Where each categorical column sits in the output matrix: (start, width,
        cardinality), width being its levels for a one-hot block and 1 for a code column;
        cardinality counts its levels plus code 0 (missing or unseen)."""
        positions: dict[str, tuple[int, int, int]] = {}
        start = len(self.numeric_) + len(self.indicators_)
        for name in self.onehot_:
            k = len(self.categories_[name])
            positions[name] = (start, k, k + 1)
            start += k
        onehot = set(self.onehot_)
        for name in self.categorical_:
            if name not in onehot:
                positions[name] = (start, 1, len(self.categories_[name]) + 1)
                start += 1
        return positions

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Number of codes per embedded column (its levels + 1 for missing/unseen)."""
        onehot = set(self.onehot_)
        return tuple(len(self.categories_[c]) + 1 for c in self.categorical_ if c not in onehot)

    @property
    def image_columns(self) -> tuple[tuple[int, int, int], ...]:
        """(channels, height, width) of each image-path column."""
        return tuple(tuple(self.image_shapes_[c]) for c in self.image_)  # type: ignore[misc]

    @property
    def text_columns(self) -> tuple[tuple[int, int], ...]:
        """(vocabulary size with padding and unknown, length) of each text column."""
        return tuple((len(self.vocabularies_[c]) + 2, self.text_lengths_[c]) for c in self.text_)

    STATE_KEYS = ("columns_", "numeric_", "categorical_", "categories_", "center_", "scale_",
                  "quantiles_", "medians_", "indicators_", "onehot_")
    TEXT_KEYS = ("text_", "vocabularies_", "text_lengths_", "image_", "image_shapes_")  # absent without them
    OPTIONAL_KEYS = ("dates_", "dropped_", "filled_")  # absent when empty (and in bundles from before them)

    def to_state(self) -> dict[str, Any]:
        """The fitted state as plain JSON-able values (`from_state` reads it back)."""
        state = {"scaling": self.scaling, "categorical": self.categorical}
        state.update({k: getattr(self, k) for k in self.STATE_KEYS})
        if self.text_ or self.image_:
            state.update({k: getattr(self, k) for k in self.TEXT_KEYS})
        state.update({k: getattr(self, k) for k in self.OPTIONAL_KEYS if getattr(self, k)})
        if self.sparse_:
            state["sparse_"] = True
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Preprocessor":
        pre = cls(state["scaling"], state["categorical"])
        if "onehot_" not in state:  # bundles written before categorical="auto"
            state = {**state, "onehot_": list(state["categorical_"]) if state["categorical"] == "onehot" else []}
        for key in cls.STATE_KEYS:
            setattr(pre, key, state[key])
        for key in cls.TEXT_KEYS + cls.OPTIONAL_KEYS:
            if key in state:
                setattr(pre, key, state[key])
        pre.sparse_ = bool(state.get("sparse_", False))
        return pre


def _check_finite(arr: np.ndarray, name: str, index: pd.Index, where: str) -> None:
    inf = np.isinf(arr)
    if inf.any():
        pos = int(np.flatnonzero(inf)[0])
        raise DataError(
            f"{where}: column {name!r} {row_label(index, pos)}: {arr[pos]} is infinite "
            "(too large to represent, or a division by zero); fix or remove it"
        )
