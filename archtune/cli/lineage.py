"""Where a network's weights came from, in words: one line per ``lineage_`` record (newest
first), for ``archtune info``."""

from __future__ import annotations

from typing import Any


def lineage_lines(lineage: Any, indent: str = "") -> list[str]:
    """One line per record of ``lineage`` (a list of ``{"step": ..., "from": ..., ...}``
    dicts, newest first; archtune.transfer, archtune.pretraining, archtune.shrink and the
    backbone loader write them); a distilled network's teacher's own lineage follows its
    record, indented. Records of an unknown step are shown by their step and origin."""
    lines: list[str] = []
    for record in lineage or ():
        if not isinstance(record, dict):
            continue
        lines.append(indent + _line(record))
        teacher = record.get("teacher_lineage")
        if teacher:
            lines += lineage_lines(teacher, indent + "  teacher: ")
    return lines


def _line(record: dict[str, Any]) -> str:
    step, origin = record.get("step"), record.get("from")
    if step == "init_from":
        return f"initialised from {origin}: copied {record.get('copied')} of {record.get('total')} tensors"
    if step == "pretrained":
        rows = record.get("rows")
        where = f" from {origin}" if origin else ""
        return (f"pretrained: {record.get('pretext')}, {record.get('epochs')} epochs on "
                f"{_count(rows)} rows{where}")
    if step == "backbone":
        return f"backbone {record.get('backbone')} from {origin} ({record.get('loaded')} tensors)"
    if step == "pruned":
        what = "nonzero weights" if record.get("method") == "unstructured" else "parameters"
        return (f"pruned from {origin}: {_count(record.get('params_before'))} -> "
                f"{_count(record.get('params_after'))} {what}"
                + (f" ({record['importance']} importance)" if record.get("importance") else ""))
    if step == "distilled":
        run = f" (run {record['run']})" if record.get("run") else ""
        return (f"distilled from {origin}{run} (T={_number(record.get('temperature'))}, "
                f"alpha={_number(record.get('alpha'))})")
    return f"{step}: {origin}"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


__all__ = ["lineage_lines"]
