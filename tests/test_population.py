"""Population (cohort) training: a stack of K networks trained as one model must reproduce,
member by member, what training each network alone gives (oracle tests), and members that
leave the stack must not disturb the others."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

import pytest
import torch

from archtune.config import ModelConfig, TrainConfig
from archtune.data.preprocess import Preprocessor
from archtune.errors import InvalidParameterError
from archtune.models import InputSpec, build_model
from archtune.models.stacked import StackedNetwork
from archtune.train import Trainer
from archtune.train.callbacks import Callback
from archtune.train.losses import make_loss, make_member_loss, make_member_metric, make_metric
from archtune.train.population import PopulationTrainer
from tests.conftest import load_shared

SCHEDULES = ["constant", "cosine", "plateau", "one_cycle", "step", "exponential"]


def _magic(dtype, n=1200):
    X, y = load_shared("magic.tsv.gz", n=n)
    pre = Preprocessor().fit(X)
    Xt = torch.from_numpy(pre.transform(X)).to(dtype)
    yt = torch.from_numpy((y.to_numpy() == y.unique()[0]).astype("float64")).to(dtype).reshape(-1, 1)
    cut = int(n * 5 / 6)
    return InputSpec(Xt.shape[1]), Xt[:cut], yt[:cut], Xt[cut:], yt[cut:]


def _adult_with_categories(dtype, n=1500):
    """Adult with its label-encoded columns read as categories, so members have embeddings."""
    X, y = load_shared("adult.tsv.gz", n=n)
    cats = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex"]
    X = X.drop(columns=["native-country"])
    kinds = {c: ("categorical" if c in cats else "numeric") for c in X.columns}
    pre = Preprocessor().fit(X, kinds=kinds)
    Xt = torch.from_numpy(pre.transform(X)).to(dtype)
    yt = torch.from_numpy(y.to_numpy().astype("float64")).to(dtype).reshape(-1, 1)
    spec = InputSpec.auto(pre.n_numeric_out, pre.cardinalities)
    cut = int(n * 5 / 6)
    return spec, Xt[:cut], yt[:cut], Xt[cut:], yt[cut:]


def _members(spec, dtype, widths, *, arch="mlp", activation="tanh", norm=None, optimizer="adamw",
             dropout=0.0, max_epochs=8, batch_size=100):
    """Six configurations that differ in width, learning rate, weight decay, L2, L1, max-norm,
    gradient clipping and schedule; the modules are built with different seeds."""
    lrs = [1e-3, 3e-3, 1e-2, 5e-4, 2e-3, 1e-3]
    if optimizer in ("sgd", "momentum", "nesterov", "adagrad"):
        lrs = [lr * 10 for lr in lrs]
    wds = [0, 1e-3, 1e-2, 0, 1e-4, 1e-3]
    l2s = [0, 1e-4, 0, 1e-3, 0, 1e-5]
    configs = [
        TrainConfig(optimizer=optimizer, learning_rate=lr, weight_decay=wd, l2=l2, batch_size=batch_size,
                    max_epochs=max_epochs, lr_schedule=sched, warmup_epochs=1, patience=3,
                    momentum=0.9 if i % 2 else 0.8, loss="cross_entropy", seed=7,
                    max_norm=2.0 if i == 1 else None, gradient_clip=0.5 if i == 2 else None,
                    l1=1e-4 if i == 3 else 0.0)
        for i, (lr, wd, l2, sched) in enumerate(zip(lrs, wds, l2s, SCHEDULES))
    ]
    modules = [
        build_model(ModelConfig(arch=arch, hidden_sizes=w, activation=activation, dropout=dropout, norm=norm),
                    spec, 1, "binary", torch.Generator().manual_seed(i)).to(dtype)
        for i, w in enumerate(widths)
    ]
    return modules, configs


def _train_alone(modules, configs, data):
    _, Xtr, ytr, Xva, yva = data
    out = []
    for module, config in zip(modules, configs):
        module = copy.deepcopy(module)
        trainer = Trainer(module, make_loss("binary", "cross_entropy"), config, metric=make_metric("binary"),
                          metric_name="accuracy")
        trainer.fit(Xtr, ytr, Xva, yva)
        out.append((trainer.history.records, module.state_dict(), trainer.best_epoch))
    return out


def _train_together(modules, configs, data, callbacks=None, divergence_limit=None):
    _, Xtr, ytr, Xva, yva = data
    trainer = PopulationTrainer([copy.deepcopy(m) for m in modules], configs,
                                make_member_loss("binary", "cross_entropy"), make_member_metric("binary"),
                                "accuracy", callbacks=callbacks, divergence_limit=divergence_limit)
    return trainer.fit(Xtr, ytr, Xva, yva)


def _relative(a: torch.Tensor, b: torch.Tensor, scale: float) -> float:
    return float((a.double() - b.double()).abs().max()) / max(scale, 1e-12)


def _assert_same(alone, together, rtol, accuracy_slack=0.0):
    """Per-epoch losses, rates and the final weights agree member by member; the accuracy
    may differ by ``accuracy_slack`` (in float32 a row on the decision boundary can flip)."""
    for k, ((history, state, best_epoch), result) in enumerate(zip(alone, together)):
        assert result.status == "complete", (k, result.status, result.error)
        assert len(history) == len(result.history), f"member {k}: epochs {len(history)} vs {len(result.history)}"
        for a, b in zip(history, result.history):
            for key in ("train_loss", "val_loss", "lr"):
                assert b[key] == pytest.approx(a[key], rel=rtol, abs=1e-12), (k, a["epoch"], key)
            assert abs(b["val_accuracy"] - a["val_accuracy"]) <= accuracy_slack + 1e-12, (k, a["epoch"])
        assert result.best_epoch == best_epoch, k
        # Relative to the largest weight of the whole network: a bias just before batch norm
        # has a zero gradient in exact arithmetic, so only absolute agreement is meaningful there.
        scale = max(float(v.abs().max()) for v in state.values() if v.dtype.is_floating_point)
        for name, value in state.items():
            if value.dtype.is_floating_point:
                assert _relative(value, result.state[name], scale) < rtol, (k, name)
            else:
                assert torch.equal(value, result.state[name]), (k, name)


MLP_WIDTHS = [(32, 32, 32), (64, 64, 64), (16, 16, 16), (48, 48, 48), (64, 64, 64), (8, 8, 8)]
TAPERED = [(32, 16, 8), (64, 32, 16), (16, 8, 4), (48, 24, 12), (64, 32, 16), (8, 4, 2)]


def test_oracle_float64_six_members_of_different_width_match_training_alone():
    data = _magic(torch.float64)
    modules, configs = _members(data[0], torch.float64, MLP_WIDTHS)
    _assert_same(_train_alone(modules, configs, data), _train_together(modules, configs, data), 1e-8)


def test_oracle_float32_resnet_with_batch_norm():
    data = _magic(torch.float32)
    # Six epochs: float32 rounding differs between a batched and a single matmul, and such
    # differences grow with every step (measured: ~1e-7 at 5 epochs, 2e-6 at 6, 1e-4 at 8); the
    # float64 tests check the longer horizon.
    modules, configs = _members(data[0], torch.float32, TAPERED, arch="resnet", activation="relu", norm="batch",
                                max_epochs=6)
    one_row = 1.0 / len(data[3]) + 1e-6
    _assert_same(_train_alone(modules, configs, data), _train_together(modules, configs, data), 1e-4, one_row)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "nadam"])
def test_oracle_every_optimizer(optimizer):
    data = _magic(torch.float64, n=600)
    modules, configs = _members(data[0], torch.float64, MLP_WIDTHS, optimizer=optimizer, activation="gelu",
                                max_epochs=4)
    _assert_same(_train_alone(modules, configs, data), _train_together(modules, configs, data), 1e-8)


@pytest.mark.parametrize("arch,norm,activation", [
    ("mlp", "layer", "elu"), ("resnet", "layer", "silu"), ("mlp", "batch", "leaky_relu"),
    ("resnet", None, "prelu"), ("mlp", None, "selu"), ("mlp", None, "mish"), ("mlp", None, "softplus"),
])
def test_oracle_norms_residuals_and_activations(arch, norm, activation):
    data = _magic(torch.float64, n=600)
    widths = TAPERED if arch == "resnet" else MLP_WIDTHS
    modules, configs = _members(data[0], torch.float64, widths, arch=arch, norm=norm, activation=activation,
                                max_epochs=4)
    _assert_same(_train_alone(modules, configs, data), _train_together(modules, configs, data), 1e-8)


def test_oracle_categorical_embeddings():
    data = _adult_with_categories(torch.float64)
    assert data[0].cardinalities, "the adult sample must have categorical columns"
    modules, configs = _members(data[0], torch.float64, MLP_WIDTHS, activation="relu", max_epochs=4)
    _assert_same(_train_alone(modules, configs, data), _train_together(modules, configs, data), 1e-8)


def _embedded_members(dtype, *, feature_scale, others):
    """Three networks of different widths with piecewise-linear embeddings of 4 numeric columns,
    parametric activations and (``feature_scale``) the feature scale; ``others``: 2 more numeric
    columns and 2 categorical ones beside the embedded block. Every parameter is perturbed: the
    feature scale starts at 1 and the encoding's weights at 0, where a misplaced factor would
    not show. Returns the members and inputs X."""
    from archtune.config_groups import NumericEmbeddingConfig
    from archtune.models.embeddings import compute_bins

    rng = np.random.default_rng(0)
    numeric = rng.normal(size=(300, 4))
    columns = [numeric]
    if others:
        columns += [rng.integers(0, 2, size=(300, 2)), rng.integers(0, 5, size=(300, 2))]
    X = torch.tensor(np.hstack(columns), dtype=dtype)
    bins = tuple(tuple(edges) for edges in compute_bins(numeric, n_bins=7))
    spec = InputSpec.auto(6 if others else 4, (5, 5) if others else (), n_continuous=4, bins=bins)
    members = []
    for i, width in enumerate((16, 12, 16)):
        config = ModelConfig(hidden_sizes=(width, width), activation="relu", dropout=0.0, parametric_activation=True,
                             feature_scale=feature_scale,
                             numeric=NumericEmbeddingConfig("piecewise_linear", d_embedding=3, n_bins=7))
        member = build_model(config, spec, 1, "binary", torch.Generator().manual_seed(i)).to(dtype)
        with torch.no_grad():
            for p in member.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(10 + i), dtype=dtype) * 0.3)
        members.append(member)
    return members, X


@pytest.mark.parametrize("feature_scale,others", [(True, False), (True, True), (False, True)])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_stacked_piecewise_linear_embedding_and_feature_scale_equal_each_network(dtype, tol, feature_scale, others):
    """The stack embeds shared rows with one matrix product per feature, the value and the bias
    folded into it as two more bins and the feature scale into its weights (not, as a network
    alone, as passes over the activations): the same sums in another order. Each member's
    outputs and gradients equal its network's to rounding, with other numeric and categorical
    columns beside the embedded block (scaled apart) or not."""
    members, X = _embedded_members(dtype, feature_scale=feature_scale, others=others)
    stack = StackedNetwork(copy.deepcopy(members)).to(dtype)
    g = torch.randn(len(members), len(X), 1, generator=torch.Generator().manual_seed(1), dtype=dtype)
    out = stack(X)
    (out * g).sum().backward()
    for k, member in enumerate(members):
        alone = member(X)
        (alone * g[k]).sum().backward()
        assert float((out[k] - alone).detach().abs().max()) <= tol * float(alone.detach().abs().max()), k
        for name, p in member.named_parameters():
            slot = stack.slots[name]
            grad = slot.member_view(stack.flat.grad[k, slot.offset:slot.offset + slot.size].view(slot.shape),
                                    tuple(p.shape))
            assert p.grad is not None and float(p.grad.abs().max()) > 0, (k, name)
            assert float((grad - p.grad).abs().max()) <= tol * float(p.grad.abs().max()), (k, name)


def test_a_cpu_stack_validates_wide_members_in_batches_that_fit_the_cache(monkeypatch):
    """Validation of a stack of wide members runs in shorter batches on a CPU (its activations
    would not stay in the cache), and gives what each network gives on all rows at once."""
    import archtune.models.stacked as stacked_module
    from archtune.train.engines import StackedEngine

    members, X = _embedded_members(torch.float64, feature_scale=True, others=True)
    y = (X[:, :1] > 0).to(torch.float64)
    configs = [TrainConfig(batch_size=32, loss="cross_entropy") for _ in members]
    engine = StackedEngine(copy.deepcopy(members), configs, make_member_loss("binary", "cross_entropy"),
                           make_member_metric("binary"), torch.device("cpu"))
    assert engine.net.eval_rows(8192) == stacked_module.EVAL_CACHE_VALUES // (3 * engine.net.widest)
    monkeypatch.setattr(stacked_module, "EVAL_MIN_ROWS", 64)
    monkeypatch.setattr(stacked_module, "EVAL_CACHE_VALUES", 64 * 3 * engine.net.widest)
    assert engine.net.eval_rows(8192) == 64  # 300 rows: 5 batches
    losses, accuracies, _ = engine.evaluate(X, y)
    loss, metric = make_loss("binary", "cross_entropy"), make_metric("binary")
    for k, member in enumerate(members):
        member.eval()
        with torch.no_grad():
            outputs = member(X)
        assert losses[k] == pytest.approx(float(loss(outputs, y)), rel=1e-12), k
        assert accuracies[k] == pytest.approx(float(metric(outputs, y)), abs=1e-12), k


class _StopAt(Callback):
    """Stops its member at a given epoch, as a pruner would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, logs):
        if logs["epoch"] >= self.epoch:
            trainer.stop_training = True


