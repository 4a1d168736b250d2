"""Row-wise activations over several axes at once (``axis=(1, 2)``), as Keras: the rows are
the joint set of those axes.  Forward, backward, masks, bias, out= and every backend.

The oracle (:func:`joint_expected`) is Keras's own construction around the independent
reference of tests/reference.py: the axes moved to the end, merged into one, the reference
computed along it, the result moved back.
"""
from __future__ import annotations

import numpy as np
import pytest

import activations
import reference as R
from test_input_rules import BACKENDS, Device, device, softmax64  # noqa: F401  (device: the fixture)

ROWWISE = ["softmax", "log_softmax", "softmin", "sparsemax", "entmax15"]
#: the softmax family's parameters over a tuple of axes
TEMPERED = [("softmax", dict(temperature=0.5, quiet=True)), ("log_softmax", dict(temperature=3.0)),
            ("softmin", dict(quiet=True))]


def joint_expected(name, x, axes, *, dy=None, where=None, bias=None, **params):
    """reference.forward (dy None) or reference.backward over the joint axes ``axes``."""
    x = np.asarray(x)
    n = x.ndim
    axes = sorted(a % n for a in axes)
    keep = [d for d in range(n) if d not in axes]
    perm = keep + axes
    inverse = np.argsort(perm)
    moved_shape = tuple(x.shape[d] for d in perm)
    merged = tuple(x.shape[d] for d in keep) + (int(np.prod([x.shape[a] for a in axes])),)

    def merge(a):
        return None if a is None else np.broadcast_to(np.asarray(a), x.shape).transpose(perm).reshape(merged)

    kw = dict(axis=-1, where=merge(where), **params)
    if bias is not None:
        kw["bias"] = merge(np.broadcast_to(np.asarray(bias).astype(x.dtype), x.shape))  # added in compute precision
    if dy is None:
        e = R.forward(name, merge(x), **kw)
    else:
        e = R.backward(name, merge(x), merge(np.asarray(dy)), **kw)

    def back(a):
        return None if a is None else np.asarray(a).reshape(moved_shape).transpose(inverse)

    return R._expected(back(e), e.name, e.dtype_in, slack=back(e.slack), alt=back(e.alt), has_alt=back(e.has_alt))


# ------------------------------------------------------- Keras's examples
def _keras_softmax(values):
    m = np.max(values)
    e = np.exp(values - m)
    return e / np.sum(e)


def _keras_log_softmax(values):
    s = values - np.max(values)
    return s - np.log(np.sum(np.exp(s)))


@pytest.mark.parametrize("name,ref", [("softmax", _keras_softmax), ("log_softmax", _keras_log_softmax)],
                         ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,axis", [((2, 3, 5), (1, 2)), ((2, 3, 4, 5), (2, 3)), ((2, 3, 4, 5, 6), (2, 3, 4))],
                         ids=["3d_axis_tuple", "higher_dim", "higher_dim_multiple_axes"])
def test_keras_examples(device, name, ref, shape, axis):
    """keras/src/activations/activations_test.py: test_{softmax,log_softmax}_{3d_axis_tuple,higher_dim,
    higher_dim_multiple_axes}, with activations.apply in place of keras.activations."""
    x = np.random.default_rng(0).random(shape)
    result = device.host(activations.apply(name, device.dev(x), axis=axis, backend=device.backend))
    expected = np.zeros(shape)
    for lead in np.ndindex(*shape[: axis[0]]):
        expected[lead] = ref(x[lead])
    np.testing.assert_allclose(result, expected, rtol=1e-5)


def test_softmax_over_several_axes_sums_to_one_jointly(device):
    x = np.random.default_rng(1).standard_normal((3, 4, 5))
    for axes in [(0, 2), (2, 0), (-1, -3), (0, 1, 2)]:
        p = device.host(activations.apply("softmax", device.dev(x), axis=axes, backend=device.backend))
        np.testing.assert_allclose(p.sum(axis=axes), 1.0, rtol=1e-13)
        np.testing.assert_allclose(p, softmax64(x, axis=axes), rtol=1e-13)
    # one axis in a tuple is that axis
    np.testing.assert_allclose(device.host(activations.apply("softmax", device.dev(x), axis=(1,), backend=device.backend)),
                               softmax64(x, axis=1), rtol=1e-13)


