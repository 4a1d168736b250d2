"""Elementwise activations: every record x every dtype against the oracle.

Forward and backward on random values, edge values, odd lengths, 0-d and
empty arrays, non-contiguous layouts, out= (also in place), fused bias,
non-default parameters, prelu weights, rrelu training mode; backward also
by finite differences; and the oracle itself against mpmath.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import activations
import reference as R

ELEMENTWISE = activations.names("elementwise")
#: parameters a call must give (no defaults)
REQUIRED = {"threshold": {"threshold": 0.5, "value": -1.0}}

#: non-default parameters that take other branches; values exact in every dtype
NONDEFAULT = [
    ("relu", dict(negative_slope=0.25, max_value=6.0, threshold=0.5)),
    ("relu", dict(threshold=-2.0, max_value=5.0)),
    ("relu", dict(negative_slope=-0.5)),
    ("relu", dict(max_value=0.0)),
    ("relu", dict(threshold=7.0)),
    ("relu", dict(negative_slope=0.5, threshold=2.0, max_value=5.0)),
    ("relu", dict(negative_slope=0.1, threshold=0.1)),  # 0.1 is not representable: both branches accepted at it
    ("leaky_relu", dict(negative_slope=0.01)),
    ("leaky_relu", dict(negative_slope=2.0)),
    ("leaky_relu", dict(negative_slope=0.0)),
    ("leaky_relu", dict(alpha=0.3)),
    ("prelu", dict(weight=0.0)),
    ("prelu", dict(weight=-0.5)),
    ("rrelu", dict(lower=0.125, upper=0.5)),
    ("rrelu", dict(training=True, seed=7)),
    ("rrelu", dict(training=True, lower=0.0, upper=0.0, seed=3)),
    ("elu", dict(alpha=0.5)),
    ("elu", dict(alpha=2.0)),
    ("celu", dict(alpha=0.5)),
    ("celu", dict(alpha=3.0)),
    ("celu", dict(alpha=-2.0)),
    ("gelu", dict(approximate="tanh")),
    ("gelu", dict(approximate=True)),
    ("gelu", dict(approximate=False)),
    ("hard_sigmoid", dict(slope=0.2, offset=0.5)),
    ("hard_sigmoid", dict(slope=0.25, offset=0.25)),
    ("softplus", dict(beta=2.0)),
    ("softplus", dict(threshold=20.0)),
    ("softplus", dict(beta=0.5, threshold=10.0)),
    ("softplus", dict(beta=1.0, threshold=1.0)),
    ("hard_tanh", dict(min_val=-2.0, max_val=3.0)),
    ("hard_tanh", dict(min_val=0.0, max_val=6.0)),
    ("hard_tanh", dict(min_val=0.5, max_val=0.5)),
    ("soft_shrink", dict(threshold=0.0)),
    ("soft_shrink", dict(threshold=1.5)),
    ("soft_shrink", dict(lambd=0.25)),
    ("hard_shrink", dict(threshold=0.0)),
    ("hard_shrink", dict(threshold=1.5)),
    ("hard_shrink", dict(lambd=0.25)),
    ("threshold", dict(threshold=-1.0, value=2.0)),
    ("threshold", dict(threshold=0.0, default_value=0.0)),
    ("squareplus", dict(b=0.0)),
    ("squareplus", dict(b=1.0)),
    ("squareplus", dict(b=9.0)),
    ("snake", dict(frequency=0.5)),
    ("snake", dict(frequency=2.0)),
    ("snake", dict(frequency=-1.0)),
]


def params_of(name: str) -> dict:
    return dict(REQUIRED.get(name, {}))


def cases(names=ELEMENTWISE, dtypes=R.DTYPES):
    return [pytest.param(n, dt, id=f"{n}-{dt.name}") for n in names for dt in dtypes]


def _pid(params: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in params.items())


def nondefault_cases():
    return [
        pytest.param(n, p, dt, id=f"{n}[{_pid(p)}]-{dt.name}") for n, p in NONDEFAULT for dt in R.DTYPES
    ]


# ----------------------------------------------------------------- helpers
def dx_of(name, grads):
    """dx from grad()'s result (prelu also returns dweight)."""
    return grads[0] if name == "prelu" else grads


