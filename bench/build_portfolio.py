"""Build the search's gradient-boosting portfolio (archtune/tune/portfolio.json).

Each candidate configuration (LightGBM's default, random LightGBM configurations from a
published tuning space, CatBoost's default and a few CatBoost configurations) is trained on
each table with early stopping on 10% of its training rows and scored on held-out rows
(80/20 split). The scores become a configuration x table matrix of normalised errors
(0 = the best candidate on the table, 1 = the median candidate), and greedy portfolio
selection (Feurer et al. 2022) picks, one at a time, the configuration that most lowers the
mean over tables of the best normalised error among those picked. LightGBM's and CatBoost's
defaults are kept first (the search's reference models).

The tables are shared tables that bench/search_quality.py does not use, so that the
benchmark scores the portfolio on tables it was not chosen on.

    .venv/bin/python bench/build_portfolio.py [--max-rows 8000] [--size 8] [--out archtune/tune/portfolio.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "datasets" / "tabular"
# (file, task): shared tables outside bench/search_quality.py's six.
TABLES = [("churn.tsv.gz", "classification"), ("spambase.tsv.gz", "classification"),
          ("satimage.tsv.gz", "classification"), ("letter.tsv.gz", "classification"),
          ("connect_4.tsv.gz", "classification"), ("218_house_8L.tsv.gz", "regression"),
          ("201_pol.tsv.gz", "regression"), ("564_fried.tsv.gz", "regression")]


def lightgbm_candidates(n: int, seed: int) -> list[dict]:
    """LightGBM's default (1000 rounds allowed, early stopping decides), then ``n`` random
    configurations of the tuning space of the TabRepo/AutoGluon LightGBM search (learning
    rate 0.005-0.1 log, 16-255 leaves log, feature fraction 0.4-1, min data in leaf 2-60
    log, L2 0-10 as {0, 1e-3..10 log}, extra trees)."""
    rng = np.random.default_rng(seed)
    configs = [{"n_estimators": 2000, "learning_rate": 0.05}]
    for _ in range(n):
        configs.append({
            "n_estimators": 4000,
            "learning_rate": float(np.round(math.exp(rng.uniform(math.log(0.005), math.log(0.1))), 4)),
            "num_leaves": int(round(math.exp(rng.uniform(math.log(16), math.log(255))))),
            "colsample_bytree": float(np.round(rng.uniform(0.4, 1.0), 2)),
            "min_child_samples": int(round(math.exp(rng.uniform(math.log(2), math.log(60))))),
            "reg_lambda": 0.0 if rng.random() < 0.3 else float(np.round(math.exp(rng.uniform(math.log(1e-3),
                                                                                                math.log(10))), 4)),
            "extra_trees": bool(rng.random() < 0.3),
        })
    return configs


def catboost_candidates() -> list[dict]:
    """CatBoost's default (its learning rate chosen from the data; early stopping decides the
    trees), and depth / L2 / rate variations around it."""
    return [{"iterations": 2000},
            {"iterations": 2000, "depth": 8, "l2_leaf_reg": 3},
            {"iterations": 2000, "depth": 4, "learning_rate": 0.1},
            {"iterations": 2000, "depth": 6, "l2_leaf_reg": 10, "learning_rate": 0.05},
            {"iterations": 2000, "depth": 7, "learning_rate": 0.08, "random_strength": 2}]


def load(file: str, task: str, max_rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_csv(DATA / file, sep="\t" if ".tsv" in file else ",")
    y = frame.pop("target").to_numpy()
    if len(frame) > max_rows:
        rows = np.sort(np.random.default_rng(seed).permutation(len(frame))[:max_rows])
        frame, y = frame.iloc[rows].reset_index(drop=True), y[rows]
    return frame.astype("float64"), (y.astype("float64") if task == "regression" else y)


def error(task: str, model, X: pd.DataFrame, y: np.ndarray) -> float:
    """Classification: 1 - accuracy; regression: RMSE."""
    prediction = model.predict(X)
    if task == "classification":
        return float(np.mean(prediction != y))
    return float(np.sqrt(np.mean((prediction - y) ** 2)))


def main(argv: list[str] | None = None) -> int:
    from sklearn.model_selection import train_test_split

    from archtune.tune.portfolio import FORMAT, GBDTConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-rows", type=int, default=8000)
    parser.add_argument("--lightgbm-candidates", type=int, default=20)
    parser.add_argument("--size", type=int, default=8, help="configurations in the portfolio")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "archtune" / "tune" / "portfolio.json"))
    args = parser.parse_args(argv)

    candidates = ([GBDTConfig(f"lightgbm_{i}" if i else "lightgbm", "lightgbm", p)
                   for i, p in enumerate(lightgbm_candidates(args.lightgbm_candidates, args.seed))]
                  + [GBDTConfig(f"catboost_{i}" if i else "catboost", "catboost", p)
                     for i, p in enumerate(catboost_candidates())])
    matrix = np.full((len(candidates), len(TABLES)), np.nan)
    seconds = np.zeros(len(candidates))
    for t, (file, task) in enumerate(TABLES):
        X, y = load(file, task, args.max_rows, args.seed)
        tr, te = train_test_split(np.arange(len(X)), test_size=0.2, random_state=args.seed,
                                  stratify=y if task == "classification" else None)
        fit, stop = train_test_split(tr, test_size=0.1, random_state=args.seed,
                                     stratify=y[tr] if task == "classification" else None)
        kinds = {str(c): "numeric" for c in X.columns}
        for c, config in enumerate(candidates):
            started = time.perf_counter()
            model = config.model(task, kinds, args.seed).fit(X.iloc[fit], y[fit], eval_set=(X.iloc[stop], y[stop]))
            seconds[c] += time.perf_counter() - started
            matrix[c, t] = error(task, model, X.iloc[te], y[te])
            print(f"{file:22s} {config.name:12s} error {matrix[c, t]:.4f}  {time.perf_counter() - started:5.1f} s "
                  f"(trees {model.best_iterations_})", flush=True)
    best, median = np.nanmin(matrix, axis=0), np.nanmedian(matrix, axis=0)
    normalised = (matrix - best) / np.where(median > best, median - best, 1.0)
    chosen = [0, next(i for i, c in enumerate(candidates) if c.family == "catboost")]
    while len(chosen) < min(args.size, len(candidates)):
        current = normalised[chosen].min(axis=0)
        gains = [np.mean(np.minimum(current, normalised[c])) if c not in chosen else np.inf
                 for c in range(len(candidates))]
        chosen.append(int(np.argmin(gains)))
    for k in range(1, len(chosen) + 1):
        print(f"portfolio of {k}: mean normalised error {np.mean(normalised[chosen[:k]].min(axis=0)):.3f} "
              f"(+{candidates[chosen[k - 1]].name})")
    out = {"format": FORMAT, "built_by": "bench/build_portfolio.py", "seed": args.seed, "max_rows": args.max_rows,
           "tables": [file for file, _ in TABLES],
           "configs": [{"name": candidates[c].name, "family": candidates[c].family, "params": candidates[c].params,
                        "mean_normalised_error": round(float(np.mean(normalised[c])), 4),
                        "fit_seconds_all_tables": round(float(seconds[c]), 1)} for c in chosen],
           "portfolio_mean_normalised_error": [round(float(np.mean(normalised[chosen[:k]].min(axis=0))), 4)
                                               for k in range(1, len(chosen) + 1)]}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
