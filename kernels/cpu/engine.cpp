// The compiled CPU engine: a CPython extension module, built by the package's build (setup.py)
// three times from this one file, for AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and baseline
// x86-64; activations/backends/cpu/engine.py imports the best one this CPU runs.
//
// The math is the GPU's: every activation is the device functor of kernels/functors.cuh,
// compiled here as plain C++ through prelude.h, with the package's own vector math (vmath.h)
// in place of libm.  This file adds what a CPU needs:
//
// * loops the compiler vectorizes (`#pragma omp simd`): the functors and the math inline and
//   their branches become selects;
// * staging: inputs that need work before the functor (16-bit loads, bias, prelu weight, masks,
//   rows along an inner axis) are converted block by block into small compute-precision buffers;
// * tiles spread over a small persistent thread pool.  Reductions (row sums, dbias, dweight) run
//   in float64 with a fixed number of partial sums in a fixed order: results depend neither on the
//   thread count nor on the vector width, so the AVX-512 and AVX2 builds agree bit for bit;
// * every buffer a call needs is allocated before its first write, so running out of memory
//   leaves the output as it was.
//
// One entry point, run(), takes the validated arrays of a call (see engine.py).

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "prelude.h"
#include "functors.cuh"
#include "fp8.cuh"

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
// The sigmoid as an activation's result: float rounded once (vmath.h); double: common.cuh's.
inline __attribute__((always_inline)) float sigmoid_final(float x) { return ::act::vm::sigmoid(x); }
}  // namespace m
}  // namespace act

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <new>
#include <type_traits>
#include <thread>
#include <vector>

#include <pthread.h>
#include <immintrin.h>
#include <memory>

#ifndef ACT_ENGINE_MODULE
#error "build with -DACT_ENGINE_MODULE=_engine_<isa> -DACT_ENGINE_ISA=\"<isa>\" (setup.py does)"
#endif

namespace cpu {

using act::i64;
using act::u64;

// Elements staged per block: a handful of float buffers of this size stay in a 32 KiB L1.
constexpr i64 kBlock = 2048;

// Per-call working memory left uninitialized (new T[n], not a vector's zeroing resize): every
// element is written before it is read, and zeroing 32-64 KiB a slot cost more than a whole
// call on a small array.
template <class T> class Buffer {
 public:
  void resize(size_t n) {
    data_.reset(new T[n]);
    size_ = n;
  }
  size_t size() const { return size_; }
  T* data() const { return data_.get(); }
  T& operator[](size_t i) const { return data_[i]; }

 private:
  std::unique_ptr<T[]> data_;
  size_t size_ = 0;
};
// Below this many elements one thread beats waking the pool (a few tens of microseconds on a
// VM): activations with a transcendental function are worth splitting sooner than the others.
constexpr i64 kParallelMinCheap = i64(1) << 17;
constexpr i64 kParallelMinHeavy = i64(1) << 15;
// Elements per task when work is split: small enough to balance two busy cores, large enough
// that the per-task overhead (a few microseconds) does not show.
constexpr i64 kTaskElems = i64(1) << 17;
constexpr i64 kMaxTasks = 256;
// float64 partial sums (dbias, dweight) kept at once, over all tasks.
constexpr i64 kAccBudget = i64(1) << 21;
// Elements of a panel of rows gathered along an inner axis (row-wise ops over a non-last axis).
constexpr i64 kPanelElems = i64(1) << 16;
// Partial sums of a reduction: a constant, so that the summation order is the same whatever the
// vector width (16 doubles are two AVX-512 or four AVX2 registers).
constexpr int kLanes = 16;

enum Status : int { kOk = 0, kUnknownOp = 1, kBadDtype = 2, kBadArgs = 3, kNoMemory = 4 };
enum Dtype : int { kF16 = 0, kBF16 = 1, kF32 = 2, kF64 = 3 };
enum KindCode : int { kElementwise = 0, kGated = 1, kRowwise = 2 };

// ---------------------------------------------------------------------------- thread pool
inline void cpu_relax() { _mm_pause(); }

// How long a pool thread spins before it blocks: back-to-back calls are common and a futex wake
// costs tens of microseconds on a VM, while a spinning thread takes a core from everyone else.
// (A timed spin of 250 us that yields every 64 pauses measured slower on a quiet 2-core VM than
// this fixed count, about 0.8 ms on a Zen 4: a yield hands the core to other pools' spinners.)
constexpr int kSpin = 1 << 14;

// Spins until ready() or kSpin pauses have passed; true when ready.
template <class Ready> inline bool spin_until(Ready&& ready) {
  for (int s = 0; s < kSpin; ++s) {
    if (ready()) return true;
    cpu_relax();
  }
  return ready();
}

using TaskFn = std::function<void(int task, int slot)>;

// Workers wait for a new generation, spin a little first (back-to-back calls are common and a
// futex wake costs tens of microseconds on a VM), then block.  Tasks are claimed from a ticket
// that carries the generation, and the caller returns as soon as every task is done: a worker
// that wakes late finds nothing left and costs the caller nothing, and it can never run a task of
// a later generation with the arguments of an earlier one.  Each participant has a slot (the
// caller 0, worker k k + 1) that indexes the scratch buffers the call allocated beforehand.  One
// parallel region runs at a time; a second caller (another Python thread: the GIL is released)
// runs its tasks itself.
class Pool {
 public:
  explicit Pool(int size) {
    // A thread that cannot be started just leaves a smaller pool.
    for (int id = 0; id < size; ++id) {
      try {
        std::thread t([this, id] { worker(id); });
        t.detach();
        ++size_;
      } catch (...) {
        break;
      }
    }
  }
  int size() const { return size_; }
  std::mutex& region() { return region_; }

  // Runs fn(task, slot) for task 0..ntasks-1 on the caller and up to `helpers` workers; returns
  // when all are done.
  void run(int ntasks, int helpers, const TaskFn& fn) {
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
    drain(g, &fn, ntasks, 0);
    if (!spin_until([&] { return done_.load(std::memory_order_acquire) == ntasks; })) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_done_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == ntasks; });
    }
  }

 private:
  void drain(u64 g, const TaskFn* job, int ntasks, int slot) {
    const u64 tag = (g & 0xffffffffu) << 32;
    for (;;) {
      u64 t = ticket_.load(std::memory_order_acquire);
      if ((t & ~u64(0xffffffffu)) != tag || int(t & 0xffffffffu) >= ntasks) return;
      if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) continue;
      (*job)(int(t & 0xffffffffu), slot);
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == ntasks) {
        std::lock_guard<std::mutex> lk(mu_);
        cv_done_.notify_one();
      }
    }
  }

  void worker(int id) {
    u64 seen = 0;
    for (;;) {
      spin_until([&] { return gen_.load(std::memory_order_acquire) != seen; });
      const TaskFn* job;
      int ntasks, participants;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_work_.wait(lk, [&] { return gen_.load(std::memory_order_acquire) != seen; });
        seen = gen_.load(std::memory_order_acquire);
        job = job_;  // read with `seen`, under the lock: one consistent job
        ntasks = ntasks_;
        participants = participants_;
      }
      if (id < participants) drain(seen, job, ntasks, id + 1);
    }
  }

  int size_ = 0;
  std::mutex region_, mu_;
  std::condition_variable cv_work_, cv_done_;
  const TaskFn* job_ = nullptr;
  int ntasks_ = 0, participants_ = 0;
  std::atomic<int> done_{0};
  std::atomic<u64> ticket_{0}, gen_{0};
};

// Pools are never destroyed: their threads block forever and die with the process (joining them
// from a static destructor would hang or abort at exit).  A forked child has none of the parent's
// threads: the fork handlers below hand it a fresh start (and g_pool_mu unlocked).
std::mutex g_pool_mu;
Pool* g_pool = nullptr;

void atfork_prepare() { g_pool_mu.lock(); }
void atfork_parent() { g_pool_mu.unlock(); }
void atfork_child() {
  g_pool = nullptr;  // the parent's pool object is left behind: its threads do not exist here
  g_pool_mu.unlock();
}

void parallel_for(int ntasks, int slots, const TaskFn& fn) {
  int helpers = std::min(slots, ntasks) - 1;
  if (helpers <= 0) {
    for (int t = 0; t < ntasks; ++t) fn(t, 0);
    return;
  }
  Pool* pool;
  {
    std::lock_guard<std::mutex> lk(g_pool_mu);
    if (g_pool == nullptr || g_pool->size() < helpers) {
      // A larger pool replaces a smaller one; the old one's idle threads just stay asleep.
      g_pool = new Pool(std::max(helpers, g_pool != nullptr ? g_pool->size() : 0));
    }
    pool = g_pool;
  }
  helpers = std::min(helpers, pool->size());
  std::unique_lock<std::mutex> region(pool->region(), std::try_to_lock);
  if (!region.owns_lock() || helpers <= 0) {
    for (int t = 0; t < ntasks; ++t) fn(t, 0);
    return;
  }
  pool->run(ntasks, helpers, fn);
}

// Tasks allocate nothing (the caller did, beforehand), so they only fail on a bug; an exception
// must not leave a pool thread, so it becomes a status.
int run_tasks(int ntasks, int slots, const std::function<void(int, int)>& fn) {
  std::atomic<int> err{0};
  const TaskFn safe = [&](int t, int slot) {
    if (err.load(std::memory_order_relaxed) != 0) return;
    try {
      fn(t, slot);
    } catch (...) {
      err.store(kBadArgs);
    }
  };
  parallel_for(ntasks, slots, safe);
  return err.load();
}

// ---------------------------------------------------------------------------- the job
struct Job {
  const void* x;
  const void* dy;      // backward only
  void* out;           // y (forward) or dx (backward), C-contiguous, x's dtype
  const void* bias;    // x's dtype, `channels` long, or null
  const void* weight;  // prelu: x's dtype, weight_len long, or null (the float weight is p0)
  const bool* mask;    // row-wise: x's layout, or null
  double* dbias;       // backward with bias: `channels` float64 sums (output)
  double* dweight;     // prelu backward: weight_len (or 1) float64 sums (output)
  i64 n;               // elements of x
  i64 outer, mid, inner;  // gated: x as (outer, 2 * mid); row-wise: (outer, mid, inner), rows along mid
  i64 channels;        // length of x's last axis: the period of bias and weight
  i64 weight_len;
  double p0, p1, p2;
  u64 seed;
  int op, dtype, slots, backward;
  // FP8 output (forward of elementwise and gated ops; q == nullptr otherwise): the codes, the
  // amax segments (float32 bits, zeroed) and fp8::Sink's parameters
  unsigned char* q;
  unsigned* amax;
  double scale;
  u64 noise_seed;
  i64 amax_cols, amax_groups;
  int format, amax_mode, stochastic;
};

// ---------------------------------------------------------------------------- FP8 output
inline void atomic_max(unsigned* p, unsigned v) {
  unsigned cur = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

// A block of compute-precision results r (flat output indices i0...) written as FP8 codes, and
// folded into the amax of each segment they touch: one atomic per segment and block, so the
// threads of a call share the amax array without a second pass.
template <class C> void fp8_block(const Job& j, const C* __restrict r, i64 i0, i64 len) {
  const act::fp8::Sink s{j.q, j.amax, j.amax_cols, j.amax_groups, j.scale, j.noise_seed, j.format, j.amax_mode,
                         j.stochastic};
  unsigned char* __restrict q = j.q + i0;
  for (i64 k = 0; k < len; ++k) q[k] = s.code(double(r[k]), i0 + k);
  i64 k = 0;
  while (k < len) {
    const i64 i = i0 + k;
    i64 end = len;
    if (s.mode != 0) {
      const i64 col = i % s.cols;
      const i64 left = s.mode == 1 ? s.cols - col : std::min(act::fp8::kGroup - col % act::fp8::kGroup, s.cols - col);
      end = std::min(len, k + left);
    }
    unsigned m = 0;
#pragma omp simd reduction(max : m)
    for (i64 t = k; t < end; ++t) {
      const unsigned b = act::fp8::abs_bits(r[t]);
      m = b > m ? b : m;
    }
    if (m != 0) atomic_max(j.amax + s.segment(i), m);
    k = end;
  }
}

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
#if defined(__F16C__)
// float16 with the F16C instructions (the AVX2 and AVX-512 builds): GCC does not vectorize the
// shim's integer conversions as well, nor _Float16's.  The same values: both round to nearest
// even, subnormals included; a NaN is stored as the shim's quiet NaN of its sign (0x7e00).
template <> inline void load_block(const __half* __restrict src, float* __restrict dst, i64 len) {
  i64 k = 0;
  for (; k + 8 <= len; k += 8)
    _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k))));
  for (; k < len; ++k) dst[k] = act::load(src[k]);
}
template <> inline void store_block(const float* __restrict src, __half* __restrict dst, i64 len) {
  const __m256 quiet = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000));
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000u)));
  i64 k = 0;
  for (; k + 8 <= len; k += 8) {
    __m256 v = _mm256_loadu_ps(src + k);
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    v = _mm256_blendv_ps(v, _mm256_or_ps(_mm256_and_ps(v, sign), quiet), nan);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + k), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; k < len; ++k) dst[k] = act::store<__half>(src[k]);
}
#endif
// A run of pairs (x[2q], x[2q + 1]) split into a and b (bias: the extended bias from the run's
// phase, or null), and joined back.
template <class D, class C>
inline void load_pairs(const D* __restrict src, const C* __restrict bias, C* __restrict a, C* __restrict b, i64 len) {
  if (bias == nullptr) {
#pragma omp simd
    for (i64 k = 0; k < len; ++k) {
      a[k] = act::load(src[2 * k]);
      b[k] = act::load(src[2 * k + 1]);
    }
    return;
  }
#pragma omp simd
  for (i64 k = 0; k < len; ++k) {
    a[k] = act::load(src[2 * k]) + bias[2 * k];
    b[k] = act::load(src[2 * k + 1]) + bias[2 * k + 1];
  }
}
template <class D, class C>
inline void store_pairs(const C* __restrict a, const C* __restrict b, D* __restrict dst, i64 len) {
#pragma omp simd
  for (i64 k = 0; k < len; ++k) {
    dst[2 * k] = act::store<D>(a[k]);
    dst[2 * k + 1] = act::store<D>(b[k]);
  }
}

