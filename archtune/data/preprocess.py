"""The Preprocessor: table in, float32 matrix out.

Output layout: scaled numeric columns (a date column's features among them, in its place),
then missing-value indicators, then one-hot columns (if chosen), then one integer code per
embedded categorical column (0 = missing or unseen). Every piece of fitted state is plain JSON
(lists, floats, strings) so that model bundles never need pickle. The columns' kinds come from
archtune.data.kinds, their values through archtune.data.values.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from archtune.checks import check_choice
from archtune.data.dates import DATE_FEATURES, date_features, first_day, has_time
from archtune.data.frames import list_columns, row_label
from archtune.data.images import read_image_column
from archtune.data.kinds import infer_column_kinds, plain_numeric_columns
from archtune.data.text import build_vocabulary, encode_texts
from archtune.data.values import (category_key, check_finite, parse_numeric, plain_column, plain_labels,
                                  to_datetimes)
from archtune.errors import DataError

SCALINGS = ("standard", "robust", "quantile", "maxabs", None)
CATEGORICAL_ENCODINGS = ("embedding", "onehot", "auto")
# categorical="auto": one-hot columns for at most this many levels, embeddings above (RealMLP).
ONE_HOT_MAX_LEVELS = 9
# scaling="robust": the smooth clip's bound, x / sqrt(1 + (x / bound)^2) (RealMLP).
SMOOTH_CLIP = 3.0
N_QUANTILES = 1000


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
                numeric = parse_numeric(frame[col], where)
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
            check_finite(arr[:, j], names[j], index, where)
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
            values = parse_numeric(frame[name], where)
            if values is None:
                raise DataError(f"{where}: column {name!r} was numeric when the model was fitted but now holds text")
            arr = values.to_numpy(dtype="float64")
            check_finite(arr, name, frame.index, where)
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
