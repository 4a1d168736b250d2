"""Compile every Numba kernel to PTX without a GPU and check it.

For each kernel spec of ``_numba_kernels.all_specs()`` (the exact function
and signature the backend compiles):

1. ``cuda.compile_ptx(fn, argtypes, cc=cc)``: needs NVVM/libdevice and NVRTC
   (``nvidia-cuda-nvrtc``), no driver and no device;
2. kernels that compute in float32 (float16, bfloat16, float32 storage) must
   contain no float64 instruction: one stray Python literal promotes a whole
   expression and halves the throughput on consumer GPUs (the 16-bit
   elementwise and gated kernels aside: their float64 redo near a rounding
   boundary is deliberate, as are the softmax family's float64 row sums);
3. ``ptxas -arch=sm_XY -v`` on the PTX: registers, and zero spill bytes.
   nvidia-cuda-nvrtc 13.0 writes PTX ``.version 9.0``, which ptxas 13.0 reads.

It cannot run under the CUDA simulator (there ``numba.cuda`` has no
compiler): :func:`check_numba_kernels` then re-runs itself in a subprocess
without ``NUMBA_ENABLE_CUDASIM``.  Command line:
``python -m activations.backends.numba.check [--json] [--cc 9.0] [--quick]``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

#: PTX ISA versions the local ptxas (CUDA 13.0) accepts
MAX_PTX_VERSION = (9, 0)


@dataclass(frozen=True)
class NumbaKernelCheck:
    """The result for one kernel.

    name: the activation (``gelu``), or ``kind[name]`` for helper kernels
    (``colsum[sum]``, ``cast[f32]``).  variant: ``fwd`` / ``bwd`` / ``-``.
    registers, spills (spill store + load bytes): from ptxas, None when it
    could not run.  has_f64_in_f32_kernel: a float32-compute kernel contains
    float64 instructions.  seconds: the compile_ptx time.
    """

    name: str
    dtype: str
    variant: str
    ok: bool
    registers: int | None
    has_f64_in_f32_kernel: bool
    spills: int | None
    message: str
    seconds: float = 0.0


def check_numba_kernels(
    cc: tuple[int, int] = (9, 0),
    specs: Iterable | None = None,
    ptxas: str | None = None,
    names: Iterable[str] | None = None,
    dtypes: Iterable[str] | None = None,
    jobs: int = 1,
) -> list[NumbaKernelCheck]:
    """Compile and check the Numba kernels for compute capability ``cc``; one record per kernel.

    ``specs`` limits the check to some ``_numba_kernels.Spec`` (default: all);
    ``names`` (activation names, or helper kinds such as ``colsum``) and
    ``dtypes`` (``f16 bf16 f32 f64``) filter them.  ``jobs`` > 1 splits the
    work over that many processes.  ``ptxas`` is the assembler to run (default:
    ``ptxas`` on PATH, then /usr/local/bin and /usr/local/cuda/bin).
    """
    from . import kernels as K

    chosen = list(K.all_specs() if specs is None else specs)
    if names:
        wanted = set(names)
        chosen = [s for s in chosen if s.name in wanted or s.kind in wanted]
    if dtypes:
        wanted = set(dtypes)
        chosen = [s for s in chosen if s.dtype in wanted]
    if _simulator_requested() or (jobs > 1 and len(chosen) > 1):
        return _in_subprocesses(cc, chosen, ptxas, max(1, jobs))
    assembler = ptxas or _find_ptxas()
    with _target_device(cc):
        return [_check_one(K, spec, cc, assembler) for spec in chosen]


def _check_one(K, spec, cc, assembler) -> NumbaKernelCheck:
    from numba import cuda

    helper = spec.kind not in ("elementwise", "gated", "rowwise")
    name = f"{spec.kind}[{spec.name}]" if helper else spec.name
    # casts and copies move data (a float64 -> float32 cast is one cvt.f64); the rest computes.
    # 16-bit results near a rounding boundary are computed again in float64 on purpose (a rare branch).
    redo = spec.kind in ("elementwise", "gated") and K._redoes(spec.name, spec.dtype)
    # FP8 output scales f and converts it in float64 on purpose (docs/semantics.md, FP8 output).
    fp8 = spec.variant == "fp8"
    # the softmax family's row sums, y and dx are float64 on purpose, in every dtype (kernels/softmax.cuh,
    # Accuracy; the CUDA C kernels' 16-bit rows get the same accuracy from float pairs)
    rows64 = spec.kind == "rowwise" and not K.REGISTRY.get(spec.name).rows.threshold
    f32_compute = (spec.kind not in ("cast", "gather", "scatter") and spec.dtype != "f64" and not redo and not fp8
                   and not rows64)
    start = time.perf_counter()
    try:
        fn, sig = K.build(spec)
        ptx, _ = cuda.compile_ptx(fn, sig, cc=cc)
    except Exception as exc:  # report, keep checking the others
        first = (str(exc).strip().splitlines() or [""])[0]
        msg = f"compile_ptx failed: {type(exc).__name__}: {first}"
        seconds = time.perf_counter() - start
        return NumbaKernelCheck(name, spec.dtype, spec.variant, False, None, False, None, msg, seconds)
    seconds = time.perf_counter() - start
    problems = []
    f64 = f64_instructions(ptx) if f32_compute else 0
    if f64:
        problems.append(f"{f64} float64 instructions in a float32 kernel")
    version = ptx_version(ptx)
    registers = spills = None
    if version is not None and version > MAX_PTX_VERSION:
        problems.append(
            f"PTX .version {version[0]}.{version[1]} is newer than ptxas 13.0 reads (pin nvidia-cuda-nvrtc==13.0.*)"
        )
    elif assembler is None:
        problems.append("ptxas not found: registers and spills not checked")
    else:
        registers, spills, err = run_ptxas(assembler, ptx, cc)
        if err:
            problems.append(err)
        elif spills:
            problems.append(f"{spills} bytes of register spills")
    ok = not f64 and not (spills or 0) and not any(p.startswith(("ptxas failed", "PTX .version")) for p in problems)
    message = "; ".join(problems) or "ok"
    return NumbaKernelCheck(name, spec.dtype, spec.variant, ok, registers, bool(f64), spills, message, seconds)


# ------------------------------------------------------------------ PTX text
_INSTRUCTION = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][\w.]*)")
# libdevice's sinf/cosf reduce huge arguments (|x| > 105615, Payne-Hanek) with
# cvt.rn.f64.s64, one mul.f64 by pi/2 * 2^-62 and cvt.rn.f32.f64: a cold path
# of the float32 function itself, not a promotion in our code.
_SINF_REDUCTION = "0d3BF921FB54442D19"


def f64_instructions(ptx: str) -> int:
    """Instructions with a .f64 type (declarations, directives and libdevice's sinf reduction do not count)."""
    count = reductions = 0
    for line in ptx.splitlines():
        s = line.strip()
        if not s or s.startswith(("//", ".", "{", "}", "(", ")")) or s.endswith(":"):
            continue
        m = _INSTRUCTION.match(s)
        if m and ".f64" in m.group(1):
            count += 1
            reductions += m.group(1) == "mul.f64" and _SINF_REDUCTION in s
    return count - 3 * reductions


def ptx_version(ptx: str) -> tuple[int, int] | None:
    m = re.search(r"^\s*\.version\s+(\d+)\.(\d+)", ptx, re.M)
    return (int(m.group(1)), int(m.group(2))) if m else None


def run_ptxas(assembler: str, ptx: str, cc: tuple[int, int]) -> tuple[int | None, int | None, str]:
    """(registers, spill bytes, error) of ``ptxas -v`` on the PTX of one kernel."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.ptx")
        with open(path, "w") as fh:
            fh.write(ptx)
        proc = subprocess.run(
            [assembler, f"-arch=sm_{cc[0]}{cc[1]}", "-v", path, "-o", os.path.join(tmp, "kernel.cubin")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        first = next((line for line in log.splitlines() if "error" in line or "fatal" in line), log.strip()[:200])
        return None, None, f"ptxas failed: {first.strip()}"
    regs = [int(v) for v in re.findall(r"Used (\d+) registers", log)]
    spills = sum(int(a) + int(b) for a, b in re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log))
    return (max(regs) if regs else None), spills, ""


def _find_ptxas() -> str | None:
    found = shutil.which("ptxas")
    if found:
        return found
    for candidate in ("/usr/local/bin/ptxas", "/usr/local/cuda/bin/ptxas"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


# ----------------------------------------------------------- no GPU needed
@contextlib.contextmanager
def _target_device(cc: tuple[int, int]) -> Iterator[None]:
    """Let device functions compile for ``cc`` when there is no device.

    A kernel's PTX is made for the ``cc`` given to compile_ptx, but Numba
    compiles the device functions it calls for the *current* device, which
    needs a driver.  Without one, the current device's compute capability is
    answered with ``cc`` for the duration of the check.
    """
    from numba import cuda
    import numba.cuda.dispatcher as dispatcher

    if cuda.is_available():
        yield
        return

    class _Target:
        compute_capability = tuple(cc)

    original = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: _Target()
    try:
        yield
    finally:
        dispatcher.get_current_device = original


def _simulator_requested() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _in_subprocesses(cc, specs: list, ptxas, jobs: int) -> list[NumbaKernelCheck]:
    """Run the check in ``jobs`` processes without NUMBA_ENABLE_CUDASIM, in spec order."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    root = str(Path(__file__).resolve().parents[3])  # the directory holding the activations package
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    chunks = [specs[i::jobs] for i in range(jobs) if specs[i::jobs]]
    procs = []
    for chunk in chunks:
        module = __spec__.name if __spec__ is not None else __name__  # not "__main__" under -m
        cmd = [sys.executable, "-m", module, "--json", "--cc", f"{cc[0]}.{cc[1]}"]
        cmd += ["--specs", json.dumps([[s.kind, s.name, s.dtype, s.variant] for s in chunk])]
        if ptxas:
            cmd += ["--ptxas", ptxas]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    by_spec = {}
    for chunk, proc in zip(chunks, procs):
        out, err = proc.communicate()
        if proc.returncode not in (0, 1):  # 1: some kernel failed, reported in the records
            raise RuntimeError(f"the Numba kernel check failed in its subprocess:\n{err[-2000:]}")
        for spec, row in zip(chunk, json.loads(out)):
            by_spec[spec] = NumbaKernelCheck(**row)
    return [by_spec[s] for s in specs]


# --------------------------------------------------------------------- main
def quick_specs() -> list:
    """A representative subset: every activation in float32, seven in every dtype, the helpers."""
    from . import kernels as K

    keep = []
    for s in K.all_specs():
        if s.kind in ("elementwise", "gated", "rowwise"):
            if s.dtype == "f32" or s.name in ("gelu", "silu", "rrelu", "prelu", "softmax", "sparsemax", "swiglu"):
                keep.append(s)
        elif s.dtype in ("f16", "bf16", "bool") or s.kind in ("colsum", "finalize"):
            keep.append(s)
    return keep


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="compile every Numba kernel to PTX (no GPU) and check it")
    parser.add_argument("--cc", default="9.0", help="compute capability, e.g. 9.0")
    parser.add_argument("--json", action="store_true", help="print the records as JSON")
    parser.add_argument("--quick", action="store_true", help="a representative subset")
    parser.add_argument("--ptxas", default=None)
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes")
    parser.add_argument("--specs", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cc = tuple(int(v) for v in args.cc.split("."))
    specs = None
    if args.specs:
        from .kernels import Spec

        specs = [Spec(*row) for row in json.loads(args.specs)]
    elif args.quick:
        specs = quick_specs()
    results = check_numba_kernels(cc, specs, args.ptxas, jobs=args.jobs)
    if args.json:
        print(json.dumps([asdict(r) for r in results]))
    else:
        for r in results:
            regs = "-" if r.registers is None else r.registers
            status = "ok " if r.ok else "BAD"
            print(f"{status} {r.name:24s} {r.dtype:5s} {r.variant:4s} regs={regs!s:4s} {r.seconds:5.2f}s {r.message}")
        bad = sum(not r.ok for r in results)
        print(f"{len(results)} kernels, {bad} failed, compile_ptx {sum(r.seconds for r in results):.1f} s")
    return 1 if any(not r.ok for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
