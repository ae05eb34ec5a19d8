"""2-D convolution on the CPU: im2col + OpenBLAS GEMM, one chunk of images at a time.

Same maths and same im2col layout as `minidl/backend/reference/conv.py` (read that first).
What changes here is only how memory is touched, which is what decides the speed once the
GEMMs are as fast as they get (OpenBLAS on contiguous operands):

* im2col is a serial Numba loop that writes each row of cols front to back (one output
  stream); it measured 1.3x faster than NumPy's kh*kw strided slice copies. For a column
  stride and dilation of 1 and outputs at least 8 wide, a second version copies each output
  row as 8-float vector blocks (written as LLVM vector loads/stores, see "the stride-1 fast
  path"): 2.2x faster again at 13x13 (0.20 -> 0.09 ms per 22-image chunk).
* col2im is a serial Numba loop that walks one (image, channel) plane at a time and adds all
  kh*kw taps into it while it sits in L1; NumPy's per-tap slice adds re-read the whole input
  gradient kh*kw times and were ~2x slower. Its stride-1 version adds vector blocks, with a
  store-forwarding trap explained there (0.24 -> 0.14 ms per chunk).
* The transposes between the GEMMs' (O, n*OH*OW) matrices and NCHW arrays are Numba copies
  that add the bias (forward) or sum the bias gradient (backward) on the way: 3x faster than
  NumPy's transposed-view copy followed by a separate sum.
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
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from . import winograd
from .. import cpu_pool
from ._lanes import LANES, is_flat_float, lane_pointer
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


# --- the stride-1 fast path ---------------------------------------------------------------
#
# With sw == dw == 1 (the common case), each output row of a column row is ONE contiguous
# run of OW input pixels: cols[r, base + oh*OW : base + oh*OW + OW] = xp[n, c, h, j : j + OW].
# The generic loops above copy such a run element by element. For OW = 11 (a 13x13 input) the
# loop is shorter than one 16-float vector, so LLVM's vectorised body never runs and the
# whole copy is scalar: about one element per cycle, 2-3x slower than memory allows. (The
# same copy written as `for k in range(8)` blocks compiled to mostly scalar moves as well,
# and was slower still.) So we say what we want directly, as two LLVM operations: load one
# <8 x float> vector, store it. A run of OW >= 8 is covered by blocks of 8 starting at
# 0, 8, 16, ... and one last block that ENDS at OW, shifted back so it overlaps the one before
# (for OW = 11: lanes 0-7, then 3-10). Copying lanes 3-7 twice is harmless (same values), and
# no load or store ever leaves the run, so there is no bounds case at the edges of the arrays.

@intrinsic
def _copy_lanes(typingctx, dst, di, src, si):
    """dst[di : di + 8] = src[si : si + 8]: one unaligned vector load and one store.

    No bounds checks: the caller guarantees that both ranges lie inside the arrays.
    """
    if not (is_flat_float(dst) and src == dst):
        return None

    def codegen(context, builder, sig, args):
        d = lane_pointer(context, builder, sig.args[0], args[0], args[1])
        s = lane_pointer(context, builder, sig.args[2], args[2], args[3])
        builder.store(builder.load(s, align=1), d, align=1)
        return context.get_dummy_value()
    return types.void(dst, di, src, si), codegen


@intrinsic
def _add_lanes(typingctx, dst, di, src, si, first):
    """dst[di + k] += src[si + k] for the lanes first <= k < 8; lanes k < first are kept.

    The kept lanes get -0.0 added instead of src[si + k] (a vector select, then one vector
    add): x + (-0.0) == x for every x, including x = -0.0 (+0.0 would turn -0.0 into +0.0),
    inf and NaN. A select, not a multiply by a 0/1 mask: 0 * inf would be NaN.
    """
    if not (is_flat_float(dst) and src == dst and isinstance(first, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        d = lane_pointer(context, builder, sig.args[0], args[0], args[1])
        s = lane_pointer(context, builder, sig.args[2], args[2], args[3])
        vec = d.type.pointee
        i64, i32 = ir.IntType(64), ir.IntType(32)
        lane_ids = ir.Constant(ir.VectorType(i64, LANES), list(range(LANES)))
        first = context.cast(builder, args[4], sig.args[4], types.int64)
        splat = builder.insert_element(ir.Constant(ir.VectorType(i64, LANES), None), first,
                                       ir.Constant(i32, 0))
        splat = builder.shuffle_vector(splat, splat,
                                       ir.Constant(ir.VectorType(i32, LANES), [0] * LANES))
        keep = builder.icmp_signed(">=", lane_ids, splat)
        neg_zero = ir.Constant(vec, [-0.0] * LANES)
        add = builder.select(keep, builder.load(s, align=1), neg_zero)
        builder.store(builder.fadd(builder.load(d, align=1), add), d, align=1)
        return context.get_dummy_value()
    return types.void(dst, di, src, si, first), codegen


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _im2col_rows_kernel(xp, kh, kw, sh, dh, OH, OW, cols):
    """_im2col_kernel for sw == dw == 1 and OW >= 8, each run of OW pixels as vector blocks.

    Flat indices: pixel (n, c, h, w) of xp is xf[((n*C + c)*Hp + h)*Wp + w], and column row r
    starts at cf[r * N*OH*OW]. The source of output row oh is h = oh*sh + i*dh, w = j ... j+OW-1.
    """
    N, C, Hp, Wp = xp.shape
    L = OH * OW
    xf = xp.reshape(-1)          # both arrays are C-contiguous: free views
    cf = cols.reshape(-1)
    last = OW - LANES           # start of the last block, which ends exactly at OW
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                d = ((c * kh + i) * kw + j) * (N * L)   # row written front to back
                for n in range(N):
                    s = ((n * C + c) * Hp + i * dh) * Wp + j
                    for oh in range(OH):
                        o = 0
                        while o < last:
                            _copy_lanes(cf, d + o, xf, s + o)
                            o += LANES
                        _copy_lanes(cf, d + last, xf, s + last)
                        s += sh * Wp
                        d += OW


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _col2im_rows_kernel(cols, kh, kw, sh, dh, ph, pw, OH, OW, dx):
    """col2im for sw == dw == 1 and OW >= 8 into the UNPADDED dx (N, C, H, W).

    Each (c, n) plane of the padded gradient is summed in `acc` (Hp*Wp floats: it stays in
    L1), then its interior, the part inside the padding, is copied to dx. So padding needs no
    extra padded array. The loop runs c outer, n inner: for one c, the kh*kw column rows
    (c, i, j) are then each read front to back, 9 sequential streams the hardware prefetcher
    follows (n outer would jump between C*kh*kw rows, hundreds of streams).

    The blocks are those of _im2col_rows_kernel, but adding a lane twice would count it twice,
    so in the last, overlapping block the lanes the earlier blocks covered are masked out.

    Trap (store-to-load forwarding): a vector load that partly overlaps a store still in the
    CPU's store buffer cannot take its data from that store and waits ~10-20 cycles for it to
    reach the cache. Adding the last block right after the first one in the same row (lanes
    3-10 right after 0-7) did exactly that on every row: 1.6x SLOWER than the scalar loop.
    So for each tap we first add the full blocks of all OH rows, then, in a second pass, the
    last blocks: by then the overlapping stores have long left the store buffer (0.24 ->
    0.14 ms per chunk at 13x13; a scalar tail instead of the masked block was no better).
    """
    N, C, H, W = dx.shape
    Wp = W + 2 * pw
    Hp = H + 2 * ph
    L = OH * OW
    NL = N * L
    cf = cols.reshape(-1)
    acc = np.empty(Hp * Wp, dx.dtype)
    last = OW - LANES
    n_full = (OW - 1) // LANES           # blocks before the last one
    first = n_full * LANES - last        # lanes of the last block the full blocks covered
    for c in range(C):
        for n in range(N):
            acc[:] = 0
            for i in range(kh):
                for j in range(kw):
                    s0 = ((c * kh + i) * kw + j) * NL + n * L
                    a0 = i * dh * Wp + j
                    # overlapping windows: several (i, j, oh, ow) hit one pixel -> add
                    s, a = s0, a0
                    for oh in range(OH):
                        for b in range(n_full):
                            _add_lanes(acc, a + b * LANES, cf, s + b * LANES, 0)
                        s += OW
                        a += sh * Wp
                    s, a = s0, a0
                    for oh in range(OH):
                        _add_lanes(acc, a + last, cf, s + last, first)
                        s += OW
                        a += sh * Wp
            for h in range(H):
                row = dx[n, c, h]
                src = acc[(h + ph) * Wp + pw:]
                for w in range(W):
                    row[w] = src[w]


def _im2col_any(xp, kh, kw, s, d, OH, OW, cols):
    """im2col of the padded xp (n, C, Hp, Wp) into cols (C*kh*kw, n*OH*OW): fast path or not."""
    if s[1] == 1 and d[1] == 1 and OW >= LANES:
        _im2col_rows_kernel(xp, kh, kw, s[0], d[0], OH, OW, cols)
    else:
        _im2col_kernel(xp, kh, kw, s[0], s[1], d[0], d[1], OH, OW, cols)


def im2col(x, kh, kw, stride, padding, dilation):
    """(N, C, H, W) -> cols (C*kh*kw, N*OH*OW), layout as in the reference."""
    require_float("im2col", x=x)
    N, C, H, W, OH, OW, s, p, d = conv_geometry("im2col", x.shape, kh, kw, stride, padding,
                                                dilation)
    xp = _padded(np.ascontiguousarray(x), p)
    cols = np.empty((C * kh * kw, N * OH * OW), dtype=x.dtype)
    _im2col_any(xp, kh, kw, s, d, OH, OW, cols)
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
    dx = np.empty((N, C, H, W), dtype=cols.dtype)
    _col2im_into(cols, kh, kw, s, p, d, OH, OW, dx)
    return dx


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


# The GEMMs work on (O, n*OH*OW) matrices (an image's outputs are columns), but y and dy
# are (n, O, OH*OW): between the two, each chunk is transposed once per direction. These two
# kernels do that copy in contiguous OH*OW-long runs and fold in the work that needs the same
# data anyway, so the data is touched once instead of two or three times by NumPy calls.

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _columns_to_nchw(y2, bias, has_bias, y):
    """y[m, o, :] = y2[o, m*L : (m+1)*L] (+ bias[o]): the forward output, bias added in the copy.

    m outer: y is written front to back, while the GEMM output y2 (this chunk only) is still
    in cache. Without a bias the runs are copied, not given + 0.0, which would turn -0.0
    into +0.0.
    """
    n, O, L = y.shape
    for m in range(n):
        for o in range(O):
            src = y2[o, m * L:]
            dst = y[m, o]
            if has_bias:
                b = bias[o]
                for t in range(L):
                    dst[t] = src[t] + b
            else:
                for t in range(L):
                    dst[t] = src[t]


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _nchw_to_columns(dy, dy2, dbias, need_bias):
    """dy2[o, m*L : (m+1)*L] = dy[m, o, :], and dbias[o] += the sum of those values.

    o outer: dy2 is written front to back. Each run's sum is a vectorised float32 sum
    ('reassoc' lets LLVM keep 16 partial sums in the lanes, which is also more accurate than
    one running total), and the runs' sums of this chunk are totalled in a float64 scalar
    before one rounding into dbias: the bias gradient sums N*OH*OW terms, where a float32
    running total would lose digits.
    """
    n, O, L = dy.shape
    for o in range(O):
        total = 0.0                       # float64
        for m in range(n):
            src = dy[m, o]
            dst = dy2[o, m * L:]
            if need_bias:
                run = dy.dtype.type(0)
                for t in range(L):
                    v = src[t]
                    dst[t] = v
                    run += v
                total += run
            else:
                for t in range(L):
                    dst[t] = src[t]
        if need_bias:
            dbias[o] += total


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    """y (N, O, OH, OW) and saved = None (the backward rebuilds columns chunk by chunk)."""
    require_float("conv2d_forward", x=x, weight=weight, bias=bias)
    check_conv_args("conv2d_forward", x.shape, weight, bias, groups)
    O, Cg, kh, kw = weight.shape
    N, C, H, W, OH, OW, s, p, d = conv_geometry("conv2d_forward", x.shape, kh, kw, stride,
                                                padding, dilation)
    if winograd.eligible(x.shape, weight.shape, s, d, groups):
        # 3x3, stride 1: Winograd's algorithm does the same layer with 1/4 of the multiplies
        return winograd.conv3x3_forward(x, weight, bias, p), None
    L_img, Og, Kg = OH * OW, O // groups, Cg * kh * kw
    xp = _padded(np.ascontiguousarray(x), p)
    w3 = np.ascontiguousarray(weight).reshape(groups, Og, Kg)
    y = np.empty((N, O, L_img), dtype=x.dtype)
    bias_arr = np.ascontiguousarray(bias) if bias is not None else np.zeros(1, x.dtype)
    chunks = _chunks(N, C * kh * kw, O, L_img, x.dtype.itemsize)
    cols_buf, out_buf = _chunk_buffers(chunks, C * kh * kw, O, L_img, x.dtype)
    for n0, n1 in chunks:
        Lc = (n1 - n0) * L_img
        cols = cols_buf[:C * kh * kw * Lc].reshape(groups, Kg, Lc)
        _im2col_any(xp[n0:n1], kh, kw, s, d, OH, OW, cols.reshape(C * kh * kw, Lc))
        y2 = out_buf[:O * Lc].reshape(groups, Og, Lc)
        for g in range(groups):
            cpu_pool.matmul(w3[g], cols[g], out=y2[g])
        # (O, n, OH*OW) -> (n, O, OH*OW), adding the bias during the copy we must make anyway
        _columns_to_nchw(y2.reshape(O, Lc), bias_arr, bias is not None, y[n0:n1])
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
    if winograd.eligible(x_shape, weight.shape, s, d, groups) and not (
            need_weight_grad and isinstance(x, (tuple, list))):
        return winograd.conv3x3_backward(dy, x, weight, p, need_input_grad, need_weight_grad,
                                         need_bias_grad)
    L_img, Og, Kg = OH * OW, O // groups, Cg * kh * kw
    dt = dy.dtype
    dy3 = np.ascontiguousarray(dy).reshape(N, O, L_img)
    w3 = np.ascontiguousarray(weight).reshape(groups, Og, Kg)
    # Not a float64 array, even for the bias sum: a float32 step keeps float32 arrays (a
    # test checks). The kernel totals each chunk in a float64 scalar instead.
    dbias = np.zeros(O, dtype=dt) if need_bias_grad else None
    dbias_acc = dbias if need_bias_grad else np.zeros(1, dtype=dt)
    dweight = np.zeros((groups, Og, Kg), dtype=dt) if need_weight_grad else None
    dx = np.empty((N, C, H, W), dtype=dt) if need_input_grad else None
    if need_weight_grad and saved is None:
        xp = _padded(np.ascontiguousarray(x), p)
    chunks = _chunks(N, C * kh * kw, O, L_img, dt.itemsize)
    cols_buf, out_buf = _chunk_buffers(chunks, C * kh * kw, O, L_img, dt)
    for n0, n1 in chunks:
        Lc = (n1 - n0) * L_img
        # this chunk of dy as the (O, n*OH*OW) matrix of the forward GEMM: one transposing copy
        # (and the bias gradient summed during that copy)
        dy2 = out_buf[:O * Lc].reshape(groups, Og, Lc)
        _nchw_to_columns(dy3[n0:n1], dy2.reshape(O, Lc), dbias_acc, need_bias_grad)
        cols = cols_buf[:C * kh * kw * Lc].reshape(groups, Kg, Lc)
        if need_weight_grad:
            if saved is None:
                _im2col_any(xp[n0:n1], kh, kw, s, d, OH, OW, cols.reshape(C * kh * kw, Lc))
            else:
                cols[...] = saved.reshape(groups, Kg, N, L_img)[:, :, n0:n1].reshape(
                    groups, Kg, Lc)
            for g in range(groups):
                dweight[g] += cpu_pool.matmul(dy2[g], cols[g].T)   # BLAS reads the .T view
        if need_input_grad:
            for g in range(groups):                 # the columns are no longer needed:
                cpu_pool.matmul(w3[g].T, dy2[g], out=cols[g])   # their buffer takes dcols
            _col2im_into(cols.reshape(C * kh * kw, Lc), kh, kw, s, p, d, OH, OW,
                         dx[n0:n1])
    if need_weight_grad:
        dweight = dweight.reshape(weight.shape)
    return dx, dweight, dbias


def _col2im_into(cols, kh, kw, s, p, d, OH, OW, dx):
    """col2im of a chunk's columns into dx (n, C, H, W), a slice of the full gradient."""
    if s[1] == 1 and d[1] == 1 and OW >= LANES:
        _col2im_rows_kernel(cols, kh, kw, s[0], d[0], p[0], p[1], OH, OW, dx)
        return
    if p == (0, 0):
        _col2im_kernel(cols, kh, kw, s[0], s[1], d[0], d[1], OH, OW, dx)
        return
    n, C, H, W = dx.shape
    dxp = np.empty((n, C, H + 2 * p[0], W + 2 * p[1]), cols.dtype)
    _col2im_kernel(cols, kh, kw, s[0], s[1], d[0], d[1], OH, OW, dxp)
    dx[...] = dxp[:, :, p[0]:p[0] + H, p[1]:p[1] + W]
