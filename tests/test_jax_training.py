"""activations.jax: grad, jit, vmap and pmap against jax.nn and the float64 oracle."""
from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

import activations.jax as aj  # noqa: E402
import reference as R  # noqa: E402
from activations.catalogue import REGISTRY  # noqa: E402
from activations.registry import Kind  # noqa: E402

REQUIRED_PARAMS = {"threshold": {"threshold": 0.3, "value": -2.0}}
CASES = [(r.name, REQUIRED_PARAMS.get(r.name, {})) for r in REGISTRY] + [
    ("relu", {"negative_slope": 0.1, "max_value": 2.5, "threshold": -0.5}),
    ("gelu", {"approximate": "tanh"}),
    ("rrelu", {"training": True, "seed": 3}),
    ("softplus", {"beta": 2.0, "threshold": 1.0}),
    ("swiglu", {"alpha": 1.702, "limit": 7.0, "offset": 1.0, "layout": "interleaved"}),
    ("glu", {"limit": 2.0, "offset": 0.5, "alpha": -1.5}),
    ("geglu", {"limit": 1.5, "offset": -1.0, "layout": "interleaved"}),
]
CASE_IDS = [n + "".join(f"-{k}={v}" for k, v in p.items()) for n, p in CASES]


def _split(x, axis=-1):
    a, b = jnp.split(x, 2, axis=axis)
    return a, b


# name, our params, jax.nn reference (all differentiable away from kinks)
JAX_NN = [
    ("relu", {}, jax.nn.relu),
    ("relu6", {}, jax.nn.relu6),
    ("leaky_relu", {"negative_slope": 0.01}, jax.nn.leaky_relu),
    ("elu", {"alpha": 0.7}, lambda x: jax.nn.elu(x, alpha=0.7)),
    ("selu", {}, jax.nn.selu),
    ("celu", {"alpha": 2.0}, lambda x: jax.nn.celu(x, alpha=2.0)),
    ("gelu", {}, lambda x: jax.nn.gelu(x, approximate=False)),
    ("gelu", {"approximate": "tanh"}, lambda x: jax.nn.gelu(x, approximate=True)),
    ("sigmoid", {}, jax.nn.sigmoid),
    ("hard_sigmoid", {}, jax.nn.hard_sigmoid),
    ("log_sigmoid", {}, jax.nn.log_sigmoid),
    ("softplus", {}, jax.nn.softplus),
    ("softsign", {}, jax.nn.soft_sign),
    ("silu", {}, jax.nn.silu),
    ("hard_silu", {}, jax.nn.hard_silu),
    ("mish", {}, jax.nn.mish),
    ("tanh", {}, jnp.tanh),
    ("hard_tanh", {}, jax.nn.hard_tanh),
    ("sparse_plus", {}, jax.nn.sparse_plus),
    ("sparse_sigmoid", {}, jax.nn.sparse_sigmoid),
    ("squareplus", {"b": 4.0}, lambda x: jax.nn.squareplus(x, b=4.0)),
    ("exponential", {}, jnp.exp),
    ("linear", {}, jax.nn.identity),
    ("softmax", {}, lambda x: jax.nn.softmax(x, axis=-1)),
    ("log_softmax", {}, lambda x: jax.nn.log_softmax(x, axis=-1)),
    ("softmin", {}, lambda x: jax.nn.softmax(-x, axis=-1)),
    ("glu", {}, lambda x: jax.nn.glu(x, axis=-1)),
    ("swiglu", {}, lambda x: jax.nn.silu(_split(x)[0]) * _split(x)[1]),
    ("geglu", {}, lambda x: jax.nn.gelu(_split(x)[0], approximate=False) * _split(x)[1]),
    ("reglu", {}, lambda x: jax.nn.relu(_split(x)[0]) * _split(x)[1]),
]
JAX_NN_IDS = [n + "".join(f"-{k}={v}" for k, v in p.items()) for n, p, _ in JAX_NN]


def _x(rng, name, shape, params=None, dtype=np.float32):
    x = rng.normal(0.0, 2.0, shape)
    if name in R.NONNEGATIVE_DOMAIN:
        x = np.abs(x) + 0.1
    if REGISTRY.get(name).kind is not Kind.ROWWISE:
        ks = np.array(R.kinks(name, **(params or {})) + [-1.0, 1.0])
        for _ in range(8):
            near = (np.abs(x[..., None] - ks) < 0.05).any(-1)
            x = np.where(near, x + 0.125, x)
    return x.astype(dtype)


