"""Every version of the sum ladder against a float64 NumPy reference."""
from __future__ import annotations

import numpy as np
import pytest

from minidl.backend.cuda.registry import ShapeLimitError, versions

SIZES = [1, 31, 257, 5000]  # one element, below a warp, just past a block, many blocks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("version,block", [(v, b) for v in versions("sum") for b in (None, 64)])
def test_sum_versions(dev, rng, version, block, n, dtype):
    x = rng.standard_normal(n).astype(dtype)
    got = dev.get(dev.ops.sum_all(dev.put(x), version=version, block=block))
    expected = x.astype(np.float64).sum()
    assert got.shape == () and got.dtype == np.dtype(dtype)
    # Summation error bound ~ n * eps * sum|x| for any order of additions.
    eps = np.finfo(dtype).eps
    assert abs(float(got) - expected) <= 4 * n * eps * np.abs(x).sum() + 1e-300, (float(got), expected)


def test_sum_of_a_multi_dimensional_array(dev, rng):
    x = rng.standard_normal((3, 5, 7))
    assert np.isclose(dev.get(dev.ops.sum_all(dev.put(x))), x.sum(), rtol=1e-12)


def test_two_pass_sum_is_deterministic_across_block_orders(rng):
    from minidl.backend.cuda_emu import emu_ops, schedule

    ops = emu_ops()
    x = (rng.standard_normal(20000) * 1e3).astype(np.float32)
    with schedule("forward"):
        first = ops.sum_all(x, version=4)
    with schedule("reverse"):
        second = ops.sum_all(x, version=4)
    assert first.tobytes() == second.tobytes()


def test_block_limits_are_checked(dev):
    x = dev.put(np.ones(10, np.float32))
    with pytest.raises(ShapeLimitError, match="power of two"):
        dev.ops.sum_all(x, version=2, block=96)
    with pytest.raises(ShapeLimitError, match="multiple of 32"):
        dev.ops.sum_all(x, version=3, block=40)
