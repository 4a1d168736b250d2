"""The compiled CPU loops of the NumPy backend (activations/backends/_native_cpu.py).

The kind tests (test_elementwise, test_gated, test_rowwise) already run every
activation through the NumPy backend with and without these loops.  This file
checks what is specific to them: that they really take the calls they claim,
the tiling (blocks, super-rows of short rows, column splits, threads), the
float64 reductions (dbias, dweight) and their independence from the thread
count, the 16-bit conversions, aliasing, and that the build degrades to the
NumPy path instead of failing.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import activations
import reference as R
from activations.backends import _native_cpu as N
from activations.backends import numpy_backend
from activations.catalogue import REGISTRY

# Tests that run whether or not the loops could be built here; every other test is skipped then.
WITHOUT_LOOPS = {"test_builds_where_a_compiler_exists", "test_no_compiler_means_numpy_path"}


@pytest.fixture(autouse=True)
def _needs_loops(request):
    if request.node.originalname not in WITHOUT_LOOPS and not N.usable():
        pytest.skip(f"compiled CPU loops unavailable: {N.WHY_NOT}")

ELEMENTWISE = REGISTRY.names("elementwise")
# non-default parameters that take each activation off its default branches
PARAMS = {
    "relu": dict(negative_slope=0.1, max_value=6.0, threshold=0.5),
    "leaky_relu": dict(negative_slope=0.3),
    "rrelu": dict(training=True, seed=12345),
    "elu": dict(alpha=0.7),
    "celu": dict(alpha=-1.5),
    "gelu": dict(approximate="tanh"),
    "hard_sigmoid": dict(slope=0.2, offset=0.4),
    "softplus": dict(beta=2.0, threshold=20.0),
    "hard_tanh": dict(min_val=-2.0, max_val=0.5),
    "soft_shrink": dict(threshold=1.0),
    "hard_shrink": dict(threshold=1.0),
    "threshold": dict(threshold=0.5, value=-2.0),
    "squareplus": dict(b=0.0),
    "snake": dict(frequency=3.0),
    "prelu": dict(weight=-0.5),
}


def _needed(name: str) -> dict:
    return dict(threshold=0.5, value=-2.0) if name == "threshold" else {}


@pytest.fixture
def spy(monkeypatch):
    """Counts how many calls the compiled loops took and declined."""
    counts = {"taken": 0, "declined": 0}
    fwd, bwd = N.forward, N.backward

    def forward(call, out):
        ok = fwd(call, out)
        counts["taken" if ok else "declined"] += 1
        return ok

    def backward(call, dx):
        got = bwd(call, dx)
        counts["taken" if got is not None else "declined"] += 1
        return got

    monkeypatch.setattr(N, "forward", forward)
    monkeypatch.setattr(N, "backward", backward)
    return counts


def _grads(name, x, dy, **kw):
    got = activations.grad(name, x, dy, backend="numpy", **kw)
    return got if isinstance(got, tuple) else (got,)


def _check(name, x, dy, dtype, what, **kw):
    y = activations.apply(name, x, backend="numpy", **kw)
    R.assert_close(y, R.forward(name, x, **kw), dtype, what=f"forward, {what}")
    got = _grads(name, x, dy, **kw)
    exp = R.backward(name, x, dy, **kw)
    exp_dx = exp[0] if name == "prelu" else exp
    R.assert_close(got[0], exp_dx, dtype, what=f"backward, {what}")
    k = 1
    if kw.get("bias") is not None:
        R.assert_close(got[k], R.dbias(exp_dx), dtype, what=f"dbias, {what}")
        k += 1
    if name == "prelu":
        R.assert_close(got[k], exp[1], dtype, what=f"dweight, {what}")


# ------------------------------------------------------------ elementwise
@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_edge_values(name, dtype, rng, spy):
    """Edge values (NaN, +-inf, -0.0, kinks and their neighbours, denormals, huge) then random
    inputs, odd total length so that every vector loop has a tail; defaults and other params."""
    for kw in ({**_needed(name)}, PARAMS.get(name)):
        if kw is None:
            continue
        x = np.concatenate([R.cast(R.edge_values(name, **kw), dtype), R.random_inputs(rng, 1001, name, dtype)])
        dy = R.random_cotangent(rng, x.shape, dtype)
        _check(name, x, dy, dtype, f"edge values {kw}", **kw)
    assert spy["declined"] == 0 and spy["taken"] > 0


@pytest.mark.parametrize("dtype", [R.F16, R.F32, R.F64], ids=["float16", "float32", "float64"])
@pytest.mark.parametrize("channels", [1, 3, 7, 2047, 2048, 2049, 5000])
def test_bias_and_weight_patterns(channels, dtype, rng, spy):
    """Per-column data over short rows (walked as super-rows of whole rows) and long rows (split in
    column ranges), with an incomplete last super-row; dbias and dweight from float64 sums."""
    rows = max(2, 9000 // channels)
    x = R.random_inputs(rng, (rows, channels), "prelu", dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    bias = R.cast(rng.normal(0, 1, channels), dtype)
    weight = R.cast(rng.normal(0.2, 0.3, channels), dtype)
    _check("prelu", x, dy, dtype, f"{channels} channels", bias=bias, weight=weight)
    _check("prelu", x, dy, dtype, f"{channels} channels, weight[1]", weight=weight[:1])
    _check("prelu", x, dy, dtype, f"{channels} channels, float weight", bias=bias, weight=0.3)
    _check("gelu", x, dy, dtype, f"{channels} channels", bias=bias)
    _check("rrelu", x, dy, dtype, f"{channels} channels", bias=bias, training=True, seed=99)
    assert spy["declined"] == 0


@pytest.mark.parametrize("name", ["relu", "silu", "prelu", "rrelu", "sigmoid"])
def test_large_arrays_are_tiled_identically_for_any_thread_count(name, rng, monkeypatch):
    """Arrays above the parallel threshold are split in tiles; the tiles (and the order their sums
    are folded in) do not depend on the thread count, so neither do the results, bit for bit."""
    x = R.random_inputs(rng, (703, 611), name, R.F32)  # 429533 elements, rows straddle tiles
    dy = R.random_cotangent(rng, x.shape, R.F32)
    bias = R.cast(rng.normal(0, 1, 611), R.F32)
    kw = dict(bias=bias, **({"training": True, "seed": 5} if name == "rrelu" else {}))
    if name == "prelu":
        kw["weight"] = R.cast(rng.uniform(0, 0.5, 611), R.F32)
    results = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("ACTIVATIONS_NUM_THREADS", threads)
        y = activations.apply(name, x, backend="numpy", **kw)
        g = _grads(name, x, dy, **kw)
        results.append((y, *g))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    _check(name, x, dy, R.F32, "429533 elements", **kw)


def test_streaming_stores_for_large_outputs(rng):
    """Outputs of 16 MiB and more are written with non-temporal stores (unaligned start here):
    same values as the same data computed in small pieces with plain stores."""
    n = (1 << 22) + 13
    x = R.random_inputs(rng, n, "gelu", R.F32)
    dy = R.random_cotangent(rng, n, R.F32)
    buf = np.empty(n + 1, np.float32)
    out = buf[1:]  # not 64-byte aligned
    pieces = [slice(i, min(i + 100003, n)) for i in range(0, n, 100003)]
    for name in ("gelu", "relu"):
        activations.apply(name, x, out=out, backend="numpy")
        want = np.concatenate([activations.apply(name, x[p], backend="numpy") for p in pieces])
        np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)  # tails: scalar libm
        activations.grad(name, x, dy, out=out, backend="numpy")
        want = np.concatenate([activations.grad(name, x[p], dy[p], backend="numpy") for p in pieces])
        np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)  # tails: scalar libm
    rows = x[: (n // 1000) * 1000].reshape(-1, 1000)
    for name in ("softmax", "swiglu"):
        got = activations.apply(name, rows, backend="numpy")
        want = np.concatenate([activations.apply(name, rows[i : i + 97], backend="numpy") for i in range(0, len(rows), 97)])
        np.testing.assert_array_equal(got, want)
    rows2 = np.concatenate([rows, rows], axis=1)  # 2 x 16 MiB of input, 16 MiB of output
    half = rows2.shape[0] // 2
    got = activations.apply("swiglu", rows2, backend="numpy")
    np.testing.assert_array_equal(got[:half], activations.apply("swiglu", rows2[:half], backend="numpy"))


def test_float16_bfloat16_conversions_are_exact(rng):
    """Loads are exact and stores round once to nearest even, like NumPy / ml_dtypes casts."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    for dt in [d for d in R.DTYPES if d.itemsize == 2]:
        x = bits.view(dt)
        y = activations.apply("linear", x, backend="numpy")
        same = (y.view(np.uint16) == bits) | (np.isnan(x.astype(np.float32)) & np.isnan(y.astype(np.float32)))
        assert same.all(), f"{dt}: linear is not the identity on every bit pattern"
        # x + bias is a float32 value that must round once: compare with NumPy's own cast
        xs = R.cast(rng.normal(0, 100, 4099), dt).reshape(-1, 1)
        b = R.cast([0.0037], dt)
        want = (xs.astype(np.float32) + b.astype(np.float32)).astype(dt)
        got = activations.apply("linear", xs, bias=b, backend="numpy")
        np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))


