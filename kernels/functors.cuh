// One forward/backward pair per elementwise activation (docs/semantics.md is the contract).
//
// fwd(x, c) returns f(x); bwd(v, c) returns the derivative f'(x), which the loop multiplies by dy.
// v is x, or y = f(x) for the functors marked from_y (sigmoid, tanh, exponential).  The loop
// returns NaN for a NaN input before calling either, so a functor only has to get finite values
// and +-inf right.  C is the compute type: float for f16/bf16/f32, double for f64.
// Parameters arrive in record order as c.p0, c.p1, c.p2 (BoundParams.kernel_floats()).
#pragma once
#include "common.cuh"

namespace act {

// What a functor sees besides x: the kernel floats, prelu's weight for this element, rrelu's seed
// and the element's flat index in x.
template <class C> struct Ctx {
  C p0, p1, p2;
  C w;
  u64 seed;
  i64 i;
};

struct Functor {
  static constexpr bool from_y = false;    // bwd takes y instead of x
  static constexpr bool weighted = false;  // uses c.w; dweight(x, dy, c) is this element's dweight term
  static constexpr bool heavy = true;      // calls a transcendental function (else a few compares and
                                           // multiplies: memory-bound, worth threads only on big arrays)
  static constexpr int choice = -1;        // index (p0..p2) of a 0/1 parameter the code branches on, or -1:
                                           // the CPU loops compile one copy per value
  static constexpr bool nan_through = false;  // fwd(NaN) is NaN by itself: the loop can skip its NaN test
  static constexpr bool periodic = false;  // calls sin/cos (the CPU loop redoes huge arguments exactly)
  static constexpr bool redo_in_double = true;  // a 16-bit result near a tie may be computed again in
                                                // double (false: constants derived in compute precision)
  static constexpr bool identity = false;  // fwd(x) is x (the CPU engine copies x's bytes)
  // x (a gated unit: a, b) where the float derivative loses its relative accuracy, near a zero of
  // f' that its formula reaches by cancellation: a 16-bit result there, whose float value may sit
  // on the wrong side of a tie beyond the near-tie window, is computed again in double
  template <class C> static __device__ bool bwd_cancels(C, const Ctx<C>&) { return false; }
  template <class C> static __device__ bool grad_cancels(C, C, const Ctx<C>&) { return false; }
};
// Functors with nothing but compares, multiplies and divisions.
struct CheapFunctor : Functor {
  static constexpr bool heavy = false;
};

// ------------------------------------------------------------- 16-bit stores
// 16-bit dtypes compute in float and round once on store, but a float result a few ulps off can
// round to the wrong 16-bit neighbour where the exact value is near a tie.  store_once finds the
// results near a rounding boundary of T (near_tie: rare, about 0.9% of float16 and 0.1% of
// bfloat16 results, a branch off the common path) and takes redo() instead: f again in double,
// rounded to float with round-to-odd and then to T, i.e. the exact value rounded once (as the CPU
// engine's Core::round_once).  Only functors with redo_in_double (not prelu: its slope is a float).

// The near-tie test, on r's bits (integer operations; the float formulation, T's rounding of r
// minus and plus |r| 2^-19 + 2^-60 compared, took two conversions and their unpacking).  A
// boundary of T's rounding is a float whose dropped bits are 100...0: the low 16 bits 0x8000 for
// bfloat16, the low 13 bits 0x1000 for float16 results from 2^-14 up (to the overflow boundary
// 65520: above it every value rounds to inf).  Float16 subnormals are spaced 2^-24 apart, as the
// first normal binade: |r| + 2^-14 (rounded: 2^-38 absolute, half an ulp there) puts their
// boundaries on that pattern.  The window holds the old test's 2^-19 |r|, 16 m float ulps (m in
// [1, 2) the significand), with its own roundings: TIE_ULPS = 34 ulps either side for bfloat16,
// 17 + 16 (m - 1) for float16, whose boundaries are 8 times as dense (0.61% of its results).  The
// old test also caught every bfloat16 result below about 2^-51 in magnitude (its absolute 2^-60: subnormal float results
// carry absolute errors of many of their ulps): results below 2^-37 are taken here, but zero (as
// the old test: -0 and +0 compared equal; the exact value rounds to zero too, and relu's and the
// other piecewise-linear units' zeros, half their results, stay off the redo).  Every result
// the old test caught is caught (tests/test_cuda_host.py; all 2^32 floats checked once), but inf
// (inf - inf gave it NaN): a float result off by less than the window overflows only where the
// exact value rounds to inf in T too.  The window's low bits are moved to the top by a multiply
// (one IMAD or LEA with the offset); NaN may match it, and keeps its bits (store_once).
constexpr unsigned TIE_ULPS = 34;      // bfloat16
constexpr unsigned TIE_ULPS_F16 = 17;  // float16, plus 16 (m - 1)
// (The CPU engine takes this test too: engine.cpp, Core::round_once and Gated::round_once.)
template <class T> __device__ __forceinline__ bool near_tie(float r);
template <> __device__ __forceinline__ bool near_tie<__nv_bfloat16>(float r) {
  const unsigned b = unsigned(__float_as_int(r));
  // (| not ||: no branch, and the CPU engine's loop over it vectorizes)
  return ((b << 1) - 1u < (0x2d000000u << 1) - 1u) |  // 0 < |r| < 2^-37
         (b * 0x10000u + ((TIE_ULPS - 0x8000u) << 16) <= (2 * TIE_ULPS << 16 | 0xffffu));
}
template <> __device__ __forceinline__ bool near_tie<__half>(float r) {
  const float a = m::abs(r);
  const unsigned b = unsigned(__float_as_int(a < 0x1p-14f ? a + 0x1p-14f : a));
  const int d = int((b << 19) + 0x80000000u);  // (low 13 bits - 0x1000) 2^19
  return (d < 0 ? 0u - unsigned(d) : unsigned(d)) <= (TIE_ULPS_F16 << 19) + (b & 0x780000u);  // (m - 1) 16 more
}

// double -> float rounded to odd: rounding that float again to a narrower type rounds once.
__device__ __forceinline__ float to_float_odd(double e) {
  float f = float(e);
  if (double(f) == e || f != f) return f;
  int b = __float_as_int(f);
  if (m::abs(double(f)) > m::abs(e)) b -= 1;  // rounded away from zero: step back toward it
  return __int_as_float(b | 1);
}
template <class C> __device__ __forceinline__ Ctx<double> widen(const Ctx<C>& c) {
  return {double(c.p0), double(c.p1), double(c.p2), double(c.w), c.seed, c.i};
}
template <class F, class T, class Redo>
__device__ __forceinline__ T store_once(compute_t<T> r, const Redo& redo, bool tiny = false) {
  if constexpr (sizeof(T) == 2 && F::redo_in_double && !F::weighted) {
    if (near_tie<T>(r) || tiny) {
#ifdef ACT_MODEL_NO_CORRECTION
      r = -r;  // the performance model's copy of the kernel: the test kept, the correction left out
#else
      const float e = to_float_odd(redo());
      r = r == r ? e : r;  // a NaN keeps its bits
#endif
    }
  }
  return store<T>(r);
}
// A bfloat16 result of a heavy functor below |scale| FLT_MIN: its float factor (f(a) of a gated
// unit, f'(z)) was subnormal or zero, a few significant bits, and the other operand (b, dy), as
// large as bfloat16 allows, scaled it up to a normal result: redone too (as the CPU engine does).
// float16's operands stay below 65504, too small to lift such a factor to a float16 result.
template <class T> constexpr bool kBfloat16 = false;
template <> constexpr bool kBfloat16<__nv_bfloat16> = true;
template <class F, class T, class C> __device__ __forceinline__ bool scaled_tiny(C r, C scale) {
  if constexpr (kBfloat16<T> && F::heavy) return m::abs(r) < scale * C(0x1p-126);
  return false;
}
// r = f(z), or dy f'(z) (f'(f(z)) for from_y), of an elementwise functor, stored as T
template <class F, class T, class C> __device__ __forceinline__ T store_fwd(C r, C z, const Ctx<C>& c) {
  return store_once<F, T>(r, [&] { return F::fwd(double(z), widen(c)); });
}
template <class F, class T, class C> __device__ __forceinline__ T store_bwd(C r, C z, C dy, const Ctx<C>& c) {
  return store_once<F, T>(r, [&] {
    const Ctx<double> w = widen(c);
    return double(dy) * F::bwd(F::from_y ? F::fwd(double(z), w) : double(z), w);
  }, scaled_tiny<F, T>(r, m::abs(dy)) || F::bwd_cancels(z, c));
}
// r = f(a, b) of a gated functor, or dy times its derivative by a (B = 0) or b (B = 1)
template <class F, class T, class C> __device__ __forceinline__ T store_gated_fwd(C r, C a, C b, const Ctx<C>& c) {
  return store_once<F, T>(r, [&] { return F::fwd(double(a), double(b), widen(c)); },
                          scaled_tiny<F, T>(r, m::max(m::abs(a), m::abs(b))));
}
template <class F, class T, int B, class C>
__device__ __forceinline__ T store_gated_bwd(C r, C a, C b, C dy, const Ctx<C>& c) {
  return store_once<F, T>(r, [&] {
    const Pair<double> g = F::grad(double(a), double(b), widen(c));
    return double(dy) * (B == 0 ? g.a : g.b);
  }, scaled_tiny<F, T>(r, m::abs(dy) * m::max(m::max(m::abs(a), m::abs(b)), C(1))) ||
                          (B == 0 && F::grad_cancels(a, b, c)));
}

namespace fn {

// relu(negative_slope=p0, max_value=p1 (+inf: none), threshold=p2), Keras 3 semantics.
// x > t: x, or clip(x, 0, max) when a cap is given;  x <= t: s * (x - t) as +0.0 when zero.
struct Relu : CheapFunctor {
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) {
    if (x > c.p2) return c.p1 < m::inf<C>() ? m::min(m::max(x, C(0)), c.p1) : x;
    const C r = c.p0 == C(0) ? C(0) : c.p0 * (x - c.p2);  // s = 0 at x = -inf gives 0, not NaN
    return r == C(0) ? C(0) : r;                            // -0.0 -> +0.0
  }
  // 1 above the threshold (0 outside the open (0, max) when capped); s at or below it.
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) {
    if (x > c.p2) return (c.p1 < m::inf<C>() && !(x > C(0) && x < c.p1)) ? C(0) : C(1);
    return c.p0;
  }
};

