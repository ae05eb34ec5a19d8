"""3x3 convolution by Winograd's minimal filtering F(m x m, 3x3), m = 2 or 4: the reference.

Direct convolution spends 9 multiplications on each output pixel per (input, output) channel
pair. Winograd's algorithm computes a 2x2 block of outputs from a 4x4 block ("tile") of
input with 16 multiplications instead of 4 * 9 = 36, by moving both the tile and the filter
into a transformed space where the convolution becomes an elementwise product (Lavin & Gray,
"Fast Algorithms for Convolutional Neural Networks", 2015):

    y_tile (2x2) = A^T [ (G g G^T)  ⊙  (B^T d B) ] A

    d : a 4x4 input tile          g : a 3x3 filter          ⊙ : elementwise product
    B^T = [[1, 0, -1,  0],        G = [[1,    0,   0  ],    A^T = [[1, 1,  1,  0],
           [0, 1,  1,  0],             [1/2,  1/2, 1/2],           [0, 1, -1, -1]]
           [0, -1, 1,  0],             [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]             [0,    0,   1  ]]

A layer sums over input channels, and the sum can be taken in the transformed space, where
it is a matrix product at each of the 16 positions (k, l) of the 4x4 tile:

    V[k,l][c, tile]  = (B^T d_c B)[k, l]             input transform, one per (channel, tile)
    U[k,l][o, c]     = (G g_oc G^T)[k, l]            filter transform, once per call
    M[k,l]           = U[k,l] @ V[k,l]               16 GEMMs of (O, C) x (C, tiles)
    y_tile[o]        = A^T M[o, tile] A              output transform

So a 3x3 layer becomes 16 GEMMs that together do 16/36 of the direct method's multiply-adds,
plus cheap transforms that only add and subtract (B and A hold 0 and +-1; G holds 1/2, which
is exact in binary floating point, so the transforms add almost no rounding error).

Tiles: output tile (ty, tx) covers outputs [2ty, 2ty+2) x [2tx, 2tx+2) and reads the padded
input [2ty, 2ty+4) x [2tx, 2tx+4): neighbouring input tiles overlap by 2 rows / columns. With
an odd output size the last tile sticks out by one row or column: the input gets one extra
zero row/column there and the extra outputs are cropped.

Backward: every step above is linear, so the gradient is the adjoint of each step, in reverse:

    dM[o, tile]   = A dY_tile A^T                    (dY zero on the cropped outputs)
    dU[k,l]       = dM[k,l] @ V[k,l]^T               ->  dW = G^T dU G
    dV[k,l]       = U[k,l]^T @ dM[k,l]               ->  d(d) = B dV B^T, ADDED into the
                                                         input gradient (tiles overlap)

These are the exact gradients of the computation the forward performed, which (up to
rounding) is the convolution, so they equal the direct method's gradients.

Larger tiles save more: F(4x4, 3x3) computes a 4x4 output block from a 6x6 input tile with
36 multiplications instead of 16 * 9 = 144 (a quarter of the direct method's), with 6x6
transforms built on the points 0, +-1, +-2 (matrices BT4, G4, AT4 below; tiles then overlap
by 2 and step by 4). The price is rounding: the transforms now scale by up to 8 and divide by
6 and 24, and in float32 the result carries ~10x the direct method's error (measured on the
MNIST CNN's second layer: 4e-5 against 3e-6, relative to the largest output 5e-6). That is
the trade every fast library makes for float32 3x3 layers (cuDNN's and oneDNN's Winograd
are F(4x4, 3x3)); float64 results stay at ~1e-14.

Only stride 1, dilation 1, one group, 3x3 kernels. Arrays: x (N, C, H, W), weight (O, C, 3, 3).
In general, with alpha = m + 2 the tile size: B^T is (alpha, alpha), G (alpha, 3), A^T (m, alpha),
and "16" above is alpha * alpha.
"""
from __future__ import annotations

from ._xp import get_xp

__all__ = ["MATRICES", "tile_counts", "filter_transform", "filter_transform_adjoint",
           "conv3x3_forward", "conv3x3_backward"]

