"""Gated activations (glu, swiglu, geglu, reglu) against the oracle.

x is split along ``axis`` into a (first half) and b (second half), or with
layout="interleaved" into a = x[0::2] and b = x[1::2]; the output has half the
size there and the backward returns dx = [da | db] (interleaved back) with x's
shape.  limit clamps the gate half above and the linear half to [-limit, limit],
offset is added to the linear half, alpha is glu's and swiglu's gate slope.
"""
from __future__ import annotations

import numpy as np
import pytest

import activations
import reference as R

GATED = activations.names("gated")
GPT_OSS = dict(activations.GPT_OSS_SWIGLU)
#: (name, params) variants: the plain units, and clamped, offset, sloped and interleaved ones
VARIANTS = [(n, {}) for n in GATED] + [
    ("geglu", {"approximate": "tanh"}),
    ("swiglu", GPT_OSS),
    ("glu", {"limit": 2.0, "offset": 0.5, "alpha": -1.5}),
    ("swiglu", {"limit": 3.0, "alpha": 0.25}),
    ("geglu", {"limit": 3.0, "offset": 1.0, "approximate": "tanh", "layout": "interleaved"}),
    ("reglu", {"limit": 1.5, "offset": -1.0, "layout": "interleaved"}),
    ("glu", {"layout": "interleaved"}),
]
#: the elementwise activations whose edge values matter for a and for b
EDGES_OF = {"glu": ("linear", "sigmoid"), "swiglu": ("silu", "linear"), "geglu": ("gelu", "linear"), "reglu": ("relu", "linear")}


def _vid(name, params):
    if params == GPT_OSS:
        return name + "[gpt-oss]"
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
        ev = R.edge_values(act, **({"approximate": params.get("approximate", "none")} if act == "gelu" else {}))
        ev = ev[np.isfinite(ev) & (np.abs(ev) <= 1e4)]
        other = rng.normal(0, 2, ev.size)
        halves = (ev, other) if side == 0 else (other, ev)
        x = R.cast(R.gated_join(halves[0][None, :], halves[1][None, :], 1, params.get("layout", "concat")), dtype)
        check(name, params, x, dtype, backend, f"edge values of {act} in {'ab'[side]}", rng)


@pytest.mark.parametrize("name,params,dtype", cases())
def test_nan_propagates(name, params, dtype, backend):
    # a NaN in a or in b makes y, da and db NaN
    x = np.array([[np.nan, 1.0, 0.5, 2.0], [1.0, -1.0, np.nan, 2.0], [-1.0, 1.0, 0.5, np.nan]])
    layout = params.get("layout", "concat")
    x = R.cast(R.gated_join(x[:, :2], x[:, 2:], 1, layout), dtype)
    y = activations.apply(name, x, backend=backend, **params).astype(np.float64)
    dx = activations.grad(name, x, R.cast(np.ones((3, 2)), dtype), backend=backend, **params).astype(np.float64)
    nan_y = np.array([[True, False], [True, False], [False, True]])
    nan_dx = np.array([[True, False, True, False], [True, False, True, False], [False, True, False, True]])
    nan_dx = R.gated_join(nan_dx[:, :2], nan_dx[:, 2:], 1, layout)
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
    limit = params.get("limit") or np.inf
    # away from relu's kink and the clamps' corners
    x = np.where((np.abs(x) < 1e-3) | (np.abs(np.abs(x) - limit) < 1e-3), 0.5, x)
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


# ------------------------------------------------------------ clamp, offset, slope, layout
def _gpt_oss_float64(x):
    """GPT-OSS's SwiGLU written out literally (gpt_oss/torch/model.py), in float64."""
    from scipy.special import expit

    x_glu, x_linear = x[..., ::2], x[..., 1::2]
    x_glu = np.minimum(x_glu, 7.0)
    x_linear = np.clip(x_linear, -7.0, 7.0)
    return x_glu * expit(1.702 * x_glu) * (x_linear + 1.0)


def _near(limit, dtype):
    """Values straddling the clamp limits in ``dtype``: +-limit exactly, one ulp inside and
    outside, and farther out (and +-inf)."""
    lim = np.asarray(limit, dtype)
    up, down = np.asarray(np.inf, dtype), np.asarray(-np.inf, dtype)
    vals = []
    for v in (lim, -lim):
        vals += [v, np.nextafter(v, up), np.nextafter(v, down)]
    return R.cast(np.array([float(v) for v in vals] + [2.0 * limit, -2.0 * limit, np.inf, -np.inf]), dtype)


