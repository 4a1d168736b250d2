// Elementwise and gated activations written straight to FP8 with their amax, in one pass
// (docs/semantics.md, "FP8 output").  The loops are the forward ones (elementwise.cuh,
// gated.cuh: the same inputs, bias, prelu weight, rrelu index, NaN rule); only the store differs:
// f in the compute precision, scaled in double, encoded by fp8::encode, and |f| folded into the
// amax of its tensor, row or group of 128.
#pragma once
#include "fp8.cuh"
#include "gated.cuh"

namespace act {

// One thread's output side: a running max of |f| bits over consecutive elements of one amax
// segment, flushed with an atomicMax when the segment changes.  In tensor mode the whole
// thread's max is kept for the block reduction at the end.
struct Fp8Writer {
  fp8::Sink sink;
  unsigned local = 0;
  i64 seg = -1;

  template <class C> __device__ __forceinline__ void put(i64 i, C r) {
    sink.y[i] = sink.code(double(r), i);
    const i64 s = sink.segment(i);
    if (s != seg) {
      flush();
      seg = s;
    }
    const unsigned bits = fp8::abs_bits(r);
    local = bits > local ? bits : local;
  }
  __device__ __forceinline__ void flush() {
    if (seg >= 0 && local != 0) atomicMax(sink.amax + seg, local);
    local = 0;
  }
  // Every thread of the block calls it: tensor mode reduces the block first (one atomic per block).
  __device__ __forceinline__ void finish() {
    if (sink.mode != 0) return flush();
    __shared__ float amax_scratch[32];
    const float v = block_allreduce(__int_as_float(int(local)), NanMax<float>{}, amax_scratch);
    const unsigned bits = unsigned(__float_as_int(v)) & 0x7fffffffu;
    if (threadIdx.x == 0 && bits != 0) atomicMax(sink.amax, bits);
  }
};

template <class F, class T, Channels CH> struct ElementwiseFp8 : ElementwiseInput<F, T, CH> {
  using C = compute_t<T>;
  const T* x;
  Fp8Writer out;

  template <int N> __device__ __forceinline__ void run(i64 i0) {
    const Pack<T, N> in = *reinterpret_cast<const Pack<T, N>*>(x + i0);
    C z[N], w[N];
    this->inputs(in, z, w);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const Ctx<C> c = this->context(i0 + k, w[k]);
      const C r = F::fwd(z[k], c);
      out.put(i0 + k, m::isnan(z[k]) ? z[k] : r);
    }
  }
};

template <class F, class T, Channels CH>
__device__ __forceinline__ void elementwise_fp8_loop(const T* x, const fp8::Sink& sink, const T* bias, const T* weight,
                                                     i64 n, i64 channels, i64 weight_len, Ctx<compute_t<T>> ctx,
                                                     bool vector_ok) {
  ElementwiseFp8<F, T, CH> body;
  body.bias = bias;
  body.weight = weight;
  body.weight_len = weight_len;
  body.ctx = ctx;
  body.cursor.channels = channels;
  body.x = x;
  body.out.sink = sink;
  run_loop<F, kPack<T>>(n, vector_ok, body);
  body.out.finish();
}

template <class F, class T>
__device__ __forceinline__ void elementwise_fp8(const T* x, const fp8::Sink& sink, const T* bias, const T* weight,
                                                i64 n, i64 channels, i64 weight_len, Ctx<compute_t<T>> ctx) {
  const bool v = aligned16(x);
  switch (channel_mode<F>(v, bias, weight, channels, weight_len)) {
    case Channels::kNone: return elementwise_fp8_loop<F, T, Channels::kNone>(x, sink, bias, weight, n, channels, weight_len, ctx, v);
    case Channels::kPacked: return elementwise_fp8_loop<F, T, Channels::kPacked>(x, sink, bias, weight, n, channels, weight_len, ctx, v);
    default: return elementwise_fp8_loop<F, T, Channels::kScalar>(x, sink, bias, weight, n, channels, weight_len, ctx, v);
  }
}

template <class F, class T, bool BIAS> struct GatedFp8 : GatedInput<T, BIAS> {
  using C = compute_t<T>;
  Fp8Writer out;

  template <int N> __device__ __forceinline__ void run(i64 t0) {
    const i64 a0 = this->a_offset(), b0 = a0 + this->hi;
    const Pack<T, N> pa = *reinterpret_cast<const Pack<T, N>*>(this->x + a0);
    const Pack<T, N> pb = *reinterpret_cast<const Pack<T, N>*>(this->x + b0);
    i64 cha = this->channel_of(a0), chb = this->channel_of(b0);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const C a = this->input(pa.v[k], cha), b = this->input(pb.v[k], chb);
      const C r = F::fwd(a, b, this->ctx);
      out.put(t0 + k, (m::isnan(a) || m::isnan(b)) ? a + b : r);
    }
  }
};

