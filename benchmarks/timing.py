"""Honest timing helpers shared by the benchmark scripts.

* interleave: run candidate A, then B, then A, ... so slow drifts of the machine hit both;
* report medians with min-max, and ratios of medians measured in the same run;
* read the kernel's CPU pressure (PSI, /proc/pressure/cpu) around each repeat and flag repeats
  that waited for a CPU, because on 2 shared cores another process can quantise a 0.3 ms op
  into an 8 ms one;
* before each repeat, wait until no thread of this process is still burning CPU (`settle`).
  Thread pools spin after their work: OpenBLAS's workers keep polling for ~0.1 s after a
  GEMM, so a PyTorch repeat started right after minidl's GEMMs shared the 2 cores with them
  and ran up to 4x slower (conv2d fwd+bwd: 11.2 ms 10 ms after our repeat, 2.66 ms after
  0.1 s). Each library is timed as it runs in a process of its own.
"""
from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path

_PSI = Path("/proc/pressure/cpu")


def cpu_stall_us() -> float | None:
    """Total microseconds some task waited for a CPU since boot (None where PSI is absent)."""
    try:
        for line in _PSI.read_text().splitlines():
            if line.startswith("some"):
                return float(line.split("total=")[1])
    except (OSError, IndexError, ValueError):
        return None
    return None


class Statement:
    """A candidate given as source text, timed the way `timeit` (and PyTorch's
    `torch.utils.benchmark.Timer`) time one: the statement is compiled into the timing loop.

    For sub-microsecond work the harness itself shows: calling a candidate function costs
    ~35-45 ns on CPython 3.11 here, counted in every library's time alike, which pulls ratios
    towards 1. Inside the compiled loop a repeat costs only its `for` step (~8 ns). Garbage
    collection stays as the caller left it (timeit switches it off; an engine that makes
    garbage must pay for collecting it).

    Calling the object runs the statement once (warm-up)."""

    def __init__(self, stmt: str, namespace: dict):
        self.stmt = stmt
        self.namespace = namespace
        source = ("def _timed_loop(_iterations, _clock):\n"
                  "    _t0 = _clock()\n"
                  "    for _ in _iterations:\n"
                  f"        {stmt}\n"
                  "    return _clock() - _t0\n")
        scope = {}
        exec(compile(source, f"<statement {stmt!r}>", "exec"), namespace, scope)
        self._timed_loop = scope["_timed_loop"]

    def seconds(self, number: int) -> float:
        """Total seconds for `number` runs of the statement."""
        return self._timed_loop(itertools.repeat(None, number), time.perf_counter)

    def __call__(self):
        self.seconds(1)

    def __repr__(self) -> str:
        return f"Statement({self.stmt!r})"


def time_once(fn, number: int) -> tuple[float, float | None]:
    """Seconds per call over `number` calls, and the CPU-stall microseconds seen meanwhile.
    `fn` is a callable or a `Statement`."""
    s0 = cpu_stall_us()
    if isinstance(fn, Statement):
        dt = fn.seconds(number) / number
    else:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = (time.perf_counter() - t0) / number
    s1 = cpu_stall_us()
    return dt, (None if s0 is None or s1 is None else s1 - s0)


def settle(max_s: float = 0.5, step_s: float = 0.01) -> float:
    """Sleep until this process's threads are idle: a `step_s` sleep during which the whole
    process (every thread: CLOCK_PROCESS_CPUTIME_ID) used under 10 % of one CPU. Gives up
    after `max_s`. Returns the seconds waited."""
    t0 = time.perf_counter()
    while True:
        c0 = time.process_time()
        time.sleep(step_s)
        if time.process_time() - c0 < 0.1 * step_s or time.perf_counter() - t0 >= max_s:
            return time.perf_counter() - t0


def calibrate(fn, target_s: float = 0.05) -> int:
    """How many calls make one repeat last about target_s."""
    n = 1
    while True:
        dt, _ = time_once(fn, n)
        if dt * n >= target_s / 4 or n >= 1 << 20:
            return max(1, int(n * target_s / max(dt * n, 1e-9)))
        n *= 4


def compare(candidates: dict, repeats: int = 7, target_s: float = 0.05, warmup: int = 2) -> dict:
    """Time several callables interleaved. Returns {name: stats}, each with median/min/max
    seconds per call, every sample, and how many repeats waited for a CPU."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    numbers = {name: calibrate(fn, target_s) for name, fn in candidates.items()}
    samples = {name: [] for name in candidates}
    stalled = {name: 0 for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            settle()  # the previous candidate's thread pools are asleep again
            dt, stall = time_once(fn, numbers[name])
            samples[name].append(dt)
            if stall is not None and stall > 0.05 * dt * numbers[name] * 1e6:
                stalled[name] += 1
    return {name: {"median": statistics.median(s), "min": min(s), "max": max(s), "samples": s,
                   "calls_per_repeat": numbers[name], "stalled_repeats": stalled[name]}
            for name, s in samples.items()}


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
