"""``archtune lr-find`` and ``archtune diagnose``: the training doctor on the command line."""

from __future__ import annotations

from pathlib import Path

import click

from archtune.cli.common import estimator_for
from archtune.cli.group import cli
from archtune.errors import InvalidParameterError
from archtune.files import json_bytes

_SET_HELP = "Set an estimator parameter, e.g. --set units=128 --set activation=tanh. Repeatable."


def _target_or_builtin(data: str, target: str | None) -> str:
    from archtune.data.datasets import BUILTIN_DATASETS, BUILTIN_TARGET
    from archtune.data.readers import check_source

    check_source(data)
    if target is None:
        if data not in BUILTIN_DATASETS:
            raise InvalidParameterError("--target is required: name the column to predict")
        return BUILTIN_TARGET
    return target


@cli.command("lr-find", epilog="""\b
Examples:
  archtune lr-find breast_cancer --plot lr.png
  archtune lr-find ../shared/datasets/tabular/magic.tsv.gz --target target --set units=128
  archtune lr-find data.csv --target y --method divide""")
@click.argument("data")
@click.option("--target", "-t", help="Name of the target column (default for built-in datasets: target).")
@click.option("--task", type=click.Choice(["auto", "classification", "regression"]), default="auto",
              show_default=True)
@click.option("--set", "settings", multiple=True, metavar="PARAM=VALUE", help=_SET_HELP)
@click.option("--method", type=click.Choice(["range", "divide"]), default="range", show_default=True,
              help="range: the exponential range test; divide: start at 10 and divide by 3 until training "
                   "stops diverging.")
@click.option("--plot", type=click.Path(path_type=Path), help="Write the loss-against-rate curve to this PNG.")
@click.option("--seed", type=int, default=0, show_default=True)
def lr_find_command(data: str, target: str | None, task: str, settings: tuple[str, ...], method: str,
                    plot: Path | None, seed: int) -> None:
    """Find a learning rate for the network --set describes, on DATA."""
    from archtune.doctor.lr_finder import lr_find

    target = _target_or_builtin(data, target)
    if plot is not None and plot.suffix.lower() != ".png":
        raise InvalidParameterError(f"--plot {plot}: the plot is a PNG; give a path ending in .png")
    model, X, y, task, name = estimator_for(data, target, task, settings, {"random_state": seed})
    click.echo(f"data: {name}: {X.n_rows} rows, {X.n_columns} features ({task})")
    result = lr_find(model, X, y, method=method)
    click.echo(str(result))
    if plot is not None:
        result.plot(plot)
        click.echo(f"plot written to {plot}")
    click.echo(f"use it: --set learning_rate={result.suggestion:.3g} (or --set learning_rate=auto)")


@cli.command(epilog="""\b
Examples:
  archtune diagnose breast_cancer --set hidden_layers=20 --set activation=sigmoid
  archtune diagnose ../shared/datasets/tabular/magic.tsv.gz --target target --set learning_rate=5
  archtune diagnose runs/magic                    (a fitted run: its learning curves and weights)
  archtune diagnose runs/magic --data magic.tsv   (also probe its network on data)""")
@click.argument("source")
@click.option("--target", "-t", help="Target column when SOURCE is data (default for built-in datasets: target).")
@click.option("--task", type=click.Choice(["auto", "classification", "regression"]), default="auto",
              show_default=True)
@click.option("--set", "settings", multiple=True, metavar="PARAM=VALUE", help=_SET_HELP)
@click.option("--data", "data", help="With a RUN_DIR: data to probe the fitted network with (its target column "
                                     "is the one the run was trained on).")
@click.option("--epochs", type=click.IntRange(1), help="Epochs of the instrumented run (default: up to 30).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the findings as JSON.")
@click.option("--seed", type=int, default=0, show_default=True)
def diagnose(source: str, target: str | None, task: str, settings: tuple[str, ...], data: str | None,
             epochs: int | None, json_path: Path | None, seed: int) -> None:
    """Check a network for training problems and say what to change.

    SOURCE is a run directory (from `archtune fit` or `archtune tune`), or DATA: then the
    network --set describes is trained briefly on it with every gradient and unit watched.
    """
    from archtune.doctor.diagnose import diagnose as run_diagnosis
    from archtune.bundles.format import META_FILE

    if Path(source).is_dir() and (Path(source) / META_FILE).is_file():
        if settings:
            raise InvalidParameterError("--set applies when SOURCE is data; a run directory's network is fixed")
        diagnosis = run_diagnosis(source, *_run_data(source, data))
    else:
        if data is not None:
            raise InvalidParameterError(f"--data goes with a run directory; {source} is not one "
                                        "(give the data as SOURCE with --target)")
        target = _target_or_builtin(source, target)
        model, X, y, task, name = estimator_for(source, target, task, settings, {"random_state": seed})
        click.echo(f"data: {name}: {X.n_rows} rows, {X.n_columns} features ({task}); instrumented training run")
        diagnosis = run_diagnosis(model, X, y, max_epochs=epochs)
        diagnosis.source = name
    click.echo(str(diagnosis))
    if json_path is not None:
        from archtune.files import atomic_write_bytes

        atomic_write_bytes(json_path, json_bytes(diagnosis.to_dict()))
        click.echo(f"findings written to {json_path}")


def _run_data(run_dir: str, data: str | None) -> tuple:
    """(X, y) to probe a run's network with, read with the run's own target column."""
    if data is None:
        return None, None
    from archtune.cli.common import load_training_table
    from archtune.data.readers import check_source
    from archtune.bundles.format import read_meta

    check_source(data)
    target = read_meta(run_dir).get("metadata", {}).get("target")
    if not target:
        raise InvalidParameterError(f"{run_dir}: the run does not record its target column; "
                                    "diagnose it without --data")
    X, y, _, _ = load_training_table(data, target, "auto")
    return X, y
