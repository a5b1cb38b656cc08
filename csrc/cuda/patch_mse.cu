// patch_mse on the GPU: one thread per output tile, summing its patch x patch x C residuals in
// double; neighbouring threads read neighbouring tiles of the same rows, so loads coalesce per row.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

namespace cae_fast {
namespace {

constexpr int kThreads = 256;

template <typename T, typename O>
__global__ void patch_mse_kernel(const T* __restrict__ x, const T* __restrict__ y, int64_t b, int64_t c,
                                 int64_t h, int64_t w, int64_t patch, int64_t gh, int64_t gw,
                                 O* __restrict__ out) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= b * gh * gw) return;
  const int64_t img = t / (gh * gw), gi = (t / gw) % gh, gj = t % gw;
  double s = 0.0;
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = gi * patch; i < (gi + 1) * patch; ++i) {
      const int64_t row = ((img * c + ch) * h + i) * w;
      for (int64_t j = gj * patch; j < (gj + 1) * patch; ++j) {
        const double d = static_cast<double>(static_cast<float>(x[row + j])) -
                         static_cast<double>(static_cast<float>(y[row + j]));
        s += d * d;
      }
    }
  }
  out[t] = static_cast<O>(s / double(c * patch * patch));
}

at::Tensor patch_mse_cuda(const at::Tensor& x_in, const at::Tensor& y_in, int64_t patch) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.sizes() == y_in.sizes(), "patch_mse: x and y must be [B, C, H, W]");
  TORCH_CHECK(patch >= 1 && patch <= x_in.size(2) && patch <= x_in.size(3), "patch_mse: bad patch size");
  TORCH_CHECK(x_in.scalar_type() == y_in.scalar_type(), "patch_mse: x and y dtypes differ");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t gh = h / patch, gw = w / patch;
  const auto out_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({b, gh, gw}, x.options().dtype(out_dtype));
  const int64_t n = b * gh * gw;
  if (n == 0) return out;
  const auto stream = at::cuda::getCurrentCUDAStream();
  const unsigned blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "patch_mse_cuda", [&] {
    if (out_dtype == at::kDouble) {
      patch_mse_kernel<scalar_t, double><<<blocks, kThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(), b, c, h, w, patch, gh, gw,
          out.mutable_data_ptr<double>());
    } else {
      patch_mse_kernel<scalar_t, float><<<blocks, kThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(), b, c, h, w, patch, gh, gw,
          out.mutable_data_ptr<float>());
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CUDA, m) { m.impl("patch_mse", &patch_mse_cuda); }

}  // namespace cae_fast
