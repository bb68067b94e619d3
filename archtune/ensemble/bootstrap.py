"""Bootstrap scores computed as sums over rows, for the scorers that are such sums.

The leaderboard's intervals (`archtune.ensemble.build.EnsembleLibrary.intervals`) score every
candidate on every resample of the validation rows: 200 resamples x 20 candidates is 4,000
scikit-learn scorer calls, 2.3 s on 400 rows (after the time budget, so it lengthened every
search). Accuracy, R^2 and the mean errors are weighted sums over rows, so each resample's
score follows from a matrix of how often it draws each row: ``counts @ per_row`` gives every
resample at once (Efron & Tibshirani 1993, ch. 6, for the resampling; the scores are the
same numbers scikit-learn computes, to rounding). Other scorers return None here, and the
library calls the scorer itself.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

# Entries of a count matrix made at once (resamples x rows): bounds memory to ~16 MB.
CHUNK_ENTRIES = 2_000_000


def _counts(draws: list[np.ndarray], n: int) -> Iterator[np.ndarray]:
    """Count matrices of shape (resamples in the chunk, n): how often each draw takes each row."""
    step = max(1, CHUNK_ENTRIES // max(1, n))
    for start in range(0, len(draws), step):
        chunk = draws[start:start + step]
        counts = np.zeros((len(chunk), n))
        for i, rows in enumerate(chunk):
            counts[i] = np.bincount(rows, minlength=n)
        yield counts


# The scorers (scikit-learn names) that are sums over rows, by the score function they call.
ROW_SUM_SCORERS = {"accuracy": "accuracy_score", "r2": "r2_score", "neg_mean_squared_error": "mean_squared_error",
                   "neg_mean_absolute_error": "mean_absolute_error",
                   "neg_root_mean_squared_error": "root_mean_squared_error"}


def _scorer_kind(scorer: Any) -> str | None:
    """The score function of a scorer made of row sums (`bootstrap_scores` computes it), or
    None. Recognised by its repr, which names the function, its sign and any arguments."""
    return _known_reprs().get(repr(scorer))


@functools.cache
def _known_reprs() -> dict[str, str]:
    """repr of each `ROW_SUM_SCORERS` scorer -> its score function (made once per process)."""
    from sklearn.metrics import get_scorer

    return {repr(get_scorer(name)): function for name, function in ROW_SUM_SCORERS.items()}


def bootstrap_scores(scorer: Any, prediction: np.ndarray, y: np.ndarray, classes: np.ndarray | None,
                     draws: list[np.ndarray], sample_weight: np.ndarray | None = None) -> np.ndarray | None:
    """``scorer``'s score of ``prediction`` on each draw of rows, or None when the scorer is
    not a sum over rows (accuracy, R^2, negative mean squared, root mean squared or absolute
    error, without extra arguments).

    Parameters
    ----------
    scorer : scikit-learn scorer
    prediction : ndarray of shape (n_rows, n_classes) or (n_rows,) or (n_rows, n_outputs)
        Class probabilities (with ``classes``) or predicted values.
    y : ndarray of shape (n_rows,) or (n_rows, n_outputs)
        True labels or values.
    classes : ndarray of shape (n_classes,) or None
        The class labels of the probability columns; None for a regression.
    draws : list of ndarray of shape (n_rows,)
        The resampled row positions, one array per resample.
    sample_weight : ndarray of shape (n_rows,), optional

    Returns
    -------
    ndarray of shape (len(draws),) or None
        NaN where a resample's score is undefined (R^2 of a resample with one distinct value).
    """
    kind = _scorer_kind(scorer)
    if kind is None or (kind == "accuracy_score") != (classes is not None):
        return None
    n = len(y)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype="float64")
    if kind == "accuracy_score":
        correct = (classes[np.argmax(prediction, axis=1)] == y).astype("float64")
        return np.concatenate([(c @ (w * correct)) / (c @ w) for c in _counts(draws, n)])
    values = np.asarray(prediction, dtype="float64").reshape(n, -1)
    truth = np.asarray(y, dtype="float64").reshape(n, -1)
    out = []
    for c in _counts(draws, n):
        total = (c @ w)[:, None]
        if kind == "mean_absolute_error":
            per_output = (c @ (w[:, None] * np.abs(truth - values))) / total
        else:
            per_output = (c @ (w[:, None] * (truth - values) ** 2)) / total
        if kind == "r2_score":
            mean = (c @ (w[:, None] * truth)) / total
            spread = (c @ (w[:, None] * truth ** 2)) / total - mean ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                per_output = np.where(spread > 1e-12 * np.maximum(1.0, mean ** 2), 1 - per_output / spread, np.nan)
            out.append(per_output.mean(axis=1))
        elif kind == "root_mean_squared_error":
            out.append(-np.sqrt(per_output).mean(axis=1))
        else:
            out.append(-per_output.mean(axis=1))
    return np.concatenate(out)


__all__ = ["bootstrap_scores"]
