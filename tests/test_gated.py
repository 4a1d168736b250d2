"""Gated activations (glu, swiglu, geglu, reglu) against the oracle.

x is split along ``axis`` into a (first half) and b (second half); the output
has half the size there and the backward returns dx = [da | db] with x's shape.
"""
from __future__ import annotations

import numpy as np
import pytest

import activations
import reference as R

GATED = activations.names("gated")
#: (name, params) variants
VARIANTS = [(n, {}) for n in GATED] + [("geglu", {"approximate": "tanh"})]
#: the elementwise activations whose edge values matter for a and for b
EDGES_OF = {"glu": ("linear", "sigmoid"), "swiglu": ("silu", "linear"), "geglu": ("gelu", "linear"), "reglu": ("relu", "linear")}


def _vid(name, params):
    return name + "".join(f"[{k}={v}]" for k, v in params.items())


def cases(dtypes=R.DTYPES):
    return [pytest.param(n, p, dt, id=f"{_vid(n, p)}-{dt.name}") for n, p in VARIANTS for dt in dtypes]


def halve(shape, axis):
    s = list(shape)
    s[axis] //= 2
    return tuple(s)


def check(name, params, x, dtype, backend, what, rng, axis=-1, bias=None):
    kw = dict(params)
    if bias is not None:
        kw["bias"] = bias
    y = activations.apply(name, x, axis=axis, backend=backend, **kw)
    assert y.shape == halve(x.shape, axis) and y.dtype == x.dtype, f"{name} {what}: got {y.shape} {y.dtype} from {x.shape}"
    R.assert_close(y, R.forward(name, x, axis=axis, **kw), dtype, what=f"forward, {what}, axis={axis}")
    dy = R.random_cotangent(rng, y.shape, dtype)
    g = activations.grad(name, x, dy, axis=axis, backend=backend, **kw)
    exp = R.backward(name, x, dy, axis=axis, **kw)
    if bias is not None:
        dx, db = g
        R.assert_close(db, R.dbias(exp), dtype, what=f"dbias, {what}, axis={axis}")
    else:
        dx = g
    assert dx.shape == x.shape and dx.dtype == x.dtype, f"{name} {what}: dx {dx.shape}, x {x.shape}"
    R.assert_close(dx, exp, dtype, what=f"backward [da | db], {what}, axis={axis}")
    return y, dx


@pytest.mark.parametrize("name,params,dtype", cases())
def test_random(name, params, dtype, rng, backend):
    x = R.random_inputs(rng, (6, 2 * 129), name, dtype)
    check(name, params, x, dtype, backend, "random (6, 258)", rng)


@pytest.mark.parametrize("name,params,dtype", cases())
def test_half_lengths(name, params, dtype, rng, backend):
    for half in (1, 3, 1023, 1029):
        x = R.random_inputs(rng, (2, 2 * half), name, dtype)
        check(name, params, x, dtype, backend, f"halves of {half}", rng)


@pytest.mark.parametrize("name,params,dtype", cases())
def test_every_axis(name, params, dtype, rng, backend):
    x = R.random_inputs(rng, (4, 6, 8), name, dtype)
    for axis in (0, 1, 2, -1, -2, -3):
        check(name, params, x, dtype, backend, "3-D", rng, axis=axis)
    check(name, params, R.random_inputs(rng, 10, name, dtype), dtype, backend, "1-D", rng)


@pytest.mark.parametrize("name,params,dtype", cases())
def test_non_contiguous(name, params, dtype, rng, backend):
    base = R.random_inputs(rng, (8, 12), name, dtype)
    for label, x in {"transposed": base.T, "strided": base[::2, ::-1], "column slice": base[:, 2:10]}.items():
        for axis in (-1, 0):
            check(name, params, x, dtype, backend, label, rng, axis=axis)


@pytest.mark.parametrize("name,params,dtype", cases())
def test_edge_values(name, params, dtype, rng, backend):
    # edges of the gate in a (b random) and of the other factor in b (a random);
    # finite and moderate, so that products cannot overflow differently
    for side, act in enumerate(EDGES_OF[name]):
        ev = R.edge_values(act, **(params if act == "gelu" else {}))
        ev = ev[np.isfinite(ev) & (np.abs(ev) <= 1e4)]
        other = rng.normal(0, 2, ev.size)
        halves = (ev, other) if side == 0 else (other, ev)
        x = R.cast(np.concatenate(halves)[None, :], dtype)
        check(name, params, x, dtype, backend, f"edge values of {act} in {'ab'[side]}", rng)


