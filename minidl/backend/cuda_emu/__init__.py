"""cuda-emu: minidl's own CUDA C kernels run on the CPU by an emulation harness.

The harness (cuda_emu.h + emu_runtime.h) defines the CUDA built-ins for g++; `EmuModule`
builds a kernel file with it and launches kernels like cupy.RawKernel; `EmuLoader` is the
module loader that `minidl.backend.cuda.launch.Launcher` uses for the `cuda-emu` device.
"""
from .build import KernelBuildError, cache_dir
from .loader import EmuLoader
from .module import EmuKernel, EmuModule, KernelFault, asan_environment, asan_runtime_loaded, current_order, schedule

__all__ = ["EmuModule", "EmuKernel", "EmuLoader", "KernelFault", "KernelBuildError", "schedule",
           "current_order", "asan_environment", "asan_runtime_loaded", "cache_dir"]


def emu_ops(versions: dict[str, int] | None = None, sanitize: bool | None = None):
    """The fused ops of the `cuda-emu` device: NumPy arrays in and out."""
    from minidl.backend.cuda.launch import Launcher
    from minidl.backend.cuda.ops import CudaKernelOps

    return CudaKernelOps(Launcher(EmuLoader(sanitize=sanitize), versions))


__all__.append("emu_ops")
