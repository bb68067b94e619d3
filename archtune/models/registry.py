"""The model registry (timm-style): a family is one decorated builder function.

A builder turns a `ModelConfig` and an input width into a body module and its output width;
`archtune.models.network.build_model` wraps the body with the shared input side and the
task's output layer. The registry entry also declares what the rest of archtune needs to know
about the family, so that each decision is made in one place: whether cohorts can stack its
members, and which parameter groups (archtune.config.PARAM_GROUPS) it reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    import torch

    from archtune.config import ModelConfig

Builder = Callable[["ModelConfig", int, "torch.Generator | None"], tuple[nn.Module, int]]


@dataclass(frozen=True)
class Family:
    """A registered model family.

    stackable : whether `StackedNetwork` can train several members of this family as one
        model (population training); other families train one member at a time.
    uses : parameter groups (see ``archtune.config.PARAM_GROUPS``) the family reads besides
        the dense layers' activation, initialiser and dropout.
    tabular : whether the estimators' default recipe (measured on tables, bench/defaults.py)
        applies; for the other families, parameters left at their defaults take the classic
        values (archtune.recipes.CLASSIC) they were measured with.
    """

    name: str
    build: Builder
    stackable: bool = False
    uses: tuple[str, ...] = ("dense",)
    tabular: bool = False


_FAMILIES: dict[str, Family] = {}


def register_model(name: str, *, stackable: bool = False, uses: tuple[str, ...] = ("dense",),
                   tabular: bool = False) -> Callable[[Builder], Builder]:
    def decorate(builder: Builder) -> Builder:
        if name in _FAMILIES:
            raise ValueError(f"model family {name!r} is already registered")
        _FAMILIES[name] = Family(name, builder, stackable, tuple(uses), tabular)
        return builder

    return decorate


def list_models() -> list[str]:
    return sorted(_FAMILIES)


def get_family(name: str) -> Family:
    return _FAMILIES[name]
