// Types, math overloads, storage conversions and reductions shared by every kernel.
//
// This text is compiled twice: by NVRTC for the GPU and by g++ with the CPU shim of
// tests/cuda_host.  So it includes nothing but cuda_fp16.h / cuda_bf16.h and uses no macro
// from <math.h> (NVRTC has none: INFINITY is undefined there).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace act {

using i64 = long long;
using u64 = unsigned long long;

// ------------------------------------------------------------------ math
// One overload set per function, so that a functor written once for its compute type C calls
// the f-suffixed routine for float and the double routine for double (never a silent promotion).
namespace m {
// The CPU engine (kernels/cpu/prelude.h) defines ACT_CPU_MATH and brings its own vector math
// library (kernels/cpu/vmath.h) under these names; the GPU and the host harness use CUDA's.
#ifndef ACT_CPU_MATH
#define ACT_MATH_1(name, f32, f64)                                  \
  __device__ __forceinline__ float name(float x) { return f32(x); } \
  __device__ __forceinline__ double name(double x) { return f64(x); }
ACT_MATH_1(exp, expf, ::exp)
ACT_MATH_1(expm1, expm1f, ::expm1)
ACT_MATH_1(log, logf, ::log)
ACT_MATH_1(log1p, log1pf, ::log1p)
ACT_MATH_1(tanh, tanhf, ::tanh)
ACT_MATH_1(erfc, erfcf, ::erfc)
ACT_MATH_1(normcdf, normcdff, ::normcdf)  // Phi(x) = erfc(-x / sqrt2) / 2, accurate in both tails
ACT_MATH_1(sin, sinf, ::sin)
ACT_MATH_1(cos, cosf, ::cos)
ACT_MATH_1(sqrt, sqrtf, ::sqrt)
ACT_MATH_1(abs, fabsf, ::fabs)
#undef ACT_MATH_1
// a b + c (rounded once where the target has an FMA: always on GPUs)
__device__ __forceinline__ float fma(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma(double a, double b, double c) { return ::fma(a, b, c); }
// a b - p exactly for p = a b rounded (the low part of the product; two_prod below)
__device__ __forceinline__ float prod_error(float a, float b, float p) { return fmaf(a, b, -p); }
// c - a b where that number is representable (a division's residual, a Cody-Waite step): exact
__device__ __forceinline__ float fnma_exact(float a, float b, float c) { return fmaf(-a, b, c); }
__device__ __forceinline__ float hypot(float a, float b) { return hypotf(a, b); }
__device__ __forceinline__ double hypot(double a, double b) { return ::hypot(a, b); }
// exp(-x^2 / 2), the Gaussian's shape
__device__ __forceinline__ float gauss(float x) { return expf(-0.5f * x * x); }
__device__ __forceinline__ double gauss(double x) { return ::exp(-0.5 * x * x); }
#endif
__device__ __forceinline__ float copysign(float a, float b) { return copysignf(a, b); }
__device__ __forceinline__ double copysign(double a, double b) { return ::copysign(a, b); }

template <class C> __device__ __forceinline__ C inf();
template <> __device__ __forceinline__ float inf<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double inf<double>() {
  return __longlong_as_double(0x7ff0000000000000LL);
}
template <class C> __device__ __forceinline__ C nan() { return inf<C>() - inf<C>(); }
// Kernels are built without fast math, so the IEEE self-comparison is a reliable NaN test.
template <class C> __device__ __forceinline__ bool isnan(C x) { return x != x; }
// max that propagates NaN (fmax would drop it): a NaN in a row must reach every output.
template <class C> __device__ __forceinline__ C nanmax(C a, C b) { return (a > b || a != a) ? a : b; }
// min and max as single selects (one instruction on CPUs and GPUs); a NaN in b is returned, so
// clamps written min(hi, max(lo, x)) pass a NaN x through.
template <class C> __device__ __forceinline__ C min(C a, C b) { return a < b ? a : b; }
template <class C> __device__ __forceinline__ C max(C a, C b) { return a > b ? a : b; }
// x * g where g -> 0 faster than x -> inf: returns 0 instead of inf * 0 = NaN (silu(-inf) = 0, ...).
template <class C> __device__ __forceinline__ C xmul(C x, C g) { return g == C(0) ? C(0) : x * g; }
#ifndef ACT_CPU_MATH
// x Phi(x), the exact GELU (the CPU engine's float version rounds once where Phi(x) is subnormal)
template <class C> __device__ __forceinline__ C xnormcdf(C x) { return xmul(x, normcdf(x)); }
#endif
// The next four are the formulas; the CPU engine overloads them for float with its own versions
// (kernels/cpu/prelude.h: non-template overloads win), and takes these for double.
// exp of an argument the caller knows to be <= 0 (exp(-|x|) and the like): the CPU engine's
// float version skips the overflow handling.
template <class C> __device__ __forceinline__ C exp_nonpos(C x) { return exp(x); }
// log(1 - exp(-x)) as log(-expm1(-x)) below ln 2, log1p(-exp(-x)) above (Maechler); float takes
// one logarithm for both (below; the CPU engine's vmath.h the same way).
template <class C> __device__ __forceinline__ C log1mexp(C x) {
  return x < C(0.69314718055994530942) ? log(-expm1(-x)) : log1p(-exp(-x));
}
#ifndef ACT_CPU_MATH
// float: log(U) + c/U with U + c = 1 - exp(-x): below ln 2, U = -expm1(-x) and c = 0; above, U =
// 1 - e rounded (e = exp(-x) <= 1/2) and c its exact rounding error (Fast2Sum), and for e below
// 2^-20 the series.  Three transcendental functions where the two formulas took four (c/U, a
// correction below ulp(1)/U, by the fast division): 107 -> 86 modelled instructions per element.
__device__ __forceinline__ float log1mexp(float x) {
  const bool below = x < 0.69314718055994530942f;
  const float w = -expm1f(-x);  // below: (0, 1/2], 0 at +-0, negative for x < 0
  const float e = expf(-x);
  const float hi = 1.0f - e, lo = (1.0f - hi) - e;
  const float u = below ? w : hi;
  // below: log(w) itself (-inf at 0, NaN for x < 0)
  const float y = logf(u) + (below ? 0.0f : __fdividef(lo, u));
  // e < 2^-20: -e - e^2/2 (where lo comes near e, log(hi) and lo/hi would cancel); -0 at e = 0
  return below || e >= 0x1p-20f ? y : fmaf(-0.5f * e, e, -e);
}
#endif
// 1 / (1 + exp(-x)) in a form that keeps both tails accurate (no 1 - s cancellation in callers:
// they use sigmoid(-x) for 1 - sigmoid(x)): 1 / (1 + e) for x >= 0 and e / (1 + e) below, e =
// exp(-|x|), as selects around one exp and one division (a branch would run both sides in a warp
// whose lanes disagree on the sign).
template <class C> __device__ __forceinline__ C sigmoid(C x) {
  const bool up = x >= C(0);
  const C e = exp(up ? -x : x);
  return (up ? C(1) : e) / (C(1) + e);
}
// the sigmoid as an activation's result (the CPU engine's float version rounds once)
template <class C> __device__ __forceinline__ C sigmoid_final(C x) { return sigmoid(x); }
// x sigmoid(x), silu (the CPU engine's float version rounds once)
template <class C> __device__ __forceinline__ C xsigmoid(C x) { return xmul(x, sigmoid(x)); }
// ------------------------------------------------------------ float pairs
// A float carried as an unevaluated sum hi + lo (about 44 bits): the derivatives whose float
// formulas cancel or round too often (silu', mish') carry their few intermediate values so and
// round once at the end, in float arithmetic (double would halve a CPU vector's width and run at
// a fraction of the float rate on most GPUs).
struct Two {
  float hi, lo;
};
// a + b exactly, when |a| >= |b| or a = 0
__device__ __forceinline__ Two fast_two_sum(float a, float b) {
  const float s = a + b;
  return {s, b - (s - a)};
}
// a + b exactly, any magnitudes
__device__ __forceinline__ Two two_sum(float a, float b) {
  const float s = a + b, bb = s - a;
  return {s, (a - (s - bb)) + (b - bb)};
}
__device__ __forceinline__ Two two_prod(float a, float b) {
  const float p = a * b;
  return {p, prod_error(a, b, p)};
}
// c ? a : b, per component: plain float selects (a select of two pairs held in memory would pick
// an address, which keeps the CPU loops from vectorizing)
__device__ __forceinline__ Two select(bool c, Two a, Two b) { return {c ? a.hi : b.hi, c ? a.lo : b.lo}; }
// pair arithmetic to about 2^-44 relative (the low parts' products and sums rounded)
__device__ __forceinline__ Two add(Two a, Two b) {
  const Two s = two_sum(a.hi, b.hi);
  return fast_two_sum(s.hi, s.lo + (a.lo + b.lo));
}
__device__ __forceinline__ Two add_ordered(Two a, Two b) {  // |a| >= |b|
  const Two s = fast_two_sum(a.hi, b.hi);
  return fast_two_sum(s.hi, s.lo + (a.lo + b.lo));
}
__device__ __forceinline__ Two mul(Two a, Two b) {
  const Two p = two_prod(a.hi, b.hi);
  return fast_two_sum(p.hi, p.lo + (a.hi * b.lo + a.lo * b.hi));
}
// n / d rounded once (to within about 2^-40 before that rounding) for d > 0: q0 from the
// reciprocal, then q0 + (n - q0 d) / d with the exact residual.  One division.
__device__ __forceinline__ float quotient(Two n, Two d) {
  const float inv = 1.0f / d.hi;
  const float q0 = n.hi * inv;
  const float r = (fnma_exact(q0, d.hi, n.hi) + n.lo) - q0 * d.lo;
  return fma(r, inv, q0);
}
// c + v s as a pair, one Horner step of a polynomial whose partial sums are carried as pairs (v a
// float); the exponent of c.hi is at least that of v s (so Fast2Sum is exact), the low parts'
// products rounded.  Overloads for a float s and an exact float c.
__device__ __forceinline__ Two horner_step(Two c, float v, Two s) {
  const Two p = two_prod(v, s.hi);
  const Two r = fast_two_sum(c.hi, p.hi);
  return {r.hi, r.lo + (p.lo + fma(v, s.lo, c.lo))};
}
__device__ __forceinline__ Two horner_step(Two c, float v, float s) {
  const Two p = two_prod(v, s);
  const Two r = fast_two_sum(c.hi, p.hi);
  return {r.hi, r.lo + (p.lo + c.lo)};
}
__device__ __forceinline__ Two horner_step(float c, float v, Two s) {
  const Two p = two_prod(v, s.hi);
  const Two r = fast_two_sum(c, p.hi);
  return {r.hi, r.lo + fma(v, s.lo, p.lo)};
}
// exp(-(a + al)) = (m.hi + m.lo) 2^-k for float 0 <= a <= 126 and |al| <= ulp(a) (the low part of
// a pair argument; NaN passes), m in [0.7, 1.42], to about 2^-42 relative:
// a + al = k ln2 + r + rl, ln2 in three parts (LN2 1: 16 bits, so a - k LN2_1 is exact; k LN2_2
// an exact product; k LN2_3 rounded, 2^-60), r + rl exact but for that; exp(u), u = -r, |u| <=
// 0.347, by a minimax polynomial of degree 9 (kernels/cpu/fit_vmath.py exp_pair, 2^-42.9) whose
// terms of degree >= 5 are summed in float (2^-38.5 at worst) and the last five Horner steps as
// pairs (the coefficients of degree 3 and 4 as pairs); then exp(-rl) = 1 - rl.
// scaled(s) gives exp(-a) 2^s, the scaling exact (2^(s - k) normal: s - k >= -126).
struct ExpSplit {
  Two m;
  float t;  // k in the low bits of rint's magic sum
  __device__ __forceinline__ Two scaled(int s) const {
    const float p = __int_as_float((s + 127 - (__float_as_int(t) - 0x4B400000)) << 23);
    return {m.hi * p, m.lo * p};
  }
};
__device__ __forceinline__ ExpSplit exp_neg_split(float a, float al = 0.0f) {
  const float t = fma(a, 1.44269504088896341f, 12582912.0f);  // 1.5 2^23 + rint(a / ln2)
  const float k = t - 12582912.0f;
  const float r1 = fnma_exact(k, 0x1.62e4p-1f, a);  // exact
  const Two kl = two_prod(k, 0x1.7f7d1cp-20f);
  const Two r = two_sum(r1, -kl.hi);
  const float rl = r.lo + ((al - kl.lo) - k * 0x1.ef357ap-45f);
  const float u = -r.hi;
  float p = 0x1.4ea46ep-19f;
  p = fma(p, u, 0x1.a13dd4p-16f);
  p = fma(p, u, 0x1.a03d8cp-13f);
  p = fma(p, u, 0x1.6c1668p-10f);
  p = fma(p, u, 0x1.111106p-7f);
  Two e = horner_step(Two{0x1.555556p-5f, -0x1.3447fp-30f}, u, p);
  e = horner_step(Two{0x1.555556p-3f, -0x1.4cfd34p-28f}, u, e);
  e = horner_step(0.5f, u, e);
  e = horner_step(1.0f, u, e);
  e = horner_step(1.0f, u, e);  // exp(u)
  return {{e.hi, fma(-rl, e.hi, e.lo)}, t};
}
#ifndef ACT_CPU_MATH  // (the CPU engine's: kernels/cpu/prelude.h)
// exp(-a) in double for float 0 <= a <= 126 (NaN passes), to about 2^-42 relative: the float pair
// of exp_neg_split scaled by 2^-k (normal in double).  Float arithmetic and no branch: CUDA's double
// exp takes its constants as instruction pairs and has a branch.
__device__ __forceinline__ double exp_neg_d(float a, float al = 0.0f) {  // exp(-(a + al)), |al| <= ulp(a)
  const ExpSplit s = exp_neg_split(a, al);
  const long long k = __float_as_int(s.t) - 0x4B400000;
  return (double(s.m.hi) + double(s.m.lo)) * __longlong_as_double((1023 - k) << 52);
}
// 1 / q for a double q in float's normal range, to about 2^-46 relative: the float reciprocal
// (within 2 ulps) and one Newton step, where a double division is a long sequence with a slow path.
__device__ __forceinline__ double recip_near(double q) {
  const double r = __fdividef(1.0f, float(q));
  return fma(r, fma(-q, r, 1.0), r);
}
// n / q to about 2^-46 relative, q as recip_near's
__device__ __forceinline__ double div_near(double n, double q) { return n * recip_near(q); }
#endif
// gelu'(x) = Phi(x) + x phi(x), the exact GELU's derivative.  Its two terms cancel by up to 3x near
// x = -1, each with its own rounding (5.5 ulps in float), so float evaluates it in double and
// rounds once.  Double (and the 16-bit redo, in double) takes this template; float takes
// vmath.h's branch-free formula on the CPU engine and on the GPU (below: CUDA's double normcdf
// and exp, long and branchy, had cost the float backward 366 modelled H100 instructions per
// element, now 92).
template <class C> __device__ __forceinline__ C gelu_grad(C x) {
  return normcdf(x) + xmul(x, gauss(x) * C(0.39894228040143267794));  // 1 / sqrt(2 pi)
}
#ifndef ACT_CPU_MATH
// vmath.h's tables for the float gelu' below, in the constant bank: DFMA reads c[bank][offset]
// directly, where a double literal costs two moves.
// ---- BEGIN GENERATED (kernels/cpu/fit_vmath.py --header common.cuh gpu) ----
// [erfcx_f32] generated by kernels/cpu/fit_vmath.py erfcx_f32: erfc(a) exp(a^2) = sum c[i] t^i, t
//   = 1/(1 + 0.34375 a), 0 <= a <= 10.5; max rel err 2^-28.2
__constant__ double ERFCX_F32[11] = {
    -0x1.081a8eaa932bap-17, 0x1.8d8c3c9262530p-3, 0x1.89ce1db320d90p-3, 0x1.873771546f582p-3,
    0x1.12b70556a45b8p-3, 0x1.535388d186df3p-3, 0x1.71a4efa2a40f1p-4, -0x1.0ff62db43c42cp-4,
    0x1.f10c136b03864p-3, -0x1.7bc46445c60bdp-3, 0x1.5522dbe31b2e5p-5};
// [exp_lite] generated by kernels/cpu/fit_vmath.py exp_lite: expm1(r) = r + r^2 sum c[i] r^i, |r|
//   <= 0.347; max rel err 2^-31.9
__constant__ double EXP_LITE[6] = {
    0x1.0000002630e4dp-1, 0x1.555554eede0ecp-3, 0x1.5554b0720bb5ep-5, 0x1.111189f37531cp-7,
    0x1.6d72bf821daf0p-10, 0x1.a032cad6dc20bp-13};
// ---- END GENERATED ----
__constant__ double GELU_LOG2E = 0x1.71547652b82fep+0, GELU_LN2 = 0x1.62e42fefa39efp-1,
                    GELU_RSQRT2 = 0x1.6a09e667f3bcdp-1, GELU_RSQRT2PI = 0x1.9884533d43651p-2;
template <int N> __device__ __forceinline__ double horner_c(const double (&c)[N], double x) {
  double r = c[N - 1];
#pragma unroll
  for (int i = N - 2; i >= 0; --i) r = ::fma(r, x, c[i]);
  return r;
}
// gelu'(x), float, in double, as the CPU engine's (vmath.h gelu_grad: its comment has the
// derivation and the error budget): a = |x| clamped to 14.8 (NaN passes), G = exp(-a^2/2),
// P = ERFCX_F32(t), t = 1/(1 + 11 z/32), z = a/sqrt2, h = G (P/2 - a/sqrt(2 pi)) = Phi(-a) - a phi(a)
// is gelu'(x) for x < 0 and 1 - gelu'(x) above.  Without CUDA's division and exp (both branch):
// t from the float reciprocal and one Newton step (2^-46); exp as vmath's exp_lite: k =
// rint(-a^2/(2 ln2)) in [-160, 0] (magic rounding), one-FMA reduction (2^-47 absolute), 1 + r +
// r^2 EXP_LITE(r) (2^-31), 2^k through the exponent bits (normal).  Measured: 0.58 conditioned
// ulps, as the engine's (tests/test_grad_accuracy.py).
__device__ __forceinline__ float gelu_grad(float x) {
  const float af = fabsf(x);
  const double a = af > 14.8f ? 14.8f : af;
  const double d = ::fma(0.34375, a * GELU_RSQRT2, 1.0);  // in [1, 4.6]
  const double t = recip_near(d);
  const double P = horner_c(ERFCX_F32, t);
  const double s = -0.5 * (a * a);  // a^2 exact
  const double tk = ::fma(s, GELU_LOG2E, 0x1.8p52);
  const double r = ::fma(tk - 0x1.8p52, -GELU_LN2, s);
  const double p2k = __longlong_as_double(i64((u64(__double_as_longlong(tk)) + 1023u) << 52));
  const double G = (1.0 + ::fma(r * r, horner_c(EXP_LITE, r), r)) * p2k;
  const double h = G * ::fma(-a, GELU_RSQRT2PI, 0.5 * P);
  return float(x < 0.0f ? h : 1.0 - h);
}
#endif
// squareplus(x, b) = (x + h) / 2, h = hypot(x, sqrt(b)): x + (h - x) / 2 for x >= 0 (the mean of
// x and h without forming x + h, which overflows near the largest float), b / (2 (h - x)) below
// (no cancellation, no overflow).  Its derivative (1 + x / h) / 2, written b / (2 h) / (h - x) for
// x < 0 for the same reason; 1/2 at x = 0 with b = 0, 1 at +inf.  The CPU engine's float
// versions compute h as a pair in float (vmath.h).
template <class C> __device__ __forceinline__ C squareplus(C x, C b) {
  const C h = hypot(x, sqrt(b));
  if (x == inf<C>()) return x;
  if (x >= C(0)) return x + (h - x) * C(0.5);
  // x < 0: h - x overflows near the largest float: halves then
  const C q = h - x;
  return q < inf<C>() ? (b * C(0.5)) / q : (b * C(0.25)) / (h * C(0.5) - x * C(0.5));
}
template <class C> __device__ __forceinline__ C squareplus_grad(C x, C b) {
  const C h = hypot(x, sqrt(b));
  // x < 0: b / 2h(h - x) in two divisions (the product underflows for tiny x); h - x
  // overflows near the largest float: halves then
  if (x < C(0)) {
    const C q = h - x;
    return q < inf<C>() ? b / (C(2) * h) / q : b / (C(4) * h) / (h * C(0.5) - x * C(0.5));
  }
  if (h == C(0)) return C(0.5);
  return x == inf<C>() ? C(1) : (C(1) + x / h) / C(2);
}
}  // namespace m

// --------------------------------------------------------------- storage
// How a dtype is stored and in which precision it is computed: 16-bit floats in float,
// float in float, double in double.  Conversions round once, to nearest even.
template <class T> struct Storage;
template <> struct Storage<float> {
  using compute = float;
  static __device__ __forceinline__ float load(float v) { return v; }
  static __device__ __forceinline__ float store(float v) { return v; }
};
template <> struct Storage<double> {
  using compute = double;
  static __device__ __forceinline__ double load(double v) { return v; }
  static __device__ __forceinline__ double store(double v) { return v; }
};
template <> struct Storage<__half> {
  using compute = float;
  static __device__ __forceinline__ float load(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half store(float v) { return __float2half_rn(v); }
};
template <> struct Storage<__nv_bfloat16> {
  using compute = float;
  static __device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};
template <class T> using compute_t = typename Storage<T>::compute;
template <class T> __device__ __forceinline__ compute_t<T> load(T v) { return Storage<T>::load(v); }
template <class T> __device__ __forceinline__ T store(compute_t<T> v) { return Storage<T>::store(v); }

// 16 bytes of T: the widest global load/store a thread can issue on sm_80/sm_90 (LDG.E.128).
template <class T> constexpr int kPack = 16 / sizeof(T);
template <class T, int N> struct alignas(sizeof(T) * N) Pack {
  T v[N];
};
template <class P> __device__ __forceinline__ bool aligned16(const P* p) {
  return (reinterpret_cast<u64>(p) & 15u) == 0;
}

// ------------------------------------------------------------ reductions
// Two values reduced together: (max, sum of exp) for softmax, (count, sum) for sparsemax.
template <class C> struct Pair {
  C a, b;
};

__device__ __forceinline__ float shfl_xor(float v, int lane_mask, int width) {
  return __shfl_xor_sync(0xffffffffu, v, lane_mask, width);
}
__device__ __forceinline__ double shfl_xor(double v, int lane_mask, int width) {
  return __shfl_xor_sync(0xffffffffu, v, lane_mask, width);
}
template <class C> __device__ __forceinline__ Pair<C> shfl_xor(Pair<C> v, int lane_mask, int width) {
  return {shfl_xor(v.a, lane_mask, width), shfl_xor(v.b, lane_mask, width)};
}

// Butterfly over groups of `width` lanes: every lane ends with the group's result.  Every lane
// of the warp must call it (full mask).
template <class V, class F> __device__ __forceinline__ V warp_allreduce(V v, F f, int width) {
  for (int o = width / 2; o > 0; o /= 2) v = f(v, shfl_xor(v, o, width));
  return v;
}

// Whole-block reduction, every thread gets the result.  blockDim.x is a multiple of 32 and at most
// 1024; `scratch` holds 32 values.  The per-warp partials are reduced by a second butterfly in every
// warp (f.identity() past the last warp): no loop, and all threads agree bit for bit (each step
// combines the same two values in either order).  The leading barrier protects `scratch` from a
// previous call.
template <class V, class F> __device__ __forceinline__ V block_allreduce(V v, F f, V* scratch) {
  v = warp_allreduce(v, f, 32);
  __syncthreads();
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  const unsigned lane = threadIdx.x % 32;
  return warp_allreduce(lane < blockDim.x / 32 ? scratch[lane] : f.identity(), f, 32);
}

template <class C> struct Sum {
  __device__ __forceinline__ C operator()(C a, C b) const { return a + b; }
  __device__ __forceinline__ C identity() const { return C(0); }
};
template <class C> struct NanMax {
  __device__ __forceinline__ C operator()(C a, C b) const { return m::nanmax(a, b); }
  __device__ __forceinline__ C identity() const { return -m::inf<C>(); }
};

// ------------------------------------------------------------ randomness
// The counter-based hash of the package's reproducible randomness (rrelu's slopes, stochastic
// FP8 rounding; docs/semantics.md): the splitmix64 finalizer of seed + (i + 1) * golden ratio.
__device__ __forceinline__ u64 counter_hash(u64 seed, i64 i) {
  u64 z = seed + (u64(i) + 1ull) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// ------------------------------------------------------------ indexing
// Rows of a row-wise op live in an (outer, n, inner) contiguous array: row r starts at
// (r / inner) * n * inner + r % inner and its elements are `inner` apart.
__device__ __forceinline__ i64 row_base(i64 row, i64 n, i64 inner) {
  return inner == 1 ? row * n : (row / inner) * n * inner + row % inner;
}

}  // namespace act

// Entry points are generated from registry names and these dtype names only.
#define ACT_STORAGE_f16 __half
#define ACT_STORAGE_bf16 __nv_bfloat16
#define ACT_STORAGE_f32 float
#define ACT_STORAGE_f64 double

// The CPU harness defines this to register each entry point by name; on the GPU it is empty.
#ifndef ACT_ENTRY_HOOK
#define ACT_ENTRY_HOOK(entry)
#endif
