"""Each family's declaration (archtune/families) is complete: every family has a builder,
and every parameter a family declares is in the estimators' signatures and docs, checked,
searched or fixed by the spaces that offer the family, and saved in bundles. TabM-mini is
the example of a parameter added in one family module (``arch_type``)."""

from __future__ import annotations

import inspect

import numpy as np
import optuna
import pytest
import torch

import archtune
from archtune import InvalidParameterError, NeuralClassifier, NeuralRegressor
from archtune.config import PARAM_GROUPS, ModelConfig
from archtune.families import FAMILIES, family_params, list_families
from archtune.layers import Dense
from archtune.models import InputSpec, build_model, get_family, list_models
from archtune.models.tabm import LinearBatchEnsemble, ScaleEnsemble
from archtune.population import STRUCTURE_PARAMS, cohort_key, fit_population
from archtune.tune.families import BODIES
from archtune.tune.sampler import Fixed, Sampler
from tests.conftest import load_shared

# A valid value away from the default for each family parameter; a parameter added to a
# family without one here fails test_every_family_parameter_has_an_example.
EXAMPLES = {"k": 2, "arch_type": "tabm-mini", "layers": [Dense(8, "relu")]}
ARCH_OF = {p.name: spec.name for spec in FAMILIES.values() for p in spec.params}


def test_every_declared_family_has_a_builder_and_every_builder_a_declaration():
    assert list_models() == list_families()
    for name in list_models():
        assert get_family(name).spec is FAMILIES[name]


def test_every_family_parameter_has_an_example():
    assert sorted(EXAMPLES) == sorted(p.name for p in family_params())


@pytest.mark.parametrize("estimator", [NeuralClassifier, NeuralRegressor])
@pytest.mark.parametrize("param", family_params(), ids=lambda p: p.name)
def test_a_family_parameter_is_an_estimator_parameter_with_its_default_and_documentation(estimator, param):
    signature = inspect.signature(estimator)
    assert signature.parameters[param.name].default is param.default
    assert estimator().get_params()[param.name] is param.default
    assert estimator(**{param.name: EXAMPLES[param.name]}).get_params()[param.name] is EXAMPLES[param.name]
    assert f"\n    {param.name} : " in estimator.__doc__
    assert param.name in PARAM_GROUPS[ARCH_OF[param.name]]


@pytest.mark.parametrize("param", family_params(), ids=lambda p: p.name)
def test_a_bad_family_parameter_is_refused_by_name(param):
    with pytest.raises(InvalidParameterError, match=param.name):
        ModelConfig(arch=ARCH_OF[param.name], **{param.name: object()})
    with pytest.raises(InvalidParameterError, match=param.name):
        NeuralClassifier(arch=ARCH_OF[param.name], **{param.name: object()}).model_config()


def _offered_families() -> dict[str, set[str]]:
    """family -> the built-in spaces (bodies) whose ``arch`` choice offers it."""
    offered: dict[str, set[str]] = {}

    class Recorder(Sampler):
        def choice(self, name, values):
            if name == "arch":
                for value in values:
                    offered.setdefault(value, set()).add(body)
            return super().choice(name, values)

        def fixed(self, name, value):
            if name == "arch":
                offered.setdefault(value, set()).add(body)
            return super().fixed(name, value)

    for body, sample in BODIES.items():
        sample(Recorder(optuna.create_study().ask(), {}))
    return offered


def test_every_family_parameter_is_searched_or_fixed_where_a_space_offers_the_family():
    offered = _offered_families()
    assert sorted(offered) == ["cnn", "mlp", "resnet", "tabm"]  # the built-in spaces' families
    for family, bodies in offered.items():
        for body in bodies:
            sampler = Sampler(optuna.create_study().ask(), {"arch": Fixed(family)})
            BODIES[body](sampler)
            for param in FAMILIES[family].params:
                assert param.name in sampler.params, (family, body, param.name)
    # A family no space offers (the declared layer list) is searched only with its own
    # parameters fixed by the user: the search then asks for nothing of it.
    assert [p.name for p in FAMILIES["layers"].params] == ["layers"] and "layers" not in offered


def test_tabm_searches_its_measured_k_and_the_full_variant():
    sampler = Sampler(optuna.create_study().ask(), {"arch": Fixed("tabm")})
    BODIES["table"](sampler)
    assert (sampler.params["k"], sampler.params["arch_type"]) == (8, "tabm")


