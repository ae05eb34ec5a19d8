"""The CPU backend: NumPy arrays, with Numba kernels for the loops NumPy cannot vectorise."""
from __future__ import annotations

import numpy as np

from . import cpu_pool
from .device import Device, register_backend
from .fused_table import FusedTable


def _keep_freed_memory() -> None:
    """Ask glibc's malloc to serve large arrays from its heap and keep freed memory.

    By default glibc returns every allocation above a (moving) threshold straight to the
    kernel with munmap, so the next training step's identically sized arrays are fresh pages
    that fault in one by one: on these machines a fresh multi-MB array cost up to 10x a write
    into reused memory. Raising the mmap threshold to its maximum (32 MiB) and the trim
    threshold to 1 GiB makes freed blocks reusable, like a deep-learning framework's caching
    allocator. Process-wide and glibc-only; set MINIDL_MALLOC_TUNING=0 to leave malloc alone.
    """
    import ctypes
    import os
    import sys
    if os.environ.get("MINIDL_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


class CpuBackend:
    name = "cpu"
    xp = np
    is_gpu = False

    def __init__(self, dev: Device):
        self.device = dev
        self.fused = FusedTable("cpu", ["minidl.backend.cpu_kernels"])
        _keep_freed_memory()

    # conversions -----------------------------------------------------------------------
    def asarray(self, data, np_dtype=None):
        return np.asarray(data, dtype=np_dtype)

    def to_numpy(self, arr) -> np.ndarray:
        return arr

    def from_numpy(self, arr: np.ndarray):
        return arr

    def synchronize(self) -> None:
        pass

    # the one product every layer needs ----------------------------------------------------
    @staticmethod
    def matmul(a, b):
        """a @ b on minidl's CPU threads, with NumPy's BLAS held at one (see cpu_pool.py)."""
        return cpu_pool.matmul(a, b)


register_backend("cpu", CpuBackend)
