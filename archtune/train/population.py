"""PopulationTrainer: K networks of one structure trained together as a `StackedNetwork`.

Every member keeps its own hyperparameters (learning rate and schedule, warm-up, momentum or
beta1, weight decay, L1, L2, dropout, max-norm, gradient clipping, early stopping) and
follows the same arithmetic as `Trainer` does for one network; all members see the same
mini-batches. A member leaves the stack (compaction) when it early-stops, diverges, reaches
its epoch limit, or one of its callbacks stops it (a pruner); the others continue unchanged.

The optimisers are written here over the stacked [K, P] buffer, with per-member rates as
[K, 1] tensors, following torch.optim's update rules step for step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from archtune.config import TrainConfig
from archtune.errors import InvalidParameterError, TrainingDivergedError
from archtune.models.stacked import StackedNetwork
from archtune.train.callbacks import Callback
from archtune.train.loop import EVAL_BATCH
from archtune.train.optim import LRSchedule

MemberLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class MemberResult:
    """How a member ended, and what it leaves behind."""

    status: str  # "complete" | "diverged" | "stopped" (a callback raised; see ``error``)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    state: dict[str, torch.Tensor] | None = None  # single-network state dict of its result
    error: BaseException | None = None


class MemberView:
    """What a member's callbacks see in place of a `Trainer`."""

    def __init__(self, config: TrainConfig, index: int):
        self.config = config
        self.index = index
        self.stop_training = False
        self.epoch = 0


def structure_signature(config: Any, train: TrainConfig, hidden_sizes: Sequence[int]) -> tuple:
    """Members train together only if these match: family, depth, activation, norm, which
    residual blocks have projections, optimiser and batch size (widths may differ)."""
    skips = tuple(a != b for a, b in zip(hidden_sizes[:-1], hidden_sizes[1:])) if config.arch == "resnet" else ()
    return (config.arch, len(hidden_sizes), config.activation, config.norm, skips, train.optimizer, train.batch_size)


