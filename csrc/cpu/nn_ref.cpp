// Nearest neighbour of each latent in H_ref on the CPU.
//
// ||z - h||^2 = ||z||^2 + ||h||^2 - 2 z.h: the cross term for a tile of H_ref is one GEMM (the
// fastest thing a CPU does), folded at once into a per-row running minimum, so only a B x tile
// block ever exists, never B x M. The winner's distance is then recomputed exactly in double,
// so the reported value does not carry the expansion's cancellation error.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sum.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "../common/checks.h"
#include "../common/moments.h"
#include "../common/nn_ref.h"

namespace cae_fast {
namespace {

// Elements of the B x tile block of cross terms: 4M floats = 16 MiB, cache-friendly enough and
// bounded whatever M is.
constexpr int64_t kTileElems = int64_t{1} << 22;

std::tuple<at::Tensor, at::Tensor> nn_ref_cpu(const at::Tensor& z_in, const at::Tensor& h_in,
                                              const std::optional<at::Tensor>& exclude_in) {
  check_nn_ref(z_in, h_in, exclude_in);
  const int64_t b = z_in.size(0), m = h_in.size(0), d = z_in.size(1);
  // Half inputs search in float: GEMM in half on a CPU is slow and too coarse for an argmin.
  const auto ct = z_in.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor z = z_in.to(ct).contiguous();
  const at::Tensor h = h_in.to(ct).contiguous();
  const int64_t* ex = nullptr;
  at::Tensor exclude;
  if (exclude_in.has_value()) {
    exclude = exclude_in->contiguous();
    ex = exclude.const_data_ptr<int64_t>();
  }

  at::Tensor idx = at::empty({b}, z_in.options().dtype(at::kLong));
  at::Tensor dist2 = at::empty({b}, z_in.options());
  int64_t* ip = idx.mutable_data_ptr<int64_t>();
  if (b == 0) return {dist2, idx};

  std::vector<double> best(static_cast<size_t>(b), std::numeric_limits<double>::infinity());
  // Exact (double) distance of the current best, computed only when a near-tie needs it.
  std::vector<double> best_exact(static_cast<size_t>(b), std::numeric_limits<double>::quiet_NaN());
  std::fill(ip, ip + b, int64_t{-1});
  const int64_t tile = std::max<int64_t>(1, std::min<int64_t>(m, kTileElems / b));

  AT_DISPATCH_FLOATING_TYPES(ct, "nn_ref_cpu", [&] {
    const at::Tensor hn = (h * h).sum(1);
    const at::Tensor zn = (z * z).sum(1);
    const scalar_t* hnp = hn.const_data_ptr<scalar_t>();
    const scalar_t* znp = zn.const_data_ptr<scalar_t>();
    const scalar_t* zp = z.const_data_ptr<scalar_t>();
    const scalar_t* hp = h.const_data_ptr<scalar_t>();
    const double hn_max = to_double(hn.max().item<scalar_t>());
    // Bound on the expansion's rounding error, relative to the magnitudes it cancels: inside it two
    // candidates are a near-tie and the exact distance decides (then the lower index), so ties
    // keep the lowest index even where GEMM rounds duplicate rows differently.
    const double rel_tol = std::is_same_v<scalar_t, float> ? 1e-5 : 1e-13;
    for (int64_t start = 0; start < m; start += tile) {
      const int64_t t = std::min(tile, m - start);
      const at::Tensor g = at::mm(z, h.narrow(0, start, t).t()).contiguous();
      const scalar_t* gp = g.const_data_ptr<scalar_t>();
      at::parallel_for(0, b, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) {
          const scalar_t* gi = gp + i * t;
          const int64_t skip = ex ? ex[i] - start : -1;
          const double tol = rel_tol * (to_double(znp[i]) + hn_max);
          double bv = best[i], be = best_exact[i];
          int64_t bj = ip[i];
          for (int64_t j = 0; j < t; ++j) {
            const double v = to_double(hnp[start + j]) - 2.0 * to_double(gi[j]);
            if (j == skip || v > bv + tol) continue;
            if (v < bv - tol) {
              bv = v;
              bj = start + j;
              be = std::numeric_limits<double>::quiet_NaN();
              continue;
            }
            if (std::isnan(be)) be = sq_dist(zp + i * d, hp + bj * d, d);
            const double e = sq_dist(zp + i * d, hp + (start + j) * d, d);
            if (e < be) {  // strict: an exact tie keeps the earlier (lower) index
              bv = v;
              bj = start + j;
              be = e;
            }
          }
          best[i] = bv;
          best_exact[i] = be;
          ip[i] = bj;
        }
      });
    }
  });
  // Every row excluded (M = 1 with exclude): fall back to row 0, as the CUDA kernel does.
  for (int64_t i = 0; i < b; ++i) {
    if (ip[i] < 0) ip[i] = 0;
  }

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z_in.scalar_type(), "nn_ref_cpu_d2", [&] {
    const at::Tensor zc = z_in.contiguous(), hc = h_in.contiguous();
    const scalar_t* zp = zc.const_data_ptr<scalar_t>();
    const scalar_t* hp = hc.const_data_ptr<scalar_t>();
    scalar_t* dp = dist2.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, b, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        dp[i] = static_cast<scalar_t>(sq_dist(zp + i * d, hp + ip[i] * d, d));
      }
    });
  });
  return {dist2, idx};
}

at::Tensor nn_ref_backward_cpu(const at::Tensor& grad_in, const at::Tensor& z_in, const at::Tensor& h_in,
                               const at::Tensor& idx_in) {
  check_nn_ref_backward(grad_in, z_in, h_in, idx_in);
  const at::Tensor z = z_in.contiguous(), h = h_in.contiguous(), idx = idx_in.contiguous();
  const at::Tensor g = grad_in.to(z.scalar_type()).contiguous();
  const int64_t b = z.size(0), d = z.size(1), m = h.size(0);
  at::Tensor out = at::empty_like(z);
  const int64_t* ip = idx.const_data_ptr<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    TORCH_CHECK(ip[i] >= 0 && ip[i] < m, "nn_ref_backward: idx out of range");
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(), "nn_ref_backward_cpu", [&] {
    const scalar_t* zp = z.const_data_ptr<scalar_t>();
    const scalar_t* hp = h.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, b, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        const scalar_t* zi = zp + i * d;
        const scalar_t* hi = hp + ip[i] * d;
        for (int64_t k = 0; k < d; ++k) op[i * d + k] = nn_ref_grad(gp[i], zi[k], hi[k]);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(cae_fast, CPU, m) {
  m.impl("nn_ref", &nn_ref_cpu);
  m.impl("nn_ref_backward", &nn_ref_backward_cpu);
}

}  // namespace cae_fast
