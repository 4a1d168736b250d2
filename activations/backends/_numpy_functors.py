"""NumPy forward/backward pairs, one per elementwise activation.

Each functor works on one cache-sized block in compute precision (float32 or
float64), with in-place ufuncs and the scratch buffers of ``s``:

    forward(x, out, p, s)        # out = f(x)
    backward(v, dy, dx, p, s)    # dx = dy * f'(.), v is x or y (record.grad_from)

``p`` is ``BoundParams.kernel_floats()`` (the same floats the CUDA kernels
get), ``s`` a :class:`Block` with temporaries ``t1, t2, t3`` and ``b1`` shaped
like the block.  ``x``/``v`` never alias ``out``/``dx`` (the loop copies in
place calls) and must not be modified.  Each functor keeps the policies of
docs/semantics.md itself: NaN propagates, limits at +-inf, torch's kinks.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..catalogue import GELU_K0, GELU_K1, SELU_ALPHA, SELU_SCALE, TANH_SHRINK_SERIES

FORWARD: dict[str, Callable] = {}
BACKWARD: dict[str, Callable] = {}

SQRT_HALF = math.sqrt(0.5)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
LN2 = math.log(2.0)
# Derivatives are evaluated at x clipped to +-CLIP: beyond it every derivative
# in the catalogue already equals its limit in float32 and float64, and the
# clip turns inf * 0 into finite * 0.
CLIP = 1.0e4


def forward(name: str):
    def register(fn):
        FORWARD[name] = fn
        return fn

    return register


def backward(name: str):
    def register(fn):
        BACKWARD[name] = fn
        return fn

    return register


def nan_from(x, dx, s) -> None:
    """dx = NaN wherever x is NaN (for piecewise derivatives built from comparisons)."""
    np.isnan(x, out=s.b1)
    np.copyto(dx, x, where=s.b1)


def _erfc(z, out):
    from scipy.special import erfc  # accurate in both tails, float32 and float64 loops

    return erfc(z, out=out)


# --------------------------------------------------------------- rectifiers
@forward("relu")
def relu_fwd(x, out, p, s):
    slope, cap, thr = p
    if slope == 0.0 and thr == 0.0:
        np.maximum(x, 0.0, out=out)  # NaN propagates, -0.0 -> +0.0
        if cap != math.inf:
            np.minimum(out, cap, out=out)
        return
    np.greater(x, thr, out=s.b1)
    if slope == 0.0:
        out.fill(0.0)
    else:
        np.subtract(x, thr, out=out)
        np.multiply(out, slope, out=out)
        np.add(out, 0.0, out=out)  # -0.0 -> +0.0 (Keras 3)
    if cap == math.inf:
        np.copyto(out, x, where=s.b1)
    else:
        np.clip(x, 0.0, cap, out=s.t1)
        np.copyto(out, s.t1, where=s.b1)
    nan_from(x, out, s)


@backward("relu")
def relu_bwd(x, dy, dx, p, s):
    slope, cap, thr = p
    np.multiply(dy, slope, out=dx)
    np.greater(x, thr, out=s.b1)
    np.copyto(dx, dy, where=s.b1)
    if cap != math.inf:  # clipped part of the positive branch is flat
        np.less_equal(x, 0.0, out=s.b2)
        np.greater_equal(x, cap, out=s.b3)
        np.logical_or(s.b2, s.b3, out=s.b2)
        np.logical_and(s.b2, s.b1, out=s.b2)
        np.copyto(dx, 0.0, where=s.b2)
    nan_from(x, dx, s)


@forward("relu6")
def relu6_fwd(x, out, p, s):
    np.clip(x, 0.0, 6.0, out=out)


@backward("relu6")
def relu6_bwd(x, dy, dx, p, s):
    _open_interval_mask(x, 0.0, 6.0, s)
    np.multiply(dy, s.b1, out=dx)
    nan_from(x, dx, s)


def _open_interval_mask(x, lo, hi, s):
    np.greater(x, lo, out=s.b1)
    np.less(x, hi, out=s.b2)
    np.logical_and(s.b1, s.b2, out=s.b1)


def _leaky(x, out, slope):
    """x > 0 ? x : slope*x, with slope*x := 0 when slope == 0 (so -inf gives 0)."""
    if slope == 0.0:
        np.maximum(x, 0.0, out=out)
    else:
        np.multiply(x, slope, out=out)
        # max(x, a x) is the leaky ReLU for a <= 1, min(x, a x) for a > 1
        (np.maximum if slope <= 1.0 else np.minimum)(x, out, out=out)


def _leaky_grad(x, dy, dx, slope, s):
    np.multiply(dy, slope, out=dx)
    np.greater(x, 0.0, out=s.b1)
    np.copyto(dx, dy, where=s.b1)
    nan_from(x, dx, s)


@forward("leaky_relu")
def leaky_relu_fwd(x, out, p, s):
    _leaky(x, out, p[0])


@backward("leaky_relu")
def leaky_relu_bwd(x, dy, dx, p, s):
    _leaky_grad(x, dy, dx, p[0], s)


def _slope_product(x, slope, out, s):
    """out = slope * x for an array slope, with 0 * -inf := 0."""
    np.multiply(x, slope, out=out)
    np.isnan(out, out=s.b1)
    np.isnan(x, out=s.b2)
    np.greater(s.b1, s.b2, out=s.b1)  # NaN made by 0 * inf, not carried from x
    np.copyto(out, 0.0, where=s.b1)


@forward("prelu")
def prelu_fwd(x, out, p, s):
    if np.ndim(s.weight) == 0:
        _leaky(x, out, float(s.weight))
        return
    _slope_product(x, s.weight, out, s)
    np.greater(x, 0.0, out=s.b1)
    np.copyto(out, x, where=s.b1)


@backward("prelu")
def prelu_bwd(x, dy, dx, p, s):
    # dx only; dweight = sum(dy * x * (x <= 0)) is reduced by the loop
    np.multiply(dy, s.weight, out=dx)
    np.greater(x, 0.0, out=s.b1)
    np.copyto(dx, dy, where=s.b1)
    nan_from(x, dx, s)


def rrelu_hash_uniform(seed: int, index: np.ndarray) -> np.ndarray:
    """u(seed, i) in [0, 1) of docs/semantics.md: splitmix64 of (seed + (i+1) * golden)."""
    with np.errstate(over="ignore"):
        z = (index.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(40)).astype(np.float64) * 2.0**-24


def _rrelu_slopes(p, s):
    lower, upper, training = p
    if not training:
        return (lower + upper) / 2.0
    u = rrelu_hash_uniform(s.seed, s.flat_index())
    return (lower + (upper - lower) * u).astype(s.t3.dtype).reshape(s.t3.shape)


@forward("rrelu")
def rrelu_fwd(x, out, p, s):
    slope = _rrelu_slopes(p, s)
    if np.ndim(slope) == 0:
        _leaky(x, out, slope)
        return
    _slope_product(x, slope, out, s)
    np.greater(x, 0.0, out=s.b1)
    np.copyto(out, x, where=s.b1)


@backward("rrelu")
def rrelu_bwd(x, dy, dx, p, s):
    _leaky_grad(x, dy, dx, _rrelu_slopes(p, s), s)


def _elu_neg(x, out, alpha, scale_in=1.0):
    """out = alpha * expm1(x * scale_in) for x <= 0, x elsewhere."""
    if scale_in == 1.0:
        np.expm1(x, out=out)
    else:
        np.multiply(x, scale_in, out=out)
        np.expm1(out, out=out)
    np.multiply(out, alpha, out=out)


@forward("elu")
def elu_fwd(x, out, p, s):
    _elu_neg(x, out, p[0])
    np.greater(x, 0.0, out=s.b1)
    np.copyto(out, x, where=s.b1)


@backward("elu")
def elu_bwd(x, dy, dx, p, s):
    # x > 0: 1; else alpha * exp(x) (alpha at 0, as torch)
    np.minimum(x, 0.0, out=s.t1)
    np.exp(s.t1, out=s.t1)
    np.multiply(s.t1, p[0], out=s.t1)
    np.greater(x, 0.0, out=s.b1)
    np.copyto(s.t1, 1.0, where=s.b1)
    np.multiply(dy, s.t1, out=dx)




@forward("selu")
def selu_fwd(x, out, p, s):
    _elu_neg(x, out, SELU_ALPHA * SELU_SCALE)
    np.multiply(x, SELU_SCALE, out=s.t1)
    np.greater(x, 0.0, out=s.b1)
    np.copyto(out, s.t1, where=s.b1)


@backward("selu")
def selu_bwd(x, dy, dx, p, s):
    np.minimum(x, 0.0, out=s.t1)
    np.exp(s.t1, out=s.t1)
    np.multiply(s.t1, SELU_ALPHA * SELU_SCALE, out=s.t1)
    np.greater(x, 0.0, out=s.b1)
    np.copyto(s.t1, SELU_SCALE, where=s.b1)
    np.multiply(dy, s.t1, out=dx)


@forward("celu")
def celu_fwd(x, out, p, s):
    alpha = p[0]
    _elu_neg(x, out, alpha, 1.0 / alpha)
    np.greater(x, 0.0, out=s.b1)
    np.copyto(out, x, where=s.b1)


@backward("celu")
def celu_bwd(x, dy, dx, p, s):
    np.minimum(x, 0.0, out=s.t1)
    np.multiply(s.t1, 1.0 / p[0], out=s.t1)
    np.exp(s.t1, out=s.t1)
    np.greater(x, 0.0, out=s.b1)
    np.copyto(s.t1, 1.0, where=s.b1)
    np.multiply(dy, s.t1, out=dx)


# ------------------------------------------------------------ smooth gates
def _floor(x, out, s):
    """max(x, -finite_max): turns -inf into a finite number whose product with 0 is 0."""
    np.maximum(x, -s.big, out=out)


def _clip_for_grad(x, out):
    np.clip(x, -CLIP, CLIP, out=out)


def _gelu_exact_cdf(x, out):
    """out = Phi(x) = erfc(-x / sqrt 2) / 2."""
    np.multiply(x, -SQRT_HALF, out=out)
    _erfc(out, out)
    np.multiply(out, 0.5, out=out)


def _gelu_tanh_inner(x, out, tmp):
    """out = k0 * (x + k1 x^3)."""
    np.multiply(x, x, out=tmp)
    np.multiply(tmp, GELU_K1, out=tmp)
    np.add(tmp, 1.0, out=tmp)
    np.multiply(tmp, x, out=out)
    np.multiply(out, GELU_K0, out=out)


@forward("gelu")
def gelu_fwd(x, out, p, s):
    if p[0] == 0.0:  # exact: x * Phi(x), erfc keeps the negative tail accurate
        _gelu_exact_cdf(x, out)
    else:  # tanh: 0.5 x (1 + tanh(k0 (x + k1 x^3)))
        _gelu_tanh_inner(x, out, s.t1)
        np.tanh(out, out=out)
        np.add(out, 1.0, out=out)
        np.multiply(out, 0.5, out=out)
    _floor(x, s.t1, s)
    np.multiply(out, s.t1, out=out)


@backward("gelu")
def gelu_bwd(x, dy, dx, p, s):
    xc = s.t3
    _clip_for_grad(x, xc)
    if p[0] == 0.0:  # Phi(x) + x phi(x)
        np.multiply(xc, xc, out=s.t1)
        np.multiply(s.t1, -0.5, out=s.t1)
        np.exp(s.t1, out=s.t1)
        np.multiply(s.t1, xc, out=s.t1)
        np.multiply(s.t1, INV_SQRT_2PI, out=s.t1)
        _gelu_exact_cdf(xc, s.t2)
        np.add(s.t1, s.t2, out=s.t1)
    else:  # 0.5 (1 + t) + 0.5 x (1 - t^2) k0 (1 + 3 k1 x^2)
        _gelu_tanh_inner(xc, s.t1, s.t2)
        np.tanh(s.t1, out=s.t1)  # t
        np.multiply(xc, xc, out=s.t2)
        np.multiply(s.t2, 3.0 * GELU_K1, out=s.t2)
        np.add(s.t2, 1.0, out=s.t2)
        np.multiply(s.t2, xc, out=s.t2)
        np.multiply(s.t2, 0.5 * GELU_K0, out=s.t2)  # 0.5 x k0 (1 + 3 k1 x^2)
        np.multiply(s.t1, s.t1, out=dx)
        np.subtract(1.0, dx, out=dx)  # 1 - t^2
        np.multiply(s.t2, dx, out=s.t2)
        np.add(s.t1, 1.0, out=s.t1)
        np.multiply(s.t1, 0.5, out=s.t1)
        np.add(s.t1, s.t2, out=s.t1)
    np.multiply(dy, s.t1, out=dx)


def _sigmoid(x, out):
    """out = 1 / (1 + exp(-x)); exact 0 and 1 at -inf and +inf."""
    np.negative(x, out=out)
    np.exp(out, out=out)
    np.add(out, 1.0, out=out)
    np.divide(1.0, out, out=out)


@forward("sigmoid")
def sigmoid_fwd(x, out, p, s):
    _sigmoid(x, out)


@backward("sigmoid")
def sigmoid_bwd(y, dy, dx, p, s):
    np.subtract(1.0, y, out=s.t1)
    np.multiply(s.t1, y, out=s.t1)
    np.multiply(dy, s.t1, out=dx)


@forward("hard_sigmoid")
def hard_sigmoid_fwd(x, out, p, s):
    slope, offset = p
    np.multiply(x, slope, out=out)
    np.add(out, offset, out=out)
    np.clip(out, 0.0, 1.0, out=out)


@backward("hard_sigmoid")
def hard_sigmoid_bwd(x, dy, dx, p, s):
    slope, offset = p
    np.multiply(x, slope, out=s.t1)
    np.add(s.t1, offset, out=s.t1)
    _open_interval_mask(s.t1, 0.0, 1.0, s)
    np.multiply(dy, s.b1, out=dx)
    np.multiply(dx, slope, out=dx)
    nan_from(x, dx, s)


def _log1p_exp_neg_abs(x, out):
    """out = log1p(exp(-|x|))."""
    np.absolute(x, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)


@forward("log_sigmoid")
def log_sigmoid_fwd(x, out, p, s):
    _log1p_exp_neg_abs(x, s.t1)
    np.minimum(x, 0.0, out=out)
    np.subtract(out, s.t1, out=out)


@backward("log_sigmoid")
def log_sigmoid_bwd(x, dy, dx, p, s):
    np.negative(x, out=s.t1)
    _sigmoid(s.t1, s.t1)
    np.multiply(dy, s.t1, out=dx)


@forward("softplus")
def softplus_fwd(x, out, p, s):
    beta, thr = p
    bx = x
    if beta != 1.0:
        bx = s.t2
        np.multiply(x, beta, out=bx)
    _log1p_exp_neg_abs(bx, s.t1)
    np.maximum(bx, 0.0, out=out)
    np.add(out, s.t1, out=out)
    if beta != 1.0:
        np.divide(out, beta, out=out)
    if thr != math.inf:
        np.greater(bx, thr, out=s.b1)
        np.copyto(out, x, where=s.b1)


@backward("softplus")
def softplus_bwd(x, dy, dx, p, s):
    beta, thr = p
    np.multiply(x, beta, out=s.t2)
    _sigmoid(s.t2, s.t1)
    if thr != math.inf:
        np.greater(s.t2, thr, out=s.b1)
        np.copyto(s.t1, 1.0, where=s.b1)
    np.multiply(dy, s.t1, out=dx)


@forward("softsign")
def softsign_fwd(x, out, p, s):
    np.absolute(x, out=s.t1)
    np.add(s.t1, 1.0, out=s.t1)
    np.divide(x, s.t1, out=out)
    np.isinf(x, out=s.b1)  # inf / inf: the limit is sign(x)
    np.sign(x, out=s.t1)
    np.copyto(out, s.t1, where=s.b1)


@backward("softsign")
def softsign_bwd(x, dy, dx, p, s):
    np.absolute(x, out=s.t1)
    np.add(s.t1, 1.0, out=s.t1)
    np.multiply(s.t1, s.t1, out=s.t1)
    np.divide(dy, s.t1, out=dx)


@forward("silu")
def silu_fwd(x, out, p, s):
    _sigmoid(x, out)
    _floor(x, s.t1, s)
    np.multiply(out, s.t1, out=out)


def _silu_grad(x, out, s):
    """out = s (1 + x (1 - s)), s = sigmoid(x); uses s.t3."""
    xc = s.t3
    _clip_for_grad(x, xc)
    _sigmoid(xc, out)
    np.subtract(1.0, out, out=s.t2)
    np.multiply(s.t2, xc, out=s.t2)
    np.add(s.t2, 1.0, out=s.t2)
    np.multiply(out, s.t2, out=out)


@backward("silu")
def silu_bwd(x, dy, dx, p, s):
    _silu_grad(x, s.t1, s)
    np.multiply(dy, s.t1, out=dx)


@forward("hard_silu")
def hard_silu_fwd(x, out, p, s):
    # x * relu6(x + 3) / 6: x + 3 is exact near -3, where x/6 + 1/2 would cancel
    np.add(x, 3.0, out=out)
    np.clip(out, 0.0, 6.0, out=out)
    np.divide(out, 6.0, out=out)
    np.maximum(x, -3.0, out=s.t1)  # below -3 the gate is 0: keeps -inf * 0 out
    np.multiply(out, s.t1, out=out)


@backward("hard_silu")
def hard_silu_bwd(x, dy, dx, p, s):
    np.multiply(x, 2.0 / 6.0, out=s.t1)
    np.add(s.t1, 0.5, out=s.t1)
    np.less_equal(x, -3.0, out=s.b1)
    np.copyto(s.t1, 0.0, where=s.b1)
    np.greater_equal(x, 3.0, out=s.b1)
    np.copyto(s.t1, 1.0, where=s.b1)
    np.multiply(dy, s.t1, out=dx)


@forward("mish")
def mish_fwd(x, out, p, s):
    softplus_fwd(x, out, (1.0, math.inf), s)
    np.tanh(out, out=out)
    _floor(x, s.t1, s)
    np.multiply(out, s.t1, out=out)


@backward("mish")
def mish_bwd(x, dy, dx, p, s):
    # tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2)
    xc = s.t3
    _clip_for_grad(x, xc)
    softplus_fwd(xc, dx, (1.0, math.inf), s)
    np.tanh(dx, out=dx)  # dx holds t = tanh(sp) until the end
    _sigmoid(xc, s.t1)
    np.multiply(s.t1, xc, out=s.t1)
    np.multiply(dx, dx, out=s.t2)
    np.subtract(1.0, s.t2, out=s.t2)
    np.multiply(s.t1, s.t2, out=s.t1)
    np.add(s.t1, dx, out=s.t1)
    np.multiply(dy, s.t1, out=dx)


@forward("tanh")
def tanh_fwd(x, out, p, s):
    np.tanh(x, out=out)


@backward("tanh")
def tanh_bwd(y, dy, dx, p, s):
    np.multiply(y, y, out=s.t1)
    np.subtract(1.0, s.t1, out=s.t1)
    np.multiply(dy, s.t1, out=dx)


@forward("hard_tanh")
def hard_tanh_fwd(x, out, p, s):
    np.clip(x, p[0], p[1], out=out)


@backward("hard_tanh")
def hard_tanh_bwd(x, dy, dx, p, s):
    _open_interval_mask(x, p[0], p[1], s)
    np.multiply(dy, s.b1, out=dx)
    nan_from(x, dx, s)




@forward("tanh_shrink")
def tanh_shrink_fwd(x, out, p, s):
    np.tanh(x, out=out)
    np.subtract(x, out, out=out)
    np.absolute(x, out=s.t1)
    np.less(s.t1, 0.25, out=s.b1)
    if not s.b1.any():
        return
    x2 = s.t1
    np.multiply(x, x, out=x2)
    acc = s.t2
    acc.fill(TANH_SHRINK_SERIES[-1])
    for c in TANH_SHRINK_SERIES[-2::-1]:
        np.multiply(acc, x2, out=acc)
        np.add(acc, c, out=acc)
    np.multiply(acc, x2, out=acc)
    np.multiply(acc, x, out=acc)
    np.copyto(out, acc, where=s.b1)


@backward("tanh_shrink")
def tanh_shrink_bwd(x, dy, dx, p, s):
    np.tanh(x, out=s.t1)
    np.multiply(s.t1, s.t1, out=s.t1)
    np.multiply(dy, s.t1, out=dx)


@forward("soft_shrink")
def soft_shrink_fwd(x, out, p, s):
    t = p[0]
    np.clip(x, -t, t, out=s.t1)
    np.subtract(x, s.t1, out=out)  # NaN - NaN keeps NaN; inf - t keeps inf


def _outside_band_grad(x, dy, dx, t, s):
    np.absolute(x, out=s.t1)
    np.greater(s.t1, t, out=s.b1)
    np.multiply(dy, s.b1, out=dx)
    nan_from(x, dx, s)


@backward("soft_shrink")
def soft_shrink_bwd(x, dy, dx, p, s):
    _outside_band_grad(x, dy, dx, p[0], s)


@forward("hard_shrink")
def hard_shrink_fwd(x, out, p, s):
    np.absolute(x, out=s.t1)
    np.greater(s.t1, p[0], out=s.b1)
    np.multiply(x, s.b1, out=out)  # NaN * 0 stays NaN


@backward("hard_shrink")
def hard_shrink_bwd(x, dy, dx, p, s):
    _outside_band_grad(x, dy, dx, p[0], s)


@forward("threshold")
def threshold_fwd(x, out, p, s):
    thr, value = p
    np.copyto(out, x)
    np.less_equal(x, thr, out=s.b1)  # False for NaN, which therefore stays
    np.copyto(out, value, where=s.b1)


@backward("threshold")
def threshold_bwd(x, dy, dx, p, s):
    np.greater(x, p[0], out=s.b1)
    np.multiply(dy, s.b1, out=dx)
    nan_from(x, dx, s)


@forward("sparse_plus")
def sparse_plus_fwd(x, out, p, s):
    np.clip(x, -1.0, 1.0, out=out)
    np.add(out, 1.0, out=out)
    np.multiply(out, out, out=out)
    np.multiply(out, 0.25, out=out)
    np.greater_equal(x, 1.0, out=s.b1)
    np.copyto(out, x, where=s.b1)


@backward("sparse_plus")
def sparse_plus_bwd(x, dy, dx, p, s):
    np.clip(x, -1.0, 1.0, out=s.t1)
    np.add(s.t1, 1.0, out=s.t1)
    np.multiply(s.t1, 0.5, out=s.t1)
    np.multiply(dy, s.t1, out=dx)


@forward("sparse_sigmoid")
def sparse_sigmoid_fwd(x, out, p, s):
    np.clip(x, -1.0, 1.0, out=out)
    np.add(out, 1.0, out=out)
    np.multiply(out, 0.5, out=out)


@backward("sparse_sigmoid")
def sparse_sigmoid_bwd(x, dy, dx, p, s):
    _open_interval_mask(x, -1.0, 1.0, s)
    np.multiply(dy, s.b1, out=dx)
    np.multiply(dx, 0.5, out=dx)
    nan_from(x, dx, s)


@forward("squareplus")
def squareplus_fwd(x, out, p, s):
    b = p[0]
    h = s.t1
    np.hypot(x, math.sqrt(b), out=h)  # no overflow of x^2
    np.add(x, h, out=out)
    np.multiply(out, 0.5, out=out)
    np.less(x, 0.0, out=s.b1)
    if s.b1.any():  # x < 0: b / (2 (h - x)), no cancellation
        np.subtract(h, x, out=s.t2)
        np.multiply(s.t2, 2.0, out=s.t2)
        np.divide(b, s.t2, out=s.t2)
        np.copyto(out, s.t2, where=s.b1)


@backward("squareplus")
def squareplus_bwd(x, dy, dx, p, s):
    b = p[0]
    xc = s.t3
    np.clip(x, -s.big, s.big, out=xc)
    h = s.t1
    np.hypot(xc, math.sqrt(b), out=h)
    np.divide(xc, h, out=s.t2)
    if b == 0.0:  # x / h at x = 0: the kink of relu, 1/2 by the docs
        np.equal(h, 0.0, out=s.b1)
        np.copyto(s.t2, 0.0, where=s.b1)
    np.add(s.t2, 1.0, out=s.t2)
    np.multiply(s.t2, 0.5, out=s.t2)
    np.multiply(dy, s.t2, out=dx)


@forward("exponential")
def exponential_fwd(x, out, p, s):
    np.exp(x, out=out)


@backward("exponential")
def exponential_bwd(y, dy, dx, p, s):
    np.multiply(dy, y, out=dx)


@forward("linear")
def linear_fwd(x, out, p, s):
    np.copyto(out, x)


@backward("linear")
def linear_bwd(x, dy, dx, p, s):
    np.copyto(dx, dy)
    nan_from(x, dx, s)


@forward("log1mexp")
def log1mexp_fwd(x, out, p, s):
    # x < ln 2: log(-expm1(-x)); else log1p(-exp(-x))  (Maechler 2012)
    np.negative(x, out=s.t1)
    np.exp(s.t1, out=out)
    np.negative(out, out=out)
    np.log1p(out, out=out)
    np.less(x, LN2, out=s.b1)
    np.expm1(s.t1, out=s.t1)
    np.negative(s.t1, out=s.t1)
    np.log(s.t1, out=s.t1)
    np.copyto(out, s.t1, where=s.b1)


@backward("log1mexp")
def log1mexp_bwd(x, dy, dx, p, s):
    np.expm1(x, out=s.t1)
    np.add(s.t1, 0.0, out=s.t1)  # expm1(-0.0) = -0.0: the derivative at 0 is +inf
    np.divide(dy, s.t1, out=dx)
    np.less(x, 0.0, out=s.b1)  # outside the domain, as the forward
    np.copyto(dx, np.nan, where=s.b1)


@forward("lisht")
def lisht_fwd(x, out, p, s):
    np.tanh(x, out=out)
    np.multiply(out, x, out=out)


@backward("lisht")
def lisht_bwd(x, dy, dx, p, s):
    xc = s.t3
    _clip_for_grad(x, xc)
    np.tanh(xc, out=s.t1)
    np.multiply(s.t1, s.t1, out=s.t2)
    np.subtract(1.0, s.t2, out=s.t2)
    np.multiply(s.t2, xc, out=s.t2)
    np.add(s.t1, s.t2, out=s.t1)
    np.multiply(dy, s.t1, out=dx)


@forward("snake")
def snake_fwd(x, out, p, s):
    f = p[0]
    np.multiply(x, f, out=out)
    np.sin(out, out=out)
    np.multiply(out, out, out=out)
    np.multiply(out, 1.0 / f, out=out)
    np.add(out, x, out=out)


@backward("snake")
def snake_bwd(x, dy, dx, p, s):
    f = p[0]
    np.multiply(x, 2.0 * f, out=s.t1)
    np.sin(s.t1, out=s.t1)
    np.add(s.t1, 1.0, out=s.t1)
    np.multiply(dy, s.t1, out=dx)
