/* dropout.cu — inverted dropout whose mask is never stored: a counter-based random number
 * generator (Philox 4x32-10, Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011)
 * turns (seed, offset, element index) into the same random bits every time it is asked, so the
 * backward pass regenerates the forward's mask instead of reading a saved one (saving 1 byte per
 * element of memory and its traffic).
 *
 *   Philox: a 128-bit counter and a 64-bit key go through 10 rounds of
 *     (c0, c1, c2, c3) -> (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)),
 *     the key bumped by the Weyl constants (W0, W1) between rounds. Each call gives 4 words.
 *   Element i uses word i % 4 of the call with counter (lo(i/4), hi(i/4), lo(offset), hi(offset))
 *     and key (lo(seed), hi(seed)); u = (word >> 8) * 2^-24 is uniform on [0, 1) with 24 bits
 *     (exact in float32).
 *   keep = u >= p  (P(keep) = 1 - p);  out = in * keep * scale,  scale = 1 / (1 - p) (0 if p = 1).
 * The forward (in = x) and the backward (in = dy) are the same kernel: for a fixed mask dropout
 * is linear and diagonal, its own adjoint.
 *
 * Ladder (each entry: [op version] kernel: the one idea it adds; limits):
 *   [philox_uniform v1] philox_uniform_v1: the generator alone, u_i for i < n (one thread per
 *       group of 4 elements): for tests against the published known-answer vectors and for
 *       uniform random tensors. Any n.
 *   [dropout v1] dropout_v1: one thread per element; it runs a whole Philox call and keeps one of
 *       the 4 words. Any n; 4x the arithmetic of v2.
 *   [dropout v2] dropout_v2: one thread per group of 4 elements, all 4 words used; grid-stride.
 *       Same mask as v1 (the mapping above does not depend on the version). Any n.
 */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

struct Philox4 {
    unsigned x, y, z, w;
};

__device__ __forceinline__ Philox4 philox_round(Philox4 c, unsigned k0, unsigned k1) {
    const unsigned hi0 = __umulhi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
    const unsigned hi1 = __umulhi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
    Philox4 r;
    r.x = hi1 ^ c.y ^ k0;
    r.y = lo1;
    r.z = hi0 ^ c.w ^ k1;
    r.w = lo0;
    return r;
}

// The 4 random words of counter (group, offset) under key `seed`.
__device__ __forceinline__ Philox4 philox4x32_10(unsigned long long group, unsigned long long offset,
                                                 unsigned long long seed) {
    Philox4 c;
    c.x = unsigned(group);
    c.y = unsigned(group >> 32);
    c.z = unsigned(offset);
    c.w = unsigned(offset >> 32);
    unsigned k0 = unsigned(seed), k1 = unsigned(seed >> 32);
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        c = philox_round(c, k0, k1);
    }
    return c;
}

__device__ __forceinline__ unsigned philox_word(const Philox4& r, int which) {
    return which == 0 ? r.x : which == 1 ? r.y : which == 2 ? r.z : r.w;
}

// u in [0, 1) from the top 24 bits of a word: exact in float32, the same value in float64.
template <typename T>
__device__ __forceinline__ T uniform24(unsigned word) {
    return T(word >> 8) * T(5.9604644775390625e-08);  // 2^-24
}

// One element: in * scale if kept, in * 0 if dropped (so inf and NaN stay NaN, as in PyTorch).
template <typename T>
__device__ __forceinline__ T dropout_one(T in, unsigned word, T p, T scale) {
    return in * (uniform24<T>(word) >= p ? scale : T(0));
}

template <typename T>
__device__ void philox_uniform_v1(T* __restrict__ u, long long n, unsigned long long seed,
                                  unsigned long long offset) {
    const long long groups = (n + 3) / 4, stride = (long long)gridDim.x * blockDim.x;
    for (long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += stride) {
        const Philox4 r = philox4x32_10((unsigned long long)g, offset, seed);
        for (int k = 0; k < 4 && 4 * g + k < n; ++k) u[4 * g + k] = uniform24<T>(philox_word(r, k));
    }
}

template <typename T>
__device__ void dropout_v1(const T* __restrict__ in, T* __restrict__ out, long long n, T p, T scale,
                           unsigned long long seed, unsigned long long offset) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const Philox4 r = philox4x32_10((unsigned long long)(i / 4), offset, seed);
    out[i] = dropout_one(in[i], philox_word(r, int(i % 4)), p, scale);
}

template <typename T>
__device__ void dropout_v2(const T* __restrict__ in, T* __restrict__ out, long long n, T p, T scale,
                           unsigned long long seed, unsigned long long offset) {
    const long long groups = (n + 3) / 4, stride = (long long)gridDim.x * blockDim.x;
    for (long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += stride) {
        const Philox4 r = philox4x32_10((unsigned long long)g, offset, seed);
        const long long i = 4 * g;
        if (i + 3 < n) {
            out[i] = dropout_one(in[i], r.x, p, scale);
            out[i + 1] = dropout_one(in[i + 1], r.y, p, scale);
            out[i + 2] = dropout_one(in[i + 2], r.z, p, scale);
            out[i + 3] = dropout_one(in[i + 3], r.w, p, scale);
        } else {  // the last, partial group
            for (int k = 0; i + k < n; ++k) out[i + k] = dropout_one(in[i + k], philox_word(r, k), p, scale);
        }
    }
}

extern "C" __global__ void philox_uniform_v1_f32(float* u, long long n, unsigned long long seed,
                                                 unsigned long long offset) {
    philox_uniform_v1<float>(u, n, seed, offset);
}
extern "C" __global__ void philox_uniform_v1_f64(double* u, long long n, unsigned long long seed,
                                                 unsigned long long offset) {
    philox_uniform_v1<double>(u, n, seed, offset);
}
extern "C" __global__ void dropout_v1_f32(const float* in, float* out, long long n, float p, float scale,
                                          unsigned long long seed, unsigned long long offset) {
    dropout_v1<float>(in, out, n, p, scale, seed, offset);
}
extern "C" __global__ void dropout_v1_f64(const double* in, double* out, long long n, double p, double scale,
                                          unsigned long long seed, unsigned long long offset) {
    dropout_v1<double>(in, out, n, p, scale, seed, offset);
}
extern "C" __global__ void dropout_v2_f32(const float* in, float* out, long long n, float p, float scale,
                                          unsigned long long seed, unsigned long long offset) {
    dropout_v2<float>(in, out, n, p, scale, seed, offset);
}
extern "C" __global__ void dropout_v2_f64(const double* in, double* out, long long n, double p, double scale,
                                          unsigned long long seed, unsigned long long offset) {
    dropout_v2<double>(in, out, n, p, scale, seed, offset);
}
