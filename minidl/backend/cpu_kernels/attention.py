"""Scaled dot-product attention on the CPU: chunks of (batch, head) blocks, GEMMs + Numba.

Same maths and conventions as `minidl/backend/reference/attention.py` (read that first).
The work is split by kind:

* the five products (q k^T, P v, dout v^T, dS k, dS^T q) are batched OpenBLAS GEMMs over a
  chunk of (batch, head) pairs, always on C-contiguous operands: k^T, dout^T and q^T are
  small (T, D) copies, so no (Tq, Tk) block is ever transposed;
* everything elementwise on a (Tq, Tk) block (causal mask, row max, exp, row sum, lse,
  dS = P * (dP - delta)) is one serial Numba pass, with a vectorised float32 exp.

Threads. The (batch, head) pairs are dealt out to minidl's CPU threads, a contiguous share
each (`cpu_pool.split_range`), with NumPy's BLAS held at one thread: each thread runs the
chunk loop below over its pairs, GEMMs and Numba passes alike. On 2 cores the causal
(32, 4, 128, 32) forward + backward went from 9.7 to 5.4 ms; split by OpenBLAS instead, each
small GEMM was shared by the two threads and the Numba passes ran on one.

Memory. Work goes by chunks of (batch, head) pairs and, within a chunk, by tiles of query
rows. The forward holds one score tile per pair (turned into probabilities in place), at
most one (Tq, Tk) block. The backward needs P and dP together, so it uses at least two row
tiles: P and dP of one tile are again at most one block per pair. Buffers are reused across
chunks and calls (one set per thread); a chunk's tiles take ~2 MiB, so they stay in cache
between the GEMM that writes them and the Numba pass that reads them.

Causal masks skip work: a tile of query rows can only see the keys up to its last row, so
its GEMMs run over those keys alone (4 tiles: 10/16 of the full products). The backward picks
its tile count by length (`_backward_tile_count`): short sequences lose more to extra small
GEMM calls than they save in masked work.
"""
from __future__ import annotations

import numba
import numpy as np

from ..reference._checks import require_float, require_shape
from ..reference.attention import bias_views, check_sdpa, reduce_to_bias
from .. import cpu_pool
from ._fastmath import FASTMATH, fast_exp, maxnum
from .conv import scratch

__all__ = ["sdpa_forward", "sdpa_backward"]

_CHUNK_BYTES = 2 << 20
_TILES = 4          # query-row tiles of the causal forward (see _row_tiles)
_BACKWARD_TILE_ROWS = 128   # the causal backward's tiles hold about this many query rows


