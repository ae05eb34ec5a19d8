"""Activation functions: relu, leaky_relu, elu, sigmoid, softplus, silu, gelu.

GELU and SiLU run through the backend's fused kernels. Their backward is itself a Function
(`GeluBackward`, `SiluBackward`) whose own gradient is written in closed form with minidl ops,
so second derivatives work through the fused path too.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ._util import Tensor, check_float


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx._be.xp.maximum(x, 0)
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        # relu'(0) is taken as 0, as in PyTorch
        y = ctx.output()
        if is_grad_enabled():   # create_graph=True: differentiable minidl ops
            return grad * (y > 0).to(grad.dtype)
        # first order: one fused pass, without the mask arrays of the composite form (on a
        # CNN's first layer those were two extra activation-sized arrays at the memory peak)
        return Tensor._wrap(ctx._be.fused.relu_backward(y._data, grad._data), ctx._be, None, 0)


def relu(x, inplace: bool = False):
    if inplace:
        from .inplace import relu_
        return relu_(x)
    return ReLU.apply1(x)


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(ctx.inputs[0])
        ctx.slope = slope
        xp = ctx._be.xp
        return xp.where(x > 0, x, x * xp.asarray(slope, dtype=x.dtype))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        pos = (x > 0).to(grad.dtype)
        return grad * (pos + (1 - pos) * ctx.slope), None


def leaky_relu(x, negative_slope: float = 0.01, inplace: bool = False):
    return LeakyReLU.apply(x, float(negative_slope))


class ELU(Function):
    @staticmethod
    def forward(ctx, x, alpha):
        xp = ctx._be.xp
        ctx.save_for_backward(ctx.inputs[0])
        ctx.alpha = alpha
        y = xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * xp.asarray(alpha, dtype=x.dtype))
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        y = ctx.output()
        pos = (x > 0).to(grad.dtype)
        # for x <= 0: d/dx alpha (e^x - 1) = alpha e^x = y + alpha
        return grad * (pos + (1 - pos) * (y + ctx.alpha)), None


def elu(x, alpha: float = 1.0, inplace: bool = False):
    return ELU.apply(x, float(alpha))


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        xp = ctx._be.xp
        # 1/(1+e^-x) overflows e^-x for very negative x; 0.5(1 + tanh(x/2)) is the same
        # function and never overflows
        y = xp.tanh(x * xp.asarray(0.5, dtype=x.dtype))
        y += 1
        y *= 0.5
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output()
        return grad * y * (1 - y)


def sigmoid(x):
    if x._data.dtype.kind != "f":
        x = x.to(_dt.get_default_dtype())
    return Sigmoid.apply1(x)


class Softplus(Function):
    @staticmethod
    def forward(ctx, x, beta, threshold):
        xp = ctx._be.xp
        ctx.save_for_backward(ctx.inputs[0])
        ctx.meta = (beta, threshold)
        bx = x * xp.asarray(beta, dtype=x.dtype)
        # log(1 + e^bx) computed as logaddexp(0, bx) never overflows; above the threshold
        # PyTorch returns x itself (the two agree to float precision there)
        soft = xp.logaddexp(xp.zeros((), dtype=x.dtype), bx) / xp.asarray(beta, dtype=x.dtype)
        return xp.where(bx > threshold, x, soft)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        beta, threshold = ctx.meta
        bx = x * beta
        s = sigmoid(bx)
        linear = (bx > threshold).to(grad.dtype)
        return grad * (linear + (1 - linear) * s), None, None


def softplus(x, beta: float = 1.0, threshold: float = 20.0):
    return Softplus.apply(x, float(beta), float(threshold))


# ---- GELU and SiLU through the fused kernels ------------------------------------------------
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


class GELU(Function):
    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(ctx.inputs[0])
        ctx.approximate = approximate
        return ctx._be.fused.gelu_forward(x, approximate)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return GeluBackward.apply(x, grad, ctx.approximate), None


class GeluBackward(Function):
    """dx = gelu'(x) * grad, fused. Its own derivatives: d/dgrad = gelu'(x),
    d/dx = gelu''(x) * grad, with
      exact:  gelu'(x) = Phi(x) + x phi(x),     gelu''(x) = phi(x) (2 - x^2)
      tanh:   with u = k (x + c x^3), t = tanh(u), u' = k (1 + 3 c x^2), u'' = 6 k c x:
              gelu'(x) = (1 + t)/2 + x (1 - t^2) u' / 2
              gelu''(x) = (1 - t^2) (u' + x (u'' - 2 t u'^2) / 2)"""

    @staticmethod
    def forward(ctx, x, grad, approximate):
        ctx.save_for_backward(*ctx.inputs[:2])
        ctx.approximate = approximate
        return ctx._be.fused.gelu_backward(x, grad, approximate)

    @staticmethod
    def backward(ctx, gg):
        from .elementwise import exp, tanh
        x, grad = ctx.saved_tensors
        nx, ng = ctx.needs_input_grad[:2]
        d_grad = GeluBackward.apply(x, gg, ctx.approximate) if ng else None
        d_x = None
        if nx:
            if ctx.approximate == "tanh":
                k = _SQRT_2_OVER_PI
                u = (x + x * x * x * _GELU_C) * k
                t = tanh(u)
                du = (x * x * (3 * _GELU_C) + 1) * k
                d2u = x * (6 * k * _GELU_C)
                second = (1 - t * t) * (du + x * (d2u - 2 * t * du * du) * 0.5)
            else:
                phi = exp(x * x * -0.5) * _INV_SQRT_2PI
                second = phi * (2 - x * x)
            d_x = gg * grad * second
        return d_x, d_grad, None


def gelu(x, approximate: str = "none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    check_float(x, "gelu")
    return GELU.apply(x, approximate)


class SiLU(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(ctx.inputs[0])
        return ctx._be.fused.silu_forward(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return SiluBackward.apply(x, grad)


class SiluBackward(Function):
    """silu(x) = x s(x), s = sigmoid: silu' = s (1 + x (1 - s)),
    silu'' = s (1 - s) (2 + x (1 - 2 s))."""

    @staticmethod
    def forward(ctx, x, grad):
        ctx.save_for_backward(*ctx.inputs)
        return ctx._be.fused.silu_backward(x, grad)

    @staticmethod
    def backward(ctx, gg):
        x, grad = ctx.saved_tensors
        nx, ng = ctx.needs_input_grad
        d_grad = SiluBackward.apply(x, gg) if ng else None
        d_x = None
        if nx:
            s = sigmoid(x)
            d_x = gg * grad * s * (1 - s) * (2 + x * (1 - 2 * s))
        return d_x, d_grad


def silu(x, inplace: bool = False):
    check_float(x, "silu")
    return SiLU.apply(x)


def hardtanh(x, min_val=-1.0, max_val=1.0):
    from .elementwise import clamp
    return clamp(x, min_val, max_val)


def relu6(x):
    return hardtanh(x, 0.0, 6.0)


def mish(x):
    from .elementwise import tanh
    return x * tanh(softplus(x))


def logsigmoid(x):
    # log(sigmoid(x)) = -softplus(-x), stable for large |x|
    return -softplus(-x)


_ = Tensor
