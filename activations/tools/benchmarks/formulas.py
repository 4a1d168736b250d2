"""Naive formulas: each activation as a user writes it with array operations.

These are the "naive NumPy" peer on the CPU and the "naive CuPy" (composed
ops) peer on a GPU: one expression, temporaries allocated by every operator,
no chunking, written for clarity as in a notebook.  ``ns`` is an
:class:`Namespace` (NumPy or CuPy plus an ``erf``); ``p`` holds the bound
parameters with their defaults.  Python floats keep float32 arrays in float32
(NumPy 2 treats them as weak scalars), so constants below are plain floats.

Backward formulas take ``v`` = x, or y for the records whose derivative is
written with the output (sigmoid, tanh, exponential, the softmax family), as
autograd frameworks save it.
"""
from __future__ import annotations

import math
from typing import Any, Callable

SQRT2 = math.sqrt(2.0)
SQRT_2_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Namespace:
    """An array module plus the special functions NumPy lacks."""

    def __init__(self, xp, erf: Callable | None):
        self.xp = xp
        self.erf = erf


def numpy_namespace() -> Namespace:
    import numpy as np

    try:
        from scipy.special import erf
    except ImportError:  # exact GELU then has no naive form
        erf = None
    return Namespace(np, erf)


def cupy_namespace() -> Namespace:
    import cupy as cp

    try:
        from cupyx.scipy.special import erf
    except ImportError:
        erf = None
    return Namespace(cp, erf)


def _erf(ns: Namespace):
    if ns.erf is None:
        raise NotImplementedError("no erf available (scipy / cupyx.scipy.special missing)")
    return ns.erf


def _sigmoid(ns, x):
    return 1 / (1 + ns.xp.exp(-x))


def _gelu(ns, x, approximate):
    np = ns.xp
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(SQRT_2_PI * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + _erf(ns)(x / SQRT2))


