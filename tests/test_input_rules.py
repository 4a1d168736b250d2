"""The input rules of docs/semantics.md ("Inputs"), the same on every backend.

Each rule runs on the CPU engine, the NumPy fallback, Numba (the simulator without a GPU),
Dask and CuPy (skipped without a GPU).  Expected values are float64 formulas written here.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import activations
from activations import dispatch
from conftest import HAS_GPU, use_cpu_path

BACKENDS = ["engine", "fallback", "numba", "dask", "cupy"]
DOCUMENTED = (ValueError, TypeError, activations.BackendUnavailable)


class Device:
    """One backend: the backend= name, host -> backend arrays and back."""

    def __init__(self, name: str):
        self.name = name  # as in BACKENDS
        self.backend = "numpy" if name in ("engine", "fallback") else name

    def __repr__(self):
        return self.name

    def dev(self, a, chunks=2):
        a = np.asarray(a)
        if self.backend == "numpy":
            return a
        if self.backend == "numba":
            from numba import cuda

            return cuda.to_device(np.ascontiguousarray(a))
        if self.backend == "dask":
            import dask.array as da

            return da.from_array(a, chunks=chunks)
        import cupy

        return cupy.asarray(a)

    @staticmethod
    def host(a):
        if hasattr(a, "compute"):
            a = a.compute()
        if hasattr(a, "copy_to_host"):
            return a.copy_to_host()
        if type(a).__module__.partition(".")[0] == "cupy":
            return a.get()
        return np.asarray(a)

    @property
    def writes_out(self) -> bool:
        return self.backend != "dask"


@pytest.fixture(params=BACKENDS)
def device(request, monkeypatch) -> Device:
    name = request.param
    if name in ("engine", "fallback"):
        use_cpu_path(name, monkeypatch)
    else:
        if name == "cupy" and not HAS_GPU:
            pytest.skip("no NVIDIA GPU on this machine")
        ok, why = dispatch.status(name)
        if not ok:
            pytest.skip(f"{name} backend not available here: {why}")
    return Device(name)


def raises_naming(exc, argument: str):
    """pytest.raises(exc) whose message names ``argument`` as a word."""
    return pytest.raises(exc, match=rf"\b{re.escape(argument)}\b")


def softmax64(x, axis=-1, where=None):
    x = np.asarray(x, np.float64)
    if where is not None:
        where = np.broadcast_to(where, x.shape)
        x = np.where(where, x, -np.inf)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    return p if where is None else np.where(where, p, 0.0)


def gelu64(x):
    from scipy.special import erfc

    x = np.asarray(x, np.float64)
    return 0.5 * x * erfc(-x / np.sqrt(2.0))


# ------------------------------------------------------------ Python values
@pytest.mark.parametrize("value", [[1.0, None], [[1.0], [None]], None, [1.0, object()], [1.0, 2 + 1j]],
                         ids=["none-in-list", "none-nested", "none", "object", "complex-in-list"])
def test_non_numbers_in_lists_are_refused(device, value):
    with raises_naming(TypeError, "x"):
        activations.apply("relu", value, backend=device.backend)


def test_none_in_operand_lists_is_refused(device):
    x = device.dev(np.ones((2, 2)))
    with raises_naming(TypeError, "bias"):
        activations.apply("relu", x, bias=[1.0, None], backend=device.backend)
    with raises_naming(TypeError, "dy"):
        activations.grad("relu", x, [[1.0, None], [1.0, 1.0]], backend=device.backend)
    with raises_naming(TypeError, "where"):
        activations.apply("softmax", x, where=[True, None], backend=device.backend)


@pytest.mark.parametrize("value", [["1", "-2"], "abc", "1.5", b"1", [["a"]], np.str_("1")],
                         ids=["list-of-str", "abc", "numeric-str", "bytes", "nested", "numpy-str"])
def test_strings_are_not_numbers(device, value):
    with raises_naming(TypeError, "x"):
        activations.apply("relu", value, backend=device.backend)


def test_strings_as_operands(device):
    x = device.dev(np.ones(2))
    with raises_naming(TypeError, "bias"):
        activations.apply("relu", x, bias=["1", "2"], backend=device.backend)
    with raises_naming(TypeError, "where"):
        activations.apply("softmax", x, where="ab", backend=device.backend)


@pytest.mark.parametrize("value", [[[1.0, 2.0], [3.0]], [1.0, [2.0, 3.0]]], ids=["ragged", "mixed-depth"])
def test_ragged_lists_name_x(device, value):
    with raises_naming(ValueError, "x"):
        activations.apply("relu", value, backend=device.backend)


def test_ints_too_large_for_float64(device):
    with raises_naming(ValueError, "x"):
        activations.apply("relu", [1.0, 10**400], backend=device.backend)
    with raises_naming(ValueError, "x"):
        activations.apply("relu", 10**400, backend=device.backend)
    x = device.dev(np.ones(2))
    with raises_naming(ValueError, "bias"):
        activations.apply("relu", x, bias=[10**400, 1], backend=device.backend)
    # beyond int64 but within float64: converted like any Python int
    y = device.host(activations.apply("relu", [2**70, -(2**70)], backend=device.backend))
    np.testing.assert_array_equal(y, [2.0**70, 0.0])


def test_lists_of_numbers_are_float64(device):
    y = device.host(activations.apply("gelu", [[-1, 0.5], [2, -3.0]], backend=device.backend))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, gelu64([[-1, 0.5], [2, -3.0]]), rtol=1e-14)


# ------------------------------------------------------------------ bool x
def test_bool_x_is_refused(device):
    with pytest.raises(TypeError, match=r"\bx\b.*bool"):
        activations.apply("relu", [True, False], backend=device.backend)
    with pytest.raises(TypeError, match=r"\bx\b.*bool"):
        activations.apply("relu", device.dev(np.array([True, False])), backend=device.backend)
    with pytest.raises(TypeError, match=r"\bdy\b.*bool"):
        activations.grad("relu", device.dev(np.ones(2)), device.dev(np.array([True, False])), backend=device.backend)


def test_complex_x_is_refused(device):
    with raises_naming(TypeError, "x"):
        activations.apply("relu", device.dev(np.array([1 + 1j, 2])), backend=device.backend)
    with raises_naming(TypeError, "x"):
        activations.apply("relu", 1j, backend=device.backend)


# ---------------------------------------------------------------- where=
@pytest.mark.parametrize("where", [[True, False, True], (True, False, True), True], ids=["list", "tuple", "scalar"])
def test_where_as_python_bools(device, where):
    x = np.array([1.0, 2.0, 3.0])
    y = device.host(activations.apply("softmax", device.dev(x), where=where, backend=device.backend))
    np.testing.assert_allclose(y, softmax64(x, where=np.asarray(where)).reshape(y.shape), rtol=1e-14, atol=0)


@pytest.mark.parametrize("where", [[1, 0, 1], [1.0, 0.0, 1.0], np.array([1, 0, 1])], ids=["ints", "floats", "int-array"])
def test_where_of_numbers_is_refused(device, where):
    x = device.dev(np.array([1.0, 2.0, 3.0]))
    w = device.dev(where) if isinstance(where, np.ndarray) else where
    with raises_naming(ValueError, "where"):
        activations.apply("softmax", x, where=w, backend=device.backend)


# --------------------------------------------------------------- integers
@pytest.mark.parametrize("dt", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
def test_integer_arrays_become_float64(device, dt):
    """As NumPy's ufuncs: Keras's own linear(int32) test passes."""
    xi = np.array([[0, 1, 5], [7, 2, 3]], dt)
    y = device.host(activations.apply("linear", device.dev(xi), backend=device.backend))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, xi.astype(np.float64))
    y = device.host(activations.apply("gelu", device.dev(xi), backend=device.backend))
    np.testing.assert_allclose(y, gelu64(xi), rtol=1e-14, atol=1e-300)
    p = device.host(activations.apply("softmax", device.dev(xi), axis=0, backend=device.backend))
    np.testing.assert_allclose(p, softmax64(xi, axis=0), rtol=1e-14)


def test_integer_operands(device):
    x = np.array([[-1.5, 0.25, 2.0], [0.5, -3.0, 1.0]], np.float32)
    b = np.array([1, -1, 0], np.int32)
    y = device.host(activations.apply("relu", device.dev(x), bias=device.dev(b), backend=device.backend))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.maximum(x.astype(np.float64) + b, 0))
    w = np.array([2, 3, 4], np.int64)
    y = device.host(activations.apply("prelu", device.dev(x), weight=device.dev(w), backend=device.backend))
    np.testing.assert_array_equal(y, np.where(x > 0, x, x.astype(np.float64) * w))
    # dy is read as float64 too: it matches an integer (float64) x, not a float32 one
    xi = np.array([-2, 3, 4], np.int32)
    dx = device.host(activations.grad("relu", device.dev(xi), device.dev(np.array([5, 6, 7], np.int16)),
                                      backend=device.backend))
    np.testing.assert_array_equal(dx, [0.0, 6.0, 7.0])
    with pytest.raises(ValueError, match=r"\bdy\b.*int16.*float64"):
        activations.grad("relu", device.dev(x[0]), device.dev(np.array([5, 6, 7], np.int16)), backend=device.backend)


def test_integer_x_with_out(device):
    if not device.writes_out:
        pytest.skip("Dask refuses out=")
    xi = np.array([-2, 3, 4], np.int32)
    out = device.dev(np.zeros(3))
    got = activations.apply("relu", device.dev(xi), out=out, backend=device.backend)
    assert got is out
    np.testing.assert_array_equal(device.host(out), [0.0, 3.0, 4.0])
    bad = device.dev(np.zeros(3, np.int32))
    with raises_naming(ValueError, "out"):
        activations.apply("relu", device.dev(xi), out=bad, backend=device.backend)


# ----------------------------------------------------------- masked arrays
def test_numpy_masked_arrays_are_refused(device):
    x = np.ma.masked_array([1.0, 1000.0], mask=[False, True])
    if device.backend == "dask":
        import dask.array as da

        with raises_naming(TypeError, "x"):
            activations.apply("softmax", da.from_array(x, chunks=1, asarray=False), backend="dask")
        return
    if device.backend != "numpy":
        pytest.skip("device backends take no host arrays at all (a ValueError naming x)")
    with raises_naming(TypeError, "x"):
        activations.apply("softmax", x)
    plain = np.array([1.0, 1000.0])
    for kw, name in ((dict(where=np.ma.masked_array([True, True], mask=[False, True])), "where"),
                     (dict(bias=np.ma.masked_array([0.0, 1.0], mask=[False, True])), "bias")):
        with raises_naming(TypeError, name):
            activations.apply("softmax", plain, **kw)
    out = np.ma.masked_array(np.zeros(2), mask=[False, True])
    with raises_naming(TypeError, "out"):
        activations.apply("softmax", plain, out=out)
    assert (out.data == 0).all()
    with raises_naming(TypeError, "dy"):
        activations.grad("softmax", plain, np.ma.masked_array([1.0, 1.0], mask=[True, False]))


# -------------------------------------------------------------------- axis
@pytest.mark.parametrize("axis", [True, False, np.True_, np.bool_(False)], ids=["True", "False", "np.True_", "np.False_"])
@pytest.mark.parametrize("name", ["softmax", "glu"])
def test_bool_axis_is_refused(device, name, axis):
    x = device.dev(np.ones((2, 4)))
    with pytest.raises(TypeError, match=r"\baxis\b.*bool"):
        activations.apply(name, x, axis=axis, backend=device.backend)


# -------------------------------------------------------------- byte order
def test_byte_swapped_inputs_are_read_in_native_order(device):
    if device.backend == "cupy":
        pytest.skip("CuPy arrays have native byte order")
    x = np.array([[-1.0, 0.5, 3.0], [2.0, -0.25, 1.0]], ">f4")
    dy = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], ">f4")
    b = np.array([0.5, -0.5, 0.0], ">f8")
    y = device.host(activations.apply("gelu", device.dev(x), bias=device.dev(b), backend=device.backend))
    assert y.dtype == np.dtype("=f4")
    np.testing.assert_allclose(y, gelu64(x.astype(np.float64) + b.astype(np.float32)), rtol=3e-7)
    dx = device.host(activations.grad("relu", device.dev(x), device.dev(dy), backend=device.backend))
    np.testing.assert_array_equal(dx, np.where(x > 0, dy, 0).astype(np.float32))


def test_byte_swapped_out_is_refused():
    x = np.ones(3, np.float32)
    out = np.zeros(3, ">f4")
    with pytest.raises(ValueError, match=r"\bout\b.*byte order"):
        activations.apply("relu", x, out=out)
    assert (out == 0).all()


# --------------------------------------------------------- allocation
def _broadcast_view(device, n):
    one = np.ones(1, np.float32)
    if device.backend == "numpy":
        return np.broadcast_to(one, (n,))
    if device.backend == "numba":
        from activations.backends.numba import _simulator

        if not _simulator():
            pytest.skip("a broadcast device view is built here for the simulator only")
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

        return FakeCUDAArray(np.broadcast_to(one, (n,)))
    if device.backend == "cupy":
        import cupy

        return cupy.broadcast_to(cupy.ones(1, np.float32), (n,))
    pytest.skip("Dask is lazy: nothing is allocated by apply")


@pytest.mark.parametrize("fn", ["apply", "grad"])
def test_unallocatable_results_are_a_value_error(device, fn):
    x = _broadcast_view(device, 2**44)
    with raises_naming(ValueError, "x"):
        if fn == "apply":
            activations.apply("relu", x, backend=device.backend)
        else:
            activations.grad("relu", x, x, backend=device.backend)


# ------------------------------------------------------------------ torch
def test_torch_conjugate_and_nested_tensors():
    torch = pytest.importorskip("torch")
    conj = torch.tensor([1 + 2j, 3j]).conj()
    with raises_naming(TypeError, "x"):
        activations.apply("relu", conj)
    with raises_naming(TypeError, "bias"):
        activations.apply("relu", np.ones(2), bias=conj)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nested tensors are a prototype API
        nested = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
    with raises_naming(TypeError, "x"):
        activations.apply("relu", nested)


# ----------------------------------------------------------------- aliasing
def _alias_buffer(device, values):
    return device.dev(np.asarray(values))


@pytest.mark.parametrize("shift", [1, -1, 3])
@pytest.mark.parametrize("name", ["relu", "gelu", "softmax", "log_softmax"])
def test_shifted_out_gives_the_values_of_a_separate_one(device, name, shift):
    if not device.writes_out:
        pytest.skip("Dask refuses out=")
    rng = np.random.default_rng(7)
    n = 16
    host = rng.standard_normal(n + 3)
    buf = device.dev(host)
    xs, os_ = (slice(0, n), slice(shift, shift + n)) if shift > 0 else (slice(-shift, n - shift), slice(0, n))
    x_host = host[xs].copy()
    expected = gelu64(x_host) if name == "gelu" else (
        np.maximum(x_host, 0) if name == "relu" else softmax64(x_host))
    if name == "log_softmax":
        expected = np.log(softmax64(x_host))
    got = activations.apply(name, buf[xs], out=buf[os_], backend=device.backend)
    np.testing.assert_allclose(device.host(got), expected, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(device.host(buf)[os_], expected, rtol=1e-13, atol=1e-300)


def test_shifted_out_of_a_gradient(device):
    if not device.writes_out:
        pytest.skip("Dask refuses out=")
    host = np.linspace(-2, 2, 12).reshape(3, 4)
    dy = np.full((3, 4), 0.5)
    buf = device.dev(np.concatenate([host, dy]))  # rows 0-2 x, rows 3-5 dy
    got = activations.grad("silu", buf[:3], buf[3:], out=buf[1:4], backend=device.backend)
    s = 1 / (1 + np.exp(-host))
    expected = 0.5 * (s + host * s * (1 - s))
    np.testing.assert_allclose(device.host(got), expected, rtol=1e-13)


def test_where_sharing_memory_with_out(device):
    """The mask is the first bytes of out itself: out must be computed from the mask as it was."""
    if not device.writes_out:
        pytest.skip("Dask refuses out=")
    x = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]], np.float16)
    pattern = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], np.uint8)
    init = np.zeros(8, np.float16)
    init.view(np.uint8)[:8] = pattern.ravel()  # out's first 8 bytes are the mask
    out = device.dev(init.reshape(2, 4))
    where = out.reshape(8).view(np.uint8)[:8].view(np.bool_).reshape(2, 4)
    mask = pattern.astype(bool)
    expected = softmax64(x.astype(np.float64), where=mask)
    got = activations.apply("softmax", device.dev(x), where=where, out=out, backend=device.backend)
    np.testing.assert_allclose(device.host(got).astype(np.float64), expected, rtol=2e-3, atol=1e-4)


def test_prelu_weight_that_is_a_row_of_out(device):
    if not device.writes_out:
        pytest.skip("Dask refuses out=")
    x = np.array([[-1.0, -2.0, 3.0, -4.0], [-1.0, 2.0, -3.0, -4.0], [-8.0, -1.0, -0.5, 1.0]], np.float32)
    w = np.array([0.5, 0.25, 2.0, -1.0], np.float32)
    init = np.zeros_like(x)
    init[0] = w
    out = device.dev(init)
    expected = np.where(x > 0, x, x * w.astype(np.float64))
    got = activations.apply("prelu", device.dev(x), weight=out[0], out=out, backend=device.backend)
    np.testing.assert_array_equal(device.host(got), expected.astype(np.float32))
    # the bias as a row of out, in the gradient
    init[0] = [0.5, -0.5, 1.0, 0.0]
    out = device.dev(init)
    b = init[0].astype(np.float64).copy()
    dx, db = activations.grad("relu", device.dev(x), device.dev(np.ones_like(x)), bias=out[0], out=out,
                              backend=device.backend)
    expected = (x + b > 0).astype(np.float32)
    np.testing.assert_array_equal(device.host(dx), expected)
    np.testing.assert_array_equal(device.host(db), expected.sum(0))


def test_in_place_still_works(device):
    if not device.writes_out:
        pytest.skip("Dask refuses out=")
    host = np.linspace(-3, 3, 8).reshape(2, 4)
    x = device.dev(host.copy())
    got = activations.apply("softmax", x, out=x, axis=0, backend=device.backend)
    np.testing.assert_allclose(device.host(got), softmax64(host, axis=0), rtol=1e-14)
    np.testing.assert_allclose(device.host(x), softmax64(host, axis=0), rtol=1e-14)


# Parameters: finite, and finite in the precision x is computed in (docs/semantics.md).
@pytest.mark.parametrize("name,params", [
    ("leaky_relu", dict(negative_slope=1e300)), ("elu", dict(alpha=1e300)), ("celu", dict(alpha=1e300)),
    ("prelu", dict(weight=1e300)), ("rrelu", dict(lower=1e300, upper=1e300)), ("snake", dict(frequency=1e300)),
])
def test_parameters_beyond_float32_are_refused_for_float32_and_computed_for_float64(name, params):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    for dtype in (np.float16, np.float32):
        with pytest.raises(ValueError, match=f"parameter '{next(iter(params))}'.*float32"):
            activations.apply(name, x.astype(dtype), **params)
    y = activations.apply(name, x, **params)
    assert not np.any(np.isnan(y)), y
    if name in ("leaky_relu", "prelu", "rrelu"):
        np.testing.assert_array_equal(y, np.where(x > 0, x, 1e300 * x))


@pytest.mark.parametrize("name,param", [("softplus", "beta"), ("squareplus", "b"), ("hard_sigmoid", "slope"),
                                        ("soft_shrink", "threshold"), ("hard_shrink", "threshold")])
def test_infinite_parameters_are_refused(name, param):
    with pytest.raises(ValueError, match=f"parameter '{param}' must be finite"):
        activations.apply(name, np.array([1.0, -1.0]), **{param: math.inf})
