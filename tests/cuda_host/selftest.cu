// Kernels that check the shim itself (tests/test_cuda_host.py::test_shim_*): warp shuffles with
// sub-warp widths, dynamic shared memory, and the errors a GPU would turn into hangs or garbage.
#include "cuda_host_shim.h"

// out[4 * 64]: for each thread of a 64-thread block, the four shuffles with width 8.
extern "C" __global__ void shim_shuffles(int* out) {
  const int v = 100 + int(threadIdx.x);
  const int t = threadIdx.x;
  out[4 * t + 0] = __shfl_sync(0xffffffffu, v, 3, 8);
  out[4 * t + 1] = __shfl_xor_sync(0xffffffffu, v, 5, 8);
  out[4 * t + 2] = __shfl_down_sync(0xffffffffu, v, 3, 8);
  out[4 * t + 3] = __shfl_up_sync(0xffffffffu, v, 3, 8);
}
ACT_ENTRY_HOOK(shim_shuffles)

// Reverses a block's values through dynamic shared memory; out gets blockDim.x values per block.
extern "C" __global__ void shim_dynamic_smem(const float* x, float* out) {
  extern __shared__ float buf[];
  const unsigned t = threadIdx.x, n = blockDim.x, base = blockIdx.x * n;
  buf[t] = x[base + t];
  __syncthreads();
  out[base + t] = buf[n - 1 - t];
}
ACT_ENTRY_HOOK(shim_dynamic_smem)

// Odd threads wait at __syncthreads, even ones at __syncwarp: a deadlock on a GPU.
extern "C" __global__ void shim_divergent_barrier() {
  if (threadIdx.x % 2) {
    __syncthreads();
  } else {
    __syncwarp();
  }
}
ACT_ENTRY_HOOK(shim_divergent_barrier)

// A full-mask shuffle after lane 5 has returned: undefined on a GPU.
extern "C" __global__ void shim_shuffle_after_exit(float* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, float(threadIdx.x), 1);
}
ACT_ENTRY_HOOK(shim_shuffle_after_exit)

// Threads that return before a __syncthreads do not hold the others back (as on the GPU).
extern "C" __global__ void shim_early_exit(int* out) {
  if (threadIdx.x >= 40) return;
  __shared__ int count;
  if (threadIdx.x == 0) count = 0;
  __syncthreads();
  atomicAdd(&count, 1);
  __syncthreads();
  out[threadIdx.x] = count;
}
ACT_ENTRY_HOOK(shim_early_exit)

// The 16-bit near-tie test of store_once (kernels/functors.cuh) beside the float formulation it
// replaced (T's rounding of r - d and r + d compared, d = |r| 2^-19 + 2^-60, fused or not): bit 0
// of out[i] is near_tie<T>(r[i]), bit 1 the old test.  One thread walks the array.
#include "functors.cuh"
template <class T> __device__ void near_tie_pair(const float* r, unsigned char* out, long long n) {
  for (long long i = 0; i < n; ++i) {
    const float v = r[i];
    volatile float scaled = act::m::abs(v) * 0x1p-19f;  // unfused, as without contraction
    bool old = false;
    for (const float d : {fmaf(act::m::abs(v), 0x1p-19f, 0x1p-60f), scaled + 0x1p-60f})
      old = old || (v == v && act::load(act::store<T>(v - d)) != act::load(act::store<T>(v + d)));
    out[i] = (act::near_tie<T>(v) ? 1 : 0) | (old ? 2 : 0);
  }
}
extern "C" __global__ void shim_near_tie_f16(const float* r, unsigned char* out, long long n) { near_tie_pair<__half>(r, out, n); }
ACT_ENTRY_HOOK(shim_near_tie_f16)
extern "C" __global__ void shim_near_tie_bf16(const float* r, unsigned char* out, long long n) {
  near_tie_pair<__nv_bfloat16>(r, out, n);
}
ACT_ENTRY_HOOK(shim_near_tie_bf16)
