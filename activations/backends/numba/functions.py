"""Numba CUDA device functions: one forward/backward pair per activation.

Conventions (every pair has the same shape, so one loop serves them all)::

    name_fwd(x, p, a)        -> y          # y = f(x)
    name_bwd(dy, v, p, a)    -> dx         # dx = dy * f'(.), v is x or y (record.grad_from)

``x`` is already in compute precision with the bias added.  ``p`` is a
3-tuple of compute-precision floats (``BoundParams.kernel_floats()`` padded
with zeros), ``a`` the per-element slope of prelu/rrelu (0 for the others).
The loops make ``y`` and ``dx`` NaN wherever ``x`` is NaN, so the functions
below only keep the limits at +-inf and torch's kinks (docs/semantics.md).

Gated pairs take both halves: ``gate_fwd(a, b, p) -> y`` and
``gate_bwd(dy, a, b, p) -> (da, db)``.

The functions are written once, against module-level constants (``ONE``,
``HALF``, ...), and :func:`functions` clones them per compute type with those
constants as float32 or float64 scalars: float32 kernels must not contain a
single float64 instruction, and a bare Python literal (``0.5``) is a float64
in Numba.  Calls between them resolve inside the clone's namespace.
"""
from __future__ import annotations

import math
import threading
import types as _pytypes

import numpy as np
import numba
from numba import cuda

from ...catalogue import GELU_K0, GELU_K1, REGISTRY, SELU_ALPHA, SELU_SCALE, TANH_SHRINK_SERIES
from ...registry import Kind


def _simulator() -> bool:
    try:
        from numba.cuda.core import config
    except ImportError:  # the built-in numba.cuda of numba without numba-cuda
        from numba.core import config
    return bool(getattr(config, "ENABLE_CUDASIM", False))


#: NUMBA_ENABLE_CUDASIM=1 when numba was imported: kernels run as Python threads
SIMULATOR = _simulator()


class _SimMath:
    """``math`` for the CUDA simulator, with IEEE results instead of exceptions.

    The simulator runs device code as Python, where ``math.exp(1000)`` raises
    OverflowError and ``math.log(0)`` ValueError; the GPU returns inf.  NumPy
    ufuncs on NumPy scalars behave like the GPU (and stay in float32).
    """

    @staticmethod
    def _np(fn, *args):
        with np.errstate(all="ignore"):
            return fn(*args)

    def exp(self, x):
        return self._np(np.exp, x)

    def expm1(self, x):
        return self._np(np.expm1, x)

    def log(self, x):
        return self._np(np.log, x)

    def log1p(self, x):
        return self._np(np.log1p, x)

    def tanh(self, x):
        return self._np(np.tanh, x)

    def sin(self, x):
        return self._np(np.sin, x)

    def cos(self, x):
        return self._np(np.cos, x)

    def sqrt(self, x):
        return self._np(np.sqrt, x)

    def hypot(self, x, y):
        return self._np(np.hypot, x, y)

    def erfc(self, x):  # NumPy has no erfc; math.erfc never raises
        return np.asarray(x).dtype.type(math.erfc(float(x)))

    def isinf(self, x):
        return bool(np.isinf(x))

    def ldexp(self, x, n):
        return self._np(np.ldexp, x, int(n))


M = _SimMath() if SIMULATOR else math

