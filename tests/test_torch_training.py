"""activations.torch: autograd (gradcheck in float64 for the whole catalogue), torch's own
functions and modules as the reference, torch.compile(fullgraph=True), torch.export, and a
model trained with our GELU tracking the same model with torch.nn.GELU step for step."""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import activations  # noqa: E402
import activations.torch as at  # noqa: E402
import reference as R  # noqa: E402
from activations.catalogue import REGISTRY  # noqa: E402
from activations.registry import REQUIRED, Kind  # noqa: E402

F64 = torch.float64

# parameters for records with required ones, and variants that exercise other branches
REQUIRED_PARAMS = {"threshold": {"threshold": 0.3, "value": -2.0}}
VARIANTS = [
    ("relu", {"negative_slope": 0.1, "max_value": 2.5, "threshold": -0.5}),
    ("gelu", {"approximate": "tanh"}),
    ("geglu", {"approximate": "tanh"}),
    ("rrelu", {"training": True, "seed": 7}),
    ("softplus", {"beta": 2.0, "threshold": 1.0}),
    ("prelu", {"weight": 0.1}),
    ("elu", {"alpha": 0.5}),
    ("celu", {"alpha": 2.0}),
    ("hard_tanh", {"min_val": -2.0, "max_val": 0.5}),
    ("snake", {"frequency": 2.0}),
    ("swiglu", dict(activations.GPT_OSS_SWIGLU)),
    ("glu", {"limit": 2.0, "offset": 0.5, "alpha": -1.5}),
    ("reglu", {"limit": 1.5, "offset": -1.0, "layout": "interleaved"}),
]
CASES = [(r.name, REQUIRED_PARAMS.get(r.name, {})) for r in REGISTRY] + VARIANTS
CASE_IDS = [n + "".join(f"-{k}={v}" for k, v in p.items()) for n, p in CASES]


def _away_from_kinks(x: np.ndarray, name: str, params: dict, gap: float = 0.05) -> np.ndarray:
    """Finite differences need each input farther than ``gap`` from a kink of the function."""
    ks = np.array(R.kinks(name, **params) + [-1.0, 1.0])
    for _ in range(8):
        near = (np.abs(x[..., None] - ks) < gap).any(-1)
        if not near.any():
            break
        x = np.where(near, x + 2.5 * gap, x)
    return x


def _inputs(rng, name: str, shape, params: dict | None = None, requires_grad=True) -> torch.Tensor:
    x = rng.normal(0.0, 2.0, shape)
    if name in R.NONNEGATIVE_DOMAIN:
        x = np.abs(x) + 0.1
    if REGISTRY.get(name).kind is not Kind.ROWWISE:
        x = _away_from_kinks(x, name, params or {})
    return torch.tensor(x, dtype=F64, requires_grad=requires_grad)


def _shape(name: str) -> tuple:
    return (3, 6) if REGISTRY.get(name).kind is Kind.GATED else (3, 4)


