"""Dates (issue 14, fault 3): every container of the same dates gives the same features.

The oracle is Python's own calendar: year, month, day, weekday, day of the year, days since
the earliest date and the hour, computed with ``datetime`` for each value and compared with
what the preprocessor makes of ISO strings, datetime64 of several units, timezone-aware
columns, Periods, date objects, CSV and Parquet files.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import archtune
from archtune import DataError, NeuralRegressor
from archtune.cli import cli
from archtune.data.dates import DATE_FEATURES, date_features
from archtune.data.inputs import wide_inputs
from archtune.data.frames import as_frame
from archtune.data.kinds import infer_column_kinds
from archtune.data.preprocess import Preprocessor
from archtune.data.values import to_datetimes
from archtune.data.readers import read_table
from archtune.ensemble.gbm import TableEncoding
from archtune.tune.baselines import _typed, date_matrix


# Tiny networks on a busy machine: a second torch thread only spin-waits.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Dates without a time part (a leap day, a year end, 1999 and 2031), one missing.
DAYS = [dt.datetime(2024, 1, 5), dt.datetime(2023, 12, 31), None, dt.datetime(2024, 2, 29),
        dt.datetime(1999, 7, 14), dt.datetime(2031, 10, 1)]
# Moments with a time of day.
MOMENTS = [dt.datetime(2024, 1, 5, 8, 30), dt.datetime(2023, 12, 31, 23, 59, 59), None,
           dt.datetime(2024, 2, 29), dt.datetime(1999, 7, 14, 12, 0, 30), dt.datetime(2031, 10, 1, 6, 15)]


def oracle(values: list[dt.datetime | None], hour: bool) -> np.ndarray:
    """The date features computed with Python's datetime, NaN rows for missing values."""
    first = min(v for v in values if v is not None)
    rows = []
    for v in values:
        if v is None:
            rows.append([np.nan] * (7 if hour else 6))
            continue
        row = [v.year, v.month, v.day, v.weekday(), v.timetuple().tm_yday, (v - first).total_seconds() / 86400]
        rows.append(row + ([v.hour + v.minute / 60 + v.second / 3600] if hour else []))
    return np.array(rows, dtype="float64")


def unscaled(column: pd.Series | pd.DataFrame) -> np.ndarray:
    """The preprocessor's matrix (no scaling) of a one-column table, kinds inferred."""
    frame = column if isinstance(column, pd.DataFrame) else pd.DataFrame({"when": column})
    kinds = infer_column_kinds(frame)
    assert kinds == {str(frame.columns[0]): "date"}
    return Preprocessor(scaling=None).fit(frame, kinds=kinds).transform(frame)


def expected_matrix(values: list[dt.datetime | None], hour: bool) -> np.ndarray:
    """What the preprocessor must give: the features, medians where missing, one indicator."""
    features = oracle(values, hour)
    missing = np.isnan(features[:, 0])
    filled = np.where(missing[:, None], np.nanmedian(features, axis=0), features)
    return np.column_stack([filled, missing.astype("float64")]).astype("float32")


def _iso(values, sep=" ", fmt="%Y-%m-%d"):
    return [None if v is None else v.strftime(fmt.replace(" ", sep)) for v in values]


def _datetimes(values, unit="ns"):
    return pd.Series(pd.to_datetime([v for v in values]), dtype=f"datetime64[{unit}]")


