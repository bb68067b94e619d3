"""The MLP and its residual form (the builders: archtune/models/mlp.py): the dense layers,
numeric embeddings in front, the estimators' default recipe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archtune.families.spec import FamilySpec


def _residual_projections(config: Any, hidden_sizes: Sequence[int]) -> tuple:
    # Which residual blocks change width (and so carry a projection): a slot of the stack each.
    return tuple(a != b for a, b in zip(hidden_sizes[:-1], hidden_sizes[1:]))


MLP = FamilySpec("mlp", uses=("dense", "numeric_embedding"), stackable=True, tabular=True)
RESNET = FamilySpec("resnet", uses=("dense", "numeric_embedding"), stackable=True, tabular=True,
                    stack_key=_residual_projections)

__all__ = ["MLP", "RESNET"]
