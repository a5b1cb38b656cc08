// frame_stats on the CPU: SSIM and Laplacian detail energies of each frame and its
// reconstruction, one frame per task. Each pixel's channel sum is computed once for the stencil,
// and each SSIM window row's sums once for the seven windows that share it (7 adds per window
// instead of 49); the arithmetic is common/frame_stats.h's, as on the GPU. Sums in double.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "../common/checks.h"
#include "../common/frame_stats.h"

namespace cae_fast {
namespace {

template <typename T>
void one_frame(const T* xp, const T* yp, int64_t c, int64_t h, int64_t w, double* out) {
  const int64_t hw = h * w;
  std::vector<double> sx(static_cast<size_t>(hw)), sy(static_cast<size_t>(hw));
  channel_sum_row(xp, c, hw, 0, hw, sx.data());
  channel_sum_row(yp, c, hw, 0, hw, sy.data());
  const double inv_c = 1.0 / double(c);
  double lx = 0.0, ly = 0.0, lmx = 0.0;
  for (int64_t i = 1; i + 1 < h; ++i) {
    for (int64_t j = 1; j + 1 < w; ++j) {
      const double ax = gray_laplacian_sums(sx.data(), w, i, j, inv_c);
      const double ay = gray_laplacian_sums(sy.data(), w, i, j, inv_c);
      lx += ax * ax;
      ly += ay * ay;
      lmx += ax;
    }
  }
  const double n_int = double((h - 2) * (w - 2));
  out[kStatLapX] = lx / n_int;
  out[kStatLapY] = ly / n_int;
  out[kStatLapMeanX] = lmx / n_int;

  // SSIM: the sums of every window row (one plane per sum, so the loops vectorise), then each
  // window's rows added top to bottom.
  const int64_t ow = w - kSsimWin + 1, oh = h - kSsimWin + 1, n_rows = h * ow;
  std::vector<double> xd(static_cast<size_t>(hw)), yd(static_cast<size_t>(hw));
  std::vector<double> planes(static_cast<size_t>(5 * n_rows));
  double* rx = planes.data();
  double* ry = rx + n_rows;
  double* rxx = ry + n_rows;
  double* ryy = rxx + n_rows;
  double* rxy = ryy + n_rows;
  double total = 0.0;
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t k = 0; k < hw; ++k) {
      xd[k] = to_double(xp[ch * hw + k]);
      yd[k] = to_double(yp[ch * hw + k]);
    }
    for (int64_t i = 0; i < h; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        const SsimSums r = ssim_row(xd.data() + i * w + j, yd.data() + i * w + j);
        const int64_t o = i * ow + j;
        rx[o] = r.x; ry[o] = r.y; rxx[o] = r.xx; ryy[o] = r.yy; rxy[o] = r.xy;
      }
    }
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        SsimSums s;
        ssim_zero(s);
        for (int t = 0; t < kSsimWin; ++t) {
          const int64_t o = (i + t) * ow + j;
          ssim_merge(s, SsimSums{rx[o], ry[o], rxx[o], ryy[o], rxy[o]});
        }
        total += ssim_from_sums(s);
      }
    }
  }
  // Every channel has the same number of windows: the mean over all of them is the mean over
  // channels of the per-channel means.
  out[kStatSsim] = total / double(c * oh * ow);
}

at::Tensor frame_stats_cpu(const at::Tensor& x_in, const at::Tensor& y_in) {
  check_pair("frame_stats", x_in, y_in, /*image_batch=*/true);
  check_min_side("frame_stats", x_in, kSsimWin);
  const at::Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor out = at::empty({b, kFrameStats}, x.options().dtype(at::kDouble));
  double* op = out.mutable_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "frame_stats_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    const int64_t per = c * h * w;
    at::parallel_for(0, b, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) one_frame(xp + i * per, yp + i * per, c, h, w, op + i * kFrameStats);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CPU, m) { m.impl("frame_stats", &frame_stats_cpu); }

}  // namespace cae_fast
