"""The fast max pool's special paths against the reference: the 2x2 stride-2 kernel (ties,
NaN, -inf, odd sizes) and windows that ceil_mode lets hang over the edge, which must take the
clipping kernel."""
from __future__ import annotations

import numpy as np
import pytest

import minidl.backend.cpu_kernels as fast
import minidl.backend.reference as reference

CASES = [   # kernel, stride, padding, dilation, ceil_mode, shape
    (2, 2, 0, 1, False, (3, 4, 8, 10)),
    (2, 2, 0, 1, False, (2, 3, 9, 7)),      # odd sizes: the last row/column is dropped
    (2, 2, 0, 1, True, (2, 3, 9, 7)),       # ceil: a partial last window on both axes
    (3, 2, 0, 1, True, (1, 2, 8, 8)),       # ceil with the dense-kernel shape
    ((2, 3), (2, 1), 0, 1, True, (2, 2, 7, 6)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_fast_max_pool_matches_reference(case, dtype):
    k, s, p, d, ceil_mode, shape = case
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, shape).astype(dtype)      # small integers: many ties
    x.reshape(-1)[rng.choice(x.size, x.size // 9, replace=False)] = np.nan
    x.reshape(-1)[rng.choice(x.size, x.size // 9, replace=False)] = -np.inf
    y, idx = fast.max_pool2d_forward(x, k, s, p, d, ceil_mode)
    ry, ridx = reference.max_pool2d_forward(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(idx, ridx)
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(fast.max_pool2d_backward(dy, idx, x.shape),
                                  reference.max_pool2d_backward(dy, ridx, x.shape))
