"""The data of a search, read once: `SearchData` and its splits.

`SearchData.read` turns what the user handed the Auto estimator (a table, an image array or
series, the target, row weights) into the typed pieces every phase of the search reads: the
table (an image array's pixels as columns, for the baselines), the images themselves (for the
trials), the target, the weights, the column kinds (`infer_column_kinds`, decided once) and
the class codes that stratify the splits. `search_splits` cuts the hold-out split or the
cross-validation folds, the same rows for the networks and the baselines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from archtune.errors import DataError
from archtune.task import Task


@dataclass
class Split:
    """The data of one hold-out split (or one cross-validation fold), with the rows' weights
    when the search is weighted (``fit(..., sample_weight=...)``)."""

    X_train: pd.DataFrame
    y_train: Any
    X_val: pd.DataFrame
    y_val: Any
    w_train: np.ndarray | None = None
    w_val: np.ndarray | None = None

    @property
    def validation_data(self) -> tuple[Any, ...]:
        """``validation_data`` for a fit: the validation rows, with their weights if any."""
        return (self.X_val, self.y_val) if self.w_val is None else (self.X_val, self.y_val, self.w_val)


@dataclass
class SearchData:
    """A search's rows.

    frame : DataFrame of shape (n_samples, n_columns)
        The table; for an image array, its pixels as columns px0, px1, ... (the baselines'
        view of the images).
    images : ndarray of shape (n_samples, channels, height, width), or None
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    weights : ndarray of shape (n_samples,), or None
    kinds : dict
        Column -> kind, decided once (`infer_column_kinds`); all "numeric" for pixels.
    codes : ndarray of shape (n_samples,), or None
        The class of each row as a code (classification), to stratify the splits.
    """

    frame: pd.DataFrame
    images: np.ndarray | None
    y: np.ndarray
    weights: np.ndarray | None
    kinds: dict[str, str]
    codes: np.ndarray | None

    @classmethod
    def read(cls, task: Task, X: Any, y: Any, sample_weight: Any = None) -> "SearchData":
        """Read and check X, y and the weights.

        Raises
        ------
        DataError
            y is None, X and y differ in rows, a value cannot be used (naming its column and
            row), or the weights are invalid.
        """
        from archtune.data.images import flatten_images, is_image_array
        from archtune.data.frames import as_frame
        from archtune.data.kinds import infer_column_kinds
        from archtune.data.target import target_array
        from archtune.data.weights import check_sample_weight

        if y is None:
            raise DataError(f"{task.auto_name} requires y to be passed, but the target y is None")
        images = X if is_image_array(X) else None
        if images is not None:
            # Trials train on the images; the baselines see their pixel rows.
            rows, _ = flatten_images(images)
            frame = pd.DataFrame(rows, columns=[f"px{i}" for i in range(rows.shape[1])])
            kinds = {name: "numeric" for name in frame.columns}
        else:
            frame, _ = as_frame(X, "X")
            kinds = infer_column_kinds(frame, "X")  # once, for the space, the baselines and every trial
        y_arr = target_array(y, "y")
        if len(frame) != len(y_arr):
            raise DataError(f"X has {len(frame)} rows but y has {len(y_arr)}; they must match row for row")
        if y_arr.ndim == 2 and task.is_classification:
            raise DataError(f"{task.auto_name} takes one label per row; y has shape {y_arr.shape} (several "
                            "outputs are for AutoNeuralRegressor)")
        weights = check_sample_weight(sample_weight, len(frame), min_positive=2)
        _, codes = task.target_class.fit(y_arr)
        return cls(frame, images, y_arr, weights, kinds, codes if task.is_classification else None)

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
        """(splits the networks train on, the same splits of ``frame`` for the baselines):
        one hold-out split, or ``cv`` folds."""
        table = search_splits(self.frame, self.y, self.codes, seed, cv, validation_fraction, self.weights)
        if self.images is None:
            return table, table
        position = pd.RangeIndex(len(self.frame))
        networks = [Split(self.images[position.get_indexer(s.X_train.index)], s.y_train,
                          self.images[position.get_indexer(s.X_val.index)], s.y_val, s.w_train, s.w_val)
                    for s in table]
        return networks, table


def search_splits(frame: pd.DataFrame, y: np.ndarray, stratify: np.ndarray | None, seed: int, cv: int | None,
                  validation_fraction: float, sample_weight: np.ndarray | None = None) -> list[Split]:
    """The search's splits: one hold-out split of ``validation_fraction`` of the rows, or
    ``cv`` folds (stratified by ``stratify`` when every class can be in each fold); the
    rows' weights (``sample_weight``) go with them. The rows are split as without weights,
    so a weighted and an unweighted search see the same rows, and the split depends on the
    row count alone (workers rebuild it from the positions the coordinator publishes)."""
    fraction = validation_fraction
    if cv is None:
        n_val = int(round(fraction * len(frame)))
        if n_val < 1 or len(frame) - n_val < 2:
            raise DataError(f"too few rows ({len(frame)}) for a validation split of {fraction}")
        try:
            tr, va = train_test_split(np.arange(len(frame)), test_size=n_val, random_state=seed % 2**32,
                                      stratify=stratify)
        except ValueError:
            tr, va = train_test_split(np.arange(len(frame)), test_size=n_val, random_state=seed % 2**32)
        folds = [(tr, va)]
    else:
        if len(frame) < cv:
            raise DataError(f"cv={cv} folds need at least {cv} rows; got {len(frame)}")
        if stratify is not None and np.bincount(stratify).min() >= cv:
            folds = list(StratifiedKFold(cv, shuffle=True, random_state=seed % 2**32).split(frame, stratify))
        else:
            folds = list(KFold(cv, shuffle=True, random_state=seed % 2**32).split(frame))
    w = sample_weight
    return [Split(frame.iloc[tr], y[tr], frame.iloc[va], y[va], None if w is None else w[tr],
                  None if w is None else _some_weight(w[va], "the validation rows")) for tr, va in folds]


def _some_weight(weights: np.ndarray, what: str) -> np.ndarray:
    """Validation weights that can weight a score: not all zero."""
    if not (weights > 0).any():
        raise DataError(f"sample_weight is zero for all of {what} ({len(weights)} rows); give more rows a "
                        "positive weight, or another random_state")
    return weights


__all__ = ["SearchData", "Split", "search_splits"]
