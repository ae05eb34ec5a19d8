"""Reductions: sum, mean, prod, max/min, amax/amin, argmax/argmin, var/std, logsumexp,
cumsum, norm, all/any — with `dim` (int or tuple) and `keepdim` as in PyTorch.

The gradient of a reduction has the input's shape: it is the output gradient broadcast back
over the reduced dims (re-inserting them first when keepdim=False). float16 inputs are summed
in float32 so long reductions do not lose all precision.
"""
from __future__ import annotations

import collections
import math

from ..autograd.function import Function, apply1
from ..autograd.grad_mode import _state
from ..tensor import _wrap
from ._util import Tensor, canonical_dims, canonical_dim
from .shape import expand, reshape

values_indices = collections.namedtuple("values_indices", ["values", "indices"])


def _expand_back(grad: Tensor, in_shape, dims, keepdim: bool) -> Tensor:
    """Broadcast a reduction's gradient back to the input shape."""
    g = grad._data
    n = _numel(in_shape)
    if not _state[0]:
        # first-order backward: the same reshape / broadcast view on the array, without the
        # graph bookkeeping of the reshape and expand ops (the tail of every loss.sum())
        if g.size == n:
            return _wrap(g.reshape(in_shape), grad._be, None, 0)
        if not keepdim:
            kept = list(in_shape)
            for d in dims:
                kept[d] = 1
            g = g.reshape(kept)
        return _wrap(grad._be.xp.broadcast_to(g, in_shape), grad._be, None, 0)
    if g.size == n:
        return reshape(grad, in_shape)  # only size-1 dims were reduced: a reshape does it
    if not keepdim and len(dims) == len(in_shape):
        return expand(grad, in_shape)  # a full reduction: broadcasting does it all
    if not keepdim:
        kept = list(in_shape)
        for d in dims:
            kept[d] = 1
        grad = reshape(grad, tuple(kept))
    return expand(grad, in_shape)


_numel = math.prod  # the element count of a shape (a C loop: cheaper than a Python one)


def _acc_dtype(arr):
    """float16 sums accumulate in float32; everything else in its own dtype."""
    return "float32" if arr.dtype.char == "e" else None  # 'e' is float16


