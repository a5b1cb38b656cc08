// frame_stats on the GPU: one block per frame. Threads stride over the frame's Laplacian pixels
// and SSIM windows (window rows recomputed, served from L1/L2), then one block reduction in
// double. The per-pixel and per-window arithmetic is the CPU kernel's (common/frame_stats.h); no
// atomics, reproducible.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/checks.h"
#include "../common/frame_stats.h"
#include "helpers.cuh"

namespace cae_fast {
namespace {

struct FrameSums {
  double v[kFrameStats];
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
    frame_stats_kernel(const T* __restrict__ x, const T* __restrict__ y, int64_t c, int64_t h, int64_t w,
                       double* __restrict__ out) {
  const int64_t hw = h * w;
  const T* xb = x + int64_t(blockIdx.x) * c * hw;
  const T* yb = y + int64_t(blockIdx.x) * c * hw;
  FrameSums acc = {};

  const int64_t iw = w - 2, n_int = (h - 2) * (w - 2);
  for (int64_t p = threadIdx.x; p < n_int; p += blockDim.x) {
    const int64_t i = 1 + p / iw, j = 1 + p % iw;
    const double ax = gray_laplacian_at(xb, c, h, w, i, j);
    const double ay = gray_laplacian_at(yb, c, h, w, i, j);
    acc.v[kStatLapX] += ax * ax;
    acc.v[kStatLapY] += ay * ay;
    acc.v[kStatLapMeanX] += ax;
  }

  const int64_t ow = w - kSsimWin + 1, oh = h - kSsimWin + 1, n_win = ow * oh;
  for (int64_t p = threadIdx.x; p < c * n_win; p += blockDim.x) {
    const int64_t ch = p / n_win, q = p % n_win, i0 = q / ow, j0 = q % ow;
    const T* xc = xb + ch * hw + i0 * w + j0;
    const T* yc = yb + ch * hw + i0 * w + j0;
    SsimSums s;
    ssim_zero(s);
    for (int t = 0; t < kSsimWin; ++t) ssim_merge(s, ssim_row(xc + t * w, yc + t * w));
    acc.v[kStatSsim] += ssim_from_sums(s);
  }

  acc = block_reduce(acc, FrameSums{}, [](FrameSums& a, const FrameSums& b) {
    for (int k = 0; k < kFrameStats; ++k) a.v[k] += b.v[k];
  });
  if (threadIdx.x == 0) {
    double* o = out + int64_t(blockIdx.x) * kFrameStats;
    o[kStatSsim] = acc.v[kStatSsim] / double(c * n_win);
    o[kStatLapX] = acc.v[kStatLapX] / double(n_int);
    o[kStatLapY] = acc.v[kStatLapY] / double(n_int);
    o[kStatLapMeanX] = acc.v[kStatLapMeanX] / double(n_int);
  }
}

at::Tensor frame_stats_cuda(const at::Tensor& x_in, const at::Tensor& y_in) {
  check_pair("frame_stats", x_in, y_in, /*image_batch=*/true);
  check_min_side("frame_stats", x_in, kSsimWin);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor out = at::empty({b, kFrameStats}, x.options().dtype(at::kDouble));
  if (b == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "frame_stats_cuda", [&] {
    launch(frame_stats_kernel<scalar_t>, dim3(static_cast<unsigned>(b)), dim3(kThreads),
           x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(), c, h, w, out.mutable_data_ptr<double>());
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CUDA, m) { m.impl("frame_stats", &frame_stats_cuda); }

}  // namespace cae_fast
