"""What experiment tracking records of a trained network, whatever the backend: one trial's
record (`TrialRecord`), its per-epoch metrics, read from the training history, and how a fit,
a trial or a search ended (`EndState`).

The metric names are the history's columns (train_loss, val_loss, val_<metric>, lr) plus
``epoch_seconds``; the step of each is its epoch (1 = the first), as MLflow and TensorBoard
expect a step to be.

End states, and the MLflow run status each gives (`RUN_STATUS`; TensorBoard, which has no run
status, gets the state as the text summary ``end_state`` of the run's event file, and its
reason as ``end_reason``):

============  =========  =======================================================================
end state     MLflow     when
============  =========  =======================================================================
complete      FINISHED   training (or the search) ran to its end: max_epochs, early stopping, its
                         trial budget
budget        FINISHED   the time budget stopped it (a trial cut short, a search with a time
                         budget); tag ``archtune.stopped_by_budget = true``
pruned        KILLED     the pruner stopped it (a search's trial; ``optuna.TrialPruned`` raised in
                         a fit's callback)
diverged      FAILED     `TrainingDivergedError` (a search: every trial it saw diverged)
failed        FAILED     any other error
interrupted   KILLED     stopped from outside: KeyboardInterrupt (Ctrl-C), SystemExit
============  =========  =======================================================================

MLflow gets the state as the tag ``archtune.end_state`` and the reason (the error) as
``archtune.end_reason``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from archtune.errors import TrainingDivergedError

# History columns that are not curves to plot: the epoch is the step, and the spread of the
# validation outputs is the dead-network check's input (archtune.tune.epochs.EpochReporter).
NOT_METRICS = ("epoch", "val_output_std")
RENAMED = {"seconds": "epoch_seconds"}
# MLflow's limits per call (and on old servers, per parameter value).
MAX_PARAM_CHARS = 500


@dataclass
class TrialRecord:
    """One finished trial of a search, as the trackers log it.

    Attributes
    ----------
    number : int
        The Optuna trial number.
    name : str
        The network's name on the leaderboard, e.g. ``"network #3 (mlp)"``.
    state : {"complete", "pruned", "failed"}
    value : float or None
        The trial's validation score (higher is better); None unless complete.
    params : dict
        The estimator parameters the trial trained with (its ``config``).
    searched : list of str
        The names among ``params`` that the sampler chose (the leaderboard's ``params``).
    attrs : dict
        The trial's other results: best_epoch, epochs_run, n_params, fit_seconds,
        pruned_at_epoch, fail_reason, diagnosis (the doctor's summary), ...
    history : list of dict
        The logs of every epoch of its first split, in order (``train_loss``, ``lr``,
        ``val_loss``, ``val_<metric>``, ``seconds``, ``epoch``).
    """

    number: int
    name: str
    state: str
    value: float | None
    params: dict[str, Any]
    searched: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def end_state(self) -> EndState:
        """How the trial ended (`trial_end_state` of its state and attributes)."""
        return trial_end_state(self.state, self.attrs)


# The MLflow run status of each end state (MLflow's RunStatus: FINISHED, FAILED, KILLED).
RUN_STATUS = {"complete": "FINISHED", "budget": "FINISHED", "pruned": "KILLED", "diverged": "FAILED",
              "failed": "FAILED", "interrupted": "KILLED"}
END_STATES = tuple(RUN_STATUS)


@dataclass(frozen=True)
class EndState:
    """How a fit, a trial or a search ended.

    Attributes
    ----------
    state : {"complete", "budget", "pruned", "diverged", "failed", "interrupted"}
        See the table in this module's docstring.
    reason : str or None
        What ended it, for every state but complete and budget: the error (its type and
        message), or a trial's ``fail_reason``.
    """

    state: str
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.state not in RUN_STATUS:
            raise ValueError(f"end state must be one of {', '.join(END_STATES)}; got {self.state!r}")

    @property
    def run_status(self) -> str:
        """The MLflow run status: FINISHED, FAILED or KILLED."""
        return RUN_STATUS[self.state]

    def tags(self) -> dict[str, str]:
        """The MLflow tags that say it: ``archtune.end_state``, ``archtune.end_reason`` (with a
        reason, cut to `MAX_PARAM_CHARS`), ``archtune.stopped_by_budget`` (budget)."""
        tags = {"archtune.end_state": self.state}
        if self.reason:
            tags["archtune.end_reason"] = param_text(self.reason)
        if self.state == "budget":
            tags["archtune.stopped_by_budget"] = "true"
        return tags


def end_state_of(error: BaseException | None, *, budget: bool = False) -> EndState:
    """The end state of a run that ``error`` ended (None: it ended by itself; ``budget``: by
    its time budget). KeyboardInterrupt and other exceptions that are not errors (SystemExit)
    are interrupted; `TrainingDivergedError` is diverged; ``optuna.TrialPruned`` is pruned."""
    if error is None:
        return EndState("budget" if budget else "complete")
    reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if not isinstance(error, Exception):
        return EndState("interrupted", reason)
    if isinstance(error, TrainingDivergedError):
        return EndState("diverged", reason)
    optuna = sys.modules.get("optuna")  # a pruner's signal can only come from a loaded optuna
    if optuna is not None and isinstance(error, optuna.TrialPruned):
        return EndState("pruned", reason)
    return EndState("failed", reason)


def training_end_state(trainer: Any) -> EndState:
    """How one network's training ended, from its `TrainingState` as ``on_train_end`` sees it:
    its ``status`` ("complete", "diverged", "stopped", "failed", "interrupted") and the
    ``error`` that ended it (archtune.train.state)."""
    status = getattr(trainer, "status", "complete")
    error = getattr(trainer, "error", None)
    if status == "complete":
        return EndState("complete")
    if error is None and status in ("diverged", "failed", "interrupted"):
        return EndState(status)
    if error is None:  # still "running": an exception is on its way out of the training loop
        error = sys.exc_info()[1]
    return end_state_of(error)


def trial_end_state(state: str, attrs: dict[str, Any]) -> EndState:
    """How a search's trial ended, from its state (complete, pruned, failed) and its
    attributes: ``stopped_by_budget`` (a complete trial the time budget cut short), and a
    failed trial's ``fail_reason``, whose first word says why (diverged, interrupted; dead,
    invalid and others are failed)."""
    if state == "complete":
        return EndState("budget" if attrs.get("stopped_by_budget") else "complete")
    if state == "pruned":
        epoch = attrs.get("pruned_at_epoch")
        return EndState("pruned", f"pruned at epoch {epoch}" if epoch is not None else None)
    reason = str(attrs.get("fail_reason") or "") or None
    kind = (reason or "").split(":")[0].strip()
    return EndState(kind if kind in ("diverged", "interrupted") else "failed", reason)


def epoch_metrics(history: list[dict[str, Any]]) -> list[tuple[str, float, int]]:
    """(name, value, step) of every finite number in ``history``, step = the epoch.

    Parameters
    ----------
    history : list of dict
        One dict of logs per epoch, each with its ``epoch`` (1-based; an epoch's position in
        the list + 1 when missing).
    """
    out: list[tuple[str, float, int]] = []
    for position, logs in enumerate(history):
        step = int(logs.get("epoch", position + 1))
        for key, value in logs.items():
            if key in NOT_METRICS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(float(value)):
                out.append((RENAMED.get(key, key), float(value), step))
    return out


def param_text(value: Any) -> str:
    """A parameter value as a tracking backend stores it: text, cut to `MAX_PARAM_CHARS`."""
    text = str(value)
    return text if len(text) <= MAX_PARAM_CHARS else text[:MAX_PARAM_CHARS - 3] + "..."


__all__ = ["END_STATES", "EndState", "RUN_STATUS", "TrialRecord", "end_state_of", "epoch_metrics", "param_text",
           "training_end_state", "trial_end_state"]
