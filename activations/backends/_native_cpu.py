"""Compiled CPU loops for the NumPy backend (``kernels/cpu/native.cpp``).

The NumPy backend calls :func:`forward` / :func:`backward` first and falls
back to its ufunc chains when they decline (return False / None).  The math
is the CUDA functors of ``kernels/functors.cuh`` compiled for the CPU, so the
CPU and GPU share one source; ``docs/cpu-native.md`` has the design.

The library is built at first use with the system C++ compiler, into
``ACTIVATIONS_CACHE_DIR`` (default ``~/.cache/activations``) under
``cpu/``, named by a hash of the sources, the compiler and the flags, so that
every later process just loads it.  Building happens once per machine (about
10-30 s), under a file lock shared by concurrent processes; the library is
written to a private temporary directory and renamed into place.  When no
compiler is found or every build fails, :func:`usable` is False and
:data:`WHY_NOT` says why; the NumPy path then handles every call.
``ACTIVATIONS_NATIVE=0`` turns the loops off (read by the NumPy backend).

Nothing the user passes is ever part of the compiled source: activation
parameters, weights and sizes are function arguments (``_Job``).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .. import _dtypes
from ..registry import Kind
from . import Call, Grads

#: why the compiled loops are not used here ("" while usable or not yet tried)
WHY_NOT: str = ""
#: one line for `python -m activations info` once loaded: compiler, ISA, library path
DETAIL: str = ""

# Must match act_cpu_abi() in native.cpp.
_ABI = 1
_STATUS_NO_MEMORY = 4

#: (label, compiler flags, link glibc's vector math library -lmvec), tried in order
_FLAGSETS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    # -D__FAST_MATH__ only makes glibc's <math.h> declare its SIMD variants (expf -> _ZGVeN16v_expf);
    # the code is compiled with IEEE semantics (no -ffast-math): NaN and inf behave as documented.
    ("native+libmvec", ("-O3", "-march=native", "-fopenmp-simd", "-D__FAST_MATH__"), True),
    ("generic+libmvec", ("-O3", "-fopenmp-simd", "-D__FAST_MATH__"), True),
    ("generic", ("-O3", "-fopenmp-simd"), False),
)
_COMMON_FLAGS = ("-std=c++17", "-fPIC", "-pthread", "-fno-math-errno", "-fno-trapping-math", "-fvisibility=hidden")
_BUILD_TIMEOUT_S = 600
#: a build that failed is not retried (by any process) before this long
_RETRY_FAILED_AFTER_S = 24 * 3600

_DTYPE_CODES: dict[np.dtype, int] = {_dtypes.FLOAT16: 0, _dtypes.FLOAT32: 2, _dtypes.FLOAT64: 3}
if _dtypes.BFLOAT16 is not None:
    _DTYPE_CODES[_dtypes.BFLOAT16] = 1


class _Job(ctypes.Structure):
    # Mirrors cpu::Job in native.cpp, field for field.
    _fields_ = [
        ("x", ctypes.c_void_p),
        ("dy", ctypes.c_void_p),
        ("out", ctypes.c_void_p),
        ("bias", ctypes.c_void_p),
        ("weight", ctypes.c_void_p),
        ("dbias", ctypes.c_void_p),
        ("dweight", ctypes.c_void_p),
        ("n", ctypes.c_longlong),
        ("channels", ctypes.c_longlong),
        ("weight_len", ctypes.c_longlong),
        ("p0", ctypes.c_double),
        ("p1", ctypes.c_double),
        ("p2", ctypes.c_double),
        ("seed", ctypes.c_uint64),
        ("op", ctypes.c_int),
        ("dtype", ctypes.c_int),
        ("threads", ctypes.c_int),
        ("backward", ctypes.c_int),
    ]


class _Lib:
    """The loaded library: its entry points and op numbers by name."""

    def __init__(self, path: Path):
        lib = ctypes.CDLL(str(path))  # CDLL: calls release the GIL
        lib.act_cpu_abi.restype = ctypes.c_int
        lib.act_cpu_op_name.restype = ctypes.c_char_p
        lib.act_cpu_op_name.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.act_cpu_isa.restype = ctypes.c_char_p
        lib.act_cpu_check.restype = ctypes.c_int
        for fn in (lib.act_cpu_elementwise, lib.act_cpu_gated, lib.act_cpu_rowwise):
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.POINTER(_Job)]
        abi = lib.act_cpu_abi()
        if abi != _ABI:
            raise OSError(f"{path} has ABI {abi}, expected {_ABI}")
        self.lib = lib
        self.isa = lib.act_cpu_isa().decode()
        self.ops: dict[Kind, dict[str, int]] = {}
        for code, kind in enumerate((Kind.ELEMENTWISE, Kind.GATED, Kind.ROWWISE)):
            names: dict[str, int] = {}
            while (name := lib.act_cpu_op_name(code, len(names))) is not None:
                names[name.decode()] = len(names)
            self.ops[kind] = names
        self.entry = {
            Kind.ELEMENTWISE: lib.act_cpu_elementwise,
            Kind.GATED: lib.act_cpu_gated,
            Kind.ROWWISE: lib.act_cpu_rowwise,
        }


_LIB: _Lib | None = None
_STATE: bool | None = None  # None: not tried yet
_LOCK = threading.Lock()


def usable() -> bool:
    """True when the compiled loops are built and loaded (builds them on the first call)."""
    global _STATE
    if _STATE is None:
        with _LOCK:
            if _STATE is None:
                try:
                    _STATE = _setup()
                except Exception as exc:  # never let a probe break the caller
                    _set_why(f"unexpected error while building: {type(exc).__name__}: {exc}")
                    _STATE = False
    return _STATE


def _set_why(text: str) -> None:
    global WHY_NOT
    WHY_NOT = text


# ------------------------------------------------------------------- build
def _sources() -> list[Path]:
    from .._paths import kernels_dir

    root = kernels_dir()
    cpu = root / "cpu"
    return [
        cpu / "native.cpp",
        cpu / "prelude.h",
        cpu / "cuda_shim" / "cuda_fp16.h",
        cpu / "cuda_shim" / "cuda_bf16.h",
        root / "common.cuh",
        root / "functors.cuh",
    ]


def _compiler() -> str | None:
    env = os.environ.get("CXX")
    if env:
        return shutil.which(env) or (env if os.path.isfile(env) else None)
    for name in ("g++", "c++", "clang++"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _cache_dir() -> Path:
    base = os.environ.get("ACTIVATIONS_CACHE_DIR")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "activations"
    return root / "cpu"


def _private_dir(path: Path) -> str | None:
    """Create ``path`` (0o700); None when usable, else why not.  A library is only ever loaded from
    a directory that belongs to this user and that nobody else can write to."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
    except OSError as exc:
        return f"cannot create the cache directory {path}: {exc}"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"the cache directory {path} belongs to another user"
    if st.st_mode & 0o022:
        try:
            path.chmod(0o700)
        except OSError as exc:
            return f"the cache directory {path} is writable by others and cannot be fixed: {exc}"
    return None


