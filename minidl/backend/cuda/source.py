"""The exact text a GPU compiler sees for one kernel file: the prelude, then the file.

`#line` markers keep compiler messages pointing at `softmax.cu:42`. Used by the real-GPU
loader (cupy.RawModule) and by the compile gate, so both compile the same thing.
"""
from __future__ import annotations

from pathlib import Path

from minidl.backend.kernel_source import kernels_dir

PRELUDE_NAME = "prelude.cuh"


def kernel_files(directory: Path | None = None) -> list[Path]:
    """Every kernel family file (`*.cu`), sorted by name."""
    return sorted((directory or kernels_dir()).glob("*.cu"))


def gpu_source(path: Path, prelude: Path | None = None) -> str:
    path = Path(path)
    if prelude is None:  # beside the file, else the project's (for files kept elsewhere, e.g. tests)
        prelude = path.parent / PRELUDE_NAME
        if not prelude.exists():
            prelude = kernels_dir() / PRELUDE_NAME
    return (f'#line 1 "{prelude.name}"\n{prelude.read_text()}\n'
            f'#line 1 "{path.name}"\n{path.read_text()}')
