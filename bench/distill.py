"""Knowledge distillation (issue 17): does a small student keep the teacher's advantage?

On one shared table (default electricity, subsampled, seeded 75/25 split, stratified):

    teacher    ``AutoNeuralClassifier(budget=<B>, baselines=True)``: what it predicts with
               (``final_estimator_``: its ensemble of networks and LightGBM when one is used,
               else its best network).
    labels     the default student (`archtune.shrink.distill.default_student`: 2 x 64 MLP, no
               numeric embedding) trained on the labels alone (``fit``).
    distilled  the same student, same seed, by ``archtune.distill(teacher, ...)`` with the
               ``--alpha``, ``--temperature`` and ``--augment`` given.

Reported: test accuracy of each; the share of the teacher's advantage over the label-trained
student that the distilled one keeps, ``(distilled - labels) / (teacher - labels)`` (target >= 0.5;
meaningless when the teacher has no advantage, and said so); parameters (networks: their
tensors; LightGBM: 2 per split (feature, threshold) + 1 per leaf; the student must have at most
a tenth of the teacher's); prediction latency per 1000 rows, ``predict_proba`` on the test rows
in one call, median of ``--repeats``, one thread (target: the student >= 5x faster), and the
share of the student's that is its input checks and preprocessing (`fitting.input_matrix`).

    .venv/bin/python bench/distill.py                       # electricity, 8000 rows, 120 s search
    .venv/bin/python bench/distill.py --rows 4000 --budget 60s   # a quicker smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import archtune  # noqa: E402
from archtune.shrink.distill import default_student  # noqa: E402

DATA_DIR = Path(os.environ.get("ARCHTUNE_DATASETS", "/work/shared/datasets/tabular"))
DATASETS = {"electricity": ("electricity.csv.gz", "Class"), "magic": ("magic.tsv.gz", "target"),
            "credit_default": ("credit_default.csv.gz", "target"), "adult": ("adult.tsv.gz", "target")}


def load(name: str, rows: int, seed: int):
    from sklearn.model_selection import train_test_split

    file, target = DATASETS[name]
    path = DATA_DIR / file
    frame = pd.read_csv(path, sep="\t" if ".tsv" in path.name else ",")
    frame = frame.drop(columns=[c for c in ("ID",) if c in frame.columns])
    y = np.unique(frame.pop(target).to_numpy(), return_inverse=True)[1]
    if len(frame) > rows:
        idx = np.sort(np.random.default_rng(seed).permutation(len(frame))[:rows])
        frame, y = frame.iloc[idx].reset_index(drop=True), y[idx]
    tr, te = train_test_split(np.arange(len(frame)), test_size=0.25, random_state=seed, stratify=y)
    return (frame.iloc[tr].reset_index(drop=True), frame.iloc[te].reset_index(drop=True), y[tr], y[te])


def parameters(model) -> tuple[int, str]:
    """(count, how it was counted) for a network, LightGBM, an ensemble of them, or an Auto estimator."""
    if hasattr(model, "module_"):
        return sum(p.numel() for p in model.module_.parameters()), "network"
    if hasattr(model, "model_text"):  # archtune's LightGBM member
        leaves = [int(n) for n in re.findall(r"^num_leaves=(\d+)$", model.model_text(), flags=re.M)]
        return sum(3 * n - 2 for n in leaves), f"lightgbm ({len(leaves)} trees)"
    if hasattr(model, "members"):
        counted = [parameters(m.model) for m in model.members]
        return sum(c for c, _ in counted), " + ".join(how for _, how in counted)
    if hasattr(model, "final_estimator_"):
        return parameters(model.final_estimator_)
    return -1, f"uncounted {type(model).__name__}"


def latency(model, X: pd.DataFrame, repeats: int) -> float:
    """Median seconds of predict_proba per 1000 rows."""
    model.predict_proba(X.iloc[:10])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_proba(X)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / len(X) * 1000


def input_seconds(model, X: pd.DataFrame, repeats: int) -> float:
    """Median seconds per 1000 rows of the student's input checks and preprocessing alone
    (the part of its latency that is not the network)."""
    from archtune.fitting import input_matrix

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        input_matrix(model, X)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / len(X) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="electricity", choices=sorted(DATASETS))
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--budget", default="120s")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--augment", default="swap", choices=["swap", "none"])
    parser.add_argument("--augment-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="Also write the figures to this file.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    X_tr, X_te, y_tr, y_te = load(args.dataset, args.rows, args.seed)
    print(f"{args.dataset}: {len(X_tr)} training rows, {len(X_te)} test rows, {X_tr.shape[1]} features")
    clock = time.perf_counter()
    teacher = archtune.AutoNeuralClassifier(budget=args.budget, random_state=args.seed).fit(X_tr, y_tr)
    teacher_seconds = time.perf_counter() - clock
    final = teacher.final_estimator_
    what = final.summary() if hasattr(final, "summary") else type(final).__name__
    clock = time.perf_counter()
    labels = default_student("classification", args.seed).fit(X_tr, y_tr)
    labels_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    augment = None if args.augment == "none" else args.augment
    distilled = archtune.distill(teacher, X_tr, y_tr, default_student("classification", args.seed),
                                 alpha=args.alpha, temperature=args.temperature, augment=augment,
                                 augment_size=args.augment_size)
    distill_seconds = time.perf_counter() - clock
    scores = {name: float((m.predict(X_te) == y_te).mean())
              for name, m in (("teacher", teacher), ("labels", labels), ("distilled", distilled))}
    advantage = scores["teacher"] - scores["labels"]
    kept = (scores["distilled"] - scores["labels"]) / advantage if advantage > 0 else float("nan")
    n_teacher, counted = parameters(teacher)
    n_student = parameters(distilled)[0]
    lat = {"teacher": latency(teacher, X_te, args.repeats), "distilled": latency(distilled, X_te, args.repeats)}
    lat["student_input"] = input_seconds(distilled, X_te, args.repeats)
    result = {"dataset": args.dataset, "rows_train": len(X_tr), "rows_test": len(X_te), "budget": args.budget,
              "teacher": what, "teacher_params": n_teacher, "teacher_params_counted": counted,
              "student_params": n_student, "param_ratio": n_student / n_teacher if n_teacher > 0 else None,
              "scores": scores, "advantage": advantage, "advantage_kept": kept,
              "latency_ms_per_1000": {k: v * 1000 for k, v in lat.items()},
              "speedup": lat["teacher"] / lat["distilled"],
              "seconds": {"teacher": teacher_seconds, "labels": labels_seconds, "distilled": distill_seconds},
              "settings": {k: v for k, v in vars(args).items() if k != "json"}}
    print(f"teacher: {what}; {n_teacher:,} parameters ({counted}); search + refit {teacher_seconds:.0f}s")
    print(f"student: {n_student:,} parameters ({result['param_ratio']:.3f} of the teacher's; target <= 0.1)")
    print(f"test accuracy: teacher {scores['teacher']:.4f}  student from labels {scores['labels']:.4f} "
          f"({labels_seconds:.0f}s)  distilled {scores['distilled']:.4f} ({distill_seconds:.0f}s)")
    print(f"teacher's advantage {advantage:+.4f}; kept by distillation: {kept:.2f} (target >= 0.5)")
    print(f"latency per 1000 rows: teacher {lat['teacher'] * 1000:.2f} ms, student {lat['distilled'] * 1000:.2f} ms: "
          f"{result['speedup']:.1f}x (target >= 5x); the student's input checks and preprocessing alone: "
          f"{lat['student_input'] * 1000:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
