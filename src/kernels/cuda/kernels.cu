// Fused row sums and dense-gradient fill for the batched RTB / Trust-PCL kernels.
// Layout: step-major T x B (trajectory i's steps at [i*T, i*T + T)), as on the CPU.
// One warp per trajectory (grid-stride over rows): lane j adds terms j, j+32, ... in order,
// then five __shfl_down_sync levels (the depth the error bounds assume: sum::cuda_depth).
// Compiled by NVRTC with --fmad=false, so a*q + b*p rounds exactly as on the CPU.

#define DEFINE_KERNELS(T, SUFFIX)                                                            \
extern "C" __global__ void row_sums_##SUFFIX(                                                \
    const T* __restrict__ q, const T* __restrict__ p,                                        \
    const int* __restrict__ start, const int* __restrict__ end,                              \
    int batch, int steps, T a1, T b1, T a2, T b2, int two,                                   \
    T* __restrict__ out1, T* __restrict__ out2) {                                            \
    const int lane = threadIdx.x & 31;                                                       \
    const int warps = (gridDim.x * blockDim.x) >> 5;                                         \
    for (int row = (blockIdx.x * blockDim.x + threadIdx.x) >> 5; row < batch; row += warps) { \
        const size_t base = (size_t)row * (size_t)steps;                                     \
        const int s = start[row], e = end[row];                                              \
        T acc1 = (T)0, acc2 = (T)0;                                                          \
        for (int t = s + lane; t < e; t += 32) {                                             \
            const T x = q[base + t], y = p[base + t];                                        \
            acc1 += a1 * x + b1 * y;                                                         \
            if (two) acc2 += a2 * x + b2 * y;                                                \
        }                                                                                    \
        for (int off = 16; off > 0; off >>= 1) {                                             \
            acc1 += __shfl_down_sync(0xffffffffu, acc1, off);                                \
            acc2 += __shfl_down_sync(0xffffffffu, acc2, off);                                \
        }                                                                                    \
        if (lane == 0) {                                                                     \
            out1[row] = acc1;                                                                \
            if (two) out2[row] = acc2;                                                       \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
extern "C" __global__ void fill_dense_##SUFFIX(                                              \
    const T* __restrict__ g, const int* __restrict__ start, const int* __restrict__ end,     \
    int batch, int steps, T* __restrict__ dense) {                                           \
    const size_t n = (size_t)batch * (size_t)steps;                                          \
    const size_t stride = (size_t)gridDim.x * blockDim.x;                                    \
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += stride) {     \
        const int row = (int)(k / steps), t = (int)(k % steps);                              \
        dense[k] = (t >= start[row] && t < end[row]) ? g[row] : (T)0;                        \
    }                                                                                        \
}

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)
