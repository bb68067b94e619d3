"""The search loop: ask Optuna for trials, train each, report every epoch, tell the result.

Ask/tell rather than ``study.optimize`` so that the loop owns scheduling: the budget, the
retry of trials left RUNNING by a killed process, and (with population training) several
trials trained together.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import numpy as np
import optuna

from archtune.errors import ArchtuneError
from archtune.population import STRUCTURE_PARAMS, cohort_key, fit_population
from archtune.tune.auto_lr import AutoLearningRate
from archtune.tune.data import Split
from archtune.tune.epochs import EpochReporter, Pruned
from archtune.tune.halving import TRAIN_ROWS, RowStages
from archtune.tune.objectives import TrialObjectives, best_by_score
from archtune.tune.space import AUTO_LR_SCALE_PARAM, SearchSpace
from archtune.tune.study import Heartbeat, sweep_stale_trials
from archtune.tune.trial_records import TrialOutcome, diagnosis_summary, ended_outcome, failure_kind, trial_config

TrialState = optuna.trial.TrialState
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Failed trials (diverged, invalid combinations) do not count toward a trial budget; this
# bounds how many attempts a search makes before it gives up on a hopeless space.
MAX_ATTEMPTS_PER_TRIAL = 3


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
        ``score(fitted_estimator, X_val, y_val, sample_weight) -> float``, higher is better
        (the split's validation weights, or None).
    epoch_key, epoch_sign :
        History column reported to the pruner each epoch, and its sign (higher = better).
    cohort_size : int
        Trials asked together (population training); 1 asks one at a time. A cohort is a
        leader trial plus followers whose structure parameters (`STRUCTURE_PARAMS`) are fixed
        to the leader's and whose other parameters the sampler chooses; members that can be
        stacked (`cohort_key`) train as one model, the others one after another.
    kinds : dict, optional
        The columns' kinds, inferred once for the whole search (`infer_column_kinds`).
    keep : int
        Fitted networks of the best completed trials kept in memory (``kept``, best first):
        1 for the best alone, more as ensemble candidates.
    tracker : archtune.tracking.search_tracker.SearchTracker, optional
        Experiment tracking: ``tracker.trial_ended(trial, outcome)`` after each trial is told.
    objectives : TrialObjectives, optional
        A multi-objective study's trials (archtune.tune.objectives): the cost measured before
        each trial trains, the score reported to a shadow pruner, (score, cost) told. None:
        one objective, the score, reported to the study's own pruner.
    stages : RowStages, optional
        Successive halving over rows (archtune.tune.halving): each trial trains on the splits
        of its stage, and promotions are enqueued before a leader is asked. None: every trial
        trains on ``splits``.

    Every asked trial goes through one path, `run_trials`: sampled (its concrete
    configuration is stored as the user attribute ``config``), trained with
    `fit_population`, and told its outcome.
    """

    def __init__(self, study: optuna.Study, storage: Any, space: SearchSpace,
                 make_estimator: Callable[[dict[str, Any]], Any], splits: list[Split],
                 score: Callable[..., float], epoch_key: str, epoch_sign: float,
                 progress: Callable[["Search"], None] | None = None, refit_factor: float = 0.0,
                 cohort_size: int = 1, kinds: dict[str, str] | None = None, keep: int = 1, tracker: Any = None,
                 objectives: TrialObjectives | None = None, stages: RowStages | None = None):
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
        # refit="auto": the most seconds a refit may take; a best configuration whose refit
        # would take longer is not refitted, and no time is kept for it (None: no cap).
        self.refit_cap: float | None = None
        self.cohort_size = max(1, int(cohort_size))
        self.kinds = kinds
        self.deadline: float | None = None
        # ask() (and enqueue-then-ask for cohort followers) happen under this lock, so that no
        # other worker takes a follower's enqueued trial.
        self._ask_lock = threading.Lock()
        self._in_flight = 0
        self._mine: set[int] = set()  # numbers of the trials this process asked and has not told
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.started = time.monotonic()
        # learning_rate="auto": one finder run per structure, on the first split's training rows.
        self.auto_lr = AutoLearningRate(make_estimator, splits[0])
        # (trial number, value, fitted estimator) of the best `keep` trials this process
        # trained, best first: the best one is returned without a refit, all are ensemble
        # candidates.
        self.keep = max(1, int(keep))
        self.kept: list[tuple[int, float, Any]] = []
        self._best_lock = threading.Lock()
        self.tracker = tracker
        self.objectives = objectives
        self.stages = stages
        # budget="auto" (archtune.tune.stopping): the rule checked before each claim, and the
        # record of its decision once it stopped the search (None while it runs).
        self.stopping: Any = None
        self.stopped: dict[str, Any] | None = None

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
        """Seconds kept for the final refit (`refit_estimate` with a margin; 0 when no refit is
        planned). Trials stop early enough to leave it."""
        return self._reserve(*self._refit_plan())

    def refit_planned(self) -> bool:
        """Whether the best configuration so far is to be refitted on all rows: always, but
        with refit="auto" (``refit_cap``) only when its refit takes at most the cap or its
        trial trained on a first stage's subsample (such a network is not one to ship)."""
        return self._planned(*self._refit_plan())

    def refit_estimate(self) -> float:
        """Expected seconds of the final refit: the best configuration's own fit on all rows,
        up to its best epoch plus its patience (where early stopping would end it), scaled
        to all rows (0 before any trial completed)."""
        return self._refit_plan()[0]

    def _refit_plan(self) -> tuple[float, bool]:
        """(`refit_estimate`, whether the best trial trained on a first stage's subsample) of
        the best trial so far, read once: (0.0, False) before any completed."""
        try:
            best = best_by_score(self.study)
        except ValueError:
            return 0.0, False
        epochs = max(1, int(best.user_attrs.get("epochs_run") or 1))
        # A cohort member's share of the cohort's time understates what it costs alone.
        per_epoch = best.user_attrs.get("solo_epoch_seconds") or float(best.user_attrs.get("fit_seconds") or 0.0) / epochs
        scale = self._rows_scale(best.user_attrs.get(TRAIN_ROWS))
        config = trial_config(best)
        planned = int(config.get("max_epochs") or epochs)
        expected = min(planned, int(best.user_attrs.get("best_epoch") or epochs) + int(config.get("patience") or planned))
        return self.refit_factor * per_epoch * scale * expected, scale > 1

    def _planned(self, estimate: float, subsample: bool) -> bool:
        return self.refit_cap is None or subsample or estimate <= self.refit_cap

    def _reserve(self, estimate: float, subsample: bool) -> float:
        if estimate <= 0 or not self._planned(estimate, subsample):
            return 0.0
        # A margin: in bench/search_quality.py (100 s budgets) 5 of 8 refits, sized by the bare
        # estimate, were cut 1-5 epochs short of their best epoch count.
        return 1.15 * estimate + 1.0

    def _rows_scale(self, rows: int | None) -> float:
        """All training rows per row a trial trained on (1 for a trial on all rows): a
        first-stage trial's seconds, scaled to what its refit on all rows takes."""
        full = len(self.splits[0].y_train)
        return full / rows if rows else 1.0

    def trial_deadline(self, promoted: bool = False) -> float | None:
        """When running trials stop: the deadline less the time kept for the refit. A
        ``promoted`` trial while the best trained on a first stage's rows is the training on
        all rows that time is kept for (`_promotion_instead_of_refit`): the deadline itself."""
        if self.deadline is None:
            return None
        estimate, subsample = self._refit_plan()
        if promoted and subsample:
            return self.deadline
        # The first trial of a search whose budget went to reading the data and the baselines
        # still gets its minimum time: a search returns a trained network, not an error.
        return max(self.deadline - self._reserve(estimate, subsample), self._first_trial_until)

    def _out_of_time(self, own_seconds: float, subsample: bool = False, promoted: bool = False) -> bool:
        """A running trial stops when the time left would not cover the final refit: of the
        best trial so far, or of this trial itself if it became the best (``own_seconds``: what
        its epochs so far would take alone on all rows; ``subsample``: it trains on a first
        stage's rows, so its refit is planned whatever it costs). A ``promoted`` trial: see
        `trial_deadline`."""
        if self.deadline is None:
            return False
        now = time.monotonic()
        if now < self._first_trial_until:
            return False
        estimate, best_subsample = self._refit_plan()
        kept = 0.0 if promoted and best_subsample else self._reserve(estimate, best_subsample)
        own = self._reserve(self.refit_factor * own_seconds, subsample)
        return now + max(kept, own) >= self.deadline

    # ------------------------------------------------------------------ the loop

    _first_trial_until = -math.inf

    def run(self, n_trials: int | None, seconds: float | None, n_jobs: int = 1,
            first_trial_seconds: float = 0.0, sweep_wait: bool = True) -> None:
        """Run until ``n_trials`` trials are finished (complete or pruned) in the study, or
        until ``seconds`` have passed (no trial starts after that); ``n_jobs`` threads. When
        the study has no finished trial and ``seconds`` are already spent, one trial still
        trains, for up to ``first_trial_seconds``. ``sweep_wait=False`` (a worker joining a
        running search, whose RUNNING trials are alive) skips the wait for just-killed trials."""
        self.deadline = None if seconds is None else self.started + seconds
        self._first_trial_seconds = first_trial_seconds
        # Trials left RUNNING by a killed process are failed, which re-queues their params.
        sweep_stale_trials(self.study, self.storage, wait=sweep_wait)
        self._attempts = 0
        self._limit = None if n_trials is None else MAX_ATTEMPTS_PER_TRIAL * max(1, n_trials - self.n_finished())
        self._lock = threading.Lock()
        if n_jobs == 1:
            self._worker(n_trials)
            return
        with ThreadPoolExecutor(n_jobs) as pool:
            for future in [pool.submit(self._worker, n_trials) for _ in range(n_jobs)]:
                future.result()

    def _claim(self, n_trials: int | None, want: int = 1) -> int:
        """How many trials (up to ``want``) may start now, counting those other workers run."""
        with self._lock:
            if self.deadline is not None and time.monotonic() >= self.deadline - self.refit_reserve():
                if self._promotion_instead_of_refit():
                    want = 1
                elif self._attempts or self.n_finished() or not self._first_trial_seconds:
                    return 0
                else:
                    self._first_trial_until = time.monotonic() + self._first_trial_seconds
                    want = 1
            elif self._stops_itself():
                return 0
            if self._limit is not None:
                want = min(want, self._limit - self._attempts)
            if n_trials is not None:
                c = self.counts()
                # Trials other processes (archtune worker) are training count too.
                foreign = max(0, c["running"] - len(self._mine))
                want = min(want, n_trials - (c["complete"] + c["pruned"] + self._in_flight + foreign))
            if want <= 0:
                return 0
            self._attempts += want
            self._in_flight += want
            return want

    def _promotion_instead_of_refit(self) -> bool:
        """Whether a promotion may start in the time kept for the refit: the best trial trained
        on a first stage's rows (the time is kept to train its configuration on all rows), a
        promotion is due (archtune.tune.halving), and what is left covers its estimate. A
        promoted trial trains on all training rows: it is that training, with a validation score
        and a place among the ensemble's candidates; when it becomes the best, no refit is due."""
        if self.stages is None:
            return False
        estimate, subsample = self._refit_plan()
        left = self.time_left()
        return (subsample and left is not None and left >= estimate and not self._in_flight
                and bool(self.stages.due(self.study.get_trials(deepcopy=False))))

    def _stops_itself(self) -> bool:
        """budget="auto": whether the stopping rule (archtune.tune.stopping.StoppingRule) ends
        the search now, recording why; a process without the rule (a worker) stops when the
        coordinator's rule recorded its stop in the study."""
        from archtune.tune.stopping import STOPPED_ATTR

        if self.stopped is not None:
            return True
        if self.stopping is not None:
            self.stopped = self.stopping.check(self)
            if self.stopped is not None:  # at once, for the workers' next claim
                self.study.set_user_attr(STOPPED_ATTR, self.stopped)
        elif self.deadline is not None:  # an auto search always has its cap as a deadline
            record = self.study.user_attrs.get(STOPPED_ATTR)
            self.stopped = record if isinstance(record, dict) and record.get("reason") == "rule" else None
        return self.stopped is not None

    def _worker(self, n_trials: int | None) -> None:
        while granted := self._claim(n_trials, self.cohort_size):
            try:
                self.run_trials(granted)
            finally:
                with self._lock:
                    self._in_flight -= granted
            sweep_stale_trials(self.study, self.storage, wait=False)
            if self.progress is not None:
                self.progress(self)

    def run_trials(self, size: int) -> dict[int, TrialOutcome]:
        """Ask a leader and ``size - 1`` followers, train them (stacked where they can be),
        tell them all; returns the outcomes by trial number."""
        trials: list[optuna.trial.Trial] = []
        params: dict[int, dict[str, Any]] = {}
        outcomes: dict[int, TrialOutcome] = {}
        # What the trials that an exception leaves without an outcome are told.
        unfinished = TrialOutcome(TrialState.FAIL, attrs={"fail_reason": "interrupted"})
        try:
            with warnings.catch_warnings(), ExitStack() as beats:
                # Optuna warns that heartbeats are meant for Study.optimize; `Heartbeat` sends them here.
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                for _ in range(size):
                    with self._ask_lock:
                        leader = trials[0] if trials and trials[0].number in params else None
                        if leader is None and self.stages is not None:
                            self.stages.promote(self.study)  # the next ask takes the promotions due
                        trials.append(self._ask_follower(leader) if leader is not None else self.study.ask())
                        self._mine.add(trials[-1].number)
                    trials[-1].set_user_attr("worker", self.worker_id)  # which process trained it
                    # From its first moment, so that a kill at any point leaves a stale trial.
                    beats.enter_context(Heartbeat(self.storage, trials[-1]._trial_id))
                    sampled = self._sample(trials[-1])
                    if isinstance(sampled, TrialOutcome):
                        outcomes[trials[-1].number] = sampled
                    else:
                        params[trials[-1].number] = sampled
                        if self.objectives is not None:  # several objectives: the cost, before training
                            self.objectives.start(trials[-1], sampled)
                    if self.stages is not None:
                        trials[-1].set_user_attr(TRAIN_ROWS, self.stages.rows_for(trials[-1]))
                    if len(trials) == 1 and size > 1 and (not self._stackable(sampled) or self._promoted(trials[0])):
                        # Followers of a leader that cannot be stacked would train one by one; a
                        # promoted leader trains on other rows than its followers would.
                        break
                outcomes.update(self._evaluate([t for t in trials if t.number in params], params))
        except Exception as exc:  # an error no trial caught ends the search; its trials failed by it
            unfinished = TrialOutcome(TrialState.FAIL, attrs={
                "fail_reason": f"{failure_kind(exc)}: {type(exc).__name__}: {exc}"})
            raise
        finally:  # KeyboardInterrupt (Ctrl-C) leaves the trials "interrupted"
            for trial in trials:
                self._tell(trial, outcomes.get(trial.number, unfinished))
                if self.tracker is not None:
                    self.tracker.trial_ended(trial, outcomes.get(trial.number, unfinished))
                self._mine.discard(trial.number)
        return outcomes

    def _promoted(self, trial: optuna.trial.BaseTrial) -> bool:
        return self.stages is not None and self.stages.is_promoted(trial)

    def _splits_for(self, trial: optuna.trial.BaseTrial) -> list[Split]:
        return self.splits if self.stages is None else self.stages.splits_for(trial)

    def _stackable(self, sampled: dict[str, Any] | TrialOutcome) -> bool:
        if isinstance(sampled, TrialOutcome):
            return True  # an invalid leader: its followers are ordinary samples
        if self.kinds is not None and any(kind in ("text", "image") for kind in self.kinds.values()):
            return False  # text and image encoders are not stacked
        return cohort_key(self.make_estimator(sampled), len(self.splits[0].X_train)) is not None

    def _show_progress(self) -> None:
        """Progress while trials train (they are told only when their group ends); at most
        once a second, since it reads the study."""
        now = time.monotonic()
        if self.progress is not None and now - self._shown >= 1.0:
            self._shown = now
            self.progress(self)

    _shown = 0.0

    def _ask_follower(self, leader: optuna.trial.Trial) -> optuna.trial.Trial:
        """A trial with the leader's structure, asked by this worker alone: the sampler draws it
        with the structure fixed (`optuna.samplers.PartialFixedSampler`) rather than an enqueued
        trial any process could take, so that cohorts stay whole with many workers
        (archtune.tune.worker). Trials already waiting (retries of interrupted trials) go first,
        as any ask takes them."""
        fixed = {name: leader.params[name] for name in STRUCTURE_PARAMS if name in leader.params}
        if self.storage is None:  # in memory, one process: an enqueued trial, asked under the lock
            if not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                self.study.enqueue_trial(fixed, user_attrs={"cohort_leader": leader.number})
            return self.study.ask()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.PartialFixedSampler(fixed, self.study.sampler)
        view = optuna.load_study(study_name=self.study.study_name, storage=self.storage, sampler=sampler,
                                 pruner=self.study.pruner)
        retry = bool(self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        trial = view.ask()
        if not retry:  # a waiting retry keeps its own parameters
            trial.set_user_attr("cohort_leader", leader.number)
        return trial

    def _tell(self, trial: optuna.trial.Trial, outcome: TrialOutcome) -> None:
        # Every asked trial is told, even on KeyboardInterrupt: none is left RUNNING.
        for key, value in outcome.attrs.items():
            trial.set_user_attr(key, value)
        if self.objectives is not None:  # several objectives: (score, cost)
            self.objectives.tell(self.study, trial, outcome.state, outcome.value, outcome.attrs)
            return
        if outcome.state == TrialState.COMPLETE:
            self.study.tell(trial, outcome.value)
        else:
            self.study.tell(trial, state=outcome.state)

    def _sample(self, trial: optuna.trial.Trial) -> dict[str, Any] | TrialOutcome:
        """The trial's estimator parameters, stored as its ``config`` user attribute."""
        from archtune.bundles.format import params_to_json

        try:
            params = self.space.sample(trial)
            if AUTO_LR_SCALE_PARAM in params:
                params = self.auto_lr.centre(trial, params)
            trial.set_user_attr("config", params_to_json(params))
            return params
        except ArchtuneError as exc:  # the learning-rate finder's run may diverge too
            return TrialOutcome(TrialState.FAIL, attrs={"fail_reason": f"{failure_kind(exc)}: {exc}"})

    # ------------------------------------------------------------------ evaluation

    def _evaluate(self, trials: list[optuna.trial.Trial], params: dict[int, dict[str, Any]]) -> dict[int, TrialOutcome]:
        """Group the trials by their rows and by what can be stacked (`cohort_key`); train each
        group."""
        groups: dict[Any, list[optuna.trial.Trial]] = {}
        for trial in trials:
            splits = self._splits_for(trial)
            key = cohort_key(self.make_estimator(params[trial.number]), len(splits[0].y_train))
            key = (len(splits[0].y_train), key) if key is not None else ("alone", trial.number)
            groups.setdefault(key, []).append(trial)
        outcomes: dict[int, TrialOutcome] = {}
        for group in groups.values():
            outcomes.update(self._train_group(group, params))
        return outcomes

    def _train_group(self, group: list[optuna.trial.Trial],
                     params: dict[int, dict[str, Any]]) -> dict[int, TrialOutcome]:
        """One group (a stack, or one trial alone) on every split: each member reports its
        epochs to the pruner and leaves when pruned, diverged or done; the outcome of every
        trial is built here."""
        outcomes: dict[int, TrialOutcome] = {}
        scores: dict[int, list[float]] = {t.number: [] for t in group}
        attrs: dict[int, dict[str, Any]] = {t.number: {} for t in group}
        fitted: dict[int, Any] = {}
        trained: dict[int, float] = {t.number: 0.0 for t in group}
        histories: dict[int, list[dict[str, Any]]] = {}  # the first split's epoch logs, for tracking
        cohort = {"cohort": len(group)} if len(group) > 1 else {}
        splits = self._splits_for(group[0])  # a group's trials share their stage (`_evaluate`)
        rows_scale = self._rows_scale(len(splits[0].y_train))

        def reporter_for(trial: optuna.trial.Trial, estimator: Any, fold: int) -> EpochReporter:
            def report(epoch: int, value: float) -> bool:
                if self.objectives is not None:  # Optuna prunes one objective only: the score's shadow
                    keep_going = self.objectives.report(trial, epoch, value)
                    self._show_progress()
                    return keep_going
                if self._promoted(trial):  # its curve on all rows is not for the pruner to compare
                    self._show_progress()
                    return True
                trial.report(value, epoch)
                self._show_progress()
                return not trial.should_prune()

            def out_of_time() -> bool:
                # What this member's epochs so far would take alone (a cohort member's share
                # of the cohort's time understates it).
                solo = reporter.epochs * float(getattr(estimator, "solo_epoch_seconds_", 0.0))
                return self._out_of_time(max(reporter.seconds, solo) * rows_scale, rows_scale > 1,
                                         self._promoted(trial))

            reporter = EpochReporter(self.epoch_key, self.epoch_sign, report if fold == 0 else (lambda e, v: True),
                                     out_of_time)
            return reporter

        # A cohort's epoch lasts K members' epochs: at the time the best trial's refit needs,
        # training stops mid-epoch rather than at the end of a long one.
        promoted = self._promoted(group[0])  # a promoted trial may use the time kept for a refit
        interrupt = None if self.deadline is None else (lambda: time.monotonic() >= self.trial_deadline(promoted))
        for fold, split in enumerate(splits):
            alive = [t for t in group if t.number not in outcomes]
            if not alive:
                break
            estimators = [self.make_estimator(params[t.number]) for t in alive]
            reporters = [reporter_for(t, est, fold) for t, est in zip(alive, estimators)]
            fold_started = time.perf_counter()
            try:
                errors = fit_population(estimators, split.fit_rows, split.y_train,
                                        validation_data=split.validation_data,
                                        callbacks=[[r] for r in reporters], interrupt=interrupt, kinds=self.kinds,
                                        sample_weight=split.w_train)
            except (ArchtuneError, ValueError) as exc:
                for t in alive:
                    outcomes[t.number] = TrialOutcome(TrialState.FAIL, attrs={
                        "fail_reason": f"{failure_kind(exc)}: {type(exc).__name__}: {exc}"})
                break
            # Time outside the epochs (preparing the data once) is shared equally.
            overhead = (time.perf_counter() - fold_started - sum(r.seconds for r in reporters)) / len(alive)
            for trial, est, reporter, error in zip(alive, estimators, reporters, errors):
                number = trial.number
                if fold == 0:
                    histories[number] = reporter.records
                trained[number] += reporter.seconds + max(0.0, overhead)
                if error is not None:
                    outcomes[number] = ended_outcome(error, trained[number], self.make_estimator, params[number], split)
                    if isinstance(error, Pruned):
                        outcomes[number].attrs.update(cohort)
                    continue
                value = float(self.score(est, split.X_val, split.y_val, split.w_val))
                if not math.isfinite(value):
                    outcomes[number] = TrialOutcome(TrialState.FAIL, attrs={
                        "fail_reason": f"diverged: validation score {value}"})
                    continue
                scores[number].append(value)
                if fold == 0:
                    fitted[number] = est
                    attrs[number] = {"best_epoch": int(est.best_epoch_), "epochs_run": int(len(est.history_)),
                                     "n_params": int(sum(p.numel() for p in est.module_.parameters())),
                                     **cohort, "diagnosis": diagnosis_summary(est, split)}
                    if getattr(est, "init_report_", None):  # started from a trained network: what was copied
                        attrs[number]["init_report"] = est.init_report_
                    if hasattr(est, "solo_epoch_seconds_"):
                        attrs[number]["solo_epoch_seconds"] = float(est.solo_epoch_seconds_)
                if reporter.stopped_by_budget:
                    attrs[number]["stopped_by_budget"] = True
        for trial in group:
            number = trial.number
            if number in outcomes:
                continue
            attrs[number]["fit_seconds"] = trained[number]
            if len(scores[number]) > 1:
                attrs[number]["fold_scores"] = scores[number]
            outcomes[number] = TrialOutcome(TrialState.COMPLETE, value=float(np.mean(scores[number])),
                                            attrs=attrs[number])
            self._keep_if_good(number, outcomes[number].value, fitted[number])
        for number, outcome in outcomes.items():
            outcome.history = histories.get(number, [])
        return outcomes

    @property
    def best_fitted(self) -> tuple[int, float, Any] | None:
        """(trial number, value, fitted network) of the best trial this process trained."""
        return self.kept[0] if self.kept else None

    def _keep_if_good(self, number: int, value: float, estimator: Any) -> None:
        """A completed trial's fitted network (its first split's), kept in memory when it is
        among the best ``keep``, so that the search can return it without refitting and
        ensemble it."""
        with self._best_lock:
            self.kept.append((number, value, estimator))
            self.kept.sort(key=lambda item: -item[1])  # stable: the earlier trial first on ties
            del self.kept[self.keep:]


__all__ = ["Search"]
