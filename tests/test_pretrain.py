"""Self-supervised pretraining (archtune.pretrain): the pretext tasks' pairs, their losses
falling on real data, the `Pretrained` result, its `Source` and its bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch

import archtune
from archtune import NeuralClassifier, NeuralRegressor
from archtune.errors import BundleError, DataError, InvalidParameterError
from archtune.bundles.pretrained import load_pretrained, save_pretrained
from archtune.pretraining.model import PretextNetwork
from archtune.pretraining.result import Pretrained
from archtune.pretraining.tasks import FeatureLayout, MaskedFeatures, Rotation
from archtune.transfer.source import Source

ADULT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tabular" / "adult.tsv.gz"
ADULT_CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
                     "native-country"]
SMALL = dict(hidden_layers=1, units=32, batch_size=64, random_state=0)


def _table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = a * 2 + rng.normal(scale=0.1, size=n)
    b[rng.random(n) < 0.1] = np.nan  # missing values: a missing-value indicator
    return pd.DataFrame({"a": a, "b": b, "colour": rng.choice(["red", "green", "blue"], n),
                         "city": rng.choice([f"c{i}" for i in range(12)], n)})


@pytest.fixture(scope="module")
def small_pretrained() -> tuple[Pretrained, pd.DataFrame]:
    X = _table()
    return archtune.pretrain(X, pretrain_epochs=3, **SMALL), X


# --------------------------------------------------------------------------- masked features


def test_corruption_replaces_about_the_rate_of_features_with_values_of_the_same_column_from_other_rows():
    n, rate = 4000, 0.3
    # Columns: 0, 1 numeric values; 2 the indicator of column 1; 3-5 a one-hot block; 6 a code
    # column; 7-8 text codes that must pass through. Every cell encodes (column, row) as
    # 1000 * row + column, so a corrupted cell tells where it came from.
    layout = FeatureLayout(numeric=(0, 1, 2), categorical=((3, 3, 4), (6, 1, 5)),
                           groups=((0,), (1, 2), (3, 4, 5), (6,)))
    rows = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    x = rows * 1000 + torch.arange(9, dtype=torch.float64)
    task = MaskedFeatures(layout, corruption_rate=rate)
    corrupted, mask = task.corrupt(x, torch.Generator().manual_seed(0))
    source_row, source_column = torch.div(corrupted, 1000, rounding_mode="floor"), corrupted % 1000
    assert torch.equal(source_column, x % 1000)  # every value comes from its own column
    for g, group in enumerate(layout.groups):
        replaced = source_row[:, group[0]] != rows[:, 0]
        assert torch.equal(replaced, mask[:, g])  # replaced exactly where the mask says, by another row
        for column in group[1:]:  # a group's cells come from one row (a value with its indicator)
            assert torch.equal(source_row[:, column], source_row[:, group[0]])
    assert torch.equal(corrupted[:, 7:], x[:, 7:])  # text codes untouched
    # About corruption_rate of the features: within 4 standard deviations of a binomial.
    sd = (rate * (1 - rate) / mask.numel()) ** 0.5
    assert abs(mask.double().mean().item() - rate) < 4 * sd
    # The partner rows are spread over the batch, not a fixed shift.
    assert len(torch.unique(source_row[mask[:, 0], 0])) > 0.5 * mask[:, 0].sum().item()


def test_the_masked_features_loss_is_zero_only_for_the_clean_rows_and_scores_each_part():
    layout = FeatureLayout(numeric=(0,), categorical=((1, 1, 3), (2, 2, 3)), groups=((0,), (1,), (2, 3)))
    task = MaskedFeatures(layout, predict_mask=False)
    x = torch.tensor([[0.5, 2.0, 0.0, 1.0], [-1.0, 0.0, 0.0, 0.0]])
    big = 50.0
    perfect = torch.tensor([[0.5, -big, -big, big, -big, -big, big], [-1.0, big, -big, -big, big, -big, -big]])
    assert task.loss(perfect, x).item() < 1e-6
    wrong_numeric = perfect.clone()
    wrong_numeric[:, 0] += 2.0
    # Squared error 4 on the one numeric column, averaged over the 3 features.
    assert task.loss(wrong_numeric, x).item() == pytest.approx(4.0 / 3, rel=1e-5)


def test_masked_features_pretraining_lowers_its_loss_on_a_real_table():
    if not ADULT.is_file():
        pytest.skip(f"the shared datasets are not here ({ADULT})")
    X = pd.read_csv(ADULT, sep="\t", nrows=2000).drop(columns="target")
    pretrained = archtune.pretrain(X, pretrain_epochs=6, categorical_features=ADULT_CATEGORICAL, hidden_layers=2,
                                   units=64, random_state=0)
    history = pretrained.history_
    assert pretrained.pretext_["name"] == "masked_features"
    assert len(history) == 6 and set(history["phase"]) == {"pretrain"}
    assert history["train_loss"].iloc[-1] < 0.85 * history["train_loss"].iloc[0]
    assert history["val_loss"].iloc[-1] < 0.9 * history["val_loss"].iloc[0]
    # The categorical columns are reconstructed: one block of logits per column.
    task_layout = FeatureLayout.from_preprocessor(pretrained.preprocessor_)
    assert len(task_layout.categorical) == len(ADULT_CATEGORICAL)


def test_validation_noise_is_the_same_every_pass_and_training_noise_is_fresh(small_pretrained):
    pretrained, X = small_pretrained
    layout = FeatureLayout.from_preprocessor(pretrained.preprocessor_)
    model = PretextNetwork(pretrained.module_, MaskedFeatures(layout), seed=3)
    x = torch.from_numpy(pretrained.preprocessor_.transform(X))
    with torch.no_grad():
        first, second = model.eval()(x), model.train().eval()(x)
        assert torch.equal(first, second)
        model.train()
        assert not torch.equal(model(x)[:, -len(layout.groups):], model(x)[:, -len(layout.groups):])
    model.eval()


# --------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("shape", [(2, 5, 5), (1, 4, 6)])
def test_rotation_copies_are_exact_rotations_with_their_labels(shape):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(7, *shape)).astype("float32")
    task = Rotation(shape)
    copies, labels = task.rotate(torch.from_numpy(images.reshape(7, -1)))
    turns = (0, 1, 2, 3) if shape[1] == shape[2] else (0, 2)
    assert task.n_outputs == len(turns)
    copies = copies.numpy().reshape(len(turns), 7, *shape)
    for r, k in enumerate(turns):
        assert np.array_equal(copies[r], np.rot90(images, k, axes=(2, 3)))  # numpy's rotation
        manual = images
        for _ in range(k):  # a quarter turn counter-clockwise: transpose, then flip the rows
            manual = np.flip(np.swapaxes(manual, 2, 3), axis=2)
        assert np.array_equal(copies[r], manual)
    assert labels.tolist() == [r for r in range(len(turns)) for _ in range(7)]


def test_rotation_turns_the_pixels_before_the_per_pixel_scaling():
    rng = np.random.default_rng(1)
    raw = rng.random((5, 1, 4, 4)).astype("float32")
    center, scale = rng.random(16).astype("float32"), 0.5 + rng.random(16).astype("float32")
    scaled = (raw.reshape(5, -1) - center) / scale
    copies, _ = Rotation((1, 4, 4), center, scale).rotate(torch.from_numpy(scaled))
    pixels = copies.numpy() * scale + center
    assert np.allclose(pixels.reshape(4, 5, 1, 4, 4)[1], np.rot90(raw, 1, axes=(2, 3)), atol=1e-5)


def test_rotation_pretraining_lowers_its_loss_on_fashion_mnist():
    from archtune.data.images import load_fashion_mnist

    try:
        images, _ = load_fashion_mnist("train", n=1000)
    except DataError as exc:
        pytest.skip(str(exc))
    pretrained = archtune.pretrain(images, arch="cnn", conv_blocks=2, filters=4, hidden_layers=1, units=32,
                                   batch_size=64, augment=(), pretrain_epochs=4, random_state=0)
    history = pretrained.history_
    assert pretrained.pretext_["name"] == "rotation" and pretrained.module_.head.out_features == 4
    assert history["val_loss"].iloc[-1] < 0.8 * history["val_loss"].iloc[0]
    assert history["val_loss"].iloc[-1] < 0.8 * np.log(4)  # well below chance


# --------------------------------------------------------------------------- result, source, bundle


def test_to_source_hands_over_the_pretrained_network_and_preprocessor(small_pretrained):
    pretrained, X = small_pretrained
    source = pretrained.to_source()
    assert isinstance(source, Source)
    assert source.module is pretrained.module_ and source.preprocessor is pretrained.preprocessor_
    assert source.model_config is pretrained.model_config_ and source.input_spec is pretrained.input_spec_
    assert source.task == "pretext:masked_features" and source.classes is None
    assert source.origin == f"pretrained (masked_features, {len(pretrained.history_)} epochs on {len(X)} rows)"
    assert source.lineage[-1]["step"] == "pretrained"
    assert source.inputs.feature_names == tuple(X.columns)
    assert pretrained.transform(X.head(5)).shape == (5, SMALL["units"])


def test_a_saved_pretrained_network_loads_identical(small_pretrained, tmp_path):
    pretrained, X = small_pretrained
    save_pretrained(pretrained, tmp_path / "run")
    again = load_pretrained(tmp_path / "run")
    x = torch.from_numpy(pretrained.preprocessor_.transform(X))
    with torch.no_grad():
        assert torch.equal(again.module_(x), pretrained.module_(x))
    pd.testing.assert_frame_equal(again.history_, pretrained.history_)
    assert again.pretext_ == pretrained.pretext_ and again.lineage_ == pretrained.lineage_
    assert again.preprocessor_.to_state() == pretrained.preprocessor_.to_state()
    assert again.input_spec_ == pretrained.input_spec_ and again.model_config_ == pretrained.model_config_
    assert again.to_source().origin == pretrained.to_source().origin


def test_a_truncated_or_changed_bundle_is_refused(small_pretrained, tmp_path):
    pretrained, _ = small_pretrained
    directory = save_pretrained(pretrained, tmp_path / "run")
    meta = json.loads((directory / "archtune.json").read_text())
    weights = directory / meta["weights_file"]
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="truncated"):
        load_pretrained(directory)
    weights.write_bytes(data)
    meta["pretext"]["n_outputs"] += 1  # a head of another width than the weights
    (directory / "archtune.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="do not match the architecture"):
        load_pretrained(directory)
    meta["estimator"] = "NeuralClassifier"
    (directory / "archtune.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="not of a pretrained network"):
        load_pretrained(directory)


def test_the_same_seed_pretrains_the_same_network_and_the_estimator_is_not_changed():
    X = _table(120)
    estimator = NeuralRegressor(**SMALL)
    before = estimator.get_params()
    a = archtune.pretrain(X, estimator=estimator, pretrain_epochs=2)
    b = archtune.pretrain(X, estimator=estimator, pretrain_epochs=2)
    assert estimator.get_params() == before and not hasattr(estimator, "module_")
    for (name, p), q in zip(a.module_.state_dict().items(), b.module_.state_dict().values()):
        assert torch.equal(p, q), name
    assert a.history_["train_loss"].tolist() == b.history_["train_loss"].tolist()


def test_bad_input_gets_a_named_error():
    X = _table(60)
    with pytest.raises(InvalidParameterError, match="pretext"):
        archtune.pretrain(X, pretext="jigsaw")
    with pytest.raises(InvalidParameterError, match="rotation.*needs images"):
        archtune.pretrain(X, pretext="rotation")
    with pytest.raises(InvalidParameterError, match="corruption_rate"):
        archtune.pretrain(X, corruption_rate=1.5)
    with pytest.raises(InvalidParameterError, match="pretrain_epochs"):
        archtune.pretrain(X, pretrain_epochs=0)
    with pytest.raises(InvalidParameterError, match="estimator"):
        archtune.pretrain(X, estimator="mlp")
    with pytest.raises(DataError, match="sparse"):
        archtune.pretrain(scipy.sparse.random(20, 5, density=0.5, format="csr"))
    with pytest.raises(DataError, match="2 rows"):
        archtune.pretrain(X.head(1))


def test_archtune_pretrain_is_callable_however_it_was_reached():
    import archtune.bundles.pretrained  # noqa: F401  (the package is archtune.pretraining: no name clash)

    assert callable(archtune.pretrain)
    result = archtune.pretrain(_table(40), estimator=NeuralClassifier(), pretrain_epochs=1, **SMALL)
    assert isinstance(result, archtune.Pretrained)


@pytest.mark.parametrize("family", ["mlp", "resnet", "tabm", "wide_deep", "sequence", "cnn"])
def test_every_family_pretrains_and_its_bundle_loads_identical(family, tmp_path):
    rng = np.random.default_rng(0)
    X, params = _table(64), {}
    if family == "wide_deep":
        params = {"inputs": {"wide": ["a"]}}
    elif family == "sequence":
        X, params = rng.normal(size=(64, 6, 2)).astype("float32"), {"sequence": "gru", "sequence_units": 8}
    elif family == "cnn":
        X, params = rng.random((64, 1, 8, 6)).astype("float32"), {"conv_blocks": 1, "filters": 4}
    pretrained = archtune.pretrain(X, arch=family, pretrain_epochs=1, **SMALL, **params)
    assert pretrained.pretext_["name"] == ("rotation" if family == "cnn" else "masked_features")
    again = load_pretrained(save_pretrained(pretrained, tmp_path / family))
    x = torch.from_numpy(pretrained.preprocessor_.transform(pretrained.inputs().frame(X)))
    with torch.no_grad():
        assert torch.equal(again.module_(x), pretrained.module_(x))
