"""Shape ops: reshape/view, flatten/unflatten, squeeze/unsqueeze, permute/transpose,
expand/broadcast_to, repeat/tile, cat/stack/split/chunk, pad, tril/triu, roll, flip, narrow.

Most of these only rearrange how memory is read, so the backward rearranges the gradient the
opposite way (reshape back, inverse permutation, sum over expanded dims, ...). The ones marked
`is_view` return NumPy views that share memory with their input.
"""
from __future__ import annotations

import builtins
import math

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ._util import Tensor, canonical_dim, canonical_dims, sum_to_shape


def _sizes(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _infer_shape(shape, numel, in_shape):
    shape = [int(s) for s in shape]
    if shape.count(-1) > 1:
        raise RuntimeError(f"only one dimension can be inferred (-1), got shape {tuple(shape)}")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel} "
                               f"(input shape {tuple(in_shape)})")
        shape[shape.index(-1)] = numel // known
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel} "
                           f"(input shape {tuple(in_shape)})")
    return tuple(shape)


def _reshape_array(x, shape):
    return x.reshape(shape)


def _transpose_array(x, dims):
    return x.transpose(dims)


class Reshape(Function):
    is_view = True
    array_op = _reshape_array  # the whole forward when nothing is recorded

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return reshape(grad, ctx.in_shape), None


def reshape(x, *shape):
    shape = shape[0] if len(shape) == 1 and type(shape[0]) is tuple else _sizes(shape)
    if -1 in shape or _numel(shape) != x._data.size:
        shape = _infer_shape(shape, x._data.size, x._data.shape)  # fills -1, or explains
    return Reshape.apply1(x, tuple(shape))


_numel = math.prod  # the element count of a shape (a C loop: cheaper than a Python one)


def view(x, *shape):
    from .. import dtypes as _dt
    if len(shape) == 1 and isinstance(shape[0], (_dt.dtype, str)) and not isinstance(shape[0], (tuple, list)):
        d = _dt.from_any(shape[0]).np_dtype
        return Tensor._wrap(x._data.view(d), x._be, None, 0)
    return reshape(x, *shape)


def view_as(x, other):
    return reshape(x, tuple(other.shape))


def reshape_as(x, other):
    return reshape(x, tuple(other.shape))


def flatten(x, start_dim: int = 0, end_dim: int = -1):
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = canonical_dim(start_dim, x.ndim), canonical_dim(end_dim, x.ndim)
    if s > e:
        raise RuntimeError(f"flatten() has invalid args: start_dim ({start_dim}) cannot come "
                           f"after end_dim ({end_dim})")
    shp = x._data.shape
    n = 1
    for d in shp[s:e + 1]:
        n *= d
    return reshape(x, shp[:s] + (n,) + shp[e + 1:])


def unflatten(x, dim: int, sizes):
    d = canonical_dim(dim, x.ndim)
    shp = x._data.shape
    inner = _infer_shape(sizes, shp[d], (shp[d],))
    return reshape(x, shp[:d] + inner + shp[d + 1:])


def squeeze(x, dim=None):
    shp = x._data.shape
    if dim is None:
        new = tuple(s for s in shp if s != 1)
    else:
        dims = canonical_dims(dim, x.ndim) if x.ndim else ()
        new = tuple(s for i, s in enumerate(shp) if not (i in dims and s == 1))
    return reshape(x, new) if new != shp else x


def unsqueeze(x, dim: int):
    d = canonical_dim(dim, x.ndim + 1)
    shp = x._data.shape
    return reshape(x, shp[:d] + (1,) + shp[d:])


class Permute(Function):
    is_view = True
    array_op = _transpose_array

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return permute(grad, tuple(inverse)), None