def _cpu_signature() -> str:
    """What -march=native depends on: a library built for one CPU must not load on another."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("flags", "Features", "isa")):
                    return line.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _key(compiler: str, version: str, label: str, flags: tuple[str, ...], srcs: list[Path]) -> str:
    h = hashlib.sha256()
    for part in (str(_ABI), compiler, version, label, " ".join(flags), platform.machine(), _cpu_signature()):
        h.update(part.encode())
        h.update(b"\0")
    for src in srcs:
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:24]


def _run(cmd: list[str], cwd: str) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _build(compiler: str, flags: tuple[str, ...], mvec: bool, srcs: list[Path], target: Path) -> str | None:
    """Compile the two halves side by side and link them into ``target``; None or the error."""
    cpu = srcs[0].parent
    includes = [f"-I{cpu / 'cuda_shim'}", f"-I{cpu}", f"-I{cpu.parent}"]
    tmp = tempfile.mkdtemp(prefix=".build-", dir=target.parent)  # 0o700
    try:
        objs, procs = [], []
        for part in (0, 1):
            obj = os.path.join(tmp, f"part{part}.o")
            objs.append(obj)
            cmd = [compiler, *flags, *_COMMON_FLAGS, *includes, f"-DACT_CPU_PART={part}", "-c", str(srcs[0]), "-o", obj]
            procs.append(_run(cmd, tmp))
        errors = []
        for proc in procs:
            try:
                out, _ = proc.communicate(timeout=_BUILD_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
                errors.append("compiler timed out")
                continue
            if proc.returncode != 0:
                errors.append(out.strip()[-2000:])
        if errors:
            return "\n".join(errors)
        lib = os.path.join(tmp, "lib.so")
        link = [compiler, "-shared", "-pthread", *objs, "-o", lib, *(["-lmvec"] if mvec else []), "-lm"]
        proc = _run(link, tmp)
        out, _ = proc.communicate(timeout=_BUILD_TIMEOUT_S)
        if proc.returncode != 0:
            return out.strip()[-2000:]
        os.chmod(lib, 0o600)
        os.replace(lib, target)  # atomic: other processes see no file or the whole file
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _FileLock:
    """flock on ``path``: one process builds, the others wait and then load its result."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = -1

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX: the rename keeps the file whole anyway
            pass
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the lock