def _loss(f, dy):
    return lambda x: jnp.sum(f(x) * dy)


# jax.nn computes in float32 with formulas that cancel in the tails (tanh-gelu' gives 0 where
# the value is 5e-6): absolute slack 1e-5 on values of order 1; accuracy is the oracle's test below
TOL = {"rtol": 2e-5, "atol": 1e-5}


@pytest.mark.parametrize("name,params,ref", JAX_NN, ids=JAX_NN_IDS)
def test_jit_grad_matches_jax_nn(name, params, ref, rng):
    x = jnp.asarray(_x(rng, name, (3, 5, 6), params))
    ours = lambda v: aj.apply(name, v, **params)  # noqa: E731
    y_ref = ref(x)
    dy = jnp.asarray(rng.uniform(0.5, 2.0, y_ref.shape).astype(np.float32))
    np.testing.assert_allclose(ours(x), y_ref, **TOL, err_msg=f"{name} forward")
    g_ref = jax.jit(jax.grad(_loss(ref, dy)))(x)
    np.testing.assert_allclose(jax.jit(jax.grad(_loss(ours, dy)))(x), g_ref, **TOL, err_msg=f"{name} jit(grad)")


TRANSFORMED = ["gelu", "softmax", "log_softmax", "glu", "swiglu", "hard_tanh"]


@pytest.mark.parametrize("name,params,ref", [c for c in JAX_NN if c[0] in TRANSFORMED and not c[1]],
                         ids=[c[0] for c in JAX_NN if c[0] in TRANSFORMED and not c[1]])
def test_grad_vmap_jit_compose_like_jax_nn(name, params, ref, rng):
    x = jnp.asarray(_x(rng, name, (3, 5, 6), params))
    ours = lambda v: aj.apply(name, v, **params)  # noqa: E731
    dy = jnp.asarray(rng.uniform(0.5, 2.0, ref(x).shape).astype(np.float32))
    np.testing.assert_allclose(jax.grad(_loss(ours, dy))(x), jax.grad(_loss(ref, dy))(x), **TOL,
                               err_msg=f"{name} grad, eager")
    # per-example gradients: vmap of grad
    per = jax.vmap(lambda v, d: jax.grad(_loss(ours, d))(v))(x, dy)
    per_ref = jax.vmap(lambda v, d: jax.grad(_loss(ref, d))(v))(x, dy)
    np.testing.assert_allclose(per, per_ref, **TOL, err_msg=f"{name} vmap(grad)")
    # grad of a vmap over a middle axis, jitted
    g = jax.jit(jax.grad(_loss(jax.vmap(ours, in_axes=1, out_axes=1), dy)))(x)
    np.testing.assert_allclose(g, jax.grad(_loss(ref, dy))(x), **TOL, err_msg=f"{name} jit(grad(vmap(in_axes=1)))")


@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_grad_matches_float64_reference(name, params, rng):
    shape = (4, 6)
    x = _x(rng, name, shape, params)
    out_shape = (4, 3) if REGISTRY.get(name).kind is Kind.GATED else shape
    dy = R.random_cotangent(rng, out_shape, np.float32)
    y, vjp = jax.vjp(lambda v: aj.apply(name, v, **params), jnp.asarray(x))
    (dx,) = vjp(jnp.asarray(dy))
    R.assert_close(np.asarray(y), R.forward(name, x, **params), np.float32, what="jax forward")
    want = R.backward(name, x, dy, **params)
    R.assert_close(np.asarray(dx), want[0] if isinstance(want, tuple) else want, np.float32, what="jax vjp")


def test_gpt_oss_swiglu_grad_matches_the_jnp_formula(rng):
    # jit(grad) through the recipe against GPT-OSS's formula in jnp (away from the bounds, where
    # jnp.minimum/clip split the gradient of a tie in two and torch.clamp, whose convention we
    # follow, passes it whole)
    import activations

    x = rng.normal(0.0, 6.0, (4, 32)).astype(np.float32)
    x[np.abs(np.abs(x) - 7.0) < 1e-3] = 3.0

    def gpt_oss(v):
        g, u = v[..., ::2], v[..., 1::2]
        g, u = jnp.minimum(g, 7.0), jnp.clip(u, -7.0, 7.0)
        return g * jax.nn.sigmoid(1.702 * g) * (u + 1.0)

    ours = lambda v: aj.apply("swiglu", v, **activations.GPT_OSS_SWIGLU)  # noqa: E731
    dy = jnp.asarray(rng.normal(size=(4, 16)).astype(np.float32))
    np.testing.assert_allclose(ours(jnp.asarray(x)), gpt_oss(jnp.asarray(x)), **TOL)
    np.testing.assert_allclose(jax.jit(jax.grad(_loss(ours, dy)))(jnp.asarray(x)),
                               jax.grad(_loss(gpt_oss, dy))(jnp.asarray(x)), **TOL)


