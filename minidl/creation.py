"""Creation functions: tensor, zeros, ones, full, empty, arange, linspace, eye, rand, randn,
randint, the *_like forms and from_numpy. Float results default to float32 (see
`dtypes.set_default_dtype`); every function takes `dtype=`, `device=` and `requires_grad=`.
"""
from __future__ import annotations

import numpy as np

from . import dtypes as _dt
from .backend import get_backend
from .random import rng_of
from .tensor import Tensor, _CPU


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data`."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with `array` (no copy), as in PyTorch."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    _dt.from_numpy(array.dtype)  # raises a clear error for unsupported dtypes
    return Tensor._wrap(array, _CPU, None, 0)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if isinstance(data, np.ndarray) and device is None and (dtype is None or
                                                          _dt.from_any(dtype).np_dtype == data.dtype):
        return from_numpy(data)
    return Tensor(data, dtype=dtype, device=device)


def _finish(arr: np.ndarray, device, requires_grad: bool) -> Tensor:
    be = get_backend(device) if device is not None else _CPU
    t = Tensor._wrap(be.from_numpy(arr) if be is not _CPU else arr, be, None, 0)
    if requires_grad:
        t.requires_grad = True
    return t


def _shape_arg(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"sizes must be non-negative integers, got {tuple(size)}")
    return tuple(int(s) for s in size)


def _np_dtype(dtype, default=None):
    return _dt.from_any(dtype if dtype is not None else (default or _dt.get_default_dtype())).np_dtype


def _on_device(device, maker):
    """Build directly on the target device's array module (no host round-trip)."""
    be = get_backend(device) if device is not None else _CPU
    return be, maker(be.xp)


def _made(be, arr, requires_grad):
    t = Tensor._wrap(arr, be, None, 0)
    if requires_grad:
        t.requires_grad = True
    return t


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, d = _shape_arg(size), _np_dtype(dtype)
    be, arr = _on_device(device, lambda xp: xp.zeros(shape, d))
    return _made(be, arr, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, d = _shape_arg(size), _np_dtype(dtype)
    be, arr = _on_device(device, lambda xp: xp.ones(shape, d))
    return _made(be, arr, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, d = _shape_arg(size), _np_dtype(dtype)
    be, arr = _on_device(device, lambda xp: xp.empty(shape, d))
    return _made(be, arr, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape = _shape_arg((size,) if isinstance(size, int) else tuple(size))
    if dtype is None:
        dtype = _dt.scalar_dtype(fill_value)
    d = _np_dtype(dtype)
    be, arr = _on_device(device, lambda xp: xp.full(shape, fill_value, d))
    return _made(be, arr, requires_grad)


def _like(t: Tensor, dtype, device):
    return (t.dtype if dtype is None else dtype), (t.device if device is None else device)


def zeros_like(t, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return zeros(tuple(t.shape), dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return ones(tuple(t.shape), dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(t, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return empty(tuple(t.shape), dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return full(tuple(t.shape), fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, end, step))
        dtype = _dt.get_default_dtype() if is_float else _dt.int64
    arr = np.arange(start, end, step, dtype=_dt.from_any(dtype).np_dtype)
    return _finish(arr, device, requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad=False) -> Tensor:
    arr = np.linspace(start, end, int(steps), dtype=np.float64).astype(_np_dtype(dtype))
    return _finish(arr, device, requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.eye(n, m, dtype=_np_dtype(dtype)), device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform on [0, 1)."""
    d = _np_dtype(dtype)
    arr = rng_of(generator).random(_shape_arg(size), dtype=d if d in (np.float32, np.float64)
                                   else np.float64).astype(d, copy=False)
    return _finish(arr, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal."""
    d = _np_dtype(dtype)
    arr = rng_of(generator).standard_normal(
        _shape_arg(size), dtype=d if d in (np.float32, np.float64) else np.float64).astype(d, copy=False)
    return _finish(arr, device, requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """Integers uniform on [low, high) (like PyTorch, `randint(high, size)` also works)."""
    if high is None:
        low, high = 0, low
    if isinstance(size, int):
        size = (size,)
    arr = rng_of(generator).integers(low, high, size=tuple(size)).astype(
        _np_dtype(dtype, _dt.int64))
    return _finish(arr, device, requires_grad)


def randperm(n: int, generator=None, dtype=None, device=None) -> Tensor:
    return _finish(rng_of(generator).permutation(n).astype(_np_dtype(dtype, _dt.int64)), device,
                   False)


def rand_like(t, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return rand(tuple(t.shape), generator=generator, dtype=dtype, device=device,
                requires_grad=requires_grad)


def randn_like(t, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return randn(tuple(t.shape), generator=generator, dtype=dtype, device=device,
                 requires_grad=requires_grad)


def randint_like(t, low, high=None, dtype=None, device=None, generator=None) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return randint(low, high, tuple(t.shape), generator=generator, dtype=dtype, device=device)