def check_forward(name, x, dtype, backend, what, **kw):
    got = activations.apply(name, x, backend=backend, **kw)
    assert isinstance(got, np.ndarray), f"{name}: apply returned {type(got).__name__}"
    assert got.dtype == x.dtype, f"{name} {what}: output dtype {got.dtype}, input dtype {x.dtype}"
    assert got.shape == x.shape, f"{name} {what}: output shape {got.shape}, input shape {x.shape}"
    R.assert_close(got, R.forward(name, x, **kw), dtype, what=f"forward, {what}")
    return got


def check_backward(name, x, dy, dtype, backend, what, **kw):
    got = activations.grad(name, x, dy, backend=backend, **kw)
    exp = R.backward(name, x, dy, **kw)
    if name == "prelu":
        got_dx, got_dw = got
        exp_dx, exp_dw = exp
        assert np.shape(got_dw) == exp_dw.shape, f"prelu {what}: dweight shape {np.shape(got_dw)}, want {exp_dw.shape}"
        R.assert_close(got_dw, exp_dw, dtype, what=f"dweight, {what}")
    else:
        got_dx, exp_dx = got, exp
    assert got_dx.dtype == x.dtype, f"{name} {what}: dx dtype {got_dx.dtype}, input dtype {x.dtype}"
    R.assert_close(got_dx, exp_dx, dtype, what=f"backward, {what}")
    return got


# -------------------------------------------------------- random and edges
@pytest.mark.parametrize("name,dtype", cases())
def test_forward_random(name, dtype, rng, backend):
    x = R.random_inputs(rng, 1029, name, dtype)
    check_forward(name, x, dtype, backend, "random inputs", **params_of(name))


