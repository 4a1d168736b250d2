"""FP8 output (docs/semantics.md, "FP8 output") against an independent reference quantizer.

The reference quantizer is float64 arithmetic, ``np.clip`` to the largest finite value and
ml_dtypes' own conversion (round to nearest even): nothing of the package's kernels/fp8.cuh.

End to end, each backend's FP8 codes must equal reference_quantize(f * scale) where f is the
same backend's own apply() on x widened to the compute precision (float32 for 16- and 32-bit
input, float64 for float64).  That is exact, not approximate: widening x (and bias, weight) is
exact, the backend computes the same f in the same precision either way, and f * scale with both
in float32 is exact in float64, so the reference rounds the same float64 value once, as the
kernel does.  Separately, the codes are within one FP8 step of the float64 oracle's (reference.py).

Backends: the compiled CPU engine, the NumPy fallback, the CUDA kernels through the CPU host
harness, the Numba kernels on the CUDA simulator (no bfloat16 there), Dask.
"""
from __future__ import annotations

import math
import shutil
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import activations
import reference as R
from activations import _fp8

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

FORMATS = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2}
FORMAT_IDS = list(FORMATS)
ELEMENTWISE = activations.names("elementwise")
GATED = activations.names("gated")
DTYPES = R.DTYPES
REQUIRED = {"threshold": {"threshold": 0.5, "value": -1.0}}  # parameters without a default
NOISE_KEY = 0xA0761D6478BD642F  # docs/semantics.md: the rounding noise of element i is hash(seed ^ KEY, i)


# ------------------------------------------------------------- the reference
def reference_quantize(v, fmt) -> np.ndarray:
    """float64 values -> FP8 (saturating, round to nearest even): clip, then ml_dtypes."""
    big = float(ml_dtypes.finfo(fmt).max)
    return np.clip(np.asarray(v, np.float64), -big, big).astype(fmt)


