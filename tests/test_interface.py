"""apply / grad input validation: every rule in activations/_interface.py.

Bad input raises before any backend writes a byte, so out= stays untouched.
"""
from __future__ import annotations

import re
import numpy as np
import pytest

import activations
from activations import dispatch
from activations.backends import Backend

X = np.array([[-1.5, 0.0, 2.0], [0.5, -0.25, 3.0]])


def untouched(out: np.ndarray):
    """Context: assert the bytes of ``out`` are unchanged afterwards."""

    class _Guard:
        def __enter__(self):
            self.before = out.tobytes()
            return out

        def __exit__(self, *exc):
            assert out.tobytes() == self.before, "out= was written although the call failed"
            return False

    return _Guard()


# ------------------------------------------------------------------ names
def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"'gelu'") as e:
        activations.apply("gleu", X)
    assert "unknown activation" in str(e.value)
    with pytest.raises(ValueError, match=r"'softmax'"):
        activations.grad("sofmax", X, X)
    with pytest.raises(ValueError, match="unknown activation"):
        activations.apply("zzzzzz", X)


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="str"):
        activations.apply(3, X)


@pytest.mark.parametrize(
    "spelling,canonical", [("swish", "silu"), ("Leaky-ReLU", "leaky_relu"), (" GELU ", "gelu"), ("hardswish", "hard_silu")]
)
def test_spellings(spelling, canonical):
    np.testing.assert_array_equal(activations.apply(spelling, X), activations.apply(canonical, X))


# ------------------------------------------------------------- parameters
def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(TypeError, match="alpah") as e:
        activations.apply("elu", X, alpah=1.0)
    assert "alpha" in str(e.value).split("valid")[1]
    with pytest.raises(TypeError, match="none"):
        activations.apply("sigmoid", X, beta=2.0)


def test_parameter_given_twice_through_an_alias():
    with pytest.raises(TypeError, match="twice"):
        activations.apply("leaky_relu", X, alpha=0.1, negative_slope=0.1)
    np.testing.assert_array_equal(
        activations.apply("leaky_relu", X, alpha=0.1), activations.apply("leaky_relu", X, negative_slope=0.1)
    )


BAD_VALUES = [
    ("celu", dict(alpha=0.0), ValueError),
    ("hard_tanh", dict(min_val=2.0, max_val=1.0), ValueError),
    ("soft_shrink", dict(threshold=-1.0), ValueError),
    ("hard_shrink", dict(lambd=-0.5), ValueError),
    ("softplus", dict(beta=0.0), ValueError),
    ("softplus", dict(beta=-1.0), ValueError),
    ("softplus", dict(threshold=float("nan")), ValueError),
    ("elu", dict(alpha=float("nan")), ValueError),
    ("elu", dict(alpha=float("inf")), ValueError),
    ("relu", dict(max_value=float("nan")), ValueError),
    ("hard_sigmoid", dict(slope=0.0), ValueError),
    ("squareplus", dict(b=-1.0), ValueError),
    ("snake", dict(frequency=0.0), ValueError),
    ("rrelu", dict(lower=0.5, upper=0.25), ValueError),
    ("rrelu", dict(seed=-1), ValueError),
    ("rrelu", dict(seed=2**64), ValueError),
    ("gelu", dict(approximate="fast"), ValueError),
    ("gelu", dict(approximate=1), ValueError),
    ("gelu", dict(approximate=None), ValueError),
    ("elu", dict(alpha="1.0"), TypeError),
    ("elu", dict(alpha=True), TypeError),
    ("elu", dict(alpha=None), TypeError),
    ("elu", dict(alpha=[1.0]), TypeError),
    ("elu", dict(alpha=1 + 2j), TypeError),
    ("leaky_relu", dict(negative_slope="0.2"), TypeError),
    ("rrelu", dict(seed=1.5), TypeError),
    ("rrelu", dict(seed=True), TypeError),
    ("rrelu", dict(training="yes"), TypeError),
    ("rrelu", dict(training=2), TypeError),
    ("threshold", dict(threshold=0.5), TypeError),  # value missing
    ("threshold", dict(value=1.0), TypeError),  # threshold missing
    ("threshold", {}, TypeError),
]


