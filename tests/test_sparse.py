"""scipy sparse input (issue 14, fault 10): kept sparse, scaled by max-abs, densified per batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

import archtune
from archtune import DataError, NeuralClassifier, NeuralRegressor
from archtune.auto import AutoNeuralClassifier
from archtune.train.batches import DENSE_BATCH_BYTES, SparseRows, rows_differ, rows_per_batch
from tests.conftest import SHARED_DATASETS

SMALL = {"max_epochs": 4, "hidden_layers": 1, "units": 32, "random_state": 0}


def _sst2(name: str, n: int | None = None) -> pd.DataFrame:
    path = SHARED_DATASETS / "text" / name
    if not path.exists():
        pytest.skip(f"shared dataset {path} is not available")
    frame = pd.read_csv(path, sep="\t")
    return frame.sample(n, random_state=0) if n is not None else frame


@pytest.fixture(scope="module")
def small_sparse():
    """A 400 x 150 matrix at 5% density whose label is a sign of a linear score."""
    rng = np.random.default_rng(0)
    X = scipy.sparse.random(400, 150, density=0.05, random_state=0, format="csr", data_rvs=rng.random)
    y = (X @ rng.normal(size=150) > 0).astype(int)
    return X, y


def test_a_tfidf_pipeline_fits_and_scores_above_chance_on_sst2():
    train, test = _sst2("sst2_train.tsv.gz", 2000), _sst2("sst2_test.tsv.gz")
    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("net", NeuralClassifier(max_epochs=4, random_state=0))])
    pipe.fit(train["sentence"], train["label"])
    assert scipy.sparse.issparse(pipe[:-1].transform(test["sentence"][:5]))
    majority = max(test["label"].mean(), 1 - test["label"].mean())
    # Measured 0.727 with 3000 phrases and 6 epochs (the majority class is 0.509).
    assert pipe.score(test["sentence"], test["label"]) > majority + 0.1


def test_sparse_and_dense_inputs_give_the_same_predictions(small_sparse):
    X, y = small_sparse
    sparse = NeuralClassifier(**SMALL).fit(X, y)
    assert sparse.preprocessor_.scaling == "maxabs" and sparse.preprocessor_.sparse_
    # The oracle: the same matrix dense, with the same scaling (max-abs, no numeric embedding).
    dense = NeuralClassifier(**SMALL, scaling="maxabs", numeric_embedding=None).fit(X.toarray(), y)
    np.testing.assert_array_equal(sparse.predict_proba(X), dense.predict_proba(X.toarray()))
    assert sparse.history_["train_loss"].tolist() == dense.history_["train_loss"].tolist()
    # And a sparse-fitted model reads a dense copy the same way.
    np.testing.assert_array_equal(sparse.predict_proba(X.toarray()), sparse.predict_proba(X))


def test_maxabs_scaling_keeps_zeros_and_bounds_columns(small_sparse):
    X, y = small_sparse
    # Without early stopping the scaling is learned on every row, so every column's largest is 1.
    model = NeuralRegressor(**SMALL, early_stopping=False).fit(X * 7.0, y)
    rows = model.preprocessor_.transform_sparse((X * 7.0).tocsr())
    assert rows.nnz == X.nnz  # no zero filled in
    np.testing.assert_allclose(np.abs(rows).max(axis=0).toarray().ravel(), 1.0, rtol=1e-6)
    assert model.preprocessor_.scale_[int(X.indices[0])] > 1.0  # the factor 7 was learned


@pytest.mark.parametrize("kind", ["csc", "coo", "lil", "dok"])
def test_other_sparse_formats_are_accepted(small_sparse, kind):
    X, y = small_sparse
    reference = NeuralClassifier(**SMALL).fit(X, y)
    other = X.asformat(kind)
    model = NeuralClassifier(**SMALL).fit(other, y)
    np.testing.assert_array_equal(model.predict_proba(other), reference.predict_proba(X))
    assert model.score(other, y) == reference.score(X, y)


def test_a_sparse_array_and_validation_data_are_accepted(small_sparse):
    X, y = small_sparse
    model = NeuralClassifier(**SMALL).fit(scipy.sparse.csr_array(X[:300]), y[:300],
                                          validation_data=(X[300:], y[300:]))
    assert "val_loss" in model.history_ and model.predict(X[300:]).shape == (100,)


def test_nan_in_a_sparse_matrix_is_a_named_error(small_sparse):
    X, y = small_sparse
    bad = X.copy()
    bad.data[7] = np.nan
    row = int(np.searchsorted(bad.indptr, 7, side="right"))  # 1-based
    with pytest.raises(DataError, match=f"row {row}, column {int(bad.indices[7])} is nan"):
        NeuralClassifier(**SMALL).fit(bad, y)
    model = NeuralClassifier(**SMALL).fit(X, y)
    bad.data[7] = np.inf
    with pytest.raises(DataError, match="is inf: sparse input must be finite"):
        model.predict(bad)


def test_wrong_number_of_columns_at_predict_is_a_named_error(small_sparse):
    X, y = small_sparse
    model = NeuralClassifier(**SMALL).fit(X, y)
    with pytest.raises(DataError, match="X has 149 features, but NeuralClassifier is expecting 150"):
        model.predict(X[:, :149])
    with pytest.raises(DataError, match="X has 151 features"):
        model.predict_proba(scipy.sparse.hstack([X, X[:, :1]]).tocsr())


def test_a_sparse_fitted_model_survives_a_bundle(small_sparse, tmp_path):
    X, y = small_sparse
    model = NeuralRegressor(**SMALL).fit(X, y.astype(float))
    archtune.save(model, tmp_path / "sparse")
    again = archtune.load(tmp_path / "sparse")
    assert again.preprocessor_.sparse_ and again.preprocessor_.scaling == "maxabs"
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_sparse_input_to_a_dense_fitted_robust_model_is_a_named_error(small_sparse):
    X, y = small_sparse
    model = NeuralClassifier(**SMALL).fit(X.toarray(), y)
    with pytest.raises(DataError, match="fitted on a dense table .scaling='robust'.*toarray"):
        model.predict(X)


def test_the_search_refuses_sparse_input_by_name(small_sparse):
    X, y = small_sparse
    with pytest.raises(DataError, match="AutoNeuralClassifier does not take sparse input.*NeuralClassifier"):
        AutoNeuralClassifier(budget=1).fit(X, y)


def test_a_numeric_embedding_asked_for_is_dropped_with_a_warning(small_sparse):
    X, y = small_sparse
    with pytest.warns(UserWarning, match="numeric_embedding='periodic' is ignored: sparse input"):
        model = NeuralClassifier(**SMALL, numeric_embedding="periodic").fit(X, y)
    assert model.module_.numeric_embedding is None


def test_sparse_rows_densify_only_the_rows_asked_for():
    X = scipy.sparse.random(50, 20000, density=0.001, random_state=0, format="csr", dtype=np.float32)
    rows = SparseRows(X)
    batch = rows[torch.tensor([3, 1, 3])]
    assert batch.shape == (3, 20000) and batch.dtype == torch.float32
    np.testing.assert_array_equal(batch.numpy(), X[[3, 1, 3]].toarray())
    np.testing.assert_array_equal(rows[10:12].numpy(), X[10:12].toarray())
    # Evaluation batches of 20000 columns are cut to stay under DENSE_BATCH_BYTES.
    assert rows_per_batch(rows, 8192) == DENSE_BATCH_BYTES // (4 * 20000) < 8192
    assert rows_per_batch(torch.zeros(5, 3), 8192) == 8192
    assert rows_differ(rows) and not rows_differ(SparseRows(scipy.sparse.csr_matrix(np.ones((4, 3)))))


def test_the_learning_rate_finder_reads_sparse_batches(small_sparse):
    X, y = small_sparse
    model = NeuralClassifier(**{**SMALL, "max_epochs": 2}, learning_rate="auto").fit(X, y)
    assert model.learning_rate_ > 0 and model.learning_rate_ != 2e-3  # the finder's own suggestion