DAY_CONTAINERS = {
    "iso_object": lambda: pd.Series(_iso(DAYS), dtype=object),
    "iso_str_dtype": lambda: pd.Series(_iso(DAYS), dtype="str"),
    "iso_string_dtype": lambda: pd.Series(_iso(DAYS), dtype="string"),
    "iso_padded_with_a_marker": lambda: pd.Series([f" {v} " if v else "NA" for v in _iso(DAYS)], dtype=object),
    "iso_with_midnight": lambda: pd.Series(_iso(DAYS, fmt="%Y-%m-%dT%H:%M:%S"), dtype=object),
    "datetime64_ns": lambda: _datetimes(DAYS, "ns"),
    "datetime64_us": lambda: _datetimes(DAYS, "us"),
    "datetime64_ms": lambda: _datetimes(DAYS, "ms"),
    "datetime64_s": lambda: _datetimes(DAYS, "s"),
    "tz_paris": lambda: _datetimes(DAYS).dt.tz_localize("Europe/Paris"),
    "tz_new_york": lambda: _datetimes(DAYS).dt.tz_localize("America/New_York"),
    "tz_kolkata": lambda: _datetimes(DAYS).dt.tz_localize("Asia/Kolkata"),
    "period_day": lambda: _datetimes(DAYS).dt.to_period("D"),
    "period_objects": lambda: pd.Series([None if v is None else pd.Period(v, "D") for v in DAYS], dtype=object),
    "date_objects": lambda: pd.Series([None if v is None else v.date() for v in DAYS], dtype=object),
    "datetime_objects": lambda: pd.Series(DAYS, dtype=object),
    "timestamp_objects": lambda: pd.Series([None if v is None else pd.Timestamp(v) for v in DAYS], dtype=object),
    "tz_aware_objects": lambda: pd.Series([None if v is None else v.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5)))
                                           for v in DAYS], dtype=object),
    "numpy_datetime64_objects": lambda: pd.Series([None if v is None else np.datetime64(v.date()) for v in DAYS],
                                                  dtype=object),
    "mixed_strings_and_dates": lambda: pd.Series([v.date() if i % 2 else (None if v is None else v.strftime("%Y-%m-%d"))
                                                  for i, v in enumerate(DAYS)], dtype=object),
}


@pytest.mark.parametrize("make", DAY_CONTAINERS.values(), ids=DAY_CONTAINERS.keys())
def test_the_same_dates_in_any_container_give_the_calendar_features(make):
    np.testing.assert_allclose(unscaled(make()), expected_matrix(DAYS, hour=False), rtol=1e-6)


def test_a_numpy_datetime64_array_is_a_table_of_dates():
    X = np.array([np.datetime64("NaT") if v is None else np.datetime64(v, "s") for v in DAYS]).reshape(-1, 1)
    frame, _ = as_frame(X)
    np.testing.assert_allclose(unscaled(frame), expected_matrix(DAYS, hour=False), rtol=1e-6)


MOMENT_CONTAINERS = {
    "iso_space": lambda: pd.Series(_iso(MOMENTS, fmt="%Y-%m-%d %H:%M:%S"), dtype=object),
    "iso_T_str_dtype": lambda: pd.Series(_iso(MOMENTS, fmt="%Y-%m-%dT%H:%M:%S"), dtype="str"),
    # A UTC offset is the place's: the wall-clock time written is the time kept.
    "iso_with_offsets": lambda: pd.Series([None if v is None else v.strftime("%Y-%m-%dT%H:%M:%S") + off
                                           for v, off in zip(MOMENTS, ["+05:30", "Z", "", "-08:00", "+0100", "+02"])],
                                          dtype=object),
    "iso_with_fractions": lambda: pd.Series([None if v is None else v.strftime("%Y-%m-%d %H:%M:%S") + ".250"
                                             for v in MOMENTS], dtype=object),
    "datetime64_ns": lambda: _datetimes(MOMENTS, "ns"),
    "datetime64_s": lambda: _datetimes(MOMENTS, "s"),
    "tz_tokyo": lambda: _datetimes(MOMENTS).dt.tz_localize("Asia/Tokyo"),
    "tz_utc": lambda: _datetimes(MOMENTS).dt.tz_localize("UTC"),
    "period_seconds": lambda: _datetimes(MOMENTS).dt.to_period("s"),
    "datetime_objects": lambda: pd.Series(MOMENTS, dtype=object),
    "tz_aware_objects": lambda: pd.Series([None if v is None else v.replace(tzinfo=dt.timezone.utc) for v in MOMENTS],
                                          dtype=object),
}


@pytest.mark.parametrize("make", MOMENT_CONTAINERS.values(), ids=MOMENT_CONTAINERS.keys())
def test_the_same_moments_in_any_container_give_the_features_and_the_hour(make):
    np.testing.assert_allclose(unscaled(make()), expected_matrix(MOMENTS, hour=True), rtol=1e-6)


