"""A saved ensemble's weights come back bit for bit, so that it predicts exactly what it
predicted before saving (dividing weights that sum to 1 - 1e-16 by their sum again moves
about one weight vector in ten in its last bit)."""

from __future__ import annotations

import numpy as np

import archtune
from archtune.ensemble.model import Member, make_ensemble
from tests.conftest import load_shared


def _renormalising_moves_them() -> np.ndarray:
    """Counts over 23 picks whose normalised weights change when normalised again (seeded)."""
    rng = np.random.default_rng(0)
    while True:
        w = rng.multinomial(23, np.ones(4) / 4).astype(float)
        w = w[w > 0] / w[w > 0].sum()
        if (w / w.sum() != w).any():
            return w


def test_a_loaded_ensemble_has_the_saved_weights_and_predicts_the_same_bits(tmp_path):
    X, y = load_shared("574_house_16H.tsv.gz", n=200, seed=1)
    weights = _renormalising_moves_them()
    members = [Member(f"network {i}", archtune.NeuralRegressor(max_epochs=1, units=8, hidden_layers=1,
                                                               random_state=i).fit(X, y), "network", 0.5)
               for i in range(len(weights))]
    ensemble = make_ensemble("regression", members, weights, None, 0.5, list(X.columns))
    np.testing.assert_array_equal(ensemble.weights, weights)
    archtune.save(ensemble, tmp_path / "ensemble")
    loaded = archtune.load(tmp_path / "ensemble")
    np.testing.assert_array_equal(loaded.weights, ensemble.weights)
    np.testing.assert_array_equal(loaded.predict(X), ensemble.predict(X))
    unnormalised = make_ensemble("regression", members, np.array([2.0, 1.0, 1.0, 4.0])[:len(weights)], None)
    assert abs(unnormalised.weights.sum() - 1.0) < 1e-12  # weights that do not sum to 1 are normalised
