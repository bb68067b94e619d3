"""The training core: one loop for a network trained alone and for a cohort trained as a stack.

The loop (`run`) owns what every training run shares, written once: the data order, the
mini-batches, each member's learning-rate schedule, the per-epoch logs, validation, divergence,
early stopping with the best weights kept, the callbacks, and members leaving when they are
done. What differs between one network and a stack of them lives in an engine
(archtune.train.engines): how a step is taken, how validation outputs are computed, how a
member's weights are read.

Callbacks see one protocol in both cases, a `TrainingState` per member (archtune.train.state):
its ``config``, ``epoch``, ``history``, ``best_epoch``, ``metric_name``, ``schedule``, ``lr``,
``module`` (the member's network) and ``stop_training``, which a callback sets to stop its
member. The state records each epoch and decides divergence and early stopping; the loop here
drives it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import torch

from archtune.errors import InvalidParameterError
from archtune.train.batches import Rows, rows_differ
from archtune.train.member_rows import MemberRows
from archtune.train.memory import keep_freed_memory
from archtune.train.optim import regularisation_factor
from archtune.train.state import Callback, Engine, TrainingState
from archtune.train.threads import training_threads


def _overrides(cb: Callback, hook: str) -> bool:
    return getattr(type(cb), hook) is not getattr(Callback, hook)


def run(engine: Engine, members: list[TrainingState], X: Rows, y: torch.Tensor,
        X_val: Rows | None, y_val: torch.Tensor | None, *, seed: int, device: torch.device,
        divergence_limit: float | None = None, interrupt: Callable[[], bool] | None = None,
        on_leave: Callable[[TrainingState], None] | None = None, w: torch.Tensor | None = None,
        w_val: torch.Tensor | None = None, rows: MemberRows | None = None) -> None:
    """Train ``members`` through ``engine`` on (X, y), validating on (X_val, y_val).

    All members see the same mini-batches, in an order drawn from ``seed``. ``w`` and
    ``w_val`` are row weights (None: unweighted): each batch's loss is their weighted mean, the
    epoch's ``train_loss`` the weighted mean over its rows, and the validation loss and metric
    (hence early stopping and the best epoch) are weighted too. ``interrupt()``,
    checked every step, ends the epoch at once (its validation still runs and the callbacks
    see it) and every member stops. ``on_leave(member)`` runs as each member leaves, before
    its slot in the engine is given up. X and X_val are dense tensors or `SparseRows` (a
    sparse matrix whose batches are densified as they are drawn).

    With ``rows`` (`MemberRows`; X, y, X_val, y_val, w, w_val and ``seed`` are then unused),
    each member trains on its own rows in its own order and validates on its own rows: a
    separate branch, so that a stack sharing one X pays nothing for it.
    """
    if rows is not None:
        rows = rows.to(device)
        X, has_val, varied, n = rows.X[0], rows.has_val, True, max(rows.sizes)
    else:
        X, y = X.to(device), y.to(device)
        w = w.to(device) if w is not None else None
        has_val = X_val is not None and len(X_val) > 0
        if has_val:
            X_val, y_val = X_val.to(device), y_val.to(device)  # type: ignore[union-attr]
            w_val = w_val.to(device) if w_val is not None else None
        # Constant outputs mean a dead network only if the validation rows differ at all.
        varied = bool(has_val and rows_differ(X_val))  # type: ignore[arg-type]
        n = len(X)
    batch_size = min(members[0].config.batch_size, n)
    if engine.has_batchnorm and batch_size < 2:
        raise InvalidParameterError(
            f"batch_size must be at least 2 with norm='batch' (batch statistics need two rows); "
            f"got batch_size={batch_size}; use norm='layer' for per-sample training")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    if rows is not None:
        if engine.has_batchnorm:
            raise InvalidParameterError("members with their own rows cannot train batch norm exactly (its batch "
                                        "statistics would see the padded rows); train them one at a time")
        rows.begin(batch_size)
    active = list(members)
    engine.begin()
    step = 0
    context = ExitStack()
    if device.type == "cpu":  # the threads this run's steps pay for (archtune.train.threads)
        keep_freed_memory()  # no page faults for each step's fresh activations (archtune.train.memory)
        context.enter_context(training_threads([engine.member_module(i) for i in range(len(members))], X[:1],
                                               batch_size))
    try:
        for member in members:
            for cb in member.callbacks:
                cb.on_train_begin(member)
        scheduled = any(m.config.dropout_schedule != "constant" or m.config.weight_decay_schedule != "constant"
                        for m in members)
        for epoch in range(1, max(m.config.max_epochs for m in members) + 1):
            started = time.perf_counter()
            engine.train_mode(True)
            if scheduled:  # dropout and weight decay by each member's progress through its epochs
                engine.regularise(
                    [regularisation_factor(m.config.dropout_schedule, (epoch - 1) / m.config.max_epochs) for m in active],
                    [regularisation_factor(m.config.weight_decay_schedule, (epoch - 1) / m.config.max_epochs)
                     for m in active])
            batch_hooks = [(m, cb) for m in active for cb in m.callbacks if _overrides(cb, "on_batch_end")]
            if rows is not None:  # each member its own batches (archtune.train.member_rows)
                train_loss, interrupted = rows.train_epoch(engine, active, interrupt, batch_hooks)
            else:
                perm = torch.randperm(n, generator=generator).to(device)
                # float64: the epoch mean must not depend on float32 rounding of a long sum.
                loss_sum = torch.zeros(len(active), device=device, dtype=torch.float64)
                seen = 0
                mass: Any = 0  # the rows' total weight so far (their count when unweighted)
                interrupted = False
                for start in range(0, n, batch_size):
                    idx = perm[start:start + batch_size]
                    if engine.has_batchnorm and len(idx) < 2:
                        break  # a lone leftover row cannot be batch-normalised; it is seen next epoch
                    if seen and interrupt is not None and interrupt():
                        interrupted = True
                        break
                    wb = w[idx] if w is not None else None
                    losses = engine.step(X[idx], y[idx], [m.lr for m in active], wb)
                    # Each batch's loss is its mean: weighted by its rows' count (or total weight),
                    # the epoch's loss is the (weighted) mean over all its rows.
                    batch_mass = len(idx) if wb is None else wb.sum(dtype=torch.float64)
                    loss_sum += losses.detach() * batch_mass
                    mass = mass + batch_mass
                    seen += len(idx)
                    step += 1
                    for m in active:
                        m.after_step(step)
                    for m, cb in batch_hooks:
                        cb.on_batch_end(m, step - 1)
                train_loss = (loss_sum / (mass if w is not None and seen else max(1, seen))).tolist()
            if has_val:
                val_loss, val_metric, val_spread = (
                    rows.evaluate(engine, active) if rows is not None
                    else engine.evaluate(X_val, y_val, w_val))  # type: ignore[arg-type]
            seconds = (time.perf_counter() - started) / len(active)
            leaving: list[int] = []
            for pos, member in enumerate(active):
                logs: dict[str, Any] = {"epoch": epoch + member.epoch_offset, "train_loss": train_loss[pos],
                                        "lr": member.lr}
                if has_val:
                    logs["val_loss"] = val_loss[pos]
                    if val_metric[pos] is not None:
                        logs[f"val_{member.metric_name}"] = val_metric[pos]
                    if varied and val_spread[pos] is not None:  # how much outputs vary: 0 when a layer is dead
                        logs["val_output_std"] = val_spread[pos]
                logs["seconds"] = seconds
                if member.end_epoch(logs, divergence_limit, interrupted):
                    leaving.append(pos)
            if leaving:
                for pos in leaving:
                    if on_leave is not None:
                        on_leave(active[pos])
                keep = [pos for pos in range(len(active)) if pos not in set(leaving)]
                active = [active[pos] for pos in keep]
                if not active:
                    break
                engine.remove(keep)
                for pos, member in enumerate(active):
                    member.position = pos
    except BaseException as exc:  # the callbacks' on_train_end learns what ended training
        for member in members:
            if member.status == "running":
                member.status, member.error = ("failed" if isinstance(exc, Exception) else "interrupted"), exc
        raise
    finally:
        try:
            for member in members:
                for cb in member.callbacks:
                    cb.on_train_end(member)
        finally:
            context.close()


__all__ = ["run"]
