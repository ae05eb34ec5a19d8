/* matmul.cu — C = A @ B for row-major A (M, K), B (K, N), C (M, N), batched over gridDim.z.
 *
 * Batch b uses A + b*stride_a, B + b*stride_b, C + b*stride_c (a stride of 0 broadcasts one
 * matrix over the batch). The grid is (ceil(N / tile_n), ceil(M / tile_m), batch).
 * Accumulation is in T: a float32 matmul of length K has relative error ~ sqrt(K) * 6e-8.
 *
 * Ladder (each entry: [op version] kernel: the one idea it adds; limits):
 *   [matmul v1] matmul_v1: one thread per C element, reading a row of A and a column of B
 *       straight from global memory (each input element is read M or N times).
 *       Block (16, 16); tile 16 x 16.
 *   [matmul v2] matmul_v2: shared-memory tiling: the block loads a 16x16 tile of A and of B
 *       once, then every thread reuses them 16 times; global traffic drops 16x.
 *       Block (16, 16); tile 16 x 16.
 *   [matmul v3] matmul_v3: register blocking: a 64x64 C tile per block of 256 threads, each
 *       thread keeps a 4x4 block of C in registers, so every shared-memory value it reads
 *       feeds 4 multiply-adds. Block (16, 16); tile 64 x 64; K step 16.
 * Limits (all versions): ceil(M / tile) <= 65535, batch <= 65535, M, N, K < 2^31.
 */

template <typename T>
__device__ void matmul_v1(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c,
                          int m, int n, int k, long long stride_a, long long stride_b,
                          long long stride_c) {
    a += blockIdx.z * stride_a;
    b += blockIdx.z * stride_b;
    c += blockIdx.z * stride_c;
    const int row = blockIdx.y * 16 + threadIdx.y, col = blockIdx.x * 16 + threadIdx.x;
    if (row >= m || col >= n) return;  // no barrier in this version
    T acc = 0;
    for (int i = 0; i < k; ++i) acc += a[(long long)row * k + i] * b[(long long)i * n + col];
    c[(long long)row * n + col] = acc;
}

template <typename T>
__device__ void matmul_v2(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c,
                          int m, int n, int k, long long stride_a, long long stride_b,
                          long long stride_c) {
    __shared__ T tile_a[16][16];
    __shared__ T tile_b[16][16];
    a += blockIdx.z * stride_a;
    b += blockIdx.z * stride_b;
    c += blockIdx.z * stride_c;
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int row = blockIdx.y * 16 + ty, col = blockIdx.x * 16 + tx;
    T acc = 0;
    for (int k0 = 0; k0 < k; k0 += 16) {
        // Out-of-range elements load as 0, so partial tiles need no special inner loop.
        tile_a[ty][tx] = (row < m && k0 + tx < k) ? a[(long long)row * k + k0 + tx] : T(0);
        tile_b[ty][tx] = (k0 + ty < k && col < n) ? b[(long long)(k0 + ty) * n + col] : T(0);
        __syncthreads();  // the tiles are complete
#pragma unroll
        for (int i = 0; i < 16; ++i) acc += tile_a[ty][i] * tile_b[i][tx];
        __syncthreads();  // everyone is done reading before the next tiles overwrite them
    }
    if (row < m && col < n) c[(long long)row * n + col] = acc;
}

template <typename T>
__device__ void matmul_v3(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c,
                          int m, int n, int k, long long stride_a, long long stride_b,
                          long long stride_c) {
    constexpr int TILE = 64, KSTEP = 16, REG = 4;  // 16 x 16 threads x (4 x 4) = 64 x 64
    // A is stored transposed (k-major) so that the inner loop reads 4 rows of A for one k
    // from neighbouring addresses, like it reads 4 columns of B.
    __shared__ T tile_a[KSTEP][TILE];
    __shared__ T tile_b[KSTEP][TILE];
    a += blockIdx.z * stride_a;
    b += blockIdx.z * stride_b;
    c += blockIdx.z * stride_c;
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const int row0 = blockIdx.y * TILE, col0 = blockIdx.x * TILE;
    T acc[REG][REG];
#pragma unroll
    for (int i = 0; i < REG; ++i)
#pragma unroll
        for (int j = 0; j < REG; ++j) acc[i][j] = 0;
    for (int k0 = 0; k0 < k; k0 += KSTEP) {
        // 256 threads load 64 x 16 elements of each input: 4 each.
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            const int e = tid + l * 256;
            const int ar = e / KSTEP, ak = e % KSTEP;  // A tile: 64 rows x 16 k, row-major read
            tile_a[ak][ar] = (row0 + ar < m && k0 + ak < k) ? a[(long long)(row0 + ar) * k + k0 + ak] : T(0);
            const int bk = e / TILE, bc = e % TILE;    // B tile: 16 k x 64 cols
            tile_b[bk][bc] = (k0 + bk < k && col0 + bc < n) ? b[(long long)(k0 + bk) * n + col0 + bc] : T(0);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < KSTEP; ++kk) {
            T a_reg[REG], b_reg[REG];
            // Thread (tx, ty) owns rows ty + 16 i and columns tx + 16 j of the tile: strided
            // ownership makes neighbouring threads write neighbouring columns of C.
#pragma unroll
            for (int i = 0; i < REG; ++i) a_reg[i] = tile_a[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < REG; ++j) b_reg[j] = tile_b[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < REG; ++i)
#pragma unroll
                for (int j = 0; j < REG; ++j) acc[i][j] += a_reg[i] * b_reg[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < REG; ++i)
#pragma unroll
        for (int j = 0; j < REG; ++j) {
            const int row = row0 + ty + 16 * i, col = col0 + tx + 16 * j;
            if (row < m && col < n) c[(long long)row * n + col] = acc[i][j];
        }
}

extern "C" __global__ void matmul_v1_f32(const float* a, const float* b, float* c, int m, int n, int k,
                                         long long stride_a, long long stride_b, long long stride_c) {
    matmul_v1<float>(a, b, c, m, n, k, stride_a, stride_b, stride_c);
}
extern "C" __global__ void matmul_v2_f32(const float* a, const float* b, float* c, int m, int n, int k,
                                         long long stride_a, long long stride_b, long long stride_c) {
    matmul_v2<float>(a, b, c, m, n, k, stride_a, stride_b, stride_c);
}
extern "C" __global__ void matmul_v3_f32(const float* a, const float* b, float* c, int m, int n, int k,
                                         long long stride_a, long long stride_b, long long stride_c) {
    matmul_v3<float>(a, b, c, m, n, k, stride_a, stride_b, stride_c);
}
extern "C" __global__ void matmul_v1_f64(const double* a, const double* b, double* c, int m, int n, int k,
                                         long long stride_a, long long stride_b, long long stride_c) {
    matmul_v1<double>(a, b, c, m, n, k, stride_a, stride_b, stride_c);
}
extern "C" __global__ void matmul_v2_f64(const double* a, const double* b, double* c, int m, int n, int k,
                                         long long stride_a, long long stride_b, long long stride_c) {
    matmul_v2<double>(a, b, c, m, n, k, stride_a, stride_b, stride_c);
}
extern "C" __global__ void matmul_v3_f64(const double* a, const double* b, double* c, int m, int n, int k,
                                         long long stride_a, long long stride_b, long long stride_c) {
    matmul_v3<double>(a, b, c, m, n, k, stride_a, stride_b, stride_c);
}
