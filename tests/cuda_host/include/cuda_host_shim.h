// Runs the CUDA C kernels of kernels/ on the CPU, unchanged, for the tests (g++ -std=c++20).
//
// Every CUDA thread of a block is a fiber on the one calling OS thread.  A scheduler
// runs the ready fibers in turn; __syncthreads() and __syncwarp() park a fiber, and the scheduler
// releases a warp once all its live lanes are parked at __syncwarp, the block once all its live
// threads are parked at __syncthreads.  Anything else (divergent barriers, a warp operation whose
// mask names a lane that has exited) is reported as an error of the launch instead of hanging.
// Blocks of a grid run one after another, so `__shared__` can be a function-local static.
// Dynamic shared memory (`extern __shared__`) is rewritten by the build into a call to
// act_host::dynamic_smem(); the buffer is filled with 0xff bytes (NaN) at every block, so a read
// of a slot nobody wrote shows up in the results.
#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <ucontext.h>

// CUDA's normal CDF (glibc has none): Phi(x) = erfc(-x / sqrt2) / 2.
inline float normcdff(float x) { return 0.5f * erfcf(-0.70710678118654752440f * x); }
inline double normcdf(double x) { return 0.5 * erfc(-0.70710678118654752440 * x); }
// CUDA's fast float division (MUFU.RCP and a multiply) is within 2 ulps: the harness returns the
// quotient 2 ulps away from zero, so that the kernels are tested with the worst of it
inline float __fdividef(float a, float b) {
  const float q = a / b;
  if (!(std::fabs(q) <= 3.0e38f) || q == 0.0f) return q;
  unsigned u;
  std::memcpy(&u, &q, 4);
  u += 2;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__ static const
#define __align__(n) alignas(n)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

inline dim3 threadIdx, blockIdx, blockDim, gridDim;  // set by the scheduler at every switch
constexpr int warpSize = 32;

namespace act_host {

// ------------------------------------------------------------------ contexts
// A context switch is all a barrier costs, and the tests make millions of them.  On x86-64 a
// switch saves the six callee-saved registers on the old stack and swaps stack pointers
// (act_host_switch, in launcher.cpp); glibc's swapcontext also saves the floating-point
// environment and the signal mask (a system call), which made the harness several times slower.
#if defined(__x86_64__)
extern "C" void act_host_switch(void** save_sp, void* load_sp);
struct Context {
  void* sp = nullptr;
};
inline void switch_context(Context& from, Context& to) { act_host_switch(&from.sp, to.sp); }
inline void start_context(Context& c, unsigned char* stack, std::size_t size, void (*entry)()) {
  // The first switch pops six zero registers and "returns" into entry with rsp = 8 mod 16, as
  // after a call.  entry never returns.
  void** top = reinterpret_cast<void**>((reinterpret_cast<std::uintptr_t>(stack) + size) & ~std::uintptr_t(15));
  top -= 2;
  top[0] = reinterpret_cast<void*>(entry);
  top[1] = nullptr;
  top -= 6;
  for (int i = 0; i < 6; ++i) top[i] = nullptr;
  c.sp = top;
}
#else
struct Context {
  ucontext_t uc;
};
inline void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
inline void start_context(Context& c, unsigned char* stack, std::size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

enum class State : unsigned char { Ready, AtBlockBarrier, AtWarpBarrier, Done };

struct Fiber {
  Context ctx;
  State state;
  unsigned warp_mask;  // mask of the warp operation the fiber waits in
  dim3 tid;
};

struct Launch {
  std::vector<Fiber> fibers;
  std::vector<unsigned long long> lanes;  // one exchange slot per thread (warp shuffles)
  std::vector<unsigned long long> smem;   // dynamic shared memory
  Context scheduler;
  unsigned current = 0;
  std::string error;
  void (*body)(void*) = nullptr;
  void* closure = nullptr;
};

inline Launch* g_launch = nullptr;

inline void* dynamic_smem() { return g_launch->smem.data(); }

// Park the running fiber and return to the scheduler.
inline void park(State s, unsigned mask = 0xffffffffu) {
  Fiber& f = g_launch->fibers[g_launch->current];
  f.state = s;
  f.warp_mask = mask;
  switch_context(f.ctx, g_launch->scheduler);
}

// Stop the launch with a message: the fiber never resumes (its stack is simply dropped).
[[noreturn]] inline void fail(const std::string& what) {
  g_launch->error = what + " (block " + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," +
                    std::to_string(blockIdx.z) + ", thread " + std::to_string(g_launch->current) + ")";
  park(State::Done);
  __builtin_unreachable();
}

// Every lane publishes its value, the warp meets, each lane reads its source lane, the warp meets
// again (so that no slot is overwritten before everyone has read it).
template <class T, class Src> inline T warp_exchange(unsigned mask, T v, Src source_lane) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move at most 8 bytes");
  Launch& L = *g_launch;
  const unsigned me = L.current, base = me & ~31u, lane = me & 31u;
  unsigned long long slot = 0;
  std::memcpy(&slot, &v, sizeof(T));
  L.lanes[me] = slot;
  park(State::AtWarpBarrier, mask);
  const unsigned src = source_lane(lane);
  if (base + src >= L.fibers.size() || !(mask >> src & 1u))
    fail("shuffle reads lane " + std::to_string(src) + ", which is outside the warp or its mask");
  T out;
  std::memcpy(&out, &L.lanes[base + src], sizeof(T));
  park(State::AtWarpBarrier, mask);
  return out;
}

}  // namespace act_host

inline void __syncthreads() { act_host::park(act_host::State::AtBlockBarrier); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { act_host::park(act_host::State::AtWarpBarrier, mask); }

// Source lanes as the CUDA programming guide defines them for sub-warp widths: a lane outside its
// own width-segment (or past it) reads its own value.
template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return act_host::warp_exchange(mask, v, [=](unsigned l) {
    return (l & ~unsigned(width - 1)) + (unsigned(src) & unsigned(width - 1));
  });
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return act_host::warp_exchange(mask, v, [=](unsigned l) {
    const unsigned s = l ^ unsigned(lane_mask);
    return (s & ~unsigned(width - 1)) == (l & ~unsigned(width - 1)) ? s : l;
  });
}
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return act_host::warp_exchange(mask, v, [=](unsigned l) {
    const unsigned s = l + delta;
    return (s & ~unsigned(width - 1)) == (l & ~unsigned(width - 1)) ? s : l;
  });
}
template <class T> inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return act_host::warp_exchange(mask, v, [=](unsigned l) {
    return (l & unsigned(width - 1)) >= delta ? l - delta : l;
  });
}

