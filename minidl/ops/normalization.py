"""Normalisation layers as functions: layer_norm, rms_norm, batch_norm, group_norm, instance_norm.

All of them standardise groups of numbers to zero mean and unit variance, then apply a
learned per-feature scale (weight) and shift (bias). They differ only in WHICH numbers form a
group:

    layer_norm     the trailing `normalized_shape` dims of one sample
    group_norm     the channels of one group (and all their positions) of one sample
    instance_norm  one channel of one sample (group_norm with a group per channel)
    batch_norm     one channel across the whole batch and every position

So one fused kernel does most of the heavy lifting: `layer_norm_forward/backward`, which
normalises the rows of an (R, L) array. Layer, group and instance norm are a reshape away from
it, with the per-channel affine of group/instance norm as a broadcast multiply-add on top.
Batch norm has its own fused pair, `batch_norm_forward/backward`, which reduces over every
axis but the channel axis in place and applies the affine in the same pass: the layer-norm
route needed a transposed copy of the input, a transposed output, and two broadcast ops with
their reductions in backward (2-3x the time).

Per row, with L values (biased variance, as PyTorch):
    mean = sum(x)/L,  var = sum((x - mean)^2)/L,  rstd = 1/sqrt(var + eps),  xhat = (x - mean) rstd
Backward with g = dy * weight (the gradient reaching xhat), means over the row:
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
RMS norm drops the mean: rstd = 1/sqrt(mean(x^2) + eps), dx = rstd * (g - xhat * mean(g * xhat)).

Batch norm keeps running statistics for evaluation. In training it normalises with the batch's
biased variance but stores the UNBIASED one (times L/(L-1)) in running_var, as PyTorch does:
    running = (1 - momentum) * running + momentum * batch_statistic
"""
from __future__ import annotations

import numbers

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ._util import Tensor, check_float


def _wrap(ctx, array):
    return None if array is None else Tensor._wrap(array, ctx._be, None, 0)


def _array(t):
    return None if t is None else t._data


# ---- the fused row kernels as Functions ---------------------------------------------------

class LayerNorm(Function):
    """Normalise each row of an (..., L) tensor; optional per-column weight (L,) and bias (L,).

    `stats_sink`, when a list, receives (mean, rstd) arrays of the rows: batch norm reads its
    running-statistics update from there instead of reducing the input a second time."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, stats_sink):
        xp = ctx._be.xp
        x = xp.ascontiguousarray(x)
        y, mean, rstd = ctx._be.fused.layer_norm_forward(x, weight, bias, eps)
        ctx.save_for_backward(ctx.inputs[0], ctx.inputs[1])
        ctx.stats = (mean, rstd)
        ctx.eps = eps
        if stats_sink is not None:
            stats_sink.append((mean, rstd))
        return y

    @staticmethod
    def backward(ctx, grad):
        return _norm_backward(ctx, grad, _layer_norm_grads_composite, "layer_norm_backward")


def _norm_backward(ctx, grad, composite, fused_name):
    """The backward shared by layer and batch norm (they differ only in which values form a
    group): with create_graph the composite formula in minidl ops, so it can be differentiated
    again; otherwise the device's fused kernel, fed the (mean, rstd) saved by the forward."""
    x, weight = ctx.saved_tensors
    if is_grad_enabled():
        dx, dweight, dbias = composite(x, weight, grad, ctx.eps)
    else:
        xp = ctx._be.xp
        mean, rstd = ctx.stats
        dx, dweight, dbias = getattr(ctx._be.fused, fused_name)(
            xp.ascontiguousarray(grad._data), xp.ascontiguousarray(x._data),
            _array(weight), mean, rstd)
        dx, dweight, dbias = _wrap(ctx, dx), _wrap(ctx, dweight), _wrap(ctx, dbias)
    nx, nw, nb = ctx.needs_input_grad[:3]
    return (dx if nx else None, dweight if nw else None, dbias if nb else None, None, None)


def _layer_norm_grads_composite(x, weight, grad, eps):
    L = x.shape[-1]
    mean = x.mean(-1, keepdim=True)
    centred = x - mean
    rstd = ((centred * centred).mean(-1, keepdim=True) + eps).rsqrt()
    xhat = centred * rstd
    g = grad * weight if weight is not None else grad
    dx = rstd * (g - g.mean(-1, keepdim=True) - xhat * (g * xhat).mean(-1, keepdim=True))
    dweight = (grad * xhat).reshape(-1, L).sum(0) if weight is not None else None
    return dx, dweight, grad.reshape(-1, L).sum(0)


