"""LightGBM on a table, in a form an ensemble bundle can hold safely: default parameters, or a
configuration of the search's portfolio (archtune.tune.portfolio) with early stopping on
validation rows.

The table is encoded with plain JSON state (numeric columns as floats, date columns as their
numeric features, categorical columns as indices into their training levels, unseen and
missing values as NaN, which LightGBM routes natively) and the fitted trees are kept in
LightGBM's own text model format: loading parses text, it never executes code. A regression
target of several columns gets one booster per column (LightGBM fits one output each).
"""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from archtune.data.dates import DATE_FEATURES, date_features
from archtune.data.values import plain_labels, plain_numbers, to_datetimes
from archtune.train.threads import CELLS_PER_THREAD, idle_cores


def require_lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError:  # pragma: no cover - the extra is installed in CI
        raise ImportError("LightGBM members need the lightgbm package (an archtune dependency): "
                          "pip install lightgbm") from None
    return lightgbm


class TableEncoding:
    """Columns of a table as LightGBM's float matrix: numeric columns as numbers, date columns
    as their numeric features (`archtune.data.dates.DATE_FEATURES`, elapsed days counted from
    1970: trees do not care where it starts), categorical ones as level indices; text,
    image-path and entirely missing columns are left out."""

    def __init__(self, columns: list[str], levels: dict[str, list[str]], dates: list[str] | None = None):
        self.columns = columns
        self.levels = levels  # categorical column -> its training levels, as strings
        self.dates = list(dates or [])  # date columns (each gives len(DATE_FEATURES) features)

    @classmethod
    def fit(cls, frame: pd.DataFrame, kinds: dict[str, str]) -> "TableEncoding":
        columns = [str(c) for c in frame.columns
                   if kinds.get(str(c), "numeric") in ("numeric", "categorical", "date")]
        levels = {}
        for name in columns:
            if kinds.get(name, "numeric") == "categorical":
                labels = plain_labels(frame[name])  # a category column's values, not its categories
                levels[name] = sorted(set(labels[~pd.isna(labels)].tolist()))
        return cls(columns, levels, [name for name in columns if kinds.get(name) == "date"])

    def _widths(self) -> list[int]:
        dates = set(self.dates)
        return [len(DATE_FEATURES) if name in dates else 1 for name in self.columns]

    @property
    def categorical_indices(self) -> list[int]:
        """Positions of the categorical columns in the encoded matrix."""
        starts = np.cumsum([0, *self._widths()])
        return [int(starts[i]) for i, name in enumerate(self.columns) if name in self.levels]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Array of shape (n_samples, n_features), float64, NaN for missing or unseen (the
        columns read by `archtune.data.values.plain_numbers` / `plain_labels`: the same
        matrix whatever their dtype)."""
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
        missing = [name for name in self.columns if name not in frame.columns]
        if missing:
            from archtune.errors import DataError

            raise DataError(f"X is missing column(s) {missing[:5]} that the LightGBM member was trained on")
        dates = set(self.dates)
        blocks = []
        for name in self.columns:
            column = frame[name]
            if name in self.levels:
                index = {level: float(i) for i, level in enumerate(self.levels[name])}
                labels = plain_labels(column)
                blocks.append(np.array([np.nan if isinstance(label, float) else index.get(label, np.nan)
                                        for label in labels], dtype="float64")[:, None])
            elif name in dates:
                blocks.append(date_features(to_datetimes(column), DATE_FEATURES, 0.0))
            else:
                blocks.append(plain_numbers(column)[:, None])
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "levels": self.levels, **({"dates": self.dates} if self.dates else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TableEncoding":
        return cls([str(c) for c in data["columns"]], {str(k): [str(v) for v in vs] for k, vs in data["levels"].items()},
                   [str(c) for c in data.get("dates", [])])


# Rounds without improvement of the validation loss before boosting stops (AutoGluon and
# pytabkit's LightGBM use 50 as well).
EARLY_STOPPING_ROUNDS = 50


@functools.cache
def _new_eval_arguments() -> bool:
    """Whether LightGBM's fit takes eval_X/eval_y (4.7 renamed eval_set, and warns on it)."""
    return "eval_X" in inspect.signature(require_lightgbm().LGBMModel.fit).parameters