// One OS thread runs every fiber, so plain read-modify-write is atomic here.
template <class T> inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <class T> inline T atomicMax(T* p, T v) {
  const T old = *p;
  *p = old < v ? v : old;
  return old;
}
template <class T> inline T atomicMin(T* p, T v) {
  const T old = *p;
  *p = v < old ? v : old;
  return old;
}
template <class T> inline T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}
template <class T> inline T atomicCAS(T* p, T compare, T v) {
  const T old = *p;
  if (old == compare) *p = v;
  return old;
}

inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }
template <class T> inline T __ldg(const T* p) { return *p; }

namespace act_host {

// ------------------------------------------------------------------ scheduler
constexpr std::size_t kStack = 64 * 1024;

inline std::vector<unsigned char>& stack_pool() {
  static std::vector<unsigned char> pool;
  return pool;
}

inline void fiber_main() {
  g_launch->body(g_launch->closure);
  park(State::Done);
}

inline bool run_block(Launch& L) {
  const unsigned n = unsigned(L.fibers.size());
  unsigned char* stacks = stack_pool().data();
  for (unsigned t = 0; t < n; ++t) {
    Fiber& f = L.fibers[t];
    start_context(f.ctx, stacks + std::size_t(t) * kStack, kStack, fiber_main);
    f.state = State::Ready;
    f.tid = {t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y)};
  }
  std::memset(L.smem.data(), 0xff, L.smem.size() * sizeof(L.smem[0]));
  for (;;) {
    bool ran = false;
    for (unsigned t = 0; t < n; ++t) {
      if (L.fibers[t].state != State::Ready) continue;
      L.current = t;
      threadIdx = L.fibers[t].tid;
      switch_context(L.scheduler, L.fibers[t].ctx);
      if (!L.error.empty()) return false;
      ran = true;
    }
    // Release every warp whose live lanes all wait at a warp operation.
    bool released = false;
    for (unsigned w = 0; w < n; w += 32) {
      const unsigned end = w + 32 < n ? w + 32 : n;
      bool any = false, all = true;
      unsigned exited = 0;
      for (unsigned t = w; t < end; ++t) {
        const State s = L.fibers[t].state;
        if (s == State::Done) exited |= 1u << (t - w);
        else if (s == State::AtWarpBarrier) any = true;
        else all = false;
      }
      if (!any || !all) continue;
      for (unsigned t = w; t < end; ++t) {
        Fiber& f = L.fibers[t];
        if (f.state != State::AtWarpBarrier) continue;
        if (f.warp_mask & exited) {
          L.error = "warp operation in warp " + std::to_string(w / 32) + " names lanes that have exited (mask " +
                    std::to_string(f.warp_mask) + ")";
          return false;
        }
        f.state = State::Ready;
      }
      released = true;
    }
    if (released || ran) continue;
    bool all_done = true, all_block = true;
    for (const Fiber& f : L.fibers) {
      all_done &= f.state == State::Done;
      all_block &= f.state == State::Done || f.state == State::AtBlockBarrier;
    }
    if (all_done) return true;
    if (all_block) {
      for (Fiber& f : L.fibers)
        if (f.state == State::AtBlockBarrier) f.state = State::Ready;
      continue;
    }
    L.error = "deadlock: threads wait at different barriers (divergent __syncthreads/__syncwarp)";
    return false;
  }
}

