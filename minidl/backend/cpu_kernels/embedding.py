"""Embedding backward: fast CPU kernel (maths in reference/embedding.py).

A plain serial scatter-add: for each position n, dweight[indices[n]] += dy[n]. In compiled
code the repeated-index trap of NumPy's fancy assignment does not exist (every add lands),
and the fixed loop order makes the result deterministic. Each add is a contiguous row of D
values, which vectorises. This beats both `np.add.at` (an interpreted per-element loop) and
sorting (O(n log n) and a gather of dy in sorted order).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..reference.embedding import check_embedding_args
from ._fastmath import FASTMATH


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _scatter_add_rows(indices, dy, dweight):
    for n in range(indices.size):
        row = indices[n]
        for d in range(dy.shape[1]):
            dweight[row, d] += dy[n, d]


def embedding_backward(indices, dy, num_embeddings, padding_idx):
    padding_idx = check_embedding_args("embedding_backward", indices, dy, num_embeddings,
                                       padding_idx)
    D = dy.shape[-1]
    dweight = np.zeros((int(num_embeddings), D), dtype=dy.dtype)
    _scatter_add_rows(np.ascontiguousarray(indices, dtype=np.int64).reshape(-1),
                      np.ascontiguousarray(dy).reshape(-1, D), dweight)
    if padding_idx is not None:
        dweight[padding_idx] = 0
    return dweight
