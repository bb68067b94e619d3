"""``archtune leaderboard``, and the leaderboard as the commands print it: a table of every
trial and baseline (best first) and the verdict sentence (`archtune tune` ends with both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pandas as pd

from archtune.cli.common import DEFAULT_STUDY, open_existing_study
from archtune.cli.group import cli
from archtune.errors import DataError, InvalidParameterError
from archtune.run_folder import JOURNAL_FILE, STUDY_FILE


def render_leaderboard(frame: pd.DataFrame, limit: int = 15) -> None:
    """The leaderboard's first ``limit`` rows as a table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    # A multi-objective search's columns (archtune.tune.objectives): latency and the Pareto front.
    extra = [c for c in ("latency_ms", "pareto") if c in frame.columns]
    for column in ("#", "model", "val_score", "fit s", "params", *[_HEADERS[c] for c in extra], "state", "note"):
        table.add_column(column, overflow="fold")
    for rank, row in frame.head(limit).iterrows():
        score = "" if pd.isna(row["val_score"]) else f"{row['val_score']:.4f}"
        seconds = "" if pd.isna(row["fit_seconds"]) else f"{row['fit_seconds']:.1f}"
        n_params = "" if pd.isna(row["n_params"]) else f"{int(row['n_params']):,}"
        cells = [_cell(c, row[c]) for c in extra]
        table.add_row(str(rank), str(row["model"]), score, seconds, n_params, *cells, str(row["state"]),
                      str(row["note"])[:60])
    Console().print(table)
    if len(frame) > limit:
        click.echo(f"... {len(frame) - limit} more rows in the leaderboard file")


_HEADERS = {"latency_ms": "ms/1000 rows", "pareto": "pareto"}


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if column == "pareto":
        return "*" if value in (True, "True") else ""
    return f"{float(value):.2f}"


def stopping_line(study: Any) -> str | None:
    """Why a search with budget="auto" stopped ("stopped: no expected improvement above the
    validation noise after 23 trials ..., 412.3 s into the search"), from its study
    (archtune.tune.stopping); None for another budget."""
    from archtune.tune.stopping import STOPPED_ATTR, stop_text

    record = study.user_attrs.get(STOPPED_ATTR) if study is not None else None
    if not isinstance(record, dict):
        return None
    seconds = record.get("seconds")
    when = "" if seconds is None else f", {float(seconds):.1f} s into the search"
    return f"stopped: {record.get('text') or stop_text(record)}{when}"


