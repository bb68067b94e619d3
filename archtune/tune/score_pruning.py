"""Pruning on the score alone in a multi-objective study.

Optuna refuses ``trial.report`` and ``should_prune`` when a study has several objectives (no
pruner defines a rule over several intermediate values). Here only the score is a
multi-fidelity objective: a network's size and latency are known before it trains. So each
trial of the multi-objective study gets a shadow trial in a single-objective in-memory study
that holds the same pruner; the score is reported there and the pruner's own rule (median,
successive halving, Hyperband) decides, exactly as it would in a one-objective search.

The shadow starts with every finished trial of the real study (their per-epoch scores are
written to the real trials too, through the storage's public API, and the pruner's rung
bookkeeping is kept in a user attribute), so a resumed study, or a trial finished by another
process, counts for the pruner as in a one-objective search.
"""

from __future__ import annotations

import threading

import optuna

TrialState = optuna.trial.TrialState
# The pruner's per-trial bookkeeping (successive halving's rungs), kept on the real trial.
RUNGS_ATTR = "score_pruner_attrs"


class ScorePruning:
    """A single-objective shadow of a multi-objective study, for its pruner.

    Parameters
    ----------
    study : optuna.Study
        The multi-objective study; its first objective is the score (maximised).
    pruner : optuna.pruners.BasePruner
        What decides; it sees the shadow study only.
    """

    def __init__(self, study: optuna.Study, pruner: optuna.pruners.BasePruner):
        self.study = study
        self.shadow = optuna.create_study(study_name=study.study_name, direction="maximize", pruner=pruner,
                                          sampler=optuna.samplers.RandomSampler(seed=0))
        self._lock = threading.Lock()
        self._mirrored: set[int] = set()  # real trial numbers the shadow holds
        self._live: dict[int, optuna.trial.Trial] = {}  # real trial number -> its running shadow trial
        self._ids: dict[int, int] = {}  # real trial number -> its storage id
        self._study_id: int | None = None

    def start(self, trial: optuna.trial.Trial) -> None:
        """Open the shadow of a trial about to train (after bringing in every finished trial)."""
        with self._lock:
            self._mirror_finished()
            self._live[trial.number] = self.shadow.ask()
            self._mirrored.add(trial.number)

    def report(self, trial: optuna.trial.Trial, epoch: int, value: float) -> bool:
        """Record the score at ``epoch`` on the trial and its shadow; whether to keep training."""
        storage = trial.storage
        trial_id = self._trial_id(trial)
        storage.set_trial_intermediate_value(trial_id, epoch, float(value))
        shadow = self._live.get(trial.number)
        if shadow is None:
            return True
        shadow.report(float(value), epoch)
        return not shadow.should_prune()

    def finish(self, trial: optuna.trial.Trial, state: TrialState, value: float | None) -> None:
        """Close the trial's shadow with the trial's outcome, and keep the pruner's bookkeeping
        on the real trial."""
        with self._lock:
            shadow = self._live.pop(trial.number, None)
        if shadow is None:
            return
        if state == TrialState.COMPLETE and value is not None:
            frozen = self.shadow.tell(shadow, float(value))
        else:
            frozen = self.shadow.tell(shadow, state=state if state == TrialState.PRUNED else TrialState.FAIL)
        if frozen.system_attrs:
            trial.set_user_attr(RUNGS_ATTR, dict(frozen.system_attrs))

    def _mirror_finished(self) -> None:
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            if t.number in self._mirrored:
                continue
            self._mirrored.add(t.number)
            score = t.values[0] if t.state == TrialState.COMPLETE and t.values else None
            if score is None and t.state == TrialState.COMPLETE:
                continue
            self.shadow.add_trial(optuna.trial.create_trial(
                state=t.state, value=score, intermediate_values=dict(t.intermediate_values),
                system_attrs=dict(t.user_attrs.get(RUNGS_ATTR) or {}), params={}, distributions={}))

    def _trial_id(self, trial: optuna.trial.Trial) -> int:
        """The storage's id of a trial, from the storage's public look-ups (cached)."""
        number = trial.number
        if number not in self._ids:
            storage = trial.storage
            if self._study_id is None:
                self._study_id = storage.get_study_id_from_name(self.study.study_name)
            self._ids[number] = storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
        return self._ids[number]


__all__ = ["ScorePruning"]
