"""The two GPU-kernel devices.

* `cuda`: CuPy arrays on an NVIDIA GPU; plain elementwise/reduction/matmul work goes through
  CuPy (and cuBLAS), fused ops through our kernels in `kernels/*.cu` (cupy.RawModule).
* `cuda-emu`: NumPy arrays; the fused ops run the SAME `kernels/*.cu` sources through the CPU
  emulation harness (`minidl.backend.cuda_emu`). Everything else is the CPU's NumPy code.

Both share the launch code in `minidl.backend.cuda`; only the module loader and the array
module differ. A fused op that has no kernel yet falls back to the plain reference in
`minidl.backend.reference`, written against any array module.
"""
from __future__ import annotations

import numpy as np

from .device import Device, register_backend
from .fused_table import FusedTable


class CudaEmuBackend:
    name = "cuda-emu"
    xp = np
    is_gpu = False

    def __init__(self, dev: Device):
        from .cuda_emu.build import compiler_identity, KernelBuildError
        try:
            compiler_identity()
        except KernelBuildError as err:
            raise RuntimeError(f"device 'cuda-emu' cannot run here: {err}; use device='cpu'") from None
        self.device = Device("cuda-emu")

        def kernel_ops():
            from .cuda_emu import emu_ops
            return emu_ops()

        self.fused = FusedTable("cuda-emu", [kernel_ops])

    def asarray(self, data, np_dtype=None):
        return np.asarray(data, dtype=np_dtype)

    def to_numpy(self, arr):
        return arr

    def from_numpy(self, arr):
        return arr

    def synchronize(self) -> None:
        pass

    @staticmethod
    def matmul(a, b):
        return np.matmul(a, b)


class CudaBackend:
    name = "cuda"
    is_gpu = True

    def __init__(self, dev: Device):
        try:
            import cupy
        except ImportError as err:
            raise RuntimeError(
                "device 'cuda' needs CuPy and an NVIDIA GPU, but CuPy is not installed "
                f"({err}); install it with `pip install minidl[cuda]`, or use device='cpu' "
                "(or 'cuda-emu' to run the CUDA kernels on the CPU)") from None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as err:  # CUDARuntimeError without a driver or a device
            raise RuntimeError(f"device 'cuda' is not available: CuPy found no usable GPU ({err})") from None
        index = dev.index or 0
        if index >= count:
            raise RuntimeError(f"device 'cuda:{index}' does not exist: this machine has {count} GPU(s)")
        self.xp = cupy
        self.device = Device("cuda", index)
        self._cupy_device = cupy.cuda.Device(index)

        def kernel_ops():
            from .cuda.ops import cuda_ops
            return cuda_ops()

        self.fused = FusedTable(str(self.device), [kernel_ops])

    def asarray(self, data, np_dtype=None):
        with self._cupy_device:
            return self.xp.asarray(data, dtype=np_dtype)

    def to_numpy(self, arr):
        return self.xp.asnumpy(arr)

    def from_numpy(self, arr):
        with self._cupy_device:
            return self.xp.asarray(arr)

    def synchronize(self) -> None:
        self.xp.cuda.Device(self.device.index or 0).synchronize()

    def matmul(self, a, b):
        return self.xp.matmul(a, b)   # cuBLAS


register_backend("cuda-emu", CudaEmuBackend)
register_backend("cuda", CudaBackend)
