// Gated activations (glu, swiglu, geglu, reglu): x = a | b along an axis, y = f(a, b).
//
// x is viewed as (rows, 2, hi) and y as (rows, hi) (Call.gated_rows): concatenated halves along
// an axis give rows = outer, hi = H * inner; interleaved ones (a = x[0::2], b = x[1::2]) give
// rows = outer * H, hi = inner.  Output element t reads a at t + (t / hi) * hi and b hi further
// on, so any axis and either layout work without a copy.  Forward reads both halves and writes
// one; backward writes da and db into dx (x's shape).  The functor is wrapped in fn::Clamped:
// the clamp limit, offset and the unit's own parameter are the kernel floats p0, p1, p2.
#pragma once
#include "elementwise.cuh"

namespace act {

// Where output element t's row (t / hi) and column (t % hi) are: advanced by the loop's stride, so
// that no pack pays for a 64-bit division.
struct GatedCursor {
  i64 row = 0, col = 0, drow = 0, dcol = 0;
  __device__ __forceinline__ void start(i64 t, i64 step, i64 hi) {
    row = t / hi;
    col = t % hi;
    drow = step / hi;
    dcol = step % hi;
  }
  __device__ __forceinline__ void next(i64 hi) {
    row += drow;
    col += dcol;
    if (col >= hi) {
      col -= hi;
      ++row;
    }
  }
};

// One output of the unit (NaN in either half gives NaN, computed for NaN too and then replaced:
// no branch), and the unit's two partial derivatives times dy (a + b, NaN, where one half is NaN).
template <class F, class T>
__device__ __forceinline__ T gated_fwd_one(compute_t<T> a, compute_t<T> b, const Ctx<compute_t<T>>& ctx) {
  const compute_t<T> r = F::fwd(a, b, ctx);
  return store_gated_fwd<F, T>((m::isnan(a) || m::isnan(b)) ? a + b : r, a, b, ctx);
}

template <class F, class C> __device__ __forceinline__ Pair<C> gated_bwd_one(C a, C b, C d, const Ctx<C>& ctx) {
  if (m::isnan(a) || m::isnan(b)) return {a + b, a + b};
  const Pair<C> p = F::grad(a, b, ctx);
  return {d * p.a, d * p.b};
}

// BIAS: the launch has a bias (read one element at a time, bias[offset % channels]); the loop
// without one carries no channel arithmetic.
template <class T, bool BIAS> struct GatedInput {
  using C = compute_t<T>;
  const T* x;
  const T* bias;  // along the last axis of x (both halves): bias[offset in x % channels]
  i64 hi, channels;
  Ctx<C> ctx;
  GatedCursor cursor;

  __device__ __forceinline__ void start(i64 t, i64 step) { cursor.start(t, step, hi); }
  // offset of a for the current output element t (a at t + (t / hi) * hi), then advance
  __device__ __forceinline__ i64 a_offset() {
    const i64 a0 = 2 * cursor.row * hi + cursor.col;
    cursor.next(hi);
    return a0;
  }
  __device__ __forceinline__ i64 channel_of(i64 offset) const { return BIAS ? offset % channels : 0; }
  __device__ __forceinline__ C input(T v, i64& ch) const {
    C z = load(v);
    if constexpr (BIAS) {
      z += load(bias[ch]);
      if (++ch == channels) ch = 0;
    }
    return z;
  }
};

template <class F, class T, bool BIAS> struct GatedForward : GatedInput<T, BIAS> {
  using C = compute_t<T>;
  T* y;

  template <int N> __device__ __forceinline__ void run(i64 t0) {
    const i64 a0 = this->a_offset(), b0 = a0 + this->hi;
    const Pack<T, N> pa = *reinterpret_cast<const Pack<T, N>*>(this->x + a0);
    const Pack<T, N> pb = *reinterpret_cast<const Pack<T, N>*>(this->x + b0);
    Pack<T, N> out;
    i64 cha = this->channel_of(a0), chb = this->channel_of(b0);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const C a = this->input(pa.v[k], cha), b = this->input(pb.v[k], chb);
      out.v[k] = gated_fwd_one<F, T>(a, b, this->ctx);
    }
    *reinterpret_cast<Pack<T, N>*>(y + t0) = out;
  }
};

