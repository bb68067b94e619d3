"""The headless-Chromium harness (tests/browser.py) on tiny pages whose right answers are known.

Each page is written to tmp_path so that the harness can be seen to catch what the report tests
rely on it to catch: console errors, uncaught exceptions, any request (even one that fails or
happens after the load event or in a worker), a screenshot that really shows the page, and a
blank one. Each test skips with the way to install Chromium when it is missing.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
from PIL import Image

from tests.browser import BrowserError, open_page, require_chromium


def _page(tmp_path: Path, body: str, name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(f"<!doctype html>\n<html><head><meta charset='utf-8'></head><body>{body}</body></html>\n")
    return path


def test_static_page_loads_clean_and_is_drawn(tmp_path):
    require_chromium()
    page = _page(tmp_path, '<div id="swatch" style="width:400px;height:300px;background:#c03"></div>',
                 "static.html")
    result = open_page(page, tmp_path / "shots")
    assert result.console_errors == []
    assert result.requests == []
    assert 'id="swatch"' in result.dom
    assert result.screenshot == tmp_path / "shots" / "static.png"
    with Image.open(result.screenshot) as shot:
        assert shot.size == (1280, 2000)
        # The div's colour is really painted at its place (not just "some pixels differ").
        assert shot.convert("RGB").getpixel((200, 150)) == (0xCC, 0x00, 0x33)
    # The div covers 400*300 of 1280*2000 pixels; the rest is the white page.
    assert result.ink_share == pytest.approx(400 * 300 / (1280 * 2000), abs=0.002)
    assert result.not_blank


def test_measurements_are_the_layout_the_browser_made(tmp_path):
    require_chromium()
    # Known geometry: body margin 0, a 100 px spacer, then a 300 x 50 box; a 1300 x 900 viewport.
    page = _page(tmp_path, '<div style="height:100px"></div><div id="box" style="width:300px;height:50px">'
                           'held-out 0.83</div><details><summary>more</summary><p id="hidden">x</p></details>'
                           '<style>body{margin:0}</style>')
    result = open_page(page, tmp_path, width=1300, height=900, measure={
        "box": "(r => [r.left, r.top, r.width, r.height])(document.getElementById('box').getBoundingClientRect())",
        "text": "document.getElementById('box').textContent",
        # A closed <details> still lays its content out (Chromium hides it by content-visibility):
        # checkVisibility, not the box, says whether a reader sees it.
        "seen": "[document.getElementById('box').checkVisibility(), document.getElementById('hidden').checkVisibility()]",
        "viewport": "[innerWidth, innerHeight]"})
    assert result.measured == {"box": [0, 100, 300, 50], "text": "held-out 0.83", "seen": [True, False],
                               "viewport": [1300, 900]}
    with pytest.raises(BrowserError, match="measuring 'broken' failed"):
        open_page(page, tmp_path, measure={"broken": "document.getElementById('nowhere').textContent"})


def test_console_errors_and_uncaught_exceptions_are_caught(tmp_path):
    require_chromium()
    page = _page(tmp_path, "<p>text</p><script>console.log('fine'); console.warn('careful');"
                           " console.error('boom'); notDefinedAnywhere();</script>")
    result = open_page(page, tmp_path)
    assert "boom" in result.console_errors
    assert any(e.startswith("Uncaught ReferenceError") and "notDefinedAnywhere" in e for e in result.console_errors)
    # Messages below error level are not errors: only the two above are reported.
    assert len(result.console_errors) == 2, result.console_errors


def test_dom_is_serialised_after_scripts_run(tmp_path):
    require_chromium()
    page = _page(tmp_path, "<script>document.body.insertAdjacentHTML('beforeend',"
                           " '<section id=\"made-by-script\">drawn</section>')</script>")
    result = open_page(page, tmp_path)
    # The source only has the script's text, with escaped quotes; the live DOM has the element.
    assert '<section id="made-by-script">drawn</section>' in result.dom
    assert result.console_errors == []


def test_a_failed_request_is_still_a_request(tmp_path):
    require_chromium()
    # Nothing listens on port 9 (and Chromium refuses it outright): the page still asked for it.
    page = _page(tmp_path, '<img src="http://127.0.0.1:9/x.png" alt="">')
    result = open_page(page, tmp_path)
    assert result.requests == ["http://127.0.0.1:9/x.png"]


def test_requests_from_frames_workers_and_after_load(tmp_path):
    require_chromium()
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page = _page(tmp_path, f"""
            <iframe srcdoc="<img src='{base}/frame.png'>"></iframe>
            <script>
            new Worker(URL.createObjectURL(new Blob(["fetch('{base}/worker')"])));
            addEventListener('load', () => setTimeout(() => fetch('{base}/late'), 300));
            </script>""")
        result = open_page(page, tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    expected = {f"{base}/frame.png", f"{base}/worker", f"{base}/late"}
    # The server saw all three, so they were real requests, and the harness listed each of them
    # (the worker's blob: URL is the page's own memory, not a request).
    assert {base + path for path in hits} == expected
    assert set(result.requests) == expected


def test_blank_page_is_blank(tmp_path):
    require_chromium()
    result = open_page(_page(tmp_path, "", "blank.html"), tmp_path)
    assert result.ink_share == 0.0
    assert not result.not_blank
    assert result.console_errors == [] and result.requests == []


def test_missing_file_raises(tmp_path):
    require_chromium()
    with pytest.raises(BrowserError, match="could not open"):
        open_page(tmp_path / "nowhere.html", tmp_path)
