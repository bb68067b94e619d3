"""``archtune report``: the run's report as one self-contained HTML file; and the report that
``fit`` and ``tune`` end with, which never fails a run (the held-out evaluation they save is
archtune.run_folder's)."""

from __future__ import annotations

from pathlib import Path

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
