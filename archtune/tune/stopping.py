"""``budget="auto"``: a search that stops itself when more trials are not expected to improve
on the noise of the validation score, within a time cap.

Before each new trial (or cohort) is claimed (archtune.tune.tuner.Search._claim), `StoppingRule`
compares two numbers:

- **the noise of the validation score**: the standard error of the best trial's validation
  score, the standard deviation of its score over `BOOTSTRAP_RESAMPLES` bootstrap resamples of
  the validation rows (Efron & Tibshirani 1993), from its network's predictions (one predict,
  then row sums for accuracy, R^2 and the mean errors, archtune.ensemble.bootstrap; the
  scorer on each resample otherwise), divided by sqrt(K) with ``cv=K`` (the value is the mean
  over K disjoint validation folds). Computed once per new best trial. An improvement smaller
  than this cannot be told from the luck of the validation rows (Makarova et al. 2022, the
  criterion of Optuna's terminator, with the cross-validation error replaced by this
  bootstrap).
- **the expected improvement of more trials**: the larger of two estimates of what as many
  trials again would add to the best value (`expected_gain`): the rise of the best value over
  the last half of the finished trials (at least `MIN_WINDOW`), and the extreme-value
  extrapolation of the upper tail of the completed values (the mean scaled spacing of the top
  values, times ln 2: what doubling the draws adds to a maximum in the Gumbel domain; de Haan
  & Ferreira 2006, ch. 3).

The search stops when the expected improvement is at most the noise, and not before
`MIN_WINDOW` + 1 trials finished (the recipes first, archtune.tune.opening.enqueue_recipes, then
TPE's 8 random start-up trials and some it guided).

Why these choices, measured (bench/self_stopping.py, whose docstring has the figures):

- *The noise is the validation rows' bootstrap, not the training seed's.* The default recipe's
  validation score over 5 training seeds varied 14-19x less than one fit's bootstrap standard
  error (magic at 4000 rows: 0.0009 against 0.0127; cpu_act: 0.00015 against 0.0027): which
  rows validate is what makes a score uncertain. Optuna's `CrossValidationErrorEvaluator` needs
  fold scores, where archtune's default is one hold-out; a `StaticErrorEvaluator` constant
  would not follow the table's size and metric.
- *Not Optuna's terminator.* Its `RegretBoundEvaluator` (a Gaussian-process bound on the
  regret) stopped 2 of 6 synthetic searches of 160 trials, at their 113th and 153rd trials,
  and spent 3-140 s per search in its checks on 2 shared cores (``--replay --regret-bound``); it also
  needs a non-empty intersection of the trials' spaces (archtune's is conditional), and
  ``optuna.terminator`` is deprecated from Optuna 4.9 (removed in 6.0).
- *Both estimates, the larger.* On 30 synthetic TPE searches (``--replay --seeds 10``: noise
  sigma 0.002, 0.005, 0.01), the rule stopped at a median of 101, 35 and 31 of 160 trials with
  a mean true regret of 0.8, 1.5 and 1.1 sigma against the trial kept after all 160 (16 of 30
  within 1 sigma). Each estimate alone stopped earlier and worse: the tail extrapolation at 41,
  25, 21 trials (1.9, 1.9, 1.3 sigma; 11 within 1 sigma), the rise over a window of 10 trials
  at 33, 21, 21 (2.7, 1.7, 1.3 sigma; 12 within 1 sigma): a rise over a window is one sample of
  the future rise (0 half the time for i.i.d. draws), the tail a few top values. On real
  searches (magic and cpu_act, 4000 training rows) the rule stopped at the 24th trial, in 112
  and 155 s, with test scores 0.0050 (inside the noise) and 0.0006 above a 60 s budget's.

The time cap: `AUTO_CAP_SECONDS` (1 hour), or ``"auto:<time>"``. A budget is parsed before the
data is read, and the cap sizes what a time budget sizes (the baselines' quarter, cohorts,
refit="auto"'s share), so it is one number rather than a function of the rows. An hour lets
the rule end the search on the tables archtune is measured on: on the 16,000-row tables of
bench/search_quality.py a recipe trial takes ~40 s on one thread (4-5 trials in 180 s), so an
hour holds the 21+ trials the rule needs with room to spare; smaller tables stop long before.

Workers (archtune.tune.worker, ``--workers``) do not evaluate the rule: the coordinator does,
and records its decision in the study (``stopped``), which stops every worker at its next
claim; a worker started without a coordinator that stops (``archtune worker``) keeps to the
cap, as with a time budget.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna

AUTO = "auto"
# The time cap of budget="auto" (the module's docstring says why one hour).
AUTO_CAP_SECONDS = 3600.0
# Resamples of the validation rows for the noise: the standard error of a standard deviation
# estimated from 200 resamples is ~5% of it.
BOOTSTRAP_RESAMPLES = 200
# The observed rise of the best value is taken over the last half of the finished trials, and
# never fewer than this: a full cohort (8) and more, and with the recipes and TPE's 8 start-up
# trials before it, the least history the rule judges on.
MIN_WINDOW = 20
# Top values whose spacings estimate the upper tail (fewer when fewer trials completed).
TAIL_VALUES = 8
# The study's user attribute that records why an auto search stopped.
STOPPED_ATTR = "stopped"

TrialState = optuna.trial.TrialState


# ---------------------------------------------------------------------------------- parsing


def is_auto_text(text: str) -> bool:
    """Whether a budget written in lower case without spaces is the auto form ("auto",
    "auto:<time>")."""
    return text == AUTO or text.startswith(AUTO + ":")


def is_auto(budget: Any) -> bool:
    """Whether ``budget`` asks for a search that stops itself ("auto" or "auto:<time>")."""
    return isinstance(budget, str) and is_auto_text(budget.strip().lower().replace(" ", ""))


# ---------------------------------------------------------------------------------- the rule


def recent_gain(values: Sequence[float | None], window: int) -> float:
    """How much the best value rose over the last ``window`` finished trials (``values`` in
    trial order; None for a finished trial without a value, a pruned one); inf when no trial
    before the window has a value."""
    before = [v for v in values[:max(0, len(values) - window)] if v is not None]
    everything = [v for v in values if v is not None]
    if not before:
        return math.inf
    return max(everything) - max(before)


def tail_gain(values: Sequence[float | None], top: int = TAIL_VALUES) -> float:
    """What doubling the trials is expected to add to the best value, from the upper tail of
    the values: ln 2 times the mean of i * (x_(i) - x_(i+1)), i = 1..k, over the top k + 1
    values in decreasing order (for a maximum in the Gumbel domain these scaled spacings are
    exponential with the tail's scale, and the maximum of 2n draws exceeds that of n by that
    scale times ln 2). inf with fewer than 3 values."""
    x = np.sort(np.asarray([v for v in values if v is not None], dtype="float64"))[::-1]
    k = min(top, len(x) - 1)
    if k < 2:
        return math.inf
    spacings = np.arange(1, k + 1) * (x[:k] - x[1:k + 1])
    return float(math.log(2) * spacings.mean())


def expected_gain(values: Sequence[float | None]) -> float:
    """The expected improvement of as many trials again as ``values`` (finished trials in
    order, None without a value): the larger of the best value's rise over the last half of
    them (at least `MIN_WINDOW`) and the tail's extrapolation (`tail_gain`)."""
    window = max(MIN_WINDOW, len(values) // 2)
    return max(recent_gain(values, window), tail_gain(values))


def should_stop(values: Sequence[float | None], noise: float) -> bool:
    """Whether the search should start no more trials: at least `MIN_WINDOW` + 1 finished, and
    the expected improvement of more (`expected_gain`) at most the validation noise."""
    if len(values) <= MIN_WINDOW or not math.isfinite(noise) or noise < 0:
        return False
    return expected_gain(values) <= noise


def finished_values(study: optuna.Study) -> list[float | None]:
    """The study's finished trials in order: the (first objective's) value of a completed one,
    None for a pruned one. Failed trials are not counted."""
    out: list[float | None] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if trial.state == TrialState.COMPLETE and trial.values:
            value = float(trial.values[0])
            out.append(value if math.isfinite(value) else None)
        else:
            out.append(None)
    return out


# ---------------------------------------------------------------------------------- the noise


def validation_noise(estimator: Any, split: Any, scorer: Any, classification: bool, folds: int = 1,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> float:
    """The standard error of ``estimator``'s validation score on ``split``: the standard
    deviation of its ``scorer`` score over bootstrap resamples of the validation rows (the
    split's validation weights too), divided by sqrt(``folds``) for a value that is the mean
    over that many disjoint validation folds. NaN when it cannot be computed."""
    from archtune.ensemble.bootstrap import bootstrap_scores
    from archtune.ensemble.build import recorded

    y = np.asarray(split.y_val)
    n = len(y)
    if n < 2:
        return float("nan")
    weights = None if split.w_val is None else np.asarray(split.w_val, dtype="float64")
    if classification:
        classes = np.asarray(estimator.classes_)
        prediction = np.asarray(estimator.predict_proba(split.X_val), dtype="float64")
    else:
        classes = None
        values = np.asarray(estimator.predict(split.X_val), dtype="float64")
        prediction = values.reshape(n, -1)[:, 0] if values.ndim == 1 or values.shape[1] == 1 else values
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, n) for _ in range(resamples)]
    scores = bootstrap_scores(scorer, prediction, y, classes, draws, weights)
    if scores is None:  # not a sum over rows (roc_auc, log loss, ...): the scorer on each resample
        stand_in = recorded(prediction, classes)
        found = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a resample with one class warns in some metrics
            for rows in draws:
                extra = {} if weights is None else {"sample_weight": weights[rows]}
                try:
                    found.append(float(scorer(stand_in, rows.reshape(-1, 1), y[rows], **extra)))
                except ValueError:  # undefined on this resample (one class for roc_auc)
                    found.append(float("nan"))
        scores = np.asarray(found)
    scores = scores[np.isfinite(scores)]
    if len(scores) < resamples // 2:
        return float("nan")
    return float(np.std(scores, ddof=1) / math.sqrt(max(1, folds)))


