"""Hypothesis properties over the whole catalogue (bounded examples: fast).

Monotonicity, the records' output ranges, rows summing to 1, linearity of the
backward in dy, out= giving the same bits, 16-bit results equal to the float64
result rounded, and consistency between related activations.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import activations
import reference as R

ELEMENTWISE = activations.names("elementwise")
ROWWISE = activations.names("rowwise")
GATED = activations.names("gated")
ALL = activations.names()
REQUIRED = {"threshold": {"threshold": 0.5, "value": -1.0}}

#: non-decreasing everywhere with their default parameters
MONOTONE = [
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "sigmoid", "hard_sigmoid",
    "log_sigmoid", "softplus", "softsign", "tanh", "hard_tanh", "tanh_shrink", "soft_shrink", "hard_shrink",
    "threshold", "sparse_plus", "sparse_sigmoid", "squareplus", "exponential", "linear", "log1mexp", "snake",
]
NOT_MONOTONE = {"gelu", "silu", "hard_silu", "mish", "lisht"}
FLOATS = (R.F16, R.BFLOAT16, R.F32, R.F64)


def test_monotone_list_covers_the_catalogue():
    assert set(MONOTONE) | NOT_MONOTONE == set(ELEMENTWISE)


def values(lo=-60.0, hi=60.0, max_side=40):
    return hnp.arrays(np.float64, st.integers(1, max_side), elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False))


@given(name=st.sampled_from(MONOTONE), dtype=st.sampled_from(FLOATS), x=values())
@settings(max_examples=120)
def test_monotone(name, dtype, x):
    if name == "log1mexp":
        x = np.abs(x)
    xs = np.sort(R.cast(x, dtype).astype(np.float64))
    y = activations.apply(name, R.cast(xs, dtype), **REQUIRED.get(name, {})).astype(np.float64)
    rtol, atol = R.tolerance(dtype)
    with np.errstate(invalid="ignore"):  # inf - inf where f overflows
        drop = np.diff(y) < -(rtol * np.abs(y[1:]) + atol)
    assert not drop.any(), f"{name} ({dtype.name}) decreases: x={xs[1:][drop][:4]}, y={y[1:][drop][:4]} after {y[:-1][drop][:4]}"


def _range(rec, params):
    m = re.match(r"\s*([\[(])\s*([^,]+?)\s*,\s*([^\])]+?)\s*([\])])", rec.output_range)
    assert m, f"{rec.name}: unparsable output_range {rec.output_range!r}"
    ns = {"inf": math.inf, **{k: v for k, v in params.items() if isinstance(v, float)}}
    if rec.name == "selu":
        ns.update(alpha=R.SELU_ALPHA, scale=R.SELU_SCALE)
    lo = eval(m.group(2), {"__builtins__": {}}, ns)  # text of our own catalogue
    hi = eval(m.group(3), {"__builtins__": {}}, ns)
    return float(lo), float(hi)


@pytest.mark.parametrize("name", ALL)
def test_output_range_parses(name):
    rec = activations.REGISTRY.get(name)
    lo, hi = _range(rec, dict(rec.bind(REQUIRED.get(name, {})).values))
    assert lo <= hi


@given(name=st.sampled_from([n for n in ALL if activations.REGISTRY.get(n).kind != "gated"]),
       dtype=st.sampled_from(FLOATS), x=values(-1e4, 1e4))
@settings(max_examples=150)
def test_output_range(name, dtype, x):
    rec = activations.REGISTRY.get(name)
    kw = REQUIRED.get(name, {})
    lo, hi = _range(rec, dict(rec.bind(kw).values))
    if name == "log1mexp":
        x = np.abs(x)
    y = activations.apply(name, R.cast(x, dtype), **kw).astype(np.float64)
    rtol, atol = R.tolerance(dtype)
    ok = (y >= lo - rtol * abs(lo) - atol) & (y <= hi + rtol * abs(hi) + atol)
    assert ok.all(), f"{name} ({dtype.name}) outside {rec.output_range}: {y[~ok][:5]} at x={x[~ok][:5]}"


@given(name=st.sampled_from(["softmax", "softmin", "sparsemax"]), dtype=st.sampled_from(FLOATS),
       x=hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 40)), elements=st.floats(-80, 80)),
       axis=st.sampled_from([0, 1, -1]))
@settings(max_examples=120)
def test_rows_sum_to_one(name, dtype, x, axis):
    xd = R.cast(x, dtype)
    y = activations.apply(name, xd, axis=axis).astype(np.float64)
    rtol = R.tolerance(dtype)[0]
    n = x.shape[axis]
    atol = 8 * rtol * math.sqrt(n) + 1e-12
    if name == "sparsemax":  # z - tau cancels: eps * |z| per entry in compute precision
        atol += 4 * float(np.finfo(R.compute_dtype(dtype)).eps) * n * float(np.abs(xd.astype(np.float64)).max())
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=0, atol=atol, err_msg=f"{name} ({dtype.name})")
    assert (y >= 0).all() and (y <= 1 + rtol).all()


def _split(x, name):
    # gated inputs need an even last axis
    return np.concatenate([x, x[::-1]]) if activations.REGISTRY.get(name).kind == "gated" else x


@given(name=st.sampled_from(ALL), x=values(-30, 30), a=st.floats(-4, 4), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=150)
def test_grad_is_linear_in_dy(name, x, a, seed):
    kw = REQUIRED.get(name, {})
    if name == "log1mexp":
        x = np.abs(x) + 0.01
    x = _split(x, name)
    rng = np.random.default_rng(seed)
    shape = activations.apply(name, x, **kw).shape
    d1, d2 = rng.normal(size=shape), rng.normal(size=shape)

    def dx(dy):
        g = activations.grad(name, x, dy, **kw)
        return g[0] if name == "prelu" else g

    lhs = dx(a * d1 + d2)
    g1, g2 = dx(d1), dx(d2)
    rhs = a * g1 + g2
    tol = 1e-12 * (np.abs(a * g1) + np.abs(g2)) + 1e-300
    assert (np.abs(lhs - rhs) <= tol).all(), f"{name}: grad(a*dy1 + dy2) != a*grad(dy1) + grad(dy2) at x={x}"


@given(name=st.sampled_from(ALL), dtype=st.sampled_from(FLOATS), x=values(-30, 30))
@settings(max_examples=150)
def test_out_gives_the_same_bits(name, dtype, x):
    kw = REQUIRED.get(name, {})
    xd = R.cast(_split(x, name), dtype)
    y = activations.apply(name, xd, **kw)
    out = np.empty_like(y)
    assert activations.apply(name, xd, out=out, **kw) is out
    assert out.tobytes() == y.tobytes(), f"{name} ({dtype.name}): out= result differs from the plain call"
    dy = np.ones_like(y)
    g = activations.grad(name, xd, dy, **kw)
    g = g[0] if name == "prelu" else g
    dxo = np.empty_like(xd)
    activations.grad(name, xd, dy, out=dxo, **kw)
    assert dxo.tobytes() == g.tobytes(), f"{name} ({dtype.name}): grad out= differs from the plain call"


@given(name=st.sampled_from(ALL), dtype=st.sampled_from([R.F16, R.BFLOAT16]), x=values(-20, 20))
@settings(max_examples=200)
def test_16bit_equals_float64_rounded(name, dtype, x):
    kw = REQUIRED.get(name, {})
    if name == "log1mexp":
        x = np.abs(x)
    xs = R.cast(_split(x, name), dtype)
    y16 = activations.apply(name, xs, **kw)
    y64 = activations.apply(name, xs.astype(np.float64), **kw)
    R.assert_close(y16, R.with_allowances(y64, R.forward(name, xs, **kw)), dtype, what="vs the float64 result")


# ------------------------------------------------- relations between records
@given(x=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 20)).map(lambda s: (s[0], 2 * s[1])),
                    elements=st.floats(-30, 30)))
@settings(max_examples=60)
def test_gated_equal_their_elementwise_parts(x):
    a, b = np.split(x, 2, axis=-1)
    for name, gate in (("swiglu", lambda: activations.apply("silu", a) * b),
                       ("geglu", lambda: activations.apply("gelu", a) * b),
                       ("reglu", lambda: activations.apply("relu", a) * b),
                       ("glu", lambda: a * activations.apply("sigmoid", b))):
        np.testing.assert_allclose(activations.apply(name, x), gate(), rtol=1e-14, atol=1e-300, err_msg=name)


@given(x=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 30)), elements=st.floats(-50, 50)),
       c=st.floats(-50, 50))
@settings(max_examples=80)
def test_softmax_family_relations(x, c):
    s = activations.apply("softmax", x)
    np.testing.assert_allclose(activations.apply("softmax", x + c), s, rtol=1e-12, atol=1e-300, err_msg="shift invariance")
    np.testing.assert_allclose(activations.apply("softmin", x), activations.apply("softmax", -x), rtol=1e-13, atol=1e-300)
    ls = activations.apply("log_softmax", x)
    np.testing.assert_allclose(np.exp(ls), s, rtol=1e-12, atol=1e-300, err_msg="exp(log_softmax) = softmax")
