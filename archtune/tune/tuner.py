"""The search loop: ask Optuna for trials, train each, report every epoch, tell the result.

Ask/tell rather than ``study.optimize`` so that the loop owns scheduling: the budget, the
retry of trials left RUNNING by a killed process, and (with population training) several
trials trained together.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd

from archtune.errors import ArchtuneError, TrainingDivergedError
from archtune.train.callbacks import Callback
from archtune.tune.baselines import BaselineResult
from archtune.tune.space import SearchSpace
from archtune.tune.study import Heartbeat, sweep_stale_trials

TrialState = optuna.trial.TrialState
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Failed trials (diverged, invalid combinations) do not count toward a trial budget; this
# bounds how many attempts a search makes before it gives up on a hopeless space.
MAX_ATTEMPTS_PER_TRIAL = 3


class _Pruned(Exception):
    """Raised inside training when the pruner stops a trial."""

    def __init__(self, epoch: int):
        self.epoch = epoch


class EpochReporter(Callback):
    """Hands each epoch's validation score to ``report(epoch, value) -> keep_going``, and ends
    training (keeping the best epoch so far) once ``out_of_time()`` says so."""

    def __init__(self, key: str, sign: float, report: Callable[[int, float], bool],
                 out_of_time: Callable[[], bool] | None = None):
        self.key = key
        self.sign = sign
        self.report = report
        self.out_of_time = out_of_time
        self.stopped_by_budget = False

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        value = logs.get(self.key)
        if value is not None and math.isfinite(value) and not self.report(logs["epoch"], self.sign * value):
            raise _Pruned(logs["epoch"])
        if self.out_of_time is not None and self.out_of_time():
            trainer.stop_training = True
            self.stopped_by_budget = True


@dataclass
class Split:
    """The data of one hold-out split (or one cross-validation fold)."""

    X_train: pd.DataFrame
    y_train: Any
    X_val: pd.DataFrame
    y_val: Any


@dataclass
class TrialOutcome:
    state: TrialState
    value: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    intermediate: dict[int, float] = field(default_factory=dict)


class Search:
    """Runs one study over ``splits`` until the budget is spent.

    Parameters
    ----------
    make_estimator : callable
        ``make_estimator(params) -> estimator`` (unfitted; an archtune Neural* estimator).
    splits : list of Split
        One for a hold-out search; K for cross-validation (the first fold's per-epoch scores
        drive the pruner, the trial's value is the mean over folds).
    score : callable
        ``score(fitted_estimator, X_val, y_val) -> float``, higher is better.
    epoch_key, epoch_sign :
        History column reported to the pruner each epoch, and its sign (higher = better).
    """

    def __init__(self, study: optuna.Study, storage: Any, space: SearchSpace,
                 make_estimator: Callable[[dict[str, Any]], Any], splits: list[Split],
                 score: Callable[[Any, pd.DataFrame, Any], float], epoch_key: str, epoch_sign: float,
                 progress: Callable[["Search"], None] | None = None, refit_factor: float = 0.0):
        self.study = study
        self.storage = storage
        self.space = space
        self.make_estimator = make_estimator
        self.splits = splits
        self.score = score
        self.epoch_key = epoch_key
        self.epoch_sign = epoch_sign
        self.progress = progress
        # Seconds of the final refit per second the best trial trained (0: no refit to reserve).
        self.refit_factor = refit_factor
        self.deadline: float | None = None
        self._in_flight = 0
        self.started = time.monotonic()

    # ------------------------------------------------------------------ counting

    def counts(self) -> dict[str, int]:
        trials = self.study.get_trials(deepcopy=False)
        return {
            "complete": sum(t.state == TrialState.COMPLETE for t in trials),
            "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials),
            "running": sum(t.state == TrialState.RUNNING for t in trials),
        }

    def n_finished(self) -> int:
        c = self.counts()
        return c["complete"] + c["pruned"]

    def time_left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def refit_reserve(self) -> float:
        """Expected seconds of the final refit: the best trial's training time up to its best
        epoch, scaled to all rows. Trials stop early enough to leave it."""
        try:
            best = self.study.best_trial
        except ValueError:
            return 0.0
        seconds = float(best.user_attrs.get("fit_seconds") or 0.0)
        epochs = max(1, int(best.user_attrs.get("epochs_run") or 1))
        return self.refit_factor * seconds * int(best.user_attrs.get("best_epoch") or epochs) / epochs

    def trial_deadline(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.refit_reserve()

    def _out_of_time(self, trial_started: float) -> bool:
        """A running trial stops when the time left would not cover the final refit: of the
        best trial so far, or of this trial itself if it became the best."""
        if self.deadline is None:
            return False
        now = time.monotonic()
        own_refit = self.refit_factor * (now - trial_started)
        return now + max(self.refit_reserve(), own_refit) >= self.deadline

    # ------------------------------------------------------------------ the loop

    def run(self, n_trials: int | None, seconds: float | None, n_jobs: int = 1) -> None:
        """Run until ``n_trials`` trials are finished (complete or pruned) in the study, or
        until ``seconds`` have passed (no trial starts after that); ``n_jobs`` threads."""
        self.deadline = None if seconds is None else self.started + seconds
        # Trials left RUNNING by a killed process are failed, which re-queues their params.
        sweep_stale_trials(self.study, self.storage, wait=True)
        self._attempts = 0
        self._limit = None if n_trials is None else MAX_ATTEMPTS_PER_TRIAL * max(1, n_trials - self.n_finished())
        self._lock = threading.Lock()
        if n_jobs == 1:
            self._worker(n_trials)
            return
        with ThreadPoolExecutor(n_jobs) as pool:
            for future in [pool.submit(self._worker, n_trials) for _ in range(n_jobs)]:
                future.result()

    def _claim(self, n_trials: int | None) -> bool:
        """Whether another trial may start (counting trials other workers are running)."""
        with self._lock:
            if self.deadline is not None and time.monotonic() >= self.trial_deadline():
                return False
            if self._limit is not None and self._attempts >= self._limit:
                return False
            if n_trials is not None:
                c = self.counts()
                if c["complete"] + c["pruned"] + self._in_flight >= n_trials:
                    return False
            self._attempts += 1
            self._in_flight += 1
            return True

    def _worker(self, n_trials: int | None) -> None:
        while self._claim(n_trials):
            try:
                self.run_one()
            finally:
                with self._lock:
                    self._in_flight -= 1
            sweep_stale_trials(self.study, self.storage, wait=False)
            if self.progress is not None:
                self.progress(self)

    def run_one(self) -> TrialOutcome:
        with warnings.catch_warnings():
            # Optuna warns that heartbeats are meant for Study.optimize; `Heartbeat` sends them here.
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = self.study.ask()
        outcome = TrialOutcome(TrialState.FAIL, attrs={"fail_reason": "interrupted"})
        try:
            with Heartbeat(self.storage, trial._trial_id):
                outcome = self.evaluate(trial)
        finally:
            # Every asked trial is told, even on KeyboardInterrupt: none is left RUNNING.
            for key, value in outcome.attrs.items():
                trial.set_user_attr(key, value)
            if outcome.state == TrialState.COMPLETE:
                self.study.tell(trial, outcome.value)
            else:
                self.study.tell(trial, state=outcome.state)
        return outcome

    def evaluate(self, trial: optuna.trial.Trial) -> TrialOutcome:
        """Train the trial's configuration on every split; report the first split's epochs."""
        try:
            params = self.space.sample(trial)
        except ArchtuneError as exc:
            return TrialOutcome(TrialState.FAIL, attrs={"fail_reason": f"invalid: {exc}"})
        started = time.perf_counter()
        scores: list[float] = []
        attrs: dict[str, Any] = {}

        def report(epoch: int, value: float) -> bool:
            trial.report(value, epoch)
            return not trial.should_prune()

        trial_started = time.monotonic()
        for fold, split in enumerate(self.splits):
            estimator = self.make_estimator(params)
            reporter = EpochReporter(self.epoch_key, self.epoch_sign, report if fold == 0 else (lambda e, v: True),
                                     lambda: self._out_of_time(trial_started))
            callbacks = [reporter]
            try:
                estimator.fit(split.X_train, split.y_train, validation_data=(split.X_val, split.y_val),
                              callbacks=callbacks)
            except _Pruned as pruned:
                return TrialOutcome(TrialState.PRUNED, attrs={
                    "pruned_at_epoch": pruned.epoch, "fit_seconds": time.perf_counter() - started,
                    "n_params": _n_params(self.make_estimator, params, split)})
            except TrainingDivergedError as exc:
                return TrialOutcome(TrialState.FAIL, attrs={"fail_reason": f"diverged: {exc}",
                                                            "fit_seconds": time.perf_counter() - started})
            except (ArchtuneError, ValueError) as exc:
                return TrialOutcome(TrialState.FAIL, attrs={"fail_reason": f"invalid: {type(exc).__name__}: {exc}",
                                                            "fit_seconds": time.perf_counter() - started})
            value = float(self.score(estimator, split.X_val, split.y_val))
            if not math.isfinite(value):
                return TrialOutcome(TrialState.FAIL, attrs={"fail_reason": f"diverged: validation score {value}"})
            scores.append(value)
            if fold == 0:
                attrs = {"best_epoch": int(estimator.best_epoch_), "epochs_run": int(len(estimator.history_)),
                         "n_params": int(sum(p.numel() for p in estimator.module_.parameters()))}
            if reporter.stopped_by_budget:
                attrs["stopped_by_budget"] = True
        attrs["fit_seconds"] = time.perf_counter() - started
        if len(scores) > 1:
            attrs["fold_scores"] = scores
        return TrialOutcome(TrialState.COMPLETE, value=float(np.mean(scores)), attrs=attrs)


def _n_params(make_estimator: Callable[[dict[str, Any]], Any], params: dict[str, Any], split: Split) -> int | None:
    """Parameter count of a configuration, without training it (for pruned trials)."""
    try:
        from archtune.models import InputSpec, build_model

        est = make_estimator(params)
        width = split.X_train.shape[1]
        net = build_model(est.model_config(), InputSpec(width), 1, "regression")
        return int(sum(p.numel() for p in net.parameters()))
    except Exception:
        return None


# --------------------------------------------------------------------------- leaderboard


def leaderboard(study: optuna.Study, baselines: list[BaselineResult] | list[dict[str, Any]]) -> pd.DataFrame:
    """Every trial and every baseline, best first: model, parameters, validation score, fit
    time, parameter count, state."""
    rows: list[dict[str, Any]] = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING or t.state == TrialState.WAITING:
            continue
        params = dict(t.params)
        value = t.value if t.state == TrialState.COMPLETE else None
        if t.state == TrialState.PRUNED and t.intermediate_values:
            last = max(t.intermediate_values)
            note = f"pruned at epoch {last} (score then {t.intermediate_values[last]:.4g})"
        elif t.state == TrialState.FAIL:
            note = str(t.user_attrs.get("fail_reason", "failed"))
        else:
            note = f"best epoch {t.user_attrs.get('best_epoch')}"
            if t.user_attrs.get("stopped_by_budget"):
                note += " (stopped at the time budget)"
        rows.append({
            "model": f"network #{t.number} ({params.get('arch', 'mlp')})",
            "params": _describe_params(params),
            "val_score": value,
            "fit_seconds": t.user_attrs.get("fit_seconds"),
            "n_params": t.user_attrs.get("n_params"),
            "state": t.state.name,
            "note": note,
        })
    for b in baselines:
        b = b if isinstance(b, dict) else b.__dict__
        error = b.get("error")
        state = "BASELINE" if error is None else "SKIPPED" if error.startswith("skipped") else "FAIL"
        rows.append({"model": b["name"], "params": b["params"], "val_score": b["score"] if error is None else None,
                     "fit_seconds": b["fit_seconds"], "n_params": None, "state": state,
                     "note": error or "classical baseline"})
    frame = pd.DataFrame(rows, columns=["model", "params", "val_score", "fit_seconds", "n_params", "state", "note"])
    # Scored rows best first, then pruned trials, then failures.
    order = frame["state"].map({"PRUNED": 1, "SKIPPED": 2, "FAIL": 3}).fillna(0)
    frame = (frame.assign(_order=order).sort_values(["_order", "val_score"], ascending=[True, False],
                                                    na_position="last", kind="stable")
             .drop(columns="_order").reset_index(drop=True))
    frame.index = frame.index + 1
    return frame


def _describe_params(params: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


__all__ = ["EpochReporter", "Search", "Split", "TrialOutcome", "leaderboard"]
