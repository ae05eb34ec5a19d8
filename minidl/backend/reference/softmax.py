"""Softmax and log-softmax over the last axis: the plain reference.

    softmax(x)_j     = exp(x_j) / sum_k exp(x_k)
    log_softmax(x)_j = x_j - logsumexp(x)

Trap: exp overflows (float32 beyond x ~ 88.7) long before softmax itself is in danger.
Both functions are unchanged when a constant is subtracted from the whole row, so we subtract
the row maximum m first: every exponent is then <= 0, exp(.) <= 1, and the largest term is
exactly 1, so the sum is >= 1 and its log is safe. For log-softmax we never take log(softmax)
(softmax underflows to 0 for very negative entries and log(0) = -inf); instead

    logsumexp(x) = m + log(sum_k exp(x_k - m)),   log_softmax(x) = (x - m) - log(sum ...).
"""
from __future__ import annotations

from ._checks import require_float, require_rows, require_shape
from ._xp import get_xp


def softmax_forward(x):
    require_float("softmax_forward", x=x)
    require_rows("softmax_forward", "x", x)
    xp = get_xp(x)
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(y, dy):
    """dx = J^T dy with J_jk = y_j (delta_jk - y_k), i.e. dx = y * (dy - sum(dy * y))."""
    _check_backward("softmax_backward", y, dy)
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def log_softmax_forward(x):
    require_float("log_softmax_forward", x=x)
    require_rows("log_softmax_forward", "x", x)
    xp = get_xp(x)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def log_softmax_backward(y, dy):
    """d log_softmax_j / dx_k = delta_jk - softmax_k, so dx = dy - exp(y) * sum(dy).

    exp(y) is the softmax itself, recovered from the saved output without a second logsumexp.
    """
    _check_backward("log_softmax_backward", y, dy)
    xp = get_xp(y)
    return dy - xp.exp(y) * dy.sum(axis=-1, keepdims=True)


def _check_backward(op, y, dy):
    require_float(op, y=y, dy=dy)
    require_rows(op, "y", y)
    require_shape(op, "dy", dy, y.shape, "the shape of y")
