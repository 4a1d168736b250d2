// Row-wise activations: softmax, log_softmax, softmin (four paths), sparsemax, entmax15 and entmax (two).
//
// Rows live in an (outer, n, inner) contiguous array (row_base in common.cuh), so any axis is
// handled in place.  Values are in the compute type (float for 16-bit inputs), every row is
// max-subtracted, and a mask byte of 0 leaves an element out of the row: its output and its dx
// are 0, and a fully masked row is all 0.  A NaN in the unmasked part of a row makes the whole
// row NaN (NaN-propagating max), as does +inf or a row of -inf (inf - inf).  The backward kernels
// take x, not y: they recompute y in registers or shared memory instead of reading a stored copy.
//
// Two kernel arguments shape the softmax family's row (the sparsemax kernels take and ignore them):
// the temperature T and quiet.  The row's values are v = x (-x for softmin) and its max m; the
// logits are shifted before T divides them, z_i - max z = (v_i - m) / T, so that a large x does not
// overflow x / T when T < 1 (dx gets the factor 1 / T).  The statistics stay in v's units: online
// merges rescale by exp((m_old - m_new) / T).  quiet is an implicit value 0 in every row (logit
// 0 / T = 0): the shift is max(m, 0) and the sum gains exp((0 - shift) / T), so a row of -inf gives 0s.
//
// Paths (the caller picks one per call from a small table, activations/backends/cuda/ops.py):
//   warp   : rows of up to ITEMS * LANES <= 1024 elements (512 in float64); a group of LANES lanes
//            holds a row in registers, ITEMS values per lane; shuffles only, no shared memory.
//   block  : one block per row, the row cached in dynamic shared memory (one global read).
//   long   : one block per row, nothing cached: an online (max, sum) pass, then the output pass.
//   column : one thread per row, for rows `inner` >= 32 apart, so that a warp reads 32 adjacent
//            rows at each step (coalesced) instead of striding through one row.
//
// Accuracy (softmax, log_softmax, softmin): float32 and float64 rows take e = exp((v - m) / T) in
// the compute type with the rounding errors of v - m and of the division put back (shifted_exp),
// and everything after it in double: the row's sums (of e, and of dy e for the backward), 1 / sum,
// y = e / sum and dx = y (dy - sum dy y) / T, rounded once on store.  In float the sums' rounding,
// the rounded y and four more roundings cost up to 2.3 ulps of the row's terms in the backward
// (shifted (v - m) / T: up to |v - m| / 2 ulps of e); with them out of the way, exp's own error
// and the last rounding remain (about 1 ulp).  16-bit rows round to 8 or 11 bits: they take
// exp(shifted) (row_exp) and work in float (acc_t), a few float ulps that reach the result only
// near a 16-bit tie, but keep in float pairs (Float2) the sums where cancellation would show: the
// backward's sum of e and of dy e (or dy), and log_softmax's sum of exp (its log near 0); sum dy p
// is a quotient with its remainder (row_t).  As accurate as in double (elementwise 0.58 ulps
// bfloat16, 0.53 float16), where double took four times a float row's issue slots at the H100's
// FP64 rate (46-67% of copy bandwidth in the model; now 100%, long rows at their two reads).
#pragma once
#include "common.cuh"

