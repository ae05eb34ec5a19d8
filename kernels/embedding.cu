/* embedding.cu — the gradient of an embedding lookup (y[i] = weight[indices[i]]).
 *
 * dweight[e] = sum of the dy rows whose index is e; the row at padding_idx stays 0 (PyTorch's
 * rule: the padding vector is not trained). `padding_idx` < 0 means "none"; the host zeroes
 * dweight, so rows that no index names are 0.
 * Trap: an index that appears several times must receive the SUM of its rows. Two threads
 * adding to the same row need atomics (v1), and float atomics finish in whatever order the
 * hardware schedules them, so the last bits of the sum change from run to run. v2 is
 * deterministic: the host sorts the positions by index (a stable sort), every run of equal
 * indices becomes one segment, and one thread per column adds the segment's rows in order.
 *
 * Ladder (each entry: [op version] kernel: the one idea it adds; limits):
 *   [embedding_backward v1] emb_bwd_atomic_v1: one thread per element of dy, atomicAdd into
 *       its table row; grid-stride. Any shape; NOT bit-reproducible on a GPU.
 *   [embedding_backward v2] emb_bwd_sorted_v2: one block per segment of equal indices (after a
 *       stable sort on the host), threads over the columns, rows added in a fixed order: no
 *       atomics, bit-reproducible. Segments <= 2^31 - 1, ceil(D / blockDim.x) <= 65535. One very
 *       frequent index makes one long serial segment (a hot row costs its count in time).
 */

template <typename T>
__device__ void emb_bwd_atomic_v1(const long long* __restrict__ indices, const T* __restrict__ dy,
                                  T* __restrict__ dweight, long long n, int dim, long long padding_idx) {
    const long long total = n * dim, stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const long long row = indices[e / dim];
        if (row != padding_idx) atomicAdd(&dweight[row * dim + e % dim], dy[e]);
    }
}

template <typename T>
__device__ void emb_bwd_sorted_v2(const long long* __restrict__ order, const long long* __restrict__ seg_start,
                                  const long long* __restrict__ seg_index, const T* __restrict__ dy,
                                  T* __restrict__ dweight, int dim, long long padding_idx) {
    const long long seg = blockIdx.x, row = seg_index[seg];
    const int col = blockIdx.y * blockDim.x + threadIdx.x;
    if (col >= dim || row == padding_idx) return;  // no barrier in this kernel
    T acc = 0;
    for (long long k = seg_start[seg]; k < seg_start[seg + 1]; ++k) acc += dy[order[k] * dim + col];
    dweight[row * dim + col] = acc;
}

extern "C" __global__ void emb_bwd_atomic_v1_f32(const long long* indices, const float* dy, float* dweight,
                                                 long long n, int dim, long long padding_idx) {
    emb_bwd_atomic_v1<float>(indices, dy, dweight, n, dim, padding_idx);
}
extern "C" __global__ void emb_bwd_atomic_v1_f64(const long long* indices, const double* dy, double* dweight,
                                                 long long n, int dim, long long padding_idx) {
    emb_bwd_atomic_v1<double>(indices, dy, dweight, n, dim, padding_idx);
}
extern "C" __global__ void emb_bwd_sorted_v2_f32(const long long* order, const long long* seg_start,
                                                 const long long* seg_index, const float* dy, float* dweight,
                                                 int dim, long long padding_idx) {
    emb_bwd_sorted_v2<float>(order, seg_start, seg_index, dy, dweight, dim, padding_idx);
}
extern "C" __global__ void emb_bwd_sorted_v2_f64(const long long* order, const long long* seg_start,
                                                 const long long* seg_index, const double* dy, double* dweight,
                                                 int dim, long long padding_idx) {
    emb_bwd_sorted_v2<double>(order, seg_start, seg_index, dy, dweight, dim, padding_idx);
}
