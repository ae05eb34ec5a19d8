"""Host wrapper of kernels/matmul.cu: (batched) matrix product of C-contiguous operands."""
from __future__ import annotations

import numpy as np

from .host_arrays import float_input
from .registry import Problem


class MatmulOps:
    def matmul(self, a, b, *, version=None):
        """a (M, K) @ b (K, N), or batched (B, M, K) @ (B, K, N); a 2-D operand broadcasts
        over the batch of a 3-D one."""
        a = float_input(self.xp, a, "matmul", "a")
        b = float_input(self.xp, b, "matmul", "b")
        if a.dtype != b.dtype:
            raise TypeError(f"matmul: a and b must share a dtype, got {a.dtype} and {b.dtype}")
        if a.ndim not in (2, 3) or b.ndim not in (2, 3):
            raise ValueError(f"matmul: operands must be 2-D or 3-D, got shapes {a.shape} and {b.shape}")
        m, k = a.shape[-2:]
        k_b, n = b.shape[-2:]
        batch_a = a.shape[0] if a.ndim == 3 else None
        batch_b = b.shape[0] if b.ndim == 3 else None
        if k != k_b or (batch_a and batch_b and batch_a != batch_b):
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not chain (need (..., M, K) @ (..., K, N))")
        batch = batch_a or batch_b or 1
        out_shape = (m, n) if batch_a is None and batch_b is None else (batch, m, n)
        c = self.xp.empty(out_shape, dtype=a.dtype)
        if c.size == 0:
            return c
        if k == 0:
            c[...] = 0
            return c
        entry = self.launcher.entry("matmul", version)
        stride_a = m * k if batch_a else 0
        stride_b = k * n if batch_b else 0
        args = (a, b, c, np.int32(m), np.int32(n), np.int32(k),
                np.int64(stride_a), np.int64(stride_b), np.int64(m * n))
        self.launcher.run(entry, Problem(itemsize=a.itemsize, m=m, n=n, k=k, batch=batch), a.dtype, args)
        return c
