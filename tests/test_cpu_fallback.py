"""The CPU backend's plain NumPy fallback (activations/backends/cpu/fallback.py).

What the kind tests (test_elementwise, test_gated, test_rowwise on ``numpy-fallback``) do not
pin: results independent of the array's size and layout, one rounding from float64 for every
dtype, the defects of the old ufunc path (silu/mish tails, the tanh-GELU tail, squareplus and
snake' overflowing, tanh_shrink near 0), rrelu's hash against a transcription of
docs/semantics.md, signed zeros, masks, bias and prelu's weight gradient, 0-d and empty
arrays, and the interface contract (new arrays, ``out`` never written, no import of the old
engine).
"""
from __future__ import annotations

import ast
import math
from pathlib import Path

import mpmath
import numpy as np
import pytest

import activations
import reference as R
from activations.backends import Call
from activations.backends.cpu import fallback
from activations.catalogue import REGISTRY
from activations.registry import Kind

ROOT = Path(__file__).resolve().parent.parent
ALL = activations.names()
ELEMENTWISE = activations.names("elementwise")
ROWWISE = activations.names("rowwise")
GATED = activations.names("gated")
DTYPE_IDS = [d.name for d in R.DTYPES]
REQUIRED = {"threshold": {"threshold": 0.5, "value": -1.0}}
#: float parameters not representable in float32, given as their float32 value so that a
#: float64 call computes with exactly what a 16/32-bit call receives
F32_PARAMS = {
    "hard_sigmoid": {"slope": float(np.float32(1.0 / 6.0))},
    "rrelu": {"upper": float(np.float32(1.0 / 3.0))},
    "leaky_relu": {"negative_slope": float(np.float32(0.2))},
}


@pytest.fixture(autouse=True)
def _fallback(monkeypatch):
    monkeypatch.setenv("ACTIVATIONS_NATIVE", "0")


def kw(name: str) -> dict:
    return dict(REQUIRED.get(name, {}))


def apply(name, x, **k):
    return activations.apply(name, x, backend="numpy", **k)


def grad(name, x, dy, **k):
    return activations.grad(name, x, dy, backend="numpy", **k)


def dx_of(g):
    return g[0] if isinstance(g, tuple) else g


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def inputs(rng, shape, dtype, name=""):
    x = rng.standard_normal(shape) * 4.0
    if name == "log1mexp":
        x = np.abs(x)
    return R.cast(x, dtype)


# ---------------------------------------------------------------- the contract
def test_tables_cover_the_catalogue_by_kind():
    assert set(fallback.ELEMENTWISE) == set(ELEMENTWISE)
    assert set(fallback.ROWWISE) == set(ROWWISE)
    assert set(fallback.GATED) == set(GATED)


