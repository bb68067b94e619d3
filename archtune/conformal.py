"""Prediction intervals with a coverage guarantee: split-conformal calibration of a regressor.

A regressor's absolute errors on rows it was not trained on (the validation rows a network's
fit holds out for early stopping, the out-of-fold rows of a bag, the validation rows an
ensemble was selected on) are its conformity scores. For a new row, the interval
``prediction +/- q`` with ``q`` the ceil((n + 1) * coverage)-th smallest of the n scores covers
the true value with probability at least ``coverage`` when the calibration rows and the new
row are exchangeable (Vovk et al. 2005; Lei et al. 2018, "Distribution-free predictive
inference for regression"; Angelopoulos & Bates 2021, "A gentle introduction to conformal
prediction", section 1). Each output of a multi-output regressor is calibrated on its own.

A regressor with quantile outputs (``loss="quantile"``, archtune.quantiles) is calibrated by
conformalised quantile regression instead (`QuantileCalibration`; Romano et al. 2019): the
scores are ``max(q_lo - y, y - q_hi)`` of a pair of predicted quantiles, and the interval
``[q_lo - Q, q_hi + Q]`` keeps the same guarantee with each row's own width.

The guarantee is marginal (over rows), not for each row; the validation rows also chose the
best epoch (and an ensemble's weights), which makes them slightly optimistic: bench/intervals.py
measures the coverage on held-out rows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from archtune.errors import BundleError, InvalidParameterError

CQR = "conformalised quantile regression"  # QuantileCalibration's method in a bundle


def check_coverage(coverage: Any) -> float:
    """``coverage`` as a float in (0, 1).

    Raises
    ------
    InvalidParameterError
    """
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float)) or not 0 < coverage < 1:
        raise InvalidParameterError(f"coverage must be a number between 0 and 1 (exclusive), such as 0.9; "
                                    f"got coverage={coverage!r}")
    return float(coverage)


def conformal_rank(n_rows: int, coverage: float, source: str, unbounded: str) -> int | None:
    """The rank k (1-based) of the split-conformal order statistic, ceil((n + 1) * coverage),
    among ``n_rows`` sorted scores; None, with a RuntimeWarning that names ``source`` and says
    what follows (``unbounded``), when the rows are too few for that coverage."""
    coverage = check_coverage(coverage)
    k = math.ceil((n_rows + 1) * coverage)
    if k > n_rows:
        warnings.warn(f"{n_rows} calibration rows ({source}) are too few for coverage={coverage}: at least "
                      f"{math.ceil(coverage / (1 - coverage))} are needed, and {unbounded}", RuntimeWarning,
                      stacklevel=4)
        return None
    return k


@dataclass(frozen=True)
class Calibration:
    """Conformity scores of a regressor.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_outputs)
        Absolute errors on the calibration rows, each column sorted.
    source : str
        Which rows they were measured on, in words.
    one_d : bool
        Whether the regressor predicts shape (n_samples,) (one output, as fitted).
    """

    scores: np.ndarray
    source: str
    one_d: bool = True

    @property
    def n_rows(self) -> int:
        return int(self.scores.shape[0])

    def radius(self, coverage: float) -> np.ndarray:
        """The half-width for ``coverage``, one per output: the ceil((n + 1) * coverage)-th
        smallest score; infinite (with a warning) when n is too small for that coverage."""
        k = conformal_rank(self.n_rows, coverage, self.source, "the interval is unbounded")
        if k is None:
            return np.full(self.scores.shape[1], np.inf)
        return self.scores[k - 1].copy()

    def interval(self, prediction: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper), each shaped like ``prediction``."""
        radius = self.radius(coverage)
        values = np.asarray(prediction, dtype="float64")
        shaped = radius[0] if values.ndim == 1 else radius
        return values - shaped, values + shaped

    def to_json(self) -> dict[str, Any]:
        return {"method": "split-conformal absolute residual", "source": self.source, "one_d": self.one_d,
                "scores": self.scores.T.tolist()}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Calibration | QuantileCalibration":
        """Read `to_json`'s record (or `QuantileCalibration.to_json`'s, by its ``method``); a
        record that is not one is a BundleError naming ``where``."""
        if isinstance(data, dict) and data.get("method") == CQR:
            return QuantileCalibration.from_json(data, where)
        try:
            scores = np.asarray(data["scores"], dtype="float64").T
            if scores.ndim != 2 or not scores.size or not np.all(np.isfinite(scores)) or (scores < 0).any():
                raise ValueError("scores must be a non-empty table of non-negative numbers")
            if not np.all(np.diff(scores, axis=0) >= 0):
                raise ValueError("scores must be sorted")
            return cls(scores, str(data["source"]), bool(data["one_d"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: the interval calibration is not valid ({exc})") from None


def calibrate(y_true: Any, prediction: Any, source: str) -> Calibration | None:
    """The `Calibration` of predictions against true values (both of shape (n_rows,) or
    (n_rows, n_outputs)); None without rows."""
    truth = np.asarray(y_true, dtype="float64")
    values = np.asarray(prediction, dtype="float64")
    if truth.shape[0] == 0:
        return None
    one_d = values.ndim == 1
    errors = np.abs(truth.reshape(len(truth), -1) - values.reshape(len(values), -1))
    return Calibration(np.sort(errors, axis=0), source, one_d)


@dataclass(frozen=True)
class QuantileCalibration:
    """Conformalised quantile regression (CQR; Romano, Patterson & Candes 2019, "Conformalized
    quantile regression", algorithm 1) of a regressor with quantile outputs (archtune.quantiles).

    For a pair of fitted levels (lo, hi) the conformity score of a calibration row is
    ``max(q_lo - y, y - q_hi)`` (negative inside the band), and the interval of a new row
    ``[q_lo - Q, q_hi + Q]`` with Q the ceil((n + 1) * coverage)-th smallest score: the same
    finite-sample guarantee as the absolute residual's, with a width that follows each row's
    predicted spread. Every nested pair (the i-th lowest with the i-th highest level) is
    calibrated; `pair` picks the one for a coverage.

    Parameters
    ----------
    levels : tuple of float
        The fitted quantile levels, increasing.
    pairs : tuple of (int, int)
        Indices (lo, hi) into ``levels`` of each calibrated pair, widest first.
    calibrations : tuple of Calibration
        Each pair's sorted scores, of shape (n_rows, n_outputs) (they may be negative).
    """

    levels: tuple[float, ...]
    pairs: tuple[tuple[int, int], ...]
    calibrations: tuple[Calibration, ...]

    @property
    def source(self) -> str:
        return self.calibrations[0].source

    @property
    def one_d(self) -> bool:
        return self.calibrations[0].one_d

    @property
    def n_rows(self) -> int:
        return self.calibrations[0].n_rows

    def pair(self, coverage: float) -> int:
        """Which pair serves ``coverage``: (alpha/2, 1 - alpha/2) when fitted, else the
        narrowest pair whose nominal coverage ``hi - lo`` is at least ``coverage``, else the
        widest (CQR then widens it; the guarantee holds for any pair, Romano et al. theorem 1)."""
        coverage = check_coverage(coverage)
        nominal = [self.levels[j] - self.levels[i] for i, j in self.pairs]
        enclosing = [k for k, width in enumerate(nominal) if width >= coverage - 1e-9]
        return min(enclosing, key=lambda k: nominal[k]) if enclosing else 0

    def interval(self, quantiles: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) from predicted quantiles of shape (n, n_levels) or
        (n, n_outputs, n_levels); each of shape (n,) or (n, n_outputs)."""
        k = self.pair(coverage)
        lo, hi = self.pairs[k]
        values = np.asarray(quantiles, dtype="float64")
        radius = self.calibrations[k].radius(coverage)
        shaped = radius[0] if values.ndim == 2 else radius
        return values[..., lo] - shaped, values[..., hi] + shaped

    def to_json(self) -> dict[str, Any]:
        return {"method": CQR, "source": self.source, "one_d": self.one_d,
                "levels": list(self.levels), "pairs": [list(p) for p in self.pairs],
                "scores": [c.scores.T.tolist() for c in self.calibrations]}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "QuantileCalibration":
        """Read `to_json`'s record; a record that is not one is a BundleError naming ``where``."""
        try:
            levels = tuple(float(v) for v in data["levels"])
            pairs = tuple((int(i), int(j)) for i, j in data["pairs"])
            if not pairs or len(pairs) != len(data["scores"]) or any(not 0 <= i < j < len(levels) for i, j in pairs):
                raise ValueError("pairs must index the levels, one table of scores each")
            calibrations = []
            for table in data["scores"]:
                scores = np.asarray(table, dtype="float64").T
                if scores.ndim != 2 or not scores.size or not np.all(np.isfinite(scores)):
                    raise ValueError("scores must be a non-empty table of numbers")
                if not np.all(np.diff(scores, axis=0) >= 0):
                    raise ValueError("scores must be sorted")
                calibrations.append(Calibration(scores, str(data["source"]), bool(data["one_d"])))
            return cls(levels, pairs, tuple(calibrations))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: the interval calibration is not valid ({exc})") from None


def calibrate_quantiles(y_true: Any, quantiles: Any, levels: tuple[float, ...],
                        source: str) -> "QuantileCalibration | Calibration | None":
    """The `QuantileCalibration` of predicted quantiles (shape (n_rows, n_levels) or
    (n_rows, n_outputs, n_levels)) against true values; with one level, the absolute residual's
    `Calibration` of that level; None without rows."""
    truth = np.asarray(y_true, dtype="float64")
    values = np.asarray(quantiles, dtype="float64")
    if truth.shape[0] == 0:
        return None
    one_d = values.ndim == 2
    if len(levels) < 2:
        return calibrate(truth, values[..., 0], source)
    truth = truth.reshape(len(truth), -1)
    values = values.reshape(len(values), truth.shape[1], len(levels))
    pairs = tuple((i, len(levels) - 1 - i) for i in range(len(levels) // 2))
    calibrations = tuple(
        Calibration(np.sort(np.maximum(values[..., i] - truth, truth - values[..., j]), axis=0), source, one_d)
        for i, j in pairs)
    return QuantileCalibration(tuple(levels), pairs, calibrations)


def interval_of(model: Any, calibration: Any, prediction: np.ndarray, X: Any, coverage: float,
                **predict_params: Any) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of ``calibration`` for X, given ``model``'s point ``prediction`` of X
    (a `QuantileCalibration` reads ``model.predict_quantiles(X)`` instead)."""
    if isinstance(calibration, QuantileCalibration):
        return calibration.interval(model.predict_quantiles(X, **predict_params), coverage)
    return calibration.interval(prediction, coverage)


def predict_interval(model: Any, X: Any, coverage: float, **predict_params: Any) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of ``model.predict(X, **predict_params)`` by ``model.conformal_``
    (``predict_params``: ``n_threads`` and ``device``, archtune.predicting).

    Raises
    ------
    InvalidParameterError
        A bad coverage, or a model without a calibration (it held out no rows).
    """
    coverage = check_coverage(coverage)
    calibration = getattr(model, "conformal_", None)
    if calibration is None:
        raise InvalidParameterError(
            f"{type(model).__name__} has no interval calibration: it was fitted without held-out rows "
            "(validation_fraction=0 and no validation_data), or is a classifier; refit with validation rows")
    if isinstance(calibration, QuantileCalibration):
        return calibration.interval(model.predict_quantiles(X, **predict_params), coverage)
    return calibration.interval(model.predict(X, **predict_params), coverage)


__all__ = ["Calibration", "QuantileCalibration", "calibrate", "calibrate_quantiles", "check_coverage", "conformal_rank",
           "interval_of", "predict_interval"]
