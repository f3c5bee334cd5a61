// Fused row sums and dense-gradient fill for the batched RTB / Trust-PCL kernels, and the
// device's own bandwidth references (bench --device cuda).
// Layout: step-major T x B (trajectory i's steps at [i*T, i*T + T)), as on the CPU.
// Compiled by NVRTC (C++) with --fmad=false, so a*q + b*p rounds exactly as on the CPU.

// Loads of one row a lane issues before their adds: ROW_UNROLL strides of 32 steps, and the
// chunks of the next ROW_DEPTH rows' steps in flight meanwhile. On an H200 at B = 2^20,
// T = 100 (docs/performance.md, "CUDA"), unroll 4 and depth 1 were the fastest in both float
// types of unroll 1, 2, 4, 8 and depth 1, 2, 4 (deeper pipelines hold more registers and
// lose more resident warps than they gain). Every macro below can be set through
// RTB_TRUSTPCL_CUDA_OPTIONS (e.g. "-DROW_UNROLL_F64=2"), for measuring variants; the bits do
// not depend on any of them.
#ifndef ROW_UNROLL_F32
#define ROW_UNROLL_F32 4
#endif
#ifndef ROW_UNROLL_F64
#define ROW_UNROLL_F64 4
#endif
// Chunks whose loads are in flight while one is added (the pipeline's depth).
#ifndef ROW_DEPTH_F32
#define ROW_DEPTH_F32 1
#endif
#ifndef ROW_DEPTH_F64
#define ROW_DEPTH_F64 1
#endif
// The dense fill's stores: 0 scalar, 1 16-byte vectors, 2 16-byte streaming (evict-first:
// the output is not read again by this kernel; the fastest of the three in both types).
#ifndef FILL_STORES
#define FILL_STORES 2
#endif
// Blocks of 256 threads the row sums ask to keep resident per multiprocessor (0: no bound,
// the compiler's register choice decides).
#ifndef ROW_MIN_BLOCKS
#define ROW_MIN_BLOCKS 0
#endif
#if ROW_MIN_BLOCKS > 0
#define ROW_BOUNDS __launch_bounds__(256, ROW_MIN_BLOCKS)
#else
#define ROW_BOUNDS
#endif

#define FULL_MASK 0xffffffffu

// Loads one chunk of a row: lane steps c + lane + 32u, u < U, inside [c, e).
template <typename T, int U>
__device__ __forceinline__ void load_chunk(const T* __restrict__ q, const T* __restrict__ p,
                                           size_t base, int c, int e, int lane, T (&x)[U],
                                           T (&y)[U]) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const int t = c + lane + 32 * u;
        x[u] = t < e ? q[base + t] : T(0);
        y[u] = t < e ? p[base + t] : T(0);
    }
}

// This warp's share of the rows [lo, hi), balanced to one row over the grid's warps (the
// grid is what stays resident, or one warp per 32 rows); the warp takes it 32 rows at a time.
struct Share {
    long long lo, hi;
};
__device__ __forceinline__ Share warp_share(int batch) {
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const long long warps = ((long long)gridDim.x * blockDim.x) >> 5;
    return Share{warp * batch / warps, (warp + 1) * batch / warps};
}

// A position in a warp's walk over its rows' chunks: row k of the group (k >= rows: past the
// end), its bounds [s, e), and the chunk's first step c.
struct Cursor {
    int k, s, e, c;
};

// The chunk after `at`: the row's next one, or the next row's first (an empty row has one
// chunk with no live step). Warp-uniform: every lane holds the same cursor.
template <int U>
__device__ __forceinline__ Cursor advance(Cursor at, int rows, int my_s, int my_e) {
    if (at.k >= rows) return at;
    if (at.c + 32 * U < at.e) return Cursor{at.k, at.s, at.e, at.c + 32 * U};
    Cursor n{at.k + 1, 0, 0, 0};
    if (n.k < rows) {
        n.s = __shfl_sync(FULL_MASK, my_s, n.k);
        n.e = __shfl_sync(FULL_MASK, my_e, n.k);
        n.c = n.s;
    }
    return n;
}

