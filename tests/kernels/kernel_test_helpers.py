"""Comparison helpers of the kernel tests (float64 references, dtype-aware tolerances)."""
from __future__ import annotations

import numpy as np

TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


def assert_close(actual, expected, dtype, scale=1.0):
    tol = TOLERANCE[np.dtype(dtype).type]
    assert actual.dtype == np.dtype(dtype), f"output dtype {actual.dtype}, expected {np.dtype(dtype)}"
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)
