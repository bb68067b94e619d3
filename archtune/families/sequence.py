"""Sequence encoders over series input (the builder: archtune/models/mlp.py with
archtune/models/sequence.py): the "sequence" parameter group, shared with text columns."""

from __future__ import annotations

from archtune.families.spec import FamilySpec

SPEC = FamilySpec("sequence", uses=("dense", "sequence"))

__all__ = ["SPEC"]
