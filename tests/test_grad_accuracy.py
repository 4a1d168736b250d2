"""float32 derivatives of silu, mish and the exact gelu, densely, against a float64 oracle written here.

Their terms cancel (gelu' = Phi(x) + x phi(x) near x = -1, silu' = s (1 + x (1 - s)), mish' =
tanh(sp) + x s sech^2(sp)) and below x = -87 the float exp underflows before the product: in float
they reached 5.5 conditioned ulps (every ~31st input of [-8, 8]) and 2x off (51 ulps of the smallest
subnormal) at subnormal results near x = -104.  Every float32 of a dense grid of [-8, 8] (2^20
points), of the underflow region [-110, -85] and of gelu's subnormal tail [-15, -12] is held to
``COND`` conditioned ulps (the error in units of the larger of ulp(exact) and the exact value's
move over half an ulp of x, as activations.tools.accuracy measures) where the exact result is normal,
and to ``SUBNORMAL`` units of the smallest subnormal below; on the CPU engine, the NumPy fallback,
the CUDA C kernels (host harness) and the Numba kernels (their own source compiled for the CPU by
numba.njit on the whole grid, and in the simulator on the worst regions only: it runs each element
as Python).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import special

import activations
from conftest import CPU_PATHS, use_cpu_path

NAMES = ("silu", "gelu", "mish")
F32 = np.float32
TINY = float(np.finfo(F32).tiny)
SUBNORMAL_ULP = float(np.finfo(F32).smallest_subnormal)

#: conditioned ulps at normal results.  silu' and mish' are quotients in double rounded once on the
#: engine and the CUDA C kernels, float formulas with their terms as float pairs (kernels/common.cuh
#: m::Two) on the Numba kernels: measured 0.500 and 0.500 on each;
#: gelu' 0.58 in double on the engine and the CUDA C kernels, 0.507 as the Numba kernels' float
#: pairs.  The float formulas with float roundings reached 3.2, 5.5, 5.5 (gelu' 6.8 in the Numba
#: kernels).
COND = 0.6
#: error in units of the smallest subnormal where the exact result is subnormal (measured 0.75 on the
#: Numba kernels, 0.500 on the engine and the CUDA C kernels; was 51, and 1.47 for gelu' in the
#: Numba kernels)
SUBNORMAL = 0.8


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _dsilu(x):
    return _sigmoid(x) * (1.0 + x * _sigmoid(-x))


def _dgelu(x):
    return 0.5 * special.erfc(-x / np.sqrt(2.0)) + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def _dmish(x):
    sp = np.logaddexp(0.0, x)
    e2 = np.exp(-2.0 * sp)
    return np.tanh(sp) + x * _sigmoid(x) * (4.0 * e2 / (1.0 + e2) ** 2)  # sech^2(sp) without 1 - t^2


ORACLE = {"silu": _dsilu, "gelu": _dgelu, "mish": _dmish}


def _mp_derivative(name: str, x: float) -> float:
    import mpmath as mp

    with mp.workdps(40):
        x = mp.mpf(x)
        if name == "silu":
            f = lambda t: t / (1 + mp.exp(-t))  # noqa: E731
        elif name == "gelu":
            f = lambda t: t * mp.ncdf(t)  # noqa: E731
        else:
            f = lambda t: t * mp.tanh(mp.log1p(mp.exp(t)))  # noqa: E731
        return float(mp.diff(f, x))


def _grid(lo: float, hi: float, n: int) -> np.ndarray:
    return np.unique(np.linspace(lo, hi, n).astype(F32))


#: the worst regions: the cancellations of [-8, 8] and the exp's underflow
DENSE = np.concatenate([_grid(-8.0, 8.0, 1 << 20), _grid(-110.0, -85.0, 1 << 16), _grid(-15.0, -12.0, 1 << 14)])
#: what the simulator can afford: around each function's worst float inputs, and the subnormal edge
FEW = np.concatenate([_grid(-1.1, -0.15, 700), _grid(-0.6, -0.5, 200), _grid(-106.0, -86.0, 300), _grid(-14.6, -13.0, 200)])


def _errors(name: str, x: np.ndarray, got: np.ndarray):
    """(conditioned ulps at normal exact results, smallest-subnormal units at subnormal ones)."""
    f = ORACLE[name]
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        exact = f(x64)
        half = np.spacing(np.abs(x)).astype(np.float64) / 2
        spread = np.abs(f(x64 + half) - f(x64 - half)) / 2
    err = np.abs(got.astype(np.float64) - exact)
    normal = np.abs(exact) >= TINY
    ulp = np.spacing(np.abs(exact).astype(F32)).astype(np.float64)
    cond = np.where(normal, err / np.maximum(ulp, spread), 0.0)
    sub = np.where(normal, 0.0, err / SUBNORMAL_ULP)
    return cond, sub


def _check(name: str, x: np.ndarray, got: np.ndarray, cond_bound: float = COND, sub_bound: float = SUBNORMAL) -> None:
    assert got.dtype == F32 and got.shape == x.shape
    cond, sub = _errors(name, x, got)
    k, j = int(np.argmax(cond)), int(np.argmax(sub))
    assert cond[k] <= cond_bound, f"{name}' at x = {x[k]!r}: {cond[k]:.2f} conditioned ulps (got {got[k]!r})"
    assert sub[j] <= sub_bound, f"{name}' at x = {x[j]!r}: {sub[j]:.2f} subnormal ulps (got {got[j]!r})"


@pytest.mark.parametrize("name", NAMES)
def test_oracle_agrees_with_mpmath(name):
    """The float64 oracle against mpmath's derivative, at points of every region swept."""
    rng = np.random.default_rng(11)
    xs = np.concatenate([rng.choice(DENSE, 60, replace=False), [-0.99, -0.55, -0.21, -0.7518, -1.19, -1.278, -104.0, -13.9]])
    xs = xs.astype(F32).astype(np.float64)
    want = np.array([_mp_derivative(name, float(v)) for v in xs])
    got = ORACLE[name](xs)
    # far below float32's ulp, or (near a zero of the derivative) x's half-ulp move
    bad = np.abs(got - want) > 1e-12 * np.abs(want) + np.where(np.abs(want) > 1e-30, 1e-17, 0.0)
    assert not bad.any(), (name, xs[bad], got[bad], want[bad])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("path", CPU_PATHS + ("engine-baseline",))
