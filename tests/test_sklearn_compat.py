"""scikit-learn compatibility: the estimator checks, Pipeline, GridSearchCV, RandomizedSearchCV."""

from __future__ import annotations

import numpy as np
from scipy.stats import loguniform
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from archtune import NeuralClassifier, NeuralRegressor

SUBSET_REASON = (
    "float32 matrix products are blocked differently for different batch sizes, so predicting a "
    "subset agrees with predicting the whole to about 1e-7 relative, not to the check's rtol=1e-7"
)


EQUIVALENCE_REASON = (
    "a weight of k equals k copies of the row in each batch's loss (tests/test_weights.py checks it with "
    "full batches), but repeated rows change the number of rows, hence the validation split, the "
    "mini-batches and the preprocessor's statistics; a weight of 0 is exactly a removed row (tested)"
)


def _expected_failures(estimator):
    return {"check_methods_subset_invariance": SUBSET_REASON,
            "check_sample_weight_equivalence_on_dense_data": EQUIVALENCE_REASON,
            "check_sample_weight_equivalence_on_sparse_data": EQUIVALENCE_REASON}


@parametrize_with_checks(
    [NeuralClassifier(max_epochs=30), NeuralRegressor(max_epochs=30)],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_inside_a_pipeline(magic_small):
    X, y = magic_small
    pipe = make_pipeline(FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                         NeuralClassifier(max_epochs=5, random_state=0))
    pipe.fit(X.abs(), y)
    assert pipe.score(X.abs(), y) > 0.75


def test_grid_search_cv(magic_small):
    X, y = magic_small
    grid = GridSearchCV(NeuralClassifier(max_epochs=4, random_state=0),
                        {"units": [16, 64], "activation": ["relu", "tanh"]}, cv=2)
    grid.fit(X[:800], y[:800])
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_params_["units"] in (16, 64)
    assert grid.best_estimator_.score(X, y) > 0.7


def test_randomized_search_cv(house_small):
    X, y = house_small
    search = RandomizedSearchCV(
        NeuralRegressor(max_epochs=4, random_state=0),
        {"learning_rate": loguniform(1e-4, 1e-2), "hidden_layers": [1, 2, 3], "dropout": [0.0, 0.2]},
        n_iter=3, cv=2, random_state=0,
    )
    search.fit(X[:800], np.log1p(y[:800]))
    assert len(search.cv_results_["params"]) == 3
    assert 1e-4 <= search.best_params_["learning_rate"] <= 1e-2
