"""The one path through ``fit``: prepare -> build -> train -> finish.

Every way archtune trains a network goes through these steps: an estimator's ``fit``,
`fit_population` (cohorts), the learning-rate finder, the doctor's instrumented run, the
search and, for its last step, loading a bundle.

- `prepare(estimator, X, y)` is free of side effects: it validates the parameters, reads X
  (tables, dicts of arrays, images, series), splits off validation rows, fits the
  preprocessor and the target encoder, and returns a `Prepared` holding tensors, configs, the
  `TaskSpec` and the `FittedData` that the estimator will carry once trained.
- `train(prepared)` builds the network from the prepared seed and trains it.
- `finish(estimator, prepared, result)` sets the fitted attributes, through `set_fitted`,
  the only place that sets them (bundle loading calls it too).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from archtune.config import PARAM_GROUPS, ModelConfig, TrainConfig
from archtune.data.inputs import FittedInputs, wide_inputs
from archtune.data.kinds import declare_categorical
from archtune.data.preprocess import Preprocessor
from archtune.data.table import Table
from archtune.data.target import TARGETS, target_array
from archtune.data.weights import check_sample_weight, effective, positive_rows
from archtune.errors import DataError, InvalidParameterError
from archtune.models import InputSpec, TabularNetwork, get_family
from archtune.models.backbone_weights import load_backbone_weights
from archtune.models.embeddings import compute_bins
from archtune.models.layer_compile import input_scaling
from archtune.recipes import wide as is_wide
from archtune.train.batches import Rows, SparseRows
from archtune.train.callbacks import Callback, ProgressBar
from archtune.train.loop import Trainer
from archtune.transfer.copy import CopyReport
from archtune.transfer.freeze import FineTuning, plan_phase
from archtune.transfer.inputs import match_inputs
from archtune.transfer.reading import read_source
from archtune.transfer.source import Source

from archtune.parameters import (check_params, differs_from_default, recipe_params, resolve_device, seed_from,
                                 warn_unused)
from archtune.prepared import FittedData, Prepared, TaskSpec, TrainResult

# --------------------------------------------------------------------------- the steps


def prepare(estimator: Any, X: Any, y: Any, validation_data: tuple[Any, ...] | None = None,
            kinds: Mapping[str, str] | None = None, sample_weight: Any = None,
            source: Source | None = None) -> Prepared:
    """Validate, read, split and preprocess; the estimator is not changed.

    Parameters
    ----------
    estimator : NeuralClassifier or NeuralRegressor
    X : table, dict of arrays, image array (N x C x H x W), series (N x T x F) or scipy sparse matrix
        A sparse matrix (any format, read as CSR) is all numeric columns: scaled by each
        column's largest absolute value (zeros stay zero), with no numeric embedding, and kept
        sparse (`SparseRows`: batches are densified as they are drawn). Or a `Table`
        (archtune.data.table) read at the caller's entry: it is not read, typed or checked
        again (its kinds, when inferred, are used; row weights are ``sample_weight``'s).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
        Rows for early stopping instead of a split of (X, y), optionally weighted.
    kinds : dict, optional
        Each column's kind (`infer_column_kinds`: "numeric", "categorical", "date", ...) when
        already inferred on the whole table and X is not a typed `Table`; otherwise inferred
        here (`Table.typed`), checking every value.
    sample_weight : array-like of shape (n_samples,), optional
        Row weights (archtune.data.weights): rows of weight 0 are dropped before anything is
        fitted on the rows, so they count exactly as removed rows; the validation split
        carries the others' weights.
    source : Source, optional
        Start from this trained network (overrides the estimator's ``init_from``, which is
        read by `archtune.transfer.read_source` otherwise): its preprocessor is reused, not
        refitted, X's columns are matched to its own (archtune.transfer.inputs), and its
        architecture replaces the estimator's; the target encoder is fitted on y.

    Raises
    ------
    InvalidParameterError, DataError
        (and BundleError for an ``init_from`` path that is not a network bundle)
    """
    raw = estimator.get_params()
    owner = type(estimator).__name__
    if source is None and raw["init_from"] is not None:
        source = read_source(raw["init_from"])
    arch = source.model_config.arch if source is not None else raw["arch"]
    table = Table.read(X, "X", arch)  # a Table made at the caller's entry is taken as it is
    check_params(estimator)
    if source is None and raw["freeze"] is not None:
        raise InvalidParameterError(f"freeze={raw['freeze']!r} needs init_from: a trained network whose layers "
                                    "to freeze")
    if y is None:
        raise DataError(f"{owner} requires y to be passed, but the target y is None")
    n_rows = table.n_rows
    y_arr = target_array(y, "y")
    if n_rows != len(y_arr):
        raise DataError(f"X has {n_rows} rows but y has {len(y_arr)}; they must match row for row")
    if n_rows < 2:
        raise DataError(f"at least 2 rows are needed to train; got n_samples={n_rows} (1 sample)")
    if table.n_columns == 0:
        raise DataError(f"X has 0 feature(s) (shape=({n_rows}, 0)) while a minimum of 1 is required.")
    weights = check_sample_weight(sample_weight, n_rows, min_positive=2)
    if kinds is not None and table.kinds is None:
        table = dataclasses.replace(table, kinds=dict(kinds))
    matched = None
    if source is not None:  # the source's preprocessor reads X: its columns, by name
        matched = match_inputs(source, table.rows, table.named, table.array_kind, table.array_shape, owner,
                               table.is_sparse)
        table = dataclasses.replace(table, rows=matched.frame)
        reused = matched.preprocessor
        tabular, wide = (get_family(arch).tabular and table.array_kind is None and not reused.text_
                         and not reused.image_), False
        params = recipe_params(estimator, tabular, wide)
        model_config = ModelConfig.from_params(params)
    else:
        table = table.typed()  # whole table: errors name the user's rows
        params, kinds, tabular, wide = data_params(estimator, table, arch)
        model_config = ModelConfig.from_params(params)
    target, targets = TARGETS[estimator.target_kind].fit(y_arr)  # every row: classes_ keep every label
    kept = positive_rows(weights)
    rows = np.arange(n_rows) if kept is None else kept  # each remaining row's position in X
    table = table.with_weights(weights)
    if kept is not None:  # zero-weight rows: dropped before anything is fitted on the rows
        table, targets = table.take(kept), targets[kept]
    target.check_params(params)
    seed = seed_from(params["random_state"])
    array_kind, array_shape = table.array_kind, table.array_shape
    inputs = matched.inputs if matched is not None else FittedInputs(
        owner, arch, table.n_columns, table.feature_names,
        image_shape=array_shape if array_kind == "image" else (),
        series_shape=array_shape if array_kind == "series" else ())

    if validation_data is not None:
        X_val_raw, y_val_raw, w_val_raw = _validation_parts(validation_data)
        val = Table.later(inputs, X_val_raw, "validation_data X")
        targets_val = target.encode(target_array(y_val_raw, "validation_data y"), "validation_data y")
        w_va = check_sample_weight(w_val_raw, val.n_rows, "validation_data sample_weight")
        val_rows = positive_rows(w_va)  # positions in validation_data's X
        if val_rows is not None:
            val, targets_val, w_va = val.take(val_rows), targets_val[val_rows], w_va[val_rows]
        else:
            val_rows = np.arange(val.n_rows)
        train_part, targets_tr, w_tr, train_rows = table, targets, table.weights, rows
    else:
        train_part, val, targets_tr, targets_val, idx_tr, idx_va = _split(table, targets, target, params, seed)
        w_tr, w_va = train_part.weights, None if val is None else val.weights
        train_rows, val_rows = rows[idx_tr], None if idx_va is None else rows[idx_va]  # positions in X

    if matched is not None:
        # The source's architecture, with this fit's output head (loss="quantile": its levels).
        pre, model_config = matched.preprocessor, dataclasses.replace(source.model_config,
                                                                      quantiles=model_config.quantiles)
        _warn_architecture(estimator, source, params)
    else:
        pre = fit_preprocessor(params, model_config, arch, train_part, kinds)
        warn_unused(estimator, arch, [g for g, present in (("conv", pre.image_), ("sequence", pre.text_)) if present])
        model_config = dataclasses.replace(model_config, wide=wide_inputs(params["inputs"], arch, pre),
                                           image_shape=inputs.image_shape, series_shape=inputs.series_shape)
    X_tr = transform_rows(pre, train_part, "X")
    X_va = transform_rows(pre, val, "X") if val is not None else None
    target = target.fit_scale(targets_tr, clamp=params["clamp_outputs"] in (True, "auto"))
    train_config = TrainConfig.from_params(params, len(X_tr), seed, target.losses)
    task = TaskSpec(target.task, target.n_outputs, train_config.loss, target.metric,
                    target.loss_weights(targets_tr, params["class_weight"], w_tr), train_config.label_smoothing,
                    model_config.quantiles)
    embeds = (model_config.numeric.kind is not None and "numeric_embedding" in get_family(arch).uses
              and source is None)  # a source's bins come with its input spec
    n_continuous = len(pre.numeric_) if embeds else 0
    bins = (compute_bins(X_tr[:, :n_continuous].numpy(), model_config.numeric.n_bins, model_config.numeric.binning,
                         targets_tr[:, 0] if targets_tr.ndim > 1 else targets_tr, target.kind == "regression")
            if embeds and model_config.numeric.kind == "piecewise_linear" else ())
    input_spec = (source.input_spec if source is not None else
                  InputSpec.auto(pre.n_numeric_out, pre.cardinalities, pre.text_columns, pre.image_columns,
                                 n_continuous, bins))
    return Prepared(
        X_train=X_tr, y_train=target.tensor(targets_tr), X_val=X_va,
        y_val=target.tensor(targets_val) if targets_val is not None else None, targets_train=targets_tr,
        seed=seed, model_config=model_config, train_config=train_config, input_spec=input_spec,
        device=resolve_device(params["device"]), task=task,
        fitted=FittedData(pre, target, dataclasses.replace(inputs, columns=tuple(pre.columns_))),
        auto_lr=params["learning_rate"] == "auto", verbose=int(params["verbose"]), owner=owner, tabular=tabular,
        wide=wide, w_train=_weight_tensor(w_tr, getattr(X_tr, "dtype", torch.float32)),
        w_val=_weight_tensor(w_va, getattr(X_tr, "dtype", torch.float32)), source=source,
        fine_tuning=FineTuning.from_params(params, source), train_rows=train_rows, val_rows=val_rows)


# The parameters a fit from a source takes from the source instead (its model_config).
ARCHITECTURE_PARAMS = ("arch", "activation", "initializer", "dropout") + tuple(
    name for group, names in PARAM_GROUPS.items() if group != "transfer" for name in names)


def _warn_architecture(estimator: Any, source: Source, used: Mapping[str, Any]) -> None:
    """Warn of architecture parameters set (away from their defaults) to values the source's
    architecture does not have: they cannot apply. No warning when the parameters (``used``:
    as the recipe reads them) describe the source's architecture itself, as they do for a
    network the estimator pretrained (``pretrain_epochs``, ``pretrain``)."""
    own = ModelConfig.from_params(used)
    config = source.model_config
    if dataclasses.replace(own, wide=config.wide, image_shape=config.image_shape, series_shape=config.series_shape,
                           conv_filters=config.conv_filters) == config:
        return
    params, defaults = estimator.get_params(), type(estimator)().get_params()
    # ``used`` differs from the parameters only where they are at their defaults, which the
    # names below exclude: the config built above serves this check too.
    theirs, mine = config.to_dict(), own.to_dict()
    names = [name for name in ARCHITECTURE_PARAMS if differs_from_default(params[name], defaults[name])
             and (name not in theirs or differs_from_default(mine.get(name), theirs[name]))]
    if names:
        warnings.warn(f"{', '.join(f'{n}={params[n]!r}' for n in names)} {'is' if len(names) == 1 else 'are'} "
                      f"ignored: the architecture is init_from's ({source.origin})", UserWarning, stacklevel=4)


def data_params(estimator: Any, table: Table, arch: str) -> tuple[dict[str, Any], dict[str, str], bool, bool]:
    """(parameters, kinds, tabular, wide) of a fit from scratch (or a pretraining) on a typed
    ``table``: the recipe the columns' kinds ask for (`recipe_params`: tabular or not, too
    wide for numeric embeddings or not), without numeric embeddings for a sparse matrix, and
    the kinds with ``categorical_features`` applied."""
    kinds = dict(table.kinds or {})
    tabular = (get_family(arch).tabular and table.array_kind is None
               and not any(kind in ("text", "image") for kind in kinds.values()))
    wide = is_wide(sum(kind == "numeric" for kind in kinds.values()))
    params = recipe_params(estimator, tabular, wide)
    if table.is_sparse:
        params = _sparse_params(estimator, params)
    else:
        kinds = declare_categorical(kinds, table.rows, params["categorical_features"])
    return params, kinds, tabular, wide


def fit_preprocessor(params: Mapping[str, Any], model_config: ModelConfig, arch: str, table: Table,
                     kinds: Mapping[str, str]) -> Preprocessor:
    """The preprocessor a fit (or a pretraining, archtune.pretraining) learns from ``table``
    (a table, or a CSR matrix) whose columns are of ``kinds``: the scaling the parameters and
    the family ask for; image arrays scaled per channel (`Preprocessor.pool_channels`), or not
    at all for a pretrained backbone, which reads [0, 1] pixels and normalises them itself,
    as its ImageNet weights were trained."""
    scaling = input_scaling(model_config.layers, arch, params["scaling"])
    if arch == "cnn" and table.array_kind == "image" and model_config.conv.backbone:
        scaling = None
    pre = Preprocessor(scaling, params["categorical"])
    if table.is_sparse:
        return pre.fit_sparse(table.rows)
    pre.fit(table.rows, "X", dict(kinds))
    if table.array_kind == "image":
        pre.pool_channels(table.array_shape, table.rows.to_numpy())
    return pre


def _sparse_params(estimator: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a fit on sparse input uses: no numeric embedding (binning or embedding
    each of 20,000 TF-IDF columns would cost more than the network), with a warning when the
    user asked for one away from the default."""
    default = type(estimator)().get_params()["numeric_embedding"]
    if params["numeric_embedding"] not in (None, default):
        warnings.warn(f"numeric_embedding={params['numeric_embedding']!r} is ignored: sparse input trains "
                      "without numeric embeddings", UserWarning, stacklevel=4)
    return {**params, "numeric_embedding": None}


