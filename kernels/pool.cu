/* pool.cu — 2-D max and average pooling (NCHW), forward and backward.
 *
 * Window (oh, ow) reads input rows h = oh*sh + i*dh - ph, i < kh (likewise w); taps outside the
 * input are padding. Output sizes (with PyTorch's ceil_mode rule) are computed on the host.
 * Max: padding never wins; ties keep the FIRST maximum in row-major window order; a NaN always
 *   wins (the max of anything with NaN is NaN; like PyTorch the last NaN is kept). argmax is the
 *   flat index h*W + w inside the (H, W) plane (int64), -1 never occurs: the first real tap is
 *   always taken. Backward: dx[plane, argmax] += dy — overlapping windows may pick the same
 *   pixel, so the gradients are ADDED.
 * Average (no dilation, as PyTorch): window rows start = oh*sh - ph, end = min(start + kh, H + ph)
 *   (a ceil_mode overhang beyond the padding never counts); divisor = (end - start) * ... with
 *   count_include_pad, else the number of real taps. Backward: every tap gets dy / divisor.
 *
 * Ladder (each entry: [op version] kernel: the one idea it adds; limits):
 *   [max_pool2d_forward v1] maxpool_fwd_v1: one thread per output, grid-stride. Int sizes.
 *   [max_pool2d_backward v1] maxpool_bwd_v1: one thread per dy element, atomicAdd into its
 *       argmax pixel (the host zeroes dx). Int sizes; addition order varies on a GPU.
 *   [avg_pool2d_forward v1] avgpool_fwd_v1: one thread per output, grid-stride. Int sizes.
 *   [avg_pool2d_backward v1] avgpool_bwd_v1: one thread per INPUT pixel, gathering the windows
 *       that contain it (oh from ceil((h + ph - kh + 1) / sh) to floor((h + ph) / sh)): no atomics,
 *       deterministic. Int sizes.
 */

struct PoolGeom {
    int h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
};

__device__ __forceinline__ PoolGeom pool_geom(int h, int w, int oh, int ow, int kh, int kw, int sh, int sw, int ph,
                                              int pw, int dh, int dw) {
    PoolGeom g;
    g.h = h;
    g.w = w;
    g.oh = oh;
    g.ow = ow;
    g.kh = kh;
    g.kw = kw;
    g.sh = sh;
    g.sw = sw;
    g.ph = ph;
    g.pw = pw;
    g.dh = dh;
    g.dw = dw;
    return g;
}

template <typename T>
__device__ void maxpool_fwd_v1(const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ argmax,
                               long long planes, const PoolGeom& g) {
    const long long total = planes * g.oh * g.ow, stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const int ow = int(e % g.ow), oh = int((e / g.ow) % g.oh);
        const T* xp = x + (e / ((long long)g.ow * g.oh)) * g.h * g.w;
        T best = neg_inf<T>();
        long long where = -1;
        for (int i = 0; i < g.kh; ++i) {
            const int h = oh * g.sh + i * g.dh - g.ph;
            if (h < 0 || h >= g.h) continue;
            for (int j = 0; j < g.kw; ++j) {
                const int w = ow * g.sw + j * g.dw - g.pw;
                if (w < 0 || w >= g.w) continue;
                const T v = xp[h * g.w + w];
                if (where < 0 || v > best || v != v) {  // v != v: NaN
                    best = v;
                    where = (long long)h * g.w + w;
                }
            }
        }
        y[e] = best;
        argmax[e] = where;
    }
}

template <typename T>
__device__ void maxpool_bwd_v1(const T* __restrict__ dy, const long long* __restrict__ argmax, T* __restrict__ dx,
                               long long planes, int plane_in, int plane_out) {
    const long long total = planes * plane_out, stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride)
        atomicAdd(&dx[(e / plane_out) * plane_in + argmax[e]], dy[e]);
}

// Start and padded end of window o along one axis, and its divisor contribution.
__device__ __forceinline__ int avg_extent(int o, int k, int s, int p, int size, int count_include_pad) {
    const int start = o * s - p, end = min(start + k, size + p);
    return count_include_pad ? end - start : min(end, size) - max(start, 0);
}

template <typename T>
__device__ void avgpool_fwd_v1(const T* __restrict__ x, T* __restrict__ y, long long planes, const PoolGeom& g,
                               int count_include_pad) {
    const long long total = planes * g.oh * g.ow, stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const int ow = int(e % g.ow), oh = int((e / g.ow) % g.oh);
        const T* xp = x + (e / ((long long)g.ow * g.oh)) * g.h * g.w;
        const int h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
        T acc = 0;
        for (int h = max(h0, 0); h < min(h0 + g.kh, g.h); ++h)
            for (int w = max(w0, 0); w < min(w0 + g.kw, g.w); ++w) acc += xp[h * g.w + w];
        const int divisor = avg_extent(oh, g.kh, g.sh, g.ph, g.h, count_include_pad) *
                            avg_extent(ow, g.kw, g.sw, g.pw, g.w, count_include_pad);
        y[e] = acc / T(divisor);
    }
}