def _setup() -> bool:
    global _LIB, DETAIL
    if sys.platform != "linux":
        _set_why(f"compiled CPU loops are built for Linux only (this is {sys.platform})")
        return False
    compiler = _compiler()
    if compiler is None:
        _set_why("no C++ compiler found (install g++, or set CXX)")
        return False
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        _set_why(f"cannot run the C++ compiler {compiler}: {exc}")
        return False
    try:
        srcs = _sources()
        for src in srcs:
            if not src.is_file():
                raise FileNotFoundError(src)
    except (OSError, FileNotFoundError) as exc:
        _set_why(f"C++ sources not found: {exc}")
        return False
    cache = _cache_dir()
    why = _private_dir(cache)
    if why:
        _set_why(why)
        return False
    failures = []
    for label, flags, mvec in _FLAGSETS:
        key = _key(compiler, version, label, flags, srcs)
        target = cache / f"activations-cpu-{key}.so"
        failed = cache / f"activations-cpu-{key}.failed"
        if failed.exists() and _age_s(failed) > _RETRY_FAILED_AFTER_S:
            failed.unlink(missing_ok=True)  # a failure may have been transient (killed, out of memory)
        if not target.exists() and failed.exists():
            failures.append(f"{label}: {failed.read_text(errors='replace')[-500:]}")
            continue
        if not target.exists():
            with _FileLock(cache / f"activations-cpu-{key}.lock"):
                if not target.exists() and not failed.exists():
                    err = _build(compiler, flags, mvec, srcs, target)
                    if err is not None:
                        _write_private(failed, err)
                    else:
                        _prune(cache, keep=target)
        if not target.exists():
            msg = failed.read_text(errors="replace") if failed.exists() else "build failed"
            failures.append(f"{label}: {msg[-500:]}")
            continue
        try:
            lib = _Lib(target)
            _self_test(lib)
        except Exception as exc:  # a broken or foreign library: try the next flag set
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        _LIB = lib
        DETAIL = f"{label}, {lib.isa}, {os.path.basename(compiler)}; {target}"
        _set_why("")
        return True
    _set_why("could not build the compiled CPU loops: " + " | ".join(failures))
    return False


