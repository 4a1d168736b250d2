// CPU loops for the NumPy backend, built at first use by activations/backends/_native_cpu.py.
//
// The math is the GPU's: every activation is the device functor of kernels/functors.cuh,
// compiled here as plain C++ through prelude.h.  This file only adds what a CPU needs:
//
// * loops the compiler can vectorize (`#pragma omp simd`; with glibc's libmvec the exp, erfc,
//   tanh... calls of a functor become 16-wide AVX-512 or 8-wide AVX2 calls, and the functors'
//   branches are if-converted into selects);
// * staging: inputs that need work before the functor (16-bit loads, bias, prelu weight) are
//   converted block by block into small compute-precision buffers that stay in L1, so no
//   full-size temporary is ever made;
// * tiles spread over a small persistent thread pool, with per-column reductions (dbias,
//   dweight) summed in float64 per tile and folded in a fixed order: results do not depend on
//   the number of threads.
//
// Entry points take a `Job` struct (mirrored by ctypes in _native_cpu.py) and return 0 when
// done, or a positive code when the case is not handled here (the caller then uses NumPy).

#include "prelude.h"
#include "functors.cuh"

namespace act {
namespace m {
// See prelude.h: the same values as common.cuh's sigmoid (1 / (1 + e) or e / (1 + e)), with one
// exp and one division.
template <class C> __forceinline__ C sigmoid_one_exp(C x) {
  const C e = exp(-abs(x));
  return (x >= C(0) ? C(1) : e) / (C(1) + e);
}
inline __attribute__((always_inline)) float sigmoid(float x) { return sigmoid_one_exp(x); }
inline __attribute__((always_inline)) double sigmoid(double x) { return sigmoid_one_exp(x); }
}  // namespace m
}  // namespace act

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace cpu {

using act::i64;
using act::u64;

// Elements staged per block: a handful of float buffers of this size stay in a 32 KiB L1.
constexpr i64 kBlock = 2048;
// Below this many elements one thread beats waking the pool (a few tens of microseconds on a
// VM): activations with a transcendental function are worth splitting sooner than the others.
constexpr i64 kParallelMinCheap = i64(1) << 17;
constexpr i64 kParallelMinHeavy = i64(1) << 15;
// Elements per task when work is split: small enough to balance two busy cores, large enough
// that the per-task overhead (a few microseconds) does not show.
constexpr i64 kTaskElems = i64(1) << 17;
constexpr i64 kMaxTasks = 256;
// Per-column float64 partial sums kept at once (row ranges x columns).
constexpr i64 kAccBudget = i64(1) << 21;

enum Status : int { kOk = 0, kUnknownOp = 1, kBadDtype = 2, kBadArgs = 3, kNoMemory = 4 };
enum Dtype : int { kF16 = 0, kBF16 = 1, kF32 = 2, kF64 = 3 };

// ---------------------------------------------------------------------------- thread pool
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Workers wait for a new generation, spin a little first (back-to-back calls are common and a
// futex wake costs tens of microseconds on a VM), then block.  Tasks are claimed from a ticket
// that carries the generation, and the caller returns as soon as every task is done: a worker
// that wakes late (its core busy elsewhere) finds nothing left and costs the caller nothing,
// and it can never run a task of a later generation with the arguments of an earlier one.
// One parallel region runs at a time; a second caller (another Python thread: ctypes releases
// the GIL) runs its tasks itself.
class Pool {
 public:
  explicit Pool(int size) : pid_(getpid()) {
    // A thread that cannot be started just leaves a smaller pool.
    for (int id = 0; id < size; ++id) {
      try {
        threads_.emplace_back([this, id] { worker(id); });
      } catch (...) {
        break;
      }
    }
  }
  int size() const { return int(threads_.size()); }
  pid_t pid() const { return pid_; }
  std::mutex& region() { return region_; }

  // Runs fn(0..ntasks-1) on the caller and up to `helpers` workers; returns when all are done.
  void run(int ntasks, int helpers, const std::function<void(int)>& fn) {
    u64 g;
    {
      std::lock_guard<std::mutex> lk(mu_);
      g = gen_.load(std::memory_order_relaxed) + 1;
      job_ = &fn;
      ntasks_ = ntasks;
      participants_ = helpers;
      done_.store(0, std::memory_order_relaxed);
      ticket_.store((g & 0xffffffffu) << 32, std::memory_order_relaxed);
      gen_.store(g, std::memory_order_release);
    }
    cv_work_.notify_all();
    drain(g, &fn, ntasks);
    for (int s = 0; s < kSpin && done_.load(std::memory_order_acquire) != ntasks; ++s) cpu_relax();
    if (done_.load(std::memory_order_acquire) != ntasks) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_done_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == ntasks; });
    }
  }

 private:
  static constexpr int kSpin = 1 << 14;

  void drain(u64 g, const std::function<void(int)>* job, int ntasks) {
    const u64 tag = (g & 0xffffffffu) << 32;
    for (;;) {
      u64 t = ticket_.load(std::memory_order_acquire);
      if ((t & ~u64(0xffffffffu)) != tag || int(t & 0xffffffffu) >= ntasks) return;
      if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) continue;
      (*job)(int(t & 0xffffffffu));
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == ntasks) {
        std::lock_guard<std::mutex> lk(mu_);
        cv_done_.notify_one();
      }
    }
  }

  void worker(int id) {
    u64 seen = 0;
    for (;;) {
      for (int s = 0; s < kSpin && gen_.load(std::memory_order_acquire) == seen; ++s) cpu_relax();
      const std::function<void(int)>* job;
      int ntasks, participants;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_work_.wait(lk, [&] { return gen_.load(std::memory_order_acquire) != seen; });
        seen = gen_.load(std::memory_order_acquire);
        job = job_;  // read with `seen`, under the lock: one consistent job
        ntasks = ntasks_;
        participants = participants_;
      }
      if (id < participants) drain(seen, job, ntasks);
    }
  }

  pid_t pid_;
  std::vector<std::thread> threads_;
  std::mutex region_, mu_;
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;
  int ntasks_ = 0, participants_ = 0;
  std::atomic<int> done_{0};
  std::atomic<u64> ticket_{0}, gen_{0};
};

// Pools are never destroyed: their threads block forever and die with the process (joining
// them from a static destructor would hang or abort at exit).  A forked child starts a new one.
inline std::mutex g_pool_mu;
inline Pool* g_pool = nullptr;

