"""The Numba CUDA backend against the oracle, on the CUDA simulator (or a real GPU).

tests/conftest.py switches the simulator on when the machine has no GPU.  The
simulator runs every CUDA thread as a Python thread, so arrays stay at a few
hundred elements and the backend caps grids at 2 blocks of 32 threads
(``numba_backend.SIMULATOR_CONFIG``); the grid-stride loops, shared-memory
reductions and the two-launch dbias/dweight sums are all exercised at that
size.  float16/float32/float64 here; bfloat16 needs bit casts the simulator
lacks (a TypeError says so) and is covered by test_numba_gpu.py and the PTX
check.
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

import activations
import reference as R

pytestmark = [pytest.mark.numba_sim, pytest.mark.filterwarnings("ignore::RuntimeWarning")]

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _usable() -> bool:
    if SIM:
        return True
    try:
        from numba import cuda

        return cuda.is_available()
    except Exception:
        return False


if not _usable():
    pytest.skip("no GPU and NUMBA_ENABLE_CUDASIM is not set", allow_module_level=True)

from numba import cuda  # noqa: E402

from activations.backends import numba as NB  # noqa: E402

DTYPES = [d for d in R.DTYPES if not (SIM and d == R.BFLOAT16)]
ELEMENTWISE = activations.names("elementwise")
GATED = activations.names("gated")
ROWWISE = activations.names("rowwise")
REQUIRED = {"threshold": {"threshold": 0.5, "value": -1.0}}


@pytest.fixture(autouse=True, scope="module")
def _fast_simulator_barriers():
    # The simulator's block manager spins on the GIL while threads wait at a
    # barrier; a short switch interval makes each barrier ~10x cheaper.
    before = sys.getswitchinterval()
    if SIM:
        sys.setswitchinterval(2e-4)
    yield
    sys.setswitchinterval(before)


def ids(dts):
    return [d.name for d in dts]


def dev(a):
    a = np.asarray(a)
    return cuda.to_device(a if a.flags.c_contiguous else a.copy())  # keeps 0-d arrays 0-d


def host(a) -> np.ndarray:
    assert getattr(type(a), "__cuda_ndarray__", False), f"expected a device array, got {type(a).__name__}"
    return a.copy_to_host()


def on_device(kw: dict) -> dict:
    return {k: dev(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}


def apply(name, x, **kw):
    return activations.apply(name, dev(x), backend="numba", **on_device(kw))


def grad(name, x, dy, **kw):
    got = activations.grad(name, dev(x), dev(dy), backend="numba", **on_device(kw))
    return tuple(host(g) for g in got) if isinstance(got, tuple) else host(got)


def check(name, x, dtype, what, rng, **kw):
    """Forward and backward of ``name`` against the oracle; returns (y, grads)."""
    y = host(apply(name, x, **kw))
    assert y.dtype == x.dtype and y.shape == R.forward(name, x, **kw).shape, f"{name} {what}: {y.shape} {y.dtype}"
    R.assert_close(y, R.forward(name, x, **kw), dtype, what=f"numba forward, {what}")
    dy = R.random_cotangent(rng, y.shape, dtype)
    got = grad(name, x, dy, **kw)
    exp = R.backward(name, x, dy, **kw)
    exp_dx, exp_dw = exp if name == "prelu" else (exp, None)
    parts = list(got) if isinstance(got, tuple) else [got]
    dx = parts.pop(0)
    assert dx.dtype == x.dtype and dx.shape == x.shape, f"{name} {what}: dx {dx.shape} {dx.dtype}"
    R.assert_close(dx, exp_dx, dtype, what=f"numba backward, {what}")
    if "bias" in kw:
        db = parts.pop(0)
        assert db.shape == (x.shape[-1],) and db.dtype == x.dtype
        R.assert_close(db, R.dbias(exp_dx), dtype, what=f"numba dbias, {what}")
    if name == "prelu":
        dw = parts.pop(0)
        assert np.shape(dw) == exp_dw.shape, f"prelu {what}: dweight shape {np.shape(dw)}, want {exp_dw.shape}"
        R.assert_close(dw, exp_dw, dtype, what=f"numba dweight, {what}")
    return y, got


def test_every_catalogue_entry_has_numba_functions():
    from activations.backends.numba import functions as NF

    for name in ELEMENTWISE + GATED:
        assert callable(getattr(NF, f"{name}_fwd", None)) and callable(getattr(NF, f"{name}_bwd", None)), name
    for ct in (NF.numba.float32, NF.numba.float64):
        fns = NF.functions(ct)
        assert set(fns.fwd) == set(fns.bwd) == set(ELEMENTWISE + GATED)
    assert NB.BACKEND.available()[0]


# ---------------------------------------------------------------- elementwise
@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_edge_and_random(name, dtype, rng):
    kw = REQUIRED.get(name, {})
    x = np.concatenate([R.cast(R.edge_values(name, **kw), dtype), R.random_inputs(rng, 67, name, dtype)])
    check(name, x, dtype, "edge values + random", rng, **kw)


# Inputs whose exact result is nearest a float16 rounding boundary: the float32 result may round
# the wrong way there, and the kernel computes it again in float64 (module doc of _numba_kernels).
# test_exhaustive_16bit.py checks every input on the kernels' own code compiled for the CPU.
NEAR_TIE_NAMES = [n for n in ELEMENTWISE if n not in ("prelu", "rrelu", "hard_sigmoid")]


def _nearest_ties(exact: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k values of ``exact`` (float64) relatively nearest a float16 midpoint."""
    from test_exhaustive_16bit import round_once

    with np.errstate(all="ignore"):
        w = round_once(exact, np.float16)
        other = np.nextafter(w, np.where(exact > w.astype(np.float64), np.inf, -np.inf).astype(np.float16))
        mid = (w.astype(np.float64) + other.astype(np.float64)) / 2
        dist = np.abs(exact - mid) / np.abs(exact)
    dist[~np.isfinite(dist) | (exact == 0) | ~np.isfinite(other.astype(np.float64))] = np.inf
    return np.argsort(dist, kind="stable")[:k]


