"""Peak memory of one call, measured two ways (the report says which is which):

* NumPy-side peak (tracemalloc): the most bytes allocated through Python's allocator hooks at
  once during the call, above what was allocated before it. NumPy reports its array buffers to
  tracemalloc, so for minidl on the CPU this is the peak of live temporaries and outputs.
  PyTorch's allocator does not report to tracemalloc, so this figure is minidl-only.
* PyTorch-side peak (torch.profiler's memory timeline): the same figure for PyTorch's own
  allocator -- the most bytes of tensors alive at once during the call, above those alive
  before. It reads a private profiler API, so it is None wherever that API moved.
* Resident-set peak growth (Linux): the call's peak RSS minus the RSS before it. The kernel's
  peak counter (VmHWM) is reset first by writing "5" to /proc/self/clear_refs. This sees every
  library alike, but only memory the process had to take from the OS: a call served from the
  allocator's free lists shows ~0. Without /proc it falls back to getrusage's lifetime peak,
  which only moves when the call sets a new record (reported then, else None).

Both run outside the timed repeats (tracemalloc slows allocation).
"""
from __future__ import annotations

import contextlib
import os
import resource
import sys
import tracemalloc
from pathlib import Path

MiB = 2 ** 20
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mib() -> float | None:
    """The resident set now (Linux), in MiB; None where /proc is missing."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _ru_maxrss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak   # macOS reports bytes


def rss_peak_growth(fn) -> float | None:
    """MiB the resident set grew to at its peak during fn(), above the RSS before it."""
    before = _status_kib("VmRSS")
    if before is not None and _reset_peak():
        fn()
        peak = _status_kib("VmHWM")
        return None if peak is None else max(0, peak - before) / 1024
    record = _ru_maxrss_kib()
    fn()
    grown = _ru_maxrss_kib() - record
    return grown / 1024 if grown > 0 else None


def tracemalloc_peak(fn) -> float:
    """MiB: peak of traced allocations during fn() above the traced total before it."""
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not already:
            tracemalloc.stop()
    return max(0, peak - start) / MiB


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ logging bypasses sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def torch_profiler_peak(fn) -> float | None:
    """MiB: peak of PyTorch tensor bytes alive at once during fn() (None if unavailable)."""
    try:
        from torch.profiler import ProfilerActivity, profile
        from torch.profiler import _memory_profiler as mp
        with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                                      record_shapes=True, with_stack=True) as prof:
            fn()
        current = peak = 0
        for _, action, _, size in mp.MemoryProfile(prof.profiler.kineto_results).timeline:
            if action == mp.Action.CREATE:
                current += size
            elif action == mp.Action.DESTROY:
                current -= size
            peak = max(peak, current)
        return peak / MiB
    except Exception:          # a private API: any failure means "not measurable here"
        return None


def measure(fn, side: str = "numpy") -> dict:
    """Peak memory of one call each way: 'numpy' (tracemalloc) or 'torch' (profiler), plus
    the resident-set peak growth."""
    out = {"rss_peak_mib": rss_peak_growth(fn)}
    if side == "numpy":
        out["numpy_peak_mib"] = tracemalloc_peak(fn)
    elif side == "torch":
        out["torch_peak_mib"] = torch_profiler_peak(fn)
    return out
