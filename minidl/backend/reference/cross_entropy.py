"""Cross-entropy from logits with class-index targets (PyTorch semantics): the plain reference.

For row i with logits z (C classes), target y, class weights w (all ones when None) and label
smoothing e, with -log p_c = lse - z_c and lse = logsumexp(z):

    loss_i = (1 - e) * w_y * (-log p_y)  +  (e / C) * sum_c w_c * (-log p_c)

i.e. the target distribution puts 1 - e + e/C on y and e/C on every other class, each class's
term weighted by its own w_c (this is how PyTorch combines weight with label_smoothing).
Rows whose target equals ignore_index contribute 0 and get a zero gradient. The per-row loss is
returned unreduced; the mean over rows (divided by the sum of w_y of kept rows, as PyTorch
does) belongs to the op above this level.

Gradient, using d(-log p_c)/dz_j = p_j - [j == c]:

    dloss_i/dz_j = (1 - e) * w_y * (p_j - [j == y])  +  (e / C) * (W * p_j - w_j),   W = sum_c w_c

Traps: never compute log(softmax(z)) (softmax underflows to 0, log gives -inf). With m the
row max and log_d = log sum_c exp(z_c - m), -log p_c = (m - z_c) + log_d: two small, accurately
known terms, finite even for logits like +-1e4.

The forward also returns row_stats (N, 2): row_stats[:, 0] = m and row_stats[:, 1] = log_d,
so that the backward gets p_j = exp((z_j - m) - log_d) without a second reduction. We keep the
two numbers apart on purpose and never store lse = m + log_d as one rounded number: for the
target class with p_y close to 1 the gradient p_y - 1 ~ -(lse - z_y) is a small difference,
and float32 rounding of lse (an ulp of ~1e-6 when |lse| ~ 10) is then a large relative error
in it (1e-3 when 1 - p_y ~ 1e-3), which made float32 training drift from PyTorch. PyTorch's
log_softmax computes (z_j - m) - log_d the same way. Targets are checked: an out-of-range class
would otherwise read a wrong column.
"""
from __future__ import annotations

from ._checks import (require_class_targets, require_float, require_int_array,
                      require_probability, require_shape)
from ._xp import get_xp


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    op = "cross_entropy_forward"
    check_cross_entropy_args(op, logits, target, weight, ignore_index, label_smoothing)
    xp = get_xp(logits)
    N, C = logits.shape
    row_max = logits.max(axis=1, keepdims=True)
    shifted = logits - row_max                              # (N, C), every entry <= 0
    log_d = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    neg_log_p = log_d - shifted                             # (N, C), every entry >= 0
    kept, safe_target = _kept_rows(xp, target, ignore_index)
    w = weight if weight is not None else xp.ones(C, dtype=logits.dtype)
    target_weight = w[safe_target]
    nll = xp.take_along_axis(neg_log_p, safe_target[:, None], axis=1)[:, 0]
    loss = (1.0 - label_smoothing) * target_weight * nll
    if label_smoothing > 0:
        loss = loss + (label_smoothing / C) * (neg_log_p * w).sum(axis=1)
    row_stats = xp.concatenate([row_max, log_d], axis=1).astype(logits.dtype, copy=False)
    return xp.where(kept, loss, 0.0).astype(logits.dtype, copy=False), row_stats


def cross_entropy_backward(logits, target, row_stats, dloss, weight, ignore_index,
                           label_smoothing):
    op = "cross_entropy_backward"
    check_cross_entropy_args(op, logits, target, weight, ignore_index, label_smoothing)
    require_float(op, logits=logits, row_stats=row_stats, dloss=dloss)
    N, C = logits.shape
    require_row_stats(op, row_stats, N)
    require_shape(op, "dloss", dloss, (N,), "one value per row of logits")
    xp = get_xp(logits)
    # (z - m) - log_d, never z - (m + log_d): see the module docstring
    p = xp.exp((logits - row_stats[:, :1]) - row_stats[:, 1:])
    kept, safe_target = _kept_rows(xp, target, ignore_index)
    w = weight if weight is not None else xp.ones(C, dtype=logits.dtype)
    target_weight = (1.0 - label_smoothing) * w[safe_target]
    grad = target_weight[:, None] * p
    grad[xp.arange(N), safe_target] -= target_weight
    if label_smoothing > 0:
        grad += (label_smoothing / C) * (w.sum() * p - w)
    scale = xp.where(kept, dloss, 0.0).astype(logits.dtype, copy=False)
    return grad * scale[:, None]


def _kept_rows(xp, target, ignore_index):
    """(mask of rows that count, targets with ignored rows pointed at class 0 for safe reads)."""
    kept = target != ignore_index
    return kept, xp.where(kept, target, 0)


def require_row_stats(op, row_stats, N):
    """row_stats is the forward's (N, 2) array of (row max, log of the shifted sum of exp)."""
    require_shape(op, "row_stats", row_stats, (N, 2),
                  "per row of logits: (row max, log sum exp(z - row max)) from the forward")


def check_cross_entropy_args(op, logits, target, weight, ignore_index, label_smoothing):
    require_float(op, logits=logits, weight=weight)
    if logits.ndim != 2 or logits.shape[1] < 1:
        raise ValueError(f"{op}: logits must have shape (N, C) with C >= 1, "
                         f"got {tuple(logits.shape)}")
    N, C = logits.shape
    require_int_array(op, "target", target)
    require_shape(op, "target", target, (N,), "one class index per row of logits")
    require_shape(op, "weight", weight, (C,), "one weight per class")
    require_probability(op, "label_smoothing", label_smoothing)
    require_class_targets(op, target, C, ignore_index)
