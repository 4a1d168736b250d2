"""Compile every GPU kernel without a GPU and report its resources (``check-kernels``).

Each checker compiles one family of kernels for the requested architectures and returns one
:class:`KernelReport` per (kernel, architecture) plus any compile errors.  ``CHECKERS`` lists
them: the CUDA C kernels of ``kernels/`` (NVRTC through ``cuda.bindings``, the compiler CuPy
uses at run time, to cubin with ``-Xptxas=-v``) and the Numba kernels (compile_ptx + ptxas).
``python -m activations check-kernels`` prints the table, optionally writes JSON, and exits 1
on any compile error, register spill or failed SASS check.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

DEFAULT_ARCHS = ("sm_80", "sm_90")
#: the architecture of the performance model (an H100)
MODEL_ARCH = "sm_90"


@dataclass(frozen=True)
class Options:
    archs: tuple[str, ...] = DEFAULT_ARCHS
    only: tuple[str, ...] = ()  # module names (activations, "colsum"); empty: all
    dtypes: tuple[str, ...] = ()  # dtype short names; empty: all
    jobs: int = 1
    sass: bool = False  # also disassemble and check the 128-bit vector loads
    sass_dir: str | None = None  # write each kernel's SASS (sm_90, else the first arch) here
    model: bool = False  # the static performance model (needs the SASS of MODEL_ARCH)


@dataclass
class KernelReport:
    checker: str
    module: str
    kernel: str
    arch: str
    registers: int
    spill_stores: int = 0
    spill_loads: int = 0
    stack: int = 0  # bytes of stack frame (local arrays, the slow path of sin/cos): not a spill
    shared: int = 0  # bytes of static shared memory (dynamic shared memory is sized at launch)
    model: dict | None = None  # the static performance model (MODEL_ARCH only; _perf_model)

    @property
    def spills(self) -> bool:
        return self.spill_stores > 0 or self.spill_loads > 0


@dataclass
class CheckResult:
    kernels: list[KernelReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


Checker = Callable[[Options], CheckResult]


# ------------------------------------------------------------------ summary
def summarize(result: CheckResult, archs, seconds: float) -> dict:
    ks = result.kernels
    top = max(ks, key=lambda k: k.registers, default=None)
    spilling = sorted({f"{k.kernel} ({k.arch})" for k in ks if k.spills})
    names = {(k.checker, k.kernel) for k in ks}
    text = (f"{len(names)} kernels x {len(archs)} architectures ({len(ks)} compiled) in {seconds:.0f} s; "
            + (f"max registers {top.registers} ({top.kernel}, {top.arch}); " if top else "")
            + f"spills: {', '.join(spilling) if spilling else 'none'}; "
            + f"compile errors: {len(result.errors) or 'none'}")
    return {"kernels": len(names), "compiled": len(ks), "max_registers": top.registers if top else 0,
            "max_registers_kernel": top.kernel if top else "", "spilling_kernels": spilling,
            "max_stack": max((k.stack for k in ks), default=0), "seconds": round(seconds, 1), "text": text}


# ------------------------------------------------------------ ptxas logs
_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")
_PROPS = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas_log(log: str, checker: str, module: str) -> list[KernelReport]:
    """Kernel reports from ``-Xptxas=-v`` output.  Spills of non-entry functions (calls that were
    not inlined) are charged to the entry being compiled."""
    reports: dict[str, KernelReport] = {}
    entry = arch = None
    target = None
    for line in log.replace("\x00", "").splitlines():
        if m := _ENTRY.search(line):
            entry, arch = m.groups()
            reports[entry] = KernelReport(checker, module, entry, arch, 0)
        elif m := _PROPS.search(line):
            target = m.group(1)
        elif (m := _FRAME.search(line)) and entry is not None:
            stack, stores, loads = map(int, m.groups())
            rep = reports[entry]
            rep.spill_stores += stores
            rep.spill_loads += loads
            if target == entry:
                rep.stack = stack
        elif (m := _USED.search(line)) and entry is not None:
            reports[entry].registers = int(m.group(1))
            if s := _SMEM.search(line):
                reports[entry].shared = int(s.group(1))
    return list(reports.values())


# ------------------------------------------------------------------ CUDA C
def compile_cuda(source: str, arch: str, name: str = "module.cu") -> tuple[bool, str, bytes]:
    """NVRTC (cuda.bindings) to cubin with the package's options: (ok, log, cubin)."""
    from cuda.bindings import nvrtc

    from ..backends.cuda.source import compile_options

    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
    _check_nvrtc(nvrtc, err)
    try:
        opts = [o.encode() for o in (*compile_options(), f"-arch={arch}", "-Xptxas=-v")]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        _, size = nvrtc.nvrtcGetProgramLogSize(prog)
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(prog, log)
        text = log.decode(errors="replace").replace("\x00", "")
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            return False, text, b""
        _, size = nvrtc.nvrtcGetCUBINSize(prog)
        cubin = b" " * size
        nvrtc.nvrtcGetCUBIN(prog, cubin)
        return True, text, cubin
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def _check_nvrtc(nvrtc, err) -> None:
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"NVRTC: {err.name}")