@pytest.mark.skipif(R.F16 not in DTYPES, reason="float16 not available")
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("name", NEAR_TIE_NAMES)
def test_float16_near_ties_rounded_once(name, direction):
    from test_exhaustive_16bit import PARAMS, all_values, check_correctly_rounded

    kw = PARAMS.get(name, {})
    x = all_values(np.float16)
    with np.errstate(all="ignore"):
        exact = np.asarray(R.forward(name, x, **kw) if direction == "forward" else
                           R.backward(name, x, np.ones_like(x), **kw), np.float64)
    x = x[np.sort(_nearest_ties(exact, 12))]

    def run(x, dy):
        return host(apply(name, x, **kw)) if dy is None else grad(name, x, dy, **kw)

    check_correctly_rounded(name, np.float16, direction, x=x, run=run)


NONDEFAULT = [
    ("relu", dict(negative_slope=0.25, max_value=6.0, threshold=0.5)),
    ("relu", dict(threshold=-2.0, max_value=5.0)),
    ("relu", dict(negative_slope=-0.5)),
    ("leaky_relu", dict(negative_slope=0.0)),
    ("leaky_relu", dict(negative_slope=2.0)),
    ("prelu", dict(weight=0.0)),
    ("rrelu", dict(training=True, seed=7)),
    ("rrelu", dict(training=True, lower=0.0, upper=0.0, seed=3)),
    ("elu", dict(alpha=2.0)),
    ("celu", dict(alpha=-2.0)),
    ("gelu", dict(approximate="tanh")),
    ("hard_sigmoid", dict(slope=0.2, offset=0.5)),
    ("softplus", dict(beta=2.0)),
    ("softplus", dict(beta=0.5, threshold=10.0)),
    ("hard_tanh", dict(min_val=-2.0, max_val=3.0)),
    ("soft_shrink", dict(threshold=0.0)),
    ("hard_shrink", dict(lambd=1.5)),
    ("threshold", dict(threshold=-1.0, value=2.0)),
    ("squareplus", dict(b=0.0)),
    ("snake", dict(frequency=-2.0)),
]


NONDEFAULT_IDS = [f"{n}[{','.join(f'{k}={v}' for k, v in p.items())}]" for n, p in NONDEFAULT]


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("name,params", NONDEFAULT, ids=NONDEFAULT_IDS)
def test_elementwise_nondefault_params(name, params, dtype, rng):
    special = R.cast(R.kinks(name, **params) + [np.inf, -np.inf, np.nan], dtype)
    x = np.concatenate([R.random_inputs(rng, 40, name, dtype), special])
    check(name, x, dtype, f"params {params}", rng, **params)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("name", ["relu", "gelu", "sigmoid", "tanh", "log1mexp", "rrelu", "prelu", "softplus"])
