"""Optimizer steps (multi-tensor, in place): the plain reference, PyTorch's exact formulas.

Each entry takes lists of arrays (one per parameter) and updates params and state IN PLACE.
The per-tensor formulas below are written in the same order of operations as PyTorch's
single-tensor implementations, so N steps agree to float32 rounding. `maximize` flips the
gradient's sign first; L2 `weight_decay` (not decoupled) is then added to the gradient.

Adam / AdamW (t = step, counted from 1)
    m = beta1*m + (1 - beta1)*g                 (PyTorch writes it as m.lerp_(g, 1 - beta1))
    v = beta2*v + (1 - beta2)*g^2
    bias correction: m and v start at 0, so after t steps they are shrunk towards 0 by the
    factors bc1 = 1 - beta1^t and bc2 = 1 - beta2^t; dividing by them removes that bias:
    p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
    Note eps is added AFTER the sqrt(bc2) division, as PyTorch does; moving it changes the
    early steps. amsgrad uses vmax = max(vmax, v) in place of v in the denominator.
    AdamW (decoupled=True): the decay is not part of the gradient (where Adam's adaptive
    scaling would weaken it for parameters with large gradients) but a plain shrink of the
    weights before the step: p *= 1 - lr*weight_decay.

SGD
    b = g on the first step (no dampening), else b = momentum*b + (1 - dampening)*g
    nesterov: g = g + momentum*b, else g = b;  p -= lr*g

RMSprop
    s = alpha*s + (1 - alpha)*g^2;  centered: a = alpha*a + (1 - alpha)*g, denom = sqrt(s - a^2)
    otherwise denom = sqrt(s);  denom += eps
    momentum > 0: b = momentum*b + g/denom, p -= lr*b;  else p -= lr*g/denom

Adagrad
    clr = lr / (1 + (t - 1)*lr_decay);  s += g^2;  p -= clr * g / (sqrt(s) + eps)
"""
from __future__ import annotations

import math

from ._checks import require_float
from ._xp import get_xp

__all__ = ["adam_step", "sgd_step", "rmsprop_step", "adagrad_step"]


def check_lists(op, **lists):
    """Every list (None skipped) has the length of the first, and matches params in shape
    and dtype position by position.

    Runs on every optimizer step, so the common all-good case is one dtype and one shape
    comparison per array; only a mismatch takes the detailed checks that word the error
    message. (Different positions may hold different float dtypes.)"""
    names = [n for n, v in lists.items() if v is not None]
    params = lists[names[0]]
    for name in names:
        seq = lists[name]
        if not isinstance(seq, (list, tuple)):
            raise TypeError(f"{op}: {name} must be a list of arrays, got {type(seq).__name__}")
        if len(seq) != len(params):
            raise ValueError(f"{op}: {name} has {len(seq)} arrays but {names[0]} has "
                             f"{len(params)}; pass one per parameter")
    checked = set()   # dtypes seen to be float32/float64
    for i, p in enumerate(params):
        dtype = getattr(p, "dtype", None)
        if dtype not in checked:
            _explain_mismatch(op, names, lists, i)
            checked.add(dtype)
        shape = p.shape
        for name in names:
            a = lists[name][i]
            if getattr(a, "dtype", None) != dtype or a.shape != shape:
                _explain_mismatch(op, names, lists, i)


def _explain_mismatch(op, names, lists, i):
    """The detailed checks of position i: float dtypes shared by the position's arrays, and
    the params' shape (called for each new dtype, and when the fast test finds a mismatch)."""
    params = lists[names[0]]
    arrays = {f"{name}[{i}]": lists[name][i] for name in names}
    require_float(op, **arrays)
    for name, a in arrays.items():
        if tuple(a.shape) != tuple(params[i].shape):
            raise ValueError(f"{op}: {name} has shape {tuple(a.shape)} but "
                             f"{names[0]}[{i}] has {tuple(params[i].shape)}")


def check_step(op, step):
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"{op}: step must be the step count after increment (an int >= 1, "
                         f"1 on the first call), got {step!r}")


# ---------------------------------------------------------------------------------------
# Adam

def adam_one(p, g, m, v, vmax, *, step_size, bc2_sqrt, beta1, beta2, eps, weight_decay,
             decoupled, maximize, lr):
    """One tensor of adam_step; scalars already reduced to step_size and sqrt(bc2)."""
    xp = get_xp(p)
    if maximize:
        g = -g
    if weight_decay != 0:
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * p
    m += (1 - beta1) * (g - m)
    v *= beta2
    v += (1 - beta2) * g * g
    if vmax is not None:
        xp.maximum(vmax, v, out=vmax)
        v = vmax
    p -= step_size * (m / (xp.sqrt(v) / bc2_sqrt + eps))


