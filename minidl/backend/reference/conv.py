"""2-D convolution (NCHW) as im2col + one matrix product: the plain reference.

A convolution is a dot product between every kernel-sized patch of the input and every
filter. Copy each patch into a column of a matrix ("im2col") and the whole layer becomes a
single GEMM, the operation a BLAS library does best:

    y[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]

where xpad is x with `padding` zeros on each side, s = stride, d = dilation.

im2col layout (used by every backend, so `saved` columns are interchangeable):

    cols has shape (C*kh*kw, N*OH*OW)
    cols[(c*kh + i)*kw + j, (n*OH + oh)*OW + ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]

Rows run over (channel, kernel row, kernel column); columns over (image, output row, output
column). With this layout the forward is y2 = W.reshape(O, C*kh*kw) @ cols, an (O, N*OH*OW)
matrix whose axes are then swapped to (N, O, OH, OW). For groups, channel block g uses rows
g*Cg*kh*kw ... (g+1)*Cg*kh*kw of cols and filters g*Og ... (g+1)*Og, one GEMM per group.

Backward, with dy2 = dy as an (O, N*OH*OW) matrix (the forward's y2 layout):

    dW    = dy2 @ cols^T                 (one GEMM per group)
    dcols = W^T @ dy2,  dx = col2im(dcols)
    db    = dy summed over n, oh, ow

col2im is the adjoint of im2col: every column entry is added back to the input pixel it was
copied from. Trap: windows overlap whenever stride < effective kernel size, so one pixel
receives contributions from several columns; col2im must ADD, never assign. Within one kernel
offset (i, j) the map (oh, ow) -> pixel is one-to-one, so `+=` on a strided slice is safe;
the overlaps come from different (i, j), which we visit one after another.

Output size (PyTorch's floor rule): OH = (H + 2*ph - dh*(kh - 1) - 1) // sh + 1.
"""
from __future__ import annotations

import numbers

from ._checks import require_float
from ._xp import get_xp

__all__ = ["im2col", "col2im", "conv2d_forward", "conv2d_backward"]


# ---------------------------------------------------------------------------------------
# geometry and argument checks (shared with the fast CPU version)

