"""Prediction intervals with a coverage guarantee: split-conformal calibration of a regressor.

A regressor's absolute errors on rows it was not trained on (the validation rows a network's
fit holds out for early stopping, the out-of-fold rows of a bag, the validation rows an
ensemble was selected on) are its conformity scores. For a new row, the interval
``prediction +/- q`` with ``q`` the ceil((n + 1) * coverage)-th smallest of the n scores covers
the true value with probability at least ``coverage`` when the calibration rows and the new
row are exchangeable (Vovk et al. 2005; Lei et al. 2018, "Distribution-free predictive
inference for regression"; Angelopoulos & Bates 2021, "A gentle introduction to conformal
prediction", section 1). Each output of a multi-output regressor is calibrated on its own.

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
        coverage = check_coverage(coverage)
        k = math.ceil((self.n_rows + 1) * coverage)
        if k > self.n_rows:
            warnings.warn(f"{self.n_rows} calibration rows ({self.source}) are too few for coverage={coverage}: "
                          f"at least {math.ceil(coverage / (1 - coverage))} are needed, and the interval is "
                          "unbounded", RuntimeWarning, stacklevel=3)
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
    def from_json(cls, data: Any, where: str) -> "Calibration":
        """Read `to_json`'s record; a record that is not one is a BundleError naming ``where``."""
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
    return calibration.interval(model.predict(X, **predict_params), coverage)


__all__ = ["Calibration", "calibrate", "check_coverage", "predict_interval"]