// relu6: min(max(x, 0), 6);  1 on the open (0, 6).
struct Relu6 : CheapFunctor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) { return m::min(C(6), m::max(C(0), x)); }
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) { return (x > C(0) && x < C(6)) ? C(1) : C(0); }
};

// x > 0: x; else a * x with a * x := 0 when a == 0 (so -inf gives 0).  Derivative: 1, else a.
template <class C> __device__ __forceinline__ C leaky(C x, C a) { return x > C(0) ? x : (a == C(0) ? C(0) : a * x); }
template <class C> __device__ __forceinline__ C leaky_grad(C x, C a) { return x > C(0) ? C(1) : a; }

// leaky_relu(negative_slope=p0).
struct LeakyRelu : CheapFunctor {
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) { return leaky(x, c.p0); }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) { return leaky_grad(x, c.p0); }
};

// prelu: slope c.w (weight[i % C], weight[0], or the float weight);  dweight term: dy x where x <= 0.
struct Prelu : CheapFunctor {
  static constexpr bool weighted = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) { return leaky(x, c.w); }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) { return leaky_grad(x, c.w); }
  template <class C> static __device__ C dweight(C x, C dy, const Ctx<C>&) { return x > C(0) ? C(0) : dy * x; }
};

// rrelu(lower=p0, upper=p1, training=p2, seed): slope (lower + upper) / 2 in eval mode, and
// lower + (upper - lower) * u(seed, i) in training, u from the splitmix64 finalizer of
// seed + (i + 1) * golden ratio: 24 bits, exact in float.  The backward recomputes the same slope.
// The slope is a real number of the compute-precision parameters: a 16-bit result near a tie is
// computed again with the slope in double (exact: a few bits more than lower and upper), so that
// x times the slope rounds once.
struct Rrelu : CheapFunctor {
  static constexpr int choice = 2;  // training
  template <class C> static __device__ C slope(const Ctx<C>& c) {
    if (c.p2 == C(0)) return (c.p0 + c.p1) / C(2);
    const u64 z = counter_hash(c.seed, c.i);
    const C u = C(z >> 40) * C(5.9604644775390625e-08);  // 2^-24
    return c.p0 + (c.p1 - c.p0) * u;
  }
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) { return leaky(x, slope(c)); }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) { return leaky_grad(x, slope(c)); }
};

