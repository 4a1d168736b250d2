// Compatibility prelude: lets g++ compile the CUDA sources of kernels/ (common.cuh,
// functors.cuh) as plain C++ for the CPU engine (engine.cpp).  Only what those headers use on
// the elementwise path has a real definition; warp and block primitives are stubs that the CPU
// code never calls.  The math functions the functors call come from the package's own vector
// math library (vmath.h), not from libm: the same results on every x86-64 CPU, and loops over
// them vectorize.
#pragma once

#include <stdint.h>
#include <string.h>

#include "vmath.h"

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

// The math of common.cuh's act::m, for the CPU (common.cuh skips its CUDA versions).
#define ACT_CPU_MATH 1
namespace act {
namespace m {
#define ACT_CPU_MATH_1(name)                                                                        \
  static inline __attribute__((always_inline)) float name(float x) { return ::act::vm::name(x); }   \
  static inline __attribute__((always_inline)) double name(double x) { return ::act::vm::name(x); }
ACT_CPU_MATH_1(exp)
ACT_CPU_MATH_1(expm1)
ACT_CPU_MATH_1(log)
ACT_CPU_MATH_1(log1p)
ACT_CPU_MATH_1(tanh)
ACT_CPU_MATH_1(erfc)
ACT_CPU_MATH_1(normcdf)
ACT_CPU_MATH_1(gauss)
#undef ACT_CPU_MATH_1
// x Phi(x) (the exact GELU): float rounds once from a scaled product (vmath.h); double as x Phi(x)
static inline __attribute__((always_inline)) float xnormcdf(float x) { return ::act::vm::xnormcdf(x); }
static inline __attribute__((always_inline)) double xnormcdf(double x) {
  const double p = ::act::vm::normcdf(x);
  return p == 0.0 ? 0.0 : x * p;
}
// Float versions of common.cuh's exp_nonpos, log1mexp, sigmoid_final and xsigmoid (double takes
// the templates there): exp of an argument <= 0 without the overflow handling (the same bits),
// log(1 - exp(-x)) with one logarithm, x sigmoid(x) rounded once (vmath.h); sigmoid_final below.
static inline __attribute__((always_inline)) float exp_nonpos(float x) { return ::act::vm::exp_nonpos(x); }
static inline __attribute__((always_inline)) float log1mexp(float x) { return ::act::vm::log1mexp(x); }
static inline __attribute__((always_inline)) float xsigmoid(float x) { return ::act::vm::xsigmoid(x); }
// The float FMA pieces of common.cuh's pairs: vmath's, exact without an FMA unit too (the
// baseline build: Dekker's product)
static inline __attribute__((always_inline)) float fma(float a, float b, float c) { return ::act::vm::detail::fma_(a, b, c); }
static inline __attribute__((always_inline)) double fma(double a, double b, double c) {
  return ::act::vm::detail::fma_(a, b, c);  // (without it a double call would take the float one)
}
static inline __attribute__((always_inline)) float prod_error(float a, float b, float) {
  return ::act::vm::detail::two_prod(a, b).lo;
}
static inline __attribute__((always_inline)) float fnma_exact(float a, float b, float c) {
  return ::act::vm::detail::fnma_exact(a, b, c);
}
// exp(-a) in double for float a >= 0 (float silu' and mish' in double): exp_mid, to about 1 ulp for
// normal results, cheaper than exp; and the quotient of their last step, a division
static inline __attribute__((always_inline)) double exp_neg_d(float a, float al = 0.0f) {
  return ::act::vm::detail::exp_mid(-(double(a) + double(al)));
}
static inline __attribute__((always_inline)) double div_near(double n, double q) { return n / q; }
// the exact GELU's derivative, float, in double from erfc's float polynomial (vmath.h)
static inline __attribute__((always_inline)) float gelu_grad(float x) { return ::act::vm::gelu_grad(x); }
// squareplus and its derivative, float: sqrt(x^2 + b) as a pair in float (vmath.h)
static inline __attribute__((always_inline)) float squareplus(float x, float b) { return ::act::vm::squareplus(x, b); }
static inline __attribute__((always_inline)) float squareplus_grad(float x, float b) {
  return ::act::vm::squareplus_grad(x, b);
}
// sin and cos: float arguments up to vmath's SIN_FAST_MAX_F32 take the fast reduction; beyond
// it they give NaN, and the engine's loop evaluates those elements again in double, whose sin
// and cos are exact for every argument (functors with `periodic`: see Core in engine.cpp).  So
// the common loop carries no Payne-Hanek reduction.
static inline __attribute__((always_inline)) float sin(float x) {
  return __builtin_fabsf(x) <= ::act::vm::SIN_FAST_MAX_F32 ? ::act::vm::sin_fast(x) : __builtin_nanf("");
}
static inline __attribute__((always_inline)) float cos(float x) {
  return __builtin_fabsf(x) <= ::act::vm::SIN_FAST_MAX_F32 ? ::act::vm::cos_fast(x) : __builtin_nanf("");
}
static inline __attribute__((always_inline)) double sin(double x) { return ::act::vm::sin(x); }
static inline __attribute__((always_inline)) double cos(double x) { return ::act::vm::cos(x); }
inline __attribute__((always_inline)) float sqrt(float x) { return __builtin_sqrtf(x); }
inline __attribute__((always_inline)) double sqrt(double x) { return __builtin_sqrt(x); }
inline __attribute__((always_inline)) float abs(float x) { return __builtin_fabsf(x); }
inline __attribute__((always_inline)) double abs(double x) { return __builtin_fabs(x); }
inline __attribute__((always_inline)) float hypot(float a, float b) { return ::act::vm::hypot(a, b); }
inline __attribute__((always_inline)) double hypot(double a, double b) { return ::act::vm::hypot(a, b); }

// The sigmoid, one exp and one division.  These overloads (defined in engine.cpp, after
// common.cuh) are preferred to the template and give its numbers bit for bit
// (tests/test_cpu_engine.py compares them).  sigmoid_final, the sigmoid as an activation's
// result, is vmath's for float: its quotient is corrected so that it rounds once (three
// roundings reach 2.4 ulps); inside other formulas the cheaper sigmoid serves.
inline __attribute__((always_inline)) float sigmoid(float x);
inline __attribute__((always_inline)) double sigmoid(double x);
inline __attribute__((always_inline)) float sigmoid_final(float x);
}  // namespace m
}  // namespace act

// common.cuh's copysign calls: <math.h> declares them, and GCC compiles them as bit operations
// (no libm call).
#include <math.h>