def adam_scalars(step, lr, beta1, beta2):
    """(lr / bc1, sqrt(bc2)) with bc = 1 - beta^step: computed once per step, in float64."""
    return lr / (1 - beta1 ** step), math.sqrt(1 - beta2 ** step)


def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr, beta1,
              beta2, eps, weight_decay, decoupled, amsgrad, maximize):
    op = "adam_step"
    check_step(op, step)
    if amsgrad and max_exp_avg_sqs is None:
        raise ValueError(f"{op}: amsgrad=True needs max_exp_avg_sqs (zeros like params)")
    check_lists(op, params=params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs,
                max_exp_avg_sqs=max_exp_avg_sqs if amsgrad else None)
    step_size, bc2_sqrt = adam_scalars(step, lr, beta1, beta2)
    for i, p in enumerate(params):
        adam_one(p, grads[i], exp_avgs[i], exp_avg_sqs[i],
                 max_exp_avg_sqs[i] if amsgrad else None, step_size=step_size,
                 bc2_sqrt=bc2_sqrt, beta1=beta1, beta2=beta2, eps=eps,
                 weight_decay=weight_decay, decoupled=decoupled, maximize=maximize, lr=lr)


# ---------------------------------------------------------------------------------------
# SGD

def sgd_one(p, g, buf, *, lr, momentum, dampening, nesterov, weight_decay, maximize,
            first_step):
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        if first_step:
            buf[...] = g          # PyTorch: the buffer starts as a copy of the gradient
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g


def sgd_step(params, grads, momentum_buffers, *, lr, momentum, dampening, nesterov,
             weight_decay, maximize, first_step):
    op = "sgd_step"
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"{op}: nesterov momentum needs momentum > 0 and dampening = 0, "
                         f"got momentum={momentum}, dampening={dampening}")
    if momentum != 0 and momentum_buffers is None:
        raise ValueError(f"{op}: momentum={momentum} needs momentum_buffers (zeros like params)")
    bufs = momentum_buffers if momentum != 0 else None
    check_lists(op, params=params, grads=grads, momentum_buffers=bufs)
    for i, p in enumerate(params):
        sgd_one(p, grads[i], bufs[i] if bufs is not None else None, lr=lr, momentum=momentum,
                dampening=dampening, nesterov=nesterov, weight_decay=weight_decay,
                maximize=maximize, first_step=first_step)


# ---------------------------------------------------------------------------------------
# RMSprop

def rmsprop_one(p, g, sq, ga, buf, *, lr, alpha, eps, weight_decay, momentum, maximize):
    xp = get_xp(p)
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    sq *= alpha
    sq += (1 - alpha) * g * g
    if ga is not None:                        # centered: subtract the squared mean gradient
        ga += (1 - alpha) * (g - ga)
        denom = xp.sqrt(sq - ga * ga)
    else:
        denom = xp.sqrt(sq)
    denom += eps
    if momentum > 0:
        buf *= momentum
        buf += g / denom
        p -= lr * buf
    else:
        p -= lr * (g / denom)


def rmsprop_step(params, grads, square_avgs, grad_avgs, momentum_bufs, *, lr, alpha, eps,
                 weight_decay, momentum, centered, maximize):
    op = "rmsprop_step"
    if centered and grad_avgs is None:
        raise ValueError(f"{op}: centered=True needs grad_avgs (zeros like params)")
    if momentum > 0 and momentum_bufs is None:
        raise ValueError(f"{op}: momentum={momentum} needs momentum_bufs (zeros like params)")
    gas = grad_avgs if centered else None
    bufs = momentum_bufs if momentum > 0 else None
    check_lists(op, params=params, grads=grads, square_avgs=square_avgs, grad_avgs=gas,
                momentum_bufs=bufs)
    for i, p in enumerate(params):
        rmsprop_one(p, grads[i], square_avgs[i], gas[i] if gas is not None else None,
                    bufs[i] if bufs is not None else None, lr=lr, alpha=alpha, eps=eps,
                    weight_decay=weight_decay, momentum=momentum, maximize=maximize)


# ---------------------------------------------------------------------------------------
# Adagrad

def adagrad_one(p, g, state_sum, *, clr, weight_decay, eps, maximize):
    xp = get_xp(p)
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    state_sum += g * g
    p -= clr * (g / (xp.sqrt(state_sum) + eps))


def adagrad_step(params, grads, state_sums, *, step, lr, lr_decay, weight_decay, eps,
                 maximize):
    op = "adagrad_step"
    check_step(op, step)
    check_lists(op, params=params, grads=grads, state_sums=state_sums)
    clr = lr / (1 + (step - 1) * lr_decay)
    for i, p in enumerate(params):
        adagrad_one(p, grads[i], state_sums[i], clr=clr, weight_decay=weight_decay, eps=eps,
                    maximize=maximize)
