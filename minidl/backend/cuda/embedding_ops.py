"""Host wrapper of kernels/embedding.cu: embedding_backward (the fused-op contract).

The default version (v2) is deterministic, as the contract asks: the positions are sorted by
index with a stable sort of the array library (NumPy here, CuPy's radix sort on a GPU), then
each segment of equal indices is summed in order by one block. v1 (atomics) is kept as the
plain rung of the ladder.
"""
from __future__ import annotations

import numpy as np

from minidl.backend.reference.embedding import check_embedding_args

from .kernel_version import Problem


class EmbeddingOps:
    def embedding_backward(self, indices, dy, num_embeddings, padding_idx, *, version=None, block=None):
        """dweight (num_embeddings, D): dy rows summed per index; the padding_idx row is 0."""
        op = "embedding_backward"
        padding_idx = check_embedding_args(op, indices, dy, num_embeddings, padding_idx)
        xp = self.xp
        dim = dy.shape[-1]
        flat = xp.ascontiguousarray(indices, dtype=np.int64).reshape(-1)
        rows = xp.ascontiguousarray(dy).reshape(-1, dim)
        dweight = xp.zeros((num_embeddings, dim), dtype=dy.dtype)
        if flat.size == 0 or dim == 0:
            return dweight
        pad = np.int64(-1 if padding_idx is None else padding_idx)
        entry = self.launcher.entry(op, version)
        if entry.version == 1:
            problem = Problem(itemsize=dy.itemsize, n=flat.size * dim, cols=dim)
            self.launcher.run(entry, problem, dy.dtype, (flat, rows, dweight, np.int64(flat.size), np.int32(dim), pad),
                              block=block)
            return dweight
        order = xp.argsort(flat, kind="stable")
        sorted_indices = flat[order]
        starts = xp.flatnonzero(xp.concatenate([xp.ones(1, dtype=bool), sorted_indices[1:] != sorted_indices[:-1]]))
        seg_start = xp.concatenate([starts, xp.full(1, flat.size, dtype=starts.dtype)]).astype(np.int64)
        seg_index = xp.ascontiguousarray(sorted_indices[starts])
        problem = Problem(itemsize=dy.itemsize, rows=int(starts.size), cols=dim)
        self.launcher.run(entry, problem, dy.dtype, (xp.ascontiguousarray(order, dtype=np.int64), seg_start, seg_index,
                                                     rows, dweight, np.int32(dim), pad), block=block)
        return dweight