// fn(k) for each k < len with flag[k] set (flags are 0 or 1), eight flags per test: the flagged
// elements are rare, and a plain loop that skips the others would be vectorized with masks.
template <class Fn> inline void for_each_flagged(const unsigned char* flag, i64 len, Fn&& fn) {
  for (i64 k0 = 0; k0 < len; k0 += 8) {
    uint64_t word = 0;
    memcpy(&word, flag + k0, size_t(std::min<i64>(8, len - k0)));
    for (; word != 0; word &= word - 1) fn(k0 + __builtin_ctzll(word) / 8);
  }
}

// Sum of a[0..n) in float64, kLanes partial sums in a fixed order.
template <class A> double sum_fixed(const A* __restrict a, i64 n) {
  double part[kLanes] = {};
  i64 k = 0;
  for (; k + kLanes <= n; k += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) part[l] += double(a[k + l]);
  }
  for (int l = 0; k < n; ++k, ++l) part[l] += double(a[k]);
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) part[l] += part[l + w];
  return part[0];
}

// Sum of a[k] * b[k] in float64 (products of floats are exact in float64).
template <class A> double dot_fixed(const A* __restrict a, const A* __restrict b, i64 n) {
  double part[kLanes] = {};
  i64 k = 0;
  for (; k + kLanes <= n; k += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) part[l] += double(a[k + l]) * double(b[k + l]);
  }
  for (int l = 0; k < n; ++k, ++l) part[l] += double(a[k]) * double(b[k]);
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) part[l] += part[l + w];
  return part[0];
}

// Outputs this large are written with non-temporal stores: they are far bigger than the caches,
// and streaming skips reading each destination line before overwriting it (a third of the
// memory traffic of a plain store loop).  (A rule by the call's total bytes against the L3 size
// measured slower for relu, hard_tanh and the cheap backward loops on a quiet Zen 4, 2^22 floats.)
constexpr i64 kStreamMinBytes = i64(16) << 20;
inline bool worth_streaming(i64 out_bytes) { return out_bytes >= kStreamMinBytes; }

template <class C> inline void stream_copy(C* __restrict dst, const C* __restrict src, i64 len) {
  char* d = reinterpret_cast<char*>(dst);
  const char* s = reinterpret_cast<const char*>(src);
  i64 bytes = len * i64(sizeof(C));
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
  memcpy(d, s, size_t(bytes));
}

// Makes a tile's streaming stores visible before the tile counts as done.
inline void stream_fence() { _mm_sfence(); }

// A (rows x width) grid of elements; the last row may be shorter (`last`).  Tiles are
// (row range x column range).  The plan depends on the sizes only, never on the thread count,
// so that reductions fold the same partial sums in the same order.
struct Grid {
  i64 rows, width, last;
  i64 col_chunk, col_chunks, row_chunk, row_chunks;

  i64 row_len(i64 r) const { return r == rows - 1 ? last : width; }
  int tasks() const { return int(col_chunks * row_chunks); }
};

// max_row_chunks / max_tasks bound the per-row-chunk or per-tile partial sums a call keeps.
inline Grid plan(i64 n, i64 width, bool heavy, i64 max_row_chunks = kMaxTasks, i64 max_tasks = kMaxTasks) {
  Grid g;
  g.width = std::max<i64>(width, 1);
  g.rows = (n + g.width - 1) / g.width;
  g.last = n - (g.rows - 1) * g.width;
  i64 want = n < (heavy ? kParallelMinHeavy : kParallelMinCheap)
                 ? 1
                 : std::min<i64>(kMaxTasks, std::max<i64>(2, (n + kTaskElems - 1) / kTaskElems));
  want = std::max<i64>(1, std::min(want, max_tasks));
  // Split columns only when rows are too few to make the tasks.
  g.col_chunks = std::max<i64>(1, std::min<i64>(want / std::max<i64>(g.rows, 1), g.width / kBlock));
  g.col_chunk = (g.width + g.col_chunks - 1) / g.col_chunks;
  g.col_chunk = (g.col_chunk + 63) / 64 * 64;
  g.col_chunks = (g.width + g.col_chunk - 1) / g.col_chunk;
  i64 rr = std::max<i64>(1, (want + g.col_chunks - 1) / g.col_chunks);
  rr = std::min(rr, std::max<i64>(1, max_row_chunks));
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

// Like for_blocks, but one call per row of the tile.
template <class Block> void for_rows(const Grid& g, int t, Block&& block) {
  const i64 rc = t / g.col_chunks, cc = t % g.col_chunks;
  const i64 r0 = rc * g.row_chunk, r1 = std::min(g.rows, r0 + g.row_chunk);
  const i64 c0 = cc * g.col_chunk;
  for (i64 r = r0; r < r1; ++r) {
    const i64 c1 = std::min(c0 + g.col_chunk, g.row_len(r));
    if (c1 > c0) block(r, c0, c1 - c0);
  }
}

// `period` values of src (storage type D) repeated to `len` values of compute type C.
template <class D, class C> std::vector<C> repeat_pattern(const void* src, i64 period, i64 len) {
  std::vector<C> p(static_cast<size_t>(len));
  const D* s = static_cast<const D*>(src);
  for (i64 k = 0; k < len; ++k) p[size_t(k)] = act::load(s[k % period]);
  return p;
}

// ---------------------------------------------------------------------------- elementwise
// Sets the choice parameter of c to the constant V (no-op for V < 0).  A macro, not a function:
// `c` must stay a plain local that is never passed by address, or the omp simd loops that copy
// it would keep it in memory and not vectorize.
#define ACT_CPU_FIX_CHOICE(F, V, c)                              \
  do {                                                           \
    if constexpr ((V) >= 0 && F::choice == 0) (c).p0 = C(V);     \
    if constexpr ((V) >= 0 && F::choice == 1) (c).p1 = C(V);     \
    if constexpr ((V) >= 0 && F::choice == 2) (c).p2 = C(V);     \
  } while (0)

// The choice parameter's value when F has one and it is 0 or 1, else -1.
template <class F, class C> inline int choice_of(const act::Ctx<C>& c) {
  if constexpr (F::choice < 0) {
    return -1;
  } else {
    const C v = F::choice == 0 ? c.p0 : F::choice == 1 ? c.p1 : c.p2;
    return v == C(0) ? 0 : v == C(1) ? 1 : -1;
  }
}

// The functor loops.  They depend on the functor and the compute type only, so f16, bf16 and
// f32 share the float ones (kept out of line: one copy each, whoever stages the inputs).
// z may be x itself and r may be x or dy: every element is read before it is written.
template <class F, class C> struct Core {
  static void fwd(const C* z, C* y, i64 len, const act::Ctx<C>& ctx, i64 i0, const C* w) {
    if constexpr (F::choice < 0) return fwd_loop<-1>(z, y, len, ctx, i0, w);
    switch (choice_of<F>(ctx)) {
      case 0: return fwd_loop<0>(z, y, len, ctx, i0, w);
      case 1: return fwd_loop<1>(z, y, len, ctx, i0, w);
      default: return fwd_loop<-1>(z, y, len, ctx, i0, w);
    }
  }

  // r = dy * f'(z); with SB adds r to sb, with SW the dweight terms to sw, with WS stores them in
  // wt; W: per-element weights w.
  template <int W, int SB, int SW, int WS>
  static void bwd(const C* z, const C* d, C* r, i64 len, const act::Ctx<C>& ctx, i64 i0, const C* w, double* sb,
                  double* sw, C* wt) {
    if constexpr (F::periodic) {
      // dx first, then the exact redo of huge arguments, then the dbias sums
      static_assert(F::choice < 0 && !F::weighted && !F::from_y, "periodic functors are plain");
      bwd_loop<-1, 0, 0, 0, 0>(z, d, r, len, ctx, i0, w, sb, sw, wt);
      redo_exact(z, r, len, [&](i64 k) { return double(d[k]) * F::bwd(double(z[k]), widen(ctx, i0 + k)); });
      if constexpr (SB) {
#pragma omp simd
        for (i64 k = 0; k < len; ++k) sb[k] += double(r[k]);
      }
      return;
    }
    if constexpr (F::choice < 0) return bwd_loop<-1, W, SB, SW, WS>(z, d, r, len, ctx, i0, w, sb, sw, wt);
    switch (choice_of<F>(ctx)) {
      case 0: return bwd_loop<0, W, SB, SW, WS>(z, d, r, len, ctx, i0, w, sb, sw, wt);
      case 1: return bwd_loop<1, W, SB, SW, WS>(z, d, r, len, ctx, i0, w, sb, sw, wt);
      default: return bwd_loop<-1, W, SB, SW, WS>(z, d, r, len, ctx, i0, w, sb, sw, wt);
    }
  }

  // 16-bit storage D: the results near a rounding boundary of D (functors.cuh's near_tie, the
  // GPU's test: about 0.6% of float16 and 0.1% of bfloat16 results) are computed again in double
  // and rounded once (to float with round-to-odd, then to D), so that every stored result is the
  // correctly rounded one: the float result, a few ulps off, could round to the other neighbour.
  // In the backward of a heavy functor, dy f'(z) below |dy| FLT_MIN is redone too (functors.cuh's
  // scaled_tiny): f'(z) was subnormal or zero in float, a few significant bits at most, which a
  // large bfloat16 dy would scale up.
  // The flags come from a vector loop; the redo visits the flagged elements only (a loop over
  // the block that skips the others is vectorized with masks: f in double for every element).
  // d: dy for the backward (r = dy f'(z)), else null.
  template <class D> static void round_once(const C* z, const C* d, C* r, i64 len, const act::Ctx<C>& ctx, i64 i0) {
    if constexpr (std::is_same_v<C, float> && !F::weighted && F::redo_in_double) {
      const int backward = int(d != nullptr);
      const C* g = d != nullptr ? d : z;  // dy (read only in the backward)
      alignas(64) unsigned char near[kBlock];
      int any = 0;
#pragma omp simd reduction(| : any)
      for (i64 k = 0; k < len; ++k) {
        const float v = r[k];
        const int small = (int(act::scaled_tiny<F, D>(v, act::m::abs(g[k]))) | int(F::bwd_cancels(z[k], ctx))) & backward;
        const int n = (int(act::near_tie<D>(v)) | small) & int(z[k] == z[k]);
        near[k] = (unsigned char)n;
        any |= n;
      }
      if (!any) return;
      alignas(64) int32_t at[kBlock];
      int m = 0;
      for_each_flagged(near, len, [&](i64 k) { at[m++] = int32_t(k); });
      redo(z, d, r, at, m, ctx, i0);
    }
  }
  // r[at[q]] = f(z) or dy f'(z) in double, rounded once, for the m flagged elements: gathered so
  // that the double evaluation runs as a vector loop over them alone.
  __attribute__((noinline, flatten)) static void redo(const C* __restrict z, const C* __restrict d, C* __restrict r,
                                                      const int32_t* __restrict at, int m, const act::Ctx<C>& ctx,
                                                      i64 i0) {
    alignas(64) C zc[kBlock], dc[kBlock], rc[kBlock];
    for (int q = 0; q < m; ++q) {
      zc[q] = z[at[q]];
      dc[q] = d != nullptr ? d[at[q]] : C(0);
    }
    if (d == nullptr) {
#pragma omp simd
      for (int q = 0; q < m; ++q) rc[q] = act::to_float_odd(F::fwd(double(zc[q]), widen(ctx, i0 + at[q])));
    } else {
#pragma omp simd
      for (int q = 0; q < m; ++q) {
        const act::Ctx<double> c = widen(ctx, i0 + at[q]);
        const double v = F::from_y ? F::fwd(double(zc[q]), c) : double(zc[q]);  // what bwd takes
        rc[q] = act::to_float_odd(double(dc[q]) * F::bwd(v, c));
      }
    }
    for (int q = 0; q < m; ++q) r[at[q]] = rc[q];
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
      // the NaN test costs as much as a piecewise-linear functor: skipped where fwd passes NaN on
      y[k] = F::nan_through ? F::fwd(v, c) : (v != v ? v : F::fwd(v, c));
    }
    if constexpr (F::periodic) redo_exact(z, y, len, [&](i64 k) { return F::fwd(double(z[k]), widen(base, i0 + k)); });
  }

  // Elements whose result is NaN although their input is not: a float sin/cos argument beyond
  // the fast reduction's range (prelude.h), or a NaN of the function itself; evaluated again in
  // double, whose sin and cos reduce exactly (rare: arguments above 2^16).
  template <class Eval> static void redo_exact(const C* z, C* r, i64 len, Eval&& eval) {
    if constexpr (std::is_same_v<C, float>) {
      int any = 0;
#pragma omp simd reduction(| : any)
      for (i64 k = 0; k < len; ++k) any |= int(r[k] != r[k] && z[k] == z[k]);
      if (!any) return;
      for (i64 k = 0; k < len; ++k)
        if (r[k] != r[k] && z[k] == z[k]) r[k] = C(eval(k));
    }
  }
  // The context in double, for redo_exact.
  static act::Ctx<double> widen(const act::Ctx<C>& c, i64 i) {
    return {double(c.p0), double(c.p1), double(c.p2), double(c.w), c.seed, i};
  }

  template <int V, int W, int SB, int SW, int WS>
  __attribute__((noinline, flatten)) static void bwd_loop(const C* __restrict z, const C* __restrict d,
                                                             C* __restrict r, i64 len, const act::Ctx<C>& ctx, i64 i0,
                                                             const C* __restrict w, double* __restrict sb,
                                                             double* __restrict sw, C* __restrict wt) {
    act::Ctx<C> base = ctx;
    ACT_CPU_FIX_CHOICE(F, V, base);
#pragma omp simd
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
        if constexpr (WS) wt[k] = term;
      }
      if constexpr (SB) sb[k] += double(res);
      r[k] = res;
    }
  }
};

