"""im2col / col2im and max / average pooling kernels against float64 loops written from the
definitions, the adjoint identity, and PyTorch (forward, indices and backward)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from minidl.backend.cuda.registry import versions

from kernel_test_helpers import assert_close

CONV_CASES = [  # (id, x shape, kh, kw, stride, padding, dilation)
    ("3x3 same padding", (2, 3, 7, 6), 3, 3, (1, 1), (1, 1), (1, 1)),
    ("rectangular, strided, dilated", (1, 2, 11, 9), 2, 3, (2, 1), (0, 1), (2, 1)),
    ("1x1", (3, 4, 5, 5), 1, 1, (1, 1), (0, 0), (1, 1)),
    ("overlapping windows, big padding", (1, 1, 4, 5), 3, 3, (1, 2), (2, 2), (1, 1)),
]


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def im2col_ref(x, kh, kw, s, p, d):
    N, C, H, W = x.shape
    OH, OW = out_size(H, kh, s[0], p[0], d[0]), out_size(W, kw, s[1], p[1], d[1])
    cols = np.zeros((C * kh * kw, N * OH * OW))
    for c, i, j, n, oh, ow in itertools.product(range(C), range(kh), range(kw), range(N), range(OH), range(OW)):
        h, w = oh * s[0] + i * d[0] - p[0], ow * s[1] + j * d[1] - p[1]
        if 0 <= h < H and 0 <= w < W:
            cols[(c * kh + i) * kw + j, (n * OH + oh) * OW + ow] = x[n, c, h, w]
    return cols


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_im2col(dev, rng, case, dtype):
    _, shape, kh, kw, s, p, d = case
    x = rng.standard_normal(shape).astype(dtype)
    for block in (None, 32):
        cols = dev.get(dev.ops.im2col(dev.put(x), kh, kw, s, p, d, block=block))
        np.testing.assert_array_equal(cols, im2col_ref(x, kh, kw, s, p, d))  # a pure copy: exact


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
@pytest.mark.parametrize("version", versions("col2im"))
def test_col2im_is_the_adjoint_of_im2col(dev, rng, version, case, dtype):
    _, shape, kh, kw, s, p, d = case
    x = rng.standard_normal(shape)
    cols = rng.standard_normal(im2col_ref(x, kh, kw, s, p, d).shape).astype(dtype)
    folded = dev.get(dev.ops.col2im(dev.put(cols), shape, kh, kw, s, p, d, version=version))
    # the adjoint identity <im2col(x), cols> = <x, col2im(cols)>, for two random x
    for _ in range(2):
        probe = rng.standard_normal(shape)
        np.testing.assert_allclose((im2col_ref(probe, kh, kw, s, p, d) * cols).sum(), (probe * folded).sum(),
                                   rtol=1e-5 if dtype == np.float32 else 1e-12)
    # and entry by entry: every column entry added back to the pixel it came from
    expected = np.zeros(shape)
    N, C, H, W = shape
    OH, OW = out_size(H, kh, s[0], p[0], d[0]), out_size(W, kw, s[1], p[1], d[1])
    for c, i, j, n, oh, ow in itertools.product(range(C), range(kh), range(kw), range(N), range(OH), range(OW)):
        h, w = oh * s[0] + i * d[0] - p[0], ow * s[1] + j * d[1] - p[1]
        if 0 <= h < H and 0 <= w < W:
            expected[n, c, h, w] += cols[(c * kh + i) * kw + j, (n * OH + oh) * OW + ow]
    assert_close(folded, expected, dtype, scale=10)


POOL_CASES = [  # (id, x shape, kernel, stride, padding, dilation, ceil_mode)
    ("2x2 stride 2", (2, 3, 8, 6), 2, None, 0, 1, False),
    ("3x3 stride 2 pad 1 ceil", (1, 2, 9, 7), 3, 2, 1, 1, True),
    ("rectangular dilated ceil", (2, 1, 11, 9), (3, 2), (2, 1), (1, 0), (2, 1), True),
    ("overlapping stride 1", (1, 2, 5, 5), 3, 1, 1, 1, False),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_max_pool_matches_torch_forward_indices_and_backward(dev, rng, case, dtype):
    torch = pytest.importorskip("torch", reason="torch is the reference")
    _, shape, k, s, p, d, ceil_mode = case
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::7] = x.reshape(-1)[3]          # ties: the first maximum must win
    tx = torch.tensor(x, requires_grad=True)
    t_y, t_idx = torch.nn.functional.max_pool2d(tx, k, s, p, d, ceil_mode=ceil_mode, return_indices=True)
    dy = rng.standard_normal(tuple(t_y.shape)).astype(dtype)
    t_y.backward(torch.tensor(dy))
    y, argmax = dev.ops.max_pool2d_forward(dev.put(x), k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(dev.get(y), t_y.detach().numpy())
    np.testing.assert_array_equal(dev.get(argmax), t_idx.numpy())
    dx = dev.get(dev.ops.max_pool2d_backward(dev.put(dy), argmax, shape))
    assert_close(dx, tx.grad.numpy(), dtype, scale=10)


def test_max_pool_nan_wins_and_all_minus_inf_windows(dev):
    x = np.full((1, 1, 2, 4), -np.inf, np.float32)
    x[0, 0, 1, 3] = np.nan
    y, argmax = dev.ops.max_pool2d_forward(dev.put(x), 2, 2, 0, 1, False)
    y, argmax = dev.get(y), dev.get(argmax)
    assert y[0, 0, 0, 0] == -np.inf and argmax[0, 0, 0, 0] == 0       # the first real tap
    assert np.isnan(y[0, 0, 0, 1]) and argmax[0, 0, 0, 1] == 7


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[5] == 1], ids=[c[0] for c in POOL_CASES if c[5] == 1])
def test_avg_pool_matches_loops_and_torch(dev, rng, case, dtype, count_include_pad):
    torch = pytest.importorskip("torch", reason="torch is the reference")
    _, shape, k, s, p, _, ceil_mode = case
    x = rng.standard_normal(shape).astype(dtype)
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    t_y = torch.nn.functional.avg_pool2d(tx, k, s, p, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    dy = rng.standard_normal(tuple(t_y.shape)).astype(dtype)
    t_y.backward(torch.tensor(dy.astype(np.float64)))
    y = dev.get(dev.ops.avg_pool2d_forward(dev.put(x), k, s, p, ceil_mode, count_include_pad))
    assert_close(y, t_y.detach().numpy(), dtype)
    dx = dev.get(dev.ops.avg_pool2d_backward(dev.put(dy), shape, k, s, p, ceil_mode, count_include_pad))
    assert_close(dx, tx.grad.numpy(), dtype)


def test_conv2d_built_on_the_kernels_matches_torch(dev, rng):
    torch = pytest.importorskip("torch", reason="torch is the reference")
    x = rng.standard_normal((2, 4, 7, 6))
    weight = rng.standard_normal((6, 2, 3, 2))
    bias = rng.standard_normal(6)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    t_y = torch.nn.functional.conv2d(tx, tw, tb, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    dy = rng.standard_normal(tuple(t_y.shape))
    t_y.backward(torch.tensor(dy))
    y, saved = dev.ops.conv2d_forward(dev.put(x), dev.put(weight), dev.put(bias), (2, 1), (1, 1), (1, 2), 2)
    np.testing.assert_allclose(dev.get(y), t_y.detach().numpy(), rtol=1e-10, atol=1e-12)
    grads = dev.ops.conv2d_backward(dev.put(dy), dev.put(x), dev.put(weight), saved, (2, 1), (1, 1), (1, 2), 2,
                                    True, True, True)
    for ours, theirs in zip(grads, (tx, tw, tb)):
        np.testing.assert_allclose(dev.get(ours), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_bad_inputs_are_rejected_with_clear_errors(dev):
    x = dev.put(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"cols must have shape \(9, 16\)"):
        dev.ops.col2im(dev.put(np.zeros((9, 15), np.float32)), (1, 1, 4, 4), 3, 3, 1, 1, 1)
    with pytest.raises(ValueError, match="padding .* must be at most half the kernel size"):
        dev.ops.max_pool2d_forward(x, 2, 2, 2, 1, False)
    with pytest.raises(ValueError, match="x must be a 4-D NCHW array"):
        dev.ops.avg_pool2d_forward(dev.put(np.zeros((4, 4), np.float32)), 2, 2, 0, False, True)
