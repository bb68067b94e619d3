"""Population training: configurations x epochs per second, cohort vs one at a time.

32 configurations of a 3-hidden-layer ReLU MLP (``archtune.recipes.CLASSIC``: no numeric
embeddings; AdamW; learning rates, weight decay, dropout and schedules differ between
configurations, widths do not) on a 20000 x 50 binary table
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
    .venv/bin/python bench/population.py --repeats 2 --units 64 128 --batches 128 --checkout /tmp/before
                                          # an earlier commit (git worktree add /tmp/before <commit>)
    .venv/bin/python bench/population.py --device cuda       # on a GPU (targets: >= 20x at 64-128 units)
    .venv/bin/python bench/population.py --mixed-precision bf16
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
# --checkout: the workers import archtune from another checkout (a before/after comparison).
sys.path.insert(0, os.environ.get("ARCHTUNE_BENCH_CHECKOUT", str(ROOT)))

TARGETS = {64: 8.0, 128: 3.0, 256: 1.3}
GPU_TARGETS = {64: 20.0, 128: 20.0}  # against archtune one at a time on the same GPU
N_ROWS, N_FEATURES = 20000, 50


def _data():
    from sklearn.datasets import make_classification

    X, y = make_classification(N_ROWS, N_FEATURES, n_informative=20, random_state=0)
    return X.astype(np.float32), y


def _configs(n: int, units: int, batch: int, epochs: int) -> list[dict]:
    from archtune.recipes import CLASSIC

    rng = np.random.default_rng(0)
    # The classic MLP (no numeric embeddings, plain ReLU, standard scaling): the network the
    # targets and the arithmetic count below describe, whatever the estimators' defaults become.
    return [dict(CLASSIC, hidden_layers=3, units=units, activation="relu", optimizer="adamw", batch_size=batch,
                 learning_rate=float(10 ** rng.uniform(-4, -2)), weight_decay=float(10 ** rng.uniform(-5, -2)),
                 dropout=float(rng.choice([0.0, 0.1, 0.2])), lr_schedule=str(rng.choice(["constant", "cosine"])),
                 max_epochs=epochs, early_stopping=False, validation_fraction=0.2, random_state=0, verbose=0)
            for _ in range(n)]


def _options() -> dict:
    """Estimator options the workers pass on (--device, --mixed-precision), from the parent."""
    options = {}
    if os.environ.get("ARCHTUNE_BENCH_DEVICE", "cpu") != "cpu":
        options["device"] = os.environ["ARCHTUNE_BENCH_DEVICE"]
    if os.environ.get("ARCHTUNE_BENCH_PRECISION"):
        options["mixed_precision"] = os.environ["ARCHTUNE_BENCH_PRECISION"]
    return options


def _hand_loop(X, y, config: dict) -> None:
    """What a practitioner writes: no scaling step (the data is already standard normal)."""
    import torch
    from torch import nn

    device = torch.device(config.get("device", "cpu"))
    n_val = int(round(0.2 * len(X)))
    Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y.astype(np.float32)).view(-1, 1).to(device)
    X_tr, y_tr, X_va, y_va = Xt[n_val:], yt[n_val:], Xt[:n_val], yt[:n_val]
    u, p = config["units"], config["dropout"]
    layers, width = [], X.shape[1]
    for _ in range(config["hidden_layers"]):
        layers += [nn.Linear(width, u), nn.ReLU(), nn.Dropout(p)]
        width = u
    model = nn.Sequential(*layers, nn.Linear(width, 1)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"])
    loss_fn = nn.BCEWithLogitsLoss()
    b = config["batch_size"]
    for _ in range(config["max_epochs"]):
        model.train()
        perm = torch.randperm(len(X_tr), device=device)
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
    configs = [dict(c, **_options()) for c in _configs(members, units, batch, epochs)]
    # Pay the one-time costs of a process (torch.optim's first use imports torch._dynamo, ~2 s;
    # archtune's lazy imports) before the clock starts, for every method alike.
    warm = dict(configs[0], max_epochs=1)
    NeuralClassifier(**warm).fit(X[:300], y[:300])
    fit_population([NeuralClassifier(**warm), NeuralClassifier(**warm)], X[:300], y[:300])
    _hand_loop(X[:300], y[:300], warm)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
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
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    if _options().get("device") == "cuda":  # the GPU's own peak, not the host's
        peak = torch.cuda.max_memory_allocated() / 1024
    return {"method": method, "units": units, "batch": batch, "members": members, "epochs": epochs,
            "wall": wall, "cpu": cpu, "peak_mib": peak / 1024}


def _run(method: str, units: int, batch: int, epochs: int, members: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, str(units), str(batch), str(epochs), str(members),
           str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # the options reach the workers in ARCHTUNE_BENCH_*
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _matmul_gflops(threads: int, device: str = "cpu") -> float:
    import torch

    torch.set_num_threads(threads)
    size = 2048 if device == "cpu" else 8192  # a GPU needs a larger product to reach its rate
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(5):
        if device != "cpu":
            torch.cuda.synchronize()
        started = time.perf_counter()
        torch.mm(a, b)
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


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
    parser.add_argument("--repeats", type=int, default=1, help="runs of each method (round-robin); the fastest counts")
    parser.add_argument("--units", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--mixed-precision", choices=["bf16"], default=None,
                        help="train with bfloat16 forward passes (archtune's mixed_precision; the hand loop stays float32)")
    parser.add_argument("--checkout", type=Path, help="measure another checkout of archtune (e.g. a git worktree "
                        "of an earlier commit) instead of this one")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        m, u, b, e, k, t = args.worker
        print(json.dumps(_worker(m, int(u), int(b), int(e), int(k), int(t))))
        return
    if args.quick:
        args.members, args.epochs, args.sample = 8, 1, 2
    os.environ["ARCHTUNE_BENCH_DEVICE"] = args.device
    if args.mixed_precision:
        os.environ["ARCHTUNE_BENCH_PRECISION"] = args.mixed_precision
    if args.checkout:
        os.environ["ARCHTUNE_BENCH_CHECKOUT"] = str(args.checkout.resolve())
    gflops_peak = _matmul_gflops(args.threads, args.device)
    where = "GPU " + _gpu_name() if args.device == "cuda" else f"{platform.processor() or platform.machine()}"
    print(f"{where}, {os.cpu_count()} cpus, {args.threads} threads; {'2048' if args.device == 'cpu' else '8192'}^2 float32 "
          f"matmul: {gflops_peak:.1f} GFLOP/s; metric: {args.metric} time; archtune from {args.checkout or ROOT}"
          f"{'; mixed_precision=' + args.mixed_precision if args.mixed_precision else ''}", flush=True)
    targets = GPU_TARGETS if args.device == "cuda" else TARGETS

    def verdict(row: dict) -> str:
        return "no target" if row["target"] is None else f"target {row['target']}x {'PASS' if row['pass'] else 'MISS'}"

    rows = []
    for units in args.units:
        for batch in args.batches:
            # Each method --repeats times, round-robin, keeping its fastest run (load only adds time).
            runs: dict[str, list[dict]] = {"cohort": [], "archtune": [], "hand": []}
            for _ in range(args.repeats):
                for method in runs:
                    members = args.members if method == "cohort" else args.sample
                    runs[method].append(_run(method, units, batch, args.epochs, members, args.threads))
            cohort, alone, hand = (min(runs[m], key=lambda r: r[args.metric]) for m in ("cohort", "archtune", "hand"))
            rate = {r["method"]: r["members"] * r["epochs"] / r[args.metric] for r in (cohort, alone, hand)}
            gflops = _flops(units, args.members, args.epochs) / cohort["wall"] / 1e9
            row = {"units": units, "batch": batch, "cohort_rate": rate["cohort"], "archtune_rate": rate["archtune"],
                   "hand_rate": rate["hand"], "speedup_vs_archtune": rate["cohort"] / rate["archtune"],
                   "speedup_vs_hand": rate["cohort"] / rate["hand"], "cohort_gflops": gflops,
                   "share_of_matmul": gflops / gflops_peak, "peak_mib": {r["method"]: r["peak_mib"]
                                                                         for r in (cohort, alone, hand)},
                   "target": targets.get(units)}
            row["pass"] = None if row["target"] is None else row["speedup_vs_archtune"] >= row["target"]
            rows.append(row)
            print(f"units {units:3d} batch {batch}: config-epochs/s cohort {rate['cohort']:7.2f}  archtune "
                  f"{rate['archtune']:6.2f}  hand {rate['hand']:6.2f}  -> {row['speedup_vs_archtune']:5.2f}x vs "
                  f"archtune ({verdict(row)}), "
                  f"{row['speedup_vs_hand']:5.2f}x vs hand; {gflops:5.1f} GFLOP/s = {row['share_of_matmul']:.0%} "
                  f"of matmul; peak MiB cohort {cohort['peak_mib']:.0f} / alone {alone['peak_mib']:.0f} / "
                  f"hand {hand['peak_mib']:.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"matmul_gflops": gflops_peak, "threads": args.threads,
                                         "metric": args.metric, "members": args.members, "epochs": args.epochs,
                                         "device": args.device, "mixed_precision": args.mixed_precision,
                                         "checkout": str(args.checkout or ROOT), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
