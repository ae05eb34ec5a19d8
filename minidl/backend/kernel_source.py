"""Where the CUDA C sources live.

The same `.cu` files are compiled by NVRTC (real GPU), nvcc (compile gate) and g++
(the CPU emulation harness). In a checkout they sit in `<repo>/kernels/`; in an installed
wheel the build copies them to `minidl/kernels/`. Callers never guess: they ask here.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def kernels_dir() -> Path:
    """Return the folder holding the `*.cu` kernel sources, installed or from a checkout."""
    for candidate in (_PACKAGE_DIR / "kernels", _PACKAGE_DIR.parent / "kernels"):
        if candidate.is_dir() and any(candidate.glob("*.cu*")):
            return candidate
    raise FileNotFoundError(
        "minidl's CUDA sources were not found: looked in "
        f"{_PACKAGE_DIR / 'kernels'} (installed wheel) and {_PACKAGE_DIR.parent / 'kernels'} "
        "(source checkout). Reinstall minidl or run from a full checkout."
    )
