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
``target``), all 19020 rows (``--rows`` for a seeded subsample), 10 numeric columns; the search
splits its own validation rows. Every search runs in its own subprocess (a fresh interpreter, as
in bench/search_throughput.py), one after another, the two modes of a variant (and, with
``--checkout``, the other checkout's two) next to each other, so that a change in the machine's
load hits them alike. Threads: archtune's own rule, or ``--threads N`` (OMP_NUM_THREADS of every
search: on a busy machine one thread keeps the neighbours out of the comparison).

The figures, per search: the wall and CPU seconds of ``fit`` (the whole search: data
preparation, every trial, pruned ones included) and the member-epochs its trials trained; per
variant, the speed-up one at a time / cohorts in wall seconds, in CPU seconds, and in wall
seconds per member-epoch. The last is the fairest: the two modes' trials see nearly the same
scores, but not the same (a stack's arithmetic differs from a network's by rounding, and the
recipes' trials are often close), so the pruner may stop a trial an epoch earlier in one mode
than in the other. A layer stacks badly when the speed-up rises once that layer is taken out
("recipe - X" above "recipe"). On a shared machine the figures move with the neighbours'
load (on the project's 2-vCPU VM beside other jobs, the same search's CPU seconds moved by
+-30% from run to run); the load average is printed before and after, and ``--repeats`` runs
several rounds, round-robin, of which the fastest counts (a neighbour only ever slows a run).

Two controlled measurements take the search's own choices out (cohorts train their leaders'
structure, one at a time draws every trial's, and the pruner empties a cohort at its own pace):
``--fixed-structure --pruner none`` (units 96 and the embedding's default sizes for every trial,
every trial trains all its epochs), and ``--steps``, no search at all: a stack's training step
(batch 256) and validation pass for K = 1, 2, 4, 8 members of that structure, one thread, CPU
time, per variant; K=1 is what ``population=False`` trains, and the speed-up at K=8 is 8 x
K=1's time / K=8's. Processes alternate between the checkouts, the fastest round counts.

Reproduce (from the repository root)::

    .venv/bin/python bench/cohort_layers.py                       # 8 variants x 2 modes, ~5 min on 2 cores
    .venv/bin/python bench/cohort_layers.py --variants classic,recipe,recipe-embedding --repeats 3
    git archive <commit> archtune | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    .venv/bin/python bench/cohort_layers.py --checkout /tmp/before --threads 1 --repeats 2   # before/after, ~14 min
    .venv/bin/python bench/cohort_layers.py --checkout /tmp/before --threads 1 --pruner none --fixed-structure
    .venv/bin/python bench/cohort_layers.py --steps --checkout /tmp/before --repeats 5 --variants \
        classic,recipe,recipe-embedding,recipe-parametric,recipe-feature_scale,recipe-schedules   # ~2 min
    .venv/bin/python bench/cohort_layers.py --quick               # 8 trials x 3 epochs, 3 variants: smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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
# --fixed-structure: one network size for every trial (the embedding's sizes at the recipe's
# defaults); without it the sampler draws each trial's, and one at a time draws 16 sizes where
# cohorts train two (a follower shares its leader's).
FIXED_STRUCTURE: dict[str, Any] = {"units": 96, "n_bins": 48, "d_embedding": 16}
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
           seed: int = 0, pruner: str | None = "hyperband", fixed: bool = False) -> dict[str, Any]:
    """Run the variant's search with the archtune importable now; its record. ``pruner``: the
    search's (None: every trial trains ``max_epochs``, and a cohort stays whole). ``fixed``:
    the structure too (`FIXED_STRUCTURE`), so that both modes train networks of one size.

    Returns
    -------
    dict
        ``variant``, ``population``, ``seconds`` (wall seconds of ``fit``), ``cpu_seconds`` (the
        process's CPU seconds in ``fit``, every thread's), ``complete``,
        ``pruned``, ``failed``, ``epochs`` (all epochs trained, pruned trials' included),
        ``stacked`` (trials trained in a cohort of two or more), ``largest_cohort``, ``space``
        and ``archtune`` (the imported package's folder).
    """
    import archtune
    from archtune.auto import AutoNeuralClassifier
    from optuna.trial import TrialState

    X, y = load_magic(rows, seed)
    space = {**BASE_SPACE, "max_epochs": max_epochs, **(FIXED_STRUCTURE if fixed else {}), **layer_values(variant)}
    model = AutoNeuralClassifier(budget=budget, space=space, population=population, pruner=pruner, baselines=False,
                                 ensemble=False, refit=False, min_resources=None, random_state=seed, verbose=0)
    clock, cpu = time.perf_counter(), time.process_time()
    model.fit(X, y)
    seconds, cpu = time.perf_counter() - clock, time.process_time() - cpu
    trials = model.study_.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    epochs = sum(int(t.user_attrs.get("epochs_run") or 0) if t.state == TrialState.COMPLETE
                 else len(t.intermediate_values) for t in finished)
    cohorts = [int(t.user_attrs.get("cohort") or 1) for t in finished]
    return {"variant": variant, "population": population, "seconds": seconds, "cpu_seconds": cpu,
            "complete": sum(t.state == TrialState.COMPLETE for t in trials),
            "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials), "epochs": epochs,
            "stacked": sum(c > 1 for c in cohorts), "largest_cohort": max(cohorts, default=0),
            "space": {k: repr(v) for k, v in space.items()}, "archtune": str(Path(archtune.__file__).parent)}


