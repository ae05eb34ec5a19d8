/* attention.cu — scaled dot-product attention, forward and backward.
 *
 * For one (batch, head): q (Tq, D), k (Tk, D), v (Tk, Dv), all C-contiguous.
 *   S = scale * q k^T + bias,  P = softmax_rows(S),  out = P v,  lse_i = log sum_j exp(S_ij)
 * Masks: `causal` hides key j from query i when j > i (top-left aligned, as PyTorch); `bias` is
 * an additive mask, -inf where hidden. Bias broadcasting: the host passes the bias plane of each
 * (batch, head) as an element offset (bias_offsets[b]) and the plane's strides over queries and
 * keys (bias_rs, bias_cs: Tk and 1, or 0 along a broadcast axis); dbias is accumulated through the
 * same mapping with atomicAdd, so broadcast axes are summed on the fly.
 * A query whose keys are ALL hidden has no softmax (0 / 0): by convention its out is 0, its lse
 * -inf and its gradients 0. Every exp() is guarded so that -inf - (-inf) = NaN never appears.
 *
 * Backward, from dout, with P recomputed as exp(S - lse) (so P is never stored):
 *   dv = P^T dout;  dP = dout v^T;  dS = P * (dP - delta), delta_i = sum_d dout_id out_id
 *   (the softmax Jacobian: delta_i = sum_j P_ij dP_ij, computed from out in Tq*Dv instead of Tq*Tk);
 *   dq = scale dS k;  dk = scale dS^T q;  dbias = dS.
 *
 * Ladder (each entry: [op version] kernels: the one idea it adds; limits):
 *   [sdpa_forward v1] sdpa_scores_v1, sdpa_softmax_v1, sdpa_pv_v1: the formulas as written, one
 *       (batch, head) per launch: the (Tq, Tk) scores go to a global buffer (thread per score),
 *       a thread per row turns them into P in place and writes lse, a thread per output element
 *       computes P v. Any shape; Tq * Tk fits the grid.
 *   [sdpa_forward v2] sdpa_fwd_v2: flash attention: a block owns BQ = 16 queries and streams
 *       the keys through shared memory in tiles of BK = 32; an online softmax (running max m,
 *       running sum l, the output rescaled by exp(m_old - m_new) when the max grows) means the
 *       scores never leave shared memory and every (batch, head) runs at once. With `causal`,
 *       tiles entirely above the diagonal are skipped. blockDim.x in {32, 64, 128, 256, 512}
 *       (the warps split the 16 rows); (16 D + 32 (D + 1) + 32 Dv + 16 * 32 + 16 Dv + 48) *
 *       sizeof(T) bytes of shared memory <= 163 KiB (the A100 opt-in maximum).
 *   [sdpa_backward v1] sdpa_scores_v1, sdpa_probs_v1, sdpa_dv_v1, sdpa_ds_v1, sdpa_dq_v1, sdpa_dk_v1:
 *       one (batch, head) per launch, one (Tq, Tk) global buffer holding S, then P, then dS;
 *       one thread per output element in each step. Any shape.
 *   [sdpa_backward v2] sdpa_bwd_delta_v2, sdpa_bwd_v2: flash backward: a warp per row computes
 *       delta, then a block owns BK = 32 keys, keeps their k, v, dk, dv in shared memory and
 *       streams the query tiles (BQ = 16) past them, recomputing P from lse; dq is accumulated
 *       across key blocks with atomicAdd (the host zeroes it). Same block sizes as the forward;
 *       (32 (D + 1) + 32 (Dv + 1) + 32 D + 32 Dv + 16 D + 16 Dv + 16 * 32 + 32) * sizeof(T) bytes
 *       of shared memory <= 163 KiB.
 * Shared-memory rows of k (and v in the backward) are padded by one element: the 32 lanes of a
 * warp read 32 different key rows at the same column, and with a row length that is a multiple
 * of 32 they would all hit the same memory bank.
 */