def test_containers_agree_with_scaling_too():
    # The default robust scaling (and standard, quantile) treat the features as numbers: the
    # matrices of all containers are equal, not only the unscaled ones.
    for scaling in ("robust", "standard", "quantile"):
        matrices = [Preprocessor(scaling=scaling).fit(pd.DataFrame({"when": make()})).transform(
            pd.DataFrame({"when": make()})) for make in DAY_CONTAINERS.values()]
        for matrix in matrices[1:]:
            np.testing.assert_allclose(matrix, matrices[0], rtol=1e-6, atol=1e-6)


def test_years_beyond_pandas_nanoseconds_are_dates():
    # 0001-01-01 and 9999-12-31 (a common "no end" date) are outside datetime64[ns]'s range.
    values = [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31), dt.datetime(2024, 5, 5)]
    np.testing.assert_allclose(unscaled(pd.Series([v.date().isoformat() for v in values], dtype=object)), expected_matrix(values, False)[:, :-1],
                               rtol=1e-9)


def test_missing_dates_are_missing_values_with_one_indicator():
    column = pd.Series(["2024-01-01", "", "NA", None, "null", "2024-01-11", pd.NaT], dtype=object)
    frame = pd.DataFrame({"when": column})
    pre = Preprocessor(scaling=None).fit(frame)
    out = pre.transform(frame)
    assert pre.indicators_ == ["when.year"]  # one indicator for the column, not one per feature
    np.testing.assert_array_equal(out[:, -1], [0, 1, 1, 1, 1, 0, 1])
    # Medians fill the features of missing rows: 2024-01-01 and 2024-01-11 -> day 6, 5 elapsed days.
    np.testing.assert_allclose(out[1, :6], [2024, 1, 6, np.median([0, 3]), 6, 5])


# --------------------------------------------------------------------------- what is not a date


NOT_DATES = {
    "integer_codes": ["1", "2", "3", "4", "5"],
    "yyyymmdd_numbers": ["20240105", "20240106", "20240107", "20240108", "20240109"],
    "month_names": ["May", "June", "May", "July", "June"],
    "slashed_dates": ["3/4/2024", "5/6/2024", "1/1/2023", "2/2/2022", "7/7/2021"],
    "impossible_dates": ["2024-13-01", "2024-00-10", "2023-02-30", "2024-04-31", "2024-01-32"],
    "year_and_month": ["2024-01", "2024-02", "2024-03", "2024-01", "2024-02"],
    "half_dates_half_words": ["2024-01-01", "soon", "2024-01-03", "later", "never"],
    "free_text": ["met on 2024-01-05 at noon", "shipped 2024-02-01 by air", "no date here at all",
                  "called back on 2024-03-03", "returned 2024-04-04 damaged"],
    "numbers_in_object_column": [1, 2, 3, 4, 5],
}


@pytest.mark.parametrize("values", NOT_DATES.values(), ids=NOT_DATES.keys())
def test_codes_words_and_text_are_not_mistaken_for_dates(values):
    frame = pd.DataFrame({"c": pd.Series(values, dtype=object), "x": np.arange(5.0)})
    kinds = infer_column_kinds(frame)
    assert kinds["c"] != "date"
    assert not Preprocessor().fit(frame, kinds=kinds).dates_


# --------------------------------------------------------------------------- errors


def test_a_stray_value_in_a_date_column_names_its_row_at_fit():
    column = pd.Series(pd.date_range("2024-01-01", periods=20).strftime("%Y-%m-%d"), dtype=object)
    column[6] = "2023-02-30"
    with pytest.raises(DataError, match=r"data\.csv: column 'when' row 7: '2023-02-30' is not a date"):
        infer_column_kinds(pd.DataFrame({"when": column}), "data.csv")


