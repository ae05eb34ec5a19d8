"""Row-wise and elementwise fused ops: reference and fast CPU versions against plain float64
NumPy written here, against central finite differences (backward), and against PyTorch.

Every test runs on both implementations (`impl` fixture) in float32 and float64. The float64
"truth" functions below are written independently of minidl: they use explicit Jacobians,
Python loops or finite differences rather than the formulas in the code under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minidl.backend.cpu_kernels as fast
import minidl.backend.reference as reference

IMPLS = {"reference": reference, "fast": fast}
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
ROW_SHAPES = [(4, 1), (3, 7), (2, 3, 33), (5, 129)]
ELEMENTWISE_SHAPES = [(), (1,), (7,), (3, 5, 33), (2, 0)]


@pytest.fixture(params=sorted(IMPLS))
def impl(request):
    return IMPLS[request.param]


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


def rand(shape, dtype, seed=0, scale=1.0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, dtype=dtype)


def close(actual, expected, dtype, scale=1.0):
    """Check dtype and shape, then values against float64 truth with the dtype's tolerance."""
    assert actual.dtype == dtype, f"result dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == np.shape(expected)
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


def fd_close(actual, expected, dtype, scale=1.0):
    """Like close, against central differences, whose own error (~1e-9) bounds float64."""
    if dtype is np.float64:
        assert actual.dtype == dtype
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-8 * scale)
    else:
        close(actual, expected, dtype, scale)


def f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def finite_difference_vjp(f, x, dy, h=1e-6):
    """sum_k dy_k * d f_k / d x_j, by central differences of a float64 function."""
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


# ---- float64 truth, written plainly ------------------------------------------------------

def truth_softmax(x):
    x = f64(x)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def truth_softmax_vjp(x, dy):
    s = truth_softmax(x)
    jac = s[..., :, None] * (np.eye(s.shape[-1]) - s[..., None, :])   # ds_j/dx_k
    return np.einsum("...j,...jk->...k", f64(dy), jac)


def truth_log_softmax_vjp(x, dy):
    s = truth_softmax(x)
    jac = np.eye(s.shape[-1]) - s[..., None, :]                        # dlog s_j / dx_k
    return np.einsum("...j,...jk->...k", f64(dy), jac)


def truth_layer_norm(x, w, b, eps):
    x = f64(x)
    y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    return y * (1.0 if w is None else f64(w)) + (0.0 if b is None else f64(b))


def truth_rms_norm(x, w, eps):
    x = f64(x)
    y = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + eps)
    return y * (1.0 if w is None else f64(w))


def truth_gelu(x, approximate):
    x = f64(x)
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    phi = np.vectorize(lambda v: 0.5 * math.erfc(-v / math.sqrt(2)), otypes=[float])
    return x * phi(x)


def truth_silu(x):
    x = f64(x)
    return x / (1 + np.exp(-x))


def truth_cross_entropy(logits, target, weight, ignore_index, smoothing):
    logits = f64(logits)
    N, C = logits.shape
    w = np.ones(C) if weight is None else f64(weight)
    loss = np.zeros(N)
    for i in range(N):
        if target[i] == ignore_index:
            continue
        log_p = logits[i] - (logits[i].max() + np.log(np.exp(logits[i] - logits[i].max()).sum()))
        q = np.full(C, smoothing / C)          # smoothed target distribution
        q[target[i]] += 1 - smoothing
        loss[i] = -np.sum(q * w * log_p)
    return loss


# ---- softmax family --------------------------------------------------------------------

@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_softmax_forward_backward(impl, dtype, shape):
    x, dy = rand(shape, dtype, 1, scale=3.0), rand(shape, dtype, 2)
    x_before = x.copy()
    y = impl.softmax_forward(x)
    close(y, truth_softmax(x), dtype)
    close(impl.softmax_backward(y, dy), truth_softmax_vjp(x, dy), dtype)
    np.testing.assert_array_equal(x, x_before)  # inputs untouched


@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_log_softmax_forward_backward(impl, dtype, shape):
    x, dy = rand(shape, dtype, 3, scale=3.0), rand(shape, dtype, 4)
    y = impl.log_softmax_forward(x)
    close(y, np.log(truth_softmax(x)), dtype, scale=10)
    close(impl.log_softmax_backward(y, dy), truth_log_softmax_vjp(x, dy), dtype)