def permute(x, *dims):
    dims = _sizes(dims)
    if len(dims) != x.ndim:
        raise RuntimeError(f"permute: number of dims don't match: the tensor has {x.ndim} dims but "
                           f"{len(dims)} were given ({tuple(dims)})")
    dims = tuple(canonical_dim(d, x.ndim) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise RuntimeError(f"permute: dims {dims} must be a permutation of 0..{x.ndim - 1}")
    if dims == tuple(range(x.ndim)):
        return x
    return Permute.apply1(x, dims)


def transpose(x, dim0: int, dim1: int):
    if x.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    d0, d1 = canonical_dim(dim0, x.ndim), canonical_dim(dim1, x.ndim)
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(x, tuple(dims))


swapaxes = swapdims = transpose


def t(x):
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but it has {x.ndim}")
    return transpose(x, 0, 1) if x.ndim == 2 else x


def movedim(x, source, destination):
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    src = [canonical_dim(s, x.ndim) for s in src]
    dst = [canonical_dim(d, x.ndim) for d in dst]
    order = [d for d in range(x.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(x, tuple(order))


class Expand(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return ctx._be.xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return sum_to_shape(grad, ctx.in_shape), None


def expand(x, *sizes):
    sizes = _sizes(sizes)
    shp = x._data.shape
    if len(sizes) < len(shp):
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or "
                           f"equal to the number of dimensions in the tensor ({len(shp)})")
    lead = len(sizes) - len(shp)
    out = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s == -1:
                raise RuntimeError("expand: -1 is not allowed in a leading, new dimension")
            out.append(s)
            continue
        cur = shp[i - lead]
        if s == -1:
            out.append(cur)
        elif cur == s or cur == 1:
            out.append(s)
        else:
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing size "
                               f"({cur}) at non-singleton dimension {i}. Target sizes: "
                               f"{list(sizes)}. Tensor sizes: {list(shp)}")
    out = tuple(out)
    if out == shp:
        return x
    return Expand.apply1(x, out)


def expand_as(x, other):
    return expand(x, tuple(other.shape))


def broadcast_to(x, shape):
    return expand(x, tuple(shape))


def broadcast_shapes(*shapes):
    ndim = builtins.max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        size = 1
        for s in shapes:
            d = s[i - ndim + len(s)] if i - ndim + len(s) >= 0 else 1
            if d != 1:
                if size != 1 and size != d:
                    raise RuntimeError(f"shapes {', '.join(str(tuple(s)) for s in shapes)} cannot be "
                                       f"broadcast together (mismatch at dim {i}: {size} vs {d})")
                size = d
        out.append(size)
    return tuple(out)


def broadcast_tensors(*tensors):
    shape = broadcast_shapes(*[tuple(t.shape) for t in tensors])
    return tuple(expand(t, shape) for t in tensors)


class Tile(Function):
    @staticmethod
    def forward(ctx, x, reps):
        ctx.in_shape = x.shape
        ctx.reps = reps
        return ctx._be.xp.tile(x, reps)

    @staticmethod
    def backward(ctx, grad):
        # each input element appears once per tile: fold the tiles out and sum them
        shape = []
        for r, s in zip(ctx.reps, ctx.in_shape):
            shape += [r, s]
        g = reshape(grad, tuple(shape))
        from .reduce import sum as _sum
        return _sum(g, tuple(range(0, len(shape), 2))), None


def repeat(x, *sizes):
    """PyTorch's `repeat`: tile the tensor `sizes` times along each dim (not NumPy's repeat)."""
    sizes = _sizes(sizes)
    if len(sizes) < x.ndim:
        raise RuntimeError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than "
                           f"number of dimensions of tensor ({x.ndim})")
    x = reshape(x, (1,) * (len(sizes) - x.ndim) + x._data.shape)
    return Tile.apply(x, tuple(sizes))


def tile(x, dims):
    dims = tuple(dims)
    if len(dims) < x.ndim:
        dims = (1,) * (x.ndim - len(dims)) + dims
    return repeat(x, dims)


def repeat_interleave(x, repeats: int, dim=None):
    if dim is None:
        x, dim = reshape(x, (-1,)), 0
    dim = canonical_dim(dim, x.ndim)
    x = unsqueeze(x, dim + 1)
    sizes = list(x.shape)
    sizes[dim + 1] = repeats
    x = expand(x, tuple(sizes))
    shp = list(x.shape)
    return reshape(x, tuple(shp[:dim]) + (shp[dim] * repeats,) + tuple(shp[dim + 2:]))


class Cat(Function):
    @staticmethod
    def forward(ctx, dim, *arrays):
        ctx.dim = dim
        ctx.sizes = [a.shape[dim] for a in arrays]
        return ctx._be.xp.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        out = [None]
        start = 0
        for need, n in zip(ctx.needs_input_grad[1:], ctx.sizes):
            out.append(narrow(grad, ctx.dim, start, n) if need else None)
            start += n
        return tuple(out)


def cat(tensors, dim: int = 0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat expects a non-empty list of tensors")
    ref = tensors[0]
    d = canonical_dim(dim, ref.ndim)
    from .. import dtypes as _dt
    rt = _dt.result_type(*tensors)
    for i, t in enumerate(tensors):
        if t.ndim != ref.ndim or any(a != b for j, (a, b) in enumerate(zip(t.shape, ref.shape)) if j != d):
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}: tensor 0 "
                               f"has shape {tuple(ref.shape)} but tensor {i} has {tuple(t.shape)}")
    tensors = [t.to(rt) if t.dtype is not rt else t for t in tensors]
    return Cat.apply(d, *tensors)


