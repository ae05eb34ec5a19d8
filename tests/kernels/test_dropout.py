"""Dropout with a Philox counter-based generator: the generator against the published
known-answer vectors and a Python model of it, the mask's statistics, and forward/backward
agreement (the backward regenerates the forward's mask)."""
from __future__ import annotations

import numpy as np
import pytest

from minidl.backend.cuda.registry import versions

MASK32 = 0xFFFFFFFF


def philox4x32_10(counter, key):
    """Philox 4x32-10 in plain Python integers (Salmon et al. 2011)."""
    c, (k0, k1) = list(counter), key
    for round_ in range(10):
        if round_:
            k0, k1 = (k0 + 0x9E3779B9) & MASK32, (k1 + 0xBB67AE85) & MASK32
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & MASK32, (p0 >> 32) ^ c[3] ^ k1, p0 & MASK32]
    return c


KNOWN_ANSWERS = [  # Random123's kat_vectors for philox4x32_10: (counter, key, output)
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((MASK32,) * 4, (MASK32, MASK32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def uniforms_model(n, seed, offset):
    """u_i = (word i % 4 of counter (i // 4, offset), key seed) >> 8, times 2^-24."""
    words = []
    for group in range((n + 3) // 4):
        counter = (group & MASK32, group >> 32, offset & MASK32, offset >> 32)
        words += philox4x32_10(counter, (seed & MASK32, seed >> 32))
    return np.array([w >> 8 for w in words[:n]], dtype=np.float64) / 2**24


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_python_model_matches_the_known_answers(counter, key, expected):
    assert tuple(philox4x32_10(counter, key)) == expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed,offset", [(0, 0), (12345, 0), (0xDEADBEEF_0BADF00D, 7), (1, 2**40 + 3)])
def test_uniforms_match_the_generator_bit_for_bit(dev, seed, offset, dtype):
    n = 1003  # a partial last group of 4
    u = dev.get(dev.ops.philox_uniform((n,), seed, offset, dtype))
    np.testing.assert_array_equal(u.astype(np.float64), uniforms_model(n, seed, offset))
    if (seed, offset) == (0, 0):  # the first known answer, read through the kernel itself
        assert [int(v * 2**24) for v in u[:4]] == [w >> 8 for w in KNOWN_ANSWERS[0][2]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("version", versions("dropout"))
def test_mask_statistics(dev, version, p, dtype):
    n = 40_000
    x = np.ones(n, dtype)
    y, _ = dev.ops.dropout_forward(dev.put(x), p, np.random.default_rng(7), version=version)
    keep = dev.get(y) != 0
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(keep.mean() - (1 - p)) < 5 * sigma, keep.mean()
    for lane in range(4):  # each of the 4 Philox words is used and unbiased
        assert abs(keep[lane::4].mean() - (1 - p)) < 5 * 2 * sigma
    k = keep.astype(np.float64) - keep.mean()
    lag1 = (k[1:] * k[:-1]).mean() / k.var()
    assert abs(lag1) < 5 / np.sqrt(n), lag1          # neighbours independent
    np.testing.assert_array_equal(dev.get(y)[keep], dtype(1) * dtype(1 / (1 - p)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5, 33), (2, 0)], ids=["one", "partial group", "3-D", "empty"])
@pytest.mark.parametrize("version", versions("dropout"))
def test_backward_regenerates_the_forward_mask(dev, rng, version, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype) + 5                 # never 0, so y == 0 means dropped
    dy = rng.standard_normal(shape).astype(dtype)
    y, mask = dev.ops.dropout_forward(dev.put(x), 0.4, np.random.default_rng(3), version=version)
    keep = dev.get(y) != 0
    scale = dtype(1 / 0.6)
    np.testing.assert_array_equal(dev.get(y), np.where(keep, x * scale, 0))
    for backward_version in versions("dropout"):                     # any version regenerates the same mask
        dx = dev.get(dev.ops.dropout_backward(dev.put(dy), mask, 0.4, version=backward_version))
        np.testing.assert_array_equal(dx, np.where(keep, dy * scale, 0).astype(dtype))


def test_seeding_reproduces_and_successive_calls_differ(dev):
    x = dev.put(np.ones(500, np.float32))
    a, mask_a = dev.ops.dropout_forward(x, 0.5, np.random.default_rng(11))
    b, mask_b = dev.ops.dropout_forward(x, 0.5, np.random.default_rng(11))
    np.testing.assert_array_equal(dev.get(a), dev.get(b))
    assert mask_a == mask_b
    rng = np.random.default_rng(11)
    first, _ = dev.ops.dropout_forward(x, 0.5, rng)
    second, _ = dev.ops.dropout_forward(x, 0.5, rng)
    assert (dev.get(first) != dev.get(second)).mean() > 0.3


def test_edge_probabilities_and_non_finite_inputs(dev):
    x = np.array([1.0, -2.0, np.inf, 3.0] * 8, np.float32)
    y, _ = dev.ops.dropout_forward(dev.put(x), 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(dev.get(y), x)
    y, _ = dev.ops.dropout_forward(dev.put(x), 1.0, np.random.default_rng(0))
    y = dev.get(y)
    assert (y[np.isfinite(x)] == 0).all() and np.isnan(y[np.isinf(x)]).all()   # inf * 0, as PyTorch


def test_array_masks_of_other_implementations_are_accepted(dev, rng):
    dy = rng.standard_normal((3, 4))
    mask = rng.random((3, 4)) > 0.5
    np.testing.assert_array_equal(dev.get(dev.ops.dropout_backward(dev.put(dy), dev.put(mask), 0.5)), dy * mask * 2.0)


def test_bad_inputs_are_rejected_with_clear_errors(dev):
    x = dev.put(np.ones((2, 3), np.float32))
    _, mask = dev.ops.dropout_forward(x, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"mask was made for shape \(2, 3\) and p = 0.5, got dy of shape \(3, 2\)"):
        dev.ops.dropout_backward(dev.put(np.ones((3, 2), np.float32)), mask, 0.5)
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\], got 1.5"):
        dev.ops.dropout_forward(x, 1.5, np.random.default_rng(0))
