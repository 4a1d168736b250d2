// FP8 output (docs/semantics.md, "FP8 output"): the one conversion double -> float8_e4m3fn /
// float8_e5m2, round-to-nearest-even or stochastic, saturating, written with integer operations
// only so that the GPU, the CPU engine and the CPU host harness run the same code.  The Numba
// backend keeps a formula-for-formula port (activations/_fp8.py).
#pragma once
#include "common.cuh"

namespace act {
namespace fp8 {

// The two formats: mantissa bits, smallest normal exponent (the bias is 1 - emin), the largest
// finite code and the NaN code (sign bit apart).  e4m3fn has no infinities (0x7f is NaN, 448 =
// 0x7e the largest); e5m2 is IEEE-like (0x7c inf, 0x7e NaN, 57344 = 0x7b the largest).
enum Format : int { kE4M3 = 0, kE5M2 = 1 };
constexpr i64 kGroup = 128;  // elements of an amax group along the last axis
struct Spec {
  int mant, emin;
  unsigned max_code, nan_code;
};
__device__ __forceinline__ Spec spec(int format) {
  return format == kE5M2 ? Spec{2, -14, 0x7bu, 0x7eu} : Spec{3, -6, 0x7eu, 0x7fu};
}

// The code of v (sign | magnitude).  `noise` is 64 uniform random bits for stochastic rounding
// (round away from zero with probability (|v| - lower) / quantum, exactly: the dropped bits rem
// plus the top `shift` bits of noise carry into the kept ones), or unused with stochastic false
// (round to nearest, ties to even).  Finite values beyond the largest and +-inf give the largest
// finite code of their sign; NaN gives the format's NaN with the input's sign bit; +-0 keep their
// sign; values below half the smallest subnormal give +-0 (nearest).
__device__ __forceinline__ unsigned encode(double v, int format, bool stochastic, u64 noise) {
  const Spec s = spec(format);
  const u64 b = static_cast<u64>(__double_as_longlong(v));
  const unsigned sign = unsigned(b >> 63) << 7;
  const u64 a = b & 0x7fffffffffffffffull;
  if (a > 0x7ff0000000000000ull) return sign | s.nan_code;
  if (a == 0) return sign;
  int e = int(a >> 52) - 1023;                   // unbiased exponent (+1024 for inf)
  u64 mant = a & 0x000fffffffffffffull;          // significand with its implicit bit
  if (e == -1023) {
    e = -1022;  // a double subnormal: no implicit bit
  } else {
    mant |= 0x0010000000000000ull;
  }
  // bits of mant below the FP8 quantum at this magnitude (more below the smallest normal)
  const int shift = 52 - s.mant + (e < s.emin ? s.emin - e : 0);
  u64 kept = 0;
  bool up;
  if (shift <= 63) {
    kept = mant >> shift;
    const u64 rem = mant & ((1ull << shift) - 1ull);
    const u64 one = 1ull << shift;
    if (stochastic) {
      up = rem >= one - (noise >> (64 - shift)) && rem != 0;
    } else {
      const u64 half = one >> 1;
      up = rem > half || (rem == half && (kept & 1ull));
    }
  } else if (stochastic && shift < 127) {
    // far below the smallest subnormal: up with probability mant / 2^shift
    up = (noise >> 1) < (mant >> (shift - 63));
  } else {
    up = false;  // nearest: below half the smallest subnormal
  }
  const u64 base = e >= s.emin ? u64(e - s.emin) << s.mant : 0ull;  // a carry of kept + up moves the exponent
  const u64 code = base + kept + (up ? 1ull : 0ull);
  return sign | unsigned(code > s.max_code ? s.max_code : code);
}

// The rounding noise of flat output index i is the rrelu counter hash of (seed ^ 0xA0761D6478BD642F,
// i), so that rrelu's slopes and its stochastic rounding from one seed are independent streams;
// the host applies the key (activations/_fp8.py NOISE_KEY) and kernels take the keyed seed.

// |r| as float32 bits: non-negative floats order like their bits, and every NaN lies above +inf,
// so an unsigned max over these bits is amax with NaN propagated.
template <class C> __device__ __forceinline__ unsigned abs_bits(C r) {
  return static_cast<unsigned>(__float_as_int(float(r))) & 0x7fffffffu;
}

// Where each output element goes: the code (scale applied in double, exact for a float result
// and a float scale), and its |f| into the amax of its segment: the whole tensor (mode 0), its row
// of `cols` (mode 1), or its group of 128 within the row (mode 2).
struct Sink {
  unsigned char* y;
  unsigned* amax;  // float32 bits, zeroed by the caller
  i64 cols, groups;  // groups per row (1 for mode 1)
  double scale;
  u64 seed;  // the keyed noise seed
  int format, mode, stochastic;

  __device__ __forceinline__ unsigned char code(double r, i64 i) const {
    const double v = r * scale;
    return static_cast<unsigned char>(encode(v, format, stochastic != 0, stochastic ? counter_hash(seed, i) : 0ull));
  }
  __device__ __forceinline__ i64 segment(i64 i) const {
    if (mode == 0) return 0;
    const i64 row = i / cols;
    return mode == 1 ? row : row * groups + (i - row * cols) / kGroup;
  }
};

}  // namespace fp8
}  // namespace act
