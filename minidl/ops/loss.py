"""Loss functions with PyTorch's names, arguments and reductions.

Reductions: 'none' (one loss per element/sample), 'sum', and 'mean'. The mean of a weighted
classification loss is the WEIGHTED mean, sum_i w[y_i] loss_i / sum_i w[y_i] over the
non-ignored samples (PyTorch's rule), not the plain mean of the weighted losses.

* Regression: mse_loss, l1_loss, smooth_l1_loss, huber_loss — short compositions of minidl ops
  (so every order of derivative works).
* cross_entropy(logits, class indices): the backend's fused kernel computes
  -log softmax(z)_y = logsumexp(z) - z_y per row with the row max subtracted, so logits of
  +-1e4 give finite losses (log(softmax) would give log(0) = -inf). Class-probability targets
  go through log_softmax. nll_loss takes log-probabilities directly.
* binary_cross_entropy on probabilities clamps each log at -100 (PyTorch's choice: a
  prediction of exactly 0 or 1 gives a large finite loss, not inf); its gradient uses
  (x - t) / max(x (1 - x), 1e-12) as PyTorch does. binary_cross_entropy_with_logits uses the
  stable form (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x), never log(sigmoid(x)).
* kl_div(input = log q, target = p): p (log p - log q), with 0 log 0 taken as 0.
"""
from __future__ import annotations

import contextlib
import warnings

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ._util import Tensor, check_float

_REDUCTIONS = ("none", "mean", "sum")


# ---- reduction helpers --------------------------------------------------------------------

def _reduction(op, size_average, reduce, reduction, allowed=_REDUCTIONS):
    """PyTorch's deprecated size_average/reduce flags, mapped onto `reduction`; validated."""
    if size_average is not None or reduce is not None:
        warnings.warn("size_average and reduce args will be deprecated, please use "
                      "reduction='sum' or reduction='mean' instead.", stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
    if reduction not in allowed:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction; expected "
                         f"one of {', '.join(map(repr, allowed))}")
    return reduction


def _reduce(loss, reduction):
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


def _pointwise_pair(op, input, target):
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    check_float(input, op)
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"{op}: using a target size ({list(target.shape)}) that is different to "
                      f"the input size ({list(input.shape)}). This will likely lead to incorrect "
                      "results due to broadcasting. Please ensure they have the same size.",
                      stacklevel=3)


def _weighted(op, loss, weight, input, reduction, mean_by_weight):
    """Per-element weights as in PyTorch's mse/l1 (mean = sum / sum(weight)) and huber
    (mean = plain mean of the weighted losses)."""
    if weight is None:
        return _reduce(loss, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weights and input must have the same size, got weight "
                         f"{list(weight.shape)} and input {list(input.shape)}")
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


# ---- regression losses --------------------------------------------------------------------

def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None):
    """(input - target)^2."""
    reduction = _reduction("mse_loss", size_average, reduce, reduction)
    _pointwise_pair("mse_loss", input, target)
    diff = input - target
    return _weighted("mse_loss", diff * diff, weight, input, reduction, True)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
            weight=None):
    """|input - target| (gradient 0 where they are equal, as PyTorch)."""
    reduction = _reduction("l1_loss", size_average, reduce, reduction)
    _pointwise_pair("l1_loss", input, target)
    return _weighted("l1_loss", (input - target).abs(), weight, input, reduction, True)


