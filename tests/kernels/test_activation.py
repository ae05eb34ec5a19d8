"""Every GELU / SiLU kernel version (and the bias-fused ones) against float64 references."""
from __future__ import annotations

import math

import numpy as np
import pytest

from minidl.backend.cuda.registry import ShapeLimitError, versions

from kernel_test_helpers import assert_close

SHAPES = [
    ((), "0-d"),
    ((1,), "one element"),
    ((7,), "fewer elements than a 128-bit pack tail allows"),
    ((3, 5, 33), "odd sizes, several axes"),
    ((2, 0), "empty"),
    ((1031,), "several blocks, n not a multiple of 4"),
]
KINDS = ["gelu", "gelu_tanh", "silu"]
FORWARD = [(v, b) for v in versions("activation_forward") for b in (None, 64)]
BACKWARD = [(v, b) for v in versions("activation_backward") for b in (None, 64)]

_erfc = np.vectorize(math.erfc, otypes=[np.float64])
C = math.sqrt(2 / math.pi)


def act_ref(kind, x):
    """(value, derivative) in float64, from the textbook formulas."""
    x = np.asarray(x, dtype=np.float64)
    if kind == "gelu":
        return 0.5 * x * _erfc(-x / math.sqrt(2)), 0.5 * _erfc(-x / math.sqrt(2)) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    if kind == "gelu_tanh":
        t = np.tanh(C * (x + 0.044715 * x**3))
        return 0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * 0.044715 * x * x)
    s = 1 / (1 + np.exp(-x))
    return x * s, s * (1 + x * (1 - s))


def forward(ops, kind, x, **kw):
    if kind == "silu":
        return ops.silu_forward(x, **kw)
    return ops.gelu_forward(x, "tanh" if kind == "gelu_tanh" else "none", **kw)


def backward(ops, kind, x, dy, **kw):
    if kind == "silu":
        return ops.silu_backward(x, dy, **kw)
    return ops.gelu_backward(x, dy, "tanh" if kind == "gelu_tanh" else "none", **kw)


def _input(rng, shape, dtype):
    return np.asarray(rng.standard_normal(shape) * 3, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [s for s, _ in SHAPES], ids=[w for _, w in SHAPES])
@pytest.mark.parametrize("version,block", FORWARD)
def test_forward_versions(dev, rng, version, block, shape, dtype):
    x = _input(rng, shape, dtype)
    for kind in KINDS:
        y = dev.get(forward(dev.ops, kind, dev.put(x), version=version, block=block))
        assert y.shape == x.shape
        assert_close(y, act_ref(kind, x)[0], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [s for s, _ in SHAPES], ids=[w for _, w in SHAPES])
@pytest.mark.parametrize("version,block", BACKWARD)
def test_backward_versions(dev, rng, version, block, shape, dtype):
    x = _input(rng, shape, dtype)
    dy = _input(rng, shape, dtype)
    for kind in KINDS:
        dx = dev.get(backward(dev.ops, kind, dev.put(x), dev.put(dy), version=version, block=block))
        assert_close(dx, dy * act_ref(kind, x)[1], dtype, scale=10)


