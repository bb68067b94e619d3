"""The trial loop of a search, built the same way by its coordinator and by every worker.

`trial_loop` makes the ask/tell loop (`archtune.tune.tuner.Search`) from a `SearchConfig`: the
coordinator (archtune.tune.trials) and each worker (archtune.tune.worker, from the
configuration the coordinator published) call it, so that both train trials with the same
estimator factory, scorer, pruner's history column and cohort size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from archtune.tune.config import SearchConfig
from archtune.tune.data import Split
from archtune.tune.tuner import Search


def estimator_factory(config: SearchConfig, transfer: Any = None) -> Callable[[dict[str, Any]], Any]:
    """``make_estimator(params)``: the task's unfitted network with the search's seed and
    device (and a fixed ``init_from``'s parameters, from the Source read once)."""
    neural = config.task.neural_class
    fixed = {"random_state": config.seed, "device": config.device, "verbose": 0}

    def make_estimator(params: dict[str, Any]) -> Any:
        params = {**fixed, **params}
        return neural(**(transfer.params(params) if transfer is not None else params))

    return make_estimator


def scorer_of(config: SearchConfig) -> Callable[..., float]:
    """``score(estimator, X_val, y_val, sample_weight=None) -> float``, higher is better."""
    scorer = config.scorer()

    def score(estimator: Any, X_val: Any, y_val: Any, sample_weight: Any = None) -> float:
        if sample_weight is None:
            return float(scorer(estimator, X_val, y_val))
        return float(scorer(estimator, X_val, y_val, sample_weight=sample_weight))

    return score


def refit_factor(config: SearchConfig, n_rows: int, n_train: int) -> float:
    """Seconds of the final model's training per second the best trial trained: the refit on
    all rows trains on 90% of them (its own validation split); with bagging=K, K members each
    on (K - 1) / K of the rows; 0 when nothing is trained after the search."""
    share = int(config.bagging) - 1 if config.bagging else 0.9 if config.refit else 0.0
    return n_rows / max(1, n_train) * share


def trial_loop(config: SearchConfig, study: optuna.Study, storage: Any, space: Any, splits: list[Split],
               kinds: dict[str, str] | None, refit_share: float, *, transfer: Any = None, progress: Any = None,
               tracker: Any = None, keep: int = 1, objectives: Any = None) -> Search:
    """The ask/tell loop of ``config`` over ``splits``: what the coordinator and its workers
    both run (a worker passes no transfer, progress, tracker or objectives: it searches
    single-objective tables only)."""
    from archtune.tune.halving import row_stages

    # Several objectives compare trials by cost too, which a first stage's rows would distort.
    stages = None if config.several else row_stages(config.min_resources, splits, config.seed,
                                                    config.task.is_classification)
    search = Search(study, storage, space, estimator_factory(config, transfer), splits, scorer_of(config),
                  epoch_key=config.epoch_key, epoch_sign=config.epoch_sign, progress=progress,
                  refit_factor=refit_share,
                  # Fits from a trained network are never stacked (archtune.population): one at a time.
                  cohort_size=1 if transfer is not None else config.cohort_size,
                  kinds=kinds, keep=keep, tracker=tracker, objectives=objectives, stages=stages)
    search.refit_cap = refit_cap(config)
    return search


def refit_cap(config: SearchConfig) -> float | None:
    """refit="auto" with a time budget: the most seconds the refit may take
    (`archtune.tune.refit.AUTO_REFIT_SHARE` of the budget); None: no cap."""
    from archtune.tune.refit import AUTO_REFIT_SHARE

    if config.refit != "auto" or config.bagging or config.seconds is None:
        return None
    return AUTO_REFIT_SHARE * config.seconds


__all__ = ["estimator_factory", "refit_cap", "refit_factor", "scorer_of", "trial_loop"]
