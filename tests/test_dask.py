"""The Dask backend: every kind through chunked Dask arrays against the NumPy backend.

Chunks are deliberately uneven and cut the rows, the gated halves and the
bias, so each code path (blockwise, gated pairs, the two-pass softmax) runs.
A real ``distributed`` cluster with worker processes checks that the graphs
pickle and compute away from this process.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
from dask.callbacks import Callback  # noqa: E402

import activations  # noqa: E402
from activations import _dtypes  # noqa: E402

try:  # the independent float64 oracle, where the test suite has it
    import reference as REF  # noqa: E402
except ImportError:
    try:
        from tests import reference as REF  # noqa: E402
    except ImportError:
        REF = None

DTYPES = [d for d in (_dtypes.FLOAT32, _dtypes.FLOAT64, _dtypes.FLOAT16, _dtypes.BFLOAT16) if d is not None]
TOL = {_dtypes.FLOAT16: 2e-3, _dtypes.FLOAT32: 4e-6, _dtypes.FLOAT64: 1e-13}
if _dtypes.BFLOAT16 is not None:
    TOL[_dtypes.BFLOAT16] = 1.6e-2

#: parameters where the defaults would not do (required ones) or would hide a path
PARAMS = {
    "threshold": dict(threshold=0.25, value=-2.0),
    "relu": dict(negative_slope=0.1, max_value=2.5, threshold=-0.5),
    "gelu": dict(approximate="tanh"),
    "softplus": dict(beta=2.0, threshold=5.0),
}
NAMES = activations.names()
ROWWISE = activations.names("rowwise")
GATED = activations.names("gated")


@pytest.fixture(autouse=True)
def _local_scheduler():
    # one thread: other tests share the machine, and the results do not depend on it
    with dask.config.set(scheduler="synchronous"):
        yield


def _x(shape, dtype, seed=0, specials=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3.0
    if specials and x.size >= 12:
        flat = x.reshape(-1)
        flat[[1, 4, 7, 10, 11]] = [0.0, np.nan, np.inf, -np.inf, 1.0]
    return x.astype(dtype)


def _dy(shape, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _close(actual, expected, dtype):
    actual = actual.compute() if isinstance(actual, da.Array) else actual
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype == dtype
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(
        actual.astype(np.float64), expected.astype(np.float64), rtol=tol, atol=tol, equal_nan=True
    )


def _shape_chunks(name):
    if name in GATED:
        return (6, 12), (4, 5)  # halves of both axes straddle chunk borders
    return (6, 10), (4, 3)


def _grads(g):
    return g if isinstance(g, tuple) else (g,)


# ------------------------------------------------------------ every kind
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_match_numpy(name, dtype):
    shape, chunks = _shape_chunks(name)
    params = PARAMS.get(name, {})
    x = _x(shape, dtype)
    dx = da.from_array(x, chunks=chunks)
    y = activations.apply(name, dx, **params)
    assert isinstance(y, da.Array)
    expected = activations.apply(name, x, **params)
    _close(y, expected, dtype)

    dy = _dy(expected.shape, dtype)
    g = activations.grad(name, dx, da.from_array(dy, chunks=2), **params)
    want = activations.grad(name, x, dy, **params)
    for a, e in zip(_grads(g), _grads(want)):
        _close(a, e, dtype)


@pytest.mark.parametrize("dtype", [_dtypes.FLOAT32, _dtypes.BFLOAT16 or _dtypes.FLOAT16], ids=lambda d: d.name)
@pytest.mark.parametrize("name", NAMES)
def test_bias_matches_numpy(name, dtype):
    shape, chunks = _shape_chunks(name)
    params = dict(PARAMS.get(name, {}))
    if name == "prelu":
        params["weight"] = np.linspace(-0.5, 0.5, shape[-1]).astype(dtype)
    x = _x(shape, dtype, specials=False)
    bias = _x(shape[-1:], dtype, seed=5, specials=False)
    dx = da.from_array(x, chunks=chunks)
    expected = activations.apply(name, x, bias=bias, **params)
    _close(activations.apply(name, dx, bias=bias, **params), expected, dtype)

    dy = _dy(expected.shape, dtype)
    g = activations.grad(name, dx, dy, bias=da.from_array(bias, chunks=4), **params)
    want = activations.grad(name, x, dy, bias=bias, **params)
    assert len(g) == len(want)
    for a, e in zip(g, want):
        _close(a, e, dtype)


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
@pytest.mark.parametrize("name", ROWWISE + GATED)
def test_any_axis_with_mask(name, axis):
    shape, chunks = _shape_chunks(name)
    dtype = _dtypes.FLOAT32
    x = _x(shape, dtype, specials=False)
    kw = dict(axis=axis)
    if name in ROWWISE:
        mask = np.random.default_rng(3).random(shape) > 0.3
        mask[2] = False  # a fully masked row along axis 1, a partly masked column along axis 0
        kw["where"] = mask
    dx = da.from_array(x, chunks=chunks)
    expected = activations.apply(name, x, **kw)
    _close(activations.apply(name, dx, **kw), expected, dtype)
    dy = _dy(expected.shape, dtype)
    _close(activations.grad(name, dx, dy, **kw), activations.grad(name, x, dy, **kw), dtype)


@pytest.mark.skipif(REF is None, reason="tests/reference.py (the float64 oracle) is not present")
@pytest.mark.parametrize("name", NAMES)
def test_against_reference(name):
    dtype = _dtypes.FLOAT32
    shape, chunks = _shape_chunks(name)
    params = PARAMS.get(name, {})
    x = _x(shape, dtype, specials=False)
    dx = da.from_array(x, chunks=chunks)
    expected = REF.forward(name, x, axis=-1, **params)
    REF.assert_close(activations.apply(name, dx, **params).compute(), expected, dtype, what=f"{name} through dask")
    out_shape = activations.apply(name, x, **params).shape
    dy = _dy(out_shape, dtype)
    expected = _grads(REF.backward(name, x, dy, axis=-1, **params))
    got = _grads(activations.grad(name, dx, dy, **params))
    assert len(got) == len(expected)
    for a, e in zip(got, expected):
        REF.assert_close(a.compute(), e, dtype, what=f"{name} backward through dask")


# ------------------------------------------------- row-wise over chunks
class _ChunkShapes(Callback):
    """Records the shape of every array a task returns."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def _posttask(self, key, result, dsk, state, worker_id):
        name = key[0] if isinstance(key, tuple) else key
        if hasattr(result, "shape") and not str(name).startswith("finalize"):  # the gathered result
            self.shapes.append(result.shape)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
