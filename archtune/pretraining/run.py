"""Self-supervised pretraining of an archtune network on unlabeled rows.

The rows are read and typed as `archtune.fitting.prepare` reads them (the same path:
`Table.read` and `Table.typed`, then `data_params` and `fit_preprocessor`), the network is the one the estimator's parameters describe with the pretext
head as its ``head``, and it is trained by archtune's `Trainer` with a holdout of the rows for
early stopping on the pretext loss. This module does not import the estimators (they call
it), so any object with scikit-learn's ``get_params`` and a ``target_kind`` will do.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from archtune.checks import check_number
from archtune.config import ModelConfig, TrainConfig
from archtune.data.inputs import wide_inputs
from archtune.data.preprocess import Preprocessor
from archtune.data.table import Table
from archtune.data.target import TARGETS
from archtune.errors import DataError, InvalidParameterError
from archtune.fitting import data_params, fit_preprocessor
from archtune.parameters import check_params, resolve_device, seed_from
from archtune.prepared import DIVERGENCE_FACTOR
from archtune.models import InputSpec, build_model, get_family
from archtune.models.embeddings import compute_bins
from archtune.pretraining.model import HEAD_TASK, PretextNetwork
from archtune.pretraining.result import Pretrained
from archtune.pretraining.tasks import make_pretext
from archtune.train.callbacks import Callback, ProgressBar
from archtune.train.loop import Trainer

PRETRAIN_EPOCHS = 20


def pretrain(X: Any, estimator: Any, *, pretext: str = "auto", pretrain_epochs: int = PRETRAIN_EPOCHS,
             callbacks: Sequence[Callback] = (), **settings: Any) -> Pretrained:
    """Pretrain the network ``estimator``'s parameters describe on the unlabeled rows X.

    Parameters
    ----------
    X : table, dict of arrays, image array (N x C x H x W or N x H x W) or series array
        Unlabeled rows, read as ``estimator.fit`` reads X (scipy sparse matrices are not
        supported).
    estimator : NeuralClassifier or NeuralRegressor
        Unfitted (or fitted: it is not changed). Its parameters give the architecture
        (``arch``, layers, embeddings, ...), the preprocessing (``scaling``, ``categorical``,
        ``categorical_features``), the optimiser, learning-rate schedule, batch size,
        ``validation_fraction``, ``early_stopping``/``patience``, ``device`` and the seed
        (``random_state``: the holdout, initial weights, batch order, dropout and the
        pretext's noise; None draws a fresh seed from NumPy's global generator, so each call
        pretrains another network; see `archtune.pretrain` for what may still vary).
        ``learning_rate="auto"`` stands for 1e-3 (the learning-rate finder is not run on a
        pretext task); ``max_epochs`` is replaced by ``pretrain_epochs``.
    pretext : {"auto", "masked_features", "rotation"}
        The pretext task (archtune.pretraining.tasks): "auto" is rotation for image arrays with
        arch="cnn", masked features otherwise.
    pretrain_epochs : int >= 1
        The most epochs; early stopping (the estimator's ``patience``) may stop sooner.
    callbacks : sequence of Callback
        As for a fit (archtune.train.callbacks); a progress bar is added when the estimator
        is verbose.
    **settings
        The pretext's settings: ``corruption_rate`` (0.3), ``predict_mask`` (True) and
        ``mask_weight`` (2.0) for masked features.

    Returns
    -------
    Pretrained
        Its ``to_source()`` is what a fit starts from.

    Raises
    ------
    InvalidParameterError
        A bad parameter of the estimator, ``pretext``, ``pretrain_epochs`` or a setting.
    DataError
        X cannot be read, has fewer than 2 rows, or is a sparse matrix.
    TrainingDivergedError
        The pretext loss exploded.
    """
    params = estimator.get_params()
    owner = type(estimator).__name__
    arch = params["arch"]
    check_params(estimator)
    pretrain_epochs = check_number("pretrain_epochs", pretrain_epochs, 1, integer=True)
    table = Table.read(X, "X", arch)  # a Table made at the caller's entry is taken as it is
    if table.is_sparse:
        raise DataError("pretraining reads dense tables and arrays; X is a scipy sparse matrix (densify it, "
                        "or train without pretraining)")
    n_rows = table.n_rows
    if n_rows < 2:
        raise DataError(f"at least 2 rows are needed to pretrain; got n_samples={n_rows}")
    if table.n_columns == 0:
        raise DataError(f"X has 0 feature(s) (shape=({n_rows}, 0)) while a minimum of 1 is required.")

    table = table.typed()
    params, kinds, _, _ = data_params(estimator, table, arch)
    model_config = ModelConfig.from_params(params)
    seed = seed_from(params["random_state"])
    array_kind, array_shape = table.array_kind, table.array_shape
    image_shape = tuple(array_shape) if array_kind == "image" else ()
    series_shape = tuple(array_shape) if array_kind == "series" else ()

    # The preprocessor learns from every row: the holdout only decides when to stop.
    pre = fit_preprocessor(params, model_config, arch, table, kinds)
    model_config = dataclasses.replace(model_config, wide=wide_inputs(params["inputs"], arch, pre),
                                       image_shape=image_shape, series_shape=series_shape)
    rows = torch.from_numpy(pre.transform(table.rows, "X"))
    train_idx, val_idx = _holdout(n_rows, params, seed)
    X_tr, X_va = rows[train_idx], (rows[val_idx] if val_idx is not None else None)

    # A table of one image-path column (the command line's view of an image folder) is images too.
    images = image_shape or _image_column(pre)
    if pretext == "auto":
        pretext = "rotation" if (image_shape and arch == "cnn") or (images and not image_shape) else "masked_features"
    task = make_pretext(pretext, pre, images, **settings)
    spec = _input_spec(pre, model_config, arch, X_tr)
    train_config = dataclasses.replace(
        TrainConfig.from_params(params, len(X_tr), seed, TARGETS[estimator.target_kind].losses),
        max_epochs=pretrain_epochs)
    device = resolve_device(params["device"])
    callbacks = [*callbacks, *([ProgressBar(f"{owner} pretraining")] if params["verbose"] else [])]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout masks draw from the global generator
        network = build_model(model_config, spec, task.n_outputs, HEAD_TASK, torch.Generator().manual_seed(seed))
        trainer = Trainer(PretextNetwork(network, task, seed), task.loss, train_config, metric=None,
                          metric_name="pretext", callbacks=callbacks, device=device,
                          divergence_limit=DIVERGENCE_FACTOR * task.constant_loss)
        trainer.fit(X_tr, task.targets(X_tr), X_va, task.targets(X_va) if X_va is not None else None)
    history = pd.DataFrame(trainer.history.records)
    history["phase"] = "pretrain"
    epochs = len(history)
    pretext_ = {"name": task.name, "n_outputs": int(task.n_outputs), **task.settings()}
    lineage = ({"step": "pretrained", "pretext": task.name, "epochs": epochs, "rows": int(n_rows),
                "from": None},)
    return Pretrained(
        module_=network.eval(), preprocessor_=pre, model_config_=model_config, input_spec_=spec, history_=history,
        pretext_=pretext_, n_features_in_=table.n_columns,
        feature_names_in_=(np.asarray(list(table.feature_names), dtype=object) if table.feature_names is not None
                           else None),
        image_shape_=image_shape or None, series_shape_=series_shape or None, n_rows_=int(n_rows),
        best_epoch_=int(trainer.best_epoch if train_config.early_stopping else epochs), lineage_=lineage)


def _holdout(n_rows: int, params: dict[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Training and validation row positions: a random ``validation_fraction`` of the rows for
    early stopping (none without early stopping, or when a side would be empty)."""
    fraction = check_number("validation_fraction", params["validation_fraction"], 0.0, 1.0, high_open=True)
    n_val = int(round(fraction * n_rows)) if params["early_stopping"] else 0
    order = np.random.default_rng(seed).permutation(n_rows)
    if n_val < 1 or n_rows - n_val < 1:
        return order, None
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _input_spec(pre: Preprocessor, model_config: ModelConfig, arch: str, X_tr: torch.Tensor) -> InputSpec:
    """The network's input side, as `prepare` derives it; piecewise-linear bins from quantiles
    (tree bins need a target, which pretraining has not)."""
    numeric = model_config.numeric
    embeds = numeric.kind is not None and "numeric_embedding" in get_family(arch).uses
    n_continuous = len(pre.numeric_) if embeds else 0
    bins: list[list[float]] = []
    if embeds and numeric.kind == "piecewise_linear":
        if numeric.binning != "quantile":
            warnings.warn(f"binning={numeric.binning!r} needs a target: pretraining bins the numeric columns by "
                          "quantiles", UserWarning, stacklevel=3)
        bins = compute_bins(X_tr[:, :n_continuous].numpy(), numeric.n_bins, "quantile")
    return InputSpec.auto(pre.n_numeric_out, pre.cardinalities, pre.text_columns, pre.image_columns, n_continuous,
                          bins)


def _image_column(pre: Preprocessor) -> tuple[int, ...]:
    """(C, H, W) when the rows are one image-path column and nothing else (its pixels are then
    the whole preprocessed row, as an image array's are); () otherwise."""
    if len(pre.image_) != 1 or pre.n_numeric_out or pre.categorical_ or pre.text_:
        return ()
    return tuple(pre.image_shapes_[pre.image_[0]])


def check_estimator(estimator: Any) -> Any:
    """``estimator`` if it can describe a pretraining (archtune estimator parameters)."""
    if not (hasattr(estimator, "get_params") and hasattr(estimator, "target_kind")):
        raise InvalidParameterError(f"estimator must be a NeuralClassifier or NeuralRegressor; got "
                                    f"{type(estimator).__name__}")
    return estimator


__all__ = ["PRETRAIN_EPOCHS", "check_estimator", "pretrain"]
