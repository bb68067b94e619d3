"""The ops a `StackedNetwork` runs forward: one per layer position of its members' bodies
(Linear, TabM's BatchEnsemble layers and head, activation, dropout, batch and layer norm, residual
block, the mask of padded units), each computing all K members at once from views of the stack's
flat [K, P] parameter.

An op holds only what is constant per member (names of its parameter slots, masks, dropout
rates); the stack passes the views and itself (training mode, buffers) on each call.
`build_ops` walks the members' bodies position by position and chooses the op for each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from archtune.blocks import ParametricActivation
from archtune.models.mlp import ResidualBlock
from archtune.models.network import TabularNetwork, ensemble_mean
from archtune.models.tabm import LinearBatchEnsemble, TabMBody

ALPHA_DROPOUT_ALPHA = 1.7580993408473766  # SELU's lambda * alpha, as in torch's alpha_dropout


def _on(op: "_Op", name: str, tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``tensor`` (an op's own constant: a mask, dropout rates) on ``like``'s device and dtype,
    converted once and kept: converting every step would copy it to a GPU every step, and each
    such copy waits for the GPU to finish its queue."""
    cache = op.__dict__.setdefault("_cache", {})
    key = (name, like.device, like.dtype)
    value = cache.get(key)
    if value is None:
        value = cache[key] = tensor.to(device=like.device, dtype=like.dtype)
    return value


class Stack(Protocol):
    """What an op reads of the `StackedNetwork` that runs it (a protocol, so that this module,
    which the stack imports, does not import the stack)."""

    training: bool
    task: Any

    def buffer(self, name: str) -> torch.Tensor: ...


class _Op:
    def __call__(self, h: torch.Tensor, P: dict[str, torch.Tensor], net: Stack) -> torch.Tensor:
        raise NotImplementedError  # every op below defines it

    def keep(self, index: torch.Tensor) -> None:
        pass

    def scale_dropout(self, factors: Sequence[float]) -> None:
        pass


class _Linear(_Op):
    def __init__(self, prefix: str, bias: bool = True):
        self.weight = f"{prefix}.weight"
        self.bias = f"{prefix}.bias" if bias else None

    def __call__(self, h, P, net):
        w = P[self.weight]  # [K, in, out]
        if h.dim() == 2:  # the shared input matrix: broadcast it against every member
            out = torch.matmul(h, w)
            return out + P[self.bias].unsqueeze(1) if self.bias else out
        if w.shape[2] == 1:
            # One output (a binary or single-target head): a batched matrix-vector product is
            # slow in bmm and slower in its backward's outer product; a broadcast multiply and
            # sum is 2.3x faster forward and backward ([32, 128, 64] members, one thread).
            out = (h * w.transpose(1, 2)).sum(dim=2, keepdim=True)
            return out + P[self.bias].unsqueeze(1) if self.bias else out
        if self.bias is None:
            return torch.bmm(h, w)
        return torch.baddbmm(P[self.bias].unsqueeze(1), h, w)


class _BatchEnsembleLinear(_Op):
    """TabM's `LinearBatchEnsemble` on [K, B*k, in] -> [K, B*k, out]: ``((x * r) @ W.T) * s + b``
    with each ensemble member's adapters r [K, k, in], s and b [K, k, out] and the shared W
    [K, in, out]. ``expand``: the first layer, whose input [B, in] or [K, B, in] every
    ensemble member sees."""

    def __init__(self, prefix: str, expand: bool):
        self.weight, self.r, self.s, self.bias = (f"{prefix}.{n}" for n in ("weight", "r", "s", "bias"))
        self.expand = expand

    def __call__(self, h, P, net):
        r = P[self.r]
        n, k = r.shape[0], r.shape[1]
        x = h.unsqueeze(-2) if self.expand else h.reshape(n, -1, k, h.shape[-1])
        x = x * r.unsqueeze(1)  # [K, B, k, in]
        rows = x.shape[1]
        out = torch.bmm(x.reshape(n, rows * k, -1), P[self.weight]).view(n, rows, k, -1)
        # One fused pass for ``out * s + b``: the stack's activations outgrow the cache, and on a
        # CPU each pass over them costs more per element than over one network's.
        return torch.addcmul(P[self.bias].unsqueeze(1), out, P[self.s].unsqueeze(1)).view(n, rows * k, -1)


class _EnsembleHead(_Op):
    """TabM's k output layers (`LinearEnsemble`, weight [K, k, in, out]): in training every
    ensemble member's outputs [K, B*k, o]; in evaluation their mean as the single network
    gives it (`ensemble_mean`), [K, B, o]."""

    def __init__(self, expand: bool):
        self.expand = expand  # no BatchEnsemble layer before: the input itself, [B, in] or [K, B, in]

    def __call__(self, h, P, net):
        w = P["head.weight"]
        n, k = w.shape[0], w.shape[1]
        if self.expand:
            h = (h if h.dim() == 3 else h.expand(n, -1, -1)).unsqueeze(2).expand(-1, -1, k, -1)
        x = h.reshape(n, -1, k, h.shape[-1])
        if w.shape[3] == 1:  # one output: a multiply and sum, not matrix-vector products (see _Linear)
            out = (x * w[..., 0].unsqueeze(1)).sum(dim=3, keepdim=True) + P["head.bias"].unsqueeze(1)
        else:
            out = torch.einsum("nbki,nkio->nbko", x, w) + P["head.bias"].unsqueeze(1)  # [K, B, k, o]
        if net.training:
            return out.flatten(1, 2)
        return ensemble_mean(out.flatten(0, 1), net.task).view(n, out.shape[1], -1)


