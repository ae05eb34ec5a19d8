"""Scaled dot-product attention, with PyTorch's arguments and masking rules.

    scores = q k^T * scale + bias          (..., Tq, Tk); scale defaults to 1/sqrt(D)
    P      = softmax(scores, -1)           each query's weights over the keys
    out    = P v                           (..., Tq, Dv)

Masks (PyTorch's meaning): a boolean attn_mask says where a query MAY attend (True = keep);
it becomes an additive bias of 0 / -inf. A float attn_mask is added to the scores as is.
is_causal lets query i see keys j <= i (top-left aligned when Tq != Tk); it may not be combined
with an explicit mask. A query row whose keys are ALL masked has no softmax (0/0); we define
its output as 0 with zero gradients instead of NaN (PyTorch's math path gives NaN there).

The work runs in the backend's fused `sdpa_forward/backward` (a flash-attention style kernel:
scores are made one block at a time and never stored; the backward recomputes them from the
saved row log-sum-exp). Gradients, with dS the gradient of the scores:
    dv = P^T dout,  dP = dout v^T,  dS = P * (dP - rowsum(dP * P)),
    dq = dS k * scale,  dk = dS^T q * scale,  dbias = dS (summed to the mask's shape).
Under create_graph, and for dropout_p > 0 (dropout acts on P, which the fused kernel never
materialises), the same maths runs as a composite of minidl ops instead.
"""
from __future__ import annotations

import math
import numbers

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ._util import Tensor, check_float, sum_to_shape


class ScaledDotProductAttention(Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, is_causal, scale):
        xp = ctx._be.xp
        c = xp.ascontiguousarray
        out, lse = ctx._be.fused.sdpa_forward(c(q), c(k), c(v), None if bias is None else c(bias),
                                              is_causal, scale)
        ctx.save_for_backward(*ctx.inputs[:4])
        ctx.save_output(out)
        ctx.lse, ctx.conf = lse, (is_causal, scale)
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, bias = ctx.saved_tensors
        is_causal, scale = ctx.conf
        need_bias_grad = bias is not None and ctx.needs_input_grad[3]
        if is_grad_enabled():
            dq, dk, dv, dbias = _attention_grads_composite(q, k, v, bias, is_causal, scale, dout)
        else:
            xp, be = ctx._be.xp, ctx._be
            c = xp.ascontiguousarray
            arrays = be.fused.sdpa_backward(
                c(q._data), c(k._data), c(v._data), ctx.output()._data, ctx.lse, c(dout._data),
                None if bias is None else c(bias._data), is_causal, scale, need_bias_grad)
            dq, dk, dv, dbias = (None if a is None else Tensor._wrap(a, be, None, 0)
                                 for a in arrays)
        if need_bias_grad:
            dbias = sum_to_shape(dbias, tuple(bias.shape))
        nq, nk, nv = ctx.needs_input_grad[:3]
        return (dq if nq else None, dk if nk else None, dv if nv else None,
                dbias if need_bias_grad else None, None, None)


# ---- the composite (differentiable) form --------------------------------------------------

def _causal_bias(q, Tq, Tk):
    """(Tq, Tk) additive mask: 0 where key j <= query i, -inf above the diagonal."""
    xp = q._be.xp
    allowed = xp.arange(Tk)[None, :] <= xp.arange(Tq)[:, None]
    return Tensor._wrap(xp.where(allowed, 0.0, -xp.inf).astype(q._data.dtype), q._be, None, 0)


def _attention_probs(q, k, bias, is_causal, scale):
    """softmax(q k^T scale + bias) with fully masked rows set to 0 (not NaN)."""
    from .softmax import softmax
    from .elementwise import where
    scores = (q @ k.mT) * scale
    if bias is not None:
        scores = scores + bias
    if is_causal:
        scores = scores + _causal_bias(q, q.shape[-2], k.shape[-2])
    xp = q._be.xp
    # a row is dead when every score is -inf; give it finite scores, then zero its weights
    dead = (scores._data == -xp.inf).all(axis=-1, keepdims=True)
    if not bool(dead.any()):
        return softmax(scores, -1)
    dead_t = Tensor._wrap(dead, q._be, None, 0)
    alive = Tensor._wrap((~dead).astype(q._data.dtype), q._be, None, 0)
    return softmax(where(dead_t, 0.0, scores), -1) * alive


