"""Storage headroom: trials per second that SQLite, a journal file and PostgreSQL sustain when
8 processes ask for and tell empty trials at once (no training: storage traffic only).

    .venv/bin/python bench/storage_headroom.py                 # about 1 minute; PostgreSQL when it can start
    .venv/bin/python bench/storage_headroom.py --seconds 20 --processes 8

Each process creates nothing: it loads the study, then loops ``ask()``, one ``suggest_float``
and ``tell(value)`` for ``--seconds``. A trial of a real search does more storage calls than
that (archtune.tune.tuner: about 8 user attributes, one ``report`` + ``should_prune`` per
epoch, a heartbeat every 2 s); bench/README.md turns the rate into a number of workers.
PostgreSQL runs on a throwaway server (tests/postgres.py) when its binaries are installed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _client(url: str, seconds: float, queue: "multiprocessing.Queue[int]") -> None:
    import warnings

    import optuna

    warnings.simplefilter("ignore")  # Optuna's heartbeat-outside-optimize warning, once per trial

    from archtune.tune.study import make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="headroom", storage=make_storage(url),
                              sampler=optuna.samplers.RandomSampler())
    until, done = time.monotonic() + seconds, 0
    while time.monotonic() < until:
        trial = study.ask()
        study.tell(trial, trial.suggest_float("x", 0.0, 1.0))
        done += 1
    queue.put(done)


def measure(url: str, processes: int, seconds: float) -> float:
    import optuna

    from archtune.tune.study import make_storage

    optuna.create_study(study_name="headroom", storage=make_storage(url))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(url, seconds, queue)) for _ in range(processes)]
    for p in procs:
        p.start()
    total = sum(queue.get(timeout=seconds + 300) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in (("sqlite", f"sqlite:///{tmp}/study.db"), ("journal", f"journal:///{tmp}/study.log")):
            results[name] = measure(url, args.processes, args.seconds)
            print(f"{name:10s} {results[name]:8.1f} trials/s", flush=True)
    from tests.postgres import postgres_server

    try:
        with postgres_server() as url:
            results["postgresql"] = measure(url, args.processes, args.seconds)
            print(f"{'postgresql':10s} {results['postgresql']:8.1f} trials/s", flush=True)
    except RuntimeError as exc:
        print(f"postgresql skipped: {exc}")
    if args.json:
        Path(args.json).write_text(json.dumps({"processes": args.processes, "seconds": args.seconds,
                                               "trials_per_second": results}, indent=2))


if __name__ == "__main__":
    main()
