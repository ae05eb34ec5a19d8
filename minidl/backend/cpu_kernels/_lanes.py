"""8-lane vector pointers for Numba intrinsics (used by conv.py and winograd.py).

Some copies are too short or too irregular for LLVM's loop vectoriser (a 13-float image row,
an 8x8 transpose). For those, an `@intrinsic` emits the vector loads, stores and shuffles
itself; these two helpers give it a pointer to arr[index] typed as an 8-lane vector, and
check that an array argument is one it can take.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils

LANES = 8   # 8 floats = 32 bytes (float64: 64 bytes); Zen 4 runs 512-bit ops as two halves


def lane_pointer(context, builder, arr_ty, arr_val, index):
    """Pointer to arr[index] (1-D C-contiguous array), typed as a pointer to an 8-lane vector.

    No bounds check: the caller guarantees that all 8 lanes lie inside the array.
    """
    arr = context.make_array(arr_ty)(context, builder, arr_val)
    ptr = cgutils.get_item_pointer(context, builder, arr_ty, arr, [index], wraparound=False,
                                   boundscheck=False)
    vec = ir.VectorType(context.get_value_type(arr_ty.dtype), LANES)
    return builder.bitcast(ptr, vec.as_pointer())


def is_flat_float(a):
    """True for the Numba type of a 1-D C-contiguous float array."""
    return (isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C"
            and isinstance(a.dtype, types.Float))
