"""Launch a registered kernel by name. The only device-specific piece is the module loader:

  * `CupyLoader` (device `cuda`): cupy.RawModule over the prelude + kernel file, CuPy arrays.
  * `minidl.backend.cuda_emu.EmuLoader` (device `cuda-emu`): the CPU emulator, NumPy arrays.

A loader has `xp` (its array module), `name`, and `module(file_name)` returning an object whose
`get_function(name)` gives a kernel callable as `kernel(grid, block, args, shared_mem=0)` with
a settable `max_dynamic_shared_size_bytes` — the interface of cupy.RawKernel.
"""
from __future__ import annotations

import threading

import numpy as np

from minidl.backend.kernel_source import kernels_dir

from .launch_limits import DEFAULT_DYNAMIC_SMEM, check_launch
from .registry import KernelVersion, Problem, ShapeLimitError, lookup, versions
from .signatures import check_arguments, parse_kernels
from .source import gpu_source

DTYPE_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def kernel_name(base: str, dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype not in DTYPE_SUFFIX:
        raise TypeError(f"kernel {base}: expected float32 or float64 data, got {dtype}")
    return f"{base}_{DTYPE_SUFFIX[dtype]}"


class Launcher:
    """Turns (op, version, problem, arrays) into a checked launch on one device."""

    def __init__(self, loader, versions: dict[str, int] | None = None):
        self.loader = loader
        self.xp = loader.xp
        self.versions = dict(versions or {})  # op -> chosen version; default: the highest

    def entry(self, op: str, version: int | None = None) -> KernelVersion:
        return lookup(op, version if version is not None else self.versions.get(op))

    def best_entry(self, op: str, problem: Problem, block: int | None = None,
                   version: int | None = None) -> KernelVersion:
        """The version asked for (or chosen for this launcher), else the highest version whose
        shape limits accept `problem`: an unusual shape falls back to a plainer kernel instead
        of failing. An explicit version is returned as is (its limits are checked at launch)."""
        chosen = version if version is not None else self.versions.get(op)
        if chosen is not None:
            return lookup(op, chosen)
        for candidate in reversed(versions(op)):
            entry = lookup(op, candidate)
            try:
                entry.check(problem, entry.default_block if block is None else block)
            except ShapeLimitError:
                continue
            return entry
        return lookup(op)  # none fits: launching the best one raises its limit error

    def kernel(self, entry: KernelVersion, index: int, dtype):
        return self.loader.module(entry.file).get_function(kernel_name(entry.kernels[index], dtype))

    def run(self, entry: KernelVersion, problem: Problem, dtype, args, block: int | None = None,
            index: int = 0, launch=None) -> None:
        """Check the version's shape limits, then launch its `index`-th kernel."""
        block = entry.default_block if block is None else block
        entry.check(problem, block)
        launch = launch or entry.launch(problem, block)
        kernel = self.kernel(entry, index, dtype)
        if launch.shared_mem > DEFAULT_DYNAMIC_SMEM:
            kernel.max_dynamic_shared_size_bytes = launch.shared_mem  # explicit opt-in
        kernel(launch.grid, launch.block, tuple(args), shared_mem=launch.shared_mem)


class _CheckedRawKernel:
    """A cupy.RawKernel whose arguments and launch are checked like the emulator's."""

    def __init__(self, raw, signature):
        self._raw = raw
        self.signature = signature
        self.name = signature.name

    @property
    def max_dynamic_shared_size_bytes(self) -> int:
        return self._raw.max_dynamic_shared_size_bytes

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, value: int) -> None:
        self._raw.max_dynamic_shared_size_bytes = value

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        grid3, block3 = check_launch(self.name, grid, block, shared_mem, self.max_dynamic_shared_size_bytes)
        check_arguments(self.signature, tuple(args))
        self._raw(grid3, block3, tuple(args), shared_mem=shared_mem)


class _CupyModule:
    def __init__(self, path):
        import cupy

        source = gpu_source(path)
        self.signatures = parse_kernels(path.read_text())
        self._raw = cupy.RawModule(code=source, options=("--std=c++17",), name_expressions=None)
        self._kernels = {}

    def get_function(self, name: str):
        if name not in self._kernels:
            if name not in self.signatures:
                raise KeyError(f"no extern \"C\" __global__ kernel {name!r}; have {sorted(self.signatures)}")
            self._kernels[name] = _CheckedRawKernel(self._raw.get_function(name), self.signatures[name])
        return self._kernels[name]


class CupyLoader:
    """Loader of the real `cuda` device: kernels compiled by NVRTC through cupy.RawModule."""

    name = "cuda"

    def __init__(self, directory=None):
        import cupy

        self.xp = cupy
        self.directory = directory
        self._modules = {}
        self._lock = threading.Lock()

    def module(self, file_name: str):
        with self._lock:
            if file_name not in self._modules:
                self._modules[file_name] = _CupyModule((self.directory or kernels_dir()) / file_name)
            return self._modules[file_name]
