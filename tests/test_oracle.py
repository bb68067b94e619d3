"""Oracle: archtune's network computes the same forward and backward pass as NumPy."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from archtune.config import ModelConfig
from archtune.models import InputSpec, build_model


def _two_layer(task: str, n_in: int = 7, hidden: int = 11, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    net = build_model(ModelConfig(hidden_sizes=(hidden,), activation="relu", dropout=0.0), InputSpec(n_in), 1, task, g)
    return net.double()


def _numpy_forward_backward(X, y, W1, b1, W2, b2, loss):
    pre = X @ W1.T + b1
    h = np.maximum(pre, 0.0)
    out = h @ W2.T + b2
    n = len(X)
    if loss == "mse":
        value = np.mean((out - y) ** 2)
        d_out = 2.0 * (out - y) / n
    else:  # binary cross-entropy on logits
        p = 1.0 / (1.0 + np.exp(-out))
        value = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        d_out = (p - y) / n
    grads = {"head.weight": d_out.T @ h, "head.bias": d_out.sum(axis=0)}
    d_pre = (d_out @ W2) * (pre > 0)
    grads["body.0.weight"] = d_pre.T @ X
    grads["body.0.bias"] = d_pre.sum(axis=0)
    return out, value, grads


def _check(task: str, loss_name: str, y: np.ndarray) -> None:
    net = _two_layer(task)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 7))
    params = {k: v.detach().numpy() for k, v in net.named_parameters()}
    out_np, loss_np, grads_np = _numpy_forward_backward(
        X, y, params["body.0.weight"], params["body.0.bias"], params["head.weight"], params["head.bias"], loss_name)

    out = net(torch.from_numpy(X))
    target = torch.from_numpy(y)
    loss = F.mse_loss(out, target) if loss_name == "mse" else F.binary_cross_entropy_with_logits(out, target)
    loss.backward()

    np.testing.assert_allclose(out.detach().numpy(), out_np, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(loss.item(), loss_np, rtol=1e-6, atol=1e-6)
    assert set(grads_np) == {k for k, _ in net.named_parameters()}
    for name, p in net.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads_np[name], rtol=1e-6, atol=1e-6, err_msg=name)


def test_two_layer_relu_regression_matches_numpy():
    y = np.random.default_rng(1).normal(size=(50, 1))
    _check("regression", "mse", y)


def test_two_layer_relu_binary_matches_numpy():
    y = np.random.default_rng(2).integers(0, 2, size=(50, 1)).astype("float64")
    _check("binary", "bce", y)
