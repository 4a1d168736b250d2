"""The CUDA C kernels, executed on the CPU by the C++ harness (tests/cuda_host), against reference.py.

The calls go through the public interface (``activations.apply/grad`` with ``backend="cuda_host"``)
into the package's own launch layer (``activations.backends.cuda.ops``): the argument packing,
launch shapes and path choices the CuPy backend uses on a GPU, with a pretend device
(``harness.HOST_DEVICE``: few SMs, 256-thread blocks, 16 KiB of shared memory) that makes grids
loop and rows leave shared memory early.  Every kernel entry point runs here: each elementwise
activation on the 16-byte vector path, the scalar path (misaligned data) and the tail, with bias,
prelu weights and rrelu training; the gated kernels on every axis; every row-wise path (each warp
shape, block, long, column) with masks; the column sums behind dbias and dweight.
"""
from __future__ import annotations

import math
import os
import shutil

import numpy as np
import pytest

import activations
import reference
from activations.backends.cuda import ops as _cuda_ops, source as _cuda_source
from cuda_host import harness

# one worker runs the whole module under pytest-xdist (--dist loadgroup): the last test counts the
# entry points the others launched in this process
pytestmark = [pytest.mark.cuda_host, pytest.mark.xdist_group("cuda_host")]

DTYPES = reference.DTYPES
DTYPE_IDS = [d.name for d in DTYPES]


@pytest.fixture(scope="session")
def library() -> harness.HostLibrary:
    if shutil.which(harness.CXX) is None:
        pytest.skip(f"no C++ compiler ({harness.CXX})")
    return harness.HostLibrary(harness.build())


@pytest.fixture(scope="module")
def host(library):
    with harness.registered(harness.HostBackend(harness.HostLauncher(library))) as backend:
        yield backend


def run(name, x, **kw):
    return activations.apply(name, x, backend="cuda_host", **kw)


def run_grad(name, x, dy, **kw):
    return activations.grad(name, x, dy, backend="cuda_host", **kw)


def last_launch(host) -> str:
    return host.launcher.launches[-1].name


def placed(values: np.ndarray, offset_items: int = 0) -> np.ndarray:
    """A copy of ``values`` whose data starts ``offset_items`` elements past a 16-byte boundary."""
    values = np.ascontiguousarray(values)
    size = values.dtype.itemsize
    raw = np.zeros(values.nbytes + 32 + offset_items * size, np.uint8)
    start = (-raw.ctypes.data) % 16 + offset_items * size
    out = raw[start:start + values.nbytes].view(values.dtype).reshape(values.shape)
    out[...] = values
    return out


# ------------------------------------------------------------- the harness
def test_every_entry_point_is_built(library):
    expected = {e for mod in _cuda_source.all_modules() for e in mod.entries()}
    built = set(library.entries())
    assert expected <= built
    assert {e for e in built if not e.startswith("shim_")} == expected


def test_argument_packing_is_checked_against_the_signature(library):
    x = np.ones(4, np.float32)
    with pytest.raises(TypeError, match="do not match the signature"):
        library.launch("act_relu_fwd_f32", (1,), (32,), (x, x, None, None, np.int32(4)))
    assert library.signature("act_relu_fwd_f32") == "ppppqqqfffQ"
    assert library.signature("act_softmax_bwd_warp4x32_f64") == "pppp" + "qqq" + "dd"  # + temperature, quiet


def test_shim_shuffles_follow_cuda_width_rules(library):
    out = np.zeros(4 * 64, np.int32)
    library.launch("shim_shuffles", (1,), (64,), (out,))
    got = out.reshape(64, 4) - 100
    lane = np.arange(64)
    seg = lane & ~7
    np.testing.assert_array_equal(got[:, 0], seg + 3)
    np.testing.assert_array_equal(got[:, 1], seg + ((lane & 7) ^ 5))
    np.testing.assert_array_equal(got[:, 2], np.where((lane & 7) + 3 < 8, lane + 3, lane))
    np.testing.assert_array_equal(got[:, 3], np.where((lane & 7) >= 3, lane - 3, lane))


def test_shim_dynamic_shared_memory(library):
    x = np.arange(3 * 64, dtype=np.float32)
    out = np.zeros_like(x)
    library.launch("shim_dynamic_smem", (3,), (64,), (x, out), shared_mem=64 * 4)
    np.testing.assert_array_equal(out, x.reshape(3, 64)[:, ::-1].reshape(-1))


def test_shim_reports_divergent_barriers(library):
    with pytest.raises(RuntimeError, match="deadlock"):
        library.launch("shim_divergent_barrier", (1,), (64,), ())


def test_shim_reports_shuffles_with_exited_lanes(library):
    with pytest.raises(RuntimeError, match="exited"):
        library.launch("shim_shuffle_after_exit", (1,), (32,), (np.zeros(32, np.float32),))


