/* crossentropy.cu — cross-entropy from logits with class-index targets (PyTorch semantics).
 *
 * For row i with logits z (C classes), target y, class weights w (all 1 without weight),
 * label smoothing e, lse = logsumexp(z) and -log p_c = lse - z_c:
 *
 *   loss_i = (1 - e) * w_y * (lse - z_y)  +  (e / C) * sum_c w_c * (lse - z_c)
 *   dloss_i / dz_j = (1 - e) * w_y * (p_j - [j == y])  +  (e / C) * (W * p_j - w_j),  W = sum_c w_c
 *
 * A row whose target equals ignore_index gets loss 0 and a zero gradient (its target is never
 * used as an index: it may lie outside 0..C-1). With m the row max and
 * log_d = log sum_c exp(z_c - m) (so lse = m + log_d), every forward writes the pair
 * row_stats[row] = (m, log_d) for every row (row_stats is (N, 2), row-major); the backward gets
 * p_j = exp((z_j - m) - log_d) from it without a second reduction over the row.
 *
 * Traps, for logits of large magnitude (~1e4) in float32:
 *   - lse itself is only known to ~1e-3 there, which would swamp a loss of order 1. The loss
 *     never uses a rounded lse: with m the row max and log_d = log sum_c exp(z_c - m),
 *     lse - z_c = (m - z_c) + log_d, two small and accurate terms.
 *   - the smoothing sum sum_c w_c (lse - z_c) must not be computed as W*lse - sum_c w_c z_c:
 *     both terms are ~1e4*W and their difference loses every digit. Every version keeps it as
 *     a sum of non-negative terms: sum_c w_c (lse - z_c) = W * log_d + S, S = sum_c w_c (m - z_c).
 *     The one-pass versions update S when a larger max m' appears: S += W_seen * (m' - m).
 *   - the gradient of the target class, p_y - 1, is a small difference when p_y is close to 1
 *     (a well-trained classifier). Formed as exp(z_y - lse) from a float32 lse, the rounding of
 *     lse (an ulp of ~1e-6 at |lse| ~ 10) becomes a relative error of ~1e-3 in p_y - 1 when
 *     1 - p_y ~ 1e-3, enough to make float32 training drift from PyTorch. So the forward never
 *     rounds lse as one number: it stores m and log_d apart, and the backward forms
 *     (z_j - m) - log_d, two small and accurate terms (as PyTorch's log_softmax does).
 *
 * Ladder (each entry: [op version] kernel: the one idea it adds; limits):
 *   [cross_entropy_forward v1] ce_fwd_v1: one thread per row, three passes (max, sum of exp,
 *       loss terms). Any shape (C < 2^31).
 *   [cross_entropy_forward v2] ce_fwd_v2: one block per row and ONE read of the row: the
 *       online softmax state (max, sum of exp) and the smoothing sums (S, W) are carried
 *       together and merged across threads by warp shuffles, then across warps in shared
 *       memory. blockDim.x a multiple of 32; rows < 2^31.
 *   [cross_entropy_forward v3] ce_fwd_v3: one WARP per row, several rows per block, no
 *       __syncthreads at all: for the small class counts of language models over characters
 *       (C ~ 100) a whole block per row leaves most threads idle. blockDim.x a multiple of 32.
 *   [cross_entropy_backward v1] ce_bwd_v1: one thread per row, one pass. Any shape.
 *   [cross_entropy_backward v2] ce_bwd_v2: one block per row, threads stride over the
 *       columns (coalesced reads and writes); no reduction is needed since (m, log_d) is known.
 *       blockDim.x a multiple of 32; rows < 2^31.
 * Pointers: target is int64 (N,); row_stats is (N, 2) row-major, (m, log_d) per row (written by
 * the forward, read by the backward); weight is (C,) or a 1-element placeholder when has_weight
 * is 0; weight_sum (backward) is a 1-element array holding W (C when has_weight is 0).
 */

// ---------------- shared pieces ----------------

// The weight of class c (1 when there are no class weights).
template <typename T>
__device__ __forceinline__ T class_weight(const T* weight, int has_weight, long long c) {
    return has_weight ? weight[c] : T(1);
}

// The loss of one kept row from the row max m, log_d = log sum_c exp(z_c - m) (so that
// lse = m + log_d), z_y, w_y and the smoothing sums. lse is never formed here: for logits
// around 1e4 its float32 rounding (~1e-3) would swamp a loss of order 1, while
// lse - z_c = (m - z_c) + log_d is a sum of two small, exactly known terms.
template <typename T>
__device__ __forceinline__ T ce_row_loss(T m, T log_d, T z_target, T w_target, T smooth_s, T weight_total,
                                         T smoothing, int cols) {
    T loss = (T(1) - smoothing) * w_target * ((m - z_target) + log_d);
    if (smoothing > T(0)) loss += smoothing / T(cols) * (weight_total * log_d + smooth_s);
    return loss;
}