class _Pruned(Exception):
    pass


class _RaiseAt(_StopAt):
    def on_epoch_end(self, trainer, logs):
        if logs["epoch"] >= self.epoch:
            raise _Pruned(f"pruned at epoch {logs['epoch']}")


def test_compaction_pruning_two_of_six_leaves_the_others_on_their_trajectory():
    data = _magic(torch.float64)
    modules, configs = _members(data[0], torch.float64, MLP_WIDTHS, max_epochs=8)
    # Without early stopping every survivor runs all 8 epochs, through the compaction.
    configs = [dataclasses.replace(c, early_stopping=False) for c in configs]
    reference = _train_together(modules, configs, data)
    callbacks = [[], [_RaiseAt(3)], [], [], [_StopAt(2)], []]
    pruned = _train_together(modules, configs, data, callbacks=callbacks)
    assert pruned[1].status == "stopped" and isinstance(pruned[1].error, _Pruned)
    assert len(pruned[1].history) == 3 and len(pruned[4].history) == 2
    for k in (0, 2, 3, 5):
        assert len(pruned[k].history) == 8
        for a, b in zip(reference[k].history, pruned[k].history):
            for key in ("train_loss", "val_loss", "lr"):
                assert b[key] == pytest.approx(a[key], rel=1e-12), (k, a["epoch"], key)
        for name, value in reference[k].state.items():
            assert torch.allclose(value, pruned[k].state[name], rtol=1e-12, atol=1e-15), (k, name)
    # The members that left carry their weights from the epoch they left at.
    assert pruned[4].state is not None and pruned[4].best_epoch == 2