# ----------------------------------------------------- every case vs reference
# the reduced axes with x's last one (bias tiled over the merged axis) and without it; all axes
CASES = [((2, 3, 4), (0, 2)), ((2, 3, 4), (0, 1)), ((3, 2, 2, 5), (0, 1, 2, 3))]


@pytest.mark.parametrize("shape,axes", CASES, ids=[f"{s}-{a}" for s, a in CASES])
@pytest.mark.parametrize("name", ROWWISE)
def test_forward_and_backward_with_mask_and_bias(device, name, shape, axes):
    rng = np.random.default_rng(abs(hash((name, shape, axes))) % 2**32)
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    bias = rng.standard_normal(shape[-1]).astype(np.float32)
    where = rng.random((1,) + shape[1:]) < 0.7
    where[..., 0] = True
    kw = dict(axis=axes, where=device.dev(where), backend=device.backend)
    y = device.host(activations.apply(name, device.dev(x), bias=device.dev(bias), **kw))
    R.assert_close(y, joint_expected(name, x, axes, where=where, bias=bias), np.float32, what=f"{name} axes {axes}")
    dx, db = activations.grad(name, device.dev(x), device.dev(dy), bias=device.dev(bias), **kw)
    exp_dx = joint_expected(name, x, axes, dy=dy, where=where, bias=bias)
    R.assert_close(device.host(dx), exp_dx, np.float32, what=f"{name}' axes {axes}")
    R.assert_close(device.host(db), R.dbias(exp_dx, np.float32), np.float32, what=f"{name} dbias axes {axes}")


@pytest.mark.parametrize("name,params", TEMPERED, ids=[n for n, _ in TEMPERED])
def test_temperature_and_quiet_over_several_axes(device, name, params):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((2, 3, 4)) * 2).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    where = rng.random(x.shape) < 0.7
    where[1] = False  # a fully masked row
    kw = dict(axis=(1, 2), where=device.dev(where), backend=device.backend, **params)
    y = device.host(activations.apply(name, device.dev(x), **kw))
    R.assert_close(y, joint_expected(name, x, (1, 2), where=where, **params), np.float32, what=f"{name} {params}")
    dx = device.host(activations.grad(name, device.dev(x), device.dev(dy), **kw))
    R.assert_close(dx, joint_expected(name, x, (1, 2), dy=dy, where=where, **params), np.float32,
                   what=f"{name}' {params}")


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float64"])
def test_dtypes(device, dt):
    if dt == "bfloat16" and device.backend == "numba":
        from activations.backends.numba import _simulator

        if _simulator():
            pytest.skip("the Numba simulator has no bfloat16")
    x = R.cast(np.random.default_rng(2).standard_normal((3, 4, 5)), dt)
    y = device.host(activations.apply("log_softmax", device.dev(x), axis=(0, 2), backend=device.backend))
    assert y.dtype == x.dtype
    R.assert_close(y, joint_expected("log_softmax", x, (0, 2)), x.dtype)


def test_fully_masked_rows_give_zero(device):
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    where = np.ones_like(x, bool)
    where[1] = False
    y = device.host(activations.apply("softmax", device.dev(x), axis=(1, 2), where=device.dev(where),
                                      backend=device.backend))
    np.testing.assert_array_equal(y[1], 0.0)
    np.testing.assert_allclose(y[0], softmax64(x[0], axis=(0, 1)), rtol=1e-13)


