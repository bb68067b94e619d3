"""Transfer learning (issue 16): start a fit from a trained network, freeze, fine-tune."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import archtune
from archtune import BundleError, DataError, InvalidParameterError, NeuralClassifier, NeuralRegressor
from archtune.fitting import prepare, train
from archtune.train import Callback
from archtune.transfer.reading import read_source
from archtune.transfer.source import Source
from tests.tables import five_class_table

SMALL = dict(hidden_layers=2, units=16, numeric_embedding=None, batch_size=32, random_state=0)


def _table(n=160, seed=0):
    return five_class_table(n, seed)  # 5 classes


@pytest.fixture(scope="module")
def source():
    X, y = _table()
    return NeuralClassifier(max_epochs=3, **SMALL).fit(X, y)


@pytest.fixture(scope="module")
def bn_source():
    X, y = _table()
    return NeuralClassifier(max_epochs=3, norm="batch", **SMALL).fit(X, y)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------- the copy


def test_copied_layers_are_bit_identical_to_the_source_and_the_new_head_fits_the_new_task(source):
    X, y = _table(seed=1)
    model = NeuralClassifier(init_from=source, max_epochs=1, random_state=1)
    prepared = prepare(model, X, y % 3)
    module, report = prepared.initial_network()
    theirs, ours = source.module_.state_dict(), module.state_dict()
    # Oracle: every tensor of equal name and shape outside the output layer.
    expected = [n for n in ours if n in theirs and theirs[n].shape == ours[n].shape and not n.startswith("head.")]
    assert list(report.copied) == expected and len(expected) > 4
    assert all(torch.equal(ours[n], theirs[n]) for n in report.copied)
    assert set(report.new) == {"head.weight", "head.bias"} and ours["head.weight"].shape[0] == 3
    assert report.summary().startswith(f"copied {len(expected)} of {len(ours)} tensors")
    assert "new: head.weight, head.bias" in report.summary()


@pytest.mark.parametrize("kind, outputs", [("regression", 1), ("regression2", 2), ("binary", 1)])
def test_a_new_head_has_the_new_tasks_shape(source, kind, outputs):
    X, y = _table(seed=2)
    rng = np.random.default_rng(0)
    if kind == "binary":
        model, target = NeuralClassifier(init_from=source), y % 2
    else:
        model = NeuralRegressor(init_from=source)
        target = rng.normal(size=len(y)) if outputs == 1 else rng.normal(size=(len(y), 2))
    module, report = prepare(model, X, target).initial_network()
    assert module.head.weight.shape == (outputs, source.module_.head.weight.shape[1])
    assert "head.weight" in report.new and "head.weight" not in report.copied


def test_a_one_output_regressor_source_gives_two_outputs():
    X, _ = _table(seed=3)
    rng = np.random.default_rng(3)
    one = NeuralRegressor(max_epochs=1, **SMALL).fit(X, rng.normal(size=len(X)))
    module, report = prepare(NeuralRegressor(init_from=one), X, rng.normal(size=(len(X), 2))).initial_network()
    assert module.head.weight.shape[0] == 2 and "head.bias" in report.new


def test_the_same_classes_keep_the_head(source):
    X, y = _table(seed=4)
    module, report = prepare(NeuralClassifier(init_from=source), X, y).initial_network()
    assert "head.weight" in report.copied and report.new == ()
    assert torch.equal(module.head.weight, source.module_.head.weight)


# --------------------------------------------------------------------------- freezing


class _Snapshots(Callback):
    def __init__(self):
        self.states = {}

    def on_epoch_end(self, state, logs):
        self.states[logs["epoch"]] = _state(state.module)


def test_frozen_layers_and_batch_norm_statistics_stay_in_phase_one_and_move_after(bn_source):
    X, y = _table(seed=5)
    snaps = _Snapshots()
    model = NeuralClassifier(init_from=bn_source, freeze="body", freeze_epochs=2, max_epochs=4, early_stopping=False,
                             lr_schedule="constant", learning_rate=1e-2, random_state=0)
    model.fit(X, y % 3, callbacks=[snaps])
    source = _state(bn_source.module_)
    body = [n for n in source if not n.startswith("head.")]
    assert any("running_mean" in n for n in body)
    assert list(model.history_["phase"]) == ["head", "head", "fine_tune", "fine_tune"]
    assert list(model.history_["epoch"]) == [1, 2, 3, 4] and sorted(snaps.states) == [1, 2, 3, 4]
    for n in body:
        if n.endswith("num_batches_tracked"):
            continue
        assert torch.equal(snaps.states[2][n], source[n]), n  # phase one: frozen, statistics too
    assert not torch.equal(snaps.states[2]["head.weight"], snaps.states[1]["head.weight"])  # the head trained
    moved = [n for n in body if n.endswith(("weight", "running_mean"))
             and not torch.equal(snaps.states[4][n], source[n])]
    assert len(moved) >= 4, moved  # phase two fine-tunes the body
    assert all(p.requires_grad for p in model.module_.parameters())


def test_freeze_a_number_of_layers_freezes_those_from_the_input_side(source):
    from archtune.transfer.freeze import forward_layers

    X, y = _table(seed=6)
    model = NeuralClassifier(init_from=source, freeze=1, freeze_epochs=None, max_epochs=2, early_stopping=False,
                             lr_schedule="constant", random_state=0).fit(X, y % 3)
    prepared = prepare(model, X, y % 3)
    layers = forward_layers(prepared.build_network(), prepared.X_train[:2])
    first = {f"{m}.{p}" if m else p for m in layers[0]
             for p, _ in dict(model.module_.named_modules())[m].named_parameters(recurse=False)}
    before, after = _state(source.module_), _state(model.module_)
    assert first and all(torch.equal(before[n], after[n]) for n in first)
    later = [n for n in before if n not in first and not n.startswith("head.") and n.endswith("weight")]
    assert later and all(not torch.equal(before[n], after[n]) for n in later)
    assert set(model.history_["phase"]) == {"head"}  # freeze_epochs=None: frozen throughout
    with pytest.raises(InvalidParameterError, match=r"freeze=40 is more than the \d+ layer"):
        NeuralClassifier(init_from=source, freeze=40, max_epochs=1).fit(X, y % 3)


def test_layer_lr_decay_and_the_fine_tune_factor_give_the_documented_rates(source):
    from archtune.train.engines import SingleEngine
    from archtune.transfer.freeze import FineTuning, plan_phase

    X, y = _table(seed=7)
    prepared = prepare(NeuralClassifier(init_from=source, random_state=0), X, y % 3)
    module, report = prepared.initial_network()
    settings = FineTuning(fine_tune_lr_factor=0.5, layer_lr_decay=0.8)
    plan = plan_phase(module, prepared.X_train[:2], report.copied, settings, frozen=False)
    # Oracle by hand: the Linear layers of the body in order, then the head.
    linears = [n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear) and n.startswith("body")]
    expected = {"head.weight": 1.0, "head.bias": 1.0}
    for i, name in enumerate(linears):
        expected[f"{name}.weight"] = 0.5 * 0.8 ** (len(linears) - i)
    config = dataclasses.replace(prepared.train_config, weight_decay=0.0)
    engine = SingleEngine(module, config, prepared.task.loss_fn(), None, torch.device("cpu"),
                          plan.param_groups(module))
    engine.begin()
    engine.step(prepared.X_train[:8], prepared.y_train[:8], [0.01])
    rate = {id(p): group["lr"] for group in engine.optimizer.param_groups for p in group["params"]}
    named = dict(module.named_parameters())
    for name, factor in expected.items():
        assert rate[id(named[name])] == pytest.approx(0.01 * factor, rel=1e-12), name


def test_without_freeze_a_source_that_is_a_fresh_build_trains_exactly_as_an_ordinary_fit():
    X, y = _table(seed=8)
    params = dict(max_epochs=3, lr_schedule="cosine", **SMALL)
    prepared = prepare(NeuralClassifier(**params), X, y)
    ordinary = train(prepared)
    fresh = prepared.build_network()
    target = prepared.fitted.target
    source = Source(fresh, prepared.fitted.preprocessor, prepared.model_config, prepared.input_spec,
                    prepared.fitted.inputs, prepared.task.task, tuple(target.classes.tolist()), "a fresh build")
    training = dict(max_epochs=3, lr_schedule="cosine", batch_size=32, random_state=0)  # the architecture: source's
    started = train(prepare(NeuralClassifier(fine_tune_lr_factor=1.0, **training), X, y, source=source))
    assert started.report is not None and started.report.new == ()
    drop = ["seconds", "phase"]
    pd.testing.assert_frame_equal(pd.DataFrame(started.history).drop(columns=drop),
                                  pd.DataFrame(ordinary.history).drop(columns=drop[:1]))
    assert all(torch.equal(a, b) for a, b in zip(started.module.state_dict().values(),
                                                 ordinary.module.state_dict().values()))
    assert "phase" not in pd.DataFrame(ordinary.history)


# --------------------------------------------------------------------------- inputs


def test_columns_are_matched_by_name_missing_filled_extra_ignored(source):
    X, y = _table(seed=9)
    moved = X[["c", "a"]].assign(extra=1.0)
    with pytest.warns(UserWarning) as caught:
        model = NeuralClassifier(init_from=source, max_epochs=1, random_state=0).fit(moved, y)
    messages = " | ".join(str(w.message) for w in caught)
    assert "did not read, ignored: 'extra'" in messages and "filled as missing" in messages and "'b'" in messages
    # Oracle: the same rows with b given as missing predict the same.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = model.predict_proba(moved)
    matrix = torch.from_numpy(source.preprocessor_.transform(X.assign(b=np.nan)))  # the source's own reading
    with torch.no_grad():
        direct = torch.softmax(model.module_(matrix).double(), 1).numpy()
    np.testing.assert_allclose(direct, expected, rtol=1e-5, atol=1e-6)


def test_mismatched_inputs_are_named_errors(source, tmp_path):
    X, y = _table(seed=10)
    with pytest.raises(DataError, match=r"X has 2 columns, but init_from's network was trained on 3"):
        NeuralClassifier(init_from=source).fit(X[["a", "b"]].to_numpy(), y)
    with pytest.raises(DataError, match=r"X is images, but init_from's network .* was trained on a table"):
        NeuralClassifier(init_from=source).fit(np.zeros((len(y), 1, 8, 8), dtype="float32"), y)
    with pytest.raises(DataError, match="shares no column"):
        NeuralClassifier(init_from=source).fit(pd.DataFrame({"z": np.ones(len(y))}), y)
    with pytest.raises(InvalidParameterError, match="init_from is an unfitted NeuralClassifier"):
        NeuralClassifier(init_from=NeuralClassifier()).fit(X, y)
    with pytest.raises(InvalidParameterError, match="init_from must be a fitted"):
        NeuralClassifier(init_from=3).fit(X, y)
    with pytest.raises(BundleError, match=r"init_from: .*nowhere: no such model bundle"):
        NeuralClassifier(init_from=tmp_path / "nowhere").fit(X, y)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"init_from: .*empty: not an archtune model bundle"):
        NeuralClassifier(init_from=str(tmp_path / "empty")).fit(X, y)
    with pytest.raises(InvalidParameterError, match="freeze='body' needs init_from"):
        NeuralClassifier(freeze="body").fit(X, y)
    for name, value in (("freeze", "all"), ("freeze_epochs", 0), ("fine_tune_lr_factor", 0.0),
                        ("layer_lr_decay", 1.5)):
        with pytest.raises(InvalidParameterError, match=name):
            NeuralClassifier(init_from=source, **{name: value}).fit(X, y)


def test_architecture_parameters_are_the_sources_with_one_warning(source):
    X, y = _table(seed=11)
    with pytest.warns(UserWarning, match=r"dropout=0.3, units=64 are ignored: the architecture is init_from's"):
        model = NeuralClassifier(init_from=source, units=64, dropout=0.3, max_epochs=1).fit(X, y)
    assert model.model_config_ == source.model_config_


# --------------------------------------------------------------------------- bundles and lineage


def test_a_fine_tuned_model_saves_and_loads_with_its_lineage(source, tmp_path):
    X, y = _table(seed=12)
    archtune.save(source, tmp_path / "a")
    model = NeuralClassifier(init_from=str(tmp_path / "a"), freeze="body", freeze_epochs=1, max_epochs=2,
                             random_state=0).fit(X, y % 3)
    assert model.lineage_[0]["step"] == "init_from" and str(tmp_path / "a") in model.lineage_[0]["from"]
    assert model.lineage_[0]["copied"] == len([n for n in source.module_.state_dict() if not n.startswith("head.")])
    archtune.save(model, tmp_path / "b")
    again = archtune.load(tmp_path / "b")
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert again.lineage_ == model.lineage_ and again.init_from == str(tmp_path / "a")
    # A chain: fine-tuned from the fine-tuned one, by object (saved as None; the lineage keeps both steps).
    third = NeuralClassifier(init_from=again, max_epochs=1, random_state=0).fit(X, y % 3)
    assert third.lineage_[0]["from"] == "a fitted NeuralClassifier (3 classes)" and third.lineage_[1:] == model.lineage_
    archtune.save(third, tmp_path / "c")
    meta = json.loads((tmp_path / "c" / "archtune.json").read_text())
    assert meta["params"]["init_from"] is None and len(meta["lineage"]) == 2
    assert read_source(tmp_path / "c").lineage == tuple(third.lineage_)


def test_a_search_run_with_an_ensemble_starts_from_its_best_network(source, tmp_path):
    archtune.save(source, tmp_path / "run")
    (tmp_path / "run" / "ensemble").mkdir()
    (tmp_path / "run" / "ensemble" / "archtune.json").write_text(json.dumps({"format": "archtune-ensemble"}))
    assert "bundle " + str(tmp_path / "run") in read_source(tmp_path / "run" / "ensemble").origin
    (tmp_path / "lone" / "ensemble").mkdir(parents=True)
    (tmp_path / "lone" / "ensemble" / "archtune.json").write_text(json.dumps({"format": "archtune-ensemble"}))
    with pytest.raises(BundleError, match="holds no saved best network"):
        read_source(tmp_path / "lone" / "ensemble")


def test_fit_population_with_init_from_trains_one_at_a_time(source):
    from archtune.population import fit_population

    X, y = _table(seed=13)
    models = [NeuralClassifier(init_from=source, freeze="body", freeze_epochs=1, max_epochs=2, learning_rate=lr,
                               lr_schedule="constant", random_state=0) for lr in (1e-3, 1e-2)]
    assert fit_population(models, X, y % 3) == [None, None]
    assert all(list(m.history_["phase"]) == ["head", "fine_tune"] for m in models)
    assert not np.allclose(models[0].predict_proba(X), models[1].predict_proba(X))


# --------------------------------------------------------------------------- families


@pytest.mark.parametrize("arch", ["resnet", "tabm"])
def test_tabular_families_fine_tune(arch):
    X, y = _table(seed=14)
    src = NeuralClassifier(arch=arch, max_epochs=1, **({"k": 2} if arch == "tabm" else {}), **SMALL).fit(X, y)
    model = NeuralClassifier(init_from=src, freeze="body", freeze_epochs=1, max_epochs=2, lr_schedule="constant",
                             early_stopping=False, random_state=0).fit(X, y % 2)
    copied = [n for n in src.module_.state_dict() if not n.startswith("head.")]
    assert model.lineage_[0]["copied"] == len(copied) and list(model.history_["phase"]) == ["head", "fine_tune"]
    assert not all(torch.equal(model.module_.state_dict()[n], src.module_.state_dict()[n]) for n in copied)


def test_a_cnn_fine_tunes_on_images_of_the_same_shape_and_refuses_another():
    rng = np.random.default_rng(0)
    images = rng.random((64, 1, 8, 8)).astype("float32")
    y = rng.integers(0, 4, 64)
    params = dict(arch="cnn", conv_blocks=1, filters=4, hidden_layers=1, units=8, norm="batch", random_state=0)
    src = NeuralClassifier(max_epochs=1, **params).fit(images, y)
    model = NeuralClassifier(init_from=src, freeze="body", freeze_epochs=None, max_epochs=2, early_stopping=False,
                             random_state=0).fit(images, y % 2)
    before, after = _state(src.module_), _state(model.module_)
    conv = [n for n in before if n.startswith("body") and before[n].ndim == 4]
    assert conv and all(torch.equal(before[n], after[n]) for n in before if not n.startswith("head."))
    assert model.module_.head.weight.shape[0] == 1
    with pytest.raises(DataError, match=r"images of shape \(1, 10, 10\), but init_from's network was trained on "
                                        r"images of shape \(1, 8, 8\)"):
        NeuralClassifier(init_from=src).fit(rng.random((64, 1, 10, 10)).astype("float32"), y)


def test_a_text_sequence_network_fine_tunes():
    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "fine", "dull", "great", "awful", "plot", "cast", "film", "scene"])
    text = [" ".join(rng.choice(words, 6)) + f" number {i}" for i in range(80)]
    X = pd.DataFrame({"review": text, "x": rng.normal(size=80)})
    y = np.array(["good" in t for t in text]).astype(int)
    src = NeuralClassifier(arch="sequence", sequence="gru", sequence_units=8, embedding_dim=8, hidden_layers=1,
                           units=8, max_epochs=1, random_state=0).fit(X, y)
    model = NeuralRegressor(init_from=src, freeze=1, freeze_epochs=1, max_epochs=2, random_state=0).fit(
        X, rng.normal(size=80))
    assert any(n.startswith("text_encoders") for n in read_source(model).module.state_dict())
    copied = model.lineage_[0]["copied"]
    assert copied == len([n for n in src.module_.state_dict() if not n.startswith("head.")])
    assert model.predict(X).shape == (80,)
