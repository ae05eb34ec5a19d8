"""Every softmax / log-softmax kernel version against float64 NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

from minidl.backend.cuda.registry import ShapeLimitError, versions

from kernel_test_helpers import assert_close

# (shape, why it is here)
SHAPES = [
    ((1, 1), "single element"),
    ((3, 5), "cols far below blockDim"),
    ((7, 37), "cols not a multiple of 32"),
    ((2, 3, 33), "leading batch axes"),
    ((4, 300), "cols > blockDim, not a multiple of 32"),
    ((67, 20), "rows not a multiple of the block of v1"),
]
# Forward / backward versions, each with the block sizes to try (None = registry default).
FORWARD = [(v, b) for v in versions("softmax_forward") for b in ((None, 32) if v == 1 else (None, 32, 64))]
BACKWARD = [(v, b) for v in versions("softmax_backward") for b in (None, 32)]


def softmax_ref(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def log_softmax_ref(x):
    x = x.astype(np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _input(rng, shape, dtype):
    # Spread of +-8 so exp() varies over many orders of magnitude and the max subtraction matters.
    return (rng.standard_normal(shape) * 8).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [s for s, _ in SHAPES], ids=[why for _, why in SHAPES])
@pytest.mark.parametrize("version,block", FORWARD)
def test_forward_versions(dev, rng, version, block, shape, dtype):
    x = _input(rng, shape, dtype)
    y = dev.get(dev.ops.softmax_forward(dev.put(x), version=version, block=block))
    assert_close(y, softmax_ref(x), dtype)
    log_y = dev.get(dev.ops.log_softmax_forward(dev.put(x), version=version, block=block))
    assert_close(log_y, log_softmax_ref(x), dtype, scale=10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [s for s, _ in SHAPES], ids=[why for _, why in SHAPES])
@pytest.mark.parametrize("version,block", BACKWARD)
def test_backward_versions(dev, rng, version, block, shape, dtype):
    x = _input(rng, shape, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y = softmax_ref(x)
    expected = y * (dy - (dy * y).sum(-1, keepdims=True))
    dx = dev.get(dev.ops.softmax_backward(dev.put(y.astype(dtype)), dev.put(dy), version=version, block=block))
    assert_close(dx, expected, dtype, scale=10)
    log_y = log_softmax_ref(x)
    expected_log = dy - np.exp(log_y) * dy.astype(np.float64).sum(-1, keepdims=True)
    dx_log = dev.get(dev.ops.log_softmax_backward(dev.put(log_y.astype(dtype)), dev.put(dy), version=version, block=block))
    assert_close(dx_log, expected_log, dtype, scale=10)


def test_large_logits_do_not_overflow(dev):
    # exp(1000) overflows even float64: only a max-subtracting kernel survives this row.
    x = np.array([[1000.0, 999.0, -1000.0], [-1e4, -1e4, -1e4 + 1]], dtype=np.float32)
    for version in versions("softmax_forward"):
        y = dev.get(dev.ops.softmax_forward(dev.put(x), version=version))
        assert np.isfinite(y).all(), f"v{version} produced {y}"
        assert_close(y, softmax_ref(x), np.float32)


def test_matches_torch(dev, rng):
    torch = pytest.importorskip("torch", reason="torch is the optional reference")
    x = _input(rng, (6, 45), np.float32)
    expected = torch.log_softmax(torch.from_numpy(x), dim=-1).numpy()
    for version in versions("softmax_forward"):
        got = dev.get(dev.ops.log_softmax_forward(dev.put(x), version=version))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_rejected_with_clear_errors(dev):
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        dev.ops.softmax_forward(dev.put(np.arange(6).reshape(2, 3)))
    with pytest.raises(ValueError, match="at least one axis"):
        dev.ops.softmax_forward(dev.put(np.float32(1.0).reshape(())))
    y = dev.put(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape of y \(2, 3\), got \(3, 2\)"):
        dev.ops.softmax_backward(y, dev.put(np.ones((3, 2), np.float32)))
    with pytest.raises(ShapeLimitError, match="power of two"):
        dev.ops.softmax_forward(y, version=2, block=96)
    with pytest.raises(ShapeLimitError, match="multiple of 32"):
        dev.ops.softmax_forward(y, version=3, block=48)
