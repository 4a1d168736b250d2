"""The plain NumPy fallback of the CPU backend.

Used when the compiled engine is not installed, or with ``ACTIVATIONS_NATIVE=0``.
It is written to be obviously correct rather than fast:

* one stable float64 expression per activation, forward and derivative side by
  side in a table (:data:`ELEMENTWISE`, :data:`GATED`, :data:`ROWWISE`), and one
  generic path per kind that applies the shared policies of docs/semantics.md
  (NaN propagation, masks, bias, prelu's weight, rrelu's slopes);
* every dtype is computed in float64 and rounded once to x's dtype at the end
  (reductions too).  The inputs of that computation are what the kernels receive:
  float parameters and ``x + bias`` rounded to the documented compute precision
  (float32 for float16, bfloat16 and float32; float64 for float64), so the
  results are the documented function of those inputs, to within float64
  rounding;
* no threads, no chunking, no buffers: plain array expressions on whole arrays.
  Results do not depend on the array's size or memory layout (every array is
  made C-contiguous before a reduction).

:func:`forward` and :func:`backward` return new arrays and never touch
``call.out``; the backend copies into ``out``.  Inputs are validated by the
front end (``activations._interface``) before a call arrives here.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from scipy import special

from ... import _dtypes, _fp8
from ...catalogue import GELU_K0, GELU_K1, SELU_ALPHA, SELU_SCALE, TANH_SHRINK_D, TANH_SHRINK_N, TANH_SHRINK_RATIONAL_END
from ...registry import Kind
from .. import Call, Grads

__all__ = ["forward", "backward", "rrelu_uniform", "ELEMENTWISE", "GATED", "ROWWISE"]

F64 = np.dtype(np.float64)
LN2 = math.log(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

Array = np.ndarray
Params = dict  # parameter name -> value (floats rounded to the compute precision)


# ------------------------------------------------------------------ rrelu's noise
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def rrelu_uniform(seed: int, index: np.ndarray) -> np.ndarray:
    """u(seed, i) in [0, 1) of docs/semantics.md (splitmix64 of seed + (i + 1) * golden), float64.

    ``index`` holds flat C-order element indices (any integer dtype, a NumPy or CuPy array: the
    Dask backend calls this on its chunks); uint64 arithmetic wraps modulo 2**64 as the
    documented hash requires.
    """
    z = counter_hash(seed, index)
    return (z >> np.uint64(40)).astype(F64) * 2.0**-24


def counter_hash(seed: int, index: np.ndarray) -> np.ndarray:
    """The 64-bit counter hash of docs/semantics.md (kernels/common.cuh counter_hash) at flat
    indices ``index`` (any integer dtype, NumPy or CuPy), as uint64: rrelu's slopes and the
    stochastic rounding of FP8 output draw from it."""
    i = (index if hasattr(index, "astype") else np.asarray(index)).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (i + np.uint64(1)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


# ----------------------------------------------------------------- small helpers
def _mul0(x, w):
    """``x * w`` where a zero ``w`` wins over an infinite ``x``: the limit of ``x * w(x)`` when
    ``w`` vanishes at the infinity (silu(-inf) = 0, leaky_relu with slope 0 at -inf = 0)."""
    return np.where(w == 0, 0.0, x * w)


def _sech2(u):
    """1 / cosh(u)^2, without the cancellation of 1 - tanh(u)^2 (0 where cosh overflows)."""
    return 1.0 / np.cosh(u) ** 2


def _sigmoid(x, p=None):
    """1 / (1 + exp(-x)), as exp(x) / (1 + exp(x)) for x < 0: exp(-x) never overflows, so the
    negative tail keeps its (subnormal) values down to -745 instead of flushing below -709.8."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_d(x, p=None):
    """sigmoid'(x) = s(x) s(-x), from x (the gate of glu)."""
    return _sigmoid(x) * _sigmoid(-x)


def _softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow, no cancellation."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _leaky(x, a):
    """x > 0: x; else a * x, with a * x := 0 where a == 0 (so -inf gives 0)."""
    return np.where(x > 0, x, _mul0(x, a))


def _leaky_d(x, a):
    return np.where(x > 0, 1.0, a)


def _relu(x, p):
    s, m, t = p["negative_slope"], p["max_value"], p["threshold"]
    pos = x if m is None else np.clip(x, 0.0, m)
    neg = (s * (x - t) if s != 0 else np.zeros_like(x)) + 0.0  # + 0.0 writes -0.0 as +0.0 (Keras 3)
    return np.where(x > t, pos, neg)


def _relu_d(x, p):
    s, m, t = p["negative_slope"], p["max_value"], p["threshold"]
    on = 1.0 if m is None else (x > 0) & (x < m)
    return np.where(x > t, on, s)


def _silu(x, p=None):
    return _mul0(x, _sigmoid(x))


def _silu_d(x, p=None):
    # s (1 + x (1 - s)); for x < 0 the factor as (1 + x) - x s (exact or small terms near the
    # zero at -1.28), for x >= 0 with 1 - s = sigmoid(-x)
    s = _sigmoid(x)
    q = np.where(x < 0, (1.0 + x) - _mul0(x, s), 1.0 + _mul0(x, _sigmoid(-x)))
    return _mul0(q, s)