@pytest.mark.parametrize("name,params,exc", BAD_VALUES, ids=[f"{n}-{list(p.items())}" for n, p, _ in BAD_VALUES])
def test_invalid_parameter_values(name, params, exc):
    out = np.zeros_like(X)
    with untouched(out), pytest.raises(exc) as e:
        activations.apply(name, X, out=out, **params)
    key = next(iter(params), None)
    if key is not None and exc is ValueError and name not in ("hard_tanh", "rrelu"):
        assert key in str(e.value) or "parameter" in str(e.value), f"message should name the parameter: {e.value}"
    with pytest.raises(exc):
        activations.grad(name, X, np.ones_like(X), **params)


GOOD_VALUES = [
    ("threshold", dict(threshold=0.5, default_value=-1.0)),
    ("rrelu", dict(training=1, seed=np.uint64(5))),
    ("rrelu", dict(seed=2**64 - 1)),
    ("elu", dict(alpha=np.float32(0.5))),
    ("elu", dict(alpha=2)),
    ("relu", dict(max_value=None)),
    ("softplus", dict(threshold=float("inf"))),
    ("gelu", dict(approximate=True)),
    ("hard_tanh", dict(min_val=0.5, max_val=0.5)),
    ("soft_shrink", dict(threshold=0.0)),
    ("squareplus", dict(b=0.0)),
]


@pytest.mark.parametrize("name,params", GOOD_VALUES, ids=[f"{n}-{list(p.items())}" for n, p in GOOD_VALUES])
def test_valid_parameter_values(name, params):
    y = activations.apply(name, X, **params)
    assert y.shape == X.shape and y.dtype == X.dtype


# ------------------------------------------------------------------ arrays
@pytest.mark.parametrize(
    "bad", [np.array([True, False]), np.array([1 + 1j])], ids=["bool", "complex"],
)
def test_non_float_arrays_say_to_cast(bad):
    with pytest.raises(TypeError, match="cast"):
        activations.apply("relu", bad)
    with pytest.raises(TypeError, match="cast"):
        activations.grad("relu", bad, np.ones(bad.shape))


