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

from ._lanes import is_flat_float, lane_pointer
from ..reference.winograd import (MATRICES, filter_transform, filter_transform_adjoint,
                                  tile_counts)

__all__ = ["eligible", "tile_size", "conv3x3_forward", "conv3x3_backward"]

# Below these channel counts the a*a GEMMs are too thin for OpenBLAS to run well and the
# transforms dominate; im2col's single GEMM is then faster (the MNIST CNN's first layer has
# 1 input channel).
MIN_CHANNELS = 8
CHUNK_BYTES = 8 << 20      # per chunk: the larger of V and M
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
    channels for the Winograd path to be the faster one."""
    O, C, kh, kw = weight_shape
    return (len(TILES) > 0 and (kh, kw) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
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
        i64 = ir.IntType(64)
        si_, ss_, di_, ds_ = (context.cast(builder, args[k], sig.args[k], types.int64)
                              for k in (1, 2, 4, 5))

        def row_ptr(arr_ty, arr, base, stride, k):
            index = builder.add(base, builder.mul(stride, ir.Constant(i64, k)))
            return lane_pointer(context, builder, arr_ty, arr, index)

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


# ---------------------------------------------------------------------------------------
# the transforms
#
# Each transform is a small matrix (B^T, A^T or their transposes) applied along the rows of a
# tile and then along its columns. Written as two passes, every pass is a set of
#     dst_run = sum_i coef_i * src_run_i
# over contiguous runs of floats: whole CHWN rows (W*n floats) for the row passes, the n
# images of one pixel for the column passes. Such a loop has one load stream and one store
# stream, which LLVM vectorises. (One loop per tile with all alpha^2 inputs and outputs does
# not vectorise: LLVM must rule out that any of its 32+ pointers overlap, gives up at 8 and
# emits scalar code, 10x slower.) The coefficients are read from the matrix, zeros skipped,
# so the same kernels serve F(2x2, 3x3) and F(4x4, 3x3).

@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _add_scaled(dst, cf, src, assign):
    """dst = cf * src (assign) or dst += cf * src, elementwise over two equal runs.

    Trap: both runs must be typed as contiguous (1-D views taken by integer indexing of a
    C-contiguous array: a[i, j]). A run cut from a strided view (a[:, j][i]) has a stride
    only known at run time, and that loop stays scalar (measured 5-10x slower).
    """
    if assign:
        for j in range(dst.shape[0]):
            dst[j] = cf * src[j]
    else:
        for j in range(dst.shape[0]):
            dst[j] += cf * src[j]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _window_rows(coef, src, step, dst):
    """dst[p, t, k, :] = sum_r coef[k, r] * src[p, step*t + r, :]   (src (P, X, L), dst (P, T, K, L)).

    The row pass of the input transform: window t of rows of plane p, combined by B^T.
    """
    P, T, K = dst.shape[0], dst.shape[1], dst.shape[2]
    for p in range(P):
        for t in range(T):
            for k in range(K):
                first = True                 # the first nonzero term assigns, the rest add
                for r in range(coef.shape[1]):
                    if coef[k, r] != 0:
                        _add_scaled(dst[p, t, k], coef[k, r], src[p, step * t + r], first)
                        first = False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _window_rows_adjoint(coef, src, step, dst):
    """dst[p, step*t + r, :] += sum_k coef[k, r] * src[p, t, k, :], dst zeroed first.

    The adjoint of _window_rows: neighbouring windows share rows, whose gradients add.
    """
    P, T, K = src.shape[0], src.shape[1], src.shape[2]
    dst[...] = 0
    for p in range(P):
        for t in range(T):
            for r in range(coef.shape[1]):
                for k in range(K):
                    if coef[k, r] != 0:
                        _add_scaled(dst[p, step * t + r], coef[k, r], src[p, t, k], False)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _window_cols(coef, Z, step, V):
    """V[k, l, c, ty, tx, :] = sum_s coef[l, s] * Z[c, ty, k, step*tx + s, :].

    The column pass of the input transform: Z (C, TH, a, WW, n) from _window_rows, V (a, a,
    C, TH, TW, n) the GEMMs' operand (for each (k, l): a (C, TH*TW*n) matrix).
    """
    C, TH, K = Z.shape[0], Z.shape[1], Z.shape[2]
    L, TW = V.shape[1], V.shape[4]
    for c in range(C):
        for ty in range(TH):
            for k in range(K):
                for tx in range(TW):
                    for l in range(L):
                        first = True
                        for s in range(coef.shape[1]):
                            if coef[l, s] != 0:
                                _add_scaled(V[k, l, c, ty, tx], coef[l, s],
                                            Z[c, ty, k, step * tx + s], first)
                                first = False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _window_cols_adjoint(coef, dV, step, dZ):
    """dZ[c, ty, k, step*tx + s, :] += sum_l coef[l, s] * dV[k, l, c, ty, tx, :], dZ zeroed first."""
    C, TH, K = dZ.shape[0], dZ.shape[1], dZ.shape[2]
    L, TW = dV.shape[1], dV.shape[4]
    dZ[...] = 0
    for c in range(C):
        for ty in range(TH):
            for k in range(K):
                for tx in range(TW):
                    for s in range(coef.shape[1]):
                        for l in range(L):
                            if coef[l, s] != 0:
                                _add_scaled(dZ[c, ty, k, step * tx + s], coef[l, s],
                                            dV[k, l, c, ty, tx], False)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _planes(coef, src, dst):
    """dst[a] = sum_k coef[a, k] * src[k] for whole planes (src (K, P, L), dst (A, P, L)).

    The row pass of the output transform (coef = A^T, src = M) and its adjoint (coef = A).
    """
    A, P = dst.shape[0], dst.shape[1]
    for a in range(A):
        for p in range(P):
            first = True
            for k in range(coef.shape[1]):
                if coef[a, k] != 0:
                    _add_scaled(dst[a, p], coef[a, k], src[k, p], first)
                    first = False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tile_cols(coef, Y1, yt):
    """yt[o, ty, a, tx, b, :] = sum_l coef[b, l] * Y1[a, l, o, ty, tx, :].

    The column pass of the output transform (coef = A^T): Y1 (m, alpha, O, TH, TW, n), yt
    (O, TH, m, TW, m, n), i.e. the (O, m*TH, m*TW, n) output tiles side by side.
    """
    Am, L, O, TH, TW = Y1.shape[0], Y1.shape[1], Y1.shape[2], Y1.shape[3], Y1.shape[4]
    for o in range(O):
        for ty in range(TH):
            for a in range(Am):
                for tx in range(TW):
                    for b in range(coef.shape[0]):
                        first = True
                        for l in range(L):
                            if coef[b, l] != 0:
                                _add_scaled(yt[o, ty, a, tx, b], coef[b, l],
                                            Y1[a, l, o, ty, tx], first)
                                first = False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tile_cols_adjoint(coef, dyt, dY1):
    """dY1[a, l, o, ty, tx, :] = sum_b coef[b, l] * dyt[o, ty, a, tx, b, :] (tiles don't overlap)."""
    Am, L, O, TH, TW = dY1.shape[0], dY1.shape[1], dY1.shape[2], dY1.shape[3], dY1.shape[4]
    for o in range(O):
        for ty in range(TH):
            for a in range(Am):
                for tx in range(TW):
                    for l in range(L):
                        first = True
                        for b in range(coef.shape[0]):
                            if coef[b, l] != 0:
                                _add_scaled(dY1[a, l, o, ty, tx], coef[b, l],
                                            dyt[o, ty, a, tx, b], first)
                                first = False


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _channel_sums(dy, out):
    """out[o] += sum of dy[:, o] (the bias gradient), each run summed in a float64 total."""
    n, O, H, W = dy.shape
    for o in range(O):
        total = 0.0
        for m in range(n):
            plane = dy[m, o]
            run = dy.dtype.type(0)
            for h in range(H):
                for w in range(W):
                    run += plane[h, w]
            total += run
        out[o] += total


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
    multiple of 8 when the batch allows (the transposes' 8x8 blocks)."""
    per_image = alpha2_T * max(C, O) * 4
    n = max(1, min(N, CHUNK_BYTES // per_image))
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
        WW = xt.shape[2]
        Z = np.empty((C, TH, a, WW * n), self.dt)
        _window_rows(self.bt, xt.reshape(C, -1, WW * n), m, Z)
        V = np.empty((a, a, C, TH, TW, n), self.dt)
        _window_cols(self.bt, Z.reshape(C, TH, a, WW, n), m, V)
        return V.reshape(a * a, C, TH * TW * n)

    def output_transform(self, M, bias, has_bias, y):
        """y chunk (n, O, OH, OW) from M (a*a, O, T*n), cropped, bias added."""
        O, TH, TW, n, m, a = self.O, self.TH, self.TW, self.n, self.m, self.a
        Y1 = np.empty((m, a * O, TH * TW * n), self.dt)
        _planes(self.at, M.reshape(a, a * O, -1), Y1)
        yt = np.empty(self.yt_shape, self.dt)
        _tile_cols(self.at, Y1.reshape(m, a, O, TH, TW, n), yt.reshape(O, TH, m, TW, m, n))
        _from_chwn(yt, 0, 0, bias, has_bias, y)

    def output_transform_adjoint(self, dy):
        """dM (a*a, O, T*n) from the chunk dy (n, O, OH, OW)."""
        O, TH, TW, n, m, a = self.O, self.TH, self.TW, self.n, self.m, self.a
        dyt = np.empty(self.yt_shape, self.dt)
        _to_chwn(dy, 0, 0, dyt)                         # zero on the cropped outputs
        dY1 = np.empty((m, a, O, TH, TW, n), self.dt)
        _tile_cols_adjoint(self.at, dyt.reshape(O, TH, m, TW, m, n), dY1)
        dM = np.empty((a, a * O, TH * TW * n), self.dt)
        _planes(np.ascontiguousarray(self.at.T), dY1.reshape(m, a * O, -1), dM)
        return dM.reshape(a * a, O, -1)

    def input_transform_adjoint(self, dV, padding, dx):
        """dx chunk (n, C, H, W) from dV (a*a, C, T*n)."""
        C, TH, TW, n, m, a = self.C, self.TH, self.TW, self.n, self.m, self.a
        HH, WW = self.xt_shape[1], self.xt_shape[2]
        dZ = np.empty((C, TH, a, WW, n), self.dt)
        _window_cols_adjoint(self.bt, dV.reshape(a, a, C, TH, TW, n), m, dZ)
        dxt = np.empty(self.xt_shape, self.dt)
        _window_rows_adjoint(self.bt, dZ.reshape(C, TH, a, WW * n), m,
                             dxt.reshape(C, HH, WW * n))
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
    for n0 in range(0, N, n_max):
        n = min(n_max, N - n0)
        chunk = _Chunk(C, O, TH, TW, n, m, dt)
        V = chunk.input_transform(x[n0:n0 + n], padding)
        M = np.matmul(U, V)                                    # a*a GEMMs (O, C) x (C, T*n)
        chunk.output_transform(M, bias_arr, bias is not None, y[n0:n0 + n])
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
        _channel_sums(dy, dbias)
    if not (need_input_grad or need_weight_grad):
        return None, None, dbias
    U = filter_transform(np.ascontiguousarray(weight), m) if need_input_grad else None
    dU = np.zeros(((m + 2) ** 2, O, C), dt) if need_weight_grad else None
    dx = np.empty((N, C, H, W), dt) if need_input_grad else None
    if need_weight_grad:
        x = np.ascontiguousarray(x)
    for n0 in range(0, N, n_max):
        n = min(n_max, N - n0)
        chunk = _Chunk(C, O, TH, TW, n, m, dt)
        dM = chunk.output_transform_adjoint(dy[n0:n0 + n])
        if need_weight_grad:
            V = chunk.input_transform(x[n0:n0 + n], padding)   # rebuilt, not saved
            dU += np.matmul(dM, V.transpose(0, 2, 1))          # BLAS reads the .T view
        if need_input_grad:
            dV = np.matmul(U.transpose(0, 2, 1), dM)           # (a*a, C, T*n)
            chunk.input_transform_adjoint(dV, padding, dx[n0:n0 + n])
    dweight = filter_transform_adjoint(dU, m).astype(dt, copy=False) if need_weight_grad else None
    return dx, dweight, dbias
