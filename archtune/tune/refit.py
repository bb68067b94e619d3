"""The search's best network: the best trial's configuration refitted on all rows, or the
trial's own network when a refit is not asked for, has no time left, is cut short by the
budget or diverges (then the next-best configuration is tried).

What a run ships is never worse than what it reports: a refit cut short by the budget gives
way to the trial's own network, as trained and scored in its trial.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from archtune.doctor.lr_finder import resolve_learning_rate
from archtune.errors import DataError, DeadNetworkError, TrainingDivergedError
from archtune.fitting import finish, prepare, train
from archtune.train.callbacks import StopAtDeadline
from archtune.tune.objectives import best_by_score, score_of
from archtune.tune.trial_records import trial_config
from archtune.tune.tuner import Search

# Warnings name the user's call: best_network <- finalise <- run_search <- AutoNeural*.fit (stacklevel 5
# from best_network, one more per frame below it).
# Configurations tried, best first, when the refit of the best one diverges on all rows.
REFIT_ATTEMPTS = 3
# refit="auto" with a time budget: the best configuration is refitted on all rows only when its
# refit is expected to take at most this share of the budget. On a large table the refit of one
# network is a large part of a short budget (fried, 40,768 rows, 180 s: about 100 s), which
# the search then spends on trials instead; the network of a trial on all training rows
# (a promoted one, archtune.tune.halving) lacks only the validation rows.
AUTO_REFIT_SHARE = 0.25


@dataclass
class BestNetwork:
    """The network a search returns as its best (``best_estimator_``).

    trial : FrozenTrial
        The trial whose configuration it has (the next-best one when the best's refit diverged).
    params : dict
        That configuration.
    score : float
        Its trial's validation score.
    estimator : NeuralClassifier or NeuralRegressor
    refitted : bool
        Whether it is the configuration trained again on all rows (else the trial's own network).
    """

    trial: Any
    params: dict[str, Any]
    score: float
    estimator: Any
    refitted: bool


def best_so_far(study: optuna.Study, search: Search, budget: Any) -> tuple[Any, float, int | None]:
    """(trial, score, epochs): the best completed trial (epochs None), or when none completed
    the pruned trial whose last reported score was best, with the epochs it trained. A search
    returns its best network so far whenever any trial trained.

    Raises
    ------
    DataError
        No trial trained within the budget (the reasons the trials failed are named).
    """
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = best_by_score(study)
        return best, float(best.values[0]), None
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values]
    if pruned:
        best = max(pruned, key=lambda t: t.intermediate_values[max(t.intermediate_values)])
        last = max(best.intermediate_values)
        return best, float(best.intermediate_values[last]), int(last)
    counts = search.counts()
    reasons = sorted({str(t.user_attrs.get("fail_reason", "")).split(":")[0] for t in trials
                      if t.state == optuna.trial.TrialState.FAIL} - {""})
    invalid = [str(t.user_attrs["fail_reason"]) for t in trials if t.state == optuna.trial.TrialState.FAIL
               and str(t.user_attrs.get("fail_reason", "")).startswith("invalid:")]
    if invalid and reasons == ["invalid"]:  # every trial refused its parameters: say how (the first)
        raise DataError(f"no trial trained within budget={budget!r}: {counts['failed']} failed, the first as "
                        f"{invalid[0].removeprefix('invalid: ')}")
    raise DataError(
        f"no trial trained within budget={budget!r} ({counts['failed']} failed"
        f"{': ' + ', '.join(reasons) if reasons else ''}); give a larger budget or a smaller space")


def best_network(best: Any, score: float, epochs: int | None, search: Search, refit: "Refit", *,
                 refit_asked: bool, bag: Any = None) -> BestNetwork:
    """The best network by the refit policy: the best trial's configuration on all rows when
    ``refit_asked`` and time allows; the trial's own network when not (or when a bag replaces
    the refit); for a search in which no trial completed, the best pruned one trained for the
    epochs it reached. With a ``bag`` (archtune.ensemble.bagging.Bag) there is no refit: the
    trial's own network, or the bag's first member when the trial ran in an earlier process."""
    study = search.study
    params = trial_config(best)
    kept = next((e for number, _, e in search.kept if number == best.number), None)
    deadline = refit.deadline
    refitted = False
    if epochs is not None:  # no trial completed: the best pruned one, for the epochs it trained
        estimator, _ = refit.first_that_trains(fallbacks(study, best, params), epochs)
    elif bag is not None:
        estimator = kept if kept is not None else bag.ensemble.members[0].model
    elif not refit_asked and kept is not None:
        estimator = kept  # the best trial's own network, with its best validation epoch's weights
    elif kept is not None and deadline is not None and time.monotonic() >= deadline:
        estimator = kept  # no time left for a refit: the trial's own network, as reported
        warnings.warn(f"no time was left for the refit within budget={refit.budget!r}: the best trial's "
                      "own network is kept", RuntimeWarning, stacklevel=5)
    elif kept is not None:
        estimator, finished = refit.first_that_trains([(best, params)], kept=kept)
        refitted = finished and estimator is not kept
        if not finished:
            # What a run ships must be as good as what it reports: a refit cut short by the
            # budget loses to the trial's own network.
            warnings.warn("the refit of the best network could not finish within budget="
                          f"{refit.budget!r}: the best trial's own network is kept instead", RuntimeWarning,
                          stacklevel=5)
            estimator = kept
    else:  # the best trial ran in an earlier process: its network is not in memory
        estimator, finished = refit.first_that_trains(fallbacks(study, best, params))
        refitted = finished and estimator is not None
    if refit.used is not None and refit.used.number != best.number:
        best, params = refit.used, trial_config(refit.used)
        score = score_of(best) if score_of(best) is not None else score
    study.set_user_attr("saved_network", refit.describe(best, estimator is kept and kept is not None))
    return BestNetwork(best, params, score, estimator, refitted)


def fallbacks(study: optuna.Study, best: Any, best_params: dict[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """(trial, configuration) to refit, best first: the best trial, then the next completed
    ones, so that a refit that diverges on all rows gives way to the next configuration."""
    complete = sorted((t for t in study.get_trials(deepcopy=False)
                       if t.state == optuna.trial.TrialState.COMPLETE and t.number != best.number),
                      key=lambda t: -float(t.values[0]))
    return [(best, best_params)] + [(t, trial_config(t)) for t in complete[:REFIT_ATTEMPTS - 1]]


class Refit:
    """The final refit: a configuration trained on every row as its own ``fit`` would train it
    (early stopping on its validation split, the best epoch's weights kept), or for exactly
    ``epochs`` epochs; with a time budget it stops at the budget's end, keeping the best
    weights so far. A refit that diverges never ends the search: the best trial's own network
    (``kept``) or the next-best configuration is used instead, with a warning."""

    def __init__(self, make_estimator: Any, X: Any, y: np.ndarray, kinds: dict[str, str] | None,
                 deadline: float | None, budget: Any, sample_weight: np.ndarray | None = None):
        self.make_estimator, self.X, self.y, self.kinds = make_estimator, X, y, kinds
        self.sample_weight = sample_weight
        self.deadline, self.budget = deadline, budget
        self.used: Any = None  # the trial whose configuration the saved network has
        self.stopped_at: int | None = None
        self.epochs_trained: int | None = None

    def first_that_trains(self, candidates: list[tuple[Any, dict[str, Any]]], epochs: int | None = None,
                          kept: Any = None) -> tuple[Any, bool]:
        """(estimator, finished) of the first candidate whose refit does not diverge; ``kept``
        (the best trial's network) when every candidate diverges, else TrainingDivergedError."""
        failures = []
        for trial, params in candidates:
            try:
                estimator, finished = self.once(params, epochs)
            except (TrainingDivergedError, DeadNetworkError) as exc:
                failures.append(f"network #{trial.number}: {exc}")
                fallback = "the best trial's own network is kept" if kept is not None else "trying the next one"
                warnings.warn(f"the refit of network #{trial.number} on all rows diverged ({exc}); {fallback}",
                              RuntimeWarning, stacklevel=6)
                if kept is not None:
                    self.used = candidates[0][0]
                    return kept, True
                continue
            self.used = trial
            return estimator, finished
        raise TrainingDivergedError("every refit on all rows diverged (" + "; ".join(failures) + "); lower the "
                                    "learning_rate range of the space")

    def once(self, params: dict[str, Any], epochs: int | None) -> tuple[Any, bool]:
        params = dict(params)
        if epochs is not None:
            params.update(max_epochs=max(1, int(epochs)), early_stopping=False)
        estimator = self.make_estimator(params)
        stop = StopAtDeadline(self.deadline)
        prepared = resolve_learning_rate(prepare(estimator, self.X, self.y, kinds=self.kinds,
                                                 sample_weight=self.sample_weight))
        finish(estimator, prepared, train(prepared, [stop]))
        self.stopped_at = stop.stopped_at
        self.epochs_trained = len(estimator.history_)
        if stop.stopped_at is not None:
            warnings.warn(f"the refit of the best network stopped at epoch {stop.stopped_at} of "
                          f"{params['max_epochs']} to keep within budget={self.budget!r}", RuntimeWarning,
                          stacklevel=7)
        return estimator, stop.stopped_at is None

    def describe(self, trial: Any, kept: bool) -> dict[str, Any]:
        """What was saved, for metrics.json and `archtune info`."""
        if kept or self.epochs_trained is None:
            return {"source": "trial", "trial": int(trial.number),
                    "text": f"network #{trial.number} as trained in its trial (its best validation epoch)"}
        return {"source": "refit", "trial": int(trial.number), "epochs": int(self.epochs_trained),
                "text": f"network #{trial.number}'s configuration refitted on all rows "
                        f"({self.epochs_trained} epoch{'s' if self.epochs_trained != 1 else ''})"}


__all__ = ["REFIT_ATTEMPTS", "BestNetwork", "Refit", "best_network", "best_so_far", "fallbacks"]
