"""The run's shared facts: mode, thread counts, PyTorch (or its absence), data, machine.

Thread counts decide speed more than anything else on 2 cores, so they are set once, before
NumPy or PyTorch start their pools (`pin_threads` must run before `import numpy`), and the
same count is given to every library. The report prints them.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
ROOT = BENCH_DIR.parent
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def pin_threads(n: int) -> None:
    """Give every thread pool n threads unless the user already chose (call before imports)."""
    for var in THREAD_VARS:
        os.environ.setdefault(var, str(n))
    os.environ.setdefault("MINIDL_BENCH_THREADS", str(n))


def import_torch(threads: int):
    """PyTorch with `threads` intra-op threads, or None when it is not installed."""
    if os.environ.get("MINIDL_BENCH_NO_TORCH") == "1":   # to rehearse a run without PyTorch
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 2 ** 20
    except (OSError, ValueError):
        pass
    return None


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions(torch=None) -> dict:
    import numpy
    import minidl
    v = {"python": platform.python_version(), "numpy": numpy.__version__,
         "minidl": minidl.__version__}
    try:
        import numba
        v["numba"] = numba.__version__
    except ImportError:
        v["numba"] = None
    v["torch"] = torch.__version__ if torch is not None else None
    return v


def thread_counts(torch=None) -> dict:
    counts = {var: os.environ.get(var) for var in THREAD_VARS}
    try:
        import numba
        counts["numba"] = numba.get_num_threads()
    except ImportError:
        pass
    if torch is not None:
        counts["torch"] = torch.get_num_threads()
        counts["torch_interop"] = torch.get_num_interop_threads()
    return counts


def blas_kernels() -> str | None:
    """The kernel set NumPy's OpenBLAS runs ("Haswell": AVX2, "SkylakeX": AVX-512, ...), read
    from the loaded library; None when NumPy's BLAS is not an OpenBLAS we can ask (or not on
    Linux). OPENBLAS_CORETYPE overrides OpenBLAS's own choice, and on an AVX-512 CPU the two
    differ 2x in GEMM speed, so a report without this fact cannot be compared with another."""
    import ctypes
    import numpy  # noqa: F401  (loads its OpenBLAS)
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


def machine() -> dict:
    return {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "memory_gib": _memory_gib(),
            "platform": platform.platform(), "git_commit": _git_commit(),
            "blas_kernels": blas_kernels(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE")}


def load_average() -> list | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


@dataclass
class Context:
    mode: str                                # quick | default | full
    threads: int
    torch: object = None                     # the torch module, or None
    references: object = None                # references.ReferenceStore
    progress: object = None                  # progress.Progress
    results_dir: Path = BENCH_DIR / "results"
    started: str = field(default_factory=lambda: datetime.datetime.now().isoformat(timespec="seconds"))

    @property
    def quick(self) -> bool:
        return self.mode == "quick"

    @property
    def full(self) -> bool:
        return self.mode == "full"

    @property
    def torch_label(self) -> str:
        return f"PyTorch {self.torch.__version__} (this run)" if self.torch else ""

    def log(self, message: str) -> None:
        if self.progress is not None:
            self.progress.log(message)
        else:
            print(message, file=sys.stderr)

    def meta(self) -> dict:
        return {"mode": self.mode, "started": self.started, "threads": self.threads,
                "thread_counts": thread_counts(self.torch), "versions": versions(self.torch),
                "machine": machine(), "load_average_at_start": load_average(),
                "minidl_data": os.environ.get("MINIDL_DATA"),
                "torch_available": self.torch is not None}
