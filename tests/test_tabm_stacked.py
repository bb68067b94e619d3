"""TabM (BatchEnsemble MLP) cohorts trained as one stack (archtune.models.stacked): oracle tests
against training each configuration alone, in float64 to 1e-8, from the network level up to
`fit_population` and the search."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import archtune.estimators
import archtune.fitting
import archtune.population
import archtune.train.engines
from archtune import NeuralClassifier, NeuralRegressor
from archtune.auto import AutoNeuralClassifier
from archtune.config import ModelConfig, TrainConfig
from archtune.data.preprocess import Preprocessor
from archtune.errors import InvalidParameterError
from archtune.models import InputSpec, build_model
from archtune.models.stacked import StackedNetwork
from archtune.population import cohort_key, fit_population
from archtune.train.losses import make_member_loss, make_member_metric
from archtune.train.population import PopulationTrainer
from tests.conftest import load_shared
from tests.test_gpu_cohort import assert_cohort_on_gpu_equals_cpu, assert_step_does_not_sync, needs_cuda
from tests.test_population import _train_alone, _train_together


def _magic(n=600):
    X, y = load_shared("magic.tsv.gz", n=n)
    pre = Preprocessor().fit(X)
    Xt = torch.from_numpy(pre.transform(X)).double()
    yt = torch.from_numpy((y.to_numpy() == y.unique()[0]).astype("float64")).reshape(-1, 1)
    cut = int(n * 5 / 6)
    return InputSpec(Xt.shape[1]), Xt[:cut], yt[:cut], Xt[cut:], yt[cut:]


WIDTHS = [(24, 24), (32, 32), (16, 16), (28, 28)]


def _tabm_members(spec, widths=WIDTHS, k=4, activation="relu", parametric=False):
    """Members of different widths and seeds; configurations that differ in learning rate,
    weight decay, L2, max-norm, gradient clipping and schedule."""
    schedules = ["constant", "cosine", "one_cycle", "plateau"]
    configs = [TrainConfig(optimizer="adamw", learning_rate=lr, weight_decay=wd, l2=l2, batch_size=64, max_epochs=4,
                           lr_schedule=sched, warmup_epochs=1, patience=3, loss="cross_entropy", seed=7,
                           gradient_clip=0.5 if i == 2 else None)
               for i, (lr, wd, l2, sched) in enumerate(zip([1e-3, 3e-3, 1e-2, 2e-3], [0, 1e-2, 1e-3, 0],
                                                           [0, 1e-4, 0, 1e-3], schedules))]
    modules = [build_model(ModelConfig(arch="tabm", hidden_sizes=w, k=k, activation=activation, dropout=0.0,
                                       parametric_activation=parametric),
                           spec, 1, "binary", torch.Generator().manual_seed(i)).double()
               for i, w in enumerate(widths)]
    return modules, configs


def _assert_same(alone, together, tol=1e-8):
    for k, ((history, state, best_epoch), result) in enumerate(zip(alone, together)):
        assert result.status == "complete", (k, result.status, result.error)
        assert len(history) == len(result.history) and result.best_epoch == best_epoch, k
        for a, b in zip(history, result.history):
            for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
                assert b[key] == pytest.approx(a[key], rel=tol, abs=1e-12), (k, a["epoch"], key)
        assert state.keys() == result.state.keys()
        for name, value in state.items():
            torch.testing.assert_close(result.state[name], value, rtol=tol, atol=tol, msg=f"member {k}: {name}")


@pytest.mark.parametrize("activation,parametric", [("relu", False), ("gelu", True), ("prelu", False)])
def test_stacked_tabm_members_follow_their_trajectories_alone(activation, parametric, monkeypatch):
    # Validation in batches of 40 // k = 10 rows: the stack's shorter evaluation batches.
    monkeypatch.setattr(archtune.train.engines, "EVAL_BATCH", 40)
    data = _magic()
    modules, configs = _tabm_members(data[0], activation=activation, parametric=parametric)
    _assert_same(_train_alone(modules, configs, data), _train_together(modules, configs, data))


def test_extracted_tabm_member_predicts_identically_to_its_slice():
    spec, Xtr, ytr, Xva, _ = _magic()
    modules, _ = _tabm_members(spec)
    stack = StackedNetwork([copy.deepcopy(m) for m in modules])
    for _ in range(3):  # move every weight, adapter and head away from its start
        stack.train()
        stack(Xtr[:100]).pow(2).sum().backward()
        with torch.no_grad():
            stack.flat.sub_(0.05 * stack.flat.grad)
        stack.flat.grad = None
    for training in (True, False):
        stack.train(training)
        with torch.no_grad():
            sliced = stack(Xva)
        for k, module in enumerate(modules):
            single = copy.deepcopy(module)
            single.load_state_dict(stack.member_state(k))
            single.train(training)
            with torch.no_grad():
                expected = single(Xva)  # training: [B, k, o] -> the stack's rows b*k + j
                expected = expected.flatten(0, 1) if training else expected
                torch.testing.assert_close(sliced[k], expected, rtol=1e-12, atol=1e-13, msg=f"member {k}")


def test_stacked_tabm_dropout_is_each_members_own_rate_over_rows_ensemble_members_and_units():
    """Dropout at rate 0 leaves a member exactly its network alone; at 0.5 about half of the
    first layer's (row, ensemble member, unit) activations are dropped, each independently."""
    spec = InputSpec(6)
    modules = [build_model(ModelConfig(arch="tabm", hidden_sizes=(64,), k=4, activation="relu", dropout=rate), spec, 1,
                           "binary", torch.Generator().manual_seed(i)).double() for i, rate in enumerate((0.0, 0.5))]
    stack = StackedNetwork([copy.deepcopy(m) for m in modules]).train()
    x = torch.randn(200, 6, dtype=torch.float64)
    torch.manual_seed(0)
    P = stack.views()
    linear, relu, dropout = stack.ops[:3]
    kept = relu(linear(x, P, stack), P, stack)  # [2, 200*4, 64]
    hidden = dropout(kept, P, stack)
    live = kept[1] > 0
    dropped = (hidden[1][live] == 0).double().mean()
    assert 0.45 < float(dropped) < 0.55
    torch.testing.assert_close(hidden[0], kept[0], rtol=0, atol=0)  # rate 0: untouched
    by_member = (hidden[1] == 0).view(200, 4, 64) & live.view(200, 4, 64)
    assert not torch.equal(by_member[:, 0], by_member[:, 1])  # each ensemble member its own mask
    with torch.no_grad():
        single = modules[0].train()(x).flatten(0, 1)
        torch.testing.assert_close(stack(x)[0], single, rtol=1e-12, atol=1e-13)


