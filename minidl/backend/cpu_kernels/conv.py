"""2-D convolution on the CPU: im2col + OpenBLAS GEMM, one chunk of images at a time.

Same maths and same im2col layout as `minidl/backend/reference/conv.py` (read that first).
What changes here is only how memory is touched, which is what decides the speed once the
GEMMs are as fast as they get (OpenBLAS on contiguous operands):

* im2col is a serial Numba loop that writes each row of cols front to back (one output
  stream); it measured 1.3x faster than NumPy's kh*kw strided slice copies.
* col2im is a serial Numba loop that walks one (image, channel) plane at a time and adds all
  kh*kw taps into it while it sits in L1; NumPy's per-tap slice adds re-read the whole input
  gradient kh*kw times and were ~2x slower.
* The batch is processed in chunks of images whose columns fill about CHUNK_BYTES: im2col
  of a chunk, its GEMMs, then the next chunk. The full (C*kh*kw, N*OH*OW) column matrix is
  never built: for the MNIST CNN's second conv it is 9 MB, six times the layer's input. So
  the forward saves nothing (`saved` is None) and the weight gradient rebuilds each chunk's
  columns from x: one more im2col pass (~5% of the layer's time) for a training step whose
  peak memory is then close to PyTorch's instead of 2x it. A chunk still gives the GEMMs
  thousands of columns, where OpenBLAS runs at full speed.
* Temporaries (a chunk's columns, the GEMM output before the NCHW transpose, dy as a matrix)
  are plain arrays freed when the call returns. A fresh multi-megabyte array costs a page
  fault per 4 KiB the first time it is written (up to 10x a write to warm memory), but the
  CPU backend tunes malloc to keep freed memory (minidl/backend/cpu.py), so the next call's
  temporaries land on the same warm pages. Keeping them alive between calls instead
  (`scratch` below, still used by attention) would add their size to every later layer's
  memory peak.
"""
from __future__ import annotations

import threading

import numba
import numpy as np

from ..reference._checks import require_float
from ..reference.conv import check_conv_args, conv_geometry, shape_of

__all__ = ["im2col", "col2im", "conv2d_forward", "conv2d_backward"]

# ---------------------------------------------------------------------------------------
# scratch buffers

_SCRATCH = threading.local()
_SCRATCH_MAX_BYTES = 256 << 20   # larger temporaries are allocated fresh, not kept alive


