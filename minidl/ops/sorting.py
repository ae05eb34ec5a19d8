"""Ordering along a dim: sort, argsort, topk, kthvalue, median — with PyTorch's signatures,
return types ((values, indices) named tuples) and NaN rules.

Each op picks, for every slice along `dim`, some positions `idx` of the input; its values are
`take_along_axis(x, idx, dim)`. That makes the gradient the same for all of them: the output
gradient written back at `idx` into zeros of the input's shape (a scatter-add, whose own
gradient is a gather, so double backward works). Positions that were not picked get 0, as in
PyTorch.

Ordering rules (PyTorch's):
- NaN counts as larger than every number: ascending sort puts NaNs last, descending first;
  topk(largest=True) picks NaNs first; median returns NaN for a slice holding one.
- sort and argsort are always stable here (equal values keep their input order; with
  descending=True too), whatever `stable=` says; PyTorch guarantees that only for stable=True.
- topk, kthvalue and median choose among equal values arbitrarily: when several elements tie
  at the cut, which of their indices is returned may differ from PyTorch (PyTorch does not
  promise one either). The values are always the same. topk lists the chosen elements in
  order (ties by index) even with sorted=False.

Speed: topk with k at most half the dim first narrows each slice to k candidates with
argpartition (linear time), then sorts only those k; a larger k sorts the whole slice.
"""
from __future__ import annotations

import numbers

from ..autograd.function import Function
from ._util import Tensor, canonical_dim
from .reduce import values_indices


# ---- array-level helpers (xp is numpy or cupy) ------------------------------------------------
def _argsort(xp, a, axis, descending):
    """Stable argsort along `axis`; descending keeps equal values in input order too.

    Descending = sort the reversed slice ascending, read the result backwards, and map the
    positions back (j -> n-1-j). Negating would break stability, overflow unsigned and bool
    inputs, and put NaNs last instead of first."""
    if not descending:
        return xp.argsort(a, axis=axis, kind="stable")
    n = a.shape[axis]
    idx = xp.argsort(xp.flip(a, axis), axis=axis, kind="stable")
    return (n - 1) - xp.flip(idx, axis)


def _slice_along(a, axis, start, stop):
    key = [slice(None)] * a.ndim
    key[axis] = slice(start, stop)
    return a[tuple(key)]


def _topk_indices(xp, x, k, dim, largest):
    n = x.shape[dim]
    if k == 0:
        return xp.zeros(_slice_along(x, dim, 0, 0).shape, dtype="int64")
    if 2 * k > n:
        return _slice_along(_argsort(xp, x, dim, largest), dim, 0, k)
    # narrow to the k winners (unordered), then order just those: by index first, so that a
    # stable sort by value lists equal values by index, as the full sort would
    if largest:
        cand = _slice_along(xp.argpartition(x, n - k, axis=dim), dim, n - k, n)
    else:
        cand = _slice_along(xp.argpartition(x, k - 1, axis=dim), dim, 0, k)
    cand = xp.sort(cand, axis=dim)
    order = _argsort(xp, xp.take_along_axis(x, cand, axis=dim), dim, largest)
    return xp.take_along_axis(cand, order, axis=dim)


def _kth_index(xp, x, k0, dim):
    """Index (dim kept, size 1) of the k0-th smallest (0-based) element of each slice."""
    return _slice_along(xp.argpartition(x, k0, axis=dim), dim, k0, k0 + 1)


# ---- the differentiable op -----------------------------------------------------------------
class _SelectAlongDim(Function):
    """Values at picked positions along `dim`; subclasses say which positions (`pick`).

    forward(x, dim, keepdim, *args): `pick(xp, x, dim, *args)` returns int indices with `dim`
    kept (size 1 for a single pick); keepdim=False squeezes that dim away afterwards."""

    @staticmethod
    def pick(xp, x, dim, *args):
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, x, dim, keepdim, *args):
        xp = ctx._be.xp
        idx = cls.pick(xp, x, dim, *args).astype("int64", copy=False)
        vals = xp.take_along_axis(x, idx, axis=dim)
        ctx.meta = (x.shape, dim, keepdim, idx)
        if not keepdim:
            vals, idx = vals.squeeze(dim), idx.squeeze(dim)
        return vals, idx

    @staticmethod
    def backward(ctx, grad, _grad_indices):
        from ..creation import zeros
        from .indexing import scatter_add
        shape, dim, keepdim, idx = ctx.meta
        g = grad if keepdim else grad.unsqueeze(dim)
        base = zeros(shape, dtype=grad.dtype, device=grad.device)
        # scatter-ADD: a pick may repeat a position in principle; for sort/topk the picks are
        # distinct and this is a plain scatter
        return (scatter_add(base, dim, Tensor._wrap(idx, ctx._be, None, 0), g),) + (None,) * (
            len(ctx.needs_input_grad) - 1)


