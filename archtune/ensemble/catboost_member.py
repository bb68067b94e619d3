"""CatBoost on a table (Prokhorenkova et al. 2018), in a form an ensemble bundle can hold
safely: its trees in CatBoost's own binary model format (``.cbm``, read by CatBoost's
loader; no pickle, no code).

CatBoost's defaults are the strongest default model of TabArena's medium-size tables, above
tuned TabM and RealMLP there; the search runs it as a baseline and offers it to the
ensemble. The table is encoded as for LightGBM (`TableEncoding`): numeric columns as floats
(NaN missing: CatBoost's "Min" handling), date columns as their numeric features,
categorical columns as CatBoost categorical features (their level's index as a string;
missing and unseen levels are one level of their own, "nan"). A regression of several
outputs is one model with CatBoost's MultiRMSE loss.

Needs the ``catboost`` package: ``pip install "archtune[catboost]"``.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from archtune.ensemble.gbm import EARLY_STOPPING_ROUNDS, TableEncoding, known_class_codes
from archtune.train.threads import CELLS_PER_THREAD, idle_cores


def require_catboost() -> Any:
    try:
        import catboost
    except ImportError:
        raise ImportError('CatBoost members need the catboost package: pip install "archtune[catboost]"') from None
    return catboost


def _pool(encoding: TableEncoding, frame: pd.DataFrame, label: Any = None, weight: Any = None) -> Any:
    """The table as a CatBoost Pool: categorical columns as strings of their level index."""
    catboost = require_catboost()
    matrix = encoding.transform(frame)
    categorical = encoding.categorical_indices
    if not categorical:
        return catboost.Pool(matrix, label=label, weight=weight)
    data = pd.DataFrame(matrix)
    for j in categorical:
        codes = data[j].to_numpy()
        data[j] = np.where(np.isnan(codes), "nan", np.nan_to_num(codes).astype("int64").astype(str))
    return catboost.Pool(data, label=label, weight=weight, cat_features=categorical)


class _StopAtDeadline:
    """A CatBoost callback (``after_iteration`` returning False stops boosting) that ends the
    fit once ``deadline`` passes, and marks the member's ``stopped_at_deadline_``."""

    def __init__(self, member: Any, deadline: float):
        self.member, self.deadline = member, deadline

    def after_iteration(self, info: Any) -> bool:
        if time.monotonic() >= self.deadline:
            self.member.stopped_at_deadline_ = True
            return False
        return True


class _CatBoostTable(BaseEstimator):
    """CatBoost on a pandas table. ``kinds`` are the columns' kinds
    (`archtune.data.kinds.infer_column_kinds`); ``random_state`` seeds it; ``params`` are
    CatBoost's parameters (``iterations``, ``learning_rate``, ``depth``, ``l2_leaf_reg``,
    ...; None: CatBoost's defaults)."""

    task = "regression"
    member_kind = "catboost"  # its kind in ensembles and their bundles

    def __init__(self, kinds: dict[str, str] | None = None, random_state: int = 0, params: dict | None = None):
        self.kinds = kinds
        self.random_state = random_state
        self.params = params

    def fit(self, X: pd.DataFrame, y: Any, sample_weight: Any = None, eval_set: tuple[Any, Any] | None = None,
            eval_weight: Any = None, deadline: float | None = None) -> "_CatBoostTable":
        """Fit on the table (``sample_weight``: one weight per row, or None); ``y`` of shape
        (n_samples,), or (n_samples, n_outputs) for a regression of several outputs. With
        ``eval_set`` = (X_val, y_val), boosting stops after `EARLY_STOPPING_ROUNDS` rounds
        without a better validation loss and keeps the best round (``best_iterations_``). With
        ``deadline`` (a `time.monotonic` value), boosting also stops once it passes (keeping the
        best round so far with ``eval_set``); ``stopped_at_deadline_`` says whether it did."""
        catboost = require_catboost()
        self.encoding_ = TableEncoding.fit(X, self.kinds or {})
        y = np.asarray(y)
        cells = len(X) * max(1, len(self.encoding_.columns))
        settings: dict[str, Any] = {"random_seed": self.random_state, "verbose": False, "allow_writing_files": False,
                                    "thread_count": max(1, min(cells // CELLS_PER_THREAD, idle_cores())),
                                    **(self.params or {})}
        if self.task == "classification":
            self.classes_, target = np.unique(y, return_inverse=True)
            model = catboost.CatBoostClassifier(**settings)
        else:
            target = y.astype("float64")
            if y.ndim == 2:
                settings["loss_function"] = "MultiRMSE"
            model = catboost.CatBoostRegressor(**settings)
        extra: dict[str, Any] = {}
        if eval_set is not None:
            X_val, y_val = eval_set[0], np.asarray(eval_set[1])
            weight = None if eval_weight is None else np.asarray(eval_weight, dtype="float64")
            if self.task == "classification":
                known, y_val = known_class_codes(self.classes_, y_val)
                X_val, weight = X_val[known], None if weight is None else weight[known]
            extra = {"eval_set": _pool(self.encoding_, X_val, y_val, weight),
                     "early_stopping_rounds": EARLY_STOPPING_ROUNDS, "use_best_model": True}
        self.stopped_at_deadline_ = False
        if deadline is not None:
            extra["callbacks"] = [_StopAtDeadline(self, deadline)]
        model.fit(_pool(self.encoding_, X, target, sample_weight), **extra)
        self.model_ = model
        self.best_iterations_ = [int(model.tree_count_)]
        return self

    def refit_params(self, scale: float) -> dict:
        """``params`` for a refit on more rows: the trees early stopping kept, times ``scale``."""
        params = dict(self.params or {})
        if hasattr(self, "best_iterations_"):
            params["iterations"] = max(1, round(self.best_iterations_[0] * scale))
        return params

    def _raw(self, X: pd.DataFrame, kind: str) -> np.ndarray:
        return np.asarray(self.model_.predict(_pool(self.encoding_, X), prediction_type=kind), dtype="float64")

    def model_bytes(self) -> bytes:
        """The model in CatBoost's binary format (``.cbm``)."""
        handle, path = tempfile.mkstemp(suffix=".cbm")
        os.close(handle)
        try:
            self.model_.save_model(path, format="cbm")
            with open(path, "rb") as file:
                return file.read()
        finally:
            os.unlink(path)

    @classmethod
    def from_bytes(cls, data: bytes, encoding: TableEncoding, classes: np.ndarray | None = None) -> "_CatBoostTable":
        """The model of `model_bytes` (raises CatBoost's error for bytes that are no model)."""
        catboost = require_catboost()
        model = cls()
        model.model_ = (catboost.CatBoostClassifier if classes is not None else catboost.CatBoostRegressor)()
        model.model_.load_model(blob=data)
        model.encoding_ = encoding
        if classes is not None:
            model.classes_ = classes
        return model


class CatBoostTableClassifier(ClassifierMixin, _CatBoostTable):
    task = "classification"

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Array of shape (n_samples, n_classes)."""
        raw = self._raw(X, "Probability")
        if raw.ndim == 1:  # one class in training
            raw = raw[:, None]
        return raw

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class CatBoostTableRegressor(RegressorMixin, _CatBoostTable):
    task = "regression"

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Array of shape (n_samples,), or (n_samples, n_outputs) when fitted on several."""
        return self._raw(X, "RawFormulaVal")


__all__ = ["CatBoostTableClassifier", "CatBoostTableRegressor", "require_catboost"]
