"""Bagging of one configuration: K networks, each trained on K-1 folds of the rows with early
stopping on the fold it did not see; their out-of-fold predictions score the bag without a
separate validation split, and the bag predicts the average of its members (an `Ensemble`
of K networks with equal weights).

This is cross-validation bagging as AutoGluon and pytabkit use it for their final models.

Each member is prepared (`archtune.fitting.prepare`) on its own K-1 folds with random_state
seed + k, exactly as a fit of it alone would be. When the members can share a stack (a
stackable family without batch norm, dense inputs of one layout: the same input spec, so no
category missing from one fold's encoding; each keeps its own piecewise-linear bins), they
train together as one `StackedNetwork`, each on its own rows in its own order (archtune.train.member_rows): each
member's weights and history equal its fit alone (tests/test_bagging_stacked.py, to 1e-8 in
float64; dropout excepted, whose masks the stack draws from one shared stream). Otherwise they
train one after another. Either way every member is finished as an ordinary fitted estimator.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import KFold, StratifiedKFold

from archtune.ensemble.model import Ensemble, Member, make_ensemble


@dataclass
class Bag:
    """A bagged configuration.

    ensemble : Ensemble
        The K members with equal weights; each member's ``val_score`` is its score on the fold
        it did not train on.
    folds : list of ndarray
        Row positions (into the X given to `bag`) each member did not train on.
    oof : ndarray of shape (n_samples, n_classes), (n_samples,) or (n_samples, n_outputs)
        Out-of-fold predictions: row i predicted by the member that did not see it.
    oof_score : float
        The scorer's value on ``oof``.
    stacked : bool
        Whether the members trained together as one stack (else one after another).
    """

    ensemble: Ensemble
    folds: list[np.ndarray]
    oof: np.ndarray
    oof_score: float
    stacked: bool = False


def _rows(X: Any, index: np.ndarray) -> Any:
    return X.iloc[index] if isinstance(X, (pd.DataFrame, pd.Series)) else np.asarray(X)[index]


def make_folds(y: np.ndarray, n_folds: int, seed: int, stratify: bool) -> list[np.ndarray]:
    """The validation rows of each fold: every row in exactly one (stratified by class when
    every class has at least ``n_folds`` rows)."""
    positions = np.arange(len(y))
    if stratify and np.unique(y, return_counts=True)[1].min() >= n_folds:
        splitter: Any = StratifiedKFold(n_folds, shuffle=True, random_state=seed % 2**32)
        return [val for _, val in splitter.split(positions, y)]
    return [val for _, val in KFold(n_folds, shuffle=True, random_state=seed % 2**32).split(positions)]


def bag(make_estimator: Callable[[dict[str, Any]], Any], params: dict[str, Any], X: Any, y: np.ndarray,
        n_folds: int, task: str, scorer: Any, seed: int = 0, kinds: dict[str, str] | None = None,
        deadline: float | None = None, columns: list[str] | None = None,
        sample_weight: np.ndarray | None = None, stack: bool = True) -> Bag | None:
    """Train the configuration ``params`` as a bag of ``n_folds`` members.

    Parameters
    ----------
    make_estimator : callable
        ``make_estimator(params) -> unfitted NeuralClassifier / NeuralRegressor``.
    X : table of shape (n_samples, n_features), or images / series
    y : array of shape (n_samples,), or (n_samples, n_outputs) for a multi-output regression
    n_folds : int
        K >= 2: members, and folds.
    scorer : callable
        A scikit-learn scorer for the out-of-fold score.
    seed : int
        Seeds the folds, and member k is ``make_estimator`` with ``random_state=seed + k``
        (modulo 2**32): its initial weights, batch order and dropout. The default
        0 is a seed too: the bag is the same in every call.
    deadline : float, optional
        `time.monotonic()` by which the bag must be done (each member keeps its best epoch so
        far): a stack trains until then; members one after another, member k until its share
        ``(k + 1) / K`` of the time left has passed. Where it cuts training short, the epoch
        reached depends on the machine's speed and load: such a bag is not reproducible.
        None (the default): no deadline.
    sample_weight : array of shape (n_samples,), optional
        Row weights: each member trains and early-stops with its rows' weights, and the
        out-of-fold score is weighted.
    stack : bool
        Train the members as one stack when they can share one (see the module docstring);
        False: one after another.

    Returns
    -------
    Bag, or None when a member cannot be trained (the error is warned, naming the fold).

    Raises
    ------
    InvalidParameterError
        A multi-label classification y (archtune.data.multilabel): the folds are stratified
        and the members combined by one-label probabilities.

    Notes
    -----
    Reproducibility: the same rows, parameters and seed give the same members (weights,
    ``history_`` but for its ``seconds`` column, which is measured time), folds and
    out-of-fold predictions, whatever the session drew from NumPy's or torch's global
    generators before, unless a ``deadline`` stops training. The training steps are float
    sums that torch may split among its threads (`archtune.train.threads`: one thread unless
    the steps, the K members' together in a stack, are large, at most the idle cores, i.e.
    the load average), so another thread count can change their last bits and, through early
    stopping, the epoch kept; ``torch.set_num_threads(n)`` fixes it (archtune keeps a count the
    user set). On a GPU, PyTorch's non-deterministic kernels add their own differences.
    """
    from archtune.doctor.lr_finder import resolve_learning_rate
    from archtune.fitting import finish, prepare, train
    from archtune.train.callbacks import StopAtDeadline
    from archtune.data.multilabel import refuse_multilabel

    if task == "classification":
        refuse_multilabel("bagging", y)

    classes = np.unique(y) if task == "classification" else None
    folds = make_folds(y, n_folds, seed, stratify=task == "classification")
    started = time.monotonic()
    # Modulo 2**32: a seed near the top of the range still gives every member a valid random_state.
    estimators = [make_estimator({**params, "random_state": (seed + k) % 2**32}) for k in range(n_folds)]

    def fail(k: int, exc: BaseException) -> None:  # one member that cannot train ends the bag, never the search
        warnings.warn(f"bagging: member {k + 1} of {n_folds} could not be trained ({type(exc).__name__}: "
                      f"{exc}); no bag", RuntimeWarning, stacklevel=3)

    def prepared_member(k: int) -> Any:
        held_out = folds[k]
        trained_on = np.setdiff1d(np.arange(len(y)), held_out)
        return resolve_learning_rate(prepare(
            estimators[k], _rows(X, trained_on), y[trained_on],
            validation_data=(_rows(X, held_out), y[held_out], _part(sample_weight, held_out)), kinds=kinds,
            sample_weight=_part(sample_weight, trained_on)))

    preparations: list[Any] = []
    stacked = False
    if stack:
        for k in range(n_folds):
            try:
                preparations.append(prepared_member(k))
            except Exception as exc:
                fail(k, exc)
                return None
            if not _can_stack(preparations):
                break  # the others train one after another (each prepared when its turn comes)
        else:
            error = _train_stacked(estimators, preparations, deadline)
            if error is not None:
                fail(*error)
                return None
            stacked = True
    if not stacked:
        for k in range(n_folds):
            member_deadline = None if deadline is None else started + (deadline - started) * (k + 1) / n_folds
            try:
                prepared = preparations[k] if k < len(preparations) else prepared_member(k)
                finish(estimators[k], prepared, train(prepared, [StopAtDeadline(member_deadline)]))
            except Exception as exc:
                fail(k, exc)
                return None
    members, oof = [], None
    for k, (estimator, held_out) in enumerate(zip(estimators, folds)):
        member = Member(f"bag member {k + 1}", estimator, "network", float("nan"))
        prediction = member.prediction(_rows(X, held_out), classes)
        if oof is None:
            oof = np.zeros((len(y), *prediction.shape[1:]))
        oof[held_out] = prediction
        # Its own score: on the fold it did not train on (and early-stopped on), with its weights.
        member.val_score = _score(scorer, prediction, classes, y[held_out], _part(sample_weight, held_out))
        members.append(member)
    ensemble = make_ensemble(task, members, np.full(n_folds, 1.0 / n_folds), classes, None, columns)
    score = _score(scorer, oof, classes, y, sample_weight)
    ensemble.val_score = score
    if task == "regression":  # each row's error by the member that did not train on it
        from archtune.conformal import calibrate

        ensemble.conformal_ = calibrate(y, oof, "the bag's out-of-fold rows")
    elif np.asarray(y).ndim == 1:  # each row's class probabilities by the member that did not train on it
        from archtune.prediction_sets import calibrate_sets

        position = {label: j for j, label in enumerate(classes)}
        ensemble.conformal_ = calibrate_sets([position[v] for v in y], oof, "the bag's out-of-fold rows")
    return Bag(ensemble, folds, oof, score, stacked)


def _score(scorer: Any, prediction: np.ndarray, classes: np.ndarray | None, y: np.ndarray,
           sample_weight: np.ndarray | None) -> float:
    """The scorer's value of predictions already made (probabilities with ``classes``, or
    values of one or several outputs) against ``y``."""
    from archtune.ensemble.build import recorded

    rows = np.arange(len(y)).reshape(-1, 1)
    stand_in = recorded(prediction, classes)
    return float(scorer(stand_in, rows, y) if sample_weight is None
                 else scorer(stand_in, rows, y, sample_weight=sample_weight))


def _can_stack(preparations: list[Any]) -> bool:
    """Whether the members prepared so far can train as one stack, each on its own rows: a
    stackable family (`can_stack`), no batch norm (its statistics would see padded rows),
    dense inputs, and the first member's input layout, targets and loss (the same input spec
    but for the bins' edges: a category missing from one fold's encoding makes them differ)."""
    from archtune.population import can_stack

    first, last = preparations[0], preparations[-1]
    return (can_stack(last) and last.model_config.norm != "batch" and isinstance(last.X_train, torch.Tensor)
            and last.X_val is not None and _layout(last) == _layout(first)
            and last.X_train.shape[1] == first.X_train.shape[1] and last.task == first.task
            and last.model_config == first.model_config and last.device == first.device
            and last.train_config.batch_size == first.train_config.batch_size
            and last.train_config.optimizer == first.train_config.optimizer)


def _layout(prepared: Any) -> Any:
    """The input spec but for the piecewise-linear bins, which each member of a stack keeps
    its own of (fitted on its own rows)."""
    return dataclasses.replace(prepared.input_spec, bins=())


def _train_stacked(estimators: list[Any], preparations: list[Any],
                   deadline: float | None) -> tuple[int, BaseException] | None:
    """Train the prepared members as one stack on their own rows and finish each estimator
    with its result, as `fitting.train` and `finish` would alone; (member, error) when one
    did not complete."""
    from archtune.fitting import finish, with_progress
    from archtune.prepared import TrainResult
    from archtune.train.callbacks import StopAtDeadline
    from archtune.train.member_rows import MemberRows
    from archtune.train.population import PopulationTrainer

    first = preparations[0]
    device = first.device
    rows = MemberRows([p.X_train for p in preparations], [p.y_train for p in preparations],
                      [p.seed for p in preparations], first.task.loss_fn(device), first.task.metric_fn(),
                      w=[p.w_train for p in preparations], X_val=[p.X_val for p in preparations],
                      y_val=[p.y_val for p in preparations], w_val=[p.w_val for p in preparations])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(first.seed)  # dropout masks draw from the global generator (one stream for the stack)
        modules = [p.build_network() for p in preparations]
        trainer = PopulationTrainer(
            modules, [p.train_config for p in preparations], first.task.padded_member_loss_fn(device),
            first.task.member_metric_fn(), first.task.metric_name,
            # The members train together, so each may use the whole time left.
            callbacks=[with_progress(p, [StopAtDeadline(deadline)]) for p in preparations],
            device=device, divergence_limit=first.task.divergence_limit)
        results = trainer.fit(None, None, rows=rows)
    for k, (est, p, module, result) in enumerate(zip(estimators, preparations, modules, results)):
        if result.status != "complete" or result.state is None:
            return k, result.error or RuntimeError("the member left the stack without a result")
        module.load_state_dict(result.state)
        finish(est, p, TrainResult(module.to(device), result.history, result.best_epoch))
    return None


def _part(weights: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if weights is None else weights[rows]


__all__ = ["Bag", "bag", "make_folds"]
