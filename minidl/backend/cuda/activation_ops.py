"""Host wrappers of kernels/activation.cu: GELU and SiLU, plain and with a fused bias.

Contract ops: gelu_forward(x, approximate), gelu_backward(x, dy, approximate),
silu_forward(x), silu_backward(x, dy). Extra (not in the contract): the bias-fused forms
bias_gelu_forward(x, bias, approximate) = gelu(x + bias) and bias_gelu_backward(x, bias, dy,
approximate) -> (dx, dbias), and the same for SiLU; bias runs along the last axis of x.

The default version is the highest whose limits the arrays meet: 128-bit loads (v3) need
16-byte aligned arrays, so a misaligned view falls back to the grid-stride v2.
"""
from __future__ import annotations

import numpy as np

from minidl.backend.reference._checks import require_gelu_approximate

from .host_arrays import all_aligned, float_input, rows_cols, same_shape_and_dtype
from .kernel_version import Problem
from .ladders_training import bias_stripes

GELU_ERF, GELU_TANH, SILU = 0, 1, 2


def _gelu_kind(op: str, approximate) -> int:
    require_gelu_approximate(op, approximate)
    return GELU_TANH if approximate == "tanh" else GELU_ERF


class ActivationOps:
    def _act_forward(self, op, x, kind, version, block):
        x = float_input(self.xp, x, op, "x")
        y = self.xp.empty_like(x)
        if x.size == 0:
            return y
        problem = Problem(itemsize=x.itemsize, n=x.size, aligned16=all_aligned(x, y))
        entry = self.launcher.best_entry("activation_forward", problem, block, version)
        flat = (x.reshape(-1), y.reshape(-1))  # 0-d arrays become 1-element vectors for the launch
        self.launcher.run(entry, problem, x.dtype, flat + (np.int64(x.size), np.int32(kind)), block=block)
        return y

    def _act_backward(self, op, x, dy, kind, version, block):
        x = float_input(self.xp, x, op, "x")
        dy = float_input(self.xp, dy, op, "dy")
        same_shape_and_dtype(op, x, "x", dy, "dy")
        dx = self.xp.empty_like(x)
        if x.size == 0:
            return dx
        problem = Problem(itemsize=x.itemsize, n=x.size, aligned16=all_aligned(x, dy, dx))
        entry = self.launcher.best_entry("activation_backward", problem, block, version)
        flat = (x.reshape(-1), dy.reshape(-1), dx.reshape(-1))
        self.launcher.run(entry, problem, x.dtype, flat + (np.int64(x.size), np.int32(kind)), block=block)
        return dx

    def gelu_forward(self, x, approximate, *, version=None, block=None):
        return self._act_forward("gelu_forward", x, _gelu_kind("gelu_forward", approximate), version, block)

    def gelu_backward(self, x, dy, approximate, *, version=None, block=None):
        kind = _gelu_kind("gelu_backward", approximate)
        return self._act_backward("gelu_backward", x, dy, kind, version, block)

    def silu_forward(self, x, *, version=None, block=None):
        return self._act_forward("silu_forward", x, SILU, version, block)

    def silu_backward(self, x, dy, *, version=None, block=None):
        return self._act_backward("silu_backward", x, dy, SILU, version, block)

    # ---- bias fused in: y = act(x + bias), bias along the last axis ----

    def _bias_input(self, op, x, bias):
        x = float_input(self.xp, x, op, "x")
        bias = float_input(self.xp, bias, op, "bias")
        if x.ndim == 0 or bias.shape != x.shape[-1:] or bias.dtype != x.dtype:
            raise ValueError(f"{op}: bias must have shape (C,) = x.shape[-1:] and x's dtype; got x {tuple(x.shape)} "
                             f"{x.dtype}, bias {tuple(bias.shape)} {bias.dtype}")
        return x, bias

    def _bias_act_forward(self, op, x, bias, kind, block):
        x, bias = self._bias_input(op, x, bias)
        y = self.xp.empty_like(x)
        if x.size:
            rows, cols = rows_cols(x)
            problem = Problem(itemsize=x.itemsize, n=x.size, rows=rows, cols=cols)
            self.launcher.run(self.launcher.entry("bias_activation_forward"), problem, x.dtype,
                              (x, bias, y, np.int64(x.size), np.int32(cols), np.int32(kind)), block=block)
        return y

    def _bias_act_backward(self, op, x, bias, dy, kind, block):
        x, bias = self._bias_input(op, x, bias)
        dy = float_input(self.xp, dy, op, "dy")
        same_shape_and_dtype(op, x, "x", dy, "dy")
        dx = self.xp.empty_like(x)
        dbias = self.xp.zeros_like(bias)  # the kernel adds one partial sum per stripe of rows
        if x.size:
            rows, cols = rows_cols(x)
            problem = Problem(itemsize=x.itemsize, n=x.size, rows=rows, cols=cols)
            self.launcher.run(self.launcher.entry("bias_activation_backward"), problem, x.dtype,
                              (x, bias, dy, dx, dbias, np.int64(rows), np.int32(cols),
                               np.int64(bias_stripes(rows)), np.int32(kind)), block=block)
        return dx, dbias

    def bias_gelu_forward(self, x, bias, approximate, *, block=None):
        """gelu(x + bias) without writing x + bias to memory."""
        return self._bias_act_forward("bias_gelu_forward", x, bias, _gelu_kind("bias_gelu_forward", approximate),
                                      block)

    def bias_gelu_backward(self, x, bias, dy, approximate, *, block=None):
        """(dx, dbias) of gelu(x + bias); dbias = dx summed over every axis but the last."""
        return self._bias_act_backward("bias_gelu_backward", x, bias, dy,
                                       _gelu_kind("bias_gelu_backward", approximate), block)

    def bias_silu_forward(self, x, bias, *, block=None):
        return self._bias_act_forward("bias_silu_forward", x, bias, SILU, block)

    def bias_silu_backward(self, x, bias, dy, *, block=None):
        return self._bias_act_backward("bias_silu_backward", x, bias, dy, SILU, block)