namespace act {
template <class T> using C_of = compute_t<T>;
namespace fn {
struct Softmax {
  static constexpr bool negate = false, log = false;
};
struct LogSoftmax {
  static constexpr bool negate = false, log = true;
};
struct Softmin {  // softmax(-x)
  static constexpr bool negate = true, log = false;
};
}  // namespace fn

// The row's value of an input: x, negated for softmin (the temperature divides shifted values only).
template <class K, class C> __device__ __forceinline__ C logit(C x) { return K::negate ? -x : x; }
// The precision of a row's sums, 1 / sum, y and dx (see Accuracy above): double for float32 and
// float64 rows; float for 16-bit rows, whose results round to 8 or 11 bits, far above float's
// errors, and whose rows are short of issue slots for FP64 arithmetic on most GPUs.
// (ByRowType<T, Wide, Narrow>: Narrow for 16-bit rows, Wide for the others.)
template <class T, class Wide, class Narrow> struct ByRowType {
  using type = Wide;
};
template <class Wide, class Narrow> struct ByRowType<__half, Wide, Narrow> {
  using type = Narrow;
};
template <class Wide, class Narrow> struct ByRowType<__nv_bfloat16, Wide, Narrow> {
  using type = Narrow;
};
template <class T> using acc_t = typename ByRowType<T, double, float>::type;

// A float sum carried as an unevaluated pair hi + lo: each addition's rounding error goes to lo
// (TwoSum, Knuth), a product's by fma (TwoProd).  16-bit rows keep the sums that meet a
// cancellation (the backward's, log_softmax's sum of exp near 1) in it: accurate to their own
// size, as in double, for 6 to 9 float instructions per term.  Trivially constructible (shared
// scratch); an infinite or NaN hi leaves lo out.
struct Float2 {
  float hi, lo;
  Float2() = default;
  __device__ __forceinline__ Float2(float v) : hi(v), lo(0.0f) {}
  __device__ __forceinline__ Float2(float h, float l) : hi(h), lo(l) {}
  __device__ __forceinline__ Float2& operator+=(float x) {
    const float sum = hi + x, b = sum - hi;
    lo += (hi - (sum - b)) + (x - b);
    hi = sum;
    return *this;
  }
};
__device__ __forceinline__ Float2 operator+(Float2 x, float y) { return x += y; }
__device__ __forceinline__ Float2 operator+(Float2 x, Float2 y) { return Float2(x.hi, x.lo + y.lo) += y.hi; }
__device__ __forceinline__ Float2 operator*(Float2 x, float c) {
  const float p = x.hi * c;
  return {p, m::fma(x.hi, c, -p) + x.lo * c};
}
__device__ __forceinline__ Float2 shfl_xor(Float2 v, int lane_mask, int width) {
  return {shfl_xor(v.hi, lane_mask, width), shfl_xor(v.lo, lane_mask, width)};
}
template <class A> __device__ __forceinline__ A value(A v) { return v; }
__device__ __forceinline__ float value(Float2 v) { return m::abs(v.hi) < m::inf<float>() ? v.hi + v.lo : v.hi; }
template <class A> __device__ __forceinline__ A row_log(A s) { return m::log(s); }
__device__ __forceinline__ float row_log(Float2 s) {  // log(hi + lo) = log(hi) + lo / hi
  return s.hi > 0.0f && s.hi < m::inf<float>() ? m::log(s.hi) + s.lo / s.hi : m::log(s.hi);
}
// s += a b, the product rounded once in double, or kept exactly in a Float2
template <class A, class C> __device__ __forceinline__ void add_prod(A& s, C a, C b) { s += A(a) * A(b); }
__device__ __forceinline__ void add_prod(Float2& s, float a, float b) {
  const float p = a * b;
  s.lo += m::fma(a, b, -p);
  s += p;
}
// The type of a row's sums: SUM the compensated one (Float2 for 16-bit rows), else acc_t.
template <class T, bool COMPENSATED> struct RowSumPick {
  using type = acc_t<T>;
};
template <class T> struct RowSumPick<T, true> {
  using type = typename ByRowType<T, double, Float2>::type;
};
template <class T, bool COMPENSATED> using sum_t = typename RowSumPick<T, COMPENSATED>::type;
// (a - b) / t, b >= a: the shifted logit.  A difference beyond the range (a spread wider than the
// type's) is halved first, (a / 2 - b / 2) / t * 2: finite whenever (a - b) / t is; a NaN stays
// NaN.  One division either way (the float64 long kernels have no register to spare for more).
template <class C> __device__ __forceinline__ C shifted(C a, C b, C t) {
  const C d = a - b;
  if (t == C(1)) return d;
  const bool wide = !(d > -m::inf<C>());
  const C h = wide ? C(0.5) : C(1);
  return (a * h - b * h) / t * (wide ? C(2) : C(1));
}
// dx = dz / t (z = x / t).
template <class C> __device__ __forceinline__ C by_temperature(C g, C t) { return t == C(1) ? g : g / t; }
// exp(shifted(a, b, t)) with the rounding errors of a - b (TwoSum) and of the division put back:
// exp(q + c) = exp(q) (1 + c) for the small remainder c, so e carries exp's own error only.
// An infinite or NaN difference (a masked -inf, a spread beyond the range) takes exp(shifted).
template <class C> __device__ __forceinline__ C shifted_exp(C a, C b, C t) {
  const C d = a - b;
  if (!(m::abs(d) < m::inf<C>())) return m::exp(shifted(a, b, t));
  const C bb = d - a;
  const C err = (a - (d - bb)) - (b + bb);  // a - b = d + err exactly
  C q = d, c = err;
  if (t != C(1)) {
    q = d / t;
    c = (m::fma(-q, t, d) + err) / t;
  }
  const C e = m::exp(q);
  return e == C(0) ? e : m::fma(e, c, e);  // q = -inf (a tiny t): c is not finite, e is 0
}
// e = exp((a - b) / t) of a row whose sums are in A (acc_t): shifted_exp for float32 and float64
// rows.  A 16-bit row (A float) leaves out the TwoSum of a - b (a third of the row's issue slots):
// a - b of two 16-bit values is exact unless their exponents lie 14 or more apart, and then
// e |a - b| 2^-24 <= 2^-24 / e_Euler, nothing beside the row's largest term 1.  The division's
// remainder is put back (off the model's path: T = 1 is the default), so that T does not make
// every term's error grow with |q|.
template <class A, class C> __device__ __forceinline__ C row_exp(C a, C b, C t) {
  if constexpr (sizeof(A) < sizeof(double)) {
    const C d = a - b;
    if (t == C(1)) return m::exp(d);
    const C q = shifted(a, b, t);
    const C e = m::exp(q);
    const C c = m::fma(-q, t, d) / t;  // (a - b) / t = q + c; NaN for an infinite d
    return e == C(0) || !(m::abs(d) < m::inf<C>()) ? e : m::fma(e, c, e);
  } else {
    return shifted_exp(a, b, t);
  }
}
// The quiet form's implicit value 0 joined to a row's (max, sum): max(m, 0), s + exp((0 - max) / t).
template <class C> __device__ __forceinline__ C quiet_max(C m, bool quiet) { return quiet ? m::nanmax(m, C(0)) : m; }
template <class A, class C> __device__ __forceinline__ A quiet_term(C m, bool quiet, C t) {
  return quiet ? A(row_exp<A>(C(0), m, t)) : A(0);
}

// y = e / s from e = exp((v - m) / t) and inv = 1 / s, in the row's precision A.
template <class C, class A> __device__ __forceinline__ C row_prob(C e, A inv) { return C(A(e) * inv); }
// Backward, in A (acc_t), from p = exp(v - m) / s (= y, or exp(y) for log_softmax), dy and t = sum
// of row_term over the row (of e = exp(v - m) for softmax, then times 1 / s):
//   softmax dx = p (dy - t), softmin dx = -p (dy - t), t = sum(dy p);  log_softmax dx = dy - p t, t = sum(dy).
template <class K, class S, class C> __device__ __forceinline__ void add_term(S& t, C e, C dy) {
  if constexpr (K::log) {
    t += dy;
  } else {
    add_prod(t, dy, e);
  }
}
// t as hi + lo: softmax's sum dy p = u / s of two Float2 sums keeps the quotient's remainder, so
// that dy - t is right where it cancels (a row whose largest p is 1 - 2^-30: s = 1 + 2^-30 in a
// pair, 1 in float); lo is 0 for log_softmax and in double.
template <class A> struct Split {
  A hi, lo;
};
template <class K, class A> __device__ __forceinline__ Split<A> row_t(A u, A s, A inv) {
  return {K::log ? u : u * inv, A(0)};
}
template <class K> __device__ __forceinline__ Split<float> row_t(Float2 u, Float2 s, float inv) {
  if constexpr (K::log) {
    return {value(u), 0.0f};
  } else {
    const float q = u.hi * inv;
    const float r = (m::fma(-q, s.hi, u.hi) + u.lo) - q * s.lo;  // u - q s
    return {q, m::abs(q) < m::inf<float>() ? r * inv : 0.0f};
  }
}
template <class K, class C, class A> __device__ __forceinline__ C row_grad(A p, C dy, Split<A> t, C temp) {
  A g;
  if (K::log) {
    g = A(dy) - p * t.hi;
  } else {
    g = p * ((A(dy) - t.hi) - t.lo);
    if (K::negate) g = -g;
  }
  return C(by_temperature(g, A(temp)));
}

// A row's running max (compute type) and sum of exp((v - max) / t) (S: acc_t or Float2, in A).
template <class C, class S> struct MaxSumStats {
  C m;
  S s;
};
template <class C, class S>
__device__ __forceinline__ MaxSumStats<C, S> shfl_xor(MaxSumStats<C, S> v, int lane_mask, int width) {
  return {shfl_xor(v.m, lane_mask, width), shfl_xor(v.s, lane_mask, width)};
}
// Online (max, sum of exp((v - max) / t)) statistics, Milakov & Gimelshein 2018, with the
// policies: -inf adds nothing, +inf or NaN make the sum NaN.
template <class A, class C, class S> __device__ __forceinline__ void push(MaxSumStats<C, S>& st, C v, C t) {
  if (v > st.m) {
    st.s = (st.m == -m::inf<C>() ? S(0) : st.s * A(row_exp<A>(st.m, v, t))) +
           (v == m::inf<C>() ? m::nan<A>() : A(1));
    st.m = v;
  } else if (v != v) {
    st.m = v;
    st.s = m::nan<A>();
  } else if (v != -m::inf<C>()) {
    st.s += A(row_exp<A>(v, st.m, t));
  }
}
template <class C, class A, class S> struct MaxSum {
  C t;  // temperature
  __device__ __forceinline__ MaxSumStats<C, S> identity() const { return {-m::inf<C>(), S(0)}; }
  __device__ __forceinline__ MaxSumStats<C, S> operator()(MaxSumStats<C, S> x, MaxSumStats<C, S> y) const {
    const C mx = m::nanmax(x.m, y.m);
    const S sx = x.m == -m::inf<C>() ? S(0) : x.s * A(row_exp<A>(x.m, mx, t));
    const S sy = y.m == -m::inf<C>() ? S(0) : y.s * A(row_exp<A>(y.m, mx, t));
    return {mx, sx + sy};
  }
};
template <class C> struct PairSum {
  __device__ __forceinline__ Pair<C> identity() const { return {C(0), C(0)}; }
  __device__ __forceinline__ Pair<C> operator()(Pair<C> x, Pair<C> y) const { return {x.a + y.a, x.b + y.b}; }
};

template <class C> __device__ __forceinline__ C* dynamic_smem() {
  extern __shared__ unsigned long long act_dynamic_smem[];  // 8-byte elements: aligned for double
  return reinterpret_cast<C*>(act_dynamic_smem);
}

// One row of the mask-aware input: v(j) is -inf where masked (it then drops out of max and sum).
// CONTIGUOUS: the row along the last axis (inner 1) without a mask.
template <class K, class T, bool CONTIGUOUS = false> struct RowReader {
  using C = compute_t<T>;
  const T* x;
  const unsigned char* mask;
  i64 base, inner;
  __device__ __forceinline__ i64 at(i64 j) const { return base + (CONTIGUOUS ? j : j * inner); }
  __device__ __forceinline__ bool on(i64 j) const { return CONTIGUOUS || mask == nullptr || mask[at(j)] != 0; }
  __device__ __forceinline__ C raw(i64 j) const { return logit<K>(load(x[at(j)])); }
  __device__ __forceinline__ C v(i64 j) const { return on(j) ? raw(j) : -m::inf<C>(); }
};

// --------------------------------------------------------------- warp path
template <class K, class T, int ITEMS, int LANES, bool BACKWARD, bool CONTIGUOUS>
__device__ __forceinline__ void softmax_warp_rows(const T* x, const T* dy, T* out, const unsigned char* mask, i64 rows,
                                                  i64 n, i64 inner, C_of<T> temp, C_of<T> quiet_flag) {
  using C = compute_t<T>;
  using A = acc_t<T>;
  const int lane = threadIdx.x % LANES;
  const int groups = blockDim.x / LANES;
  const int group_in_warp = (threadIdx.x % 32) / LANES;
  const i64 step = i64(gridDim.x) * groups;
  // The loop test is the same for all lanes of a warp (it looks at the warp's first row), so the
  // full-mask shuffles below always see 32 lanes; groups past the last row compute and discard.
  for (i64 row = i64(blockIdx.x) * groups + threadIdx.x / LANES; row - group_in_warp < rows; row += step) {
    const bool live = row < rows;
    const int len = int(n);  // at most ITEMS * LANES: int indices
    RowReader<K, T, CONTIGUOUS> r{x, mask, live ? row_base(row, n, inner) : 0, inner};
    C v[ITEMS];
    unsigned on = 0;  // bit k: item k is in the row and unmasked (one register, not ITEMS)
    C mx = -m::inf<C>();
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int j = lane + k * LANES;
      const bool in = live && j < len && r.on(j);
      on |= unsigned(in) << k;
      v[k] = in ? r.raw(j) : -m::inf<C>();
      mx = m::nanmax(mx, v[k]);
    }
    const bool quiet = quiet_flag != C(0);
    mx = quiet_max(warp_allreduce(mx, NanMax<C>(), LANES), quiet);
    // exp once per element: v[k] becomes e = exp((v - max) / T) (log_softmax's forward keeps v)
    constexpr bool keep_v = K::log && !BACKWARD;
    using SS = sum_t<T, K::log || BACKWARD>;  // compensated but for softmax's y = e / s
    SS s = SS(0);
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const C e = (on >> k & 1u) ? row_exp<A>(v[k], mx, temp) : C(0);
      s += A(e);
      if (!keep_v) v[k] = e;
    }
    s = warp_allreduce(s, Sum<SS>(), LANES) + quiet_term<A>(mx, quiet, temp);
    const A inv = A(1) / value(s);  // one division per row
    if constexpr (!BACKWARD) {
      const C log_s = C(row_log(s));
#pragma unroll
      for (int k = 0; k < ITEMS; ++k) {
        const int j = lane + k * LANES;
        if (live && j < len)
          out[r.at(j)] =
              store<T>((on >> k & 1u) ? (K::log ? shifted(v[k], mx, temp) - log_s : row_prob(v[k], inv)) : C(0));
      }
    } else {
      C d[ITEMS];
      using S = sum_t<T, true>;
      S u = S(0);  // sum of dy e (then times 1 / s), or of dy
#pragma unroll
      for (int k = 0; k < ITEMS; ++k) {
        const int j = lane + k * LANES;
        const bool in = on >> k & 1u;
        d[k] = in ? load(dy[r.at(j)]) : C(0);
        add_term<K>(u, v[k], d[k]);  // e and dy are 0 where !in
      }
      const Split<A> t = row_t<K>(warp_allreduce(u, Sum<S>(), LANES), s, inv);
#pragma unroll
      for (int k = 0; k < ITEMS; ++k) {
        const int j = lane + k * LANES;
        if (live && j < len)
          out[r.at(j)] = store<T>((on >> k & 1u) ? row_grad<K>(A(v[k]) * inv, d[k], t, temp) : C(0));
      }
    }
  }
}