# --------------------------------------------------------------- constants
# Cloned per compute type by `functions`: the values here are placeholders
# with the right meaning, so the module also reads as plain Python.
_CONSTANTS: dict[str, float] = {
    "ZERO": 0.0,
    "ONE": 1.0,
    "TWO": 2.0,
    "THREE": 3.0,
    "FOUR": 4.0,
    "SIX": 6.0,
    "HALF": 0.5,
    "SIXTH": 1.0 / 6.0,
    "INF": math.inf,
    "NAN": math.nan,
    "LN2": math.log(2.0),
    # pi/4 = PI4_HI + PI4_LO, PI4_HI rounded to the compute type; PI4_LO is per type (_PI4_LO)
    "PI4_HI": math.pi / 4,
    "PI4_LO": 3.061616997868383e-17,
    "SQRT_HALF": math.sqrt(0.5),
    "INV_SQRT_2PI": 1.0 / math.sqrt(2.0 * math.pi),
    "GELU_K0": GELU_K0,
    "GELU_K1x3": 3.0 * GELU_K1,
    "GELU_K1": GELU_K1,
    "SELU_ALPHA": SELU_ALPHA,
    "SELU_SCALE": SELU_SCALE,
    "SELU_SA": SELU_ALPHA * SELU_SCALE,
    # Derivatives are evaluated at x clipped to +-CLIP: beyond it each of them
    # equals its limit in float32 and float64, and inf * 0 cannot occur.
    "CLIP": 1.0e4,
    # below -MISH_XSIGMOID mish(x) is x sigmoid(x) to the last bit
    "MISH_XSIGMOID": 80.0,
    # 64 ln2 = LN2X64_HI + LN2X64_LO, HI a multiple of 2^-17 (x + HI is exact for 64 <= -x < 128)
    "LN2X64_HI": 44.361419677734375,
    "LN2X64_LO": 64.0 * math.log(2.0) - 44.361419677734375,
    "TWO_M64": 2.0**-64,
    "SIXTY_FOUR": 64.0,
    "GELU_TAIL_END": 14.8,
    "LOGISTIC_CLAMP": 112.0,
    "LOG2E": 1.0 / math.log(2.0),
    "RINT_MAGIC": 12582912.0,
    # ln2 = LN2_HI16 + LN2_LO16, HI16 with 16 bits (k LN2_HI16 exact for k < 2^8)
    "LN2_HI16": 0.693145751953125,
    "LN2_LO16": math.log(2.0) - 0.693145751953125,
    "LN2_LO3": float.fromhex("0x1.ef357ap-45"),  # ln2 - LN2_HI16 - LN2_LO16 as a float
    "INV_SQRT_2PI_LO": float.fromhex("-0x1.857936p-27"),  # 1/sqrt(2 pi) - its float
    "QUARTER": 0.25,
    "LOW_TAIL_END": 128.0,
    "TANH_SHRINK_SERIES_END": 0.25,
    "U24": 2.0**-24,
}
# Float polynomials of the float32 pair formulas, the literals of kernels/common.cuh (generated by
# kernels/cpu/fit_vmath.py exp_pair and gelu_mills; _LO: the low halves of the pair coefficients).
#   exp(u) = 1 + u + u^2/2 + sum EXP_Ci u^i, |u| <= 0.347
#   M(a) (1 + a/4) / sqrt(2 pi) = sum GELU_Mi v^i, v = 1/(1 + a/4) - GELU_MILLS_TC, M the Mills ratio
_FLOAT_POLYS = {
    "EXP_C3": "0x1.555556p-3", "EXP_C3_LO": "-0x1.4cfd34p-28",
    "EXP_C4": "0x1.555556p-5", "EXP_C4_LO": "-0x1.3447fp-30",
    "EXP_C5": "0x1.111106p-7", "EXP_C6": "0x1.6c1668p-10", "EXP_C7": "0x1.a03d8cp-13",
    "EXP_C8": "0x1.a13dd4p-16", "EXP_C9": "0x1.4ea46ep-19",
    "GELU_MILLS_TC": "0x1.4p-1",
    "GELU_M0": "0x1.de857ap-3", "GELU_M0_LO": "0x1.f165c8p-28",
    "GELU_M1": "0x1.ae40acp-2", "GELU_M1_LO": "0x1.b470dp-29",
    "GELU_M2": "0x1.19ead4p-1", "GELU_M2_LO": "-0x1.9fb92p-27",
    "GELU_M3": "0x1.00573ep-1", "GELU_M3_LO": "-0x1.387bc4p-26",
    "GELU_M4": "0x1.0d3d3p-2", "GELU_M5": "0x1.a7b9a2p-9", "GELU_M6": "-0x1.7d04ccp-4",
    "GELU_M7": "-0x1.cd83a4p-6", "GELU_M8": "0x1.25ee78p-5", "GELU_M9": "0x1.b4aa24p-7",
    "GELU_M10": "-0x1.f9569ep-7",
}
_CONSTANTS.update({k: float.fromhex(v) for k, v in _FLOAT_POLYS.items()})
_PI4_LO = {"float32": -2.1855694e-08, "float64": 3.061616997868383e-17}  # pi/4 - PI4_HI in that type
for _k, _c in enumerate(TANH_SHRINK_SERIES):
    _CONSTANTS[f"TS{_k}"] = _c
globals().update(_CONSTANTS)
CT = numba.float64  # the compute type; float32 in the float32 clone

# splitmix64 constants of the rrelu noise (docs/semantics.md), as uint64 so
# that no step of the hash leaves unsigned 64-bit integer arithmetic.
U64 = numba.uint64
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
S30, S27, S31, S40, U1 = (np.uint64(v) for v in (30, 27, 31, 40, 1))


# ------------------------------------------------------------ float pairs
# kernels/common.cuh m::Two, formula for formula: a float32 carried as hi + lo (about 44 bits) by
# the float32 silu' and mish', which round once at the end.  `fma` is cuda.fma on the GPU; the
# simulator and the host target take it in float64 (exact where these functions need it: the
# low part of a product, a division's residual).
#: True in the float32 clone
FLOAT32 = False


def fma(a, b, c):  # replaced per target by _clone
    return a * b + c


def _wide_fma(a, b, c):  # the simulator's (NumPy float32 scalars)
    return type(a)(np.float64(a) * np.float64(b) + np.float64(c))


def _cuda_fma(a, b, c):  # the GPU's: one fma.rn instruction
    return cuda.fma(a, b, c)


def _wide_fma32(a, b, c):  # the host target's, float32
    return np.float32(np.float64(a) * np.float64(b) + np.float64(c))


def fast_two_sum(a, b):  # a + b exactly, |a| >= |b|
    s = a + b
    return s, b - (s - a)


def two_sum(a, b):  # a + b exactly
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def two_prod(a, b):  # a b exactly
    p = a * b
    return p, fma(a, b, -p)


def pair_add(a, b):
    s, e = two_sum(a[0], b[0])
    return fast_two_sum(s, e + (a[1] + b[1]))


