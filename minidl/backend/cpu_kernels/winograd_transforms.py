"""The four Winograd transforms of winograd.py, on the CHWN layout described there.

Each transform is a small matrix (B^T, A^T or their transposes) applied along the rows of a
tile and then along its columns. Written as two passes, every pass is a set of
    dst_run = sum_i coef_i * src_run_i
over contiguous runs of floats: whole CHWN rows (W*n floats) for the row passes, the n
images of one pixel for the column passes. The two passes run one tile row (one channel,
one ty) at a time, through a small buffer (`Z`, alpha * W * n floats: ~20 KiB) that stays in
L1, instead of writing the whole intermediate array out and reading it back. The output
transform and its adjoint take a whole output channel per row pass instead: its alpha^2
source runs lie far apart in M (one per GEMM), and runs of T*n floats gave the hardware
prefetcher long enough streams (13 % faster on the MNIST layer than one tile row).

Two ways to run a pass:

* F(4x4, 3x3) with n a multiple of 8 images (every chunk of a batch of 8k): all outputs of
  a run position at once, 8 lanes at a time, by `lane_mix` intrinsics (see _lanes.py) with
  F(4x4)'s matrices built in (so these branches, taken when alpha == 6, do not read the
  matrix argument: alpha == 6 is F(4x4) and nothing else here). The runs here are short (n = 32 images: four 8-float
  vectors), and a loop per output paid its start-up cost and reloaded all 6 inputs for each
  of up to 6 outputs; the built-in matrices also drop the zero terms and the multiplies by
  +-1 (B^T: 14 multiplies and 16 adds per position instead of 36 and 30). On the MNIST
  layer (32 images, 32 channels) the input transform's kernel went from 105 us as one loop
  per output run to 58 us loading each input once, and to 46 us with the matrix built in.
  The terms are the loops' products summed in the loops' order, so the forward passes give
  the generic loops' values exactly; the adjoints add each output's whole sum into the
  overlapping tile instead of term by term, a different rounding of the same sum.
* Anything else (F(2x2), a last chunk of n % 8 images): one loop per output run and
  nonzero coefficient (`_add_scaled`), the coefficients read from the matrix, so the same
  code serves every tile size. Every row and column of these matrices has a nonzero entry,
  so the first nonzero term of each sum assigns (`first`) and no output is left unwritten.

(One loop per tile with all alpha^2 inputs and outputs does not vectorise: LLVM must rule
out that any of its 32+ pointers overlap, gives up at 8 and emits scalar code, 10x slower.)
"""
from __future__ import annotations

import numba
import numpy as np

from ._lanes import LANES, lane_mix
from ..reference.winograd import MATRICES

