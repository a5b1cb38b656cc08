// The one way a kernel reads a stored value (float, double, Half, BFloat16) for arithmetic, shared
// by the CPU (.cpp) and CUDA (.cu) kernels so both round the same.
#pragma once

#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define CAE_HD __host__ __device__ __forceinline__
#else
#define CAE_HD inline
#endif

namespace cae_fast {

// Half and BFloat16 convert to float only (on host and device alike); float -> double is exact.
template <typename T>
CAE_HD double to_double(T v) {
  if constexpr (std::is_same<T, double>::value) {
    return v;
  } else {
    return static_cast<double>(static_cast<float>(v));
  }
}

}  // namespace cae_fast