// elu(alpha=p0): x > 0: x; else alpha * expm1(x).  Derivative 1, else alpha * exp(x) (alpha at 0).
struct Elu : Functor {
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) { return x > C(0) ? x : c.p0 * m::expm1(x); }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) { return x > C(0) ? C(1) : c.p0 * m::exp(x); }
};

// selu: scale * elu(x, alpha) with the constants of Klambauer et al. (same digits as the catalogue).
struct Selu : Functor {
  template <class C> static __device__ C alpha() { return C(1.6732632423543772848170429916717); }
  template <class C> static __device__ C scale() { return C(1.0507009873554804934193349852946); }
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) {
    return scale<C>() * (x > C(0) ? x : alpha<C>() * m::expm1(x));
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) {
    return scale<C>() * (x > C(0) ? C(1) : alpha<C>() * m::exp(x));
  }
};

// celu(alpha=p0): x > 0: x; else alpha * expm1(x / alpha).  Derivative 1, else exp(x / alpha).
struct Celu : Functor {
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) {
    return x > C(0) ? x : c.p0 * m::expm1(x / c.p0);
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) { return x > C(0) ? C(1) : m::exp(x / c.p0); }
};

// s + x g s (1 - s), s = sigmoid(u), for u of the sign of x with g = du/dx > 0 (silu': u = x;
// the tanh GELU's derivative): with e = exp(-|u|) (double, to 2^-42 or better) and d = 1 + e, one
// quotient over d^2 in double, rounded once: (d + x g e) / d^2 for x >= 0, e ((1 + x g) + e) / d^2
// below, where its zero's cancellation is the rounding of 1 + x g alone (exact for silu, x <= -1).
__device__ __forceinline__ float logistic_grad(bool pos, double xg, double e) {
  const double d = 1.0 + e;
  return float(m::div_near(pos ? xg * e + d : e * ((1.0 + xg) + e), d * d));
}