@pytest.mark.parametrize("layout", ["separate", "strided", "in_place"])
def test_out(device, layout):
    if not device.writes_out:
        x = device.dev(np.ones((2, 3, 4)))
        with pytest.raises(ValueError, match=r"\bout\b"):
            activations.apply("softmax", x, axis=(1, 2), out=x, backend=device.backend)
        return
    host = np.random.default_rng(4).standard_normal((2, 3, 4))
    expected = softmax64(host, axis=(0, 2))
    x = device.dev(host.copy())
    if layout == "separate":
        out = device.dev(np.full(host.shape, 7.0))
    elif layout == "strided":
        big = device.dev(np.full((2, 3, 8), 7.0))
        out = big[..., ::2]
    else:
        out = x
    got = activations.apply("softmax", x, axis=(0, 2), out=out, backend=device.backend)
    assert got is out
    np.testing.assert_allclose(device.host(out), expected, rtol=1e-13)
    if layout == "strided":
        np.testing.assert_array_equal(device.host(big)[..., 1::2], 7.0)
    # the gradient into out
    dy = np.random.default_rng(5).standard_normal(host.shape)
    x = device.dev(host.copy())
    out = device.dev(np.full(host.shape, 7.0)) if layout != "in_place" else x
    got = activations.grad("softmax", x, device.dev(dy), axis=(0, 2), out=out, backend=device.backend)
    assert got is out
    exp_dx = expected * (dy - (dy * expected).sum(axis=(0, 2), keepdims=True))
    np.testing.assert_allclose(device.host(out), exp_dx, rtol=1e-12, atol=1e-15)


def test_failing_call_leaves_out_untouched(device):
    if not device.writes_out:
        pytest.skip("Dask refuses out=")
    out = device.dev(np.full((2, 3, 4), 7.0))
    with pytest.raises(ValueError, match=r"\bdy\b"):
        activations.grad("softmax", device.dev(np.ones((2, 3, 4))), device.dev(np.ones((2, 3, 5))), axis=(1, 2),
                         out=out, backend=device.backend)
    np.testing.assert_array_equal(device.host(out), 7.0)


def test_dask_chunked_along_several_axes():
    import dask.array as da

    host = np.random.default_rng(6).standard_normal((4, 6, 8))
    where = np.random.default_rng(7).random((4, 6, 8)) < 0.8
    for name in ROWWISE:
        x = da.from_array(host, chunks=(2, 2, 3))
        y = activations.apply(name, x, axis=(1, 2), where=da.from_array(where, chunks=(2, 3, 4)))
        assert isinstance(y, da.Array)
        R.assert_close(y.compute(), joint_expected(name, host, (1, 2), where=where), np.float64, what=name)


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize("axis,exc", [((), ValueError), ((1, 1), ValueError), ((1, -2), ValueError),
                                      ((0, 3), ValueError), ((0, 1.0), TypeError), ((0, True), TypeError),
                                      ([0, 1], TypeError), ((0, "1"), TypeError)],
                         ids=["empty", "repeated", "repeated-negative", "out-of-range", "float", "bool", "list", "str"])
def test_bad_tuples(device, axis, exc):
    with pytest.raises(exc, match=r"\baxis\b"):
        activations.apply("softmax", device.dev(np.ones((2, 3, 4))), axis=axis, backend=device.backend)


@pytest.mark.parametrize("name", ["glu", "swiglu"])
def test_gated_take_one_axis(device, name):
    with pytest.raises(TypeError, match=r"\baxis\b"):
        activations.apply(name, device.dev(np.ones((2, 4, 4))), axis=(1, 2), backend=device.backend)


# ------------------------------------------------ the torch and JAX wrappers
FRAMEWORK_CASES = [("softmax", dict(temperature=0.5, quiet=True)), ("log_softmax", {}), ("softmin", {}),
                   ("sparsemax", {}), ("entmax15", {}), ("entmax", dict(alpha=1.5))]  # the reference has alpha 1.5
FRAMEWORK_IDS = [n for n, _ in FRAMEWORK_CASES]


def _framework_inputs(name):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    shape = (2, 3, 4)
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    bias = rng.standard_normal(shape[-1]).astype(np.float32)
    where = rng.random(shape) < 0.7
    where[..., 0] = True
    return x, dy, bias, where


