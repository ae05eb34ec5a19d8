"""Convolutions (NCHW): conv1d, conv2d, conv_transpose1d/2d, and unfold/fold (im2col/col2im).

Forward and backward run on the backend's fused conv kernels (im2col + one GEMM per group;
see minidl/backend/reference/conv.py for the maths and the column layout):

    conv2d               y  = conv(x, W) + b               fused conv2d_forward
      backward           dx = conv^T(dy, W), dW = dy (x) cols(x), db = sum(dy)
                                                            fused conv2d_backward
    conv_transpose2d     y  = conv^T(x, W) + b: the input-gradient of a conv2d run forward,
                         i.e. conv2d_backward(dy=x) with only the input gradient asked for
      backward           dx = conv(dy, W), dW = conv2d_backward(dy=x, x=dy) weight gradient

A transposed convolution is exactly the adjoint (the backward) of a convolution with the same
weight, which is why one pair of kernels serves both.

Double backward: under create_graph the backward is rebuilt from differentiable pieces
(`Im2Col` and `Col2Im`, which are each other's adjoint, plus matmul), so every gradient of a
gradient is again a convolution-shaped computation.

Padding 'same' with an even dilated kernel needs one more pixel on one side than the other;
like PyTorch we put the extra one on the right/bottom by padding the input first.
"""
from __future__ import annotations

import numbers

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ._util import Tensor, check_float


def _wrap(ctx, array):
    return None if array is None else Tensor._wrap(array, ctx._be, None, 0)


# ---- im2col / col2im: linear maps, each the other's adjoint ------------------------------

class Im2Col(Function):
    """x (N, C, H, W) -> cols (C*kh*kw, N*OH*OW); geom = (kh, kw, stride, padding, dilation)."""

    @staticmethod
    def forward(ctx, x, geom):
        ctx.x_shape, ctx.geom = tuple(x.shape), geom
        return ctx._be.fused.im2col(ctx._be.xp.ascontiguousarray(x), *geom)

    @staticmethod
    def backward(ctx, grad):
        return Col2Im.apply(grad, ctx.x_shape, ctx.geom), None


