"""Host wrappers of kernels/layernorm.cu: layer_norm and rms_norm, forward and backward."""
from __future__ import annotations

import numpy as np

from .host_arrays import float_input, rows_cols, same_shape_and_dtype
from .registry import Problem, one_thread_per_column


class NormOps:
    """Normalisation over the last axis. mean / rstd have shape x.shape[:-1]."""

    def _optional_param(self, op, value, name, like, cols):
        """(array, flag): the checked parameter, or a 1-element placeholder and flag 0."""
        if value is None:
            return self.xp.zeros(1, dtype=like.dtype), 0
        value = float_input(self.xp, value, op, name)
        if value.shape != (cols,) or value.dtype != like.dtype:
            raise ValueError(f"{op}: {name} must have shape ({cols},) and dtype {like.dtype}, "
                             f"got shape {tuple(value.shape)} and dtype {value.dtype}")
        return value, 1

    def _stat(self, op, value, name, x):
        value = float_input(self.xp, value, op, name)
        same_shape_and_dtype(op, x[..., 0], "x.shape[:-1]", value, name)
        return value

    def _norm_forward(self, op, x, weight, bias, eps, rms, version, block):
        x = float_input(self.xp, x, op, "x")
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"{op}: x must have a non-empty last axis to normalise, got shape {tuple(x.shape)}")
        rows, cols = rows_cols(x)
        weight, has_weight = self._optional_param(op, weight, "weight", x, cols)
        bias, has_bias = self._optional_param(op, bias, "bias", x, cols)
        y = self.xp.empty_like(x)
        mean = self.xp.empty(x.shape[:-1], dtype=x.dtype)
        rstd = self.xp.empty(x.shape[:-1], dtype=x.dtype)
        if rows == 0:
            return y, mean, rstd
        entry = self.launcher.entry("layer_norm_forward", version)
        scalar = x.dtype.type
        tail = (np.int32(cols), scalar(eps), np.int32(has_weight), np.int32(has_bias), np.int32(rms))
        head = (x, weight, bias, y, mean if not rms else self.xp.zeros(1, x.dtype), rstd)
        args = head + ((np.int64(rows),) if entry.version == 1 else ()) + tail
        self.launcher.run(entry, Problem(itemsize=x.itemsize, rows=rows, cols=cols), x.dtype, args, block=block)
        return y, mean, rstd

    def layer_norm_forward(self, x, weight, bias, eps, *, version=None, block=None):
        return self._norm_forward("layer_norm_forward", x, weight, bias, eps, 0, version, block)

    def rms_norm_forward(self, x, weight, eps, *, version=None, block=None):
        y, _, rstd = self._norm_forward("rms_norm_forward", x, weight, None, eps, 1, version, block)
        return y, rstd

    def _norm_backward(self, op, dy, x, weight, mean, rstd, rms, need_dbias, version, block):
        x = float_input(self.xp, x, op, "x")
        dy = float_input(self.xp, dy, op, "dy")
        same_shape_and_dtype(op, x, "x", dy, "dy")
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"{op}: x must have a non-empty last axis, got shape {tuple(x.shape)}")
        rows, cols = rows_cols(x)
        weight, has_weight = self._optional_param(op, weight, "weight", x, cols)
        mean = self.xp.zeros(1, x.dtype) if rms else self._stat(op, mean, "mean", x)
        rstd = self._stat(op, rstd, "rstd", x)
        dx = self.xp.empty_like(x)
        # Zeroed: v2 adds into them, and an empty batch must give zero gradients.
        dweight = self.xp.zeros(cols, x.dtype) if has_weight else self.xp.zeros(1, x.dtype)
        dbias = self.xp.zeros(cols, x.dtype) if need_dbias else self.xp.zeros(1, x.dtype)
        if rows > 0:
            entry = self.launcher.entry("layer_norm_backward", version)
            problem = Problem(itemsize=x.itemsize, rows=rows, cols=cols)
            flags = (np.int32(has_weight), np.int32(rms))
            if entry.version == 1:
                self.launcher.run(entry, problem, x.dtype,
                                  (dy, x, weight, mean, rstd, dx, np.int64(rows), np.int32(cols)) + flags, block=block)
                if has_weight or need_dbias:
                    block1 = entry.default_block if block is None else block
                    self.launcher.run(entry, problem, x.dtype,
                                      (dy, x, mean, rstd, dweight, dbias, np.int64(rows), np.int32(cols),
                                       np.int32(has_weight), np.int32(need_dbias), np.int32(rms)),
                                      block=block1, index=1, launch=one_thread_per_column(problem, block1))
            else:
                self.launcher.run(entry, problem, x.dtype,
                                  (dy, x, weight, mean, rstd, dx, dweight, dbias, np.int32(cols),
                                   np.int32(has_weight), np.int32(has_weight), np.int32(need_dbias), np.int32(rms)),
                                  block=block)
        return dx, (dweight if has_weight else None), (dbias if need_dbias else None)

    def layer_norm_backward(self, dy, x, weight, mean, rstd, *, version=None, block=None):
        """(dx, dweight or None when weight is None, dbias = dy summed over rows)"""
        return self._norm_backward("layer_norm_backward", dy, x, weight, mean, rstd, 0, 1, version, block)

    def rms_norm_backward(self, dy, x, weight, rstd, *, version=None, block=None):
        dx, dweight, _ = self._norm_backward("rms_norm_backward", dy, x, weight, None, rstd, 1, 0, version, block)
        return dx, dweight
