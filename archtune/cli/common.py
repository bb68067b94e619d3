"""Helpers shared by the commands: --set parsing, target checks, task inference, hold-out,
the study a search stores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
import numpy as np
import pandas as pd

from archtune.data.frames import column_differences, list_columns, row_label
from archtune.errors import ArchtuneError, DataError, InvalidParameterError, nearest

if TYPE_CHECKING:  # the table module imports PyTorch: commands import it when they read data
    from archtune.data.table import Table

# The study `archtune tune` stores its trials in, and `archtune leaderboard` reads by default.
DEFAULT_STUDY = "archtune"


def parse_value(text: str) -> Any:
    """A ``--set`` value: int, float, bool, None, a tuple of numbers (``256,128``) or a string."""
    low = text.strip().lower()
    if low[:1] in ("{", "["):  # a dict or list, e.g. inputs={"wide": ["a", "b"]}
        import json

        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidParameterError(f"--set value {text!r} is not valid JSON ({exc.msg} at column {exc.colno})")
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


def setting_value(key: str, text: str) -> Any:
    """A ``--set`` value: `parse_value`'s, except that ``loss=module:function`` names a loss
    written in Python (archtune.custom_loss), imported here."""
    value = parse_value(text)
    if key == "loss" and isinstance(value, str) and ":" in value:
        from archtune.custom_loss import resolve
        from archtune.errors import BundleError

        try:
            return resolve(value, "--set loss")
        except BundleError as exc:
            raise InvalidParameterError(str(exc)) from None
    return value


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
                                        f"see `archtune fit --help` for the list of parameters")
        params[key] = setting_value(key, value)
        if key == "hidden_sizes" and isinstance(params[key], int) and not isinstance(params[key], bool):
            params[key] = (params[key],)  # "--set hidden_sizes=64" means one hidden layer of 64
    return params


def check_settings(settings: tuple[str, ...], task: str) -> None:
    """Validate ``--set`` values before any data is read.

    With ``--task auto`` the task is not known yet: a value is accepted when it is valid for
    either estimator (``loss=huber`` is a regression loss), and checked again once it is.
    """
    from archtune.estimators import NeuralClassifier, NeuralRegressor
    from archtune.parameters import check_params

    candidates = {"classification": [NeuralClassifier], "regression": [NeuralRegressor]}.get(
        task, [NeuralClassifier, NeuralRegressor])
    first_error: ArchtuneError | None = None
    for cls in candidates:
        try:
            check_params(cls(**parse_settings(settings, cls)))
            return
        except InvalidParameterError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def estimator_for(data: str, target: str, task: str, settings: tuple[str, ...],
                  extra: dict[str, Any]) -> tuple[Any, Table, pd.Series, str, str]:
    """The estimator ``--set`` describes for DATA, with the data read and checked; returns
    (estimator, X as a typed `Table` named after the file, y, task, source name)."""
    from archtune.estimators import NeuralClassifier, NeuralRegressor
    from archtune.parameters import check_params

    # Parameters are checked before the data is read: a typo should not cost a long load.
    check_settings(settings, task)
    X, y, task, name = load_training_table(data, target, task)
    cls = NeuralClassifier if task == "classification" else NeuralRegressor
    model = cls(**{**extra, **parse_settings(settings, cls)})
    try:
        check_params(model)
    except InvalidParameterError as exc:
        other, other_task = ((NeuralRegressor, "regression") if task == "classification"
                             else (NeuralClassifier, "classification"))
        try:
            check_params(other(**parse_settings(settings, other)))
        except InvalidParameterError:
            raise exc from None
        raise InvalidParameterError(f"{exc} (that setting is for {other_task}, but the task is {task}; "
                                    f"pass --task {other_task} if that is what you want)") from None
    return model, check_values(X, name), y, task, name


def check_values(X: pd.DataFrame, name: str) -> Table:
    """The file's features as a `Table`, every value checked on the whole file before training
    (`Table.typed`), so that a stray word or an infinity is reported with the file's name and
    row, not minutes later as "X". The fit, the search and the pretraining read the table's
    kinds instead of inferring them again (the warning about dropped empty columns is given
    here, once)."""
    from archtune.data.table import Table

    return Table.read(X, name).typed()


def load_training_table(data: str, target: str, task: str) -> tuple[pd.DataFrame, pd.Series, str, str]:
    """Read DATA, split off the target, check it, and settle the task ("auto" is inferred and
    said); returns (X, y, task, source name)."""
    from archtune.data.readers import load_table, source_name

    name = source_name(data)
    X, y = load_table(data, target=target)
    X = resolve_image_paths(X, data)
    check_target(y, name)
    if task == "auto":
        task, reason = infer_task(y)
        click.echo(f"task: {task} ({reason}; use --task to override)")
    check_task_target(y, task, name)
    return X, y, task, name


def resolve_image_paths(frame: pd.DataFrame, data: str) -> pd.DataFrame:
    """Relative paths in a column of image files are relative to the data file's folder."""
    from pathlib import Path

    from archtune.data.images import looks_like_image_paths

    folder = Path(data).resolve().parent
    if not Path(data).is_file():
        return frame  # a built-in dataset
    out = frame
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) and looks_like_image_paths(frame[column]):
            out = out.copy() if out is frame else out
            out[column] = [v if not isinstance(v, str) or Path(v).is_absolute() else str(folder / v)
                           for v in frame[column]]
    return out


