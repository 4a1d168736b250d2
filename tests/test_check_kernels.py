"""`python -m activations check-kernels`: every CUDA C kernel compiles for sm_80 and sm_90 with NVRTC,
without a GPU, and none spills registers.  The full run (one test) is the CI gate; the others check
the pieces it relies on (log parsing, error and spill detection, the SASS check) on small inputs.
"""
from __future__ import annotations

import argparse
import json

import pytest

from activations.backends.cuda import source as _cuda_source
from activations.cli import check_kernels_cmd as cmd
from activations.tools import check_kernels as ck

pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC (cuda-bindings) is not installed")
if not _cuda_source.cuda_include_dirs():
    pytest.skip("CUDA headers (nvidia-cuda-runtime) are not installed", allow_module_level=True)


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
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
    assert cmd.run(_args(only=["gelu", "swiglu"], arch=["sm_90"], sass=True, summary=True)) == 0, \
        capsys.readouterr().err


def test_unknown_module_fails(capsys):
    assert cmd.run(_args(only=["no_such_kernel"])) == 1
    assert "unknown module" in capsys.readouterr().err


def test_every_kernel_compiles_without_spills(tmp_path, capsys):
    """The CI gate: all modules, every dtype, sm_80 and sm_90."""
    out = tmp_path / "kernels.json"
    rc = cmd.run(_args(json=str(out), summary=True, no_model=True))
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert rc == 0, text[-3000:] + "\n".join(data["errors"])
    expected = {e for m in _cuda_source.all_modules() for e in m.entries()}
    seen = {(k["kernel"], k["arch"]) for k in data["kernels"]}
    assert seen == {(e, a) for e in expected for a in ck.DEFAULT_ARCHS}
    assert data["summary"]["spilling_kernels"] == [] and data["errors"] == []
    assert all(k["registers"] > 0 for k in data["kernels"])
    assert "spills: none" in text


# ------------------------------------------------------------ the performance model
from activations.tools import perf_model as pm  # noqa: E402

#: a loop (0x30..0x140) with a divergent branch (both sides count), a branch on a kernel argument
#: (uniform: the cheaper side counts) and a slow-path CALL stub (not counted)
SYNTHETIC_SASS = """
        /*0000*/                   S2R R0, SR_TID.X ;
        /*0010*/                   LDC R2, c[0x0][0x210] ;
        /*0020*/                   ISETP.NE.AND P1, PT, R2, RZ, PT ;
        /*0030*/                   LDG.E.128 R4, desc[UR4][R8.64] ;
        /*0040*/                   FSETP.GT.AND P0, PT, R4, RZ, PT ;
        /*0050*/               @P0 BRA 0x80 ;
        /*0060*/                   FMUL R4, R4, R4 ;
        /*0070*/                   FMUL R4, R4, R4 ;
        /*0080*/              @!P1 BRA 0xc0 ;
        /*0090*/                   FADD R4, R4, R2 ;
        /*00a0*/                   FADD R4, R4, R2 ;
        /*00b0*/                   FADD R4, R4, R2 ;
        /*00c0*/                   FCHK P2, R4, R5 ;
        /*00d0*/              @!P2 BRA 0x100 ;
        /*00e0*/                   CALL.REL.NOINC 0x200 ;
        /*00f0*/                   BRA 0x100 ;
        /*0100*/                   MUFU.EX2 R4, R4 ;
        /*0110*/                   STG.E.128 desc[UR4][R10.64], R4 ;
        /*0120*/                   IADD3 R8, R8, 0x10, RZ ;
        /*0130*/                   ISETP.GE.AND P3, PT, R8, R3, PT ;
        /*0140*/              @!P3 BRA 0x30 ;
        /*0150*/                   EXIT ;
        /*0160*/                   BRA 0x160 ;
        /*0200*/                   RET.REL.NODEC R20 0x0 ;
"""


def test_model_counts_the_common_path_of_the_main_loop():
    (loop,) = pm.element_loops(SYNTHETIC_SASS)
    # 0x30-0x80 (6) + 0xc0, 0xd0 + 0x100-0x140 (5): the uniform FADDs and the CALL stub are out
    assert (loop.count, loop.sfu, loop.global_bytes, loop.wide) == (13, 1, 16, True)
    shape = pm.KernelShape("elementwise", 4, arrays=1, moved_bytes=8, useful_bytes=8, threads=256)
    p = pm.predict(SYNTHETIC_SASS, shape, registers=32)
    assert p.instructions_per_element == 13 / 4 and p.sfu_per_element == 1 / 4
    assert p.resident_threads == 2048 and p.loads_in_flight_bytes_per_sm == 16 * 2048
    assert p.predicted_h100_fraction == 1.0 and p.bound == "memory" and p.vector_loads