def _gelu(x, p):
    if p["approximate"] == "tanh":
        # 0.5 x (1 + tanh u) = x sigmoid(2u): no cancellation in the negative tail
        return _mul0(x, _sigmoid(2.0 * _gelu_u(x)))
    return _mul0(x, special.ndtr(x))  # x Phi(x), Phi accurate in both tails


def _gelu_d(x, p):
    if p["approximate"] == "tanh":
        # 0.5 (1 + t) + 0.5 x (1 - t^2) k0 (1 + 3 k1 x^2), with 0.5 (1 + t) = s and 1 - t^2 = 4 s (1 - s)
        u2 = 2.0 * _gelu_u(x)
        s = _sigmoid(u2)
        return s + _mul0(2.0 * GELU_K0 * x * (1.0 + 3.0 * GELU_K1 * x * x), s * _sigmoid(-u2))
    return special.ndtr(x) + _mul0(x, INV_SQRT_2PI * np.exp(-0.5 * x * x))  # Phi(x) + x phi(x)


def _gelu_u(x):
    """The argument of tanh in the tanh form: k0 (x + k1 x^3)."""
    return GELU_K0 * x * (1.0 + GELU_K1 * x * x)


def _mish(x, p):
    return _mul0(x, np.tanh(_softplus(x)))


def _mish_d(x, p):
    sp = _softplus(x)
    return np.tanh(sp) + _mul0(x, _sigmoid(x) * _sech2(sp))


def _softplus_beta(x, p):
    beta, thr = p["beta"], p["threshold"]
    bx = beta * x
    tail = np.log1p(np.exp(-np.abs(bx))) / beta
    y = np.where(bx > 0, x + tail, tail)  # (max(bx, 0) + log1p(exp(-|bx|))) / beta without overflow
    return y if thr is None else np.where(bx > thr, x, y)


def _softplus_beta_d(x, p):
    beta, thr = p["beta"], p["threshold"]
    d = _sigmoid(beta * x)
    return d if thr is None else np.where(beta * x > thr, 1.0, d)


def _tanh_shrink(x, p):
    # x - tanh(x) cancels near 0: there x^3 N(x^2) / D(x^2) (catalogue.TANH_SHRINK_N, _D)
    x2 = x * x
    n = np.zeros_like(x)
    for c in TANH_SHRINK_N:
        n = n * x2 + c
    d = np.zeros_like(x)
    for c in TANH_SHRINK_D:
        d = d * x2 + c
    with np.errstate(over="ignore", invalid="ignore"):
        near = x * x2 * (n / d)
    # above: (|x| - 1) + 2e / (1 + e), e = exp(-2|x|), sign restored (no cancellation)
    a = np.abs(x)
    e = np.exp(-2.0 * a)
    far = np.copysign((a - 1.0) + 2.0 * e / (1.0 + e), x)
    return np.where(a < TANH_SHRINK_RATIONAL_END, near, far)


def _squareplus(x, p):
    b = p["b"]
    h = np.hypot(x, math.sqrt(b))
    # x >= 0: (x + h) / 2 halved first (no overflow); x < 0: b / (2 (h - x)) (no cancellation),
    # with halves where h - x overflows
    q = h - x
    return np.where(x >= 0, 0.5 * x + 0.5 * h, np.where(np.isinf(q), 0.25 * b / (0.5 * h - 0.5 * x), 0.5 * b / q))


def _squareplus_d(x, p):
    b = p["b"]
    h = np.hypot(x, math.sqrt(b))
    ratio = np.where(np.isinf(x), 1.0, x / np.where(h == 0, 1.0, h))  # x / h: 1 at +inf, 0 at x = h = 0
    # x < 0: (1 + x/h) / 2 = b / (2 h (h - x)), with halves where h - x overflows
    neg = np.where(np.isinf(h - x), 0.25 * b / h / (0.5 * h - 0.5 * x), 0.5 * b / h / (h - x))
    return np.where(x >= 0, 0.5 + 0.5 * ratio, neg)


def _log1mexp(x, p):
    # Maechler 2012: both branches accurate; NaN for x < 0, -inf at 0
    return np.where(x < LN2, np.log(-np.expm1(-x)), np.log1p(-np.exp(-x)))


def _log1mexp_d(x, p):
    # 1 / expm1(x): + 0.0 makes expm1(-0.0) = -0.0 a +0.0, so the derivative at 0 is +inf;
    # exp(-x) beyond 700, where expm1 overflows and the subnormal result would be flushed to 0
    with np.errstate(over="ignore"):
        return np.where(x < 0, np.nan, np.where(x > 700.0, np.exp(-x), 1.0 / (np.expm1(x) + 0.0)))


_PI4_HI, _PI4_LO = math.pi / 4, 3.061616997868383e-17  # pi/4 in two float64 parts


