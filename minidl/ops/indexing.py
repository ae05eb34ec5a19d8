"""Indexing: x[key] with ints, slices, None, Ellipsis, boolean masks and integer arrays;
x[key] = value; gather, scatter_add, scatter, index_select, index_add, masked_fill, one_hot,
nonzero, take_along_dim.

The gradient of reading x[key] is a zero tensor of x's shape with the output gradient written
back at `key`. With integer-array keys the same element can be read several times, so its
gradient must be *accumulated*: a plain `z[key] = g` would keep only the last write. We use
`add.at` (unbuffered scatter-add), which sums repeated indices.
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function, bump_version
from ._util import Tensor, canonical_dim, sum_to_shape


def _convert_key(key, be):
    """Turn Tensors inside an index into backend arrays; report whether it is basic indexing."""
    if not isinstance(key, tuple):
        key = (key,)
    out, basic = [], True
    for k in key:
        if isinstance(k, Tensor):
            if k._be is not be:
                raise RuntimeError(f"indexing a tensor on {be.device} with an index on "
                                   f"{k._be.device}; move the index with .to()")
            k = k._data
            basic = False
        elif isinstance(k, (list,)) or (hasattr(k, "dtype") and hasattr(k, "shape")):
            k = be.xp.asarray(k)
            basic = False
        elif isinstance(k, bool):
            basic = False
        elif not (k is None or k is Ellipsis or isinstance(k, (int, slice))):
            if hasattr(k, "__index__"):
                k = int(k)
            else:
                raise TypeError(f"invalid index of type {type(k).__name__}: expected int, slice, "
                                "None, Ellipsis, a bool/int Tensor or a list of ints")
        out.append(k)
    return tuple(out), basic


def _scatter_add_into(xp, target, key, values):
    """target[key] += values, with repeated indices accumulating."""
    if hasattr(xp, "add") and hasattr(xp.add, "at"):
        xp.add.at(target, key, values)
    else:  # CuPy spells it differently
        import cupyx
        cupyx.scatter_add(target, key, values)


class BasicIndex(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, key):
        ctx.meta = (x.shape, key)
        return x[key]

    @staticmethod
    def backward(ctx, grad):
        shape, key = ctx.meta
        return IndexBackward.apply(grad, shape, key, False), None


class AdvancedIndex(Function):
    @staticmethod
    def forward(ctx, x, key):
        ctx.meta = (x.shape, key)
        return x[key]

    @staticmethod
    def backward(ctx, grad):
        shape, key = ctx.meta
        return IndexBackward.apply(grad, shape, key, True), None


class IndexBackward(Function):
    """Write (or scatter-add) a gradient into zeros of the indexed tensor's shape. Its own
    gradient is indexing again, which is what makes double backward through x[key] work."""

    @staticmethod
    def forward(ctx, grad, shape, key, accumulate):
        ctx.key = key
        xp = ctx._be.xp
        z = xp.zeros(shape, dtype=grad.dtype)
        if accumulate:
            _scatter_add_into(xp, z, key, grad)
        else:
            z[key] = grad
        return z

    @staticmethod
    def backward(ctx, gg):
        return getitem(gg, ctx.key), None, None, None


def getitem(x, key):
    key, basic = _convert_key(key, x._be)
    if basic:
        return BasicIndex.apply(x, key)
    for k in key:
        if hasattr(k, "dtype") and k.dtype.kind == "b":
            continue
        if hasattr(k, "dtype") and k.dtype.kind not in "iu":
            raise IndexError(f"tensors used as indices must be long, int or bool tensors, got {k.dtype}")
    return AdvancedIndex.apply(x, key)


class SetItem(Function):
    """x[key] = value, done in place on x's memory. Gradients: x gets the output gradient with
    the overwritten positions zeroed; value gets the gradient read at key (summed back over any
    broadcasting of value)."""

    @staticmethod
    def forward(ctx, x, value, key):
        ctx.key = key
        ctx.value_shape = getattr(value, "shape", ())
        x[key] = value
        return x

    @staticmethod
    def backward(ctx, grad):
        nx, nv = ctx.needs_input_grad[:2]
        gx = gv = None
        if nx:
            gx = setitem_value(grad, ctx.key, 0.0)
        if nv:
            gv = sum_to_shape(getitem(grad, ctx.key), ctx.value_shape)
        return gx, gv, None


class SetItemOutOfPlace(Function):
    """A copy of x with x[key] = value (the differentiable, functional form)."""

    @staticmethod
    def forward(ctx, x, value, key):
        ctx.key = key
        ctx.value_shape = getattr(value, "shape", ())
        out = x.copy()
        out[key] = value
        return out

    backward = SetItem.backward


def setitem_value(x, key, value):
    """Out-of-place `x[key] = value`: returns a new tensor."""
    key, _ = _convert_key(key, x._be)
    return SetItemOutOfPlace.apply(x, value, key)


def setitem(x, key, value):
    """In-place x[key] = value (Tensor.__setitem__)."""
    from .inplace import check_inplace, finish_inplace
    key, _ = _convert_key(key, x._be)
    if isinstance(value, Tensor):
        if value._data.dtype != x._data.dtype:
            value = value.to(x.dtype)
        if value._be is not x._be:
            raise RuntimeError(f"setitem: value is on {value.device} but the tensor is on {x.device}")
    recording = check_inplace(x, value)
    if not recording:
        x._data[key] = value._data if isinstance(value, Tensor) else value
        bump_version(x)
        return x
    out = SetItem.apply(x, value, key)
    finish_inplace(x, out, copy=False)
    return x


# ---- gather / scatter ----------------------------------------------------------------------
def _check_index(index, name):
    if not isinstance(index, Tensor) or index._data.dtype.kind not in "iu":
        raise TypeError(f"{name}: index must be an integer Tensor, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")


def _full_index(xp, index, dim):
    """The tuple of coordinate arrays addressing `index`'s own positions, with `index`
    substituted along `dim` — the address of every element gather reads / scatter writes."""
    grids = list(xp.ogrid[tuple(slice(0, n) for n in index.shape)])
    grids[dim] = index
    return tuple(grids)


class Gather(Function):
    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.meta = (x.shape, dim, index)
        return x[_full_index(ctx._be.xp, index, dim)]

    @staticmethod
    def backward(ctx, grad):
        shape, dim, index = ctx.meta
        from ..creation import zeros
        base = zeros(shape, dtype=grad.dtype, device=grad.device)
        idx = Tensor._wrap(index, ctx._be, None, 0)
        return scatter_add(base, dim, idx, grad), None, None


def gather(x, dim: int, index):
    _check_index(index, "gather")
    d = canonical_dim(dim, x.ndim)
    if index.ndim != x.ndim:
        raise RuntimeError(f"gather: index has {index.ndim} dims but input has {x.ndim}; they must match")
    return Gather.apply(x, d, index._data)


class ScatterAdd(Function):
    @staticmethod
    def forward(ctx, x, src, dim, index):
        ctx.meta = (dim, index, src.shape)
        xp = ctx._be.xp
        out = x.copy()
        src_part = src[tuple(slice(0, n) for n in index.shape)]
        _scatter_add_into(xp, out, _full_index(xp, index, dim), src_part)
        return out

    @staticmethod
    def backward(ctx, grad):
        dim, index, src_shape = ctx.meta
        nx, ns = ctx.needs_input_grad[:2]
        gsrc = None
        if ns:
            gsrc = gather(grad, dim, Tensor._wrap(index, ctx._be, None, 0))
            if tuple(gsrc.shape) != tuple(src_shape):
                from .shape import pad
                widths = []
                for have, want in reversed(list(zip(gsrc.shape, src_shape))):
                    widths += [0, want - have]
                gsrc = pad(gsrc, widths)
        return (grad if nx else None), gsrc, None, None


def scatter_add(x, dim: int, index, src):
    _check_index(index, "scatter_add")
    d = canonical_dim(dim, x.ndim)
    if src._data.dtype != x._data.dtype:
        src = src.to(x.dtype)
    return ScatterAdd.apply(x, src, d, index._data)


class Scatter(Function):
    @staticmethod
    def forward(ctx, x, src, dim, index):
        xp = ctx._be.xp
        ctx.meta = (dim, index)
        out = x.copy()
        key = _full_index(xp, index, dim)
        out[key] = src[tuple(slice(0, n) for n in index.shape)] if hasattr(src, "shape") else src
        return out

    @staticmethod
    def backward(ctx, grad):
        dim, index = ctx.meta
        idx = Tensor._wrap(index, ctx._be, None, 0)
        nx, ns = ctx.needs_input_grad[:2]
        gx = scatter(grad, dim, idx, 0.0) if nx else None
        gs = gather(grad, dim, idx) if ns else None
        return gx, gs, None, None


def scatter(x, dim: int, index, src):
    """Out-of-place scatter: positions `index` along `dim` take `src` (a Tensor or a number)."""
    _check_index(index, "scatter")
    d = canonical_dim(dim, x.ndim)
    if isinstance(src, Tensor) and src._data.dtype != x._data.dtype:
        src = src.to(x.dtype)
    return Scatter.apply(x, src, d, index._data)


class IndexSelect(Function):
    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.meta = (x.shape, dim, index)
        return ctx._be.xp.take(x, index, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        shape, dim, index = ctx.meta
        return IndexAddInto.apply(grad, shape, dim, index), None, None


class IndexAddInto(Function):
    """zeros(shape) with `grad` added along `dim` at `index` (repeats accumulate)."""

    @staticmethod
    def forward(ctx, grad, shape, dim, index):
        ctx.meta = (dim, index)
        xp = ctx._be.xp
        z = xp.zeros(shape, dtype=grad.dtype)
        key = (slice(None),) * dim + (index,)
        _scatter_add_into(xp, z, key, grad)
        return z

    @staticmethod
    def backward(ctx, gg):
        dim, index = ctx.meta
        return IndexSelect.apply(gg, dim, index), None, None, None


def index_select(x, dim: int, index):
    _check_index(index, "index_select")
    if index.ndim > 1:
        raise RuntimeError(f"index_select: index must be 1-D, got shape {tuple(index.shape)}")
    return IndexSelect.apply(x, canonical_dim(dim, x.ndim), index._data.reshape(-1))


def index_add(x, dim: int, index, source, alpha=1):
    d = canonical_dim(dim, x.ndim)
    add = IndexAddInto.apply(source if alpha == 1 else source * alpha, tuple(x.shape), d,
                             index._data.reshape(-1))
    return x + add


def take_along_dim(x, indices, dim: int):
    return gather(x, dim, indices)


class MaskedFill(Function):
    @staticmethod
    def forward(ctx, x, mask, value):
        ctx.mask = mask
        return ctx._be.xp.where(mask, ctx._be.xp.asarray(value, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx, grad):
        m = Tensor._wrap(ctx.mask, ctx._be, None, 0)
        from .elementwise import where
        return sum_to_shape(where(m, grad * 0, grad), ctx.in_shape), None, None


def masked_fill(x, mask, value):
    if not isinstance(mask, Tensor) or mask._data.dtype.kind != "b":
        raise TypeError(f"masked_fill: mask must be a bool Tensor, got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if isinstance(value, Tensor):
        value = value.item()
    from .shape import broadcast_shapes
    out_shape = broadcast_shapes(tuple(x.shape), tuple(mask.shape))
    if out_shape != tuple(x.shape):
        raise RuntimeError(f"masked_fill: mask of shape {tuple(mask.shape)} cannot broadcast to the "
                           f"tensor's shape {tuple(x.shape)}")
    return MaskedFillShaped.apply(x, mask._data, value)


class MaskedFillShaped(MaskedFill):
    @staticmethod
    def forward(ctx, x, mask, value):
        ctx.in_shape = x.shape
        return MaskedFill.forward(ctx, x, mask, value)


def masked_select(x, mask):
    from .shape import expand
    shape = tuple(x.shape)
    m = expand(mask, shape) if tuple(mask.shape) != shape else mask
    return getitem(x, m)


def one_hot(indices, num_classes: int = -1):
    """int64 one-hot encoding (no gradient): shape indices.shape + (num_classes,)."""
    if indices._data.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot is only applicable to index tensors, got {indices.dtype}")
    xp = indices._be.xp
    idx = indices._data
    if num_classes == -1:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got range "
                           f"[{int(idx.min())}, {int(idx.max())}]")
    out = (idx[..., None] == xp.arange(num_classes)).astype("int64")
    return Tensor._wrap(out, indices._be, None, 0)


def nonzero(x, as_tuple: bool = False):
    xp = x._be.xp
    coords = xp.nonzero(x._data)
    if as_tuple:
        return tuple(Tensor._wrap(c.astype("int64"), x._be, None, 0) for c in coords)
    return Tensor._wrap(xp.stack(coords, axis=1).astype("int64") if coords else xp.zeros((0, 0), "int64"),
                        x._be, None, 0)


def argwhere(x):
    return nonzero(x)


_ = _dt
