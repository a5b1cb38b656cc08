// Nearest neighbour of each latent in H_ref on the GPU, and its backward.
//
// Unlike the CPU kernel (||z||^2 + ||h||^2 - 2 z.h through a GEMM), distances here are
// accumulated directly as sum (z - h)^2 from shared-memory tiles: no cancellation, so near-ties
// resolve the same way as a float64 reference, and the value for a pair (i, j) depends only on
// the two rows (a fixed k order), so duplicated rows of H_ref produce bit-identical distances and
// "ties -> lowest index" holds exactly. The B x M matrix never exists: each block folds its
// tiles into a per-row running minimum, and a second kernel merges the per-split minima.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "../common/checks.h"
#include "../common/moments.h"
#include "../common/nn_ref.h"
#include "helpers.cuh"

namespace cae_fast {
namespace {

// A block computes a kTileZ x kTileH block of distances per step, each thread a kMicro x kMicro
// patch (rows ty + 16 r, columns tx + 16 c), reading kTileK dimensions at a time from shared
// memory. 64 x 64 x 32 keeps the double variant's two tiles (33 KB) under the 48 KB static limit.
constexpr int kThreadsSide = 16;
static_assert(kThreadsSide * kThreadsSide == kThreads, "the search kernel's block is kThreads, as a square");
constexpr int kMicro = 4;
constexpr int kTileZ = kThreadsSide * kMicro;
constexpr int kTileH = kThreadsSide * kMicro;
constexpr int kTileK = 32;
// +1 column: the transposing store walks k with stride (tile + 1), which spreads it over banks.
constexpr int kPad = 1;
// ~100 registers x 256 threads: two resident blocks per SM already fill the register file.
constexpr int kBlocksPerSm = 2;

// "No candidate yet": larger than every real index, so a lexicographic (value, index) minimum
// never prefers it on equal values.
constexpr int64_t kNoIndex = std::numeric_limits<int64_t>::max();

template <typename acc_t>
__device__ __forceinline__ acc_t inf_of() {
  return std::numeric_limits<acc_t>::infinity();
}

// Copies a rows x kTileK window of a row-major [n_rows, d] matrix into tile[k][row], converting to
// acc_t; out-of-range entries become 0 so padded dimensions add (0 - 0)^2 = 0 to every distance.
template <typename scalar_t, typename acc_t, int kRows>
__device__ __forceinline__ void load_tile(acc_t (*tile)[kRows + kPad], const scalar_t* __restrict__ src,
                                          int64_t row0, int64_t n_rows, int64_t k0, int64_t d) {
  // Consecutive threads take consecutive k of one row: coalesced global reads.
  static_assert((kRows * kTileK) % kThreads == 0, "tile must split evenly over the block");
#pragma unroll
  for (int t = 0; t < kRows * kTileK / kThreads; ++t) {
    const int e = static_cast<int>(threadIdx.x) + t * kThreads;
    const int row = e / kTileK, k = e % kTileK;
    const int64_t gr = row0 + row, gk = k0 + k;
    acc_t v = acc_t(0);
    if (gr < n_rows && gk < d) v = static_cast<acc_t>(src[gr * d + gk]);
    tile[k][row] = v;
  }
}

// grid = (z tiles, splits of H_ref). Block (zt, s) scans the H_ref tiles of split s for rows
// zt*kTileZ.. of z and writes, per row, the minimum over that split and its lowest index.
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads) nn_ref_search_kernel(
    const scalar_t* __restrict__ z, const scalar_t* __restrict__ h, const int64_t* __restrict__ exclude,
    int64_t b, int64_t m, int64_t d, int64_t tiles_per_split, acc_t* __restrict__ part_val,
    int64_t* __restrict__ part_idx) {
  __shared__ acc_t zs[kTileK][kTileZ + kPad];
  __shared__ acc_t hs[kTileK][kTileH + kPad];

  const int tx = threadIdx.x % kThreadsSide;
  const int ty = threadIdx.x / kThreadsSide;
  const int64_t z0 = static_cast<int64_t>(blockIdx.x) * kTileZ;
  const int64_t h_tiles = (m + kTileH - 1) / kTileH;
  const int64_t t_begin = static_cast<int64_t>(blockIdx.y) * tiles_per_split;
  const int64_t t_end = std::min(t_begin + tiles_per_split, h_tiles);

  acc_t best[kMicro];
  int64_t best_j[kMicro];
  int64_t skip[kMicro];
#pragma unroll
  for (int r = 0; r < kMicro; ++r) {
    best[r] = inf_of<acc_t>();
    best_j[r] = kNoIndex;
    const int64_t i = z0 + ty + kThreadsSide * r;
    skip[r] = (exclude != nullptr && i < b) ? exclude[i] : int64_t{-1};
  }

  for (int64_t t = t_begin; t < t_end; ++t) {
    const int64_t h0 = t * kTileH;
    acc_t acc[kMicro][kMicro];
#pragma unroll
    for (int r = 0; r < kMicro; ++r) {
#pragma unroll
      for (int c = 0; c < kMicro; ++c) acc[r][c] = acc_t(0);
    }
    for (int64_t k0 = 0; k0 < d; k0 += kTileK) {
      load_tile<scalar_t, acc_t, kTileZ>(zs, z, z0, b, k0, d);
      load_tile<scalar_t, acc_t, kTileH>(hs, h, h0, m, k0, d);
      __syncthreads();
#pragma unroll 8
      for (int k = 0; k < kTileK; ++k) {
        acc_t a[kMicro], hv[kMicro];
#pragma unroll
        for (int r = 0; r < kMicro; ++r) a[r] = zs[k][ty + kThreadsSide * r];
#pragma unroll
        for (int c = 0; c < kMicro; ++c) hv[c] = hs[k][tx + kThreadsSide * c];
#pragma unroll
        for (int r = 0; r < kMicro; ++r) {
#pragma unroll
          for (int c = 0; c < kMicro; ++c) {
            const acc_t diff = a[r] - hv[c];
            acc[r][c] = fma(diff, diff, acc[r][c]);
          }
        }
      }
      __syncthreads();
    }
    // This thread sees its candidates in increasing index order (tiles ascending, c ascending),
    // so a strict '<' keeps the lowest index among equal distances.
#pragma unroll
    for (int c = 0; c < kMicro; ++c) {
      const int64_t j = h0 + tx + kThreadsSide * c;
      if (j >= m) continue;
#pragma unroll
      for (int r = 0; r < kMicro; ++r) {
        if (acc[r][c] < best[r] && j != skip[r]) {
          best[r] = acc[r][c];
          best_j[r] = j;
        }
      }
    }
  }

  // The 16 threads sharing a z row are 16 consecutive lanes of one warp (tx is the fast index),
  // so xor-shuffles with offsets < 16 stay inside the row's group.
#pragma unroll
  for (int r = 0; r < kMicro; ++r) {
    acc_t v = best[r];
    int64_t j = best_j[r];
#pragma unroll
    for (int off = kThreadsSide / 2; off > 0; off >>= 1) {
      const acc_t ov = __shfl_xor_sync(0xffffffffu, v, off);
      const int64_t oj = __shfl_xor_sync(0xffffffffu, static_cast<long long>(j), off);
      if (ov < v || (ov == v && oj < j)) {
        v = ov;
        j = oj;
      }
    }
    const int64_t i = z0 + ty + kThreadsSide * r;
    if (tx == 0 && i < b) {
      part_val[static_cast<int64_t>(blockIdx.y) * b + i] = v;
      part_idx[static_cast<int64_t>(blockIdx.y) * b + i] = j;
    }
  }
}

// One thread per z row: merge the splits in order (split s covers lower indices than s + 1, so a
// strict '<' again keeps the lowest index), then report the exact double distance to the winner.
template <typename scalar_t, typename acc_t>
__global__ void nn_ref_finish_kernel(const scalar_t* __restrict__ z, const scalar_t* __restrict__ h,
                                     const acc_t* __restrict__ part_val, const int64_t* __restrict__ part_idx,
                                     int64_t b, int64_t d, int64_t splits, scalar_t* __restrict__ dist2,
                                     int64_t* __restrict__ idx) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= b) return;
  acc_t v = inf_of<acc_t>();
  int64_t j = kNoIndex;
  for (int64_t s = 0; s < splits; ++s) {
    const acc_t sv = part_val[s * b + i];
    if (sv < v) {
      v = sv;
      j = part_idx[s * b + i];
    }
  }
  // Every row excluded (M = 1 and it is z's own): fall back to row 0, as the reference does.
  if (j == kNoIndex) j = 0;
  idx[i] = j;
  dist2[i] = static_cast<scalar_t>(sq_dist(z + i * d, h + j * d, d));
}

