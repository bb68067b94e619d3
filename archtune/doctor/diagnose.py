"""`archtune.diagnose`: what is wrong with this network, and what to change.

Given an unfitted estimator, the doctor trains a copy in an instrumented run (the estimator's
own settings, at most ``max_epochs`` epochs) and watches its gradients, updates, losses and
hidden units. Given a fitted estimator or a saved run directory, it reads the learning curves
kept in the model and probes the fitted network on (X, y). Either way the data itself is
checked too. Each detector is a function of numbers (archtune.doctor.detectors), so that what
it decides is testable without training anything.

    from archtune import NeuralClassifier, diagnose
    print(diagnose(NeuralClassifier(hidden_layers=20, activation="sigmoid"), X, y))
    # [error] vanishing_gradients: the first layer's gradient is 1e-09 of the output layer's ...
"""

from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from archtune.checks import check_number
from archtune.doctor import data_checks, detectors
from archtune.doctor.evidence import Evidence
from archtune.doctor.findings import Diagnosis, Finding
from archtune.doctor.probes import (TrainingRecorder, duplicate_units, gradient_rms, recording_loss,
                                    unit_stats)
from archtune.data.table import Table
from archtune.doctor.lr_finder import resolve_learning_rate
from archtune.errors import InvalidParameterError, TrainingDivergedError
from archtune.fitting import input_matrix, prepare, target_tensor, task_spec
from archtune.prepared import Prepared, TaskSpec
from archtune.train.batches import dense_rows
from archtune.train.threads import training_threads
from archtune.transfer.copy import is_output

DEFAULT_EPOCHS = 30


def diagnose(model_or_run_dir: Any, X: Any = None, y: Any = None, *, max_epochs: int | None = None,
             initialize: Callable[[nn.Module], None] | None = None) -> Diagnosis:
    """Diagnose a network: an estimator (fitted or not) or a run directory saved by
    ``archtune fit`` / ``archtune tune`` / `archtune.save`.

    Parameters
    ----------
    model_or_run_dir : NeuralClassifier, NeuralRegressor, Auto estimator, or path
        Unfitted: trained in an instrumented run on (X, y) first (the estimator is not
        changed). Fitted or saved: its learning curves and weights are examined.
    X, y : optional for a fitted model or a run directory
        The data to probe the network with (and to check for data problems). Without them only
        the learning curves and the weights are examined.
    max_epochs : int, optional
        Cap on the epochs of the instrumented run (default: the estimator's ``max_epochs``, at
        most 30). Early stopping applies as the estimator says.
    initialize : callable, optional
        ``initialize(module)`` is applied to the freshly built network before the instrumented
        run: diagnose a custom initialisation (e.g. biases set to a constant).
    """
    source, model = _resolve(model_or_run_dir)
    if max_epochs is not None:
        check_number("max_epochs", max_epochs, 1, integer=True)
    if (X is None) != (y is None):
        raise InvalidParameterError("pass both X and y, or neither")
    fitted = hasattr(model, "module_")
    if not fitted and X is None:
        raise InvalidParameterError(f"{type(model).__name__} is not fitted: pass X and y for an instrumented run")
    if fitted and initialize is not None:
        raise InvalidParameterError("initialize applies to the instrumented run of an unfitted estimator only")

    findings: list[Finding] = []
    checked: list[str] = []
    prepared = prepare(model, X, y) if X is not None else None  # the split and encoding fit uses
    if prepared is not None:
        # The data checks read the table the network sees: images, series and dicts as rows
        # (a Table made at the caller's entry, the command line's, is read and typed already).
        table = Table.read(X, "X", model.get_params()["arch"]).dense().typed()
        findings += data_checks.run_all(model, table, y, prepared, checked, arrays=table.array_kind is not None)
        if not fitted:
            prepared = resolve_learning_rate(prepared)  # learning_rate="auto" runs the finder
    if fitted:
        evidence = _fitted_evidence(model, X, y)
    else:
        evidence = _instrumented_run(model, prepared, max_epochs, initialize)
    if prepared is not None:
        evidence.transfer = transfer_reference(model, X, y, prepared, max_epochs)
    findings += detectors.run_all(evidence, checked)
    return Diagnosis(findings, checked, source)


def diagnose_fitted(model: Any, X: Any = None, y: Any = None) -> Diagnosis:
    """The network checks alone (no data checks) on a fitted estimator: what the search stores
    for each trial."""
    checked: list[str] = []
    findings = detectors.run_all(_fitted_evidence(model, X, y), checked)
    return Diagnosis(findings, checked, type(model).__name__)