def verdict(frame: pd.DataFrame, metric: str) -> str:
    """Plain sentences: does the best network beat the best classical baseline, by how much;
    and when an ensemble was selected, what predicts and why (judged on validation rows the
    ensemble was not selected on, the only honest comparison)."""
    networks = frame[frame["model"].str.startswith("network") & frame["val_score"].notna()]
    baselines = frame[(frame["state"] == "BASELINE") & frame["val_score"].notna()]
    # The network is judged against the best gradient-boosting model of the run (the portfolio's,
    # early-stopped), when there is one, not against untuned classical models.
    from archtune.tune.leaderboard import GRADIENT_BOOSTING_NOTE

    boosted = baselines[baselines["note"] == GRADIENT_BOOSTING_NOTE]
    if not boosted.empty:
        baselines = boosted
    if networks.empty:
        return "No network finished, so there is nothing to compare."
    net = networks.iloc[0]
    ensembles = frame[frame["state"] == "ENSEMBLE"]
    if baselines.empty:
        sentence = f"The best network scores {metric} {net['val_score']:.4f} on validation (no baselines were run)."
    else:
        base = baselines.iloc[0]
        # Judged at the precision shown: scores that print the same are a tie, never "behind
        # by +0.0000" (and the leaderboard's order between them is only float noise).
        gap = round(float(net["val_score"]), 4) - round(float(base["val_score"]), 4)
        gap = 0.0 if abs(gap) < 5e-5 else gap
        rival = "the best gradient-boosting model" if not boosted.empty else "the best baseline"
        if gap > 0:
            sentence = (f"The best network ({metric} {net['val_score']:.4f}) beats {rival}, {base['model']} "
                        f"({base['val_score']:.4f}), by {gap:+.4f}.")
        elif gap == 0:
            sentence = (f"The best network ({metric} {net['val_score']:.4f}) ties with {rival}, "
                        f"{base['model']} ({base['val_score']:.4f}).")
        else:
            sentence = (f"The best network ({metric} {net['val_score']:.4f}) does NOT beat {rival}, "
                        f"{base['model']} ({base['val_score']:.4f}): it is behind by {gap:+.4f}.")
            if ensembles.empty:
                return sentence + f" Consider {base['model']} for this data."
    if not ensembles.empty:
        row = ensembles.iloc[0]
        parts = str(row["note"]).split("; ")
        held_out = next((p for p in parts if p.startswith(("+", "-"))), None)
        alone = next((p for p in parts if p.startswith("the best single model")), None)
        compared = f" ({held_out.split(' on rows')[0]})" if held_out else ""
        added = next((p for p in parts if p.startswith("networks add")), None)
        if parts[0] == "used":
            sentence += (f" The {row['model']} predicts: it holds up on validation rows it was not selected on"
                         f"{compared}.")
        elif alone:
            sentence += (f" The {row['model']} does not hold up on validation rows it was not selected on"
                         f"{compared}; {alone.replace('predicts', 'predicts alone')}.")
        else:
            sentence += (f" The {row['model']} does not hold up on validation rows it was not selected on"
                         f"{compared}; {_bag_or_network(frame)} predicts.")
        if added:  # "networks add +0.0012 to an ensemble without them"
            sentence += f" The networks add {added.split()[2]} to an ensemble of the other models alone, on those rows."
    elif not frame[frame["state"] == "BAG"].empty:
        sentence += f" {_bag_or_network(frame).capitalize()} predicts."
    return sentence


def _bag_or_network(frame: pd.DataFrame) -> str:
    """What predicts when no ensemble does: the bag (bagging replaces the refit), else the best
    network."""
    bags = frame[frame["state"] == "BAG"]
    return f"the {bags.iloc[0]['model']}" if not bags.empty else "the best network"


@cli.command(epilog="""\b
Examples:
  archtune leaderboard runs/bc-search
  archtune leaderboard --storage postgresql://user@host/db --study archtune""")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--storage", help="Study storage URL (default: sqlite:///RUN_DIR/study.db).")
@click.option("--study", "study_name", default=DEFAULT_STUDY, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=30, show_default=True, help="Rows to show.")
def leaderboard(run_dir: Path | None, storage: str | None, study_name: str, limit: int) -> None:
    """Print the leaderboard of a search (every trial and baseline, best first)."""
    if storage is None:
        if run_dir is None:
            raise InvalidParameterError("give a RUN_DIR (the --out of `archtune tune`) or --storage")
        db = run_dir / STUDY_FILE
        if (run_dir / JOURNAL_FILE).is_file() and not db.is_file():  # a search run with --workers
            from archtune.tune.storages import journal_url

            storage = journal_url(run_dir / JOURNAL_FILE)
        elif not db.is_file():
            raise DataError(f"{run_dir}: no {STUDY_FILE} here; is this the --out directory of `archtune tune`?")
        else:
            storage = f"sqlite:///{db.resolve()}"
    study = open_existing_study(storage, study_name)
    if study is None:
        raise DataError(f"no study named {study_name!r} in {storage}")
    from archtune.tune.leaderboard import leaderboard as build

    board = build(study, study.user_attrs.get("baselines", []))
    render_leaderboard(board, limit)
    from archtune.task import task_named

    metric = task_named(study.user_attrs.get("task", "regression")).default_scoring
    click.echo(verdict(board, metric))
    stopped = stopping_line(study)
    if stopped:
        click.echo(stopped)


__all__ = ["leaderboard", "render_leaderboard", "stopping_line", "verdict"]
