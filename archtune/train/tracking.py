"""Tracking one fit: callbacks for ``NeuralClassifier.fit(X, y, callbacks=[...])`` (and
``archtune fit --mlflow`` / ``--tensorboard``), the scikit-learn-friendly way to track a
single network: the estimator's parameters stay what they are (no tracking URI among them,
so ``clone`` and grid searches are unaffected), and a callback is given per fit.

As in a search, a tracking error never fails the fit: it becomes one RuntimeWarning and the
callback stops logging (an MLflow run it leaves is marked FAILED, ``archtune.end_reason``
saying that tracking stopped).

Each fit's run records how training ended, from the `TrainingState` its ``on_train_end``
receives (archtune.tracking.records, `training_end_state`): complete -> FINISHED; diverged
(`TrainingDivergedError`) and failed (any other error) -> FAILED; interrupted (Ctrl-C) ->
KILLED; pruned (``optuna.TrialPruned`` from a callback) -> KILLED. MLflow gets it as the run
status and the tags ``archtune.end_state`` and ``archtune.end_reason`` (the error);
TensorBoard, which has no run status, as the text summaries ``end_state`` and ``end_reason``
in the run's event file.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from archtune.tracking.records import EndState, epoch_metrics, training_end_state
from archtune.train.callbacks import Callback


class _Guarded(Callback):
    """Runs each hook's logging under a guard: the first error warns and stops it."""

    target = "tracking"
    active = True

    def _guard(self, action: Any) -> None:
        if not self.active:
            return
        try:
            action()
        except Exception as exc:  # tracking must never fail the fit it records
            self.active = False
            warnings.warn(f"experiment tracking to {self.target} stopped ({type(exc).__name__}: {exc}); training "
                          "goes on without it", RuntimeWarning, stacklevel=4)
            try:
                self._stopped(exc)
            except Exception:  # the store that just failed may fail again: nothing more to do
                pass

    def _stopped(self, exc: Exception) -> None:
        """Close what the failed logging leaves open (a run stays RUNNING otherwise)."""


