"""Pretrained image backbones (models/backbones.py, models/backbone_weights.py): torchvision's
names and shapes, weight files read back bit for bit, bad files refused with nothing run,
bundles that load without the file."""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import archtune
from archtune import NeuralClassifier
from archtune.config import ModelConfig
from archtune.config_groups import ConvConfig
from archtune.errors import BundleError, InvalidParameterError
from archtune.fitting import input_matrix
from archtune.models import InputSpec, build_model
from archtune.models.backbone_weights import backbone_modules, load_backbone_weights
from archtune.models.backbones import BACKBONES, ImageNetInput, backbone_class, build_backbone
from archtune.train import Callback

FIXTURE = Path(__file__).parent / "data" / "torchvision_backbones.json"
TORCHVISION = json.loads(FIXTURE.read_text())["backbones"]


def images(n: int = 64, channels: int = 3, side: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n, channels, side, side), dtype=np.uint8)
    half = side // 2
    y = (X[:, 0, :half].mean(axis=(1, 2)) > X[:, 0, half:].mean(axis=(1, 2))).astype(int)
    return X, y


def source_state(name: str, seed: int = 1, head: bool = False) -> dict[str, torch.Tensor]:
    """A backbone's state dict with distinctive values (batch-norm statistics included), as a
    torchvision weights file would hold it, optionally with the classifier's entries."""
    module = build_backbone(name, torch.Generator().manual_seed(seed))
    generator = torch.Generator().manual_seed(seed + 1)
    state = {}
    for key, value in module.state_dict().items():
        if value.is_floating_point():
            value = value + torch.randn(value.shape, generator=generator) * 0.01
        state[key] = value.clone()
    if head:
        for key, shape in TORCHVISION[name]["entries"]:
            if key.startswith(TORCHVISION[name]["head_prefix"]):
                state[key] = torch.randn(shape, generator=generator)
    return state


def network(name: str, weights: Path | None, channels: int = 3, side: int = 32):
    conv = ConvConfig(backbone=name, backbone_weights=None if weights is None else str(weights))
    config = ModelConfig(arch="cnn", hidden_sizes=(8,), image_shape=(channels, side, side), conv=conv)
    net = build_model(config, InputSpec(channels * side * side), 2, "multiclass", torch.Generator().manual_seed(0))
    return net, config


def classifier(**params) -> NeuralClassifier:
    defaults = dict(arch="cnn", hidden_sizes=(8,), max_epochs=1, batch_size=32, random_state=0, augment=False)
    return NeuralClassifier(**{**defaults, **params})


# --------------------------------------------------------------------------- torchvision's layout


@pytest.mark.parametrize("name", BACKBONES)
def test_names_and_shapes_are_torchvisions(name):
    spec = TORCHVISION[name]
    head = spec["head_prefix"]
    expected = [(key, list(shape)) for key, shape in spec["entries"] if not key.startswith(head)]
    ours = [(key, list(value.shape)) for key, value in backbone_class(name)().state_dict().items()]
    assert ours == expected
    assert len(expected) < len(spec["entries"])  # the fixture holds the classifier that is dropped


@pytest.mark.parametrize("name", BACKBONES)
def test_pooled_features_feed_torchvisions_classifier(name):
    # The width of the pooled features is the input width of torchvision's classifier.
    head_in = dict((key, shape) for key, shape in TORCHVISION[name]["entries"])
    first = "fc.weight" if name == "resnet18" else "classifier.0.weight"
    module = build_backbone(name).eval()
    with torch.no_grad():
        features = module(torch.rand(2, 3, 32, 32))
        tiny = module(torch.rand(2, 3, 8, 8))  # far below ImageNet's 224: adaptive pooling copes
    assert features.shape == tiny.shape == (2, head_in[first][1]) == (2, module.width)


# --------------------------------------------------------------------------- weight files


@pytest.mark.parametrize("name,suffix", [("resnet18", ".pth"), ("mobilenet_v3_small", ".pth"),
                                         ("resnet18", ".safetensors"), ("mobilenet_v3_small", ".safetensors")])