def _backward_tile_count(Tq):
    """How many query-row tiles the causal backward uses: Tq / 128, kept within 2..4.

    More tiles skip more masked work (4 tiles do 10/16 of the full products, 2 tiles 12/16),
    but each tile costs five more batched GEMM calls on blocks only `rows` tall, and the
    backward has five products per tile against the forward's two. Measured on 2 cores, the
    backward of T = 128 and T = 256 ran 12-15 % faster with 2 tiles than with 4, and T = 512
    3-8 % faster with 4 than with 2 (and ~13 % faster than with 8)."""
    return min(4, max(2, Tq // _BACKWARD_TILE_ROWS))


def _chunk_size(B, rows, Tk, itemsize):
    return int(max(1, min(B, _CHUNK_BYTES // max(1, rows * Tk * itemsize))))


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH | {"nnan"}, error_model="numpy")
def _prefix_max(row, n, neg_inf):
    """max(row[:n]) as a vectorised reduction (LLVM needs 'nnan' for that, so only this
    small function has it). With a NaN in the row the result is unspecified, but then
    exp(NaN - m) is NaN and the whole row comes out NaN, which is the right answer."""
    m = neg_inf
    for j in range(n):
        m = maxnum(m, row[j])
    return m


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _softmax_rows(S, causal, row0, lse, neg_inf):
    """S (c, rows, Tk) scores -> probabilities in place; lse (c, rows) = logsumexp.

    Causal: row r is query row0 + r and sees keys 0 .. row0 + r. A row whose every score is
    -inf (or hidden) is fully masked: P = 0, lse = -inf. neg_inf is -inf in S's dtype (the
    max must stay in that dtype to vectorise).
    """
    c, rows, Tk = S.shape
    for b in range(c):
        for r in range(rows):
            row = S[b, r]
            n = min(Tk, row0 + r + 1) if causal else Tk
            m = _prefix_max(row, n, neg_inf)
            if m == neg_inf:
                for j in range(Tk):
                    row[j] = 0
                lse[b, r] = neg_inf
                continue
            total = m - m                      # a zero of the row's dtype (m is finite)
            for j in range(n):
                e = fast_exp(row[j] - m)
                row[j] = e
                total += e
            inv = 1 / total
            for j in range(n):
                row[j] *= inv
            for j in range(n, Tk):
                row[j] = 0
            lse[b, r] = m + np.log(total)


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _probs_from_lse(S, causal, row0, lse):
    """S (c, rows, Tk) scores -> P = exp(S - lse) in place (0 for hidden or masked rows)."""
    c, rows, Tk = S.shape
    for b in range(c):
        for r in range(rows):
            row = S[b, r]
            n = min(Tk, row0 + r + 1) if causal else Tk
            shift = lse[b, row0 + r]
            if shift == -np.inf:
                n = 0
            for j in range(n):
                row[j] = fast_exp(row[j] - shift)
            for j in range(n, Tk):
                row[j] = 0


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _softmax_grad(P, dP, dout, out, row0):
    """dP <- P * (dP - delta) in place, delta_r = sum_d dout[r, d] * out[r, d]."""
    c, rows, Tk = P.shape
    Dv = dout.shape[2]
    for b in range(c):
        for r in range(rows):
            delta = dout[b, row0 + r, 0] * 0
            for d in range(Dv):
                delta += dout[b, row0 + r, d] * out[b, row0 + r, d]
            p, g = P[b, r], dP[b, r]
            for j in range(Tk):
                g[j] = p[j] * (g[j] - delta)


def _add_bias(S, bias_of, b0, row0, rows, keys):
    for i in range(S.shape[0]):
        bias_b = bias_of(b0 + i)
        if bias_b is not None:
            S[i] += bias_b[row0:row0 + rows, :keys]


# _tile_note: each tile's (n, rows, keys) block is a fresh C-contiguous view of a scratch
# buffer, never a [:, :rows, :keys] window of a bigger block. Numba compiles a strided
# window as a generic-stride array and its row loops stop vectorising (4x slower here).

def _bias_grad(dS, bias, lead, b0, row0, rows, keys, Tq, Tk, dbias):
    """Add the tile's dS (n, rows, keys) of pairs b0 .. b0 + n - 1 into dbias."""
    for i in range(dS.shape[0]):
        block = np.zeros((Tq, Tk), dtype=dS.dtype)
        block[row0:row0 + rows, :keys] = dS[i]
        reduce_to_bias(np, block, bias, lead, b0 + i, dbias)


def _row_tiles(Tq, Tk, causal, n_tiles):
    """[(row0, rows, keys)]: query tiles and how many keys each can see.

    Under the causal mask, rows row0 .. row0 + rows - 1 see only keys 0 .. row0 + rows - 1,
    so every product of the tile runs over those keys alone: with 4 tiles the causal GEMMs
    do 10/16 of the full work.
    """
    size = -(-Tq // n_tiles)
    return [(r0, min(size, Tq - r0), min(Tk, r0 + min(size, Tq - r0)) if causal else Tk)
            for r0 in range(0, Tq, size)]


def sdpa_forward(q, k, v, bias, is_causal, scale):
    """(out (..., Tq, Dv), lse (..., Tq))."""
    lead, Tq, Tk, D, Dv, scale = check_sdpa("sdpa_forward", q, k, v, bias, scale)
    B = int(np.prod(lead, dtype=np.int64))
    dt = q.dtype
    q3, k3, v3 = (np.ascontiguousarray(a).reshape(B, *a.shape[-2:]) for a in (q, k, v))
    out = np.empty((B, Tq, Dv), dtype=dt)
    lse = np.empty((B, Tq), dtype=dt)
    bias_of = bias_views(bias, lead, Tq, Tk)
    tiles = _row_tiles(Tq, Tk, is_causal, _TILES if is_causal else 1)
    c = _chunk_size(B, tiles[0][1], Tk, dt.itemsize)

    def pairs(lo, hi):   # the (batch, head) pairs lo .. hi - 1, on one thread
        qs = scratch("sdpa_q_scaled", (c, Tq, D), dt)       # scratch buffers are per thread
        kT = scratch("sdpa_kT", (c, D, Tk), dt)
        for b0 in range(lo, hi, c):
            n = min(c, hi - b0)
            np.multiply(q3[b0:b0 + n], dt.type(scale), out=qs[:n])      # scale q, not S
            np.copyto(kT[:n], k3[b0:b0 + n].transpose(0, 2, 1))
            for row0, rows, keys in tiles:
                s = scratch("sdpa_scores", (n, rows, keys), dt)   # contiguous: see _tile_note
                np.matmul(qs[:n, row0:row0 + rows], kT[:n, :, :keys], out=s)
                _add_bias(s, bias_of, b0, row0, rows, keys)
                _softmax_rows(s, bool(is_causal), row0, lse[b0:b0 + n, row0:row0 + rows],
                              dt.type(-np.inf))
                np.matmul(s, v3[b0:b0 + n, :keys], out=out[b0:b0 + n, row0:row0 + rows])

    cpu_pool.split_range(B, pairs, work=B * Tq * Tk * (D + Dv))
    return out.reshape(lead + (Tq, Dv)), lse.reshape(lead + (Tq,))


def sdpa_backward(q, k, v, out, lse, dout, bias, is_causal, scale, need_bias_grad):
    """(dq, dk, dv, dbias | None), P recomputed from lse a tile of query rows at a time."""
    op = "sdpa_backward"
    lead, Tq, Tk, D, Dv, scale = check_sdpa(op, q, k, v, bias, scale)
    require_float(op, q=q, out=out, lse=lse, dout=dout)
    require_shape(op, "out", out, lead + (Tq, Dv), "q's leading dims, Tq and v's Dv")
    require_shape(op, "dout", dout, lead + (Tq, Dv), "the shape of out")
    require_shape(op, "lse", lse, lead + (Tq,), "q's leading dims and Tq")
    if need_bias_grad and bias is None:
        raise ValueError(f"{op}: need_bias_grad=True but no bias was given")
    B = int(np.prod(lead, dtype=np.int64))
    dt = q.dtype
    q3, k3, v3, o3, do3 = (np.ascontiguousarray(a).reshape(B, *a.shape[-2:])
                           for a in (q, k, v, out, dout))
    lse2 = np.ascontiguousarray(lse).reshape(B, Tq)
    dq = np.empty((B, Tq, D), dtype=dt)
    dk = np.empty((B, Tk, D), dtype=dt)
    dv = np.empty((B, Tk, Dv), dtype=dt)
    dbias = np.zeros(bias.shape, dtype=bias.dtype) if need_bias_grad else None
    bias_of = bias_views(bias, lead, Tq, Tk)
    # P and dP side by side: at least 2 tiles, so together they stay within one block
    tiles = _row_tiles(Tq, Tk, is_causal, _backward_tile_count(Tq) if is_causal else 2)
    tile = tiles[0][1]
    c = _chunk_size(B, 2 * tile, Tk, dt.itemsize)

    def pairs(lo, hi):   # the (batch, head) pairs lo .. hi - 1, on one thread
        qs = scratch("sdpa_q_scaled", (c, Tq, D), dt)       # scratch buffers are per thread
        qT = scratch("sdpa_qT", (c, D, Tq), dt)
        vT = scratch("sdpa_vT", (c, Dv, Tk), dt)
        kT = scratch("sdpa_kT", (c, D, Tk), dt)
        doT = scratch("sdpa_doutT", (c, Dv, Tq), dt)
        dkT = scratch("sdpa_dkT", (c, D, Tk), dt)
        dvT = scratch("sdpa_dvT", (c, Dv, Tk), dt)
        part_k = scratch("sdpa_part_k", (c, D, Tk), dt)
        part_v = scratch("sdpa_part_v", (c, Dv, Tk), dt)
        for b0 in range(lo, hi, c):
            n = min(c, hi - b0)
            np.multiply(q3[b0:b0 + n], dt.type(scale), out=qs[:n])
            np.copyto(qT[:n], q3[b0:b0 + n].transpose(0, 2, 1))
            np.copyto(kT[:n], k3[b0:b0 + n].transpose(0, 2, 1))
            np.copyto(vT[:n], v3[b0:b0 + n].transpose(0, 2, 1))
            np.copyto(doT[:n], do3[b0:b0 + n].transpose(0, 2, 1))
            dkT[:n] = 0
            dvT[:n] = 0
            for row0, rows, keys in tiles:
                p = scratch("sdpa_P", (n, rows, keys), dt)
                dp = scratch("sdpa_dP", (n, rows, keys), dt)
                np.matmul(qs[:n, row0:row0 + rows], kT[:n, :, :keys], out=p)
                _add_bias(p, bias_of, b0, row0, rows, keys)
                _probs_from_lse(p, bool(is_causal), row0, lse2[b0:b0 + n])
                # dv^T (Dv, keys) = dout^T P, summed over the row tiles
                np.matmul(doT[:n, :, row0:row0 + rows], p, out=part_v[:n, :, :keys])
                dvT[:n, :, :keys] += part_v[:n, :, :keys]
                np.matmul(do3[b0:b0 + n, row0:row0 + rows], vT[:n, :, :keys], out=dp)
                _softmax_grad(p, dp, do3[b0:b0 + n], o3[b0:b0 + n], row0)   # dp is now dS
                if dbias is not None:
                    _bias_grad(dp, bias, lead, b0, row0, rows, keys, Tq, Tk, dbias)
                np.matmul(dp, k3[b0:b0 + n, :keys], out=dq[b0:b0 + n, row0:row0 + rows])
                np.matmul(qT[:n, :, row0:row0 + rows], dp, out=part_k[:n, :, :keys])
                dkT[:n, :, :keys] += part_k[:n, :, :keys]
            dq[b0:b0 + n] *= dt.type(scale)
            np.multiply(dkT[:n].transpose(0, 2, 1), dt.type(scale), out=dk[b0:b0 + n])
            np.copyto(dv[b0:b0 + n], dvT[:n].transpose(0, 2, 1))

    # A bias gradient is summed over the pairs a broadcast bias is shared by, so with one
    # the pairs are walked on one thread (two would add into the same dbias entries).
    cpu_pool.split_range(B, pairs, work=0 if dbias is not None else B * Tq * Tk * (D + 2 * Dv))
    return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape), dbias
