"""Embedding: look rows of a (num_embeddings, D) table up by integer index.

    y[..., :] = weight[indices[...], :]          (a row gather; output indices.shape + (D,))

The gradient scatters each dy row back to the table row it came from; an index used several
times receives the SUM of its dy rows, and the row at `padding_idx` receives nothing (that
vector stays fixed, as in PyTorch). The scatter runs in the backend's fused
`embedding_backward` (deterministic: it sorts instead of using atomic adds).

The gather is linear in the table, and the scatter is its adjoint; the adjoint of the scatter
is the gather again (with the padding positions zeroed), so second derivatives need no new
maths: `EmbeddingScatter.backward` calls `Embedding`.
"""
from __future__ import annotations

import numbers

from ..autograd.function import Function
from ..autograd.grad_mode import no_grad
from ._util import Tensor, check_float


class Embedding(Function):
    """weight (a Tensor) and three constants: indices (an integer array), padding_idx,
    scale_grad_by_freq. Applied with `apply1`, the one-tensor entry point: when nothing is
    recorded (no_grad, or a frozen table) it calls `array_op` and makes no graph node."""

    @staticmethod
    def array_op(weight, indices, padding_idx, scale_grad_by_freq):
        # ndarray.take (NumPy and CuPy alike): one memcpy per looked-up row, into a fresh
        # C-contiguous result. Fancy indexing weight[indices] gives the same array at ~2x the
        # cost, through NumPy's general advanced-indexing machinery.
        return weight.take(indices, axis=0)

    @staticmethod
    def forward(ctx, weight, indices, padding_idx, scale_grad_by_freq):
        ctx.indices, ctx.num_embeddings = indices, weight.shape[0]
        ctx.padding_idx, ctx.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        return weight.take(indices, axis=0)

    @staticmethod
    def backward(ctx, grad):
        dweight = EmbeddingScatter.apply(grad, ctx.indices, ctx.num_embeddings, ctx.padding_idx,
                                         ctx.scale_grad_by_freq)
        return dweight, None, None, None


def _inverse_frequency(xp, indices, num_embeddings, dtype):
    """1 / (how often each position's index occurs in the batch), shaped indices.shape + (1,)."""
    counts = xp.bincount(indices.reshape(-1), minlength=num_embeddings)
    return (1.0 / counts[indices].astype(dtype))[..., None]


class EmbeddingScatter(Function):
    """dy (*indices.shape, D) -> dweight (num_embeddings, D), summing repeated indices."""

    @staticmethod
    def forward(ctx, dy, indices, num_embeddings, padding_idx, scale_grad_by_freq):
        ctx.indices, ctx.padding_idx = indices, padding_idx
        ctx.scale_grad_by_freq = scale_grad_by_freq
        xp = ctx._be.xp
        dy = xp.ascontiguousarray(dy)
        if scale_grad_by_freq:
            dy = dy * _inverse_frequency(xp, indices, num_embeddings, dy.dtype)
        return ctx._be.fused.embedding_backward(indices, dy, num_embeddings, padding_idx)

    @staticmethod
    def backward(ctx, gg):
        indices, padding_idx = ctx.indices, ctx.padding_idx
        xp, be = ctx._be.xp, ctx._be
        picked = Embedding.apply1(gg, indices, None, False)
        factor = None
        if padding_idx is not None:
            factor = (indices != padding_idx)[..., None].astype(gg._data.dtype)
        if ctx.scale_grad_by_freq:
            inv = _inverse_frequency(xp, indices, gg.shape[0], gg._data.dtype)
            factor = inv if factor is None else factor * inv
        if factor is not None:
            picked = picked * Tensor._wrap(factor, be, None, 0)
        return picked, None, None, None, None


def _renorm_rows(weight, indices, max_norm, norm_type):
    """PyTorch's max_norm: rows looked up in this call whose norm exceeds max_norm are scaled
    down IN PLACE to norm max_norm (no gradient flows through the rescaling)."""
    xp = weight._be.xp
    rows = xp.unique(indices.reshape(-1))
    with no_grad():
        table = weight._data[rows]
        norms = (xp.abs(table) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
        scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(table.dtype)
        row_index = Tensor._wrap(rows, weight._be, None, 0)
        weight[row_index] = Tensor._wrap(table * scale[:, None], weight._be, None, 0)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False):
    """Rows of `weight` (num_embeddings, D) picked by the integer tensor `input`."""
    op = "embedding"
    if not isinstance(input, Tensor) or input._data.dtype.kind not in "iu":
        got = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise TypeError(f"{op}: indices (the first argument) must be an integer tensor (int64 "
                        f"or int32), got {got}")
    if not isinstance(weight, Tensor) or weight._data.ndim != 2:
        got = list(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise RuntimeError(f"{op}: weight must be a 2-D (num_embeddings, embedding_dim) tensor, "
                           f"got {got}")
    check_float(weight, op)
    if sparse:
        raise NotImplementedError(f"{op}: sparse gradients are not supported; use sparse=False")
    num = weight._data.shape[0]
    if padding_idx is not None:
        if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral) or \
                not -num <= padding_idx < num:
            raise ValueError(f"{op}: padding_idx must be within num_embeddings: expected an int "
                             f"in [{-num}, {num - 1}], got {padding_idx!r}")
        padding_idx = int(padding_idx) % num
    indices = input._data
    if indices.size:
        _check_indices(op, indices, num)
    if max_norm is not None:
        _renorm_rows(weight, indices, float(max_norm), float(norm_type))
    return Embedding.apply1(weight, indices, padding_idx, bool(scale_grad_by_freq))


_UNSIGNED = {}   # signed index dtype -> the unsigned dtype of the same width


def _check_indices(op, indices, num):
    """Every index in [0, num). One pass: seen as unsigned integers of the same width, a
    negative index is huge (-1 becomes 2**64 - 1 for int64), so `max < num` covers both
    ends: 1.2 us for (32, 128) indices against 2.0 us for a min and a max (of a 27 us
    lookup). The culprit for the message is only looked for once something is wrong."""
    dtype = indices.dtype
    if dtype.kind == "i":
        unsigned_dtype = _UNSIGNED.get(dtype)
        if unsigned_dtype is None:      # once per index dtype: the dtype object, not a string
            unsigned_dtype = _UNSIGNED[dtype] = indices.view(f"u{dtype.itemsize}").dtype
        indices = indices.view(unsigned_dtype)
    if int(indices.max()) >= num:
        indices = indices.view(dtype)
        low, high = int(indices.min()), int(indices.max())
        bad = low if low < 0 else high
        raise IndexError(f"{op}: index {bad} is out of range for a table with {num} rows "
                         f"(expected 0..{num - 1})")