def test_other_unsupported_dtypes():
    with pytest.raises(TypeError):
        activations.apply("relu", np.array(["a", "b"]))
    with pytest.raises(TypeError):
        activations.apply("relu", np.array([1.0], np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else np.array(["x"]))


def test_lists_and_python_scalars_become_float64():
    y = activations.apply("relu", [-1, 2, 3.5])
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    np.testing.assert_array_equal(y, [0.0, 2.0, 3.5])
    y = activations.apply("relu", [[-1.0, 2.0], [3.0, -4.0]])
    assert y.shape == (2, 2) and y.dtype == np.float64
    for scalar in (3, -2.5):
        y = activations.apply("relu", scalar)
        assert np.shape(y) == () and np.asarray(y).dtype == np.float64
        assert float(y) == max(float(scalar), 0.0)
    dx = activations.grad("relu", [-1.0, 2.0], [1.0, 1.0])
    assert dx.dtype == np.float64
    np.testing.assert_array_equal(dx, [0.0, 1.0])


@pytest.mark.parametrize("dt", ["float16", "float32", "float64", "bfloat16"])
def test_dtype_is_kept(dt):
    import reference as R

    x = R.cast(X, dt)
    for name in ("relu", "softmax", "glu"):
        y = activations.apply(name, x if name != "glu" else np.concatenate([x, x], -1))
        assert y.dtype == x.dtype, f"{name}: {dt} in, {y.dtype} out"


def test_zero_d_and_empty_inputs():
    y = activations.apply("gelu", np.float32(1.0))
    assert np.shape(y) == () and np.asarray(y).dtype == np.float32
    assert activations.apply("tanh", np.empty((0, 3), np.float32)).shape == (0, 3)
    assert activations.apply("softmax", np.empty((4, 0))).shape == (4, 0)
    assert activations.apply("glu", np.empty((0, 4))).shape == (0, 2)
    assert activations.grad("elu", np.empty(0), np.empty(0)).shape == (0,)


# --------------------------------------------------------------------- out=
def test_out_wrong_shape_dtype_or_type():
    out = np.zeros((3, 2))
    with untouched(out), pytest.raises(ValueError, match="shape"):
        activations.apply("relu", X, out=out)
    out = np.zeros_like(X, dtype=np.float32)
    with untouched(out), pytest.raises(ValueError, match="dtype"):
        activations.apply("relu", X, out=out)
    with pytest.raises(ValueError, match="out"):
        activations.apply("relu", X, out=[[0.0] * 3] * 2)
    out = np.zeros((2, 4))  # glu halves the axis: its out has shape (2, 2)
    with untouched(out), pytest.raises(ValueError, match="shape"):
        activations.apply("glu", np.ones((2, 4)), out=out)
    # grad: out receives dx, shaped like x
    out = np.zeros((2, 2))
    with untouched(out), pytest.raises(ValueError, match="shape"):
        activations.grad("glu", np.ones((2, 4)), np.ones((2, 2)), out=out)


def test_out_untouched_when_other_arguments_are_bad():
    out = np.full_like(X, 7.0)
    with untouched(out), pytest.raises(ValueError):
        activations.apply("relu", X, out=out, bias=np.ones(2))
    with untouched(out), pytest.raises(ValueError):
        activations.grad("relu", X, np.ones((3, 2)), out=out)
    with untouched(out), pytest.raises(ValueError):
        activations.apply("softmax", X, out=out, where=np.ones((3, 3), bool))
    with untouched(out), pytest.raises(TypeError):
        activations.apply("relu", X, out=out, where=np.ones(X.shape, bool))
    with untouched(out), pytest.raises(ValueError):
        activations.apply("softmax", X, out=out, axis=2)
    with untouched(out), pytest.raises(ValueError):
        activations.apply("elu", X, out=out, alpha=float("nan"))
    with untouched(out), pytest.raises(ValueError):
        activations.apply("relu", X, out=out, backend="nope")


# -------------------------------------------------------------------- bias
def test_bias_checks():
    with pytest.raises(ValueError, match="bias"):
        activations.apply("relu", X, bias=np.ones(2))  # wrong length
    with pytest.raises(ValueError, match="bias"):
        activations.apply("relu", X, bias=np.ones((1, 3)))  # 2-D
    with pytest.raises(ValueError, match="bias"):
        activations.apply("relu", X, bias=np.ones(1))  # no broadcasting from 1
    with pytest.raises(ValueError, match="bias"):
        activations.apply("relu", np.float64(1.0), bias=np.ones(1))  # 0-d x
    with pytest.raises(TypeError, match="cast"):
        activations.apply("relu", X, bias=np.ones(3, bool))
    y = activations.apply("relu", X, bias=[1.0, -1.0, 0.0])  # a list works
    np.testing.assert_array_equal(y, np.maximum(X + [1.0, -1.0, 0.0], 0))
    dx, db = activations.grad("relu", X, np.ones_like(X), bias=np.zeros(3))
    assert dx.shape == X.shape and db.shape == (3,)


def test_prelu_weight_checks():
    with pytest.raises(ValueError, match="weight"):
        activations.apply("prelu", X, weight=np.ones(2))
    with pytest.raises(ValueError, match="weight"):
        activations.apply("prelu", X, weight=np.ones((3, 1)))
    with pytest.raises(TypeError, match="cast"):
        activations.apply("prelu", X, weight=np.ones(3, np.complex64))
    dx, dw = activations.grad("prelu", X, np.ones_like(X), weight=np.ones(3))
    assert dw.shape == (3,)
    dx, db, dw = activations.grad("prelu", X, np.ones_like(X), weight=0.5, bias=np.zeros(3))
    assert np.shape(dw) == () and db.shape == (3,)


# ---------------------------------------------------------------------- dy
def test_dy_checks():
    with pytest.raises(ValueError, match="dy"):
        activations.grad("relu", X, np.ones((3, 2)))
    with pytest.raises(ValueError, match="dy"):
        activations.grad("relu", X, np.ones(X.shape, np.float32))
    with pytest.raises(ValueError, match="dy"):
        activations.grad("softmax", X, np.ones(3))
    with pytest.raises(ValueError, match="dy"):
        activations.grad("relu", X.astype(np.float32), np.ones(X.shape, np.int64))  # read as float64


# ------------------------------------------------------------- axis, where
def test_where_only_for_rowwise():
    for name in ("relu", "glu"):
        with pytest.raises(TypeError, match="where"):
            activations.apply(name, np.ones((2, 4)), where=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="broadcast"):
        activations.apply("softmax", X, where=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="broadcast"):
        activations.apply("softmax", X, where=np.ones((1, 2, 3), bool))


def test_axis_checks():
    for name in ("softmax", "glu"):
        with pytest.raises(ValueError, match="out of range"):
            activations.apply(name, np.ones((2, 4)), axis=2)
        with pytest.raises(ValueError, match="out of range"):
            activations.apply(name, np.ones((2, 4)), axis=-3)
        with pytest.raises(TypeError, match="axis"):
            activations.apply(name, np.ones((2, 4)), axis=1.0)
    with pytest.raises(TypeError, match="axis"):
        activations.apply("glu", np.ones((2, 4)), axis=(0, 1))  # tuples of axes: row-wise only
    np.testing.assert_array_equal(activations.apply("softmax", X, axis=np.int64(0)), activations.apply("softmax", X, axis=0))
    # elementwise activations ignore axis
    np.testing.assert_array_equal(activations.apply("relu", X, axis=7), activations.apply("relu", X))


# ---------------------------------------------------------------- backends
def test_unknown_backend():
    with pytest.raises(ValueError, match="nope"):
        activations.apply("relu", X, backend="nope")
    with pytest.raises(ValueError, match="numpy"):
        activations.apply("relu", X, backend=3)


class _Unavailable(Backend):
    name = "fake"

    def available(self):
        return False, "no device here"


def test_explicit_unavailable_backend(monkeypatch):
    monkeypatch.setitem(dispatch._loaded, "cupy", _Unavailable())
    with pytest.raises(activations.BackendUnavailable, match="no device here"):
        activations.apply("relu", X, backend="cupy")
    monkeypatch.setitem(dispatch._loaded, "numba", ImportError("numba is not installed"))
    with pytest.raises(activations.BackendUnavailable, match="numba"):
        activations.apply("relu", X, backend="numba")
    assert issubclass(activations.BackendUnavailable, RuntimeError)


def test_cupy_unavailable_without_gpu():
    from conftest import HAS_GPU

    if HAS_GPU:
        pytest.skip("a GPU is present")
    with pytest.raises(activations.BackendUnavailable):
        activations.apply("relu", X, backend="cupy")


def test_environment_variable_selects_the_backend(monkeypatch):
    monkeypatch.setenv("ACTIVATIONS_BACKEND", "nope")
    with pytest.raises(ValueError, match="nope"):
        activations.apply("relu", X)
    # an explicit argument wins over the environment
    np.testing.assert_array_equal(activations.apply("relu", X, backend="numpy"), np.maximum(X, 0))
    monkeypatch.setitem(dispatch._loaded, "cupy", _Unavailable())
    monkeypatch.setenv("ACTIVATIONS_BACKEND", "cupy")
    with pytest.raises(activations.BackendUnavailable):
        activations.apply("relu", X)
    with pytest.raises(activations.BackendUnavailable):
        activations.grad("relu", X, X)
    monkeypatch.setenv("ACTIVATIONS_BACKEND", "numpy")
    np.testing.assert_array_equal(activations.apply("relu", X), np.maximum(X, 0))
    monkeypatch.setenv("ACTIVATIONS_BACKEND", "")  # empty means auto
    np.testing.assert_array_equal(activations.apply("relu", X), np.maximum(X, 0))


def test_numpy_arrays_never_import_gpu_stacks():
    """Nor ml_dtypes, for float32/float64 calls: its import takes most of a second on some machines
    (bfloat16 and FP8 requests import it when they need it)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, activations; activations.apply('gelu', np.ones(3)); "
        "activations.apply('silu', np.ones(3, np.float32)); "
        "activations.grad('softmax', np.ones((2, 3)), np.ones((2, 3))); "
        "print(sorted(m for m in ('cupy', 'numba', 'dask', 'ml_dtypes') if m in sys.modules))"
    )
    import os

    from conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k != "ACTIVATIONS_BACKEND"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True, env=env)
    assert out.stdout.strip() == "[]", f"plain NumPy calls imported {out.stdout.strip()}"


# ------------------------------------------------------- grad return shapes
def test_grad_return_structure():
    dy = np.ones_like(X)
    assert isinstance(activations.grad("relu", X, dy), np.ndarray)
    r = activations.grad("relu", X, dy, bias=np.zeros(3))
    assert isinstance(r, tuple) and len(r) == 2
    r = activations.grad("prelu", X, dy)
    assert isinstance(r, tuple) and len(r) == 2
    r = activations.grad("prelu", X, dy, bias=np.zeros(3))
    assert isinstance(r, tuple) and len(r) == 3


def test_get_callable_and_module_attributes():
    f = activations.get("gelu")
    np.testing.assert_array_equal(f(X), activations.apply("gelu", X))
    np.testing.assert_array_equal(f.grad(X, np.ones_like(X)), activations.grad("gelu", X, np.ones_like(X)))
    np.testing.assert_array_equal(activations.softmax(X, axis=0), activations.apply("softmax", X, axis=0))
    np.testing.assert_array_equal(activations.swish(X), activations.apply("silu", X))
    np.testing.assert_array_equal(activations.get(None)(X), X)


# ------------------------------------------------------- the common call
@pytest.mark.parametrize("x", [X.astype(np.float32), X[:, ::2], [0.5, -1.0], 2.0, np.arange(4)])
def test_the_common_call_hands_the_backend_the_call_of_the_general_path(x):
    """apply(name, x) with x alone takes a written-out path (``_interface._plain``): the backend
    must get the same Call as through the general one (``_interface._prepare``), for every
    activation the path takes."""
    from activations import _interface
    from activations.catalogue import REGISTRY
    from activations.registry import Kind
    from activations.tools.benchmarks.overhead import registered

    real = dispatch.load("numpy")
    seen = []

    class Recorder(Backend):
        name = "numpy"

        def available(self):
            return True, "records"

        def owns(self, obj):
            return real.owns(obj)

        def asarray(self, obj, what, dtype=None):
            return real.asarray(obj, what, dtype)

        def forward(self, call):
            seen.append(call)
            return call.x

    taken = 0
    with registered(Recorder(), "numpy"):
        for rec in REGISTRY:
            if rec.kind is not Kind.ELEMENTWISE or rec.weighted or rec.row_param is not None:
                continue
            taken += 1
            try:
                activations.apply(rec.name, x)
            except TypeError as exc:  # a required parameter: the same refusal
                with pytest.raises(TypeError, match=re.escape(str(exc))):
                    _interface._prepare(rec.name, x, None, None, None, -1, None, None, {})
                continue
            plain = seen[-1]
            general = _interface._prepare(rec.name, x, None, None, None, -1, None, None, {}).call
            for field, a, b in zip(plain._fields, plain, general):
                if field == "x":
                    assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
                    if isinstance(x, np.ndarray) and x.dtype == np.float64:
                        assert a is x and b is x  # taken as it is
                elif field == "params":
                    assert a is b  # the record's defaults, bound once
                else:
                    assert a == b, (rec.name, field)
    assert taken > 20
