/* im2col.cu — unfold the patches of an NCHW image into columns, and fold them back.
 *
 * Layout (shared by every backend, see minidl/backend/reference/conv.py):
 *   cols has shape (C*kh*kw, N*OH*OW) and
 *   cols[(c*kh + i)*kw + j, (n*OH + oh)*OW + ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]
 * with xpad = x padded by (ph, pw) zeros, so input row h = oh*sh + i*dh - ph (likewise w).
 * A convolution is then one GEMM: y2 (O, N*OH*OW) = W (O, C*kh*kw) @ cols.
 * col2im is the adjoint (the input gradient): every column entry is ADDED back to the pixel it
 * was copied from. Trap: windows overlap whenever stride < dilated kernel, so a pixel receives
 * several entries; assigning instead of adding loses all but one.
 *
 * Ladder (each entry: [op version] kernel: the one idea it adds; limits):
 *   [im2col v1] im2col_v1: one thread per element of cols (grid-stride), consecutive threads
 *       write consecutive columns (coalesced writes). Any shape with int sizes.
 *   [col2im v1] col2im_atomic_v1: one thread per element of cols, atomicAdd into its pixel (the
 *       host zeroes x). Any shape; the order of the additions varies on a GPU.
 *   [col2im v2] col2im_gather_v2: one thread per PIXEL, which finds the at most kh*kw entries
 *       that came from it (oh = (h + ph - i*dh) / sh when that divides exactly) and sums them:
 *       no atomics, no zeroing, deterministic. Any shape with int sizes.
 */

// The geometry of one call (kernel parameters are fundamental types, so it is packed here).
struct ConvGeom {
    int n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
};

__device__ __forceinline__ ConvGeom conv_geom(int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph,
                                              int pw, int dh, int dw, int oh, int ow) {
    ConvGeom g;
    g.n = n;
    g.c = c;
    g.h = h;
    g.w = w;
    g.kh = kh;
    g.kw = kw;
    g.sh = sh;
    g.sw = sw;
    g.ph = ph;
    g.pw = pw;
    g.dh = dh;
    g.dw = dw;
    g.oh = oh;
    g.ow = ow;
    return g;
}

// Element e of cols -> the flat index of its pixel in x, or -1 when it lies in the padding.
__device__ __forceinline__ long long col_source(long long e, const ConvGeom& g) {
    const long long cols_per_row = (long long)g.n * g.oh * g.ow;
    const long long row = e / cols_per_row, col = e % cols_per_row;
    const int j = int(row % g.kw), i = int((row / g.kw) % g.kh), c = int(row / ((long long)g.kw * g.kh));
    const int ow = int(col % g.ow), oh = int((col / g.ow) % g.oh), n = int(col / ((long long)g.ow * g.oh));
    const int h = oh * g.sh + i * g.dh - g.ph, w = ow * g.sw + j * g.dw - g.pw;
    if (h < 0 || h >= g.h || w < 0 || w >= g.w) return -1;
    return (((long long)n * g.c + c) * g.h + h) * g.w + w;
}

template <typename T>
__device__ void im2col_v1(const T* __restrict__ x, T* __restrict__ cols, const ConvGeom& g) {
    const long long total = (long long)g.c * g.kh * g.kw * g.n * g.oh * g.ow;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const long long src = col_source(e, g);
        cols[e] = src >= 0 ? x[src] : T(0);
    }
}

template <typename T>
__device__ void col2im_atomic_v1(const T* __restrict__ cols, T* __restrict__ x, const ConvGeom& g) {
    const long long total = (long long)g.c * g.kh * g.kw * g.n * g.oh * g.ow;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const long long dst = col_source(e, g);
        if (dst >= 0) atomicAdd(&x[dst], cols[e]);
    }
}

// The output position o whose tap k reads input position p (p = o*s + k*d - pad), or -1.
__device__ __forceinline__ int tap_origin(int p, int k, int s, int d, int pad, int out) {
    const int t = p + pad - k * d;
    if (t < 0 || t % s) return -1;
    return t / s < out ? t / s : -1;
}

template <typename T>
__device__ void col2im_gather_v2(const T* __restrict__ cols, T* __restrict__ x, const ConvGeom& g) {
    const long long total = (long long)g.n * g.c * g.h * g.w, cols_per_row = (long long)g.n * g.oh * g.ow;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const int w = int(e % g.w), h = int((e / g.w) % g.h);
        const long long plane = e / ((long long)g.w * g.h);
        const int c = int(plane % g.c), n = int(plane / g.c);
        T acc = 0;
        for (int i = 0; i < g.kh; ++i) {
            const int oh = tap_origin(h, i, g.sh, g.dh, g.ph, g.oh);
            if (oh < 0) continue;
            for (int j = 0; j < g.kw; ++j) {
                const int ow = tap_origin(w, j, g.sw, g.dw, g.pw, g.ow);
                if (ow < 0) continue;
                const long long row = ((long long)c * g.kh + i) * g.kw + j;
                acc += cols[row * cols_per_row + ((long long)n * g.oh + oh) * g.ow + ow];
            }
        }
        x[e] = acc;
    }
}

extern "C" __global__ void im2col_v1_f32(const float* x, float* cols, int n, int c, int h, int w, int kh, int kw,
                                         int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    im2col_v1<float>(x, cols, conv_geom(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow));
}
extern "C" __global__ void im2col_v1_f64(const double* x, double* cols, int n, int c, int h, int w, int kh, int kw,
                                         int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    im2col_v1<double>(x, cols, conv_geom(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow));
}
extern "C" __global__ void col2im_atomic_v1_f32(const float* cols, float* x, int n, int c, int h, int w, int kh,
                                                int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh,
                                                int ow) {
    col2im_atomic_v1<float>(cols, x, conv_geom(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow));
}
extern "C" __global__ void col2im_atomic_v1_f64(const double* cols, double* x, int n, int c, int h, int w, int kh,
                                                int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh,
                                                int ow) {
    col2im_atomic_v1<double>(cols, x, conv_geom(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow));
}
extern "C" __global__ void col2im_gather_v2_f32(const float* cols, float* x, int n, int c, int h, int w, int kh,
                                                int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh,
                                                int ow) {
    col2im_gather_v2<float>(cols, x, conv_geom(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow));
}
extern "C" __global__ void col2im_gather_v2_f64(const double* cols, double* x, int n, int c, int h, int w, int kh,
                                                int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh,
                                                int ow) {
    col2im_gather_v2<double>(cols, x, conv_geom(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow));
}
