"""Wide&Deep (issue 6): wide features join the deep path's last hidden layer at the output."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


# --------------------------------------------------------------------------- categorical wide columns


def _level_table(seed: int, n: int = 3000, levels: int = 12):
    """Two categorical columns of 12 levels whose pair of levels sets the target (a random
    value per pair: no additive part, so only the pair tells it), plus one numeric signal
    and two noise columns."""
    rng = np.random.default_rng(seed)
    u, v = rng.integers(0, levels, n), rng.integers(0, levels, n)
    effect = 2.0 * rng.normal(size=(levels, levels))
    x = rng.normal(size=(n, 3))
    y = effect[u, v] + x[:, 0] + 0.3 * rng.normal(size=n)
    X = pd.DataFrame({"u": [f"u{i}" for i in u], "v": [f"v{i}" for i in v], "x0": x[:, 0], "x1": x[:, 1],
                      "x2": x[:, 2]})
    return X, y


@pytest.fixture(scope="module")
def levels():
    return _level_table(0)


def test_a_categorical_cross_in_the_wide_part_learns_a_pairwise_target(levels):
    X, y = levels
    # Measured over seeds 0-2 (10 epochs, 64 units, held-out R^2): deep only 0.60-0.65, wide
    # columns without their cross 0.61-0.64, wide with the cross 0.94-0.95.
    common = {**CLASSIC, "random_state": 0, "max_epochs": 10, "units": 64}
    deep = NeuralRegressor(**common).fit(X[:2000], y[:2000])
    common["arch"] = "wide_deep"
    no_cross = NeuralRegressor(**common, inputs={"wide": ["u", "v"]}).fit(X[:2000], y[:2000])
    crossed = NeuralRegressor(**common, inputs={"wide": ["u", "v"], "cross": [["u", "v"]]})
    crossed.fit(X[:2000], y[:2000])
    held_out = {name: m.score(X[2000:], y[2000:]) for name, m in
                (("deep", deep), ("no_cross", no_cross), ("crossed", crossed))}
    assert held_out["crossed"] > held_out["deep"] + 0.15, held_out
    assert held_out["crossed"] > held_out["no_cross"] + 0.15, held_out
    assert held_out["crossed"] > 0.85, held_out


@pytest.mark.parametrize("categorical", ["embedding", "onehot"])
def test_categorical_wide_columns_fit_predict_and_survive_a_bundle(levels, categorical, tmp_path):
    X, y = levels
    model = NeuralRegressor(arch="wide_deep", categorical=categorical, max_epochs=3, units=16, random_state=0,
                            inputs={"wide": ["u", "x0"], "cross": [["u", "v"], ["u", "x1"], ["x0", "x1"]]})
    with pytest.raises(InvalidParameterError, match="'v' is not a wide column"):
        model.fit(X[:300], y[:300])
    model.set_params(inputs={"wide": ["u", "v", "x0", "x1"], "cross": [["u", "v"], ["u", "x1"], ["x0", "x1"]]})
    model.fit(X[:1000], y[:1000])
    wide = model.model_config_.wide
    positions = model.preprocessor_.categorical_positions()
    assert wide.wide_categorical == (positions["u"], positions["v"])
    assert wide.wide_category_crosses == ((0, 1),) and len(wide.wide_mixed_crosses) == 1
    assert len(wide.crosses) == 1 and len(wide.wide_columns) == 2
    # One weight per level (row 0, missing or unseen, fixed at zero): a one-hot linear layer.
    tables = model.module_.wide_levels.tables
    assert [t.num_embeddings for t in tables] == [13, 13, 12 * 12 + 1, 13]
    assert all(float(t.weight[0].detach().abs().max()) == 0.0 for t in tables)
    assert float(tables[2].weight.detach().abs().sum()) > 0  # the cross was trained
    archtune.save(model, tmp_path / "wd")
    again = archtune.load(tmp_path / "wd")
    assert again.model_config_.wide == wide
    np.testing.assert_array_equal(again.predict(X[1000:1200]), model.predict(X[1000:1200]))


def test_an_unseen_level_has_no_active_wide_weight(levels):
    X, y = levels
    model = NeuralRegressor(arch="wide_deep", max_epochs=2, units=16, random_state=0,
                            inputs={"wide": ["u", "v"], "cross": [["u", "v"]]}).fit(X[:500], y[:500])
    net = model.module_
    row = X[:1].copy()
    unseen = row.assign(u="never seen")
    matrix = torch.from_numpy(model.preprocessor_.transform(pd.concat([row, unseen]), "X"))
    codes = net.wide_levels.codes(matrix)
    assert int(codes[0][1]) == 0 and int(codes[0][0]) > 0  # unseen: code 0
    with torch.no_grad():
        contributions = [table(code) for table, code in zip(net.wide_levels.tables, codes)]
    assert float(contributions[0][1].abs().sum()) == 0.0  # no weight of u for the unseen level
    cross = net.wide_levels.tables[2](torch.tensor([0])).detach()
    assert float(cross.abs().sum()) == 0.0
    prediction = model.predict(unseen)
    assert prediction.shape == (1,) and np.isfinite(prediction).all()


def test_cross_codes_are_exact_when_small_and_hashed_into_buckets_when_large():
    from archtune.models.wide import CROSS_BUCKETS, cross_codes, cross_size

    a, b = torch.tensor([0, 1, 1, 3, 2]), torch.tensor([2, 0, 1, 4, 4])
    assert cross_codes(a, b, 4, 5).tolist() == [0, 0, 1, 12, 8]  # (a - 1) * 4 + b; 0 when either is 0
    assert cross_size(4, 5) == 13
    big = 1000  # 999 x 999 pairs > CROSS_BUCKETS: hashed
    assert cross_size(big, big) == CROSS_BUCKETS + 1
    a = torch.arange(1, big).repeat_interleave(big - 1)
    b = torch.arange(1, big).repeat(big - 1)
    codes = cross_codes(a, b, big, big)
    assert int(codes.min()) >= 1 and int(codes.max()) <= CROSS_BUCKETS
    assert len(torch.unique(codes)) > 0.99 * CROSS_BUCKETS  # the pairs spread over the buckets


@pytest.mark.parametrize("inputs, message", [
    ({"wide": ["city"]}, r"inputs\['wide'\]: no column 'city'"),
    ({"wide": ["uu"]}, r"no column 'uu' \(did you mean 'u'\?\)"),
    ({"wide": ["u"], "cross": [["u", "w"]]}, r"inputs\['cross'\]: no column 'w'"),
])
def test_a_missing_wide_column_is_a_named_error(levels, inputs, message):
    X, y = levels
    with pytest.raises(InvalidParameterError, match=message):
        NeuralRegressor(arch="wide_deep", inputs=inputs, max_epochs=1).fit(X[:100], y[:100])
