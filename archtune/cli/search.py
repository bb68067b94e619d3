"""``archtune tune``: search networks, compare with baselines, save the run (flags in, a
SearchConfig, the fit, run_folder.save_search_run, the leaderboard and verdict printed)."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from archtune.cli.group import cli
from archtune.cli.leaderboard import render_leaderboard, stopping_line, verdict
from archtune.cli.report import report_after_run
from archtune.cli.common import (
    DEFAULT_STUDY,
    check_values,
    echo_metrics,
    holdout_split,
    load_training_table,
    open_existing_study,
    parse_value,
    require_tracking,
    setting_value,
)
from archtune.errors import InvalidParameterError

from archtune.run_folder import JOURNAL_FILE, LEADERBOARD_FILE, STUDY_FILE


def parse_space(items: tuple[str, ...], fixed: tuple[str, ...]) -> dict[str, Any]:
    """``--space name=a,b,c`` (a Choice), ``--space name=lo..hi`` (a Range); ``--set name=v``
    fixes a value (a Fixed, tuples included: ``--set hidden_sizes=256,128``)."""
    from archtune.tune.space import Choice, Fixed, Range

    overrides: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise InvalidParameterError(f"--space expects NAME=CHOICES or NAME=LOW..HIGH, got {item!r}")
        name, text = (part.strip() for part in item.split("=", 1))
        if ".." in text:
            low, high = (parse_value(v) for v in text.split("..", 1))
            overrides[name] = Range(low, high)
        else:
            overrides[name] = Choice([parse_value(v) for v in text.split(",") if v.strip()])
    for item in fixed:
        if "=" not in item:
            raise InvalidParameterError(f"--set expects PARAM=VALUE, got {item!r}")
        name, text = (part.strip() for part in item.split("=", 1))
        overrides[name] = Fixed(setting_value(name, text))
    return overrides


def _space_for(preset: str, overrides: dict[str, Any], task: Any) -> Any:
    """What `archtune tune` passes as ``space``: the overrides themselves for the default
    preset (the search fits the default space to the data's columns: text and image-path
    encoders join it), or the small space with them."""
    from archtune.tune.space import SearchSpace

    if preset == "small":
        return SearchSpace.small().with_overrides(overrides, sorted(task.neural_class().get_params()))
    return overrides


@contextlib.contextmanager
def _removed_unless_trials(out: Path) -> Iterator[None]:
    """If the command fails, remove the --out directory it created, unless its study holds trials
    (they are kept for --resume): a refused input leaves nothing behind."""
    created = not out.exists()
    try:
        yield
    except BaseException:
        if created and out.is_dir() and not _has_trials(out / STUDY_FILE) and not (out / JOURNAL_FILE).is_file():
            shutil.rmtree(out, ignore_errors=True)
        raise


def _min_resources(value: str) -> str | int | None:
    """--min-resources: "auto", "none" or a number of rows."""
    if value in ("auto", "none"):
        return None if value == "none" else "auto"
    try:
        return int(value)
    except ValueError:
        raise InvalidParameterError(f"--min-resources must be auto, none or a number of training rows; "
                                    f"got {value!r}") from None


def _backend(workers: int, ray_address: str | None) -> str:
    """The Auto estimators' ``backend`` for --workers/--ray."""
    if ray_address is not None and not workers:
        raise InvalidParameterError("--ray runs the --workers as Ray tasks: give --workers N too")
    if not workers:
        return "threads"
    if ray_address is None:
        return "processes"
    return "ray" if ray_address == "local" else f"ray:{ray_address}"


def _has_trials(db: Path) -> bool:
    if not db.is_file():
        return False
    import optuna

    try:
        return any(s.n_trials for s in optuna.get_all_study_summaries(f"sqlite:///{db.resolve()}"))
    except Exception:  # an unreadable study file is kept for the user to look at
        return True


@cli.command(epilog="""\b
Examples:
  archtune tune breast_cancer --target target --budget 1m --out runs/bc-search
  archtune tune data.csv --target price --trials 40 --space activation=relu,gelu \\
      --space units=32..256 --set batch_size=256 --out runs/price
  archtune tune data.csv --target price --trials 40 --out runs/price --resume   (after a crash)
  archtune tune few.csv --target label --trials 20 --init-from runs/source \\
      --space freeze=body,2,none --out runs/few                        (fine-tune a trained network)
  archtune tune data.csv --target price --trials 20 --out runs/price \\
      --mlflow file:///tmp/mlruns --tensorboard runs/price/tb             (experiment tracking)
  optuna-dashboard sqlite:///runs/price/study.db                      (browse the study)""")
@click.argument("data")
@click.option("--target", "-t", help="Name of the target column (default for built-in datasets: target).")
@click.option("--task", type=click.Choice(["auto", "classification", "regression"]), default="auto",
              show_default=True)
