"""``archtune fit``, ``predict`` and ``info``: one network, its bundle, its predictions."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from archtune.cli.group import cli
from archtune.cli.report import report_after_run
from archtune.cli.common import (
    echo_metrics,
    estimator_for,
    resolve_image_paths,
    holdout_split,
    require_tracking,
    select_features,
    ParameterHelp,
)
from archtune.cli.lineage import lineage_lines
from archtune.cli.pretrain import pretrained_info
from archtune.errors import DataError, InvalidParameterError
from archtune.files import json_bytes
from archtune.run_folder import METRICS_FILE, holdout_metrics, save_evaluation, save_lr_finder


@cli.command(cls=ParameterHelp, epilog="""\b
Examples:
  archtune fit breast_cancer --target target --out runs/bc
  archtune fit ../shared/datasets/tabular/magic.tsv.gz --target target \\
      --set hidden_layers=3 --set units=128 --set dropout=0.2 --out runs/magic
  archtune fit small.csv --target y --init-from runs/magic --freeze body --out runs/small
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
@click.option("--init-from", "init_from", type=click.Path(path_type=Path), default=None,
              help="Start from a trained network: a run of `archtune fit`/`tune`, a model bundle, or a bundle of "
                   "`archtune pretrain` (transfer learning; the init_from parameter).")
@click.option("--freeze", default=None, metavar="body|N",
              help="With --init-from: train the new head with the body (or the first N layers) frozen first.")
@click.option("--freeze-epochs", "freeze_epochs", default=None, metavar="N|none",
              help="With --freeze: epochs of the frozen phase before everything is fine-tuned (default 10; none: "
                   "frozen throughout).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--report/--no-report", "write_report", default=True, show_default=True,
              help="Write OUT/report.html (learning curves, held-out evaluation, network, settings).")
@click.option("--mlflow", "mlflow_uri", metavar="URI",
              help="Log the fit to MLflow (training settings, per-epoch curves, the bundle as artifacts): "
                   "file:///path/mlruns, a directory, sqlite:///mlflow.db or http://host:5000.")
@click.option("--tensorboard", "tensorboard_dir", metavar="DIR", help="Write the per-epoch curves to DIR for "
              "TensorBoard.")
def fit(data: str, target: str | None, task: str, settings: tuple[str, ...], holdout: float, seed: int,
        out: Path, init_from: Path | None, freeze: str | None, freeze_epochs: str | None, quiet: bool,
        write_report: bool, mlflow_uri: str | None = None, tensorboard_dir: str | None = None) -> None:
    """Train one network on DATA (a CSV/TSV/Parquet file, an image folder, or a built-in dataset name)."""
    from archtune.data.datasets import BUILTIN_DATASETS, BUILTIN_TARGET
    from archtune.data.readers import check_source

    check_source(data)  # a mistyped path fails at once, before PyTorch is even imported
    require_tracking(mlflow_uri, tensorboard_dir)
    transfer = transfer_params(init_from, freeze, freeze_epochs, settings)
    from archtune.bundles.network import save
    from archtune.files import atomic_write_bytes
    from archtune.train.tracking import MLflowLogger, TensorBoardLogger

    # Made before the data is read, so that a missing package is said at once.
    trackers = ([MLflowLogger(mlflow_uri, run_name=str(out))] if mlflow_uri else []) + (
        [TensorBoardLogger(tensorboard_dir)] if tensorboard_dir else [])

    if target is None:
        if data not in BUILTIN_DATASETS:
            raise InvalidParameterError("--target is required: name the column to predict")
        target = BUILTIN_TARGET
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"--out {out}: exists and is not a directory")
    # X: the file's table, read and typed once (errors name the file); the fit reads its kinds.
    model, X, y, task, name = estimator_for(data, target, task, settings,
                                            {"random_state": seed, "verbose": 0 if quiet else 1, **transfer})
    if model.pretrain_epochs:
        from archtune.pretraining.semi_supervised import unlabeled_rows

        n_unlabeled = int(unlabeled_rows(y, model.target_kind).sum())
        if n_unlabeled:  # they would be held out and scored as a class of their own
            raise DataError(f"{name}: target column {target!r} marks {n_unlabeled} row(s) unlabeled (-1); "
                            "`archtune fit` trains and scores labelled rows: pretrain on every row with "
                            "`archtune pretrain`, then fit the labelled rows with --init-from")
    X_fit, X_hold, y_fit, y_hold = holdout_split(X, y, holdout, task, seed)
    click.echo(f"data: {name}: {X_fit.n_rows} training rows, {0 if X_hold is None else X_hold.n_rows} held out, "
               f"{X.n_columns} features")
    X_hold = None if X_hold is None else X_hold.rows  # predicted on as a user's table
    started = time.perf_counter()
    model.fit(X_fit, y_fit, callbacks=trackers)
    seconds = time.perf_counter() - started
    best = model.history_.iloc[model.best_epoch_ - 1] if model.best_epoch_ else model.history_.iloc[-1]
    click.echo(f"trained {len(model.history_)} epochs in {seconds:.1f}s; best epoch {model.best_epoch_}")
    if getattr(model, "init_report_", None):
        click.echo(f"initialised: {model.init_report_}")
    report: dict[str, Any] = {"data": str(data), "target": target, "task": task, "fit_seconds": seconds,
                              "validation": {k: float(best[k]) for k in best.index if k.startswith("val_")},
                              "settings": {"set": list(settings), "holdout": holdout, "seed": seed}}
    if report["validation"]:
        echo_metrics("validation (early-stopping split)", report["validation"])
    if X_hold is not None:
        report["holdout"] = holdout_metrics(model, X_hold, y_hold)
        echo_metrics(f"held-out ({len(X_hold)} rows)", report["holdout"])
    save(model, out, metadata=report)
    atomic_write_bytes(out / METRICS_FILE, json_bytes(report))
    click.echo(f"saved the model bundle to {out} (use: archtune predict {out} DATA)")
    save_evaluation(out, model, X_hold, y_hold, seed)
    save_lr_finder(out, model)
    if write_report:
        report_after_run(out)
    for tracker in trackers:
        if isinstance(tracker, MLflowLogger) and tracker.run_id is not None:
            tracker.log_directory(out)  # the bundle, metrics.json and report.html
            click.echo(f"logged the fit to MLflow at {mlflow_uri} (run {tracker.run_id})")


