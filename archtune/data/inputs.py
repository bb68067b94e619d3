"""What X may be, and how it becomes one table.

Estimators accept a table (DataFrame or 2-D array), a dict of arrays (multiple inputs), an
image array (N x C x H x W or N x H x W) or, with ``arch="sequence"`` or ``"layers"``, time
series (N x T x F). Everything becomes one table of columns here, before preprocessing;
`FittedInputs` checks later inputs (validation data, predictions) against what fit saw.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from archtune.config_groups import WideConfig
from archtune.data.images import flatten_images, is_image_array
from archtune.data.frames import as_frame, column_differences, list_columns
from archtune.data.preprocess import Preprocessor
from archtune.data.sparse import read_sparse
from archtune.errors import DataError, InvalidParameterError, nearest

SERIES_FAMILIES = ("sequence", "layers")


def dict_to_frame(X: Any, what: str) -> Any:
    """Multiple inputs as a dict of arrays: {"wide": [n, 2], "deep": [n, 30], "price": [n]}
    becomes one table with columns "wide[0]", "wide[1]", "deep[0]", ..., "price"."""
    import scipy.sparse

    # scipy's dok_array is a dict subclass: sparse input is a matrix, not a dict of arrays.
    if not isinstance(X, dict) or scipy.sparse.issparse(X):
        return X
    parts = {}
    lengths = set()
    for name, value in X.items():
        array = value.to_numpy() if isinstance(value, (pd.DataFrame, pd.Series)) else np.asarray(value)
        if array.ndim > 2:
            raise DataError(f"{what}[{name!r}] has shape {array.shape}: dict inputs take 1-D or 2-D arrays; put "
                            "images in a column of image paths, or fit arch='cnn' on the image array alone")
        lengths.add(len(array))
        if array.ndim == 1:
            parts[str(name)] = array
        else:
            parts.update({f"{name}[{j}]": array[:, j] for j in range(array.shape[1])})
    if len(lengths) > 1:
        raise DataError(f"{what}: the dict's arrays have different row counts {sorted(lengths)}")
    return pd.DataFrame(parts)


def group_columns(name: str, columns: list[str]) -> list[str]:
    """The columns a dict input's name stands for: "wide" -> "wide[0]", "wide[1]", ..."""
    return [c for c in columns if c.startswith(f"{name}[") and c.endswith("]")]


def array_rows(X: Any, arch: str, what: str) -> tuple[Any, str | None, tuple[int, ...]]:
    """(rows, kind, shape): images as rows of pixels (kind "image", shape (C, H, W)); with
    ``arch="sequence"`` or ``"layers"`` a 3-D array is time series, rows of T*F values (kind
    "series", shape (T, F)); any other X is returned as it is (kind None)."""
    if not is_image_array(X):
        return X, None, ()
    if arch in SERIES_FAMILIES and X.ndim == 3:
        # Time series, not grey images: kept as they are and scaled per step and feature by
        # the preprocessor like any numeric column.
        rows = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
        if not np.isfinite(rows).all():
            raise DataError(f"{what}: series {int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])} has NaN "
                            "or infinite values")
        return rows, "series", tuple(X.shape[1:])
    rows, shape = flatten_images(X, what)
    return rows, "image", tuple(shape)


