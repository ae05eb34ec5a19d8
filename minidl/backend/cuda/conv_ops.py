"""Host wrappers of kernels/im2col.cu (im2col, col2im) and kernels/pool.cu (max / average
pooling), plus conv2d_forward / conv2d_backward built from them: im2col or col2im by our
kernels, the matrix products by the array library (cuBLAS through CuPy on a GPU).

Geometry and argument checks are the reference's, so every device reports the same errors.
The column layout is the reference's (see kernels/im2col.cu), so `saved` columns are
interchangeable between devices.
"""
from __future__ import annotations

import numpy as np

from minidl.backend.reference._checks import require_float, require_int_array, require_shape
from minidl.backend.reference.conv import check_conv_args, conv_geometry, shape_of
from minidl.backend.reference.pool import pool_geometry

from .host_arrays import float_input
from .kernel_version import Problem


def _ints(*values):
    return tuple(np.int32(v) for v in values)


class ConvPoolOps:
    # ---- im2col / col2im ----

    def im2col(self, x, kh, kw, stride, padding, dilation, *, block=None):
        """(N, C, H, W) -> cols (C*kh*kw, N*OH*OW)."""
        require_float("im2col", x=x)
        N, C, H, W, OH, OW, s, p, d = conv_geometry("im2col", x.shape, kh, kw, stride, padding, dilation)
        x = float_input(self.xp, x, "im2col", "x")
        cols = self.xp.empty((C * kh * kw, N * OH * OW), dtype=x.dtype)
        if cols.size:
            problem = Problem(itemsize=x.itemsize, n=cols.size, m=max(cols.shape + x.shape))
            self.launcher.run(self.launcher.entry("im2col"), problem, x.dtype,
                              (x, cols) + _ints(N, C, H, W, kh, kw, *s, *p, *d, OH, OW), block=block)
        return cols

    def col2im(self, cols, x_shape, kh, kw, stride, padding, dilation, *, version=None, block=None):
        """The adjoint of im2col: cols (C*kh*kw, N*OH*OW) scatter-added back to x_shape."""
        require_float("col2im", cols=cols)
        N, C, H, W, OH, OW, s, p, d = conv_geometry("col2im", x_shape, kh, kw, stride, padding, dilation)
        if tuple(cols.shape) != (C * kh * kw, N * OH * OW):
            raise ValueError(f"col2im: cols must have shape {(C * kh * kw, N * OH * OW)} for "
                             f"x_shape {tuple(x_shape)}, got {tuple(cols.shape)}")
        cols = float_input(self.xp, cols, "col2im", "cols")
        x = self.xp.zeros((N, C, H, W), dtype=cols.dtype)  # v1 adds into it
        if x.size and cols.size:
            entry = self.launcher.entry("col2im", version)
            n = cols.size if entry.version == 1 else x.size
            problem = Problem(itemsize=x.itemsize, n=n, m=max(cols.shape + x.shape))
            self.launcher.run(entry, problem, x.dtype, (cols, x) + _ints(N, C, H, W, kh, kw, *s, *p, *d, OH, OW),
                              block=block)
        return x

    # ---- convolution: im2col + GEMM ----

    def conv2d_forward(self, x, weight, bias, stride, padding, dilation, groups):
        """(y (N, O, OH, OW), saved = the columns of x)."""
        require_float("conv2d_forward", x=x, weight=weight, bias=bias)
        check_conv_args("conv2d_forward", x.shape, weight, bias, groups)
        xp = self.xp
        O, Cg, kh, kw = weight.shape
        N, C, H, W, OH, OW, s, p, d = conv_geometry("conv2d_forward", x.shape, kh, kw, stride, padding, dilation)
        cols = self.im2col(x, kh, kw, s, p, d)
        w3 = xp.ascontiguousarray(weight).reshape(groups, O // groups, Cg * kh * kw)
        y2 = xp.matmul(w3, cols.reshape(groups, Cg * kh * kw, N * OH * OW))
        y = y2.reshape(O, N, OH, OW).transpose(1, 0, 2, 3)
        if bias is not None:
            y = y + bias.reshape(1, O, 1, 1)
        return xp.ascontiguousarray(y), cols

    def conv2d_backward(self, dy, x, weight, saved, stride, padding, dilation, groups, need_input_grad,
                        need_weight_grad, need_bias_grad):
        """(dx | None, dweight | None, dbias | None); x may be given as its shape only."""
        op = "conv2d_backward"
        require_float(op, dy=dy, weight=weight)
        x_shape = shape_of(x)
        check_conv_args(op, x_shape, weight, None, groups)
        xp = self.xp
        O, Cg, kh, kw = weight.shape
        N, C, H, W, OH, OW, s, p, d = conv_geometry(op, x_shape, kh, kw, stride, padding, dilation)
        if tuple(dy.shape) != (N, O, OH, OW):
            raise ValueError(f"{op}: dy must have shape {(N, O, OH, OW)} (the forward's output), got {tuple(dy.shape)}")
        L = N * OH * OW
        dy2 = xp.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(groups, O // groups, L)
        dx = dweight = dbias = None
        if need_bias_grad:
            dbias = dy.sum(axis=(0, 2, 3))
        if need_weight_grad:
            if saved is None and isinstance(x, (tuple, list)):
                raise ValueError(f"{op}: the weight gradient needs the input data (or the saved columns from "
                                 f"conv2d_forward), but x was given only as a shape {x}")
            cols = saved if saved is not None else self.im2col(x, kh, kw, s, p, d)
            dweight = xp.matmul(dy2, cols.reshape(groups, Cg * kh * kw, L).transpose(0, 2, 1)).reshape(weight.shape)
        if need_input_grad:
            w3 = xp.ascontiguousarray(weight).reshape(groups, O // groups, Cg * kh * kw)
            dcols = xp.matmul(w3.transpose(0, 2, 1), dy2).reshape(C * kh * kw, L)
            dx = self.col2im(dcols, x_shape, kh, kw, s, p, d)
        return dx, dweight, dbias

    # ---- pooling ----

    def max_pool2d_forward(self, x, kernel, stride, padding, dilation, ceil_mode, *, block=None):
        """(y, argmax): argmax = flat index h*W + w of the winner in its (H, W) plane (int64)."""
        op = "max_pool2d_forward"
        require_float(op, x=x)
        N, C, H, W, OH, OW, k, s, p, d = pool_geometry(op, x.shape, kernel, stride, padding, dilation, ceil_mode)
        x = float_input(self.xp, x, op, "x")
        y = self.xp.empty((N, C, OH, OW), dtype=x.dtype)
        argmax = self.xp.empty((N, C, OH, OW), dtype=np.int64)
        if y.size:
            problem = Problem(itemsize=x.itemsize, n=y.size, m=max(H, W, OH, OW))
            self.launcher.run(self.launcher.entry("max_pool2d_forward"), problem, x.dtype,
                              (x, y, argmax, np.int64(N * C)) + _ints(H, W, OH, OW, *k, *s, *p, *d), block=block)
        return y, argmax

    def max_pool2d_backward(self, dy, argmax, x_shape, *, block=None):
        """dx[n, c].flat[argmax] += dy (repeated winners accumulate)."""
        op = "max_pool2d_backward"
        require_float(op, dy=dy)
        require_int_array(op, "argmax", argmax)
        require_shape(op, "argmax", argmax, dy.shape, "the shape of dy")
        if len(x_shape) != 4 or tuple(x_shape[:2]) != tuple(dy.shape[:2]):
            raise ValueError(f"{op}: x_shape must be (N, C, H, W) with N, C = {tuple(dy.shape[:2])} (from dy), "
                             f"got {tuple(x_shape)}")
        N, C, H, W = (int(v) for v in x_shape)
        dy = float_input(self.xp, dy, op, "dy")
        dx = self.xp.zeros((N, C, H, W), dtype=dy.dtype)
        if dy.size and dx.size:
            plane_out = dy.shape[2] * dy.shape[3]
            problem = Problem(itemsize=dy.itemsize, n=dy.size, m=max(H * W, plane_out))
            self.launcher.run(self.launcher.entry("max_pool2d_backward"), problem, dy.dtype,
                              (dy, self.xp.ascontiguousarray(argmax, dtype=np.int64), dx, np.int64(N * C),
                               np.int32(H * W), np.int32(plane_out)), block=block)
        return dx

    def avg_pool2d_forward(self, x, kernel, stride, padding, ceil_mode, count_include_pad, *, block=None):
        op = "avg_pool2d_forward"
        require_float(op, x=x)
        N, C, H, W, OH, OW, k, s, p, _ = pool_geometry(op, x.shape, kernel, stride, padding, 1, ceil_mode)
        x = float_input(self.xp, x, op, "x")
        y = self.xp.empty((N, C, OH, OW), dtype=x.dtype)
        if y.size:
            problem = Problem(itemsize=x.itemsize, n=y.size, m=max(H, W, OH, OW))
            self.launcher.run(self.launcher.entry("avg_pool2d_forward"), problem, x.dtype,
                              (x, y, np.int64(N * C)) + _ints(H, W, OH, OW, *k, *s, *p, bool(count_include_pad)),
                              block=block)
        return y

    def avg_pool2d_backward(self, dy, x_shape, kernel, stride, padding, ceil_mode, count_include_pad, *, block=None):
        """Each window spreads dy / divisor over its taps; overlaps add."""
        op = "avg_pool2d_backward"
        require_float(op, dy=dy)
        N, C, H, W, OH, OW, k, s, p, _ = pool_geometry(op, x_shape, kernel, stride, padding, 1, ceil_mode)
        require_shape(op, "dy", dy, (N, C, OH, OW), "the pooled output of x_shape")
        dy = float_input(self.xp, dy, op, "dy")
        dx = self.xp.empty((N, C, H, W), dtype=dy.dtype)
        if dx.size:
            problem = Problem(itemsize=dy.itemsize, n=dx.size, m=max(H, W, OH, OW))
            self.launcher.run(self.launcher.entry("avg_pool2d_backward"), problem, dy.dtype,
                              (dy, dx, np.int64(N * C)) + _ints(H, W, OH, OW, *k, *s, *p, bool(count_include_pad)),
                              block=block)
        return dx
