"""Turning a list of samples into one batch, in two steps:

1. numpy_collate: stack the samples field by field into NumPy arrays. A sample may be an array,
   a Python or NumPy number, a minidl Tensor, a string, or a tuple / list / dict / namedtuple
   of those, nested to any depth; the batch has the same structure, each leaf gaining a leading
   batch dimension: [(x0, y0), (x1, y1)] -> (stack([x0, x1]), array([y0, y1])).
2. default_convert: turn every NumPy array of numbers in that structure into a minidl Tensor.
   The Tensor shares the array's memory, which is safe because step 1 (and every get_batch
   here) builds new arrays: a batch never aliases the dataset.

default_collate, the DataLoader's default, is step 1 then step 2. Pass collate_fn=numpy_collate
to get NumPy batches (handy for quick loops and benchmarks), or write your own collate_fn.

Dtypes: arrays keep theirs; Python ints become int64; Python floats become the default float
dtype (float32 unless minidl.set_default_dtype says otherwise). PyTorch makes Python floats
float64 here; we don't, so float targets do not silently upcast float32 work.
Strings are not stacked: a batch of strings is a list of strings. Tuples stay tuples (PyTorch
turns them into lists), so a TensorDataset batch has the same type on every path.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

_TENSOR_CLASS = None


def _tensor_class():
    """minidl's Tensor class, or None when minidl.tensor cannot be imported (yet)."""
    global _TENSOR_CLASS
    if _TENSOR_CLASS is None:
        try:
            from minidl.tensor import Tensor
        except ImportError:
            return None
        _TENSOR_CLASS = Tensor
    return _TENSOR_CLASS


def _default_float():
    try:
        from minidl.dtypes import get_default_dtype
    except ImportError:
        return np.float32
    return get_default_dtype().np_dtype


def _require_all(samples, test, kind: str, where: str):
    for i, sample in enumerate(samples):
        if not test(sample):
            raise TypeError(f"collate{where}: sample 0 is {kind} but sample {i} is "
                            f"{type(sample).__name__}; every sample must have the same structure")


def _stack_arrays(arrays, where: str) -> np.ndarray:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape
        odd = next(i for i, a in enumerate(arrays) if a.shape != first)
        raise ValueError(f"collate{where}: cannot stack arrays of different shapes: sample 0 has "
                         f"shape {first}, sample {odd} has shape {arrays[odd].shape}; pad or crop "
                         f"them in the dataset, or pass a collate_fn")
    return np.stack(arrays)


def numpy_collate(samples):
    """Stack a list of samples into a batch of NumPy arrays (see the module docstring)."""
    return _collate(samples, "")


def _collate(samples, where: str):
    """numpy_collate, with `where` naming the field being stacked ("[0]['image']") for errors."""
    if len(samples) == 0:
        raise ValueError("collate: got an empty list of samples")
    first = samples[0]
    tensor_class = _tensor_class()

    if isinstance(first, np.ndarray):
        _require_all(samples, lambda s: isinstance(s, np.ndarray), "a NumPy array", where)
        return _stack_arrays(samples, where)
    if tensor_class is not None and isinstance(first, tensor_class):
        _require_all(samples, lambda s: isinstance(s, tensor_class), "a Tensor", where)
        return _stack_arrays([s.detach().numpy() for s in samples], where)
    # bool before int: True is an int in Python.
    if isinstance(first, (bool, np.bool_)):
        _require_all(samples, lambda s: isinstance(s, (bool, np.bool_)), "a bool", where)
        return np.array(samples, dtype=np.bool_)
    if isinstance(first, np.generic):  # NumPy scalars keep their dtype
        _require_all(samples, lambda s: type(s) is type(first), type(first).__name__, where)
        return np.array(samples, dtype=first.dtype)
    if isinstance(first, int):
        # Mixing ints and floats would truncate the floats silently, so it is an error.
        _require_all(samples, lambda s: isinstance(s, int) and not isinstance(s, bool),
                     "an int", where)
        return np.array(samples, dtype=np.int64)
    if isinstance(first, float):
        _require_all(samples, lambda s: isinstance(s, float), "a float", where)
        return np.array(samples, dtype=_default_float())
    if isinstance(first, (str, bytes)):
        return list(samples)
    if isinstance(first, Mapping):
        _require_all(samples, lambda s: isinstance(s, Mapping), "a dict", where)
        keys = list(first.keys())
        for i, sample in enumerate(samples):
            if set(sample.keys()) != set(keys):
                raise ValueError(f"collate{where}: sample 0 has keys {sorted(map(str, keys))} but "
                                 f"sample {i} has keys {sorted(map(str, sample.keys()))}")
        return {key: _collate([s[key] for s in samples], f"{where}[{key!r}]")
                for key in keys}
    if isinstance(first, (tuple, list)):
        _require_all(samples, lambda s: isinstance(s, (tuple, list)), "a tuple or list", where)
        for i, sample in enumerate(samples):
            if len(sample) != len(first):
                raise ValueError(f"collate{where}: sample 0 has {len(first)} fields but sample "
                                 f"{i} has {len(sample)}")
        fields = [_collate([s[j] for s in samples], f"{where}[{j}]")
                  for j in range(len(first))]
        if hasattr(first, "_fields"):  # namedtuple: keep the type and its field names
            return type(first)(*fields)
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(f"collate{where}: cannot batch samples of type {type(first).__name__}; "
                    f"expected NumPy arrays, Tensors, numbers, strings, or tuples / lists / dicts "
                    f"of those. Pass a collate_fn to batch other types")


def _from_numpy():
    """minidl's from_numpy (a CPU Tensor sharing the array's memory), imported on first use so
    that minidl.data imports on its own."""
    try:
        from minidl.creation import from_numpy
    except ImportError as error:
        raise ImportError(f"default_collate turns batches into minidl Tensors but minidl's "
                          f"from_numpy could not be imported ({error}); pass "
                          f"collate_fn=numpy_collate to get NumPy batches instead") from error
    return from_numpy


def default_convert(batch):
    """Turn every NumPy array of numbers or bools inside `batch` into a minidl Tensor."""
    if isinstance(batch, np.ndarray):
        if batch.dtype.kind in "biuf":  # not strings or objects: Tensors hold numbers only
            return _from_numpy()(batch)
        return batch
    if isinstance(batch, Mapping):
        return {key: default_convert(value) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(default_convert(v) for v in batch))
    if isinstance(batch, tuple):
        return tuple(default_convert(v) for v in batch)
    if isinstance(batch, list):
        return [default_convert(v) for v in batch]
    return batch


def default_collate(samples):
    """Stack samples into NumPy arrays, then turn those into minidl Tensors."""
    return default_convert(numpy_collate(samples))
