"""The hand-written NumPy MLP floor computes what minidl and PyTorch compute: loss, every
gradient, and Adam's update -- checked in float64, where only rounding may differ."""
import numpy as np
import pytest

import minidl
import minidl.nn as nn
from suite import models, weights
from suite.numpy_mlp import NAMES, NumpyMLP


@pytest.fixture
def setup():
    shapes = [(n, tuple(p.shape)) for n, p in models.mlp(nn).named_parameters()]
    state = {k: v.astype(np.float64) for k, v in weights.draw_parameters(shapes).items()}
    rng = np.random.default_rng(3)
    x = rng.random((16, 784))
    y = rng.integers(0, 10, 16)
    return state, x, y


def minidl_model(state):
    model = models.mlp(nn).double()
    model.load_state_dict({k: minidl.tensor(v) for k, v in state.items()})
    return model


def test_loss_and_gradients_match_minidl(setup):
    state, x, y = setup
    floor = NumpyMLP(state, dtype=np.float64)
    loss = floor.loss_and_grads(x, y)
    model = minidl_model(state)
    ref = nn.functional.cross_entropy(model(minidl.tensor(x)), minidl.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    params = dict(model.named_parameters())
    for name, grad in zip(NAMES, floor.grads):
        np.testing.assert_allclose(grad, params[name].grad.numpy(), rtol=1e-10, atol=1e-14,
                                   err_msg=name)


def test_loss_gradients_and_adam_match_torch(setup):
    torch = pytest.importorskip("torch")
    state, x, y = setup
    floor = NumpyMLP(state, lr=1e-3, dtype=np.float64)
    model = models.mlp(torch.nn).double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(3):                          # three steps: Adam's bias corrections move
        loss = floor.step(x, y)
        opt.zero_grad()
        ref = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        ref.backward()
        assert loss == pytest.approx(ref.item(), rel=1e-12), f"step {step}"
        grads = dict((n, p.grad.numpy()) for n, p in model.named_parameters())
        for name, grad in zip(NAMES, floor.grads):
            np.testing.assert_allclose(grad, grads[name], rtol=1e-10, atol=1e-14)
        opt.step()
    params = dict(model.named_parameters())
    for name, p in floor.state_dict().items():
        np.testing.assert_allclose(p, params[name].detach().numpy(), rtol=1e-10, atol=1e-13)


def test_float32_stays_float32(setup):
    state, x, y = setup
    floor = NumpyMLP(state)
    floor.step(x.astype(np.float32), y)
    assert all(a.dtype == np.float32 for a in floor.params + floor.grads + floor.m + floor.v)