class Sort(_SelectAlongDim):
    @staticmethod
    def pick(xp, x, dim, descending):
        return _argsort(xp, x, dim, descending)


class TopK(_SelectAlongDim):
    @staticmethod
    def pick(xp, x, dim, k, largest):
        return _topk_indices(xp, x, k, dim, largest)


class KthValue(_SelectAlongDim):
    @staticmethod
    def pick(xp, x, dim, k0):
        return _kth_index(xp, x, k0, dim)


class Median(_SelectAlongDim):
    @staticmethod
    def pick(xp, x, dim):
        # the lower median: the ((n-1)//2)-th smallest; a slice holding NaN gives its first NaN
        idx = _kth_index(xp, x, (x.shape[dim] - 1) // 2, dim)
        if x.dtype.kind == "f":
            nan = xp.isnan(x)
            has_nan = nan.any(axis=dim, keepdims=True)
            idx = xp.where(has_nan, xp.argmax(nan, axis=dim, keepdims=True), idx)
        return idx


# ---- argument checking and the functional wrappers ------------------------------------------
def _check_tensor(x, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): expected a Tensor as input, got {type(x).__name__}")
    if x._data.dtype.kind == "c":
        raise TypeError(f"{op}(): complex tensors have no order, got {x.dtype}")


def _check_int(value, name, op):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}(): {name} must be an int, got {type(value).__name__} ({value!r})")
    return int(value)


def _run(cls, x, dim, keepdim, *args):
    """Apply a selection op; 0-d inputs are treated as one-element 1-d slices (as PyTorch)."""
    if x.ndim == 0:
        vals, idx = cls.apply(x.reshape(1), 0, True, *args)
        if vals.shape[0] == 1:
            vals, idx = vals.reshape(()), idx.reshape(())
        return values_indices(vals, idx)
    return values_indices(*cls.apply(x, dim, keepdim, *args))


def sort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) of `input` sorted along `dim` (always stable: see the module notes)."""
    _check_tensor(input, "sort")
    d = canonical_dim(_check_int(dim, "dim", "sort"), input.ndim)
    return _run(Sort, input, d, True, bool(descending))


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """The indices that sort `input` along `dim` (int64, no gradient)."""
    _check_tensor(input, "argsort")
    d = canonical_dim(_check_int(dim, "dim", "argsort"), input.ndim)
    be = input._be
    data = input._data.reshape(1) if input.ndim == 0 else input._data
    idx = _argsort(be.xp, data, d, bool(descending)).astype("int64", copy=False)
    return Tensor._wrap(idx.reshape(()) if input.ndim == 0 else idx, be, None, 0)


def msort(input):
    """Sorted along dim 0 (ascending): sort(input, 0).values."""
    return sort(input, 0).values


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """(values, indices) of the k largest (largest=False: smallest) elements along `dim`.

    The result is always in order (largest first, or smallest first), ties by index; which of
    several equal values at the cut are chosen may differ from PyTorch (see the module notes)."""
    _check_tensor(input, "topk")
    k = _check_int(k, "k", "topk")
    d = canonical_dim(_check_int(dim, "dim", "topk"), input.ndim)
    n = input.shape[d] if input.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(
            f"topk(): selected index k out of range: k={k}, but dim {d} of the input (shape "
            f"{tuple(input.shape)}) has size {n}; expected 0 <= k <= {n}")
    return _run(TopK, input, d, True, k, bool(largest))


def kthvalue(input, k: int, dim: int = -1, keepdim: bool = False):
    """(values, indices) of the k-th smallest element (k counts from 1) along `dim`."""
    _check_tensor(input, "kthvalue")
    k = _check_int(k, "k", "kthvalue")
    d = canonical_dim(_check_int(dim, "dim", "kthvalue"), input.ndim)
    n = input.shape[d] if input.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(
            f"kthvalue(): selected number k out of range: k={k}, but dim {d} of the input "
            f"(shape {tuple(input.shape)}) has size {n}; expected 1 <= k <= {n}")
    return _run(KthValue, input, d, keepdim, k - 1)


def median(input, dim=None, keepdim: bool = False):
    """median(x) -> the lower median of all elements (a 0-d tensor; NaN if any is NaN);
    median(x, dim) -> (values, indices) along `dim`. For an even count this is the lower of
    the two middle values, as in PyTorch (not their mean, as in NumPy)."""
    _check_tensor(input, "median")
    if dim is None:
        if input.numel() == 0:
            raise RuntimeError("median(): the input is empty (shape "
                               f"{tuple(input.shape)}); the median of no values is undefined")
        return Median.apply(input.reshape(-1), 0, False)[0]
    d = canonical_dim(_check_int(dim, "dim", "median"), input.ndim)
    if input.ndim and input.shape[d] == 0:
        raise RuntimeError(f"median(): dim {d} of the input (shape {tuple(input.shape)}) is "
                           "empty; the median of no values is undefined")
    return _run(Median, input, d, keepdim)
