"""Pretext tasks: what a network learns from unlabeled rows.

A pretext task is a small object that says how wide the network's output layer (its
``head``) is during pretraining, how a batch of preprocessed rows becomes the network's input
and output (`forward`, which draws its noise from a generator it is given), and the loss of
those outputs against the training "targets" (`targets`: the clean rows, or nothing).
Because the pairs are made inside the forward pass, archtune's `Trainer` trains them like any
supervised task, with fresh noise every batch.

- `MaskedFeatures` (tables): VIME's mask-and-reconstruct pretext (Yoon et al., "VIME:
  Extending the Success of Self- and Semi-supervised Learning to Tabular Domain", NeurIPS
  2020) with SCARF's corruption by values of other rows (Bahri et al., "SCARF:
  Self-Supervised Contrastive Learning using Random Feature Corruption", ICLR 2022).
- `Rotation` (images): RotNet (Gidaris et al., "Unsupervised Representation Learning by
  Predicting Image Rotations", ICLR 2018).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archtune.checks import check_choice, check_number
from archtune.errors import InvalidParameterError

PRETEXTS = ("auto", "masked_features", "rotation")
# VIME's weight of the mask-estimation loss against the reconstruction loss (its alpha,
# 2.0 in the authors' code), with their corruption probability p_m = 0.3.
MASK_WEIGHT = 2.0
CORRUPTION_RATE = 0.3


def _members_as_rows(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A TabM network in training mode returns every member's outputs [B, k, o]: each member
    is scored on its own (as the supervised losses do), so the members become rows."""
    if outputs.ndim != 3:
        return outputs, targets
    k = outputs.shape[1]
    return outputs.reshape(-1, outputs.shape[2]), targets.repeat_interleave(k, dim=0)


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class FeatureLayout:
    """Where a preprocessed row's features sit (see archtune.data.preprocess.Preprocessor).

    numeric : tuple of int
        Columns reconstructed by squared error: the scaled numeric features, then their
        missing-value indicators.
    categorical : tuple of (start, width, n_classes)
        Each categorical column: a code column (width 1, codes 0..n_classes-1, 0 = missing or
        unseen) or a one-hot block of ``width`` columns (class 0: no level set).
    groups : tuple of tuple of int
        The cells corrupted together: a numeric feature with its missing-value indicator (a
        value and its missingness come from the same row), a one-hot block, a code column.
        Text and image columns are in no group: they pass through uncorrupted.
    """

    numeric: tuple[int, ...]
    categorical: tuple[tuple[int, int, int], ...]
    groups: tuple[tuple[int, ...], ...]

    @classmethod
    def from_preprocessor(cls, pre: Any) -> "FeatureLayout":
        n_values = len(pre.numeric_)
        indicator = {name: n_values + j for j, name in enumerate(pre.indicators_)}
        groups = [(j, indicator[name]) if name in indicator else (j,) for j, name in enumerate(pre.numeric_)]
        positions = pre.categorical_positions()
        categorical = tuple(positions[name] for name in sorted(positions, key=lambda n: positions[n][0]))
        groups += [tuple(range(start, start + width)) for start, width, _ in categorical]
        return cls(tuple(range(n_values + len(pre.indicators_))), categorical, tuple(groups))

    @property
    def n_features(self) -> int:
        return len(self.numeric) + len(self.categorical)


