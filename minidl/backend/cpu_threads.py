"""How many CPU threads minidl's ops use: `minidl.set_num_threads` / `get_num_threads`.

minidl runs its multi-threaded CPU work on threads of its own (`cpu_pool.py`: large GEMMs
split by rows, attention by (batch, head) pairs, the Winograd convolution by image chunks),
with NumPy's BLAS held at one thread while it does, because OpenBLAS's idle workers spin
after each threaded call and would fight minidl's threads for the cores. These two functions
set and read minidl's count, as `torch.set_num_threads` sets PyTorch's; NumPy code outside
minidl keeps its own BLAS setting.

The starting count is NumPy's BLAS thread count when minidl first needs it, so the
environment variables (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS) set it before
Python starts. Where NumPy's BLAS is not an OpenBLAS whose count can be held per call (MKL,
BLIS, OpenBLAS built with OpenMP), minidl keeps one thread of its own and these functions
read and set the BLAS thread count itself, through threadpoolctl, as before.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["set_num_threads", "get_num_threads"]

_found = {"looked": False, "blas": None}


def _numpy_blas():
    """threadpoolctl's controller of the BLAS library NumPy calls, or None when that cannot be
    told: no BLAS found, or several loaded of which none ships inside NumPy's own install
    (NumPy's wheels keep theirs in `numpy.libs` or `numpy/.dylibs`; another library may
    bring a BLAS of its own, which is not ours to change)."""
    if not _found["looked"]:
        from threadpoolctl import ThreadpoolController
        blas = ThreadpoolController().select(user_api="blas").lib_controllers
        numpy_dir = os.path.dirname(os.path.realpath(np.__file__))
        own = (numpy_dir + os.sep, numpy_dir + ".libs" + os.sep)
        inside = [c for c in blas if os.path.realpath(c.filepath).startswith(own)]
        if len(inside) == 1:
            _found["blas"] = inside[0]
        elif len(blas) == 1:
            _found["blas"] = blas[0]
        _found["looked"] = True
    return _found["blas"]


def _require_blas(what: str):
    blas = _numpy_blas()
    if blas is None:
        raise RuntimeError(
            f"{what}: cannot tell which BLAS library NumPy uses (threadpoolctl found "
            f"{_describe_found()}), so its thread count cannot be read or changed here; set "
            f"OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS before starting Python "
            f"instead")
    return blas


def _describe_found() -> str:
    from threadpoolctl import ThreadpoolController
    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    return ", ".join(os.path.basename(c.filepath) for c in libs) or "no BLAS library"


def get_num_threads() -> int:
    """The number of threads minidl's CPU ops use."""
    from . import cpu_pool
    if cpu_pool.available():
        return cpu_pool.num_threads()
    return int(_require_blas("get_num_threads").num_threads)


def set_num_threads(n: int) -> None:
    """Use `n` threads (n >= 1) for minidl's CPU ops from now on, as torch.set_num_threads.

    It sets minidl's own thread count; NumPy's BLAS setting for code outside minidl is left
    as it was (see the module docstring for the case where that cannot be done)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads: expected a positive int, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n}")
    from . import cpu_pool
    if cpu_pool.available():
        cpu_pool.set_threads(int(n))
    else:
        _require_blas("set_num_threads").set_num_threads(int(n))
