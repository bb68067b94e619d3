"""What a search optimises: the validation score alone, or the score and the network's cost.

``objectives=("score", "latency")`` or ``("score", "n_params")`` makes the study
multi-objective (Optuna's ``directions``; NSGA-II, Deb et al. 2002, samples by default). The
cost is known from the configuration before training: latency is measured on the untrained
network (`archtune.shrink.latency.latency_ms`: CPU milliseconds per 1000 rows, one thread) and
the parameter count is the network's. Only the score is a multi-fidelity objective, so
pruning works on it alone (`archtune.tune.score_pruning`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna

from archtune.errors import InvalidParameterError
from archtune.fitting import prepare
from archtune.population import DATA_PARAMS
from archtune.shrink.latency import ROWS, latency_ms
from archtune.train.threads import torch_threads
from archtune.tune.score_pruning import ScorePruning

TrialState = optuna.trial.TrialState
COSTS = ("latency", "n_params")
# The user attribute (and leaderboard column) holding each cost.
COST_ATTR = {"latency": "latency_ms", "n_params": "n_params"}
# Samplers that cannot sample for several objectives (Optuna's CMA-ES raises on them).
SINGLE_OBJECTIVE_SAMPLERS = ("cmaes",)
# Validation rows a latency is timed on (repeated to 1000): the rows' values hardly matter.
LATENCY_SAMPLE = 256
LATENCY_REPEATS = 20


def check_objectives(objectives: Any) -> tuple[str, ...]:
    """The objectives as a tuple: ("score",), ("score", "latency") or ("score", "n_params").

    Raises
    ------
    InvalidParameterError
        Anything else, naming the accepted forms.
    """
    accepted = "('score',), ('score', 'latency') or ('score', 'n_params')"
    if isinstance(objectives, str):
        objectives = tuple(part.strip() for part in objectives.split(","))
    if not isinstance(objectives, (tuple, list)) or not all(isinstance(o, str) for o in objectives):
        raise InvalidParameterError(f"objectives must be {accepted}; got objectives={objectives!r}")
    value = tuple(objectives)
    if value == ("score",) or (len(value) == 2 and value[0] == "score" and value[1] in COSTS):
        return value
    raise InvalidParameterError(f"objectives must be {accepted} (the score first, at most one cost); "
                                f"got objectives={objectives!r}")


def directions(objectives: Sequence[str]) -> list[str]:
    """Optuna's study directions: the score maximised, a cost minimised."""
    return ["maximize" if name == "score" else "minimize" for name in objectives]


def resolve_sampler(name: str, objectives: Sequence[str]) -> str:
    """The sampler to create: "auto" is TPE for one objective, NSGA-II for several; a sampler
    that cannot handle several objectives is refused."""
    several = len(objectives) > 1
    if name == "auto":
        return "nsga2" if several else "tpe"
    if several and name in SINGLE_OBJECTIVE_SAMPLERS:
        raise InvalidParameterError(f"sampler={name!r} optimises one objective only; with objectives="
                                    f"{tuple(objectives)!r} use 'auto' (NSGA-II), 'nsga2', 'tpe', 'gp', 'random', "
                                    "'qmc' or 'grid'")
    return name


def score_of(trial: Any) -> float | None:
    """A finished trial's validation score (its first objective), or None."""
    values = trial.values
    return float(values[0]) if trial.state == TrialState.COMPLETE and values else None


def best_by_score(study: optuna.Study) -> Any:
    """The completed trial of best score (the first on ties, as Optuna's ``best_trial``).

    Raises
    ------
    ValueError
        No trial completed (as ``best_trial`` does).
    """
    if len(study.directions) == 1:
        return study.best_trial
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    if not complete:
        raise ValueError("no trial completed")
    return max(complete, key=lambda t: t.values[0])


def measure_latency(make_estimator: Callable[[dict[str, Any]], Any], params: dict[str, Any], split: Any,
                    kinds: dict[str, str] | None) -> float:
    """CPU milliseconds per 1000 rows of a configuration's network, before it trains.

    The network is built as its fit would build it (preprocessing fitted on the split's
    training rows) and timed on up to ``LATENCY_SAMPLE`` preprocessed validation rows,
    repeated to 1000 (`latency_ms`: one thread, the fastest of the timed passes).
    """
    prepared = prepare(make_estimator(params), split.fit_rows, split.y_train, split.validation_data, kinds,
                       split.w_train)
    rows = prepared.X_val if prepared.X_val is not None else prepared.X_train
    rows = rows[:LATENCY_SAMPLE]  # a tensor (SparseRows densify what they are indexed with)
    return float(latency_ms(prepared.build_network(), rows, repeats=LATENCY_REPEATS))