def _prune(cache: Path, keep: Path, newest: int = 8) -> None:
    """Delete all but the newest few libraries (every source change builds a new one).  Unlinking
    a library that another process has loaded is harmless on Linux."""
    try:
        libs = sorted(cache.glob("activations-cpu-*.so"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in libs[newest:]:
            if old != keep:
                old.unlink(missing_ok=True)
                old.with_suffix(".lock").unlink(missing_ok=True)
    except OSError:
        pass


def _age_s(path: Path) -> float:
    import time

    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _write_private(path: Path, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    except OSError:
        pass


def _self_test(lib: _Lib) -> None:
    """A few known values through the library: catches a miscompiled or mislinked build."""
    bad = lib.lib.act_cpu_check()
    if bad:
        raise RuntimeError(f"the CPU overrides of kernels/common.cuh differ from it on {bad} inputs")
    x = np.array([-np.inf, -2.0, -0.0, 0.5, 3.0, np.inf, np.nan], np.float32)
    want = {
        "relu": [0.0, 0.0, 0.0, 0.5, 3.0, np.inf, np.nan],
        "sigmoid": [0.0, 0.11920292, 0.5, 0.62245933, 0.95257413, 1.0, np.nan],
        "gelu": [0.0, -0.04550026, 0.0, 0.34573123, 2.99595031, np.inf, np.nan],
    }
    for name, expected in want.items():
        for dt in (np.float32, np.float64):
            xs = x.astype(dt)
            y = np.empty_like(xs)
            job = _Job(x=xs.ctypes.data, out=y.ctypes.data, n=xs.size, channels=xs.size, op=lib.ops[Kind.ELEMENTWISE][name],
                       dtype=_DTYPE_CODES[xs.dtype], threads=1, p1=np.inf if name == "relu" else 0.0)
            st = lib.entry[Kind.ELEMENTWISE](ctypes.byref(job))
            if st != 0 or not np.allclose(y, expected, rtol=1e-6, atol=1e-7, equal_nan=True):
                raise RuntimeError(f"self-test failed for {name} {xs.dtype}: status {st}, got {y}")


# ------------------------------------------------------------------- calls
_THREADS: tuple[str | None, int] = ("", 0)  # (ACTIVATIONS_NUM_THREADS as last read, thread count)


def _threads() -> int:
    """The NumPy backend's reading of ACTIVATIONS_NUM_THREADS (both paths use the same count),
    recomputed only when the variable changes: it costs microseconds per call otherwise."""
    global _THREADS
    env = os.environ.get("ACTIVATIONS_NUM_THREADS")
    if env != _THREADS[0] or not _THREADS[1]:
        from .numpy_backend import _num_threads

        _THREADS = (env, _num_threads())
    return _THREADS[1]


def _addr(a: np.ndarray) -> int:
    return a.ctypes.data


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """True when a and b share memory in any way other than being the same C-contiguous buffer
    (an element is then read before it is written; anything else is left to NumPy)."""
    if not np.may_share_memory(a, b):
        return False
    return not (_addr(a) == _addr(b) and a.nbytes == b.nbytes)


def _vector(a: Any, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def _job(call: Call, lib: _Lib, x: np.ndarray, out: np.ndarray) -> tuple[_Job, list] | None:
    """The Job for a call, and the arrays it points into (kept alive by the caller)."""
    kind = call.record.kind
    op = lib.ops[kind].get(call.name)
    dtype = _DTYPE_CODES.get(x.dtype)
    if op is None or dtype is None or x.ndim == 0:
        return None
    channels = x.shape[-1]
    keep: list = []
    job = _Job(x=_addr(x), out=_addr(out), n=x.size, channels=channels, op=op, dtype=dtype,
               threads=_threads())
    p = call.params.kernel_floats()
    job.p0, job.p1, job.p2 = (tuple(p) + (0.0, 0.0, 0.0))[:3]
    if call.bias is not None:
        bias = _vector(call.bias, x.dtype)
        if bias.shape != (channels,):
            return None
        keep.append(bias)
        job.bias = _addr(bias)
    if kind is Kind.ELEMENTWISE:
        if call.name == "rrelu":
            job.seed = call.params.seed() & 0xFFFFFFFFFFFFFFFF
        if call.name == "prelu":
            w = call.weight
            if isinstance(w, float):
                job.p0 = w
            else:
                w = _vector(w, x.dtype)
                if w.ndim != 1 or w.shape[0] not in (1, channels):
                    return None
                keep.append(w)
                job.weight = _addr(w)
                job.weight_len = w.shape[0]
    elif kind is Kind.GATED:
        if call.axis != x.ndim - 1 or channels % 2:
            return None
        job.n = x.size // 2  # output elements
    elif kind is Kind.ROWWISE:
        if call.axis != x.ndim - 1 or call.where is not None or channels == 0:
            return None
    return job, keep


def forward(call: Call, out: np.ndarray) -> bool:
    """Compute ``call`` into ``out`` (C-contiguous, x's dtype, ``call.out_shape``): True when done,
    False (``out`` untouched) when this case is left to the NumPy path."""
    if not usable():
        return False
    lib = _LIB
    x = call.x
    if not isinstance(x, np.ndarray) or not isinstance(out, np.ndarray) or x.dtype != out.dtype:
        return False
    if x.size == 0:
        return out.size == 0
    x = np.ascontiguousarray(x)
    if not out.flags.c_contiguous or _overlap(x, out):
        return False
    made = _job(call, lib, x, out)
    if made is None:
        return False
    job, keep = made
    job.backward = 0
    return _status(lib.entry[call.record.kind](ctypes.byref(job)))


def backward(call: Call, dx: np.ndarray) -> Grads | None:
    """Fill ``dx`` (C-contiguous, x's shape and dtype) and return the gradients, or None when this
    case is left to the NumPy path."""
    if not usable():
        return None
    lib = _LIB
    x, dy = call.x, call.dy
    if not isinstance(x, np.ndarray) or not isinstance(dx, np.ndarray) or not isinstance(dy, np.ndarray):
        return None
    if x.size == 0 or x.dtype != dx.dtype or dy.dtype != x.dtype:
        return None
    kind = call.record.kind
    if kind is Kind.ROWWISE and call.bias is not None:
        return None
    x = np.ascontiguousarray(x)
    dy = np.ascontiguousarray(dy)
    if not dx.flags.c_contiguous or _overlap(x, dx) or _overlap(dy, dx):
        return None
    made = _job(call, lib, x, dx)
    if made is None:
        return None
    job, keep = made
    job.dy = _addr(dy)
    job.backward = 1
    dbias = dweight = None
    if call.bias is not None:
        dbias = np.zeros(x.shape[-1], np.float64)
        job.dbias = _addr(dbias)
    if call.name == "prelu":
        dweight = np.zeros(max(1, int(job.weight_len)), np.float64)
        job.dweight = _addr(dweight)
    if not _status(lib.entry[kind](ctypes.byref(job))):
        return None
    del keep
    out_bias = out_weight = None
    with np.errstate(over="ignore"):  # a float64 sum past the dtype's range rounds to inf
        if dbias is not None:
            out_bias = dbias.astype(x.dtype)
        if dweight is not None:
            w = call.weight
            if isinstance(w, float):
                out_weight = np.asarray(dweight.sum(), dtype=x.dtype)
            else:
                out_weight = dweight.astype(x.dtype).reshape(np.shape(w))
    return Grads(dx, out_bias, out_weight)


def _status(code: int) -> bool:
    if code == _STATUS_NO_MEMORY:
        raise MemoryError("activations: out of memory in the compiled CPU loops")
    return code == 0
