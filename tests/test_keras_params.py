"""activations.keras passes every argument of activations.apply to the kernels: the softmax
family's temperature and quiet, entmax's alpha (a float, one per row, or a learnable weight),
tuple axes, bias and where masks at call time, the gated units' clamp, offset, slope and layout.

Each Keras backend runs in a child process (Keras picks its backend at import), once for all
cases: forward values and the gradient of sum(y * c) through the backend's own autodiff (torch
autograd, jax.grad), against float64 formulas written below; the layer's config goes through
JSON and back and gives the same values.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

if importlib.util.find_spec("keras") is None:
    pytest.skip("keras is not installed", allow_module_level=True)

SHAPE = (3, 4, 6)


def _inputs():
    rng = np.random.default_rng(20261207)
    x = rng.normal(0.0, 1.5, SHAPE).astype(np.float32)
    c = rng.uniform(-2.0, 2.0, SHAPE).astype(np.float32)  # the cotangent: grad of sum(y * c)
    bias = np.linspace(-0.8, 0.8, SHAPE[-1]).astype(np.float32)
    where = rng.random(SHAPE) > 0.25
    where[1] = False  # a fully masked slab: rows of every axis choice that lie in it give 0
    alpha_rows = rng.uniform(1.2, 2.0, (3, 4, 1)).astype(np.float32)  # one alpha per row of axis -1
    alpha_slabs = np.array([1.3, 1.6, 1.9], np.float32).reshape(3, 1, 1)  # one per row of axes (1, 2)
    return {"x": x, "c": c, "bias": bias, "where": where, "alpha_rows": alpha_rows, "alpha_slabs": alpha_slabs}


# id, "layer" or "get", activation, constructor arguments ({"$": key} names an input array), call arguments
CASES = [
    ("softmax-T", "layer", "softmax", {"temperature": 0.5}, ()),
    ("softmax-quiet", "layer", "softmax", {"quiet": True}, ()),
    ("softmax-T-quiet-axis0", "layer", "softmax", {"temperature": 2.0, "quiet": True, "axis": 0}, ()),
    ("softmax-axes12-bias-where", "layer", "softmax", {"axis": (1, 2), "temperature": 0.8}, ("bias", "where")),
    ("softmax-get-T", "get", "softmax", {"temperature": 3.0, "quiet": True}, ()),
    ("log_softmax-T-quiet-where", "layer", "log_softmax", {"temperature": 0.7, "quiet": True}, ("where",)),
    ("log_softmax-axes02-bias", "layer", "log_softmax", {"axis": (0, 2), "temperature": 1.5}, ("bias",)),
    ("softmin-T-quiet", "layer", "softmin", {"temperature": 1.5, "quiet": True}, ("bias",)),
    ("softmin-get-axes01", "get", "softmin", {"axis": (0, 1)}, ()),
    ("entmax-alpha", "layer", "entmax", {"alpha": 1.5}, ()),
    ("entmax-alpha-axes02-where", "layer", "entmax", {"alpha": 1.25, "axis": (0, 2)}, ("where",)),
    ("entmax-rows-bias", "layer", "entmax", {"alpha": {"$": "alpha_rows"}}, ("bias",)),
    ("entmax-slabs-axes12-where", "layer", "entmax", {"alpha": {"$": "alpha_slabs"}, "axis": (1, 2)}, ("where",)),
    ("entmax15-axis1-bias-where", "layer", "entmax15", {"axis": 1}, ("bias", "where")),
    ("sparsemax-axes12", "get", "sparsemax", {"axis": (1, 2)}, ()),
    ("swiglu-clamped-interleaved", "layer", "swiglu",
     {"alpha": 1.702, "limit": 1.5, "offset": 1.0, "layout": "interleaved"}, ("bias",)),
    ("glu-axis1", "layer", "glu", {"alpha": -1.5, "limit": 1.2, "offset": 0.5, "axis": 1}, ()),
    ("geglu-tanh-interleaved", "get", "geglu", {"approximate": "tanh", "limit": 2.0, "offset": -0.5,
                                                "layout": "interleaved"}, ()),
]
CASE_IDS = [c[0] for c in CASES]


# ------------------------------------------------------------- float64 oracle
def _rows(a, axes):
    """a with the row axes moved last and merged: (rows, n), and how to put results back."""
    axes = tuple(ax % a.ndim for ax in axes)
    rest = [d for d in range(a.ndim) if d not in axes]
    perm = rest + list(axes)
    moved = np.transpose(a, perm)
    shape = moved.shape
    inverse = np.argsort(perm)
    return moved.reshape(-1, math.prod(a.shape[d] for d in axes)), lambda r: np.transpose(r.reshape(shape), inverse)


def _softmax_row(u, m, quiet):
    if not m.any():
        return np.zeros_like(u)
    top = max(u[m].max(), 0.0) if quiet else u[m].max()
    e = np.where(m, np.exp(np.where(m, u, 0.0) - top), 0.0)
    return e / (e.sum() + (math.exp(-top) if quiet else 0.0))


def _entmax_row(z, m, alpha):
    """alpha-entmax of the unmasked entries: bisection on tau to float64 precision."""
    if not m.any():
        return np.zeros_like(z)
    s = (alpha - 1.0) * z[m]
    lo, hi = s.max() - 1.0, s.max()
    for _ in range(200):
        tau = 0.5 * (lo + hi)
        if (np.maximum(s - tau, 0.0) ** (1.0 / (alpha - 1.0))).sum() >= 1.0:
            lo = tau
        else:
            hi = tau
    p = np.maximum(s - lo, 0.0) ** (1.0 / (alpha - 1.0))
    out = np.zeros_like(z)
    out[m] = p / p.sum()
    return out


def _rowwise(name, params, x, c, bias, where):
    axis = params.get("axis", -1)
    axes = axis if isinstance(axis, tuple) else (axis,)
    z = x + (0.0 if bias is None else bias)
    mask = np.ones(x.shape, bool) if where is None else where
    zr, back = _rows(z, axes)
    cr, _ = _rows(c, axes)
    mr, _ = _rows(mask, axes)
    alpha = params.get("alpha", {"entmax15": 1.5, "sparsemax": 2.0}.get(name))
    ar = _rows(np.broadcast_to(np.asarray(alpha, np.float64), x.shape), axes)[0][:, 0] if alpha is not None else None
    t = params.get("temperature", 1.0)
    quiet = params.get("quiet", False)
    y, dz = np.zeros_like(zr), np.zeros_like(zr)
    for i, (u, ci, m) in enumerate(zip(zr, cr, mr)):
        if name in ("softmax", "softmin", "log_softmax"):
            sign = -1.0 if name == "softmin" else 1.0
            p = _softmax_row(sign * u / t, m, quiet)
            if name == "log_softmax":
                y[i] = np.where(m, np.log(np.where(m, p, 1.0)), 0.0)
                dz[i] = np.where(m, ci - p * ci[m].sum(), 0.0) / t
            else:
                y[i] = p
                dz[i] = sign * p * (ci - (p * ci).sum()) / t
        else:
            p = _entmax_row(u, m, ar[i])
            g = np.where(p > 0, p ** (2.0 - ar[i]), 0.0)
            y[i] = p
            dz[i] = g * ci - g * (g * ci).sum() / g.sum() if g.sum() > 0 else 0.0
    return back(y), back(dz)


def _gated(name, params, x, c, bias):
    axis = params.get("axis", -1)
    z = x + (0.0 if bias is None else bias)
    z = np.moveaxis(z, axis, -1)
    c = np.moveaxis(c, axis, -1)
    if params.get("layout", "concat") == "interleaved":
        first, second = z[..., 0::2], z[..., 1::2]
    else:
        first, second = np.split(z, 2, axis=-1)
    gate, lin = (second, first) if name == "glu" else (first, second)  # glu gates with its second half
    limit, offset, slope = params.get("limit"), params.get("offset", 0.0), params.get("alpha", 1.0)
    g, dg_cut = (gate, 1.0) if limit is None else (np.minimum(gate, limit), (gate <= limit).astype(float))
    v, dv_cut = (lin, 1.0) if limit is None else (np.clip(lin, -limit, limit), (np.abs(lin) <= limit).astype(float))
    v = v + offset
    if name == "glu":
        s = 1.0 / (1.0 + np.exp(-slope * g))
        act, dact = s, slope * s * (1 - s)
    elif name == "swiglu":
        s = 1.0 / (1.0 + np.exp(-slope * g))
        act, dact = g * s, s + slope * g * s * (1 - s)
    else:  # geglu, tanh form
        k = math.sqrt(2.0 / math.pi)
        th = np.tanh(k * (g + 0.044715 * g**3))
        act = 0.5 * g * (1 + th)
        dact = 0.5 * (1 + th) + 0.5 * g * (1 - th**2) * k * (1 + 3 * 0.044715 * g**2)
    y = act * v
    dgate, dlin = c * v * dact * dg_cut, c * act * dv_cut
    dfirst, dsecond = (dlin, dgate) if name == "glu" else (dgate, dlin)
    dz = np.empty_like(z)
    if params.get("layout", "concat") == "interleaved":
        dz[..., 0::2], dz[..., 1::2] = dfirst, dsecond
    else:
        dz = np.concatenate([dfirst, dsecond], axis=-1)
    return np.moveaxis(y, -1, axis), np.moveaxis(dz, -1, axis)


def oracle(case, data):
    _, _, name, params, call = case
    params = {k: data[v["$"]].astype(np.float64) if isinstance(v, dict) else v for k, v in params.items()}
    x, c = data["x"].astype(np.float64), data["c"].astype(np.float64)
    bias = data["bias"].astype(np.float64) if "bias" in call else None
    where = data["where"] if "where" in call else None
    if name in ("glu", "swiglu", "geglu"):
        y_shape = list(x.shape)
        y_shape[params.get("axis", -1)] //= 2
        c = c[tuple(slice(0, n) for n in y_shape)]
        y, dz = _gated(name, params, x, c, bias)
        return y, dz, c
    y, dz = _rowwise(name, params, x, c, bias, where)
    return y, dz, c


# ------------------------------------------------------------- the child
CHILD = r'''
import json, sys
import numpy as np
import keras
import activations.keras as ak

sys.path.insert(0, "tests")
import test_keras_params as T

backend = keras.backend.backend()
data = dict(np.load(sys.argv[1]))
results = {}
for case in T.CASES:
    cid, how, name, params, call = case
    params = {k: data[v["$"]] if isinstance(v, dict) else v for k, v in params.items()}
    make = ak.Activation if how == "layer" else ak.get
    f = make(name, **params)
    y_ref, _, c = T.oracle(case, data)
    c = c.astype(np.float32)
    kw = {k: data[k] for k in call}
    x = data["x"]
    if backend == "torch":
        import torch
        xt = torch.tensor(x, requires_grad=True)
        bt = torch.tensor(kw["bias"], requires_grad=True) if "bias" in kw else None
        extra = {"bias": bt} if bt is not None else {}
        if "where" in kw:
            extra["where"] = kw["where"]
        y = f(xt, **extra)
        (y * torch.tensor(c)).sum().backward()
        got = {"y": y.detach().numpy(), "dx": xt.grad.numpy()}
        if bt is not None:
            got["dbias"] = bt.grad.numpy()
    elif backend == "jax":
        import jax
        where = kw.get("where")
        def loss(x, b):
            extra = {} if b is None else {"bias": b}
            if where is not None:
                extra["where"] = where
            return (f(x, **extra) * c).sum()
        b = kw.get("bias")
        grads = jax.grad(loss, argnums=(0, 1) if b is not None else 0)(x, b)
        y = f(x, **({"bias": b} if b is not None else {}), **({"where": where} if where is not None else {}))
        got = {"y": np.asarray(y)}
        if b is not None:
            got["dx"], got["dbias"] = np.asarray(grads[0]), np.asarray(grads[1])
        else:
            got["dx"] = np.asarray(grads)
    else:  # numpy: inference only
        got = {"y": np.asarray(f(x, **kw))}
    # the config through JSON and back computes the same
    config = json.loads(json.dumps(f.get_config()))
    again = (ak.Activation if how == "layer" else ak.ActivationFunction).from_config(config)
    y2 = again(keras.ops.convert_to_tensor(x), **kw) if how == "layer" else again(keras.ops.convert_to_tensor(x))
    got["same_after_config"] = np.array(np.array_equal(keras.ops.convert_to_numpy(y2), got["y"]))
    for key, value in got.items():
        results[f"{cid}/{key}"] = value
# a learnable alpha, one per slab of x: its gradient through the backend's autodiff
layer = ak.Activation("entmax", alpha=1.5, learnable=True, shape=(3, 1, 1))
x, c = data["x"], data["c"]
results["learnable/y"] = keras.ops.convert_to_numpy(layer(x))
if backend == "torch":
    import torch
    (layer(torch.tensor(x)) * torch.tensor(c)).sum().backward()
    results["learnable/dalpha"] = layer.learned.value.grad.numpy()
elif backend == "jax":
    import jax
    values = [v.value for v in layer.trainable_variables]
    results["learnable/dalpha"] = np.asarray(jax.grad(lambda t: (layer.stateless_call(t, [], x)[0] * c).sum())(values)[0])
again = ak.Activation.from_config(json.loads(json.dumps(layer.get_config())))
results["learnable/same_after_config"] = np.array(np.array_equal(keras.ops.convert_to_numpy(again(x)), results["learnable/y"])
                                                  and again.learned.shape == (3, 1, 1))

bad = []
for how, name, params, _ in T.BAD:  # every argument is checked when the layer is made
    try:
        (ak.Activation if how == "layer" else ak.get)(name, **params)
        bad.append("no error")
    except (TypeError, ValueError) as exc:
        bad.append(f"{type(exc).__name__}: {exc}")
results["bad_arguments"] = np.array(bad)
np.savez(sys.argv[2], **results)
print("RESULT ok")
'''


@pytest.fixture(scope="module", params=["torch", "jax", "numpy"])
def keras_results(request, tmp_path_factory):
    backend = request.param
    if backend != "numpy" and importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    folder = tmp_path_factory.mktemp(f"keras_{backend}")
    data = _inputs()
    np.savez(folder / "in.npz", **data)
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(folder / "in.npz"), str(folder / "out.npz")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return backend, data, dict(np.load(folder / "out.npz"))


def _close(got, want, what, tol):
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = np.abs(got - want) / (1.0 + np.abs(want))
    assert err.max() <= tol, f"{what}: max error {err.max():.3g} at {np.unravel_index(err.argmax(), err.shape)}"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_parameters_reach_the_kernels(keras_results, case):
    backend, data, got = keras_results
    cid, _, name, _, call = case
    y, dz, _ = oracle(case, data)
    tol = 2e-5 if name in ("entmax", "entmax15", "sparsemax") else 5e-6  # float32 compute
    _close(got[f"{cid}/y"], y, f"{backend} {cid} forward", tol)
    assert bool(got[f"{cid}/same_after_config"]), f"{backend} {cid}: the config does not give the same layer"
    if backend == "numpy":
        return
    _close(got[f"{cid}/dx"], dz, f"{backend} {cid} dx", 4 * tol)
    if "bias" in call:
        _close(got[f"{cid}/dbias"], dz.reshape(-1, dz.shape[-1]).sum(0), f"{backend} {cid} dbias", 20 * tol)


def test_the_oracle_is_the_plain_formula_at_the_defaults():
    """The hand-written oracle agrees with textbook softmax and sparsemax where they apply."""
    data = _inputs()
    x = data["x"].astype(np.float64)
    y, _, _ = oracle(("", "", "softmax", {}, ()), data)
    e = np.exp(x - x.max(-1, keepdims=True))
    assert np.allclose(y, e / e.sum(-1, keepdims=True), rtol=1e-13, atol=0)
    y, _, _ = oracle(("", "", "sparsemax", {}, ()), data)
    for row, out in zip(x.reshape(-1, 6), y.reshape(-1, 6)):  # sort-based sparsemax
        zs = np.sort(row)[::-1]
        k = np.arange(1, 7)
        support = 1 + k * zs > np.cumsum(zs)
        kz = k[support][-1]
        tau = (np.cumsum(zs)[kz - 1] - 1) / kz
        assert np.allclose(out, np.maximum(row - tau, 0.0), atol=1e-12)


def test_learnable_alpha(keras_results):
    """alpha as a trained weight (one per slab): the forward at its start value, and its gradient
    against central differences of the float64 oracle."""
    backend, data, got = keras_results
    start = np.full((3, 1, 1), 1.5)
    y, _, _ = oracle(("", "", "entmax", {"alpha": start}, ()), data)
    _close(got["learnable/y"], y, f"{backend} learnable forward", 2e-5)
    assert bool(got["learnable/same_after_config"])
    if backend == "numpy":
        return
    c = data["c"].astype(np.float64)

    def loss(alpha):
        return float((oracle(("", "", "entmax", {"alpha": alpha}, ()), data)[0] * c).sum())

    h = 1e-6
    want = np.zeros(3)
    for i in range(3):
        up, down = start.copy(), start.copy()
        up[i], down[i] = 1.5 + h, 1.5 - h
        want[i] = (loss(up) - loss(down)) / (2 * h)
    _close(got["learnable/dalpha"].reshape(-1), want, f"{backend} dalpha", 1e-4)


BAD = [  # (constructor, activation, arguments, the word the error names)
    ("layer", "swiglu", {"axis": (0, 1)}, "axis"),
    ("get", "softmax", {"axis": ()}, "axis"),
    ("layer", "softmax", {"axis": (0, 1.5)}, "axis"),
    ("layer", "softmax", {"temperature": 0.0}, "temperature"),
    ("layer", "entmax", {"alpha": 1.0}, "alpha"),
    ("get", "softmax", {"quiet": "yes"}, "quiet"),
    ("layer", "entmax", {"alpha": [[1.5], [0.5]]}, "alpha"),
    ("layer", "softmax", {"learnable": True}, "learnable"),
    ("layer", "entmax", {"alpha": [1.5], "learnable": True}, "alpha"),
]


def test_bad_arguments_raise_at_construction(keras_results):
    backend, _, got = keras_results
    for (_, name, params, word), message in zip(BAD, got["bad_arguments"]):
        assert str(message).startswith(("TypeError", "ValueError")) and word in str(message), (
            backend, name, params, str(message))
