// The tile sum of the patch_mse op, shared by the CPU and CUDA kernels.
#pragma once

#include "convert.h"

namespace cae_fast {

// Sum of squared residuals x - y over len consecutive values of one row: the one expression both
// devices add up.
template <typename T>
CAE_HD double row_sq_residual(const T* __restrict__ x, const T* __restrict__ y, int64_t len) {
  double r = 0.0;
  for (int64_t j = 0; j < len; ++j) {
    const double d = to_double(x[j]) - to_double(y[j]);
    r += d * d;
  }
  return r;
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