def _snake(x, p):
    f = p["frequency"]
    return np.where(np.isinf(x), x, x + np.sin(f * x) ** 2 / f)  # +-inf: the limit


def _snake_d(x, p):
    # 1 + sin(2fx) = 2 sin^2(fx + pi/4) = (sin fx + cos fx)^2: no cancellation near its zeros (the
    # first form where fx + pi/4 is exact, |fx| < 1), no overflow of 2fx
    fx = p["frequency"] * x
    s = np.sin((fx + _PI4_HI) + _PI4_LO)
    t = np.sin(fx) + np.cos(fx)
    return np.where(np.abs(fx) < 1.0, 2.0 * s * s, t * t)


def _piecewise(x, lo, mid, hi):
    """x <= -1: lo; x >= 1: hi; between: mid (sparse_plus / sparse_sigmoid)."""
    return np.where(x <= -1.0, lo, np.where(x >= 1.0, hi, mid))


def _open(x, lo, hi):
    """1.0 on the open interval (lo, hi), else 0.0 (torch's kinks)."""
    return ((x > lo) & (x < hi)).astype(F64)


# ------------------------------------------------------------------------ tables
#: a leaky unit with the per-element slope :func:`_params` gives (prelu's weight, rrelu's draw)
_SLOPED = (lambda x, p: _leaky(x, p["slope"]), lambda x, p: _leaky_d(x, p["slope"]))

#: name -> (f(x, p), f'(v, p)).  ``v`` is x, or y = f(x) for records with grad_from == "y".
#: NaN inputs are mapped to NaN by the generic path; every other value, infinities included,
#: comes from the expressions themselves.
ELEMENTWISE: dict[str, tuple[Callable[[Array, Params], Array], Callable[[Array, Params], Any]]] = {
    "relu": (_relu, _relu_d),
    "relu6": (lambda x, p: np.clip(x, 0.0, 6.0), lambda x, p: _open(x, 0.0, 6.0)),
    "leaky_relu": (lambda x, p: _leaky(x, p["negative_slope"]), lambda x, p: _leaky_d(x, p["negative_slope"])),
    "prelu": _SLOPED,
    "rrelu": _SLOPED,
    "elu": (
        lambda x, p: np.where(x > 0, x, p["alpha"] * np.expm1(x)),
        lambda x, p: np.where(x > 0, 1.0, p["alpha"] * np.exp(x)),
    ),
    "selu": (
        lambda x, p: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)),
        lambda x, p: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(x)),
    ),
    "celu": (
        lambda x, p: np.where(x > 0, x, p["alpha"] * np.expm1(x / p["alpha"])),
        lambda x, p: np.where(x > 0, 1.0, np.exp(x / p["alpha"])),
    ),
    "gelu": (_gelu, _gelu_d),
    "sigmoid": (_sigmoid, _sigmoid_d),  # from x: accurate in both tails
    "hard_sigmoid": (  # relu6(x + 3) / 6 exactly for the defaults; kinks decided on x
        lambda x, p: np.clip((x + p["offset"] / p["slope"]) / (1.0 / p["slope"]), 0.0, 1.0),
        lambda x, p: p["slope"] * _open(x, -p["offset"] / p["slope"], (1.0 - p["offset"]) / p["slope"]),
    ),
    "log_sigmoid": (
        lambda x, p: np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x))),
        lambda x, p: _sigmoid(-x),
    ),
    "softplus": (_softplus_beta, _softplus_beta_d),
    "softsign": (
        lambda x, p: np.where(np.isinf(x), np.sign(x), x / (1.0 + np.abs(x))),
        lambda x, p: (1.0 / (1.0 + np.abs(x))) ** 2,  # squared after the division: no overflow
    ),
    "silu": (_silu, _silu_d),
    "hard_silu": (
        lambda x, p: _mul0(x, np.clip(x + 3.0, 0.0, 6.0) / 6.0),
        lambda x, p: np.where(x <= -3.0, 0.0, np.where(x >= 3.0, 1.0, (2.0 * x + 3.0) / 6.0)),
    ),
    "mish": (_mish, _mish_d),
    "tanh": (lambda x, p: np.tanh(x), lambda x, p: 4.0 * _sigmoid(2.0 * x) * _sigmoid(-2.0 * x)),  # sech^2 x
    "hard_tanh": (
        lambda x, p: np.clip(x, p["min_val"], p["max_val"]),
        lambda x, p: _open(x, p["min_val"], p["max_val"]),
    ),
    "tanh_shrink": (_tanh_shrink, lambda x, p: np.tanh(x) ** 2),
    "soft_shrink": (
        lambda x, p: np.where(x > p["threshold"], x - p["threshold"], np.where(x < -p["threshold"], x + p["threshold"], 0.0)),
        lambda x, p: (np.abs(x) > p["threshold"]).astype(F64),
    ),
    "hard_shrink": (
        lambda x, p: np.where(np.abs(x) > p["threshold"], x, 0.0),
        lambda x, p: (np.abs(x) > p["threshold"]).astype(F64),
    ),
    "threshold": (
        lambda x, p: np.where(x > p["threshold"], x, p["value"]),
        lambda x, p: (x > p["threshold"]).astype(F64),
    ),
    "sparse_plus": (
        lambda x, p: _piecewise(x, 0.0, (x + 1.0) ** 2 / 4.0, x),
        lambda x, p: _piecewise(x, 0.0, (x + 1.0) / 2.0, 1.0),
    ),
    "sparse_sigmoid": (
        lambda x, p: _piecewise(x, 0.0, (x + 1.0) / 2.0, 1.0),
        lambda x, p: 0.5 * _open(x, -1.0, 1.0),
    ),
    "squareplus": (_squareplus, _squareplus_d),
    "exponential": (lambda x, p: np.exp(x), lambda y, p: y),
    "linear": (lambda x, p: x, lambda x, p: 1.0),
    "log1mexp": (_log1mexp, _log1mexp_d),
    "lisht": (lambda x, p: x * np.tanh(x), lambda x, p: np.tanh(x) + _mul0(x, _sech2(x))),
    "snake": (_snake, _snake_d),
}

