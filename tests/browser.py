"""Open a local HTML file in headless Chromium and report what a test needs to check about it.

Not a test module: tests import it (``from tests.browser import open_page, require_chromium``).
The page is driven through the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (JSON
messages ending in a NUL byte on file descriptors 3 and 4), so no websocket package and no TCP
port are needed, and everything comes from the browser itself:

- console errors: ``Runtime.consoleAPICalled`` of type error or assert, uncaught exceptions
  (``Runtime.exceptionThrown``) and the browser's own error-level log entries (``Log.entryAdded``:
  failed loads, blocked content, security errors);
- requests: ``Network.requestWillBeSent`` and ``Network.webSocketCreated`` of the page and of every
  frame or worker it starts (auto-attached before they run), minus the file itself and the
  in-memory ``data:`` and ``blob:`` URLs;
- the DOM: ``document.documentElement.outerHTML`` once the page has loaded and gone quiet;
- measurements: JavaScript expressions the test gives (``measure``), evaluated by the browser in the
  loaded page (``Runtime.evaluate``: where an element was laid out, what its text is), so a page
  without scripts of its own can still be measured;
- the screenshot: ``Page.captureScreenshot`` of a ``width`` x ``height`` viewport.

Chromium is found on PATH (``apt-get install chromium``; scripts/test installs it as root).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")  # the names scripts/test checks

# Flags that keep Chromium's own traffic (updates, sync, field trials, hints) out of the page's
# requests, and let it run as root in a container without a GPU or a display.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--disable-gpu",
    "--no-sandbox",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--disable-features=OptimizationHints,MediaRouter,Translate",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)

# A screenshot is "not blank" when more than this share of its pixels differ from its most
# common colour: 0.1% of a 1280x2000 viewport is ~2,600 pixels, a few words of text.
MIN_INK_SHARE = 0.001
# After the load event, the page counts as settled once no request is in flight and no protocol
# event has arrived for this long (late images, fonts, scripts that fetch after load).
QUIET_SECONDS = 0.5


@dataclass
class PageResult:
    """What the browser saw: see the module docstring for how each field is captured."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    dom: str = ""
    measured: dict[str, object] = field(default_factory=dict)  # name -> the value of its expression
    ink_share: float = 0.0  # share of screenshot pixels that differ from the dominant colour
    not_blank: bool = False


