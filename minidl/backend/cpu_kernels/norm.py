"""Layer norm and RMS norm over the last axis: fast CPU kernels (maths in reference/norm.py).

One serial Numba loop per row, all passes over the row while it sits in L1 cache: mean, the
two-pass variance, then the normalised output. The backward does one pass for the two row
sums it needs (sum g, sum g*xhat) while accumulating dweight/dbias, and a second pass for dx.

A missing weight or bias is passed to the kernels as ones / zeros, so each kernel has a single
compiled version per dtype instead of one per None-combination.

Trap: dweight = sum over rows of dy*xhat adds up to millions of terms in float32. Summed one
row after another, rounding error grows with the row count; we add rows into a partial sum and
fold it into the total every ROWS_PER_PARTIAL rows (two-level summation), which keeps the
error about sqrt(ROWS_PER_PARTIAL) + sqrt(rows / ROWS_PER_PARTIAL) rounding steps, like NumPy's
pairwise sum, without any float64 temporaries.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..reference.norm import check_norm_args
from ._fastmath import FASTMATH

ROWS_PER_PARTIAL = 64


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _layer_norm_rows(x, weight, bias, eps, y, mean_out, rstd_out):
    inv_C = x.dtype.type(1.0) / x.dtype.type(x.shape[1])
    for i in range(x.shape[0]):
        total = x.dtype.type(0.0)
        for j in range(x.shape[1]):
            total += x[i, j]
        mean = total * inv_C
        squares = x.dtype.type(0.0)
        for j in range(x.shape[1]):
            d = x[i, j] - mean
            squares += d * d
        rstd = x.dtype.type(1.0) / np.sqrt(squares * inv_C + eps)
        for j in range(x.shape[1]):
            y[i, j] = (x[i, j] - mean) * rstd * weight[j] + bias[j]
        mean_out[i] = mean
        rstd_out[i] = rstd


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _layer_norm_backward_rows(dy, x, weight, mean, rstd, dx, dweight, dbias):
    """dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * weight."""
    inv_C = x.dtype.type(1.0) / x.dtype.type(x.shape[1])
    part_dw = np.zeros_like(dweight)
    part_db = np.zeros_like(dbias)
    for i in range(x.shape[0]):
        m, r = mean[i], rstd[i]
        sum_g = x.dtype.type(0.0)
        sum_g_xhat = x.dtype.type(0.0)
        for j in range(x.shape[1]):
            xhat = (x[i, j] - m) * r
            g = dy[i, j] * weight[j]
            sum_g += g
            sum_g_xhat += g * xhat
            part_dw[j] += dy[i, j] * xhat
            part_db[j] += dy[i, j]
        mean_g = sum_g * inv_C
        mean_g_xhat = sum_g_xhat * inv_C
        for j in range(x.shape[1]):
            xhat = (x[i, j] - m) * r
            dx[i, j] = r * (dy[i, j] * weight[j] - mean_g - xhat * mean_g_xhat)
        if (i + 1) % ROWS_PER_PARTIAL == 0 or i + 1 == x.shape[0]:
            for j in range(x.shape[1]):
                dweight[j] += part_dw[j]
                dbias[j] += part_db[j]
                part_dw[j] = 0.0
                part_db[j] = 0.0


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _rms_norm_rows(x, weight, eps, y, rstd_out):
    inv_C = x.dtype.type(1.0) / x.dtype.type(x.shape[1])
    for i in range(x.shape[0]):
        squares = x.dtype.type(0.0)
        for j in range(x.shape[1]):
            squares += x[i, j] * x[i, j]
        rstd = x.dtype.type(1.0) / np.sqrt(squares * inv_C + eps)
        for j in range(x.shape[1]):
            y[i, j] = x[i, j] * rstd * weight[j]
        rstd_out[i] = rstd


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _rms_norm_backward_rows(dy, x, weight, rstd, dx, dweight):
    """dx = rstd * (g - xhat * mean(g * xhat)),  g = dy * weight."""
    inv_C = x.dtype.type(1.0) / x.dtype.type(x.shape[1])
    part_dw = np.zeros_like(dweight)
    for i in range(x.shape[0]):
        r = rstd[i]
        sum_g_xhat = x.dtype.type(0.0)
        for j in range(x.shape[1]):
            xhat = x[i, j] * r
            sum_g_xhat += dy[i, j] * weight[j] * xhat
            part_dw[j] += dy[i, j] * xhat
        mean_g_xhat = sum_g_xhat * inv_C
        for j in range(x.shape[1]):
            dx[i, j] = r * (dy[i, j] * weight[j] - x[i, j] * r * mean_g_xhat)
        if (i + 1) % ROWS_PER_PARTIAL == 0 or i + 1 == x.shape[0]:
            for j in range(x.shape[1]):
                dweight[j] += part_dw[j]
                part_dw[j] = 0.0


def layer_norm_forward(x, weight, bias, eps):
    check_norm_args("layer_norm_forward", x, weight=weight, bias=bias)
    x2, C = _rows(x), x.shape[-1]
    y = np.empty_like(x2)
    mean = np.empty(x2.shape[0], dtype=x.dtype)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    _layer_norm_rows(x2, _or_ones(weight, C, x.dtype), _or_zeros(bias, C, x.dtype),
                     x.dtype.type(eps), y, mean, rstd)
    lead = x.shape[:-1]
    return y.reshape(x.shape), mean.reshape(lead), rstd.reshape(lead)


def layer_norm_backward(dy, x, weight, mean, rstd):
    check_norm_args("layer_norm_backward", x, dy=dy, weight=weight, mean=mean, rstd=rstd)
    x2, C = _rows(x), x.shape[-1]
    dx = np.empty_like(x2)
    dweight = np.zeros(C, dtype=x.dtype)
    dbias = np.zeros(C, dtype=x.dtype)
    _layer_norm_backward_rows(_rows(dy), x2, _or_ones(weight, C, x.dtype), _flat(mean),
                              _flat(rstd), dx, dweight, dbias)
    return dx.reshape(x.shape), (dweight if weight is not None else None), dbias


def rms_norm_forward(x, weight, eps):
    check_norm_args("rms_norm_forward", x, weight=weight)
    x2, C = _rows(x), x.shape[-1]
    y = np.empty_like(x2)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    _rms_norm_rows(x2, _or_ones(weight, C, x.dtype), x.dtype.type(eps), y, rstd)
    return y.reshape(x.shape), rstd.reshape(x.shape[:-1])


def rms_norm_backward(dy, x, weight, rstd):
    check_norm_args("rms_norm_backward", x, dy=dy, weight=weight, rstd=rstd)
    x2, C = _rows(x), x.shape[-1]
    dx = np.empty_like(x2)
    dweight = np.zeros(C, dtype=x.dtype)
    _rms_norm_backward_rows(_rows(dy), x2, _or_ones(weight, C, x.dtype), _flat(rstd), dx,
                            dweight)
    return dx.reshape(x.shape), (dweight if weight is not None else None)


def _rows(a):
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


def _or_ones(weight, C, dtype):
    return np.ones(C, dtype=dtype) if weight is None else np.ascontiguousarray(weight)


def _or_zeros(bias, C, dtype):
    return np.zeros(C, dtype=dtype) if bias is None else np.ascontiguousarray(bias)
