"""The report page: one self-contained HTML file.

No JavaScript and nothing fetched: styles are inline, every chart is a PNG in a ``data:`` URI
with its numbers in a table collapsed under it (``<details>``, which opens without a script), so
the page opens anywhere, offline, with scripts off. It reads as pictures first: the verdict
section opens with the key numbers (`key_numbers`) and a chart, and long tables wait behind a
``<details>``. Structure (stable, for people and for tests)::

    <main>
      <section id="SECTION"><h2>...</h2> text, tables, <img src="data:image/png;base64,...">,
        <details><summary>...</summary> a table </details>
        <script type="application/json" id="data-SECTION">{the section's data}</script>
      </section> ...
    </main>

The ``application/json`` blocks are data, never executed; `section_data` reads them back.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:1rem 1.5rem}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:0 0 .6rem}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:.9rem 1.2rem;margin:.8rem 0}
.wide{overflow-x:auto}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
details{margin:.4rem 0}summary{cursor:pointer;color:#175cd3;font-size:.9rem}
.keys{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.7rem;margin:.2rem 0 .6rem}
.key{border:1px solid #dde1e7;border-radius:6px;padding:.45rem .8rem}
.lead{display:flex;flex-wrap:wrap;gap:0 1.2rem;align-items:flex-start}.lead>*{flex:1 1 20rem}
.lead>img{flex:0 1 auto;min-width:0}
.key .label{color:#6b7280;font-size:.8rem}.key .value{font-size:1.45rem;font-weight:600}
.key .detail{color:#6b7280;font-size:.8rem}
th,td{border-bottom:1px solid #e6e8ec;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:.5rem 0}
.note{color:#6b7280;font-size:.85rem}.verdict{font-size:1.05rem}
.error{color:#b42318}.warning{color:#b54708}.info{color:#175cd3}
nav a{margin-right:.7rem;font-size:.85rem;color:#175cd3}
"""

_SECTION = re.compile(r'<section id="([a-z0-9-]+)"')
_DATA = re.compile(r'<script type="application/json" id="data-([a-z0-9-]+)">(.*?)</script>', re.S)


@dataclass
class Section:
    """One part of the page: ``id`` (stable, lowercase with dashes), a ``title``, HTML
    fragments (``body``, already escaped: build them with `paragraph`, `table`, `image`) and
    the JSON-able ``data`` behind its charts (embedded as ``data-<id>``; None for none)."""

    id: str
    title: str
    body: list[str] = field(default_factory=list)
    data: Any = None


def paragraph(text: str, css: str = "") -> str:
    """A paragraph of plain ``text`` (escaped)."""
    return f'<p{f" class={chr(34)}{css}{chr(34)}" if css else ""}>{html.escape(text)}</p>'


def table(columns: list[str], rows: list[list[Any]]) -> str:
    """A table of plain values (escaped); numbers right-aligned, floats with 4 significant
    digits (whole ones from 10,000 up as integers), None as an empty cell."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    # A table wider than its section scrolls inside it instead of running past its border.
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def details(summary: str, *fragments: str) -> str:
    """HTML ``fragments`` collapsed under a line of plain ``summary`` text: closed until the
    reader opens it (by the browser itself: no script)."""
    return f"<details><summary>{html.escape(summary)}</summary>{''.join(fragments)}</details>"


def side_by_side(*fragments: str) -> str:
    """HTML ``fragments`` in a row (text beside a chart), wrapping onto lines on a narrow screen."""
    return f'<div class="lead">{"".join(fragments)}</div>'


def key_numbers(items: list[dict[str, Any]]) -> str:
    """The numbers a reader wants first, each as a box: ``{"label", "value", "detail"}`` (plain
    text; a float value is written with 4 significant digits, ``detail`` may be None)."""
    boxes = []
    for item in items:
        value = item["value"]
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        detail = f'<div class="detail">{html.escape(item["detail"])}</div>' if item.get("detail") else ""
        boxes.append(f'<div class="key"><div class="label">{html.escape(item["label"])}</div>'
                     f'<div class="value">{html.escape(text)}</div>{detail}</div>')
    return f'<div class="keys">{"".join(boxes)}</div>'


def image(png: bytes, alt: str) -> str:
    """A PNG embedded as a base64 ``data:`` URI."""
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def json_block(section_id: str, data: Any) -> str:
    """``data`` as a non-executed JSON block. ``<``, ``>`` and ``&`` are written as \\u
    escapes, so no string in the data can end the block or open a tag; the JSON is unchanged."""
    text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="data-{section_id}">{text}</script>'


def render(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page: a title, links to the sections, then each section in order.

    Raises
    ------
    ValueError
        A section id is repeated or is not lowercase letters, digits and dashes.
    """
    ids = [s.id for s in sections]
    for sid in ids:
        if not re.fullmatch(r"[a-z0-9-]+", sid):
            raise ValueError(f"section id {sid!r}: use lowercase letters, digits and dashes")
    if len(set(ids)) != len(ids):
        raise ValueError(f"section ids repeat: {ids}")
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    parts = [f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>' + "".join(s.body)
             + (json_block(s.id, s.data) if s.data is not None else "") + "</section>" for s in sections]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body><main>"
            f"<h1>{html.escape(title)}</h1>{paragraph(subtitle, 'note')}<nav>{nav}</nav>\n"
            + "\n".join(parts) + "\n</main></body></html>\n")


def section_ids(page: str) -> list[str]:
    """The ids of the page's sections, in order."""
    return _SECTION.findall(page)


def section_data(page: str) -> dict[str, Any]:
    """Section id -> the data embedded in its ``data-<id>`` JSON block."""
    return {sid: json.loads(text) for sid, text in _DATA.findall(page)}


def _cell(value: Any) -> str:
    if value is None:
        return "<td></td>"
    if isinstance(value, bool):
        return f"<td>{value}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1e4:
        return f'<td class="num">{int(value):,}</td>'  # a count read from a CSV column with gaps
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    return f"<td>{html.escape(str(value))}</td>"


__all__ = ["Section", "details", "image", "json_block", "key_numbers", "paragraph", "render", "section_data",
           "section_ids", "side_by_side", "table"]
