"""Reliability and security: no partial writes, no code injection, concurrency, stable resources.

Every test runs on each backend that can run here (see ``DEVICES``): NumPy always; the CUDA C
kernels through the CPU harness of tests/cuda_host (the CuPy backend's own launch layer) when
a C++ compiler is present; Numba on the CUDA simulator when there is no GPU; CuPy and Numba on
the GPU when there is one.  The concurrency and resource checks run in fresh interpreters, so
that caches start cold and nothing else in the test session shares their threads or memory.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import activations
from activations import dispatch
from activations.catalogue import REGISTRY
from activations.registry import Kind
from conftest import CPU_PATHS, use_cpu_path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED = (ValueError, TypeError, activations.BackendUnavailable)

# threshold() has no defaults
PARAMS: dict[str, dict[str, Any]] = {"threshold": {"threshold": 0.25, "value": -1.0}}


def params_of(name: str) -> dict[str, Any]:
    return dict(PARAMS.get(name, {}))


# ------------------------------------------------------------------ devices
@dataclass
class Device:
    """How the tests hand arrays to one backend and read results back."""

    name: str  # the backend= value
    to_dev: Callable[[np.ndarray], Any]
    to_host: Callable[[Any], np.ndarray]
    bfloat16: bool = True

    def __repr__(self) -> str:
        return self.name


def _numba_device() -> Device:
    from numba import cuda

    sim = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    return Device("numba", cuda.to_device, lambda a: a.copy_to_host(), bfloat16=not sim)


def _cupy_device() -> Device:
    import cupy

    return Device("cupy", cupy.asarray, cupy.asnumpy)


def _host_library():
    """The CUDA C kernels compiled for the CPU (tests/cuda_host), or None without a compiler."""
    try:
        from cuda_host import harness
    except Exception:
        return None
    if shutil.which(harness.CXX) is None:
        return None
    return harness.HostLibrary(harness.build())


@pytest.fixture(scope="module", params=["numpy", "cuda_host", "numba", "cupy"])
def device(request):
    """Each backend that can run here, with arrays of its own type."""
    name = request.param
    if name == "numpy":
        yield Device("numpy", np.asarray, np.asarray)
        return
    if name == "cuda_host":
        library = _host_library()
        if library is None:
            pytest.skip("the CUDA C host harness needs a C++ compiler")
        from cuda_host import harness

        with harness.registered(harness.HostBackend(harness.HostLauncher(library))):
            yield Device("cuda_host", np.asarray, np.asarray)
        return
    ok, why = dispatch.status(name)
    if not ok:
        pytest.skip(f"{name} backend not available here: {why}")
    yield _numba_device() if name == "numba" else _cupy_device()


def _snapshot(dev: Device, arrays: dict[str, Any]) -> dict[str, bytes]:
    return {k: np.ascontiguousarray(dev.to_host(a)).tobytes() for k, a in arrays.items() if a is not None}


def _garbage(shape, dtype, rng) -> np.ndarray:
    """Random bytes (NaN payloads, infinities, subnormals included) of the given shape and dtype."""
    dt = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(rng.bytes(n * dt.itemsize), dtype=dt).reshape(shape).copy()


# ---------------------------------------------------------- no partial writes
def _bad_params(rec) -> list[dict[str, Any]]:
    """Parameter sets that must be rejected: an unknown key, and a bad value for each parameter."""
    base = params_of(rec.name)
    bad = [{**base, "not_a_parameter": 1.0}]
    for p in rec.params:
        value = {"choice": "bogus", "bool": "yes", "int": -1, "weight": np.ones(5)}.get(p.type, float("nan"))
        bad.append({**base, p.name: value})
    if rec.name == "threshold":
        bad.append({"threshold": 0.25})  # a required parameter missing
    return bad


def _failing_calls(rec, x, dy, dev: Device):
    """(label, apply or grad, kwargs) of calls that must raise before writing anything.

    ``x`` has shape (3, 4): the gated halves split the last axis, and axis 0 (length 3) is odd.
    """
    kind = rec.kind
    p = params_of(rec.name)
    yield "unknown name", "apply", dict(name="definitely_not_an_activation", **p)
    for bp in _bad_params(rec):
        yield f"bad params {sorted(bp)}", "apply", dict(name=rec.name, **bp)
        yield f"bad params {sorted(bp)}", "grad", dict(name=rec.name, **bp)
    yield "bias of the wrong length", "apply", dict(name=rec.name, bias=dev.to_dev(np.ones(3, x.dtype)), **p)
    yield "bias of the wrong length", "grad", dict(name=rec.name, bias=dev.to_dev(np.ones(5, x.dtype)), **p)
    yield "2-d bias", "apply", dict(name=rec.name, bias=dev.to_dev(np.ones((1, 4), x.dtype)), **p)
    yield "dy of the wrong shape", "grad", dict(name=rec.name, dy=dev.to_dev(np.ones((2, 2), x.dtype)), **p)
    yield "dy of the wrong dtype", "grad", dict(name=rec.name, dy=dev.to_dev(np.ones(dy.shape, np.float16)), **p)
    if kind is Kind.ROWWISE:
        yield "where that does not broadcast", "apply", dict(name=rec.name, where=dev.to_dev(np.ones((2, 4), bool)), **p)
        yield "where that does not broadcast", "grad", dict(name=rec.name, where=dev.to_dev(np.ones((3, 3), bool)), **p)
    else:
        yield "where on a non-row-wise activation", "apply", dict(name=rec.name, where=dev.to_dev(np.ones((3, 4), bool)), **p)
    if kind is not Kind.ELEMENTWISE:
        yield "axis out of range", "apply", dict(name=rec.name, axis=2, **p)
        yield "axis out of range", "grad", dict(name=rec.name, axis=-3, **p)
        yield "axis not an int", "apply", dict(name=rec.name, axis=1.0, **p)
    if kind is Kind.GATED:
        yield "odd gated axis", "apply", dict(name=rec.name, axis=0, **p)
        yield "odd gated axis", "grad", dict(name=rec.name, axis=0, **p)
    yield "unknown backend", "apply", dict(name=rec.name, backend="not_a_backend", **p)
    yield "unknown backend", "grad", dict(name=rec.name, backend="not_a_backend", **p)


@pytest.mark.parametrize("name", REGISTRY.names())
def test_failed_calls_write_nothing(name, device):
    """Every kind of bad argument, every activation: out= (separate or x itself), x, dy, bias
    are byte-for-byte what they were, and only ValueError / TypeError / BackendUnavailable escape."""
    rec = REGISTRY.get(name)
    rng = np.random.default_rng(7)
    dtype = np.dtype(np.float32)
    x_host = rng.standard_normal((3, 4)).astype(dtype)
    y_shape = (3, 2) if rec.kind is Kind.GATED else (3, 4)
    dy_host = rng.standard_normal(y_shape).astype(dtype)
    checked = 0
    for in_place in (False, True):
        for label, fn, kw in _failing_calls(rec, x_host, dy_host, device):
            kw = dict(kw)
            name_ = kw.pop("name")
            x = device.to_dev(x_host.copy())
            dy = kw.pop("dy", device.to_dev(dy_host.copy()))
            out_shape = x_host.shape if fn == "grad" else y_shape
            if in_place and out_shape != x_host.shape:
                continue
            out = x if in_place else device.to_dev(_garbage(out_shape, dtype, rng))
            kw.setdefault("backend", device.name)
            watched = {"x": x, "out": out, "dy": dy, "bias": kw.get("bias"), "where": kw.get("where")}
            before = _snapshot(device, watched)
            with pytest.raises(DOCUMENTED) as info:
                if fn == "apply":
                    activations.apply(name_, x, out=out, **kw)
                else:
                    activations.grad(name_, x, dy, out=out, **kw)
            after = _snapshot(device, watched)
            for k in before:
                assert after[k] == before[k], (
                    f"{name} {fn} ({label}, {'out=x' if in_place else 'separate out'}): {k} was modified by a "
                    f"call that raised {type(info.value).__name__}: {info.value}"
                )
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize("name", ["gelu", "softmax", "swiglu"])
def test_failed_large_calls_write_nothing(name):
    """Arrays of several blocks (the NumPy backend's threaded path) fail as cleanly as small ones."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 70000)).astype(np.float32)
    kind = REGISTRY.get(name).kind
    y_shape = (16, 35000) if kind is Kind.GATED else x.shape
    for in_place in (False, True):
        if in_place and y_shape != x.shape:
            continue
        out = x if in_place else _garbage(y_shape, np.float32, rng)
        before = (x.tobytes(), out.tobytes())
        with pytest.raises(ValueError, match="bias"):
            activations.apply(name, x, out=out, bias=np.ones(3, np.float32))
        with pytest.raises(ValueError, match="dy"):
            activations.grad(name, x, np.ones((16, 3), np.float32), out=x if in_place else _garbage(x.shape, np.float32, rng))
        assert (x.tobytes(), out.tobytes()) == before


@pytest.mark.parametrize("name", ["tanh", "relu", "gelu"])
def test_out_overlapping_x_partially_gives_the_same_values(name):
    """out= that overlaps x without being x (a shifted view of the same buffer) must give the
    values of a call with a separate out, as NumPy's own ufuncs do."""
    rng = np.random.default_rng(5)
    n = 70000  # more than one block of the NumPy backend
    x0 = rng.standard_normal(n).astype(np.float32)
    expected = activations.apply(name, x0)
    buf = np.concatenate([x0, np.zeros(1, np.float32)])
    x, out = buf[:-1], buf[1:]  # out starts one element after x
    activations.apply(name, x, out=out)
    wrong = np.flatnonzero(out != expected)
    assert wrong.size == 0, f"{wrong.size} wrong values, the first at index {wrong[:1]} of {n}"


def _use_numpy_path(path: str, monkeypatch) -> None:
    """Pin the CPU backend to its compiled engine or to its NumPy fallback."""
    use_cpu_path(path, monkeypatch)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("name", ["relu", "gelu", "softmax", "swiglu"])
def test_read_only_out_is_refused(name, path, monkeypatch):
    """A read-only out= (separate, or x in place, or a view of immutable bytes) raises ValueError
    and keeps its bytes."""
    _use_numpy_path(path, monkeypatch)
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(2, 8)
    y_shape = (2, 4) if REGISTRY.get(name).kind is Kind.GATED else (2, 8)
    frozen = bytes(int(np.prod(y_shape)) * 4)
    outs = [np.frombuffer(frozen, np.float32).reshape(y_shape), np.zeros(y_shape, np.float32)]
    outs[1].setflags(write=False)
    for out in outs:
        before = out.tobytes()
        with pytest.raises(ValueError):
            activations.apply(name, x, out=out)
        assert out.tobytes() == before
        with pytest.raises(ValueError):
            activations.grad(name, x, np.ones(y_shape, np.float32), out=np.frombuffer(bytes(x.nbytes), np.float32).reshape(x.shape))
    assert frozen == bytes(len(frozen)), "an immutable bytes object was modified"
    xr = x.copy()
    xr.setflags(write=False)
    if y_shape == x.shape:
        with pytest.raises(ValueError):
            activations.apply(name, xr, out=xr)
        np.testing.assert_array_equal(xr, x)


# ------------------------------------------------------------- no injection
def hostile_strings(sentinel: Path) -> list[str]:
    s = str(sentinel)
    return [
        f"__import__('os').system('touch {s}')",
        f"relu\"); __import__('os').system('touch {s}'); (\"",
        f"relu */ }} extern \"C\" __global__ void pwn() {{ system(\"touch {s}\"); }} /*",
        "relu\n#include </etc/passwd>\n",
        f"relu, f32)\nACT_ELEMENTWISE(relu, Relu, f32); int x = system(\"touch {s}\"",
        f"$(touch {s})",
        f"`touch {s}`",
        f"; touch {s}",
        f"| touch {s}",
        f"../../../../{s}",
        "{0.__class__.__mro__[1].__subclasses__}",
        "%s%s%s%n",
        "relu\x00gelu",
        "\u202erelu",
        "ＲＥＬＵ",
        "re\u200blu",
        "\ud800",
        "relu" * 2000,
        "",
        " ",
        "-",
    ]


def test_hostile_strings_are_rejected_without_side_effects(device, tmp_path):
    """As names, parameter values, parameter keys, axis, backend: a documented exception, no
    file created, nothing new imported, no control character copied into the message."""
    sentinel = tmp_path / "pwned"
    x = device.to_dev(np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4))
    dy = device.to_dev(np.ones((2, 4), np.float32))
    activations.apply("gelu", x, backend=device.name)  # warm up: lazy imports happen here
    modules = set(sys.modules)
    calls = 0
    for s in hostile_strings(sentinel):
        attempts = [
            lambda: activations.apply(s, x, backend=device.name),
            lambda: activations.grad(s, x, dy, backend=device.name),
            lambda: activations.apply("relu", x, backend=s),
            lambda: activations.apply("softmax", x, axis=s, backend=device.name),
            lambda: activations.apply("elu", x, backend=device.name, **{s or "_": 1.0}),
        ]
        for rec in REGISTRY:
            for p in rec.params:
                kw = {**params_of(rec.name), p.name: s}
                attempts.append(lambda rec=rec, kw=kw: activations.apply(rec.name, x, backend=device.name, **kw))
        for attempt in attempts:
            with pytest.raises(DOCUMENTED) as info:
                attempt()
            # input reaches messages only as repr(): no raw newline or control character (log injection)
            assert not re.search(r"[\x00-\x08\x0a-\x1f]", str(info.value)), repr(str(info.value)[:200])
            calls += 1
    assert not sentinel.exists(), "a hostile string ran a shell command"
    assert set(sys.modules) <= modules, f"hostile strings imported {sorted(set(sys.modules) - modules)}"
    assert calls > 500


