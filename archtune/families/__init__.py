"""The model families' declarations (`FamilySpec`), one module each, registered here.

`FAMILIES` maps each ``arch`` to its declaration; `family_params` lists every family's own
parameters. A new family is a module here (plus its builder in archtune/models); a new family
parameter is one `FamilyParam` in its family's module.
"""

from __future__ import annotations

from archtune.families import cnn, layers, mlp, sequence, tabm, wide_deep
from archtune.families.spec import FamilyParam, FamilySpec

FAMILIES: dict[str, FamilySpec] = {spec.name: spec for spec in (
    mlp.MLP, mlp.RESNET, tabm.SPEC, cnn.SPEC, sequence.SPEC, wide_deep.SPEC, layers.SPEC)}


def list_families() -> list[str]:
    return sorted(FAMILIES)


def family_spec(name: str) -> FamilySpec:
    return FAMILIES[name]


def family_params() -> tuple[FamilyParam, ...]:
    """Every family's own parameters, in the families' order."""
    return tuple(p for spec in FAMILIES.values() for p in spec.params)


__all__ = ["FAMILIES", "FamilyParam", "FamilySpec", "family_params", "family_spec", "list_families"]