@click.option("--budget", default="5m", show_default=True,
              help="Wall-clock budget (90s, 5m, 1h, 1h30m), a plain number of finished trials (--budget 5 "
                   "means 5 trials, not 5 minutes), or auto: stop when more trials are not expected to improve "
                   "on the noise of the validation score, within a time cap of 1h (auto:2h for another cap).")
@click.option("--trials", type=click.IntRange(1), help="Number of finished trials instead of a time budget.")
@click.option("--sampler", type=click.Choice(["auto", "tpe", "nsga2", "random", "grid", "cmaes", "gp", "qmc"]),
              default="auto", show_default=True, help="auto: TPE for one objective, NSGA-II for several.")
@click.option("--pruner", type=click.Choice(["hyperband", "sha", "median", "none"]), default="hyperband",
              show_default=True)
@click.option("--min-resources", "min_resources", default="auto", show_default=True, metavar="auto|ROWS|none",
              help="Successive halving over rows: every configuration first trains on ROWS training rows and the "
                   "best quarter trains again on all of them (auto: an eighth of the rows, from 16,384 training rows up; "
                   "none: all rows for every trial).")
@click.option("--objectives", default="score", show_default=True, metavar="score[,latency|,n_params]",
              help="What to optimise: score, or the Pareto front of score and latency (CPU ms per 1000 rows) or "
                   "score and n_params; the leaderboard marks the front.")
@click.option("--prefer", default="score", show_default=True, metavar='"score"|"smallest within T"',
              help="With several objectives, the network kept: the best score, or the smallest/fastest on the "
                   "front within T of the best score (no ensemble then, unless --ensemble).")
@click.option("--preset", type=click.Choice(["default", "small"]), default="default", show_default=True,
              help="Search space to start from.")
@click.option("--space", "space_items", multiple=True, metavar="NAME=CHOICES|LOW..HIGH",
              help="Narrow or extend the space: activation=relu,gelu or units=32..256. Repeatable.")
@click.option("--set", "settings", multiple=True, metavar="PARAM=VALUE",
              help="Fix a parameter for every trial, e.g. batch_size=256 or max_epochs=20. Repeatable.")
@click.option("--init-from", "init_from", metavar="RUN",
              help="Start every trial from this trained network (a bundle or run directory): its architecture "
                   "is used, freeze and fine_tune_lr_factor are searched (narrow them with --space/--set).")
@click.option("--cv", type=click.IntRange(2), help="K-fold cross-validation instead of one hold-out split.")
@click.option("--scoring", help="A scikit-learn scorer name (default: accuracy or r2).")
@click.option("--storage", help=f"Study storage URL (default: sqlite:///OUT/{STUDY_FILE}).")
@click.option("--study", "study_name", default=DEFAULT_STUDY, show_default=True, help="Study name.")
@click.option("--resume", is_flag=True, help="Continue the study stored in --storage / OUT.")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Fit classical models on the same split for the leaderboard.")
@click.option("--holdout", type=click.FloatRange(0, 0.9), default=0.0, show_default=True,
              help="Share of rows kept out of the whole search, to report the refitted network's test metrics.")
@click.option("--n-jobs", type=click.IntRange(1), default=1, show_default=True, help="Trials in parallel.")
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
              help="Start N `archtune worker` processes besides this one (the storage is then OUT/study.log, "
                   "a journal file, unless --storage is given).")
@click.option("--ray", "ray_address", metavar="ADDRESS",
              help="Run the --workers as Ray tasks: 'local' for a Ray started for the run, else a cluster address.")
@click.option("--population/--no-population", default=True, show_default=True,
              help="Train trials in cohorts of 8 as one stacked model (faster for small networks); "
                   "--no-population trains one trial at a time.")
@click.option("--refit/--no-refit", default=None,
              help="Retrain the best configuration on all rows (--refit), or keep the best trial's own network "
                   "with its best validation epoch (--no-refit). Default: refit when that takes at most a quarter "
                   "of a time budget.")
@click.option("--ensemble/--no-ensemble", default=None,
              help="Select an ensemble of the best networks and the baselines after the search (used when it "
                   "holds up on validation rows it was not selected on); saved in OUT/ensemble. Default: on, "
                   "except with --prefer 'smallest within T'.")
@click.option("--bagging", type=click.IntRange(2, 20), default=None,
              help="Replace the refit by a bag of the best configuration: K networks on K folds of all rows, "
                   "scored out of fold, predicting their average (saved in OUT/ensemble).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True,
              help="Directory for the best model bundle, the study and the leaderboard.")
@click.option("--quiet", "-q", is_flag=True, help="No live progress.")
@click.option("--report/--no-report", "write_report", default=True, show_default=True,
              help="Write OUT/report.html (verdict, leaderboard, curves, history, importances, held-out rows).")
