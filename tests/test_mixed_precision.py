"""mixed_precision="bf16": the forward pass runs in bfloat16, and accuracy stays close to float32.

The accuracy check is the one the option's docstring promises: on 2000 rows of MAGIC (real
data), a network and a cohort trained with bfloat16 forward passes score within 0.02 of the
same configurations trained in float32, on the same held-out rows.
"""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split

from archtune import NeuralClassifier, NeuralRegressor
from archtune.errors import InvalidParameterError
from archtune.population import fit_population
from archtune.recipes import CLASSIC

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = dict(CLASSIC, hidden_layers=2, units=64, max_epochs=8, early_stopping=False, random_state=0)


def _split(data):
    X, y = data
    return train_test_split(X, y, test_size=0.3, random_state=0)


class _Dtypes:
    """Records the dtype of every Linear layer's output while the network trains."""

    def __init__(self):
        self.seen: set[torch.dtype] = set()

    def __call__(self, module, inputs, output):
        if module.training:
            self.seen.add(output.dtype)


def test_bf16_fit_runs_in_bfloat16_and_scores_within_002_of_float32(magic_small):
    X_tr, X_te, y_tr, y_te = _split(magic_small)
    full = NeuralClassifier(**SMALL).fit(X_tr, y_tr)
    half = NeuralClassifier(**SMALL, mixed_precision="bf16")
    half.fit(X_tr, y_tr)
    # Trained in bfloat16: refit with a hook on the network the fit builds to see it.
    dtypes = _Dtypes()
    original = torch.nn.Linear.forward

    def recording(self, x):
        out = original(self, x)
        dtypes(self, (x,), out)
        return out

    torch.nn.Linear.forward = recording
    try:
        NeuralClassifier(**dict(SMALL, max_epochs=1), mixed_precision="bf16").fit(X_tr[:300], y_tr[:300])
    finally:
        torch.nn.Linear.forward = original
    assert dtypes.seen == {torch.bfloat16}
    # The weights stay float32, and so do predictions.
    assert all(p.dtype == torch.float32 for p in half.module_.parameters())
    assert half.predict_proba(X_te).dtype.kind == "f"
    full_acc, half_acc = accuracy_score(y_te, full.predict(X_te)), accuracy_score(y_te, half.predict(X_te))
    assert full_acc > 0.75  # a real fit, not two equally broken ones
    assert abs(half_acc - full_acc) <= 0.02, (half_acc, full_acc)
    # Not the float32 fit under another name: bfloat16 rounding changes the weights.
    assert not torch.equal(full.module_.state_dict()["head.weight"], half.module_.state_dict()["head.weight"])


def test_bf16_cohort_members_score_within_002_of_their_float32_selves(magic_small):
    X_tr, X_te, y_tr, y_te = _split(magic_small)
    rates = (3e-3, 1e-3, 3e-4)
    full = [NeuralClassifier(**dict(SMALL, learning_rate=r)) for r in rates]
    half = [NeuralClassifier(**dict(SMALL, learning_rate=r), mixed_precision="bf16") for r in rates]
    assert fit_population(full, X_tr, y_tr) == [None] * 3
    assert fit_population(half, X_tr, y_tr) == [None] * 3
    for f, h in zip(full, half):
        full_acc, half_acc = accuracy_score(y_te, f.predict(X_te)), accuracy_score(y_te, h.predict(X_te))
        assert abs(half_acc - full_acc) <= 0.02, (half_acc, full_acc)


def test_bf16_regression_keeps_its_r2(house_small):
    X_tr, X_te, y_tr, y_te = _split(house_small)
    full = NeuralRegressor(**SMALL).fit(X_tr, y_tr)
    half = NeuralRegressor(**SMALL, mixed_precision="bf16").fit(X_tr, y_tr)
    full_r2, half_r2 = r2_score(y_te, full.predict(X_te)), r2_score(y_te, half.predict(X_te))
    assert full_r2 > 0.3
    assert abs(half_r2 - full_r2) <= 0.03, (half_r2, full_r2)


def test_an_unknown_precision_is_named():
    with pytest.raises(InvalidParameterError, match="mixed_precision"):
        NeuralClassifier(mixed_precision="fp8").fit([[0.0], [1.0], [2.0], [3.0]], [0, 1, 0, 1])