def test_diverging_member_leaves_and_the_rest_finish():
    data = _magic(torch.float64, n=600)
    modules, configs = _members(data[0], torch.float64, MLP_WIDTHS, optimizer="sgd", max_epochs=4)
    configs[2] = dataclasses.replace(configs[2], learning_rate=1e6, gradient_clip=None)
    results = _train_together(modules, configs, data, divergence_limit=100 * 0.69)  # as the estimators set it
    assert results[2].status == "diverged" and "diverged" in str(results[2].error)
    assert all(r.status == "complete" and len(r.history) >= 1 for k, r in enumerate(results) if k != 2)
    alone = _train_alone([modules[0]], [configs[0]], data)
    assert results[0].history[-1]["val_loss"] == pytest.approx(alone[0][0][-1]["val_loss"], rel=1e-8)


@pytest.mark.parametrize("arch,norm", [("mlp", "batch"), ("resnet", "layer")])
def test_extracted_member_predicts_identically_to_its_slice(arch, norm):
    spec, Xtr, ytr, Xva, yva = _magic(torch.float64, n=600)
    widths = TAPERED if arch == "resnet" else MLP_WIDTHS
    modules, configs = _members(spec, torch.float64, widths, arch=arch, norm=norm, activation="relu", max_epochs=2)
    trainer = PopulationTrainer([copy.deepcopy(m) for m in modules], configs,
                                make_member_loss("binary", "cross_entropy"), make_member_metric("binary"))
    stack = trainer.net
    for _ in range(3):  # move the weights and the running statistics away from their start
        stack.train()
        stack(Xtr[:200]).sum().backward()
        with torch.no_grad():
            stack.flat.sub_(0.05 * stack.flat.grad)
        stack.flat.grad = None
    stack.eval()
    with torch.no_grad():
        sliced = stack(Xva)
    for k, module in enumerate(modules):
        single = copy.deepcopy(module)
        single.load_state_dict(stack.member_state(k))
        single.eval()
        with torch.no_grad():
            assert torch.allclose(single(Xva), sliced[k], rtol=1e-12, atol=1e-13), k


