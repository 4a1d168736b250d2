// Compatibility prelude: lets g++ compile the CUDA sources of kernels/ (common.cuh,
// functors.cuh) as plain C++ for the CPU loops of native.cpp.  Only what those headers use on
// the elementwise path has a real definition; warp and block primitives are stubs that the CPU
// code never calls.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#define __device__
#define __host__
#define __global__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __restrict__ __restrict

inline __attribute__((always_inline)) float __int_as_float(int i) {
  float f;
  memcpy(&f, &i, sizeof f);
  return f;
}
inline __attribute__((always_inline)) int __float_as_int(float f) {
  int i;
  memcpy(&i, &f, sizeof i);
  return i;
}
inline __attribute__((always_inline)) double __longlong_as_double(long long i) {
  double d;
  memcpy(&d, &i, sizeof d);
  return d;
}
inline __attribute__((always_inline)) long long __double_as_longlong(double d) {
  long long i;
  memcpy(&i, &d, sizeof i);
  return i;
}

// Thread geometry of a one-thread "block": the CPU never launches the CUDA kernels, but the
// headers that define them must still parse.
struct act_cpu_dim3 {
  unsigned x, y, z;
};
static const act_cpu_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0};
static const act_cpu_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
inline void __syncthreads() {}
template <class T> inline T __shfl_xor_sync(unsigned, T v, int, int = 32) { return v; }

// A sigmoid with one exp (and one division).  common.cuh's template evaluates exp(-x) or exp(x) by the sign of x;
// a vector loop if-converts that branch and then computes both.  These overloads (defined in
// native.cpp, after common.cuh) are preferred to the template for float and double and take
// exp(-|x|), which is the same number in either case: the results are bit for bit the
// template's, which act_cpu_check() verifies when the library is loaded.
namespace act {
namespace m {
inline __attribute__((always_inline)) float sigmoid(float x);
inline __attribute__((always_inline)) double sigmoid(double x);
}  // namespace m
}  // namespace act