def _quadratic_then_linear(diff, threshold, quad_scale, lin_scale):
    """where(|d| < threshold, quad_scale * d^2 / 2, lin_scale * (|d| - threshold / 2))."""
    from .elementwise import where
    z = diff.abs()
    return where(z < threshold, diff * diff * (0.5 * quad_scale), (z - 0.5 * threshold) * lin_scale)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - beta/2 (beta = 0 is the L1 loss)."""
    op = "smooth_l1_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    _pointwise_pair(op, input, target)
    if beta < 0:
        raise ValueError(f"{op} does not support negative values for beta, got {beta}")
    diff = input - target
    if beta == 0:
        return _reduce(diff.abs(), reduction)
    return _reduce(_quadratic_then_linear(diff, beta, 1.0 / beta, 1.0), reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None):
    """0.5 d^2 where |d| < delta, else delta (|d| - delta/2): smooth_l1 scaled by delta."""
    op = "huber_loss"
    reduction = _reduction(op, None, None, reduction)
    _pointwise_pair(op, input, target)
    if delta <= 0:
        raise ValueError(f"{op}: delta must be positive, got {delta}")
    loss = _quadratic_then_linear(input - target, delta, 1.0, delta)
    return _weighted(op, loss, weight, input, reduction, False)


# ---- classification: cross-entropy and NLL ------------------------------------------------

class CrossEntropy(Function):
    """Per-row loss of logits (M, C) against class indices (M,) (ignored rows give 0)."""

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, label_smoothing):
        logits = ctx._be.xp.ascontiguousarray(logits)
        # row_stats (M, 2): per row the max m and log_d = log sum exp(z - m), kept as two numbers
        # so the backward forms p = exp((z - m) - log_d); exp(z - lse) with lse = m + log_d
        # rounded to float32 loses ~3 digits of p_y - 1 when p_y is close to 1
        loss, row_stats = ctx._be.fused.cross_entropy_forward(logits, target, weight,
                                                              ignore_index, label_smoothing)
        ctx.save_for_backward(ctx.inputs[0])
        ctx.row_stats, ctx.conf = row_stats, (target, weight, ignore_index, label_smoothing)
        return loss

    @staticmethod
    def backward(ctx, grad):
        (logits,) = ctx.saved_tensors
        target, weight, ignore_index, smoothing = ctx.conf
        if is_grad_enabled():
            return (_cross_entropy_grad_composite(logits, grad, *ctx.conf),) + (None,) * 4
        xp = ctx._be.xp
        dlogits = ctx._be.fused.cross_entropy_backward(
            xp.ascontiguousarray(logits._data), target, ctx.row_stats,
            xp.ascontiguousarray(grad._data), weight, ignore_index, smoothing)
        return (Tensor._wrap(dlogits, ctx._be, None, 0),) + (None,) * 4


def _cross_entropy_grad_composite(logits, grad, target, weight, ignore_index, smoothing):
    """d loss_i / d z_ij = (1-e) w_y (p_ij - [j = y_i]) + (e/C)(W p_ij - w_j), W = sum_c w_c,
    written with minidl ops so that it can be differentiated again."""
    from .softmax import softmax
    be, xp = logits._be, logits._be.xp
    M, C = logits.shape
    dtype = logits._data.dtype
    w = weight if weight is not None else xp.ones(C, dtype=dtype)
    kept = target != ignore_index
    safe = xp.where(kept, target, 0)

    def const(array):
        return Tensor._wrap(array, be, None, 0)

    target_weight = ((1.0 - smoothing) * w[safe]).astype(dtype)
    one_hot = (safe[:, None] == xp.arange(C)).astype(dtype)
    p = softmax(logits, -1)
    g = (p - const(one_hot)) * const(target_weight[:, None])
    if smoothing > 0:
        g = g + (p * float(w.sum()) - const(w)) * (smoothing / C)
    return g * (grad * const(kept.astype(dtype))).unsqueeze(1)


def _class_rows(op, input, target):
    """Logits (M, C) with classes last, flat int64 targets (M,), the target shape."""
    if input.ndim == 0:
        raise RuntimeError(f"{op}: input must have at least 1 dimension (C,), got a scalar")
    if input.ndim == 1:
        if target.ndim != 0:
            raise RuntimeError(f"{op}: for an input of shape [C] = {list(input.shape)} the "
                               f"target must be a 0-d class index, got {list(target.shape)}")
        return input.unsqueeze(0), target._data.reshape(1).astype("int64"), ()
    N, C = input.shape[:2]
    expected = (N,) + tuple(input.shape[2:])
    if target.ndim >= 1 and target.shape[0] != N:
        raise ValueError(f"{op}: expected input batch_size ({N}) to match target batch_size "
                         f"({target.shape[0]})")
    if tuple(target.shape) != expected:
        raise RuntimeError(f"{op}: expected target size {list(expected)}, got "
                           f"{list(target.shape)}")
    rows = input if input.ndim == 2 else input.movedim(1, -1).reshape(-1, C)
    return rows, target._data.reshape(-1).astype("int64", copy=False), expected


def _check_targets(op, targets, C, ignore_index) -> bool:
    """Raise unless every target is a class in [0, C) or ignore_index. Returns True when no
    target is ignore_index (then a 'mean' divides by the row count, with no pass to count)."""
    if targets.size == 0:
        return False  # no rows: a 'mean' is 0/0, NaN as in PyTorch, by the general path
    low, high = int(targets.min()), int(targets.max())
    if low >= 0 and high < C:  # the common case: two reductions instead of a mask's five passes
        return not low <= ignore_index <= high
    bad = ((targets < 0) | (targets >= C)) & (targets != ignore_index)
    if bool(bad.any()):
        value = int(targets[bad][0])
        raise IndexError(f"{op}: target {value} is out of bounds: expected class indices in "
                         f"[0, {C - 1}] (or ignore_index={ignore_index})")
    return False


def _class_weight(op, weight, input, C):
    if weight is None:
        return None
    if not isinstance(weight, Tensor) or tuple(weight.shape) != (C,):
        got = list(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise RuntimeError(f"{op}: weight must be a tensor of shape [{C}] (one per class), "
                           f"got {got}")
    if weight._data.dtype != input._data.dtype:
        raise TypeError(f"{op}: weight has dtype {weight.dtype} but input has {input.dtype}")
    return input._be.xp.ascontiguousarray(weight._data)


def _reduce_rows(loss_rows, targets, weight, ignore_index, reduction, target_shape,
                 all_kept=False):
    """Reduce per-row losses; 'mean' divides by the total weight of the non-ignored rows.
    all_kept: no target is ignore_index (from _check_targets)."""
    if reduction == "none":
        return loss_rows.reshape(target_shape)
    total = loss_rows.sum()
    if reduction == "sum":
        return total
    if weight is None and all_kept:
        return total / float(targets.size)
    kept = targets != ignore_index
    if weight is None:
        denominator = float(kept.sum())
    else:
        xp = loss_rows._be.xp
        denominator = float(weight[xp.where(kept, targets, 0)][kept].sum())
    if denominator == 0.0:  # every row ignored: 0/0, NaN as in PyTorch
        return total * float("nan")
    return total / denominator


def _check_class_input(op, input, target):
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    check_float(input, op)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0):
    """Cross-entropy of logits `input` ((N, C), (N, C, d1, ...) or (C,)) against class
    indices (N, d1, ...) or class probabilities (the input's shape)."""
    op = "cross_entropy"
    reduction = _reduction(op, size_average, reduce, reduction)
    _check_class_input(op, input, target)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    C = input.shape[1] if input.ndim >= 2 else input.shape[0]
    if target._data.dtype.kind == "f":
        return _cross_entropy_probabilities(op, input, target, weight, ignore_index, reduction,
                                            label_smoothing, C)
    if target._data.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold class indices (int64) or class probabilities "
                        f"(float), got {target.dtype}")
    rows, targets, target_shape = _class_rows(op, input, target)
    all_kept = _check_targets(op, targets, C, ignore_index)
    w = _class_weight(op, weight, input, C)
    loss = CrossEntropy.apply(rows, targets, w, int(ignore_index), float(label_smoothing))
    return _reduce_rows(loss, targets, w, ignore_index, reduction, target_shape, all_kept)


