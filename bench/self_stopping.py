"""A search that stops itself: ``budget="auto"`` against a fixed time budget (issue 32, item 4).

On each table of bench/search_quality.py (the same seeded 80/20 split, tables above
``--max-rows`` subsampled), archtune's ``AutoNeuralClassifier`` / ``AutoNeuralRegressor``
(``baselines=False``, as search_quality.py runs it) searches twice:

    auto     ``budget="auto"`` (archtune.tune.stopping): stops when the expected improvement
             of more trials is at most the noise of the validation score, within its time cap
             (1 hour; ``--auto auto:10m`` lowers it for a shorter run).
    fixed    ``budget="<--budget>s"`` (default 180 s, the issue's 3 minutes).

Per table and search: the wall time of ``fit`` (everything: trials, ensemble, refit), the
trials finished (complete + pruned), why the auto search stopped (the rule, or the cap), its
validation score and the test score (accuracy, or R^2) on the 20% the search never saw, with
the paired bootstrap interval (90%, 1000 resamples of the test rows) of auto minus fixed.

``--replay`` measures the stopping rule itself, without networks: TPE searches (archtune's
sampler settings: multivariate, grouped, 8 start-up trials) of a noisy synthetic objective
(4 continuous, a log-scaled, an integer and a categorical parameter; Gaussian noise of
standard deviation sigma, the "validation noise"), replayed every 4 trials with each rule.
For each rule: the trial it stops at (160 when it never does) and the true regret of the
trial it would keep (the best observed) against the one kept after all 160 trials, in units
of sigma. ``--regret-bound`` adds Optuna's terminator (``RegretBoundEvaluator``, a Gaussian-
process bound; 0.5-1 s per check on 2 cores).

Reproduce (from the repository root, ``bench`` extra installed)::

    .venv/bin/python bench/self_stopping.py                 # 6 tables, auto (1 h cap) vs 180 s: hours
    .venv/bin/python bench/self_stopping.py --datasets magic,cpu_act --max-rows 5000 \
        --budget 60 --auto auto:8m                          # the reduced run measured below, ~10 min
    .venv/bin/python bench/self_stopping.py --replay --seeds 10      # the rule on synthetic searches, ~2 min
    .venv/bin/python bench/self_stopping.py --replay --seeds 2 --regret-bound   # with Optuna's GP bound

Measured (shared 2-vCPU VM under a load average of 5-7 from other work, torch 2.13.0+cpu,
optuna 5.1.0, 1 thread, seed 0), the reduced run above (5000-row samples, 4000 training rows;
the 1 h cap lowered to 8 minutes, 60 s fixed budgets instead of 180 s)::

    .venv/bin/python bench/self_stopping.py --datasets magic,cpu_act --max-rows 5000 --budget 60 --auto auto:8m

    table    budget   wall   trials (pruned)  stopped by          test    auto - fixed (90% interval)
    magic    auto:8m  112 s  24 (18)          the rule, 24 trials 0.8640  +0.0050 (-0.0040..+0.0150)
             60s       60 s   6 (3)                               0.8590
    cpu_act  auto:8m  155 s  24 (20)          the rule, 24 trials 0.9882  +0.0006 (+0.0002..+0.0011)
             60s       62 s   4 (0)                               0.9876

Both auto searches stopped by the rule well before their cap (noise 0.0123 on magic's 800
validation rows, expected improvement 0.0045), in 1.9-2.5x the fixed budget's time, with the
same test accuracy on magic (inside the noise) and +0.0006 R^2 on cpu_act. The six tables
(5000-row samples) against 180 s, ``--max-rows 5000 --budget 180 --auto auto:10m``: in
bench/README.md. Not measured: the six tables at their full size (hours on this machine).

``--replay --seeds 10`` (30 synthetic searches, sigma 0.002 / 0.005 / 0.01; median stop
trial of 160, mean true regret against the 160-trial search in sigma, runs within 1 sigma):

| rule | stop trial | mean regret (sigma) | within 1 sigma |
|---|---|---|---:|
| observed rise, last half (>= 10 trials) | 33 / 21 / 21 | 2.68 / 1.74 / 1.26 | 12 of 30 |
| observed rise, last half (>= 20 trials) | 101 / 35 / 31 | 0.79 / 1.48 / 1.06 | 16 of 30 |
| tail extrapolation | 41 / 25 / 21 | 1.93 / 1.88 / 1.28 | 11 of 30 |
| archtune: the larger of both | 101 / 35 / 31 | 0.82 / 1.48 / 1.06 | 16 of 30 |

``--replay --seeds 2 --regret-bound``: Optuna's ``RegretBoundEvaluator`` stopped 2 of 6
searches, at trials 113 and 153 of 160, with 3-140 s of checks per search, where archtune's
rule stopped all 6 (median 89 / 67 / 39, mean regret 0.06 / 0.73 / 0.84 sigma) in
microseconds.

The noise (one-off scripts, not kept): the default recipe (``NeuralClassifier`` /
``NeuralRegressor``) fitted with 5 seeds on the same 3200/800 split of 4000 rows: validation
accuracy on magic 0.8638-0.8663 (standard deviation 0.0009) against one fit's bootstrap
standard error 0.0127; cpu_act R^2 standard deviation 0.00015 against 0.0027. Replayed on two
60-trial searches (magic and cpu_act, 4000 training rows, trial budgets, studies kept), the
rule would have stopped both at their 24th trial, 0.0062 and 0.0001 below the best validation
score of all 60 (noise 0.0128, 0.0027).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_quality import DATASETS, DEFAULT_DATASETS, Data, load_dataset, paired_bootstrap, test_scores  # noqa: E402

# --------------------------------------------------------------------------- auto against fixed


def run_search(data: Data, budget: str, seed: int) -> dict[str, Any]:
    """One archtune search on ``data``'s training rows: its wall time, trials, stopping record,
    validation and test scores, and test predictions."""
    import optuna

    from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor

    cls = AutoNeuralClassifier if data.task == "classification" else AutoNeuralRegressor
    model = cls(budget=budget, random_state=seed, baselines=False, verbose=0)
    started = time.perf_counter()
    model.fit(data.X_train, data.y_train)
    wall = time.perf_counter() - started
    trials = model.study_.get_trials(deepcopy=False)
    state = optuna.trial.TrialState
    predictions = np.asarray(model.predict(data.X_test))
    return {"dataset": data.name, "budget": budget, "wall_seconds": round(wall, 1),
            "complete": sum(t.state == state.COMPLETE for t in trials),
            "pruned": sum(t.state == state.PRUNED for t in trials),
            "failed": sum(t.state == state.FAIL for t in trials),
            "stopped": model.study_.user_attrs.get("stopped"), "val_score": float(model.best_score_),
            "test_score": test_scores(data, predictions)[0], "predictions": predictions}


def compare(names: list[str], fixed: float, auto: str, max_rows: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        data = load_dataset(name, max_rows, seed)
        print(f"\n{name}: {data.rows_used} of {data.rows_total} rows, train {len(data.X_train)}, test "
              f"{len(data.X_test)}", file=sys.stderr)
        found = {}
        for label, budget in (("auto", auto), ("fixed", f"{fixed:g}s")):
            result = found[label] = run_search(data, budget, seed)
            stopped = (result["stopped"] or {}).get("text", "")
            print(f"  {label:5s} {budget:>8s}: wall {result['wall_seconds']:.1f} s, trials {result['complete']}+"
                  f"{result['pruned']} pruned ({result['failed']} failed), val {result['val_score']:.4f}, test "
                  f"{result['test_score']:.4f} {stopped}", file=sys.stderr)
        diff, low, high = paired_bootstrap(data, found["auto"]["predictions"], found["fixed"]["predictions"], seed)
        for label in ("auto", "fixed"):
            found[label].pop("predictions")
        rows.append({"dataset": name, "auto": found["auto"], "fixed": found["fixed"],
                     "test_difference": {"auto_minus_fixed": diff, "low": low, "high": high}})
    return rows


def print_table(rows: list[dict[str, Any]], fixed: float, auto: str) -> None:
    print(f"\n| dataset | {auto}: wall s | trials (pruned) | stopped by | test | fixed {fixed:g} s: wall s | "
          "trials (pruned) | test | auto - fixed (90% interval) |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    for row in rows:
        a, f, d = row["auto"], row["fixed"], row["test_difference"]
        reason = (a["stopped"] or {}).get("reason", "?")
        why = (f"rule ({a['stopped']['trials']} trials)" if reason == "rule" else
               "cap" if reason == "time_cap" else reason)
        print(f"| {row['dataset']} | {a['wall_seconds']:.0f} | {a['complete'] + a['pruned']} ({a['pruned']}) | {why} | "
              f"{a['test_score']:.4f} | {f['wall_seconds']:.0f} | {f['complete'] + f['pruned']} ({f['pruned']}) | "
              f"{f['test_score']:.4f} | {d['auto_minus_fixed']:+.4f} ({d['low']:+.4f}..{d['high']:+.4f}) |")


# --------------------------------------------------------------------------- the rule on synthetic searches

SYNTHETIC_TRIALS = 160
SIGMAS = (0.002, 0.005, 0.01)
OPTIMUM = 0.9


def synthetic_objective(seed: int, sigma: float) -> Any:
    """``f(trial) -> (true value, observed value)``: a smooth objective with its optimum
    `OPTIMUM` at a seeded point, observed with Gaussian noise of standard deviation ``sigma``."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(0.2, 0.8, 4)
    penalty = {"a": 0.0, "b": 0.01, "c": 0.03}

    def f(trial: Any) -> tuple[float, float]:
        x = [trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(4)]
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        kind = trial.suggest_categorical("kind", ["a", "b", "c"])
        depth = trial.suggest_int("depth", 1, 5)
        true = (OPTIMUM - 0.06 * sum((a - b) ** 2 for a, b in zip(x, centre)) - 0.01 * (math.log10(lr) + 2.5) ** 2
                - penalty[kind] - 0.004 * (depth - 3) ** 2)
        return true, true + rng.normal(0.0, sigma)

    return f