#define ATT_BQ 16
#define ATT_BK 32

// The score of (query i, key j) from the dot product q_i . k_j, or -inf where it is hidden.
template <typename T>
__device__ __forceinline__ T att_score(T dot, long long i, long long j, const T* bias_plane, long long bias_rs,
                                       long long bias_cs, int has_bias, int causal, T scale) {
    if (causal && j > i) return neg_inf<T>();
    T s = scale * dot;
    if (has_bias) s += bias_plane[i * bias_rs + j * bias_cs];
    return s;
}

// exp(s - shift) with the convention that a hidden score (s = -inf) gives exactly 0, also
// when the whole row is hidden (shift = -inf).
template <typename T>
__device__ __forceinline__ T att_prob(T s, T shift) {
    return (s == neg_inf<T>() || shift == neg_inf<T>()) ? T(0) : dev_exp(s - shift);
}

// ======================= v1: one (batch, head) per launch, scores in global memory ==========

template <typename T>
__device__ void sdpa_scores_v1(const T* q, const T* k, const T* bias, T* scores, int tq, int tk, int d,
                               long long bias_rs, long long bias_cs, int has_bias, int causal, T scale) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)tq * tk) return;
    const long long i = idx / tk, j = idx % tk;
    T dot = 0;
    for (int c = 0; c < d; ++c) dot += q[i * d + c] * k[j * d + c];
    scores[idx] = att_score(dot, i, j, bias, bias_rs, bias_cs, has_bias, causal, scale);
}

template <typename T>
__device__ void sdpa_softmax_v1(T* scores, T* lse, int tq, int tk) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= tq) return;
    T* row = scores + i * tk;
    T m = neg_inf<T>();
    for (int j = 0; j < tk; ++j) m = dev_max(m, row[j]);
    T sum = 0;
    for (int j = 0; j < tk; ++j) sum += att_prob(row[j], m);
    const T inv = sum > T(0) ? T(1) / sum : T(0);  // a fully hidden row: P = 0
    for (int j = 0; j < tk; ++j) row[j] = att_prob(row[j], m) * inv;
    lse[i] = sum > T(0) ? m + dev_log(sum) : neg_inf<T>();
}

template <typename T>
__device__ void sdpa_pv_v1(const T* probs, const T* v, T* out, int tq, int tk, int dv) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)tq * dv) return;
    const long long i = idx / dv, c = idx % dv;
    T acc = 0;
    for (int j = 0; j < tk; ++j) acc += probs[i * tk + j] * v[(long long)j * dv + c];
    out[idx] = acc;
}

template <typename T>
__device__ void sdpa_probs_v1(T* scores, const T* lse, int tq, int tk) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)tq * tk) return;
    scores[idx] = att_prob(scores[idx], lse[idx / tk]);
}

template <typename T>
__device__ void sdpa_dv_v1(const T* probs, const T* dout, T* dv_out, int tq, int tk, int dv) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)tk * dv) return;
    const long long j = idx / dv, c = idx % dv;
    T acc = 0;
    for (int i = 0; i < tq; ++i) acc += probs[(long long)i * tk + j] * dout[(long long)i * dv + c];
    dv_out[idx] = acc;
}

// P -> dS in place; each thread recomputes delta_i (the plainest form; v2 computes it once).
template <typename T>
__device__ void sdpa_ds_v1(T* probs, const T* dout, const T* v, const T* out, T* dbias, int tq, int tk, int dv,
                           long long bias_rs, long long bias_cs, int need_dbias) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)tq * tk) return;
    const long long i = idx / tk, j = idx % tk;
    T dp = 0, delta = 0;
    for (int c = 0; c < dv; ++c) {
        dp += dout[i * dv + c] * v[j * dv + c];
        delta += dout[i * dv + c] * out[i * dv + c];
    }
    const T ds = probs[idx] * (dp - delta);
    probs[idx] = ds;
    if (need_dbias) atomicAdd(&dbias[i * bias_rs + j * bias_cs], ds);
}