template <class F, class T, bool BIAS>
__device__ __forceinline__ void gated_fp8_loop(const T* x, const fp8::Sink& sink, const T* bias, i64 n_out, i64 hi,
                                               i64 channels, Ctx<compute_t<T>> ctx) {
  GatedFp8<F, T, BIAS> body;
  body.x = x;
  body.bias = bias;
  body.hi = hi;
  body.channels = channels;
  body.ctx = ctx;
  body.out.sink = sink;
  run_loop<F, kPack<T>>(n_out, hi % kPack<T> == 0 && aligned16(x), body);
  body.out.finish();
}

}  // namespace act

// act_<name>_fp8_<dt>(x, y, amax, bias, weight, n, channels, weight_len, p0, p1, p2, seed,
//                     scale, noise_seed, cols, groups, format, mode, stochastic)      elementwise
// act_<name>_fp8_<dt>(x, y, amax, bias, n_out, hi, channels, p0, p1, p2,
//                     scale, noise_seed, cols, groups, format, mode, stochastic)      gated
// y: one byte per output element; amax: float32 bits per segment, zeroed (fp8::Sink).
// Three blocks of 256 per SM, not four: the encoder's registers (up to 76 for the 8-wide 16-bit
// packs) would spill under a 64-register cap, and a spill costs more than the lost occupancy.
#define ACT_FP8_SINK_ARGS                                                                        \
  double scale, act::u64 noise_seed, act::i64 cols, act::i64 groups, int format, int mode, int stochastic
#define ACT_FP8_SINK {y, amax, cols, groups, scale, noise_seed, format, mode, stochastic}

#define ACT_ELEMENTWISE_FP8(NAME, FUNCTOR, DT)                                                     \
  extern "C" __global__ void __launch_bounds__(256, 3) act_##NAME##_fp8_##DT(                      \
      const ACT_STORAGE_##DT* x, unsigned char* y, unsigned* amax, const ACT_STORAGE_##DT* bias,   \
      const ACT_STORAGE_##DT* weight, act::i64 n, act::i64 channels, act::i64 weight_len,          \
      act::compute_t<ACT_STORAGE_##DT> p0, act::compute_t<ACT_STORAGE_##DT> p1,                    \
      act::compute_t<ACT_STORAGE_##DT> p2, act::u64 seed, ACT_FP8_SINK_ARGS) {                     \
    act::elementwise_fp8<act::fn::FUNCTOR>(x, act::fp8::Sink ACT_FP8_SINK, bias, weight, n,        \
                                           channels, weight_len, {p0, p1, p2, p0, seed, 0});       \
  }                                                                                                \
  ACT_ENTRY_HOOK(act_##NAME##_fp8_##DT)

#define ACT_GATED_FP8(NAME, FUNCTOR, DT)                                                           \
  extern "C" __global__ void __launch_bounds__(256, 3) act_##NAME##_fp8_##DT(                      \
      const ACT_STORAGE_##DT* x, unsigned char* y, unsigned* amax, const ACT_STORAGE_##DT* bias,   \
      act::i64 n_out, act::i64 hi, act::i64 channels, act::compute_t<ACT_STORAGE_##DT> p0,         \
      act::compute_t<ACT_STORAGE_##DT> p1, act::compute_t<ACT_STORAGE_##DT> p2,                    \
      ACT_FP8_SINK_ARGS) {                                                                         \
    using F = act::fn::Clamped<act::fn::FUNCTOR>;                                                  \
    const act::fp8::Sink sink ACT_FP8_SINK;                                                        \
    if (bias == nullptr) return act::gated_fp8_loop<F, ACT_STORAGE_##DT, false>(x, sink, bias, n_out, hi, channels, {p0, p1, p2, p0, 0, 0}); \
    act::gated_fp8_loop<F, ACT_STORAGE_##DT, true>(x, sink, bias, n_out, hi, channels, {p0, p1, p2, p0, 0, 0}); \
  }                                                                                                \
  ACT_ENTRY_HOOK(act_##NAME##_fp8_##DT)

// The conversion alone (tests): y[i] = encode(load(v[i]) * scale), noise index i.
#define ACT_FP8_ENCODE(DT)                                                                         \
  extern "C" __global__ void act_fp8_encode_##DT(const ACT_STORAGE_##DT* v, unsigned char* y,      \
                                                 act::i64 n, double scale, act::u64 noise_seed,    \
                                                 int format, int stochastic) {                     \
    const act::fp8::Sink s{y, nullptr, 1, 1, scale, noise_seed, format, 0, stochastic};            \
    for (act::i64 i = act::i64(blockIdx.x) * blockDim.x + threadIdx.x; i < n;                       \
         i += act::i64(gridDim.x) * blockDim.x)                                                    \
      y[i] = s.code(double(act::load(v[i])), i);                                                   \
  }                                                                                                \
  ACT_ENTRY_HOOK(act_fp8_encode_##DT)
