"""Classical baselines on the same split and metric as the search, for an honest leaderboard.

Each classical baseline is a scikit-learn pipeline with the preprocessing it needs
(imputation, scaling for the linear model and k-NN, one-hot codes for categoricals). The
gradient-boosting models are the portfolio's configurations (archtune.tune.portfolio:
LightGBM, and CatBoost with the ``archtune[catboost]`` extra), in its order, each with early
stopping on a tenth of the training rows (`STOPPING_FRACTION`), so that the validation rows
stay unseen by every model they score.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from archtune.data.dates import DATE_FEATURES, date_features
from archtune.data.kinds import plain_numeric_columns
from archtune.data.values import plain_labels, plain_numbers, to_datetimes
from archtune.errors import DataError
from archtune.train.threads import library_threads
from archtune.tune.portfolio import load_portfolio

# The share of a gradient-boosting model's training rows that decides when boosting stops.
STOPPING_FRACTION = 0.1


@dataclass
class BaselineResult:
    name: str
    score: float
    fit_seconds: float
    params: str
    error: str | None = None
    kind: str = "baseline"  # "lightgbm" or "catboost" for the portfolio's models
    # The fitted model, taking the table as the search received it (in memory only: it is
    # an ensemble candidate, and is not stored with the study).
    model: Any = field(default=None, repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """What the study stores: everything but the model."""
        return {"name": self.name, "score": self.score, "fit_seconds": self.fit_seconds, "params": self.params,
                "error": self.error, "kind": self.kind}


class FittedBaseline:
    """A fitted baseline pipeline that takes the table as the search received it (its columns
    typed by their kinds first, as in training)."""

    def __init__(self, model: Any, kinds: dict[str, str]):
        self.model = model
        self.kinds = kinds

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict(_typed(X, self.kinds))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(_typed(X, self.kinds))


def _column_transformer(frame: pd.DataFrame, scale: bool):
    """Imputation (and scaling) of the numeric columns and of the dates' features, one-hot
    codes of the others; a column is numeric or a date when its dtype is (`_typed` has
    converted the table by its kinds)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    dates = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric and c not in dates]

    def numeric_steps() -> list[Any]:
        return [SimpleImputer(strategy="median", add_indicator=True), *([StandardScaler()] if scale else [])]

    parts = [("num", make_pipeline(*numeric_steps()), numeric)]
    if dates:
        parts.append(("date", make_pipeline(FunctionTransformer(date_matrix), *numeric_steps()), dates))
    if categorical:
        parts.append(("cat", make_pipeline(
            SimpleImputer(strategy="constant", fill_value="__missing__"),
            OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)), categorical))
    return ColumnTransformer(parts)


def date_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The date columns of a typed table (datetime64) as their numeric features, the same
    ones the networks get (elapsed days counted from 1970: these models do not care where
    it starts)."""
    return np.hstack([date_features(frame[c].to_numpy().astype("datetime64[s]"), DATE_FEATURES, 0.0)
                      for c in frame.columns])


def _typed(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Numeric columns as float numbers, date columns as datetime64 (whatever their
    container), the others as plain strings (OneHotEncoder needs one type per column), NaN for
    every missing value (`archtune.data.values.plain_numbers` / `plain_labels`: the
    same whatever the column's dtype; scikit-learn's imputers cannot read pandas' ``pd.NA``),
    by the kinds `infer_column_kinds` decided; entirely missing columns are dropped, as the
    networks drop them."""
    out = frame.drop(columns=[c for c in frame.columns if kinds.get(str(c)) == "empty"])
    # Columns of a NumPy number dtype are kept as they are (no copy of a wide table).
    numpy = {c for c in plain_numeric_columns(out) if isinstance(out.dtypes[c], np.dtype)}
    columns = {}
    for c in out.columns:
        if c in numpy and kinds.get(str(c)) == "numeric":
            columns[c] = out[c]
        elif kinds.get(str(c)) == "numeric":
            columns[c] = pd.Series(plain_numbers(out[c]), index=out.index)
        elif kinds.get(str(c)) == "date":
            columns[c] = pd.Series(to_datetimes(out[c]), index=out.index)
        else:
            columns[c] = pd.Series(plain_labels(out[c]), index=out.index, dtype=object)
    # One frame built at once: assigning 5000 columns one by one took seconds.
    return pd.DataFrame(columns, index=out.index) if columns else out