@pytest.mark.parametrize("bad", ["soon", "2024-02-30", "05/01/2024", 5, True])
def test_a_value_that_is_not_a_date_at_predict_time_names_column_and_row(bad):
    fit = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=10), "x": np.arange(10.0)})
    pre = Preprocessor().fit(fit)
    later = pd.DataFrame({"when": pd.Series(["2024-03-01", "2024-03-02", bad], dtype=object), "x": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match=re.escape(f"new.csv: column 'when' row 3: {bad!r} is not a date")):
        pre.transform(later, "new.csv")


def test_an_estimator_refuses_a_bad_date_at_predict_naming_column_and_row():
    X = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=40).strftime("%Y-%m-%d"), "x": np.arange(40.0)})
    model = NeuralRegressor(max_epochs=1, units=8, hidden_layers=1, random_state=0).fit(X, np.arange(40.0))
    bad = X.head(4).copy()
    bad.loc[2, "when"] = "yesterday"
    with pytest.raises(DataError, match="column 'when' row 3: 'yesterday' is not a date"):
        model.predict(bad)


# --------------------------------------------------------------------------- learning and bundles


def _seasonal(n: int, seed: int = 0) -> tuple[pd.Series, np.ndarray]:
    """Days over five years and a target that follows the day of the year."""
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 5 * 365, n), unit="D")
    return pd.Series(days.strftime("%Y-%m-%d")), np.sin(2 * np.pi * days.day_of_year.to_numpy() / 365.25)


def test_a_target_that_follows_the_day_of_the_year_is_learned():
    iso, y = _seasonal(800)
    train, test = slice(0, 600), slice(600, None)
    scores = {}
    # The same strings with a letter in front are not ISO dates: a categorical column, whose
    # unseen held-out days carry no information.
    for name, column in (("date", iso), ("categorical", "d" + iso)):
        X = pd.DataFrame({"when": column})
        model = NeuralRegressor(max_epochs=30, units=64, hidden_layers=2, random_state=0).fit(X[train], y[train])
        scores[name] = model.score(X[test], y[test])
    assert model.preprocessor_.categorical_ == ["when"]
    assert scores["date"] > 0.9, scores
    assert scores["categorical"] < 0.3, scores


def test_a_model_with_date_columns_saves_loads_and_predicts_the_same_from_any_container(tmp_path):
    rng = np.random.default_rng(1)
    moments = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365 * 24, 120), unit="h")
    local = pd.Series(moments).dt.tz_localize("Europe/Paris")
    X = pd.DataFrame({"when": local, "day": pd.Series(moments.strftime("%Y-%m-%d")).where(rng.random(120) > 0.1),
                      "x": rng.normal(size=120)})
    y = moments.hour.to_numpy() + X["x"].to_numpy()
    model = NeuralRegressor(max_epochs=3, units=16, hidden_layers=1, random_state=0).fit(X, y)
    assert set(model.preprocessor_.dates_) == {"when", "day"}
    assert "hour" in model.preprocessor_.dates_["when"]["features"]
    assert "hour" not in model.preprocessor_.dates_["day"]["features"]
    same = archtune.load(archtune.save(model, tmp_path / "dates"))
    np.testing.assert_array_equal(same.predict(X), model.predict(X))
    # The same dates as the strings a CSV would hold, and as date objects.
    as_text = X.assign(when=local.dt.strftime("%Y-%m-%d %H:%M:%S"),
                       day=X["day"].map(lambda v: dt.date.fromisoformat(v) if isinstance(v, str) else None))
    np.testing.assert_allclose(same.predict(as_text), model.predict(X), rtol=1e-6)


def test_csv_and_parquet_files_with_date_columns_read_as_dates(tmp_path):
    frame = pd.DataFrame({"when": _datetimes(MOMENTS), "x": np.arange(6.0)})
    csv, parquet = tmp_path / "dates.csv", tmp_path / "dates.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    expected = np.column_stack([expected_matrix(MOMENTS, hour=True)[:, :-1], np.arange(6.0),
                                expected_matrix(MOMENTS, hour=True)[:, -1]]).astype("float32")
    for path in (csv, parquet):
        table = read_table(path)
        assert infer_column_kinds(table, path.name) == {"when": "date", "x": "numeric"}
        np.testing.assert_allclose(Preprocessor(scaling=None).fit(table).transform(table), expected, rtol=1e-6)


def test_the_preprocessor_state_round_trips_date_columns_through_json():
    frame = pd.DataFrame({"when": pd.Series(MOMENTS, dtype=object), "day": pd.Series(_iso(DAYS), dtype=object)})
    pre = Preprocessor(scaling="quantile").fit(frame)
    again = Preprocessor.from_state(json.loads(json.dumps(pre.to_state(), allow_nan=False)))
    assert again.dates_ == pre.dates_
    np.testing.assert_array_equal(again.transform(frame), pre.transform(frame))


