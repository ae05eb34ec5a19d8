"""minidl's own CPU threads, with NumPy's BLAS held at one thread while minidl works.

Why minidl splits its work itself instead of letting OpenBLAS thread each GEMM (measured on
2 cores, float32):

* Attention and the Winograd convolution make hundreds of small GEMM calls (a (128, 32)
  block per (batch, head) pair; 36 products per chunk of images) between serial Numba passes.
  OpenBLAS splits each small GEMM over its threads or runs it on one; either way the Numba
  passes in between use one core. Dealt out to two threads by (batch, head) pairs or by image
  chunks, whole, the same code ran causal attention (32, 4, 128, 32) forward + backward in
  5.4 ms instead of 9.7, and the MNIST CNN's 3x3 convolution in 1.7 ms instead of 2.3.
* A GEMM split into one block per thread runs within 0-10 % of OpenBLAS's own two threads
  ((4096, 128) @ (128, 384): 1.51 ms against 1.48; benchmarks/README.md has more sizes).
* The two kinds of thread cannot be mixed: OpenBLAS's idle workers keep spinning for tens
  of milliseconds after each threaded call, so a pool of ours started meanwhile shares the
  cores with them (that attention after one 2-thread GEMM: 13.4 ms; with BLAS held at one
  thread: 8.0 ms, the GEMM included).

So every BLAS call minidl makes on the CPU runs inside `blas_held()` (NumPy's OpenBLAS at one
thread; the count the user set is put back afterwards, so NumPy code outside minidl keeps
its own setting), and work big enough to share goes through `run` or `matmul`.

The pool: `num_threads() - 1` worker threads, started on first use (and again in a forked
child, which inherits no threads). The calling thread does the first share itself. A
hand-off costs a few microseconds (see "the hand-off" below), so a GEMM of a few million
multiply-adds is worth splitting. One parallel region runs at a time: a region opened while
another runs (from another user thread, or from inside a task) runs its tasks one after
another on its own thread, which is always correct.

Without an OpenBLAS whose thread count can be set per call (another BLAS, or OpenBLAS built
with OpenMP), the pool stays at one thread and the BLAS threads itself as it always did.
"""
from __future__ import annotations

import ctypes
import os
import threading
import time

import numpy as np

__all__ = ["available", "num_threads", "set_threads", "blas_held", "run", "shares", "split_range",
           "matmul"]

# A GEMM of fewer multiply-adds runs whole on the calling thread (~80 us of work at the ~50 G
# multiply-adds per second one thread does here): a split's fixed costs, a few us of Python
# to set it up and ~2 us of hand-off, would take most of what the second thread saves.
PARALLEL_MIN_MACS = 4 << 20
PARALLEL_MIN_ROWS = 16   # a share of a split GEMM has at least this many rows (or columns)
# A 2-D product with fewer rows than this (and than columns) is split by columns, else by
# rows (see _split_2d). Measured MLP steps: batch 64, columns 1.05-1.07 ms against rows
# 1.09-1.11; batch 256, rows 2.93 against columns 3.6-3.7.
COLUMN_SPLIT_MAX_ROWS = 128
# OpenBLAS runs a GEMM of at most 65536 * 4 multiply-adds on the calling thread whatever its
# thread count (its SMP threshold; checked here: after such GEMMs no worker of its woke and
# spun). Those skip the hold, whose four C calls (~5 us with the lock) cost as much as the
# product itself: an MLP step makes three such GEMMs per layer stack.
OPENBLAS_SERIAL_MACS = 65536 * 4


# ---- NumPy's BLAS thread count -------------------------------------------------------------

