"""Fit overhead: seconds per epoch of the same network on the same data, trained four ways.

    (a) archtune   ``NeuralClassifier``
    (b) hand loop  a minimal PyTorch loop: a randperm per epoch, index slicing of in-memory
                   tensors, ``nn.Sequential``, Adam, ``BCEWithLogitsLoss``
    (c) skorch     ``NeuralNetBinaryClassifier`` with the same ``nn.Sequential``
    (d) sklearn    ``MLPClassifier`` with the same hidden sizes, adam, batch size

Every tool trains the same architecture (in -> 256 -> ReLU -> 256 -> ReLU -> 1 logit by
default) for a fixed number of epochs on the same standardised float32 matrix, with a batch
size of 256, Adam at lr 1e-3, no validation split, no early stopping, no dropout, no weight
decay or L2 penalty, and a constant learning rate. ``torch.set_num_threads`` and the BLAS
thread pool (threadpoolctl, for scikit-learn's NumPy) are set to the same count for all.

The timed unit is one whole ``fit`` call from NumPy arrays (so archtune's preprocessing and
network construction count against it, as they do for a user); s/epoch is that time divided
by the number of epochs. Each tool is warmed up once, then the tools are run round-robin
(rotating the order each round). s/epoch is the median over repeats; a ratio is the median
over rounds of (tool / hand loop) within the round, so drift in the machine's load cancels;
"best-of-N" is the ratio of each tool's fastest fit (load only ever adds time, so the fastest
fit is the least disturbed). On a shared machine read the two together, with the quartiles
of the paired ratios printed under the table: a difference inside them is noise.
The "in-loop" column is the tool's own per-epoch wall timer where it has one (archtune
``history_.seconds``, skorch ``history[:, 'dur']``, the hand loop's own clock), median over
epochs 2.. of every repeat; the gap between it and s/epoch is the fixed cost of ``fit``.

Clocks. Both wall time and the process's CPU time are recorded; the ratios and targets use
CPU time by default (``--metric``). With one thread and no worker processes, CPU time is the
work the tool did, while wall time on a shared machine also measures the neighbours. The
default is one thread for the same reason: on a loaded 2-core machine two OpenMP threads
spin and wait on each other and a step costs 5-25x more, in CPU time too.

Targets: archtune within 1.10x of the hand loop, and faster than skorch and MLPClassifier.

Reproduce (from the repository root, with the ``bench`` extra installed)::

    .venv/bin/python bench/fit_overhead.py                       # 10 epochs x 7 repeats x 4 tools, ~2 min
    .venv/bin/python bench/fit_overhead.py --quick               # 5 epochs x 2 repeats (smoke run)
    .venv/bin/python bench/fit_overhead.py --json fit_overhead.json
    .venv/bin/python bench/fit_overhead.py --threads 2 --metric wall   # on a quiet machine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
# ARCHTUNE_BENCH_CHECKOUT: measure another checkout's archtune (a before/after comparison).
sys.path.insert(0, os.environ.get("ARCHTUNE_BENCH_CHECKOUT", str(ROOT)))
DATA_DIR = Path(os.environ.get("ARCHTUNE_DATASETS", "/work/shared/datasets/tabular"))
LR = 1e-3
TARGET_RATIO = 1.10


# --------------------------------------------------------------------------- data


def load_data(name: str, max_rows: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """A real binary table, standardised once up front (float32 X, 0/1 int y)."""
    path = DATA_DIR / name
    frame = pd.read_csv(path, sep="\t" if ".tsv" in path.name else ",")
    target = "target" if "target" in frame.columns else frame.columns[-1]
    y_raw = frame.pop(target)
    X = frame.select_dtypes("number").to_numpy(dtype="float64")
    if X.shape[1] != frame.shape[1]:
        # Non-numeric columns would be encoded differently by each tool; the comparison
        # needs the same matrix, so they are dropped (and said so).
        print(f"note: dropped {frame.shape[1] - X.shape[1]} non-numeric column(s) of {name}", file=sys.stderr)
    keep = np.isfinite(X).all(axis=1)
    X, y_raw = X[keep], y_raw[keep]
    classes = np.unique(y_raw)
    if len(classes) != 2:
        raise SystemExit(f"{name}: target {target!r} has {len(classes)} classes; this benchmark needs a binary one")
    y = (np.asarray(y_raw) == classes[1]).astype("int64")
    if max_rows is not None and len(X) > max_rows:
        idx = np.random.default_rng(0).permutation(len(X))[:max_rows]
        X, y = X[idx], y[idx]
    X = ((X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)).astype("float32")
    return np.ascontiguousarray(X), y, target


def make_sequential(n_in: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- the four tools
# Each runner trains from scratch and returns (Clock of the fit, per-epoch wall seconds or None,
# train accuracy).
# Accuracy is computed after the clock stops: it only shows that every tool really trained.


class Clock:
    """Wall and process-CPU seconds of the ``with`` block."""

    wall = cpu = 0.0

    def __enter__(self) -> "Clock":
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self._w, time.process_time() - self._c


@dataclass(frozen=True)
class Setup:
    hidden: tuple[int, ...]
    batch_size: int
    epochs: int
    seed: int = 0


def run_archtune(X: np.ndarray, y: np.ndarray, s: Setup) -> tuple[Clock, list[float] | None, float]:
    from archtune import NeuralClassifier
    from archtune.recipes import CLASSIC

    # The classic MLP (no numeric embeddings, plain ReLU, no label smoothing), whatever the
    # estimators' defaults become: the network the other tools train.
    clf = NeuralClassifier(**{
        **CLASSIC, "hidden_sizes": s.hidden, "activation": "relu", "dropout": 0.0, "weight_decay": 0.0, "l1": 0.0,
        "l2": 0.0, "optimizer": "adam", "learning_rate": LR, "momentum": 0.9, "batch_size": s.batch_size,
        "max_epochs": s.epochs, "lr_schedule": "constant", "warmup_epochs": 0, "early_stopping": False,
        "validation_fraction": 0.0, "scaling": "standard", "random_state": s.seed, "device": "cpu", "verbose": 0,
    })
    with Clock() as clock:
        clf.fit(X, y)
    assert len(clf.history_) == s.epochs and "val_loss" not in clf.history_, "archtune ran a validation pass"
    acc = float((clf.predict(X) == y).mean())
    return clock, clf.history_["seconds"].tolist(), acc


def run_hand(X: np.ndarray, y: np.ndarray, s: Setup) -> tuple[Clock, list[float] | None, float]:
    epoch_seconds = []
    with Clock() as clock:
        torch.manual_seed(s.seed)
        Xt = torch.from_numpy(X)
        yt = torch.from_numpy(y.astype("float32")).reshape(-1, 1)
        model = make_sequential(X.shape[1], s.hidden)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        loss_fn = nn.BCEWithLogitsLoss()
        n = len(Xt)
        for _ in range(s.epochs):
            e0 = time.perf_counter()
            perm = torch.randperm(n)
            for start in range(0, n, s.batch_size):
                idx = perm[start : start + s.batch_size]
                loss = loss_fn(model(Xt[idx]), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            epoch_seconds.append(time.perf_counter() - e0)
    with torch.no_grad():
        acc = float(((model(Xt) > 0).float() == yt).float().mean())
    return clock, epoch_seconds, acc


def run_skorch(X: np.ndarray, y: np.ndarray, s: Setup) -> tuple[Clock, list[float] | None, float]:
    from skorch import NeuralNetBinaryClassifier

    y32 = y.astype("float32")
    with Clock() as clock:
        torch.manual_seed(s.seed)
        net = NeuralNetBinaryClassifier(
            make_sequential(X.shape[1], s.hidden), criterion=nn.BCEWithLogitsLoss, optimizer=torch.optim.Adam,
            lr=LR, batch_size=s.batch_size, max_epochs=s.epochs, train_split=None,
            iterator_train__shuffle=True, device="cpu", verbose=0,
        )
        net.fit(X, y32)
    acc = float((net.predict(X) == y).mean())
    return clock, [float(d) for d in net.history[:, "dur"]], acc


def run_sklearn(X: np.ndarray, y: np.ndarray, s: Setup) -> tuple[Clock, list[float] | None, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=s.hidden, activation="relu", solver="adam", alpha=0.0, batch_size=s.batch_size,
        learning_rate_init=LR, max_iter=s.epochs, shuffle=True, tol=0.0, n_iter_no_change=s.epochs + 1,
        early_stopping=False, random_state=s.seed,
    )
    with warnings.catch_warnings(), Clock() as clock:
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.n_iter_ == s.epochs, f"MLPClassifier ran {clf.n_iter_} epochs, not {s.epochs}"
    assert clf.coefs_[0].dtype == np.float32, "MLPClassifier did not keep float32"
    acc = float((clf.predict(X) == y).mean())
    return clock, None, acc


Runner = Callable[[np.ndarray, np.ndarray, Setup], tuple[Clock, "list[float] | None", float]]
TOOLS: dict[str, tuple[str, Runner]] = {
    "hand": ("hand-written PyTorch loop", run_hand),
    "archtune": ("archtune NeuralClassifier", run_archtune),
    "skorch": ("skorch NeuralNetBinaryClassifier", run_skorch),
    "sklearn": ("sklearn MLPClassifier", run_sklearn),
}

DIFFERENCES = [
    "All: same widths, ReLU, 1 logit + sigmoid cross-entropy, Adam lr 1e-3 (betas 0.9/0.999), batch 256, "
    "reshuffled every epoch, float32, no validation, no early stopping, no dropout, no weight decay / L2.",
    "Initialisation differs (archtune He-normal, PyTorch default for hand/skorch, Glorot for sklearn); it "
    "does not change the work per step.",
    "archtune: fit() also validates parameters, re-standardises the (already standard) matrix with its "
    "Preprocessor, and wraps the body in a TabularNetwork (encode() is a no-op without categorical "
    "columns; the output layer is a separate module call). Per batch it sets the learning rate from the "
    "schedule (LRScheduler.on_batch_end) and accumulates the loss on the device (read once per epoch).",
    "hand loop: keeps no loss statistics at all (the floor).",
    "skorch: batches come from a torch DataLoader over a Dataset (per-row __getitem__ + default_collate), "
    "and it reads each batch's loss to the host (.item()) for its history.",
    "sklearn: its own NumPy implementation (float32 kept), computes the loss of each batch.",
]


# --------------------------------------------------------------------------- driver


@dataclass
class Result:
    key: str
    name: str
    wall: list[float] = field(default_factory=list)  # seconds per fit
    cpu: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)  # the tool's own per-epoch (wall) timer
    train_accuracy: list[float] = field(default_factory=list)


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 repeats and 5 epochs (a smoke run)")
    parser.add_argument("--repeats", type=int, default=7, help="timed fits per tool (default 7)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="hidden widths (default 256 256)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and BLAS threads for every tool (default 1; see the module docstring)")
    parser.add_argument("--metric", choices=("cpu", "wall"), default="cpu",
                        help="which clock the ratios and targets use (default cpu)")
    parser.add_argument("--dataset", default="magic.tsv.gz", help=f"a binary table in {DATA_DIR}")
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--tools", nargs="+", choices=list(TOOLS), default=list(TOOLS))
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    epochs = min(args.epochs, 5) if args.quick else args.epochs
    if "hand" not in args.tools:
        parser.error("--tools must include 'hand', the reference of the ratios")

    from threadpoolctl import threadpool_limits

    threads = args.threads
    torch.set_num_threads(threads)
    blas_limit = threadpool_limits(limits=threads)  # noqa: F841  (kept alive for the whole run)

    X, y, target = load_data(args.dataset, args.max_rows)
    setup = Setup(hidden=tuple(args.hidden), batch_size=args.batch_size, epochs=epochs)
    steps = -(-len(X) // setup.batch_size)
    arch = f"{X.shape[1]}-{'-'.join(map(str, setup.hidden))}-1"
    load_before = _loadavg()
    print(f"data: {args.dataset} ({len(X)} rows x {X.shape[1]} features, target {target!r}, "
          f"positive rate {y.mean():.3f}); network {arch}; batch {setup.batch_size} ({steps} steps/epoch); "
          f"{setup.epochs} epochs; {repeats} repeats; {threads} thread(s); load average {load_before}",
          file=sys.stderr)

    results = {key: Result(key, TOOLS[key][0]) for key in args.tools}
    warm = Setup(setup.hidden, setup.batch_size, epochs=1, seed=setup.seed)
    for key in args.tools:
        TOOLS[key][1](X, y, warm)
    order = list(args.tools)
    for r in range(repeats):
        for key in order[r % len(order):] + order[: r % len(order)]:  # rotate so no tool always goes first
            clock, per_epoch, acc = TOOLS[key][1](X, y, setup)
            res = results[key]
            res.wall.append(clock.wall)
            res.cpu.append(clock.cpu)
            if per_epoch:
                # The first epoch of a fit pays for allocations the later ones reuse.
                res.epoch_seconds.extend(per_epoch[1:] if len(per_epoch) > 1 else per_epoch)
            res.train_accuracy.append(acc)
            print(f"  repeat {r + 1}/{repeats} {key:9s} wall {clock.wall:7.3f} s  cpu {clock.cpu:7.3f} s  "
                  f"({clock.cpu / setup.epochs:.4f} cpu s/epoch, train acc {acc:.3f})", file=sys.stderr)

    hand = results["hand"]
    rows = []
    for key in args.tools:
        res = results[key]
        # Ratios are paired by round (each fit against the hand loop's fit of the same round),
        # then the median is taken: drift in the machine's load cancels within a round.
        rows.append({
            "tool": res.name, "key": key,
            "cpu_s_per_epoch": statistics.median(res.cpu) / setup.epochs,
            "wall_s_per_epoch": statistics.median(res.wall) / setup.epochs,
            "cpu_ratio_vs_hand": statistics.median(a / b for a, b in zip(res.cpu, hand.cpu)),
            "wall_ratio_vs_hand": statistics.median(a / b for a, b in zip(res.wall, hand.wall)),
            # Best of N: a neighbour's load only ever adds time, so the fastest fit of each tool
            # is its least-disturbed one (timeit's rule); a second, independent estimate.
            "cpu_best_ratio_vs_hand": min(res.cpu) / min(hand.cpu),
            "wall_best_ratio_vs_hand": min(res.wall) / min(hand.wall),
            "in_loop_wall_s_per_epoch": statistics.median(res.epoch_seconds) if res.epoch_seconds else None,
            "train_accuracy": statistics.median(res.train_accuracy),
            "fit_wall_seconds": res.wall, "fit_cpu_seconds": res.cpu,
        })
    load_after = _loadavg()

    m = args.metric
    print()
    print(f"### Fit overhead: {args.dataset} ({len(X)} x {X.shape[1]}), {arch} MLP, batch {setup.batch_size}, "
          f"{setup.epochs} epochs, {threads} thread(s), median of {repeats} (ratios on {m} time)")
    print()
    other = "wall" if m == "cpu" else "cpu"
    print(f"| tool | s/epoch ({m}) | ratio vs hand loop | best-of-{repeats} ratio | s/epoch ({other}) | "
          f"ratio ({other}) | in-loop wall s/epoch | train acc |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        in_loop = row["in_loop_wall_s_per_epoch"]
        print(f"| {row['tool']} | {row[f'{m}_s_per_epoch']:.4f} | {row[f'{m}_ratio_vs_hand']:.2f}x | "
              f"{row[f'{m}_best_ratio_vs_hand']:.2f}x | "
              f"{row[f'{other}_s_per_epoch']:.4f} | {row[f'{other}_ratio_vs_hand']:.2f}x | "
              f"{f'{in_loop:.4f}' if in_loop is not None else 'n/a'} | {row['train_accuracy']:.3f} |")
    print()
    verdicts = []
    by_key = {row["key"]: row for row in rows}

    def spread(key_a: str, key_b: str) -> tuple[float, float, float]:
        """Median and quartiles over rounds of (a / b) on the chosen clock."""
        a, b = getattr(results[key_a], m), getattr(results[key_b], m)
        ratios = sorted(x / y for x, y in zip(a, b))
        if len(ratios) < 4:
            return statistics.median(ratios), ratios[0], ratios[-1]
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        return statistics.median(ratios), q1, q3

    if "archtune" in by_key:
        med, lo, hi = spread("archtune", "hand")
        verdicts.append((f"archtune within {TARGET_RATIO:.2f}x of the hand loop", med <= TARGET_RATIO,
                         f"{med:.2f}x; quartiles over rounds {lo:.2f}-{hi:.2f}; "
                         f"best-of-{repeats} {by_key['archtune'][f'{m}_best_ratio_vs_hand']:.2f}x"))
        for key in ("skorch", "sklearn"):
            if key in by_key:
                med, lo, hi = spread("archtune", key)
                detail = f"{1 / med:.2f}x faster" if med < 1 else f"{med:.2f}x slower"
                detail += f"; archtune/{key} quartiles over rounds {lo:.2f}-{hi:.2f}"
                if lo < 1 < hi:
                    detail += ", i.e. within run-to-run noise"
                verdicts.append((f"archtune faster than {by_key[key]['tool']}", med < 1, detail))
    print(f"Targets ({m} time):")
    for text, ok, detail in verdicts:
        print(f"- {'PASS' if ok else 'FAIL'}: {text} ({detail})")
    print()
    print(f"Load average before / after: {load_before} / {load_after} ({os.cpu_count()} CPUs).")
    print()
    print("Remaining differences in the work done:")
    for d in DIFFERENCES:
        print(f"- {d}")

    if args.json is not None:
        payload = {
            "benchmark": "fit_overhead",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "dataset": args.dataset, "n_rows": int(len(X)), "n_features": int(X.shape[1]),
            "setup": asdict(setup), "repeats": repeats, "threads": threads, "metric": m,
            "load_average": {"before": load_before, "after": load_after},
            "versions": _versions(),
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count()},
            "results": rows,
            "targets": [{"target": t, "pass": ok, "detail": d} for t, ok, d in verdicts],
            "differences": DIFFERENCES,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("archtune", "torch", "numpy", "scikit-learn", "skorch"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


if __name__ == "__main__":
    sys.exit(main())
