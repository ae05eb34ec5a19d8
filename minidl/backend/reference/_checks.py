"""Argument checks shared by the reference ops and their fast CPU versions.

Fused ops sit below autograd, so a wrong shape here would otherwise surface as a confusing
broadcasting result or a Numba crash. Every message names the op, the argument, what was
expected and what was given. The checks only look at shapes, dtypes and (for index arrays)
the range of values, so they cost microseconds.
"""
from __future__ import annotations

import numbers

FLOAT_DTYPES = ("float32", "float64")
_FLOAT_CHARS = "fd"  # dtype.char of float32 and float64: a cheap test (dtype.name builds a string)


def require_float(op: str, **arrays) -> None:
    """Each array (None skipped) is float32 or float64, and all share one dtype."""
    first_name, first_dtype = None, None
    for name, a in arrays.items():
        if a is None:
            continue
        if not (hasattr(a, "dtype") and hasattr(a, "shape")):
            raise TypeError(f"{op}: {name} must be an array, got {type(a).__name__}")
        if a.dtype.char not in _FLOAT_CHARS:
            raise TypeError(f"{op}: {name} must be a float32 or float64 array, "
                            f"got dtype {a.dtype}")
        if first_dtype is None:
            first_name, first_dtype = name, a.dtype
        elif a.dtype != first_dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype} but {first_name} has "
                            f"{first_dtype}; cast them to one dtype")


def require_rows(op: str, name: str, x) -> None:
    """x has a last axis with at least one element (the axis row-wise ops reduce over)."""
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"{op}: {name} must have shape (..., C) with C >= 1, "
                         f"got shape {tuple(x.shape)}")


def require_shape(op: str, name: str, a, expected, meaning: str) -> None:
    """a.shape == expected; `meaning` says where the expected shape comes from."""
    if a is not None and tuple(a.shape) != tuple(expected):
        raise ValueError(f"{op}: {name} must have shape {tuple(expected)} ({meaning}), "
                         f"got {tuple(a.shape)}")


def require_int_array(op: str, name: str, a) -> None:
    if not (hasattr(a, "dtype") and hasattr(a, "shape")):
        raise TypeError(f"{op}: {name} must be an integer array, got {type(a).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must hold integers (e.g. int64), got dtype {a.dtype}")


def require_probability(op: str, name: str, p) -> None:
    """p is a real number in [0, 1] (dropout rate, label smoothing)."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: {name} must be a number in [0, 1], got {p!r}")


def require_class_targets(op: str, target, num_classes: int, ignore_index: int) -> None:
    """Every target is a class in [0, num_classes) or equals ignore_index."""
    if target.size == 0:
        return
    # the common case in two reductions: every target a class (a mask of the bad ones below
    # costs five passes over the targets, ~4 us of a 4096-row cross-entropy's ~90)
    if int(target.min()) >= 0 and int(target.max()) < num_classes:
        return
    bad = ((target < 0) | (target >= num_classes)) & (target != ignore_index)
    if bool(bad.any()):
        position = int(bad.nonzero()[0][0])
        raise IndexError(f"{op}: target[{position}] = {int(target[position])} is not a class "
                         f"of logits with {num_classes} columns (expected 0..{num_classes - 1} "
                         f"or ignore_index={ignore_index})")


def require_indices(op: str, indices, num_embeddings: int) -> None:
    """Every index is a row of a table with num_embeddings rows."""
    if indices.size == 0:
        return
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= num_embeddings:
        culprit = low if low < 0 else high
        raise IndexError(f"{op}: index {culprit} is out of range for a table with "
                         f"{num_embeddings} rows (expected 0..{num_embeddings - 1})")


def normalise_padding_idx(op: str, padding_idx, num_embeddings: int):
    """PyTorch's rule: padding_idx may be negative (counted from the end); None means none."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral) \
            or not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{op}: padding_idx must be None or an integer in "
                         f"[{-num_embeddings}, {num_embeddings - 1}], got {padding_idx!r}")
    return int(padding_idx) % num_embeddings


def require_gelu_approximate(op: str, approximate) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{op}: approximate must be 'none' (exact, erf) or 'tanh', "
                         f"got {approximate!r}")
