"""Small helpers shared by the op families: argument checking, promotion, broadcasting."""
from __future__ import annotations

import numbers

from .. import dtypes as _dt
from ..tensor import Tensor, _canonical_dim, _CPU

Number = (int, float, bool)


def canonical_dim(dim: int, ndim: int) -> int:
    return _canonical_dim(dim, ndim)


def canonical_dims(dim, ndim: int):
    """None -> all dims; int or sequence -> a sorted tuple of non-negative dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (int, numbers.Integral)):
        return (_canonical_dim(int(dim), ndim),)
    dims = tuple(sorted(_canonical_dim(int(d), ndim) for d in dim))
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"dim {tuple(dim)} appears multiple times in the list of dims")
    return dims


def as_tensor_like(x, like: Tensor) -> Tensor:
    """Wrap a Python number or array as a constant tensor on `like`'s device."""
    if isinstance(x, Tensor):
        return x
    be = like._be
    if isinstance(x, Number):
        d = _dt.result_type(like, x).np_dtype
        return Tensor._wrap(be.xp.asarray(x, dtype=d), be, None, 0)
    return Tensor(x, device=like.device)


def binary_operands(a, b):
    """Bring two operands (Tensors or Python numbers) to PyTorch's promoted dtype.

    Same-dtype tensors pass straight through (the common, fast case). Python numbers stay
    numbers when they do not change the dtype: NumPy then treats them as "weak" scalars
    (float32 array * 2.5 stays float32), which is exactly PyTorch's rule.
    """
    ta, tb = type(a) is Tensor or isinstance(a, Tensor), type(b) is Tensor or isinstance(b, Tensor)
    if ta and tb:
        if a._data.dtype is b._data.dtype:
            return a, b
        rt = _dt.result_type(a, b).np_dtype
        from .elementwise import to_dtype
        if a._data.dtype != rt:
            a = to_dtype(a, rt)
        if b._data.dtype != rt:
            b = to_dtype(b, rt)
        return a, b
    if ta:
        return a, _scalar_operand(a, b)
    if tb:
        return _scalar_operand(b, a), b
    raise TypeError(f"expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")


def _scalar_operand(t: Tensor, s):
    """A Python number meeting tensor `t`: promote `t` if the number is of a higher kind."""
    if type(s) in (float, int, bool):
        return s
    if hasattr(s, "dtype") and hasattr(s, "shape"):  # numpy array or scalar
        # A NumPy scalar counts as a Python number, as in PyTorch (float32 tensor +
        # np.float64(0.5) stays float32); left as it is, NumPy would promote to float64.
        return Tensor(s, device=t.device) if getattr(s, "ndim", 0) else s.item()
    if not isinstance(s, Number):
        raise TypeError(f"unsupported operand: Tensor and {type(s).__name__}")
    return s


def promote_for_scalar(t: Tensor, s):
    """If a Python number is of a higher kind than `t` (int tensor * 2.5), cast `t` first."""
    if isinstance(s, Number):
        kind = t._data.dtype.kind
        if (isinstance(s, float) and kind != "f") or (isinstance(s, int) and not isinstance(s, bool)
                                                       and kind == "b"):
            from .elementwise import to_dtype
            return to_dtype(t, _dt.result_type(t, s))
    return t


def sum_to_shape(grad: Tensor, shape) -> Tensor:
    """Reduce a broadcast gradient back to an input's shape (the adjoint of broadcasting)."""
    if grad._data.shape == shape:
        return grad
    from .reduce import sum_to_size
    return sum_to_size(grad, shape)


def check_float(t: Tensor, op: str) -> None:
    if t._data.dtype.kind != "f":
        raise TypeError(f"{op} expects a floating point tensor, got {t.dtype}; convert with "
                        ".float() first")


__all__ = ["Tensor", "canonical_dim", "canonical_dims", "binary_operands", "sum_to_shape",
           "as_tensor_like", "promote_for_scalar", "check_float", "_CPU"]