def scratch(name: str, shape, dtype) -> np.ndarray:
    """A C-contiguous array of `shape` that is reused by later calls with the same `name`.

    Its contents are garbage. Only for temporaries that die before the caller returns: a
    scratch array must never be returned, saved for backward, or used by two live values
    under the same name. Buffers are per thread, so threads never share one.
    """
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if nbytes > _SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype)
    pool = getattr(_SCRATCH, "pool", None)
    if pool is None:
        pool = _SCRATCH.pool = {}
    buf = pool.get(name)
    if buf is None or buf.nbytes < nbytes:
        buf = pool[name] = np.empty(max(nbytes, 1), np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


# ---------------------------------------------------------------------------------------
# im2col / col2im

def _padded(x, p):
    """x with p[0] zero rows and p[1] zero columns on each side."""
    if p == (0, 0):
        return x
    N, C, H, W = x.shape
    xp = np.empty((N, C, H + 2 * p[0], W + 2 * p[1]), x.dtype)
    xp[:, :, :p[0]] = 0
    xp[:, :, H + p[0]:] = 0
    xp[:, :, :, :p[1]] = 0
    xp[:, :, :, W + p[1]:] = 0
    xp[:, :, p[0]:p[0] + H, p[1]:p[1] + W] = x
    return xp


# Numba trap: `a[i + k]` with an index that may be negative compiles to a bounds "wrap
# around" select that blocks vectorisation. Indexing a slice view with the loop counter
# itself (`dst[ow]`, ow >= 0 by construction) avoids it: measured 2.2x faster for col2im.

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _im2col_kernel(xp, kh, kw, sh, sw, dh, dw, OH, OW, cols):
    """cols[(c*kh + i)*kw + j, (n*OH + oh)*OW + ow] = xp[n, c, oh*sh + i*dh, ow*sw + j*dw]."""
    N, C = xp.shape[0], xp.shape[1]
    L = OH * OW
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = cols[(c * kh + i) * kw + j]      # written front to back: one stream
                for n in range(N):
                    for oh in range(OH):
                        dst = row[n * L + oh * OW:]
                        src = xp[n, c, oh * sh + i * dh, j * dw:]
                        if sw == 1:
                            for ow in range(OW):
                                dst[ow] = src[ow]
                        else:
                            for ow in range(OW):
                                dst[ow] = src[ow * sw]


def im2col(x, kh, kw, stride, padding, dilation):
    """(N, C, H, W) -> cols (C*kh*kw, N*OH*OW), layout as in the reference."""
    require_float("im2col", x=x)
    N, C, H, W, OH, OW, s, p, d = conv_geometry("im2col", x.shape, kh, kw, stride, padding,
                                                dilation)
    xp = _padded(np.ascontiguousarray(x), p)
    cols = np.empty((C * kh * kw, N * OH * OW), dtype=x.dtype)
    _im2col_kernel(xp, kh, kw, s[0], s[1], d[0], d[1], OH, OW, cols)
    return cols


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _col2im_kernel(cols, kh, kw, sh, sw, dh, dw, OH, OW, dxp):
    """dxp (N, C, Hp, Wp) = sum over taps of cols, for an already padded input gradient."""
    N, C, Hp, Wp = dxp.shape
    L = OH * OW
    for n in range(N):
        for c in range(C):
            # one (n, c) plane at a time: all kh*kw taps are added while it sits in L1
            for h in range(Hp):
                for w in range(Wp):
                    dxp[n, c, h, w] = 0
            for i in range(kh):
                for j in range(kw):
                    row = cols[(c * kh + i) * kw + j]
                    for oh in range(OH):
                        src = row[n * L + oh * OW:]
                        dst = dxp[n, c, oh * sh + i * dh, j * dw:]
                        # overlapping windows: several (i, j, oh, ow) hit one pixel -> +=
                        if sw == 1:
                            for ow in range(OW):
                                dst[ow] += src[ow]
                        else:
                            for ow in range(OW):
                                dst[ow * sw] += src[ow]


def _col2im_checked(cols, x_shape, kh, kw, s, p, d, N, C, H, W, OH, OW):
    if p == (0, 0):
        dx = np.empty((N, C, H, W), dtype=cols.dtype)
        _col2im_kernel(cols, kh, kw, s[0], s[1], d[0], d[1], OH, OW, dx)
        return dx
    dxp = np.empty((N, C, H + 2 * p[0], W + 2 * p[1]), cols.dtype)
    _col2im_kernel(cols, kh, kw, s[0], s[1], d[0], d[1], OH, OW, dxp)
    return dxp[:, :, p[0]:p[0] + H, p[1]:p[1] + W].copy()


def col2im(cols, x_shape, kh, kw, stride, padding, dilation):
    """The adjoint of im2col: scatter-add cols (C*kh*kw, N*OH*OW) back to x_shape."""
    require_float("col2im", cols=cols)
    N, C, H, W, OH, OW, s, p, d = conv_geometry("col2im", x_shape, kh, kw, stride, padding,
                                                dilation)
    if tuple(cols.shape) != (C * kh * kw, N * OH * OW):
        raise ValueError(f"col2im: cols must have shape {(C * kh * kw, N * OH * OW)} for "
                         f"x_shape {tuple(x_shape)}, got {tuple(cols.shape)}")
    cols = np.ascontiguousarray(cols)
    return _col2im_checked(cols, x_shape, kh, kw, s, p, d, N, C, H, W, OH, OW)


# ---------------------------------------------------------------------------------------
# convolution

CHUNK_BYTES = 4 << 20   # per chunk: the larger of its columns and its output matrix


def _chunks(N, K, O, L_img, itemsize):
    """Image ranges [n0, n1) of about CHUNK_BYTES each (equal sizes, at least one image)."""
    per_image = max(K, O) * L_img * itemsize
    count = -(-N * per_image // CHUNK_BYTES)            # ceil
    count = max(1, min(N, count))
    size = -(-N // count)
    return [(n0, min(N, n0 + size)) for n0 in range(0, N, size)]


def _chunk_buffers(chunks, K, O, L_img, dtype):
    """Flat buffers for the largest chunk's columns (K rows) and output matrix (O rows),
    made once per call so that one chunk's arrays are never alive next to the last one's."""
    largest = max(n1 - n0 for n0, n1 in chunks) * L_img
    return np.empty(K * largest, dtype), np.empty(O * largest, dtype)


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    """y (N, O, OH, OW) and saved = None (the backward rebuilds columns chunk by chunk)."""
    require_float("conv2d_forward", x=x, weight=weight, bias=bias)
    check_conv_args("conv2d_forward", x.shape, weight, bias, groups)
    O, Cg, kh, kw = weight.shape
    N, C, H, W, OH, OW, s, p, d = conv_geometry("conv2d_forward", x.shape, kh, kw, stride,
                                                padding, dilation)
    L_img, Og, Kg = OH * OW, O // groups, Cg * kh * kw
    xp = _padded(np.ascontiguousarray(x), p)
    w3 = np.ascontiguousarray(weight).reshape(groups, Og, Kg)
    y = np.empty((N, O, L_img), dtype=x.dtype)
    chunks = _chunks(N, C * kh * kw, O, L_img, x.dtype.itemsize)
    cols_buf, out_buf = _chunk_buffers(chunks, C * kh * kw, O, L_img, x.dtype)
    for n0, n1 in chunks:
        Lc = (n1 - n0) * L_img
        cols = cols_buf[:C * kh * kw * Lc].reshape(groups, Kg, Lc)
        _im2col_kernel(xp[n0:n1], kh, kw, s[0], s[1], d[0], d[1], OH, OW,
                       cols.reshape(C * kh * kw, Lc))
        y2 = out_buf[:O * Lc].reshape(groups, Og, Lc)
        for g in range(groups):
            np.matmul(w3[g], cols[g], out=y2[g])
        # (O, n, OH*OW) -> (n, O, OH*OW), adding the bias during the copy we must make anyway
        y_on = y2.reshape(O, n1 - n0, L_img).transpose(1, 0, 2)
        if bias is not None:
            np.add(y_on, bias.reshape(O, 1), out=y[n0:n1])
        else:
            np.copyto(y[n0:n1], y_on)
    return y.reshape(N, O, OH, OW), None


def conv2d_backward(dy, x, weight, saved, stride, padding, dilation, groups,
                    need_input_grad, need_weight_grad, need_bias_grad):
    """(dx | None, dweight | None, dbias | None); `x` may be just the input's shape.

    The input gradient needs only x's shape. The weight gradient needs the input data, whose
    columns it rebuilds one chunk at a time (`saved` may hold the reference's full column
    matrix; it is then used instead).
    """
    op = "conv2d_backward"
    require_float(op, dy=dy, weight=weight)
    x_shape = shape_of(x)
    check_conv_args(op, x_shape, weight, None, groups)
    O, Cg, kh, kw = weight.shape
    N, C, H, W, OH, OW, s, p, d = conv_geometry(op, x_shape, kh, kw, stride, padding, dilation)
    if tuple(dy.shape) != (N, O, OH, OW):
        raise ValueError(f"{op}: dy must have shape {(N, O, OH, OW)} (the forward's output), "
                         f"got {tuple(dy.shape)}")
    if need_weight_grad and saved is None and isinstance(x, (tuple, list)):
        raise ValueError(f"{op}: the weight gradient needs the input data (or the saved "
                         f"columns from conv2d_forward), but x was given only as a shape "
                         f"{tuple(x)}")
    L_img, Og, Kg = OH * OW, O // groups, Cg * kh * kw
    dt = dy.dtype
    dy3 = np.ascontiguousarray(dy).reshape(N, O, L_img)
    w3 = np.ascontiguousarray(weight).reshape(groups, Og, Kg)
    dbias = np.zeros(O, dtype=dt) if need_bias_grad else None
    dweight = np.zeros((groups, Og, Kg), dtype=dt) if need_weight_grad else None
    dx = np.empty((N, C, H, W), dtype=dt) if need_input_grad else None
    if need_weight_grad and saved is None:
        xp = _padded(np.ascontiguousarray(x), p)
    chunks = _chunks(N, C * kh * kw, O, L_img, dt.itemsize)
    cols_buf, out_buf = _chunk_buffers(chunks, C * kh * kw, O, L_img, dt)
    for n0, n1 in chunks:
        Lc = (n1 - n0) * L_img
        # this chunk of dy as the (O, n*OH*OW) matrix of the forward GEMM: one transposing copy
        dy2 = out_buf[:O * Lc].reshape(groups, Og, Lc)
        np.copyto(dy2.reshape(O, n1 - n0, L_img), dy3[n0:n1].transpose(1, 0, 2))
        if need_bias_grad:
            dbias += dy2.reshape(O, Lc).sum(axis=1)
        cols = cols_buf[:C * kh * kw * Lc].reshape(groups, Kg, Lc)
        if need_weight_grad:
            if saved is None:
                _im2col_kernel(xp[n0:n1], kh, kw, s[0], s[1], d[0], d[1], OH, OW,
                               cols.reshape(C * kh * kw, Lc))
            else:
                cols[...] = saved.reshape(groups, Kg, N, L_img)[:, :, n0:n1].reshape(
                    groups, Kg, Lc)
            for g in range(groups):
                dweight[g] += dy2[g] @ cols[g].T    # BLAS reads the .T view in place
        if need_input_grad:
            for g in range(groups):                 # the columns are no longer needed:
                np.matmul(w3[g].T, dy2[g], out=cols[g])   # their buffer takes dcols
            _col2im_into(cols.reshape(C * kh * kw, Lc), kh, kw, s, p, d, OH, OW,
                         dx[n0:n1])
    if need_weight_grad:
        dweight = dweight.reshape(weight.shape)
    return dx, dweight, dbias


def _col2im_into(cols, kh, kw, s, p, d, OH, OW, dx):
    """col2im of a chunk's columns into dx (n, C, H, W), a slice of the full gradient."""
    if p == (0, 0):
        _col2im_kernel(cols, kh, kw, s[0], s[1], d[0], d[1], OH, OW, dx)
        return
    n, C, H, W = dx.shape
    dxp = np.empty((n, C, H + 2 * p[0], W + 2 * p[1]), cols.dtype)
    _col2im_kernel(cols, kh, kw, s[0], s[1], d[0], d[1], OH, OW, dxp)
    dx[...] = dxp[:, :, p[0]:p[0] + H, p[1]:p[1] + W]