def test_weights_load_bit_identically(tmp_path, name, suffix):
    state = source_state(name, head=True)
    path = tmp_path / f"weights{suffix}"
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    net, config = network(name, path)
    before = {k: v.clone() for k, v in backbone_modules(net)[0].state_dict().items()}
    lineage = load_backbone_weights(net, config)
    loaded = backbone_modules(net)[0].state_dict()
    body = {k: v for k, v in state.items() if not k.startswith(TORCHVISION[name]["head_prefix"])}
    assert set(loaded) == set(body)
    assert all(torch.equal(loaded[k], body[k]) for k in body)
    assert not all(torch.equal(before[k], body[k]) for k in body)  # the load changed something
    assert lineage == [{"step": "backbone", "backbone": name, "from": str(path.resolve()),
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "loaded": len(body)}]


def test_old_files_without_step_counters_load(tmp_path):
    state = {k: v for k, v in source_state("resnet18").items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pt"
    torch.save(state, path)
    net, config = network("resnet18", path)
    assert load_backbone_weights(net, config)[0]["loaded"] == len(state)
    assert torch.equal(backbone_modules(net)[0].conv1.weight, state["conv1.weight"])


class Snapshot(Callback):
    """The network's state when training begins (after fit has loaded the backbone)."""

    def on_train_begin(self, trainer) -> None:
        self.state = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}


def test_fit_starts_from_the_file_and_bundles_load_without_it(tmp_path):
    state = source_state("resnet18", head=True)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state, path)
    X, y = images()
    snapshot = Snapshot()
    est = classifier(backbone="resnet18", backbone_weights=str(path)).fit(X, y, callbacks=[snapshot])
    start = {k.split(".", 2)[2]: v for k, v in snapshot.state.items() if k.startswith("body.2.")}
    assert [type(m).__name__ for m in est.module_.body][:2] == ["Unflatten", "ImageNetInput"]
    assert all(torch.equal(start[k], state[k]) for k in start) and len(start) == 120
    assert est.lineage_[0]["loaded"] == 120 and est.lineage_[0]["from"] == str(path.resolve())
    expected = est.predict_proba(X)
    archtune.save(est, tmp_path / "bundle")
    path.unlink()  # a bundle holds the trained weights: the file is not read again
    loaded = archtune.load(tmp_path / "bundle")
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.model_config_.conv.backbone_weights == str(path)


def test_pixels_reach_the_backbone_unscaled(tmp_path):
    X, y = images()
    with pytest.warns(UserWarning, match="random weights"):
        est = classifier(backbone="mobilenet_v3_small", scaling="standard").fit(X, y)
    np.testing.assert_allclose(input_matrix(est, X).numpy(), X.reshape(len(X), -1) / 255.0, rtol=1e-6)
    assert est.lineage_ == []


def test_untrained_backbone_warns_once_with_where_to_put_a_file():
    X, y = images()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classifier(backbone="resnet18").fit(X, y)
    untrained = [str(w.message) for w in caught if "random weights" in str(w.message)]
    assert len(untrained) == 1
    assert "backbone_weights" in untrained[0] and "resnet18-f37072fd.pth" in untrained[0]
    assert "ResNet18_Weights.IMAGENET1K_V1.get_state_dict()" in untrained[0]


def test_grey_images_are_repeated_to_three_channels():
    x = torch.rand(2, 1, 16, 16)
    np.testing.assert_array_equal(ImageNetInput(1)(x).numpy(), ImageNetInput(3)(x.repeat(1, 3, 1, 1)).numpy())
    X, y = images(channels=1)
    with pytest.warns(UserWarning, match="random weights"):
        est = classifier(backbone="resnet18").fit(X[:, 0], y)  # N x H x W: one channel
    assert est.predict_proba(X[:, 0]).shape == (len(X), 2)


# --------------------------------------------------------------------------- refusals


def test_unknown_backbone_and_bad_paths_are_named():
    X, y = images(n=8)
    with pytest.raises(InvalidParameterError, match="backbone must be one of None, 'resnet18', 'mobilenet_v3_small'; "
                                                   "got backbone='resnet50'"):
        classifier(backbone="resnet50").fit(X, y)
    with pytest.raises(InvalidParameterError, match="backbone_weights='w.pth' needs backbone"):
        classifier(backbone_weights="w.pth").fit(X, y)
    with pytest.raises(InvalidParameterError, match="suffix '.npz'"):
        classifier(backbone="resnet18", backbone_weights="w.npz").fit(X, y)
    with pytest.raises(InvalidParameterError, match="RGB .3 channels. or grey"):
        classifier(backbone="resnet18").fit(images(n=8, channels=4)[0], y)


