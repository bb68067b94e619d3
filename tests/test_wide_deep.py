"""Wide&Deep (issue 6): wide features join the deep path's last hidden layer at the output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import archtune
from archtune import NeuralRegressor
from archtune.errors import InvalidParameterError
from archtune.recipes import CLASSIC
from tests.conftest import load_shared


@pytest.fixture(scope="module")
def crafted():
    """house_16H plus two noise columns whose product carries a strong signal: linear for a
    wide part given the cross, a product a ReLU network must approximate piece by piece."""
    X, y = load_shared("574_house_16H.tsv.gz", n=4000, seed=1)
    rng = np.random.default_rng(0)
    X = X.assign(a=rng.normal(size=len(X)), b=rng.normal(size=len(X)))
    target = (y - y.mean()) / y.std() + 4.0 * X["a"] * X["b"]
    return X, target


def test_wide_and_deep_beats_deep_only_on_a_crafted_cross(crafted):
    X, y = crafted
    # Both with the classic training, which Wide&Deep (not a table-recipe family) gets by default.
    common = {**CLASSIC, "random_state": 0, "max_epochs": 15}
    deep = NeuralRegressor(**common).fit(X[:3000], y[:3000])
    wide = NeuralRegressor(**{**common, "arch": "wide_deep"}, inputs={"wide": ["a", "b"], "cross": [["a", "b"]]})
    wide.fit(X[:3000], y[:3000])
    # Same seed, same epochs: validation loss and held-out R^2 both favour Wide&Deep.
    assert wide.history_["val_loss"].min() < 0.5 * deep.history_["val_loss"].min()
    assert wide.score(X[3000:], y[3000:]) > deep.score(X[3000:], y[3000:]) + 0.03


def test_wide_columns_reach_the_output_directly_and_survive_a_bundle(crafted, tmp_path):
    X, y = crafted
    model = NeuralRegressor(arch="wide_deep", inputs={"wide": ["a"], "deep": ["P1", "P5p1", "b"]}, max_epochs=2,
                            random_state=0).fit(X[:500], y[:500])
    net = model.module_
    pre = model.preprocessor_
    assert net.wide == (pre.numeric_.index("a"),)
    assert sorted(net.deep) == sorted(pre.numeric_.index(c) for c in ("P1", "P5p1", "b"))
    # The output is linear in a wide column, with slope WIDE_GAIN x its weight.
    from archtune.models.network import WIDE_GAIN

    row = torch.from_numpy(pre.transform(X[:1], "X"))
    bumped = row.clone()
    bumped[0, net.wide[0]] += 1.0
    with torch.no_grad():
        slope = float(net(bumped) - net(row))
        assert slope == pytest.approx(WIDE_GAIN * float(net.wide_head.weight[0, 0]), rel=1e-4)
    archtune.save(model, tmp_path / "wd")
    np.testing.assert_allclose(archtune.load(tmp_path / "wd").predict(X[:50]), model.predict(X[:50]), rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "wide_deep"}, "needs inputs="),
    ({"inputs": {"wide": ["a"]}}, "needs arch='wide_deep'"),
    ({"arch": "wide_deep", "inputs": {"wide": ["aa"]}}, "no column 'aa'"),
    ({"arch": "wide_deep", "inputs": {"wide": ["a"], "cross": [["a", "P1"]]}}, "'P1' is not a wide column"),
    ({"arch": "wide_deep", "inputs": {"wide": ["a"], "cross": [["a", "nope"]]}}, "cross.*no column 'nope'"),
    ({"arch": "wide_deep", "inputs": {"wide": ["a"], "cross": ["ab"]}}, "a pair of wide columns"),
    ({"arch": "wide_deep", "inputs": {"wide": ["a"], "deep": []}}, "deep path has no columns"),
    ({"arch": "wide_deep", "inputs": {"wide": ["a", "b"], "cross": [{"a", "b"}]}}, "a pair of wide columns"),
    ({"arch": "wide_deep", "inputs": {"wide": ["a"], "cross": 5}}, "list of pairs of wide columns"),
    ({"arch": "wide_deep", "inputs": {"wide": "all"}}, "deep path has no columns"),
    ({"arch": "wide_deep", "inputs": {"narrow": ["a"]}}, "inputs must be a dict"),
])
def test_wide_deep_errors_are_named(crafted, kwargs, message):
    X, y = crafted
    if kwargs.get("inputs", {}).get("wide") == "all":
        kwargs = {**kwargs, "inputs": {"wide": list(X.columns)}}
    with pytest.raises(InvalidParameterError, match=message):
        NeuralRegressor(max_epochs=1, **kwargs).fit(X[:100], y[:100])


def test_multiple_inputs_as_a_dict_of_arrays(crafted):
    X, y = crafted
    deep = X.drop(columns=["a", "b"]).to_numpy()
    wide = X[["a", "b"]].to_numpy()
    inputs = {"wide": wide[:3000], "deep": deep[:3000]}
    model = NeuralRegressor(arch="wide_deep", inputs={"wide": "wide", "deep": "deep", "cross": [["wide[0]", "wide[1]"]]},
                            max_epochs=15, random_state=0).fit(inputs, y[:3000])
    assert len(model.module_.wide) == 2 and len(model.module_.deep) == deep.shape[1]
    held_out = {"wide": wide[3000:], "deep": deep[3000:]}
    assert model.score(held_out, y[3000:]) > 0.9  # the cross is what the wide part makes easy
    with pytest.raises(archtune.DataError, match="different row counts"):
        model.predict({"wide": wide[:5], "deep": deep[:6]})