def test_every_family_parameter_is_saved_in_bundles(tmp_path):
    X, y = load_shared("magic.tsv.gz", n=200, seed=3)
    for param in family_params():
        arch = ARCH_OF[param.name]
        values = {p.name: EXAMPLES[p.name] for p in FAMILIES[arch].params}
        size = {} if arch == "layers" else {"hidden_layers": 1, "units": 8}
        model = NeuralClassifier(arch=arch, max_epochs=1, random_state=0, **size, **values).fit(X, y)
        path = tmp_path / param.name
        archtune.save(model, path)
        loaded = archtune.load(path)
        assert getattr(loaded, param.name) == getattr(model, param.name)
        assert getattr(loaded.model_config(), param.name) == getattr(model.model_config(), param.name)
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_tabm_mini_keeps_only_the_first_adapters_and_shares_the_other_weights():
    config = ModelConfig(arch="tabm", hidden_sizes=(16, 16), k=4, arch_type="tabm-mini", dropout=0.0)
    net = build_model(config, InputSpec(5), 1, "binary", torch.Generator().manual_seed(0))
    body = list(net.body.layers)
    assert isinstance(body[0], ScaleEnsemble) and body[0].r.shape == (4, 5)
    assert not any(isinstance(m, LinearBatchEnsemble) for m in net.modules())
    full = build_model(ModelConfig(arch="tabm", hidden_sizes=(16, 16), k=4, dropout=0.0), InputSpec(5), 1,
                       "binary", torch.Generator().manual_seed(0))
    # The full variant's adapters and per-member biases beyond the mini's: per layer r (k x in),
    # s (k x out) and k-1 more biases (k x out instead of one shared out), less the mini's r.
    n = sum(p.numel() for p in net.parameters())
    n_full = sum(p.numel() for p in full.parameters())
    assert n_full - n == (4 * 5 + 4 * 16 + 3 * 16) + (4 * 16 + 4 * 16 + 3 * 16) - 4 * 5
    # Members differ only through the input adapters: equal adapters give equal member outputs.
    with torch.no_grad():
        body[0].r.fill_(1.0)
        hidden = net.body(torch.randn(3, 5))
    assert torch.allclose(hidden[:, 0], hidden[:, 3])


def test_tabm_mini_members_are_not_stacked_and_train_one_at_a_time():
    X, y = load_shared("magic.tsv.gz", n=300, seed=2)
    mini = [NeuralClassifier(arch="tabm", arch_type="tabm-mini", k=2, hidden_layers=1, units=8, max_epochs=2,
                             random_state=seed) for seed in (0, 1)]
    full = NeuralClassifier(arch="tabm", k=2, hidden_layers=1, units=8, max_epochs=2, random_state=0)
    assert cohort_key(mini[0], 240) is None and cohort_key(full, 240) is not None
    assert "arch_type" in STRUCTURE_PARAMS and "k" in STRUCTURE_PARAMS
    assert fit_population(mini, X, y) == [None, None]
    alone = NeuralClassifier(**mini[1].get_params()).fit(X, y)
    np.testing.assert_allclose(mini[1].predict_proba(X), alone.predict_proba(X), atol=1e-6)


def test_a_tabm_mini_network_prunes_distills_fine_tunes_and_exports(tmp_path):
    # The artefacts a network becomes, for the variant added in its family module alone.
    X, y = load_shared("magic.tsv.gz", n=300, seed=1)
    mini = NeuralClassifier(arch="tabm", arch_type="tabm-mini", k=2, hidden_layers=2, units=16, max_epochs=2,
                            random_state=0).fit(X, y)
    pruned, _ = archtune.prune(mini, X, y, fine_tune_epochs=1, max_rounds=1)
    assert pruned.model_config_.arch_type == "tabm-mini" and pruned.model_config_.hidden_sizes < (16, 16)
    assert pruned.predict_proba(X).shape == (300, 2)
    student = archtune.distill(mini, X, y, NeuralClassifier(max_epochs=1, hidden_layers=1, units=8, random_state=0))
    assert student.predict(X).shape == (300,)
    tuned = NeuralClassifier(init_from=mini, max_epochs=1, random_state=0).fit(X, y)
    assert tuned.model_config_.arch_type == "tabm-mini" and tuned.lineage_[0]["step"] == "init_from"
    ort = pytest.importorskip("onnxruntime", reason="ONNX export needs the onnx extra: pip install 'archtune[onnx]'")
    from tests.test_export import _run

    outputs, _ = _run(ort, mini, X, tmp_path)
    probabilities = next(v for v in outputs.values() if np.ndim(v) == 2 and np.shape(v)[1] == 2)
    np.testing.assert_allclose(probabilities, mini.predict_proba(X), atol=1e-5)


def test_a_tabm_mini_regressor_predicts_one_or_several_outputs():
    X, y = load_shared("197_cpu_act.tsv.gz", n=300)
    common = {"arch": "tabm", "arch_type": "tabm-mini", "k": 2, "hidden_layers": 1, "units": 8, "max_epochs": 2,
              "random_state": 0}
    assert NeuralRegressor(**common).fit(X, y).predict(X).shape == (300,)
    two = np.column_stack([y, -y])
    model = NeuralRegressor(**common).fit(X, two)
    assert model.predict(X).shape == (300, 2) and model.module_.ensemble_size == 2
