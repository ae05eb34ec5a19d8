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
#
# The two passes run one tile row (one channel, one ty) at a time, through a small buffer
# (`Z`, alpha * W * n floats: ~20 KiB) that stays in L1, instead of writing the whole
# intermediate array out and reading it back.
#
# Every row and column of these matrices has a nonzero entry, so the first nonzero term of
# each sum assigns (`first`) and no output is left unwritten.

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


# --- F(4x4): one loop per output run ------------------------------------------------------
#
# With short runs (n = 32 images: two 16-float vectors) the loop set-up of each _add_scaled
# call costs as much as its work, and one output takes up to 6 of them. For F(4x4) the
# kernels below therefore add all alpha = 6 terms (or m = 4 in the output adjoint) in ONE
# loop, zero coefficients included: 6 load streams and 1 store stream is few enough pointers
# for LLVM to vectorise (the limit above), and the output is written once instead of read
# and rewritten per term (measured 1.4x faster than the per-term loops at 32 images). A zero coefficient
# times an inf or NaN input gives NaN where the per-term version adds nothing; it changes
# nothing in practice: any non-finite input already reaches every output of its tile through
# the transforms (the tile's sums mix all of its inputs).

@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sum6(dst, c, s0, s1, s2, s3, s4, s5, accumulate):
    """dst (+)= c[0]*s0 + c[1]*s1 + ... + c[5]*s5, elementwise over equal runs."""
    c0, c1, c2, c3, c4, c5 = c[0], c[1], c[2], c[3], c[4], c[5]
    if accumulate:
        for j in range(dst.shape[0]):
            dst[j] += c0 * s0[j] + c1 * s1[j] + c2 * s2[j] + c3 * s3[j] + c4 * s4[j] + c5 * s5[j]
    else:
        for j in range(dst.shape[0]):
            dst[j] = c0 * s0[j] + c1 * s1[j] + c2 * s2[j] + c3 * s3[j] + c4 * s4[j] + c5 * s5[j]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sum4(dst, c, s0, s1, s2, s3):
    """dst = c[0]*s0 + c[1]*s1 + c[2]*s2 + c[3]*s3, elementwise over equal runs."""
    c0, c1, c2, c3 = c[0], c[1], c[2], c[3]
    for j in range(dst.shape[0]):
        dst[j] = c0 * s0[j] + c1 * s1[j] + c2 * s2[j] + c3 * s3[j]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _input_transform(bt, xt, m, V):
    """V[k, l, c, ty, tx, :] = (B^T d B)[k, l] for the tile d at (m*ty, m*tx) of channel c.

    xt (C, HH, WW*n): the CHWN input, one row = WW*n floats; V (a, a, C, TH, TW, n).
    Rows:    Z[k, :]       = sum_r B^T[k, r] * xt[c, m*ty + r, :]      (runs of WW*n)
    Columns: V[k, l, ..tx] = sum_s B^T[l, s] * Z[k, m*tx + s]          (runs of n)
    """
    C, HH, L = xt.shape
    a, TH, TW, n = V.shape[0], V.shape[3], V.shape[4], V.shape[5]
    Z = np.empty((a, L), xt.dtype)
    Z3 = Z.reshape(a, L // n, n)
    for c in range(C):
        for ty in range(TH):
            h = m * ty
            if a == 6:
                for k in range(a):
                    _sum6(Z[k], bt[k], xt[c, h], xt[c, h + 1], xt[c, h + 2], xt[c, h + 3],
                          xt[c, h + 4], xt[c, h + 5], False)
                for k in range(a):
                    for tx in range(TW):
                        w = m * tx
                        for l in range(a):
                            _sum6(V[k, l, c, ty, tx], bt[l], Z3[k, w], Z3[k, w + 1],
                                  Z3[k, w + 2], Z3[k, w + 3], Z3[k, w + 4], Z3[k, w + 5], False)
                continue
            for k in range(a):
                first = True
                for r in range(a):
                    if bt[k, r] != 0:
                        _add_scaled(Z[k], bt[k, r], xt[c, h + r], first)
                        first = False
            for k in range(a):
                for tx in range(TW):
                    for l in range(a):
                        first = True
                        for s in range(a):
                            if bt[l, s] != 0:
                                _add_scaled(V[k, l, c, ty, tx], bt[l, s], Z3[k, m * tx + s],
                                            first)
                                first = False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _input_transform_adjoint(bt, dV, m, dxt):
    """dxt[c, m*ty + r, m*tx + s] += (B dV B^T)[r, s] over all tiles; dxt zeroed first.

    The two passes of _input_transform transposed and in reverse order. Neighbouring tiles
    share 2 rows and 2 columns, whose gradients add.
    """
    C, HH, L = dxt.shape
    a, TH, TW, n = dV.shape[0], dV.shape[3], dV.shape[4], dV.shape[5]
    b = np.ascontiguousarray(bt.T)            # b[s] = column s of B^T, contiguous
    dxt[...] = 0
    dZ = np.empty((a, L), dxt.dtype)
    dZ3 = dZ.reshape(a, L // n, n)
    for c in range(C):
        for ty in range(TH):
            dZ[...] = 0
            h = m * ty
            if a == 6:
                for k in range(a):
                    for tx in range(TW):
                        for s in range(a):
                            _sum6(dZ3[k, m * tx + s], b[s], dV[k, 0, c, ty, tx],
                                  dV[k, 1, c, ty, tx], dV[k, 2, c, ty, tx], dV[k, 3, c, ty, tx],
                                  dV[k, 4, c, ty, tx], dV[k, 5, c, ty, tx], True)
                for r in range(a):
                    _sum6(dxt[c, h + r], b[r], dZ[0], dZ[1], dZ[2], dZ[3], dZ[4], dZ[5], True)
                continue
            for k in range(a):
                for tx in range(TW):
                    for s in range(a):
                        for l in range(a):
                            if bt[l, s] != 0:
                                _add_scaled(dZ3[k, m * tx + s], bt[l, s], dV[k, l, c, ty, tx],
                                            False)
            for r in range(a):
                for k in range(a):
                    if bt[k, r] != 0:
                        _add_scaled(dxt[c, h + r], bt[k, r], dZ[k], False)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _output_transform(at, M, yt):
    """yt[o, ty, i, tx, j, :] = (A^T M A)[i, j] for the tile (ty, tx) of output channel o.

    M (a, a, O, R): the GEMMs' result, R = TH*TW*n; yt (O, TH, m, TW, m, n), i.e. (O, m*TH,
    m*TW, n) with the output tiles side by side.
    Rows:    Y1[i, l, :]      = sum_k A^T[i, k] * M[k, l, o, :]        (runs of R)
    Columns: yt[.., i, tx, j] = sum_l A^T[j, l] * Y1[i, l, ty, tx]     (runs of n)
    The row pass takes a whole output channel at once: its a*a source runs lie far apart in
    M (one per GEMM), and runs of R floats instead of one tile row's TW*n gave the hardware
    prefetcher long enough streams (13 % faster on the MNIST layer).
    """
    a, O, R = M.shape[0], M.shape[2], M.shape[3]
    TH, mm, TW, n = yt.shape[1], yt.shape[2], yt.shape[3], yt.shape[5]
    Y1 = np.empty((mm, a, R), M.dtype)
    Y5 = Y1.reshape(mm, a, TH, TW, n)
    for o in range(O):
        if a == 6:
            for i in range(mm):
                for l in range(a):
                    _sum6(Y1[i, l], at[i], M[0, l, o], M[1, l, o], M[2, l, o],
                          M[3, l, o], M[4, l, o], M[5, l, o], False)
            for i in range(mm):
                for ty in range(TH):
                    for tx in range(TW):
                        for j in range(mm):
                            _sum6(yt[o, ty, i, tx, j], at[j], Y5[i, 0, ty, tx],
                                  Y5[i, 1, ty, tx], Y5[i, 2, ty, tx], Y5[i, 3, ty, tx],
                                  Y5[i, 4, ty, tx], Y5[i, 5, ty, tx], False)
            continue
        for i in range(mm):
            for l in range(a):
                first = True
                for k in range(a):
                    if at[i, k] != 0:
                        _add_scaled(Y1[i, l], at[i, k], M[k, l, o], first)
                        first = False
        for i in range(mm):
            for ty in range(TH):
                for tx in range(TW):
                    for j in range(mm):
                        first = True
                        for l in range(a):
                            if at[j, l] != 0:
                                _add_scaled(yt[o, ty, i, tx, j], at[j, l], Y5[i, l, ty, tx],
                                            first)
                                first = False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _output_transform_adjoint(at, dyt, dM):
    """dM[k, l, o, :] = (A dY A^T)[k, l] for the 2-D tiles dY of dyt (tiles don't overlap).

    dyt (O, TH, m, TW, m, n); dM (a, a, O, R), R = TH*TW*n. The two passes of
    _output_transform transposed and in reverse order, one output channel at a time (the
    long runs of dM, as there).
    """
    a, O, R = dM.shape[0], dM.shape[2], dM.shape[3]
    TH, mm, TW, n = dyt.shape[1], dyt.shape[2], dyt.shape[3], dyt.shape[5]
    A = np.ascontiguousarray(at.T)            # A[l] = column l of A^T, contiguous
    E = np.empty((mm, a, R), dM.dtype)
    E5 = E.reshape(mm, a, TH, TW, n)
    for o in range(O):
        if mm == 4:
            for i in range(mm):
                for ty in range(TH):
                    for tx in range(TW):
                        for l in range(a):
                            _sum4(E5[i, l, ty, tx], A[l], dyt[o, ty, i, tx, 0],
                                  dyt[o, ty, i, tx, 1], dyt[o, ty, i, tx, 2],
                                  dyt[o, ty, i, tx, 3])
            for k in range(a):
                for l in range(a):
                    _sum4(dM[k, l, o], A[k], E[0, l], E[1, l], E[2, l], E[3, l])
            continue
        for i in range(mm):
            for ty in range(TH):
                for tx in range(TW):
                    for l in range(a):
                        first = True
                        for j in range(mm):
                            if at[j, l] != 0:
                                _add_scaled(E5[i, l, ty, tx], at[j, l], dyt[o, ty, i, tx, j],
                                            first)
                                first = False
        for k in range(a):
            for l in range(a):
                first = True
                for i in range(mm):
                    if at[i, k] != 0:
                        _add_scaled(dM[k, l, o], at[i, k], E[i, l], first)
                        first = False


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
        V = np.empty((a, a, C, TH, TW, n), self.dt)
        _input_transform(self.bt, xt.reshape(C, xt.shape[1], -1), m, V)
        return V.reshape(a * a, C, TH * TW * n)

    def output_transform(self, M, bias, has_bias, y):
        """y chunk (n, O, OH, OW) from M (a*a, O, T*n), cropped, bias added."""
        O, TH, TW, n, m, a = self.O, self.TH, self.TW, self.n, self.m, self.a
        yt = np.empty(self.yt_shape, self.dt)
        _output_transform(self.at, M.reshape(a, a, O, TH * TW * n),
                          yt.reshape(O, TH, m, TW, m, n))
        _from_chwn(yt, 0, 0, bias, has_bias, y)

    def output_transform_adjoint(self, dy):
        """dM (a*a, O, T*n) from the chunk dy (n, O, OH, OW)."""
        O, TH, TW, n, m, a = self.O, self.TH, self.TW, self.n, self.m, self.a
        dyt = np.empty(self.yt_shape, self.dt)
        _to_chwn(dy, 0, 0, dyt)                         # zero on the cropped outputs
        dM = np.empty((a, a, O, TH * TW * n), self.dt)
        _output_transform_adjoint(self.at, dyt.reshape(O, TH, m, TW, m, n), dM)
        return dM.reshape(a * a, O, -1)

    def input_transform_adjoint(self, dV, padding, dx):
        """dx chunk (n, C, H, W) from dV (a*a, C, T*n)."""
        C, TH, TW, n, m, a = self.C, self.TH, self.TW, self.n, self.m, self.a
        dxt = np.empty(self.xt_shape, self.dt)
        _input_transform_adjoint(self.bt, dV.reshape(a, a, C, TH, TW, n), m,
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
    for n0 in range(0, N, n_max):
        n = min(n_max, N - n0)
        chunk = _Chunk(C, O, TH, TW, n, m, dt)
        V = chunk.input_transform(x[n0:n0 + n], padding)
        M = np.matmul(U, V)                                    # a*a GEMMs (O, C) x (C, T*n)
        del V               # each temporary is dropped as soon as it is used (peak memory)
        chunk.output_transform(M, bias_arr, bias is not None, y[n0:n0 + n])
        del M
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
            del V
        dV = np.matmul(U.transpose(0, 2, 1), dM) if need_input_grad else None  # (a*a, C, T*n)
        del dM              # freed before the input gradient's buffers are made
        if dV is not None:
            chunk.input_transform_adjoint(dV, padding, dx[n0:n0 + n])
            del dV
    dweight = filter_transform_adjoint(dU, m) if need_weight_grad else None
    return dx, dweight, dbias
