"""Dropout: zero each element with probability p during training, scale the rest by 1/(1-p).

Inverted dropout keeps E[y] = x, so evaluation (training=False) is simply the identity.
The random mask comes from the backend's fused `dropout_forward` drawing from minidl's
generator (`minidl.manual_seed` makes it reproducible).

For a fixed mask the op is linear and diagonal: y = x * mask / (1-p). Its gradient applies the
same diagonal map to dy, and that map is its own adjoint, so `MaskScale` below is both the
backward and the backward of the backward.

dropout1d/2d/3d ("feature" or "channel" dropout) zero whole channels instead of single
elements: one draw per (sample, channel), broadcast over the positions. Neighbouring pixels of
a feature map are strongly correlated, so dropping single pixels regularises them little.
"""
from __future__ import annotations

import numbers

from .. import random as _random
from ..autograd.function import Function
from ._util import Tensor, check_float


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p, rng):
        y, mask = ctx._be.fused.dropout_forward(ctx._be.xp.ascontiguousarray(x), p, rng)
        ctx.mask, ctx.p = mask, p
        return y

    @staticmethod
    def backward(ctx, grad):
        return MaskScale.apply(grad, ctx.mask, ctx.p), None, None


class MaskScale(Function):
    """g -> g * mask / (1-p): dropout's backward, which is its own adjoint."""

    @staticmethod
    def forward(ctx, g, mask, p):
        ctx.mask, ctx.p = mask, p
        return ctx._be.fused.dropout_backward(ctx._be.xp.ascontiguousarray(g), mask, p)

    @staticmethod
    def backward(ctx, gg):
        return MaskScale.apply(gg, ctx.mask, ctx.p), None, None


def _check_p(op, p):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero elements with probability p and scale the others by 1/(1-p) (training only)."""
    op = "dropout"
    p = _check_p(op, p)
    check_float(input, op)
    if not training or p == 0.0:
        return input
    rng = _random.rng_of(None)
    if inplace:
        from .inplace import apply_inplace
        return apply_inplace(input, lambda t: Dropout.apply(t, p, rng))
    return Dropout.apply(input, p, rng)


def _feature_dropout(op, input, p, training, inplace, spatial):
    """Drop whole channels of an (N, C, *spatial) or unbatched (C, *spatial) input."""
    p = _check_p(op, p)
    check_float(input, op)
    if input.ndim not in (spatial + 1, spatial + 2):
        raise RuntimeError(f"{op}: expected {spatial + 1}D (unbatched) or {spatial + 2}D "
                           f"(batched) input, but got input of size: {list(input.shape)}")
    if not training or p == 0.0:
        return input
    channels = input.ndim - spatial          # (C,) or (N, C)
    mask_shape = tuple(input.shape[:channels]) + (1,) * spatial
    xp = input._be.xp
    ones = xp.ones(mask_shape, dtype=input._data.dtype)
    scaled_mask, _ = input._be.fused.dropout_forward(ones, p, _random.rng_of(None))
    mask = Tensor._wrap(scaled_mask, input._be, None, 0)
    if inplace:
        from .inplace import apply_inplace
        return apply_inplace(input, lambda t: t * mask)
    return input * mask


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of (N, C, L) or (C, L) input."""
    return _feature_dropout("dropout1d", input, p, training, inplace, 1)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of (N, C, H, W) or (C, H, W) input."""
    return _feature_dropout("dropout2d", input, p, training, inplace, 2)


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input."""
    return _feature_dropout("dropout3d", input, p, training, inplace, 3)