def _cross_entropy_probabilities(op, input, target, weight, ignore_index, reduction, smoothing,
                                 C):
    """loss = -sum_c w_c t_c log_softmax(z)_c, with t smoothed to (1-e) t + e/C."""
    from .softmax import log_softmax
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: class-probability targets must have the input's shape "
                         f"{list(input.shape)}, got {list(target.shape)}")
    if ignore_index != -100:
        raise RuntimeError(f"{op}: ignore_index is not supported for floating point target")
    class_dim = 1 if input.ndim >= 2 else 0
    logp = log_softmax(input, class_dim)
    if smoothing > 0:
        target = target * (1.0 - smoothing) + smoothing / C
    terms = logp * target
    if weight is not None:
        _class_weight(op, weight, input, C)
        terms = terms * weight.reshape((C,) + (1,) * (input.ndim - class_dim - 1))
    loss = -terms.sum(class_dim)
    if reduction == "mean":
        return loss.sum() / (input.numel() // C)
    return _reduce(loss, reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean"):
    """-w[y] * input[y] for log-probabilities `input` and class indices `target`."""
    op = "nll_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    _check_class_input(op, input, target)
    if target._data.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold class indices (int64), got {target.dtype}")
    C = input.shape[1] if input.ndim >= 2 else input.shape[0]
    rows, targets, target_shape = _class_rows(op, input, target)
    all_kept = _check_targets(op, targets, C, ignore_index)
    w = _class_weight(op, weight, input, C)
    xp = input._be.xp
    kept = targets != ignore_index
    safe = xp.where(kept, targets, 0)
    coef = kept.astype(input._data.dtype) if w is None else w[safe] * kept
    index = Tensor._wrap(safe[:, None], input._be, None, 0)
    picked = rows.gather(1, index).squeeze(1)
    loss = -picked * Tensor._wrap(coef.astype(input._data.dtype, copy=False), input._be, None, 0)
    return _reduce_rows(loss, targets, w, ignore_index, reduction, target_shape, all_kept)


# ---- binary classification ----------------------------------------------------------------

def _ignore_log_of_zero(xp):
    errstate = getattr(xp, "errstate", None)
    return errstate(divide="ignore") if errstate is not None else contextlib.nullcontext()


class BinaryCrossEntropy(Function):
    """Elementwise -(t log x + (1 - t) log(1 - x)) with each log clamped at -100."""

    @staticmethod
    def forward(ctx, x, t):
        xp = ctx._be.xp
        with _ignore_log_of_zero(xp):  # log(0) = -inf is expected here: it is clamped next
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        ctx.save_for_backward(*ctx.inputs)
        return -(t * log_x + (1 - t) * log_1mx)

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved_tensors
        nx, nt = ctx.needs_input_grad
        # PyTorch's formula: (x - t) / (x (1 - x)), the denominator kept >= 1e-12
        dx = grad * (x - t) / (x * (1 - x)).clamp(min=1e-12) if nx else None
        dt = None
        if nt:
            dt = grad * ((-x).log1p().clamp(min=-100) - x.log().clamp(min=-100))
        return dx, dt


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean"):
    """BCE on probabilities in [0, 1]; each log clamped at -100 as in PyTorch."""
    op = "binary_cross_entropy"
    reduction = _reduction(op, size_average, reduce, reduction)
    _check_class_input(op, input, target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: using a target size ({list(target.shape)}) that is different "
                         f"to the input size ({list(input.shape)}) is not supported; please "
                         f"ensure they have the same size")
    x = input._data
    if x.size and bool(((x < 0) | (x > 1)).any()):
        raise RuntimeError(f"{op}: all elements of input should be between 0 and 1 (they are "
                           f"probabilities; for logits use binary_cross_entropy_with_logits)")
    loss = BinaryCrossEntropy.apply(input, target.to(input.dtype))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None):
    """BCE of sigmoid(input), computed from the logits without ever forming log(sigmoid):
        loss = (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)
    where softplus(-x) = -log(sigmoid(x)) is evaluated stably."""
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(op, size_average, reduce, reduction)
    _check_class_input(op, input, target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target size ({list(target.shape)}) must be the same as input "
                         f"size ({list(input.shape)})")
    from .activation import softplus
    target = target.to(input.dtype)
    neg_log_sigmoid = softplus(-input)
    if pos_weight is None:
        loss = (1 - target) * input + neg_log_sigmoid
    else:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * neg_log_sigmoid
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# ---- distributions ------------------------------------------------------------------------

def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False):
    """KL(target || q) pointwise with input = log q: target (log target - input).

    reduction='batchmean' (sum / batch size) is the mathematically correct KL divergence;
    'mean' divides by the number of elements, as in PyTorch."""
    op = "kl_div"
    reduction = _reduction(op, size_average, reduce, reduction, _REDUCTIONS + ("batchmean",))
    _pointwise_pair(op, input, target)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        from .elementwise import where
        positive = target > 0
        # 0 log 0 = 0; log is taken of a safe value so no -inf (and no NaN gradient) appears
        safe = where(positive, target, 1.0)
        loss = where(positive, target * safe.log(), 0.0) - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)