class PopulationTrainer:
    """Train ``modules`` (built by `build_model`, one structure) together.

    Parameters
    ----------
    modules : list of TabularNetwork
        Initial networks; their weights are copied into the stack.
    configs : list of TrainConfig
        One per member; optimiser and batch size must agree. The data order follows the first
        member's seed.
    loss : callable
        ``loss(outputs [K, B, o], targets) -> [K]`` (see `make_member_loss`).
    metric : callable
        ``metric(outputs [K, N, o], targets) -> [K]``.
    callbacks : list of list of Callback, optional
        Per member; ``on_epoch_end(view, logs)`` may set ``view.stop_training`` or raise to
        stop that member (the exception is kept in its result).
    divergence_limit : float, optional
        A member whose training loss exceeds it has diverged (see `TerminateOnNaN`).
    interrupt : callable, optional
        Checked every step; when it returns True the current epoch ends at once (its
        validation still runs and the callbacks see it) and every member stops with its best
        weights so far. A cohort's epoch is K members long, too long to wait for at a deadline.
    """

    def __init__(self, modules: Sequence[torch.nn.Module], configs: Sequence[TrainConfig], loss: MemberLoss,
                 metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], metric_name: str = "metric",
                 callbacks: Sequence[Sequence[Callback]] | None = None, device: torch.device | str = "cpu",
                 divergence_limit: float | None = None, interrupt: Callable[[], bool] | None = None):
        if len({(c.optimizer, c.batch_size) for c in configs}) > 1:
            raise InvalidParameterError("members of a population must share optimizer and batch_size")
        self.net = StackedNetwork(modules)
        self.configs = list(configs)
        self.loss = loss
        self.metric = metric
        self.metric_name = metric_name
        self.callbacks = [list(c) for c in (callbacks or [[] for _ in configs])]
        self.device = torch.device(device)
        self.divergence_limit = divergence_limit
        self.interrupt = interrupt

    # ------------------------------------------------------------------ public

    def fit(self, X: torch.Tensor, y: torch.Tensor, X_val: torch.Tensor | None = None,
            y_val: torch.Tensor | None = None) -> list[MemberResult]:
        net = self.net.to(self.device)
        X, y = X.to(self.device), y.to(self.device)
        has_val = X_val is not None and len(X_val) > 0
        if has_val:
            X_val, y_val = X_val.to(self.device), y_val.to(self.device)  # type: ignore[union-attr]
        varied_val = bool(has_val and len(X_val) > 1 and (X_val != X_val[:1]).any())  # type: ignore[index]
        configs = self.configs
        n, K = len(X), len(configs)
        batch_size = min(configs[0].batch_size, n)
        has_batchnorm = net.has_batchnorm
        steps_per_epoch = math.ceil(n / batch_size)
        results = [MemberResult("complete") for _ in range(K)]
        views = [MemberView(c, k) for k, c in enumerate(configs)]
        schedules = [LRSchedule(c.lr_schedule, steps_per_epoch, c.max_epochs, c.warmup_epochs,
                                plateau_patience=max(1, c.patience // 2), min_delta=c.min_delta) for c in configs]
        best = [math.inf] * K
        stale = [0] * K
        active = list(range(K))  # original member indices still in the stack, in stack order
        self._init_state(configs)
        generator = torch.Generator(device="cpu").manual_seed(configs[0].seed)
        for cb in (cb for cbs in self.callbacks for cb in cbs):
            cb.on_train_begin(views[0])  # type: ignore[arg-type]
        step = 0
        # As in Trainer (LRScheduler.on_batch_end), each step's rate is fixed at the end of the
        # previous step, so a plateau decision at an epoch's end shows from the second step on.
        factors = [s.factor(0) for s in schedules]
        for epoch in range(1, max(c.max_epochs for c in configs) + 1):
            started = time.perf_counter()
            net.train()
            perm = torch.randperm(n, generator=generator).to(self.device)
            loss_sum = torch.zeros(len(active), device=self.device, dtype=torch.float64)  # as Trainer
            seen = 0
            interrupted = False
            for start in range(0, n, batch_size):
                idx = perm[start:start + batch_size]
                if has_batchnorm and len(idx) < 2:
                    break
                if seen and self.interrupt is not None and self.interrupt():
                    interrupted = True
                    break
                lrs = self._rates([factors[k] * configs[k].learning_rate for k in active])
                losses = self._step(X[idx], y[idx], lrs)
                loss_sum += losses.detach() * len(idx)
                seen += len(idx)
                step += 1
                factors = [s.factor(step) for s in schedules]
            train_loss = (loss_sum / max(1, seen)).tolist()
            val_loss = val_metric = val_spread = None
            if has_val:
                val_loss, val_metric, val_spread = self._evaluate(X_val, y_val)  # type: ignore[arg-type]
            seconds = (time.perf_counter() - started) / len(active)
            leaving: list[int] = []
            for pos, k in enumerate(active):
                cfg = configs[k]
                logs: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss[pos],
                                        "lr": factors[k] * cfg.learning_rate}
                if has_val:
                    logs["val_loss"] = val_loss[pos]  # type: ignore[index]
                    logs[f"val_{self.metric_name}"] = val_metric[pos]  # type: ignore[index]
                    if varied_val:  # as Trainer: only when the validation rows differ
                        logs["val_output_std"] = val_spread[pos]  # type: ignore[index]
                logs["seconds"] = seconds
                results[k].history.append(logs)
                if self._diverged(logs, results[k], cfg):
                    leaving.append(pos)
                    continue
                monitored = logs.get("val_loss", logs["train_loss"])
                if math.isfinite(monitored) and monitored < best[k] - cfg.min_delta:
                    best[k], stale[k] = monitored, 0
                    results[k].best_epoch = epoch
                    if cfg.early_stopping:
                        results[k].state = net.member_state(pos)
                else:
                    stale[k] += 1
                schedules[k].epoch_end(monitored)
                views[k].epoch = epoch
                try:
                    for cb in self.callbacks[k]:
                        cb.on_epoch_end(views[k], logs)  # type: ignore[arg-type]
                except Exception as exc:  # a pruner's signal, or a callback's own failure
                    results[k].status, results[k].error = "stopped", exc
                    leaving.append(pos)
                    continue
                done = (epoch >= cfg.max_epochs or views[k].stop_training or interrupted
                        or (cfg.early_stopping and stale[k] >= cfg.patience))
                if done:
                    if not cfg.early_stopping or results[k].state is None:
                        results[k].state = net.member_state(pos)
                        results[k].best_epoch = epoch if not cfg.early_stopping else results[k].best_epoch
                    leaving.append(pos)
            if leaving:
                keep = [pos for pos in range(len(active)) if pos not in set(leaving)]
                active = [active[pos] for pos in keep]
                if not active:
                    break
                self._compact(torch.tensor(keep, dtype=torch.long, device=self.device))
        for cb in (cb for cbs in self.callbacks for cb in cbs):
            cb.on_train_end(views[0])  # type: ignore[arg-type]
        return results

    # ------------------------------------------------------------------ internals

    def _rates(self, values: Sequence[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=self.net.flat.dtype, device=self.device).view(-1, 1)

    def _init_state(self, configs: Sequence[TrainConfig]) -> None:
        """Per-member hyperparameters as [K, 1] columns and the optimiser's state."""
        col = self._rates
        self.momentum = col([c.momentum for c in configs])
        self.weight_decay = col([c.weight_decay for c in configs])
        self.l1 = col([c.l1 for c in configs])
        self.l2 = col([c.l2 for c in configs])
        self.clip = col([c.gradient_clip if c.gradient_clip is not None else math.inf for c in configs])
        self.max_norm = col([c.max_norm if c.max_norm is not None else math.inf for c in configs])
        self.penalised = any(c.l1 > 0 or c.l2 > 0 for c in configs)  # else skip the penalty terms
        self.optimizer = configs[0].optimizer
        flat = self.net.flat
        self.state: dict[str, torch.Tensor] = {}
        if self.optimizer in ("adam", "adamw", "nadam", "rmsprop", "adagrad"):
            self.state["second"] = torch.zeros_like(flat)
        if self.optimizer in ("adam", "adamw", "nadam", "momentum", "nesterov"):
            self.state["first"] = torch.zeros_like(flat)
        if self.optimizer == "nadam":
            self.state["mu_product"] = torch.ones_like(self.momentum)
        self.step_count = 0

    def _compact(self, keep: torch.Tensor) -> None:
        self.net.keep(keep)
        for name in ("momentum", "weight_decay", "l1", "l2", "clip", "max_norm"):
            setattr(self, name, getattr(self, name)[keep])
        self.state = {k: v[keep] for k, v in self.state.items()}

    def _step(self, xb: torch.Tensor, yb: torch.Tensor, lrs: torch.Tensor) -> torch.Tensor:
        net = self.net
        losses = self.loss(net(xb), yb)
        total = losses.sum()
        if self.penalised:
            decay = net.decay_mask.to(net.flat.dtype)
            if bool((self.l1 > 0).any()):
                total = total + (self.l1.squeeze(1) * (net.flat * decay).abs().sum(dim=1)).sum()
            if bool((self.l2 > 0).any()):
                total = total + (self.l2.squeeze(1) * (net.flat * decay).pow(2).sum(dim=1)).sum()
        net.flat.grad = None
        total.backward()
        grad = net.flat.grad
        with torch.no_grad():
            if bool(torch.isfinite(self.clip).any()):
                norms = grad.norm(dim=1, keepdim=True)
                grad.mul_(torch.clamp(self.clip / (norms + 1e-6), max=1.0))
            if bool((self.weight_decay > 0).any()):
                # Only the Linear weights' columns of the buffer, one [K, 1] factor each.
                shrink = 1 - lrs * self.weight_decay
                for start, stop in net.decayed_ranges:
                    net.flat[:, start:stop].mul_(shrink)
            self._update(net.flat, grad, lrs)
            if bool(torch.isfinite(self.max_norm).any()):
                views = net.views()
                limit = self.max_norm.view(-1, 1, 1)
                for name in net.hidden_weight_names:
                    w = views[name]  # [K, out, in]: each row is one unit's incoming weights
                    norms = w.norm(dim=2, keepdim=True)
                    w.mul_(torch.where(norms > limit, limit / (norms + 1e-7), torch.ones_like(norms)))
        return losses

    def _update(self, p: torch.Tensor, g: torch.Tensor, lr: torch.Tensor) -> None:
        """One step of the named optimiser, as torch.optim computes it, with [K, 1] rates."""
        self.step_count += 1
        t = self.step_count
        name, state = self.optimizer, self.state
        beta1 = self.momentum
        if name == "sgd":
            p.sub_(lr * g)
        elif name in ("momentum", "nesterov"):
            # The fused SGD kernel per member, as for Adam.
            buf = state["first"]
            for k, (rate, mu) in enumerate(zip(lr.view(-1).tolist(), beta1.view(-1).tolist())):
                torch._fused_sgd_([p[k]], [g[k]], [buf[k]] if mu > 0 else [], weight_decay=0.0, momentum=mu, lr=rate, dampening=0.0,
                                  nesterov=name == "nesterov" and mu > 0, maximize=False, is_first_step=t == 1)
        elif name in ("adam", "adamw"):
            # torch's fused Adam kernel, once per member: one pass over each member's buffers
            # (measured 3-12x faster than vectorised [K, P] passes at 64-256 units), and the
            # very kernel a network trained alone uses (`make_optimizer`).
            step = torch.full((), float(t), dtype=p.dtype, device=p.device)
            m, v = state["first"], state["second"]
            for k, (rate, b1) in enumerate(zip(lr.view(-1).tolist(), beta1.view(-1).tolist())):
                torch._fused_adam_([p[k]], [g[k]], [m[k]], [v[k]], [], [step], lr=rate, beta1=b1, beta2=0.999,
                                   weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
        elif name == "nadam":
            m, v = state["first"], state["second"]
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * 0.004))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * 0.004))
            state["mu_product"] = state["mu_product"] * mu
            mu_product = state["mu_product"]
            m.mul_(beta1).add_((1 - beta1) * g)
            v.mul_(0.999).addcmul_(g, g, value=1 - 0.999)
            denom = (v / (1 - 0.999**t)).sqrt() + 1e-8
            p.sub_(lr * (1 - mu) / (1 - mu_product) * g / denom)
            p.sub_(lr * mu_next / (1 - mu_product * mu_next) * m / denom)
        elif name == "rmsprop":
            v = state["second"]
            v.mul_(0.99).addcmul_(g, g, value=0.01)
            p.sub_(lr * g / (v.sqrt() + 1e-8))
        elif name == "adagrad":
            v = state["second"]
            v.addcmul_(g, g)
            p.sub_(lr * g / (v.sqrt() + 1e-10))
        else:
            raise AssertionError(f"unreachable: optimizer {name!r} passed validation")

    @torch.no_grad()
    def _evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[list[float], list[float], list[float]]:
        net = self.net
        net.eval()
        try:
            outputs = torch.cat([net(X[i:i + EVAL_BATCH]) for i in range(0, len(X), EVAL_BATCH)], dim=1)
        finally:
            net.train()
        spread = outputs.double().std(dim=1).mean(dim=-1) if outputs.shape[1] > 1 else outputs.new_zeros(len(outputs))
        return self.loss(outputs, y).tolist(), self.metric(outputs, y).tolist(), spread.tolist()

    def _diverged(self, logs: dict[str, Any], result: MemberResult, cfg: TrainConfig) -> bool:
        """NaN/inf or an exploded loss ends the member as diverged (as `TerminateOnNaN` does)."""
        advice = f"lower learning_rate (now {cfg.learning_rate:g}) or set gradient_clip"
        for key in ("train_loss", "val_loss"):
            value = logs.get(key)
            if value is not None and not math.isfinite(value):
                result.status = "diverged"
                result.error = TrainingDivergedError(
                    f"training diverged at epoch {logs['epoch']}: {key} became {value}; {advice}")
                return True
        if self.divergence_limit is not None and logs["train_loss"] > self.divergence_limit:
            result.status = "diverged"
            result.error = TrainingDivergedError(
                f"training diverged at epoch {logs['epoch']}: train_loss exploded to {logs['train_loss']:.4g}, "
                f"over 100 times the loss of a constant prediction; {advice}")
            return True
        return False