def replay(seeds: int, regret_bound: bool) -> dict[str, Any]:
    import optuna

    from archtune.tune.stopping import MIN_WINDOW, expected_gain, recent_gain, tail_gain

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")  # the terminator's deprecation and experimental warnings
    rules = {
        "observed rise (last half, >= 10)": lambda v: recent_gain(v, max(10, len(v) // 2)),
        f"observed rise (last half, >= {MIN_WINDOW})": lambda v: recent_gain(v, max(MIN_WINDOW, len(v) // 2)),
        "tail extrapolation": tail_gain,
        "archtune: the larger of both": expected_gain,
    }
    if regret_bound:
        from optuna.terminator import RegretBoundEvaluator
    results: list[dict[str, Any]] = []
    for sigma in SIGMAS:
        for seed in range(seeds):
            f = synthetic_objective(seed, sigma)
            study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, n_startup_trials=8))
            trues = []
            for _ in range(SYNTHETIC_TRIALS):
                trial = study.ask()
                true, observed = f(trial)
                study.tell(trial, observed)
                trues.append(true)
            observed_values = [t.value for t in study.trials]
            final = trues[int(np.argmax(observed_values))]
            candidates: dict[str, Any] = dict(rules)
            if regret_bound:
                candidates["optuna RegretBoundEvaluator"] = None
            for name, rule in candidates.items():
                stop, seconds = None, 0.0
                for n in range(MIN_WINDOW + 1, SYNTHETIC_TRIALS + 1, 4):
                    if rule is None:
                        started = time.perf_counter()
                        gain = RegretBoundEvaluator(seed=0).evaluate(study.trials[:n], study.direction)
                        seconds += time.perf_counter() - started
                    else:
                        gain = rule(observed_values[:n])
                    if gain <= sigma:
                        stop = n
                        break
                kept = trues[int(np.argmax(observed_values[:stop or SYNTHETIC_TRIALS]))]
                results.append({"sigma": sigma, "seed": seed, "rule": name, "stop": stop,
                                "regret_sigmas": (final - kept) / sigma, "seconds": seconds})
    print("\n| rule | sigma | runs | stopped (of runs) | median stop trial | regret <= 1 sigma | mean regret (sigma) | "
          "worst | s per run |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in dict.fromkeys(r["rule"] for r in results):
        for sigma in SIGMAS:
            rs = [r for r in results if r["rule"] == name and r["sigma"] == sigma]
            stops = [r["stop"] or SYNTHETIC_TRIALS for r in rs]
            regrets = [r["regret_sigmas"] for r in rs]
            print(f"| {name} | {sigma:g} | {len(rs)} | {sum(r['stop'] is not None for r in rs)} | "
                  f"{np.median(stops):.0f} | {sum(x <= 1.0 for x in regrets)} | {np.mean(regrets):.2f} | "
                  f"{max(regrets):.2f} | {np.mean([r['seconds'] for r in rs]):.1f} |")
    return {"replay": results}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS),
                        help=f"comma-separated, from {','.join(DATASETS)} (default {','.join(DEFAULT_DATASETS)})")
    parser.add_argument("--budget", type=float, default=180.0, help="the fixed budget in seconds (default 180)")
    parser.add_argument("--auto", default="auto", help="the auto budget: auto (1 h cap) or auto:<time> (a lower cap)")
    parser.add_argument("--max-rows", type=int, default=20000, help="subsample larger tables (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads (default 1)")
    parser.add_argument("--replay", action="store_true", help="measure the rule on synthetic searches instead")
    parser.add_argument("--seeds", type=int, default=10, help="--replay: searches per noise level (default 10)")
    parser.add_argument("--regret-bound", action="store_true", help="--replay: add Optuna's RegretBoundEvaluator")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.replay:
        out: Any = replay(args.seeds, args.regret_bound)
    else:
        import optuna
        import torch
        from threadpoolctl import threadpool_limits

        from archtune.tune.study import parse_budget

        names = [n.strip() for n in args.datasets.split(",") if n.strip()]
        unknown = [n for n in names if n not in DATASETS]
        if unknown:
            parser.error(f"unknown dataset(s) {unknown}; choose from {', '.join(DATASETS)}")
        parse_budget(args.auto)  # a bad --auto fails before any search
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        torch.set_num_threads(args.threads)
        with threadpool_limits(limits=args.threads):
            out = compare(names, args.budget, args.auto, args.max_rows, args.seed)
        print_table(out, args.budget, args.auto)
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
