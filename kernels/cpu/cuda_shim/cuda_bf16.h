// CPU stand-in for CUDA's cuda_bf16.h (see cuda_fp16.h).
#pragma once
#include <stdint.h>
#include <string.h>

struct __nv_bfloat16 {
  uint16_t bits;
};

inline __attribute__((always_inline)) float __bfloat162float(__nv_bfloat16 h) {
  const uint32_t u = uint32_t(h.bits) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

inline __attribute__((always_inline)) __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  // round to nearest even on the 16 dropped bits; NaN keeps its sign and becomes quiet
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  __nv_bfloat16 h;
  h.bits = uint16_t(nan ? ((u >> 16) | 0x40u) : rounded);
  return h;
}
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
