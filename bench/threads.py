"""Threads: seconds per epoch of a default `NeuralRegressor` on 20,000 x 8 rows, with torch's
thread count left to archtune's rule (archtune.train.threads), forced to one thread per core
(torch's default before the rule), and forced to one thread; on a quiet machine and beside a
competing process (another process keeping one core busy, as on a CI runner, a shared
notebook server or ``GridSearchCV(n_jobs=2)``).

    .venv/bin/python bench/threads.py            # about 3 minutes on a 2-core machine

Each configuration runs in its own process (the thread count is process-wide): the forced
counts through ``OMP_NUM_THREADS``, which archtune respects; the rule with no setting at all.
The table (bench/README.md) reports the median epoch time of epochs 2..E (the first includes
the data's preparation) and, per row, the ratio to the rule in the same condition.
The competitor is a second Python process doing single-threaded float32 matmuls in a loop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "tabular" / "218_house_8L.tsv.gz"

CHILD = r"""
import json, sys, time
import numpy as np, pandas as pd, torch
from archtune import NeuralRegressor
frame = pd.read_csv(sys.argv[1], sep="\t").iloc[:20000]
X, y = frame.drop(columns="target"), frame["target"]
model = NeuralRegressor(max_epochs=int(sys.argv[2]), early_stopping=False, random_state=0).fit(X, y)
print(json.dumps({"epoch_seconds": model.history_["seconds"].tolist(), "threads": torch.get_num_threads()}))
"""

COMPETITOR = r"""
import time, torch
torch.set_num_threads(1)
a = torch.randn(512, 512)
end = time.time() + float(__import__("sys").argv[1])
while time.time() < end:
    a = torch.tanh(a @ a)
"""


def run(setting: str | None, epochs: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
    if setting is not None:
        env["OMP_NUM_THREADS"] = setting
    out = subprocess.run([sys.executable, "-c", CHILD, str(DATA), str(epochs)], env=env, capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])["epoch_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    settings = {"archtune's rule": None, f"{cores} threads (torch default)": str(cores), "1 thread": "1"}
    results: dict[str, dict[str, float]] = {}
    for condition in ("quiet", "beside a busy process"):
        competitor = None
        if condition != "quiet":
            competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR, "3600"])
            time.sleep(2.0)
        try:
            for name, setting in settings.items():
                seconds = run(setting, args.epochs)[1:]
                results.setdefault(name, {})[condition] = sorted(seconds)[len(seconds) // 2]
        finally:
            if competitor is not None:
                competitor.kill()
    print(f"| threads ({cores} cores) | quiet s/epoch | ratio to rule | beside a busy process s/epoch | ratio to rule |")
    print("|---|---|---|---|---|")
    rule = results["archtune's rule"]
    for name, row in results.items():
        print(f"| {name} | {row['quiet']:.2f} | {row['quiet'] / rule['quiet']:.2f}x | "
              f"{row['beside a busy process']:.2f} | {row['beside a busy process'] / rule['beside a busy process']:.2f}x |")


if __name__ == "__main__":
    main()