#: name -> (f, f' from the gate): y = f(gate) * linear, x = a | b along axis, the gate the
#: record's ``gate`` half, after the clamps of :func:`_gated_halves`; glu and swiglu read the gate
#: slope alpha (d/dg [g sigmoid(alpha g)] = silu'(alpha g))
GATED: dict[str, tuple[Callable, Callable]] = {
    "glu": (lambda g, p: _sigmoid(p["alpha"] * g), lambda g, p: p["alpha"] * _sigmoid_d(p["alpha"] * g)),
    "swiglu": (lambda g, p: _mul0(g, _sigmoid(p["alpha"] * g)), lambda g, p: _silu_d(p["alpha"] * g)),
    "geglu": (_gelu, _gelu_d),
    "reglu": (lambda a, p: np.maximum(a, 0.0), lambda a, p: (a > 0).astype(F64)),
}


# row-wise: z is (R, N) float64, keep (R, N) bool; masked entries leave the row (-inf for the
# max and the sum, last in the sort).  A NaN or +inf in the row, or a row of only -inf, gives
# NaN through the arithmetic itself (sparsemax says so explicitly); masked outputs are zeroed
# by the generic path, so a fully masked row is 0.
def shifted(a, b, t, xp=np):
    """(a - b) / t, b >= a: a row value shifted by the row's max before the temperature divides
    it, so that a large value does not overflow a / t when t < 1; a difference beyond the range
    (a spread wider than the type's) is halved first, (a / 2 - b / 2) / t * 2, finite whenever
    (a - b) / t is (softmax.cuh, ``shifted``).  NumPy or CuPy."""
    d = a - b
    if t == 1.0:
        return d
    return xp.where(d > -np.inf, d / t, (a * 0.5 - b * 0.5) / t * 2)


def _row_shift(zk, quiet, t):
    """(The shifted row, the quiet form's implicit logit or None): the row max m, or max(m, 0)
    for the quiet form (its implicit value 0 takes part), shifted out before T divides."""
    m = zk.max(axis=-1, keepdims=True)
    if quiet:
        m = np.maximum(m, 0.0)
    return shifted(zk, m, t), (shifted(0.0, m, t) if quiet else None)


def _softmax(z, keep, quiet=False, t=1.0):
    e, implicit = _row_shift(np.where(keep, z, -np.inf), quiet, t)
    e = np.exp(e)
    s = e.sum(axis=-1, keepdims=True)
    return e / (s + np.exp(implicit) if quiet else s)


def _log_softmax(z, keep, quiet=False, t=1.0):
    shifted_z, implicit = _row_shift(np.where(keep, z, -np.inf), quiet, t)
    # log(sum) = log1p(ties - 1 + rest): the max's own terms (exp(0) = 1) kept out of the sum, so
    # that log(sum) keeps its relative accuracy when the rest is tiny (the largest entries need it);
    # the quiet form's implicit logit is one more tie when it is the shift (0), else part of the rest
    top = shifted_z == 0
    rest = np.where(top, 0.0, np.exp(shifted_z)).sum(axis=-1, keepdims=True)
    ties = top.sum(axis=-1, keepdims=True).astype(F64)
    if quiet:
        ties = ties + (implicit == 0)
        rest = rest + np.where(implicit == 0, 0.0, np.exp(implicit))
    return shifted_z - np.log1p((ties - 1) + rest)


def _sparsemax(z, keep):
    zk = np.where(keep, z, -np.inf)
    top = zk.max(axis=-1, keepdims=True)
    # shift invariant: shifting by the row max keeps the precision of tau for huge logits
    zs = zk - np.where(np.isfinite(top), top, 0.0)
    srt = -np.sort(-zs, axis=-1)  # descending; masked and -inf entries last
    csum = np.cumsum(srt, axis=-1)
    k = np.arange(1, z.shape[-1] + 1, dtype=F64)
    kz = np.where(1.0 + k * srt > csum, k, 0.0).max(axis=-1, keepdims=True)  # support size
    tau = (np.take_along_axis(csum, np.maximum(kz - 1, 0).astype(np.intp), axis=-1) - 1.0) / np.maximum(kz, 1.0)
    bad = (np.isnan(zk) | (zk == np.inf)).any(axis=-1, keepdims=True) | ~(zk > -np.inf).any(axis=-1, keepdims=True)
    return np.where(bad, np.nan, np.maximum(zs - tau, 0.0))


