"""``out=`` answered the same way by every backend that runs here.

One policy (``activations.backends.out_target`` and ``deliver``) decides where the kernels write
and how the result reaches ``out``; each backend passes only its array library's allocation,
contiguity test and copy.  The same cases run through the compiled CPU engine, the NumPy
fallback, the CUDA C kernels on the CPU host harness and the Numba kernels (on the simulator
without a GPU): ``out`` separate, ``out`` that is ``x`` (or ``dy``), ``out`` overlapping ``x``
one element off, a strided ``out``, and the refusals (wrong dtype, wrong shape, read-only), which
raise the same exception and leave ``out`` as it was.  Values are checked against the float64
oracle of tests/reference.py and, bit for bit, against the same backend's call without ``out``.
Dask arrays are immutable: that backend refuses every ``out=`` alike.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import activations
import reference as R
from conftest import use_cpu_path

#: one activation of each kind, each with a forward whose result has x's shape but the gated one
NAMES = ("tanh", "softmax", "swiglu")
DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16))
SHAPE = (4, 10)


@dataclass
class Target:
    """A backend as the tests see it: how to put a host array there and read it back, and which
    host buffers can back its arrays."""

    backend: str
    to_device: Callable[[np.ndarray], Any]
    to_host: Callable[[Any], np.ndarray]
    read_only: bool = True  # can an out= of this backend be read-only (host arrays)

    def buffer(self, values: np.ndarray) -> Any:
        """A 1-D array of this backend holding ``values`` (slices of it are views)."""
        return self.to_device(np.ascontiguousarray(values))


def _numba_target() -> Target:
    sim = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")
    try:
        from numba import cuda
    except ImportError:
        pytest.skip("numba is not installed")
    if not sim and not cuda.is_available():
        pytest.skip("no GPU and NUMBA_ENABLE_CUDASIM is not set")
    return Target("numba", cuda.to_device, lambda a: a.copy_to_host(), read_only=False)


def _host_target(backend: str) -> Target:
    return Target(backend, lambda a: a.copy(), np.asarray)


@pytest.fixture(params=["engine", "fallback", "cuda_host", "numba"])
def target(request, monkeypatch) -> Target:
    which = request.param
    if which in ("engine", "fallback"):
        use_cpu_path(which, monkeypatch)
        return _host_target("numpy")
    if which == "cuda_host":
        request.getfixturevalue("cuda_host")
        return _host_target("cuda_host")
    return _numba_target()


def _inputs(name: str, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(14)
    x = R.random_inputs(rng, SHAPE, name, dtype)
    y_shape = (SHAPE[0], SHAPE[1] // 2) if name == "swiglu" else SHAPE
    return x, R.random_cotangent(rng, y_shape, dtype)


def _plain(t: Target, name: str, x: np.ndarray, dy: np.ndarray | None) -> np.ndarray:
    """The backend's answer without out=, on the host."""
    if dy is None:
        return t.to_host(activations.apply(name, t.to_device(x), backend=t.backend))
    return t.to_host(activations.grad(name, t.to_device(x), t.to_device(dy), backend=t.backend))


def _check(t: Target, name: str, dtype, got: np.ndarray, plain: np.ndarray, want: np.ndarray, what: str):
    np.testing.assert_array_equal(got.view(np.uint8), plain.view(np.uint8),
                                  err_msg=f"{name} {dtype} on {t.backend}: {what} differs from the call without out=")
    R.assert_close(got, want, dtype, what=f"{what} on {t.backend}")