template <typename scalar_t>
__global__ void nn_ref_backward_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ z,
                                       const scalar_t* __restrict__ h, const int64_t* __restrict__ idx,
                                       int64_t m, int64_t d, int64_t total, scalar_t* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t i = e / d, k = e % d;
    const int64_t j = idx[i];
    CUDA_KERNEL_ASSERT(j >= 0 && j < m);
    out[e] = nn_ref_grad(grad[i], z[e], h[j * d + k]);
  }
}

std::tuple<at::Tensor, at::Tensor> nn_ref_cuda(const at::Tensor& z_in, const at::Tensor& h_in,
                                               const std::optional<at::Tensor>& exclude_in) {
  check_nn_ref(z_in, h_in, exclude_in);
  const c10::cuda::CUDAGuard guard(z_in.device());
  const at::Tensor z = z_in.contiguous();
  const at::Tensor h = h_in.contiguous();
  const int64_t b = z.size(0), m = h.size(0), d = z.size(1);
  const int64_t* ex = nullptr;
  at::Tensor exclude;
  if (exclude_in.has_value()) {
    exclude = exclude_in->contiguous();
    ex = exclude.const_data_ptr<int64_t>();
  }

  at::Tensor dist2 = at::empty({b}, z.options());
  at::Tensor idx = at::empty({b}, z.options().dtype(at::kLong));
  if (b == 0) return {dist2, idx};

  // Split H_ref only as far as needed to give every SM a couple of blocks: each split costs a
  // B-length partial row and a step of the merge.
  const int64_t z_tiles = (b + kTileZ - 1) / kTileZ;
  const int64_t h_tiles = (m + kTileH - 1) / kTileH;
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t want = (static_cast<int64_t>(sms) * kBlocksPerSm + z_tiles - 1) / z_tiles;
  const int64_t wanted_splits = std::clamp<int64_t>(want, 1, h_tiles);
  const int64_t tiles_per_split = (h_tiles + wanted_splits - 1) / wanted_splits;
  const int64_t splits = (h_tiles + tiles_per_split - 1) / tiles_per_split;  // none left empty
  TORCH_CHECK(splits <= 65535, "nn_ref (CUDA): internal error, too many splits");

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(), "nn_ref_cuda", [&] {
    // Half inputs search in float: half accumulators are far too coarse for an argmin.
    using acc_t = at::opmath_type<scalar_t>;
    const auto acc_dtype = std::is_same_v<acc_t, double> ? at::kDouble : at::kFloat;
    at::Tensor part_val = at::empty({splits, b}, z.options().dtype(acc_dtype));
    at::Tensor part_idx = at::empty({splits, b}, z.options().dtype(at::kLong));
    const dim3 grid(static_cast<unsigned>(z_tiles), static_cast<unsigned>(splits));
    launch(nn_ref_search_kernel<scalar_t, acc_t>, grid, dim3(kThreads), z.const_data_ptr<scalar_t>(),
           h.const_data_ptr<scalar_t>(), ex, b, m, d, tiles_per_split, part_val.mutable_data_ptr<acc_t>(),
           part_idx.mutable_data_ptr<int64_t>());
    constexpr int kFinishThreads = 128;
    launch(nn_ref_finish_kernel<scalar_t, acc_t>, dim3(blocks_for(b, kFinishThreads)), dim3(kFinishThreads),
           z.const_data_ptr<scalar_t>(), h.const_data_ptr<scalar_t>(), part_val.const_data_ptr<acc_t>(),
           part_idx.const_data_ptr<int64_t>(), b, d, splits, dist2.mutable_data_ptr<scalar_t>(),
           idx.mutable_data_ptr<int64_t>());
  });
  return {dist2, idx};
}