def test_model_a_varying_branch_counts_both_sides():
    # the bias test on a loaded value instead of a kernel argument: the FADDs now count
    sass = SYNTHETIC_SASS.replace("LDC R2, c[0x0][0x210]", "LDG.E R2, desc[UR4][R12.64]")
    (loop,) = pm.element_loops(sass)
    assert loop.count == 16


#: a main loop (0x30..0x110) whose slow path for huge arguments (0x60..0xc0, sin's Payne-Hanek
#: reduction) holds a loop of its own over a table: that loop must neither be taken for the element
#: loop nor counted on its common path
SLOW_PATH_LOOP_SASS = """
        /*0000*/                   S2R R0, SR_TID.X ;
        /*0010*/                   LDC R2, c[0x0][0x210] ;
        /*0020*/                   MOV R3, RZ ;
        /*0030*/                   LDG.E.128 R4, desc[UR4][R8.64] ;
        /*0040*/                   FSETP.GT.AND P0, PT, |R4|, 105615, PT ;
        /*0050*/              @!P0 BRA 0xd0 ;
        /*0060*/                   IADD3 R12, R12, 0x1, RZ ;
        /*0070*/                   LDG.E.CONSTANT R13, desc[UR4][R14.64] ;
        /*0080*/                   IMAD.WIDE.U32 R16, R13, R4, R16 ;
        /*0090*/                   ISETP.NE.AND P1, PT, R12, 0x6, PT ;
        /*00a0*/               @P1 BRA 0x60 ;
        /*00b0*/                   FMUL R4, R16, R17 ;
        /*00c0*/                   FMUL R4, R4, R4 ;
        /*00d0*/                   FMUL R5, R4, R4 ;
        /*00e0*/                   STG.E.128 desc[UR4][R10.64], R4 ;
        /*00f0*/                   IADD3 R8, R8, 0x10, RZ ;
        /*0100*/                   ISETP.GE.AND P3, PT, R8, R3, PT ;
        /*0110*/              @!P3 BRA 0x30 ;
        /*0120*/                   EXIT ;
"""


def test_model_skips_a_slow_path_with_its_own_loop():
    loops = pm.element_loops(SLOW_PATH_LOOP_SASS)
    main = [lp for lp in loops if lp.wide]
    assert len(main) == 1
    # 0x30-0x50 (3) + 0xd0-0x110 (5): the slow path's 7 instructions are out
    assert main[0].count == 8 and main[0].global_bytes == 16
    shape = pm.KernelShape("elementwise", 4, arrays=1, moved_bytes=8, useful_bytes=8, threads=256)
    p = pm.predict(SLOW_PATH_LOOP_SASS, shape, registers=32)
    assert p.vector_loads and p.instructions_per_element == 8 / 4 and p.bound == "memory"


def test_model_uniformity_of_a_long_chain_of_uniform_values():
    """A branch on a value 40 instructions away from the kernel argument it derives from is still
    uniform: the verdict must not depend on a recursion cut-off, whose memoized answers made the
    model of one kernel vary with the order Python's string hashing visited registers in."""
    chain = "\n".join(f"        /*{0x20 + 16 * k:04x}*/                   IADD3 R{3 - k % 2}, R{2 + k % 2}, 0x1, RZ ;"
                       for k in range(40))
    sass = SYNTHETIC_SASS.replace("        /*0020*/                   ISETP.NE.AND P1, PT, R2, RZ, PT ;\n", "")
    lines = [ln for ln in sass.splitlines() if ln.strip()]
    # the argument's uniform chain ends in R2 (40 steps), then the test of the bias branch
    head = lines[:2] + chain.splitlines() + ["        /*02a0*/                   ISETP.NE.AND P1, PT, R2, RZ, PT ;"]
    uni = pm.Uniformity(pm.parse_sass("\n".join(head)))
    assert uni.uniform("P1", len(head)) and uni.uniform("R3", len(head))
    assert not uni.uniform("R0", len(head))  # the thread index


def test_model_bounds():
    bw = pm.copy_bytes_per_clock()
    assert 12.0 < bw < 12.8  # 3.0 TB/s over 132 SMs at 1.83 GHz
    shape = pm.KernelShape("elementwise", 2, arrays=1, moved_bytes=4, useful_bytes=4, threads=256)
    # 128 issue slots a clock: a bf16 forward at copy speed has bw / 4 elements a clock
    budget = 128 / (bw / 4)
    p = pm.predict(SYNTHETIC_SASS, shape, registers=32)
    assert p.instructions_per_element == 13 / 8 < budget and p.predicted_h100_fraction == 1.0
    # a kernel moving a quarter byte per element would be issue-bound: 128 / 3.25 elements a clock
    tiny = pm.KernelShape("elementwise", 4, arrays=1, moved_bytes=0.25, useful_bytes=0.25, threads=256)
    p = pm.predict(SYNTHETIC_SASS, tiny, registers=32)
    assert p.bound == "issue" and p.predicted_h100_fraction == pytest.approx(128 / 3.25 * 0.25 / bw)
    # few threads, 16 bytes each: too few loads in flight to cover the DRAM latency
    p = pm.predict(SYNTHETIC_SASS, shape, registers=255)
    assert p.resident_threads == 256 and p.bound == "latency"
    assert p.predicted_h100_fraction == pytest.approx(256 * 16 / pm.H100["in_flight_needed"])