inline void parallel_for(int ntasks, int threads, const std::function<void(int)>& fn) {
  int helpers = std::min(threads, ntasks) - 1;
  if (helpers <= 0) {
    for (int t = 0; t < ntasks; ++t) fn(t);
    return;
  }
  Pool* pool;
  {
    std::lock_guard<std::mutex> lk(g_pool_mu);
    if (g_pool == nullptr || g_pool->pid() != getpid() || g_pool->size() < helpers) {
      // A larger pool replaces a smaller one; the old one's idle threads just stay asleep.
      g_pool = new Pool(std::max(helpers, g_pool != nullptr && g_pool->pid() == getpid() ? g_pool->size() : 0));
    }
    pool = g_pool;
  }
  helpers = std::min(helpers, pool->size());
  std::unique_lock<std::mutex> region(pool->region(), std::try_to_lock);
  if (!region.owns_lock()) {
    for (int t = 0; t < ntasks; ++t) fn(t);
    return;
  }
  pool->run(ntasks, helpers, fn);
}

// parallel_for for tasks that may throw: the first error is returned as a status, the
// remaining tasks are skipped (an exception must not leave a pool thread).
inline int run_tasks(int ntasks, int threads, const std::function<void(int)>& fn) {
  std::atomic<int> err{0};
  const std::function<void(int)> safe = [&](int t) {
    if (err.load(std::memory_order_relaxed) != 0) return;
    try {
      fn(t);
    } catch (const std::bad_alloc&) {
      err.store(kNoMemory);
    } catch (...) {
      err.store(kBadArgs);
    }
  };
  parallel_for(ntasks, threads, safe);
  return err.load();
}

// ---------------------------------------------------------------------------- the job
// Mirrored by ctypes (_native_cpu.py: class _Job); keep the field order.
struct Job {
  const void* x;
  const void* dy;      // backward only
  void* out;           // y (forward) or dx (backward), C-contiguous, x's dtype
  const void* bias;    // x's dtype, `channels` long, or null
  const void* weight;  // prelu: x's dtype, weight_len long, or null (the float weight is p0)
  double* dbias;       // backward with bias: `channels` float64 sums (output)
  double* dweight;     // prelu backward: weight_len (or 1) float64 sums (output)
  i64 n;               // elements of x (elementwise), output elements (gated), x (rowwise)
  i64 channels;        // length of the last axis (bias/weight period; gated: 2H; rowwise: row length)
  i64 weight_len;
  double p0, p1, p2;
  u64 seed;
  int op, dtype, threads, backward;
};

template <class C> act::Ctx<C> make_ctx(const Job& j) {
  act::Ctx<C> c;
  c.p0 = C(j.p0);
  c.p1 = C(j.p1);
  c.p2 = C(j.p2);
  c.w = C(j.p0);
  c.seed = j.seed;
  c.i = 0;
  return c;
}

// Storage <-> compute conversions of one block (vectorized: the 16-bit ones are integer code).
template <class D, class C> inline void load_block(const D* __restrict src, C* __restrict dst, i64 len) {
#pragma omp simd
  for (i64 k = 0; k < len; ++k) dst[k] = act::load(src[k]);
}
template <class D, class C>
inline void load_block_bias(const D* __restrict src, const C* __restrict bias, C* __restrict dst, i64 len) {
#pragma omp simd
  for (i64 k = 0; k < len; ++k) dst[k] = act::load(src[k]) + bias[k];
}
template <class D, class C> inline void store_block(const C* __restrict src, D* __restrict dst, i64 len) {
#pragma omp simd
  for (i64 k = 0; k < len; ++k) dst[k] = act::store<D>(src[k]);
}

// Outputs this large are written with non-temporal stores: they are far bigger than the caches,
// and streaming skips reading each destination line before overwriting it (a third of the
// memory traffic of a plain store loop).
#ifndef ACT_CPU_STREAM_MIN_BYTES
#define ACT_CPU_STREAM_MIN_BYTES (i64(16) << 20)
#endif
constexpr i64 kStreamMinBytes = ACT_CPU_STREAM_MIN_BYTES;

template <class C> inline void stream_copy(C* __restrict dst, const C* __restrict src, i64 len) {
  char* d = reinterpret_cast<char*>(dst);
  const char* s = reinterpret_cast<const char*>(src);
  i64 bytes = len * i64(sizeof(C));
#if defined(__SSE2__)
  const i64 head = std::min<i64>(bytes, i64((64 - (reinterpret_cast<uintptr_t>(d) & 63)) & 63));
  memcpy(d, s, size_t(head));
  d += head;
  s += head;
  bytes -= head;
  for (; bytes >= 64; bytes -= 64, d += 64, s += 64) {
#if defined(__AVX512F__)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(d), _mm512_loadu_si512(s));
#elif defined(__AVX__)
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s)));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + 32),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 32)));
#else
    for (int q = 0; q < 64; q += 16)
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + q), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + q)));
#endif
  }
#endif
  memcpy(d, s, size_t(bytes));
}

// Makes a tile's streaming stores visible before the tile counts as done.
inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

template <class C> struct Scratch {
  // z: x (+ bias) in compute precision; g: dy; r: results
  alignas(64) C z[kBlock];
  alignas(64) C g[kBlock];
  alignas(64) C r[kBlock];
};

// A (rows x width) grid of elements; the last row may be shorter (`last`).  Tiles are
// (row range x column range); tiles of one row range share one set of per-column sums.
struct Grid {
  i64 rows, width, last;
  i64 col_chunk, col_chunks, row_chunk, row_chunks;

  i64 row_len(i64 r) const { return r == rows - 1 ? last : width; }
  int tasks() const { return int(col_chunks * row_chunks); }
};

inline Grid plan(i64 n, i64 width, bool per_column_sums, bool heavy) {
  Grid g;
  g.width = std::max<i64>(width, 1);
  g.rows = (n + g.width - 1) / g.width;
  g.last = n - (g.rows - 1) * g.width;
  const i64 want = n < (heavy ? kParallelMinHeavy : kParallelMinCheap)
                       ? 1
                       : std::min<i64>(kMaxTasks, std::max<i64>(2, (n + kTaskElems - 1) / kTaskElems));
  // Split columns only when rows are too few to make the tasks.
  g.col_chunks = std::max<i64>(1, std::min<i64>(want / std::max<i64>(g.rows, 1), g.width / kBlock));
  g.col_chunk = (g.width + g.col_chunks - 1) / g.col_chunks;
  g.col_chunk = (g.col_chunk + 63) / 64 * 64;
  g.col_chunks = (g.width + g.col_chunk - 1) / g.col_chunk;
  i64 rr = std::max<i64>(1, (want + g.col_chunks - 1) / g.col_chunks);
  if (per_column_sums) rr = std::min(rr, std::max<i64>(1, kAccBudget / g.width));
  rr = std::min(rr, g.rows);
  g.row_chunk = (g.rows + rr - 1) / rr;
  g.row_chunks = (g.rows + g.row_chunk - 1) / g.row_chunk;
  return g;
}