@dataclass(frozen=True)
class FittedInputs:
    """What fit saw of X: the checks that later inputs must pass.

    ``columns`` are the preprocessor's column names (None while fit is still preparing, when
    validation data is matched by the fitted names alone).
    """

    owner: str
    arch: str
    n_features: int
    feature_names: tuple[str, ...] | None
    image_shape: tuple[int, ...] = ()
    series_shape: tuple[int, ...] = ()
    columns: tuple[str, ...] | None = None

    def frame(self, X: Any, what: str = "X") -> pd.DataFrame:
        """X as a table with the columns fit saw (in the preprocessor's names)."""
        X, kind, shape = array_rows(dict_to_frame(X, what), self.arch, what)
        if kind is not None:
            fitted = self.image_shape if kind == "image" else self.series_shape
            if fitted and tuple(fitted) != tuple(shape):
                plural = "images" if kind == "image" else "series"
                raise DataError(f"{what} holds {plural} of shape {tuple(shape)}, but {self.owner} was fitted on "
                                f"{plural} of shape {tuple(fitted)}")
        frame, named = as_frame(X, what)
        if self.feature_names is not None and named:
            return match_columns(frame, list(self.feature_names), self.owner, what)
        if self.feature_names is not None and not named:
            warnings.warn(f"{what} does not have valid feature names, but {self.owner} "
                          "was fitted with feature names", UserWarning, stacklevel=4)
        elif self.feature_names is None and named:
            warnings.warn(f"{what} has feature names, but {self.owner} was fitted "
                          "without feature names", UserWarning, stacklevel=4)
        if frame.shape[1] != self.n_features:
            raise DataError(f"{what} has {frame.shape[1]} features, but {self.owner} is "
                            f"expecting {self.n_features} features as input")
        return frame.set_axis(list(self.columns), axis=1) if self.columns is not None else frame


    def matrix(self, X: Any, what: str = "X") -> Any:
        """A scipy sparse X as a checked CSR matrix with the number of columns fit saw."""
        matrix = read_sparse(X, what)
        if matrix.shape[1] != self.n_features:
            raise DataError(f"{what} has {matrix.shape[1]} features, but {self.owner} is "
                            f"expecting {self.n_features} features as input")
        return matrix


def match_columns(frame: pd.DataFrame, fitted: list[str], owner: str, what: str) -> pd.DataFrame:
    """Select the fitted columns by name; missing or reordered columns are errors, extra ones
    are ignored with a warning."""
    given = [str(c) for c in frame.columns]
    missing, hint, extra = column_differences(fitted, given)
    if missing:
        raise DataError(f"{what} is missing {len(missing)} column(s) that {owner} was fitted with: "
                        f"{list_columns(missing)}{hint}")
    if extra:
        warnings.warn(f"{what} has {len(extra)} column(s) not seen in fit, ignored: {list_columns(extra)}",
                      UserWarning, stacklevel=5)
        given = [c for c in given if c in fitted]
    if given != fitted:
        first = next(i for i, (a, b) in enumerate(zip(given, fitted)) if a != b)
        raise DataError(f"{what} has its columns in a different order than in fit: position {first + 1} "
                        f"is {given[first]!r} but {owner} was fitted with {fitted[first]!r} there; "
                        f"reorder with X[model.feature_names_in_]")
    return frame[fitted]