class MaskedFeatures:
    """Masked-feature reconstruction with swap noise, for tables.

    Each feature (a numeric value with its missing-value indicator, or a categorical column) of
    a row is, with probability ``corruption_rate``, replaced by the same feature of another
    row of the batch, drawn at random (SCARF's corruption: the replacement follows the
    feature's own distribution, so the corrupted row is not told apart by odd values). The
    network sees the corrupted row and predicts the clean one and, optionally, which features
    were replaced (VIME's mask estimation).

    Parameters
    ----------
    layout : FeatureLayout
    corruption_rate : float in (0, 1)
        Probability that a feature is replaced (VIME's p_m; 0.3 by default).
    predict_mask : bool
        Whether the head also predicts the mask (one logit per feature).
    mask_weight : float >= 0
        Weight of the mask loss (VIME's alpha; 2.0 by default).

    Notes
    -----
    The loss of a batch is::

        reconstruction + mask_weight * mask_loss
        reconstruction = (sum over numeric columns of their mean squared error
                          + sum over categorical columns of their mean cross-entropy)
                         / (numeric columns + categorical columns)
        mask_loss = mean binary cross-entropy of the mask logits over all features

    Every column counts once: a numeric column in its scaled units (unit variance with
    standard scaling), a categorical column in nats. All features are reconstructed, not only
    the corrupted ones (as VIME does), so the network must also recognise the clean values.
    The head's outputs are the numeric reconstructions, then the logits of each categorical
    column, then (``predict_mask``) one mask logit per feature group.
    """

    name = "masked_features"

    def __init__(self, layout: FeatureLayout, corruption_rate: float = CORRUPTION_RATE, predict_mask: bool = True,
                 mask_weight: float = MASK_WEIGHT):
        self.layout = layout
        self.corruption_rate = float(check_number("corruption_rate", corruption_rate, 0.0, 1.0, low_open=True,
                                                  high_open=True))
        if not isinstance(predict_mask, bool):
            raise InvalidParameterError(f"predict_mask must be True or False; got predict_mask={predict_mask!r}")
        self.predict_mask = predict_mask
        self.mask_weight = float(check_number("mask_weight", mask_weight, 0.0))
        if not layout.groups:
            raise InvalidParameterError("pretext='masked_features' needs numeric or categorical columns to corrupt; "
                                        "this table has only text or image columns")
        columns = [c for group in layout.groups for c in group]
        self._columns = torch.tensor(columns, dtype=torch.long)
        self._column_group = torch.tensor([g for g, group in enumerate(layout.groups) for _ in group],
                                          dtype=torch.long)
        self._numeric = torch.tensor(layout.numeric, dtype=torch.long)
        self.n_reconstruction = len(layout.numeric) + sum(n for _, _, n in layout.categorical)

    def settings(self) -> dict[str, Any]:
        return {"corruption_rate": self.corruption_rate, "predict_mask": self.predict_mask,
                "mask_weight": self.mask_weight}

    @property
    def n_outputs(self) -> int:
        """Width of the pretext head."""
        return self.n_reconstruction + (len(self.layout.groups) if self.predict_mask else 0)

    @property
    def constant_loss(self) -> float:
        """About the loss of a network that predicts the column means and the uniform
        distribution: the yardstick of divergence."""
        parts = [1.0] * len(self.layout.numeric) + [math.log(n) for _, _, n in self.layout.categorical]
        return sum(parts) / len(parts) + (self.mask_weight * math.log(2) if self.predict_mask else 0.0)

    def targets(self, X: torch.Tensor) -> torch.Tensor:
        return X  # the clean rows (the same tensor: no copy)

    def corrupt(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted rows [B, columns], mask [B, groups] of bool: True where replaced).

        Each feature of each row is replaced, with probability ``corruption_rate``, by the
        same feature of another row of the batch (a different row, drawn uniformly)."""
        n, device = len(x), x.device
        n_groups = len(self.layout.groups)
        mask = torch.rand(n, n_groups, generator=generator, device=device) < self.corruption_rate
        if n < 2:  # no other row to take values from
            return x, torch.zeros_like(mask)
        # row + an offset in 1..n-1, modulo n: uniform over the other rows.
        offset = torch.randint(1, n, (n, n_groups), generator=generator, device=device)
        partner = (torch.arange(n, device=device).unsqueeze(1) + offset) % n
        columns, column_group = self._columns.to(device), self._column_group.to(device)
        clean = x[:, columns]
        swapped = clean.gather(0, partner[:, column_group])
        out = x.clone()
        out[:, columns] = torch.where(mask[:, column_group], swapped, clean)
        return out, mask

    def forward(self, network: nn.Module, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The head's outputs on the corrupted rows, with the mask drawn appended (as floats,
        after the head's columns) so that the loss can score the mask logits."""
        corrupted, mask = self.corrupt(x, generator)
        out = network(corrupted)
        if not self.predict_mask:
            return out
        mask = mask.to(out.dtype)
        if out.ndim == 3:
            mask = mask.unsqueeze(1).expand(-1, out.shape[1], -1)
        return torch.cat([out, mask], dim=-1)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The pretext loss (see Notes) of ``forward``'s outputs against the clean rows."""
        outputs, targets = _members_as_rows(outputs, targets)
        layout = self.layout
        n_numeric = len(layout.numeric)
        total = outputs.new_zeros(())
        if n_numeric:
            clean = targets[:, self._numeric.to(targets.device)]
            total = total + F.mse_loss(outputs[:, :n_numeric], clean, reduction="none").mean(0).sum()
        start = n_numeric
        for column, width, n_classes in layout.categorical:
            block = targets[:, column:column + width]
            if width == 1:
                labels = block[:, 0].long()
            else:  # one-hot: the level's position + 1, 0 when no level is set
                labels = (block * torch.arange(1, width + 1, device=block.device, dtype=block.dtype)).sum(1).long()
            total = total + F.cross_entropy(outputs[:, start:start + n_classes], labels)
            start += n_classes
        loss = total / layout.n_features
        if self.predict_mask:
            n_groups = len(layout.groups)
            logits = outputs[:, self.n_reconstruction:self.n_reconstruction + n_groups]
            loss = loss + self.mask_weight * F.binary_cross_entropy_with_logits(logits, outputs[:, -n_groups:])
        return loss


# --------------------------------------------------------------------------- images