@pytest.mark.parametrize("name,params,dtype", cases())
def test_nan_propagates(name, params, dtype, backend):
    # a NaN in a or in b makes y, da and db NaN
    x = R.cast([[np.nan, 1.0, 0.5, 2.0], [1.0, -1.0, np.nan, 2.0], [-1.0, 1.0, 0.5, np.nan]], dtype)
    y = activations.apply(name, x, backend=backend, **params).astype(np.float64)
    dx = activations.grad(name, x, R.cast(np.ones((3, 2)), dtype), backend=backend, **params).astype(np.float64)
    nan_y = np.array([[True, False], [True, False], [False, True]])
    nan_dx = np.array([[True, False, True, False], [True, False, True, False], [False, True, False, True]])
    assert (np.isnan(y) == nan_y).all(), f"{name} ({dtype.name}): y = {y}, NaN expected at {nan_y}"
    assert (np.isnan(dx) == nan_dx).all(), f"{name} ({dtype.name}): dx = {dx}, NaN expected at {nan_dx}"


@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
def test_glu_example(dtype, backend):
    y = activations.apply("glu", R.cast([-1.0, 0.0, 1.0, 1.0], dtype), backend=backend).astype(np.float64)
    np.testing.assert_allclose(y, [-0.7310585786300049, 0.0], rtol=R.tolerance(dtype)[0], atol=0)


@pytest.mark.parametrize("name", GATED)
def test_odd_axis_and_zero_d_raise(name, backend):
    with pytest.raises(ValueError, match="odd"):
        activations.apply(name, np.ones((2, 5)), backend=backend)
    with pytest.raises(ValueError, match="odd"):
        activations.grad(name, np.ones((3, 4)), np.ones((1, 4)), axis=0, backend=backend)
    with pytest.raises(ValueError):
        activations.apply(name, np.float64(1.0), backend=backend)
    # the even axis works although another one is odd
    assert activations.apply(name, np.ones((3, 4)), axis=1, backend=backend).shape == (3, 2)


@pytest.mark.parametrize("name", GATED)
def test_dy_must_have_the_output_shape(name, backend):
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match="dy"):
        activations.grad(name, x, np.ones((3, 4)), backend=backend)
    assert activations.grad(name, x, np.ones((3, 2)), backend=backend).shape == (3, 4)


@pytest.mark.parametrize("name,params,dtype", cases())
def test_fused_bias(name, params, dtype, rng, backend):
    # the bias runs along the last axis of the input (both halves)
    x = R.random_inputs(rng, (3, 4, 10), name, dtype)
    bias = R.cast(rng.normal(0, 1, 10), dtype)
    for axis in (-1, 1):
        check(name, params, x, dtype, backend, "bias", rng, axis=axis, bias=bias)


@pytest.mark.parametrize("name,params,dtype", cases())
def test_out(name, params, dtype, rng, backend):
    x = R.random_inputs(rng, (5, 12), name, dtype)
    out = np.full((5, 6), np.nan, dtype)
    assert activations.apply(name, x, out=out, backend=backend, **params) is out
    R.assert_close(out, R.forward(name, x, **params), dtype, what="out=")
    dy = R.random_cotangent(rng, (5, 6), dtype)
    exp = R.backward(name, x, dy, **params)
    dxo = np.full(x.shape, np.nan, dtype)
    assert activations.grad(name, x, dy, out=dxo, backend=backend, **params) is dxo
    R.assert_close(dxo, exp, dtype, what="grad out=")
    xc = x.copy()  # dx written over x
    activations.grad(name, xc, dy, out=xc, backend=backend, **params)
    R.assert_close(xc, exp, dtype, what="grad out=x")
    with pytest.raises(ValueError, match="shape"):
        activations.apply(name, x, out=x.copy(), backend=backend, **params)


@pytest.mark.parametrize("name", GATED)
def test_empty(name, backend):
    for shape, axis, out_shape in [((3, 0), -1, (3, 0)), ((0, 4), -1, (0, 2)), ((2, 0, 6), 2, (2, 0, 3))]:
        x = np.zeros(shape, np.float32)
        y = activations.apply(name, x, axis=axis, backend=backend)
        assert y.shape == out_shape and y.dtype == np.float32
        dx = activations.grad(name, x, np.zeros(out_shape, np.float32), axis=axis, backend=backend)
        assert dx.shape == shape


@pytest.mark.parametrize("name,params", VARIANTS, ids=[_vid(*v) for v in VARIANTS])
def test_backward_matches_finite_differences(name, params, rng, backend):
    x = rng.uniform(-4, 4, (5, 16))
    if name == "reglu":
        x[:, :8] = np.where(np.abs(x[:, :8]) < 1e-3, 0.5, x[:, :8])  # away from relu's kink
    dy = rng.normal(0, 1, (5, 8))
    h = 1e-6 * np.maximum(1.0, np.abs(x))
    dx = activations.grad(name, x, dy, backend=backend, **params)
    fd = np.empty_like(x)
    for j in range(x.shape[1]):  # one column of the input at a time
        xp, xm = x.copy(), x.copy()
        xp[:, j] += h[:, j]
        xm[:, j] -= h[:, j]
        diff = activations.apply(name, xp, backend=backend, **params) - activations.apply(name, xm, backend=backend, **params)
        fd[:, j] = (diff * dy).sum(axis=1) / (xp[:, j] - xm[:, j])
    np.testing.assert_allclose(dx, fd, rtol=1e-6, atol=1e-8, err_msg=f"{name}: grad differs from central differences")
