"""Experiment tracking of a search: the one object the search calls (`SearchTracker`), at its
start, at the end of every trial, after the baselines and at its end, and that hands each
call to the backends the user chose (MLflow, TensorBoard event files).

Tracking never fails a search: the first error of a backend becomes one RuntimeWarning,
and that backend stops while the search goes on. A trial is logged once, at its end, from
its recorded history (one batch of metrics), by one background thread: the search hands it
the trial's record and goes on (MLflow's file store takes ~80 ms a trial, bench/
tracking_overhead.py), and the search's end waits for everything to be written.

How each trial and the search itself ended is the run's end state (archtune.tracking.records:
MLflow's run status and tags, TensorBoard's ``end_state`` text). A trial's comes from its
Optuna state and attributes: complete (FINISHED), budget (complete but cut short by the time
budget: FINISHED, ``archtune.stopped_by_budget``), pruned (KILLED), diverged and failed
(FAILED), interrupted (Ctrl-C during the trial: KILLED). The search's parent run: complete
(FINISHED; a trial budget spent), budget (FINISHED; a time budget spent), diverged (FAILED: it
raised after every trial it saw diverged), failed (FAILED: any other error), interrupted
(KILLED: Ctrl-C).
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archtune.errors import InvalidParameterError
from archtune.bundles.format import params_from_json
from archtune.tracking.records import EndState, TrialRecord, end_state_of
from archtune.tune.space import AUTO_LR_SCALE_PARAM
from archtune.tune.leaderboard import network_name

# The search's settings logged as the parent run's parameters.
LOGGED_SETTINGS = ("budget", "space", "sampler", "pruner", "cv", "scoring", "storage", "study_name", "n_jobs",
                   "population", "refit", "ensemble", "bagging", "baselines", "validation_fraction", "random_state",
                   "device")
# Files of a run directory that are not results: the live study database.
NOT_ARTIFACTS = ("study.db", "study.db-journal")
# Seconds the search's end waits for the tracking thread (a store that hangs is left behind).
END_WAIT = 120.0


def check_tracking(mlflow_uri: Any, tensorboard_dir: Any) -> None:
    """Check the tracking parameters before any data is read.

    Raises
    ------
    InvalidParameterError
        ``mlflow_uri`` or ``tensorboard_dir`` is neither None nor a non-empty string (or path).
    ImportError
        The package a chosen backend needs is missing (the message names the extra).
    """
    from archtune.tracking.mlflow_runs import require_mlflow
    from archtune.tracking.tensorboard_events import summary_writer_class

    for name, value in (("mlflow_uri", mlflow_uri), ("tensorboard_dir", tensorboard_dir)):
        if value is not None and (not isinstance(value, (str, Path)) or not str(value).strip()):
            raise InvalidParameterError(f"{name} must be None or a non-empty string (a tracking URI or a "
                                        f"directory); got {name}={value!r}")
    if mlflow_uri is not None:
        require_mlflow()
    if tensorboard_dir is not None:
        summary_writer_class()


class SearchTracker:
    """Hands a search's events to its tracking backends, each guarded.

    Parameters
    ----------
    backends : list
        Objects with ``start``, ``trial``, ``baselines`` and ``end`` methods
        (`MLflowSearchLog`, `TensorBoardSearchLog`).

    Attributes
    ----------
    mlflow_run_id : str or None
        The parent MLflow run of the search, while MLflow tracking works.
    """

    def __init__(self, backends: list[Any]):
        self.backends = list(backends)
        self.source_arch: str | None = None
        # One thread writes, in the order the calls came (trials end in several threads with
        # n_jobs > 1); None ends it.
        self._queue: queue.Queue = queue.Queue()
        self._pending: collections.deque[str] = collections.deque()  # warnings for the search's thread
        self._trial_ends: list[str] = []  # the end state of every trial handed over, in order
        self._writer = threading.Thread(target=self._write, name="archtune-tracking", daemon=True)
        self._writer.start()

    @property
    def mlflow_run_id(self) -> str | None:
        return next((getattr(b, "run_id", None) for b in self.backends if hasattr(b, "run_id")), None)

    def _write(self) -> None:
        while (item := self._queue.get()) is not None:
            self._each(*item)

    def _each(self, method: str, *args: Any) -> None:
        for backend in list(self.backends):
            try:
                getattr(backend, method)(*args)
            except Exception as exc:  # tracking must never fail the search it records
                self.backends.remove(backend)
                if method != "end":
                    with contextlib.suppress(Exception):  # a stopped backend's run is marked failed
                        backend.end({}, {}, {}, EndState("failed", f"experiment tracking stopped ({method}: "
                                                                   f"{type(exc).__name__}: {exc})"))
                # Warned from the search's own thread (`_flush`): a warning raised in this thread
                # is lost whenever the main thread sits in a `catch_warnings` that ignores
                # RuntimeWarning (the preprocessor's numeric fitting has one).
                self._pending.append(f"experiment tracking to {backend.target} stopped ({method}: "
                                     f"{type(exc).__name__}: {exc}); the search goes on without it")

    def _flush(self) -> None:
        """Give the caller's thread the warnings the writer thread has collected."""
        while self._pending:
            warnings.warn(self._pending.popleft(), RuntimeWarning, stacklevel=3)

    def start(self, study: Any, task: str, settings: Mapping[str, Any], rows: int, columns: int) -> None:
        """The search begins: its settings and data size; a study of one trained network
        (``init_from``) names its trials after that network's architecture."""
        source = study.user_attrs.get("init_from")
        self.source_arch = source.get("arch") if isinstance(source, Mapping) else None
        params = {name: settings.get(name) for name in LOGGED_SETTINGS if name in settings}
        params.update(task=task, rows=rows, columns=columns)
        self._queue.put(("start", f"search {study.study_name}", params,
                         {"archtune.study": study.study_name, "archtune.task": task}))

    def trial_ended(self, trial: Any, outcome: Any) -> None:
        """A trial was told: ``trial`` (an Optuna trial, with its user attributes) and its
        ``outcome`` (state, value, attrs, history)."""
        self._flush()
        if not self.backends:
            return
        try:
            record = self._record(trial, outcome)
            self._trial_ends.append(record.end_state.state)
            self._queue.put(("trial", record))
        except Exception as exc:  # reading the trial back: never an error of the search
            warnings.warn(f"experiment tracking skipped trial {trial.number} ({type(exc).__name__}: {exc})",
                          RuntimeWarning, stacklevel=2)

    def _record(self, trial: Any, outcome: Any) -> TrialRecord:
        attrs = {**trial.user_attrs, **outcome.attrs}
        sampled = dict(trial.params)
        config = params_from_json(dict(attrs.pop("config"))) if "config" in attrs else dict(sampled)
        state = {"COMPLETE": "complete", "PRUNED": "pruned"}.get(outcome.state.name, "failed")
        return TrialRecord(
            number=trial.number, name=network_name(trial.number, self.source_arch or config.get("arch", "mlp")),
            state=state, value=outcome.value if state == "complete" else None, params=config,
            searched=list(dict.fromkeys("learning_rate" if n == AUTO_LR_SCALE_PARAM else n for n in sampled)),
            attrs=attrs, history=list(getattr(outcome, "history", None) or []))

    def baselines(self, records: list[dict[str, Any]]) -> None:
        """The classical baselines' records (name, params, score, fit_seconds, error)."""
        if records:
            self._queue.put(("baselines", list(records)))

    def end(self, board: Any = None, best_score: float | None = None, error: BaseException | None = None,
            budget: bool = False) -> None:
        """The search ended: by itself (``budget``: a time budget it spent), or by ``error``.
        The leaderboard (a DataFrame) and the best score go to every backend, the leaderboard
        as ``leaderboard.csv``, and the end state (`search_end_state`) closes the parent run;
        returns once everything the search sent is written (or after `END_WAIT` seconds)."""
        metrics: dict[str, float] = {}
        tags: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if board is not None:
            states = board["state"].value_counts()
            metrics = {f"n_{s.lower()}": float(states.get(s, 0)) for s in ("COMPLETE", "PRUNED", "FAIL")}
            files["leaderboard.csv"] = board.to_csv(index_label="rank").encode()
            if len(board):
                tags["archtune.best"] = board.iloc[0]["model"]
        if best_score is not None:
            metrics["best_score"] = float(best_score)
        self._queue.put(("end", metrics, tags, files, self.search_end_state(error, budget)))
        self._queue.put(None)
        self._writer.join(END_WAIT)
        self._flush()
        if self._writer.is_alive():
            warnings.warn(f"experiment tracking had not finished writing after {END_WAIT:.0f} s; the search "
                          "ends without waiting for it", RuntimeWarning, stacklevel=2)


    def search_end_state(self, error: BaseException | None, budget: bool = False) -> EndState:
        """How the search ended: `end_state_of` its error, except that an error after every
        trial handed over (at least one) diverged is the search diverging."""
        end = end_state_of(error, budget=budget)
        if end.state == "failed" and self._trial_ends and set(self._trial_ends) == {"diverged"}:
            return EndState("diverged", f"every trial diverged; {end.reason}")
        return end