def _entmax15(z, keep):
    """max(u - tau, 0)^2, u = (z - max) / 2, with the sorted closed form of Peters et al. (2019):
    over the k largest, tau_k = mean_k - sqrt((1 - k var_k) / k); the support is the largest k with
    tau_k <= u_(k)."""
    zk = np.where(keep, z, -np.inf)
    top = zk.max(axis=-1, keepdims=True)
    u = (zk - np.where(np.isfinite(top), top, 0.0)) / 2.0
    srt = -np.sort(-u, axis=-1)  # descending; masked and -inf entries last
    finite = np.isfinite(srt)
    s0 = np.where(finite, srt, 0.0)
    k = np.arange(1, z.shape[-1] + 1, dtype=F64)
    mean = np.cumsum(s0, axis=-1) / k
    var = np.cumsum(s0 * s0, axis=-1) / k - mean * mean
    tau_k = mean - np.sqrt(np.maximum((1.0 - k * var) / k, 0.0))
    kz = np.where(finite & (tau_k <= srt), k, 0.0).max(axis=-1, keepdims=True)  # support size
    tau = np.take_along_axis(tau_k, np.maximum(kz - 1, 0).astype(np.intp), axis=-1)
    # one Newton step on sum max(u - tau, 0)^2 = 1 from the closed form: the variance from running
    # sums cancels, the step puts tau back at full precision (small outputs need it)
    g = np.where(np.isfinite(u), np.maximum(u - tau, 0.0), 0.0)
    tau = tau + ((g * g).sum(axis=-1, keepdims=True) - 1.0) / (2.0 * np.maximum(g.sum(axis=-1, keepdims=True), 1e-300))
    bad = (np.isnan(zk) | (zk == np.inf)).any(axis=-1, keepdims=True) | ~(zk > -np.inf).any(axis=-1, keepdims=True)
    return np.where(bad, np.nan, np.maximum(u - tau, 0.0) ** 2)


#: bisection steps for entmax's t (in [0, 1)): float64 on the CPU for every dtype, as the CPU
#: engine (sparsemax and entmax15 are float64 there too); the GPU kernels take 30 in float32
ENTMAX_STEPS = 60


def _entmax(z, keep, alpha, steps):
    """alpha-entmax by bisection: y_i = (1 + w_i)^(1/a), w_i = a (z_i - max z) - t, a = alpha - 1
    (alpha one per row), t = tau - a max z + 1 in [0, 1 - n^-a] such that sum y = 1; then the row
    divided by its sum.  t rather than tau: t is of the size of a, so it keeps its relative
    precision as alpha nears 1, and y = exp(log1p(w) / a) stays accurate there."""
    a = alpha - 1.0
    zk = np.where(keep, z, -np.inf)
    top = zk.max(axis=-1, keepdims=True)
    zs = a * (zk - np.where(np.isfinite(top), top, 0.0))  # <= 0; -inf where masked
    count = np.maximum(np.isfinite(zs).sum(axis=-1, keepdims=True), 1)
    lo, hi = np.zeros_like(top), -np.expm1(-a * np.log(count.astype(F64)))

    def mass(t):
        w = zs - t
        return np.where(w > -1.0, np.exp(np.log1p(np.maximum(w, -1.0)) / a), 0.0)

    for _ in range(steps):  # sum(mass(t)) decreases in t: >= 1 at lo, <= 1 at hi
        mid = (lo + hi) / 2.0
        over = mass(mid).sum(axis=-1, keepdims=True) >= 1.0
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    y = mass(lo)  # at lo the sum is >= 1: the support is whole and the division safe
    y = y / np.maximum(y.sum(axis=-1, keepdims=True), np.finfo(F64).tiny)
    bad = (np.isnan(zk) | (zk == np.inf)).any(axis=-1, keepdims=True) | ~(zk > -np.inf).any(axis=-1, keepdims=True)
    return np.where(bad, np.nan, y)


def _entmax_parts(y, alpha):
    """g = y^(2 - alpha) on the support (0 off it) and its row sum."""
    g = np.where(y > 0, np.power(np.where(y > 0, y, 1.0), 2.0 - alpha), 0.0)
    return g, g.sum(axis=-1, keepdims=True)


def _entmax_vjp(y, dy, alpha):
    g, sg = _entmax_parts(y, alpha)
    mean = (g * dy).sum(axis=-1, keepdims=True) / np.maximum(sg, np.finfo(F64).tiny)
    return np.where(np.isnan(y), np.nan, g * (dy - mean))


