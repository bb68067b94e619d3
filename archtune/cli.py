"""The ``archtune`` command: fit, predict and info.

Every deliberate error is printed as one line, ``archtune: error: ...``, with exit code 2.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from archtune.data.preprocess import row_label
from archtune.errors import ArchtuneError, DataError, InvalidParameterError, nearest

EXIT_USAGE = 2


# --------------------------------------------------------------------------- helpers


def parse_value(text: str) -> Any:
    """A ``--set`` value: int, float, bool, None, a tuple of numbers (``256,128``) or a string."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if "," in text:
        return tuple(parse_value(part) for part in text.split(",") if part.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_settings(settings: tuple[str, ...], estimator_cls: type) -> dict[str, Any]:
    known = sorted(estimator_cls().get_params())
    params: dict[str, Any] = {}
    for item in settings:
        if "=" not in item:
            raise InvalidParameterError(f"--set expects PARAM=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if key not in known:
            raise InvalidParameterError(f"unknown parameter {key!r}{nearest(key, known)}; "
                                        f"see `archtune fit --help` for the list")
        params[key] = parse_value(value)
        if key == "hidden_sizes" and isinstance(params[key], int) and not isinstance(params[key], bool):
            params[key] = (params[key],)  # "--set hidden_sizes=64" means one hidden layer of 64
    return params


def check_settings(settings: tuple[str, ...], task: str) -> None:
    """Validate ``--set`` values before any data is read.

    With ``--task auto`` the task is not known yet: a value is accepted when it is valid for
    either estimator (``loss=huber`` is a regression loss), and checked again once it is.
    """
    from archtune.estimators import NeuralClassifier, NeuralRegressor

    candidates = {"classification": [NeuralClassifier], "regression": [NeuralRegressor]}.get(
        task, [NeuralClassifier, NeuralRegressor])
    first_error: ArchtuneError | None = None
    for cls in candidates:
        try:
            cls(**parse_settings(settings, cls))._validate_params()
            return
        except InvalidParameterError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def split_target(frame: pd.DataFrame, target: str, source: str) -> tuple[pd.DataFrame, pd.Series]:
    if target not in frame.columns:
        columns = [str(c) for c in frame.columns]
        hint = nearest(target, columns)
        shown = ", ".join(repr(c) for c in columns[:8]) + (" ..." if len(columns) > 8 else "")
        raise DataError(f"{source}: target column {target!r} not found{hint}; columns are {shown}")
    X = frame.drop(columns=[target])
    if X.shape[1] == 0:
        raise DataError(f"{source}: no feature columns besides the target {target!r}")
    return X, frame[target]


def check_target(y: pd.Series, source: str) -> None:
    """Reject missing and infinite targets, naming the file, the column and the row."""
    missing = y.isna().to_numpy()
    if missing.any():
        pos = int(np.flatnonzero(missing)[0])
        raise DataError(f"{source}: target column {y.name!r} {row_label(y.index, pos)}: the target is missing "
                        f"(NaN or empty) in {int(missing.sum())} row(s); drop or fill those rows")
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        inf = np.isinf(y.to_numpy(dtype="float64"))
        if inf.any():
            pos = int(np.flatnonzero(inf)[0])
            raise DataError(f"{source}: target column {y.name!r} {row_label(y.index, pos)}: the target is "
                            f"infinite ({y.iloc[pos]}); fix or remove that row")


def check_task_target(y: pd.Series, task: str, source: str) -> None:
    """The target suits the task: two classes or more, or numbers for regression."""
    if task == "classification":
        n_classes = y.nunique()
        if n_classes < 2:
            value = y.iloc[0]
            value = value.item() if isinstance(value, np.generic) else value
            raise DataError(f"{source}: target column {y.name!r} has only one class ({value!r}) in all "
                            f"{len(y)} rows; a classifier needs at least 2 classes")
        return
    parsed = pd.to_numeric(y, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: target column {y.name!r} {row_label(y.index, pos)}: {y.iloc[pos]!r} is not "
                        "a number (regression needs a numeric target; use --task classification for labels)")


def select_features(frame: pd.DataFrame, model: Any, source: str) -> pd.DataFrame:
    """The model's feature columns of ``frame``, by name and in the fitted order."""
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is None:
        if frame.shape[1] != model.n_features_in_:
            raise DataError(f"{source}: has {frame.shape[1]} feature columns but the model expects "
                            f"{model.n_features_in_}")
        return frame
    fitted = [str(c) for c in fitted]
    given = [str(c) for c in frame.columns]
    missing = [c for c in fitted if c not in given]
    if missing:
        unseen = [c for c in given if c not in fitted]
        hint = nearest(missing[0], unseen) if unseen else ""
        shown = ", ".join(repr(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"{source}: missing {len(missing)} column(s) the model was trained with: {shown}{hint}")
    extra = [c for c in given if c not in fitted]
    if extra:
        shown = ", ".join(repr(c) for c in extra[:5]) + (" ..." if len(extra) > 5 else "")
        click.echo(f"archtune: note: ignoring {len(extra)} column(s) the model was not trained with: {shown}",
                   err=True)
    frame = frame.set_axis(given, axis=1)
    return frame[fitted]


def infer_task(y: pd.Series) -> tuple[str, str]:
    """("classification" | "regression", reason)."""
    values = y.dropna()
    if not pd.api.types.is_numeric_dtype(values) or values.dtype == bool:
        return "classification", f"target {y.name!r} holds labels"
    n_unique = values.nunique()
    integral = np.all(np.mod(values.to_numpy(dtype="float64"), 1) == 0)
    if integral and n_unique <= 20:
        return "classification", f"target {y.name!r} has {n_unique} integer values"
    return "regression", f"target {y.name!r} has {n_unique} distinct numeric values"


def holdout_split(X: pd.DataFrame, y: pd.Series, fraction: float, task: str, seed: int):
    from sklearn.model_selection import train_test_split

    if fraction <= 0:
        return X, None, y, None
    stratify = None
    if task == "classification":
        counts = y.value_counts()
        if counts.min() >= 2 and int(round(fraction * len(y))) >= len(counts):
            stratify = y
    return train_test_split(X, y, test_size=fraction, random_state=seed, stratify=stratify)


def holdout_metrics(model: Any, X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    from sklearn import metrics

    if task == "classification":
        proba = model.predict_proba(X)
        pred = model.classes_[proba.argmax(axis=1)]
        out = {"accuracy": metrics.accuracy_score(y, pred),
               "balanced_accuracy": metrics.balanced_accuracy_score(y, pred),
               "log_loss": metrics.log_loss(y, proba, labels=model.classes_)}
        if len(model.classes_) == 2:
            out["roc_auc"] = metrics.roc_auc_score(y == model.classes_[1], proba[:, 1])
        return {k: float(v) for k, v in out.items()}
    pred = model.predict(X)
    return {"r2": float(metrics.r2_score(y, pred)),
            "rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
            "mae": float(metrics.mean_absolute_error(y, pred))}


def _echo_metrics(title: str, values: dict[str, float]) -> None:
    click.echo(f"{title}: " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))


# --------------------------------------------------------------------------- commands


class ArchtuneGroup(click.Group):
    """Turns archtune's own errors into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArchtuneError as exc:
            click.echo(f"archtune: error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except OSError as exc:  # disk full, permission denied while writing results
            click.echo(f"archtune: error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
            ctx.exit(EXIT_USAGE)


@click.group(cls=ArchtuneGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archtune")
def cli() -> None:
    """archtune: neural networks as off-the-shelf as gradient boosting."""


@cli.command(epilog="""\b
Examples:
  archtune fit breast_cancer --target target --out runs/bc
  archtune fit ../shared/datasets/tabular/magic.tsv.gz --target target \\
      --set hidden_layers=3 --set units=128 --set dropout=0.2 --out runs/magic
Built-in datasets: breast_cancer, diabetes, digits, iris, wine (target column "target").""")
@click.argument("data")
@click.option("--target", "-t", help="Name of the target column (default for built-in datasets: target).")
@click.option("--task", type=click.Choice(["auto", "classification", "regression"]), default="auto",
              show_default=True, help="What to predict; auto looks at the target column.")
@click.option("--set", "settings", multiple=True, metavar="PARAM=VALUE",
              help="Set an estimator parameter, e.g. --set units=128 --set hidden_sizes=256,128. Repeatable.")
@click.option("--holdout", type=click.FloatRange(0, 0.9), default=0.2, show_default=True,
              help="Share of rows kept out of training to report honest metrics (0 to train on all rows).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True,
              help="Directory to save the model bundle in.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def fit(data: str, target: str | None, task: str, settings: tuple[str, ...], holdout: float, seed: int,
        out: Path, quiet: bool) -> None:
    """Train one network on DATA (a CSV/TSV/Parquet file, or a built-in dataset name)."""
    from archtune.data.datasets import BUILTIN_DATASETS, BUILTIN_TARGET
    from archtune.data.readers import check_source, load_table, source_name

    check_source(data)  # a mistyped path fails at once, before PyTorch is even imported
    from archtune.data.preprocess import infer_column_kinds
    from archtune.estimators import NeuralClassifier, NeuralRegressor
    from archtune.io import atomic_write_bytes, save

    if target is None:
        if data not in BUILTIN_DATASETS:
            raise InvalidParameterError("--target is required: name the column to predict")
        target = BUILTIN_TARGET
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"--out {out}: exists and is not a directory")
    # Parameters are checked before the data is read: a typo should not cost a long load.
    check_settings(settings, task)
    frame = load_table(data)
    name = source_name(data)
    X, y = split_target(frame, target, name)
    check_target(y, name)
    if task == "auto":
        task, reason = infer_task(y)
        click.echo(f"task: {task} ({reason}; use --task to override)")
    check_task_target(y, task, name)
    cls = NeuralClassifier if task == "classification" else NeuralRegressor
    params = {"random_state": seed, "verbose": 0 if quiet else 1, **parse_settings(settings, cls)}
    model = cls(**params)
    try:
        model._validate_params()
    except InvalidParameterError as exc:
        other, other_task = ((NeuralRegressor, "regression") if task == "classification"
                             else (NeuralClassifier, "classification"))
        try:
            other(**parse_settings(settings, other))._validate_params()
        except InvalidParameterError:
            raise exc from None
        raise InvalidParameterError(f"{exc} (that setting is for {other_task}, but the task is {task}; "
                                    f"pass --task {other_task} if that is what you want)") from None
    # Every feature value is checked on the whole file before training, so that a stray word
    # or an infinity is reported with the file's name and row, not minutes later as "X".
    infer_column_kinds(X, where=name)
    X_fit, X_hold, y_fit, y_hold = holdout_split(X, y, holdout, task, seed)
    click.echo(f"data: {name}: {len(X_fit)} training rows, {0 if X_hold is None else len(X_hold)} held out, "
               f"{X.shape[1]} features")
    started = time.perf_counter()
    model.fit(X_fit, y_fit)
    seconds = time.perf_counter() - started
    best = model.history_.iloc[model.best_epoch_ - 1] if model.best_epoch_ else model.history_.iloc[-1]
    click.echo(f"trained {len(model.history_)} epochs in {seconds:.1f}s; best epoch {model.best_epoch_}")
    report: dict[str, Any] = {"data": str(data), "target": target, "task": task, "fit_seconds": seconds,
                              "validation": {k: float(best[k]) for k in best.index if k.startswith("val_")}}
    if report["validation"]:
        _echo_metrics("validation (early-stopping split)", report["validation"])
    if X_hold is not None:
        report["holdout"] = holdout_metrics(model, X_hold, y_hold, task)
        _echo_metrics(f"held-out ({len(X_hold)} rows)", report["holdout"])
    save(model, out, metadata=report)
    atomic_write_bytes(out / "metrics.json", json.dumps(report, indent=2).encode())
    click.echo(f"saved the model bundle to {out} (use: archtune predict {out} DATA)")


@cli.command(epilog="""\b
Examples:
  archtune predict runs/bc breast_cancer -o predictions.csv
  archtune predict runs/magic new_rows.csv          (CSV to standard output)""")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("data")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write predictions to this CSV file.")
def predict(bundle: Path, data: str, output: Path | None) -> None:
    """Predict DATA with the model saved in BUNDLE (the target column, if present, is ignored)."""
    from archtune.data.readers import load_table, source_name
    from archtune.io import atomic_write_bytes, load

    model = load(bundle)
    frame = load_table(data)
    name = source_name(data)
    target = model.bundle_metadata_.get("target")
    if target in frame.columns:
        frame = frame.drop(columns=[target])
    frame = select_features(frame, model, name)
    # Values are checked here so that errors name the file and its rows.
    model.preprocessor_.transform(frame.set_axis(model.preprocessor_.columns_, axis=1), where=name)
    pred = model.predict(frame)
    if pred.ndim == 2:  # a multi-output regressor saved from Python: one column per output
        result = pd.DataFrame(pred, columns=[f"prediction_{j}" for j in range(pred.shape[1])], index=frame.index)
    else:
        result = pd.DataFrame({"prediction": pred}, index=frame.index)
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(frame)
        for j, label in enumerate(model.classes_):
            result[f"proba_{label}"] = proba[:, j]
    buffer = io.StringIO()
    result.to_csv(buffer, index=False)
    if output is None:
        sys.stdout.write(buffer.getvalue())
    else:
        atomic_write_bytes(output, buffer.getvalue().encode())
        click.echo(f"wrote {len(result)} predictions to {output}", err=True)


@cli.command(epilog="""\b
Example:
  archtune info runs/bc""")
@click.argument("bundle", type=click.Path(path_type=Path))
def info(bundle: Path) -> None:
    """Describe the model saved in BUNDLE: task, architecture, training, metrics."""
    from archtune.io import load

    model = load(bundle)
    meta = model.bundle_metadata_
    n_params = sum(p.numel() for p in model.module_.parameters())
    mc = model.model_config_
    click.echo(f"model:        {type(model).__name__} ({mc.arch}), {n_params:,} parameters")
    click.echo(f"layers:       {model.input_spec_.width} inputs -> {' -> '.join(map(str, mc.hidden_sizes)) or '(none)'} "
               f"-> {model.module_.head.out_features} outputs")
    click.echo(f"activation:   {mc.activation} (initializer {mc.initializer}), dropout {mc.dropout}, norm {mc.norm}")
    p = model.get_params()
    click.echo(f"training:     {p['optimizer']} lr {p['learning_rate']:g}, schedule {p['lr_schedule']}, "
               f"batch {p['batch_size']}, {len(model.history_)} epochs (best {model.best_epoch_})")
    click.echo(f"features:     {model.n_features_in_}"
               + (f" ({', '.join(map(str, model.feature_names_in_[:6]))}{' ...' if model.n_features_in_ > 6 else ''})"
                  if hasattr(model, "feature_names_in_") else ""))
    if hasattr(model, "classes_"):
        click.echo(f"classes:      {', '.join(map(str, model.classes_[:10]))}")
    if meta.get("target"):
        click.echo(f"target:       {meta['target']} ({meta.get('task')}), trained on {meta.get('data')}")
    for key in ("validation", "holdout"):
        if meta.get(key):
            click.echo(f"{key + ':':<13} " + "  ".join(f"{k} {v:.4f}" for k, v in meta[key].items()))


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="archtune")


if __name__ == "__main__":
    main()
