"""K networks of one family trained as one model.

All of a member's parameters live in one row of a flat leaf tensor ``flat`` of shape [K, P];
each layer reads views of it ([K, in, out] weights: a Linear's weight stored transposed, the
layout ``baddbmm(bias, h, weight)`` reads directly, so neither the forward nor the backward
copies a transposed view; [K, out] biases), so the forward pass is batched matrix products
and the optimiser (archtune.train.population) updates every member with a handful of
whole-buffer operations, however deep the network.

Members may differ in width: each parameter slot has the largest member's shape, padded with
zeros. Padded units are multiplied by a mask after their activation (sigmoid(0) = 0.5 would
otherwise leak), and layer normalisation averages over a member's real units only, so each
member's arithmetic is its own. Members are built by the ordinary `build_model` and copied in,
and `member_state(k)` gives back a state dict for that single network.

TabM members (a BatchEnsemble body of ``k`` ensemble members, equal ``k`` in one stack) keep
their activations as [K, B*k, width] (row b's ensemble member j at b*k + j), so masks,
activations and dropout act on them as on an MLP's; in training the stack returns [K, B*k, o]
and `ensemble_rows` repeats the targets to match, which gives the single network's loss (the
mean of its members' losses); in evaluation it returns the members' mean, [K, B, o].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archtune.errors import InvalidParameterError
from archtune.blocks import ParametricActivation, is_penalised
from archtune.models.embeddings import PeriodicEmbeddings, periodic, piecewise_linear, piecewise_linear_encoding
from archtune.models.mlp import ResidualBlock
from archtune.models.network import TabularNetwork, ensemble_mean
from archtune.models.tabm import LinearBatchEnsemble, TabMBody

ALPHA_DROPOUT_ALPHA = 1.7580993408473766  # SELU's lambda * alpha, as in torch's alpha_dropout


@dataclass
class Slot:
    name: str
    shape: tuple[int, ...]  # padded: the largest member's shape
    offset: int
    size: int
    decayed: bool  # a penalised layer's weight (archtune.blocks.is_penalised): weight decay, L1 and L2 act on it
    transposed: bool = False  # a Linear (or BatchEnsemble) weight, stored [in, out] (the member's is [out, in])

    def member_view(self, tensor: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """One member's part of its padded slot ``tensor``, in the member's own layout."""
        if self.transposed:
            return tensor[: shape[1], : shape[0]].t()
        return tensor[tuple(slice(0, s) for s in shape)]


class StackedNetwork(nn.Module):
    """K `TabularNetwork` members of the same family, depth, activation and normalisation."""

    def __init__(self, members: Sequence[TabularNetwork]):
        super().__init__()
        if not members:
            raise InvalidParameterError("a population needs at least one member")
        first = members[0]
        for k, member in enumerate(members[1:], start=1):
            if _structure(member) != _structure(first):
                raise InvalidParameterError(
                    f"population member {k} has a different structure from member 0 (family, depth, activation, "
                    f"normalisation, residual projections, inputs and TabM's k must match; widths may differ)")
        self.k = len(members)
        self.n_numeric = first.n_numeric
        self.n_continuous = first.n_continuous
        self.numeric_embedding = first.numeric_embedding  # its hyperparameters; the weights are the stack's
        self.feature_scale = first.feature_scale is not None
        self.n_embeddings = len(first.embeddings)
        self.task = first.task
        self.has_batchnorm = any(isinstance(m, nn.BatchNorm1d) for m in first.modules())
        self.ensemble_size = int(getattr(first, "ensemble_size", 0))  # TabM's k; 0: not an ensemble
        params = [dict(m.named_parameters()) for m in members]
        # Stored [in, out]: the weights of Linear layers and TabM's shared BatchEnsemble weights.
        transposed = {f"{n}.weight" for n, mod in first.named_modules()
                      if isinstance(mod, (nn.Linear, LinearBatchEnsemble))}
        # Penalised (weight decay, L1, L2): what a network alone penalises (the same rule).
        penalised = {f"{n}.weight" for n, mod in first.named_modules() if is_penalised(mod)}
        self.slots: dict[str, Slot] = {}
        offset = 0
        for name in params[0]:
            shape = tuple(max(p[name].shape[d] for p in params) for d in range(params[0][name].dim()))
            flip = name in transposed
            size = math.prod(shape)
            self.slots[name] = Slot(name, shape[::-1] if flip else shape, offset, size, name in penalised, flip)
            offset += size
        self.member_shapes = [{n: tuple(p[n].shape) for n in p} for p in params]
        self.member_buffer_shapes = [{n: tuple(b.shape) for n, b in m.named_buffers()} for m in members]
        flat = torch.zeros(self.k, offset, dtype=params[0][next(iter(params[0]))].dtype)
        for k, p in enumerate(params):
            for name, slot in self.slots.items():
                view = flat[k, slot.offset:slot.offset + slot.size].view(slot.shape)
                slot.member_view(view, tuple(p[name].shape)).copy_(p[name].detach())
        self.flat = nn.Parameter(flat)
        decay = torch.zeros(offset, dtype=torch.bool)
        for slot in self.slots.values():
            if slot.decayed:
                decay[slot.offset:slot.offset + slot.size] = True
        self.register_buffer("decay_mask", decay, persistent=False)
        self.decayed_ranges = [(s.offset, s.offset + s.size) for s in self.slots.values() if s.decayed]
        self._buffer_names = [n for n, _ in first.named_buffers()]
        for name in self._buffer_names:
            stacked = _stack_padded([dict(m.named_buffers())[name] for m in members])
            self.register_buffer(_buffer_key(name), stacked)
        self.ops = _build_ops(members)
        self.hidden_weight_names = [f"{n}.weight" for n, mod in first.body.named_modules(prefix="body")
                                    if isinstance(mod, nn.Linear)]

    # ------------------------------------------------------------------ views

    def views(self) -> dict[str, torch.Tensor]:
        # One split rather than a slice per slot: the backward of a split is one concatenation,
        # while each slice's backward fills a zero [K, P] gradient and adds it up (measured: a
        # tenth of a small cohort's step).
        chunks = torch.split(self.flat, [s.size for s in self.slots.values()], dim=1)
        return {n: c.view(self.k, *s.shape) for (n, s), c in zip(self.slots.items(), chunks)}

    def buffer(self, name: str) -> torch.Tensor:
        return getattr(self, _buffer_key(name))

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of every member: [K, batch, n_outputs]. ``x`` is the shared input [batch, F],
        or each member's own rows [K, batch, F] (archtune.train.member_rows)."""
        P = self.views()
        h: torch.Tensor = x
        embedding = self.numeric_embedding
        if self.n_embeddings or embedding is not None:
            own = x.dim() == 3

            def stacked(part: torch.Tensor) -> torch.Tensor:
                return part if own else part.expand(self.k, -1, -1)

            if embedding is None:
                parts = [stacked(x[..., :self.n_numeric])]
            else:
                parts = [self._embed_numeric(x[..., :self.n_continuous], P),
                         stacked(x[..., self.n_continuous:self.n_numeric])]
            codes = x[..., self.n_numeric:].long()
            if own:  # member k looks up its own rows' codes in its own table
                members = torch.arange(self.k, device=x.device).unsqueeze(1)
                parts += [P[f"embeddings.{i}.weight"][members, codes[..., i]] for i in range(self.n_embeddings)]
            else:
                parts += [P[f"embeddings.{i}.weight"][:, codes[:, i], :] for i in range(self.n_embeddings)]
            h = torch.cat(parts, dim=2)
        if self.feature_scale:
            h = h * P["feature_scale"].unsqueeze(1)
        for op in self.ops:
            h = op(h, P, self)
        return h

    def _embed_numeric(self, x: torch.Tensor, P: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each member's numeric embedding of the numeric block (shared [B, F], or periodic
        embeddings of each member's own rows [K, B, F]): [K, B, F*d]."""
        embedding = self.numeric_embedding
        if isinstance(embedding, PeriodicEmbeddings):
            return periodic(x, P["numeric_embedding.frequencies"], P["numeric_embedding.weight"],
                            P["numeric_embedding.bias"], embedding.lite)
        names = ("bin_left", "bin_width", "clip_low", "clip_high", "bin_mask")
        if x.dim() == 3:  # each member's own rows, binned by its own bins (fitted on its rows)
            left, width, low, high, mask = (self.buffer(f"numeric_embedding.{name}").unsqueeze(1) for name in names)
            # Bins past a member's own count are padding (mask 0): a width of 1 keeps them finite.
            encoded = piecewise_linear_encoding(x, left, torch.where(mask > 0, width, torch.ones_like(width)), low,
                                                high, mask)  # [K, B, F, T]
            linear = P["numeric_embedding.bias"].unsqueeze(1) + P["numeric_embedding.weight"].unsqueeze(1) * x.unsqueeze(-1)
            return (linear + torch.einsum("kbft,kftd->kbfd", encoded, P["numeric_embedding.encoding_weight"])).flatten(-2)
        bins = [self.buffer(f"numeric_embedding.{name}")[0] for name in names]
        return piecewise_linear(x, *bins, P["numeric_embedding.weight"], P["numeric_embedding.bias"],
                                P["numeric_embedding.encoding_weight"])

    def ensemble_rows(self, t: torch.Tensor, own: bool) -> torch.Tensor:
        """Targets or row weights ([B, ...], or each member's own [K, B, ...] with ``own``)
        repeated once per TabM ensemble member, matching the training outputs [K, B*k, o]: the
        mean loss over these rows is the mean of the ensemble members' losses."""
        if not self.ensemble_size:
            return t
        return t.repeat_interleave(self.ensemble_size, dim=1 if own else 0)

    def eval_rows(self, rows: int) -> int:
        """Rows per evaluation batch for ``rows`` of one network's: a TabM stack holds k
        activations per row ([K, B*k, width]), so its batches are k times shorter (8 members
        of 256 units over 8192 rows would otherwise hold 0.5 GB per layer)."""
        return max(1, rows // max(1, self.ensemble_size))

    def scale_dropout(self, factors: Sequence[float]) -> None:
        """Each member's dropout rates times its factor (a regularisation schedule)."""
        for op in self.ops:
            op.scale_dropout(factors)

    # ------------------------------------------------------------------ members

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights (and norm statistics) as a single network's state dict."""
        P = self.views()
        shapes = self.member_shapes[k]
        state = {n: slot.member_view(P[n][k], shapes[n]).detach().clone(memory_format=torch.contiguous_format)
                 for n, slot in self.slots.items()}
        for name in self._buffer_names:  # each buffer cut to the member's own shape (widths, bins)
            value = self.buffer(name)[k]
            state[name] = value[tuple(slice(0, s) for s in self.member_buffer_shapes[k][name])].detach().clone()
        return state

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the members at ``index`` (compaction); the others leave the stack."""
        rows = [int(i) for i in index.tolist()]
        self.flat = nn.Parameter(self.flat.detach()[index].clone())
        for name in self._buffer_names:
            setattr(self, _buffer_key(name), self.buffer(name)[index].clone())
        self.member_shapes = [self.member_shapes[i] for i in rows]
        self.member_buffer_shapes = [self.member_buffer_shapes[i] for i in rows]
        on_host = index.cpu()  # the ops' own constants stay on the host (see `_on`)
        for op in self.ops:
            op.keep(on_host)
        self.k = len(rows)


# --------------------------------------------------------------------------- ops


_RATE_ONLY = ("Dropout", "AlphaDropout", "Identity")  # dropout on or off: a per-member rate


def _structure(member: nn.Module) -> tuple:
    """What must agree for members to share one stack: everything but widths and rates."""
    kinds = tuple((name, type(mod).__name__) for name, mod in member.named_modules()
                  if type(mod).__name__ not in _RATE_ONLY)
    params = tuple((name, p.dim(), p.dtype) for name, p in member.named_parameters())
    buffers = tuple(name for name, _ in member.named_buffers())
    return (kinds, params, buffers, getattr(member, "task", None), getattr(member, "n_numeric", None),
            getattr(member, "ensemble_size", 0))  # TabM's k: adapters of another k cannot be padded


def _buffer_key(name: str) -> str:
    return "buf__" + name.replace(".", "__")


def _stack_padded(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    if tensors[0].dim() == 0:
        return torch.stack([t.detach().clone() for t in tensors])
    shape = tuple(max(t.shape[d] for t in tensors) for d in range(tensors[0].dim()))
    out = torch.zeros(len(tensors), *shape, dtype=tensors[0].dtype)
    for k, t in enumerate(tensors):
        out[k][tuple(slice(0, s) for s in t.shape)] = t.detach()
    return out


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


class _Op:
    def __call__(self, h: torch.Tensor, P: dict[str, torch.Tensor], net: StackedNetwork) -> torch.Tensor:
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


def _build_ops(members: Sequence[TabularNetwork]) -> list[_Op]:
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