// Calls block(row, col0, len) for every block of tile t, blocks no longer than kBlock.
template <class Block> void for_blocks(const Grid& g, int t, Block&& block) {
  const i64 rc = t / g.col_chunks, cc = t % g.col_chunks;
  const i64 r0 = rc * g.row_chunk, r1 = std::min(g.rows, r0 + g.row_chunk);
  const i64 c0 = cc * g.col_chunk;
  for (i64 r = r0; r < r1; ++r) {
    const i64 c1 = std::min(c0 + g.col_chunk, g.row_len(r));
    for (i64 c = c0; c < c1; c += kBlock) block(r, c, std::min(kBlock, c1 - c));
  }
}

// ---------------------------------------------------------------------------- elementwise
// Functors that branch on a choice parameter (0 or 1; `index` says which of p0, p1, p2): their
// loops are compiled once per value, with the value as a constant, so that only the chosen
// branch is evaluated.  If-conversion would otherwise compute both for every element: the exact
// and the tanh GELU, rrelu's hash in eval mode.
template <class F> struct Choice {
  static constexpr int index = -1;
};
template <> struct Choice<act::fn::Gelu> {
  static constexpr int index = 0;  // approximate
};
template <> struct Choice<act::fn::Rrelu> {
  static constexpr int index = 2;  // training
};
template <> struct Choice<act::fn::Geglu> {
  static constexpr int index = 0;  // approximate
};

// Sets the choice parameter of c to the constant V (no-op for V < 0).  A macro, not a function:
// `c` must stay a plain local that is never passed by address, or the omp simd loops that copy
// it would keep it in memory and not vectorize.
#define ACT_CPU_FIX_CHOICE(F, V, c)                                     \
  do {                                                                   \
    if constexpr ((V) >= 0 && Choice<F>::index == 0) (c).p0 = C(V);      \
    if constexpr ((V) >= 0 && Choice<F>::index == 1) (c).p1 = C(V);      \
    if constexpr ((V) >= 0 && Choice<F>::index == 2) (c).p2 = C(V);      \
  } while (0)

// The choice parameter's value when F has one and it is 0 or 1, else -1.
template <class F, class C> inline int choice_of(const act::Ctx<C>& c) {
  constexpr int idx = Choice<F>::index;
  if constexpr (idx < 0) {
    return -1;
  } else {
    const C v = idx == 0 ? c.p0 : idx == 1 ? c.p1 : c.p2;
    return v == C(0) ? 0 : v == C(1) ? 1 : -1;
  }
}

// The functor loops.  They depend on the functor and the compute type only, so f16, bf16 and
// f32 share the float ones (kept out of line: one copy each, whoever stages the inputs).
// z may be x itself and r may be x or dy: every element is read before it is written.
template <class F, class C> struct Core {
  static void fwd(const C* z, C* y, i64 len, const act::Ctx<C>& ctx, i64 i0, const C* w) {
    switch (choice_of<F>(ctx)) {
      case 0: return fwd_loop<0>(z, y, len, ctx, i0, w);
      case 1: return fwd_loop<1>(z, y, len, ctx, i0, w);
      default: return fwd_loop<-1>(z, y, len, ctx, i0, w);
    }
  }

  // r = dy * f'(z); with SB adds r to sb, with SW the dweight terms to sw, with WS returns
  // their total; W: per-element weights w.
  template <int W, int SB, int SW, int WS>
  static double bwd(const C* z, const C* d, C* r, i64 len, const act::Ctx<C>& ctx, i64 i0, const C* w, double* sb,
                    double* sw) {
    switch (choice_of<F>(ctx)) {
      case 0: return bwd_loop<0, W, SB, SW, WS>(z, d, r, len, ctx, i0, w, sb, sw);
      case 1: return bwd_loop<1, W, SB, SW, WS>(z, d, r, len, ctx, i0, w, sb, sw);
      default: return bwd_loop<-1, W, SB, SW, WS>(z, d, r, len, ctx, i0, w, sb, sw);
    }
  }

 private:
  // The loops proper.  `flatten` inlines the functor and everything it calls, so that the
  // per-iteration copy of the context dissolves into registers and the loop vectorizes.
  template <int V>
  __attribute__((noinline, flatten)) static void fwd_loop(const C* __restrict z, C* __restrict y, i64 len,
                                                             const act::Ctx<C>& ctx, i64 i0, const C* __restrict w) {
    act::Ctx<C> base = ctx;
    ACT_CPU_FIX_CHOICE(F, V, base);
    if constexpr (F::weighted) {
      if (w != nullptr) {
#pragma omp simd
        for (i64 k = 0; k < len; ++k) {
          act::Ctx<C> c = base;
          c.w = w[k];
          const C v = z[k];
          y[k] = v != v ? v : F::fwd(v, c);  // NaN in, NaN out: functors only see numbers
        }
        return;
      }
    }
#pragma omp simd
    for (i64 k = 0; k < len; ++k) {
      act::Ctx<C> c = base;
      c.i = i0 + k;
      const C v = z[k];
      y[k] = v != v ? v : F::fwd(v, c);
    }
  }

  template <int V, int W, int SB, int SW, int WS>
  __attribute__((noinline, flatten)) static double bwd_loop(const C* __restrict z, const C* __restrict d,
                                                               C* __restrict r, i64 len, const act::Ctx<C>& ctx,
                                                               i64 i0, const C* __restrict w, double* __restrict sb,
                                                               double* __restrict sw) {
    act::Ctx<C> base = ctx;
    ACT_CPU_FIX_CHOICE(F, V, base);
    double wsum = 0.0;
#pragma omp simd reduction(+ : wsum)
    for (i64 k = 0; k < len; ++k) {
      act::Ctx<C> c = base;
      if constexpr (W) c.w = w[k];
      c.i = i0 + k;
      const C v = z[k];
      const C dk = d[k];
      C res;
      if constexpr (F::from_y) {
        res = v != v ? v : dk * F::bwd(F::fwd(v, c), c);
      } else {
        res = v != v ? v : dk * F::bwd(v, c);
      }
      if constexpr (F::weighted && (SW || WS)) {
        const C term = v != v ? v : F::dweight(v, dk, c);
        if constexpr (SW) sw[k] += double(term);
        if constexpr (WS) wsum += double(term);
      }
      if constexpr (SB) sb[k] += double(res);
      r[k] = res;
    }
    return wsum;
  }
};