// Rows along the last axis without a mask (the common case) index the row directly.
template <class K, class T, int ITEMS, int LANES, bool BACKWARD>
__device__ __forceinline__ void softmax_warp(const T* x, const T* dy, T* out, const unsigned char* mask, i64 rows,
                                             i64 n, i64 inner, C_of<T> temp, C_of<T> quiet_flag) {
  if (inner == 1 && mask == nullptr) {
    softmax_warp_rows<K, T, ITEMS, LANES, BACKWARD, true>(x, dy, out, mask, rows, n, inner, temp, quiet_flag);
  } else {
    softmax_warp_rows<K, T, ITEMS, LANES, BACKWARD, false>(x, dy, out, mask, rows, n, inner, temp, quiet_flag);
  }
}

// -------------------------------------------------- block, long and column paths
// A team of threads owns a row: the whole block (block, long) or a single thread (column).
struct BlockTeam {
  static __device__ __forceinline__ i64 first_row() { return blockIdx.x; }
  static __device__ __forceinline__ i64 row_step() { return gridDim.x; }
  static __device__ __forceinline__ i64 rank() { return threadIdx.x; }
  static __device__ __forceinline__ i64 size() { return blockDim.x; }
  template <class V, class F> static __device__ __forceinline__ V allreduce(V v, F f, V* scratch) {
    return block_allreduce(v, f, scratch);
  }
};
struct ThreadTeam {
  static __device__ __forceinline__ i64 first_row() { return i64(blockIdx.x) * blockDim.x + threadIdx.x; }
  static __device__ __forceinline__ i64 row_step() { return i64(gridDim.x) * blockDim.x; }
  static __device__ __forceinline__ i64 rank() { return 0; }
  static __device__ __forceinline__ i64 size() { return 1; }
  template <class V, class F> static __device__ __forceinline__ V allreduce(V v, F, V*) { return v; }
};