def _cuda_job(job: tuple) -> tuple[str, str, bool, str, dict | str | None, dict | None]:
    """Compile one module for one architecture; with ``want_sass``, also disassemble it in the same
    worker (cuobjdump takes about a second a module); with ``want_base``, also the SASS of the
    module without the 16-bit rounding correction, for the performance model: (key, arch, ok, log,
    SASS per function, or the reason there is none, or None; the base SASS or None)."""
    module, arch, want_sass, want_base = job
    ok, log, cubin = compile_cuda(module.source(), arch, f"{module.key}.cu")
    sass: dict | str | None = None
    base: dict | None = None
    if ok and want_sass:
        try:
            sass = sass_functions(cubin)
            if want_base:
                ok_base, _, cubin_base = compile_cuda(f"#define {NO_CORRECTION} 1\n{module.source()}", arch,
                                                      f"{module.key}.cu")
                base = sass_functions(cubin_base) if ok_base else None
        except (FileNotFoundError, subprocess.CalledProcessError) as exc:
            sass = str(exc)
    return module.key, arch, ok, log, sass, base


#: the macro that compiles a 16-bit elementwise or gated module without its rounding correction
#: (kernels/functors.cuh, store_once), whose common path the performance model counts apart
NO_CORRECTION = "ACT_MODEL_NO_CORRECTION"


def _models_correction(module) -> bool:
    from . import perf_model as _perf_model

    return module.kind in ("elementwise", "gated") and _perf_model.rare_fraction(module.dtype) > 0


def check_cuda_c(opts: Options) -> CheckResult:
    from ..backends.cuda import source as _cuda_source

    result = CheckResult()
    try:
        from cuda.bindings import nvrtc

        nvrtc.nvrtcVersion()
    except Exception as exc:
        result.errors.append(f"NVRTC is not available ({type(exc).__name__}: {exc}); "
                             "pip install cuda-bindings nvidia-cuda-nvrtc nvidia-cuda-runtime")
        return result
    if not _cuda_source.cuda_include_dirs():
        result.errors.append("CUDA headers (cuda_fp16.h) not found; pip install nvidia-cuda-runtime")
        return result
    every = _cuda_source.all_modules(opts.dtypes or _cuda_source.KERNEL_DTYPES)
    modules = [m for m in every if not opts.only or m.name in opts.only or m.key in opts.only]
    unknown = set(opts.only) - set(_cuda_source.module_names()) - {m.key for m in every}
    if unknown:
        result.errors.append(f"unknown module(s): {', '.join(sorted(unknown))}")
    vector_kinds = ("elementwise", "gated")
    sass_arch = MODEL_ARCH if MODEL_ARCH in opts.archs else opts.archs[0]
    want_sass = opts.model or opts.sass_dir
    jobs = [(m, arch, arch == sass_arch and ((opts.sass and m.kind in vector_kinds) or bool(want_sass)),
             opts.model and arch == MODEL_ARCH and _models_correction(m))
            for m in modules for arch in opts.archs]
    by_key = {m.key: m for m in modules}
    if opts.model and MODEL_ARCH not in opts.archs:
        result.notes.append(f"performance model: {MODEL_ARCH} not in --arch, not modelled")
    for key, arch, ok, log, functions, base in _map(_cuda_job, jobs, opts.jobs):
        if not ok:
            result.errors.append(f"{key} for {arch} does not compile:\n{log.strip()}")
            continue
        reports = parse_ptxas_log(log, "cuda-c", key)
        result.kernels += reports
        if functions is None:
            continue
        if isinstance(functions, str):
            result.errors.append(f"{key}: no SASS ({functions})")
            continue
        if opts.sass and by_key[key].kind in vector_kinds:
            result.errors += check_vector_sass(functions, key)
        if opts.sass_dir:
            Path(opts.sass_dir).mkdir(parents=True, exist_ok=True)
            for fn, text in functions.items():
                (Path(opts.sass_dir) / f"{fn}.sass").write_text(text)
        if opts.model and arch == MODEL_ARCH:
            _add_model(by_key[key], reports, functions, base or {})
    if opts.sass and not any(j[2] for j in jobs if j[0].kind in vector_kinds):
        result.notes.append("no elementwise or gated module selected: SASS not checked")
    return result


