// patch_detail on the CPU: the detail (mean squared gray Laplacian) of every patch x patch tile of
// the frame and of its reconstruction. One task per (frame, tile row): the channel sums of the rows
// it needs are computed once into a row buffer, so the stencil runs over contiguous doubles and
// vectorises; squared Laplacians are summed per column, then per tile (common/patch_detail.h, the
// order the GPU adds them in). Sums in double.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../common/checks.h"
#include "../common/patch_detail.h"

namespace cae_fast {
namespace {

// Detail of each tile in tile row gi of one [C, H, W] frame, written to out[0, gw). rows and col
// are scratch: (patch + 2) x w and w doubles.
template <typename in_t, typename out_t>
void tile_row_detail(const in_t* img, int64_t c, int64_t h, int64_t w, int64_t patch, int64_t gi, int64_t gw,
                     double* __restrict__ rows, double* __restrict__ col, out_t* out) {
  int64_t i0, i1;
  interior_span(gi, patch, h, i0, i1);
  const int64_t jend = std::min(w - 1, gw * patch);  // interior columns of the tiles: [1, jend)
  if (i1 <= i0 || jend <= 1) {
    for (int64_t gj = 0; gj < gw; ++gj) out[gj] = out_t(0);
    return;
  }
  const int64_t nrows = i1 - i0 + 2;
  for (int64_t r = 0; r < nrows; ++r) channel_sum_row(img, c, h * w, (i0 - 1 + r) * w, jend + 1, rows + r * w);
  const double inv_c = 1.0 / double(c);
  for (int64_t j = 0; j < jend; ++j) col[j] = 0.0;
  for (int64_t r = 1; r + 1 < nrows; ++r) {
    for (int64_t j = 1; j < jend; ++j) {
      const double l = gray_laplacian_sums(rows, w, r, j, inv_c);
      col[j] += l * l;
    }
  }
  for (int64_t gj = 0; gj < gw; ++gj) {
    int64_t j0, j1;
    interior_span(gj, patch, w, j0, j1);
    double s = 0.0;
    for (int64_t j = j0; j < j1; ++j) s += col[j];
    out[gj] = static_cast<out_t>(tile_detail(s, i0, i1, j0, j1));
  }
}

at::Tensor patch_detail_cpu(const at::Tensor& x_in, const at::Tensor& y_in, int64_t patch) {
  check_pair("patch_detail", x_in, y_in, /*image_batch=*/true);
  check_patch("patch_detail", x_in, patch);
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
        std::vector<double> rows((patch + 2) * w), col(w);
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t img = t / gh, gi = t % gh;
          const int64_t off = img * c * h * w;
          tile_row_detail(xp + off, c, h, w, patch, gi, gw, rows.data(), col.data(),
                          op + ((img * 2 + 0) * gh + gi) * gw);
          tile_row_detail(yp + off, c, h, w, patch, gi, gw, rows.data(), col.data(),
                          op + ((img * 2 + 1) * gh + gi) * gw);
        }
      });
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CPU, m) { m.impl("patch_detail", &patch_detail_cpu); }

}  // namespace cae_fast