// CACHED keeps v (then p) in dynamic shared memory, n values of C; each thread only reads back the
// slots it wrote, so the cache needs no barrier of its own.  Masked slots hold -inf: exp(-inf - max)
// adds 0 (and a row whose max is -inf is all masked, written as 0, or all -inf, NaN by policy).
template <class K, class T, class Team, bool CACHED, bool BACKWARD>
__device__ __forceinline__ void softmax_team(const T* x, const T* dy, T* out, const unsigned char* mask, i64 rows,
                                             i64 n, i64 inner, C_of<T> temp, C_of<T> quiet_flag) {
  using C = compute_t<T>;
  using A = acc_t<T>;
  using S = sum_t<T, true>;
  using SS = sum_t<T, K::log || BACKWARD>;  // compensated but for softmax's y = e / s
  const bool quiet = quiet_flag != C(0);
  C* cache = CACHED ? dynamic_smem<C>() : nullptr;
  __shared__ MaxSumStats<C, SS> pair_scratch[32];
  __shared__ C scratch[32];
  __shared__ S sum_scratch[32];  // for SS too (no wider than S)
  SS* s_scratch = reinterpret_cast<SS*>(sum_scratch);
  for (i64 row = Team::first_row(); row < rows; row += Team::row_step()) {
    const RowReader<K, T> r{x, mask, row_base(row, n, inner), inner};
    MaxSumStats<C, SS> st{-m::inf<C>(), SS(0)};
    if constexpr (CACHED) {  // max, then the sum from shared memory: one exp per element, not two
      for (i64 j = Team::rank(); j < n; j += Team::size()) {
        cache[j] = r.v(j);
        st.m = m::nanmax(st.m, cache[j]);
      }
      st.m = quiet_max(Team::allreduce(st.m, NanMax<C>(), scratch), quiet);
      for (i64 j = Team::rank(); j < n; j += Team::size()) {
        const C e = row_exp<A>(cache[j], st.m, temp);
        if (!(K::log && !BACKWARD)) cache[j] = e;  // the cache now holds e (0 where masked)
        st.s += A(e);
      }
      st.s = Team::allreduce(st.s, Sum<SS>(), s_scratch) + quiet_term<A>(st.m, quiet, temp);
    } else {  // one pass over global memory: online statistics
      for (i64 j = Team::rank(); j < n; j += Team::size()) push<A>(st, r.v(j), temp);
      st = Team::allreduce(st, MaxSum<C, A, SS>{temp}, pair_scratch);
      if (quiet) st = MaxSum<C, A, SS>{temp}(st, {C(0), SS(1)});
    }
    const C mx = st.m;
    const A inv = A(1) / value(st.s);
    // e of entry j: from the cache, or again from x
    auto e_of = [&](i64 j) { return CACHED ? cache[j] : row_exp<A>(r.raw(j), mx, temp); };
    if constexpr (!BACKWARD) {
      const C log_s = C(row_log(st.s));
      for (i64 j = Team::rank(); j < n; j += Team::size()) {
        C y = C(0);
        if (r.on(j)) y = K::log ? shifted(CACHED ? cache[j] : r.raw(j), mx, temp) - log_s : row_prob(e_of(j), inv);
        out[r.at(j)] = store<T>(y);
      }
    } else {
      S u = S(0);
      for (i64 j = Team::rank(); j < n; j += Team::size())
        if (r.on(j)) add_term<K>(u, e_of(j), load(dy[r.at(j)]));
      const Split<A> t = row_t<K>(Team::allreduce(u, Sum<S>(), sum_scratch), st.s, inv);
      for (i64 j = Team::rank(); j < n; j += Team::size()) {
        C g = C(0);
        if (r.on(j)) g = row_grad<K>(A(e_of(j)) * inv, load(dy[r.at(j)]), t, temp);
        out[r.at(j)] = store<T>(g);
      }
    }
  }
}

// ------------------------------------------------ block and long paths, 16-byte packs
// Rows along the last axis (inner == 1) without a mask, n a multiple of the pack and every pointer
// 16-byte aligned: each thread moves whole 16-byte packs, so a block has 16 bytes per thread and
// array in flight at every step.  The block path caches the row as T (16-bit rows as 16-bit; the
// backward caches dy too) and reads global memory once; the long path makes two passes: online
// statistics (max, sum of exp and, in the backward, sum of dy e) rescaled once per pack, then the
// output.  One division per row (1 / sum).

// Statistics of a row: max m, s = sum exp((v - m) / t) (SS), u = sum dy exp((v - m) / t) (log_softmax:
// sum dy; S, compensated for 16-bit rows); both acc_t for float32 and float64 rows.
template <class C, class SS, class S> struct RowStats {
  C m;
  SS s;
  S u;
};
template <class K, class C, class A, class SS, class S> struct MergeStats {
  C t;  // temperature
  __device__ __forceinline__ RowStats<C, SS, S> identity() const { return {-m::inf<C>(), SS(0), S(0)}; }
  __device__ __forceinline__ RowStats<C, SS, S> operator()(RowStats<C, SS, S> x, RowStats<C, SS, S> y) const {
    const C mx = m::nanmax(x.m, y.m);
    const A ex = x.m == -m::inf<C>() ? A(0) : A(row_exp<A>(x.m, mx, t));
    const A ey = y.m == -m::inf<C>() ? A(0) : A(row_exp<A>(y.m, mx, t));
    return {mx, x.s * ex + y.s * ey, K::log ? x.u + y.u : x.u * ex + y.u * ey};
  }
};
template <class C, class SS, class S>
__device__ __forceinline__ RowStats<C, SS, S> shfl_xor(RowStats<C, SS, S> v, int lane_mask, int width) {
  return {shfl_xor(v.m, lane_mask, width), shfl_xor(v.s, lane_mask, width), shfl_xor(v.u, lane_mask, width)};
}
// The sum types of a packed row: s compensated but for softmax's forward, u for every backward.
template <class K, class T, bool BACKWARD> using packed_stats_t =
    RowStats<C_of<T>, sum_t<T, K::log || BACKWARD>, sum_t<T, BACKWARD>>;

template <class K, class T, int N>
__device__ __forceinline__ C_of<T> pack_max(const Pack<T, N>& v, C_of<T> mx) {
#pragma unroll
  for (int k = 0; k < N; ++k) mx = m::nanmax(mx, logit<K>(load(v.v[k])));
  return mx;
}

// Folds one pack (and its dy) into running statistics: the max moves once per pack and the sums
// are rescaled once; -inf adds nothing, NaN and +inf make the sums NaN.
template <class K, class T, int N, bool BACKWARD>
__device__ __forceinline__ void push_pack(packed_stats_t<K, T, BACKWARD>& st, const Pack<T, N>& v,
                                          const Pack<T, N>& d, C_of<T> temp) {
  using C = C_of<T>;
  using A = acc_t<T>;
  const C mx = pack_max<K>(v, st.m);
  const A scale = st.m == -m::inf<C>() ? A(0) : A(row_exp<A>(st.m, mx, temp));
  decltype(st.s) s(0);
  decltype(st.u) u(0);
#pragma unroll
  for (int k = 0; k < N; ++k) {
    const C x = logit<K>(load(v.v[k]));
    const C e = x == -m::inf<C>() ? C(0) : row_exp<A>(x, mx, temp);
    s += A(e);
    if constexpr (BACKWARD) add_term<K>(u, e, load(d.v[k]));
  }
  st = {mx, st.s * scale + s, K::log ? st.u + u : st.u * scale + u};
}

