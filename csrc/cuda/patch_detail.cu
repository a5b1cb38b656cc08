// patch_detail on the GPU: one thread per (frame, tile, x-or-y), summing its tile's squared gray
// Laplacians in double with the CPU kernel's per-pixel math and order (common/patch_detail.h).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/checks.h"
#include "../common/patch_detail.h"
#include "helpers.cuh"

namespace cae_fast {
namespace {

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
  for (int64_t j = j0; j < j1; ++j) {
    double col = 0.0;
    for (int64_t i = i0; i < i1; ++i) {
      const double l = gray_laplacian_at(src, c, h, w, i, j);
      col += l * l;
    }
    s += col;
  }
  out[t] = static_cast<O>(tile_detail(s, i0, i1, j0, j1));
}

at::Tensor patch_detail_cuda(const at::Tensor& x_in, const at::Tensor& y_in, int64_t patch) {
  check_pair("patch_detail", x_in, y_in, /*image_batch=*/true);
  check_patch("patch_detail", x_in, patch);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t gh = h / patch, gw = w / patch;
  const auto out_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({b, 2, gh, gw}, x.options().dtype(out_dtype));
  const int64_t n = b * 2 * gh * gw;
  if (n == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "patch_detail_cuda", [&] {
    using in_t = scalar_t;
    AT_DISPATCH_FLOATING_TYPES(out_dtype, "patch_detail_cuda_out", [&] {
      launch(patch_detail_kernel<in_t, scalar_t>, dim3(blocks_for(n)), dim3(kThreads), x.const_data_ptr<in_t>(),
             y.const_data_ptr<in_t>(), b, c, h, w, patch, gh, gw, out.mutable_data_ptr<scalar_t>());
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CUDA, m) { m.impl("patch_detail", &patch_detail_cuda); }

}  // namespace cae_fast
