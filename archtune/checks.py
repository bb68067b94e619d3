"""Parameter rules that raise `InvalidParameterError` naming the parameter, rule and value.

Kept free of PyTorch so that data reading and the CLI's argument checks start instantly.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from archtune.errors import InvalidParameterError, nearest



def check_choice(name: str, value: Any, choices: tuple) -> Any:
    if value in choices:
        return value
    shown = ", ".join(repr(c) for c in choices)
    raise InvalidParameterError(
        f"{name} must be one of {shown}; got {name}={value!r}{nearest(str(value), [str(c) for c in choices])}"
    )


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
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, Integral) if integer else isinstance(value, Real)
    if isinstance(value, bool) or not ok_type:
        raise InvalidParameterError(f"{name} must be {kind}; got {name}={value!r}")
    if not math.isfinite(float(value)):
        raise InvalidParameterError(f"{name} must be finite; got {name}={value!r}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise InvalidParameterError(f"{name} must be in {interval}; got {name}={value!r}")
    return int(value) if integer else float(value)
