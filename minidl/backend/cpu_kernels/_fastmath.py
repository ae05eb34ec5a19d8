"""Scalar maths for the Numba kernels, written so LLVM can vectorise the loops that call it.

Why this file exists. On this CPU a Numba loop runs 16 float32 lanes per instruction only if
every call inside it has a vector form. Without Intel's SVML library (not a dependency),
`math.exp`, `math.tanh` and `math.erf` are scalar libm calls: 2, 15 and 10 ns per element,
against ~0.16 ns for the vector code below. And `max(a, b)` compiles to compare+select, which
LLVM will not turn into a vector max reduction. So, in float32:

  maxnum(a, b)  the LLVM `maxnum` intrinsic (a vector max; NaN operands are ignored)
  row_max(x, i) the max of a row with that intrinsic
  fast_exp(v)   exp by range reduction and a polynomial, ~1 ulp, correct 0 / inf / NaN
  fast_exp_shifted(v)
                exp(v) for v <= 88 only, as in exp(x - row_max): the same ~1 ulp in 16 vector
                ops instead of ~25 (one clamp, one scaling step, no overflow handling)
  fast_exp_summand(v)
                the same for the terms of a sum >= 1 (softmax totals): degree 5, ~2 ulp,
                and no exact 0 below 1e-38, which such a sum cannot see; 12 % faster again
  fast_log_split(v)
                log(v) = hi + lo for v >= 1 (a softmax denominator), hi an exact multiple of
                ln 2's leading bits, so that hi - d for a nearby d is exact (see softmax.py)
  fast_erfc(v)  erfc(v) = exp(-v^2) * P(t), t = 1/(1 + |v|/2), relative error < 4e-6

And two memory helpers for row-wise kernels that stream arrays bigger than the caches:
  prefetch_row(a, i)
                ask the memory system for row i of a 2-D array now, to be read later
  stream_row(dst, i, buf)
                dst[i, :] = buf with non-temporal stores (bypassing the caches), for rows of
                arrays made by aligned_empty; see its docstring for when that pays

float64 versions call libm (math.exp, math.erfc): float64 is the checking dtype, where
accuracy matters more than speed.

FASTMATH: the LLVM flags the kernels compile with. 'reassoc' lets sums be split into vector
lanes (a different summation order, as in any SIMD or pairwise sum); 'contract' allows FMA.
We leave out 'nnan'/'ninf' so NaN and inf keep their IEEE meaning (a NaN input gives a NaN
output, as in PyTorch, instead of undefined behaviour), and 'nsz', because together with
'reassoc' it let LLVM merge the two-step scaling in fast_exp into one overflowing product.

Trap for developers: Numba's on-disk cache (cache=True) is keyed on the kernel's own file, so
after editing THIS file, delete the __pycache__/*.nbi/*.nbc files of the kernel modules.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

FASTMATH = {"reassoc", "contract", "arcp", "afn"}


@intrinsic
def maxnum(typingctx, a, b):
    """max(a, b) as one instruction that vectorises; the same float type for a and b."""
    if not (isinstance(a, types.Float) and a == b):
        return None
    def codegen(context, builder, signature, args):
        llvm_float = context.get_value_type(a)
        fn = builder.module.declare_intrinsic(
            "llvm.maxnum", [llvm_float], ir.FunctionType(llvm_float, [llvm_float, llvm_float]))
        return builder.call(fn, args)
    return a(a, a), codegen


@njit(fastmath=FASTMATH | {"nnan"}, error_model="numpy")
def row_max(x, i):
    """max of row i of a 2-D array, as one vectorised pass.

    LLVM vectorises a max reduction only when told there are no NaNs ('nnan'), so this small
    function alone carries that flag. With a NaN in the row the value returned is unspecified;
    callers use it only as a shift for exp, and the exp of the NaN entry then makes the whole
    row NaN anyway, which is the right answer.
    """
    m = x[i, 0]
    for j in range(x.shape[1]):  # from 0, not 1: a loop of C - 1 would leave a scalar tail
        m = maxnum(m, x[i, j])
    return m


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret the low 32 bits of an integer as a float32 (no conversion: same bits)."""
    if not isinstance(bits, types.Integer):
        return None
    def codegen(context, builder, signature, args):
        low32 = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(low32, ir.FloatType())
    return types.float32(bits), codegen


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _times_pow2_float32(p, k):
    """p * 2**k for p in [0.5, 2] and an integer-valued float32 k in [-150, 129].

    A float32 with exponent field E (1..254) and zero mantissa is 2**(E - 127). 2**k alone
    may not be a float32 (2**128 is not), so we multiply p by two halves of it, one after the
    other: each factor is a normal number, and the last product rounds to 0, to a subnormal or
    to inf exactly as IEEE arithmetic says.
    """
    half = np.int32(k) >> np.int32(1)
    rest = np.int32(k) - half
    p = p * _float32_from_bits((half + np.int32(127)) << np.int32(23))
    return p * _float32_from_bits((rest + np.int32(127)) << np.int32(23))


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _exp_float32(v):
    """exp(v) = 2**k * exp(r), k = round(v / ln 2), |r| <= ln(2)/2.

    ln 2 = 0.693359375 - 2.12194440e-4: the first part has few mantissa bits, so k times it is
    exact and r keeps its accuracy. exp(r) is a degree-7 polynomial (the minimax coefficients
    of Cephes' expf), good to ~1 ulp on that interval. v is clamped so that k suits
    _times_pow2_float32; beyond the clamp the true result is 0 or inf anyway, and the final
    product rounds to exactly that.
    """
    c = min(max(v, np.float32(-104.0)), np.float32(89.0))
    # np.floor, not math.floor: in Numba math.floor returns an int64, and the float -> int64
    # -> float round trip halved the speed of the whole loop
    k = np.floor(c * np.float32(1.44269504088896341) + np.float32(0.5))
    r = c - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    result = _times_pow2_float32(p, k)
    return result if v == v else v  # the clamp swallowed NaN: give it back