def test_hostile_name_message_is_truncated():
    with pytest.raises(ValueError) as info:
        activations.apply("x" * 100000, np.ones(3))
    assert len(str(info.value)) < 300


def test_package_never_evaluates_text():
    """No eval/exec/shell anywhere in the package, except code generated from integers only
    (the Numba strided copies, checked below)."""
    allowed = {("backends/numba/kernels.py", "exec(compile(_strided_source(")}
    bad = []
    for path in sorted((ROOT / "activations").rglob("*.py")):
        rel = path.relative_to(ROOT / "activations").as_posix()
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern in (r"\beval\(", r"\bexec\(", r"shell\s*=\s*True", r"os\.system\(", r"os\.popen\(", r"pickle\.loads?\("):
                if re.search(pattern, code) and not any(rel == f and snippet in code for f, snippet in allowed):
                    bad.append(f"{rel}:{lineno}: {line.strip()}")
    assert not bad, "text evaluated or run by a shell:\n" + "\n".join(bad)


def test_numba_generated_source_is_made_of_integers_only():
    kernels = pytest.importorskip("activations.backends.numba.kernels")
    for kind in ("gather", "scatter"):
        for dst in range(0, 5):
            for src in range(0, dst + 1):
                text = kernels._strided_source(kind, dst, src)
                words = set(re.findall(r"[A-Za-z_]\w*", text))
                assert words <= {"def", "kernel", "src", "dst", "n", "shape", "for", "i", "in", "range", "cuda", "grid",
                                 "gridsize", "r", "min"} | {f"i{d}" for d in range(max(dst, 1))}, (kind, dst, src, words)