template <class F, class T, bool BIAS> struct GatedBackward : GatedInput<T, BIAS> {
  using C = compute_t<T>;
  const T* dy;
  T* dx;
  C* dz;  // optional: dx in the compute precision, for a dbias sum not limited by dx's range

  template <int N> __device__ __forceinline__ void run(i64 t0) {
    const i64 a0 = this->a_offset(), b0 = a0 + this->hi;
    const Pack<T, N> pa = *reinterpret_cast<const Pack<T, N>*>(this->x + a0);
    const Pack<T, N> pb = *reinterpret_cast<const Pack<T, N>*>(this->x + b0);
    const Pack<T, N> g = *reinterpret_cast<const Pack<T, N>*>(dy + t0);
    Pack<T, N> da, db;
    i64 cha = this->channel_of(a0), chb = this->channel_of(b0);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const C a = this->input(pa.v[k], cha), b = this->input(pb.v[k], chb);
      const C d = load(g.v[k]);
      const Pair<C> g2 = gated_bwd_one<F>(a, b, d, this->ctx);
      da.v[k] = store_gated_bwd<F, T, 0>(g2.a, a, b, d, this->ctx);
      db.v[k] = store_gated_bwd<F, T, 1>(g2.b, a, b, d, this->ctx);
      if (BIAS && dz != nullptr) {
        dz[a0 + k] = g2.a;
        dz[b0 + k] = g2.b;
      }
    }
    *reinterpret_cast<Pack<T, N>*>(dx + a0) = da;
    *reinterpret_cast<Pack<T, N>*>(dx + b0) = db;
  }
};

// Interleaved halves along the last axis without a bias (hi == 1: GPT-OSS's layout): output t
// reads x[2t] and x[2t + 1], so N outputs are two packs of x with a and b alternating, and dx two
// packs written the same way.  The general body would go one element at a time here (hi is not a
// multiple of the pack).
template <class T, int N> struct PairPacks {  // 2N elements: element j is lo.v[j] or hi.v[j - N]
  Pack<T, N> lo, hi;
  __device__ __forceinline__ void read(const T* p) {
    lo = *reinterpret_cast<const Pack<T, N>*>(p);
    hi = *reinterpret_cast<const Pack<T, N>*>(p + N);
  }
  __device__ __forceinline__ void write(T* p) const {
    *reinterpret_cast<Pack<T, N>*>(p) = lo;
    *reinterpret_cast<Pack<T, N>*>(p + N) = hi;
  }
  __device__ __forceinline__ T get(int j) const { return j < N ? lo.v[j] : hi.v[j - N]; }
  __device__ __forceinline__ void set(int j, T v) { (j < N ? lo.v[j] : hi.v[j - N]) = v; }
};

template <class T> struct GatedPairsInput {
  const T* x;
  Ctx<compute_t<T>> ctx;
  __device__ __forceinline__ void start(i64, i64) {}
};

template <class F, class T> struct GatedPairsForward : GatedPairsInput<T> {
  T* y;

  template <int N> __device__ __forceinline__ void run(i64 t0) {
    PairPacks<T, N> in;
    in.read(this->x + 2 * t0);
    Pack<T, N> out;
#pragma unroll
    for (int k = 0; k < N; ++k) out.v[k] = gated_fwd_one<F, T>(load(in.get(2 * k)), load(in.get(2 * k + 1)), this->ctx);
    *reinterpret_cast<Pack<T, N>*>(y + t0) = out;
  }
};

template <class F, class T> struct GatedPairsBackward : GatedPairsInput<T> {
  using C = compute_t<T>;
  const T* dy;
  T* dx;

  template <int N> __device__ __forceinline__ void run(i64 t0) {
    PairPacks<T, N> in, grad;
    in.read(this->x + 2 * t0);
    const Pack<T, N> g = *reinterpret_cast<const Pack<T, N>*>(dy + t0);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const C a = load(in.get(2 * k)), b = load(in.get(2 * k + 1)), d = load(g.v[k]);
      const Pair<C> g2 = gated_bwd_one<F>(a, b, d, this->ctx);
      grad.set(2 * k, store_gated_bwd<F, T, 0>(g2.a, a, b, d, this->ctx));
      grad.set(2 * k + 1, store_gated_bwd<F, T, 1>(g2.b, a, b, d, this->ctx));
    }
    grad.write(dx + 2 * t0);
  }
};

// Packs stay inside one half when hi is a multiple of the pack size.
template <class F, class T, bool BIAS>
__device__ __forceinline__ void gated_forward_loop(const T* x, T* y, const T* bias, i64 n_out, i64 hi, i64 channels,
                                                   Ctx<compute_t<T>> ctx) {
  GatedForward<F, T, BIAS> body;
  body.x = x;
  body.bias = bias;
  body.hi = hi;
  body.channels = channels;
  body.ctx = ctx;
  body.y = y;
  run_loop<F, kPack<T>>(n_out, hi % kPack<T> == 0 && aligned16(x) && aligned16(y), body);
}