@pytest.mark.parametrize("name", ["gelu", "softmax", "swiglu", "log_softmax", "prelu"])
def test_check_grads_float64(name, rng):
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        x = jnp.asarray(_x(rng, name, (3, 4), dtype=np.float64))
        b = jnp.asarray(rng.normal(0.0, 0.3, 4) + 0.01)
        check_grads(lambda x, b: aj.apply(name, x, bias=b), (x, b), order=1, modes=["rev"], eps=1e-6,
                    atol=1e-7, rtol=1e-6)


def test_bias_where_and_prelu_weight_under_jit(rng):
    x = _x(rng, "softmax", (4, 6))
    b = rng.normal(size=6).astype(np.float32)
    where = rng.random((4, 6)) < 0.7
    dy = R.random_cotangent(rng, (4, 6), np.float32)

    def loss(x, b):
        return jnp.sum(aj.apply("log_softmax", x, bias=b, axis=0, where=jnp.asarray(where)) * dy)

    dx, db = jax.jit(jax.grad(loss, (0, 1)))(jnp.asarray(x), jnp.asarray(b))
    want = R.backward("log_softmax", x, dy, axis=0, where=where, bias=b)
    R.assert_close(np.asarray(dx), want, np.float32, what="dx")
    R.assert_close(np.asarray(db), R.dbias(want, np.float32), np.float32, what="dbias")

    xp = _x(rng, "prelu", (5, 6))
    w = rng.uniform(0.05, 0.5, 6).astype(np.float32)
    dyp = R.random_cotangent(rng, (5, 6), np.float32)
    dx, dw = jax.jit(jax.grad(lambda x, w: jnp.sum(aj.apply("prelu", x, weight=w) * dyp), (0, 1)))(xp, jnp.asarray(w))
    want_dx, want_dw = R.backward("prelu", xp, dyp, weight=w)
    R.assert_close(np.asarray(dx), want_dx, np.float32, what="prelu dx")
    R.assert_close(np.asarray(dw), want_dw, np.float32, what="prelu dweight")


def test_vmap_with_batched_bias_weight_and_mask(rng):
    x = jnp.asarray(_x(rng, "silu", (3, 4, 6)))
    biases = jnp.asarray(rng.normal(size=(3, 6)).astype(np.float32))
    f = lambda x, b: jnp.sum(aj.apply("silu", x, bias=b) ** 2)  # noqa: E731
    r = lambda x, b: jnp.sum(jax.nn.silu(x + b) ** 2)  # noqa: E731
    for in_axes in [(0, 0), (0, None), (None, 0)]:
        bb = biases if in_axes[1] == 0 else biases[0]
        xx = x if in_axes[0] == 0 else x[0]
        got = jax.jit(jax.vmap(jax.grad(f, (0, 1)), in_axes=in_axes))(xx, bb)
        want = jax.vmap(jax.grad(r, (0, 1)), in_axes=in_axes)(xx, bb)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5, err_msg=str(in_axes))
    # prelu with a weight per batch element
    weights = jnp.asarray(rng.uniform(0.1, 0.4, (3, 6)).astype(np.float32))
    p = lambda x, w: jnp.sum(aj.apply("prelu", x, weight=w) ** 2)  # noqa: E731
    q = lambda x, w: jnp.sum(jnp.where(x > 0, x, w * x) ** 2)  # noqa: E731
    for g, w in zip(jax.vmap(jax.grad(p, (0, 1)))(x, weights), jax.vmap(jax.grad(q, (0, 1)))(x, weights)):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)
    # a mask per batch element, nested vmap
    masks = jnp.asarray(rng.random((3, 4, 6)) < 0.7)
    s = lambda x, m: aj.apply("softmax", x, where=m)  # noqa: E731
    got = jax.vmap(jax.vmap(s))(x, masks)
    want = jnp.where(masks, jax.nn.softmax(x, axis=-1, where=masks), 0.0)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


