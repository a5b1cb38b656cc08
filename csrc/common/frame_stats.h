// Per-window / per-pixel math of the frame_stats op, shared by the CPU and CUDA kernels.
#pragma once

#include "laplacian.h"

namespace cae_fast {

// SSIM as scikit-image computes it by default (structural_similarity with data_range=1):
// a 7x7 uniform window, sample (n-1) covariances, K1 = 0.01, K2 = 0.03, averaged over the
// windows that fit inside the image and then over channels.
constexpr int kSsimWin = 7;
constexpr double kSsimC1 = (0.01 * 1.0) * (0.01 * 1.0);
constexpr double kSsimC2 = (0.03 * 1.0) * (0.03 * 1.0);

// Columns of the [B, kFrameStats] output, in order.
constexpr int kFrameStats = 4;
enum FrameStat : int {
  kStatSsim = 0,      // mean SSIM of x against y
  kStatLapX = 1,      // mean (Laplacian of gray x)^2: the input's detail energy
  kStatLapY = 2,      // the same for y (the reconstruction)
  kStatLapMeanX = 3,  // mean Laplacian of gray x (with kStatLapX gives its variance)
};

// The five raw sums of an SSIM window (or of one row of it).
struct SsimSums {
  double x, y, xx, yy, xy;
};

CAE_HD void ssim_zero(SsimSums& s) { s.x = 0.0; s.y = 0.0; s.xx = 0.0; s.yy = 0.0; s.xy = 0.0; }

CAE_HD void ssim_add_pixel(SsimSums& s, double u, double v) {
  s.x += u; s.y += v; s.xx += u * u; s.yy += v * v; s.xy += u * v;
}

CAE_HD void ssim_merge(SsimSums& a, const SsimSums& b) {
  a.x += b.x; a.y += b.y; a.xx += b.xx; a.yy += b.yy; a.xy += b.xy;
}

// The sums of the kSsimWin pixels from p and q on (one window row). A window's sums are its rows'
// sums added top to bottom: the CPU keeps the row sums and reuses them, the GPU recomputes them,
// and both add the same numbers in the same order.
template <typename T>
CAE_HD SsimSums ssim_row(const T* p, const T* q) {
  SsimSums s;
  ssim_zero(s);
  for (int t = 0; t < kSsimWin; ++t) ssim_add_pixel(s, to_double(p[t]), to_double(q[t]));
  return s;
}

// SSIM of one window from its raw sums over n = 49 pixels.
CAE_HD double ssim_from_sums(const SsimSums& s) {
  constexpr double n = double(kSsimWin * kSsimWin);
  const double ux = s.x / n, uy = s.y / n;
  const double cov = n / (n - 1.0);
  const double vx = cov * (s.xx / n - ux * ux);
  const double vy = cov * (s.yy / n - uy * uy);
  const double vxy = cov * (s.xy / n - ux * uy);
  return ((2.0 * ux * uy + kSsimC1) * (2.0 * vxy + kSsimC2)) /
         ((ux * ux + uy * uy + kSsimC1) * (vx + vy + kSsimC2));
}

}  // namespace cae_fast
