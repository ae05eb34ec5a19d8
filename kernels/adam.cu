/* adam.cu — optimizer steps, in place: Adam / AdamW and SGD with momentum (PyTorch's formulas).
 *
 * Adam (t = step count, 1 on the first call; bc1 = 1 - beta1^t, bc2 = 1 - beta2^t):
 *   g = maximize ? -grad : grad
 *   weight_decay: AdamW (decoupled) shrinks the weights, p *= 1 - lr*wd; Adam adds g += wd*p
 *   m = m + (1 - beta1) (g - m);   v = beta2 v + (1 - beta2) g^2
 *   amsgrad: vmax = max(vmax, v) and vmax replaces v below
 *   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)     (eps after the division, as PyTorch)
 * SGD:
 *   g = maximize ? -grad : grad;  g += wd*p
 *   momentum: b = g on the first step, else b = momentum b + (1 - dampening) g;
 *             g = nesterov ? g + momentum b : b
 *   p -= lr g
 * Every scalar that depends only on the step (lr / bc1, sqrt(bc2), 1 - beta1, 1 - lr*wd ...) is
 * computed once on the host in double precision and passed in the parameters' dtype, exactly
 * as PyTorch's float32 tensors meet Python-float scalars.
 *
 * Multi-tensor launches. A model has many parameter tensors of very different sizes (a bias of
 * 10 floats, an embedding of millions). One launch per tensor costs a launch each (~5 us on a
 * GPU, more than the update of a small tensor). The v2 kernels update ALL tensors of one dtype
 * in ONE launch:
 *   tensors:      unsigned long long[k * num_tensors + t] = device address of array k of tensor
 *                 t, k = 0 param, 1 grad, 2 exp_avg / momentum buffer, 3 exp_avg_sq, 4 max_exp_avg_sq
 *                 (an unused row holds zeros and is never dereferenced);
 *   sizes:        long long[t] = number of elements of tensor t;
 *   chunk_tensor: int[c] and chunk_start: long long[c] = tensor and first element of chunk c.
 * Block c updates elements chunk_start[c] .. chunk_start[c] + chunk_size - 1 of its tensor (or
 * fewer at the tensor's end), its threads striding through the chunk. Every tensor is cut into
 * chunks of the same size, so blocks get equal work whatever the tensor sizes.
 * Why addresses and not one packed arena: the parameters are separate arrays that the model
 * owns and must be updated where they are; copying them into an arena and back would triple
 * the memory traffic of a bandwidth-bound step. The kernel signature can only say "an array of
 * 64-bit integers", so the host checks every listed array (dtype, shape, C-contiguity) before
 * it takes its address; in the emulator the AddressSanitizer build still catches a wrong size.
 *
 * Ladder (each entry: [op version] kernel: the one idea it adds; limits):
 *   [adam_step v1] adam_v1: one launch per tensor, grid-stride over its elements. Any size.
 *   [adam_step v2] adam_multi_v2: one launch for every tensor (address table + chunk table).
 *       At most 2^31 - 1 chunks; blockDim.x a multiple of 32.
 *   [sgd_step v1] sgd_v1: one launch per tensor, grid-stride. Any size.
 *   [sgd_step v2] sgd_multi_v2: one launch for every tensor. Same limits as adam_step v2.
 */

template <typename T>
struct AdamScalars {
    T step_size;       // lr / bc1
    T bc2_sqrt;        // sqrt(bc2)
    T one_minus_beta1, beta2, one_minus_beta2, eps;
    T weight_decay;    // 0: no decay
    T decay_factor;    // 1 - lr * weight_decay (AdamW)
    int decoupled, amsgrad, maximize;
};

template <typename T>
__device__ __forceinline__ void adam_update(T* p, const T* grad, T* m, T* v, T* vmax, long long i,
                                            const AdamScalars<T>& s) {
    T g = s.maximize ? -grad[i] : grad[i];
    T w = p[i];
    if (s.weight_decay != T(0)) {
        if (s.decoupled) w *= s.decay_factor;
        else g += s.weight_decay * w;
    }
    const T m_new = m[i] + s.one_minus_beta1 * (g - m[i]);
    T v_new = v[i] * s.beta2 + s.one_minus_beta2 * g * g;
    m[i] = m_new;
    v[i] = v_new;
    if (s.amsgrad) {
        v_new = dev_max(vmax[i], v_new);
        vmax[i] = v_new;
    }
    p[i] = w - s.step_size * (m_new / (dev_sqrt(v_new) / s.bc2_sqrt + s.eps));
}

template <typename T>
struct SgdScalars {
    T lr, momentum, one_minus_dampening, weight_decay;
    int has_momentum, first_step, nesterov, maximize;
};