// gelu(approximate=p0: 0 exact, 1 tanh).
//   exact: x * Phi(x) = 0.5 x erfc(-x / sqrt2);  Phi(x) + x phi(x) (m::gelu_grad: its two terms
//          cancel by up to 3x near x = -1, so float evaluates it in double and rounds once, by
//          vmath.h's branch-free formula on the CPU and the GPU alike).  m::normcdf and m::gauss
//          take x itself: rounding -x / sqrt2 or x^2 / 2 first would cost about x^2 ulps in the
//          tails.
//   tanh:  0.5 x (1 + tanh(u)), u = k0 (x + k1 x^3), written x * sigmoid(2u) (same value: no
//          cancellation of 1 + tanh(u) in the negative tail);  s + 2 x s (1 - s) k0 (1 + 3 k1 x^2).
struct Gelu : Functor {
  static constexpr int choice = 0;  // approximate
  template <class C> static __device__ C k0() { return C(0.7978845608028654); }  // sqrt(2 / pi)
  template <class C> static __device__ C k1() { return C(0.044715); }
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) {
    if (c.p0 != C(0)) return m::xmul(x, m::sigmoid(C(2) * k0<C>() * (x + k1<C>() * x * x * x)));
    return m::xnormcdf(x);
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) {
    if (c.p0 != C(0)) {
      const C u2 = C(2) * k0<C>() * (x + k1<C>() * x * x * x);
      const C s = m::sigmoid(u2);
      return s + m::xmul(x * (C(1) + C(3) * k1<C>() * x * x), C(2) * k0<C>() * s * m::sigmoid(-u2));
    }
    return m::gelu_grad(x);
  }
  // exact: Phi(x) + x phi(x) in double keeps the polynomial's 2^-28 (vmath.h), which the
  // cancellation at its zero x0 = -0.7518 magnifies: within 2^-7 of x0 (7 times the distance where
  // the error reaches the float16 near-tie window) 16-bit results are computed again in double
  template <class C> static __device__ bool bwd_cancels(C x, const Ctx<C>& c) {
    return c.p0 == C(0) && m::abs(x + C(0.75179152)) < C(0x1p-7);
  }
  // float: the tanh form's two terms cancel at its zero x = -0.7525 (float roundings there put 16-bit
  // results on the wrong side of a tie), so it is silu''s quotient in double (logistic_grad, u =
  // u2(x)).  x clamped to +-11 (|u| <= 113; beyond, the result rounds to 0 or 1); u as a float pair
  // for the exp.
  static __device__ float bwd(float v, const Ctx<float>& c) {
    if (c.p0 == 0.0f) return m::gelu_grad(v);
    const float xf = v < -11.0f ? -11.0f : (v > 11.0f ? 11.0f : v);
    const double kx = 2.0 * k0<double>() * double(xf), q = k1<double>() * double(xf) * double(xf);
    const double au = m::abs(kx * (1.0 + q));  // |u|
    const float uh = float(au);
    const double e = m::exp_neg_d(uh, float(au - double(uh)));
    return logistic_grad(xf >= 0.0f, kx * (1.0 + 3.0 * q), e);  // x du/dx
  }
};

// sigmoid: 1 / (1 + exp(-x));  sigmoid(x) sigmoid(-x).
struct Sigmoid : Functor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) { return m::sigmoid_final(x); }
  // e / (1 + e)^2, e = exp(-|x|): from x, accurate in both tails (y (1 - y) from the rounded y is
  // 0 beyond x = 17 in float)
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) {
    const C e = m::exp_nonpos(-m::abs(x));
    const C q = C(1) + e;
    return e / (q * q);
  }
};

// hard_sigmoid(slope=p0 > 0, offset=p1): clip(slope x + offset, 0, 1), evaluated as
// clip(x + offset/slope, 0, 1/slope) / (1/slope): the defaults give relu6(x + 3) / 6 exactly (slope x
// would round 1/6 x); clipping before the division gives the same values (the rounding is
// monotonic) and clamps against a variable, which compiles to single min/max instructions.
// Derivative: slope on the open (-offset/slope, (1 - offset)/slope), the kinks decided on x itself.
struct HardSigmoid : CheapFunctor {
  static constexpr bool nan_through = true;
  static constexpr bool redo_in_double = false;  // offset/slope and 1/slope in compute precision
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) {
    const C d = C(1) / c.p0;
    return m::min(d, m::max(C(0), x + c.p1 / c.p0)) / d;
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) {
    return (x > -c.p1 / c.p0 && x < (C(1) - c.p1) / c.p0) ? c.p0 : C(0);
  }
};

// log_sigmoid: min(x, 0) - log1p(exp(-|x|));  sigmoid(-x).
struct LogSigmoid : Functor {
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) {
    return m::min(x, C(0)) - m::log1p(m::exp_nonpos(-m::abs(x)));
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) { return m::sigmoid(-x); }
};

// softplus(beta=p0, threshold=p1 (+inf: none)): bx = beta x;  x when bx > threshold, else
// (max(bx, 0) + log1p(exp(-|bx|))) / beta.  Derivative sigmoid(bx), 1 above the threshold.
struct Softplus : Functor {
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) {
    const C bx = c.p0 * x;
    if (bx > c.p1) return x;
    // max(x, 0) + log1p(exp(-|bx|)) / beta: (max(bx, 0) + ...) / beta overflows where bx does
    return m::max(x, C(0)) + m::log1p(m::exp_nonpos(-m::abs(bx))) / c.p0;
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) {
    const C bx = c.p0 * x;
    return bx > c.p1 ? C(1) : m::sigmoid(bx);
  }
};

