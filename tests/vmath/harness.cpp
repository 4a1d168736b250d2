// Test harness for kernels/cpu/vmath.h, built by tests/test_vmath.py once per flag set
// (baseline x86-64, x86-64-v3, x86-64-v4; each also with -fno-tree-vectorize) and loaded with
// ctypes.  Every entry point applies one act::vm function over arrays in a `#pragma omp simd`
// loop, the loop the engine uses.  act_vm_check_f32 is the float accuracy check: any subset of
// the 2^32 floats (all of them with stride 1: the exhaustive check, see test_vmath.py) against
// glibc's double functions (the reference needs libm; the header itself never calls it).
#include "../../kernels/cpu/vmath.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>

namespace {

// (sin_fast and cos_fast: the float fast paths, accurate for |x| <= act::vm::SIN_FAST_MAX_F32;
// exp_nonpos, sigmoid, xsigmoid, log1mexp: float only, their double entries return x)
enum {
  EXP, EXPM1, LOG, LOG1P, TANH, ERFC, SIN, HYPOT, NORMCDF, GAUSS, COS, SIN_FAST, COS_FAST,
  EXP_NONPOS, SIGMOID, XSIGMOID, LOG1MEXP, NFN
};
const char* const NAMES[NFN] = {"exp",  "expm1",   "log",   "log1p", "tanh",     "erfc",    "sin",
                                "hypot", "normcdf", "gauss", "cos",   "sin_fast", "cos_fast",
                                "exp_nonpos", "sigmoid", "xsigmoid", "log1mexp"};

template <int F, class T> inline __attribute__((always_inline)) T call(T x, T y) {
  if constexpr (F == EXP) return act::vm::exp(x);
  if constexpr (F == EXPM1) return act::vm::expm1(x);
  if constexpr (F == LOG) return act::vm::log(x);
  if constexpr (F == LOG1P) return act::vm::log1p(x);
  if constexpr (F == TANH) return act::vm::tanh(x);
  if constexpr (F == ERFC) return act::vm::erfc(x);
  if constexpr (F == SIN) return act::vm::sin(x);
  if constexpr (F == HYPOT) return act::vm::hypot(x, y);
  if constexpr (F == NORMCDF) return act::vm::normcdf(x);
  if constexpr (F == GAUSS) return act::vm::gauss(x);
  if constexpr (F == COS) return act::vm::cos(x);
  if constexpr (F == SIN_FAST) return act::vm::sin_fast(x);
  if constexpr (F == COS_FAST) return act::vm::cos_fast(x);
  if constexpr (F >= EXP_NONPOS) {
    if constexpr (!std::is_same_v<T, float>) {
      return x;
    } else {
      if constexpr (F == EXP_NONPOS) return act::vm::exp_nonpos(x);
      if constexpr (F == SIGMOID) return act::vm::sigmoid(x);
      if constexpr (F == XSIGMOID) return act::vm::xsigmoid(x);
      if constexpr (F == LOG1MEXP) return act::vm::log1mexp(x);
    }
  }
}

template <int F, class T> void loop(const T* __restrict x, const T* __restrict y, T* __restrict out, long n) {
#pragma omp simd
  for (long i = 0; i < n; i++) out[i] = call<F>(x[i], y[i]);
}

template <class T> int apply(int f, const T* x, const T* y, T* out, long n) {
  switch (f) {
    case EXP: loop<EXP>(x, y, out, n); return 0;
    case EXPM1: loop<EXPM1>(x, y, out, n); return 0;
    case LOG: loop<LOG>(x, y, out, n); return 0;
    case LOG1P: loop<LOG1P>(x, y, out, n); return 0;
    case TANH: loop<TANH>(x, y, out, n); return 0;
    case ERFC: loop<ERFC>(x, y, out, n); return 0;
    case SIN: loop<SIN>(x, y, out, n); return 0;
    case HYPOT: loop<HYPOT>(x, y, out, n); return 0;
    case NORMCDF: loop<NORMCDF>(x, y, out, n); return 0;
    case GAUSS: loop<GAUSS>(x, y, out, n); return 0;
    case COS: loop<COS>(x, y, out, n); return 0;
    case SIN_FAST: loop<SIN_FAST>(x, y, out, n); return 0;
    case COS_FAST: loop<COS_FAST>(x, y, out, n); return 0;
    case EXP_NONPOS: loop<EXP_NONPOS>(x, y, out, n); return 0;
    case SIGMOID: loop<SIGMOID>(x, y, out, n); return 0;
    case XSIGMOID: loop<XSIGMOID>(x, y, out, n); return 0;
    case LOG1MEXP: loop<LOG1MEXP>(x, y, out, n); return 0;
  }
  return -1;
}

// glibc double reference for float results (double is ~2^29 times more precise than float;
// normcdf: x/sqrt2 rounded in double costs ~x^2 2^-53 relative, negligible at float scale).
double ref(int f, double x, double y) {
  switch (f) {
    case EXP: return exp(x);
    case EXPM1: return expm1(x);
    case LOG: return log(x);
    case LOG1P: return log1p(x);
    case TANH: return tanh(x);
    case ERFC: return erfc(x);
    case SIN: case SIN_FAST: return sin(x);
    case COS: case COS_FAST: return cos(x);
    case HYPOT: return hypot(x, y);
    case NORMCDF: return 0.5 * erfc(-x * 0.70710678118654752440);
    case GAUSS: return exp(-0.5 * (x * x));  // x*x exact in double for a float x
    case EXP_NONPOS: return exp(x);
    case SIGMOID: return 1.0 / (1.0 + exp(-x));
    case XSIGMOID: {  // results below half the smallest subnormal round to -0; below -112, +0 (the cut)
      const double r = x / (1.0 + exp(-x));
      return fabs(r) <= 0x1p-150 ? (x <= -112.0 ? 0.0 : -0.0) : r;
    }
    case LOG1MEXP: return x < 0.69314718055994530942 ? log(-expm1(-x)) : log1p(-exp(-x));
  }
  return NAN;
}

// |y - r| in units of the float ulp of r (subnormal ulp 2^-149 at the bottom); 1e9 for a wrong
// special value (NaN, infinity, or the sign of a zero).
double err_f32(float y, double r) {
  if (isnan(r)) return isnan(y) ? 0.0 : 1e9;
  if (isnan(y)) return 1e9;
  float rf = (float)r;
  if (isinf(rf) || isinf(y)) return y == rf ? 0.0 : 1e9;
  if (r == 0 && y == 0) return signbit(r) == signbit(y) ? 0.0 : 1e9;
  double a = fabs(r);
  int e;
  frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
  double ulp = a < 0x1p-126 ? 0x1p-149 : ldexp(1.0, e - 24);
  return fabs((double)y - r) / ulp;
}

}  // namespace

