"""What a search space may ask for, found by walking it: a `Dimension` per parameter.

A space is define-by-run (archtune.tune.space): its parameters, their ranges and their
conditions are nowhere written down, only asked for by sampling functions. `discover` runs
those functions against `Walk` trials, which answer at random and record what they were
asked, and reads each parameter's distribution (the union over its variants) and the
condition under which it is asked off the walks. `describe`, `grid` and `dimensions` of a
`SearchSpace` read the result.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

# How many random walks through a space `discover` takes to find every parameter it may ask
# for (conditional ones included).
DISCOVERY_WALKS = 300


@dataclass(frozen=True)
class Dimension:
    """What a space may ask for one parameter (found by walking the space): its kind
    ("int", "float", "categorical" or "fixed"), range or choices (the union over the space's
    variants), and when it is asked; ``variants`` describe a parameter whose distribution
    depends on other choices (the learning rate per optimiser family, say)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()
    value: Any = None
    when: str = ""
    variants: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        if self.variants:
            return " | ".join(f"{text} when {when}" if when else text for text, when in self.variants)
        return f"{_text(self)} when {self.when}" if self.when else _text(self)

    def grid_values(self, points: int) -> list[Any]:
        """``points`` representative values of a numeric dimension, evenly spread (on its
        scale) from low to high; an integer dimension's distinct roundings."""
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.log:
            values = [math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * i / (points - 1))
                      for i in range(points)]
        else:
            values = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
        if self.kind == "int":
            return sorted({int(round(v)) for v in values})
        return [min(hi, max(lo, v)) for v in values]  # exp/log round-off must not leave the range


def _text(d: Dimension) -> str:
    if d.kind == "fixed":
        return f"{d.value!r}"
    if d.kind == "categorical":
        return "{" + ", ".join(repr(c) for c in d.choices) + "}"
    return f"{d.low:g}..{d.high:g}{' (log)' if d.log else ''}"


class Walk:
    """A trial that answers at random and records what it was asked in ``asked``."""

    def __init__(self, rng: random.Random, asked: dict[str, list[tuple]] | None = None):
        self.rng = rng
        self.asked = {} if asked is None else asked

    def suggest_categorical(self, name: str, choices: list) -> Any:
        self.asked.setdefault(name, []).append(("categorical", tuple(choices)))
        return self.rng.choice(choices)

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> int:
        self.asked.setdefault(name, []).append(("int", low, high, log))
        return self.rng.randint(low, high)

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        self.asked.setdefault(name, []).append(("float", low, high, log))
        return math.exp(self.rng.uniform(math.log(low), math.log(high))) if log else self.rng.uniform(low, high)


def discover(sample: Callable[[Walk], dict[str, Any]], leave_out: Collection[str] = ()) -> list[Dimension]:
    """Walk a space (``sample(trial) -> params``) DISCOVERY_WALKS times at random, leaving out
    the parameters in ``leave_out``. Each parameter's union of ranges or choices, and for each
    of its variants the condition under which it is asked: a choice's values in the walks that
    asked for it, when those are not all of that choice's values."""
    rng = random.Random(0)
    walks: list[tuple[dict[str, Any], dict[str, list[tuple]]]] = []
    for _ in range(DISCOVERY_WALKS):
        asked: dict[str, list[tuple]] = {}
        params = sample(Walk(rng, asked))
        for name in leave_out:
            params.pop(name, None)
        walks.append((params, asked))
    order = list(dict.fromkeys(name for params, _ in walks for name in params))
    # Parameters that can explain a condition: searched, with a few distinct values.
    explain = [name for name in order if any(name in asked for _, asked in walks)
               and len({repr(p.get(name)) for p, _ in walks}) <= 10]
    dims = []
    for name in order:
        variants: dict[tuple, list[int]] = {}
        for i, (_, asked) in enumerate(walks):
            for call in asked.get(name, []):
                variants.setdefault(call, []).append(i)
        if not variants:  # fixed: by the space (perhaps only under a condition) or by the user
            values = list(dict.fromkeys(params[name] for params, _ in walks if name in params if _hashable(params[name])))
            present = {i for i, (params, _) in enumerate(walks) if name in params}
            when = _condition(name, present, walks, explain)
            dims.append(Dimension(name, "fixed", value=next(p[name] for p, _ in walks if name in p), when=when)
                        if len(values) <= 1 else Dimension(name, "categorical", choices=tuple(values), when=when))
            continue
        calls = list(variants)
        if calls[0][0] == "categorical":
            dim = Dimension(name, "categorical", choices=tuple(dict.fromkeys(c for call in calls for c in call[1])))
        else:
            kind = "float" if any(c[0] == "float" for c in calls) else "int"
            dim = Dimension(name, kind, min(c[1] for c in calls), max(c[2] for c in calls),
                            log=any(c[3] for c in calls))
        conditions = [_condition(name, set(indices), walks, explain) for indices in variants.values()]
        if len(variants) == 1:
            dims.append(Dimension(dim.name, dim.kind, dim.low, dim.high, dim.log, dim.choices, when=conditions[0]))
        else:
            texts = [_text(_call_dimension(name, call)) for call in calls]
            dims.append(Dimension(dim.name, dim.kind, dim.low, dim.high, dim.log, dim.choices,
                                  variants=tuple(zip(texts, conditions))))
    return dims


def _hashable(value: Any) -> bool:
    try:
        hash(value)
        return True
    except TypeError:
        return False


def _call_dimension(name: str, call: tuple) -> Dimension:
    if call[0] == "categorical":
        return Dimension(name, "categorical", choices=call[1])
    return Dimension(name, call[0], call[1], call[2], log=call[3])


def _condition(name: str, indices: set[int], walks: list, explain: list[str]) -> str:
    """The earliest parameter whose values tell the walks at ``indices`` (those that asked
    for ``name`` this way) from the others; "" when every walk asked."""
    if len(indices) == len(walks):
        return ""
    for other in explain:
        if other == name:
            continue
        inside = {repr(walks[i][0].get(other)) for i in indices if other in walks[i][0]}
        outside = {repr(p.get(other)) for i, (p, _) in enumerate(walks) if i not in indices}
        if inside and not inside & outside:
            values = sorted({walks[i][0].get(other) for i in indices if other in walks[i][0]}, key=_order_key)
            return f"{other} in {{{', '.join(repr(v) for v in values)}}}"
    return "some choices"


def _order_key(value: Any) -> tuple:
    return (isinstance(value, str), value if isinstance(value, (int, float)) else str(value))


__all__ = ["DISCOVERY_WALKS", "Dimension", "Walk", "discover"]