# F(4x4)'s matrices built into 8-lane kernels: B^T (input), B (its adjoint, adding into the
# overlapping tiles), A^T (output) and A (its adjoint)
_BT4, _, _AT4 = (np.asarray(k) for k in MATRICES[4])
_apply_BT = lane_mix(_BT4, accumulate=False)
_add_B = lane_mix(_BT4.T, accumulate=True)
_apply_AT = lane_mix(_AT4, accumulate=False)
_apply_A = lane_mix(_AT4.T, accumulate=False)


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
def input_transform(bt, xt, m, V):
    """V[k, l, c, ty, tx, :] = (B^T d B)[k, l] for the tile d at (m*ty, m*tx) of channel c.

    xt (C, HH, WW*n): the CHWN input, one row = WW*n floats; V (a, a, C, TH, TW, n).
    Rows:    Z[k, :]       = sum_r B^T[k, r] * xt[c, m*ty + r, :]      (runs of WW*n)
    Columns: V[k, l, ..tx] = sum_s B^T[l, s] * Z[k, m*tx + s]          (runs of n)
    """
    C, HH, L = xt.shape
    a, TH, TW, n = V.shape[0], V.shape[3], V.shape[4], V.shape[5]
    Z = np.empty((a, L), xt.dtype)
    Z3 = Z.reshape(a, L // n, n)
    if a == 6 and n % LANES == 0:
        x_flat, Z_flat, V_flat = xt.reshape(-1), Z.reshape(-1), V.reshape(-1)
        l_step = C * TH * TW * n                     # V[k, l] -> V[k, l + 1]
        for c in range(C):
            for ty in range(TH):
                row = (c * HH + m * ty) * L          # xt[c, m*ty]; its 6 rows are L apart
                for j in range(0, L, LANES):
                    _apply_BT(x_flat, row + j, L, Z_flat, j, L)
                for k in range(a):
                    for tx in range(TW):
                        z = k * L + m * tx * n       # Z[k, m*tx]; 6 pixels n apart
                        v = k * a * l_step + ((c * TH + ty) * TW + tx) * n   # V[k, 0, c, ty, tx]
                        for j in range(0, n, LANES):
                            _apply_BT(Z_flat, z + j, n, V_flat, v + j, l_step)
        return
    for c in range(C):
        for ty in range(TH):
            h = m * ty
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
def input_transform_adjoint(bt, dV, m, dxt):
    """dxt[c, m*ty + r, m*tx + s] += (B dV B^T)[r, s] over all tiles; dxt zeroed first.

    The two passes of input_transform transposed and in reverse order. Neighbouring tiles
    share 2 rows and 2 columns, whose gradients add.
    """
    C, HH, L = dxt.shape
    a, TH, TW, n = dV.shape[0], dV.shape[3], dV.shape[4], dV.shape[5]
    dxt[...] = 0
    dZ = np.empty((a, L), dxt.dtype)
    dZ3 = dZ.reshape(a, L // n, n)
    if a == 6 and n % LANES == 0:
        dV_flat, dZ_flat, dx_flat = dV.reshape(-1), dZ.reshape(-1), dxt.reshape(-1)
        l_step = C * TH * TW * n
        for c in range(C):
            for ty in range(TH):
                dZ[...] = 0
                for k in range(a):
                    for tx in range(TW):
                        v = k * a * l_step + ((c * TH + ty) * TW + tx) * n  # dV[k, 0, c, ty, tx]
                        z = k * L + m * tx * n                               # dZ[k, m*tx]
                        for j in range(0, n, LANES):
                            _add_B(dV_flat, v + j, l_step, dZ_flat, z + j, n)
                row = (c * HH + m * ty) * L                                  # dxt[c, m*ty]
                for j in range(0, L, LANES):
                    _add_B(dZ_flat, j, L, dx_flat, row + j, L)
        return
    for c in range(C):
        for ty in range(TH):
            dZ[...] = 0
            h = m * ty
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
def output_transform(at, M, yt):
    """yt[o, ty, i, tx, j, :] = (A^T M A)[i, j] for the tile (ty, tx) of output channel o.

    M (a, a, O, R): the GEMMs' result, R = TH*TW*n; yt (O, TH, m, TW, m, n), i.e. (O, m*TH,
    m*TW, n) with the output tiles side by side.
    Rows:    Y1[i, l, :]      = sum_k A^T[i, k] * M[k, l, o, :]        (runs of R)
    Columns: yt[.., i, tx, j] = sum_l A^T[j, l] * Y1[i, l, ty, tx]     (runs of n)
    """
    a, O, R = M.shape[0], M.shape[2], M.shape[3]
    TH, mm, TW, n = yt.shape[1], yt.shape[2], yt.shape[3], yt.shape[5]
    Y1 = np.empty((mm, a, R), M.dtype)
    Y5 = Y1.reshape(mm, a, TH, TW, n)
    if a == 6 and n % LANES == 0:
        M_flat, Y_flat, y_flat = M.reshape(-1), Y1.reshape(-1), yt.reshape(-1)
        for o in range(O):
            for l in range(a):
                src = (l * O + o) * R                # M[0, l, o]; k steps a*O*R
                for j in range(0, R, LANES):
                    _apply_AT(M_flat, src + j, a * O * R, Y_flat, l * R + j, a * R)
            for i in range(mm):
                for ty in range(TH):
                    for tx in range(TW):
                        src = ((i * a * TH + ty) * TW + tx) * n           # Y1[i, 0, ty, tx]
                        dst = (((o * TH + ty) * mm + i) * TW + tx) * mm * n  # yt[o, ty, i, tx, 0]
                        for j in range(0, n, LANES):
                            _apply_AT(Y_flat, src + j, R, y_flat, dst + j, n)
        return
    for o in range(O):
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
def output_transform_adjoint(at, dyt, dM):
    """dM[k, l, o, :] = (A dY A^T)[k, l] for the 2-D tiles dY of dyt (tiles don't overlap).

    dyt (O, TH, m, TW, m, n); dM (a, a, O, R), R = TH*TW*n. The two passes of
    output_transform transposed and in reverse order, one output channel at a time.
    """
    a, O, R = dM.shape[0], dM.shape[2], dM.shape[3]
    TH, mm, TW, n = dyt.shape[1], dyt.shape[2], dyt.shape[3], dyt.shape[5]
    E = np.empty((mm, a, R), dM.dtype)
    E5 = E.reshape(mm, a, TH, TW, n)
    if a == 6 and n % LANES == 0:
        dy_flat, E_flat, dM_flat = dyt.reshape(-1), E.reshape(-1), dM.reshape(-1)
        for o in range(O):
            for i in range(mm):
                for ty in range(TH):
                    for tx in range(TW):
                        src = (((o * TH + ty) * mm + i) * TW + tx) * mm * n  # dyt[o, ty, i, tx, 0]
                        dst = ((i * a * TH + ty) * TW + tx) * n           # E[i, 0, ty, tx]
                        for j in range(0, n, LANES):
                            _apply_A(dy_flat, src + j, n, E_flat, dst + j, R)
            for l in range(a):
                dst = (l * O + o) * R                # dM[0, l, o]; k steps a*O*R
                for j in range(0, R, LANES):
                    _apply_A(E_flat, l * R + j, a * R, dM_flat, dst + j, a * O * R)
        return
    for o in range(O):
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