// Run `body` as the kernel over the whole grid; "" on success, else what went wrong.
template <class Body> std::string run_grid(dim3 grid, dim3 block, std::size_t smem_bytes, Body& body) {
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || threads > 1024) return "block of " + std::to_string(threads) + " threads";
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return "empty grid";
  Launch L;
  L.fibers.resize(threads);
  L.lanes.assign(threads, 0);
  L.smem.assign((smem_bytes + 7) / 8 + 1, 0);
  L.body = [](void* p) { (*static_cast<Body*>(p))(); };
  L.closure = &body;
  if (stack_pool().size() < threads * kStack) stack_pool().resize(threads * kStack);
  Launch* outer = g_launch;
  g_launch = &L;
  blockDim = block;
  gridDim = grid;
  bool ok = true;
  for (unsigned z = 0; ok && z < grid.z; ++z)
    for (unsigned y = 0; ok && y < grid.y; ++y)
      for (unsigned x = 0; ok && x < grid.x; ++x) {
        blockIdx = {x, y, z};
        ok = run_block(L);
      }
  g_launch = outer;
  return L.error;
}

// ------------------------------------------------------------------ registry
// One letter per parameter type, so that Python can check the arguments it packs for a kernel
// (the same packing a GPU launch gets) against the kernel's real signature.
template <class T> constexpr char type_code() {
  if constexpr (std::is_pointer_v<T>) return 'p';
  else if constexpr (std::is_same_v<T, float>) return 'f';
  else if constexpr (std::is_same_v<T, double>) return 'd';
  else if constexpr (std::is_same_v<T, int>) return 'i';
  else if constexpr (std::is_same_v<T, unsigned>) return 'I';
  else if constexpr (std::is_same_v<T, long long>) return 'q';
  else if constexpr (std::is_same_v<T, unsigned long long>) return 'Q';
  else static_assert(sizeof(T) == 0, "kernel parameter type without a code");
}

using Launcher = std::string (*)(void* kernel, dim3, dim3, std::size_t, void**);

struct Entry {
  const char* name;
  std::string signature;
  void* kernel;
  Launcher launch;
};

inline std::vector<Entry>& registry() {
  static std::vector<Entry> entries;
  return entries;
}

template <class... P, std::size_t... I>
std::string launch_packed(void (*k)(P...), dim3 g, dim3 b, std::size_t smem, void** args, std::index_sequence<I...>) {
  std::tuple<std::remove_cv_t<P>...> values{*static_cast<std::remove_cv_t<P>*>(args[I])...};
  auto body = [&] { std::apply(k, values); };
  return run_grid(g, b, smem, body);
}

template <class... P> bool register_entry(const char* name, void (*k)(P...)) {
  Launcher launch = [](void* kernel, dim3 g, dim3 b, std::size_t smem, void** args) {
    return launch_packed(reinterpret_cast<void (*)(P...)>(kernel), g, b, smem, args, std::index_sequence_for<P...>{});
  };
  registry().push_back({name, std::string{type_code<P>()...}, reinterpret_cast<void*>(k), launch});
  return true;
}

}  // namespace act_host

#define ACT_ENTRY_HOOK(entry) \
  [[maybe_unused]] static const bool act_host_registered_##entry = ::act_host::register_entry(#entry, &entry);