// Phase 1. Each warp takes a contiguous share of the rows, 32 at a time (their bounds read in
// one coalesced load and passed by shuffles, so no row waits on a dependent load of its
// bounds), and walks their chunks of 32*U steps in order, keeping the loads of the next D
// chunks (the same row's, or the next rows') in flight while it adds this one: the memory
// latency is paid once per group of rows, not once per row. Per row, lane j adds terms j,
// j+32, ... in order, then five __shfl_down_sync levels (the depth the error bounds assume:
// sum::cuda_depth). An empty row sums to zero.
template <typename T, int U, int D>
__device__ void row_sums(const T* __restrict__ q, const T* __restrict__ p,
                         const int* __restrict__ start, const int* __restrict__ end, int batch,
                         int steps, T a1, T b1, T a2, T b2, int two, T* __restrict__ out1,
                         T* __restrict__ out2) {
    const int lane = threadIdx.x & 31;
    const Share share = warp_share(batch);
    for (long long row0 = share.lo; row0 < share.hi; row0 += 32) {
        const int rows = (int)min(32LL, share.hi - row0);
        int my_s = 0, my_e = 0;
        if (lane < rows) {
            my_s = start[row0 + lane];
            my_e = end[row0 + lane];
        }
        // at[0] is the chunk being added; at[1..D] are loaded and in flight.
        Cursor at[D + 1];
        T x[D + 1][U], y[D + 1][U];
        {
            const int s0 = __shfl_sync(FULL_MASK, my_s, 0), e0 = __shfl_sync(FULL_MASK, my_e, 0);
            at[0] = Cursor{0, s0, e0, s0};
        }
        load_chunk<T, U>(q, p, (size_t)row0 * steps, at[0].c, at[0].e, lane, x[0], y[0]);
#pragma unroll
        for (int d = 1; d < D; ++d) {
            at[d] = advance<U>(at[d - 1], rows, my_s, my_e);
            if (at[d].k < rows)
                load_chunk<T, U>(q, p, (size_t)(row0 + at[d].k) * steps, at[d].c, at[d].e,
                                 lane, x[d], y[d]);
        }
        T acc1 = T(0), acc2 = T(0);
        while (true) {
            at[D] = advance<U>(at[D - 1], rows, my_s, my_e);
            if (at[D].k < rows)
                load_chunk<T, U>(q, p, (size_t)(row0 + at[D].k) * steps, at[D].c, at[D].e,
                                 lane, x[D], y[D]);
            const Cursor& c = at[0];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                if (c.c + lane + 32 * u < c.e) {
                    acc1 += a1 * x[0][u] + b1 * y[0][u];
                    if (two) acc2 += a2 * x[0][u] + b2 * y[0][u];
                }
            }
            if (c.c + 32 * U >= c.e) {
                for (int off = 16; off > 0; off >>= 1)
                    acc1 += __shfl_down_sync(FULL_MASK, acc1, off);
                // `two` is the same in every lane: the second sum's levels only when it exists.
                if (two)
                    for (int off = 16; off > 0; off >>= 1)
                        acc2 += __shfl_down_sync(FULL_MASK, acc2, off);
                if (lane == 0) {
                    out1[row0 + c.k] = acc1;
                    if (two) out2[row0 + c.k] = acc2;
                }
                acc1 = T(0);
                acc2 = T(0);
            }
            if (at[1].k >= rows) break;
#pragma unroll
            for (int d = 0; d < D; ++d) {
                at[d] = at[d + 1];
#pragma unroll
                for (int u = 0; u < U; ++u) {
                    x[d][u] = x[d + 1][u];
                    y[d][u] = y[d + 1][u];
                }
            }
        }
    }
}

