"""Shared pytest configuration: markers, dtypes, backends, random generators.

Without an NVIDIA GPU the Numba CUDA simulator is switched on here, before
anything imports numba (it reads NUMBA_ENABLE_CUDASIM once, at import).
"""
from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _has_nvidia_gpu() -> bool:
    # Device nodes only: importing cupy here would be slow and may touch the driver.
    return any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl"))


HAS_GPU = _has_nvidia_gpu()
if not HAS_GPU:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

# `import activations` from a checkout and `import reference` from any test directory.
for p in (str(ROOT), str(TESTS)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import reference  # noqa: E402


def _lock_simulator_shared_arrays() -> None:
    """The simulator creates a block's ``cuda.shared.array`` when the first of its threads asks, by
    an unlocked check-then-set on a dict keyed by the calling line: two threads that interleave
    there hold different arrays, and the block's reductions mix them (rare wrong row sums in the
    row-wise tests, on a loaded machine).  The same lookup under one lock."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        return
    try:
        import threading

        from numba.cuda.simulator import kernelapi
    except ImportError:
        return
    unlocked = kernelapi.FakeCUDAShared.array
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory (one buffer), or refused
            return unlocked(self, shape, dtype, alignment)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with lock:
            got = self._allocations.get(key)
            if got is None:
                if isinstance(dtype, kernelapi.types.Type):  # the simulator's own conversion
                    dtype = kernelapi.numpy_support.as_dtype(dtype)
                got = self._allocations[key] = np.empty(shape, dtype)
        return got

    kernelapi.FakeCUDAShared.array = array


_lock_simulator_shared_arrays()

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "activations",
        deadline=None,
        max_examples=40,
        derandomize=True,  # the same examples every run
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "activations"))
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass

MARKERS = {
    "slow": "takes more than a few seconds (deselect with -m 'not slow')",
    "cuda_host": "runs the CUDA C kernels on the CPU through the C++ host harness",
    "numba_sim": "runs Numba CUDA kernels (on the simulator when there is no GPU)",
    "gpu": "needs a real NVIDIA GPU; skipped without one",
}


def pytest_addoption(parser):
    parser.addoption(
        "--backend",
        action="store",
        default="auto",
        help="comma-separated backends the kind tests run on; 'numpy-fallback' is the CPU backend "
        "without its compiled engine; default 'auto': numpy, plus numpy-fallback when the engine is in use",
    )


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_collection_modifyitems(config, items):
    if HAS_GPU:
        return
    skip = pytest.mark.skip(reason="no NVIDIA GPU on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _backend_names(config) -> list[str]:
    names = [b.strip() for b in config.getoption("--backend").split(",") if b.strip()]
    if names == ["auto"]:
        # the CPU backend runs its compiled engine when installed, the NumPy fallback otherwise: test both
        names = ["numpy"] + (["numpy-fallback"] if _engine_installed() else [])
    return names


def _engine_installed() -> bool:
    from activations.backends.cpu import engine

    return engine.module() is not None


#: the two paths of the CPU backend ("numpy"): its compiled engine and its NumPy fallback
CPU_PATHS = ("engine", "fallback")


def use_cpu_path(path: str, monkeypatch) -> None:
    """Pin the CPU backend to its compiled engine (skip when not installed), to the engine's
    baseline x86-64 build ("engine-baseline": skipped where that is the only build this CPU runs,
    the "engine" case then) or to its fallback."""
    if path.startswith("engine"):
        from activations.backends.cpu import engine

        if not _engine_installed():
            pytest.skip(f"the compiled CPU engine is not in use here: {engine.WHY_NOT}")
        monkeypatch.setenv("ACTIVATIONS_NATIVE", "1")
        if path == "engine-baseline":
            if engine.supported_isas() == ("baseline",):
                pytest.skip("this CPU runs only the baseline build: covered by the engine case")
            monkeypatch.setenv("ACTIVATIONS_CPU_ISA", "baseline")
        else:
            monkeypatch.delenv("ACTIVATIONS_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ACTIVATIONS_NATIVE", "0")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", _backend_names(metafunc.config), indirect=True)


# ----------------------------------------------------------------- fixtures
DTYPES = reference.DTYPES
DTYPE_IDS = [d.name for d in DTYPES]


@pytest.fixture(params=DTYPES, ids=DTYPE_IDS)
def dtype(request) -> np.dtype:
    """Every supported dtype: float16, bfloat16, float32, float64."""
    return request.param


@pytest.fixture
def backend(request, monkeypatch) -> str:
    """The backend= argument of the kind tests (parametrized by --backend)."""
    name = request.param
    if name == "numpy-fallback":
        use_cpu_path("fallback", monkeypatch)
        return "numpy"
    return name


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test's id: reproducible, different per test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(scope="module")
def cuda_host():
    """The CUDA C kernels, run on the CPU by the host harness (tests/cuda_host), registered for the
    module as the backend named "cuda_host" (the name this yields)."""
    import shutil

    from cuda_host import harness

    if shutil.which(harness.CXX) is None:
        pytest.skip(f"no C++ compiler ({harness.CXX})")
    library = harness.HostLibrary(harness.build())
    with harness.registered(harness.HostBackend(harness.HostLauncher(library))):
        yield "cuda_host"
