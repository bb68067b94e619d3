"""A table read once: `Table`, made at a public entry and handed down.

Whatever a user passes as X (a DataFrame, an array, a dict of arrays, an image array or
series, a scipy sparse matrix) is read here once (`Table.read`: `dict_to_frame`,
`array_rows`, `as_frame` or `read_sparse`), its columns' kinds are inferred once
(`Table.typed`: `infer_column_kinds` on the whole table, errors naming ``source``), and
everything below the entry (the preparation of a fit, the search's splits and trials,
pretraining, the doctor) reads the `Table` instead of reading, typing or checking X again.
Splits, folds and the removal of zero-weight rows are `Table.take`: the rows' kinds, names,
source and weights go with them, nothing is re-inferred.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from archtune.data.frames import as_frame
from archtune.data.inputs import FittedInputs, array_rows, dict_to_frame
from archtune.data.kinds import infer_column_kinds
from archtune.data.sparse import is_sparse, read_sparse


@dataclass(frozen=True)
class Table:
    """A table's rows and what is known of them.

    rows : DataFrame, or scipy CSR matrix
        The rows (one column per feature; an image array's or series' values flattened).
    kinds : dict, or None
        Column -> kind (`infer_column_kinds`, before ``categorical_features``); None until
        `typed` infers them; ``{}`` for a sparse matrix (every column numeric).
    named : bool
        Whether the columns came with real (string) names.
    array_kind : "image", "series" or None
        Rows read from an image array (N x C x H x W) or series (N x T x F), else None.
    array_shape : tuple of int
        (C, H, W) of the images or (T, F) of the series; () otherwise.
    source : str
        How errors name the table: "X", or the file name on the command line.
    weights : ndarray of shape (n_rows,), or None
        Row weights, checked (archtune.data.weights), when the rows carry them.
    """

    rows: Any
    kinds: Mapping[str, str] | None = None
    named: bool = False
    array_kind: str | None = None
    array_shape: tuple[int, ...] = ()
    source: str = "X"
    weights: np.ndarray | None = None

    @classmethod
    def read(cls, X: Any, source: str = "X", arch: str | None = None) -> "Table":
        """X read once (a `Table` is returned as it is). ``arch`` decides whether a 3-D array
        is series ("sequence", "layers") or grey images (any other).

        Raises
        ------
        DataError
            X cannot be read as a table (`as_frame`, `read_sparse`, `array_rows`).
        """
        if isinstance(X, Table):
            return X
        X, array_kind, array_shape = array_rows(dict_to_frame(X, source), arch or "", source)
        if is_sparse(X):
            return cls(read_sparse(X, source), {}, False, array_kind, tuple(array_shape), source)
        frame, named = as_frame(X, source)
        return cls(frame, None, named, array_kind, tuple(array_shape), source)

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, kinds: Mapping[str, str] | None = None, source: str = "X",
                 weights: np.ndarray | None = None) -> "Table":
        """A table already read (the search's pixel rows, say), with its kinds if known."""
        named = all(isinstance(c, str) for c in frame.columns)
        return cls(frame, None if kinds is None else dict(kinds), named, None, (), source, weights)

    @classmethod
    def later(cls, inputs: FittedInputs, X: Any, what: str = "X") -> "Table":
        """X given after fit has seen its table (validation data, predictions), checked against
        what fit saw (`FittedInputs`): its columns in the fitted names, or a CSR matrix of
        the fitted width. A `Table` (a split of the table fit reads) is returned as it is."""
        if isinstance(X, Table):
            return X
        if is_sparse(X):
            return cls(inputs.matrix(X, what), {}, False, None, (), what)
        return cls(inputs.frame(X, what), None, inputs.feature_names is not None, None, (), what)

    # ------------------------------------------------------------------ what it is

    @property
    def is_sparse(self) -> bool:
        """Whether the rows are a CSR matrix."""
        return not isinstance(self.rows, pd.DataFrame)

    @property
    def n_rows(self) -> int:
        return int(self.rows.shape[0])

    @property
    def n_columns(self) -> int:
        return int(self.rows.shape[1])

    @property
    def columns(self) -> list[str]:
        """The column names (x0, x1, ... for unnamed columns and sparse matrices)."""
        if self.is_sparse:
            return [f"x{i}" for i in range(self.n_columns)]
        return [str(c) for c in self.rows.columns]

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        """The user's column names, or None when the columns came without names."""
        return tuple(map(str, self.rows.columns)) if self.named and not self.is_sparse else None

    def dense(self) -> "Table":
        """The table, whose rows must be a DataFrame: a sparse matrix is `as_frame`'s
        DataError (only NeuralClassifier and NeuralRegressor read sparse rows)."""
        if self.is_sparse:
            as_frame(self.rows, self.source)  # raises, saying what to do
        return self

    # ------------------------------------------------------------------ derived tables

    def typed(self) -> "Table":
        """The table with its column kinds, inferred once on every row (errors name
        ``source``); a table already typed is returned as it is."""
        if self.kinds is not None:
            return self
        return dataclasses.replace(self, kinds=infer_column_kinds(self.rows, self.source))

    def take(self, rows: Any) -> "Table":
        """The rows at positions ``rows``, with the same kinds, names, source and their weights."""
        rows = np.asarray(rows)
        part = self.rows[rows] if self.is_sparse else self.rows.iloc[rows]
        weights = None if self.weights is None else self.weights[rows]
        return dataclasses.replace(self, rows=part, weights=weights)

    def with_weights(self, weights: np.ndarray | None) -> "Table":
        """The same rows carrying ``weights`` (checked by the caller)."""
        return dataclasses.replace(self, weights=weights)


__all__ = ["Table"]
