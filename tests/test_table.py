"""A table read once (archtune.data.table): made at a public entry, its kinds inferred once,
split with `Table.take`, and read by the fit, the search and the command line as it is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

import archtune.data.kinds
import archtune.data.table
from archtune import NeuralClassifier, NeuralRegressor
from archtune.data.table import Table
from archtune.errors import DataError
from archtune.fitting import prepare, train
from archtune.task import task_named
from archtune.tune.data import SearchData, search_splits

SMALL = {"hidden_layers": 1, "units": 8, "max_epochs": 2, "verbose": 0}


def _frame(n: int = 80) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({"a": rng.normal(size=n) + y, "b": rng.integers(0, 5, n).astype(float),
                          "c": rng.choice(["u", "v", "w"], n), "d": pd.date_range("2020-01-01", periods=n)})
    return frame, y


def test_take_keeps_kinds_names_source_and_weights_on_dense_rows():
    frame, _ = _frame()
    table = Table.read(frame, "data.csv").typed().with_weights(np.arange(80, dtype=float))
    part = table.take(np.array([3, 1, 7]))
    assert part.n_rows == 3 and part.n_columns == 4 and not part.is_sparse
    assert part.rows.index.tolist() == [3, 1, 7]
    assert part.kinds == table.kinds == {"a": "numeric", "b": "numeric", "c": "categorical", "d": "date"}
    assert part.feature_names == ("a", "b", "c", "d") and part.source == "data.csv"
    np.testing.assert_array_equal(part.weights, [3.0, 1.0, 7.0])


def test_take_on_sparse_rows_stays_sparse():
    matrix = scipy.sparse.random(20, 6, density=0.3, format="coo", random_state=0)
    table = Table.read(matrix)
    assert table.is_sparse and table.kinds == {} and table.feature_names is None
    part = table.take([0, 5, 19])
    assert part.is_sparse and part.n_rows == 3 and part.n_columns == 6
    np.testing.assert_array_equal(part.rows.toarray(), matrix.tocsr()[[0, 5, 19]].toarray())


def test_read_arrays_dicts_images_and_bad_input():
    named = Table.read({"w": np.ones((5, 2)), "p": np.arange(5)})
    assert named.columns == ["w[0]", "w[1]", "p"] and named.named
    plain = Table.read(np.zeros((4, 3)))
    assert plain.columns == ["x0", "x1", "x2"] and plain.feature_names is None
    images = Table.read(np.zeros((6, 1, 4, 4), dtype=np.uint8))
    assert images.array_kind == "image" and images.array_shape == (1, 4, 4) and images.n_columns == 16
    series = Table.read(np.zeros((6, 5, 2)), arch="sequence")
    assert series.array_kind == "series" and series.array_shape == (5, 2)
    assert Table.read(plain) is plain
    with pytest.raises(DataError, match="data.csv must be 2-dimensional"):
        Table.read(np.zeros(5), "data.csv")
    with pytest.raises(DataError, match="data.csv"):
        Table.read(pd.DataFrame({"a": [1.0, np.inf, 3.0]}), "data.csv").typed()  # typing names the source


@pytest.fixture
def no_inference(monkeypatch):
    """After this, inferring column kinds raises: what runs must read the Table's kinds."""
    def refuse(*args, **kwargs):
        raise AssertionError("column kinds inferred again")

    def arm():
        monkeypatch.setattr(archtune.data.table, "infer_column_kinds", refuse)
        monkeypatch.setattr(archtune.data.kinds, "infer_column_kinds", refuse)
    return arm


def test_a_fit_and_a_search_split_read_the_kinds_of_the_entry(no_inference):
    frame, y = _frame()
    table = Table.read(frame).typed()  # the entry: read and typed once
    no_inference()
    model = NeuralClassifier(**SMALL, random_state=0).fit(table, y)
    assert model.predict(frame).shape == (80,)
    assert list(model.feature_names_in_) == ["a", "b", "c", "d"]
    # The search: its data, splits (two Tables each) and a trial's preparation.
    data = SearchData.read(task_named("classification"), table, y)
    assert data.kinds == dict(table.kinds)
    splits, baselines = data.splits(0, 3, 0.2)
    assert splits is baselines and len(splits) == 3
    split = splits[0]
    assert split.train.kinds == table.kinds and isinstance(split.X_train, pd.DataFrame)
    prepared = prepare(NeuralClassifier(**SMALL, random_state=0), split.fit_rows, split.y_train,
                       split.validation_data, sample_weight=split.w_train)
    assert prepared.X_val is not None and len(prepared.X_val) == split.val.n_rows
    assert train(prepared).best_epoch >= 0
    # The hold-out split of the search: same rows as the folds' rule, weights carried.
    weighted = search_splits(table.with_weights(np.ones(80)), y, None, 0, None, 0.25)
    assert weighted[0].w_val is not None and weighted[0].val.n_rows == 20


def test_fit_on_a_dataframe_equals_fit_on_its_table():
    frame, y = _frame(120)
    target = frame["a"].to_numpy() * 2 + y
    for cls, labels in ((NeuralClassifier, y), (NeuralRegressor, target)):
        weights = np.where(np.arange(120) % 9 == 0, 0.0, 1.0)
        direct = cls(**SMALL, random_state=3).fit(frame, labels, sample_weight=weights)
        tabled = cls(**SMALL, random_state=3).fit(Table.read(frame).typed(), labels, sample_weight=weights)
        np.testing.assert_array_equal(direct.predict(frame), tabled.predict(frame))
        losses = [c for c in direct.history_.columns if "loss" in c]
        pd.testing.assert_frame_equal(direct.history_[losses], tabled.history_[losses])
        assert direct.n_features_in_ == tabled.n_features_in_ == 4


def test_the_command_line_table_names_the_file_in_errors():
    from archtune.cli.common import check_values

    with pytest.raises(DataError, match="holes.csv"):
        check_values(pd.DataFrame({"a": [1.0, 2.0, np.inf, 4.0] * 3}), "holes.csv")
    table = check_values(pd.DataFrame({"a": [1.0, 2.0, 3.0] * 4, "b": list("xyzw") * 3}), "ok.csv")
    assert table.source == "ok.csv" and table.kinds == {"a": "numeric", "b": "categorical"}
