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
and `member_state(k)` gives back a state dict for that single network. The forward pass is a
list of ops, one per layer position of the members' bodies (archtune.models.stacked_ops).

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
from torch import nn

from archtune.errors import InvalidParameterError
from archtune.blocks import is_penalised
from archtune.models.embeddings import PeriodicEmbeddings, periodic, piecewise_linear_encoding
from archtune.models.network import TabularNetwork
from archtune.models.stacked_ops import build_ops
from archtune.models.tabm import LinearBatchEnsemble


# A stack's evaluation batch on a CPU: its widest activation within this many values (2 MiB
# of float32, about a core's L2 cache), and no fewer rows than EVAL_MIN_ROWS.
EVAL_CACHE_VALUES = 2**19
EVAL_MIN_ROWS = 256


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
        self.ops = build_ops(members)
        # The widest activation a member's rows pass through (a layer's inputs or outputs).
        self.widest = max((max(s.shape[-2:]) for s in self.slots.values() if s.transposed), default=1)
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
        h = self._inputs(x, P)
        for op in self.ops:
            h = op(h, P, self)
        return h

    def _inputs(self, x: torch.Tensor, P: dict[str, torch.Tensor]) -> torch.Tensor:
        """The body's input: the numeric columns (embedded or not), the categorical embeddings,
        times the feature scale; [K, B, width], or the shared [B, F] when no member has input
        weights of its own."""
        scale = P["feature_scale"].unsqueeze(1) if self.feature_scale else None  # [K, 1, width]
        embedding = self.numeric_embedding
        if not self.n_embeddings and embedding is None:
            return x if scale is None else x * scale
        own = x.dim() == 3
        scaled = 0  # the leading columns whose scale is applied already
        if embedding is None:
            parts = [x[..., :self.n_numeric]]
        elif own or isinstance(embedding, PeriodicEmbeddings):
            parts = [self._embed_numeric(x[..., :self.n_continuous], P), x[..., self.n_continuous:self.n_numeric]]
        else:
            scaled = self.n_continuous * embedding.d_embedding
            own_scale = None if scale is None else scale[..., :scaled]
            parts = [self._piecewise_linear(x[:, :self.n_continuous], P, own_scale),
                     x[:, self.n_continuous:self.n_numeric]]
        parts = [p if p.dim() == 3 else p.expand(self.k, -1, -1) for p in parts]  # shared columns: every member's
        codes = x[..., self.n_numeric:].long()
        if own:  # member k looks up its own rows' codes in its own table
            members = torch.arange(self.k, device=x.device).unsqueeze(1)
            parts += [P[f"embeddings.{i}.weight"][members, codes[..., i]] for i in range(self.n_embeddings)]
        else:
            parts += [P[f"embeddings.{i}.weight"][:, codes[:, i], :] for i in range(self.n_embeddings)]
        # No concatenation with a part of no columns (a table of numeric columns alone): it would
        # copy the [K, B, width] embedding once forward and once backward for nothing.
        parts = [p for p in parts if p.shape[-1]]
        if scale is not None and scaled:  # the embedding carries its scale: the other columns take theirs
            if len(parts) > 1:
                rest = parts[1] if len(parts) == 2 else torch.cat(parts[1:], dim=2)
                parts = [parts[0], rest * scale[..., scaled:]]
            scale = None
        h = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
        return h if scale is None else h * scale

    def _piecewise_linear(self, x: torch.Tensor, P: dict[str, torch.Tensor],
                          scale: torch.Tensor | None) -> torch.Tensor:
        """Every member's piecewise-linear embedding of the shared numeric block x [B, F],
        times its feature scale (``scale`` [K, 1, F*d], or None): [K, B, F*d].

        A network alone computes ``bias + weight * x + encoding @ W``, then the scale: four
        passes over its [B, F*d] activations and three more backward, and a concatenation. A
        stack's activations are K times wider (8 members, 10 columns embedded in 17, 256 rows:
        1.4 MB a pass, out of the cache): those passes made the embedding the recipe's one layer
        that stacked badly (bench/cohort_layers.py: 8 members of 74 units stepped 1.56x faster
        stacked than alone, 1.91x without the embedding; 1.71x with this). Here ``x`` and a
        constant 1 join the encoding as two more bins, weighted by ``weight`` and ``bias``; the
        scale multiplies the weights (F*(T+2)*d numbers per member) instead of the activations;
        and one matrix product per feature embeds every member at once. The same sums in another
        order: a member's embedding equals its network's to rounding.
        """
        names = ("bin_left", "bin_width", "clip_low", "clip_high", "bin_mask")
        bins = (self.buffer(f"numeric_embedding.{name}")[0].unsqueeze(1) for name in names)  # [F, 1, T]
        columns = x.t()  # [F, B]
        encoded = piecewise_linear_encoding(columns, *bins)  # [F, B, T]
        inputs = torch.cat([encoded, columns.unsqueeze(-1), torch.ones_like(columns).unsqueeze(-1)], dim=-1)
        weights = torch.cat([P["numeric_embedding.encoding_weight"], P["numeric_embedding.weight"].unsqueeze(2),
                             P["numeric_embedding.bias"].unsqueeze(2)], dim=2)  # [K, F, T+2, d]
        k, f, t, d = weights.shape
        if scale is not None:
            weights = weights * scale.view(k, f, 1, d)
        out = torch.bmm(inputs, weights.permute(1, 2, 0, 3).reshape(f, t, k * d))  # [F, B, K*d]
        return out.view(f, -1, k, d).permute(2, 1, 0, 3).reshape(k, -1, f * d)

    def _embed_numeric(self, x: torch.Tensor, P: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each member's numeric embedding of the numeric block (periodic embeddings of the
        shared [B, F] or of each member's own rows [K, B, F]; piecewise-linear embeddings of
        each member's own rows, the shared ones being `_piecewise_linear`'s): [K, B, F*d]."""
        embedding = self.numeric_embedding
        if isinstance(embedding, PeriodicEmbeddings):
            return periodic(x, P["numeric_embedding.frequencies"], P["numeric_embedding.weight"],
                            P["numeric_embedding.bias"], embedding.lite)
        names = ("bin_left", "bin_width", "clip_low", "clip_high", "bin_mask")
        # Each member's own rows, binned by its own bins (fitted on its rows).
        left, width, low, high, mask = (self.buffer(f"numeric_embedding.{name}").unsqueeze(1) for name in names)
        # Bins past a member's own count are padding (mask 0): a width of 1 keeps them finite.
        encoded = piecewise_linear_encoding(x, left, torch.where(mask > 0, width, torch.ones_like(width)), low,
                                            high, mask)  # [K, B, F, T]
        linear = P["numeric_embedding.bias"].unsqueeze(1) + P["numeric_embedding.weight"].unsqueeze(1) * x.unsqueeze(-1)
        return (linear + torch.einsum("kbft,kftd->kbfd", encoded, P["numeric_embedding.encoding_weight"])).flatten(-2)

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
        of 256 units over 8192 rows would otherwise hold 0.5 GB per layer). On a CPU a batch
        also keeps the stack's widest activation [K, rows, width] within `EVAL_CACHE_VALUES`:
        each pass over a stack's activations out of the cache costs more than its arithmetic
        (8 members with 170 embedded columns validated 1,902 rows in 26 ms at once, in 19 ms
        by 385 rows)."""
        if self.flat.device.type == "cpu":
            rows = min(rows, max(EVAL_MIN_ROWS, EVAL_CACHE_VALUES // (self.k * self.widest)))
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
        on_host = index.cpu()  # the ops' own constants stay on the host (see stacked_ops._on)
        for op in self.ops:
            op.keep(on_host)
        self.k = len(rows)


# --------------------------------------------------------------------------- helpers


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