@click.option("--mlflow", "mlflow_uri", metavar="URI",
              help="Log the search to MLflow (a parent run, a nested run per trial and baseline; OUT's files as "
                   "artifacts): file:///path/mlruns, a directory, sqlite:///mlflow.db or http://host:5000.")
@click.option("--tensorboard", "tensorboard_dir", metavar="DIR",
              help="Write TensorBoard event files to DIR: each trial's curves, and the trials' values.")
def tune(data: str, target: str | None, task: str, budget: str, trials: int | None, sampler: str, pruner: str,
         min_resources: str, objectives: str, prefer: str, preset: str, space_items: tuple[str, ...], settings: tuple[str, ...],
         init_from: str | None, cv: int | None,
         scoring: str | None, storage: str | None, study_name: str, resume: bool, baselines: bool,
         holdout: float, n_jobs: int, workers: int, ray_address: str | None, population: bool, refit: bool | None,
         ensemble: bool | None, bagging: int | None, seed: int, out: Path, quiet: bool, write_report: bool,
         mlflow_uri: str | None, tensorboard_dir: str | None) -> None:
    """Search network architectures and training settings for DATA, keep the best."""
    from archtune.data.datasets import BUILTIN_DATASETS, BUILTIN_TARGET
    from archtune.data.readers import check_source

    check_source(data)
    require_tracking(mlflow_uri, tensorboard_dir)
    if target is None:
        if data not in BUILTIN_DATASETS:
            raise InvalidParameterError("--target is required: name the column to predict")
        target = BUILTIN_TARGET
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"--out {out}: exists and is not a directory")
    from archtune.run_folder import save_search_run
    from archtune.task import task_named
    from archtune.tune.config import SearchConfig

    budget_value: str | int = trials if trials is not None else budget
    overrides = parse_space(space_items, settings)
    if init_from is not None:
        from archtune.tune.space import Fixed

        overrides["init_from"] = Fixed(init_from)  # a path: the study keeps it, --resume reads it again
    params = {"budget": budget_value, "sampler": sampler, "pruner": None if pruner == "none" else pruner,
              "objectives": objectives, "prefer": prefer, "cv": cv, "scoring": scoring, "storage": storage,
              "study_name": study_name, "n_jobs": workers or n_jobs, "backend": _backend(workers, ray_address),
              "population": population, "refit": "auto" if refit is None else refit, "ensemble": ensemble,
              "bagging": bagging, "baselines": baselines, "validation_fraction": 0.2,
              "min_resources": _min_resources(min_resources), "random_state": seed, "device": "auto",
              "verbose": 0 if quiet else 1, "mlflow_uri": mlflow_uri, "tensorboard_dir": tensorboard_dir}
    _check_before_reading(params, task, preset, overrides)
    with _removed_unless_trials(out):
        if params["storage"] is None and workers:
            from archtune.tune.storages import journal_url

            out.mkdir(parents=True, exist_ok=True)
            params["storage"] = journal_url(out / JOURNAL_FILE)  # processes share a journal, not an SQLite file
        if params["storage"] is None:
            out.mkdir(parents=True, exist_ok=True)
            params["storage"] = f"sqlite:///{(out / STUDY_FILE).resolve()}"
        storage = params["storage"]
        existing = open_existing_study(storage, study_name)
        if resume and existing is None:
            raise InvalidParameterError(f"--resume: no study named {study_name!r} in {storage} to continue")
        if not resume and existing is not None and existing.trials:
            raise InvalidParameterError(f"a study named {study_name!r} already exists in {storage} with "
                                        f"{len(existing.trials)} trials; pass --resume to continue it, or choose "
                                        "another --out or --study")

        frame, y, task_name, name = load_training_table(data, target, task)
        X = check_values(frame, name)  # read and typed once (errors name the file): the search reads its kinds
        the_task = task_named(task_name)
        config = SearchConfig.from_params(the_task, {**params, "space": _space_for(preset, overrides, the_task)})
        if init_from is not None:
            from archtune.tune.transfer import dropped_note

            note = dropped_note(config.space, init_from)
            if note:
                click.echo(f"archtune: note: {note}", err=True)
        X_fit, X_hold, y_fit, y_hold = holdout_split(X, y, holdout, the_task.name, seed)
        X_hold = None if X_hold is None else X_hold.rows  # predicted on as a user's table
        from archtune.auto import AutoNeuralClassifier, AutoNeuralRegressor

        model = (AutoNeuralClassifier if the_task.is_classification else AutoNeuralRegressor)(**config.params())
        click.echo(f"data: {name}: {X_fit.n_rows} rows for the search, {X.n_columns} features; "
                   f"budget {budget_value if config.trials is None else f'{config.trials} trials'}; "
                   f"study {study_name!r} in {storage}")
        started = time.perf_counter()
        model.fit(X_fit, y_fit)
        seconds = time.perf_counter() - started
        board = model.leaderboard_
        metric = config.scoring_name
        render_leaderboard(board)
        sentence = verdict(board, metric)
        if config.several and model.best_trial_.values:  # the network of the front prefer kept
            kept = model.best_trial_
            sentence += (f" Kept by prefer={prefer!r}: network #{kept.number} ({metric} {kept.values[0]:.4f}, "
                         f"{config.objectives[1]} {kept.values[1]:.4g}).")
        click.echo(sentence)
        split = model.study_.user_attrs.get("time_split")
        if split:
            click.echo("time: " + ", ".join(f"{name.replace('_', ' ')} {value:.1f} s" for name, value in split.items()))
        stopped = stopping_line(model.study_)
        if stopped:
            click.echo(stopped)
        metadata: dict[str, Any] = {
            "data": str(data), "target": target, "task": the_task.name, "search_seconds": seconds, "metric": metric,
            "best_score": model.best_score_, "best_params": model.best_params_, "verdict": sentence,
            "validation": {f"val_{metric}": model.best_score_},
            "network": model.study_.user_attrs.get("saved_network", {}).get("text"),
            "stopped": stopped or None,  # budget="auto": why the search ended (archtune info shows it)
            # The command's own settings, so that the report can say how to run it again.
            "settings": {"budget": budget_value, "sampler": sampler, "pruner": pruner, "preset": preset,
                         "space": list(space_items), "set": list(settings), "init_from": init_from, "cv": cv,
                         "scoring": scoring, "holdout": holdout, "seed": seed, "baselines": baselines,
                         "population": population, "refit": refit, "ensemble": ensemble, "bagging": bagging,
                         "n_jobs": n_jobs, "objectives": list(config.objectives), "prefer": prefer},
            "study": study_name}
        report = save_search_run(model, out, metadata, X_hold, y_hold, seed)
        final = model.final_estimator_
        what = ("the best network" if final is model.best_estimator_
                else f"the ensemble that predicts ({final.summary()}) and the best network")
        if X_hold is not None:
            echo_metrics(f"held-out ({len(X_hold)} rows, {_predicts(model)})", report["holdout"])
            if "holdout_network" in report:
                echo_metrics(f"held-out ({len(X_hold)} rows, best network alone)", report["holdout_network"])
        click.echo(f"saved {what} to {out} (use: archtune predict {out} DATA); "
                   f"leaderboard in {out / LEADERBOARD_FILE}")
        if storage.startswith("sqlite"):
            click.echo(f"browse the study: optuna-dashboard {storage}")
    if write_report:
        report_after_run(out)
    if mlflow_uri is not None and model.mlflow_run_id_ is not None:
        from archtune.tracking.search_tracker import log_run_directory

        logged = log_run_directory(mlflow_uri, model.mlflow_run_id_, out)
        if logged:
            click.echo(f"logged the search to MLflow at {mlflow_uri} (run {model.mlflow_run_id_}, {len(logged)} "
                       "files of OUT under run/)")