def _resolve(model_or_run_dir: Any) -> tuple[str, Any]:
    if isinstance(model_or_run_dir, (str, os.PathLike)):
        from archtune.bundles.network import load

        return str(model_or_run_dir), load(Path(model_or_run_dir))
    model = getattr(model_or_run_dir, "best_estimator_", model_or_run_dir)
    if not hasattr(model, "target_kind"):
        raise InvalidParameterError(f"diagnose takes an archtune estimator or a run directory, not "
                                    f"{type(model_or_run_dir).__name__}")
    return type(model).__name__, model


def _base(est: Any, task: TaskSpec, history: pd.DataFrame, loss_fn: Any = None, y: torch.Tensor | None = None,
          device: Any = "cpu") -> Evidence:
    params = est.get_params()
    if hasattr(est, "learning_rate_"):
        params["learning_rate"] = est.learning_rate_  # what "auto" chose, for the advice
    return Evidence(task=task.task, history=task_epochs(history),
                    constant_loss=_constant_loss(task, loss_fn, y, device), params=params)


def task_epochs(history: pd.DataFrame) -> pd.DataFrame:
    """The epochs of the network's own task: a fit that pretrained (``phase`` "pretrain")
    logged the pretext task's loss first, another quantity on another scale (a masked-feature
    loss near 2 before a cross-entropy near 0.3; a rotation loss near 0.05 before it), so the
    learning-curve checks would read the change of task as a jump of the loss, a minimum of the
    validation loss or a network that has learned. They read the supervised phases only
    ("head" and "fine_tune" train the same loss on the same rows, so their curves join); the
    ``epoch`` column keeps the numbers the history shows."""
    if "phase" not in history:
        return history
    return history[history["phase"].to_numpy() != "pretrain"].reset_index(drop=True)


def _constant_loss(task: TaskSpec, loss_fn: Any, y: torch.Tensor | None, device: Any = "cpu") -> float:
    """The loss of the best constant prediction on ``y``: the class priors' log-odds, or the
    (standardised) mean. A network whose loss stays near it has learned next to nothing."""
    if loss_fn is None or y is None or len(y) == 0:
        return task.constant_loss
    if task.task == "regression":
        outputs = torch.zeros(len(y), y.shape[1] if y.ndim > 1 else 1)
    else:
        counts = torch.bincount(y.long().reshape(-1), minlength=max(2, task.n_outputs)).double()
        priors = (counts / counts.sum()).clamp_min(1e-12)
        logits = (priors[1] / priors[0]).log().reshape(1) if task.task == "binary" else priors.log()
        outputs = logits.float().expand(len(y), -1)
    with torch.no_grad():  # on the loss's device: class weights live there
        return float(loss_fn(outputs.to(device), y.to(device)))


def _instrumented_run(model: Any, prepared: Prepared, max_epochs: int | None,
                      initialize: Callable[[nn.Module], None] | None) -> Evidence:
    from archtune.train.loop import Trainer

    config = prepared.train_config
    epochs = max_epochs if max_epochs is not None else min(config.max_epochs, DEFAULT_EPOCHS)
    config = dataclasses.replace(config, max_epochs=epochs)
    task = prepared.task
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(prepared.seed)
        module, report = prepared.initial_network()
        module = module.to(prepared.device)
        zero_head = report is not None and bool(report.copied) and any(is_output(n) for n in report.new)
        if initialize is not None:
            with torch.no_grad():
                initialize(module)
        # Sparse rows are probed on a densified sample (the probes read whole inputs).
        probe_rows = dense_rows(prepared.X_val if prepared.X_val is not None else prepared.X_train).to(prepared.device)
        initial_units = unit_stats(module, probe_rows)
        initial_duplicates = duplicate_units(module)
        recorder = TrainingRecorder(module)
        trainer = Trainer(module, recording_loss(task.loss_fn(prepared.device), recorder), config,
                          metric=task.metric_fn(), metric_name=task.metric_name, callbacks=[recorder],
                          device=prepared.device, divergence_limit=task.divergence_limit)
        diverged = None
        try:
            trainer.fit(prepared.X_train, prepared.y_train, prepared.X_val, prepared.y_val)
        except TrainingDivergedError as exc:
            diverged = str(exc)
    evidence = _base(model, task, pd.DataFrame(trainer.history.records), task.loss_fn(prepared.device),
                     prepared.y_train, prepared.device)
    evidence.record = recorder.record
    evidence.grad_rms = recorder.record.grad_rms
    evidence.layers = recorder.record.layers
    evidence.initial_units = initial_units
    evidence.final_units = unit_stats(module, probe_rows) if diverged is None else []
    evidence.initial_duplicates = initial_duplicates
    evidence.final_duplicates = duplicate_units(module)
    evidence.diverged = diverged
    evidence.zero_head = zero_head
    return evidence