class _Blas:
    """NumPy's OpenBLAS thread count, set and read through its own C functions (~0.2 us a
    call; threadpoolctl's route costs microseconds). `setter` is None when that is not
    possible."""

    def __init__(self):
        self.looked = False
        self.setter = self.getter = None
        self.sgemm = self.dgemm = None   # CBLAS GEMMs as ctypes functions (see _handoff.py)
        self.first_count = 1     # the count found on first look, before anything held it
        self.depth = 0           # nested blas_held() calls in progress (any thread)
        self.saved = None        # the count to put back when the outermost one ends
        self.lock = threading.Lock()

    def find(self):
        if self.looked:
            return
        self.looked = True
        from .cpu_threads import _numpy_blas
        try:
            ctrl = _numpy_blas()
        except Exception:      # threadpoolctl missing or confused: leave BLAS alone
            return
        if ctrl is None or ctrl.internal_api != "openblas" or \
                getattr(ctrl, "threading_layer", None) != "pthreads":
            return   # OpenMP OpenBLAS counts threads per calling thread; MKL, BLIS: not ours
        for prefix in ("", "scipy_"):
            for suffix in ("", "64_", "_64"):
                setter = getattr(ctrl.dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
                getter = getattr(ctrl.dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    self.setter, self.getter = setter, getter
                    self.first_count = max(1, int(getter()))
                    self._find_gemms(ctrl.dynlib, prefix, suffix)
                    return

    def _find_gemms(self, dynlib, prefix, suffix):
        """cblas_sgemm / cblas_dgemm with the same affixes. A 64 suffix means 64-bit integer
        arguments (NumPy's own OpenBLAS is built so), none means 32-bit."""
        index = ctypes.c_int64 if "64" in suffix else ctypes.c_int32
        ptr = ctypes.c_int64   # pointers passed as 64-bit integers (see _handoff.py)
        for name, real in (("sgemm", ctypes.c_float), ("dgemm", ctypes.c_double)):
            try:
                address = getattr(dynlib, f"{prefix}cblas_{name}{suffix}")
            except AttributeError:
                return
            prototype = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                         index, index, index, real, ptr, index, ptr, index,
                                         real, ptr, index)
            setattr(self, name, prototype(ctypes.cast(address, ctypes.c_void_p).value))


_BLAS = _Blas()


class blas_held:
    """`with blas_held():` NumPy's BLAS runs on one thread inside the block (see the module
    docstring); the count it had is restored when the outermost such block ends."""

    __slots__ = ()

    def __enter__(self):
        b = _BLAS
        if not b.looked:
            b.find()
        if b.setter is None:
            return self
        with b.lock:
            if b.depth == 0:
                b.saved = b.getter()
                if b.saved != 1:
                    b.setter(1)
            b.depth += 1
        return self

    def __exit__(self, *exc):
        b = _BLAS
        if b.setter is None:
            return False
        with b.lock:
            b.depth -= 1
            if b.depth == 0 and b.saved != 1:
                b.setter(b.saved)
        return False


# ---- the pool ------------------------------------------------------------------------------
#
# The hand-off. Each worker has two int64 flags in shared arrays: `posted[i]`, the number of
# the last task given to it, and `finished[i]`, the number of the last task it completed. A
# waiting thread watches the flag in a Numba loop with the GIL released (`_handoff.py`), so
# the other thread's store is seen within a microsecond or two. Sleeping on a lock instead
# cost ~20 us per wake-up here (the sleeper's vCPU halts and the host must run it again). A
# GEMM task is run by the worker inside that Numba loop, GIL-free from post to finish; any
# other task is a Python callable the worker returns to Python to run.
#
# Idle, a worker spins for IDLE_SPIN_US after its last task, as OpenBLAS's own workers do
# (~0.1 s): in a training loop the next task always comes sooner, so the worker never stops
# running, and Linux keeps two running threads on two vCPUs. With a 0.3 ms spin, an MLP
# step (batch 64, repeats separated by sleeps) took 1.22-1.33 ms instead of 1.10-1.20: the
# worker stopped between steps and was put back on the caller's vCPU. Then it naps: it
# looks for a task every NAP_US for NAP_MS (a long pause: data loading, evaluation). Only
# then does it sleep until post() wakes it. The naps are there because of how Linux places a
# woken thread: next to the thread that woke it, if that one looks about to sleep. Woken by
# the caller, the worker landed on the caller's vCPU, and the two then shared one vCPU until
# the load balancer moved one away, milliseconds later (an MLP step in the benchmark suite,
# whose repeats sleep in between). A nap ends on a timer, which leaves the worker where it
# was. A worker that finds itself on the caller's CPU all the same (after a nap or a sleep,
# or after any GEMM: `serve` asks the kernel which CPU it is on, ~20 ns) moves away
# (`_step_aside`).
IDLE_SPIN_US = 100_000
NAP_US = 200
NAP_MS = 200
WAIT_SPIN_US = 5000     # the caller, waiting for the other shares of its own region


def _handoff():
    from .cpu_kernels import _handoff   # late: the kernels' package imports this module
    return _handoff


class _Kernels:
    """The Numba side of the hand-off, compiled on first use."""
    spin_until = gemm = serve = None
    polls_idle = polls_wait = 0

    @classmethod
    def load(cls):
        if cls.spin_until is None:
            h = _handoff()
            if _BLAS.sgemm is not None and _BLAS.dgemm is not None:
                cls.gemm, cls.serve = h.make_gemm_kernels(_BLAS.sgemm, _BLAS.dgemm, _GETCPU)
            cls.polls_idle = IDLE_SPIN_US * 1000 // h.POLL_NS
            cls.polls_wait = WAIT_SPIN_US * 1000 // h.POLL_NS
            cls.spin_until = h.spin_until
        return cls


class _Worker:
    """One thread running the tasks posted to it. A Python task's result, or the exception it
    raised, is left in `self.outcome` as (True, result) or (False, exception)."""

    def __init__(self, pool, index):
        self.pool, self.index = pool, index
        self.task = self.outcome = None
        self.sleeping = False
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"minidl-cpu-{index + 1}",
                                       daemon=True)
        self.thread.start()

    def post(self, number, task=None, gemm_params=None):
        """Give the worker task `number`: a Python callable, or a GEMM's parameter row."""
        pool, i = self.pool, self.index
        if gemm_params is not None:
            pool.params[i] = gemm_params
        else:
            self.task = task
            pool.params[i, 0] = _handoff().KIND_PYTHON
        pool.caller_cpu[0] = _current_cpu()
        pool.posted[i] = number
        if self.sleeping:
            self.wake.set()

    def wait(self, number):
        """Return once task `number` has finished: its outcome for a Python task."""
        k, finished, i = _Kernels, self.pool.finished, self.index
        while not k.spin_until(finished, i, number, k.polls_wait):
            time.sleep(50e-6)   # a long wait: poll more gently
        outcome, self.outcome = self.outcome, None
        return outcome

    @staticmethod
    def _nap(posted, i, number):
        """Idle: look for task `number` every NAP_US for up to NAP_MS. True if it came."""
        for _ in range(NAP_MS * 1000 // NAP_US):
            time.sleep(NAP_US * 1e-6)
            if posted[i] == number:
                return True
        return False

    def _sleep(self, posted, i, number):
        """Idle for long: sleep until post() wakes us for task `number`. Ordered so that no
        wake-up is lost: say so, clear, look once more, then wait (post() stores the task
        before it reads `sleeping`)."""
        self.sleeping = True
        self.wake.clear()
        while posted[i] != number:
            self.wake.wait()
            self.wake.clear()
        self.sleeping = False

    def _loop(self):
        k, pool, i = _Kernels.load(), self.pool, self.index
        posted, finished, params = pool.posted, pool.finished, pool.params
        number = 1
        while True:
            if k.serve is not None:
                got = k.serve(posted, finished, params, pool.caller_cpu, i, number,
                              k.polls_idle)
            else:
                got = number if k.spin_until(posted, i, number, k.polls_idle) else -number
            if got >= _handoff().STEP_ASIDE:     # on the caller's CPU: move, then go on
                number = got - _handoff().STEP_ASIDE
                _step_aside(int(pool.caller_cpu[0]))
                continue
            number = abs(got)   # serve() ran the GEMM tasks before it
            if got < 0:
                if not self._nap(posted, i, number):
                    self._sleep(posted, i, number)
                _step_aside(int(pool.caller_cpu[0]))
                continue
            task, self.task = self.task, None
            try:
                self.outcome = (True, task())
            except BaseException as err:   # handed to the caller, who raises it
                self.outcome = (False, err)
            task = None
            finished[i] = number
            number += 1


def _find_getcpu():
    """glibc's sched_getcpu as a ctypes function, or None (not Linux with glibc)."""
    try:
        getcpu = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None
    getcpu.argtypes, getcpu.restype = [], ctypes.c_int
    return getcpu


_GETCPU = _find_getcpu()
_current_cpu = _GETCPU if _GETCPU is not None else (lambda: -1)


def _step_aside(caller_cpu):
    """If this worker is on the caller's CPU, move it to another one the process may use.

    Linux places a woken thread next to the thread that woke it when that one looks about to
    sleep. A worker woken by the caller then shared the caller's vCPU with it until the load
    balancer moved one away, milliseconds later: in the benchmark suite, whose repeats sleep
    in between, an MLP step took 1.8-2.3 ms instead of 1.1. Here the worker, on waking,
    leaves the caller's CPU (a short affinity change that forces the move) and is then free
    to go anywhere again."""
    if caller_cpu < 0 or _current_cpu() != caller_cpu or not hasattr(os, "sched_setaffinity"):
        return
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        return
    os.sched_setaffinity(0, allowed - {caller_cpu})
    os.sched_setaffinity(0, allowed)


class _Pool:
    MAX_WORKERS = 63

    def __init__(self):
        self.threads = None      # minidl's thread count; None until first asked
        self.workers = []
        self.numbers = []        # per worker: the number of the last task posted to it
        self.posted = np.zeros(self.MAX_WORKERS, np.int64)
        self.finished = np.zeros(self.MAX_WORKERS, np.int64)
        self.params = np.zeros((self.MAX_WORKERS, 16), np.int64)
        self.region = threading.Lock()
        self.caller_cpu = np.full(1, -1, np.int64)   # the CPU of the last post() (-1: unknown)

    def reset_after_fork(self):
        threads = self.threads
        self.__init__()          # the child has none of the parent's threads
        self.threads = threads


_POOL = _Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.reset_after_fork)