def test_shim_lets_exited_threads_skip_barriers(library):
    out = np.zeros(64, np.int32)
    library.launch("shim_early_exit", (1,), (64,), (out,))
    assert (out[:40] == 40).all() and (out[40:] == 0).all()


# ------------------------------------------------------------- elementwise
#: parameter sets per activation: the defaults (or the required values) first
PARAMS: dict[str, list[dict]] = {
    "relu": [{}, {"negative_slope": 0.1, "max_value": 6.0, "threshold": -0.5}, {"threshold": 7.0}],
    "leaky_relu": [{}, {"negative_slope": 1.5}, {"negative_slope": 0.0}],
    "prelu": [{}, {"weight": 0.0}],
    "rrelu": [{}, {"training": True, "seed": 12345}, {"training": True, "seed": 2**64 - 1, "lower": 0.0, "upper": 0.5}],
    "elu": [{}, {"alpha": 0.5}],
    "celu": [{}, {"alpha": 0.3}],
    "gelu": [{}, {"approximate": "tanh"}],
    "hard_sigmoid": [{}, {"slope": 0.2, "offset": 0.3}],
    "softplus": [{}, {"beta": 2.0, "threshold": 20.0}],
    "hard_tanh": [{}, {"min_val": -2.0, "max_val": 0.5}],
    "soft_shrink": [{}, {"threshold": 1.5}],
    "hard_shrink": [{}, {"threshold": 1.5}],
    "threshold": [{"threshold": 0.5, "value": -2.0}],
    "squareplus": [{}, {"b": 0.0}],
    "snake": [{}, {"frequency": -2.5}],
}
ELEMENTWISE = activations.names("elementwise")
CASES = [(n, i) for n in ELEMENTWISE for i in range(len(PARAMS.get(n, [{}])))]


