"""layer_norm / rms_norm kernels (every version) against float64 NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

from minidl.backend.cuda.registry import versions

from kernel_test_helpers import assert_close

SHAPES = [((1, 1), "one element"), ((3, 5), "cols far below blockDim"), ((7, 37), "cols not a multiple of 32"),
          ((2, 3, 40), "leading batch axes"), ((4, 300), "cols > blockDim"), ((67, 20), "rows not a multiple of the block")]
EPS = 1e-5


def ln_ref(x, w, b, rms):
    x = x.astype(np.float64)
    mean = np.zeros(x.shape[:-1]) if rms else x.mean(-1)
    var = ((x - mean[..., None]) ** 2).mean(-1)
    rstd = 1 / np.sqrt(var + EPS)
    xhat = (x - mean[..., None]) * rstd[..., None]
    y = xhat * (1 if w is None else w) + (0 if b is None else b)
    return y, mean, rstd, xhat


def ln_grad_ref(dy, x, w, rms):
    _, mean, rstd, xhat = ln_ref(x, w, None, rms)
    g = dy * (1 if w is None else w)
    mean_g = 0 if rms else g.mean(-1, keepdims=True)
    dx = rstd[..., None] * (g - mean_g - xhat * (g * xhat).mean(-1, keepdims=True))
    axes = tuple(range(x.ndim - 1))
    return dx, (dy * xhat).sum(axes), dy.sum(axes)


def _inputs(rng, shape, dtype, with_weight):
    # An offset of 3 makes E[x^2] - mean^2 lose digits: the kernels must use the two-pass variance.
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    w = rng.standard_normal(shape[-1]).astype(dtype) if with_weight else None
    b = rng.standard_normal(shape[-1]).astype(dtype) if with_weight else None
    return x, w, b


def _maybe(dev, a):
    return None if a is None else dev.put(a)


@pytest.mark.parametrize("with_weight", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [s for s, _ in SHAPES], ids=[w for _, w in SHAPES])
@pytest.mark.parametrize("version,block", [(v, b) for v in versions("layer_norm_forward") for b in (None, 32)])
def test_forward_versions(dev, rng, version, block, shape, dtype, with_weight):
    x, w, b = _inputs(rng, shape, dtype, with_weight)
    y, mean, rstd = (dev.get(a) for a in dev.ops.layer_norm_forward(dev.put(x), _maybe(dev, w), _maybe(dev, b), EPS,
                                                                     version=version, block=block))
    y_ref, mean_ref, rstd_ref, _ = ln_ref(x, w, b, rms=False)
    assert mean.shape == rstd.shape == shape[:-1]
    assert_close(y, y_ref, dtype, scale=10)
    assert_close(mean, mean_ref, dtype, scale=10)
    assert_close(rstd, rstd_ref, dtype, scale=10)
    y, rstd = (dev.get(a) for a in dev.ops.rms_norm_forward(dev.put(x), _maybe(dev, w), EPS, version=version, block=block))
    y_ref, _, rstd_ref, _ = ln_ref(x, w, None, rms=True)
    assert_close(y, y_ref, dtype, scale=10)
    assert_close(rstd, rstd_ref, dtype, scale=10)


@pytest.mark.parametrize("with_weight", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [s for s, _ in SHAPES], ids=[w for _, w in SHAPES])
@pytest.mark.parametrize("version,block", [(v, b) for v in versions("layer_norm_backward") for b in (None, 32)])
def test_backward_versions(dev, rng, version, block, shape, dtype, with_weight):
    x, w, _ = _inputs(rng, shape, dtype, with_weight)
    dy = rng.standard_normal(shape).astype(dtype)
    rows = int(np.prod(shape[:-1]))
    scale = 10 * np.sqrt(rows)  # dweight / dbias sum over the rows
    for rms in (False, True):
        _, mean, rstd, _ = ln_ref(x, w, None, rms)
        dx_ref, dw_ref, db_ref = ln_grad_ref(dy.astype(np.float64), x, w, rms)
        if rms:
            dx, dw = dev.ops.rms_norm_backward(dev.put(dy), dev.put(x), _maybe(dev, w), dev.put(rstd.astype(dtype)),
                                               version=version, block=block)
        else:
            dx, dw, db = dev.ops.layer_norm_backward(dev.put(dy), dev.put(x), _maybe(dev, w), dev.put(mean.astype(dtype)),
                                                     dev.put(rstd.astype(dtype)), version=version, block=block)
            assert_close(dev.get(db), db_ref, dtype, scale=scale)
        assert_close(dev.get(dx), dx_ref, dtype, scale=10)
        if with_weight:
            assert_close(dev.get(dw), dw_ref, dtype, scale=scale)
        else:
            assert dw is None


def test_matches_torch_autograd(dev, rng):
    torch = pytest.importorskip("torch", reason="torch is the optional reference")
    x, w, b = _inputs(rng, (6, 50), np.float64, True)
    dy = rng.standard_normal(x.shape)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    torch.nn.functional.layer_norm(tx, (50,), tw, tb, EPS).backward(torch.tensor(dy))
    y, mean, rstd = dev.ops.layer_norm_forward(dev.put(x), dev.put(w), dev.put(b), EPS)
    np.testing.assert_allclose(dev.get(y), torch.nn.functional.layer_norm(tx, (50,), tw, tb, EPS).detach().numpy(), rtol=1e-10, atol=1e-10)
    dx, dw, db = dev.ops.layer_norm_backward(dev.put(dy), dev.put(x), dev.put(w), mean, rstd)
    for ours, theirs in ((dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(dev.get(ours), theirs.numpy(), rtol=1e-9, atol=1e-10)


def test_bad_parameters_are_rejected(dev):
    x = dev.put(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\) and dtype float32, got shape \(3,\)"):
        dev.ops.layer_norm_forward(x, dev.put(np.ones(3, np.float32)), None, EPS)
    with pytest.raises(ValueError, match="non-empty last axis"):
        dev.ops.layer_norm_forward(dev.put(np.ones((2, 0), np.float32)), None, None, EPS)