class Rotation:
    """Rotation prediction (RotNet), for images.

    Every image of a batch is shown in its four rotations by 0, 90, 180 and 270 degrees (only
    0 and 180 when the image is not square: a quarter turn would change its shape), all in
    the same batch as the RotNet paper found best, and the network predicts which rotation
    it sees (cross-entropy over the rotations).

    Parameters
    ----------
    image_shape : (C, H, W)
    center, scale : sequence of float, optional
        The preprocessor's per-pixel affine scaling (``(x - center) / scale``): the images are
        rotated as pixels, before that scaling, then scaled again, so that a rotated image
        reads as a real image would. None: the rows are rotated as they are.
    """

    name = "rotation"

    def __init__(self, image_shape: Sequence[int], center: Sequence[float] | None = None,
                 scale: Sequence[float] | None = None):
        if len(image_shape) != 3:
            raise InvalidParameterError(f"pretext='rotation' needs images of shape (C, H, W); got {tuple(image_shape)}")
        self.image_shape = tuple(int(d) for d in image_shape)
        _, height, width = self.image_shape
        self.quarter_turns = (0, 1, 2, 3) if height == width else (0, 2)
        size = math.prod(self.image_shape)
        self._center = None if center is None else torch.as_tensor(center, dtype=torch.float32).reshape(size)
        self._scale = None if scale is None else torch.as_tensor(scale, dtype=torch.float32).reshape(size)

    def settings(self) -> dict[str, Any]:
        return {"quarter_turns": list(self.quarter_turns)}

    @property
    def n_outputs(self) -> int:
        return len(self.quarter_turns)

    @property
    def constant_loss(self) -> float:
        return math.log(self.n_outputs)

    def targets(self, X: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(X), 1)  # the labels are made in forward

    def rotate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(copies [R*B, C*H*W], labels [R*B]): the rows' images turned by each of the R
        rotations (counter-clockwise, ``torch.rot90`` over H and W), rotation-major: the
        first B rows are the unrotated images; label r is ``quarter_turns[r]``'s index."""
        n, size = len(x), math.prod(self.image_shape)
        pixels = x[:, :size]
        if self._scale is not None:
            pixels = pixels * self._scale.to(x.device) + self._center.to(x.device)
        images = pixels.reshape(n, *self.image_shape)
        copies = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in self.quarter_turns]).reshape(-1, size)
        if self._scale is not None:
            copies = (copies - self._center.to(x.device)) / self._scale.to(x.device)
        labels = torch.arange(len(self.quarter_turns), device=x.device).repeat_interleave(n)
        return copies, labels

    def forward(self, network: nn.Module, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Logits [B, R*R]: row i holds the R logits of each of its R rotated copies, so
        batches concatenate row by row (the validation pass predicts in batches)."""
        copies, _ = self.rotate(x)
        logits = network(copies)  # [R*B, R]
        r = len(self.quarter_turns)
        return logits.reshape(r, len(x), r).transpose(0, 1).reshape(len(x), r * r)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        r = len(self.quarter_turns)
        labels = torch.arange(r, device=outputs.device).repeat(len(outputs))
        return F.cross_entropy(outputs.reshape(-1, r), labels)


# --------------------------------------------------------------------------- choosing


def make_pretext(pretext: str, pre: Any, image_shape: Sequence[int] = (), **settings: Any) -> Any:
    """The pretext task ``pretext`` names for data preprocessed by ``pre``.

    ``"auto"`` is rotation for image arrays (``image_shape`` given, i.e. arch="cnn" on
    N x C x H x W input) and masked features otherwise. ``settings`` are the task's own
    (corruption_rate, predict_mask, mask_weight for masked features; none for rotation).

    Raises
    ------
    InvalidParameterError
        An unknown pretext, settings the task does not take, or rotation without images.
    """
    check_choice("pretext", pretext, PRETEXTS)
    if pretext == "auto":
        pretext = "rotation" if image_shape else "masked_features"
    if pretext == "rotation":
        if not image_shape:
            raise InvalidParameterError("pretext='rotation' needs images: arch='cnn' fitted on an array "
                                        "N x C x H x W (or N x H x W)")
        if settings:
            raise InvalidParameterError(f"pretext='rotation' takes no settings; got {sorted(settings)}")
        # Pixels of an image array are numeric columns the preprocessor scaled; those of an
        # image-path column reach the row as read (/ 255), unscaled.
        affine = pre.scaling in ("standard", "maxabs") and len(pre.numeric_) > 0
        center = (pre.center_ if pre.scaling == "standard" else [0.0] * len(pre.scale_)) if affine else None
        return Rotation(image_shape, center, pre.scale_ if affine else None)
    unknown = sorted(set(settings) - {"corruption_rate", "predict_mask", "mask_weight"})
    if unknown:
        raise InvalidParameterError(f"pretext='masked_features' does not take {unknown}; its settings are "
                                    "corruption_rate, predict_mask and mask_weight")
    return MaskedFeatures(FeatureLayout.from_preprocessor(pre), **settings)


__all__ = ["CORRUPTION_RATE", "FeatureLayout", "MASK_WEIGHT", "MaskedFeatures", "PRETEXTS", "Rotation",
           "make_pretext"]