# --------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_gradcheck_every_activation(name, params, rng):
    x = _inputs(rng, name, _shape(name), params)
    assert torch.autograd.gradcheck(lambda x: at.apply(name, x, **params), (x,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("name", REGISTRY.names("rowwise"))
@pytest.mark.parametrize("axis", [0, -1])
def test_gradcheck_rowwise_with_mask(name, axis, rng):
    x = _inputs(rng, name, (4, 5))
    where = torch.tensor(rng.random((4, 5)) < 0.7)
    where[1] = False  # a fully masked row (and column) too
    where[:, 2] = False
    assert torch.autograd.gradcheck(lambda x: at.apply(name, x, axis=axis, where=where), (x,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", REGISTRY.names("gated"))
def test_gradcheck_gated_along_axis_0(name, rng):
    x = _inputs(rng, name, (4, 3))
    assert torch.autograd.gradcheck(lambda x: at.apply(name, x, axis=0), (x,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["gelu", "mish", "softmax", "log_softmax", "swiglu", "glu", "hard_silu"])
def test_gradcheck_bias(name, rng):
    x = _inputs(rng, name, (3, 2, 6))
    bias = torch.tensor(rng.normal(0.0, 0.5, 6) + 0.013, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, b: at.apply(name, x, bias=b), (x, bias), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("channels", [4, 1])
@pytest.mark.parametrize("with_bias", [False, True])
def test_gradcheck_prelu_weight(channels, with_bias, rng):
    x = _inputs(rng, "prelu", (5, 4))
    weight = torch.tensor(rng.uniform(0.05, 0.5, channels), dtype=F64, requires_grad=True)
    bias = torch.tensor(rng.normal(0.0, 0.3, 4), dtype=F64, requires_grad=True) if with_bias else None
    args = (x, weight) + ((bias,) if with_bias else ())
    x.data = x.data - (0.0 if bias is None else bias.data)  # keep x + bias where x was (off the kink)

    def f(x, w, b=None):
        return at.apply("prelu", x, weight=w, bias=b)

    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-7)


# ---------------------------------------------- values: the float64 oracle
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_autograd_matches_float64_reference(name, params, rng):
    x = _inputs(rng, name, (2, 3, 6) if REGISTRY.get(name).kind is Kind.GATED else (2, 3, 4), params)
    y = at.apply(name, x, **params)
    dy = torch.tensor(R.random_cotangent(rng, tuple(y.shape), np.float64))
    y.backward(dy)
    xn = x.detach().numpy()
    R.assert_close(y.detach().numpy(), R.forward(name, xn, **params), np.float64, what="torch forward")
    want = R.backward(name, xn, dy.numpy(), **params)
    want = want[0] if isinstance(want, tuple) else want
    R.assert_close(x.grad.numpy(), want, np.float64, what="torch x.grad")


def test_bias_and_weight_gradients_match_reference(rng):
    x = _inputs(rng, "prelu", (3, 4))
    w = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64, requires_grad=True)
    b = torch.tensor([0.5, -0.25, 0.125, 0.0], dtype=F64, requires_grad=True)
    y = at.apply("prelu", x, weight=w, bias=b)
    dy = torch.tensor(R.random_cotangent(rng, (3, 4), np.float64))
    y.backward(dy)
    dx, dw = R.backward("prelu", x.detach().numpy(), dy.numpy(), bias=b.detach().numpy(), weight=w.detach().numpy())
    R.assert_close(x.grad.numpy(), dx, np.float64, what="dx")
    R.assert_close(b.grad.numpy(), R.dbias(dx, np.float64), np.float64, what="dbias")
    R.assert_close(w.grad.numpy(), dw, np.float64, what="dweight")


# ------------------------------------------------- torch's own as reference
# torch's float64 backward of these uses float32 constants (1/6 as 1.0f / 6.0f): 3e-8 relative
LOOSE_FLOAT64 = ("Hardsigmoid", "Hardswish")


def _pairs():
    n = torch.nn
    return [
        (at.ReLU(), n.ReLU()), (at.ReLU6(), n.ReLU6()), (at.LeakyReLU(), n.LeakyReLU()),
        (at.LeakyReLU(0.3), n.LeakyReLU(0.3)), (at.ELU(), n.ELU()), (at.ELU(alpha=0.5), n.ELU(alpha=0.5)),
        (at.SELU(), n.SELU()), (at.CELU(2.0), n.CELU(2.0)), (at.GELU(), n.GELU()),
        (at.GELU(approximate="tanh"), n.GELU(approximate="tanh")), (at.Sigmoid(), n.Sigmoid()),
        (at.Hardsigmoid(), n.Hardsigmoid()), (at.LogSigmoid(), n.LogSigmoid()), (at.Softplus(), n.Softplus()),
        (at.Softplus(beta=2.0, threshold=1.0), n.Softplus(beta=2.0, threshold=1.0)), (at.Softsign(), n.Softsign()),
        (at.SiLU(), n.SiLU()), (at.Hardswish(), n.Hardswish()), (at.Mish(), n.Mish()), (at.Tanh(), n.Tanh()),
        (at.Hardtanh(-2.0, 0.5), n.Hardtanh(-2.0, 0.5)), (at.Tanhshrink(), n.Tanhshrink()),
        (at.Softshrink(0.3), n.Softshrink(0.3)), (at.Hardshrink(), n.Hardshrink()),
        (at.Threshold(0.1, 20.0), n.Threshold(0.1, 20.0)), (at.RReLU().eval(), n.RReLU().eval()),
        (at.Softmax(dim=0), n.Softmax(dim=0)), (at.Softmax(dim=-1), n.Softmax(dim=-1)),
        (at.LogSoftmax(dim=1), n.LogSoftmax(dim=1)), (at.Softmin(dim=1), n.Softmin(dim=1)),
        (at.GLU(), n.GLU()), (at.GLU(dim=0), n.GLU(dim=0)), (at.PReLU(6), n.PReLU(6)),
    ]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: repr(p[0]))
def test_modules_match_torch(pair, dtype, rng):
    ours, theirs = pair
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    x = torch.tensor(rng.normal(0.0, 2.0, (4, 6)), dtype=dtype)
    x = x + 0.003 * (x.abs() < 0.01)  # no input on a kink
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), theirs(xb)
    dy = torch.tensor(rng.uniform(0.5, 2.0, tuple(ya.shape)), dtype=dtype)
    ya.backward(dy)
    yb.backward(dy)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {"rtol": 2e-5, "atol": 2e-6}
    if dtype == torch.float64 and type(ours).__name__ in LOOSE_FLOAT64:
        tol = {"rtol": 1e-7, "atol": 1e-14}
    torch.testing.assert_close(ya, yb, **tol)
    torch.testing.assert_close(xa.grad, xb.grad, **tol)
    for (_, pa), (_, pb) in zip(ours.named_parameters(), theirs.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, **tol)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name,fn", [("gelu", F.gelu), ("silu", F.silu), ("softmax", lambda x: F.softmax(x, -1))])
def test_16_bit_gradients_match_torch(name, fn, dtype, rng):
    x = torch.tensor(rng.normal(0.0, 2.0, (8, 16)), dtype=dtype)
    xa, xb = x.clone().requires_grad_(), x.float().requires_grad_()
    ya = at.apply(name, xa)
    assert ya.dtype == dtype
    dy = torch.tensor(rng.uniform(0.5, 2.0, (8, 16)), dtype=dtype)
    ya.backward(dy)
    fn(xb).backward(dy.float())
    assert xa.grad.dtype == dtype
    tol = 1e-2 if dtype == torch.float16 else 2e-2
    torch.testing.assert_close(xa.grad.float(), xb.grad, rtol=tol, atol=tol)


def test_softmax_implicit_dim_follows_torch(rng):
    x = torch.tensor(rng.normal(size=(2, 3, 4)))
    with pytest.warns(UserWarning, match="Implicit dimension"):
        got = at.Softmax()(x)
    with pytest.warns(UserWarning):
        want = torch.nn.Softmax()(x)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("cls,composed", [
    ("Softmax", lambda z, d: F.softmax(z, d)), ("LogSoftmax", lambda z, d: F.log_softmax(z, d)),
    ("Softmin", lambda z, d: F.softmin(z, d)),
])
def test_softmax_modules_take_temperature_and_quiet(cls, composed, rng):
    x = torch.tensor(rng.normal(0.0, 3.0, (3, 5)), dtype=F64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    module = getattr(at, cls)(dim=1, temperature=2.5)
    assert "temperature=2.5" in repr(module)
    ya, yb = module(xa), composed(xb / 2.5, 1)
    dy = torch.tensor(rng.uniform(0.5, 2.0, (3, 5)), dtype=F64)
    ya.backward(dy)
    yb.backward(dy)
    torch.testing.assert_close(ya, yb, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-12, atol=1e-14)
    with pytest.raises(TypeError, match="temperature, quiet"):
        getattr(at, cls)(dim=1, temprature=2.0)


def test_quiet_softmax_module_is_softmax_with_an_implicit_zero_logit(rng):
    x = torch.tensor(rng.normal(0.0, 3.0, (4, 6)), dtype=F64)
    padded = torch.cat([x, torch.zeros(4, 1, dtype=F64)], dim=1)
    torch.testing.assert_close(at.Softmax(dim=-1, quiet=True)(x), F.softmax(padded, -1)[:, :-1])


def test_swiglu_and_friends_match_composed_torch(rng):
    x = torch.tensor(rng.normal(size=(3, 8)), dtype=F64)
    a, b = x.chunk(2, dim=-1)
    torch.testing.assert_close(at.SwiGLU()(x), F.silu(a) * b)
    torch.testing.assert_close(at.GEGLU(approximate="tanh")(x), F.gelu(a, approximate="tanh") * b)
    torch.testing.assert_close(at.ReGLU()(x), F.relu(a) * b)
    a0, b0 = x.chunk(2, dim=0)
    torch.testing.assert_close(at.SwiGLU(dim=0)(x[:2]), F.silu(x[:1]) * x[1:2])
    assert at.SwiGLU(dim=0)(x[:2]).shape == (1, 8)
    del a0, b0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
def test_gpt_oss_swiglu_trains_like_torch_eager(dtype, rng):
    # the module with activations.GPT_OSS_SWIGLU against GPT-OSS's formula in torch, values at
    # the clamp bounds included: torch.clamp passes the gradient at the bound itself, and so do we
    x = rng.normal(0.0, 6.0, (4, 32))
    x[0, :8] = [7.0, 7.0, -7.0, -7.0, 7.5, 8.0, 6.5, -7.5]
    ours = torch.tensor(x, dtype=dtype, requires_grad=True)
    theirs = torch.tensor(x, dtype=dtype, requires_grad=True)
    y = at.SwiGLU(**activations.GPT_OSS_SWIGLU)(ours)
    g, u = theirs[..., ::2], theirs[..., 1::2]
    g, u = g.clamp(min=None, max=7.0), u.clamp(min=-7.0, max=7.0)
    want = g * torch.sigmoid(1.702 * g) * (u + 1)
    dy = torch.tensor(rng.normal(size=want.shape), dtype=dtype)
    y.backward(dy)
    want.backward(dy)
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2e-2}[dtype]
    torch.testing.assert_close(y, want, rtol=tol, atol=tol)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=tol, atol=tol)
    assert (ours.grad[0, 4:6] == 0).all() and (ours.grad[0, 8:] != 0).any()  # 7.5 and 8.0 cut


def test_gated_modules_take_the_clamp_by_keyword_only(rng):
    x = torch.tensor(rng.normal(0.0, 4.0, (4, 8)), dtype=F64)
    kw = {"limit": 2.0, "offset": 1.0, "layout": "interleaved"}
    torch.testing.assert_close(at.GLU(0, alpha=-2.0, **kw)(x), at.apply("glu", x, axis=0, alpha=-2.0, **kw))
    torch.testing.assert_close(at.GEGLU("tanh", **kw)(x), at.apply("geglu", x, approximate="tanh", **kw))
    assert "limit=2.0" in repr(at.ReGLU(**kw))
    with pytest.raises(TypeError, match="alpha"):
        at.ReGLU(alpha=2.0)
    with pytest.raises(TypeError, match="at most"):
        at.SwiGLU(-1, 7.0)  # dim is the only positional argument
    with pytest.raises(ValueError, match="limit"):
        at.SwiGLU(limit=-1.0)


def test_rrelu_training_draws_fresh_slopes(rng):
    m = at.RReLU()  # training mode by default, as torch's
    x = -torch.ones(4096, dtype=F64)
    torch.manual_seed(0)
    y1, y2 = m(x), m(x)
    slopes = -y1
    assert not torch.equal(y1, y2)
    assert 1 / 8 <= slopes.min() and slopes.max() <= 1 / 3
    assert abs(slopes.mean().item() - (1 / 8 + 1 / 3) / 2) < 0.01
    torch.manual_seed(0)
    torch.testing.assert_close(m(x), y1)  # torch.manual_seed makes it reproducible


# ---------------------------------------------------------- compile / export
def _compiled_cases():
    return [
        ("gelu", {}, (5, 6), {"bias": True}),
        ("softmax", {}, (4, 6), {"where": True, "axis": 0}),
        ("swiglu", {}, (4, 6), {}),
        ("prelu", {}, (4, 6), {"weight": True}),
        ("softplus", {"beta": 2.0, "threshold": 3.0}, (4, 6), {}),
    ]


@pytest.mark.parametrize("name,params,shape,extra", _compiled_cases(), ids=lambda c: str(c))
def test_compile_fullgraph_forward_and_backward(name, params, shape, extra, rng):
    x = torch.tensor(rng.normal(0.0, 2.0, shape), dtype=torch.float32)
    kw = {}
    tensors = [x]
    if extra.get("bias"):
        tensors.append(torch.tensor(rng.normal(size=shape[-1]), dtype=torch.float32))
    if extra.get("weight"):
        tensors.append(torch.full((shape[-1],), 0.2))
    if extra.get("where"):
        kw["where"] = torch.tensor(rng.random(shape) < 0.8)
    if "axis" in extra:
        kw["axis"] = extra["axis"]

    def f(x, *rest):
        if extra.get("bias"):
            kw["bias"] = rest[0]
        if extra.get("weight"):
            kw["weight"] = rest[0]
        return (at.apply(name, x, **kw, **params) ** 2).sum()

    eager = [t.clone().requires_grad_() for t in tensors]
    f(*eager).backward()
    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")  # raises on any graph break
    traced = [t.clone().requires_grad_() for t in tensors]
    loss = compiled(*traced)
    loss.backward()
    torch.testing.assert_close(loss, f(*[t.detach() for t in tensors]))
    for a, b in zip(traced, eager):
        torch.testing.assert_close(a.grad, b.grad)


def _mlp(act: torch.nn.Module, seed: int = 0, dtype=torch.float32) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 32), act, torch.nn.Linear(32, 32), copy.deepcopy(act), torch.nn.Linear(32, 1)
    ).to(dtype)