def transfer_params(init_from: Path | None, freeze: str | None, freeze_epochs: str | None,
                    settings: tuple[str, ...]) -> dict[str, Any]:
    """The estimator parameters of --init-from, --freeze and --freeze-epochs, checked before
    any data is read (each error names its option)."""
    given = {key.split("=", 1)[0].strip() for key in settings}
    for option, param, value in (("--init-from", "init_from", init_from), ("--freeze", "freeze", freeze),
                                 ("--freeze-epochs", "freeze_epochs", freeze_epochs)):
        if value is not None and param in given:
            raise InvalidParameterError(f"{option} and --set {param}=... both set {param}; give one")
    if init_from is None:
        if freeze is not None or freeze_epochs is not None:
            raise InvalidParameterError(f"{'--freeze' if freeze is not None else '--freeze-epochs'} needs "
                                        "--init-from: a trained network whose layers to freeze")
        return {}
    params: dict[str, Any] = {"init_from": str(init_from)}
    if freeze is not None:
        low = freeze.strip().lower()
        if low == "body":
            params["freeze"] = "body"
        elif low.isdigit() and int(low) >= 1:
            params["freeze"] = int(low)
        else:
            raise InvalidParameterError(f"--freeze must be 'body' or a number of layers >= 1; got {freeze!r}")
    if freeze_epochs is not None:
        low = freeze_epochs.strip().lower()
        if low == "none":
            params["freeze_epochs"] = None
        elif low.isdigit() and int(low) >= 1:
            params["freeze_epochs"] = int(low)
        else:
            raise InvalidParameterError(f"--freeze-epochs must be a number of epochs >= 1 or 'none'; "
                                        f"got {freeze_epochs!r}")
    if not init_from.exists():
        raise InvalidParameterError(f"--init-from {init_from}: no such run or bundle directory")
    from archtune.bundles.format import META_FILE

    if init_from.is_dir() and not (init_from / META_FILE).is_file():
        raise InvalidParameterError(f"--init-from {init_from}: not a run or bundle of archtune ({META_FILE} is "
                                    "missing: a run that saved no network)")
    return params


def _has_set_calibration(model: Any) -> bool:
    from archtune.prediction_sets import SetCalibration

    return isinstance(getattr(model, "conformal_", None), SetCalibration)


@cli.command(epilog="""\b
Examples:
  archtune predict runs/bc breast_cancer -o predictions.csv
  archtune predict runs/magic new_rows.csv          (CSV to standard output)
  archtune predict runs/price new_rows.csv --interval 0.9   (with 90% prediction intervals)
  archtune predict runs/bc breast_cancer --set 0.9          (with 90% prediction sets of classes)
  archtune predict runs/price new_rows.csv --threads 1 --device cpu   (serving: one thread, on a CPU)""")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("data")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write predictions to this CSV file.")