def num_threads() -> int:
    """minidl's CPU thread count. It starts at NumPy's BLAS thread count as found on first use
    (OPENBLAS_NUM_THREADS and its siblings set that), or at 1 when the BLAS count cannot be
    held per call (see the module docstring)."""
    pool = _POOL
    if pool.threads is None:
        # Read when BLAS was first found, not now: a first use inside a region (run() asks
        # here once blas_held() has set BLAS to 1) would otherwise read the held count.
        _BLAS.find()
        pool.threads = _BLAS.first_count
    return pool.threads


def available() -> bool:
    """True when NumPy's BLAS count can be held per call, so minidl can use threads of its
    own (see the module docstring)."""
    _BLAS.find()
    return _BLAS.setter is not None


def set_threads(n: int) -> None:
    """Use `n` threads for minidl's CPU work (only where `available()`)."""
    if not available():
        raise RuntimeError("minidl's CPU thread pool needs an OpenBLAS (pthreads) whose thread "
                           "count can be set per call")
    _POOL.threads = n


def _workers(count):
    """`count` started workers (more are started when needed)."""
    pool = _POOL
    _Kernels.load()
    while len(pool.workers) < min(count, pool.MAX_WORKERS):
        pool.workers.append(_Worker(pool, len(pool.workers)))
        pool.numbers.append(0)
    return pool.workers[:count]


