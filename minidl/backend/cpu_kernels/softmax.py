"""Softmax and log-softmax over the last axis: fast CPU kernels (maths in reference/softmax.py).

One serial Numba loop per row does the whole op while the row sits in L1 cache:
  softmax:      max pass, one pass writing e = exp(x - max) and summing it, one scaling pass
  log_softmax:  max pass, one pass summing exp(x - max) (nothing written), one pass x - lse
NumPy needs a temporary and a sweep of memory for each of ~5 ufuncs instead. The inner loops
vectorise (see _fastmath.py); rows are independent, so a parallel loop would be easy, but on
2 cores its thread pool fights OpenBLAS's, so we stay serial.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..reference._checks import require_float, require_rows, require_shape
from ._fastmath import FASTMATH, fast_exp, row_max


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _softmax_rows(x, y):
    for i in range(x.shape[0]):
        shift = row_max(x, i)
        total = x.dtype.type(0.0)
        for j in range(x.shape[1]):
            e = fast_exp(x[i, j] - shift)
            y[i, j] = e
            total += e
        inv_total = x.dtype.type(1.0) / total
        for j in range(x.shape[1]):
            y[i, j] *= inv_total


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _softmax_backward_rows(y, dy, dx):
    for i in range(y.shape[0]):
        dot = y.dtype.type(0.0)
        for j in range(y.shape[1]):
            dot += dy[i, j] * y[i, j]
        for j in range(y.shape[1]):
            dx[i, j] = y[i, j] * (dy[i, j] - dot)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _log_softmax_rows(x, y):
    for i in range(x.shape[0]):
        shift = row_max(x, i)
        total = x.dtype.type(0.0)
        for j in range(x.shape[1]):
            total += fast_exp(x[i, j] - shift)
        # (x - shift) - log(total), not x - (shift + log(total)): with logits ~ 1e4 the sum
        # shift + log(total) would round to float32's 1e-3 spacing there and smear every y
        log_total = x.dtype.type(math.log(total))
        for j in range(x.shape[1]):
            y[i, j] = (x[i, j] - shift) - log_total


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _log_softmax_backward_rows(y, dy, dx):
    for i in range(y.shape[0]):
        total = y.dtype.type(0.0)
        for j in range(y.shape[1]):
            total += dy[i, j]
        for j in range(y.shape[1]):
            dx[i, j] = dy[i, j] - fast_exp(y[i, j]) * total


def softmax_forward(x):
    x2 = _rows_of("softmax_forward", x)
    y = np.empty_like(x2)
    _softmax_rows(x2, y)
    return y.reshape(x.shape)


def softmax_backward(y, dy):
    y2, dy2 = _backward_rows_of("softmax_backward", y, dy)
    dx = np.empty_like(y2)
    _softmax_backward_rows(y2, dy2, dx)
    return dx.reshape(y.shape)


def log_softmax_forward(x):
    x2 = _rows_of("log_softmax_forward", x)
    y = np.empty_like(x2)
    _log_softmax_rows(x2, y)
    return y.reshape(x.shape)


def log_softmax_backward(y, dy):
    y2, dy2 = _backward_rows_of("log_softmax_backward", y, dy)
    dx = np.empty_like(y2)
    _log_softmax_backward_rows(y2, dy2, dx)
    return dx.reshape(y.shape)


def _rows_of(op, x):
    """Check x and view it as a C-contiguous (rows, C) array: one compiled kernel per dtype."""
    require_float(op, x=x)
    require_rows(op, "x", x)
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def _backward_rows_of(op, y, dy):
    require_float(op, y=y, dy=dy)
    require_rows(op, "y", y)
    require_shape(op, "dy", dy, y.shape, "the shape of y")
    C = y.shape[-1]
    return (np.ascontiguousarray(y).reshape(-1, C), np.ascontiguousarray(dy).reshape(-1, C))