# --------------------------------------------------------------------------- --steps (in this process)


def step_times(variants: list[str], ks: list[int], structure: dict[str, Any], rounds: int,
               seed: int = 0) -> dict[str, dict[str, dict[int, float]]]:
    """CPU seconds of one training step (batch 256) and of one validation pass of a stack of K
    members (`StackedEngine`, what a cohort trains; K=1 is what ``population=False`` trains), per
    variant and K: the fastest of ``rounds`` rounds of 20 steps and 3 passes, round-robin over
    the stacks, on one thread. Members differ in learning rate, weight decay and dropout, not in
    ``structure`` (units, n_bins, d_embedding)."""
    import numpy as np
    import torch

    from archtune import NeuralClassifier
    from archtune.fitting import prepare
    from archtune.train.engines import StackedEngine
    from archtune.train.memory import keep_freed_memory

    torch.set_num_threads(1)
    keep_freed_memory()  # as a training run does (archtune.train.core)
    X, y = load_magic(None, seed)
    stacks = {}
    for variant in variants:
        for k in ks:
            rng = np.random.default_rng(seed)
            ests = [NeuralClassifier(arch="mlp", hidden_layers=3, activation="relu", random_state=seed, **structure,
                                     **layer_values(variant), dropout=float(rng.uniform(0.05, 0.5)),
                                     learning_rate=float(10 ** rng.uniform(-3.5, -2)),
                                     weight_decay=float(10 ** rng.uniform(-5, -1))) for _ in range(k)]
            prepared = prepare(ests[0], X, y)
            members = [prepared.for_estimator(e) for e in ests]
            engine = StackedEngine([m.build_network() for m in members], [m.train_config for m in members],
                                   prepared.task.member_loss_fn(prepared.device), prepared.task.member_metric_fn(),
                                   prepared.device)
            engine.begin()
            stacks[(variant, k)] = (engine, prepared)
    best: dict[tuple[str, int, str], float] = {}
    order = torch.Generator().manual_seed(seed)
    for _ in range(rounds):
        for (variant, k), (engine, p) in stacks.items():
            rows = torch.randperm(len(p.X_train), generator=order)[:256 * 21]
            engine.train_mode(True)
            engine.step(p.X_train[rows[:256]], p.y_train[rows[:256]], [1e-3] * k)  # warm
            clock = time.process_time()
            for i in range(1, 21):
                batch = rows[256 * i:256 * (i + 1)]
                engine.step(p.X_train[batch], p.y_train[batch], [1e-3] * k)
            step = (time.process_time() - clock) / 20
            clock = time.process_time()
            for _ in range(3):
                engine.evaluate(p.X_val, p.y_val)
            evaluate = (time.process_time() - clock) / 3
            for key, value in (("step", step), ("evaluate", evaluate)):
                best[(variant, k, key)] = min(best.get((variant, k, key), float("inf")), value)
    return {v: {key: {k: best[(v, k, key)] for k in ks} for key in ("step", "evaluate")} for v in variants}


