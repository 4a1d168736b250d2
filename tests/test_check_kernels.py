"""`python -m activations check-kernels`: every CUDA C kernel compiles for sm_80 and sm_90 with NVRTC,
without a GPU, and none spills registers.  The full run (one test) is the CI gate; the others check
the pieces it relies on (log parsing, error and spill detection, the SASS check) on small inputs.
"""
from __future__ import annotations

import argparse
import json

import pytest

from activations.backends import _cuda_source
from activations.cli import check_kernels_cmd as ck

pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC (cuda-bindings) is not installed")
if not _cuda_source.cuda_include_dirs():
    pytest.skip("CUDA headers (nvidia-cuda-runtime) are not installed", allow_module_level=True)


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    ck.add_arguments(parser)
    args = parser.parse_args(["--checker", "cuda-c"])  # the Numba kernels: tests/test_numba_ptx.py
    for k, v in kw.items():
        setattr(args, k, v)
    return args


LOG = """\
ptxas info    : 12 bytes gmem
ptxas info    : Compiling entry function 'act_snake_fwd_f64' for 'sm_90'
ptxas info    : Function properties for act_snake_fwd_f64
ptxas         .     40 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 40 registers, used 0 barriers, 40 bytes cumulative stack size
ptxas info    : Compile time = 110.5 ms
ptxas info    : Function properties for __internal_trig_reduction_slowpathd
ptxas         .     16 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Compiling entry function 'act_softmax_fwd_block_f32' for 'sm_90'
ptxas info    : Function properties for act_softmax_fwd_block_f32
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 31 registers, used 1 barriers, 384 bytes smem\x00"""


def test_parse_ptxas_log():
    snake, softmax = ck.parse_ptxas_log(LOG, "cuda-c", "m")
    assert (snake.kernel, snake.arch, snake.registers, snake.stack, snake.shared) == ("act_snake_fwd_f64", "sm_90", 40, 40, 0)
    assert (softmax.registers, softmax.shared, softmax.spills) == (31, 384, False)
    # a spilling helper called from an entry counts against that entry
    assert snake.spills and (snake.spill_stores, snake.spill_loads) == (4, 4)


def test_compile_errors_are_reported():
    ok, log, cubin = ck.compile_cuda('extern "C" __global__ void k(float* x) { x[0] = not_declared; }', "sm_90")
    assert not ok and "not_declared" in log and cubin == b""


def test_spills_are_detected():
    # 64 live values with at most 32 registers (1024 threads, 2 blocks per SM): ptxas must spill
    src = """
    extern "C" __global__ void __launch_bounds__(1024, 2) squeeze(const float* x, float* y) {
      float v[64];
    #pragma unroll
      for (int i = 0; i < 64; ++i) v[i] = x[i * blockDim.x + threadIdx.x];
      float s = 0;
    #pragma unroll
      for (int i = 0; i < 64; ++i) s += v[i] * v[63 - i] + v[(i * 7) % 64];
      y[threadIdx.x] = s;
    }"""
    ok, log, _ = ck.compile_cuda(src, "sm_90")
    (report,) = ck.parse_ptxas_log(log, "test", "squeeze")
    assert ok and report.registers <= 32 and report.spills


needs_cuobjdump = pytest.mark.skipif(ck.cuobjdump() is None, reason="cuobjdump is not installed")


@needs_cuobjdump
def test_sass_check_notices_a_missing_vector_path():
    ok, _, cubin = ck.compile_cuda(_cuda_source.KernelModule("softmax", "f32", "warp4x32").source(), "sm_90")
    errors = ck.check_vector_sass(cubin, "softmax")  # row kernels load scalars
    assert ok and errors and all("LDG.E.128" in e or "STG.E.128" in e for e in errors)


@needs_cuobjdump
def test_vector_path_uses_128_bit_loads(capsys):
    """Disassembly (one cuobjdump per module, so a sample): elementwise and gated, every dtype."""
    assert ck.run(_args(only=["gelu", "swiglu"], arch=["sm_90"], sass=True, summary=True)) == 0, \
        capsys.readouterr().err


def test_unknown_module_fails(capsys):
    assert ck.run(_args(only=["no_such_kernel"])) == 1
    assert "unknown module" in capsys.readouterr().err


def test_every_kernel_compiles_without_spills(tmp_path, capsys):
    """The CI gate: all modules, every dtype, sm_80 and sm_90."""
    out = tmp_path / "kernels.json"
    rc = ck.run(_args(json=str(out), summary=True))
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert rc == 0, text[-3000:] + "\n".join(data["errors"])
    expected = {e for m in _cuda_source.all_modules() for e in m.entries()}
    seen = {(k["kernel"], k["arch"]) for k in data["kernels"]}
    assert seen == {(e, a) for e in expected for a in ck.DEFAULT_ARCHS}
    assert data["summary"]["spilling_kernels"] == [] and data["errors"] == []
    assert all(k["registers"] > 0 for k in data["kernels"])
    assert "spills: none" in text
