// Per-window / per-pixel math of the frame_stats op, shared by the CPU and CUDA kernels.
#pragma once

#include "moments.h"

namespace cae_fast {

// SSIM as scikit-image computes it by default (structural_similarity with data_range=1):
// a 7x7 uniform window, sample (n-1) covariances, K1 = 0.01, K2 = 0.03, averaged over the
// windows that fit inside the image and then over channels.
constexpr int kSsimWin = 7;
constexpr double kSsimC1 = (0.01 * 1.0) * (0.01 * 1.0);
constexpr double kSsimC2 = (0.03 * 1.0) * (0.03 * 1.0);

// Columns of the [B, kFrameStats] output, in order.
constexpr int kFrameStats = 5;
enum FrameStat : int {
  kStatSsim = 0,      // mean SSIM of x against y
  kStatLapX = 1,      // mean (Laplacian of gray x)^2: the input's detail energy
  kStatLapY = 2,      // the same for y (the reconstruction)
  kStatLapMeanX = 3,  // mean Laplacian of gray x (with kStatLapX gives its variance)
  kStatLapR = 4,      // mean (Laplacian of gray (x - y))^2: detail in the residual
};

// SSIM of one window from its raw sums over n = 49 pixels.
CAE_HD double ssim_from_sums(double sx, double sy, double sxx, double syy, double sxy) {
  constexpr double n = double(kSsimWin * kSsimWin);
  const double ux = sx / n, uy = sy / n;
  const double cov = n / (n - 1.0);
  const double vx = cov * (sxx / n - ux * ux);
  const double vy = cov * (syy / n - uy * uy);
  const double vxy = cov * (sxy / n - ux * uy);
  return ((2.0 * ux * uy + kSsimC1) * (2.0 * vxy + kSsimC2)) /
         ((ux * ux + uy * uy + kSsimC1) * (vx + vy + kSsimC2));
}

// 4-neighbour Laplacian at an interior pixel of a plane with row stride w.
template <typename T>
CAE_HD double laplacian_at(const T* g, int64_t w, int64_t i, int64_t j) {
  const int64_t o = i * w + j;
  return double(g[o - w]) + double(g[o + w]) + double(g[o - 1]) + double(g[o + 1]) - 4.0 * double(g[o]);
}

}  // namespace cae_fast
