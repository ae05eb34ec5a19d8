/* activation.cu — GELU (exact and tanh) and SiLU, forward and backward, elementwise; and the
 * same with a bias added first (the output of a Linear layer: y = act(x + b), b over the last
 * axis), whose backward also reduces db = sum over rows of dx.
 *
 * `kind` picks the function: 0 GELU exact, 1 GELU tanh approximation, 2 SiLU.
 *   GELU(x) = x * Phi(x), Phi the standard normal CDF
 *     exact: Phi(x) = erfc(-x / sqrt 2) / 2,  GELU'(x) = Phi(x) + x * exp(-x^2 / 2) / sqrt(2 pi)
 *     tanh:  Phi(x) ~ (1 + t) / 2, t = tanh(u), u = sqrt(2/pi) (x + 0.044715 x^3)
 *            GELU'(x) = (1 + t) / 2 + x / 2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
 *   SiLU(x) = x s, s = sigmoid(x);  SiLU'(x) = s (1 + x (1 - s))
 * Traps: (1 + erf(x / sqrt 2)) / 2 cancels to 0 for x << 0 (GELU(-8) ~ -5e-15), erfc keeps
 * it. Likewise 1 + tanh(u) for u << 0: in float32 tanh(-9) rounds to -1 and the sum to 0, so
 * the tanh form is evaluated through the identity (1 + tanh u) / 2 = sigmoid(2u) =: s, with
 * (1 - t^2) / 2 = 2 s (1 - s):  GELU = x s,  GELU' = s + 2 x s (1 - s) du/dx.
 * 1 / (1 + exp(-x)) overflows exp for x < -88 in float32, so sigmoid is computed from
 * exp(-|x|) <= 1.
 *
 * Ladder (each entry: [op version] kernel: the one idea it adds; limits):
 *   [activation_forward v1] act_fwd_v1: one thread per element. n <= (2^31 - 1) * blockDim.x.
 *   [activation_forward v2] act_fwd_v2: grid-stride loop over a fixed grid of blocks: any n,
 *       and the launch no longer grows with the tensor.
 *   [activation_forward v3] act_fwd_v3: 128-bit loads and stores (float4 / double2), so a
 *       warp moves 512 bytes per instruction; a scalar loop finishes the last n % 4 (or 2)
 *       elements. Every pointer 16-byte aligned.
 *   [activation_backward v1] act_bwd_v1: one thread per element. Same limit as the forward v1.
 *   [activation_backward v2] act_bwd_v2: grid-stride loop. Any n.
 *   [activation_backward v3] act_bwd_v3: 128-bit loads and stores. Pointers 16-byte aligned.
 *   [bias_activation_forward v1] bias_act_fwd_v1: grid-stride, the bias added on the fly
 *       (column = index % cols), so x + b is never written to memory. Any shape.
 *   [bias_activation_backward v1] bias_act_bwd_v1: each thread owns one column over a stripe
 *       of rows: it writes dx and keeps the column's partial sum of dx in a register, then adds
 *       it to db with ONE atomicAdd per stripe (the host zeroes db). Neighbouring threads read
 *       neighbouring columns, so every row is read coalesced. gridDim.y = stripes <= 65535.
 */

#define SQRT_2_OVER_PI 0.79788456080286535588
#define INV_SQRT_2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794
#define GELU_CUBIC 0.044715

template <typename T>
__device__ __forceinline__ T sigmoid(T x) {
    const T z = dev_exp(-dev_abs(x));  // <= 1: never overflows
    return x >= T(0) ? T(1) / (T(1) + z) : z / (T(1) + z);
}

template <typename T>
__device__ __forceinline__ T act_value(T x, int kind) {
    if (kind == 0) return T(0.5) * x * dev_erfc(-x * T(INV_SQRT_2));
    if (kind == 1) return x * sigmoid(T(2 * SQRT_2_OVER_PI) * (x + T(GELU_CUBIC) * x * x * x));
    return x * sigmoid(x);
}