// Writes one output pack from x (and dy): y = e / s or (v - m) / T - log s; dx from p = e / s and t.
template <class K, class T, int N, bool BACKWARD>
__device__ __forceinline__ Pack<T, N> out_pack(const Pack<T, N>& v, const Pack<T, N>& d, C_of<T> mx, acc_t<T> inv,
                                               C_of<T> log_s, Split<acc_t<T>> t, C_of<T> temp) {
  using C = C_of<T>;
  using A = acc_t<T>;
  Pack<T, N> o;
#pragma unroll
  for (int k = 0; k < N; ++k) {
    const C x = logit<K>(load(v.v[k]));
    C r;
    if constexpr (BACKWARD) {
      r = row_grad<K>(A(row_exp<A>(x, mx, temp)) * inv, load(d.v[k]), t, temp);
    } else {
      r = K::log ? shifted(x, mx, temp) - log_s : row_prob(row_exp<A>(x, mx, temp), inv);
    }
    o.v[k] = store<T>(r);
  }
  return o;
}

template <class K, class T, bool CACHED, bool BACKWARD>
__device__ __forceinline__ void softmax_packed(const T* x, const T* dy, T* out, i64 rows, i64 n, C_of<T> temp,
                                               bool quiet) {
  using C = C_of<T>;
  using A = acc_t<T>;
  using Stats = packed_stats_t<K, T, BACKWARD>;
  using SS = decltype(Stats::s);
  using S = decltype(Stats::u);
  constexpr int N = kPack<T>;
  using P = Pack<T, N>;
  __shared__ Stats stats_scratch[32];
  __shared__ C scratch[32];
  __shared__ sum_t<T, true> sum_scratch[32];  // for SS and S (no wider)
  const i64 packs = n / N;
  P* cx = CACHED ? reinterpret_cast<P*>(dynamic_smem<T>()) : nullptr;
  P* cd = CACHED ? cx + packs : nullptr;  // the backward's dy, after x
  const P zero{};
  for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
    const P* xr = reinterpret_cast<const P*>(x + row * n);
    const P* dr = BACKWARD ? reinterpret_cast<const P*>(dy + row * n) : nullptr;
    P* orow = reinterpret_cast<P*>(out + row * n);
    Stats st{-m::inf<C>(), SS(0), S(0)};
    if constexpr (CACHED) {  // max while caching, then the sums from shared memory
      C mx = -m::inf<C>();
#pragma unroll 1
      for (i64 p = threadIdx.x; p < packs; p += blockDim.x) {
        const P v = xr[p];
        cx[p] = v;
        if (BACKWARD) cd[p] = dr[p];
        mx = pack_max<K>(v, mx);
      }
      mx = quiet_max(block_allreduce(mx, NanMax<C>(), scratch), quiet);
      st.m = mx;
#pragma unroll 1
      for (i64 p = threadIdx.x; p < packs; p += blockDim.x) {
        const P v = cx[p];
        const P d = BACKWARD ? cd[p] : zero;
#pragma unroll
        for (int k = 0; k < N; ++k) {
          const C e = row_exp<A>(logit<K>(load(v.v[k])), mx, temp);
          st.s += A(e);
          if constexpr (BACKWARD) add_term<K>(st.u, e, load(d.v[k]));
        }
      }
      st.s = block_allreduce(st.s, Sum<SS>(), reinterpret_cast<SS*>(sum_scratch)) + quiet_term<A>(mx, quiet, temp);
      if (BACKWARD) st.u = block_allreduce(st.u, Sum<S>(), reinterpret_cast<S*>(sum_scratch));
    } else {  // one pass over global memory: online statistics
#pragma unroll 1
      for (i64 p = threadIdx.x; p < packs; p += blockDim.x) {
        const P v = xr[p];  // whole packs into registers: one 16-byte load each
        const P d = BACKWARD ? dr[p] : zero;
        push_pack<K, T, N, BACKWARD>(st, v, d, temp);
      }
      st = block_allreduce(st, MergeStats<K, C, A, SS, S>{temp}, stats_scratch);
      if (quiet) st = MergeStats<K, C, A, SS, S>{temp}(st, {C(0), SS(1), S(0)});  // the implicit logit: dy 0
    }
    const A inv = A(1) / value(st.s);
    const C log_s = C(row_log(st.s));
    const Split<A> t = row_t<K>(st.u, st.s, inv);  // sum dy (log_softmax) or sum dy p
#pragma unroll 1
    for (i64 p = threadIdx.x; p < packs; p += blockDim.x) {
      const P v = CACHED ? cx[p] : xr[p];
      const P d = !BACKWARD ? zero : CACHED ? cd[p] : dr[p];
      orow[p] = out_pack<K, T, N, BACKWARD>(v, d, st.m, inv, log_s, t, temp);
    }
  }
}

// The block and long entries: 16-byte packs where the row allows (the launch layer makes the same
// test for the shared memory it gives), else one element at a time (any axis, a mask).
template <class K, class T, bool CACHED, bool BACKWARD>
__device__ __forceinline__ void softmax_rows(const T* x, const T* dy, T* out, const unsigned char* mask, i64 rows,
                                             i64 n, i64 inner, C_of<T> temp, C_of<T> quiet) {
  if (inner == 1 && mask == nullptr && n % kPack<T> == 0 && aligned16(x) && aligned16(out) &&
      (!BACKWARD || aligned16(dy))) {
    softmax_packed<K, T, CACHED, BACKWARD>(x, dy, out, rows, n, temp, quiet != C_of<T>(0));
  } else {
    softmax_team<K, T, BlockTeam, CACHED, BACKWARD>(x, dy, out, mask, rows, n, inner, temp, quiet);
  }
}

// ------------------------------------------------------- the sparse family's start
// sparsemax, entmax15 and entmax begin alike: the row's max over the unmasked entries (cached in
// shared memory by the block path), and the family's rule: a NaN, +inf or a row of -inf gives a NaN
// row; a fully masked row (max -inf too) writes only 0s.  `finite` says the row is neither.
template <class T> struct SparseRow {
  using C = compute_t<T>;
  RowReader<fn::Softmax, T> r;
  C* cache;
  C mx;
  bool finite;
  __device__ __forceinline__ C v(i64 j) const { return cache != nullptr ? cache[j] : r.v(j); }
  __device__ __forceinline__ C u(i64 j) const { return v(j) - mx; }  // <= 0; -inf where masked
};
template <class T, bool CACHED>
__device__ __forceinline__ SparseRow<T> sparse_row(const T* x, const unsigned char* mask, i64 row, i64 n, i64 inner,
                                                   C_of<T>* scratch) {
  using C = compute_t<T>;
  C* cache = CACHED ? dynamic_smem<C>() : nullptr;
  const RowReader<fn::Softmax, T> r{x, mask, row_base(row, n, inner), inner};
  C mx = -m::inf<C>();
  for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
    const C v = r.v(j);
    if (CACHED) cache[j] = v;
    mx = m::nanmax(mx, v);
  }
  mx = block_allreduce(mx, NanMax<C>(), scratch);
  return {r, cache, mx, m::abs(mx) < m::inf<C>()};
}

// ----------------------------------------------------------------- sparsemax
// y = max(z - tau, 0) with the exact tau of Martins & Astudillo.  Working on u = z - max(z) (sums
// of u do not lose digits to a large max): bisection on tau in [-1, 0] gives t <= tau, so {u > t}
// contains the support; then Michelot's fixed point tau = (sum of the set - 1) / |set|, set =
// {u > tau}, shrinks it to exactly the support (each non-final step drops at least one element;
// the bisection leaves few to drop).  One block per row.