# ---------------------------------------------------------------------------------- in a search


class StoppingRule:
    """The rule of budget="auto" in a running search: `check` before each claim.

    Parameters
    ----------
    scorer : scikit-learn scorer
        The search's (the trials' values are its scores on the first split's validation rows,
        the mean over the folds with ``cv``).
    classification : bool
    folds : int
        The splits a trial's value is the mean of (``cv``, else 1).
    started : float
        `time.monotonic()` when the search started (its ``fit``).
    cap : float
        The time cap in seconds.
    """

    def __init__(self, scorer: Any, classification: bool, folds: int, started: float, cap: float):
        self.scorer = scorer
        self.classification = classification
        self.folds = max(1, int(folds))
        self.started = started
        self.cap = float(cap)
        self._noise: dict[int, float] = {}  # trial number -> its score's standard error
        self.noise = float("nan")  # the latest estimate
        self.gain = float("inf")  # the latest expected improvement

    def check(self, search: Any) -> dict[str, Any] | None:
        """The record of the stop (`stop_record`) when the search should start no more trials,
        else None."""
        values = finished_values(search.study)
        if len(values) <= MIN_WINDOW:
            return None
        self.noise = self._best_noise(search)
        self.gain = expected_gain(values)
        if not should_stop(values, self.noise):
            return None
        return stop_record("rule", len(values), time.monotonic() - self.started, self.cap, self.noise, self.gain)

    def _best_noise(self, search: Any) -> float:
        """The noise of the best trial this process kept a network of (the study's best, unless
        another process trained it); the latest known when none is kept."""
        try:
            best = search.best_fitted
        except IndexError:  # another thread (n_jobs > 1) is sorting the kept networks this instant
            best = None
        if best is None:
            return self.noise
        number, _value, estimator = best
        if number not in self._noise:
            try:
                self._noise[number] = validation_noise(estimator, search.splits[0], self.scorer, self.classification,
                                                       self.folds)
            except Exception:  # a prediction that fails here failed the trial's score already; no estimate
                self._noise[number] = float("nan")
        found = self._noise[number]
        return found if math.isfinite(found) else self.noise


