"""Search overhead, before/after: the same seeded search with a trial budget in two checkouts.

With a trial budget (not a time budget) and the same ``random_state``, a search draws the same
configurations, prunes the same trials and reports the same values in any checkout whose
search logic is unchanged; this script checks that it does (the finished trials' values must be
equal) and then compares wall-clock seconds: the difference is the overhead of the code around
the trials, not luck in what the sampler or the pruner did within a time budget (which is what
bench/search_throughput.py's trials per minute also measure).

Every search runs in its own subprocess, the two checkouts alternating (A B A B ...), so that
drift in the machine's load hits both; the ratio printed is the median of the paired ratios
(this checkout / the other), with the fastest run of each beside it.

Reproduce (from the repository root)::

    git archive f2225f6 | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    .venv/bin/python bench/search_paired.py --checkout /tmp/before                 # cpu_act, cohorts, ~6 min
    .venv/bin/python bench/search_paired.py --checkout /tmp/before --population false --trials 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("ARCHTUNE_DATASETS", ROOT.parent / "shared" / "datasets" / "tabular"))

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, pandas as pd
from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor
frame = pd.read_csv(sys.argv[2], sep="\t").sample(n=int(sys.argv[3]), random_state=0)
y = frame.pop("target")
cls = AutoNeuralClassifier if sys.argv[4] == "classification" else AutoNeuralRegressor
started = time.perf_counter()
model = cls(budget=int(sys.argv[5]), population=sys.argv[6] == "true", baselines=False, ensemble=False,
            refit=False, random_state=0).fit(frame, y)
seconds = time.perf_counter() - started
values = [t.value for t in model.study_.trials]
print(json.dumps({"seconds": seconds, "values": values, "file": __import__("archtune").__file__}))
"""

TABLES = {"cpu_act": ("197_cpu_act.tsv.gz", "regression"), "magic": ("magic.tsv.gz", "classification")}


def run(checkout: Path, table: str, rows: int, trials: int, population: str) -> dict:
    path, task = TABLES[table]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(checkout), str(DATASETS / path), str(rows), task,
                           str(trials), population], capture_output=True, text=True, env=env, cwd=checkout)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, required=True, help="the other checkout (before)")
    parser.add_argument("--table", choices=sorted(TABLES), default="cpu_act")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--population", choices=["true", "false"], default="true")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.table}, {args.rows} rows, {args.trials} trials, population={args.population}; "
          f"after: {ROOT}, before: {args.checkout}; load average {os.getloadavg()}")
    after, before = [], []
    for pair in range(args.pairs):
        order = [("after", ROOT), ("before", args.checkout)] if pair % 2 == 0 else [("before", args.checkout),
                                                                                     ("after", ROOT)]
        for label, checkout in order:
            result = run(checkout, args.table, args.rows, args.trials, args.population)
            (after if label == "after" else before).append(result)
            print(f"  pair {pair + 1} {label:<6} {result['seconds']:6.1f} s  ({result['file']})")
    if any(a["values"] != b["values"] for a, b in zip(after, before)):
        print("the two checkouts' searches differ (trial values): the ratio compares different work")
    else:
        print("the two checkouts trained the same trials to the same values")
    ratios = [a["seconds"] / b["seconds"] for a, b in zip(after, before)]
    print(f"after / before: median of paired ratios {statistics.median(ratios):.3f}x "
          f"(pairs {', '.join(f'{r:.3f}' for r in ratios)}); fastest after / fastest before "
          f"{min(a['seconds'] for a in after) / min(b['seconds'] for b in before):.3f}x; "
          f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
