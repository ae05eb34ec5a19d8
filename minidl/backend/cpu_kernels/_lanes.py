"""8-lane vector pointers for Numba intrinsics (used by conv.py and winograd.py).

Some copies are too short or too irregular for LLVM's loop vectoriser (a 13-float image row,
an 8x8 transpose). For those, an `@intrinsic` emits the vector loads, stores and shuffles
itself; these two helpers give it a pointer to arr[index] typed as an 8-lane vector, and
check that an array argument is one it can take. `lane_mix` builds such intrinsics for the
small matrix-times-runs products of the Winograd transforms.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8   # 8 floats = 32 bytes (float64: 64 bytes); Zen 4 runs 512-bit ops as two halves


def lane_pointer(context, builder, arr_ty, arr_val, index):
    """Pointer to arr[index] (1-D C-contiguous array), typed as a pointer to an 8-lane vector.

    No bounds check: the caller guarantees that all 8 lanes lie inside the array.
    """
    arr = context.make_array(arr_ty)(context, builder, arr_val)
    ptr = cgutils.get_item_pointer(context, builder, arr_ty, arr, [index], wraparound=False,
                                   boundscheck=False)
    vec = ir.VectorType(context.get_value_type(arr_ty.dtype), LANES)
    return builder.bitcast(ptr, vec.as_pointer())


def run_pointer(context, builder, arr_ty, arr_val, base, stride, k: int):
    """lane_pointer to arr[base + k*stride]: the k-th of several runs `stride` apart (base and
    stride are int64 IR values, as `int64_args` gives them)."""
    index = builder.add(base, builder.mul(stride, ir.Constant(ir.IntType(64), k)))
    return lane_pointer(context, builder, arr_ty, arr_val, index)


def int64_args(context, builder, sig, args, positions):
    """The intrinsic's integer arguments at `positions`, widened to int64 IR values."""
    return [context.cast(builder, args[k], sig.args[k], types.int64) for k in positions]


def is_flat_float(a):
    """True for the Numba type of a 1-D C-contiguous float array."""
    return (isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C"
            and isinstance(a.dtype, types.Float))


def lane_mix(matrix, accumulate: bool):
    """An intrinsic mix(src, si, ss, dst, di, ds) for 8 lanes at a time, the matrix built in:

        dst[di + o*ds + q] (+)= sum_s matrix[o][s] * src[si + s*ss + q]    q < 8

    i.e. a small constant matrix (n_out x n_in) applied to n_in runs of src (ss apart),
    giving n_out runs of dst (ds apart). Each input vector is loaded once for all outputs.
    A plain loop doing the same touches n_in + n_out runs (12 for 6 x 6): too many for
    LLVM's vectoriser to prove apart, so it stays scalar. One loop per output does
    vectorise, but loads every input n_out times and pays a loop start per output: on runs
    of 32 floats that overhead was half the time of the Winograd transforms.

    With the coefficients known when the code is generated, zero terms are left out and
    +-1 terms cost an add or a subtract, no multiply (the Winograd matrices are mostly 0 and
    +-1: B^T of F(4x4) needs 14 multiplies and 16 adds per output position instead of 36 and
    30). The kept terms are summed left to right, c0*s0 + c1*s1 + ..., without fused
    multiply-adds. src and dst are 1-D C-contiguous arrays of one float type; no bounds checks.
    """
    rows = [[float(c) for c in row] for row in matrix]
    n_in = len(rows[0])

    @intrinsic
    def mix(typingctx, src, si, ss, dst, di, ds):
        if not (is_flat_float(src) and dst == src and isinstance(si, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            src_ty, dst_ty = sig.args[0], sig.args[3]
            si_, ss_, di_, ds_ = int64_args(context, builder, sig, args, (1, 2, 4, 5))
            vec = ir.VectorType(context.get_value_type(src_ty.dtype), LANES)
            x = [builder.load(run_pointer(context, builder, src_ty, args[0], si_, ss_, s), align=1)
                 for s in range(n_in)]
            for o, row in enumerate(rows):
                total = None
                for s, c in enumerate(row):
                    if c == 0:
                        continue
                    if c in (1.0, -1.0):
                        term = x[s]
                    else:
                        term = builder.fmul(ir.Constant(vec, [c] * LANES), x[s])
                    if total is None:
                        total = builder.fneg(term) if c == -1.0 else term
                    elif c == -1.0:
                        total = builder.fsub(total, term)
                    else:
                        total = builder.fadd(total, term)
                if total is None:
                    total = ir.Constant(vec, [0.0] * LANES)
                out = run_pointer(context, builder, dst_ty, args[3], di_, ds_, o)
                if accumulate:
                    total = builder.fadd(builder.load(out, align=1), total)
                builder.store(total, out, align=1)
            return context.get_dummy_value()
        return types.void(src, si, ss, dst, di, ds), codegen
    return mix