def test_resident_threads():
    assert pm.resident_threads(64, 256, 0) == 1024  # 64 K registers / (64 x 256)
    assert pm.resident_threads(32, 256, 0) == 2048
    assert pm.resident_threads(40, 256, 0) == 1536  # 40 x 32 = 1280 per warp: 6 blocks of 8 warps
    assert pm.resident_threads(16, 512, 64 * 1024) == 1536  # 3 blocks of 64 KiB + 1 KiB reserved
    assert pm.resident_threads(16, 1024, 0) == 2048


#: the representative subset the model is held to in CI (one cuobjdump per module: about 1 s each)
MODEL_MODULES = ["relu", "gelu", "silu", "swiglu", "softmax_block_bf16", "softmax_block_f32", "softmax_long_bf16",
                 "softmax_long_f32", "softmax_warp32x32_bf16", "softmax_warp32x32_f32"]


@pytest.fixture(scope="module")
def modelled(tmp_path_factory):
    if ck.cuobjdump() is None:
        pytest.skip("cuobjdump is not installed")
    out = tmp_path_factory.mktemp("model")
    args = _args(only=MODEL_MODULES, dtype=["bf16", "f32"], arch=["sm_90"], json=str(out / "k.json"),
                 sass_dir=str(out / "sass"), summary=True)
    assert cmd.run(args) == 0
    data = json.loads((out / "k.json").read_text())
    return {k["kernel"]: k["model"] for k in data["kernels"] if k["model"]}, out / "sass"


def test_model_json_and_sass_dir(modelled):
    models, sass_dir = modelled
    # dtypes x (fwd/bwd x (4 elementwise/gated, 3 row-wise paths) + the 4 elementwise/gated FP8 outputs)
    assert len(models) == 2 * (2 * (4 + 3) + 4)
    for kernel, m in models.items():
        assert (sass_dir / f"{kernel}.sass").is_file()
        assert {"instructions_per_element", "loads_in_flight_bytes_per_sm", "occupancy",
                "predicted_h100_fraction"} <= set(m)
        assert 0 < m["predicted_h100_fraction"] <= 1 and 0 < m["occupancy"] <= 1


def test_model_elementwise_main_loops_load_128_bits(modelled):
    models, _ = modelled
    for kernel, m in models.items():
        if "softmax" not in kernel:
            assert m["vector_loads"], kernel