def pair_add_ordered(a, b):  # |a| >= |b|
    s, e = fast_two_sum(a[0], b[0])
    return fast_two_sum(s, e + (a[1] + b[1]))


def pair_mul(a, b):
    p, e = two_prod(a[0], b[0])
    return fast_two_sum(p, e + (a[0] * b[1] + a[1] * b[0]))


def pair_quotient(n, d):  # n / d rounded once, d > 0
    inv = ONE / d[0]
    q0 = n[0] * inv
    r = (fma(-q0, d[0], n[0]) + n[1]) - q0 * d[1]
    return fma(r, inv, q0)


def horner_step(c, v, s):
    """c + v s as a pair (common.cuh m::horner_step): c and s pairs, v a float, the exponent of c's
    high part at least that of v s."""
    p, pe = two_prod(v, s[0])
    r, re = fast_two_sum(c[0], p)
    return r, re + (pe + fma(v, s[1], c[1]))


def exp_neg_split(a, al):
    """exp(-(a + al)) 2^64 as a pair, 0 <= a <= 126, |al| <= ulp(a) (common.cuh m::exp_neg_split,
    then scaled(64); al: the low part of a pair argument), to about 2^-42."""
    k = (a * LOG2E + RINT_MAGIC) - RINT_MAGIC  # rint(a / ln2)
    r1 = fma(-k, LN2_HI16, a)  # exact
    kl, kle = two_prod(k, LN2_LO16)
    r, rl = two_sum(r1, -kl)
    rl = rl + ((al - kle) - k * LN2_LO3)
    u = -r
    p = fma(fma(fma(fma(EXP_C9, u, EXP_C8), u, EXP_C7), u, EXP_C6), u, EXP_C5)
    e = horner_step((EXP_C4, EXP_C4_LO), u, (p, ZERO))
    e = horner_step((EXP_C3, EXP_C3_LO), u, e)
    e = horner_step((HALF, ZERO), u, e)
    e = horner_step((ONE, ZERO), u, e)
    e = horner_step((ONE, ZERO), u, e)  # exp(u)
    sc = M.ldexp(ONE, numba.int32(SIXTY_FOUR - k))
    return e[0] * sc, fma(-rl, e[0], e[1]) * sc


def gelu_grad32(x):
    """gelu'(x) in float32 (common.cuh m::gelu_grad(float)): h(a) = phi(a) (M(a) - a), M the Mills
    ratio, a = |x|; h for x < 0, 1 - h above, from float pairs rounded once."""
    ax = abs(x)
    a = GELU_TAIL_END if ax > GELU_TAIL_END else ax
    d, dl = two_sum(ONE, QUARTER * a)
    th = ONE / d
    rho = fma(-th, d, ONE)  # 1 - th d, exact
    v, ev = fast_two_sum(-GELU_MILLS_TC, th)  # th = TC + v + ev
    delta = (FOUR * d) * ((th * dl - d * ev) - rho)  # a - a', a' = 4 / (TC + v) - 4
    p = fma(fma(fma(fma(fma(fma(GELU_M10, v, GELU_M9), v, GELU_M8), v, GELU_M7), v, GELU_M6), v, GELU_M5), v, GELU_M4)
    f = horner_step((GELU_M3, GELU_M3_LO), v, (p, ZERO))
    f = horner_step((GELU_M2, GELU_M2_LO), v, f)
    f = horner_step((GELU_M1, GELU_M1_LO), v, f)
    q, qe = two_prod(v, f[0])  # the last step with TwoSum: v f can exceed GELU_M0's binade
    r, re = two_sum(GELU_M0, q)
    f = (r, re + (qe + fma(v, f[1], GELU_M0_LO)))  # M(a') / (sqrt(2 pi) (TC + v))
    m = pair_mul((th, -ev), f)  # M(a') / sqrt(2 pi)
    corr = fma(a, m[0], -INV_SQRT_2PI) * delta  # M'(a) (a - a') / sqrt(2 pi), M' = a M - 1
    c, cl = two_prod(a, INV_SQRT_2PI)
    d0, d0l = two_sum(m[0], -c)
    dm = (d0, d0l + ((m[1] + corr) - fma(a, INV_SQRT_2PI_LO, cl)))  # (M(a) - a) / sqrt(2 pi)
    sq, sql = two_prod(a, a)
    h = pair_mul(exp_neg_split(HALF * sq, HALF * sql), dm)  # (Phi(-a) - a phi(a)) 2^64
    if x < ZERO:
        return (h[0] + h[1]) * TWO_M64
    o, ol = fast_two_sum(ONE, -(h[0] * TWO_M64))
    return o + fma(-h[1], TWO_M64, ol)


def logistic_parts(v):
    """common.cuh LogisticParts: (x clamped to +-112, e 2^64, e, d = 1 + e, d^2), pairs."""
    x = LOGISTIC_CLAMP if v > LOGISTIC_CLAMP else (-LOGISTIC_CLAMP if v < -LOGISTIC_CLAMP else v)
    es = exp_neg_split(abs(x), ZERO)
    e = (es[0] * TWO_M64, es[1] * TWO_M64)
    d0, d1 = fast_two_sum(ONE, e[0])
    d = (d0, d1 + e[1])
    return x, es, e, d, pair_mul(d, d)


