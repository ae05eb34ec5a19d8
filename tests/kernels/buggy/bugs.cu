// Deliberately broken kernels: each one commits a bug class the CPU emulator must catch.
// The tests in test_harness.py name them; line numbers matter to those tests (they search
// for the marker comments, so keep each marker on the faulty line).

// Early return before a barrier: threads past n never reach __syncthreads.
extern "C" __global__ void early_return_barrier(const float* x, float* y, int n) {
    __shared__ float tile[64];
    int i = threadIdx.x;
    if (i >= n) return;
    tile[i] = x[i];
    __syncthreads();  // BUG: early_return_barrier
    y[i] = tile[(i + 1) % n];
}

// Two different barriers depending on the thread.
extern "C" __global__ void divergent_barrier(float* y) {
    if (threadIdx.x < 32) {
        y[threadIdx.x] = 1.0f;
        __syncthreads();  // BUG: divergent_barrier_a
    } else {
        y[threadIdx.x] = 2.0f;
        __syncthreads();  // BUG: divergent_barrier_b
    }
}

// Missing barrier: each thread reads the value its neighbour wrote, without waiting for it.
extern "C" __global__ void missing_barrier(const float* x, float* y, int n) {
    DYN_SMEM(float, tile);
    int i = threadIdx.x;
    tile[i] = i < n ? x[i] : 0.0f;
    // BUG: missing_barrier (a __syncthreads() belongs here)
    float right = tile[(i + 1) % blockDim.x];
    float left = tile[(i + blockDim.x - 1) % blockDim.x];
    if (i < n) y[i] = left + right;
}

// Missing barrier that the forward order hides: thread i reads what thread i-1 wrote. Run
// forward, thread i-1 has already finished when thread i starts; only reverse order sees it.
extern "C" __global__ void missing_barrier_left(const float* x, float* y, int n) {
    DYN_SMEM(float, tile);
    int i = threadIdx.x;
    tile[i] = i < n ? x[i] : 0.0f;
    // BUG: missing_barrier_left (a __syncthreads() belongs here)
    float left = i > 0 ? tile[i - 1] : 0.0f;
    if (i < n) y[i] = left;
}

// A shuffle whose mask names lanes that return early.
extern "C" __global__ void shuffle_partial_mask(float* y) {
    if (threadIdx.x >= 16) return;
    float v = __shfl_down_sync(FULL_MASK, 1.0f, 1);  // BUG: shuffle_partial_mask
    y[threadIdx.x] = v;
}

// A shuffle reading a lane outside its mask (lane 15 reads lane 16).
extern "C" __global__ void shuffle_outside_mask(float* y) {
    if (threadIdx.x < 16) {
        float v = __shfl_down_sync(0x0000ffffu, float(threadIdx.x), 1);  // BUG: shuffle_outside_mask
        y[threadIdx.x] = v;
    }
}

// Off-by-one: reads one element past the end of the input.
extern "C" __global__ void global_out_of_bounds(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] + x[i + 1];  // BUG: global_out_of_bounds
}

// Off-by-one in shared memory: writes one slot past the dynamic buffer.
extern "C" __global__ void shared_out_of_bounds(const float* x, float* y, int n) {
    DYN_SMEM(float, tile);
    int i = threadIdx.x;
    tile[i + 1] = i < n ? x[i] : 0.0f;  // BUG: shared_out_of_bounds
    __syncthreads();
    if (i < n) y[i] = tile[i];
}

// Correct kernel with the same shape as the buggy ones (so the tests have a control).
extern "C" __global__ void neighbour_sum(const float* x, float* y, int n) {
    DYN_SMEM(float, tile);
    int i = threadIdx.x;
    tile[i] = i < n ? x[i] : 0.0f;
    __syncthreads();
    float right = tile[(i + 1) % blockDim.x];
    float left = tile[(i + blockDim.x - 1) % blockDim.x];
    if (i < n) y[i] = left + right;
}
