"""The AutoML tools a user would pick instead of archtune, run by bench/search_quality.py on the
same split, seed, thread count and wall-clock budget (issue 31).

    autogluon       AutoGluon-Tabular, presets="medium_quality", time_limit=budget
    flaml           FLAML AutoML, time_budget=budget
    catboost        CatBoost, default parameters (no budget: it trains to its default 1000 trees)
    lightgbm_tuned  LightGBM tuned by a plain Optuna loop (TPE) within the budget: each trial with
                    early stopping (50 rounds) on 20% of the training rows, the best refit on all
                    of them with its best round count scaled to the rows
    realmlp         pytabkit's RealMLP-TD, default parameters (no budget)

None is an archtune dependency: they live in the environment ``bench/tools_env.sh`` creates
(.bench-tools/), with archtune installed there too, so one run measures every tool:

    bash bench/tools_env.sh
    .bench-tools/bin/python bench/search_quality.py --tools archtune,autogluon,flaml,lightgbm_tuned,catboost,realmlp
"""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any, Callable

import numpy as np
import pandas as pd

OTHER_TOOLS = ("autogluon", "flaml", "catboost", "lightgbm_tuned", "realmlp")
OTHER_TOOL_NAMES = {
    "autogluon": "AutoGluon medium_quality",
    "flaml": "FLAML",
    "catboost": "CatBoost defaults",
    "lightgbm_tuned": "LightGBM + Optuna loop",
    "realmlp": "RealMLP-TD defaults",
}
# Tools that take the budget (the others train to their defaults' end).
BUDGETED = ("autogluon", "flaml", "lightgbm_tuned")


def run_other(tool: str, data: Any, budget: float, seed: int, threads: int, result: Callable[..., Any]) -> Any:
    """Run ``tool`` on ``data`` (bench/search_quality.py's Data): a Result with the test rows'
    predictions, or the error that stopped it. ``result(dataset, tool)`` makes the Result."""
    res = result(data.name, tool)
    started, cpu = time.perf_counter(), time.process_time()
    try:
        predictions, extra = RUNNERS[tool](data, budget, seed, threads)
    except Exception as exc:  # a tool that fails is reported, not fatal
        res.error = f"{type(exc).__name__}: {exc}"
        return res
    res.wall_seconds = res.search_seconds = time.perf_counter() - started
    res.cpu_seconds = time.process_time() - cpu
    res.predictions = np.asarray(predictions)
    res.extra = extra
    return res


def _autogluon(data: Any, budget: float, seed: int, threads: int) -> tuple[np.ndarray, dict]:
    from autogluon.tabular import TabularPredictor

    folder = tempfile.mkdtemp(prefix="autogluon-")
    try:
        train = data.X_train.copy()
        train["__target__"] = data.y_train
        problem = "regression" if data.task == "regression" else (
            "binary" if len(np.unique(data.y_train)) == 2 else "multiclass")
        predictor = TabularPredictor("__target__", problem_type=problem, path=folder, verbosity=0)
        predictor.fit(train, presets="medium_quality", time_limit=budget,
                      num_cpus=threads, ag_args_fit={"num_cpus": threads})
        best = predictor.model_best
        return predictor.predict(data.X_test).to_numpy(), {"model_best": str(best),
                                                           "models": len(predictor.model_names())}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _flaml(data: Any, budget: float, seed: int, threads: int) -> tuple[np.ndarray, dict]:
    from flaml import AutoML

    automl = AutoML()
    automl.fit(data.X_train, data.y_train, task="regression" if data.task == "regression" else "classification",
               time_budget=budget, seed=seed, n_jobs=threads, verbose=0)
    return automl.predict(data.X_test), {"best_estimator": automl.best_estimator}


def _catboost(data: Any, budget: float, seed: int, threads: int) -> tuple[np.ndarray, dict]:
    import catboost

    cls = catboost.CatBoostRegressor if data.task == "regression" else catboost.CatBoostClassifier
    model = cls(random_seed=seed, thread_count=threads, verbose=False, allow_writing_files=False)
    model.fit(data.X_train, data.y_train)
    prediction = model.predict(data.X_test)
    return np.asarray(prediction).reshape(len(data.X_test)), {"trees": int(model.tree_count_)}


def _lightgbm_tuned(data: Any, budget: float, seed: int, threads: int) -> tuple[np.ndarray, dict]:
    import lightgbm as lgb
    import optuna
    from sklearn.model_selection import train_test_split

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    classify = data.task == "classification"
    cls = lgb.LGBMClassifier if classify else lgb.LGBMRegressor
    fit, stop = train_test_split(np.arange(len(data.X_train)), test_size=0.2, random_state=seed,
                                 stratify=data.y_train if classify else None)
    X_fit, X_stop = data.X_train.iloc[fit], data.X_train.iloc[stop]
    y_fit, y_stop = data.y_train[fit], data.y_train[stop]
    deadline = time.monotonic() + budget * 0.9  # the refit on all rows takes the rest

    def objective(trial: optuna.Trial) -> float:
        params = {"learning_rate": trial.suggest_float("learning_rate", 0.005, 0.2, log=True),
                  "num_leaves": trial.suggest_int("num_leaves", 8, 256, log=True),
                  "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
                  "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
                  "subsample": trial.suggest_float("subsample", 0.5, 1.0), "subsample_freq": 1,
                  "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True)}
        model = cls(n_estimators=5000, random_state=seed, n_jobs=threads, verbose=-1, **params)
        model.fit(X_fit, y_fit, eval_set=[(X_stop, y_stop)], callbacks=[lgb.early_stopping(50, verbose=False)])
        trial.set_user_attr("rounds", int(model.best_iteration_ or model.n_estimators))
        prediction = model.predict(X_stop)
        return float(np.mean(prediction != y_stop)) if classify else float(np.sqrt(np.mean((prediction - y_stop) ** 2)))

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    while time.monotonic() < deadline:
        study.optimize(objective, n_trials=1)
    best = study.best_trial
    rounds = max(1, round(best.user_attrs["rounds"] * len(data.X_train) / len(fit)))
    model = cls(n_estimators=rounds, random_state=seed, n_jobs=threads, verbose=-1, subsample_freq=1, **best.params)
    model.fit(data.X_train, data.y_train)
    return model.predict(data.X_test), {"trials": len(study.trials), "best": best.params, "rounds": rounds}


def _realmlp(data: Any, budget: float, seed: int, threads: int) -> tuple[np.ndarray, dict]:
    import torch
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    torch.set_num_threads(threads)
    cls = RealMLP_TD_Regressor if data.task == "regression" else RealMLP_TD_Classifier
    model = cls(random_state=seed, n_threads=threads, device="cpu", verbosity=0)
    model.fit(pd.DataFrame(data.X_train), data.y_train)
    return np.asarray(model.predict(pd.DataFrame(data.X_test))).reshape(len(data.X_test)), {}


RUNNERS: dict[str, Callable[..., tuple[np.ndarray, dict]]] = {
    "autogluon": _autogluon, "flaml": _flaml, "catboost": _catboost, "lightgbm_tuned": _lightgbm_tuned,
    "realmlp": _realmlp,
}

__all__ = ["BUDGETED", "OTHER_TOOLS", "OTHER_TOOL_NAMES", "run_other"]
