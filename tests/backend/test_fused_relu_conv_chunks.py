"""relu_backward (reference and fast) against plain NumPy, and the fast conv's chunking: with a
chunk budget small enough to split the batch into many uneven chunks, every geometry must
still give the reference's numbers.
"""
from __future__ import annotations

import numpy as np
import pytest

import minidl.backend.cpu_kernels as fast
import minidl.backend.cpu_kernels.conv as fast_conv
import minidl.backend.reference as reference

IMPLS = {"reference": reference, "fast": fast}


@pytest.fixture(params=sorted(IMPLS))
def impl(request):
    return IMPLS[request.param]


# ---- relu_backward -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5, 33), (2, 0)], ids=str)
def test_relu_backward_matches_numpy(impl, dtype, shape):
    rng = np.random.default_rng(0)
    y = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    dx = impl.relu_backward(y, dy)
    assert dx.dtype == dtype and dx.shape == shape
    expected = [g if v > 0 else 0.0 for v, g in zip(y.reshape(-1), dy.reshape(-1))]
    np.testing.assert_array_equal(dx.reshape(-1), np.asarray(expected, dtype=dtype))


def test_relu_backward_special_values(impl):
    y = np.array([0.0, 0.0, 1.0, np.nan, 2.0], np.float32)
    dy = np.array([np.inf, np.nan, np.inf, 4.0, -np.inf], np.float32)
    np.testing.assert_array_equal(impl.relu_backward(y, dy),
                                  np.array([0.0, 0.0, np.inf, 4.0, -np.inf], np.float32))


def test_relu_backward_checks_shapes(impl):
    with pytest.raises(ValueError, match=r"dy must have shape \(3,\)"):
        impl.relu_backward(np.zeros(3, np.float32), np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        impl.relu_backward(np.zeros(3, np.int64), np.zeros(3, np.int64))


# ---- conv chunking ---------------------------------------------------------------------------

CONV_CASES = [
    # (N, C, H, W, O, kh, kw, stride, padding, dilation, groups)
    (7, 3, 9, 8, 4, 3, 3, 1, 0, 1, 1),
    (5, 4, 10, 9, 6, 3, 2, 2, 1, 1, 2),
    (6, 2, 11, 11, 3, 3, 3, 1, 2, 2, 1),
    (9, 1, 6, 7, 5, 2, 2, (2, 1), (0, 1), 1, 1),
]


@pytest.mark.parametrize("budget", [1, 2000, 1 << 30], ids=["one_image", "uneven", "whole"])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_chunked_conv_matches_reference(monkeypatch, case, budget):
    monkeypatch.setattr(fast_conv, "CHUNK_BYTES", budget)
    N, C, H, W, O, kh, kw, s, p, d, g = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((O, C // g, kh, kw))
    b = rng.standard_normal(O)
    y_ref, saved = reference.conv2d_forward(x, w, b, s, p, d, g)
    y, saved_fast = fast_conv.conv2d_forward(x, w, b, s, p, d, g)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    assert saved_fast is None
    dy = rng.standard_normal(y.shape)
    expected = reference.conv2d_backward(dy, x, w, saved, s, p, d, g, True, True, True)
    for saved_arg in (None, saved):   # rebuilt columns, or the reference's full matrix
        got = fast_conv.conv2d_backward(dy, x, w, saved_arg, s, p, d, g, True, True, True)
        for a, e in zip(got, expected):
            np.testing.assert_allclose(a, e, rtol=1e-11, atol=1e-11)


def test_chunks_cover_the_batch_once():
    for N, K, O, L in [(64, 288, 64, 121), (64, 9, 32, 676), (3, 10, 2, 5), (1, 1, 1, 1)]:
        chunks = fast_conv._chunks(N, K, O, L, 4)
        assert chunks[0][0] == 0 and chunks[-1][1] == N
        assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
        assert all(n1 > n0 for n0, n1 in chunks)