def act_ref_exact(kind, x):
    """(value, derivative) with 50 significant digits (mpmath), where float64 itself cancels."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    out = []
    for v in np.asarray(x, dtype=np.float64).tolist():
        t = mp.mpf(v)
        if kind == "gelu":
            f = lambda z: z * mp.erfc(-z / mp.sqrt(2)) / 2
        elif kind == "gelu_tanh":
            f = lambda z: z * (1 + mp.tanh(mp.sqrt(2 / mp.pi) * (z + mp.mpf("0.044715") * z**3))) / 2
        else:
            f = lambda z: z / (1 + mp.exp(-z))
        out.append((float(f(t)), float(mp.diff(f, t))))
    return np.array(out).T


@pytest.mark.parametrize("kind", KINDS)
def test_far_negative_tail_keeps_its_relative_precision(dev, kind):
    # GELU(-8) ~ -5e-15: (1 + erf) or (1 + tanh) would cancel to 0 in float32.
    x = np.array([-8.0, -6.0, -4.5], dtype=np.float32)
    value, slope = act_ref_exact(kind, x)
    for version in versions("activation_forward"):
        np.testing.assert_allclose(dev.get(forward(dev.ops, kind, dev.put(x), version=version)), value, rtol=2e-5)
        np.testing.assert_allclose(dev.get(backward(dev.ops, kind, dev.put(x), dev.put(np.ones_like(x)), version=version)),
                                   slope, rtol=2e-4)


def test_misaligned_and_strided_inputs(dev, rng):
    base = _input(rng, (4, 41), np.float32)
    x = base[:, 1:]                        # a view that starts 4 bytes past an aligned address
    strided = base[:, ::3]                 # not contiguous at all
    for arr in (x, strided):
        y = dev.get(dev.ops.silu_forward(dev.put(arr)))    # default version falls back from v3
        assert_close(y, act_ref("silu", arr)[0], np.float32)
    if dev.xp is np:                       # a misaligned view of a NumPy array is only made on the emulator
        flat = base.reshape(-1)[1:]
        with pytest.raises(ShapeLimitError, match="16-byte boundary"):
            dev.ops.silu_forward(flat, version=3)


BIAS_SHAPES = [((1, 1), "one element"), ((3, 5), "tiny"), ((67, 20), "rows not a multiple of anything"),
               ((2, 3, 40), "leading axes"), ((130, 33), "several stripes of 64 rows")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [s for s, _ in BIAS_SHAPES], ids=[w for _, w in BIAS_SHAPES])
@pytest.mark.parametrize("block", [None, 32])
def test_bias_fused_forward_and_backward(dev, rng, block, shape, dtype):
    x, dy = _input(rng, shape, dtype), _input(rng, shape, dtype)
    b = _input(rng, shape[-1:], dtype)
    for kind in KINDS:
        value, slope = act_ref(kind, x.astype(np.float64) + b)
        if kind == "silu":
            y = dev.ops.bias_silu_forward(dev.put(x), dev.put(b), block=block)
            dx, db = dev.ops.bias_silu_backward(dev.put(x), dev.put(b), dev.put(dy), block=block)
        else:
            approximate = "tanh" if kind == "gelu_tanh" else "none"
            y = dev.ops.bias_gelu_forward(dev.put(x), dev.put(b), approximate, block=block)
            dx, db = dev.ops.bias_gelu_backward(dev.put(x), dev.put(b), dev.put(dy), approximate, block=block)
        assert_close(dev.get(y), value, dtype, scale=10)
        assert_close(dev.get(dx), dy * slope, dtype, scale=10)
        rows = int(np.prod(shape[:-1]))
        assert_close(dev.get(db), (dy * slope).reshape(rows, -1).sum(0), dtype, scale=10 * math.sqrt(rows))


@pytest.mark.parametrize("kind", KINDS)
def test_matches_torch_forward_and_backward(dev, rng, kind):
    torch = pytest.importorskip("torch", reason="torch is the optional reference")
    x, dy = _input(rng, (5, 19), np.float64), _input(rng, (5, 19), np.float64)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.silu(tx) if kind == "silu" else \
        torch.nn.functional.gelu(tx, approximate="tanh" if kind == "gelu_tanh" else "none")
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(dev.get(forward(dev.ops, kind, dev.put(x))), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dev.get(backward(dev.ops, kind, dev.put(x), dev.put(dy))), tx.grad.numpy(),
                               rtol=1e-12, atol=1e-14)


def test_bad_inputs_are_rejected_with_clear_errors(dev):
    x = dev.put(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="approximate must be 'none' .* or 'tanh', got 'fast'"):
        dev.ops.gelu_forward(x, "fast")
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        dev.ops.silu_forward(dev.put(np.ones(3, np.int64)))
    with pytest.raises(ValueError, match=r"dy must have the shape of x \(2, 3\), got \(3,\)"):
        dev.ops.silu_backward(x, dev.put(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match=r"bias must have shape \(C,\) = x.shape\[-1:\]"):
        dev.ops.bias_silu_forward(x, dev.put(np.ones(2, np.float32)))
    with pytest.raises(ShapeLimitError, match="multiple of 32"):
        dev.ops.silu_forward(x, version=2, block=48)
