// Argument checks of the op entry points, one set shared by the CPU and CUDA kernels. The messages
// users normally see come from cae_fast/ops/_checks.py, which runs first; these guard direct
// torch.ops.cae_fast calls, so that a bad argument is an error and never an out-of-bounds read.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <optional>

namespace cae_fast {

inline bool is_float_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

// A frame batch x and its reconstruction y: the same shape, float dtype and device; exactly
// [B, C, H, W] when image_batch, else [B, ...] with a non-empty B and image.
inline void check_pair(const char* op, const at::Tensor& x, const at::Tensor& y, bool image_batch) {
  TORCH_CHECK(x.sizes() == y.sizes(), op, ": x and y must have the same shape, got ", x.sizes(), " and ",
              y.sizes());
  if (image_batch) {
    TORCH_CHECK(x.dim() == 4, op, ": x and y must be [B, C, H, W], got ", x.sizes());
  } else {
    TORCH_CHECK(x.dim() >= 2 && x.size(0) > 0 && x.numel() > 0, op, ": empty input of shape ", x.sizes());
  }
  TORCH_CHECK(is_float_dtype(x.scalar_type()), op, ": x must be float16/bfloat16/float32/float64");
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), op, ": x and y must have the same dtype");
  TORCH_CHECK(x.device() == y.device(), op, ": x and y are on different devices");
}

// Frames of at least min_side x min_side pixels.
inline void check_min_side(const char* op, const at::Tensor& x, int64_t min_side) {
  TORCH_CHECK(x.size(2) >= min_side && x.size(3) >= min_side, op, ": frames must be at least ", min_side,
              "x", min_side, ", got ", x.size(2), "x", x.size(3));
}

// A tile side that fits the frame.
inline void check_patch(const char* op, const at::Tensor& x, int64_t patch) {
  TORCH_CHECK(patch >= 1 && patch <= x.size(2) && patch <= x.size(3), op, ": patch must be in [1, ",
              std::min(x.size(2), x.size(3)), "], got ", patch);
}

// Latents z [B, D] against references h_ref [M, D] of the same dtype and device.
inline void check_latents(const char* op, const at::Tensor& z, const at::Tensor& h) {
  TORCH_CHECK(z.dim() == 2 && h.dim() == 2 && z.size(1) == h.size(1), op,
              ": expected z [B, D] and h_ref [M, D], got ", z.sizes(), " and ", h.sizes());
  TORCH_CHECK(is_float_dtype(z.scalar_type()), op, ": z must be float16/bfloat16/float32/float64");
  TORCH_CHECK(z.scalar_type() == h.scalar_type(), op, ": z and h_ref must have the same dtype");
  TORCH_CHECK(z.device() == h.device(), op, ": z and h_ref are on different devices");
}

inline void check_nn_ref(const at::Tensor& z, const at::Tensor& h, const std::optional<at::Tensor>& exclude) {
  check_latents("nn_ref", z, h);
  TORCH_CHECK(h.size(0) > 0, "nn_ref: h_ref is empty");
  if (exclude.has_value()) {
    TORCH_CHECK(exclude->scalar_type() == at::kLong && exclude->dim() == 1 && exclude->size(0) == z.size(0),
                "nn_ref: exclude must be int64 of shape [B]");
    TORCH_CHECK(exclude->device() == z.device(), "nn_ref: exclude is on a different device than z");
  }
}

inline void check_nn_ref_backward(const at::Tensor& grad, const at::Tensor& z, const at::Tensor& h,
                                  const at::Tensor& idx) {
  check_latents("nn_ref_backward", z, h);
  TORCH_CHECK(idx.scalar_type() == at::kLong, "nn_ref_backward: idx must be int64");
  TORCH_CHECK(idx.numel() == z.size(0) && grad.numel() == z.size(0),
              "nn_ref_backward: grad_dist2 and idx must have B elements");
  TORCH_CHECK(idx.device() == z.device() && grad.device() == z.device(),
              "nn_ref_backward: grad_dist2, z, h_ref and idx must be on one device");
}

}  // namespace cae_fast
