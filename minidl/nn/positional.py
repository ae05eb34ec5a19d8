"""Position information for Transformers: attention itself is blind to order (permuting the
keys permutes nothing in the result), so the position of each token must be put in.

Three ways, from the simplest:

1. Learned (`LearnedPositionalEmbedding`, BERT and GPT-2): a table of max_len trainable
   vectors, one per position, added to the token embeddings. Cannot go past max_len.

2. Sinusoidal (`sinusoidal_positional_encoding`, `SinusoidalPositionalEncoding`, the 2017
   paper): fixed vectors, for position p and i = 0 .. d/2 - 1,
       PE[p, 2i]     = sin(p * w_i),     PE[p, 2i + 1] = cos(p * w_i),     w_i = base^(-2i/d)
   Each pair (2i, 2i+1) is a point on a circle turning at frequency w_i; the wavelengths run
   geometrically from 2 pi to base * 2 pi. Moving k positions rotates every pair by the
   angle k * w_i, so PE[p + k] is a fixed linear function of PE[p]: relative offsets are
   easy for the next layer to read.

3. Rotary (`rope_cache`, `apply_rope`, RoFormer / LLaMA): instead of adding anything, rotate
   the queries and keys of each head. Split a head vector x (size d) into halves
   x1 = x[:d/2], x2 = x[d/2:] and rotate each pair (x1[i], x2[i]) by the angle m * w_i,
   m = the token's position:
       out1 = x1 cos(m w) - x2 sin(m w)
       out2 = x1 sin(m w) + x2 cos(m w)
   A rotation keeps lengths, and since R(m)^T R(n) = R(n - m),
       (R(m) q) . (R(n) k) = q . R(n - m) k
   the attention score of query m and key n depends on the positions only through n - m.
   (This is the "rotate half" pairing of GPT-NeoX and Hugging Face LLaMA; the original
   interleaves pairs (2i, 2i+1) instead: the same maths on a permutation of the features.)
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..creation import arange
from ..ops.shape import cat
from . import functional as F
from .dropout import Dropout
from .module import Module
from .sparse import Embedding


def _inverse_frequencies(dim: int, base: float, device):
    """w_i = base^(-2i/dim) for i = 0 .. ceil(dim/2) - 1, in float64."""
    i = arange(0, dim, 2, dtype=_dt.float64, device=device)
    return (i * (-math.log(base) / dim)).exp()


def sinusoidal_positional_encoding(max_len: int, d_model: int, base: float = 10000.0,
                                   dtype=None, device=None):
    """(max_len, d_model) table: sin(p w_i) in the even columns, cos(p w_i) in the odd ones.
    Computed in float64, returned in `dtype` (the default float dtype if None)."""
    if max_len < 1 or d_model < 1:
        raise ValueError(f"sinusoidal_positional_encoding: max_len and d_model must be "
                         f"positive, got max_len={max_len}, d_model={d_model}")
    angles = arange(max_len, dtype=_dt.float64, device=device).reshape(-1, 1) * \
        _inverse_frequencies(d_model, base, device).reshape(1, -1)     # (max_len, ceil(d/2))
    # interleave: column 2i = sin(angle_i), column 2i+1 = cos(angle_i)
    table = cat([angles.sin().unsqueeze(-1), angles.cos().unsqueeze(-1)], -1)
    table = table.reshape(max_len, -1)[:, :d_model]     # odd d_model: drop the last cos
    return table.to(dtype if dtype is not None else _dt.get_default_dtype())


class SinusoidalPositionalEncoding(Module):
    """x + PE[:T] (then dropout), for x (T, N, E), or (N, T, E) with batch_first=True.
    The table is a non-persistent buffer: it is not a parameter and not in the state_dict."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0,
                 batch_first: bool = False, base: float = 10000.0, device=None, dtype=None):
        super().__init__()
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        self.dropout = Dropout(dropout)
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model, base,
                                                                  dtype, device),
                             persistent=False)

    def forward(self, x, offset: int = 0):
        """offset: the position of x's first token (for decoding one step at a time)."""
        T = _check_positions("SinusoidalPositionalEncoding", x, self.batch_first, offset,
                             self.max_len, self.d_model)
        pe = self.pe[offset:offset + T]
        pe = pe.unsqueeze(0) if self.batch_first else pe.unsqueeze(1)
        return self.dropout(x + pe.to(x.dtype))

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"


class LearnedPositionalEmbedding(Embedding):
    """A trainable (max_len, d_model) table (an Embedding, so `weight` is its parameter):
    forward(x) returns x + weight[offset : offset + T]."""

    def __init__(self, max_len: int, d_model: int, batch_first: bool = True, device=None,
                 dtype=None):
        super().__init__(max_len, d_model, device=device, dtype=dtype)
        self.batch_first = batch_first

    def forward(self, x, offset: int = 0):
        T = _check_positions("LearnedPositionalEmbedding", x, self.batch_first, offset,
                             self.num_embeddings, self.embedding_dim)
        pos = arange(offset, offset + T, device=x.device)
        pe = F.embedding(pos, self.weight)                         # (T, d_model)
        return x + (pe.unsqueeze(0) if self.batch_first else pe.unsqueeze(1))


def _check_positions(op, x, batch_first, offset, max_len, d_model) -> int:
    if x.ndim != 3 or x.shape[-1] != d_model:
        layout = "(N, T, E)" if batch_first else "(T, N, E)"
        raise ValueError(f"{op}: expected input of shape {layout} with E={d_model}, got "
                         f"{list(x.shape)}")
    T = x.shape[1 if batch_first else 0]
    if offset < 0 or offset + T > max_len:
        raise ValueError(f"{op}: positions {offset}..{offset + T - 1} do not fit max_len="
                         f"{max_len}")
    return T


# ---- rotary embeddings --------------------------------------------------------------------

def rope_cache(seq_len: int, head_dim: int, base: float = 10000.0, dtype=None, device=None):
    """(cos, sin), each (seq_len, head_dim // 2): cos(m w_i) and sin(m w_i) for positions
    m = 0 .. seq_len - 1 and w_i = base^(-2i/head_dim). Computed in float64, returned in
    `dtype` (the default float dtype if None). Slice rows [offset:offset + T] to start later."""
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"rope_cache: head_dim must be even and >= 2, got {head_dim}")
    if seq_len < 1:
        raise ValueError(f"rope_cache: seq_len must be positive, got {seq_len}")
    angles = arange(seq_len, dtype=_dt.float64, device=device).reshape(-1, 1) * \
        _inverse_frequencies(head_dim, base, device).reshape(1, -1)
    dtype = dtype if dtype is not None else _dt.get_default_dtype()
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x, cos, sin):
    """Rotate x (..., T, head_dim) by position: pair (x[..., i], x[..., i + head_dim/2]) of
    the row at position m turns by the angle m w_i. cos, sin: (T, head_dim / 2) rows of
    `rope_cache`. Differentiable (it is linear in x)."""
    half = x.shape[-1] // 2
    if x.shape[-1] % 2 or tuple(cos.shape) != (x.shape[-2], half) or \
            tuple(sin.shape) != tuple(cos.shape):
        raise ValueError(f"apply_rope: x of shape {list(x.shape)} needs cos and sin of shape "
                         f"[{x.shape[-2]}, {half}] (T, head_dim/2) and an even head_dim, got "
                         f"cos {list(cos.shape)} and sin {list(sin.shape)}")
    x1, x2 = x.chunk(2, -1)
    return cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)