// One activation's loops for compute type C: the driver below is compiled once per dtype and
// calls these through pointers (one indirect call per block).
template <class C> struct Ops {
  using Fwd = void (*)(const C*, C*, i64, const act::Ctx<C>&, i64, const C*);
  using Bwd = double (*)(const C*, const C*, C*, i64, const act::Ctx<C>&, i64, const C*, double*, double*);
  Fwd fwd;
  Bwd bwd[2][2][2][2];  // [W][SB][SW][WS], see Core::bwd
  bool weighted;
  bool heavy;  // calls exp, erfc, tanh...: worth threads sooner
};

// Functors that call a transcendental function (the others are a few compares, multiplies, a
// division or rrelu's integer hash: memory-bound).
template <class F> struct Heavy : std::true_type {};
#define ACT_CPU_CHEAP(functor) \
  template <> struct Heavy<act::fn::functor> : std::false_type {};
ACT_CPU_CHEAP(Relu)
ACT_CPU_CHEAP(Relu6)
ACT_CPU_CHEAP(LeakyRelu)
ACT_CPU_CHEAP(Prelu)
ACT_CPU_CHEAP(Rrelu)
ACT_CPU_CHEAP(Softsign)
ACT_CPU_CHEAP(HardSigmoid)
ACT_CPU_CHEAP(HardSilu)
ACT_CPU_CHEAP(HardTanh)
ACT_CPU_CHEAP(SoftShrink)
ACT_CPU_CHEAP(HardShrink)
ACT_CPU_CHEAP(Threshold)
ACT_CPU_CHEAP(SparsePlus)
ACT_CPU_CHEAP(SparseSigmoid)
ACT_CPU_CHEAP(Linear)
ACT_CPU_CHEAP(Reglu)
#undef ACT_CPU_CHEAP

template <class F, class C> const Ops<C>& ops_of() {
  static const Ops<C> ops = [] {
    using K = Core<F, C>;
    Ops<C> o{};
    o.weighted = F::weighted;
    o.heavy = Heavy<F>::value;
    o.fwd = &K::fwd;
    o.bwd[0][0][0][0] = &K::template bwd<0, 0, 0, 0>;
    o.bwd[0][1][0][0] = &K::template bwd<0, 1, 0, 0>;
    if constexpr (F::weighted) {
      o.bwd[0][0][0][1] = &K::template bwd<0, 0, 0, 1>;
      o.bwd[0][1][0][1] = &K::template bwd<0, 1, 0, 1>;
      o.bwd[1][0][0][0] = &K::template bwd<1, 0, 0, 0>;
      o.bwd[1][1][0][0] = &K::template bwd<1, 1, 0, 0>;
      o.bwd[1][0][1][0] = &K::template bwd<1, 0, 1, 0>;
      o.bwd[1][1][1][0] = &K::template bwd<1, 1, 1, 0>;
    }
    return o;
  }();
  return ops;
}

