"""What each argument of a declared layer must be, and `LayerError`, what is wrong with a layer.

Every argument of every layer has a rule: a function of the argument's name and value that
returns what is wrong in one line, or None. The tests are archtune.checks' (`number_problem`,
`choice_problem`: the same types, finiteness, intervals and did-you-mean hints as every other
parameter); a rule words its message itself only where the layer vocabulary says more, or says
it as Keras users know it ("units must be a positive integer", "code 0 is padding").
`validate_layer` applies a layer's rules (its class's ``RULES``) before any shape work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from archtune.blocks import ACTIVATIONS, canonical_activation
from archtune.checks import choice_problem, number_problem
from archtune.errors import InvalidParameterError

Rule = Callable[[str, Any], "str | None"]


class LayerError(InvalidParameterError):
    """What is wrong with one layer; `check_layers` and `compile_layers` re-raise it as an
    `InvalidParameterError` that starts with the layer's position, ``layers[i]:``."""


def positive_int(name: str, value: Any) -> str | None:
    return number_problem(name, value, 1, integer=True, must_be="a positive integer")


def vocabulary_size(name: str, value: Any) -> str | None:
    """An Embedding's input_dim: codes 0 .. input_dim - 1, of which 0 is padding."""
    return number_problem(name, value, 2, integer=True, must_be="an integer >= 2 (code 0 is padding)")


def rate(name: str, value: Any) -> str | None:
    return number_problem(name, value, 0, 1, high_open=True)


def non_negative(name: str, value: Any) -> str | None:
    return number_problem(name, value, 0, must_be="a finite number >= 0")


def finite(name: str, value: Any) -> str | None:
    return number_problem(name, value, must_be="a finite number")


def flag(name: str, value: Any) -> str | None:
    if not isinstance(value, bool):
        return f"{name} must be True or False; got {name}={value!r}"
    return None


def positive_ints(name: str, value: Any) -> str | None:
    if isinstance(value, (tuple, list)) and value and not any(number_problem(name, v, 1, integer=True) for v in value):
        return None
    return f"{name} must be a non-empty tuple of positive integers; got {name}={value!r}"


def activation(name: str, value: Any) -> str | None:
    """An activation by name or alias (as the built-in families read it)."""
    if isinstance(value, str) and canonical_activation(value) in ACTIVATIONS:
        return None
    return choice_problem(name, value, tuple(ACTIVATIONS), must_be=f"one of {', '.join(ACTIVATIONS)}")


def activation_or_none(name: str, value: Any) -> str | None:
    """An activation name, or None for none (a linear layer)."""
    return None if value is None else activation(name, value)


def one_of(*options: str) -> Rule:
    def rule(name: str, value: Any) -> str | None:
        return choice_problem(name, value, options, must_be=" or ".join(repr(o) for o in options))
    return rule


def function(name: str, value: Any) -> str | None:
    return None if callable(value) else f"{name} must be a function of a tensor; got {name}={value!r}"


def validate_layer(layer: Any) -> None:
    """Check every argument of one layer against its class's rules (LayerError if one is bad)."""
    for field in dataclasses.fields(layer):
        why = type(layer).RULES[field.name](field.name, getattr(layer, field.name))
        if why:
            raise LayerError(f"{layer!r}: {why}")
