"""pandas' dtypes, nullable ones included (issue 29): every dtype a user's table can hold, at
fit and at predict time, through every component, against an oracle: the same table with plain
columns (object strings, float64 numbers, NaN for missing) must give the same predictions.

The matrix is dtype x component. Each dtype (the test id) converts some columns of one real
table (rows of adult, its coded categoricals written as strings, gaps added) to that dtype;
each component fits on the converted table and predicts on converted rows, and a model fitted
on the plain table predicts converted rows too (the predict-time path). Fitted objects are
shared between cells (module-level cache): a cell fits what it tests once per dtype. Beside
the matrix: a two-trial search on the dtypes of the issue, date and text columns in string,
Arrow and date dtypes (no training: the matrices themselves), and class labels in nullable,
string and category dtypes.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch

import archtune
from archtune import NeuralClassifier, NeuralRegressor
from tests.conftest import load_shared

pytestmark = pytest.mark.usefixtures("one_torch_thread", "one_library_thread", "lightgbm_for_boosting")

ROWS, TRAIN = 300, 240
CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
               "native-country"]
CATEGORICAL_GAPS = ["workclass", "occupation"]  # categorical columns with missing values
CATEGORICAL_FULL = [c for c in CATEGORICAL if c not in CATEGORICAL_GAPS]
NUMERIC_GAPS = ["age", "education-num", "hours-per-week"]  # integer-valued, within Int8 and UInt8
BOOLEAN = "married"  # True / False / missing
NETWORK = {"max_epochs": 2, "units": 16, "hidden_layers": 1, "random_state": 0}
# With the portfolio's first LightGBM configuration alone (`lightgbm_for_boosting`).
BASELINES = {"classification": ["hist_gradient_boosting", "k_nearest_neighbors", "lightgbm", "logistic_regression",
                                "random_forest"],
             "regression": ["hist_gradient_boosting", "k_nearest_neighbors", "lightgbm", "random_forest", "ridge"]}


@pytest.fixture(scope="module")
def lightgbm_for_boosting():
    """Gradient boosting by LightGBM alone here: a value's dtype reaches CatBoost through the
    same table encoding as LightGBM (archtune.ensemble.gbm.TableEncoding: one float matrix
    whatever the dtype), which these tests check per dtype; CatBoost on that matrix is
    tests/test_portfolio.py's. (It would add a minute to these 272 tests.)"""
    from archtune.tune import baselines
    from archtune.tune.portfolio import load_portfolio

    first = next(c for c in load_portfolio() if c.family == "lightgbm")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(baselines, "load_portfolio", lambda: [first])
        yield


@pytest.fixture(scope="module")
def one_library_thread():
    """OpenMP and BLAS pools of one thread: on two busy cores a 60-row prediction of
    histogram gradient boosting took 0.1-1.2 s in two threads and 8 ms in one."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


# --------------------------------------------------------------------------- the tables


@functools.cache
def plain_table() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(X, y, y_regression): rows of adult with plain columns only: categoricals as object
    strings ("c7"), numbers as float64, a boolean column as object True/False, every gap NaN."""
    X, y = load_shared("adult.tsv.gz", n=ROWS)
    rng = np.random.default_rng(0)
    married = (X["marital-status"] == X["marital-status"].mode()[0]).astype(object)
    X = X.assign(**{c: ("c" + X[c].astype(int).astype(str)).astype(object) for c in CATEGORICAL},
                 **{BOOLEAN: married}).astype({c: "float64" for c in NUMERIC_GAPS})
    for name in [*NUMERIC_GAPS, *CATEGORICAL_GAPS, BOOLEAN]:
        X.loc[rng.random(len(X)) < 0.1, name] = np.nan
    for name in [*CATEGORICAL, BOOLEAN]:
        assert X[name].dtype == object  # pandas 3 would make "c7" strings `str`: the oracle is object
    y_regression = np.log(X["fnlwgt"].to_numpy())
    return X.drop(columns="fnlwgt"), y.to_numpy(), y_regression