// Online state of one part of a row: running max m, d = sum exp(z - m), S = sum w (m - z),
// W = sum w. Merging two parts moves both to the larger max.
// Trap: a part that saw no column has m = -inf; exp(-inf - (-inf)) is NaN and so is
// W * (m - (-inf)) = 0 * inf, so such a part must contribute exactly nothing.
template <typename T>
struct CEState {
    T m, d, s, w;
};

template <typename T>
__device__ __forceinline__ CEState<T> ce_merge(CEState<T> a, CEState<T> b) {
    if (a.m == neg_inf<T>()) return b;
    if (b.m == neg_inf<T>()) return a;
    const T m = dev_max(a.m, b.m);
    CEState<T> r;
    r.m = m;
    r.d = a.d * dev_exp(a.m - m) + b.d * dev_exp(b.m - m);
    r.s = a.s + a.w * (m - a.m) + b.s + b.w * (m - b.m);
    r.w = a.w + b.w;
    return r;
}

// Fold column value z with weight w into a state (a merge with the one-column state).
template <typename T>
__device__ __forceinline__ CEState<T> ce_push(CEState<T> a, T z, T w) {
    CEState<T> one;
    one.m = z;
    one.d = T(1);
    one.s = T(0);
    one.w = w;
    return ce_merge(a, one);
}

template <typename T>
__device__ __forceinline__ CEState<T> ce_empty() {
    CEState<T> e;
    e.m = neg_inf<T>();
    e.d = T(0);
    e.s = T(0);
    e.w = T(0);
    return e;
}

// Butterfly merge across the 32 lanes of a warp: every lane ends with the whole warp's state.
template <typename T>
__device__ __forceinline__ CEState<T> ce_warp_merge(CEState<T> a) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        CEState<T> b;
        b.m = __shfl_xor_sync(FULL_MASK, a.m, offset);
        b.d = __shfl_xor_sync(FULL_MASK, a.d, offset);
        b.s = __shfl_xor_sync(FULL_MASK, a.s, offset);
        b.w = __shfl_xor_sync(FULL_MASK, a.w, offset);
        a = ce_merge(a, b);
    }
    return a;
}

// Read one row once (columns strided by `step` from `first`) into a state.
template <typename T>
__device__ __forceinline__ CEState<T> ce_read_row(const T* zr, const T* weight, int has_weight, int cols,
                                                  int first, int step) {
    CEState<T> st = ce_empty<T>();
    for (int c = first; c < cols; c += step) st = ce_push(st, zr[c], class_weight(weight, has_weight, c));
    return st;
}

// ---------------- forward ----------------

template <typename T>
__device__ void ce_fwd_v1(const T* __restrict__ logits, const long long* __restrict__ target,
                          const T* __restrict__ weight, T* __restrict__ loss, T* __restrict__ row_stats,
                          long long rows, int cols, int has_weight, long long ignore_index, T smoothing) {
    const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) return;  // no barrier in this kernel
    const T* zr = logits + row * cols;
    T m = neg_inf<T>();
    for (int c = 0; c < cols; ++c) m = dev_max(m, zr[c]);
    T d = 0;
    for (int c = 0; c < cols; ++c) d += dev_exp(zr[c] - m);
    const T log_d = dev_log(d);
    row_stats[2 * row] = m;
    row_stats[2 * row + 1] = log_d;
    const long long y = target[row];
    if (y == ignore_index) {
        loss[row] = T(0);
        return;
    }
    T s = 0, w_total = 0;
    if (smoothing > T(0)) {
        for (int c = 0; c < cols; ++c) {
            const T w = class_weight(weight, has_weight, c);
            s += w * (m - zr[c]);
            w_total += w;
        }
    }
    loss[row] = ce_row_loss(m, log_d, zr[y], class_weight(weight, has_weight, y), s, w_total, smoothing, cols);
}

// The end of a row once its merged state is known (v2 and v3): row_stats keeps m and log_d
// apart, never their rounded sum, and the loss uses them as (m - z_y) + log_d.
template <typename T>
__device__ __forceinline__ void ce_write_row(const CEState<T>& st, const T* __restrict__ zr, long long row,
                                             const long long* __restrict__ target, const T* __restrict__ weight,
                                             int has_weight, long long ignore_index, T smoothing, int cols,
                                             T* __restrict__ loss, T* __restrict__ row_stats) {
    const T log_d = dev_log(st.d);
    row_stats[2 * row] = st.m;
    row_stats[2 * row + 1] = log_d;
    const long long y = target[row];
    loss[row] = y == ignore_index ? T(0)
        : ce_row_loss(st.m, log_d, zr[y], class_weight(weight, has_weight, y), st.s, st.w, smoothing, cols);
}