template <class T, bool CACHED, bool BACKWARD>
__device__ __forceinline__ void sparsemax_rows(const T* x, const T* dy, T* out, const unsigned char* mask, i64 rows,
                                               i64 n, i64 inner, C_of<T>, C_of<T>) {
  using C = compute_t<T>;
  constexpr int kBisection = 20;
  __shared__ Pair<C> pair_scratch[32];
  __shared__ C scratch[32];
  const i64 rank = threadIdx.x, size = blockDim.x;
  for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
    const SparseRow<T> sr = sparse_row<T, CACHED>(x, mask, row, n, inner, scratch);
    const auto& r = sr.r;
    const bool finite = sr.finite;
    auto u = [&](i64 j) { return sr.u(j); };
    C tau = C(0);
    if (finite) {
      C lo = C(-1), hi = C(0);
      for (int it = 0; it < kBisection; ++it) {
        const C mid = (lo + hi) / C(2);
        C s = C(0);
        for (i64 j = rank; j < n; j += size) s += m::max(u(j) - mid, C(0));
        s = block_allreduce(s, Sum<C>(), scratch);
        (s >= C(1) ? lo : hi) = mid;
      }
      C t = lo;
      Pair<C> ks{C(-1), C(0)};
      for (;;) {
        Pair<C> next{C(0), C(0)};
        for (i64 j = rank; j < n; j += size) {
          const C v = u(j);
          if (v > t) next = {next.a + C(1), next.b + v};
        }
        next = block_allreduce(next, PairSum<C>(), pair_scratch);
        const bool stable = next.a == ks.a;
        ks = next;
        if (stable || ks.a == C(0)) break;
        t = m::max(t, (ks.b - C(1)) / ks.a);
      }
      tau = ks.a > C(0) ? (ks.b - C(1)) / ks.a : C(-1);
    }
    if constexpr (!BACKWARD) {
      for (i64 j = rank; j < n; j += size) {
        C y = C(0);
        if (r.on(j)) y = finite ? m::max(u(j) - tau, C(0)) : m::nan<C>();
        out[r.at(j)] = store<T>(y);
      }
    } else {
      // dx = m (dy - sum(dy m) / sum(m)), m = (y > 0) = (u > tau)
      Pair<C> kd{C(0), C(0)};
      for (i64 j = rank; j < n; j += size)
        if (r.on(j) && u(j) > tau) kd = {kd.a + C(1), kd.b + load(dy[r.at(j)])};
      kd = block_allreduce(kd, PairSum<C>(), pair_scratch);
      const C mean = kd.b / kd.a;
      for (i64 j = rank; j < n; j += size) {
        C g = C(0);
        if (r.on(j)) g = !finite ? m::nan<C>() : (u(j) > tau ? load(dy[r.at(j)]) - mean : C(0));
        out[r.at(j)] = store<T>(g);
      }
    }
  }
}

// ------------------------------------------------------------------ entmax15
// y = max(u - tau, 0)^2, u = (z - max z) / 2, with the tau of sum y = 1 (1.5-entmax, Peters et al.
// 2019), exactly and without a sort.  f(t) = sum max(u - t, 0)^2 - 1 is convex and decreasing, so
// Newton's steps from t = -1 (f(-1) >= 0: the max has u = 0) stay below tau and keep
// S = {u > t} a superset of the support.  At each step the closed form of tau for the support S,
// the smaller root r of sum_S (u - t - r)^2 = 1, is exact when S is the support, which is the case
// exactly when every element of S lies above t + r (an element of S that is not in the support sits
// at or below tau, and tau <= the root of any superset).  One block per row; the moments of S
// (count, sum and sum of squares of w = u - t, min w) in one reduction per step.

template <class C> struct Moments {
  C k, a, b, lo;  // count, sum w, sum w^2, min w over S
};
template <class C> __device__ __forceinline__ Moments<C> shfl_xor(Moments<C> v, int lane_mask, int width) {
  return {shfl_xor(v.k, lane_mask, width), shfl_xor(v.a, lane_mask, width), shfl_xor(v.b, lane_mask, width),
          shfl_xor(v.lo, lane_mask, width)};
}
template <class C> struct MomentsOp {
  __device__ __forceinline__ Moments<C> identity() const { return {C(0), C(0), C(0), m::inf<C>()}; }
  __device__ __forceinline__ Moments<C> operator()(Moments<C> x, Moments<C> y) const {
    return {x.k + y.k, x.a + y.a, x.b + y.b, m::min(x.lo, y.lo)};
  }
};

// One shared array for every reduction of a row (block_allreduce's leading barrier separates them):
// the static shared memory stays within the launch layer's reserve.
template <class C> struct SparseScratch {
  Moments<C>* moments;
  C* one;
  Pair<C>* pair;
};
template <class C> __device__ __forceinline__ SparseScratch<C> sparse_scratch() {
  __shared__ Moments<C> scratch[32];
  return {scratch, reinterpret_cast<C*>(scratch), reinterpret_cast<Pair<C>*>(scratch)};
}

template <class T, bool CACHED, bool BACKWARD>
__device__ __forceinline__ void entmax15_rows(const T* x, const T* dy, T* out, const unsigned char* mask, i64 rows,
                                              i64 n, i64 inner, C_of<T>, C_of<T>) {
  using C = compute_t<T>;
  constexpr int kMaxSteps = 200;  // a bound only: Newton from below ends in far fewer steps
  const auto [moments_scratch, scratch, pair_scratch] = sparse_scratch<C>();
  const i64 rank = threadIdx.x, size = blockDim.x;
  for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
    const SparseRow<T> sr = sparse_row<T, CACHED>(x, mask, row, n, inner, scratch);
    const auto& r = sr.r;
    const bool finite = sr.finite;
    auto u = [&](i64 j) { return sr.u(j) * C(0.5); };
    C tau = C(0);
    if (finite) {
      C t = C(-1);
      for (int step = 0; step < kMaxSteps; ++step) {
        Moments<C> s = MomentsOp<C>().identity();
        for (i64 j = rank; j < n; j += size) {
          const C w = u(j) - t;
          if (w > C(0)) s = {s.k + C(1), s.a + w, s.b + w * w, m::min(s.lo, w)};
        }
        s = block_allreduce(s, MomentsOp<C>(), moments_scratch);
        const C f = s.b - C(1);
        const C disc = s.a * s.a - s.k * f;
        const C root = disc >= C(0) ? f / (s.a + m::sqrt(disc)) : m::inf<C>();
        const C next = t + f / (C(2) * s.a);  // Newton
        if (s.lo > root || !(next > t)) {  // S is the support, or no more progress in this precision
          tau = t + (disc >= C(0) ? root : C(0));
          break;
        }
        t = next;
        tau = t;
      }
    }
    if constexpr (!BACKWARD) {
      for (i64 j = rank; j < n; j += size) {
        C y = C(0);
        if (r.on(j)) {
          const C w = m::max(u(j) - tau, C(0));
          y = finite ? w * w : m::nan<C>();
        }
        out[r.at(j)] = store<T>(y);
      }
    } else {
      // dx = g (dy - sum(g dy) / sum(g)), g = sqrt(y) = max(u - tau, 0)
      Pair<C> gs{C(0), C(0)};
      for (i64 j = rank; j < n; j += size) {
        const C g = r.on(j) ? m::max(u(j) - tau, C(0)) : C(0);
        if (g > C(0)) gs = {gs.a + g, gs.b + g * load(dy[r.at(j)])};
      }
      gs = block_allreduce(gs, PairSum<C>(), pair_scratch);
      const C mean = gs.b / gs.a;
      for (i64 j = rank; j < n; j += size) {
        C d = C(0);
        if (r.on(j)) {
          const C g = m::max(u(j) - tau, C(0));
          d = !finite ? m::nan<C>() : (g > C(0) ? g * (load(dy[r.at(j)]) - mean) : C(0));
        }
        out[r.at(j)] = store<T>(d);
      }
    }
  }
}