// softsign: x / (1 + |x|) (+-1 at +-inf);  1 / (1 + |x|)^2.
struct Softsign : CheapFunctor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) {
    const C a = m::abs(x);
    return a == m::inf<C>() ? m::copysign(C(1), x) : x / (C(1) + a);
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) {
    const C r = C(1) / (C(1) + m::abs(x));  // squared after the division: (1 + |x|)^2 overflows
    return r * r;
  }
};

// silu: x sigmoid(x);  s (1 + x (1 - s)), s = sigmoid(x).  With e = exp(-|x|) both signs are one
// quotient, (a d + x c) / d^2, d = 1 + e, (a, c) = (1, e) for x >= 0 and (e, e) below:
//   x >= 0: (1 + e + x e) / (1 + e)^2;  x < 0: e (1 + x + e) / (1 + e)^2,
// so the only cancellation is the one of the exact value near its zero at x = -1.28.  Float
// evaluates it in double and rounds once (below): 0.5 conditioned ulps on a dense grid (three
// roundings of the sigmoid and the exp reached 3.2), the subnormal results below -87 rounded once.
struct Silu : Functor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) { return m::xsigmoid(x); }
  // double: s (1 + x (1 - s)), for x < 0 as s ((1 + x) - x s) (1 + x is exact for x <= -1 and x s
  // small, so the cancellation near the zero costs no more than the rounding of x s)
  static __device__ double bwd(double x, const Ctx<double>&) {
    const double e = m::exp(-m::abs(x));
    const bool up = x >= 0.0;
    const double r = 1.0 / (1.0 + e);
    const double s = (up ? 1.0 : e) * r, c = (up ? e : 1.0) * r;  // sigmoid(+-x), one division
    const double q = up ? 1.0 + m::xmul(x, c) : (1.0 + x) - m::xmul(x, s);
    return m::xmul(q, s);  // 0 at -inf (q = -inf)
  }
  // float: the quotient (a d + x c) / d^2 in double and rounded once (subnormal results too), from
  // x clamped to +-112 (beyond, silu' has reached its float limit, 0 or 1; NaN passes): x >= 0:
  // (d + x e) / d^2; x < 0: e ((1 + x) + e) / d^2, 1 + x exact, so the zero's cancellation costs
  // one rounding.  e = exp(-|x|) to 2^-42 or better (m::exp_neg_d).  On a CPU vector unit this ran
  // 1.8x faster than float pairs (half the lanes, a third of the operations); on the GPU it takes
  // 111 modelled instructions per element where the pairs took 136.
  static __device__ float bwd(float v, const Ctx<float>&) {
    const float xf = v < -112.0f ? -112.0f : (v > 112.0f ? 112.0f : v);
    return logistic_grad(xf >= 0.0f, xf, m::exp_neg_d(m::abs(xf)));
  }
};

// hard_silu: x relu6(x + 3) / 6;  0 for x <= -3, 1 for x >= 3, (2x + 3) / 6 between.
struct HardSilu : CheapFunctor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) {
    const C y = x >= C(3) ? x : x * (x + C(3)) * C(1.0 / 6.0);  // a multiply: division is slow on CPUs
    return x <= C(-3) ? C(0) : y;
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) {
    return x <= C(-3) ? C(0) : (x >= C(3) ? C(1) : (C(2) * x + C(3)) / C(6));
  }
};

// mish: x tanh(sp), sp = softplus(x);  tanh(sp) + x sigmoid(x) sech^2(sp).
// With e = exp(-|x|) both are rational in e (one exp, no log1p or tanh):
//   x >= 0: tanh(sp) = 1 - 2e^2 / Dp, Dp = 1 + 2e (1 + e)
//   x <  0: tanh(sp) = e - e^2 (1 + e) / Dn, Dn = e (e + 2) + 2
// Below -80 mish(x) = x e^x (1 - e/2 + ...) is x sigmoid(x) to the last bit, and m::xsigmoid
// keeps x e^x accurate where e^x alone is subnormal (x < -87 in float).
// The derivative, with d = 1 + e (Dn = 1 + d^2, Dp = e^2 + d^2 and sech^2(sp) = 4 d^2 / Dn^2):
//   x >= 0: ((1 + 2e) Dp + 4x e^2 d) / Dp^2;   x < 0: e ((2 + e) Dn + 4x d) / Dn^2,
// one quotient m (B Q + 4x c d) / Q^2 with (Q, B, c, m) = (Dp, d + e, e^2, 1) or (Dn, d + 1, 1, e):
// every term positive but 4x c d for x < 0, which cancels only near the zero at x = -1.19 (1 -
// tanh(sp)^2 lost every digit for x > 9).  Float evaluates the quotient in double and rounds
// once (below): 0.5 conditioned ulps (5.5 with float roundings), subnormal results rounded once.
struct Mish : Functor {
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) {
    const C e = m::exp_nonpos(-m::abs(x));
    const C pos = x - m::xmul(x, C(2) * e * e / (C(2) * e * (C(1) + e) + C(1)));
    const C neg = x < C(-80) ? m::xsigmoid(x) : x * (e - e * e * (C(1) + e) / (e * (e + C(2)) + C(2)));
    return x >= C(0) ? pos : neg;
  }
  // double, in the form of tanh(sp) (x >= 0: 1 - N / Dp^2, N = 2e^2 (Dp - 2x (1 + e)); x < 0:
  // e P / Dn^2, P = 4 (1 + x) + e (6 + 4x + e (4 + e)))
  static __device__ double bwd(double x, const Ctx<double>&) {
    const double e = m::exp(-m::abs(x));
    const bool up = x >= 0.0;
    const double dp = 2.0 * e * (1.0 + e) + 1.0;
    const double dn = e * (e + 2.0) + 2.0;
    const double p = 4.0 * (1.0 + x) + e * ((6.0 + 4.0 * x) + e * (4.0 + e));
    const double num = up ? m::xmul(dp - 2.0 * x * (1.0 + e), 2.0 * e * e) : m::xmul(p, e);  // 0 at +-inf
    const double den = up ? dp : dn;
    const double r = num / (den * den);
    return up ? 1.0 - r : r;
  }
  // float: the same quotient in double, rounded once, as silu' takes it (Silu::bwd); the zero's
  // cancellation is between B Q and 4x d.  2x faster than float pairs on a CPU; 123 modelled GPU
  // instructions per element where they took 186.
  static __device__ float bwd(float v, const Ctx<float>&) {
    const float xf = v < -112.0f ? -112.0f : (v > 112.0f ? 112.0f : v);
    const double x = xf, e = m::exp_neg_d(m::abs(xf)), d = 1.0 + e;
    const bool neg = x < 0.0;
    const double c = neg ? 1.0 : e * e;
    const double q = d * d + c, b = d + (neg ? 1.0 : e);
    const double n = b * q + 4.0 * x * (c * d);
    return float(m::div_near(neg ? e * n : n, q * q));
  }
};

