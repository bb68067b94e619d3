"""Population training: configurations x epochs per second, cohort vs one at a time.

32 configurations of a 3-hidden-layer ReLU MLP (AdamW; learning rates, weight decay, dropout
and schedules differ between configurations, widths do not) on a 20000 x 50 binary table
(scikit-learn's ``make_classification``, seed 0; 20% held out for validation each epoch),
for each width in {64, 128, 256} and batch size in {128, 256}, trained three ways:

    cohort     ``archtune.population.fit_population`` on the 32 estimators at once
    archtune   ``NeuralClassifier.fit`` on each configuration, one after another
    hand loop  a minimal PyTorch loop per configuration (randperm, index slicing,
               ``nn.Sequential``, ``torch.optim.AdamW``, BCE-with-logits, a validation pass
               per epoch), one after another

The unit is configurations x epochs per second: a whole ``fit`` (preprocessing, building,
validation included) timed and divided into the configuration-epochs it trained. Early
stopping is off so every configuration trains every epoch. One-at-a-time rates are measured
on ``--sample`` configurations (a rate does not depend on how many are trained in a row).
Each method runs in a fresh subprocess, so that its peak resident memory (ru_maxrss) is its
own; the figure printed is the peak above the process's footprint before training.

Arithmetic rate: 6 x (50u + 2u^2 + u) floating-point operations per row per member per step
(forward 2 per multiply-add, backward twice the forward), over training and validation
rows, against the measured rate of a 2048 x 2048 float32 matmul on the same threads.

Targets (2-core CPU): cohort / archtune one-at-a-time >= 8x at 64 units, >= 3x at 128,
>= 1.3x at 256; cohort arithmetic >= 40% of the matmul rate at 128 units and up.

Reproduce (from the repository root)::

    .venv/bin/python bench/population.py                      # ~6 min on 2 cores
    .venv/bin/python bench/population.py --quick              # 1 epoch, 8 members: smoke run
    .venv/bin/python bench/population.py --threads 2 --json population.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {64: 8.0, 128: 3.0, 256: 1.3}
N_ROWS, N_FEATURES = 20000, 50


def _data():
    from sklearn.datasets import make_classification

    X, y = make_classification(N_ROWS, N_FEATURES, n_informative=20, random_state=0)
    return X.astype(np.float32), y


def _configs(n: int, units: int, batch: int, epochs: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [dict(hidden_layers=3, units=units, activation="relu", optimizer="adamw", batch_size=batch,
                 learning_rate=float(10 ** rng.uniform(-4, -2)), weight_decay=float(10 ** rng.uniform(-5, -2)),
                 dropout=float(rng.choice([0.0, 0.1, 0.2])), lr_schedule=str(rng.choice(["constant", "cosine"])),
                 max_epochs=epochs, early_stopping=False, validation_fraction=0.2, random_state=0, verbose=0)
            for _ in range(n)]


def _hand_loop(X, y, config: dict) -> None:
    """What a practitioner writes: no scaling step (the data is already standard normal)."""
    import torch
    from torch import nn

    n_val = int(round(0.2 * len(X)))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.float32)).view(-1, 1)
    X_tr, y_tr, X_va, y_va = Xt[n_val:], yt[n_val:], Xt[:n_val], yt[:n_val]
    u, p = config["units"], config["dropout"]
    layers, width = [], X.shape[1]
    for _ in range(config["hidden_layers"]):
        layers += [nn.Linear(width, u), nn.ReLU(), nn.Dropout(p)]
        width = u
    model = nn.Sequential(*layers, nn.Linear(width, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"])
    loss_fn = nn.BCEWithLogitsLoss()
    b = config["batch_size"]
    for _ in range(config["max_epochs"]):
        model.train()
        perm = torch.randperm(len(X_tr))
        for i in range(0, len(X_tr), b):
            idx = perm[i:i + b]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(X_tr[idx]), y_tr[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            loss_fn(model(X_va), y_va).item()


def _worker(method: str, units: int, batch: int, epochs: int, members: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from archtune import NeuralClassifier
    from archtune.population import fit_population

    X, y = _data()
    configs = _configs(members, units, batch, epochs)
    # Pay the one-time costs of a process (torch.optim's first use imports torch._dynamo, ~2 s;
    # archtune's lazy imports) before the clock starts, for every method alike.
    warm = dict(configs[0], max_epochs=1)
    NeuralClassifier(**warm).fit(X[:300], y[:300])
    fit_population([NeuralClassifier(**warm), NeuralClassifier(**warm)], X[:300], y[:300])
    _hand_loop(X[:300], y[:300], warm)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu = time.perf_counter(), time.process_time()
    if method == "cohort":
        estimators = [NeuralClassifier(**c) for c in configs]
        errors = fit_population(estimators, X, y)
        assert all(e is None for e in errors), errors
    elif method == "archtune":
        for c in configs:
            NeuralClassifier(**c).fit(X, y)
    else:
        torch.manual_seed(0)
        for c in configs:
            _hand_loop(X, y, c)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    return {"method": method, "units": units, "batch": batch, "members": members, "epochs": epochs,
            "wall": wall, "cpu": cpu, "peak_mib": peak / 1024}


def _run(method: str, units: int, batch: int, epochs: int, members: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, str(units), str(batch), str(epochs), str(members),
           str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _matmul_gflops(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * 2048**3 / best / 1e9


def _flops(units: int, members: int, epochs: int) -> float:
    per_row = 6 * (N_FEATURES * units + 2 * units * units + units)
    train_rows, val_rows = 0.8 * N_ROWS, 0.2 * N_ROWS
    return members * epochs * per_row * (train_rows + val_rows / 3)  # a validation row is a forward only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=4, help="configurations timed one at a time")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--metric", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        m, u, b, e, k, t = args.worker
        print(json.dumps(_worker(m, int(u), int(b), int(e), int(k), int(t))))
        return
    if args.quick:
        args.members, args.epochs, args.sample = 8, 1, 2
    gflops_peak = _matmul_gflops(args.threads)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {args.threads} threads; "
          f"2048^2 float32 matmul: {gflops_peak:.1f} GFLOP/s; metric: {args.metric} time", flush=True)
    rows = []
    for units in (64, 128, 256):
        for batch in (128, 256):
            cohort = _run("cohort", units, batch, args.epochs, args.members, args.threads)
            alone = _run("archtune", units, batch, args.epochs, args.sample, args.threads)
            hand = _run("hand", units, batch, args.epochs, args.sample, args.threads)
            rate = {r["method"]: r["members"] * r["epochs"] / r[args.metric] for r in (cohort, alone, hand)}
            gflops = _flops(units, args.members, args.epochs) / cohort["wall"] / 1e9
            row = {"units": units, "batch": batch, "cohort_rate": rate["cohort"], "archtune_rate": rate["archtune"],
                   "hand_rate": rate["hand"], "speedup_vs_archtune": rate["cohort"] / rate["archtune"],
                   "speedup_vs_hand": rate["cohort"] / rate["hand"], "cohort_gflops": gflops,
                   "share_of_matmul": gflops / gflops_peak, "peak_mib": {r["method"]: r["peak_mib"]
                                                                         for r in (cohort, alone, hand)},
                   "target": TARGETS[units]}
            row["pass"] = row["speedup_vs_archtune"] >= TARGETS[units]
            rows.append(row)
            print(f"units {units:3d} batch {batch}: config-epochs/s cohort {rate['cohort']:7.2f}  archtune "
                  f"{rate['archtune']:6.2f}  hand {rate['hand']:6.2f}  -> {row['speedup_vs_archtune']:5.2f}x vs "
                  f"archtune (target {TARGETS[units]}x {'PASS' if row['pass'] else 'MISS'}), "
                  f"{row['speedup_vs_hand']:5.2f}x vs hand; {gflops:5.1f} GFLOP/s = {row['share_of_matmul']:.0%} "
                  f"of matmul; peak MiB cohort {cohort['peak_mib']:.0f} / alone {alone['peak_mib']:.0f} / "
                  f"hand {hand['peak_mib']:.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"matmul_gflops": gflops_peak, "threads": args.threads,
                                         "metric": args.metric, "members": args.members, "epochs": args.epochs,
                                         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
