"""Every matmul version against float64 NumPy (and torch when importable)."""
from __future__ import annotations

import numpy as np
import pytest

from minidl.backend.cuda.registry import versions

from kernel_test_helpers import assert_close

SHAPES = [  # (a shape, b shape, why)
    ((1, 1), (1, 1), "1x1x1"),
    ((33, 47), (47, 29), "no dimension a multiple of a tile"),
    ((64, 16), (16, 64), "exactly one 64x64 tile"),
    ((70, 130), (130, 5), "K spans several tiles, N below a tile"),
    ((3, 20, 9), (3, 9, 11), "batched"),
    ((2, 5, 17), (17, 6), "2-D operand broadcast over the batch"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_shape,b_shape", [s[:2] for s in SHAPES], ids=[s[2] for s in SHAPES])
@pytest.mark.parametrize("version", versions("matmul"))
def test_matmul_versions(dev, rng, version, a_shape, b_shape, dtype):
    a = rng.standard_normal(a_shape).astype(dtype)
    b = rng.standard_normal(b_shape).astype(dtype)
    got = dev.get(dev.ops.matmul(dev.put(a), dev.put(b), version=version))
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.shape == expected.shape
    assert_close(got, expected, dtype, scale=np.sqrt(a_shape[-1]) * 10)


def test_matmul_matches_torch(dev, rng):
    torch = pytest.importorskip("torch", reason="torch is the optional reference")
    a = rng.standard_normal((3, 21, 35)).astype(np.float32)
    b = rng.standard_normal((3, 35, 19)).astype(np.float32)
    expected = torch.bmm(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    got = dev.get(dev.ops.matmul(dev.put(a), dev.put(b)))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_matmul_rejects_bad_shapes(dev):
    a = dev.put(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\) do not chain"):
        dev.ops.matmul(a, dev.put(np.ones((4, 5), np.float32)))
    with pytest.raises(TypeError, match="share a dtype"):
        dev.ops.matmul(a, dev.put(np.ones((3, 2), np.float64)))