def make_search_tracker(mlflow_uri: str | None, tensorboard_dir: str | None, experiment: str) -> SearchTracker | None:
    """The tracker of a search, or None when neither backend is asked for. A backend that
    cannot be opened (an unreachable or unwritable store) is left out with a warning."""
    from archtune.tracking.mlflow_runs import MLflowSearchLog
    from archtune.tracking.tensorboard_events import TensorBoardSearchLog

    backends = []
    for value, make in ((mlflow_uri, lambda v: MLflowSearchLog(str(v), experiment)),
                        (tensorboard_dir, TensorBoardSearchLog)):
        if value is None:
            continue
        try:
            backends.append(make(value))
        except ImportError:
            raise
        except Exception as exc:
            warnings.warn(f"experiment tracking to {value} could not start ({type(exc).__name__}: {exc}); the "
                          "search goes on without it", RuntimeWarning, stacklevel=3)
    return SearchTracker(backends) if mlflow_uri is not None or tensorboard_dir is not None else None


def log_run_directory(mlflow_uri: str, run_id: str, directory: str | Path) -> list[str]:
    """A saved run directory (``archtune tune --out``: the model bundle, the ensemble, the
    leaderboard, metrics.json, report.html) as artifacts of the search's parent run, under
    ``run/``; the study database is left out. A failure is a warning, never an error.

    Returns
    -------
    list of str
        The artifact paths logged (empty after a failure).
    """
    from archtune.tracking.mlflow_runs import client_for, log_directory

    try:
        return log_directory(client_for(mlflow_uri), run_id, Path(directory), "run", NOT_ARTIFACTS)
    except ImportError:
        raise
    except Exception as exc:
        warnings.warn(f"could not log {directory} to MLflow at {mlflow_uri} ({type(exc).__name__}: {exc})",
                      RuntimeWarning, stacklevel=2)
        return []


__all__ = ["SearchTracker", "check_tracking", "log_run_directory", "make_search_tracker"]