def _attention_grads_composite(q, k, v, bias, is_causal, scale, dout):
    p = _attention_probs(q, k, bias, is_causal, scale)
    dv = p.mT @ dout
    dp = dout @ v.mT
    ds = p * (dp - (dp * p).sum(-1, keepdim=True))
    return ds @ k * scale, ds.mT @ q * scale, dv, ds if bias is not None else None


def _attention_composite(q, k, v, bias, is_causal, scale, dropout_p):
    from .dropout import dropout
    p = _attention_probs(q, k, bias, is_causal, scale)
    if dropout_p > 0:
        p = dropout(p, dropout_p, training=True)
    return p @ v


# ---- argument handling --------------------------------------------------------------------

def _mask_to_bias(op, attn_mask, q, Tq, Tk):
    if not isinstance(attn_mask, Tensor):
        raise TypeError(f"{op}: attn_mask must be a Tensor or None, got "
                        f"{type(attn_mask).__name__}")
    from .shape import broadcast_shapes
    try:
        broadcast_shapes(tuple(attn_mask.shape), tuple(q.shape[:-2]) + (Tq, Tk))
    except Exception:
        raise RuntimeError(f"{op}: attn_mask of shape {list(attn_mask.shape)} cannot be "
                           f"broadcast to the attention scores' shape "
                           f"{list(q.shape[:-2]) + [Tq, Tk]}") from None
    kind = attn_mask._data.dtype.kind
    if kind == "b":
        xp = q._be.xp
        bias = xp.where(attn_mask._data, 0.0, -xp.inf).astype(q._data.dtype)
        return Tensor._wrap(bias, q._be, None, 0)
    if attn_mask._data.dtype != q._data.dtype:
        raise TypeError(f"{op}: expected attn_mask dtype to be bool or to match the query "
                        f"dtype {q.dtype}, got {attn_mask.dtype}")
    return attn_mask


def _broadcast_batch(q, k, v):
    """Give q, k, v the same leading (batch, head) dims."""
    from .shape import broadcast_shapes
    lead = broadcast_shapes(tuple(q.shape[:-2]), tuple(k.shape[:-2]), tuple(v.shape[:-2]))
    return tuple(t if tuple(t.shape[:-2]) == lead else t.expand(lead + tuple(t.shape[-2:]))
                 for t in (q, k, v))


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale=None, enable_gqa: bool = False):
    """softmax(q k^T * scale + mask) v over the last two dims, batched over the others."""
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        check_float(t, op)
        if t.ndim < 2:
            raise RuntimeError(f"{op}: {name} must have shape (..., T, D), got {list(t.shape)}")
    if not (query.dtype == key.dtype == value.dtype):
        raise TypeError(f"{op}: expected query, key and value to have the same dtype, but got "
                        f"query.dtype: {query.dtype}, key.dtype: {key.dtype} and value.dtype: "
                        f"{value.dtype}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"{op}: shapes do not fit: query {list(query.shape)} and key "
                           f"{list(key.shape)} need the same last dim (D), key and value "
                           f"{list(value.shape)} the same number of keys (dim -2)")
    if attn_mask is not None and is_causal:
        raise RuntimeError(f"{op}: explicit attn_mask should not be set when is_causal=True")
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, numbers.Real) or \
            not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p!r}")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk:
            raise RuntimeError(f"{op}: with enable_gqa the number of query heads ({hq}) must "
                               f"be a multiple of the key/value heads ({hk})")
        key = key.repeat_interleave(hq // hk, dim=-3)
        value = value.repeat_interleave(hq // hk, dim=-3)
    q, k, v = _broadcast_batch(query, key, value)
    Tq, Tk = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    bias = None if attn_mask is None else _mask_to_bias(op, attn_mask, q, Tq, Tk)
    if dropout_p > 0:
        return _attention_composite(q, k, v, bias, bool(is_causal), scale, float(dropout_p))
    return ScaledDotProductAttention.apply(q, k, v, bias, bool(is_causal), scale)
