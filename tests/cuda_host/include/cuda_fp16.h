// Stand-in for CUDA's cuda_fp16.h in the CPU harness: storage type and the conversions the
// kernels use.  GCC's _Float16 converts with IEEE round-to-nearest-even, like __float2half_rn.
#pragma once
#include <cstdint>
#include <cstring>

struct __half {
  std::uint16_t bits;
};

inline float __half2float(__half h) {
  _Float16 v;
  std::memcpy(&v, &h.bits, 2);
  return float(v);
}
inline __half __float2half_rn(float f) {
  const _Float16 v = static_cast<_Float16>(f);
  __half h;
  std::memcpy(&h.bits, &v, 2);
  return h;
}
inline __half __float2half(float f) { return __float2half_rn(f); }