// dq = scale dS k (rows: queries) — and, with the operands swapped, dk = scale dS^T q.
template <typename T>
__device__ void sdpa_dq_v1(const T* ds, const T* k, T* dq, int tq, int tk, int d, T scale) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)tq * d) return;
    const long long i = idx / d, c = idx % d;
    T acc = 0;
    for (int j = 0; j < tk; ++j) acc += ds[i * tk + j] * k[(long long)j * d + c];
    dq[idx] = scale * acc;
}

template <typename T>
__device__ void sdpa_dk_v1(const T* ds, const T* q, T* dk, int tq, int tk, int d, T scale) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)tk * d) return;
    const long long j = idx / d, c = idx % d;
    T acc = 0;
    for (int i = 0; i < tq; ++i) acc += ds[(long long)i * tk + j] * q[(long long)i * d + c];
    dk[idx] = scale * acc;
}

// ======================= v2: flash attention =======================
// Grid: (batch * heads, tiles). Block: warps that share the rows of a tile.

// Copy `rows` rows of `width` elements starting at global row `row0` (of `total` rows) into a
// shared tile with row pitch `pitch`; rows past the end are zero.
template <typename T>
__device__ __forceinline__ void load_tile(T* tile, const T* src, long long row0, int rows, int total, int width,
                                          int pitch) {
    for (int idx = threadIdx.x; idx < rows * width; idx += blockDim.x) {
        const int r = idx / width, c = idx % width;
        tile[r * pitch + c] = row0 + r < total ? src[(row0 + r) * width + c] : T(0);
    }
}

template <typename T>
__device__ void sdpa_fwd_v2(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                            const T* __restrict__ bias, const long long* __restrict__ bias_offsets,
                            T* __restrict__ out, T* __restrict__ lse, int tq, int tk, int d, int dv,
                            long long bias_rs, long long bias_cs, int has_bias, int causal, T scale) {
    DYN_SMEM(T, smem);
    T* qs = smem;                          // [BQ][d]
    T* ks = qs + ATT_BQ * d;               // [BK][d + 1]
    T* vs = ks + ATT_BK * (d + 1);         // [BK][dv]
    T* ps = vs + ATT_BK * dv;              // [BQ][BK] scores, then probabilities
    T* os = ps + ATT_BQ * ATT_BK;          // [BQ][dv] unnormalised output
    T* row_m = os + ATT_BQ * dv;           // running max
    T* row_l = row_m + ATT_BQ;             // running sum of exp(s - m)
    T* row_alpha = row_l + ATT_BQ;         // exp(m_old - m_new) of the current tile
    const long long b = blockIdx.x;
    const int q0 = blockIdx.y * ATT_BQ;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const T* qb = q + b * tq * d;
    const T* kb = k + b * tk * d;
    const T* vb = v + b * tk * dv;
    const T* bias_plane = has_bias ? bias + bias_offsets[b] : bias;

    load_tile(qs, qb, q0, ATT_BQ, tq, d, d);
    for (int idx = threadIdx.x; idx < ATT_BQ * dv; idx += blockDim.x) os[idx] = T(0);
    if (threadIdx.x < ATT_BQ) {
        row_m[threadIdx.x] = neg_inf<T>();
        row_l[threadIdx.x] = T(0);
    }
    // causal: the last query of the tile, q0 + BQ - 1, sees keys up to itself; later tiles are skipped
    const int key_end = causal ? min(tk, q0 + ATT_BQ) : tk;
    for (int k0 = 0; k0 < key_end; k0 += ATT_BK) {
        __syncthreads();  // the previous tile's vs / ps are no longer read
        load_tile(ks, kb, k0, ATT_BK, tk, d, d + 1);
        load_tile(vs, vb, k0, ATT_BK, tk, dv, dv);
        __syncthreads();
        for (int idx = threadIdx.x; idx < ATT_BQ * ATT_BK; idx += blockDim.x) {
            const int r = idx / ATT_BK, c = idx % ATT_BK;
            const long long i = q0 + r, j = k0 + c;
            T s = neg_inf<T>();
            if (i < tq && j < tk) {
                T dot = 0;
                for (int e = 0; e < d; ++e) dot += qs[r * d + e] * ks[c * (d + 1) + e];
                s = att_score(dot, i, j, bias_plane, bias_rs, bias_cs, has_bias, causal, scale);
            }
            ps[idx] = s;
        }
        __syncthreads();
        // Online softmax: a warp per row, a lane per key of the tile (BK = 32 = warpSize).
        for (int r = warp; r < ATT_BQ; r += warps) {
            const T s = ps[r * ATT_BK + lane];
            const T m_old = row_m[r];
            const T m_new = dev_max(m_old, warp_allreduce(s, MaxOp()));
            const T p = att_prob(s, m_new);
            ps[r * ATT_BK + lane] = p;
            const T tile_sum = warp_allreduce(p, SumOp());
            if (lane == 0) {
                const T alpha = att_prob(m_old, m_new);  // 0 while the row has seen nothing
                row_l[r] = row_l[r] * alpha + tile_sum;
                row_m[r] = m_new;
                row_alpha[r] = alpha;
            }
        }
        __syncthreads();
        for (int idx = threadIdx.x; idx < ATT_BQ * dv; idx += blockDim.x) {
            const int r = idx / dv, c = idx % dv;
            T acc = os[idx] * row_alpha[r];
            for (int j = 0; j < ATT_BK; ++j) acc += ps[r * ATT_BK + j] * vs[j * dv + c];
            os[idx] = acc;
        }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < ATT_BQ * dv; idx += blockDim.x) {
        const int r = idx / dv, c = idx % dv;
        if (q0 + r < tq) out[(b * tq + q0 + r) * dv + c] = row_l[r] > T(0) ? os[idx] / row_l[r] : T(0);
    }
    if (threadIdx.x < ATT_BQ && q0 + (int)threadIdx.x < tq) {
        const T l = row_l[threadIdx.x];
        lse[b * tq + q0 + threadIdx.x] = l > T(0) ? row_m[threadIdx.x] + dev_log(l) : neg_inf<T>();
    }
}

