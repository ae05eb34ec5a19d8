"""`MultiheadAttention`: PyTorch's layer, parameter for parameter and mask for mask.

For a query sequence (length L), key and value sequences (length S) and H heads of size
hd = E / H:

    q = query W_q^T + b_q,   k = key W_k^T + b_k,   v = value W_v^T + b_v     (E wide)
    split each into H heads of width hd                                        (N, H, L, hd)
    head_h = softmax(q_h k_h^T / sqrt(hd) + mask) v_h                          (N, H, L, hd)
    output = concat(head_1 .. head_H) W_o^T + b_o                              (L, N, E)

Parameters (names and shapes as PyTorch, so state_dicts move between the two):
  in_proj_weight (3E, E), in_proj_bias (3E,)   W_q, W_k, W_v stacked (when kdim == vdim == E)
  q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim)   otherwise
  out_proj (a Linear E -> E);  bias_k, bias_v (1, 1, E) with add_bias_kv.

Masks, in MultiheadAttention's convention (NOT scaled_dot_product_attention's):
  attn_mask (L, S) or (N*H, L, S): a bool True means "may NOT attend"; a float is ADDED to
      the scores (use -inf to forbid).
  key_padding_mask (N, S): a bool True means "this key is padding, ignore it"; a float is
      added to every query's score for that key.
Both become float masks (-inf where forbidden) and are summed. A query whose keys are all
forbidden gets an output of 0 and attention weights of 0 (PyTorch gives NaN there).

is_causal is a hint, as in PyTorch: it needs attn_mask to be the causal mask too. When no
weights are returned and there is no padding mask, the mask is dropped and the fused kernel
applies causality itself (skipping the masked half of the work).

Speed: self-attention is ONE (rows, E) x (E, 3E) GEMM, then views that split q, k, v and the
heads, ONE scaled_dot_product_attention call for all heads, and one GEMM out. Unless weights
are asked for (need_weights=True, PyTorch's default!), no (L, S) matrix is ever stored.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..creation import zeros, empty
from ..ops._util import Tensor
from ..ops.shape import cat
from . import functional as F
from . import init
from .linear import Linear
from .module import Module
from .parameter import Parameter


def _canonical_mask(mask, name: str, dtype):
    """A bool mask (True = forbidden) or a float mask (added) as a float mask, or None."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a Tensor or None, got {type(mask).__name__}")
    if mask.dtype == _dt.bool_:
        return zeros(tuple(mask.shape), dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    if not mask.is_floating_point():
        raise TypeError(f"only bool and floating types of {name} are supported, got "
                        f"{mask.dtype}")
    if mask.dtype != dtype:
        raise TypeError(f"a float {name} must have the inputs' dtype {dtype}, got {mask.dtype}")
    return mask


def _softmax_dead_rows_zero(scores):
    """softmax over the last dim; a row of all -inf (every key forbidden) gives zeros."""
    dead = (scores == float("-inf")).all(-1, keepdim=True)
    if not bool(dead.any()):
        return F.softmax(scores, -1)
    return F.softmax(scores.masked_fill(dead, 0.0), -1).masked_fill(dead, 0.0)


class MultiheadAttention(Module):
    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads} instead")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        kw = dict(device=device, dtype=dtype)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's init: Xavier-uniform projections, zero biases, Xavier-normal bias_k/v.
        (out_proj.weight keeps Linear's default init.)"""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    # ---- forward ----------------------------------------------------------------------------

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        """(output, weights): output shaped like query; weights (N, L, S) averaged over the
        heads, (N, H, L, S) with average_attn_weights=False, None with need_weights=False."""
        if self._check_shapes(query, key, value, key_padding_mask, attn_mask):
            return self._attend(query, key, value, key_padding_mask, need_weights, attn_mask,
                                average_attn_weights, is_causal)
        # one unbatched sequence: run it as a batch of one (keeping "key is query" facts)
        bdim = 0 if self.batch_first else 1
        q1 = query.unsqueeze(bdim)
        k1 = q1 if key is query else key.unsqueeze(bdim)
        v1 = k1 if value is key else (q1 if value is query else value.unsqueeze(bdim))
        kpm = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        out, weights = self._attend(q1, k1, v1, kpm, need_weights, attn_mask,
                                    average_attn_weights, is_causal)
        return out.squeeze(bdim), (None if weights is None else weights.squeeze(0))

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask,
                average_attn_weights, is_causal):
        E, H = self.embed_dim, self.num_heads
        seq = 1 if self.batch_first else 0        # which dim of the inputs is the sequence
        L, N = query.shape[seq], query.shape[1 - seq]
        dtype = query.dtype
        key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", dtype)
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use "
                               "the Transformer module method `generate_square_subsequent_mask` "
                               "to create this mask.")
        if is_causal and key_padding_mask is None and not need_weights:
            attn_mask = None          # the kernel's own causal masking replaces the mask
        else:
            attn_mask = _canonical_mask(attn_mask, "attn_mask", dtype)
            is_causal = False         # the (merged) mask says it all

        q, k, v = self._in_projection(query, key, value)     # (.., E) in the input layout
        if self.bias_k is not None:   # one extra learned key/value every query may attend to
            k = cat([k, self.bias_k.expand(*_one_step(k.shape, seq))], seq)
            v = cat([v, self.bias_v.expand(*_one_step(v.shape, seq))], seq)
            attn_mask = _pad_last(attn_mask)
            key_padding_mask = _pad_last(key_padding_mask)
        q, k, v = (self._split_heads(t) for t in (q, k, v))  # (N, H, T, hd)
        if self.add_zero_attn:        # one extra all-zero key/value
            k = cat([k, zeros(N, H, 1, self.head_dim, dtype=dtype, device=k.device)], 2)
            v = cat([v, zeros(N, H, 1, self.head_dim, dtype=dtype, device=v.device)], 2)
            attn_mask = _pad_last(attn_mask)
            key_padding_mask = _pad_last(key_padding_mask)
        S = k.shape[2]

        # one additive mask broadcastable to the scores (N, H, L, S)
        mask = None
        if attn_mask is not None:
            mask = attn_mask if attn_mask.ndim == 2 else attn_mask.view(N, H, L, S)
        if key_padding_mask is not None:
            kpm = key_padding_mask.view(N, 1, 1, S)
            mask = kpm if mask is None else mask + kpm

        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:              # the scores are needed anyway: plain ops
            scores = (q * (1.0 / math.sqrt(self.head_dim))) @ k.mT
            if mask is not None:
                scores = scores + mask
            weights = _softmax_dead_rows_zero(scores)                 # (N, H, L, S)
            if dropout_p > 0:         # PyTorch returns the weights after dropout, too
                weights = F.dropout(weights, dropout_p)
            y = weights @ v
            if average_attn_weights:
                weights = weights.mean(1)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                               is_causal=is_causal)
        # heads side by side again, in the input layout, then the output projection
        y = y.transpose(1, 2).reshape(N, L, E) if self.batch_first else \
            y.permute(2, 0, 1, 3).reshape(L, N, E)
        return self.out_proj(y), weights

    def _in_projection(self, query, key, value):
        """q, k, v (each E wide) with as few GEMMs as the inputs allow."""
        E = self.embed_dim
        b = self.in_proj_bias
        if not self._qkv_same_embed_dim:
            bq, bk, bv = (None, None, None) if b is None else b.chunk(3)
            return (F.linear(query, self.q_proj_weight, bq), F.linear(key, self.k_proj_weight, bk),
                    F.linear(value, self.v_proj_weight, bv))
        w = self.in_proj_weight
        if query is key and key is value:       # self-attention: ONE GEMM for q, k and v
            return F.linear(query, w, b).split(E, -1)
        if key is value:                        # encoder-decoder attention: q, then k and v
            wq, wkv = w.split([E, 2 * E])
            bq, bkv = (None, None) if b is None else b.split([E, 2 * E])
            return (F.linear(query, wq, bq),) + F.linear(key, wkv, bkv).split(E, -1)
        ws, bs = w.chunk(3), ((None,) * 3 if b is None else b.chunk(3))
        return tuple(F.linear(x, wi, bi) for x, wi, bi in zip((query, key, value), ws, bs))

    def _split_heads(self, x):
        """(N, T, E) or (T, N, E) -> (N, H, T, hd): a view, no copy."""
        H, hd = self.num_heads, self.head_dim
        if self.batch_first:
            N, T = x.shape[0], x.shape[1]
            return x.reshape(N, T, H, hd).transpose(1, 2)
        T, N = x.shape[0], x.shape[1]
        return x.reshape(T, N, H, hd).permute(1, 2, 0, 3)

    def _check_shapes(self, query, key, value, key_padding_mask, attn_mask) -> bool:
        """True for batched (3-D) inputs, False for one unbatched (2-D) sequence; clear errors
        for anything else."""
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"MultiheadAttention: {name} must be a Tensor, got "
                                f"{type(t).__name__}")
        if query.ndim not in (2, 3):
            raise RuntimeError(f"MultiheadAttention: query should be unbatched 2D or batched 3D, "
                               f"got shape {list(query.shape)}")
        batched = query.ndim == 3
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise RuntimeError(f"MultiheadAttention: for a {query.ndim}-D query, key and value "
                               f"must be {query.ndim}-D too, got {list(key.shape)} and "
                               f"{list(value.shape)}")
        for name, t, width in (("query", query, self.embed_dim), ("key", key, self.kdim),
                               ("value", value, self.vdim)):
            if t.shape[-1] != width:
                raise RuntimeError(f"MultiheadAttention: expected {name} with {width} features "
                                   f"in the last dim, got shape {list(t.shape)}")
        seq = 1 if self.batch_first and batched else 0
        L, S = query.shape[seq], key.shape[seq]
        if key.shape[:-1] != value.shape[:-1]:
            raise RuntimeError(f"MultiheadAttention: key {list(key.shape)} and value "
                               f"{list(value.shape)} must agree in every dim but the last")
        N = query.shape[1 - seq] if batched else 1
        if batched and key.shape[1 - seq] != N:
            raise RuntimeError(f"MultiheadAttention: query has batch size {N} but key has "
                               f"{key.shape[1 - seq]} (batch_first={self.batch_first})")
        if key_padding_mask is not None:
            want = (N, S) if batched else (S,)
            if tuple(key_padding_mask.shape) != want:
                raise RuntimeError(f"MultiheadAttention: expected key_padding_mask of shape "
                                   f"{list(want)}, got {list(key_padding_mask.shape)}")
        if attn_mask is not None:
            want2, want3 = (L, S), (N * self.num_heads, L, S)
            if tuple(attn_mask.shape) not in (want2, want3):
                raise RuntimeError(f"MultiheadAttention: attn_mask must have shape {list(want2)} "
                                   f"or {list(want3)}, got {list(attn_mask.shape)}")
        return batched

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


def _one_step(shape, seq: int) -> tuple:
    """`shape` with the sequence dim set to 1 (the shape bias_k expands to)."""
    shape = list(shape)
    shape[seq] = 1
    return tuple(shape)


def _pad_last(mask):
    """Append one 0 column (an extra key nobody is forbidden to see) to a float mask."""
    return None if mask is None else F.pad(mask, (0, 1))