// A flat array with a per-column pattern (bias, prelu weight) is walked as "super-rows" of
// whole rows, at least kBlock wide: every block then indexes the pattern directly.
template <class D> struct Elementwise {
  using C = act::compute_t<D>;
  static constexpr bool kDirect = sizeof(C) == sizeof(D);  // f32/f64: compute in place

  const Job& j;
  const Ops<C>& ops;
  act::Ctx<C> ctx;
  const D* x;
  const D* dy;
  D* out;
  const C* bias = nullptr;    // pattern: width long
  const C* weight = nullptr;  // pattern: width long (per-column prelu weight)
  Grid g;
  std::vector<C> bias_pat, weight_pat;
  std::vector<double> sums_b, sums_w;  // row_chunks x width
  std::vector<double> sums_ws;         // one scalar dweight per tile
  bool stream = false;                 // non-temporal stores (see kStreamMinBytes)

  Elementwise(const Job& job, const Ops<C>& table)
      : j(job), ops(table), ctx(make_ctx<C>(job)), x(static_cast<const D*>(job.x)), dy(static_cast<const D*>(job.dy)),
        out(static_cast<D*>(job.out)) {}

  int prepare() {
    const bool per_column_w = ops.weighted && j.weight != nullptr && j.weight_len > 1;
    const bool pattern = j.bias != nullptr || per_column_w;
    if (ops.weighted && j.weight != nullptr && j.weight_len == 1) ctx.w = act::load(static_cast<const D*>(j.weight)[0]);
    if (pattern && (j.channels <= 0 || j.n % j.channels != 0)) return kBadArgs;
    if (per_column_w && j.weight_len != j.channels) return kBadArgs;
    i64 width = j.n;
    if (pattern) width = j.channels < kBlock ? j.channels * ((kBlock + j.channels - 1) / j.channels) : j.channels;
    const bool column_sums = j.backward && (j.bias != nullptr || per_column_w);
    g = plan(j.n, width, column_sums, ops.heavy || j.backward);
    if (pattern) {
      width = g.width;
      if (j.bias != nullptr) bias_pat = periodic(static_cast<const D*>(j.bias), width);
      if (per_column_w) weight_pat = periodic(static_cast<const D*>(j.weight), width);
      bias = bias_pat.empty() ? nullptr : bias_pat.data();
      weight = weight_pat.empty() ? nullptr : weight_pat.data();
    }
    // In place (out = x, or dx = dy) the lines are in the cache already: plain stores.  A forward
    // with a transcendental function is compute-bound on one core: the extra copy through L1
    // costs more than the saved reads (measured), so it streams only in the backward.
    stream = kDirect && j.n * i64(sizeof(D)) >= kStreamMinBytes && j.out != j.x && j.out != j.dy &&
             (!ops.heavy || j.backward);
    if (j.backward) {
      if (j.bias != nullptr) sums_b.assign(size_t(g.row_chunks * g.width), 0.0);
      if (per_column_w) sums_w.assign(size_t(g.row_chunks * g.width), 0.0);
      if (ops.weighted && !per_column_w) sums_ws.assign(size_t(g.tasks()), 0.0);
    }
    return kOk;
  }

  std::vector<C> periodic(const D* src, i64 width) const {
    std::vector<C> p(static_cast<size_t>(width));
    for (i64 k = 0; k < width; ++k) p[size_t(k)] = act::load(src[k % j.channels]);
    return p;
  }

  // z for a block: x itself when it is already in compute precision, else staged.
  const C* input(const D* src, i64 c, i64 len, Scratch<C>& s) const {
    if (bias != nullptr) {
      load_block_bias(src, bias + c, s.z, len);
      return s.z;
    }
    if constexpr (kDirect) {
      return reinterpret_cast<const C*>(src);
    } else {
      load_block(src, s.z, len);
      return s.z;
    }
  }

  void forward_block(i64 row, i64 c, i64 len, Scratch<C>& s) const {
    const i64 i0 = row * g.width + c;
    const C* z = input(x + i0, c, len, s);
    C* y = kDirect && !stream ? reinterpret_cast<C*>(out + i0) : s.r;
    ops.fwd(z, y, len, ctx, i0, weight != nullptr ? weight + c : nullptr);
    if constexpr (!kDirect) {
      store_block(s.r, out + i0, len);
    } else if (stream) {
      stream_copy(reinterpret_cast<C*>(out + i0), s.r, len);
    }
  }

  // dx = dy * f'(z); adds dx to the dbias sums and the prelu terms to the dweight sums.
  void backward_block(i64 row, i64 c, i64 len, Scratch<C>& s, double* sb, double* sw, double& sws) const {
    const i64 i0 = row * g.width + c;
    const C* z = input(x + i0, c, len, s);
    const C* d;
    if constexpr (kDirect) {
      d = reinterpret_cast<const C*>(dy + i0);
    } else {
      load_block(dy + i0, s.g, len);
      d = s.g;
    }
    C* r = kDirect && !stream ? reinterpret_cast<C*>(out + i0) : s.r;
    const C* w = weight != nullptr ? weight + c : nullptr;
    if (sb != nullptr) sb += c;
    if (sw != nullptr) sw += c;
    const bool ws = ops.weighted && w == nullptr && j.dweight != nullptr;
    sws += ops.bwd[w != nullptr][sb != nullptr][sw != nullptr][ws](z, d, r, len, ctx, i0, w, sb, sw);
    if constexpr (!kDirect) {
      store_block(s.r, out + i0, len);
    } else if (stream) {
      stream_copy(reinterpret_cast<C*>(out + i0), s.r, len);
    }
  }

  void tile(int t) {
    const bool staged = !kDirect || bias != nullptr || stream;
    const std::unique_ptr<Scratch<C>> s(new Scratch<C>);
    Scratch<C>& sc = *s;
    if (!j.backward) {
      if (!staged && weight == nullptr) {
        // Nothing to stage: one loop over each run of the tile.
        for_rows(t, [&](i64 row, i64 c, i64 len) { forward_block(row, c, len, sc); });
      } else {
        for_blocks(g, t, [&](i64 row, i64 c, i64 len) { forward_block(row, c, len, sc); });
      }
    } else {
      const i64 rc = t / g.col_chunks;
      double* sb = sums_b.empty() ? nullptr : sums_b.data() + rc * g.width;
      double* sw = sums_w.empty() ? nullptr : sums_w.data() + rc * g.width;
      double sws = 0.0;
      auto block = [&](i64 row, i64 c, i64 len) { backward_block(row, c, len, sc, sb, sw, sws); };
      if (!staged && weight == nullptr && sb == nullptr && sw == nullptr) {
        for_rows(t, block);
      } else {
        for_blocks(g, t, block);
      }
      if (!sums_ws.empty()) sums_ws[size_t(t)] = sws;
    }
    if (stream) stream_fence();
  }

  // Like for_blocks, but one call per row of the tile.
  template <class Block> void for_rows(int t, Block&& block) const {
    const i64 rc = t / g.col_chunks, cc = t % g.col_chunks;
    const i64 r0 = rc * g.row_chunk, r1 = std::min(g.rows, r0 + g.row_chunk);
    const i64 c0 = cc * g.col_chunk;
    for (i64 r = r0; r < r1; ++r) {
      const i64 c1 = std::min(c0 + g.col_chunk, g.row_len(r));
      if (c1 > c0) block(r, c0, c1 - c0);
    }
  }

  void finish() {
    // Fold the sums: row ranges in order, then the super-row's columns onto the channels.
    const i64 ch = j.channels;
    if (!sums_b.empty()) {
      for (i64 k = 0; k < ch; ++k) j.dbias[k] = 0.0;
      for (i64 rc = 0; rc < g.row_chunks; ++rc)
        for (i64 c = 0; c < g.width; ++c) j.dbias[c % ch] += sums_b[size_t(rc * g.width + c)];
    }
    if (!sums_w.empty()) {
      for (i64 k = 0; k < ch; ++k) j.dweight[k] = 0.0;
      for (i64 rc = 0; rc < g.row_chunks; ++rc)
        for (i64 c = 0; c < g.width; ++c) j.dweight[c % ch] += sums_w[size_t(rc * g.width + c)];
    }
    if (!sums_ws.empty() && j.dweight != nullptr) {
      double total = 0.0;
      for (double v : sums_ws) total += v;
      j.dweight[0] = total;
    }
  }
};

template <class D> int run_elementwise(const Job& job, const Ops<act::compute_t<D>>& ops) {
  if (job.n <= 0) return kBadArgs;
  Elementwise<D> e(job, ops);
  int st = e.prepare();
  if (st == kOk) st = run_tasks(e.g.tasks(), job.threads, [&](int t) { e.tile(t); });
  if (st == kOk && job.backward) e.finish();
  return st;
}

