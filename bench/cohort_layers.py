"""Cohort speed-up per layer of the default recipe: which layers stack badly.

One search, run with each variant of the recipe's layers twice, in cohorts and one trial at a
time: ``AutoNeuralClassifier(budget=16, population=True)`` (two cohorts of eight, trained as
one stacked model) against ``population=False``. The search space fixes a 3-hidden-layer ReLU
MLP whose units are searched in 32..128 (``arch="mlp", hidden_layers=3, units=(32, 128),
activation="relu"``), ``max_epochs=6`` (the pruner's fidelity), with ``baselines=False,
ensemble=False, refit=False, min_resources=None``; the rest of the default table space is
searched as usual (learning rate, weight decay, dropout, and the embedding's sizes where it
has one), seeded (``random_state=0``). The variants fix the recipe's layers:

    classic              each layer at its ``archtune.recipes.CLASSIC`` value: no numeric
                         embedding, plain activations, no feature scale, the plateau learning
                         rate and constant dropout and weight decay
    recipe               each layer at today's ``NeuralClassifier`` default: piecewise-linear
                         numeric embeddings, parametric activations, the feature scale, the
                         coslog learning rate and flat_cos dropout and weight decay
    recipe-<layer>       the recipe with that one layer set back to its classic value

The layers (``LAYERS``): ``embedding`` (numeric_embedding), ``parametric`` (parametric_activation),
``feature_scale``, ``schedules`` (lr_schedule, dropout_schedule and weight_decay_schedule together),
and, to split the last, ``lr_schedule`` alone and ``reg_schedules`` (dropout and weight decay).

Data: MAGIC (``$ARCHTUNE_DATASETS/magic.tsv.gz``, default /work/shared/datasets/tabular; column
``target``), all 19020 rows, 10 numeric columns; the search splits its own validation rows.
Every search runs in its own subprocess (a fresh interpreter, as in bench/search_throughput.py),
one after another, the two modes of a variant next to each other so that a change in the
machine's load hits them alike. Threads: archtune's own rule (nothing is set here).

The figures: the wall seconds of each ``fit`` (the whole search: data preparation, every trial,
pruned ones included), and per variant the speed-up, one-at-a-time seconds / cohort seconds.
A layer stacks badly when the recipe's speed-up rises once that layer is taken out ("recipe -
X" above "recipe"). The finished trials (complete + pruned) are printed beside each time: a
search whose pruner stopped more trials early is shorter, so compare speed-ups, whose two runs
train the same configurations (the sampler is seeded, and the pruner sees nearly the same
scores). On a shared machine the figures move with the neighbours' load; the load average is
printed before and after, and ``--repeats`` takes the median of several rounds.

Reproduce (from the repository root)::

    .venv/bin/python bench/cohort_layers.py                       # 8 variants x 2 modes, ~8 min on 2 cores
    .venv/bin/python bench/cohort_layers.py --variants classic,recipe,recipe-parametric
    .venv/bin/python bench/cohort_layers.py --checkout /tmp/before   # another checkout's archtune
    .venv/bin/python bench/cohort_layers.py --quick               # 8 trials x 3 epochs, 3 variants: smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("ARCHTUNE_DATASETS", "/work/shared/datasets/tabular"))

# The search every variant runs (space overrides; max_epochs is the pruner's fidelity).
BASE_SPACE: dict[str, Any] = {"arch": "mlp", "hidden_layers": 3, "units": (32, 128), "activation": "relu",
                              "max_epochs": 6}
# The recipe's layers: each layer's estimator parameters (their values: CLASSIC's or today's defaults).
LAYERS: dict[str, tuple[str, ...]] = {
    "embedding": ("numeric_embedding",),
    "parametric": ("parametric_activation",),
    "feature_scale": ("feature_scale",),
    "schedules": ("lr_schedule", "dropout_schedule", "weight_decay_schedule"),
    "lr_schedule": ("lr_schedule",),
    "reg_schedules": ("dropout_schedule", "weight_decay_schedule"),
}
DEFAULT_VARIANTS = ("classic", "recipe", *(f"recipe-{layer}" for layer in LAYERS))
QUICK_VARIANTS = ("classic", "recipe", "recipe-embedding")
MODES = {"cohorts": True, "one at a time": False}  # label -> population


def layer_values(variant: str) -> dict[str, Any]:
    """The fixed values of the recipe's layers in ``variant`` ("classic", "recipe" or "recipe-<layer>")."""
    from archtune import NeuralClassifier
    from archtune.recipes import CLASSIC

    names = sorted({n for params in LAYERS.values() for n in params})
    recipe = {n: NeuralClassifier().get_params()[n] for n in names}
    if variant == "classic":
        return {n: CLASSIC[n] for n in names}
    if variant == "recipe":
        return recipe
    layer = variant.removeprefix("recipe-")
    if layer == variant or layer not in LAYERS:
        raise ValueError(f"unknown variant {variant!r}: 'classic', 'recipe' or 'recipe-<layer>', layer in "
                         f"{sorted(LAYERS)}")
    return {**recipe, **{n: CLASSIC[n] for n in LAYERS[layer]}}


def label(variant: str) -> str:
    return variant.replace("recipe-", "recipe - ", 1)


# --------------------------------------------------------------------------- one search (in this process)


def load_magic(rows: int | None, seed: int) -> tuple[Any, Any]:
    """MAGIC's features (float64 frame) and integer labels; ``rows``: a seeded subsample."""
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(DATA_DIR / "magic.tsv.gz", sep="\t")
    y = np.unique(frame.pop("target").to_numpy(), return_inverse=True)[1]
    X = frame.astype("float64")
    if rows is not None and rows < len(X):
        idx = np.sort(np.random.default_rng(seed).permutation(len(X))[:rows])
        X, y = X.iloc[idx].reset_index(drop=True), y[idx]
    return X, y