def test_softmax_extremes_and_nan(impl, dtype):
    x = np.array([[1e4, -1e4, 0.0, 1e4],          # huge spread: no overflow
                  [-np.inf, 0.0, 1.0, -np.inf],    # -inf entries get probability 0
                  [1.0, np.nan, 2.0, 3.0]], dtype=dtype)  # NaN poisons its row only
    y = impl.softmax_forward(x)
    np.testing.assert_allclose(y[0], [0.5, 0.0, 0.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(y[1], [0.0, *truth_softmax(np.array([0.0, 1.0])), 0.0],
                               rtol=1e-6)
    assert np.isnan(y[2]).all()
    ly = impl.log_softmax_forward(x[:1])
    np.testing.assert_allclose(ly[0], [-math.log(2), -2e4 - math.log(2), -1e4 - math.log(2),
                                       -math.log(2)], rtol=1e-6)


def test_softmax_accepts_non_contiguous(impl):
    x = rand((9, 6), np.float32, 5).T    # a transposed view
    close(impl.softmax_forward(x), truth_softmax(x), np.float32)


# ---- normalisation ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("affine", ["weight+bias", "weight", "bias", "none"])
def test_layer_norm_forward(impl, dtype, shape, affine):
    C = shape[-1]
    x = rand(shape, dtype, 6, scale=2.0) + dtype(0.5)
    w = rand((C,), dtype, 7) if "weight" in affine else None
    b = rand((C,), dtype, 8) if "bias" in affine else None
    y, mean, rstd = impl.layer_norm_forward(x, w, b, 1e-5)
    close(y, truth_layer_norm(x, w, b, 1e-5), dtype, scale=10)
    close(mean, f64(x).mean(-1), dtype)
    close(rstd, 1 / np.sqrt(f64(x).var(-1) + 1e-5), dtype, scale=1e3)


@pytest.mark.parametrize("shape", [(3, 1), (2, 5), (2, 2, 7)])
@pytest.mark.parametrize("with_weight", [True, False])
def test_layer_norm_backward_matches_finite_differences(impl, dtype, shape, with_weight):
    C = shape[-1]
    x, dy = rand(shape, dtype, 9), rand(shape, dtype, 10)
    w = rand((C,), dtype, 11) if with_weight else None
    b = rand((C,), dtype, 12)
    _, mean, rstd = impl.layer_norm_forward(x, w, b, 1e-5)
    dx, dw, db = impl.layer_norm_backward(dy, x, w, mean, rstd)
    scale = 1e3 if C == 1 else 10   # C = 1: y = bias, dx is 0 up to rounding of rstd ~ 316
    fd_close(dx, finite_difference_vjp(lambda v: truth_layer_norm(v, w, b, 1e-5), x, f64(dy)),
          dtype, scale)
    close(db, f64(dy).reshape(-1, C).sum(0), dtype, scale=10)
    if with_weight:
        fd_close(dw, finite_difference_vjp(lambda v: truth_layer_norm(x, v, b, 1e-5), w, f64(dy)),
              dtype, scale=10)
    else:
        assert dw is None


def test_layer_norm_large_offset(impl):
    """Rows with mean 1000 and spread 1: the two-pass variance is good to float32 rounding of
    x - mean (~1e-4); the one-pass E[x^2] - E[x]^2 would be off by ~6% (spacing of 1e6)."""
    x = rand((200, 64), np.float32, 13) + np.float32(1000.0)
    y, _, rstd = impl.layer_norm_forward(x, None, None, 1e-5)
    np.testing.assert_allclose(y, truth_layer_norm(x, None, None, 1e-5), atol=5e-4)
    np.testing.assert_allclose(rstd, 1 / np.sqrt(f64(x).var(-1) + 1e-5), rtol=5e-4)


def test_layer_norm_parameter_grads_over_many_rows(impl):
    """dweight/dbias add 20000 rows in float32 and stay within a few rounding steps."""
    x, dy = rand((20000, 3), np.float32, 13), rand((20000, 3), np.float32, 14)
    w = np.ones(3, np.float32)
    _, mean, rstd = impl.layer_norm_forward(x, w, None, 1e-5)
    _, dw, db = impl.layer_norm_backward(dy, x, w, mean, rstd)
    xhat = truth_layer_norm(x, None, None, 1e-5)
    np.testing.assert_allclose(dw, (f64(dy) * xhat).sum(0), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(db, f64(dy).sum(0), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("shape", [(6, 32), (3, 2, 48), (5, 33)])
def test_norm_backward_streaming_stores(dtype, shape, monkeypatch):
    """Large dx is written with streaming stores (fast kernels): force that path on small
    arrays and check it against the normal path (bit for bit) and the reference. (5, 33):
    rows that are not whole 64-byte lines must fall back to normal stores."""
    from minidl.backend.cpu_kernels import norm as fast_norm
    C = shape[-1]
    x, dy = rand(shape, dtype, 60), rand(shape, dtype, 61)
    w, b = rand((C,), dtype, 62), rand((C,), dtype, 63)
    _, mean, rstd = fast.layer_norm_forward(x, w, b, 1e-5)
    _, rms_rstd = fast.rms_norm_forward(x, w, 1e-6)
    normal = (fast.layer_norm_backward(dy, x, w, mean, rstd),
              fast.rms_norm_backward(dy, x, w, rms_rstd))
    monkeypatch.setattr(fast_norm, "STREAM_MIN_BYTES", 0)
    streamed = (fast.layer_norm_backward(dy, x, w, mean, rstd),
                fast.rms_norm_backward(dy, x, w, rms_rstd))
    if (C * np.dtype(dtype).itemsize) % 64 == 0:     # the streaming path was taken
        assert streamed[0][0].ctypes.data % 64 == 0
    for got, want in zip(streamed, normal):
        for a, e in zip(got, want):
            np.testing.assert_array_equal(a, e)
    for a, e in zip(streamed[0], reference.layer_norm_backward(dy, x, w, mean, rstd)):
        close(a, e, dtype, scale=10)
    for a, e in zip(streamed[1], reference.rms_norm_backward(dy, x, w, rms_rstd)):
        close(a, e, dtype, scale=10)


def test_stream_row_and_aligned_empty():
    from numba import njit

    from minidl.backend.cpu_kernels._fastmath import (aligned_empty, can_stream_rows,
                                                       stream_fence, stream_row)

    @njit
    def copy_rows(dst, src):
        buf = np.empty(dst.shape[1], dst.dtype)
        for i in range(dst.shape[0]):
            for j in range(dst.shape[1]):
                buf[j] = src[i, j]
            stream_row(dst, i, buf)
        stream_fence()

    for dtype, C in ((np.float32, 16), (np.float32, 80), (np.float64, 8), (np.float64, 24)):
        dst = aligned_empty((7, C), dtype)
        assert dst.dtype == dtype and dst.flags.c_contiguous and can_stream_rows(dst)
        src = rand((7, C), dtype, 64)
        copy_rows(dst, src)
        np.testing.assert_array_equal(dst, src)
    assert not can_stream_rows(aligned_empty((3, 5), np.float32))     # 20-byte rows
    assert not can_stream_rows(np.empty((4, 16), np.float32)[:, :8])   # not contiguous


@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_rms_norm_forward(impl, dtype, shape):
    x, w = rand(shape, dtype, 15), rand(shape[-1:], dtype, 16)
    for weight in (w, None):
        y, rstd = impl.rms_norm_forward(x, weight, 1e-6)
        close(y, truth_rms_norm(x, weight, 1e-6), dtype, scale=10)
        close(rstd, 1 / np.sqrt((f64(x) ** 2).mean(-1) + 1e-6), dtype, scale=10)


@pytest.mark.parametrize("shape", [(3, 1), (2, 5), (2, 2, 7)])
def test_rms_norm_backward_matches_finite_differences(impl, dtype, shape):
    x, dy, w = rand(shape, dtype, 17), rand(shape, dtype, 18), rand(shape[-1:], dtype, 19)
    for weight in (w, None):
        _, rstd = impl.rms_norm_forward(x, weight, 1e-6)
        dx, dw = impl.rms_norm_backward(dy, x, weight, rstd)
        fd_close(dx, finite_difference_vjp(lambda v: truth_rms_norm(v, weight, 1e-6), x, f64(dy)),
              dtype, scale=10)
        if weight is None:
            assert dw is None
        else:
            fd_close(dw, finite_difference_vjp(lambda v: truth_rms_norm(x, v, 1e-6), w, f64(dy)),
                  dtype, scale=10)


# ---- activations ------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(impl, dtype, shape, approximate):
    x, dy = rand(shape, dtype, 20, scale=3.0), rand(shape, dtype, 21)
    close(impl.gelu_forward(x, approximate), truth_gelu(x, approximate), dtype, scale=5)
    dx = impl.gelu_backward(x, dy, approximate)
    fd_close(dx, finite_difference_vjp(lambda v: truth_gelu(v, approximate), x, f64(dy)),
          dtype, scale=5)


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_silu(impl, dtype, shape):
    x, dy = rand(shape, dtype, 22, scale=3.0), rand(shape, dtype, 23)
    close(impl.silu_forward(x), truth_silu(x), dtype, scale=5)
    fd_close(impl.silu_backward(x, dy), finite_difference_vjp(truth_silu, x, f64(dy)), dtype,
             scale=5)


def test_activations_at_extremes(impl, dtype):
    """Far tails: no overflow, the right limits, and relative accuracy where values are tiny."""
    x = np.array([-200.0, -30.0, -8.0, -3.0, 0.0, 3.0, 30.0, 200.0], dtype)
    for approximate in ("none", "tanh"):
        y = impl.gelu_forward(x, approximate)
        assert y[0] == 0.0 and y[-1] == 200.0
        close(y, truth_gelu(x, approximate), dtype)
        dx = impl.gelu_backward(x, np.ones(8, dtype), approximate)
        assert np.all(np.isfinite(dx)) and dx[0] == 0.0 and dx[-1] == 1.0
    # GELU(-8) = -8 * Phi(-8) ~ -5e-15: kept to float32 relative precision by erfc
    np.testing.assert_allclose(impl.gelu_forward(x[2:3], "none"),
                               truth_gelu(x[2:3], "none"), rtol=2e-6)
    close(impl.silu_forward(x), truth_silu(x), dtype)
    assert np.isnan(impl.gelu_forward(np.array([np.nan], dtype), "tanh")).all()
    assert np.isnan(impl.silu_forward(np.array([np.nan], dtype))).all()


def test_reference_erfc_fallback_is_exact():
    from minidl.backend.reference.activation import erfc_elementwise
    x = np.array([[-3.0, -0.5], [0.0, 9.0]], np.float32)
    out = erfc_elementwise(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out, np.float32([[math.erfc(-3.0), math.erfc(-0.5)],
                                                   [1.0, math.erfc(9.0)]]))


# ---- dropout ----------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.0, 0.3, 0.9, 1.0])
def test_dropout_mask_statistics_and_backward(impl, dtype, p):
    x, dy = rand((200, 500), dtype, 24), rand((200, 500), dtype, 25)
    y, mask = impl.dropout_forward(x, p, np.random.default_rng(26))
    assert y.dtype == dtype and mask.shape == x.shape
    keep = np.asarray(mask, dtype=bool)
    # kept fraction within 5 standard deviations of 1 - p (exact at p = 0 and p = 1)
    sigma = math.sqrt(p * (1 - p) / x.size)
    assert abs(keep.mean() - (1 - p)) <= 5 * sigma
    expected = np.where(keep, f64(x) / (1 - p), 0.0) if p < 1 else np.zeros(x.shape)
    close(y, expected, dtype)
    close(impl.dropout_backward(dy, mask, p),
          np.where(keep, f64(dy) / (1 - p), 0.0) if p < 1 else np.zeros(x.shape), dtype)


def test_dropout_masks_are_seeded_and_fresh(dtype):
    x = rand((64, 33), dtype, 27)
    y_ref, m_ref = reference.dropout_forward(x, 0.5, np.random.default_rng(5))
    y_fast, m_fast = fast.dropout_forward(x, 0.5, np.random.default_rng(5))
    np.testing.assert_array_equal(m_ref, m_fast)       # same draws, same mask
    np.testing.assert_array_equal(y_ref, y_fast)
    rng = np.random.default_rng(6)
    _, first = fast.dropout_forward(x, 0.5, rng)
    _, second = fast.dropout_forward(x, 0.5, rng)
    assert (first != second).mean() > 0.3                # a new mask on every call
    # elements are dropped independently: neighbours agree about half the time
    assert 0.4 < (first[:, 1:] == first[:, :-1]).mean() < 0.6


# ---- cross-entropy ----------------------------------------------------------------------

CE_CASES = [  # (weight?, ignore_index, label_smoothing)
    (False, -100, 0.0), (True, -100, 0.0), (False, 2, 0.0), (True, -100, 0.2),
    (True, 0, 0.1), (False, -100, 1.0)]


@pytest.mark.parametrize("C", [1, 5, 65])
@pytest.mark.parametrize("with_weight,ignore_index,smoothing", CE_CASES)
def test_cross_entropy(impl, dtype, C, with_weight, ignore_index, smoothing):
    N = 9
    logits = rand((N, C), dtype, 28, scale=3.0)
    target = np.random.default_rng(29).integers(0, C, N)
    target[::4] = ignore_index if ignore_index < 0 else target[::4]
    weight = (np.random.default_rng(30).random(C) + 0.5).astype(dtype) if with_weight else None
    dloss = rand((N,), dtype, 31)
    loss, stats = impl.cross_entropy_forward(logits, target, weight, ignore_index, smoothing)
    close(loss, truth_cross_entropy(logits, target, weight, ignore_index, smoothing), dtype, 10)
    lg = f64(logits)
    row_max = lg.max(1)
    log_d = np.log(np.exp(lg - row_max[:, None]).sum(1))
    close(stats, np.stack([row_max, log_d], axis=1), dtype, 10)
    dlogits = impl.cross_entropy_backward(logits, target, stats, dloss, weight, ignore_index,
                                          smoothing)
    fd = finite_difference_vjp(
        lambda z: truth_cross_entropy(z, target, weight, ignore_index, smoothing), logits,
        f64(dloss))
    fd_close(dlogits, fd, dtype, scale=10)
    ignored = target == ignore_index
    assert np.all(loss[ignored] == 0) and np.all(dlogits[ignored] == 0)


def test_cross_entropy_extreme_logits_stay_finite(impl):
    rng = np.random.default_rng(32)
    logits = (rng.choice([-1e4, 1e4], size=(8, 7)) + rng.standard_normal((8, 7))).astype(
        np.float32)
    target = rng.integers(0, 7, 8)
    weight = np.linspace(0.5, 2.0, 7).astype(np.float32)
    loss, stats = impl.cross_entropy_forward(logits, target, weight, -100, 0.1)
    dlogits = impl.cross_entropy_backward(logits, target, stats, np.ones(8, np.float32), weight,
                                          -100, 0.1)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(stats))
    assert np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(loss, truth_cross_entropy(logits, target, weight, -100, 0.1),
                               rtol=1e-5)


def test_cross_entropy_target_gradient_when_the_target_dominates(impl):
    """A confident classifier (p_y ~ 0.999, logits ~20) in float32: p_y - 1 ~ -1e-3 keeps its
    digits because the backward forms exp((z - m) - log_d), not exp(z - lse) with lse rounded
    to float32 (whose ulp, 2e-6, would be a relative error of 1.2e-3 .. 1.7e-3 here; the new
    form stays below ~4.6e-4, set by the float32 rounding of p_y near 1)."""
    rows = np.arange(256)
    for seed in range(3):
        rng = np.random.default_rng(60 + seed)
        target = rng.integers(0, 10, 256)
        logits = 11.0 + rng.uniform(-0.5, 0.5, (256, 10))
        logits[rows, target] = 20.0 + rng.uniform(-0.5, 0.5, 256)
        logits = logits.astype(np.float32)
        _, stats = impl.cross_entropy_forward(logits, target, None, -100, 0.0)
        dlogits = impl.cross_entropy_backward(logits, target, stats, np.ones(256, np.float32),
                                              None, -100, 0.0)
        p_y = truth_softmax(logits)[rows, target]
        np.testing.assert_allclose(dlogits[rows, target], p_y - 1.0, rtol=8e-4, atol=0)
        # and the single-rounded-lse formula this replaces fails the same check
        lg = f64(logits)
        lse = (lg.max(1) + np.log(np.exp(lg - lg.max(1)[:, None]).sum(1))).astype(np.float32)
        old = np.exp(logits - lse[:, None])[rows, target] - np.float32(1)
        assert np.max(np.abs(old - (p_y - 1.0)) / np.abs(p_y - 1.0)) > 8e-4


# ---- embedding --------------------------------------------------------------------------

def truth_embedding_backward(indices, dy, num_embeddings, padding_idx):
    D = dy.shape[-1]
    out = np.zeros((num_embeddings, D))
    for n, row in enumerate(np.asarray(indices).reshape(-1)):
        out[row] += f64(dy).reshape(-1, D)[n]
    if padding_idx is not None:
        out[padding_idx] = 0.0
    return out


@pytest.mark.parametrize("index_shape,D,padding_idx", [
    ((6,), 1, None), ((4, 5), 3, 0), ((2, 3, 4), 8, -1), ((0,), 4, None)])
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
def test_embedding_backward(impl, dtype, index_shape, D, padding_idx, index_dtype):
    E = 5
    indices = np.random.default_rng(33).integers(0, E, index_shape).astype(index_dtype)
    if indices.size:
        indices.reshape(-1)[:3] = 2               # repeated indices must accumulate
    dy = rand(index_shape + (D,), dtype, 34)
    dweight = impl.embedding_backward(indices, dy, E, padding_idx)
    normalised = None if padding_idx is None else padding_idx % E
    close(dweight, truth_embedding_backward(indices, dy, E, normalised), dtype)
    # deterministic: the same call gives the same bits
    np.testing.assert_array_equal(dweight, impl.embedding_backward(indices, dy, E, padding_idx))


# ---- bad input --------------------------------------------------------------------------

X = np.zeros((2, 3), np.float32)
BAD_CALLS = [
    ("softmax_forward", (np.zeros((2, 3), np.int64),), TypeError, "float32 or float64.*int64"),
    ("softmax_forward", (np.zeros((2, 0), np.float32),), ValueError, r"C >= 1.*\(2, 0\)"),
    ("softmax_backward", (X, np.zeros((2, 4), np.float32)), ValueError, r"dy.*\(2, 3\).*\(2, 4\)"),
    ("log_softmax_backward", (X, X.astype(np.float64)), TypeError, "float64.*float32"),
    ("layer_norm_forward", (X, np.ones(4, np.float32), None, 1e-5), ValueError,
     r"weight.*\(3,\).*\(4,\)"),
    ("layer_norm_backward", (X, X, None, np.zeros(3, np.float32), np.zeros(2, np.float32)),
     ValueError, r"mean.*\(2,\).*\(3,\)"),
    ("rms_norm_forward", (X, np.ones(3, np.float64), 1e-5), TypeError, "weight.*float64"),
    ("gelu_forward", (X, "erf"), ValueError, "'none'.*'tanh'.*'erf'"),
    ("gelu_backward", (X, np.zeros(3, np.float32), "tanh"), ValueError, r"dy.*\(2, 3\)"),
    ("silu_forward", ([1.0, 2.0],), TypeError, "must be an array.*list"),
    ("dropout_forward", (X, 1.5, np.random.default_rng(0)), ValueError, r"p.*\[0, 1\].*1\.5"),
    ("dropout_backward", (X, np.ones((3, 2), bool), 0.5), ValueError, r"mask.*\(2, 3\)"),
    ("cross_entropy_forward", (X, np.array([0, 3]), None, -100, 0.0), IndexError,
     r"target\[1\] = 3.*3 columns"),
    ("cross_entropy_forward", (X, np.array([0.0, 1.0]), None, -100, 0.0), TypeError,
     "target.*integers.*float64"),
    ("cross_entropy_forward", (X, np.array([0, 1, 2]), None, -100, 0.0), ValueError,
     r"target.*\(2,\).*\(3,\)"),
    ("cross_entropy_forward", (X, np.array([0, 1]), np.ones(2, np.float32), -100, 0.0),
     ValueError, r"weight.*\(3,\)"),
    ("cross_entropy_forward", (X, np.array([0, 1]), None, -100, -0.1), ValueError,
     "label_smoothing"),
    ("cross_entropy_forward", (np.zeros(3, np.float32), np.array([0]), None, -100, 0.0),
     ValueError, r"\(N, C\).*\(3,\)"),
    ("cross_entropy_backward", (X, np.array([0, 1]), np.zeros(2, np.float32),
                                np.ones(2, np.float32), None, -100, 0.0),
     ValueError, r"row_stats must have shape \(2, 2\).*got \(2,\)"),
    ("embedding_backward", (np.array([0, 7]), np.zeros((2, 4), np.float32), 5, None),
     IndexError, "index 7.*5 rows"),
    ("embedding_backward", (np.array([0, 1]), np.zeros((3, 4), np.float32), 5, None),
     ValueError, r"dy.*\(2, 4\).*\(3, 4\)"),
    ("embedding_backward", (np.array([0, 1]), np.zeros((2, 4), np.float32), 5, 5),
     ValueError, r"padding_idx.*\[-5, 4\].*5"),
    ("embedding_backward", (np.array([0.0]), np.zeros((1, 4), np.float32), 5, None),
     TypeError, "indices.*integers"),
]


@pytest.mark.parametrize("name,args,error,message", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_is_named(impl, name, args, error, message):
    with pytest.raises(error, match=message):
        getattr(impl, name)(*args)


# ---- PyTorch ----------------------------------------------------------------------------

def test_against_torch(impl, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is the optional cross-check")
    F = torch.nn.functional

    def run(fn, *arrays, grad_of=0, dy=None):
        ts = [torch.from_numpy(np.array(a)) for a in arrays]
        ts[grad_of].requires_grad_(True)
        out = fn(*ts)
        out.backward(torch.from_numpy(dy))
        return out.detach().numpy(), ts[grad_of].grad.numpy()

    x, dy = rand((3, 4, 17), dtype, 40, scale=2.0), rand((3, 4, 17), dtype, 41)
    y_t, dx_t = run(lambda t: F.softmax(t, -1), x, dy=dy)
    y = impl.softmax_forward(x)
    close(y, y_t, dtype)
    close(impl.softmax_backward(y, dy), dx_t, dtype)
    y_t, dx_t = run(lambda t: F.log_softmax(t, -1), x, dy=dy)
    y = impl.log_softmax_forward(x)
    close(y, y_t, dtype, scale=10)
    close(impl.log_softmax_backward(y, dy), dx_t, dtype, scale=10)

    w, b = rand((17,), dtype, 42), rand((17,), dtype, 43)
    y_t, dx_t = run(lambda t, w_, b_: F.layer_norm(t, (17,), w_, b_), x, w, b, dy=dy)
    _, dw_t = run(lambda t, w_, b_: F.layer_norm(t, (17,), w_, b_), x, w, b, grad_of=1, dy=dy)
    y, mean, rstd = impl.layer_norm_forward(x, w, b, 1e-5)
    dx, dw, db = impl.layer_norm_backward(dy, x, w, mean, rstd)
    close(y, y_t, dtype, scale=10)
    close(dx, dx_t, dtype, scale=10)
    close(dw, dw_t, dtype, scale=10)
    y_t, dx_t = run(lambda t, w_: F.rms_norm(t, (17,), w_, 1e-6), x, w, dy=dy)
    y, rstd = impl.rms_norm_forward(x, w, 1e-6)
    close(y, y_t, dtype, scale=10)
    close(impl.rms_norm_backward(dy, x, w, rstd)[0], dx_t, dtype, scale=10)

    for approximate in ("none", "tanh"):
        y_t, dx_t = run(lambda t: F.gelu(t, approximate=approximate), x, dy=dy)
        close(impl.gelu_forward(x, approximate), y_t, dtype, scale=5)
        close(impl.gelu_backward(x, dy, approximate), dx_t, dtype, scale=5)
    y_t, dx_t = run(F.silu, x, dy=dy)
    close(impl.silu_forward(x), y_t, dtype, scale=5)
    close(impl.silu_backward(x, dy), dx_t, dtype, scale=5)

    logits = rand((12, 6), dtype, 44, scale=3.0)
    target = np.random.default_rng(45).integers(0, 6, 12)
    target[[1, 7]] = -100
    weight, dloss = (np.arange(6) + 1.0).astype(dtype), rand((12,), dtype, 46)
    loss_t, dlogits_t = run(lambda z: F.cross_entropy(
        z, torch.from_numpy(target), weight=torch.from_numpy(weight), ignore_index=-100,
        label_smoothing=0.15, reduction="none"), logits, dy=dloss)
    loss, stats = impl.cross_entropy_forward(logits, target, weight, -100, 0.15)
    close(loss, loss_t, dtype, scale=10)
    close(impl.cross_entropy_backward(logits, target, stats, dloss, weight, -100, 0.15),
          dlogits_t, dtype, scale=10)

    table, indices = rand((7, 5), dtype, 47), np.array([[1, 3, 3], [6, 1, 0]])
    dy_e = rand((2, 3, 5), dtype, 48)
    _, dtable_t = run(lambda t: F.embedding(torch.from_numpy(indices), t, padding_idx=3), table,
                      dy=dy_e)
    close(impl.embedding_backward(indices, dy_e, 7, 3), dtable_t, dtype)


# ---- the vectorisable maths behind the fast kernels ------------------------------------

def test_fast_exp_and_erfc_float32_accuracy():
    from numba import njit

    from minidl.backend.cpu_kernels._fastmath import FASTMATH, fast_erfc, fast_exp

    @njit(fastmath=FASTMATH, error_model="numpy")
    def apply(x, exp_out, erfc_out):
        for i in range(x.size):
            exp_out[i] = fast_exp(x[i])
            erfc_out[i] = fast_erfc(x[i])

    x = np.concatenate([np.linspace(-110, 95, 200001),
                        [0.0, -87.5, -103.0, 88.72, 88.73, np.inf, -np.inf, np.nan]])
    x = x.astype(np.float32)
    exp_out, erfc_out = np.empty_like(x), np.empty_like(x)
    apply(x, exp_out, erfc_out)
    true_exp = np.exp(np.clip(f64(x), -200, 100))   # the same limits, without overflow
    normal = (true_exp > np.finfo(np.float32).tiny) & (true_exp < np.finfo(np.float32).max)
    np.testing.assert_allclose(exp_out[normal], true_exp[normal], rtol=2e-7)
    # subnormal results, 0 below the range, inf above it, NaN through
    edge = ~normal & ~np.isnan(x)
    too_big = true_exp[edge] > np.finfo(np.float32).max
    expected_edge = np.where(too_big, np.inf, true_exp[edge]).astype(np.float32)
    np.testing.assert_allclose(exp_out[edge], expected_edge, rtol=1e-2, atol=3e-45)
    assert exp_out[-3] == np.inf and exp_out[-2] == 0.0 and np.isnan(exp_out[-1])
    true_erfc = np.array([math.erfc(v) for v in f64(x[:-3])])
    kept = true_erfc > 1e-30
    np.testing.assert_allclose(erfc_out[:-3][kept], true_erfc[kept], rtol=5e-6)
    assert erfc_out[-3] == 0.0 and erfc_out[-2] == 2.0 and np.isnan(erfc_out[-1])


def test_fast_exp_shifted_summand_and_log_split_float32_accuracy():
    """The softmax family's cheaper exp and log, over their stated domains."""
    from numba import njit

    from minidl.backend.cpu_kernels._fastmath import (FASTMATH, fast_exp_shifted,
                                                       fast_exp_summand, fast_log_split)

    @njit(fastmath=FASTMATH, error_model="numpy")
    def apply(x, exp_out, summand_out):
        for i in range(x.size):
            exp_out[i] = fast_exp_shifted(x[i])
            summand_out[i] = fast_exp_summand(x[i])

    @njit(fastmath=FASTMATH, error_model="numpy")
    def apply_log(v, hi_out, lo_out):
        for i in range(v.size):
            hi, lo = fast_log_split(v[i])
            hi_out[i] = hi
            lo_out[i] = lo

    # the domain is v <= 88 (exp(x - shift) with shift >= max(x) - 60 or so)
    x = np.concatenate([np.linspace(-110, 88, 200001), -np.abs(rand((20000,), np.float64, 50)),
                        [0.0, -0.0, -1e-45, -87.3365, -87.34, -104.0, -np.inf, np.nan]])
    x = x.astype(np.float32)
    exp_out, summand_out = np.empty_like(x), np.empty_like(x)
    apply(x, exp_out, summand_out)
    true_exp = np.exp(f64(x))
    normal = true_exp > np.finfo(np.float32).tiny
    ulp = np.spacing(true_exp[normal].astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(exp_out[normal] - true_exp[normal]) / ulp) <= 1.0
    assert np.max(np.abs(summand_out[normal] - true_exp[normal]) / ulp) <= 3.0
    # below ln(FLT_MIN): exactly 0 (the mask value -inf included) or, for summands, <= FLT_MIN
    tiny = ~normal & ~np.isnan(x)
    assert (exp_out[tiny] == 0.0).all()
    assert (summand_out[tiny] <= 1.2e-38).all() and (summand_out[tiny] >= 0.0).all()
    assert np.isnan(exp_out[-1]) and np.isnan(summand_out[-1])

    # log, for v >= 1 (a softmax total); inf and NaN pass through
    v = np.concatenate([np.linspace(1, 3, 100001), np.exp(np.linspace(0, 88, 100001)),
                        [1.0, np.nextafter(np.float32(1), np.float32(2)), math.sqrt(2), 128.0,
                         np.finfo(np.float32).max]]).astype(np.float32)
    v = np.concatenate([v, np.array([np.inf, np.nan], np.float32)])
    hi, lo = np.empty_like(v), np.empty_like(v)
    apply_log(v, hi, lo)
    true_log = np.log(f64(v[:-2]))
    got = f64(hi[:-2]) + f64(lo[:-2])
    spacing = np.spacing(np.maximum(true_log, 1e-30).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - true_log) / np.maximum(spacing, 6e-8)) <= 2.0
    # hi is an exact multiple of ln 2's leading bits: hi - d is exact for d near hi
    assert np.all(f64(hi[:-2]) / 0.693359375 == np.round(f64(hi[:-2]) / 0.693359375))
    assert hi[-2] == np.inf and lo[-2] == 0.0 and np.isnan(hi[-1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_log_softmax_shift_choices(dtype):
    """The fast log-softmax shifts each row by its first entry when that is within 60 of the
    max, and by the max otherwise: both branches, and the cases that force the second."""
    rows = [
        [0.0, 1.0, 2.0, 3.0, -1.0, 0.5],            # first entry 3 below the max: first shift
        [-59.0, 0.0, 1.0, -3.0, 0.25, 0.0],         # 60 below: still the first entry
        [-61.0, 0.0, 1.0, -3.0, 0.25, 0.0],         # 62 below: the max
        [-1e4, 1e4, 0.0, 9999.0, -5.0, 1e4],        # huge spread
        [9999.5, 1e4, 1e4 - 3.0, 1e4 - 70.0, -1e4, 9990.0],   # large offset, tiny spread
        [-np.inf, 0.0, 1.0, -np.inf, 2.0, -np.inf],  # masked first entry
        [2.0, -np.inf, 1.0, -np.inf, 0.0, -np.inf],  # masked others
    ]
    x = np.array(rows, dtype=dtype)
    y = fast.log_softmax_forward(x)
    shifted = f64(x) - f64(x).max(-1, keepdims=True)        # float64 logsumexp as the truth
    truth = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    finite = np.isfinite(truth)
    # float32: within a few ulp of the result (values reach -2e4, where an ulp is 2e-3)
    tol = 4 * np.spacing(np.abs(truth[finite]).astype(dtype)) + (1e-6 if dtype is np.float32
                                                                   else 1e-14)
    assert (np.abs(f64(y[finite]) - truth[finite]) <= tol).all()
    assert (y[~finite] == -np.inf).all()
    # NaN anywhere, the first entry included, poisons the row; all -inf gives NaN (as PyTorch)
    bad = np.array([[np.nan, 1.0, 2.0], [1.0, np.nan, 2.0], [-np.inf] * 3, [1.0, np.inf, 0.0]],
                   dtype=dtype)
    assert np.isnan(fast.log_softmax_forward(bad)).all()
    # one row, one column, and no rows at all
    assert fast.log_softmax_forward(np.array([[5.0]], dtype=dtype))[0, 0] == 0.0
    assert fast.log_softmax_forward(np.zeros((0, 4), dtype=dtype)).shape == (0, 4)
