/* softmax.cu — softmax and log-softmax over the last axis of a C-contiguous (rows, cols) array.
 *
 *   softmax(x)_c     = exp(x_c - m) / sum_k exp(x_k - m),      m = max_k x_k
 *   log_softmax(x)_c = x_c - m - log(sum_k exp(x_k - m))
 * Subtracting the row max m changes nothing mathematically but keeps exp() from overflowing:
 * every exponent is <= 0. One kernel serves both functions (`log_mode` = 0 or 1).
 *
 * Backward, with y the forward output and dy the incoming gradient:
 *   softmax:     dx = y * (dy - sum_k dy_k y_k)
 *   log_softmax: dx = dy - exp(y) * sum_k dy_k
 *
 * Ladder (each entry: [op version] kernel: the one idea it adds; limits):
 *   [softmax_forward v1] softmax_fwd_v1: one thread per row, three passes over the row
 *       (max, sum of exp, write). Any shape; slow (no coalescing, few threads).
 *   [softmax_forward v2] softmax_fwd_v2: one block per row; threads stride over the columns
 *       and combine partial max / sum by a tree reduction in shared memory.
 *       blockDim.x a power of two; blockDim.x * sizeof(T) bytes of dynamic shared memory.
 *   [softmax_forward v3] softmax_fwd_v3: v2 with warp shuffles: lanes reduce in registers,
 *       only one value per warp goes through shared memory. blockDim.x a multiple of 32.
 *   [softmax_forward v4] softmax_fwd_v4: online softmax: max and sum in ONE read of the row
 *       (when a larger max appears, the running sum is rescaled by exp(old - new)), so the
 *       row is read twice instead of three times. blockDim.x a multiple of 32.
 *   [softmax_backward v1] softmax_bwd_v1: one thread per row, two passes. Any shape.
 *   [softmax_backward v2] softmax_bwd_v2: one block per row, warp-shuffle block reduction of
 *       the row sum. blockDim.x a multiple of 32.
 * Rows go on gridDim.x (at most 2^31 - 1 rows); offsets are computed in 64 bits.
 */

// ---------------- forward ----------------

template <typename T>
__device__ void softmax_fwd_v1(const T* __restrict__ x, T* __restrict__ y, long long rows,
                               int cols, int log_mode) {
    const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) return;  // no barrier in this kernel, so an early return is safe
    const T* xr = x + row * cols;
    T* yr = y + row * cols;
    T m = neg_inf<T>();
    for (int c = 0; c < cols; ++c) m = dev_max(m, xr[c]);
    T sum = 0;
    for (int c = 0; c < cols; ++c) sum += dev_exp(xr[c] - m);
    if (log_mode) {
        const T log_sum = dev_log(sum);
        for (int c = 0; c < cols; ++c) yr[c] = xr[c] - m - log_sum;
    } else {
        const T inv = T(1) / sum;
        for (int c = 0; c < cols; ++c) yr[c] = dev_exp(xr[c] - m) * inv;
    }
}

// Tree reduction over blockDim.x values in shared memory: at each step the lower half adds
// the upper half. The barrier after each step is what makes the next step read finished
// values; the barrier before returning lets the caller overwrite `buf` again.
template <typename T, typename Op>
__device__ T tree_reduce(T* buf, T value, Op op) {
    const int tid = threadIdx.x;
    buf[tid] = value;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (tid < half) buf[tid] = op(buf[tid], buf[tid + half]);
        __syncthreads();
    }
    const T result = buf[0];
    __syncthreads();
    return result;
}

template <typename T>
__device__ void softmax_fwd_v2(const T* __restrict__ x, T* __restrict__ y, int cols, int log_mode) {
    DYN_SMEM(T, buf);
    const T* xr = x + (long long)blockIdx.x * cols;
    T* yr = y + (long long)blockIdx.x * cols;
    T m = neg_inf<T>();
    for (int c = threadIdx.x; c < cols; c += blockDim.x) m = dev_max(m, xr[c]);
    m = tree_reduce(buf, m, MaxOp());
    T sum = 0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) sum += dev_exp(xr[c] - m);
    sum = tree_reduce(buf, sum, SumOp());
    const T log_sum = dev_log(sum), inv = T(1) / sum;
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        yr[c] = log_mode ? xr[c] - m - log_sum : dev_exp(xr[c] - m) * inv;
}

template <typename T>
__device__ void softmax_fwd_v3(const T* __restrict__ x, T* __restrict__ y, int cols, int log_mode) {
    __shared__ T scratch[32];
    const T* xr = x + (long long)blockIdx.x * cols;
    T* yr = y + (long long)blockIdx.x * cols;
    T m = neg_inf<T>();
    for (int c = threadIdx.x; c < cols; c += blockDim.x) m = dev_max(m, xr[c]);
    m = block_allreduce(m, MaxOp(), neg_inf<T>(), scratch);
    T sum = 0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) sum += dev_exp(xr[c] - m);
    sum = block_allreduce(sum, SumOp(), T(0), scratch);
    const T log_sum = dev_log(sum), inv = T(1) / sum;
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        yr[c] = log_mode ? xr[c] - m - log_sum : dev_exp(xr[c] - m) * inv;
}

// Online softmax state: running max m and sum d = sum exp(x - m) of the values seen so far.
// Merging (m1, d1) and (m2, d2): m = max(m1, m2), d = d1 exp(m1 - m) + d2 exp(m2 - m).
// Trap: a thread that saw no value (cols < blockDim.x) holds m = -inf, and
// exp(-inf - (-inf)) = exp(NaN); such a side must contribute 0, not NaN.
template <typename T>
__device__ __forceinline__ void online_merge(T& m, T& d, T m_other, T d_other) {
    const T m_new = dev_max(m, m_other);
    const T scale = m == neg_inf<T>() ? T(0) : dev_exp(m - m_new);
    const T scale_other = m_other == neg_inf<T>() ? T(0) : dev_exp(m_other - m_new);
    d = d * scale + d_other * scale_other;
    m = m_new;
}

