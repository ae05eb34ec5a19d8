"""Host wrappers of kernels/dropout.cu: dropout whose mask is regenerated, not stored.

`dropout_forward(x, p, rng)` draws a 64-bit seed from `rng` (so `minidl.manual_seed` makes it
reproducible) and returns (y, mask) where the mask is a `PhiloxMask`: the seed, the counter
offset and the shape, a few bytes instead of one byte per element. `dropout_backward(dy, mask,
p)` runs the same kernel with the same seed and so zeroes exactly the elements the forward
dropped. A mask that is an array (from another implementation) is applied as dy * mask / (1-p).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minidl.backend.reference._checks import require_float, require_probability
from minidl.backend.reference.dropout import keep_scale

from .host_arrays import float_input
from .kernel_version import Problem


@dataclass(frozen=True)
class PhiloxMask:
    """The dropout mask of one call, as the random stream that generates it."""
    seed: int
    offset: int
    shape: tuple
    p: float


class DropoutOps:
    def _dropout_apply(self, x, seed, offset, p, version, block):
        out = self.xp.empty_like(x)
        if x.size:
            entry = self.launcher.entry("dropout", version)
            scalar = x.dtype.type
            self.launcher.run(entry, Problem(itemsize=x.itemsize, n=x.size), x.dtype,
                              (x.reshape(-1), out.reshape(-1), np.int64(x.size), scalar(p), scalar(keep_scale(p)),
                               np.uint64(seed), np.uint64(offset)), block=block)
        return out

    def dropout_forward(self, x, p, rng, *, version=None, block=None):
        """(y, mask): y = x * keep / (1 - p), keep ~ Bernoulli(1 - p); mask is a PhiloxMask."""
        op = "dropout_forward"
        require_float(op, x=x)
        require_probability(op, "p", p)
        x = float_input(self.xp, x, op, "x")
        seed = int(rng.integers(0, 2**64, dtype=np.uint64))
        mask = PhiloxMask(seed=seed, offset=0, shape=tuple(x.shape), p=float(p))
        return self._dropout_apply(x, seed, 0, p, version, block), mask

    def dropout_backward(self, dy, mask, p, *, version=None, block=None):
        """dx = dy * keep / (1 - p), keep regenerated from the mask's seed."""
        op = "dropout_backward"
        require_float(op, dy=dy)
        require_probability(op, "p", p)
        dy = float_input(self.xp, dy, op, "dy")
        if not isinstance(mask, PhiloxMask):
            if tuple(mask.shape) != tuple(dy.shape):
                raise ValueError(f"{op}: mask must have shape {tuple(dy.shape)} (the shape of dy), got {tuple(mask.shape)}")
            return dy * mask * keep_scale(p)
        if mask.shape != tuple(dy.shape) or mask.p != float(p):
            raise ValueError(f"{op}: the mask was made for shape {mask.shape} and p = {mask.p}, "
                             f"got dy of shape {tuple(dy.shape)} and p = {p}")
        return self._dropout_apply(dy, mask.seed, mask.offset, p, version, block)

    def philox_uniform(self, shape, seed, offset=0, dtype=np.float32, *, block=None):
        """Uniform [0, 1) numbers (24 random bits each) of element i = stream (seed, offset) word i."""
        u = self.xp.empty(shape, dtype=dtype)
        if u.size:
            self.launcher.run(self.launcher.entry("philox_uniform"), Problem(itemsize=u.itemsize, n=u.size), u.dtype,
                              (u.reshape(-1), np.int64(u.size), np.uint64(seed), np.uint64(offset)), block=block)
        return u