def test_members_of_different_structure_are_refused():
    spec = InputSpec(10)
    a = build_model(ModelConfig(hidden_sizes=(8, 8)), spec, 1, "binary")
    b = build_model(ModelConfig(hidden_sizes=(8, 8, 8)), spec, 1, "binary")
    with pytest.raises(InvalidParameterError):
        StackedNetwork([a, b])
    c = build_model(ModelConfig(hidden_sizes=(8, 8)), spec, 1, "binary")
    with pytest.raises(InvalidParameterError, match="optimizer and batch_size"):
        PopulationTrainer([a, c], [TrainConfig(optimizer="adam"), TrainConfig(optimizer="sgd")],
                          make_member_loss("binary", "cross_entropy"), make_member_metric("binary"))


# --------------------------------------------------------------------------- estimators


from archtune import NeuralClassifier, NeuralRegressor  # noqa: E402
from archtune.errors import TrainingDivergedError  # noqa: E402
from archtune.population import fit_population  # noqa: E402

ESTIMATOR_CONFIGS = [dict(units=32, learning_rate=1e-3), dict(units=44, learning_rate=3e-3, weight_decay=1e-3),
                     dict(units=40, learning_rate=2e-3, l2=1e-4, lr_schedule="cosine", max_epochs=6)]


@pytest.mark.parametrize("cls,dataset", [(NeuralClassifier, "magic.tsv.gz"), (NeuralRegressor, "197_cpu_act.tsv.gz")])
def test_fit_population_gives_the_estimators_that_fitting_alone_gives(cls, dataset):
    X, y = load_shared(dataset, n=1500)
    common = dict(random_state=3, dropout=0.0)
    configs = [{"max_epochs": 8, **c} for c in ESTIMATOR_CONFIGS]
    alone = [cls(**common, **c).fit(X, y) for c in configs]
    together = [cls(**common, **c) for c in configs]
    assert fit_population(together, X, y) == [None, None, None]
    for a, b in zip(alone, together):
        assert list(a.history_["val_loss"]) == pytest.approx(list(b.history_["val_loss"]), rel=1e-4)
        assert a.best_epoch_ == b.best_epoch_
        out_a = a.predict_proba(X) if cls is NeuralClassifier else a.predict(X)
        out_b = b.predict_proba(X) if cls is NeuralClassifier else b.predict(X)
        assert abs(out_a - out_b).max() <= 1e-4 * max(1.0, abs(out_a).max())
        assert b.n_features_in_ == a.n_features_in_ and list(b.feature_names_in_) == list(a.feature_names_in_)