// tanh;  sech^2 x.
struct Tanh : Functor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) { return m::tanh(x); }
  // sech^2 x = 4e / (1 + e)^2, e = exp(-2|x|): from x, accurate in the tails (1 - y^2 cancels)
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) {
    const C e = m::exp_nonpos(C(-2) * m::abs(x));
    const C q = C(1) + e;
    return C(4) * e / (q * q);
  }
};

// hard_tanh(min_val=p0, max_val=p1): clip(x, lo, hi);  1 on the open (lo, hi).
struct HardTanh : CheapFunctor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) { return m::min(c.p1, m::max(c.p0, x)); }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) { return (x > c.p0 && x < c.p1) ? C(1) : C(0); }
};

// tanh_shrink: x - tanh(x);  tanh(x)^2.
// x - tanh(x) cancels near 0: below |x| = 1.05 it is x^3 N(y) / D(y), y = x^2, a convergent of
// Lambert's continued fraction x^3 / (x^2 + 3 + x^2 / (5 + x^2 / (7 + ...))) (positive
// coefficients: no cancellation; relative truncation error below 5e-19 in double with 9 levels,
// 3e-9 with the 5 that float inputs use, evaluated in double).  Above, |x| - tanh|x| =
// (|x| - 1) + 2e / (1 + e), e = exp(-2|x|), sign restored: |x| - 1 is exact (or, beyond 2^24,
// the rounded result) and the small second term carries the rounding errors, so nothing
// cancels (x - tanh(x) lost a bit there: 2.5 ulps).
struct TanhShrink : Functor {
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) {
    const C a = m::abs(x), e = m::exp_nonpos(C(-2) * a);
    const C far = m::copysign((a - C(1)) + C(2) * e / (C(1) + e), x);
    C near;
    if (sizeof(C) == sizeof(float)) {
      // in double, rounded once at the end (in float the six roundings reached 3.5 ulps)
      const double xd = double(x), y = xd * xd;
      const double n = (y + 189.0) * y + 3465.0, d = ((y + 210.0) * y + 4725.0) * y + 10395.0;
      near = C(xd * y * (n / d));
    } else {
      const C y = x * x;
      const C n = (((y + C(1430)) * y + C(289575)) * y + C(16081065)) * y + C(218243025);
      const C d = ((((y + C(1485)) * y + C(315315)) * y + C(18918900)) * y + C(310134825)) * y + C(654729075);
      near = x * y * (n / d);
    }
    return a < C(1.05) ? near : far;
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) {
    const C t = m::tanh(x);
    return t * t;
  }
};

// soft_shrink(threshold=p0): x - t above t, x + t below -t, else 0;  1 where |x| > t.
struct SoftShrink : CheapFunctor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) {
    return x - m::min(c.p0, m::max(-c.p0, x));  // x - clip(x, -t, t): x - t, x + t or +0; NaN for NaN
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) { return m::abs(x) > c.p0 ? C(1) : C(0); }
};

// hard_shrink(threshold=p0): 0 on [-t, t], else x;  1 where |x| > t.
struct HardShrink : CheapFunctor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) { return m::abs(x) <= c.p0 ? C(0) : x; }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) { return m::abs(x) > c.p0 ? C(1) : C(0); }
};

// threshold(threshold=p0, value=p1): x > t: x; else value;  1 where x > t.
struct Threshold : CheapFunctor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) { return x <= c.p0 ? c.p1 : x; }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) { return x > c.p0 ? C(1) : C(0); }
};