@pytest.mark.parametrize("dtype", DTYPES, ids=[d.name for d in DTYPES])
@pytest.mark.parametrize("name", NAMES)
def test_out_separate_in_place_overlapping_and_strided(target, name, dtype):
    t = target
    x, dy = _inputs(name, dtype)
    gated = name == "swiglu"
    for backward in (False, True):
        want = R.backward(name, x, dy) if backward else R.forward(name, x)
        plain = _plain(t, name, x, dy if backward else None)
        args = (lambda xd: (name, xd, t.to_device(dy))) if backward else (lambda xd: (name, xd))
        fn = activations.grad if backward else activations.apply
        label = "grad" if backward else "apply"

        out = t.to_device(np.zeros(want.shape, dtype))  # separate
        assert fn(*args(t.to_device(x)), out=out, backend=t.backend) is out
        _check(t, name, dtype, t.to_host(out), plain, want, f"{label} out= separate")

        if backward or not gated:  # out is x (a gated forward's y is half of x: it cannot be x)
            xd = t.to_device(x)
            assert fn(*args(xd), out=xd, backend=t.backend) is xd
            _check(t, name, dtype, t.to_host(xd), plain, want, f"{label} out=x")

        if backward:  # out is dy
            xd, dyd = t.to_device(x), t.to_device(dy)
            if dy.shape == x.shape:
                assert activations.grad(name, xd, dyd, out=dyd, backend=t.backend) is dyd
                _check(t, name, dtype, t.to_host(dyd), plain, want, "grad out=dy")

        # out one element after x in the same buffer: each kernel would read what it has written
        n = x.size
        buf = t.buffer(np.concatenate([x.reshape(-1), np.zeros(1, dtype)]))
        xs = buf[:n].reshape(x.shape)
        outs = buf[1 : 1 + want.size].reshape(want.shape)
        fn(*args(xs), out=outs, backend=t.backend)
        _check(t, name, dtype, t.to_host(outs), plain, want, f"{label} out= overlapping x")

        # a strided out: written through a temporary, the gaps untouched
        holder = t.to_device(np.full((want.shape[0], 2 * want.shape[1]), 7, dtype))
        fn(*args(t.to_device(x)), out=holder[:, ::2], backend=t.backend)
        back = t.to_host(holder)
        _check(t, name, dtype, np.ascontiguousarray(back[:, ::2]), plain, want, f"{label} strided out=")
        assert (back[:, 1::2] == 7).all(), f"{name} on {t.backend}: a strided out= wrote into its gaps"


@pytest.mark.parametrize("name", NAMES)
def test_out_refusals(target, name):
    """Wrong dtype, wrong shape and read-only: the same ValueError on every backend, out unchanged."""
    t = target
    x, dy = _inputs(name, np.dtype(np.float32))
    y_shape = dy.shape
    cases = [
        ("dtype", t.to_device(np.full(y_shape, 3, np.float64)), "out has dtype float64, expected float32"),
        ("shape", t.to_device(np.full((y_shape[0], y_shape[1] + 1), 3, np.float32)), "out has shape"),
    ]
    if t.read_only:
        frozen = np.full(y_shape, 3, np.float32)
        frozen.setflags(write=False)
        cases.append(("read-only", frozen, "out is read-only"))
    for label, out, message in cases:
        before = t.to_host(out).tobytes()
        with pytest.raises(ValueError, match=message):
            activations.apply(name, t.to_device(x), out=out, backend=t.backend)
        dx_out = out if label != "shape" else t.to_device(np.full((x.shape[0], x.shape[1] + 1), 3, np.float32))
        if label == "dtype":
            dx_out = t.to_device(np.full(x.shape, 3, np.float64))
        with pytest.raises(ValueError, match="out"):
            activations.grad(name, t.to_device(x), t.to_device(dy), out=dx_out, backend=t.backend)
        assert t.to_host(out).tobytes() == before, f"{name} on {t.backend}: a refused out= ({label}) was written"


@pytest.mark.parametrize("name", NAMES)
def test_dask_refuses_every_out(name):
    da = pytest.importorskip("dask.array")
    x, dy = _inputs(name, np.dtype(np.float32))
    xd = da.from_array(x, chunks=(2, 10))
    dask_out = xd if name != "swiglu" else da.zeros(dy.shape, dtype=np.float32, chunks=2)
    cases = ((dask_out, xd, "immutable"), (np.zeros(dy.shape, np.float32), np.zeros(x.shape, np.float32), "writes dask arrays"))
    for out, dx_out, message in cases:
        with pytest.raises(ValueError, match=message):
            activations.apply(name, xd, out=out)
        with pytest.raises(ValueError, match=message):
            activations.grad(name, xd, da.from_array(dy, chunks=2), out=dx_out)