def int_pair(op: str, name: str, value, minimum: int) -> tuple:
    """An int or a pair of ints, each >= minimum, as an (h, w) tuple."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                 for v in pair) or min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be an int or an (h, w) pair of ints >= {minimum}, "
                         f"got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_geometry(op, x_shape, kh, kw, stride, padding, dilation):
    """Check the NCHW shape and window arguments; return (N, C, H, W, OH, OW, s, p, d)."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x must be a 4-D NCHW array, got shape {tuple(x_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    kh, kw = int_pair(op, "kernel size", (kh, kw), 1)
    s = int_pair(op, "stride", stride, 1)
    p = int_pair(op, "padding", padding, 0)
    d = int_pair(op, "dilation", dilation, 1)
    OH = (H + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    OW = (W + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    if OH < 1 or OW < 1:
        raise ValueError(
            f"{op}: the input {H}x{W} with padding {p} is smaller than the dilated kernel "
            f"{d[0] * (kh - 1) + 1}x{d[1] * (kw - 1) + 1}; the output would be {OH}x{OW}")
    return N, C, H, W, OH, OW, s, p, d


def check_conv_args(op, x_shape, weight, bias, groups):
    """Weight (O, C/groups, kh, kw), bias (O,) or None, groups dividing C and O."""
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must have shape (O, C/groups, kh, kw), "
                         f"got shape {tuple(weight.shape)}")
    O, Cg = weight.shape[:2]
    C = x_shape[1] if len(x_shape) == 4 else None
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if C is not None and (C % groups or O % groups or Cg * groups != C):
        raise ValueError(
            f"{op}: with groups={groups} and {C} input channels, weight must have shape "
            f"(O, {C // groups if C % groups == 0 else 'C/groups'}, kh, kw) with O divisible "
            f"by groups; got weight shape {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (O,):
        raise ValueError(f"{op}: bias must have shape ({O},) (one per filter), "
                         f"got {tuple(bias.shape)}")


def shape_of(x):
    """conv2d_backward accepts x or just its shape (the input-gradient path needs no data)."""
    return tuple(int(v) for v in (x if isinstance(x, (tuple, list)) else x.shape))


# ---------------------------------------------------------------------------------------
# im2col / col2im

def im2col(x, kh, kw, stride, padding, dilation):
    """(N, C, H, W) -> cols (C*kh*kw, N*OH*OW) in the layout of the module docstring."""
    require_float("im2col", x=x)
    N, C, H, W, OH, OW, s, p, d = conv_geometry("im2col", x.shape, kh, kw, stride, padding,
                                                dilation)
    xp = get_xp(x)
    if p != (0, 0):
        x = xp.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    cols = xp.empty((C, kh, kw, N, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # every output position's tap (i, j): a strided slice of shape (N, C, OH, OW)
            tap = x[:, :, i * d[0]: i * d[0] + s[0] * (OH - 1) + 1: s[0],
                          j * d[1]: j * d[1] + s[1] * (OW - 1) + 1: s[1]]
            cols[:, i, j] = tap.transpose(1, 0, 2, 3)
    return cols.reshape(C * kh * kw, N * OH * OW)


def col2im(cols, x_shape, kh, kw, stride, padding, dilation):
    """The adjoint of im2col: scatter-add cols (C*kh*kw, N*OH*OW) back to x_shape."""
    require_float("col2im", cols=cols)
    N, C, H, W, OH, OW, s, p, d = conv_geometry("col2im", x_shape, kh, kw, stride, padding,
                                                dilation)
    if tuple(cols.shape) != (C * kh * kw, N * OH * OW):
        raise ValueError(f"col2im: cols must have shape {(C * kh * kw, N * OH * OW)} for "
                         f"x_shape {tuple(x_shape)}, got {tuple(cols.shape)}")
    xp = get_xp(cols)
    dx = xp.zeros((N, C, H + 2 * p[0], W + 2 * p[1]), dtype=cols.dtype)
    c6 = cols.reshape(C, kh, kw, N, OH, OW)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i * d[0]: i * d[0] + s[0] * (OH - 1) + 1: s[0],
                     j * d[1]: j * d[1] + s[1] * (OW - 1) + 1: s[1]] += c6[:, i, j].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(dx[:, :, p[0]: p[0] + H, p[1]: p[1] + W])


# ---------------------------------------------------------------------------------------
# convolution

def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    """y (N, O, OH, OW); saved = the im2col columns of x (reused by the weight gradient)."""
    require_float("conv2d_forward", x=x, weight=weight, bias=bias)
    check_conv_args("conv2d_forward", x.shape, weight, bias, groups)
    O, Cg, kh, kw = weight.shape
    N, C, H, W, OH, OW, s, p, d = conv_geometry("conv2d_forward", x.shape, kh, kw, stride,
                                                padding, dilation)
    xp = get_xp(x)
    cols = im2col(x, kh, kw, s, p, d)
    w3 = weight.reshape(groups, O // groups, Cg * kh * kw)
    y2 = xp.matmul(w3, cols.reshape(groups, Cg * kh * kw, N * OH * OW))  # (groups, O/g, N*L)
    y = y2.reshape(O, N, OH, OW).transpose(1, 0, 2, 3)
    if bias is not None:
        y = y + bias.reshape(1, O, 1, 1)
    return xp.ascontiguousarray(y), cols


def conv2d_backward(dy, x, weight, saved, stride, padding, dilation, groups,
                    need_input_grad, need_weight_grad, need_bias_grad):
    """(dx | None, dweight | None, dbias | None).

    `x` may be the input array or just its shape (N, C, H, W). The input gradient needs only
    the shape (it is W^T dy scattered back by col2im), which is how a transposed convolution
    reuses this path. The weight gradient needs the im2col columns: `saved` from the forward,
    or, if saved is None, x itself to rebuild them.
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
    xp = get_xp(dy)
    L = N * OH * OW
    dy2 = dy.transpose(1, 0, 2, 3).reshape(groups, O // groups, L)
    w3 = weight.reshape(groups, O // groups, Cg * kh * kw)
    dx = dweight = dbias = None
    if need_bias_grad:
        dbias = dy.sum(axis=(0, 2, 3))
    if need_weight_grad:
        cols = saved if saved is not None else _cols_from_x(op, x, kh, kw, s, p, d)
        cols3 = cols.reshape(groups, Cg * kh * kw, L)
        dweight = xp.matmul(dy2, cols3.transpose(0, 2, 1)).reshape(weight.shape)
    if need_input_grad:
        dcols = xp.matmul(w3.transpose(0, 2, 1), dy2).reshape(C * kh * kw, L)
        dx = col2im(dcols, x_shape, kh, kw, s, p, d)
    return dx, dweight, dbias


def _cols_from_x(op, x, kh, kw, s, p, d):
    if isinstance(x, (tuple, list)):
        raise ValueError(f"{op}: the weight gradient needs the input data (or the saved "
                         f"columns from conv2d_forward), but x was given only as a shape {x}")
    return im2col(x, kh, kw, s, p, d)
