// Everything a generated module needs: the generated part is a list of ACT_* entry macros.
#pragma once
#include "common.cuh"
#include "elementwise.cuh"
#include "gated.cuh"
#include "quantize.cuh"
#include "reduce.cuh"
#include "softmax.cuh"