@pytest.mark.parametrize("masked", [False, True])
def test_softmax_over_a_chunked_axis_never_gathers_a_row(name, masked):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((5, 1000)) * 20).astype(np.float32)  # wide range: the shift matters
    x[1, 700] = 200.0  # the row maximum sits in one chunk only
    x[3, :] = -np.inf
    x[3, 5] = 0.0  # all but one entry -inf: most chunks see nothing but -inf
    kw = {}
    if masked:
        kw["where"] = rng.random(x.shape) > 0.5
        kw["where"][4] = False
    dx = da.from_array(x, chunks=(2, 128))  # 8 chunks along the axis
    y = activations.apply(name, dx, **kw)
    assert y.chunks == dx.chunks
    dy = _dy(x.shape, np.float32)
    g = activations.grad(name, dx, da.from_array(dy, chunks=(2, 128)), **kw)
    rec = _ChunkShapes()
    with rec:
        y_val, g_val = dask.compute(y, g)
    widest = max(s[1] for s in rec.shapes if len(s) == 2)
    assert widest <= 128, f"a task produced a block {widest} wide: the row was gathered"
    # log_softmax cancels (z - max - log sum): its error scales with |z|, not with the result
    atol = 1e-6 * 200 if name == "log_softmax" else 1e-7
    np.testing.assert_allclose(y_val, activations.apply(name, x, **kw), rtol=2e-6, atol=atol, equal_nan=True)
    np.testing.assert_allclose(g_val, activations.grad(name, x, dy, **kw), rtol=2e-6, atol=1e-5, equal_nan=True)
    if name != "log_softmax" and not masked:
        finite = ~np.isnan(y_val).any(axis=1)  # softmin of the -inf row is NaN (+inf in the row)
        np.testing.assert_allclose(y_val[finite].sum(axis=1), 1.0, rtol=1e-5)


