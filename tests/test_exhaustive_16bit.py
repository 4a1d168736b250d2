"""Every element-wise activation, forward and backward, at all 65,536 float16 and all 65,536
bfloat16 inputs, on the CPU engine, the NumPy fallback and the CUDA C kernels (through the host
harness): the result is the exact value rounded once to the dtype (the
nearest representable value; either neighbour where the exact value is a tie).

The exact value is the float64 oracle of tests/reference.py, rounded to the 16-bit type here
with round-to-odd through float32 (so the float64 -> 16-bit rounding happens once).  Where the
oracle lies within a few float64 ulps of a 16-bit tie, either neighbour is accepted.  A few
activations are defined in compute precision (rrelu draws its slope in float32; hard_sigmoid
derives offset/slope and 1/slope in float32, docs/semantics.md): the oracle follows
hard_sigmoid; rrelu is left out (its float32 slope times x rounds twice on the way to 16 bits,
and the oracle draws the slope in float64).  Zeros compare equal whatever their sign.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import activations
import reference as R
from activations.catalogue import REGISTRY
from conftest import CPU_PATHS, use_cpu_path

DTYPES = [d for d in (R.F16, R.BFLOAT16) if d is not None]
NAMES = [n for n in REGISTRY.names("elementwise") if n != "rrelu"]
PARAMS = {"threshold": dict(threshold=0.5, value=-2.0)}


def all_values(dtype) -> np.ndarray:
    x = np.arange(65536, dtype=np.uint16).view(dtype)
    return x[~np.isnan(x.astype(np.float64))]


def round_once(v: np.ndarray, dtype) -> np.ndarray:
    """float64 -> dtype, rounded once: to float32 with round-to-odd, then to dtype."""
    f = v.astype(np.float32)
    with np.errstate(invalid="ignore"):
        inexact = np.isfinite(f) & (f.astype(np.float64) != v)
        away = inexact & (np.abs(f.astype(np.float64)) > np.abs(v))
    b = f.view(np.uint32).copy()
    b[away] -= 1
    b[inexact] |= 1
    return b.view(np.float32).astype(dtype)


def neighbours_of_ties(v: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Where v is within 4 float64 ulps of a tie between two dtype values: (mask, both of them)."""
    up = round_once(v * (1 + 2.0**-50), dtype)
    down = round_once(v * (1 - 2.0**-50), dtype)
    return up.view(np.uint16) != down.view(np.uint16), (up, down)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("dtype", DTYPES, ids=[d.name for d in DTYPES])
@pytest.mark.parametrize("name", NAMES)
def test_correctly_rounded(name, dtype, direction, path, monkeypatch):
    use_cpu_path(path, monkeypatch)
    check_correctly_rounded(name, dtype, direction)


@pytest.fixture(scope="module")
def cuda_host():
    """The CUDA C kernels, run on the CPU by the host harness (tests/cuda_host)."""
    from cuda_host import harness

    if shutil.which(harness.CXX) is None:
        pytest.skip(f"no C++ compiler ({harness.CXX})")
    library = harness.HostLibrary(harness.build())
    with harness.registered(harness.HostBackend(harness.HostLauncher(library))):
        yield "cuda_host"


@pytest.mark.cuda_host
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("dtype", DTYPES, ids=[d.name for d in DTYPES])
@pytest.mark.parametrize("name", NAMES)
def test_cuda_kernels_correctly_rounded(name, dtype, direction, cuda_host):
    check_correctly_rounded(name, dtype, direction, backend=cuda_host)


def check_correctly_rounded(name, dtype, direction, backend=None):
    params = PARAMS.get(name, {})
    x = all_values(dtype)
    with np.errstate(all="ignore"):
        if direction == "forward":
            got = activations.apply(name, x, backend=backend, **params)
            exact = np.asarray(R.forward(name, x, **params), np.float64)
        else:
            dy = np.ones_like(x)
            got = activations.grad(name, x, dy, backend=backend, **params)
            exp = R.backward(name, x, dy, **params)
            got, exp = (got[0], exp[0]) if isinstance(got, tuple) else (got, exp)
            exact = np.asarray(exp, np.float64)
        want = round_once(exact, dtype)
    got = np.asarray(got)
    g, w = got.astype(np.float64), want.astype(np.float64)
    tie, (up, down) = neighbours_of_ties(exact, dtype)
    ok = (g == w) | (np.isnan(g) & np.isnan(w)) | (tie & ((g == up.astype(np.float64)) | (g == down.astype(np.float64))))
    bad = np.nonzero(~ok)[0]
    assert bad.size == 0, (
        f"{name} {direction} {np.dtype(dtype).name} ({backend or 'cpu'}): {bad.size} of {x.size} results not correctly "
        f"rounded, e.g. x={[float(v) for v in x[bad[:4]]]} got {[float(v) for v in got[bad[:4]]]} "
        f"want {[float(v) for v in want[bad[:4]]]} (exact {exact[bad[:4]].tolist()})"
    )
