"""The user's overrides and the `Sampler` that honours them: what a sampling function
(archtune.tune.families) asks for its parameters, define-by-run.

`Choice` (categorical values), `Range` (a numeric range, log-scaled where the space's own
parameter is unless ``log`` says otherwise) and `Fixed` (one value, any type, tuples
included); `as_override` reads the dict shorthand. The search space that runs the sampling
functions is archtune.tune.space; this module imports neither it nor the families, so that
both can import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archtune.errors import InvalidParameterError


# --------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class Choice:
    """Search these values (categorical)."""

    values: tuple

    def __init__(self, *values: Any):
        if len(values) == 1 and isinstance(values[0], (list, tuple)):
            values = tuple(values[0])
        object.__setattr__(self, "values", tuple(values))


@dataclass(frozen=True)
class Range:
    """Search a numeric range; ``log=None`` keeps the space's own scale for the parameter.
    Integer ends give integers where the space searches integers."""

    low: float
    high: float
    log: bool | None = None


@dataclass(frozen=True)
class Fixed:
    """Fix a parameter to one value (of any type: ``Fixed((256, 128))`` fixes a tuple)."""

    value: Any


Override = Choice | Range | Fixed


def as_override(name: str, value: Any) -> Override:
    """The dict shorthand as an override object, checked: a list is a Choice, a 2-tuple of
    numbers a Range, any other value Fixed."""
    if isinstance(value, (Choice, Range, Fixed)):
        override = value
    elif isinstance(value, list):
        override = Choice(*value)
    elif isinstance(value, tuple):
        if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise InvalidParameterError(
                f"search-space range for {name} must be (low, high) numbers; got {name}={value!r} "
                f"(to fix a tuple-valued parameter, use Fixed({value!r}) or --set on the command line)")
        override = Range(*value)
    else:
        override = Fixed(value)
    if isinstance(override, Choice) and not override.values:
        raise InvalidParameterError(f"search-space choices for {name} are empty; give at least one value")
    if isinstance(override, Range):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (override.low, override.high)):
            raise InvalidParameterError(f"search-space range for {name} must be (low, high) numbers; "
                                        f"got {name}=({override.low!r}, {override.high!r})")
        if not override.low < override.high:
            raise InvalidParameterError(f"search-space range for {name} is empty: low must be below high; "
                                        f"got {name}=({override.low!r}, {override.high!r})")
        if override.log and override.low <= 0:
            raise InvalidParameterError(f"search-space range for {name} is log-scaled and must be positive; "
                                        f"got {name}=({override.low!r}, {override.high!r})")
    return override


# --------------------------------------------------------------------------- the sampler


class Sampler:
    """Asks ``trial`` for parameters, honouring the user's overrides; ``params`` collects the
    estimator parameters of the trial. Parameters in ``moot`` are not asked: the sampling
    functions get a placeholder (the first choice, the low end) to branch on, the trial
    nothing."""

    def __init__(self, trial: Any, overrides: Mapping[str, Override], moot: frozenset[str] = frozenset()):
        self.trial = trial
        self.overrides = dict(overrides)
        self.moot = moot
        self.params: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        return self.params[name]

    def choice(self, name: str, values: Sequence[Any]) -> Any:
        """A categorical parameter."""
        return self._ask(name, "categorical", values=tuple(values))

    def int(self, name: str, low: int, high: int, log: bool = False) -> int:
        return self._ask(name, "int", low=low, high=high, log=log)

    def float(self, name: str, low: float, high: float, log: bool = False) -> float:
        return self._ask(name, "float", low=low, high=high, log=log)

    def fixed(self, name: str, value: Any) -> Any:
        """A parameter the space does not search here: ``value``, unless the user fixed it
        (a user's choices or range do not override the space's condition)."""
        return self._ask(name, "fixed", value=value)

    def _ask(self, name: str, kind: str, values: tuple = (), low: float = 0.0, high: float = 0.0,
             log: bool = False, value: Any = None) -> Any:
        override = self.overrides.get(name)
        if kind == "fixed" and not isinstance(override, Fixed):
            override = None
        if name in self.moot:
            return _placeholder(kind, override, values, low, value)
        if isinstance(override, Fixed):
            result = override.value
        elif isinstance(override, Choice):
            result = self.trial.suggest_categorical(name, list(override.values))
        elif isinstance(override, Range):
            integer = kind == "int" or (kind not in ("float",) and isinstance(override.low, int)
                                        and isinstance(override.high, int))
            scale = log if override.log is None else override.log
            if scale and override.low <= 0:
                raise InvalidParameterError(f"search-space range for {name} is log-scaled and must be positive; "
                                            f"got {name}=({override.low!r}, {override.high!r})")
            result = (self.trial.suggest_int(name, int(override.low), int(override.high), log=scale) if integer
                      else self.trial.suggest_float(name, float(override.low), float(override.high), log=scale))
        elif kind == "categorical":
            result = self.trial.suggest_categorical(name, list(values))
        elif kind == "int":
            result = self.trial.suggest_int(name, int(low), int(high), log=log)
        elif kind == "float":
            result = self.trial.suggest_float(name, float(low), float(high), log=log)
        else:
            result = value
        self.params[name] = result
        return result

    def rest(self) -> None:
        """The overrides the space did not ask for: fixed values, or searched extensions."""
        for name, override in self.overrides.items():
            if name in self.params or name == "max_epochs":
                continue
            if name in self.moot:
                continue
            if isinstance(override, Range):
                self._ask(name, "number")
            elif isinstance(override, Choice):
                self._ask(name, "categorical", values=override.values)
            else:
                self._ask(name, "fixed", value=override.value)


def _placeholder(kind: str, override: Override | None, values: tuple, low: float, value: Any) -> Any:
    """What a sampling function gets for a moot parameter (nothing is asked or kept)."""
    if isinstance(override, Fixed):
        return override.value
    if isinstance(override, Choice):
        return override.values[0]
    if isinstance(override, Range):
        return override.low
    return values[0] if kind == "categorical" else low if kind in ("int", "float") else value


__all__ = ["Choice", "Fixed", "Override", "Range", "Sampler", "as_override"]
