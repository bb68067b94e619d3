"""Convolutional networks for images (the builder: archtune/models/cnn.py): the "conv"
parameter group, shared with columns of image paths."""

from __future__ import annotations

from archtune.families.spec import FamilySpec

SPEC = FamilySpec("cnn", uses=("dense", "conv"))

__all__ = ["SPEC"]
