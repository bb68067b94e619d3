"""Engines of the training core: how one step is taken for a network alone (`SingleEngine`)
or for a cohort stacked into one model (`StackedEngine`).

Both follow the same arithmetic: the data loss plus L1/L2 penalties on the Linear and
convolution weights, backward, gradient clipping, decoupled weight decay scaled by the step's
learning rate (AdamW-style, for every optimiser), the optimiser's step (torch.optim, fused or
foreach kernels), then the max-norm constraint on hidden units. A member of a stack therefore
follows the trajectory it would follow alone (tests/test_population.py checks it to 1e-8).
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from archtune.config import TrainConfig
from archtune.blocks import is_penalised
from archtune.models.stacked import StackedNetwork
from archtune.train.batches import Rows, rows_per_batch
from archtune.train.optim import make_member_optimizer, make_optimizer

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EVAL_BATCH = 8192


def penalised_weights(module: nn.Module) -> list[torch.Tensor]:
    """Weights that L1/L2 and weight decay act on: those of Linear and convolution layers, not
    biases or norms."""
    return [m.weight for m in module.modules() if is_penalised(m)]


def _to_device(values: Sequence[float], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A small host list as a device tensor. To a GPU it goes from pinned memory without
    blocking, so the host queues the step's work instead of waiting for the GPU to drain."""
    if device.type != "cuda":
        return torch.tensor(values, dtype=dtype, device=device)
    return torch.tensor(values, dtype=dtype).pin_memory().to(device, non_blocking=True)


def _forward(module: nn.Module, xb: torch.Tensor, device: torch.device, mixed_precision: str | None) -> torch.Tensor:
    """The module's outputs for a training step. With "bf16" the forward runs under
    ``torch.autocast`` in bfloat16 (the parameters stay float32) and the outputs are cast
    back to float32, so that the loss (a log-sum-exp, a mean over the batch) is float32."""
    if mixed_precision is None:
        return module(xb)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        out = module(xb)
    return out.float()


def _loss(fn: Callable[..., torch.Tensor], outputs: torch.Tensor, y: torch.Tensor,
          w: torch.Tensor | None) -> torch.Tensor:
    """``fn(outputs, y)``, or with row weights ``fn(outputs, y, w)``: unweighted runs keep
    the two-argument call, so a plain ``loss(outputs, targets)`` callable still serves."""
    return fn(outputs, y) if w is None else fn(outputs, y, w)