def test_sparsemax_rechunks_only_its_axis():
    x = _x((6, 40), _dtypes.FLOAT64, specials=False)
    dx = da.from_array(x, chunks=(2, 8))
    y = activations.apply("sparsemax", dx)
    assert y.chunks == ((2, 2, 2), (40,))
    _close(y, activations.apply("sparsemax", x), _dtypes.FLOAT64)


def test_rrelu_training_noise_follows_the_whole_array_index():
    x = _x((7, 9), _dtypes.FLOAT32, specials=False)
    params = dict(training=True, seed=11, lower=0.1, upper=0.6)
    dx = da.from_array(x, chunks=(3, 4))
    _close(activations.apply("rrelu", dx, **params), activations.apply("rrelu", x, **params), _dtypes.FLOAT32)
    dy = _dy(x.shape, _dtypes.FLOAT32)
    _close(activations.grad("rrelu", dx, dy, **params), activations.grad("rrelu", x, dy, **params), _dtypes.FLOAT32)


@pytest.mark.parametrize("weight", [0.3, "one", "column"])
def test_prelu_weight_gradients(weight):
    dtype = _dtypes.FLOAT32
    x = _x((6, 10), dtype, specials=False)
    w = {"one": np.array([0.3], dtype), "column": np.linspace(0, 1, 10).astype(dtype)}.get(weight, weight)
    bias = _x((10,), dtype, seed=9, specials=False)
    dy = _dy(x.shape, dtype)
    got = activations.grad("prelu", da.from_array(x, chunks=(4, 3)), dy, weight=w, bias=bias)
    want = activations.grad("prelu", x, dy, weight=w, bias=bias)
    for a, e in zip(got, want):
        _close(a, e, dtype)


def test_gated_along_an_unchunked_axis_keeps_one_task_per_chunk():
    x = _x((8, 12), _dtypes.FLOAT32)
    dx = da.from_array(x, chunks=(3, 12))
    y = activations.apply("swiglu", dx)
    assert y.chunks == ((3, 3, 2), (6,))
    _close(y, activations.apply("swiglu", x), _dtypes.FLOAT32)


CLAMPED = {"limit": 2.0, "offset": 1.0}


@pytest.mark.parametrize("layout", ["concat", "interleaved"])
@pytest.mark.parametrize("chunks", [(4, 5), (3, 4), (6, 24)], ids=["odd", "even", "whole"])
@pytest.mark.parametrize("name", GATED)
def test_gated_clamp_and_layout_match_numpy(name, chunks, layout):
    # interleaved pairs must not be cut: odd chunks along the axis are made even, even ones kept
    dtype = _dtypes.FLOAT32
    params = {**CLAMPED, "layout": layout, **({"alpha": 1.702} if name in ("glu", "swiglu") else {})}
    x = _x((6, 24), dtype)
    x[0, :4] = [2.0, -2.0, 2.5, -2.5]  # the bounds and beyond
    dx = da.from_array(x, chunks=chunks)
    bias = _x((24,), dtype, seed=5, specials=False)
    for axis in (-1, 0):
        kw = {**params, "axis": axis}
        y = activations.apply(name, dx, **kw)
        np.testing.assert_array_equal(y.compute(), activations.apply(name, x, **kw))
        dy = _dy(y.shape, dtype)
        g, gb = activations.grad(name, dx, da.from_array(dy, chunks=2), bias=bias, **kw)
        want, want_b = activations.grad(name, x, dy, bias=bias, **kw)
        np.testing.assert_array_equal(g.compute(), want)
        _close(gb, want_b, dtype)


