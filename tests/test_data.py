"""Data: file readers, built-in datasets, the Preprocessor and target checks.

Oracles where a result can be computed another way: the readers against pandas reading the
same file with the right options, standard scaling against scikit-learn's StandardScaler,
quantile scaling against its QuantileTransformer.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import QuantileTransformer, StandardScaler

from archtune.data.datasets import list_datasets, load_dataset
from archtune.data.kinds import infer_column_kinds
from archtune.data.preprocess import Preprocessor
from archtune.data.readers import load_table, read_table
from archtune.data.target import encode_classes, regression_target
from archtune.errors import DataError, InvalidParameterError
from tests.conftest import load_shared, shared_path


@pytest.fixture(scope="module")
def magic() -> pd.DataFrame:
    """300 rows of the MAGIC telescope data, features and target together."""
    X, y = load_shared("magic.tsv.gz", n=300)
    return X.assign(target=y)


# =========================================================================== readers


def test_csv_round_trip_matches_pandas(magic, tmp_path):
    path = tmp_path / "magic.csv"
    magic.to_csv(path, index=False)
    got = read_table(path)
    pd.testing.assert_frame_equal(got, magic, check_exact=False, rtol=1e-12)


def test_tsv_round_trip_matches_pandas(magic, tmp_path):
    path = tmp_path / "magic.tsv"
    magic.to_csv(path, sep="\t", index=False)
    got = read_table(path)
    assert list(got.columns) == list(magic.columns)  # a comma reader would see one column
    pd.testing.assert_frame_equal(got, magic, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("name, sep, shape", [
    ("churn.tsv.gz", "\t", (5000, 21)),
    ("credit_default.csv.gz", ",", (30000, 25)),
])
def test_real_gzip_files_match_pandas(name, sep, shape):
    path = shared_path(name)
    got = read_table(path)
    expected = pd.read_csv(path, sep=sep, compression="gzip")
    assert got.shape == shape
    pd.testing.assert_frame_equal(got, expected)


def test_gzip_detected_by_content_not_name(magic, tmp_path):
    path = tmp_path / "magic.tsv"  # gzip bytes behind a plain ".tsv" name
    path.write_bytes(gzip.compress(magic.to_csv(sep="\t", index=False).encode()))
    pd.testing.assert_frame_equal(read_table(path), magic, check_exact=False, rtol=1e-12)


def test_parquet_keeps_dtypes(magic, tmp_path):
    frame = magic.head(50).assign(
        colour=pd.Categorical(["red", "green", "blue", "red", "green"] * 10),
        flag=[True, False] * 25,
    )
    path = tmp_path / "magic.parquet"
    frame.to_parquet(path)
    got = read_table(path)
    pd.testing.assert_frame_equal(got, frame)
    assert isinstance(got["colour"].dtype, pd.CategoricalDtype)


def test_parquet_detected_by_magic_bytes(magic, tmp_path):
    path = tmp_path / "table.data"
    magic.head(20).to_parquet(path)
    pd.testing.assert_frame_equal(read_table(path), magic.head(20))


def test_semicolon_csv(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("area;rooms;city\n70.5;3;Lyon\n45.25;2;Paris\n")
    got = read_table(path)
    assert list(got.columns) == ["area", "rooms", "city"]
    assert got["area"].tolist() == [70.5, 45.25]
    assert got["city"].tolist() == ["Lyon", "Paris"]


def test_pipe_separated_csv(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("area|rooms|city\n70.5|3|Lyon\n")
    assert read_table(path).to_dict("list") == {"area": [70.5], "rooms": [3], "city": ["Lyon"]}


def test_semicolon_csv_with_decimal_commas(tmp_path):
    # Excel in most of Europe writes "70,5" with ";" between fields.
    path = tmp_path / "prices.csv"
    path.write_text("area;rooms;city\n70,5;3;Lyon\n45,25;2;Paris\n-1,5;1;Nice\n")
    got = read_table(path)
    assert got["area"].tolist() == [70.5, 45.25, -1.5]
    assert got["rooms"].tolist() == [3, 2, 1]
    assert got["city"].tolist() == ["Lyon", "Paris", "Nice"]


def test_utf8_bom_is_not_part_of_first_column_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffarea,city\n70,Zürich\n".encode("utf-8"))
    got = read_table(path)
    assert list(got.columns) == ["area", "city"]
    assert got["city"].tolist() == ["Zürich"]


def test_latin1_text(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,price\ncafé,3\ncrème brûlée,7\n".encode("latin-1"))
    got = read_table(path)
    assert got["name"].tolist() == ["café", "crème brûlée"]
    assert got["price"].tolist() == [3, 7]


def test_utf16_text(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_bytes("name,price\nÅsa,3\n".encode("utf-16"))
    assert read_table(path)["name"].tolist() == ["Åsa"]


@pytest.mark.parametrize("write, match", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("\n\n  \n"), "empty"),
    (lambda p: p.write_text("a,b,target\n"), "header but no data rows"),
    (lambda p: p.write_text("a,b,a\n1,2,3\n"), "duplicate column name 'a'"),
    (lambda p: p.write_text("a,b\n1,2\n3,4,5,6\n"), "cannot be parsed"),
    (lambda p: p.write_bytes(b"\x1f\x8b\x08\x00garbage"), "gzip"),
    (lambda p: p.write_bytes(b"PK\x03\x04\x00\x00\x00\x00binary"), "binary"),
])
def test_malformed_files_raise_data_error_naming_the_file(tmp_path, write, match):
    path = tmp_path / "bad.csv"
    write(path)
    with pytest.raises(DataError, match=match) as info:
        read_table(path)
    assert "bad.csv" in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_table(tmp_path)


def test_damaged_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DataError, match="broken.parquet: not a readable Parquet file"):
        read_table(path)


# =========================================================================== built-in datasets

BUILTINS = {  # name: (rows, features, number of distinct targets or None for regression)
    "digits": (1797, 64, 10),
    "breast_cancer": (569, 30, 2),
    "wine": (178, 13, 3),
    "iris": (150, 4, 3),
    "diabetes": (442, 10, None),
}


def test_list_datasets_names_all_builtins():
    assert list_datasets() == sorted(BUILTINS)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_dataset_by_name(name):
    rows, features, n_classes = BUILTINS[name]
    frame = load_table(name)
    assert frame.shape == (rows, features + 1)
    assert frame.columns[-1] == "target"
    assert not frame.isna().any().any()
    if n_classes is None:
        assert pd.api.types.is_float_dtype(frame["target"])
        assert frame["target"].nunique() > 20
    else:
        assert frame["target"].nunique() == n_classes


def test_builtin_classes_are_named():
    assert set(load_dataset("iris")["target"]) == {"setosa", "versicolor", "virginica"}


def test_unknown_builtin_suggests_nearest_name():
    with pytest.raises(DataError, match=r"unknown built-in dataset 'irsi' \(did you mean 'iris'\?\)"):
        load_dataset("irsi")
    with pytest.raises(DataError, match=r"irsi: no such file \(did you mean 'iris'\?\)"):
        load_table("irsi")


def test_unknown_builtin_far_from_any_name_lists_them():
    with pytest.raises(DataError, match="breast_cancer, diabetes, digits, iris, wine"):
        load_table("zzzzzz")


def test_existing_file_wins_over_builtin_name(tmp_path, monkeypatch):
    (tmp_path / "iris").write_text("a,target\n1,x\n2,y\n")
    monkeypatch.chdir(tmp_path)
    assert load_table("iris").shape == (2, 2)


# =========================================================================== Preprocessor: numeric


@pytest.fixture(scope="module")
def house() -> pd.DataFrame:
    """2000 rows of house_16H features: skewed, heavy-tailed real numbers."""
    X, _ = load_shared("574_house_16H.tsv.gz", n=2000)
    return X


def test_standard_scaling_matches_sklearn(house):
    out = Preprocessor("standard").fit(house).transform(house)
    assert out.dtype == np.float32 and out.shape == house.shape
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-4)
    expected = StandardScaler().fit_transform(house.to_numpy())
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_standard_scaling_applies_training_statistics_to_new_rows(house):
    train, new = house.iloc[:1500], house.iloc[1500:]
    out = Preprocessor("standard").fit(train).transform(new)
    expected = StandardScaler().fit(train.to_numpy()).transform(new.to_numpy())
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_constant_column_is_not_divided_by_zero():
    frame = pd.DataFrame({"c": [3.0] * 10, "x": np.arange(10.0)})
    out = Preprocessor("standard").fit(frame).transform(frame)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, 0], 0)


def test_quantile_scaling_matches_sklearn(house):
    train, new = house.iloc[:1500], house.iloc[1500:]
    pre = Preprocessor("quantile").fit(train)
    # The TabM paper's setting: max(min(n / 30, 1000), 10) quantiles.
    oracle = QuantileTransformer(output_distribution="normal", n_quantiles=max(min(len(train) // 30, 1000), 10),
                                 subsample=None)
    oracle.fit(train.to_numpy())
    lo, hi = train.min().to_numpy(), train.max().to_numpy()
    for frame in (train, new):
        got = pre.transform(frame)
        expected = oracle.transform(frame.to_numpy())
        # scikit-learn sends every value tied with the training minimum (e.g. many zeros) to
        # the clip bound -5.2; archtune gives ties the middle of their rank. Compare inside.
        inside = (frame.to_numpy() > lo) & (frame.to_numpy() < hi)
        assert inside.mean() > 0.8
        np.testing.assert_allclose(got[inside], expected[inside], atol=1e-5)


def test_quantile_scaling_is_approximately_standard_normal(house):
    out = Preprocessor("quantile").fit(house).transform(house)
    untied = [j for j in range(out.shape[1]) if house.iloc[:, j].value_counts(normalize=True).iloc[0] < 0.01]
    assert len(untied) >= 5  # heavily tied columns (many zeros) cannot map to a normal
    for j in untied:
        col = out[:, j]
        assert abs(np.median(col)) < 0.05
        # Quartiles of a standard normal are at +-0.674.
        np.testing.assert_allclose(np.percentile(col, [25, 75]), [-0.674, 0.674], atol=0.05)


def test_quantile_scaling_is_robust_to_an_extreme_outlier(house):
    clean = house[["P1"]].copy()
    dirty = clean.copy()
    dirty.iloc[0, 0] = 1e12
    rest = slice(1, None)
    q_clean = Preprocessor("quantile").fit(clean).transform(clean)[rest, 0]
    q_dirty = Preprocessor("quantile").fit(dirty).transform(dirty)[rest, 0]
    s_dirty = Preprocessor("standard").fit(dirty).transform(dirty)[rest, 0]
    # The quantile map of the other rows hardly moves (only the top tail shifts by a rank),
    # keeps their order and their spread...
    assert np.percentile(np.abs(q_dirty - q_clean), 99) < 0.05
    assert np.all(np.diff(q_dirty[np.argsort(clean.iloc[1:, 0].to_numpy(), kind="stable")]) >= 0)
    assert 0.9 < np.std(q_dirty) < 1.1
    # ...where standard scaling squashes every other row to (almost) one value.
    assert np.std(s_dirty) < 0.05
    q_out = Preprocessor("quantile").fit(dirty).transform(dirty)
    assert np.abs(q_out).max() < 6


def test_no_scaling_leaves_values(house):
    out = Preprocessor(scaling=None).fit(house).transform(house)
    np.testing.assert_array_equal(out, house.to_numpy(dtype="float32"))


def test_unknown_scaling_is_rejected():
    with pytest.raises(InvalidParameterError, match="scaling must be one of"):
        Preprocessor("minmax")


def test_missing_numeric_values_get_median_and_indicator():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 10.0, np.nan], "b": [5.0, 6.0, 7.0, 8.0, 9.0]})
    pre = Preprocessor(scaling=None).fit(frame)
    assert pre.indicators_ == ["a"]
    out = pre.transform(frame)
    assert out.shape == (5, 3)  # a, b, then the indicator of a
    np.testing.assert_array_equal(out[:, 0], [1, 3, 3, 10, 3])  # median of 1, 3, 10
    np.testing.assert_array_equal(out[:, 1], frame["b"])
    np.testing.assert_array_equal(out[:, 2], [0, 1, 0, 0, 1])


def test_missing_value_first_seen_at_transform_gets_the_median():
    train = pd.DataFrame({"a": [1.0, 2.0, 4.0]})
    pre = Preprocessor(scaling=None).fit(train)
    out = pre.transform(pd.DataFrame({"a": [np.nan, 5.0]}))
    np.testing.assert_array_equal(out[:, 0], [2.0, 5.0])
    assert out.shape == (2, 1)  # no indicator: nothing was missing in fit


def test_numbers_stored_as_text_are_numeric():
    frame = pd.DataFrame({"a": ["1.5", "2", "-3e2", None]})
    pre = Preprocessor(scaling=None).fit(frame)
    assert pre.numeric_ == ["a"] and pre.categorical_ == []
    np.testing.assert_array_equal(pre.transform(frame)[:, 0], [1.5, 2, -300, 1.5])


# =========================================================================== Preprocessor: categorical


@pytest.fixture()
def mixed() -> pd.DataFrame:
    return pd.DataFrame({
        "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "city": ["Paris", "Lyon", "Paris", None, "Nice", "Paris"],
        "member": [True, False, True, True, False, True],
        "size": pd.Categorical(["S", "M", "L", "M", "M", None]),
    })


def test_categorical_columns_become_codes(mixed):
    pre = Preprocessor(scaling=None).fit(mixed)
    assert pre.numeric_ == ["x"]
    assert pre.categorical_ == ["city", "member", "size"]
    # The commonest level gets code 1; code 0 is kept for missing and unseen values.
    assert pre.categories_["city"][0] == "Paris"
    assert pre.categories_["member"][0] == "True"
    assert pre.categories_["size"][0] == "M"
    assert pre.cardinalities == (4, 3, 4)
    assert pre.n_numeric_out == 1
    out = pre.transform(mixed)
    assert out.shape == (6, 4)
    city = out[:, 1]
    assert city[0] == city[2] == city[5] == 1
    assert city[3] == 0  # missing
    assert len({city[1], city[4]}) == 2 and set(city[[1, 4]]) <= {2, 3}
    np.testing.assert_array_equal(out[:, 2], [1, 2, 1, 1, 2, 1])
    assert out[5, 3] == 0 and out[1, 3] == out[3, 3] == out[4, 3] == 1
    # Codes decode back to the original values.
    for j, name in enumerate(pre.categorical_, start=1):
        levels = ["<missing>"] + pre.categories_[name]
        decoded = [levels[int(c)] for c in out[:, j]]
        assert decoded == [("<missing>" if pd.isna(v) else str(v)) for v in mixed[name]]


def test_nullable_boolean_is_categorical():
    frame = pd.DataFrame({"flag": pd.array([True, None, False, True], dtype="boolean")})
    pre = Preprocessor().fit(frame)
    assert pre.categorical_ == ["flag"]
    np.testing.assert_array_equal(pre.transform(frame)[:, 0], [1, 0, 2, 1])


def test_unseen_category_gets_code_zero(mixed):
    pre = Preprocessor().fit(mixed)
    new = mixed.head(2).copy()
    new.loc[0, "city"] = "Marseille"
    out = pre.transform(new)
    assert out[0, 1] == 0
    assert out[1, 1] == pre.categories_["city"].index("Lyon") + 1


def test_onehot_encoding(mixed):
    pre = Preprocessor(scaling=None, categorical="onehot").fit(mixed)
    out = pre.transform(mixed)
    widths = [len(pre.categories_[c]) for c in pre.categorical_]
    assert widths == [3, 2, 3]
    assert out.shape == (6, 1 + sum(widths))
    assert pre.n_numeric_out == out.shape[1] and pre.cardinalities == ()
    city = out[:, 1:4]
    assert set(np.unique(city)) == {0.0, 1.0}
    np.testing.assert_array_equal(city.sum(axis=1), [1, 1, 1, 0, 1, 1])  # row 4 is missing
    np.testing.assert_array_equal(city[:, 0], [1, 0, 1, 0, 0, 1])  # "Paris" is the first level
    codes = Preprocessor(scaling=None).fit(mixed).transform(mixed)
    # One-hot and codes agree on which level each row holds.
    for j, (start, width) in enumerate(zip(np.cumsum([1] + widths[:-1]), widths), start=1):
        block = out[:, start:start + width]
        from_onehot = np.where(block.any(axis=1), block.argmax(axis=1) + 1, 0)
        np.testing.assert_array_equal(from_onehot, codes[:, j])


def test_onehot_unseen_category_is_all_zeros(mixed):
    pre = Preprocessor(categorical="onehot").fit(mixed)
    new = mixed.head(1).assign(city="Marseille")
    assert pre.transform(new)[0, 1:4].sum() == 0


def test_unknown_categorical_encoding_is_rejected():
    with pytest.raises(InvalidParameterError, match="categorical must be one of"):
        Preprocessor(categorical="ordinal")


# =========================================================================== state round trip


@pytest.mark.parametrize("scaling", ["standard", "quantile", None])
@pytest.mark.parametrize("categorical", ["embedding", "onehot"])
def test_state_round_trip_through_json(house, scaling, categorical):
    frame = house.iloc[:400].copy()
    frame.loc[frame.index[::7], "P1"] = np.nan
    frame["kind"] = np.where(frame["P5p1"] > frame["P5p1"].median(), "high", "low")
    frame["flag"] = frame["H2p2"] > 0.5
    pre = Preprocessor(scaling, categorical).fit(frame.iloc[:300])
    state = json.loads(json.dumps(pre.to_state(), allow_nan=False))
    again = Preprocessor.from_state(state)
    new = frame.iloc[300:].copy()
    new.iloc[0, new.columns.get_loc("kind")] = "unseen"
    np.testing.assert_array_equal(again.transform(new), pre.transform(new))
    assert again.n_numeric_out == pre.n_numeric_out and again.cardinalities == pre.cardinalities


# =========================================================================== errors


def test_stray_word_in_numeric_column_names_column_and_row(magic):
    frame = magic.drop(columns="target")
    frame["FLength"] = frame["FLength"].astype(object)
    frame.loc[16, "FLength"] = "n/a?"
    with pytest.raises(DataError, match=r"prices\.csv: column 'FLength' row 17: 'n/a\?' is not a number"):
        Preprocessor().fit(frame, where="prices.csv")


def test_stray_word_read_from_a_file(magic, tmp_path):
    frame = magic.astype({"FWidth": object})
    frame.loc[41, "FWidth"] = "twelve"
    path = tmp_path / "magic.csv"
    frame.to_csv(path, index=False)
    table = read_table(path)
    with pytest.raises(DataError, match=r"magic\.csv: column 'FWidth' row 42: 'twelve' is not a number"):
        Preprocessor().fit(table, where="magic.csv")


def test_stray_word_at_transform_names_column_and_row(magic):
    frame = magic.drop(columns="target")
    pre = Preprocessor().fit(frame)
    new = frame.astype({"FSize": object})
    new.loc[3, "FSize"] = "big"
    with pytest.raises(DataError, match=r"column 'FSize' row 4: 'big' is not a number"):
        pre.transform(new)


def test_row_label_of_a_shuffled_frame_is_its_index_label(magic):
    frame = magic.drop(columns="target").sample(frac=1.0, random_state=0)
    frame["FConc"] = frame["FConc"].astype(object)
    label = frame.index[5]
    frame.loc[label, "FConc"] = "oops"
    with pytest.raises(DataError) as info:
        Preprocessor().fit(frame)
    assert f"column 'FConc' row {label}: 'oops'" in str(info.value)
    assert "np.int64" not in str(info.value)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinity_names_column_and_row(magic, value):
    frame = magic.drop(columns="target")
    frame.loc[9, "FAlpha"] = value
    with pytest.raises(DataError, match=r"data\.csv: column 'FAlpha' row 10: -?inf is infinite"):
        Preprocessor().fit(frame, where="data.csv")
    pre = Preprocessor().fit(magic.drop(columns="target"))
    with pytest.raises(DataError, match=r"column 'FAlpha' row 10: -?inf is infinite"):
        pre.transform(frame)


# Entirely missing columns in every container they come in: floats, Python None, the
# strings pandas reads as missing, NaT, an empty category.
EMPTY_COLUMNS = {
    "nan": [np.nan] * 4,
    "none": [None] * 4,
    "markers": ["", "NA", " ", "null"],
    "nat": pd.Series([pd.NaT] * 4, dtype="datetime64[ns]"),
    "category": pd.Series([np.nan] * 4, dtype="category"),
}


@pytest.mark.parametrize("column", EMPTY_COLUMNS.values(), ids=EMPTY_COLUMNS.keys())
def test_an_all_missing_column_is_dropped_with_a_warning_naming_it(column):
    frame = pd.DataFrame({"ok": [1.0, 2.0, 3.0, 4.0], "empty": column})
    with pytest.warns(UserWarning, match="no values at all.*dropped: 'empty'"):
        pre = Preprocessor(scaling=None).fit(frame)
    assert pre.dropped_ == ["empty"]
    expected = Preprocessor(scaling=None).fit(frame[["ok"]]).transform(frame[["ok"]])
    np.testing.assert_array_equal(pre.transform(frame), expected)
    # At predict time the column is ignored, whatever it holds now.
    np.testing.assert_array_equal(pre.transform(frame.assign(empty=[5, "x", None, 2.5])), expected)
    again = Preprocessor.from_state(json.loads(json.dumps(pre.to_state(), allow_nan=False)))
    assert again.dropped_ == ["empty"]
    np.testing.assert_array_equal(again.transform(frame), expected)


def test_a_table_of_only_empty_columns_is_a_named_error():
    frame = pd.DataFrame({"a": [np.nan] * 3, "b": [None, "", "NA"]})
    with pytest.raises(DataError, match=r"data\.csv: every column is empty .*'a', 'b'"):
        infer_column_kinds(frame, "data.csv")
    with pytest.raises(DataError, match="every column is empty"):
        Preprocessor().fit(frame)


def test_an_estimator_with_an_all_missing_column_warns_predicts_saves_and_loads(tmp_path):
    import archtune
    from archtune import NeuralRegressor

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=60), "gone": np.nan, "z": rng.normal(size=60)})
    y = 2 * X["x"].to_numpy() - X["z"].to_numpy()
    with pytest.warns(UserWarning, match="dropped: 'gone'"):
        model = NeuralRegressor(max_epochs=2, units=8, hidden_layers=1, random_state=0).fit(X, y)
    assert model.preprocessor_.dropped_ == ["gone"] and model.n_features_in_ == 3
    assert model.preprocessor_.numeric_ == ["x", "z"]
    # The same network as without the column, and predict-time values in it are ignored.
    without = NeuralRegressor(max_epochs=2, units=8, hidden_layers=1, random_state=0).fit(X.drop(columns="gone"), y)
    np.testing.assert_allclose(model.predict(X), without.predict(X.drop(columns="gone")), rtol=1e-6)
    np.testing.assert_array_equal(model.predict(X.assign(gone=7.0)), model.predict(X))
    same = archtune.load(archtune.save(model, tmp_path / "gone"))
    assert same.preprocessor_.dropped_ == ["gone"]
    np.testing.assert_array_equal(same.predict(X), model.predict(X))


@pytest.mark.parametrize("dtype", [object, "str", "string"])
def test_missing_markers_are_missing_in_string_dtype_columns_too(dtype):
    # pandas 3 reads text as its "str" dtype, not object: the markers mean the same there.
    frame = pd.DataFrame({"n": pd.Series(["1.5", "", "NA", "4"], dtype=dtype),
                          "c": pd.Series(["a", "null", "b", "a"], dtype=dtype)})
    assert infer_column_kinds(frame) == {"n": "numeric", "c": "categorical"}
    pre = Preprocessor(scaling=None).fit(frame)
    assert pre.categories_["c"] == ["a", "b"] and pre.indicators_ == ["n"]
    np.testing.assert_array_equal(pre.transform(frame)[:, :2], [[1.5, 0], [2.75, 1], [2.75, 1], [4, 0]])


def test_a_column_empty_only_in_the_training_rows_is_dropped():
    # The table's kinds say numeric (a value in row 4); the training rows have none.
    frame = pd.DataFrame({"ok": [1.0, 2.0, 3.0, 4.0], "late": [np.nan, np.nan, np.nan, 7.0]})
    kinds = infer_column_kinds(frame)
    assert kinds["late"] == "numeric"
    with pytest.warns(UserWarning, match="column 'late' has no values in the training rows"):
        pre = Preprocessor().fit(frame.iloc[:3], kinds=kinds)
    assert pre.dropped_ == ["late"] and pre.numeric_ == ["ok"]
    assert pre.transform(frame).shape == (4, 1)


def test_transform_with_a_missing_column_names_it(magic):
    frame = magic.drop(columns="target")
    pre = Preprocessor().fit(frame)
    with pytest.raises(DataError, match="missing 1 column.*'FDist'"):
        pre.transform(frame.drop(columns="FDist"))


def test_integer_column_names_work_at_fit_and_transform():
    frame = pd.DataFrame({0: [1.0, 2.0, 3.0], 1: ["a", "b", "a"]})
    pre = Preprocessor(scaling=None).fit(frame)
    np.testing.assert_array_equal(pre.transform(frame), [[1, 1], [2, 2], [3, 1]])


# =========================================================================== targets


def test_class_target_with_missing_value_names_row():
    with pytest.raises(DataError, match="y row 3: the target is missing"):
        encode_classes(np.array([0.0, 1.0, np.nan, 1.0]))
    with pytest.raises(DataError, match="y row 2: the target is missing"):
        encode_classes(np.array(["a", None, "b"], dtype=object))


def test_class_target_with_infinity_names_row():
    with pytest.raises(DataError, match="y row 2: the target is infinite"):
        encode_classes(np.array([0.0, np.inf, 1.0]))


def test_single_class_message_is_plain():
    with pytest.raises(DataError, match=r"only one class \(1\): a classifier needs at least 2 classes"):
        encode_classes(np.array([1, 1, 1]))


def test_classes_are_sorted_and_codes_index_them():
    classes, codes = encode_classes(np.array(["b", "a", "c", "a"], dtype=object))
    assert classes.tolist() == ["a", "b", "c"]
    assert codes.tolist() == [1, 0, 2, 0]


def test_regression_target_errors_name_row():
    with pytest.raises(DataError, match="y row 2: the target is missing"):
        regression_target(np.array([1.0, np.nan]))
    with pytest.raises(DataError, match="y row 1: the target is infinite"):
        regression_target(np.array([-np.inf, 1.0]))
    with pytest.raises(DataError, match="y row 2: 'abc' is not a number"):
        regression_target(np.array([1.0, "abc"], dtype=object))
    np.testing.assert_array_equal(regression_target(np.array([1, 2])), [[1.0], [2.0]])


def test_missing_markers_in_a_dataframe_are_missing_values_at_fit_and_predict():
    # Issue 14 (fault 4): what pandas' read_csv reads as missing is missing in a DataFrame too.
    from archtune import NeuralRegressor
    from archtune.data.values import MISSING_MARKERS

    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=n)
    markers = ["", "   ", "nan", "NA", "null", "N/A", "None", "<NA>"]
    column = pd.Series(x, dtype=object)
    column[: len(markers)] = markers
    X = pd.DataFrame({"x": column, "z": rng.normal(size=n)})
    y = 2 * x + X["z"].to_numpy()
    model = NeuralRegressor(max_epochs=3, random_state=0).fit(X, y)
    # The column is numeric with a missing-value indicator, exactly as with NaN in its place.
    with_nan = X.assign(x=pd.to_numeric(column.mask(column.map(lambda v: str(v).strip() in MISSING_MARKERS)),
                                       errors="raise"))
    same = NeuralRegressor(max_epochs=3, random_state=0).fit(with_nan, y)
    assert model.preprocessor_.numeric_ == same.preprocessor_.numeric_ == ["x", "z"]
    assert model.preprocessor_.indicators_ == same.preprocessor_.indicators_ == ["x"]
    np.testing.assert_allclose(model.predict(X), same.predict(with_nan), rtol=1e-6)
    # Real junk keeps its named error.
    junk = X.copy()
    junk.loc[10, "x"] = "12 kg"
    with pytest.raises(DataError, match=r"column 'x'.*'12 kg' is not a number"):
        NeuralRegressor(max_epochs=1).fit(junk, y)


def test_integer_labels_in_an_object_array_come_back_as_integers():
    # Issue 14 (fault 5): labels in the type a user compares them with.
    from archtune import NeuralClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    words = pd.Series(np.where(X["a"] > 0, "yes", "no"))
    y = words.replace({"no": 0, "yes": 1})
    assert y.dtype == object  # what pandas gives
    model = NeuralClassifier(max_epochs=3, random_state=0).fit(X, y)
    assert model.classes_.dtype.kind == "i" and model.classes_.tolist() == [0, 1]
    assert model.predict(X).dtype.kind == "i"
    assert 0.5 < model.score(X, y) <= 1.0
    same = NeuralClassifier(max_epochs=3, random_state=0).fit(X, y.astype("int64"))
    np.testing.assert_array_equal(model.predict_proba(X), same.predict_proba(X))


def test_a_boolean_among_numbers_is_a_number_whatever_the_container():
    # Issue 14 (fault 3): a float column in an object array with one Python True stays numeric.
    from archtune.data.kinds import infer_column_kinds

    rng = np.random.default_rng(0)
    values = rng.normal(size=50).astype(object)
    values[3] = True
    values[7] = False
    frame = pd.DataFrame({"x": values, "flag": [True, False] * 25, "mixed": ["a", True] * 25})
    kinds = infer_column_kinds(frame)
    assert kinds == {"x": "numeric", "flag": "categorical", "mixed": "categorical"}
    pre = Preprocessor().fit(frame[["x"]], {"x": "numeric"})
    as_numbers = frame[["x"]].assign(x=[float(v) for v in values])
    np.testing.assert_allclose(pre.transform(frame[["x"]]), pre.transform(as_numbers))


def test_missing_markers_in_a_categorical_column_are_missing_values_everywhere():
    # Issue 14 (fault 4), categorical columns: the same markers are missing, not levels, in the
    # preprocessor, the baselines' typing and the LightGBM encoding.
    from archtune.data.kinds import infer_column_kinds
    from archtune.ensemble.gbm import TableEncoding
    from archtune.tune.baselines import _typed

    colour = pd.Series(["red", "blue", "", "NA", " ", "null", "red", None, "green", "n/a"] * 10, dtype=object)
    frame = pd.DataFrame({"colour": colour})
    kinds = infer_column_kinds(frame)
    assert kinds == {"colour": "categorical"}
    pre = Preprocessor(categorical="embedding").fit(frame, kinds)
    assert sorted(pre.categories_["colour"]) == ["blue", "green", "red"]
    codes = pre.transform(frame)[:, -1]
    missing = colour.isna() | colour.str.strip().isin(["", "NA", "null", "n/a"])
    assert np.all(codes[missing.to_numpy()] == 0) and np.all(codes[~missing.to_numpy()] > 0)
    assert _typed(frame, kinds)["colour"].isna().tolist() == missing.tolist()
    encoding = TableEncoding.fit(frame, kinds)
    assert encoding.levels["colour"] == ["blue", "green", "red"]
    assert np.isnan(encoding.transform(frame)[:, 0]).tolist() == missing.tolist()


def test_numeric_columns_transform_as_one_block_exactly_as_column_by_column():
    # Issue 14 (fault 7): numeric-dtype columns convert as one block; the result equals the
    # column-by-column path (object columns, and a block with an infinity, take that path).
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 6)), columns=[f"c{i}" for i in range(6)])
    frame.iloc[::7, 2] = np.nan
    frame["c4"] = frame["c4"].astype(object)  # an object column of numbers: the slow path
    kinds = {c: "numeric" for c in frame.columns}
    pre = Preprocessor().fit(frame, kinds)
    by_column = pre.transform(frame.astype(object))  # every column through the per-column path
    np.testing.assert_allclose(pre.transform(frame), by_column)
    broken = frame.copy()
    broken.iloc[5, 1] = np.inf
    with pytest.raises(DataError, match=r"column 'c1'.*is infinite"):
        pre.transform(broken)


@pytest.mark.parametrize("scaling", ["robust", "standard", "quantile", "maxabs", None])
def test_numeric_columns_fitted_as_a_block_equal_column_by_column(scaling):
    from archtune.data.preprocess import Preprocessor

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.lognormal(size=(200, 6)), columns=[f"c{i}" for i in range(6)])
    frame.iloc[rng.integers(0, 200, 30), 2] = np.nan  # missing values: medians and indicators
    frame["c4"] = 7.0  # constant: the scale falls back
    frame["c5"] = np.repeat([1.0, 2.0], 100)  # an IQR of 0 in part of the rows
    frame["c1"] = frame["c1"].round().astype("Int64")  # a nullable integer column
    frame.loc[5, "c1"] = pd.NA
    frame.insert(3, "word", rng.choice(["a", "b"], 200))  # splits the numbers into two blocks
    block = Preprocessor(scaling).fit(frame)
    # The same values as objects are read value by value, column by column.
    by_column = Preprocessor(scaling).fit(frame.astype(object))
    assert block.numeric_ == by_column.numeric_ == ["c0", "c1", "c2", "c3", "c4", "c5"]
    assert block.indicators_ == by_column.indicators_ == ["c1", "c2"]
    for name in ("medians_", "center_", "scale_"):
        np.testing.assert_allclose(getattr(block, name), getattr(by_column, name), rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(np.array(block.quantiles_, dtype=float).ravel(),
                               np.array(by_column.quantiles_, dtype=float).ravel(), rtol=1e-12)
    np.testing.assert_allclose(block.transform(frame), by_column.transform(frame.astype(object)), rtol=1e-6)