// One activation's loops for compute type C: the driver below is compiled once per dtype and
// calls these through pointers (one indirect call per block).
template <class C> struct Ops {
  using Fwd = void (*)(const C*, C*, i64, const act::Ctx<C>&, i64, const C*);
  using Bwd = void (*)(const C*, const C*, C*, i64, const act::Ctx<C>&, i64, const C*, double*, double*, C*);
  using Round = void (*)(const C*, const C*, C*, i64, const act::Ctx<C>&, i64);
  Fwd fwd;
  Bwd bwd[2][2][2][2];  // [W][SB][SW][WS], see Core::bwd
  Round round_half, round_bf16;  // Core::round_once for float16 / bfloat16 storage
  bool weighted;
  bool heavy;
  bool identity;
};

template <class F, class C> const Ops<C>& ops_of() {
  static const Ops<C> ops = [] {
    using K = Core<F, C>;
    Ops<C> o{};
    o.weighted = F::weighted;
    o.heavy = F::heavy;
    o.identity = F::identity;
    o.fwd = &K::fwd;
    if constexpr (std::is_same_v<C, float>) {
      o.round_half = &K::template round_once<__half>;
      o.round_bf16 = &K::template round_once<__nv_bfloat16>;
    }
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

template <class C> struct Scratch {
  // z: x (+ bias) in compute precision; g: dy; r: results; t: dweight terms
  alignas(64) C z[kBlock];
  alignas(64) C g[kBlock];
  alignas(64) C r[kBlock];
  alignas(64) C t[kBlock];
};

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
  Buffer<Scratch<C>> scratch;          // one per slot
  bool stream = false;                 // non-temporal stores (see worth_streaming)
  bool copy = false;                   // an identity forward without bias: x's bytes copied

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
    g = plan(j.n, width, ops.heavy || j.backward, column_sums ? kAccBudget / width : kMaxTasks);
    if (pattern) {
      if (j.bias != nullptr) bias_pat = repeat_pattern<D, C>(j.bias, j.channels, g.width);
      if (per_column_w) weight_pat = repeat_pattern<D, C>(j.weight, j.channels, g.width);
      bias = bias_pat.empty() ? nullptr : bias_pat.data();
      weight = weight_pat.empty() ? nullptr : weight_pat.data();
    }
    // In place (out = x, or dx = dy) the lines are in the cache already: plain stores.  A forward
    // with a transcendental function is compute-bound on one core: the extra copy through L1
    // costs more than the saved reads (measured), so it streams only in the backward.
    stream = kDirect && worth_streaming(j.n * i64(sizeof(D))) && j.out != j.x && j.out != j.dy &&
             (!ops.heavy || j.backward) && j.q == nullptr;
    // linear: x's bytes, without the conversions to the compute type and back (the same values;
    // a 16-bit NaN keeps its payload bits)
    copy = ops.identity && !j.backward && j.bias == nullptr && j.q == nullptr;
    if (copy) stream = worth_streaming(j.n * i64(sizeof(D))) && j.out != j.x;
    if (j.backward) {
      if (j.bias != nullptr) sums_b.assign(size_t(g.row_chunks * g.width), 0.0);
      if (per_column_w) sums_w.assign(size_t(g.row_chunks * g.width), 0.0);
      if (ops.weighted && !per_column_w) sums_ws.assign(size_t(g.tasks()), 0.0);
    }
    scratch.resize(size_t(std::min(j.slots, g.tasks())));
    return kOk;
  }
  int slots() const { return int(scratch.size()); }
  int tasks() const { return g.tasks(); }
  bool backward() const { return j.backward != 0; }

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
    if (copy) {
      if (out != x) stream ? stream_copy(out + i0, x + i0, len) : void(memcpy(out + i0, x + i0, size_t(len) * sizeof(D)));
      return;
    }
    const C* z = input(x + i0, c, len, s);
    if (j.q != nullptr) {  // FP8: f in the compute precision, then codes and amax
      ops.fwd(z, s.r, len, ctx, i0, weight != nullptr ? weight + c : nullptr);
      return fp8_block(j, s.r, i0, len);
    }
    C* y = kDirect && !stream ? reinterpret_cast<C*>(out + i0) : s.r;
    ops.fwd(z, y, len, ctx, i0, weight != nullptr ? weight + c : nullptr);
    if constexpr (!kDirect) {
      round_16bit(z, nullptr, s.r, len, i0);
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
    ops.bwd[w != nullptr][sb != nullptr][sw != nullptr][ws](z, d, r, len, ctx, i0, w, sb, sw, s.t);
    if (ws) sws += sum_fixed(s.t, len);
    if constexpr (!kDirect) {
      round_16bit(z, d, s.r, len, i0);
      store_block(s.r, out + i0, len);
    } else if (stream) {
      stream_copy(reinterpret_cast<C*>(out + i0), s.r, len);
    }
  }

  void round_16bit(const C* z, const C* d, C* r, i64 len, i64 i0) const {
    if constexpr (std::is_same_v<D, __half>) ops.round_half(z, d, r, len, ctx, i0);
    if constexpr (std::is_same_v<D, __nv_bfloat16>) ops.round_bf16(z, d, r, len, ctx, i0);
  }

  void tile(int t, int slot) {
    const bool staged = !kDirect || bias != nullptr || stream;
    Scratch<C>& sc = scratch[size_t(slot)];
    if (!j.backward) {
      if (copy || (!staged && weight == nullptr && j.q == nullptr)) {
        // Nothing to stage: one loop over each run of the tile.
        for_rows(g, t, [&](i64 row, i64 c, i64 len) { forward_block(row, c, len, sc); });
      } else {
        for_blocks(g, t, [&](i64 row, i64 c, i64 len) { forward_block(row, c, len, sc); });
      }
    } else {
      const i64 rc = t / g.col_chunks;
      double* sb = sums_b.empty() ? nullptr : sums_b.data() + rc * g.width;
      double* sw = sums_w.empty() ? nullptr : sums_w.data() + rc * g.width;
      double sws = 0.0;
      auto block = [&](i64 row, i64 c, i64 len) { backward_block(row, c, len, sc, sb, sw, sws); };
      if (!staged && weight == nullptr && sb == nullptr && sw == nullptr && sums_ws.empty()) {
        for_rows(g, t, block);
      } else {
        for_blocks(g, t, block);
      }
      if (!sums_ws.empty()) sums_ws[size_t(t)] = sws;
    }
    if (stream) stream_fence();
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

// ---------------------------------------------------------------------------- gated
// x as (outer, 2 * mid): the halves a = x[o, :mid] and b = x[o, mid:] of each outer slice are
// contiguous whichever axis was split and in either layout (Call.gated_rows: concatenated, mid =
// H * the product of the axes after it; interleaved, outer takes the H pairs too); y is
// (outer, mid).  The bias runs along x's last axis (`channels`): element q of a half-slice takes
// bias[(phase + q) % channels] with phase the slice's offset in x modulo channels, read from a
// copy of the bias extended by kBlock values so that a block needs no modulo.
template <class F, class D> struct Gated {
  using C = act::compute_t<D>;
  const Job& j;
  act::Ctx<C> ctx;
  const D* x;
  const D* dy;
  D* out;
  i64 mid, ch, ext;           // ext: length of the extended bias and of a tile's dbias sums
  Grid g;
  std::vector<C> bias;        // ch + kBlock
  std::vector<double> sums;   // tiles x ext
  Buffer<C> scratch;          // slots x 4 kBlock
  bool stream = false;        // non-temporal stores, as in Elementwise
  bool pairs = false;         // mid == 1 (interleaved along the last axis): the outputs form one row
                              // and a block takes a run of (a, b) pairs, not one element per row

  explicit Gated(const Job& job)
      : j(job), ctx(make_ctx<C>(job)), x(static_cast<const D*>(job.x)), dy(static_cast<const D*>(job.dy)),
        out(static_cast<D*>(job.out)), mid(job.mid), ch(job.channels), ext(job.channels + kBlock) {}

  int prepare() {
    if (ch <= 0 || mid <= 0 || j.outer * 2 * mid != j.n) return kBadArgs;
    const bool sum_bias = j.backward && j.bias != nullptr;
    pairs = mid == 1;
    ext = ch + (pairs ? 2 : 1) * kBlock;
    g = plan(j.outer * mid, pairs ? j.outer : mid, F::heavy || j.backward, kMaxTasks,
             sum_bias ? kAccBudget / ext : kMaxTasks);
    stream = sizeof(C) == sizeof(D) && worth_streaming(j.n * i64(sizeof(D))) &&
             j.q == nullptr;
    if (j.bias != nullptr) {
      bias = repeat_pattern<D, C>(j.bias, ch, ext);
      if (sum_bias) sums.assign(size_t(g.tasks() * ext), 0.0);
    }
    scratch.resize(size_t(std::min(j.slots, g.tasks()) * 4 * kBlock));
    return kOk;
  }
  int slots() const { return int(scratch.size() / (4 * kBlock)); }
  int tasks() const { return g.tasks(); }
  bool backward() const { return j.backward != 0; }

  __attribute__((flatten)) void block(int t, i64 row, i64 c, i64 len, C* __restrict buf) {
    C* za = buf;
    C* zb = buf + kBlock;
    const D* xa = x + (pairs ? 2 * c : row * 2 * mid + c);
    const D* xb = xa + mid;
    const i64 pa = (xa - x) % ch, pb = (pa + mid) % ch;
    if (pairs) {
      load_pairs(xa, bias.empty() ? nullptr : bias.data() + pa, za, zb, len);
    } else if (bias.empty()) {
      load_block(xa, za, len);
      load_block(xb, zb, len);
    } else {
      load_block_bias(xa, bias.data() + pa, za, len);
      load_block_bias(xb, bias.data() + pb, zb, len);
    }
    double* s = sums.empty() ? nullptr : sums.data() + i64(t) * ext;
    if constexpr (F::choice < 0) return loops<-1>(row, c, len, buf, s, pa, pb);
    switch (choice_of<F>(ctx)) {
      case 0: return loops<0>(row, c, len, buf, s, pa, pb);
      case 1: return loops<1>(row, c, len, buf, s, pa, pb);
      default: return loops<-1>(row, c, len, buf, s, pa, pb);
    }
  }

  template <int V>
  inline __attribute__((always_inline)) void loops(i64 row, i64 c, i64 len, C* __restrict buf, double* __restrict s,
                                                   i64 pa, i64 pb) const {
    const C* __restrict za = buf;
    const C* __restrict zb = buf + kBlock;
    C* __restrict ga = buf + 2 * kBlock;
    C* __restrict gb = buf + 3 * kBlock;
    act::Ctx<C> cc = ctx;
    ACT_CPU_FIX_CHOICE(F, V, cc);
    if (!j.backward) {
      fwd_loop<V>(za, zb, ga, len, ctx);
      if (j.q != nullptr) return fp8_block(j, ga, row * mid + c, len);
      round_once(za, zb, nullptr, ga, nullptr, len, cc);
      emit(ga, out + row * mid + c, len);
      return;
    }
    const D* d = dy + row * mid + c;
    bwd_loop<V>(za, zb, d, ga, gb, len, ctx);
    round_once(za, zb, d, ga, gb, len, cc);
    if (pairs) {
      if (s != nullptr) {
        for (i64 k = 0; k < len; ++k) {
          s[pa + 2 * k] += double(ga[k]);
          s[pa + 2 * k + 1] += double(gb[k]);
        }
      }
      return store_pairs(ga, gb, out + 2 * c, len);
    }
    if (s != nullptr) {
#pragma omp simd
      for (i64 k = 0; k < len; ++k) s[pa + k] += double(ga[k]);
#pragma omp simd
      for (i64 k = 0; k < len; ++k) s[pb + k] += double(gb[k]);
    }
    emit(ga, out + row * 2 * mid + c, len);
    emit(gb, out + row * 2 * mid + mid + c, len);
  }

  // The unit over a block, in their own functions as Core's loops: `flatten` inlines the functor
  // there (inside block() it did not always: geglu called gelu once per element, 7x slower), and
  // the choice parameter is a constant in each copy.
  template <int V>
  __attribute__((noinline, flatten)) static void fwd_loop(const C* __restrict za, const C* __restrict zb,
                                                         C* __restrict ga, i64 len, const act::Ctx<C>& ctx) {
    act::Ctx<C> cc = ctx;
    ACT_CPU_FIX_CHOICE(F, V, cc);
#pragma omp simd
    for (i64 k = 0; k < len; ++k) {
      const C a = za[k], b = zb[k];
      ga[k] = (a != a || b != b) ? a + b : F::fwd(a, b, cc);  // NaN in either half: NaN
    }
  }
  template <int V>
  __attribute__((noinline, flatten)) static void bwd_loop(const C* __restrict za, const C* __restrict zb,
                                                         const D* __restrict d, C* __restrict ga, C* __restrict gb,
                                                         i64 len, const act::Ctx<C>& ctx) {
    act::Ctx<C> cc = ctx;
    ACT_CPU_FIX_CHOICE(F, V, cc);
#pragma omp simd
    for (i64 k = 0; k < len; ++k) {
      const C a = za[k], b = zb[k];
      const C dk = act::load(d[k]);
      const act::Pair<C> p = F::grad(a, b, cc);
      const bool nan = a != a || b != b;
      ga[k] = nan ? a + b : dk * p.a;
      gb[k] = nan ? a + b : dk * p.b;
    }
  }

  // 16-bit D: the results near a tie of D computed again in double and rounded once, as
  // Core::round_once does (f(a, b), or dy times both partial derivatives when d is dy), and, as
  // the GPU's store_gated_fwd / _bwd, the results functors.cuh's scaled_tiny takes: a heavy unit's
  // bfloat16 result below max(|a|, |b|) FLT_MIN (times |dy|, at least 1, in the backward).
  void round_once(const C* za, const C* zb, const D* d, C* ga, C* gb, i64 len, const act::Ctx<C>& cc) const {
    if constexpr (sizeof(D) == 2 && F::redo_in_double) {
      alignas(64) unsigned char near[kBlock];
      int any = 0;
      if (d == nullptr) {
#pragma omp simd reduction(| : any)
        for (i64 k = 0; k < len; ++k) {
          const C big = act::m::max(act::m::abs(za[k]), act::m::abs(zb[k]));
          const int n = int(act::near_tie<D>(ga[k])) | int(act::scaled_tiny<F, D>(ga[k], big));
          near[k] = (unsigned char)(n & int(za[k] == za[k]) & int(zb[k] == zb[k]));
          any |= n;
        }
      } else {
#pragma omp simd reduction(| : any)
        for (i64 k = 0; k < len; ++k) {
          const C big = act::m::max(act::m::max(act::m::abs(za[k]), act::m::abs(zb[k])), C(1));
          const C scale = act::m::abs(act::load(d[k])) * big;
          const int n = int(act::near_tie<D>(ga[k])) | int(act::near_tie<D>(gb[k])) |
                        int(act::scaled_tiny<F, D>(ga[k], scale)) | int(act::scaled_tiny<F, D>(gb[k], scale)) |
                        int(F::grad_cancels(za[k], zb[k], cc));
          near[k] = (unsigned char)(n & int(za[k] == za[k]) & int(zb[k] == zb[k]));
          any |= n;
        }
      }
      if (!any) return;
      const act::Ctx<double> w = act::widen(cc);
      for_each_flagged(near, len, [&](i64 k) {
        const double a = za[k], b = zb[k];
        if (d == nullptr) {
          ga[k] = act::to_float_odd(F::fwd(a, b, w));
        } else {
          const act::Pair<double> p = F::grad(a, b, w);
          const double dk = act::load(d[k]);
          ga[k] = act::to_float_odd(dk * p.a);
          gb[k] = act::to_float_odd(dk * p.b);
        }
      });
    }
  }

  void emit(const C* src, D* dst, i64 len) const {
    if constexpr (sizeof(C) == sizeof(D)) {
      if (stream) return stream_copy(reinterpret_cast<C*>(dst), src, len);
    }
    store_block(src, dst, len);
  }

  void tile(int t, int slot) {
    C* buf = scratch.data() + i64(slot) * 4 * kBlock;
    for_blocks(g, t, [&](i64 row, i64 c, i64 len) { block(t, row, c, len, buf); });
    if (stream) stream_fence();
  }

  void finish() {
    if (sums.empty()) return;
    for (i64 k = 0; k < ch; ++k) j.dbias[k] = 0.0;
    for (int t = 0; t < g.tasks(); ++t)
      for (i64 p = 0; p < ext; ++p) j.dbias[p % ch] += sums[size_t(t * ext + p)];
  }
};

// ---------------------------------------------------------------------------- rowwise
// softmax, log_softmax, softmin, sparsemax, entmax15 and entmax along rows of `mid` elements of x seen as
// (outer, mid, inner): row (o, i) is x[o, :, i], contiguous when inner == 1.  Rows along an
// inner axis are gathered a panel at a time (up to W rows side by side) into contiguous buffers,
// computed as contiguous rows and scattered back.  docs/semantics.md has the policies: masked
// entries are left out and give 0; a NaN or +inf in the unmasked row, or a row of -inf, makes the
// row NaN; a fully masked row is 0.  The softmax family takes a temperature T (Job::p0: the row's
// logits are (x - m) / T, shifted first, m the row max; dx gets the factor 1 / T) and the quiet form
// (Job::p1 != 0: an implicit logit 0 in every row, so the shift is max(m, 0) and the sum has one term more).  entmax takes alpha,
// Job::p0 for every row, or one float64 per row (Job::weight, rows long, rows in (outer, inner)
// order) with the per-row dalpha written to Job::dweight.
enum RowOp : int { kSoftmax = 0, kLogSoftmax = 1, kSoftmin = 2, kSparsemax = 3, kEntmax15 = 4, kEntmax = 5 };

// Bisection steps of entmax's t: the CPU computes entmax in float64 for every dtype, as sparsemax
// and entmax15 (fallback.ENTMAX_STEPS; the GPU kernels take 30 in float32, softmax.cuh).
constexpr int kEntmaxSteps = 60;

// max over a row, NaN ignored (a NaN reaches the row through the sum).  Kept in 32 partial
// maxima: GCC does not vectorize a float max reduction written with std::max.
template <class C> C row_max(const C* __restrict z, i64 n) {
  constexpr int kMaxLanes = 32;
  C part[kMaxLanes];
  for (int l = 0; l < kMaxLanes; ++l) part[l] = -act::m::inf<C>();
  i64 k = 0;
  for (; k + kMaxLanes <= n; k += kMaxLanes) {
#pragma omp simd
    for (int l = 0; l < kMaxLanes; ++l) {
      const C v = z[k + l];
      part[l] = v > part[l] ? v : part[l];
    }
  }
  C m = -act::m::inf<C>();
  for (; k < n; ++k) m = z[k] > m ? z[k] : m;
  for (int l = 0; l < kMaxLanes; ++l) m = part[l] > m ? part[l] : m;
  return m;
}

// a * b + c, fused where the instruction set has FMA (the AVX-512 and AVX2 builds agree).
template <class C> inline __attribute__((always_inline)) C fmadd(C a, C b, C c) {
#if defined(__FMA__)
  return __builtin_fma(a, b, c);
#else
  return a * b + c;
#endif
}
inline __attribute__((always_inline)) float fmadd(float a, float b, float c) {
#if defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}

// (z - m) - l for log_softmax: float z - m is exact in double; a double z - m carries its
// rounding error (TwoSum) into the result.
inline __attribute__((always_inline)) float diff_minus(float z, float m, double l) {
  return float((double(z) - double(m)) - l);
}
inline __attribute__((always_inline)) double diff_minus(double z, double m, double l) {
  const double d = z - m;
  const double bb = d - z;
  const double err = (z - (d - bb)) - (m + bb);
  return (d - l) + (d - d == 0.0 ? err : 0.0);
}

// exp(z - m) with the rounding error of z - m put back (TwoSum): z - m is inexact when m and z
// are far apart, and exp would turn its error of up to ulp(z - m) / 2 into as many relative ulps.
// The shift m is at least every entry, so z - m <= 0 (or NaN): exp_nonpos, exp's bits there
// without the overflow handling.
template <class C> inline __attribute__((always_inline)) C shifted_exp(C v, C m) {
  const C d = v - m;
  const C bb = d - v;
  const C err = (v - (d - bb)) - (m + bb);
  const C e = act::m::exp_nonpos(d);
  return fmadd(e, d - d == C(0) ? err : C(0), e);
}

// e[k] = shifted_exp(z[k], m) and their sum in float64, kLanes partial sums in a fixed order (the
// same bits for every vector width).  `ahead` (n values: the next row, or z itself) is prefetched a
// line per kLanes values: this pass is bound by the exp, the row max's pass by memory, and so the
// next row's max reads the cache.
template <class C> double exp_shifted_sum(const C* __restrict z, C m, C* __restrict e, i64 n, const C* ahead) {
  double part[kLanes] = {};
  i64 k = 0;
  for (; k + kLanes <= n; k += kLanes) {
    __builtin_prefetch(ahead + k);
    if constexpr (sizeof(C) == 8) __builtin_prefetch(ahead + k + kLanes / 2);
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const C v = shifted_exp(z[k + l], m);
      e[k + l] = v;
      part[l] += double(v);
    }
  }
  for (int l = 0; k < n; ++k, ++l) {
    const C v = shifted_exp(z[k], m);
    e[k] = v;
    part[l] += double(v);
  }
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) part[l] += part[l + w];
  return part[0];
}

// The sum over a row of shifted_exp(z[k], m) where z[k] != m, in float64 with fixed partial sums,
// in one pass (the exps are not kept); `ties` gets the number of entries equal to m.  `ahead` as
// in exp_shifted_sum.
template <class C> double exp_sum_except_max(const C* __restrict z, C m, i64 n, double& ties, const C* ahead) {
  double part[kLanes] = {};
  i64 count[kLanes] = {};
  i64 k = 0;
  // the ties' terms become 0 in C before the conversion (a select there vectorizes; in double it
  // did not), counted in integers
  for (; k + kLanes <= n; k += kLanes) {
    __builtin_prefetch(ahead + k);
    if constexpr (sizeof(C) == 8) __builtin_prefetch(ahead + k + kLanes / 2);
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const C v = z[k + l];
      const C e = shifted_exp(v, m);
      part[l] += double(v == m ? C(0) : e);
      count[l] += v == m;
    }
  }
  for (int l = 0; k < n; ++k, ++l) {
    const C e = shifted_exp(z[k], m);
    part[l] += double(z[k] == m ? C(0) : e);
    count[l] += z[k] == m;
  }
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) {
      part[l] += part[l + w];
      count[l] += count[l + w];
    }
  ties = double(count[0]);
  return part[0];
}

