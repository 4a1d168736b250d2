// The one elementwise loop, its forward and backward bodies, and the entry-point macro.
#pragma once
#include "functors.cuh"

namespace act {

// Grid-stride over 16-byte packs when every pointer is 16-byte aligned, then the tail (or, when
// some pointer is not aligned, everything) one element at a time.  64-bit indices throughout;
// the grid is capped by the caller, so a thread may run several iterations.
template <int N, class Body> __device__ __forceinline__ void grid_stride(i64 n, bool vector_ok, Body& body) {
  const i64 first = i64(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 step = i64(gridDim.x) * blockDim.x;
  i64 head = 0;
  if (vector_ok) {
    const i64 packs = n / N;
    for (i64 p = first; p < packs; p += step) body.template run<N>(p * N);
    head = packs * N;
  }
  for (i64 i = head + first; i < n; i += step) body.template run<1>(i);
}

// What forward and backward share: z = x + bias[i % channels] and, for prelu, the slope
// weight[i % channels] (weight[0] when it has one element, the float weight when there is none).
template <class F, class T> struct ElementwiseInput {
  using C = compute_t<T>;
  const T* bias;
  const T* weight;
  i64 channels, weight_len;
  Ctx<C> ctx;

  __device__ __forceinline__ i64 channel_of(i64 i) const {
    const bool per_channel = bias != nullptr || (F::weighted && weight != nullptr && weight_len > 1);
    return per_channel ? i % channels : 0;
  }
  // Returns z and fills c for element i, channel ch.
  __device__ __forceinline__ C input(T v, i64 i, i64 ch, Ctx<C>& c) const {
    C z = load(v);
    if (bias != nullptr) z += load(bias[ch]);
    if constexpr (F::weighted) c.w = weight != nullptr ? load(weight[weight_len == 1 ? 0 : ch]) : ctx.p0;
    c.i = i;
    return z;
  }
};

template <class F, class T> struct ElementwiseForward : ElementwiseInput<F, T> {
  using C = compute_t<T>;
  const T* x;  // may alias y (out=x): each element is read before it is written, by one thread
  T* y;

  template <int N> __device__ __forceinline__ void run(i64 i0) {
    const Pack<T, N> in = *reinterpret_cast<const Pack<T, N>*>(x + i0);
    Pack<T, N> out;
    Ctx<C> c = this->ctx;
    i64 ch = this->channel_of(i0);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const C z = this->input(in.v[k], i0 + k, ch, c);
      out.v[k] = store_fwd<F, T>(m::isnan(z) ? z : F::fwd(z, c), z, c);
      if (++ch == this->channels) ch = 0;
    }
    *reinterpret_cast<Pack<T, N>*>(y + i0) = out;
  }
};

// dx = dy * f'(z), z = x + bias (so dx is also the gradient with respect to x + bias).  Functors
// that differentiate from y recompute it here: the caller holds x, not y.
template <class F, class T> struct ElementwiseBackward : ElementwiseInput<F, T> {
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
    Ctx<C> c = this->ctx;
    i64 ch = this->channel_of(i0);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const C z = this->input(in.v[k], i0 + k, ch, c);
      const C d = load(g.v[k]);
      C r;
      if (m::isnan(z)) {
        r = z;
      } else if constexpr (F::from_y) {
        r = d * F::bwd(F::fwd(z, c), c);
      } else {
        r = d * F::bwd(z, c);
      }
      out.v[k] = store_bwd<F, T>(r, z, d, c);
      if (dz != nullptr) dz[i0 + k] = r;
      if constexpr (F::weighted) {
        if (dweight != nullptr) dweight[i0 + k] = m::isnan(z) ? z : F::dweight(z, d, c);
      }
      if (++ch == this->channels) ch = 0;
    }
    *reinterpret_cast<Pack<T, N>*>(dx + i0) = out;
  }
};

template <class F, class T>
__device__ __forceinline__ void elementwise_forward(const T* x, T* y, const T* bias, const T* weight, i64 n,
                                                    i64 channels, i64 weight_len, Ctx<compute_t<T>> ctx) {
  ElementwiseForward<F, T> body;
  body.bias = bias;
  body.weight = weight;
  body.channels = channels;
  body.weight_len = weight_len;
  body.ctx = ctx;
  body.x = x;
  body.y = y;
  grid_stride<kPack<T>>(n, aligned16(x) && aligned16(y), body);
}

template <class F, class T>
__device__ __forceinline__ void elementwise_backward(const T* x, const T* dy, T* dx, const T* bias, const T* weight,
                                                     compute_t<T>* dz, compute_t<T>* dweight, i64 n, i64 channels,
                                                     i64 weight_len, Ctx<compute_t<T>> ctx) {
  ElementwiseBackward<F, T> body;
  body.bias = bias;
  body.weight = weight;
  body.channels = channels;
  body.weight_len = weight_len;
  body.ctx = ctx;
  body.x = x;
  body.dy = dy;
  body.dx = dx;
  body.dz = dz;
  body.dweight = dweight;
  grid_stride<kPack<T>>(n, aligned16(x) && aligned16(dy) && aligned16(dx), body);
}

}  // namespace act

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
  extern "C" __global__ void __launch_bounds__(256, 4) act_##NAME##_bwd_##DT(                      \
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