BT = ((1.0, 0.0, -1.0, 0.0),
      (0.0, 1.0, 1.0, 0.0),
      (0.0, -1.0, 1.0, 0.0),
      (0.0, 1.0, 0.0, -1.0))
G = ((1.0, 0.0, 0.0),
     (0.5, 0.5, 0.5),
     (0.5, -0.5, 0.5),
     (0.0, 0.0, 1.0))
AT = ((1.0, 1.0, 1.0, 0.0),
      (0.0, 1.0, -1.0, -1.0))

BT4 = ((4.0, 0.0, -5.0, 0.0, 1.0, 0.0),
       (0.0, -4.0, -4.0, 1.0, 1.0, 0.0),
       (0.0, 4.0, -4.0, -1.0, 1.0, 0.0),
       (0.0, -2.0, -1.0, 2.0, 1.0, 0.0),
       (0.0, 2.0, -1.0, -2.0, 1.0, 0.0),
       (0.0, 4.0, 0.0, -5.0, 0.0, 1.0))
G4 = ((1 / 4, 0.0, 0.0),
      (-1 / 6, -1 / 6, -1 / 6),
      (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6),
      (1 / 24, -1 / 12, 1 / 6),
      (0.0, 0.0, 1.0))
AT4 = ((1.0, 1.0, 1.0, 1.0, 1.0, 0.0),
       (0.0, 1.0, -1.0, 2.0, -2.0, 0.0),
       (0.0, 1.0, 1.0, 4.0, 4.0, 0.0),
       (0.0, 1.0, -1.0, 8.0, -8.0, 1.0))

MATRICES = {2: (BT, G, AT), 4: (BT4, G4, AT4)}   # output tile size m -> (B^T, G, A^T)


def _matrices(m, xp, dtype):
    if m not in MATRICES:
        raise ValueError(f"Winograd: output tile size must be one of {sorted(MATRICES)}, got {m!r}")
    return tuple(xp.asarray(a, dtype=dtype) for a in MATRICES[m])


