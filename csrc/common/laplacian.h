// The gray Laplacian: the one stencil behind frame_stats' and patch_detail's detail columns, on
// the CPU and the GPU. "Gray" is the channel mean; the stencil runs on channel sums and divides by
// the channel count once, at the end, so every kernel rounds the same way.
#pragma once

#include "convert.h"

namespace cae_fast {

// The sum over channels at offset o of one [C, H, W] frame (hw = H * W), in channel order.
template <typename T>
CAE_HD double channel_sum(const T* img, int64_t c, int64_t hw, int64_t o) {
  double s = 0.0;
  for (int64_t ch = 0; ch < c; ++ch) s += to_double(img[ch * hw + o]);
  return s;
}

// channel_sum for the n pixels from offset o on: dst[k] = channel_sum(img, c, hw, o + k), added in
// the same (channel) order, a row at a time so the loop vectorises.
template <typename T>
CAE_HD void channel_sum_row(const T* img, int64_t c, int64_t hw, int64_t o, int64_t n, double* dst) {
  for (int64_t k = 0; k < n; ++k) dst[k] = 0.0;
  for (int64_t ch = 0; ch < c; ++ch) {
    const T* src = img + ch * hw + o;
    for (int64_t k = 0; k < n; ++k) dst[k] += to_double(src[k]);
  }
}

// The 4-neighbour Laplacian of the gray image from the channel sums of the five stencil pixels,
// scaled by inv_c = 1 / C.
CAE_HD double gray_laplacian(double up, double down, double left, double right, double centre,
                             double inv_c) {
  return (up + down + left + right - 4.0 * centre) * inv_c;
}

// gray_laplacian at interior pixel (i, j) of a plane of precomputed channel sums (row stride w):
// the CPU kernels' form, which computes each channel sum once.
CAE_HD double gray_laplacian_sums(const double* sums, int64_t w, int64_t i, int64_t j, double inv_c) {
  const int64_t o = i * w + j;
  return gray_laplacian(sums[o - w], sums[o + w], sums[o - 1], sums[o + 1], sums[o], inv_c);
}

// gray_laplacian at interior pixel (i, j), reading the frame directly: the CUDA kernels' form.
template <typename T>
CAE_HD double gray_laplacian_at(const T* img, int64_t c, int64_t h, int64_t w, int64_t i, int64_t j) {
  const int64_t hw = h * w, o = i * w + j;
  return gray_laplacian(channel_sum(img, c, hw, o - w), channel_sum(img, c, hw, o + w),
                        channel_sum(img, c, hw, o - 1), channel_sum(img, c, hw, o + 1),
                        channel_sum(img, c, hw, o), 1.0 / double(c));
}

// The rows (or columns) of tile g of size patch that have all four neighbours inside an image of
// extent n: [lo, hi), possibly empty.
CAE_HD void interior_span(int64_t g, int64_t patch, int64_t n, int64_t& lo, int64_t& hi) {
  lo = g * patch < 1 ? 1 : g * patch;
  hi = (g + 1) * patch > n - 1 ? n - 1 : (g + 1) * patch;
}

}  // namespace cae_fast
