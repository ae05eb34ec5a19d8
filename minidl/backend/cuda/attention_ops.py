"""Host wrappers of kernels/attention.cu: sdpa_forward / sdpa_backward (the fused-op contract).

Leading axes (batch, heads, ...) are flattened to one axis of B = prod(lead) (batch, head)
pairs. A bias that broadcasts to (..., Tq, Tk) is passed without expanding it: one element
offset per (batch, head) plane and the plane's strides over queries and keys (0 along a
broadcast axis). The default version is the flash kernel (v2) unless the head dims need more
shared memory than a block can have, in which case the plain v1 runs.
"""
from __future__ import annotations

import numpy as np

from minidl.backend.reference._checks import require_float, require_shape
from minidl.backend.reference.attention import check_sdpa

from .kernel_version import Launch, Problem, ceil_div


class AttentionOps:
    def _bias_planes(self, bias, lead, tq, tk):
        """(flat bias, host offsets (B,), row stride, col stride) of a bias broadcast to lead + (tq, tk)."""
        full = tuple(lead) + (tq, tk)
        shape = (1,) * (len(full) - bias.ndim) + tuple(bias.shape)
        bq, bk = shape[-2:]
        planes = np.arange(int(np.prod(shape[:-2], dtype=np.int64)), dtype=np.int64).reshape(shape[:-2])
        offsets = np.ascontiguousarray(np.broadcast_to(planes, tuple(lead)).reshape(-1)) * (bq * bk)
        row_stride = bk if bq == tq else 0
        col_stride = 1 if bk == tk else 0
        return self.xp.ascontiguousarray(bias).reshape(-1), offsets, row_stride, col_stride

    def _sdpa_setup(self, op, q, k, v, bias, scale, version, block):
        lead, tq, tk, d, dv, scale = check_sdpa(op, q, k, v, bias, scale)
        xp = self.xp
        batch = int(np.prod(lead, dtype=np.int64))
        c = xp.ascontiguousarray
        q3, k3, v3 = c(q).reshape(batch, tq, d), c(k).reshape(batch, tk, d), c(v).reshape(batch, tk, dv)
        if bias is None:
            flat, offsets, rs, cs = xp.zeros(1, dtype=q.dtype), np.zeros(1, np.int64), 0, 0
        else:
            flat, offsets, rs, cs = self._bias_planes(bias, lead, tq, tk)
        problem = Problem(itemsize=q.dtype.itemsize, batch=batch, tq=tq, tk=tk, d=d, dv=dv)
        entry = self.launcher.best_entry(op, problem, block, version)
        return lead, scale, q3, k3, v3, (flat, offsets, rs, cs), problem, entry

    def sdpa_forward(self, q, k, v, bias, is_causal, scale, *, version=None, block=None):
        """(out (..., Tq, Dv), lse (..., Tq)); fully masked rows: out 0, lse -inf."""
        op = "sdpa_forward"
        lead, scale, q3, k3, v3, (flat, offsets, rs, cs), p, entry = self._sdpa_setup(op, q, k, v, bias, scale,
                                                                                        version, block)
        xp, dtype = self.xp, q.dtype
        out = xp.empty((p.batch, p.tq, p.dv), dtype=dtype)
        lse = xp.empty((p.batch, p.tq), dtype=dtype)
        if p.batch and p.tq:
            block = entry.default_block if block is None else block
            flags = (np.int64(rs), np.int64(cs), np.int32(bias is not None), np.int32(bool(is_causal)))
            dims = (np.int32(p.tq), np.int32(p.tk))
            if entry.version == 1:
                self._sdpa_forward_v1(entry, p, block, q3, k3, v3, flat, offsets, flags, dims, scale, out, lse)
            else:
                self.launcher.run(entry, p, dtype, (q3, k3, v3, flat, xp.asarray(offsets), out, lse) + dims
                                  + (np.int32(p.d), np.int32(p.dv)) + flags + (dtype.type(scale),), block=block)
        return out.reshape(tuple(lead) + (p.tq, p.dv)), lse.reshape(tuple(lead) + (p.tq,))

    def _sdpa_forward_v1(self, entry, p, block, q3, k3, v3, flat, offsets, flags, dims, scale, out, lse):
        dtype = q3.dtype
        scores = self.xp.empty((p.tq, max(p.tk, 1)), dtype=dtype)  # ONE (Tq, Tk) block, reused per (batch, head)
        rows = Launch((ceil_div(p.tq, block),), (block,))
        outputs = Launch((max(1, ceil_div(p.tq * p.dv, block)),), (block,))
        for b in range(p.batch):
            plane = flat[int(offsets[b]):] if flags[2] else flat
            self.launcher.run(entry, p, dtype, (q3[b], k3[b], plane, scores) + dims + (np.int32(p.d),) + flags
                              + (dtype.type(scale),), block=block, index=0)
            self.launcher.run(entry, p, dtype, (scores, lse[b]) + dims, block=block, index=1, launch=rows)
            self.launcher.run(entry, p, dtype, (scores, v3[b], out[b]) + dims + (np.int32(p.dv),), block=block,
                              index=2, launch=outputs)

    def sdpa_backward(self, q, k, v, out, lse, dout, bias, is_causal, scale, need_bias_grad, *, version=None,
                      block=None):
        """(dq, dk, dv, dbias or None); P is recomputed from lse; fully masked rows give zeros."""
        op = "sdpa_backward"
        lead, scale, q3, k3, v3, (flat, offsets, rs, cs), p, entry = self._sdpa_setup(op, q, k, v, bias, scale,
                                                                                        version, block)
        require_float(op, q=q, out=out, lse=lse, dout=dout)
        require_shape(op, "out", out, tuple(lead) + (p.tq, p.dv), "q's leading dims, Tq and v's Dv")
        require_shape(op, "dout", dout, tuple(lead) + (p.tq, p.dv), "the shape of out")
        require_shape(op, "lse", lse, tuple(lead) + (p.tq,), "q's leading dims and Tq")
        if need_bias_grad and bias is None:
            raise ValueError(f"{op}: need_bias_grad=True but no bias was given")
        xp, dtype, c = self.xp, q.dtype, self.xp.ascontiguousarray
        o3, do3 = c(out).reshape(p.batch, p.tq, p.dv), c(dout).reshape(p.batch, p.tq, p.dv)
        lse2 = c(lse).reshape(p.batch, p.tq)
        dq = xp.zeros_like(q3)   # zeroed: v2 adds into it from every key block
        dk, dv = xp.zeros_like(k3), xp.zeros_like(v3)
        dbias = xp.zeros(bias.shape, dtype=dtype) if need_bias_grad else None
        dbias_flat = dbias.reshape(-1) if need_bias_grad else xp.zeros(1, dtype=dtype)
        if p.batch and p.tq and p.tk:
            block = entry.default_block if block is None else block
            flags = (np.int64(rs), np.int64(cs))
            dims = (np.int32(p.tq), np.int32(p.tk))
            arrays = (q3, k3, v3, o3, do3, lse2, dq, dk, dv, flat, offsets, dbias_flat)
            if entry.version == 1:
                self._sdpa_backward_v1(entry, p, block, arrays, flags, dims, bias is not None, need_bias_grad,
                                       is_causal, scale)
            else:
                delta = xp.empty((p.batch, p.tq), dtype=dtype)
                warps = block // 32
                self.launcher.run(entry, p, dtype, (o3, do3, delta, np.int64(p.batch * p.tq), np.int32(p.dv)),
                                  block=block, index=0, launch=Launch((ceil_div(p.batch * p.tq, warps),), (block,)))
                self.launcher.run(entry, p, dtype, (q3, k3, v3, flat, xp.asarray(offsets), lse2, delta, do3, dq, dk,
                                                    dv, dbias_flat) + dims + (np.int32(p.d), np.int32(p.dv)) + flags
                                  + (np.int32(bias is not None), np.int32(bool(need_bias_grad)),
                                     np.int32(bool(is_causal)), dtype.type(scale)), block=block, index=1)
        return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape), dbias

    def _sdpa_backward_v1(self, entry, p, block, arrays, flags, dims, has_bias, need_dbias, is_causal, scale):
        q3, k3, v3, o3, do3, lse2, dq, dk, dv, flat, offsets, dbias_flat = arrays
        dtype = q3.dtype
        s = dtype.type(scale)
        scores = self.xp.empty((p.tq, p.tk), dtype=dtype)  # S, then P, then dS: one block per (batch, head)

        def threads(n):
            return Launch((max(1, ceil_div(n, block)),), (block,))
        for b in range(p.batch):
            plane = flat[int(offsets[b]):] if has_bias else flat
            dbias_plane = dbias_flat[int(offsets[b]):] if need_dbias else dbias_flat
            run = self.launcher.run
            run(entry, p, dtype, (q3[b], k3[b], plane, scores) + dims + (np.int32(p.d),) + flags
                + (np.int32(has_bias), np.int32(bool(is_causal)), s), block=block, index=0)
            run(entry, p, dtype, (scores, lse2[b]) + dims, block=block, index=1, launch=threads(p.tq * p.tk))
            run(entry, p, dtype, (scores, do3[b], dv[b]) + dims + (np.int32(p.dv),), block=block, index=2,
                launch=threads(p.tk * p.dv))
            run(entry, p, dtype, (scores, do3[b], v3[b], o3[b], dbias_plane) + dims + (np.int32(p.dv),) + flags
                + (np.int32(bool(need_dbias)),), block=block, index=3, launch=threads(p.tq * p.tk))
            run(entry, p, dtype, (scores, k3[b], dq[b]) + dims + (np.int32(p.d), s), block=block, index=4,
                launch=threads(p.tq * p.d))
            run(entry, p, dtype, (scores, q3[b], dk[b]) + dims + (np.int32(p.d), s), block=block, index=5,
                launch=threads(p.tk * p.d))