concat = concatenate = cat


def stack(tensors, dim: int = 0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty list of tensors")
    shp = tuple(tensors[0].shape)
    for i, t in enumerate(tensors):
        if tuple(t.shape) != shp:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {shp} at entry 0 "
                               f"and {tuple(t.shape)} at entry {i}")
    d = canonical_dim(dim, len(shp) + 1)
    return cat([unsqueeze(t, d) for t in tensors], d)


class Split(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, dim, sizes):
        ctx.dim = dim
        ctx.in_shape = x.shape
        ctx.sizes = sizes
        out, start = [], 0
        index = [slice(None)] * x.ndim
        for n in sizes:
            index[dim] = slice(start, start + n)
            out.append(x[tuple(index)])
            start += n
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        return cat(list(grads), ctx.dim), None, None


def split(x, split_size_or_sections, dim: int = 0):
    d = canonical_dim(dim, x.ndim)
    n = x._data.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise RuntimeError(f"split expects split_size be positive, got {step}")
        sizes = [step] * (n // step) + ([n % step] if n % step else [])
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input "
                               f"tensor's size at dimension {d}), but got split_sizes={sizes}")
    if not sizes:
        return ()
    if len(sizes) == 1:
        return (x,)
    return Split.apply(x, d, tuple(sizes))


