"""``archtune report``: the run's report as one self-contained HTML file; and the steps
``fit`` and ``tune`` end with (the held-out evaluation, the report), which never fail a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from archtune.cli.group import cli


@cli.command(epilog="""\b
Examples:
  archtune report runs/bc                    (writes runs/bc/report.html)
  archtune report runs/bc -o bc-report.html""")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Where to write the page (default: RUN/report.html).")
def report(run: Path, output: Path | None) -> None:
    """Write the report of RUN (the --out folder of `archtune fit` or `archtune tune`): one HTML file
    with no scripts and no external resources."""
    from archtune.report import write_report

    path = write_report(run, output)
    click.echo(f"report: {path} ({path.stat().st_size / 1024:.0f} kB)")


def save_lr_finder(out: Path, model: Any) -> None:
    """Write OUT/lr_finder.json when the saved network's rate came from the learning-rate
    finder (learning_rate="auto"): its curve and suggestion, for the report; else remove a
    stale one."""
    import dataclasses

    from archtune.files import atomic_write_bytes
    from archtune.report.data import LR_FINDER_FILE

    path = out / LR_FINDER_FILE
    finder = getattr(model, "lr_finder_", None)
    if finder is None:
        path.unlink(missing_ok=True)
        return
    atomic_write_bytes(path, json.dumps(dataclasses.asdict(finder), default=float).encode())


def save_evaluation(out: Path, model: Any, X_hold: Any, y_hold: Any, task: str, seed: int) -> None:
    """Write OUT/evaluation.json from the held-out rows (see archtune.report.evaluation), or
    remove a stale one when there are none (an earlier run's rows must not describe this
    model). A failure is a warning line: the run has already saved what it trained."""
    from archtune.files import atomic_write_bytes
    from archtune.report.evaluation import EVALUATION_FILE, evaluate

    path = out / EVALUATION_FILE
    if X_hold is None:
        path.unlink(missing_ok=True)
        return
    try:
        found = evaluate(model, X_hold, y_hold, task, seed=seed)
        atomic_write_bytes(path, json.dumps(found, allow_nan=False, default=str).encode())
    except Exception as exc:  # the evaluation serves the report; it must not fail the run
        path.unlink(missing_ok=True)
        click.echo(f"archtune: warning: the held-out evaluation for the report failed ({type(exc).__name__}: "
                   f"{exc}); the report leaves it out", err=True)


def report_after_run(out: Path) -> None:
    """Write OUT/report.html at the end of `fit` or `tune` and say where; a failure is a
    warning line, never the run's failure."""
    from archtune.report import write_report

    try:
        path = write_report(out)
    except Exception as exc:
        click.echo(f"archtune: warning: the report could not be written ({type(exc).__name__}: {exc}); "
                   f"try again with: archtune report {out}", err=True)
        return
    click.echo(f"report: {path}")
