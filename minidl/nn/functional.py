"""`minidl.nn.functional`: PyTorch's `torch.nn.functional` names, backed by minidl ops.

    import minidl.nn.functional as F
    loss = F.cross_entropy(F.linear(F.relu(F.conv2d(x, w, b, padding=1)).flatten(1), W), y)

Almost everything here is re-exported from `minidl.ops` (the op families live there, one file
each, forward and backward side by side). What is defined here is glue: `linear` (the
workhorse of every network), a few activations that are short compositions, and the
`inplace=` arguments PyTorch's signatures carry.
"""
from __future__ import annotations

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..ops._util import Tensor, check_float
from ..ops.activation import (elu, gelu, leaky_relu, logsigmoid, relu, sigmoid, silu, softplus)
from ..ops.activation import hardtanh as _hardtanh, mish as _mish
from ..ops.attention import scaled_dot_product_attention
from ..ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d, fold, unfold
from ..ops.dropout import dropout, dropout1d, dropout2d, dropout3d
from ..ops.elementwise import tanh
from ..ops.embedding import embedding
from ..ops.indexing import one_hot
from ..ops.loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                        huber_loss, kl_div, l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from ..ops.normalization import batch_norm, group_norm, instance_norm, layer_norm, rms_norm
from ..ops.pool import (adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d, avg_pool2d,
                        max_pool1d, max_pool2d)
from ..ops.shape import pad as _pad
from ..ops.softmax import log_softmax, softmax, softmin

__all__ = [
    # activations
    "relu", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "sigmoid", "tanh", "softplus",
    "logsigmoid", "hardtanh", "relu6", "mish", "hardsigmoid", "hardswish", "softsign", "glu",
    "threshold", "softmax", "log_softmax", "softmin",
    # layers
    "linear", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "unfold", "fold",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "layer_norm", "rms_norm", "batch_norm", "group_norm",
    "instance_norm", "dropout", "dropout1d", "dropout2d", "dropout3d", "embedding",
    "scaled_dot_product_attention",
    # losses
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
    # utilities
    "one_hot", "pad", "normalize", "cosine_similarity", "pairwise_distance",
]


# ---- linear -------------------------------------------------------------------------------

class Linear(Function):
    """y = x W^T + b for x (M, in), W (out, in), b (out,): one GEMM, bias added in place.

    Backward: dx = dy W,   dW = dy^T x,   db = sum of dy over the rows.
    A first-order backward (the usual loss.backward()) runs these as three array calls; under
    create_graph=True the same formulas run as minidl ops, so the gradient is differentiable
    again. tests/nn/test_fast_paths.py checks that both give the same numbers."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        y = ctx._be.matmul(x, weight.T)   # BLAS reads the transposed view directly, no copy
        if bias is not None:
            y += bias
        nx, nw, _ = ctx.needs_input_grad
        # keep only what the gradients read: dx needs W, dW needs x
        ctx.save_for_backward(ctx.inputs[0] if nw else None, ctx.inputs[1] if nx else None)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad
        if is_grad_enabled():   # create_graph=True: the composite, differentiable form
            return (grad @ weight if nx else None,
                    grad.mT @ x if nw else None,
                    grad.sum(0) if nb else None)
        g, be = grad._data, ctx._be
        return (Tensor._wrap(be.matmul(g, weight._data), be, None, 0) if nx else None,
                Tensor._wrap(be.matmul(g.T, x._data), be, None, 0) if nw else None,  # reads g.T
                Tensor._wrap(g.sum(0), be, None, 0) if nb else None)


def linear(input, weight, bias=None):
    """x @ weight.T + bias for x of shape (*, in_features); leading dims fold into one GEMM."""
    op = "linear"
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be Tensors")
    # the checks read the arrays directly: Tensor.shape builds a Size object per call
    x, w = input._data, weight._data
    check_float(input, op)
    if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise RuntimeError(f"{op}: input of shape {list(x.shape)} and weight of shape "
                           f"{list(w.shape)} cannot be multiplied (expected weight "
                           f"(out_features, {x.shape[-1] if x.ndim else '?'}))")
    if bias is not None and bias._data.shape != (w.shape[0],):
        raise RuntimeError(f"{op}: bias must have shape [{w.shape[0]}], got "
                           f"{list(bias.shape)}")
    if x.dtype != w.dtype or (bias is not None and bias._data.dtype != w.dtype):
        raise TypeError(f"{op}: input ({input.dtype}), weight ({weight.dtype})"
                        + (f" and bias ({bias.dtype})" if bias is not None else "")
                        + " must share one dtype")
    if x.ndim == 2:
        return Linear.apply(input, weight, bias)
    lead = x.shape[:-1]
    y = Linear.apply(input.reshape(-1, x.shape[-1]), weight, bias)
    return y.reshape(lead + (w.shape[0],))


# ---- activations that are short compositions ----------------------------------------------

def _maybe_inplace(x, fn, inplace):
    if inplace:
        from ..ops.inplace import apply_inplace
        return apply_inplace(x, fn)
    return fn(x)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
    return _maybe_inplace(input, lambda t: _hardtanh(t, min_val, max_val), inplace)


def relu6(input, inplace: bool = False):
    return hardtanh(input, 0.0, 6.0, inplace)


def mish(input, inplace: bool = False):
    return _maybe_inplace(input, _mish, inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace: bool = False):
    """scale * elu(x, alpha) with the self-normalising constants."""
    return _maybe_inplace(input, lambda t: elu(t, _SELU_ALPHA) * _SELU_SCALE, inplace)


def celu(input, alpha: float = 1.0, inplace: bool = False):
    """max(0, x) + min(0, alpha (exp(x/alpha) - 1)) = alpha * elu(x / alpha)."""
    return _maybe_inplace(input, lambda t: elu(t / alpha) * alpha, inplace)


def hardsigmoid(input, inplace: bool = False):
    """clamp(x/6 + 1/2, 0, 1)."""
    return _maybe_inplace(input, lambda t: _hardtanh(t / 6.0 + 0.5, 0.0, 1.0), inplace)


def hardswish(input, inplace: bool = False):
    """x * hardsigmoid(x)."""
    return _maybe_inplace(input, lambda t: t * hardsigmoid(t), inplace)


def softsign(input):
    """x / (1 + |x|)."""
    return input / (input.abs() + 1)


def glu(input, dim: int = -1):
    """Gated linear unit: split `dim` in halves a, b and return a * sigmoid(b)."""
    if input.shape[dim] % 2:
        raise RuntimeError(f"glu: halving dimension must be even, but dimension {dim} is size "
                           f"{input.shape[dim]}")
    a, b = input.chunk(2, dim)
    return a * sigmoid(b)


def threshold(input, threshold: float, value: float, inplace: bool = False):
    """x where x > threshold, else value."""
    from ..ops.elementwise import where
    return _maybe_inplace(input, lambda t: where(t > threshold, t, value), inplace)


# ---- utilities ----------------------------------------------------------------------------

def pad(input, pad, mode: str = "constant", value=None):
    """Pad the last dims: `pad` = (left, right, top, bottom, ...) starting from the last dim."""
    return _pad(input, pad, mode, 0.0 if value is None else value)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None):
    """x / max(||x||_p, eps) along `dim`."""
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported; use the return value")
    norm = input.norm(p, dim, keepdim=True).clamp(min=eps)
    return input / norm


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps)) along `dim` (after broadcasting)."""
    n1 = x1.norm(2, dim, keepdim=True).clamp(min=eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """||x1 - x2 + eps||_p over the last dim (eps keeps the norm's gradient finite at 0)."""
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)