def run(tasks):
    """Run the callables in `tasks`, the first on this thread and each other one on a worker,
    with BLAS held at one thread; return their results in order. If any raised, the first
    exception (in task order) is raised here, after every task has finished.

    Pass at most num_threads() tasks. With one task, one thread, or a region already running
    elsewhere, the tasks run here one after another."""
    pool = _POOL
    with blas_held():
        if len(tasks) < 2 or num_threads() < 2 or not pool.region.acquire(blocking=False):
            return [task() for task in tasks]
        try:
            helpers = _workers(len(tasks) - 1)
            for k, (worker, task) in enumerate(zip(helpers, tasks[1:])):
                pool.numbers[k] += 1
                worker.post(pool.numbers[k], task=task)
            try:
                first = (True, tasks[0]())
            except BaseException as err:
                first = (False, err)
            outcomes = [first] + [worker.wait(pool.numbers[k])
                                  for k, worker in enumerate(helpers)]
        finally:
            pool.region.release()
    for ok, value in outcomes:
        if not ok:
            raise value
    return [value for _, value in outcomes]


def _run_gemms(rows):
    """Run GEMMs given as parameter rows (see _handoff.py): the first here, the others on
    workers, none of them taking the GIL. Returns False (nothing done) when that is not
    possible right now; the caller then multiplies another way."""
    pool = _POOL
    if _Kernels.load().serve is None or not pool.region.acquire(blocking=False):
        return False
    try:
        helpers = _workers(len(rows) - 1)
        if len(helpers) < len(rows) - 1:
            return False
        for k, (worker, row) in enumerate(zip(helpers, rows[1:])):
            pool.numbers[k] += 1
            worker.post(pool.numbers[k], gemm_params=row)
        try:
            _Kernels.gemm(rows[0])
            for k, worker in enumerate(helpers):
                worker.wait(pool.numbers[k])
        except BaseException:
            # Interrupted (Ctrl-C) while workers still write into the caller's arrays by raw
            # pointer: those arrays must outlive the writes, so wait for them first.
            for k in range(len(helpers)):
                while not _Kernels.spin_until(pool.finished, k, pool.numbers[k], 1 << 40):
                    pass
            raise
    finally:
        pool.region.release()
    return True


