"""Optimizer steps on the CPU: one serial Numba pass per parameter tensor.

Same formulas, in the same order, as `minidl/backend/reference/optim.py` (read that first).
NumPy spends one pass over memory and one temporary per operator (Adam is ~12 of them);
here each element of p, g and the state is read once and written once, which is what an
optimizer step is bound by. Serial on purpose: a Numba `parallel=True` pool next to
OpenBLAS's threads made the step 5x slower on 2 cores.

Trap: Numba's default error model checks every float division for a zero divisor (to raise
Python's ZeroDivisionError); that branch blocks vectorisation and made Adam 7x slower.
error_model="numpy" gives IEEE results (inf/nan) instead, as NumPy and PyTorch do.

Scalars are cast to the arrays' dtype before the call, so float32 parameters are updated
entirely in float32 (as PyTorch does) and the loop vectorises at float32 width.
Arrays must be C-contiguous for the flat view the kernel writes through; any other layout
(a view of a bigger buffer, say) takes the reference formula, which updates views in place.
"""
from __future__ import annotations

import numba
import numpy as np

from ..reference import optim as _ref
from ..reference.optim import adam_scalars, check_lists, check_step

__all__ = ["adam_step", "sgd_step", "rmsprop_step", "adagrad_step"]


def _flat(*arrays):
    """Flat views of C-contiguous arrays, or None if any is not (reshape would copy and the
    kernel would silently update the copy)."""
    flat = []
    for a in arrays:
        if a is None:
            flat.append(None)
        elif a.flags.c_contiguous:
            flat.append(a.reshape(-1))
        else:
            return None
    return flat


# ---------------------------------------------------------------------------------------
# Adam

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _adam_kernel(p, g, m, v, vmax, amsgrad, step_size, bc2_sqrt, one_minus_beta1, beta2,
                 one_minus_beta2, eps, weight_decay, decay_factor, sign):
    # Branch-free loop bodies (flags are tested once, outside the loops) so LLVM can
    # vectorise them. Adam's L2 decay and AdamW's
    # decoupled decay are both always applied: the unused one has weight_decay = 0 or
    # decay_factor = 1, which leave the numbers unchanged.
    if amsgrad:
        for k in range(p.size):
            pk = p[k] * decay_factor
            gk = sign * g[k] + weight_decay * pk
            mk = m[k] + one_minus_beta1 * (gk - m[k])
            vk = v[k] * beta2 + one_minus_beta2 * gk * gk
            m[k] = mk
            v[k] = vk
            vk = max(vmax[k], vk)
            vmax[k] = vk
            p[k] = pk - step_size * (mk / (np.sqrt(vk) / bc2_sqrt + eps))
    else:
        for k in range(p.size):
            pk = p[k] * decay_factor
            gk = sign * g[k] + weight_decay * pk
            mk = m[k] + one_minus_beta1 * (gk - m[k])
            vk = v[k] * beta2 + one_minus_beta2 * gk * gk
            m[k] = mk
            v[k] = vk
            p[k] = pk - step_size * (mk / (np.sqrt(vk) / bc2_sqrt + eps))


def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr, beta1,
              beta2, eps, weight_decay, decoupled, amsgrad, maximize):
    op = "adam_step"
    check_step(op, step)
    if amsgrad and max_exp_avg_sqs is None:
        raise ValueError(f"{op}: amsgrad=True needs max_exp_avg_sqs (zeros like params)")
    check_lists(op, params=params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs,
                max_exp_avg_sqs=max_exp_avg_sqs if amsgrad else None)
    step_size, bc2_sqrt = adam_scalars(step, lr, beta1, beta2)
    values = (step_size, bc2_sqrt, 1 - beta1, beta2, 1 - beta2, eps,
              0 if decoupled else weight_decay, 1 - lr * weight_decay if decoupled else 1,
              -1 if maximize else 1)
    scalars_of = {}   # the kernel's scalars in each parameter dtype, converted once per step
    amsgrad = bool(amsgrad)
    for i, p in enumerate(params):
        scalars = scalars_of.get(p.dtype)
        if scalars is None:
            t = p.dtype.type
            scalars = scalars_of[p.dtype] = tuple(t(v) for v in values)
        vmax = max_exp_avg_sqs[i] if amsgrad else None
        flat = _flat(p, grads[i], exp_avgs[i], exp_avg_sqs[i], vmax)
        if flat is None:
            _ref.adam_one(p, grads[i], exp_avgs[i], exp_avg_sqs[i], vmax,
                          step_size=step_size, bc2_sqrt=bc2_sqrt, beta1=beta1, beta2=beta2,
                          eps=eps, weight_decay=weight_decay, decoupled=decoupled,
                          maximize=maximize, lr=lr)
            continue
        fp, fg, fm, fv, fvmax = flat
        _adam_kernel(fp, fg, fm, fv, fm if fvmax is None else fvmax, amsgrad, *scalars)


