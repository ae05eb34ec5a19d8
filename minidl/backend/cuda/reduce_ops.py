"""Host wrapper of kernels/reduce.cu: the sum of every element."""
from __future__ import annotations

import numpy as np

from .host_arrays import float_input
from .registry import Problem


class ReduceOps:
    def sum_all(self, x, *, version=None, block=None):
        """Sum of all elements as a 0-d array of x's dtype (accumulated in that dtype)."""
        x = float_input(self.xp, x, "sum_all", "x").reshape(-1)
        out = self.xp.zeros(1, dtype=x.dtype)  # the atomic versions add into it
        if x.size == 0:
            return out.reshape(())
        entry = self.launcher.entry("sum", version)
        problem = Problem(itemsize=x.itemsize, n=x.size)
        if len(entry.kernels) == 1:
            self.launcher.run(entry, problem, x.dtype, (x, out, np.int64(x.size)), block=block)
        else:  # two passes: partials per block, then one block sums them
            block = entry.default_block if block is None else block
            first = entry.launch(problem, block)
            partials = self.xp.empty(first.grid[0], dtype=x.dtype)
            self.launcher.run(entry, problem, x.dtype, (x, partials, np.int64(x.size)), block=block, launch=first)
            finish = type(first)((1,), (block,), 0)
            self.launcher.run(entry, problem, x.dtype, (partials, out, np.int32(partials.size)),
                              block=block, index=1, launch=finish)
        return out.reshape(())