def test_compile_records_one_graph_with_the_op(rng):
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm.code)
        return gm.forward

    torch._dynamo.reset()
    f = torch.compile(lambda x, b: at.apply("mish", x, bias=b).sum(), fullgraph=True, backend=backend)
    f(torch.randn(3, 4), torch.randn(4))
    assert len(graphs) == 1 and "activations.apply" in graphs[0], graphs


def test_compile_inductor_module_forward_and_backward(rng):
    model = _mlp(at.GELU())
    x = torch.tensor(rng.normal(size=(16, 8)), dtype=torch.float32)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    got = compiled(x)
    got.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    want = model(x)
    want.sum().backward()
    torch.testing.assert_close(got, want)
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_export_records_the_custom_op(rng):
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), at.SwiGLU(), at.PReLU(4), at.LogSoftmax(dim=-1))
    x = torch.tensor(rng.normal(size=(3, 6)), dtype=torch.float32)
    exported = torch.export.export(model, (x,))
    code = exported.graph_module.code
    assert code.count("torch.ops.activations.apply.default") == 3, code
    torch.testing.assert_close(exported.module()(x), model(x))
    x2 = torch.tensor(rng.normal(size=(3, 6)), dtype=torch.float32)
    torch.testing.assert_close(exported.module()(x2), model(x2))