def stop_record(reason: str, trials: int, seconds: float, cap: float, noise: float | None = None,
                gain: float | None = None) -> dict[str, Any]:
    """What the study keeps (user attribute `STOPPED_ATTR`) about why an auto search stopped:
    ``reason`` "rule" or "time_cap", the finished trials, the seconds since the search started,
    the cap, the noise and the expected improvement at the last check, and ``text``, the
    sentence `archtune tune`, `archtune leaderboard` and the report show."""
    finite = (lambda v: None if v is None or not math.isfinite(v) else float(v))
    record = {"reason": reason, "trials": int(trials), "seconds": round(float(seconds), 1),
              "cap_seconds": float(cap), "noise": finite(noise), "expected_gain": finite(gain)}
    record["text"] = stop_text(record)
    return record


def stop_text(record: dict[str, Any]) -> str:
    """The sentence that says why an auto search stopped."""
    n = int(record.get("trials") or 0)
    trials = f"{n} trial{'' if n == 1 else 's'}"
    if record.get("reason") == "rule":
        noise, gain = record.get("noise"), record.get("expected_gain")
        detail = "" if noise is None or gain is None else f" (expected improvement {gain:.4f} <= noise {noise:.4f})"
        return f"no expected improvement above the validation noise after {trials}{detail}"
    return f"time cap of {clock(float(record.get('cap_seconds') or 0.0))} reached after {trials}"


def clock(seconds: float) -> str:
    """1h, 1h30m, 20m, 45s: a cap as people write it."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


__all__ = ["AUTO", "AUTO_CAP_SECONDS", "MIN_WINDOW", "STOPPED_ATTR", "StoppingRule", "is_auto_text", "clock",
           "expected_gain", "finished_values", "is_auto", "recent_gain", "should_stop", "stop_record", "stop_text",
           "tail_gain", "validation_noise"]