# erfcx(x) = exp(x^2) * erfc(x) on x >= 0 as a degree-9 polynomial in t = 1/(1 + x/2):
# a weighted least-squares fit (relative error) on Chebyshev nodes of x in [0, 12]; evaluated
# in float32 it is good to 4e-7 relative. Coefficients of t^0 ... t^9:
_E0, _E1, _E2, _E3, _E4 = 8.42377569e-07, 0.282057771, 0.282750215, 0.2405391, 0.212983506
_E5, _E6, _E7, _E8, _E9 = -0.0521069861, 0.317322397, -0.523800232, 0.303446818, -0.0631936322


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _erfc_float32(v):
    """erfc(v) = exp(-v^2) * erfcx(|v|) for v >= 0, and 2 - erfc(-v) for v < 0.

    The rounding of v^2 (half an ulp of v^2) becomes a relative error of about v^2 * 6e-8 in
    exp(-v^2), so the result is good to ~5e-7 relative for |v| < 3 and ~4e-6 at the far tail
    (|v| ~ 9, where erfc ~ 1e-36).
    """
    a = abs(v)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * a)
    p = np.float32(_E9) * t + np.float32(_E8)
    p = p * t + np.float32(_E7)
    p = p * t + np.float32(_E6)
    p = p * t + np.float32(_E5)
    p = p * t + np.float32(_E4)
    p = p * t + np.float32(_E3)
    p = p * t + np.float32(_E2)
    p = p * t + np.float32(_E1)
    p = p * t + np.float32(_E0)
    tail = p * _exp_float32(-a * a)
    return tail if v >= np.float32(0.0) else np.float32(2.0) - tail


@intrinsic
def _bits_of_float32(typingctx, v):
    """The 32 bits of a float32 as an int32 (no conversion: same bits)."""
    if v != types.float32:
        return None
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(v), codegen


