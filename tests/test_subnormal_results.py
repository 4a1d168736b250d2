"""Element-wise results in the subnormal range, on every backend, against mpmath.

Where the exact result is below the smallest normal number (float64: exp(x) for x < -708.4, down
to -745.1 where it rounds to 0; float32 below -87.3), its error is measured in units of the
smallest subnormal (2^-1074, 2^-149) and held to 1: a result rounded once to the subnormal grid
is within 0.5, one more rounding of a product or quotient there costs another 0.5 or so, while a
result flushed to 0 (log1mexp' computed as 1 / expm1(x) once expm1 overflows: every float64
x > 709.8) is off by its whole value, up to 2^52 units.  Normal results of the same sweeps are
held to 4 ulps.  Dense sweeps of [-750, -700] (and of [700, 750] where the function decays on the
right), with the transition regions sampled more finely; float32 on [-110, -80] and [80, 110].

Backends: the CPU engine, the NumPy fallback, Dask (its chunks on the CPU), the CUDA C kernels
through the host harness and the Numba kernels compiled for the CPU by numba.njit (the same
source as the GPU kernels).  selu' (scale alpha exp(x): the constant multiplies an exp already
rounded to the subnormal grid) is held to 3.5; silu and mish are left to tests/test_grad_accuracy.py.
"""
from __future__ import annotations

import os

import mpmath
import numpy as np
import pytest

import activations
from conftest import use_cpu_path

SELU_K = mpmath.mpf("1.0507009873554804934193349852946") * mpmath.mpf("1.6732632423543772848170429916717")


def _sig(x):
    return 1 / (1 + mpmath.exp(-x))


#: (name, direction, side, exact(x)): side "left" decays towards -inf, "right" towards +inf
CASES = [
    ("exponential", "forward", "left", mpmath.exp),
    ("exponential", "backward", "left", mpmath.exp),
    ("sigmoid", "forward", "left", _sig),
    ("sigmoid", "backward", "left", lambda x: _sig(x) * _sig(-x)),
    ("sigmoid", "backward", "right", lambda x: _sig(x) * _sig(-x)),
    ("softplus", "forward", "left", lambda x: mpmath.log1p(mpmath.exp(x))),
    ("softplus", "backward", "left", _sig),
    ("log_sigmoid", "backward", "right", lambda x: _sig(-x)),
    ("elu", "backward", "left", mpmath.exp),
    ("celu", "backward", "left", mpmath.exp),
    ("selu", "backward", "left", lambda x: SELU_K * mpmath.exp(x)),
    ("log1mexp", "forward", "right", lambda x: mpmath.log1p(-mpmath.exp(-x))),
    ("log1mexp", "backward", "right", lambda x: 1 / mpmath.expm1(x)),
]
BOUND_UNITS = {"selu": 3.5}
BACKENDS = ["engine", "fallback", "dask", "cuda_host", "numba_cpu"]
DTYPES = [np.float64, np.float32]


def _case_id(case):
    return f"{case[0]}-{case[1]}-{case[2]}"


def sweep(dtype, side: str) -> np.ndarray:
    if dtype == np.float64:
        left = np.concatenate([np.linspace(-750, -700, 2001), np.linspace(-745.2, -744.0, 241),
                               np.linspace(-709.9, -707.9, 241)])
    else:
        left = np.concatenate([np.linspace(-110, -80, 1501), np.linspace(-104, -102.5, 151),
                               np.linspace(-89, -86.5, 151)])
    x = left.astype(dtype)
    return x if side == "left" else -x


def exact(fn, x: np.ndarray) -> np.ndarray:
    with mpmath.workdps(40):
        return np.array([float(fn(mpmath.mpf(float(v)))) for v in x])


def compute(backend, name, direction, x, request, monkeypatch):
    dy = np.ones_like(x)
    if backend in ("engine", "fallback"):
        use_cpu_path(backend, monkeypatch)
        backend = "numpy"
    elif backend == "dask":
        da = pytest.importorskip("dask.array")
        xd, dyd = da.from_array(x, chunks=x.size // 3 + 1), da.from_array(dy, chunks=x.size // 3 + 1)
        out = activations.apply(name, xd, backend="dask") if direction == "forward" else \
            activations.grad(name, xd, dyd, backend="dask")
        return np.asarray(out.compute())
    elif backend == "cuda_host":
        request.getfixturevalue("cuda_host")
    elif backend == "numba_cpu":
        K = pytest.importorskip("activations.backends.numba.kernels")
        dt = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}[x.dtype]
        kernel = K.cpu_kernel(K.Spec("elementwise", name, dt, "fwd" if direction == "forward" else "bwd"))
        bound = activations.catalogue.REGISTRY.get(name).bind({})
        p = tuple(x.dtype.type(v) for v in (list(bound.kernel_floats()) + [0.0] * 3)[:3])
        out = np.empty_like(x)
        kernel(x, dy, x, x, out, x.size, 1, 0, p, np.uint64(0), False)
        return out
    if direction == "forward":
        return np.asarray(activations.apply(name, x, backend=backend))
    return np.asarray(activations.grad(name, x, dy, backend=backend))


@pytest.mark.parametrize("dtype", DTYPES, ids=[np.dtype(d).name for d in DTYPES])
@pytest.mark.parametrize("where_", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_subnormal_results(case, where_, dtype, request, monkeypatch):
    name, direction, side, fn = case
    if where_ == "cuda_host":
        request.node.add_marker(pytest.mark.cuda_host)
    x = sweep(dtype, side)
    want = exact(fn, x)
    got = compute(where_, name, direction, x, request, monkeypatch).astype(np.float64)
    fi = np.finfo(dtype)
    tiny_sub = float(fi.smallest_subnormal)
    sub = np.abs(want) < float(fi.tiny)
    diff = np.abs(got - want)
    units = np.where(sub, diff / tiny_sub, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ulps = np.where(sub, 0.0, diff / np.spacing(np.abs(want).astype(dtype)).astype(np.float64))
    assert sub.any()
    bound = BOUND_UNITS.get(name, 1.0)
    k, j = int(np.argmax(units)), int(np.argmax(ulps))
    assert units[k] <= bound and ulps[j] <= 4.0, (
        f"{_case_id(case)} {np.dtype(dtype).name} on {where_}: {units[k]:.3g} units of the smallest "
        f"subnormal at x = {x[k]!r} (got {got[k]!r}, exact {want[k]!r}); {ulps[j]:.3g} ulps at x = {x[j]!r}"
    )
