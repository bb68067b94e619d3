"""Parameter rules that name the parameter, rule and value.

Each rule has two forms: ``*_problem`` returns what is wrong in one line (or None), for
callers that add context of their own (a layer's position, a bundle field); ``check_*``
raises that line as an `InvalidParameterError`. A caller whose users know a rule by other
words (``units must be a positive integer``) passes them as ``must_be``: the test is the same.

Kept free of PyTorch so that data reading and the CLI's argument checks start instantly.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from archtune.errors import InvalidParameterError, nearest


def choice_problem(name: str, value: Any, choices: tuple, *, must_be: str | None = None) -> str | None:
    """What is wrong with ``value`` as one of ``choices`` (with the nearest choice for a typo),
    or None when it is one. ``must_be`` words the choices otherwise ("'same' or 'valid'")."""
    try:
        if value in choices:
            return None
    except (TypeError, ValueError):  # an array or other value that cannot be compared
        pass
    must_be = must_be or "one of " + ", ".join(repr(c) for c in choices)
    return f"{name} must be {must_be}; got {name}={value!r}{nearest(str(value), [str(c) for c in choices])}"


def number_problem(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    must_be: str | None = None,
) -> str | None:
    """What is wrong with ``value`` as a finite number (an integer, with ``integer``; never a
    bool) in the interval, or None when nothing is. ``must_be`` words the whole rule otherwise
    ("a positive integer"); without it, the message names the part that failed."""
    if isinstance(value, bool) or not isinstance(value, Integral if integer else Real):
        why = f"must be {'an integer' if integer else 'a number'}"
    elif not isinstance(value, Integral) and not math.isfinite(float(value)):
        why = "must be finite"
    elif (low is not None and (value <= low if low_open else value < low)) or \
            (high is not None and (value >= high if high_open else value > high)):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        opening, closing = "(" if low_open or low is None else "[", ")" if high_open or high is None else "]"
        why = f"must be in {opening}{lo}, {hi}{closing}"
    else:
        return None
    return f"{name} {why if must_be is None else 'must be ' + must_be}; got {name}={value!r}"


def check_choice(name: str, value: Any, choices: tuple) -> Any:
    problem = choice_problem(name, value, choices)
    if problem:
        raise InvalidParameterError(problem)
    return value


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> Any:
    """Check that ``value`` is a finite number in the interval; return it as int or float."""
    problem = number_problem(name, value, low, high, low_open=low_open, high_open=high_open, integer=integer)
    if problem:
        raise InvalidParameterError(problem)
    return int(value) if integer else float(value)
