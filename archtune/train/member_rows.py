"""Per-member rows: the members of a stack each train on their own rows, in their own order.

A cohort (archtune.train.population) shares one X: every member sees the same mini-batches.
Cross-validation bagging (archtune.ensemble.bagging) trains K members on K different row sets
(K-1 folds each, validated on the remaining fold), each shuffled by its own seed. `MemberRows`
holds those sets and cuts, each step, one batch per member, stacked as x [K, B, F]: member k's
batch is exactly the one its fit alone would draw (`torch.randperm` from a generator seeded
with its own seed), padded with rows of weight 0 where its batch is shorter (the members'
row counts differ by a row or so, so their last batches do). The loss of each member is its
own weighted mean over its real rows (`make_padded_member_loss`); a member whose epoch has
fewer steps than another's sits the extra steps out (its optimiser does not step); validation
gives each member's loss and metric over its own rows with the single-network arithmetic.
So each member follows its solo trajectory (tests/test_bagging_stacked.py checks it to 1e-8
in float64).

Batch normalisation cannot be exact here (its batch statistics would see the padded rows)
and is refused; callers fall back to training the members one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from archtune.errors import InvalidParameterError
from archtune.train.batches import rows_differ
from archtune.train.engines import EVAL_BATCH


class MemberRows:
    """Each member's own training and validation rows, row weights and data-order seed.

    Parameters
    ----------
    X, y : sequences of K tensors
        Member k's training rows, dense [n_k, F] (F the same for all), and targets [n_k, ...].
    seeds : sequence of K int
        Member k's data order is ``torch.randperm(n_k)`` from a CPU generator seeded with
        ``seeds[k]``, as `archtune.train.core.run` draws it for a network alone.
    loss_fn, metric_fn : callable
        The single-network validation loss and metric (``TaskSpec.loss_fn``, ``metric_fn``):
        each member's validation is computed on its own rows exactly as its fit alone does.
    w : sequence of K tensors or None, optional
        Row weights (None: unweighted member).
    X_val, y_val, w_val : sequences of K, optional
        Validation rows per member (without them, no validation).

    Raises
    ------
    InvalidParameterError
        Sequences of different lengths, sparse rows, or members of different input width.
    """

    def __init__(self, X: Sequence[torch.Tensor], y: Sequence[torch.Tensor], seeds: Sequence[int],
                 loss_fn: Callable[..., Any], metric_fn: Callable[..., Any],
                 w: Sequence[torch.Tensor | None] | None = None, X_val: Sequence[torch.Tensor] | None = None,
                 y_val: Sequence[torch.Tensor] | None = None, w_val: Sequence[torch.Tensor | None] | None = None):
        k = len(X)
        w = list(w) if w is not None else [None] * k
        w_val = list(w_val) if w_val is not None else [None] * k
        if not k or len(y) != k or len(seeds) != k or len(w) != k or len(w_val) != k or (
                X_val is not None and (len(X_val) != k or y_val is None or len(y_val) != k)):
            raise InvalidParameterError("MemberRows needs one X, y, seed (and weights, validation rows) per member")
        if not all(isinstance(x, torch.Tensor) for x in X) or len({x.shape[1] for x in X}) > 1:
            raise InvalidParameterError("per-member rows must be dense tensors of one width (sparse rows, or "
                                        "members whose inputs differ in width, train one at a time)")
        self.X, self.y, self.w = list(X), list(y), w
        self.X_val = list(X_val) if X_val is not None else None
        self.y_val = list(y_val) if y_val is not None else None
        self.w_val = w_val
        self.seeds = [int(s) for s in seeds]
        self.loss_fn, self.metric_fn = loss_fn, metric_fn
        self.sizes = [len(x) for x in X]
        self.has_val = self.X_val is not None and all(len(x) > 0 for x in self.X_val)
        self.varied = [bool(rows_differ(x)) for x in self.X_val] if self.has_val else []
        self._val_cache: tuple[tuple[int, ...], torch.Tensor] | None = None

    def to(self, device: torch.device) -> "MemberRows":
        """The rows on ``device`` (in place; returns self)."""
        def move(items: list | None) -> list | None:
            return None if items is None else [None if t is None else t.to(device) for t in items]

        self.X, self.y, self.w = move(self.X), move(self.y), move(self.w)
        self.X_val, self.y_val, self.w_val = move(self.X_val), move(self.y_val), move(self.w_val)
        self.device = device
        self._val_cache = None
        return self

    def steps_per_epoch(self, batch_size: int) -> list[int]:
        """Each member's steps per epoch, as alone: ``ceil(n_k / min(batch_size, n_k))``."""
        return [-(-n // min(batch_size, max(1, n))) for n in self.sizes]

    def begin(self, batch_size: int) -> None:
        """Start a run: fresh data-order generators, every member at step 0."""
        self.batch_size = batch_size
        self.generators = [torch.Generator(device="cpu").manual_seed(s) for s in self.seeds]
        self.steps = [0] * len(self.X)

    def train_epoch(self, engine: Any, active: Sequence[Any], interrupt: Callable[[], bool] | None,
                    batch_hooks: Sequence[tuple[Any, Any]]) -> tuple[list[float], bool]:
        """One epoch of every active member on its own rows; returns each member's epoch
        ``train_loss`` (its weighted mean over the rows it saw) and whether ``interrupt`` ended it."""
        index = [m.index for m in active]
        sizes = [self.sizes[i] for i in index]
        length, first, target = max(sizes), self.X[index[0]], self.y[index[0]]
        X = first.new_zeros((len(index), length, first.shape[1]))
        y = target.new_zeros((len(index), length, *target.shape[1:]))
        W = first.new_zeros((len(index), length))
        for pos, i in enumerate(index):  # this epoch's order of each member's rows, padded after them
            perm = torch.randperm(sizes[pos], generator=self.generators[i]).to(self.device)
            X[pos, :sizes[pos]] = self.X[i][perm]
            y[pos, :sizes[pos]] = self.y[i][perm]
            W[pos, :sizes[pos]] = 1 if self.w[i] is None else self.w[i][perm].to(W.dtype)
        size = self.batch_size
        steps = [-(-n // size) for n in sizes]
        loss_sum = torch.zeros(len(index), device=self.device, dtype=torch.float64)
        mass = torch.zeros(len(index), device=self.device, dtype=torch.float64)
        interrupted = False
        hooks = {}
        for m, cb in batch_hooks:
            hooks.setdefault(m.index, []).append(cb)
        for step in range(max(steps)):
            if step and interrupt is not None and interrupt():
                interrupted = True
                break
            idle = [step >= s for s in steps]
            rows = slice(step * size, min((step + 1) * size, length))
            wb = W[:, rows]
            losses = engine.step(X[:, rows], y[:, rows], [0.0 if out else m.lr for m, out in zip(active, idle)],
                                 wb, idle=idle if any(idle) else None)
            batch_mass = wb.sum(dim=1, dtype=torch.float64)  # rows' count, or total weight; 0 when idle
            loss_sum += losses.detach() * batch_mass
            mass += batch_mass
            for m, out in zip(active, idle):
                if out:
                    continue
                self.steps[m.index] += 1
                m.after_step(self.steps[m.index])
                for cb in hooks.get(m.index, ()):
                    cb.on_batch_end(m, self.steps[m.index] - 1)
        return (loss_sum / torch.where(mass > 0, mass, torch.ones_like(mass))).tolist(), interrupted

    @torch.no_grad()
    def evaluate(self, engine: Any, active: Sequence[Any]) -> tuple[list[float], list[Any], list[float | None]]:
        """Each active member's validation loss, metric and output spread on its own rows
        (spread None where the member's validation rows are all equal)."""
        assert self.X_val is not None and self.y_val is not None
        index = tuple(m.index for m in active)
        if self._val_cache is None or self._val_cache[0] != index:
            first = self.X_val[index[0]]
            padded = first.new_zeros((len(index), max(len(self.X_val[i]) for i in index), first.shape[1]))
            for pos, i in enumerate(index):
                padded[pos, :len(self.X_val[i])] = self.X_val[i]
            self._val_cache = (index, padded)
        padded = self._val_cache[1]
        net = engine.net
        size = net.eval_rows(EVAL_BATCH)
        net.eval()
        try:
            outputs = torch.cat([net(padded[:, i:i + size]) for i in range(0, padded.shape[1], size)], dim=1)
        finally:
            net.train()
        losses, metrics, spreads = [], [], []
        for pos, i in enumerate(index):  # each member's own rows, by the single-network arithmetic
            out, y, w = outputs[pos, :len(self.X_val[i])], self.y_val[i], self.w_val[i]
            losses.append(float(self.loss_fn(out, y) if w is None else self.loss_fn(out, y, w)))
            metrics.append(self.metric_fn(out, y) if w is None else self.metric_fn(out, y, w))
            spreads.append((float(out.double().std(dim=0).mean()) if len(out) > 1 else 0.0)
                           if self.varied[i] else None)
        return losses, metrics, spreads


__all__ = ["MemberRows"]