# the user spellings of valid calls: aliases, case and dashes, choice spellings, parameter aliases
SPELLINGS = [
    ("Leaky-ReLU", {"alpha": 0.1}),
    (" GELU ", {"approximate": True}),
    ("gelu", {"approximate": "tanh"}),
    ("SWISH", {}),
    ("hardswish", {}),
    ("softshrink", {"lambd": 0.25}),
    ("threshold", {"threshold": 0.5, "default_value": -1.0}),
    ("SoftMax", {}),
    ("geglu", {"approximate": False}),
    ("identity", {}),
]


def test_cuda_sources_name_only_our_identifiers(monkeypatch):
    """The CuPy backend's generated modules (what NVRTC compiles and CuPy's disk cache keys on)
    contain registry names, functor names and dtype names only, whatever the user spelled.

    Runs without a GPU: the CuPy backend's launcher is given a stand-in for ``cupy`` whose
    RawModule records the source and whose kernels do nothing (arrays are NumPy's), behind the
    public interface with its validation."""
    cupy_backend = pytest.importorskip("activations.backends.cuda")
    ops = pytest.importorskip("activations.backends.cuda.ops")
    src = pytest.importorskip("activations.backends.cuda.source")
    from types import SimpleNamespace

    recorded: list[tuple[str, tuple]] = []

    class Kernel:
        max_dynamic_shared_size_bytes = 0

        def __call__(self, *args, **kwargs):
            pass  # nothing runs: only the source text matters here

    class Recording:  # cupy.RawModule
        def __init__(self, code, options=()):
            recorded.append((code, tuple(options)))

        def get_function(self, name):
            return Kernel()

    class Device:
        def __init__(self, device_id=0):
            self.id = device_id
            self.attributes = {"MultiProcessorCount": 4, "MaxThreadsPerBlock": 1024, "MaxThreadsPerMultiProcessor": 2048,
                               "MaxSharedMemoryPerBlock": 48 * 1024, "MaxSharedMemoryPerBlockOptin": 96 * 1024}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class FakeCupy:
        RawModule = Recording
        cuda = SimpleNamespace(Device=Device)

        def __getattr__(self, attr):  # array functions: NumPy's
            return getattr(np, attr)

    class Launcher(cupy_backend.CupyLauncher):
        @staticmethod
        def address(array):
            return array.ctypes.data

    class Recorder(ops.KernelBackend):
        name = "cupy_source_recorder"

        def __init__(self):
            launcher = Launcher(FakeCupy(), 0)
            super().__init__(lambda x: launcher)  # one device

        def available(self):
            return True, "records kernel sources"

        def owns(self, obj):
            return isinstance(obj, np.ndarray)

        def asarray(self, obj, what, dtype=None):
            arr = obj if isinstance(obj, np.ndarray) else np.asarray(obj, dtype=np.float64 if dtype is None else dtype)
            return arr if dtype is None or arr.dtype == np.dtype(dtype) else arr.astype(dtype)

    backend = Recorder()
    monkeypatch.setitem(dispatch.BACKEND_MODULES, backend.name, __name__)
    monkeypatch.setitem(dispatch._loaded, backend.name, backend)
    for name, kw in SPELLINGS:
        rec = REGISTRY.get(name)
        for dt in (np.float16, np.float32, np.float64):
            x = np.linspace(-2, 2, 8, dtype=dt).reshape(2, 4)
            y = activations.apply(name, x, backend=backend.name, **kw)
            activations.grad(name, x, np.ones(np.shape(y), dt), backend=backend.name, **kw)
        assert rec.name in REGISTRY.names()
    assert recorded, "no module was compiled"
    allowed = set(REGISTRY.names()) | {src.functor_name(n) for n in REGISTRY.names()} | set(src.KERNEL_DTYPES)
    allowed |= {"colsum"}
    user_words = {w for name, kw in SPELLINGS for w in re.findall(r"[A-Za-z_][\w-]*", " ".join([name, *map(str, kw), *map(str, kw.values())]))}
    header = src.header_text()
    for code, options in recorded:
        assert code.startswith(header), "a module's text is not the packaged kernels plus entry lines"
        generated = code[len(header):]
        for line in filter(None, (ln.strip() for ln in generated.splitlines())):
            if line.startswith("//"):
                continue
            m = re.fullmatch(r"ACT_[A-Z0-9_]+\(([A-Za-z0-9_, ]*)\)", line)
            assert m, f"unexpected generated line {line!r}"
            words = set(re.findall(r"[A-Za-z_]\w*", m.group(1)))
            assert words <= allowed, f"generated line {line!r} names {words - allowed}"
            assert not (words & (user_words - allowed)), f"user spelling in {line!r}"
        assert all(not any(ch in o for ch in ";|`$\n") for o in options), options


