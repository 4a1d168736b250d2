"""Measured accuracy of every activation against an mpmath reference.

    from activations.tools import accuracy
    results = accuracy.measure_all(dtypes=["float32"])
    print(accuracy.markdown(results))
    accuracy.violations(results)          # [] when every bound in BOUNDS holds

Each activation is evaluated on a dense sweep of inputs exactly representable
in the dtype (every binade from the smallest subnormal to the largest finite
value, a fine grid over [-20, 20] and a coarse one over [-800, 800], kinks and
their float neighbours, random points) and compared with the exact value, computed in 128-bit mpmath
arithmetic from the formulas of docs/semantics.md with the float parameters
rounded to the compute precision (as the kernels receive them).  Per
activation, dtype and direction:

* ``ulp``: max ``|got - exact| / ulp(exact)``, the ulp taken in the dtype's
  own format.  A correctly rounded result is within 0.5.  Exact results below
  the normal range count in units of the smallest normal, so flushing them
  to zero is within 1.
* ``cond`` (conditioned): the error in units of the larger of ulp(exact)
  and the change of the exact value when x moves by half an ulp either way,
  i.e. the error left after allowing for the input's own rounding.  Near a
  zero of f away from x = 0 (hard_sigmoid at -3, silu' at -1.28) or a kink
  decided in the compute precision, ``ulp`` grows without bound for any
  evaluation in that precision while ``cond`` stays small; a large ``cond``
  is an error of the evaluation itself.
* ``rel``: max ``|got - exact| / |exact|`` over exact results in the normal
  range.
* ``worst``: the input of the largest ``ulp``.

Row-wise backward results are normwise: ``dx_i = y_i (dy_i - sum_j dy_j y_j)``
cancels elementwise, so the error of a row is taken relative to the
magnitude of its terms (all three metrics).  Gated activations sweep the
gated half and multiply by a few fixed values in the other half.

A NaN or infinite exact value must be met exactly (else the error is
infinite); a finite exact value at or beyond the dtype's overflow threshold
may come out as the infinity it rounds to.

``python -m activations accuracy`` runs it; docs/accuracy.md holds the
measured table and :data:`BOUNDS` the documented bounds.
"""
from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .. import _dtypes
from ..catalogue import REGISTRY
from ..registry import Kind

__all__ = [
    "Variant",
    "Result",
    "VARIANTS",
    "BOUNDS",
    "DTYPE_NAMES",
    "variant",
    "sweep",
    "measure",
    "measure_all",
    "violations",
    "suggest_bounds",
    "format_bounds",
    "markdown",
    "to_json",
    "from_json",
]

#: working precision of the reference, in bits (float64 needs 53)
PREC = 128

DTYPE_NAMES: tuple[str, ...] = tuple(
    n for n in ("float16", "bfloat16", "float32", "float64") if n != "bfloat16" or _dtypes.BFLOAT16 is not None
)
DIRECTIONS = ("forward", "backward")
DENSITIES = ("full", "quick", "smoke")