def test_opcheck_both_operators(rng):
    """torch.library.opcheck: schema, fake tensors, autograd registration and AOT dispatch agree."""
    x = torch.tensor(rng.normal(size=(3, 6)), dtype=F64, requires_grad=True)
    b = torch.tensor(rng.normal(size=6), dtype=F64, requires_grad=True)
    params = '{"approximate": "none"}'
    torch.library.opcheck(torch.ops.activations.apply.default, (x, b, None, None, "gelu", -1, params))
    dy = torch.ones(3, 6, dtype=F64)
    args = (x.detach(), dy, b.detach(), None, None, "gelu", -1, params)
    torch.library.opcheck(torch.ops.activations.grad.default, args)


# --------------------------------------------------------------- training
def test_training_with_our_gelu_tracks_torch_gelu(rng):
    x = torch.tensor(rng.normal(size=(64, 8)), dtype=torch.float32)
    y = torch.sin(x[:, :1]) * x[:, 1:2] + 0.5 * x[:, 2:3]  # a smooth function of x the MLP can fit
    ours, theirs = _mlp(at.GELU()), _mlp(torch.nn.GELU())
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)  # the same initial weights
    opts = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (ours, theirs)]
    losses = []
    for _ in range(30):
        step = []
        for model, opt in zip((ours, theirs), opts):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            step.append(loss.item())
        losses.append(step)
        assert step[0] == pytest.approx(step[1], rel=1e-4), losses
    assert losses[-1][0] < 0.5 * losses[0][0], "the model did not learn"
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------- memory and errors
def test_backward_saves_x_not_y(rng):
    saved = []

    def pack(t):
        saved.append(t)
        return t

    x = torch.tensor(rng.normal(size=(4, 6)), requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = at.apply("sigmoid", x)
    assert len(saved) == 1 and saved[0] is x, saved
    assert not any(s.data_ptr() == y.data_ptr() for s in saved)


def test_plain_apply_still_refuses_requires_grad():
    w = torch.nn.Parameter(torch.randn(3))
    with pytest.raises(ValueError, match="requires grad"):
        activations.apply("silu", w)
    at.apply("silu", w).sum().backward()  # the differentiable one takes it
    assert w.grad is not None


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: at.apply("gelu", np.ones(3)), TypeError, "x must be a torch.Tensor"),
        (lambda: at.apply("gelu", torch.ones(3, dtype=torch.int32)), TypeError, "dtype torch.int32"),
        (lambda: at.apply("gelu", torch.ones(3), approx="tanh"), TypeError, "unexpected parameter 'approx'"),
        (lambda: at.apply("celu", torch.ones(3), alpha=0.0), ValueError, "alpha"),
        (lambda: at.apply("gleu", torch.ones(3)), ValueError, "did you mean"),
        (lambda: at.apply("swiglu", torch.ones(2, 3)), ValueError, "odd length"),
        (lambda: at.apply("softmax", torch.ones(2, 3), axis=2), ValueError, "out of range"),
        (lambda: at.apply("softmax", torch.ones(2, 3), axis=0.5), TypeError, "axis must be an int"),
        (lambda: at.apply("gelu", torch.ones(2, 3), bias=torch.ones(2)), ValueError, "bias must be 1-D"),
        (lambda: at.apply("gelu", torch.ones(2, 3), where=torch.ones(2, 3, dtype=torch.bool)), TypeError, "where="),
        (lambda: at.apply("prelu", torch.ones(2, 3), weight="a"), TypeError, "weight"),
        (lambda: at.apply("prelu", torch.ones(2, 3), weight=torch.ones(2)), ValueError, "weight must be 1-D"),
        (lambda: at.apply("softmax", torch.ones(2, 3), where=torch.ones(2, 3)), ValueError, "boolean mask"),
        (lambda: at.apply("gelu", torch.ones(3), weight=torch.ones(3)), TypeError, "unexpected parameter 'weight'"),
        (lambda: at.GELU(approximate="fast"), ValueError, "approximate"),
        (lambda: at.Threshold(0.5), TypeError, "missing required parameter 'value'"),
        (lambda: at.ReLU(foo=1), TypeError, "unexpected argument 'foo'"),
        (lambda: at.PReLU(0), ValueError, "num_parameters"),
        (lambda: at.Activation("softplus", beta=0.0), ValueError, "beta"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_compiled_errors_name_the_argument():
    torch._dynamo.reset()
    f = torch.compile(lambda x: at.apply("swiglu", x), fullgraph=True, backend="aot_eager")
    with pytest.raises(Exception, match="odd length"):
        f(torch.ones(2, 3))


def test_example_torch_mlp_learns_the_rings():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "torch_mlp.py"
    spec = importlib.util.spec_from_file_location("torch_mlp_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.train(steps=120)["accuracy"] >= 0.95


def test_forward_mode_is_refused_not_silently_zero():
    x = torch.randn(3, 4, dtype=F64)
    with pytest.raises(NotImplementedError, match="forward-mode"):
        torch.func.jvp(lambda v: at.apply("gelu", v), (x,), (torch.ones_like(x),))
    import torch.autograd.forward_ad as fwad

    with fwad.dual_level():
        dual = fwad.make_dual(x, torch.ones_like(x))
        with pytest.raises(NotImplementedError, match="forward-mode"):
            at.apply("silu", dual)
    (g,) = torch.autograd.grad(at.apply("gelu", x.requires_grad_()).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="no autograd formula"):
        g.sum().backward()  # double backward is not registered: an error, not a wrong number


@pytest.mark.gpu
def test_cuda_tensors_train_on_the_current_stream(rng):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA build of torch and a GPU")
    x = torch.tensor(rng.normal(size=(64, 128)), dtype=torch.float32, device="cuda")
    b = torch.tensor(rng.normal(size=128), dtype=torch.float32, device="cuda")
    xa, ba = x.clone().requires_grad_(), b.clone().requires_grad_()
    xb, bb = x.clone().requires_grad_(), b.clone().requires_grad_()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # our kernels must run on this stream, ordered with torch's work
        ya = at.apply("gelu", xa, bias=ba)
        ya.square().sum().backward()
    torch.cuda.current_stream().wait_stream(side)
    F.gelu(xb + bb).square().sum().backward()
    assert ya.device == x.device and xa.grad.device == x.device
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ba.grad, bb.grad, rtol=1e-4, atol=1e-4)