def baseline_models(task: str, n_rows: int, seed: int, kinds: dict[str, str] | None = None,
                    n_outputs: int = 1, portfolio: list[Any] | None = None) -> dict[str, Callable[[pd.DataFrame], Any]]:
    """Name -> factory(frame) of a fresh unfitted pipeline. The gradient-boosting models are
    ``portfolio``'s configurations (default: `load_portfolio`'s); they read the table itself,
    categorical columns (by ``kinds``) as LightGBM or CatBoost categoricals
    (`archtune.ensemble.gbm`). A regression of ``n_outputs`` > 1 columns: ridge, k-NN and the
    random forest fit them natively, LightGBM one booster each, histogram gradient boosting
    one model each (scikit-learn's ``MultiOutputRegressor``). A multi-label classification
    (``n_outputs`` > 1 label columns): k-NN and the random forest fit it natively, logistic
    regression and histogram gradient boosting one model per label (``MultiOutputClassifier``),
    and the gradient-boosting portfolio is left out (`run_baselines` names it)."""
    from sklearn import ensemble, linear_model, neighbors
    from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor
    from sklearn.pipeline import make_pipeline

    classify = task != "regression"
    per_label = (lambda model: MultiOutputClassifier(model)) if classify and n_outputs > 1 else (lambda model: model)
    k = int(min(30, max(5, np.sqrt(n_rows) / 4)))
    models: dict[str, Callable[[pd.DataFrame], Any]] = {
        ("logistic_regression" if classify else "ridge"): lambda f: make_pipeline(
            _column_transformer(f, scale=True),
            per_label(linear_model.LogisticRegression(max_iter=2000)) if classify else linear_model.RidgeCV()),
        "k_nearest_neighbors": lambda f: make_pipeline(
            _column_transformer(f, scale=True),
            (neighbors.KNeighborsClassifier if classify else neighbors.KNeighborsRegressor)(n_neighbors=k, weights="distance")),
        "random_forest": lambda f: make_pipeline(
            _column_transformer(f, scale=False),
            (ensemble.RandomForestClassifier if classify else ensemble.RandomForestRegressor)(
                n_estimators=100, n_jobs=-1, random_state=seed, min_samples_leaf=1 if classify else 2)),
        "hist_gradient_boosting": lambda f: make_pipeline(
            _column_transformer(f, scale=False),
            per_label(ensemble.HistGradientBoostingClassifier(random_state=seed)) if classify
            else ensemble.HistGradientBoostingRegressor(random_state=seed) if n_outputs == 1
            else MultiOutputRegressor(ensemble.HistGradientBoostingRegressor(random_state=seed))),
    }
    configs = load_portfolio() if portfolio is None else portfolio
    boosting = ({} if classify and n_outputs > 1 else  # multi-label: not in the portfolio's models
                {config.name: (lambda f, c=config: c.model(task, kinds, seed)) for config in configs})
    # The order they run in when a time budget may not reach them all: the cheap linear
    # model, then the gradient-boosting portfolio in its order (the reference a network is
    # judged against), then the rest.
    linear = next(iter(models))
    return {linear: models[linear], **boosting, **{n: f for n, f in models.items() if n != linear}}


def is_boosting(model: Any) -> bool:
    """Whether ``model`` is one of the portfolio's table models (LightGBM or CatBoost): it
    takes the table itself, stops early on held-out rows, and is an ensemble member of its
    own kind (``member_kind``)."""
    return getattr(model, "member_kind", None) in ("lightgbm", "catboost")


