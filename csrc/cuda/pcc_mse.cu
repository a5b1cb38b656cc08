// Per-image PCC and MSE on the GPU: one read of x and y, the CPU kernel's expression and precision
// (common/moments.h): each thread is one accumulator, summing blocks of kMomentBlock elements in
// the input's accumulator type (float unless the input is float64) and flushing each into double.
//
// Grid = (B, chunks): a batch of a few huge images and a batch of many small ones both fill the
// GPU. Each block reduces one chunk of one image to a partial Moments; a second tiny kernel merges
// an image's partials in chunk order. No atomics anywhere, so results are bitwise reproducible
// run to run on the same device.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>

#include "../common/checks.h"
#include "../common/moments.h"
#include "helpers.cuh"

namespace cae_fast {
namespace {

// Elements each thread should see per chunk at least: below this, the partial-merge pass and the
// per-block reduction cost more than the parallelism gained by splitting an image further.
constexpr int64_t kMinPerThread = 16;
// Enough resident blocks per SM to hide DRAM latency for a streaming, FP64-heavy reduction.
constexpr int kBlocksPerSm = 4;
constexpr int kUnroll = 4;

template <typename out_t>
__device__ __forceinline__ void write_result(const Moments& m, out_t* pcc, out_t* mse, int64_t img) {
  pcc[img] = static_cast<out_t>(moments_pcc(m));
  mse[img] = static_cast<out_t>(moments_mse(m));
}

// blockIdx.x = image, blockIdx.y = chunk of that image. With a single chunk per image the block
// writes the final result itself and the merge kernel is skipped.
template <typename scalar_t, typename out_t>
__global__ void __launch_bounds__(kThreads) pcc_mse_chunks_kernel(
    const scalar_t* __restrict__ x, const scalar_t* __restrict__ y, int64_t n, int64_t chunk_len,
    Moments* __restrict__ partials, out_t* __restrict__ pcc, out_t* __restrict__ mse) {
  const int64_t img = blockIdx.x;
  const int64_t chunks = gridDim.y;
  const scalar_t* xi = x + img * n;
  const scalar_t* yi = y + img * n;
  // Every chunk of an image shifts by the image's first element, so partials merge by addition.
  using acc_t = moment_acc_t<scalar_t>;
  const acc_t px = moment_value<acc_t>(xi[0]);
  const acc_t py = moment_value<acc_t>(yi[0]);
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk_len;
  const int64_t end = begin + chunk_len < n ? begin + chunk_len : n;

  Moments m;
  moments_zero(m);
  int64_t k = begin + threadIdx.x;
  // A block is kMomentBlock elements of this thread: kBlockSteps steps of kUnroll loads each, all
  // issued before the first use (one outstanding load per thread cannot keep HBM busy).
  static_assert(kMomentBlock % kUnroll == 0, "a block is whole unrolled steps");
  constexpr int kBlockSteps = kMomentBlock / kUnroll;
  constexpr int64_t kBlockSpan = int64_t{kMomentBlock} * kThreads;
  for (; k + kBlockSpan - kThreads < end; k += kBlockSpan) {
    acc_t sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, sdd = 0;
#pragma unroll
    for (int s = 0; s < kBlockSteps; ++s) {
      const int64_t ks = k + int64_t{s} * kUnroll * kThreads;
      scalar_t xr[kUnroll], yr[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        xr[u] = xi[ks + u * kThreads];
        yr[u] = yi[ks + u * kThreads];
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        moment_terms_add(moment_value<acc_t>(xr[u]), moment_value<acc_t>(yr[u]), px, py, sx, sy, sxx, syy,
                         sxy, sdd);
      }
    }
    moments_flush(m, kMomentBlock, sx, sy, sxx, syy, sxy, sdd);
  }
  // The tail, fewer than kMomentBlock elements of this thread, straight into double as on the CPU.
  for (; k < end; k += kThreads) {
    moments_add(m, moment_value<acc_t>(xi[k]), moment_value<acc_t>(yi[k]), px, py);
  }
  Moments zero;
  moments_zero(zero);
  m = block_reduce(m, zero, [](Moments& a, const Moments& b) { moments_merge(a, b); });
  if (threadIdx.x == 0) {
    if (chunks == 1) {
      write_result(m, pcc, mse, img);
    } else {
      partials[img * chunks + blockIdx.y] = m;
    }
  }
}

// One thread per image, merging its partials in chunk order: a fixed summation order, and the
// number of chunks per image is small by construction (see pick_chunks).
template <typename out_t>
__global__ void pcc_mse_merge_kernel(const Moments* __restrict__ partials, int64_t b, int64_t chunks,
                                     out_t* __restrict__ pcc, out_t* __restrict__ mse) {
  const int64_t img = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (img >= b) return;
  const Moments* p = partials + img * chunks;
  Moments m = p[0];
  for (int64_t c = 1; c < chunks; ++c) moments_merge(m, p[c]);
  write_result(m, pcc, mse, img);
}

// Split each image only as far as needed to give every SM a few blocks, and never into chunks so
// small that a thread has almost nothing to accumulate.
int64_t pick_chunks(int64_t b, int64_t n) {
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t want_blocks = static_cast<int64_t>(sms) * kBlocksPerSm;
  const int64_t by_occupancy = (want_blocks + b - 1) / b;
  const int64_t by_size = std::max<int64_t>(1, n / (kThreads * kMinPerThread));
  // Well under gridDim.y's 65535 limit, and keeps the serial merge pass trivially short.
  return std::max<int64_t>(1, std::min<int64_t>({by_occupancy, by_size, int64_t{4096}}));
}

std::tuple<at::Tensor, at::Tensor> pcc_mse_cuda(const at::Tensor& x_in, const at::Tensor& y_in) {
  check_pair("pcc_mse", x_in, y_in, /*image_batch=*/false);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor y = y_in.contiguous();
  const int64_t b = x.size(0);
  const int64_t n = x.numel() / b;

  const auto out_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor pcc = at::empty({b}, x.options().dtype(out_dtype));
  at::Tensor mse = at::empty({b}, x.options().dtype(out_dtype));

  const int64_t wanted = pick_chunks(b, n);
  const int64_t chunk_len = (n + wanted - 1) / wanted;
  // Recount from the rounded-up length so no block gets an empty chunk.
  const int64_t chunks = (n + chunk_len - 1) / chunk_len;
  at::Tensor partials;
  Moments* pp = nullptr;
  if (chunks > 1) {
    const int64_t bytes = b * chunks * static_cast<int64_t>(sizeof(Moments));
    partials = at::empty({bytes}, x.options().dtype(at::kByte));
    pp = reinterpret_cast<Moments*>(partials.mutable_data_ptr());
  }
  const dim3 grid(static_cast<unsigned>(b), static_cast<unsigned>(chunks));

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "pcc_mse_cuda", [&] {
    using out_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    out_t* pcc_p = pcc.mutable_data_ptr<out_t>();
    out_t* mse_p = mse.mutable_data_ptr<out_t>();
    launch(pcc_mse_chunks_kernel<scalar_t, out_t>, grid, dim3(kThreads), x.const_data_ptr<scalar_t>(),
           y.const_data_ptr<scalar_t>(), n, chunk_len, pp, pcc_p, mse_p);
    if (chunks > 1) {
      constexpr int kMergeThreads = 128;
      launch(pcc_mse_merge_kernel<out_t>, dim3(blocks_for(b, kMergeThreads)), dim3(kMergeThreads),
             static_cast<const Moments*>(pp), b, chunks, pcc_p, mse_p);
    }
  });
  return {pcc, mse};
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CUDA, m) { m.impl("pcc_mse", &pcc_mse_cuda); }

}  // namespace cae_fast
