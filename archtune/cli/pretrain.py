"""``archtune pretrain``: self-supervised pretraining of a network on unlabeled rows
(archtune.pretraining), saved as a bundle that ``archtune fit --init-from`` starts from."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from archtune.cli.common import ParameterHelp, check_values, parse_settings, resolve_image_paths
from archtune.cli.group import cli
from archtune.errors import DataError, InvalidParameterError, nearest

IMAGE_FOLDER_LABEL = "label"  # the class column of an image folder's table (data/images.py)


@cli.command(cls=ParameterHelp, epilog="""\b
Examples:
  archtune pretrain unlabeled.csv --out runs/pre --epochs 20
  archtune fit train.csv --target y --init-from runs/pre --freeze body --out runs/tuned
  archtune pretrain photos/ --out runs/rot                        (rotation prediction)
A --target column (and a built-in dataset's "target", an image folder's "label") is ignored:
pretraining reads no labels.""")
@click.argument("data")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True,
              help="Directory to save the pretrained network in (a bundle that `archtune fit --init-from` reads).")
@click.option("--target", "-t", help="A label column in DATA: left out of the pretraining (its labels are not read).")
@click.option("--pretext", type=click.Choice(["auto", "masked_features", "rotation"]), default=None,
              help="Pretext task: masked-feature reconstruction (tables) or rotation prediction (images); "
                   "default: the pretext parameter (auto: rotation for images).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Most pretraining epochs (default: the pretrain_epochs parameter, or 20 when it is 0).")
@click.option("--set", "settings", multiple=True, metavar="PARAM=VALUE",
              help="Set an estimator parameter (the network and its training), as for `archtune fit`. Repeatable.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def pretrain(data: str, out: Path, target: str | None, pretext: str | None, epochs: int | None,
             settings: tuple[str, ...], seed: int, quiet: bool) -> None:
    """Pretrain a network on the rows of DATA (a CSV/TSV/Parquet file, an image folder or a
    built-in dataset name) without labels, and save it to --out."""
    from archtune.data.readers import check_source

    check_source(data)  # a mistyped path fails at once, before PyTorch is imported
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"--out {out}: exists and is not a directory")
    from archtune.estimators import NeuralClassifier
    from archtune.parameters import check_params
    from archtune.bundles.pretrained import save_pretrained
    from archtune.pretraining.run import PRETRAIN_EPOCHS
    from archtune.pretraining.run import pretrain as pretrain_rows

    model = NeuralClassifier(**{"random_state": seed, "verbose": 0 if quiet else 1,
                                **parse_settings(settings, NeuralClassifier)})
    check_params(model)  # before the data is read
    if model.init_from is not None:
        raise InvalidParameterError("--set init_from: pretraining starts from random weights; fine-tune from a "
                                    "network with `archtune fit --init-from`")
    epochs = epochs or model.pretrain_epochs or PRETRAIN_EPOCHS
    pretext = pretext or model.pretext
    X, name = _unlabeled_rows(data, target)  # a typed Table: the pretraining reads its kinds
    click.echo(f"data: {name}: {X.n_rows} rows, {X.n_columns} column(s)")
    started = time.perf_counter()
    pretrained = pretrain_rows(X, model, pretext=pretext, pretrain_epochs=epochs)
    seconds = time.perf_counter() - started
    history = pretrained.history_
    loss = "val_loss" if "val_loss" in history and history["val_loss"].notna().any() else "train_loss"
    click.echo(f"pretrained ({pretrained.pretext_['name']}) {len(history)} epochs in {seconds:.1f}s; best epoch "
               f"{pretrained.best_epoch_}; pretext {loss} {history[loss].iloc[0]:.4f} -> {history[loss].min():.4f}")
    save_pretrained(pretrained, out)
    click.echo(f"saved the pretrained network to {out} (use: archtune fit DATA --target COL --init-from {out})")


def _unlabeled_rows(data: str, target: str | None) -> tuple[Any, str]:
    """The feature columns of DATA (a typed `Table` named after the file) and its name: the
    --target column, a built-in dataset's target and an image folder's class column are
    dropped, each with a note."""
    from archtune.data.datasets import BUILTIN_DATASETS, BUILTIN_TARGET
    from archtune.data.images import is_image_folder
    from archtune.data.readers import load_table, source_name

    name = source_name(data)
    frame = resolve_image_paths(load_table(data), data)
    columns = [str(c) for c in frame.columns]
    if target is not None and target not in columns:
        raise DataError(f"{name}: no column {target!r} (--target){nearest(target, columns)}")
    if target is None and data in BUILTIN_DATASETS and not Path(data).exists():
        target = BUILTIN_TARGET
    if target is None and is_image_folder(data):
        target = IMAGE_FOLDER_LABEL
    if target is not None:
        click.echo(f"archtune: note: ignoring column {target!r}: pretraining reads no labels", err=True)
        frame = frame.drop(columns=[frame.columns[columns.index(target)]])
    if frame.shape[1] == 0:
        raise DataError(f"{name}: no columns left to pretrain on")
    return check_values(frame, name), name


def pretrained_info(directory: Path) -> None:
    """``archtune info`` of a pretraining bundle: its pretext task, epochs, rows and columns."""
    from archtune.cli.lineage import lineage_lines
    from archtune.bundles.pretrained import load_pretrained

    pretrained = load_pretrained(directory)
    mc = pretrained.model_config_
    n_params = sum(p.numel() for p in pretrained.module_.parameters())
    settings = {k: v for k, v in pretrained.pretext_.items() if k not in ("name", "n_outputs")}
    history = pretrained.history_
    click.echo(f"model:        Pretrained network ({mc.arch}), {n_params:,} parameters (pretext head included)")
    click.echo(f"layers:       {' -> '.join(map(str, mc.hidden_sizes)) or '(none)'}")
    click.echo(f"pretext:      {pretrained.pretext_['name']}"
               + (f" ({', '.join(f'{k} {json.dumps(v)}' for k, v in settings.items())})" if settings else ""))
    best = ""
    if "val_loss" in history and history["val_loss"].notna().any():
        best = f", validation pretext loss {float(history['val_loss'].min()):.4f}"
    click.echo(f"training:     {len(history)} epochs (best {pretrained.best_epoch_}) on {pretrained.n_rows_:,} "
               f"rows{best}")
    names = pretrained.feature_names_in_
    shape = pretrained.image_shape_
    click.echo(f"columns:      {pretrained.n_features_in_}"
               + (f" ({', '.join(map(str, names[:6]))}{' ...' if len(names) > 6 else ''})" if names is not None
                  else f" (images {'x'.join(map(str, shape))})" if shape else ""))
    for line in lineage_lines(pretrained.lineage_):
        click.echo(f"weights:      {line}")
    click.echo(f"use:          archtune fit DATA --target COL --init-from {directory}")