def shares(n: int, parts: int, align: int = 1):
    """[(start, stop)]: range(n) cut into at most `parts` contiguous pieces of about equal
    size, each a multiple of `align` long except the last; no empty pieces."""
    if parts <= 1 or n <= align:
        return [(0, n)]
    size = -(-n // parts)
    size = -(-size // align) * align
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def split_range(n: int, body, work: int, align: int = 1):
    """Run body(start, stop) over range(n) cut into one share per thread (see `shares`), or
    over the whole range on this thread when `work` (in multiply-adds, or anything costing
    about as much) is below PARALLEL_MIN_MACS. Returns the bodies' results in order."""
    parts = shares(n, num_threads(), align) if work >= PARALLEL_MIN_MACS else [(0, n)]
    return run([_bind(body, lo, hi) for lo, hi in parts])


def _bind(body, lo, hi):
    return lambda: body(lo, hi)


def matmul(a, b, out=None):
    """`np.matmul(a, b)` with BLAS held at one thread, split over minidl's threads when large
    enough: a 2-D product into column blocks (few rows) or row blocks (see `_split_2d`), a
    stacked one by its batch.

    `out`, when given, must be the C-contiguous result array of the right shape and dtype."""
    if a.ndim == 2 and b.ndim == 2 and a.shape[0] * a.shape[1] * b.shape[1] <= OPENBLAS_SERIAL_MACS:
        return np.matmul(a, b, out=out)
    if num_threads() > 1 and a.ndim == b.ndim and a.ndim >= 2 and a.dtype == b.dtype \
            and a.dtype in _FLOAT_BLAS and a.shape[-1] == b.shape[-2]:
        if a.ndim == 2:
            done = _split_2d(a, b, out)
            if done is not None:
                return done
        elif a.ndim == 3 and b.shape[0] == a.shape[0] \
                and a[0].size * b.shape[2] * a.shape[0] >= PARALLEL_MIN_MACS:
            if out is None:
                out = np.empty(a.shape[:-1] + b.shape[-1:], a.dtype)

            def batch(lo, hi):
                np.matmul(a[lo:hi], b[lo:hi], out=out[lo:hi])
            split_range(a.shape[0], batch, work=PARALLEL_MIN_MACS)   # size checked above
            return out
    with blas_held():
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)


_FLOAT_BLAS = (np.dtype(np.float32), np.dtype(np.float64))


def _split_2d(a, b, out):
    """a @ b (2-D, float32 or float64) as one GEMM per thread, or None when it is too small
    or BLAS cannot read the layouts.

    Few rows (fewer than COLUMN_SPLIT_MAX_ROWS and than columns): split the columns. Each
    thread packs (copies into BLAS's blocked layout) only the part of b it multiplies; split
    by rows, both would pack all of b, which for a (64, 784) @ (784, 512) costs most of the
    product. With more rows, a split by rows was the faster."""
    (rows, inner), cols = a.shape, b.shape[1]
    if rows * inner * cols < PARALLEL_MIN_MACS or min(rows, inner, cols) == 0:
        return None
    by_columns = rows < min(cols, COLUMN_SPLIT_MAX_ROWS)
    parts = shares(cols if by_columns else rows,
                   min(num_threads(), (cols if by_columns else rows) // PARALLEL_MIN_ROWS))
    a_ptr, b_ptr = a.ctypes.data, b.ctypes.data
    layout_a, layout_b = _blas_layout(a, a_ptr), _blas_layout(b, b_ptr)
    if len(parts) < 2 or layout_a is None or layout_b is None:
        return None
    if out is None:
        out = np.empty((rows, cols), a.dtype)
    h, item, c_ptr = _handoff(), a.itemsize, out.ctypes.data
    ldc, double = out.strides[0] // item, int(a.dtype == np.float64)
    gemm_rows = []
    for lo, hi in parts:       # the fields in _handoff.py's order
        if by_columns:   # b[:, lo:hi] -> out[:, lo:hi]
            m, n, pa, pb, pc = rows, hi - lo, a_ptr, b_ptr + lo * b.strides[1], c_ptr + lo * item
        else:            # a[lo:hi] -> out[lo:hi]
            m, n, pa, pb = hi - lo, cols, a_ptr + lo * a.strides[0], b_ptr
            pc = c_ptr + lo * ldc * item
        gemm_rows.append([h.KIND_GEMM, layout_a[0], layout_b[0], m, n, inner, pa, layout_a[1],
                          pb, layout_b[1], pc, ldc, double, 0, 0, 0])
    gemm_rows = np.array(gemm_rows, np.int64)
    with blas_held():
        if not _run_gemms(gemm_rows):
            np.matmul(a, b, out=out)
    return out


def _blas_layout(x, address):
    """(CBLAS transpose flag, leading dimension) under which BLAS reads the 2-D array x (its
    data at `address`) in place as a row-major matrix, or None (NumPy copies it then)."""
    item = x.itemsize
    s0, s1 = x.strides
    r, c = x.shape
    if address % item:
        return None
    if s1 == item and s0 % item == 0 and s0 // item >= max(1, c):
        return _handoff().NO_TRANS, s0 // item
    if s0 == item and s1 % item == 0 and s1 // item >= max(1, r):
        return _handoff().TRANS, s1 // item
    return None
