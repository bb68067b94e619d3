"""Fit several `NeuralClassifier` / `NeuralRegressor` configurations as one cohort.

The data is prepared once (split, preprocessing, target encoding) for the first estimator,
the leader; each member's network is built exactly as its own ``fit`` would build it, all are
trained together by `PopulationTrainer` when their family can be stacked (or one after
another on the same prepared data when it cannot), and each estimator is finished with its own
result, so that afterwards every estimator is an ordinary fitted estimator (``module_``,
``history_``, ``best_epoch_``, ``predict``), as if it had been fitted alone on the same data.

    from archtune.population import fit_population
    models = [NeuralClassifier(units=u, learning_rate=lr, random_state=0) for u, lr in configs]
    errors = fit_population(models, X, y)        # None for each member that trained

Members of a stack must agree on what the shared data pipeline and the stack depend on (see
`cohort_key`); widths, learning rates, schedules, regularisation, dropout and epochs differ
freely. This module makes every stacking decision: what a follower shares with its leader
(`STRUCTURE_PARAMS`), which estimators can share a stack (`cohort_key`), and whether prepared
data can be stacked at all (`can_stack`, from the family's registry entry).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from archtune.doctor.lr_finder import resolve_learning_rate
from archtune.config import PARAM_GROUPS
from archtune.custom_loss import is_custom
from archtune.errors import InvalidParameterError
from archtune.families import FAMILIES
from archtune.fitting import finish, prepare, set_fitted, train, with_progress
from archtune.prepared import Prepared, TrainResult
from archtune.models import get_family
from archtune.pretraining.semi_supervised import pretrains
from archtune.train.callbacks import Callback
from archtune.train.optim import make_optimizer
from archtune.train.population import PopulationTrainer, structure_signature
from archtune.train.threads import training_threads

# A cohort's followers share these with its leader, so that they can be stacked with it; the
# search's sampler chooses everything else (learning rate, schedule, warm-up, momentum,
# dropout, weight decay). The width is shared too: a stack pads every member to the widest,
# so members of 16 and 700 units together would cost each as much as the widest (measured: one
# epoch of such a cohort took 25 times the members' solo epochs together).
STRUCTURE_PARAMS = ("arch", "hidden_layers", "units", "shape", "activation", "norm", "parametric_activation",
                    "feature_scale", "numeric_embedding", "d_embedding", "n_frequencies", "n_bins", "binning",
                    "optimizer", "batch_size", "label_smoothing",
                    *(name for spec in FAMILIES.values() if spec.stackable for name in PARAM_GROUPS.get(spec.name, ())))
# Estimator parameters that the shared data pipeline depends on.
DATA_PARAMS = ("random_state", "validation_fraction", "early_stopping", "scaling", "categorical",
               "categorical_features", "class_weight", "clamp_outputs", "device", "mixed_precision",
               "backbone")  # a backbone's image pixels are not scaled (fitting.prepare)


def can_stack(prepared: Prepared) -> bool:
    """Whether networks of this prepared fit can train as one stack: the family says so
    (its registry entry), no text or image-column encoder needs training per member, and the
    fit does not start from a trained network (the stack has no frozen layers, learning-rate
    factors or phases: such members train one at a time), and it is not a quantile regression
    (the stacked layers have no non-crossing quantile head: such members train one at a time)."""
    spec = get_family(prepared.model_config.arch).spec
    return (spec.stackable and spec.can_stack(prepared.model_config) and not prepared.input_spec.text
            and not prepared.input_spec.images and prepared.source is None and not prepared.model_config.quantiles
            and not is_custom(prepared.train_config.loss))  # a user's loss sees one network's outputs


def cohort_key(estimator: Any, n_train: int) -> tuple | None:
    """Estimators with equal keys can be fitted together as a stack; None if this one cannot.

    The key holds the structure signature (family, depth, activation, norm, which residual
    blocks project, optimiser, batch size), a band of widest-layer widths, the loss, and the
    data parameters.
    """
    try:
        model_config = estimator.model_config()
        train_config = estimator.train_config(n_train, 0)
    except Exception:  # an invalid configuration is reported by its own fit
        return None
    params = estimator.get_params()
    spec = get_family(model_config.arch).spec
    if not (spec.stackable and spec.can_stack(model_config)) or not model_config.hidden_sizes \
            or params["init_from"] is not None or model_config.quantiles or is_custom(params["loss"]):
        return None  # a fit from a trained network, or a quantile regression, trains alone (see can_stack)
    data = tuple(repr(params[name]) for name in DATA_PARAMS)
    signature = structure_signature(model_config, train_config, model_config.hidden_sizes)
    # Members are padded to the widest, so widths in one stack stay within a factor sqrt(2)
    # (padding then at most doubles a member's arithmetic).
    width_band = math.floor(2 * math.log2(max(model_config.hidden_sizes)))
    return (type(estimator).__name__, signature, width_band, train_config.loss, train_config.label_smoothing, data)


def fit_population(estimators: Sequence[Any], X: Any, y: Any, validation_data: tuple[Any, ...] | None = None,
                   callbacks: Sequence[Sequence[Callback]] | None = None,
                   interrupt: Callable[[], bool] | None = None,
                   kinds: Mapping[str, str] | None = None, sample_weight: Any = None) -> list[BaseException | None]:
    """Fit ``estimators`` together on (X, y); return, per estimator, None when it is fitted or
    the exception that ended it (a callback's, or `TrainingDivergedError`).

    Parameters
    ----------
    estimators : sequence of NeuralClassifier or NeuralRegressor
        Of a stackable family (mlp, resnet, tabm) they train as one stack and must share a
        `cohort_key`; of other families (or with text or image columns) they train one after
        another.
    X, y, validation_data, sample_weight :
        As for ``fit``: every member trains on the same weighted rows, and its validation loss
        and metric are weighted as its own ``fit`` would weight them.
    callbacks : one list per estimator, optional
        A callback stops its own member by setting ``state.stop_training`` or raising.
    interrupt : callable, optional
        ``interrupt() -> bool``, checked every step: True ends the epoch and every member.
    kinds : dict, optional
        The columns' kinds, when already inferred (`infer_column_kinds`).

    Raises
    ------
    InvalidParameterError
        No estimators, or stackable estimators that cannot share a stack.
    """
    if not estimators:
        raise InvalidParameterError("fit_population needs at least one estimator")
    leader = estimators[0]
    per_member = [list(c) for c in callbacks] if callbacks else [[] for _ in estimators]
    if any(pretrains(est) for est in estimators):
        # Pretraining first (pretrain_epochs, pretrain()) happens in the estimator's own fit,
        # on its own rows: each member trains alone through it (``interrupt`` is not read).
        return [_fit_alone(est, X, y, validation_data, c, sample_weight) for est, c in zip(estimators, per_member)]
    prepared = prepare(leader, X, y, validation_data, kinds, sample_weight)
    if not can_stack(prepared):
        return _one_at_a_time(estimators, prepared, X, y, validation_data, per_member, interrupt, kinds,
                              sample_weight)
    n_train = len(prepared.X_train)
    key = cohort_key(leader, n_train)
    members = [prepared]
    for k, est in enumerate(estimators[1:], start=1):
        if cohort_key(est, n_train) != key:
            raise InvalidParameterError(
                f"estimator {k} cannot share a population with estimator 0: family, depth, activation, norm, "
                f"widest layer (within a factor 1.41), "
                f"optimizer, batch_size, loss and the data parameters ({', '.join(DATA_PARAMS)}) must match")
        # The same rows went through the same pipeline: only the configs are the member's own.
        members.append(prepared.for_estimator(est))
    members = [resolve_learning_rate(p) for p in members]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(prepared.seed)  # dropout masks draw from the global generator, as in fit
        modules = [p.build_network() for p in members]
        timed: dict[tuple, float] = {}
        for est, p, module in zip(estimators, members, modules):
            # What an epoch of this member would take alone: the search reserves time by it.
            # Members of the same shapes take the same time: timed once (32 members of one
            # width paid 128 solo steps, 5% of a small cohort's fit).
            shapes = tuple((name, tuple(t.shape)) for name, t in module.state_dict().items())
            if shapes not in timed:
                timed[shapes] = solo_epoch_seconds(module, p, p.task.loss_fn(p.device))
            set_fitted(est, {"solo_epoch_seconds_": timed[shapes]})
        trainer = PopulationTrainer(
            modules, [p.train_config for p in members], prepared.task.member_loss_fn(prepared.device),
            prepared.task.member_metric_fn(), prepared.task.metric_name,
            callbacks=[with_progress(p, c) for p, c in zip(members, per_member)],
            device=prepared.device, divergence_limit=prepared.task.divergence_limit, interrupt=interrupt)
        results = trainer.fit(prepared.X_train, prepared.y_train, prepared.X_val, prepared.y_val,
                              w=prepared.w_train, w_val=prepared.w_val)
    outcomes: list[BaseException | None] = []
    for est, p, module, result in zip(estimators, members, modules, results):
        if result.status != "complete" or result.state is None:
            outcomes.append(result.error or InvalidParameterError("member left the population without a result"))
            continue
        module.load_state_dict(result.state)
        finish(est, p, TrainResult(module.to(p.device), result.history, result.best_epoch))
        outcomes.append(None)
    return outcomes


def _fit_alone(estimator: Any, X: Any, y: Any, validation_data: Any, callbacks: list[Callback],
               sample_weight: Any) -> BaseException | None:
    try:
        estimator.fit(X, y, sample_weight=sample_weight, validation_data=validation_data, callbacks=callbacks)
        return None
    except Exception as exc:  # a pruner's signal or a divergence ends this member only
        return exc


def _one_at_a_time(estimators: Sequence[Any], prepared: Prepared, X: Any, y: Any, validation_data: Any,
                   callbacks: list[list[Callback]], interrupt: Callable[[], bool] | None,
                   kinds: Mapping[str, str] | None, sample_weight: Any = None) -> list[BaseException | None]:
    """Members that cannot be stacked: each trained alone, on the leader's prepared data when
    its data parameters (and its ``init_from``: the same object or path) are the leader's."""
    outcomes: list[BaseException | None] = []
    leader_data = tuple(repr(estimators[0].get_params()[name]) for name in DATA_PARAMS)
    leader_source = estimators[0].get_params()["init_from"]
    for k, est in enumerate(estimators):
        try:
            source = est.get_params()["init_from"]
            same_source = source is leader_source or (isinstance(source, str) and source == leader_source)
            if k == 0:
                own = prepared
            elif tuple(repr(est.get_params()[name]) for name in DATA_PARAMS) == leader_data and same_source:
                own = prepared.for_estimator(est)
            else:
                own = prepare(est, X, y, validation_data, kinds, sample_weight)
            own = resolve_learning_rate(own)
            finish(est, own, train(own, callbacks[k], interrupt=interrupt))
            outcomes.append(None)
        except Exception as exc:  # a pruner's signal or a divergence ends this member only
            outcomes.append(exc)
    return outcomes


def solo_epoch_seconds(module: torch.nn.Module, prepared: Prepared, loss: Any, steps: int = 3) -> float:
    """Seconds an epoch of this network takes when trained alone, from a few timed steps on
    a copy (the search needs it to reserve time for refitting a cohort member alone)."""
    cfg = prepared.train_config
    net = copy.deepcopy(module).to(prepared.device).train()
    optimizer = make_optimizer(cfg, net.parameters())
    n = len(prepared.X_train)
    batch = min(cfg.batch_size, n)
    xb, yb = prepared.X_train[:batch].to(prepared.device), prepared.y_train[:batch].to(prepared.device)
    timings = []
    threads = training_threads([net], xb[:1], batch) if prepared.device.type == "cpu" else nullcontext()
    with torch.random.fork_rng(devices=[]), threads:  # timed with the threads a solo fit would get
        for _ in range(steps + 1):  # the first step pays for allocation; it is not counted
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss(net(xb), yb).backward()
            optimizer.step()
            timings.append(time.perf_counter() - started)
    # Whole epochs also index the data, sum the loss and run callbacks: measured 1.0-1.3x the
    # steps alone, so the estimate leans high (a low one would cut the final refit short).
    return 1.25 * sorted(timings[1:])[len(timings[1:]) // 2] * math.ceil(n / batch)


__all__ = ["DATA_PARAMS", "STRUCTURE_PARAMS", "can_stack", "cohort_key", "fit_population", "solo_epoch_seconds"]
