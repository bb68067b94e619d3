"""The leaderboard's bootstrap scores computed as row sums (archtune.ensemble.bootstrap) equal
scikit-learn's scorer called on each resample (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import get_scorer

from archtune.ensemble.bootstrap import bootstrap_scores
from archtune.ensemble.build import recorded


def _oracle(scorer, prediction, y, classes, draws, weights):
    out = []
    for rows in draws:
        kwargs = {} if weights is None else {"sample_weight": weights[rows]}
        out.append(scorer(recorded(prediction, classes), rows.reshape(-1, 1), y[rows], **kwargs))
    return np.array(out)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name, task", [
    ("accuracy", "binary"), ("accuracy", "multiclass"), ("r2", "regression"), ("r2", "multi-output"),
    ("neg_mean_squared_error", "regression"), ("neg_root_mean_squared_error", "multi-output"),
    ("neg_mean_absolute_error", "multi-output"),
])
def test_row_sum_scores_equal_the_scorer_on_every_resample(name, task, weighted):
    rng = np.random.default_rng(3)
    n = 150
    classes = None
    if task in ("binary", "multiclass"):
        classes = np.array(["a", "b"] if task == "binary" else ["a", "b", "c", "d"])
        y = rng.choice(classes, size=n)
        prediction = rng.dirichlet(np.ones(len(classes)), size=n)
    else:
        shape = (n,) if task == "regression" else (n, 3)
        y = rng.normal(size=shape) * 3 + 1
        prediction = y + rng.normal(size=shape)
    weights = rng.uniform(0.2, 2.0, size=n) if weighted else None
    draws = [rng.integers(0, n, n) for _ in range(40)]
    scorer = get_scorer(name)
    fast = bootstrap_scores(scorer, prediction, y, classes, draws, weights)
    np.testing.assert_allclose(fast, _oracle(scorer, prediction, y, classes, draws, weights), rtol=1e-9, atol=1e-12)


def test_other_scorers_are_left_to_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.choice(np.array([0, 1]), size=50)
    prediction = rng.dirichlet(np.ones(2), size=50)
    draws = [rng.integers(0, 50, 50)]
    assert bootstrap_scores(get_scorer("roc_auc"), prediction, y, np.array([0, 1]), draws) is None
    assert bootstrap_scores(get_scorer("neg_log_loss"), prediction, y, np.array([0, 1]), draws) is None
    # A regression scorer on class probabilities, or accuracy on values: not computed here.
    assert bootstrap_scores(get_scorer("r2"), prediction, y, np.array([0, 1]), draws) is None
    assert bootstrap_scores(get_scorer("accuracy"), prediction[:, 0], y, None, draws) is None
