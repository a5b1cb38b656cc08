// patch_mse on the GPU: one thread per output tile, summing its patch x patch x C residuals in
// double (common/patch_mse.h, the CPU kernel's tile sum); neighbouring threads read neighbouring
// tiles of the same rows.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/checks.h"
#include "../common/patch_mse.h"
#include "helpers.cuh"

namespace cae_fast {
namespace {

template <typename T, typename O>
__global__ void patch_mse_kernel(const T* __restrict__ x, const T* __restrict__ y, int64_t b, int64_t c,
                                 int64_t h, int64_t w, int64_t patch, int64_t gh, int64_t gw,
                                 O* __restrict__ out) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;  // index into out [B, gh, gw]
  if (t >= b * gh * gw) return;
  const int64_t img = t / (gh * gw), gi = (t / gw) % gh, gj = t % gw, off = img * c * h * w;
  const double s = tile_sq_residual(x + off, y + off, c, h, w, patch, gi, gj);
  out[t] = static_cast<O>(s / double(c * patch * patch));
}

at::Tensor patch_mse_cuda(const at::Tensor& x_in, const at::Tensor& y_in, int64_t patch) {
  check_pair("patch_mse", x_in, y_in, /*image_batch=*/true);
  check_patch("patch_mse", x_in, patch);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t gh = h / patch, gw = w / patch;
  const auto out_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({b, gh, gw}, x.options().dtype(out_dtype));
  const int64_t n = b * gh * gw;
  if (n == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "patch_mse_cuda", [&] {
    using in_t = scalar_t;
    AT_DISPATCH_FLOATING_TYPES(out_dtype, "patch_mse_cuda_out", [&] {
      launch(patch_mse_kernel<in_t, scalar_t>, dim3(blocks_for(n)), dim3(kThreads), x.const_data_ptr<in_t>(),
             y.const_data_ptr<in_t>(), b, c, h, w, patch, gh, gw, out.mutable_data_ptr<scalar_t>());
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CUDA, m) { m.impl("patch_mse", &patch_mse_cuda); }

}  // namespace cae_fast
