"""The leaderboard of a search: every trial, baseline, bag and ensemble, best first.

Built from what the study stores (trials, their user attributes, the baselines' records, the
bag's and the ensemble's records, the intervals), so that `archtune leaderboard` rebuilds it
from a run's study alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pandas as pd

from archtune.tune.objectives import COST_ATTR, score_of
from archtune.tune.pareto import front_column
from archtune.tune.space import AUTO_LR_SCALE_PARAM
from archtune.tune.trial_records import trial_config

TrialState = optuna.trial.TrialState


# The leaderboard's note of the portfolio's gradient-boosting models (the verdict reads it).
GRADIENT_BOOSTING_NOTE = "gradient boosting"


def _rows_note(trial: optuna.trial.FrozenTrial) -> str:
    """A staged search's trial (archtune.tune.halving): the training rows it trained on, and the
    first-stage trial a promoted one repeats."""
    rows = trial.user_attrs.get("train_rows")
    if rows is None:
        return ""
    promoted = trial.user_attrs.get("promoted_from")
    return f"; {rows} rows" + (f", promoted from #{promoted}" if promoted is not None else "")


def leaderboard(study: optuna.Study, baselines: list[Any]) -> pd.DataFrame:
    """Every trial and every baseline, best first: model, parameters, validation score, fit
    time, parameter count, state. A multi-objective study adds ``latency_ms`` (with that
    objective) and ``pareto`` (True for the trials on the Pareto front of score and cost)."""
    rows: list[dict[str, Any]] = []
    objectives = study.user_attrs.get("objectives") or ["score"]
    cost = COST_ATTR[objectives[1]] if len(study.directions) > 1 and len(objectives) > 1 else None
    intervals = study.user_attrs.get("intervals") or {}
    source = study.user_attrs.get("init_from")  # every trial started from this network: its family
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING or t.state == TrialState.WAITING:
            continue
        config = trial_config(t)
        value = score_of(t)
        if t.state == TrialState.PRUNED and t.intermediate_values:
            last = max(t.intermediate_values)
            note = f"pruned at epoch {last} (score then {t.intermediate_values[last]:.4g})"
        elif t.state == TrialState.FAIL:
            note = str(t.user_attrs.get("fail_reason", "failed"))
        else:
            note = f"best epoch {t.user_attrs.get('best_epoch')}"
            if t.user_attrs.get("stopped_by_budget"):
                note += " (stopped at the time budget)"
        note += _rows_note(t)
        # The searched parameters, with the values the trial trained with.
        searched = [("learning_rate" if name == AUTO_LR_SCALE_PARAM else name) for name in t.params]
        shown = {name: config.get(name, t.params.get(name)) for name in dict.fromkeys(searched)}
        rows.append({
            "model": network_name(t.number, source["arch"] if source else config.get("arch", "mlp")),
            "params": _describe_params(shown),
            "val_score": value,
            "fit_seconds": t.user_attrs.get("fit_seconds"),
            "n_params": t.user_attrs.get("n_params"),
            **({"latency_ms": t.user_attrs.get("latency_ms")} if cost == "latency_ms" else {}),
            "state": t.state.name,
            "note": note,
        })
    for b in baselines:
        b = b if isinstance(b, dict) else b.__dict__
        error = b.get("error")
        state = "BASELINE" if error is None else "SKIPPED" if error.startswith("skipped") else "FAIL"
        rows.append({"model": b["name"], "params": b["params"], "val_score": b["score"] if error is None else None,
                     "fit_seconds": b["fit_seconds"], "n_params": None, "state": state,
                     "note": error or (GRADIENT_BOOSTING_NOTE if b.get("kind") in ("lightgbm", "catboost")
                                       else "classical baseline"),
                     **({"latency_ms": b.get("latency_ms")} if cost == "latency_ms" else {})})
    bag = study.user_attrs.get("bag")
    if bag:
        rows.append({"model": bag["name"], "params": "", "val_score": bag["oof_score"], "fit_seconds": None,
                     "n_params": None, "state": "BAG", "note": "out-of-fold score on all rows"})
    ensemble = study.user_attrs.get("ensemble")
    if ensemble:
        gain = ensemble.get("gain")
        held_out = "" if gain is None else f"; {gain:+.4f} vs {ensemble['best_single']} on rows it was not selected on"
        added = ensemble.get("networks_gain")
        if added is not None:
            held_out += f"; networks add {added:+.4f} to an ensemble without them"
        rows.append({"model": f"ensemble ({ensemble['summary']})",
                     "params": ", ".join(f"{m['name']}: {m['weight']:.2f}" for m in ensemble["members"]),
                     "val_score": ensemble["val_score"], "fit_seconds": None, "n_params": None,
                     "state": "ENSEMBLE", "note": ("used" if ensemble["used"] else "not used") + held_out
                     + (f"; the best single model, {ensemble['alone']}, predicts" if ensemble.get("alone") else "")})
    for row in rows:  # 95% bootstrap intervals of the validation score, where the search kept predictions
        scored = row["state"] in ("COMPLETE", "BASELINE") and row["val_score"] is not None
        low, high = intervals.get(row["model"], (None, None)) if scored else (None, None)
        row["val_low"], row["val_high"] = low, high
    frame = pd.DataFrame(rows, columns=["model", "params", "val_score", "val_low", "val_high", "fit_seconds",
                                        "n_params", *(["latency_ms"] if cost == "latency_ms" else []), "state",
                                        "note"])
    if cost is not None:  # several objectives: the trials on the front of score and cost
        frame.insert(frame.columns.get_loc("state"), "pareto", front_column(frame, cost))
    # Scored rows best first, then pruned trials, then failures.
    order = frame["state"].map({"PRUNED": 1, "SKIPPED": 2, "FAIL": 3}).fillna(0)
    frame = (frame.assign(_order=order).sort_values(["_order", "val_score"], ascending=[True, False],
                                                    na_position="last", kind="stable")
             .drop(columns="_order").reset_index(drop=True))
    frame.index = frame.index + 1
    return frame


def network_name(number: int, arch: str) -> str:
    """A trial's network as the leaderboard and the ensemble name it: "network #3 (mlp)"."""
    return f"network #{number} ({arch})"


def _describe_params(params: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


def ensemble_record(choice: Any) -> dict[str, Any]:
    """The ensemble's leaderboard entry, as the study stores it (JSON)."""
    ensemble = choice.ensemble
    alone = choice.final.members[0].name if choice.final is not None and not choice.used else None
    return {"members": [{"name": m.name, "weight": float(w)} for m, w in zip(ensemble.members, ensemble.weights)],
            "val_score": float(ensemble.val_score), "used": bool(choice.used), "alone": alone,
            "gain": float(choice.gain) if np.isfinite(choice.gain) else None,
            "networks_gain": float(choice.networks_gain) if np.isfinite(choice.networks_gain) else None,
            "best_single": choice.best_single, "summary": ensemble.summary()}


__all__ = ["ensemble_record", "leaderboard", "network_name"]