_LN_FLT_MIN = np.float32(-87.33654)     # exp below this is not a normal float32
# 1.5 * 2**23 + 127: adding it to an integer-valued float k in [-126, 127] leaves k + 127 in
# the low mantissa bits (the 1.5 keeps the exponent fixed for negative k as well)
_EXPONENT_MAGIC = np.float32(12582912.0 + 127.0)


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _exp_shifted_float32(v):
    """exp(v) for v <= 88, built for exp(x - shift) with shift >= max(x) - 60 or so.

    Same range reduction as _exp_float32: exp(v) = 2**k * exp(r), k = round(v / ln 2), but:
      - exp(r) is a degree-6 polynomial in plain Horner form (6 FMAs). Its coefficients come
        from a minimax fit of exp on |r| <= ln(2)/2 (relative error 3e-9 in exact arithmetic,
        far below float32's 6e-8), so in float32 the result is within ~0.9 ulp;
      - 2**k is ONE float built from its bits: for -87.3 <= v <= 88, k + 127 is a valid
        exponent field (1..254). k + 127 comes out of the float add k + _EXPONENT_MAGIC (its
        low mantissa bits) and a shift moves it into the exponent field: no float -> int
        conversion, whose NaN input is undefined behaviour in LLVM;
      - below ln(FLT_MIN) the result is 0 (PyTorch gives a subnormal there; both are < 1.2e-38,
        and -inf, the mask value, gives exactly 0 as it must);
      - NaN: the clamp is written `LO if v < LO else v`, which lets NaN through (x86 maxps with
        LO first), so the polynomial and the result are NaN. No final "is NaN" select needed.
    About 16 vector ops per 16 floats instead of ~25 for _exp_float32: 25 % faster exp loops.
    Above 88.7 the result would be garbage, not inf: callers must guarantee v <= 88.
    """
    c = _LN_FLT_MIN if v < _LN_FLT_MIN else v
    k = np.floor(c * np.float32(1.44269504088896341) + np.float32(0.5))
    r = c - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
    p = np.float32(0.001381461275741458)
    p = p * r + np.float32(0.008368710055947304)
    p = p * r + np.float32(0.04166838899254799)
    p = p * r + np.float32(0.1666652113199234)
    p = p * r + np.float32(0.4999999403953552)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    e = p * _float32_from_bits(_bits_of_float32(k + _EXPONENT_MAGIC) << np.int32(23))
    return np.float32(0.0) if v < _LN_FLT_MIN else e


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _exp_summand_float32(v):
    """exp(v) for v <= 88 as a term of a sum whose largest term is >= 1 (a softmax total).

    _exp_shifted_float32 minus what such a sum cannot see: a degree-5 polynomial (relative
    error 1.05e-7 before rounding: ~2 ulp instead of ~1; the total moves by as much, and its
    log by 1e-7 absolute), and no zeroing below ln(FLT_MIN): such terms come out as
    exp(-87.3) = 1.2e-38, which vanishes when added to a total >= 1. NaN still gives NaN.
    3 ops fewer of ~16: the log-softmax sum loop runs 12 % faster.
    """
    c = _LN_FLT_MIN if v < _LN_FLT_MIN else v
    k = np.floor(c * np.float32(1.44269504088896341) + np.float32(0.5))
    r = c - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
    p = np.float32(0.008312525227665901)
    p = p * r + np.float32(0.041890114545822144)
    p = p * r + np.float32(0.16667114198207855)
    p = p * r + np.float32(0.499992311000824)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    return p * _float32_from_bits(_bits_of_float32(k + _EXPONENT_MAGIC) << np.int32(23))


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def _log_split_float32(v):
    """log(v) = hi + lo for v >= 1, +inf and NaN passed through (as hi, with lo = 0).

    v = 2**e * m with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s), s = (m - 1)/(m + 1),
    |s| < 0.172, by its odd series 2s + 2s^3/3 + ... + 2s^9/9 (truncation < 2e-9). Then
    hi = e * 0.693359375 is exact (that constant has 9 significant bits, e has at most 8),
    lo = log(m) - e * 2.12194440e-4 (the rest of ln 2). Good to ~1 ulp of log(v) as one sum.
    Why two parts: log-softmax needs log(total) - d with d close to log(total); hi - d is then
    exact and only the small lo carries rounding (see softmax.py). Scalar code, no libm call:
    a call in a kernel forces every vector register to be saved around it.
    """
    bits = _bits_of_float32(v)
    e = (bits >> np.int32(23)) - np.int32(127)
    m = _float32_from_bits((bits & np.int32(0x7FFFFF)) | np.int32(0x3F800000))   # in [1, 2)
    above = m > np.float32(1.41421356)
    m = m * np.float32(0.5) if above else m
    ef = np.float32(e) + (np.float32(1.0) if above else np.float32(0.0))
    f = m - np.float32(1.0)
    s = f / (np.float32(2.0) + f)
    s2 = s * s
    q = np.float32(2.0 / 9.0)
    q = q * s2 + np.float32(2.0 / 7.0)
    q = q * s2 + np.float32(2.0 / 5.0)
    q = q * s2 + np.float32(2.0 / 3.0)
    hi = ef * np.float32(0.693359375)
    lo = s * s2 * q + (s + s) - ef * np.float32(2.12194440e-4)
    finite = v < np.float32(np.inf)
    return (hi if finite else v), (lo if finite else np.float32(0.0))


