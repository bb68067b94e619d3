"""TabM (Gorishniy, Kotelnikov and Babenko, ICLR 2025): an MLP of BatchEnsemble layers, ``k``
members in one network (the builder: archtune/models/tabm.py).

``arch_type`` follows the paper's variants: "tabm" gives every Linear layer per-member
rank-1 adapters; "tabm-mini" keeps only the first layer's input adapters (the members share
every weight after them but their output layers), fewer parameters at about the same score
in the paper's benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archtune.checks import check_choice, check_number
from archtune.families.spec import FamilyParam, FamilySpec

ARCH_TYPES = ("tabm", "tabm-mini")

# Members on a CPU: the paper's 32 cost 32 times an MLP's arithmetic per step; 8 keep a fit,
# and a search's trials, within minutes (bench/defaults.py on magic: k=8 0.8970 in 214 s,
# k=16 0.8935 in 490 s).
K = 8


def _sample(s: Any) -> None:
    s.fixed("k", K)
    s.fixed("arch_type", "tabm")


def _stack_key(config: Any, hidden_sizes: Sequence[int]) -> tuple:
    return (config.k, config.arch_type)  # k is an axis of every slot of the stack


SPEC = FamilySpec(
    "tabm",
    params=(
        FamilyParam("k", K, lambda v: check_number("k", v, 1, 1024, integer=True),
                    "int\narch=\"tabm\": members of the BatchEnsemble. 8 by measurement on a CPU (bench/defaults.py\n"
                    "on magic: k=8 0.8970 in 214 s, k=16 0.8935 in 490 s); the paper uses 32 on GPUs."),
        FamilyParam("arch_type", "tabm", lambda v: check_choice("arch_type", v, ARCH_TYPES),
                    "{\"tabm\", \"tabm-mini\"}\narch=\"tabm\": the paper's variant. \"tabm\" gives every Linear layer "
                    "per-member\nrank-1 adapters; \"tabm-mini\" only the first layer's input adapters (the members "
                    "share\nthe other weights but not their output layers). \"tabm-mini\" members train one network\n"
                    "at a time in a cohort (no stacked form)."),
    ),
    uses=("dense", "numeric_embedding", "tabm"),
    stackable=True,
    can_stack=lambda config: config.arch_type == "tabm",
    stack_key=_stack_key,
    tabular=True,
    where_used="it applies to arch='tabm'",
    sample=_sample,
)

__all__ = ["ARCH_TYPES", "K", "SPEC"]