def _add_model(module, reports: list[KernelReport], functions: dict[str, str], base: dict[str, str]) -> None:
    from . import perf_model as _perf_model

    for rep in reports:
        shape = _perf_model.kernel_shape(module, rep.kernel)
        sass = functions.get(rep.kernel)
        if shape is None or sass is None:
            continue
        pred = _perf_model.predict(sass, shape, rep.registers, rep.shared,
                                   sass_without_correction=base.get(rep.kernel))
        if pred is not None:
            rep.model = {**pred.as_dict(), "threads_per_block": shape.threads, "dynamic_shared": shape.shared,
                         "modelled_at": shape.point or "large n"}


def _map(fn, jobs: list, workers: int) -> list:
    if workers <= 1 or len(jobs) <= 1:
        return [fn(j) for j in jobs]
    from concurrent.futures import ProcessPoolExecutor

    # NVRTC holds the GIL: processes, not threads, to use several cores
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(fn, jobs, chunksize=1))


# ------------------------------------------------------------------- SASS
def cuobjdump() -> str | None:
    try:
        from cuda.pathfinder import find_nvidia_binary_utility

        found = find_nvidia_binary_utility("cuobjdump")
        if found:
            return str(found)
    except Exception:
        pass
    import shutil

    found = shutil.which("cuobjdump")
    if found:
        return found
    # Triton's wheel ships cuobjdump and nvdisasm (CUDA 13.1) next to its ptxas
    try:
        import importlib.util

        spec = importlib.util.find_spec("triton")
        if spec and spec.origin:
            tool = Path(spec.origin).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
            if tool.is_file():
                return str(tool)
    except (ImportError, ValueError):
        pass
    return None


def sass_functions(cubin: bytes) -> dict[str, str]:
    """cuobjdump -sass of a cubin, split by function."""
    tool = cuobjdump()
    if tool is None:
        raise FileNotFoundError("cuobjdump not found (pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm)")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        env = dict(os.environ, PATH=str(Path(tool).parent) + os.pathsep + os.environ.get("PATH", ""))
        text = subprocess.run([tool, "-sass", f.name], capture_output=True, text=True, check=True, env=env).stdout
    parts = re.split(r"\n\s*Function : (\S+)\n", text)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _vector_ops(function: str) -> tuple[str, ...]:
    return ("LDG.E.128",) if "_fp8_" in function else ("LDG.E.128", "STG.E.128")


def check_vector_sass(functions: dict[str, str] | bytes, module: str) -> list[str]:
    """Every elementwise/gated kernel must contain the 16-byte path: LDG.E.128 and STG.E.128.

    The FP8 kernels store one byte per element (a pack of 2 to 8 codes), so for them only the
    16-byte load is required."""
    if isinstance(functions, bytes):
        try:
            functions = sass_functions(functions)
        except (FileNotFoundError, subprocess.CalledProcessError) as exc:
            return [f"{module}: SASS check impossible ({exc})"]
    errors = [f"{module}: {fn} has no {op} (the 16-byte vector path is missing)"
              for fn, sass in functions.items() for op in _vector_ops(fn) if op not in sass]
    return errors or ([] if functions else [f"{module}: cuobjdump found no functions"])


def check_numba(opts: Options) -> CheckResult:
    """The Numba kernels through compile_ptx + ptxas (sm_90, the architecture the issue asks for)."""
    from ..backends.numba.check import check_numba_kernels

    result = CheckResult()
    archs = [a for a in opts.archs if a == "sm_90"]
    if not archs:
        result.notes.append("numba: checked for sm_90 only; not in --arch")
    for arch in archs:
        cc = (int(arch[3:-1]), int(arch[-1]))
        for r in check_numba_kernels(cc, names=opts.only or None, dtypes=opts.dtypes or None, jobs=opts.jobs):
            kernel = f"{r.name}_{r.dtype}_{r.variant}"
            if r.registers is not None:
                result.kernels.append(KernelReport("numba", r.name, kernel, arch, r.registers, spill_stores=r.spills or 0))
            if not r.ok:
                result.errors.append(f"numba {kernel} {arch}: {r.message}")
    return result


#: every checker, by name: the CUDA C kernels and the Numba kernels
CHECKERS: dict[str, Checker] = {"cuda-c": check_cuda_c, "numba": check_numba}
