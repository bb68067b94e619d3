"""The builders of the model families (timm-style): a family's network is one decorated
builder function.

A builder turns a `ModelConfig` and an input width into a body module and its output width;
`archtune.models.network.build_model` wraps the body with the shared input side and the
task's output layer. What the rest of archtune knows about a family (its own parameters,
the parameter groups it reads, whether cohorts can stack it) is its declaration in
archtune/families; `Family` pairs the two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from archtune.families import FamilySpec, family_spec, list_families

Builder = Callable[[Any, int, Any], tuple[nn.Module, int]]


@dataclass(frozen=True)
class Family:
    """A registered model family: its declaration (``spec``) and its builder."""

    spec: FamilySpec
    build: Builder

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def stackable(self) -> bool:
        return self.spec.stackable

    @property
    def uses(self) -> tuple[str, ...]:
        return self.spec.uses

    @property
    def tabular(self) -> bool:
        return self.spec.tabular


_BUILDERS: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Register the builder of the family declared as ``name`` in archtune/families."""
    def decorate(builder: Builder) -> Builder:
        if name not in list_families():
            raise ValueError(f"model family {name!r} has no declaration in archtune/families")
        if name in _BUILDERS:
            raise ValueError(f"model family {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorate


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def get_family(name: str) -> Family:
    return Family(family_spec(name), _BUILDERS[name])


__all__ = ["Builder", "Family", "get_family", "list_models", "register_model"]
