"""Every Numba kernel compiles to sm_90 PTX without a GPU, float32 kernels hold no
float64 instruction, and ptxas assembles them without register spills.

``check_numba_kernels`` cannot run next to the simulator (tests/conftest.py
switches it on without a GPU): it re-runs itself in a subprocess without
NUMBA_ENABLE_CUDASIM.  It needs nvidia-cuda-nvrtc 13.0 (a test dependency)
and, for registers and spills, ptxas 13.0.  The test compiles a representative
subset (``_numba_check.quick_specs``: every activation in float32, a few in
every dtype, the helper kernels); ``ACTIVATIONS_NUMBA_PTX_ALL=1`` checks all
354.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

numba = pytest.importorskip("numba")
pytest.importorskip("numba.cuda")

from activations.backends.numba import check as C  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _no_sim_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@pytest.fixture(scope="module")
def records():
    from activations.backends.numba import kernels as K

    specs = K.all_specs() if os.environ.get("ACTIVATIONS_NUMBA_PTX_ALL") == "1" else C.quick_specs()
    return C.check_numba_kernels((9, 0), specs, jobs=min(4, os.cpu_count() or 1))


def test_kernels_compile_for_sm90_without_float64_or_spills(records):
    bad = [r for r in records if not r.ok]
    assert not bad, "\n".join(f"{r.name} {r.dtype} {r.variant}: {r.message}" for r in bad[:20])
    assert not any(r.has_f64_in_f32_kernel for r in records)
    if C._find_ptxas() is not None:
        assert all(r.registers is not None and r.spills == 0 for r in records)
        assert max(r.registers for r in records) <= 128, "a kernel needs more than 128 registers: occupancy"


def test_the_subset_covers_every_activation_and_dtype(records):
    import activations

    seen = {(r.name, r.dtype, r.variant) for r in records}
    for name in activations.names():
        for variant in ("fwd", "bwd"):
            assert (name, "f32", variant) in seen, f"{name} {variant} not compiled"
    for dt in ("f16", "bf16", "f64"):
        assert any(r.dtype == dt and r.variant == "bwd" for r in records), f"no {dt} kernel compiled"


def test_float64_promotion_is_caught():
    # compile_ptx needs a process without the simulator
    code = textwrap.dedent(
        """
        import numba, math
        from numba import cuda
        from numba.cuda import types as t
        from activations.backends.numba.check import f64_instructions

        def bad(x, out):
            i = cuda.grid(1)
            if i < x.size:
                out[i] = x[i] * 0.5 + math.exp(x[i])   # 0.5 is a float64 literal

        half = numba.float32(0.5)

        def good(x, out):
            i = cuda.grid(1)
            if i < x.size:
                out[i] = x[i] * half + math.exp(x[i])

        sig = (t.float32[::1], t.float32[::1])
        print(f64_instructions(cuda.compile_ptx(bad, sig, cc=(9, 0))[0]),
              f64_instructions(cuda.compile_ptx(good, sig, cc=(9, 0))[0]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_no_sim_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    bad, good = (int(v) for v in proc.stdout.split())
    assert bad > 0 and good == 0, f"float64 instructions: bad kernel {bad}, clean kernel {good}"


def test_ptx_text_helpers():
    ptx = textwrap.dedent(
        """
        .version 9.0
        .target sm_90
        .reg .f64 %fd<3>;
        \tcvt.rn.f64.s64 \t%fd1, %rd9;
        \tmul.f64 \t%fd2, %fd1, 0d3BF921FB54442D19;
        \tcvt.rn.f32.f64 \t%f4, %fd2;
        \t@%p1 add.f64 \t%fd3, %fd2, %fd2;
        \tadd.f32 \t%f5, %f4, %f4;
        """
    )
    assert C.ptx_version(ptx) == (9, 0)
    # libdevice's sinf reduction (3 instructions) is not counted; the add.f64 is
    assert C.f64_instructions(ptx) == 1