def _entmax_dalpha(y, dy, alpha):
    """d/dalpha of sum(dy * y) per row: with a = alpha - 1, q = g / sum(g) and S = sum(y log y),
    dy/dalpha = (y - q) / a^2 - (y log y - q S) / a (differentiate y = (a z - tau)^(1/a) and
    sum dy/dalpha = 0, then write z through y: a z_i - tau = y_i^a).  0 for a fully masked row."""
    a = alpha - 1.0
    g, sg = _entmax_parts(y, alpha)
    q = g / np.maximum(sg, np.finfo(F64).tiny)
    ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
    s = ylogy.sum(axis=-1, keepdims=True)
    d = (dy * (y - q)).sum(axis=-1, keepdims=True) / (a * a) - (dy * (ylogy - q * s)).sum(axis=-1, keepdims=True) / a
    return np.where(np.isnan(y).any(axis=-1, keepdims=True), np.nan, d)[..., 0]


def _softmax_vjp(y, dy, keep):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def _log_softmax_vjp(y, dy, keep):
    return dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)


def _sparsemax_vjp(y, dy, keep):
    m = (y > 0).astype(F64)
    mean = (dy * m).sum(axis=-1, keepdims=True) / np.maximum(m.sum(axis=-1, keepdims=True), 1.0)
    return np.where(np.isnan(y), np.nan, m * (dy - mean))


def _entmax15_vjp(y, dy, keep):
    g = np.sqrt(y)
    mean = (g * dy).sum(axis=-1, keepdims=True) / np.maximum(g.sum(axis=-1, keepdims=True), np.finfo(F64).tiny)
    return np.where(np.isnan(y), np.nan, g * (dy - mean))


#: name -> (y = f(z, keep, p), dz = vjp(y, dy, keep, p)); dy is 0 at masked entries.  z is x (-x
#: where the record's rows negate it: softmin), divided by T once shifted (:func:`shifted`); dx is
#: dz divided by T, its sign changed with z's (:func:`_row_parts`, :func:`_rowwise_backward`).  p: the parameters (:func:`_row_params`: quiet, temperature; entmax's
#: alpha one per row, (R, 1), and its steps).
_SOFTMAX = (lambda z, keep, p: _softmax(z, keep, p["quiet"], p["temperature"]),
            lambda y, dy, keep, p: _softmax_vjp(y, dy, keep))
ROWWISE: dict[str, tuple[Callable, Callable]] = {
    "softmax": _SOFTMAX,
    "log_softmax": (lambda z, keep, p: _log_softmax(z, keep, p["quiet"], p["temperature"]),
                    lambda y, dy, keep, p: _log_softmax_vjp(y, dy, keep)),
    "softmin": _SOFTMAX,  # of -x (the record's rows negate it)
    "sparsemax": (lambda z, keep, p: _sparsemax(z, keep), lambda y, dy, keep, p: _sparsemax_vjp(y, dy, keep)),
    "entmax15": (lambda z, keep, p: _entmax15(z, keep), lambda y, dy, keep, p: _entmax15_vjp(y, dy, keep)),
    "entmax": (lambda z, keep, p: _entmax(z, keep, p["alpha"], p["steps"]),
               lambda y, dy, keep, p: _entmax_vjp(y, dy, p["alpha"])),
}


# ---------------------------------------------------------------- inputs, outputs
def _compute_dtype(call: Call) -> np.dtype:
    return _dtypes.compute_dtype(call.x.dtype)


def _rounded(value: float, cdt: np.dtype) -> float:
    """A float parameter as the kernels receive it (compute precision)."""
    return float(np.asarray(value, F64).astype(cdt))


def _params(call: Call) -> Params:
    """The call's parameters, floats rounded to the compute precision; a weighted record (prelu)
    and one with a drawn slope (rrelu) get their per-element ``slope`` (a float or an array
    broadcasting against x)."""
    cdt = _compute_dtype(call)
    p = {k: _rounded(v, cdt) if isinstance(v, float) else v for k, v in call.params.values.items()}
    if call.record.weighted:
        w = call.weight
        if isinstance(w, float):
            p["slope"] = _rounded(w, cdt)
        else:  # x's dtype already; one value, or one per channel along the last axis
            w = np.asarray(w, F64)
            p["slope"] = float(w[0]) if w.size == 1 else w
    elif call.record.drawn_slope:
        lower, upper = (p[k] for k in call.record.drawn_slope[:2])
        if call.params.draws():
            u = rrelu_uniform(call.params.seed(), np.arange(call.x.size).reshape(call.x.shape))
            p["slope"] = lower + (upper - lower) * u
        else:
            p["slope"] = (lower + upper) / 2.0
    return p


def _input(call: Call) -> Array:
    """x (+ bias) as a C-contiguous float64 array.  The bias is added in the compute
    precision, as documented (a float64 sum rounded to float32 is the float32 sum)."""
    z = np.asarray(call.x, dtype=F64, order="C")
    if call.bias is None:
        return z
    z = z + np.asarray(call.bias, dtype=F64)
    return z.astype(_compute_dtype(call)).astype(F64)


def _dy(call: Call) -> Array:
    return np.asarray(call.dy, dtype=F64, order="C")


