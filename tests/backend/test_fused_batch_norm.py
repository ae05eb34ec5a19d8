"""batch_norm_forward / batch_norm_backward: reference and fast CPU versions against a float64
NumPy truth written here (explicit loops over channels), against central finite differences,
and against each other.
"""
from __future__ import annotations

import numpy as np
import pytest

import minidl.backend.cpu_kernels as fast
import minidl.backend.reference as reference

IMPLS = {"reference": reference, "fast": fast}
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
SHAPES = [(5, 3), (2, 1), (4, 3, 7), (3, 2, 4, 5), (2, 3, 2, 2, 3), (16, 4, 9, 9)]


@pytest.fixture(params=sorted(IMPLS))
def impl(request):
    return IMPLS[request.param]


def rand(shape, dtype, seed=0, scale=1.0, shift=0.0):
    rng = np.random.default_rng(seed)
    return np.asarray(rng.standard_normal(shape) * scale + shift, dtype=dtype)


def truth_batch_norm(x, w, b, eps):
    """float64, one channel at a time: the channel's values over batch and positions."""
    x = np.asarray(x, dtype=np.float64)
    y = np.empty_like(x)
    for c in range(x.shape[1]):
        values = x[:, c]
        mean = values.sum() / values.size
        var = ((values - mean) ** 2).sum() / values.size
        y[:, c] = (values - mean) / np.sqrt(var + eps)
        if w is not None:
            y[:, c] *= float(w[c])
        if b is not None:
            y[:, c] += float(b[c])
    return y


def finite_difference_vjp(f, x, dy, h=1e-6):
    x = x.astype(np.float64).copy()
    grad = np.zeros_like(x)
    for j in np.ndindex(x.shape):
        saved = x[j]
        x[j] = saved + h
        up = np.sum(f(x) * dy)
        x[j] = saved - h
        down = np.sum(f(x) * dy)
        x[j] = saved
        grad[j] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_forward_matches_truth(impl, dtype, shape, affine):
    C = shape[1]
    x = rand(shape, dtype, shift=3.0)
    w = rand(C, dtype, seed=1) if affine else None
    b = rand(C, dtype, seed=2) if affine else None
    y, mean, rstd = impl.batch_norm_forward(x, w, b, 1e-5)
    assert y.dtype == mean.dtype == rstd.dtype == dtype
    assert y.shape == shape and mean.shape == rstd.shape == (C,)
    np.testing.assert_allclose(y, truth_batch_norm(x, w, b, 1e-5), **TOL[dtype])
    x64 = np.moveaxis(x.astype(np.float64), 1, 0).reshape(C, -1)
    np.testing.assert_allclose(mean, x64.mean(1), **TOL[dtype])
    np.testing.assert_allclose(rstd, 1 / np.sqrt(x64.var(1) + 1e-5), rtol=TOL[dtype]["rtol"] * 10)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 5), (3, 2, 2, 3)], ids=str)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_backward_matches_finite_differences(impl, shape, affine):
    C = shape[1]
    x = rand(shape, np.float64)
    w = rand(C, np.float64, seed=1) if affine else None
    b = rand(C, np.float64, seed=2) if affine else None
    dy = rand(shape, np.float64, seed=3)
    _, mean, rstd = impl.batch_norm_forward(x, w, b, 1e-5)
    dx, dw, db = impl.batch_norm_backward(dy, x, w, mean, rstd)
    fd = dict(rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, finite_difference_vjp(
        lambda v: truth_batch_norm(v, w, b, 1e-5), x, dy), **fd)
    np.testing.assert_allclose(db, dy.sum(axis=(0,) + tuple(range(2, dy.ndim))), **fd)
    if affine:
        np.testing.assert_allclose(dw, finite_difference_vjp(
            lambda v: truth_batch_norm(x, v, b, 1e-5), w, dy), **fd)
    else:
        assert dw is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fast_matches_reference(dtype, shape):
    C = shape[1]
    x, w, b = rand(shape, dtype), rand(C, dtype, seed=1), rand(C, dtype, seed=2)
    dy = rand(shape, dtype, seed=3)
    outs = [impl.batch_norm_forward(x, w, b, 1e-5) for impl in (fast, reference)]
    for a, r in zip(*outs):
        np.testing.assert_allclose(a, r, **TOL[dtype])
    grads = [impl.batch_norm_backward(dy, x, w, *outs[1][1:]) for impl in (fast, reference)]
    scale = np.sqrt(np.prod(shape) / C)  # parameter grads sum that many terms
    for a, r in zip(*grads):
        np.testing.assert_allclose(a, r, rtol=TOL[dtype]["rtol"] * 10,
                                   atol=TOL[dtype]["atol"] * scale)


def test_large_offset_keeps_its_digits(impl):
    """x = 1000 + noise: a one-pass variance would lose the noise in float32."""
    x = rand((8, 2, 50), np.float32, scale=0.1, shift=1000.0)
    y, _, _ = impl.batch_norm_forward(x, None, None, 1e-5)
    np.testing.assert_allclose(y, truth_batch_norm(x, None, None, 1e-5), atol=5e-3)


@pytest.mark.parametrize("args, error, message", [
    ((np.ones(3, np.float32), None, None, 1e-5), ValueError, "shape (N, C, *)"),
    ((np.ones((1, 3), np.float32), None, None, 1e-5), ValueError, "more than 1 value per channel"),
    ((np.ones((4, 3), np.float32), np.ones(2, np.float32), None, 1e-5), ValueError,
     "weight must have shape (3,)"),
    ((np.ones((4, 3), np.int64), None, None, 1e-5), TypeError, "float32 or float64"),
    ((np.ones((4, 3), np.float32), np.ones(3, np.float64), None, 1e-5), TypeError,
     "cast them to one dtype"),
])
def test_bad_arguments_are_named(impl, args, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("*", r"\*")):
        impl.batch_norm_forward(*args)


def test_backward_checks_statistics_shape(impl):
    x = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"mean must have shape \(3,\)"):
        impl.batch_norm_backward(x, x, None, np.zeros(2, np.float32), np.ones(3, np.float32))
