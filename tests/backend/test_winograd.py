"""Winograd F(m x m, 3x3) convolution: the reference against im2col, the CPU kernels against
the reference, the layout transposes against NumPy, and the dispatch from conv2d.

Every step of the CPU version is a different way of walking the same sums, so float64
results must agree to rounding (1e-12); float32 results are compared with float64 truth,
with the error bound that F(4x4) is known to carry.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl.backend.cpu_kernels import conv as fast_conv
from minidl.backend.cpu_kernels import winograd as fast_wino
from minidl.backend.reference import conv as ref_conv
from minidl.backend.reference import winograd as ref_wino


def _layer(N, C, O, H, W, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((O, C, 3, 3)) / np.sqrt(9 * C)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    return x, w, b


def _direct(x, w, b, padding, dy):
    """Forward and all three gradients by the im2col reference."""
    y, _ = ref_conv.conv2d_forward(x, w, b, 1, padding, 1, 1)
    grads = ref_conv.conv2d_backward(dy, x, w, None, 1, padding, 1, 1, True, True, True)
    return (y, *grads)


def _assert_all_close(got, want, rtol, atol):
    for name, g, w in zip(("y", "dx", "dw", "db"), got, want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=name)


layers = st.tuples(st.integers(1, 19), st.integers(1, 9), st.integers(1, 9),     # N, C, O
                   st.integers(1, 14), st.integers(1, 14),                        # H, W
                   st.integers(0, 2), st.integers(0, 2),                          # padding
                   st.sampled_from([2, 4]))                                       # tile m


def _valid(H, W, ph, pw):
    return H + 2 * ph >= 3 and W + 2 * pw >= 3


@settings(max_examples=40, deadline=None)
@given(layers)
def test_reference_matches_im2col_float64(layer):
    N, C, O, H, W, ph, pw, m = layer
    if not _valid(H, W, ph, pw):
        return
    x, w, b = _layer(N, C, O, H, W)
    want_y, _ = ref_conv.conv2d_forward(x, w, b, 1, (ph, pw), 1, 1)
    dy = np.random.default_rng(1).standard_normal(want_y.shape)
    got = (ref_wino.conv3x3_forward(x, w, b, (ph, pw), m),
           *ref_wino.conv3x3_backward(dy, x, w, (ph, pw), True, True, True, m))
    _assert_all_close(got, _direct(x, w, b, (ph, pw), dy), rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(layers)
def test_cpu_kernels_match_reference_float64(layer):
    """Batch sizes around the 8-image blocks of the transposes (1-19) and widths below and
    above 8 reach both the vector and the element-by-element paths."""
    N, C, O, H, W, ph, pw, m = layer
    if not _valid(H, W, ph, pw):
        return
    x, w, b = _layer(N, C, O, H, W)
    y = ref_wino.conv3x3_forward(x, w, b, (ph, pw), m)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    want = (y, *ref_wino.conv3x3_backward(dy, x, w, (ph, pw), True, True, True, m))
    got = (fast_wino.conv3x3_forward(x, w, b, (ph, pw), m),
           *fast_wino.conv3x3_backward(dy, x, w, (ph, pw), True, True, True, m))
    _assert_all_close(got, want, rtol=1e-12, atol=1e-12)


def test_chunks_and_partial_gradients():
    """A chunk size that splits the batch unevenly, and each gradient asked for alone
    (the input gradient from the input's shape only, as a transposed conv asks)."""
    x, w, b = _layer(21, 8, 9, 9, 10)
    y = fast_wino.conv3x3_forward(x, w, b, (1, 1))
    dy = np.random.default_rng(2).standard_normal(y.shape)
    full = fast_wino.conv3x3_backward(dy, x, w, (1, 1), True, True, True)
    old = fast_wino.CHUNK_BYTES
    try:
        fast_wino.CHUNK_BYTES = 1          # one image per chunk
        np.testing.assert_allclose(fast_wino.conv3x3_forward(x, w, b, (1, 1)), y, rtol=1e-12,
                                   atol=1e-12)
        chunked = fast_wino.conv3x3_backward(dy, x, w, (1, 1), True, True, True)
    finally:
        fast_wino.CHUNK_BYTES = old
    for g, f in zip(chunked, full):
        np.testing.assert_allclose(g, f, rtol=1e-12, atol=1e-12)
    dx, dw, db = fast_wino.conv3x3_backward(dy, x.shape, w, (1, 1), True, False, False)
    assert dw is None and db is None
    np.testing.assert_allclose(dx, full[0], rtol=1e-12, atol=1e-12)
    dx, dw, db = fast_wino.conv3x3_backward(dy, x, w, (1, 1), False, True, False)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, full[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m, bound", [(2, 2e-6), (4, 2e-5)])
def test_float32_error_on_the_mnist_layer(m, bound):
    """float32 against float64 truth on the MNIST CNN's second layer, relative to the
    largest output: F(2x2) is as accurate as the direct method (~3e-7), F(4x4) ~10x less
    (its transforms scale by up to 8 and divide by 24). A wrong coefficient anywhere would
    give errors of order 1."""
    x, w, b = _layer(16, 32, 64, 13, 13, np.float32, seed=3)
    truth = ref_conv.conv2d_forward(x.astype(np.float64), w.astype(np.float64),
                                    b.astype(np.float64), 1, 0, 1, 1)[0]
    y = fast_wino.conv3x3_forward(x, w, b, (0, 0), m)
    assert y.dtype == np.float32
    assert np.abs(y - truth).max() / np.abs(truth).max() < bound
    dy = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
    dx, dw, db = fast_wino.conv3x3_backward(dy, x, w, (0, 0), True, True, True, m)
    assert dx.dtype == dw.dtype == db.dtype == np.float32
    t = ref_conv.conv2d_backward(dy.astype(np.float64), x.astype(np.float64),
                                 w.astype(np.float64), None, 1, 0, 1, 1, True, True, True)
    for got, want in zip((dx, dw, db), t):
        assert np.abs(got - want).max() / np.abs(want).max() < bound


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, C, H, W, ph, pw", [(16, 3, 13, 13, 0, 0), (8, 2, 5, 17, 2, 1),
                                                (5, 3, 9, 9, 1, 1), (8, 2, 4, 4, 0, 0),
                                                (24, 1, 3, 8, 1, 0)])
