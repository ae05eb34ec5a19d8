"""Pick the array module (numpy or cupy) that owns some arrays.

The reference ops are written once against the NumPy API and run unchanged on CuPy arrays,
because CuPy mirrors that API. Each op asks `get_xp(x)` which module to call.
"""
from __future__ import annotations

import sys

import numpy


def get_xp(*arrays):
    """Return `cupy` if any of `arrays` is a CuPy array, else `numpy`. `None`s are skipped.

    CuPy is optional. If it was never imported, no CuPy array can exist, so we answer `numpy`
    without importing it (importing CuPy costs a noticeable fraction of a second).
    """
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return numpy
    return cupy.get_array_module(*(a for a in arrays if a is not None))
