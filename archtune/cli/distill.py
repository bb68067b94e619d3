"""``archtune distill``: a small network trained to imitate a run's model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from archtune.cli.common import echo_metrics, holdout_split, parse_settings
from archtune.cli.group import cli
from archtune.cli.report import report_after_run
from archtune.files import json_bytes
from archtune.run_folder import METRICS_FILE, holdout_metrics, save_evaluation
from archtune.errors import InvalidParameterError


def student_settings(items: tuple[str, ...]) -> tuple[str, ...]:
    """``--student units=64,hidden_layers=2`` as the ``PARAM=VALUE`` items `parse_settings`
    reads: a piece without "=" continues the previous value (``hidden_sizes=128,64``)."""
    out: list[str] = []
    for item in items:
        for piece in item.split(","):
            if "=" in piece or not out:
                out.append(piece)
            else:
                out[-1] += "," + piece
    return tuple(piece for piece in out if piece.strip())


@cli.command(epilog="""\b
Examples:
  archtune distill runs/magic-tune ../shared/datasets/tabular/magic.tsv.gz --target target \\
      --student units=64,hidden_layers=2 --out runs/magic-student
  archtune distill runs/bc breast_cancer --alpha 0.3 --temperature 4 --augment swap --out runs/bc-small
RUN is the --out folder of `archtune fit` (its network) or `archtune tune` (its ensemble when it
saved one, else its best network; --best-network for that one). Unset student parameters take
the default student's (2 hidden layers of 64 units, no numeric embedding) and the estimator's.""")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("data")
@click.option("--target", "-t", help="Name of the target column (default for built-in datasets: target).")
@click.option("--student", "student", multiple=True, metavar="PARAM=VALUE,...",
              help="The student network's parameters, e.g. units=64,hidden_layers=2. Repeatable.")
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=2.0, show_default=True,
              help="Softens the teacher's and the student's class distributions (classification).")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Weight of the true labels (1: ordinary training; 0: imitate the teacher only).")
@click.option("--augment", type=click.Choice(["swap"]), default=None,
              help="Also imitate the teacher on a copy of the training rows with swap noise.")
@click.option("--best-network", is_flag=True, help="Distil the run's best network even when it saved an ensemble.")
@click.option("--holdout", type=click.FloatRange(0, 0.9), default=0.2, show_default=True,
              help="Share of rows kept out of training to compare the student with the teacher.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True,
              help="Directory to save the student's bundle in.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--report/--no-report", "write_report", default=True, show_default=True,
              help="Write OUT/report.html.")
def distill(run: Path, data: str, target: str | None, student: tuple[str, ...], temperature: float, alpha: float,
            augment: str | None, best_network: bool, holdout: float, seed: int, out: Path, quiet: bool,
            write_report: bool) -> None:
    """Train a small network on DATA to imitate the model saved in RUN (knowledge distillation)."""
    from archtune.data.datasets import BUILTIN_DATASETS, BUILTIN_TARGET
    from archtune.data.readers import check_source

    check_source(data)
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"--out {out}: exists and is not a directory")
    from archtune.cli.common import load_training_table
    from archtune.bundles.dispatch import load
    from archtune.bundles.paths import check_path
    from archtune.bundles.search import final_ensemble_dir
    from archtune.parameters import check_params
    from archtune.bundles.network import save
    from archtune.files import atomic_write_bytes
    from archtune.shrink.distill import default_student
    from archtune.shrink.distill import distill as distil_model
    from archtune.shrink.teacher import teacher_task

    # The model the run predicts with (archtune.load), or its best network with --best-network.
    check_path(run, "distill")
    teacher = load(run, best_network=best_network)
    teacher_dir = (final_ensemble_dir(run) if not best_network else None) or run
    task = teacher_task(teacher)
    model = default_student(task, seed)
    model.set_params(**parse_settings(student_settings(student), type(model)), verbose=0 if quiet else 1)
    check_params(model)  # before the data is read
    target = target or teacher.bundle_metadata_.get("target") or (BUILTIN_TARGET if data in BUILTIN_DATASETS
                                                                  else None)
    if target is None:
        raise InvalidParameterError("--target is required: name the column to predict")
    X, y, task, name = load_training_table(data, target, task)
    X_fit, X_hold, y_fit, y_hold = holdout_split(X, y, holdout, task, seed)
    click.echo(f"teacher: {teacher_dir} ({type(teacher).__name__}); data: {name}: {len(X_fit)} training rows, "
               f"{0 if X_hold is None else len(X_hold)} held out")
    started = time.perf_counter()
    distil_model(teacher, X_fit, y_fit, model, temperature=temperature, alpha=alpha, augment=augment)
    seconds = time.perf_counter() - started
    model.lineage_[0]["run"] = str(teacher_dir)
    n_params = sum(p.numel() for p in model.module_.parameters())
    click.echo(f"distilled in {seconds:.1f}s: {len(model.history_)} epochs, {n_params:,} parameters")
    report: dict[str, Any] = {"data": str(data), "target": target, "task": task, "fit_seconds": seconds,
                              "distilled": model.lineage_[0],
                              "settings": {"student": list(student), "temperature": temperature, "alpha": alpha,
                                           "augment": augment, "holdout": holdout, "seed": seed}}
    if X_hold is not None:
        report["holdout"] = holdout_metrics(model, X_hold, y_hold)
        report["holdout_teacher"] = holdout_metrics(teacher, X_hold, y_hold)
        echo_metrics(f"held-out ({len(X_hold)} rows), student", report["holdout"])
        echo_metrics(f"held-out ({len(X_hold)} rows), teacher", report["holdout_teacher"])
    save(model, out, metadata=report)
    atomic_write_bytes(out / METRICS_FILE, json_bytes(report))
    click.echo(f"saved the student to {out} (use: archtune predict {out} DATA)")
    save_evaluation(out, model, X_hold, y_hold, seed)
    if write_report:
        report_after_run(out)
