"""The third phase of a search: run the trials, in this process and in its workers.

`run_trials` is the coordinator's side of the trial loop (archtune.tune.trial_loop, which the
workers build the same way): it publishes the job its workers read (the
configuration's JSON, the column kinds, the refit's share of time and the deadline, with the
rows beside the storage: archtune.tune.job), starts the workers a ``backend`` asks for, runs
the loop until the budget is spent, then waits for the trials other processes still train.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

from archtune.tune.config import SearchConfig
from archtune.tune.data import SearchData, Split, fold_positions
from archtune.tune.opening import OpenedStudy, enqueue_recipes
from archtune.tune.trial_loop import estimator_factory, refit_factor, trial_loop
from archtune.tune.tuner import Search

# When reading the data and the baselines took the whole time budget, the first trial still
# trains for up to this share of it (a search returns a network, not an error).
FIRST_TRIAL_SHARE = 0.25
# Networks kept in memory as ensemble candidates: greedy selection over 25 steps rarely gives
# weight to more than 6-8 distinct models, and 16 small networks cost a few MB.
ENSEMBLE_CANDIDATES = 16


def run_trials(config: SearchConfig, data: SearchData, opened: OpenedStudy, splits: list[Split],
               started: float, tracker: Any = None) -> Search:
    """Train trials until the budget is spent (in this process, and in the workers of a shared
    storage or of ``backend``); returns the loop, which keeps the best trials' networks."""
    from archtune.tune.launch import start_workers
    from archtune.tune.objectives import TrialObjectives
    from archtune.tune.progress import SearchProgress
    from archtune.tune.storages import is_shared
    from archtune.tune.study import make_pruner, sweep_stale_trials
    from archtune.tune.transfer import columns_warned_once

    study, transfer = opened.study, opened.transfer
    kinds = data.network_kinds
    if transfer is not None:
        _check_fits_source(config, data, transfer, splits[0])
    progress = SearchProgress(config.trials, config.seconds, enabled=bool(config.verbose),
                              self_stopping=config.self_stopping)
    objectives = None
    if config.several:
        objectives = TrialObjectives(study, config.objectives, make_pruner(config.pruner, opened.space.max_epochs),
                                     estimator_factory(config, transfer), splits[0], kinds)
    search = trial_loop(config, study, opened.storage, opened.space, splits, kinds,
                        refit_factor(config, len(data.frame), len(splits[0].X_train)), transfer=transfer,
                        progress=progress.update, tracker=tracker,
                        # Several objectives: the preferred network may not be the best-scoring one.
                        keep=ENSEMBLE_CANDIDATES if (config.ensembling and data.images is None) or config.several else 1,
                        objectives=objectives)
    _set_stopping(config, study, search, started)
    enqueue_recipes(study, opened.space, config)
    remaining = None if config.seconds is None else max(0.0, config.seconds - (time.monotonic() - started))
    workers = None
    shared = is_shared(config.storage)
    if shared or config.in_processes:  # other processes may join (archtune worker)
        sweep_stale_trials(study, opened.storage, wait=True)
        publish_job(config, data, search, remaining,
                    refusal=data.images is not None or transfer is not None or config.several)
        if config.in_processes:
            workers = start_workers(config.backend, config.storage, study.study_name, config.n_jobs,
                                    config.threads or 1)
    with progress, (columns_warned_once() if transfer is not None else nullcontext()):
        search.run(config.trials, remaining, n_jobs=config.n_jobs if workers is None else 1,
                   first_trial_seconds=0.0 if config.seconds is None else FIRST_TRIAL_SHARE * config.seconds)
        if shared or workers is not None:
            _finish_with_workers(config, search, workers, started)
    _record_stop(config, study, search, started)
    return search


def _set_stopping(config: SearchConfig, study: Any, search: Search, started: float) -> None:
    """budget="auto": the stopping rule checked before each claim (archtune.tune.stopping). A
    continued study forgets why an earlier run stopped (its workers would read it as a stop)."""
    from archtune.tune.stopping import STOPPED_ATTR, StoppingRule

    if study.user_attrs.get(STOPPED_ATTR) is not None:
        study.set_user_attr(STOPPED_ATTR, None)
    if config.self_stopping:
        search.stopping = StoppingRule(config.scorer(), config.task.is_classification, config.cv or 1, started,
                                       float(config.seconds or 0.0))


def _record_stop(config: SearchConfig, study: Any, search: Search, started: float) -> None:
    """budget="auto": why the search stopped, in the study's user attribute ``stopped``
    (`archtune.tune.stopping.stop_record`): the rule's record, else the time cap's."""
    from archtune.tune.stopping import STOPPED_ATTR, stop_record

    if not config.self_stopping:
        return
    rule = search.stopping
    record = search.stopped or stop_record("time_cap", search.n_finished(), time.monotonic() - started,
                                           float(config.seconds or 0.0), rule.noise if rule else None,
                                           rule.gain if rule else None)
    study.set_user_attr(STOPPED_ATTR, record)


def _check_fits_source(config: SearchConfig, data: SearchData, transfer: Any, first: Split) -> None:
    """X must fit a fixed ``init_from`` (its columns, its kind of input) before anything
    trains: a mismatch is the user's to fix, not a reason for every trial to fail."""
    from archtune.fitting import prepare

    prepare(estimator_factory(config, transfer)({}), first.fit_rows, first.y_train, first.validation_data,
            data.network_kinds, first.w_train)


def publish_job(config: SearchConfig, data: SearchData, search: Search, remaining: float | None,
                refusal: bool = False) -> None:
    """Publish what workers need to train this search's trials (archtune.tune.job): the
    configuration, the column kinds, the refit's share of time, the deadline, and the rows
    with each split's row positions. Image arrays, a fixed ``init_from`` and several
    objectives are searched in one process: the job then says so, and workers refuse it."""
    from archtune.tune.job import data_file, publish, refuse

    study = search.study
    if refusal:
        refuse(study, "searches on image arrays, from a trained network (init_from) or with several objectives "
                      "run in one process")
        return
    # The same row positions as the search's splits: they depend on the row count alone.
    positions = fold_positions(data.table.n_rows, data.codes, config.seed, config.cv, config.validation_fraction)
    # The coordinator tracks the search (MLflow, TensorBoard): its workers' machines need not
    # have those packages.
    job_config = config.replace(mlflow_uri=None, tensorboard_dir=None)
    record = {"config": job_config.to_json(), "kinds": search.kinds, "refit_factor": search.refit_factor,
              "deadline": None if remaining is None else time.time() + remaining}
    publish(study, data_file(config.storage, study.study_name, config.worker_data), data.frame, data.y,
            data.weights, positions, record)


def _finish_with_workers(config: SearchConfig, search: Search, workers: Any, started: float) -> None:
    """The coordinator's loop is done: wait for the trials other processes still train, then
    train the retries of those whose worker died (until the trial budget is met)."""
    from archtune.tune.launch import wait_for_running

    deadline = None if config.seconds is None else started + config.seconds
    for _ in range(3):
        wait_for_running(search.study, search.storage, deadline)
        if config.trials is None or search.n_finished() >= config.trials:
            break
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        search.run(config.trials, left, sweep_wait=False)
    if workers is not None:
        workers.join(timeout=60.0)


__all__ = ["ENSEMBLE_CANDIDATES", "FIRST_TRIAL_SHARE", "publish_job", "run_trials"]