@pytest.mark.parametrize("name,dtype", cases())
def test_backward_random(name, dtype, rng, backend):
    x = R.random_inputs(rng, 1029, name, dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    check_backward(name, x, dy, dtype, backend, "random inputs", **params_of(name))


@pytest.mark.parametrize("name,dtype", cases())
def test_forward_edge_values(name, dtype, backend):
    x = R.cast(R.edge_values(name, **params_of(name)), dtype)
    check_forward(name, x, dtype, backend, "edge values", **params_of(name))


@pytest.mark.parametrize("name,dtype", cases())
def test_backward_edge_values(name, dtype, rng, backend):
    x = R.cast(R.edge_values(name, **params_of(name)), dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    check_backward(name, x, dy, dtype, backend, "edge values", **params_of(name))


@pytest.mark.parametrize("name,dtype", cases())
def test_odd_lengths(name, dtype, rng, backend):
    # vector loops have a tail: lengths around 1024 and tiny ones
    for n in (1, 3, 1023, 1029):
        x = R.random_inputs(rng, n, name, dtype)
        dy = R.random_cotangent(rng, n, dtype)
        check_forward(name, x, dtype, backend, f"length {n}", **params_of(name))
        check_backward(name, x, dy, dtype, backend, f"length {n}", **params_of(name))


@pytest.mark.parametrize("name,params,dtype", nondefault_cases())
def test_nondefault_params(name, params, dtype, rng, backend):
    x = np.concatenate([R.random_inputs(rng, 257, name, dtype), R.cast(R.edge_values(name, **params), dtype)])
    dy = R.random_cotangent(rng, x.shape, dtype)
    check_forward(name, x, dtype, backend, f"params {params}", **params)
    check_backward(name, x, dy, dtype, backend, f"params {params}", **params)


@pytest.mark.parametrize("name,dtype", cases())
def test_nan_propagates(name, dtype, backend):
    # docs/semantics.md: a NaN input gives NaN in y and in dx, for every elementwise record
    x = R.cast([np.nan, 1.0, np.nan, -1.0], dtype)
    dy = R.cast([1.0, 1.0, 0.5, 1.0], dtype)
    kw = params_of(name)
    y = activations.apply(name, x, backend=backend, **kw)
    g = activations.grad(name, x, dy, backend=backend, **kw)
    dx = dx_of(name, g)
    assert np.isnan(y[[0, 2]].astype(np.float64)).all(), f"{name} ({dtype.name}): f(NaN) = {y[[0, 2]]}, want NaN"
    assert np.isnan(dx[[0, 2]].astype(np.float64)).all(), f"{name} ({dtype.name}): f'(NaN) * dy = {dx[[0, 2]]}, want NaN"
    assert not np.isnan(y[[1, 3]].astype(np.float64)).any() or name == "log1mexp", f"{name}: NaN leaked to neighbours: {y}"


# ------------------------------------------------------------ shapes, layout
@pytest.mark.parametrize("name,dtype", cases())
def test_zero_d_and_empty(name, dtype, backend):
    kw = params_of(name)
    x0 = R.cast(-0.75 if name != "log1mexp" else 0.75, dtype)
    assert x0.shape == ()
    y0 = activations.apply(name, x0, backend=backend, **kw)
    assert np.shape(y0) == () and np.asarray(y0).dtype == dtype, f"{name}: 0-d input gave shape {np.shape(y0)}"
    R.assert_close(y0, R.forward(name, x0, **kw), dtype, what="0-d forward")
    g0 = activations.grad(name, x0, R.cast(1.5, dtype), backend=backend, **kw)
    dx0 = dx_of(name, g0)
    assert np.shape(dx0) == ()
    R.assert_close(dx0, dx_of(name, R.backward(name, x0, R.cast(1.5, dtype), **kw)), dtype, what="0-d backward")
    for shape in [(0,), (3, 0, 2), (0, 5)]:
        x = np.zeros(shape, dtype)
        y = activations.apply(name, x, backend=backend, **kw)
        assert y.shape == shape and y.dtype == dtype, f"{name}: empty {shape} gave {y.shape} {y.dtype}"
        g = activations.grad(name, x, np.zeros(shape, dtype), backend=backend, **kw)
        dx = dx_of(name, g)
        assert dx.shape == shape and dx.dtype == dtype


@pytest.mark.parametrize("name,dtype", cases())
def test_non_contiguous_layouts(name, dtype, rng, backend):
    kw = params_of(name)
    base = R.random_inputs(rng, (7, 12), name, dtype)
    cube = R.random_inputs(rng, (3, 4, 5), name, dtype)
    views = {
        "transposed": base.T,
        "column slice": base[:, 1::3],
        "negative strides": base[::-1, ::-2],
        "fortran order": np.asfortranarray(base),
        "3-D moved axes": np.moveaxis(cube, 0, -1),
        "1-D strided": base.reshape(-1)[5::7],
    }
    for label, x in views.items():
        before = x.copy()
        dy = R.random_cotangent(rng, x.shape, dtype)
        check_forward(name, x, dtype, backend, label, **kw)
        check_backward(name, x, dy, dtype, backend, label, **kw)
        assert np.array_equal(x.astype(np.float64), before.astype(np.float64)), f"{name}: input modified ({label})"


@pytest.mark.parametrize("name,dtype", cases())
def test_out_and_in_place(name, dtype, rng, backend):
    kw = params_of(name)
    x = R.random_inputs(rng, (5, 11), name, dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    y_exp = R.forward(name, x, **kw)

    out = np.full(x.shape, np.nan, dtype)
    got = activations.apply(name, x, out=out, backend=backend, **kw)
    assert got is out, f"{name}: apply(out=...) did not return out"
    R.assert_close(out, y_exp, dtype, what="out=")

    xc = x.copy()
    got = activations.apply(name, xc, out=xc, backend=backend, **kw)
    assert got is xc
    R.assert_close(xc, y_exp, dtype, what="in place (out=x)")

    xt = x.copy().T  # in place on a non-contiguous view
    got = activations.apply(name, xt, out=xt, backend=backend, **kw)
    R.assert_close(xt, R.forward(name, x.T, **kw), dtype, what="in place on a transposed view")

    exp_g = R.backward(name, x, dy, **kw)
    exp_dx = dx_of(name, exp_g)
    dx_out = np.full(x.shape, np.nan, dtype)
    g = activations.grad(name, x, dy, out=dx_out, backend=backend, **kw)
    dx = dx_of(name, g)
    assert dx is dx_out, f"{name}: grad(out=...) did not return out as dx"
    R.assert_close(dx_out, exp_dx, dtype, what="grad out=")

    dyc = dy.copy()  # dx written over dy
    g = activations.grad(name, x, dyc, out=dyc, backend=backend, **kw)
    R.assert_close(dyc, exp_dx, dtype, what="grad out=dy")
    xc = x.copy()  # dx written over x
    g = activations.grad(name, xc, dy, out=xc, backend=backend, **kw)
    R.assert_close(xc, exp_dx, dtype, what="grad out=x")


@pytest.mark.parametrize("name,dtype", cases())
def test_fused_bias(name, dtype, rng, backend):
    kw = params_of(name)
    x = R.random_inputs(rng, (4, 3, 7), name, dtype)
    bias = R.cast(rng.normal(0, 1, 7) if name != "log1mexp" else rng.uniform(0, 1, 7), dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    y = activations.apply(name, x, bias=bias, backend=backend, **kw)
    R.assert_close(y, R.forward(name, x, bias=bias, **kw), dtype, what="forward with bias")
    got = activations.grad(name, x, dy, bias=bias, backend=backend, **kw)
    exp = R.backward(name, x, dy, bias=bias, **kw)
    if name == "prelu":
        assert len(got) == 3, "prelu grad with bias returns (dx, dbias, dweight)"
        dx, db, dw = got
        exp_dx, exp_dw = exp
        R.assert_close(dw, exp_dw, dtype, what="dweight with bias")
    else:
        assert isinstance(got, tuple) and len(got) == 2, f"{name}: grad with bias returns (dx, dbias)"
        dx, db = got
        exp_dx = exp
    R.assert_close(dx, exp_dx, dtype, what="dx with bias")
    assert db.shape == (7,) and db.dtype == dtype, f"{name}: dbias shape {db.shape} dtype {db.dtype}"
    R.assert_close(db, R.dbias(exp_dx), dtype, what="dbias")
    # bias given as a list (float64) is cast to x's dtype
    y2 = activations.apply(name, x, bias=[float(b) for b in bias.astype(np.float64)], backend=backend, **kw)
    np.testing.assert_array_equal(y2.astype(np.float64), y.astype(np.float64), err_msg=f"{name}: list bias")


@pytest.mark.parametrize("name,dtype", cases(dtypes=[R.F16, R.F32]))
def test_large_array_crosses_blocks(name, dtype, rng, backend):
    # 3 x 13339 = 40017 elements: longer than a 32 Ki block, rows straddle it
    kw = params_of(name)
    x = R.random_inputs(rng, (3, 13339), name, dtype)
    bias = R.cast(rng.normal(0, 0.5, 13339) if name != "log1mexp" else rng.uniform(0, 1, 13339), dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    y = activations.apply(name, x, bias=bias, backend=backend, **kw)
    R.assert_close(y, R.forward(name, x, bias=bias, **kw), dtype, what="40017 elements with bias")
    g = activations.grad(name, x, dy, backend=backend, **kw)
    dx = dx_of(name, g)
    exp = R.backward(name, x, dy, **kw)
    R.assert_close(dx, dx_of(name, exp), dtype, what="40017 elements backward")


# ------------------------------------------------------------------- prelu
@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize("kind", ["float", "per-channel", "one-element", "list", "float64 array"])
def test_prelu_weights(kind, dtype, rng, backend):
    x = R.random_inputs(rng, (6, 5), "prelu", dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    weight = {
        "float": -0.375,
        "per-channel": R.cast([0.0, 0.25, -0.5, 1.5, 0.125], dtype),
        "one-element": R.cast([0.75], dtype),
        "list": [0.0, 0.25, -0.5, 1.5, 0.125],
        "float64 array": np.array([0.1, 0.2, 0.3, 0.4, 0.5]),
    }[kind]
    check_forward("prelu", x, dtype, backend, f"weight {kind}", weight=weight)
    dx, dw = check_backward("prelu", x, dy, dtype, backend, f"weight {kind}", weight=weight)
    want_shape = () if isinstance(weight, float) else (np.asarray(weight).size,)
    assert np.shape(dw) == want_shape, f"prelu weight {kind}: dweight shape {np.shape(dw)}, want {want_shape}"
    # with bias: (dx, dbias, dweight)
    bias = R.cast(rng.normal(0, 1, 5), dtype)
    got = activations.grad("prelu", x, dy, bias=bias, weight=weight, backend=backend)
    exp_dx, exp_dw = R.backward("prelu", x, dy, bias=bias, weight=weight)
    R.assert_close(got[0], exp_dx, dtype, what=f"prelu dx, bias, weight {kind}")
    R.assert_close(got[1], R.dbias(exp_dx), dtype, what=f"prelu dbias, weight {kind}")
    R.assert_close(got[2], exp_dw, dtype, what=f"prelu dweight, bias, weight {kind}")


def test_prelu_weight_runs_along_last_axis(backend):
    x = -np.ones((2, 3))
    y = activations.apply("prelu", x, weight=np.array([0.5, 1.0, 2.0]), backend=backend)
    np.testing.assert_array_equal(y, [[-0.5, -1.0, -2.0]] * 2)
    _, dw = activations.grad("prelu", x, np.ones((2, 3)), weight=np.array([0.5, 1.0, 2.0]), backend=backend)
    np.testing.assert_array_equal(dw, [-2.0, -2.0, -2.0])


def test_prelu_zero_d_with_one_element_weight(backend):
    y = activations.apply("prelu", np.float32(-2.0), weight=np.array([0.5], np.float32), backend=backend)
    assert float(y) == -1.0


# ------------------------------------------------------------------- rrelu
@pytest.mark.parametrize("dtype", [R.F32, R.F64], ids=["float32", "float64"])
def test_rrelu_training_slopes_follow_the_documented_hash(dtype, backend):
    lower, upper, seed = 0.125, 0.5, 12345
    x = -np.ones((5, 7), dtype)
    y = activations.apply("rrelu", x, training=True, lower=lower, upper=upper, seed=seed, backend=backend)
    slopes = R.rrelu_slopes(x.shape, lower, upper, seed)
    np.testing.assert_allclose(-y.astype(np.float64), slopes, rtol=R.tolerance(dtype)[0] * 4,
                               err_msg="rrelu(training=True) slopes are not lower + (upper - lower) * u(seed, flat index)")
    assert (slopes >= lower).all() and (slopes < upper).all()


def test_rrelu_hash_matches_splitmix64():
    # SplitMix64 with state=1234567 gives 6457827717110365317, 3203168211198807973, ...
    # (the documented hash is its i-th output); u keeps the top 24 bits.
    z = [6457827717110365317, 3203168211198807973, 9817491932198370423]
    want = [(v >> 40) * 2.0**-24 for v in z]
    np.testing.assert_array_equal(R.hash_uniform(1234567, [0, 1, 2]), want)


@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
def test_rrelu_training_deterministic_and_consistent(dtype, rng, backend):
    x = R.random_inputs(rng, (9, 31), "rrelu", dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    kw = dict(training=True, seed=2024)
    y1 = activations.apply("rrelu", x, backend=backend, **kw)
    y2 = activations.apply("rrelu", x, backend=backend, **kw)
    np.testing.assert_array_equal(y1.view(np.uint8), y2.view(np.uint8), err_msg="rrelu training is not deterministic")
    R.assert_close(y1, R.forward("rrelu", x, **kw), dtype, what="training forward")
    dx = activations.grad("rrelu", x, dy, backend=backend, **kw)
    R.assert_close(dx, R.backward("rrelu", x, dy, **kw), dtype, what="training backward uses the forward's slopes")
    y3 = activations.apply("rrelu", x, backend=backend, training=True, seed=2025)
    neg = x.astype(np.float64) < 0
    assert (y3[neg] != y1[neg]).mean() > 0.9, "another seed should draw other slopes"
    # the index is the logical C-order index, whatever the memory layout
    xt = x.T
    R.assert_close(activations.apply("rrelu", xt, backend=backend, **kw), R.forward("rrelu", np.ascontiguousarray(xt), **kw),
                   dtype, what="training, transposed input")


def test_rrelu_seed_limits(backend):
    x = -np.ones(8)
    y = activations.apply("rrelu", x, training=True, seed=2**64 - 1, backend=backend)
    np.testing.assert_allclose(-y, R.rrelu_slopes((8,), 1 / 8, 1 / 3, 2**64 - 1), rtol=1e-14)


@pytest.mark.slow
def test_rrelu_training_index_across_blocks_and_threads(backend):
    # more than 2^20 elements: blocked and (on the NumPy backend) threaded evaluation
    n = (1 << 20) + 4099
    x = -np.ones(n, np.float32)
    y = activations.apply("rrelu", x, training=True, seed=99, backend=backend)
    np.testing.assert_allclose(-y.astype(np.float64), R.rrelu_slopes((n,), 1 / 8, 1 / 3, 99), rtol=1e-6)


def test_rrelu_eval_mode_slope(backend):
    y = activations.apply("rrelu", np.array([-1.0, 2.0]), backend=backend)
    np.testing.assert_allclose(y, [-(1 / 8 + 1 / 3) / 2, 2.0], rtol=1e-15)


# ------------------------------------------------------- kink conventions
SCALE_ALPHA = R.SELU_SCALE * R.SELU_ALPHA
#: (name, params, x, f(x), f'(x)) at kinks, as docs/semantics.md fixes them (torch's choices)
KINKS = [
    ("relu", {}, 0.0, 0.0, 0.0),
    ("relu", dict(threshold=1.0, negative_slope=0.5), 1.0, 0.0, 0.5),
    ("relu", dict(max_value=6.0), 6.0, 6.0, 0.0),
    ("relu", dict(max_value=6.0), 0.0, 0.0, 0.0),
    ("relu6", {}, 0.0, 0.0, 0.0),
    ("relu6", {}, 6.0, 6.0, 0.0),
    ("leaky_relu", {}, 0.0, 0.0, 0.2),
    ("prelu", {}, 0.0, 0.0, 0.25),
    ("rrelu", {}, 0.0, 0.0, (1 / 8 + 1 / 3) / 2),
    ("elu", {}, 0.0, 0.0, 1.0),
    ("elu", dict(alpha=2.0), 0.0, 0.0, 2.0),
    ("selu", {}, 0.0, 0.0, SCALE_ALPHA),
    ("celu", dict(alpha=2.0), 0.0, 0.0, 1.0),
    ("hard_tanh", {}, 1.0, 1.0, 0.0),
    ("hard_tanh", {}, -1.0, -1.0, 0.0),
    # (slope 1/6 is not a float: whether 3 is exactly the kink depends on rounding; 1/4 is exact)
    ("hard_sigmoid", dict(slope=0.25), 2.0, 1.0, 0.0),
    ("hard_sigmoid", dict(slope=0.25), -2.0, 0.0, 0.0),
    ("hard_silu", {}, -3.0, 0.0, 0.0),
    ("hard_silu", {}, 3.0, 3.0, 1.0),
    ("soft_shrink", {}, 0.5, 0.0, 0.0),
    ("soft_shrink", {}, -0.5, 0.0, 0.0),
    ("hard_shrink", {}, 0.5, 0.0, 0.0),
    ("hard_shrink", {}, -0.5, 0.0, 0.0),
    ("threshold", dict(threshold=0.5, value=-1.0), 0.5, -1.0, 0.0),
    ("sparse_plus", {}, -1.0, 0.0, 0.0),
    ("sparse_plus", {}, 1.0, 1.0, 1.0),
    ("sparse_sigmoid", {}, -1.0, 0.0, 0.0),
    ("sparse_sigmoid", {}, 1.0, 1.0, 0.0),
    ("log1mexp", {}, 0.0, -np.inf, np.inf),
    ("squareplus", dict(b=0.0), 0.0, 0.0, 0.5),
]


@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize(
    "name,params,x,y,d", KINKS, ids=[f"{k[0]}({_pid(k[1])})@{k[2]}" for k in KINKS]
)
def test_kink_conventions(name, params, x, y, d, dtype, backend):
    xa = R.cast([x], dtype)
    got_y = activations.apply(name, xa, backend=backend, **params).astype(np.float64)[0]
    g = activations.grad(name, xa, R.cast([1.0], dtype), backend=backend, **params)
    got_d = dx_of(name, g).astype(np.float64)[0]
    rtol = R.tolerance(dtype)[0]
    assert got_y == pytest.approx(y, rel=rtol, abs=0), f"{name}({params}) at x={x} ({dtype.name}): y={got_y}, want {y}"
    assert got_d == pytest.approx(d, rel=rtol, abs=0), f"{name}({params})' at x={x} ({dtype.name}): dy/dx={got_d}, want {d}"
    # the oracle agrees
    assert R.forward(name, xa, **params)[0] == pytest.approx(y, rel=rtol, abs=0)
    exp_d = R.backward(name, xa, R.cast([1.0], dtype), **params)
    assert dx_of(name, exp_d)[0] == pytest.approx(d, rel=rtol, abs=0)


# ------------------------------------------------------ finite differences
def _away_from_kinks(name, x, params, margin=1e-3):
    ks = np.array([k for k in R.kinks(name, **params) if math.isfinite(k)])
    keep = np.ones(x.shape, bool)
    for k in ks:
        keep &= np.abs(x - k) > margin * max(1.0, abs(k))
    if name == "log1mexp":
        keep &= x > 0.05
    return keep


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_backward_matches_finite_differences(name, rng, backend):
    kw = params_of(name)
    if name == "rrelu":
        kw = dict(training=True, seed=5)
    x = rng.uniform(-6, 6, 400)
    x = x[_away_from_kinks(name, x, kw)]
    h = 1e-5 * np.maximum(1.0, np.abs(x))
    xp, xm = x + h, x - h
    fd = (activations.apply(name, xp, backend=backend, **kw) - activations.apply(name, xm, backend=backend, **kw)) / (xp - xm)
    g = activations.grad(name, x, np.ones_like(x), backend=backend, **kw)
    dx = dx_of(name, g)
    scale = np.maximum(1.0, np.abs(activations.apply(name, x, backend=backend, **kw)))
    bad = np.abs(dx - fd) > 1e-6 * np.abs(fd) + 1e-8 * scale
    assert not bad.any(), (
        f"{name}: grad differs from central differences at x={x[bad][:5]}: grad={dx[bad][:5]}, fd={fd[bad][:5]}"
    )


# ------------------------------------------------- the oracle vs mpmath
def _mp_functions():
    mp = mpmath
    sa, ss = mp.mpf(R.SELU_ALPHA), mp.mpf(R.SELU_SCALE)

    def relu(x, p):
        s, m, t = p["negative_slope"], p["max_value"], p["threshold"]
        if x > t:
            return x if m is None else min(max(x, 0), m)
        return s * (x - t)

    def softplus(x, p):
        b = p["beta"]
        if p["threshold"] is not None and b * x > p["threshold"]:
            return x
        return mp.log1p(mp.exp(b * x)) / b

    def gelu(x, p):
        if p["approximate"] == "tanh":
            return x / 2 * (1 + mp.tanh(mp.sqrt(2 / mp.pi) * (x + mp.mpf(R.GELU_K1) * x**3)))
        return x * mp.ncdf(x)

    def rrelu(x, p):
        return x if x > 0 else (p["lower"] + p["upper"]) / 2 * x

    return {
        "relu": relu,
        "relu6": lambda x, p: min(max(x, 0), 6),
        "leaky_relu": lambda x, p: x if x > 0 else p["negative_slope"] * x,
        "prelu": lambda x, p: x if x > 0 else p["weight"] * x,
        "rrelu": rrelu,
        "elu": lambda x, p: x if x > 0 else p["alpha"] * mp.expm1(x),
        "selu": lambda x, p: ss * (x if x > 0 else sa * mp.expm1(x)),
        "celu": lambda x, p: x if x > 0 else p["alpha"] * mp.expm1(x / p["alpha"]),
        "gelu": gelu,
        "sigmoid": lambda x, p: 1 / (1 + mp.exp(-x)),
        "hard_sigmoid": lambda x, p: min(max(p["slope"] * x + p["offset"], 0), 1),
        "log_sigmoid": lambda x, p: -mp.log1p(mp.exp(-x)),
        "softplus": softplus,
        "softsign": lambda x, p: x / (1 + abs(x)),
        "silu": lambda x, p: x / (1 + mp.exp(-x)),
        "hard_silu": lambda x, p: x * min(max(x + 3, 0), 6) / 6,
        "mish": lambda x, p: x * mp.tanh(mp.log1p(mp.exp(x))),
        "tanh": lambda x, p: mp.tanh(x),
        "hard_tanh": lambda x, p: min(max(x, p["min_val"]), p["max_val"]),
        "tanh_shrink": lambda x, p: x - mp.tanh(x),
        "soft_shrink": lambda x, p: mp.sign(x) * max(abs(x) - p["threshold"], 0),
        "hard_shrink": lambda x, p: x if abs(x) > p["threshold"] else 0,
        "threshold": lambda x, p: x if x > p["threshold"] else p["value"],
        "sparse_plus": lambda x, p: 0 if x <= -1 else (x if x >= 1 else (x + 1) ** 2 / 4),
        "sparse_sigmoid": lambda x, p: 0 if x <= -1 else (1 if x >= 1 else (x + 1) / 2),
        "squareplus": lambda x, p: (x + mp.sqrt(x * x + p["b"])) / 2,
        "exponential": lambda x, p: mp.exp(x),
        "linear": lambda x, p: x,
        "log1mexp": lambda x, p: mp.log(-mp.expm1(-x)),
        "lisht": lambda x, p: x * mp.tanh(x),
        "snake": lambda x, p: x + mp.sin(p["frequency"] * x) ** 2 / p["frequency"],
    }


MP = _mp_functions()
ORACLE_CASES = [(n, params_of(n)) for n in ELEMENTWISE] + [(n, p) for n, p in NONDEFAULT if not p.get("training")]


@pytest.mark.parametrize("name,params", ORACLE_CASES, ids=[f"{n}[{_pid(p)}]" for n, p in ORACLE_CASES])
def test_oracle_matches_mpmath(name, params):
    """The oracle's float64 values and derivatives against 60-digit mpmath."""
    bound = dict(activations.REGISTRY.get(name).bind(params).values)
    ev = R.edge_values(name, **params)
    rng = np.random.default_rng(len(name))
    x = np.concatenate([ev[np.isfinite(ev) & (np.abs(ev) < 700)], rng.uniform(-15, 15, 40)])
    if name == "log1mexp":
        x = x[x > 0]
    keep = _away_from_kinks(name, x, params, margin=1e-6)
    x = x[keep]
    y = R.forward(name, x, **params)
    d = R.backward(name, x, np.ones_like(x), **params)
    d = dx_of(name, d)
    f = MP[name]
    want_y, want_d = [], []
    with mpmath.workdps(60):
        p = {k: (mpmath.mpf(v) if isinstance(v, float) else v) for k, v in bound.items()}
        for v in x:
            xv = mpmath.mpf(float(v))
            want_y.append(float(f(xv, p)))
            want_d.append(float(mpmath.diff(lambda t: f(t, p), xv)))
    for label, got, want, slack in (("value", y, want_y, y.slack), ("derivative", d, want_d, d.slack)):
        got, want = np.asarray(got), np.array(want)
        # the oracle must be far inside the tolerance it grants the kernels
        tol = 4e-15 * np.abs(want) + 1e-300 + (0 if slack is None else slack / 4)
        if label == "derivative":  # numerical differentiation at 60 digits resolves ~1e-50 of |f|
            tol = tol + 1e-45 * (1 + np.abs(np.asarray(y)))
        bad = ~(np.abs(got - want) <= tol)
        assert not bad.any(), (
            f"oracle {name}({params}) {label} is off at x={x[bad][:6]}: oracle {np.asarray(got)[bad][:6]}, mpmath {want[bad][:6]}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["relu", "gelu", "silu", "prelu"])
def test_more_than_a_million_elements(name, rng, backend):
    # above the NumPy backend's threading threshold (2^20): split over threads, one result
    x = R.random_inputs(rng, (1031, 1031), name, R.F32)
    bias = R.cast(rng.normal(0, 0.5, 1031), R.F32)
    dy = R.random_cotangent(rng, x.shape, R.F32)
    R.assert_close(activations.apply(name, x, bias=bias, backend=backend), R.forward(name, x, bias=bias), R.F32,
                   what="1031 x 1031 with bias")
    g = activations.grad(name, x, dy, bias=bias, backend=backend)
    exp = R.backward(name, x, dy, bias=bias)
    exp_dx = dx_of(name, exp)
    R.assert_close(g[0], exp_dx, R.F32, what="1031 x 1031 dx")
    R.assert_close(g[1], R.dbias(exp_dx), R.F32, what="1031 x 1031 dbias")
