"""Prediction sets with a coverage guarantee: adaptive prediction sets for a classifier.

The classification counterpart of archtune.conformal's intervals. A classifier's class
probabilities on rows it was not trained on (the validation rows a network's fit holds out,
a bag's out-of-fold rows, the validation rows an ensemble was selected on) give one
conformity score per row: the probability mass of the classes ranked above the true class
(adaptive prediction sets, APS: Romano, Sesia & Candes 2020, "Classification with valid and
adaptive coverage"; Angelopoulos & Bates 2021, section 2.1). For a new row, the set holds every
class whose mass ranked above it is at most ``t``, the ceil((n + 1) * coverage)-th smallest of
the n scores: the classes in decreasing probability, the most probable always, until their mass
passes ``t``. The set holds the true class exactly when its score is at most ``t``, hence with
probability at least ``coverage`` when the calibration rows and the new row are exchangeable.

This is the deterministic form of the paper's randomised score (its uniform draw at 0): the
same sets for the same rows, never empty, and coverage at least the target (more where the
true class is the most probable one for more rows than the target share: the score's atom at
0). Rows the network is confident about get one class; ambiguous rows get several. The
guarantee is marginal (over rows), and the validation rows also chose the best epoch, which
makes them slightly optimistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from archtune.conformal import check_coverage, conformal_rank
from archtune.errors import BundleError, InvalidParameterError

METHOD = "adaptive prediction sets"


def _ranked_mass(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, mass): each row's classes by decreasing probability (ties by column, stably)
    and the probability mass up to and including each of them, both of shape (n, n_classes)."""
    order = np.argsort(-proba, axis=1, kind="stable")
    return order, np.cumsum(np.take_along_axis(proba, order, axis=1), axis=1)


def aps_scores(proba: Any, codes: Any) -> np.ndarray:
    """The APS score of each row, shape (n,): the mass of the classes ranked above its true
    class (``codes``: the column of ``proba`` of each row's class)."""
    proba = np.asarray(proba, dtype="float64")
    codes = np.asarray(codes, dtype="int64")
    order, mass = _ranked_mass(proba)
    rank = np.argmax(order == codes[:, None], axis=1)
    rows = np.arange(len(codes))
    return np.clip(mass[rows, rank] - proba[rows, codes], 0.0, 1.0)


@dataclass(frozen=True)
class SetCalibration:
    """Conformity scores of a classifier.

    Parameters
    ----------
    scores : ndarray of shape (n_rows,)
        APS scores (probability mass, in [0, 1]) on the calibration rows, sorted.
    source : str
        Which rows they were measured on, in words.
    """

    scores: np.ndarray
    source: str

    @property
    def n_rows(self) -> int:
        return int(self.scores.shape[0])

    def threshold(self, coverage: float) -> float:
        """The mass a set must reach for ``coverage``: the ceil((n + 1) * coverage)-th smallest
        score; 1 (every class, with a warning) when n is too small for that coverage."""
        k = conformal_rank(self.n_rows, coverage, self.source, "every set holds every class")
        if k is None:
            return math.inf
        return float(self.scores[k - 1])

    def sets(self, proba: Any, coverage: float) -> np.ndarray:
        """Boolean array of shape (n_samples, n_classes), columns as ``proba``'s: whether each
        class is in each row's set, that is whether the mass ranked above it is at most the
        threshold (its score, were it the true class, would be)."""
        proba = np.asarray(proba, dtype="float64")
        threshold = self.threshold(coverage)
        order, mass = _ranked_mass(proba)
        inside_ranked = np.clip(mass - np.take_along_axis(proba, order, axis=1), 0.0, 1.0) <= threshold
        inside_ranked[:, 0] = True  # the most probable class: nothing above it (rounding aside)
        inside = np.zeros_like(inside_ranked)
        np.put_along_axis(inside, order, inside_ranked, axis=1)
        return inside

    def to_json(self) -> dict[str, Any]:
        return {"method": METHOD, "source": self.source, "scores": self.scores.tolist()}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "SetCalibration":
        """Read `to_json`'s record; a record that is not one is a BundleError naming ``where``."""
        try:
            scores = np.asarray(data["scores"], dtype="float64")
            if scores.ndim != 1 or not scores.size or not np.all(np.isfinite(scores)):
                raise ValueError("scores must be a non-empty list of numbers")
            if (scores < 0).any() or (scores > 1 + 1e-6).any():
                raise ValueError("scores must be probability masses in [0, 1]")
            if not np.all(np.diff(scores) >= 0):
                raise ValueError("scores must be sorted")
            return cls(scores, str(data["source"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: the prediction-set calibration is not valid ({exc})") from None


def calibrate_sets(codes: Any, proba: Any, source: str) -> SetCalibration | None:
    """The `SetCalibration` of class probabilities (n_rows, n_classes) against each row's class
    code (its column); None without rows."""
    codes = np.asarray(codes).reshape(-1)
    if codes.shape[0] == 0:
        return None
    return SetCalibration(np.sort(aps_scores(proba, codes)), source)


def calibration_from_json(data: Any, where: str) -> Any:
    """A bundle's calibration record: a classifier's `SetCalibration` or a regressor's
    archtune.conformal calibration, by its ``method``."""
    if isinstance(data, dict) and data.get("method") == METHOD:
        return SetCalibration.from_json(data, where)
    from archtune.conformal import Calibration

    return Calibration.from_json(data, where)


def predict_set(model: Any, X: Any, coverage: float, **predict_params: Any) -> np.ndarray:
    """Whether each class of ``model.classes_`` is in each row's prediction set: boolean array
    of shape (n_samples, n_classes), by ``model.conformal_`` and
    ``model.predict_proba(X, **predict_params)``.

    Raises
    ------
    InvalidParameterError
        A bad coverage, a model without a set calibration (it held out no rows), or a
        multi-label classifier.
    """
    from archtune.data.multilabel import is_multilabel

    coverage = check_coverage(coverage)
    calibration = getattr(model, "conformal_", None)
    if is_multilabel(model):
        raise InvalidParameterError(f"{type(model).__name__} is multi-label: prediction sets are for one class per "
                                    "row (a set of labels per row is not the same guarantee); use predict_proba")
    if not isinstance(calibration, SetCalibration):
        raise InvalidParameterError(
            f"{type(model).__name__} has no prediction-set calibration: it was fitted without held-out rows "
            "(validation_fraction=0 and no validation_data); refit with validation rows")
    return calibration.sets(model.predict_proba(X, **predict_params), coverage)


__all__ = ["METHOD", "SetCalibration", "aps_scores", "calibrate_sets", "calibration_from_json", "predict_set"]
