"""Initialisers, activations, dropout: the textbook properties, measured."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archtune.config import ModelConfig
from archtune.errors import InvalidParameterError
from archtune.blocks import ACTIVATIONS, INITIALIZERS, make_dropout, resolve_initializer
from archtune.models import InputSpec, build_model

FAN = 1000


@pytest.mark.parametrize(
    "name, variance",
    [
        ("glorot_uniform", 2.0 / (FAN + FAN)),
        ("glorot_normal", 2.0 / (FAN + FAN)),
        ("he_uniform", 2.0 / FAN),
        ("he_normal", 2.0 / FAN),
        ("lecun_normal", 1.0 / FAN),
    ],
)
def test_initializer_variance_matches_formula(name, variance):
    w = torch.empty(FAN, FAN)
    INITIALIZERS[name](w, torch.Generator().manual_seed(0))
    assert abs(float(w.var()) / variance - 1) < 0.05
    assert abs(float(w.mean())) < 0.05 * math.sqrt(variance)


def test_glorot_uses_both_fans_on_a_rectangular_layer():
    w = torch.empty(200, 1800)  # fan_out 200, fan_in 1800
    INITIALIZERS["glorot_normal"](w, torch.Generator().manual_seed(0))
    assert abs(float(w.var()) / (2.0 / 2000) - 1) < 0.05


def test_orthogonal_initializer_is_orthogonal():
    w = torch.empty(64, 64)
    INITIALIZERS["orthogonal"](w, torch.Generator().manual_seed(0))
    assert torch.allclose(w @ w.T, torch.eye(64), atol=1e-5)


@pytest.mark.parametrize("activation, expected", [
    ("relu", "he_normal"), ("leaky_relu", "he_normal"), ("elu", "he_normal"), ("gelu", "he_normal"),
    ("tanh", "glorot_uniform"), ("sigmoid", "glorot_uniform"), ("linear", "glorot_uniform"),
    ("selu", "lecun_normal"),
])
def test_auto_initializer_follows_activation(activation, expected):
    assert resolve_initializer("auto", activation) == expected


def _deep(activation: str, depth: int = 30, width: int = 256):
    g = torch.Generator().manual_seed(0)
    net = build_model(ModelConfig(hidden_sizes=(width,) * depth, activation=activation, dropout=0.0),
                      InputSpec(width), 1, "regression", g)
    x = torch.randn(2000, width, generator=g)
    outputs: list[torch.Tensor] = []
    for m in net.body:
        if not isinstance(m, (nn.Linear, nn.Identity)):
            m.register_forward_hook(lambda mod, inp, out: outputs.append(out.detach()))
    (net(x) ** 2).mean().backward()
    linears = [m for m in net.body if isinstance(m, nn.Linear)]
    ratio = float(linears[0].weight.grad.norm() / linears[-1].weight.grad.norm())
    return outputs, ratio


def test_selu_with_lecun_init_self_normalises_through_30_layers():
    outputs, ratio = _deep("selu")
    assert len(outputs) == 30
    for h in outputs:
        assert abs(float(h.mean())) < 0.1
        assert 0.85 < float(h.std()) < 1.15
    assert ratio > 1e-2  # the gradient reaches the first layer


def test_sigmoid_with_glorot_vanishes_through_30_layers():
    outputs, ratio = _deep("sigmoid")
    # Activations collapse toward a constant and the first layer's gradient is orders of
    # magnitude smaller than the last one's: the vanishing-gradient problem.
    assert float(outputs[-1].std()) < 0.3
    assert ratio < 1e-6


def test_dropout_is_inverted_and_off_at_inference():
    drop = make_dropout(0.5, "relu")
    x = torch.ones(1_000_000)
    drop.train()
    y = drop(x)
    assert abs(float((y == 0).float().mean()) - 0.5) < 0.01
    assert abs(float(y.mean()) - 1.0) < 0.01  # survivors are scaled by 1/(1-p)
    drop.eval()
    assert torch.equal(drop(x), x)


def test_selu_gets_alpha_dropout_which_keeps_mean_and_variance():
    drop = make_dropout(0.2, "selu")
    assert isinstance(drop, nn.AlphaDropout)
    x = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))
    y = drop.train()(x)
    assert abs(float(y.mean())) < 0.02 and abs(float(y.std()) - 1.0) < 0.02


def test_every_activation_trains_forward_and_backward():
    for name in ACTIVATIONS:
        net = build_model(ModelConfig(hidden_sizes=(8, 8), activation=name), InputSpec(3), 2, "multiclass",
                          torch.Generator().manual_seed(0))
        out = net(torch.randn(5, 3))
        out.sum().backward()
        assert all(p.grad is not None for p in net.parameters() if p.requires_grad), name


def test_step_activation_is_rejected_with_the_reason():
    with pytest.raises(InvalidParameterError, match="gradient is zero everywhere"):
        ModelConfig(activation="step")


def test_zeros_initializer_is_rejected_with_the_reason():
    with pytest.raises(InvalidParameterError, match="symmetry"):
        ModelConfig(initializer="zeros")


def test_unknown_activation_suggests_the_nearest():
    with pytest.raises(InvalidParameterError, match="did you mean 'relu'"):
        ModelConfig(activation="rellu")


def test_swish_is_an_alias_of_silu():
    assert ModelConfig(activation="swish").activation == "silu"


@pytest.mark.parametrize("norm", [None, "layer"])
def test_deep_residual_network_starts_at_unit_scale(norm):
    # Activation-matched init alone lets residual branches compound: RMS ~30 after 8 blocks,
    # and such networks diverged in searches. Small initial branches keep the scale near 1.
    g = torch.Generator().manual_seed(0)
    net = build_model(ModelConfig(arch="resnet", hidden_sizes=(256,) * 8, dropout=0.0, norm=norm), InputSpec(16), 1,
                      "regression", g).eval()
    x = torch.randn(4000, 16, generator=g)
    with torch.no_grad():
        hidden_rms = float(net.body(x).pow(2).mean().sqrt())
        out_std = float(net(x).std())
    assert 0.5 < hidden_rms < 2.0
    assert 0.3 < out_std < 3.0