def splitmix(seed: int, i: int) -> int:
    """The counter hash of docs/semantics.md, in Python integers."""
    m = (1 << 64) - 1
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def reference_stochastic(v: float, fmt, seed: int, i: int) -> int:
    """The documented stochastic rule with exact rationals: q the FP8 step at |v|, lo = |v|
    rounded toward zero to a multiple of q, and with s the bits of v's 53-bit significand below q,
    up iff (|v| - lo) / q + floor(z / 2^(64 - s)) / 2^s >= 1 (s <= 63), z the noise."""
    if math.isnan(v) or v == 0 or math.isinf(v):
        return int(reference_quantize(v, fmt).view(np.uint8))
    info = ml_dtypes.finfo(fmt)
    mant, emin = info.nmant, info.minexp
    a = Fraction(abs(v))
    e = math.frexp(abs(v))[1] - 1
    q = Fraction(2) ** (max(e, emin) - mant)
    lo = (a // q) * q
    s = 52 - mant + max(0, emin - max(e, -1022))
    z = splitmix(seed ^ NOISE_KEY, i)
    if s <= 63:
        up = lo != a and (a - lo) / q + Fraction(z >> (64 - s), 2**s) >= 1
    else:
        up = Fraction(z >> 1, 2**63) < a / q
    mag = float(lo + (q if up else 0))
    return int(reference_quantize(math.copysign(mag, v), fmt).view(np.uint8))


def codes(a) -> np.ndarray:
    a = getattr(a, "copy_to_host", lambda: a)()
    if hasattr(a, "compute"):
        a = a.compute()
    a = np.asarray(a)
    return a.view(np.uint8) if a.dtype.itemsize == 1 else a


def host(a) -> np.ndarray:
    a = getattr(a, "copy_to_host", lambda: a)()
    if hasattr(a, "compute"):
        a = a.compute()
    return np.asarray(a)


def assert_same_codes(got, want, fmt, what=""):
    got, want = codes(got), codes(want)
    assert got.shape == want.shape, what
    nan_got = np.isnan(got.view(fmt).astype(np.float32))
    nan_want = np.isnan(want.view(fmt).astype(np.float32))
    assert np.array_equal(nan_got, nan_want), f"{what}: NaN positions differ"
    bad = np.flatnonzero((got != want) & ~nan_want)
    assert bad.size == 0, (
        f"{what}: {bad.size} codes differ, first at {bad[:5]}: got {got.flat[bad[:5]]} want {want.flat[bad[:5]]}"
    )


def ordinal(c: np.ndarray) -> np.ndarray:
    c = c.astype(np.int64)
    return np.where(c & 0x80, -(c & 0x7F), c & 0x7F)


# ------------------------------------------------------------- the backends
def _engine_loaded() -> bool:
    from activations.backends.cpu import engine

    return engine.module() is not None


class Runner:
    """apply() on one backend: arrays go in as NumPy, results come back as NumPy."""

    def __init__(self, name, prepare=None, backend=None, env=None, dtypes=None):
        self.name, self.prepare, self.backend, self.env, self.dtypes = name, prepare, backend, env, dtypes

    def __call__(self, act, x, **kw):
        xin = self.prepare(x) if self.prepare else x
        for k in ("bias", "weight"):
            if self.prepare and isinstance(kw.get(k), np.ndarray):
                kw[k] = self.prepare(kw[k])
        return activations.apply(act, xin, backend=self.backend, **kw)


@pytest.fixture(scope="module")
def cuda_host():
    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler")
    from cuda_host import harness

    library = harness.HostLibrary(harness.build())
    with harness.registered(harness.HostBackend(harness.HostLauncher(library))) as backend:
        yield library, backend


def _sim_available() -> bool:
    try:
        from numba import cuda

        return cuda.is_available() or cuda.simulator_enabled if hasattr(cuda, "simulator_enabled") else True
    except Exception:
        return False


BACKENDS = ["engine", "fallback", "cuda_host", "numba", "dask"]


@pytest.fixture(params=BACKENDS)
def runner(request, monkeypatch):
    kind = request.param
    if kind == "engine":
        if not _engine_loaded():
            pytest.skip("the compiled CPU engine is not built")
        return Runner("engine", backend="numpy")
    if kind == "fallback":
        monkeypatch.setenv("ACTIVATIONS_NATIVE", "0")
        return Runner("fallback", backend="numpy")
    if kind == "cuda_host":
        request.getfixturevalue("cuda_host")
        return Runner("cuda_host", backend="cuda_host")
    if kind == "numba":
        from numba import cuda

        return Runner("numba", prepare=lambda a: cuda.to_device(np.ascontiguousarray(a)), backend="numba",
                      dtypes=[d for d in DTYPES if d != R.BFLOAT16])
    import dask.array as da

    return Runner("dask", prepare=lambda a: da.from_array(a, chunks=tuple(max(1, (s + 1) // 2) for s in a.shape)))


def _skip_dtype(runner, dtype):
    if runner.dtypes is not None and dtype not in runner.dtypes:
        pytest.skip(f"{runner.name} has no {dtype}")


def _inputs(rng, name, dtype, shape):
    x = R.random_inputs(rng, shape, name, dtype)
    flat = x.reshape(-1)
    specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e4, -1e4, 3e-3], np.float64).astype(dtype)
    flat[: specials.size] = specials[: flat.size]
    return x


def _expected(runner, name, x, fmt, scale, **kw):
    """reference_quantize(f * scale), f the backend's own apply on x in the compute precision."""
    cdt = R.compute_dtype(x.dtype)
    kw = dict(kw)
    if kw.get("bias") is not None:
        kw["bias"] = kw["bias"].astype(cdt)
    f = host(runner(name, x.astype(cdt), **kw)).astype(np.float64)
    s = float(np.asarray(scale, np.float64).astype(cdt))
    return f, reference_quantize(f * s, fmt)


# ----------------------------------------------------------------- end to end
SMALL = (3, 20)  # the simulator runs a thread per Python thread: small arrays


@pytest.mark.parametrize("fmt", FORMAT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=[d.name for d in DTYPES])
@pytest.mark.parametrize("name", ELEMENTWISE + GATED)
def test_every_activation_matches_the_reference_quantizer(runner, name, dtype, fmt, rng):
    _skip_dtype(runner, dtype)
    f8 = FORMATS[fmt]
    shape = SMALL if runner.name == "numba" else (4, 130)
    x = _inputs(rng, name, dtype, shape)
    scale = 2.5 if fmt == "e4m3" else 300.0
    params = dict(REQUIRED.get(name, {}))
    got = runner(name, x, out_dtype=f8, scale=scale, **params)
    assert isinstance(got, activations.Quantized)
    f, want = _expected(runner, name, x, f8, scale, **params)
    assert_same_codes(got.values, want, f8, f"{runner.name} {name} {dtype} {fmt}")
    amax = host(got.amax)
    assert amax.dtype == np.float32 and amax.shape == ()
    mag = np.abs(f.astype(np.float32))
    want_amax = np.float32(np.nan) if np.isnan(mag).any() else mag.max()
    assert np.array_equal(amax, want_amax, equal_nan=True), (amax, want_amax)
    # within one FP8 step of the float64 oracle
    oracle = np.asarray(R.forward(name, x, **params), np.float64) * float(np.asarray(scale, R.compute_dtype(dtype)))
    ref = reference_quantize(oracle, f8).view(np.uint8)
    c = codes(got.values)
    ok = np.isnan(oracle) | (np.abs(ordinal(c) - ordinal(ref)) <= 1)
    assert ok.all(), f"{name}: {np.flatnonzero(~ok)[:5]} more than one FP8 step from the oracle"


@pytest.mark.parametrize("mode", ["row", "group"])
@pytest.mark.parametrize("name", ["gelu", "swiglu", "relu", "prelu"])
def test_row_and_group_amax(runner, name, mode, rng):
    dtype = np.dtype(np.float32)
    n = 20 if runner.name == "numba" else 300
    x = _inputs(rng, name, dtype, (3, n))
    kw = {"weight": rng.uniform(0.1, 0.3, n).astype(dtype)} if name == "prelu" else {}
    got = runner(name, x, out_dtype=FORMATS["e4m3"], amax=mode, **kw)
    f, _ = _expected(runner, name, x, FORMATS["e4m3"], 1.0, **kw)
    mag = np.abs(f.astype(np.float32))
    cols = mag.shape[-1]
    if mode == "row":
        want = np.array([np.nan if np.isnan(r).any() else r.max() for r in mag], np.float32)
    else:
        groups = -(-cols // 128)
        want = np.array([[np.nan if np.isnan(r[g * 128:(g + 1) * 128]).any() else r[g * 128:(g + 1) * 128].max()
                          for g in range(groups)] for r in mag], np.float32)
    amax = host(got.amax)
    assert amax.shape == want.shape and amax.dtype == np.float32
    assert np.array_equal(amax, want, equal_nan=True)


@pytest.mark.parametrize("fmt", FORMAT_IDS)
def test_bias_scale_saturation_and_specials(runner, fmt, rng):
    f8 = FORMATS[fmt]
    x = np.array([[0.0, -0.0, np.nan, np.inf, -np.inf, 1e30, -1e30, 1e-30, 3.0, -3.0]], np.float32)
    bias = np.linspace(-0.5, 0.5, x.shape[-1]).astype(np.float32)
    for name in ("linear", "relu", "gelu"):
        got = runner(name, x, out_dtype=f8, scale=1000.0, bias=bias)
        _, want = _expected(runner, name, x, f8, 1000.0, bias=bias)
        assert_same_codes(got.values, want, f8, f"{runner.name} {name}")
    got = codes(runner("linear", x, out_dtype=f8).values).reshape(-1)
    big = int(reference_quantize(1e30, f8).view(np.uint8))
    assert got[3] == big and got[4] == big | 0x80  # +-inf saturate
    assert got[0] == 0x00 and got[1] == 0x80  # signed zeros kept


def test_out_receives_the_values(rng):
    x = rng.standard_normal((3, 40)).astype(np.float32)
    out = np.zeros((3, 40), ml_dtypes.float8_e5m2)
    got = activations.apply("silu", x, out_dtype=ml_dtypes.float8_e5m2, out=out, scale=4.0)
    assert got.values is out
    assert_same_codes(out, activations.apply("silu", x, out_dtype="float8_e5m2", scale=4.0).values,
                      ml_dtypes.float8_e5m2)


# ------------------------------------------------------------- stochastic
EXACT = ["linear", "relu", "hard_tanh"]  # f exact in float: every backend has the same f


def _stochastic_input(rng, dtype, shape):
    return (rng.standard_normal(shape) * 3).astype(dtype)


@pytest.mark.parametrize("fmt", FORMAT_IDS)
@pytest.mark.parametrize("name", EXACT + ["swiglu"])
def test_stochastic_is_the_documented_rule_on_every_backend(runner, name, fmt, rng):
    f8 = FORMATS[fmt]
    x = _stochastic_input(rng, np.float32, SMALL if runner.name == "numba" else (4, 64))
    got = codes(runner(name, x, out_dtype=f8, rounding="stochastic", seed=12345, scale=8.0).values).reshape(-1)
    f, _ = _expected(runner, name, x, f8, 8.0)
    v = f.reshape(-1) * 8.0
    want = np.array([reference_stochastic(float(t), f8, 12345, i) for i, t in enumerate(v)], np.uint8)
    assert_same_codes(got, want, f8, f"{runner.name} {name}")


def test_stochastic_same_seed_same_bits_other_seed_other_bits(rng):
    x = _stochastic_input(rng, np.float32, (8, 64))
    a = activations.apply("linear", x, out_dtype="float8_e4m3fn", rounding="stochastic", seed=7).values
    b = activations.apply("linear", x, out_dtype="float8_e4m3fn", rounding="stochastic", seed=7).values
    c = activations.apply("linear", x, out_dtype="float8_e4m3fn", rounding="stochastic", seed=8).values
    assert np.array_equal(codes(a), codes(b))
    assert (codes(a) != codes(c)).mean() > 0.2


@pytest.mark.parametrize("fmt", FORMAT_IDS)
def test_stochastic_rounding_is_unbiased(fmt, rng):
    f8 = FORMATS[fmt]
    info = ml_dtypes.finfo(f8)
    # values strictly between FP8 neighbours, normal and subnormal
    values = np.array([1.1, 3.3, -2.71, 100.3, float(info.smallest_subnormal) * 0.3,
                       -float(info.smallest_subnormal) * 2.6, 0.013], np.float64)
    seeds = 400
    x = np.broadcast_to(values, (seeds, values.size)).astype(np.float64)
    total = np.zeros(values.size)
    for s in range(seeds):  # many seeds, every element of x the same values: many draws each
        q = activations.apply("linear", x, out_dtype=f8, rounding="stochastic", seed=s).values
        total += q.astype(np.float64).mean(axis=0)
    mean = total / seeds
    lo = reference_quantize(values, f8).astype(np.float64)
    step = np.abs(np.nextafter(lo.astype(np.float64), 0))  # scale of the error only
    spacing = np.array([abs(float(np.array(int(reference_quantize(v, f8).view(np.uint8)) + 1, np.uint8).view(f8))
                            - float(reference_quantize(v, f8))) for v in np.abs(values)])
    draws = seeds * seeds
    # the rounding error of one draw is at most one spacing: 6 standard errors
    assert np.all(np.abs(mean - values) <= 6 * spacing / np.sqrt(draws) + 1e-300), (mean, values, step)


# ------------------------------------------------------ validation (nothing written)
@pytest.mark.parametrize("kwargs, error, word", [
    ({"out_dtype": np.float16}, TypeError, "out_dtype"),
    ({"out_dtype": "float8_e4m3"}, TypeError, "out_dtype"),
    ({"out_dtype": "float8_e4m3fn", "scale": 0.0}, ValueError, "scale"),
    ({"out_dtype": "float8_e4m3fn", "scale": -1.0}, ValueError, "scale"),
    ({"out_dtype": "float8_e4m3fn", "scale": float("inf")}, ValueError, "scale"),
    ({"out_dtype": "float8_e4m3fn", "scale": float("nan")}, ValueError, "scale"),
    ({"out_dtype": "float8_e4m3fn", "scale": 1e-50}, ValueError, "scale"),
    ({"out_dtype": "float8_e4m3fn", "scale": np.ones(3)}, TypeError, "scale"),
    ({"out_dtype": "float8_e4m3fn", "scale": True}, TypeError, "scale"),
    ({"out_dtype": "float8_e4m3fn", "amax": "rows"}, ValueError, "amax"),
    ({"out_dtype": "float8_e4m3fn", "rounding": "up"}, ValueError, "rounding"),
    ({"out_dtype": "float8_e4m3fn", "rounding": "stochastic"}, ValueError, "seed"),
    ({"out_dtype": "float8_e4m3fn", "rounding": "stochastic", "seed": 1.5}, TypeError, "seed"),
    ({"out_dtype": "float8_e4m3fn", "rounding": "stochastic", "seed": -1}, ValueError, "seed"),
    ({"scale": 2.0}, TypeError, "out_dtype"),
])
def test_bad_arguments_write_nothing(kwargs, error, word):
    x = np.ones((2, 8), np.float32)
    out = np.full((2, 8), 7.0, ml_dtypes.float8_e4m3fn)
    kw = dict(kwargs)
    if "out_dtype" in kw:
        kw["out"] = out
    with pytest.raises(error, match=word):
        activations.apply("gelu", x, **kw)
    assert np.all(out.astype(np.float32) == 7.0)


def test_bad_out_writes_nothing():
    x = np.ones((2, 8), np.float32)
    for out, word in ((np.zeros((2, 8), ml_dtypes.float8_e5m2), "dtype"),
                      (np.zeros((2, 9), ml_dtypes.float8_e4m3fn), "shape"),
                      (np.zeros((2, 8), np.float32), "dtype")):
        before = out.copy()
        with pytest.raises(ValueError, match=word):
            activations.apply("gelu", x, out_dtype=ml_dtypes.float8_e4m3fn, out=out)
        assert np.array_equal(out.view(np.uint8), before.view(np.uint8))


def test_rowwise_and_grad_refuse():
    x = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match="row-wise"):
        activations.apply("softmax", x, out_dtype="float8_e4m3fn")
    with pytest.raises(TypeError, match="out_dtype"):
        activations.grad("gelu", x, x, out_dtype="float8_e4m3fn")


def test_out_dtype_spellings():
    x = np.linspace(-3, 3, 16, dtype=np.float32)
    want = codes(activations.apply("gelu", x, out_dtype=ml_dtypes.float8_e4m3fn).values)
    for spelling in (np.dtype(ml_dtypes.float8_e4m3fn), "float8_e4m3fn"):
        assert np.array_equal(codes(activations.apply("gelu", x, out_dtype=spelling).values), want)


# --------------------------------------------- the conversion alone, exhaustively
def _sweep_float32() -> np.ndarray:
    """Every float32 exponent with many mantissas, every tie and its neighbours around every
    FP8 value of both formats, the boundaries around the largest values and the subnormals,
    +-0, +-inf and NaN."""
    rng = np.random.default_rng(0)
    e = np.arange(0, 255, dtype=np.uint32)
    m = np.concatenate([np.arange(0, 64, dtype=np.uint32), (1 << 23) - 1 - np.arange(64, dtype=np.uint32),
                        rng.integers(0, 1 << 23, 200).astype(np.uint32), np.uint32(1) << np.arange(23, dtype=np.uint32)])
    bits = ((e[:, None] << np.uint32(23)) | m[None, :]).reshape(-1)
    base = bits.view(np.float32)
    extra = []
    for f8 in FORMATS.values():
        every = np.arange(256, dtype=np.uint8).view(f8).astype(np.float64)
        every = np.unique(every[np.isfinite(every)])
        mids = (every[1:] + every[:-1]) / 2  # the ties, exact in float32
        extra += [every, mids]
        big = float(ml_dtypes.finfo(f8).max)
        extra.append(np.array([big, big * 1.0625, big * 1.125, big * 1.1249, big * 1.12501, 2 * big]))
    extra = np.concatenate(extra).astype(np.float32)
    around = np.concatenate([extra, np.nextafter(extra, np.float32(np.inf)), np.nextafter(extra, np.float32(-np.inf))])
    special = np.array([0.0, np.inf, np.nan], np.float32)
    v = np.concatenate([base, around, special])
    return np.concatenate([v, -v])


def _sweep_float64() -> np.ndarray:
    """Ties and their float64 neighbours (bits below float32's precision), tiny values."""
    out = []
    for f8 in FORMATS.values():
        every = np.arange(256, dtype=np.uint8).view(f8).astype(np.float64)
        every = np.unique(every[np.isfinite(every)])
        mids = (every[1:] + every[:-1]) / 2
        out += [mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf), every]
    out.append(np.array([5e-324, 1e-310, 1e-300, 2.0**-30, 1e300, np.inf, np.nan, 0.0]))
    v = np.concatenate(out)
    return np.concatenate([v, -v])


SWEEPS = {
    "f32": lambda: _sweep_float32(),
    "f16": lambda: np.arange(65536, dtype=np.uint16).view(np.float16),
    "bf16": lambda: np.arange(65536, dtype=np.uint16).view(ml_dtypes.bfloat16),
    "f64": lambda: _sweep_float64(),
}


def _engine_encode(v, f8, stochastic, seed):
    from activations.backends.cpu import engine

    if engine.module() is None:
        pytest.skip("the compiled CPU engine is not built")
    q = np.empty(v.size, np.uint8)
    engine.module().fp8_encode(np.ascontiguousarray(v, np.float64), q, _fp8.format_of(f8).code, int(stochastic),
                               (seed ^ NOISE_KEY) & (2**64 - 1))
    return q


def _numpy_port_encode(v, f8, stochastic, seed):
    from activations.backends.cpu.fallback import counter_hash

    noise = counter_hash(seed ^ NOISE_KEY, np.arange(v.size)) if stochastic else None
    return _fp8.encode(np.asarray(v, np.float64), _fp8.format_of(f8), noise)


def _numba_encode(v, f8, stochastic, seed):
    import numba

    from activations.backends.numba import functions as NF

    fns = NF.functions(numba.float64, "cpu")
    enc, hsh = fns.fp8_encode, fns.counter_hash
    fmt = _fp8.format_of(f8)

    @numba.njit
    def run(v, out, mant, emin, max_code, nan_code, stochastic, seed):
        for i in range(v.size):
            noise = hsh(seed, i) if stochastic else numba.uint64(0)
            out[i] = numba.uint8(enc(v[i], mant, emin, max_code, nan_code, stochastic, noise))

    out = np.empty(v.size, np.uint8)
    run(np.asarray(v, np.float64), out, fmt.mant, fmt.emin, np.uint64(fmt.max_code), np.uint64(fmt.nan_code),
        bool(stochastic), np.uint64((seed ^ NOISE_KEY) & (2**64 - 1)))
    return out


def _harness_encode(library, storage, short, f8, stochastic, seed):
    q = np.empty(storage.size, np.uint8)
    library.launch(f"act_fp8_encode_{short}", (8,), (256,),
                   (np.ascontiguousarray(storage), q, np.int64(storage.size), np.float64(1.0),
                    np.uint64((seed ^ NOISE_KEY) & (2**64 - 1)), np.int32(_fp8.format_of(f8).code),
                    np.int32(int(stochastic))))
    return q


@pytest.mark.parametrize("fmt", FORMAT_IDS)
@pytest.mark.parametrize("sweep", list(SWEEPS))
@pytest.mark.parametrize("impl", ["engine", "numpy_port", "numba", "cuda_host"])
def test_conversion_exhaustive_nearest(impl, sweep, fmt, request):
    f8 = FORMATS[fmt]
    storage = SWEEPS[sweep]()
    v = storage.astype(np.float64)
    want = reference_quantize(v, f8)
    if impl == "engine":
        got = _engine_encode(v, f8, False, 0)
    elif impl == "numpy_port":
        got = _numpy_port_encode(v, f8, False, 0)
    elif impl == "numba":
        got = _numba_encode(v, f8, False, 0)
    else:
        library, _ = request.getfixturevalue("cuda_host")
        got = _harness_encode(library, storage, sweep, f8, False, 0)
    assert_same_codes(got, want, f8, f"{impl} {sweep} {fmt}")
    # the NaN's sign is the input's (as ml_dtypes)
    nan = np.isnan(v)
    assert np.array_equal(got[nan], want.view(np.uint8)[nan])


@pytest.mark.parametrize("fmt", FORMAT_IDS)
@pytest.mark.parametrize("sweep", ["f16", "f64"])
def test_conversion_stochastic_agrees_everywhere(sweep, fmt, cuda_host):
    f8 = FORMATS[fmt]
    storage = SWEEPS[sweep]()
    v = storage.astype(np.float64)
    seed = 2024
    ports = {"numpy_port": _numpy_port_encode(v, f8, True, seed), "numba": _numba_encode(v, f8, True, seed),
             "cuda_host": _harness_encode(cuda_host[0], storage, sweep, f8, True, seed)}
    if _engine_loaded():
        ports["engine"] = _engine_encode(v, f8, True, seed)
    first = ports["numpy_port"]
    for name, got in ports.items():
        assert np.array_equal(got, first), name
    # the documented rule, exactly, on a sample
    idx = np.random.default_rng(1).choice(v.size, 1500, replace=False)
    want = np.array([reference_stochastic(float(v[i]), f8, seed, int(i)) for i in idx], np.uint8)
    assert_same_codes(first[idx], want, f8, f"stochastic {sweep} {fmt}")
    # every result is one of the two FP8 neighbours of v (same sign), the largest past it
    grid = np.unique(np.abs(np.arange(256, dtype=np.uint8).view(f8).astype(np.float64)))
    grid = grid[np.isfinite(grid)]
    finite = np.isfinite(v)
    a = np.abs(v[finite])
    below = grid[np.clip(np.searchsorted(grid, a, side="right") - 1, 0, grid.size - 1)]
    above = grid[np.clip(np.searchsorted(grid, a, side="left"), 0, grid.size - 1)]
    val = first[finite].view(f8).astype(np.float64)
    assert np.all((np.abs(val) == below) | (np.abs(val) == above))
    assert np.all((val == 0) | (np.sign(val) == np.sign(v[finite])))


# ------------------------------------------------------------------- wrappers
def test_torch_quantize(rng):
    torch = pytest.importorskip("torch")
    import activations.torch as AT

    x = torch.from_numpy(rng.standard_normal((4, 256)).astype(np.float32))
    q = AT.quantize("gelu", x, scale=2.0, amax="group")
    assert q.values.dtype == torch.float8_e4m3fn and q.amax.shape == (4, 2)
    want = activations.apply("gelu", x.numpy(), out_dtype="float8_e4m3fn", scale=2.0, amax="group")
    assert np.array_equal(q.values.view(torch.uint8).numpy(), codes(want.values))
    assert np.array_equal(q.amax.numpy(), want.amax)
    q = AT.quantize("swiglu", x.to(torch.bfloat16), out_dtype=torch.float8_e5m2, rounding="stochastic", seed=3)
    assert q.values.dtype == torch.float8_e5m2 and tuple(q.values.shape) == (4, 128)


def test_jax_arrays_in_jax_fp8_out(rng):
    jnp = pytest.importorskip("jax.numpy")
    x = rng.standard_normal((2, 128)).astype(np.float32)
    q = activations.apply("gelu", jnp.asarray(x), out_dtype="float8_e4m3fn", scale=2.0, amax="row")
    want = activations.apply("gelu", x, out_dtype="float8_e4m3fn", scale=2.0, amax="row")
    assert q.values.dtype == jnp.float8_e4m3fn
    assert np.array_equal(np.asarray(q.values).view(np.uint8), codes(want.values))
    assert np.array_equal(np.asarray(q.amax), want.amax)
