"""What a finished study says about the search itself: each trial's outcome over time, and
which hyperparameters mattered. Read by the report (archtune/report); kept here because only
archtune/tune imports Optuna.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

# Importances need a few completed trials whose parameters differ; with fewer, the evaluator's
# numbers are noise (or it raises), so the report leaves the section out.
MIN_TRIALS_FOR_IMPORTANCE = 3


def open_study(db: str | Path, study_name: str | None = None) -> optuna.Study | None:
    """The study stored in the SQLite file ``db`` (the only one there when ``study_name`` is
    None), or None when the file is absent or holds no study.

    Raises
    ------
    ValueError
        ``study_name`` is None and ``db`` holds more than one study.
    """
    db = Path(db)
    if not db.is_file():
        return None
    storage = f"sqlite:///{db.resolve()}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's experimental-feature warnings are not the user's
        summaries = optuna.get_all_study_summaries(storage)
        if not summaries:
            return None
        if study_name is None:
            if len(summaries) > 1:
                raise ValueError(f"{db}: holds {len(summaries)} studies; name one")
            study_name = summaries[0].study_name
        return optuna.load_study(study_name=study_name, storage=storage)


def maximizes(study: optuna.Study) -> bool:
    """Whether the study's score is maximised (archtune's scores are: accuracy, R^2...)."""
    return study.directions[0] == optuna.study.StudyDirection.MAXIMIZE


def trial_history(study: optuna.Study) -> list[dict[str, Any]]:
    """One record per finished trial, in trial order.

    Returns
    -------
    list of dict
        ``number`` (int), ``state`` ("COMPLETE", "PRUNED" or "FAIL"), ``value`` (the
        validation score of a completed trial, None otherwise), ``seconds`` (when the trial
        ended, in seconds since the first trial started; None when Optuna did not record it),
        ``best_so_far`` (the best completed value up to this trial, None before the first) and
        ``note`` (a failed trial's reason, or where a pruned one stopped).
    """
    trials = [t for t in study.get_trials(deepcopy=False)
              if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    origin = min(starts) if starts else None
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE  # the score: the first objective
    best: float | None = None
    rows = []
    for t in trials:
        value = float(t.values[0]) if t.state == TrialState.COMPLETE and t.values else None
        if value is not None:
            best = value if best is None else (max(best, value) if maximize else min(best, value))
        ended = t.datetime_complete
        note = ""
        if t.state == TrialState.FAIL:
            note = str(t.user_attrs.get("fail_reason", "failed"))
        elif t.state == TrialState.PRUNED and t.intermediate_values:
            note = f"pruned at epoch {max(t.intermediate_values)}"
        rows.append({"number": t.number, "state": t.state.name, "value": value,
                     "seconds": None if ended is None or origin is None else (ended - origin).total_seconds(),
                     "best_so_far": best, "note": note})
    return rows


def trial_curves(study: optuna.Study, top: int = 5) -> list[dict[str, Any]]:
    """The validation score per epoch (the values each trial reported to the pruner) of the
    ``top`` best completed trials, best first: ``{"number", "value", "epochs", "scores"}``."""
    done = [t for t in study.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE and t.values and t.intermediate_values]
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    done.sort(key=lambda t: sign * t.values[0])
    return [{"number": t.number, "value": float(t.values[0]), "epochs": sorted(t.intermediate_values),
             "scores": [float(t.intermediate_values[e]) for e in sorted(t.intermediate_values)]}
            for t in done[:top]]


def param_importances(study: optuna.Study) -> dict[str, Any] | None:
    """Hyperparameter importances of the completed trials, normalised to sum to 1.

    Computed by Optuna's PED-ANOVA evaluator (`optuna.importance.PedAnovaImportanceEvaluator`,
    Watanabe et al. 2023), falling back to fANOVA (`FanovaImportanceEvaluator`, Hutter et al.
    2014) when it fails; Optuna evaluates over the parameters every completed trial shares.

    Returns
    -------
    dict or None
        ``{"evaluator": name, "importances": {param: share}}`` with shares >= 0 summing to 1,
        most important first; None when there are fewer than
        ``MIN_TRIALS_FOR_IMPORTANCE`` completed trials, no parameter varies, or every
        evaluator fails (its error is not the user's to fix: the report leaves it out).
    """
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE:
        return None
    shared = set.intersection(*(set(t.params) for t in done))
    varying = [p for p in shared if len({repr(t.params[p]) for t in done}) > 1]
    if not varying:
        return None
    evaluators = [("PED-ANOVA", optuna.importance.PedAnovaImportanceEvaluator),
                  ("fANOVA", lambda: optuna.importance.FanovaImportanceEvaluator(seed=0))]
    for name, make in evaluators:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                raw = optuna.importance.get_param_importances(
                    study, evaluator=make(), params=sorted(varying), normalize=True,
                    # Several objectives: the importances for the score.
                    target=(lambda t: t.values[0]) if len(study.directions) > 1 else None)
        except Exception:  # a degenerate study (too few trials, constant values) for this evaluator
            continue
        total = float(sum(raw.values()))
        if total > 0 and all(v >= 0 for v in raw.values()):
            shares = {k: float(v) / total for k, v in raw.items()}
            return {"evaluator": name, "importances": dict(sorted(shares.items(), key=lambda kv: -kv[1]))}
    return None


def trial_diagnoses(study: optuna.Study) -> list[dict[str, Any]]:
    """The doctor's summary stored on each trained trial (its ``diagnosis`` user attribute):
    ``{"number", "codes", "worst"}`` for the trials that have one, in trial order."""
    out = []
    for t in study.get_trials(deepcopy=False):
        summary = t.user_attrs.get("diagnosis")
        if isinstance(summary, dict):
            out.append({"number": t.number, "codes": list(summary.get("codes") or []),
                        "worst": summary.get("worst")})
    return out


def lr_suggestions(study: optuna.Study) -> list[dict[str, Any]]:
    """The learning-rate finder's suggestion of each trial that ran it, and the rate the trial
    trained with: ``{"number", "suggestion", "learning_rate"}``."""
    return [{"number": t.number, "suggestion": float(t.user_attrs["lr_finder_suggestion"]),
             "learning_rate": t.user_attrs.get("learning_rate")}
            for t in study.get_trials(deepcopy=False) if t.user_attrs.get("lr_finder_suggestion") is not None]


__all__ = ["maximizes", "open_study", "param_importances", "trial_curves", "trial_diagnoses", "trial_history", "lr_suggestions"]