@pytest.mark.parametrize("bad", ["relu); system(\"id\"); (", "../relu", "Relu", "relu f32", "", "relu\n"])
def test_cuda_source_builders_reject_foreign_identifiers(bad):
    src = pytest.importorskip("activations.backends.cuda.source")
    with pytest.raises(ValueError):
        src.KernelModule(bad, "f32")
    with pytest.raises(ValueError):
        src.entry(bad, "fwd", "f32")
    with pytest.raises(ValueError):
        src.KernelModule("relu", bad or "x")


def test_numba_kernel_cache_keys_are_our_identifiers(tmp_path):
    """Every compiled Numba kernel is keyed by (kind, registry or helper name, dtype, variant)."""
    ok, why = dispatch.status("numba")
    if not ok:
        pytest.skip(why)
    from numba import cuda

    kernels = pytest.importorskip("activations.backends.numba.kernels")
    x = cuda.to_device(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4))
    dy = cuda.to_device(np.ones((2, 4), np.float32))
    for name, kw in [("Leaky-ReLU", {"alpha": 0.1}), (" GELU ", {"approximate": True}), ("SoftMax", {})]:
        activations.apply(name, x, backend="numba", **kw)
        activations.grad(name, x, dy, backend="numba", **kw)
    names = set(REGISTRY.names()) | {"sum", "prelu_dweight", "-"} | set(kernels.DTYPES)
    for spec in list(kernels._compiled):
        assert spec.kind in {"elementwise", "gated", "rowwise", "colsum", "finalize", "cast", "gather", "scatter"}, spec
        assert spec.dtype in set(kernels.DTYPES) | {"bool"}, spec
        assert spec.name in names or re.fullmatch(r"\d_\d|u?int(8|16|32|64)|b?float(16|32|64)", spec.name), spec  # casts: dtype names
        assert spec.variant in ("", "-", "fwd", "bwd", None) or re.fullmatch(r"[a-z0-9_]+", str(spec.variant)), spec