class RMSNorm(Function):
    """x / sqrt(mean(x^2) + eps) over the last axis, times an optional weight (L,)."""

    @staticmethod
    def forward(ctx, x, weight, eps):
        x = ctx._be.xp.ascontiguousarray(x)
        y, rstd = ctx._be.fused.rms_norm_forward(x, weight, eps)
        ctx.save_for_backward(ctx.inputs[0], ctx.inputs[1])
        ctx.rstd = rstd
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        if is_grad_enabled():
            L = x.shape[-1]
            rstd = ((x * x).mean(-1, keepdim=True) + ctx.eps).rsqrt()
            xhat = x * rstd
            g = grad * weight if weight is not None else grad
            dx = rstd * (g - xhat * (g * xhat).mean(-1, keepdim=True))
            dweight = (grad * xhat).reshape(-1, L).sum(0) if weight is not None else None
        else:
            xp = ctx._be.xp
            dx, dweight = ctx._be.fused.rms_norm_backward(
                xp.ascontiguousarray(grad._data), xp.ascontiguousarray(x._data),
                _array(weight), ctx.rstd)
            dx, dweight = _wrap(ctx, dx), _wrap(ctx, dweight)
        nx, nw = ctx.needs_input_grad[:2]
        return dx if nx else None, dweight if nw else None, None


class BatchNorm(Function):
    """Training-mode batch norm of an (N, C, *) tensor with optional (C,) weight and bias.

    Forward and first-order backward are the fused kernels; under create_graph=True the
    backward is `_batch_norm_grads_composite` in minidl ops. `stats_sink` (a list) receives
    the channels' (mean, rstd) for the running-statistics update."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, stats_sink):
        x = ctx._be.xp.ascontiguousarray(x)
        y, mean, rstd = ctx._be.fused.batch_norm_forward(x, weight, bias, eps)
        ctx.save_for_backward(ctx.inputs[0], ctx.inputs[1])
        ctx.stats = (mean, rstd)
        ctx.eps = eps
        stats_sink.append((mean, rstd))
        return y

    @staticmethod
    def backward(ctx, grad):
        return _norm_backward(ctx, grad, _batch_norm_grads_composite, "batch_norm_backward")


def _batch_norm_grads_composite(x, weight, grad, eps):
    """The layer-norm gradient formula with a channel's (N, *) values as the group."""
    dims = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    rstd = ((centred * centred).mean(dims, keepdim=True) + eps).rsqrt()
    xhat = centred * rstd
    g = grad * weight.reshape(shape) if weight is not None else grad
    dx = rstd * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
    dweight = (grad * xhat).sum(dims) if weight is not None else None
    return dx, dweight, grad.sum(dims)


# ---- argument checks ----------------------------------------------------------------------

def _check_param(op, name, p, x, shape):
    if p is None:
        return
    if not isinstance(p, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(p).__name__}")
    if tuple(p.shape) != tuple(shape):
        raise RuntimeError(f"{op}: {name} must have shape {list(shape)}, got {list(p.shape)}")
    if p._data.dtype != x._data.dtype:
        raise TypeError(f"{op}: {name} has dtype {p.dtype} but input has dtype {x.dtype}; "
                        f"convert one of them (e.g. {name}.to(input.dtype))")