def over_d2(x, n, den):
    q = pair_quotient(n, den)
    return q * TWO_M64 if x < ZERO else q


# ------------------------------------------------------------------ helpers
def clip(x, lo, hi):
    return min(max(x, lo), hi)


def sig2(x):
    """(sigmoid(x), 1 - sigmoid(x)), both without cancellation; exact 0/1 at -+inf."""
    e = M.exp(-abs(x))
    r = ONE / (ONE + e)
    if x >= ZERO:
        return r, e * r
    return e * r, r


def leaky(x, s):
    """x > 0 ? x : s*x, with s*x := 0 when s == 0 (so -inf gives 0)."""
    if x > ZERO:
        return x
    if s == ZERO:
        return ZERO
    return s * x


def counter_hash(seed, i):
    """kernels/common.cuh counter_hash: splitmix64 of seed + (i + 1) * golden (rrelu, FP8 noise)."""
    z = seed + (U64(i) + U1) * GOLDEN
    z = (z ^ (z >> S30)) * MIX1
    z = (z ^ (z >> S27)) * MIX2
    return z ^ (z >> S31)


def fp8_encode(v, mant, emin, max_code, nan_code, stochastic, noise):
    """kernels/fp8.cuh fp8::encode, formula for formula: the FP8 code (uint64) of the float64 v.

    Numba's CUDA target has no float64 bit cast, so sign, exponent and 53-bit significand come
    from copysign and frexp (exact); everything after is the same integer arithmetic, kept in
    uint64 (a mix with int64 would turn into float64).
    """
    sign = U64(128) if math.copysign(1.0, v) < 0.0 else U64(0)
    if v != v:
        return sign | nan_code
    a = abs(v)
    if a == 0.0:
        return sign
    if a == math.inf:
        e = 1024
        mnt = U64(1) << U64(52)
    else:
        fr, e2 = math.frexp(a)
        e = e2 - 1
        mnt = U64(fr * 9007199254740992.0)  # 2^53: the significand with its implicit bit
        if e < -1022:  # a double subnormal, as its bits hold it
            mnt = mnt >> U64(-1022 - e)
            e = -1022
    shift = 52 - mant + (emin - e if e < emin else 0)
    kept = U64(0)
    up = False
    if shift <= 63:
        sh = U64(shift)
        kept = mnt >> sh
        one = U64(1) << sh
        rem = mnt & (one - U64(1))
        if stochastic:
            up = rem != U64(0) and rem >= one - (noise >> (U64(64) - sh))
        else:
            half = one >> U64(1)
            up = rem > half or (rem == half and (kept & U64(1)) == U64(1))
    elif stochastic and shift < 127:
        up = (noise >> U64(1)) < (mnt >> U64(shift - 63))
    base = U64(0)
    if e >= emin:
        base = U64(e - emin) << U64(mant)
    code = base + kept + (U64(1) if up else U64(0))
    if code > max_code:
        code = max_code
    return sign | code


def rrelu_slope(i, p, seed):
    """Eval: (lower + upper)/2.  Training: lower + (upper - lower) u(seed, i), splitmix64."""
    lower, upper = p[0], p[1]
    if p[2] == ZERO:
        return (lower + upper) * HALF
    z = counter_hash(seed, i)
    u = CT(z >> S40) * U24  # exact: 24 bits
    return lower + (upper - lower) * u


# --------------------------------------------------------------- rectifiers
def relu_fwd(x, p, a):
    slope, cap, thr = p[0], p[1], p[2]
    if x > thr:
        return x if cap == INF else clip(x, ZERO, cap)
    if slope == ZERO:
        return ZERO
    y = slope * (x - thr)
    return ZERO if y == ZERO else y  # -0.0 -> +0.0 (Keras 3)


def relu_bwd(dy, x, p, a):
    slope, cap, thr = p[0], p[1], p[2]
    if x > thr:
        if cap != INF and not (x > ZERO and x < cap):
            return dy * ZERO  # the clipped part of the positive branch is flat
        return dy
    return dy * slope


def relu6_fwd(x, p, a):
    return clip(x, ZERO, SIX)


def relu6_bwd(dy, x, p, a):
    return dy * (ONE if x > ZERO and x < SIX else ZERO)


def leaky_relu_fwd(x, p, a):
    return leaky(x, p[0])


def leaky_relu_bwd(dy, x, p, a):
    return dy * (ONE if x > ZERO else p[0])


def prelu_fwd(x, p, a):  # a = weight[i % C] (or the scalar weight)
    return leaky(x, a)


def prelu_bwd(dy, x, p, a):  # dweight is reduced by its own kernel
    return dy * (ONE if x > ZERO else a)


def rrelu_fwd(x, p, a):  # a = rrelu_slope(i, p, seed), the same in both directions
    return leaky(x, a)


def rrelu_bwd(dy, x, p, a):
    return dy * (ONE if x > ZERO else a)


def elu_fwd(x, p, a):
    return x if x > ZERO else p[0] * M.expm1(x)


