"""3x3 convolution by Winograd F(m x m, 3x3) on the CPU: Numba transforms + OpenBLAS GEMMs.

The maths, the transform matrices and the backward are in
`minidl/backend/reference/winograd.py` (read that first); this file changes only how memory
is laid out and walked. For the MNIST CNN's second layer (64 images, 32 -> 64 channels,
13x13 -> 11x11), F(4x4) does 36 GEMMs worth 85 MFLOP per direction where im2col's one GEMM
does 285; OpenBLAS runs near its ceiling on both, so the GEMM time drops about 3x and what
is left to win or lose is the transforms.

Layout: the batch goes LAST. The transforms are a few multiply-adds per element, so they run
at the speed of memory only if the compiler can vectorise them, i.e. if the innermost loop
walks contiguous memory doing the same thing at every step. In NCHW the alpha x alpha values
of a tile are short strided pieces of rows, and neighbouring tiles overlap: nothing lines
up. So each chunk of n images is first copied to "CHWN" layout (channel, row, column,
image): then the values of one tile for all n images are contiguous runs of n floats, and a
whole input row is one run of W*n floats.

Per chunk of n images (a = m + 2, T = TH * TW tiles per image):

    forward    xt (C, HH, WW, n)      <- x chunk, transposed, zero padded
               V  (a*a, C, T*n)       <- input transform of xt (rows, then columns)
               M  (a*a, O, T*n)       <- U (a*a, O, C) @ V       (a*a GEMMs, one batched call)
               y chunk (n, O, OH, OW) <- output transform of M (+ bias), cropped, transposed
    backward   dyt(O, m*TH, m*TW, n)  <- dy chunk, transposed, zero on cropped outputs
               dM (a*a, O, T*n)       <- adjoint output transform of dyt
               dU (a*a, O, C)        += dM @ V^T                  (V rebuilt from x)
               dV (a*a, C, T*n)       <- U^T @ dM
               dxt (C, HH, WW, n)     <- adjoint input transform of dV (overlaps added)
               dx chunk               <- dxt, cropped, transposed

Threads. The chunks are dealt out to minidl's CPU threads (`cpu_pool.split_range`), whole,
with NumPy's BLAS held at one thread: each thread transforms, multiplies and transforms back
its own chunks, and the weight gradient's per-thread parts are added at the end. On 2 cores
the MNIST layer's forward + backward went from ~2.3 to ~1.7 ms: split by OpenBLAS instead,
each of the 36 small GEMMs per chunk was shared by the two threads (a hand-off each) and the
transforms ran on one.

The forward saves nothing: the weight gradient rebuilds V from x (one input transform, a
few percent of the layer), as the im2col path rebuilds its columns, so a training step's
peak memory does not grow by V.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .. import cpu_pool
from ._lanes import int64_args, is_flat_float, run_pointer
from .winograd_transforms import (input_transform, input_transform_adjoint, output_transform,
                                  output_transform_adjoint)
from ..reference.winograd import MATRICES, tile_counts

__all__ = ["eligible", "tile_size", "conv3x3_forward", "conv3x3_backward"]

# Below these sizes im2col's single GEMM is faster (measured fwd+bwd, one thread): with few
# channels the a*a GEMMs are too thin for OpenBLAS and the transforms dominate (the MNIST
# CNN's first layer has 1 input channel; at 8 -> 8 channels the two paths tie); with few
# images the transforms' runs over the batch are too short to vectorise (12 images: 1.6x
# slower than im2col; 1 image: 3x; 16 images: 0.9x).
MIN_CHANNELS = 8
MIN_BATCH = 16
# Per chunk: the larger of V and M. A chunk's temporaries (V, M and the transposed copies)
# add to a training step's peak memory: for the MNIST CNN step, 25.7 MiB with the whole
# batch in one chunk, 18.6 MiB at 3 MiB (32 images), 17.2 MiB by im2col. Smaller chunks
# cost time in per-chunk overhead (~5% at 2 MiB).
CHUNK_BYTES = 3 << 20
# The tile sizes m the CPU conv may use. F(4x4) is the fastest, with ~10x the direct method's
# float32 rounding error (see the reference); set TILES = (2,) to keep the direct method's
# accuracy at a lower speed-up, or TILES = () to use im2col for every layer.
TILES = (2, 4)


def tile_size(OH: int, OW: int) -> int:
    """The output tile m of F(m x m, 3x3) with the fewest GEMM multiplies, alpha^2 per tile.

    Per output pixel F(4x4) needs 36/16 of them and F(2x2) 16/4, but the last tile row and
    column are padded up to m: for a 5x5 output both cover 64 positions' worth of work, and
    then the more accurate F(2x2) wins the tie.
    """
    def cost(m):
        th, tw = tile_counts(OH, OW, m)
        return (m + 2) ** 2 * th * tw
    return min(sorted(TILES), key=cost)       # min keeps the first (smaller m) on a tie


def eligible(x_shape, weight_shape, stride, dilation, groups) -> bool:
    """True when conv2d(x, weight) is a 3x3, stride 1, undilated, ungrouped layer with enough
    channels and images for the Winograd path to be the faster one."""
    O, C, kh, kw = weight_shape
    return (len(TILES) > 0 and (kh, kw) == (3, 3) and x_shape[0] >= MIN_BATCH and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and groups == 1 and C >= MIN_CHANNELS and O >= MIN_CHANNELS)


# ---------------------------------------------------------------------------------------
# layout changes: NCHW <-> CHWN
#
# A transpose reads along one axis and writes along another, so one side is strided: element
# by element, ~1 ns each (0.2 ms for one 64-image layer input). Done in 8x8 blocks, it is 8
# vector loads, 24 shuffles and 8 vector stores per 64 elements. LLVM does not find that
# shuffle network by itself in a loop, so `_transpose8` spells it out (see
# _lanes.py for the vector-pointer trick).

def _shuffle(builder, a, b, mask):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), 8), mask))


@intrinsic
def _transpose8(typingctx, src, si, ss, dst, di, ds, addend):
    """dst[di + j*ds + i] = src[si + i*ss + j] + addend for i, j < 8: one 8x8 block.

    Three rounds of two-vector shuffles: interleave rows pairwise (pairs of elements), then
    pairs of pairs (quads), then quads (whole columns). No bounds checks: the caller keeps
    every row of the block inside the arrays.
    """
    if not (is_flat_float(src) and dst == src and isinstance(si, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        src_ty, dst_ty = sig.args[0], sig.args[3]
        si_, ss_, di_, ds_ = int64_args(context, builder, sig, args, (1, 2, 4, 5))

        def row_ptr(arr_ty, arr, base, stride, k):
            return run_pointer(context, builder, arr_ty, arr, base, stride, k)

        r = [builder.load(row_ptr(src_ty, args[0], si_, ss_, k), align=1) for k in range(8)]
        lo2, hi2 = [0, 8, 1, 9, 2, 10, 3, 11], [4, 12, 5, 13, 6, 14, 7, 15]
        p = [(_shuffle(builder, r[2 * k], r[2 * k + 1], lo2),
              _shuffle(builder, r[2 * k], r[2 * k + 1], hi2)) for k in range(4)]
        lo4, hi4 = [0, 1, 8, 9, 2, 3, 10, 11], [4, 5, 12, 13, 6, 7, 14, 15]
        q = []                        # q[g][c2]: rows 4g..4g+3, columns 2*c2 and 2*c2 + 1
        for g in range(2):
            a, b = p[2 * g], p[2 * g + 1]
            q.append([_shuffle(builder, a[0], b[0], lo4), _shuffle(builder, a[0], b[0], hi4),
                      _shuffle(builder, a[1], b[1], lo4), _shuffle(builder, a[1], b[1], hi4)])
        lo8, hi8 = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
        vec = r[0].type
        add = context.cast(builder, args[6], sig.args[6], src_ty.dtype)
        splat = builder.insert_element(ir.Constant(vec, None), add, ir.Constant(ir.IntType(32), 0))
        splat = _shuffle(builder, splat, splat, [0] * 8)
        for c2 in range(4):
            for half, mask in enumerate((lo8, hi8)):
                col = builder.fadd(_shuffle(builder, q[0][c2], q[1][c2], mask), splat)
                builder.store(col, row_ptr(dst_ty, args[3], di_, ds_, 2 * c2 + half), align=1)
        return context.get_dummy_value()
    return types.void(src, si, ss, dst, di, ds, addend), codegen


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _to_chwn(src, ph, pw, dst):
    """dst[c, h + ph, w + pw, m] = src[m, c, h, w]; every other dst entry is set to 0.

    With n a multiple of 8 and W >= 8, each (c, h) row is moved in 8x8 blocks: 8 images by
    columns [0, 8), then 8 images by [W - 8, W) (overlapping the first when W < 16: the
    overlap is copied twice, same values). Otherwise element by element.
    """
    n, C, H, W = src.shape
    HH, WW = dst.shape[1], dst.shape[2]
    for c in range(C):                       # the zero border (padding and the last tile)
        for h in range(HH):
            for w in range(WW):
                if h < ph or h >= ph + H or w < pw or w >= pw + W:
                    for m in range(n):
                        dst[c, h, w, m] = 0
    sf, df = src.reshape(-1), dst.reshape(-1)
    if n % 8 == 0 and W >= 8:
        for c in range(C):
            for m0 in range(0, n, 8):
                for h in range(H):
                    s_row = ((m0 * C + c) * H + h) * W
                    d_row = ((c * HH + h + ph) * WW + pw) * n + m0
                    w0 = 0
                    while True:
                        _transpose8(sf, s_row + w0, C * H * W, df, d_row + w0 * n, n, -0.0)
                        if w0 == W - 8:
                            break
                        w0 = min(w0 + 8, W - 8)
        return
    for m in range(n):
        for c in range(C):
            for h in range(H):
                row = dst[c, h + ph]
                s = src[m, c, h]
                for w in range(W):
                    row[w + pw, m] = s[w]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _from_chwn(src, ph, pw, bias, has_bias, dst):
    """dst[m, c, h, w] = src[c, h + ph, w + pw, m] (+ bias[c]): the crop, transposed back.

    8x8 blocks as in _to_chwn. Without a bias, -0.0 is added (x + -0.0 == x for every x,
    including -0.0, which + 0.0 would turn into +0.0).
    """
    n, C, H, W = dst.shape
    HH, WW = src.shape[1], src.shape[2]
    sf, df = src.reshape(-1), dst.reshape(-1)
    if n % 8 == 0 and W >= 8:
        for c in range(C):
            b = bias[c] if has_bias else -0.0
            for m0 in range(0, n, 8):
                for h in range(H):
                    s_row = ((c * HH + h + ph) * WW + pw) * n + m0
                    d_row = ((m0 * C + c) * H + h) * W
                    w0 = 0
                    while True:
                        _transpose8(sf, s_row + w0 * n, n, df, d_row + w0, C * H * W, b)
                        if w0 == W - 8:
                            break
                        w0 = min(w0 + 8, W - 8)
        return
    for m in range(n):
        for c in range(C):
            b = bias[c] if has_bias else dst.dtype.type(-0.0)
            for h in range(H):
                row = src[c, h + ph]
                d = dst[m, c, h]
                for w in range(W):
                    d[w] = row[w + pw, m] + b


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _channel_sums(dy, out):
    """out[o] += sum of dy[:, o] (the bias gradient): dy (N, O, P) with P = OH*OW.

    Each P-long run is summed in float32 ('reassoc' lets LLVM keep partial sums in the
    vector lanes), and the runs' sums in a float64 total, rounded once into out.
    """
    N, O = dy.shape[0], dy.shape[1]
    for o in range(O):
        total = 0.0
        for m in range(N):
            plane = dy[m, o]
            run = dy.dtype.type(0)
            for j in range(plane.shape[0]):
                run += plane[j]
            total += run
        out[o] += total


# ---------------------------------------------------------------------------------------
# the filter transform (once per call: small, but NumPy's tensordot route took ~0.1 ms)

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _filter_transform(g, w, U):
    """U[a*k + l, o, c] = sum_ij G[k, i] w[o, c, i, j] G[l, j].

    As in the adjoint below, both products run over whole planes of P = O*C floats: w (P, 9)
    is first turned into wt (9, P), one plane per filter tap (i, j); then
    T[k, j] = sum_i G[k, i] wt[i, j] and U[a*k + l] = sum_j G[l, j] T[k, j].
    """
    O, C = w.shape[0], w.shape[1]
    a = g.shape[0]
    P = O * C
    taps = w.reshape(P, 9)
    wt = np.empty((9, P), w.dtype)
    for p in range(P):
        for q in range(9):
            wt[q, p] = taps[p, q]
    T = np.empty((a, 3, P), w.dtype)
    for k in range(a):
        g0, g1, g2 = g[k, 0], g[k, 1], g[k, 2]
        for j in range(3):
            t, w0, w1, w2 = T[k, j], wt[j], wt[3 + j], wt[6 + j]
            for p in range(P):
                t[p] = g0 * w0[p] + g1 * w1[p] + g2 * w2[p]
    planes = U.reshape(a * a, P)
    for k in range(a):
        t0, t1, t2 = T[k, 0], T[k, 1], T[k, 2]
        for l in range(a):
            h0, h1, h2 = g[l, 0], g[l, 1], g[l, 2]
            u = planes[a * k + l]
            for p in range(P):
                u[p] = h0 * t0[p] + h1 * t1[p] + h2 * t2[p]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _filter_transform_adjoint(g, dU, dW):
    """dW[o, c, i, j] = sum_kl G[k, i] dU[a*k + l, o, c] G[l, j] (the adjoint of the above).

    dU (a*a, O, C) is a*a planes of P = O*C contiguous floats, so both products run over
    whole planes: S[i, l] = sum_k G[k, i] dU[a*k + l], then R[i, j] = sum_l S[i, l] G[l, j].
    Walking one filter bank o at a time instead (runs of C = 32 floats) spent most of its time
    starting loops: 112 us against 15 us for the MNIST layer's 64 x 32 filters.
    The last loop turns R (9, P) into dW (P, 9): the one strided pass.
    """
    a = g.shape[0]
    O, C = dW.shape[0], dW.shape[1]
    P = O * C
    planes = dU.reshape(a, a, P)
    S = np.zeros((3, a, P), dU.dtype)
    for i in range(3):
        for l in range(a):
            s = S[i, l]
            for k in range(a):
                gk = g[k, i]
                if gk != 0:
                    src = planes[k, l]
                    for p in range(P):
                        s[p] += gk * src[p]
    R = np.zeros((9, P), dU.dtype)
    for i in range(3):
        for j in range(3):
            r = R[3 * i + j]
            for l in range(a):
                gl = g[l, j]
                if gl != 0:
                    s = S[i, l]
                    for p in range(P):
                        r[p] += gl * s[p]
    out = dW.reshape(P, 9)
    for p in range(P):
        for q in range(9):
            out[p, q] = R[q, p]


def filter_transform(weight, m):
    """U (a*a, O, C) of weight (O, C, 3, 3), as reference.winograd.filter_transform."""
    O, C = weight.shape[:2]
    U = np.empty(((m + 2) ** 2, O, C), weight.dtype)
    _filter_transform(np.asarray(MATRICES[m][1], weight.dtype), np.ascontiguousarray(weight), U)
    return U


def filter_transform_adjoint(dU, m):
    """dW (O, C, 3, 3) of dU (a*a, O, C), as reference.winograd.filter_transform_adjoint."""
    dW = np.empty((dU.shape[1], dU.shape[2], 3, 3), dU.dtype)
    _filter_transform_adjoint(np.asarray(MATRICES[m][1], dU.dtype), np.ascontiguousarray(dU), dW)
    return dW


# ---------------------------------------------------------------------------------------
# the layer

def _plan(x_shape, O, padding, m):
    """Geometry, tile and chunk size: (N, C, H, W, OH, OW, m, TH, TW, n_max); m = None picks
    the tile by tile_size."""
    N, C, H, W = x_shape
    ph, pw = padding
    OH, OW = H + 2 * ph - 2, W + 2 * pw - 2
    m = tile_size(OH, OW) if m is None else m
    TH, TW = tile_counts(OH, OW, m)
    n_max = _chunk_size(N, (m + 2) ** 2 * TH * TW, C, O)
    return N, C, H, W, OH, OW, m, TH, TW, n_max


def _chunk_size(N, alpha2_T, C, O):
    """Images per chunk: V and M of one chunk within about CHUNK_BYTES (float32), and a
    multiple of 8 when the batch allows (the transposes' 8x8 blocks). Each of minidl's
    threads works on a chunk of its own at a time, so the budget is shared between them:
    the step's peak memory does not grow with the thread count."""
    per_image = alpha2_T * max(C, O) * 4
    n = max(1, min(N, CHUNK_BYTES // cpu_pool.num_threads() // per_image))
    return n - n % 8 if n >= 8 else n


class _Chunk:
    """The arrays of one chunk of n images, named as in the module docstring."""

    def __init__(self, C, O, TH, TW, n, m, dt):
        a = m + 2
        self.m, self.a, self.C, self.O, self.TH, self.TW, self.n = m, a, C, O, TH, TW, n
        self.bt, _, self.at = (np.asarray(k, dt) for k in MATRICES[m])
        self.xt_shape = (C, m * TH + 2, m * TW + 2, n)
        self.yt_shape = (O, m * TH, m * TW, n)
        self.dt = dt

    def input_transform(self, x, padding):
        """V (a*a, C, T*n) of the chunk x (n, C, H, W)."""
        C, TH, TW, n, m, a = self.C, self.TH, self.TW, self.n, self.m, self.a
        xt = np.empty(self.xt_shape, self.dt)
        _to_chwn(x, padding[0], padding[1], xt)
        V = np.empty((a, a, C, TH, TW, n), self.dt)
        input_transform(self.bt, xt.reshape(C, xt.shape[1], -1), m, V)
        return V.reshape(a * a, C, TH * TW * n)

    def output_transform(self, M, bias, has_bias, y):
        """y chunk (n, O, OH, OW) from M (a*a, O, T*n), cropped, bias added."""
        O, TH, TW, n, m, a = self.O, self.TH, self.TW, self.n, self.m, self.a
        yt = np.empty(self.yt_shape, self.dt)
        output_transform(self.at, M.reshape(a, a, O, TH * TW * n),
                          yt.reshape(O, TH, m, TW, m, n))
        _from_chwn(yt, 0, 0, bias, has_bias, y)

    def output_transform_adjoint(self, dy):
        """dM (a*a, O, T*n) from the chunk dy (n, O, OH, OW)."""
        O, TH, TW, n, m, a = self.O, self.TH, self.TW, self.n, self.m, self.a
        dyt = np.empty(self.yt_shape, self.dt)
        _to_chwn(dy, 0, 0, dyt)                         # zero on the cropped outputs
        dM = np.empty((a, a, O, TH * TW * n), self.dt)
        output_transform_adjoint(self.at, dyt.reshape(O, TH, m, TW, m, n), dM)
        return dM.reshape(a * a, O, -1)

    def input_transform_adjoint(self, dV, padding, dx):
        """dx chunk (n, C, H, W) from dV (a*a, C, T*n)."""
        C, TH, TW, n, m, a = self.C, self.TH, self.TW, self.n, self.m, self.a
        dxt = np.empty(self.xt_shape, self.dt)
        input_transform_adjoint(self.bt, dV.reshape(a, a, C, TH, TW, n), m,
                                 dxt.reshape(C, dxt.shape[1], -1))
        _from_chwn(dxt, padding[0], padding[1], np.zeros(1, self.dt), False, dx)


def conv3x3_forward(x, weight, bias, padding, m: int | None = None):
    """y (N, O, OH, OW): conv2d with a 3x3 kernel, stride 1, the given (ph, pw) padding."""
    O = weight.shape[0]
    N, C, H, W, OH, OW, m, TH, TW, n_max = _plan(x.shape, O, padding, m)
    dt = x.dtype
    x = np.ascontiguousarray(x)
    U = filter_transform(np.ascontiguousarray(weight), m)       # (a*a, O, C)
    y = np.empty((N, O, OH, OW), dtype=dt)
    bias_arr = np.ascontiguousarray(bias) if bias is not None else np.zeros(1, dt)

    def images(lo, hi):   # the chunks of images lo .. hi - 1, on one thread
        for n0 in range(lo, hi, n_max):
            n = min(n_max, hi - n0)
            chunk = _Chunk(C, O, TH, TW, n, m, dt)
            V = chunk.input_transform(x[n0:n0 + n], padding)
            M = np.matmul(U, V)                                # a*a GEMMs (O, C) x (C, T*n)
            del V           # each temporary is dropped as soon as it is used (peak memory)
            chunk.output_transform(M, bias_arr, bias is not None, y[n0:n0 + n])
            del M

    cpu_pool.split_range(N, images, work=U.size * TH * TW * N, align=n_max)
    return y


def conv3x3_backward(dy, x, weight, padding, need_input_grad, need_weight_grad,
                     need_bias_grad, m: int | None = None):
    """(dx | None, dweight | None, dbias | None); `x` may be just the input's shape when the
    weight gradient is not asked for."""
    x_shape = tuple(x) if isinstance(x, (tuple, list)) else tuple(x.shape)
    O = weight.shape[0]
    N, C, H, W, OH, OW, m, TH, TW, n_max = _plan(x_shape, O, padding, m)
    dt = dy.dtype
    dy = np.ascontiguousarray(dy)
    dbias = None
    if need_bias_grad:
        dbias = np.zeros(O, dt)
        _channel_sums(dy.reshape(N, O, OH * OW), dbias)
    if not (need_input_grad or need_weight_grad):
        return None, None, dbias
    U = filter_transform(np.ascontiguousarray(weight), m) if need_input_grad else None
    dx = np.empty((N, C, H, W), dt) if need_input_grad else None
    if need_weight_grad:
        x = np.ascontiguousarray(x)

    def images(lo, hi):   # the chunks of images lo .. hi - 1, on one thread: their dU part
        dU_part = np.zeros(((m + 2) ** 2, O, C), dt) if need_weight_grad else None
        for n0 in range(lo, hi, n_max):
            n = min(n_max, hi - n0)
            chunk = _Chunk(C, O, TH, TW, n, m, dt)
            dM = chunk.output_transform_adjoint(dy[n0:n0 + n])
            if need_weight_grad:
                V = chunk.input_transform(x[n0:n0 + n], padding)   # rebuilt, not saved
                dU_part += np.matmul(dM, V.transpose(0, 2, 1))     # BLAS reads the .T view
                del V
            dV = np.matmul(U.transpose(0, 2, 1), dM) if need_input_grad else None
            del dM          # freed before the input gradient's buffers are made
            if dV is not None:                                      # (a*a, C, T*n)
                chunk.input_transform_adjoint(dV, padding, dx[n0:n0 + n])
                del dV
        return dU_part

    parts = cpu_pool.split_range(N, images, work=(m + 2) ** 2 * O * C * TH * TW * N,
                                 align=n_max)
    if need_weight_grad:
        dU = parts[0]
        for part in parts[1:]:
            dU += part
    dweight = filter_transform_adjoint(dU, m) if need_weight_grad else None
    return dx, dweight, dbias