template <typename T>
__device__ __forceinline__ T act_derivative(T x, int kind) {
    if (kind == 0) {
        const T cdf = T(0.5) * dev_erfc(-x * T(INV_SQRT_2));
        return cdf + x * T(INV_SQRT_2PI) * dev_exp(T(-0.5) * x * x);
    }
    if (kind == 1) {
        const T x2 = x * x;
        const T s = sigmoid(T(2 * SQRT_2_OVER_PI) * (x + T(GELU_CUBIC) * x2 * x));
        const T du_dx = T(SQRT_2_OVER_PI) * (T(1) + T(3 * GELU_CUBIC) * x2);
        return s + T(2) * x * s * (T(1) - s) * du_dx;
    }
    const T s = sigmoid(x);
    return s * (T(1) + x * (T(1) - s));
}

// ---- 16-byte packs: 4 floats or 2 doubles moved by one load instruction ----
template <typename T> struct Pack16;
template <> struct Pack16<float> {
    typedef float4 type;
    static constexpr int size = 4;
};
template <> struct Pack16<double> {
    typedef double2 type;
    static constexpr int size = 2;
};

__device__ __forceinline__ float4 act_pack(float4 v, int kind) {
    v.x = act_value(v.x, kind);
    v.y = act_value(v.y, kind);
    v.z = act_value(v.z, kind);
    v.w = act_value(v.w, kind);
    return v;
}
__device__ __forceinline__ double2 act_pack(double2 v, int kind) {
    v.x = act_value(v.x, kind);
    v.y = act_value(v.y, kind);
    return v;
}
__device__ __forceinline__ float4 grad_pack(float4 x, float4 dy, int kind) {
    x.x = dy.x * act_derivative(x.x, kind);
    x.y = dy.y * act_derivative(x.y, kind);
    x.z = dy.z * act_derivative(x.z, kind);
    x.w = dy.w * act_derivative(x.w, kind);
    return x;
}
__device__ __forceinline__ double2 grad_pack(double2 x, double2 dy, int kind) {
    x.x = dy.x * act_derivative(x.x, kind);
    x.y = dy.y * act_derivative(x.y, kind);
    return x;
}

// ---------------- forward ----------------

template <typename T>
__device__ void act_fwd_v1(const T* __restrict__ x, T* __restrict__ y, long long n, int kind) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = act_value(x[i], kind);
}

template <typename T>
__device__ void act_fwd_v2(const T* __restrict__ x, T* __restrict__ y, long long n, int kind) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = act_value(x[i], kind);
}

template <typename T>
__device__ void act_fwd_v3(const T* __restrict__ x, T* __restrict__ y, long long n, int kind) {
    typedef typename Pack16<T>::type P;
    const int width = Pack16<T>::size;
    const long long packs = n / width, stride = (long long)gridDim.x * blockDim.x;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const P* xp = reinterpret_cast<const P*>(x);
    P* yp = reinterpret_cast<P*>(y);
    for (long long i = first; i < packs; i += stride) yp[i] = act_pack(xp[i], kind);
    for (long long i = packs * width + first; i < n; i += stride) y[i] = act_value(x[i], kind);  // the tail
}

// ---------------- backward ----------------

template <typename T>
__device__ void act_bwd_v1(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx, long long n,
                           int kind) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dx[i] = dy[i] * act_derivative(x[i], kind);
}

template <typename T>
__device__ void act_bwd_v2(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx, long long n,
                           int kind) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        dx[i] = dy[i] * act_derivative(x[i], kind);
}

template <typename T>
__device__ void act_bwd_v3(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx, long long n,
                           int kind) {
    typedef typename Pack16<T>::type P;
    const int width = Pack16<T>::size;
    const long long packs = n / width, stride = (long long)gridDim.x * blockDim.x;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const P* xp = reinterpret_cast<const P*>(x);
    const P* dyp = reinterpret_cast<const P*>(dy);
    P* dxp = reinterpret_cast<P*>(dx);
    for (long long i = first; i < packs; i += stride) dxp[i] = grad_pack(xp[i], dyp[i], kind);
    for (long long i = packs * width + first; i < n; i += stride) dx[i] = dy[i] * act_derivative(x[i], kind);
}

// ---------------- with a bias over the last axis ----------------

template <typename T>
__device__ void bias_act_fwd_v1(const T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ y,
                                long long n, int cols, int kind) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = act_value(x[i] + bias[i % cols], kind);
}

