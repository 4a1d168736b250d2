// The near-tie test of the CPU engine's 16-bit stores (engine.cpp, Core::round_once and
// Gated::round_once): which float results lie so close to a rounding boundary of float16 or
// bfloat16 that a few float ulps of error could round them to the wrong neighbour, and the pieces
// of their redo (with functors.cuh's to_float_odd).  Its own header so that tests/test_near_tie.py can check the test against the
// GPU's (kernels/functors.cuh, store_once) over the floats.
#pragma once
#include <stdint.h>
#include <string.h>

#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_fp16.h"

namespace act {

// 1 where float v is within 2^-19 |v| of a rounding boundary of D (a tie of D's rounding):
// bfloat16 drops v's low 16 bits; float16 drops 13 in its normal range and more below 2^-14
// (its last tie is 2^-25, between 0 and 2^-24), and rounds v >= 65520 to inf (that tie is in
// the last binade's 13 bits).  Zeros, infinities, NaN, v < 2^-26 and v >= 2^16 are not near.
// Over all floats it flags every v the GPU's test flags, and 4% more (tests/test_cpu_engine.py).
template <class D> inline __attribute__((always_inline)) int near_tie(float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  const uint32_t w = 17u + ((u >> 19) & 15u);  // 16 (1 + mantissa), rounded up: 2^-19 |v| in ulps of v
  if constexpr (std::is_same_v<D, __nv_bfloat16>) {
    const uint32_t e = (u >> 23) & 0xffu;
    return int(((u & 0xffffu) - 0x8000u + w) <= 2 * w) & int(e != 0xffu);
  } else {
    const uint32_t e = (u >> 23) & 0xffu;
    // bits dropped: 13, or 13 + (113 - e) below float16's normals; 25 below 2^-25 (the tie at
    // 2^-25 seen from below).  Masks by right shifts: GCC vectorizes these, not 1 << bits.
    const uint32_t bits = e >= 113u ? 13u : (e >= 101u ? 126u - e : 25u);
    const uint32_t low = ((u & 0x7fffffu) | 0x800000u) & (0xffffffffu >> (32u - bits));
    const uint32_t half = 0x80000000u >> (32u - bits);
    return int((low - half + w) <= 2 * w) & int(e >= 101u) & int(e < 143u);
  }
}

// fn(k) for each k < len with flag[k] set (flags are 0 or 1), eight flags per test: the flagged
// elements are rare, and a plain loop that skips the others would be vectorized with masks.
template <class Fn> inline void for_each_flagged(const unsigned char* flag, long long len, Fn&& fn) {
  for (long long k0 = 0; k0 < len; k0 += 8) {
    uint64_t word = 0;
    memcpy(&word, flag + k0, size_t(len - k0 < 8 ? len - k0 : 8));
    for (; word != 0; word &= word - 1) fn(k0 + __builtin_ctzll(word) / 8);
  }
}

}  // namespace act