@torch.no_grad()
def predict_tensor(module: nn.Module, X: Rows, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Outputs of ``module`` in evaluation mode, in batches to bound memory (sparse rows are
    densified batch by batch)."""
    was_training = module.training
    batch_size = rows_per_batch(X, batch_size)
    module.eval()
    try:
        outs = [module(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    finally:
        module.train(was_training)
    return torch.cat(outs) if outs else module(X[:0])


class SingleEngine:
    """One network and its torch optimiser.

    ``param_groups`` (optional) are the optimiser's groups, each ``{"params": [...],
    "lr_factor": f}``: a group trains at ``f`` times the scheduled rate, and parameters in no
    group do not train at all (no penalties, weight decay or max-norm either; fine-tuning,
    archtune.transfer.freeze). ``eval_modules`` stay in evaluation mode while the rest trains
    (frozen batch norms). Without them every parameter trains at the rate, as one group.
    """

    def __init__(self, module: nn.Module, config: TrainConfig, loss_fn: LossFn,
                 metric: Callable[[torch.Tensor, torch.Tensor], float] | None, device: torch.device,
                 param_groups: Sequence[dict] | None = None, eval_modules: Sequence[nn.Module] = ()):
        self.module = module.to(device)
        self.param_groups = param_groups
        self.eval_modules = list(eval_modules)
        self.config = config
        self.loss_fn = loss_fn
        self.metric = metric
        self.device = device
        self.has_batchnorm = any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) for m in module.modules())
        self.optimizer: torch.optim.Optimizer | None = None
        self.decay_factor = 1.0
        self.dropouts = [(m, m.p) for m in module.modules() if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout))]

    def regularise(self, dropout: list[float], weight_decay: list[float]) -> None:
        for m, rate in self.dropouts:
            m.p = rate * dropout[0]
        self.decay_factor = weight_decay[0]

    def begin(self) -> None:
        module = self.module
        self.activity = [m for m in module.modules() if getattr(m, "adds_to_loss", False)]
        if self.param_groups is None:
            self.optimizer = make_optimizer(self.config, module.parameters())
            self.weights = penalised_weights(module)
            self.hidden = ([m.weight for m in module.hidden_linears()] if hasattr(module, "hidden_linears")
                           else self.weights)
            self.factors = [1.0]
            self.weight_factors: list[float] | None = None  # every weight at the rate
            return
        self.optimizer = make_optimizer(self.config, self.param_groups)
        factor_of = {id(p): group["lr_factor"] for group in self.param_groups for p in group["params"]}
        self.factors = [group["lr_factor"] for group in self.optimizer.param_groups]
        self.weights = [w for w in penalised_weights(module) if id(w) in factor_of]
        self.weight_factors = [factor_of[id(w)] for w in self.weights]
        hidden = [m.weight for m in module.hidden_linears()] if hasattr(module, "hidden_linears") else self.weights
        self.hidden = [w for w in hidden if id(w) in factor_of]

    def train_mode(self, training: bool) -> None:
        self.module.train(training)
        for m in self.eval_modules:
            m.eval()

    def step(self, xb: torch.Tensor, yb: torch.Tensor, lrs: list[float],
             wb: torch.Tensor | None = None) -> torch.Tensor:
        cfg, opt = self.config, self.optimizer
        assert opt is not None
        lr = lrs[0]
        for group, factor in zip(opt.param_groups, self.factors):
            group["lr"] = lr * factor
        loss = _loss(self.loss_fn, _forward(self.module, xb, self.device, cfg.mixed_precision), yb, wb)
        total = loss
        for m in self.activity:  # ActivityRegularization layers' penalties on this batch
            total = total + m.penalty
            m.penalty = None  # the graph is freed after backward; a copy of the module must not hold it
        if cfg.l1 > 0:
            total = total + cfg.l1 * sum(w.abs().sum() for w in self.weights)
        if cfg.l2 > 0:
            total = total + cfg.l2 * sum(w.pow(2).sum() for w in self.weights)
        opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg.gradient_clip is not None:
            nn.utils.clip_grad_norm_(self.module.parameters(), cfg.gradient_clip)
        if cfg.weight_decay > 0:
            # Decoupled weight decay (Loshchilov & Hutter), scaled by the scheduled rate.
            with torch.no_grad():
                if self.weight_factors is None:
                    shrink = 1.0 - lr * cfg.weight_decay * self.decay_factor
                    for w in self.weights:
                        w.mul_(shrink)
                else:  # each weight decays by its own group's rate
                    for w, factor in zip(self.weights, self.weight_factors):
                        w.mul_(1.0 - lr * factor * cfg.weight_decay * self.decay_factor)
        opt.step()
        if cfg.max_norm is not None:
            with torch.no_grad():
                for w in self.hidden:
                    # Each unit's incoming weight vector (a row) is rescaled to norm <= max_norm.
                    w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=cfg.max_norm))
        return loss.detach()

    @torch.no_grad()
    def evaluate(self, X: Rows, y: torch.Tensor,
                 w: torch.Tensor | None = None) -> tuple[list[float], list[float | None], list[float]]:
        outputs = predict_tensor(self.module, X)
        metric = _loss(self.metric, outputs, y, w) if self.metric is not None else None
        spread = float(outputs.double().std(dim=0).mean()) if len(outputs) > 1 else 0.0
        return [float(_loss(self.loss_fn, outputs, y, w))], [metric], [spread]

    def snapshot(self, position: int) -> dict[str, torch.Tensor]:
        return copy.deepcopy(self.module.state_dict())

    def member_module(self, position: int) -> nn.Module:
        return self.module

    def remove(self, keep: list[int]) -> None:
        pass  # alone, the member leaving ends the run


class StackedEngine:
    """K networks of one structure as a `StackedNetwork`, with an optimiser param group per
    member.

    Each member's group holds one parameter that aliases the member's row of the stack's
    flat [K, P] buffer (the same storage), so torch's optimisers update every member with its
    own learning rate, momentum and state, and the forward pass stays one batched model.
    """

    def __init__(self, modules: Sequence[nn.Module], configs: Sequence[TrainConfig], loss: LossFn,
                 metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], device: torch.device):
        self.templates = list(modules)
        self.net = StackedNetwork(modules).to(device)
        self.configs = list(configs)
        self.loss = loss
        self.metric = metric
        self.device = device
        self.has_batchnorm = self.net.has_batchnorm
        self.members = list(range(len(configs)))  # position -> member index
        self.optimizer: torch.optim.Optimizer | None = None
        self.decay_factors = torch.ones(len(configs), 1, dtype=self.net.flat.dtype, device=device)

    def regularise(self, dropout: list[float], weight_decay: list[float]) -> None:
        self.net.scale_dropout(dropout)
        self.decay_factors = torch.tensor(weight_decay, dtype=self.net.flat.dtype, device=self.device).view(-1, 1)

    def _columns(self) -> None:
        """Per-member hyperparameters as [K, 1] columns."""
        configs = [self.configs[k] for k in self.members]

        def col(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=self.net.flat.dtype, device=self.device).view(-1, 1)

        self.weight_decay = col([c.weight_decay for c in configs])
        self.l1 = col([c.l1 for c in configs])
        self.l2 = col([c.l2 for c in configs])
        self.clip = col([c.gradient_clip if c.gradient_clip is not None else math.inf for c in configs])
        self.max_norm = col([c.max_norm if c.max_norm is not None else math.inf for c in configs])
        # Which terms apply, decided here on the host: a test of a device tensor every step
        # would make the host wait for a GPU's queue.
        self.uses_l1 = any(c.l1 > 0 for c in configs)
        self.uses_l2 = any(c.l2 > 0 for c in configs)
        self.penalised = self.uses_l1 or self.uses_l2  # else skip the penalty terms
        self.decays = any(c.weight_decay > 0 for c in configs)
        self.clips = any(c.gradient_clip is not None for c in configs)
        self.constrains = any(c.max_norm is not None for c in configs)

    def _aliases(self) -> list[nn.Parameter]:
        data = self.net.flat.data
        return [nn.Parameter(data[pos]) for pos in range(len(self.members))]

    def begin(self) -> None:
        self._columns()
        self.params = self._aliases()
        self.optimizer = make_member_optimizer(self.configs, self.params)

    def train_mode(self, training: bool) -> None:
        self.net.train(training)

    def step(self, xb: torch.Tensor, yb: torch.Tensor, lrs: list[float],
             wb: torch.Tensor | None = None, idle: Sequence[bool] | None = None) -> torch.Tensor:
        """One step of every member; members marked in ``idle`` (per-member rows whose epoch
        has run out of batches, archtune.train.member_rows) do not step: no optimiser update
        (their state stays as it is), and their rate in ``lrs`` is 0 so they do not decay."""
        net, opt = self.net, self.optimizer
        assert opt is not None
        outputs = _forward(net, xb, self.device, self.configs[0].mixed_precision)
        if net.ensemble_size:  # TabM: [K, B*k, o], each row once per ensemble member
            own = xb.dim() == 3  # each member's own rows (archtune.train.member_rows)
            yb = net.ensemble_rows(yb, own)
            wb = net.ensemble_rows(wb, own) if wb is not None else None
        losses = _loss(self.loss, outputs, yb, wb)
        total = losses.sum()
        if self.penalised:
            decay = net.decay_mask.to(net.flat.dtype)
            if self.uses_l1:
                total = total + (self.l1.squeeze(1) * (net.flat * decay).abs().sum(dim=1)).sum()
            if self.uses_l2:
                total = total + (self.l2.squeeze(1) * (net.flat * decay).pow(2).sum(dim=1)).sum()
        net.flat.grad = None
        total.backward()
        grad = net.flat.grad
        with torch.no_grad():
            if self.clips:
                norms = grad.norm(dim=1, keepdim=True)
                grad.mul_(torch.clamp(self.clip / (norms + 1e-6), max=1.0))
            if self.decays:
                # Only the Linear weights' columns of the buffer, one [K, 1] factor each.
                rates = _to_device(lrs, net.flat.dtype, self.device).view(-1, 1)
                shrink = 1 - rates * self.weight_decay * self.decay_factors
                for start, stop in net.decayed_ranges:
                    net.flat[:, start:stop].mul_(shrink)
            for pos, (param, group, member_grad, lr) in enumerate(zip(self.params, opt.param_groups, grad, lrs)):
                param.grad = None if idle is not None and idle[pos] else member_grad  # torch skips a None grad
                group["lr"] = lr
            opt.step()
            if self.constrains:
                views = net.views()
                limit = self.max_norm.view(-1, 1, 1)
                for name in net.hidden_weight_names:
                    w = views[name]  # [K, in, out]: each column is one unit's incoming weights
                    norms = w.norm(dim=1, keepdim=True)
                    w.mul_(torch.where(norms > limit, limit / (norms + 1e-7), torch.ones_like(norms)))
        return losses.detach()

    @torch.no_grad()
    def evaluate(self, X: Rows, y: torch.Tensor,
                 w: torch.Tensor | None = None) -> tuple[list[float], list[float], list[float]]:
        net = self.net
        net.eval()
        size = rows_per_batch(X, net.eval_rows(EVAL_BATCH))
        try:
            outputs = torch.cat([net(X[i:i + size]) for i in range(0, len(X), size)], dim=1)
        finally:
            net.train()
        spread = outputs.double().std(dim=1).mean(dim=-1) if outputs.shape[1] > 1 else outputs.new_zeros(len(outputs))
        return _loss(self.loss, outputs, y, w).tolist(), _loss(self.metric, outputs, y, w).tolist(), spread.tolist()

    def snapshot(self, position: int) -> dict[str, torch.Tensor]:
        return self.net.member_state(position)

    def member_module(self, position: int) -> nn.Module:
        """The member's own network (the module it was built as) holding its current weights."""
        module = self.templates[self.members[position]]
        module.load_state_dict(self.net.member_state(position))
        return module

    def remove(self, keep: list[int]) -> None:
        """Only the members at positions ``keep`` stay in the stack (compaction)."""
        assert self.optimizer is not None
        self.net.keep(torch.tensor(keep, dtype=torch.long, device=self.device))
        self.members = [self.members[pos] for pos in keep]
        self.decay_factors = self.decay_factors[keep]
        self._columns()
        old_state, old_groups, old_params = self.optimizer.state, self.optimizer.param_groups, self.params
        self.params = self._aliases()
        state = defaultdict(dict)
        groups = []
        for new, pos in zip(self.params, keep):
            state[new] = old_state[old_params[pos]]
            groups.append({**old_groups[pos], "params": [new]})
        self.optimizer.param_groups = groups
        self.optimizer.state = state


__all__ = ["EVAL_BATCH", "SingleEngine", "StackedEngine", "penalised_weights", "predict_tensor"]