template <typename T>
__device__ void softmax_fwd_v4(const T* __restrict__ x, T* __restrict__ y, int cols, int log_mode) {
    __shared__ T scratch_m[32];
    __shared__ T scratch_d[32];
    const T* xr = x + (long long)blockIdx.x * cols;
    T* yr = y + (long long)blockIdx.x * cols;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    T m = neg_inf<T>(), d = 0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) online_merge(m, d, xr[c], T(1));
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        const T m_other = __shfl_xor_sync(FULL_MASK, m, offset);
        const T d_other = __shfl_xor_sync(FULL_MASK, d, offset);
        online_merge(m, d, m_other, d_other);
    }
    if (lane == 0) {
        scratch_m[warp] = m;
        scratch_d[warp] = d;
    }
    __syncthreads();
    m = neg_inf<T>();
    d = 0;
    if (lane < int(blockDim.x >> 5)) {
        m = scratch_m[lane];
        d = scratch_d[lane];
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        const T m_other = __shfl_xor_sync(FULL_MASK, m, offset);
        const T d_other = __shfl_xor_sync(FULL_MASK, d, offset);
        online_merge(m, d, m_other, d_other);
    }
    const T log_sum = dev_log(d), inv = T(1) / d;
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        yr[c] = log_mode ? xr[c] - m - log_sum : dev_exp(xr[c] - m) * inv;
}

// ---------------- backward ----------------

template <typename T>
__device__ void softmax_bwd_v1(const T* __restrict__ y, const T* __restrict__ dy,
                               T* __restrict__ dx, long long rows, int cols, int log_mode) {
    const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) return;
    const T *yr = y + row * cols, *dyr = dy + row * cols;
    T* dxr = dx + row * cols;
    T dot = 0;  // softmax: sum dy*y ; log_softmax: sum dy
    for (int c = 0; c < cols; ++c) dot += log_mode ? dyr[c] : dyr[c] * yr[c];
    for (int c = 0; c < cols; ++c)
        dxr[c] = log_mode ? dyr[c] - dev_exp(yr[c]) * dot : yr[c] * (dyr[c] - dot);
}

template <typename T>
__device__ void softmax_bwd_v2(const T* __restrict__ y, const T* __restrict__ dy,
                               T* __restrict__ dx, int cols, int log_mode) {
    __shared__ T scratch[32];
    const long long base = (long long)blockIdx.x * cols;
    const T *yr = y + base, *dyr = dy + base;
    T* dxr = dx + base;
    T dot = 0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) dot += log_mode ? dyr[c] : dyr[c] * yr[c];
    dot = block_allreduce(dot, SumOp(), T(0), scratch);
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        dxr[c] = log_mode ? dyr[c] - dev_exp(yr[c]) * dot : yr[c] * (dyr[c] - dot);
}

// ---------------- entry points: one per version and dtype ----------------

extern "C" __global__ void softmax_fwd_v1_f32(const float* x, float* y, long long rows, int cols, int log_mode) {
    softmax_fwd_v1<float>(x, y, rows, cols, log_mode);
}
extern "C" __global__ void softmax_fwd_v2_f32(const float* x, float* y, int cols, int log_mode) {
    softmax_fwd_v2<float>(x, y, cols, log_mode);
}
extern "C" __global__ void softmax_fwd_v3_f32(const float* x, float* y, int cols, int log_mode) {
    softmax_fwd_v3<float>(x, y, cols, log_mode);
}
extern "C" __global__ void softmax_fwd_v4_f32(const float* x, float* y, int cols, int log_mode) {
    softmax_fwd_v4<float>(x, y, cols, log_mode);
}
extern "C" __global__ void softmax_bwd_v1_f32(const float* y, const float* dy, float* dx, long long rows, int cols,
                                             int log_mode) {
    softmax_bwd_v1<float>(y, dy, dx, rows, cols, log_mode);
}
extern "C" __global__ void softmax_bwd_v2_f32(const float* y, const float* dy, float* dx, int cols, int log_mode) {
    softmax_bwd_v2<float>(y, dy, dx, cols, log_mode);
}

extern "C" __global__ void softmax_fwd_v1_f64(const double* x, double* y, long long rows, int cols, int log_mode) {
    softmax_fwd_v1<double>(x, y, rows, cols, log_mode);
}
extern "C" __global__ void softmax_fwd_v2_f64(const double* x, double* y, int cols, int log_mode) {
    softmax_fwd_v2<double>(x, y, cols, log_mode);
}
extern "C" __global__ void softmax_fwd_v3_f64(const double* x, double* y, int cols, int log_mode) {
    softmax_fwd_v3<double>(x, y, cols, log_mode);
}
extern "C" __global__ void softmax_fwd_v4_f64(const double* x, double* y, int cols, int log_mode) {
    softmax_fwd_v4<double>(x, y, cols, log_mode);
}
extern "C" __global__ void softmax_bwd_v1_f64(const double* y, const double* dy, double* dx, long long rows, int cols,
                                             int log_mode) {
    softmax_bwd_v1<double>(y, dy, dx, rows, cols, log_mode);
}
extern "C" __global__ void softmax_bwd_v2_f64(const double* y, const double* dy, double* dx, int cols, int log_mode) {
    softmax_bwd_v2<double>(y, dy, dx, cols, log_mode);
}