def test_elementwise_fused_bias(name, dtype, rng):
    kw = dict(training=True, seed=11) if name == "rrelu" else {}
    x = R.random_inputs(rng, (5, 3, 7), name, dtype)
    bias = R.cast(rng.normal(0, 1, 7) if name != "log1mexp" else rng.uniform(0, 1, 7), dtype)
    check(name, x, dtype, "fused bias", rng, bias=bias, **kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("kind", ["float", "per-channel", "one-element", "list"])
def test_prelu_weights(kind, dtype, rng):
    x = R.random_inputs(rng, (6, 5), "prelu", dtype)
    weight = {
        "float": -0.375,
        "per-channel": R.cast([0.0, 0.25, -0.5, 1.5, 0.125], dtype),
        "one-element": R.cast([0.75], dtype),
        "list": [0.0, 0.25, -0.5, 1.5, 0.125],
    }[kind]
    check("prelu", x, dtype, f"weight {kind}", rng, weight=weight)
    bias = R.cast(rng.normal(0, 1, 5), dtype)
    check("prelu", x, dtype, f"weight {kind} with bias", rng, weight=weight, bias=bias)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_prelu_grads_when_out_overwrites_x_or_dy(dtype, rng):
    x = R.random_inputs(rng, (4, 6), "prelu", dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    weight = R.cast(rng.uniform(-1, 1, 6), dtype)
    exp_dx, exp_dw = R.backward("prelu", x, dy, weight=weight)
    for which in ("x", "dy"):
        xd, dyd = dev(x), dev(dy)
        out = xd if which == "x" else dyd
        dx, dw = activations.grad("prelu", xd, dyd, weight=dev(weight), out=out, backend="numba")
        assert dx is out
        R.assert_close(host(dx), exp_dx, dtype, what=f"dx written over {which}")
        R.assert_close(host(dw), exp_dw, dtype, what=f"dweight with dx written over {which}")


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_rrelu_training_slopes_follow_the_hash(dtype):
    lower, upper, seed = 0.125, 0.5, 2**64 - 5
    x = -np.ones((3, 37), dtype)
    y = host(apply("rrelu", x, training=True, lower=lower, upper=upper, seed=seed)).astype(np.float64)
    np.testing.assert_allclose(-y, R.rrelu_slopes(x.shape, lower, upper, seed), rtol=R.tolerance(dtype)[0] * 4)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_zero_d_empty_and_strided(dtype, rng):
    y0 = apply("gelu", R.cast(-0.75, dtype))
    assert y0.shape == () and host(y0).dtype == dtype
    R.assert_close(host(y0), R.forward("gelu", R.cast(-0.75, dtype)), dtype, what="0-d")
    dx0, dw0 = grad("prelu", R.cast(-2.0, dtype), R.cast(1.5, dtype), weight=0.5)
    assert dx0.shape == () and dw0.shape == ()
    for shape in [(0,), (3, 0, 2)]:
        x = np.zeros(shape, dtype)
        assert host(apply("silu", x)).shape == shape
        dx, db = grad("silu", x, x, bias=np.zeros(shape[-1], dtype))
        assert dx.shape == shape and db.shape == (shape[-1],)
    _, dbias = grad("relu", np.zeros((0, 3), dtype), np.zeros((0, 3), dtype), bias=np.ones(3, dtype))
    np.testing.assert_array_equal(dbias, np.zeros(3, dtype))
    # strided device views: gathered into a contiguous copy on the device
    base = R.random_inputs(rng, (7, 12), "mish", dtype)
    views = {"column slice": np.s_[:, 1::3], "reversed": np.s_[::-1, ::-2]}
    for label, index in views.items():
        view = dev(base)[index]
        got = activations.apply("mish", view, backend="numba")
        R.assert_close(host(got), R.forward("mish", base[index]), dtype, what=f"strided view, {label}")


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_out_in_place_and_strided_out(dtype, rng):
    x = R.random_inputs(rng, (5, 9), "softsign", dtype)
    exp = R.forward("softsign", x)
    out = cuda.device_array(x.shape, dtype)
    assert activations.apply("softsign", dev(x), out=out, backend="numba") is out
    R.assert_close(host(out), exp, dtype, what="out=")
    dx_ = dev(x)
    activations.apply("softsign", dx_, out=dx_, backend="numba")
    R.assert_close(host(dx_), exp, dtype, what="in place")
    big = cuda.device_array((5, 18), dtype)
    view = big[:, ::2]  # a strided out: computed contiguously, then scattered
    activations.apply("softsign", dev(x), out=view, backend="numba")
    R.assert_close(host(big)[:, ::2], exp, dtype, what="strided out=")
    dy = R.random_cotangent(rng, x.shape, dtype)
    dyd = dev(dy)
    activations.grad("softsign", dev(x), dyd, out=dyd, backend="numba")
    R.assert_close(host(dyd), R.backward("softsign", x, dy), dtype, what="grad out=dy")


# -------------------------------------------------------------------- gated
GATED_CASES = [(n, {}) for n in GATED] + [("geglu", dict(approximate="tanh"))]


#: the elementwise activations whose edge values matter for a and for b
EDGES_OF = {
    "glu": ("linear", "sigmoid"),
    "swiglu": ("silu", "linear"),
    "geglu": ("gelu", "linear"),
    "reglu": ("relu", "linear"),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("name,params", GATED_CASES, ids=[n + ("-tanh" if p else "") for n, p in GATED_CASES])
def test_gated_every_axis_and_edges(name, params, dtype, rng):
    x = R.random_inputs(rng, (4, 6, 10), name, dtype)
    for axis in (0, 1, -1):
        check(name, x, dtype, f"axis {axis}", rng, axis=axis, **params)
    # edges of the gate in a (b random) and of the other factor in b; finite and
    # moderate, so that products cannot overflow in a different order
    for side, act in enumerate(EDGES_OF[name]):
        ev = R.edge_values(act, **(params if act == "gelu" else {}))
        ev = ev[np.isfinite(ev) & (np.abs(ev) <= 1e4)]
        other = rng.normal(0, 2, ev.size)
        halves = (ev, other) if side == 0 else (other, ev)
        check(name, R.cast(np.concatenate(halves)[None, :], dtype), dtype, f"edge values of {act}", rng, **params)


#: clamped, offset, sloped and interleaved units (activations.GPT_OSS_SWIGLU among them)
GATED_CLAMPED = [
    ("swiglu", dict(activations.GPT_OSS_SWIGLU)),
    ("glu", dict(limit=2.0, offset=0.5, alpha=-1.5)),
    ("swiglu", dict(limit=3.0, alpha=0.25)),
    ("geglu", dict(limit=3.0, offset=1.0, approximate="tanh", layout="interleaved")),
    ("reglu", dict(limit=1.5, offset=-1.0, layout="interleaved")),
]


def clamped_inputs(rng, shape, limit, dtype):
    """Values spread over +-2 limit, with +-limit exactly, one ulp either side and +-inf first."""
    x = R.cast(rng.uniform(-2 * limit, 2 * limit, shape), dtype)
    lim = np.asarray(limit, dtype)
    hi, lo = np.asarray(np.inf, dtype), np.asarray(-np.inf, dtype)
    edge = [lim, -lim, np.nextafter(lim, hi), np.nextafter(lim, lo), np.nextafter(-lim, hi), np.nextafter(-lim, lo)]
    x.reshape(-1)[:8] = R.cast([float(v) for v in edge] + [np.inf, -np.inf], dtype)
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("name,params", GATED_CLAMPED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(GATED_CLAMPED)])
def test_gated_clamped(name, params, dtype, rng):
    x = clamped_inputs(rng, (4, 6, 10), params["limit"], dtype)
    for axis in (0, 1, -1):
        check(name, x, dtype, f"clamped, axis {axis}", rng, axis=axis, **params)
    check(name, x, dtype, "clamped, bias", rng, axis=1, bias=R.cast(rng.normal(0, 1, 10), dtype), **params)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("name", GATED)
def test_gated_bias_nan_and_empty(name, dtype, rng):
    x = R.random_inputs(rng, (4, 5, 8), name, dtype)
    check(name, x, dtype, "bias, axis -1", rng, axis=-1, bias=R.cast(rng.normal(0, 1, 8), dtype))
    check(name, x, dtype, "bias, axis 0", rng, axis=0, bias=R.cast(rng.normal(0, 1, 8), dtype))
    xn = R.cast([[np.nan, 1.0, 0.5, 2.0], [1.0, -1.0, np.nan, 2.0], [-1.0, 1.0, 0.5, np.inf]], dtype)
    y = host(apply(name, xn)).astype(np.float64)
    dx = grad(name, xn, R.cast(np.ones((3, 2)), dtype)).astype(np.float64)
    assert (np.isnan(y[:, 0]) == [True, True, False]).all(), f"{name}: y = {y}"
    assert (np.isnan(dx[:2, [0, 2]])).all(), f"{name}: dx = {dx}"
    empty = np.zeros((0, 4), dtype)
    assert host(apply(name, empty)).shape == (0, 2)
    assert grad(name, empty, np.zeros((0, 2), dtype)).shape == (0, 4)


# ------------------------------------------------------------------ rowwise
@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("name", ROWWISE)
def test_rowwise_every_axis(name, dtype, rng):
    # the simulator pays per row and per barrier: few rows, each path once
    x = R.random_inputs(rng, (4, 3, 6), name, dtype)
    for axis in (-1, 1, 0):
        check(name, x, dtype, f"(4, 3, 6) axis {axis}", rng, axis=axis)
    check(name, R.random_inputs(rng, (2, 70), name, dtype), dtype, "rows of 70 > 32 threads", rng)
    check(name, R.random_inputs(rng, 1, name, dtype), dtype, "one element", rng)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("name", ROWWISE)
def test_rowwise_masks(name, dtype, rng):
    x = R.random_inputs(rng, (4, 9), name, dtype)
    where = rng.random((4, 9)) < 0.6
    where[1] = False  # a fully masked row: outputs and gradients 0
    where[2] = [True] + [False] * 8
    y, dx = check(name, x, dtype, "mask", rng, where=where)
    assert not y[1].any() and not dx[1].any()
    check(name, x, dtype, "broadcast mask (9,)", rng, where=rng.random(9) < 0.5)
    check(name, x, dtype, "broadcast mask (4, 1)", rng, axis=0, where=np.array([[True], [False], [True], [True]]))
    check(name, x, dtype, "0-d mask", rng, where=np.array(True))


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("name", ROWWISE)
def test_rowwise_special_rows_and_bias(name, dtype, rng):
    inf, nan = np.inf, np.nan
    rows = [
        [1.0, 2.0, nan, 0.5],
        [1.0, inf, 0.0, -1.0],
        [-inf, -inf, -inf, -inf],
        [1.0, -inf, 2.0, -inf],
        [3.0, 3.0, 3.0, 3.0],
        [60000.0, -60000.0, 0.0, 59990.0],
        [0.25, 0.25, 1.25, -0.75],
    ]
    check(name, R.cast(rows, dtype), dtype, "special rows", rng)
    where = np.ones((7, 4), bool)
    where[1, 1] = False  # the +inf masked out: a normal row again
    check(name, R.cast(rows, dtype), dtype, "special rows, inf masked", rng, where=where)
    x = R.random_inputs(rng, (4, 12), name, dtype)
    check(name, x, dtype, "bias", rng, bias=R.cast(rng.normal(0, 1, 12), dtype))
    check(name, x, dtype, "bias, axis 0", rng, axis=0, bias=R.cast(rng.normal(0, 1, 12), dtype))
    assert host(apply(name, np.zeros((3, 0), dtype))).shape == (3, 0)


def test_sparsemax_long_support_converges_exactly():
    # a geometric row needs several threshold steps; compare with the sort-based oracle
    x = np.concatenate([1.0 - 0.5 ** np.arange(1, 40), np.linspace(-3, 0.9, 33)]).astype(np.float64)
    rng = np.random.default_rng(5)
    check("sparsemax", x, R.F64, "geometric row", rng)


# ----------------------------------------------------------- arrays and API
def test_host_numpy_arrays_are_refused():
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="NumPy array in host memory"):
        activations.apply("relu", x, backend="numba")
    with pytest.raises(ValueError, match="bias is a NumPy array"):
        activations.apply("relu", dev(np.ones((2, 4), np.float32)), bias=x, backend="numba")


@pytest.mark.skipif(not SIM or R.BFLOAT16 is None, reason="the simulator refuses bfloat16")
def test_bfloat16_is_a_clear_type_error_on_the_simulator():
    x = cuda.to_device(np.ones(4, np.float16))
    x_bf16 = x.view(np.uint16).view(R.BFLOAT16) if hasattr(x, "view") else x
    with pytest.raises(TypeError, match="bfloat16 is not supported by the Numba CUDA simulator"):
        activations.apply("relu", x_bf16, backend="numba")


def test_scalars_and_lists_are_the_documented_copies():
    # NumPy scalars keep their dtype, Python values are float64 (as on the NumPy backend)
    y16 = activations.apply("relu6", np.float16(7.5), backend="numba")
    assert y16.dtype == np.float16 and y16.shape == () and float(host(y16)) == 6.0
    y64 = activations.apply("relu6", [-1.0, 2.5], backend="numba")
    assert y64.dtype == np.float64
    np.testing.assert_array_equal(host(y64), [0.0, 2.5])


def test_device_arrays_select_the_numba_backend_and_stay_on_the_device():
    x = dev(np.linspace(-2, 2, 9).astype(np.float32))
    y = activations.apply("relu", x)  # automatic selection: x is a Numba device array
    assert getattr(type(y), "__cuda_ndarray__", False)
    np.testing.assert_array_equal(host(y), np.maximum(np.linspace(-2, 2, 9).astype(np.float32), 0))


def test_casts_happen_on_the_device(rng):
    x = R.random_inputs(rng, (3, 6), "gelu", R.F32)
    bias64 = rng.normal(0, 1, 6)  # float64 device array, cast to float32 by a kernel
    y = host(apply("gelu", x, bias=bias64))
    R.assert_close(y, R.forward("gelu", x, bias=bias64.astype(np.float32)), R.F32, what="float64 bias")
    sources = [np.array([0.0, -0.0, 1.5, np.nan, -2.0], dt) for dt in (np.float16, np.float64)]
    sources += [np.array([0, 3, 0, 250], dt) for dt in (np.uint8, np.int64)] + [np.array([True, False])]
    for values in sources:  # asarray(dtype=bool): != 0, NaN is true (as NumPy)
        got = host(NB.BACKEND.asarray(dev(values), "values", dtype=np.bool_))
        np.testing.assert_array_equal(got, values.astype(bool), err_msg=str(values.dtype))
    with pytest.raises(ValueError, match="boolean mask"):  # the interface wants a bool mask
        apply("softmax", x, where=(rng.random((3, 6)) < 0.5).astype(np.uint8))


def test_launch_config_and_stream_overrides(rng):
    x = R.random_inputs(rng, 300, "silu", R.F32)
    with NB.launch_config(threads=64, max_blocks=1):
        y1 = host(apply("silu", x))
    stream = cuda.stream()
    with NB.use_stream(stream):
        y2 = apply("silu", x)
    stream.synchronize()
    R.assert_close(y1, R.forward("silu", x), R.F32, what="one block of 64")
    np.testing.assert_array_equal(host(y2), y1)
    x2 = R.random_inputs(rng, (2, 150), "softmax", R.F32)
    with NB.launch_config(row_threads=64, reduce_threads=32):
        check("softmax", x2, R.F32, "64 threads per row", rng, bias=R.cast(rng.normal(size=150), R.F32))
    for bad in (dict(row_threads=48), dict(reduce_threads=512), dict(threads=0), dict(max_blocks=0)):
        with pytest.raises(ValueError, match="LaunchConfig"):
            with NB.launch_config(**bad):
                pass


def test_kernels_compile_once_and_concurrently():
    from activations.backends.numba import kernels as K

    spec = K.Spec("elementwise", "hard_silu", "f32", "fwd")
    got = []
    threads = [threading.Thread(target=lambda: got.append(K.get(spec))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(g is got[0] for g in got)
    assert K.get(spec) is got[0]
    assert str(spec) in K.compile_times()


def test_simulator_threads_of_a_block_share_one_shared_array():
    """tests/conftest.py locks the simulator's creation of a block's shared arrays: without it, 16
    threads asking at once got different arrays in about 4% of trials (a block's reductions then
    mix them: rare wrong row sums)."""
    from numba.cuda.simulator import kernelapi

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads as much as possible
    try:
        for _ in range(300):
            shared = kernelapi.FakeCUDAShared(0)
            start = threading.Barrier(16)
            got = [None] * 16

            def ask(k):
                start.wait()
                got[k] = shared.array(8, np.float64)

            threads = [threading.Thread(target=ask, args=(k,)) for k in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len({id(a) for a in got}) == 1
    finally:
        sys.setswitchinterval(switch)