def elu_bwd(dy, x, p, a):  # alpha at 0, as torch
    return dy * (ONE if x > ZERO else p[0] * M.exp(x))


def selu_fwd(x, p, a):
    return SELU_SCALE * x if x > ZERO else SELU_SA * M.expm1(x)


def selu_bwd(dy, x, p, a):  # scale * alpha at 0 (torch, JAX)
    return dy * (SELU_SCALE if x > ZERO else SELU_SA * M.exp(x))


def celu_fwd(x, p, a):
    return x if x > ZERO else p[0] * M.expm1(x / p[0])


def celu_bwd(dy, x, p, a):
    return dy * (ONE if x > ZERO else M.exp(x / p[0]))


# ------------------------------------------------------------ smooth gates
def gelu_fwd(x, p, a):
    if x == -INF:
        return ZERO
    if p[0] == ZERO:  # exact: x Phi(x); erfc keeps the negative tail accurate
        return HALF * x * M.erfc(-x * SQRT_HALF)
    # tanh form 0.5 x (1 + tanh(u)) written as x sigmoid(2u): no cancellation for x < 0
    u = GELU_K0 * (x + GELU_K1 * x * x * x)
    return x * sig2(TWO * u)[0]


def gelu_bwd(dy, x, p, a):
    if FLOAT32 and p[0] == ZERO:  # float pairs (common.cuh m::gelu_grad)
        return dy * gelu_grad32(x)
    x = clip(x, -CLIP, CLIP)
    if p[0] == ZERO:  # Phi(x) + x phi(x)
        return dy * (HALF * M.erfc(-x * SQRT_HALF) + x * M.exp(-HALF * x * x) * INV_SQRT_2PI)
    # 0.5 (1 + t) + 0.5 x (1 - t^2) k0 (1 + 3 k1 x^2), with 0.5 (1 + t) = s, 1 - t^2 = 4 s (1 - s)
    s, c = sig2(TWO * GELU_K0 * (x + GELU_K1 * x * x * x))
    return dy * (s + TWO * x * s * c * GELU_K0 * (ONE + GELU_K1x3 * x * x))


def sigmoid_fwd(x, p, a):
    return sig2(x)[0]


def sigmoid_bwd(dy, x, p, a):  # e / (1 + e)^2 from x: accurate in both tails
    e = M.exp(-abs(x))
    q = ONE + e
    return dy * (e / (q * q))


def hard_sigmoid_fwd(x, p, a):  # (x + offset/slope) / (1/slope): relu6(x + 3) / 6 for the defaults
    return clip((x + p[1] / p[0]) / (ONE / p[0]), ZERO, ONE)


def hard_sigmoid_bwd(dy, x, p, a):  # kinks decided on x
    return dy * (p[0] if x > -p[1] / p[0] and x < (ONE - p[1]) / p[0] else ZERO)


def log_sigmoid_fwd(x, p, a):
    return min(x, ZERO) - M.log1p(M.exp(-abs(x)))


def log_sigmoid_bwd(dy, x, p, a):
    return dy * sig2(x)[1]  # sigmoid(-x)


def softplus_fwd(x, p, a):
    beta, thr = p[0], p[1]
    bx = beta * x
    if bx > thr:
        return x
    return max(x, ZERO) + M.log1p(M.exp(-abs(bx))) / beta  # no overflow where beta x does


def softplus_bwd(dy, x, p, a):
    bx = p[0] * x
    return dy * (ONE if bx > p[1] else sig2(bx)[0])


def softsign_fwd(x, p, a):
    if M.isinf(x):  # inf / inf: the limit is sign(x)
        return ONE if x > ZERO else -ONE
    return x / (ONE + abs(x))


def softsign_bwd(dy, x, p, a):
    r = ONE / (ONE + abs(x))  # squared after the division: (1 + |x|)^2 overflows
    return dy * (r * r)


def silu_fwd(x, p, a):
    if x == -INF:
        return ZERO
    return x * sig2(x)[0]


def low_tail_grad(x):
    """silu'(x) and mish'(x) for -128 < x < -80, where both are e^x (1 + x) to the last bit: formed
    as (e^(x + 64 ln2) (1 + x)) 2^-64, so that a subnormal float32 result (x < -92) is rounded once
    (exp(x) alone underflows below -87: 2x off)."""
    e = M.exp(x + LN2X64_HI)
    return ((e + e * LN2X64_LO) * (ONE + x)) * TWO_M64


def silu_bwd(dy, x, p, a):
    if FLOAT32:  # (a d + x c) / d^2, (a, c) = (1, e) for x >= 0, (e, e) below (functors.cuh Silu)
        x, es, e, d, d2 = logistic_parts(x)
        av = es if x < ZERO else (ONE, ZERO)
        c = es if x < ZERO else e
        return dy * over_d2(x, pair_add(pair_mul(av, d), pair_mul((x, ZERO), c)), d2)
    # s (1 + x (1 - s)); for x < 0 as s ((1 + x) - x s): 1 + x is exact for x <= -1, so the
    # cancellation near the zero at -1.28 costs no more than the rounding of x s (functors.cuh Silu)
    if x < -MISH_XSIGMOID and x > -LOW_TAIL_END:
        return dy * low_tail_grad(x)
    x = clip(x, -CLIP, CLIP)
    s, c = sig2(x)
    q = (ONE + x) - x * s if x < ZERO else ONE + x * c
    return dy * (s * q)


