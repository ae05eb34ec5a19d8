"""minidl's dtypes and PyTorch's type-promotion rules.

A `dtype` is a small named object wrapping the NumPy dtype that stores the data (CuPy uses the
same dtype objects). We keep our own objects, not raw NumPy dtypes, for two reasons: users write
`minidl.float32` as they write `torch.float32`, and promotion follows PyTorch, not NumPy:

* categories rank bool < integer < floating;
* a Python scalar (or a 0-dim tensor) only changes the result when it is of a HIGHER category:
  `float32_tensor * 2.5` stays float32, `int64_tensor * 2.5` becomes the default float
  (float32), never float64 as NumPy would make it;
* otherwise the usual lattice: int32 + int64 -> int64, float16 + float32 -> float32,
  any integer + float16 -> float16.
"""
from __future__ import annotations

import numpy as np


class dtype:
    """A minidl dtype: `name`, the NumPy `np_dtype` behind it, and its category."""

    __slots__ = ("name", "np_dtype", "is_floating_point", "is_bool", "itemsize", "_rank")

    def __init__(self, name: str, np_dtype, rank: int):
        self.name = name
        self.np_dtype = np.dtype(np_dtype)
        self.is_floating_point = self.np_dtype.kind == "f"
        self.is_bool = self.np_dtype.kind == "b"
        self.itemsize = self.np_dtype.itemsize
        self._rank = rank  # position in the promotion lattice (within a category)

    @property
    def category(self) -> int:
        """0 for bool, 1 for integers, 2 for floating point."""
        return 2 if self.is_floating_point else (0 if self.is_bool else 1)

    def __repr__(self) -> str:
        return f"minidl.{self.name}"

    def __reduce__(self):  # pickles as the module constant, so `is` comparisons survive
        return (from_any, (self.name,))


float16 = dtype("float16", np.float16, 0)
float32 = dtype("float32", np.float32, 1)
float64 = dtype("float64", np.float64, 2)
uint8 = dtype("uint8", np.uint8, 0)
int8 = dtype("int8", np.int8, 0)
int16 = dtype("int16", np.int16, 1)
int32 = dtype("int32", np.int32, 2)
int64 = dtype("int64", np.int64, 3)
bool_ = dtype("bool", np.bool_, 0)

half, float, double = float16, float32, float64
short, int, long = int16, int32, int64

ALL = (float16, float32, float64, uint8, int8, int16, int32, int64, bool_)
_BY_NP = {d.np_dtype: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update({"half": float16, "float": float32, "double": float64, "long": int64,
                 "int": int32, "short": int16, "bool_": bool_})

_default_float = float32


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d) -> None:
    """Set the dtype used for Python floats and float creation functions (float32 or float64)."""
    global _default_float
    d = from_any(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype expects a floating dtype, got {d}")
    _default_float = d


def from_any(d) -> dtype:
    """Turn a minidl dtype, a NumPy dtype/type, a string or a Python type into a minidl dtype."""
    if isinstance(d, dtype):
        return d
    if d is None:
        return _default_float
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    if d is builtins_float:
        return _default_float
    if d is builtins_int:
        return int64
    if d is builtins_bool:
        return bool_
    try:
        found = _BY_NP.get(np.dtype(d))
    except TypeError:
        found = None
    if found is None:
        names = ", ".join(x.name for x in ALL)
        raise TypeError(f"unknown dtype {d!r}; expected one of: {names}")
    return found


def from_numpy(np_dtype) -> dtype:
    found = _BY_NP.get(np_dtype)
    if found is None:
        raise TypeError(
            f"NumPy dtype {np_dtype} has no minidl equivalent; convert the array to one of "
            + ", ".join(x.name for x in ALL))
    return found


import builtins as _builtins  # noqa: E402  (names shadowed above: float, int, bool)

builtins_float, builtins_int, builtins_bool = _builtins.float, _builtins.int, _builtins.bool


def _join(a: dtype, b: dtype) -> dtype:
    """Promotion of two dtypes that take part on an equal footing."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    if a.category == 1 and {a, b} == {uint8, int8}:
        return int16
    if a.category == 1 and uint8 in (a, b):
        other = b if a is uint8 else a
        return other
    return a if a._rank >= b._rank else b


def scalar_dtype(value) -> dtype:
    """The dtype a bare Python number would have as a tensor."""
    if isinstance(value, builtins_bool):
        return bool_
    if isinstance(value, builtins_int):
        return int64
    if isinstance(value, builtins_float):
        return _default_float
    raise TypeError(f"expected a number, got {type(value).__name__}")


def result_type(*operands) -> dtype:
    """PyTorch's promotion over tensors (objects with `.dtype` and `.ndim`) and Python numbers.

    Dimensioned tensors lead; 0-dim tensors come next; Python numbers last. A lower tier only
    matters when its category is higher than everything in the tiers above it; then a 0-dim
    tensor brings its own dtype and a Python number the default one of its kind
    (`int_tensor * 2.5` -> float32; `int_tensor * tensor(2.5, dtype=float64)` -> float64).
    """
    tiers = [None, None, None]  # dimensioned tensors, zero-dim tensors, Python numbers
    for op in operands:
        if isinstance(op, (builtins_int, builtins_float, builtins_bool)):
            d, tier = scalar_dtype(op), 2
        else:
            d, tier = op.dtype, (0 if op.ndim > 0 else 1)
        tiers[tier] = d if tiers[tier] is None else _join(tiers[tier], d)
    result = None
    for d in tiers:
        if d is not None and (result is None or d.category > result.category):
            result = d
    return result
