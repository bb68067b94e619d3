"""What a trial leaves in the study: its outcome (state, value, user attributes, epoch logs),
the reason it failed, its diagnosis, its parameter count, and the configuration it trained
with (`trial_config`, read back by the leaderboard, the refit and the report).

`archtune.tune.tuner.Search` builds a `TrialOutcome` for every trial it asks and tells it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from archtune.errors import DeadNetworkError, TrainingDivergedError
from archtune.transfer.reading import read_source
from archtune.tune.data import Split
from archtune.tune.epochs import Pruned

TrialState = optuna.trial.TrialState


@dataclass
class TrialOutcome:
    state: TrialState
    value: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    intermediate: dict[int, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # its first split's epoch logs


def ended_outcome(error: BaseException, seconds: float, make_estimator: Callable[[dict[str, Any]], Any],
                  params: dict[str, Any], split: Split) -> TrialOutcome:
    """The outcome of a trial that training ended early: pruned, diverged or invalid."""
    if isinstance(error, Pruned):
        return TrialOutcome(TrialState.PRUNED, attrs={
            "pruned_at_epoch": error.epoch, "fit_seconds": seconds,
            "n_params": config_n_params(make_estimator, params, split)})
    if isinstance(error, TrainingDivergedError):
        return TrialOutcome(TrialState.FAIL, attrs={"fail_reason": f"diverged: {error}", "fit_seconds": seconds})
    if isinstance(error, DeadNetworkError):
        return TrialOutcome(TrialState.FAIL, attrs={"fail_reason": f"dead: {error}", "fit_seconds": seconds})
    return TrialOutcome(TrialState.FAIL, attrs={"fail_reason": f"invalid: {type(error).__name__}: {error}",
                                                "fit_seconds": seconds})


def failure_kind(exc: BaseException) -> str:
    """The first word of a failed trial's reason: diverged, dead or invalid."""
    return ("diverged" if isinstance(exc, TrainingDivergedError) else "dead" if isinstance(exc, DeadNetworkError)
            else "invalid")


def diagnosis_summary(estimator: Any, split: Split) -> dict[str, Any]:
    """The doctor's findings on a trained trial (its learning curves, and its network probed on
    the validation rows), compact enough for the trial's user attributes."""
    from archtune.doctor.diagnose import diagnose_fitted

    try:
        return diagnose_fitted(estimator, split.X_val, split.y_val).summary()
    except Exception as exc:  # a diagnosis must never fail the trial it describes
        return {"codes": [], "worst": None, "error": f"{type(exc).__name__}: {exc}"}


def config_n_params(make_estimator: Callable[[dict[str, Any]], Any], params: dict[str, Any],
                    split: Split) -> int | None:
    """Parameter count of a configuration, without training it (for pruned trials)."""
    try:
        from archtune.models import InputSpec, build_model

        est = make_estimator(params)
        source = est.get_params()["init_from"]
        if source is not None:  # a fit from a trained network has its architecture and inputs
            source = read_source(source)
            net = build_model(source.model_config, source.input_spec, 1, "regression")
            return int(sum(p.numel() for p in net.parameters()))
        width = split.X_train.shape[1]
        net = build_model(est.model_config(), InputSpec(width), 1, "regression")
        return int(sum(p.numel() for p in net.parameters()))
    except Exception:
        return None


def trial_config(trial: Any) -> dict[str, Any]:
    """The estimator parameters a trial trained with (its ``config`` user attribute); for a
    trial of a study saved before configurations were stored, its sampled parameters."""
    from archtune.bundles.format import params_from_json

    config = trial.user_attrs.get("config")
    if config is None:
        return {**({"arch": trial.user_attrs["arch"]} if "arch" in trial.user_attrs else {}), **trial.params}
    return params_from_json(dict(config))


__all__ = ["TrialOutcome", "config_n_params", "diagnosis_summary", "ended_outcome", "failure_kind", "trial_config"]
