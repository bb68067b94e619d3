"""The Trainer: mini-batch training of one network from a `TrainConfig`.

Data lives in memory as tensors and mini-batches are cut by indexing a per-epoch permutation:
for the small networks archtune trains, a DataLoader's per-batch Python overhead would cost
more than the arithmetic. Losses are accumulated on the device and read once per epoch, so
there is no host synchronisation inside the batch loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from archtune.config import TrainConfig
from archtune.errors import InvalidParameterError
from archtune.train.callbacks import Callback, EarlyStopping, History, LRScheduler, TerminateOnNaN
from archtune.train.optim import LRSchedule, make_optimizer

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MetricFn = Callable[[torch.Tensor, torch.Tensor], float]

EVAL_BATCH = 8192


def penalised_weights(module: nn.Module) -> list[torch.Tensor]:
    """Weights that L1/L2 and weight decay act on: those of Linear and convolution layers, not
    biases or norms."""
    return [m.weight for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]


def _overrides(cb: Callback, hook: str) -> bool:
    return getattr(type(cb), hook) is not getattr(Callback, hook)


class Trainer:
    """Train ``module`` with ``loss_fn`` as ``config`` says.

    Parameters
    ----------
    module : torch.nn.Module
        The network; trained in place.
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar tensor`` (the data loss, without penalties).
    config : TrainConfig
        Optimiser, schedule, regularisation, batch size, epochs and early stopping.
    metric : callable, optional
        ``metric(outputs, targets) -> float`` computed on the validation set each epoch.
    metric_name : str
        Name under which the metric appears in the history (``val_<name>``).
    callbacks : sequence of Callback
        Added after the standard ones (History, LRScheduler, TerminateOnNaN, EarlyStopping).
    device : torch.device or str
    divergence_limit : float, optional
        A training loss above this stops training as diverged (see `TerminateOnNaN`).
    """

    def __init__(
        self,
        module: nn.Module,
        loss_fn: LossFn,
        config: TrainConfig,
        *,
        metric: MetricFn | None = None,
        metric_name: str = "metric",
        callbacks: Sequence[Callback] = (),
        device: torch.device | str = "cpu",
        divergence_limit: float | None = None,
    ):
        self.module = module
        self.loss_fn = loss_fn
        self.config = config
        self.metric = metric
        self.metric_name = metric_name
        self.device = torch.device(device)
        self.history = History()
        self.early_stopping = EarlyStopping(patience=config.patience, min_delta=config.min_delta,
                                            restore_best=True)
        if not config.early_stopping:
            # Without early stopping the last epoch's weights are the result.
            self.early_stopping.patience = math.inf  # type: ignore[assignment]
            self.early_stopping.restore_best = False
        self.callbacks: list[Callback] = [self.history, LRScheduler(), TerminateOnNaN(divergence_limit),
                                          self.early_stopping, *callbacks]
        self.stop_training = False
        self.epoch = 0
        self.best_epoch = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self._activity: list[nn.Module] = []
        self._varied_val = False
        self.schedule: LRSchedule | None = None

    # ------------------------------------------------------------------ public

    def fit(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        X_val: torch.Tensor | None = None,
        y_val: torch.Tensor | None = None,
    ) -> History:
        """Train on (X, y), validating on (X_val, y_val) when given; return the History."""
        cfg = self.config
        module = self.module.to(self.device)
        X, y = X.to(self.device), y.to(self.device)
        has_val = X_val is not None and len(X_val) > 0
        if has_val:
            X_val, y_val = X_val.to(self.device), y_val.to(self.device)  # type: ignore[union-attr]
        # Constant outputs mean a dead network only if the validation rows differ at all.
        self._varied_val = bool(has_val and len(X_val) > 1 and (X_val != X_val[:1]).any())
        n = len(X)
        batch_size = min(cfg.batch_size, n)
        has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
        if has_batchnorm and batch_size < 2:
            raise InvalidParameterError(
                f"batch_size must be at least 2 with norm='batch' (batch statistics need two rows); "
                f"got batch_size={batch_size}; use norm='layer' for per-sample training"
            )
        steps_per_epoch = math.ceil(n / batch_size)
        self.optimizer = make_optimizer(cfg, module.parameters())
        self.schedule = LRSchedule(cfg.lr_schedule, steps_per_epoch, cfg.max_epochs, cfg.warmup_epochs,
                                   plateau_patience=max(1, cfg.patience // 2), min_delta=cfg.min_delta)
        weights = penalised_weights(module)
        self._activity = [m for m in module.modules() if getattr(m, "adds_to_loss", False)]
        hidden = [m.weight for m in module.hidden_linears()] if hasattr(module, "hidden_linears") else weights
        batch_hooks = [cb for cb in self.callbacks if _overrides(cb, "on_batch_end")]
        generator = torch.Generator(device="cpu").manual_seed(cfg.seed)

        self.stop_training = False
        step = 0
        try:
            for cb in self.callbacks:
                cb.on_train_begin(self)
            for epoch in range(1, cfg.max_epochs + 1):
                self.epoch = epoch
                started = time.perf_counter()
                module.train()
                perm = torch.randperm(n, generator=generator).to(self.device)
                # float64: the epoch mean must not depend on float32 rounding of a long sum.
                loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
                seen = 0
                for start in range(0, n, batch_size):
                    idx = perm[start : start + batch_size]
                    if has_batchnorm and len(idx) < 2:
                        break  # a lone leftover row cannot be batch-normalised; it is seen next epoch
                    loss = self._step(X[idx], y[idx], weights, hidden)
                    loss_sum += loss.detach() * len(idx)
                    seen += len(idx)
                    for cb in batch_hooks:
                        cb.on_batch_end(self, step)
                    step += 1
                logs: dict[str, Any] = {
                    "epoch": epoch,
                    "train_loss": float(loss_sum) / max(1, seen),
                    "lr": self.optimizer.param_groups[0]["lr"],
                }
                if has_val:
                    logs.update(self.evaluate(X_val, y_val))  # type: ignore[arg-type]
                logs["seconds"] = time.perf_counter() - started
                for cb in self.callbacks:
                    cb.on_epoch_end(self, logs)
                if self.stop_training:
                    break
        finally:
            for cb in self.callbacks:
                cb.on_train_end(self)
        return self.history

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Validation loss (and metric) with dropout and batch-norm updates off."""
        outputs = predict_tensor(self.module, X)
        logs = {"val_loss": float(self.loss_fn(outputs, y))}
        if self.metric is not None:
            logs[f"val_{self.metric_name}"] = self.metric(outputs, y)
        # How much the outputs vary across rows: exactly 0 when a whole layer is dead (every
        # row then gets the same prediction), which the search uses to stop such trials.
        if self._varied_val:
            logs["val_output_std"] = float(outputs.double().std(dim=0).mean())
        return logs

    # ------------------------------------------------------------------ internals

    def _step(self, xb: torch.Tensor, yb: torch.Tensor, weights: list[torch.Tensor],
              hidden: list[torch.Tensor]) -> torch.Tensor:
        cfg, opt = self.config, self.optimizer
        assert opt is not None
        loss = self.loss_fn(self.module(xb), yb)
        total = loss
        for m in self._activity:  # ActivityRegularization layers' penalties on this batch
            total = total + m.penalty
            m.penalty = None  # the graph is freed after backward; a copy of the module must not hold it
        if cfg.l1 > 0:
            total = total + cfg.l1 * sum(w.abs().sum() for w in weights)
        if cfg.l2 > 0:
            total = total + cfg.l2 * sum(w.pow(2).sum() for w in weights)
        opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg.gradient_clip is not None:
            nn.utils.clip_grad_norm_(self.module.parameters(), cfg.gradient_clip)
        if cfg.weight_decay > 0:
            # Decoupled weight decay (Loshchilov & Hutter), scaled by the scheduled rate.
            with torch.no_grad():
                torch._foreach_mul_(weights, 1.0 - opt.param_groups[0]["lr"] * cfg.weight_decay)
        opt.step()
        if cfg.max_norm is not None:
            with torch.no_grad():
                for w in hidden:
                    # Each unit's incoming weight vector (a row) is rescaled to norm <= max_norm.
                    w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=cfg.max_norm))
        return loss


@torch.no_grad()
def predict_tensor(module: nn.Module, X: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Outputs of ``module`` in evaluation mode, in batches to bound memory."""
    was_training = module.training
    module.eval()
    try:
        outs = [module(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
    finally:
        module.train(was_training)
    return torch.cat(outs) if outs else module(X)
