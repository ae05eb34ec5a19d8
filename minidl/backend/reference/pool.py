"""2-D pooling (NCHW): max, average and adaptive average. The plain reference.

Every pooling output is a reduction over a window of one (H, W) plane. Like im2col, we loop
over the kh*kw taps of the window, each tap being one strided slice of shape (N, C, OH, OW);
a tap of output (oh, ow) reads input pixel (oh*sh + i*dh - ph, ow*sw + j*dw - pw).

Output size, PyTorch's rule:
    OH = floor_or_ceil((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1
and with ceil_mode, a last window that would START in the right/bottom padding is dropped:
    if ceil_mode and (OH - 1)*sh >= H + ph: OH -= 1
So with ceil_mode a window may run past the padded input; its missing taps are ignored
(max) or not counted (average). Padding may be at most half the kernel (PyTorch's check).

Max pooling
    Padding counts as -inf, so it never wins. The argmax saved for backward is the flat
    index h*W + w into each (H, W) plane. Ties keep the FIRST maximum in row-major window
    order; a NaN always wins (the max of anything with NaN is NaN), as in PyTorch.
    Backward sends dy to the argmax pixel; overlapping windows (stride < kernel) can pick the
    same pixel, so the gradients are ADDED (scatter-add), never assigned.

Average pooling (no dilation, as in PyTorch)
    divisor = count_include_pad ? window clipped to the padded input : window clipped to the
    real input. Either way, ceil_mode's overhang beyond the padding is never counted.

Adaptive average pooling to (OH, OW)
    window oh covers rows floor(oh*H/OH) .. ceil((oh + 1)*H/OH) - 1; windows may overlap
    (when OH does not divide H) and differ in size, so each output divides by its own area.
"""
from __future__ import annotations

import numbers

from ._checks import require_float, require_int_array, require_shape
from ._xp import get_xp
from .conv import int_pair

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward",
           "avg_pool2d_backward", "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward"]


# ---------------------------------------------------------------------------------------
# geometry (shared with the fast CPU version)

def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool_geometry(op, x_shape, kernel, stride, padding, dilation, ceil_mode):
    """Check the arguments; return (N, C, H, W, OH, OW, k, s, p, d) with (h, w) pairs."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x must be a 4-D NCHW array, got shape {tuple(x_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    k = int_pair(op, "kernel_size", kernel, 1)
    s = k if stride is None else int_pair(op, "stride", stride, 1)   # PyTorch: stride=kernel
    p = int_pair(op, "padding", padding, 0)
    d = int_pair(op, "dilation", dilation, 1)
    if not isinstance(ceil_mode, (bool, numbers.Integral)):
        raise ValueError(f"{op}: ceil_mode must be a bool, got {ceil_mode!r}")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k} "
                         f"(i.e. <= {(k[0] // 2, k[1] // 2)})")
    OH = pool_output_size(H, k[0], s[0], p[0], d[0], bool(ceil_mode))
    OW = pool_output_size(W, k[1], s[1], p[1], d[1], bool(ceil_mode))
    if OH < 1 or OW < 1:
        raise ValueError(f"{op}: input {H}x{W} is too small for kernel {k}, dilation {d}, "
                         f"padding {p}: the output would be {OH}x{OW}")
    return N, C, H, W, OH, OW, k, s, p, d


def _padded(xp, x, p, OH, OW, k, s, d, fill):
    """x padded by p on the top/left and enough on the bottom/right to hold every tap."""
    N, C, H, W = x.shape
    bottom = max(p[0], (OH - 1) * s[0] + d[0] * (k[0] - 1) + 1 - H - p[0])
    right = max(p[1], (OW - 1) * s[1] + d[1] * (k[1] - 1) + 1 - W - p[1])
    out = xp.full((N, C, p[0] + H + bottom, p[1] + W + right), fill, dtype=x.dtype)
    out[:, :, p[0]:p[0] + H, p[1]:p[1] + W] = x
    return out


def _tap(a, i, j, OH, OW, s, d):
    """Tap (i, j) of every window: a[..., oh*sh + i*dh, ow*sw + j*dw] for all (oh, ow)."""
    return a[..., i * d[0]: i * d[0] + s[0] * (OH - 1) + 1: s[0],
                  j * d[1]: j * d[1] + s[1] * (OW - 1) + 1: s[1]]


# ---------------------------------------------------------------------------------------
# max pooling

def max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode):
    """(y, argmax): argmax[n, c, oh, ow] = h*W + w of the winning pixel (int64)."""
    op = "max_pool2d_forward"
    require_float(op, x=x)
    N, C, H, W, OH, OW, k, s, p, d = pool_geometry(op, x.shape, kernel, stride, padding,
                                                   dilation, ceil_mode)
    xp = get_xp(x)
    xpad = _padded(xp, x, p, OH, OW, k, s, d, -xp.inf)
    # where each padded position sits in the real plane (-1 = padding)
    inside = _padded(xp, xp.ones((1, 1, H, W), dtype=bool), p, OH, OW, k, s, d, False)[0, 0]
    rows = xp.arange(xpad.shape[2]) - p[0]
    cols = xp.arange(xpad.shape[3]) - p[1]
    flat = xp.where(inside, rows[:, None] * W + cols[None, :], -1)
    best = xp.full((N, C, OH, OW), -xp.inf, dtype=x.dtype)
    argmax = xp.full((N, C, OH, OW), -1, dtype=xp.int64)
    for i in range(k[0]):
        for j in range(k[1]):
            value, where = _tap(xpad, i, j, OH, OW, s, d), _tap(flat, i, j, OH, OW, s, d)
            # first real tap always taken; later ones on a strict > (first max wins) or NaN
            take = (value > best) | xp.isnan(value) | ((argmax < 0) & (where >= 0))
            best = xp.where(take, value, best)
            argmax = xp.where(take, where, argmax)
    return best, argmax


def max_pool2d_backward(dy, argmax, x_shape):
    """dx[n, c].flat[argmax] += dy, with repeated winners accumulating."""
    op = "max_pool2d_backward"
    require_float(op, dy=dy)
    require_int_array(op, "argmax", argmax)
    require_shape(op, "argmax", argmax, dy.shape, "the shape of dy")
    if len(x_shape) != 4 or tuple(x_shape[:2]) != tuple(dy.shape[:2]):
        raise ValueError(f"{op}: x_shape must be (N, C, H, W) with N, C = {tuple(dy.shape[:2])}"
                         f" (from dy), got {tuple(x_shape)}")
    xp = get_xp(dy)
    N, C, H, W = x_shape
    dx = xp.zeros((N * C, H * W), dtype=dy.dtype)
    plane = xp.arange(N * C).reshape(N * C, 1)
    xp.add.at(dx, (plane, argmax.reshape(N * C, -1)), dy.reshape(N * C, -1))
    return dx.reshape(N, C, H, W)


# ---------------------------------------------------------------------------------------
# average pooling

def _avg_divisor(xp, dtype, H, W, OH, OW, k, s, p, count_include_pad):
    """(OH, OW) divisors, PyTorch's rule (see the module docstring)."""
    def one_axis(size, out, k, s, p):
        start = xp.arange(out) * s - p
        end = xp.minimum(start + k, size + p)          # ceil_mode overhang never counts
        padded_len = end - start
        real_len = xp.minimum(end, size) - xp.maximum(start, 0)
        return padded_len if count_include_pad else real_len
    dh = one_axis(H, OH, k[0], s[0], p[0])
    dw = one_axis(W, OW, k[1], s[1], p[1])
    return (dh[:, None] * dw[None, :]).astype(dtype)


def avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad):
    op = "avg_pool2d_forward"
    require_float(op, x=x)
    N, C, H, W, OH, OW, k, s, p, d = pool_geometry(op, x.shape, kernel, stride, padding, 1,
                                                   ceil_mode)
    xp = get_xp(x)
    xpad = _padded(xp, x, p, OH, OW, k, s, d, 0)
    total = xp.zeros((N, C, OH, OW), dtype=x.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            total += _tap(xpad, i, j, OH, OW, s, d)
    return total / _avg_divisor(xp, x.dtype, H, W, OH, OW, k, s, p, count_include_pad)


def avg_pool2d_backward(dy, x_shape, kernel, stride, padding, ceil_mode, count_include_pad):
    """Each window spreads dy / divisor evenly over its taps; overlaps add."""
    op = "avg_pool2d_backward"
    require_float(op, dy=dy)
    N, C, H, W, OH, OW, k, s, p, d = pool_geometry(op, x_shape, kernel, stride, padding, 1,
                                                   ceil_mode)
    require_shape(op, "dy", dy, (N, C, OH, OW), "the pooled output of x_shape")
    xp = get_xp(dy)
    share = dy / _avg_divisor(xp, dy.dtype, H, W, OH, OW, k, s, p, count_include_pad)
    dxpad = _padded(xp, xp.zeros((N, C, H, W), dtype=dy.dtype), p, OH, OW, k, s, d, 0)
    for i in range(k[0]):
        for j in range(k[1]):
            _tap(dxpad, i, j, OH, OW, s, d)[...] += share
    return xp.ascontiguousarray(dxpad[:, :, p[0]:p[0] + H, p[1]:p[1] + W])


# ---------------------------------------------------------------------------------------
# adaptive average pooling

def adaptive_windows(size: int, out: int):
    """[(start, end)] of each of the `out` windows over `size` (PyTorch's rule)."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _adaptive_check(op, x_shape, output_size):
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x must be a 4-D NCHW array, got shape {tuple(x_shape)}")
    oh, ow = int_pair(op, "output_size", output_size, 1)
    return oh, ow


def adaptive_avg_pool2d_forward(x, output_size):
    op = "adaptive_avg_pool2d_forward"
    require_float(op, x=x)
    OH, OW = _adaptive_check(op, x.shape, output_size)
    xp = get_xp(x)
    N, C, H, W = x.shape
    y = xp.empty((N, C, OH, OW), dtype=x.dtype)
    for oh, (h0, h1) in enumerate(adaptive_windows(H, OH)):
        for ow, (w0, w1) in enumerate(adaptive_windows(W, OW)):
            y[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def adaptive_avg_pool2d_backward(dy, x_shape):
    op = "adaptive_avg_pool2d_backward"
    require_float(op, dy=dy)
    _adaptive_check(op, x_shape, dy.shape[2:] if dy.ndim == 4 else (0, 0))
    if dy.ndim != 4 or tuple(dy.shape[:2]) != tuple(x_shape[:2]):
        raise ValueError(f"{op}: dy must have shape ({x_shape[0]}, {x_shape[1]}, OH, OW) "
                         f"for x_shape {tuple(x_shape)}, got {tuple(dy.shape)}")
    xp = get_xp(dy)
    N, C, H, W = x_shape
    OH, OW = dy.shape[2:]
    dx = xp.zeros((N, C, H, W), dtype=dy.dtype)
    for oh, (h0, h1) in enumerate(adaptive_windows(H, OH)):
        for ow, (w0, w1) in enumerate(adaptive_windows(W, OW)):
            area = (h1 - h0) * (w1 - w0)
            dx[:, :, h0:h1, w0:w1] += dy[:, :, oh:oh + 1, ow:ow + 1] / area
    return dx