def tile_counts(OH: int, OW: int, m: int = 2) -> tuple:
    """Number of m x m output tiles along each axis (the last one may stick out)."""
    return -(-OH // m), -(-OW // m)


def filter_transform(weight, m: int = 2):
    """U (alpha^2, O, C) with U[alpha*k + l, o, c] = (G weight[o, c] G^T)[k, l]."""
    xp = get_xp(weight)
    _, g, _ = _matrices(m, xp, weight.dtype)
    # two GEMMs (tensordot) instead of one 6-index einsum loop, which took ~1 ms
    t = xp.tensordot(weight, g, axes=([3], [1]))           # [o, c, i, l] = sum_j w G[l, j]
    U = xp.tensordot(g, t, axes=([1], [2]))                # [k, o, c, l] = sum_i G[k, i] t
    return xp.ascontiguousarray(U.transpose(0, 3, 1, 2)).reshape((m + 2) ** 2, *weight.shape[:2])


def filter_transform_adjoint(dU, m: int = 2):
    """dW (O, C, 3, 3) from dU (alpha^2, O, C): dW[o, c] = G^T dU[:, o, c] G (as alpha x alpha)."""
    xp = get_xp(dU)
    _, g, _ = _matrices(m, xp, dU.dtype)
    a = m + 2
    t = xp.tensordot(g, dU.reshape(a, a, *dU.shape[1:]), axes=([0], [0]))   # [i, l, o, c]
    dW = xp.tensordot(t, g, axes=([1], [0]))                                  # [i, o, c, j]
    return xp.ascontiguousarray(dW.transpose(1, 2, 0, 3))


def _geometry(x_shape, padding, m):
    N, C, H, W = x_shape
    ph, pw = padding
    OH, OW = H + 2 * ph - 2, W + 2 * pw - 2
    TH, TW = tile_counts(OH, OW, m)
    return N, C, H, W, OH, OW, TH, TW


def _input_tiles(x, padding, TH, TW, m):
    """(N, C, TH, TW, a, a): tile (ty, tx) is the padded input at [m ty, m ty + a) x [m tx, m tx + a)."""
    xp = get_xp(x)
    N, C, H, W = x.shape
    ph, pw = padding
    a = m + 2
    xpad = xp.zeros((N, C, m * TH + 2, m * TW + 2), dtype=x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    d = xp.empty((N, C, TH, TW, a, a), dtype=x.dtype)
    for r in range(a):
        for s in range(a):
            d[..., r, s] = xpad[:, :, r:r + m * TH:m, s:s + m * TW:m]
    return d


def _input_transform(x, padding, TH, TW, m):
    xp = get_xp(x)
    bt, _, _ = _matrices(m, xp, x.dtype)
    return xp.einsum("kr,ncyxrs,ls->ncyxkl", bt, _input_tiles(x, padding, TH, TW, m), bt)


def conv3x3_forward(x, weight, bias, padding, m: int = 2):
    """y (N, O, OH, OW) = conv2d(x, weight, bias, stride 1, padding), by F(m x m, 3x3)."""
    xp = get_xp(x)
    N, C, H, W, OH, OW, TH, TW = _geometry(x.shape, padding, m)
    O, a = weight.shape[0], m + 2
    V = _input_transform(x, padding, TH, TW, m)                    # (N, C, TH, TW, a, a)
    U = filter_transform(weight, m).reshape(a, a, O, C)
    M = xp.einsum("ncyxkl,kloc->noyxkl", V, U)                     # the a*a channel sums
    _, _, at = _matrices(m, xp, x.dtype)
    Y = xp.einsum("ak,noyxkl,bl->noyaxb", at, M, at)               # (N, O, TH, m, TW, m)
    y = Y.reshape(N, O, m * TH, m * TW)[:, :, :OH, :OW]
    if bias is not None:
        y = y + bias.reshape(1, O, 1, 1)
    return xp.ascontiguousarray(y)


def conv3x3_backward(dy, x, weight, padding, need_input_grad, need_weight_grad,
                     need_bias_grad, m: int = 2):
    """(dx | None, dweight | None, dbias | None) for conv3x3_forward; `x` may be a shape
    when the weight gradient is not asked for."""
    xp = get_xp(dy)
    x_shape = tuple(x) if isinstance(x, (tuple, list)) else tuple(x.shape)
    N, C, H, W, OH, OW, TH, TW = _geometry(x_shape, padding, m)
    O, a = weight.shape[0], m + 2
    bt, _, at = _matrices(m, xp, dy.dtype)
    dY = xp.zeros((N, O, m * TH, m * TW), dtype=dy.dtype)           # zero on cropped outputs
    dY[:, :, :OH, :OW] = dy
    dY = dY.reshape(N, O, TH, m, TW, m)
    dM = xp.einsum("ak,noyaxb,bl->noyxkl", at, dY, at)              # adjoint of A^T . A
    dx = dweight = dbias = None
    if need_bias_grad:
        dbias = dy.sum(axis=(0, 2, 3))
    if need_weight_grad:
        V = _input_transform(x, padding, TH, TW, m)
        dU = xp.einsum("noyxkl,ncyxkl->kloc", dM, V).reshape(a * a, O, C)
        dweight = filter_transform_adjoint(dU, m)
    if need_input_grad:
        U = filter_transform(weight, m).reshape(a, a, O, C)
        dV = xp.einsum("noyxkl,kloc->ncyxkl", dM, U)
        dd = xp.einsum("kr,ncyxkl,ls->ncyxrs", bt, dV, bt)          # adjoint of B^T . B
        ph, pw = padding
        dxpad = xp.zeros((N, C, m * TH + 2, m * TW + 2), dtype=dy.dtype)
        for r in range(a):
            for s in range(a):
                # overlapping tiles: a pixel gets contributions from up to 4 tiles -> add
                dxpad[:, :, r:r + m * TH:m, s:s + m * TW:m] += dd[..., r, s]
        dx = xp.ascontiguousarray(dxpad[:, :, ph:ph + H, pw:pw + W])
    return dx, dweight, dbias
