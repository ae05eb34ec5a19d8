"""Pooling (NCHW): max_pool2d, avg_pool2d, adaptive_avg_pool2d and their 1-D forms.

The window loops run in the backend's fused kernels (see minidl/backend/reference/pool.py for
the output-size rule, ceil_mode, padding and the average divisor).

Gradients. Every pooling here is LINEAR in its input once the window choices are fixed:
  * average pooling: y = A x, a fixed averaging matrix A, so dx = A^T dy;
  * max pooling: y = x[argmax] (a gather at the winners), so dx = scatter-add of dy at argmax
    (overlapping windows can pick the same pixel twice: the gradients ADD).
So each backward is itself a small Function (the adjoint map), whose own backward is the
forward map again. That gives higher-order gradients with no extra maths: the adjoint of the
adjoint is the original.

The 1-D forms are the 2-D ones on an (N, C, 1, L) view; their indices (flat h*W + w with
h = 0) are then exactly PyTorch's 1-D indices.
"""
from __future__ import annotations

import numbers

from ..autograd.function import Function
from ._util import Tensor, check_float


# ---- max pooling --------------------------------------------------------------------------

class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode, return_indices):
        y, argmax = ctx._be.fused.max_pool2d_forward(ctx._be.xp.ascontiguousarray(x), kernel,
                                                     stride, padding, dilation, ceil_mode)
        ctx.argmax, ctx.x_shape = argmax, tuple(x.shape)
        if return_indices:  # PyTorch's indices are int64; a backend may keep a narrower type
            return y, argmax.astype("int64", copy=False)
        return y

    @staticmethod
    def backward(ctx, grad, *unused_index_grad):
        return (MaxPoolScatter.apply(grad, ctx.argmax, ctx.x_shape),) + (None,) * 6


class MaxPoolScatter(Function):
    """dy -> dx: each dy lands on (is added to) the pixel that won its window."""

    @staticmethod
    def forward(ctx, dy, argmax, x_shape):
        ctx.argmax, ctx.x_shape = argmax, x_shape
        return ctx._be.fused.max_pool2d_backward(ctx._be.xp.ascontiguousarray(dy), argmax,
                                                 x_shape)

    @staticmethod
    def backward(ctx, gg):
        # the adjoint of a scatter-add is a gather: read gg at every winner
        N, C, H, W = ctx.x_shape
        index = Tensor._wrap(ctx.argmax.reshape(N, C, -1).astype("int64", copy=False), ctx._be,
                             None, 0)
        picked = gg.reshape(N, C, H * W).gather(2, index)
        return picked.reshape(tuple(ctx.argmax.shape)), None, None


# ---- average pooling ----------------------------------------------------------------------

class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode, count_include_pad):
        ctx.x_shape = tuple(x.shape)
        ctx.conf = (kernel, stride, padding, ceil_mode, count_include_pad)
        return ctx._be.fused.avg_pool2d_forward(ctx._be.xp.ascontiguousarray(x), *ctx.conf)

    @staticmethod
    def backward(ctx, grad):
        return (AvgPoolAdjoint.apply(grad, ctx.x_shape, ctx.conf),) + (None,) * 5


class AvgPoolAdjoint(Function):
    """dy -> dx = A^T dy: each window spreads dy/divisor over its taps."""

    @staticmethod
    def forward(ctx, dy, x_shape, conf):
        ctx.conf = conf
        return ctx._be.fused.avg_pool2d_backward(ctx._be.xp.ascontiguousarray(dy), x_shape,
                                                 *conf)

    @staticmethod
    def backward(ctx, gg):
        return AvgPool2d.apply(gg, *ctx.conf), None, None


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        ctx.x_shape = tuple(x.shape)
        return ctx._be.fused.adaptive_avg_pool2d_forward(ctx._be.xp.ascontiguousarray(x),
                                                         output_size)

    @staticmethod
    def backward(ctx, grad):
        return AdaptiveAvgPoolAdjoint.apply(grad, ctx.x_shape), None


class AdaptiveAvgPoolAdjoint(Function):
    @staticmethod
    def forward(ctx, dy, x_shape):
        ctx.output_size = tuple(dy.shape[2:])
        return ctx._be.fused.adaptive_avg_pool2d_backward(ctx._be.xp.ascontiguousarray(dy),
                                                          x_shape)

    @staticmethod
    def backward(ctx, gg):
        return AdaptiveAvgPool2d.apply(gg, ctx.output_size), None


# ---- argument handling --------------------------------------------------------------------

def _pair(op, name, value, minimum):
    t = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(t) == 1:
        t = t * 2
    if len(t) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                              for v in t) or min(t) < minimum:
        raise ValueError(f"{op}: {name} must be an int or a pair of ints >= {minimum}, "
                         f"got {value!r}")
    return int(t[0]), int(t[1])


