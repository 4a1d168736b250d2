// The one elementwise loop, its forward and backward bodies, and the entry-point macro.
#pragma once
#include "functors.cuh"

namespace act {

// Grid-stride over 16-byte packs when every pointer is 16-byte aligned, then the tail (or, when
// some pointer is not aligned, everything) one element at a time.  64-bit indices throughout;
// the grid is capped by the caller, so a thread may run several iterations.  body.start(i, step)
// tells the body where a loop begins and how far it jumps (the channel cursor of the bias path).
template <int N, class Body> __device__ __forceinline__ void grid_stride(i64 n, bool vector_ok, Body& body) {
  const i64 first = i64(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 step = i64(gridDim.x) * blockDim.x;
  i64 head = 0;
  if (vector_ok) {
    const i64 packs = n / N;
    body.start(first * N, step * N);
    for (i64 p = first; p < packs; p += step) body.template run<N>(p * N);
    head = packs * N;
  }
  body.start(head + first, step);
  for (i64 i = head + first; i < n; i += step) body.template run<1>(i);
}

// How an elementwise kernel reads its per-channel operands (bias[i % C], prelu's weight[i % C]),
// chosen once per launch so that the loop without them carries no channel arithmetic at all.
enum class Channels { kNone, kScalar, kPacked };

// Where the channel of the next element is: advanced by the loop's stride (taken modulo C once per
// loop), so no element pays for a 64-bit division.
struct ChannelCursor {
  i64 ch = 0, jump = 0, channels = 1;
  __device__ __forceinline__ void start(i64 i, i64 step) {
    ch = i % channels;
    jump = step % channels;
  }
  __device__ __forceinline__ void next() {
    ch += jump;
    if (ch >= channels) ch -= channels;
  }
};

// What forward and backward share: z = x + bias[i % channels] and, for prelu, the slope
// weight[i % channels] (weight[0] when it has one element, the float weight when there is none).
// kPacked reads a 16-byte pack of bias (and weight) per pack of x: C is a multiple of the pack
// size and the pointers are aligned, so a pack never wraps.  Only prelu (weighted) reaches the
// per-channel modes without a bias; for every other functor they mean a bias.
template <class F, class T, Channels CH> struct ElementwiseInput {
  using C = compute_t<T>;
  const T* bias;
  const T* weight;
  i64 weight_len;
  Ctx<C> ctx;
  ChannelCursor cursor;

  __device__ __forceinline__ void start(i64 i, i64 step) {
    if constexpr (CH != Channels::kNone) cursor.start(i, step);
  }
  // z and, for prelu, the slope w of the N elements from i0
  template <int N> __device__ __forceinline__ void inputs(const Pack<T, N>& in, C (&z)[N], C (&w)[N]) {
#pragma unroll
    for (int k = 0; k < N; ++k) z[k] = load(in.v[k]);
    if constexpr (CH == Channels::kNone) {
      if constexpr (F::weighted) {
#pragma unroll
        for (int k = 0; k < N; ++k) w[k] = weight != nullptr ? load(weight[0]) : ctx.p0;
      }
    } else if constexpr (CH == Channels::kPacked && N > 1) {
      const i64 ch = cursor.ch;
      if (!F::weighted || bias != nullptr) {
        const Pack<T, N> b = *reinterpret_cast<const Pack<T, N>*>(bias + ch);
#pragma unroll
        for (int k = 0; k < N; ++k) z[k] += load(b.v[k]);
      }
      if constexpr (F::weighted) {
        Pack<T, N> wp;
        if (weight != nullptr && weight_len > 1) wp = *reinterpret_cast<const Pack<T, N>*>(weight + ch);
#pragma unroll
        for (int k = 0; k < N; ++k)
          w[k] = weight == nullptr ? ctx.p0 : load(weight_len > 1 ? wp.v[k] : weight[0]);
      }
      cursor.next();
    } else {
      i64 ch = cursor.ch;
#pragma unroll
      for (int k = 0; k < N; ++k) {
        if (!F::weighted || bias != nullptr) z[k] += load(bias[ch]);
        if constexpr (F::weighted) w[k] = weight != nullptr ? load(weight[weight_len == 1 ? 0 : ch]) : ctx.p0;
        if (++ch == cursor.channels) ch = 0;
      }
      cursor.next();
    }
  }
  // the context of element i (its index for rrelu, its slope for prelu), made where it is used
  __device__ __forceinline__ Ctx<C> context(i64 i, C w) const {
    Ctx<C> c = ctx;
    c.i = i;
    if constexpr (F::weighted) c.w = w;
    return c;
  }
};

template <class F, class T, Channels CH> struct ElementwiseForward : ElementwiseInput<F, T, CH> {
  using C = compute_t<T>;
  const T* x;  // may alias y (out=x): each element is read before it is written, by one thread
  T* y;

  template <int N> __device__ __forceinline__ void run(i64 i0) {
    const Pack<T, N> in = *reinterpret_cast<const Pack<T, N>*>(x + i0);
    Pack<T, N> out;
    C z[N], w[N];
    this->inputs(in, z, w);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const Ctx<C> c = this->context(i0 + k, w[k]);
      const C r = F::fwd(z[k], c);  // computed for NaN too and then replaced: no branch
      out.v[k] = store_fwd<F, T>(m::isnan(z[k]) ? z[k] : r, z[k], c);
    }
    *reinterpret_cast<Pack<T, N>*>(y + i0) = out;
  }
};

// dx = dy * f'(z), z = x + bias (so dx is also the gradient with respect to x + bias).  Functors
// that differentiate from y recompute it here: the caller holds x, not y.
template <class F, class T, Channels CH> struct ElementwiseBackward : ElementwiseInput<F, T, CH> {
  using C = compute_t<T>;
  const T* x;
  const T* dy;
  T* dx;
  C* dz;       // optional: dx in the compute precision, for a dbias sum not limited by dx's range
  C* dweight;  // prelu only: one dweight term per element, summed by the column-sum kernel

  template <int N> __device__ __forceinline__ void run(i64 i0) {
    const Pack<T, N> in = *reinterpret_cast<const Pack<T, N>*>(x + i0);
    const Pack<T, N> g = *reinterpret_cast<const Pack<T, N>*>(dy + i0);
    Pack<T, N> out;
    C z[N], w[N];
    this->inputs(in, z, w);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const Ctx<C> c = this->context(i0 + k, w[k]);
      const C d = load(g.v[k]);
      C r;
      if (m::isnan(z[k])) {  // a branch here, not a select: the backward has no registers to spare
        r = z[k];
      } else if constexpr (F::from_y) {
        r = d * F::bwd(F::fwd(z[k], c), c);
      } else {
        r = d * F::bwd(z[k], c);
      }
      out.v[k] = store_bwd<F, T>(r, z[k], d, c);
      if (CH != Channels::kNone && dz != nullptr) dz[i0 + k] = r;
      if constexpr (F::weighted) {
        if (dweight != nullptr) dweight[i0 + k] = m::isnan(z[k]) ? z[k] : F::dweight(z[k], d, c);
      }
    }
    *reinterpret_cast<Pack<T, N>*>(dx + i0) = out;
  }
};