def search(variant: str, population: bool, budget: int, max_epochs: int, rows: int | None,
           seed: int = 0) -> dict[str, Any]:
    """Run the variant's search with the archtune importable now; its record.

    Returns
    -------
    dict
        ``variant``, ``population``, ``seconds`` (wall seconds of ``fit``), ``complete``,
        ``pruned``, ``failed``, ``epochs`` (all epochs trained, pruned trials' included),
        ``stacked`` (trials trained in a cohort of two or more), ``largest_cohort``, ``space``
        and ``archtune`` (the imported package's folder).
    """
    import archtune
    from archtune.auto import AutoNeuralClassifier
    from optuna.trial import TrialState

    X, y = load_magic(rows, seed)
    space = {**BASE_SPACE, "max_epochs": max_epochs, **layer_values(variant)}
    model = AutoNeuralClassifier(budget=budget, space=space, population=population, baselines=False, ensemble=False,
                                 refit=False, min_resources=None, random_state=seed, verbose=0)
    clock = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - clock
    trials = model.study_.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    epochs = sum(int(t.user_attrs.get("epochs_run") or 0) if t.state == TrialState.COMPLETE
                 else len(t.intermediate_values) for t in finished)
    cohorts = [int(t.user_attrs.get("cohort") or 1) for t in finished]
    return {"variant": variant, "population": population, "seconds": seconds,
            "complete": sum(t.state == TrialState.COMPLETE for t in trials),
            "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials), "epochs": epochs,
            "stacked": sum(c > 1 for c in cohorts), "largest_cohort": max(cohorts, default=0),
            "space": {k: repr(v) for k, v in space.items()}, "archtune": str(Path(archtune.__file__).parent)}


# --------------------------------------------------------------------------- the bench (subprocesses)


def run_search(checkout: Path, variant: str, population: bool, budget: int, max_epochs: int, rows: int | None,
               seed: int) -> dict[str, Any]:
    """:func:`search` in a fresh subprocess with ``checkout`` first on ``sys.path``; its record."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(checkout), variant, str(int(population)),
           str(budget), str(max_epochs), str(rows or 0), str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"search {variant} (population={population}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _worker(checkout: str, variant: str, population: str, budget: str, max_epochs: str, rows: str,
            seed: str) -> dict[str, Any]:
    sys.path.insert(0, checkout)
    import archtune

    where = Path(archtune.__file__).resolve().parent
    if where != (Path(checkout) / "archtune").resolve():
        raise RuntimeError(f"--checkout {checkout}: imported archtune from {where}")
    return search(variant, bool(int(population)), int(budget), int(max_epochs), int(rows) or None, int(seed))


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def markdown(results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    """One line per variant: median seconds (and finished trials) per mode, and the speed-up."""
    lines = ["| variant | cohorts: s (finished, stacked) | one at a time: s (finished) | speed-up |",
             "|---|---:|---:|---:|"]
    for variant, runs in results.items():
        c, s = runs["cohorts"], runs["one at a time"]
        cs, ss = statistics.median(r["seconds"] for r in c), statistics.median(r["seconds"] for r in s)
        lines.append(f"| {label(variant)} | {cs:.1f} ({c[0]['complete'] + c[0]['pruned']}, {c[0]['stacked']}) | "
                     f"{ss:.1f} ({s[0]['complete'] + s[0]['pruned']}) | {ss / cs:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help="comma-separated: classic, recipe, recipe-<layer> (layers: " + ", ".join(LAYERS) + ")")
    parser.add_argument("--budget", type=int, default=16, help="trials per search")
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--rows", type=int, default=None, help="a seeded subsample of MAGIC's rows (default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds; the table shows the median seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="repository root whose archtune is measured")
    parser.add_argument("--quick", action="store_true", help="8 trials of 3 epochs, " + ", ".join(QUICK_VARIANTS))
    parser.add_argument("--json", type=Path, help="write the records here")
    parser.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return {}
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.quick:
        variants, args.budget, args.max_epochs = list(QUICK_VARIANTS), 8, 3
    for v in variants:
        if v not in ("classic", "recipe") and v.removeprefix("recipe-") not in LAYERS:
            parser.error(f"unknown variant {v!r}")
    import torch

    print(f"{dt.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cpus, torch {torch.__version__}; archtune from "
          f"{args.checkout}; load average {_loadavg()}; {len(variants)} variants x 2 modes x {args.repeats}; "
          f"budget {args.budget} trials, {args.max_epochs} epochs, rows {args.rows or 'all'}", flush=True)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {v: {m: [] for m in MODES} for v in variants}
    for _ in range(args.repeats):
        for v in variants:
            for mode, population in MODES.items():
                r = run_search(args.checkout, v, population, args.budget, args.max_epochs, args.rows, args.seed)
                results[v][mode].append(r)
                print(f"  {label(v):24s} {mode:13s} {r['seconds']:6.1f} s, {r['complete']} complete, "
                      f"{r['pruned']} pruned, {r['failed']} failed, {r['epochs']} epochs, {r['stacked']} stacked "
                      f"(largest cohort {r['largest_cohort']}); load {_loadavg()}", flush=True)
    print(f"load average after: {_loadavg()}\n")
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps({"budget": args.budget, "max_epochs": args.max_epochs, "rows": args.rows,
                                         "seed": args.seed, "checkout": str(args.checkout), "results": results},
                                        indent=2))
    return results


if __name__ == "__main__":
    main()