at::Tensor nn_ref_backward_cuda(const at::Tensor& grad_in, const at::Tensor& z_in, const at::Tensor& h_in,
                                const at::Tensor& idx_in) {
  check_nn_ref_backward(grad_in, z_in, h_in, idx_in);
  const c10::cuda::CUDAGuard guard(z_in.device());
  const at::Tensor z = z_in.contiguous();
  // Autograd may hand in a broadcast (stride-0) or differently typed gradient.
  const at::Tensor g = grad_in.to(z.scalar_type()).contiguous();
  const at::Tensor h = h_in.contiguous();
  const at::Tensor idx = idx_in.contiguous();
  const int64_t b = z.size(0), d = z.size(1), m = h.size(0);
  at::Tensor out = at::empty({b, d}, z.options());
  const int64_t total = b * d;
  if (total == 0) return out;

  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const unsigned blocks = std::min<unsigned>(blocks_for(total), static_cast<unsigned>(sms) * 32);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(), "nn_ref_backward_cuda", [&] {
    launch(nn_ref_backward_kernel<scalar_t>, dim3(blocks), dim3(kThreads), g.const_data_ptr<scalar_t>(),
           z.const_data_ptr<scalar_t>(), h.const_data_ptr<scalar_t>(), idx.const_data_ptr<int64_t>(), m, d, total,
           out.mutable_data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CUDA, m) {
  m.impl("nn_ref", &nn_ref_cuda);
  m.impl("nn_ref_backward", &nn_ref_backward_cuda);
}

}  // namespace cae_fast
