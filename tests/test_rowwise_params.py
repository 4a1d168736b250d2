"""The row-wise parameters and sparse maps on every backend: the softmax family's temperature= and
quiet=, and entmax15, against tests/reference.py (float64, written apart from the package).

Each test runs on the CPU engine, its NumPy fallback, the CUDA C kernels through the CPU harness
(tests/cuda_host), the Numba kernels (on the CUDA simulator when there is no GPU) and Dask (a
chunked row axis, so the two-pass softmax runs), with masks, fully masked rows, special rows and
any axis.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import activations
import reference as R
from conftest import _engine_installed, use_cpu_path

# the Numba simulator evaluates NaN rows (inf - inf) and overflowing spreads in Python scalars, which warn
pytestmark = [pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")]

TEMPERED = ("softmax", "log_softmax", "softmin")
#: (temperature, quiet): each alone, both, and the defaults' neighbours
SETTINGS = [(0.5, False), (3.0, False), (1.0, True), (0.25, True), (7.5, True)]
SETTING_IDS = [f"T{t}{'-quiet' if q else ''}" for t, q in SETTINGS]
BACKENDS = ("engine", "fallback", "cuda_host", "numba", "dask")
SIM = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


# --------------------------------------------------------------- backends
class Runner:
    """apply/grad of one backend on NumPy inputs, NumPy results."""

    def __init__(self, name: str, backend: str | None = "numpy", to=None, back=None, masks_too: bool = False):
        self.name, self.backend = name, backend
        self.to = to or (lambda a: a)
        self.back = back or (lambda a: a)
        self.masks_too = masks_too  # where= goes to the device as well

    def _kw(self, kw):
        if self.masks_too and kw.get("where") is not None:
            kw = dict(kw, where=self.to(np.asarray(kw["where"])))
        return kw

    def apply(self, act, x, **kw):
        return self.back(activations.apply(act, self.to(x), backend=self.backend, **self._kw(kw)))

    def grad(self, act, x, dy, **kw):
        return self.back(activations.grad(act, self.to(x), self.to(dy), backend=self.backend, **self._kw(kw)))


@pytest.fixture(scope="session")
def host_library():
    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler for the CUDA host harness")
    from cuda_host import harness

    return harness.HostLibrary(harness.build())


@pytest.fixture(params=BACKENDS)
def run(request, monkeypatch) -> Runner:
    name = request.param
    if name == "engine":
        if not _engine_installed():
            pytest.skip("the compiled CPU engine is not installed")
        use_cpu_path("engine", monkeypatch)
        yield Runner(name)
    elif name == "fallback":
        use_cpu_path("fallback", monkeypatch)
        yield Runner(name)
    elif name == "cuda_host":
        from cuda_host import harness

        lib = request.getfixturevalue("host_library")
        with harness.registered(harness.HostBackend(harness.HostLauncher(lib))):
            yield Runner(name, "cuda_host")
    elif name == "numba":
        if not SIM:
            try:
                from numba import cuda

                if not cuda.is_available():
                    pytest.skip("no GPU and NUMBA_ENABLE_CUDASIM is not set")
            except Exception:
                pytest.skip("numba is not installed")
        from numba import cuda

        yield Runner(name, "numba", to=lambda a: cuda.to_device(np.ascontiguousarray(a)),
                     back=lambda a: a.copy_to_host(), masks_too=True)
    else:
        da = pytest.importorskip("dask.array")

        def chunked(a):  # every axis in (up to) 3 chunks: rows are split across chunks
            return da.from_array(np.asarray(a), chunks=tuple(max(1, -(-s // 3)) for s in np.shape(a)))

        use_cpu_path("fallback" if not _engine_installed() else "engine", monkeypatch)
        yield Runner(name, None, to=chunked, back=lambda a: np.asarray(a.compute()))


def dtypes_of(run: Runner):
    # the simulator has no bfloat16 bit casts (test_numba_sim.py); the other backends take all four
    return [d for d in R.DTYPES if not (run.name == "numba" and SIM and d == R.BFLOAT16)]


def slow(run: Runner) -> bool:
    """The Numba simulator runs a Python thread per CUDA thread: it gets fewer cases."""
    return run.name == "numba" and SIM


def small(run: Runner, n: int) -> int:
    """Row lengths for the simulator (a Python thread per CUDA thread) stay small."""
    return min(n, 40) if run.name == "numba" and SIM else n


def check(run, name, x, dtype, what, rng, axis=-1, where=None, **params):
    kw = dict(params)
    if where is not None:
        kw["where"] = where
    y = run.apply(name, x, axis=axis, **kw)
    assert y.dtype == x.dtype and y.shape == x.shape, f"{name} {what}: {y.shape} {y.dtype}"
    R.assert_close(y, R.forward(name, x, axis=axis, **kw), dtype, what=f"{run.name} forward, {what}, {params}")
    dy = R.random_cotangent(rng, x.shape, dtype)
    dx = run.grad(name, x, dy, axis=axis, **kw)
    assert dx.dtype == x.dtype and dx.shape == x.shape
    R.assert_close(dx, R.backward(name, x, dy, axis=axis, **kw), dtype, what=f"{run.name} backward, {what}, {params}")
    return y, dx


# ---------------------------------------------------- temperature and quiet
@pytest.mark.parametrize("setting", SETTINGS, ids=SETTING_IDS)
@pytest.mark.parametrize("name", TEMPERED)
def test_tempered_rows(name, setting, run, rng):
    t, q = setting
    # the simulator: one dtype per setting, in turn
    dtypes = dtypes_of(run)[SETTINGS.index(setting) % 3::3] if slow(run) else dtypes_of(run)
    for dtype in dtypes:
        for n in (3, 33) if slow(run) else (1, 3, 33, 300):
            x = R.random_inputs(rng, (4, n), name, dtype)
            check(run, name, x, dtype, f"rows of {n}", rng, temperature=t, quiet=q)
        cube = R.random_inputs(rng, (3, 5, 4), name, dtype)
        for axis in (0, -1) if slow(run) else (0, 1, -1):
            mask = rng.random(cube.shape) < 0.7
            mask[0, :, 0] = mask[:, 0, 1] = mask[1, 2, :] = False  # fully masked rows, whatever the axis
            check(run, name, cube, dtype, f"3-D, axis {axis}, mask", rng, axis=axis, where=mask, temperature=t, quiet=q)


@pytest.mark.parametrize("setting", SETTINGS, ids=SETTING_IDS)
@pytest.mark.parametrize("name", TEMPERED)
def test_tempered_kernel_paths(name, setting, run, rng):
    # the CUDA paths on the host harness (16 KiB of shared memory): warp (up to 1024), block with
    # 16-byte packs (1536: float32 and float64 forward, float32 backward), block one element at a
    # time (1501), long (5000, packed) and column (rows 40 apart)
    if run.name == "numba" and SIM:
        pytest.skip("long rows on the simulator: covered by test_tempered_rows")
    t, q = setting
    for dtype in (R.F16, R.BFLOAT16, R.F32, R.F64):
        for shape, axis in (((2, 1024), -1), ((2, 1536), -1), ((2, 1501), -1), ((2, 5000), -1), ((7, 40), 0)):
            x = R.random_inputs(rng, shape, name, dtype)
            check(run, name, x, dtype, f"{shape} axis {axis}", rng, axis=axis, temperature=t, quiet=q)


#: (the rows' largest magnitude b, a temperature < 1 with b / T past the compute precision's range)
#: per dtype (16-bit rows compute in float32)
OVERFLOWING = {R.F16: (60000.0, 1e-37), R.BFLOAT16: (3e38, 0.5), R.F32: (3e38, 0.5), R.F64: (1.5e308, 1e-10)}
#: row patterns in units of b: ties at the top, a spread of 2b (beyond the range in bfloat16, float32
#: and float64), the max before and after smaller values (the online merges rescale both ways)
PEAKED = (1.0, 1.0, 0.5, -1.0, 0.0, -0.5, 0.25, 1.0)
SUNKEN = (-1.0, -0.5, -0.75, -1.0, -0.5, -1.0)


@pytest.mark.parametrize("quiet", (False, True), ids=("plain", "quiet"))
@pytest.mark.parametrize("name", TEMPERED)
def test_temperature_shifts_before_dividing(name, quiet, run, rng):
    # (x - max) / T: finite rows whose x / T overflows keep their finite softmax (x / T first gave
    # inf - inf, a NaN row), on every kernel path: warp, packed and element-wise block, long, column
    sign = -1.0 if name == "softmin" else 1.0
    shapes = (((2, 8), -1), ((6, 4), 0)) if slow(run) else (
        ((2, 8), -1), ((2, 1024), -1), ((2, 1536), -1), ((2, 1501), -1), ((2, 5000), -1), ((12, 40), 0))
    for dtype in dtypes_of(run):
        b, tiny = OVERFLOWING[dtype]
        for t in (tiny, 4.0):  # 4: the spread 2b / T is finite, (x - max) alone overflows
            for shape, axis in shapes:
                n = shape[axis]
                pattern = np.stack([np.resize(PEAKED, n), np.resize(SUNKEN, n)])
                # rows along axis 0: column j is pattern j % 2
                layout = pattern if axis == -1 else np.tile(pattern.T, (1, shape[1] // 2))
                x = R.cast(sign * b * layout, dtype)
                what = f"|x| {b:g}, T {t:g}, {x.shape} axis {axis}"
                y, dx = check(run, name, x, dtype, what, rng, axis=axis, temperature=t, quiet=quiet)
                y64 = y.astype(np.float64)
                assert not np.isnan(y64).any() and not np.isnan(dx.astype(np.float64)).any(), f"{name} {what}"
                if name != "log_softmax":
                    # the ties at the top share the row; in the quiet form the implicit 0 takes a
                    # row below 0 whole
                    v = np.moveaxis(layout, axis, -1)
                    ties = v == v.max(axis=-1, keepdims=True)
                    want = ties / ties.sum(axis=-1, keepdims=True)
                    if quiet:
                        want[v.max(axis=-1) < 0] = 0.0
                    np.testing.assert_allclose(np.moveaxis(y64, axis, -1), want, rtol=4 * R.tolerance(dtype)[0],
                                               atol=0, err_msg=f"{run.name} {name} {what}")


def test_temperature_documented_overflows(run):
    # docs/semantics.md's examples: finite rows, correct values
    x32 = np.array([3e38, 3e38 - 1e32], np.float32)
    np.testing.assert_array_equal(run.apply("softmax", x32, temperature=0.5), [1.0, 0.0])
    np.testing.assert_array_equal(run.apply("softmax", np.array([1e300, 1e300]), temperature=1e-10), [0.5, 0.5])
    np.testing.assert_allclose(run.apply("log_softmax", np.array([1e300, 1e300]), temperature=1e-10),
                               [-np.log(2.0)] * 2, rtol=1e-15)
    # the spread 2b beyond float64, (x - max) / T finite for T = 4
    np.testing.assert_allclose(run.apply("log_softmax", np.array([1.5e308, -1.5e308]), temperature=4.0),
                               [0.0, -0.75e308], rtol=1e-15)
    np.testing.assert_allclose(run.apply("log_softmax", np.array([1.5e308, -1.5e308]), temperature=4.0, quiet=True),
                               [0.0, -0.75e308], rtol=1e-15)


@pytest.mark.parametrize("name", TEMPERED)
def test_quiet_special_rows(name, run):
    rows = [
        [-np.inf] * 4,  # the implicit logit alone: 0s, not NaN
        [1000.0, 999.0, -1000.0, 0.0],  # large logits: the shift is the max
        [-1000.0, -999.0, -998.0, -1e4],  # everything far below the implicit 0: tiny outputs
        [0.0, 0.0, 0.0, 0.0],  # ties with the implicit logit
        [1.0, np.nan, 2.0, 0.5],  # NaN still poisons the row
        [2.0, np.inf, 0.0, 0.0],  # +inf too
    ]
    sign = -1.0 if name == "softmin" else 1.0
    for dtype in dtypes_of(run):
        x = R.cast(sign * np.array(rows), dtype)
        y = run.apply(name, x, quiet=True)
        R.assert_close(y, R.forward(name, x, quiet=True), dtype, what=f"{run.name} quiet special rows")
        dy = R.cast(np.tile([1.0, -0.5, 0.25, 2.0], (len(rows), 1)), dtype)
        dx = run.grad(name, x, dy, quiet=True)
        R.assert_close(dx, R.backward(name, x, dy, quiet=True), dtype, what=f"{run.name} quiet special rows, dx")
        y64, dx64 = y.astype(np.float64), dx.astype(np.float64)
        rtol = R.tolerance(dtype)[0]
        if name == "log_softmax":
            assert (y64[0] == -np.inf).all()
            np.testing.assert_allclose(y64[3], np.log(0.2), rtol=4 * rtol)
        else:
            assert (y64[0] == 0).all()
            np.testing.assert_allclose(y64[3], 0.2, rtol=4 * rtol)
        assert np.isfinite(dx64[:4]).all()
        if name != "log_softmax":  # log_softmax's dx there is dy: log y_i = x_i - log(1 + ...)
            assert (dx64[0] == 0).all()
        assert np.isnan(y64[4:]).all()
        # a fully masked row: 0 and dx 0, with or without quiet
        mask = np.ones(x.shape, bool)
        mask[1] = False
        ym = run.apply(name, x[:4], where=mask[:4], quiet=True).astype(np.float64)
        dm = run.grad(name, x[:4], dy[:4], where=mask[:4], quiet=True).astype(np.float64)
        assert (ym[1] == 0).all() and (dm[1] == 0).all()


def test_quiet_and_temperature_values(run):
    # exp(x_i) / (1 + sum exp(x_j)): [0, 0] gives 1/3 each; log form -log 3
    x = np.array([[0.0, 0.0], [np.log(2.0), np.log(3.0)]])
    y = run.apply("softmax", x, quiet=True)
    np.testing.assert_allclose(y, [[1 / 3, 1 / 3], [2 / 6, 3 / 6]], rtol=1e-14)
    np.testing.assert_allclose(run.apply("log_softmax", x, quiet=True), np.log([[1 / 3, 1 / 3], [2 / 6, 3 / 6]]),
                               rtol=1e-14)
    np.testing.assert_allclose(run.apply("softmin", -x, quiet=True), y, rtol=1e-14)
    # temperature: softmax(x / T); T = 2 on [0, 2 log 3] gives [1/4, 3/4]
    z = np.array([0.0, 2.0 * np.log(3.0)])
    np.testing.assert_allclose(run.apply("softmax", z, temperature=2.0), [0.25, 0.75], rtol=1e-14)
    np.testing.assert_allclose(run.apply("softmin", -z, temperature=2.0), [0.25, 0.75], rtol=1e-14)
    # dx = dz / T: with T = 2 half the gradient of softmax at x / T
    dy = np.array([1.0, -2.0])
    np.testing.assert_allclose(run.grad("softmax", z, dy, temperature=2.0),
                               run.grad("softmax", z / 2.0, dy) / 2.0, rtol=1e-14)


@pytest.mark.parametrize("setting", SETTINGS, ids=SETTING_IDS)
@pytest.mark.parametrize("name", TEMPERED)
def test_tempered_backward_matches_differences(name, setting, run, rng):
    t, q = setting
    x = rng.normal(0, 2, (4, 7))
    mask = rng.random(x.shape) < 0.8
    mask[2] = False
    for axis in (-1, 0):
        dy = rng.normal(0, 1, x.shape)
        v = rng.normal(0, 1, x.shape)
        h = 1e-6
        kw = dict(axis=axis, where=mask, temperature=t, quiet=q)
        fp = run.apply(name, x + h * v, **kw)
        fm = run.apply(name, x - h * v, **kw)
        fd = float(((fp - fm) / (2 * h) * dy * mask).sum())
        an = float((run.grad(name, x, dy, **kw) * v).sum())
        assert an == pytest.approx(fd, rel=1e-6, abs=1e-8), f"{name} {setting} axis {axis}: {an} vs {fd}"


@pytest.mark.parametrize("name", TEMPERED)
def test_tempered_parameters_are_validated(name):
    x = np.zeros((2, 3), np.float32)
    for bad in (0.0, -1.0, np.inf, np.nan, 1e-39, 1e39):
        with pytest.raises(ValueError, match="temperature"):
            activations.apply(name, x, temperature=bad)
    for bad in ("2", None, [1.0]):
        with pytest.raises(TypeError, match="temperature"):
            activations.apply(name, x, temperature=bad)
    with pytest.raises(TypeError, match="quiet"):
        activations.apply(name, x, quiet="yes")
    out = np.full(x.shape, 7.0, np.float32)
    with pytest.raises(ValueError, match="temperature"):
        activations.apply(name, x, temperature=0.0, out=out)
    assert (out == 7.0).all(), "out= written before the parameter check"
    assert "temperature" in activations.describe(name) and "quiet" in activations.describe(name)


# ------------------------------------------------------------------ entmax15
def test_entmax15_reference_against_scipy():
    # the oracle's tau against a root finder on f(tau) = sum max(u - tau, 0)^2 - 1
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(15)
    for n in (1, 2, 5, 50, 500):
        for scale in (0.1, 1.0, 10.0):
            z = rng.normal(0, scale, n)
            y, tau = R.entmax15_row(z)
            u = (z - z.max()) / 2.0
            want = optimize.brentq(lambda t: (np.maximum(u - t, 0.0) ** 2).sum() - 1.0, -1.0, 0.0, xtol=1e-300,
                                   rtol=4 * np.finfo(float).eps)
            assert tau == pytest.approx(want, rel=1e-13, abs=1e-15)
            assert y.sum() == pytest.approx(1.0, rel=1e-13)


ENTMAX15_EXAMPLES = [
    # u = (x - max) / 2 = [-1, -0.5, 0, -2]; support {-0.5, 0}: 2 tau^2 + tau - 3/4 = 0, tau = -(1 + sqrt 7) / 4
    ([1.0, 2.0, 3.0, -1.0], [0.0, ((np.sqrt(7.0) - 1) / 4) ** 2, ((np.sqrt(7.0) + 1) / 4) ** 2, 0.0]),
    ([2.5, 2.5, 2.5, 2.5], [0.25] * 4),  # uniform: tau = -1 / sqrt(n)
    ([0.0, -np.inf, 5.0], [0.0, 0.0, 1.0]),  # gap of 2 or more: one-hot
    ([3.0, 3.0, 1.0], [0.5, 0.5, 0.0]),  # ties; u = -1 is exactly at tau = -1/sqrt2 - ... below it
    ([1e4, 1e4 - 1.0, -1e4], [((np.sqrt(7.0) + 1) / 4) ** 2, ((np.sqrt(7.0) - 1) / 4) ** 2, 0.0]),  # large magnitudes
]


@pytest.mark.parametrize("x,want", ENTMAX15_EXAMPLES, ids=[str(e[0]) for e in ENTMAX15_EXAMPLES])
def test_entmax15_examples(x, want, run):
    for dtype in (R.F32, R.F64):
        y = run.apply("entmax15", np.array(x, dtype))
        rtol = 1e-6 if dtype == R.F32 else 1e-13
        np.testing.assert_allclose(y, want, rtol=rtol, atol=rtol / 10, err_msg=f"entmax15({x}) {dtype}")
    np.testing.assert_allclose(R.forward("entmax15", np.array(x)), want, rtol=1e-14, atol=1e-15)


def test_entmax15_rows(run, rng):
    for dtype in dtypes_of(run):
        for n in (2, 33) if slow(run) else (1, 2, 3, 33, 300):
            x = R.random_inputs(rng, (4, n), "entmax15", dtype)
            check(run, "entmax15", x, dtype, f"rows of {n}", rng)
        for scale in (0.05, 30.0):  # dense and one-hot-like supports
            x = R.cast(rng.normal(0, scale, (3, small(run, 50))), dtype)
            check(run, "entmax15", x, dtype, f"scale {scale}", rng)
        cube = R.random_inputs(rng, (3, 5, 4), "entmax15", dtype)
        for axis in (0, 1, -1):
            mask = rng.random(cube.shape) < 0.7
            mask[0, :, 0] = mask[:, 0, 1] = mask[1, 2, :] = False  # fully masked rows, whatever the axis
            y, dx = check(run, "entmax15", cube, dtype, f"3-D, axis {axis}, mask", rng, axis=axis, where=mask)
            assert (y.astype(np.float64)[~mask] == 0).all() and (dx.astype(np.float64)[~mask] == 0).all()


def test_entmax15_kernel_paths(run, rng):
    # block (rows in shared memory) and long (beyond the host harness's 16 KiB), any axis
    if run.name == "numba" and SIM:
        pytest.skip("long rows on the simulator: covered by test_entmax15_rows")
    for dtype in (R.F16, R.BFLOAT16, R.F32, R.F64):
        for shape, axis in (((2, 1024), -1), ((2, 1501), -1), ((2, 5000), -1), ((7, 40), 0)):
            x = R.random_inputs(rng, shape, "entmax15", dtype)
            check(run, "entmax15", x, dtype, f"{shape} axis {axis}", rng, axis=axis)


def test_entmax15_special_rows(run):
    rows = [
        [1.0, np.inf, 2.0, 0.5],  # +inf: NaN row
        [-np.inf] * 4,  # nothing but -inf: NaN row
        [1.0, np.nan, 2.0, 0.5],  # NaN: NaN row
        [0.0, -np.inf, 1.0, -np.inf],  # some -inf: they drop out
        [3.0, 3.0, 3.0, 3.0],  # ties
        [60000.0, -60000.0, 0.0, 60000.0],  # large magnitudes
    ]
    for dtype in dtypes_of(run):
        x = R.cast(rows, dtype)
        y = run.apply("entmax15", x)
        R.assert_close(y, R.forward("entmax15", x), dtype, what=f"{run.name} special rows")
        dy = R.cast(np.tile([1.0, -0.5, 0.25, 2.0], (len(rows), 1)), dtype)
        dx = run.grad("entmax15", x, dy)
        R.assert_close(dx, R.backward("entmax15", x, dy), dtype, what=f"{run.name} special rows, dx")
        y64 = y.astype(np.float64)
        assert np.isnan(y64[:3]).all()
        assert y64[3, 1] == 0 and y64[3, 3] == 0
        # fully masked rows: all 0 with finite (0) gradients, even over -inf and NaN entries
        mask = np.zeros(x.shape, bool)
        ym = run.apply("entmax15", x, where=mask).astype(np.float64)
        dm = run.grad("entmax15", x, dy, where=mask).astype(np.float64)
        assert (ym == 0).all() and (dm == 0).all()


def test_entmax15_backward_matches_differences(run, rng):
    x = rng.normal(0, 1, (5, 8))
    mask = rng.random(x.shape) < 0.8
    mask[2] = False
    for axis in (-1, 0):
        dy = rng.normal(0, 1, x.shape)
        v = rng.normal(0, 1, x.shape)
        h = 1e-6
        kw = dict(axis=axis, where=mask)
        fp = run.apply("entmax15", x + h * v, **kw)
        fm = run.apply("entmax15", x - h * v, **kw)
        fd = float(((fp - fm) / (2 * h) * dy).sum())
        an = float((run.grad("entmax15", x, dy, **kw) * v).sum())
        assert an == pytest.approx(fd, rel=1e-6, abs=1e-8), f"axis {axis}: {an} vs {fd}"


def test_entmax15_against_the_entmax_package(run, rng):
    torch = pytest.importorskip("torch")
    entmax = pytest.importorskip("entmax")
    x = rng.normal(0, 2, (6, 40))
    dy = rng.normal(0, 1, x.shape)
    t = torch.tensor(x, requires_grad=True)
    ref = entmax.entmax15(t, dim=-1)
    ref.backward(torch.tensor(dy))
    np.testing.assert_allclose(run.apply("entmax15", x), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(run.grad("entmax15", x, dy), t.grad.numpy(), rtol=1e-9, atol=1e-11)


# -------------------------------------------------------------- the wrappers
WRAPPED = [("softmax", dict(temperature=0.7)), ("log_softmax", dict(temperature=2.0, quiet=True)),
           ("softmin", dict(quiet=True)), ("entmax15", {})]


@pytest.mark.parametrize("name,params", WRAPPED, ids=[n for n, _ in WRAPPED])
def test_torch_autograd(name, params):
    torch = pytest.importorskip("torch")
    import activations.torch as at

    rng = np.random.default_rng(3)
    x = torch.tensor(rng.normal(0, 1.5, (4, 6)), requires_grad=True)
    mask = torch.tensor(rng.random((4, 6)) < 0.8)
    mask[1] = False  # a fully masked row: 0 and finite gradients
    assert torch.autograd.gradcheck(lambda t: at.apply(name, t, where=mask, **params), (x,))
    y = at.apply(name, x, axis=0, where=mask, **params)
    R.assert_close(y.detach().numpy(), R.forward(name, x.detach().numpy(), axis=0, where=mask.numpy(), **params),
                   R.F64, what=f"torch {name}")
    dy = torch.tensor(rng.normal(0, 1, (4, 6)))
    (g,) = torch.autograd.grad(y, x, dy)
    R.assert_close(g.numpy(), R.backward(name, x.detach().numpy(), dy.numpy(), axis=0, where=mask.numpy(), **params),
                   R.F64, what=f"torch {name} grad")
    assert torch.isfinite(g).all()
    if name == "entmax15":
        m = at.Entmax15(dim=0)
        torch.testing.assert_close(m(x.detach()), at.apply("entmax15", x.detach(), axis=0))
    else:
        m = at.Activation(name, axis=0, **params)
        torch.testing.assert_close(m(x.detach()), at.apply(name, x.detach(), axis=0, **params))


@pytest.mark.parametrize("name,params", WRAPPED, ids=[n for n, _ in WRAPPED])
def test_jax_grad(name, params):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import activations.jax as aj

    rng = np.random.default_rng(4)
    x = rng.normal(0, 1.5, (5, 4))
    mask = rng.random((5, 4)) < 0.8
    mask[:, 2] = False  # fully masked along axis 0
    dy = rng.normal(0, 1, (5, 4))
    f = jax.jit(lambda t: (aj.apply(name, t, axis=0, where=jnp.asarray(mask), **params) * dy).sum())
    g = np.asarray(jax.grad(f)(jnp.asarray(x)))
    R.assert_close(g, R.backward(name, x, dy, axis=0, where=mask, **params), R.F64, what=f"jax {name} grad")
    y = np.asarray(aj.apply(name, jnp.asarray(x), axis=0, where=jnp.asarray(mask), **params))
    R.assert_close(y, R.forward(name, x, axis=0, where=mask, **params), R.F64, what=f"jax {name}")
