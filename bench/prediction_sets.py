"""Prediction sets of classifiers: empirical coverage and mean set size on held-out rows.

For each shared classification table and seed: the rows (at most ``--max-rows``, the same
subsample for every seed) are split 60/20/20 into training, calibration and test rows
(seeded). Two models at the same nominal coverage (0.9), both with adaptive prediction sets
(APS, Romano, Sesia & Candes 2020, in archtune's deterministic form, archtune.prediction_sets):

    archtune   ``NeuralClassifier`` (its default recipe) fitted on the training rows with the
               calibration rows as ``validation_data`` (they early-stop the fit and calibrate
               it), then ``predict_set(X_test, 0.9)``.
    LightGBM   ``LGBMClassifier`` (defaults) fitted on the training rows, its probabilities on
               the calibration rows scored with the same APS code (``calibrate_sets``).

Printed per table (mean over seeds): coverage (share of test rows whose class is in their
set), mean set size, and the share of single-class sets. Smaller sets at the same coverage
are the better model.

Reproduce (from the repository root; ~10 minutes on 2 cores)::

    .venv/bin/python bench/prediction_sets.py                      # 3 tables x 3 seeds
    .venv/bin/python bench/prediction_sets.py --coverage 0.98      # above the models' accuracy
    .venv/bin/python bench/prediction_sets.py --tables satimage --seeds 1   # quick
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(os.environ.get("ARCHTUNE_DATASETS", "/work/shared/datasets/tabular"))
TABLES = {"satimage": "satimage.tsv.gz", "letter": "letter.tsv.gz", "magic": "magic.tsv.gz",
          "shuttle": "shuttle.tsv.gz"}
DEFAULT_TABLES = ("satimage", "letter", "magic")
COVERAGE = 0.9


def load(name: str, max_rows: int) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_csv(DATA_DIR / TABLES[name], sep="\t")
    y = frame.pop("target").to_numpy()
    if len(frame) > max_rows:  # the same subsample for every seed: the seed moves the split
        keep = np.sort(np.random.default_rng(0).permutation(len(frame))[:max_rows])
        frame, y = frame.iloc[keep].reset_index(drop=True), y[keep]
    return frame.astype("float64"), y


def measure(inside: np.ndarray, codes: np.ndarray) -> tuple[float, float, float]:
    """(coverage, mean set size, share of single-class sets)."""
    sizes = inside.sum(axis=1)
    return float(inside[np.arange(len(codes)), codes].mean()), float(sizes.mean()), float((sizes == 1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default=",".join(DEFAULT_TABLES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=6000)
    parser.add_argument("--max-epochs", type=int, default=None, help="cap the network's epochs (quick runs)")
    parser.add_argument("--coverage", type=float, default=COVERAGE, help="the nominal coverage (default 0.9)")
    args = parser.parse_args()
    coverage_asked = args.coverage

    import torch
    from lightgbm import LGBMClassifier

    from archtune import NeuralClassifier
    from archtune.prediction_sets import calibrate_sets

    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, coverage {coverage_asked}", file=sys.stderr)
    print("| table | classes | model | coverage | mean set size | single-class sets |")
    print("|---|---:|---|---:|---:|---:|")
    for name in args.tables.split(","):
        X, y = load(name, args.max_rows)
        classes = np.unique(y)
        codes = np.searchsorted(classes, y)
        results: dict[str, list[tuple[float, float, float]]] = {"archtune": [], "LightGBM": []}
        for seed in range(args.seeds):
            order = np.random.default_rng(seed).permutation(len(X))
            a, b = int(0.6 * len(X)), int(0.8 * len(X))
            train, cal, test = order[:a], order[a:b], order[b:]
            extra = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
            net = NeuralClassifier(random_state=seed, **extra).fit(
                X.iloc[train], y[train], validation_data=(X.iloc[cal], y[cal]))
            results["archtune"].append(measure(net.predict_set(X.iloc[test], coverage_asked), codes[test]))
            gbm = LGBMClassifier(random_state=seed, verbose=-1, n_jobs=1).fit(X.iloc[train], codes[train])
            calibration = calibrate_sets(codes[cal], gbm.predict_proba(X.iloc[cal]), "calibration rows")
            results["LightGBM"].append(measure(calibration.sets(gbm.predict_proba(X.iloc[test]), coverage_asked),
                                               codes[test]))
            print(f"{name} seed {seed}: archtune {results['archtune'][-1]}, LightGBM {results['LightGBM'][-1]}",
                  file=sys.stderr)
        for model, rows in results.items():
            coverage, size, single = np.mean(rows, axis=0)
            print(f"| {name} | {len(classes)} | {model} | {coverage:.4f} | {size:.3f} | {single:.3f} |", flush=True)


if __name__ == "__main__":
    main()
