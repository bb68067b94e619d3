"""The data of a search, read once: `SearchData` and its splits.

`SearchData.read` turns what the user handed the Auto estimator (a table, an image array or
series, the target, row weights) into the typed pieces every phase of the search reads: the
`Table` (an image array's pixels as columns, for the baselines; its column kinds decided once,
`Table.typed`, and its row weights), the images themselves (for the trials), the target and
the class codes that stratify the splits. `search_splits` cuts the hold-out split or the
cross-validation folds into two `Table`s each (`Table.take`: nothing is read or typed again),
the same rows for the networks and the baselines.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from archtune.data.table import Table
from archtune.errors import DataError
from archtune.task import Task


@dataclass
class Split:
    """One hold-out split (or one cross-validation fold): two `Table`s (rows, kinds and, when
    the search is weighted, ``fit(..., sample_weight=...)``, the rows' weights) and their
    targets; for a search on an image array, the images of the same rows too."""

    train: Table
    y_train: Any
    val: Table
    y_val: Any
    images_train: np.ndarray | None = None
    images_val: np.ndarray | None = None

    @property
    def X_train(self) -> Any:
        """The training rows as a network predicts on them (and the baselines fit them): the
        images, or the table's DataFrame."""
        return self.images_train if self.images_train is not None else self.train.rows

    @property
    def X_val(self) -> Any:
        return self.images_val if self.images_val is not None else self.val.rows

    @property
    def w_train(self) -> np.ndarray | None:
        return self.train.weights

    @property
    def w_val(self) -> np.ndarray | None:
        return self.val.weights

    @property
    def fit_rows(self) -> Any:
        """What a network's fit reads: the training `Table` (its kinds carried, nothing read
        again), or the images (read as the trial's family reads them)."""
        return self.images_train if self.images_train is not None else self.train

    @property
    def validation_data(self) -> tuple[Any, ...]:
        """``validation_data`` for a fit: the validation rows, with their weights if any."""
        rows = self.images_val if self.images_val is not None else self.val
        return (rows, self.y_val) if self.w_val is None else (rows, self.y_val, self.w_val)


@dataclass
class SearchData:
    """A search's rows.

    table : Table
        The table read once at the entry, with its column kinds (`Table.typed`) and row
        weights; for an image array, its pixels as columns px0, px1, ... (the baselines' view
        of the images), all "numeric".
    images : ndarray of shape (n_samples, channels, height, width), or None
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    codes : ndarray of shape (n_samples,), or None
        The class of each row as a code (classification), to stratify the splits.
    multilabel : bool
        y is a multi-label target (archtune.data.multilabel): a 0/1 matrix, or label sets, which
        ``y`` then holds as their 0/1 matrix (columns in the sorted labels' order).
    """

    table: Table
    images: np.ndarray | None
    y: np.ndarray
    codes: np.ndarray | None
    multilabel: bool = False
    labels: np.ndarray | None = None  # label sets' sorted labels: the names of y's columns

    @classmethod
    def read(cls, task: Task, X: Any, y: Any, sample_weight: Any = None) -> "SearchData":
        """Read and check X (what the user passed, or a `Table` made at the entry, such as the
        command line's with its file name), y and the weights.

        Raises
        ------
        DataError
            X is a scipy sparse matrix, y is None, X and y differ in rows, a value cannot be
            used (naming its column and row), or the weights are invalid.
        """
        from archtune.data.images import flatten_images, is_image_array
        from archtune.data.target import target_array
        from archtune.data.weights import check_sample_weight

        images = None if isinstance(X, Table) or not is_image_array(X) else X
        table = Table.read(X) if images is None else None
        if table is not None and table.is_sparse:
            raise DataError(f"X is a scipy sparse matrix: {task.auto_name} does not take sparse input (its "
                            "baselines, splits and ensembles read tables); NeuralClassifier and NeuralRegressor "
                            "do, densifying it batch by batch, or convert it with X.toarray() if it fits in memory")
        if y is None:
            raise DataError(f"{task.auto_name} requires y to be passed, but the target y is None")
        if images is not None:
            # Trials train on the images; the baselines see their pixel rows.
            rows, _ = flatten_images(images)
            frame = pd.DataFrame(rows, columns=[f"px{i}" for i in range(rows.shape[1])])
            table = Table.of_frame(frame, {name: "numeric" for name in frame.columns})
        else:
            table = table.typed()  # once, for the space, the baselines and every trial
        y_arr = target_array(y, "y")
        if table.n_rows != len(y_arr):
            raise DataError(f"X has {table.n_rows} rows but y has {len(y_arr)}; they must match row for row")
        weights = check_sample_weight(sample_weight, table.n_rows, min_positive=2)
        target, codes = task.target_class.fit(y_arr)  # a 2-D y or label sets: multi-label (not stratified)
        stratify = task.is_classification and target.task != "multilabel"
        labels = None
        if target.task == "multilabel" and target.from_sets:
            # Label sets are searched as their indicator matrix (columns: the sorted labels), which
            # scikit-learn's scorers and the baselines read; the models' classes_ are the columns.
            y_arr, labels = codes, target.classes
        return cls(table.with_weights(weights), images, y_arr, codes if stratify else None,
                   multilabel=target.task == "multilabel", labels=labels)

    @property
    def frame(self) -> pd.DataFrame:
        """The table's rows (an image array's pixels as columns)."""
        return self.table.rows

    @property
    def kinds(self) -> dict[str, str]:
        """Column -> kind, decided once; all "numeric" for pixels."""
        return dict(self.table.kinds or {})

    @property
    def weights(self) -> np.ndarray | None:
        return self.table.weights

    @property
    def X(self) -> Any:
        """What the networks train on: the images, or the table."""
        return self.images if self.images is not None else self.frame

    @property
    def network_kinds(self) -> dict[str, str] | None:
        """The kinds a network's preparation reads (None for images: no columns to type)."""
        return None if self.images is not None else self.kinds

    @property
    def n_outputs(self) -> int:
        return 1 if self.y.ndim == 1 else int(self.y.shape[1])

    def splits(self, seed: int, cv: int | None, validation_fraction: float) -> tuple[list[Split], list[Split]]:
        """(splits the networks train on, the same splits of ``table`` for the baselines):
        one hold-out split, or ``cv`` folds."""
        table = search_splits(self.table, self.y, self.codes, seed, cv, validation_fraction)
        if self.images is None:
            return table, table
        position = pd.RangeIndex(self.table.n_rows)
        networks = [Split(s.train, s.y_train, s.val, s.y_val, self.images[position.get_indexer(s.X_train.index)],
                          self.images[position.get_indexer(s.X_val.index)]) for s in table]
        return networks, table


def multilabel_config(config: Any) -> Any:
    """A search's `SearchConfig` for a multi-label target: without the ensemble step, whose
    selection combines one-label probabilities (archtune.ensemble.build), so the best network
    (or the refit) predicts; baselines run where scikit-learn fits multi-label targets
    natively (the rest are left out by name, archtune.tune.baselines).

    Raises
    ------
    InvalidParameterError
        ``ensemble=True`` or ``bagging`` was asked for.
    """
    from archtune.errors import InvalidParameterError

    for name, value in (("ensemble", config.ensemble), ("bagging", config.bagging)):
        if value not in (None, False):
            raise InvalidParameterError(f"{name}={value!r} is not supported for multi-label targets (y is a 0/1 "
                                        f"matrix or label sets); leave {name} at its default")
    return dataclasses.replace(config, ensemble=False)


def fold_positions(n_rows: int, stratify: np.ndarray | None, seed: int, cv: int | None,
                   validation_fraction: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The row positions of the search's splits: one hold-out split of ``validation_fraction``
    of the rows, or ``cv`` folds (stratified by ``stratify`` when every class can be in each
    fold). They depend on the row count alone, not on weights (workers rebuild the splits
    from the positions the coordinator publishes)."""
    fraction = validation_fraction
    if cv is None:
        n_val = int(round(fraction * n_rows))
        if n_val < 1 or n_rows - n_val < 2:
            raise DataError(f"too few rows ({n_rows}) for a validation split of {fraction}")
        try:
            tr, va = train_test_split(np.arange(n_rows), test_size=n_val, random_state=seed % 2**32,
                                      stratify=stratify)
        except ValueError:
            tr, va = train_test_split(np.arange(n_rows), test_size=n_val, random_state=seed % 2**32)
        return [(tr, va)]
    if n_rows < cv:
        raise DataError(f"cv={cv} folds need at least {cv} rows; got {n_rows}")
    rows = np.zeros((n_rows, 1))
    if stratify is not None and np.bincount(stratify).min() >= cv:
        return list(StratifiedKFold(cv, shuffle=True, random_state=seed % 2**32).split(rows, stratify))
    return list(KFold(cv, shuffle=True, random_state=seed % 2**32).split(rows))


def split_at(table: Table, y: np.ndarray, train: np.ndarray, val: np.ndarray) -> Split:
    """The split of ``table`` (and ``y``) at the positions ``train`` and ``val``: `Table.take`
    carries the kinds and the weights; the validation rows' weights must not be all zero."""
    # The trials' networks are scored, diagnosed and ensembled on the validation rows' frame,
    # whose columns are named (x0, x1, ... for an array): they are fitted on named columns too,
    # so that nothing warns of feature names the user never gave (issue 14, fault 6).
    named = dataclasses.replace(table, named=True)
    part = named.take(val)
    if part.weights is not None:
        _some_weight(part.weights, "the validation rows")
    return Split(named.take(train), y[train], part, y[val])


def search_splits(table: Table, y: np.ndarray, stratify: np.ndarray | None, seed: int, cv: int | None,
                  validation_fraction: float) -> list[Split]:
    """The search's splits of ``table`` (`fold_positions`); the rows' kinds and weights go
    with them. The rows are split as without weights, so a weighted and an unweighted search
    see the same rows."""
    return [split_at(table, y, tr, va)
            for tr, va in fold_positions(table.n_rows, stratify, seed, cv, validation_fraction)]


def _some_weight(weights: np.ndarray, what: str) -> np.ndarray:
    """Validation weights that can weight a score: not all zero."""
    if not (weights > 0).any():
        raise DataError(f"sample_weight is zero for all of {what} ({len(weights)} rows); give more rows a "
                        "positive weight, or another random_state")
    return weights


__all__ = ["SearchData", "Split", "fold_positions", "multilabel_config", "search_splits", "split_at"]