# ---------------------------------------------------------------- API
@pytest.mark.parametrize("name", ["glu", "swiglu", "geglu", "reglu"])
def test_gated_grad_with_the_axis_in_one_chunk(name):
    # x spans axis in one chunk while dy is half as long there: the chunks must not be unified
    x = np.random.default_rng(3).normal(size=(64, 512)).astype(np.float32)
    dy = np.ones((64, 256), np.float32)
    bias = np.linspace(-1, 1, 512, dtype=np.float32)
    dx, dbias = activations.grad(name, da.from_array(x, chunks=(16, 512)), da.from_array(dy, chunks=(16, 256)), bias=bias)
    want_dx, want_dbias = activations.grad(name, x, dy, bias=bias)
    np.testing.assert_allclose(dx.compute(), want_dx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dbias.compute(), want_dbias, rtol=1e-5, atol=1e-5)


def test_results_are_lazy():
    def boom(block):
        raise AssertionError("computed while building the graph")

    dx = da.zeros((4, 6), chunks=(2, 3), dtype=np.float32).map_blocks(
        boom, dtype=np.float32, meta=np.empty((0, 0), np.float32)
    )
    dy = da.ones((4, 6), chunks=2, dtype=np.float32)
    for name in ("gelu", "softmax", "glu", "sparsemax", "prelu"):
        activations.apply(name, dx)
        activations.grad(name, dx, dy if name != "glu" else dy[:, :3], bias=np.zeros(6, np.float32))


def test_huge_array_builds_instantly():
    x = da.zeros((10**6, 10**6), chunks=(10**5, 10**5), dtype=np.float32)  # 4 TB, never computed
    assert activations.apply("softmax", x).shape == x.shape
    assert activations.apply("swiglu", x, axis=0).shape == (5 * 10**5, 10**6)


def test_out_is_refused():
    dx = da.ones((4,), chunks=2)
    with pytest.raises(ValueError, match="immutable"):
        activations.apply("tanh", dx, out=da.zeros((4,), chunks=2))
    with pytest.raises(ValueError, match="out"):
        activations.apply("tanh", dx, out=np.zeros(4))


def test_zero_d_and_empty():
    z = da.from_array(np.float32(-2.0))
    _close(activations.apply("gelu", z), activations.apply("gelu", np.asarray(-2.0, np.float32)), _dtypes.FLOAT32)
    e = da.zeros((0, 6), chunks=(1, 2), dtype=np.float32)
    assert activations.apply("softmax", e).compute().shape == (0, 6)
    assert activations.apply("glu", e).compute().shape == (0, 3)
    dx, dbias = activations.grad("gelu", e, e, bias=np.ones(6, np.float32))
    assert dx.compute().shape == (0, 6)
    np.testing.assert_array_equal(dbias.compute(), np.zeros(6, np.float32))


def test_forced_backend_and_environment(monkeypatch):
    x = np.linspace(-2, 2, 10)
    expected = activations.apply("tanh", x)
    y = activations.apply("tanh", x, backend="dask")
    assert isinstance(y, da.Array)
    _close(y, expected, _dtypes.FLOAT64)
    # the chunks name their own backend, so a global "dask" does not recurse
    monkeypatch.setenv("ACTIVATIONS_BACKEND", "dask")
    _close(activations.apply("tanh", da.from_array(x, chunks=3)), expected, _dtypes.FLOAT64)