class Col2Im(Function):
    """cols -> x_shape, adding overlapping patches: the adjoint of Im2Col."""

    @staticmethod
    def forward(ctx, cols, x_shape, geom):
        ctx.geom = geom
        return ctx._be.fused.col2im(ctx._be.xp.ascontiguousarray(cols), x_shape, *geom)

    @staticmethod
    def backward(ctx, grad):
        return Im2Col.apply(grad, ctx.geom), None, None


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv_composite(x, w, s, p, d, groups):
    """conv2d written with Im2Col + matmul (differentiable to any order)."""
    O, Cg, kh, kw = w.shape
    N, _, H, W = x.shape
    OH, OW = _out_size(H, kh, s[0], p[0], d[0]), _out_size(W, kw, s[1], p[1], d[1])
    K = Cg * kh * kw
    cols = Im2Col.apply(x, (kh, kw, s, p, d)).reshape(groups, K, N * OH * OW)
    y2 = w.reshape(groups, O // groups, K) @ cols
    return y2.reshape(O, N, OH, OW).permute(1, 0, 2, 3)


def _conv_input_grad_composite(dy, w, x_shape, s, p, d, groups):
    """dx of conv2d: W^T dy scattered back by Col2Im."""
    O, Cg, kh, kw = w.shape
    N, _, OH, OW = dy.shape
    dy2 = dy.permute(1, 0, 2, 3).reshape(groups, O // groups, N * OH * OW)
    dcols = w.reshape(groups, O // groups, Cg * kh * kw).mT @ dy2
    return Col2Im.apply(dcols.reshape(-1, N * OH * OW), tuple(x_shape), (kh, kw, s, p, d))


def _conv_weight_grad_composite(dy, x, w_shape, s, p, d, groups):
    """dW of conv2d: dy (as O x N*OH*OW) times the columns of x, per group."""
    O, Cg, kh, kw = w_shape
    N, _, OH, OW = dy.shape
    dy2 = dy.permute(1, 0, 2, 3).reshape(groups, O // groups, N * OH * OW)
    cols = Im2Col.apply(x, (kh, kw, s, p, d)).reshape(groups, Cg * kh * kw, N * OH * OW)
    return (dy2 @ cols.mT).reshape(tuple(w_shape))


# ---- convolution and its transpose --------------------------------------------------------

class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        xp = ctx._be.xp
        y, saved = ctx._be.fused.conv2d_forward(xp.ascontiguousarray(x), xp.ascontiguousarray(w),
                                                b, stride, padding, dilation, groups)
        ctx.save_for_backward(*ctx.inputs[:2])
        ctx.cols = saved if ctx.needs_input_grad[1] else None  # only the weight grad uses them
        ctx.conf = (stride, padding, dilation, groups)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad[:3]
        s, p, d, groups = ctx.conf
        if is_grad_enabled():
            dx = _conv_input_grad_composite(grad, w, x.shape, s, p, d, groups) if nx else None
            dw = _conv_weight_grad_composite(grad, x, w.shape, s, p, d, groups) if nw else None
            db = grad.sum((0, 2, 3)) if nb else None
        else:
            xp = ctx._be.xp
            dx, dw, db = ctx._be.fused.conv2d_backward(
                xp.ascontiguousarray(grad._data), xp.ascontiguousarray(x._data),
                xp.ascontiguousarray(w._data), ctx.cols, s, p, d, groups, nx, nw, nb)
            dx, dw, db = _wrap(ctx, dx), _wrap(ctx, dw), _wrap(ctx, db)
        return dx, dw, db, None, None, None, None


class ConvTranspose2d(Function):
    """y = conv^T(x, W) + b with W of shape (C_in, C_out/groups, kh, kw); out_shape is y's."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups, out_shape):
        xp = ctx._be.xp
        y, _, _ = ctx._be.fused.conv2d_backward(
            xp.ascontiguousarray(x), out_shape, xp.ascontiguousarray(w), None, stride, padding,
            dilation, groups, True, False, False)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        ctx.save_for_backward(*ctx.inputs[:2])
        ctx.conf = (stride, padding, dilation, groups)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad[:3]
        s, p, d, groups = ctx.conf
        if is_grad_enabled():
            dx = _conv_composite(grad, w, s, p, d, groups) if nx else None
            dw = _conv_weight_grad_composite(x, grad, w.shape, s, p, d, groups) if nw else None
        else:
            xp, fused = ctx._be.xp, ctx._be.fused
            g = xp.ascontiguousarray(grad._data)
            w_arr = xp.ascontiguousarray(w._data)
            dx = dw = None
            if nx:  # the adjoint of conv^T is the convolution itself
                dx = _wrap(ctx, fused.conv2d_forward(g, w_arr, None, s, p, d, groups)[0])
            if nw:  # in the underlying conv, the roles are: input = dy, output gradient = x
                dw = _wrap(ctx, fused.conv2d_backward(
                    xp.ascontiguousarray(x._data), g, w_arr, None, s, p, d, groups,
                    False, True, False)[1])
        db = grad.sum((0, 2, 3)) if nb else None
        return dx, dw, db, None, None, None, None, None


# ---- argument handling --------------------------------------------------------------------

def _tuple(op, name, value, n, minimum):
    t = (value,) * n if isinstance(value, numbers.Integral) else tuple(value)
    if len(t) == 1 and n > 1:
        t = t * n
    if len(t) != n or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                              for v in t) or min(t) < minimum:
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints >= {minimum}, "
                         f"got {value!r}")
    return tuple(int(v) for v in t)


def _check_conv_inputs(op, x, w, bias, groups, spatial, transposed=False):
    """Dims, dtypes and channel counts, with PyTorch-style messages. Returns (x, unbatched)."""
    if not isinstance(x, Tensor) or not isinstance(w, Tensor):
        raise TypeError(f"{op}: input and weight must be Tensors")
    check_float(x, op)
    if x._data.dtype != w._data.dtype or (bias is not None and bias._data.dtype != x._data.dtype):
        raise TypeError(f"{op}: input ({x.dtype}), weight ({w.dtype})"
                        + (f" and bias ({bias.dtype})" if bias is not None else "")
                        + " must have the same dtype")
    if x.ndim not in (spatial + 1, spatial + 2):
        raise RuntimeError(f"{op}: expected {spatial + 1}D (unbatched) or {spatial + 2}D "
                           f"(batched) input, but got input of size: {list(x.shape)}")
    if w.ndim != spatial + 2:
        raise RuntimeError(f"{op}: weight must be {spatial + 2}D, got size {list(w.shape)}")
    unbatched = x.ndim == spatial + 1
    if unbatched:
        x = x.unsqueeze(0)
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    C = x.shape[1]
    if transposed:
        expected_c, out_c = w.shape[0], w.shape[1] * groups
        if C != expected_c or C % groups:
            raise RuntimeError(f"{op}: given transposed=1, weight of size {list(w.shape)}, "
                               f"expected input{list(x.shape)} to have {expected_c} channels "
                               f"(divisible by groups={groups}), but got {C} channels instead")
    else:
        expected_c, out_c = w.shape[1] * groups, w.shape[0]
        if C != expected_c:
            raise RuntimeError(f"{op}: given groups={groups}, weight of size {list(w.shape)}, "
                               f"expected input{list(x.shape)} to have {expected_c} channels, "
                               f"but got {C} channels instead")
        if out_c % groups:
            raise RuntimeError(f"{op}: given groups={groups}, expected weight to be divisible "
                               f"by {groups} at dimension 0, but got weight of size "
                               f"{list(w.shape)}")
    if bias is not None and tuple(bias.shape) != (out_c,):
        raise RuntimeError(f"{op}: expected bias of shape [{out_c}] (one per output channel), "
                           f"got {list(bias.shape)}")
    return x, unbatched


def _same_padding(op, x, kernel, stride, dilation):
    """'same' padding (stride 1 only): (padded x, symmetric padding). Odd totals put the extra
    pixel on the right/bottom, as PyTorch does."""
    if any(s != 1 for s in stride):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                         f"(got stride={stride})")
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    extra = [t % 2 for t in total]
    if any(extra):
        from .shape import pad
        x = pad(x, (0, extra[1], 0, extra[0]))
    return x, (total[0] // 2, total[1] // 2)


def _check_output_size(op, x, kernel, s, p, d):
    H, W = x.shape[2:]
    if _out_size(H, kernel[0], s[0], p[0], d[0]) < 1 or _out_size(W, kernel[1], s[1], p[1],
                                                                   d[1]) < 1:
        eff = (d[0] * (kernel[0] - 1) + 1, d[1] * (kernel[1] - 1) + 1)
        raise RuntimeError(f"{op}: calculated padded input size per channel: "
                           f"({H + 2 * p[0]} x {W + 2 * p[1]}). Kernel size: ({eff[0]} x "
                           f"{eff[1]}). Kernel size can't be greater than actual input size")


# ---- public functions ---------------------------------------------------------------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """2-D convolution of (N, C, H, W) (or unbatched (C, H, W)) with weight (O, C/groups, kh, kw).

    padding: int, (h, w), 'valid' (no padding) or 'same' (output size = input size, stride 1)."""
    op = "conv2d"
    x, unbatched = _check_conv_inputs(op, input, weight, bias, groups, 2)
    s = _tuple(op, "stride", stride, 2, 1)
    d = _tuple(op, "dilation", dilation, 2, 1)
    kernel = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            p = (0, 0)
        elif padding == "same":
            x, p = _same_padding(op, x, kernel, s, d)
        else:
            raise ValueError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', "
                             f"got {padding!r}")
    else:
        p = _tuple(op, "padding", padding, 2, 0)
    _check_output_size(op, x, kernel, s, p, d)
    y = Conv2d.apply(x, weight, bias, s, p, d, int(groups))
    return y.squeeze(0) if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """1-D convolution of (N, C, L) (or (C, L)) with weight (O, C/groups, k): conv2d on H = 1."""
    op = "conv1d"
    _check_conv_inputs(op, input, weight, bias, groups, 1)
    s = (1,) + _tuple(op, "stride", stride, 1, 1)
    d = (1,) + _tuple(op, "dilation", dilation, 1, 1)
    p = padding if isinstance(padding, str) else (0,) + _tuple(op, "padding", padding, 1, 0)
    y = conv2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, s, p, d, groups)
    return y.squeeze(-2)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1):
    """Transposed ("fractionally strided") convolution: the adjoint of conv2d.

    weight (C_in, C_out/groups, kh, kw); output size per dim:
        (size - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1"""
    op = "conv_transpose2d"
    x, unbatched = _check_conv_inputs(op, input, weight, bias, groups, 2, transposed=True)
    s = _tuple(op, "stride", stride, 2, 1)
    p = _tuple(op, "padding", padding, 2, 0)
    op_ = _tuple(op, "output_padding", output_padding, 2, 0)
    d = _tuple(op, "dilation", dilation, 2, 1)
    if any(o >= max(si, di) for o, si, di in zip(op_, s, d)):
        raise ValueError(f"{op}: output padding must be smaller than either stride or "
                         f"dilation, got output_padding={op_}, stride={s}, dilation={d}")
    N, _, H, W = x.shape
    kh, kw = weight.shape[2:]
    out_h = (H - 1) * s[0] - 2 * p[0] + d[0] * (kh - 1) + op_[0] + 1
    out_w = (W - 1) * s[1] - 2 * p[1] + d[1] * (kw - 1) + op_[1] + 1
    if out_h < 1 or out_w < 1:
        raise RuntimeError(f"{op}: the output size ({out_h} x {out_w}) is too small for input "
                           f"{list(x.shape)} with stride {s}, padding {p}, dilation {d}")
    out_shape = (N, weight.shape[1] * groups, out_h, out_w)
    y = ConvTranspose2d.apply(x, weight, bias, s, p, d, int(groups), out_shape)
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1):
    """Transposed 1-D convolution: conv_transpose2d on H = 1."""
    op = "conv_transpose1d"
    _check_conv_inputs(op, input, weight, bias, groups, 1, transposed=True)
    s = (1,) + _tuple(op, "stride", stride, 1, 1)
    p = (0,) + _tuple(op, "padding", padding, 1, 0)
    o = (0,) + _tuple(op, "output_padding", output_padding, 1, 0)
    d = (1,) + _tuple(op, "dilation", dilation, 1, 1)
    y = conv_transpose2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, s, p, o, groups, d)
    return y.squeeze(-2)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding patches: (N, C, H, W) -> (N, C*kh*kw, L), L = OH*OW (PyTorch's F.unfold)."""
    op = "unfold"
    check_float(input, op)
    if input.ndim != 4:
        raise RuntimeError(f"{op}: expected a 4-D (N, C, H, W) input, got {list(input.shape)}")
    k = _tuple(op, "kernel_size", kernel_size, 2, 1)
    d = _tuple(op, "dilation", dilation, 2, 1)
    p = _tuple(op, "padding", padding, 2, 0)
    s = _tuple(op, "stride", stride, 2, 1)
    _check_output_size(op, input, k, s, p, d)
    N = input.shape[0]
    cols = Im2Col.apply(input, (k[0], k[1], s, p, d))          # (C*kh*kw, N*L)
    return cols.reshape(cols.shape[0], N, -1).permute(1, 0, 2)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The adjoint of unfold: (N, C*kh*kw, L) -> (N, C, H, W), overlapping patches summed."""
    op = "fold"
    check_float(input, op)
    k = _tuple(op, "kernel_size", kernel_size, 2, 1)
    d = _tuple(op, "dilation", dilation, 2, 1)
    p = _tuple(op, "padding", padding, 2, 0)
    s = _tuple(op, "stride", stride, 2, 1)
    H, W = _tuple(op, "output_size", output_size, 2, 1)
    if input.ndim != 3 or input.shape[1] % (k[0] * k[1]):
        raise RuntimeError(f"{op}: expected input of shape (N, C*{k[0]}*{k[1]}, L), got "
                           f"{list(input.shape)}")
    N, CK, L = input.shape
    blocks = _out_size(H, k[0], s[0], p[0], d[0]) * _out_size(W, k[1], s[1], p[1], d[1])
    if L != blocks:
        raise RuntimeError(f"{op}: expected input's last dim to be {blocks} (the number of "
                           f"sliding blocks for output_size {(H, W)}), got {L}")
    cols = input.permute(1, 0, 2).reshape(CK, N * L)
    return Col2Im.apply(cols, (N, CK // (k[0] * k[1]), H, W), (k[0], k[1], s, p, d))