// ---------------------------------------------------------------------------- gated
// x as (rows, 2H) (axis last, C-contiguous): a = row[:H], b = row[H:]; y as (rows, H).
template <class F, class D> struct Gated {
  using C = act::compute_t<D>;
  const Job& j;
  act::Ctx<C> ctx;
  const D* x;
  const D* dy;
  D* out;
  i64 h;
  Grid g;
  std::vector<C> bias;        // 2H
  std::vector<double> sums;   // row_chunks x 2H
  bool stream = false;        // non-temporal stores, as in Elementwise

  explicit Gated(const Job& job)
      : j(job), ctx(make_ctx<C>(job)), x(static_cast<const D*>(job.x)), dy(static_cast<const D*>(job.dy)),
        out(static_cast<D*>(job.out)), h(job.channels / 2) {}

  int prepare() {
    if (j.channels <= 0 || j.channels % 2 != 0 || j.n % h != 0) return kBadArgs;
    g = plan(j.n, h, j.backward && j.bias != nullptr, Heavy<F>::value || j.backward);
    stream = sizeof(C) == sizeof(D) && j.n * i64(sizeof(D)) >= kStreamMinBytes;
    if (j.bias != nullptr) {
      bias.resize(size_t(2 * h));
      for (i64 k = 0; k < 2 * h; ++k) bias[size_t(k)] = act::load(static_cast<const D*>(j.bias)[k]);
      if (j.backward) sums.assign(size_t(g.row_chunks * 2 * h), 0.0);
    }
    return kOk;
  }

  __attribute__((flatten)) void block(i64 row, i64 c, i64 len, C* __restrict za, C* __restrict zb, C* __restrict ga,
                                      C* __restrict gb, double* __restrict sums_row) const {
    const D* xa = x + row * 2 * h + c;
    const D* xb = xa + h;
    if (bias.empty()) {
      load_block(xa, za, len);
      load_block(xb, zb, len);
    } else {
      load_block_bias(xa, bias.data() + c, za, len);
      load_block_bias(xb, bias.data() + h + c, zb, len);
    }
    switch (choice_of<F>(ctx)) {
      case 0: return loops<0>(row, c, len, za, zb, ga, gb, sums_row);
      case 1: return loops<1>(row, c, len, za, zb, ga, gb, sums_row);
      default: return loops<-1>(row, c, len, za, zb, ga, gb, sums_row);
    }
  }

  template <int V>
  inline __attribute__((always_inline)) void loops(i64 row, i64 c, i64 len, const C* __restrict za,
                                                   const C* __restrict zb, C* __restrict ga, C* __restrict gb,
                                                   double* __restrict sums_row) const {
    act::Ctx<C> cc = ctx;
    ACT_CPU_FIX_CHOICE(F, V, cc);
    if (!j.backward) {
#pragma omp simd
      for (i64 k = 0; k < len; ++k) {
        const C a = za[k], b = zb[k];
        ga[k] = (a != a || b != b) ? a + b : F::fwd(a, b, cc);  // NaN in either half: NaN
      }
      emit(ga, out + row * h + c, len);
      return;
    }
    const D* d = dy + row * h + c;
#pragma omp simd
    for (i64 k = 0; k < len; ++k) {
      const C a = za[k], b = zb[k];
      const C dk = act::load(d[k]);
      const act::Pair<C> p = F::grad(a, b, cc);
      const bool nan = a != a || b != b;
      ga[k] = nan ? a + b : dk * p.a;
      gb[k] = nan ? a + b : dk * p.b;
    }
    if (sums_row != nullptr) {
#pragma omp simd
      for (i64 k = 0; k < len; ++k) {
        sums_row[c + k] += double(ga[k]);
        sums_row[h + c + k] += double(gb[k]);
      }
    }
    emit(ga, out + row * 2 * h + c, len);
    emit(gb, out + row * 2 * h + h + c, len);
  }

  void emit(const C* src, D* dst, i64 len) const {
    if constexpr (sizeof(C) == sizeof(D)) {
      if (stream) return stream_copy(reinterpret_cast<C*>(dst), src, len);
    }
    store_block(src, dst, len);
  }

  void tile(int t) {
    std::vector<C> buf(size_t(4 * kBlock));
    C* za = buf.data();
    double* sums_row = sums.empty() ? nullptr : sums.data() + (t / g.col_chunks) * 2 * h;
    for_blocks(g, t, [&](i64 row, i64 c, i64 len) {
      block(row, c, len, za, za + kBlock, za + 2 * kBlock, za + 3 * kBlock, sums_row);
    });
    if (stream) stream_fence();
  }

  void finish() {
    if (sums.empty()) return;
    for (i64 k = 0; k < 2 * h; ++k) j.dbias[k] = 0.0;
    for (i64 rc = 0; rc < g.row_chunks; ++rc)
      for (i64 k = 0; k < 2 * h; ++k) j.dbias[k] += sums[size_t(rc * 2 * h + k)];
  }
};

template <class F, class D> int run_gated(const Job& job) {
  if (job.n <= 0) return kBadArgs;
  Gated<F, D> e(job);
  int st = e.prepare();
  if (st == kOk) st = run_tasks(e.g.tasks(), job.threads, [&](int t) { e.tile(t); });
  if (st == kOk && job.backward) e.finish();
  return st;
}

// ---------------------------------------------------------------------------- rowwise
// softmax, log_softmax, softmin along contiguous rows of `channels` elements, no mask:
// max-subtracted; a NaN or +inf in a row (or a row of -inf) makes the whole row NaN through the
// sum, as docs/semantics.md asks.  Backward (from y): softmax y (dy - sum(dy y)), softmin the
// negative of that, log_softmax dy - exp(y) sum(dy).
enum Rowwise : int { kSoftmax = 0, kLogSoftmax = 1, kSoftmin = 2 };

// max of z (or of -z) over a row, NaN ignored (a NaN reaches the row through the sum).  Kept in
// 32 partial maxima: GCC does not vectorize a float max reduction written with std::max.
template <bool Negate, class C> C row_max(const C* __restrict z, i64 n) {
  constexpr int kLanes = 32;
  C part[kLanes];
  for (int l = 0; l < kLanes; ++l) part[l] = -act::m::inf<C>();
  i64 k = 0;
  for (; k + kLanes <= n; k += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const C v = Negate ? -z[k + l] : z[k + l];
      part[l] = v > part[l] ? v : part[l];
    }
  }
  C m = -act::m::inf<C>();
  for (; k < n; ++k) {
    const C v = Negate ? -z[k] : z[k];
    m = v > m ? v : m;
  }
  for (int l = 0; l < kLanes; ++l) m = part[l] > m ? part[l] : m;
  return m;
}