// The parameter a functor branches on (F::choice) as a constant in each of two copies of the loop,
// so that the test leaves the per-element code.
template <class F, int N, class Body> __device__ __forceinline__ void run_loop(i64 n, bool vector_ok, Body& body) {
  if constexpr (F::choice < 0) {
    grid_stride<N>(n, vector_ok, body);
  } else {
    auto& p = F::choice == 0 ? body.ctx.p0 : F::choice == 1 ? body.ctx.p1 : body.ctx.p2;
    if (p != 0) {
      p = 1;
      grid_stride<N>(n, vector_ok, body);
    } else {
      p = 0;
      grid_stride<N>(n, vector_ok, body);
    }
  }
}

// The channel mode of a launch: none (no bias, no per-channel weight), packed (C a multiple of the
// pack, aligned bias and weight, vector loop), or scalar.
template <class F, class T>
__device__ __forceinline__ Channels channel_mode(bool vector_ok, const T* bias, const T* weight, i64 channels,
                                                 i64 weight_len) {
  const bool weight_per_channel = F::weighted && weight != nullptr && weight_len > 1;
  if (bias == nullptr && !weight_per_channel) return Channels::kNone;
  const bool packed = vector_ok && channels % kPack<T> == 0 && (bias == nullptr || aligned16(bias)) &&
                      (!weight_per_channel || aligned16(weight));
  return packed ? Channels::kPacked : Channels::kScalar;
}

template <class F, class T, Channels CH>
__device__ __forceinline__ void forward_loop(const T* x, T* y, const T* bias, const T* weight, i64 n, i64 channels,
                                             i64 weight_len, Ctx<compute_t<T>> ctx, bool vector_ok) {
  ElementwiseForward<F, T, CH> body;
  body.bias = bias;
  body.weight = weight;
  body.weight_len = weight_len;
  body.ctx = ctx;
  body.cursor.channels = channels;
  body.x = x;
  body.y = y;
  run_loop<F, kPack<T>>(n, vector_ok, body);
}

template <class F, class T>
__device__ __forceinline__ void elementwise_forward(const T* x, T* y, const T* bias, const T* weight, i64 n,
                                                    i64 channels, i64 weight_len, Ctx<compute_t<T>> ctx) {
  const bool v = aligned16(x) && aligned16(y);
  switch (channel_mode<F>(v, bias, weight, channels, weight_len)) {
    case Channels::kNone: return forward_loop<F, T, Channels::kNone>(x, y, bias, weight, n, channels, weight_len, ctx, v);
    case Channels::kPacked: return forward_loop<F, T, Channels::kPacked>(x, y, bias, weight, n, channels, weight_len, ctx, v);
    default: return forward_loop<F, T, Channels::kScalar>(x, y, bias, weight, n, channels, weight_len, ctx, v);
  }
}

