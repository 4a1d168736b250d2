"""activations.jax.quantize: FP8 output with amax as JAX arrays, under jit and vmap, against
an independent quantizer (clip, then ml_dtypes' cast) of the float64 oracle times the scale."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

import activations  # noqa: E402
import activations.jax as aj  # noqa: E402
import reference as R  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

FORMATS = {"e4m3": jnp.float8_e4m3fn, "e5m2": jnp.float8_e5m2}
SCALES = {"e4m3": 2.5, "e5m2": 300.0}
ELEMENTWISE = activations.names("elementwise")
GATED = activations.names("gated")
REQUIRED = {"threshold": {"threshold": 0.5, "value": -1.0}}
# the dtype sweep: every dtype on activations of every shape of formula (piecewise, exp/log, erf, gated)
SWEEP = ["relu", "leaky_relu", "elu", "gelu", "silu", "softplus", "mish", "tanh", "hard_swish", "swiglu",
         "geglu", "glu"]
INPUT_DTYPES = [np.dtype(np.float32), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16), np.dtype(np.float64)]


def reference_quantize(v, fmt) -> np.ndarray:
    """float64 values -> FP8 codes (saturating, round to nearest even): clip, then ml_dtypes."""
    big = float(ml_dtypes.finfo(fmt).max)
    return np.clip(np.asarray(v, np.float64), -big, big).astype(fmt).view(np.uint8)


def ordinal(codes: np.ndarray) -> np.ndarray:
    c = codes.astype(np.int64)
    return np.where(c & 0x80, -(c & 0x7F), c & 0x7F)


def decode(o: np.ndarray, fmt) -> np.ndarray:
    """FP8 values (float64) of the ordinals o."""
    codes = np.where(o < 0, 0x80 | -o, o).astype(np.uint8)
    return codes.view(fmt).astype(np.float64)


def as_codes(values) -> np.ndarray:
    return np.asarray(values).view(np.uint8)


def _inputs(rng, name, dtype, shape):
    x = R.random_inputs(rng, shape, name, dtype)
    flat = x.reshape(-1)
    flat[:6] = np.array([0.0, -0.0, np.inf, -np.inf, 1e4, -1e4]).astype(dtype)
    return x


def _oracle(name, x, scale, **params):
    """float64 f(x) (and its alternatives at kinks) times the scale as the kernels round it."""
    want = R.forward(name, x, **params)
    s = float(np.asarray(scale, np.float64).astype(R.compute_dtype(x.dtype)))
    values = np.asarray(want, np.float64)
    alt = None if want.alt is None else np.where(want.has_alt, np.asarray(want.alt, np.float64), values)
    return values, alt, s


def assert_codes_match_the_oracle(got, x, name, fmt, scale, **params):
    """Exact where the float64 value is clear of a rounding boundary (a relative 1e-4 away),
    else one FP8 step at most; NaN where the oracle is NaN."""
    values, alt, s = _oracle(name, x, scale, **params)
    v = values * s
    c = as_codes(got)
    assert c.shape == v.shape
    want = reference_quantize(v, fmt)
    nan = np.isnan(v)
    assert np.array_equal(np.isnan(np.asarray(got, np.float32)), nan), f"{name}: NaN positions differ"
    lo = reference_quantize(v - np.abs(v) * 1e-4 - 1e-9, fmt)
    hi = reference_quantize(v + np.abs(v) * 1e-4 + 1e-9, fmt)
    clear = (lo == hi) & ~nan
    if alt is not None:
        clear &= reference_quantize(alt * s, fmt) == want
    bad = np.flatnonzero(clear & (c != want))
    assert bad.size == 0, (f"{name}: codes differ at {bad[:5]}: x={x.reshape(-1)[bad[:5]]} got {c.reshape(-1)[bad[:5]]} "
                           f"want {want.reshape(-1)[bad[:5]]}")
    near = np.abs(ordinal(c) - ordinal(want)) <= 1
    if alt is not None:
        near |= np.abs(ordinal(c) - ordinal(reference_quantize(alt * s, fmt))) <= 1
    assert (near | nan).all(), f"{name}: {np.flatnonzero(~(near | nan))[:5]} more than one FP8 step away"
    return values


def _amax(f, mode):
    """float32 max |f| (NaN if any) over the tensor, the rows or groups of 128 of the last axis."""
    mag = np.abs(f.astype(np.float32))
    if mode == "tensor":
        return np.float32(np.nan) if np.isnan(mag).any() else mag.max()
    n = mag.shape[-1]
    step = n if mode == "row" else 128
    cuts = [mag[..., g:g + step] for g in range(0, n, step)]
    out = np.stack([np.where(np.isnan(c).any(-1), np.nan, np.max(c, -1, initial=0.0)) for c in cuts], -1)
    return out[..., 0] if mode == "row" else out


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", ELEMENTWISE + GATED)
def test_every_activation_under_jit(name, fmt, rng):
    f8 = FORMATS[fmt]
    x = _inputs(rng, name, np.float32, (4, 130))
    params = REQUIRED.get(name, {})
    q = jax.jit(lambda v: aj.quantize(name, v, out_dtype=f8, scale=SCALES[fmt], **params))(jnp.asarray(x))
    assert isinstance(q, activations.Quantized)
    assert q.values.dtype == f8 and q.amax.dtype == jnp.float32 and q.amax.shape == ()
    f = assert_codes_match_the_oracle(q.values, x, name, f8, SCALES[fmt], **params)
    assert np.allclose(np.asarray(q.amax), _amax(f, "tensor"), rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize("dtype", INPUT_DTYPES, ids=[d.name for d in INPUT_DTYPES])
@pytest.mark.parametrize("name", SWEEP)
def test_input_dtypes(name, dtype, rng):
    x = _inputs(rng, name, dtype, (3, 260))
    for fmt in FORMATS:
        f8 = FORMATS[fmt]
        q = aj.quantize(name, jnp.asarray(x), out_dtype=f8, scale=SCALES[fmt], amax="group")
        f = assert_codes_match_the_oracle(q.values, x, name, f8, SCALES[fmt])
        want = _amax(f, "group")
        assert q.amax.shape == want.shape == (3, 3 if name not in GATED else 2)
        assert np.allclose(np.asarray(q.amax), want, rtol=1e-5 if dtype != np.float64 else 1e-6, equal_nan=True)


@pytest.mark.parametrize("mode", ["tensor", "row", "group"])
def test_amax_modes_bias_and_parameters(mode, rng):
    x = _inputs(rng, "gelu", np.float32, (2, 3, 300))
    bias = rng.uniform(-1, 1, 300).astype(np.float32)
    q = jax.jit(lambda v, b: aj.quantize("gelu", v, bias=b, approximate="tanh", amax=mode, scale=4.0))(
        jnp.asarray(x), jnp.asarray(bias))
    f = assert_codes_match_the_oracle(q.values, x, "gelu", jnp.float8_e4m3fn, 4.0, bias=bias, approximate="tanh")
    want = _amax(f, mode)
    assert q.amax.shape == np.shape(want)
    assert np.allclose(np.asarray(q.amax), want, rtol=1e-5, equal_nan=True)


def test_gated_parameters_axis_and_prelu_weight(rng):
    x = _inputs(rng, "swiglu", np.float32, (6, 4, 64))
    gpt = activations.GPT_OSS_SWIGLU
    q = jax.jit(lambda v: aj.quantize("swiglu", v, axis=0, out_dtype=jnp.float8_e5m2, scale=16.0, **gpt))(
        jnp.asarray(x))
    assert q.values.shape == (3, 4, 64)
    assert_codes_match_the_oracle(q.values, x, "swiglu", jnp.float8_e5m2, 16.0, axis=0, **gpt)
    w = rng.uniform(0.1, 0.4, 64).astype(np.float32)
    q = aj.quantize("prelu", jnp.asarray(x), weight=jnp.asarray(w), scale=8.0)
    assert_codes_match_the_oracle(q.values, x, "prelu", jnp.float8_e4m3fn, 8.0, weight=w)


def test_saturation_and_special_values():
    x = jnp.asarray([[0.0, -0.0, np.nan, np.inf, -np.inf, 1e30, -1e30, 1e-30, 3.0, -3.0]], jnp.float32)
    for fmt, f8 in FORMATS.items():
        c = as_codes(aj.quantize("linear", x, out_dtype=f8, scale=1000.0).values).reshape(-1)
        big = int(reference_quantize(1e30, f8)[()])
        assert c[3] == big and c[4] == big | 0x80 and c[5] == big and c[6] == big | 0x80  # saturated
        assert c[0] == 0x00 and c[1] == 0x80  # signed zeros kept
        assert np.isnan(np.asarray(aj.quantize("linear", x, out_dtype=f8).values, np.float32)[0, 2])
        assert np.isnan(np.asarray(aj.quantize("linear", x, out_dtype=f8).amax))


def test_stochastic_rounding(rng):
    x = (rng.standard_normal((4, 64)) * 3).astype(np.float32)
    f = jax.jit(lambda v, seed: aj.quantize("swiglu", v, out_dtype=jnp.float8_e5m2, scale=8.0,
                                            rounding="stochastic", seed=seed), static_argnums=1)
    a, b, other = f(jnp.asarray(x), 11), f(jnp.asarray(x), 11), f(jnp.asarray(x), 12)
    assert np.array_equal(as_codes(a.values), as_codes(b.values))
    assert not np.array_equal(as_codes(a.values), as_codes(other.values))
    # each value is one of the two FP8 neighbours of the float64 value, and both directions occur
    v = np.asarray(R.forward("swiglu", x), np.float64) * 8.0
    o = ordinal(as_codes(a.values))
    got = np.asarray(a.values, np.float64)
    below, above = decode(o - 1, jnp.float8_e5m2), decode(o + 1, jnp.float8_e5m2)
    slack = 1e-6 * np.abs(v)  # f is computed in float32: a value on the FP8 grid may sit either side of it
    assert (((got >= v - slack) & (below <= v + slack)) | ((got <= v + slack) & (above >= v - slack))).all()
    assert (got > v).any() and (got < v).any()
    assert (o != ordinal(reference_quantize(v, jnp.float8_e5m2))).any()  # not round to nearest
    # the same bits as the package's NumPy-side call with the same seed (every backend agrees: test_fp8)
    want = activations.apply("swiglu", x, out_dtype="float8_e5m2", scale=8.0, rounding="stochastic", seed=11)
    assert np.array_equal(as_codes(a.values), want.values.view(np.uint8))


def test_vmap_quantizes_each_element_on_its_own(rng):
    x = (rng.standard_normal((3, 5, 40)) * np.array([1.0, 10.0, 100.0])[:, None, None]).astype(np.float32)
    q = jax.jit(jax.vmap(lambda v: aj.quantize("silu", v, scale=2.0, amax="tensor")))(jnp.asarray(x))
    assert q.values.shape == x.shape and q.amax.shape == (3,)
    for i in range(3):
        one = aj.quantize("silu", jnp.asarray(x[i]), scale=2.0)
        assert np.array_equal(as_codes(q.values[i]), as_codes(one.values))
        assert np.asarray(q.amax)[i] == np.asarray(one.amax)
        assert np.allclose(np.asarray(one.amax), _amax(np.asarray(R.forward("silu", x[i])), "tensor"), rtol=1e-5)


def test_forward_only_inputs_read_as_data(rng):
    x = jnp.asarray(rng.standard_normal((2, 8)).astype(np.float32))
    g = jax.grad(lambda v: aj.quantize("gelu", v).values.astype(jnp.float32).sum())(x)
    assert np.array_equal(np.asarray(g), np.zeros((2, 8), np.float32))


@pytest.mark.parametrize("kwargs, error, word", [
    ({"out_dtype": jnp.float16}, TypeError, "out_dtype"),
    ({"out_dtype": "int8"}, TypeError, "out_dtype"),
    ({"scale": -1.0}, ValueError, "scale"),
    ({"scale": float("inf")}, ValueError, "scale"),
    ({"scale": "2"}, TypeError, "scale"),
    ({"amax": "column"}, ValueError, "amax"),
    ({"rounding": "up"}, ValueError, "rounding"),
    ({"rounding": "stochastic"}, ValueError, "seed"),
    ({"rounding": "stochastic", "seed": -1}, ValueError, "seed"),
    ({"rounding": "stochastic", "seed": 1.5}, TypeError, "seed"),
    ({"approximate": "cubic"}, ValueError, "approximate"),
    ({"bias": np.ones(3, np.float32)}, ValueError, "bias"),
    ({"axis": 0}, None, None),
])
def test_bad_arguments_raise_before_anything_runs(kwargs, error, word, monkeypatch):
    calls = []
    real = activations._interface.apply
    monkeypatch.setattr(activations._interface, "apply", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = jnp.ones((2, 8), jnp.float32)
    if error is None:  # elementwise activations ignore axis, as activations.apply does
        aj.quantize("gelu", x, **kwargs)
        assert calls
        return
    with pytest.raises(error, match=word):
        jax.jit(lambda v: aj.quantize("gelu", v, **kwargs))(x)
    assert not calls


def test_rowwise_and_traced_arguments_refused():
    x = jnp.ones((2, 8), jnp.float32)
    with pytest.raises(ValueError, match="row-wise"):
        aj.quantize("softmax", x)
    with pytest.raises(TypeError, match="scale"):
        jax.jit(lambda v, s: aj.quantize("gelu", v, scale=s))(x, 2.0)
    with pytest.raises(ValueError, match="odd length"):
        aj.quantize("swiglu", jnp.ones((2, 7), jnp.float32))
    with pytest.raises(ValueError, match="amax"):
        aj.quantize("gelu", jnp.float32(1.0), amax="row")
