// The backward element of the nn_ref op, shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/OpMathType.h>

#include "convert.h"

namespace cae_fast {

// d dist2 / d z[k] = 2 g (z[k] - h[k]) in T's op-math type. (2 g) first: exact, so float32/float64
// results round as the reference's 2.0 * g * (z - h) does.
template <typename T>
CAE_HD T nn_ref_grad(T g, T z, T h) {
  using acc_t = at::opmath_type<T>;
  const acc_t s = acc_t(2) * static_cast<acc_t>(g);
  return static_cast<T>(s * (static_cast<acc_t>(z) - static_cast<acc_t>(h)));
}

}  // namespace cae_fast
