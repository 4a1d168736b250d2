// vmath.h -- the package's own vectorizable math library (header-only C++17).
//
// The CPU engine's elementwise math, written so that its speed and its results depend neither
// on glibc/libmvec nor on the CPU vendor:
//
//   #include "vmath.h"                       namespace act::vm, float and double overloads:
//   exp  expm1  log  log1p  tanh  erfc  sin  cos  hypot(x, y)
//   log1mexp(x) = log(1 - exp(-x))           (float only: the CPU engine's log1mexp activation)
//   sigmoid(x), xsigmoid(x) = x sigmoid(x)   (float only: rounded once after the exp)
//   exp_nonpos(x) = exp(x) for x <= 0        (float only: the same bits, no overflow handling)
//   squareplus(x, b) = (x + sqrt(x^2 + b))/2, squareplus_grad(x, b)   (float only, in float)
//   normcdf(x) = Phi(x) = erfc(-x/sqrt2)/2   (x/sqrt2 is never rounded before the exp factor)
//   gelu_grad(x) = Phi(x) + x phi(x)         (float only, in double: the terms cancel near -1)
//   gauss(x)   = exp(-x*x/2)                  (x*x handled exactly)
//   sin_fast(x), cos_fast(x): sin and cos for |x| <= SIN_FAST_MAX_F32 (2^16; double: sin, cos,
//   SIN_FAST_MAX_F64 = inf), the same bits as sin / cos there, unspecified beyond; see sin.
//
// Rules this file keeps (the engine relies on them):
// * Every function is `static inline __attribute__((always_inline))` (templates and tables
//   are static too): internal linkage, so translation units built with different -march flags
//   never share an out-of-line copy.  No libm call, no <cmath>, no errno or rounding-mode
//   dependence: only + - * / and sqrt (__builtin_sqrt, __builtin_sqrtf), fma through fma_() (the instruction
//   where __FMA__ is defined, a*b+c otherwise), integer/bit operations, float<->int through bit
//   casts and magic-number rounding, and selects.
// * Branch-free: every ?: is an if-convertible select (both sides are computed), so
//   `#pragma omp simd` loops over any of these functions vectorize (checked with GCC 12 for
//   baseline x86-64/SSE2, x86-64-v3/AVX2 and x86-64-v4/AVX-512, float and double, under the
//   engine's flags -O3 -fopenmp-simd -fno-math-errno -fno-trapping-math -ffp-contract=off).
// * Results do not depend on the vector width: no reductions, no width-dependent operation, so
//   the AVX-512 build, the AVX2 build and both compiled without vectorization give the same bits.
//   The baseline build (no FMA instruction) rounds a*b+c twice where fma_ is used and so differs
//   in the last bit sometimes; every exactness-critical product uses two_prod (FMA or Dekker)
//   or split constants, so it meets the same error bounds (double erfc/normcdf: see below).
// * The only memory reads besides constants are the Payne-Hanek table rows of sin and cos (one
//   gather per table column, see sin; not in sin_fast / cos_fast).  Some float functions
//   compute in double internally (marked [double] below): their loops mix float and double
//   vectors, which GCC handles.  The float exp, gauss, normcdf and the sin/cos fast path
//   compute in float (8 lanes per AVX2 vector), with exact products (fma or two_prod),
//   Cody-Waite splits and float pairs where a rounding would cost accuracy.
// * Selects whose operands are cheap to recompute are written with sel_ (bit masks): with a
//   plain ?: GCC may duplicate the code that follows for both values and blend every result.
//
// Special values (IEEE/C99): NaN -> NaN (double tanh, erfc and normcdf return x itself, so that
// every build gives its payload); exp(-inf) = 0, exp(+inf) = inf, expm1(-inf) = -1,
// log(0) = -inf, log(x<0) = NaN, log1p(-1) = -inf, log1p(x<-1) = NaN, tanh(+-inf) = +-1,
// erfc(-inf) = 2, erfc(inf) = 0, normcdf(-inf) = 0, normcdf(inf) = 1, gauss(+-inf) = 0,
// sin(+-inf) = cos(+-inf) = NaN, cos(+-0) = 1, hypot(+-inf, NaN) = inf; expm1, log1p, tanh,
// sin and sin_fast keep the sign of zero;
// exp/expm1 overflow to inf exactly where the rounded result does; subnormal inputs and
// results are computed, never flushed (the last scaling by 2^k is split in two normal factors,
// so a subnormal result is rounded once).
//
// Methods, polynomial blocks (generated, see the end of this comment) and measured maximum
// errors in ulps.  float: all 2^32 inputs against glibc's double functions (hypot: 2^32 pairs);
// double: dense sweeps (every binade of both signs, fine grids over the busy ranges, the
// thresholds and branch points, random points; ~1.5 million points per function) against
// libquadmath and mpmath.  Same figures for the AVX-512, AVX2 and scalar builds (identical bits).
//
// exp     k = rint(x/ln2), r = x - k ln2 (Cody-Waite, k*LN2_HI exact, |r| <= 0.347).
//         float: 1 + r + r^2/2 + r^3 P(r), P of degree 3 (EXP_F32), Horner.
//         double: the same with P of degree 9 (EXP_F64), r kept as an exact pair rh + rl and
//         1 + rh summed exactly.  Then 2^k as two factors.  Clamped inputs: NaN passes.
//         max: float 0.91 (no-FMA build: 1 + r summed exactly, 0.82), double 0.76
//         (subnormal results; 0.59 normal)
// expm1   float [double]: k, r as above with one-FMA reduction, expm1(r) = r + r^2 P(r)
//         (EXP_LITE, degree 5), 2^k expm1(r) + (2^k - 1).  double: 2^k(H + B) + (2^k - 1) with
//         H = rh + rh^2/2 exact (two_prod), B = rh^3 P(rh) + ..., the large terms summed with
//         two_sum (the k = 1 cancellation otherwise costs 1.2 ulp).   max: float 0.504,
//         double 0.60
// log     x = 2^e m, m in [sqrt(1/2), sqrt2), f = m - 1 exact, s = f/(2+f),
//         log = e ln2 + f - f^2/2 + s (f^2/2 + R(s^2)), R of degree 4 / 8 (LOG_F32, LOG_F64);
//         subnormal x scaled by 2^23 / 2^54 first.          max: float 0.84, double 0.83
// log1p   u = 1 + x with its exact error c (two_sum); log(u) as above plus c/u, computed as
//         c 2^-e (1 - 2s + 2s^2) without a second division.  max: float 0.875, double 0.85
// tanh    float [double]: em/(em + 2), em = expm1(2|x|) (EXP_LITE), sign restored.
//         double: |x| < 0.3: x + x^3 P(x^2), degree 7 (TANH_F64); else 1 - 2/(1 + e),
//         e = exp(2|x|) as an exact pair, the division corrected by its exact residual and
//         1 - q summed exactly.                              max: float 0.503, double 0.59
// erfc    float [double]: exp(-a^2) P(t), a = |x|, t = 1/(1 + 11a/32), P of degree 10
//         (ERFCX_F32, 0 <= a <= 10.5); a^2 exact in double; x < 0: 2 - erfc(a).
//         double: |x| < 0.47: 1 - erf(x), erf = x (2/sqrt(pi) + x^2 P(x^2)), P of degree 7
//         (ERF_F64), x 2/sqrt(pi) as an exact pair.  Else exp(-a^2) R(a): a^2 exact
//         (two_prod), exp of the pair as hi + lo; R = P(t), t = 4/(4+a), degree 21 (ERFCX_F64,
//         0.47 <= a <= 27.5), the last six Horner steps as exact pairs (the partial sums are as
//         large as the result there), the error of t's rounding corrected to first order with
//         R'(a) = 2aR - 2/sqrt(pi).  max: float 0.553, double 0.97 (baseline, no FMA: 1.50)
// normcdf double: the erfc code with z = -x/sqrt2 kept as an exact pair (its low part enters
//         both the erf branch and the t correction) and z^2 = x^2/2 exact; the result halved
//         inside the final scaling (subnormal results rounded once).
//         float, in float: Q = Phi(-a), a = |x| <= 14.5, as exp(-a^2/2) R(a) with
//         exp(-a^2/2) = 2^k exp(-s/2) from gauss below, R(a) = th (1 + rho) (1/2 + w(a)):
//         th = 1/(1 + a) rounded and its relative error rho from the exact residual (1 + a an
//         exact pair), w = R(a)(1 + a) - 1/2 in [-0.08, 0.03] as y Q(v), y = a/(2 + a)
//         (relative precision for small a), Q a polynomial of degree 11 in v = 1/(1 + a/2) -
//         0.375 (NCDF_F32; v exact); then Q 2^-k = th/2 + th W with
//         W = (1/2 + w)(1 + rho)(1 + exp(-s/2) - 1) - 1/2 summed so that only W (|W| < 0.31)
//         and the final fma round.  x > 0: 1 - Q (fma); subnormal results rounded once.
//         max: float 1.357 (baseline, no FMA: 1.384; float budget 1.5 ulp), double 0.96
//         (baseline: 1.46)
// gauss   exp(-x^2/2).  float, in float: a = |x| <= 14.5, a^2 = h + l exact (two_prod),
//         k = rint(-h/(2 ln2)), s = h + 2k ln2 + l (k*2LN2_HI exact, |s| <= 0.694),
//         exp(-a^2/2) = 2^k exp(-s/2), 2 exp(-s/2) = 2 + s B(s) (GAUSS_F32, degree 5) rounded
//         once, then 2^(k+64) (exact) and 2^-65 (one rounding, subnormals).  normcdf shares
//         this code (GELU's derivative calls both).   double: x^2 = hi + lo exact (two_prod),
//         exp of the pair.  max: float 0.925 (baseline: the same), double 0.75
// hypot   float [double]: sqrt(x^2 + y^2), squares exact in double.  double: operands scaled
//         by 2^-600/2^600 beyond 2^+-500, x^2 + y^2 as an exact-ish pair, sqrt then one
//         correction step h + (S - h^2)/(2h).          max: float 0.500, double 0.70
// sin,    float fast path (sin_fast, cos_fast), |x| <= 2^16, in float: j = rint(x 2/pi),
// cos     x - j pi/2 = rh + rl with pi/2 = P1 + P2 + P3 (72 bits): x - j P1 exact (fma),
//         j P2 an exact pair, the difference by Fast2Sum, - j P3 into rl (the closest float
//         to a multiple of pi/2 below 2^16 is 2^-27.8 from it; the pair keeps 2^-60 there);
//         sin = rh + (rl + rh^3 S(rh^2)), cos = (1 - rh^2/2) + (rh^4 C(rh^2) - rh rl - ...),
//         rh^2 an exact pair and 1 - rh^2/2 summed exactly; S, C of degree 2 (SIN_F32,
//         COS_F32); quadrant select and sign by j mod 4.
//         Payne-Hanek (float [double] for |x| > 2^16 and every double): |x| = M 2^E0 with M
//         the significand shifted by the low bits of the exponent (an integer), x 2/pi mod 4 =
//         M G mod 4, G = 2^E0 2/pi mod 4 read from a table row chosen by the exponent
//         (SIN_PH_F32: 32 rows of 2 doubles; SIN_PH_F64: 66 rows of 4 doubles; gathers, the
//         library's only table lookups).  Products exact (two_prod), integer parts removed
//         exactly, the cancelling terms added with two_sum, so the reduced argument keeps its
//         relative accuracy at the worst cases (2^-61 for doubles).  Then sin or cos of r in
//         [-pi/4, pi/4] by quadrant: float degree 3+3 (SIN_LITE, COS_LITE), double 6+6
//         (SIN_F64, COS_F64) with r as a pair.  |x| < 2^-12 / 2^-26: sin(x) = x; double
//         |x| < 2^-27: cos(x) = 1.
//         Float sin and cos compute both paths and select (~7 ns/element); sin_fast and
//         cos_fast are the fast path alone.  A vector loop that wants the speed computes a
//         block with sin_fast / cos_fast and, if some |x| in it exceeds SIN_FAST_MAX_F32 or is
//         NaN/inf (!(|x| <= SIN_FAST_MAX_F32)), recomputes the block (or those elements) with
//         sin / cos: the results are those of sin / cos in every case.
//         max: float sin 0.873, cos 0.876 (baseline: 0.908, 0.906), double sin 0.78, cos 0.75
//         (baseline 0.77, 0.76)
//
// Speed (AVX2, one thread, arrays of 4096 in L1, ns/element; the machine of this measurement
// is a first-generation AMD EPYC, which executes 256-bit operations as two halves):
//            float:  ours  libmvec  numpy     double:  ours  libmvec  numpy
//   exp               1.29    0.82     3.25               4.18    2.37     6.51
//   expm1             2.26    1.39    18.5                5.91    2.57    16.4
//   log               1.94    0.91     4.14               4.94    2.90     5.66
//   log1p             2.02    1.54    15.2                4.94    3.99    14.6
//   tanh              2.86    1.69     6.10               9.51    5.05    28.8
//   erfc              4.45    1.50      -                23.0     4.33      -
//   normcdf           3.8     1.62 (a)  -                24.7     4.56 (a)  -
//   gauss             1.5     0.95 (b)  -                 4.77    2.61 (b)  -
//   hypot             1.36    0.80     5.95               5.04    2.32    24.1
//   sin               6.7     0.96     3.31              15.6     2.46    21.2
//   sin_fast, cos_fast 2.0 (|x| <= SIN_FAST_MAX_F32)
// (float normcdf, gauss, sin and the fast paths: timed against the previous versions in one run
// on a loaded machine, the ratio applied to the figures above)
// libmvec: glibc 2.36, the same loops over expf/exp... (declared with __FAST_MATH__, calling
// _ZGVdN8v_expf etc.); (a) 0.5*erfc(-x/sqrt2), (b) exp(-x*x/2), both less accurate than ours.
// libmvec runs a short polynomial and sends special lanes (subnormal results, overflow,
// huge sin arguments...) to a scalar branch; these functions handle them inline, branch-free,
// which costs 1.5-2.5x for float (sin: Payne-Hanek always, 5.6x; double erfc/normcdf: the
// compensated arithmetic for < 1 ulp, 5x).  numpy 2.4 ufuncs (their AVX2 loops) for reference.
//
// Coefficients: every polynomial and table between the BEGIN/END GENERATED markers below is
// produced by kernels/cpu/fit_vmath.py (mpmath, 160 bits: discrete Remez exchange on a
// weighted minimax problem, then rounding to float/double one coefficient at a time with the
// rounding error of each absorbed by the remaining ones).  Regenerate them all with
//     python kernels/cpu/fit_vmath.py --header kernels/cpu/vmath.h all      (about 30 s)
// or one block by name (`--list` lists them); each block's comment names its block and the
// measured error of its rounded coefficients.  Tests: tests/test_vmath.py (pytest); the
// exhaustive float check: python tests/test_vmath.py --exhaustive [base|v3|v4].
#pragma once

