"""A worker: one process that joins a running search and trains its trials.

`archtune worker --storage URL --study NAME` (and each Ray task of ``--workers N --ray``)
calls `run_worker`: it waits for the coordinator's job (archtune.tune.job), reads the search's
configuration from it (`SearchConfig.from_json`) and builds the same trial loop as the
coordinator (archtune.tune.trial_loop.trial_loop), rebuilds the search's splits from the
published data, then asks for trials (whole cohorts, whose
followers only this worker asks: archtune.tune.tuner.Search), trains them, reports every
epoch to the pruner and tells the results, until the study's budget is met. No baselines, no
refit, no ensemble: those are the coordinator's.

A worker that dies leaves its trials RUNNING with a stopped heartbeat; any other process
fails them after the grace period and re-queues their parameters (archtune.tune.study).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from archtune.data.table import Table
from archtune.errors import DataError, InvalidParameterError
from archtune.train.threads import scoped, torch_threads
from archtune.tune.config import SearchConfig
from archtune.tune.data import split_at
from archtune.tune.job import JOB_ATTR, read_data
from archtune.tune.stored_space import space_from_record
from archtune.tune.study import make_pruner, make_sampler, make_storage
from archtune.tune.trial_loop import trial_loop

# How long a worker started before its coordinator waits for the study and its job.
DEFAULT_WAIT = 120.0
POLL_SECONDS = 0.5


@dataclass
class WorkerReport:
    """What one worker did: the trials it told (by number) and its wall-clock seconds."""

    trials: list[int]
    seconds: float


def wait_for_job(storage: Any, storage_url: str, study_name: str, wait: float) -> tuple[optuna.Study, dict]:
    """The study and its job, polling until the coordinator has published them.

    Raises
    ------
    DataError
        After ``wait`` seconds without the study or its job, or when the study's trials cannot
        be trained by workers (the job says why).
    """
    until = time.monotonic() + wait
    while True:
        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
            job = study.user_attrs.get(JOB_ATTR)
        except KeyError:
            study, job = None, None
        if job is not None:
            if "unsupported" in job:
                raise DataError(f"study {study_name!r} in {storage_url} cannot be searched by workers: "
                                f"{job['unsupported']}")
            return study, job
        if time.monotonic() >= until:
            what = "no study named" if study is None else "the coordinator has not published the job of"
            raise DataError(f"{what} {study_name!r} in {storage_url} after waiting {wait:g} s: start the coordinator "
                            f"(archtune tune DATA --storage {storage_url} --study {study_name} ...) or raise --wait")
        time.sleep(POLL_SECONDS)


def run_worker(storage_url: str, study_name: str, threads: int | None = None, max_trials: int | None = None,
               seconds: float | None = None, wait: float = DEFAULT_WAIT, data: str | None = None,
               worker_index: int = 0) -> WorkerReport:
    """Join the search ``study_name`` in ``storage_url`` and train its trials until its budget
    is met (or ``max_trials`` trials, or ``seconds``, whichever comes first).

    Parameters
    ----------
    storage_url : str
        The search's storage: ``journal:///path.log``, ``postgresql://...`` (``sqlite:///``
        works for a few processes, slowly).
    study_name : str
    threads : int, optional
        PyTorch threads of this worker (default: PyTorch's own, all cores); workers sharing a
        machine should split its cores.
    max_trials : int, optional
        Stop once the study holds this many more finished trials (complete or pruned)
        than when this worker joined (counting every process's).
    seconds : float, optional
        Wall-clock seconds after which this worker starts no trial.
    wait : float
        Seconds to wait for the coordinator to create the study and publish its job.
    data : str, optional
        The coordinator's data file where this machine sees it under another path.
    worker_index : int
        Makes this worker's sampler seed differ from its siblings' (and the coordinator's).

    Returns
    -------
    WorkerReport

    Raises
    ------
    DataError
        No study or job after ``wait`` seconds; the data file is missing.
    InvalidParameterError
        A bad storage URL or option.
    """
    started = time.monotonic()
    for name, value in (("threads", threads), ("max_trials", max_trials)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidParameterError(f"{name} must be a positive integer; got {name}={value!r}")
    storage = make_storage(storage_url)
    study, job = wait_for_job(storage, storage_url, study_name, wait)
    where = f"study {study_name!r} in {storage_url}"
    if "config" not in job:
        raise DataError(f"{where} was published by another version of archtune (its job has no search "
                        "configuration); run the worker with the coordinator's archtune version")
    # The coordinator's configuration, validated as its own was: the same trial loop as its.
    config = SearchConfig.from_json(job["config"], where)
    frame, y, weights, positions = read_data(job, data)
    # The coordinator's table, typed as it typed it (its kinds published): nothing inferred again.
    table = Table.of_frame(frame, job["kinds"], weights=weights)
    splits = [split_at(table, y, np.asarray(tr), np.asarray(va)) for tr, va in positions]
    space = space_from_record(study.user_attrs["space"], where)
    # Each worker its own sampler stream: identical seeds over the same history would draw the
    # same configurations in every process. (Workers join single-objective studies only.)
    study.sampler = make_sampler(config.sampler_name, config.seed + 7919 * (worker_index + 1) + len(study.trials),
                                 space.grid())
    study.pruner = make_pruner(config.pruner, space.max_epochs)
    search = trial_loop(config, study, storage, space, splits, job["kinds"], float(job["refit_factor"]))
    n_trials = config.trials
    if max_trials is not None:
        finished = search.n_finished()
        n_trials = finished + max_trials if n_trials is None else min(n_trials, finished + max_trials)
    deadline = job.get("deadline")  # Unix time: the coordinator's clock, shared by its machines
    left = None if deadline is None else max(0.0, float(deadline) - time.time())
    if seconds is not None:
        left = seconds if left is None else min(left, seconds)
    if n_trials is None and left is None:
        raise InvalidParameterError("this search has no trial budget: give the worker --max-trials or --seconds")
    before = {t.number for t in study.get_trials(deepcopy=False)}
    quiet = scoped("optuna_verbosity", optuna.logging.get_verbosity, optuna.logging.set_verbosity,
                   optuna.logging.WARNING)
    with quiet, (torch_threads(threads) if threads else nullcontext()):
        search.run(n_trials, left, sweep_wait=False)
    mine = [t.number for t in study.get_trials(deepcopy=False)
            if t.number not in before and t.user_attrs.get("worker") == search.worker_id]
    return WorkerReport(trials=sorted(mine), seconds=time.monotonic() - started)


def stacked_share(study: optuna.Study) -> float:
    """The share of finished trials that trained stacked in a cohort (``cohort`` > 1)."""
    finished = [t for t in study.get_trials(deepcopy=False)
                if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    if not finished:
        return float("nan")
    return float(np.mean([int(t.user_attrs.get("cohort") or 1) > 1 for t in finished]))


__all__ = ["DEFAULT_WAIT", "WorkerReport", "run_worker", "stacked_share", "wait_for_job"]
