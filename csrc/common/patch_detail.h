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

// The sum over channels at pixel (i, j) of one [C, H, W] frame: the gray value times c.
template <typename T>
CAE_HD double channel_sum_at(const T* img, int64_t c, int64_t h, int64_t w, int64_t i, int64_t j) {
  double s = 0.0;
  for (int64_t ch = 0; ch < c; ++ch) s += as_double(img[(ch * h + i) * w + j]);
  return s;
}

// The 4-neighbour Laplacian of the gray image from channel sums, scaled by inv_c = 1 / c. The CPU
// kernel feeds it from buffered rows of channel sums, the CUDA kernel from direct reads: the same
// arithmetic in the same order, so both give the same value.
CAE_HD double gray_laplacian(double up, double down, double left, double right, double centre,
                             double inv_c) {
  return (up + down + left + right - 4.0 * centre) * inv_c;
}

// gray_laplacian at interior pixel (i, j), reading the frame directly.
template <typename T>
CAE_HD double gray_laplacian_at(const T* img, int64_t c, int64_t h, int64_t w, int64_t i, int64_t j) {
  return gray_laplacian(channel_sum_at(img, c, h, w, i - 1, j), channel_sum_at(img, c, h, w, i + 1, j),
                        channel_sum_at(img, c, h, w, i, j - 1), channel_sum_at(img, c, h, w, i, j + 1),
                        channel_sum_at(img, c, h, w, i, j), 1.0 / double(c));
}

// The rows (or columns) of tile g of size patch that have all four neighbours inside an image of
// extent n: [lo, hi), possibly empty.
CAE_HD void interior_span(int64_t g, int64_t patch, int64_t n, int64_t& lo, int64_t& hi) {
  lo = g * patch < 1 ? 1 : g * patch;
  hi = (g + 1) * patch > n - 1 ? n - 1 : (g + 1) * patch;
}

}  // namespace cae_fast