def baseline_latency_ms(model: Any, X_val: Any, repeats: int = 3) -> float:
    """CPU milliseconds a fitted baseline's ``predict`` takes on 1000 rows (``X_val``'s rows
    repeated), one thread, the fastest of ``repeats``; preprocessing inside the model counts."""
    from threadpoolctl import threadpool_limits

    index = np.resize(np.arange(len(X_val)), ROWS)
    rows = X_val.iloc[index] if hasattr(X_val, "iloc") else np.asarray(X_val)[index]
    times = []
    with torch_threads(1), threadpool_limits(1):
        for _ in range(repeats + 1):
            started = time.perf_counter()
            model.predict(rows)
            times.append(time.perf_counter() - started)
    return 1000.0 * min(times[1:])


class TrialObjectives:
    """The multi-objective side of a search's trials: each trial's cost measured before it
    trains, its score reported to the shadow pruner, and the values it is told with.

    Parameters
    ----------
    study : optuna.Study
        The multi-objective study.
    objectives : tuple of str
        ("score", "latency") or ("score", "n_params").
    pruner : optuna.pruners.BasePruner
        Prunes on the score (`ScorePruning`).
    make_estimator, split, kinds :
        How the search builds a configuration's estimator, its first split and the columns'
        kinds: what the latency is measured with.
    """

    def __init__(self, study: optuna.Study, objectives: Sequence[str], pruner: optuna.pruners.BasePruner,
                 make_estimator: Callable[[dict[str, Any]], Any], split: Any, kinds: dict[str, str] | None):
        self.objectives = tuple(objectives)
        self.cost = self.objectives[1]
        self.pruning = ScorePruning(study, pruner)
        self.make_estimator = make_estimator
        self.split = split
        self.kinds = kinds
        # Latency by network (its configuration): cohort followers and repeated structures are
        # timed once, so equal networks get equal costs and no time is spent timing them again.
        self._latencies: dict[str, float] = {}

    def start(self, trial: optuna.trial.Trial, params: dict[str, Any]) -> None:
        """Before training: the latency (user attribute ``latency_ms``) and the shadow trial."""
        if self.cost == "latency":
            try:
                key = self._network_key(params)
                value = self._latencies.get(key) if key is not None else None
                if value is None:
                    value = measure_latency(self.make_estimator, params, self.split, self.kinds)
                    if key is not None:
                        self._latencies[key] = value
                trial.set_user_attr("latency_ms", value)
            except Exception as exc:  # the trial trains anyway; without a cost it is told as failed
                trial.set_user_attr("latency_error", f"{type(exc).__name__}: {exc}")
        self.pruning.start(trial)

    def _network_key(self, params: dict[str, Any]) -> str | None:
        """What the network's forward pass depends on: its configuration (dropout aside: a
        no-op at inference) and the parameters that shape its inputs; None when unknown."""
        try:
            estimator = self.make_estimator(params)
            config = estimator.model_config()
        except Exception:
            return None
        if dataclasses.is_dataclass(config) and any(f.name == "dropout" for f in dataclasses.fields(config)):
            config = dataclasses.replace(config, dropout=0.0)
        given = estimator.get_params()
        return repr(config) + repr([(name, repr(given.get(name))) for name in DATA_PARAMS])

    def report(self, trial: optuna.trial.Trial, epoch: int, value: float) -> bool:
        """An epoch's score; whether the trial keeps training."""
        return self.pruning.report(trial, epoch, value)

    def tell(self, study: optuna.Study, trial: optuna.trial.Trial, state: TrialState, score: float | None,
             attrs: dict[str, Any]) -> None:
        """Tell the study the trial's outcome: (score, cost) when it completed, else its state.
        ``attrs`` are the outcome's user attributes (where ``n_params`` is)."""
        cost = attrs.get(COST_ATTR[self.cost])
        if cost is None:
            cost = trial.user_attrs.get(COST_ATTR[self.cost])
        if state == TrialState.COMPLETE and cost is None:
            trial.set_user_attr("fail_reason", f"invalid: its {self.cost} could not be measured "
                                f"({trial.user_attrs.get('latency_error', 'unknown')})")
            state = TrialState.FAIL
        self.pruning.finish(trial, state, score)
        if state == TrialState.COMPLETE:
            study.tell(trial, [float(score), float(cost)])
        else:
            study.tell(trial, state=state)


__all__ = ["COSTS", "COST_ATTR", "TrialObjectives", "baseline_latency_ms", "best_by_score", "check_objectives",
           "directions", "measure_latency", "resolve_sampler", "score_of"]