def _gelu_grad(ns, x, approximate):
    np = ns.xp
    if approximate == "tanh":
        t = np.tanh(SQRT_2_PI * (x + 0.044715 * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_PI * (1 + 3 * 0.044715 * x * x)
    return 0.5 * (1 + _erf(ns)(x / SQRT2)) + x * np.exp(-x * x / 2) * INV_SQRT_2PI


def _selu_consts():
    from ...catalogue import SELU_ALPHA, SELU_SCALE

    return SELU_ALPHA, SELU_SCALE


def _rrelu_slope(p):
    if p["training"]:
        raise NotImplementedError("training-mode rrelu draws per-element slopes; no naive form")
    return (p["lower"] + p["upper"]) / 2


def _weight(ns, p):
    w = p["weight"]
    if not isinstance(w, float):
        raise NotImplementedError("array weight")
    return w


def _softplus(ns, x, p):
    np = ns.xp
    b, t = p["beta"], p["threshold"]
    y = np.log1p(np.exp(b * x)) / b
    return y if t is None else np.where(b * x > t, x, y)


# ------------------------------------------------------------------ forward
FORWARD: dict[str, Callable[[Namespace, Any, dict], Any]] = {
    "relu": lambda ns, x, p: ns.xp.maximum(x, 0),
    "relu6": lambda ns, x, p: ns.xp.minimum(ns.xp.maximum(x, 0), 6),
    "leaky_relu": lambda ns, x, p: ns.xp.where(x > 0, x, p["negative_slope"] * x),
    "prelu": lambda ns, x, p: ns.xp.where(x > 0, x, _weight(ns, p) * x),
    "rrelu": lambda ns, x, p: ns.xp.where(x > 0, x, _rrelu_slope(p) * x),
    "elu": lambda ns, x, p: ns.xp.where(x > 0, x, p["alpha"] * (ns.xp.exp(x) - 1)),
    "selu": lambda ns, x, p: _selu_consts()[1] * ns.xp.where(x > 0, x, _selu_consts()[0] * (ns.xp.exp(x) - 1)),
    "celu": lambda ns, x, p: ns.xp.where(x > 0, x, p["alpha"] * (ns.xp.exp(x / p["alpha"]) - 1)),
    "gelu": lambda ns, x, p: _gelu(ns, x, p["approximate"]),
    "sigmoid": lambda ns, x, p: _sigmoid(ns, x),
    "hard_sigmoid": lambda ns, x, p: ns.xp.clip(p["slope"] * x + p["offset"], 0, 1),
    "log_sigmoid": lambda ns, x, p: -ns.xp.log1p(ns.xp.exp(-x)),
    "softplus": _softplus,
    "softsign": lambda ns, x, p: x / (1 + ns.xp.abs(x)),
    "silu": lambda ns, x, p: x * _sigmoid(ns, x),
    "hard_silu": lambda ns, x, p: x * ns.xp.clip(x + 3, 0, 6) / 6,
    "mish": lambda ns, x, p: x * ns.xp.tanh(ns.xp.log1p(ns.xp.exp(x))),
    "tanh": lambda ns, x, p: ns.xp.tanh(x),
    "hard_tanh": lambda ns, x, p: ns.xp.clip(x, p["min_val"], p["max_val"]),
    "tanh_shrink": lambda ns, x, p: x - ns.xp.tanh(x),
    "soft_shrink": lambda ns, x, p: ns.xp.sign(x) * ns.xp.maximum(ns.xp.abs(x) - p["threshold"], 0),
    "hard_shrink": lambda ns, x, p: ns.xp.where(ns.xp.abs(x) > p["threshold"], x, 0),
    "threshold": lambda ns, x, p: ns.xp.where(x > p["threshold"], x, p["value"]),
    "sparse_plus": lambda ns, x, p: ns.xp.where(x <= -1, 0, ns.xp.where(x >= 1, x, (x + 1) ** 2 / 4)),
    "sparse_sigmoid": lambda ns, x, p: ns.xp.clip((x + 1) / 2, 0, 1),
    "squareplus": lambda ns, x, p: (x + ns.xp.sqrt(x * x + p["b"])) / 2,
    "exponential": lambda ns, x, p: ns.xp.exp(x),
    "linear": lambda ns, x, p: x.copy(),
    "log1mexp": lambda ns, x, p: ns.xp.log(1 - ns.xp.exp(-x)),
    "lisht": lambda ns, x, p: x * ns.xp.tanh(x),
    "snake": lambda ns, x, p: x + ns.xp.sin(p["frequency"] * x) ** 2 / p["frequency"],
}


def _softmax(ns, x):
    e = ns.xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(ns, x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - ns.xp.log(ns.xp.exp(z).sum(axis=-1, keepdims=True))


def _sparsemax(ns, x):
    np = ns.xp
    n = x.shape[-1]
    z = np.sort(x, axis=-1)[..., ::-1]
    k = np.arange(1, n + 1, dtype=x.dtype)
    cs = np.cumsum(z, axis=-1)
    support = 1 + k * z > cs
    kz = support.sum(axis=-1, keepdims=True)
    tau = (np.take_along_axis(cs, kz - 1, axis=-1) - 1) / kz.astype(x.dtype)
    return np.maximum(x - tau, 0)


def _entmax15(ns, x):
    np = ns.xp
    n = x.shape[-1]
    u = (x - x.max(axis=-1, keepdims=True)) / 2
    z = np.sort(u, axis=-1)[..., ::-1]
    k = np.arange(1, n + 1, dtype=x.dtype)
    mean = np.cumsum(z, axis=-1) / k
    var = np.cumsum(z * z, axis=-1) / k - mean * mean
    tau_k = mean - np.sqrt(np.maximum((1 - k * var) / k, 0))
    kz = (tau_k <= z).sum(axis=-1, keepdims=True)
    tau = np.take_along_axis(tau_k, kz - 1, axis=-1)
    return np.maximum(u - tau, 0) ** 2


FORWARD.update(
    {
        "entmax15": lambda ns, x, p: _entmax15(ns, x),
        "softmax": lambda ns, x, p: _softmax(ns, x),
        "log_softmax": lambda ns, x, p: _log_softmax(ns, x),
        "softmin": lambda ns, x, p: _softmax(ns, -x),
        "sparsemax": lambda ns, x, p: _sparsemax(ns, x),
    }
)


def _halves(ns, x):
    h = x.shape[-1] // 2
    return x[..., :h], x[..., h:]


FORWARD.update(
    {
        "glu": lambda ns, x, p: (lambda a, b: a * _sigmoid(ns, b))(*_halves(ns, x)),
        "swiglu": lambda ns, x, p: (lambda a, b: a * _sigmoid(ns, a) * b)(*_halves(ns, x)),
        "geglu": lambda ns, x, p: (lambda a, b: _gelu(ns, a, p["approximate"]) * b)(*_halves(ns, x)),
        "reglu": lambda ns, x, p: (lambda a, b: ns.xp.maximum(a, 0) * b)(*_halves(ns, x)),
    }
)


# ----------------------------------------------------------------- backward
def _between(x, lo, hi):
    return (x > lo) & (x < hi)


def _silu_grad(ns, x):
    s = _sigmoid(ns, x)
    return s * (1 + x * (1 - s))


def _mish_grad(ns, x):
    np = ns.xp
    t = np.tanh(np.log1p(np.exp(x)))
    return t + x * _sigmoid(ns, x) * (1 - t * t)


def _hard_sigmoid_grad(ns, x, p):
    return p["slope"] * _between(p["slope"] * x + p["offset"], 0, 1)


BACKWARD: dict[str, Callable[[Namespace, Any, Any, dict], Any]] = {
    "relu": lambda ns, x, dy, p: dy * (x > 0),
    "relu6": lambda ns, x, dy, p: dy * _between(x, 0, 6),
    "leaky_relu": lambda ns, x, dy, p: ns.xp.where(x > 0, dy, p["negative_slope"] * dy),
    "prelu": lambda ns, x, dy, p: ns.xp.where(x > 0, dy, _weight(ns, p) * dy),
    "rrelu": lambda ns, x, dy, p: ns.xp.where(x > 0, dy, _rrelu_slope(p) * dy),
    "elu": lambda ns, x, dy, p: ns.xp.where(x > 0, dy, dy * p["alpha"] * ns.xp.exp(x)),
    "selu": lambda ns, x, dy, p: _selu_consts()[1] * ns.xp.where(x > 0, dy, dy * _selu_consts()[0] * ns.xp.exp(x)),
    "celu": lambda ns, x, dy, p: ns.xp.where(x > 0, dy, dy * ns.xp.exp(x / p["alpha"])),
    "gelu": lambda ns, x, dy, p: dy * _gelu_grad(ns, x, p["approximate"]),
    "sigmoid": lambda ns, y, dy, p: dy * y * (1 - y),
    "hard_sigmoid": lambda ns, x, dy, p: dy * _hard_sigmoid_grad(ns, x, p),
    "log_sigmoid": lambda ns, x, dy, p: dy / (1 + ns.xp.exp(x)),
    "softplus": lambda ns, x, dy, p: dy / (1 + ns.xp.exp(-p["beta"] * x)),
    "softsign": lambda ns, x, dy, p: dy / (1 + ns.xp.abs(x)) ** 2,
    "silu": lambda ns, x, dy, p: dy * _silu_grad(ns, x),
    "hard_silu": lambda ns, x, dy, p: ns.xp.where(x < -3, 0, ns.xp.where(x > 3, dy, dy * (2 * x + 3) / 6)),
    "mish": lambda ns, x, dy, p: dy * _mish_grad(ns, x),
    "tanh": lambda ns, y, dy, p: dy * (1 - y * y),
    "hard_tanh": lambda ns, x, dy, p: dy * _between(x, p["min_val"], p["max_val"]),
    "tanh_shrink": lambda ns, x, dy, p: dy * ns.xp.tanh(x) ** 2,
    "soft_shrink": lambda ns, x, dy, p: dy * (ns.xp.abs(x) > p["threshold"]),
    "hard_shrink": lambda ns, x, dy, p: dy * (ns.xp.abs(x) > p["threshold"]),
    "threshold": lambda ns, x, dy, p: dy * (x > p["threshold"]),
    "sparse_plus": lambda ns, x, dy, p: dy * ns.xp.clip((x + 1) / 2, 0, 1),
    "sparse_sigmoid": lambda ns, x, dy, p: dy * 0.5 * _between(x, -1, 1),
    "squareplus": lambda ns, x, dy, p: dy * (1 + x / ns.xp.sqrt(x * x + p["b"])) / 2,
    "exponential": lambda ns, y, dy, p: dy * y,
    "linear": lambda ns, x, dy, p: dy.copy(),
    "log1mexp": lambda ns, x, dy, p: dy / ns.xp.expm1(x),
    "lisht": lambda ns, x, dy, p: (lambda t: dy * (t + x * (1 - t * t)))(ns.xp.tanh(x)),
    "snake": lambda ns, x, dy, p: dy * (1 + ns.xp.sin(2 * p["frequency"] * x)),
    # softmax family, from y
    "softmax": lambda ns, y, dy, p: y * (dy - (dy * y).sum(axis=-1, keepdims=True)),
    "log_softmax": lambda ns, y, dy, p: dy - ns.xp.exp(y) * dy.sum(axis=-1, keepdims=True),
    "softmin": lambda ns, y, dy, p: -y * (dy - (dy * y).sum(axis=-1, keepdims=True)),
    "sparsemax": lambda ns, y, dy, p: (
        lambda m: m * (dy - (dy * m).sum(axis=-1, keepdims=True) / m.sum(axis=-1, keepdims=True))
    )((y > 0).astype(y.dtype)),
    "entmax15": lambda ns, y, dy, p: (
        lambda g: g * (dy - (g * dy).sum(axis=-1, keepdims=True) / g.sum(axis=-1, keepdims=True))
    )(ns.xp.sqrt(y)),
}


def _gated_grad(ns, x, dy, p, name):
    np = ns.xp
    a, b = _halves(ns, x)
    if name == "glu":
        s = _sigmoid(ns, b)
        da, db = dy * s, dy * a * s * (1 - s)
    elif name == "swiglu":
        s = _sigmoid(ns, a)
        da, db = dy * b * s * (1 + a * (1 - s)), dy * a * s
    elif name == "geglu":
        da, db = dy * b * _gelu_grad(ns, a, p["approximate"]), dy * _gelu(ns, a, p["approximate"])
    else:  # reglu
        da, db = dy * b * (a > 0), dy * np.maximum(a, 0)
    return np.concatenate([da, db], axis=-1)


for _g in ("glu", "swiglu", "geglu", "reglu"):
    BACKWARD[_g] = (lambda name: lambda ns, x, dy, p: _gated_grad(ns, x, dy, p, name))(_g)


def forward(name: str, ns: Namespace, x, p: dict, bias=None):
    fn = FORWARD[name]
    return fn(ns, x if bias is None else x + bias, p)


#: the peers' backward of these takes the output y (as autograd saves it), whatever ours consumes
FROM_Y = frozenset({"sigmoid", "tanh", "exponential", "softmax", "log_softmax", "softmin", "sparsemax", "entmax15"})


def backward(name: str, ns: Namespace, v, dy, p: dict, bias=None, v_is_y: bool = False):
    """dx (and dbias when a bias is fused: the sum of dx over all rows).

    ``v`` is x, or y = f(x + bias) when ``v_is_y`` (the bias is then already in it).
    """
    fn = BACKWARD[name]
    if bias is None:
        return fn(ns, v, dy, p)
    dx = fn(ns, v if v_is_y else v + bias, dy, p)
    return dx, dx.reshape(-1, dx.shape[-1]).sum(axis=0)
