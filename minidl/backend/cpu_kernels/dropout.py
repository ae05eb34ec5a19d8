"""Inverted dropout: fast CPU kernels (maths in reference/dropout.py).

The uniforms come from the caller's NumPy generator exactly as in the reference (same draws,
so the same mask for the same seed); the threshold test, the mask and the scaled output are
then written in one pass instead of three NumPy sweeps.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..reference._checks import require_float, require_probability, require_shape
from ..reference.dropout import keep_scale
from ._fastmath import FASTMATH


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _dropout(x, uniforms, p, scale, y, keep):
    zero = x.dtype.type(0.0)
    for i in range(x.size):
        kept = uniforms[i] >= p
        keep[i] = kept
        y[i] = x[i] * scale if kept else zero


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _dropout_backward(dy, keep, scale, dx):
    zero = dy.dtype.type(0.0)
    for i in range(dy.size):
        dx[i] = dy[i] * scale if keep[i] else zero


def dropout_forward(x, p, rng):
    op = "dropout_forward"
    require_float(op, x=x)
    require_probability(op, "p", p)
    flat = np.ascontiguousarray(x).reshape(-1)
    uniforms = rng.random(x.shape, dtype=x.dtype).reshape(-1)
    y = np.empty_like(flat)
    keep = np.empty(flat.shape, dtype=np.bool_)
    _dropout(flat, uniforms, x.dtype.type(p), x.dtype.type(keep_scale(p)), y, keep)
    return y.reshape(x.shape), keep.reshape(x.shape)


def dropout_backward(dy, mask, p):
    op = "dropout_backward"
    require_float(op, dy=dy)
    require_probability(op, "p", p)
    require_shape(op, "mask", mask, dy.shape, "the shape of dy")
    flat = np.ascontiguousarray(dy).reshape(-1)
    keep = np.ascontiguousarray(mask, dtype=np.bool_).reshape(-1)
    dx = np.empty_like(flat)
    _dropout_backward(flat, keep, dy.dtype.type(keep_scale(p)), dx)
    return dx.reshape(dy.shape)