class _Mask(_Op):
    """Zeroes padded units: [K, 1, width] of ones for real units."""

    def __init__(self, widths: Sequence[int]):
        top = max(widths)
        self.mask = (torch.arange(top)[None, :] < torch.tensor(widths)[:, None]).float().unsqueeze(1)
        self.count = torch.tensor(widths, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, h, P, net):
        return h * _on(self, "mask", self.mask, h)

    def keep(self, index):
        self.mask, self.count = self.mask[index], self.count[index]
        self._cache = {}


class _Activation(_Op):
    """The activation; a parametric one (``x + alpha * (f(x) - x)``) reads each member's alpha."""

    def __init__(self, module: nn.Module, prefix: str):
        self.alpha = f"{prefix}.alpha" if isinstance(module, ParametricActivation) else None
        if self.alpha is not None:
            module, prefix = module.activation, f"{prefix}.activation"
        self.module = module
        self.prelu = f"{prefix}.weight" if isinstance(module, nn.PReLU) else None

    def __call__(self, h, P, net):
        if self.prelu is not None:
            w = P[self.prelu].view(-1, 1, 1)
            out = torch.where(h >= 0, h, w * h)
        else:
            out = self.module(h)
        if self.alpha is None:
            return out
        return h + P[self.alpha].unsqueeze(1) * (out - h)


class _Dropout(_Op):
    """Per-member rates; AlphaDropout's affine correction with SELU.

    One uniform draw per (row, unit) is shared by all members, and member k keeps a unit when
    ``floor(keep_k + u) == 1``, that is with probability keep_k: each member's mask is exact
    Bernoulli dropout at its own rate, and the members' masks are correlated (common random
    numbers, which if anything makes their comparison fairer). Drawing K times fewer random
    numbers matters: on CPU they cost more than a small member's matmuls.
    """

    def __init__(self, rates: Sequence[float], alpha: bool):
        self.base = torch.tensor(rates, dtype=torch.float64).view(-1, 1, 1)
        self.alpha = alpha
        self._set(self.base)

    def _set(self, rates: torch.Tensor) -> None:
        # Read on the host once per change, not per step: on a GPU every read of a device
        # value waits for the queue.
        self.rates = rates
        self.keep_rates = 1 - rates
        self.active = bool((rates > 0).any())
        self._cache = {}

    def __call__(self, h, P, net):
        if not net.training or not self.active:
            return h
        keep = _on(self, "keep", self.keep_rates, h)
        u = torch.rand(h.shape[1:], dtype=h.dtype, device=h.device)
        noise = torch.floor(keep + u)  # [K, batch, width] of 0/1
        if not self.alpha:
            key = ("scale", h.device, h.dtype)
            scale = self._cache.get(key)
            if scale is None:
                scale = self._cache[key] = torch.where(keep > 0, 1 / keep, torch.zeros_like(keep))
            return h * noise.mul_(scale)  # inverted-dropout scaling folded into the mask
        p = _on(self, "rate", self.rates, h)
        a = 1.0 / torch.sqrt((ALPHA_DROPOUT_ALPHA**2 * p + 1) * (1 - p))
        b = (noise - 1) * (ALPHA_DROPOUT_ALPHA * a) + ALPHA_DROPOUT_ALPHA * a * p
        return h * (noise * a) + b

    def keep(self, index):
        self.base = self.base[index]
        self._set(self.rates[index])

    def scale_dropout(self, factors):
        self._set(self.base * torch.tensor(list(factors), dtype=torch.float64).view(-1, 1, 1))


class _BatchNorm(_Op):
    def __init__(self, prefix: str, module: nn.BatchNorm1d):
        self.prefix = prefix
        self.eps = module.eps
        self.momentum = module.momentum

    def __call__(self, h, P, net):
        w, b = P[f"{self.prefix}.weight"].unsqueeze(1), P[f"{self.prefix}.bias"].unsqueeze(1)
        mean_buf = net.buffer(f"{self.prefix}.running_mean")
        var_buf = net.buffer(f"{self.prefix}.running_var")
        if net.training:
            mean = h.mean(dim=1)
            var = h.var(dim=1, unbiased=False)
            n = h.shape[1]
            with torch.no_grad():
                mean_buf.mul_(1 - self.momentum).add_(mean.detach(), alpha=self.momentum)
                var_buf.mul_(1 - self.momentum).add_(var.detach() * (n / max(1, n - 1)), alpha=self.momentum)
                net.buffer(f"{self.prefix}.num_batches_tracked").add_(1)
        else:
            mean, var = mean_buf, var_buf
        return (h - mean.unsqueeze(1)) / torch.sqrt(var.unsqueeze(1) + self.eps) * w + b


