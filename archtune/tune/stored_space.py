"""The search space a stored study was run with, kept in the study (JSON), so that a
continued or resumed search reuses it, or says exactly what changed.

A record holds what defines a `SearchSpace`: its body, encoders, fidelity (``max_epochs``) and
the user's overrides (`Choice`, `Range`, `Fixed`), values in the bundles' JSON form. A fixed
``init_from`` is kept as its path, or for an object as ``{"object": origin}``
(archtune.tune.transfer): such a space cannot be rebuilt from its record alone.
"""

from __future__ import annotations

from typing import Any

from archtune.tune.space import Choice, Fixed, Range, SearchSpace
from archtune.tune.transfer import init_from_record, stored_object_error


def space_record(space: SearchSpace) -> dict[str, Any]:
    """The JSON record of ``space``."""
    from archtune.bundles.format import params_to_json

    overrides: dict[str, Any] = {}
    for name, override in sorted(space.overrides.items()):
        if isinstance(override, Choice):
            overrides[name] = {"choice": params_to_json({"v": list(override.values)})["v"]}
        elif isinstance(override, Range):
            overrides[name] = {"range": [override.low, override.high], "log": override.log}
        elif name == "init_from" and override.value is not None:
            overrides[name] = init_from_record(override.value)
        else:
            overrides[name] = {"fixed": params_to_json({"v": override.value})["v"]}
    return {"body": space.body, "encoders": list(space.encoders), "max_epochs": space.max_epochs,
            "overrides": overrides}


def space_from_record(record: dict[str, Any], where: str = "the stored study") -> SearchSpace:
    """The `SearchSpace` a record describes.

    Raises
    ------
    InvalidParameterError
        The record's ``init_from`` was an object (``where`` names the study in the message).
    """
    from archtune.bundles.format import params_from_json

    overrides: dict[str, Any] = {}
    for name, item in record["overrides"].items():
        if "object" in item:
            raise stored_object_error(item, where)
        if "choice" in item:
            overrides[name] = Choice(*params_from_json({"v": item["choice"]})["v"])
        elif "range" in item:
            overrides[name] = Range(item["range"][0], item["range"][1], item.get("log"))
        else:
            overrides[name] = Fixed(params_from_json({"v": item["fixed"]})["v"])
    return SearchSpace(record["body"], record["encoders"], overrides, record["max_epochs"])


def space_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What changed between two records, one phrase each ("units: 32..256 -> 16..64")."""
    out = []
    for key in ("body", "encoders", "max_epochs"):
        if stored.get(key) != current.get(key):
            out.append(f"{key}: {stored.get(key)!r} -> {current.get(key)!r}")
    before, after = stored.get("overrides", {}), current.get("overrides", {})
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            out.append(f"{name}: {_show(before.get(name))} -> {_show(after.get(name))}")
    return out


def _show(item: dict[str, Any] | None) -> str:
    if item is None:
        return "the default"
    if "choice" in item:
        return "{" + ", ".join(map(repr, item["choice"])) + "}"
    if "range" in item:
        return f"{item['range'][0]}..{item['range'][1]}" + (" (log)" if item.get("log") else "")
    if "object" in item:
        return f"an object ({item['object']})"
    return f"fixed {item['fixed']!r}"


__all__ = ["space_differences", "space_from_record", "space_record"]
