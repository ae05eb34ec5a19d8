"""dropout and channel dropout: statistics, scaling, masks shared by forward and backward.

The random stream differs from PyTorch's, so there is no row-by-row comparison with torch;
the tests check the defining properties instead."""
import numpy as np
import pytest

import minidl
from minidl.autograd import gradcheck
from nn_harness import DTYPES, gradgradcheck

F = minidl.nn.functional


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_drop_rate_scale_and_gradient(p, dtype):
    minidl.manual_seed(0)
    x = minidl.tensor(np.random.default_rng(1).uniform(1, 2, 200_000).astype(dtype),
                      requires_grad=True)
    y = F.dropout(x, p)
    assert y.dtype == x.dtype
    out, inp = y.detach().numpy(), x.detach().numpy()
    kept = out != 0
    assert abs(1 - kept.mean() - p) < 0.01              # binomial std ~0.001
    np.testing.assert_allclose(out[kept], inp[kept] / (1 - p), rtol=1e-6)
    g = np.random.default_rng(2).standard_normal(x.shape).astype(dtype)
    y.backward(minidl.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, g / (1 - p), 0), rtol=1e-6)


def test_eval_and_p0_are_the_identity():
    x = minidl.randn(3, 4, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_p1_drops_everything():
    x = minidl.randn(5, 5, requires_grad=True)
    y = F.dropout(x, 1.0)
    y.sum().backward()
    assert not y.detach().numpy().any() and not x.grad.numpy().any()


def test_manual_seed_reproduces_the_mask():
    x = minidl.ones(1000)
    minidl.manual_seed(7)
    a = F.dropout(x, 0.5).numpy()
    minidl.manual_seed(7)
    b = F.dropout(x, 0.5).numpy()
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


@pytest.mark.parametrize("fn,shape,channel_dims", [
    (F.dropout1d, (4, 64, 5), 2), (F.dropout2d, (4, 64, 3, 3), 2),
    (F.dropout2d, (64, 3, 3), 1), (F.dropout3d, (2, 64, 2, 2, 2), 2)])
def test_channel_dropout_zeroes_whole_channels(fn, shape, channel_dims):
    """channel_dims: (N, C) for batched input, (C,) for unbatched; one draw per channel."""
    minidl.manual_seed(3)
    x = minidl.tensor(np.random.default_rng(0).uniform(1, 2, shape), requires_grad=True)
    y = fn(x, 0.5)
    ratio = y.detach().numpy() / x.detach().numpy()
    per_channel = ratio.reshape(shape[:channel_dims] + (-1,))
    assert np.all((per_channel == 0).all(-1) | np.isclose(per_channel, 2.0).all(-1))
    assert 0.2 < (per_channel[..., 0] == 0).mean() < 0.8
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), ratio)


def test_inplace_dropout_writes_into_the_tensor():
    base = minidl.ones(100, requires_grad=True)
    x = base * 1.0
    minidl.manual_seed(0)
    y = F.dropout(x, 0.5, inplace=True)
    assert y is x and (x.detach().numpy() == 0).any()
    y.sum().backward()
    np.testing.assert_allclose(base.grad.numpy(), x.detach().numpy())


def _seeded(fn):
    def run(x):
        minidl.manual_seed(123)  # the same mask at every finite-difference probe
        return fn(x)
    return run


@pytest.mark.parametrize("fn", [lambda x: F.dropout(x, 0.4),
                                lambda x: F.dropout2d(x.reshape(2, 3, 2, 1), 0.4)])
def test_gradcheck_and_gradgradcheck_with_a_fixed_mask(fn):
    x = minidl.tensor(np.random.default_rng(0).standard_normal(12), requires_grad=True)
    assert gradcheck(_seeded(fn), [x])
    assert gradgradcheck(_seeded(lambda t: fn(t) * t), [x])


@pytest.mark.parametrize("p", [-0.1, 1.5, True])
def test_bad_probability_is_rejected(p):
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        F.dropout(minidl.ones(3), p)
