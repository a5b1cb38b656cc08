// Per-pixel math of the patch_detail op, shared by the CPU and CUDA kernels.
#pragma once

#include <type_traits>

#include "moments.h"

namespace cae_fast {

// A stored value (float, double, Half, BFloat16) as double; half types go through float, which
// they convert to on host and device alike.
template <typename T>
CAE_HD double as_double(T v) {
  if constexpr (std::is_same<T, double>::value) {
    return v;
  } else {
    return static_cast<double>(static_cast<float>(v));
  }
}

// The Laplacian of the channel-mean (gray) image at interior pixel (i, j) of one [C, H, W] frame:
// the mean over channels of each channel's 4-neighbour Laplacian (the Laplacian is linear).
template <typename T>
CAE_HD double gray_laplacian_at(const T* img, int64_t c, int64_t h, int64_t w, int64_t i, int64_t j) {
  double s = 0.0;
  for (int64_t ch = 0; ch < c; ++ch) {
    const T* p = img + (ch * h + i) * w + j;
    s += as_double(p[-w]) + as_double(p[w]) + as_double(p[-1]) + as_double(p[1]) - 4.0 * as_double(p[0]);
  }
  return s / double(c);
}

// The rows (or columns) of tile g of size patch that have all four neighbours inside an image of
// extent n: [lo, hi), possibly empty.
CAE_HD void interior_span(int64_t g, int64_t patch, int64_t n, int64_t& lo, int64_t& hi) {
  lo = g * patch < 1 ? 1 : g * patch;
  hi = (g + 1) * patch > n - 1 ? n - 1 : (g + 1) * patch;
}

}  // namespace cae_fast
