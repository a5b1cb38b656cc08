// What every CUDA kernel of cae_fast shares: the block size, the launch (current stream, then the
// launch check) and a deterministic block reduction.
#pragma once

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <cstdint>
#include <cstring>
#include <utility>

namespace cae_fast {

// Threads per block of every 1-D kernel; block_reduce assumes blocks of exactly this size.
constexpr int kThreads = 256;
constexpr int kWarpSize = 32;
constexpr int kWarps = kThreads / kWarpSize;

// Blocks of `threads` that cover n items (at least one, so that a zero-size grid is never asked for;
// callers return early on n == 0).
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b > 0 ? b : 1);
}

// Launches kernel<<<grid, block>>> on the current stream and checks the launch.
template <typename... KernelArgs, typename... Args>
void launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, Args&&... args) {
  kernel<<<grid, block, 0, at::cuda::getCurrentCUDAStream()>>>(std::forward<Args>(args)...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// __shfl_down_sync for any trivially copyable T, moved as 32-bit words.
template <typename T>
__device__ __forceinline__ T shfl_down(const T& v, int offset) {
  static_assert(sizeof(T) % sizeof(int) == 0, "shfl_down moves 32-bit words");
  constexpr int kWords = sizeof(T) / sizeof(int);
  int src[kWords], dst[kWords];
  memcpy(src, &v, sizeof(T));
#pragma unroll
  for (int k = 0; k < kWords; ++k) dst[k] = __shfl_down_sync(0xffffffffu, src[k], offset);
  T out;
  memcpy(&out, dst, sizeof(T));
  return out;
}

// Reduces one value per thread of a kThreads block with merge(a, b) (a += b), in a fixed order
// (warps by shuffle, then the warp results in warp 0): no atomics, so results are bitwise
// reproducible run to run. zero is merge's identity. The result is valid in thread 0 only.
template <typename T, typename Merge>
__device__ __forceinline__ T block_reduce(T v, const T& zero, Merge merge) {
  __shared__ T warp_sums[kWarps];
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
#pragma unroll
  for (int off = kWarpSize / 2; off > 0; off >>= 1) merge(v, shfl_down(v, off));
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? warp_sums[lane] : zero;
#pragma unroll
    for (int off = kWarpSize / 2; off > 0; off >>= 1) merge(v, shfl_down(v, off));
  }
  return v;
}

}  // namespace cae_fast