@pytest.mark.parametrize("dtype", [R.F32, R.F64, R.F16], ids=["float32", "float64", "float16"])
def test_in_place_and_aliasing(dtype, rng):
    x = R.random_inputs(rng, 3001, "silu", dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    want = R.forward("silu", x)
    want_dx = R.backward("silu", x, dy)
    xc = x.copy()
    assert activations.apply("silu", xc, out=xc, backend="numpy") is xc
    R.assert_close(xc, want, dtype, what="out=x")
    xc = x.copy()
    activations.grad("silu", xc, dy, out=xc, backend="numpy")
    R.assert_close(xc, want_dx, dtype, what="grad out=x")
    dyc = dy.copy()
    activations.grad("silu", x, dyc, out=dyc, backend="numpy")
    R.assert_close(dyc, want_dx, dtype, what="grad out=dy")
    # an overlapping, shifted view is declined and left to NumPy, which copies
    buf = x.copy()
    y = activations.apply("silu", buf[:-1], out=buf[1:], backend="numpy")
    R.assert_close(y, R.forward("silu", x[:-1]), dtype, what="shifted overlap")


def test_non_contiguous_input(rng):
    x = R.random_inputs(rng, (64, 48), "gelu", R.F32)
    bias = R.cast(rng.normal(0, 1, 64), R.F32)
    xt = x.T  # (48, 64), not C-contiguous
    y = activations.apply("gelu", xt, bias=bias, backend="numpy")
    R.assert_close(y, R.forward("gelu", np.ascontiguousarray(xt), bias=bias), R.F32, what="transposed")


# ------------------------------------------------------------ gated and rowwise
@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize("name", REGISTRY.names("gated"))
def test_gated_last_axis(name, dtype, rng, spy):
    for shape in [(3, 10), (5, 4100), (300, 2)]:
        x = R.random_inputs(rng, shape, name, dtype)
        x.reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
        bias = R.cast(rng.normal(0, 1, shape[-1]), dtype)
        dy = R.random_cotangent(rng, shape[:-1] + (shape[-1] // 2,), dtype)
        for b in (None, bias):
            y = activations.apply(name, x, bias=b, backend="numpy")
            R.assert_close(y, R.forward(name, x, bias=b), dtype, what=f"forward {shape}")
            got = _grads(name, x, dy, bias=b)
            exp_dx = R.backward(name, x, dy, bias=b)
            R.assert_close(got[0], exp_dx, dtype, what=f"backward {shape}")
            if b is not None:
                R.assert_close(got[1], R.dbias(exp_dx), dtype, what=f"dbias {shape}")
    assert spy["declined"] == 0


@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_rowwise_last_axis(name, dtype, rng, spy):
    for shape in [(4, 1), (7, 33), (3, 5000), (2, 3, 129)]:
        x = R.random_inputs(rng, shape, name, dtype)
        dy = R.random_cotangent(rng, shape, dtype)
        y = activations.apply(name, x, backend="numpy")
        R.assert_close(y, R.forward(name, x), dtype, what=f"forward {shape}")
        R.assert_close(_grads(name, x, dy)[0], R.backward(name, x, dy), dtype, what=f"backward {shape}")
        bias = R.cast(rng.normal(0, 1, shape[-1]), dtype)
        y = activations.apply(name, x, bias=bias, backend="numpy")
        R.assert_close(y, R.forward(name, x, bias=bias), dtype, what=f"forward with bias {shape}")
    special = R.cast([[1.0, np.nan, 2.0, 0.5], [0.0, -np.inf, 1.0, -np.inf], [np.inf, 0.0, 1.0, 2.0],
                      [-np.inf] * 4, [60000.0, -60000.0, 0.0, 1.0]], dtype)
    R.assert_close(activations.apply(name, special, backend="numpy"), R.forward(name, special), dtype,
                   what="special rows")
    assert spy["declined"] == 0


def test_declined_cases_fall_back(rng, spy):
    """What the loops do not handle goes to the NumPy path, with correct results."""
    x = R.random_inputs(rng, (6, 8), "softmax", R.F32)
    where = rng.random((6, 8)) > 0.3
    for kw in (dict(axis=0), dict(where=where)):
        y = activations.apply("softmax", x, backend="numpy", **kw)
        R.assert_close(y, R.forward("softmax", x, **kw), R.F32, what=str(list(kw)))
    y = activations.apply("sparsemax", x, backend="numpy")
    R.assert_close(y, R.forward("sparsemax", x), R.F32, what="sparsemax")
    y = activations.apply("glu", x, axis=0, backend="numpy")
    R.assert_close(y, R.forward("glu", x, axis=0), R.F32, what="glu axis 0")
    assert spy["declined"] == 4 and spy["taken"] == 0
    # empty arrays: nothing to compute
    e = np.empty((0, 4), np.float32)
    assert activations.apply("gelu", e, backend="numpy").shape == (0, 4)


# ------------------------------------------------------------ agreement with the NumPy path
def _agree(a, b, expected, dtype, what):
    """a (compiled loops) and b (NumPy path) agree: same NaNs and infinities, finite values within
    twice the oracle's allowance of each other.  Only where the oracle has one answer (no
    documented alternative) and where b itself is within the oracle's allowance: the NumPy
    path's own deviations are the business of the kind tests."""
    a64, b64, e = (np.asarray(v, np.float64) for v in (a, b, expected))
    rtol, atol = R.tolerance(dtype, getattr(expected, "name", ""))
    slack = getattr(expected, "slack", None)
    has_alt = getattr(expected, "has_alt", None)
    with np.errstate(invalid="ignore", over="ignore"):
        tol = atol + rtol * np.abs(e) + (0.0 if slack is None else slack)
        b_ok = (np.isnan(b64) & np.isnan(e)) | (b64 == e) | (np.abs(b64 - e) <= tol)
        same = (np.isnan(a64) & np.isnan(b64)) | (a64 == b64) | (np.abs(a64 - b64) <= 2 * tol)
    check = b_ok if has_alt is None else b_ok & ~has_alt
    bad = np.flatnonzero((check & ~same).reshape(-1))
    assert bad.size == 0, f"{what}: {bad.size} values differ, first at {bad[0]}: {a64.reshape(-1)[bad[0]]} vs " \
        f"{b64.reshape(-1)[bad[0]]}"
    assert check.mean() > 0.9, f"{what}: the NumPy path is off the oracle on {1 - check.mean():.0%} of the values"


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_agrees_with_numpy_path(name, rng, monkeypatch):
    kw = PARAMS.get(name, _needed(name))
    x = R.random_inputs(rng, (37, 29), name, R.F32)
    x.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, -0.0]
    dy = R.random_cotangent(rng, x.shape, R.F32)
    bias = R.cast(rng.normal(0, 0.5, 29), R.F32) if name != "log1mexp" else None
    native = (activations.apply(name, x, bias=bias, backend="numpy", **kw), *_grads(name, x, dy, bias=bias, **kw))
    monkeypatch.setattr(numpy_backend, "_NATIVE", None)  # as ACTIVATIONS_NATIVE=0
    plain = (activations.apply(name, x, bias=bias, backend="numpy", **kw), *_grads(name, x, dy, bias=bias, **kw))
    exp_y = R.forward(name, x, bias=bias, **kw)
    exp_b = R.backward(name, x, dy, bias=bias, **kw)
    exp_dx = exp_b[0] if name == "prelu" else exp_b
    expected = [exp_y, exp_dx] + ([R.dbias(exp_dx)] if bias is not None else []) + ([exp_b[1]] if name == "prelu" else [])
    assert len(native) == len(plain) == len(expected)
    for a, b, e, what in zip(native, plain, expected, ("y", "dx", "dbias" if bias is not None else "dweight", "dweight")):
        _agree(a, b, e, R.F32, f"{name} {what}")


def test_concurrent_callers(rng):
    """Python threads calling at once (ctypes drops the GIL): one runs on the pool, the others
    run their own tiles; every result is right."""
    x = R.random_inputs(rng, 1 << 18, "gelu", R.F32)
    want = activations.apply("gelu", x, backend="numpy")
    errors = []

    def work():
        for _ in range(5):
            if not np.array_equal(activations.apply("gelu", x, backend="numpy"), want):
                errors.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ------------------------------------------------------------ build
def _probe(env: dict) -> str:
    code = "from activations.backends import _native_cpu as n; print(n.usable()); print(n.WHY_NOT)"
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120,
                          cwd=str(R.__file__).rsplit("/tests/", 1)[0]).stdout


def test_builds_where_a_compiler_exists():
    """On Linux with a C++ compiler the loops must build: a failure here usually means that
    kernels/functors.cuh or common.cuh started using something prelude.h does not provide."""
    if not sys.platform.startswith("linux") or N._compiler() is None:
        pytest.skip("no C++ compiler on this machine: the NumPy path runs everything")
    assert N.usable(), N.WHY_NOT


def test_no_compiler_means_numpy_path(tmp_path):
    out = _probe({"CXX": str(tmp_path / "no-such-compiler"), "ACTIVATIONS_CACHE_DIR": str(tmp_path)})
    usable, why = out.splitlines()[:2]
    assert usable == "False" and "compiler" in why


def test_cache_directory_is_private(tmp_path):
    shared = tmp_path / "shared"
    (shared / "cpu").mkdir(parents=True)
    os.chmod(shared / "cpu", 0o777)
    assert N._private_dir(shared / "cpu") is None  # ours: tightened
    assert (os.stat(shared / "cpu").st_mode & 0o777) == 0o700
    lib = N._LIB
    assert lib is not None
    path = N.DETAIL.rsplit("; ", 1)[-1]
    assert (os.stat(path).st_mode & 0o077) == 0, "the library must not be readable by others"