def run_baselines(
    task: str,
    X_train: pd.DataFrame,
    y_train: Any,
    X_val: pd.DataFrame,
    y_val: Any,
    score: Callable[[Any, pd.DataFrame, Any], float],
    kinds: dict[str, str],
    seed: int = 0,
    deadline: float | None = None,
    sample_weight: np.ndarray | None = None,
    val_weight: np.ndarray | None = None,
) -> list[BaselineResult]:
    """Fit each baseline on the training split and score it on the validation split.

    ``kinds`` are the columns' kinds (`infer_column_kinds`). Text columns get TF-IDF + a
    linear model (the classic text baseline); the other baselines see the remaining columns,
    and are left out when only text remains. ``sample_weight`` weights the training rows of
    every baseline whose model takes it (k-NN does not: its parameters say "unweighted"), and
    ``val_weight`` the validation rows of every score (``score(model, X, y, sample_weight)``)."""
    results: list[BaselineResult] = []
    X_train, X_val = _typed(X_train, kinds), _typed(X_val, kinds)
    # Columns of image paths mean nothing to these models: they see the images' pixels.
    paths = [c for c in X_train.columns if kinds.get(str(c)) == "image"]
    if paths:
        X_train, X_val = _pixels_for_paths(X_train, X_val, paths)
    text = [c for c in X_train.columns if kinds.get(str(c)) == "text"]
    n_outputs = 1 if np.ndim(y_train) == 1 else int(np.shape(y_train)[1])
    portfolio = load_portfolio()  # read once for the models and their kinds
    models = baseline_models(task, len(X_train), seed, kinds, n_outputs, portfolio)
    boosting = {c.name: c.family for c in portfolio}  # they leave text columns out themselves
    if text:
        # LightGBM leaves text columns out itself (by their kinds): it stays a plain LightGBM
        # member, which bundles hold as its own text model files.
        models = {**({} if len(text) == X_train.shape[1] else
                     {name: factory if name in boosting else _without(factory, text)
                      for name, factory in models.items()}),
                  ("tfidf_logistic_regression" if task != "regression" else "tfidf_ridge"):
                      lambda f: _tfidf_model(f, text, task != "regression")}
    if task != "regression" and n_outputs > 1:  # multi-label: the portfolio is left out, by name
        results += [BaselineResult(c.name, float("nan"), 0.0, "", kind=c.family,
                                   error=f"skipped: {c.family} does not fit multi-label targets") for c in portfolio]
    for name, factory in models.items():
        if deadline is not None and time.monotonic() > deadline:
            results.append(BaselineResult(name, float("nan"), 0.0, "", error="skipped: its share of the time budget was spent"))
            continue
        started = time.perf_counter()
        try:
            with library_threads(X_train.size):
                model = factory(X_train)
                if is_boosting(model):
                    # A started model stops at the share's end too, keeping its best round so far.
                    fit_stopping_early(model, X_train, y_train, sample_weight, task, seed, deadline)
                    weighted = True
                else:
                    model, weighted = fit_weighted(model, X_train, y_train, sample_weight)
                _predict_in_one_thread(model)
                value = float(score(model, X_val, y_val) if val_weight is None
                              else score(model, X_val, y_val, val_weight))
            # Image-path columns were replaced by pixels above: such a model cannot take the table.
            usable = None if paths else model if is_boosting(model) else FittedBaseline(model, kinds)
            described = _describe(model) + ("" if weighted else "; unweighted (its fit takes no sample_weight)")
            if getattr(model, "stopped_at_deadline_", False):
                described += "; stopped at its share of the time budget"
            results.append(BaselineResult(name, value, time.perf_counter() - started, described, model=usable,
                                          kind=getattr(model, "member_kind", "baseline")))
        except ImportError as exc:  # an optional library (CatBoost) that is not installed
            results.append(BaselineResult(name, float("nan"), 0.0, "", error=f"skipped: {exc}",
                                          kind=boosting.get(name, "baseline")))
        except Exception as exc:  # a baseline that cannot fit must not sink the search
            results.append(BaselineResult(name, float("nan"), time.perf_counter() - started, "",
                                          error=f"{type(exc).__name__}: {exc}"))
    return results


def fit_stopping_early(model: Any, X: pd.DataFrame, y: Any, sample_weight: np.ndarray | None, task: str,
                       seed: int, deadline: float | None = None) -> Any:
    """Fit a portfolio model on all but `STOPPING_FRACTION` of the rows, which decide when
    boosting stops (stratified for a classification), or when ``deadline`` (`time.monotonic`)
    passes; ``n_fit_rows_`` records the rows it learnt from, for a refit on more rows
    (`archtune.ensemble.build.refit_members`)."""
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    rows = np.arange(len(X))
    stratify = None
    if task != "regression":
        _, counts = np.unique(y, return_counts=True)
        stratify = y if counts.min() >= 2 else None
    if len(X) < 20:  # too few rows to hold any out: the model's own rounds
        model.fit(X, y, sample_weight=sample_weight, deadline=deadline)
        model.n_fit_rows_, model.fit_seconds_ = len(X), 0.0
        return model
    fit, stop = train_test_split(rows, test_size=STOPPING_FRACTION, random_state=seed, stratify=stratify)
    fit, stop = np.sort(fit), np.sort(stop)
    w = None if sample_weight is None else np.asarray(sample_weight)
    started = time.perf_counter()
    model.fit(X.iloc[fit], y[fit], sample_weight=None if w is None else w[fit],
              eval_set=(X.iloc[stop], y[stop]), eval_weight=None if w is None else w[stop], deadline=deadline)
    model.n_fit_rows_ = len(fit)
    model.fit_seconds_ = time.perf_counter() - started  # a refit's cost: about this, times the rows' ratio
    return model


def _predict_in_one_thread(model: Any) -> None:
    """A forest fitted on all cores predicts on one: its parallel predict adds the trees' outputs
    in whatever order the threads finish, so the same rows got predictions that differed in the
    last bit from call to call (and a saved run from the model that saved it)."""
    from sklearn.pipeline import Pipeline

    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else [model]
    for step in steps:
        if "n_jobs" in step.get_params(deep=False) and hasattr(step, "estimators_"):
            step.set_params(n_jobs=1)


