"""A search whose every trial starts from one trained network: ``init_from`` fixed in the space.

The source is read once (`archtune.transfer.read_source`) when the search starts and kept in
memory: every trial, every cross-validation fold, the refit of the best configuration, the
bag's members and the ensemble's networks start from that `Source` (`SearchSource.params`
puts it in their ``init_from``). The space samples the fine-tuning parameters (``freeze``,
``fine_tune_lr_factor``, and any the user adds) and drops the architecture's
(`SearchSpace.dropped`): the source's is used. Such fits are never stacked (archtune.population),
so the trials train one at a time.

A study is JSON: it keeps ``init_from`` as its path, or, when it was an object (a fitted
estimator, a `Source`, a pretraining result), as a description (`init_from_record`); resuming
such a study needs the object passed again.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from archtune.errors import InvalidParameterError
from archtune.transfer.freeze import FineTuning
from archtune.transfer.reading import read_source
from archtune.transfer.source import Source
from archtune.tune.space import Choice, Fixed, Range, SearchSpace

# The fine-tuning parameters (archtune.transfer.freeze.PARAMS, init_from aside).
FINE_TUNING_PARAMS = ("freeze", "freeze_epochs", "fine_tune_lr_factor", "layer_lr_decay")


def is_path(value: Any) -> bool:
    """Whether an ``init_from`` value is a path (a study can store it as it is)."""
    return isinstance(value, (str, os.PathLike))


def init_from_record(value: Any) -> dict[str, Any]:
    """The JSON form of a fixed ``init_from`` in a stored space: ``{"fixed": path}`` for a path,
    ``{"object": origin}`` for an object (where its weights came from, in words)."""
    if is_path(value):
        return {"fixed": os.fspath(value)}
    return {"object": read_source(value).origin}


@dataclass(frozen=True)
class SearchSource:
    """The network every trial of a search starts from.

    source : Source
        Read once, when the search starts.
    given : str, os.PathLike or object
        ``init_from`` as the user gave it (a path, or the object), for the returned networks'
        parameters (a saved bundle then names the path, as a fit of its own would).
    """

    source: Source
    given: Any

    def params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Estimator parameters that start from the source held in memory."""
        return {**params, "init_from": self.source}

    def record(self) -> dict[str, Any]:
        """What the study stores about the source (user attribute "init_from"): the path (None
        for an object), its origin and architecture family (the leaderboard's label)."""
        return {"path": os.fspath(self.given) if is_path(self.given) else None, "origin": self.source.origin,
                "arch": self.source.model_config.arch, "task": self.source.task}


@contextmanager
def columns_warned_once() -> Iterator[None]:
    """A context in which the warnings of X's columns matched to the source's (a column filled
    as missing, one ignored) are not repeated: the search shows them once, before the first
    trial, and every trial's fit would say the same again."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"X (has|lacks) \d+ column\(s\) that init_from's network",
                                category=UserWarning)
        yield


def search_source(space: SearchSpace) -> SearchSource | None:
    """The `SearchSource` of a space that fixes ``init_from`` (read now), else None.

    Raises
    ------
    InvalidParameterError, BundleError
        As `archtune.transfer.read_source`: an unfitted estimator, a value of another type, a
        path that is not a network bundle.
    """
    if not space.from_source:
        return None
    given = space.overrides["init_from"].value
    return SearchSource(read_source(given), given)


def check_transfer_space(space: SearchSpace) -> None:
    """Refuse, before any data is read, fine-tuning values no trial could train with: a searched
    or fixed ``freeze`` (or another fine-tuning parameter) without a fixed ``init_from``, and
    choices or ranges outside what `FineTuning` accepts.

    Raises
    ------
    InvalidParameterError
        Naming the parameter and the value.
    """
    given = {name: o for name, o in space.overrides.items() if name in FINE_TUNING_PARAMS}
    freeze = given.get("freeze")
    if freeze is not None and not space.from_source and not (isinstance(freeze, Fixed) and freeze.value is None):
        raise InvalidParameterError(
            f"the space sets freeze ({freeze!r}) but does not fix init_from: fix it to the network every trial "
            "starts from, e.g. space={'init_from': 'runs/source', 'freeze': ['body', None]}")
    defaults = FineTuning()
    for name, override in given.items():
        if isinstance(override, Choice):
            values = override.values
        elif isinstance(override, Range):
            values = (override.low, override.high)
        else:
            values = (override.value,)
        for value in values:
            try:
                dataclasses.replace(defaults, **{name: value})
            except InvalidParameterError as exc:
                raise InvalidParameterError(f"search space: {exc}") from None


def dropped_note(space: SearchSpace, origin: str = "") -> str:
    """One line: the architecture dimensions a space with a fixed ``init_from`` does not search,
    and why ("" when it drops none)."""
    dropped = space.dropped
    if not dropped:
        return ""
    return (f"init_from is fixed: every trial uses its network's architecture{f' ({origin})' if origin else ''}; "
            f"not searched: {', '.join(dropped)}")


def warn_dropped(space: SearchSpace, source: SearchSource) -> None:
    """Warn (one line, `dropped_note`) when the user's own overrides name architecture
    parameters: what they asked for cannot apply. Dropping the default space's architecture
    dimensions is what a fixed ``init_from`` means, and is not warned of."""
    if set(space.dropped) & set(space.overrides):
        warnings.warn(dropped_note(space, source.source.origin), UserWarning, stacklevel=5)


def stored_object_error(record: Mapping[str, Any], where: str) -> InvalidParameterError:
    """The error for a stored study whose ``init_from`` was an object, resumed without it."""
    return InvalidParameterError(
        f"{where} was searched from an init_from object ({record['object']}), which a study cannot store: pass "
        "it again, space={'init_from': <the same network>, ...} with the same other overrides (or fix "
        "init_from to a bundle path, which the study keeps)")


__all__ = ["FINE_TUNING_PARAMS", "SearchSource", "check_transfer_space", "columns_warned_once", "dropped_note", "init_from_record", "is_path",
           "search_source", "stored_object_error", "warn_dropped"]
