"""The Numba CUDA backend on a real GPU: large arrays, every dtype (bfloat16 too),
agreement with the NumPy and CuPy backends, CuPy arrays zero-copy, streams,
and the first-call compile time.  Skipped without an NVIDIA GPU (and under
the simulator, which tests/test_numba_sim.py covers).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import activations
import reference as R

pytestmark = pytest.mark.gpu

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
    pytest.skip("the Numba CUDA simulator is on: no real GPU here", allow_module_level=True)
try:
    from numba import cuda

    _HAS_GPU = cuda.is_available()
except Exception:  # numba missing or broken
    _HAS_GPU = False
if not _HAS_GPU:
    pytest.skip("no CUDA GPU usable by numba", allow_module_level=True)

from activations.backends import numba as NB  # noqa: E402

try:
    import cupy

    HAS_CUPY = cupy.cuda.is_available()
except Exception:
    cupy = None
    HAS_CUPY = False

ELEMENTWISE = activations.names("elementwise")
REQUIRED = {"threshold": {"threshold": 0.5, "value": -1.0}}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ids(dts):
    return [d.name for d in dts]


def dev(a):
    a = np.asarray(a)
    return cuda.to_device(a if a.flags.c_contiguous else a.copy())


def grads(got):
    return tuple(g.copy_to_host() for g in got) if isinstance(got, tuple) else got.copy_to_host()


@pytest.mark.parametrize("dtype", R.DTYPES, ids=ids(R.DTYPES))
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_against_the_oracle(name, dtype, rng):
    kw = REQUIRED.get(name, {})
    x = np.concatenate([R.random_inputs(rng, 1 << 16, name, dtype), R.cast(R.edge_values(name, **kw), dtype)])
    x = x[: x.size // 16 * 16].reshape(-1, 16)
    bias = R.cast(rng.normal(0, 0.5, 16) if name != "log1mexp" else rng.uniform(0, 0.5, 16), dtype)
    y = activations.apply(name, dev(x), bias=dev(bias), backend="numba", **kw).copy_to_host()
    R.assert_close(y, R.forward(name, x, bias=bias, **kw), dtype, what="numba GPU forward with bias")
    dy = R.random_cotangent(rng, x.shape, dtype)
    got = grads(activations.grad(name, dev(x), dev(dy), bias=dev(bias), backend="numba", **kw))
    exp = R.backward(name, x, dy, bias=bias, **kw)
    exp_dx = exp[0] if name == "prelu" else exp
    R.assert_close(got[0], exp_dx, dtype, what="numba GPU backward")
    R.assert_close(got[1], R.dbias(exp_dx), dtype, what="numba GPU dbias")
    if name == "prelu":
        R.assert_close(got[2], exp[1], dtype, what="numba GPU dweight")


@pytest.mark.parametrize("dtype", R.DTYPES, ids=ids(R.DTYPES))
@pytest.mark.parametrize("name", activations.names("rowwise"))
def test_rowwise_against_the_oracle(name, dtype, rng):
    for shape, axis in (((64, 1000), -1), ((8, 5000), -1), ((300, 7, 3), 1), ((1000, 16), 0)):
        x = R.random_inputs(rng, shape, name, dtype)
        where = rng.random(shape) < 0.8
        for kw in ({}, {"where": where}):
            on_device = {k: dev(v) for k, v in kw.items()}
            what = f"{shape} axis {axis}{' masked' if kw else ''}"
            y = activations.apply(name, dev(x), axis=axis, backend="numba", **on_device)
            R.assert_close(y.copy_to_host(), R.forward(name, x, axis=axis, **kw), dtype, what=what)
            dy = R.random_cotangent(rng, shape, dtype)
            dx = activations.grad(name, dev(x), dev(dy), axis=axis, backend="numba", **on_device)
            R.assert_close(dx.copy_to_host(), R.backward(name, x, dy, axis=axis, **kw), dtype, what=f"{what} backward")


@pytest.mark.parametrize("dtype", R.DTYPES, ids=ids(R.DTYPES))
@pytest.mark.parametrize("name", activations.names("gated"))
def test_gated_against_the_oracle(name, dtype, rng):
    for shape, axis in (((256, 2 * 1024), -1), ((64, 8, 33), 1), ((6, 4096), 0)):
        x = R.random_inputs(rng, shape, name, dtype)
        y = activations.apply(name, dev(x), axis=axis, backend="numba")
        R.assert_close(y.copy_to_host(), R.forward(name, x, axis=axis), dtype, what=f"{shape} axis {axis}")
        dy = R.random_cotangent(rng, y.shape, dtype)
        dx = activations.grad(name, dev(x), dev(dy), axis=axis, backend="numba")
        exp = R.backward(name, x, dy, axis=axis)
        R.assert_close(dx.copy_to_host(), exp, dtype, what=f"{shape} axis {axis} backward")


@pytest.mark.parametrize("name", ELEMENTWISE + activations.names("rowwise") + activations.names("gated"))
def test_numba_numpy_and_cupy_agree_on_large_arrays(name, rng):
    kw = REQUIRED.get(name, {})
    dtype = R.F32
    x = R.random_inputs(rng, (1 << 12, 1 << 10), name, dtype)
    rtol, atol = R.tolerance(dtype)
    ours = activations.apply(name, dev(x), backend="numba", **kw).copy_to_host()
    cpu = activations.apply(name, x, backend="numpy", **kw)
    np.testing.assert_allclose(ours, cpu, rtol=8 * rtol, atol=1e-6, equal_nan=True, err_msg=f"{name}: numba vs numpy")
    if HAS_CUPY:
        xc = cupy.asarray(x)
        via_cai = activations.apply(name, xc, backend="numba", **kw).copy_to_host()  # zero-copy import
        np.testing.assert_array_equal(via_cai, ours)
        if NB.BACKEND.available()[0] and activations.dispatch.status("cupy")[0]:
            theirs = cupy.asnumpy(activations.apply(name, xc, backend="cupy", **kw))
            np.testing.assert_allclose(
                ours, theirs, rtol=8 * rtol, atol=1e-6, equal_nan=True, err_msg=f"{name}: numba vs cupy"
            )


@pytest.mark.skipif(not HAS_CUPY, reason="CuPy with a GPU is not installed")
def test_cupy_out_is_written_in_place():
    x = cupy.linspace(-3, 3, 1 << 20, dtype=cupy.float32)
    out = cupy.empty_like(x)
    got = activations.apply("silu", x, out=out, backend="numba")
    assert got is out
    want = activations.apply("silu", cupy.asnumpy(x), backend="numpy")
    np.testing.assert_allclose(cupy.asnumpy(out), want, rtol=1e-5, atol=1e-7)


def test_kernels_run_on_the_given_stream(rng):
    x = R.random_inputs(rng, 1 << 20, "gelu", R.F32)
    stream = cuda.stream()
    with NB.use_stream(stream):
        d = cuda.to_device(x, stream=stream)
        y = activations.apply("gelu", d, backend="numba")
        host = y.copy_to_host(stream=stream)
    stream.synchronize()
    R.assert_close(host, R.forward("gelu", x), R.F32, what="on a non-default stream")
    # the stream an array carries is used when none is given
    s2 = cuda.stream()
    d2 = cuda.to_device(x, stream=s2)
    y2 = activations.apply("gelu", d2, backend="numba")
    np.testing.assert_array_equal(y2.copy_to_host(stream=s2), host)


def test_first_call_compile_time_is_reported():
    # a fresh process: the first call compiles (or loads from the disk cache), the second does not
    code = textwrap.dedent(
        """
        import time, numpy as np
        from numba import cuda
        import activations
        from activations.backends.numba import kernels as K
        x = cuda.to_device(np.linspace(-3, 3, 1 << 20, dtype=np.float32))
        t = time.perf_counter(); activations.apply("gelu", x, backend="numba"); cuda.synchronize()
        first = time.perf_counter() - t
        t = time.perf_counter(); activations.apply("gelu", x, backend="numba"); cuda.synchronize()
        second = time.perf_counter() - t
        print(first, second, sum(K.compile_times().values()))
        """
    )
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, second, compiling = (float(v) for v in proc.stdout.split())
    print(f"\nnumba gelu f32 forward: 1st call {first:.3f} s (compiling {compiling:.3f} s), then {second * 1e3:.2f} ms")
    assert second < first
