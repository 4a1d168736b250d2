"""Arrays of other libraries in and out: torch, JAX, any DLPack object; strided NumPy views.

torch CPU tensors go in and come out as torch tensors on the same device,
through NumPy views (no copies); ``out=`` writes into the caller's tensor.
GPU cases carry the ``gpu`` marker and are skipped without a GPU.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

import activations
from activations import _dtypes, _interop

torch = pytest.importorskip("torch")

TORCH_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
NP_OF = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}
if _dtypes.BFLOAT16 is not None:
    NP_OF[torch.bfloat16] = _dtypes.BFLOAT16

#: one activation of each kind, with the kind's keyword arguments
KINDS = [("gelu", {}), ("softmax", {"axis": 0}), ("swiglu", {"axis": 0}), ("log_softmax", {"axis": -1})]
PARAMS = {"threshold": dict(threshold=0.25, value=-2.0)}


def _t(shape=(6, 8), dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(dtype)


def _np(t):
    """The tensor's values as NumPy (bfloat16 as ml_dtypes), by an independent route."""
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(_dtypes.BFLOAT16)
    return t.numpy().copy()


def _same(actual, expected):
    a = actual if isinstance(actual, np.ndarray) else _np(actual)
    assert a.dtype == expected.dtype
    np.testing.assert_array_equal(a.astype(np.float64), expected.astype(np.float64))


# ----------------------------------------------------------- NumPy stays cheap
def test_numpy_and_builtins_pass_through():
    x = np.ones(3)
    assert _interop.unwrap(x) == (x, None)
    for obj in ([1.0, 2.0], 3.0, np.float32(2)):
        assert _interop.unwrap(obj)[1] is None


def test_plain_numpy_imports_no_other_array_library():
    code = (
        "import sys, numpy as np, activations\n"
        "activations.apply('gelu', np.ones(3)); activations.grad('softmax', np.ones((2, 3)), np.ones((2, 3)))\n"
        "bad = [m for m in ('torch', 'jax', 'cupy', 'dask') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


# ------------------------------------------------------------------- torch CPU
@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
@pytest.mark.parametrize("name,kw", KINDS, ids=[k[0] for k in KINDS])
def test_torch_in_torch_out(name, kw, dtype):
    t = _t(dtype=dtype)
    y = activations.apply(name, t, **kw)
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.device == t.device
    _same(y, activations.apply(name, _np(t), **kw))

    dy = _t(tuple(y.shape), dtype, seed=1)
    bias = _t((8,), dtype, seed=2)
    dx, dbias = activations.grad(name, t, dy, bias=bias, **kw)
    want = activations.grad(name, _np(t), _np(dy), bias=_np(bias), **kw)
    for got, exp in zip((dx, dbias), want):
        assert isinstance(got, torch.Tensor) and got.dtype == dtype
        _same(got, exp)


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
def test_torch_cpu_is_zero_copy(dtype):
    t = _t(dtype=dtype)
    arr, rewrap = _interop.unwrap(t)
    assert arr.__array_interface__["data"][0] == t.data_ptr()
    assert arr.dtype == NP_OF[dtype]
    res = np.empty((3, 4), NP_OF[dtype])
    back = rewrap(res)
    assert back.dtype == dtype and back.data_ptr() == res.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
def test_torch_out_and_in_place_write_the_callers_memory(dtype):
    t = _t(dtype=dtype)
    expected = activations.apply("tanh", _np(t))
    out = torch.empty_like(t)
    ptr = out.data_ptr()
    assert activations.apply("tanh", t, out=out) is out
    assert out.data_ptr() == ptr
    _same(out, expected)

    # in place, and into a transposed (non-contiguous) output
    u = t.clone()
    ptr = u.data_ptr()
    assert activations.apply("tanh", u, out=u) is u and u.data_ptr() == ptr
    _same(u, expected)
    o = torch.empty(8, 6, dtype=dtype).t()
    activations.apply("tanh", t, out=o)
    _same(o, expected)

    dy = _t(dtype=dtype, seed=3)
    dx = torch.empty_like(t)
    assert activations.grad("softmax", t, dy, out=dx) is dx
    _same(dx, activations.grad("softmax", _np(t), _np(dy)))


def test_torch_non_contiguous_inputs():
    base = _t((8, 10))
    for view in (base.t(), base[:, ::3], base[1:7:2, 2:]):
        assert not view.is_contiguous()
        for name, kw in KINDS:
            if name == "swiglu" and view.shape[0] % 2:
                continue
            y = activations.apply(name, view, **kw)
            _same(y, activations.apply(name, np.ascontiguousarray(view.numpy()), **kw))


def test_torch_mask_bias_dy_tensors():
    t = _t()
    mask = t > -1
    y = activations.apply("softmax", t, where=mask)
    _same(y, activations.apply("softmax", t.numpy(), where=mask.numpy()))
    g = activations.grad("log_softmax", t, torch.ones_like(t), where=mask, bias=torch.zeros(8))
    assert all(isinstance(v, torch.Tensor) for v in g)


def test_torch_prelu_weight_gradient_comes_back_as_torch():
    t = _t()
    w = np.linspace(0, 1, 8).astype(np.float32)
    dx, dweight = activations.grad("prelu", t, torch.ones_like(t), weight=w)
    assert isinstance(dx, torch.Tensor) and isinstance(dweight, torch.Tensor) and dweight.shape == (8,)


def test_torch_requires_grad():
    p = torch.nn.Parameter(_t())
    with pytest.raises(ValueError, match="requires grad"):
        activations.apply("gelu", p)
    with pytest.raises(ValueError, match="requires grad"):
        activations.apply("gelu", _t(), bias=torch.zeros(8, requires_grad=True))
    for ctx in (torch.no_grad, torch.inference_mode):
        with ctx():
            y = activations.apply("gelu", p)
        assert not y.requires_grad
        _same(y, activations.apply("gelu", p.detach().numpy()))


def test_torch_errors():
    with pytest.raises(TypeError, match="cast first"):
        activations.apply("gelu", torch.ones(3, dtype=torch.bool))  # integer tensors become float64
    with pytest.raises(TypeError, match="dense"):
        activations.apply("gelu", torch.eye(3).to_sparse())
    with pytest.raises(ValueError, match="meta"):
        activations.apply("gelu", torch.ones(3, device="meta"))


def test_torch_negative_bit_views():
    t = _t()
    neg = torch._neg_view(t)
    _same(activations.apply("gelu", neg), activations.apply("gelu", -t.numpy()))


def test_torch_stream_scope_runs_on_torchs_current_stream(monkeypatch):
    """The CUDA plumbing, shape-wise: the kernels' CuPy stream is torch's current stream."""
    seen = []

    class _Ctx:
        def __init__(self, what, value):
            self.what, self.value = what, value

        def __enter__(self):
            seen.append((self.what, self.value))

        def __exit__(self, *exc):
            seen.append(("exit", self.what))

    class _Cuda:
        Device = staticmethod(lambda index: _Ctx("device", index))
        ExternalStream = staticmethod(lambda handle: _Ctx("stream", handle))

    class _FakeCupy:
        cuda = _Cuda

    class _Stream:
        cuda_stream = 0xBEEF

    monkeypatch.setattr(_interop, "_cupy", lambda: _FakeCupy)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: _Stream)
    rewrap = _interop._TorchRewrap(torch.device("cuda", 1), "cupy")
    with _interop.scope(rewrap):
        seen.append(("work", None))
    assert seen == [("device", 1), ("stream", 0xBEEF), ("work", None), ("exit", "stream"), ("exit", "device")]
    with _interop.scope(_interop._TorchRewrap(torch.device("cpu"), "numpy")):
        pass
    with _interop.scope(None):
        pass


