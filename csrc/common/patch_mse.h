// The tile sum of the patch_mse op, shared by the CPU and CUDA kernels.
#pragma once

#include "convert.h"

namespace cae_fast {

// Sum of squared residuals x - y over len consecutive values of one row: the one expression both
// devices add up. Four running sums (value j into sum j % 4, the tail into the first), added
// pairwise at the end: one chain of dependent adds made the CPU loop wait on each add (1.3-1.5x
// slower; docs/ops.md, "One expression on both devices").
template <typename T>
CAE_HD double row_sq_residual(const T* __restrict__ x, const T* __restrict__ y, int64_t len) {
  double r0 = 0.0, r1 = 0.0, r2 = 0.0, r3 = 0.0;
  int64_t j = 0;
  for (; j + 4 <= len; j += 4) {
    const double d0 = to_double(x[j]) - to_double(y[j]);
    const double d1 = to_double(x[j + 1]) - to_double(y[j + 1]);
    const double d2 = to_double(x[j + 2]) - to_double(y[j + 2]);
    const double d3 = to_double(x[j + 3]) - to_double(y[j + 3]);
    r0 += d0 * d0;
    r1 += d1 * d1;
    r2 += d2 * d2;
    r3 += d3 * d3;
  }
  for (; j < len; ++j) {
    const double d = to_double(x[j]) - to_double(y[j]);
    r0 += d * d;
  }
  return (r0 + r1) + (r2 + r3);
}

// Sum of squared residuals over tile (gi, gj) of side patch of one [C, H, W] frame pair: channel by
// channel, row by row, each row's patch values summed first (row_sq_residual). The CPU walks rows
// outermost and adds the same row sums in the same order, so both devices give the same double.
template <typename T>
CAE_HD double tile_sq_residual(const T* x, const T* y, int64_t c, int64_t h, int64_t w, int64_t patch,
                               int64_t gi, int64_t gj) {
  double s = 0.0;
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = gi * patch; i < (gi + 1) * patch; ++i) {
      const int64_t row = (ch * h + i) * w + gj * patch;
      s += row_sq_residual(x + row, y + row, patch);
    }
  }
  return s;
}

}  // namespace cae_fast