@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize("name", GATED)
@pytest.mark.parametrize("layout", ["concat", "interleaved"])
def test_clamp_boundaries(name, layout, dtype, rng, backend):
    # every value straddling +-limit in each half against every moderate value in the other;
    # the derivative through a clamp is 0 beyond it and passes at the bound itself (torch.clamp)
    limit = 2.5
    params = {"limit": limit, "offset": 1.0, "layout": layout}
    edge = _near(limit, dtype).astype(np.float64)
    other = np.array([-3.0, -1.0, -0.25, 0.5, 1.5, 3.0])
    e, o = np.meshgrid(edge, other, indexing="ij")
    gate_first = name != "glu"  # glu's gate is b
    for edge_is_gate in (True, False):
        a, b = (e, o) if edge_is_gate == gate_first else (o, e)
        x = R.cast(R.gated_join(a.reshape(1, -1), b.reshape(1, -1), 1, layout), dtype)
        what = f"{'gate' if edge_is_gate else 'linear'} half at the clamp, {layout}"
        y = activations.apply(name, x, backend=backend, **params)
        R.assert_close(y, R.forward(name, x, **params), dtype, what=f"forward, {what}")
        dy = R.cast(np.ones(y.shape), dtype)
        dx = activations.grad(name, x, dy, backend=backend, **params)
        R.assert_close(dx, R.backward(name, x, dy, **params), dtype, what=f"backward, {what}")
        da, db = R.gated_split(dx.astype(np.float64), 1, layout)
        d_edge = (da if edge_is_gate == gate_first else db).reshape(e.shape)
        v = e[:, 0]
        cut = v > limit if edge_is_gate else np.abs(v) > limit
        assert (d_edge[cut] == 0).all(), f"{name} {what}: gradient beyond the clamp {d_edge[cut]}"
        at = np.abs(v) == limit if not edge_is_gate else v == limit
        inside = d_edge[at & ~cut]
        expect = R.backward(name, x, dy, **params)
        ea, eb = R.gated_split(np.asarray(expect), 1, layout)
        e_edge = (ea if edge_is_gate == gate_first else eb).reshape(e.shape)[at & ~cut]
        assert (np.sign(inside) == np.sign(e_edge)).all() and np.any(e_edge != 0), (
            f"{name} {what}: the bound itself must pass the derivative, got {inside}, expected {e_edge}"
        )


@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
def test_gpt_oss_literal(dtype, rng, backend):
    # the recipe against GPT-OSS's formula written out: interleaved gate/linear, both clamps, +1
    x = R.cast(rng.normal(0, 6, (4, 64)), dtype)
    x[0, :8] = R.cast([7.0, 7.0, -7.0, 7.5, 8.0, -8.0, np.inf, -np.inf], dtype)
    y = activations.apply("swiglu", x, backend=backend, **activations.GPT_OSS_SWIGLU)
    exp = _gpt_oss_float64(x.astype(np.float64))
    rtol = {2: 8e-3, 4: 2e-6, 8: 1e-13}[np.dtype(dtype).itemsize] * (2 if dtype == R.BFLOAT16 else 1)
    np.testing.assert_allclose(y.astype(np.float64), exp, rtol=rtol, atol=rtol, err_msg=f"GPT-OSS swiglu ({dtype})")


def test_gpt_oss_against_torch(rng, backend):
    torch = pytest.importorskip("torch")
    x = rng.normal(0, 6, (8, 128))
    x[0, :12] = [7.0, 7.0, 7.0, -7.0, -7.0, 7.0, 9.0, -9.0, 6.5, 7.0, -3.0, -7.0]  # bounds in both halves
    t = torch.tensor(x, requires_grad=True)
    g, u = t[..., ::2], t[..., 1::2]
    g = g.clamp(min=None, max=7.0)
    u = u.clamp(min=-7.0, max=7.0)
    ty = g * torch.sigmoid(1.702 * g) * (u + 1)
    dy = rng.normal(0, 1, ty.shape)
    ty.backward(torch.tensor(dy))
    y = activations.apply("swiglu", x, backend=backend, **activations.GPT_OSS_SWIGLU)
    dx = activations.grad("swiglu", x, dy, backend=backend, **activations.GPT_OSS_SWIGLU)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-12, atol=1e-13, err_msg="torch autograd at the clamps")


