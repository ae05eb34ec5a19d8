"""Fused convolution and pooling ops: reference and fast CPU versions against plain loops.

The expected values come from direct float64 loops written here (a convolution as a sum over
kernel taps, pooling window by window), and from PyTorch when it is installed.
"""
from __future__ import annotations

import numpy as np
import pytest

from minidl.backend.cpu_kernels import conv as fast_conv
from minidl.backend.cpu_kernels import pool as fast_pool
from minidl.backend.reference import conv as ref_conv
from minidl.backend.reference import pool as ref_pool

CONV = [pytest.param(ref_conv, id="reference"), pytest.param(fast_conv, id="cpu")]
POOL = [pytest.param(ref_pool, id="reference"), pytest.param(fast_pool, id="cpu")]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-11)}

# (N, C, H, W, O, kh, kw, stride, padding, dilation, groups)
CONV_CASES = [
    (2, 3, 7, 6, 4, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (2, 4, 9, 8, 6, 3, 3, (2, 2), (1, 1), (1, 1), 2),     # stride 2, padding, groups
    (1, 2, 10, 9, 3, 3, 2, (1, 2), (2, 1), (2, 1), 1),    # dilation 2, non-square everything
    (2, 6, 5, 5, 6, 3, 3, (1, 1), (1, 1), (1, 1), 6),     # depthwise
    (3, 2, 4, 5, 5, 1, 1, (1, 1), (0, 0), (1, 1), 1),     # 1x1
]


def _out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def direct_conv(x, w, b, s, p, d, g):
    """y[n, o, oh, ow] = b[o] + sum_{c in o's group, i, j} w[o, c, i, j] x[n, c, ...]."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    OH, OW = _out(H, kh, s[0], p[0], d[0]), _out(W, kw, s[1], p[1], d[1])
    y = np.zeros((N, O, OH, OW))
    for n in range(N):
        for o in range(O):
            grp = o // (O // g)
            for oh in range(OH):
                for ow in range(OW):
                    total = 0.0 if b is None else b[o]
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                h = oh * s[0] + i * d[0] - p[0]
                                ww = ow * s[1] + j * d[1] - p[1]
                                if 0 <= h < H and 0 <= ww < W:
                                    total += w[o, c, i, j] * x[n, grp * Cg + c, h, ww]
                    y[n, o, oh, ow] = total
    return y


def direct_conv_grads(x, w, dy, s, p, d, g):
    """The same sum, differentiated term by term: each product w*x sends dy to both."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    dx, dw = np.zeros(x.shape), np.zeros(w.shape)
    for n in range(N):
        for o in range(O):
            grp = o // (O // g)
            for oh in range(dy.shape[2]):
                for ow in range(dy.shape[3]):
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                h = oh * s[0] + i * d[0] - p[0]
                                ww = ow * s[1] + j * d[1] - p[1]
                                if 0 <= h < H and 0 <= ww < W:
                                    dx[n, grp * Cg + c, h, ww] += w[o, c, i, j] * dy[n, o, oh, ow]
                                    dw[o, c, i, j] += x[n, grp * Cg + c, h, ww] * dy[n, o, oh, ow]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def _conv_data(case, dtype, seed=0):
    N, C, H, W, O, kh, kw, s, p, d, g = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((O, C // g, kh, kw)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    dy = rng.standard_normal((N, O, _out(H, kh, s[0], p[0], d[0]),
                              _out(W, kw, s[1], p[1], d[1]))).astype(dtype)
    return x, w, b, dy, s, p, d, g


# ---------------------------------------------------------------------------------------
# im2col / col2im

@pytest.mark.parametrize("mod", CONV)
@pytest.mark.parametrize("case", CONV_CASES[:3])
def test_im2col_layout_and_col2im_adjoint(mod, case):
    x, w, b, dy, s, p, d, g = _conv_data(case, np.float64)
    kh, kw = w.shape[2:]
    N, C, H, W = x.shape
    OH, OW = dy.shape[2:]
    cols = mod.im2col(x, kh, kw, s, p, d)
    assert cols.shape == (C * kh * kw, N * OH * OW)
    expected = np.zeros(cols.shape)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                for n in range(N):
                    for oh in range(OH):
                        for ow in range(OW):
                            h, ww = oh * s[0] + i * d[0] - p[0], ow * s[1] + j * d[1] - p[1]
                            if 0 <= h < H and 0 <= ww < W:
                                expected[(c * kh + i) * kw + j, (n * OH + oh) * OW + ow] = x[n, c, h, ww]
    np.testing.assert_array_equal(cols, expected)
    # col2im is the adjoint: <im2col(x), r> == <x, col2im(r)> for every x, r
    r = np.random.default_rng(1).standard_normal(cols.shape)
    back = mod.col2im(r, x.shape, kh, kw, s, p, d)
    assert back.shape == x.shape
    assert np.isclose(np.sum(cols * r), np.sum(x * back), rtol=1e-12)


# ---------------------------------------------------------------------------------------
# conv2d

@pytest.mark.parametrize("mod", CONV)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_backward_match_direct_loops(mod, dtype, case):
    x, w, b, dy, s, p, d, g = _conv_data(case, dtype)
    y, saved = mod.conv2d_forward(x, w, b, s, p, d, g)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    assert y.dtype == dtype and y.flags.c_contiguous
    np.testing.assert_allclose(y, direct_conv(x64, w64, b.astype(np.float64), s, p, d, g),
                               **TOL[dtype])
    dx, dw, db = mod.conv2d_backward(dy, x, w, saved, s, p, d, g, True, True, True)
    edx, edw, edb = direct_conv_grads(x64, w64, dy64, s, p, d, g)
    for got, want in ((dx, edx), (dw, edw), (db, edb)):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("mod", CONV)
def test_conv2d_backward_paths_on_their_own(mod):
    x, w, b, dy, s, p, d, g = _conv_data(CONV_CASES[1], np.float64)
    edx, edw, edb = direct_conv_grads(x, w, dy, s, p, d, g)
    # input gradient from the shape alone (what a transposed convolution uses)
    dx, dw, db = mod.conv2d_backward(dy, x.shape, w, None, s, p, d, g, True, False, False)
    assert dw is None and db is None
    np.testing.assert_allclose(dx, edx, rtol=1e-11, atol=1e-11)
    # weight gradient without saved columns: rebuilt from x
    dx, dw, db = mod.conv2d_backward(dy, x, w, None, s, p, d, g, False, True, True)
    assert dx is None
    np.testing.assert_allclose(dw, edw, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(db, edb, rtol=1e-11, atol=1e-11)
    with pytest.raises(ValueError, match="needs the input data"):
        mod.conv2d_backward(dy, x.shape, w, None, s, p, d, g, False, True, False)


@pytest.mark.parametrize("mod", CONV)
def test_conv2d_bad_arguments_are_named(mod):
    x = np.zeros((1, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"weight must have shape \(O, 2, kh, kw\)"):
        mod.conv2d_forward(x, np.zeros((4, 3, 3, 3), np.float32), None, 1, 0, 1, 2)
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        mod.conv2d_forward(x, np.zeros((2, 4, 3, 3), np.float32), None, 1, 0, 3, 1)
    with pytest.raises(ValueError, match="4-D NCHW"):
        mod.conv2d_forward(x[0], np.zeros((2, 4, 3, 3), np.float32), None, 1, 0, 1, 1)
    with pytest.raises(TypeError, match="dtype float64 but x has float32"):
        mod.conv2d_forward(x, np.zeros((2, 4, 3, 3)), None, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="stride must be"):
        mod.conv2d_forward(x, np.zeros((2, 4, 3, 3), np.float32), None, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="bias must have shape"):
        mod.conv2d_forward(x, np.zeros((2, 4, 3, 3), np.float32), np.zeros(3, np.float32),
                           1, 0, 1, 1)


@pytest.mark.parametrize("case", CONV_CASES[:4])
def test_conv2d_matches_torch(case):
    torch = pytest.importorskip("torch", reason="PyTorch is the cross-check, not a dependency")
    x, w, b, dy, s, p, d, g = _conv_data(case, np.float32, seed=3)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, s, p, d, g)
    yt.backward(torch.tensor(dy))
    for mod in (ref_conv, fast_conv):
        y, saved = mod.conv2d_forward(x, w, b, s, p, d, g)
        grads = mod.conv2d_backward(dy, x, w, saved, s, p, d, g, True, True, True)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-4)
        for got, want in zip(grads, (xt.grad, wt.grad, bt.grad)):
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------
# pooling: plain loops with PyTorch's rules

def out_size(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    n = -(-span // s) + 1 if ceil_mode else span // s + 1
    if ceil_mode and (n - 1) * s >= size + p:
        n -= 1
    return n


def loop_max_pool(x, k, s, p, d, ceil_mode):
    N, C, H, W = x.shape
    OH, OW = out_size(H, k[0], s[0], p[0], d[0], ceil_mode), out_size(W, k[1], s[1], p[1], d[1], ceil_mode)
    y, idx = np.zeros((N, C, OH, OW)), np.zeros((N, C, OH, OW), np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best, where = None, None
                    for i in range(k[0]):
                        for j in range(k[1]):
                            h, w = oh * s[0] + i * d[0] - p[0], ow * s[1] + j * d[1] - p[1]
                            if not (0 <= h < H and 0 <= w < W):
                                continue
                            v = x[n, c, h, w]
                            if best is None or v > best or np.isnan(v):
                                best, where = v, h * W + w
                    y[n, c, oh, ow], idx[n, c, oh, ow] = best, where
    return y, idx


def loop_avg_pool(x, k, s, p, ceil_mode, include_pad):
    N, C, H, W = x.shape
    OH, OW = out_size(H, k[0], s[0], p[0], 1, ceil_mode), out_size(W, k[1], s[1], p[1], 1, ceil_mode)
    y = np.zeros((N, C, OH, OW))
    weights = []          # (oh, ow, [(h, w)], divisor): the same for every plane
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            taps = [(h, w) for h in range(max(h0, 0), min(h1, H)) for w in range(max(w0, 0), min(w1, W))]
            div = (h1 - h0) * (w1 - w0) if include_pad else len(taps)
            weights.append((oh, ow, taps, div))
            for h, w in taps:
                y[:, :, oh, ow] += x[:, :, h, w] / div
    return y, weights


POOL_CASES = [   # kernel, stride, padding, dilation, ceil_mode, shape
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (2, 3, 8, 8)),
    ((3, 3), (2, 2), (1, 1), (1, 1), True, (2, 2, 9, 8)),       # overlapping, ceil
    ((3, 2), (1, 2), (1, 0), (2, 1), False, (1, 3, 9, 7)),      # dilation, non-square
    ((2, 3), (3, 2), (1, 1), (1, 1), True, (2, 2, 10, 11)),
]


@pytest.mark.parametrize("mod", POOL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_matches_loops(mod, dtype, case):
    k, s, p, d, ceil_mode, shape = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    y, idx = mod.max_pool2d_forward(x, k, s, p, d, ceil_mode)
    ey, eidx = loop_max_pool(x.astype(np.float64), k, s, p, d, ceil_mode)
    assert y.dtype == dtype and idx.dtype in (np.int32, np.int64)  # CPU keeps int32 (memory)
    np.testing.assert_array_equal(y, ey.astype(dtype))
    np.testing.assert_array_equal(idx, eidx)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = mod.max_pool2d_backward(dy, idx, x.shape)
    edx = np.zeros(shape)
    for n, c, oh, ow in np.ndindex(*y.shape):     # scatter-add: shared winners accumulate
        edx[n, c].flat[eidx[n, c, oh, ow]] += dy[n, c, oh, ow]
    np.testing.assert_allclose(dx, edx, **TOL[dtype])


@pytest.mark.parametrize("mod", POOL)
def test_max_pool_ties_nan_and_minus_inf(mod):
    x = np.array([[[[1., 1., 0., 0.],
                    [1., 1., 0., np.nan],
                    [-np.inf, -np.inf, 5., 2.],
                    [-np.inf, -np.inf, np.nan, 7.]]]])
    y, idx = mod.max_pool2d_forward(x, 2, 2, 0, 1, False)
    np.testing.assert_array_equal(idx[0, 0], [[0, 7], [8, 14]])  # first max; -inf window; NaN wins
    assert y[0, 0, 0, 0] == 1 and y[0, 0, 1, 0] == -np.inf and np.isnan(y[0, 0, 0, 1])
    # two NaNs in a window: the last one wins (PyTorch's `val > max || isnan(val)`)
    x2 = np.array([[[[np.nan, 3.], [np.nan, 1.]]]], np.float32)
    assert mod.max_pool2d_forward(x2, 2, 2, 0, 1, False)[1][0, 0, 0, 0] == 2


@pytest.mark.parametrize("mod", POOL)
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[3] == (1, 1)])
def test_avg_pool_matches_loops(mod, include_pad, case):
    k, s, p, _, ceil_mode, shape = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    y = mod.avg_pool2d_forward(x, k, s, p, ceil_mode, include_pad)
    ey, weights = loop_avg_pool(x, k, s, p, ceil_mode, include_pad)
    np.testing.assert_allclose(y, ey, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = mod.avg_pool2d_backward(dy, shape, k, s, p, ceil_mode, include_pad)
    edx = np.zeros(shape)
    for oh, ow, taps, div in weights:
        for h, w in taps:
            edx[:, :, h, w] += dy[:, :, oh, ow] / div
    np.testing.assert_allclose(dx, edx, rtol=1e-12, atol=1e-12)
    y32 = mod.avg_pool2d_forward(x.astype(np.float32), k, s, p, ceil_mode, include_pad)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, ey, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mod", POOL)
@pytest.mark.parametrize("shape,out", [((2, 3, 7, 10), (3, 4)), ((1, 2, 5, 5), (1, 1)),
                                       ((1, 1, 4, 6), (4, 6)), ((2, 1, 3, 5), (5, 7))])
def test_adaptive_avg_pool_matches_loops(mod, shape, out):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    H, W = shape[2:]
    y = mod.adaptive_avg_pool2d_forward(x, out)
    dy = rng.standard_normal(y.shape)
    ey, edx = np.zeros(y.shape), np.zeros(shape)
    for oh in range(out[0]):
        h0, h1 = int(np.floor(oh * H / out[0])), int(np.ceil((oh + 1) * H / out[0]))
        for ow in range(out[1]):
            w0, w1 = int(np.floor(ow * W / out[1])), int(np.ceil((ow + 1) * W / out[1]))
            ey[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
            edx[:, :, h0:h1, w0:w1] += dy[:, :, oh:oh + 1, ow:ow + 1] / ((h1 - h0) * (w1 - w0))
    np.testing.assert_allclose(y, ey, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mod.adaptive_avg_pool2d_backward(dy, shape), edx,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mod", POOL)
def test_pool_bad_arguments_are_named(mod):
    x = np.zeros((1, 1, 6, 6), np.float32)
    with pytest.raises(ValueError, match="at most half the kernel"):
        mod.max_pool2d_forward(x, 2, 2, 2, 1, False)
    with pytest.raises(ValueError, match="4-D NCHW"):
        mod.avg_pool2d_forward(x[0], 2, 2, 0, False, True)
    with pytest.raises(ValueError, match="argmax must have shape"):
        mod.max_pool2d_backward(np.zeros((1, 1, 3, 3), np.float32),
                                np.zeros((1, 1, 2, 3), np.int64), x.shape)
    with pytest.raises(TypeError, match="integers"):
        mod.max_pool2d_backward(np.zeros((1, 1, 3, 3), np.float32),
                                np.zeros((1, 1, 3, 3), np.float32), x.shape)


@pytest.mark.parametrize("case", POOL_CASES)
def test_pooling_matches_torch(case):
    torch = pytest.importorskip("torch", reason="PyTorch is the cross-check, not a dependency")
    F = torch.nn.functional
    k, s, p, d, ceil_mode, shape = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = F.max_pool2d(xt, k, s, p, d, ceil_mode, return_indices=True)
    dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(dy))
    xa = torch.tensor(x, requires_grad=True)
    at = F.avg_pool2d(xa, k, s, p, ceil_mode, count_include_pad=False)
    day = rng.standard_normal(tuple(at.shape)).astype(np.float32)
    at.backward(torch.tensor(day))
    xd = torch.tensor(x, requires_grad=True)
    ad = F.adaptive_avg_pool2d(xd, (3, 2))
    dad = rng.standard_normal(tuple(ad.shape)).astype(np.float32)
    ad.backward(torch.tensor(dad))
    for mod in (ref_pool, fast_pool):
        y, idx = mod.max_pool2d_forward(x, k, s, p, d, ceil_mode)
        np.testing.assert_array_equal(y, yt.detach().numpy())
        np.testing.assert_array_equal(idx, it.numpy())
        np.testing.assert_allclose(mod.max_pool2d_backward(dy, idx, x.shape), xt.grad.numpy(),
                                   rtol=1e-6, atol=1e-6)
        if d == (1, 1):
            np.testing.assert_allclose(mod.avg_pool2d_forward(x, k, s, p, ceil_mode, False),
                                       at.detach().numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(
                mod.avg_pool2d_backward(day, x.shape, k, s, p, ceil_mode, False),
                xa.grad.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mod.adaptive_avg_pool2d_forward(x, (3, 2)),
                                   ad.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mod.adaptive_avg_pool2d_backward(dad, x.shape),
                                   xd.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_fast_conv_outputs_do_not_share_scratch_memory():
    """Outputs must survive the next call (internal buffers are reused between calls)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 1, 5, 4))
    w = rng.standard_normal((1, 1, 3, 3))
    y, saved = fast_conv.conv2d_forward(x, w, None, 1, (1, 0), 1, 1)
    dy = rng.standard_normal(y.shape)
    dx, _, _ = fast_conv.conv2d_backward(dy, x, w, saved, 1, (1, 0), 1, 1, True, False, False)
    keep_y, keep_dx = y.copy(), dx.copy()
    fast_conv.conv2d_forward(x * 2, w, None, 1, (1, 0), 1, 1)
    fast_conv.conv2d_backward(dy * 2, x, w, saved, 1, (1, 0), 1, 1, True, False, False)
    np.testing.assert_array_equal(y, keep_y)
    np.testing.assert_array_equal(dx, keep_dx)
