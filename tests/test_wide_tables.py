"""Wide tables: numeric embeddings off by default beyond archtune.recipes.EMBEDDING_MAX_COLUMNS
columns, in a fit and in the search (issue 14, fault 7)."""

from __future__ import annotations

import numpy as np
import pytest

from archtune import NeuralClassifier
from archtune.auto import AutoNeuralClassifier
from archtune.recipes import EMBEDDING_MAX_COLUMNS


def _table(columns: int, rows: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, columns)).astype(np.float32)
    return X, (X[:, :3].sum(1) > 0).astype(int)


@pytest.mark.parametrize("columns, expected", [(EMBEDDING_MAX_COLUMNS, "piecewise_linear"),
                                               (EMBEDDING_MAX_COLUMNS + 1, None)])
def test_default_embeddings_stop_at_the_wide_table_limit(columns, expected):
    X, y = _table(columns)
    model = NeuralClassifier(max_epochs=1, units=16, hidden_layers=1, n_bins=4, random_state=0).fit(X, y)
    assert model.model_config_.numeric.kind == expected
    # The first layer reads the columns themselves on a wide table, d_embedding of each otherwise.
    first = next(p for name, p in model.module_.named_parameters() if p.ndim == 2 and "embed" not in name)
    assert first.shape[1] == (columns if expected is None else columns * model.d_embedding)


def test_an_embedding_the_user_chose_is_kept_on_a_wide_table():
    X, y = _table(EMBEDDING_MAX_COLUMNS + 1)
    model = NeuralClassifier(numeric_embedding="periodic", d_embedding=4, n_frequencies=4, max_epochs=1, units=16,
                             hidden_layers=1, random_state=0).fit(X, y)
    assert model.model_config_.numeric.kind == "periodic"


def test_the_search_on_a_wide_table_starts_with_the_recipes_without_embeddings():
    X, y = _table(EMBEDDING_MAX_COLUMNS + 1, rows=200)
    model = AutoNeuralClassifier(budget=2, baselines=False, population=False, random_state=0).fit(X, y)
    trials = [t for t in model.study_.trials if t.state.is_finished()]
    assert len(trials) == 2 and trials[0].params != trials[1].params  # no recipe twice
    # The data's own choice (embeddings off) is not a user override: the recipes still come first.
    assert trials[0].user_attrs.get("recipe") is True
    assert all(t.user_attrs["config"].get("numeric_embedding") is None for t in trials)
    assert model.best_estimator_.model_config_.numeric.kind is None


def test_a_search_space_naming_embeddings_is_the_users():
    X, y = _table(EMBEDDING_MAX_COLUMNS + 1, rows=200)
    model = AutoNeuralClassifier(budget=1, space={"numeric_embedding": "periodic", "d_embedding": 4,
                                                  "n_frequencies": 4, "max_epochs": 1, "units": 16},
                                 baselines=False, random_state=0).fit(X, y)
    assert model.best_params_["numeric_embedding"] == "periodic"