def test_fit_population_refuses_estimators_that_cannot_share_a_stack():
    X, y = load_shared("magic.tsv.gz", n=300)
    with pytest.raises(InvalidParameterError, match="estimator 1 cannot share a population"):
        fit_population([NeuralClassifier(hidden_layers=2), NeuralClassifier(hidden_layers=3)], X, y)
    with pytest.raises(InvalidParameterError, match="estimator 1 cannot share a population"):
        fit_population([NeuralClassifier(random_state=0), NeuralClassifier(random_state=1)], X, y)


def test_fit_population_reports_a_diverged_member_and_fits_the_rest():
    X, y = load_shared("magic.tsv.gz", n=600)
    members = [NeuralClassifier(random_state=0, optimizer="sgd", learning_rate=lr, max_epochs=4)
               for lr in (0.01, 1e5, 0.05)]
    errors = fit_population(members, X, y)
    assert errors[0] is None and errors[2] is None and isinstance(errors[1], TrainingDivergedError)
    assert members[0].score(X, y) > 0.6 and not hasattr(members[1], "module_")


# --------------------------------------------------------------------------- search


from archtune.auto import AutoNeuralClassifier  # noqa: E402
from archtune.population import STRUCTURE_PARAMS  # noqa: E402

NEURAL = sorted(NeuralClassifier().get_params())
# MLPs (tests/test_tabm_stacked.py searches TabM cohorts).
SEARCH_SPACE = {"max_epochs": 5, "arch": "mlp", "hidden_layers": (1, 3), "units": (16, 64), "dropout": 0.0}