// (v - m) / t, the temperature's shifted logit: the difference first, so that a large v does not
// overflow v / t when t < 1.  Rounded once: float rows through double (no overflow there), double rows
// with the rounding errors of v - m (TwoSum) and of the division put back.  A spread v - m beyond the
// range is halved first, (v / 2 - m / 2) / t * 2, finite whenever (v - m) / t is; a NaN stays NaN.
inline float shifted_logit(float v, float m, float t) {
  return float((double(v) - double(m)) / double(t));
}
inline double shifted_logit(double v, double m, double t) {
  const double d = v - m;
  if (!(d > -act::m::inf<double>())) return d == d ? (v * 0.5 - m * 0.5) / t * 2.0 : d;
  const double bb = d - v;
  const double err = (v - (d - bb)) - (m + bb);
  const double q = d / t;
  if (!(q > -act::m::inf<double>())) return q;
  return q + (__builtin_fma(-q, t, d) + err) / t;
}

template <class C> struct RowMath {
  // y = f(z) for one row; z holds -inf at masked places (keep[k] false) and may be y itself.
  // tmp: n values; srt: n float64 values (sparsemax).  quiet: the row has one more logit, lz (0, or
  // the temperature's shifted -m / t), in its max and its sum but without an output; alpha: entmax's.
  // ahead: the next row (n values) to prefetch during the exp pass, or null.
  static void forward(int op, const C* z, const bool* keep, C* y, C* __restrict tmp, double* srt, i64 n,
                      bool quiet, C lz, C alpha, const C* ahead = nullptr) {
    if (ahead == nullptr) ahead = z;
    if (keep != nullptr && !any(keep, n)) {
      for (i64 k = 0; k < n; ++k) y[k] = C(0);
      return;
    }
    const C top = row_max(z, n);
    // the shift: the max, or max(max, lz) with the implicit logit (a row of -inf then gives 0s)
    const C m = quiet && !(top > lz) ? lz : top;
    const double implicit = quiet ? std::exp(double(lz) - double(m)) : 0.0;
    if (op == kSparsemax) {
      sparsemax(z, y, srt, n, m);
    } else if (op == kEntmax15) {
      entmax15(z, y, srt, n, m);
    } else if (op == kEntmax) {
      entmax(z, y, srt, n, m, alpha);
    } else {
      if (op == kLogSoftmax) {
        // s = (entries equal to the max: exp(0) = 1 each) + (the rest), and log(s) as log1p of
        // (ties - 1) + rest: it keeps its relative accuracy when the rest is small
        // (the implicit logit is one more tie when it is the shift, else part of the rest)
        double ties = 0.0;
        double rest = exp_sum_except_max(z, m, n, ties, ahead);
        if (quiet) (m == lz ? ties : rest) += implicit;
        const double s = top < act::m::inf<C>() ? ties + rest : double(act::m::nan<C>());  // +inf: NaN row
        // (z - m) - log(s): the two terms rounded apart (log(s) in float64), so the largest
        // entries keep their relative accuracy
        const double ls = s == s ? act::vm::log1p((ties - 1.0) + rest) : s;
#pragma omp simd
        for (i64 k = 0; k < n; ++k) y[k] = diff_minus(z[k], m, ls);
      } else {
        // one pass: exp(z - m) and its float64 sum
        const double sum = exp_shifted_sum(z, m, tmp, n, ahead) + implicit;
        const double s = top < act::m::inf<C>() ? sum : double(act::m::nan<C>());  // +inf: NaN row
        const C inv = C(1.0 / s);
#pragma omp simd
        for (i64 k = 0; k < n; ++k) y[k] = tmp[k] * inv;
      }
    }
    if (keep != nullptr) zero_masked(y, keep, n);
  }

  // dx for one row from y = f(z) and dy; tmp: n values.  dx may be dy itself.  t: the temperature
  // (z = x / t), 1 for sparsemax.  entmax: alpha, and the row's dalpha when `dalpha` is not null.
  static void backward(int op, const C* y, const C* d, const bool* keep, C* dx, C* __restrict tmp, i64 n,
                       double t, double alpha = 2.0, double* dalpha = nullptr) {
    const C* dm = d;
    if (keep != nullptr) {
#pragma omp simd
      for (i64 k = 0; k < n; ++k) tmp[k] = keep[k] ? d[k] : C(0);
      dm = tmp;
    }
    if (op == kEntmax15 || op == kEntmax) {
      entmax_backward(y, dm, dx, n, op == kEntmax15 ? 1.5 : alpha, dalpha);
    } else if (op == kSparsemax) {
      bool nan = false;
      i64 count = 0;
      double s = 0.0;
      for (i64 k = 0; k < n; ++k) {
        nan |= y[k] != y[k];
        count += y[k] > C(0);
      }
      for (i64 k = 0; k < n; ++k) s += y[k] > C(0) ? double(dm[k]) : 0.0;
      const double mean = s / double(std::max<i64>(count, 1));
      const C bad = nan ? act::m::nan<C>() : C(0);
#pragma omp simd
      for (i64 k = 0; k < n; ++k) dx[k] = y[k] > C(0) ? C(double(dm[k]) - mean) : C(0);
      if (nan)
        for (i64 k = 0; k < n; ++k) dx[k] = bad;
    } else if (op == kLogSoftmax) {
      const double s = sum_fixed(dm, n);
      // t == 1: the division (a vdivpd per lane) is the identity, so it is left out
      if (t == 1.0) {
#pragma omp simd
        for (i64 k = 0; k < n; ++k) dx[k] = C(double(dm[k]) - double(act::m::exp(y[k])) * s);
      } else {
#pragma omp simd
        for (i64 k = 0; k < n; ++k) dx[k] = C((double(dm[k]) - double(act::m::exp(y[k])) * s) / t);
      }
    } else {
      const double s = dot_fixed(dm, y, n);
      const double sign = op == kSoftmin ? -1.0 : 1.0;
      if (t == 1.0) {
#pragma omp simd
        for (i64 k = 0; k < n; ++k) dx[k] = C(sign * double(y[k]) * (double(dm[k]) - s));
      } else {
#pragma omp simd
        for (i64 k = 0; k < n; ++k) dx[k] = C(sign * double(y[k]) * (double(dm[k]) - s) / t);
      }
    }
    if (keep != nullptr) zero_masked(dx, keep, n);
  }

 private:
  static bool any(const bool* keep, i64 n) {
    for (i64 k = 0; k < n; ++k)
      if (keep[k]) return true;
    return false;
  }
  static void zero_masked(C* y, const bool* keep, i64 n) {
#pragma omp simd
    for (i64 k = 0; k < n; ++k) y[k] = keep[k] ? y[k] : C(0);
  }

  // max((z - max) / 2 - tau, 0)^2 with the tau of Peters et al. (2019), in float64
  static void entmax15(const C* z, C* y, double* srt, i64 n, C m);
  // alpha-entmax by bisection (docs/semantics.md), in float64
  static void entmax(const C* z, C* y, double* w, i64 n, C m, C alpha);

  // The sparse rows' shared start: a NaN, +inf or a row of -inf (m not finite) makes the row NaN;
  // true when it did.
  static bool nan_row(const C* z, C* y, i64 n, C m) {
    bool bad = !(m < act::m::inf<C>()) || !(m > -act::m::inf<C>());
    for (i64 k = 0; k < n; ++k) bad |= z[k] != z[k];
    if (bad)
      for (i64 k = 0; k < n; ++k) y[k] = act::m::nan<C>();
    return bad;
  }
  // The finite entries as (z - m) * scale in float64, sorted descending into srt; their count.
  static i64 sorted_shifted(const C* z, double* srt, i64 n, C m, double scale) {
    const double top = double(m);
    i64 finite = 0;
    for (i64 k = 0; k < n; ++k)
      if (z[k] > -act::m::inf<C>()) srt[finite++] = (double(z[k]) - top) * scale;
    std::sort(srt, srt + finite, [](double a, double b) { return a > b; });
    return finite;
  }

  // dx = g (dy - sum(g dy) / sum(g)), g = y^(2 - alpha) on the support (sqrt(y) for entmax15), in
  // float64; dalpha (when asked) = sum(dy (y - q)) / a^2 - sum(dy (y log y - q S)) / a, a = alpha - 1,
  // q = g / sum(g), S = sum(y log y): y = (a z - tau)^(1/a) differentiated with sum(dy/dalpha) = 0,
  // z written through y (a z_i - tau = y_i^a).  A NaN row gives NaN; an all-0 row 0.
  static void entmax_backward(const C* y, const C* dm, C* dx, i64 n, double alpha, double* dalpha) {
    const double e = 2.0 - alpha;
    auto g_of = [e](double v) { return v > 0.0 ? (e == 0.5 ? std::sqrt(v) : std::pow(v, e)) : 0.0; };
    bool nan = false;
    double sg = 0.0, sgd = 0.0;
    for (i64 k = 0; k < n; ++k) {
      nan |= y[k] != y[k];
      const double g = g_of(double(y[k]));
      sg += g;
      sgd += g * double(dm[k]);
    }
    const double mean = sg > 0.0 ? sgd / sg : 0.0;
    if (dalpha != nullptr) {
      double s = 0.0, dyy = 0.0, dyylogy = 0.0;
      for (i64 k = 0; k < n; ++k) {
        const double v = double(y[k]);
        const double ylogy = v > 0.0 ? v * std::log(v) : 0.0;
        s += ylogy;
        dyy += double(dm[k]) * v;
        dyylogy += double(dm[k]) * ylogy;
      }
      // sum(dy q) = mean; sum(dy q S) = mean S
      const double a = alpha - 1.0;
      *dalpha = nan ? act::m::nan<double>() : sg > 0.0 ? (dyy - mean) / (a * a) - (dyylogy - mean * s) / a : 0.0;
    }
    for (i64 k = 0; k < n; ++k) dx[k] = nan ? act::m::nan<C>() : C(g_of(double(y[k])) * (double(dm[k]) - mean));
  }

  // max(z - tau, 0) with the tau of Martins & Astudillo, in float64 on the row shifted to max 0
  // (sparsemax is shift invariant; the shift keeps tau's precision for huge logits).
  static void sparsemax(const C* z, C* y, double* srt, i64 n, C m) {
    if (nan_row(z, y, n, m)) return;
    const double top = double(m);
    const i64 finite = sorted_shifted(z, srt, n, m, 1.0);
    // support: 1 + k z_(k) > z_(1) + ... + z_(k), true on a prefix; the largest is always in it
    double csum = 0.0;
    i64 support = 0;
    for (i64 k = 0; k < finite; ++k) {
      csum += srt[k];
      support += (k == 0 || 1.0 + double(k + 1) * srt[k] > csum) ? 1 : 0;
      srt[k] = csum;
    }
    const double tau = (srt[support - 1] - 1.0) / double(support);
    for (i64 k = 0; k < n; ++k) {
      const double v = double(z[k]) - top - tau;
      y[k] = C(v > 0.0 ? v : 0.0);
    }
  }
};