// Builds a 16-byte vector from VN values.
__device__ __forceinline__ float4 vec_of(const float (&v)[4]) {
    return make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ double2 vec_of(const double (&v)[2]) {
    return make_double2(v[0], v[1]);
}

// Phase 3. Each warp takes a contiguous share of the rows, 32 at a time (bounds and g_i read
// in one coalesced load, passed by shuffles) and writes each row whole: g_i over [start, end), zero elsewhere. The
// row's 16-byte-aligned middle goes out in 16-byte stores, the few steps before and after it
// in scalar ones. Every element of the B x T output is written (the buffer is not cleared).
template <typename T, typename V, int VN>
__device__ void fill_dense(const T* __restrict__ g, const int* __restrict__ start,
                           const int* __restrict__ end, int batch, int steps,
                           T* __restrict__ dense) {
    const int lane = threadIdx.x & 31;
    const Share share = warp_share(batch);
    for (long long row0 = share.lo; row0 < share.hi; row0 += 32) {
        const int rows = (int)min(32LL, share.hi - row0);
        int my_s = 0, my_e = 0;
        T my_g = T(0);
        if (lane < rows) {
            my_s = start[row0 + lane];
            my_e = end[row0 + lane];
            my_g = g[row0 + lane];
        }
        for (int k = 0; k < rows; ++k) {
            const int s = __shfl_sync(FULL_MASK, my_s, k), e = __shfl_sync(FULL_MASK, my_e, k);
            const T v = __shfl_sync(FULL_MASK, my_g, k);
            const size_t base = (size_t)(row0 + k) * (size_t)steps;
            // Steps before the first 16-byte boundary, the whole vectors, the steps after.
            const int head = min((int)((VN - base % VN) % VN), steps);
            const int vectors = (steps - head) / VN;
            const int tail = head + vectors * VN;
            if (lane < head) dense[base + lane] = (lane >= s && lane < e) ? v : T(0);
            if (tail + lane < steps) {
                const int t = tail + lane;
                dense[base + t] = (t >= s && t < e) ? v : T(0);
            }
#if FILL_STORES == 0
            for (int t = head + lane; t < tail; t += 32) dense[base + t] = (t >= s && t < e) ? v : T(0);
#else
            V* body = reinterpret_cast<V*>(dense + base + head);
            for (int j = lane; j < vectors; j += 32) {
                T w[VN];
#pragma unroll
                for (int u = 0; u < VN; ++u) {
                    const int t = head + j * VN + u;
                    w[u] = (t >= s && t < e) ? v : T(0);
                }
#if FILL_STORES == 2
                __stcs(body + j, vec_of(w));
#else
                body[j] = vec_of(w);
#endif
            }
#endif
        }
    }
}

// The read reference: every element of a and b read once in 16-byte vectors (nv vectors
// each; the buffers are 256-byte aligned), one partial sum per thread written so the reads
// cannot be elided.
__device__ __forceinline__ float vsum(float4 v) { return (v.x + v.y) + (v.z + v.w); }
__device__ __forceinline__ double vsum(double2 v) { return v.x + v.y; }

template <typename T, typename V>
__device__ void read_ref(const V* __restrict__ a, const V* __restrict__ b, long long nv,
                         T* __restrict__ out) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    T acc = T(0);
    for (long long k = id; k < nv; k += stride) acc += vsum(a[k]) + vsum(b[k]);
    out[id] = acc;
}

// The copy reference: dst <- src in 16-byte vectors (read + write).
template <typename V>
__device__ void copy_ref(const V* __restrict__ src, long long nv, V* __restrict__ dst) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < nv; k += stride)
        dst[k] = src[k];
}

#define DEFINE_KERNELS(T, V, VN, U, D, SUFFIX)                                                   \
    extern "C" __global__ void ROW_BOUNDS row_sums_##SUFFIX(                                  \
        const T* __restrict__ q, const T* __restrict__ p, const int* __restrict__ start,      \
        const int* __restrict__ end, int batch, int steps, T a1, T b1, T a2, T b2, int two,   \
        T* __restrict__ out1, T* __restrict__ out2) {                                         \
        row_sums<T, U, D>(q, p, start, end, batch, steps, a1, b1, a2, b2, two, out1, out2);  \
    }                                                                                         \
    extern "C" __global__ void fill_dense_##SUFFIX(                                           \
        const T* __restrict__ g, const int* __restrict__ start, const int* __restrict__ end,  \
        int batch, int steps, T* __restrict__ dense) {                                        \
        fill_dense<T, V, VN>(g, start, end, batch, steps, dense);                             \
    }                                                                                         \
    extern "C" __global__ void read_ref_##SUFFIX(const V* __restrict__ a,                     \
                                                 const V* __restrict__ b, long long nv,       \
                                                 T* __restrict__ out) {                       \
        read_ref<T, V>(a, b, nv, out);                                                        \
    }                                                                                         \
    extern "C" __global__ void copy_ref_##SUFFIX(const V* __restrict__ src, long long nv,     \
                                                 V* __restrict__ dst) {                       \
        copy_ref<V>(src, nv, dst);                                                            \
    }

DEFINE_KERNELS(float, float4, 4, ROW_UNROLL_F32, ROW_DEPTH_F32, f32)
DEFINE_KERNELS(double, double2, 2, ROW_UNROLL_F64, ROW_DEPTH_F64, f64)
