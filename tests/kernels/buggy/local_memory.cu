// A per-thread array indexed with run-time values cannot live in registers: it goes to the
// stack frame in local memory (slow). The compile gate must reject it.
extern "C" __global__ void dynamic_index(float* y, int k) {
    float local[64];
    for (int i = 0; i < 64; ++i) local[(i * k) & 63] = y[i];
    y[threadIdx.x] = local[k & 63] + local[(k + 1) & 63];
}
