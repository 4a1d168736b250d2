// CPU stand-in for CUDA's cuda_fp16.h: the storage type and the two conversions the kernels
// use, in integer arithmetic written without branches so that loops over them vectorize.
#pragma once
#include <stdint.h>
#include <string.h>

struct __half {
  uint16_t bits;
};

inline __attribute__((always_inline)) float __half2float(__half h) {
  // Shift exponent and mantissa into place, rebias; subnormals are renormalised with one
  // float subtraction, inf/NaN get the full exponent (Giesen's half_to_float_fast).
  const uint32_t sign = uint32_t(h.bits & 0x8000u) << 16;
  uint32_t o = uint32_t(h.bits & 0x7fffu) << 13;
  const uint32_t exp = o & 0x0f800000u;
  o += (127u - 15u) << 23;
  const uint32_t special = o + ((128u - 16u) << 23);
  float sub;
  uint32_t t = o + (1u << 23);
  memcpy(&sub, &t, 4);
  sub -= 6.103515625e-05f;  // 2^-14
  uint32_t subbits;
  memcpy(&subbits, &sub, 4);
  o = exp == 0x0f800000u ? special : (exp == 0 ? subbits : o);
  o |= sign;
  float f;
  memcpy(&f, &o, 4);
  return f;
}

inline __attribute__((always_inline)) __half __float2half_rn(float f) {
  // Round to nearest even (Giesen's float_to_half_fast3_rtne), the three cases as selects.
  uint32_t u;
  memcpy(&u, &f, 4);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  // overflow to inf, NaN stays a (quiet) NaN
  const uint32_t big = u > 0x7f800000u ? 0x7e00u : 0x7c00u;
  // subnormal results: let the FPU round by adding a magic number
  const uint32_t denorm_magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
  float fu, magic;
  memcpy(&fu, &u, 4);
  memcpy(&magic, &denorm_magic, 4);
  fu += magic;
  uint32_t sub;
  memcpy(&sub, &fu, 4);
  sub -= denorm_magic;
  // normal results: rebias and round the 13 dropped bits to nearest even
  const uint32_t odd = (u >> 13) & 1u;
  const uint32_t norm = (u + ((15u - 127u) << 23) + 0xfffu + odd) >> 13;
  uint32_t o = u >= 0x47800000u ? big : (u < (113u << 23) ? sub : norm);
  __half h;
  h.bits = uint16_t(o | (sign >> 16));
  return h;
}
inline __half __float2half(float f) { return __float2half_rn(f); }