@click.option("--best-network", is_flag=True,
              help="Predict with the run's best network even when another model (an ensemble) predicts for it.")
@click.option("--interval", type=float, metavar="COVERAGE",
              help="A regressor's prediction intervals holding the true value with this probability (0.9: "
                   "90%), by split-conformal calibration on held-out rows: columns lower and upper.")
@click.option("--set", "set_coverage", type=float, metavar="COVERAGE",
              help="A classifier's prediction sets holding the true class with this probability (0.9: 90%), "
                   "by adaptive prediction sets calibrated on held-out rows: a column set_<label> per class, 1 "
                   "when the class is in the row's set.")
@click.option("--threads", "n_threads", type=click.IntRange(1), metavar="N",
              help="Threads for the prediction (torch and the native pools); default: what the work pays for.")
@click.option("--device", metavar="DEVICE",
              help="Where the networks predict: cpu, cuda, cuda:N or auto (a model trained on a GPU predicts on a "
                   "CPU); default: where the weights were loaded (cpu).")
def predict(bundle: Path, data: str, output: Path | None, best_network: bool, interval: float | None,
            set_coverage: float | None, n_threads: int | None, device: str | None) -> None:
    """Predict DATA with the model saved in BUNDLE (the target column, if present, is ignored).

    A run of `archtune tune` predicts with the model its search selected (an ensemble, saved
    beside the best network, when one was selected), exactly as archtune.load(BUNDLE) does."""
    from sklearn.base import is_classifier

    from archtune.bundles.dispatch import load
    from archtune.data.multilabel import is_multilabel
    from archtune.data.readers import load_table, source_name, target_columns
    from archtune.files import atomic_write_bytes

    from archtune.bundles.paths import check_path

    check_path(bundle, "predict")  # anything else is named in one line, with the command that takes it
    if device is not None:
        from archtune.predicting import check_device

        try:
            check_device(device)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"--device: {exc}") from None
    from archtune.conformal import check_coverage

    for option, coverage in (("--interval", interval), ("--set", set_coverage)):
        try:
            if coverage is not None:
                check_coverage(coverage)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"{option}: {exc}") from None
    model = load(bundle, best_network=best_network)  # what archtune.load gives Python: the same predictions
    if interval is not None and (is_classifier(model) or getattr(model, "conformal_", None) is None):
        raise InvalidParameterError(
            f"--interval: {bundle} holds a {'classifier' if is_classifier(model) else 'regressor without a calibration'}"
            "; intervals are for regressors fitted with held-out rows (archtune fit and tune hold them out)")
    if set_coverage is not None and not _has_set_calibration(model):
        if is_multilabel(model):  # an ensemble never holds a multi-label member (make_ensemble refuses one)
            raise InvalidParameterError(f"--set: {bundle} holds a multi-label classifier; prediction sets are for "
                                        "one class per row (its proba_<label> columns give each label's probability)")
        raise InvalidParameterError(
            f"--set: {bundle} holds a {'classifier without a calibration' if is_classifier(model) else 'regressor'}"
            "; prediction sets are for classifiers of one class per row fitted with held-out rows (archtune fit "
            "and tune hold them out; --interval gives a regressor's intervals)")
    frame = resolve_image_paths(load_table(data), data)
    name = source_name(data)
    target = model.bundle_metadata_.get("target")
    targets = target_columns(target, frame.columns) if isinstance(target, str) else [target]
    frame = frame.drop(columns=[t for t in targets if t in frame.columns])
    frame = select_features(frame, model, name)
    # Values are checked here so that errors name the file and its rows (for an ensemble, by
    # its networks' preprocessing).
    for network in getattr(model, "networks", [model]):
        network.preprocessor_.transform(frame.set_axis(network.preprocessor_.columns_, axis=1), where=name)
    pred = model.predict(frame, n_threads=n_threads, device=device)
    labels = None
    if is_multilabel(model):  # one 0/1 column per label, named by --target's columns when it named them
        parts = str(target).split(",") if isinstance(target, str) else []
        labels = [p.strip() for p in parts] if len(parts) == pred.shape[1] else list(model.classes_)
        result = pd.DataFrame(pred, columns=[f"prediction_{label}" for label in labels], index=frame.index)
    elif pred.ndim == 2:  # a multi-output regressor saved from Python: one column per output
        result = pd.DataFrame(pred, columns=[f"prediction_{j}" for j in range(pred.shape[1])], index=frame.index)
    else:
        result = pd.DataFrame({"prediction": pred}, index=frame.index)
    if interval is not None:
        from archtune.conformal import interval_of

        lower, upper = interval_of(model, model.conformal_, pred, frame, interval, n_threads=n_threads, device=device)
        if pred.ndim == 2:
            for j in range(pred.shape[1]):
                result[f"lower_{j}"], result[f"upper_{j}"] = lower[:, j], upper[:, j]
        else:
            result["lower"], result["upper"] = lower, upper
    if is_classifier(model):
        proba = model.predict_proba(frame, n_threads=n_threads, device=device)
        for j, label in enumerate(model.classes_ if labels is None else labels):
            result[f"proba_{label}"] = proba[:, j]
        if set_coverage is not None:
            inside = model.conformal_.sets(proba, set_coverage)
            for j, label in enumerate(model.classes_):
                result[f"set_{label}"] = inside[:, j].astype("int64")
    from archtune.data.images import is_image_folder

    if is_image_folder(data):
        # Rows of an image folder have no order of their own: name each prediction's file.
        root = Path(data).resolve()
        result.insert(0, "image", [str(Path(p).relative_to(root)) for p in frame["image"]])
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
    """Describe the model saved in BUNDLE: task, architecture, training, metrics, and where its
    weights came from (a bundle of `archtune pretrain`: its pretext task, epochs and rows)."""
    from sklearn.base import is_classifier

    from archtune.data.multilabel import is_multilabel

    from archtune.bundles.dispatch import load
    from archtune.bundles.paths import check_path
    from archtune.bundles.search import final_ensemble_dir

    found = check_path(bundle, "info")
    if found.kind == "pretrained":
        pretrained_info(bundle)
        return
    if found.kind == "ensemble":
        _ensemble_info(load(bundle))
        return
    final_dir = final_ensemble_dir(bundle)  # checked first: a mismatched pair is said, not half-shown
    model = load(bundle, best_network=True)
    meta = model.bundle_metadata_
    n_params = sum(p.numel() for p in model.module_.parameters())
    mc = model.model_config_
    click.echo(f"model:        {type(model).__name__} ({mc.arch}), {n_params:,} parameters")
    hidden = (" -> ".join(map(repr, mc.layers)) if mc.arch == "layers"
              else " -> ".join(map(str, mc.hidden_sizes)) or "(none)")
    click.echo(f"layers:       {model.input_spec_.width} inputs -> {hidden} -> {model.module_.head.out_features} outputs")
    for line in _encoder_lines(model):
        click.echo(f"{'':<14}{line}")
    if mc.arch != "layers":  # a declared list names its own activations and dropout
        click.echo(f"activation:   {mc.activation} (initializer {mc.initializer}), dropout {_number(mc.dropout)}, "
                   f"norm {mc.norm}")
    p = model.get_params()
    epochs = len(model.history_)
    click.echo(f"training:     {p['optimizer']} lr {_number(p['learning_rate'])}, schedule {p['lr_schedule']}, "
               f"batch {p['batch_size']}, {epochs} epoch{'' if epochs == 1 else 's'} (best {model.best_epoch_})")
    if meta.get("network"):
        click.echo(f"saved:        {meta['network']}")
    if meta.get("stopped"):  # a search with budget="auto": why it ended
        click.echo(f"search:       {meta['stopped']}")
    click.echo(f"features:     {model.n_features_in_}"
               + (f" ({', '.join(map(str, model.feature_names_in_[:6]))}{' ...' if model.n_features_in_ > 6 else ''})"
                  if hasattr(model, "feature_names_in_") else ""))
    if model.preprocessor_.dropped_:
        click.echo(f"dropped:      {', '.join(map(repr, model.preprocessor_.dropped_))} (no values at fit; "
                   "ignored when predicting)")
    if is_multilabel(model):  # the columns of predict's 0/1 matrix, by --target's names when it named them
        parts = str(meta.get("target") or "").split(",")
        labels = parts if len(parts) == len(model.classes_) else list(map(str, model.classes_))
        click.echo(f"labels:       {', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''} (multi-label: one "
                   "sigmoid each)")
    elif is_classifier(model):
        click.echo(f"classes:      {', '.join(map(str, model.classes_[:10]))}")
    if meta.get("target"):
        click.echo(f"target:       {meta['target']} ({meta.get('task')}), trained on {meta.get('data')}")
    # This network's own held-out metrics (a search whose ensemble predicts keeps the
    # ensemble's as "holdout" and the network's as "holdout_network").
    for key, field in (("validation", "validation"), ("holdout", "holdout_network" if meta.get("holdout_network")
                                                                  else "holdout")):
        if meta.get(field):
            click.echo(f"{key + ':':<13} " + "  ".join(f"{k} {v:.4f}" for k, v in meta[field].items()))
    for line in lineage_lines(getattr(model, "lineage_", None)):
        click.echo(f"weights:      {line}")
    if final_dir is not None:
        click.echo(f"predicts:     the ensemble in {final_dir} (archtune predict and archtune.load use it; "
                   "--best-network for this network)")
        _ensemble_info(load(final_dir), indent=14)
    elif meta.get("final"):
        click.echo("predicts:     this network (the search's final model)")