def test_dense_float32_cpu(name, path, monkeypatch):
    use_cpu_path(path, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = activations.grad(name, DENSE, np.ones_like(DENSE))
    _check(name, DENSE, got)


@pytest.mark.cuda_host
@pytest.mark.parametrize("name", NAMES)
def test_dense_float32_cuda_kernels(name, cuda_host):
    got = activations.grad(name, DENSE, np.ones_like(DENSE), backend="cuda_host")
    _check(name, DENSE, got)


#: the Numba kernels compute float32 in float (no float64 instruction in a float32 kernel), with
#: float pair formulas (silu', mish' the CUDA C functors'): the same bounds (gelu' in plain float had reached 6.8
#: conditioned ulps near x = -1.17, and 1.47 units of the smallest subnormal in its tail)
NUMBA_COND = {"silu": COND, "mish": COND, "gelu": COND}
NUMBA_SUBNORMAL = {"silu": SUBNORMAL, "mish": SUBNORMAL, "gelu": SUBNORMAL}


@pytest.mark.parametrize("name", NAMES)
def test_dense_float32_numba_host(name):
    """The Numba kernel's own source compiled for the CPU (numba.njit), on the whole grid."""
    K = pytest.importorskip("activations.backends.numba.kernels")
    kernel = K.cpu_kernel(K.Spec("elementwise", name, "f32", "bwd"))
    p = (F32(0.0),) * 3  # silu, mish: no parameters; gelu: approximate = 0 (exact)
    out = np.empty_like(DENSE)
    kernel(DENSE, np.ones_like(DENSE), DENSE, DENSE, out, DENSE.size, 1, 0, p, np.uint64(0), False)
    _check(name, DENSE, out, NUMBA_COND[name], NUMBA_SUBNORMAL[name])


@pytest.mark.numba_sim
@pytest.mark.parametrize("name", NAMES)
def test_float32_numba_kernels(name):
    import os

    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0"):
        pytest.skip("NUMBA_ENABLE_CUDASIM is not set")
    from numba import cuda

    got = activations.grad(name, cuda.to_device(FEW), cuda.to_device(np.ones_like(FEW)), backend="numba")
    _check(name, FEW, got.copy_to_host(), NUMBA_COND[name], NUMBA_SUBNORMAL[name])