def _mode_problem(path: Path) -> str | None:
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by group or others ({stat.filemode(mode)})"
    return None


def test_compiled_libraries_are_not_group_or_world_writable():
    """Libraries we load (the CPU engine's modules, the CUDA C harness of the tests) cannot be
    replaced by other users: no group/world write bit on them or their directory."""
    from activations.backends.cpu import engine

    candidates: list[Path] = []
    for isa in engine.supported_isas():
        candidates.append(Path(engine._import(isa).__file__))
    build = ROOT / "tests" / "cuda_host" / "build"
    if build.is_dir():
        candidates += sorted(build.glob("*.so"))
    if not candidates:
        pytest.skip("no compiled library on this machine")
    problems = [p for path in candidates for p in (_mode_problem(path), _mode_problem(path.parent)) if p]
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------- subprocesses
def run_python(code: str, timeout: float = 180, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter (this checkout first on sys.path); it prints one JSON line last."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    full_env.pop("ACTIVATIONS_BACKEND", None)
    full_env.update(env or {})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, env=full_env)
    assert done.returncode == 0, f"subprocess failed ({done.returncode}):\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


CONCURRENCY = r"""
import json, threading, importlib, sys
import numpy as np
from concurrent import futures
import activations
from activations import dispatch
from activations.backends.cpu import engine

pools = []
class CountingPool(futures.ThreadPoolExecutor):
    def __init__(self, *a, **k):
        pools.append(1)
        super().__init__(*a, **k)
futures.ThreadPoolExecutor = CountingPool

loads = []
class CountingImport:
    def import_module(self, name, *a):
        loads.append(name)
        return importlib.import_module(name, *a)
dispatch.importlib = CountingImport()

PARAMS = {"threshold": {"threshold": 0.25, "value": -1.0}, "rrelu": {"training": True, "seed": 3}}
rng = np.random.default_rng(0)
small = rng.standard_normal((6, 8)).astype(np.float32)
large = rng.standard_normal((64, 1 << 15)).astype(np.float32)   # 2M elements: the engine's thread pool
names = activations.names()
THREADS = 8
barrier = threading.Barrier(THREADS)
results = [None] * THREADS
errors = []

def job(t):
    try:
        barrier.wait()
        out = {}
        for i in range(len(names)):
            name = names[(i + t) % len(names)]   # every thread starts on a different activation
            kw = PARAMS.get(name, {})
            y = activations.apply(name, small, **kw)
            g = activations.grad(name, small, np.ones_like(y), **kw)
            out[name] = (y, g[0] if isinstance(g, tuple) else g)
        for name in ("gelu", "softmax", "swiglu")[t % 3:] [:1]:
            y = activations.apply(name, large)
            out["large " + name] = (y, activations.grad(name, large, np.ones_like(y)))
        results[t] = out
    except BaseException as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=job, args=(t,)) for t in range(THREADS)]
for th in threads: th.start()
for th in threads: th.join()
mismatch = []
for t, out in enumerate(results):
    if out is None:
        continue
    for key, (y, g) in out.items():
        name = key.split()[-1]
        x = large if key.startswith("large") else small
        kw = PARAMS.get(name, {})
        y1 = activations.apply(name, x, **kw)
        g1 = activations.grad(name, x, np.ones_like(y1), **kw)
        g1 = g1[0] if isinstance(g1, tuple) else g1
        if not (np.array_equal(y, y1, equal_nan=True) and np.array_equal(g, g1, equal_nan=True)):
            mismatch.append(f"thread {t} {key}")
print(json.dumps({"errors": errors, "mismatch": mismatch, "pools": len(pools), "loads": loads,
                  "native": engine.module() is not None, "threads_done": sum(r is not None for r in results)}))
"""


