"""Input checks shared by the host wrappers: the right array type, a float dtype, contiguity,
and the device address of an array (for alignment checks and address tables)."""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_input(xp, x, op: str, what: str):
    """Return `x` as a C-contiguous float32/float64 array of the backend, or raise."""
    if not isinstance(x, xp.ndarray):
        raise TypeError(f"{op}: {what} must be a {xp.__name__}.ndarray on this device, got {type(x).__module__}.{type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: {what} must be float32 or float64, got {x.dtype}")
    return x if x.flags.c_contiguous else xp.ascontiguousarray(x).reshape(x.shape)


def same_shape_and_dtype(op: str, reference, reference_name: str, other, other_name: str) -> None:
    if other.shape != reference.shape:
        raise ValueError(f"{op}: {other_name} must have the shape of {reference_name} {tuple(reference.shape)}, got {tuple(other.shape)}")
    if other.dtype != reference.dtype:
        raise TypeError(f"{op}: {other_name} must have the dtype of {reference_name} ({reference.dtype}), got {other.dtype}")


def rows_cols(x) -> tuple[int, int]:
    """View of the last axis as (rows, cols); a 0-d array is one row of one column."""
    cols = x.shape[-1] if x.ndim else 1
    rows = x.size // cols if cols else 0
    return rows, cols


def device_address(a) -> int:
    """Address of an array's first element: NumPy (cuda-emu) or CuPy (cuda)."""
    return a.data.ptr if hasattr(a.data, "ptr") else a.ctypes.data


def all_aligned(*arrays, boundary: int = 16) -> bool:
    """True when every array (None skipped) starts on a `boundary`-byte address."""
    return all(device_address(a) % boundary == 0 for a in arrays if a is not None)