class _LayerNorm(_Op):
    """Layer norm over each member's real units (padded units excluded from the statistics)."""

    def __init__(self, prefix: str, module: nn.LayerNorm, mask: _Mask | None):
        self.prefix = prefix
        self.eps = module.eps
        self.mask = mask

    def __call__(self, h, P, net):
        w, b = P[f"{self.prefix}.weight"].unsqueeze(1), P[f"{self.prefix}.bias"].unsqueeze(1)
        if self.mask is None:
            return F.layer_norm(h, h.shape[-1:], eps=self.eps) * w + b
        mask, count = _on(self.mask, "mask", self.mask.mask, h), _on(self.mask, "count", self.mask.count, h)
        mean = (h * mask).sum(-1, keepdim=True) / count
        centred = (h - mean) * mask
        var = (centred * centred).sum(-1, keepdim=True) / count
        return (centred / torch.sqrt(var + self.eps) * w + b) * mask


class _Residual(_Op):
    def __init__(self, prefix: str, blocks: Sequence[ResidualBlock], in_mask: _Mask | None, out_mask: _Mask | None):
        first = blocks[0]
        self.norm = _norm_op(f"{prefix}.norm", first.norm, in_mask)
        self.linear = _Linear(f"{prefix}.linear")
        self.activation = _Activation(first.activation, f"{prefix}.activation")
        self.dropout = _dropout_op([b.dropout for b in blocks])
        self.skip = _Linear(f"{prefix}.skip", bias=False) if isinstance(first.skip, nn.Linear) else None
        self.out_mask = out_mask

    def __call__(self, h, P, net):
        branch = self.linear(self.norm(h, P, net) if self.norm else h, P, net)
        branch = self.activation(branch, P, net)
        if self.dropout is not None:
            branch = self.dropout(branch, P, net)
        out = (self.skip(h, P, net) if self.skip else h) + branch
        return self.out_mask(out, P, net) if self.out_mask is not None else out

    def keep(self, index):
        for op in (self.norm, self.dropout, self.out_mask):
            if op is not None:
                op.keep(index)

    def scale_dropout(self, factors):
        if self.dropout is not None:
            self.dropout.scale_dropout(factors)


def _norm_op(prefix: str, module: nn.Module, mask: _Mask | None) -> _Op | None:
    if isinstance(module, nn.BatchNorm1d):
        return _BatchNorm(prefix, module)
    if isinstance(module, nn.LayerNorm):
        return _LayerNorm(prefix, module, mask)
    return None


def _dropout_op(modules: Sequence[nn.Module]) -> _Dropout | None:
    rates = [float(getattr(m, "p", 0.0)) for m in modules]
    if not any(r > 0 for r in rates):
        return None
    return _Dropout(rates, alpha=any(isinstance(m, nn.AlphaDropout) for m in modules))


def _mask_for(widths: Sequence[int]) -> _Mask | None:
    return _Mask(widths) if len(set(widths)) > 1 else None


def build_ops(members: Sequence[TabularNetwork]) -> list[_Op]:
    """Walk the members' bodies position by position (they share one layout by name)."""
    ops: list[_Op] = []
    tabm = isinstance(members[0].body, TabMBody)
    if tabm:
        bodies = [list(m.body.layers) for m in members]
    else:
        bodies = [list(m.body) if isinstance(m.body, nn.Sequential) else [m.body] for m in members]
    mask: _Mask | None = None
    expand = tabm  # TabM: the first BatchEnsemble layer copies the input to the ensemble members
    for i, modules in enumerate(zip(*bodies)):
        first = modules[0]
        prefix = f"body.layers.{i}" if tabm else f"body.{i}"
        if isinstance(first, LinearBatchEnsemble):
            ops.append(_BatchEnsembleLinear(prefix, expand))
            expand = False
            mask = _mask_for([m.weight.shape[0] for m in modules])
        elif isinstance(first, nn.Linear):
            ops.append(_Linear(prefix))
            mask = _mask_for([m.out_features for m in modules])
        elif isinstance(first, (nn.BatchNorm1d, nn.LayerNorm)):
            ops.append(_norm_op(prefix, first, mask))  # type: ignore[arg-type]
        elif isinstance(first, ResidualBlock):
            in_mask = mask
            mask = _mask_for([m.linear.out_features for m in modules])
            ops.append(_Residual(prefix, modules, in_mask, mask))  # type: ignore[arg-type]
        elif isinstance(first, (nn.Dropout, nn.AlphaDropout)) or (
                isinstance(first, nn.Identity) and any(isinstance(m, (nn.Dropout, nn.AlphaDropout)) for m in modules)):
            op = _dropout_op(modules)
            if op is not None:
                ops.append(op)
        elif isinstance(first, nn.Identity):
            continue
        else:  # an activation: padded units must stay exactly zero after it
            ops.append(_Activation(first, prefix))
            if mask is not None:
                ops.append(mask)
    ops.append(_EnsembleHead(expand) if tabm else _Linear("head"))
    return ops


__all__ = ["ALPHA_DROPOUT_ALPHA", "Stack", "build_ops"]
