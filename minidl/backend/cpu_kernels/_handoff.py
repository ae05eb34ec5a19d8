"""The hand-off of minidl's CPU thread pool (`minidl/backend/cpu_pool.py`): waiting without
sleeping, and GEMMs a worker runs without the GIL.

A thread that sleeps until another wakes it (a lock, a queue) costs tens of microseconds on a
virtual machine: the sleeping thread's virtual CPU halts and the host must run it again. A
GEMM split over two threads then lost more than it gained (~60 us per hand-off against a
~70 us half). `spin_until` instead watches one int64 in memory for a bounded time, with the
GIL released, so the other thread's store is seen within a microsecond or two (a full
hand-off there and back: ~2 us).

Two traps, both handled by intrinsics:
* a plain load in a loop may be hoisted out of it by the compiler (nothing in the loop
  writes that memory), which would spin forever: the flag is read with an atomic acquire
  load, which must be repeated;
* a tight polling loop starves the other hyper-thread of the same core (here the two vCPUs
  share one): the x86 `pause` instruction between polls hands it the core's resources.
"""
from __future__ import annotations

import platform

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# One poll (a load and a pause) takes ~22 ns on the machine these figures come from.
POLL_NS = 22


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


@intrinsic
def _pause(typingctx):
    """The x86 `pause` hint: "this is a spin-wait loop" (nothing on other processors)."""
    def codegen(context, builder, sig, args):
        if _X86:
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def _load_acquire(typingctx, flags, i):
    """flags[i] of an int64 array, read by an atomic acquire load (never hoisted or cached)."""
    if not (isinstance(flags, types.Array) and flags.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        arr_ty = sig.args[0]
        arr = context.make_array(arr_ty)(context, builder, args[0])
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        ptr = cgutils.get_item_pointer(context, builder, arr_ty, arr, [index],
                                       wraparound=False, boundscheck=False)
        return builder.load_atomic(ptr, "acquire", 8)
    return types.int64(flags, i), codegen


@numba.njit(cache=True, nogil=True)
def spin_until(flags, i, value, polls):
    """True as soon as flags[i] == value; False if it is still not after `polls` polls
    (about polls * POLL_NS nanoseconds). Runs without the GIL."""
    for _ in range(polls):
        if _load_acquire(flags, i) == value:
            return True
        _pause()
    return _load_acquire(flags, i) == value


# ---- GEMMs run by a worker without the GIL -------------------------------------------------
#
# A split GEMM hands each worker a row of int64 parameters; the worker calls the BLAS routine
# on them from Numba, so neither side takes the GIL between post and finish. (Taking it there
# made the two threads wait for each other in the kernel; on this VM the scheduler then ran
# both on one vCPU, and a split GEMM took as long as the whole one.)
#
# Parameters of one GEMM, C = op(A) op(B), all matrices row-major:
GEMM_KIND, TRANS_A, TRANS_B, M, N, K, A_PTR, LDA, B_PTR, LDB, C_PTR, LDC, DOUBLE = range(13)
GEMM_FIELDS = 13
KIND_GEMM, KIND_PYTHON = 1, 2
NO_TRANS, TRANS, ROW_MAJOR = 111, 112, 101     # the CBLAS enum values


STEP_ASIDE = 1 << 40   # added to serve()'s answer: "move off the caller's CPU, then go on"


def make_gemm_kernels(sgemm, dgemm, getcpu):
    """(gemm, serve): Numba functions calling the given CBLAS sgemm/dgemm (ctypes functions
    whose pointer arguments are declared as 64-bit integers, which the x86-64 and AArch64
    calling conventions pass exactly as pointers) and `getcpu` (glibc's sched_getcpu, or
    None where there is none). Compiled per process: a function that calls a C address
    cannot be cached on disk."""
    if getcpu is None:
        @numba.njit(nogil=True)
        def this_cpu():
            return -1
    else:
        @numba.njit(nogil=True)
        def this_cpu():
            return getcpu()

    @numba.njit(nogil=True)
    def gemm(p):
        """One GEMM from its parameter row p (see the field names above), alpha 1, beta 0."""
        if p[DOUBLE]:
            dgemm(ROW_MAJOR, p[TRANS_A], p[TRANS_B], p[M], p[N], p[K], 1.0, p[A_PTR], p[LDA],
                  p[B_PTR], p[LDB], 0.0, p[C_PTR], p[LDC])
        else:
            sgemm(ROW_MAJOR, p[TRANS_A], p[TRANS_B], p[M], p[N], p[K], 1.0, p[A_PTR], p[LDA],
                  p[B_PTR], p[LDB], 0.0, p[C_PTR], p[LDC])

    @numba.njit(nogil=True)
    def serve(posted, finished, params, caller_cpu, i, number, polls):
        """Worker i's wait: run the GEMMs posted to it from task `number` on, marking each
        finished. Returns the number of the first task that is not a GEMM (the caller runs
        it), -number when task `number` has not come after `polls` polls, or number +
        STEP_ASIDE when this thread finds itself on the CPU the caller last posted from
        (caller_cpu[0]): the two would take turns on it (see cpu_pool._step_aside)."""
        while True:
            if not spin_until(posted, i, number, polls):
                return -number
            if params[i, GEMM_KIND] != KIND_GEMM:
                return number
            gemm(params[i])
            finished[i] = number
            number += 1
            if caller_cpu[0] >= 0 and this_cpu() == caller_cpu[0]:
                return number + STEP_ASIDE

    return gemm, serve