def test_gpu_report_puts_measurements_next_to_the_model():
    """bench/gpu_report.py's plumbing without a GPU: benchmark records of the CuPy backend (as the
    runner writes them) joined with the model by the kernel each case runs."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("gpu_report", Path(__file__).parent.parent / "bench" / "gpu_report.py")
    gpu_report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_report)
    info = pm._h100_info()

    def rec(name, kind, direction, dtype, shape, provider, role, gbps):
        return {"run_id": "r", "label": name, "name": name, "kind": kind, "direction": direction, "dtype": dtype,
                "shape": list(shape), "numel": 1, "bytes": 1 << 30, "cache_bytes": 50 << 20, "bias": False,
                "out": True, "tag": "", "provider": provider, "role": role, "threads": None, "status": "ok",
                "time_ms": 1.0, "gbps": gbps}

    records = []
    for name, kind, direction, dtype, shape, gbps in [("gelu", "elementwise", "forward", "bfloat16", (1 << 28,), 2700),
                                                      ("softmax", "rowwise", "backward", "float32", (1024, 8192), 1500),
                                                      ("softmax", "rowwise", "forward", "float32", (256, 65536), 900)]:
        records += [rec(name, kind, direction, dtype, shape, "cupy", "ours", gbps),
                    rec(name, kind, direction, dtype, shape, "copy_sm", "ceiling", 3000)]
    assert gpu_report.kernel_of(records[0], info) == "act_gelu_fwd_bf16"
    assert gpu_report.kernel_of(records[2], info) == "act_softmax_bwd_block_f32"
    assert gpu_report.kernel_of(records[4], info) == "act_softmax_fwd_long_f32"  # 256 KiB: past shared memory
    model = {"act_gelu_fwd_bf16": {"predicted": 0.94, "bound": "issue"},
             "act_softmax_bwd_block_f32": {"predicted": 1.0, "bound": "memory"}}
    lines = gpu_report.model_lines(records, model, info)
    table = [line for line in lines if line.startswith("| gelu") or line.startswith("| softmax")]
    assert table == ["| gelu | forward | bfloat16 | 268435456 | `act_gelu_fwd_bf16` | 90% | 94% (issue) |",
                     "| softmax | backward | float32 | 1024x8192 | `act_softmax_bwd_block_f32` | 50% | 100% (memory) |"]


#: the goals of the model the kernels meet (issue: GPU speed you can see without a GPU): float32
#: elementwise and gated kernels at >= 90% of copy bandwidth, softmax rows of 1024 columns and more
#: at >= 85% while they fit in shared memory; the long path is held to its two reads of the row
# float32 gelu', silu' and mish' are evaluated in double and rounded once (0.5-0.58 conditioned
# ulps where float reached 5.5 and 3.2), branch-free, with no double division and no double
# constant taken as an instruction pair: 134 (the tanh form, the costlier copy) and 111
# instructions per element, at 93% and 100% of copy speed.
# The 16-bit elementwise and gated kernels (bfloat16 modelled here) are held to 90% too: relu,
# silu's and swiglu's forward meet it; gelu, silu' and swiglu' miss it (SHORT_OF_GOAL: their
# float math alone takes more issue slots than a 16-bit element's 4 or 6 bytes allow).
GOALS = {**{f"act_{n}_{d}_{t}": 0.9 for n in ("relu", "gelu", "silu", "swiglu") for d in ("fwd", "bwd")
            for t in ("f32", "bf16")},
         **{f"act_softmax_{d}_block_{t}": 0.85 for d in ("fwd", "bwd") for t in ("bf16", "f32")},
         **{f"act_softmax_{d}_warp32x32_{t}": 0.8 for d in ("fwd", "bwd") for t in ("bf16", "f32")},
         **{f"act_softmax_fwd_long_{t}": 0.65 for t in ("bf16", "f32")},
         **{f"act_softmax_bwd_long_{t}": 0.58 for t in ("bf16", "f32")}}
#: instructions per element of the 16-bit main loops (measured, with a quarter of headroom): a change
#: that adds instructions to them fails here
# The rounding correction of 16-bit results near a tie is counted from a second compile without it
# (perf_model.predict): the main loop of that compile (the near-tie test included) in full and the
# correction's own instructions at the chance that a warp takes it.  Counted so, relu's loop holds
# 17-19 instructions per element where the older count, which took every block with double
# arithmetic for the correction, found 6; gelu' (double on its main path) 112 where it found 90,
# and 153 with the tanh form's derivative in double too (its float terms cancelled at its zero).
# silu' is a quotient in double (124; the float pairs took 149 counted so).  The 16-bit softmax
# rows work in float, with float pairs for the sums that cancel (sum dy y) or whose log is small
# (log_softmax): 31 and 59.
BUDGETS = {"act_relu_fwd_bf16": 19, "act_relu_bwd_bf16": 18, "act_gelu_fwd_bf16": 82, "act_gelu_bwd_bf16": 154,
           "act_silu_fwd_bf16": 42, "act_silu_bwd_bf16": 125, "act_swiglu_fwd_bf16": 66, "act_swiglu_bwd_bf16": 198,
           "act_softmax_fwd_block_bf16": 31, "act_softmax_bwd_block_bf16": 59}
#: goals the kernels miss, with their modelled fraction: bfloat16 gelu, gelu', silu' and swiglu',
#: whose math alone is more than the 41 (forward) or 62 (backward) instructions per element a
#: 16-bit element allows
SHORT_OF_GOAL = {"act_gelu_fwd_bf16": 0.51, "act_gelu_bwd_bf16": 0.40, "act_silu_bwd_bf16": 0.50,
                 "act_swiglu_bwd_bf16": 0.52}


def test_model_goals(modelled):
    models, _ = modelled
    low = {k: round(models[k]["predicted_h100_fraction"], 2) for k, goal in GOALS.items()
           if k not in SHORT_OF_GOAL and models[k]["predicted_h100_fraction"] < goal}
    assert not low, f"below the modelled goal: {low}"
    # the known misses stay listed only while they miss (a kernel that meets its goal leaves the
    # list), and get no worse
    for kernel, fraction in SHORT_OF_GOAL.items():
        assert fraction - 0.02 <= models[kernel]["predicted_h100_fraction"] < GOALS[kernel], kernel
    for kernel in GOALS:
        if "softmax" in kernel and "warp" not in kernel:
            assert models[kernel]["vector_loads"], kernel  # the block and long rows move 16-byte packs


def test_model_instruction_budgets(modelled):
    models, _ = modelled
    over = {k: models[k]["instructions_per_element"] for k, n in BUDGETS.items()
            if models[k]["instructions_per_element"] > 1.25 * n}
    assert not over, f"more instructions per element than budgeted: {over}"