def _store(values: Any, shape: tuple[int, ...], dtype: np.dtype) -> Array:
    """A new array of ``shape`` and ``dtype`` holding ``values`` rounded once."""
    out = np.empty(shape, dtype)
    np.copyto(out, values, casting="unsafe")
    return out


def _nan_at(nan: Array, values: Any) -> Array:
    return np.where(nan, np.nan, values)


def _dbias(call: Call, dz: Array) -> Array | None:
    """Sum of dz over all but the last axis (float64, then rounded)."""
    if call.bias is None:
        return None
    n = call.x.shape[-1]
    total = np.ascontiguousarray(dz, dtype=F64).reshape(-1, n).sum(axis=0) if dz.size else np.zeros(n)
    return _store(total, (n,), call.x.dtype)


def _dweight(call: Call, z: Array, dy: Array) -> Array | None:
    """prelu: sum of dy * z where z <= 0, reduced to the weight's shape."""
    if call.weight is None:
        return None
    terms = np.ascontiguousarray(np.where(z > 0, 0.0, dy * z))
    w = call.weight
    if isinstance(w, float) or w.size == 1:
        shape = () if isinstance(w, float) else w.shape
        return _store(terms.sum(), shape, call.x.dtype)
    return _store(terms.reshape(-1, w.shape[0]).sum(axis=0), w.shape, call.x.dtype)


# -------------------------------------------------------------------- elementwise
def _elementwise_forward(call: Call) -> Array:
    f, _ = ELEMENTWISE[call.name]
    z = _input(call)
    return _store(_nan_at(np.isnan(z), f(z, _params(call))), call.out_shape, call.x.dtype)


def _elementwise_backward(call: Call) -> Grads:
    f, d = ELEMENTWISE[call.name]
    z, dy, p = _input(call), _dy(call), _params(call)
    v = f(z, p) if call.record.grad_from == "y" else z
    dz = _nan_at(np.isnan(z), dy * d(v, p))
    return Grads(_store(dz, call.x.shape, call.x.dtype), _dbias(call, dz), _dweight(call, z, dy))


# -------------------------------------------------------------------------- gated
def _gated_halves(call: Call, p: Params):
    """(a, b, gate, linear, gate_passes, linear_passes): x + bias as (rows, 2, period) halves
    (Call.gated_rows), the gate clamped above at limit, the linear half to [-limit, limit] and
    offset; *_passes where the clamp lets the derivative through (bounds included, as torch)."""
    rows, period = call.gated_rows()
    z = _input(call).reshape(rows, 2, period)
    a, b = z[:, 0], z[:, 1]
    gate, linear = (a, b) if call.record.gate == 0 else (b, a)
    limit = np.inf if p["limit"] is None else p["limit"]
    g = np.minimum(gate, limit)
    u = np.clip(linear, -limit, limit)
    if p["offset"] != 0:
        u = u + p["offset"]
    return a, b, g, u, gate <= limit, np.abs(linear) <= limit


def _gated_forward(call: Call) -> Array:
    f, _ = GATED[call.name]
    p = _params(call)
    a, b, g, u, _, _ = _gated_halves(call, p)
    y = f(g, p) * u
    return _store(_nan_at(np.isnan(a) | np.isnan(b), y).reshape(call.out_shape), call.out_shape, call.x.dtype)


def _gated_backward(call: Call) -> Grads:
    f, d = GATED[call.name]
    p = _params(call)
    a, b, g, u, g_in, u_in = _gated_halves(call, p)
    dy = _dy(call).reshape(g.shape)
    d_gate = np.where(g_in, (dy * d(g, p)) * u, 0.0)  # the small factor first: no spurious overflow
    d_linear = np.where(u_in, dy * f(g, p), 0.0)
    nan = np.isnan(a) | np.isnan(b)
    parts = (d_gate, d_linear) if call.record.gate == 0 else (d_linear, d_gate)
    dz = np.stack([_nan_at(nan, g) for g in parts], axis=1).reshape(call.x.shape)
    return Grads(_store(dz, call.x.shape, call.x.dtype), _dbias(call, dz))


# ------------------------------------------------------------------------ rowwise
def _to_rows(a: Array, axis: int) -> Array:
    """``a`` with ``axis`` last, as a C-contiguous (rows, n) array."""
    moved = np.moveaxis(a, axis, -1)
    return np.ascontiguousarray(moved).reshape(-1, moved.shape[-1])


def _from_rows(rows: Array, shape: tuple[int, ...], axis: int) -> Array:
    """Undo :func:`_to_rows` for an array of ``shape``."""
    moved = shape[:axis] + shape[axis + 1 :] + (shape[axis],)
    return np.moveaxis(rows.reshape(moved), -1, axis)


def _temperature(call: Call) -> float:
    """The row's divisor T in the compute precision (1 for the records without one)."""
    t = call.params.values.get("temperature", 1.0)
    return _rounded(t, _compute_dtype(call))