template <typename T>
__device__ void avgpool_bwd_v1(const T* __restrict__ dy, T* __restrict__ dx, long long planes, const PoolGeom& g,
                               int count_include_pad) {
    const long long total = planes * g.h * g.w, stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const int w = int(e % g.w), h = int((e / g.w) % g.h);
        const T* dyp = dy + (e / ((long long)g.w * g.h)) * g.oh * g.ow;
        // windows whose rows start <= h < start + kh, start = oh*sh - ph
        const int oh_lo = max(0, (h + g.ph - g.kh + g.sh) / g.sh), oh_hi = min(g.oh - 1, (h + g.ph) / g.sh);
        const int ow_lo = max(0, (w + g.pw - g.kw + g.sw) / g.sw), ow_hi = min(g.ow - 1, (w + g.pw) / g.sw);
        T acc = 0;
        for (int oh = oh_lo; oh <= oh_hi; ++oh)
            for (int ow = ow_lo; ow <= ow_hi; ++ow) {
                const int divisor = avg_extent(oh, g.kh, g.sh, g.ph, g.h, count_include_pad) *
                                    avg_extent(ow, g.kw, g.sw, g.pw, g.w, count_include_pad);
                acc += dyp[oh * g.ow + ow] / T(divisor);
            }
        dx[e] = acc;
    }
}

extern "C" __global__ void maxpool_fwd_v1_f32(const float* x, float* y, long long* argmax, long long planes, int h,
                                              int w, int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw,
                                              int dh, int dw) {
    maxpool_fwd_v1<float>(x, y, argmax, planes, pool_geom(h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw));
}
extern "C" __global__ void maxpool_fwd_v1_f64(const double* x, double* y, long long* argmax, long long planes,
                                              int h, int w, int oh, int ow, int kh, int kw, int sh, int sw, int ph,
                                              int pw, int dh, int dw) {
    maxpool_fwd_v1<double>(x, y, argmax, planes, pool_geom(h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw));
}
extern "C" __global__ void maxpool_bwd_v1_f32(const float* dy, const long long* argmax, float* dx, long long planes,
                                              int plane_in, int plane_out) {
    maxpool_bwd_v1<float>(dy, argmax, dx, planes, plane_in, plane_out);
}
extern "C" __global__ void maxpool_bwd_v1_f64(const double* dy, const long long* argmax, double* dx,
                                              long long planes, int plane_in, int plane_out) {
    maxpool_bwd_v1<double>(dy, argmax, dx, planes, plane_in, plane_out);
}
extern "C" __global__ void avgpool_fwd_v1_f32(const float* x, float* y, long long planes, int h, int w, int oh,
                                              int ow, int kh, int kw, int sh, int sw, int ph, int pw,
                                              int count_include_pad) {
    avgpool_fwd_v1<float>(x, y, planes, pool_geom(h, w, oh, ow, kh, kw, sh, sw, ph, pw, 1, 1), count_include_pad);
}
extern "C" __global__ void avgpool_fwd_v1_f64(const double* x, double* y, long long planes, int h, int w, int oh,
                                              int ow, int kh, int kw, int sh, int sw, int ph, int pw,
                                              int count_include_pad) {
    avgpool_fwd_v1<double>(x, y, planes, pool_geom(h, w, oh, ow, kh, kw, sh, sw, ph, pw, 1, 1), count_include_pad);
}
extern "C" __global__ void avgpool_bwd_v1_f32(const float* dy, float* dx, long long planes, int h, int w, int oh,
                                              int ow, int kh, int kw, int sh, int sw, int ph, int pw,
                                              int count_include_pad) {
    avgpool_bwd_v1<float>(dy, dx, planes, pool_geom(h, w, oh, ow, kh, kw, sh, sw, ph, pw, 1, 1), count_include_pad);
}
extern "C" __global__ void avgpool_bwd_v1_f64(const double* dy, double* dx, long long planes, int h, int w, int oh,
                                              int ow, int kh, int kw, int sh, int sw, int ph, int pw,
                                              int count_include_pad) {
    avgpool_bwd_v1<double>(dy, dx, planes, pool_geom(h, w, oh, ow, kh, kw, sh, sw, ph, pw, 1, 1), count_include_pad);
}