def _batched(op, x, spatial):
    """(x as (N, C, H, W), was_unbatched) for a (C, H, W) or (N, C, H, W) input."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    check_float(x, op)
    if x.ndim not in (spatial + 1, spatial + 2):
        raise RuntimeError(f"{op}: expected {spatial + 1}D (unbatched) or {spatial + 2}D "
                           f"(batched) input, but got input of size: {list(x.shape)}")
    return (x.unsqueeze(0), True) if x.ndim == spatial + 1 else (x, False)


def _window_args(op, kernel_size, stride, padding, dilation):
    k = _pair(op, "kernel_size", kernel_size, 1)
    s = k if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) \
        else _pair(op, "stride", stride, 1)
    p = _pair(op, "padding", padding, 0)
    d = _pair(op, "dilation", dilation, 1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise RuntimeError(f"{op}: pad should be at most half of kernel size, but got "
                           f"padding={p} and kernel_size={k}")
    return k, s, p, d


def _check_window_fits(op, x, k, p, d):
    for size, ki, pi, di in zip(x.shape[2:], k, p, d):
        span = size + 2 * pi - di * (ki - 1) - 1
        if span < 0:
            raise RuntimeError(f"{op}: input {list(x.shape)} is too small for kernel_size {k}, "
                               f"padding {p} and dilation {d}: the output would be empty")


# ---- public functions ---------------------------------------------------------------------

def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over each window; with return_indices also the flat h*W + w index of each winner."""
    op = "max_pool2d"
    x, unbatched = _batched(op, input, 2)
    k, s, p, d = _window_args(op, kernel_size, stride, padding, dilation)
    _check_window_fits(op, x, k, p, d)
    out = MaxPool2d.apply(x, k, s, p, d, bool(ceil_mode), bool(return_indices))
    if unbatched:
        out = tuple(o.squeeze(0) for o in out) if return_indices else out.squeeze(0)
    return out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None):
    """Mean over each window (divisor per PyTorch's count_include_pad / ceil_mode rule)."""
    op = "avg_pool2d"
    x, unbatched = _batched(op, input, 2)
    k, s, p, _ = _window_args(op, kernel_size, stride, padding, 1)
    _check_window_fits(op, x, k, p, (1, 1))
    y = AvgPool2d.apply(x, k, s, p, bool(ceil_mode), bool(count_include_pad))
    if divisor_override is not None:
        y = _redivide(op, y, x, k, s, p, divisor_override)
    return y.squeeze(0) if unbatched else y


def _redivide(op, y, x, k, s, p, divisor):
    """Turn a count_include_pad=True mean into sum / divisor: multiply back by each window's
    padded size (ceil_mode overhang excluded), then divide by the override."""
    if isinstance(divisor, bool) or not isinstance(divisor, numbers.Integral) or divisor == 0:
        raise ValueError(f"{op}: divisor_override must be a non-zero int, got {divisor!r}")
    sizes = []
    for axis, (size, ki, si, pi) in enumerate(zip(x.shape[2:], k, s, p)):
        n = y.shape[2 + axis]
        sizes.append([min(o * si - pi + ki, size + pi) - (o * si - pi) for o in range(n)])
    grid = [[a * b for b in sizes[1]] for a in sizes[0]]
    scale = Tensor(grid, dtype=y.dtype, device=y.device) / float(divisor)
    return y * scale


def adaptive_avg_pool2d(input, output_size):
    """Average into a fixed (OH, OW) grid; None in output_size keeps that input dim."""
    op = "adaptive_avg_pool2d"
    x, unbatched = _batched(op, input, 2)
    size = (output_size, output_size) if isinstance(output_size, numbers.Integral) or \
        output_size is None else tuple(output_size)
    if len(size) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    size = tuple(x.shape[2 + i] if v is None else v for i, v in enumerate(size))
    oh, ow = _pair(op, "output_size", size, 1)
    y = AdaptiveAvgPool2d.apply(x, (oh, ow))
    return y.squeeze(0) if unbatched else y


def _one_dim(op, input):
    _batched(op, input, 1)  # validates dims and dtype with the 1-D op's name
    return input.unsqueeze(-2)


def _int1(op, name, v):
    if v is None:
        return None
    t = (v,) if isinstance(v, numbers.Integral) else tuple(v)
    if len(t) == 0:
        return None
    if len(t) != 1:
        raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {v!r}")
    return int(t[0])


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    op = "max_pool1d"
    x = _one_dim(op, input)
    k = _int1(op, "kernel_size", kernel_size)
    s = _int1(op, "stride", stride)
    out = max_pool2d(x, (1, k), (1, k if s is None else s), (0, _int1(op, "padding", padding)),
                     (1, _int1(op, "dilation", dilation)), ceil_mode, return_indices)
    if return_indices:
        return tuple(o.squeeze(-2) for o in out)
    return out.squeeze(-2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True):
    op = "avg_pool1d"
    x = _one_dim(op, input)
    k = _int1(op, "kernel_size", kernel_size)
    s = _int1(op, "stride", stride)
    return avg_pool2d(x, (1, k), (1, k if s is None else s), (0, _int1(op, "padding", padding)),
                      ceil_mode, count_include_pad).squeeze(-2)


def adaptive_avg_pool1d(input, output_size):
    op = "adaptive_avg_pool1d"
    x = _one_dim(op, input)
    return adaptive_avg_pool2d(x, (1, _int1(op, "output_size", output_size))).squeeze(-2)
