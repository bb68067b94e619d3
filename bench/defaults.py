"""Defaults without a search: archtune's estimators as they come, before and after the recipes,
each lever's effect, and LightGBM's defaults, on the benchmark's tables.

Every configuration is fitted on the same seeded 80/20 split of each table (stratified for
classification) and scored on the 20% test rows (accuracy or R^2), with its fit time. Jobs run
as separate processes, one thread each, ``--jobs`` at a time (2 on this 2-core machine).

    .venv/bin/python bench/defaults.py                                  # defaults, 6 tables, ~25 min
    .venv/bin/python bench/defaults.py --configs levers --datasets magic,house_16H
    .venv/bin/python bench/defaults.py --configs old,new,lightgbm --seeds 3 --json defaults.json

Configurations (``--configs``, comma-separated, or "defaults" / "levers"):
  old       the estimators' defaults before issue 12 (archtune.recipes.CLASSIC)
  new       NeuralClassifier() / NeuralRegressor() as they come now
  lightgbm  LightGBM's defaults (string columns as pandas categories)
  levers    new with one lever changed at a time: no_embedding, periodic, tabm (2 x 256, k=8),
            recipe_off (the classic training and preprocessing; the 3 x 256 network and its
            piecewise-linear embeddings kept)
  tabm_k    TabM (2 x 256, the recipe's training) with k = 8, 16, 32 members
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATASETS_DIR = Path(os.environ.get("ARCHTUNE_DATASETS", ROOT.parent / "shared" / "datasets")) / "tabular"
# name -> (file, target column, task, rows to keep (None: all))
DATASETS = {
    "magic": ("magic.tsv.gz", "target", "classification"),
    "adult": ("adult.tsv.gz", "target", "classification"),
    "house_16H": ("574_house_16H.tsv.gz", "target", "regression"),
    "cpu_act": ("197_cpu_act.tsv.gz", "target", "regression"),
    "electricity": ("electricity.csv.gz", "Class", "classification"),
    "credit_default": ("credit_default.csv.gz", "default.payment.next.month", "classification"),
}
MAX_ROWS = 20_000  # every table is sampled down to this many rows (the size for a default fit)


def load(name: str) -> tuple[pd.DataFrame, pd.Series, str]:
    file, target, task = DATASETS[name]
    frame = pd.read_csv(DATASETS_DIR / file, sep="\t" if file.endswith(".tsv.gz") else ",")
    frame = frame.drop(columns=[c for c in ("ID",) if c in frame.columns])
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=0).reset_index(drop=True)
    y = frame.pop(target)
    return frame, y, task


def split(name: str):
    from sklearn.model_selection import train_test_split

    X, y, task = load(name)
    return (*train_test_split(X, y, test_size=0.2, random_state=0,
                              stratify=y if task == "classification" else None), task)


def configurations() -> dict[str, dict]:
    from archtune.recipes import CLASSIC

    return {
        "old": dict(CLASSIC),
        "new": {},
        "lightgbm": {"_lightgbm": True},
        "no_embedding": {"numeric_embedding": None},
        "periodic": {"numeric_embedding": "periodic"},
        "tabm": {"arch": "tabm", "hidden_layers": 2, "k": 8},
        **{f"tabm_k{k}": {"arch": "tabm", "hidden_layers": 2, "k": k} for k in (8, 16, 32)},
        "recipe_off": {k: v for k, v in CLASSIC.items()
                       if k not in ("arch", "numeric_embedding", "hidden_layers", "units", "shape")},
    }


GROUPS = {"defaults": ["old", "new", "lightgbm"], "levers": ["new", "no_embedding", "periodic", "tabm", "recipe_off"],
          "tabm_k": ["tabm_k8", "tabm_k16", "tabm_k32"]}


def worker(name: str, config: str, seed: int) -> dict:
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    X_train, X_test, y_train, y_test, task = split(name)
    params = dict(configurations()[config])
    started = time.perf_counter()
    if params.pop("_lightgbm", False):
        import lightgbm as lgb

        X_train, X_test = X_train.copy(), X_test.copy()
        for c in X_train.columns:
            if X_train[c].dtype == object:
                X_train[c] = X_train[c].astype("category")
                X_test[c] = pd.Categorical(X_test[c], categories=X_train[c].cat.categories)
        model = (lgb.LGBMClassifier if task == "classification" else lgb.LGBMRegressor)(
            random_state=seed, verbose=-1, n_jobs=1).fit(X_train, y_train)
        epochs = None
    else:
        from archtune import NeuralClassifier, NeuralRegressor

        cls = NeuralClassifier if task == "classification" else NeuralRegressor
        if task == "regression":
            params.pop("label_smoothing", None)
        model = cls(random_state=seed, **params).fit(X_train, y_train)
        epochs = int(len(model.history_))
    seconds = time.perf_counter() - started
    return {"dataset": name, "config": config, "seed": seed, "score": float(model.score(X_test, y_test)),
            "seconds": seconds, "epochs": epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--configs", default="defaults")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json")
    parser.add_argument("--worker", nargs=3, metavar=("DATASET", "CONFIG", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], int(args.worker[2]))))
        return
    configs = [c for group in args.configs.split(",") for c in GROUPS.get(group, [group])]
    configs = list(dict.fromkeys(configs))
    names = args.datasets.split(",")
    jobs = [(n, c, s) for n in names for c in configs for s in range(args.seeds)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

    def run(job: tuple[str, str, int]) -> dict:
        cmd = [sys.executable, __file__, "--worker", job[0], job[1], str(job[2])]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if out.returncode:
            return {"dataset": job[0], "config": job[1], "seed": job[2], "error": out.stderr.strip()[-300:]}
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {result['dataset']:15s} {result['config']:13s} seed {result['seed']}: {result['score']:.4f} "
              f"in {result['seconds']:.0f} s", file=sys.stderr, flush=True)
        return result

    print(f"defaults: {len(jobs)} fits, {args.jobs} at a time, 1 thread each, tables sampled to {MAX_ROWS} rows, "
          f"80/20 test split", file=sys.stderr)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, jobs))
    errors = [r for r in results if "error" in r]
    for r in errors:
        print(f"error: {r['dataset']} {r['config']}: {r['error']}", file=sys.stderr)
    frame = pd.DataFrame([r for r in results if "error" not in r])
    if frame.empty:
        return
    table = frame.groupby(["dataset", "config"]).agg(score=("score", "mean"), spread=("score", "std"),
                                                     seconds=("seconds", "mean")).reset_index()
    print("\n| dataset | " + " | ".join(configs) + " |")
    print("|---|" + "---:|" * len(configs))
    for name in names:
        cells = []
        for config in configs:
            row = table[(table.dataset == name) & (table.config == config)]
            cells.append("n/a" if row.empty else f"{row.score.iloc[0]:.4f} ({row.seconds.iloc[0]:.0f} s)")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
