"""A live one-line view of a search: trials done / pruned / failed, best score, time left."""

from __future__ import annotations

import time
from typing import Any

from archtune.tune.objectives import best_by_score


class SearchProgress:
    """Context manager; ``update(search)`` after each trial. Silent unless ``enabled``. A live
    bar on a terminal; piped or redirected, a plain line at most every `PLAIN_INTERVAL`
    seconds (a bar drawn into a file is cut to the console's guessed width)."""

    PLAIN_INTERVAL = 10.0

    def __init__(self, trials: int | None, seconds: float | None, enabled: bool = True, self_stopping: bool = False):
        self.trials = trials
        self.seconds = seconds
        self.enabled = enabled
        # budget="auto": ``seconds`` is a cap the search may stop well before.
        self.self_stopping = self_stopping
        self._progress: Any = None
        self._task: Any = None
        self._started = time.monotonic()
        self._plain: Any = None
        self._last_line = 0.0
        self._status = ""

    def __enter__(self) -> "SearchProgress":
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        console = Console(stderr=True)
        self._started = time.monotonic()
        if not console.is_terminal:
            self._plain = console.file
            return self
        self._progress = Progress(TextColumn("search"), BarColumn(), TextColumn("{task.fields[status]}"),
                                  console=console)
        total = self.trials if self.trials is not None else self.seconds
        self._task = self._progress.add_task("search", total=total, status="starting")
        self._progress.start()
        self._started = time.monotonic()
        return self

    def update(self, search: Any) -> None:
        if self._progress is None and self._plain is None:
            return
        c = search.counts()
        finished = c["complete"] + c["pruned"]
        try:
            # The best score (the first objective when there are several).
            best = f"{best_by_score(search.study).values[0]:.4f}"
        except ValueError:
            best = "-"
        elapsed = time.monotonic() - self._started
        if self.trials is not None:
            done = finished
            rate = elapsed / max(1, finished)
            left = max(0.0, (self.trials - finished) * rate)
        else:
            done = min(elapsed, self.seconds or 0)
            left = max(0.0, (self.seconds or 0) - elapsed)
        running = f", {c['running']} training" if c["running"] else ""
        left_text = f"at most {_clock(left)} left (auto)" if self.self_stopping else f"~{_clock(left)} left"
        status = (f"{c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed{running} | best {best} | "
                  f"{left_text}")
        self._status = status
        if self._plain is not None:
            now = time.monotonic()
            if now - self._last_line >= self.PLAIN_INTERVAL:
                self._last_line = now
                self._plain.write(f"search: {status}\n")
                self._plain.flush()
            return
        self._progress.update(self._task, completed=done, status=status)

    def __exit__(self, *exc: Any) -> None:
        if self._plain is not None and self._status:
            self._plain.write(f"search: {self._status.rsplit(' | ', 1)[0]} | done\n")
            self._plain.flush()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