def wide_inputs(inputs: Any, arch: str, pre: Preprocessor) -> WideConfig:
    """Wide&Deep: ``inputs={"wide": [...], "deep": [...], "cross": [[a, b], ...]}`` as positions in
    the preprocessed matrix.

    Wide columns are numeric (they reach the output as they are) or categorical (one-hot: a
    weight per level, no active level for a missing or unseen one). A cross is a pair of wide
    columns: two numeric ones multiply, two categorical ones are one-hot encoded as pairs of
    levels, a categorical and a numeric one give the numeric column a slope per level.
    Categorical columns also feed the deep path (through their embeddings or one-hot
    columns); "deep" defaults to every column that is not wide.
    """
    if inputs is None:
        return WideConfig()
    if not isinstance(inputs, dict) or not set(inputs) <= {"wide", "deep", "cross"}:
        raise InvalidParameterError(f"inputs must be a dict with keys 'wide', 'deep' (optional) and 'cross' "
                                    f"(optional); got inputs={inputs!r}")
    if arch != "wide_deep":
        raise InvalidParameterError(f"inputs={{'wide': ...}} needs arch='wide_deep'; got arch={arch!r}")
    columns = pre.columns_
    numeric_at = {name: j for j, name in enumerate(pre.numeric_)}
    indicator_at = {name: len(pre.numeric_) + k for k, name in enumerate(pre.indicators_)}
    categorical_at = pre.categorical_positions()
    wide_columns = _input_names(inputs, "wide", columns)
    if not wide_columns:
        raise InvalidParameterError("inputs['wide'] is empty: name the columns that go straight to the output")
    wide = [f for name in wide_columns for f in pre.features_of(name)]  # a date column: its features
    for name in wide:
        if name not in numeric_at and name not in categorical_at:
            raise InvalidParameterError(f"inputs['wide']: column {name!r} is a text or image column; wide columns "
                                        "must be numeric or categorical")
    deep = (_input_names(inputs, "deep", columns) if "deep" in inputs
            else [c for c in columns if c not in wide_columns])
    deep = [f for name in deep for f in pre.features_of(name)]  # a date column: its features
    wide_numeric = [n for n in wide if n in numeric_at]
    wide_categorical = [n for n in wide if n in categorical_at]
    wide_positions = [numeric_at[n] for n in wide_numeric] + [indicator_at[n] for n in wide_numeric
                                                              if n in indicator_at]
    n_float = len(pre.numeric_) + len(pre.indicators_)
    # Categorical columns (one-hot blocks and codes), text and images always feed the deep path.
    deep_positions = ([numeric_at[n] for n in deep if n in numeric_at]
                      + [indicator_at[n] for n in deep if n in indicator_at]
                      + list(range(n_float, pre.n_numeric_out + len(pre.cardinalities)
                                   + sum(n for _, n in pre.text_columns)
                                   + sum(c * h * w for c, h, w in pre.image_columns))))
    if not deep_positions:
        raise InvalidParameterError(
            f"inputs: the deep path has no columns (every column is wide{' or deep is empty' if 'deep' in inputs else ''}); "
            "name some in inputs['deep'], or for a linear model on these columns use arch='mlp' with "
            "hidden_layers=0")
    category_index = {name: i for i, name in enumerate(wide_categorical)}
    crosses, category_crosses, mixed_crosses = [], [], []
    for a, b in _cross_pairs(inputs.get("cross", []), columns, wide):
        if a in numeric_at and b in numeric_at:
            crosses.append((numeric_at[a], numeric_at[b]))
        elif a in category_index and b in category_index:
            category_crosses.append((category_index[a], category_index[b]))
        else:
            level, number = (a, b) if a in category_index else (b, a)
            mixed_crosses.append((category_index[level], numeric_at[number]))
    return WideConfig(tuple(wide_positions), tuple(deep_positions), tuple(crosses),
                      tuple(categorical_at[n] for n in wide_categorical), tuple(category_crosses),
                      tuple(mixed_crosses))


def _input_names(inputs: dict, key: str, columns: list[str]) -> list[str]:
    """The columns ``inputs[key]`` names; a name of a dict input (X={"wide": array, ...})
    stands for all its columns. An unknown name is an error naming it."""
    value = inputs.get(key, [])
    value = [value] if isinstance(value, str) else list(value)
    value = [c for name in value for c in (group_columns(str(name), columns) or [name])]
    for name in value:
        if str(name) not in columns:
            raise InvalidParameterError(f"inputs[{key!r}]: no column {name!r}{nearest(str(name), columns)}")
    return [str(v) for v in value]


def _cross_pairs(cross: Any, columns: list[str], wide: list[str]) -> list[tuple[str, str]]:
    """``inputs['cross']`` checked: a list of pairs of single wide columns."""
    if not isinstance(cross, (list, tuple)):
        raise InvalidParameterError(f"inputs['cross'] must be a list of pairs of wide columns, like [['a', 'b']]; "
                                    f"got {cross!r}")
    pairs = []
    for pair in cross:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InvalidParameterError(f"inputs['cross']: each cross is a pair of wide columns, like "
                                        f"[['a', 'b']]; got {pair!r}")
        for name in map(str, pair):
            if name not in columns and group_columns(name, columns):
                raise InvalidParameterError(f"inputs['cross']: {name!r} is a group of columns; a cross pairs "
                                            f"two single columns, like {group_columns(name, columns)[0]!r}")
            if name not in columns:
                raise InvalidParameterError(f"inputs['cross']: no column {name!r}{nearest(name, columns)}")
            if name not in wide:
                raise InvalidParameterError(f"inputs['cross']: {name!r} is not a wide column; crosses pair "
                                            f"wide columns (add it to inputs['wide'])")
        pairs.append((str(pair[0]), str(pair[1])))
    return pairs


__all__ = ["FittedInputs", "SERIES_FAMILIES", "array_rows", "dict_to_frame", "group_columns", "match_columns",
           "wide_inputs"]