def _row_parts(call: Call) -> tuple[Array, Array]:
    """The row values x (-x where the record's rows negate it; the bias added first) as rows, and
    the mask as rows; the temperature divides them once shifted (ROWWISE's functions)."""
    keep = np.ones(call.x.shape, bool) if call.where is None else np.broadcast_to(call.where, call.x.shape)
    z = _to_rows(_input(call), call.axis)
    return (-z if call.record.rows.negate else z), _to_rows(keep, call.axis)


def _row_params(call: Call) -> dict:
    """quiet and the temperature, and entmax's alpha as a column of one value per row (compute
    precision) with the bisection steps of the compute precision."""
    p = {"quiet": bool(call.params.values.get("quiet", False)), "temperature": _temperature(call)}
    if "alpha" in call.params.values:
        if call.per_row is not None:
            p["alpha"] = np.asarray(call.per_row, F64).reshape(-1, 1)
        else:
            p["alpha"] = _rounded(call.params["alpha"], _compute_dtype(call))
        p["steps"] = ENTMAX_STEPS
    return p


def _rowwise_forward(call: Call) -> Array:
    if call.x.size == 0:
        return np.empty(call.out_shape, call.x.dtype)
    f, _ = ROWWISE[call.name]
    z, keep = _row_parts(call)
    y = np.where(keep, f(z, keep, _row_params(call)), 0.0)
    return _store(_from_rows(y, call.x.shape, call.axis), call.out_shape, call.x.dtype)


def _rowwise_backward(call: Call) -> Grads:
    dalpha = None
    if call.x.size == 0:
        if call.per_row is not None:
            dalpha = np.zeros(np.shape(call.per_row))
        return Grads(np.empty(call.x.shape, call.x.dtype), _dbias(call, np.zeros(call.x.shape)), None, dalpha)
    f, vjp = ROWWISE[call.name]
    z, keep = _row_parts(call)
    p = _row_params(call)
    dy = np.where(keep, _to_rows(_dy(call), call.axis), 0.0)
    y = np.where(keep, f(z, keep, p), 0.0)
    dv = vjp(y, dy, keep, p)  # d/dz; z = -x where the rows negate x
    dx = np.where(keep, (-dv if call.record.rows.negate else dv) / _temperature(call), 0.0)
    dz = _from_rows(dx, call.x.shape, call.axis)
    if call.per_row is not None:
        dalpha = np.broadcast_to(_entmax_dalpha(y, dy, p["alpha"]).reshape(-1), (z.shape[0],))
        dalpha = dalpha.reshape(np.shape(call.per_row))
    return Grads(_store(dz, call.x.shape, call.x.dtype), _dbias(call, dz), None, dalpha)


# ------------------------------------------------------------------------- entry
_KIND: dict[Kind, tuple[Callable[[Call], Array], Callable[[Call], Grads]]] = {
    Kind.ELEMENTWISE: (_elementwise_forward, _elementwise_backward),
    Kind.GATED: (_gated_forward, _gated_backward),
    Kind.ROWWISE: (_rowwise_forward, _rowwise_backward),
}


def forward(call: Call) -> np.ndarray:
    """The activation of ``call.x`` (+ bias): a new array of ``call.out_shape`` and x's dtype."""
    with np.errstate(all="ignore"):  # overflow to inf and NaN from NaN are intended results
        return _KIND[call.record.kind][0](call)


def backward(call: Call) -> Grads:
    """dx (new, x's shape and dtype), plus dbias when bias is given and dweight for prelu."""
    with np.errstate(all="ignore"):
        return _KIND[call.record.kind][1](call)


# ------------------------------------------------------------------------- FP8 output
def compute_precision_call(call: Call) -> Call:
    """``call`` on x (bias, weight) widened to the compute precision, without out= or FP8: its
    forward is f in the precision the FP8 output is rounded from (exact widening)."""
    cdt = _compute_dtype(call)
    widen = lambda a: a if a is None or isinstance(a, float) else np.asarray(a).astype(cdt)  # noqa: E731
    return call._replace(x=widen(call.x), bias=widen(call.bias), weight=widen(call.weight), out=None, fp8=None)


def quantize(call: Call, index_offset: int = 0) -> "_fp8.Quantized":
    """FP8 codes and amax of ``call.fp8``: f in the compute precision, scaled in float64, rounded
    by ml_dtypes after clipping to the largest finite value (nearest), or by the NumPy port of
    kernels/fp8.cuh with the counter-hash noise of flat index + ``index_offset`` (stochastic)."""
    req = call.fp8
    r = forward(compute_precision_call(call))
    v = np.asarray(r, F64) * req.scale
    fmt = req.format
    if req.stochastic:
        index = np.arange(index_offset, index_offset + v.size, dtype=np.uint64)
        noise = counter_hash(req.noise_seed, index).reshape(v.shape)
        values = _fp8.encode(v, fmt, noise).view(fmt.dtype)
    else:
        values = np.clip(v, -fmt.largest, fmt.largest).astype(fmt.dtype)
    return _fp8.Quantized(values.reshape(call.out_shape), _fp8.amax_of(r, req, call.out_shape))
