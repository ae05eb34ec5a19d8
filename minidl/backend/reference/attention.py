"""Scaled dot-product attention: the plain reference, one (batch, head) at a time.

For one (batch, head), with queries q (Tq, D), keys k (Tk, D), values v (Tk, Dv):

    S = scale * q k^T + bias          (Tq, Tk) scores; scale defaults to 1/sqrt(D)
    P = softmax(S) along keys         each query's weights over the keys
    out = P v                         (Tq, Dv)

Masks. `bias` is an additive float mask broadcastable to (..., Tq, Tk), -inf where a key is
hidden. `is_causal` hides key j from query i when j > i (top-left aligned, as PyTorch); both
may be given and then both apply.

Softmax through logsumexp. We keep lse = logsumexp(S) per query (m + log sum exp(S - m),
m = row max, so no exp overflows). Then P = exp(S - lse), and the backward needs only lse,
not P: it recomputes S from q and k and gets P back exactly. That is what lets the fast
versions hold one (Tq, Tk) block per (batch, head) at a time instead of storing P.

Fully masked rows. If every key of query i is hidden, its row max is -inf and S - m would
be -inf - (-inf) = NaN. By convention (the limit of a row whose scores all go to -inf is
not defined, so we choose the safe one): out = 0 and lse = -inf, and its gradients are 0. We
shift such rows by 0 instead of -inf, so exp gives exact zeros and the row sum is 0.

Backward, given dout (..., Tq, Dv):

    dv = P^T dout
    dP = dout v^T
    dS = P * (dP - delta),  delta_i = sum_j P_ij dP_ij = sum_d dout_id out_id
         (the softmax Jacobian; delta from out and dout costs Tq*Dv instead of Tq*Tk)
    dbias = dS (summed over the axes where bias was broadcast)
    dq = scale * dS k,   dk = scale * dS^T q
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import require_float, require_shape
from ._xp import get_xp

__all__ = ["sdpa_forward", "sdpa_backward"]


# ---------------------------------------------------------------------------------------
# argument checks (shared with the fast CPU version)

def check_sdpa(op, q, k, v, bias, scale):
    """Return (lead dims, Tq, Tk, D, Dv, scale) after checking shapes and dtypes."""
    require_float(op, q=q, k=k, v=v, bias=bias)
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        raise ValueError(f"{op}: q, k, v must have shapes (..., Tq, D), (..., Tk, D), "
                         f"(..., Tk, Dv) with the same number of dims, got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    lead, (Tq, D), (Tk, Dv) = tuple(q.shape[:-2]), q.shape[-2:], v.shape[-2:]
    if tuple(k.shape) != lead + (Tk, D) or tuple(v.shape[:-2]) != lead:
        raise ValueError(f"{op}: k must have shape {lead + (Tk, D)} (q's leading dims and D, "
                         f"v's Tk) and v {lead + ('Tk', 'Dv')}; got q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}")
    if bias is not None:
        full = lead + (Tq, Tk)
        try:
            ok = np.broadcast_shapes(tuple(bias.shape), full) == full
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{op}: bias must broadcast to {full} (..., Tq, Tk), "
                             f"got shape {tuple(bias.shape)}")
    if scale is None:
        scale = 1.0 / math.sqrt(D) if D else 1.0
    return lead, Tq, Tk, D, Dv, float(scale)


def bias_views(bias, lead, Tq, Tk):
    """A function b -> the (Tq, Tk) view of bias for flat batch index b (no copy)."""
    if bias is None:
        return lambda b: None
    xp = get_xp(bias)
    full = xp.broadcast_to(bias, lead + (Tq, Tk))
    return lambda b: full[np.unravel_index(b, lead)] if lead else full


def reduce_to_bias(xp, dbias_full_b, bias, lead, b, dbias):
    """Add one (Tq, Tk) block of dS into dbias (bias.shape), summing broadcast axes."""
    shape = (1,) * (len(lead) + 2 - bias.ndim) + tuple(bias.shape)   # bias as lead+(Tq, Tk)
    block = dbias_full_b
    if shape[-2] == 1:
        block = block.sum(axis=0, keepdims=True)
    if shape[-1] == 1:
        block = block.sum(axis=1, keepdims=True)
    index = np.unravel_index(b, lead) if lead else ()
    index = tuple(0 if size == 1 else i for i, size in zip(index, shape[:-2]))
    dbias.reshape(shape)[index] += block


def causal_keep(xp, Tq, Tk, row0=0, rows=None):
    """(rows, Tk) bool: True where query row0 + r may see key j (j <= row0 + r)."""
    rows = Tq - row0 if rows is None else rows
    return xp.arange(Tk)[None, :] <= (row0 + xp.arange(rows))[:, None]


# ---------------------------------------------------------------------------------------
# forward and backward

def _scores(xp, q, k, bias_b, keep, scale):
    s = (q @ k.T) * scale
    if bias_b is not None:
        s = s + bias_b
    if keep is not None:
        s = xp.where(keep, s, -xp.inf)
    return s


def sdpa_forward(q, k, v, bias, is_causal, scale):
    """(out (..., Tq, Dv), lse (..., Tq)); see the module docstring."""
    lead, Tq, Tk, D, Dv, scale = check_sdpa("sdpa_forward", q, k, v, bias, scale)
    xp = get_xp(q)
    B = int(np.prod(lead, dtype=np.int64))
    q3, k3, v3 = q.reshape(B, Tq, D), k.reshape(B, Tk, D), v.reshape(B, Tk, Dv)
    out = xp.empty((B, Tq, Dv), dtype=q.dtype)
    lse = xp.empty((B, Tq), dtype=q.dtype)
    bias_of = bias_views(bias, lead, Tq, Tk)
    keep = causal_keep(xp, Tq, Tk) if is_causal else None
    for b in range(B):
        s = _scores(xp, q3[b], k3[b], bias_of(b), keep, scale)
        m = s.max(axis=1)
        m = xp.where(xp.isneginf(m), 0, m)              # fully masked row: shift by 0
        p = xp.exp(s - m[:, None])
        total = p.sum(axis=1)
        out[b] = (p @ v3[b]) / xp.where(total > 0, total, 1)[:, None]
        with np.errstate(divide="ignore"):              # log(0) = -inf is the answer
            lse[b] = m + xp.log(total)
    return out.reshape(lead + (Tq, Dv)), lse.reshape(lead + (Tq,))


def sdpa_backward(q, k, v, out, lse, dout, bias, is_causal, scale, need_bias_grad):
    """(dq, dk, dv, dbias | None); P is recomputed from lse (see the module docstring)."""
    op = "sdpa_backward"
    lead, Tq, Tk, D, Dv, scale = check_sdpa(op, q, k, v, bias, scale)
    require_float(op, q=q, out=out, lse=lse, dout=dout)
    require_shape(op, "out", out, lead + (Tq, Dv), "q's leading dims, Tq and v's Dv")
    require_shape(op, "dout", dout, lead + (Tq, Dv), "the shape of out")
    require_shape(op, "lse", lse, lead + (Tq,), "q's leading dims and Tq")
    if need_bias_grad and bias is None:
        raise ValueError(f"{op}: need_bias_grad=True but no bias was given")
    xp = get_xp(q)
    B = int(np.prod(lead, dtype=np.int64))
    q3, k3, v3 = q.reshape(B, Tq, D), k.reshape(B, Tk, D), v.reshape(B, Tk, Dv)
    o3, do3, lse2 = out.reshape(B, Tq, Dv), dout.reshape(B, Tq, Dv), lse.reshape(B, Tq)
    dq, dk, dv = xp.empty_like(q3), xp.empty_like(k3), xp.empty_like(v3)
    dbias = xp.zeros(bias.shape, dtype=bias.dtype) if need_bias_grad else None
    bias_of = bias_views(bias, lead, Tq, Tk)
    keep = causal_keep(xp, Tq, Tk) if is_causal else None
    for b in range(B):
        s = _scores(xp, q3[b], k3[b], bias_of(b), keep, scale)
        # fully masked rows have lse = -inf: shift them by +inf so P = exp(-inf) = 0
        shift = xp.where(xp.isneginf(lse2[b]), xp.inf, lse2[b])
        p = xp.exp(s - shift[:, None])
        dv[b] = p.T @ do3[b]
        dp = do3[b] @ v3[b].T
        delta = (do3[b] * o3[b]).sum(axis=1)
        ds = p * (dp - delta[:, None])
        if dbias is not None:
            reduce_to_bias(xp, ds, bias, lead, b, dbias)
        dq[b] = (ds @ k3[b]) * scale
        dk[b] = (ds.T @ q3[b]) * scale
    return (dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape), dbias)