def known_class_codes(classes: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the validation rows whose label is one of the training ``classes``, their codes
    into ``classes``): a class unseen in training cannot be in an early-stopping loss."""
    index = {c: i for i, c in enumerate(classes.tolist())}
    known = np.array([v in index for v in y_val.tolist()], dtype=bool)
    return known, np.array([index[v] for v in y_val[known].tolist()], dtype="int64")


class _LightGBMTable(BaseEstimator):
    """LightGBM on a pandas table. ``kinds`` are the columns' kinds
    (`archtune.data.kinds.infer_column_kinds`); ``random_state`` seeds it; ``params`` are
    LightGBM's scikit-learn parameters (``n_estimators``, ``learning_rate``, ``num_leaves``,
    ...; None: LightGBM's defaults)."""

    task = "regression"
    member_kind = "lightgbm"  # its kind in ensembles and their bundles

    def __init__(self, kinds: dict[str, str] | None = None, random_state: int = 0, params: dict | None = None):
        self.kinds = kinds
        self.random_state = random_state
        self.params = params

    def fit(self, X: pd.DataFrame, y: Any, sample_weight: Any = None, eval_set: tuple[Any, Any] | None = None,
            eval_weight: Any = None, deadline: float | None = None) -> "_LightGBMTable":
        """Fit on the table (``sample_weight``: one weight per row, or None). A regression
        ``y`` of shape (n_samples, n_outputs) fits one booster per output (``boosters_``);
        otherwise one booster (``booster_``). With ``eval_set`` = (X_val, y_val), boosting
        stops after `EARLY_STOPPING_ROUNDS` rounds without a better validation loss and keeps
        the best round (``best_iterations_``: one per booster). With ``deadline`` (a
        `time.monotonic` value), boosting also stops once it passes, keeping the best round so
        far; ``stopped_at_deadline_`` says whether it did."""
        lgb = require_lightgbm()
        for stale in ("booster_", "boosters_"):  # of an earlier fit
            self.__dict__.pop(stale, None)
        self.encoding_ = TableEncoding.fit(X, self.kinds or {})
        matrix = self.encoding_.transform(X)
        y = np.asarray(y)
        # LightGBM's OpenMP threads wait for each other like torch's: one thread for a table
        # of under a million cells, else up to the idle cores (archtune.train.threads).
        threads = max(1, min(matrix.size // CELLS_PER_THREAD, idle_cores()))
        categorical = self.encoding_.categorical_indices or "auto"
        settings = {"random_state": self.random_state, "verbose": -1, "n_jobs": int(threads), **(self.params or {})}
        validation = None if eval_set is None else (self.encoding_.transform(eval_set[0]), np.asarray(eval_set[1]))
        stopping = [lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)] if validation is not None else []
        self.stopped_at_deadline_ = False
        if deadline is not None:
            stopping.append(self._deadline_callback(deadline))

        def fitted(model: Any, target: np.ndarray, val_target: Any) -> Any:
            extra: dict[str, Any] = {}
            if validation is not None:
                extra = ({"eval_X": (validation[0],), "eval_y": (val_target,)} if _new_eval_arguments()
                         else {"eval_set": [(validation[0], val_target)]})
                if eval_weight is not None:
                    extra["eval_sample_weight"] = [np.asarray(eval_weight)]
            model.fit(matrix, target, sample_weight=sample_weight, categorical_feature=categorical,
                      callbacks=stopping or None, **extra)
            return model.booster_

        if self.task == "classification":
            self.classes_, codes = np.unique(y, return_inverse=True)
            val_codes = None
            if validation is not None:
                known, val_codes = known_class_codes(self.classes_, validation[1])
                validation = (validation[0][known], validation[1][known])
                if eval_weight is not None:
                    eval_weight = np.asarray(eval_weight)[known]
            self.booster_ = fitted(lgb.LGBMClassifier(**settings), codes, val_codes)
        elif y.ndim == 2:  # several outputs: one booster each, as scikit-learn's MultiOutputRegressor
            self.boosters_ = [fitted(lgb.LGBMRegressor(**settings), y[:, j].astype("float64"),
                                     None if validation is None else validation[1][:, j].astype("float64"))
                              for j in range(y.shape[1])]
        else:
            self.booster_ = fitted(lgb.LGBMRegressor(**settings), y.astype("float64"),
                                   None if validation is None else validation[1].astype("float64"))
        # The rounds kept: early stopping's best (predict and the saved text use it), else all.
        self.best_iterations_ = [int(b.best_iteration or b.current_iteration()) for b in self._boosters()]
        return self

    def _deadline_callback(self, deadline: float) -> Any:
        """A LightGBM callback that ends boosting once ``deadline`` passes, at the best round
        so far by the first validation metric (the round early stopping would keep)."""
        lgb = require_lightgbm()
        best: dict[str, Any] = {}

        def stop_at_deadline(env: Any) -> None:
            results = env.evaluation_result_list or []
            if results:
                _, _, value, higher = results[0][:4]
                if "value" not in best or (value > best["value"] if higher else value < best["value"]):
                    best.update(value=value, iteration=env.iteration, results=results)
            if time.monotonic() >= deadline:
                self.stopped_at_deadline_ = True
                raise lgb.callback.EarlyStopException(best.get("iteration", env.iteration),
                                                      best.get("results", results))

        stop_at_deadline.order = 40  # after the evaluation, beside early stopping (order 30)
        return stop_at_deadline

    def refit_params(self, scale: float) -> dict:
        """``params`` for a refit on more rows: the rounds early stopping kept, times ``scale``
        (the rows' ratio), as AutoGluon refits its bagged GBDTs; ``params`` when the fit had
        no early stopping."""
        params = dict(self.params or {})
        if hasattr(self, "best_iterations_") and "n_estimators" in params:
            params["n_estimators"] = max(1, round(max(self.best_iterations_) * scale))
        return params

    def _boosters(self) -> list[Any]:
        return getattr(self, "boosters_", None) or [self.booster_]

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        matrix = self.encoding_.transform(X)
        if hasattr(self, "boosters_"):
            return np.column_stack([np.asarray(b.predict(matrix), dtype="float64") for b in self.boosters_])
        return np.asarray(self.booster_.predict(matrix), dtype="float64")

    def model_text(self) -> str:
        """The trees in LightGBM's text model format (one output: see `model_texts`)."""
        if hasattr(self, "boosters_"):
            raise ValueError("this LightGBM member has several outputs: model_texts() gives one text per output")
        return self.booster_.model_to_string()

    def model_texts(self) -> list[str]:
        """The trees of each booster (one per output) in LightGBM's text model format."""
        return [b.model_to_string() for b in self._boosters()]

    @classmethod
    def from_text(cls, text: str | list[str], encoding: TableEncoding,
                  classes: np.ndarray | None = None) -> "_LightGBMTable":
        """The model of `model_text`, or of `model_texts` (a list: one booster per output)."""
        lgb = require_lightgbm()
        model = cls()
        if isinstance(text, list):
            model.boosters_ = [lgb.Booster(model_str=t) for t in text]
        else:
            model.booster_ = lgb.Booster(model_str=text)
        model.encoding_ = encoding
        if classes is not None:
            model.classes_ = classes
        return model


class LightGBMTableClassifier(ClassifierMixin, _LightGBMTable):
    task = "classification"

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Array of shape (n_samples, n_classes)."""
        raw = self._raw(X)
        if raw.ndim == 1:  # binary: LightGBM gives the second class's probability
            raw = np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class LightGBMTableRegressor(RegressorMixin, _LightGBMTable):
    task = "regression"

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Array of shape (n_samples,), or (n_samples, n_outputs) when fitted on several."""
        return self._raw(X)


__all__ = ["EARLY_STOPPING_ROUNDS", "LightGBMTableClassifier", "LightGBMTableRegressor", "TableEncoding",
           "known_class_codes", "require_lightgbm"]
