"""The fused ops that minidl's CUDA kernels implement, for the `cuda` and `cuda-emu` devices.

    from minidl.backend.cuda_emu import emu_ops
    ops = emu_ops()                     # NumPy arrays, kernels run by the CPU emulator
    y = ops.softmax_forward(x)          # the highest version of the ladder
    y = ops.softmax_forward(x, version=2, block=64)

Each family lives in its own mixin file beside this one; this class only joins them to a
Launcher (which holds the device's module loader and array module).
"""
from __future__ import annotations

from .launch import Launcher
from .matmul_ops import MatmulOps
from .norm_ops import NormOps
from .reduce_ops import ReduceOps
from .softmax_ops import SoftmaxOps


class CudaKernelOps(SoftmaxOps, NormOps, ReduceOps, MatmulOps):
    def __init__(self, launcher: Launcher):
        self.launcher = launcher
        self.xp = launcher.xp

    @property
    def device(self) -> str:
        return self.launcher.loader.name


def cuda_ops(versions: dict[str, int] | None = None) -> CudaKernelOps:
    """The ops of a real GPU (needs CuPy and a device)."""
    from .launch import CupyLoader

    return CudaKernelOps(Launcher(CupyLoader(), versions))