template <typename T>
__device__ __forceinline__ void sgd_update(T* p, const T* grad, T* buf, long long i, const SgdScalars<T>& s) {
    T g = s.maximize ? -grad[i] : grad[i];
    const T w = p[i];
    if (s.weight_decay != T(0)) g += s.weight_decay * w;
    if (s.has_momentum) {
        const T b = s.first_step ? g : buf[i] * s.momentum + s.one_minus_dampening * g;
        buf[i] = b;
        g = s.nesterov ? g + s.momentum * b : b;
    }
    p[i] = w - s.lr * g;
}

// ---------------- v1: one launch per tensor ----------------

template <typename T>
__device__ void adam_v1(T* p, const T* g, T* m, T* v, T* vmax, long long n, const AdamScalars<T>& s) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        adam_update(p, g, m, v, vmax, i, s);
}

template <typename T>
__device__ void sgd_v1(T* p, const T* g, T* buf, long long n, const SgdScalars<T>& s) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        sgd_update(p, g, buf, i, s);
}

// ---------------- v2: every tensor in one launch ----------------

// Array k of tensor t, from the address table.
template <typename T>
__device__ __forceinline__ T* tensor_array(const unsigned long long* tensors, int num_tensors, int k, int t) {
    return reinterpret_cast<T*>(tensors[(long long)k * num_tensors + t]);
}

// The element range [begin, end) of this block's chunk.
__device__ __forceinline__ void chunk_range(const long long* sizes, const int* chunk_tensor,
                                            const long long* chunk_start, long long chunk_size, int& t,
                                            long long& begin, long long& end) {
    t = chunk_tensor[blockIdx.x];
    begin = chunk_start[blockIdx.x];
    end = min(sizes[t], begin + chunk_size);
}

template <typename T>
__device__ void adam_multi_v2(const unsigned long long* tensors, const long long* sizes, const int* chunk_tensor,
                              const long long* chunk_start, int num_tensors, long long chunk_size,
                              const AdamScalars<T>& s) {
    int t;
    long long begin, end;
    chunk_range(sizes, chunk_tensor, chunk_start, chunk_size, t, begin, end);
    T* p = tensor_array<T>(tensors, num_tensors, 0, t);
    const T* g = tensor_array<T>(tensors, num_tensors, 1, t);
    T* m = tensor_array<T>(tensors, num_tensors, 2, t);
    T* v = tensor_array<T>(tensors, num_tensors, 3, t);
    T* vmax = tensor_array<T>(tensors, num_tensors, 4, t);
    for (long long i = begin + threadIdx.x; i < end; i += blockDim.x) adam_update(p, g, m, v, vmax, i, s);
}

template <typename T>
__device__ void sgd_multi_v2(const unsigned long long* tensors, const long long* sizes, const int* chunk_tensor,
                             const long long* chunk_start, int num_tensors, long long chunk_size,
                             const SgdScalars<T>& s) {
    int t;
    long long begin, end;
    chunk_range(sizes, chunk_tensor, chunk_start, chunk_size, t, begin, end);
    T* p = tensor_array<T>(tensors, num_tensors, 0, t);
    const T* g = tensor_array<T>(tensors, num_tensors, 1, t);
    T* buf = tensor_array<T>(tensors, num_tensors, 2, t);
    for (long long i = begin + threadIdx.x; i < end; i += blockDim.x) sgd_update(p, g, buf, i, s);
}

// ---------------- entry points: one per version and dtype ----------------
// The scalars arrive as kernel parameters (fundamental types only) and are packed here.

template <typename T>
__device__ __forceinline__ AdamScalars<T> adam_scalars(T step_size, T bc2_sqrt, T one_minus_beta1, T beta2,
                                                       T one_minus_beta2, T eps, T weight_decay, T decay_factor,
                                                       int decoupled, int amsgrad, int maximize) {
    AdamScalars<T> s;
    s.step_size = step_size;
    s.bc2_sqrt = bc2_sqrt;
    s.one_minus_beta1 = one_minus_beta1;
    s.beta2 = beta2;
    s.one_minus_beta2 = one_minus_beta2;
    s.eps = eps;
    s.weight_decay = weight_decay;
    s.decay_factor = decay_factor;
    s.decoupled = decoupled;
    s.amsgrad = amsgrad;
    s.maximize = maximize;
    return s;
}

template <typename T>
__device__ __forceinline__ SgdScalars<T> sgd_scalars(T lr, T momentum, T one_minus_dampening, T weight_decay,
                                                     int has_momentum, int first_step, int nesterov, int maximize) {
    SgdScalars<T> s;
    s.lr = lr;
    s.momentum = momentum;
    s.one_minus_dampening = one_minus_dampening;
    s.weight_decay = weight_decay;
    s.has_momentum = has_momentum;
    s.first_step = first_step;
    s.nesterov = nesterov;
    s.maximize = maximize;
    return s;
}