def hard_silu_fwd(x, p, a):
    if x <= -THREE:
        return ZERO
    if x >= THREE:
        return x
    return x * (x + THREE) * SIXTH


def hard_silu_bwd(dy, x, p, a):  # 0 at -3 and 1 at 3 (torch >= 2.7)
    if x <= -THREE:
        return dy * ZERO
    if x >= THREE:
        return dy
    return dy * ((TWO * x + THREE) * SIXTH)


def xmul(x, g):
    """x g, 0 where g is 0 (x g -> 0 as g vanishes faster than x grows: no inf * 0)."""
    return ZERO if g == ZERO else x * g


# mish = x tanh(softplus(x)), rational in e = exp(-|x|) as in kernels/functors.cuh Mish:
#   x >= 0: tanh(sp) = 1 - 2e^2 / Dp, Dp = 1 + 2e (1 + e);  mish' = 1 - (2e^2 / Dp)(1 - 2x (1 + e) / Dp)
#   x <  0: tanh(sp) = e - e^2 (1 + e) / Dn, Dn = e (e + 2) + 2;  mish' = e P / Dn^2,
#           P = 4 (1 + x) + e (6 + 4x + e (4 + e))  (near the zero of mish' at -1.19 the
#           cancellation is between exact or small terms; t + x s (1 - t^2) lost ~1000 ulps there)
def mish_fwd(x, p, a):
    e = M.exp(-abs(x))
    if x >= ZERO:
        return x - xmul(x, TWO * e * e / (TWO * e * (ONE + e) + ONE))
    if x < -MISH_XSIGMOID:  # x e^x (1 - e/2 + ...): x sigmoid(x) to the last bit
        return xmul(x, sig2(x)[0])
    return x * (e - e * e * (ONE + e) / (e * (e + TWO) + TWO))


def mish_bwd(dy, x, p, a):
    if FLOAT32:  # m (B Q + 4x c d) / Q^2 (functors.cuh Mish)
        x, es, e, d, d2 = logistic_parts(x)
        neg = x < ZERO
        c = (ONE, ZERO) if neg else pair_mul(e, e)
        q = pair_add_ordered(d2, c)
        b = pair_add_ordered(d, (ONE, ZERO) if neg else e)
        n = pair_add(pair_mul(b, q), pair_mul((FOUR * x, ZERO), pair_mul(c, d)))
        return dy * over_d2(x, pair_mul(es, n) if neg else n, pair_mul(q, q))
    if x < -MISH_XSIGMOID and x > -LOW_TAIL_END:
        return dy * low_tail_grad(x)
    e = M.exp(-abs(x))
    if x >= ZERO:
        dp = TWO * e * (ONE + e) + ONE
        return dy * (ONE - xmul(ONE - TWO * x * (ONE + e) / dp, TWO * e * e / dp))
    dn = e * (e + TWO) + TWO
    q = FOUR * (ONE + x) + e * ((SIX + FOUR * x) + e * (FOUR + e))
    return dy * (xmul(q, e) / (dn * dn))  # 0 at -inf


def tanh_fwd(x, p, a):
    return M.tanh(x)


def tanh_bwd(dy, x, p, a):  # sech^2 = 4e / (1 + e)^2, e = exp(-2|x|): accurate in the tails
    e = M.exp(-TWO * abs(x))
    q = ONE + e
    return dy * (FOUR * e / (q * q))


def hard_tanh_fwd(x, p, a):
    return clip(x, p[0], p[1])


def hard_tanh_bwd(dy, x, p, a):
    return dy * (ONE if x > p[0] and x < p[1] else ZERO)


def tanh_shrink_fwd(x, p, a):
    if abs(x) < TANH_SHRINK_SERIES_END:
        x2 = x * x
        acc = TS8
        acc = acc * x2 + TS7
        acc = acc * x2 + TS6
        acc = acc * x2 + TS5
        acc = acc * x2 + TS4
        acc = acc * x2 + TS3
        acc = acc * x2 + TS2
        acc = acc * x2 + TS1
        acc = acc * x2 + TS0
        return acc * x2 * x
    return x - M.tanh(x)


def tanh_shrink_bwd(dy, x, p, a):
    t = M.tanh(x)
    return dy * (t * t)


def soft_shrink_fwd(x, p, a):
    t = p[0]
    if x > t:
        return x - t
    if x < -t:
        return x + t
    return ZERO


def soft_shrink_bwd(dy, x, p, a):
    return dy * (ONE if abs(x) > p[0] else ZERO)


def hard_shrink_fwd(x, p, a):
    return x if abs(x) > p[0] else ZERO


def hard_shrink_bwd(dy, x, p, a):
    return dy * (ONE if abs(x) > p[0] else ZERO)


def threshold_fwd(x, p, a):
    return x if x > p[0] else p[1]


def threshold_bwd(dy, x, p, a):
    return dy * (ONE if x > p[0] else ZERO)