def transform_rows(pre: Preprocessor, table: Table, what: str) -> Rows:
    """The network's input for a table (a dense tensor) or a CSR matrix (`SparseRows`)."""
    if table.is_sparse:
        return SparseRows(pre.transform_sparse(table.rows, what))
    return torch.from_numpy(pre.transform(table.rows, what))


def _validation_parts(validation_data: Any) -> tuple[Any, Any, Any]:
    """(X_val, y_val, sample_weight_val or None) from a 2- or 3-tuple."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise InvalidParameterError("validation_data must be (X_val, y_val) or (X_val, y_val, sample_weight_val); "
                                    f"got a {type(validation_data).__name__}"
                                    + (f" of {len(validation_data)}" if isinstance(validation_data, (tuple, list))
                                       else ""))
    return (*validation_data, None) if len(validation_data) == 2 else tuple(validation_data)


def _weight_tensor(weights: np.ndarray | None, dtype: torch.dtype) -> torch.Tensor | None:
    """The weights the losses use (None for none, or when all are equal: see `effective`)."""
    weights = effective(weights)
    return None if weights is None else torch.from_numpy(weights).to(dtype)


def _split(table: Table, targets: np.ndarray, target: Any, params: Mapping[str, Any], seed: int):
    """The holdout split for early stopping (stratified by class where it can be) of a table
    (rows and weights, `Table.take`): (train, validation or None, their targets, the
    positions of the two parts)."""
    n = table.n_rows
    n_val = int(round(params["validation_fraction"] * n)) if params["early_stopping"] else 0
    if n_val < 1 or n - n_val < 1:
        return table, None, targets, None, np.arange(n), None
    idx_tr, idx_va = train_test_split(np.arange(n), test_size=n_val, random_state=seed % (2**32),
                                      stratify=target.stratify(targets, n_val))
    return table.take(idx_tr), table.take(idx_va), targets[idx_tr], targets[idx_va], idx_tr, idx_va


def train(prepared: Prepared, callbacks: Sequence[Callback] = (),
          interrupt: Callable[[], bool] | None = None) -> TrainResult:
    """Build the network from the prepared seed and train it; a diverged or stopped run raises
    (`TrainingDivergedError`, or the callback's exception). ``interrupt() -> bool`` is
    checked every step: True ends training with the best weights so far."""
    callbacks = with_progress(prepared, callbacks)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(prepared.seed)  # dropout masks draw from the global generator
        module, report = prepared.initial_network()
        if report is not None:  # the source's weights (its backbone's included) win over any file
            return _fine_tune(prepared, module, report, callbacks, interrupt)
        # A pretrained image backbone's weights, from its file (read here only: bundles never do).
        lineage = load_backbone_weights(module, prepared.model_config)
        trainer = Trainer(module, prepared.task.loss_fn(prepared.device), prepared.train_config,
                          metric=prepared.task.metric_fn(), metric_name=prepared.task.metric_name,
                          callbacks=callbacks, device=prepared.device,
                          divergence_limit=prepared.task.divergence_limit, interrupt=interrupt)
        trainer.fit(prepared.X_train, prepared.y_train, prepared.X_val, prepared.y_val, w=prepared.w_train,
                    w_val=prepared.w_val)
    return TrainResult(module, trainer.history.records, trainer.best_epoch, lineage=lineage)


def _fine_tune(prepared: Prepared, module: TabularNetwork, report: CopyReport, callbacks: Sequence[Callback],
               interrupt: Callable[[], bool] | None) -> TrainResult:
    """Train a network that starts from a source (archtune.transfer.freeze): with ``freeze``,
    phase one ("head") trains with the frozen layers fixed for ``freeze_epochs`` epochs (its
    own early stopping), then phase two ("fine_tune") trains everything up to ``max_epochs``
    epochs in all; without, one "fine_tune" phase. Copied parameters train at
    ``fine_tune_lr_factor`` times the rate in both. The result is the better phase's best
    epoch (early stopping) or the last epoch; the history is one table, epochs numbered on."""
    settings, config = prepared.fine_tuning, prepared.train_config
    example = prepared.X_train[:2]  # a dense batch (sparse rows too): the layers' order is read from it
    phases = [("fine_tune", False, config.max_epochs)]
    if settings.freeze is not None:
        first = config.max_epochs if settings.freeze_epochs is None else min(settings.freeze_epochs, config.max_epochs)
        phases = [("head", True, first)] + ([("fine_tune", False, None)] if settings.freeze_epochs is not None else [])
    records: list[dict[str, Any]] = []
    best: tuple[float, dict[str, torch.Tensor] | None, int] = (math.inf, None, 0)
    for k, (phase, frozen, epochs) in enumerate(phases):
        epochs = config.max_epochs - len(records) if epochs is None else epochs
        if epochs < 1:
            break
        device = next(module.parameters()).device  # after phase one, the network is on the training device
        plan = plan_phase(module, example.to(device), report.copied, settings, frozen)
        plan.apply(module)
        try:
            trainer = Trainer(module, prepared.task.loss_fn(prepared.device),
                              dataclasses.replace(config, max_epochs=epochs, seed=config.seed + k),
                              metric=prepared.task.metric_fn(), metric_name=prepared.task.metric_name,
                              callbacks=callbacks, device=prepared.device,
                              divergence_limit=prepared.task.divergence_limit, interrupt=interrupt,
                              param_groups=plan.param_groups(module), eval_modules=plan.eval_modules(module),
                              epoch_offset=len(records))
            trainer.fit(prepared.X_train, prepared.y_train, prepared.X_val, prepared.y_val, w=prepared.w_train,
                        w_val=prepared.w_val)
        finally:
            for p in module.parameters():
                p.requires_grad_(True)
        records += [{**logs, "phase": phase} for logs in trainer.history.records]
        state = trainer.state
        if config.early_stopping and state is not None and state.best < best[0]:
            best = (state.best, copy.deepcopy(module.state_dict()), state.best_epoch)
        if state is None or state.stop_training or (interrupt is not None and interrupt()):
            break  # a callback or the caller ended training: no further phase
    best_epoch = len(records)
    if config.early_stopping and best[1] is not None:
        module.load_state_dict(best[1])  # phase one's best may beat phase two's
        best_epoch = best[2]
    return TrainResult(module, records, best_epoch, report)


def with_progress(prepared: Prepared, callbacks: Sequence[Callback]) -> list[Callback]:
    """A member's callbacks, with a progress bar when its estimator is verbose."""
    return [*callbacks, *([ProgressBar(prepared.owner)] if prepared.verbose else [])]


def finish(estimator: Any, prepared: Prepared, result: TrainResult) -> Any:
    """Make ``estimator`` an ordinary fitted estimator holding ``result``; returns it."""
    history = pd.DataFrame(result.history)
    best_epoch = result.best_epoch if prepared.train_config.early_stopping else len(history)
    report, source = result.report, prepared.source
    lineage = None if report is None or source is None else [
        {"step": "init_from", "from": source.origin, "copied": len(report.copied), "total": report.total,
         "summary": report.summary()}, *[dict(step) for step in source.lineage]]
    return set_fitted(estimator, {
        **prepared.fitted.attributes(),
        "module_": result.module.eval(),
        "history_": history,
        "best_epoch_": int(best_epoch),
        "input_spec_": prepared.input_spec,
        "model_config_": prepared.model_config,
        "learning_rate_": float(prepared.train_config.learning_rate),
        "lr_finder_": prepared.lr_finder,  # None (no finder ran) removes an earlier fit's
        "init_report_": report.summary() if report is not None else None,
        "lineage_": lineage if lineage is not None else list(result.lineage),
        "conformal_": calibration(prepared, result.module),
    })


def calibration(prepared: Prepared, module: Any) -> Any:
    """The calibration of a fit on the validation rows it held out: a regressor's intervals
    (archtune.conformal, in the target's units), a classifier's prediction sets
    (archtune.prediction_sets); None for a fit without validation rows, or validation targets
    that are not the target's values (a distillation's packed targets: archtune.shrink.distill
    calibrates on the labels itself)."""
    from archtune.conformal import calibrate

    target = prepared.fitted.target
    if prepared.X_val is None or prepared.y_val is None or not len(prepared.y_val):
        return None
    if target.kind == "classification":
        return _set_calibration(prepared, module)
    if target.kind != "regression" or tuple(prepared.y_val.shape[1:]) != (target.n_outputs,):
        return None
    outputs = _validation_outputs(prepared, module)
    truth = prepared.y_val.cpu().double().numpy() * target.scale + target.mean
    levels = prepared.model_config.quantiles
    if levels:  # loss="quantile": conformalised quantile regression (archtune.conformal)
        from archtune.conformal import calibrate_quantiles
        from archtune.quantiles import decode

        return calibrate_quantiles(truth.ravel() if target.one_d else truth, decode(target, outputs, len(levels)),
                                   levels, "the validation rows of the fit")
    return calibrate(truth.ravel() if target.one_d else truth, target.decode(outputs),
                     "the validation rows of the fit")


def _validation_outputs(prepared: Prepared, module: Any) -> np.ndarray:
    """The network's outputs on the fit's validation rows, float64 on the CPU."""
    from archtune.train.loop import predict_tensor
    from archtune.train.threads import inference_threads

    X_val = prepared.X_val
    with inference_threads([module], len(X_val)) if prepared.device.type == "cpu" else nullcontext():
        with torch.no_grad():
            return predict_tensor(module.eval(), X_val.to(prepared.device)).cpu().double().numpy()


def class_probabilities(logits: torch.Tensor, binary: bool) -> torch.Tensor:
    """Class probabilities [n, n_classes] of a classifier's logits: the sigmoid of a binary
    network's one logit [n, 1] as (1 - p, p), else the softmax."""
    if binary:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)


