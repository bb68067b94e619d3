"""Population training of the newer tabular families: config-epochs per second, cohort vs one
at a time.

Families (2 hidden layers, AdamW, batch 256; the estimators' other defaults, which include the
parametric activations, the feature scale and the flat-cosine regularisation schedules):

    tabm       arch="tabm", k=8 (the search's TABM_K), no numeric embeddings
    tabm_ple   the same with piecewise-linear embeddings (16 bins, d_embedding 8)
    mlp_ple    arch="mlp" with piecewise-linear embeddings (16 bins, d_embedding 8)

at 64 and 128 units, on a 6000 x 20 binary table (scikit-learn's ``make_classification``,
seed 0; 20% held out for validation each epoch). Configurations differ in learning rate,
weight decay, dropout and schedule, not in width. Two ways, in one process after a warm-up:

    cohort     ``archtune.population.fit_population`` on ``--members`` estimators at once
    alone      ``NeuralClassifier.fit`` on each of them (or ``--sample`` of them), one after another

The unit is configurations x epochs per second of a whole fit (preprocessing, building,
validation included); early stopping is off so every configuration trains every epoch. The
ratio cohort / alone is the speed-up a search's cohort gets. Process CPU time on one thread by
default: on a shared 2-core machine wall time measures the neighbours (bench/README.md,
fit_overhead.py).

Reproduce (from the repository root)::

    .venv/bin/python bench/population_families.py             # ~2 min on 2 cores
    .venv/bin/python bench/population_families.py --quick     # 1 epoch, 4 members: smoke run
    .venv/bin/python bench/population_families.py --metric wall --threads 2 --json families.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_ROWS, N_FEATURES = 6000, 20
EMBEDDING = dict(numeric_embedding="piecewise_linear", n_bins=16, d_embedding=8)
FAMILIES = {
    "tabm": dict(arch="tabm", k=8, numeric_embedding=None),
    "tabm_ple": dict(arch="tabm", k=8, **EMBEDDING),
    "mlp_ple": dict(arch="mlp", **EMBEDDING),
}


def _data():
    from sklearn.datasets import make_classification

    X, y = make_classification(N_ROWS, N_FEATURES, n_informative=10, random_state=0)
    return X.astype(np.float32), y


def _configs(family: str, n: int, units: int, epochs: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [dict(FAMILIES[family], hidden_layers=2, units=units, optimizer="adamw", batch_size=256,
                 learning_rate=float(10 ** rng.uniform(-4, -2)), weight_decay=float(10 ** rng.uniform(-5, -1)),
                 dropout=float(rng.choice([0.0, 0.1, 0.2])), lr_schedule=str(rng.choice(["constant", "cosine"])),
                 max_epochs=epochs, early_stopping=False, validation_fraction=0.2, random_state=0, verbose=0)
            for _ in range(n)]


def _clock(metric: str) -> float:
    return time.process_time() if metric == "cpu" else time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=8, help="a search's largest cohort (COHORT_SIZE)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sample", type=int, default=0,
                        help="configurations timed one at a time (0: all; their dropout rates differ, and a "
                             "network alone pays for dropout draws that a stack shares)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--metric", choices=["wall", "cpu"], default="cpu")
    parser.add_argument("--units", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.members, args.epochs, args.sample = 4, 1, 0
    args.sample = args.sample or args.members
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from archtune import NeuralClassifier
    from archtune.models import get_family
    from archtune.population import fit_population

    X, y = _data()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {args.threads} threads, torch "
          f"{torch.__version__}; {args.metric} time; {args.members} members, {args.epochs} epochs, "
          f"{N_ROWS} x {N_FEATURES}", flush=True)
    rows = []
    for family in args.families:
        for units in args.units:
            configs = _configs(family, args.members, units, args.epochs)
            warm = dict(configs[0], max_epochs=1)  # one-time costs (lazy imports, first optimiser use)
            NeuralClassifier(**warm).fit(X[:300], y[:300])
            fit_population([NeuralClassifier(**warm), NeuralClassifier(**warm)], X[:300], y[:300])
            # A family that cannot be stacked would train one at a time inside fit_population.
            assert get_family(FAMILIES[family]["arch"]).stackable, family
            started = _clock(args.metric)
            estimators = [NeuralClassifier(**c) for c in configs]
            errors = fit_population(estimators, X, y)
            cohort_seconds = _clock(args.metric) - started
            assert all(e is None for e in errors), errors
            started = _clock(args.metric)
            for c in configs[:args.sample]:
                NeuralClassifier(**c).fit(X, y)
            alone_seconds = _clock(args.metric) - started
            cohort_rate = args.members * args.epochs / cohort_seconds
            alone_rate = args.sample * args.epochs / alone_seconds
            row = {"family": family, "units": units, "cohort_rate": cohort_rate, "alone_rate": alone_rate,
                   "speedup": cohort_rate / alone_rate}
            rows.append(row)
            print(f"{family:9s} units {units:3d}: config-epochs/s cohort {cohort_rate:7.2f}  alone {alone_rate:6.2f}"
                  f"  -> {row['speedup']:5.2f}x", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "metric": args.metric, "members": args.members,
                                         "epochs": args.epochs, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