def sparse_plus_fwd(x, p, a):
    if x <= -ONE:
        return ZERO
    if x >= ONE:
        return x
    return QUARTER * (x + ONE) * (x + ONE)


def sparse_plus_bwd(dy, x, p, a):
    return dy * (HALF * (clip(x, -ONE, ONE) + ONE))


def sparse_sigmoid_fwd(x, p, a):
    return HALF * (clip(x, -ONE, ONE) + ONE)


def sparse_sigmoid_bwd(dy, x, p, a):
    return dy * (HALF if x > -ONE and x < ONE else ZERO)


def squareplus_fwd(x, p, a):
    b = p[0]
    h = M.hypot(x, M.sqrt(b))  # no overflow of x^2
    if x == INF:
        return x
    if x >= ZERO:
        return x + HALF * (h - x)  # the mean of x and h, without x + h (overflow near the largest float)
    q = h - x  # b / 2(h - x): no cancellation; near the largest float h - x overflows: halves then
    return (b * HALF) / q if q < INF else (b * QUARTER) / (HALF * h - HALF * x)


def squareplus_bwd(dy, x, p, a):  # (1 + x/h) / 2
    b = p[0]
    if x == INF:
        return dy
    h = M.hypot(x, M.sqrt(b))
    if h == ZERO:  # x = 0 with b = 0: the kink of relu, 1/2 by the docs
        return dy * HALF
    if x >= ZERO:
        return dy * (HALF * (ONE + x / h))
    q = h - x  # (h + x) / 2h = b / 2h(h - x) without cancellation; halves where h - x overflows
    return dy * ((b / (TWO * h)) / q if q < INF else (b / (FOUR * h)) / (HALF * h - HALF * x))


def exponential_fwd(x, p, a):
    return M.exp(x)


def exponential_bwd(dy, y, p, a):
    return dy * y


def linear_fwd(x, p, a):
    return x


def linear_bwd(dy, x, p, a):
    return dy


def log1mexp_fwd(x, p, a):  # Maechler 2012
    if x < LN2:
        return M.log(-M.expm1(-x))
    return M.log1p(-M.exp(-x))


def log1mexp_bwd(dy, x, p, a):
    if x < ZERO:  # outside the domain, as the forward
        return NAN
    if x == ZERO:  # +inf at -0.0 too (expm1(-0.0) is -0.0)
        return dy * INF
    if x > (CT(80.0) if FLOAT32 else CT(700.0)):  # expm1 would overflow: exp(-x), subnormal
        return dy * M.exp(-x)
    return dy / M.expm1(x)


def lisht_fwd(x, p, a):
    return x * M.tanh(x)


def lisht_bwd(dy, x, p, a):  # tanh(x) + x sech(x)^2, sech^2 = 4e / (1 + e)^2, e = exp(-2|x|)
    x = clip(x, -CLIP, CLIP)
    e = M.exp(-TWO * abs(x))
    return dy * (M.tanh(x) + x * (TWO + TWO) * e / ((ONE + e) * (ONE + e)))


def snake_fwd(x, p, a):
    if M.isinf(x):  # the limit: x dominates the bounded sin^2
        return x
    s = M.sin(p[0] * x)
    return x + s * s / p[0]


def snake_bwd(dy, x, p, a):
    # 1 + sin(2fx) = 2 sin^2(fx + pi/4) = (sin fx + cos fx)^2 (see functors.cuh Snake)
    fx = p[0] * x
    if abs(fx) < ONE:
        s = M.sin((fx + PI4_HI) + PI4_LO)
        return dy * (TWO * s * s)
    t = M.sin(fx) + M.cos(fx)
    return dy * (t * t)


# -------------------------------------------------------------------- gated
# p = (limit, offset, the unit's own parameter) as in kernels/functors.cuh: the gate half clamped
# above at limit, the linear half to [-limit, limit] and offset (functors.cuh Clamped); the
# derivative through a clamp passes where its input lies inside, bounds included, else 0.
def clamp_gate(g, p):
    return p[0] if g > p[0] else g


def clamp_linear(u, p):
    v = p[0] if u > p[0] else (-p[0] if u < -p[0] else u)
    return v if p[1] == ZERO else v + p[1]  # no add at 0: -0 + 0 would be +0


def linear_passes(u, p):
    return u <= p[0] and u >= -p[0]


def glu_fwd(a, b, p):  # a sigmoid(alpha b), alpha = p[2]; the gate is b
    return clamp_linear(a, p) * sig2(p[2] * clamp_gate(b, p))[0]


def glu_bwd(dy, a, b, p):
    u = clamp_linear(a, p)
    s, c = sig2(p[2] * clamp_gate(b, p))
    da = dy * s if linear_passes(a, p) else ZERO
    db = dy * u * s * c * p[2] if b <= p[0] else ZERO
    return da, db


def swish(a, p):  # a sigmoid(alpha a), silu(a) at alpha = 1
    if p[2] == ONE:
        return silu_fwd(a, p, ZERO)
    return xmul(a, sig2(p[2] * a)[0])


def swiglu_fwd(a, b, p):
    return swish(clamp_gate(a, p), p) * clamp_linear(b, p)