def _number(value: Any) -> str:
    """A searched float as people write it (0.184, 0.00219), not 0.18436258533048205."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _ensemble_info(ensemble: Any, indent: int = 0) -> None:
    """The members of an ensemble bundle with their weights and validation scores."""
    pad = " " * indent
    score = "" if ensemble.val_score is None else f", validation {ensemble.val_score:.4f} (on its selection rows)"
    click.echo(f"{pad}model:        {type(ensemble).__name__} of {ensemble.summary()}{score}")
    for member, weight in zip(ensemble.members, ensemble.weights):
        own = "" if member.val_score is None or not np.isfinite(member.val_score) else f"  (alone {member.val_score:.4f})"
        click.echo(f"{pad}  {weight:5.2f}  {member.name}{own}")
    meta = ensemble.bundle_metadata_
    if meta.get("target"):
        click.echo(f"{pad}target:       {meta['target']} ({meta.get('task')}), trained on {meta.get('data')}")
    holdout = meta.get("holdout") if meta.get("holdout_network") else meta.get("holdout_ensemble")
    if holdout:  # the held-out metrics of the ensemble itself (older runs: holdout_ensemble)
        click.echo(f"{pad}holdout:      " + "  ".join(f"{k} {v:.4f}" for k, v in holdout.items()))


def _encoder_lines(model: Any) -> list[str]:
    """What reads images, text, series and wide columns before the dense layers (the
    ``layers:`` line counts only the dense part's inputs)."""
    mc = model.model_config_
    cv, sq = mc.conv, mc.sequence
    pre = model.preprocessor_
    filters = mc.conv_filters or tuple(cv.filters * 2**i for i in range(cv.conv_blocks))  # a pruned net's own
    conv = (f"{cv.conv_blocks} conv block(s) of {', '.join(map(str, filters))} "
            f"filters, kernel {cv.kernel_size}"
            + (f", stride {cv.strides}" if cv.strides > 1 else "") + (", valid padding" if cv.padding == "valid" else "")
            + f", {cv.pooling} pooling"
            + (", separable" if cv.separable else "") + (", residual" if cv.residual else "")
            if cv.conv_blocks else "its pixels, straight to the dense layers")
    lines = []
    if mc.image_shape and mc.arch != "layers":  # a declared list's own layers read the images
        shape = "x".join(map(str, mc.image_shape))
        lines.append(f"images {shape} -> {conv if mc.arch == 'cnn' else 'their pixels as rows'}")
    for name, shape in zip(pre.image_, model.input_spec_.images):
        lines.append(f"image column {name!r} ({'x'.join(map(str, shape))}) -> {conv}")
    encoder = (f"{'bidirectional ' if sq.bidirectional and sq.sequence != 'conv' else ''}{sq.sequence} encoder, "
               f"{sq.sequence_units} units")
    for name, (vocabulary, length) in zip(pre.text_, model.input_spec_.text):
        lines.append(f"text column {name!r} (vocabulary {vocabulary}, {length} tokens) -> embedding "
                     f"{sq.embedding_dim}, {encoder}")
    if mc.series_shape and mc.arch == "sequence":
        lines.append(f"series of {mc.series_shape[0]} steps x {mc.series_shape[1]} features -> {encoder}")
    wide = mc.wide
    if wide.active:
        n_crosses = len(wide.crosses) + len(wide.wide_category_crosses) + len(wide.wide_mixed_crosses)
        lines.append(f"wide part: {len(wide.wide_columns)} numeric and {len(wide.wide_categorical)} one-hot "
                     f"categorical column(s) and {n_crosses} cross(es) straight to the output")
    return lines
