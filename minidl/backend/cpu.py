"""The CPU backend: NumPy arrays, with Numba kernels for the loops NumPy cannot vectorise."""
from __future__ import annotations

import numpy as np

from .device import Device, register_backend
from .fused_table import FusedTable


class CpuBackend:
    name = "cpu"
    xp = np
    is_gpu = False

    def __init__(self, dev: Device):
        self.device = dev
        self.fused = FusedTable("cpu", ["minidl.backend.cpu_kernels"])

    # conversions -----------------------------------------------------------------------
    def asarray(self, data, np_dtype=None):
        return np.asarray(data, dtype=np_dtype)

    def to_numpy(self, arr) -> np.ndarray:
        return arr

    def from_numpy(self, arr: np.ndarray):
        return arr

    def synchronize(self) -> None:
        pass


register_backend("cpu", CpuBackend)