def steps_markdown(results: dict[str, dict[str, dict[str, dict[int, float]]]], ks: list[int]) -> str:
    """Milliseconds per step and per validation pass of a K-member stack, and the speed-up
    K x (K=1's time) / (the stack's time)."""
    top = max(ks)
    lines = ["| variant | archtune | " + " | ".join(f"step K={k} ms" for k in ks) + f" | step speed-up K={top} | "
             + " | ".join(f"validation K={k} ms" for k in ks) + f" | validation speed-up K={top} |",
             "|---|---|" + "---:|" * (2 * len(ks) + 2)]
    variants = list(next(iter(results.values())))
    for variant in variants:
        for checkout, by_variant in results.items():
            cells = []
            for key in ("step", "evaluate"):
                t = by_variant[variant][key]
                cells += [f"{1e3 * t[k]:.2f}" for k in ks] + [f"{top * t[min(ks)] / t[top]:.2f}x"]
            lines.append(f"| {label(variant)} | {checkout} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the bench (subprocesses)


def run_search(checkout: Path, variant: str, population: bool, budget: int, max_epochs: int, rows: int | None,
               seed: int, threads: int | None = None, pruner: str | None = "hyperband",
               fixed: bool = False) -> dict[str, Any]:
    """:func:`search` in a fresh subprocess with ``checkout`` first on ``sys.path``; its record.
    ``threads``: OMP_NUM_THREADS of the subprocess (archtune then keeps it); None: archtune's rule."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(checkout), variant, str(int(population)),
           str(budget), str(max_epochs), str(rows or 0), str(seed), str(pruner), str(int(fixed))]
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"search {variant} (population={population}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _worker(checkout: str, variant: str, population: str, budget: str, max_epochs: str, rows: str,
            seed: str, pruner: str, fixed: str) -> dict[str, Any]:
    sys.path.insert(0, checkout)
    import archtune

    where = Path(archtune.__file__).resolve().parent
    if where != (Path(checkout) / "archtune").resolve():
        raise RuntimeError(f"--checkout {checkout}: imported archtune from {where}")
    return search(variant, bool(int(population)), int(budget), int(max_epochs), int(rows) or None, int(seed),
                  None if pruner == "None" else pruner, bool(int(fixed)))


def run_steps(checkout: Path, variants: list[str], ks: list[int], rounds: int, seed: int) -> dict:
    """:func:`step_times` in a fresh subprocess with ``checkout``'s archtune first on ``sys.path``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step-worker", str(checkout), ",".join(variants),
           ",".join(map(str, ks)), str(rounds), str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if out.returncode != 0:
        raise RuntimeError(f"--steps with {checkout} failed:\n{out.stderr[-3000:]}")
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    return {v: {key: {int(k): t for k, t in by_k.items()} for key, by_k in by_key.items()} for v, by_key in raw.items()}


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _best(runs: list[dict[str, Any]], key: str) -> float:
    """The fastest round's figure (the trials, and so the epochs, are the same in every round)."""
    return min(r[key] for r in runs)


def speedups(runs: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """One at a time / cohorts: in wall seconds, CPU seconds and wall seconds per member-epoch
    (the fastest rounds)."""
    c, s = runs["cohorts"], runs["one at a time"]

    def per_epoch(rs: list[dict[str, Any]]) -> float:
        return _best(rs, "seconds") / _best(rs, "epochs")

    return {"wall": _best(s, "seconds") / _best(c, "seconds"),
            "cpu": _best(s, "cpu_seconds") / _best(c, "cpu_seconds"), "per_epoch": per_epoch(s) / per_epoch(c)}


def markdown(results: dict[str, dict[str, dict[str, list[dict[str, Any]]]]]) -> str:
    """One line per variant and checkout: the fastest round's wall and CPU seconds and member-epochs per mode,
    and the speed-ups; with two checkouts, a second table of the speed-ups side by side."""
    lines = ["| variant | archtune | cohorts: wall s | CPU s | epochs | one at a time: wall s | CPU s | epochs | "
             "speed-up (wall) | (CPU) | (per epoch) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for variant, by_checkout in results.items():
        for checkout, runs in by_checkout.items():
            c, s, x = runs["cohorts"], runs["one at a time"], speedups(runs)
            cells = [f"{_best(rs, key):.{digits}f}" for rs in (c, s)
                     for key, digits in (("seconds", 1), ("cpu_seconds", 1), ("epochs", 0))]
            lines.append(f"| {label(variant)} | {checkout} | " + " | ".join(cells) + f" | {x['wall']:.2f}x | "
                         f"{x['cpu']:.2f}x | {x['per_epoch']:.2f}x |")
    checkouts = list(next(iter(results.values())))
    if len(checkouts) == 2:
        new, old = checkouts
        lines += ["", f"| variant | speed-up {old} (wall) | {new} (wall) | {old} (per epoch) | {new} (per epoch) |",
                  "|---|---:|---:|---:|---:|"]
        for variant, by_checkout in results.items():
            a, b = speedups(by_checkout[old]), speedups(by_checkout[new])
            lines.append(f"| {label(variant)} | {a['wall']:.2f}x | {b['wall']:.2f}x | {a['per_epoch']:.2f}x | "
                         f"{b['per_epoch']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help="comma-separated: classic, recipe, recipe-<layer> (layers: " + ", ".join(LAYERS) + ")")
    parser.add_argument("--budget", type=int, default=16, help="trials per search")
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--rows", type=int, default=None, help="a seeded subsample of MAGIC's rows (default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds; the tables show the fastest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="repository root whose archtune is measured (default: this one), as 'after'")
    parser.add_argument("--checkout", type=Path,
                        help="another checkout's root (git archive or git worktree of an older commit), as 'before'")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS of every search (default: unset, archtune's own rule)")
    parser.add_argument("--quick", action="store_true", help="8 trials of 3 epochs, " + ", ".join(QUICK_VARIANTS))
    parser.add_argument("--json", type=Path, help="write the records here")
    parser.add_argument("--pruner", default="hyperband", choices=["hyperband", "sha", "median", "none"],
                        help="the search's pruner (none: every trial trains all its epochs, cohorts stay whole)")
    parser.add_argument("--fixed-structure", action="store_true",
                        help="fix units=96 (and the embedding's n_bins and d_embedding at the recipe's defaults)")
    parser.add_argument("--steps", action="store_true",
                        help="instead of searches: a stack's training step and validation pass per variant, K=1, 2, "
                             "4, 8 members of the fixed structure (--fixed-structure's), one thread, CPU time")
    parser.add_argument("--worker", nargs=9, help=argparse.SUPPRESS)
    parser.add_argument("--step-worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return {}
    if args.step_worker:
        checkout, names, ks, rounds, seed = args.step_worker
        sys.path.insert(0, checkout)
        import archtune

        if Path(archtune.__file__).resolve().parent != (Path(checkout) / "archtune").resolve():
            raise RuntimeError(f"--checkout {checkout}: imported archtune from {archtune.__file__}")
        print(json.dumps(step_times(names.split(","), [int(k) for k in ks.split(",")], FIXED_STRUCTURE, int(rounds),
                                    int(seed))))
        return {}
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.quick:
        variants, args.budget, args.max_epochs = list(QUICK_VARIANTS), 8, 3
    pruner = None if args.pruner == "none" else args.pruner
    for v in variants:
        if v not in ("classic", "recipe") and v.removeprefix("recipe-") not in LAYERS:
            parser.error(f"unknown variant {v!r}")
    checkouts = {"after" if args.checkout is not None else "this": args.root.resolve()}
    if args.checkout is not None:
        checkouts["before"] = args.checkout.resolve()
    for name, path in checkouts.items():
        if not (path / "archtune" / "__init__.py").is_file():
            parser.error(f"{name} checkout {path}: no archtune/__init__.py there (give a repository root)")
    import torch

    print(f"{dt.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cpus, torch {torch.__version__}; load average "
          f"{_loadavg()}; {len(variants)} variants x {len(checkouts)} checkouts x 2 modes x {args.repeats}; budget "
          f"{args.budget} trials, {args.max_epochs} epochs, pruner {args.pruner}, structure "
          f"{'fixed' if args.fixed_structure else 'searched'}, rows {args.rows or 'all'}, threads "
          f"{args.threads or 'archtune rule'}; " + ", ".join(f"{k}: {p}" for k, p in checkouts.items()), flush=True)
    if args.steps:
        # Round-robin over the checkouts, a fresh process each round (2 rounds inside), the fastest counts.
        ks, steps = [1, 2, 4, 8], {}
        for _ in range(max(2, args.repeats)):
            for name, path in checkouts.items():
                times = run_steps(path, variants, ks, 2, args.seed)
                old = steps.setdefault(name, times)
                for v, by_key in times.items():
                    for key, by_k in by_key.items():
                        for k, t in by_k.items():
                            old[v][key][k] = min(old[v][key][k], t)
        print(f"load average after: {_loadavg()}\n")
        print(steps_markdown(steps, ks))
        if args.json:
            args.json.write_text(json.dumps({"steps": steps, "structure": FIXED_STRUCTURE,
                                             "checkouts": {k: str(p) for k, p in checkouts.items()}}, indent=2))
        return steps
    results = {v: {c: {m: [] for m in MODES} for c in checkouts} for v in variants}
    for _ in range(args.repeats):
        for v in variants:
            for name, path in checkouts.items():
                for mode, population in MODES.items():
                    r = run_search(path, v, population, args.budget, args.max_epochs, args.rows, args.seed,
                                   args.threads, pruner, args.fixed_structure)
                    results[v][name][mode].append(r)
                    print(f"  {label(v):24s} {name:6s} {mode:13s} {r['seconds']:6.1f} s ({r['cpu_seconds']:.1f} CPU "
                          f"s), {r['complete']} complete, {r['pruned']} pruned, {r['failed']} failed, {r['epochs']} "
                          f"epochs, {r['stacked']} stacked (largest cohort {r['largest_cohort']}); load {_loadavg()}",
                          flush=True)
    print(f"load average after: {_loadavg()}\n")
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps({"budget": args.budget, "max_epochs": args.max_epochs, "rows": args.rows,
                                         "threads": args.threads, "pruner": args.pruner,
                                         "fixed_structure": args.fixed_structure, "seed": args.seed,
                                         "checkouts": {k: str(p) for k, p in checkouts.items()}, "results": results},
                                        indent=2))
    return results


if __name__ == "__main__":
    main()
