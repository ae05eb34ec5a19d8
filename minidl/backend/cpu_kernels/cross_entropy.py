"""Cross-entropy from logits: fast CPU kernels (maths and PyTorch semantics in
reference/cross_entropy.py).

Per row, in one serial Numba loop: the max, logsumexp, and the loss, with no (N, C) temporary
for log-probabilities. With -log p_c = lse - z_c and s = label_smoothing:

    loss = (1 - s) w_y (lse - z_y) + (s / C) sum_c w_c (lse - z_c)

Trap: the smoothing sum equals W lse - sum_c w_c z_c (W = sum_c w_c), which saves a pass, but
when all logits share a large offset (z ~ 1000) the two big terms cancel and float32 loses
~4 digits. Each lse - z_c is exact-ish instead, so we sum those. The backward writes
    dz_j = dloss * ((1 - s) w_y (p_j - [j == y]) + (s / C) (W p_j - w_j)),  p_j = exp(z_j - lse)
in one pass. A missing weight is passed as ones, keeping one compiled kernel per dtype.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..reference._checks import require_float, require_shape
from ..reference.cross_entropy import check_cross_entropy_args
from ._fastmath import FASTMATH, fast_exp, row_max


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _cross_entropy_rows(logits, target, weight, ignore_index, smoothing, loss, lse_out):
    T = logits.dtype.type
    N, C = logits.shape
    for i in range(N):
        shift = row_max(logits, i)
        sum_exp = T(0.0)
        for j in range(C):
            sum_exp += fast_exp(logits[i, j] - shift)
        log_sum = T(math.log(sum_exp))
        lse_out[i] = shift + log_sum
        y = target[i]
        if y == ignore_index:
            loss[i] = T(0.0)
            continue
        # -log p_c = (shift - z_c) + log_sum: both terms exact-ish, unlike lse - z_c once lse
        # has been rounded to float32 (its spacing is 1e-3 near 1e4)
        row_loss = (T(1.0) - smoothing) * weight[y] * ((shift - logits[i, y]) + log_sum)
        if smoothing > T(0.0):
            smooth_sum = T(0.0)
            for j in range(C):
                smooth_sum += weight[j] * ((shift - logits[i, j]) + log_sum)
            row_loss += smoothing / T(C) * smooth_sum
        loss[i] = row_loss


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _cross_entropy_backward_rows(logits, target, lse, dloss, weight, ignore_index, smoothing,
                                 dlogits):
    T = logits.dtype.type
    N, C = logits.shape
    total_weight = T(0.0)
    for j in range(C):
        total_weight += weight[j]
    for i in range(N):
        y = target[i]
        if y == ignore_index:
            for j in range(C):
                dlogits[i, j] = T(0.0)
            continue
        target_scale = dloss[i] * (T(1.0) - smoothing) * weight[y]
        smooth_scale = dloss[i] * smoothing / T(C)
        p_scale = target_scale + smooth_scale * total_weight
        for j in range(C):
            p = fast_exp(logits[i, j] - lse[i])
            dlogits[i, j] = p_scale * p - smooth_scale * weight[j]
        dlogits[i, y] -= target_scale


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    check_cross_entropy_args("cross_entropy_forward", logits, target, weight, ignore_index,
                             label_smoothing)
    logits2 = np.ascontiguousarray(logits)
    N, C = logits.shape
    loss = np.empty(N, dtype=logits.dtype)
    lse = np.empty(N, dtype=logits.dtype)
    _cross_entropy_rows(logits2, _as_int64(target), _or_ones(weight, C, logits.dtype),
                        np.int64(ignore_index), logits.dtype.type(label_smoothing), loss, lse)
    return loss, lse


def cross_entropy_backward(logits, target, lse, dloss, weight, ignore_index, label_smoothing):
    op = "cross_entropy_backward"
    check_cross_entropy_args(op, logits, target, weight, ignore_index, label_smoothing)
    require_float(op, logits=logits, lse=lse, dloss=dloss)
    N, C = logits.shape
    require_shape(op, "lse", lse, (N,), "one value per row of logits")
    require_shape(op, "dloss", dloss, (N,), "one value per row of logits")
    dlogits = np.empty((N, C), dtype=logits.dtype)
    _cross_entropy_backward_rows(np.ascontiguousarray(logits), _as_int64(target),
                                 np.ascontiguousarray(lse), np.ascontiguousarray(dloss),
                                 _or_ones(weight, C, logits.dtype), np.int64(ignore_index),
                                 logits.dtype.type(label_smoothing), dlogits)
    return dlogits


def _as_int64(target):
    return np.ascontiguousarray(target, dtype=np.int64)


def _or_ones(weight, C, dtype):
    return np.ones(C, dtype=dtype) if weight is None else np.ascontiguousarray(weight)