template <class C> void RowMath<C>::entmax15(const C* z, C* y, double* srt, i64 n, C m) {
  if (nan_row(z, y, n, m)) return;
  // u = (z - max) / 2 in float64, sorted descending; over the k largest, tau_k = mean_k -
  // sqrt((1 - k var_k) / k) (the variance from sums of (u - mean_k) would cost a pass per k: the
  // sums of u and u^2 are exact enough here, u lying in [-1, 0] on the support); the support is the
  // largest k with tau_k <= u_(k), and the top element is always in it (tau_1 = -1)
  const double top = double(m);
  const i64 finite = sorted_shifted(z, srt, n, m, 0.5);
  double s1 = 0.0, s2 = 0.0, tau = -1.0;
  for (i64 k = 0; k < finite; ++k) {
    s1 += srt[k];
    s2 += srt[k] * srt[k];
    const double kk = double(k + 1), mean = s1 / kk;
    const double var = s2 / kk - mean * mean;
    const double t = mean - std::sqrt(std::max((1.0 - kk * var) / kk, 0.0));
    if (t <= srt[k]) tau = t;
  }
  // one Newton step on sum max(u - tau, 0)^2 = 1 from the closed form: the variance from running
  // sums cancels, the step puts tau back at full precision (small outputs need it)
  double f = -1.0, df = 0.0;
  for (i64 k = 0; k < finite && srt[k] > tau; ++k) {
    f += (srt[k] - tau) * (srt[k] - tau);
    df += srt[k] - tau;
  }
  if (df > 0.0) tau += f / (2.0 * df);
  for (i64 k = 0; k < n; ++k) {
    const double w = (double(z[k]) - top) * 0.5 - tau;
    y[k] = C(w > 0.0 ? w * w : 0.0);
  }
}