def _call(name, x, dy=None, **params):
    rec = REGISTRY.get(name)
    bound = rec.bind({**kw(name), **params})
    axis = None if rec.kind is Kind.ELEMENTWISE else x.ndim - 1
    shape = x.shape if rec.kind is not Kind.GATED else x.shape[:-1] + (x.shape[-1] // 2,)
    bias = np.linspace(-0.5, 0.5, x.shape[-1]).astype(x.dtype)
    weight = np.full(x.shape[-1], 0.25, x.dtype) if name == "prelu" else None
    out = np.full(x.shape if dy is not None else shape, 7.0, x.dtype)
    return Call(rec, bound, x, shape, axis, out, bias, weight, None, dy), out


@pytest.mark.parametrize("name", ALL)
def test_returns_new_arrays_and_never_writes_out(name, rng):
    x = inputs(rng, (3, 8), np.float32, name)
    x0 = x.copy()
    call, out = _call(name, x)
    y = fallback.forward(call)
    assert isinstance(y, np.ndarray) and y.shape == call.out_shape and y.dtype == x.dtype
    assert not np.shares_memory(y, out) and not np.shares_memory(y, x)
    assert (out == 7.0).all() and same_bits(x, x0)
    dy = np.ones(call.out_shape, x.dtype)
    call, out = _call(name, x, dy)
    g = fallback.backward(call)
    assert g.dx.shape == x.shape and g.dx.dtype == x.dtype and not np.shares_memory(g.dx, out)
    assert g.dbias.shape == (8,) and g.dbias.dtype == x.dtype
    if name == "prelu":
        assert g.dweight.shape == (8,) and g.dweight.dtype == x.dtype
    else:
        assert g.dweight is None
    assert (out == 7.0).all() and same_bits(x, x0)


# ----------------------------------------------------- size and layout independence
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_independent_of_size_and_layout(name, dtype, rng):
    x = inputs(rng, (24, 37), dtype, name)
    dy = R.random_cotangent(rng, x.shape, dtype)
    k = kw(name) | ({"training": True, "seed": 5} if name == "rrelu" else {})
    y, dx = apply(name, x, **k), dx_of(grad(name, x, dy, **k))
    # the same values in Fortran order, and as a strided view of a larger array
    yf = apply(name, np.asfortranarray(x), **k)
    big = np.zeros((48, 37), dtype)
    big[::2] = x
    ys = apply(name, big[::2], **k)
    dxs = dx_of(grad(name, big[::2], np.asfortranarray(dy), **k))
    assert same_bits(yf, y) and same_bits(ys, y) and same_bits(dxs, dx)
    if name != "rrelu":  # rrelu's training slopes depend on the flat index, not only the value
        for i, j in [(0, 0), (5, 17), (23, 36)]:
            assert same_bits(apply(name, x[i, j], **k), y[i, j])  # 0-d
            assert same_bits(dx_of(grad(name, x[i, j], dy[i, j], **k)), dx[i, j])
            assert same_bits(apply(name, x[i], **k), y[i])  # one row


@pytest.mark.parametrize("name", ROWWISE + GATED)
def test_rows_independent_of_axis_layout_and_row_count(name, rng):
    x = inputs(rng, (9, 40), np.float64)
    out_shape = apply(name, x).shape
    dy = R.random_cotangent(rng, out_shape, np.float64)
    y, dx = apply(name, x), grad(name, x, dy)
    # along axis 0 of the transpose (a strided axis), and one row at a time
    assert same_bits(apply(name, x.T, axis=0).T.copy(), y)
    assert same_bits(grad(name, x.T, dy.T, axis=0).T.copy(), dx)
    for i in (0, 4, 8):
        assert same_bits(apply(name, x[i]), y[i])
        assert same_bits(grad(name, x[i], dy[i]), dx[i])


# --------------------------------------------------- one rounding from float64
@pytest.mark.parametrize("dtype", [R.F16, R.BFLOAT16, R.F32], ids=["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("name", ALL)
def test_every_dtype_is_the_float64_result_rounded_once(name, dtype, rng):
    """x in a narrow dtype gives exactly the float64 computation on the same values (with the
    parameters the kernels receive, rounded to float32) rounded once to that dtype."""
    x = inputs(rng, (4, 30), dtype, name)
    k = kw(name) | F32_PARAMS.get(name, {})
    y = apply(name, x, **k)
    dy = R.random_cotangent(rng, y.shape, dtype)
    dx = dx_of(grad(name, x, dy, **k))
    assert y.dtype == dtype and dx.dtype == dtype
    y64 = apply(name, x.astype(np.float64), **k)
    dx64 = dx_of(grad(name, x.astype(np.float64), dy.astype(np.float64), **k))
    with np.errstate(over="ignore"):  # exp(x) beyond float16's range: inf, as intended
        assert same_bits(y, y64.astype(dtype)) and same_bits(dx, dx64.astype(dtype))


@pytest.mark.parametrize("dtype", R.DTYPES, ids=DTYPE_IDS)
def test_bias_is_added_in_the_compute_precision(dtype, rng):
    x = inputs(rng, (5, 6), dtype)
    b = R.cast(rng.standard_normal(6), dtype)
    cdt = R.compute_dtype(dtype)
    z = (x.astype(cdt) + b.astype(cdt)).astype(np.float64)
    for name in ("exponential", "gelu", "softmax", "swiglu"):
        assert same_bits(apply(name, x, bias=b), apply(name, z).astype(dtype)), name


# ------------------------------------------------------ defects of the old path
def _mp(fn, xs, dps=50):
    with mpmath.workdps(dps):
        return np.array([float(fn(mpmath.mpf(float(v)))) for v in np.asarray(xs, np.float64).reshape(-1)])


def _sig(x):
    return 1 / (1 + mpmath.exp(-x))


MP = {
    "silu": lambda x: x * _sig(x),
    "silu'": lambda x: _sig(x) * (1 + x * (1 - _sig(x))),
    "mish'": lambda x: (lambda sp: mpmath.tanh(sp) + x * _sig(x) / mpmath.cosh(sp) ** 2)(mpmath.log1p(mpmath.exp(x))),
    "gelu": lambda x: x * mpmath.erfc(-x / mpmath.sqrt(2)) / 2,
    "gelu'": lambda x: mpmath.erfc(-x / mpmath.sqrt(2)) / 2 + x * mpmath.exp(-x * x / 2) / mpmath.sqrt(2 * mpmath.pi),
    "gelu_tanh": lambda x: x * _sig(2 * mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x**3)),
    "tanh_shrink": lambda x: x - mpmath.tanh(x),
}


@pytest.mark.parametrize("dtype,lo,hi,rtol", [(np.float32, -103.9, -88.8, 2e-6), (np.float64, -714.0, -709.9, 1e-12)],
                         ids=["float32", "float64"])
def test_silu_swiglu_mish_tails_do_not_flush_to_zero(dtype, lo, hi, rtol):
    """Where exp(-x) overflows (float32: below -88.7; float64: below -709.8) the results keep
    their values (float32's below about -92 are subnormal: compared to the subnormal step)."""
    x = np.linspace(lo, hi, 23).astype(dtype)
    ones = np.ones_like(x)
    got = {
        "silu": apply("silu", x),
        "silu'": grad("silu", x, ones),
        "mish'": grad("mish", x, ones),
        "swiglu": apply("swiglu", np.stack([x, ones], axis=-1))[:, 0],
        "swiglu'": grad("swiglu", np.stack([x, ones], axis=-1), ones[:, None])[:, 0],
    }
    for key, value in got.items():
        exact = _mp(MP[key.replace("swiglu", "silu")], x)
        assert np.all(value != 0), key
        atol = float(np.finfo(dtype).smallest_subnormal)
        np.testing.assert_allclose(value.astype(np.float64), exact, rtol=rtol, atol=atol, err_msg=key)


@pytest.mark.parametrize("dtype,lo,rtol", [(np.float32, -9.0, 2e-6), (np.float64, -20.0, 1e-12)], ids=["float32", "float64"])
def test_tanh_gelu_negative_tail(dtype, lo, rtol):
    x = np.linspace(lo, -2.0, 41).astype(dtype)
    y = apply("gelu", x, approximate="tanh").astype(np.float64)
    np.testing.assert_allclose(y, _mp(MP["gelu_tanh"], x), rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype,lo,rtol", [(np.float32, -12.5, 2e-6), (np.float64, -37.0, 1e-12)], ids=["float32", "float64"])
def test_exact_gelu_in_both_tails(dtype, lo, rtol):
    x = np.concatenate([np.linspace(lo, -2.0, 40), np.linspace(2.0, 9.0, 15)]).astype(dtype)
    y = apply("gelu", x).astype(np.float64)
    d = grad("gelu", x, np.ones_like(x)).astype(np.float64)
    np.testing.assert_allclose(y, _mp(MP["gelu"], x), rtol=rtol, atol=0)
    np.testing.assert_allclose(d, _mp(MP["gelu'"], x), rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_squareplus_and_snake_grad_do_not_overflow(dtype):
    big = float(np.finfo(dtype).max)
    x = np.array([big / 1.5, big, -big / 1.5, -big], dtype)
    y = apply("squareplus", x)
    assert np.array_equal(y[:2], x[:2]) and np.all(y[2:] >= 0) and np.all(y[2:] < 1e-30), y
    assert grad("squareplus", x, np.ones_like(x)).tolist() == [1.0, 1.0, 0.0, 0.0]
    d = grad("snake", x, np.ones_like(x))
    assert np.all(np.isfinite(d)) and np.all((d >= 0) & (d <= 2)), d
    with mpmath.workdps(400):  # 1 + sin(2x) for huge x needs the exact argument reduction
        exact = [float(1 + mpmath.sin(2 * mpmath.mpf(float(v)))) for v in x]
    np.testing.assert_allclose(d.astype(np.float64), exact, rtol=0, atol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 2e-6), (np.float64, 1e-13)], ids=["float32", "float64"])
def test_tanh_shrink_near_zero(dtype, rtol):
    m = np.geomspace(1e-12, 0.6, 60)
    x = np.concatenate([m, -m, [0.2499, 0.25, 0.2501]]).astype(dtype)
    y = apply("tanh_shrink", x).astype(np.float64)
    np.testing.assert_allclose(y, _mp(MP["tanh_shrink"], x), rtol=rtol, atol=0)


# ------------------------------------------------------------------ rrelu's hash
def _splitmix_transcription(seed: int, i: int) -> float:
    """docs/semantics.md, line by line, in Python integers."""
    m = 2**64
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) % m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % m
    z = z ^ (z >> 31)
    return (z >> 40) * 2.0**-24


@pytest.mark.parametrize("seed", [0, 1, 7, 123456789, 2**63, 2**64 - 1])
@pytest.mark.parametrize("index_dtype", [np.int64, np.uint64, np.int32])
def test_rrelu_uniform_is_the_documented_hash(seed, index_dtype):
    idx = np.array([0, 1, 2, 3, 99, 1000, 65535, 2**31 - 1], index_dtype)
    if index_dtype != np.int32:
        idx = np.concatenate([idx, np.array([2**40, 2**62 + 5], index_dtype)])
    u = fallback.rrelu_uniform(seed, idx)
    assert u.dtype == np.float64 and u.shape == idx.shape
    assert u.tolist() == [_splitmix_transcription(seed, int(i)) for i in idx]
    assert np.all((u >= 0) & (u < 1))
    grid = fallback.rrelu_uniform(seed, np.arange(12).reshape(3, 4))
    assert grid.shape == (3, 4) and grid.reshape(-1).tolist() == [_splitmix_transcription(seed, i) for i in range(12)]
    assert fallback.rrelu_uniform(seed, np.int64(5)) == _splitmix_transcription(seed, 5)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_rrelu_training_slopes_use_the_flat_c_order_index(layout):
    x = -np.arange(1.0, 13.0).reshape(3, 4)
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "strided":
        big = np.zeros((6, 8))
        big[::2, ::2] = x
        x = big[::2, ::2]
    lower, upper, seed = 0.1, 0.6, 11
    y = apply("rrelu", x, training=True, lower=lower, upper=upper, seed=seed)
    slopes = np.array([lower + (upper - lower) * _splitmix_transcription(seed, i) for i in range(12)]).reshape(3, 4)
    np.testing.assert_allclose(y / x, slopes, rtol=1e-15)
    np.testing.assert_allclose(grad("rrelu", x, np.ones_like(x), training=True, lower=lower, upper=upper, seed=seed), slopes, rtol=0)


# --------------------------------------------------------------- exact policies
def test_relu_writes_plus_zero_below_the_threshold():
    cases = [
        (dict(), [-0.0, -3.0, -np.inf]),
        (dict(threshold=7.0), [-5.0, 0.0, 7.0, -np.inf]),
        (dict(negative_slope=0.5, threshold=2.0), [2.0]),
        (dict(max_value=6.0, threshold=-1.0), [-1.0, -4.0]),
        (dict(negative_slope=0.5), [-0.0]),  # 0.5 * (-0.0 - 0.0) is -0.0
        (dict(negative_slope=-0.5, threshold=1.0), [1.0]),  # -0.5 * (1.0 - 1.0) is -0.0
    ]
    for params, xs in cases:
        for dt in R.DTYPES:
            y = apply("relu", np.array(xs, dt), **params)
            assert np.all(y == 0) and not np.any(np.signbit(y)), (params, dt, y)


@pytest.mark.parametrize("dtype", R.DTYPES, ids=DTYPE_IDS)
def test_limits_at_infinity(dtype):
    x = np.array([-np.inf, np.inf], dtype)
    one = np.ones_like(x)
    want = {  # name: (f(-inf), f(inf), f'(-inf), f'(inf))
        "silu": (0, np.inf, 0, 1), "gelu": (0, np.inf, 0, 1), "mish": (0, np.inf, 0, 1),
        "hard_silu": (0, np.inf, 0, 1), "softsign": (-1, 1, 0, 0), "squareplus": (0, np.inf, 0, 1),
        "lisht": (np.inf, np.inf, -1, 1), "log_sigmoid": (-np.inf, 0, 1, 0), "softplus": (0, np.inf, 0, 1),
        "elu": (-1, np.inf, 0, 1), "sigmoid": (0, 1, 0, 0), "tanh": (-1, 1, 0, 0), "log1mexp": (np.nan, 0, np.nan, 0),
    }
    for name, (f0, f1, d0, d1) in want.items():
        for params in ([{}, {"approximate": "tanh"}] if name == "gelu" else [{}]):
            np.testing.assert_array_equal(apply(name, x, **params).astype(np.float64), [f0, f1], err_msg=name)
            np.testing.assert_array_equal(grad(name, x, one, **params).astype(np.float64), [d0, d1], err_msg=name)
    for name in ("leaky_relu", "rrelu", "prelu"):
        p = {"leaky_relu": {"negative_slope": 0.0}, "rrelu": {"lower": 0.0, "upper": 0.0}, "prelu": {"weight": 0.0}}[name]
        assert apply(name, x, **p).astype(np.float64).tolist() == [0.0, np.inf], name
    # snake: the limit x (sin^2 is bounded); snake' = 1 + sin(2fx) has none
    assert apply("snake", x).astype(np.float64).tolist() == [-np.inf, np.inf]
    assert np.isnan(grad("snake", x, one)).all()


@pytest.mark.parametrize("name", ROWWISE)
def test_masks_hide_nan_and_inf_and_poison_only_unmasked_rows(name):
    x = np.array([[1.0, np.nan, 2.0, np.inf],   # NaN and +inf masked: an ordinary row of two
                  [1.0, np.nan, 2.0, 3.0],      # NaN unmasked: NaN row, masked entries 0
                  [-np.inf, 5.0, -np.inf, 0.0],  # only -inf left unmasked: NaN
                  [4.0, 5.0, 6.0, 7.0]])        # fully masked: zeros
    where = np.array([[True, False, True, False], [True, True, False, True], [True, False, True, False], [False] * 4])
    y = apply(name, x, where=where)
    dx = grad(name, x, np.ones_like(x), where=where)
    np.testing.assert_allclose(y[0, [0, 2]], apply(name, np.array([1.0, 2.0])), rtol=1e-15)
    for row in (1, 2):
        assert np.isnan(y[row][where[row]]).all() and np.isnan(dx[row][where[row]]).all()
    assert (y[~where] == 0).all() and (dx[~where] == 0).all()
    assert np.isfinite(dx[0]).all() and (y[3] == 0).all()


def test_log_softmax_row_with_minus_inf():
    assert apply("log_softmax", np.array([1.0, 1000.0, -np.inf])).tolist() == [-999.0, 0.0, -np.inf]


@pytest.mark.parametrize("dtype,big", [(np.float32, 1e6), (np.float64, 1e15), (np.float64, 2.0**51)])
def test_sparsemax_keeps_precision_for_huge_logits(dtype, big):
    # at 2**51 the spacing is 0.5: the sum of two logits (before the shift) would be rounded
    x = np.array([big, big + 0.5, big - 0.25 if big < 2.0**51 else big - 0.5, -big], dtype)
    z = x.astype(np.float64)
    want, _ = R.sparsemax_row(z - z.max())
    np.testing.assert_allclose(apply("sparsemax", x), want, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-7)


@pytest.mark.parametrize("name", GATED)
def test_gated_bias_runs_along_the_last_axis_for_any_axis(name, rng):
    x = inputs(rng, (4, 3, 5), np.float64)
    b = rng.standard_normal(5)
    y = apply(name, x, bias=b, axis=0)
    assert same_bits(y, apply(name, x + b, axis=0))
    dy = R.random_cotangent(rng, y.shape, np.float64)
    dx, db = grad(name, x, dy, bias=b, axis=0)
    assert same_bits(dx, grad(name, x + b, dy, axis=0))
    np.testing.assert_allclose(db, dx.reshape(-1, 5).sum(axis=0), rtol=1e-13)


@pytest.mark.parametrize("name", ROWWISE)
def test_rowwise_dbias_over_all_but_the_last_axis(name, rng):
    x = inputs(rng, (6, 4, 3), np.float64)
    b = rng.standard_normal(3)
    where = rng.random((6, 1, 3)) > 0.3
    dy = R.random_cotangent(rng, x.shape, np.float64)
    dx, db = grad(name, x, dy, bias=b, axis=1, where=where)
    assert same_bits(dx, grad(name, x + b, dy, axis=1, where=where))
    np.testing.assert_allclose(db, dx.reshape(-1, 3).sum(axis=0), rtol=1e-13)


@pytest.mark.parametrize("weight", ["float", "one", "per_channel"])
@pytest.mark.parametrize("dtype", R.DTYPES, ids=DTYPE_IDS)
def test_prelu_dweight(weight, dtype, rng):
    x = inputs(rng, (7, 5), dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    w = {"float": 0.3, "one": np.array([0.3], dtype), "per_channel": R.cast(np.linspace(-1, 1, 5), dtype)}[weight]
    dx, dw = grad("prelu", x, dy, weight=w)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    terms = np.where(x64 > 0, 0.0, dy64 * x64)
    want = {"float": terms.sum(), "one": [terms.sum()], "per_channel": terms.sum(axis=0)}[weight]
    assert dw.dtype == dtype and dw.shape == np.shape(want)
    np.testing.assert_allclose(dw.astype(np.float64), want, rtol=R.tolerance(dtype)[0])
    slope = np.broadcast_to(np.asarray(w if weight != "float" else R.compute_dtype(dtype).type(0.3), np.float64), x.shape)
    np.testing.assert_array_equal(dx.astype(np.float64), R.cast(np.where(x64 > 0, dy64, dy64 * slope), dtype).astype(np.float64))


# ------------------------------------------------------------ 0-d and empty
@pytest.mark.parametrize("dtype", R.DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_zero_d_and_empty_elementwise(name, dtype):
    k = kw(name)
    x = np.asarray(0.75, dtype)
    y = apply(name, x, **k)
    assert isinstance(y, np.ndarray) and y.shape == () and y.dtype == dtype
    assert same_bits(y, apply(name, np.array([0.75], dtype), **k)[0])
    g = grad(name, x, np.asarray(1.0, dtype), **k)
    assert dx_of(g).shape == () and dx_of(g).dtype == dtype
    if name == "prelu":
        assert g[1].shape == ()
        assert grad(name, x, np.asarray(1.0, dtype), weight=np.array([0.5], dtype))[1].shape == (1,)
    for shape in [(0,), (3, 0), (0, 4)]:
        e = np.empty(shape, dtype)
        assert apply(name, e, **k).shape == shape
        b = np.ones(shape[-1], dtype)
        g = grad(name, e, e, bias=b, **k)
        assert g[0].shape == shape and g[0].dtype == dtype
        assert g[1].shape == b.shape and (g[1] == 0).all() and g[1].dtype == dtype


@pytest.mark.parametrize("name", ROWWISE + GATED)
def test_empty_rows_and_axes(name):
    for shape, axis in [((0, 4), -1), ((3, 0), -1), ((0, 4), 0), ((2, 0, 4), 1)]:
        x = np.empty(shape, np.float32)
        y = apply(name, x, axis=axis)
        assert y.dtype == np.float32 and y.size == 0
        dx, db = grad(name, x, np.empty(y.shape, np.float32), axis=axis, bias=np.ones(shape[-1], np.float32))
        assert dx.shape == shape and db.shape == (shape[-1],) and (db == 0).all()