def fast_exp(v):
    """exp(v) in v's float type (defined for Numba code only)."""
    raise NotImplementedError("fast_exp is only callable from Numba-compiled code")


def fast_erfc(v):
    """erfc(v) in v's float type (defined for Numba code only)."""
    raise NotImplementedError("fast_erfc is only callable from Numba-compiled code")


def fast_exp_shifted(v):
    """exp(v) for v <= 88 in v's float type (Numba code only; see _exp_shifted_float32)."""
    raise NotImplementedError("fast_exp_shifted is only callable from Numba-compiled code")


def fast_exp_summand(v):
    """exp(v) for v <= 88 as a term of a sum >= 1 (Numba code only; see _exp_summand_float32)."""
    raise NotImplementedError("fast_exp_summand is only callable from Numba-compiled code")


def fast_log_split(v):
    """(hi, lo) with log(v) = hi + lo, for v >= 1 (Numba code only; see _log_split_float32)."""
    raise NotImplementedError("fast_log_split is only callable from Numba-compiled code")


def _overload_by_float_type(generic, float32_impl, float64_impl):
    """Give `generic` its Numba meaning: our float32 routine for float32 arguments, the exact
    libm-based form for float64 (where these float32 tricks would lose precision)."""
    @overload(generic, inline="always", jit_options={"fastmath": FASTMATH})
    def _typed(v):
        if v == types.float32:
            return lambda v: float32_impl(v)
        if v == types.float64:
            return lambda v: float64_impl(v)
        return None


@njit(inline="always")
def _log_split_float64(v):
    return math.log(v), 0.0


_overload_by_float_type(fast_exp, _exp_float32, math.exp)
_overload_by_float_type(fast_erfc, _erfc_float32, math.erfc)
_overload_by_float_type(fast_exp_shifted, _exp_shifted_float32, math.exp)
_overload_by_float_type(fast_exp_summand, _exp_summand_float32, math.exp)
_overload_by_float_type(fast_log_split, _log_split_float32, _log_split_float64)


