// frame_stats on the GPU: one block per frame. Threads stride over the frame's Laplacian pixels
// and SSIM windows (direct 7x7 sums, served from L1/L2), then one block reduction in double.
// Same per-window math as the CPU kernel (common/frame_stats.h); no atomics, reproducible.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/frame_stats.h"

namespace cae_fast {
namespace {

constexpr int kThreads = 256;

template <typename T>
__device__ __forceinline__ double ld(const T* p, int64_t k) {
  return static_cast<double>(static_cast<float>(p[k]));
}
template <>
__device__ __forceinline__ double ld<double>(const double* p, int64_t k) {
  return p[k];
}

template <typename T>
__device__ double gray_at(const T* p, int64_t c, int64_t hw, int64_t o) {
  double g = 0.0;
  for (int64_t ch = 0; ch < c; ++ch) g += ld(p, ch * hw + o);
  return g / double(c);
}

template <typename T>
__global__ void frame_stats_kernel(const T* __restrict__ x, const T* __restrict__ y, int64_t c, int64_t h,
                                   int64_t w, double* __restrict__ out) {
  const int64_t hw = h * w;
  const T* xb = x + int64_t(blockIdx.x) * c * hw;
  const T* yb = y + int64_t(blockIdx.x) * c * hw;
  double acc[kFrameStats] = {0.0, 0.0, 0.0, 0.0, 0.0};

  const int64_t iw = w - 2, n_int = (h - 2) * (w - 2);
  for (int64_t p = threadIdx.x; p < n_int; p += blockDim.x) {
    const int64_t i = 1 + p / iw, j = 1 + p % iw, o = i * w + j;
    // Gray values of the 5-point stencil, for x and y, then the Laplacian of each and of x - y.
    double sx = 0.0, sy = 0.0;
    const int64_t offs[5] = {o - w, o + w, o - 1, o + 1, o};
    double gxs[5], gys[5];
    for (int k = 0; k < 5; ++k) {
      gxs[k] = gray_at(xb, c, hw, offs[k]);
      gys[k] = gray_at(yb, c, hw, offs[k]);
    }
    sx = gxs[0] + gxs[1] + gxs[2] + gxs[3] - 4.0 * gxs[4];
    sy = gys[0] + gys[1] + gys[2] + gys[3] - 4.0 * gys[4];
    const double sr = sx - sy;
    acc[kStatLapX] += sx * sx;
    acc[kStatLapY] += sy * sy;
    acc[kStatLapMeanX] += sx;
    acc[kStatLapR] += sr * sr;
  }

  const int64_t ow = w - kSsimWin + 1, oh = h - kSsimWin + 1, n_win = ow * oh;
  for (int64_t p = threadIdx.x; p < c * n_win; p += blockDim.x) {
    const int64_t ch = p / n_win, q = p % n_win, i0 = q / ow, j0 = q % ow;
    const T* xc = xb + ch * hw;
    const T* yc = yb + ch * hw;
    double a = 0, b = 0, aa = 0, bb = 0, ab = 0;
    for (int ti = 0; ti < kSsimWin; ++ti) {
      for (int tj = 0; tj < kSsimWin; ++tj) {
        const int64_t o = (i0 + ti) * w + j0 + tj;
        const double u = ld(xc, o), v = ld(yc, o);
        a += u; b += v; aa += u * u; bb += v * v; ab += u * v;
      }
    }
    acc[kStatSsim] += ssim_from_sums(a, b, aa, bb, ab);
  }

  __shared__ double red[kFrameStats][kThreads];
  for (int s = 0; s < kFrameStats; ++s) red[s][threadIdx.x] = acc[s];
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      for (int s = 0; s < kFrameStats; ++s) red[s][threadIdx.x] += red[s][threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    double* o = out + int64_t(blockIdx.x) * kFrameStats;
    // Every channel has the same number of windows, so the mean over channels of per-channel
    // means is the plain mean over all windows.
    o[kStatSsim] = red[kStatSsim][0] / double(c * n_win);
    o[kStatLapX] = red[kStatLapX][0] / double(n_int);
    o[kStatLapY] = red[kStatLapY][0] / double(n_int);
    o[kStatLapMeanX] = red[kStatLapMeanX][0] / double(n_int);
    o[kStatLapR] = red[kStatLapR][0] / double(n_int);
  }
}

at::Tensor frame_stats_cuda(const at::Tensor& x_in, const at::Tensor& y_in) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.sizes() == y_in.sizes(), "frame_stats: x and y must be [B, C, H, W]");
  TORCH_CHECK(x_in.size(2) >= kSsimWin && x_in.size(3) >= kSsimWin, "frame_stats: frames under 7x7");
  TORCH_CHECK(x_in.scalar_type() == y_in.scalar_type(), "frame_stats: x and y dtypes differ");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor out = at::empty({b, kFrameStats}, x.options().dtype(at::kDouble));
  if (b == 0) return out;
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "frame_stats_cuda", [&] {
    frame_stats_kernel<scalar_t><<<static_cast<unsigned>(b), kThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(), c, h, w, out.mutable_data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CUDA, m) { m.impl("frame_stats", &frame_stats_cuda); }

}  // namespace cae_fast
