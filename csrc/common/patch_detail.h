// Per-tile math of the patch_detail op, shared by the CPU and CUDA kernels; the per-pixel
// Laplacian is laplacian.h's.
#pragma once

#include "laplacian.h"

namespace cae_fast {

// A tile's detail from the sum of its interior pixels' squared gray Laplacians, added column by
// column (each column's rows first, then the columns left to right: the CPU kernel keeps the
// column sums of a whole tile row, the GPU adds one tile's): the mean, or 0 without interior pixels.
CAE_HD double tile_detail(double sum, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const int64_t n = (i1 > i0 && j1 > j0) ? (i1 - i0) * (j1 - j0) : 0;
  return n > 0 ? sum / double(n) : 0.0;
}

}  // namespace cae_fast