def test_layout_transposes(dtype, n, C, H, W, ph, pw):
    """NCHW <-> padded CHWN, by 8x8 vector blocks (n % 8 == 0, W >= 8) or element by
    element: exact, the border zeroed, and -0.0 kept when no bias is added."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, C, H, W)).astype(dtype)
    x.reshape(-1)[::7] = -0.0
    xt = np.full((C, H + 2 * ph + 1, W + 2 * pw + 3, n), np.nan, dtype)
    fast_wino._to_chwn(x, ph, pw, xt)
    want = np.zeros_like(xt)
    want[:, ph:ph + H, pw:pw + W] = x.transpose(1, 2, 3, 0)
    np.testing.assert_array_equal(xt, want)
    back = np.full_like(x, np.nan)
    fast_wino._from_chwn(want, ph, pw, np.zeros(1, dtype), False, back)
    np.testing.assert_array_equal(back, x)
    assert np.array_equal(np.signbit(back), np.signbit(x))
    bias = rng.standard_normal(C).astype(dtype)
    fast_wino._from_chwn(want, ph, pw, bias, True, back)
    np.testing.assert_array_equal(back, x + bias.reshape(1, C, 1, 1))


def test_tile_size_picks_the_cheaper_tiling():
    assert fast_wino.tile_size(11, 11) == 4       # 9 tiles of 36 against 36 of 16
    assert fast_wino.tile_size(5, 5) == 2         # 4 x 36 = 144 = 9 x 16: the tie goes to F(2x2)
    assert fast_wino.tile_size(2, 2) == 2
    assert fast_wino.tile_size(28, 28) == 4


def test_tiles_setting(monkeypatch):
    """TILES limits the choice: (2,) keeps the direct method's float32 accuracy, () turns
    the Winograd path off."""
    monkeypatch.setattr(fast_wino, "TILES", (2,))
    assert fast_wino.tile_size(11, 11) == 2
    assert fast_wino.eligible((64, 32, 13, 13), (64, 32, 3, 3), (1, 1), (1, 1), 1)
    monkeypatch.setattr(fast_wino, "TILES", ())
    assert not fast_wino.eligible((64, 32, 13, 13), (64, 32, 3, 3), (1, 1), (1, 1), 1)


def test_eligible_layers():
    assert fast_wino.eligible((64, 32, 13, 13), (64, 32, 3, 3), (1, 1), (1, 1), 1)
    assert not fast_wino.eligible((64, 1, 28, 28), (32, 1, 3, 3), (1, 1), (1, 1), 1)   # C = 1
    assert not fast_wino.eligible((8, 16, 9, 9), (16, 16, 3, 3), (1, 1), (1, 1), 1)    # N = 8
    assert not fast_wino.eligible((16, 16, 9, 9), (16, 16, 3, 3), (2, 2), (1, 1), 1)   # stride
    assert not fast_wino.eligible((16, 16, 9, 9), (16, 16, 3, 3), (1, 1), (2, 2), 1)   # dilation
    assert not fast_wino.eligible((16, 16, 9, 9), (16, 8, 3, 3), (1, 1), (1, 1), 2)    # groups
    assert not fast_wino.eligible((16, 16, 9, 9), (16, 16, 5, 5), (1, 1), (1, 1), 1)   # 5x5


def test_conv2d_dispatch_uses_winograd(monkeypatch):
    """The CPU conv2d of an eligible layer returns exactly what the Winograd kernels return
    (not im2col's differently rounded sums), and the same values as the direct method."""
    x, w, b = _layer(16, 8, 8, 10, 10, np.float32, seed=5)
    y, saved = fast_conv.conv2d_forward(x, w, b, (1, 1), (1, 1), (1, 1), 1)
    assert saved is None
    np.testing.assert_array_equal(y, fast_wino.conv3x3_forward(x, w, b, (1, 1)))
    calls = []
    real = fast_wino.conv3x3_backward
    monkeypatch.setattr(fast_wino, "conv3x3_backward",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    dy = np.ones_like(y)
    fast_conv.conv2d_backward(dy, x, w, None, (1, 1), (1, 1), (1, 1), 1, True, True, True)
    assert calls == [1]
    truth = ref_conv.conv2d_forward(x.astype(np.float64), w.astype(np.float64),
                                    b.astype(np.float64), 1, 1, 1, 1)[0]
    np.testing.assert_allclose(y, truth, rtol=1e-5, atol=1e-5)


def test_conv2d_layer_against_torch():
    """nn.Conv2d forward and backward on an eligible float32 layer, against PyTorch."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((16, 16, 12, 12)).astype(np.float32)
    conv = minidl.nn.Conv2d(16, 24, 3, padding=1)
    tconv = torch.nn.Conv2d(16, 24, 3, padding=1)
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(conv.weight.detach().numpy()))
        tconv.bias.copy_(torch.from_numpy(conv.bias.detach().numpy()))
    xm = minidl.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    y, yt = conv(xm), tconv(xt)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(minidl.tensor(g))
    yt.backward(torch.from_numpy(g))
    # float32 F(4x4) carries ~1e-5 of the largest value (test_float32_error_on_the_mnist_layer),
    # so the tolerance is scaled by each array's largest entry, not elementwise
    for ours, theirs in [(y.detach(), yt.detach()), (xm.grad, xt.grad),
                         (conv.weight.grad, tconv.weight.grad), (conv.bias.grad, tconv.bias.grad)]:
        ours, theirs = ours.numpy(), theirs.numpy()
        assert np.abs(ours - theirs).max() <= 3e-5 * np.abs(theirs).max()


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_filter_transforms_match_reference(m, dtype):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((5, 7, 3, 3)).astype(dtype)
    dU = rng.standard_normal(((m + 2) ** 2, 5, 7)).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    U = fast_wino.filter_transform(w, m)
    assert U.dtype == dtype
    np.testing.assert_allclose(U, ref_wino.filter_transform(w, m), rtol=tol, atol=tol)
    dW = fast_wino.filter_transform_adjoint(dU, m)
    assert dW.dtype == dtype
    np.testing.assert_allclose(dW, ref_wino.filter_transform_adjoint(dU, m), rtol=tol, atol=tol)
    # adjointness: <U(w), dU> == <w, U^T(dU)>
    np.testing.assert_allclose(np.vdot(U, dU), np.vdot(w, dW), rtol=1e-4 if tol > 1e-6 else 1e-10)


@pytest.mark.parametrize("N", [8, 16, 17, 24])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_f4x4_lane_path_and_remainder_chunk(N, dtype):
    """F(4x4) chunks of a multiple of 8 images run the 8-lane transforms, others the
    per-run loops; 17 images make one chunk of each (16 + 1) in a single call. Both must
    give the reference's forward and gradients."""
    x, w, b = _layer(N, 9, 10, 11, 12, dtype=dtype, seed=N)
    padding = (1, 0)
    y64 = ref_wino.conv3x3_forward(x.astype(np.float64), w.astype(np.float64),
                                   b.astype(np.float64), padding, 4)
    dy = np.random.default_rng(3).standard_normal(y64.shape)
    want = (y64, *ref_wino.conv3x3_backward(dy, x.astype(np.float64), w.astype(np.float64),
                                            padding, True, True, True, 4))
    got = (fast_wino.conv3x3_forward(x, w, b, padding, 4),
           *fast_wino.conv3x3_backward(dy.astype(dtype), x, w, padding, True, True, True, 4))
    for g in got:
        assert g.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for name, g, ref in zip(("y", "dx", "dw", "db"), got, want):
        scale = np.abs(ref).max()
        assert np.abs(g - ref).max() <= tol * scale, name


def test_lane_mix_against_numpy():
    """The 8-lane intrinsic behind the F(4x4) transforms: a constant matrix (with the zero and
    +-1 entries it treats specially, a -1 first in a row, and an all-zero row) applied to
    strided runs, with and without accumulation, against a float64 NumPy product."""
    import numba

    from minidl.backend.cpu_kernels._lanes import lane_mix
    mat = np.array([[-1.0, 0.0, 2.5], [0.0, 0.0, 0.0], [1.0, -1.0, 0.0], [0.5, 1.0, -3.0]])
    mix, mix_acc = lane_mix(mat, False), lane_mix(mat, True)

    @numba.njit
    def run(src, si, ss, dst, di, ds, acc):
        for j in range(0, 16, 8):
            if acc:
                mix_acc(src, si + j, ss, dst, di + j, ds)
            else:
                mix(src, si + j, ss, dst, di + j, ds)

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        src = rng.standard_normal(100).astype(dtype)
        start = rng.standard_normal(200).astype(dtype)
        for acc in (False, True):
            dst = start.copy()
            run(src, 5, 21, dst, 7, 40, acc)
            runs = np.stack([src[5 + 21 * s: 5 + 21 * s + 16] for s in range(3)]).astype(np.float64)
            want = start.astype(np.float64)
            written = np.zeros(200, bool)
            for o in range(4):
                part = slice(7 + 40 * o, 7 + 40 * o + 16)
                want[part] = mat[o] @ runs + (want[part] if acc else 0)
                written[part] = True
            tol = 1e-12 if dtype == np.float64 else 1e-5
            np.testing.assert_allclose(dst, want, rtol=tol, atol=tol)
            assert np.array_equal(dst[~written], start[~written])   # nothing else written
