"""Structured pruning of the default network (issue 17): parameters, CPU latency and test score
before and after `archtune.prune` with ``max_score_drop=0.005``.

For each table: a random sample of ``--rows`` rows (subsampled so that the run takes a few
minutes on a busy 2-core machine) split into fit (60%), pruning-validation (15%, the rows the
score drop is measured on and fine-tuning stops early on; the fit never sees them) and test
(25%, touched only for the final figures). The default ``NeuralClassifier`` /
``NeuralRegressor`` is fitted on the fit rows, then pruned with the defaults of `prune`
(Taylor importance, step 0.2, 3 fine-tuning epochs per round, ``max_score_drop=0.005``).

Latency is a forward pass of the network on 1000 preprocessed test rows, CPU, one torch
thread (`archtune.shrink.latency.latency_ms`: the fastest of 20 passes), measured for the original
and the pruned network alternately ``--latency-repeats`` times in the same run, and the
median of each is reported; ``predict`` latency (preprocessing included) is printed beside
it. Scores: accuracy (classification) or R^2 (regression) on the test rows.

Targets: at least 50% fewer parameters, at least 1.5x lower latency per 1000 rows, a test
score drop of at most 0.005.

Reproduce (from the repository root)::

    .venv/bin/python bench/prune.py                      # magic + house_16H, 8000 rows each, a few minutes
    .venv/bin/python bench/prune.py --rows 4000 --tables magic.tsv.gz
    .venv/bin/python bench/prune.py --json prune.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

import archtune
from archtune import NeuralClassifier, NeuralRegressor
from archtune.fitting import input_matrix
from archtune.shrink.latency import latency_ms
from archtune.shrink.prune_rounds import n_params

DATASETS = Path(os.environ.get("ARCHTUNE_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"
                               / "tabular"))
TABLES = ("magic.tsv.gz", "574_house_16H.tsv.gz")
CLASSIFICATION = {"magic.tsv.gz", "adult.tsv.gz", "electricity.csv.gz", "credit_default.csv.gz"}


def read(name: str, rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(DATASETS / name, sep="\t" if ".tsv" in name else ",")
    if rows < len(frame):
        frame = frame.sample(n=rows, random_state=seed).reset_index(drop=True)
    return frame.drop(columns="target"), frame["target"]


def predict_ms(model, X: pd.DataFrame, repeats: int = 5) -> float:
    """Milliseconds of ``predict`` on 1000 raw rows (preprocessing included), one thread."""
    rows = X.iloc[np.arange(1000) % len(X)]
    times = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            model.predict(rows)
            times.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    return 1000 * statistics.median(times)


def run_table(name: str, rows: int, seed: int, latency_repeats: int) -> dict:
    X, y = read(name, rows, seed)
    classification = name in CLASSIFICATION
    stratify = y if classification else None
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=stratify)
    X_fit, X_val, y_fit, y_val = train_test_split(X_rest, y_rest, test_size=0.2, random_state=seed,
                                                  stratify=y_rest if classification else None)
    model = (NeuralClassifier if classification else NeuralRegressor)(random_state=seed)
    started = time.perf_counter()
    model.fit(X_fit, y_fit)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    pruned, report = archtune.prune(model, X_fit, y_fit, validation_data=(X_val, y_val), max_score_drop=0.005,
                                    random_state=seed)
    prune_seconds = time.perf_counter() - started
    print(f"\n{name}: {len(X_fit)} fit / {len(X_val)} pruning-validation / {len(X_test)} test rows; "
          f"fit {fit_seconds:.0f}s, prune {prune_seconds:.0f}s")
    print(report.table())
    matrix = input_matrix(model, X_test)
    before, after = [], []
    for _ in range(latency_repeats):  # alternated, so that the machine's load drifts over both
        before.append(latency_ms(model.module_, matrix))
        after.append(latency_ms(pruned.module_, matrix))
    result = {
        "table": name, "rows": {"fit": len(X_fit), "validation": len(X_val), "test": len(X_test)},
        "metric": report.metric, "rounds_kept": report.kept_round, "stop_reason": report.stop_reason,
        "hidden_sizes": [list(model.model_config_.hidden_sizes), list(pruned.model_config_.hidden_sizes)],
        "params": [n_params(model.module_), n_params(pruned.module_)],
        "latency_ms": [statistics.median(before), statistics.median(after)],
        "predict_ms": [predict_ms(model, X_test), predict_ms(pruned, X_test)],
        "test_score": [float(model.score(X_test, y_test)), float(pruned.score(X_test, y_test))],
        "seconds": {"fit": fit_seconds, "prune": prune_seconds},
    }
    result["param_reduction"] = 1 - result["params"][1] / result["params"][0]
    result["latency_speedup"] = result["latency_ms"][0] / result["latency_ms"][1]
    result["test_score_drop"] = result["test_score"][0] - result["test_score"][1]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES))
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [run_table(name, args.rows, args.seed, args.latency_repeats) for name in args.tables]
    print(f"\n{'table':<22} {'params before -> after':>26} {'fewer':>6} {'ms/1000 rows':>18} {'speed-up':>8} "
          f"{'predict ms':>15} {'test score':>17} {'drop':>7}")
    for r in results:
        print(f"{r['table']:<22} {r['params'][0]:>12,} -> {r['params'][1]:>9,} {r['param_reduction']:>6.0%} "
              f"{r['latency_ms'][0]:>8.2f} -> {r['latency_ms'][1]:>6.2f} {r['latency_speedup']:>7.2f}x "
              f"{r['predict_ms'][0]:>6.1f} -> {r['predict_ms'][1]:>5.1f} "
              f"{r['test_score'][0]:>7.4f} -> {r['test_score'][1]:>6.4f} {r['test_score_drop']:>7.4f}")
    for r in results:
        met = [r["param_reduction"] >= 0.5, r["latency_speedup"] >= 1.5, r["test_score_drop"] <= 0.005 + 1e-9]  # 10 of 2000 rows is 0.005
        print(f"{r['table']}: targets (>=50% fewer params, >=1.5x lower latency, drop <= 0.005): "
              + ", ".join("met" if m else "MISSED" for m in met))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