extern "C" __global__ void adam_v1_f32(float* p, const float* g, float* m, float* v, float* vmax, long long n,
                                       float step_size, float bc2_sqrt, float one_minus_beta1, float beta2,
                                       float one_minus_beta2, float eps, float weight_decay, float decay_factor,
                                       int decoupled, int amsgrad, int maximize) {
    adam_v1<float>(p, g, m, v, vmax, n, adam_scalars<float>(step_size, bc2_sqrt, one_minus_beta1, beta2,
                   one_minus_beta2, eps, weight_decay, decay_factor, decoupled, amsgrad, maximize));
}
extern "C" __global__ void adam_v1_f64(double* p, const double* g, double* m, double* v, double* vmax, long long n,
                                       double step_size, double bc2_sqrt, double one_minus_beta1, double beta2,
                                       double one_minus_beta2, double eps, double weight_decay, double decay_factor,
                                       int decoupled, int amsgrad, int maximize) {
    adam_v1<double>(p, g, m, v, vmax, n, adam_scalars<double>(step_size, bc2_sqrt, one_minus_beta1, beta2,
                    one_minus_beta2, eps, weight_decay, decay_factor, decoupled, amsgrad, maximize));
}
extern "C" __global__ void adam_multi_v2_f32(const unsigned long long* tensors, const long long* sizes,
                                             const int* chunk_tensor, const long long* chunk_start, int num_tensors,
                                             long long chunk_size, float step_size, float bc2_sqrt,
                                             float one_minus_beta1, float beta2, float one_minus_beta2, float eps,
                                             float weight_decay, float decay_factor, int decoupled, int amsgrad,
                                             int maximize) {
    adam_multi_v2<float>(tensors, sizes, chunk_tensor, chunk_start, num_tensors, chunk_size,
                         adam_scalars<float>(step_size, bc2_sqrt, one_minus_beta1, beta2, one_minus_beta2, eps,
                                             weight_decay, decay_factor, decoupled, amsgrad, maximize));
}
extern "C" __global__ void adam_multi_v2_f64(const unsigned long long* tensors, const long long* sizes,
                                             const int* chunk_tensor, const long long* chunk_start, int num_tensors,
                                             long long chunk_size, double step_size, double bc2_sqrt,
                                             double one_minus_beta1, double beta2, double one_minus_beta2, double eps,
                                             double weight_decay, double decay_factor, int decoupled, int amsgrad,
                                             int maximize) {
    adam_multi_v2<double>(tensors, sizes, chunk_tensor, chunk_start, num_tensors, chunk_size,
                          adam_scalars<double>(step_size, bc2_sqrt, one_minus_beta1, beta2, one_minus_beta2, eps,
                                               weight_decay, decay_factor, decoupled, amsgrad, maximize));
}
extern "C" __global__ void sgd_v1_f32(float* p, const float* g, float* buf, long long n, float lr, float momentum,
                                      float one_minus_dampening, float weight_decay, int has_momentum,
                                      int first_step, int nesterov, int maximize) {
    sgd_v1<float>(p, g, buf, n, sgd_scalars<float>(lr, momentum, one_minus_dampening, weight_decay, has_momentum,
                                                   first_step, nesterov, maximize));
}
extern "C" __global__ void sgd_v1_f64(double* p, const double* g, double* buf, long long n, double lr,
                                      double momentum, double one_minus_dampening, double weight_decay,
                                      int has_momentum, int first_step, int nesterov, int maximize) {
    sgd_v1<double>(p, g, buf, n, sgd_scalars<double>(lr, momentum, one_minus_dampening, weight_decay, has_momentum,
                                                     first_step, nesterov, maximize));
}
extern "C" __global__ void sgd_multi_v2_f32(const unsigned long long* tensors, const long long* sizes,
                                            const int* chunk_tensor, const long long* chunk_start, int num_tensors,
                                            long long chunk_size, float lr, float momentum,
                                            float one_minus_dampening, float weight_decay, int has_momentum,
                                            int first_step, int nesterov, int maximize) {
    sgd_multi_v2<float>(tensors, sizes, chunk_tensor, chunk_start, num_tensors, chunk_size,
                        sgd_scalars<float>(lr, momentum, one_minus_dampening, weight_decay, has_momentum,
                                           first_step, nesterov, maximize));
}
extern "C" __global__ void sgd_multi_v2_f64(const unsigned long long* tensors, const long long* sizes,
                                            const int* chunk_tensor, const long long* chunk_start, int num_tensors,
                                            long long chunk_size, double lr, double momentum,
                                            double one_minus_dampening, double weight_decay, int has_momentum,
                                            int first_step, int nesterov, int maximize) {
    sgd_multi_v2<double>(tensors, sizes, chunk_tensor, chunk_start, num_tensors, chunk_size,
                         sgd_scalars<double>(lr, momentum, one_minus_dampening, weight_decay, has_momentum,
                                             first_step, nesterov, maximize));
}
