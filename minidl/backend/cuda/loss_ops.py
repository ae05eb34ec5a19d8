"""Host wrappers of kernels/crossentropy.cu: cross_entropy_forward / cross_entropy_backward.

The arguments are checked by the same functions as the reference implementation, so every
device gives the same error for the same mistake (an out-of-range target, a wrong shape).
"""
from __future__ import annotations

import numpy as np

from minidl.backend.reference.cross_entropy import check_cross_entropy_args, require_row_stats
from minidl.backend.reference._checks import require_float, require_shape

from .kernel_version import Problem

# Below this many classes a warp per row (v3) beats a block per row (v2): most of a block's
# threads would have no column to read.
WARP_PER_ROW_MAX_COLS = 1024


class CrossEntropyOps:
    def _ce_weight(self, logits, weight):
        """(weight array or a 1-element placeholder, has_weight flag)."""
        if weight is None:
            return self.xp.zeros(1, dtype=logits.dtype), 0
        return self.xp.ascontiguousarray(weight), 1

    def _ce_version(self, op, version, cols):
        if version is None:
            version = self.launcher.versions.get(op)
        if version is None and op == "cross_entropy_forward":
            version = 3 if cols <= WARP_PER_ROW_MAX_COLS else 2
        return self.launcher.entry(op, version)

    def cross_entropy_forward(self, logits, target, weight, ignore_index, label_smoothing, *,
                              version=None, block=None):
        """(loss (N,), row_stats (N, 2)): per-row loss, already weighted, 0 on ignored rows; and
        per row (m, log_d), the row max and log sum exp(z - m), kept apart rather than summed
        into one rounded lse (see kernels/crossentropy.cu for why)."""
        op = "cross_entropy_forward"
        check_cross_entropy_args(op, logits, target, weight, ignore_index, label_smoothing)
        xp = self.xp
        logits = xp.ascontiguousarray(logits)
        rows, cols = logits.shape
        loss = xp.empty(rows, dtype=logits.dtype)
        row_stats = xp.empty((rows, 2), dtype=logits.dtype)
        if rows == 0:
            return loss, row_stats
        target = xp.ascontiguousarray(target, dtype=np.int64)
        weight, has_weight = self._ce_weight(logits, weight)
        scalar = logits.dtype.type
        entry = self._ce_version(op, version, cols)
        head = (logits, target, weight, loss, row_stats)
        tail = (np.int32(cols), np.int32(has_weight), np.int64(ignore_index), scalar(label_smoothing))
        args = head + ((np.int64(rows),) if entry.version in (1, 3) else ()) + tail
        self.launcher.run(entry, Problem(itemsize=logits.itemsize, rows=rows, cols=cols), logits.dtype,
                          args, block=block)
        return loss, row_stats

    def cross_entropy_backward(self, logits, target, row_stats, dloss, weight, ignore_index, label_smoothing, *,
                               version=None, block=None):
        """dlogits (N, C) = dloss[:, None] * d loss_i / d logits (zero rows where ignored)."""
        op = "cross_entropy_backward"
        check_cross_entropy_args(op, logits, target, weight, ignore_index, label_smoothing)
        require_float(op, logits=logits, row_stats=row_stats, dloss=dloss)
        rows, cols = logits.shape
        require_row_stats(op, row_stats, rows)
        require_shape(op, "dloss", dloss, (rows,), "one value per row of logits")
        xp = self.xp
        logits = xp.ascontiguousarray(logits)
        dlogits = xp.empty_like(logits)
        if rows == 0:
            return dlogits
        target = xp.ascontiguousarray(target, dtype=np.int64)
        weight, has_weight = self._ce_weight(logits, weight)
        # W = sum_c w_c stays on the device (a 1-element array): no host round trip on a GPU.
        weight_sum = weight.sum(keepdims=True) if has_weight else xp.full(1, cols, dtype=logits.dtype)
        entry = self._ce_version(op, version, cols)
        head = (logits, target, xp.ascontiguousarray(row_stats), xp.ascontiguousarray(dloss), weight,
                weight_sum, dlogits)
        tail = (np.int32(cols), np.int32(has_weight), np.int64(ignore_index),
                logits.dtype.type(label_smoothing))
        args = head + ((np.int64(rows),) if entry.version == 1 else ()) + tail
        self.launcher.run(entry, Problem(itemsize=logits.itemsize, rows=rows, cols=cols), logits.dtype,
                          args, block=block)
        return dlogits
