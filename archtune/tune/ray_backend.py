"""Workers as Ray tasks: ``--workers N --ray [ADDRESS]`` and ``backend="ray"``.

Each worker is one Ray task (`ray.remote` with its CPUs, and a GPU fraction when the search
trains on a GPU, declared, so that Ray places them) running archtune.tune.worker.run_worker,
the function `archtune worker` runs. Without an address Ray is started for the run on this
machine (127.0.0.1, no dashboard) and shut down after it; with one (``auto``, ``HOST:PORT``
or ``ray://HOST:10001``) the tasks go to that cluster, whose nodes need archtune installed
and must reach the storage and the search's data file (archtune.tune.job).

Ray is an optional extra (``pip install 'archtune[ray]'``).
"""

from __future__ import annotations

from typing import Any

from archtune.errors import InvalidParameterError
from archtune.tune.worker import run_worker


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InvalidParameterError("the Ray backend needs Ray, an optional extra: pip install 'archtune[ray]' "
                                    "(or pip install ray); without it, use backend='processes' (archtune tune "
                                    "--workers N without --ray)") from None
    return ray


def _worker_task(storage_url: str, study_name: str, threads: int, index: int) -> list[int]:
    """The body of one Ray task: the trials it told, by number."""
    return run_worker(storage_url, study_name, threads=threads, worker_index=index).trials


def start_ray_workers(storage_url: str, study_name: str, n: int, threads: int, address: str | None,
                      gpus_per_worker: float = 0.0) -> tuple[list[Any], Any]:
    """Start ``n`` worker tasks; returns (their object refs, ``finish(refs, timeout)``), which
    waits for them and shuts down a Ray this call started."""
    ray = _ray()
    started_here = False
    if not ray.is_initialized():
        if address is None:
            # One task per worker plus headroom; local, no dashboard, nothing listening beyond 127.0.0.1.
            ray.init(address=None, include_dashboard=False, num_cpus=n * threads,
                     log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        started_here = True
    task = ray.remote(num_cpus=threads, num_gpus=gpus_per_worker, max_retries=0)(_worker_task)
    refs = [task.remote(storage_url, study_name, threads, i + 1) for i in range(n)]

    def finish(handles: list[Any], timeout: float | None) -> None:
        try:
            ray.get(handles, timeout=timeout)
        finally:
            if started_here:
                ray.shutdown()

    return refs, finish


__all__ = ["start_ray_workers"]