def _check_before_reading(params: dict[str, Any], task: str, preset: str, overrides: dict[str, Any]) -> None:
    """Every setting checked before the data is read. With --task auto the task is not known
    yet: settings valid for either task pass (``--set loss=huber`` is a regression loss), and
    are checked again once it is."""
    from archtune.errors import ArchtuneError
    from archtune.task import TASKS
    from archtune.tune.config import SearchConfig

    from archtune.data.target import TARGETS

    errors: dict[str, ArchtuneError] = {}
    for candidate in ([TASKS[task]] if task != "auto" else list(TASKS.values())):
        try:
            SearchConfig.from_params(candidate, {**params, "space": _space_for(preset, overrides, candidate)})
            return
        except InvalidParameterError as exc:
            errors[candidate.neural_class.target_kind] = exc
    # A fixed loss says the task (--set loss=quantile is a regression's): its error is the one
    # that names what is wrong, not the other task's refusal of that loss.
    loss = getattr(overrides.get("loss"), "value", overrides.get("loss"))  # --set gives a Fixed
    owner = [kind for kind in errors if isinstance(loss, str) and loss in TARGETS[kind].losses]
    raise errors[owner[0]] if owner else next(iter(errors.values()))


def _predicts(model: Any) -> str:
    """What predicts, in words: "ensemble of 2 networks and lightgbm", "refitted best network"."""
    final = model.final_estimator_
    if final is not model.best_estimator_:
        return final.summary()
    saved = model.study_.user_attrs.get("saved_network", {})
    return "refitted best network" if saved.get("source") == "refit" else "best trial's network"