def swiglu_bwd(dy, a, b, p):  # d/da [a sigmoid(alpha a)] = silu'(alpha a)
    g = clamp_gate(a, p)
    da = silu_bwd(dy * clamp_linear(b, p), p[2] * g, p, ZERO) if a <= p[0] else ZERO
    db = dy * swish(g, p) if linear_passes(b, p) else ZERO
    return da, db


def geglu_fwd(a, b, p):  # approximate = p[2]
    q = (p[2], ZERO, ZERO)
    return gelu_fwd(clamp_gate(a, p), q, ZERO) * clamp_linear(b, p)


def geglu_bwd(dy, a, b, p):
    q = (p[2], ZERO, ZERO)
    g = clamp_gate(a, p)
    da = gelu_bwd(dy * clamp_linear(b, p), g, q, ZERO) if a <= p[0] else ZERO
    db = dy * gelu_fwd(g, q, ZERO) if linear_passes(b, p) else ZERO
    return da, db


def reglu_fwd(a, b, p):
    g = clamp_gate(a, p)
    return (g if g > ZERO else ZERO) * clamp_linear(b, p)


def reglu_bwd(dy, a, b, p):
    g, u = clamp_gate(a, p), clamp_linear(b, p)
    if g > ZERO:
        da, db = dy * u, dy * g
    else:
        da, db = dy * u * ZERO, dy * ZERO
    return (da if a <= p[0] else ZERO), (db if linear_passes(b, p) else ZERO)


# --------------------------------------------------------------- the tables
ELEMENTWISE: tuple[str, ...] = tuple(REGISTRY.names(Kind.ELEMENTWISE))
GATED: tuple[str, ...] = tuple(REGISTRY.names(Kind.GATED))
_HELPERS = ("fast_two_sum", "two_sum", "two_prod", "pair_add", "pair_add_ordered", "pair_mul", "pair_quotient", "horner_step",
            "exp_neg_split", "gelu_grad32", "logistic_parts", "over_d2", "clip", "sig2", "leaky", "counter_hash", "fp8_encode", "rrelu_slope", "xmul", "low_tail_grad", "clamp_gate",
            "clamp_linear", "linear_passes", "swish")

_cache: dict[str, _pytypes.SimpleNamespace] = {}
_lock = threading.Lock()


def device(fn, target: str = "cuda"):
    """``cuda.jit(device=True)``, force-inlined at the NVVM level on the real target.

    ``target="cpu"``: ``numba.njit`` of the same function, with which the
    exhaustive 16-bit tests run the kernels' own code at all 65,536 inputs
    (the simulator takes seconds per thousand elements).
    """
    if target == "cpu":
        return numba.njit(fn)
    if SIMULATOR:
        return cuda.jit(device=True)(fn)
    return cuda.jit(device=True, forceinline=True)(fn)


def functions(ct, target: str = "cuda") -> _pytypes.SimpleNamespace:
    """The device functions for compute type ``ct`` (numba.float32 or numba.float64).

    Returns a namespace with ``fwd[name]``, ``bwd[name]`` for every
    elementwise and gated entry, ``rrelu_slope``, the typed constants and
    ``CT``.  Built once per type and target (``cuda``, or ``cpu``: see :func:`device`).
    """
    key = f"{ct}:{target}"
    got = _cache.get(key)
    if got is not None:
        return got
    with _lock:
        got = _cache.get(key)
        if got is None:
            got = _cache[key] = _clone(ct, target)
    return got


def _clone(ct, target: str = "cuda") -> _pytypes.SimpleNamespace:
    scope = dict(globals())  # cuda, M, U64, ... and every function below, replaced next
    if target == "cpu":
        scope["M"] = math  # compiled by numba.njit: IEEE results, no exceptions
    scope.update({k: np.dtype(str(ct)).type(v) for k, v in _CONSTANTS.items()})
    scope["PI4_LO"] = np.dtype(str(ct)).type(_PI4_LO[str(ct)])
    scope["CT"] = ct
    scope["FLOAT32"] = str(ct) == "float32"
    scope["fma"] = device(_cuda_fma, target) if target == "cuda" and not SIMULATOR else _wide_fma
    if target == "cpu":  # (the float64 clone never calls it)
        scope["fma"] = numba.njit(_wide_fma32 if str(ct) == "float32" else fma)
    names = [f"{n}_{d}" for n in ELEMENTWISE + GATED for d in ("fwd", "bwd")] + list(_HELPERS)
    for name in names:
        fn = globals().get(name)
        if fn is None:
            raise NotImplementedError(f"the numba backend has no device function {name}() for this catalogue entry")
        copy = _pytypes.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
        copy.__qualname__ = f"{fn.__qualname__}_{ct}"
        scope[name] = device(copy, target)
    ns = _pytypes.SimpleNamespace(**{k: scope[k] for k in _CONSTANTS})
    ns.CT = ct
    ns.fwd = {n: scope[f"{n}_fwd"] for n in ELEMENTWISE + GATED}
    ns.bwd = {n: scope[f"{n}_bwd"] for n in ELEMENTWISE + GATED}
    ns.rrelu_slope = scope["rrelu_slope"]
    ns.counter_hash = scope["counter_hash"]
    ns.fp8_encode = scope["fp8_encode"]
    return ns
