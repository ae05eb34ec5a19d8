"""Embedding backward: the plain reference.

The forward is a row gather, y[...] = weight[indices[...]] (no fused op needed). Its gradient
scatters each dy row back to the table row it came from, and an index that appears several
times receives the SUM of its dy rows.

Trap: `dweight[indices] += dy` is wrong with repeated indices (NumPy buffers the fancy
assignment, so only one of the repeats lands). `add.at` is right but slow on CPU and, on a
GPU, accumulates with atomics in an unspecified order (not bit-reproducible). We sort instead:
a stable argsort groups equal indices together, then `add.reduceat` sums each group of
consecutive dy rows. The order of additions is fixed by the data alone: deterministic.

The row at padding_idx gets a zero gradient (PyTorch's rule: the padding vector stays fixed).
"""
from __future__ import annotations

import numbers

from ._checks import (normalise_padding_idx, require_float, require_indices,
                      require_int_array, require_shape)
from ._xp import get_xp


def embedding_backward(indices, dy, num_embeddings, padding_idx):
    op = "embedding_backward"
    padding_idx = check_embedding_args(op, indices, dy, num_embeddings, padding_idx)
    xp = get_xp(dy)
    D = dy.shape[-1]
    flat_indices = indices.reshape(-1)
    dy_rows = dy.reshape(-1, D)
    dweight = xp.zeros((num_embeddings, D), dtype=dy.dtype)
    if flat_indices.size:
        order = xp.argsort(flat_indices, kind="stable")
        sorted_indices = flat_indices[order]
        # a group starts where the sorted index changes
        starts_group = xp.concatenate(
            [xp.ones(1, dtype=bool), sorted_indices[1:] != sorted_indices[:-1]])
        starts = xp.flatnonzero(starts_group)
        dweight[sorted_indices[starts]] = xp.add.reduceat(dy_rows[order], starts, axis=0)
    if padding_idx is not None:
        dweight[padding_idx] = 0
    return dweight


def check_embedding_args(op, indices, dy, num_embeddings, padding_idx):
    """Validate the arguments; return padding_idx made non-negative (or None)."""
    require_int_array(op, "indices", indices)
    require_float(op, dy=dy)
    if isinstance(num_embeddings, bool) or not isinstance(num_embeddings, numbers.Integral) \
            or num_embeddings < 1:
        raise ValueError(f"{op}: num_embeddings must be a positive int, "
                         f"got {num_embeddings!r}")
    if dy.ndim != indices.ndim + 1:
        raise ValueError(f"{op}: dy must have shape indices.shape + (D,) = "
                         f"{tuple(indices.shape)} + (D,), got {tuple(dy.shape)}")
    require_shape(op, "dy", dy, tuple(indices.shape) + (dy.shape[-1],),
                  "indices.shape + (D,)")
    require_indices(op, indices, num_embeddings)
    return normalise_padding_idx(op, padding_idx, int(num_embeddings))