template <typename T>
__device__ void bias_act_bwd_v1(const T* __restrict__ x, const T* __restrict__ bias, const T* __restrict__ dy,
                                T* __restrict__ dx, T* __restrict__ dbias, long long rows, int cols,
                                long long rows_per_stripe, int kind) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= cols) return;  // no barrier in this kernel
    const long long r0 = (long long)blockIdx.y * rows_per_stripe;
    const long long r1 = min(rows, r0 + rows_per_stripe);
    const T b = bias[col];
    T partial = 0;
    for (long long r = r0; r < r1; ++r) {
        const long long i = r * cols + col;
        const T g = dy[i] * act_derivative(x[i] + b, kind);
        dx[i] = g;
        partial += g;
    }
    if (r1 > r0) atomicAdd(&dbias[col], partial);
}

// ---------------- entry points: one per version and dtype ----------------

extern "C" __global__ void act_fwd_v1_f32(const float* x, float* y, long long n, int kind) { act_fwd_v1<float>(x, y, n, kind); }
extern "C" __global__ void act_fwd_v2_f32(const float* x, float* y, long long n, int kind) { act_fwd_v2<float>(x, y, n, kind); }
extern "C" __global__ void act_fwd_v3_f32(const float* x, float* y, long long n, int kind) { act_fwd_v3<float>(x, y, n, kind); }
extern "C" __global__ void act_fwd_v1_f64(const double* x, double* y, long long n, int kind) { act_fwd_v1<double>(x, y, n, kind); }
extern "C" __global__ void act_fwd_v2_f64(const double* x, double* y, long long n, int kind) { act_fwd_v2<double>(x, y, n, kind); }
extern "C" __global__ void act_fwd_v3_f64(const double* x, double* y, long long n, int kind) { act_fwd_v3<double>(x, y, n, kind); }

extern "C" __global__ void act_bwd_v1_f32(const float* x, const float* dy, float* dx, long long n, int kind) {
    act_bwd_v1<float>(x, dy, dx, n, kind);
}
extern "C" __global__ void act_bwd_v2_f32(const float* x, const float* dy, float* dx, long long n, int kind) {
    act_bwd_v2<float>(x, dy, dx, n, kind);
}
extern "C" __global__ void act_bwd_v3_f32(const float* x, const float* dy, float* dx, long long n, int kind) {
    act_bwd_v3<float>(x, dy, dx, n, kind);
}
extern "C" __global__ void act_bwd_v1_f64(const double* x, const double* dy, double* dx, long long n, int kind) {
    act_bwd_v1<double>(x, dy, dx, n, kind);
}
extern "C" __global__ void act_bwd_v2_f64(const double* x, const double* dy, double* dx, long long n, int kind) {
    act_bwd_v2<double>(x, dy, dx, n, kind);
}
extern "C" __global__ void act_bwd_v3_f64(const double* x, const double* dy, double* dx, long long n, int kind) {
    act_bwd_v3<double>(x, dy, dx, n, kind);
}

extern "C" __global__ void bias_act_fwd_v1_f32(const float* x, const float* bias, float* y, long long n, int cols,
                                               int kind) {
    bias_act_fwd_v1<float>(x, bias, y, n, cols, kind);
}
extern "C" __global__ void bias_act_fwd_v1_f64(const double* x, const double* bias, double* y, long long n, int cols,
                                               int kind) {
    bias_act_fwd_v1<double>(x, bias, y, n, cols, kind);
}
extern "C" __global__ void bias_act_bwd_v1_f32(const float* x, const float* bias, const float* dy, float* dx,
                                               float* dbias, long long rows, int cols, long long rows_per_stripe,
                                               int kind) {
    bias_act_bwd_v1<float>(x, bias, dy, dx, dbias, rows, cols, rows_per_stripe, kind);
}
extern "C" __global__ void bias_act_bwd_v1_f64(const double* x, const double* bias, const double* dy, double* dx,
                                               double* dbias, long long rows, int cols, long long rows_per_stripe,
                                               int kind) {
    bias_act_bwd_v1<double>(x, bias, dy, dx, dbias, rows, cols, rows_per_stripe, kind);
}
