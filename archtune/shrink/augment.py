"""Synthetic rows for a student to imitate its teacher on: swap noise.

Swap noise (Jahrer 2018, the denoising autoencoders that won Kaggle's Porto Seguro
competition; also the corruption of VIME, Yoon et al. 2020): each cell of a copy of the
training rows is replaced, with probability ``p``, by the same column's value in another row
drawn at random. Every synthetic value is a real value of its column (a category stays a
known category, a missing value stays possible, an integer column stays integer), so the
teacher and the student's preprocessing see rows of the same kinds as the training rows,
while the combinations of values around the data are new: where a teacher's knowledge lies
beyond the labelled rows (Bucila, Caruana & Niculescu-Mizil 2006, "Model Compression", make
the same point with their MUNGE). The rows have no labels: the teacher labels them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from archtune.errors import InvalidParameterError

AUGMENTATIONS = ("swap",)


def swap_noise(rows: Any, copies: int, probability: float, rng: np.random.Generator) -> Any:
    """``copies`` corrupted copies of ``rows``, stacked, in the same type (a DataFrame keeps its
    columns and dtypes; a 2-D array its dtype).

    Parameters
    ----------
    rows : DataFrame or ndarray of shape (n_samples, n_features)
    copies : int >= 1
    probability : float in (0, 1)
        The chance that a cell is swapped.
    rng : numpy.random.Generator
        The only source of randomness: the same generator state gives the same rows.

    Returns
    -------
    DataFrame or ndarray of shape (copies * n_samples, n_features)

    Raises
    ------
    InvalidParameterError
        ``rows`` is not a table (images, series, dicts of arrays, sparse matrices).
    """
    if isinstance(rows, pd.DataFrame):
        n = len(rows)
        base = pd.concat([rows] * copies, ignore_index=True)
        columns = {}
        for j, name in enumerate(base.columns):
            source = _swapped(n * copies, n, probability, rng)
            columns[name] = rows.iloc[:, j].take(source).reset_index(drop=True)
        return pd.DataFrame(columns, columns=base.columns)
    arr = np.asarray(rows)
    if arr.ndim != 2:
        raise InvalidParameterError(f"augment='swap' needs a table (a DataFrame or a 2-D array); got an array of "
                                    f"shape {arr.shape}")
    n = len(arr)
    out = np.empty((n * copies, arr.shape[1]), dtype=arr.dtype)
    for j in range(arr.shape[1]):
        out[:, j] = arr[_swapped(n * copies, n, probability, rng), j]
    return out


def _swapped(size: int, n: int, probability: float, rng: np.random.Generator) -> np.ndarray:
    """For each of ``size`` cells (copies of n rows), the row its value comes from: its own,
    or with ``probability`` a row drawn uniformly."""
    own = np.arange(size) % n
    return np.where(rng.random(size) < probability, rng.integers(0, n, size), own)


__all__ = ["AUGMENTATIONS", "swap_noise"]
