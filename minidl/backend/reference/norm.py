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

Batch norm (training mode) is the same maths with another grouping: one group per CHANNEL of
an (N, C, *) input, over the batch and every position (count = N * prod(*) values):
    batch_norm_forward(x, weight|None, bias|None, eps) -> (y, mean (C,), rstd (C,))
    batch_norm_backward(dy, x, weight|None, mean, rstd) -> (dx, dweight|None, dbias)
With S1 = sum(dy) and S2 = sum(dy * xhat) over a channel's group, the layer-norm formula gives
    dx = rstd * weight * (dy - S1/count - xhat * S2/count),  dweight = S2,  dbias = S1.
(Running statistics are the caller's business: it gets mean and rstd back.)
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


def batch_norm_forward(x, weight, bias, eps):
    op = "batch_norm_forward"
    check_batch_norm_args(op, x, weight=weight, bias=bias)
    xp = get_xp(x)
    axes, shape = _channel_axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + eps)
    y = centred * rstd
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y, mean.reshape(-1), rstd.reshape(-1)


def batch_norm_backward(dy, x, weight, mean, rstd):
    op = "batch_norm_backward"
    check_batch_norm_args(op, x, dy=dy, weight=weight, mean=mean, rstd=rstd)
    axes, shape = _channel_axes(x)
    count = x.size // x.shape[1]
    mean, rstd = mean.reshape(shape), rstd.reshape(shape)
    xhat = (x - mean) * rstd
    s1 = dy.sum(axis=axes, keepdims=True)
    s2 = (dy * xhat).sum(axis=axes, keepdims=True)
    scale = rstd * weight.reshape(shape) if weight is not None else rstd
    dx = scale * (dy - s1 / count - xhat * (s2 / count))
    return dx, (s2.reshape(-1) if weight is not None else None), s1.reshape(-1)


def _channel_axes(x):
    """The axes a channel's statistics run over (all but 1), and the (1, C, 1, ...) shape."""
    return (0,) + tuple(range(2, x.ndim)), (1, x.shape[1]) + (1,) * (x.ndim - 2)


def check_batch_norm_args(op, x, **others):
    """x is (N, C, *) with more than one value per channel; dy matches x; the rest are (C,)."""
    require_float(op, x=x, **others)
    if x.ndim < 2 or x.shape[1] < 1:
        raise ValueError(f"{op}: x must have shape (N, C, *) with C >= 1, got {tuple(x.shape)}")
    if x.size // x.shape[1] < 2:
        raise ValueError(f"{op}: expected more than 1 value per channel, got x of shape "
                         f"{tuple(x.shape)}")
    C = x.shape[1]
    for name, a in others.items():
        if name == "dy":
            require_shape(op, name, a, x.shape, "the shape of x")
        else:
            require_shape(op, name, a, (C,), "one value per channel of x")


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
