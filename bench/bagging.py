"""Cross-validation bagging: a 5-member bag trained as one stack against one member after another.

``archtune.ensemble.bagging.bag`` on a shared table, the same configuration twice with the
same seed: ``stack=True`` (the members train together as one `StackedNetwork`, each on its
own K-1 folds, archtune.train.member_rows) and ``stack=False`` (one member after another, as
before). Both give the same members (tests/test_bagging_stacked.py checks it to 1e-8 in
float64), so only the time differs. Timed: the whole ``bag`` call (preparing each member,
training, out-of-fold predictions, score), best of ``--repeats``. Early stopping is on, as
bagging uses it; every member runs until its own patience ends.

The configuration is the estimators' default recipe (piecewise-linear embeddings, a 2 x 256
MLP) with ``max_epochs`` epochs; ``--units`` and ``--embedding`` change it.

Reproduce (from the repository root)::

    .venv/bin/python bench/bagging.py                            # magic, 6000 rows, ~1-2 min on 2 cores
    .venv/bin/python bench/bagging.py --dataset 197_cpu_act.tsv.gz --task regression
    .venv/bin/python bench/bagging.py --quick                    # 1000 rows, 3 epochs: smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import get_scorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archtune import NeuralClassifier, NeuralRegressor  # noqa: E402
from archtune.ensemble.bagging import bag  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tabular"


def load(name: str, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    path = Path(os.environ.get("ARCHTUNE_SHARED", SHARED)) / name
    if not path.exists():
        path = Path("/work/shared/datasets/tabular") / name
    frame = pd.read_csv(path, sep="\t" if ".tsv" in name else ",")
    if n < len(frame):
        frame = frame.sample(n=n, random_state=0).reset_index(drop=True)
    return frame.drop(columns="target"), frame["target"].to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="magic.tsv.gz")
    parser.add_argument("--task", choices=("classification", "regression"), default="classification")
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--embedding", default="default", help="numeric_embedding: default, none or periodic")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs, args.repeats = 1000, 3, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    X, y = load(args.dataset, args.rows)
    cls = NeuralClassifier if args.task == "classification" else NeuralRegressor
    params: dict = {"max_epochs": args.epochs, "units": args.units}
    if args.embedding != "default":
        params["numeric_embedding"] = None if args.embedding == "none" else args.embedding
    scorer = get_scorer("accuracy" if args.task == "classification" else "r2")
    results = {}
    for stack in (True, False):  # warm-up: torch's first calls (allocation, kernels) are not timed
        bag(lambda p: cls(**{**params, "max_epochs": 1, **p}), {}, X[:200], y[:200], args.folds, args.task, scorer,
            stack=stack)
    for stack in (True, False):
        times, bagged = [], None
        for _ in range(args.repeats):
            started = time.perf_counter()
            bagged = bag(lambda p: cls(**{**params, **p}), {}, X, y, args.folds, args.task, scorer, seed=0,
                         stack=stack)
            times.append(time.perf_counter() - started)
        assert bagged is not None and bagged.stacked == stack
        epochs = sum(len(m.model.history_) for m in bagged.ensemble.members)
        name = "stacked" if stack else "sequential"
        results[name] = {"seconds": min(times), "member_epochs": epochs, "oof_score": bagged.oof_score}
        print(f"{name:>10}: {min(times):7.2f} s  ({epochs} member-epochs, out-of-fold score {bagged.oof_score:.4f})")
    print(f"speed-up: {results['sequential']['seconds'] / results['stacked']['seconds']:.2f}x "
          f"({args.dataset}, {args.rows} rows, {args.folds} members, {torch.get_num_threads()} threads)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), **results}, indent=2))


if __name__ == "__main__":
    main()
