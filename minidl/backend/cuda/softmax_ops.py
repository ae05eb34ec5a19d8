"""Host wrappers of kernels/softmax.cu: the softmax family of the fused-op contract."""
from __future__ import annotations

import numpy as np

from .host_arrays import float_input, rows_cols, same_shape_and_dtype
from .registry import Problem


class SoftmaxOps:
    """softmax / log_softmax forward and backward over the last axis (any leading shape).

    `version` and `block` pick a rung of the ladder and its block size (default: the
    launcher's choice, else the highest version with its default block).
    """

    def _softmax_forward(self, x, log_mode: int, op: str, version, block):
        x = float_input(self.xp, x, op, "x")
        if x.ndim == 0:
            raise ValueError(f"{op}: x must have at least one axis (softmax runs over the last), got a 0-d array")
        y = self.xp.empty_like(x)
        rows, cols = rows_cols(x)
        if x.size == 0:
            return y
        entry = self.launcher.entry("softmax_forward", version)
        problem = Problem(itemsize=x.itemsize, rows=rows, cols=cols)
        if entry.version == 1:
            args = (x, y, np.int64(rows), np.int32(cols), np.int32(log_mode))
        else:
            args = (x, y, np.int32(cols), np.int32(log_mode))
        self.launcher.run(entry, problem, x.dtype, args, block=block)
        return y

    def softmax_forward(self, x, *, version=None, block=None):
        return self._softmax_forward(x, 0, "softmax_forward", version, block)

    def log_softmax_forward(self, x, *, version=None, block=None):
        return self._softmax_forward(x, 1, "log_softmax_forward", version, block)

    def _softmax_backward(self, y, dy, log_mode: int, op: str, version, block):
        y = float_input(self.xp, y, op, "y")
        dy = float_input(self.xp, dy, op, "dy")
        same_shape_and_dtype(op, y, "y", dy, "dy")
        if y.ndim == 0:
            raise ValueError(f"{op}: y must have at least one axis, got a 0-d array")
        dx = self.xp.empty_like(y)
        if y.size == 0:
            return dx
        rows, cols = rows_cols(y)
        entry = self.launcher.entry("softmax_backward", version)
        problem = Problem(itemsize=y.itemsize, rows=rows, cols=cols)
        if entry.version == 1:
            args = (y, dy, dx, np.int64(rows), np.int32(cols), np.int32(log_mode))
        else:
            args = (y, dy, dx, np.int32(cols), np.int32(log_mode))
        self.launcher.run(entry, problem, y.dtype, args, block=block)
        return dx

    def softmax_backward(self, y, dy, *, version=None, block=None):
        """dx = y * (dy - sum(dy * y, -1))"""
        return self._softmax_backward(y, dy, 0, "softmax_backward", version, block)

    def log_softmax_backward(self, y, dy, *, version=None, block=None):
        """dx = dy - exp(y) * sum(dy, -1)"""
        return self._softmax_backward(y, dy, 1, "log_softmax_backward", version, block)
