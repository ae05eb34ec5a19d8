"""Host wrappers of kernels/adam.cu: adam_step and sgd_step, multi-tensor and in place.

Same signature and semantics as the reference (`minidl.backend.reference.optim`), whose
argument checks are reused. Tensors are grouped by dtype (one launch per dtype with v2, one
per tensor with v1). The v2 kernels read each tensor through its device address, so every
array must be a C-contiguous array of this device: that is checked here, because the kernel
signature can only say "an array of 64-bit integers". A non-contiguous array is updated
through a contiguous copy that is written back afterwards.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from minidl.backend.reference.optim import adam_scalars, check_lists, check_step

from .host_arrays import device_address
from .kernel_version import Problem
from .ladders_training import OPTIM_CHUNK

TABLE_CACHE_SIZE = 16   # address tables kept on the device (one per distinct parameter set)


class OptimOps:
    def _tables(self, op, dtype, columns):
        """Device arrays (tensors, sizes, chunk_tensor, chunk_start) for the v2 kernels.

        `columns[k][t]` is array k of tensor t (None: an unused row). A training loop passes the
        same arrays every step, so the tables are cached by their addresses and sizes."""
        xp = self.xp
        addresses = np.array([[0 if a is None else device_address(a) for a in row] for row in columns],
                             dtype=np.uint64)
        sizes = np.array([a.size for a in columns[0]], dtype=np.int64)
        key = (op, np.dtype(dtype).str, addresses.tobytes(), sizes.tobytes())
        cache = self.__dict__.setdefault("_optim_tables", OrderedDict())
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        per_tensor = -(-sizes // OPTIM_CHUNK)
        chunk_tensor = np.repeat(np.arange(len(sizes), dtype=np.int32), per_tensor)
        first_chunk = np.repeat(np.cumsum(per_tensor) - per_tensor, per_tensor)
        chunk_start = (np.arange(chunk_tensor.size, dtype=np.int64) - first_chunk) * OPTIM_CHUNK
        tables = tuple(xp.asarray(a) for a in (addresses.reshape(-1), sizes, chunk_tensor, chunk_start))
        cache[key] = tables
        if len(cache) > TABLE_CACHE_SIZE:
            cache.popitem(last=False)
        return tables

    def _multi_tensor_step(self, op, lists, written, scalars_of, version, block):
        """Run `op` over every tensor. lists[k] is the k-th list of arrays (or None);
        written[k] says whether the kernel updates it; scalars_of(dtype) gives the kernel's
        scalar arguments in that dtype."""
        xp = self.xp
        for k, seq in enumerate(lists):
            for t, a in enumerate(seq or ()):
                if not isinstance(a, xp.ndarray):
                    raise TypeError(f"{op}: every array must be a {xp.__name__}.ndarray of this device; "
                                    f"list {k} item {t} is {type(a).__module__}.{type(a).__name__}")
        entry = self.launcher.entry(op, version)
        groups = {}
        for t, p in enumerate(lists[0]):
            if p.size:
                groups.setdefault(p.dtype, []).append(t)
        for dtype, members in groups.items():
            # contiguous working arrays (the originals, or copies written back below)
            columns = [None if seq is None else [xp.ascontiguousarray(seq[t]) for t in members] for seq in lists]
            placeholder = xp.zeros(1, dtype=dtype)
            scalars = scalars_of(dtype)
            if entry.version == 1:
                for i, t in enumerate(members):
                    arrays = tuple(placeholder if col is None else col[i] for col in columns)
                    self.launcher.run(entry, Problem(itemsize=dtype.itemsize, n=lists[0][t].size), dtype,
                                      arrays + (np.int64(lists[0][t].size),) + scalars, block=block)
            else:
                rows = [[None] * len(members) if col is None else col for col in columns]
                tables = self._tables(op, dtype, rows)
                problem = Problem(itemsize=dtype.itemsize, n=int(tables[2].size))
                self.launcher.run(entry, problem, dtype,
                                  tables + (np.int32(len(members)), np.int64(OPTIM_CHUNK)) + scalars, block=block)
            for seq, col, writes in zip(lists, columns, written):
                if seq is None or not writes:
                    continue
                for i, t in enumerate(members):
                    if col[i] is not seq[t]:
                        seq[t][...] = col[i]

    def adam_step(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr, beta1, beta2, eps,
                  weight_decay, decoupled, amsgrad, maximize, version=None, block=None):
        """Adam (decoupled=False) or AdamW (decoupled=True) on every tensor, in place."""
        op = "adam_step"
        check_step(op, step)
        if amsgrad and max_exp_avg_sqs is None:
            raise ValueError(f"{op}: amsgrad=True needs max_exp_avg_sqs (zeros like params)")
        vmax = max_exp_avg_sqs if amsgrad else None
        check_lists(op, params=params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs, max_exp_avg_sqs=vmax)
        step_size, bc2_sqrt = adam_scalars(step, lr, beta1, beta2)

        def scalars_of(dtype):
            floats = (step_size, bc2_sqrt, 1 - beta1, beta2, 1 - beta2, eps, weight_decay, 1 - lr * weight_decay)
            return tuple(dtype.type(v) for v in floats) + (np.int32(bool(decoupled)), np.int32(bool(amsgrad)),
                                                           np.int32(bool(maximize)))

        self._multi_tensor_step(op, [params, grads, exp_avgs, exp_avg_sqs, vmax], (True, False, True, True, True),
                                scalars_of, version, block)

    def sgd_step(self, params, grads, momentum_buffers, *, lr, momentum, dampening, nesterov, weight_decay,
                 maximize, first_step, version=None, block=None):
        """SGD with optional momentum / Nesterov / weight decay on every tensor, in place."""
        op = "sgd_step"
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"{op}: nesterov momentum needs momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        if momentum != 0 and momentum_buffers is None:
            raise ValueError(f"{op}: momentum={momentum} needs momentum_buffers (zeros like params)")
        bufs = momentum_buffers if momentum != 0 else None
        check_lists(op, params=params, grads=grads, momentum_buffers=bufs)

        def scalars_of(dtype):
            floats = (lr, momentum, 1 - dampening, weight_decay)
            flags = (momentum != 0, first_step, nesterov, maximize)
            return tuple(dtype.type(v) for v in floats) + tuple(np.int32(bool(f)) for f in flags)

        self._multi_tensor_step(op, [params, grads, bufs], (True, False, True), scalars_of, version, block)
