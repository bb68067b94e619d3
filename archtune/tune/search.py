"""The search from start to finish, as four named phases.

`run_search(config, data)` owns a search, in the way scikit-learn's ``BaseSearchCV.fit`` owns
every phase while its ``_run_search`` only proposes candidates:

1. open the study (archtune.tune.opening): create or continue it, check a stored one, settle
   the space, read a fixed ``init_from`` once;
2. fit the baselines (archtune.tune.baselines) on the first split, within a quarter of a time
   budget;
3. run the trials (archtune.tune.trials): the ask/tell loop here and in the workers;
4. finalise (archtune.tune.finalise): the best network (refit or the trial's own), the bag,
   the ensemble, and the one final model that predicts.

Settings arrive parsed and validated as a `SearchConfig` (archtune.tune.config), the data read
once as `SearchData` (archtune.tune.data); `AutoNeuralClassifier` / `AutoNeuralRegressor`
(archtune.auto) are the scikit-learn facade over this function.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from archtune.train.threads import scoped, torch_threads
from archtune.tune.config import SearchConfig
from archtune.tune.data import SearchData, Split
from archtune.tune.finalise import finalise
from archtune.tune.leaderboard import leaderboard
from archtune.tune.opening import OpenedStudy, open_study
from archtune.tune.trial_loop import scorer_of
from archtune.tune.trials import run_trials

# With a time budget, the baselines may use this share of it; the rest is for networks.
BASELINE_SHARE = 0.25


@dataclass
class SearchResult:
    """What a search leaves.

    study : optuna.Study
    baselines : list of dict
        The baselines' leaderboard records.
    leaderboard : DataFrame
    best_trial, best_params, best_score :
        The trial whose configuration the best network has, that configuration, its score.
    best_estimator : NeuralClassifier or NeuralRegressor
        The best network (refitted on all rows, or as trained in its trial).
    final_model : estimator
        What predicts, and what `archtune.save` writes: the ensemble (or the baseline or bag
        that is best alone), else the bag, else ``best_estimator``.
    ensemble : archtune.ensemble.build.EnsembleChoice or None
    ensemble_library : archtune.ensemble.build.EnsembleLibrary or None
    bag : archtune.ensemble.bagging.Bag or None
    mlflow_run_id : str or None
        With ``mlflow_uri``: the search's parent run.
    """

    study: optuna.Study
    baselines: list[dict[str, Any]]
    leaderboard: pd.DataFrame
    best_trial: optuna.trial.FrozenTrial
    best_params: dict[str, Any]
    best_score: float
    best_estimator: Any
    final_model: Any
    ensemble: Any = None
    ensemble_library: Any = None
    bag: Any = None
    mlflow_run_id: str | None = None


def run_search(config: SearchConfig, data: SearchData, started: float | None = None) -> SearchResult:
    """Search networks on ``data`` within ``config``'s budget; return the final model and the
    evidence.

    Parameters
    ----------
    config : SearchConfig
        The validated settings (`SearchConfig.from_params`).
    data : SearchData
        The rows, read once (`SearchData.read`). Row weights go with their rows into every
        split, weight every trial, the baselines that accept them, the scores, the ensemble's
        selection and the refit.
    started : float, optional
        `time.monotonic()` when the caller started (a time budget covers reading the data too).

    Raises
    ------
    InvalidParameterError, DataError
        A stored study that does not match; bad data; no trial completed within the budget.
    """
    started = time.monotonic() if started is None else started
    splits, table_splits = data.splits(config.seed, config.cv, config.validation_fraction)
    scratch = config.in_processes and config.storage is None  # a journal in a temporary folder
    with _search_context(config) as (config, tracker):
        opened = open_study(config, data)
        if tracker is not None:
            tracker.start(opened.study, config.task.name, config.params(), len(data.frame), data.frame.shape[1])
        records, fitted = fit_baselines(config, data, opened, table_splits[0], started)
        if tracker is not None:
            tracker.baselines(records)
        trials_started = time.monotonic()
        search = run_trials(config, data, opened, splits, started, tracker)
        final_started = time.monotonic()
        final = finalise(config, data, opened, search, fitted, splits, started)
        opened.study.set_user_attr("time_split", time_split(fitted, trials_started - started,
                                                            final_started - trials_started,
                                                            time.monotonic() - final_started))
        board = leaderboard(opened.study, records)
        study = _in_memory(opened.study, opened.storage) if scratch else opened.study
    if tracker is not None:  # a time budget always ends the trials by its deadline
        # Ended by the time budget, unless budget="auto"'s rule stopped it first (tune/stopping.py).
        by_rule = (study.user_attrs.get("stopped") or {}).get("reason") == "rule"
        tracker.end(board, final.best.score, budget=config.seconds is not None and not by_rule)
    return SearchResult(study, records, board, final.best.trial, final.best.params, final.best.score,
                        final.best.estimator, final.final_model, final.choice, final.library, final.bag,
                        tracker.mlflow_run_id if tracker is not None else None)


def time_split(baselines: list[Any], opening: float, trials: float, final: float) -> dict[str, float]:
    """Where a search's seconds went: the gradient-boosting portfolio, the other baselines (with
    the opening of the study and reading the data: what came before the trials), the network
    trials, and the ensemble with the refits."""
    boosting = sum(b.fit_seconds for b in baselines if b.kind in ("lightgbm", "catboost"))
    return {"gradient_boosting": round(boosting, 2), "other_baselines_and_opening": round(opening - boosting, 2),
            "networks": round(trials, 2), "ensemble_and_refit": round(final, 2)}


@contextlib.contextmanager
def _search_context(config: SearchConfig) -> Iterator[tuple[SearchConfig, Any]]:
    """What a search runs inside: Optuna quiet (progress is archtune's to show), this process's
    share of the cores, a scratch journal for worker processes when no storage was given, and
    the experiment tracker (its parent run ended by what the search raises: FAILED for an
    error, KILLED for Ctrl-C; archtune.tracking.search_tracker)."""
    from archtune.tracking.search_tracker import make_search_tracker
    from archtune.tune.storages import journal_url

    tracker = make_search_tracker(config.mlflow_uri, config.tensorboard_dir, config.study_label)
    quiet = scoped("optuna_verbosity", optuna.logging.get_verbosity, optuna.logging.set_verbosity,
                   optuna.logging.WARNING)
    threads = config.threads
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(quiet)
            if threads:
                stack.enter_context(torch_threads(threads))
            running = config
            if config.in_processes and config.storage is None:  # several processes: a journal file for the run
                scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="archtune-"))
                running = config.replace(storage=journal_url(os.path.join(scratch, "study.log")))
            yield running, tracker
    except BaseException as exc:
        if tracker is not None:
            tracker.end(error=exc)
        raise


def fit_baselines(config: SearchConfig, data: SearchData, opened: OpenedStudy, split: Split,
                  started: float) -> tuple[list[dict[str, Any]], list[Any]]:
    """(leaderboard records, fitted baselines): the classical models on the first split, within
    a quarter of a time budget. A continued study keeps the records it has (and fits none)."""
    from archtune.tune.baselines import run_baselines

    study = opened.study
    records = study.user_attrs.get("baselines")
    if records is not None:
        return records, []
    fitted: list[Any] = []
    if config.baselines:
        deadline = None if config.seconds is None else started + BASELINE_SHARE * config.seconds
        fitted = run_baselines(config.task.name, split.X_train, split.y_train, split.X_val, split.y_val,
                               scorer_of(config), data.kinds, seed=config.seed, deadline=deadline,
                               sample_weight=split.w_train, val_weight=split.w_val)
    records = [r.record() for r in fitted]
    if config.objectives[1:] == ("latency",):  # the baselines' cost too: their predict on 1000 rows
        _baseline_latencies(records, fitted, split.X_val)
    study.set_user_attr("baselines", records)
    return records, fitted


def _baseline_latencies(records: list[dict[str, Any]], fitted: list[Any], X_val: Any) -> None:
    """Each fitted baseline's latency (`baseline_latency_ms`) in its leaderboard record."""
    from archtune.tune.objectives import baseline_latency_ms

    for record, result in zip(records, fitted):
        if result.model is not None and result.error is None:
            try:
                record["latency_ms"] = baseline_latency_ms(result.model, X_val)
            except Exception:  # a baseline without a timeable predict just has no latency
                record["latency_ms"] = None


def _in_memory(study: optuna.Study, storage: Any) -> optuna.Study:
    """A copy of ``study`` in memory (for a study whose storage is about to be removed)."""
    memory = optuna.storages.InMemoryStorage()
    optuna.copy_study(from_study_name=study.study_name, from_storage=storage, to_storage=memory)
    return optuna.load_study(study_name=study.study_name, storage=memory)


__all__ = ["BASELINE_SHARE", "SearchResult", "fit_baselines", "run_search", "time_split"]