def _interface_uses(hook: str) -> bool:
    import inspect

    from activations import _interface

    return f"_interop.{hook}" in inspect.getsource(_interface)


def test_written_bumps_the_torch_version_counter():
    t = _t()
    v = t._version
    _interop.written(t)
    assert t._version == v + 1
    _interop.written(np.ones(3))  # anything else: nothing to do


@pytest.mark.skipif(not _interface_uses("written"), reason="the interface does not call _interop.written yet")
def test_autograd_notices_out_writes():
    x = torch.ones(3, requires_grad=True)
    y = x.exp()  # exp saves its output for backward
    with torch.no_grad():
        activations.apply("tanh", y, out=y)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.skipif(not _interface_uses("unwrap(params"), reason="the interface does not unwrap prelu's weight")
def test_torch_prelu_weight_tensor():
    t = _t(dtype=torch.bfloat16)
    w = torch.linspace(0, 1, 8, dtype=torch.bfloat16)
    y = activations.apply("prelu", t, weight=w)
    _same(y, activations.apply("prelu", _np(t), weight=_np(w)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA build of torch and a GPU")
@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
def test_torch_cuda_round_trip(dtype):
    t = _t(dtype=dtype).cuda()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        y = activations.apply("gelu", t)
        out = torch.empty_like(t)
        activations.apply("gelu", t, out=out)
    assert y.device == t.device and y.dtype == dtype
    torch.cuda.synchronize()
    expected = activations.apply("gelu", _np(t.cpu()))
    _same(y.cpu(), expected)
    _same(out.cpu(), expected)


# --------------------------------------------------------- strided NumPy views
def _layouts(x):
    yield "transposed", x.T
    yield "step", x[::2, ::3] if x.ndim == 2 else x[::2]
    yield "negative", x[::-1, ::-1] if x.ndim == 2 else x[::-1]


@pytest.mark.parametrize("name", activations.names())
def test_numpy_views_match_contiguous_copies(name):
    rec = activations.REGISTRY.get(name)
    params = PARAMS.get(name, {})
    rng = np.random.default_rng(0)
    base = (rng.standard_normal((12, 16)) * 3).astype(np.float32)
    axes = [None] if rec.kind.value == "elementwise" else [0, 1, -1]
    for label, view in _layouts(base):
        for axis in axes:
            kw = dict(params) if axis is None else dict(params, axis=axis)
            if rec.kind.value == "gated" and view.shape[axis] % 2:
                continue
            copy = np.ascontiguousarray(view)
            y = activations.apply(name, view, **kw)
            np.testing.assert_array_equal(y, activations.apply(name, copy, **kw), err_msg=f"{label} axis={axis}")
            dy = rng.standard_normal(y.shape).astype(np.float32)
            dy_view = np.flip(dy)  # a strided dy as well
            got = activations.grad(name, view, dy_view, **kw)
            want = activations.grad(name, copy, np.ascontiguousarray(dy_view), **kw)
            for a, e in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                np.testing.assert_array_equal(a, e, err_msg=f"{label} axis={axis} grad")


def test_numpy_strided_out():
    x = np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32)
    out = np.empty((8, 6), np.float32).T
    assert activations.apply("softmax", x, out=out, axis=0) is out
    np.testing.assert_array_equal(out, activations.apply("softmax", x, axis=0))
    rev = np.empty_like(x)[::-1]
    activations.apply("gelu", x, out=rev)
    np.testing.assert_array_equal(rev, activations.apply("gelu", x))


# ------------------------------------------------------------------ any DLPack
class _Capsule:
    """An array known only through DLPack (like a library this package has never heard of)."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class _Namespace:
    @staticmethod
    def from_dlpack(obj):
        return _WithNamespace(np.from_dlpack(obj))


class _WithNamespace(_Capsule):
    def __array_namespace__(self, api_version=None):
        return _Namespace


def test_dlpack_objects():
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    y = activations.apply("silu", _Capsule(x))
    assert isinstance(y, np.ndarray)
    np.testing.assert_array_equal(y, activations.apply("silu", x))
    y = activations.apply("softmax", _WithNamespace(x))
    assert isinstance(y, _WithNamespace)
    np.testing.assert_array_equal(np.from_dlpack(y), activations.apply("softmax", x))


# ------------------------------------------------------------------------ JAX
def test_jax_cpu_arrays():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):  # float64 needs jax_enable_x64
        a = jnp.linspace(-3, 3, 24).reshape(4, 6).astype(dtype)
        host = np.asarray(a)
        for name, kw in KINDS:
            y = activations.apply(name, a, **kw)
            assert isinstance(y, jax.Array) and y.dtype == a.dtype and y.devices() == a.devices()
            np.testing.assert_array_equal(np.asarray(y), activations.apply(name, host, **kw))
        g = activations.grad("gelu", a, jnp.ones_like(a), bias=jnp.zeros(6, dtype))
        assert all(isinstance(v, jax.Array) for v in g)


def test_jax_refusals():
    jax = pytest.importorskip("jax")
    a = jax.numpy.ones((2, 4), jax.numpy.float32)
    with pytest.raises(ValueError, match="immutable"):
        _interop.unwrap(a, "out", writable=True)
    with pytest.raises(TypeError, match="traced"):
        jax.jit(lambda v: activations.apply("gelu", v))(a)


@pytest.mark.skipif(
    not _interface_uses('unwrap(out, "out", writable=True)'), reason="the interface does not unwrap out as writable yet"
)
def test_jax_out_is_refused_and_the_array_untouched():
    jax = pytest.importorskip("jax")
    a = jax.numpy.ones((2, 4), jax.numpy.float32)
    with pytest.raises(ValueError, match="immutable"):
        activations.apply("gelu", a, out=a)
    np.testing.assert_array_equal(np.asarray(a), 1.0)


# ------------------------------------------------------- more than 2**31 elements
@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("ACTIVATIONS_TEST_LARGE") != "1",
    reason="needs about 9 GiB of memory: set ACTIVATIONS_TEST_LARGE=1",
)
def test_more_than_2_31_elements_on_the_cpu():
    n = 2**31 + 100
    x = np.full(n, -1.0, np.float16)  # 4 GiB
    x[-100:] = np.arange(100, dtype=np.float16)
    t = torch.from_numpy(x)  # through the torch path, in place: still one 4 GiB buffer
    assert activations.apply("relu", t, out=t) is t
    assert x[0] == 0 and x[2**31 - 1] == 0
    np.testing.assert_array_equal(x[-100:], np.arange(100, dtype=np.float16))
    x[:8] = -2.0
    y = activations.apply("sigmoid", x)  # another 4 GiB
    assert y.shape == (n,)
    np.testing.assert_array_equal(y[:8], activations.apply("sigmoid", np.full(8, -2.0, np.float16)))
    np.testing.assert_array_equal(y[-100:], activations.apply("sigmoid", np.arange(100, dtype=np.float16)))
    assert y[2**31] == activations.apply("sigmoid", np.float16(0.0))
    del y, t
    with contextlib.suppress(Exception):
        del x