def chunk(x, chunks: int, dim: int = 0):
    d = canonical_dim(dim, x.ndim)
    n = x._data.shape[d]
    step = -(-n // chunks)
    return split(x, step, d)


class Unbind(Function):
    """x -> the slices x[..., i, ...] along `dim`, each a view without that dim (one node with
    n outputs, as PyTorch's unbind; also what iterating over a tensor gives).

    Backward stacks the slices' gradients back along `dim`; the engine hands zeros for the
    slices that were not used. One node and one stack: indexing each slice separately instead
    would make every slice's backward scatter into a zero tensor of the full size, then add
    those full-size tensors up (`q, k, v = qkv` paid 3 zero fills and 2 full additions)."""
    is_view = True

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        before = (slice(None),) * dim
        return tuple(x[before + (i,)] for i in range(x.shape[dim]))

    @staticmethod
    def backward(ctx, *grads):
        if is_grad_enabled():
            return stack(grads, ctx.dim), None
        be = ctx._be
        return Tensor._wrap(be.xp.stack([g._data for g in grads], axis=ctx.dim), be, None, 0), None


def unbind(x, dim: int = 0):
    if x.ndim == 0:
        raise IndexError(f"unbind: dimension {dim} specified but the tensor is 0-d (no dimensions "
                         "to split along)")
    return Unbind.apply(x, canonical_dim(dim, x.ndim))


class Narrow(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, dim, start, length):
        ctx.meta = (x.shape, dim, start, length)
        index = [slice(None)] * x.ndim
        index[dim] = slice(start, start + length)
        return x[tuple(index)]

    @staticmethod
    def backward(ctx, grad):
        shape, dim, start, length = ctx.meta
        widths = [(0, 0)] * len(shape)
        widths[dim] = (start, shape[dim] - start - length)
        return _pad_constant(grad, widths, 0.0), None, None, None


def narrow(x, dim: int, start: int, length: int):
    d = canonical_dim(dim, x.ndim)
    n = x._data.shape[d]
    if start < 0:
        start += n
    if not (0 <= start and start + length <= n):
        raise IndexError(f"narrow: start ({start}) + length ({length}) exceeds dimension size ({n})")
    return Narrow.apply(x, d, start, length)


class PadConstant(Function):
    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.widths = widths
        return ctx._be.xp.pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        index = tuple(slice(lo, grad.shape[i] - hi) for i, (lo, hi) in enumerate(ctx.widths))
        from .indexing import getitem
        return getitem(grad, index), None, None


def _pad_constant(x, widths, value):
    return PadConstant.apply(x, tuple(widths), value)


def pad(x, pad, mode: str = "constant", value: float = 0.0):
    """PyTorch's F.pad: `pad` lists (left, right) widths starting from the LAST dimension."""
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise RuntimeError(f"pad: padding length must be even and at most 2*ndim ({2 * x.ndim}), "
                           f"got {len(pad)}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        # negative padding crops
        index = tuple(slice(-lo if lo < 0 else None, hi if hi < 0 else None) for lo, hi in widths)
        from .indexing import getitem
        x = getitem(x, index)
        widths = [(builtins.max(lo, 0), builtins.max(hi, 0)) for lo, hi in widths]
    if mode == "constant":
        return _pad_constant(x, widths, value)
    if mode in ("reflect", "replicate", "circular"):
        return _pad_gather(x, widths, mode)
    raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")


def _pad_gather(x, widths, mode):
    """Non-constant padding as an index gather per dimension (so the gradient scatter-adds)."""
    from .indexing import index_select
    from ..creation import tensor
    xp = x._be.xp
    for d, (lo, hi) in enumerate(widths):
        if lo == 0 and hi == 0:
            continue
        n = x._data.shape[d]
        idx = xp.arange(-lo, n + hi)
        if mode == "reflect":
            period = 2 * (n - 1)
            idx = xp.abs(idx) % period if period else idx * 0
            idx = xp.where(idx >= n, period - idx, idx)
        elif mode == "replicate":
            idx = xp.clip(idx, 0, n - 1)
        else:
            idx = idx % n
        x = index_select(x, d, Tensor._wrap(idx.astype("int64"), x._be, None, 0))
    return x


class Tri(Function):
    @staticmethod
    def forward(ctx, x, k, lower):
        ctx.meta = (k, lower)
        xp = ctx._be.xp
        return xp.tril(x, k) if lower else xp.triu(x, k)

    @staticmethod
    def backward(ctx, grad):
        k, lower = ctx.meta
        return Tri.apply(grad, k, lower), None, None


def tril(x, diagonal: int = 0):
    return Tri.apply(x, diagonal, True)


def triu(x, diagonal: int = 0):
    return Tri.apply(x, diagonal, False)


class Roll(Function):
    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.meta = (shifts, dims)
        return ctx._be.xp.roll(x, shifts, axis=dims)

    @staticmethod
    def backward(ctx, grad):
        shifts, dims = ctx.meta
        neg = tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts
        return Roll.apply(grad, neg, dims), None, None


def roll(x, shifts, dims=None):
    if dims is None:
        flat = reshape(x, (-1,))
        return reshape(Roll.apply(flat, shifts if isinstance(shifts, int) else tuple(shifts), 0),
                       x._data.shape)
    if isinstance(shifts, int):
        shifts, dims = (shifts,), (dims,) if isinstance(dims, int) else tuple(dims)
    dims = tuple(canonical_dim(d, x.ndim) for d in (dims if isinstance(dims, (tuple, list)) else (dims,)))
    return Roll.apply(x, tuple(shifts), dims)


class Flip(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return ctx._be.xp.flip(x, axis=dims)

    @staticmethod
    def backward(ctx, grad):
        return Flip.apply(grad, ctx.dims), None


def flip(x, dims):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return Flip.apply(x, tuple(canonical_dim(d, x.ndim) for d in dims))


def fliplr(x):
    return flip(x, (1,))


def flipud(x):
    return flip(x, (0,))