template <int Kind, class D> struct RowwiseRun {
  using C = act::compute_t<D>;
  static constexpr bool kDirect = sizeof(C) == sizeof(D);
  const Job& j;
  i64 n, rows, rows_per_task;
  std::vector<C> bias;
  bool stream;  // non-temporal stores, as in Elementwise

  explicit RowwiseRun(const Job& job)
      : j(job), n(job.channels), rows(job.n / job.channels),
        stream(kDirect && job.n * i64(sizeof(D)) >= kStreamMinBytes && job.out != job.x && job.out != job.dy) {
    const i64 per = std::max<i64>(1, kTaskElems / std::max<i64>(n, 1));
    rows_per_task = job.n < kParallelMinHeavy ? rows : std::max<i64>(per, (rows + kMaxTasks - 1) / kMaxTasks);
    if (job.bias != nullptr) {
      bias.resize(size_t(n));
      for (i64 k = 0; k < n; ++k) bias[size_t(k)] = act::load(static_cast<const D*>(job.bias)[k]);
    }
  }
  int tasks() const { return int((rows + rows_per_task - 1) / rows_per_task); }

  const C* stage(const D* src, C* buf) const {
    if (!bias.empty()) {
      load_block_bias(src, bias.data(), buf, n);
      return buf;
    }
    if constexpr (kDirect) {
      return reinterpret_cast<const C*>(src);
    } else {
      load_block(src, buf, n);
      return buf;
    }
  }

  void forward_row(const C* __restrict z, C* __restrict y) const {
    constexpr bool neg = Kind == kSoftmin;
    const C m = row_max<neg>(z, n);
    C s = 0;
    if (Kind == kLogSoftmax) {
#pragma omp simd reduction(+ : s)
      for (i64 k = 0; k < n; ++k) s += act::m::exp(z[k] - m);
      const C shift = m + act::m::log(s);
#pragma omp simd
      for (i64 k = 0; k < n; ++k) y[k] = z[k] - shift;
      return;
    }
#pragma omp simd reduction(+ : s)
    for (i64 k = 0; k < n; ++k) {
      const C e = act::m::exp((neg ? -z[k] : z[k]) - m);
      y[k] = e;
      s += e;
    }
    const C inv = C(1) / s;
#pragma omp simd
    for (i64 k = 0; k < n; ++k) y[k] *= inv;
  }

  void backward_row(const C* __restrict y, const C* __restrict d, C* __restrict dx) const {
    C s = 0;
    if (Kind == kLogSoftmax) {
#pragma omp simd reduction(+ : s)
      for (i64 k = 0; k < n; ++k) s += d[k];
#pragma omp simd
      for (i64 k = 0; k < n; ++k) dx[k] = d[k] - act::m::exp(y[k]) * s;
      return;
    }
#pragma omp simd reduction(+ : s)
    for (i64 k = 0; k < n; ++k) s += d[k] * y[k];
    const C sign = Kind == kSoftmin ? C(-1) : C(1);
#pragma omp simd
    for (i64 k = 0; k < n; ++k) dx[k] = sign * y[k] * (d[k] - s);
  }

  void tile(int t) {
    const D* x = static_cast<const D*>(j.x);
    const D* dy = static_cast<const D*>(j.dy);
    D* out = static_cast<D*>(j.out);
    const bool need_z = !bias.empty() || !kDirect;
    std::vector<C> zb(need_z ? size_t(n) : 0), yb, gb, rb;
    if (!kDirect || j.backward || stream) yb.resize(size_t(n));
    if (j.backward && !kDirect) gb.resize(size_t(n));
    if (j.backward && (!kDirect || stream)) rb.resize(size_t(n));
    const i64 r0 = t * rows_per_task, r1 = std::min(rows, r0 + rows_per_task);
    for (i64 r = r0; r < r1; ++r) {
      const i64 off = r * n;
      const C* z = stage(x + off, zb.data());
      if (!j.backward) {
        C* y = kDirect && !stream ? reinterpret_cast<C*>(out + off) : yb.data();
        forward_row(z, y);
        if constexpr (!kDirect) {
          store_block(yb.data(), out + off, n);
        } else if (stream) {
          stream_copy(reinterpret_cast<C*>(out + off), yb.data(), n);
        }
        continue;
      }
      // The backward works from y = f(z), recomputed here.
      forward_row(z, yb.data());
      const C* d;
      C* res;
      if constexpr (kDirect) {
        d = reinterpret_cast<const C*>(dy + off);
        res = stream ? rb.data() : reinterpret_cast<C*>(out + off);
      } else {
        load_block(dy + off, gb.data(), n);
        d = gb.data();
        res = rb.data();
      }
      backward_row(yb.data(), d, res);
      if constexpr (!kDirect) {
        store_block(rb.data(), out + off, n);
      } else if (stream) {
        stream_copy(reinterpret_cast<C*>(out + off), rb.data(), n);
      }
    }
    if (stream) stream_fence();
  }
};

template <int Kind, class D> int run_rowwise(const Job& job) {
  if (job.n <= 0 || job.channels <= 0 || job.n % job.channels != 0) return kBadArgs;
  if (job.backward && job.bias != nullptr) return kBadArgs;  // dbias: the NumPy path
  RowwiseRun<Kind, D> e(job);
  return run_tasks(e.tasks(), job.threads, [&](int t) { e.tile(t); });
}

// ---------------------------------------------------------------------------- tables
#define ACT_CPU_ELEMENTWISE(X)                                                                              \
  X(relu, Relu) X(relu6, Relu6) X(leaky_relu, LeakyRelu) X(prelu, Prelu) X(rrelu, Rrelu) X(elu, Elu)       \
  X(selu, Selu) X(celu, Celu) X(gelu, Gelu) X(sigmoid, Sigmoid) X(hard_sigmoid, HardSigmoid)               \
  X(log_sigmoid, LogSigmoid) X(softplus, Softplus) X(softsign, Softsign) X(silu, Silu)                     \
  X(hard_silu, HardSilu) X(mish, Mish) X(tanh, Tanh) X(hard_tanh, HardTanh) X(tanh_shrink, TanhShrink)     \
  X(soft_shrink, SoftShrink) X(hard_shrink, HardShrink) X(threshold, Threshold)                            \
  X(sparse_plus, SparsePlus) X(sparse_sigmoid, SparseSigmoid) X(squareplus, Squareplus)                    \
  X(exponential, Exponential) X(linear, Linear) X(log1mexp, Log1mexp) X(lisht, Lisht) X(snake, Snake)
#define ACT_CPU_GATED(X) X(glu, Glu) X(swiglu, Swiglu) X(geglu, Geglu) X(reglu, Reglu)
#define ACT_CPU_ROWWISE(X) X(softmax, kSoftmax) X(log_softmax, kLogSoftmax) X(softmin, kSoftmin)

