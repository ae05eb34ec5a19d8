"""Cross-entropy from logits: fast CPU kernels (maths and PyTorch semantics in
reference/cross_entropy.py).

Per row, in one serial Numba loop: the max m, log_d = log sum_c exp(z_c - m), and the loss,
with no (N, C) temporary for log-probabilities. With -log p_c = (m - z_c) + log_d and
s = label_smoothing:

    loss = (1 - s) w_y ((m - z_y) + log_d) + (s / C) sum_c w_c ((m - z_c) + log_d)

Trap 1: the smoothing sum equals W lse - sum_c w_c z_c (W = sum_c w_c, lse = m + log_d), which
saves a pass, but when all logits share a large offset (z ~ 1000) the two big terms cancel and
float32 loses ~4 digits. Each (m - z_c) + log_d is exact-ish instead, so we sum those.

The forward hands the backward row_stats (N, 2) = (m, log_d) per row, and the backward writes
    dz_j = dloss * ((1 - s) w_y (p_j - [j == y]) + (s / C) (W p_j - w_j)),
    p_j = exp((z_j - m) - log_d)
in one pass. Trap 2: never store lse = m + log_d as one float32. For the target class with p_y
close to 1, p_y - 1 ~ -(lse - z_y) is a small difference and lse's rounding (an ulp of ~1e-6
when |lse| ~ 10) becomes a relative error of ~1e-3 in it when 1 - p_y ~ 1e-3: float32 training
then drifts from PyTorch, whose log_softmax also forms (z_j - m) - log_d.

Without class weights the kernels are compiled with weight = None (Numba specialises on the
None type), so there is no per-call array of ones and no weight load in the inner loops.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ..reference._checks import require_float, require_shape
from ..reference.cross_entropy import check_cross_entropy_args, require_row_stats
from ._fastmath import (FASTMATH, fast_exp_shifted, fast_exp_summand, fast_log_split,
                        row_max)


def _class_weight(weight, j, one):
    """weight[j], or `one` when weight is None (defined for Numba code only)."""
    raise NotImplementedError("_class_weight is only callable from Numba-compiled code")


@overload(_class_weight, inline="always", jit_options={"fastmath": FASTMATH})
def _class_weight_typed(weight, j, one):
    if isinstance(weight, types.NoneType):
        return lambda weight, j, one: one
    return lambda weight, j, one: weight[j]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _cross_entropy_rows(logits, target, weight, ignore_index, smoothing, loss, row_stats):
    T = logits.dtype.type
    one = T(1.0)
    N, C = logits.shape
    for i in range(N):
        m = row_max(logits, i)
        sum_exp = T(0.0)
        for j in range(C):   # the max's own term is exp(0) = 1, so sum_exp >= 1: the
            sum_exp += fast_exp_summand(logits[i, j] - m)   # cheaper exp of softmax sums
        log_hi, log_lo = fast_log_split(sum_exp)    # no libm call inside the row loop
        log_d = log_hi + log_lo
        row_stats[i, 0] = m
        row_stats[i, 1] = log_d
        y = target[i]
        if y == ignore_index:
            loss[i] = T(0.0)
            continue
        # -log p_c = (m - z_c) + log_d: both terms exact-ish, unlike lse - z_c once lse has
        # been rounded to float32 (its spacing is 1e-3 near 1e4)
        row_loss = (one - smoothing) * _class_weight(weight, y, one) * ((m - logits[i, y]) + log_d)
        if smoothing > T(0.0):
            smooth_sum = T(0.0)
            for j in range(C):
                smooth_sum += _class_weight(weight, j, one) * ((m - logits[i, j]) + log_d)
            row_loss += smoothing / T(C) * smooth_sum
        loss[i] = row_loss


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _cross_entropy_backward_rows(logits, target, row_stats, dloss, weight, ignore_index,
                                 smoothing, dlogits):
    T = logits.dtype.type
    one = T(1.0)
    N, C = logits.shape
    total_weight = T(0.0)
    for j in range(C):
        total_weight += _class_weight(weight, j, one)
    for i in range(N):
        y = target[i]
        if y == ignore_index:
            for j in range(C):
                dlogits[i, j] = T(0.0)
            continue
        m = row_stats[i, 0]
        log_d = row_stats[i, 1]
        target_scale = dloss[i] * (one - smoothing) * _class_weight(weight, y, one)
        smooth_scale = dloss[i] * smoothing / T(C)        # 0 without label smoothing
        p_scale = target_scale + smooth_scale * total_weight
        for j in range(C):
            # (z_j - m) - log_d, not z_j - lse: see Trap 2 above. One loop for both cases
            # (smooth_scale = 0 subtracts an exact 0): a second copy of this loop in an if/else
            # made Numba's inliner trip over the exp's variables.
            p = fast_exp_shifted((logits[i, j] - m) - log_d)   # argument <= 0
            dlogits[i, j] = p_scale * p - smooth_scale * _class_weight(weight, j, one)
        dlogits[i, y] -= target_scale


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    """(loss (N,), row_stats (N, 2) = (row max, log sum exp(z - row max)) per row)."""
    check_cross_entropy_args("cross_entropy_forward", logits, target, weight, ignore_index,
                             label_smoothing)
    N, C = logits.shape
    loss = np.empty(N, dtype=logits.dtype)
    row_stats = np.empty((N, 2), dtype=logits.dtype)
    _cross_entropy_rows(np.ascontiguousarray(logits), _as_int64(target), _maybe_contiguous(weight),
                        np.int64(ignore_index), logits.dtype.type(label_smoothing), loss,
                        row_stats)
    return loss, row_stats


def cross_entropy_backward(logits, target, row_stats, dloss, weight, ignore_index,
                           label_smoothing):
    op = "cross_entropy_backward"
    check_cross_entropy_args(op, logits, target, weight, ignore_index, label_smoothing)
    require_float(op, logits=logits, row_stats=row_stats, dloss=dloss)
    N, C = logits.shape
    require_row_stats(op, row_stats, N)
    require_shape(op, "dloss", dloss, (N,), "one value per row of logits")
    dlogits = np.empty((N, C), dtype=logits.dtype)
    _cross_entropy_backward_rows(np.ascontiguousarray(logits), _as_int64(target),
                                 np.ascontiguousarray(row_stats), np.ascontiguousarray(dloss),
                                 _maybe_contiguous(weight), np.int64(ignore_index),
                                 logits.dtype.type(label_smoothing), dlogits)
    return dlogits


def _as_int64(target):
    return np.ascontiguousarray(target, dtype=np.int64)


def _maybe_contiguous(weight):
    return None if weight is None else np.ascontiguousarray(weight)
