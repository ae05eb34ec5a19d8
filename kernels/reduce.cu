/* reduce.cu — the sum of all n elements of a contiguous array: the classic reduction ladder.
 *
 * `out` is one element. The atomic versions ADD into it, so the host zeroes it first.
 * float32 input is summed in float32 (as PyTorch does on a GPU): the error grows with n,
 * and differs between versions because the order of additions differs.
 *
 * Ladder (each entry: [op version] kernels: the one idea it adds; limits):
 *   [sum v1] sum_v1: one thread per element, each does atomicAdd(out, x[i]). Correct but
 *       every add serialises on one address. Grid = ceil(n / blockDim.x) blocks (< 2^31).
 *   [sum v2] sum_v2: each block sums its blockDim.x elements by a tree in shared memory and
 *       does ONE atomicAdd. blockDim.x a power of two; blockDim.x * sizeof(T) bytes of
 *       dynamic shared memory.
 *   [sum v3] sum_v3: grid-stride loop (a fixed, small grid; each thread first sums many
 *       elements in a register) + warp-shuffle block reduction + one atomicAdd per block.
 *       blockDim.x a multiple of 32.
 *   [sum v4] sum_v4_partials, sum_v4_finish: deterministic two-pass sum without atomics:
 *       pass 1 writes one partial per block (as v3), pass 2 (one block) sums the partials.
 *       Same bits on every run. blockDim.x a multiple of 32; gridDim.x of pass 1 is the
 *       number of partials.
 */

template <typename T>
__device__ void sum_v1(const T* __restrict__ x, T* out, long long n) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) atomicAdd(out, x[i]);
}

template <typename T>
__device__ void sum_v2(const T* __restrict__ x, T* out, long long n) {
    DYN_SMEM(T, buf);
    const int tid = threadIdx.x;
    const long long i = (long long)blockIdx.x * blockDim.x + tid;
    buf[tid] = i < n ? x[i] : T(0);  // out-of-range threads still take part in the barriers
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (tid < half) buf[tid] += buf[tid + half];
        __syncthreads();
    }
    if (tid == 0) atomicAdd(out, buf[0]);
}

// Sum of this block's share of a grid-stride loop, reduced over the block.
template <typename T>
__device__ T grid_stride_block_sum(const T* __restrict__ x, long long n) {
    __shared__ T scratch[32];
    T acc = 0;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) acc += x[i];
    return block_allreduce(acc, SumOp(), T(0), scratch);
}

template <typename T>
__device__ void sum_v3(const T* __restrict__ x, T* out, long long n) {
    const T block_sum = grid_stride_block_sum(x, n);
    if (threadIdx.x == 0) atomicAdd(out, block_sum);
}

template <typename T>
__device__ void sum_v4_partials(const T* __restrict__ x, T* __restrict__ partials, long long n) {
    const T block_sum = grid_stride_block_sum(x, n);
    if (threadIdx.x == 0) partials[blockIdx.x] = block_sum;
}

template <typename T>
__device__ void sum_v4_finish(const T* __restrict__ partials, T* __restrict__ out, int count) {
    const T total = grid_stride_block_sum(partials, (long long)count);  // launched with 1 block
    if (threadIdx.x == 0) out[0] = total;
}

extern "C" __global__ void sum_v1_f32(const float* x, float* out, long long n) { sum_v1<float>(x, out, n); }
extern "C" __global__ void sum_v2_f32(const float* x, float* out, long long n) { sum_v2<float>(x, out, n); }
extern "C" __global__ void sum_v3_f32(const float* x, float* out, long long n) { sum_v3<float>(x, out, n); }
extern "C" __global__ void sum_v4_partials_f32(const float* x, float* partials, long long n) {
    sum_v4_partials<float>(x, partials, n);
}
extern "C" __global__ void sum_v4_finish_f32(const float* partials, float* out, int count) {
    sum_v4_finish<float>(partials, out, count);
}
extern "C" __global__ void sum_v1_f64(const double* x, double* out, long long n) { sum_v1<double>(x, out, n); }
extern "C" __global__ void sum_v2_f64(const double* x, double* out, long long n) { sum_v2<double>(x, out, n); }
extern "C" __global__ void sum_v3_f64(const double* x, double* out, long long n) { sum_v3<double>(x, out, n); }
extern "C" __global__ void sum_v4_partials_f64(const double* x, double* partials, long long n) {
    sum_v4_partials<double>(x, partials, n);
}
extern "C" __global__ void sum_v4_finish_f64(const double* partials, double* out, int count) {
    sum_v4_finish<double>(partials, out, count);
}