// y_i = (1 + w_i)^(1/a), w_i = a (z_i - m) - t, a = alpha - 1, with t in [0, 1 - n^-a] (tau - a m + 1)
// found by bisection on sum y = 1 (the sum decreases in t: >= 1 at 0, <= 1 at the top); then y at
// the low end (sum >= 1: the whole support) divided by its sum.  t, not tau: it is of the size of a,
// so it keeps its relative precision as alpha nears 1, and exp(log1p(w) / a) stays accurate there.
// Float64 for every dtype: in float32 the rounding of a (z - m) alone (~6e-8) would cost the small
// entries up to ~1e3 ulps (u = 1 + w small), where float64 keeps them within a few.  w: n float64.
template <class C> void RowMath<C>::entmax(const C* z, C* y, double* w, i64 n, C m, C alpha) {
  if (nan_row(z, y, n, m)) return;
  const double a = double(alpha) - 1.0, inv = 1.0 / a, top = double(m);
  i64 count = 0;
  for (i64 k = 0; k < n; ++k) {
    count += z[k] > -act::m::inf<C>();
    w[k] = a * (double(z[k]) - top);  // <= 0, -inf at masked entries
  }
  auto mass = [inv](double v) { return v > -1.0 ? std::exp(std::log1p(v) * inv) : 0.0; };
  auto total = [&](double t) {
    double s = 0.0;
    for (i64 k = 0; k < n; ++k) s += mass(w[k] - t);
    return s;
  };
  double lo = 0.0, hi = -std::expm1(-a * std::log(double(count)));
  for (int step = 0; step < kEntmaxSteps; ++step) {
    const double mid = (lo + hi) * 0.5;
    (total(mid) >= 1.0 ? lo : hi) = mid;
  }
  const double scale = 1.0 / total(lo);
  for (i64 k = 0; k < n; ++k) y[k] = C(mass(w[k] - lo) * scale);
}

template <class D> struct Rowwise {
  using C = act::compute_t<D>;
  static constexpr bool kDirect = sizeof(C) == sizeof(D);
  const Job& j;
  int op;
  i64 n, inner, rows, width;  // width: rows per panel (1 when inner == 1)
  i64 per_task;               // rows per task
  i64 ch;
  std::vector<C> bias;        // inner == 1: the row's n values; else ch values, bias[i % ch] per row
  std::vector<double> sums;   // backward with bias: tasks x ch
  std::vector<C> buffers;     // slots x 4 panels (z, y, dy, tmp)
  std::vector<unsigned char> masks;  // slots x 1 panel (bools)
  std::vector<double> sorts;  // slots x n (sparsemax)
  bool stream = false;
  C temp;      // the softmax family's temperature: z = (x - max) / temp (1: no division)
  bool quiet;  // the softmax family's implicit logit 0
  const double* alphas;  // entmax: one alpha per row (rows long), or null: p0 for every row

  explicit Rowwise(const Job& job)
      : j(job), op(job.op), n(job.mid), inner(job.inner), rows(job.outer * job.inner), width(1), per_task(1),
        ch(job.channels), temp(job.op <= kSoftmin ? C(job.p0) : C(1)), quiet(job.op <= kSoftmin && job.p1 != 0.0),
        alphas(job.op == kEntmax ? static_cast<const double*>(job.weight) : nullptr) {}

  int prepare() {
    if (n <= 0 || inner <= 0 || j.outer * n * inner != j.n || ch <= 0 || !(temp > C(0))) return kBadArgs;
    if (op == kEntmax && (alphas != nullptr ? j.weight_len != rows : !(C(j.p0) > C(1)))) return kBadArgs;
    if (inner > 1) {
      width = std::max<i64>(kPanelElems / n, n <= (i64(1) << 18) ? 16 : 1);
      width = std::min<i64>({width, inner, 256});
    }
    per_task = j.n < kParallelMinHeavy ? rows
                                        : std::max<i64>((kTaskElems + n - 1) / n, (rows + kMaxTasks - 1) / kMaxTasks);
    const bool sum_bias = j.backward && j.bias != nullptr;
    if (sum_bias) per_task = std::max<i64>(per_task, (rows + kAccBudget / ch - 1) / std::max<i64>(1, kAccBudget / ch));
    per_task = std::max<i64>(1, std::min(per_task, rows));
    if (j.bias != nullptr) bias = repeat_pattern<D, C>(j.bias, ch, inner == 1 ? n : ch);
    if (sum_bias) sums.assign(size_t(tasks() * ch), 0.0);
    const i64 slots = std::min<i64>(j.slots, tasks());
    const i64 panel = width * n;
    buffers.resize(size_t(slots * 4 * panel));
    if (j.mask != nullptr) masks.resize(size_t(slots * panel));
    if (op == kSparsemax || op == kEntmax15 || op == kEntmax) sorts.resize(size_t(slots * n));
    stream = kDirect && inner == 1 && worth_streaming(j.n * i64(sizeof(D))) && j.out != j.x &&
             j.out != j.dy;
    return kOk;
  }
  int tasks() const { return int((rows + per_task - 1) / per_task); }
  int slots() const { return int(buffers.size() / size_t(4 * width * n)); }
  bool backward() const { return j.backward != 0; }

  void tile(int t, int slot) {
    const i64 r0 = t * per_task, r1 = std::min(rows, r0 + per_task);
    const i64 panel = width * n;
    C* zb = buffers.data() + i64(slot) * 4 * panel;
    C* yb = zb + panel;
    C* gb = yb + panel;
    C* tb = gb + panel;
    bool* mb = masks.empty() ? nullptr : reinterpret_cast<bool*>(masks.data() + i64(slot) * panel);
    double* sb = sorts.empty() ? nullptr : sorts.data() + i64(slot) * n;
    double* acc = sums.empty() ? nullptr : sums.data() + i64(t) * ch;
    for (i64 r = r0; r < r1;) {
      const i64 o = r / inner, i = r % inner;
      const i64 w = std::min({width, inner - i, r1 - r});
      panel_rows(o, i, w, zb, yb, gb, tb, mb, sb, acc);
      r += w;
    }
    if (stream) stream_fence();
  }

 private:
  // Rows (o, i .. i + w): gather, compute, scatter.
  void panel_rows(i64 o, i64 i, i64 w, C* zb, C* yb, C* gb, C* tb, bool* mb, double* sb, double* acc) {
    const i64 base = o * n * inner + i;  // element (o, 0, i)
    const D* x = static_cast<const D*>(j.x) + base;
    const D* dy = static_cast<const D*>(j.dy) + (j.backward ? base : 0);
    D* out = static_cast<D*>(j.out) + base;
    const bool* mask = j.mask != nullptr ? j.mask + base : nullptr;
    const C sign = op == kSoftmin ? C(-1) : C(1);
    // z: the panel's rows in compute precision, bias added, negated for softmin, masked -> -inf
    const bool direct = inner == 1 && kDirect && bias.empty() && mask == nullptr && op != kSoftmin && temp == C(1);
    const C* z = direct ? reinterpret_cast<const C*>(x) : zb;
    // read in place: the next row (if any) is prefetched while this one's exp is computed
    const C* next = direct && o + 1 < j.outer ? z + n : nullptr;
    if (!direct) gather_input(x, mask, i, w, sign, zb, mb);
    const bool* keep = mask != nullptr ? mb : nullptr;
    for (i64 q = 0; q < w; ++q) {
      const C* zq = z + q * n;
      const bool* kq = keep != nullptr ? keep + q * n : nullptr;
      const C alpha = C(alpha_of(o, i + q));
      // temp != 1 is never direct: zq is the panel's own buffer
      const C lz = temp != C(1) ? by_temperature(zb + q * n, n, quiet) : C(0);
      if (!j.backward) {
        C* y = inner == 1 && kDirect && !stream ? reinterpret_cast<C*>(out) : yb + q * n;
        RowMath<C>::forward(op == kSoftmin ? kSoftmax : op, zq, kq, y, tb, sb, n, quiet, lz, alpha, next);
        continue;
      }
      C* y = yb + q * n;  // y = f(z), recomputed: the backward works from it
      RowMath<C>::forward(op == kSoftmin ? kSoftmax : op, zq, kq, y, tb, sb, n, quiet, lz, alpha);
    }
    if (!j.backward) {
      if (!(inner == 1 && kDirect && !stream)) scatter(yb, out, w);
      return;
    }
    // dy in compute precision (the panel's rows side by side, like z)
    const C* d = gb;
    if (inner == 1 && kDirect) {
      d = reinterpret_cast<const C*>(dy);
    } else {
      gather(dy, w, gb);
    }
    // dx row by row over y (each y row is read before its dx is written), z's buffer as scratch
    for (i64 q = 0; q < w; ++q) {
      const bool* kq = keep != nullptr ? keep + q * n : nullptr;
      C* res = yb + q * n;
      double* dalpha = alphas != nullptr && j.dweight != nullptr ? j.dweight + o * inner + i + q : nullptr;
      RowMath<C>::backward(op, res, d + q * n, kq, res, zb + q * n, n, double(temp), double(C(alpha_of(o, i + q))),
                           dalpha);
      if (acc != nullptr) {
        if (inner == 1 && ch == n) {  // the row is the bias's axis: one sum per element
#pragma omp simd
          for (i64 k = 0; k < n; ++k) acc[k] += double(res[k]);
        } else {  // the row runs along another axis: one bias value for the whole row
          acc[(i + q) % ch] += sum_fixed(res, n);
        }
      }
    }
    scatter(yb, out, w);
  }

  double alpha_of(i64 o, i64 i) const { return alphas != nullptr ? alphas[o * inner + i] : j.p0; }

  // The temperature's logits of one row in place: z[k] = (z[k] - m) / temp, m the row max (NaN
  // ignored; max(m, 0) in the quiet form, whose implicit logit 0 takes part), shifted before the
  // division so that nothing overflows unless the spread does.  Returns the implicit logit's
  // (0 - m) / temp (<= 0, so no inf - inf follows for finite rows).
  C by_temperature(C* z, i64 n, bool with_implicit) const {
    const C top = row_max(z, n);
    const C m = with_implicit && !(top > C(0)) ? C(0) : top;
    for (i64 k = 0; k < n; ++k) z[k] = shifted_logit(z[k], m, temp);
    return with_implicit ? shifted_logit(C(0), m, temp) : C(0);
  }

  void gather_input(const D* x, const bool* mask, i64 i, i64 w, C sign, C* zb, bool* mb) const {
    if (inner == 1) {
      if (bias.empty()) {
        load_block(x, zb, n);
      } else {
        load_block_bias(x, bias.data(), zb, n);
      }
      if (sign < C(0)) {
#pragma omp simd
        for (i64 k = 0; k < n; ++k) zb[k] = -zb[k];
      }
      if (mask != nullptr) {
#pragma omp simd
        for (i64 k = 0; k < n; ++k) {
          mb[k] = mask[k];
          zb[k] = mask[k] ? zb[k] : -act::m::inf<C>();
        }
      }
      return;
    }
    for (i64 q = 0; q < w; ++q) {
      const C b = bias.empty() ? C(0) : bias[size_t((i + q) % ch)];
      C* zq = zb + q * n;
      for (i64 k = 0; k < n; ++k) zq[k] = sign * (act::load(x[k * inner + q]) + b);
      if (mask != nullptr) {
        bool* mq = mb + q * n;
        for (i64 k = 0; k < n; ++k) {
          const bool keep = mask[k * inner + q];
          mq[k] = keep;
          zq[k] = keep ? zq[k] : -act::m::inf<C>();
        }
      }
    }
  }

  void gather(const D* src, i64 w, C* dst) const {
    if (inner == 1) return load_block(src, dst, n);
    for (i64 k = 0; k < n; ++k)
      for (i64 q = 0; q < w; ++q) dst[q * n + k] = act::load(src[k * inner + q]);
  }

  void scatter(const C* src, D* dst, i64 w) const {
    if (inner == 1) {
      if constexpr (kDirect) {
        if (stream) return stream_copy(reinterpret_cast<C*>(dst), src, n);
      }
      return store_block(src, dst, n);
    }
    for (i64 k = 0; k < n; ++k)
      for (i64 q = 0; q < w; ++q) dst[k * inner + q] = act::store<D>(src[q * n + k]);
  }

 public:
  void finish() {
    if (sums.empty()) return;
    for (i64 k = 0; k < ch; ++k) j.dbias[k] = 0.0;
    for (int t = 0; t < tasks(); ++t)
      for (i64 k = 0; k < ch; ++k) j.dbias[k] += sums[size_t(t * ch + k)];
  }
};