# ------------------------------------------------------------ variants
@dataclass(frozen=True)
class Variant:
    """An activation with fixed parameters (defaults unless given)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        return self.name + "(" + ", ".join(f"{k}={v!r}" for k, v in self.params) + ")"

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


# threshold() has no defaults; the tanh forms of the GELU family are measured too
_EXTRA_PARAMS = {"threshold": (("threshold", 0.5), ("value", -2.0))}
VARIANTS: tuple[Variant, ...] = tuple(Variant(r.name, _EXTRA_PARAMS.get(r.name, ())) for r in REGISTRY) + (
    Variant("gelu", (("approximate", "tanh"),)),
    Variant("geglu", (("approximate", "tanh"),)),
    Variant("entmax", (("alpha", 1.1),)),  # near softmax: errors grow like 1 / (alpha - 1)
    Variant("entmax", (("alpha", 1.25),)),
    # the clamped, offset and sloped gated units (GPT-OSS's swiglu and the same clamp on the others)
    Variant("glu", (("alpha", 1.702), ("limit", 7.0), ("offset", 1.0))),
    Variant("swiglu", (("alpha", 1.702), ("limit", 7.0), ("offset", 1.0))),
    Variant("geglu", (("limit", 7.0), ("offset", 1.0))),
    Variant("reglu", (("limit", 7.0), ("offset", 1.0))),
)


def variant(v: Variant | str) -> Variant:
    """A Variant from itself, its label, or an activation name (default parameters)."""
    if isinstance(v, Variant):
        return v
    for var in VARIANTS:
        if var.label == v:
            return var
    name = REGISTRY.get(v).name
    return Variant(name, _EXTRA_PARAMS.get(name, ()))


# ------------------------------------------------------------- dtypes
def _finfo(dt: np.dtype):
    if _dtypes.BFLOAT16 is not None and dt == _dtypes.BFLOAT16:
        import ml_dtypes

        return ml_dtypes.finfo(dt)
    return np.finfo(dt)


def _cast(values, dt: np.dtype) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values, np.float64).astype(dt)


def _ulp(v: np.ndarray, dt: np.dtype) -> np.ndarray:
    """Spacing of ``dt`` at |v|; the smallest normal below the normal range; top binade above max."""
    fi = _finfo(dt)
    with np.errstate(invalid="ignore"):
        _, e = np.frexp(np.abs(np.where(np.isfinite(v), v, 0.0)))
    binade = np.minimum(e.astype(np.int64) - 1, int(fi.maxexp) - 1)
    spacing = np.ldexp(1.0, binade - int(fi.nmant))
    return np.where(np.abs(v) < float(fi.tiny), float(fi.tiny), spacing)


def _overflow_threshold(dt: np.dtype) -> float:
    if dt == np.float64:
        return math.inf
    top = float(_finfo(dt).max)
    return top + float(_ulp(np.array([top]), dt)[0]) / 2


# -------------------------------------------------------------- sweep
# Inputs where a function changes branch or formula, or an implementation
# commonly does (overflow/underflow of exp in each precision); each is swept
# with its two neighbours on each side in the dtype.
_EXP_EDGES = tuple(
    s * v for v in (88.72283935546875, 87.33654475, 103.97207708, 709.782712893384, 708.3964185322641, 745.1332191019411) for s in (1, -1)
)
_KINKS: dict[str, tuple[float, ...]] = {
    "relu6": (6.0,),
    "elu": (-20.0, -40.0),
    "selu": (-20.0, -40.0),
    "celu": (-20.0, -40.0),
    "gelu": (-0.7517916, -5.0, -8.0, -10.0, -13.0, -20.0, -26.5, -38.5),
    "sigmoid": (15.0, -15.0, 17.0, 36.7, -36.7) + _EXP_EDGES,
    "hard_sigmoid": (-3.0, 3.0),
    "log_sigmoid": (15.0, -15.0, 36.7, -36.7) + _EXP_EDGES,
    "softplus": (15.0, -15.0, 20.0, 36.7, -36.7) + _EXP_EDGES,
    "silu": (-1.2784645, 15.0, -15.0) + _EXP_EDGES,
    "hard_silu": (-3.0, 3.0, -1.5),
    "mish": (-1.1924, 15.0, -15.0, 20.0) + _EXP_EDGES,
    "tanh": (0.55, 0.625, 9.01, 19.06, -9.01, -19.06),
    "tanh_shrink": (0.25, -0.25, 0.55, 0.625, 1e-4, -1e-4, 9.01, 19.06),
    "threshold": (0.5,),
    "squareplus": (2.0, -2.0, 1.8e19, -1.8e19, 1.3e154, -1.3e154),
    "exponential": (11.089866488461016,) + _EXP_EDGES,
    "log1mexp": (0.6931471805599453, 1e-8, 1e-30, 40.0, 745.0),
    "lisht": (0.55, 9.01, 19.06),
    "snake": (math.pi / 2, -math.pi / 2, math.pi, -math.pi, -math.pi / 4),
    "glu": (15.0, -15.0) + _EXP_EDGES,
    "swiglu": (-1.2784645, 15.0, -15.0) + _EXP_EDGES,
    "geglu": (-0.7517916, -5.0, -8.0, -13.0, -26.5, -38.5),
}
_COMMON_KINKS = (0.0, 1.0, -1.0, 3.0, -3.0, 0.5, -0.5)

#: density -> (grids, binade step, mantissas, random points per half).  The grids cover
#: [-20, 20] finely and [-800, 800] (where exp overflows and underflows) coarsely.
_DENSITY = {
    "full": ((np.arange(-2000, 2001) / 100.0, np.arange(-1600, 1601) / 2.0), 1, (1.0, 1.375, 1.75), 2000),
    "quick": ((np.arange(-200, 201) / 10.0, np.arange(-1600, 1601, 10) / 2.0), 4, (1.375,), 200),
    "smoke": ((np.arange(-40, 41) / 2.0, np.arange(-1600, 1601, 40) / 2.0), 16, (1.375,), 40),
}


def _seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def sweep(dtype: str, name: str = "", density: str = "full") -> np.ndarray:
    """Sorted distinct finite float64 inputs, each exactly representable in ``dtype``.

    Each density is a subset of the denser ones ("smoke" of "quick" of "full"),
    so a sparser measurement never exceeds a denser one.
    """
    if density not in _DENSITY:
        raise ValueError(f"density must be one of {DENSITIES}, got {density!r}")
    grids, binade_step, mants, n_rand = _DENSITY[density]
    dt = _dtypes.from_name(dtype)
    fi = _finfo(dt)
    exps = np.arange(int(fi.minexp) - int(fi.nmant), int(fi.maxexp))[::binade_step]
    mag = np.concatenate([np.ldexp(m, exps) for m in mants])
    parts = [*grids, mag, -mag, np.array([float(fi.max), -float(fi.max), float(fi.tiny), -float(fi.tiny)])]
    canonical = REGISTRY.get(name).name if name else ""
    k = _cast(_COMMON_KINKS + _KINKS.get(canonical, ()), dt)
    k = k[np.isfinite(k)]
    near = [k]
    for direction in (np.inf, -np.inf):
        step = k
        for _ in range(2):
            step = np.nextafter(step, np.asarray(direction, dt))
            near.append(step)
    parts.append(np.concatenate(near).astype(np.float64))
    # drawn at full size, used in part: the sparser random points are a prefix
    rng = np.random.default_rng(_seed("sweep", dt.name))
    full = _DENSITY["full"][3]
    uniform = rng.uniform(-40.0, 40.0, full)
    logmag = np.exp2(rng.uniform(np.log2(float(fi.tiny)), np.log2(float(fi.max)), full))
    signs = rng.choice([-1.0, 1.0], full)
    parts += [uniform[:n_rand], (signs * logmag)[:n_rand]]
    x = _cast(np.concatenate(parts), dt).astype(np.float64)
    return np.unique(x[np.isfinite(x)])


# ---------------------------------------------------------- reference
def _mp():
    import mpmath

    return mpmath


def _elementwise_refs() -> dict[str, tuple[Callable, Callable]]:
    """name -> (f(x, q), f'(x, q)) in mpmath; x a finite mpf, q the parameters as mpf."""
    mp = _mp()
    mpf = mp.mpf
    zero, one, half, two, three, six = mpf(0), mpf(1), mpf(0.5), mpf(2), mpf(3), mpf(6)

    def sig(x):
        return one / (one + mp.exp(-x))

    def sigc(x):  # 1 - sigmoid(x) without cancellation
        return one / (one + mp.exp(x))

    def sech2(x):
        return one / mp.cosh(x) ** 2

    def step(cond):
        return one if cond else zero

    def clip(v, lo, hi):
        return min(max(v, lo), hi)

    def _hs(q):  # hard_sigmoid's offset/slope, 1/slope and (1 - offset)/slope, in compute precision
        t = np.dtype(q["compute_dtype"]).type
        k, o = t(float(q["slope"])), t(float(q["offset"]))
        return mpf(float(o / k)), mpf(float(t(1) / k)), mpf(float((t(1) - o) / k))

    def relu(x, q):
        m, t = q["max_value"], q["threshold"]
        if x > t:
            return x if m is None else clip(x, zero, m)
        return q["negative_slope"] * (x - t)

    def drelu(x, q):
        m = q["max_value"]
        if x > q["threshold"]:
            return one if m is None else step(zero < x < m)
        return q["negative_slope"]

    sqrt2, sqrt2pi, sqrtpi = mp.sqrt(two), mp.sqrt(2 * mp.pi), mp.sqrt(mp.pi)

    def half_erfc(z):
        """erfc(z) / 2; mpmath's erfc overflows for huge z, where its asymptote is exact enough."""
        if z > 1e10:
            return mp.exp(-z * z) / (z * sqrtpi) / 2
        return mp.erfc(z) / 2

    k0, k1 = mp.sqrt(2 / mp.pi), mpf("0.044715")

    def gelu(x, q):
        if q["approximate"] == "none":
            return x * half_erfc(-x / sqrt2)
        return x * sig(2 * k0 * (x + k1 * x**3))  # 0.5 x (1 + tanh u) without cancellation

    def dgelu(x, q):
        if q["approximate"] == "none":
            return half_erfc(-x / sqrt2) + x * mp.exp(-x * x / 2) / sqrt2pi
        u = k0 * (x + k1 * x**3)
        return sig(2 * u) + half * x * sech2(u) * k0 * (one + 3 * k1 * x * x)

    def softplus(x, q):
        b, t = q["beta"], q["threshold"]
        if t is not None and b * x > t:
            return x
        return mp.log1p(mp.exp(b * x)) / b

    def dsoftplus(x, q):
        b, t = q["beta"], q["threshold"]
        if t is not None and b * x > t:
            return one
        return sig(b * x)

    def tanh_shrink(x, q):
        if abs(x) < mpf(2) ** -10:  # x - tanh x cancels: its series
            x2 = x * x
            c = (mpf(1) / 3, mpf(-2) / 15, mpf(17) / 315, mpf(-62) / 2835, mpf(1382) / 155925)
            return x * x2 * (c[0] + x2 * (c[1] + x2 * (c[2] + x2 * (c[3] + x2 * c[4]))))
        return x - mp.tanh(x)

    def squareplus(x, q):
        b = q["b"]
        h = mp.sqrt(x * x + b)
        return (x + h) / 2 if x >= 0 else b / (2 * (h - x))

    def dsquareplus(x, q):
        b = q["b"]
        h = mp.sqrt(x * x + b)
        if h == 0:
            return half
        return (one + x / h) / 2 if x >= 0 else b / (2 * h * (h - x))

    ln2 = mp.log(two)

    def log1mexp(x, q):
        if x < 0:
            return mp.nan
        if x == 0:
            return mp.ninf
        return mp.log(-mp.expm1(-x)) if x < ln2 else mp.log1p(-mp.exp(-x))

    def dlog1mexp(x, q):
        if x < 0:
            return mp.nan
        return mp.inf if x == 0 else one / mp.expm1(x)

    def mish(x, q):
        return x * mp.tanh(mp.log1p(mp.exp(x)))

    def dmish(x, q):
        sp = mp.log1p(mp.exp(x))
        return mp.tanh(sp) + x * sig(x) * sech2(sp)

    a_selu, s_selu = mpf("1.6732632423543772848170429916717"), mpf("1.0507009873554804934193349852946")

    def rrelu_slope(q):  # eval mode: the midpoint
        return (q["lower"] + q["upper"]) / 2

    return {
        "relu": (relu, drelu),
        "relu6": (lambda x, q: clip(x, zero, six), lambda x, q: step(zero < x < six)),
        "leaky_relu": (
            lambda x, q: x if x > 0 else q["negative_slope"] * x,
            lambda x, q: one if x > 0 else q["negative_slope"],
        ),
        "prelu": (lambda x, q: x if x > 0 else q["weight"] * x, lambda x, q: one if x > 0 else q["weight"]),
        "rrelu": (lambda x, q: x if x > 0 else rrelu_slope(q) * x, lambda x, q: one if x > 0 else rrelu_slope(q)),
        "elu": (
            lambda x, q: x if x > 0 else q["alpha"] * mp.expm1(x),
            lambda x, q: one if x > 0 else q["alpha"] * mp.exp(x),
        ),
        "selu": (
            lambda x, q: s_selu * (x if x > 0 else a_selu * mp.expm1(x)),
            lambda x, q: s_selu * (one if x > 0 else a_selu * mp.exp(x)),
        ),
        "celu": (
            lambda x, q: x if x > 0 else q["alpha"] * mp.expm1(x / q["alpha"]),
            lambda x, q: one if x > 0 else mp.exp(x / q["alpha"]),
        ),
        "gelu": (gelu, dgelu),
        "sigmoid": (lambda x, q: sig(x), lambda x, q: sig(x) * sigc(x)),
        "hard_sigmoid": (  # (x + offset/slope) / (1/slope), those constants rounded (docs/semantics.md)
            lambda x, q: clip((x + _hs(q)[0]) / _hs(q)[1], zero, one),
            lambda x, q: q["slope"] * step(-_hs(q)[0] < x < _hs(q)[2]),
        ),
        "log_sigmoid": (lambda x, q: -mp.log1p(mp.exp(-x)), lambda x, q: sigc(x)),
        "softplus": (softplus, dsoftplus),
        "softsign": (lambda x, q: x / (one + abs(x)), lambda x, q: one / (one + abs(x)) ** 2),
        "silu": (lambda x, q: x * sig(x), lambda x, q: sig(x) + x * sig(x) * sigc(x)),
        "hard_silu": (
            lambda x, q: x * clip(x / six + half, zero, one),
            lambda x, q: zero if x <= -three else (one if x >= three else (2 * x + three) / six),
        ),
        "mish": (mish, dmish),
        "tanh": (lambda x, q: mp.tanh(x), lambda x, q: sech2(x)),
        "hard_tanh": (
            lambda x, q: clip(x, q["min_val"], q["max_val"]),
            lambda x, q: step(q["min_val"] < x < q["max_val"]),
        ),
        "tanh_shrink": (tanh_shrink, lambda x, q: mp.tanh(x) ** 2),
        "soft_shrink": (
            lambda x, q: x - q["threshold"] if x > q["threshold"] else (x + q["threshold"] if x < -q["threshold"] else zero),
            lambda x, q: step(abs(x) > q["threshold"]),
        ),
        "hard_shrink": (
            lambda x, q: x if abs(x) > q["threshold"] else zero,
            lambda x, q: step(abs(x) > q["threshold"]),
        ),
        "threshold": (
            lambda x, q: x if x > q["threshold"] else q["value"],
            lambda x, q: step(x > q["threshold"]),
        ),
        "sparse_plus": (
            lambda x, q: zero if x <= -one else (x if x >= one else (x + one) ** 2 / 4),
            lambda x, q: zero if x <= -one else (one if x >= one else (x + one) / 2),
        ),
        "sparse_sigmoid": (
            lambda x, q: zero if x <= -one else (one if x >= one else (x + one) / 2),
            lambda x, q: half * step(-one < x < one),
        ),
        "squareplus": (squareplus, dsquareplus),
        "exponential": (lambda x, q: mp.exp(x), lambda x, q: mp.exp(x)),
        "linear": (lambda x, q: x, lambda x, q: one),
        "log1mexp": (log1mexp, dlog1mexp),
        "lisht": (lambda x, q: x * mp.tanh(x), lambda x, q: mp.tanh(x) + x * sech2(x)),
        "snake": (
            lambda x, q: x + mp.sin(q["frequency"] * x) ** 2 / q["frequency"],
            # 1 + sin(2fx) = (sin fx + cos fx)^2: 1 + sin cancels to nothing near its zeros even at
            # 128 bits, sin + cos loses only the digits of the distance to the zero
            lambda x, q: (mp.sin(q["frequency"] * x) + mp.cos(q["frequency"] * x)) ** 2,
        ),
    }


class _Reference:
    """Exact values of one elementwise function f and its derivative at float64 points, cached.

    ``order`` 0 is f, 1 is f'.  ``spread`` is how far the value moves when x
    moves by half an ulp of the dtype either way: the uncertainty the input's
    own rounding implies, and the allowance of the conditioned metric.
    """

    def __init__(self, name: str, params: dict[str, Any], cdtype: np.dtype, slope: float = 1.0, divide: bool = False):
        """``slope`` a != 1 makes the function f(a x) (divided by a when ``divide``: swiglu's
        x sigmoid(a x) = silu(a x) / a), a rounded to the compute precision as the kernels get it."""
        mp = _mp()
        self.key = (name, tuple(sorted((k, repr(v)) for k, v in params.items())), cdtype.name)
        self.fns = _refs()[name]
        if slope != 1.0:
            a = mp.mpf(float(np.asarray(slope, cdtype)))
            f, df = self.fns
            self.fns = (
                (lambda x, q: f(a * x, q) / a, lambda x, q: df(a * x, q))
                if divide
                else (lambda x, q: f(a * x, q), lambda x, q: a * df(a * x, q))
            )
            self.key += (("slope", float(a), divide),)
        self.q = {}
        for k, v in params.items():
            if isinstance(v, float):  # the kernels receive compute-precision parameters
                v = mp.mpf(float(np.asarray(v, cdtype)))
            self.q[k] = v
        self.q["compute_dtype"] = cdtype  # for constants the kernels derive in that precision

    def values(self, xs: Sequence[float], order: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(hi, lo): scale * g(x) as double-doubles (hi alone when not finite in float64)."""
        return self._eval(xs, order, scale, 0.0)

    def spread(self, xs: Sequence[float], order: int, dt: np.dtype, scale: float = 1.0) -> np.ndarray:
        """max |g(x (1 +- u)) - g(x)| * |scale|, u the unit roundoff of ``dt``."""
        u = float(_finfo(dt).eps) / 2
        mid, _ = self._eval(xs, order, scale, 0.0)
        with np.errstate(invalid="ignore", over="ignore"):
            d = [np.abs(self._eval(xs, order, scale, shift)[0] - mid) for shift in (u, -u)]
        return np.nan_to_num(np.maximum(*d), nan=0.0)

    def spreader(self, xs: Sequence[float], order: int, dt: np.dtype, scale: float = 1.0) -> Callable:
        """``spread`` as a function of indices into ``xs`` (evaluated on demand)."""
        return lambda idx: self.spread([xs[i] for i in idx], order, dt, scale)

    def _eval(self, xs, order, scale, rel_shift) -> tuple[np.ndarray, np.ndarray]:
        mp = _mp()
        fn = self.fns[order]
        his = np.empty(len(xs))
        los = np.empty(len(xs))
        with mp.workprec(PREC):
            shift = 1 + mp.mpf(rel_shift)
            for i, x in enumerate(xs):
                ck = (self.key, order, rel_shift, x)
                v = _CACHE.get(ck)
                if v is None:
                    v = _CACHE[ck] = fn(mp.mpf(x) * shift if rel_shift else mp.mpf(x), self.q)
                his[i], los[i] = _split(v * scale if scale != 1.0 else v)
        return his, los


_REFS: dict[str, tuple[Callable, Callable]] | None = None
#: (function key, order, relative shift, x) -> exact value (mpf)
_CACHE: dict[tuple, Any] = {}


def _refs() -> dict[str, tuple[Callable, Callable]]:
    global _REFS
    if _REFS is None:
        _REFS = _elementwise_refs()
    return _REFS


def _split(v) -> tuple[float, float]:
    """An mpf as a double-double (hi, lo); (hi, 0) when hi is not finite."""
    hi = float(v)
    if not math.isfinite(hi):
        return hi, 0.0
    return hi, float(v - hi)


# ------------------------------------------------------------ metrics
@dataclass
class _Errors:
    ulp: np.ndarray
    cond: np.ndarray
    rel: np.ndarray


def _errors(got, hi, lo, dt: np.dtype, spread: Callable | None = None, scale=None) -> _Errors:
    """Errors of ``got`` (float64 values of dt results) against the exact ``hi + lo``.

    ``spread(indices)``: the conditioned metric's allowance at those points
    (see ``_Reference.spread``), asked only where the ulp error exceeds 1:
    elsewhere ``cond`` is taken equal to ``ulp`` (it can only be smaller).
    ``scale``: normwise magnitude (replaces |exact| in all three metrics).
    """
    fi = _finfo(dt)
    g = np.asarray(got, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs((g - hi) - lo)
        mag = np.abs(hi) if scale is None else np.asarray(scale, np.float64)
        unit = _ulp(mag, dt)
        ulp = diff / unit
        cond = ulp.copy()
        rel = np.where(mag != 0, diff / mag, np.where(diff == 0, 0.0, np.inf))
        e_nan, g_nan = np.isnan(hi), np.isnan(g)
        e_inf, g_inf = np.isinf(hi), np.isinf(g)
        finite = ~(e_nan | g_nan | e_inf | g_inf)
        overflow = ~e_nan & ~e_inf & g_inf & (np.sign(g) == np.sign(hi)) & (np.abs(hi) >= _overflow_threshold(dt))
        met = (e_nan & g_nan) | (e_inf & (g == hi)) | overflow
    if spread is not None:
        idx = np.flatnonzero(finite & (ulp > 1.0))
        if idx.size:
            cond[idx] = diff[idx] / np.maximum(unit[idx], spread(idx))
    special = np.where(met, 0.0, np.inf)
    normal = mag >= float(fi.tiny)
    return _Errors(
        ulp=np.where(finite, ulp, special),
        cond=np.where(finite, cond, special),
        rel=np.where(finite, np.where(normal, rel, 0.0), special),
    )


def _combine(*errs: _Errors) -> _Errors:
    return _Errors(*(np.maximum.reduce([getattr(e, f) for e in errs]) for f in ("ulp", "cond", "rel")))


@dataclass
class Result:
    """Max errors of one (variant, dtype, direction) over its sweep."""

    variant: str
    dtype: str
    direction: str
    ulp: float
    cond: float
    rel: float
    worst: str  # the input of the largest ulp error
    points: int
    backend: str = "numpy"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _summarize(var: Variant, dtype: str, direction: str, e: _Errors, inputs: Sequence[str], backend: str) -> Result:
    ulp = e.ulp.reshape(-1)
    if ulp.size == 0:
        return Result(var.label, dtype, direction, 0.0, 0.0, 0.0, "-", 0, backend)
    k = int(np.argmax(ulp))
    return Result(
        var.label, dtype, direction, float(ulp[k]), float(e.cond.max()), float(e.rel.max()), inputs[k], int(ulp.size), backend
    )


# ------------------------------------------------------------- devices
def _device(backend: str | None):
    """(to_device, to_host) for the arrays of ``backend``."""
    if backend in (None, "numpy"):
        return np.asarray, np.asarray
    if backend == "cupy":
        import cupy

        return cupy.asarray, cupy.asnumpy
    if backend == "numba":
        from numba import cuda

        return cuda.to_device, lambda a: a.copy_to_host()
    raise ValueError(f"accuracy is measured on the numpy, cupy or numba backend, not {backend!r}")


def _call(backend: str | None, fn, name: str, *arrays, **kwargs) -> np.ndarray:
    to_dev, to_host = _device(backend)
    out = fn(name, *(to_dev(a) for a in arrays), backend=backend, **kwargs)
    if isinstance(out, tuple):
        out = out[0]  # prelu's grad: (dx, dweight)
    return np.asarray(to_host(out)).astype(np.float64)


# ------------------------------------------------------------- measure
def measure(variant_: Variant | str, dtype: str, direction: str = "forward", *, density: str = "full", backend: str | None = None) -> Result:
    """Max ulp, conditioned-ulp and relative error of one variant in one dtype and direction."""
    var = variant(variant_)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    dt = _dtypes.from_name(dtype)
    rec = REGISTRY.get(var.name)
    params = dict(rec.bind(var.kwargs).values)
    measure_kind = {Kind.ELEMENTWISE: _elementwise, Kind.GATED: _gated, Kind.ROWWISE: _rowwise}[rec.kind]
    return measure_kind(var, rec, params, dt, direction, density, backend)


#: derivatives the spec leaves open outside the function's domain (log1mexp is NaN below 0, and
#: its backward may give NaN or 1/expm1(x) there): not measured
_DERIVATIVE_DOMAIN: dict[str, Callable[[np.ndarray], np.ndarray]] = {"log1mexp": lambda x: x >= 0}


def _elementwise(var, rec, params, dt, direction, density, backend) -> Result:
    from .. import apply, grad

    ref = _Reference(rec.name, params, _dtypes.compute_dtype(dt))
    xs = sweep(dt.name, rec.name, density)
    if direction == "backward" and rec.name in _DERIVATIVE_DOMAIN:
        xs = xs[_DERIVATIVE_DOMAIN[rec.name](xs)]
    x = xs.astype(dt)
    order = 0 if direction == "forward" else 1
    if order == 0:
        got = _call(backend, apply, rec.name, x, **var.kwargs)
    else:
        got = _call(backend, grad, rec.name, x, np.ones_like(x), **var.kwargs)
    points = xs.tolist()
    e = _errors(got, *ref.values(points, order), dt, spread=lambda i: ref.spread(xs[i].tolist(), order, dt))
    return _summarize(var, dt.name, direction, e, [repr(v) for v in points], backend or "numpy")


# gated: one half swept like an elementwise input, the other half from these (exact in every dtype)
_MULTIPLIERS = (1.0, -2.5, 0.75, 3.0, -0.0625)
#: gated name -> (elementwise activation of the gate, which half is the gate)
_GATE = {"glu": ("sigmoid", 1), "swiglu": ("silu", 0), "geglu": ("gelu", 0), "reglu": ("relu", 0)}


#: linear-half values beyond the clamp of the clamped variants (limit 7), cut to +-7
_CLAMPED_MULTIPLIERS = (9.0, -12.0)


def _gated(var, rec, params, dt, direction, density, backend) -> Result:
    from .. import apply, grad

    act, gate_half = _GATE[rec.name]
    act_params = dict(REGISTRY.get(act).bind({"approximate": params["approximate"]} if act == "gelu" else {}).values)
    cdt = _dtypes.compute_dtype(dt)
    ref = _Reference(act, act_params, cdt, params.get("alpha", 1.0), divide=rec.name == "swiglu")
    gs = sweep(dt.name, rec.name, density)
    # the clamp (docs/semantics.md): gate g -> min(g, limit), linear u -> clip(u, -limit, limit) +
    # offset, the derivative 0 where the clamp cuts; limit and offset in the compute precision
    limit = params.get("limit")
    lim = np.inf if limit is None else float(np.asarray(limit, cdt))
    offset = float(np.asarray(params.get("offset", 0.0), cdt))
    multipliers = _MULTIPLIERS
    if limit is not None:
        edge = _cast(np.array([lim]), dt)
        gs = np.unique(np.concatenate([gs, edge, np.nextafter(edge, np.asarray(np.inf, dt)).astype(np.float64)]))
        multipliers = _MULTIPLIERS + _CLAMPED_MULTIPLIERS
    ms = np.resize(np.array(multipliers), gs.size)
    halves = (gs, ms) if gate_half == 0 else (ms, gs)
    x = np.stack(halves, axis=-1).astype(dt)  # (N, 2): a | b along the last axis
    inputs = [f"a={a!r}, b={b!r}" for a, b in zip(halves[0].tolist(), halves[1].tolist())]
    e_parts = []
    for mul in multipliers:  # one multiplier at a time: it scales the cached exact values
        sel = np.flatnonzero(ms == mul)
        g = gs[sel]
        pts = np.minimum(g, lim).tolist()
        u = min(max(mul, -lim), lim) + offset
        if direction == "forward":
            exact = ref.values(pts, 0, u)
            e_parts.append((sel, [(0, exact, ref.spreader(pts, 0, dt, u))]))
        else:
            # d gate = u f'(g), d other = f(g) (dy = 1); zero where the clamp cuts
            d_gate = (gate_half, *_cut(g > lim, ref.values(pts, 1, u), ref.spreader(pts, 1, dt, u)))
            d_other = (1 - gate_half, *_cut(np.full(g.size, abs(mul) > lim), ref.values(pts, 0), ref.spreader(pts, 0, dt)))
            e_parts.append((sel, [d_gate, d_other]))
    if direction == "forward":
        got = _call(backend, apply, rec.name, x, **var.kwargs)
    else:
        got = _call(backend, grad, rec.name, x, np.ones((gs.size, 1), dt), **var.kwargs)
    ulp, cond, rel = (np.zeros(gs.size) for _ in range(3))
    for sel, cols in e_parts:
        e = _combine(*(_errors(got[sel, col], *exact, dt, spread=spread) for col, exact, spread in cols))
        ulp[sel], cond[sel], rel[sel] = e.ulp, e.cond, e.rel
    return _summarize(var, dt.name, direction, _Errors(ulp, cond, rel), inputs, backend or "numpy")


def _cut(cut: np.ndarray, exact: tuple[np.ndarray, np.ndarray], spread: Callable) -> tuple[tuple, Callable]:
    """Exact values and spread with the entries where a clamp cuts set to an exact 0."""
    hi, lo = (np.where(cut, 0.0, v) for v in exact)
    return (hi, lo), lambda idx: np.where(cut[idx], 0.0, spread(idx))


def _rows(dt: np.dtype, density: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Row-wise inputs and cotangents: (R, n) float64 arrays exactly representable in dt.

    Drawn at full size and used in part, so a sparser density is a subset of a denser one.
    """
    rng = np.random.default_rng(_seed("rows", dt.name))
    reps = {"full": 4, "quick": 2, "smoke": 1}[density]
    blocks = [rng.standard_normal((4, n)) * s for n in (1, 2, 5, 33, 128) for s in (0.1, 1.0, 10.0, 100.0, 1000.0)]
    blocks = [b[:reps] for b in blocks] + [
        np.full((1, 7), 3.0),  # constant row: uniform output
        np.array([[60000.0, 0.0, -60000.0, 1.0]]),  # huge spread (float16 max is 65504)
        np.array([[-1e4, -1e4 - 8, -1e4 - 16, -1e4 + 4]]),  # large common offset
        np.array([[1e-6, -1e-6, 0.0, 2e-6]]),
    ]
    dy_rng = np.random.default_rng(_seed("dy", dt.name))
    dys = [dy_rng.standard_normal((4, b.shape[1]))[: b.shape[0]] for b in blocks]
    return [(_cast(b, dt).astype(np.float64), _cast(d, dt).astype(np.float64)) for b, d in zip(blocks, dys)]


def _entmax_exact(z: list, dy: list[float] | None, alpha: float, mp):
    """alpha-entmax of one finite row: tau of sum max(a z' - tau, 0)^(1/a) = 1 (z' = z - max) from
    float64 brentq, refined by Newton's steps at the working precision; dx as _row_exact."""
    from scipy.optimize import brentq

    a = mp.mpf(alpha) - 1
    top = max(z)
    zs = [a * (v - top) for v in z]
    f64 = [float(v) for v in zs]
    n = len(zs)
    inv = 1 / a

    def excess64(t):
        return sum(max(v - t, 0.0) ** (1.0 / float(a)) for v in f64) - 1.0

    hi = -(1.0 / n) ** float(a)
    tau = mp.mpf(hi if excess64(hi) >= 0 else brentq(excess64, -1.0, hi, xtol=1e-300, rtol=1e-15))
    for _ in range(8):  # f(tau) = sum (zs - tau)^(1/a) - 1, f' = -(1/a) sum (zs - tau)^(1/a - 1)
        on = [v - tau for v in zs if v > tau]
        f = sum(w**inv for w in on) - 1
        df = -inv * sum(w ** (inv - 1) for w in on)
        if df == 0:
            break
        tau -= f / df
    y = [max(v - tau, mp.mpf(0)) ** inv if v > tau else mp.mpf(0) for v in zs]
    if dy is None:
        return y
    d = [mp.mpf(v) for v in dy]
    g = [yi ** (2 - mp.mpf(alpha)) if yi > 0 else mp.mpf(0) for yi in y]
    sg = sum(g)
    mean = sum(gi * di for gi, di in zip(g, d)) / sg
    mabs = sum(abs(gi * di) for gi, di in zip(g, d)) / sg
    return [gi * (di - mean) for gi, di in zip(g, d)], max(gi * (abs(di) + mabs) for gi, di in zip(g, d))


def _row_exact(name: str, row: list[float], dy: list[float] | None, mp, alpha: float = 1.5):
    """Exact y of one row, or (dx, term magnitude) for the cotangent dy; mpf lists."""
    z = [mp.mpf(v) for v in row]
    if name == "entmax":
        return _entmax_exact(z, dy, alpha, mp)
    if name == "softmin":
        z = [-v for v in z]
    if name == "entmax15":
        top = max(z)
        u = [(v - top) / 2 for v in z]
        s1, s2, tau = mp.mpf(0), mp.mpf(0), mp.mpf(-1)
        for i, v in enumerate(sorted(u, reverse=True), 1):  # the sorted closed form, exactly
            if not mp.isfinite(v):
                break
            s1, s2 = s1 + v, s2 + v * v
            mean = s1 / i
            t = mean - mp.sqrt(max((1 - i * (s2 / i - mean * mean)) / i, mp.mpf(0)))
            if t <= v:
                tau = t
        g = [max(v - tau, mp.mpf(0)) for v in u]
        if dy is None:
            return [gi * gi for gi in g]
        d = [mp.mpf(v) for v in dy]
        sg = sum(g)
        mean = sum(gi * di for gi, di in zip(g, d)) / sg
        mabs = sum(abs(gi * di) for gi, di in zip(g, d)) / sg
        return [gi * (di - mean) for gi, di in zip(g, d)], max(gi * (abs(di) + mabs) for gi, di in zip(g, d))
    if name == "sparsemax":
        srt = sorted(z, reverse=True)
        csum, tau_sum, k = mp.mpf(0), mp.mpf(0), 0
        for i, v in enumerate(srt, 1):
            csum += v
            if 1 + i * v > csum:
                k, tau_sum = i, csum
        tau = (tau_sum - 1) / k
        y = [max(v - tau, mp.mpf(0)) for v in z]
        if dy is None:
            return y
        supp = [v > 0 for v in y]
        d = [mp.mpf(v) for v in dy]
        mean = sum(di for di, s in zip(d, supp) if s) / sum(supp)
        mabs = sum(abs(di) for di, s in zip(d, supp) if s) / sum(supp)
        return [di - mean if s else mp.mpf(0) for di, s in zip(d, supp)], max(abs(di) + mabs for di in d)
    m = max(z)
    e = [mp.exp(v - m) for v in z]
    total = sum(e)
    if name == "log_softmax":
        if dy is None:
            # log(total) as log1p of the terms other than the max's own exp(0) = 1: total - 1 is
            # exact in mpmath, its log at the working precision is not when the rest is tiny
            top = z.index(m)
            lt = mp.log1p(sum(ei for i, ei in enumerate(e) if i != top)) if mp.isfinite(m) else mp.log(total)
            return [v - m - lt for v in z]
        d = [mp.mpf(v) for v in dy]
        sdy, sabs = sum(d), sum(abs(v) for v in d)
        return [di - ei / total * sdy for di, ei in zip(d, e)], max(abs(di) + ei / total * sabs for di, ei in zip(d, e))
    y = [ei / total for ei in e]
    if dy is None:
        return y
    d = [mp.mpf(v) for v in dy]
    dot = sum(di * yi for di, yi in zip(d, y))
    dabs = sum(abs(di * yi) for di, yi in zip(d, y))
    dx = [yi * (di - dot) for di, yi in zip(d, y)]
    if name == "softmin":
        dx = [-v for v in dx]
    return dx, max(yi * (abs(di) + dabs) for di, yi in zip(d, y))


def _rowwise(var, rec, params, dt, direction, density, backend) -> Result:
    from .. import apply, grad

    mp = _mp()
    errs, inputs = [], []
    kw = var.kwargs
    # entmax: alpha as the kernels receive it (compute precision)
    alpha = float(np.float64(params["alpha"]).astype(_dtypes.compute_dtype(dt))) if "alpha" in params else 1.5
    for rows, dy in _rows(dt, density):
        if direction == "forward":
            got = _call(backend, apply, rec.name, rows.astype(dt), **kw)
        else:
            got = _call(backend, grad, rec.name, rows.astype(dt), dy.astype(dt), **kw)
        for r in range(rows.shape[0]):
            with mp.workprec(PREC):
                if direction == "forward":
                    pairs = [_split(v) for v in _row_exact(rec.name, rows[r].tolist(), None, mp, alpha)]
                    scale = None
                else:
                    dx, terms = _row_exact(rec.name, rows[r].tolist(), dy[r].astype(np.float64).tolist(), mp,
                                           alpha)
                    pairs = [_split(v) for v in dx]
                    scale = np.full(len(pairs), float(terms))
            hi, lo = np.array(pairs).T
            errs.append(_errors(got[r], hi, lo, dt, scale=scale))
            inputs += [f"row of {rows.shape[1]}, max|x| = {np.max(np.abs(rows[r])):.4g}"] * hi.size
    e = _Errors(*(np.concatenate([getattr(x, f) for x in errs]) for f in ("ulp", "cond", "rel")))
    return _summarize(var, dt.name, direction, e, inputs, backend or "numpy")


def measure_all(
    variants: Iterable[Variant | str] | None = None,
    dtypes: Iterable[str] | None = None,
    directions: Iterable[str] = DIRECTIONS,
    *,
    density: str = "full",
    backend: str | None = None,
    progress: Callable[[Result], None] | None = None,
) -> list[Result]:
    """:func:`measure` over variants x dtypes x directions."""
    results = []
    for v in VARIANTS if variants is None else variants:
        for dtype in DTYPE_NAMES if dtypes is None else dtypes:
            for direction in directions:
                res = measure(v, dtype, direction, density=density, backend=backend)
                results.append(res)
                if progress is not None:
                    progress(res)
    return results


# -------------------------------------------------------------- bounds
def _round_up(v: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 5, 7 times a power of ten that is >= v."""
    if v <= 0 or not math.isfinite(v):
        return v
    p = 10.0 ** math.floor(math.log10(v))
    for m in (1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0):
        if m * p >= v * (1 - 1e-12):
            return m * p
    return 10 * p  # pragma: no cover


Bounds = dict[str, dict[str, dict[str, tuple[float, float, float]]]]


def suggest_bounds(results: Iterable[Result]) -> Bounds:
    """Bounds (ulp, cond, rel) covering every result given, with room for other CPUs' libm paths.

    An exact result (0) stays exact; an error of m ulps gets max(1.5 m, m + 1) and a relative
    error r gets 1.5 r plus a unit roundoff, rounded up to a round number; infinite stays
    infinite (no bound).  Where the ulp error is ten times the conditioned one, it comes from an
    ill-conditioned point (a zero of f, a kink) whose value depends on rounding details (SIMD
    body or scalar tail, another libm): ulp and rel get ten times more room there.  Several
    results for one key (two paths, two machines) take the max.
    """
    out: Bounds = {}
    for r in results:
        u = float(_finfo(_dtypes.from_name(r.dtype)).eps) / 2
        room = 10.0 if r.ulp > 10 * r.cond else 1.0

        def ulps(m: float, room: float = 1.0) -> float:
            return m if m == 0 or not math.isfinite(m) else _round_up(room * max(1.5 * m, m + 1.0))

        rel = r.rel if r.rel == 0 or not math.isfinite(r.rel) else _round_up(room * (1.5 * r.rel + u))
        new = (ulps(r.ulp, room), ulps(r.cond), rel)
        slot = out.setdefault(r.variant, {}).setdefault(r.dtype, {})
        old = slot.get(r.direction, new)
        slot[r.direction] = tuple(max(a, b) for a, b in zip(old, new))  # type: ignore[assignment]
    return out


def format_bounds(bounds: Bounds) -> str:
    """The text table :data:`BOUNDS` is read from (one line per variant and dtype)."""
    lines = []
    for variant, by_dtype in bounds.items():
        for dtype, by_dir in by_dtype.items():
            nums = " ".join(f"{v:<7g}" for d in DIRECTIONS for v in by_dir[d])
            lines.append(f"{variant:38s} {dtype:9s} {nums}".rstrip())
    return "\n".join(lines)


def _parse_bounds(text: str) -> Bounds:
    out: Bounds = {}
    for line in text.strip().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        *label, dtype, f1, f2, f3, b1, b2, b3 = line.split()
        out.setdefault(" ".join(label), {})[dtype] = {
            "forward": (float(f1), float(f2), float(f3)),
            "backward": (float(b1), float(b2), float(b3)),
        }
    return out


def from_json(text: str) -> list[Result]:
    return [Result(**d) for d in json.loads(text)]


def violations(results: Iterable[Result], bounds: Bounds | None = None) -> list[str]:
    """Every result above its bound in :data:`BOUNDS` (or without one), as text."""
    table = BOUNDS if bounds is None else bounds
    bad = []
    for r in results:
        b = table.get(r.variant, {}).get(r.dtype, {}).get(r.direction)
        if b is None:
            bad.append(f"{r.variant} {r.dtype} {r.direction}: no documented bound")
            continue
        if not (r.ulp <= b[0] and r.cond <= b[1] and r.rel <= b[2]):
            bad.append(
                f"{r.variant} {r.dtype} {r.direction} [{r.backend}]: {r.ulp:.4g} ulp (bound {b[0]:g}), "
                f"{r.cond:.4g} cond. ulp (bound {b[1]:g}), rel {r.rel:.3g} (bound {b[2]:g}); worst at {r.worst}"
            )
    return bad


# ------------------------------------------------------------- report
def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return "inf"
    if v < 0.01:
        return "<0.01"
    if v < 10:
        return f"{v:.2f}"
    if v < 1e4:
        return f"{v:.0f}"
    return f"{v:.0e}".replace("e+0", "e").replace("e+", "e")


def markdown(results: Iterable[Result], dtypes: Sequence[str] | None = None) -> str:
    """Per direction, a table of ``ulp / cond`` and one of ``rel``, variants x dtypes."""
    results = list(results)
    dtypes = list(dtypes or [d for d in DTYPE_NAMES if any(r.dtype == d for r in results)])
    by = {(r.variant, r.dtype, r.direction): r for r in results}
    variants = list(dict.fromkeys(r.variant for r in results))
    lines: list[str] = []
    for direction in DIRECTIONS:
        if not any(r.direction == direction for r in results):
            continue
        lines += [
            f"### {direction}: max error in ulps / conditioned ulps; max relative error",
            "",
            "| activation | " + " | ".join(dtypes) + " | " + " | ".join(f"rel {d}" for d in dtypes) + " |",
            "|---|" + "--:|" * (2 * len(dtypes)),
        ]
        for v in variants:
            cells, rels = [], []
            for d in dtypes:
                r = by.get((v, d, direction))
                cells.append("—" if r is None else f"{_fmt(r.ulp)} / {_fmt(r.cond)}")
                rels.append("—" if r is None else ("0" if r.rel == 0 else f"{r.rel:.1e}"))
            lines.append(f"| `{v}` | " + " | ".join(cells + rels) + " |")
        lines.append("")
    return "\n".join(lines)


def to_json(results: Iterable[Result]) -> str:
    return json.dumps([r.as_dict() for r in results], indent=1)



#: {variant label: {dtype: {direction: (ulp, cond, rel)}}}
#: the documented bounds: accuracy_bounds.txt beside this module (a data file of the package)
BOUNDS: Bounds = _parse_bounds(Path(__file__).with_name("accuracy_bounds.txt").read_text())
