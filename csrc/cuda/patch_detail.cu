// patch_detail on the GPU: one thread per (frame, tile, x-or-y), summing its tile's squared gray
// Laplacians in double with the same per-pixel math as the CPU kernel (common/patch_detail.h).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/patch_detail.h"

namespace cae_fast {
namespace {

constexpr int kThreads = 256;

template <typename T, typename O>
__global__ void patch_detail_kernel(const T* __restrict__ x, const T* __restrict__ y, int64_t b, int64_t c,
                                    int64_t h, int64_t w, int64_t patch, int64_t gh, int64_t gw,
                                    O* __restrict__ out) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;  // index into out [B, 2, gh, gw]
  if (t >= b * 2 * gh * gw) return;
  const int64_t gj = t % gw, gi = (t / gw) % gh, which = (t / (gw * gh)) % 2, img = t / (2 * gh * gw);
  const T* src = (which == 0 ? x : y) + img * c * h * w;
  int64_t i0, i1, j0, j1;
  interior_span(gi, patch, h, i0, i1);
  interior_span(gj, patch, w, j0, j1);
  double s = 0.0;
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t j = j0; j < j1; ++j) {
      const double l = gray_laplacian_at(src, c, h, w, i, j);
      s += l * l;
    }
  }
  const int64_t n = (i1 > i0 && j1 > j0) ? (i1 - i0) * (j1 - j0) : 0;
  out[t] = static_cast<O>(n > 0 ? s / double(n) : 0.0);
}

at::Tensor patch_detail_cuda(const at::Tensor& x_in, const at::Tensor& y_in, int64_t patch) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.sizes() == y_in.sizes(), "patch_detail: x and y must be [B, C, H, W]");
  TORCH_CHECK(patch >= 1 && patch <= x_in.size(2) && patch <= x_in.size(3), "patch_detail: bad patch size");
  TORCH_CHECK(x_in.scalar_type() == y_in.scalar_type(), "patch_detail: x and y dtypes differ");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t gh = h / patch, gw = w / patch;
  const auto out_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({b, 2, gh, gw}, x.options().dtype(out_dtype));
  const int64_t n = b * 2 * gh * gw;
  if (n == 0) return out;
  const auto stream = at::cuda::getCurrentCUDAStream();
  const unsigned blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "patch_detail_cuda", [&] {
    if (out_dtype == at::kDouble) {
      patch_detail_kernel<scalar_t, double><<<blocks, kThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(), b, c, h, w, patch, gh, gw,
          out.mutable_data_ptr<double>());
    } else {
      patch_detail_kernel<scalar_t, float><<<blocks, kThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(), b, c, h, w, patch, gh, gw,
          out.mutable_data_ptr<float>());
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CUDA, m) { m.impl("patch_detail", &patch_detail_cuda); }

}  // namespace cae_fast