template <typename T>
__device__ void ce_fwd_v2(const T* __restrict__ logits, const long long* __restrict__ target,
                          const T* __restrict__ weight, T* __restrict__ loss, T* __restrict__ row_stats,
                          int cols, int has_weight, long long ignore_index, T smoothing) {
    __shared__ T part_m[32], part_d[32], part_s[32], part_w[32];
    const long long row = blockIdx.x;
    const T* zr = logits + row * cols;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    CEState<T> st = ce_warp_merge(ce_read_row(zr, weight, has_weight, cols, threadIdx.x, blockDim.x));
    if (lane == 0) {
        part_m[warp] = st.m;
        part_d[warp] = st.d;
        part_s[warp] = st.s;
        part_w[warp] = st.w;
    }
    __syncthreads();
    if (warp == 0) {  // the first warp merges the per-warp states and writes the row
        st = ce_empty<T>();
        if (lane < int(blockDim.x >> 5)) {
            st.m = part_m[lane];
            st.d = part_d[lane];
            st.s = part_s[lane];
            st.w = part_w[lane];
        }
        st = ce_warp_merge(st);
        if (lane == 0) ce_write_row(st, zr, row, target, weight, has_weight, ignore_index, smoothing, cols, loss, row_stats);
    }
}

template <typename T>
__device__ void ce_fwd_v3(const T* __restrict__ logits, const long long* __restrict__ target,
                          const T* __restrict__ weight, T* __restrict__ loss, T* __restrict__ row_stats,
                          long long rows, int cols, int has_weight, long long ignore_index, T smoothing) {
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;  // the whole warp leaves together; there is no block barrier
    const T* zr = logits + row * cols;
    const CEState<T> st = ce_warp_merge(ce_read_row(zr, weight, has_weight, cols, lane, 32));
    if (lane == 0) ce_write_row(st, zr, row, target, weight, has_weight, ignore_index, smoothing, cols, loss, row_stats);
}

// ---------------- backward ----------------

// dz_j for one element of a kept row: p_j * (a + (e/C) W) - a [j == y] - (e/C) w_j, a = (1-e) w_y,
// with p_j = exp((z_j - m) - log_d): never exp(z_j - lse) with lse rounded (see the header).
template <typename T>
__device__ __forceinline__ T ce_grad(T z, T m, T log_d, long long j, long long y, T a, T smooth_per_class,
                                     T weight_total, T w_j) {
    const T p = dev_exp((z - m) - log_d);
    T g = p * (a + smooth_per_class * weight_total) - smooth_per_class * w_j;
    if (j == y) g -= a;
    return g;
}

template <typename T>
__device__ void ce_bwd_v1(const T* __restrict__ logits, const long long* __restrict__ target,
                          const T* __restrict__ row_stats, const T* __restrict__ dloss, const T* __restrict__ weight,
                          const T* __restrict__ weight_sum, T* __restrict__ dlogits, long long rows, int cols,
                          int has_weight, long long ignore_index, T smoothing) {
    const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) return;
    const T* zr = logits + row * cols;
    T* gr = dlogits + row * cols;
    const long long y = target[row];
    if (y == ignore_index) {
        for (int c = 0; c < cols; ++c) gr[c] = T(0);
        return;
    }
    const T scale = dloss[row], smooth = smoothing / T(cols);
    const T m = row_stats[2 * row], log_d = row_stats[2 * row + 1];
    const T a = (T(1) - smoothing) * class_weight(weight, has_weight, y);
    for (int c = 0; c < cols; ++c)
        gr[c] = scale * ce_grad(zr[c], m, log_d, c, y, a, smooth, weight_sum[0], class_weight(weight, has_weight, c));
}