@intrinsic
def _prefetch(typingctx, a, i, j):
    """LLVM's prefetch hint for the cache line holding a[i, j] (read, keep in all levels)."""
    if not (isinstance(a, types.Array) and a.ndim == 2):
        return None
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], array,
                                       [args[1], args[2]], wraparound=False)
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", [byte_ptr], ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]))
        # (address, 0 = for reading, 3 = keep in every cache level, 1 = data cache)
        builder.call(fn, [builder.bitcast(ptr, byte_ptr), ir.Constant(i32, 0), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.void(a, i, j), codegen


@njit(inline="always", error_model="numpy")
def prefetch_row(a, i):
    """Start loading row i of the C-contiguous 2-D array a into cache; returns at once.

    Why: a row-wise kernel whose first pass over a row reduces it (a sum) and whose second
    pass uses the result cannot overlap the next row's memory reads with this row's work by
    itself: the out-of-order window is full of this row's dependent instructions. The
    hardware prefetcher follows the stream, but not far enough ahead. Asking for the row
    ~8 KB ahead once row i is in cache (after the first pass) made layer-norm's backward
    stream its two inputs from DRAM faster: one row ahead gave 5-10 %, 8 KB ahead another
    15-20 % (8 MB arrays; see norm.py). A hint only: no effect on results, harmless for rows
    already in cache.
    """
    step = max(1, 64 // a.itemsize)     # one request per 64-byte cache line
    for j in range(0, a.shape[1], step):
        _prefetch(a, i, j)


# ---- streaming (non-temporal) stores ------------------------------------------------------
#
# A normal store to a line that is not in cache first READS the line from memory ("write
# allocate"), then overwrites it: writing an 8 MB result from scratch moves 16 MB. A
# non-temporal store sends full 64-byte lines straight to memory instead: half the traffic,
# and the caches keep the inputs. The price: the result is not in cache afterwards. So it
# pays only for results much bigger than the caches that nobody reads at once (layer norm's
# dx of several MB: forward + backward 18 % faster), and hurts small or soon-read results
# (layer norm's forward y, rewritten into a reused, cached block in a loop, was 25 % slower).
# The x86 instruction (vmovntps) needs 64-byte aligned addresses, hence aligned_empty.

STREAM_ALIGN = 64


def aligned_empty(shape, dtype):
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary.

    (NumPy's allocator only promises 16.) A view of a slightly larger byte buffer; rows of a
    2-D result are then 64-byte aligned too when a row is a multiple of 64 bytes."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(count * dtype.itemsize + STREAM_ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % STREAM_ALIGN
    return raw[start:start + count * dtype.itemsize].view(dtype).reshape(shape)


def can_stream_rows(a) -> bool:
    """True when stream_row may write the rows of the 2-D array a: 64-byte aligned data and
    rows a whole number of 64-byte lines (an array from aligned_empty with C * itemsize % 64
    == 0)."""
    return (a.ndim == 2 and a.flags.c_contiguous and a.ctypes.data % STREAM_ALIGN == 0
            and (a.shape[1] * a.itemsize) % STREAM_ALIGN == 0)


@intrinsic
def stream_row(typingctx, dst, i, buf):
    """dst[i, :] = buf[:] by 64-byte non-temporal stores; the caller checked can_stream_rows(dst).

    Generated as LLVM IR directly: a loop of <16 x float> (or <8 x double>) loads from buf
    (normally in L1) and stores tagged !nontemporal to the row. LLVM's own vectoriser will
    not produce such stores from a scalar loop (it cannot prove the alignment), hence the
    hand-written loop. Call stream_fence() once after the last row.
    """
    if not (isinstance(dst, types.Array) and dst.ndim == 2 and isinstance(buf, types.Array)
            and buf.ndim == 1 and dst.dtype == buf.dtype and dst.dtype in (types.float32,
                                                                           types.float64)):
        return None

    def codegen(context, builder, signature, args):
        dst_ty, _, buf_ty = signature.args
        dst_arr = context.make_array(dst_ty)(context, builder, args[0])
        buf_arr = context.make_array(buf_ty)(context, builder, args[2])
        i64 = ir.IntType(64)
        zero = ir.Constant(i64, 0)
        dst_ptr = cgutils.get_item_pointer(context, builder, dst_ty, dst_arr, [args[1], zero],
                                           wraparound=False)
        buf_ptr = cgutils.get_item_pointer(context, builder, buf_ty, buf_arr, [zero],
                                           wraparound=False)
        scalar = context.get_data_type(dst_ty.dtype)
        lanes = STREAM_ALIGN // (4 if dst_ty.dtype == types.float32 else 8)
        vec_ptr = ir.VectorType(scalar, lanes).as_pointer()
        dst_vec = builder.bitcast(dst_ptr, vec_ptr)
        buf_vec = builder.bitcast(buf_ptr, vec_ptr)
        count = builder.udiv(builder.extract_value(dst_arr.shape, 1), ir.Constant(i64, lanes))
        nontemporal = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        with cgutils.for_range(builder, count) as loop:
            value = builder.load(builder.gep(buf_vec, [loop.index]), align=4)
            store = builder.store(value, builder.gep(dst_vec, [loop.index]), align=STREAM_ALIGN)
            store.set_metadata("nontemporal", nontemporal)
        return context.get_dummy_value()
    return types.void(dst, i, buf), codegen


@intrinsic
def stream_fence(typingctx):
    """Order the non-temporal stores before everything after (they bypass the usual x86
    store ordering; an mfence makes them visible to other threads as normal stores are)."""
    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()
    return types.void(), codegen
