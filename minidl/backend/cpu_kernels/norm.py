"""Layer norm and RMS norm over the last axis, and batch norm over channels: fast CPU kernels
(maths in reference/norm.py).

One serial Numba loop per row, all passes over the row while it sits in L1 cache: mean, the
two-pass variance, then the normalised output. The backward does one pass for the two row
sums it needs (sum g, sum g*xhat), and a second pass for dx that also accumulates
dweight/dbias.

Where the time goes at (4096, 512) float32: the arrays are 8 MB each, so the kernels stream
from memory (L3 or DRAM, ~32 MB per backward counting dx's write) and the arithmetic is
nearly free. What matters is how much memory the core keeps in flight. The first pass over a
row is the one that waits for memory; the second finds the row in L1. Three rules follow:
  - keep the first pass lean. The dweight/dbias column sums (a load and a store of two
    L1-resident partial arrays per element) used to sit in the first pass; moved to the
    second pass, the same work costs ~10 % less time: fewer instructions per cache line let
    more cache lines be requested at once;
  - prefetch_row(x, i + ahead) after the first pass: later rows start arriving while this
    one is finished (PREFETCH_BYTES ahead: 4 rows here; 15-20 % of the backward from DRAM);
  - a large dx (>= STREAM_MIN_BYTES, rows of whole cache lines) is computed row by row into
    an L1 buffer and written with streaming stores, which skip reading dx's old contents
    from memory first: 8 of the backward's 32 MB. In the benchmark suite (PyTorch's runs
    interleaved, so the caches hold little of ours) forward + backward went 1.0 -> 0.85 ms
    (medians of 3 runs 1.00 vs 0.87). The trade-off, measured too: when the whole working
    set stays in L3 (our kernels alone in a loop) streaming is ~3 % slower, and the
    forward's y, rewritten into a reused, cached block, was 25 % slower streamed, so y
    stays on normal stores.
Before these changes, forward + backward took 1.32 ms against PyTorch's 0.82 (2 threads).

Threads. Rows are independent, so a large input's rows are dealt out to minidl's CPU threads,
a contiguous share each (`cpu_pool.split_range`); the kernels run without the GIL. In the
backward each share sums its own dweight/dbias, and the shares' sums are added at the end.
Measured on 2 cores at (4096, 512) float32: forward 0.29 -> 0.16 ms, backward 0.56 -> 0.27.
The two cores do not share one memory stream's limit here: each core's loads in flight are
the bound (see above), so two cores move twice as much. At (4096, 128) the gain was under
15 % (the hand-off and the second core's cold caches cost about what half the rows save),
so inputs below PARALLEL_MIN_ELEMENTS stay on one thread.

A missing weight or bias is passed to the kernels as ones / zeros, so each kernel has a single
compiled version per dtype instead of one per None-combination.

Trap: dweight = sum over rows of dy*xhat adds up to millions of terms in float32. Summed one
row after another, rounding error grows with the row count; we add rows into a partial sum and
fold it into the total every ROWS_PER_PARTIAL rows (two-level summation), which keeps the
error about sqrt(ROWS_PER_PARTIAL) + sqrt(rows / ROWS_PER_PARTIAL) rounding steps, like NumPy's
pairwise sum, without any float64 temporaries.

Batch norm works per CHANNEL of an (N, C, L) view: a channel is N rows of L contiguous values,
strided by C*L. Its three forward passes (sum, squared deviations, output) and two backward
passes run one channel at a time, so the second and third passes find the channel in L2
cache. Each row is summed on its own and the row sums are then added (two-level summation
again). A 2-D (N, C) input (L = 1) is transposed to one (C, N) row per channel first: with
L = 1 the per-row loops would be one element long and could not vectorise.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import cpu_pool
from ..reference.norm import check_batch_norm_args, check_norm_args
from ._fastmath import (FASTMATH, aligned_empty, can_stream_rows, prefetch_row, stream_fence,
                        stream_row)

ROWS_PER_PARTIAL = 64
# dx of at least this many bytes is written with streaming stores (see _fastmath.py): bigger
# than the caches of both cores, it will have left them before the next op reads it anyway
STREAM_MIN_BYTES = 4 << 20
# how far ahead the kernels prefetch: 8 KB of each input, 4 rows of 512 float32. From DRAM a
# row arrives ~100 ns after it is asked for, longer than one row's work; 1 row ahead was
# 15-20 % slower in the benchmark's conditions, and farther than 8 KB brought nothing more
PREFETCH_BYTES = 8 << 10
# inputs of at least this many elements are split over minidl's CPU threads (see above)
PARALLEL_MIN_ELEMENTS = 1 << 20


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _layer_norm_rows(x, weight, bias, eps, y, mean_out, rstd_out):
    R, C = x.shape
    inv_C = x.dtype.type(1.0) / x.dtype.type(C)
    ahead = max(1, PREFETCH_BYTES // (C * x.itemsize))
    for i in range(R):
        total = x.dtype.type(0.0)
        for j in range(C):
            total += x[i, j]
        if i + ahead < R:
            prefetch_row(x, i + ahead)     # row i is in L1 now: ask for a later one
        mean = total * inv_C
        squares = x.dtype.type(0.0)
        for j in range(C):
            d = x[i, j] - mean
            squares += d * d
        rstd = x.dtype.type(1.0) / np.sqrt(squares * inv_C + eps)
        for j in range(C):
            y[i, j] = (x[i, j] - mean) * rstd * weight[j] + bias[j]
        mean_out[i] = mean
        rstd_out[i] = rstd


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _layer_norm_backward_rows(dy, x, weight, mean, rstd, dx, dweight, dbias, stream):
    """dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * weight.

    With d = x - mean (so xhat = d * rstd) that is dx = r*w*dy - a - d*b, where per row
    a = r * mean(g) and b = r^3 * mean(g * d). The first pass over the row (from memory)
    only forms the two sums; the second (from L1) writes dx and adds the row's dy * xhat and
    dy to the dweight/dbias partial sums (see the module docstring for why there). With
    `stream`, the second pass writes an L1 buffer that stream_row then copies to dx.
    """
    R, C = x.shape
    zero = x.dtype.type(0.0)
    inv_C = x.dtype.type(1.0) / x.dtype.type(C)
    part_dw = np.zeros_like(dweight)
    part_db = np.zeros_like(dbias)
    buf = np.empty(C, dx.dtype)
    ahead = max(1, PREFETCH_BYTES // (C * x.itemsize))
    for i in range(R):
        m, r = mean[i], rstd[i]
        sum_g = zero
        sum_gd = zero
        for j in range(C):
            g = dy[i, j] * weight[j]
            sum_g += g
            sum_gd += g * (x[i, j] - m)
        if i + ahead < R:
            prefetch_row(x, i + ahead)
            prefetch_row(dy, i + ahead)
        a = r * sum_g * inv_C
        b = r * r * r * sum_gd * inv_C
        out = buf if stream else dx[i]
        for j in range(C):
            d = x[i, j] - m
            g = dy[i, j]
            out[j] = r * g * weight[j] - a - d * b
            part_dw[j] += g * (d * r)
            part_db[j] += g
        if stream:
            stream_row(dx, i, buf)
        if (i + 1) % ROWS_PER_PARTIAL == 0 or i + 1 == R:
            for j in range(C):
                dweight[j] += part_dw[j]
                dbias[j] += part_db[j]
                part_dw[j] = zero
                part_db[j] = zero
    if stream:
        stream_fence()


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _rms_norm_rows(x, weight, eps, y, rstd_out):
    R, C = x.shape
    inv_C = x.dtype.type(1.0) / x.dtype.type(C)
    ahead = max(1, PREFETCH_BYTES // (C * x.itemsize))
    for i in range(R):
        squares = x.dtype.type(0.0)
        for j in range(C):
            squares += x[i, j] * x[i, j]
        if i + ahead < R:
            prefetch_row(x, i + ahead)
        rstd = x.dtype.type(1.0) / np.sqrt(squares * inv_C + eps)
        for j in range(C):
            y[i, j] = x[i, j] * rstd * weight[j]
        rstd_out[i] = rstd


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _rms_norm_backward_rows(dy, x, weight, rstd, dx, dweight, stream):
    """dx = rstd * (g - xhat * mean(g * xhat)),  g = dy * weight; the layout of the layer-norm
    backward (lean first pass, dweight in the second, prefetch in between, streaming)."""
    R, C = x.shape
    zero = x.dtype.type(0.0)
    inv_C = x.dtype.type(1.0) / x.dtype.type(C)
    part_dw = np.zeros_like(dweight)
    buf = np.empty(C, dx.dtype)
    ahead = max(1, PREFETCH_BYTES // (C * x.itemsize))
    for i in range(R):
        r = rstd[i]
        sum_gx = zero
        for j in range(C):
            sum_gx += dy[i, j] * weight[j] * x[i, j]
        if i + ahead < R:
            prefetch_row(x, i + ahead)
            prefetch_row(dy, i + ahead)
        b = r * r * r * sum_gx * inv_C      # rstd * xhat * mean(g * xhat) = x * b
        out = buf if stream else dx[i]
        for j in range(C):
            g = dy[i, j]
            out[j] = r * g * weight[j] - x[i, j] * b
            part_dw[j] += g * (x[i, j] * r)
        if stream:
            stream_row(dx, i, buf)
        if (i + 1) % ROWS_PER_PARTIAL == 0 or i + 1 == R:
            for j in range(C):
                dweight[j] += part_dw[j]
                part_dw[j] = zero
    if stream:
        stream_fence()


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _batch_norm_channels(x, weight, bias, eps, y, mean_out, rstd_out):
    """x, y: (N, C, L). Per channel: mean, two-pass variance, then the output."""
    N, C, L = x.shape
    zero = x.dtype.type(0.0)
    inv_count = x.dtype.type(1.0) / x.dtype.type(N * L)
    for c in range(C):
        total = zero
        for n in range(N):
            row = zero
            for j in range(L):
                row += x[n, c, j]
            total += row
        mean = total * inv_count
        squares = zero
        for n in range(N):
            row = zero
            for j in range(L):
                d = x[n, c, j] - mean
                row += d * d
            squares += row
        rstd = x.dtype.type(1.0) / np.sqrt(squares * inv_count + eps)
        scale = rstd * weight[c]
        shift = bias[c]
        for n in range(N):
            for j in range(L):
                y[n, c, j] = (x[n, c, j] - mean) * scale + shift
        mean_out[c] = mean
        rstd_out[c] = rstd


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _batch_norm_backward_channels(dy, x, weight, mean, rstd, dx, dweight, dbias):
    """dx = rstd * w * (dy - S1/count - xhat * S2/count), S1 = sum dy, S2 = sum dy*xhat."""
    N, C, L = x.shape
    zero = x.dtype.type(0.0)
    inv_count = x.dtype.type(1.0) / x.dtype.type(N * L)
    for c in range(C):
        m, r = mean[c], rstd[c]
        s1 = zero
        s2 = zero
        for n in range(N):
            row1 = zero
            row2 = zero
            for j in range(L):
                g = dy[n, c, j]
                row1 += g
                row2 += g * (x[n, c, j] - m)
            s1 += row1
            s2 += row2
        s2 *= r                      # sum dy * xhat, with xhat = (x - m) * r
        dbias[c] = s1
        dweight[c] = s2
        k = r * weight[c]
        a = s1 * inv_count
        b = s2 * inv_count * r       # xhat * S2/count = (x - m) * (r * S2/count)
        for n in range(N):
            for j in range(L):
                dx[n, c, j] = k * (dy[n, c, j] - a - (x[n, c, j] - m) * b)


def batch_norm_forward(x, weight, bias, eps):
    check_batch_norm_args("batch_norm_forward", x, weight=weight, bias=bias)
    C = x.shape[1]
    x3 = _channel_rows(x)
    y = np.empty_like(x3)
    mean = np.empty(C, dtype=x.dtype)
    rstd = np.empty(C, dtype=x.dtype)
    _batch_norm_channels(x3, _or_ones(weight, C, x.dtype), _or_zeros(bias, C, x.dtype),
                         x.dtype.type(eps), y, mean, rstd)
    return _from_channel_rows(y, x), mean, rstd


def batch_norm_backward(dy, x, weight, mean, rstd):
    check_batch_norm_args("batch_norm_backward", x, dy=dy, weight=weight, mean=mean, rstd=rstd)
    C = x.shape[1]
    x3 = _channel_rows(x)
    dx = np.empty_like(x3)
    dweight = np.empty(C, dtype=x.dtype)
    dbias = np.empty(C, dtype=x.dtype)
    _batch_norm_backward_channels(_channel_rows(dy), x3, _or_ones(weight, C, x.dtype),
                                  _flat(mean), _flat(rstd), dx, dweight, dbias)
    return _from_channel_rows(dx, x), (dweight if weight is not None else None), dbias


def _channel_rows(a):
    """(N, C, *) as (N, C, L); a 2-D (N, C) as (1, C, N) (a transposed copy, see above)."""
    if a.ndim == 2:
        return np.ascontiguousarray(a.T).reshape(1, a.shape[1], a.shape[0])
    return np.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def _from_channel_rows(a3, like):
    """Undo _channel_rows for a result of the same layout."""
    if like.ndim == 2:
        return np.ascontiguousarray(a3.reshape(like.shape[1], like.shape[0]).T)
    return a3.reshape(like.shape)


def layer_norm_forward(x, weight, bias, eps):
    check_norm_args("layer_norm_forward", x, weight=weight, bias=bias)
    x2, C = _rows(x), x.shape[-1]
    y = np.empty_like(x2)
    mean = np.empty(x2.shape[0], dtype=x.dtype)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    w, b, eps = _or_ones(weight, C, x.dtype), _or_zeros(bias, C, x.dtype), x.dtype.type(eps)

    def rows(lo, hi):
        _layer_norm_rows(x2[lo:hi], w, b, eps, y[lo:hi], mean[lo:hi], rstd[lo:hi])

    _split_rows(x2, rows)
    lead = x.shape[:-1]
    return y.reshape(x.shape), mean.reshape(lead), rstd.reshape(lead)


def layer_norm_backward(dy, x, weight, mean, rstd):
    check_norm_args("layer_norm_backward", x, dy=dy, weight=weight, mean=mean, rstd=rstd)
    x2, C = _rows(x), x.shape[-1]
    dx, stream = _gradient_rows(x2)
    dy2, w, mean, rstd = _rows(dy), _or_ones(weight, C, x.dtype), _flat(mean), _flat(rstd)

    def rows(lo, hi):  # this share's dx rows, and its own dweight/dbias sums
        dweight = np.zeros(C, dtype=x.dtype)
        dbias = np.zeros(C, dtype=x.dtype)
        _layer_norm_backward_rows(dy2[lo:hi], x2[lo:hi], w, mean[lo:hi], rstd[lo:hi],
                                  dx[lo:hi], dweight, dbias, stream)
        return dweight, dbias

    dweight, dbias = _sum_shares(_split_rows(x2, rows))
    return dx.reshape(x.shape), (dweight if weight is not None else None), dbias


def rms_norm_forward(x, weight, eps):
    check_norm_args("rms_norm_forward", x, weight=weight)
    x2, C = _rows(x), x.shape[-1]
    y = np.empty_like(x2)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    w, eps = _or_ones(weight, C, x.dtype), x.dtype.type(eps)

    def rows(lo, hi):
        _rms_norm_rows(x2[lo:hi], w, eps, y[lo:hi], rstd[lo:hi])

    _split_rows(x2, rows)
    return y.reshape(x.shape), rstd.reshape(x.shape[:-1])


def rms_norm_backward(dy, x, weight, rstd):
    check_norm_args("rms_norm_backward", x, dy=dy, weight=weight, rstd=rstd)
    x2, C = _rows(x), x.shape[-1]
    dx, stream = _gradient_rows(x2)
    dy2, w, rstd = _rows(dy), _or_ones(weight, C, x.dtype), _flat(rstd)

    def rows(lo, hi):
        dweight = np.zeros(C, dtype=x.dtype)
        _rms_norm_backward_rows(dy2[lo:hi], x2[lo:hi], w, rstd[lo:hi], dx[lo:hi], dweight,
                                stream)
        return (dweight,)

    (dweight,) = _sum_shares(_split_rows(x2, rows))
    return dx.reshape(x.shape), (dweight if weight is not None else None)


def _split_rows(x2, rows):
    """rows(lo, hi) over the rows of x2, split over minidl's threads when x2 is large; the
    shares' results in order."""
    # split_range decides by work in multiply-adds; the norms decide by element count, so
    # pass its threshold exactly when ours is met
    work = cpu_pool.PARALLEL_MIN_MACS if x2.size >= PARALLEL_MIN_ELEMENTS else 0
    return cpu_pool.split_range(x2.shape[0], rows, work=work)


def _sum_shares(results):
    """Add up the shares' parameter-gradient sums: [(dw, db), ...] -> (dw, db)."""
    totals = results[0]
    for share in results[1:]:
        for total, part in zip(totals, share):
            total += part
    return totals


def _rows(a):
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


def _gradient_rows(x2):
    """(dx, stream): an uninitialised array like the (rows, C) x2, and whether the kernel
    should write it with streaming stores (large, and rows of whole 64-byte lines)."""
    if x2.nbytes >= STREAM_MIN_BYTES and (x2.shape[1] * x2.itemsize) % 64 == 0:
        dx = aligned_empty(x2.shape, x2.dtype)
        return dx, can_stream_rows(dx)
    return np.empty_like(x2), False


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


def _or_ones(weight, C, dtype):
    return np.ones(C, dtype=dtype) if weight is None else np.ascontiguousarray(weight)


def _or_zeros(bias, C, dtype):
    return np.zeros(C, dtype=dtype) if bias is None else np.ascontiguousarray(bias)
