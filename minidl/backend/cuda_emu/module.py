"""Load a kernel file into the CPU emulator and launch its kernels like cupy.RawKernel.

    module = EmuModule(kernels_dir() / "softmax.cu")
    kernel = module.get_function("softmax_fwd_v1_f32")
    kernel((blocks,), (threads,), (x, y, np.int64(rows), np.int32(cols)), shared_mem=0)

Arrays are NumPy arrays: the kernel reads and writes their memory directly. The call order
of blocks and threads is forward by default; `schedule("reverse")` (or MINIDL_EMU_ORDER=
reverse) runs the last block and the last thread first, which exposes races that the forward
order hides. With `sanitize=True` (or MINIDL_EMU_SANITIZE=address) the file is built with
AddressSanitizer; the Python process must then have been started with libasan preloaded,
see `asan_environment()`.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import threading
from pathlib import Path

import numpy as np

from minidl.backend.cuda.launch_limits import check_launch
from minidl.backend.cuda.signatures import Signature, check_arguments

from .build import build

_ORDERS = ("forward", "reverse")
_order = threading.local()
# The emulator keeps its state in globals of each library, and static __shared__ variables
# are per library too: launches are serialised.
_launch_lock = threading.Lock()


class KernelFault(RuntimeError):
    """A kernel misbehaved in the emulator: deadlock, divergent barrier, bad warp mask ..."""


def current_order() -> str:
    order = getattr(_order, "value", None) or os.environ.get("MINIDL_EMU_ORDER", "forward")
    if order not in _ORDERS:
        raise ValueError(f"MINIDL_EMU_ORDER must be one of {_ORDERS}, got {order!r}")
    return order


@contextlib.contextmanager
def schedule(order: str):
    """Run the launches inside the block in `order` ('forward' or 'reverse')."""
    if order not in _ORDERS:
        raise ValueError(f"schedule order must be one of {_ORDERS}, got {order!r}")
    previous = getattr(_order, "value", None)
    _order.value = order
    try:
        yield
    finally:
        _order.value = previous


def asan_runtime_loaded() -> bool:
    return hasattr(ctypes.CDLL(None), "__asan_init")


def asan_environment(base: dict | None = None) -> dict:
    """Environment for a child Python process that may load AddressSanitizer builds."""
    env = dict(os.environ if base is None else base)
    libs = [subprocess.run(["g++", f"-print-file-name={lib}"], capture_output=True, text=True,
                           check=True).stdout.strip() for lib in ("libasan.so", "libstdc++.so")]
    env["LD_PRELOAD"] = ":".join(libs)
    # CPython's allocator "leaks" by design; fibers make stack-use-after-return checks noisy.
    env["ASAN_OPTIONS"] = "detect_leaks=0:detect_stack_use_after_return=0:abort_on_error=0"
    env["MINIDL_EMU_SANITIZE"] = "address"
    return env


class EmuKernel:
    """One `extern "C" __global__` function; called as kernel(grid, block, args, shared_mem=0)."""

    def __init__(self, module: "EmuModule", signature: Signature, entry):
        self.module = module
        self.signature = signature
        self.name = signature.name
        self._entry = entry
        # Same attribute as cupy.RawKernel: the opt-in for > 48 KiB of dynamic shared memory.
        self.max_dynamic_shared_size_bytes = 0

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        args = tuple(args)
        grid3, block3 = check_launch(self.name, grid, block, shared_mem, self.max_dynamic_shared_size_bytes)
        check_arguments(self.signature, args)
        cells = []
        for param, value in zip(self.signature.params, args):
            if param.pointer:
                cells.append(ctypes.c_void_p(value.ctypes.data))
            else:
                cells.append(np.ctypeslib.as_ctypes_type(param.dtype)(value.item()))
        pointers = (ctypes.c_void_p * max(1, len(cells)))(*[ctypes.addressof(c) for c in cells])
        dims = (ctypes.c_uint * 6)(*grid3, *block3)
        reverse = 1 if current_order() == "reverse" else 0
        with _launch_lock:
            status = self._entry(dims, ctypes.c_ulonglong(shared_mem), ctypes.c_int(reverse), pointers)
            if status != 0:
                message = self.module._last_error().decode(errors="replace")
                raise KernelFault(f"{message}\n  (kernel {self.name}, grid {grid3}, block {block3}, "
                                  f"{current_order()} schedule)")

    def __repr__(self) -> str:
        return f"<EmuKernel {self.name} from {self.module.path.name}>"


class EmuModule:
    """A kernel file built for the emulator (the analogue of cupy.RawModule)."""

    def __init__(self, path, prelude=None, sanitize: bool | None = None):
        self.path = Path(path)
        if prelude is None:
            prelude = self.path.parent / "prelude.cuh"
            if not prelude.exists():
                from minidl.backend.kernel_source import kernels_dir
                prelude = kernels_dir() / "prelude.cuh"
        self.prelude = Path(prelude)
        if sanitize is None:
            sanitize = os.environ.get("MINIDL_EMU_SANITIZE", "") == "address"
        if sanitize and not asan_runtime_loaded():
            raise RuntimeError(
                "AddressSanitizer builds need the ASan runtime loaded before Python starts: run "
                "LD_PRELOAD=\"$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libstdc++.so)\" "
                "ASAN_OPTIONS=detect_leaks=0 python ... (or use minidl.backend.cuda_emu.asan_environment())"
            )
        self.sanitize = sanitize
        so_path, self.signatures = build(self.path, self.prelude, sanitize=sanitize)
        self._lib = ctypes.CDLL(str(so_path))
        self._last_error = self._lib.minidl_emu_last_error
        self._last_error.restype = ctypes.c_char_p
        self._kernels: dict[str, EmuKernel] = {}

    def get_function(self, name: str) -> EmuKernel:
        if name not in self._kernels:
            if name not in self.signatures:
                raise KeyError(f"{self.path.name} has no extern \"C\" __global__ kernel {name!r}; "
                               f"it has {sorted(self.signatures)}")
            entry = getattr(self._lib, f"minidl_emu_launch_{name}")
            entry.restype = ctypes.c_int
            entry.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.c_ulonglong, ctypes.c_int,
                              ctypes.POINTER(ctypes.c_void_p)]
            self._kernels[name] = EmuKernel(self, self.signatures[name], entry)
        return self._kernels[name]