template <typename T>
__device__ void ce_bwd_v2(const T* __restrict__ logits, const long long* __restrict__ target,
                          const T* __restrict__ row_stats, const T* __restrict__ dloss, const T* __restrict__ weight,
                          const T* __restrict__ weight_sum, T* __restrict__ dlogits, int cols,
                          int has_weight, long long ignore_index, T smoothing) {
    const long long row = blockIdx.x;
    const T* zr = logits + row * cols;
    T* gr = dlogits + row * cols;
    const long long y = target[row];
    if (y == ignore_index) {
        for (int c = threadIdx.x; c < cols; c += blockDim.x) gr[c] = T(0);
        return;
    }
    const T scale = dloss[row], smooth = smoothing / T(cols), w_total = weight_sum[0];
    const T m = row_stats[2 * row], log_d = row_stats[2 * row + 1];
    const T a = (T(1) - smoothing) * class_weight(weight, has_weight, y);
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        gr[c] = scale * ce_grad(zr[c], m, log_d, c, y, a, smooth, w_total, class_weight(weight, has_weight, c));
}

// ---------------- entry points: one per version and dtype ----------------

extern "C" __global__ void ce_fwd_v1_f32(const float* logits, const long long* target, const float* weight,
                                         float* loss, float* row_stats, long long rows, int cols, int has_weight,
                                         long long ignore_index, float smoothing) {
    ce_fwd_v1<float>(logits, target, weight, loss, row_stats, rows, cols, has_weight, ignore_index, smoothing);
}
extern "C" __global__ void ce_fwd_v1_f64(const double* logits, const long long* target, const double* weight,
                                         double* loss, double* row_stats, long long rows, int cols, int has_weight,
                                         long long ignore_index, double smoothing) {
    ce_fwd_v1<double>(logits, target, weight, loss, row_stats, rows, cols, has_weight, ignore_index, smoothing);
}

extern "C" __global__ void ce_fwd_v2_f32(const float* logits, const long long* target, const float* weight,
                                         float* loss, float* row_stats, int cols, int has_weight,
                                         long long ignore_index, float smoothing) {
    ce_fwd_v2<float>(logits, target, weight, loss, row_stats, cols, has_weight, ignore_index, smoothing);
}
extern "C" __global__ void ce_fwd_v2_f64(const double* logits, const long long* target, const double* weight,
                                         double* loss, double* row_stats, int cols, int has_weight,
                                         long long ignore_index, double smoothing) {
    ce_fwd_v2<double>(logits, target, weight, loss, row_stats, cols, has_weight, ignore_index, smoothing);
}
extern "C" __global__ void ce_fwd_v3_f32(const float* logits, const long long* target, const float* weight,
                                         float* loss, float* row_stats, long long rows, int cols, int has_weight,
                                         long long ignore_index, float smoothing) {
    ce_fwd_v3<float>(logits, target, weight, loss, row_stats, rows, cols, has_weight, ignore_index, smoothing);
}
extern "C" __global__ void ce_fwd_v3_f64(const double* logits, const long long* target, const double* weight,
                                         double* loss, double* row_stats, long long rows, int cols, int has_weight,
                                         long long ignore_index, double smoothing) {
    ce_fwd_v3<double>(logits, target, weight, loss, row_stats, rows, cols, has_weight, ignore_index, smoothing);
}
extern "C" __global__ void ce_bwd_v1_f32(const float* logits, const long long* target, const float* row_stats,
                                         const float* dloss, const float* weight, const float* weight_sum,
                                         float* dlogits, long long rows, int cols, int has_weight,
                                         long long ignore_index, float smoothing) {
    ce_bwd_v1<float>(logits, target, row_stats, dloss, weight, weight_sum, dlogits, rows, cols, has_weight,
                     ignore_index, smoothing);
}
extern "C" __global__ void ce_bwd_v1_f64(const double* logits, const long long* target, const double* row_stats,
                                         const double* dloss, const double* weight, const double* weight_sum,
                                         double* dlogits, long long rows, int cols, int has_weight,
                                         long long ignore_index, double smoothing) {
    ce_bwd_v1<double>(logits, target, row_stats, dloss, weight, weight_sum, dlogits, rows, cols, has_weight,
                      ignore_index, smoothing);
}
extern "C" __global__ void ce_bwd_v2_f32(const float* logits, const long long* target, const float* row_stats,
                                         const float* dloss, const float* weight, const float* weight_sum,
                                         float* dlogits, int cols, int has_weight, long long ignore_index,
                                         float smoothing) {
    ce_bwd_v2<float>(logits, target, row_stats, dloss, weight, weight_sum, dlogits, cols, has_weight, ignore_index,
                     smoothing);
}
extern "C" __global__ void ce_bwd_v2_f64(const double* logits, const long long* target, const double* row_stats,
                                         const double* dloss, const double* weight, const double* weight_sum,
                                         double* dlogits, int cols, int has_weight, long long ignore_index,
                                         double smoothing) {
    ce_bwd_v2<double>(logits, target, row_stats, dloss, weight, weight_sum, dlogits, cols, has_weight, ignore_index,
                      smoothing);
}