// delta_row = sum_c dout[row, c] * out[row, c]: one warp per row.
template <typename T>
__device__ void sdpa_bwd_delta_v2(const T* __restrict__ out, const T* __restrict__ dout, T* __restrict__ delta,
                                  long long rows, int dv) {
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;  // whole warps leave; no block barrier here
    const int lane = threadIdx.x & 31;
    T acc = 0;
    for (int c = lane; c < dv; c += 32) acc += out[row * dv + c] * dout[row * dv + c];
    acc = warp_allreduce(acc, SumOp());
    if (lane == 0) delta[row] = acc;
}

template <typename T>
__device__ void sdpa_bwd_v2(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                            const T* __restrict__ bias, const long long* __restrict__ bias_offsets,
                            const T* __restrict__ lse, const T* __restrict__ delta, const T* __restrict__ dout,
                            T* __restrict__ dq, T* __restrict__ dk, T* __restrict__ dv_out, T* __restrict__ dbias,
                            int tq, int tk, int d, int dv, long long bias_rs, long long bias_cs, int has_bias,
                            int need_dbias, int causal, T scale) {
    DYN_SMEM(T, smem);
    T* ks = smem;                          // [BK][d + 1]
    T* vs = ks + ATT_BK * (d + 1);         // [BK][dv + 1]
    T* dks = vs + ATT_BK * (dv + 1);       // [BK][d]
    T* dvs = dks + ATT_BK * d;             // [BK][dv]
    T* qs = dvs + ATT_BK * dv;             // [BQ][d]
    T* dos = qs + ATT_BQ * d;              // [BQ][dv]
    T* ps = dos + ATT_BQ * dv;             // [BQ][BK]: P, then dS
    T* lse_s = ps + ATT_BQ * ATT_BK;       // [BQ]
    T* delta_s = lse_s + ATT_BQ;           // [BQ]
    const long long b = blockIdx.x;
    const int k0 = blockIdx.y * ATT_BK;
    const T* qb = q + b * tq * d;
    const T* dob = dout + b * tq * dv;
    const long long plane = has_bias ? bias_offsets[b] : 0;

    load_tile(ks, k + b * tk * d, k0, ATT_BK, tk, d, d + 1);
    load_tile(vs, v + b * tk * dv, k0, ATT_BK, tk, dv, dv + 1);
    for (int idx = threadIdx.x; idx < ATT_BK * d; idx += blockDim.x) dks[idx] = T(0);
    for (int idx = threadIdx.x; idx < ATT_BK * dv; idx += blockDim.x) dvs[idx] = T(0);
    // causal: queries before k0 see none of these keys; start at the tile that holds query k0
    const int q_begin = causal ? (k0 / ATT_BQ) * ATT_BQ : 0;
    for (int q0 = q_begin; q0 < tq; q0 += ATT_BQ) {
        __syncthreads();  // the previous tile's qs / dos / ps are no longer read
        load_tile(qs, qb, q0, ATT_BQ, tq, d, d);
        load_tile(dos, dob, q0, ATT_BQ, tq, dv, dv);
        if (threadIdx.x < ATT_BQ) {
            const bool real = q0 + (int)threadIdx.x < tq;
            lse_s[threadIdx.x] = real ? lse[b * tq + q0 + threadIdx.x] : neg_inf<T>();
            delta_s[threadIdx.x] = real ? delta[b * tq + q0 + threadIdx.x] : T(0);
        }
        __syncthreads();
        for (int idx = threadIdx.x; idx < ATT_BQ * ATT_BK; idx += blockDim.x) {
            const int r = idx / ATT_BK, c = idx % ATT_BK;
            const long long i = q0 + r, j = k0 + c;
            T p = 0;
            if (i < tq && j < tk) {
                T dot = 0;
                for (int e = 0; e < d; ++e) dot += qs[r * d + e] * ks[c * (d + 1) + e];
                p = att_prob(att_score(dot, i, j, bias + plane, bias_rs, bias_cs, has_bias, causal, scale), lse_s[r]);
            }
            ps[idx] = p;
        }
        __syncthreads();
        for (int idx = threadIdx.x; idx < ATT_BK * dv; idx += blockDim.x) {  // dv += P^T dout
            const int c = idx / dv, e = idx % dv;
            T acc = 0;
            for (int r = 0; r < ATT_BQ; ++r) acc += ps[r * ATT_BK + c] * dos[r * dv + e];
            dvs[idx] += acc;
        }
        __syncthreads();  // P is overwritten by dS below
        for (int idx = threadIdx.x; idx < ATT_BQ * ATT_BK; idx += blockDim.x) {
            const int r = idx / ATT_BK, c = idx % ATT_BK;
            T dp = 0;
            for (int e = 0; e < dv; ++e) dp += dos[r * dv + e] * vs[c * (dv + 1) + e];
            const T ds = ps[idx] * (dp - delta_s[r]);
            ps[idx] = ds;
            const long long i = q0 + r, j = k0 + c;
            if (need_dbias && i < tq && j < tk) atomicAdd(&dbias[plane + i * bias_rs + j * bias_cs], ds);
        }
        __syncthreads();
        for (int idx = threadIdx.x; idx < ATT_BK * d; idx += blockDim.x) {  // dk += dS^T q
            const int c = idx / d, e = idx % d;
            T acc = 0;
            for (int r = 0; r < ATT_BQ; ++r) acc += ps[r * ATT_BK + c] * qs[r * d + e];
            dks[idx] += acc;
        }
        for (int idx = threadIdx.x; idx < ATT_BQ * d; idx += blockDim.x) {  // dq += dS k, across blocks
            const int r = idx / d, e = idx % d;
            if (q0 + r >= tq) continue;
            T acc = 0;
            for (int c = 0; c < ATT_BK; ++c) acc += ps[r * ATT_BK + c] * ks[c * (d + 1) + e];
            atomicAdd(&dq[(b * tq + q0 + r) * d + e], scale * acc);
        }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < ATT_BK * d; idx += blockDim.x) {
        const int c = idx / d;
        if (k0 + c < tk) dk[(b * tk + k0) * d + idx] = scale * dks[idx];
    }
    for (int idx = threadIdx.x; idx < ATT_BK * dv; idx += blockDim.x) {
        const int c = idx / dv;
        if (k0 + c < tk) dv_out[(b * tk + k0) * dv + idx] = dvs[idx];
    }
}