// ------------------------------------------------------------------- entmax
// alpha-entmax: y = (1 + w)^(1/a), w = a (z - max z) - t, a = alpha - 1, with t in [0, 1 - n^-a]
// (t = tau - a max z + 1) such that sum y = 1, found by kEntmaxSteps bisection steps (the sum
// decreases in t: >= 1 at 0, <= 1 at the top); y is then taken at the low end (sum >= 1: the whole
// support) and divided by its sum.  t rather than tau keeps its relative precision as alpha nears 1,
// and exp(log1p(w) / a) stays accurate there.  alpha: p0, or alphas[row] (float64, one per row) when
// alphas is not null; the backward writes the row's dalpha to dalpha[row] when dalpha is not null:
//   dx = g (dy - sum(g dy) / sum(g)), g = y^(2 - alpha) on the support;
//   dalpha = sum(dy (y - q)) / a^2 - sum(dy (y log y - q S)) / a, q = g / sum(g), S = sum(y log y).
// The CPU engine (engine.cpp, RowMath::entmax) and the NumPy fallback take 60 steps in float64.
template <class C> constexpr int kEntmaxSteps = sizeof(C) == 4 ? 30 : 60;

template <class T, bool CACHED, bool BACKWARD>
__device__ __forceinline__ void entmax_rows(const T* x, const T* dy, T* out, const unsigned char* mask, i64 rows,
                                            i64 n, i64 inner, C_of<T> p0, const double* alphas, double* dalpha) {
  using C = compute_t<T>;
  const auto [moments_scratch, scratch, pair_scratch] = sparse_scratch<C>();
  const i64 rank = threadIdx.x, size = blockDim.x;
  for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
    const SparseRow<T> sr = sparse_row<T, CACHED>(x, mask, row, n, inner, scratch);
    const auto& r = sr.r;
    const C alpha = alphas != nullptr ? C(alphas[row]) : p0;
    const C a = alpha - C(1), inv = C(1) / a;
    auto mass = [&](i64 j, C t) {
      const C w = a * sr.u(j) - t;
      return w > C(-1) ? m::exp(m::log1p(w) * inv) : C(0);
    };
    C lo = C(0), scale = C(0);
    if (sr.finite) {
      C count = C(0);
      for (i64 j = rank; j < n; j += size) count += sr.v(j) > -m::inf<C>() ? C(1) : C(0);
      count = block_allreduce(count, Sum<C>(), scratch);
      C hi = -m::expm1(-a * m::log(count));
      for (int step = 0; step < kEntmaxSteps<C>; ++step) {
        const C mid = (lo + hi) * C(0.5);
        C s = C(0);
        for (i64 j = rank; j < n; j += size) s += mass(j, mid);
        s = block_allreduce(s, Sum<C>(), scratch);
        (s >= C(1) ? lo : hi) = mid;
      }
      C s = C(0);
      for (i64 j = rank; j < n; j += size) s += mass(j, lo);
      scale = C(1) / block_allreduce(s, Sum<C>(), scratch);
    }
    auto y_of = [&](i64 j) { return sr.finite ? mass(j, lo) * scale : m::nan<C>(); };
    if constexpr (!BACKWARD) {
      for (i64 j = rank; j < n; j += size) out[r.at(j)] = store<T>(r.on(j) ? y_of(j) : C(0));
    } else {
      const C e = C(2) - alpha;
      auto g_of = [&](C y) { return y > C(0) ? m::exp(e * m::log(y)) : C(0); };
      Pair<C> gs{C(0), C(0)};  // sum g, sum g dy
      // sum y log y, sum dy y, sum dy y log y (dalpha only), and -1 when an entry is unmasked
      Moments<C> ms{C(0), C(0), C(0), C(0)};
      for (i64 j = rank; j < n; j += size) {
        if (!r.on(j)) continue;
        const C y = y_of(j), d = load(dy[r.at(j)]), g = g_of(y);
        gs = {gs.a + g, gs.b + g * d};
        const C ylogy = y > C(0) ? y * m::log(y) : C(0);
        if (dalpha != nullptr) ms = {ms.k + ylogy, ms.a + d * y, ms.b + d * ylogy, C(-1)};
      }
      gs = block_allreduce(gs, PairSum<C>(), pair_scratch);
      const C mean = gs.a > C(0) ? gs.b / gs.a : C(0);
      if (dalpha != nullptr) {
        ms = block_allreduce(ms, MomentsOp<C>(), moments_scratch);
        // a fully masked row: 0; a NaN row: NaN
        const C da = !sr.finite ? (ms.lo < C(0) ? m::nan<C>() : C(0))
                     : gs.a > C(0) ? (ms.a - mean) / (a * a) - (ms.b - mean * ms.k) / a : C(0);
        if (rank == 0) dalpha[row] = double(da);
      }
      for (i64 j = rank; j < n; j += size) {
        C d = C(0);
        if (r.on(j)) d = !sr.finite ? m::nan<C>() : g_of(y_of(j)) * (load(dy[r.at(j)]) - mean);
        out[r.at(j)] = store<T>(d);
      }
    }
  }
}

}  // namespace act