extern "C" {

int act_vm_nfn() { return NFN; }
double act_vm_sin_fast_max_f32() { return act::vm::SIN_FAST_MAX_F32; }
const char* act_vm_name(int f) { return (f >= 0 && f < NFN) ? NAMES[f] : ""; }
int act_vm_f32(int f, const float* x, const float* y, float* out, long n) { return apply(f, x, y, out, n); }
int act_vm_f64(int f, const double* x, const double* y, double* out, long n) { return apply(f, x, y, out, n); }

// 1 when the CPU runs code built with -march=x86-64-v<level> (level 3 or 4).
int act_vm_cpu(int level) {
  __builtin_cpu_init();
  if (level == 3) return __builtin_cpu_supports("x86-64-v3") != 0;
  if (level == 4) return __builtin_cpu_supports("x86-64-v4") != 0;
  return level <= 2;
}

// Max float error (ulps) of function f over the bit patterns start, start + stride, ... (count
// of them, wrapping at 2^32); hypot pairs each x with y = the next pattern's float times 2^-3.
// Writes the worst input and the number of results over 1 ulp.
double act_vm_check_f32(int f, uint64_t start, uint64_t count, uint64_t stride, float* worst,
                        uint64_t* over1) {
  const long B = 2048;
  float x[B], y[B], out[B];
  double mx = 0.0;
  uint64_t bad = 0;
  *worst = 0.0f;
  for (uint64_t done = 0; done < count;) {
    long n = (long)((count - done) < (uint64_t)B ? (count - done) : (uint64_t)B);
    for (long i = 0; i < n; i++) {
      uint32_t u = (uint32_t)(start + (done + (uint64_t)i) * stride);
      uint32_t v = u * 2654435761u;
      memcpy(&x[i], &u, 4);
      memcpy(&y[i], &v, 4);
    }
    apply(f, x, y, out, n);
    for (long i = 0; i < n; i++) {
      double e = err_f32(out[i], ref(f, x[i], y[i]));
      if (e > 1.0) bad++;
      if (e > mx) {
        mx = e;
        *worst = x[i];
      }
    }
    done += (uint64_t)n;
  }
  *over1 = bad;
  return mx;
}

}  // extern "C"