// ---------------------------------------------------------------------------- drivers
// prepare() allocates everything (a failure is kNoMemory before any write), the tiles run on the
// pool, finish() folds the partial sums.
template <class Run> int drive(Run& e) {
  int st;
  try {
    st = e.prepare();
  } catch (const std::bad_alloc&) {
    return kNoMemory;
  }
  if (st != kOk) return st;
  try {
    st = run_tasks(e.tasks(), e.slots(), [&](int t, int slot) { e.tile(t, slot); });
  } catch (const std::bad_alloc&) {
    return kNoMemory;  // the pool's threads could not be made: nothing was written
  }
  if (st == kOk && e.backward()) e.finish();
  return st;
}

// ---------------------------------------------------------------------------- tables
// Op numbers are positions in these lists; engine.py reads the names through op_names().
#define ACT_CPU_ELEMENTWISE(X)                                                                              \
  X(relu, Relu) X(relu6, Relu6) X(leaky_relu, LeakyRelu) X(prelu, Prelu) X(rrelu, Rrelu) X(elu, Elu)       \
  X(selu, Selu) X(celu, Celu) X(gelu, Gelu) X(sigmoid, Sigmoid) X(hard_sigmoid, HardSigmoid)               \
  X(log_sigmoid, LogSigmoid) X(softplus, Softplus) X(softsign, Softsign) X(silu, Silu)                     \
  X(hard_silu, HardSilu) X(mish, Mish) X(tanh, Tanh) X(hard_tanh, HardTanh) X(tanh_shrink, TanhShrink)     \
  X(soft_shrink, SoftShrink) X(hard_shrink, HardShrink) X(threshold, Threshold)                            \
  X(sparse_plus, SparsePlus) X(sparse_sigmoid, SparseSigmoid) X(squareplus, Squareplus)                    \
  X(exponential, Exponential) X(linear, Linear) X(log1mexp, Log1mexp) X(lisht, Lisht) X(snake, Snake)
#define ACT_CPU_GATED(X) X(glu, Glu) X(swiglu, Swiglu) X(geglu, Geglu) X(reglu, Reglu)

#define ACT_CPU_NAME(name, functor) #name,
const char* const kElementwiseNames[] = {ACT_CPU_ELEMENTWISE(ACT_CPU_NAME) nullptr};
const char* const kGatedNames[] = {ACT_CPU_GATED(ACT_CPU_NAME) nullptr};
#undef ACT_CPU_NAME
const char* const kRowwiseNames[] = {"softmax", "log_softmax", "softmin", "sparsemax", "entmax15", "entmax",
                                     nullptr};  // RowOp order

template <class F, class D> int run_elementwise(const Job& j) {
  Elementwise<D> e(j, ops_of<F, act::compute_t<D>>());
  return drive(e);
}
template <class F, class D> int run_gated(const Job& j) {
  Gated<F, D> e(j);
  return drive(e);
}
template <class D> int run_rowwise(const Job& j) {
  Rowwise<D> e(j);
  return drive(e);
}

using Runner = int (*)(const Job&);
template <class D> struct Table {
#define ACT_CPU_E(name, functor) &run_elementwise<act::fn::functor, D>,
#define ACT_CPU_G(name, functor) &run_gated<act::fn::Clamped<act::fn::functor>, D>,
  static constexpr Runner elementwise[] = {ACT_CPU_ELEMENTWISE(ACT_CPU_E)};
  static constexpr Runner gated[] = {ACT_CPU_GATED(ACT_CPU_G)};
#undef ACT_CPU_E
#undef ACT_CPU_G
  static int run(int kind, const Job& j) {
    if (kind == kRowwise) return j.op >= 0 && j.op <= kEntmax ? run_rowwise<D>(j) : int(kUnknownOp);
    const Runner* table = kind == kElementwise ? elementwise : gated;
    const int count = kind == kElementwise ? int(std::size(elementwise)) : int(std::size(gated));
    return j.op >= 0 && j.op < count ? table[j.op](j) : int(kUnknownOp);
  }
};

int run(int kind, const Job& j) {
  switch (j.dtype) {
    case kF16: return Table<__half>::run(kind, j);
    case kBF16: return Table<__nv_bfloat16>::run(kind, j);
    case kF32: return Table<float>::run(kind, j);
    case kF64: return Table<double>::run(kind, j);
    default: return kBadDtype;
  }
}

// The math primitives over an array (tests compare the builds of every instruction set).
const char* const kMathNames[] = {"exp", "expm1", "log", "log1p", "tanh", "erfc", "normcdf", "gauss", "sin", "sigmoid",
                                  nullptr};
template <class C> void math_loop(int fn, const C* __restrict x, C* __restrict y, i64 n) {
#define ACT_CPU_MATH_LOOP(k, f)                          \
  case k:                                                \
    _Pragma("omp simd") for (i64 i = 0; i < n; ++i) y[i] = act::m::f(x[i]); \
    return;
  switch (fn) {
    ACT_CPU_MATH_LOOP(0, exp)
    ACT_CPU_MATH_LOOP(1, expm1)
    ACT_CPU_MATH_LOOP(2, log)
    ACT_CPU_MATH_LOOP(3, log1p)
    ACT_CPU_MATH_LOOP(4, tanh)
    ACT_CPU_MATH_LOOP(5, erfc)
    ACT_CPU_MATH_LOOP(6, normcdf)
    ACT_CPU_MATH_LOOP(7, gauss)
    ACT_CPU_MATH_LOOP(8, sin)
    ACT_CPU_MATH_LOOP(9, sigmoid_final)
    default: return;
  }
#undef ACT_CPU_MATH_LOOP
}

// Inputs where the one-exp sigmoid differs from common.cuh's template: must be 0.
int sigmoid_mismatches() {
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

}  // namespace cpu

// ---------------------------------------------------------------------------- Python module
namespace {

using cpu::i64;

const int kItemsize[] = {2, 2, 4, 8};  // by cpu::Dtype

// The data pointer of an optional array argument, after checking what run() relies on: a
// C-contiguous NumPy array of `want` elements of `itemsize` bytes (writable for outputs).
// None gives nullptr.  Errors name the argument; engine.py never passes a bad one.
bool array_arg(PyObject* o, const char* what, int itemsize, i64 want, bool writable, void** data) {
  *data = nullptr;
  if (o == Py_None) return true;
  if (!PyArray_Check(o)) {
    PyErr_Format(PyExc_TypeError, "%s must be a numpy array", what);
    return false;
  }
  PyArrayObject* a = reinterpret_cast<PyArrayObject*>(o);
  if (!PyArray_IS_C_CONTIGUOUS(a) || PyArray_ITEMSIZE(a) != itemsize || PyArray_SIZE(a) != want ||
      (writable && !PyArray_ISWRITEABLE(a))) {
    PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous%s array of %lld elements of %d bytes", what,
                 writable ? " writable" : "", static_cast<long long>(want), itemsize);
    return false;
  }
  *data = PyArray_DATA(a);
  return true;
}

bool int_arg(PyObject* o, const char* what, long long* v) {
  *v = PyLong_AsLongLong(o);
  if (*v == -1 && PyErr_Occurred()) {
    PyErr_Format(PyExc_TypeError, "%s must be an int", what);
    return false;
  }
  return true;
}

i64 size_of(PyObject* o) {
  return o != Py_None && PyArray_Check(o) ? i64(PyArray_SIZE(reinterpret_cast<PyArrayObject*>(o))) : 0;
}

const char kRunDoc[] =
    "run(kind, op, dtype, backward, threads, x, out, dy, bias, weight, where, dbias, dweight,\n"
    "    outer, mid, inner, channels, p0, p1, p2, seed)\n\n"
    "One call of the engine (activations/backends/cpu/engine.py builds the arguments).";

// Runs job j without the GIL; its status as None or the exception the caller `what` raises.
PyObject* run_released(long long kind, cpu::Job& j, const char* what) {
  int status;
  Py_BEGIN_ALLOW_THREADS
  try {
    status = cpu::run(int(kind), j);
  } catch (const std::bad_alloc&) {
    status = cpu::kNoMemory;
  } catch (...) {
    status = cpu::kBadArgs;
  }
  Py_END_ALLOW_THREADS
  switch (status) {
    case cpu::kOk: Py_RETURN_NONE;
    case cpu::kNoMemory:
      PyErr_SetString(PyExc_MemoryError, "activations: out of memory in the compiled CPU engine (nothing was written)");
      return nullptr;
    case cpu::kUnknownOp: PyErr_Format(PyExc_ValueError, "%s(): unknown op", what); return nullptr;
    default: PyErr_Format(PyExc_ValueError, "%s(): inconsistent sizes", what); return nullptr;
  }
}

PyObject* py_run(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 21) {
    PyErr_Format(PyExc_TypeError, "run() takes 21 arguments (%zd given)", nargs);
    return nullptr;
  }
  long long kind, op, dtype, backward, threads, outer, mid, inner, channels;
  if (!int_arg(args[0], "kind", &kind) || !int_arg(args[1], "op", &op) || !int_arg(args[2], "dtype", &dtype) ||
      !int_arg(args[3], "backward", &backward) || !int_arg(args[4], "threads", &threads) ||
      !int_arg(args[13], "outer", &outer) || !int_arg(args[14], "mid", &mid) || !int_arg(args[15], "inner", &inner) ||
      !int_arg(args[16], "channels", &channels))
    return nullptr;
  if (kind < 0 || kind > 2 || dtype < 0 || dtype > 3 || outer < 0 || mid < 0 || inner < 0 || channels <= 0) {
    PyErr_SetString(PyExc_ValueError, "run(): kind, dtype or sizes out of range");
    return nullptr;
  }
  cpu::Job j{};
  j.op = int(op);
  j.dtype = int(dtype);
  j.backward = backward != 0;
  j.slots = int(std::max<long long>(1, std::min<long long>(threads, 1024)));
  j.outer = outer;
  j.mid = mid;
  j.inner = inner;
  j.channels = channels;
  j.n = kind == cpu::kGated ? outer * 2 * mid : outer * mid * inner;
  j.weight_len = size_of(args[9]);
  j.p0 = PyFloat_AsDouble(args[17]);
  j.p1 = PyFloat_AsDouble(args[18]);
  j.p2 = PyFloat_AsDouble(args[19]);
  j.seed = PyLong_AsUnsignedLongLongMask(args[20]);
  if (PyErr_Occurred()) return nullptr;
  const int item = kItemsize[dtype];
  const i64 out_n = kind == cpu::kGated && !j.backward ? j.n / 2 : j.n;
  const i64 dy_n = kind == cpu::kGated ? j.n / 2 : j.n;
  const i64 wsum_n = j.weight_len > 0 ? j.weight_len : 1;
  // row-wise: the weight is a per-row float64 parameter (entmax's alpha), rows long, as its sums
  const bool per_row = kind == cpu::kRowwise;
  const int witem = per_row ? 8 : item;
  void *x, *out, *dy, *bias, *weight, *mask, *dbias, *dweight;
  if (!array_arg(args[5], "x", item, j.n, false, &x) || !array_arg(args[6], "out", item, out_n, true, &out) ||
      !array_arg(args[7], "dy", item, dy_n, false, &dy) || !array_arg(args[8], "bias", item, channels, false, &bias) ||
      !array_arg(args[9], "weight", witem, j.weight_len, false, &weight) ||
      !array_arg(args[10], "where", 1, j.n, false, &mask) ||
      !array_arg(args[11], "dbias", 8, channels, true, &dbias) ||
      !array_arg(args[12], "dweight", 8, wsum_n, true, &dweight))
    return nullptr;
  if (x == nullptr || out == nullptr || (j.backward && dy == nullptr) || (weight != nullptr && !per_row &&
      j.weight_len != 1 && j.weight_len != channels) || (weight != nullptr && per_row && j.weight_len != outer * inner)) {
    PyErr_SetString(PyExc_ValueError, "run(): missing x, out or dy, or a weight of the wrong length");
    return nullptr;
  }
  j.x = x;
  j.out = out;
  j.dy = dy;
  j.bias = bias;
  j.weight = weight;
  j.mask = static_cast<const bool*>(mask);
  j.dbias = static_cast<double*>(dbias);
  j.dweight = static_cast<double*>(dweight);
  if (j.n == 0) Py_RETURN_NONE;
  return run_released(kind, j, "run");
}

const char kRunFp8Doc[] =
    "run_fp8(kind, op, dtype, threads, x, q, amax, bias, weight, outer, mid, channels, p0, p1, p2, seed,\n"
    "        scale, noise_seed, amax_cols, amax_groups, format, amax_mode, stochastic)\n\n"
    "The forward of an elementwise (kind 0) or gated (kind 1) op written as FP8 codes q (uint8) with the\n"
    "amax segments (uint32 float bits, zeroed by the caller); see engine.py.";