def test_tabm_members_of_different_ensemble_size_are_refused():
    spec = InputSpec(10)
    a = build_model(ModelConfig(arch="tabm", hidden_sizes=(8,), k=4), spec, 1, "binary")
    b = build_model(ModelConfig(arch="tabm", hidden_sizes=(8,), k=8), spec, 1, "binary")
    with pytest.raises(InvalidParameterError, match="TabM's k"):
        StackedNetwork([a, b])
    assert cohort_key(NeuralClassifier(arch="tabm", k=4), 500) != cohort_key(NeuralClassifier(arch="tabm", k=8), 500)


# --------------------------------------------------------------------------- estimators

# Learning rate, weight decay and width differ; dropout is 0 (the stack draws its members'
# masks from one shared stream, the networks alone each from their own: not comparable draw
# by draw).
CONFIGS = [dict(units=32, learning_rate=1e-3), dict(units=44, learning_rate=3e-3, weight_decay=1e-2),
           dict(units=40, learning_rate=2e-3, weight_decay=1e-4, lr_schedule="cosine", max_epochs=3)]
EMBEDDINGS = [dict(numeric_embedding=None), dict(numeric_embedding="periodic", d_embedding=4, n_frequencies=6),
              dict(numeric_embedding="piecewise_linear", d_embedding=4, n_bins=8)]


def _assert_same_estimators(alone, together, X, tol=1e-8):
    for k, (a, b) in enumerate(zip(alone, together)):
        assert next(b.module_.parameters()).dtype == torch.float64, "the float64 fixture did not reach the cohort"
        assert len(a.history_) == len(b.history_) and a.best_epoch_ == b.best_epoch_, k
        for column in ("train_loss", "val_loss", "lr"):
            np.testing.assert_allclose(b.history_[column], a.history_[column], rtol=tol, atol=1e-12,
                                       err_msg=f"member {k}: {column}")
        sa, sb = a.module_.state_dict(), b.module_.state_dict()
        assert sa.keys() == sb.keys()
        for name in sa:
            torch.testing.assert_close(sb[name], sa[name], rtol=tol, atol=tol, msg=f"member {k}: {name}")
        out_a = a.predict_proba(X) if hasattr(a, "predict_proba") else a.predict(X)
        out_b = b.predict_proba(X) if hasattr(b, "predict_proba") else b.predict(X)
        np.testing.assert_allclose(out_b, out_a, rtol=tol, atol=tol, err_msg=f"member {k}: predictions")


