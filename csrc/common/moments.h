// Per-element math shared by the CPU (.cpp) and CUDA (.cu) kernels, so the CPU tests exercise
// exactly the formulas the GPU runs.
#pragma once

#include <cmath>

#include "convert.h"

namespace cae_fast {

// Raw sums of one image pair, shifted by a per-image pivot (px, py). The shift is what keeps a
// one-pass, single-read reduction accurate: for a nearly constant image (mean 0.9, std 1e-3) the
// unshifted sum of squares cancels catastrophically, the shifted one does not. Sums are in double;
// partial sums from chunks of the same image (same pivot) merge by plain addition.
struct Moments {
  double n, sx, sy, sxx, syy, sxy, sdd;
};

CAE_HD void moments_zero(Moments& m) {
  m.n = 0.0; m.sx = 0.0; m.sy = 0.0; m.sxx = 0.0; m.syy = 0.0; m.sxy = 0.0; m.sdd = 0.0;
}

// dx, dy: the pivot-shifted values; d: the raw difference x - y (for the MSE).
CAE_HD void moments_add(Moments& m, double dx, double dy, double d) {
  m.n += 1.0;
  m.sdd += d * d;
  m.sx += dx;
  m.sy += dy;
  m.sxx += dx * dx;
  m.syy += dy * dy;
  m.sxy += dx * dy;
}

CAE_HD void moments_merge(Moments& a, const Moments& b) {
  a.n += b.n; a.sx += b.sx; a.sy += b.sy;
  a.sxx += b.sxx; a.syy += b.syy; a.sxy += b.sxy; a.sdd += b.sdd;
}

// PCC of a constant image (zero variance in x or y) is undefined; we define it as 0 ("no linear
// agreement") so that no NaN reaches the median filter, and blank frames score as anomalous.
constexpr double kPccOfConstant = 0.0;

CAE_HD double moments_pcc(const Moments& m) {
  const double vx = m.sxx - m.sx * m.sx / m.n;
  const double vy = m.syy - m.sy * m.sy / m.n;
  if (!(vx > 0.0) || !(vy > 0.0)) return kPccOfConstant;
  const double r = (m.sxy - m.sx * m.sy / m.n) / sqrt(vx * vy);
  return r > 1.0 ? 1.0 : (r < -1.0 ? -1.0 : r);
}

CAE_HD double moments_mse(const Moments& m) { return m.sdd / m.n; }

// Squared L2 distance between two D-vectors, accumulated in double; used to report the exact
// distance of the chosen neighbour, whatever fast path found it.
template <typename T>
CAE_HD double sq_dist(const T* a, const T* b, int64_t d) {
  double acc = 0.0;
  for (int64_t k = 0; k < d; ++k) {
    const double t = to_double(a[k]) - to_double(b[k]);
    acc += t * t;
  }
  return acc;
}

}  // namespace cae_fast