def _normalized_shape(op, x, normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) \
        else tuple(int(s) for s in normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise RuntimeError(f"{op}: given normalized_shape={list(shape)}, expected input with "
                           f"shape [*, {', '.join(map(str, shape))}], but got input of size "
                           f"{list(x.shape)}")
    return shape


def _rows_over_trailing(x, k):
    """View the last k dims of x as one axis: (..., L)."""
    if k == 1:
        return x
    lead = tuple(x.shape[:x.ndim - k])
    return x.reshape(lead + (-1,))


# ---- layer and RMS norm -------------------------------------------------------------------

def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalise over the trailing `normalized_shape` dims; weight and bias have that shape."""
    op = "layer_norm"
    check_float(input, op)
    shape = _normalized_shape(op, input, normalized_shape)
    _check_param(op, "weight", weight, input, shape)
    _check_param(op, "bias", bias, input, shape)
    k = len(shape)
    flat = (lambda p: None if p is None else p.reshape(-1)) if k > 1 else (lambda p: p)
    y = LayerNorm.apply(_rows_over_trailing(input, k), flat(weight), flat(bias), float(eps),
                        None)
    return y.reshape(tuple(input.shape)) if k > 1 else y


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2) + eps) over the trailing dims; eps defaults to the dtype's epsilon."""
    op = "rms_norm"
    check_float(input, op)
    shape = _normalized_shape(op, input, normalized_shape)
    _check_param(op, "weight", weight, input, shape)
    if eps is None:
        eps = float(input._be.xp.finfo(input._data.dtype).eps)
    k = len(shape)
    w = weight.reshape(-1) if (weight is not None and k > 1) else weight
    y = RMSNorm.apply(_rows_over_trailing(input, k), w, float(eps))
    return y.reshape(tuple(input.shape)) if k > 1 else y


# ---- per-channel norms: batch, group, instance --------------------------------------------

def _channel_affine(xhat, weight, bias):
    """xhat * weight + bias with (C,) parameters broadcast over (N, C, *)."""
    shape = (1, xhat.shape[1]) + (1,) * (xhat.ndim - 2)
    if weight is not None:
        xhat = xhat * weight.reshape(shape)
    if bias is not None:
        xhat = xhat + bias.reshape(shape)
    return xhat


def _check_channels(op, input, min_ndim=2):
    check_float(input, op)
    if input.ndim < min_ndim:
        raise ValueError(f"{op}: expected input of shape (N, C, *) with at least {min_ndim} "
                         f"dims, got {list(input.shape)}")
    return input.shape[1]


def _update_running(running_mean, running_var, mean, var_unbiased, momentum):
    """running = (1 - momentum) * running + momentum * batch value, in place, untracked."""
    with no_grad():
        if running_mean is not None:
            running_mean.mul_(1.0 - momentum).add_(mean * momentum)
        if running_var is not None:
            running_var.mul_(1.0 - momentum).add_(var_unbiased * momentum)


def _stats_as_tensors(x, sink, eps, count):
    """(mean, unbiased var) Tensors from the kernel's (mean, rstd): var = 1/rstd^2 - eps."""
    mean, rstd = sink[0]
    var = (1.0 / (rstd * rstd) - eps) * (count / (count - 1))
    return Tensor._wrap(mean, x._be, None, 0), Tensor._wrap(var.astype(mean.dtype, copy=False),
                                                            x._be, None, 0)


def _eval_normalise(input, mean, var, eps):
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    return (input - mean.reshape(shape)) * (var.reshape(shape) + eps).rsqrt()


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5):
    """Per-channel normalisation over (N, *spatial) of an (N, C, *) input.

    training=True: batch statistics (and, if given, running statistics updated in place);
    training=False: the running statistics."""
    op = "batch_norm"
    C = _check_channels(op, input)
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param(op, name, t, input, (C,))
    if not training:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"{op}: running_mean and running_var must be given when "
                               f"training=False (evaluation uses the running statistics)")
        return _channel_affine(_eval_normalise(input, running_mean, running_var, eps),
                               weight, bias)
    count = input.numel() // C if C else 0
    if count <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got "
                         f"input size {list(input.shape)}")
    sink = []
    y = BatchNorm.apply(input, weight, bias, float(eps), sink)
    if running_mean is not None or running_var is not None:
        mean, var = _stats_as_tensors(input, sink, eps, count)
        _update_running(running_mean, running_var, mean, var, momentum)
    return y


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Normalise each group of C/num_groups channels of each sample; per-channel affine."""
    op = "group_norm"
    C = _check_channels(op, input)
    if not isinstance(num_groups, numbers.Integral) or num_groups < 1 or C % num_groups:
        raise RuntimeError(f"{op}: expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    _check_param(op, "weight", weight, input, (C,))
    _check_param(op, "bias", bias, input, (C,))
    N = input.shape[0]
    rows = input.reshape(N * num_groups, -1)
    xhat = LayerNorm.apply(rows, None, None, float(eps), None).reshape(tuple(input.shape))
    return _channel_affine(xhat, weight, bias)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5):
    """Normalise each (sample, channel) plane over its positions; per-channel affine."""
    op = "instance_norm"
    C = _check_channels(op, input, min_ndim=3)
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param(op, name, t, input, (C,))
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"{op}: running_mean and running_var must be given when "
                               f"use_input_stats=False")
        return _channel_affine(_eval_normalise(input, running_mean, running_var, eps),
                               weight, bias)
    N = input.shape[0]
    count = input.numel() // (N * C) if N * C else 0
    if count <= 1:
        raise ValueError(f"{op}: expected more than 1 spatial element when training, got input "
                         f"size {list(input.shape)}")
    sink = []
    xhat = LayerNorm.apply(input.reshape(N * C, -1), None, None, float(eps), sink)
    if running_mean is not None or running_var is not None:
        # PyTorch's rule: the running statistics move towards the batch AVERAGE of the
        # per-instance statistics
        mean, var = _stats_as_tensors(input, sink, eps, count)
        _update_running(running_mean, running_var, mean.reshape(N, C).mean(0),
                        var.reshape(N, C).mean(0), momentum)
    return _channel_affine(xhat.reshape(tuple(input.shape)), weight, bias)
