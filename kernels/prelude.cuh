// prelude.cuh — prepended by every loader (NVRTC on a GPU, nvcc in the compile gate, g++ in
// the CPU emulator) in front of each kernel file. Kernel files have no #include of their own.
//
// It holds what every family needs: dynamic shared memory, infinities (NVRTC has no
// INFINITY macro), type-generic math so one template serves float and double, and the warp /
// block reductions the ladders build on.

#define FULL_MASK 0xffffffffu
#define NEG_INF_F (-__int_as_float(0x7f800000))
#define POS_INF_F (__int_as_float(0x7f800000))

#ifndef MINIDL_CUDA_EMU
// One raw byte buffer at file scope, shared by every kernel of the file (a buffer declared
// inside each kernel made NVRTC warn when template and extern "C" kernels both used one).
// The emulator defines DYN_SMEM itself (a buffer refilled with 0xFF before every block).
extern __shared__ __align__(16) unsigned char minidl_dyn_smem[];
#define DYN_SMEM(T, name) T* name = reinterpret_cast<T*>(minidl_dyn_smem)
#endif

// ---- type-generic math: float stays float, double stays double ----
// expf/logf rather than the __expf/__logf intrinsics: the tests compare float32 results with
// float64 references at ~1e-5 relative error, which the fast intrinsics do not promise.
__device__ __forceinline__ float dev_exp(float x) { return expf(x); }
__device__ __forceinline__ double dev_exp(double x) { return exp(x); }
__device__ __forceinline__ float dev_log(float x) { return logf(x); }
__device__ __forceinline__ double dev_log(double x) { return log(x); }
__device__ __forceinline__ float dev_max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double dev_max(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ float dev_rsqrt(float x) { return rsqrtf(x); }
__device__ __forceinline__ double dev_rsqrt(double x) { return rsqrt(x); }
__device__ __forceinline__ float dev_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double dev_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float dev_erf(float x) { return erff(x); }
__device__ __forceinline__ double dev_erf(double x) { return erf(x); }
__device__ __forceinline__ float dev_erfc(float x) { return erfcf(x); }
__device__ __forceinline__ double dev_erfc(double x) { return erfc(x); }
__device__ __forceinline__ float dev_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double dev_abs(double x) { return fabs(x); }
__device__ __forceinline__ float dev_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double dev_sqrt(double x) { return sqrt(x); }

template <typename T> __device__ __forceinline__ T neg_inf();
template <> __device__ __forceinline__ float neg_inf<float>() { return NEG_INF_F; }
template <> __device__ __forceinline__ double neg_inf<double>() {
    return -__longlong_as_double(0x7ff0000000000000LL);
}

// ---- reductions ----
struct SumOp {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const {
        return dev_max(a, b);
    }
};

// Butterfly reduction: after log2(32) = 5 exchanges every lane holds the result of the warp
// (xor pairs lanes so that no lane is idle and no broadcast is needed afterwards).
template <typename T, typename Op>
__device__ __forceinline__ T warp_allreduce(T value, Op op) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1)
        value = op(value, __shfl_xor_sync(FULL_MASK, value, offset));
    return value;
}

// Reduce one value per thread over the whole block; every thread gets the result.
// Requires blockDim.x a multiple of 32 (<= 1024) and a 1-D block; every thread must call it
// (it holds two barriers). `scratch` needs 32 elements of shared memory.
// The second barrier lets the caller reuse `scratch` right away for the next reduction.
template <typename T, typename Op>
__device__ __forceinline__ T block_allreduce(T value, Op op, T identity, T* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    value = warp_allreduce(value, op);
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    // Every warp re-reduces the per-warp partials, so all threads end with the answer.
    value = lane < int(blockDim.x >> 5) ? scratch[lane] : identity;
    value = warp_allreduce(value, op);
    __syncthreads();
    return value;
}