PyObject* py_run_fp8(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 23) {
    PyErr_Format(PyExc_TypeError, "run_fp8() takes 23 arguments (%zd given)", nargs);
    return nullptr;
  }
  long long kind, op, dtype, threads, outer, mid, channels, cols, groups, format, mode, stochastic;
  if (!int_arg(args[0], "kind", &kind) || !int_arg(args[1], "op", &op) || !int_arg(args[2], "dtype", &dtype) ||
      !int_arg(args[3], "threads", &threads) || !int_arg(args[9], "outer", &outer) || !int_arg(args[10], "mid", &mid) ||
      !int_arg(args[11], "channels", &channels) || !int_arg(args[18], "amax_cols", &cols) ||
      !int_arg(args[19], "amax_groups", &groups) || !int_arg(args[20], "format", &format) ||
      !int_arg(args[21], "amax_mode", &mode) || !int_arg(args[22], "stochastic", &stochastic))
    return nullptr;
  if (kind < 0 || kind > 1 || dtype < 0 || dtype > 3 || outer < 0 || mid < 0 || channels <= 0 || cols <= 0 ||
      groups <= 0 || format < 0 || format > 1 || mode < 0 || mode > 2) {
    PyErr_SetString(PyExc_ValueError, "run_fp8(): kind, dtype, sizes or FP8 options out of range");
    return nullptr;
  }
  cpu::Job j{};
  j.op = int(op);
  j.dtype = int(dtype);
  j.slots = int(std::max<long long>(1, std::min<long long>(threads, 1024)));
  j.outer = outer;
  j.mid = mid;
  j.inner = 1;
  j.channels = channels;
  j.n = kind == cpu::kGated ? outer * 2 * mid : outer * mid;
  j.weight_len = size_of(args[8]);
  j.p0 = PyFloat_AsDouble(args[12]);
  j.p1 = PyFloat_AsDouble(args[13]);
  j.p2 = PyFloat_AsDouble(args[14]);
  j.seed = PyLong_AsUnsignedLongLongMask(args[15]);
  j.scale = PyFloat_AsDouble(args[16]);
  j.noise_seed = PyLong_AsUnsignedLongLongMask(args[17]);
  if (PyErr_Occurred()) return nullptr;
  j.amax_cols = cols;
  j.amax_groups = groups;
  j.format = int(format);
  j.amax_mode = int(mode);
  j.stochastic = int(stochastic != 0);
  const int item = kItemsize[dtype];
  const i64 out_n = kind == cpu::kGated ? j.n / 2 : j.n;
  const i64 segments = mode == 0 ? 1 : (out_n / cols) * groups;
  void *x, *q, *amax, *bias, *weight;
  if (!array_arg(args[4], "x", item, j.n, false, &x) || !array_arg(args[5], "q", 1, out_n, true, &q) ||
      !array_arg(args[6], "amax", 4, segments, true, &amax) || !array_arg(args[7], "bias", item, channels, false, &bias) ||
      !array_arg(args[8], "weight", item, j.weight_len, false, &weight))
    return nullptr;
  if (x == nullptr || q == nullptr || amax == nullptr || out_n % cols != 0 ||
      (weight != nullptr && j.weight_len != 1 && j.weight_len != channels)) {
    PyErr_SetString(PyExc_ValueError, "run_fp8(): missing x, q or amax, or inconsistent sizes");
    return nullptr;
  }
  j.x = x;
  j.out = q;
  j.q = static_cast<unsigned char*>(q);
  j.amax = static_cast<unsigned*>(amax);
  j.bias = bias;
  j.weight = weight;
  if (j.n == 0) Py_RETURN_NONE;
  return run_released(kind, j, "run_fp8");
}

// fp8_encode(v, q, format, stochastic, noise_seed): q[i] = fp8::encode(v[i]) for float64 v (tests)
PyObject* py_fp8_encode(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 5) {
    PyErr_Format(PyExc_TypeError, "fp8_encode() takes 5 arguments (%zd given)", nargs);
    return nullptr;
  }
  long long format, stochastic;
  if (!int_arg(args[2], "format", &format) || !int_arg(args[3], "stochastic", &stochastic)) return nullptr;
  const unsigned long long seed = PyLong_AsUnsignedLongLongMask(args[4]);
  if (PyErr_Occurred()) return nullptr;
  const i64 n = size_of(args[0]);
  void *v, *q;
  if (!array_arg(args[0], "v", 8, n, false, &v) || !array_arg(args[1], "q", 1, n, true, &q)) return nullptr;
  const act::fp8::Sink s{static_cast<unsigned char*>(q), nullptr, 1, 1, 1.0, seed, int(format), 0, int(stochastic != 0)};
  const double* src = static_cast<const double*>(v);
  for (i64 i = 0; i < n; ++i) s.y[i] = s.code(src[i], i);
  Py_RETURN_NONE;
}

PyObject* py_op_names(PyObject*, PyObject* arg) {
  const long kind = PyLong_AsLong(arg);
  if (kind == -1 && PyErr_Occurred()) return nullptr;
  const char* const* names = kind == cpu::kElementwise ? cpu::kElementwiseNames
                             : kind == cpu::kGated     ? cpu::kGatedNames
                             : kind == cpu::kRowwise   ? cpu::kRowwiseNames
                                                       : nullptr;
  if (names == nullptr) {
    PyErr_SetString(PyExc_ValueError, "op_names(kind): kind is 0 (elementwise), 1 (gated) or 2 (row-wise)");
    return nullptr;
  }
  Py_ssize_t count = 0;
  while (names[count] != nullptr) ++count;
  PyObject* out = PyTuple_New(count);
  if (out == nullptr) return nullptr;
  for (Py_ssize_t i = 0; i < count; ++i) {
    PyObject* s = PyUnicode_FromString(names[i]);
    if (s == nullptr) {
      Py_DECREF(out);
      return nullptr;
    }
    PyTuple_SET_ITEM(out, i, s);
  }
  return out;
}

// What each functor says about itself (functors.cuh), by op number: the tests compare these
// facts with the catalogue's records, so that a functor and its record cannot drift apart.
struct FunctorFacts {
  const char* name;
  bool from_y, weighted, heavy, nan_through, periodic, redo_in_double;
  int choice;
};
#define ACT_CPU_FACTS(name, functor)                                                                  \
  {#name, act::fn::functor::from_y, act::fn::functor::weighted, act::fn::functor::heavy,             \
   act::fn::functor::nan_through, act::fn::functor::periodic, act::fn::functor::redo_in_double,      \
   act::fn::functor::choice},
const FunctorFacts kElementwiseFacts[] = {ACT_CPU_ELEMENTWISE(ACT_CPU_FACTS){nullptr, false, false, false, false, false, false, -1}};
const FunctorFacts kGatedFacts[] = {ACT_CPU_GATED(ACT_CPU_FACTS){nullptr, false, false, false, false, false, false, -1}};
#undef ACT_CPU_FACTS

PyObject* py_functor_facts(PyObject*, PyObject* arg) {
  const long kind = PyLong_AsLong(arg);
  if (kind == -1 && PyErr_Occurred()) return nullptr;
  const FunctorFacts* facts = kind == cpu::kElementwise ? kElementwiseFacts : kind == cpu::kGated ? kGatedFacts : nullptr;
  if (facts == nullptr) {
    PyErr_SetString(PyExc_ValueError, "functor_facts(kind): kind is 0 (elementwise) or 1 (gated)");
    return nullptr;
  }
  Py_ssize_t count = 0;
  while (facts[count].name != nullptr) ++count;
  PyObject* out = PyTuple_New(count);
  if (out == nullptr) return nullptr;
  for (Py_ssize_t i = 0; i < count; ++i) {
    const FunctorFacts& f = facts[i];
    PyObject* d = Py_BuildValue("{s:s,s:O,s:O,s:O,s:O,s:O,s:O,s:i}", "name", f.name, "from_y", f.from_y ? Py_True : Py_False,
                                "weighted", f.weighted ? Py_True : Py_False, "heavy", f.heavy ? Py_True : Py_False,
                                "nan_through", f.nan_through ? Py_True : Py_False, "periodic", f.periodic ? Py_True : Py_False,
                                "redo_in_double", f.redo_in_double ? Py_True : Py_False, "choice", f.choice);
    if (d == nullptr) {
      Py_DECREF(out);
      return nullptr;
    }
    PyTuple_SET_ITEM(out, i, d);
  }
  return out;
}

PyObject* py_cpu_supports(PyObject*, PyObject*) {
  __builtin_cpu_init();
  const bool v4 = __builtin_cpu_supports("x86-64-v4");
  const bool v3 = __builtin_cpu_supports("x86-64-v3");
  if (v4) return Py_BuildValue("(sss)", "avx512", "avx2", "baseline");
  if (v3) return Py_BuildValue("(ss)", "avx2", "baseline");
  return Py_BuildValue("(s)", "baseline");
}

PyObject* py_math(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "math(name, x, out) takes 3 arguments");
    return nullptr;
  }
  const char* name = PyUnicode_AsUTF8(args[0]);
  if (name == nullptr) return nullptr;
  int fn = -1;
  for (int k = 0; cpu::kMathNames[k] != nullptr; ++k)
    if (strcmp(name, cpu::kMathNames[k]) == 0) fn = k;
  if (fn < 0 || !PyArray_Check(args[1]) || !PyArray_Check(args[2])) {
    PyErr_Format(PyExc_ValueError, "math(): unknown function %s, or x/out not arrays", name);
    return nullptr;
  }
  PyArrayObject* x = reinterpret_cast<PyArrayObject*>(args[1]);
  const int item = int(PyArray_ITEMSIZE(x));
  void *xd, *yd;
  if ((item != 4 && item != 8) || !array_arg(args[1], "x", item, PyArray_SIZE(x), false, &xd) ||
      !array_arg(args[2], "out", item, PyArray_SIZE(x), true, &yd)) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "math(): x must be float32 or float64");
    return nullptr;
  }
  const i64 n = PyArray_SIZE(x);
  if (item == 4) {
    cpu::math_loop(fn, static_cast<const float*>(xd), static_cast<float*>(yd), n);
  } else {
    cpu::math_loop(fn, static_cast<const double*>(xd), static_cast<double*>(yd), n);
  }
  Py_RETURN_NONE;
}

PyObject* py_sigmoid_mismatches(PyObject*, PyObject*) { return PyLong_FromLong(cpu::sigmoid_mismatches()); }

PyMethodDef kMethods[] = {
    {"run", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_run)), METH_FASTCALL, kRunDoc},
    {"run_fp8", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_run_fp8)), METH_FASTCALL, kRunFp8Doc},
    {"fp8_encode", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_fp8_encode)), METH_FASTCALL,
     "fp8_encode(v, q, format, stochastic, noise_seed): the FP8 conversion alone (tests)"},
    {"op_names", py_op_names, METH_O, "op_names(kind) -> names of the ops of a kind, by op number"},
    {"functor_facts", py_functor_facts, METH_O,
     "functor_facts(kind) -> each op's functor facts (from_y, weighted, heavy, choice, ...), by op number"},
    {"cpu_supports", py_cpu_supports, METH_NOARGS, "the instruction sets of the engine this CPU runs, best first"},
    {"math", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_math)), METH_FASTCALL,
     "math(name, x, out): a math primitive over a float32/float64 array (tests)"},
    {"sigmoid_mismatches", py_sigmoid_mismatches, METH_NOARGS,
     "inputs where the one-exp sigmoid differs from the shared template (must be 0)"},
    {nullptr, nullptr, 0, nullptr},
};

#define ACT_STR2(x) #x
#define ACT_STR(x) ACT_STR2(x)
#define ACT_CAT2(a, b) a##b
#define ACT_CAT(a, b) ACT_CAT2(a, b)

PyModuleDef kModule = {
    PyModuleDef_HEAD_INIT, ACT_STR(ACT_ENGINE_MODULE),
    "The compiled CPU engine of activations, built for one instruction set (see ISA).", -1, kMethods,
    nullptr, nullptr, nullptr, nullptr,
};

}  // namespace

PyMODINIT_FUNC ACT_CAT(PyInit_, ACT_ENGINE_MODULE)(void) {
  import_array();
  static bool forks_handled = false;
  if (!forks_handled) {
    pthread_atfork(cpu::atfork_prepare, cpu::atfork_parent, cpu::atfork_child);
    forks_handled = true;
  }
  PyObject* m = PyModule_Create(&kModule);
  if (m == nullptr) return nullptr;
  if (PyModule_AddStringConstant(m, "ISA", ACT_ENGINE_ISA) < 0 || PyModule_AddIntConstant(m, "ABI", 1) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
