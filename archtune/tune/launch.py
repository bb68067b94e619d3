"""The coordinator's side of a search on many processes: starting workers, waiting for theirs.

Workers are `archtune worker` processes (``backend="processes"``: subprocesses of this one,
on this machine) or Ray tasks (``backend="ray"`` or ``"ray:ADDRESS"``: archtune.tune.ray_backend,
on a local Ray started for the run or an existing cluster). Either way they run the same
function, archtune.tune.worker.run_worker; this module starts them and, when the search's
own loop is done, waits for the trials they still train.
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from typing import Any

import optuna

from archtune.tune.ray_backend import start_ray_workers
from archtune.tune.storages import is_sqlite
from archtune.tune.study import GRACE_PERIOD, sweep_stale_trials

class Workers:
    """Started workers: `join` waits for them all (and raises the first failure)."""

    def __init__(self, kind: str, handles: list[Any], finish: Any):
        self.kind = kind
        self.handles = handles
        self._finish = finish

    def join(self, timeout: float | None = None) -> None:
        self._finish(self.handles, timeout)


def start_workers(backend: str, storage_url: str, study_name: str, n: int, threads: int) -> Workers:
    """Start ``n`` workers of ``study_name`` in ``storage_url``, each with ``threads`` PyTorch threads."""
    if is_sqlite(storage_url):
        warnings.warn(f"{n} worker processes share the SQLite storage {storage_url}: SQLite locks the whole file on "
                      "every write, which Optuna warns is not for parallel optimisation; use a journal file "
                      "(journal:///path/study.log) or PostgreSQL", RuntimeWarning, stacklevel=3)
    if backend == "processes":
        return _start_processes(storage_url, study_name, n, threads)
    address = backend[len("ray:"):] if backend.startswith("ray:") else None
    refs, finish = start_ray_workers(storage_url, study_name, n, threads, address)
    return Workers("ray", refs, finish)


def _start_processes(storage_url: str, study_name: str, n: int, threads: int) -> Workers:
    command = [sys.executable, "-m", "archtune", "worker", "--storage", storage_url, "--study", study_name,
               "--threads", str(threads)]
    procs = [subprocess.Popen(command + ["--index", str(i + 1)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for i in range(n)]

    def finish(handles: list[subprocess.Popen], timeout: float | None) -> None:
        failures = []
        for proc in handles:
            try:
                _, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if proc.returncode:
                failures.append(f"worker {proc.pid} exited with {proc.returncode}: {(err or '').strip()[-500:]}")
        if failures:
            # The study holds whatever the workers told; the search goes on with it.
            warnings.warn("; ".join(failures), RuntimeWarning, stacklevel=3)

    return Workers("processes", procs, finish)


def wait_for_running(study: optuna.Study, storage: Any, deadline: float | None, poll: float = 0.5) -> None:
    """Wait until no trial of the study is RUNNING (other processes' trials), failing the ones
    whose worker died (their heartbeat stopped). ``deadline``: a ``time.monotonic()`` after
    which it stops waiting, plus the grace period a dead worker's trial needs to go stale."""
    limit = None if deadline is None else deadline + GRACE_PERIOD + 1
    while study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if limit is not None and time.monotonic() >= limit:
            return
        sweep_stale_trials(study, storage, wait=False)
        time.sleep(poll)


__all__ = ["Workers", "start_workers", "wait_for_running"]