def _missing_as(value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Every gap held by ``value`` in an object column (numbers too: Python floats)."""
    def convert(X: pd.DataFrame) -> pd.DataFrame:
        gaps = [*NUMERIC_GAPS, *CATEGORICAL_GAPS, BOOLEAN]
        out = X.astype({c: object for c in gaps})
        for c in gaps:
            out[c] = pd.Series([value if pd.isna(v) else v for v in out[c]], index=out.index, dtype=object)
        return out
    return convert


def _strings(dtype: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The categorical columns, and one numeric column written as text (as a CSV reader gives
    numbers it could not type), in a string dtype."""
    def convert(X: pd.DataFrame) -> pd.DataFrame:
        written = X["hours-per-week"].map(lambda v: np.nan if pd.isna(v) else repr(float(v))).astype(object)
        return X.assign(**{"hours-per-week": written}).astype({c: dtype for c in [*CATEGORICAL, "hours-per-week"]})
    return convert


def _numbers(dtype: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda X: X.astype({c: dtype for c in NUMERIC_GAPS})


def _arrow(X: pd.DataFrame) -> pd.DataFrame:
    """What ``read_csv(..., dtype_backend="pyarrow")`` gives: Arrow integers, doubles, strings
    and booleans, null for missing."""
    import pyarrow as pa

    return X.astype({"age": "int64[pyarrow]", "education-num": "int64[pyarrow]", "hours-per-week": "double[pyarrow]",
                     **{c: pd.ArrowDtype(pa.string()) for c in CATEGORICAL}, BOOLEAN: "bool[pyarrow]"})


def _string_dtype(storage: str, na_value: object) -> object:
    try:
        return pd.StringDtype(storage, na_value=na_value)
    except (TypeError, ImportError) as exc:  # pandas before 2.3; pyarrow absent
        return exc


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _dtype_params() -> list:
    converters: dict[str, object] = {
        "object-NaN": lambda X: X,
        "object-None": _missing_as(None),
        "object-pd.NA": _missing_as(pd.NA),
        "string[python]": _string_dtype("python", pd.NA),
        "string[pyarrow]": _string_dtype("pyarrow", pd.NA),
        "str": _string_dtype("pyarrow", np.nan),  # pandas 3's default for text (read_csv)
        "str[python]": _string_dtype("python", np.nan),
        "category": lambda X: X.astype({c: "category" for c in CATEGORICAL_FULL}),
        "category-NA": lambda X: X.astype({c: "category" for c in CATEGORICAL_GAPS}),
        **{name: _numbers(name) for name in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
                                               "UInt64", "Float32", "Float64")},
        "boolean": lambda X: X.astype({BOOLEAN: "boolean"}),
        "pyarrow": _arrow if _has_pyarrow() else ImportError("pyarrow"),
    }
    params = []
    for name, convert in converters.items():
        if isinstance(convert, Exception):
            params.append(pytest.param(name, marks=pytest.mark.skip(reason=f"{name} needs {convert}")))
            continue
        if isinstance(convert, pd.StringDtype):
            convert = _strings(convert)
        CONVERTERS[name] = convert
        params.append(name)
    return params


CONVERTERS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {}
DTYPES = _dtype_params()
ORACLE = "object-NaN"


@functools.cache
def table(dtype: str) -> pd.DataFrame:
    X = CONVERTERS[dtype](plain_table()[0])
    assert X.shape == plain_table()[0].shape
    return X


def _train(dtype: str) -> pd.DataFrame:
    return table(dtype).iloc[:TRAIN]


def _test(dtype: str) -> pd.DataFrame:
    return table(dtype).iloc[TRAIN:]


def _y(task: str = "classification") -> tuple[np.ndarray, np.ndarray]:
    _, y, y_regression = plain_table()
    target = y if task == "classification" else y_regression
    return target[:TRAIN], target[TRAIN:]


def test_each_dtype_holds_what_its_name_says():
    for name in CONVERTERS:
        dtypes = {str(d) for d in table(name).dtypes}
        if name not in ("object-NaN", "object-None", "object-pd.NA"):
            assert dtypes - {str(d) for d in table(ORACLE).dtypes}, name  # a dtype the plain table has not
    assert str(table("Int8")["age"].dtype) == "Int8" and table("Int8")["age"].isna().any()
    assert table("string[python]")["workclass"].isna().any()


# --------------------------------------------------------------------------- the fitted objects

_CACHE: dict[tuple, object] = {}


def once(key: tuple, make: Callable[[], object]) -> object:
    """One fit per (component, dtype) for the module; a failure is raised in every cell
    that needs it."""
    if key not in _CACHE:
        try:
            _CACHE[key] = make()
        except Exception as exc:  # noqa: BLE001 - re-raised by each cell that reads it
            _CACHE[key] = exc
    value = _CACHE[key]
    if isinstance(value, Exception):
        raise value
    return value


def kinds(dtype: str) -> dict[str, str]:
    from archtune.data.kinds import infer_column_kinds

    return once(("kinds", dtype), lambda: infer_column_kinds(table(dtype)))


def network(dtype: str, task: str = "classification"):
    cls = NeuralClassifier if task == "classification" else NeuralRegressor
    return once(("network", task, dtype), lambda: cls(**NETWORK).fit(_train(dtype), _y(task)[0]))


def baselines(dtype: str, task: str = "classification"):
    from sklearn.metrics import get_scorer

    from archtune.tune.baselines import run_baselines

    def make():
        (y_train, y_val), scorer = _y(task), get_scorer("accuracy" if task == "classification" else "r2")
        return run_baselines(task, _train(dtype), y_train, _test(dtype), y_val, scorer, kinds(dtype))

    return once(("baselines", task, dtype), make)


def ensemble(dtype: str):
    from archtune.ensemble import Member, make_ensemble

    def make():
        results = baselines(dtype)
        failed = [(r.name, r.error) for r in results if r.error is not None]
        assert not failed, failed
        members = [Member("network #0 (mlp)", network(dtype), "network", 0.8, 0),
                   *(Member(r.name, r.model, getattr(r.model, "member_kind", "baseline"), r.score)
                     for r in results)]
        return make_ensemble("classification", members, np.arange(1.0, len(members) + 1), np.unique(_y()[0]), 0.9,
                             list(table(dtype).columns))

    return once(("ensemble", dtype), make)


def loaded(dtype: str, tmp_path_factory):
    def make():
        path = archtune.save(ensemble(dtype), tmp_path_factory.mktemp(f"ensemble-{dtype}"))
        return archtune.load(path)

    return once(("loaded", dtype), make)


def _same(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Equal to the bit; a random forest to 1e-12 (its threads add the trees' outputs in any
    order)."""
    if "random_forest" in what or "ensemble" in what:
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


# --------------------------------------------------------------------------- the matrix


@pytest.mark.parametrize("dtype", DTYPES)
def test_kinds(dtype):
    assert kinds(dtype) == kinds(ORACLE)


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_network(dtype, task):
    """NeuralClassifier / NeuralRegressor: fitted on the dtype, and fitted on plain columns
    then given the dtype."""
    predict = (lambda m, X: m.predict_proba(X)) if task == "classification" else (lambda m, X: m.predict(X))
    expected = predict(network(ORACLE, task), _test(ORACLE))
    _same(predict(network(dtype, task), _test(dtype)), expected, f"{task} network fitted on {dtype}")
    _same(predict(network(ORACLE, task), _test(dtype)), expected, f"plain {task} network given {dtype}")
    assert network(dtype, task).preprocessor_.to_state() == network(ORACLE, task).preprocessor_.to_state()


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_baselines(dtype, task):
    """run_baselines: every baseline fits (none lost to an error), with the plain table's
    score; each fitted model predicts the dtype's rows as the plain table's."""
    results = {r.name: r for r in baselines(dtype, task)}
    plain = {r.name: r for r in baselines(ORACLE, task)}
    assert sorted(results) == BASELINES[task]
    assert {name: r.error for name, r in results.items() if r.error is not None} == {}
    assert all(np.isfinite(r.score) for r in results.values())
    assert {name: r.score for name, r in results.items()} == pytest.approx({name: r.score for name, r in plain.items()},
                                                                           rel=0, abs=1e-12)
    predict = (lambda m, X: m.predict_proba(X)) if task == "classification" else (lambda m, X: m.predict(X))
    for name in BASELINES[task]:
        expected = once(("baseline prediction", task, name), lambda: predict(plain[name].model, _test(ORACLE)))
        _same(predict(results[name].model, _test(dtype)), expected, f"{name} fitted on {dtype}")
        _same(predict(plain[name].model, _test(dtype)), expected, f"plain {name} given {dtype}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_lightgbm_member(dtype):
    """archtune.ensemble.gbm: the table's encoding and the member's probabilities."""
    from archtune.ensemble.gbm import LightGBMTableClassifier, TableEncoding

    encoding = TableEncoding.fit(_train(dtype), kinds(dtype))
    plain = TableEncoding.fit(_train(ORACLE), kinds(ORACLE))
    assert encoding.to_dict() == plain.to_dict()
    np.testing.assert_array_equal(encoding.transform(_test(dtype)), plain.transform(_test(ORACLE)))
    model = LightGBMTableClassifier(kinds=kinds(dtype)).fit(_train(dtype), _y()[0])
    reference = LightGBMTableClassifier(kinds=kinds(ORACLE)).fit(_train(ORACLE), _y()[0])
    _same(model.predict_proba(_test(dtype)), reference.predict_proba(_test(ORACLE)), f"lightgbm on {dtype}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_bag(dtype):
    """archtune.ensemble.bagging.bag: two members on folds of the dtype's table."""
    from sklearn.metrics import get_scorer

    from archtune.ensemble.bagging import bag

    def make(name):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            made = bag(lambda p: NeuralClassifier(**p), NETWORK, _train(name), _y()[0], 2, "classification",
                       get_scorer("neg_log_loss"), kinds=kinds(name), columns=list(table(name).columns))
        # A member that cannot train: no bag, and a warning that says why.
        assert made is not None, [str(w.message) for w in caught]
        return made

    made, plain = once(("bag", dtype), lambda: make(dtype)), once(("bag", ORACLE), lambda: make(ORACLE))
    np.testing.assert_array_equal(made.oof, plain.oof)
    _same(made.ensemble.predict_proba(_test(dtype)), plain.ensemble.predict_proba(_test(ORACLE)), f"bag on {dtype}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_ensemble_and_its_bundle(dtype, tmp_path_factory):
    """make_ensemble of the network and every baseline; archtune.save / archtune.load; the
    plain table's saved ensemble given the dtype."""
    expected = once(("ensemble prediction",), lambda: ensemble(ORACLE).predict_proba(_test(ORACLE)))
    _same(ensemble(dtype).predict_proba(_test(dtype)), expected, f"ensemble fitted on {dtype}")
    _same(loaded(dtype, tmp_path_factory).predict_proba(_test(dtype)), expected, f"loaded ensemble of {dtype}")
    _same(loaded(ORACLE, tmp_path_factory).predict_proba(_test(dtype)), expected,
          f"loaded plain ensemble given {dtype}")
    np.testing.assert_array_equal(loaded(ORACLE, tmp_path_factory).predict(_test(dtype)),
                                  ensemble(ORACLE).classes_[expected.argmax(axis=1)])


def _fingerprint(model) -> str:
    """Everything export reads of a fitted network: its preprocessor, target, configuration
    and weights (two networks of one fingerprint export to the same file)."""
    digest = hashlib.sha256(json.dumps([model.preprocessor_.to_state(), list(map(str, model.classes_)),
                                        repr(model.model_config_)], sort_keys=True).encode())
    buffer = io.BytesIO()
    torch.save(model.module_.state_dict(), buffer)
    return digest.hexdigest() + hashlib.sha256(buffer.getvalue()).hexdigest()


@pytest.mark.parametrize("dtype", DTYPES)
def test_onnx_export(dtype, tmp_path_factory):
    """archtune.export to ONNX of the network fitted on the dtype, run on the dtype's rows
    (`archtune.exporting.onnx_inputs`): the plain network's probabilities."""
    ort = pytest.importorskip("onnxruntime")
    from archtune.exporting import onnx_inputs

    model = network(dtype)

    def make():  # exporting takes seconds: a network equal to another is exported once
        path = tmp_path_factory.mktemp("onnx") / "model.onnx"
        archtune.export(model, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    session = once(("onnx", _fingerprint(model)), make)
    label, proba = session.run(["label", "probabilities"], onnx_inputs(session, _test(dtype)))
    expected = network(ORACLE).predict_proba(_test(ORACLE))
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(label, network(ORACLE).classes_[expected.argmax(axis=1)])


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("dtype", DTYPES)
def test_torchscript_export(dtype, tmp_path):
    """archtune.export to TorchScript, its inputs built from the dtype's rows by `encode`."""
    from archtune.exporting.torchscript import encode

    exported = archtune.export(network(dtype), tmp_path / "model.pt", format="torchscript")
    module = torch.jit.load(str(exported.path))
    description = json.loads(exported.description_path.read_text())
    _, proba = module(*encode(description, _test(dtype)))
    np.testing.assert_allclose(proba.numpy(), network(ORACLE).predict_proba(_test(ORACLE)), rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_held_out_evaluation(dtype):
    """archtune.report.evaluation.evaluate of the ensemble (the model a search predicts with)
    and of the network with its permutation importance."""
    from archtune.report.evaluation import evaluate

    y_test = pd.Series(_y()[1])

    def comparable(found):
        importance = found.get("permutation_importance")
        return {**found, **({"permutation_importance": {**importance, "seconds": None}} if importance else {})}

    def evaluation(model, name, permutation):
        return comparable(evaluate(model(name), _test(name), y_test, "classification", permutation=permutation))

    plain = once(("evaluation", ORACLE),
                 lambda: (evaluation(ensemble, ORACLE, False), evaluation(network, ORACLE, True)))
    assert evaluation(ensemble, dtype, False) == plain[0]
    assert evaluation(network, dtype, True) == plain[1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_distillation_teacher(dtype):
    """archtune.distill with the ensemble (every baseline in it) as the teacher."""
    def make(name):
        return archtune.distill(ensemble(name), _train(name), _y()[0], NeuralClassifier(**NETWORK))

    student = once(("student", dtype), lambda: make(dtype))
    plain = once(("student", ORACLE), lambda: make(ORACLE))
    _same(student.predict_proba(_test(dtype)), plain.predict_proba(_test(ORACLE)), f"student of {dtype}")


# --------------------------------------------------------------------------- the search


@pytest.mark.parametrize("dtype", [ORACLE, "string[python]", "string[pyarrow]", "pyarrow"])
def test_search(dtype):
    """AutoNeuralClassifier (two trials): every baseline on the leaderboard with the plain
    table's score, and the final model's probabilities (an ensemble with baselines in it)."""
    from archtune import AutoNeuralClassifier

    if dtype not in CONVERTERS:
        pytest.skip(f"{dtype} is not available")

    def make(name):
        space = {"max_epochs": 2, "hidden_layers": 1, "units": 16}
        return AutoNeuralClassifier(budget=2, space=space, random_state=0).fit(_train(name), _y()[0])

    search, plain = once(("search", dtype), lambda: make(dtype)), once(("search", ORACLE), lambda: make(ORACLE))
    assert sorted(b["name"] for b in search.baselines_) == BASELINES["classification"]
    assert [b["error"] for b in search.baselines_] == [None] * len(BASELINES["classification"])
    assert [b["score"] for b in search.baselines_] == [b["score"] for b in plain.baselines_]
    columns = ["model", "val_score", "state"]
    pd.testing.assert_frame_equal(search.leaderboard_[columns], plain.leaderboard_[columns])
    _same(search.predict_proba(_test(dtype)), plain.predict_proba(_test(ORACLE)), f"ensemble search on {dtype}")


# --------------------------------------------------------------------------- other kinds, the target


def _dates_and_text() -> pd.DataFrame:
    """ISO date strings and short texts in object columns (NaN for missing), and a number."""
    rng = np.random.default_rng(0)
    n = 120
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    words = ["red fox jumps", "lazy dog sleeps", "quick brown fox runs", "the cat sat down", "a bird sings loudly"]
    X = pd.DataFrame({"day": pd.Series(days.strftime("%Y-%m-%d"), dtype=object),
                      "note": pd.Series([f"{words[i % 5]} number {i}" for i in range(n)], dtype=object),
                      "x": rng.normal(size=n)})
    X.loc[::9, "day"] = np.nan
    X.loc[::11, "note"] = np.nan
    return X


def _days(convert: Callable[[pd.Series], pd.Series]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda X: X.assign(day=convert(pd.to_datetime(X["day"])))


def _arrow_type(make: str) -> Callable[[pd.Series], pd.Series]:
    def convert(days: pd.Series) -> pd.Series:
        import pyarrow as pa

        if make == "date32":
            return days.dt.date.astype(pd.ArrowDtype(pa.date32()))
        return days.dt.tz_localize("Europe/Paris").astype(pd.ArrowDtype(pa.timestamp("s", tz="Europe/Paris")))
    return convert


def _texts(dtype: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda X: X.astype({"day": dtype, "note": dtype})


def _arrow_strings(X: pd.DataFrame) -> pd.DataFrame:
    import pyarrow as pa

    return _texts(pd.ArrowDtype(pa.string()))(X)


OTHER_KINDS = {
    **{name: _texts(dtype) for name, dtype in (
        ("string[python]", _string_dtype("python", pd.NA)), ("string[pyarrow]", _string_dtype("pyarrow", pd.NA)),
        ("str", _string_dtype("pyarrow", np.nan)), ("str[python]", _string_dtype("python", np.nan)))
       if not isinstance(dtype, Exception)},
    **({"arrow string": _arrow_strings, "timestamp tz[pyarrow]": _days(_arrow_type("timestamp")),
        "date32[pyarrow]": _days(_arrow_type("date32"))} if _has_pyarrow() else {}),
    "datetime64": _days(lambda days: days),
    "datetime64 tz": _days(lambda days: days.dt.tz_localize("Europe/Paris")),
}


@pytest.mark.parametrize("dtype", list(OTHER_KINDS))
def test_dates_and_text(dtype):
    """A date column and a text column in string, Arrow and date dtypes: the same kinds, the
    same network matrix, the same baselines' table and the same LightGBM matrix as ISO strings
    and texts in object columns."""
    from archtune.data.kinds import infer_column_kinds
    from archtune.data.preprocess import Preprocessor
    from archtune.ensemble.gbm import TableEncoding
    from archtune.tune.baselines import _typed

    plain = _dates_and_text()
    X = OTHER_KINDS[dtype](plain)
    assert X.dtypes.tolist() != plain.dtypes.tolist()
    kinds = infer_column_kinds(X)
    assert kinds == infer_column_kinds(plain) == {"day": "date", "note": "text", "x": "numeric"}
    np.testing.assert_array_equal(Preprocessor().fit(X, kinds=kinds).transform(X),
                                  Preprocessor().fit(plain, kinds=kinds).transform(plain))
    pd.testing.assert_frame_equal(_typed(X, kinds), _typed(plain, kinds))
    np.testing.assert_array_equal(TableEncoding.fit(X, kinds).transform(X),
                                  TableEncoding.fit(plain, kinds).transform(plain))


TARGETS = {"string[python]": "string[python]", "str": "str", "category": "category", "Int64": "Int64",
           "UInt8": "UInt8", "boolean": "boolean"}


@pytest.mark.parametrize("dtype", list(TARGETS))
def test_target(dtype):
    """Class labels in a nullable, string or category dtype: the classes and the probabilities
    of the labels as a NumPy array; a missing label is a DataError naming its row."""
    from archtune.errors import DataError

    y_train = _y()[0]
    labels = pd.Series(np.where(y_train == 1, "yes", "no") if dtype in ("string[python]", "str", "category")
                       else y_train == 1 if dtype == "boolean" else y_train).astype(TARGETS[dtype])
    model = NeuralClassifier(**NETWORK).fit(_train(ORACLE), labels)
    plain = NeuralClassifier(**NETWORK).fit(_train(ORACLE), np.asarray(labels.tolist()))
    assert model.classes_.tolist() == plain.classes_.tolist()
    _same(model.predict_proba(_test(ORACLE)), plain.predict_proba(_test(ORACLE)), f"labels of {dtype}")
    with pytest.raises(DataError, match="row 3: the target is missing"):
        NeuralClassifier(**NETWORK).fit(_train(ORACLE), labels.mask(labels.index == 2))