@pytest.mark.slow
def test_concurrent_cold_start_numpy():
    """8 threads at once on a cold process, every activation forward and backward plus large
    arrays that use the engine's thread pool: identical results to single-threaded calls, one
    backend import, no Python thread pool."""
    got = run_python(CONCURRENCY, timeout=240)
    assert not got["errors"], got["errors"]
    assert got["threads_done"] == 8
    assert not got["mismatch"], got["mismatch"]
    assert got["loads"].count("activations.backends.cpu") == 1, got["loads"]
    assert got["pools"] == 0, f"the CPU backend created {got['pools']} Python thread pools"


NUMBA_CONCURRENCY = r"""
import json, os, threading
import numpy as np
from numba import cuda
import activations
from activations.backends.numba import kernels as K

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    # The simulator keeps its kernel context in a global: it cannot run two kernels at once from
    # different threads (a real GPU can). Launches are serialized; first calls and compiles are not.
    from numba.cuda.simulator import kernel as sim
    launch_lock = threading.Lock()
    unlocked = sim.FakeCUDAKernel.__call__
    def locked(self, *args):
        if self._device or hasattr(threading.current_thread(), "blockIdx"):  # a call inside a kernel
            return unlocked(self, *args)
        with launch_lock:
            return unlocked(self, *args)
    sim.FakeCUDAKernel.__call__ = locked

builds = {}
real_build = K.build
def counting(spec):
    builds[str(spec)] = builds.get(str(spec), 0) + 1
    return real_build(spec)
K.build = counting

x = np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4)
THREADS = 4
barrier = threading.Barrier(THREADS)
errors, outs = [], [None] * THREADS
def job(t):
    try:
        xd = cuda.to_device(x)
        barrier.wait()
        y = activations.apply("gelu", xd, backend="numba").copy_to_host()
        s = activations.apply("softmax", xd, backend="numba").copy_to_host()
        outs[t] = (y, s)
    except BaseException as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=job, args=(t,)) for t in range(THREADS)]
for th in threads: th.start()
for th in threads: th.join()
ref_y = activations.apply("gelu", x)
ref_s = activations.apply("softmax", x)
bad = [t for t, o in enumerate(outs) if o is None or not (np.allclose(o[0], ref_y, rtol=1e-5, atol=1e-6) and np.allclose(o[1], ref_s, rtol=1e-5, atol=1e-6))]
print(json.dumps({"errors": errors, "bad": bad, "builds": builds}))
"""


