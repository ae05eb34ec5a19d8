// cuda_emu.h — the CUDA built-ins, defined for g++ so that kernels/*.cu compile as C++20
// and run on the CPU (the scheduler behind them is in emu_runtime.h).
//
// Only what minidl's kernels may use is defined (KERNELS.md, "Conventions"): a kernel that
// uses anything else fails to build here, which is the point — it would be a feature the
// project has not agreed to rely on.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "emu_runtime.h"

#define MINIDL_CUDA_EMU 1

// ---- qualifiers: no meaning on the CPU ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// A block's threads all run on this OS thread and blocks run one at a time, so a static
// variable is exactly "one copy per block". It is NOT reset between blocks: like real
// shared memory it must be written before it is read.
#define __shared__ static

// Dynamic shared memory: one buffer per launch, refilled with 0xFF before every block.
#define DYN_SMEM(T, name) T* name = reinterpret_cast<T*>(::emu::g.dyn_smem)

// ---- the 16-byte vector types (for 128-bit loads); may_alias: they are read through
// reinterpret_cast'ed float / double pointers, as on the GPU ----
struct __attribute__((aligned(16), may_alias)) float4 {
    float x, y, z, w;
};
struct __attribute__((aligned(16), may_alias)) double2 {
    double x, y;
};

// ---- thread and block coordinates ----
#define threadIdx (::emu::g_current->idx)
#define blockIdx (::emu::g.block_idx)
#define blockDim (::emu::g.block)
#define gridDim (::emu::g.grid)
#define warpSize 32

// ---- synchronisation ----
// The default arguments capture the caller's file:line (the loader inserts #line markers,
// so these name the kernel source, not the generated file).
inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::emu::block_barrier({file, line});
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(),
                       int line = __builtin_LINE()) {
    ::emu::warp_exchange(::emu::WarpOp::Sync, mask, 0, 0, 32, {file, line});
}
inline void __threadfence() { asm volatile("" ::: "memory"); }
inline void __threadfence_block() { asm volatile("" ::: "memory"); }
[[noreturn]] inline void __trap(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::emu::fail(std::string("__trap() at ") + file + ":" + std::to_string(line));
}

namespace emu {
template <typename T>
inline uint64_t to_bits(T v) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8,
                  "warp shuffles move values of at most 8 bytes");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    return bits;
}
template <typename T>
inline T from_bits(uint64_t bits) {
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    return v;
}
template <typename T>
inline T shuffle(WarpOp op, unsigned mask, T var, int arg, int width, Site site) {
    return from_bits<T>(warp_exchange(op, mask, to_bits(var), arg, width, site));
}
}  // namespace emu

template <typename T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32,
                     const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return ::emu::shuffle(::emu::WarpOp::ShflIdx, mask, var, src_lane, width, {file, line});
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32,
                        const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return ::emu::shuffle(::emu::WarpOp::ShflUp, mask, var, int(delta), width, {file, line});
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,
                          const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return ::emu::shuffle(::emu::WarpOp::ShflDown, mask, var, int(delta), width, {file, line});
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,
                         const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return ::emu::shuffle(::emu::WarpOp::ShflXor, mask, var, lane_mask, width, {file, line});
}
inline unsigned __ballot_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
    return unsigned(::emu::warp_exchange(::emu::WarpOp::Ballot, mask, predicate != 0, 0, 32,
                                         {file, line}));
}
inline int __any_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
    return int(::emu::warp_exchange(::emu::WarpOp::Any, mask, predicate != 0, 0, 32, {file, line}));
}
inline int __all_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
    return int(::emu::warp_exchange(::emu::WarpOp::All, mask, predicate != 0, 0, 32, {file, line}));
}

// ---- atomics: fibers never switch inside one, so a plain read-modify-write is atomic ----
template <typename T>
inline T emu_atomic_add(T* address, T value) {
    T old = *address;
    *address = old + value;
    return old;
}
inline float atomicAdd(float* a, float v) { return emu_atomic_add(a, v); }
inline double atomicAdd(double* a, double v) { return emu_atomic_add(a, v); }
inline int atomicAdd(int* a, int v) { return emu_atomic_add(a, v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return emu_atomic_add(a, v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
    return emu_atomic_add(a, v);
}
template <typename T>
inline T emu_atomic_exch(T* a, T v) {
    T old = *a;
    *a = v;
    return old;
}
inline int atomicExch(int* a, int v) { return emu_atomic_exch(a, v); }
inline unsigned atomicExch(unsigned* a, unsigned v) { return emu_atomic_exch(a, v); }
inline float atomicExch(float* a, float v) { return emu_atomic_exch(a, v); }
template <typename T>
inline T emu_atomic_cas(T* a, T compare, T v) {
    T old = *a;
    if (old == compare) *a = v;
    return old;
}
inline int atomicCAS(int* a, int c, int v) { return emu_atomic_cas(a, c, v); }
inline unsigned atomicCAS(unsigned* a, unsigned c, unsigned v) { return emu_atomic_cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c,
                                    unsigned long long v) {
    return emu_atomic_cas(a, c, v);
}
inline int atomicMax(int* a, int v) { int old = *a; if (v > old) *a = v; return old; }
inline int atomicMin(int* a, int v) { int old = *a; if (v < old) *a = v; return old; }
inline unsigned atomicMax(unsigned* a, unsigned v) { unsigned old = *a; if (v > old) *a = v; return old; }
inline unsigned atomicMin(unsigned* a, unsigned v) { unsigned old = *a; if (v < old) *a = v; return old; }

// ---- math: the device functions KERNELS.md allows ----
// float versions stay float (no silent double temporaries); the fast-math intrinsics
// (__expf, __fdividef ...) are exact here, which is why tests compare with tolerances.
using std::exp, std::log, std::sqrt, std::tanh, std::erf, std::fabs, std::fmax, std::fmin,
    std::floor, std::ceil, std::pow, std::log1p, std::expm1, std::isnan, std::isinf;
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }
inline unsigned __umulhi(unsigned a, unsigned b) {
    return unsigned((static_cast<unsigned long long>(a) * b) >> 32);
}
template <typename T>
inline T __ldg(const T* p) { return *p; }
inline int max(int a, int b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline float max(float a, float b) { return fmaxf(a, b); }
inline float min(float a, float b) { return fminf(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
