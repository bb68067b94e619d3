"""Search throughput: trials per minute of archtune's default search, in cohorts and one at a time.

On each table, archtune's default search (``AutoNeuralClassifier`` / ``AutoNeuralRegressor``:
its default space, sampler, Hyperband pruning) runs for the same wall-clock budget
(``--budget`` seconds) twice:

    cohorts        ``population=True`` (the default): cohorts sized by the budget (2 under
                   90 s, 4 under 4 minutes, 8 beyond), trained as one stacked model
    one at a time  ``population=False``

and, with ``--checkout PATH``, the same two again with the archtune of another checkout (a
``git worktree`` or ``git archive`` of an older commit) first on ``sys.path``, so that one run
prints before and after. Every search runs in its own subprocess (a fresh interpreter: no
warm caches or imports carried from one to the next), one after another, the four of a table
next to each other, so that a change in the machine's load hits them alike.

The unit is finished trials (complete + pruned; failed ones are counted apart) per minute of
search, the search being the time from the start of ``fit`` to the end of its last trial (as
in bench/search_quality.py). ``baselines=False, ensemble=False, refit=False``, as in
bench/workers.py: the budget goes to trials and nothing else, and no time is reserved for a
refit. Epochs per minute (all epochs the trials trained, pruned ones included) are reported
beside it: pruning makes trials shorter or longer, and a faster search also prunes
differently. "stacked" is the share of the cohort search's trials that trained in a cohort of
two or more: its first trials (the recipes) train alone, and a short search on a large table
may hold nothing else. The ratios printed are cohorts / one at a time (per checkout) and this
checkout / the other (per mode).

Data: bench/search_quality.py's loader and tables (``$ARCHTUNE_DATASETS``, default
/work/shared/datasets/tabular): tables above ``--rows`` (default 20000) are subsampled, seeded;
the search fits the same seeded 80% of the rows in every run. Threads: archtune's own rule
(nothing is set here). On a shared machine the figures move with the neighbours' load; the
load average is printed before and after.

Reproduce (from the repository root)::

    git archive 5c6feda | (mkdir -p /tmp/before && tar -x -C /tmp/before)   # or: git worktree add /tmp/before 5c6feda
    .venv/bin/python bench/search_throughput.py --checkout /tmp/before --tables magic,cpu_act --budget 60  # ~9 min
    .venv/bin/python bench/search_throughput.py --checkout /tmp/before --tables magic,cpu_act --budget 60 --rows 5000
    .venv/bin/python bench/search_throughput.py --checkout /tmp/before --json st.json  # 4 tables x 4 x 100 s, ~30 min
    .venv/bin/python bench/search_throughput.py --quick         # magic, 20 s budgets, this checkout only: smoke run
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
BENCH = Path(__file__).resolve().parent

DEFAULT_TABLES = ("magic", "adult", "house", "cpu_act")  # bench/search_quality.py's population=False tables
QUICK_TABLE, QUICK_BUDGET = "magic", 20.0
MODES = {"cohorts": True, "one at a time": False}  # label -> population


# --------------------------------------------------------------------------- one search (in this process)


def study_record(study: Any, started: dt.datetime) -> dict[str, Any]:
    """Counts and rates of a finished search read from its study.

    Parameters
    ----------
    study : optuna.Study
        The search's study (``model.study_``).
    started : datetime.datetime
        Local time at the start of ``fit`` (Optuna stamps trials in local time).

    Returns
    -------
    dict
        ``complete``, ``pruned``, ``failed``, ``finished`` (complete + pruned), ``seconds`` (start
        of ``fit`` to the end of the last trial), ``minutes``, ``trials_per_minute`` (finished
        / minutes), ``epochs``, ``epochs_per_minute``, ``stacked_share`` (share of finished
        trials trained in a cohort of two or more) and ``largest_cohort``.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    seconds = max(((max(ends) - started).total_seconds() if ends else 0.0), 1e-9)
    epochs = 0
    for t in finished:
        # A complete trial records its epochs; a pruned one reported one value per epoch it trained.
        epochs += int(t.user_attrs.get("epochs_run") or 0) if t.state == TrialState.COMPLETE \
            else len(t.intermediate_values)
    cohorts = [int(t.user_attrs.get("cohort") or 1) for t in finished]
    minutes = seconds / 60.0
    return {
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "finished": len(finished),
        "seconds": seconds,
        "minutes": minutes,
        "trials_per_minute": len(finished) / minutes,
        "epochs": epochs,
        "epochs_per_minute": epochs / minutes,
        "stacked_share": (sum(c > 1 for c in cohorts) / len(cohorts)) if cohorts else 0.0,
        "largest_cohort": max(cohorts, default=0),
    }


