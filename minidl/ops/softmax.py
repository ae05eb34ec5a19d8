"""Softmax and log-softmax along one dimension, through the backend's fused row kernels.

    softmax(x)_j     = exp(x_j) / sum_k exp(x_k)
    log_softmax(x)_j = x_j - logsumexp(x)

The fused kernels work on the LAST axis of a C-contiguous array (one row = one softmax), so
for another `dim` we move that dim to the end, run the kernel and move it back.

Gradients (y is the saved output, g the incoming gradient, sums over the softmax axis):
    softmax:      dx = y * (g - sum(g * y))          (the Jacobian is diag(y) - y y^T)
    log_softmax:  dx = g - exp(y) * sum(g)           (d log p_j / dx_k = [j == k] - p_k)
Both only need the output, never the input. Plain backward calls the fused array kernel;
under create_graph the same formula is written with minidl ops on the output Tensor (which is
connected to this node), so second derivatives come out right.
"""
from __future__ import annotations

import warnings

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ._util import Tensor, canonical_dim


def _fused_grad(ctx, kernel, y, grad):
    """Run an array-level backward kernel on contiguous operands; wrap the result."""
    xp = ctx._be.xp
    dx = kernel(y._data, xp.ascontiguousarray(grad._data))
    return Tensor._wrap(dx, ctx._be, None, 0)


class Softmax(Function):
    """Softmax over the last axis (the wrapper moves `dim` there)."""

    @staticmethod
    def forward(ctx, x):
        y = ctx._be.fused.softmax_forward(ctx._be.xp.ascontiguousarray(x))
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output()
        if is_grad_enabled():  # create_graph: a differentiable composite of minidl ops
            return y * (grad - (grad * y).sum(-1, keepdim=True))
        return _fused_grad(ctx, ctx._be.fused.softmax_backward, y, grad)


class LogSoftmax(Function):
    """Log-softmax over the last axis, via a max-subtracted logsumexp (never log(softmax))."""

    @staticmethod
    def forward(ctx, x):
        y = ctx._be.fused.log_softmax_forward(ctx._be.xp.ascontiguousarray(x))
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output()
        if is_grad_enabled():
            return grad - y.exp() * grad.sum(-1, keepdim=True)
        return _fused_grad(ctx, ctx._be.fused.log_softmax_backward, y, grad)


def _implicit_dim(ndim: int, name: str) -> int:
    """PyTorch's legacy choice when no dim is given (deprecated there too)."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _along_dim(fn_class, x, dim, dtype, name):
    """Apply a last-axis Function along `dim`: move dim last, apply, move it back."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = x.to(dtype)
    if x._data.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating point tensor, got {x.dtype}; pass "
                        f"dtype=minidl.float32 or convert the input first")
    if dim is None:
        dim = _implicit_dim(x.ndim, name)
    if x.ndim == 0:  # a single element: softmax is 1, log_softmax 0
        return fn_class.apply(x.reshape(1)).reshape(())
    dim = canonical_dim(dim, x.ndim)
    last = x.ndim - 1
    if dim == last:
        return fn_class.apply(x)
    return fn_class.apply(x.movedim(dim, last)).movedim(last, dim)


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """exp(x) / sum(exp(x)) along `dim`; each slice sums to 1."""
    return _along_dim(Softmax, input, dim, dtype, "softmax")


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """log(softmax(x)) along `dim`, computed stably as x - logsumexp(x)."""
    return _along_dim(LogSoftmax, input, dim, dtype, "log_softmax")


def softmin(input, dim=None, _stacklevel: int = 3, dtype=None):
    """softmax(-x) along `dim`."""
    if dtype is not None:
        input = input.to(dtype)
    return softmax(-input, dim, dtype=None)

