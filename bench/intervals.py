"""Prediction intervals: empirical coverage and width on held-out rows (issue 32).

For each shared regression table and seed: the rows are split 60/20/20 into training,
calibration and test rows (seeded). Two methods at the same nominal coverage (0.9):

    archtune     ``NeuralRegressor`` (its default recipe) fitted on the training rows with the
                 calibration rows as ``validation_data`` (they early-stop the fit, and
                 calibrate it: split-conformal absolute residuals, archtune.conformal), then
                 ``predict_interval(X_test, 0.9)``.
    LightGBM CQR conformalised quantile regression (Romano et al. 2019) with LightGBM: two
                 quantile models (alpha 0.05 and 0.95, LightGBM's defaults otherwise) fitted on
                 the training rows, their interval widened by the conformity score
                 max(lo - y, y - hi) at the same order statistic on the calibration rows.
    archtune CQR with ``--quantile``: ``NeuralRegressor(loss="quantile", quantiles=(0.05, 0.5,
                 0.95))`` fitted as "archtune", its ``predict_interval`` conformalised quantile
                 regression on the calibration rows (archtune.conformal.QuantileCalibration).

Printed: coverage (share of test rows inside the interval) and mean width (in the target's
units, and relative to the target's standard deviation), per table and averaged over seeds.
The target: archtune's mean coverage over the seeds within [0.88, 0.92] on every table.

Reproduce (from the repository root; ~10 minutes on 2 cores)::

    .venv/bin/python bench/intervals.py                       # 3 tables x 5 seeds
    .venv/bin/python bench/intervals.py --tables cpu_act --seeds 2 --max-epochs 8   # quick
    .venv/bin/python bench/intervals.py --quantile            # and archtune's own CQR
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(os.environ.get("ARCHTUNE_DATASETS", "/work/shared/datasets/tabular"))
TABLES = {"cpu_act": "197_cpu_act.tsv.gz", "house": "574_house_16H.tsv.gz", "pol": "201_pol.tsv.gz",
          "house_8L": "218_house_8L.tsv.gz"}
DEFAULT_TABLES = ("cpu_act", "house", "pol")
COVERAGE = 0.9


def load(name: str, max_rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_csv(DATA_DIR / TABLES[name], sep="\t")
    y = frame.pop("target").to_numpy(dtype="float64")
    if len(frame) > max_rows:  # the same subsample for every seed: the seed moves the split
        keep = np.sort(np.random.default_rng(0).permutation(len(frame))[:max_rows])
        frame, y = frame.iloc[keep].reset_index(drop=True), y[keep]
    return frame.astype("float64"), y


def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    a, b = int(0.6 * n), int(0.8 * n)
    return order[:a], order[a:b], order[b:]


def archtune_interval(X, y, tr, ca, te, seed: int, max_epochs: int | None) -> tuple[np.ndarray, np.ndarray]:
    from archtune import NeuralRegressor

    params = {"random_state": seed, "verbose": 0}
    if max_epochs:
        params["max_epochs"] = max_epochs
    model = NeuralRegressor(**params).fit(X.iloc[tr], y[tr], validation_data=(X.iloc[ca], y[ca]))
    return model.predict_interval(X.iloc[te], COVERAGE)


def archtune_cqr(X, y, tr, ca, te, seed: int, max_epochs: int | None) -> tuple[np.ndarray, np.ndarray]:
    from archtune import NeuralRegressor

    alpha = 1 - COVERAGE
    params = {"random_state": seed, "verbose": 0, "loss": "quantile", "quantiles": (alpha / 2, 0.5, 1 - alpha / 2)}
    if max_epochs:
        params["max_epochs"] = max_epochs
    model = NeuralRegressor(**params).fit(X.iloc[tr], y[tr], validation_data=(X.iloc[ca], y[ca]))
    return model.predict_interval(X.iloc[te], COVERAGE)


def lightgbm_cqr(X, y, tr, ca, te, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import lightgbm as lgb

    alpha = 1 - COVERAGE
    models = [lgb.LGBMRegressor(objective="quantile", alpha=a, random_state=seed, verbose=-1, n_jobs=1)
              .fit(X.iloc[tr], y[tr]) for a in (alpha / 2, 1 - alpha / 2)]
    lo_c, hi_c = (m.predict(X.iloc[ca]) for m in models)
    scores = np.sort(np.maximum(lo_c - y[ca], y[ca] - hi_c))
    k = math.ceil((len(ca) + 1) * COVERAGE)
    q = scores[min(k, len(scores)) - 1]
    lo, hi = (m.predict(X.iloc[te]) for m in models)
    return lo - q, hi + q


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default=",".join(DEFAULT_TABLES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-rows", type=int, default=20000)
    parser.add_argument("--max-epochs", type=int, default=None, help="cap the network's epochs (default: its own)")
    parser.add_argument("--quantile", action="store_true", help="also archtune's quantile network with CQR")
    args = parser.parse_args(argv)
    rows = []
    started = time.time()
    print(f"intervals: coverage {COVERAGE}, tables {args.tables}, {args.seeds} seeds, load {os.getloadavg()[0]:.2f}",
          flush=True)
    for name in args.tables.split(","):
        X, y = load(name, args.max_rows, 0)
        spread = float(np.std(y))
        for seed in range(args.seeds):
            tr, ca, te = split(len(y), seed)
            for method, make in (("archtune", lambda: archtune_interval(X, y, tr, ca, te, seed, args.max_epochs)),
                                 ("LightGBM CQR", lambda: lightgbm_cqr(X, y, tr, ca, te, seed)),
                                 *([("archtune CQR", lambda: archtune_cqr(X, y, tr, ca, te, seed, args.max_epochs))]
                                   if args.quantile else [])):
                lo, hi = make()
                covered = float(np.mean((y[te] >= lo) & (y[te] <= hi)))
                width = float(np.mean(hi - lo))
                rows.append({"table": name, "seed": seed, "method": method, "coverage": covered, "width": width,
                             "relative_width": width / spread})
                print(f"  {name} seed {seed} {method}: coverage {covered:.4f}, width {width:.4g}", flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby(["table", "method"]).agg(coverage=("coverage", "mean"), coverage_sd=("coverage", "std"),
                                                     width=("width", "mean"),
                                                     relative_width=("relative_width", "mean")).reset_index()
    print()
    print(f"| table | method | mean coverage ({args.seeds} seeds) | sd | mean width | width / sd(y) |")
    print("|---|---|---:|---:|---:|---:|")
    for r in summary.itertuples():
        print(f"| {r.table} | {r.method} | {r.coverage:.4f} | {r.coverage_sd:.4f} | {r.width:.4g} | "
              f"{r.relative_width:.3f} |")
    ours = summary[summary.method == "archtune"]
    met = bool(((ours.coverage >= 0.88) & (ours.coverage <= 0.92)).all())
    print(f"\nTarget (archtune's mean coverage in [0.88, 0.92] on every table): {'MET' if met else 'MISSED'}; "
          f"{(time.time() - started) / 60:.1f} min, load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
