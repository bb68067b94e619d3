"""The held-out evaluation a run saves as ``evaluation.json``: computed when the run ends,
while the held-out rows are at hand (the run folder keeps only the model, not the data).

``archtune fit`` and ``archtune tune`` call `evaluate` on their ``--holdout`` rows with the
network they save in the run folder; the report reads the file back.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from typing import Any

import numpy as np
import pandas as pd

EVALUATION_FILE = "evaluation.json"
# Rows kept for scatter plots and for permutation importance: enough for a faithful picture,
# few enough that the file stays small and the importance takes seconds.
MAX_POINTS = 2000
PERMUTATION_REPEATS = 3
# Permutation importance predicts the rows n_features * n_repeats times; the rows it uses are cut
# so that this takes about PERMUTATION_SECONDS (measured on one prediction), never below
# MIN_PERMUTATION_ROWS: a run's last step should not cost as much as a trial.
PERMUTATION_SECONDS = 3.0
MIN_PERMUTATION_ROWS = 200
CALIBRATION_BINS = 10
BOOTSTRAP_SAMPLES = 1000
# The prediction-interval chart: the coverage asked of the conformal intervals (predict_interval's
# default), and the rows drawn (one bar each: more would merge into a band).
INTERVAL_COVERAGE = 0.9
INTERVAL_POINTS = 150


def evaluate(model: Any, X: pd.DataFrame, y: pd.Series, task: str, *, seed: int = 0,
             permutation: bool = True) -> dict[str, Any]:
    """What the report shows about ``model`` on held-out rows ``(X, y)``.

    Parameters
    ----------
    model : fitted NeuralClassifier or NeuralRegressor
        The network the run saves (its folder's bundle).
    X : DataFrame of shape (n_rows, n_features)
        The held-out rows, with the row labels of the data file (kept as ``index``).
    y : Series of shape (n_rows,)
        Their targets.
    task : {"classification", "regression"}
    seed : int
        Seeds the subsampling and the permutations.
    permutation : bool
        Compute permutation feature importance (`sklearn.inspection.permutation_importance`,
        ``n_repeats=3``, with the model's own ``score``: accuracy or R^2) on at most
        ``MAX_POINTS`` rows.

    Returns
    -------
    dict
        JSON-able. Always ``task``, ``n_rows``, ``index`` (the held-out rows' labels in the
        data file, in order), ``y_true`` and ``y_pred`` (lists of n_rows labels or values).
        Classification: ``labels`` (the model's classes), ``confusion`` (counts
        [true label][predicted label], summing to n_rows), and for two classes
        ``calibration``: ``{"prob_pred", "prob_true", "counts"}`` from
        `sklearn.calibration.calibration_curve` (10 uniform bins of the positive class's
        probability; ``counts`` rows per non-empty bin). Regression: ``points``
        ``{"actual", "predicted", "residual"}`` on at most MAX_POINTS rows (residual =
        actual - predicted, in the target's units), and for a model with a conformal
        calibration (``conformal_``) ``prediction_interval`` (`prediction_intervals`). With
        ``permutation``:
        ``permutation_importance`` ``{"features", "mean", "std", "metric", "n_rows",
        "n_repeats", "seconds"}``, features by decreasing mean drop in the score.
    """
    from archtune.train.threads import torch_threads, user_set_threads

    # Many small predictions: one torch thread each is as fast on an idle machine and many
    # times faster on a busy one (archtune.train.threads); a user's own setting is kept.
    with nullcontext() if user_set_threads() else torch_threads(1):
        return _evaluate(model, X, y, task, seed, permutation)


def _evaluate(model: Any, X: pd.DataFrame, y: Any, task: str, seed: int, permutation: bool) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    values = np.asarray(y)
    # Several outputs: the metrics and the importance are over all of them (R^2 averaged), the
    # points and the interval of the first output.
    y = pd.DataFrame(values, index=X.index) if values.ndim == 2 else pd.Series(y)
    out: dict[str, Any] = {"task": task, "n_rows": int(len(X)), "index": _plain(list(X.index))}
    if values.ndim == 2:
        out["n_outputs"] = int(values.shape[1])
    rng = np.random.default_rng(seed)
    if task == "classification":
        labels = np.asarray(model.classes_)
        proba = model.predict_proba(X)
        pred = labels[proba.argmax(axis=1)]
        out.update(labels=_plain(labels.tolist()), y_true=_plain(y.tolist()), y_pred=_plain(pred.tolist()),
                   confusion=confusion_matrix(y, pred, labels=labels).tolist())
        if len(labels) == 2:
            out["calibration"] = calibration(np.asarray(y) == labels[1], proba[:, 1])
    else:
        full = np.asarray(model.predict(X), dtype=float)
        actual = np.asarray(y, dtype=float)
        pred = full
        if pred.ndim > 1:  # multi-output: the points are the first output's
            pred, actual = pred[:, 0], actual.reshape(len(actual), -1)[:, 0]
        out.update(y_true=actual.tolist(), y_pred=pred.tolist())
        keep = np.sort(rng.choice(len(actual), size=min(MAX_POINTS, len(actual)), replace=False))
        out["points"] = {"actual": actual[keep].tolist(), "predicted": pred[keep].tolist(),
                         "residual": (actual[keep] - pred[keep]).tolist()}
        conformal = getattr(model, "conformal_", None)
        if conformal is not None:
            found = prediction_intervals(model, X, conformal, full, actual, rng)
            if found is not None:
                out["prediction_interval"] = found
    if permutation:
        out["permutation_importance"] = permutation_importances(model, X, y, task, seed)
    return out


def prediction_intervals(model: Any, X: Any, calibration: Any, prediction: np.ndarray, actual: np.ndarray,
                         rng: np.random.Generator, coverage: float = INTERVAL_COVERAGE) -> dict[str, Any] | None:
    """The conformal prediction intervals (`archtune.conformal.Calibration`: what
    ``predict_interval`` gives) of the held-out rows, and how many of them they hold.

    Parameters
    ----------
    model : regressor
        The fitted model (a quantile network's intervals come from its predicted quantiles).
    X : array-like of shape (n_rows, n_features)
        The held-out rows.
    calibration : Calibration or QuantileCalibration
        The model's ``conformal_``.
    prediction : ndarray of shape (n_rows,) or (n_rows, n_outputs)
        The model's predictions (the first output's intervals are kept).
    actual : ndarray of shape (n_rows,)
        The first output's true values.
    rng : Generator
        Draws the rows kept for the chart.
    coverage : float
        The coverage asked of the intervals.

    Returns
    -------
    dict or None
        ``{"coverage", "covered", "n_rows", "mean_width", "rows": {"predicted", "lower", "upper",
        "actual"}}``: ``covered`` is the share of all held-out rows whose true value lies in its
        interval (the empirical coverage), ``rows`` at most INTERVAL_POINTS of them sorted by
        prediction. None when the calibration has too few rows for ``coverage`` (an unbounded
        interval has nothing to draw).
    """
    import warnings

    from archtune.conformal import interval_of

    with warnings.catch_warnings():  # too few calibration rows: said by returning None
        warnings.simplefilter("ignore", RuntimeWarning)
        # interval_of: a quantile network's calibration reads its predicted quantiles of X
        lower, upper = interval_of(model, calibration, prediction, X, coverage)
    if lower.ndim > 1:
        lower, upper, prediction = lower[:, 0], upper[:, 0], prediction[:, 0]
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        return None
    inside = (actual >= lower) & (actual <= upper)
    keep = rng.choice(len(actual), size=min(INTERVAL_POINTS, len(actual)), replace=False)
    keep = keep[np.argsort(prediction[keep], kind="stable")]
    return {"coverage": coverage, "covered": float(inside.mean()), "n_rows": int(len(actual)),
            "mean_width": float(np.mean(upper - lower)),
            "rows": {"predicted": prediction[keep].tolist(), "lower": lower[keep].tolist(),
                     "upper": upper[keep].tolist(), "actual": actual[keep].tolist()}}


def calibration(positive: np.ndarray, probability: np.ndarray, n_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability of the positive class's probability: `sklearn.calibration.calibration_curve`
    with ``n_bins`` uniform bins; ``counts`` is the number of rows in each non-empty bin (the
    same bins, in the same order)."""
    from sklearn.calibration import calibration_curve

    prob_true, prob_pred = calibration_curve(positive, probability, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], probability)  # the binning calibration_curve uses
    counts = np.bincount(bins, minlength=n_bins)
    return {"prob_pred": prob_pred.tolist(), "prob_true": prob_true.tolist(),
            "counts": counts[counts > 0].tolist()}


def permutation_importances(model: Any, X: pd.DataFrame, y: pd.Series, task: str, seed: int = 0) -> dict[str, Any]:
    """Permutation feature importance (Breiman 2001; `sklearn.inspection.permutation_importance`)
    of ``model`` on a random subset of (X, y): the drop of the model's ``score`` (accuracy or
    R^2) when one column is shuffled, ``n_repeats=3`` times. The subset has at most MAX_POINTS
    rows, fewer when one prediction's time says the whole would take over PERMUTATION_SECONDS
    (never fewer than MIN_PERMUTATION_ROWS); ``n_rows`` says how many, ``seconds`` the wall
    time it took."""
    from sklearn.inspection import permutation_importance

    n = min(len(X), MAX_POINTS)
    clock = time.perf_counter()
    model.predict(X.iloc[:n])
    per_row = (time.perf_counter() - clock) / max(n, 1)
    calls = X.shape[1] * PERMUTATION_REPEATS + 1
    n = min(n, max(MIN_PERMUTATION_ROWS, int(PERMUTATION_SECONDS / max(per_row * calls, 1e-12))))
    if n < len(X):
        rows = np.sort(np.random.default_rng(seed).choice(len(X), size=n, replace=False))
        X, y = X.iloc[rows], y.iloc[rows]
    started = time.perf_counter()
    result = permutation_importance(model, X, y, n_repeats=PERMUTATION_REPEATS, random_state=seed)
    seconds = time.perf_counter() - started
    order = np.argsort(-result.importances_mean, kind="stable")
    names = [str(c) for c in X.columns]
    return {"features": [names[i] for i in order], "mean": result.importances_mean[order].tolist(),
            "std": result.importances_std[order].tolist(),
            "metric": "accuracy" if task == "classification" else "r2", "n_rows": int(len(X)),
            "n_repeats": PERMUTATION_REPEATS, "seconds": seconds}


def bootstrap_interval(y_true: list[Any], y_pred: list[Any], task: str, *, level: float = 0.95,
                       n_boot: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict[str, Any]:
    """The held-out metric (accuracy, or R^2 for regression) and its percentile bootstrap
    interval (Efron & Tibshirani 1993): the rows resampled with replacement ``n_boot`` times.

    Parameters
    ----------
    y_true, y_pred : sequences of length n_rows
        Labels or values, as stored in evaluation.json.
    task : {"classification", "regression"}
    level : float
        Coverage of the interval (0.95: from the 2.5th to the 97.5th percentile).

    Returns
    -------
    dict
        ``{"metric", "value", "low", "high", "level", "n_boot"}``; for R^2, resamples whose
        targets are constant are skipped (R^2 is undefined there).

    Raises
    ------
    ValueError
        No rows, or y_true and y_pred of different lengths.
    """
    if len(y_true) == 0 or len(y_true) != len(y_pred):
        raise ValueError(f"bootstrap_interval: y_true has {len(y_true)} rows and y_pred {len(y_pred)}")
    rng = np.random.default_rng(seed)
    n = len(y_true)
    if task == "classification":
        correct = (np.asarray(y_true, dtype=object) == np.asarray(y_pred, dtype=object)).astype(float)
        value = float(correct.mean())
        stats = [correct[rng.integers(0, n, size=(chunk, n))].mean(axis=1) for chunk in _chunks(n_boot, n)]
        metric = "accuracy"
    else:
        actual, predicted = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
        value = _r2(actual, predicted)
        stats = []
        for chunk in _chunks(n_boot, n):
            rows = rng.integers(0, n, size=(chunk, n))
            a, p = actual[rows], predicted[rows]
            total = ((a - a.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            ok = total > 0
            stats.append(1.0 - ((a - p) ** 2).sum(axis=1)[ok] / total[ok])
        metric = "r2"
    values = np.concatenate(stats)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail]) if len(values) else (math.nan, math.nan)
    return {"metric": metric, "value": value, "low": float(low), "high": float(high), "level": level,
            "n_boot": int(len(values))}


def _chunks(n_boot: int, n_rows: int) -> list[int]:
    """Resamples per chunk, so that one chunk's index matrix stays near 2M entries."""
    per = max(1, 2_000_000 // max(n_rows, 1))
    return [min(per, n_boot - start) for start in range(0, n_boot, per)]


def _r2(actual: np.ndarray, predicted: np.ndarray) -> float:
    total = float(((actual - actual.mean()) ** 2).sum())
    return math.nan if total == 0 else 1.0 - float(((actual - predicted) ** 2).sum()) / total


def _plain(values: list[Any]) -> list[Any]:
    """NumPy scalars as plain Python values, so that json.dumps takes them."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


__all__ = ["EVALUATION_FILE", "INTERVAL_COVERAGE", "bootstrap_interval", "calibration", "evaluate",
           "permutation_importances", "prediction_intervals"]
