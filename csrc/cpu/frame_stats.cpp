// frame_stats on the CPU: SSIM and Laplacian detail energies of each frame and its
// reconstruction, one frame per task. SSIM windows use separable box sums (7 adds per pass instead
// of 49 per window), in double.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "../common/frame_stats.h"

namespace cae_fast {
namespace {

template <typename T>
void one_frame(const T* xp, const T* yp, int64_t c, int64_t h, int64_t w, double* out) {
  const int64_t hw = h * w;
  std::vector<double> x(static_cast<size_t>(c * hw)), y(static_cast<size_t>(c * hw));
  for (int64_t k = 0; k < c * hw; ++k) {
    x[k] = static_cast<double>(xp[k]);
    y[k] = static_cast<double>(yp[k]);
  }

  // Laplacian statistics on the gray (channel-mean) planes, interior pixels only.
  std::vector<double> gx(static_cast<size_t>(hw), 0.0), gy(static_cast<size_t>(hw), 0.0),
      gr(static_cast<size_t>(hw));
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t k = 0; k < hw; ++k) {
      gx[k] += x[ch * hw + k];
      gy[k] += y[ch * hw + k];
    }
  }
  for (int64_t k = 0; k < hw; ++k) {
    gx[k] /= double(c);
    gy[k] /= double(c);
    gr[k] = gx[k] - gy[k];
  }
  double lx = 0.0, ly = 0.0, lmx = 0.0, lr = 0.0;
  for (int64_t i = 1; i + 1 < h; ++i) {
    for (int64_t j = 1; j + 1 < w; ++j) {
      const double ax = laplacian_at(gx.data(), w, i, j);
      const double ay = laplacian_at(gy.data(), w, i, j);
      const double ar = laplacian_at(gr.data(), w, i, j);
      lx += ax * ax;
      ly += ay * ay;
      lmx += ax;
      lr += ar * ar;
    }
  }
  const double n_int = double((h - 2) * (w - 2));
  out[kStatLapX] = lx / n_int;
  out[kStatLapY] = ly / n_int;
  out[kStatLapMeanX] = lmx / n_int;
  out[kStatLapR] = lr / n_int;

  // SSIM: horizontal 7-sums of the five window quantities, then vertical 7-sums per window.
  constexpr int kw = kSsimWin;
  const int64_t ow = w - kw + 1, oh = h - kw + 1;
  std::vector<double> hs(static_cast<size_t>(5 * h * ow));
  double* hsx = hs.data();
  double* hsy = hsx + h * ow;
  double* hsxx = hsy + h * ow;
  double* hsyy = hsxx + h * ow;
  double* hsxy = hsyy + h * ow;
  double ssim_total = 0.0;
  for (int64_t ch = 0; ch < c; ++ch) {
    const double* xc = x.data() + ch * hw;
    const double* yc = y.data() + ch * hw;
    for (int64_t i = 0; i < h; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        double a = 0, b = 0, aa = 0, bb = 0, ab = 0;
        for (int t = 0; t < kw; ++t) {
          const double u = xc[i * w + j + t], v = yc[i * w + j + t];
          a += u; b += v; aa += u * u; bb += v * v; ab += u * v;
        }
        const int64_t o = i * ow + j;
        hsx[o] = a; hsy[o] = b; hsxx[o] = aa; hsyy[o] = bb; hsxy[o] = ab;
      }
    }
    double acc = 0.0;
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        double a = 0, b = 0, aa = 0, bb = 0, ab = 0;
        for (int t = 0; t < kw; ++t) {
          const int64_t o = (i + t) * ow + j;
          a += hsx[o]; b += hsy[o]; aa += hsxx[o]; bb += hsyy[o]; ab += hsxy[o];
        }
        acc += ssim_from_sums(a, b, aa, bb, ab);
      }
    }
    ssim_total += acc / double(oh * ow);
  }
  out[kStatSsim] = ssim_total / double(c);
}

at::Tensor frame_stats_cpu(const at::Tensor& x_in, const at::Tensor& y_in) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.sizes() == y_in.sizes(), "frame_stats: x and y must be [B, C, H, W]");
  TORCH_CHECK(x_in.size(2) >= kSsimWin && x_in.size(3) >= kSsimWin, "frame_stats: frames under 7x7");
  TORCH_CHECK(x_in.scalar_type() == y_in.scalar_type(), "frame_stats: x and y dtypes differ");
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