template <class F, class T>
__device__ __forceinline__ void gated_forward(const T* x, T* y, const T* bias, i64 n_out, i64 hi, i64 channels,
                                              Ctx<compute_t<T>> ctx) {
  if (bias == nullptr && hi == 1) {
    GatedPairsForward<F, T> body;
    body.x = x;
    body.ctx = ctx;
    body.y = y;
    return run_loop<F, kPack<T>>(n_out, aligned16(x) && aligned16(y), body);
  }
  if (bias == nullptr) return gated_forward_loop<F, T, false>(x, y, bias, n_out, hi, channels, ctx);
  gated_forward_loop<F, T, true>(x, y, bias, n_out, hi, channels, ctx);
}

template <class F, class T, bool BIAS>
__device__ __forceinline__ void gated_backward_loop(const T* x, const T* dy, T* dx, const T* bias, compute_t<T>* dz,
                                                    i64 n_out, i64 hi, i64 channels, Ctx<compute_t<T>> ctx) {
  GatedBackward<F, T, BIAS> body;
  body.x = x;
  body.bias = bias;
  body.hi = hi;
  body.channels = channels;
  body.ctx = ctx;
  body.dy = dy;
  body.dx = dx;
  body.dz = dz;
  run_loop<F, kPack<T>>(n_out, hi % kPack<T> == 0 && aligned16(x) && aligned16(dy) && aligned16(dx), body);
}

template <class F, class T>
__device__ __forceinline__ void gated_backward(const T* x, const T* dy, T* dx, const T* bias, compute_t<T>* dz,
                                               i64 n_out, i64 hi, i64 channels, Ctx<compute_t<T>> ctx) {
  if (bias == nullptr && hi == 1) {
    GatedPairsBackward<F, T> body;
    body.x = x;
    body.ctx = ctx;
    body.dy = dy;
    body.dx = dx;
    return run_loop<F, kPack<T>>(n_out, aligned16(x) && aligned16(dy) && aligned16(dx), body);
  }
  if (bias == nullptr) return gated_backward_loop<F, T, false>(x, dy, dx, bias, dz, n_out, hi, channels, ctx);
  gated_backward_loop<F, T, true>(x, dy, dx, bias, dz, n_out, hi, channels, ctx);
}

}  // namespace act

// The backward holds a, b and dy packs and the 16-bit rounding check: 2 blocks per SM (128
// registers) instead of 4 keep it from spilling, and 512 threads with 48 bytes each in flight
// still cover the memory latency.
// act_<name>_fwd_<dt>(x, y, bias, n_out, hi, channels, p0, p1, p2)
// act_<name>_bwd_<dt>(x, dy, dx, bias, dz, n_out, hi, channels, p0, p1, p2)      bias, dz may be null
#define ACT_GATED(NAME, FUNCTOR, DT)                                                                         \
  extern "C" __global__ void __launch_bounds__(256, 4) act_##NAME##_fwd_##DT(                                \
      const ACT_STORAGE_##DT* x, ACT_STORAGE_##DT* y, const ACT_STORAGE_##DT* bias, act::i64 n_out,          \
      act::i64 hi, act::i64 channels, act::compute_t<ACT_STORAGE_##DT> p0,                                   \
      act::compute_t<ACT_STORAGE_##DT> p1, act::compute_t<ACT_STORAGE_##DT> p2) {                            \
    using F = act::fn::Clamped<act::fn::FUNCTOR>;                                                            \
    act::gated_forward<F>(x, y, bias, n_out, hi, channels, {p0, p1, p2, p0, 0, 0});                          \
  }                                                                                                          \
  ACT_ENTRY_HOOK(act_##NAME##_fwd_##DT)                                                                      \
  extern "C" __global__ void __launch_bounds__(256, 2) act_##NAME##_bwd_##DT(                                \
      const ACT_STORAGE_##DT* x, const ACT_STORAGE_##DT* dy, ACT_STORAGE_##DT* dx,                           \
      const ACT_STORAGE_##DT* bias, act::compute_t<ACT_STORAGE_##DT>* dz, act::i64 n_out, act::i64 hi,       \
      act::i64 channels,                                                                                     \
      act::compute_t<ACT_STORAGE_##DT> p0, act::compute_t<ACT_STORAGE_##DT> p1,                              \
      act::compute_t<ACT_STORAGE_##DT> p2) {                                                                 \
    using F = act::fn::Clamped<act::fn::FUNCTOR>;                                                            \
    act::gated_backward<F>(x, dy, dx, bias, dz, n_out, hi, channels, {p0, p1, p2, p0, 0, 0});                \
  }                                                                                                          \
  ACT_ENTRY_HOOK(act_##NAME##_bwd_##DT)