#include <stdint.h>

#define ACT_VM_INLINE static inline __attribute__((always_inline))

namespace act {
namespace vm {
namespace detail {

// ------------------------------------------------------------------------------------------
// Helpers: bit casts, explicit FMA, error-free transformations, magic-number rounding.
// ------------------------------------------------------------------------------------------
ACT_VM_INLINE uint32_t f2u(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  return u;
}
ACT_VM_INLINE float u2f(uint32_t u) {
  float x;
  __builtin_memcpy(&x, &u, 4);
  return x;
}
ACT_VM_INLINE uint64_t d2u(double x) {
  uint64_t u;
  __builtin_memcpy(&u, &x, 8);
  return u;
}
ACT_VM_INLINE double u2d(uint64_t u) {
  double x;
  __builtin_memcpy(&x, &u, 8);
  return x;
}

// a*b + c: one rounding where the target has an FMA instruction, two otherwise.  Every
// place where the difference matters for accuracy uses two_prod (exact either way) instead.
ACT_VM_INLINE float fma_(float a, float b, float c) {
#ifdef __FMA__
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}
ACT_VM_INLINE double fma_(double a, double b, double c) {
#ifdef __FMA__
  return __builtin_fma(a, b, c);
#else
  return a * b + c;
#endif
}

template <class T> struct dw {  // unevaluated sum hi + lo
  T hi, lo;
};

// a*b = hi + lo exactly (barring over/underflow; Dekker/Veltkamp without FMA, so |a|, |b| must
// stay below 2^995 there).
ACT_VM_INLINE dw<double> two_prod(double a, double b) {
  double p = a * b;
#ifdef __FMA__
  return {p, __builtin_fma(a, b, -p)};
#else
  double ca = 134217729.0 * a, cb = 134217729.0 * b;
  double ah = ca - (ca - a), al = a - ah, bh = cb - (cb - b), bl = b - bh;
  return {p, ((ah * bh - p) + ah * bl + al * bh) + al * bl};
#endif
}
ACT_VM_INLINE dw<float> two_prod(float a, float b) {
  float p = a * b;
#ifdef __FMA__
  return {p, __builtin_fmaf(a, b, -p)};
#else
  float ca = 4097.0f * a, cb = 4097.0f * b;
  float ah = ca - (ca - a), al = a - ah, bh = cb - (cb - b), bl = b - bh;
  return {p, ((ah * bh - p) + ah * bl + al * bh) + al * bl};
#endif
}
// a + b = hi + lo exactly, any order of magnitude.
template <class T> ACT_VM_INLINE dw<T> two_sum(T a, T b) {
  T s = a + b, bb = s - a;
  return {s, (a - (s - bb)) + (b - bb)};
}
// a + b = hi + lo exactly when |a| >= |b| (or a == 0).
template <class T> ACT_VM_INLINE dw<T> fast_two_sum(T a, T b) {
  T s = a + b;
  return {s, b - (s - a)};
}

// c - a*b when that number is representable (Cody-Waite steps, division residuals): one FMA;
// without FMA, a*b = p + e exactly (two_prod) and (c - p) - e: c - p is exact (Sterbenz) and the
// second subtraction is exact because its result is representable.
ACT_VM_INLINE float fnma_exact(float a, float b, float c) {
#ifdef __FMA__
  return __builtin_fmaf(-a, b, c);
#else
  dw<float> p = two_prod(a, b);
  return (c - p.hi) - p.lo;
#endif
}
// a*b + c rounded once (to within a tiny error without FMA: two_prod, two_sum): for final
// steps whose double rounding would cost the no-FMA build half an ulp.
ACT_VM_INLINE float fma_acc(float a, float b, float c) {
#ifdef __FMA__
  return __builtin_fmaf(a, b, c);
#else
  dw<float> p = two_prod(a, b);
  dw<float> t = two_sum(c, p.hi);
  return t.hi + (t.lo + p.lo);
#endif
}
// x where cond, else y, through bit masks: a ?: whose operands are cheap to recompute lets GCC
// duplicate the code that follows for both values and blend each result (a clamp of the input
// then costs a blend per intermediate); this form always compiles to one blend.
ACT_VM_INLINE float sel_(bool cond, float x, float y) {
  uint32_t m = 0u - (uint32_t)cond;
  return u2f((f2u(x) & m) | (f2u(y) & ~m));
}

// Round to the nearest integer (ties to even), valid for |x| < 2^22 (float) / 2^51 (double);
// the integer is also available in the low bits of the intermediate sum.
ACT_VM_INLINE float rint_(float x) { return (x + 0x1.8p23f) - 0x1.8p23f; }
ACT_VM_INLINE double rint_(double x) { return (x + 0x1.8p52) - 0x1.8p52; }

static constexpr float INF_F = __builtin_inff();
static constexpr double INF_D = __builtin_inf();
static constexpr float NAN_F = __builtin_nanf("");
static constexpr double NAN_D = __builtin_nan("");

// All-ones when a < b, else 0, for a, b < 2^63 (2^31): computed with integer arithmetic only,
// no compare.  sin uses these masks for its selects: a plain ?: there lets GCC put the table
// loads under a branch, which then needs masked gathers (and fails to vectorize).
ACT_VM_INLINE uint64_t lt_mask(uint64_t a, uint64_t b) { return (uint64_t)0 - ((a - b) >> 63); }
ACT_VM_INLINE uint32_t lt_mask(uint32_t a, uint32_t b) { return (uint32_t)0 - ((a - b) >> 31); }
ACT_VM_INLINE uint64_t sel_mask(uint64_t m, uint64_t a, uint64_t b) { return (a & m) | (b & ~m); }
ACT_VM_INLINE uint32_t sel_mask(uint32_t m, uint32_t a, uint32_t b) { return (a & m) | (b & ~m); }

// lo <= x <= hi; NaN passes.  (Two independent compare/blend pairs: nested ?: on the same
// value makes GCC merge the conditions into a longer mask computation.)
template <class T> ACT_VM_INLINE T clamp_(T x, T lo, T hi) {
  T a = x > hi ? hi : x;
  return x < lo ? lo : a;
}
ACT_VM_INLINE float abs_(float x) { return u2f(f2u(x) & 0x7fffffffu); }
ACT_VM_INLINE double abs_(double x) { return u2d(d2u(x) & 0x7fffffffffffffffull); }
ACT_VM_INLINE float copysign_(float mag, float sgn) {
  return u2f(f2u(mag) | (f2u(sgn) & 0x80000000u));
}
ACT_VM_INLINE double copysign_(double mag, double sgn) {
  return u2d(d2u(mag) | (d2u(sgn) & 0x8000000000000000ull));
}

// Polynomial c[0] + c[1] x + ... + c[N-1] x^(N-1) by Estrin's scheme (short dependency
// chains); x2 = x^2, x4 = x^4, x8 = x^8, x16 = x^16 (unused powers are dead code).
template <int N, class T>
ACT_VM_INLINE T poly(const T* c, T x, T x2, T x4, T x8, T x16) {
  if constexpr (N == 1) {
    return c[0];
  } else if constexpr (N == 2) {
    return fma_(c[1], x, c[0]);
  } else if constexpr (N <= 4) {
    return fma_(poly<N - 2>(c + 2, x, x2, x4, x8, x16), x2, fma_(c[1], x, c[0]));
  } else if constexpr (N <= 8) {
    return fma_(poly<N - 4>(c + 4, x, x2, x4, x8, x16), x4, poly<4>(c, x, x2, x4, x8, x16));
  } else if constexpr (N <= 16) {
    return fma_(poly<N - 8>(c + 8, x, x2, x4, x8, x16), x8, poly<8>(c, x, x2, x4, x8, x16));
  } else {
    return fma_(poly<N - 16>(c + 16, x, x2, x4, x8, x16), x16, poly<16>(c, x, x2, x4, x8, x16));
  }
}
template <int N, class T> ACT_VM_INLINE T horner(const T* c, T x) {
  if constexpr (N == 1) {
    return c[0];
  } else {
    return fma_(horner<N - 1>(c + 1, x), x, c[0]);
  }
}
template <int N, class T> ACT_VM_INLINE T horner(const T (&c)[N], T x) {
  return horner<N>(&c[0], x);
}
template <int N, class T> ACT_VM_INLINE T poly(const T (&c)[N], T x) {
  T x2 = x * x, x4 = x2 * x2, x8 = x4 * x4;
  return poly<N>(c, x, x2, x4, x8, x8 * x8);
}

// ---- BEGIN GENERATED (kernels/cpu/fit_vmath.py --header vmath.h all) ----
// [constants] generated by kernels/cpu/fit_vmath.py constants
//   LN2_F32: ln2 = HI + LO, HI with 16 bits (k*HI exact for |k| < 2^8)
static constexpr float LN2_F32_HI = 0x1.62e4p-1f, LN2_F32_LO = 0x1.7f7d1cp-20f;
//   LN2_F64: ln2 = HI + LO, HI with 42 bits (k*HI exact for |k| < 2^11)
static constexpr double LN2_F64_HI = 0x1.62e42fefa3800p-1, LN2_F64_LO = 0x1.ef35793c76730p-45;
static constexpr float LOG2E_F32 = 0x1.715476p+0f;
static constexpr double LOG2E_F64 = 0x1.71547652b82fep+0;
static constexpr double LN2_D = 0x1.62e42fefa39efp-1;
static constexpr double RSQRT2_HI = 0x1.6a09e667f3bcdp-1,
                        RSQRT2_LO = -0x1.bdd3413b26456p-55;
static constexpr double TWO_RSQRTPI = 0x1.20dd750429b6dp+0,
                        TWO_RSQRTPI_LO = 0x1.1ae3a914fed80p-56;
static constexpr double PIO2_HI = 0x1.921fb54442d18p+0, PIO2_LO = 0x1.1a62633145c07p-54;
//   PIO2_F32: pi/2 = P1 + P2 + P3 + O(2^-76), three floats (sin/cos fast reduction)
static constexpr float PIO2_F32_1 = 0x1.921fb6p+0f, PIO2_F32_2 = -0x1.777a5cp-25f,
                       PIO2_F32_3 = -0x1.ee59dap-50f;
static constexpr float TWOOPI_F32 = 0x1.45f306p-1f;
// [exp_f32] generated by kernels/cpu/fit_vmath.py exp_f32: exp(r) = 1 + r + r^2/2 + sum c[i]
//   r^(i+3), |r| <= 0.347; max rel err 2^-27.8
static constexpr float EXP_F32[4] = {
    0x1.555466p-3f, 0x1.555302p-5f, 0x1.1257f4p-7f, 0x1.6feb58p-10f};
// [exp_lite] generated by kernels/cpu/fit_vmath.py exp_lite: expm1(r) = r + r^2 sum c[i] r^i, |r|
//   <= 0.347; max rel err 2^-31.9
static constexpr double EXP_LITE[6] = {
    0x1.0000002630e4dp-1, 0x1.555554eede0ecp-3, 0x1.5554b0720bb5ep-5, 0x1.111189f37531cp-7,
    0x1.6d72bf821daf0p-10, 0x1.a032cad6dc20bp-13};
// [exp_mid] generated by kernels/cpu/fit_vmath.py exp_mid: exp(r) = 1 + r + r^2/2 + sum c[i]
//   r^(i+3), |r| <= 0.347; max rel err 2^-51.1
static constexpr double EXP_MID[8] = {
    0x1.555555554ef68p-3, 0x1.555555554232bp-5, 0x1.1111112a4c059p-7, 0x1.6c16c1e26cb88p-10,
    0x1.a0197d0b1cbd9p-13, 0x1.a0184402047aep-16, 0x1.72fac9af131f5p-19, 0x1.2a239aa21b455p-22};
// [log_f32] generated by kernels/cpu/fit_vmath.py log_f32: R(z) = 2atanh(s)/s - 2 = sum c[i]
//   z^(i+1), z = s^2 <= 0.02944; max abs err 2^-34.0
static constexpr float LOG_F32[4] = {0x1.555554p-1f, 0x1.999bd4p-2f, 0x1.23f1ap-2f, 0x1.ec1e42p-3f};
// [exp_f64] generated by kernels/cpu/fit_vmath.py exp_f64: exp(r) = 1 + r + r^2/2 + sum c[i]
//   r^(i+3), |r| <= 0.347; max rel err 2^-63.5
static constexpr double EXP_F64[10] = {
    0x1.555555555555dp-3, 0x1.555555555556cp-5, 0x1.111111110e464p-7, 0x1.6c16c16c091d4p-10,
    0x1.a01a01b699977p-13, 0x1.a01a01f64ac5dp-16, 0x1.71dde869c1950p-19, 0x1.27e4198ab69bap-22,
    0x1.af792ce69c226p-26, 0x1.20bc00fb8b996p-29};
// [log_f64] generated by kernels/cpu/fit_vmath.py log_f64: R(z) = 2atanh(s)/s - 2 = sum c[i]
//   z^(i+1), z = s^2 <= 0.02944; max abs err 2^-65.6
static constexpr double LOG_F64[8] = {
    0x1.5555555555555p-1, 0x1.9999999999d0bp-2, 0x1.249249243a19dp-2, 0x1.c71c724aa830cp-3,
    0x1.745ce203ca8a6p-3, 0x1.3b201abec42f5p-3, 0x1.0f681751c927fp-3, 0x1.0f06a6a337e6cp-3};
// [tanh_f64] generated by kernels/cpu/fit_vmath.py tanh_f64: tanh(x) = x + x^3 sum c[i] x^(2i),
//   |x| <= 0.3; max rel err 2^-60.4
static constexpr double TANH_F64[8] = {
    -0x1.5555555555548p-2, 0x1.111111110eb98p-3, -0x1.ba1ba1b599291p-5, 0x1.664f466842513p-6,
    -0x1.226daa1b0cc0ep-7, 0x1.d6a9b2750cd22p-9, -0x1.79eb5d05b5c43p-10, 0x1.076bd44dbf1a4p-11};
// [erfcx_f32] generated by kernels/cpu/fit_vmath.py erfcx_f32: erfc(a) exp(a^2) = sum c[i] t^i, t
//   = 1/(1 + 0.34375 a), 0 <= a <= 10.5; max rel err 2^-28.2
static constexpr double ERFCX_F32[11] = {
    -0x1.081a8eaa932bap-17, 0x1.8d8c3c9262530p-3, 0x1.89ce1db320d90p-3, 0x1.873771546f582p-3,
    0x1.12b70556a45b8p-3, 0x1.535388d186df3p-3, 0x1.71a4efa2a40f1p-4, -0x1.0ff62db43c42cp-4,
    0x1.f10c136b03864p-3, -0x1.7bc46445c60bdp-3, 0x1.5522dbe31b2e5p-5};
// [erf_f64] generated by kernels/cpu/fit_vmath.py erf_f64: erf(x) = x (2/sqrt(pi) + x^2 sum c[i]
//   x^(2i)), |x| <= 0.47; max rel err 2^-59.3
static constexpr double ERF_F64[8] = {
    -0x1.812746b0379dap-2, 0x1.ce2f21a040e6dp-4, -0x1.b82ce311161eep-6, 0x1.565bcc819c5afp-8,
    -0x1.c02d78c8dc322p-11, 0x1.f9949e5671f9dp-14, -0x1.f2bedb970171dp-17, 0x1.90b92484628cbp-20};
// [erfcx_f64] generated by kernels/cpu/fit_vmath.py erfcx_f64: erfc(a) exp(a^2) = sum c[i] t^i, t
//   = 1/(1 + 0.25 a), 0.47 <= a <= 27.5; max rel err 2^-58.9
static constexpr double ERFCX_F64[22] = {
    0x1.03463ef9301a1p-42, 0x1.20dd75035df35p-3, 0x1.20dd7526153d6p-3, 0x1.17d6860bf5e67p-3,
    0x1.05c8e9a223e74p-3, 0x1.d713e83e39628p-4, 0x1.95d704165c296p-4, 0x1.4ab66ad70e768p-4,
    0x1.0775ba51e3e8dp-4, 0x1.2b3de8437a2fdp-5, 0x1.e5307075ac0e4p-5, -0x1.2ac7b1bf72f01p-4,
    0x1.cbab90289a029p-3, -0x1.b496810fe0cf5p-2, 0x1.5d3054cd620e3p-1, -0x1.bf375db70ff1cp-1,
    0x1.bed9c39bc3796p-1, -0x1.56da4e7a36b0ap-1, 0x1.7ea215a8d20e9p-2, -0x1.1ee9a57283a93p-3,
    0x1.00641a6627f9ap-5, -0x1.9c5ad17fb045dp-9};
// [sin_lite] generated by kernels/cpu/fit_vmath.py sin_lite: sin(r) = r + r^3 sum c[i] r^(2i),
//   |r| <= 0.786; max rel err 2^-37.5
static constexpr double SIN_LITE[4] = {
    -0x1.5555554c63be9p-3, 0x1.11110860239dap-7, -0x1.a00f76e3a44bep-13, 0x1.6ccff81e6aff2p-19};
// [cos_lite] generated by kernels/cpu/fit_vmath.py cos_lite: cos(r) = 1 - r^2/2 + r^4 sum c[i]
//   r^(2i), |r| <= 0.786; max rel err 2^-42.9
static constexpr double COS_LITE[4] = {
    0x1.5555554ecf255p-5, -0x1.6c16b81f03b4ep-10, 0x1.a010d78eef512p-16, -0x1.241d1e09b72d6p-22};
// [sin_f64] generated by kernels/cpu/fit_vmath.py sin_f64: sin(r) = r + r^3 sum c[i] r^(2i), |r|
//   <= 0.786; max rel err 2^-62.9
static constexpr double SIN_F64[7] = {
    -0x1.5555555555555p-3, 0x1.111111111108bp-7, -0x1.a01a01a006da9p-13, 0x1.71de3a401ed16p-19,
    -0x1.ae643d4e6264ep-26, 0x1.6114aeaeff113p-33, -0x1.a561f1155bec4p-41};
// [cos_f64] generated by kernels/cpu/fit_vmath.py cos_f64: cos(r) = 1 - r^2/2 + r^4 sum c[i]
//   r^(2i), |r| <= 0.786; max rel err 2^-68.6
static constexpr double COS_F64[7] = {
    0x1.5555555555555p-5, -0x1.6c16c16c16b49p-10, 0x1.a01a01a001fcfp-16, -0x1.27e4fb60dd1a8p-22,
    0x1.1eed77c05ff52p-29, -0x1.937e1280505f1p-37, 0x1.a2271a7f2a145p-45};
// [sin_ph] generated by kernels/cpu/fit_vmath.py sin_ph: Payne-Hanek tables
//   row j (j = float biased exponent >> 3): (2^(8j-150) * 2/pi) mod 4 = g0 + g1
static const double SIN_PH_F32[32][2] = {
    {0x1.45f306dc9c883p-151, -0x1.6b01ec5417056p-205},
    {0x1.45f306dc9c883p-143, -0x1.6b01ec5417056p-197},
    {0x1.45f306dc9c883p-135, -0x1.6b01ec5417056p-189},
    {0x1.45f306dc9c883p-127, -0x1.6b01ec5417056p-181},
    {0x1.45f306dc9c883p-119, -0x1.6b01ec5417056p-173},
    {0x1.45f306dc9c883p-111, -0x1.6b01ec5417056p-165},
    {0x1.45f306dc9c883p-103, -0x1.6b01ec5417056p-157},
    {0x1.45f306dc9c883p-95, -0x1.6b01ec5417056p-149},
    {0x1.45f306dc9c883p-87, -0x1.6b01ec5417056p-141},
    {0x1.45f306dc9c883p-79, -0x1.6b01ec5417056p-133},
    {0x1.45f306dc9c883p-71, -0x1.6b01ec5417056p-125},
    {0x1.45f306dc9c883p-63, -0x1.6b01ec5417056p-117},
    {0x1.45f306dc9c883p-55, -0x1.6b01ec5417056p-109},
    {0x1.45f306dc9c883p-47, -0x1.6b01ec5417056p-101},
    {0x1.45f306dc9c883p-39, -0x1.6b01ec5417056p-93},
    {0x1.45f306dc9c883p-31, -0x1.6b01ec5417056p-85},
    {0x1.45f306dc9c883p-23, -0x1.6b01ec5417056p-77},
    {0x1.45f306dc9c883p-15, -0x1.6b01ec5417056p-69},
    {0x1.45f306dc9c883p-7, -0x1.6b01ec5417056p-61},
    {0x1.45f306dc9c883p+1, -0x1.6b01ec5417056p-53},
    {0x1.f306dc9c882a5p+1, 0x1.fc2757d1f534ep-54},
    {0x1.06dc9c882a540p+1, -0x1.ec54170565912p-53},
    {0x1.b9391054a7f0ap+0, -0x1.505c1596447e5p-55},
    {0x1.391054a7f09d6p+0, -0x1.70565911f924fp-57},
    {0x1.1054a7f09d5f4p+0, 0x1.f534ddc0db629p-54},
    {0x1.529fc2757d1f5p-2, 0x1.a6ee06db14acdp-57},
    {0x1.4fe13abe8fa9ap-1, 0x1.bb81b6c52b328p-55},
    {0x1.f84eafa3ea69cp+1, -0x1.1f924eb53361ep-53},
    {0x1.3abe8fa9a6ee0p-1, 0x1.b6c52b3278872p-55},
    {0x1.5f47d4d377037p+0, -0x1.3ad4cd8778df8p-55},
    {0x1.a3ea69bb81b6cp+1, 0x1.4acc9e21c8210p-53},
    {0x1.ea69bb81b6c53p+1, -0x1.3361de37df00dp-53},
};
//   row i (i = (double biased exponent >> 4) - 62):
//   (2^(16(i+62)-1075) * 2/pi) mod 4 = g0 + g1 + g2 + g3
static const double SIN_PH_F64[66][4] = {
    {0x1.45f306dc9c883p-84, -0x1.6b01ec5417056p-138,
     -0x1.6447e493ad4cep-192, 0x1.e21c820ff28b2p-246},
    {0x1.45f306dc9c883p-68, -0x1.6b01ec5417056p-122,
     -0x1.6447e493ad4cep-176, 0x1.e21c820ff28b2p-230},
    {0x1.45f306dc9c883p-52, -0x1.6b01ec5417056p-106,
     -0x1.6447e493ad4cep-160, 0x1.e21c820ff28b2p-214},
    {0x1.45f306dc9c883p-36, -0x1.6b01ec5417056p-90,
     -0x1.6447e493ad4cep-144, 0x1.e21c820ff28b2p-198},
    {0x1.45f306dc9c883p-20, -0x1.6b01ec5417056p-74,
     -0x1.6447e493ad4cep-128, 0x1.e21c820ff28b2p-182},
    {0x1.45f306dc9c883p-4, -0x1.6b01ec5417056p-58,
     -0x1.6447e493ad4cep-112, 0x1.e21c820ff28b2p-166},
    {0x1.9836e4e44152ap+1, -0x1.ec54170565912p-58,
     0x1.b6c52b3278872p-116, 0x1.07f9458eaf7afp-173},
    {0x1.c9c882a53f84fp+0, -0x1.4170565911f92p-54,
     -0x1.3ad4cd8778df8p-108, 0x1.fe5163abdebbcp-163},
    {0x1.054a7f09d5f48p-1, -0x1.596447e493ad5p-56,
     0x1.93c439041fe51p-111, 0x1.8eaf7aef1586ep-165},
    {0x1.3f84eafa3ea6ap+0, -0x1.11f924eb53362p-54,
     0x1.0e4107f9458ebp-109, -0x1.0a21d4f246dc9p-166},
    {0x1.d5f47d4d37703p-1, 0x1.b6295993c4390p-55,
     0x1.07f9458eaf7afp-109, -0x1.d4f246dc8e2dfp-166},
    {0x1.1f534ddc0db63p+1, -0x1.a99b0ef1bef80p-53,
     -0x1.ae9c5421443aap-107, 0x1.b7246e3a424ddp-163},
    {0x1.4ddc0db629599p+1, 0x1.e21c820ff28b2p-54,
     -0x1.508510ea79237p-109, 0x1.b8e909374b802p-165},
    {0x1.b6c52b3278872p-4, 0x1.07f9458eaf7afp-61,
     -0x1.d4f246dc8e2dfp-118, 0x1.374b801924bbbp-173},
    {0x1.4acc9e21c8210p-2, -0x1.ae9c5421443aap-59,
     0x1.b7246e3a424ddp-115, 0x1.700324977504fp-170},
    {0x1.93c439041fe51p+1, 0x1.8eaf7aef1586ep-53,
     -0x1.b7238b7b645a4p-108, 0x1.924bba8274648p-169},
    {0x1.c820ff28b1d5fp-2, -0x1.443a9e48db91cp-59,
     -0x1.6f6c8b47fe6dbp-113, -0x1.115f62e6de302p-167},
    {0x1.fe5163abdebbcp-3, 0x1.586dc91b8e909p-57,
     0x1.ba5c00c925dd4p-112, 0x1.3a32439fc3bd6p-168},
    {0x1.163abdebbc562p+1, -0x1.236e4716f6c8bp-53,
     -0x1.1ff9b6d115f63p-107, 0x1.921cfe1deb1cbp-163},
    {0x1.7bd778ac36e49p+0, -0x1.1c5bdb22d1ffap-55,
     0x1.24bba82746487p-109, 0x1.fc3bd63962535p-164},
    {0x1.bc561b7246e3ap+1, 0x1.09374b801924cp-53,
     -0x1.15f62e6de301ep-107, -0x1.0a71a76b2c609p-162},
    {0x1.b7246e3a424ddp-3, 0x1.700324977504fp-58,
     -0x1.cdbc603c429c7p-112, 0x1.894d39f74411bp-166},
    {0x1.1b8e909374b80p-1, 0x1.924bba8274648p-57,
     0x1.cfe1deb1cb12ap-111, -0x1.63045df7282b4p-165},
    {0x1.a424dd2e00649p+1, 0x1.77504e8c90e7fp-54,
     0x1.deb1cb129a73fp-111, -0x1.77dca0ad144bbp-167},
    {0x1.ba5c00c925dd4p+0, 0x1.3a32439fc3bd6p-56,
     0x1.cb129a73ee882p-111, 0x1.afa975da24275p-166},
    {0x1.924bba8274648p-9, 0x1.cfe1deb1cb12ap-63,
     -0x1.63045df7282b4p-117, -0x1.44bb7b16638fep-171},
    {0x1.25dd413a3243ap+0, -0x1.e214e34ed658cp-59,
     -0x1.177dca0ad144cp-115, 0x1.213a671c09ad1p-169},
    {0x1.413a32439fc3cp+0, -0x1.4e34ed658c117p-55,
     -0x1.f7282b4512edfp-109, 0x1.d338e04d68bf0p-164},
    {0x1.1921cfe1deb1dp+1, -0x1.3b5963045df73p-53,
     0x1.f52ebb4484e9ap-107, -0x1.c7eca5d040df6p-162},
    {0x1.cfe1deb1cb12ap+1, -0x1.63045df7282b4p-53,
     -0x1.44bb7b16638fep-107, 0x1.ad17df904e647p-161},
    {0x1.deb1cb129a73fp+1, -0x1.77dca0ad144bbp-55,
     -0x1.ec598e3f652e8p-109, -0x1.037d8cdc538d0p-164},
    {0x1.cb129a73ee882p+1, 0x1.afa975da24275p-54,
     -0x1.8e3f652e82070p-109, 0x1.3991d63983534p-163},
    {0x1.34e7dd1046beap+0, 0x1.75da24274ce38p-54,
     0x1.35a2fbf209cc9p-110, -0x1.4e33e566305b2p-166},
    {0x1.ee88235f52ebbp+1, 0x1.1213a671c09adp-53,
     0x1.7df904e64758ep-109, 0x1.835339f49c846p-163},
    {0x1.1afa975da2427p-2, 0x1.338e04d68befdp-56,
     -0x1.f633714e33e56p-110, -0x1.8c16c6f740e88p-164},
    {0x1.52ebb4484e99cp+1, 0x1.c09ad17df904ep-53,
     0x1.91d639835339fp-107, 0x1.272117e2ef7e5p-161},
    {0x1.b4484e99c7027p+1, -0x1.2e8206fb19b8ap-53,
     -0x1.c67cacc60b638p-107, 0x1.17e2ef7e4a0ecp-161},
    {0x1.3a671c09ad17ep-1, -0x1.bec66e29c67cbp-59,
     0x1.9cfa4e422fc5ep-114, -0x1.036be27003b40p-170},
    {0x1.c7026b45f7e41p+1, 0x1.cc8eb1cc1a99dp-54,
     -0x1.6c6f740e8840ep-112, 0x1.41d8ffc4bffefp-166},
    {0x1.ad17df904e647p-1, 0x1.639835339f49dp-55,
     -0x1.ee81d1081b5f1p-109, -0x1.c00ed00043f4dp-164},
    {0x1.f7e413991d63ap+1, -0x1.f2b3182d8dee8p-53,
     -0x1.d1081b5f13802p-109, 0x1.2fffbc0b301fep-164},
    {0x1.3991d63983534p-3, -0x1.82d8dee81d108p-57,
     -0x1.b5f13801da001p-113, 0x1.e05980fef2f12p-167},
    {0x1.1d639835339f5p+1, -0x1.8dee81d1081b6p-53,
     0x1.d8ffc4bffef03p-110, -0x1.9fc04343b9d29p-165},
    {0x1.9835339f49c84p+1, 0x1.7e2ef7e4a0ec8p-53,
     -0x1.da00087e99fc0p-113, -0x1.0d0ee74a5f593p-167},
    {0x1.339f49c845f8cp+1, -0x1.081b5f13801dap-53,
     -0x1.0fd33f8086877p-118, -0x1.d297d64b824b2p-173},
    {0x1.49c845f8bbdf9p+1, 0x1.41d8ffc4bffefp-54,
     0x1.6603fbcbc462dp-113, 0x1.a0a6d1f6d367fp-167},
    {0x1.17e2ef7e4a0ecp-1, 0x1.ff897ffde0598p-55,
     0x1.fde5e2316b415p-112, -0x1.2e092c98130d8p-167},
    {0x1.77bf250763ff1p+0, 0x1.7ffde05980fefp-55,
     0x1.788c5ad053690p-110, -0x1.25930261b069fp-164},
    {0x1.9283b1ff89800p+1, -0x1.0fd33f8086877p-54,
     -0x1.d297d64b824b2p-109, -0x1.8130d834f648bp-163},
    {0x1.b1ff897ffde06p+1, -0x1.9fc04343b9d29p-53,
     -0x1.f592e092c9813p-107, -0x1.b069ec9161738p-164},
    {0x1.897ffde059810p+1, -0x1.0d0ee74a5f593p-55,
     0x1.f6d367ecf27cbp-111, 0x1.36e9e8c7ecd3dp-168},
    {0x1.fde05980fef2fp+1, 0x1.18b5a0a6d1f6dp-55,
     0x1.b3f6793e584dcp-110, -0x1.61738132c3403p-164},
    {0x1.6603fbcbc462dp-1, 0x1.a0a6d1f6d367fp-55,
     -0x1.86c1a7b24585dp-110, 0x1.fb34f2ff516bbp-166},
    {0x1.fde5e2316b415p+0, -0x1.2e092c98130d8p-55,
     -0x1.a7b24585ce04dp-110, 0x1.3cbfd45aea4f7p-164},
    {0x1.e2316b414da3fp+0, -0x1.2c98130d834f6p-55,
     -0x1.22c2e70265868p-109, -0x1.5d28ad8453814p-167},
    {0x1.6b414da3eda6dp+0, -0x1.30d834f648b0cp-59,
     0x1.8fd9a797fa8b6p-113, -0x1.5b08a7028341dp-168},
    {0x1.4da3eda6cfd9ep+0, 0x1.3e584dba7a320p-54,
     -0x1.32c3402ba515bp-108, -0x1.14e050683a131p-165},
    {0x1.f6d367ecf27cbp+1, 0x1.36e9e8c7ecd3dp-56,
     -0x1.00ae9456c229cp-110, -0x1.41a0e84c2f8c6p-167},
    {0x1.67ecf27cb09b7p+1, 0x1.3d18fd9a797fbp-53,
     -0x1.d28ad84538142p-107, 0x1.7c5ecf41ce7dep-161},
    {0x1.e4f96136e9e8cp+0, 0x1.fb34f2ff516bbp-54,
     -0x1.b08a7028341d1p-108, 0x1.9e839cfbc5295p-162},
    {0x1.6136e9e8c7ecdp+0, 0x1.e5fea2d7527bbp-55,
     -0x1.c0a0d0742617cp-110, -0x1.8c10eb5ada2b3p-164},
    {0x1.74f463f669e60p+1, -0x1.5d28ad8453814p-55,
     -0x1.a0e84c2f8c608p-111, -0x1.d6b5b45650128p-165},
    {0x1.8fd9a797fa8b6p-1, -0x1.5b08a7028341dp-56,
     -0x1.30be31821d6b6p-113, 0x1.2ea6bfb5fb120p-167},
    {0x1.a797fa8b5d49fp-1, -0x1.4e050683a130cp-57,
     0x1.ce7de294a4baap-113, -0x1.404a04ee072a3p-167},
    {0x1.fea2d7527bac8p+1, -0x1.41a0e84c2f8c6p-55,
     -0x1.0eb5ada2b2809p-112, -0x1.0277039517bd5p-166},
    {0x1.aea4f758fd7ccp+0, -0x1.d0985f18c10ebp-56,
     -0x1.6b68aca025027p-110, -0x1.c0e545ef53f9ap-164},
};
// [gauss_f32] generated by kernels/cpu/fit_vmath.py gauss_f32: 2 exp(-s/2) = 2 + s sum c[i] s^i,
//   |s| <= 0.694; max rel err 2^-28.0
static constexpr float GAUSS_F32[6] = {
    -0x1.0p+0f, 0x1.fffff8p-3f, -0x1.55548ep-5f, 0x1.555b96p-8f, -0x1.123bf8p-11f,
    0x1.6854c6p-15f};
// [ncdf_f32] generated by kernels/cpu/fit_vmath.py ncdf_f32: (erfcx(a/sqrt2)/2 (1 + a) - 1/2)/y =
//   sum c[i] v^i, y = a/(2 + a), v = 1 - y - 0.375, 0 <= a <= 14.5; max abs (times y) err 2^-30.9
static constexpr float NCDF_F32[12] = {
    -0x1.f3be2p-6f, 0x1.233e52p-2f, 0x1.f5201cp-3f, -0x1.cf455ap-4f, -0x1.7fe428p-3f,
    0x1.3ca3f2p-3f, 0x1.05d624p-3f, -0x1.08478p-2f, 0x1.2ff2d2p-5f, 0x1.254d22p-2f,
    -0x1.534f4cp-2f, 0x1.039fa2p-3f};
// [sin_f32] generated by kernels/cpu/fit_vmath.py sin_f32: sin(r) = r + r^3 sum c[i] r^(2i), |r|
//   <= 0.8; max rel err 2^-27.7
static constexpr float SIN_F32[3] = {-0x1.555544p-3f, 0x1.1106bp-7f, -0x1.99106cp-13f};
// [cos_f32] generated by kernels/cpu/fit_vmath.py cos_f32: cos(r) = 1 - r^2/2 + r^4 sum c[i]
//   r^(2i), |r| <= 0.8; max rel err 2^-32.6
static constexpr float COS_F32[3] = {0x1.555548p-5f, -0x1.6c0b08p-10f, 0x1.999a6cp-16f};
// ---- END GENERATED ----

// ------------------------------------------------------------------------------------------
// exp kernels
// ------------------------------------------------------------------------------------------
// 2^k as two normal factors s1 * s2 (k = s1's exponent + s2's), so that p * s1 * s2 reaches
// the subnormal range and overflow with one final rounding.  t is the magic-rounded value
// whose bits hold k: bits(t) = bits(0x1.8p23f) + k, |k| < 256 (float) / < 2048 (double).
ACT_VM_INLINE void scale2(float t, float& s1, float& s2) {
  uint32_t v = f2u(t) + (256u - 0x4B400000u);  // k + 256
  uint32_t h = v >> 1;                         // floor(k/2) + 128
  s1 = u2f((h - 1u) << 23);
  s2 = u2f((v - h - 1u) << 23);
}
ACT_VM_INLINE void scale2(double t, double& s1, double& s2) {
  uint64_t v = d2u(t) + (2048ull - 0x4338000000000000ull);  // k + 2048
  uint64_t h = v >> 1;                                       // floor(k/2) + 1024
  s1 = u2d((h - 1ull) << 52);
  s2 = u2d((v - h - 1ull) << 52);
}
// 2^k in one factor, k in [-126, 127] / [-1022, 1023].
ACT_VM_INLINE float scale1(float t) { return u2f((f2u(t) + 127u) << 23); }
ACT_VM_INLINE double scale1(double t) { return u2d((d2u(t) + 1023ull) << 52); }

// Reduction for exp/expm1: x + xl = k ln2 + rh + rl, k = rint(x/ln2) (t = magic-rounded
// x/ln2, whose bits hold k), Cody-Waite with k*LN2_HI exact, |rh| <= 0.347, rh + rl exact to
// ~2^-86.  |xl| must stay below ~2^-40: it is folded into rl.
template <class T> struct exp_red {
  T rh, rl, t, k;
};
ACT_VM_INLINE exp_red<double> exp_reduce(double x, double xl) {
  double t = fma_(x, LOG2E_F64, 0x1.8p52);
  double kd = t - 0x1.8p52;
  double r = fma_(kd, -LN2_F64_HI, x);  // exact
  double m = kd * LN2_F64_LO;
  double rh = r - m;
  return {rh, ((r - rh) - m) + xl, t, kd};
}
// P3(r) = (exp(r) - 1 - r - r^2/2) / r^3 (EXP_F64, degree 9, Estrin).
ACT_VM_INLINE double exp_p3(double r) { return poly(EXP_F64, r); }

// exp(x + xl) = 2^k (hi + lo), hi + lo = exp(rh + rl) to ~2^-60 relative (1 + rh summed
// exactly, rl folded in as rl * exp(rh)).  |x| <= 746 (the callers clamp).
struct exp_parts_d {
  double hi, lo, t;
};
ACT_VM_INLINE exp_parts_d exp_core(double x, double xl) {
  exp_red<double> e = exp_reduce(x, xl);
  double r = e.rh, r2 = r * r;
  double A = r2 * fma_(r, exp_p3(r), 0.5);  // exp(r) - 1 - r
  double s = A + fma_(e.rl, r + A, e.rl);       // exp(r + rl) - 1 - r
  double one_r = 1.0 + r;
  double lo = ((1.0 - one_r) + r) + s;
  double hi = one_r + lo;
  return {hi, (one_r - hi) + lo, e.t};
}
// expm1(x) = 2^k (exp(r) - 1) + (2^k - 1), with exp(r) - 1 = H + B, H = rh + rh^2/2 (rh^2
// exact, H as an exact pair), B = rh^3 P3(rh) + ... small; all large terms summed exactly.
ACT_VM_INLINE double expm1_core(exp_red<double> e) {
  double r = e.rh;
  dw<double> sq = two_prod(r, r);
  dw<double> H = fast_two_sum(r, 0.5 * sq.hi);
  double B = H.lo + (fma_(r * sq.hi, exp_p3(r), 0.5 * sq.lo) + fma_(e.rl, r, e.rl));
  double kk = e.k > 1023.0 ? 1023.0 : e.k;  // 2^1024 = 2^1023 * 2 at the overflow end
  double sc = scale1(kk + 0x1.8p52);
  dw<double> A = two_sum(sc, -1.0);
  dw<double> U = two_sum(A.hi, sc * H.hi);
  double y = U.hi + (U.lo + fma_(sc, B, A.lo));
  return e.k > 1023.0 ? y * 2.0 : y;
}

// Double exp/expm1 of modest accuracy (~2^-31 relative) for the float functions computed in
// double: k = rint(x/ln2), r = x - k ln2 (one FMA: ~2^-47 absolute for |k| < 400),
// expm1(r) = r + r^2 P(r) with P of degree 5 (EXP_LITE, 2^-31 relative to expm1), Horner.
// Results must be normal.
ACT_VM_INLINE double expm1_lite_r(double r) {
  return fma_(r * r, horner(EXP_LITE, r), r);
}
// Double exp to about 2^-50 relative, without exp's compensated steps and subnormal handling:
// for the float functions computed in double whose terms cancel (silu', mish'), where
// exp_lite's 2^-31 would show.  r = x - k ln2 with ln2 in two parts (k*LN2_HI exact),
// exp(r) = 1 + r + r^2 (1/2 + r P(r)), P of degree 7 (EXP_MID, 2^-51.1; Estrin).  |x| <= 700
// (normal results).
ACT_VM_INLINE double exp_mid(double x) {
  double t = fma_(x, LOG2E_F64, 0x1.8p52);
  double kd = t - 0x1.8p52;
  double r = fma_(kd, -LN2_F64_LO, fma_(kd, -LN2_F64_HI, x));
  return fma_(r * r, fma_(r, poly(EXP_MID, r), 0.5), 1.0 + r) * scale1(t);
}
ACT_VM_INLINE double exp_lite(double x) {  // |x| <= 700
  double t = fma_(x, LOG2E_F64, 0x1.8p52);
  double r = fma_(t - 0x1.8p52, -LN2_D, x);
  return (1.0 + expm1_lite_r(r)) * scale1(t);
}
ACT_VM_INLINE double expm1_lite(double x) {  // |x| <= 700, relative accuracy everywhere
  double t = fma_(x, LOG2E_F64, 0x1.8p52);
  double r = fma_(t - 0x1.8p52, -LN2_D, x);
  double s = scale1(t);
  return fma_(s, expm1_lite_r(r), s - 1.0);
}

// ------------------------------------------------------------------------------------------
// log kernels: x = 2^e m, m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), s = f/(2+f),
// log1p(f) = f - f^2/2 + s (f^2/2 + R(s^2))  (R: LOG_F32 / LOG_F64, minimax).
// ------------------------------------------------------------------------------------------
struct log_parts_f {
  float f, e, sc;  // sc = 2^-e
};
ACT_VM_INLINE log_parts_f log_split(float x) {  // x > 0 normal
  uint32_t w = f2u(x) + (0x3f800000u - 0x3f3504f3u);
  uint32_t eb = w >> 23;  // e + 127
  float e = u2f(0x4B400000u + eb) - (0x1.8p23f + 127.0f);
  float m = u2f((w & 0x007fffffu) + 0x3f3504f3u);
  return {m - 1.0f, e, u2f((254u - eb) << 23)};
}
struct log_parts_d {
  double f, e, sc;
};
ACT_VM_INLINE log_parts_d log_split(double x) {
  uint64_t w = d2u(x) + (0x3ff0000000000000ull - 0x3fe6a09e667f3bcdull);
  uint64_t eb = w >> 52;
  double e = u2d(0x4338000000000000ull + eb) - (0x1.8p52 + 1023.0);
  double m = u2d((w & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull);
  return {m - 1.0, e, u2d((2046ull - eb) << 52)};
}
// e ln2 + log1p(f) + extra (extra: a small correction, |extra| < ulp(result)).
// s = f/(2+f) is computed by the caller (log1p needs it too).
ACT_VM_INLINE float log_kernel(float f, float s, float e, float extra) {
  float z = s * s;
  float R = z * poly(LOG_F32, z);
  float hfsq = 0.5f * f * f;
  return fma_(e, LN2_F32_HI, -((hfsq - fma_(s, hfsq + R, fma_(e, LN2_F32_LO, extra))) - f));
}
ACT_VM_INLINE double log_kernel(double f, double s, double e, double extra) {
  double z = s * s;
  double R = z * poly(LOG_F64, z);
  double hfsq = 0.5 * f * f;
  return fma_(e, LN2_F64_HI, -((hfsq - fma_(s, hfsq + R, fma_(e, LN2_F64_LO, extra))) - f));
}

}  // namespace detail

// ==========================================================================================
// Public functions
// ==========================================================================================

// ---- exp ----------------------------------------------------------------------------------
// float: k = rint(x/ln2), r = x - k ln2 (Cody-Waite, k*LN2_HI exact), exp(r) = 1 + r + r^2/2
// + r^3 P(r) by Horner (EXP_F32, |r| <= 0.347), times 2^k as two factors (subnormal results
// rounded once).
namespace detail {
// exp(xc) = y 2^k for float xc in [-150, 88.8]: returns y; t holds k (t = 0x1.8p23 + k).
ACT_VM_INLINE float exp_core_f(float xc, float& t) {
  t = fma_(xc, LOG2E_F32, 0x1.8p23f);
  float kf = t - 0x1.8p23f;
  float r = fma_(kf, -LN2_F32_HI, xc);  // exact
  r = fma_(kf, -LN2_F32_LO, r);
  float p = fma_(horner(EXP_F32, r), r, 0.5f);
#ifdef __FMA__
  return fma_(fma_(p, r, 1.0f), r, 1.0f);  // max 0.91 ulp
#else
  // Without FMA the last Horner steps round twice each (1.17 ulp): sum 1 + r exactly instead.
  float one_r = 1.0f + r;
  return one_r + (((1.0f - one_r) + r) + (r * r) * p);
#endif
}
}  // namespace detail

namespace detail {
// 2^(k+64) from exp_core_f's t (normal for k >= -190): the scaling of results that may be subnormal.
ACT_VM_INLINE float pow2_k64(float t) { return u2f((f2u(t) - 0x4B400000u + 64u + 127u) << 23); }
// (n + nl) / (1 + e) rounded once, for 0 <= e <= 1 and nl the exact low part of n (or 0):
// 1 + e = D + Dl exactly (Fast2Sum), q0 = n / D, and q0 + ((n - q0 D) + nl - q0 Dl) / (D + Dl)
// with 1/D from a line (3% off on a term below ulp(q0)).  An infinite or NaN q0 is kept.
ACT_VM_INLINE float div_one_plus(float n, float nl, float e) {
  const float D = 1.0f + e, Dl = (1.0f - D) + e;
  const float q0 = n / D;
  float u = fma_(-q0, Dl, fnma_exact(q0, D, n) + nl);
  u = sel_(u == u, u, 0.0f);
  return fma_(u, fma_(D, -0.5f, 1.457f), q0);
}
}  // namespace detail

ACT_VM_INLINE float exp(float x) {
  using namespace detail;
  float t;
  float y = exp_core_f(clamp_(x, -104.0f, 88.8f), t);
  float s1, s2;
  scale2(t, s1, s2);
  return (y * s1) * s2;
}
// exp(x) for x <= 0 (and NaN), float: the same bits as exp(x) there, cheaper: only the lower
// clamp, and 2^k (k in [-150, 0]) as the one normal factor 2^(k+64), then 2^-64 (one rounding for
// subnormal results).  Unspecified for x > 0.
ACT_VM_INLINE float exp_nonpos(float x) {
  using namespace detail;
  float t;
  float y = exp_core_f(sel_(x < -104.0f, -104.0f, x), t);  // NaN passes
  return (y * pow2_k64(t)) * 0x1p-64f;
}
// sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) below, e = exp(-|x|), float: the quotient
// rounded once (div_one_plus; three roundings reached 2.4 ulps): within 1.4 ulps, the exp's error
// included.
ACT_VM_INLINE float sigmoid(float x) {
  using namespace detail;
  const float e = exp_nonpos(-abs_(x));
  return div_one_plus(sel_(x >= 0.0f, 1.0f, e), 0.0f, e);
}
// x sigmoid(x) (silu), float: e = exp(-|x|) as y 2^k; x >= 0: x / (1 + e); x < 0: (x e) / (1 + e)
// formed with e 2^64 (exact scaling) and scaled back last, so nothing underflows before the last
// step where exp(x) alone would be subnormal (x < -87.3).  One division serves both signs, and
// it rounds once (div_one_plus, with x e 2^64 as an exact pair).
// All 2^32 inputs within 1.65 ulps (three roundings, as x (e / (1 + e)), reached 3.2).
// Below -112 (and -inf) 0, as x sigmoid(x) rounds there.
ACT_VM_INLINE float xsigmoid(float x) {
  using namespace detail;
  float t;
  float y = exp_core_f(sel_(abs_(x) > 112.0f, -112.0f, -abs_(x)), t);  // NaN passes
  float es = y * pow2_k64(t);  // e 2^64: k + 64 >= -98
  const bool neg = x < 0.0f;
  const dw<float> xe = two_prod(x, es);
  const float q = div_one_plus(sel_(neg, xe.hi, x), sel_(neg, xe.lo, 0.0f), es * 0x1p-64f);
  return sel_(x < -112.0f, 0.0f, sel_(neg, q * 0x1p-64f, q));  // below -112: x e^x < 2^-151
}
ACT_VM_INLINE double exp(double x) {
  using namespace detail;
  double xc = clamp_(x, -745.5, 709.8);
  exp_parts_d p = exp_core(xc, 0.0);
  double s1, s2;
  scale2(p.t, s1, s2);
  return (p.hi * s1) * s2;
}

// ---- expm1 --------------------------------------------------------------------------------
// float: in double (expm1_lite, ~2^-31 relative before the final rounding).
// double: 2^k (exp(r) - 1) + (2^k - 1), summed with error-free transformations (expm1_core).
ACT_VM_INLINE float expm1(float x) {
  using namespace detail;
  // clamped in float (the same values): a double clamp compiles to mask conversions and blends
  float y = (float)expm1_lite((double)clamp_(x, -26.0f, 89.0f));
  return x == 0.0f ? x : y;  // expm1(-0) = -0
}
ACT_VM_INLINE double expm1(double x) {
  using namespace detail;
  double y = expm1_core(exp_reduce(clamp_(x, -40.0, 709.8), 0.0));
  return x == 0.0 ? x : y;
}

// ---- log ----------------------------------------------------------------------------------
ACT_VM_INLINE float log(float x) {
  using namespace detail;
  // subnormal x: scaled by 2^23 first (selected with bit masks: a ?: here makes GCC duplicate
  // log_split for both sides)
  uint32_t sub = lt_mask(f2u(x), 0x00800000u);  // 0 <= x < 2^-126 (negative x: special)
  log_parts_f p = log_split(u2f(sel_mask(sub, f2u(x * 0x1p23f), f2u(x))));
  float e = p.e + u2f(sub & f2u(-23.0f));
  float y = log_kernel(p.f, p.f / (2.0f + p.f), e, 0.0f);
  bool pos = x > 0.0f;
  float sp = x == 0.0f ? -INF_F : (pos ? x : NAN_F);  // +inf, or NaN for x < 0 and NaN
  return (pos & (x < INF_F)) ? y : sp;
}
ACT_VM_INLINE double log(double x) {
  using namespace detail;
  uint64_t sub = lt_mask(d2u(x), 0x0010000000000000ull);
  log_parts_d p = log_split(u2d(sel_mask(sub, d2u(x * 0x1p54), d2u(x))));
  double e = p.e + u2d(sub & d2u(-54.0));
  double y = log_kernel(p.f, p.f / (2.0 + p.f), e, 0.0);
  bool pos = x > 0.0;
  double sp = x == 0.0 ? -INF_D : (pos ? x : NAN_D);
  return (pos & (x < INF_D)) ? y : sp;
}

// ---- log1p --------------------------------------------------------------------------------
// u = 1 + x rounded, c = (1 + x) - u exactly; log1p(x) = log(u) + c/u, with
// c/u = c 2^-e / (1 + f) = c 2^-e (1 - s)/(1 + s) ~ c 2^-e (1 - 2s + 2s^2).
ACT_VM_INLINE float log1p(float x) {
  using namespace detail;
  dw<float> u = two_sum(1.0f, x);
  log_parts_f p = log_split(u.hi);
  float s = p.f / (2.0f + p.f);
  float corr = (u.lo * p.sc) * fma_(2.0f * s, s - 1.0f, 1.0f);
  corr = x < 0x1p24f ? corr : 0.0f;
  float y = log_kernel(p.f, s, p.e, corr);
  float sp = x == -1.0f ? -INF_F : (x < -1.0f ? NAN_F : x);  // +inf, +-0 or NaN
  return (x > -1.0f && x < INF_F && x != 0.0f) ? y : sp;
}
// log(1 - exp(-x)), float (the log1mexp activation): one logarithm where log(-expm1(-x)) (x below
// ln 2) and log1p(-exp(-x)) (above) take two.  U + c = 1 - exp(-x): below ln 2, U = -expm1(-x)
// and c = 0; above, U = 1 - e rounded, e = exp(-x), and c its exact rounding error (Fast2Sum,
// e <= 1/2); then log(U) + c/U as log1p computes it.  Bit for bit the two formulas' values.
ACT_VM_INLINE float log1mexp(float x) {
  using namespace detail;
  const bool below = x < 0.69314718055994530942f;
  const float w = -expm1(-x);  // below: (0, 1/2], 0 at +-0, negative for x < 0
  const float e = exp(-x);
  const float hi = 1.0f - e, lo = (1.0f - hi) - e;
  const float U = sel_(below, w, hi), c = sel_(below, 0.0f, lo);
  uint32_t sub = lt_mask(f2u(U), 0x00800000u);  // tiny x: U = x may be subnormal
  log_parts_f p = log_split(u2f(sel_mask(sub, f2u(U * 0x1p23f), f2u(U))));
  float s = p.f / (2.0f + p.f);
  float corr = (c * p.sc) * fma_(2.0f * s, s - 1.0f, 1.0f);
  float y = log_kernel(p.f, s, p.e + u2f(sub & f2u(-23.0f)), corr);
  float at_below = w > 0.0f ? y : (w == 0.0f ? -INF_F : NAN_F);
  float at_above = e != 0.0f ? y : -0.0f;  // log1p(-0) = -0 once exp(-x) underflows
  return sel_(below, at_below, at_above);
}
ACT_VM_INLINE double log1p(double x) {
  using namespace detail;
  dw<double> u = two_sum(1.0, x);
  log_parts_d p = log_split(u.hi);
  double s = p.f / (2.0 + p.f);
  double corr = (u.lo * p.sc) * fma_(2.0 * s, s - 1.0, 1.0);
  corr = x < 0x1p53 ? corr : 0.0;
  double y = log_kernel(p.f, s, p.e, corr);
  double sp = x == -1.0 ? -INF_D : (x < -1.0 ? NAN_D : x);
  return (x > -1.0 && x < INF_D && x != 0.0) ? y : sp;
}

// ---- gauss: exp(-x^2/2) ---------------------------------------------------------------------
namespace detail {
// exp(-a^2/2) for float 0 <= a <= 14.5 (NaN passes), in float: a^2 = h + l exactly (two_prod),
// k = rint(-h/(2 ln2)) (magic-number rounding in te, whose bits hold k), s = h + 2k ln2 + l
// = -2r (the Cody-Waite product k*2LN2_HI and the sum h + k*2LN2_HI exact), |s| <= 0.694, and
// exp(-a^2/2) = 2^k exp(-s/2), 2 exp(-s/2) = 2 + s B(s) (GAUSS_F32, degree 5).  te's magic
// constant puts k + 64 + 127 in its low bits: (bits(te) << 23) = bits(2^(k+64)), k >= -152.
// gauss and normcdf share this code (the CPU engine's GELU derivative calls both on the same x).
struct gauss_parts_f {
  float s, B1, te, es;  // B(s) = -1 + s B1(s); es: the rounding error of s
};
static constexpr float GAUSS_MAGIC_F32 = 0x1.8p23f + 191.0f;
ACT_VM_INLINE gauss_parts_f gauss_core(float a) {
  dw<float> sq = two_prod(a, a);
  float te = fma_(sq.hi, -0.5f * LOG2E_F32, GAUSS_MAGIC_F32);
  float kf = te - GAUSS_MAGIC_F32;
  float s2 = fma_(kf, 2.0f * LN2_F32_HI, sq.hi);  // exact: k*2LN2_HI has 17 bits
  float sl = fma_(kf, 2.0f * LN2_F32_LO, sq.lo);
  float s = s2 + sl;
  static_assert(GAUSS_F32[0] == -1.0f, "B(0) = -1");
  return {s, horner<5>(GAUSS_F32 + 1, s), te, (s2 - s) + sl};
}
// |x| clamped to 14.5 (exp(-14.5^2/2) < 2^-151); NaN passes.
ACT_VM_INLINE float gauss_clamp(float x) {
  float a = abs_(x);
  return sel_(a > 14.5f, 14.5f, a);
}
}  // namespace detail

// float: exp(-s/2) 2^k in float arithmetic (gauss_core), 2 exp(-s/2) = 2 + s B(s) rounded once,
// then times 2^(k+64) (exact) and 2^-65 (one rounding, subnormal results included).
ACT_VM_INLINE float gauss(float x) {
  using namespace detail;
  gauss_parts_f g = gauss_core(gauss_clamp(x));
  float Y = fma_acc(g.s, fma_(g.s, g.B1, -1.0f), 2.0f);  // 2 exp(-s/2) = 2 + s B(s)
  return (Y * u2f(f2u(g.te) << 23)) * 0x1p-65f;
}
ACT_VM_INLINE double gauss(double x) {
  using namespace detail;
  double a = abs_(x);
  a = a > 40.0 ? 40.0 : a;
  dw<double> sq = two_prod(a, a);
  exp_parts_d p = exp_core(-0.5 * sq.hi, -0.5 * sq.lo);
  double s1, s2;
  scale2(p.t, s1, s2);
  return (p.hi * s1) * s2;
}

// ---- hypot --------------------------------------------------------------------------------
ACT_VM_INLINE float hypot(float x, float y) {
  using namespace detail;
  double a = x, b = y;
  float h = (float)__builtin_sqrt(a * a + b * b);
  bool inf = (x == INF_F || x == -INF_F || y == INF_F || y == -INF_F);
  return inf ? INF_F : h;
}
ACT_VM_INLINE double hypot(double x, double y) {
  using namespace detail;
  double ax = abs_(x), ay = abs_(y);
  double a = ax > ay ? ax : ay, b = ax > ay ? ay : ax;
  double sc = a > 0x1p500 ? 0x1p-600 : (a < 0x1p-500 ? 0x1p600 : 1.0);
  double isc = a > 0x1p500 ? 0x1p600 : (a < 0x1p-500 ? 0x1p-600 : 1.0);
  double as = a * sc, bs = b * sc;
  dw<double> pa = two_prod(as, as), pb = two_prod(bs, bs);
  dw<double> S = fast_two_sum(pa.hi, pb.hi);
  double sl = S.lo + (pa.lo + pb.lo);
  double h = __builtin_sqrt(S.hi);
  dw<double> hh = two_prod(h, h);
  double res = ((S.hi - hh.hi) - hh.lo) + sl;  // S - h^2, small
  double hc = h + res / (h + h);
  double out = hc * isc;
  out = b == 0.0 ? a : out;
  bool inf = (ax == INF_D || ay == INF_D);
  return inf ? INF_D : out;
}

// ---- squareplus: (x + sqrt(x^2 + b)) / 2 -----------------------------------------------------
// float, in float (the double hypot cost two vsqrtpd per 8 elements).  |x| > 2^62: x scaled by
// 2^-64 and b by 2^-128 (x^2 would overflow).  h = sqrt(x^2 + b) with x^2 + b rounded once (fma),
// D = |x| + h as an exact pair (Fast2Sum: h >= |x|).
//   x >= 0: D / 2;
//   x < 0:  (b/4) / (D/2), no cancellation: one division, its quotient corrected by the exact
//           residual and D's low part (1/(D/2) from the quotient and 4/b).
// b = 0 gives max(x, 0) (the square of a tiny x would underflow); NaN passes.
// Over all float x (b = 4): within 2.0 ulps (the double hypot and the functor's formula: 2.25).
// squareplus_grad: (1 + x/h) / 2 where |x| < h/2 (x^2 < b/3), else squareplus(x) / h for x < 0.
namespace detail {
struct sqp_parts {
  float a, as, h, Dh, Dl, is;  // |x|, scaled |x|, h, D = Dh + Dl (scaled), is = 1/scale
};
ACT_VM_INLINE sqp_parts sqp_core(float x, float b) {
  const float a = abs_(x);
  const bool big = a > 0x1p62f;
  const float as = a * sel_(big, 0x1p-64f, 1.0f);
  const float h = __builtin_sqrtf(fma_(as, as, sel_(big, b * 0x1p-128f, b)));
  const dw<float> D = fast_two_sum(h, as);
  return {a, as, h, D.hi, D.lo, sel_(big, 0x1p64f, 1.0f)};
}
// (b/4) / (D/2), the value for x < 0; 0 for b = 0 and x = -inf
ACT_VM_INLINE float sqp_neg(const sqp_parts& p, float b) {
  const float b4 = 0.25f * b, inv_b4 = 4.0f / b;  // loop-invariant
  const float hs = 0.5f * p.is;
  const float q0 = b4 / (p.Dh * hs);  // (D/2 exact)
  const float qs = q0 * hs;  // exact; the residual in the scaled domain (no product near 2^128)
  const float u = fnma_exact(qs, p.Dh, b4) - qs * p.Dl;
  const float y = fma_(u, q0 * inv_b4, q0);  // a subnormal q0 is rounded once already and
  return sel_(b == 0.0f || p.a == INF_F, 0.0f, sel_(q0 < 0x1p-126f, q0, y));  // too short for 1/(D/2)
}
}  // namespace detail

ACT_VM_INLINE float squareplus(float x, float b) {
  using namespace detail;
  const sqp_parts p = sqp_core(x, b);
  const float t = p.Dh * (0.5f * p.is);
  const float pos = sel_(p.a == INF_F || b == 0.0f, x, t);  // NaN: x
  return sel_(x < 0.0f, sqp_neg(p, b), pos);
}
ACT_VM_INLINE float squareplus_grad(float x, float b) {
  using namespace detail;
  const sqp_parts p = sqp_core(x, b);
  const bool near = x >= 0.0f || p.as < 0.5f * p.h;  // (1 + x/h)/2 does not cancel
  const float q = sel_(near, p.as, sqp_neg(p, b)) / sel_(near, p.h, p.h * p.is);
  const float g = fma_(copysign_(q, x), 0.5f, 0.5f);
  // +inf: 1; b = 0: the slope of max(x, 0), 1/2 at 0 (the square of a tiny x underflows)
  const float r = sel_(near, sel_(x == INF_F, 1.0f, g), q);
  return sel_(b == 0.0f, sel_(x > 0.0f, 1.0f, sel_(x == 0.0f, 0.5f, 0.0f)), r);
}

// ---- tanh ---------------------------------------------------------------------------------
// float: in double, tanh(a) = em/(em + 2), em = expm1(2a) to ~2^-31 relative.
ACT_VM_INLINE float tanh(float x) {
  using namespace detail;
  float af = abs_(x);
  double a = af > 10.0f ? 10.0f : af;  // NaN passes
  double em = expm1_lite(a + a);
  float y = (float)(em / (em + 2.0));
  return copysign_(y, x);
}
// double: |x| < 0.3: x + x^3 P(x^2) (TANH_F64); else 1 - 2/(1 + e), e = exp(2|x|) as a
// double-word, the division corrected with its exact residual.
ACT_VM_INLINE double tanh(double x) {
  using namespace detail;
  double a = abs_(x);
  // small
  double z = a * a;
  double ys = fma_(a * z, poly(TANH_F64, z), a);
  // large
  double ac = a > 20.0 ? 20.0 : a;
  exp_parts_d ep = exp_core(ac + ac, 0.0);
  double sc = scale1(ep.t);
  double eh = ep.hi * sc, el = ep.lo * sc;
  dw<double> D = fast_two_sum(eh, 1.0);
  double Dl = D.lo + el;
  double q = 2.0 / D.hi;
  dw<double> qd = two_prod(q, D.hi);
  double rho = ((2.0 - qd.hi) - qd.lo) - q * Dl;  // 2 - q D, D = D.hi + Dl
  double dlo = rho * (0.5 * q);                   // d = 2/D = q + dlo
  dw<double> h = fast_two_sum(1.0, -q);
  double yl = h.hi + (h.lo - dlo);
  double y = a < 0.3 ? ys : yl;
  return x != x ? x + x : copysign_(y, x);  // NaN: x itself (its payload, whatever the width)
}

// ---- erfc / normcdf -------------------------------------------------------------------------
namespace detail {
// float functions, in double: erfc(a) = exp(-a^2) P(t), t = 1/(1 + 11a/32), 0 <= a <= 10.5
// (ERFCX_F32, degree 10, 2^-28 relative).
ACT_VM_INLINE double erfcx_f32(double a) {
  return horner(ERFCX_F32, 1.0 / fma_(0.34375, a, 1.0));  // 0.34375 a: exact
}

// sc * erfc(z + zl) for double, sc = 1 or 1/2; z2 = (z + zl)^2 as an exact pair; |z| <= 40.
//  |z| < 0.47: 1 - erf(z), erf(z) = z (2/sqrt(pi) + z^2 P(z^2)) + zl 2/sqrt(pi) (ERF_F64);
//  else: exp(-z2) R(a), a = |z|, R(a) = erfc(a) exp(a^2) = P(t), t = 4/(4+a) (ERFCX_F64,
//  degree 21), t rounded: the a that t represents exactly differs from a + al by
//  delta = D.lo + D.hi (t D.hi - 4)/4 (D = 4 + a exact pair), corrected to first order with
//  R'(a) = 2aR - 2/sqrt(pi); exp(-z2) as hi + lo times 2^k in two factors (subnormals
//  rounded once); z < 0: 2 - erfc(|z|).
// c + t (h.hi + h.lo) as a pair, exact but for the rounding of t*h.lo.
ACT_VM_INLINE dw<double> horner_step(double c, double t, dw<double> h) {
  dw<double> p = two_prod(t, h.hi);
  dw<double> s = two_sum(c, p.hi);
  return {s.hi, s.lo + fma_(t, h.lo, p.lo)};
}
ACT_VM_INLINE double erfc_core(double z, double zl, dw<double> z2, double sc) {
  double a = abs_(z);
  double al = z < 0.0 ? -zl : zl;
  // small: erf(z) = z 2/sqrt(pi) (exact pair) + rest, 1 - erf summed exactly but for rest
  double zz = z * z;
  dw<double> p = two_prod(z, TWO_RSQRTPI);
  double rest = fma_(z * zz, poly(ERF_F64, zz), fma_(z, TWO_RSQRTPI_LO, zl * TWO_RSQRTPI));
  dw<double> om = fast_two_sum(1.0, -p.hi);
  double ys = sc * (om.hi + ((om.lo - p.lo) - rest));
  // large
  double ac = a > 27.5 ? 27.5 : a;
  dw<double> D = two_sum(4.0, ac);
  double th = 4.0 / D.hi;
  dw<double> pr = two_prod(th, D.hi);
  double rho = (pr.hi - 4.0) + pr.lo;  // t D.hi - 4, exact
  double delta = fma_(D.hi * rho, 0.25, D.lo) + al;
  // P(th): the high part (degree >= 6) by plain Horner, the last six Horner steps as exact
  // pairs (plain evaluation would cost ~2 ulps here: near a = 0.47 the partial sums are as
  // large as the result and the high part is itself ill-conditioned).
  static_assert(sizeof(ERFCX_F64) == 22 * sizeof(double), "six steps below, 16 before");
  dw<double> H = {horner<16>(ERFCX_F64 + 6, th), 0.0};
  H = horner_step(ERFCX_F64[5], th, H);
  H = horner_step(ERFCX_F64[4], th, H);
  H = horner_step(ERFCX_F64[3], th, H);
  H = horner_step(ERFCX_F64[2], th, H);
  H = horner_step(ERFCX_F64[1], th, H);
  dw<double> p0 = two_prod(th, H.hi);
  dw<double> R = fast_two_sum(p0.hi, ERFCX_F64[0]);  // |c0| tiny
  R.lo += fma_(th, H.lo, p0.lo);
  R.lo = fma_(delta, fma_(ac + ac, R.hi, -TWO_RSQRTPI), R.lo);  // first-order correction
  double e2 = z2.hi > 760.0 ? 760.0 : z2.hi;
  exp_parts_d E = exp_core(-e2, -z2.lo);
  double s1, s2;
  scale2(E.t, s1, s2);
  double yl = (fma_(E.hi, R.hi, fma_(E.hi, R.lo, E.lo * R.hi)) * s1) * (s2 * sc);
  yl = z < 0.0 ? (sc + sc) - yl : yl;
  return a < 0.47 ? ys : yl;
}
}  // namespace detail

ACT_VM_INLINE float erfc(float x) {
  using namespace detail;
  float af = abs_(x);
  double a = af > 10.5f ? 10.5f : af;  // NaN passes
  double y = exp_lite(-(a * a)) * erfcx_f32(a);  // a*a exact
  return (float)(x < 0.0f ? 2.0 - y : y);
}
ACT_VM_INLINE double erfc(double x) {
  using namespace detail;
  double xc = clamp_(x, -30.0, 30.0);
  return x != x ? x + x : erfc_core(xc, 0.0, two_prod(xc, xc), 1.0);  // NaN: x itself
}
// Phi(x) = erfc(-x/sqrt2)/2; the exp factor uses x^2/2 exactly (never (x/sqrt2) rounded, squared).
// float, in float arithmetic: Q = Phi(-a), a = |x| <= 14.5, is
//   Q = exp(-a^2/2) R(a) = 2^k exp(-s/2) * th (1 + rho) * (1/2 + w),
// R(a) = Phi(-a) exp(a^2/2); th = 1/(1 + a) rounded, 1 + rho = (1/(1 + a))/th from the exact
// residual (1 + a is itself an exact pair); R(a) (1 + a) = 1/2 + w is nearly constant (0.40 ..
// 0.53) and w = y Q(v), y = a/(2 + a), Q a polynomial in v = 1/(1 + a/2) - 0.375 (NCDF_F32,
// degree 11; v exact), so a rounding error in w weighs little.  With exp(-s/2) = 1 + E
// (gauss_core; s's rounding error goes into rho): Q 2^-k = th/2 + th W,
// W = (1/2 + w)(1 + rho)(1 + E) - 1/2 summed so that only W (|W| < 0.31) is rounded, then the
// final fma rounds once.  x < 0: Q;
// x > 0: 1 - Q (fma).  Subnormal results rounded once (2^(k+64), then 2^-64).
namespace detail {
// Q(a) 2^64 for float a = |x| clamped to 14.5 (NaN passes), as described above.
ACT_VM_INLINE float ncdf_tail_scaled(float a) {
  gauss_parts_f g = gauss_core(a);
  float D = 1.0f + a, Dl = (1.0f - D) + a;             // 1 + a = D + Dl exactly (a <= 14.5)
  float th = 1.0f / D;
  float rho = fnma_exact(th, D, 1.0f) - th * Dl;        // 1 - th (1 + a), to 2^-47
  rho = fma_(g.es, -0.5f, rho);                         // and s's rounding: exp(-es/2)
  // w = y Q(v): y = 1 - t2 = a/(2 + a) with relative precision for small a (there the absolute
  // error of t2 ~ 2^-24 would move w by w'(0) = 0.1 times 2^-23) and consistent with v for
  // large a; v = t2 - 0.375 exact for t2 >= 1/8.
  float t2 = 1.0f / fma_(a, 0.5f, 1.0f);
  float y = sel_(a < 1.0f, (0.5f * a) * t2, 1.0f - t2);
  float Qv = horner(NCDF_F32, t2 - 0.375f);
  // G = (1/2 + w)(1 + rho)(1 + E) = (1/2 + w')(1 + E) to 2^-28, w' = w + rho/2, and with
  // E = exp(-s/2) - 1 = -s/2 + s^2 B1/2:
  //   W = G - 1/2 = -s/4 + [w' (1 - s/2) + (1/2 + w') s^2 B1/2],
  // the bracket small (|.| < 0.12) and E never rounded.
  float wp = fma_acc(y, Qv, 0.5f * rho);
  float Z = fma_acc(g.s * (g.s * g.B1), fma_(wp, 0.5f, 0.25f), fma_acc(-0.5f * g.s, wp, wp));
  float W = fma_(g.s, -0.25f, Z);
  return fma_acc(th, W, 0.5f * th) * u2f(f2u(g.te) << 23);  // Q 2^64, exact scaling
}
}  // namespace detail

ACT_VM_INLINE float normcdf(float x) {
  using namespace detail;
  float Qm = ncdf_tail_scaled(gauss_clamp(x));
  float neg = Qm * 0x1p-64f;
  float pos = fma_(-Qm, 0x1p-64f, 1.0f);
  return sel_(x > 0.0f, pos, neg);
}
// x Phi(x), the exact GELU, float: x <= 0: (x Q 2^64) 2^-64, rounded once where the result is
// normal (x Phi(x) keeps its digits where Phi(x) alone would be subnormal, x < -12.9);
// x > 0: x - x Q in one fma.  The product takes x clamped to +-14.5 (beyond, x Q is below half
// the smallest subnormal), so that -inf gives -0 and +inf gives inf.
ACT_VM_INLINE float xnormcdf(float x) {
  using namespace detail;
  float Qm = ncdf_tail_scaled(gauss_clamp(x));
  float xc = clamp_(x, -14.5f, 14.5f);
  float neg = (xc * Qm) * 0x1p-64f;
  float pos = fma_(-xc, Qm * 0x1p-64f, x);
  return sel_(x > 0.0f, pos, neg);
}
// gelu'(x) = Phi(x) + x phi(x), float, in double: with a = |x|, G = exp(-a^2/2) (a^2 exact) and
// P = erfc(z) exp(z^2) at z = a/sqrt2 (erfc's ERFCX_F32, 2^-28.2 relative), Phi(-a) = G P/2 and
// h = G (P/2 - a/sqrt(2 pi)) = Phi(-a) - a phi(a) is gelu'(x) for x < 0 and 1 - gelu'(x) above.
// Near x = -1 the two terms cancel by up to 3x: 2^-26.6 relative at worst, far below float's
// rounding, which is the only one (in float, Phi and phi rounded apart reached 5.5 ulps).  |x| is
// clamped to 14.8 (beyond, gelu'(x) rounds to 0 or 1; the fit holds to 14.85); NaN passes.
ACT_VM_INLINE float gelu_grad(float x) {
  using namespace detail;
  const float af = abs_(x);
  const double a = af > 14.8f ? 14.8f : af;
  const double P = erfcx_f32(a * RSQRT2_HI);
  const double h = exp_lite(-0.5 * (a * a)) * fma_(-a, 0.3989422804014327, 0.5 * P);
  return (float)(x < 0.0f ? h : 1.0 - h);
}
ACT_VM_INLINE double normcdf(double x) {
  using namespace detail;
  double xc = clamp_(x, -40.0, 40.0);
  dw<double> z = two_prod(xc, -RSQRT2_HI);
  double zl = fma_(xc, -RSQRT2_LO, z.lo);
  dw<double> sq = two_prod(xc, xc);
  return x != x ? x + x : erfc_core(z.hi, zl, {0.5 * sq.hi, 0.5 * sq.lo}, 0.5);  // NaN: x itself
}

// ---- sin / cos ------------------------------------------------------------------------------
// float: a fast path for |x| <= SIN_FAST_MAX_F32 (sin_fast, cos_fast: Cody-Waite in float with
// the reduced argument kept as an exact pair) and Payne-Hanek for larger |x| (table rows, in
// double).  sin and cos compute both and select per lane (the PH part costs ~4 ns per element
// whatever the argument); sin_fast / cos_fast are the fast path alone and give the same bits as
// sin / cos for |x| <= SIN_FAST_MAX_F32 (unspecified, possibly NaN, beyond).  The intended use
// in a vector loop: compute a block with sin_fast; if some |x| in the block exceeds the bound
// (or is NaN), recompute that block (or those elements) with sin.
// double: Payne-Hanek for every argument (sin_fast / cos_fast are sin / cos).
static constexpr float SIN_FAST_MAX_F32 = 65536.0f;
static constexpr double SIN_FAST_MAX_F64 = __builtin_inf();

namespace detail {
// |x| <= 2^16: j = rint(x 2/pi) (magic rounding in t: bits(t) mod 4 = j mod 4),
// x - j pi/2 = rh + rl with |rl| <~ ulp(rh): pi/2 = P1 + P2 + P3 (PIO2_F32, 72 bits), x - j P1
// exact, j P2 an exact pair, (x - j P1) - j P2 by Fast2Sum (|x - j P1| >= |j P2| or the
// subtraction is exact; checked for all floats), then - j P3.  The closest float to a multiple
// of pi/2 below 2^16 is 2^-27.8 away from it (x = 252.898...); the pair keeps 2^-60 relative
// there.
// sin(rh + rl) = rh + (rl + rh^3 S(rh^2)), cos = (1 - rh^2/2) + (rh^4 C(rh^2) - rh rl) with
// rh^2 an exact pair and 1 - rh^2/2 summed exactly (SIN_F32, COS_F32, degree 2, |r| <= 0.8).
struct sincos_parts_f {
  float sn, cs;
  uint32_t q;  // j in the low bits
};
ACT_VM_INLINE sincos_parts_f sincos_fast_f32(float x) {
  float t = fma_(x, TWOOPI_F32, 0x1.8p23f);
  float jf = t - 0x1.8p23f;
  float r1 = fnma_exact(jf, PIO2_F32_1, x);  // x - j P1, exact
  dw<float> q = two_prod(jf, PIO2_F32_2);
  float rh = r1 - q.hi;
  float rl = ((r1 - rh) - q.hi) - fma_(jf, PIO2_F32_3, q.lo);
  dw<float> z = two_prod(rh, rh);
  float sn = rh + fma_(rh * z.hi, horner(SIN_F32, z.hi), rl);
  float corr = fma_(rh, rl, 0.5f * z.lo);      // (rh + rl)^2/2 - rh^2/2 to first order
  float w = fma_(z.hi, -0.5f, 1.0f);
  float ew = fma_(z.hi, -0.5f, 1.0f - w);      // (1 - rh^2/2) - w, exact
  float cs = w + fma_(z.hi * z.hi, horner(COS_F32, z.hi), ew - corr);
  return {sn, cs, f2u(t)};
}
// sin(x + off pi/2) from sin and cos of the reduced argument: quadrant q (low bits).
ACT_VM_INLINE float sincos_pick(float sn, float cs, uint32_t q) {
  float y = (q & 1u) ? cs : sn;  // (a blend: sel_'s masks cost more here)
  return u2f(f2u(y) ^ ((q & 2u) << 30));
}

// Payne-Hanek (float, in double) for any x, returning sin(x + off pi/2), off = 0 or 1:
// |x| = M 2^E0 with M an integer (the significand shifted by the low exponent bits), so that
// |x| 2/pi mod 4 = M G mod 4, G = 2^E0 2/pi mod 4 read from a table row chosen by the
// exponent (a gather: the only table lookups of this library).  The products are exact, the
// integer part is removed exactly, f = |x| 2/pi - n in [-1/2, 1/2] keeps its relative
// accuracy even for the worst cancellations, r = f pi/2, then sin or cos of r by quadrant.
ACT_VM_INLINE float sincos_ph_f32(float x, uint32_t off) {
  uint32_t ux = f2u(x), ua = ux & 0x7fffffffu;
  uint32_t bf = ua >> 23;
  // M = (2^23 + mantissa) 2^(bf & 7), exact; |x| = M 2^(8j - 150), j = bf >> 3.
  double M = u2f((ua & 0x007fffffu) | ((150u + (bf & 7u)) << 23));
  int64_t j = (int64_t)(bf >> 3);  // (a signed 64-bit index: GCC vectorizes this gather)
  dw<double> p = two_prod(M, SIN_PH_F32[j][0]);  // |p.hi| < 2^33
  double v = p.hi - 4.0 * rint_(0.25 * p.hi);    // exact, in [-2, 2]
  double n = rint_(v + p.lo);
  double f = ((v - n) + p.lo) + M * SIN_PH_F32[j][1];
  double r = f * PIO2_HI;
  double z = r * r;
  double sn = fma_(r * z, poly(SIN_LITE, z), r);
  double cs = fma_(z * z, poly(COS_LITE, z), fma_(-0.5, z, 1.0));
  uint64_t q = d2u(n + 0x1.8p52) + off;  // low bits: n + off mod 4
  uint64_t y = sel_mask((uint64_t)0 - (q & 1), d2u(cs), d2u(sn)) ^ ((q & 2) << 62);
  uint32_t res = f2u((float)u2d(y)) ^ (ux & ~(0u - off) & 0x80000000u);  // sin is odd
  // |x| < 2^-12: sin(x) rounds to x (exact zeros and subnormals included)
  res = sel_mask(lt_mask(ua, 0x39800000u) & ~(0u - off), ux, res);
  return u2f(sel_mask(lt_mask(ua, 0x7f800000u), res, 0x7fc00000u));
}
}  // namespace detail

ACT_VM_INLINE float sin_fast(float x) {
  using namespace detail;
  sincos_parts_f c = sincos_fast_f32(x);
  return sel_(x == 0.0f, x, sincos_pick(c.sn, c.cs, c.q));  // sin(-0) = -0
}
ACT_VM_INLINE float cos_fast(float x) {
  using namespace detail;
  sincos_parts_f c = sincos_fast_f32(x);
  return sincos_pick(c.sn, c.cs, c.q + 1u);
}
ACT_VM_INLINE float sin(float x) {
  using namespace detail;
  return sel_(abs_(x) <= SIN_FAST_MAX_F32, sin_fast(x), sincos_ph_f32(x, 0u));  // NaN: PH
}
ACT_VM_INLINE float cos(float x) {
  using namespace detail;
  return sel_(abs_(x) <= SIN_FAST_MAX_F32, cos_fast(x), sincos_ph_f32(x, 1u));
}

namespace detail {
// Payne-Hanek (double) for any x, returning sin(x + off pi/2), off = 0 or 1.
ACT_VM_INLINE double sincos_ph_f64(double x, uint64_t off) {
  uint64_t ux = d2u(x), ua = ux & 0x7fffffffffffffffull;
  // |x| < 2^-26: sin(x) rounds to x; |x| < 2^-27: cos(x) rounds to 1
  uint64_t lim = 0x3e50000000000000ull - (off << 52);
  uint64_t tiny = lt_mask(ua, lim);
  uint64_t uc = sel_mask(tiny, lim, ua);  // keeps the table index in range (rows from 2^-31)
  // M = (2^52 + mantissa) 2^(be & 15) < 2^68, |x| = M 2^(16 (i + 62) - 1075), i = (be >> 4) - 62.
  double M = u2d((uc & 0x000fffffffffffffull) | ((1075ull + ((uc >> 52) & 15u)) << 52));
  int64_t i = (int64_t)(uc >> 56) - 62;
  dw<double> p0 = two_prod(M, SIN_PH_F64[i][0]), p1 = two_prod(M, SIN_PH_F64[i][1]);
  dw<double> p2 = two_prod(M, SIN_PH_F64[i][2]);
  double p3 = M * SIN_PH_F64[i][3];
  // The three large terms, each reduced mod 4 exactly (|p0.hi| >= 2^54 is 0 mod 4).
  double A = p0.hi - 4.0 * rint_(0.25 * p0.hi);
  A = (p0.hi < 0x1p54 && p0.hi > -0x1p54) ? A : 0.0;
  double B = p0.lo - 4.0 * rint_(0.25 * p0.lo);
  double C = p1.hi - 4.0 * rint_(0.25 * p1.hi);
  double n = rint_(A + (B + C));
  // f = (A - n) + B + C + p1.lo + p2.hi + p2.lo + p3: every term that can cancel is added
  // exactly (two_sum), so f keeps its relative accuracy when |x| is near a multiple of pi/2.
  dw<double> s1 = two_sum(A - n, B);
  dw<double> s2 = two_sum(s1.hi, C);
  dw<double> h1 = two_sum(s2.hi, p1.lo);
  dw<double> h2 = two_sum(h1.hi, p2.hi);
  dw<double> h3 = two_sum(h2.hi, s1.lo);
  double l = ((h1.lo + h2.lo) + (h3.lo + s2.lo)) + (p2.lo + p3);
  dw<double> f = fast_two_sum(h3.hi, l);
  // r = f pi/2 as a pair
  dw<double> rp = two_prod(f.hi, PIO2_HI);
  double rh = rp.hi;
  double rl = rp.lo + fma_(f.hi, PIO2_LO, f.lo * PIO2_HI);
  dw<double> sq = two_prod(rh, rh);
  double z = sq.hi;
  double sn = rh + fma_(rh * z, poly(SIN_F64, z), rl * fma_(-0.5, z, 1.0));
  double hz = 0.5 * z;
  double w = 1.0 - hz;
  double cs = w + ((((1.0 - w) - hz) - 0.5 * sq.lo) + fma_(z * z, poly(COS_F64, z), -rl * rh));
  uint64_t q = d2u(n + 0x1.8p52) + off;  // low bits: n + off mod 4
  uint64_t y = sel_mask((uint64_t)0 - (q & 1), d2u(cs), d2u(sn)) ^ ((q & 2) << 62);
  uint64_t odd = (uint64_t)0 - (off ^ 1);  // all ones for sin
  uint64_t sgn = ux & odd & 0x8000000000000000ull;  // sin is odd, cos even
  uint64_t res = sel_mask(tiny, sel_mask(odd, ux, 0x3ff0000000000000ull), y ^ sgn);
  return u2d(sel_mask(lt_mask(ua, 0x7ff0000000000000ull), res, 0x7ff8000000000000ull));
}
}  // namespace detail

ACT_VM_INLINE double sin(double x) { return detail::sincos_ph_f64(x, 0u); }
ACT_VM_INLINE double cos(double x) { return detail::sincos_ph_f64(x, 1u); }
ACT_VM_INLINE double sin_fast(double x) { return sin(x); }
ACT_VM_INLINE double cos_fast(double x) { return cos(x); }

}  // namespace vm
}  // namespace act

#undef ACT_VM_INLINE
