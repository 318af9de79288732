// Host emulation of the CUDA C subset kiln generates, for testing generated kernels
// without a GPU: every thread of a block is a std::thread, blocks run one after another,
// __syncthreads/__syncwarp are std::barriers and warp shuffles exchange through a
// per-warp buffer between two barriers. `__shared__` becomes a function-local static
// (shared by the threads of the one block that runs at a time). This checks the
// generated code's logic (indexing, thread mapping, reductions, tiling, Philox); it
// says nothing about GPU-specific behaviour (memory model, performance, registers).
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

using std::isnan;
using std::max;
using std::min;

struct uint3 { unsigned int x, y, z; };
struct uint2 { unsigned int x, y; };
struct uint4 { unsigned int x, y, z, w; };
struct int4 { int x, y, z, w; };
struct float4 { float x, y, z, w; };
static inline uint2 make_uint2(unsigned int x, unsigned int y) { return {x, y}; }
static inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return {x, y, z, w}; }
static inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
static inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
static uint3 blockDim;
static uint3 gridDim;

#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

static inline float __int_as_float(unsigned int b) { float f; std::memcpy(&f, &b, 4); return f; }
static inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
static inline int __float2int_rz(float x) {
    if (isnan(x)) return 0;
    if (x >= 2147483647.0f) return 2147483647;
    if (x <= -2147483648.0f) return (-2147483647 - 1);
    return (int)x;
}
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
// Correctly rounded: a double quotient of floats rounds to the same float as the exact one.
static inline float __frcp_rn(float b) { return (float)(1.0 / (double)b); }
static inline float __fdiv_rn(float a, float b) { return a / b; }

static std::unique_ptr<std::barrier<>> g_block_barrier;
static std::vector<std::unique_ptr<std::barrier<>>> g_warp_barriers;
static std::vector<unsigned long long> g_shfl;  // 32 slots per warp

static inline void __syncthreads() { g_block_barrier->arrive_and_wait(); }
static inline void __syncwarp() { g_warp_barriers[threadIdx.x >> 5]->arrive_and_wait(); }

template <typename T> static inline T __shfl_xor_sync(unsigned int, T v, int lane_mask) {
    const unsigned int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    unsigned long long slot = 0;
    std::memcpy(&slot, &v, sizeof(T));
    g_shfl[warp * 32 + lane] = slot;
    g_warp_barriers[warp]->arrive_and_wait();
    slot = g_shfl[warp * 32 + (lane ^ (unsigned int)lane_mask)];
    g_warp_barriers[warp]->arrive_and_wait();
    T r;
    std::memcpy(&r, &slot, sizeof(T));
    return r;
}

// Run `body` for every thread of every block of the grid.
static void kiln_launch(uint3 grid, uint3 block, const std::function<void()>& body) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
    gridDim = grid;
    blockDim = block;
    const unsigned int threads = block.x * block.y * block.z;
    for (unsigned int z = 0; z < grid.z; ++z)
        for (unsigned int y = 0; y < grid.y; ++y)
            for (unsigned int x = 0; x < grid.x; ++x) {
                g_block_barrier = std::make_unique<std::barrier<>>(threads);
                g_warp_barriers.clear();
                for (unsigned int w = 0; w < (threads + 31) / 32; ++w)
                    g_warp_barriers.push_back(std::make_unique<std::barrier<>>(std::min(32u, threads - 32 * w)));
                g_shfl.assign(((threads + 31) / 32) * 32, 0);
                std::vector<std::thread> pool;
                pool.reserve(threads);
                for (unsigned int t = 0; t < threads; ++t)
                    pool.emplace_back([=, &body] {
                        threadIdx = {t, 0, 0};
                        blockIdx = {x, y, z};
                        body();
                    });
                for (auto& th : pool) th.join();
            }
}

static inline float kiln_as_f32(unsigned int b) { return __int_as_float(b); }
static inline int kiln_as_i32(unsigned int b) { return (int)b; }