def check_target(y: pd.Series | pd.DataFrame, source: str) -> None:
    """Reject missing and infinite targets, naming the file, the column and the row (each
    column of a target of several)."""
    if isinstance(y, pd.DataFrame):
        for column in y.columns:
            check_target(y[column], source)
        return
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


def check_task_target(y: pd.Series | pd.DataFrame, task: str, source: str) -> None:
    """The target suits the task: two classes or more, or numbers for regression; a target of
    several columns is a multi-label one of 0/1 columns (classification) or several outputs."""
    if isinstance(y, pd.DataFrame):
        for column in y.columns:
            values = y[column]
            if task == "classification" and not values.isin([0, 1]).all():
                pos = int(np.flatnonzero(~values.isin([0, 1]).to_numpy())[0])
                raise DataError(f"{source}: target column {column!r} {row_label(y.index, pos)}: {values.iloc[pos]!r} "
                                "is not 0 or 1; a classification target of several columns is multi-label, one 0/1 "
                                "column per label")
            if task != "classification":
                check_task_target(values, task, source)
        return
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
    if len(y) > 1 and parsed.nunique() == 1:
        raise DataError(f"{source}: target column {y.name!r} is constant ({parsed.iloc[0]:g} in all {len(y)} rows); "
                        "a regressor needs a target that varies")


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
    missing, hint, extra = column_differences(fitted, given)
    if missing:
        raise DataError(f"{source}: missing {len(missing)} column(s) the model was trained with: "
                        f"{list_columns(missing)}{hint}")
    if extra:
        click.echo(f"archtune: note: ignoring {len(extra)} column(s) the model was not trained with: "
                   f"{list_columns(extra)}", err=True)
    frame = frame.set_axis(given, axis=1)
    return frame[fitted]


def infer_task(y: pd.Series | pd.DataFrame) -> tuple[str, str]:
    """("classification" | "regression", reason); several columns all of 0/1 values are a
    multi-label classification, other columns several regression outputs."""
    if isinstance(y, pd.DataFrame):
        if all(y[c].dropna().isin([0, 1]).all() for c in y.columns):
            return "classification", f"the {y.shape[1]} target columns hold 0/1 values (multi-label)"
        return "regression", f"the {y.shape[1]} target columns are several outputs"
    values = y.dropna()
    if not pd.api.types.is_numeric_dtype(values) or values.dtype == bool:
        return "classification", f"target {y.name!r} holds labels"
    n_unique = values.nunique()
    integral = np.all(np.mod(values.to_numpy(dtype="float64"), 1) == 0)
    if integral and n_unique <= 20:
        return "classification", f"target {y.name!r} has {n_unique} integer values"
    return "regression", f"target {y.name!r} has {n_unique} distinct numeric values"


def holdout_split(X: pd.DataFrame | Table, y: pd.Series, fraction: float, task: str, seed: int):
    """(X_fit, X_hold, y_fit, y_hold): ``fraction`` of the rows held out (stratified where it
    can be); the parts of a `Table` are Tables (`Table.take`: kinds and source kept)."""
    from sklearn.model_selection import train_test_split

    from archtune.data.table import Table

    if fraction <= 0:
        return X, None, y, None
    stratify = None
    if task == "classification" and not isinstance(y, pd.DataFrame):  # multi-label rows: not stratified
        counts = y.value_counts()
        if counts.min() >= 2 and int(round(fraction * len(y))) >= len(counts):
            stratify = y
    if isinstance(X, Table):  # the same rows as a split of the DataFrame: the split reads the row count
        fit, hold, y_fit, y_hold = train_test_split(np.arange(X.n_rows), y, test_size=fraction, random_state=seed,
                                                    stratify=stratify)
        return X.take(fit), X.take(hold), y_fit, y_hold
    return train_test_split(X, y, test_size=fraction, random_state=seed, stratify=stratify)


def echo_metrics(title: str, values: dict[str, float]) -> None:
    click.echo(f"{title}: " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))


class ParameterHelp(click.Command):
    """A command whose ``--help`` ends with every estimator parameter ``--set`` accepts and its
    default, read from the estimator itself (so the list cannot go stale); PyTorch is imported
    only when the help is shown."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        from archtune.estimators import NeuralClassifier

        defaults = NeuralClassifier().get_params()
        items = [f"{name}={_shown_default(value)}" for name, value in sorted(defaults.items())]
        formatter.write_paragraph()
        formatter.write_text("Parameters for --set PARAM=VALUE (with their defaults; README.md explains each):")
        with formatter.indentation():
            formatter.write_text("  ".join(items))


def open_existing_study(storage: str, name: str) -> Any | None:
    """The study ``name`` stored in ``storage`` (an SQLite or journal:/// URL too), None when
    there is none."""
    import optuna

    from archtune.tune.study import make_storage

    try:
        return optuna.load_study(study_name=name, storage=make_storage(storage))  # journal:/// too
    except KeyError:
        return None


def _shown_default(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "None" if value is None else str(value)


def require_tracking(mlflow_uri: str | None, tensorboard_dir: str | None) -> None:
    """--mlflow and --tensorboard: their packages are checked before any data is read, and a
    missing one is a one-line error naming the extra to install (exit code 2)."""
    if mlflow_uri is None and tensorboard_dir is None:
        return
    from archtune.cli.group import EXIT_USAGE
    from archtune.tracking.search_tracker import check_tracking

    try:
        check_tracking(mlflow_uri, tensorboard_dir)
    except ImportError as exc:
        click.echo(f"archtune: error: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None