// sparse_plus: 0 for x <= -1, (x + 1)^2 / 4 on (-1, 1), x for x >= 1;  0 / (x + 1) / 2 / 1.
struct SparsePlus : CheapFunctor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) {
    const C u = m::max(C(-1), x) + C(1);  // no upper clamp: x >= 1 takes x
    return x >= C(1) ? x : u * u * C(0.25);
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) {
    return x <= C(-1) ? C(0) : (x >= C(1) ? C(1) : (x + C(1)) / C(2));
  }
};

// sparse_sigmoid: 0 for x <= -1, (x + 1) / 2 on (-1, 1), 1 for x >= 1;  1/2 on the open (-1, 1).
struct SparseSigmoid : CheapFunctor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) {
    return m::min(C(1), m::max(C(0), (x + C(1)) * C(0.5)));
  }
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) { return (x > C(-1) && x < C(1)) ? C(0.5) : C(0); }
};

// squareplus(b=p0): (x + sqrt(x^2 + b)) / 2 without cancellation or overflow (m::squareplus);
// derivative (1 + x / sqrt(x^2 + b)) / 2 (m::squareplus_grad).
struct Squareplus : Functor {
  static constexpr bool nan_through = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) { return m::squareplus(x, c.p0); }
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) { return m::squareplus_grad(x, c.p0); }
};

// exponential: exp(x);  derivative from y: y.
struct Exponential : Functor {
  static constexpr bool nan_through = true;
  static constexpr bool from_y = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) { return m::exp(x); }
  template <class C> static __device__ C bwd(C y, const Ctx<C>&) { return y; }
};

// linear: x;  1.
struct Linear : CheapFunctor {
  static constexpr bool nan_through = true;
  static constexpr bool identity = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) { return x; }
  template <class C> static __device__ C bwd(C, const Ctx<C>&) { return C(1); }
};

// log1mexp: log(1 - exp(-x)) as log(-expm1(-x)) below ln 2, log1p(-exp(-x)) above (Maechler);
// NaN for x < 0, -inf at 0.  Derivative 1 / expm1(x), +inf at 0 and at -0.0, NaN for x < 0 (outside
// the domain, as the forward).
struct Log1mexp : Functor {
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) {
    return m::log1mexp(x);
  }
  // 1 / expm1(x); exp(-x) where expm1 would overflow (the two agree to exp(-x) relative: far below
  // the smallest subnormal), so the subnormal tail is not flushed to 0 (float64 x > 709.8)
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) {
    const C big = sizeof(C) == 4 ? C(80) : C(700);
    return x < C(0) ? m::nan<C>() : (x == C(0) ? m::inf<C>() : (x > big ? m::exp(-x) : C(1) / m::expm1(x)));
  }
};

// lisht: x tanh(x);  tanh(x) + x sech^2(x), sech^2 = 4e / (1 + e)^2, e = exp(-2|x|): both terms
// have the sign of x, so nothing cancels (1 - tanh(x)^2 lost digits as tanh approached 1: 9.7 ulps
// float64, 4.7 float32).
struct Lisht : Functor {
  template <class C> static __device__ C fwd(C x, const Ctx<C>&) { return x * m::tanh(x); }
  template <class C> static __device__ C bwd(C x, const Ctx<C>&) {
    const C e = m::exp_nonpos(C(-2) * m::abs(x));
    const C q = C(1) + e;
    return m::tanh(x) + m::xmul(x, C(4) * e / (q * q));  // 0 at +-inf: e = 0
  }
};

// snake(frequency=p0): x + sin(f x)^2 / f, +-inf at +-inf;  1 + sin(2 f x) (NaN at +-inf: no limit).
struct Snake : Functor {
  static constexpr bool periodic = true;
  template <class C> static __device__ C fwd(C x, const Ctx<C>& c) {
    if (m::abs(x) == m::inf<C>()) return x;  // the limit: x dominates the bounded sin^2
    const C s = m::sin(c.p0 * x);
    return x + s * s / c.p0;
  }
  // 1 + sin(2fx) = 2 sin^2(fx + pi/4) = (sin fx + cos fx)^2, never 1 + 2 sin cos, which loses every
  // digit near its zeros.  |fx| < 1 (the zero at -pi/4): fx + pi/4 with pi/4 in two parts, exact
  // there; elsewhere sin fx + cos fx, whose rounding stays below the error that the rounding of
  // x itself causes (|fx| >= 1).  No overflow of 2fx.
  template <class C> static __device__ C bwd(C x, const Ctx<C>& c) {
    const C pi4_hi = C(0.78539816339744830962);
    const C pi4_lo = sizeof(C) == sizeof(float) ? C(-2.1855694e-08) : C(3.061616997868383e-17);
    const C fx = c.p0 * x;
    const bool near = m::abs(fx) < C(1);
    const C a = near ? (fx + pi4_hi) + pi4_lo : fx;
    const C s = m::sin(a), k = m::cos(a);
    const C t = s + k;
    return near ? C(2) * s * s : t * t;
  }
};