# --------------------------------------------------------------------------- the other consumers


def test_baselines_and_lightgbm_see_the_same_date_features():
    containers = [DAY_CONTAINERS[name]() for name in ("iso_object", "datetime64_ms", "tz_paris", "period_day")]
    kinds = {"when": "date"}
    features = date_features(to_datetimes(containers[0]), DATE_FEATURES, 0.0)
    np.testing.assert_allclose(features[:, :5], oracle(DAYS, hour=False)[:, :5])
    encoding = TableEncoding.fit(pd.DataFrame({"when": containers[0]}), kinds)
    encoding = TableEncoding.from_dict(json.loads(json.dumps(encoding.to_dict())))
    for column in containers:
        frame = pd.DataFrame({"when": column})
        np.testing.assert_array_equal(date_matrix(_typed(frame, kinds)), features)
        np.testing.assert_array_equal(encoding.transform(frame), features)


def test_lightgbm_categorical_positions_account_for_date_features():
    frame = pd.DataFrame({"when": _iso(DAYS), "c": list("abcabc"), "x": np.arange(6.0)})
    encoding = TableEncoding.fit(frame, {"when": "date", "c": "categorical", "x": "numeric"})
    assert encoding.categorical_indices == [len(DATE_FEATURES)]
    assert encoding.transform(frame).shape == (6, len(DATE_FEATURES) + 2)


def test_wide_and_deep_feeds_date_features_to_the_deep_path():
    frame = pd.DataFrame({"x": np.arange(6.0), "when": _iso(DAYS)})
    pre = Preprocessor().fit(frame)
    wide = wide_inputs({"wide": ["x"]}, "wide_deep", pre)
    n_float = len(pre.numeric_) + len(pre.indicators_)
    assert sorted(wide.deep_columns) == [j for j in range(n_float) if j != 0]
    dated = wide_inputs({"wide": ["when"]}, "wide_deep", pre)
    assert sorted(dated.wide_columns) == list(range(1, n_float))


def test_a_search_with_a_date_column_runs_its_baselines_and_ensemble():
    from archtune.auto import AutoNeuralRegressor

    iso, y = _seasonal(300, seed=2)
    X = pd.DataFrame({"when": iso, "noise": np.random.default_rng(2).normal(size=300)})
    search = AutoNeuralRegressor(budget=2, space={"max_epochs": 3, "hidden_layers": 1, "units": 16},
                                 random_state=0).fit(X, y)
    board = search.leaderboard_
    baselines = board[board["model"].isin(["ridge", "random_forest", "hist_gradient_boosting", "lightgbm"])]
    assert len(baselines) == 4 and set(baselines["state"]) == {"BASELINE"}, board[["model", "state", "note"]]
    assert "ENSEMBLE" in set(board["state"])
    # Trees on the day of the year follow the season.
    assert baselines.set_index("model").loc["random_forest", "val_score"] > 0.9
    assert search.best_estimator_.preprocessor_.dates_.keys() == {"when"}
    assert np.isfinite(search.predict(X)).all()


def test_the_cli_fits_a_csv_with_a_date_column_and_info_names_a_dropped_column(tmp_path):
    iso, y = _seasonal(120)
    data = tmp_path / "days.csv"
    pd.DataFrame({"when": iso, "empty": np.nan, "y": y}).to_csv(data, index=False)
    out = tmp_path / "run"
    runner = CliRunner()
    fit = runner.invoke(cli, ["fit", str(data), "-t", "y", "-q", "--set", "max_epochs=2", "--set", "units=8",
                              "-o", str(out)])
    assert fit.exit_code == 0, fit.output
    info = runner.invoke(cli, ["info", str(out)])
    assert info.exit_code == 0, info.output
    assert "dropped:      'empty' (no values at fit" in info.output
    predict = runner.invoke(cli, ["predict", str(out), str(data)])
    assert predict.exit_code == 0, predict.output
    assert len(pd.read_csv(io.StringIO(predict.stdout))) == 120