def transfer_reference(model: Any, X: Any, y: Any, prepared: Prepared,
                       max_epochs: int | None = None) -> dict[str, Any] | None:
    """For a fit from ``init_from``: the fine-tuned network's validation score (accuracy or
    R^2) and a scratch fit's on the same validation rows, the evidence of the
    ``transfer_below_scratch`` check; None for a fit from random weights, without validation
    rows, or when a fit diverges (exploding_gradients says so).

    The reference is a fit, not a guess from the curves: the learning curves of one fit say
    nothing of where another start would have ended (a fine-tuned network's curve can look
    healthy all the way and still end below scratch: bench/transfer_defaults.py). The scratch
    fit is the estimator as it would fit without ``init_from`` (its own preprocessing and
    parameters, in the source's architecture family, which ``init_from`` imposed) with the
    same seed, so the same split of (X, y), for the fit's ``max_epochs`` (a fitted model) or
    the doctor's cap (``max_epochs``, else at most 30, as the instrumented run); an unfitted
    estimator is first fine-tuned as ``fit`` would (``freeze``, ``fine_tune_lr_factor`` ...,
    under the same cap). So the doctor spends one more fit on a fitted model from
    ``init_from``, two on an unfitted one, none otherwise, and the search's per-trial
    diagnosis (`diagnose_fitted`) never runs it. A fitted model is scored on the validation
    rows of the split of (X, y): the rows its own fit validated on when X, y are its
    training rows and ``random_state`` is an integer (otherwise rows it may have trained on,
    which can only hide a loss, never invent one)."""
    from archtune.fitting import train
    from archtune.pretraining.semi_supervised import take_rows

    if model.get_params()["init_from"] is None or prepared.source is None or prepared.X_val is None:
        return None
    fitted = hasattr(model, "module_")
    config = prepared.train_config
    epochs = max_epochs if max_epochs is not None else (
        config.max_epochs if fitted else min(config.max_epochs, DEFAULT_EPOCHS))
    params = {**model.get_params(deep=False), "init_from": None, "freeze": None, "max_epochs": epochs,
              "arch": prepared.source.model_config.arch, "random_state": prepared.seed, "verbose": 0}
    scratch = type(model)(**params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # parameters init_from ignored are the scratch fit's own
            reference = prepare(scratch, X, y)
        if not np.array_equal(reference.val_rows, prepared.val_rows):
            return None  # not the same rows (cannot happen with the same seed and targets)
        metric = prepared.task.metric_fn()
        if fitted:
            rows = prepared.val_rows
            transfer = _score(model.module_, input_matrix(model, take_rows(X, rows)),
                              target_tensor(model, np.asarray(y)[rows]), metric)
        else:
            capped = dataclasses.replace(prepared, train_config=dataclasses.replace(config, max_epochs=epochs))
            transfer = _score(train(capped).module, prepared.X_val, prepared.y_val, metric)
        scratch_module = train(resolve_learning_rate(reference)).module
    except TrainingDivergedError:
        return None
    return {"metric": prepared.task.metric_name, "transfer_score": transfer,
            "scratch_score": _score(scratch_module, reference.X_val, reference.y_val, metric),
            "val_rows": int(len(prepared.y_val)), "scratch_epochs": int(epochs), "scratch_arch": params["arch"],
            "fine_tune_lr_factor": prepared.fine_tuning.lr_factor,  # "auto" as resolved for this source
            "source": str(prepared.source.origin)}


def _score(module: nn.Module, X: Any, y: torch.Tensor, metric: Callable[..., float]) -> float:
    from archtune.train.engines import predict_tensor

    module = copy.deepcopy(module).cpu()
    with torch.no_grad():
        return float(metric(predict_tensor(module, X), y))


def _fitted_evidence(model: Any, X: Any, y: Any) -> Evidence:
    from archtune.doctor.probes import weight_layers

    task = task_spec(model)
    evidence = _base(model, task, model.history_)
    module = copy.deepcopy(model.module_).cpu()
    evidence.layers = [name for name, _ in weight_layers(module)]
    evidence.final_duplicates = duplicate_units(module)
    if X is not None:
        X_t = input_matrix(model, X)
        y_t = target_tensor(model, np.asarray(y))
        loss_fn = task.loss_fn(torch.device("cpu"))
        batch = model.train_config(len(X_t), 0).batch_size
        with training_threads([module], X_t[:1], batch):  # the probes' work is a few small steps
            evidence.final_units = unit_stats(module, X_t)
            evidence.grad_rms = gradient_rms(module, loss_fn, X_t, y_t, batch)
        evidence.constant_loss = _constant_loss(task, loss_fn, y_t)
    return evidence