# dim=None reduces every axis; these tuples are made once per rank, not per call
_ALL_DIMS = [tuple(range(n)) for n in range(33)]


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.meta = (x.shape, dims, keepdim)
        # the array's own .sum method: NumPy's module-level np.sum adds a Python wrapper that
        # costs more than the reduction itself on small arrays
        if x.dtype.char == "e":
            return x.sum(axis=dims, keepdims=keepdim, dtype="float32").astype(x.dtype)
        return x.sum(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        shape, dims, keepdim = ctx.meta
        return _expand_back(grad, shape, dims, keepdim), None, None


def sum(x, dim=None, keepdim: bool = False, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    data = x._data
    dims = _ALL_DIMS[data.ndim] if dim is None else canonical_dims(dim, data.ndim)
    if data.dtype.kind in "biu":
        return Tensor._wrap(data.sum(axis=dims, keepdims=keepdim, dtype="int64"), x._be, None, 0)
    return apply1(Sum, x, dims, keepdim)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.meta = (x.shape, dims, keepdim)
        n = 1
        for d in dims:
            n *= x.shape[d]
        ctx.n = n
        if x.dtype.char == "e":
            return x.mean(axis=dims, keepdims=keepdim, dtype="float32").astype(x.dtype)
        return x.mean(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        shape, dims, keepdim = ctx.meta
        return _expand_back(grad / ctx.n, shape, dims, keepdim), None, None


def mean(x, dim=None, keepdim: bool = False, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    data = x._data
    if data.dtype.kind != "f":
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating "
                           f"point, but got {x.dtype}; use x.float().mean()")
    dims = _ALL_DIMS[data.ndim] if dim is None else canonical_dims(dim, data.ndim)
    return apply1(Mean, x, dims, keepdim)


class SumToSize(Function):
    """Sum a broadcast array back to `shape` (the adjoint of expand)."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        lead = x.ndim - len(shape)
        dims = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1)
        acc = _acc_dtype(x)
        out = x.sum(axis=dims, keepdims=True, dtype=acc) if dims else x
        out = out.reshape(shape)
        return out.astype(x.dtype) if acc else out

    @staticmethod
    def backward(ctx, grad):
        return expand(grad, ctx.in_shape), None


def sum_to_size(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return SumToSize.apply1(x, tuple(shape))


class Prod(Function):
    @staticmethod
    def forward(ctx, x, dim, keepdim):
        ctx.save_for_backward(ctx.inputs[0])
        ctx.meta = (dim, keepdim)
        out = ctx._be.xp.prod(x, axis=dim, keepdims=True)
        if dim is None:
            return out.reshape(())
        return out if keepdim else out.squeeze(dim)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        dim, keepdim = ctx.meta
        xp = ctx._be.xp
        if not xp.any(x._data == 0):
            # d(prod)/dx_i = prod / x_i when nothing is zero
            out_full = x.prod(dim, keepdim=True) if dim is not None else x.prod().reshape([1] * x.ndim)
            g = grad if (keepdim and dim is not None) else grad.reshape(out_full.shape)
            return g * out_full / x, None, None
        # with zeros: the product of all the *other* elements, from exclusive cumulative products
        from .shape import flip
        d = dim if dim is not None else 0
        xx = x if dim is not None else x.reshape(-1)
        left = _exclusive_cumprod(xx, d)
        right = flip(_exclusive_cumprod(flip(xx, (d,)), d), (d,))
        others = left * right
        g = grad if (keepdim or dim is None) else grad.unsqueeze(dim)
        if dim is None:
            return (g.reshape(()) * others).reshape(x.shape), None, None
        return g * others, None, None


def _exclusive_cumprod(x, dim):
    from .shape import cat, narrow
    one_shape = list(x.shape)
    one_shape[dim] = 1
    ones = Tensor._wrap(x._be.xp.ones(one_shape, x._data.dtype), x._be, None, 0)
    shifted = cat([ones, narrow(x, dim, 0, x.shape[dim] - 1)], dim)
    return cumprod(shifted, dim)


def prod(x, dim=None, keepdim: bool = False):
    if dim is not None:
        dim = canonical_dim(dim, x.ndim)
    if x._data.dtype.kind != "f":
        xp = x._be.xp
        return Tensor._wrap(xp.prod(x._data, axis=dim, keepdims=keepdim), x._be, None, 0)
    return Prod.apply(x, dim, keepdim)


class CumProd(Function):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.save_for_backward(ctx.inputs[0])
        ctx.dim = dim
        y = ctx._be.xp.cumprod(x, axis=dim)
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        y = ctx.output()
        # dy_j/dx_i = y_j / x_i for j >= i (valid when x has no zeros)
        from .shape import flip
        d = ctx.dim
        return flip(cumsum(flip(grad * y, (d,)), d), (d,)) / x, None


def cumprod(x, dim):
    return CumProd.apply(x, canonical_dim(dim, x.ndim))


class CumSum(Function):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return ctx._be.xp.cumsum(x, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        from .shape import flip
        d = ctx.dim
        # y_j = sum_{i<=j} x_i, so dL/dx_i = sum_{j>=i} g_j: a reversed cumulative sum
        return flip(cumsum(flip(grad, (d,)), d), (d,)), None


def cumsum(x, dim, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    dim = canonical_dim(dim, x.ndim)
    if x._data.dtype.kind != "f":
        return Tensor._wrap(x._be.xp.cumsum(x._data, axis=dim, dtype="int64"), x._be, None, 0)
    return CumSum.apply(x, dim)


class _ExtremeAll(Function):
    """amax/amin (and max()/min() without dim): ties share the gradient evenly."""
    pick_max = True

    @classmethod
    def forward(cls, ctx, x, dims, keepdim):
        xp = ctx._be.xp
        y = (xp.max if cls.pick_max else xp.min)(x, axis=dims, keepdims=True)
        ctx.save_for_backward(ctx.inputs[0])
        ctx.y_keep = y
        ctx.meta = (dims, keepdim)
        return y if keepdim else y.reshape([s for i, s in enumerate(x.shape) if i not in dims])

    @classmethod
    def backward(cls, ctx, grad):
        (x,) = ctx.saved_tensors
        dims, keepdim = ctx.meta
        y = Tensor._wrap(ctx.y_keep, ctx._be, None, 0)
        mask = (x == y).to(grad.dtype)
        count = mask.sum(dims, keepdim=True)
        g = grad if keepdim else grad.reshape(y.shape)
        return mask * (g / count), None, None


class AMax(_ExtremeAll):
    pick_max = True


class AMin(_ExtremeAll):
    pick_max = False


def amax(x, dim=None, keepdim: bool = False):
    dims = canonical_dims(dim if dim != () else None, x.ndim)
    if x._data.dtype.kind != "f":
        return Tensor._wrap(x._be.xp.max(x._data, axis=dims, keepdims=keepdim), x._be, None, 0)
    return AMax.apply(x, dims, keepdim)


def amin(x, dim=None, keepdim: bool = False):
    dims = canonical_dims(dim if dim != () else None, x.ndim)
    if x._data.dtype.kind != "f":
        return Tensor._wrap(x._be.xp.min(x._data, axis=dims, keepdims=keepdim), x._be, None, 0)
    return AMin.apply(x, dims, keepdim)


class _ExtremeDim(Function):
    """max(dim)/min(dim): values and indices; the gradient goes to the chosen index only."""
    pick_max = True

    @classmethod
    def forward(cls, ctx, x, dim, keepdim):
        xp = ctx._be.xp
        idx = (xp.argmax if cls.pick_max else xp.argmin)(x, axis=dim, keepdims=True)
        vals = xp.take_along_axis(x, idx, axis=dim)
        ctx.meta = (x.shape, dim, keepdim)
        ctx.idx = idx
        if not keepdim:
            vals, idx = vals.squeeze(dim), idx.squeeze(dim)
        return vals, idx.astype("int64")

    @classmethod
    def backward(cls, ctx, grad, _grad_idx):
        from .indexing import scatter_add
        from ..creation import zeros
        shape, dim, keepdim = ctx.meta
        g = grad if keepdim else grad.unsqueeze(dim)
        idx = Tensor._wrap(ctx.idx.astype("int64"), ctx._be, None, 0)
        base = zeros(shape, dtype=grad.dtype, device=grad.device)
        return scatter_add(base, dim, idx, g), None, None


class MaxDim(_ExtremeDim):
    pick_max = True


class MinDim(_ExtremeDim):
    pick_max = False


def max(x, dim=None, keepdim: bool = False):
    """max(x) -> the largest value; max(x, dim) -> (values, indices); max(a, b) -> maximum."""
    return _extreme(x, dim, keepdim, pick_max=True)


def min(x, dim=None, keepdim: bool = False):
    """min(x) -> the smallest value; min(x, dim) -> (values, indices); min(a, b) -> minimum."""
    return _extreme(x, dim, keepdim, pick_max=False)


def _extreme(x, dim, keepdim, pick_max: bool):
    if isinstance(dim, Tensor):  # max(a, b): the elementwise form
        from .elementwise import maximum, minimum
        return (maximum if pick_max else minimum)(x, dim)
    if dim is None:
        return amax(x) if pick_max else amin(x)
    dim = canonical_dim(dim, x.ndim)
    if x._data.dtype.kind != "f":  # integers and bools: no gradient, plain array calls
        xp = x._be.xp
        pick, arg = (xp.max, xp.argmax) if pick_max else (xp.min, xp.argmin)
        idx = arg(x._data, axis=dim, keepdims=keepdim)
        return values_indices(Tensor._wrap(pick(x._data, axis=dim, keepdims=keepdim), x._be, None, 0),
                              Tensor._wrap(idx.astype("int64"), x._be, None, 0))
    return values_indices(*(MaxDim if pick_max else MinDim).apply(x, dim, keepdim))


def argmax(x, dim=None, keepdim: bool = False):
    xp = x._be.xp
    if dim is None:
        out = xp.argmax(x._data.reshape(-1))
        if keepdim:
            out = out.reshape((1,) * x.ndim)
    else:
        out = xp.argmax(x._data, axis=canonical_dim(dim, x.ndim), keepdims=keepdim)
    return Tensor._wrap(xp.asarray(out, dtype="int64"), x._be, None, 0)


def argmin(x, dim=None, keepdim: bool = False):
    xp = x._be.xp
    if dim is None:
        out = xp.argmin(x._data.reshape(-1))
        if keepdim:
            out = out.reshape((1,) * x.ndim)
    else:
        out = xp.argmin(x._data, axis=canonical_dim(dim, x.ndim), keepdims=keepdim)
    return Tensor._wrap(xp.asarray(out, dtype="int64"), x._be, None, 0)


class Var(Function):
    @staticmethod
    def forward(ctx, x, dims, correction, keepdim):
        ctx.save_for_backward(ctx.inputs[0])
        n = 1
        for d in dims:
            n *= x.shape[d]
        ctx.meta = (dims, correction, keepdim, n)
        return ctx._be.xp.var(x, axis=dims, ddof=correction, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        dims, correction, keepdim, n = ctx.meta
        # var = sum((x - mean)^2) / (n - c); the mean's own gradient term sums to zero
        centred = x - x.mean(dims, keepdim=True)
        g = grad if keepdim else _expand_back(grad, x.shape, dims, False)
        scale = 2.0 / (n - correction) if n > correction else float("inf")
        return g * centred * scale, None, None, None


def var(x, dim=None, unbiased=None, keepdim: bool = False, correction=None):
    """Variance with Bessel's `correction` (default 1, i.e. divide by N - 1)."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return Var.apply(x, canonical_dims(dim, x.ndim), int(correction), keepdim)


def std(x, dim=None, unbiased=None, keepdim: bool = False, correction=None):
    from .elementwise import sqrt
    return sqrt(var(x, dim, unbiased, keepdim, correction))


def var_mean(x, dim=None, unbiased=None, keepdim=False, correction=None):
    return var(x, dim, unbiased, keepdim, correction), mean(x, dim, keepdim)


def std_mean(x, dim=None, unbiased=None, keepdim=False, correction=None):
    return std(x, dim, unbiased, keepdim, correction), mean(x, dim, keepdim)


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        xp = ctx._be.xp
        # subtract the max so exp never overflows; a row of all -inf stays -inf, not nan
        m = xp.max(x, axis=dims, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        y = xp.log(xp.sum(xp.exp(x - m), axis=dims, keepdims=True)) + m
        ctx.save_for_backward(ctx.inputs[0])
        ctx.meta = (dims, keepdim)
        ctx.save_output(y if keepdim else y.reshape([s for i, s in enumerate(x.shape) if i not in dims]))
        return ctx._saved_out[1]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        dims, keepdim = ctx.meta
        y = ctx.output()
        if not keepdim:
            y = _expand_back(y, x.shape, dims, False)
            grad = _expand_back(grad, x.shape, dims, False)
        from .elementwise import exp
        # d lse / dx = softmax(x) = exp(x - lse)
        return grad * exp(x - y), None, None


def logsumexp(x, dim, keepdim: bool = False):
    return LogSumExp.apply(x, canonical_dims(dim, x.ndim), keepdim)


class Norm2(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        xp = ctx._be.xp
        n = xp.sqrt(xp.sum(x * x, axis=dims, keepdims=True))
        ctx.save_for_backward(ctx.inputs[0])
        ctx.meta = (dims, keepdim)
        ctx.save_output(n if keepdim else n.reshape([s for i, s in enumerate(x.shape) if i not in dims]))
        return ctx._saved_out[1]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        dims, keepdim = ctx.meta
        n = ctx.output()
        if not keepdim:
            n = _expand_back(n, x.shape, dims, False)
            grad = _expand_back(grad, x.shape, dims, False)
        from .elementwise import where
        # d||x||/dx = x / ||x||; at x = 0 PyTorch returns 0 rather than nan
        safe = where(n == 0, n + 1, n)
        return grad * x / safe, None, None


def norm(x, p="fro", dim=None, keepdim: bool = False):
    """Vector p-norm over `dim` (all elements by default): p = 2/'fro', 1, inf, -inf, or any p."""
    dims = canonical_dims(dim, x.ndim)
    if p in ("fro", 2, 2.0):
        return Norm2.apply(x, dims, keepdim)
    from .elementwise import abs as _abs
    if p in (float("inf"), "inf"):
        return amax(_abs(x), dims, keepdim)
    if p in (float("-inf"), "-inf"):
        return amin(_abs(x), dims, keepdim)
    if p == 1:
        return sum(_abs(x), dims, keepdim)
    if p == 0:
        return sum((x != 0).to(x.dtype), dims, keepdim)
    return sum(_abs(x) ** p, dims, keepdim) ** (1.0 / p)


def all(x, dim=None, keepdim: bool = False):
    dims = None if dim is None else canonical_dims(dim, x.ndim)
    return Tensor._wrap(x._be.xp.all(x._data, axis=dims, keepdims=keepdim), x._be, None, 0)


def any(x, dim=None, keepdim: bool = False):
    dims = None if dim is None else canonical_dims(dim, x.ndim)
    return Tensor._wrap(x._be.xp.any(x._data, axis=dims, keepdims=keepdim), x._be, None, 0)


def count_nonzero(x, dim=None):
    dims = None if dim is None else canonical_dims(dim, x.ndim)
    return Tensor._wrap(x._be.xp.asarray(x._be.xp.count_nonzero(x._data, axis=dims), dtype="int64"),
                        x._be, None, 0)