@pytest.mark.parametrize("name,params", VARIANTS, ids=[_vid(*v) for v in VARIANTS])
def test_interleaved_is_concat_of_the_even_and_odd_elements(name, params, rng, backend):
    # the same unit on the reordered input, bit for bit, forward and backward, any axis
    for axis in (0, 1, -1):
        x = R.cast(rng.normal(0, 3, (6, 4, 10)), np.float32)
        kw = {**params, "layout": "concat"}
        evens, odds = R.gated_split(x, axis % 3, "interleaved")
        x_concat = np.concatenate([evens, odds], axis=axis)
        y_i = activations.apply(name, x, axis=axis, backend=backend, **{**kw, "layout": "interleaved"})
        y_c = activations.apply(name, x_concat, axis=axis, backend=backend, **kw)
        np.testing.assert_array_equal(y_i, y_c)
        dy = R.cast(rng.normal(0, 1, y_i.shape), np.float32)
        dx_i = activations.grad(name, x, dy, axis=axis, backend=backend, **{**kw, "layout": "interleaved"})
        da, db = np.split(activations.grad(name, x_concat, dy, axis=axis, backend=backend, **kw), 2, axis=axis)
        np.testing.assert_array_equal(dx_i, R.gated_join(da, db, axis % 3, "interleaved"))


@pytest.mark.parametrize("dtype", [d for d in R.DTYPES if np.dtype(d).itemsize == 2], ids=lambda d: d.name)
def test_every_16bit_value_through_the_clamps(dtype, backend):
    # all 65,536 values as the gate and as the linear half of GPT-OSS's unit, forward and backward
    every = np.arange(65536, dtype=np.uint16).view(dtype)
    rest = R.cast(np.linspace(-9.0, 9.0, 65536), dtype)
    for name, params in (("swiglu", GPT_OSS), ("glu", {"limit": 4.0, "offset": -0.5, "alpha": 2.0})):
        for gate_values in (True, False):
            first = every if gate_values == (name != "glu") else rest
            second = rest if first is every else every
            x = R.gated_join(first[:, None], second[:, None], 1, params.get("layout", "concat"))
            y = activations.apply(name, x, backend=backend, **params)
            R.assert_close(y, R.forward(name, x, **params), dtype, what="every 16-bit value")
            dy = R.cast(np.ones(y.shape), dtype)
            dx = activations.grad(name, x, dy, backend=backend, **params)
            R.assert_close(dx, R.backward(name, x, dy, **params), dtype, what="every 16-bit value, backward")


@pytest.mark.parametrize("name", GATED)
def test_bad_clamp_and_layout_raise_naming_the_argument(name, backend):
    x = np.ones((2, 4))
    out = np.full((2, 2), 7.0)
    for bad, match, error in [
        ({"limit": -1.0}, "limit", ValueError),
        ({"limit": float("nan")}, "limit", ValueError),
        ({"limit": "7"}, "limit", TypeError),
        ({"offset": float("nan")}, "offset", ValueError),
        ({"offset": float("inf")}, "offset", ValueError),
        ({"layout": "even-odd"}, "layout", ValueError),
        ({"layout": None}, "layout", ValueError),
    ]:
        with pytest.raises(error, match=match):
            activations.apply(name, x, out=out, backend=backend, **bad)
        with pytest.raises(error, match=match):
            activations.grad(name, x, np.ones((2, 2)), backend=backend, **bad)
        assert (out == 7.0).all(), f"{name}: out= written before {bad} was refused"
    alpha_ok = name in ("glu", "swiglu")
    if alpha_ok:
        with pytest.raises(ValueError, match="alpha"):
            activations.apply(name, x, alpha=float("nan"), backend=backend)
    else:
        with pytest.raises(TypeError, match="alpha"):
            activations.apply(name, x, alpha=1.0, backend=backend)
    with pytest.raises(ValueError, match="odd"):
        activations.apply(name, np.ones((3, 4)), axis=0, layout="interleaved", backend=backend)
    # limit=0 is a valid clamp: the gate at most 0 and the linear half exactly the offset
    y = activations.apply(name, np.array([[1.0, 2.0, -3.0, 4.0]]), limit=0.0, offset=2.0, backend=backend)
    assert np.isfinite(y).all()


@pytest.mark.parametrize("name", GATED)
def test_clamp_makes_infinite_inputs_finite(name, backend):
    # the point of the clamp: +inf in the gate and +-inf in the linear half give finite results
    x = np.array([[np.inf, 1.0, 1.0, -np.inf], [1.0, np.inf, -np.inf, 1.0]])
    kw = {"limit": 5.0, "offset": 1.0}
    y = activations.apply(name, x, backend=backend, **kw)
    assert np.isfinite(y).all(), f"{name}: {y}"
    dx = activations.grad(name, x, np.ones(y.shape), backend=backend, **kw)
    assert np.isfinite(dx).all(), f"{name}: {dx}"
