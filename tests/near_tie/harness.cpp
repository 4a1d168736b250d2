// Checks the near-tie test of 16-bit stores (kernels/functors.cuh, near_tie: the GPU's and the CPU
// engine's) against the value test it replaced (v - d and v + d stored to the 16-bit type differ
// as values, d = 2^-19 |v| + 2^-60) over floats chosen by tests/test_near_tie.py: every pattern in
// [first, last) with a stride.  near_tie is evaluated in a `#pragma omp simd` loop, as in the CPU
// engine (compiled as C++ the way the engine compiles the CUDA headers).  Prints, per
// type, the floats both flag, the floats only the GPU's test flags (with the first few), and the
// floats only near_tie flags.  bfloat16 is compared from |v| >= 2^-30 on: below, the GPU's
// 2^-60 floor is more than a fraction of v's ulp and widens its window by absolute distance; the
// engine relies on its float results being accurate there to a few of their own ulps.
#include <stdio.h>
#include <stdlib.h>

#include "prelude.h"
#include "functors.cuh"

namespace {

template <class D> float to_float(D h);
template <> float to_float(__half h) { return __half2float(h); }
template <> float to_float(__nv_bfloat16 h) { return __bfloat162float(h); }
template <class D> D from_float(float f);
template <> __half from_float(float f) { return __float2half_rn(f); }
template <> __nv_bfloat16 from_float(float f) { return __float2bfloat16_rn(f); }

template <class D> int gpu_near(float v) {
  const float a = v < 0 ? -v : v;
  const float d = a * 0x1p-19f + 0x1p-60f;
  // (an infinite v gives inf - inf: flagged there, and redone to the same infinity)
  return a <= 0x1.fffffep127f && to_float(from_float<D>(v - d)) != to_float(from_float<D>(v + d));
}

template <class D> void check(const char* name, uint64_t first, uint64_t last, uint64_t stride, float min_abs) {
  constexpr long kChunk = 4096;
  static float v[kChunk];
  static int flag[kChunk];
  long both = 0, gpu_only = 0, ours_only = 0;
  for (uint64_t i = first; i < last;) {
    long n = 0;
    for (; n < kChunk && i < last; ++n, i += stride) {
      const uint32_t u = uint32_t(i);
      memcpy(&v[n], &u, 4);
    }
#pragma omp simd
    for (long k = 0; k < n; ++k) flag[k] = int(act::near_tie<D>(v[k]));
    for (long k = 0; k < n; ++k) {
      const float a = v[k] < 0 ? -v[k] : v[k];
      if (!(a >= min_abs)) continue;
      const int g = gpu_near<D>(v[k]);
      both += g && flag[k];
      ours_only += !g && flag[k];
      if (g && !flag[k]) {
        if (gpu_only < 5) printf("%s missed %a\n", name, v[k]);
        ++gpu_only;
      }
    }
  }
  printf("%s both %ld gpu_only %ld ours_only %ld\n", name, both, gpu_only, ours_only);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  const uint64_t first = strtoull(argv[1], nullptr, 0), last = strtoull(argv[2], nullptr, 0);
  const uint64_t stride = strtoull(argv[3], nullptr, 0);
  check<__half>("float16", first, last, stride, 0.0f);
  check<__nv_bfloat16>("bfloat16", first, last, stride, 0x1p-30f);
  return 0;
}