def _set_calibration(prepared: Prepared, module: Any) -> Any:
    """A binary or multiclass classifier's prediction-set calibration (archtune.prediction_sets)
    on its validation rows, from the probabilities `NeuralClassifier.predict_proba` gives; None
    for other classification tasks (several labels per row)."""
    from archtune.prediction_sets import calibrate_sets

    target = prepared.fitted.target
    if target.task not in ("binary", "multiclass") or prepared.y_val[0].numel() != 1:
        return None  # several labels per row, or a distillation's packed targets
    proba = class_probabilities(torch.from_numpy(_validation_outputs(prepared, module)), target.task == "binary")
    codes = prepared.y_val.cpu().numpy().reshape(-1).astype("int64")
    return calibrate_sets(codes, proba.numpy(), "the validation rows of the fit")


def set_fitted(estimator: Any, attributes: Mapping[str, Any]) -> Any:
    """Set (or, for None, remove) fitted attributes: the one place they are written."""
    for name, value in attributes.items():
        if value is None:
            if name in vars(estimator):
                delattr(estimator, name)
        else:
            setattr(estimator, name, value)
    return estimator


def fitted_data(estimator: Any) -> FittedData:
    """A fitted estimator's `FittedData` (what `prepare` gave it)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "module_")
    names = getattr(estimator, "feature_names_in_", None)
    # The fitted architecture's family (a fit from init_from has the source's, not its own arch parameter).
    inputs = FittedInputs(type(estimator).__name__, estimator.model_config_.arch, int(estimator.n_features_in_),
                          None if names is None else tuple(map(str, names)),
                          tuple(getattr(estimator, "image_shape_", None) or ()),
                          tuple(getattr(estimator, "series_shape_", None) or ()),
                          tuple(estimator.preprocessor_.columns_))
    return FittedData(estimator.preprocessor_, estimator.target_encoder_, inputs)


def input_matrix(estimator: Any, X: Any, what: str = "X") -> Rows:
    """The network's input for X (checked against what fit saw): a float32 tensor, or
    `SparseRows` for a scipy sparse X (densified batch by batch where it is used)."""
    data = fitted_data(estimator)
    return transform_rows(data.preprocessor, Table.later(data.inputs, X, what), what)


def target_tensor(estimator: Any, y: Any, what: str = "y") -> torch.Tensor:
    """The training-form tensor of targets y for a fitted estimator (codes, or standardised values)."""
    target = fitted_data(estimator).target
    return target.tensor(target.encode(target_array(y, what), what))


def task_spec(estimator: Any) -> TaskSpec:
    """The `TaskSpec` of a fitted estimator."""
    target = fitted_data(estimator).target
    params = estimator.get_params()
    loss = params["loss"] if params["loss"] != "auto" else target.losses[0]
    return TaskSpec(target.task, target.n_outputs, loss, target.metric, quantiles=estimator.model_config_.quantiles)


__all__ = ["data_params", "finish", "fit_preprocessor", "fitted_data", "input_matrix", "prepare", "set_fitted",
           "target_tensor", "task_spec", "train", "transform_rows", "with_progress"]