def _inputs(name, params, dtype, rng) -> np.ndarray:
    edge = reference.cast(reference.edge_values(name, **params), dtype)
    rand = reference.random_inputs(rng, 301, name, dtype)
    return np.concatenate([edge, rand])  # odd-ish length: the vector loop leaves a tail


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name,which", CASES, ids=[f"{n}-{i}" for n, i in CASES])
@pytest.mark.parametrize("offset", [0, 1], ids=["vector", "scalar"])
def test_elementwise(host, name, which, dtype, offset, rng):
    params = PARAMS.get(name, [{}])[which]
    x = placed(_inputs(name, params, dtype, rng), offset)
    dy = placed(reference.random_cotangent(rng, x.shape, dtype), offset)
    reference.assert_close(run(name, x, **params), reference.forward(name, x, **params), dtype, what="forward")
    got = run_grad(name, x, dy, **params)
    want = reference.backward(name, x, dy, **params)
    if name == "prelu":
        reference.assert_close(got[1], want[1], dtype, what="dweight")
        got, want = got[0], want[0]
    reference.assert_close(got, want, dtype, what="backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_bias(host, name, dtype, rng):
    params = PARAMS.get(name, [{}])[0]
    x = reference.random_inputs(rng, (7, 37), name, dtype)
    bias = reference.random_inputs(rng, 37, name, dtype) / 4
    dy = reference.random_cotangent(rng, x.shape, dtype)
    reference.assert_close(run(name, x, bias=bias, **params), reference.forward(name, x, bias=bias, **params), dtype)
    got = run_grad(name, x, dy, bias=bias, **params)
    want = reference.backward(name, x, dy, bias=bias, **params)
    if name == "prelu":
        want = want[0]
    reference.assert_close(got[0], want, dtype, what="dx")
    reference.assert_close(got[1], reference.dbias(want), dtype, what="dbias")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("weight", ["float", "one", "channels"])
@pytest.mark.parametrize("with_bias", [False, True], ids=["", "bias"])
def test_prelu_weight(host, dtype, weight, with_bias, rng):
    x = reference.random_inputs(rng, (9, 2, 13), "prelu", dtype)
    dy = reference.random_cotangent(rng, x.shape, dtype)
    w = {"float": 0.3, "one": reference.cast([0.3], dtype), "channels": reference.cast(rng.uniform(-1, 1, 13), dtype)}[weight]
    kw = {"weight": w}
    if with_bias:
        kw["bias"] = reference.cast(rng.normal(0, 1, 13), dtype)
    reference.assert_close(run("prelu", x, **kw), reference.forward("prelu", x, **kw), dtype)
    got = run_grad("prelu", x, dy, **kw)
    dx, dweight = reference.backward("prelu", x, dy, **kw)
    reference.assert_close(got[0], dx, dtype, what="dx")
    assert np.shape(got[-1]) == np.shape(w)
    reference.assert_close(got[-1], dweight, dtype, what="dweight")
    if with_bias:
        reference.assert_close(got[1], reference.dbias(dx), dtype, what="dbias")


def _near_tie_candidates(drop: int, exponents: range, rng) -> np.ndarray:
    """float32 bit patterns whose low ``drop`` bits lie within 80 of a 16-bit rounding boundary
    (100...0), at every sign, exponent in ``exponents`` and kept mantissa; and 2^21 random ones."""
    keep = 23 - drop
    top = np.array([(s << 31) | (e << 23) | (m << drop) for s in (0, 1) for e in exponents for m in range(1 << keep)],
                   np.uint64)
    low = (1 << (drop - 1)) + np.arange(-80, 81, dtype=np.int64)
    near = (top[:, None] + low[None, :].astype(np.uint64)).ravel()
    return np.concatenate([near, rng.integers(0, 1 << 32, 1 << 21, dtype=np.uint64)]).astype(np.uint32)


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_near_tie_catches_what_the_float_test_caught(library, dtype, rng):
    """store_once's bit-pattern test (kernels/functors.cuh near_tie) catches every result the float
    formulation caught (T's rounding of r -+ (|r| 2^-19 + 2^-60), fused or not) but inf: near every
    rounding boundary of T at every exponent (float16: where its results lie, and its subnormals'
    boundaries at odd multiples of 2^-25 on both sides, across binades), every tiny bfloat16
    result, and random floats.  (All 2^32 floats were checked once the same way.)  It takes about
    the share of results its window implies: not everything."""
    if dtype == "bf16":
        bits = _near_tie_candidates(16, range(256), rng)
        tiny = rng.integers(0, 0x2E000000, 1 << 20, dtype=np.uint64).astype(np.uint32)
        bits = np.concatenate([bits, tiny, tiny | 0x80000000])
    else:
        bits = _near_tie_candidates(13, range(100, 145), rng)  # 2^-27 .. 2^17: the float16 range and edges
        odd = np.arange(1, 2048, 2, dtype=np.float64) * 2.0 ** -25  # float16 subnormal boundaries, 2^-25 ...
        centre = odd.astype(np.float32).view(np.uint32).astype(np.int64)
        sub = (centre[:, None] + np.arange(-80, 81)[None, :]).ravel().astype(np.uint32)
        bits = np.concatenate([bits, sub, sub | 0x80000000])
    r = bits.view(np.float32)
    out = np.zeros(r.size, np.uint8)
    library.launch(f"shim_near_tie_{dtype}", (1,), (1,), (r, out, np.int64(r.size)))
    new, old = (out & 1) == 1, (out & 2) == 2
    missed = old & ~new & ~np.isinf(r)
    assert not missed.any(), r[missed][:8]
    assert old.sum() > 10000  # the candidates hold many of the old test's catches
    # uniform significands in the normal range: the window's share, 69 float ulps per bfloat16 ulp,
    # 2 (17 + 7.5) + 1 on average per float16 ulp
    u = (rng.integers(0x38800000, 0x46000000, 1 << 20, dtype=np.uint64)).astype(np.uint32).view(np.float32)
    got = np.zeros(u.size, np.uint8)
    library.launch(f"shim_near_tie_{dtype}", (1,), (1,), (u, got, np.int64(u.size)))
    share = ((got & 1) == 1).mean()
    expected = 50 / (1 << 13) if dtype == "f16" else 69 / (1 << 16)
    assert 0.9 * expected < share < 1.1 * expected, share


def test_grid_stride_loops(host, rng):
    """More elements than the capped grid has threads: every thread runs several iterations."""
    n = 300_001
    threads = _cuda_ops.ELEMENTWISE_THREADS * _cuda_ops._grid(10**9, _cuda_ops.ELEMENTWISE_THREADS, host.launcher.info)
    assert n > 4 * threads
    for offset in (0, 1):
        x = placed(reference.random_inputs(rng, n, "relu", np.float32), offset)
        bias = reference.cast(rng.normal(0, 1, n), np.float32)
        params = {"negative_slope": 0.1}
        reference.assert_close(run("relu", x, bias=bias, **params), reference.forward("relu", x, bias=bias, **params), np.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("channels", [37, 48])
@pytest.mark.parametrize("offset", [0, 1])
def test_bias_channels_over_grid_stride(host, dtype, channels, offset, rng):
    """The channel cursor across grid-stride iterations: bias read one element at a time (37
    channels), a 16-byte pack at a time (48: a multiple of every pack size, aligned), and
    element by element when x is misaligned."""
    threads = _cuda_ops.ELEMENTWISE_THREADS * _cuda_ops._grid(10**9, _cuda_ops.ELEMENTWISE_THREADS, host.launcher.info)
    rows = 20 * threads // channels  # every pack size: several iterations of the vector loop
    x = placed(reference.random_inputs(rng, (rows, channels), "gelu", dtype), offset)
    bias = placed(reference.cast(rng.normal(0, 1, channels), dtype))
    dy = reference.random_cotangent(rng, x.shape, dtype)
    reference.assert_close(run("gelu", x, bias=bias), reference.forward("gelu", x, bias=bias), dtype)
    dx, dbias = run_grad("gelu", x, dy, bias=bias)
    want = reference.backward("gelu", x, dy, bias=bias)
    reference.assert_close(dx, want, dtype, what="dx")
    reference.assert_close(dbias, reference.dbias(want), dtype, what="dbias")
    w = placed(reference.cast(rng.uniform(-1, 1, channels), dtype))
    reference.assert_close(run("prelu", x, weight=w), reference.forward("prelu", x, weight=w), dtype)
    got = run_grad("prelu", x, dy, weight=w, bias=bias)
    dx, dweight = reference.backward("prelu", x, dy, weight=w, bias=bias)
    reference.assert_close(got[0], dx, dtype, what="dx")
    reference.assert_close(got[-1], dweight, dtype, what="dweight")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_column_sums_split_over_blocks(host, dtype, rng):
    """Many rows: the dbias sum runs as partial sums plus a second pass."""
    x = reference.random_inputs(rng, (3000, 3), "linear", dtype)
    bias = reference.cast([0.5, -1.0, 2.0], dtype)
    dy = reference.random_cotangent(rng, x.shape, dtype)
    _, dbias = run_grad("linear", x, dy, bias=bias)
    names = [r.name for r in host.launcher.launches[-2:]]
    assert names == [f"act_colsum_partial_{_short(dtype)}", f"act_colsum_final_{_short(dtype)}"]
    reference.assert_close(dbias, reference.dbias(reference.backward("linear", x, dy, bias=bias)), dtype)


@pytest.mark.parametrize("name,axis", [("exponential", -1), ("glu", 0)])
def test_dbias_beyond_range(host, name, axis):
    """float16 dx terms that round to +-inf still sum to the finite float32 dbias (here 0)."""
    if name == "exponential":
        x = reference.cast([[11.0, 11.0], [11.0, 11.0]], np.float16)  # dx = +-8 e^11: beyond float16
    else:
        x = reference.cast([[6e4, 6e4], [6e4, 6e4], [0.0, 0.0], [0.0, 0.0]], np.float16)  # db = +-8 * 6e4 / 4
    dy = reference.cast([[-8.0, -8.0], [8.0, 8.0]], np.float16)
    bias = reference.cast([0.0, 0.0], np.float16)
    dx, dbias = run_grad(name, x, dy, axis=axis, bias=bias)
    assert np.isinf(np.asarray(dx, np.float64)).any()
    reference.assert_close(dbias, reference.dbias(reference.backward(name, x, dy, axis=axis, bias=bias)), np.float16)
    np.testing.assert_array_equal(np.asarray(dbias, np.float64), [0.0, 0.0])


def _short(dtype) -> str:
    return activations._dtypes.short_name(dtype)


# ------------------------------------------------------------------ gated
GATED = activations.names("gated")
GATED_SHAPES = [((3, 10), -1), ((4, 16), -1), ((6, 4, 5), 0), ((2, 8, 3), 1), ((2, 3, 32), -1), ((5, 2), 1)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", GATED)
@pytest.mark.parametrize("shape,axis", GATED_SHAPES, ids=[f"{s}-{a}" for s, a in GATED_SHAPES])
def test_gated(host, name, dtype, shape, axis, rng):
    params = {"approximate": "tanh"} if name == "geglu" and len(shape) == 3 else {}
    x = reference.random_inputs(rng, shape, name, dtype)
    x.reshape(-1)[:4] = reference.cast([np.nan, np.inf, -np.inf, 0.0], dtype)
    dy = reference.random_cotangent(rng, tuple(s // 2 if i == axis % len(shape) else s for i, s in enumerate(shape)), dtype)
    reference.assert_close(run(name, x, axis=axis, **params), reference.forward(name, x, axis=axis, **params), dtype)
    reference.assert_close(run_grad(name, x, dy, axis=axis, **params),
                           reference.backward(name, x, dy, axis=axis, **params), dtype, what="backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape,axis", [((1200, 48), -1), ((40, 30, 33), 1), ((2, 3000, 8), 1)])
def test_gated_grid_stride(host, dtype, shape, axis, rng):
    """The row/column cursor of the gated loop across grid-stride iterations (the output has more
    elements than the capped grid has threads), halves on the last axis and inside."""
    x = reference.random_inputs(rng, shape, "geglu", dtype)
    out_shape = tuple(s // 2 if i == axis % len(shape) else s for i, s in enumerate(shape))
    dy = reference.random_cotangent(rng, out_shape, dtype)
    reference.assert_close(run("geglu", x, axis=axis), reference.forward("geglu", x, axis=axis), dtype)
    reference.assert_close(run_grad("geglu", x, dy, axis=axis), reference.backward("geglu", x, dy, axis=axis), dtype,
                           what="backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", GATED)
@pytest.mark.parametrize("axis", [0, -1])
def test_gated_bias(host, name, dtype, axis, rng):
    x = reference.random_inputs(rng, (6, 10), name, dtype)
    bias = reference.cast(rng.normal(0, 1, 10), dtype)
    dy = reference.random_cotangent(rng, (3, 10) if axis == 0 else (6, 5), dtype)
    reference.assert_close(run(name, x, axis=axis, bias=bias), reference.forward(name, x, axis=axis, bias=bias), dtype)
    dx, dbias = run_grad(name, x, dy, axis=axis, bias=bias)
    want = reference.backward(name, x, dy, axis=axis, bias=bias)
    reference.assert_close(dx, want, dtype, what="dx")
    reference.assert_close(dbias, reference.dbias(want), dtype, what="dbias")


#: clamped, offset, sloped and interleaved units (activations.GPT_OSS_SWIGLU among them)
GATED_CLAMPED = [
    ("swiglu", dict(activations.GPT_OSS_SWIGLU)),
    ("glu", dict(limit=2.0, offset=0.5, alpha=-1.5)),
    ("swiglu", dict(limit=3.0, alpha=0.25)),
    ("geglu", dict(limit=3.0, offset=1.0, approximate="tanh", layout="interleaved")),
    ("geglu", dict(limit=3.0, offset=-2.0)),
    ("reglu", dict(limit=1.5, offset=-1.0, layout="interleaved")),
    ("glu", dict(limit=0.5, layout="interleaved")),
]


def clamped_inputs(rng, shape, limit, dtype):
    """Values spread over +-2 limit, with +-limit exactly, one ulp either side and +-inf first."""
    x = reference.cast(rng.uniform(-2 * limit, 2 * limit, shape), dtype)
    lim = np.asarray(limit, dtype)
    hi, lo = np.asarray(np.inf, dtype), np.asarray(-np.inf, dtype)
    edge = [lim, -lim, np.nextafter(lim, hi), np.nextafter(lim, lo), np.nextafter(-lim, hi), np.nextafter(-lim, lo)]
    x.reshape(-1)[:8] = reference.cast([float(v) for v in edge] + [np.inf, -np.inf], dtype)
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name,params", GATED_CLAMPED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(GATED_CLAMPED)])
@pytest.mark.parametrize("shape,axis", GATED_SHAPES + [((3, 64), -1), ((1200, 48), -1)],
                         ids=[f"{s}-{a}" for s, a in GATED_SHAPES + [((3, 64), -1), ((1200, 48), -1)]])
def test_gated_clamped(host, name, params, dtype, shape, axis, rng):
    """The clamp, offset, slope and layout as kernel arguments: vector and scalar paths, every axis."""
    x = clamped_inputs(rng, shape, params["limit"], dtype)
    out_shape = tuple(s // 2 if i == axis % len(shape) else s for i, s in enumerate(shape))
    dy = reference.random_cotangent(rng, out_shape, dtype)
    reference.assert_close(run(name, x, axis=axis, **params), reference.forward(name, x, axis=axis, **params), dtype)
    reference.assert_close(run_grad(name, x, dy, axis=axis, **params),
                           reference.backward(name, x, dy, axis=axis, **params), dtype, what="backward")
    bias = reference.cast(rng.normal(0, 1, shape[-1]), dtype)
    dx, dbias = run_grad(name, x, dy, axis=axis, bias=bias, **params)
    want = reference.backward(name, x, dy, axis=axis, bias=bias, **params)
    reference.assert_close(dx, want, dtype, what="dx with bias")
    reference.assert_close(dbias, reference.dbias(want), dtype, what="dbias")


# ---------------------------------------------------------------- rowwise
ROWWISE = activations.names("rowwise")
#: row lengths that reach every row of the path table (warp shapes, block, long) on HOST_DEVICE
ROW_LENGTHS = [1, 2, 3, 4, 7, 8, 13, 16, 31, 32, 33, 64, 100, 128, 200, 256, 300, 512, 513, 1000, 1024, 1500, 3000, 5000]


def _rows_for(n: int) -> int:
    return 70 if n <= 4 else (9 if n <= 256 else 3)  # several rows per warp/block, and a partial last one


def _mask(rng, shape, axis):
    mask = rng.random(shape) > 0.3
    rows = np.moveaxis(mask, axis, -1)
    rows[(0,) * (rows.ndim - 1)] = False  # one fully masked row
    return mask


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ROWWISE)
@pytest.mark.parametrize("n", ROW_LENGTHS)
def test_rowwise_paths(host, name, dtype, n, rng):
    shape = (_rows_for(n), n)
    x = placed(reference.random_inputs(rng, shape, name, dtype))
    dy = placed(reference.random_cotangent(rng, shape, dtype))
    for where in (None, _mask(rng, shape, -1)):
        # aligned rows without a mask, n a multiple of the pack: the block and long paths move 16-byte packs
        packed = where is None and n % (16 // x.dtype.itemsize) == 0

        def expected(backward):
            path = _cuda_ops.row_path(name, n, 1, dtype, host.launcher.info, backward=backward, packed=packed).name
            return _cuda_source.entry(name, "bwd" if backward else "fwd", _short(dtype), path)

        reference.assert_close(run(name, x, where=where), reference.forward(name, x, where=where), dtype,
                               what=f"forward n={n} mask={where is not None}")
        assert last_launch(host) == expected(False)
        reference.assert_close(run_grad(name, x, dy, where=where), reference.backward(name, x, dy, where=where),
                               dtype, what=f"backward n={n} mask={where is not None}")
        assert last_launch(host) == expected(True)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
@pytest.mark.parametrize("n", [1032, 3000, 9000])
@pytest.mark.parametrize("offset", [0, 1])
def test_rowwise_packed_rows(host, name, dtype, n, offset, rng):
    """Block and long rows in 16-byte packs (aligned) and one element at a time (the same rows one
    element past the alignment), with -inf, +inf and NaN rows, many rows per block."""
    shape = (7, n)
    x = reference.random_inputs(rng, shape, name, dtype)
    x[1, ::3] = -np.inf  # -inf elements add nothing
    x[2, :] = -np.inf  # a row of -inf: NaN
    x[3, 5] = np.inf
    x[4, 700] = np.nan
    x = placed(x, offset)
    dy = placed(reference.random_cotangent(rng, shape, dtype), offset)
    reference.assert_close(run(name, x), reference.forward(name, x), dtype, what="forward")
    reference.assert_close(run_grad(name, x, dy), reference.backward(name, x, dy), dtype, what="backward")


STRIDED = [((4, 9, 3), 1), ((3, 20, 40), 1), ((40, 5), 0), ((2, 600, 2), 1), ((5, 2, 33), 0), ((3, 4, 5, 6), 2)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ROWWISE)
@pytest.mark.parametrize("shape,axis", STRIDED, ids=[f"{s}-{a}" for s, a in STRIDED])
def test_rowwise_other_axes(host, name, dtype, shape, axis, rng):
    """Rows `inner` apart, read in place: warp/block paths with a stride, or the column path."""
    x = reference.random_inputs(rng, shape, name, dtype)
    dy = reference.random_cotangent(rng, shape, dtype)
    for where in (None, _mask(rng, shape, axis), rng.random(shape[axis:]) > 0.5):
        reference.assert_close(run(name, x, axis=axis, where=where), reference.forward(name, x, axis=axis, where=where),
                               dtype, what="forward")
        reference.assert_close(run_grad(name, x, dy, axis=axis, where=where),
                               reference.backward(name, x, dy, axis=axis, where=where), dtype, what="backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ROWWISE)
@pytest.mark.parametrize("shape,axis", [((3, 4, 6), -1), ((3, 4, 6), 1), ((2, 1500), -1), ((5, 40), 0)],
                         ids=["last", "middle", "block", "column"])
def test_rowwise_bias(host, name, dtype, shape, axis, rng):
    """f(x + bias), the bias along x's last axis whatever the row axis; dbias summed over the rest."""
    x = reference.random_inputs(rng, shape, name, dtype)
    dy = reference.random_cotangent(rng, shape, dtype)
    bias = reference.cast(rng.normal(0, 1, shape[-1]), dtype)
    for where in (None, rng.random(shape) < 0.7):
        reference.assert_close(run(name, x, axis=axis, bias=bias, where=where),
                               reference.forward(name, x, axis=axis, bias=bias, where=where), dtype, what="forward")
        got = run_grad(name, x, dy, axis=axis, bias=bias, where=where)
        want = reference.backward(name, x, dy, axis=axis, bias=bias, where=where)
        reference.assert_close(got[0], want, dtype, what="dx")
        reference.assert_close(got[1], reference.dbias(want), dtype, what="dbias")
    out = np.zeros(shape, dtype)
    assert run(name, x, axis=axis, bias=bias, out=out) is out
    reference.assert_close(out, reference.forward(name, x, axis=axis, bias=bias), dtype, what="out=")


SPECIAL_ROWS = {
    "nan": [1.0, np.nan, 2.0],
    "posinf": [1.0, np.inf, 2.0],
    "all -inf": [-np.inf, -np.inf, -np.inf],
    "some -inf": [1.0, 1000.0, -np.inf],
    "big": [60000.0, 60000.0, -60000.0],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ROWWISE)
@pytest.mark.parametrize("n,shape_of", [(3, "row"), (700, "row"), (2000, "row"), (5000, "row"), (3, "column")])
def test_rowwise_special_values(host, name, dtype, n, shape_of, rng):
    rows = []
    for values in SPECIAL_ROWS.values():
        row = reference.random_inputs(rng, n, name, dtype).astype(np.float64)
        row[[0, n // 2, n - 1]] = values
        rows.append(row)
    x = reference.cast(np.stack(rows), dtype)
    axis = -1
    if shape_of == "column":  # the same rows, 40 apart: the column path
        x = np.ascontiguousarray(np.repeat(x[:, :, None], 40, axis=2).transpose(1, 0, 2))
        axis = 0
    dy = reference.random_cotangent(rng, x.shape, dtype)
    where = rng.random(x.shape) > 0.2
    for w in (None, where):
        reference.assert_close(run(name, x, axis=axis, where=w), reference.forward(name, x, axis=axis, where=w), dtype)
        reference.assert_close(run_grad(name, x, dy, axis=axis, where=w),
                               reference.backward(name, x, dy, axis=axis, where=w), dtype, what="backward")


def test_row_path_table_reaches_every_path(host):
    info = host.launcher.info
    for dtype in DTYPES:
        dt = _short(dtype)
        chosen = {_cuda_ops.row_path("softmax", n, 1, dtype, info).name for n in ROW_LENGTHS}
        chosen.add(_cuda_ops.row_path("softmax", 8, _cuda_ops.COLUMN_MIN_INNER, dtype, info).name)
        warp = {_cuda_source.warp_path(i, lanes) for i, lanes in _cuda_source.warp_shapes(dt)}
        assert chosen == warp | {"block", "long", "column"}, dt
        sparse = {_cuda_ops.row_path("sparsemax", n, inner, dtype, info).name for n in ROW_LENGTHS for inner in (1, 40)}
        assert sparse == set(_cuda_source.SPARSEMAX_PATHS)


def test_row_path_table_on_an_h100():
    """The same table on an H100-sized device: rows stay in shared memory up to ~57k floats."""
    h100 = _cuda_ops.DeviceInfo(132, 1024, 2048, 48 * 1024, 227 * 1024)
    assert _cuda_ops.row_path("softmax", 1024, 1, np.float32, h100).name == "warp32x32"
    assert _cuda_ops.row_path("softmax", 1025, 1, np.float32, h100).name == "block"
    assert _cuda_ops.row_path("softmax", 56000, 1, np.float32, h100).name == "block"
    assert _cuda_ops.row_path("softmax", 60000, 1, np.float32, h100).name == "long"
    assert _cuda_ops.row_path("softmax", 513, 1, np.float64, h100).name == "block"


# ------------------------------------------------------- shapes and layouts
@pytest.mark.parametrize("name", ["gelu", "glu", "softmax", "sparsemax"])
@pytest.mark.parametrize("shape", [(0,), (0, 4), (4, 0), (3, 0, 2)])
def test_empty(host, name, shape):
    x = np.zeros(shape, np.float32)
    kind = activations.get(name).record.kind.value
    y = run(name, x)
    want_shape = shape[:-1] + (shape[-1] // 2,) if kind == "gated" else shape
    assert y.shape == want_shape and y.dtype == x.dtype
    dx = run_grad(name, x, np.zeros(want_shape, np.float32))
    assert dx.shape == shape


def test_zero_dimensional(host):
    x = np.array(-2.0, np.float32)
    reference.assert_close(run("elu", x), reference.forward("elu", x), np.float32)
    dx, dw = run_grad("prelu", x, np.array(1.5, np.float32), weight=0.25)
    assert dx.shape == () and dw.shape == ()
    reference.assert_close(dw, reference.backward("prelu", x, np.array(1.5, np.float32), weight=0.25)[1], np.float32)


@pytest.mark.parametrize("name,axis", [("silu", -1), ("swiglu", 0), ("log_softmax", 0), ("sparsemax", 1)])
def test_non_contiguous_input(host, name, axis, rng):
    base = reference.random_inputs(rng, (6, 20, 2), name, np.float32)
    x = base[:, ::2, 0]  # strided view
    assert not x.flags.c_contiguous
    reference.assert_close(run(name, x, axis=axis), reference.forward(name, x, axis=axis), np.float32)


@pytest.mark.parametrize("name", ["tanh", "softmax", "reglu"])
def test_out_in_place(host, name, rng):
    x = reference.random_inputs(rng, (5, 12), name, np.float32)
    dy = reference.random_cotangent(rng, x.shape if name != "reglu" else (5, 6), np.float32)
    want_y = reference.forward(name, x)
    want_dx = reference.backward(name, x, dy)
    if name != "reglu":  # a gated output is half the size: it cannot go into x
        y = x.copy()
        assert run(name, y, out=y) is y
        reference.assert_close(y, want_y, np.float32)
    dx = x.copy()
    assert run_grad(name, dx, dy, out=dx) is dx
    reference.assert_close(dx, want_dx, np.float32, what="backward in place")


@pytest.mark.parametrize("name", ["softsign", "log_softmax"])
def test_out_strided_or_overlapping(host, name, rng):
    x = reference.random_inputs(rng, (4, 10), name, np.float32)
    want = reference.forward(name, x)
    holder = np.zeros((4, 20), np.float32)
    out = holder[:, ::2]
    assert run(name, x, out=out) is out
    reference.assert_close(out, want, np.float32, what="strided out")
    assert (holder[:, 1::2] == 0).all()
    buf = np.zeros(41, np.float32)  # out shifted one element against x: reads would see writes
    xs, outs = buf[1:].reshape(4, 10), buf[:-1].reshape(4, 10)
    xs[...] = x
    run(name, xs, out=outs)
    reference.assert_close(outs, want, np.float32, what="overlapping out")


def test_shrunk_shared_memory_moves_rows_to_the_long_path(library, rng):
    """A device with 4 KiB of shared memory: 1500-element rows no longer fit."""
    small = _cuda_ops.DeviceInfo(1, 128, 256, 4096, 4096)
    backend = harness.HostBackend(harness.HostLauncher(library, small))
    backend.name = "cuda_host_small"
    x = reference.random_inputs(rng, (2, 1500), "softmin", np.float32)
    with harness.registered(backend):
        y = activations.apply("softmin", x, backend="cuda_host_small")
    assert backend.launcher.launches[-1].name == "act_softmin_fwd_long_f32"
    assert backend.launcher.launches[-1].block == (128,)
    reference.assert_close(y, reference.forward("softmin", x), np.float32)
    assert math.isclose(float(np.asarray(y, np.float64).sum()), 2.0, rel_tol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ELEMENTWISE + GATED)
def test_fp8_entry_points(host, library, name, dtype, rng):
    """Every act_<name>_fp8_<dt> kernel (vector path and tail, bias, prelu weight, both
    formats) against the reference quantizer on the same kernels' float f; the FP8 conversion
    alone (act_fp8_encode_<dt>).  tests/test_fp8.py has the exhaustive and end-to-end checks."""
    import ml_dtypes

    params = dict(PARAMS.get(name, [{}])[-1])
    x = reference.random_inputs(rng, (3, 50), name, dtype)
    x.reshape(-1)[:3] = np.array([np.nan, np.inf, -np.inf]).astype(dtype)
    bias = reference.cast(rng.normal(0, 0.1, 50), dtype)
    cdt = reference.compute_dtype(dtype)
    for fmt, scale in ((ml_dtypes.float8_e4m3fn, 3.0), (ml_dtypes.float8_e5m2, 500.0)):
        got = run(name, x, bias=bias, out_dtype=fmt, scale=scale, amax="row", **params)
        assert last_launch(host) == f"act_{name}_fp8_{_short(dtype)}"
        f = np.asarray(run(name, x.astype(cdt), bias=bias.astype(cdt), **params), np.float64)
        big = float(ml_dtypes.finfo(fmt).max)
        want = np.clip(f * scale, -big, big).astype(fmt)
        same = (got.values.view(np.uint8) == want.view(np.uint8)) | np.isnan(f)
        assert same.all(), f"{name}: codes differ at {np.flatnonzero(~same)[:5]}"
        mag = np.abs(f.astype(np.float32))
        want_amax = np.where(np.isnan(mag).any(axis=-1), np.float32(np.nan), np.nanmax(mag, axis=-1))
        assert np.array_equal(got.amax, want_amax.astype(np.float32), equal_nan=True)
    codes = np.empty(x.size, np.uint8)
    module = _cuda_source.KernelModule("fp8", _short(dtype))
    host.launcher.launch(module, f"act_fp8_encode_{_short(dtype)}", (2,), (64,),
                         (np.ascontiguousarray(x), codes, np.int64(x.size), np.float64(1.0), np.uint64(0),
                          np.int32(0), np.int32(0)))
    want = np.clip(x.astype(np.float64), -448.0, 448.0).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    assert np.array_equal(codes.reshape(x.shape), want)


def test_every_entry_point_ran(host, request):
    """Kept last: the tests above launched every kernel entry point (when the whole module ran)."""
    opts = request.config.option
    if opts.keyword or opts.markexpr or any("::" in str(a) for a in request.config.args):
        pytest.skip("only meaningful when the whole module runs")
    if os.environ.get("PYTEST_XDIST_WORKER") and opts.dist != "loadgroup":
        pytest.skip("the module's tests ran in several processes (run pytest-xdist with --dist loadgroup)")
    ran = {r.name for r in host.launcher.launches}
    missing = sorted({e for m in _cuda_source.all_modules() for e in m.entries()} - ran)
    assert not missing, f"{len(missing)} entry points never ran: {missing[:20]}"
