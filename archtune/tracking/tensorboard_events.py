"""TensorBoard event files as a tracking backend: a subdirectory per trial with its curves
(one scalar per history column, step = epoch), and ``search/`` with each trial's value by
trial number and the baselines' scores.

TensorBoard has no run status: how a trial or the search ended is the text summary
``end_state`` of its event file (complete, budget, pruned, diverged, failed, interrupted;
archtune.tracking.records), with ``end_reason`` when there is one.

Written with tensorboardX (``pip install 'archtune[tensorboard]'``, a pure-Python writer of
the event format), or with ``torch.utils.tensorboard`` where the tensorboard package is
installed instead; both give the same files, which ``tensorboard --logdir DIR`` shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archtune.tracking.records import EndState, TrialRecord, epoch_metrics

TENSORBOARD_EXTRA = "pip install 'archtune[tensorboard]'"


def summary_writer_class() -> Any:
    """tensorboardX's SummaryWriter, else torch's; ImportError naming the extra when neither
    can be imported."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("writing TensorBoard event files needs the optional package tensorboardX (or "
                              f"tensorboard): {TENSORBOARD_EXTRA}") from None
    return SummaryWriter


def write_end_state(writer: Any, end: EndState, step: int = 0) -> None:
    """How a run ended, in its event file (TensorBoard has no run status): the text summary
    ``end_state`` (complete, budget, pruned, diverged, failed or interrupted) and, with a
    reason, ``end_reason``."""
    writer.add_text("end_state", end.state, step)
    if end.reason:
        writer.add_text("end_reason", end.reason, step)


def trial_folder(number: int) -> str:
    """The subdirectory of trial ``number``: ``trial_0007`` (sorted as numbers are)."""
    return f"trial_{number:04d}"


class TensorBoardSearchLog:
    """A search as TensorBoard event files under ``logdir``.

    Parameters
    ----------
    logdir : str or path
        Created when missing; each trial writes ``logdir/trial_NNNN``, the search ``logdir/search``.
    """

    def __init__(self, logdir: str | Path):
        self.logdir = Path(logdir)
        self.target = f"TensorBoard files in {self.logdir}"
        self.writer_class = summary_writer_class()
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.search = self.writer_class(str(self.logdir / "search"))

    def start(self, name: str, params: dict[str, Any], tags: dict[str, Any]) -> None:
        self.search.add_text("settings", _table({**tags, **params}), 0)

    def trial(self, record: TrialRecord) -> None:
        writer = self.writer_class(str(self.logdir / trial_folder(record.number)))
        end = record.end_state
        try:
            metrics = epoch_metrics(record.history)
            for key, value, step in metrics:
                writer.add_scalar(key, value, step)
            writer.add_text("params", _table({k: record.params.get(k) for k in record.searched} or record.params), 0)
            writer.add_text("outcome", f"{record.name}: {end.state}"
                            + (f", value {record.value:.6g}" if record.value is not None else ""), 0)
            write_end_state(writer, end, max((step for _, _, step in metrics), default=0))
        finally:
            writer.close()
        if record.value is not None:
            self.search.add_scalar("trial_value", record.value, record.number)

    def baselines(self, baselines: list[dict[str, Any]]) -> None:
        scored = {b["name"]: b["score"] for b in baselines if b.get("error") is None and b.get("score") is not None}
        if scored:
            self.search.add_text("baselines", _table(scored), 0)

    def end(self, metrics: dict[str, float], tags: dict[str, Any], files: dict[str, bytes], end: EndState) -> None:
        for key, value in metrics.items():
            self.search.add_scalar(key, value, 0)
        self.search.add_text("outcome", _table({**tags, "status": end.state,
                                                **({"reason": end.reason} if end.reason else {})}), 0)
        write_end_state(self.search, end, 0)
        self.search.close()


def _table(values: dict[str, Any]) -> str:
    """A markdown table (TensorBoard's text tab renders it)."""
    return "| name | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in values.items())


__all__ = ["TENSORBOARD_EXTRA", "TensorBoardSearchLog", "summary_writer_class", "trial_folder", "write_end_state"]