#define ACT_CPU_NAME(name, functor) #name,
const char* const kElementwiseNames[] = {ACT_CPU_ELEMENTWISE(ACT_CPU_NAME) nullptr};
const char* const kGatedNames[] = {ACT_CPU_GATED(ACT_CPU_NAME) nullptr};
const char* const kRowwiseNames[] = {ACT_CPU_ROWWISE(ACT_CPU_NAME) nullptr};
#undef ACT_CPU_NAME

template <class F, class D> struct ElementwiseGo {
  static int go(const Job& j) { return run_elementwise<D>(j, ops_of<F, act::compute_t<D>>()); }
};
template <class F, class D> struct GatedGo {
  static int go(const Job& j) { return run_gated<F, D>(j); }
};
template <class K, class D> struct RowwiseGo {
  static int go(const Job& j) { return run_rowwise<K::value, D>(j); }
};

// The library is built from this file as two translation units compiled side by side
// (ACT_CPU_PART 0: float compute, i.e. f32, f16, bf16, plus the C entry points; 1: double), or
// as one (ACT_CPU_PART undefined).
template <template <class, class> class Run, class F> int by_dtype_float(const Job& j) {
  switch (j.dtype) {
    case kF32: return Run<F, float>::go(j);
    case kF16: return Run<F, __half>::go(j);
    case kBF16: return Run<F, __nv_bfloat16>::go(j);
    default: return kBadDtype;
  }
}
template <template <class, class> class Run, class F> int by_dtype_double(const Job& j) {
  return j.dtype == kF64 ? Run<F, double>::go(j) : int(kBadDtype);
}

int elementwise_float(const Job& j);
int elementwise_double(const Job& j);
int gated_float(const Job& j);
int gated_double(const Job& j);
int rowwise_float(const Job& j);
int rowwise_double(const Job& j);

#define ACT_CPU_DISPATCH(FN, LIST, GO, BY)                 \
  int FN(const Job& j) {                                   \
    int i = 0;                                             \
    LIST(ACT_CPU_CASE_##GO)                                \
    return int(kUnknownOp);                                \
  }
#define ACT_CPU_CASE_E(name, functor) \
  if (j.op == i) return BY<ElementwiseGo, act::fn::functor>(j); \
  ++i;
#define ACT_CPU_CASE_G(name, functor) \
  if (j.op == i) return BY<GatedGo, act::fn::functor>(j); \
  ++i;
#define ACT_CPU_CASE_R(name, kind) \
  if (j.op == i) return BY<RowwiseGo, std::integral_constant<int, kind>>(j); \
  ++i;

#if !defined(ACT_CPU_PART) || ACT_CPU_PART == 0
#define BY by_dtype_float
ACT_CPU_DISPATCH(elementwise_float, ACT_CPU_ELEMENTWISE, E, BY)
ACT_CPU_DISPATCH(gated_float, ACT_CPU_GATED, G, BY)
ACT_CPU_DISPATCH(rowwise_float, ACT_CPU_ROWWISE, R, BY)
#undef BY
#endif
#if !defined(ACT_CPU_PART) || ACT_CPU_PART == 1
#define BY by_dtype_double
ACT_CPU_DISPATCH(elementwise_double, ACT_CPU_ELEMENTWISE, E, BY)
ACT_CPU_DISPATCH(gated_double, ACT_CPU_GATED, G, BY)
ACT_CPU_DISPATCH(rowwise_double, ACT_CPU_ROWWISE, R, BY)
#undef BY
#endif

template <class Fn> int guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return kNoMemory;
  } catch (...) {
    return kBadArgs;
  }
}

}  // namespace cpu

#if !defined(ACT_CPU_PART) || ACT_CPU_PART == 0
// The library is built with -fvisibility=hidden: only these names are exported.
#define ACT_CPU_EXPORT __attribute__((visibility("default")))
extern "C" {

// Bumped whenever Job or an entry point changes; _native_cpu.py checks it.
ACT_CPU_EXPORT int act_cpu_abi(void) { return 1; }

// Name of the i-th op of a kind (0 elementwise, 1 gated, 2 rowwise), or null past the end.
ACT_CPU_EXPORT const char* act_cpu_op_name(int kind, int i) {
  const char* const* names = kind == 0 ? cpu::kElementwiseNames : kind == 1 ? cpu::kGatedNames : cpu::kRowwiseNames;
  for (int k = 0; k <= i; ++k)
    if (names[k] == nullptr) return nullptr;
  return names[i];
}

// Number of inputs where the CPU's overrides of common.cuh functions (prelude.h) differ from
// the originals: must be 0.
ACT_CPU_EXPORT int act_cpu_check(void) {
  const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 0.5f, -0.5f, 15.0f, -15.0f, 88.7f, -88.7f, 104.0f,
                           -104.0f, 1e30f, -1e30f, __int_as_float(0x7f800000), __int_as_float(int(0xff800000u)),
                           __int_as_float(0x7fc00000)};
  int bad = 0;
  auto same = [](double a, double b) { return a == b || (a != a && b != b); };
  for (float v : special) {
    bad += !same(act::m::sigmoid(v), act::m::sigmoid<float>(v));
    bad += !same(act::m::sigmoid(double(v)), act::m::sigmoid<double>(double(v)));
  }
  for (int k = -4000; k <= 4000; ++k) {
    const float v = float(k) * 0.0137f;
    bad += !same(act::m::sigmoid(v), act::m::sigmoid<float>(v));
    bad += !same(act::m::sigmoid(double(v) * 3.1), act::m::sigmoid<double>(double(v) * 3.1));
  }
  return bad;
}

// Which vector instruction set the loops were compiled for.
ACT_CPU_EXPORT const char* act_cpu_isa(void) {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__)
  return "avx2";
#elif defined(__SSE2__)
  return "sse2";
#else
  return "scalar";
#endif
}

ACT_CPU_EXPORT int act_cpu_elementwise(const cpu::Job* job) {
  return cpu::guarded([&] {
    return job->dtype == cpu::kF64 ? cpu::elementwise_double(*job) : cpu::elementwise_float(*job);
  });
}

ACT_CPU_EXPORT int act_cpu_gated(const cpu::Job* job) {
  return cpu::guarded([&] { return job->dtype == cpu::kF64 ? cpu::gated_double(*job) : cpu::gated_float(*job); });
}

ACT_CPU_EXPORT int act_cpu_rowwise(const cpu::Job* job) {
  return cpu::guarded([&] { return job->dtype == cpu::kF64 ? cpu::rowwise_double(*job) : cpu::rowwise_float(*job); });
}

}  // extern "C"
#endif
