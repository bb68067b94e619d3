"""Workers: trials finished per minute and the share trained stacked (in cohorts), with one
process against a coordinator plus one `archtune worker` (two processes sharing the 2 cores,
one PyTorch thread each), on the same time budget, data and journal storage.

    .venv/bin/python bench/workers.py                      # 2 x 120 s search, about 5 minutes
    .venv/bin/python bench/workers.py --seconds 60 --rows 3000

One process is ``AutoNeuralClassifier(storage=journal)`` with its threads left to archtune's
rule; two processes are the same with ``n_jobs=1, backend="processes"`` (the coordinator and
one worker subprocess, archtune.tune.launch). No baselines, no ensemble, no refit: the budget
goes to trials. Reported: finished trials (complete + pruned) per minute of budget, the share
of them trained stacked (``cohort`` > 1), the best validation accuracy, and which process
trained how many.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("ARCHTUNE_DATASETS", ROOT.parent / "shared" / "datasets" / "tabular")) / "magic.tsv.gz"


def run(X, y, seconds: float, backend: str) -> dict:
    import optuna

    from archtune.auto import AutoNeuralClassifier
    from archtune.tune.worker import stacked_share

    with tempfile.TemporaryDirectory() as tmp:
        url = f"journal:///{tmp}/study.log"
        started = time.monotonic()
        model = AutoNeuralClassifier(budget=f"{int(seconds)}s", storage=url, study_name="bench", baselines=False,
                                     ensemble=False, refit=False, n_jobs=1, backend=backend, random_state=0)
        os.environ["PYTHONPATH"] = str(ROOT)  # the worker subprocesses import this checkout
        model.fit(X, y)
        wall = time.monotonic() - started
        study = model.study_
        finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                            optuna.trial.TrialState.PRUNED)]
        by = {}
        for t in finished:
            by[t.user_attrs.get("worker", "?")] = by.get(t.user_attrs.get("worker", "?"), 0) + 1
        return {"backend": backend, "finished": len(finished), "per_minute": 60 * len(finished) / seconds,
                "stacked_share": stacked_share(study), "best": model.best_score_, "wall": wall,
                "by_process": sorted(by.values(), reverse=True)}


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--json")
    args = parser.parse_args()
    frame = pd.read_csv(DATA, sep="\t").sample(n=args.rows, random_state=0).reset_index(drop=True)
    X, y = frame.drop(columns="target"), frame["target"]
    results = [run(X, y, args.seconds, "threads"), run(X, y, args.seconds, "processes")]
    for r in results:
        print(f"{'1 process' if r['backend'] == 'threads' else '2 processes':12s} {r['finished']:4d} trials "
              f"{r['per_minute']:6.1f}/min  stacked {r['stacked_share']:.0%}  best {r['best']:.4f}  "
              f"by process {r['by_process']}", flush=True)
    print(f"ratio (2 processes / 1): {results[1]['per_minute'] / results[0]['per_minute']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
