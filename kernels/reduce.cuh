// Column sums of a (rows, cols) array: dbias (from dx or dz) and prelu's dweight (from per-element terms).
//
// Block (tx, ty), tx * ty = 256: tx adjacent columns (coalesced), ty rows at a time, rows strided by
// ty * gridDim.y.  Each block writes one partial row dst[blockIdx.y, :]; with gridDim.y > 1 the
// caller sums the partials with a second launch.  Accumulates in the compute type (float for
// 16-bit data), as docs/semantics.md asks of reductions.
#pragma once
#include "common.cuh"

namespace act {

template <class TIn, class TOut>
__device__ __forceinline__ void column_sums(const TIn* src, TOut* dst, i64 rows, i64 cols) {
  using C = compute_t<TIn>;
  __shared__ C partial[256];
  const i64 col = i64(blockIdx.x) * blockDim.x + threadIdx.x;
  C acc = C(0);
  if (col < cols)
    for (i64 r = i64(blockIdx.y) * blockDim.y + threadIdx.y; r < rows; r += i64(gridDim.y) * blockDim.y)
      acc += load(src[r * cols + col]);
  partial[threadIdx.y * blockDim.x + threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    for (unsigned y = 1; y < blockDim.y; ++y) acc += partial[y * blockDim.x + threadIdx.x];
    dst[i64(blockIdx.y) * cols + col] = Storage<TOut>::store(acc);
  }
}

}  // namespace act

// act_colsum_partial_<dt>(src, dst, rows, cols): compute type in and out (one row of partial sums per
// block row); act_colsum_final_<dt>: compute type in, the dtype out.  Sources are compute-typed: dx
// itself for f32/f64, float32 terms for 16-bit data (dz, prelu's dweight terms).
#define ACT_COLSUM_ENTRY(STAGE, TOUT, DT)                                                              \
  extern "C" __global__ void __launch_bounds__(256, 4) act_colsum_##STAGE##_##DT(                     \
      const act::compute_t<ACT_STORAGE_##DT>* src, TOUT* dst, act::i64 rows, act::i64 cols) {          \
    act::column_sums(src, dst, rows, cols);                                                            \
  }                                                                                                    \
  ACT_ENTRY_HOOK(act_colsum_##STAGE##_##DT)
#define ACT_COLSUM(DT)                                                                                 \
  ACT_COLSUM_ENTRY(partial, act::compute_t<ACT_STORAGE_##DT>, DT)                                     \
  ACT_COLSUM_ENTRY(final, ACT_STORAGE_##DT, DT)