def test_pmap(rng):
    n = jax.local_device_count()
    x = jnp.asarray(_x(rng, "gelu", (n, 4, 6)))
    got = jax.pmap(jax.grad(lambda v: jnp.sum(aj.apply("gelu", v))))(x)
    want = jax.vmap(jax.grad(lambda v: jnp.sum(jax.nn.gelu(v, approximate=False))))(x)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_16_bit(dtype, rng):
    x = jnp.asarray(_x(rng, "gelu", (4, 8))).astype(dtype)
    y, vjp = jax.vjp(lambda v: aj.apply("gelu", v), x)
    (dx,) = vjp(jnp.ones_like(y))
    assert y.dtype == dtype and dx.dtype == dtype
    want = jax.grad(lambda v: jnp.sum(jax.nn.gelu(v.astype(jnp.float32), approximate=False)))(x)
    np.testing.assert_allclose(np.asarray(dx, np.float32), want, rtol=2e-2, atol=2e-2)


def test_mlp_trains_like_jax_nn(rng):
    """Two identical MLPs, one with our gelu, one with jax.nn.gelu: the same losses step for step."""
    x = jnp.asarray(rng.normal(size=(64, 8)).astype(np.float32))
    t = jnp.sin(x[:, :1]) * x[:, 1:2]
    key = jax.random.PRNGKey(0)
    k1, k2 = jax.random.split(key)
    params0 = {"w1": jax.random.normal(k1, (8, 32)) / 3, "b1": jnp.zeros(32),
               "w2": jax.random.normal(k2, (32, 1)) / 6, "b2": jnp.zeros(1)}

    def make(act):
        def loss(p):
            h = act(x @ p["w1"], p["b1"])
            return jnp.mean((h @ p["w2"] + p["b2"] - t) ** 2)

        @jax.jit
        def step(p):
            value, g = jax.value_and_grad(loss)(p)
            return jax.tree_util.tree_map(lambda a, b: a - 0.1 * b, p, g), value

        return step

    ours = make(lambda h, b: aj.apply("gelu", h, bias=b))
    theirs = make(lambda h, b: jax.nn.gelu(h + b, approximate=False))
    pa = pb = params0
    losses = []
    for _ in range(40):
        pa, la = ours(pa)
        pb, lb = theirs(pb)
        losses.append(float(la))
        assert float(la) == pytest.approx(float(lb), rel=1e-4)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: aj.apply("gelu", jnp.ones(3, jnp.int32)), TypeError, "dtype int32"),
        (lambda: aj.apply("gelu", "abc"), TypeError, "x must be"),
        (lambda: aj.apply("gelu", jnp.ones(3), approx="tanh"), TypeError, "unexpected parameter 'approx'"),
        (lambda: aj.apply("swiglu", jnp.ones((2, 3))), ValueError, "odd length"),
        (lambda: aj.apply("softmax", jnp.ones((2, 3)), axis=-3), ValueError, "out of range"),
        (lambda: aj.apply("gelu", jnp.ones((2, 3)), bias=jnp.ones(2)), ValueError, "bias must be 1-D"),
        (lambda: aj.apply("gelu", jnp.ones((2, 3)), where=jnp.ones((2, 3), bool)), TypeError, "where="),
        (lambda: aj.apply("softmax", jnp.ones((2, 3)), where=jnp.ones((2, 3))), ValueError, "boolean"),
        (lambda: aj.apply("prelu", jnp.ones((2, 3)), weight=jnp.ones(2)), ValueError, "weight must be 1-D"),
        (lambda: jax.jit(lambda a: aj.apply("elu", jnp.ones(3), alpha=a))(1.0), TypeError, "static"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_example_jax_mlp_learns_the_rings():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "jax_mlp.py"
    spec = importlib.util.spec_from_file_location("jax_mlp_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.train(steps=200)["accuracy"] >= 0.95


@pytest.mark.gpu
def test_gpu_arrays_use_the_cuda_kernels(rng):
    if not any(d.platform in ("gpu", "cuda") for d in jax.devices()):
        pytest.skip("needs jax with a GPU")
    x = jax.device_put(jnp.asarray(_x(rng, "gelu", (64, 128))), jax.devices("gpu")[0])
    got = jax.jit(jax.grad(lambda v: jnp.sum(aj.apply("gelu", v) ** 2)))(x)
    want = jax.grad(lambda v: jnp.sum(jax.nn.gelu(v, approximate=False) ** 2))(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-5, atol=1e-5)