# ---------------------------------------------------------------------------------------
# SGD

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sgd_kernel(p, g, buf, lr, momentum, one_minus_dampening, nesterov, weight_decay, sign,
                use_momentum, first_step):
    for k in range(p.size):
        gk = sign * g[k] + weight_decay * p[k]
        if use_momentum:
            if first_step:
                bk = gk
            else:
                bk = momentum * buf[k] + one_minus_dampening * gk
            buf[k] = bk
            gk = gk + momentum * bk if nesterov else bk
        p[k] = p[k] - lr * gk


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
        buf = bufs[i] if bufs is not None else None
        flat = _flat(p, grads[i], buf)
        if flat is None:
            _ref.sgd_one(p, grads[i], buf, lr=lr, momentum=momentum, dampening=dampening,
                         nesterov=nesterov, weight_decay=weight_decay, maximize=maximize,
                         first_step=first_step)
            continue
        fp, fg, fb = flat
        t = p.dtype.type
        _sgd_kernel(fp, fg, fp if fb is None else fb, t(lr), t(momentum), t(1 - dampening),
                    bool(nesterov), t(weight_decay), t(-1 if maximize else 1),
                    fb is not None, bool(first_step))


# ---------------------------------------------------------------------------------------
# RMSprop

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rmsprop_kernel(p, g, sq, ga, buf, lr, alpha, one_minus_alpha, eps, weight_decay,
                    momentum, centered, use_momentum, sign):
    for k in range(p.size):
        gk = sign * g[k] + weight_decay * p[k]
        sk = sq[k] * alpha + one_minus_alpha * gk * gk
        sq[k] = sk
        if centered:
            ak = ga[k] + one_minus_alpha * (gk - ga[k])
            ga[k] = ak
            denom = np.sqrt(sk - ak * ak) + eps
        else:
            denom = np.sqrt(sk) + eps
        if use_momentum:
            bk = buf[k] * momentum + gk / denom
            buf[k] = bk
            p[k] = p[k] - lr * bk
        else:
            p[k] = p[k] - lr * (gk / denom)


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
        ga = gas[i] if gas is not None else None
        buf = bufs[i] if bufs is not None else None
        flat = _flat(p, grads[i], square_avgs[i], ga, buf)
        if flat is None:
            _ref.rmsprop_one(p, grads[i], square_avgs[i], ga, buf, lr=lr, alpha=alpha,
                             eps=eps, weight_decay=weight_decay, momentum=momentum,
                             maximize=maximize)
            continue
        fp, fg, fs, fa, fb = flat
        t = p.dtype.type
        _rmsprop_kernel(fp, fg, fs, fs if fa is None else fa, fs if fb is None else fb,
                        t(lr), t(alpha), t(1 - alpha), t(eps), t(weight_decay), t(momentum),
                        fa is not None, fb is not None, t(-1 if maximize else 1))


# ---------------------------------------------------------------------------------------
# Adagrad

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _adagrad_kernel(p, g, state_sum, clr, weight_decay, eps, sign):
    for k in range(p.size):
        gk = sign * g[k] + weight_decay * p[k]
        sk = state_sum[k] + gk * gk
        state_sum[k] = sk
        p[k] = p[k] - clr * (gk / (np.sqrt(sk) + eps))


def adagrad_step(params, grads, state_sums, *, step, lr, lr_decay, weight_decay, eps,
                 maximize):
    op = "adagrad_step"
    check_step(op, step)
    check_lists(op, params=params, grads=grads, state_sums=state_sums)
    clr = lr / (1 + (step - 1) * lr_decay)
    for i, p in enumerate(params):
        flat = _flat(p, grads[i], state_sums[i])
        if flat is None:
            _ref.adagrad_one(p, grads[i], state_sums[i], clr=clr, weight_decay=weight_decay,
                             eps=eps, maximize=maximize)
            continue
        fp, fg, fs = flat
        t = p.dtype.type
        _adagrad_kernel(fp, fg, fs, t(clr), t(weight_decay), t(eps),
                        t(-1 if maximize else 1))