@pytest.mark.slow
def test_concurrent_cold_start_numba():
    """Numba (simulator without a GPU): concurrent first calls compile each kernel once."""
    ok, why = dispatch.status("numba")
    if not ok:
        pytest.skip(why)
    got = run_python(NUMBA_CONCURRENCY, timeout=300)
    assert not got["errors"], got["errors"]
    assert not got["bad"], f"threads {got['bad']} got wrong values"
    assert got["builds"] and all(n == 1 for n in got["builds"].values()), got["builds"]


CUPY_CONCURRENCY = r"""
import json, threading
import numpy as np
import cupy
import activations

modules = {}
real = cupy.RawModule
def counting(*a, code=None, **k):
    key = hash(code)
    modules[key] = modules.get(key, 0) + 1
    return real(*a, code=code, **k)
cupy.RawModule = counting

x = cupy.asarray(np.random.default_rng(0).standard_normal((64, 1000)).astype(np.float32))
names = activations.names()
THREADS = 8
barrier = threading.Barrier(THREADS)
errors, outs = [], [None] * THREADS
def job(t):
    try:
        barrier.wait()
        outs[t] = {n: cupy.asnumpy(activations.apply(n, x, **({"threshold": 0.5, "value": 0.0} if n == "threshold" else {}))) for n in names}
    except BaseException as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=job, args=(t,)) for t in range(THREADS)]
for th in threads: th.start()
for th in threads: th.join()
bad = [t for t, o in enumerate(outs) if o is None or any(not np.array_equal(o[n], outs[0][n], equal_nan=True) for n in names)]
print(json.dumps({"errors": errors, "bad": bad, "compiles": sorted(modules.values())}))
"""