// ---------------- entry points: one per kernel and dtype ----------------
extern "C" __global__ void sdpa_scores_v1_f32(const float* q, const float* k, const float* bias, float* scores,
                                              int tq, int tk, int d, long long bias_rs, long long bias_cs,
                                              int has_bias, int causal, float scale) {
    sdpa_scores_v1<float>(q, k, bias, scores, tq, tk, d, bias_rs, bias_cs, has_bias, causal, scale);
}
extern "C" __global__ void sdpa_softmax_v1_f32(float* scores, float* lse, int tq, int tk) {
    sdpa_softmax_v1<float>(scores, lse, tq, tk);
}
extern "C" __global__ void sdpa_pv_v1_f32(const float* probs, const float* v, float* out, int tq, int tk, int dv) {
    sdpa_pv_v1<float>(probs, v, out, tq, tk, dv);
}
extern "C" __global__ void sdpa_probs_v1_f32(float* scores, const float* lse, int tq, int tk) {
    sdpa_probs_v1<float>(scores, lse, tq, tk);
}
extern "C" __global__ void sdpa_dv_v1_f32(const float* probs, const float* dout, float* dv_out, int tq, int tk,
                                          int dv) {
    sdpa_dv_v1<float>(probs, dout, dv_out, tq, tk, dv);
}
extern "C" __global__ void sdpa_ds_v1_f32(float* probs, const float* dout, const float* v, const float* out,
                                          float* dbias, int tq, int tk, int dv, long long bias_rs,
                                          long long bias_cs, int need_dbias) {
    sdpa_ds_v1<float>(probs, dout, v, out, dbias, tq, tk, dv, bias_rs, bias_cs, need_dbias);
}
extern "C" __global__ void sdpa_dq_v1_f32(const float* ds, const float* k, float* dq, int tq, int tk, int d,
                                          float scale) {
    sdpa_dq_v1<float>(ds, k, dq, tq, tk, d, scale);
}
extern "C" __global__ void sdpa_dk_v1_f32(const float* ds, const float* q, float* dk, int tq, int tk, int d,
                                          float scale) {
    sdpa_dk_v1<float>(ds, q, dk, tq, tk, d, scale);
}
extern "C" __global__ void sdpa_fwd_v2_f32(const float* q, const float* k, const float* v, const float* bias,
                                           const long long* bias_offsets, float* out, float* lse, int tq, int tk,
                                           int d, int dv, long long bias_rs, long long bias_cs, int has_bias,
                                           int causal, float scale) {
    sdpa_fwd_v2<float>(q, k, v, bias, bias_offsets, out, lse, tq, tk, d, dv, bias_rs, bias_cs, has_bias, causal,
        scale);
}
extern "C" __global__ void sdpa_bwd_delta_v2_f32(const float* out, const float* dout, float* delta, long long rows,
                                                 int dv) {
    sdpa_bwd_delta_v2<float>(out, dout, delta, rows, dv);
}
extern "C" __global__ void sdpa_bwd_v2_f32(const float* q, const float* k, const float* v, const float* bias,
                                           const long long* bias_offsets, const float* lse, const float* delta,
                                           const float* dout, float* dq, float* dk, float* dv_out, float* dbias,
                                           int tq, int tk, int d, int dv, long long bias_rs, long long bias_cs,
                                           int has_bias, int need_dbias, int causal, float scale) {
    sdpa_bwd_v2<float>(q, k, v, bias, bias_offsets, lse, delta, dout, dq, dk, dv_out, dbias, tq, tk, d, dv, bias_rs,
        bias_cs, has_bias, need_dbias, causal, scale);
}
extern "C" __global__ void sdpa_scores_v1_f64(const double* q, const double* k, const double* bias, double* scores,
                                              int tq, int tk, int d, long long bias_rs, long long bias_cs,
                                              int has_bias, int causal, double scale) {
    sdpa_scores_v1<double>(q, k, bias, scores, tq, tk, d, bias_rs, bias_cs, has_bias, causal, scale);
}
extern "C" __global__ void sdpa_softmax_v1_f64(double* scores, double* lse, int tq, int tk) {
    sdpa_softmax_v1<double>(scores, lse, tq, tk);
}
extern "C" __global__ void sdpa_pv_v1_f64(const double* probs, const double* v, double* out, int tq, int tk, int dv) {
    sdpa_pv_v1<double>(probs, v, out, tq, tk, dv);
}
extern "C" __global__ void sdpa_probs_v1_f64(double* scores, const double* lse, int tq, int tk) {
    sdpa_probs_v1<double>(scores, lse, tq, tk);
}
extern "C" __global__ void sdpa_dv_v1_f64(const double* probs, const double* dout, double* dv_out, int tq, int tk,
                                          int dv) {
    sdpa_dv_v1<double>(probs, dout, dv_out, tq, tk, dv);
}
extern "C" __global__ void sdpa_ds_v1_f64(double* probs, const double* dout, const double* v, const double* out,
                                          double* dbias, int tq, int tk, int dv, long long bias_rs,
                                          long long bias_cs, int need_dbias) {
    sdpa_ds_v1<double>(probs, dout, v, out, dbias, tq, tk, dv, bias_rs, bias_cs, need_dbias);
}
extern "C" __global__ void sdpa_dq_v1_f64(const double* ds, const double* k, double* dq, int tq, int tk, int d,
                                          double scale) {
    sdpa_dq_v1<double>(ds, k, dq, tq, tk, d, scale);
}
extern "C" __global__ void sdpa_dk_v1_f64(const double* ds, const double* q, double* dk, int tq, int tk, int d,
                                          double scale) {
    sdpa_dk_v1<double>(ds, q, dk, tq, tk, d, scale);
}
extern "C" __global__ void sdpa_fwd_v2_f64(const double* q, const double* k, const double* v, const double* bias,
                                           const long long* bias_offsets, double* out, double* lse, int tq, int tk,
                                           int d, int dv, long long bias_rs, long long bias_cs, int has_bias,
                                           int causal, double scale) {
    sdpa_fwd_v2<double>(q, k, v, bias, bias_offsets, out, lse, tq, tk, d, dv, bias_rs, bias_cs, has_bias, causal,
        scale);
}
extern "C" __global__ void sdpa_bwd_delta_v2_f64(const double* out, const double* dout, double* delta,
                                                 long long rows, int dv) {
    sdpa_bwd_delta_v2<double>(out, dout, delta, rows, dv);
}
extern "C" __global__ void sdpa_bwd_v2_f64(const double* q, const double* k, const double* v, const double* bias,
                                           const long long* bias_offsets, const double* lse, const double* delta,
                                           const double* dout, double* dq, double* dk, double* dv_out,
                                           double* dbias, int tq, int tk, int d, int dv, long long bias_rs,
                                           long long bias_cs, int has_bias, int need_dbias, int causal, double scale) {
    sdpa_bwd_v2<double>(q, k, v, bias, bias_offsets, lse, delta, dout, dq, dk, dv_out, dbias, tq, tk, d, dv,
        bias_rs, bias_cs, has_bias, need_dbias, causal, scale);
}
