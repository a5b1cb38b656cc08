// patch_mse on the CPU: mean squared residual of every patch x patch tile (all channels), the
// local error map the per-location "local" score is built from. One task per (frame, tile row).
// The row sums are common/patch_mse.h's, added in tile_sq_residual's order as on the GPU, but rows
// are walked outermost so each image row is read once, left to right (tile by tile was slower:
// docs/ops.md, "One expression on both devices").
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "../common/checks.h"
#include "../common/patch_mse.h"

namespace cae_fast {
namespace {

at::Tensor patch_mse_cpu(const at::Tensor& x_in, const at::Tensor& y_in, int64_t patch) {
  check_pair("patch_mse", x_in, y_in, /*image_batch=*/true);
  check_patch("patch_mse", x_in, patch);
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t gh = h / patch, gw = w / patch;  // a remainder strip is left out, as avg_pool2d does
  const auto out_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({b, gh, gw}, x.options().dtype(out_dtype));
  const double n = double(c * patch * patch);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "patch_mse_cpu", [&] {
    using in_t = scalar_t;
    const in_t* xp = x.const_data_ptr<in_t>();
    const in_t* yp = y.const_data_ptr<in_t>();
    AT_DISPATCH_FLOATING_TYPES(out_dtype, "patch_mse_cpu_out", [&] {
      using out_t = scalar_t;
      out_t* op = out.mutable_data_ptr<out_t>();
      at::parallel_for(0, b * gh, 1, [&](int64_t t0, int64_t t1) {
        std::vector<double> acc(static_cast<size_t>(gw));
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t img = t / gh, gi = t % gh;
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t ch = 0; ch < c; ++ch) {
            for (int64_t i = gi * patch; i < (gi + 1) * patch; ++i) {
              const int64_t row = ((img * c + ch) * h + i) * w;
              for (int64_t gj = 0; gj < gw; ++gj) {
                acc[gj] += row_sq_residual(xp + row + gj * patch, yp + row + gj * patch, patch);
              }
            }
          }
          for (int64_t gj = 0; gj < gw; ++gj) op[t * gw + gj] = static_cast<out_t>(acc[gj] / n);
        }
      });
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CPU, m) { m.impl("patch_mse", &patch_mse_cpu); }

}  // namespace cae_fast
