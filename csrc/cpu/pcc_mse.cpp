// Per-image PCC and MSE on the CPU: one read of x and y, double accumulators, parallel over
// (image, chunk) pairs so one huge image and many small ones both use every core.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "../common/checks.h"
#include "../common/moments.h"

namespace cae_fast {
namespace {

// Elements per task: large enough to amortise scheduling, small enough that a batch of a few
// images still splits across cores.
constexpr int64_t kChunk = 1 << 15;
// Lanes and block length of the float path. Inside a block of kLanes * kBlock elements the
// pivot-shifted terms are summed in float (16 terms per lane: error ~1e-7 relative, and the
// shift keeps the terms small); every block is then flushed into double accumulators. This
// halves the arithmetic of an all-double loop, which is what bounds the kernel, not memory.
constexpr int kLanes = 16;
constexpr int kBlock = 16;

template <typename T>
inline float as_float(T v) {
  return static_cast<float>(v);
}

template <typename T>
inline void chunk_moments_impl(const T* __restrict x, const T* __restrict y, int64_t n, float px,
                               float py, Moments& out) {
  double sx[kLanes] = {}, sy[kLanes] = {}, sxx[kLanes] = {}, syy[kLanes] = {}, sxy[kLanes] = {},
         sdd[kLanes] = {};
  constexpr int64_t kStep = int64_t{kLanes} * kBlock;
  int64_t i = 0;
  for (; i + kStep <= n; i += kStep) {
    float fx[kLanes] = {}, fy[kLanes] = {}, fxx[kLanes] = {}, fyy[kLanes] = {}, fxy[kLanes] = {},
          fdd[kLanes] = {};
    for (int k = 0; k < kBlock; ++k) {
      const T* xb = x + i + k * kLanes;
      const T* yb = y + i + k * kLanes;
      for (int l = 0; l < kLanes; ++l) {
        const float xv = as_float(xb[l]), yv = as_float(yb[l]);
        const float dx = xv - px, dy = yv - py, d = xv - yv;
        fx[l] += dx;
        fy[l] += dy;
        fxx[l] += dx * dx;
        fyy[l] += dy * dy;
        fxy[l] += dx * dy;
        fdd[l] += d * d;
      }
    }
    for (int l = 0; l < kLanes; ++l) {
      sx[l] += fx[l]; sy[l] += fy[l]; sxx[l] += fxx[l]; syy[l] += fyy[l]; sxy[l] += fxy[l]; sdd[l] += fdd[l];
    }
  }
  Moments m;
  moments_zero(m);
  for (; i < n; ++i) {
    const double xv = as_float(x[i]), yv = as_float(y[i]);
    moments_add(m, xv - px, yv - py, xv - yv);
  }
  m.n = static_cast<double>(n);
  for (int l = 0; l < kLanes; ++l) {
    m.sx += sx[l]; m.sy += sy[l]; m.sxx += sxx[l]; m.syy += syy[l]; m.sxy += sxy[l]; m.sdd += sdd[l];
  }
  out = m;
}

// float64 input keeps every operation in double.
inline void chunk_moments_f64(const double* x, const double* y, int64_t n, double px, double py,
                              Moments& out) {
  Moments m;
  moments_zero(m);
  for (int64_t i = 0; i < n; ++i) moments_add(m, x[i] - px, y[i] - py, x[i] - y[i]);
  out = m;
}

// float32 is the hot path: build an AVX2+FMA clone next to the baseline one and let the loader
// pick at run time, so a from-source build stays portable yet fast.
__attribute__((target_clones("arch=haswell", "default"))) void chunk_moments_f32(
    const float* __restrict x, const float* __restrict y, int64_t n, float px, float py, Moments& out) {
  chunk_moments_impl<float>(x, y, n, px, py, out);
}

template <typename T>
void chunk_moments(const T* x, const T* y, int64_t n, Moments& out, const T* x0, const T* y0) {
  if constexpr (std::is_same_v<T, double>) {
    chunk_moments_f64(x, y, n, *x0, *y0, out);
  } else if constexpr (std::is_same_v<T, float>) {
    chunk_moments_f32(x, y, n, *x0, *y0, out);
  } else {
    chunk_moments_impl<T>(x, y, n, as_float(*x0), as_float(*y0), out);
  }
}

std::tuple<at::Tensor, at::Tensor> pcc_mse_cpu(const at::Tensor& x_in, const at::Tensor& y_in) {
  check_pair("pcc_mse", x_in, y_in, /*image_batch=*/false);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor y = y_in.contiguous();
  const int64_t b = x.size(0);
  const int64_t n = x.numel() / b;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const auto out_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor pcc = at::empty({b}, x.options().dtype(out_dtype));
  at::Tensor mse = at::empty({b}, x.options().dtype(out_dtype));
  std::vector<Moments> parts(static_cast<size_t>(b * chunks));

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "pcc_mse_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    at::parallel_for(0, b * chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t img = t / chunks, c = t % chunks;
        const int64_t off = img * n + c * kChunk;
        const int64_t len = std::min(kChunk, n - c * kChunk);
        // Every chunk of an image shares the image's first element as pivot, so partial sums add.
        chunk_moments<scalar_t>(xp + off, yp + off, len, parts[t], xp + img * n, yp + img * n);
      }
    });
  });

  AT_DISPATCH_FLOATING_TYPES(out_dtype, "pcc_mse_cpu_out", [&] {
    scalar_t* pp = pcc.mutable_data_ptr<scalar_t>();
    scalar_t* mp = mse.mutable_data_ptr<scalar_t>();
    for (int64_t img = 0; img < b; ++img) {
      Moments m = parts[img * chunks];
      for (int64_t c = 1; c < chunks; ++c) moments_merge(m, parts[img * chunks + c]);
      pp[img] = static_cast<scalar_t>(moments_pcc(m));
      mp[img] = static_cast<scalar_t>(moments_mse(m));
    }
  });
  return {pcc, mse};
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CPU, m) { m.impl("pcc_mse", &pcc_mse_cpu); }

}  // namespace cae_fast