@pytest.mark.gpu
@pytest.mark.slow
def test_concurrent_cold_start_cupy():
    ok, why = dispatch.status("cupy")
    if not ok:
        pytest.skip(why)
    got = run_python(CUPY_CONCURRENCY, timeout=600)
    assert not got["errors"], got["errors"]
    assert not got["bad"], got["bad"]
    assert got["compiles"] and max(got["compiles"]) == 1, got["compiles"]


# -------------------------------------------------------------- resources
RESOURCES = r"""
import gc, json, os, threading
import numpy as np
import activations

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
def fds():
    return len(os.listdir("/proc/self/fd"))
def os_threads():  # Python threads and native ones (the compiled CPU loops' pool)
    return len(os.listdir("/proc/self/task"))

PARAMS = {"threshold": {"threshold": 0.25, "value": -1.0}}
names = activations.names()
x = np.linspace(-3, 3, 8, dtype=np.float32)
dy_half = np.ones(4, np.float32)
dy = np.ones(8, np.float32)
calls = 0
def one(i):
    name = names[i % len(names)]
    kw = PARAMS.get(name, {})
    if i % 10 == 9:
        activations.grad(name, x, dy_half if name in ("glu", "swiglu", "geglu", "reglu") else dy, **kw)
    else:
        activations.apply(name, x, **kw)

# warm-up: every activation, both directions, every dtype, and one large call (starts the pool)
for dt in (np.float16, np.float32, np.float64):
    for i in range(2 * len(names) * 10):
        one(i)
big = np.ones(1 << 21, np.float32)
activations.apply("gelu", big)
del big
for i in range(20000):
    one(i)
gc.collect()
rss0, fds0, threads0, tasks0 = rss_mb(), fds(), threading.active_count(), os_threads()
N = 100000
mid = None
for i in range(N):
    one(i)
    if i == N // 2:
        gc.collect()
        mid = rss_mb()
gc.collect()
rss1, fds1, threads1, tasks1 = rss_mb(), fds(), threading.active_count(), os_threads()
print(json.dumps({"calls": N, "rss0": rss0, "rss_mid": mid, "rss1": rss1, "fds0": fds0, "fds1": fds1,
                  "threads0": threads0, "threads1": threads1, "tasks0": tasks0, "tasks1": tasks1}))
"""


@pytest.mark.slow
def test_many_small_calls_leak_nothing():
    """100k calls on 8-element arrays after warm-up: RSS grows by less than 20 MB (and by less
    than 5 MB over the second half), no file descriptor and no thread is left behind."""
    got = run_python(RESOURCES, timeout=300)
    growth, second_half = got["rss1"] - got["rss0"], got["rss1"] - got["rss_mid"]
    print(f"\nresources: {got['calls']} calls, RSS {got['rss0']:.1f} -> {got['rss1']:.1f} MB "
          f"(+{growth:.2f}), fds {got['fds0']} -> {got['fds1']}, threads {got['threads0']} -> {got['threads1']} "
          f"(OS threads {got['tasks0']} -> {got['tasks1']})")
    assert growth < 20, got
    assert second_half < 5, got
    assert got["fds1"] == got["fds0"], got
    assert got["threads1"] == got["threads0"], got
    assert got["tasks1"] == got["tasks0"], got


def test_threads_that_exit_release_their_scratch():
    """Per-thread scratch buffers are freed with their thread: 200 short-lived threads calling
    apply leave no threads behind and RSS within a few MB."""
    got = run_python(r"""
        import gc, json, threading
        import numpy as np
        import activations
        def rss_mb():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        x = np.ones(100000, np.float32)
        def work():
            activations.apply("gelu", x)
            activations.apply("gelu", x.astype(np.float64))
        for _ in range(20):
            t = threading.Thread(target=work); t.start(); t.join()
        gc.collect()
        r0, n0 = rss_mb(), threading.active_count()
        for _ in range(200):
            t = threading.Thread(target=work); t.start(); t.join()
        gc.collect()
        print(json.dumps({"growth": rss_mb() - r0, "threads": threading.active_count() - n0}))
    """)
    assert got["threads"] == 0, got
    assert got["growth"] < 20, got
