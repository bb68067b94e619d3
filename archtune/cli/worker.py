"""``archtune worker``: join a running search and train its trials (archtune.tune.worker)."""

from __future__ import annotations

import click

from archtune.cli.group import cli


@cli.command(epilog="""\b
Examples:
  archtune tune data.csv --target price --trials 40 --storage journal:///runs/price/study.log --out runs/price
  archtune worker --storage journal:///runs/price/study.log --study archtune --threads 1   (another terminal)
  archtune worker --storage postgresql://me@db-host/archtune --study price \\
      --data /mnt/runs/price.worker-data.parquet""")
@click.option("--storage", required=True,
              help="The search's storage: journal:///PATH.log (processes of one machine) or postgresql://...")
@click.option("--study", "study_name", default="archtune", show_default=True, help="The search's study name.")
@click.option("--threads", type=click.IntRange(1), help="PyTorch threads of this worker (default: all cores).")
@click.option("--max-trials", type=click.IntRange(1),
              help="Stop once the study holds this many more finished trials than when this worker joined.")
@click.option("--seconds", type=click.FloatRange(0, min_open=True), help="Start no trial after this many seconds.")
@click.option("--wait", type=click.FloatRange(0), default=120.0, show_default=True,
              help="Seconds to wait for the coordinator (archtune tune) to create the study.")
@click.option("--data", help="The coordinator's data file, where this machine sees it under another path.")
@click.option("--index", type=click.IntRange(0), default=0, show_default=True,
              help="This worker's number among its siblings (its sampler seed differs by it).")
def worker(storage: str, study_name: str, threads: int | None, max_trials: int | None, seconds: float | None,
           wait: float, data: str | None, index: int) -> None:
    """Join a running search: ask for trials, train them, report every epoch, tell the results."""
    from archtune.tune.worker import run_worker

    report = run_worker(storage, study_name, threads=threads, max_trials=max_trials, seconds=seconds, wait=wait,
                        data=data, worker_index=index)
    click.echo(f"worker: {len(report.trials)} trials in {report.seconds:.1f} s (study {study_name!r} in {storage})")