def test_missing_file_says_where_to_put_it(tmp_path):
    path = tmp_path / "models" / "resnet18-f37072fd.pth"
    X, y = images(n=8)
    with pytest.raises(InvalidParameterError) as error:
        classifier(backbone="resnet18", backbone_weights=str(path)).fit(X, y)
    message = str(error.value)
    assert str(path) in message and "does not exist" in message
    assert "resnet18-f37072fd.pth" in message and "Pretrained image backbones" in message


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file_is_refused(tmp_path, suffix):
    path = tmp_path / f"cut{suffix}"
    state = source_state("mobilenet_v3_small")
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    net, config = network("mobilenet_v3_small", path)
    with pytest.raises(BundleError, match=f"backbone_weights {path}: .*truncated"):
        load_backbone_weights(net, config)


def test_corrupt_safetensors_header_is_refused(tmp_path):
    path = tmp_path / "bad.safetensors"
    save_file(source_state("mobilenet_v3_small"), str(path))
    data = bytearray(path.read_bytes())
    data[8:40] = b"{not json at all, nor a header!}"  # the 8 bytes before are the header's length
    path.write_bytes(bytes(data))
    net, config = network("mobilenet_v3_small", path)
    with pytest.raises(BundleError, match=f"backbone_weights {path}: not a valid safetensors file"):
        load_backbone_weights(net, config)


def test_another_architectures_weights_are_refused(tmp_path):
    path = tmp_path / "mobilenet_v3_small-047dcff4.pth"
    torch.save(source_state("mobilenet_v3_small", head=True), path)
    net, config = network("resnet18", path)
    before = backbone_modules(net)[0].conv1.weight.clone()
    with pytest.raises(BundleError) as error:
        load_backbone_weights(net, config)
    message = str(error.value)
    assert str(path) in message and "not resnet18 weights" in message
    assert "conv1.weight" in message and "features.0.0.weight" in message
    assert "looks like mobilenet_v3_small weights" in message
    assert torch.equal(backbone_modules(net)[0].conv1.weight, before)  # nothing loaded


def test_misshapen_weights_are_refused(tmp_path):
    state = source_state("resnet18")
    state["layer4.1.conv2.weight"] = state["layer4.1.conv2.weight"][:, :256]
    path = tmp_path / "cut-channels.pt"
    torch.save(state, path)
    net, config = network("resnet18", path)
    with pytest.raises(BundleError, match=r"1 shapes differ \(e.g. layer4.1.conv2.weight \(512, 256, 3, 3\) "
                                          r"instead of \(512, 512, 3, 3\)\)"):
        load_backbone_weights(net, config)


class Payload:
    """Unpickling this calls ``open(marker, "w")``: code in a pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_with_code_is_refused_and_not_run(tmp_path, writer):
    marker = tmp_path / "ran.txt"
    path = tmp_path / "evil.pth"
    payload = {"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.weight": Payload(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    net, config = network("resnet18", path)
    with pytest.raises(BundleError, match=f"backbone_weights {path}: refused: the pickle holds more than tensors"):
        load_backbone_weights(net, config)
    assert not marker.exists()
    # The payload is live: an ordinary unpickler runs it.
    if writer == "pickle.dump":
        pickle.loads(path.read_bytes())
        assert marker.exists()


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(3)], path)
    net, config = network("resnet18", path)
    with pytest.raises(BundleError, match="not a state dict .* got a list"):
        load_backbone_weights(net, config)


def test_a_column_of_image_paths_gets_the_backbone_too(tmp_path, monkeypatch):
    import pandas as pd
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    X, y = images(n=24, side=16)
    for i, image in enumerate(X):
        Image.fromarray(image.transpose(1, 2, 0)).save(tmp_path / f"{i}.png")
    table = pd.DataFrame({"photo": [f"{i}.png" for i in range(len(X))], "size": np.arange(len(X), dtype=float)})
    path = tmp_path / "mobilenet_v3_small-047dcff4.safetensors"
    state = source_state("mobilenet_v3_small")
    save_file(state, str(path))
    snapshot = Snapshot()
    est = NeuralClassifier(backbone="mobilenet_v3_small", backbone_weights=str(path), hidden_layers=1, units=8,
                           max_epochs=1, random_state=0, augment=False).fit(table, y, callbacks=[snapshot])
    prefix = "image_encoders.0.2."  # Unflatten, ImageNetInput, then the backbone
    start = {k[len(prefix):]: v for k, v in snapshot.state.items() if k.startswith(prefix)}
    assert len(start) == len(state) and all(torch.equal(start[k], state[k]) for k in state)
    assert est.lineage_[0]["loaded"] == len(state)
