"""Wide&Deep (Cheng et al. 2016; the builder: archtune/models/mlp.py, the wide part:
archtune/models/wide.py): an MLP beside a wide linear part over the columns ``inputs`` names."""

from __future__ import annotations

from archtune.families.spec import FamilySpec

SPEC = FamilySpec("wide_deep", uses=("dense", "inputs", "numeric_embedding"))

__all__ = ["SPEC"]
