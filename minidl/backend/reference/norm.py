"""Layer norm and RMS norm over the last axis (C features): the plain reference.

Layer norm, per row:  mean = sum(x)/C,  var = sum((x - mean)^2)/C  (biased, as PyTorch),
    rstd = 1/sqrt(var + eps),  xhat = (x - mean) * rstd,  y = xhat * weight + bias.
RMS norm, per row:    rstd = 1/sqrt(sum(x^2)/C + eps),  xhat = x * rstd,  y = xhat * weight.

Trap: the one-pass variance E[x^2] - E[x]^2 cancels catastrophically in float32 when |mean|
is large next to the spread (x = 1000 + noise loses every digit of the noise). We take the
two-pass form: mean first, then the mean of squared deviations.

Backward. With g = dy * weight (the gradient reaching xhat) and means over the row,
    layer norm: dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
    RMS norm:   dx = rstd * (g - xhat * mean(g * xhat))
(the mean(g) term comes from the mean subtraction, the xhat term from differentiating rstd).
The parameter gradients sum over every row: dweight = sum(dy * xhat), dbias = sum(dy).
The forward returns mean and rstd (shape x.shape[:-1]) so the backward need not recompute them.
"""
from __future__ import annotations

from ._checks import require_float, require_rows, require_shape
from ._xp import get_xp


def layer_norm_forward(x, weight, bias, eps):
    op = "layer_norm_forward"
    check_norm_args(op, x, weight=weight, bias=bias)
    xp = get_xp(x)
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + eps)
    y = centred * rstd
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y, mean[..., 0], rstd[..., 0]


def layer_norm_backward(dy, x, weight, mean, rstd):
    op = "layer_norm_backward"
    check_norm_args(op, x, dy=dy, weight=weight, mean=mean, rstd=rstd)
    mean, rstd = mean[..., None], rstd[..., None]
    xhat = (x - mean) * rstd
    g = dy * weight if weight is not None else dy
    dx = rstd * (g - g.mean(axis=-1, keepdims=True)
                 - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    rows = _rows(dy)
    dweight = (dy * xhat).reshape(rows).sum(axis=0) if weight is not None else None
    dbias = dy.reshape(rows).sum(axis=0)
    return dx, dweight, dbias


def rms_norm_forward(x, weight, eps):
    op = "rms_norm_forward"
    check_norm_args(op, x, weight=weight)
    xp = get_xp(x)
    rstd = 1.0 / xp.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
    y = x * rstd
    if weight is not None:
        y = y * weight
    return y, rstd[..., 0]


def rms_norm_backward(dy, x, weight, rstd):
    op = "rms_norm_backward"
    check_norm_args(op, x, dy=dy, weight=weight, rstd=rstd)
    rstd = rstd[..., None]
    xhat = x * rstd
    g = dy * weight if weight is not None else dy
    dx = rstd * (g - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    dweight = (dy * xhat).reshape(_rows(dy)).sum(axis=0) if weight is not None else None
    return dx, dweight


def _rows(a):
    """The (rows, C) view shape of an (..., C) array."""
    rows = 1
    for n in a.shape[:-1]:
        rows *= n
    return (rows, a.shape[-1])


def check_norm_args(op, x, **others):
    """x is (..., C); dy matches x; weight/bias are (C,); mean/rstd are x.shape[:-1]."""
    require_float(op, x=x, **others)
    require_rows(op, "x", x)
    C = x.shape[-1]
    for name, a in others.items():
        if name == "dy":
            require_shape(op, name, a, x.shape, "the shape of x")
        elif name in ("weight", "bias"):
            require_shape(op, name, a, (C,), "one value per feature of x's last axis")
        else:
            require_shape(op, name, a, x.shape[:-1], "one value per row of x")
