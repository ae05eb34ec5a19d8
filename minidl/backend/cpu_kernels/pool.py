"""2-D pooling on the CPU: one serial Numba loop per op, one pass over the data.

Same maths, geometry and tie rules as `minidl/backend/reference/pool.py` (read that first).
The reference makes kh*kw passes over strided slices and, for max pooling, keeps a running
maximum and argmax array; here each output window is reduced in registers and written once,
with the window clipped to the real input (so padding is never materialised), one (H, W)
plane at a time so it stays in L1. (Vectorising across outputs with compare-and-blend rows
measured 2x slower here: stride-2 reads defeat it.)

Planes: N*C planes of H*W pixels are independent, so every kernel sees x as (N*C, H, W).
"""
from __future__ import annotations

import numba
import numpy as np

from ..reference._checks import require_float, require_int_array, require_shape
from ..reference import pool as _reference_pool
from ..reference.pool import pool_geometry, _adaptive_check

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward",
           "avg_pool2d_backward", "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward"]


# ---------------------------------------------------------------------------------------
# max pooling

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _taps(o, s, p, d, k, size):
    """Window o: its first input row h0 and the taps [lo, hi) with 0 <= h0 + i*d < size."""
    h0 = o * s - p
    lo = 0 if h0 >= 0 else (-h0 + d - 1) // d
    hi = 0 if h0 >= size else min(k, (size - 1 - h0) // d + 1)
    return h0, lo, max(lo, hi)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _max_pool_kernel(x, kh, kw, sh, sw, ph, pw, dh, dw, y, argmax):
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    for p in range(P):
        plane = x[p]
        for oh in range(OH):
            h0, ilo, ihi = _taps(oh, sh, ph, dh, kh, H)
            for ow in range(OW):
                w0, jlo, jhi = _taps(ow, sw, pw, dw, kw, W)
                # start at the first real tap, so a window of -inf still names a pixel
                best = plane[h0 + ilo * dh, w0 + jlo * dw]
                where = (h0 + ilo * dh) * W + w0 + jlo * dw
                seen_nan = False
                for i in range(ilo, ihi):
                    h = h0 + i * dh
                    for j in range(jlo, jhi):
                        v = plane[h, w0 + j * dw]
                        seen_nan |= v != v
                        if v > best:             # strictly greater: the first max wins
                            best = v
                            where = h * W + w0 + j * dw
                if seen_nan:
                    # rare path: NaN wins over everything, the last NaN over earlier ones.
                    # (Folding `or v != v` into the test above made the loop 1.4x slower.)
                    for i in range(ilo, ihi):
                        h = h0 + i * dh
                        for j in range(jlo, jhi):
                            v = plane[h, w0 + j * dw]
                            if v != v:
                                best = v
                                where = h * W + w0 + j * dw
                y[p, oh, ow] = best
                argmax[p, oh, ow] = where


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _max_pool_dense_kernel(x, kh, kw, sh, sw, y, argmax):
    """The common case (no padding, no dilation): every tap is real, no clipping.

    Same rules as _max_pool_kernel; the general kernel's clipping arithmetic made this case
    2x slower, and it is the pooling of every small CNN.
    """
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    for p in range(P):
        plane = x[p]
        for oh in range(OH):
            for ow in range(OW):
                best = plane[oh * sh, ow * sw]
                where = oh * sh * W + ow * sw
                seen_nan = False
                for i in range(kh):
                    for j in range(kw):
                        v = plane[oh * sh + i, ow * sw + j]
                        seen_nan |= v != v
                        if v > best:
                            best = v
                            where = (oh * sh + i) * W + ow * sw + j
                if seen_nan:
                    for i in range(kh):
                        for j in range(kw):
                            v = plane[oh * sh + i, ow * sw + j]
                            if v != v:
                                best = v
                                where = (oh * sh + i) * W + ow * sw + j
                y[p, oh, ow] = best
                argmax[p, oh, ow] = where


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _max_pool_2x2_kernel(x, y, argmax):
    """2x2 windows with stride 2, all inside x: the pooling of nearly every CNN.

    Written for the four taps explicitly, as compares and selects on two input rows, LLVM
    vectorises it across outputs; it measured ~9x faster than the dense kernel's tap loops
    on (64, 32, 26, 26). Same rules: the first maximum in row-major order wins, and a NaN
    wins over everything (the last NaN of the window)."""
    P = x.shape[0]
    W = x.shape[2]
    OH, OW = y.shape[1], y.shape[2]
    for p in range(P):
        for oh in range(OH):
            top = x[p, 2 * oh]
            bottom = x[p, 2 * oh + 1]
            y_row = y[p, oh]
            a_row = argmax[p, oh]
            first = 2 * oh * W
            seen_nan = False
            for ow in range(OW):
                a, b = top[2 * ow], top[2 * ow + 1]
                c, d = bottom[2 * ow], bottom[2 * ow + 1]
                best, where = a, 0
                if b > best:
                    best, where = b, 1
                if c > best:
                    best, where = c, W
                if d > best:
                    best, where = d, W + 1
                seen_nan |= (a != a) | (b != b) | (c != c) | (d != d)
                y_row[ow] = best
                a_row[ow] = first + 2 * ow + where
            if seen_nan:   # rare: redo the row's windows, letting the last NaN win
                for ow in range(OW):
                    for t in range(4):
                        offset = (t // 2) * W + t % 2
                        v = x[p, 2 * oh + t // 2, 2 * ow + t % 2]
                        if v != v:
                            y_row[ow] = v
                            a_row[ow] = first + 2 * ow + offset


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _max_unpool_kernel(dy, argmax, dx):
    P, L = dy.shape
    HW = dx.shape[1]
    for p in range(P):
        for q in range(HW):
            dx[p, q] = 0
        for o in range(L):
            k = argmax[p, o]
            if k < 0 or k >= HW:
                raise IndexError("max_pool2d_backward: argmax holds an index outside the "
                                 "H*W plane of x_shape")
            dx[p, k] += dy[p, o]     # overlapping windows may share a winner: add


def max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode):
    """(y, argmax: flat h*W + w per plane).

    argmax is int32 whenever an (H, W) plane has fewer than 2**31 pixels: it is kept alive
    from the forward to the backward, and half its int64 size is a visible part of a CNN
    step's memory peak (the MNIST CNN's first pool: 1.3 of 2.6 MiB saved). The price: LLVM
    vectorises the 2x2 kernel's narrowing int32 store less well, 0.28 -> 0.36 ms on
    (64, 32, 26, 26), about 1 % of that CNN's step. The op converts the indices to int64
    where a user sees them (return_indices=True)."""
    op = "max_pool2d_forward"
    require_float(op, x=x)
    N, C, H, W, OH, OW, k, s, p, d = pool_geometry(op, x.shape, kernel, stride, padding,
                                                   dilation, ceil_mode)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    index_dtype = np.int32 if H * W <= np.iinfo(np.int32).max else np.int64
    argmax = np.empty((N, C, OH, OW), dtype=index_dtype)
    planes = np.ascontiguousarray(x).reshape(N * C, H, W)
    # the unclipped kernels need every window inside x: no padding, no dilation, and no
    # partial last window (ceil_mode=True can add one that hangs over the edge)
    inside = (p == (0, 0) and d == (1, 1) and (OH - 1) * s[0] + k[0] <= H
              and (OW - 1) * s[1] + k[1] <= W)
    if inside and k == (2, 2) and s == (2, 2):
        _max_pool_2x2_kernel(planes, y.reshape(N * C, OH, OW), argmax.reshape(N * C, OH, OW))
    elif inside:
        _max_pool_dense_kernel(planes, k[0], k[1], s[0], s[1], y.reshape(N * C, OH, OW),
                               argmax.reshape(N * C, OH, OW))
    else:
        _max_pool_kernel(planes, k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1],
                         y.reshape(N * C, OH, OW), argmax.reshape(N * C, OH, OW))
    return y, argmax


def max_pool2d_backward(dy, argmax, x_shape):
    op = "max_pool2d_backward"
    require_float(op, dy=dy)
    require_int_array(op, "argmax", argmax)
    require_shape(op, "argmax", argmax, dy.shape, "the shape of dy")
    if len(x_shape) != 4 or tuple(x_shape[:2]) != tuple(dy.shape[:2]):
        raise ValueError(f"{op}: x_shape must be (N, C, H, W) with N, C = {tuple(dy.shape[:2])}"
                         f" (from dy), got {tuple(x_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    dx = np.empty((N, C, H, W), dtype=dy.dtype)
    _max_unpool_kernel(np.ascontiguousarray(dy).reshape(N * C, -1),
                       np.ascontiguousarray(argmax).reshape(N * C, -1),  # int32 or int64
                       dx.reshape(N * C, H * W))
    return dx


# ---------------------------------------------------------------------------------------
# average pooling
#
# The reference's kh*kw strided-slice sums measured 2x faster than a per-window Numba loop
# (the window clipping and divisor arithmetic per output cost more than the adds), so the
# CPU backend uses it as is.

avg_pool2d_forward = _reference_pool.avg_pool2d_forward
avg_pool2d_backward = _reference_pool.avg_pool2d_backward


# ---------------------------------------------------------------------------------------
# adaptive average pooling
#
# Two common cases are plain reductions NumPy does well: global pooling to (1, 1), and sizes
# that divide evenly (equal, disjoint windows, i.e. average pooling with kernel = stride).
# Only uneven windows take the Numba loop, which measured 3x faster than the reference there.

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _adaptive_kernel(x, y, backward):
    """Forward: y = window means of x. Backward (x is dx, y is dy): spread dy / area."""
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    for p in range(P):
        plane = x[p]
        if backward:
            for h in range(H):
                for w in range(W):
                    plane[h, w] = 0
        for oh in range(OH):
            h0, h1 = (oh * H) // OH, -(-((oh + 1) * H) // OH)     # floor, ceil
            for ow in range(OW):
                w0, w1 = (ow * W) // OW, -(-((ow + 1) * W) // OW)
                area = (h1 - h0) * (w1 - w0)
                if backward:
                    share = y[p, oh, ow] / area
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            plane[h, w] += share
                else:
                    total = 0.0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            total += plane[h, w]
                    y[p, oh, ow] = total / area


def adaptive_avg_pool2d_forward(x, output_size):
    op = "adaptive_avg_pool2d_forward"
    require_float(op, x=x)
    OH, OW = _adaptive_check(op, x.shape, output_size)
    N, C, H, W = x.shape
    if (OH, OW) == (1, 1):                    # global average pooling: one NumPy reduction
        return x.mean(axis=(2, 3), keepdims=True)
    if H % OH == 0 and W % OW == 0:           # equal, disjoint windows: plain average pooling
        k = (H // OH, W // OW)
        return avg_pool2d_forward(x, k, k, 0, False, True)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    _adaptive_kernel(np.ascontiguousarray(x).reshape(N * C, H, W), y.reshape(N * C, OH, OW),
                     False)
    return y


def adaptive_avg_pool2d_backward(dy, x_shape):
    op = "adaptive_avg_pool2d_backward"
    require_float(op, dy=dy)
    if dy.ndim != 4 or len(x_shape) != 4 or tuple(dy.shape[:2]) != tuple(x_shape[:2]):
        raise ValueError(f"{op}: dy must have shape (N, C, OH, OW) matching x_shape "
                         f"{tuple(x_shape)} in N and C, got {tuple(dy.shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    OH, OW = dy.shape[2:]
    dx = np.empty((N, C, H, W), dtype=dy.dtype)
    if (OH, OW) == (1, 1):
        np.multiply(dy, dy.dtype.type(1.0 / (H * W)), out=dx)     # broadcast over the plane
        return dx
    if H % OH == 0 and W % OW == 0:
        k = (H // OH, W // OW)
        return avg_pool2d_backward(dy, x_shape, k, k, 0, False, True)
    _adaptive_kernel(dx.reshape(N * C, H, W), np.ascontiguousarray(dy).reshape(N * C, OH, OW),
                     True)
    return dx