def test_validation_errors_before_computing():
    dx = da.ones((4, 5), chunks=2, dtype=np.float32)
    with pytest.raises(ValueError, match="odd length"):
        activations.apply("glu", dx)
    with pytest.raises(TypeError):
        activations.apply("gelu", da.ones(3, chunks=2, dtype=bool))  # integer arrays become float64
    with pytest.raises(ValueError, match="bias"):
        activations.apply("gelu", dx, bias=np.ones(4, np.float32))
    x = da.ones(10, chunks=3)
    unknown = x[x > 0]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        activations.apply("gelu", unknown)


def test_broadcast_mask_and_chunked_dy():
    x = _x((6, 10), _dtypes.FLOAT64, specials=False)
    mask = np.arange(10) % 3 != 0  # broadcast along the rows
    dx = da.from_array(x, chunks=(4, 3))
    _close(activations.apply("softmax", dx, where=mask), activations.apply("softmax", x, where=mask), _dtypes.FLOAT64)
    dy = _dy(x.shape, _dtypes.FLOAT64)
    got = activations.grad("log_softmax", dx, da.from_array(dy, chunks=(1, 7)), where=da.from_array(mask, chunks=4))
    _close(got, activations.grad("log_softmax", x, dy, where=mask), _dtypes.FLOAT64)


# --------------------------------------------------- a real cluster
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # port and resource notices of a local cluster
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
        c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def test_distributed_workers_compute_apply_and_grad(client):
    pids = client.run(lambda: __import__("os").getpid())
    assert len(set(pids.values())) == 2
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 300)).astype(np.float32)
    mask = rng.random(x.shape) > 0.2
    bias = rng.standard_normal(300).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    dx = da.from_array(x, chunks=(16, 64))
    lazy = {
        "gelu": activations.apply("gelu", dx, bias=bias),
        "gelu_grad": activations.grad("gelu", dx, dy, bias=bias),
        "softmax": activations.apply("softmax", dx, where=mask),
        "softmax_grad": activations.grad("softmax", dx, dy, where=mask),
        "swiglu_grad": activations.grad("swiglu", dx, dy[:, :150]),
        "rrelu": activations.apply("rrelu", dx, training=True, seed=4),
    }
    got = client.gather(client.compute(lazy))
    np.testing.assert_allclose(got["gelu"], activations.apply("gelu", x, bias=bias), rtol=1e-6)
    for a, e in zip(got["gelu_grad"], activations.grad("gelu", x, dy, bias=bias)):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["softmax"], activations.apply("softmax", x, where=mask), rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(
        got["softmax_grad"], activations.grad("softmax", x, dy, where=mask), rtol=2e-6, atol=1e-6
    )
    np.testing.assert_allclose(got["swiglu_grad"], activations.grad("swiglu", x, dy[:, :150]), rtol=1e-6)
    # the slope may be rounded once or twice (float64 then float32): an ulp apart
    np.testing.assert_allclose(got["rrelu"], activations.apply("rrelu", x, training=True, seed=4), rtol=1e-6)


# ------------------------------------------------------------ CuPy chunks
@pytest.mark.gpu
@pytest.mark.parametrize("name", ["gelu", "softmax", "log_softmax", "swiglu", "sparsemax", "prelu"])
def test_cupy_chunks_run_the_cuda_backend(name):
    cp = pytest.importorskip("cupy")
    dtype = _dtypes.FLOAT32
    shape, chunks = _shape_chunks(name)
    x = _x(shape, dtype, specials=False)
    dx = da.from_array(cp.asarray(x), chunks=chunks, asarray=False)
    y = activations.apply(name, dx)
    assert type(y._meta).__module__.startswith("cupy")
    expected = activations.apply(name, x)
    _close(cp.asnumpy(y.compute()), expected, dtype)
    dy = _dy(expected.shape, dtype)
    g = activations.grad(name, dx, da.from_array(cp.asarray(dy), chunks=3, asarray=False))
    want = activations.grad(name, x, dy)
    for a, e in zip(_grads(g), _grads(want)):
        _close(cp.asnumpy(a.compute()), e, dtype)