@pytest.mark.parametrize("axes", [(0, 2), (1, 2)])
@pytest.mark.parametrize("name,params", FRAMEWORK_CASES, ids=FRAMEWORK_IDS)
def test_torch_wrapper(name, params, axes):
    torch = pytest.importorskip("torch")
    import activations.torch as at

    x, dy, bias, where = _framework_inputs(name)
    xt, bt = torch.tensor(x, requires_grad=True), torch.tensor(bias, requires_grad=True)
    y = at.apply(name, xt, axis=axes, bias=bt, where=torch.tensor(where), **params)
    R.assert_close(y.detach().numpy(), joint_expected(name, x, axes, where=where, bias=bias, **params), np.float32)
    y.backward(torch.tensor(dy))
    exp_dx = joint_expected(name, x, axes, dy=dy, where=where, bias=bias, **params)
    R.assert_close(xt.grad.numpy(), exp_dx, np.float32, what=f"torch {name}' axes {axes}")
    R.assert_close(bt.grad.numpy(), R.dbias(exp_dx, np.float32), np.float32, what=f"torch {name} dbias")


def test_torch_wrapper_gradcheck_and_module():
    torch = pytest.importorskip("torch")
    import activations.torch as at

    x = torch.tensor(np.random.default_rng(1).standard_normal((2, 3, 4)), requires_grad=True)
    alpha = torch.full((2, 1, 1), 1.4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, a: at.apply("entmax", v, axis=(1, 2), alpha=a), (x, alpha))
    y = at.Softmax(dim=(1, 2))(x.detach())
    R.assert_close(y.numpy(), joint_expected("softmax", x.detach().numpy(), (1, 2)), np.float64)
    # the tuple travels with the parameters: torch.compile traces it without a graph break
    compiled = torch.compile(lambda v: at.apply("log_softmax", v, axis=(0, 2), temperature=2.0), fullgraph=True)
    R.assert_close(compiled(x.detach()).numpy(), joint_expected("log_softmax", x.detach().numpy(), (0, 2),
                                                                temperature=2.0), np.float64)
    for axis, exc, word in [((0, -3), ValueError, "twice"), ((0, 3), ValueError, "out of range"),
                            ((), ValueError, "empty"), ((0, 1.5), TypeError, "axis")]:
        with pytest.raises(exc, match=word):
            at.apply("softmax", x, axis=axis)
    with pytest.raises(TypeError, match="softmax family"):
        at.apply("swiglu", x, axis=(0, 1))


@pytest.mark.parametrize("axes", [(0, 2), (1, 2)])
@pytest.mark.parametrize("name,params", FRAMEWORK_CASES, ids=FRAMEWORK_IDS)
def test_jax_wrapper(name, params, axes):
    jax = pytest.importorskip("jax")
    import activations.jax as aj

    x, dy, bias, where = _framework_inputs(name)
    f = jax.jit(lambda v, b: aj.apply(name, v, axis=axes, bias=b, where=where, **params))
    R.assert_close(np.asarray(f(x, bias)), joint_expected(name, x, axes, where=where, bias=bias, **params), np.float32)
    dx, db = jax.vjp(f, x, bias)[1](dy)
    exp_dx = joint_expected(name, x, axes, dy=dy, where=where, bias=bias, **params)
    R.assert_close(np.asarray(dx), exp_dx, np.float32, what=f"jax {name}' axes {axes}")
    R.assert_close(np.asarray(db), R.dbias(exp_dx, np.float32), np.float32, what=f"jax {name} dbias")
    # vmap adds a leading axis: the tuple keeps naming the same axes of each element
    batched = jax.vmap(lambda v: aj.apply(name, v, axis=axes, **params))(np.stack([x, -x]))
    R.assert_close(np.asarray(batched[1]), joint_expected(name, -x, axes, **params), np.float32)


def test_jax_wrapper_per_row_alpha_is_checked_while_tracing():
    jax = pytest.importorskip("jax")
    import activations.jax as aj

    x = np.ones((3, 4, 6), np.float32)
    with pytest.raises(ValueError, match="alpha"):
        jax.jit(lambda v: aj.apply("entmax", v, axis=(0, 2), alpha=np.full((3, 1, 1), 1.5, np.float32)))(x)
    with pytest.raises(TypeError, match="softmax family"):
        aj.apply("swiglu", x, axis=(0, 1))