@pytest.mark.parametrize("cls,dataset,embedding", [
    (NeuralClassifier, "magic.tsv.gz", 0), (NeuralRegressor, "197_cpu_act.tsv.gz", 1),
    (NeuralClassifier, "magic.tsv.gz", 2), (NeuralClassifier, "satimage.tsv.gz", 0),  # satimage: 6 classes
])
def test_fit_population_of_tabm_configurations_equals_fitting_each_alone(float64, cls, dataset, embedding, monkeypatch):
    X, y = load_shared(dataset, n=500)
    common = dict(arch="tabm", k=4, hidden_layers=2, dropout=0.0, max_epochs=4, batch_size=64, random_state=3,
                  **EMBEDDINGS[embedding])
    configs = [{**common, **c} for c in CONFIGS]
    alone = [cls(**c).fit(X, y) for c in configs]
    trained = []  # how many members each fit_population stack held (none may train alone)
    init = PopulationTrainer.__init__

    def counted(self, modules, *args, **kwargs):
        trained.append(len(modules))
        init(self, modules, *args, **kwargs)

    monkeypatch.setattr(PopulationTrainer, "__init__", counted)
    together = [cls(**c) for c in configs]
    assert fit_population(together, X, y) == [None, None, None]
    assert trained == [3]
    _assert_same_estimators(alone, together, X)


def test_weight_decay_acts_on_tabm_shared_weights_and_heads_not_adapters():
    """weight_decay moves a TabM network's shared BatchEnsemble weights and its k heads (as it
    moves an MLP's Linear weights), and leaves the adapters alone: they are scales, as biases
    and norm parameters are."""
    X, y = load_shared("magic.tsv.gz", n=400)
    common = dict(arch="tabm", k=4, hidden_layers=2, units=32, dropout=0.0, max_epochs=2, batch_size=64,
                  random_state=3, learning_rate=1e-3, numeric_embedding=None)
    plain = NeuralClassifier(**common, weight_decay=0.0).fit(X, y).module_.state_dict()
    decayed = NeuralClassifier(**common, weight_decay=0.3).fit(X, y).module_.state_dict()
    moved = {name for name in plain if not torch.equal(plain[name], decayed[name])}
    weights = {name for name in plain if name.endswith(".weight") and ("layers" in name or name.startswith("head"))}
    assert weights and weights <= moved, (weights - moved)
    # Decay shrinks: the decayed shared weights are smaller in norm.
    for name in weights:
        assert decayed[name].norm() < plain[name].norm(), name


# --------------------------------------------------------------------------- search


def test_search_trains_tabm_trials_as_one_stack(monkeypatch):
    """The default space's TabM trials (k fixed by the space) form cohorts that train stacked."""
    X, y = load_shared("magic.tsv.gz", n=600, seed=1)
    stacks = []
    init = PopulationTrainer.__init__

    def counted(self, modules, *args, **kwargs):
        stacks.append([type(m.body).__name__ for m in modules])
        init(self, modules, *args, **kwargs)

    monkeypatch.setattr(PopulationTrainer, "__init__", counted)
    space = {"arch": "tabm", "max_epochs": 2, "hidden_layers": 1, "units": (16, 32), "numeric_embedding": None}
    model = AutoNeuralClassifier(budget=3, space=space, population=3, random_state=0, baselines=False).fit(X, y)
    trials = model.study_.trials
    assert len(trials) == 3 and all(t.params.get("arch", "tabm") == "tabm" for t in trials)
    assert all(t.user_attrs.get("cohort") == 3 for t in trials if t.state.name == "COMPLETE"), \
        [t.user_attrs for t in trials]
    assert stacks and stacks[0] == ["TabMBody"] * 3


# --------------------------------------------------------------------------- bagging


def test_bag_of_tabm_members_on_their_own_rows_equals_the_sequential_bag(float64):
    """Cross-validation bagging stacks TabM members, each on its own rows (targets and row
    weights repeated per ensemble member over padded batches), with piecewise-linear bins
    fitted on each member's rows."""
    from tests.test_bagging_stacked import COMMON, _assert_same_members, _both

    X, y = load_shared("magic.tsv.gz", n=301)
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    params = {**COMMON, "arch": "tabm", "k": 3, "max_epochs": 4, "numeric_embedding": "piecewise_linear",
              "n_bins": 6, "d_embedding": 4}
    a, b = _both(lambda p: NeuralClassifier(**{**params, **p}), {}, X, y.to_numpy(), "classification", "accuracy",
                 sample_weight=weights)
    _assert_same_members(a, b)


# --------------------------------------------------------------------------- GPU (skip without CUDA)

@needs_cuda
def test_a_tabm_cohort_on_the_gpu_equals_the_cohort_on_the_cpu():
    data = _magic()
    assert_cohort_on_gpu_equals_cpu(*_tabm_members(data[0]), data)


@needs_cuda
def test_a_tabm_cohort_step_on_the_gpu_does_not_wait_for_the_gpu():
    from archtune.train.engines import StackedEngine

    spec, Xtr, ytr, _, _ = _magic()
    modules, configs = _tabm_members(spec)
    device = torch.device("cuda")
    engine = StackedEngine(modules, configs, make_member_loss("binary", "cross_entropy"),
                           make_member_metric("binary"), device)
    assert_step_does_not_sync(engine, Xtr[:64].to(device), ytr[:64].to(device), [1e-3, 5e-4, 2e-4, 1e-4])
