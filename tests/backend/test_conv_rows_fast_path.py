"""The CPU conv's stride-1 row kernels (8-lane vector copies and masked adds) against the
reference: im2col must match exactly, col2im to rounding, and conv2d forward/backward to the
usual float tolerance.

The row kernels run only when the output is at least 8 wide and the column stride and
dilation are 1; the small cases of test_fused_convpool.py stay below that, so these shapes
are chosen to hit every branch: OW exactly 8 (one block, no overlap), 11 (a shifted last
block), 16 (two full blocks), 17 and 26 (full blocks plus an overlapping last one), with
vertical stride and dilation, padding and groups.
"""
from __future__ import annotations

import numpy as np
import pytest

from minidl.backend.cpu_kernels import conv as fast_conv
from minidl.backend.reference import conv as ref_conv

# (N, C, H, W, O, kh, kw, stride, padding, dilation, groups)
ROW_CASES = [
    (2, 3, 10, 10, 4, 3, 3, (1, 1), (0, 0), (1, 1), 1),    # OW = 8
    (3, 4, 13, 13, 5, 3, 3, (1, 1), (0, 0), (1, 1), 1),    # OW = 11 (the MNIST conv2 shape)
    (2, 2, 9, 16, 3, 3, 3, (2, 1), (1, 1), (1, 1), 1),     # OW = 16, vertical stride, padding
    (2, 4, 12, 19, 4, 2, 3, (1, 1), (0, 0), (3, 1), 2),    # OW = 17, vertical dilation, groups
    (2, 1, 28, 28, 6, 3, 3, (1, 1), (0, 0), (1, 1), 1),    # OW = 26 (the MNIST conv1 shape)
    (1, 2, 7, 12, 3, 3, 5, (3, 1), (2, 2), (2, 1), 1),     # OW = 12, everything at once
]


def _data(case, dtype, seed=0):
    N, C, H, W, O, kh, kw, s, p, d, g = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((O, C // g, kh, kw)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    return x, w, b, s, p, d, g


@pytest.mark.parametrize("case", ROW_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_kernels_im2col_col2im(case, dtype):
    x, w, b, s, p, d, g = _data(case, dtype)
    kh, kw = w.shape[2:]
    cols = fast_conv.im2col(x, kh, kw, s, p, d)
    np.testing.assert_array_equal(cols, ref_conv.im2col(x, kh, kw, s, p, d))
    r = np.random.default_rng(1).standard_normal(cols.shape).astype(dtype)
    got = fast_conv.col2im(r, x.shape, kh, kw, s, p, d)
    want = ref_conv.col2im(r, x.shape, kh, kw, s, p, d)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got, want, **tol)


def test_col2im_masked_lanes_leave_nonfinite_alone():
    """The masked lanes of the last block add -0.0 (a select, not a 0/1 multiply): an inf
    in cols reaches only its own pixel, where 0 * inf would have spread NaN to neighbours."""
    x_shape, kh, kw = (1, 1, 3, 13), 3, 3                 # OH = 1, OW = 11: blocks 0-7, 3-10
    cols = np.zeros((9, 11), np.float32)
    cols[4, 5] = np.inf                                    # tap (1, 1), output column 5
    cols[0, 2] = np.nan                                    # tap (0, 0), output column 2
    got = fast_conv.col2im(cols, x_shape, kh, kw, 1, 0, 1)
    want = ref_conv.col2im(cols, x_shape, kh, kw, 1, 0, 1)
    np.testing.assert_array_equal(got, want)               # NaN == NaN here, inf == inf
    assert np.isinf(got[0, 0, 1, 6]) and np.isnan(got[0, 0, 0, 2])
    assert np.isfinite(got).sum() == got.size - 2


@pytest.mark.parametrize("case", ROW_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_row_kernels_conv2d_matches_reference(case, dtype, with_bias):
    x, w, b, s, p, d, g = _data(case, dtype)
    b = b if with_bias else None
    y, saved = fast_conv.conv2d_forward(x, w, b, s, p, d, g)
    y_ref, _ = ref_conv.conv2d_forward(x, w, b, s, p, d, g)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(y, y_ref, **tol)
    dy = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    got = fast_conv.conv2d_backward(dy, x, w, saved, s, p, d, g, True, True, with_bias)
    want = ref_conv.conv2d_backward(dy, x, w, None, s, p, d, g, True, True, with_bias)
    for a, e in zip(got, want):
        if e is None:
            assert a is None
            continue
        assert a.dtype == dtype and a.shape == e.shape
        np.testing.assert_allclose(a, e, **tol)


def test_chunked_backward_matches_one_chunk(monkeypatch):
    """Several chunks (small CHUNK_BYTES) give the same gradients as one chunk."""
    x, w, b, s, p, d, g = _data(ROW_CASES[1], np.float32)
    dy = np.random.default_rng(3).standard_normal((3, 5, 11, 11)).astype(np.float32)
    whole = fast_conv.conv2d_backward(dy, x, w, None, s, p, d, g, True, True, True)
    y_whole, _ = fast_conv.conv2d_forward(x, w, b, s, p, d, g)
    monkeypatch.setattr(fast_conv, "CHUNK_BYTES", 1)      # one image per chunk
    parts = fast_conv.conv2d_backward(dy, x, w, None, s, p, d, g, True, True, True)
    y_parts, _ = fast_conv.conv2d_forward(x, w, b, s, p, d, g)
    np.testing.assert_allclose(y_parts, y_whole, rtol=1e-5, atol=1e-5)  # GEMM blocking may differ
    for a, e in zip(parts, whole):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