// act_<name>_fwd_<path>_<dt>(x, y, mask, rows, n, inner, temperature, quiet)
// act_<name>_bwd_<path>_<dt>(x, dy, dx, mask, rows, n, inner, temperature, quiet)    mask may be null
#define ACT_ROW_ENTRY(NAME, DIR, PATH, DT, THREADS, MIN_BLOCKS, ...)                                        \
  extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS) act_##NAME##_##DIR##_##PATH##_##DT(     \
      const ACT_STORAGE_##DT* x, ACT_STORAGE_##DT* y, const unsigned char* mask, act::i64 rows, act::i64 n, \
      act::i64 inner, act::compute_t<ACT_STORAGE_##DT> p0, act::compute_t<ACT_STORAGE_##DT> p1) {           \
    __VA_ARGS__(x, nullptr, y, mask, rows, n, inner, p0, p1);                                               \
  }                                                                                                         \
  ACT_ENTRY_HOOK(act_##NAME##_##DIR##_##PATH##_##DT)
#define ACT_ROW_GRAD_ENTRY(NAME, PATH, DT, THREADS, MIN_BLOCKS, ...)                                          \
  extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS) act_##NAME##_bwd_##PATH##_##DT(           \
      const ACT_STORAGE_##DT* x, const ACT_STORAGE_##DT* dy, ACT_STORAGE_##DT* dx, const unsigned char* mask, \
      act::i64 rows, act::i64 n, act::i64 inner, act::compute_t<ACT_STORAGE_##DT> p0,                         \
      act::compute_t<ACT_STORAGE_##DT> p1) {                                                                  \
    __VA_ARGS__(x, dy, dx, mask, rows, n, inner, p0, p1);                                                     \
  }                                                                                                           \
  ACT_ENTRY_HOOK(act_##NAME##_bwd_##PATH##_##DT)

// Warp path for rows of up to ITEMS * LANES elements: entries act_<name>_{fwd,bwd}_warp<ITEMS>x<LANES>_<dt>.
#define ACT_SOFTMAX_WARP(NAME, FUNCTOR, DT, ITEMS, LANES)                                   \
  ACT_ROW_ENTRY(NAME, fwd, warp##ITEMS##x##LANES, DT, 128, 2,                               \
                act::softmax_warp<act::fn::FUNCTOR, ACT_STORAGE_##DT, ITEMS, LANES, false>) \
  ACT_ROW_GRAD_ENTRY(NAME, warp##ITEMS##x##LANES, DT, 128, 2,                               \
                     act::softmax_warp<act::fn::FUNCTOR, ACT_STORAGE_##DT, ITEMS, LANES, true>)

// The block (row cached in shared memory), long and column paths: entries act_<name>_{fwd,bwd}_<path>_<dt>.
// Up to 1024 threads: the launch layer sizes the block so that the SM is full (packed rows).
#define ACT_SOFTMAX_BLOCK(NAME, FUNCTOR, DT)                                                         \
  ACT_ROW_ENTRY(NAME, fwd, block, DT, 1024, 1,                                                       \
                act::softmax_rows<act::fn::FUNCTOR, ACT_STORAGE_##DT, true, false>)                  \
  ACT_ROW_GRAD_ENTRY(NAME, block, DT, 1024, 1,                                                       \
                     act::softmax_rows<act::fn::FUNCTOR, ACT_STORAGE_##DT, true, true>)
#define ACT_SOFTMAX_LONG(NAME, FUNCTOR, DT)                                                          \
  ACT_ROW_ENTRY(NAME, fwd, long, DT, 1024, 1,                                                        \
                act::softmax_rows<act::fn::FUNCTOR, ACT_STORAGE_##DT, false, false>)                 \
  ACT_ROW_GRAD_ENTRY(NAME, long, DT, 1024, 1,                                                        \
                     act::softmax_rows<act::fn::FUNCTOR, ACT_STORAGE_##DT, false, true>)
#define ACT_SOFTMAX_COLUMN(NAME, FUNCTOR, DT)                                                         \
  ACT_ROW_ENTRY(NAME, fwd, column, DT, 256, 4,                                                        \
                act::softmax_team<act::fn::FUNCTOR, ACT_STORAGE_##DT, act::ThreadTeam, false, false>) \
  ACT_ROW_GRAD_ENTRY(NAME, column, DT, 256, 4,                                                        \
                     act::softmax_team<act::fn::FUNCTOR, ACT_STORAGE_##DT, act::ThreadTeam, false, true>)

// sparsemax: the row cached in shared memory (block) or re-read from global memory (long).
#define ACT_SPARSEMAX_BLOCK(NAME, FUNCTOR, DT)                                                    \
  ACT_ROW_ENTRY(NAME, fwd, block, DT, 512, 1, act::sparsemax_rows<ACT_STORAGE_##DT, true, false>) \
  ACT_ROW_GRAD_ENTRY(NAME, block, DT, 512, 1, act::sparsemax_rows<ACT_STORAGE_##DT, true, true>)
#define ACT_SPARSEMAX_LONG(NAME, FUNCTOR, DT)                                                     \
  ACT_ROW_ENTRY(NAME, fwd, long, DT, 512, 1, act::sparsemax_rows<ACT_STORAGE_##DT, false, false>) \
  ACT_ROW_GRAD_ENTRY(NAME, long, DT, 512, 1, act::sparsemax_rows<ACT_STORAGE_##DT, false, true>)

// entmax: the row cached (block) or re-read (long); two more arguments, the per-row alphas
// (float64, or null: p0 for every row) and the backward's per-row dalpha (float64, or null).
// act_entmax_fwd_<path>_<dt>(x, y, mask, rows, n, inner, alpha, unused, alphas, dalpha)
// act_entmax_bwd_<path>_<dt>(x, dy, dx, mask, rows, n, inner, alpha, unused, alphas, dalpha)
#define ACT_ENTMAX_PATH(NAME, PATH, DT, CACHED)                                                                     \
  extern "C" __global__ void __launch_bounds__(512, 1) act_##NAME##_fwd_##PATH##_##DT(                            \
      const ACT_STORAGE_##DT* x, ACT_STORAGE_##DT* y, const unsigned char* mask, act::i64 rows, act::i64 n,       \
      act::i64 inner, act::compute_t<ACT_STORAGE_##DT> p0, act::compute_t<ACT_STORAGE_##DT>, const double* alphas, \
      double* dalpha) {                                                                                           \
    act::entmax_rows<ACT_STORAGE_##DT, CACHED, false>(x, nullptr, y, mask, rows, n, inner, p0, alphas, dalpha);   \
  }                                                                                                               \
  ACT_ENTRY_HOOK(act_##NAME##_fwd_##PATH##_##DT)                                                                  \
  extern "C" __global__ void __launch_bounds__(512, 1) act_##NAME##_bwd_##PATH##_##DT(                            \
      const ACT_STORAGE_##DT* x, const ACT_STORAGE_##DT* dy, ACT_STORAGE_##DT* dx, const unsigned char* mask,     \
      act::i64 rows, act::i64 n, act::i64 inner, act::compute_t<ACT_STORAGE_##DT> p0,                             \
      act::compute_t<ACT_STORAGE_##DT>, const double* alphas, double* dalpha) {                                   \
    act::entmax_rows<ACT_STORAGE_##DT, CACHED, true>(x, dy, dx, mask, rows, n, inner, p0, alphas, dalpha);        \
  }                                                                                                               \
  ACT_ENTRY_HOOK(act_##NAME##_bwd_##PATH##_##DT)
#define ACT_ENTMAX_BLOCK(NAME, FUNCTOR, DT) ACT_ENTMAX_PATH(NAME, block, DT, true)
#define ACT_ENTMAX_LONG(NAME, FUNCTOR, DT) ACT_ENTMAX_PATH(NAME, long, DT, false)

// entmax15: the row cached in shared memory (block) or re-read from global memory (long).
#define ACT_ENTMAX15_BLOCK(NAME, FUNCTOR, DT)                                                    \
  ACT_ROW_ENTRY(NAME, fwd, block, DT, 512, 1, act::entmax15_rows<ACT_STORAGE_##DT, true, false>) \
  ACT_ROW_GRAD_ENTRY(NAME, block, DT, 512, 1, act::entmax15_rows<ACT_STORAGE_##DT, true, true>)
#define ACT_ENTMAX15_LONG(NAME, FUNCTOR, DT)                                                     \
  ACT_ROW_ENTRY(NAME, fwd, long, DT, 512, 1, act::entmax15_rows<ACT_STORAGE_##DT, false, false>) \
  ACT_ROW_GRAD_ENTRY(NAME, long, DT, 512, 1, act::entmax15_rows<ACT_STORAGE_##DT, false, true>)