def fit_weighted(model: Any, X: pd.DataFrame, y: Any, sample_weight: np.ndarray | None) -> tuple[Any, bool]:
    """(fitted model, whether the weights were used): ``sample_weight`` goes to the final
    estimator of a (nested) pipeline, the way scikit-learn's ``Pipeline.fit`` routes
    ``<step>__sample_weight``; a final estimator whose ``fit`` takes no weights is fitted
    unweighted."""
    if sample_weight is None:
        return model.fit(X, y), True
    route = _weight_route(model)
    if route is None:
        return model.fit(X, y), False
    return model.fit(X, y, **{route: sample_weight}), True


def _weight_route(model: Any) -> str | None:
    """The fit parameter that carries sample weights to ``model``'s final estimator, or None."""
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import has_fit_parameter

    if isinstance(model, Pipeline):
        name, final = model.steps[-1]
        inner = _weight_route(final)
        return None if inner is None else f"{name}__{inner}"
    return "sample_weight" if has_fit_parameter(model, "sample_weight") else None


# Pixels per image the baselines see: larger images are shrunk to about this many (64 x 64
# grey), which keeps k-NN and forests on image folders to seconds, not hours.
BASELINE_PIXELS = 4096


def _pixels_for_paths(X_train: pd.DataFrame, X_val: pd.DataFrame,
                      paths: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each column of image paths replaced by its images' pixels (0-1), shrunk to at most
    BASELINE_PIXELS per image."""
    from archtune.data.images import read_image_column

    train_parts, val_parts = [X_train.drop(columns=paths)], [X_val.drop(columns=paths)]
    for column in paths:
        present = X_train[column].dropna()
        try:
            # The first image sets the size (as in the preprocessor); everything is read once,
            # already shrunk.
            channels, height, width = read_image_column(present.iloc[:1], None, "baselines", column).shape[1:]
            shrink = max(1.0, math.sqrt(channels * height * width / BASELINE_PIXELS))
            shape = (channels, max(1, int(height / shrink)), max(1, int(width / shrink)))
            train = read_image_column(X_train[column], shape, "baselines", column)
            val = read_image_column(X_val[column], shape, "baselines", column)
        except DataError:
            continue  # an unreadable image is the network's error to report, with its row
        if not len(val):
            val = np.zeros((0, *shape), dtype=np.uint8)
        names = [f"{column}[{j}]" for j in range(int(np.prod(train.shape[1:])))]
        train_parts.append(pd.DataFrame(train.reshape(len(train), -1) / 255.0, columns=names, index=X_train.index))
        val_parts.append(pd.DataFrame(val.reshape(len(val), -1) / 255.0, columns=names, index=X_val.index))
    return pd.concat(train_parts, axis=1), pd.concat(val_parts, axis=1)


def _without(factory: Callable[[pd.DataFrame], Any], text: list[str]) -> Callable[[pd.DataFrame], Any]:
    """The baseline on the non-text columns (a drop step in front of it)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    def make(frame: pd.DataFrame) -> Any:
        rest = frame.drop(columns=text)
        return make_pipeline(ColumnTransformer([("rest", "passthrough", list(rest.columns))],
                                               verbose_feature_names_out=False).set_output(transform="pandas"),
                             factory(rest))

    return make


def _tfidf_model(frame: pd.DataFrame, text: list[str], classify: bool) -> Any:
    """Word 1-2-gram TF-IDF of each text column (plus the other columns, one-hot/scaled),
    then logistic regression or ridge."""
    from sklearn import linear_model
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    parts: list[tuple[str, Any, Any]] = [(f"tfidf_{i}", TfidfVectorizer(ngram_range=(1, 2), min_df=2), column)
                                         for i, column in enumerate(text)]
    rest = frame.drop(columns=text)
    if rest.shape[1]:
        parts.append(("rest", _column_transformer(rest, scale=True), list(rest.columns)))
    final = linear_model.LogisticRegression(max_iter=2000) if classify else linear_model.RidgeCV()
    return make_pipeline(ColumnTransformer(parts), final)


def _describe(pipeline: Any) -> str:
    if is_boosting(pipeline):
        params = ", ".join(f"{k}={v}" for k, v in (pipeline.params or {}).items()) or "default parameters"
        return f"{params}; {max(pipeline.best_iterations_)} rounds kept by early stopping"
    if not hasattr(pipeline, "steps"):
        return "default parameters"
    final = pipeline.steps[-1][1]
    from sklearn.multioutput import MultiOutputRegressor

    if isinstance(final, MultiOutputRegressor):  # one model per output: the model's own parameters
        final = final.estimator
    params = {k: v for k, v in final.get_params().items()
              if k in ("n_estimators", "n_neighbors", "max_iter", "learning_rate", "alpha_", "C")}
    return ", ".join(f"{k}={v}" for k, v in params.items())
