"""The CuPy backend on a real GPU against reference.py: every activation and dtype, every row-wise
path at the sizes the device picks it for, bias and prelu weights, layouts, streams, and arrays
beyond 2^31 elements when the device has the memory.  Skipped without a usable CUDA device.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import activations
import reference
from activations.backends.cuda import ops as _cuda_ops, source as _cuda_source

cupy = pytest.importorskip("cupy")
if not cupy.cuda.is_available():
    pytest.skip("no usable CUDA device", allow_module_level=True)

from activations.backends.cuda import BACKEND  # noqa: E402

pytestmark = pytest.mark.gpu


def _bf16_ok() -> bool:
    try:
        cupy.empty(1, dtype=reference.BFLOAT16)
        return True
    except Exception:
        return False


DTYPES = [d for d in reference.DTYPES if d != reference.BFLOAT16 or _bf16_ok()]
DTYPE_IDS = [d.name for d in DTYPES]
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def gpu(a):
    """A NumPy array on the device, bit for bit (bfloat16 included)."""
    if a is None:
        return None
    a = np.ascontiguousarray(a)
    if a.dtype == bool:
        return cupy.asarray(a)
    return cupy.asarray(a.view(_UINT[a.dtype.itemsize])).view(a.dtype)


def host(g):
    return cupy.asnumpy(g.view(_UINT[g.dtype.itemsize])).view(g.dtype)


def info() -> _cuda_ops.DeviceInfo:
    return BACKEND._current_launcher().info


def _on_gpu(kw: dict) -> dict:
    return {k: gpu(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}


def check(name, x, *, dy=None, **kw):
    """Forward (and, given dy, backward with dbias/dweight) on the GPU against the reference."""
    dt = x.dtype
    y = host(activations.apply(name, gpu(x), backend="cupy", **_on_gpu(kw)))
    reference.assert_close(y, reference.forward(name, x, **kw), dt, what="forward")
    if dy is None:
        return
    got = activations.grad(name, gpu(x), gpu(dy), backend="cupy", **_on_gpu(kw))
    got = tuple(host(g) for g in got) if isinstance(got, tuple) else (host(got),)
    want = reference.backward(name, x, dy, **kw)
    dx = want[0] if name == "prelu" else want
    reference.assert_close(got[0], dx, dt, what="backward")
    if kw.get("bias") is not None:
        reference.assert_close(got[1], reference.dbias(dx), dt, what="dbias")
    if name == "prelu":
        reference.assert_close(got[-1], want[1], dt, what="dweight")


def test_available():
    ok, detail = BACKEND.available()
    assert ok, detail
    assert BACKEND.owns(cupy.zeros(1)) and not BACKEND.owns(np.zeros(1))


# ------------------------------------------------------------ elementwise
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", activations.names("elementwise"))
def test_elementwise(name, dtype, rng):
    params = {"threshold": 0.5, "value": -2.0} if name == "threshold" else {}
    edge = reference.cast(reference.edge_values(name, **params), dtype)
    x = np.concatenate([edge, reference.random_inputs(rng, (1 << 15) + 3, name, dtype)])
    dy = reference.random_cotangent(rng, x.shape, dtype)
    check(name, x, dy=dy, **params)
    check(name, x[1:], dy=dy[1:], **params)  # misaligned: the scalar path


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ["relu", "silu", "tanh", "hard_sigmoid"])
def test_elementwise_large(name, dtype, rng):
    n = (1 << 24) + 5
    x = reference.random_inputs(rng, n, name, dtype)
    y = host(activations.apply(name, gpu(x)))
    idx = rng.choice(n, 20000, replace=False)
    idx[:3] = [0, n - 2, n - 1]
    reference.assert_close(y[idx], reference.forward(name, x[idx]), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ["gelu", "prelu", "softplus", "rrelu"])
def test_bias_and_weights(name, dtype, rng):
    x = reference.random_inputs(rng, (513, 67), name, dtype)
    dy = reference.random_cotangent(rng, x.shape, dtype)
    bias = reference.cast(rng.normal(0, 1, 67), dtype)
    params = {"training": True, "seed": 7} if name == "rrelu" else {}
    check(name, x, dy=dy, bias=bias, **params)
    if name == "prelu":
        check(name, x, dy=dy, weight=reference.cast(rng.uniform(-1, 1, 67), dtype))
        check(name, x, dy=dy, weight=reference.cast([0.1], dtype))


# ------------------------------------------------------------------ gated
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", activations.names("gated"))
@pytest.mark.parametrize("shape,axis", [((1024, 4096), -1), ((300, 2 * 257), -1), ((64, 16, 33), 1), ((8, 96, 5), 0)])
def test_gated(name, dtype, shape, axis, rng):
    x = reference.random_inputs(rng, shape, name, dtype)
    out_shape = list(shape)
    out_shape[axis] //= 2
    dy = reference.random_cotangent(rng, tuple(out_shape), dtype)
    check(name, x, dy=dy, axis=axis)
    check(name, x, dy=dy, axis=axis, bias=reference.cast(rng.normal(0, 1, shape[-1]), dtype))


# ---------------------------------------------------------------- rowwise
def _row_cases(dtype):
    """(rows, n, inner) for every path the table has on this device."""
    dev, dt = info(), activations._dtypes.short_name(dtype)
    item = 8 if dt == "f64" else 4
    cases = [(257, i * lanes, 1) for i, lanes in _cuda_source.warp_shapes(dt)]
    cases += [(33, 4000, 1), (3, (dev.shared_per_block_optin // item) + 100, 1), (5, 300, 40), (7, 1000, 3)]
    # rows in 16-byte packs cache the dtype itself: past shared memory only at this length
    cases += [(2, (dev.shared_per_block_optin // np.dtype(dtype).itemsize + 104) // 8 * 8, 1)]
    return cases


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", activations.names("rowwise"))
def test_rowwise_every_path(name, dtype, rng):
    seen = set()
    for rows, n, inner in _row_cases(dtype):
        shape, axis = ((rows, n), -1) if inner == 1 else ((rows, n, inner), 1)
        seen.add(_cuda_ops.row_path(name, n, inner, dtype, info()).name)
        x = reference.random_inputs(rng, shape, name, dtype)
        dy = reference.random_cotangent(rng, shape, dtype)
        where = rng.random(shape) > 0.25
        check(name, x, dy=dy, axis=axis)
        check(name, x, dy=dy, axis=axis, where=where)
    if name != "sparsemax":
        assert {"block", "long", "column"} <= seen


def test_rowwise_special_rows():
    x = reference.cast([[1.0, np.nan, 2.0], [1.0, np.inf, 2.0], [-np.inf] * 3, [1.0, 1000.0, -np.inf]], np.float32)
    for name in activations.names("rowwise"):
        check(name, x, dy=reference.cast(np.ones(x.shape), np.float32))


# ---------------------------------------------------------- layouts, streams
def test_out_in_place_and_strided(rng):
    x = reference.random_inputs(rng, (64, 130), "mish", np.float32)
    g = gpu(x)
    assert activations.apply("mish", g, out=g) is g
    reference.assert_close(host(g), reference.forward("mish", x), np.float32)
    big = cupy.zeros((64, 260), np.float32)
    out = big[:, ::2]
    activations.apply("log_softmax", gpu(x), out=out)
    reference.assert_close(host(cupy.ascontiguousarray(out)), reference.forward("log_softmax", x), np.float32)
    xs = gpu(x)[:, ::3]  # not contiguous: copied once, then the strided (axis 0) row paths
    reference.assert_close(host(activations.apply("softmax", xs, axis=0)),
                           reference.forward("softmax", x[:, ::3], axis=0), np.float32)


def test_runs_on_the_current_stream(rng):
    x = reference.random_inputs(rng, (4096, 512), "softmax", np.float16)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        y = activations.apply("softmax", gpu(x))
        y2 = activations.apply("gelu", y)
    stream.synchronize()
    reference.assert_close(host(y), reference.forward("softmax", x), np.float16)
    assert y2.shape == y.shape


def test_first_calls_from_many_threads_compile_once(rng):
    x = gpu(reference.random_inputs(rng, 1000, "celu", np.float64))
    results, errors = [], []

    def call():
        try:
            results.append(host(activations.apply("celu", x, alpha=0.7)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(np.array_equal(r, results[0]) for r in results)


# -------------------------------------------------------------- > 2^31
def _free_bytes() -> int:
    return cupy.cuda.runtime.memGetInfo()[0]


def test_more_than_2_31_elements():
    """64-bit indexing: elementwise with bias, a dbias over 2^31 elements, and softmax rows past 2^31."""
    channels = 4099
    rows = (1 << 31) // channels + 3
    n = rows * channels
    assert n > 2**31
    if _free_bytes() < 3 * 4 * n + (1 << 30):
        pytest.skip(f"needs {3 * 4 * n / 2**30:.0f} GiB of free device memory")
    rng = np.random.default_rng(0)
    bias_h = reference.cast(rng.normal(0, 1, channels), np.float32)
    bias = gpu(bias_h)
    x = cupy.zeros((rows, channels), np.float32)
    y = activations.apply("relu", x, bias=bias)
    want = np.maximum(bias_h, 0)
    for r in (0, rows // 2, rows - 1):
        np.testing.assert_array_equal(host(y[r]), want)
    del y
    dy = cupy.ones_like(x)
    dx, dbias = activations.grad("relu", x, dy, bias=bias)
    np.testing.assert_array_equal(host(dx[-1]), (bias_h > 0).astype(np.float32))
    np.testing.assert_array_equal(host(dbias), rows * (bias_h > 0).astype(np.float32))
    del x, dy, dx
    cupy.get_default_memory_pool().free_all_blocks()
    n_row = 4096
    rows = (1 << 31) // n_row + 2
    x = cupy.zeros((rows, n_row), np.float16)
    x[-1, :2] = 1.0
    y = activations.apply("softmax", x)
    last = host(y[-1]).astype(np.float64)
    assert abs(last.sum() - 1.0) < 1e-2 and last[0] > last[2]
    np.testing.assert_allclose(host(y[0]).astype(np.float64), 1.0 / n_row, rtol=1e-3)