class MLflowLogger(_Guarded):
    """Logs a fit to MLflow: one run with the training configuration as parameters, every
    epoch's train_loss, val_loss, val_<metric>, lr and epoch_seconds (step = epoch), and the
    network's parameter count.

    Parameters
    ----------
    tracking_uri : str
        ``file:///path/mlruns`` or a plain directory (MLflow's file store),
        ``sqlite:///mlflow.db``, ``http://host:5000``.
    experiment : str
        The experiment the run goes to (created when missing).
    run_name : str, optional
    flush_every : int
        Epochs buffered per `log_batch` call (and the rest at the end of training), so that
        logging does not slow short epochs.

    Attributes
    ----------
    run_id : str or None
        The run of the latest fit.
    end_state : archtune.tracking.records.EndState or None
        How the latest fit's training ended (``end_state.state``: complete, diverged, failed,
        interrupted or pruned; ``end_state.reason``: the error). The run's status says it:
        FINISHED (complete), FAILED (diverged, failed) or KILLED (interrupted, pruned), with
        the tags ``archtune.end_state`` and ``archtune.end_reason``.

    Raises
    ------
    ImportError
        mlflow is not installed (``pip install 'archtune[mlflow]'``).

    Examples
    --------
    >>> logger = MLflowLogger("file:///tmp/mlruns")                    # doctest: +SKIP
    >>> NeuralClassifier().fit(X, y, callbacks=[logger])               # doctest: +SKIP
    """

    def __init__(self, tracking_uri: str, experiment: str = "archtune", run_name: str | None = None,
                 flush_every: int = 10):
        from archtune.tracking.mlflow_runs import require_mlflow

        require_mlflow()
        self.tracking_uri = str(tracking_uri)
        self.experiment = experiment
        self.run_name = run_name
        self.flush_every = max(1, int(flush_every))
        self.target = f"MLflow at {self.tracking_uri}"
        self.run_id: str | None = None
        self.end_state: EndState | None = None
        self._client: Any = None
        self._pending: list[dict[str, Any]] = []
        self._open = False  # a run of this fit is started and not yet terminated

    def on_train_begin(self, trainer: Any) -> None:
        self.active = True
        self._pending = []
        self.run_id, self.end_state, self._open = None, None, False
        self._guard(lambda: self._start(trainer))

    def _start(self, trainer: Any) -> None:
        from archtune.tracking.mlflow_runs import client_for, experiment_id, log_batch

        self._client = client_for(self.tracking_uri)
        run = self._client.create_run(experiment_id(self._client, self.experiment), run_name=self.run_name,
                                      tags={"archtune.kind": "fit"})
        self.run_id = run.info.run_id
        self._open = True
        n_params = sum(p.numel() for p in trainer.module.parameters())
        log_batch(self._client, self.run_id, [("n_params", float(n_params), 0)],
                  params={k: v for k, v in asdict(trainer.config).items()}, tags={"archtune.metric": trainer.metric_name})

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._pending.append(dict(logs))
        if len(self._pending) >= self.flush_every:
            self._guard(self._flush)

    def _flush(self) -> None:
        from archtune.tracking.mlflow_runs import log_batch

        pending, self._pending = self._pending, []
        log_batch(self._client, self.run_id, epoch_metrics(pending))

    def on_train_end(self, trainer: Any) -> None:
        # Called however training ended: ``trainer.status`` and ``trainer.error`` say how.
        self.end_state = training_end_state(trainer)
        if not self._open:  # the run never started (its store failed, or another callback's start did)
            return
        self._guard(self._flush)
        self._guard(lambda: self._end(self.end_state))

    def _end(self, end: EndState) -> None:
        from archtune.tracking.mlflow_runs import log_batch

        log_batch(self._client, self.run_id, tags=end.tags())
        self._client.set_terminated(self.run_id, end.run_status)
        self._open = False

    def _stopped(self, exc: Exception) -> None:
        if self._open:  # what it logged stays, marked as failed
            self._open = False
            with contextlib.suppress(Exception):
                self._client.set_tag(self.run_id, "archtune.end_reason",
                                     f"experiment tracking stopped ({type(exc).__name__}: {exc})")
            self._client.set_terminated(self.run_id, "FAILED")

    def log_directory(self, directory: str | Path) -> None:
        """A saved bundle directory as artifacts of the latest run (under ``model/``)."""
        from archtune.tracking.mlflow_runs import log_directory

        self._guard(lambda: log_directory(self._client, self.run_id, Path(directory), "model"))


class TensorBoardLogger(_Guarded):
    """Writes a fit's curves as TensorBoard event files in ``logdir``: one scalar per history
    column (train_loss, val_loss, val_<metric>, lr, epoch_seconds), step = epoch; and how
    training ended, as the text summary ``end_state`` (complete, diverged, failed,
    interrupted or pruned; TensorBoard has no run status) with ``end_reason`` (the error),
    at the last epoch's step.

    Parameters
    ----------
    logdir : str or path
        Created when missing; ``tensorboard --logdir`` shows it.

    Raises
    ------
    ImportError
        Neither tensorboardX nor tensorboard is installed (``pip install 'archtune[tensorboard]'``).
    """

    def __init__(self, logdir: str | Path):
        from archtune.tracking.tensorboard_events import summary_writer_class

        self.logdir = Path(logdir)
        self.target = f"TensorBoard files in {self.logdir}"
        self._writer_class = summary_writer_class()
        self._writer: Any = None
        self.end_state: EndState | None = None

    def on_train_begin(self, trainer: Any) -> None:
        self.active = True
        self._writer = None
        self.end_state = None

        def open_writer() -> None:
            self._writer = self._writer_class(str(self.logdir))

        self._guard(open_writer)

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        def write() -> None:
            for key, value, step in epoch_metrics([logs]):
                self._writer.add_scalar(key, value, step)

        self._guard(write)

    def on_train_end(self, trainer: Any) -> None:
        from archtune.tracking.tensorboard_events import write_end_state

        self.end_state = training_end_state(trainer)
        if self._writer is None:  # never opened, or closed when writing failed
            return

        def close() -> None:
            write_end_state(self._writer, self.end_state, int(getattr(trainer, "epoch", 0)))
            self._writer.close()

        self._guard(close)

    def _stopped(self, exc: Exception) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


__all__ = ["MLflowLogger", "TensorBoardLogger"]