@pytest.fixture(scope="module")
def magic_search():
    X, y = load_shared("magic.tsv.gz", n=1500, seed=1)
    model = AutoNeuralClassifier(budget=8, space=SEARCH_SPACE, population=4, random_state=0, baselines=False).fit(X, y)
    return X, y, model


def test_search_trains_cohorts_that_share_the_leaders_structure(magic_search):
    _, _, model = magic_search
    trials = model.study_.trials
    assert len(trials) == 8 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    followers = [t for t in trials if "cohort_leader" in t.user_attrs]
    assert len(followers) == 6  # two cohorts of four: a leader and three followers each
    for t in followers:
        leader = trials[t.user_attrs["cohort_leader"]]
        assert {k: t.params[k] for k in STRUCTURE_PARAMS if k in leader.params} == \
            {k: leader.params[k] for k in STRUCTURE_PARAMS if k in leader.params}
    # The followers' other parameters come from the sampler, so they differ.
    assert len({t.params["learning_rate"] for t in trials}) == 8
    assert all(t.user_attrs.get("cohort") == 4 for t in trials if t.state.name == "COMPLETE")


def test_search_cohort_scores_equal_training_each_trial_alone(magic_search):
    """Each trial's per-epoch validation accuracy, as the pruner saw it, is what fitting its
    configuration alone on the same split gives (float32: a row on the boundary may flip)."""
    X, y, model = magic_search
    from archtune.data.table import Table
    from archtune.tune.data import search_splits as make_splits
    from archtune.tune.trial_records import trial_config

    split = make_splits(Table.read(X), y.to_numpy(), np.unique(y, return_inverse=True)[1], 0, None, 0.2)[0]
    for trial in model.study_.trials[:4]:
        params = trial_config(trial)
        alone = NeuralClassifier(random_state=0, verbose=0, **params)
        alone.fit(split.X_train, split.y_train, validation_data=(split.X_val, split.y_val))
        seen = trial.intermediate_values
        for epoch, value in seen.items():
            expected = alone.history_["val_accuracy"].iloc[epoch - 1]
            assert abs(value - expected) <= 1.0 / len(split.X_val) + 1e-6, (trial.number, epoch)




def test_population_false_trains_one_at_a_time():
    X, y = load_shared("magic.tsv.gz", n=600, seed=1)
    model = AutoNeuralClassifier(budget=3, space={"max_epochs": 3, "units": (16, 32)}, population=False,
                                 random_state=0, baselines=False).fit(X, y)
    assert all("cohort" not in t.user_attrs and "cohort_leader" not in t.user_attrs for t in model.study_.trials)
    with pytest.raises(InvalidParameterError, match="population"):
        AutoNeuralClassifier(budget=2, population=0).fit(X, y)


def test_interrupt_ends_the_epoch_and_stops_every_member_with_its_weights():
    data = _magic(torch.float64, n=600)
    modules, configs = _members(data[0], torch.float64, MLP_WIDTHS, max_epochs=8)
    _, Xtr, ytr, Xva, yva = data
    calls = []
    trainer = PopulationTrainer([copy.deepcopy(m) for m in modules], configs,
                                make_member_loss("binary", "cross_entropy"), make_member_metric("binary"),
                                interrupt=lambda: calls.append(1) or len(calls) > 7)
    results = trainer.fit(Xtr, ytr, Xva, yva)
    steps_per_epoch = -(-len(Xtr) // configs[0].batch_size)
    assert len(calls) < 2 * steps_per_epoch  # it stopped in the second epoch, not at the end of training
    for r in results:
        assert r.status == "complete" and len(r.history) == 2 and r.state is not None
        assert "val_loss" in r.history[-1]