def find_chromium() -> str | None:
    """Path of a Chromium or Chrome binary on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    """The Chromium binary; skips the calling test (with the way to install it) when there is none."""
    import pytest

    path = find_chromium()
    if path is None:
        pytest.skip("headless Chromium is not installed: `apt-get install chromium` (scripts/test does it as root)")
    return path


class BrowserError(RuntimeError):
    """Chromium did not start, answer, or load the page in time."""


class _Pipe:
    """A DevTools Protocol connection over Chromium's --remote-debugging-pipe."""

    def __init__(self, binary: str, user_data_dir: str, timeout: float):
        self.deadline = time.monotonic() + timeout
        # Chromium reads commands on fd 3 and writes answers on fd 4. The pipe ends are first
        # moved to fds >= 10 so that bash's redirections onto 3 and 4 cannot clobber them.
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        script = f'exec "$@" 3<&{child_r} 4>&{child_w} {child_r}<&- {child_w}>&-'
        args = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"]
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["bash", "-c", script, "bash", *args],
            pass_fds=(child_r, child_w),
            stdin=subprocess.DEVNULL,
            stdout=self.stderr,
            stderr=self.stderr,
            start_new_session=True,
        )
        os.close(child_r)
        os.close(child_w)
        self.writer = os.fdopen(to_chrome_w, "wb", buffering=0)
        self.reader = os.fdopen(from_chrome_r, "rb", buffering=0)
        self.next_id = 0
        self.answers: dict[int, dict] = {}
        self.answered = threading.Condition()
        self.events: queue.Queue[dict] = queue.Queue()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = self.reader.read(65536)
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self.answered:
                        self.answers[message["id"]] = message
                        self.answered.notify_all()
                else:
                    self.events.put(message)
        self.events.put({"method": "_closed"})
        with self.answered:
            self.answered.notify_all()

    def post(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        """Send a command without waiting for its answer; returns its id."""
        with self.lock:
            self.next_id += 1
            message: dict = {"id": self.next_id, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = session
            self.writer.write(json.dumps(message).encode() + b"\0")
            return self.next_id

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send a command and wait for its result; raises BrowserError on an error or timeout."""
        ident = self.post(method, params, session)
        with self.answered:
            while ident not in self.answers:
                left = self.deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    raise BrowserError(f"no answer to {method} from Chromium{self.stderr_tail()}")
                self.answered.wait(min(left, 1.0))
            answer = self.answers.pop(ident)
        if "error" in answer:
            raise BrowserError(f"{method} failed: {answer['error']}")
        return answer.get("result", {})

    def event(self, wait: float) -> dict | None:
        """The next protocol event, or None when none arrives within `wait` seconds."""
        try:
            return self.events.get(timeout=max(0.0, min(wait, self.deadline - time.monotonic())))
        except queue.Empty:
            return None

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        tail = self.stderr.read()[-2000:].decode(errors="replace").strip()
        return f"; its output ends:\n{tail}" if tail else ""

    def close(self) -> None:
        try:
            if self.proc.poll() is None and self.thread.is_alive():
                self.post("Browser.close")
                self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)  # its own session: the renderer and GPU helpers go too
            self.proc.wait()
        for stream in (self.writer, self.reader, self.stderr):
            try:
                stream.close()
            except OSError:
                pass


def _message_text(args: list[dict]) -> str:
    parts = []
    for arg in args:
        if "value" in arg:
            parts.append(str(arg["value"]))
        else:
            parts.append(arg.get("description") or arg.get("type", ""))
    return " ".join(parts)


def _exception_text(details: dict) -> str:
    exception = details.get("exception") or {}
    text = exception.get("description") or details.get("text") or "uncaught exception"
    return text if text.startswith("Uncaught") else f"Uncaught {text}"


def ink_share(png: Path) -> float:
    """Share of the image's pixels that differ from its most common colour."""
    # Pillow comes with matplotlib, which the test extras install.
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=rgb.width * rgb.height)
    total = sum(count for count, _ in colours)
    return 1.0 - max(count for count, _ in colours) / total


def open_page(path: Path, out_dir: Path, width: int = 1280, height: int = 2000, timeout: float = 60.0,
              measure: dict[str, str] | None = None) -> PageResult:
    """Load `path` in headless Chromium and collect its console errors, requests, DOM and screenshot.

    The screenshot is written to `out_dir`/<stem>.png. `measure` maps names to JavaScript
    expressions evaluated in the loaded page; their JSON values land in `PageResult.measured`
    (an expression that throws is a BrowserError). Raises BrowserError when Chromium is missing,
    fails to start, or the page does not load within `timeout` seconds.
    """
    binary = find_chromium()
    if binary is None:
        raise BrowserError("no Chromium on PATH (apt-get install chromium)")
    path = Path(path).resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = PageResult(url=path.as_uri())
    with tempfile.TemporaryDirectory(prefix="archtune-chromium-") as profile:
        pipe = _Pipe(binary, profile, timeout)
        try:
            png = _drive(pipe, result, width, height, measure or {})
        finally:
            pipe.close()
    result.screenshot = out_dir / f"{path.stem}.png"
    result.screenshot.write_bytes(png)
    result.ink_share = ink_share(result.screenshot)
    result.not_blank = result.ink_share > MIN_INK_SHARE
    return result


def _drive(pipe: _Pipe, result: PageResult, width: int, height: int, measure: dict[str, str]) -> bytes:
    """Load the page, fill in its console errors, requests, DOM and measurements; returns the
    screenshot PNG."""
    target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for method in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable"):
        pipe.call(method, session=session)
    pipe.call("Emulation.setDeviceMetricsOverride",
              {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
    # Frames in other processes and workers get their own sessions; they are held at their
    # start until their requests and console are watched too.
    pipe.call("Target.setAutoAttach",
              {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}, session)

    navigation = pipe.call("Page.navigate", {"url": result.url}, session)
    if navigation.get("errorText"):
        raise BrowserError(f"Chromium could not open {result.url}: {navigation['errorText']}")

    in_flight: set[str] = set()
    loaded = False
    last_event = time.monotonic()
    while True:
        message = pipe.event(QUIET_SECONDS)
        now = time.monotonic()
        if message is None:
            if loaded and not in_flight and now - last_event >= QUIET_SECONDS:
                break
            if now >= pipe.deadline:
                state = "still loading" if not loaded else f"{len(in_flight)} requests in flight"
                raise BrowserError(f"{result.url} did not settle in time ({state}){pipe.stderr_tail()}")
            continue
        last_event = now
        method, params = message.get("method"), message.get("params", {})
        if method == "_closed":
            raise BrowserError(f"Chromium exited while loading {result.url}{pipe.stderr_tail()}")
        if method == "Page.loadEventFired" and message.get("sessionId") == session:
            loaded = True
        elif method == "Target.attachedToTarget":
            child = params["sessionId"]
            for child_method in ("Runtime.enable", "Log.enable", "Network.enable"):
                pipe.post(child_method, session=child)
            pipe.post("Target.setAutoAttach",
                      {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}, child)
            pipe.post("Runtime.runIfWaitingForDebugger", session=child)
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            result.console_errors.append(_message_text(params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            result.console_errors.append(_exception_text(params.get("exceptionDetails", {})))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            where = f" ({entry['url']})" if entry.get("url") else ""
            result.console_errors.append(f"{entry.get('source', 'log')}: {entry.get('text', '')}{where}")
        elif method == "Network.requestWillBeSent":
            in_flight.add(params["requestId"])
            _add_request(result, params["request"]["url"])
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            in_flight.discard(params["requestId"])
        elif method == "Network.webSocketCreated":
            _add_request(result, params["url"])

    dom = pipe.call("Runtime.evaluate",
                    {"expression": "document.documentElement.outerHTML", "returnByValue": True}, session)
    result.dom = dom["result"].get("value", "")
    for name, expression in measure.items():
        found = pipe.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        if "exceptionDetails" in found:
            raise BrowserError(f"measuring {name!r} failed: {_exception_text(found['exceptionDetails'])}")
        result.measured[name] = found["result"].get("value")
    shot = pipe.call("Page.captureScreenshot", {"format": "png"}, session)
    return base64.b64decode(shot["data"])


def _add_request(result: PageResult, url: str) -> None:
    # data: and blob: URLs are in-memory content of the page itself, not requests for anything.
    if url.startswith(("data:", "blob:")) or url.split("#")[0] == result.url:
        return
    if url not in result.requests:
        result.requests.append(url)
