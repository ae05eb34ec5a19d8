"""The launch limits of the GPUs minidl targets (sm_80 / sm_90), checked on the host.

A real GPU rejects a bad launch with a terse "invalid configuration argument"; the emulator
would happily run it. Checking here gives both paths the same, explicit error.
"""
from __future__ import annotations

MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK_DIM = (1024, 1024, 64)
MAX_GRID_DIM = (2**31 - 1, 65535, 65535)
DEFAULT_DYNAMIC_SMEM = 48 * 1024        # more needs cudaFuncAttributeMaxDynamicSharedMemorySize
MAX_OPT_IN_DYNAMIC_SMEM = 227 * 1024     # H100 per-block opt-in maximum (A100: 163 KiB)


def as_dim3(value, what: str) -> tuple[int, int, int]:
    dims = (value,) if isinstance(value, int) else tuple(value)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, int) for d in dims):
        raise ValueError(f"{what} must be an int or a tuple of 1-3 ints, got {value!r}")
    return tuple(dims) + (1,) * (3 - len(dims))


def check_launch(kernel: str, grid, block, shared_mem: int, max_dynamic_shared: int) -> tuple:
    """Validate a launch; returns (grid3, block3). `max_dynamic_shared` is the opt-in limit."""
    grid3, block3 = as_dim3(grid, "grid"), as_dim3(block, "block")
    threads = block3[0] * block3[1] * block3[2]
    if min(block3) < 1 or threads > MAX_THREADS_PER_BLOCK or any(b > m for b, m in zip(block3, MAX_BLOCK_DIM)):
        raise ValueError(
            f"kernel {kernel}: block {block3} has {threads} threads; a block holds 1 to "
            f"{MAX_THREADS_PER_BLOCK} threads with dimensions at most {MAX_BLOCK_DIM}"
        )
    if min(grid3) < 1 or any(g > m for g, m in zip(grid3, MAX_GRID_DIM)):
        raise ValueError(f"kernel {kernel}: grid {grid3} must be >= 1 and at most {MAX_GRID_DIM} per axis")
    if shared_mem < 0:
        raise ValueError(f"kernel {kernel}: shared_mem must be >= 0 bytes, got {shared_mem}")
    limit = max(DEFAULT_DYNAMIC_SMEM, max_dynamic_shared)
    if shared_mem > limit:
        if shared_mem > MAX_OPT_IN_DYNAMIC_SMEM:
            raise ValueError(
                f"kernel {kernel}: {shared_mem} bytes of dynamic shared memory exceed the "
                f"{MAX_OPT_IN_DYNAMIC_SMEM}-byte maximum of an H100 block"
            )
        raise ValueError(
            f"kernel {kernel}: {shared_mem} bytes of dynamic shared memory exceed the default "
            f"{DEFAULT_DYNAMIC_SMEM} bytes; opt in first by setting the kernel's "
            f"max_dynamic_shared_size_bytes to at least {shared_mem}"
        )
    return grid3, block3
