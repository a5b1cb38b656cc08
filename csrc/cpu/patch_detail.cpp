// patch_detail on the CPU: the detail (mean squared gray Laplacian) of every patch x patch tile of
// the frame and of its reconstruction. One task per (frame, tile row); sums in double.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../common/patch_detail.h"

namespace cae_fast {
namespace {

at::Tensor patch_detail_cpu(const at::Tensor& x_in, const at::Tensor& y_in, int64_t patch) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.sizes() == y_in.sizes(), "patch_detail: x and y must be [B, C, H, W]");
  TORCH_CHECK(patch >= 1 && patch <= x_in.size(2) && patch <= x_in.size(3), "patch_detail: bad patch size");
  TORCH_CHECK(x_in.scalar_type() == y_in.scalar_type(), "patch_detail: x and y dtypes differ");
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t gh = h / patch, gw = w / patch;  // a remainder strip is left out, as in patch_mse
  const auto out_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({b, 2, gh, gw}, x.options().dtype(out_dtype));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "patch_detail_cpu", [&] {
    using in_t = scalar_t;
    const in_t* xp = x.const_data_ptr<in_t>();
    const in_t* yp = y.const_data_ptr<in_t>();
    AT_DISPATCH_FLOATING_TYPES(out_dtype, "patch_detail_cpu_out", [&] {
      using out_t = scalar_t;
      out_t* op = out.mutable_data_ptr<out_t>();
      at::parallel_for(0, b * gh, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t img = t / gh, gi = t % gh;
          const in_t* xi = xp + img * c * h * w;
          const in_t* yi = yp + img * c * h * w;
          int64_t i0, i1;
          interior_span(gi, patch, h, i0, i1);
          for (int64_t gj = 0; gj < gw; ++gj) {
            int64_t j0, j1;
            interior_span(gj, patch, w, j0, j1);
            double sx = 0.0, sy = 0.0;
            for (int64_t i = i0; i < i1; ++i) {
              for (int64_t j = j0; j < j1; ++j) {
                const double lx = gray_laplacian_at(xi, c, h, w, i, j);
                const double ly = gray_laplacian_at(yi, c, h, w, i, j);
                sx += lx * lx;
                sy += ly * ly;
              }
            }
            const int64_t n = (i1 > i0 && j1 > j0) ? (i1 - i0) * (j1 - j0) : 0;
            const double inv = n > 0 ? 1.0 / double(n) : 0.0;
            op[((img * 2 + 0) * gh + gi) * gw + gj] = static_cast<out_t>(sx * inv);
            op[((img * 2 + 1) * gh + gi) * gw + gj] = static_cast<out_t>(sy * inv);
          }
        }
      });
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CPU, m) { m.impl("patch_detail", &patch_detail_cpu); }

}  // namespace cae_fast
