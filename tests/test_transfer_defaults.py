"""The transfer defaults chosen by bench/transfer_defaults.py (issue 29, part 5), and the
doctor's ``transfer_below_scratch`` check: a fit from ``init_from`` whose validation score is
below a scratch fit's on the same split says so."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import archtune
from archtune import InvalidParameterError, NeuralClassifier, NeuralRegressor, diagnose
from archtune.doctor import CODES
from archtune.doctor.detectors import TRANSFER_SCRATCH_MARGIN, transfer_below_scratch
from archtune.doctor.diagnose import transfer_reference
from archtune.doctor.evidence import Evidence
from archtune.fitting import prepare
from archtune.transfer.freeze import FineTuning
from tests.conftest import load_shared

ROOT = Path(__file__).resolve().parents[1]
TRANSFER = ("freeze", "freeze_epochs", "fine_tune_lr_factor", "layer_lr_decay")
# What bench/transfer_defaults.py measured best ("full rate": every layer trains, at the full
# rate, from a supervised network; 0.1x after a self-supervised pretraining).
CHOSEN = {"freeze": None, "freeze_epochs": 10, "fine_tune_lr_factor": "auto", "layer_lr_decay": None}


@functools.cache
def _bench():
    spec = importlib.util.spec_from_file_location("bench_transfer_defaults", ROOT / "bench" / "transfer_defaults.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the defaults


@pytest.mark.parametrize("cls", [NeuralClassifier, NeuralRegressor])
def test_the_defaults_are_the_measured_ones_wherever_they_are_written(cls):
    params = cls().get_params()
    assert {name: params[name] for name in TRANSFER} == CHOSEN
    assert FineTuning() == FineTuning.from_params(params)  # the dataclass's own copy agrees
    # The bench's arm of that name is what init_from alone does from a supervised network.
    supervised = dataclasses.asdict(FineTuning().for_source("multiclass"))
    assert supervised == _bench().VARIANTS["full rate"]
    assert FineTuning().for_source("pretext:rotation").fine_tune_lr_factor == 0.1
    assert FineTuning().for_source("regression").fine_tune_lr_factor == 1.0


def test_auto_is_resolved_by_the_source_a_fit_starts_from():
    X, y = load_shared("magic.tsv.gz", n=400, seed=3)
    small = dict(hidden_layers=1, units=16, max_epochs=2, random_state=0)
    supervised = NeuralClassifier(**small).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert prepare(NeuralClassifier(init_from=supervised), X, y).fine_tuning.fine_tune_lr_factor == 1.0
        pretrained = archtune.pretrain(X, estimator=NeuralClassifier(**small), pretrain_epochs=1)
        assert prepare(NeuralClassifier(init_from=pretrained), X, y).fine_tuning.fine_tune_lr_factor == 0.1
        assert prepare(NeuralClassifier(init_from=pretrained, fine_tune_lr_factor=0.5), X, y).fine_tuning \
            .fine_tune_lr_factor == 0.5
    with pytest.raises(InvalidParameterError, match="fine_tune_lr_factor must be a number > 0 or 'auto'"):
        NeuralClassifier(fine_tune_lr_factor="fast").fit(X, y)


def test_the_bench_draws_stratified_labelled_rows_apart_from_the_test_rows():
    bench = _bench()
    y = np.repeat([1, 2, 3], [500, 300, 200])
    pair = bench.Pair((None, None), (pd.DataFrame({"a": np.arange(1000)}), pd.Series(y)), None, False, False)
    labelled, rest = bench.draw(pair, seed=0)
    assert len(labelled) == 260 and len(rest) == 740 and not set(labelled) & set(rest)
    assert np.bincount(y[labelled])[1:].tolist() == [130, 78, 52]
    assert bench.draw(pair, seed=0)[0].tolist() == labelled.tolist()


@pytest.fixture(scope="module")
def letters():
    """letter (bench/transfer_defaults.py's first pair, smaller): a source trained 20 epochs on
    the letters A-M; for each of 3 seeds, 260 rows of N-Z (20 a letter) to fit on and 2000
    other N-Z rows to score on."""
    X, y = load_shared("letter.tsv.gz")
    first = (y <= 13).to_numpy()
    source = NeuralClassifier(max_epochs=20, random_state=0).fit(X[first], y[first])
    X2, y2 = X[~first].reset_index(drop=True), y[~first].reset_index(drop=True)
    draws = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        few = np.concatenate([rng.choice(np.flatnonzero(y2 == c), 20, replace=False) for c in range(14, 27)])
        test = np.setdiff1d(np.arange(len(y2)), few)[:2000]
        draws.append((seed, X2.iloc[few], y2.iloc[few], X2.iloc[test], y2.iloc[test]))
    return source, draws


def test_on_the_letter_pair_the_defaults_beat_scratch_and_the_old_defaults(letters):
    # One seed swings by 3 points either way (bench/README.md): the means of 3 seeds are compared.
    source, draws = letters
    arms = {"scratch": {}, "defaults": {"init_from": source},
            "old defaults": {"init_from": source, "fine_tune_lr_factor": 0.1},
            "two-phase": {"init_from": source, "freeze": "body", "fine_tune_lr_factor": 0.1}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = {name: np.mean([NeuralClassifier(max_epochs=30, random_state=seed, **settings).fit(X, y)
                                .score(X_test, y_test) for seed, X, y, X_test, y_test in draws])
                 for name, settings in arms.items()}
    assert score["defaults"] > score["scratch"], score
    assert score["defaults"] > max(score["old defaults"], score["two-phase"]) + 0.01, score


# --------------------------------------------------------------------------- the doctor


def _evidence(transfer, scratch, factor=1.0, **params):
    return Evidence(task="multiclass", history=pd.DataFrame(), constant_loss=1.0,
                    params={"fine_tune_lr_factor": "auto", **params},
                    transfer={"metric": "accuracy", "transfer_score": transfer, "scratch_score": scratch,
                              "val_rows": 100, "scratch_epochs": 30, "scratch_arch": "mlp",
                              "fine_tune_lr_factor": factor, "source": "bundle runs/a"})


def test_the_detector_fires_beyond_its_margin_only():
    assert "transfer_below_scratch" in CODES
    assert transfer_below_scratch(Evidence(task="binary", history=pd.DataFrame(), constant_loss=0.7)) is None
    assert transfer_below_scratch(_evidence(0.80, 0.80 + TRANSFER_SCRATCH_MARGIN - 1e-6)) == []
    assert transfer_below_scratch(_evidence(0.90, 0.80)) == []
    [finding] = transfer_below_scratch(_evidence(0.70, 0.80, 0.1, freeze="body", fine_tune_lr_factor=0.1))
    assert finding.code == "transfer_below_scratch" and finding.severity == "warning"
    assert finding.evidence["gap"] == pytest.approx(0.10) and finding.evidence["margin"] == TRANSFER_SCRATCH_MARGIN
    assert "0.700" in finding.message and "0.800" in finding.message and "100 validation rows" in finding.message
    assert finding.advice[0].startswith("fine-tune every layer at the full rate")
    assert "fine_tune_lr_factor=0.1" in finding.advice[0]
    # Already at the full rate ("auto" from a supervised network): the advice does not suggest it again.
    [finding] = transfer_below_scratch(_evidence(0.70, 0.80, 1.0, freeze=None))
    assert finding.advice[0].startswith("train from scratch")
    # "auto" after a pretext task is 0.1: the full rate is worth a try.
    [finding] = transfer_below_scratch(_evidence(0.70, 0.80, 0.1, freeze=None))
    assert "fine_tune_lr_factor=0.1" in finding.advice[0]


@pytest.fixture(scope="module")
def magic():
    """Two sources for 600 target rows of magic: one trained on the same task (helps), one on
    shuffled labels (its features say nothing of the target)."""
    X, y = load_shared("magic.tsv.gz", n=3000, seed=1)
    Xs, ys = X[:2000], y[:2000]
    rng = np.random.default_rng(0)
    useful = NeuralClassifier(max_epochs=10, random_state=0).fit(Xs, ys)
    useless = NeuralClassifier(max_epochs=10, random_state=0).fit(Xs, rng.permutation(ys.to_numpy()))
    return useful, useless, X[2000:2600].reset_index(drop=True), y[2000:2600].reset_index(drop=True)


def test_a_network_fine_tuned_from_a_useless_source_is_reported_fitted_or_not(magic):
    _, useless, X, y = magic
    # Feature extraction from a body that learned noise: the head sees nothing of the target.
    estimator = NeuralClassifier(init_from=useless, freeze="body", freeze_epochs=None, max_epochs=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = estimator.fit(X, y)
        for diagnosis in (diagnose(model, X, y), diagnose(estimator, X, y)):
            finding = diagnosis["transfer_below_scratch"]
            assert finding.evidence["val_rows"] == 60 and finding.evidence["gap"] > 0.1, finding
        # The fitted model is scored on the rows its own fit validated on: its history says the same.
        reference = transfer_reference(model, X, y, prepare(model, X, y))
    kept = model.history_.loc[model.history_["epoch"] == model.best_epoch_, "val_accuracy"].iloc[0]
    assert reference["transfer_score"] == pytest.approx(kept, abs=1e-6)


def test_a_helpful_source_and_a_fit_from_random_weights_are_not_reported(magic):
    useful, _, X, y = magic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        helped = diagnose(NeuralClassifier(init_from=useful, max_epochs=10, random_state=0).fit(X, y), X, y)
        assert "transfer_below_scratch" in helped.checked and "transfer_below_scratch" not in helped
        plain = diagnose(NeuralClassifier(max_epochs=10, random_state=0).fit(X, y), X, y)
    assert "transfer_below_scratch" not in plain.checked  # no source: nothing to compare, no extra fit


def test_the_instrumented_run_of_a_fine_tuning_is_not_called_vanishing(magic):
    # Same classes: the head is kept, the gradients flow from the first step and are checked.
    useful, _, X, y = magic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = diagnose(NeuralClassifier(init_from=useful, random_state=0), X, y, max_epochs=3)
        # Other class labels: a new output layer starts at zero and the body's first gradients
        # are zero: the gradient-flow check has nothing to read (it said "error" before).
        new = diagnose(NeuralClassifier(init_from=useful, random_state=0), X, y.map(lambda v: f"class {v}"),
                       max_epochs=3)
    assert "vanishing_gradients" in kept.checked and "vanishing_gradients" not in kept
    assert "vanishing_gradients" not in new.checked and "vanishing_gradients" not in new


def test_the_scratch_reference_of_an_image_network_is_built_in_the_sources_family():
    # The estimator says nothing of arch (init_from imposes the CNN): its scratch fit is a CNN too.
    rng = np.random.default_rng(0)
    images = rng.random((80, 1, 8, 8)).astype("float32")
    y = rng.integers(0, 2, 80)
    src = NeuralClassifier(arch="cnn", conv_blocks=1, filters=4, hidden_layers=1, units=8, max_epochs=1,
                           random_state=0).fit(images, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NeuralClassifier(init_from=src, max_epochs=2, random_state=0).fit(images, y)
        diagnosis = diagnose(model, images, y)
        reference = transfer_reference(model, images, y, prepare(model, images, y))
    assert "transfer_below_scratch" in diagnosis.checked
    assert reference["scratch_arch"] == "cnn" and reference["val_rows"] == 8 and reference["scratch_epochs"] == 2
