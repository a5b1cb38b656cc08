// Per-element math shared by the CPU (.cpp) and CUDA (.cu) kernels, so the CPU tests exercise
// exactly the formulas the GPU runs.
#pragma once

#include <cmath>
#include <type_traits>

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

// The per-element step of pcc_mse, the one expression both devices run: the values shifted by
// the pivot (px, py), the raw difference x - y for the MSE, and their five products, added in the
// accumulator type A. xv, yv, px, py are already in A (moment_value).
template <typename A>
CAE_HD void moment_terms_add(A xv, A yv, A px, A py, A& sx, A& sy, A& sxx, A& syy, A& sxy, A& sdd) {
  const A dx = xv - px, dy = yv - py, d = xv - yv;
  sx += dx;
  sy += dy;
  sxx += dx * dx;
  syy += dy * dy;
  sxy += dx * dy;
  sdd += d * d;
}

// Precision: float64 input is summed in double throughout. Any other input is read as float
// (moment_value) and summed in float over blocks of at most kMomentBlock elements per accumulator
// (error ~1e-7 relative, the pivot shift keeps terms small), each block then flushed into the
// double Moments (moments_flush). This halves the arithmetic of an all-double loop, which bounds
// the CPU kernel, and spares the GPU's FP64 units.
constexpr int kMomentBlock = 16;

template <typename T>
using moment_acc_t = typename std::conditional<std::is_same<T, double>::value, double, float>::type;

// A stored value in the accumulator type A: exact, since Half/BFloat16/float all fit a float.
template <typename A, typename T>
CAE_HD A moment_value(T v) {
  return static_cast<A>(to_double(v));
}

// One element straight into the double Moments: float64 input on the CPU, and on both devices the
// tail after the last full block.
CAE_HD void moments_add(Moments& m, double xv, double yv, double px, double py) {
  m.n += 1.0;
  moment_terms_add(xv, yv, px, py, m.sx, m.sy, m.sxx, m.syy, m.sxy, m.sdd);
}

// Adds a block's sums b*, in the accumulator type A, into double sums s* (the CPU keeps these per
// lane, in arrays, so the flush vectorises).
template <typename A>
CAE_HD void moment_sums_flush(double& sx, double& sy, double& sxx, double& syy, double& sxy, double& sdd,
                              A bx, A by, A bxx, A byy, A bxy, A bdd) {
  sx += bx; sy += by; sxx += bxx; syy += byy; sxy += bxy; sdd += bdd;
}

// The same flush into a Moments, for a block of count elements.
template <typename A>
CAE_HD void moments_flush(Moments& m, double count, A bx, A by, A bxx, A byy, A bxy, A bdd) {
  m.n += count;
  moment_sums_flush(m.sx, m.sy, m.sxx, m.syy, m.sxy, m.sdd, bx, by, bxx, byy, bxy, bdd);
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
