"""What a model family declares about itself (`FamilySpec`), and each of its own parameters
(`FamilyParam`).

A family's module (archtune/families/<name>.py) is the one place that knows the family: the
parameters only it reads with their defaults, rules and documentation, the parameter groups
it shares with others, whether cohorts can stack its members and what stacked members must
share, and how a search samples its parameters. The estimators' signatures and docstrings,
`ModelConfig`'s fields, `PARAM_GROUPS`, the cohort keys and the search read these
declarations; nothing else lists a family's parameters. The network itself is built by the
builder registered under the same name in archtune/models (`register_model`), which reads
the parameters from the `ModelConfig`.

Kept free of PyTorch, like archtune.config, which reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FamilyParam:
    """One parameter of one family, declared once.

    name : the estimator parameter and the `ModelConfig` field (and the bundle's key).
    default : the estimators' default.
    check : value -> the value as `ModelConfig` stores it; raises `InvalidParameterError`
        naming the parameter for a bad one. ``check(default)`` is `ModelConfig`'s default.
    doc : the numpydoc entry under ``name :`` in the estimators' docstring: the type on the
        first line, then the description, unindented (the docstring indents it).
    """

    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str


def _nothing(config: Any, hidden_sizes: Sequence[int]) -> tuple:
    return ()


def _always(config: Any) -> bool:
    return True


@dataclass(frozen=True)
class FamilySpec:
    """A model family as the rest of archtune sees it.

    name : the ``arch`` value.
    params : the parameters only this family reads (their group in ``PARAM_GROUPS`` is the
        family's name).
    uses : the parameter groups the family reads (``PARAM_GROUPS``' keys): the shared ones
        ("dense", "numeric_embedding", "conv", "sequence", "inputs") and its own.
    stackable : whether `StackedNetwork` can train several members of the family as one
        model (population training); other families train one member at a time.
    can_stack : config -> whether this configuration of a stackable family can be stacked.
    stack_key : (config, hidden_sizes) -> what members of one stack must share beyond the
        dense layers' structure (part of `structure_signature`).
    tabular : whether the estimators' default recipe (measured on tables) applies; other
        families take the classic values (archtune.recipes.CLASSIC) for parameters left at
        their defaults.
    where_used : the reason the unused-parameter warning gives for the family's own
        parameters ("it applies to arch='tabm'").
    sample : a search's sampling of the family's own parameters, given a `Sampler`
        (archtune.tune.sampler): each parameter sampled, or fixed to the value searches use.
    """

    name: str
    params: tuple[FamilyParam, ...] = ()
    uses: tuple[str, ...] = ("dense",)
    stackable: bool = False
    can_stack: Callable[[Any], bool] = _always
    stack_key: Callable[[Any, Sequence[int]], tuple] = _nothing
    tabular: bool = False
    where_used: str = ""
    sample: Callable[[Any], None] | None = None


__all__ = ["FamilyParam", "FamilySpec"]
