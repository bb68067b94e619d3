"""From a search's models to its ensemble: the candidates' predictions on the validation rows,
a guard against fitting those rows, and the selection.

The guard (as in Caruana et al. 2004, section 5, and Auto-sklearn's hold-out selection): the
validation rows are split in two halves; weights selected on one half are scored on the other
against the best single model chosen on the same half, and the other way round. The ensemble
is used only when it is not worse on the halves it did not see; its final weights are then
selected on all the validation rows.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from archtune.ensemble.bootstrap import bootstrap_scores
from archtune.ensemble.model import Ensemble, Member, make_ensemble
from archtune.ensemble.selection import combine, select_weights


# Resamples of the validation rows for the leaderboard's intervals: for scorers that are not sums
# over rows (archtune.ensemble.bootstrap) each costs a scorer call per candidate (up to 16
# networks and the baselines), so fewer than the textbook 1000-2000.
INTERVAL_RESAMPLES = 200


class _Recorded(BaseEstimator):
    """Stands in for a model inside a scikit-learn scorer: ``X`` is a column of row numbers
    into predictions already made."""

    def __init__(self, values: np.ndarray, classes: np.ndarray | None = None):
        self.values = values
        self.classes = classes

    def _rows(self, X: Any) -> np.ndarray:
        return np.asarray(X)[:, 0].astype(int)


class _RecordedClassifier(ClassifierMixin, _Recorded):
    @property
    def classes_(self) -> np.ndarray:
        return self.classes

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.values[self._rows(X)]

    def predict(self, X: Any) -> np.ndarray:
        return self.classes[np.argmax(self.values[self._rows(X)], axis=1)]


class _RecordedRegressor(RegressorMixin, _Recorded):
    def predict(self, X: Any) -> np.ndarray:
        return self.values[self._rows(X)]


def recorded(values: np.ndarray, classes: np.ndarray | None) -> Any:
    """A stand-in estimator for a scikit-learn scorer whose ``X`` is a column of row numbers
    into ``values`` (probabilities with ``classes``, or values)."""
    return _RecordedClassifier(values, classes) if classes is not None else _RecordedRegressor(values)


@dataclass
class EnsembleChoice:
    """What the selection decided and why.

    ensemble : Ensemble
        Selected on all the validation rows (its ``val_score`` is on those same rows).
    used : bool
        Whether it replaces the best single model: it holds more than one member and the
        guard's gain is not negative.
    gain : float
        The ensemble's score minus the best single model's, on the halves of the validation
        rows each was not selected on (mean of the two).
    best_single : str
        The best single candidate on all the validation rows.
    final : Ensemble or None
        What predicts: the ensemble when used; else the best single candidate alone when it
        is not a network (LightGBM, another baseline, a bag); None when the best network is
        the best single model (the search's own best network then predicts).
    networks_gain : float
        What the networks add: the score of the ensemble selected from every candidate minus
        that of the ensemble selected from the candidates that are not networks (gradient
        boosting and the other baselines), on the halves of the validation rows each was not
        selected on (mean of the two); NaN without candidates of both sorts.
    """

    ensemble: Ensemble
    used: bool
    gain: float
    best_single: str
    best_single_score: float
    final: Ensemble | None = None
    networks_gain: float = float("nan")


class EnsembleLibrary:
    """The candidates of an ensemble with their validation predictions.

    Parameters
    ----------
    task : {"classification", "regression"}
    candidates : list of Member
        Fitted models (best first: ties in the selection go to the earlier one).
    X_val : table of shape (n_val, n_features)
    y_val : array of shape (n_val,), or (n_val, n_outputs) for a multi-output regression
    scorer : callable
        A scikit-learn scorer ``scorer(estimator, X, y)``, higher is better.
    classes : array, optional
        Every class label of the task (classification).
    columns : list of str
        The table's columns.

    given : dict, optional
        Member name -> its validation predictions when they must not be recomputed (a bag's
        out-of-fold predictions: its members trained on most validation rows).

    A candidate whose predictions fail or are not finite is left out with a warning.
    """

    def __init__(self, task: str, candidates: list[Member], X_val: Any, y_val: Any, scorer: Any,
                 classes: np.ndarray | None, columns: list[str], seed: int = 0,
                 given: dict[str, np.ndarray] | None = None, sample_weight: np.ndarray | None = None):
        self.task = task
        self.classes = classes
        self.columns = columns
        self.scorer = scorer
        self.seed = seed
        self.y_val = np.asarray(y_val)
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight, dtype="float64")
        self.members: list[Member] = []
        self.predictions: list[np.ndarray] = []
        for member in candidates:
            try:
                prediction = (given[member.name] if given and member.name in given
                              else member.prediction(X_val, classes))
            except Exception as exc:  # one broken candidate must not sink the ensemble
                warnings.warn(f"{member.name} left out of the ensemble: its predictions failed "
                              f"({type(exc).__name__}: {exc})", RuntimeWarning, stacklevel=2)
                continue
            if not np.all(np.isfinite(prediction)):
                warnings.warn(f"{member.name} left out of the ensemble: non-finite predictions", RuntimeWarning,
                              stacklevel=2)
                continue
            self.members.append(member)
            self.predictions.append(prediction)
        if task == "classification":
            position = {label: j for j, label in enumerate(classes)}
            self.targets = np.asarray([position[v] for v in self.y_val])
        else:
            self.targets = self.y_val.astype("float64")

    def _score(self, prediction: np.ndarray, rows: np.ndarray) -> float:
        stand_in = recorded(prediction, self.classes if self.task == "classification" else None)
        if self.sample_weight is None:
            return float(self.scorer(stand_in, rows.reshape(-1, 1), self.y_val[rows]))
        return float(self.scorer(stand_in, rows.reshape(-1, 1), self.y_val[rows], sample_weight=self.sample_weight[rows]))

    def _weights_of(self, rows: np.ndarray | None = None) -> np.ndarray | None:
        if self.sample_weight is None:
            return None
        return self.sample_weight if rows is None else self.sample_weight[rows]

    def _halves(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.random.default_rng(self.seed).permutation(len(self.y_val))
        return order[: len(order) // 2], order[len(order) // 2:]

    def intervals(self, extra: dict[str, np.ndarray] | None = None, resamples: int = INTERVAL_RESAMPLES,
                  level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Percentile bootstrap intervals of each candidate's validation score (and of the
        ``extra`` predictions, such as the ensemble's): the validation rows resampled with
        replacement ``resamples`` times, the same resamples for every candidate, so their
        intervals can be compared (Efron & Tibshirani, An Introduction to the Bootstrap, 1993).

        Returns
        -------
        dict
            Candidate name -> (low, high) of the central ``level`` share of the resampled scores.
        """
        rng = np.random.default_rng(self.seed)
        n = len(self.y_val)
        draws = [rng.integers(0, n, n) for _ in range(resamples)]
        named = {**{m.name: p for m, p in zip(self.members, self.predictions)}, **(extra or {})}
        found: dict[str, tuple[float, float]] = {}
        tail = 100 * (1 - level) / 2
        for name, prediction in named.items():
            scores = bootstrap_scores(self.scorer, prediction, self.y_val,
                                      self.classes if self.task == "classification" else None, draws,
                                      self.sample_weight)
            if scores is None:  # a scorer that is not a sum over rows: called on each resample
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a resample with one class warns in some metrics
                    scores = np.array([self._score(prediction, rows) for rows in draws], dtype="float64")
            scores = scores[np.isfinite(scores)]
            if len(scores):
                found[name] = (float(np.percentile(scores, tail)), float(np.percentile(scores, 100 - tail)))
        return found

    def choose(self) -> EnsembleChoice | None:
        """Select weights on the validation rows and decide by the guard whether to use them;
        None without candidates. Every member kind can be saved in a bundle
        (`archtune.bundles.ensemble`), so what is chosen here is what a run saves."""
        if not self.members:
            return None
        members, predictions = self.members, self.predictions
        everything = np.arange(len(self.y_val))
        singles = [self._score(p, everything) for p in predictions]
        best = int(np.nanargmax(singles)) if any(math.isfinite(s) for s in singles) else 0
        gains, network_gains = [], []
        # Candidates that are networks (a bag is one): the comparison "with and without them".
        networked = [m.kind in ("network", "bag") for m in members]
        others = [i for i, is_network in enumerate(networked) if not is_network]
        if len(self.y_val) >= 4:
            halves = self._halves()
            for selected_on, held_out in (halves, halves[::-1]):
                weights = select_weights([p[selected_on] for p in predictions], self.targets[selected_on], self.task,
                                         sample_weight=self._weights_of(selected_on))
                ensemble_score = self._score(combine(predictions, weights), held_out)
                on_half = [self._score(p, selected_on) for p in predictions]
                single = int(np.nanargmax(on_half)) if any(math.isfinite(s) for s in on_half) else 0
                gains.append(ensemble_score - self._score(predictions[single], held_out))
                if others and len(others) < len(members):
                    without = select_weights([predictions[i][selected_on] for i in others],
                                             self.targets[selected_on], self.task,
                                             sample_weight=self._weights_of(selected_on))
                    network_gains.append(ensemble_score - self._score(
                        combine([predictions[i] for i in others], without), held_out))
        gain = float(np.mean(gains)) if gains else float("nan")
        networks_gain = float(np.mean(network_gains)) if network_gains else float("nan")
        weights = select_weights(predictions, self.targets, self.task, sample_weight=self._weights_of())
        flat_members, flat_weights = flatten_bags(members, weights)
        ensemble = make_ensemble(self.task, flat_members, flat_weights, self.classes,
                                 self._score(combine(predictions, weights), everything), self.columns)
        # One member is no ensemble; an ensemble worse than the best single model on the rows it
        # did not see is not used either. Then the best single model predicts: the best network
        # (the search's refit serves, final None), or a baseline or bag alone when it is better.
        # (Its score on all the validation rows is not a criterion: it is in-sample, and on
        # credit_default it trailed the best single model by one row of 3200 while the
        # held-out halves gave the ensemble +0.0025, and the test rows +0.0010.)
        used = bool(gains) and gain >= 0 and len(ensemble.members) > 1
        final: Ensemble | None = ensemble if used else None
        if not used and members[best].kind != "network":
            alone_members, alone_weights = flatten_bags([members[best]], np.ones(1))
            final = make_ensemble(self.task, alone_members, alone_weights, self.classes, singles[best], self.columns)
        return EnsembleChoice(ensemble, used, gain, members[best].name, singles[best], final, networks_gain)


def flatten_bags(members: list[Member], weights: np.ndarray) -> tuple[list[Member], np.ndarray]:
    """A candidate that is itself an ensemble (a bag) becomes its members, sharing its weight:
    the same average, and a bundle holds only plain members."""
    flat, out = [], []
    for member, weight in zip(members, weights):
        if weight > 0 and isinstance(member.model, Ensemble):
            for inner, share in zip(member.model.members, member.model.weights):
                flat.append(Member(f"{member.name}: {inner.name}", inner.model, inner.kind, inner.val_score,
                                   member.trial))
                out.append(weight * share)
        elif weight > 0:
            flat.append(member)
            out.append(weight)
    return flat, np.asarray(out)


def refit_members(ensemble: Ensemble, X: Any, y: Any, networks: dict[int, Any],
                  sample_weight: np.ndarray | None = None, deadline: float | None = None) -> Ensemble:
    """The ensemble with its weights kept and its members trained on all rows: LightGBM and
    CatBoost members fitted again on (X, y) (seconds; one booster per output of a 2-D ``y``
    for LightGBM) with the rounds early stopping kept scaled to the rows (`refit_params`),
    network members replaced by the refitted network of their trial where ``networks`` (trial
    number -> refitted estimator) has one; the others stay as selected. With a ``deadline``
    (``time.monotonic()`` seconds), a gradient-boosting member whose refit would end after it
    (its own fit's seconds, ``fit_seconds_``, times the rows' ratio) stays as selected, fitted
    on the training rows: the time budget holds."""
    members = []
    for member in ensemble.members:
        if member.kind in ("lightgbm", "catboost"):
            model = member.model
            scale = len(X) / getattr(model, "n_fit_rows_", len(X))
            if deadline is not None and time.monotonic() + getattr(model, "fit_seconds_", 0.0) * scale > deadline:
                members.append(member)
                continue
            refit = type(model)(kinds=model.kinds, random_state=model.random_state,
                                params=model.refit_params(scale) or None).fit(X, y, sample_weight=sample_weight)
            member = Member(member.name, refit, member.kind, member.val_score, member.trial)
        elif member.kind == "network" and member.trial in networks:
            member = Member(member.name, networks[member.trial], member.kind, member.val_score, member.trial)
        members.append(member)
    return ensemble.with_members(members)


__all__ = ["EnsembleChoice", "EnsembleLibrary", "flatten_bags", "refit_members"]