template <class F, class T, Channels CH>
__device__ __forceinline__ void backward_loop(const T* x, const T* dy, T* dx, const T* bias, const T* weight,
                                              compute_t<T>* dz, compute_t<T>* dweight, i64 n, i64 channels,
                                              i64 weight_len, Ctx<compute_t<T>> ctx, bool vector_ok) {
  ElementwiseBackward<F, T, CH> body;
  body.bias = bias;
  body.weight = weight;
  body.weight_len = weight_len;
  body.ctx = ctx;
  body.cursor.channels = channels;
  body.x = x;
  body.dy = dy;
  body.dx = dx;
  body.dz = dz;
  body.dweight = dweight;
  run_loop<F, kPack<T>>(n, vector_ok, body);
}

template <class F, class T>
__device__ __forceinline__ void elementwise_backward(const T* x, const T* dy, T* dx, const T* bias, const T* weight,
                                                     compute_t<T>* dz, compute_t<T>* dweight, i64 n, i64 channels,
                                                     i64 weight_len, Ctx<compute_t<T>> ctx) {
  const bool v = aligned16(x) && aligned16(dy) && aligned16(dx);
  switch (channel_mode<F>(v, bias, weight, channels, weight_len)) {
    case Channels::kNone:
      return backward_loop<F, T, Channels::kNone>(x, dy, dx, bias, weight, dz, dweight, n, channels, weight_len, ctx, v);
    case Channels::kPacked:
      return backward_loop<F, T, Channels::kPacked>(x, dy, dx, bias, weight, dz, dweight, n, channels, weight_len, ctx,
                                                    v);
    default:
      return backward_loop<F, T, Channels::kScalar>(x, dy, dx, bias, weight, dz, dweight, n, channels, weight_len, ctx,
                                                    v);
  }
}

}  // namespace act

// The backward runs with 3 blocks per SM of register budget (80 registers; 64 spill with the 16-bit
// rounding correction), which keeps 24 KB of loads in flight per SM.
// act_<name>_fwd_<dt>(x, y, bias, weight, n, channels, weight_len, p0, p1, p2, seed)
// act_<name>_bwd_<dt>(x, dy, dx, bias, weight, dz, dweight, n, channels, weight_len, p0, p1, p2, seed)
// bias, weight, dz and dweight may be null.  p0..p2 are the kernel floats in the compute type;
// prelu's float weight travels in p0.  dz and dweight are compute-precision, per element.
#define ACT_ELEMENTWISE(NAME, FUNCTOR, DT)                                                         \
  extern "C" __global__ void __launch_bounds__(256, 4) act_##NAME##_fwd_##DT(                      \
      const ACT_STORAGE_##DT* x, ACT_STORAGE_##DT* y, const ACT_STORAGE_##DT* bias,                \
      const ACT_STORAGE_##DT* weight, act::i64 n, act::i64 channels, act::i64 weight_len,          \
      act::compute_t<ACT_STORAGE_##DT> p0, act::compute_t<ACT_STORAGE_##DT> p1,                    \
      act::compute_t<ACT_STORAGE_##DT> p2, act::u64 seed) {                                        \
    act::elementwise_forward<act::fn::FUNCTOR>(x, y, bias, weight, n, channels, weight_len,        \
                                               {p0, p1, p2, p0, seed, 0});                         \
  }                                                                                                \
  ACT_ENTRY_HOOK(act_##NAME##_fwd_##DT)                                                            \
  extern "C" __global__ void __launch_bounds__(256, 3) act_##NAME##_bwd_##DT(                      \
      const ACT_STORAGE_##DT* x, const ACT_STORAGE_##DT* dy, ACT_STORAGE_##DT* dx,                 \
      const ACT_STORAGE_##DT* bias, const ACT_STORAGE_##DT* weight,                                \
      act::compute_t<ACT_STORAGE_##DT>* dz, act::compute_t<ACT_STORAGE_##DT>* dweight, act::i64 n, \
      act::i64 channels, act::i64 weight_len,                                                      \
      act::compute_t<ACT_STORAGE_##DT> p0, act::compute_t<ACT_STORAGE_##DT> p1,                    \
      act::compute_t<ACT_STORAGE_##DT> p2, act::u64 seed) {                                        \
    act::elementwise_backward<act::fn::FUNCTOR>(x, dy, dx, bias, weight, dz, dweight, n, channels, \
                                                weight_len,                                        \
                                                {p0, p1, p2, p0, seed, 0});                        \
  }                                                                                                \
  ACT_ENTRY_HOOK(act_##NAME##_bwd_##DT)