def search(table: str, population: bool, budget: float, rows: int, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """Run archtune's default search on one table with the archtune importable now.

    Parameters
    ----------
    table : str
        A name of bench/search_quality.py's ``DATASETS`` ("magic", "cpu_act", ...).
    population : bool
        ``population`` of the search: True for cohorts (the default), False for one trial at a time.
    budget : float
        Seconds of search (rounded to whole seconds, as ``budget="<B>s"``).
    rows : int
        Tables above this many rows are subsampled (seeded) before the 80/20 split; the search
        fits the 80%, of shape (0.8 * min(rows, table rows), n_features).
    seed : int
        Seed of the subsample, the split and the search.

    Returns
    -------
    model : AutoNeuralClassifier or AutoNeuralRegressor
        The fitted search (``model.study_`` holds its trials).
    record : dict
        :func:`study_record` of its study, with ``table``, ``population``, ``budget``,
        ``rows`` (of shape of the fitted X), ``fit_seconds`` and ``archtune`` (the imported
        package's folder).
    """
    sys.path.insert(1, str(BENCH))  # after the checkout under test, which the worker put first
    from search_quality import load_dataset

    import archtune
    from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor

    data = load_dataset(table, rows, seed)
    cls = AutoNeuralClassifier if data.task == "classification" else AutoNeuralRegressor
    model = cls(budget=f"{max(1, int(round(budget)))}s", population=population, baselines=False, ensemble=False,
                refit=False, random_state=seed, verbose=0)
    started = dt.datetime.now()
    clock = time.perf_counter()
    model.fit(data.X_train, data.y_train)
    record = {"table": table, "population": population, "budget": budget, "rows": list(data.X_train.shape),
              "fit_seconds": time.perf_counter() - clock, "archtune": str(Path(archtune.__file__).parent),
              **study_record(model.study_, started)}
    return model, record


def _worker(checkout: str, table: str, population: bool, budget: float, rows: int, seed: int) -> dict[str, Any]:
    """One search in this (fresh) process, with ``checkout``'s archtune imported."""
    sys.path.insert(0, checkout)
    import archtune

    where = Path(archtune.__file__).resolve().parent
    if where != (Path(checkout) / "archtune").resolve():
        raise RuntimeError(f"--checkout {checkout}: imported archtune from {where}, not from the checkout "
                           "(is archtune already imported, or the checkout missing archtune/?)")
    return search(table, population, budget, rows, seed)[1]


# --------------------------------------------------------------------------- the bench (subprocesses)


def run_search(checkout: Path, table: str, population: bool, budget: float, rows: int, seed: int = 0) -> dict:
    """:func:`search` in a fresh subprocess with ``checkout`` first on ``sys.path``; its record."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(checkout), table, str(int(population)),
           str(budget), str(rows), str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"search on {table} (population={population}, checkout {checkout}) failed:\n"
                           f"{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_bench(tables: list[str], budget: float, checkouts: dict[str, Path], rows: int, seed: int = 0,
              progress: bool = True) -> list[dict[str, Any]]:
    """Every table x checkout x mode, one subprocess each.

    Parameters
    ----------
    tables : list of str
    budget : float
        Seconds per search.
    checkouts : dict
        Label ("after", "before") -> repository root whose ``archtune`` the searches import.
    rows : int
        Subsample tables above this many rows.

    Returns
    -------
    list of dict
        One row per (table, checkout): ``table``, ``checkout``, ``path``, ``runs`` (mode label ->
        the search's record) and ``ratio`` (cohorts / one at a time, trials per minute).
    """
    rows_out = []
    for table in tables:
        for label, path in checkouts.items():
            runs = {}
            for mode, population in MODES.items():
                runs[mode] = run_search(path, table, population, budget, rows, seed)
                if progress:
                    r = runs[mode]
                    print(f"  {table:10s} {label:6s} {mode:13s} {r['finished']:4d} finished ({r['pruned']} pruned, "
                          f"{r['failed']} failed) in {r['seconds']:6.1f} s: {r['trials_per_minute']:6.1f} trials/min, "
                          f"{r['epochs_per_minute']:7.1f} epochs/min, {r['stacked_share']:.0%} stacked", flush=True)
            one = runs["one at a time"]["trials_per_minute"]
            rows_out.append({"table": table, "checkout": label, "path": str(path), "runs": runs,
                             "ratio": runs["cohorts"]["trials_per_minute"] / one if one else None})
    return rows_out


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def markdown(results: list[dict[str, Any]]) -> str:
    """The results as markdown: one line per table and checkout, then after / before per table
    when there are two checkouts."""
    lines = ["| table | archtune | cohorts: finished (pruned) | stacked | trials/min | epochs/min | one at a time: "
             "finished (pruned) | trials/min | epochs/min | cohorts / one at a time |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results:
        c, s = row["runs"]["cohorts"], row["runs"]["one at a time"]
        # "stacked": the share of the cohort search's trials that trained in a cohort of 2 or more
        # (the first trials, the recipes, train alone; a short search may hold nothing else).
        lines.append(f"| {row['table']} | {row['checkout']} | {c['finished']} ({c['pruned']}) | "
                     f"{c['stacked_share']:.0%} | "
                     f"{_fmt(c['trials_per_minute'])} | {_fmt(c['epochs_per_minute'], 0)} | {s['finished']} "
                     f"({s['pruned']}) | {_fmt(s['trials_per_minute'])} | {_fmt(s['epochs_per_minute'], 0)} | "
                     f"{_fmt(row['ratio'], 2, 'x')} |")
    labels = list(dict.fromkeys(r["checkout"] for r in results))
    if len(labels) == 2:
        new, old = labels
        lines += ["", f"| table | cohorts {new} / {old} | one at a time {new} / {old} | cohorts {new} / one at a "
                      f"time {old} |", "|---|---:|---:|---:|"]
        for table in dict.fromkeys(r["table"] for r in results):
            by = {r["checkout"]: r["runs"] for r in results if r["table"] == table}

            def rate(label: str, mode: str) -> float:
                return by[label][mode]["trials_per_minute"]

            ratios = [rate(new, "cohorts") / rate(old, "cohorts"),
                      rate(new, "one at a time") / rate(old, "one at a time"),
                      rate(new, "cohorts") / rate(old, "one at a time")]
            lines.append(f"| {table} | " + " | ".join(_fmt(x, 2, "x") for x in ratios) + " |")
    return "\n".join(lines)


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _commit(path: Path) -> str:
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "not a git checkout"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default=",".join(DEFAULT_TABLES),
                        help="comma-separated names from bench/search_quality.py's DATASETS")
    parser.add_argument("--budget", type=float, default=100.0, help="seconds per search")
    parser.add_argument("--rows", type=int, default=20000, help="subsample tables above this many rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkout", type=Path,
                        help="another checkout's root (e.g. `git worktree add /tmp/before 5c6feda`): its archtune "
                             "is measured too, as 'before'")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TABLE} only, {QUICK_BUDGET:.0f} s budgets")
    parser.add_argument("--json", type=Path, help="write the records here")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        checkout, table, population, budget, rows, seed = args.worker
        print(json.dumps(_worker(checkout, table, bool(int(population)), float(budget), int(rows), int(seed))))
        return []
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    if args.quick:
        tables, args.budget = [QUICK_TABLE], min(args.budget, QUICK_BUDGET)
    if args.budget <= 0:
        parser.error(f"--budget must be a positive number of seconds; got {args.budget}")
    sys.path.insert(0, str(BENCH))
    from search_quality import DATASETS

    unknown = [t for t in tables if t not in DATASETS]
    if unknown:
        parser.error(f"--tables: unknown {unknown}; choose from {sorted(DATASETS)}")
    checkouts = {"after": ROOT}
    if args.checkout is not None:
        if not (args.checkout / "archtune" / "__init__.py").is_file():
            parser.error(f"--checkout {args.checkout}: no archtune/__init__.py there (give a repository root)")
        checkouts["before"] = args.checkout.resolve()
    import torch

    print(f"{dt.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cpus, torch {torch.__version__}; load average "
          f"{_loadavg()}; {len(tables)} tables x {len(checkouts)} checkouts x 2 modes x {args.budget:.0f} s; "
          + ", ".join(f"{k}: {p} ({_commit(p)})" for k, p in checkouts.items()), flush=True)
    results = run_bench(tables, args.budget, checkouts, args.rows, args.seed)
    print(f"load average after: {_loadavg()}\n")
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps({"budget": args.budget, "rows": args.rows, "seed": args.seed,
                                         "checkouts": {k: {"path": str(p), "commit": _commit(p)}
                                                       for k, p in checkouts.items()},
                                         "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
