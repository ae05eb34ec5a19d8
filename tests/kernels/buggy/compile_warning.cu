// Compiles, but with a warning: the compile gate must reject it.
extern "C" __global__ void unused_variable(float* y) {
    int unused = 3;
    y[threadIdx.x] = 1.0f;
}