// --------------------------------------------------------------- gated
// y = f(a, b) for x = a | b.  grad(a, b, c) returns (dy/da, dy/db); the loop multiplies by dy.
// Each unit has a gate half (gate_half: 0 = a, 1 = b) and a linear half.  The kernel floats of
// every gated unit: p0 = limit (+inf: none), p1 = offset, both applied by Clamped below, and
// p2 = the unit's own parameter (glu, swiglu: the gate slope alpha; geglu: approximate).

// glu(alpha=p2): a sigmoid(alpha b);  (s, alpha a s (1 - s)), s = sigmoid(alpha b).  The gate is b.
struct Glu : Functor {
  static constexpr int gate_half = 1;
  template <class C> static __device__ C fwd(C a, C b, const Ctx<C>& c) { return a * m::sigmoid_final(c.p2 * b); }
  template <class C> static __device__ Pair<C> grad(C a, C b, const Ctx<C>& c) {
    const C z = c.p2 * b;
    const C s = m::sigmoid(z);
    return {s, a * s * m::sigmoid(-z) * c.p2};
  }
};

// swiglu(alpha=p2): a sigmoid(alpha a) b (silu(a) b at alpha = 1);  (b silu'(alpha a), a sigmoid(alpha a)):
// d/da [a sigmoid(alpha a)] = d/da [silu(alpha a) / alpha] = silu'(alpha a).
struct Swiglu : Functor {
  static constexpr int gate_half = 0;
  template <class C> static __device__ C swish(C a, const Ctx<C>& c) {
    return c.p2 == C(1) ? Silu::fwd(a, c) : m::xmul(a, m::sigmoid(c.p2 * a));
  }
  template <class C> static __device__ C fwd(C a, C b, const Ctx<C>& c) { return swish(a, c) * b; }
  template <class C> static __device__ Pair<C> grad(C a, C b, const Ctx<C>& c) {
    return {b * Silu::bwd(c.p2 * a, c), swish(a, c)};
  }
};

// geglu(approximate=p2): gelu(a) b;  (b gelu'(a), gelu(a)).
struct Geglu : Functor {
  static constexpr int gate_half = 0;
  static constexpr int choice = 2;  // approximate
  template <class C> static __device__ Ctx<C> gelu_ctx(const Ctx<C>& c) { return {c.p2, C(0), C(0), C(0), c.seed, c.i}; }
  template <class C> static __device__ C fwd(C a, C b, const Ctx<C>& c) { return Gelu::fwd(a, gelu_ctx(c)) * b; }
  template <class C> static __device__ Pair<C> grad(C a, C b, const Ctx<C>& c) {
    const Ctx<C> g = gelu_ctx(c);
    return {b * Gelu::bwd(a, g), Gelu::fwd(a, g)};
  }
  template <class C> static __device__ bool grad_cancels(C a, C, const Ctx<C>& c) {
    return Gelu::bwd_cancels(a, gelu_ctx(c));
  }
};

// reglu: relu(a) b;  (b 1[a > 0], relu(a)).
struct Reglu : CheapFunctor {
  static constexpr int gate_half = 0;
  template <class C> static __device__ C fwd(C a, C b, const Ctx<C>&) { return (a > C(0) ? a : C(0)) * b; }
  template <class C> static __device__ Pair<C> grad(C a, C b, const Ctx<C>&) {
    return {b * C(a > C(0)), a > C(0) ? a : C(0)};
  }
};

// The clamp of every gated unit (GPT-OSS's SwiGLU): the gate half clamped above at limit = p0, the
// linear half clamped to [-limit, limit] and offset = p1 added to it; F sees the clamped values.
// The backward passes dy through a clamp where its input lies inside, bounds included (as
// torch.clamp), and gives 0 where the clamp cuts.  limit = +inf and offset = 0 change nothing,
// bit for bit (the offset is not added when 0: -0 + 0 would give +0).
template <class F> struct Clamped : F {
  template <class C> static __device__ __forceinline__ C clamp_gate(C g, const Ctx<C>& c) { return g > c.p0 ? c.p0 : g; }
  template <class C> static __device__ __forceinline__ C clamp_linear(C u, const Ctx<C>& c) {
    const C v = u > c.p0 ? c.p0 : (u < -c.p0 ? -c.p0 : u);
    return c.p1 == C(0) ? v : v + c.p1;
  }
  template <class C> static __device__ __forceinline__ bool passes(C v, bool is_gate, const Ctx<C>& c) {
    return v <= c.p0 && (is_gate || v >= -c.p0);
  }
  template <class C> static __device__ C fwd(C a, C b, const Ctx<C>& c) {
    return F::gate_half == 0 ? F::fwd(clamp_gate(a, c), clamp_linear(b, c), c)
                             : F::fwd(clamp_linear(a, c), clamp_gate(b, c), c);
  }
  template <class C> static __device__ Pair<C> grad(C a, C b, const Ctx<C>& c) {
    const Pair<C> d = F::gate_half == 0 ? F::grad(clamp_gate(a, c), clamp_linear(b, c), c)
                                         : F::grad(clamp_linear(a, c), clamp_gate(b, c), c);
    return {passes(a, F::gate_half == 0, c) ? d.a : C(0), passes(b, F::gate_half == 1, c) ? d.b : C(0)};
  }
};

}  // namespace fn
}  // namespace act
