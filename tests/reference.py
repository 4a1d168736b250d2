"""The tests' oracle: every activation in float64, written from docs/semantics.md.

Independent of the package's backends: only the catalogue records (data) are
used, to validate parameters and fill in defaults.  Every backend (NumPy,
the CUDA kernels run through the CPU harness, the Numba simulator) is tested
against this module:

    expected = reference.forward("gelu", x)            # x in the kernel's dtype
    reference.assert_close(got, expected, x.dtype, what="gelu forward")

``forward``/``backward`` evaluate on the input exactly as the kernel sees it
(the float64 value of the already rounded input), with float parameters
rounded to the compute precision (float32 for 16-bit and float32 inputs) like
the kernel arguments.  They return :class:`Expected`: a float64 array that
also carries, per element,

* ``slack``: the extra absolute error a correct compute-precision evaluation
  of the *documented* formula may make where that formula cancels (e.g.
  ``x - tanh(x)`` near 0, ``1 - y**2`` for tanh's backward from y, row sums);
* ``alt``/``has_alt``: a second accepted value where the result legitimately
  depends on rounding (a branch condition computed in compute precision, such
  as hard_sigmoid's ``0 < slope*x + offset < 1``, or a parameter that is not
  representable in the compute precision) or where the spec leaves a value
  open;
* ``inputs``: the inputs, so that failures can print them.

The float64 values themselves are accurate to a few float64 ulps (stable
formulas, mpmath where float64 closed forms lose accuracy); the test suite
checks them against mpmath.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable

import mpmath
import numpy as np
from scipy import special

from activations.catalogue import REGISTRY
from activations.registry import Kind

try:
    import ml_dtypes

    BFLOAT16: np.dtype | None = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes is a test dependency
    ml_dtypes = None
    BFLOAT16 = None

__all__ = [
    "DTYPES",
    "TOLERANCES",
    "Expected",
    "forward",
    "backward",
    "edge_values",
    "kinks",
    "assert_close",
    "dbias",
    "rrelu_slopes",
    "hash_uniform",
    "dtype_name",
    "as_dtype",
    "compute_dtype",
    "cast",
    "finfo",
]

F64 = np.dtype(np.float64)
F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)

#: every dtype the package supports, narrowest first
DTYPES: tuple[np.dtype, ...] = tuple(d for d in (F16, BFLOAT16, F32, F64) if d is not None)

# Constants written out here, not imported from the package (the suite checks
# that the catalogue carries the same digits).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_K0 = math.sqrt(2.0 / math.pi)
GELU_K1 = 0.044715
LN2 = math.log(2.0)

#: (rtol, atol) per kernel dtype, for forward and backward values.  rtol is one
#: ulp of the storage type for 16-bit types (the result is rounded once from
#: float32) and a few ulps of the compute type otherwise.  atol is one subnormal
#: step for float16; for the others it sits far below any value that matters
#: (so far tails such as gelu(-6) = -5.9e-9 are still checked) but above what
#: an exp() overflowing in compute precision flushes to 0 (silu(-89) = -2.6e-37
#: in float32, silu(-710) = -1.6e-306 in float64).
TOLERANCES: dict[str, tuple[float, float]] = {
    "float16": (2.0**-10, 2.0**-24),
    "bfloat16": (2.0**-7, 1e-30),
    "float32": (2e-6, 1e-30),
    "float64": (1e-13, 1e-290),
}

#: per-activation overrides: {name: {dtype name: (rtol, atol)}}.  Empty: the
#: formula slack (see ``Expected``) covers every documented cancellation.
TOLERANCE_OVERRIDES: dict[str, dict[str, tuple[float, float]]] = {}

#: how many compute-precision ulps of the formula's term magnitudes a correct
#: evaluation may lose (the slack is SLACK_ULPS * eps * magnitude)
SLACK_ULPS = 8.0


# ------------------------------------------------------------------ dtypes
def as_dtype(dtype: Any) -> np.dtype:
    """'float16', 'bfloat16', np.float32, ... -> np.dtype."""
    if isinstance(dtype, str) and dtype == "bfloat16":
        if BFLOAT16 is None:  # pragma: no cover
            raise TypeError("bfloat16 needs ml_dtypes")
        return BFLOAT16
    return np.dtype(dtype)


def dtype_name(dtype: Any) -> str:
    return as_dtype(dtype).name


def compute_dtype(dtype: Any) -> np.dtype:
    """The precision a kernel computes in for inputs of ``dtype``."""
    return F64 if as_dtype(dtype) == F64 else F32


def finfo(dtype: Any):
    dt = as_dtype(dtype)
    if BFLOAT16 is not None and dt == BFLOAT16:
        return ml_dtypes.finfo(dt)
    return np.finfo(dt)


def cast(values: Any, dtype: Any) -> np.ndarray:
    """``values`` rounded to ``dtype`` (overflow to inf is intended, not warned)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values, dtype=F64).astype(as_dtype(dtype))


def _to64(a: Any) -> np.ndarray:
    return np.asarray(a).astype(F64)


def _input_dtype(x: np.ndarray) -> np.dtype:
    if x.dtype in DTYPES:
        return x.dtype
    return F64  # lists, Python scalars (and anything else) are evaluated as float64


def _round(value: Any, cdt: np.dtype) -> Any:
    """A scalar float parameter as the kernel receives it (compute precision)."""
    if isinstance(value, float):
        return float(np.asarray(value, dtype=cdt))
    return value


# --------------------------------------------------------------- Expected
class Expected(np.ndarray):
    """float64 expected values plus per-element allowances (see the module doc).

    Attributes are dropped by any operation that creates a new array, so a
    derived array is compared strictly.
    """

    name: str = ""
    dtype_in: np.dtype = F64
    slack: np.ndarray | None = None
    alt: np.ndarray | None = None
    has_alt: np.ndarray | None = None
    inputs: dict[str, np.ndarray] | None = None

    def __array_finalize__(self, obj: Any) -> None:
        self.name = ""
        self.dtype_in = F64
        self.slack = None
        self.alt = None
        self.has_alt = None
        self.inputs = None


def _expected(values, name, dtype, *, slack=None, alt=None, has_alt=None, inputs=None) -> Expected:
    out = np.array(values, dtype=F64).view(Expected)
    out.name = name
    out.dtype_in = as_dtype(dtype)
    shape = out.shape
    if slack is not None:
        slack = np.broadcast_to(np.nan_to_num(np.abs(np.asarray(slack, F64)), nan=0.0, posinf=0.0), shape).copy()
    out.slack = slack
    if has_alt is not None and np.any(has_alt):
        out.alt = np.broadcast_to(np.asarray(alt, F64), shape).copy()
        out.has_alt = np.broadcast_to(np.asarray(has_alt, bool), shape).copy()
    if inputs:
        out.inputs = {k: np.broadcast_to(np.asarray(v, F64), shape) for k, v in inputs.items() if np.shape(v) == shape}
    return out


# ----------------------------------------------------------- comparisons
def tolerance(dtype: Any, name: str = "") -> tuple[float, float]:
    dn = dtype_name(dtype)
    return TOLERANCE_OVERRIDES.get(name, {}).get(dn, TOLERANCES[dn])


def _overflow_threshold(dt: np.dtype) -> float:
    """Finite values at or above this magnitude round to inf in ``dt``."""
    if dt == F64:
        return math.inf
    fi = finfo(dt)
    top = float(fi.max)
    return top + (top - float(np.nextafter(np.asarray(top, dt), np.asarray(0.0, dt)))) / 2


def _match(a: np.ndarray, e: np.ndarray, tol: np.ndarray, dt: np.dtype) -> np.ndarray:
    a_nan, e_nan = np.isnan(a), np.isnan(e)
    e_inf, a_inf = np.isinf(e), np.isinf(a)
    finite = ~(a_nan | e_nan | e_inf | a_inf)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = a_nan & e_nan
        ok |= e_inf & (a == e)
        ok |= finite & (np.abs(a - e) <= tol)
        # a finite expected value that rounds to inf in the kernel's dtype
        ovf = ~e_nan & ~e_inf & a_inf & (np.sign(a) == np.sign(e)) & (np.abs(e) + tol >= _overflow_threshold(dt))
    return ok | ovf


def _fmt(v: float) -> str:
    return repr(float(v))


def _host(a: Any) -> np.ndarray:
    """A NumPy copy of a host or device array (CuPy ``.get()``, Numba ``.copy_to_host()``)."""
    if hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray):
        return a.get() if hasattr(a, "get") else a.copy_to_host()
    return np.asarray(a)


def assert_close(actual: Any, expected: Any, dtype: Any, *, what: str = "") -> None:
    """Raise AssertionError listing the first mismatches of ``actual`` (a kernel's
    result in ``dtype``) against ``expected`` (an :class:`Expected`, or any float64
    array, compared without slack).  NaN must meet NaN and inf the same inf."""
    __tracebackhide__ = True
    dt = as_dtype(dtype)
    name = getattr(expected, "name", "") or ""
    label = " ".join(s for s in (name and f"[{name}]", what, f"({dt.name})") if s)
    act = _host(actual)
    e = np.asarray(expected, dtype=F64)
    if act.shape != e.shape:
        raise AssertionError(f"{label}: result has shape {act.shape}, expected {e.shape}")
    a = act.astype(F64)
    rtol, atol = tolerance(dt, name)
    slack = getattr(expected, "slack", None)
    with np.errstate(invalid="ignore", over="ignore"):
        tol = atol + rtol * np.abs(e) + (0.0 if slack is None else slack)
    ok = _match(a, e, tol, dt)
    alt = getattr(expected, "alt", None)
    has_alt = getattr(expected, "has_alt", None)
    if alt is not None and has_alt is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            tol_alt = atol + rtol * np.abs(alt) + (0.0 if slack is None else slack)
        ok |= has_alt & _match(a, alt, tol_alt, dt)
    if ok.all():
        return
    bad = np.flatnonzero(~ok.reshape(-1))
    inputs = getattr(expected, "inputs", None) or {}
    lines = [
        f"{label}: {bad.size} of {ok.size} values differ beyond tolerance "
        f"(rtol={rtol:g}, atol={atol:g}{', plus formula slack' if slack is not None else ''})"
    ]
    flat_tol = np.broadcast_to(tol, e.shape).reshape(-1)
    for k in bad[:12]:
        idx = np.unravel_index(k, e.shape) if e.ndim else ()
        ins = ", ".join(f"{n}={_fmt(v.reshape(-1)[k])}" for n, v in inputs.items())
        extra = ""
        if has_alt is not None and has_alt.reshape(-1)[k]:
            extra = f" (or {_fmt(alt.reshape(-1)[k])})"
        lines.append(
            f"  at {tuple(int(i) for i in idx)}: {ins + ': ' if ins else ''}expected {_fmt(e.reshape(-1)[k])}{extra}, "
            f"got {_fmt(a.reshape(-1)[k])} (tolerance {flat_tol[k]:.3g})"
        )
    if bad.size > 12:
        lines.append(f"  ... and {bad.size - 12} more")
    raise AssertionError("\n".join(lines))


# ------------------------------------------------------------ evaluation
class _Ctx:
    """Parameters and branch decisions of one evaluation.

    mode 0: parameters rounded to compute precision, exact decisions (the
    primary value); mode 2: parameters as given (float64); modes +1/-1:
    decisions whose computed condition lies within rounding error of its
    boundary forced true/false.
    """

    def __init__(self, mode: int, cdt: np.dtype, rounded: dict, raw: dict):
        self.mode = mode
        self.cdt = cdt
        self.eps = float(np.finfo(cdt).eps)
        self.p = raw if mode == 2 else rounded
        self.uncertain = False

    def gt(self, a, b, err):
        """``a > b`` for a computed ``a - b`` whose absolute error may reach ``err``."""
        with np.errstate(invalid="ignore"):
            exact = np.asarray(a > b)
            unc = (np.abs(a - b) <= err) & (np.asarray(err) > 0)
        if self.mode in (1, -1):
            return np.where(unc, self.mode == 1, exact)
        if np.any(unc):
            self.uncertain = True
        return exact

    def lt(self, a, b, err):
        return self.gt(b, a, err)

    def overflows(self, v):
        """Where a finite intermediate ``v`` of the documented formula is inf in compute precision."""
        with np.errstate(over="ignore", invalid="ignore"):
            return np.isinf(np.asarray(v, F64).astype(self.cdt))


def _sech2(u):
    with np.errstate(over="ignore"):
        c = np.cosh(u)
    return 1.0 / (c * c)


def _exp_neg_half_square(x):
    """exp(-x*x/2), accurate to a few ulps for every x (x*x kept in double-double)."""
    with np.errstate(over="ignore", invalid="ignore"):
        small = np.abs(x) < 1e150
        xs = np.where(small, x, 0.0)
        c = 134217729.0 * xs  # Dekker's split: x = hi + lo, hi with 26 bits
        hi = c - (c - xs)
        lo = xs - hi
        sq = xs * xs
        err = ((hi * hi - sq) + 2.0 * hi * lo) + lo * lo  # x*x = sq + err exactly
        out = np.exp(-0.5 * sq) * (1.0 - 0.5 * err)
    return np.where(small, out, np.where(np.isnan(x), np.nan, 0.0))


def _softplus1(x):
    """log(1 + exp(x)), accurate everywhere."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _mp_map(fn: Callable, x: np.ndarray, mask: np.ndarray, dps: int = 40) -> np.ndarray:
    """``fn`` in mpmath on the elements of ``x`` under ``mask`` (others NaN)."""
    out = np.full(x.shape, np.nan)
    idx = np.flatnonzero(mask)
    if idx.size:
        flat = x.reshape(-1)
        vals = np.empty(idx.size)
        with mpmath.workdps(dps):
            for j, k in enumerate(idx):
                vals[j] = float(fn(mpmath.mpf(float(flat[k]))))
        out.reshape(-1)[idx] = vals
    return out


def _lim(x, y, at_neg_inf=None, at_pos_inf=None):
    """Replace y at x = -inf/+inf by the documented limits."""
    if at_neg_inf is not None:
        y = np.where(x == -np.inf, at_neg_inf, y)
    if at_pos_inf is not None:
        y = np.where(x == np.inf, at_pos_inf, y)
    return y


# Each elementwise function returns a dict: y, d (dy/dx), and optionally
# ey/ed (term magnitudes for the slack) and d_alt (mask, values) where the
# spec leaves the derivative open.  x is the float64 input (NaN handled after).


def _f_relu(x, c):
    s, m, t = c.p["negative_slope"], c.p["max_value"], c.p["threshold"]
    on = x > t
    pos = x if m is None else np.clip(x, 0.0, m)
    with np.errstate(invalid="ignore"):
        neg = s * (x - t) if s != 0 else np.zeros_like(x)
    neg = np.where(neg == 0, 0.0, neg)  # +0.0 below the threshold
    y = np.where(on, pos, neg)
    dpos = np.ones_like(x) if m is None else ((x > 0) & (x < m)).astype(F64)
    d = np.where(on, dpos, s)
    ey = np.where(on, 0.0, abs(s) * (np.abs(x) + abs(t)))
    return dict(y=y, d=d, ey=ey)


def _f_relu6(x, c):
    return dict(y=np.clip(x, 0.0, 6.0), d=((x > 0) & (x < 6)).astype(F64))


def _slope_relu(x, a):
    with np.errstate(invalid="ignore"):
        neg = np.where(a == 0, 0.0, a * x)
    return dict(y=np.where(x > 0, x, neg), d=np.where(x > 0, 1.0, a) + np.zeros_like(x))


def _f_leaky_relu(x, c):
    return _slope_relu(x, c.p["negative_slope"])


def _prelu_weight(weight, shape) -> np.ndarray | float:
    if isinstance(weight, float):
        return weight
    w = np.asarray(weight, F64)
    if w.size == 1:
        return float(w.reshape(-1)[0])
    return np.broadcast_to(w, shape)


def _f_prelu(x, c):
    return _slope_relu(x, _prelu_weight(c.p["weight"], x.shape))


def _f_rrelu(x, c):
    lo, hi = c.p["lower"], c.p["upper"]
    if c.p["training"]:
        a = rrelu_slopes(x.shape, lo, hi, c.p["seed"])
    else:
        a = (lo + hi) / 2
    return _slope_relu(x, a)


def _f_elu(x, c):
    al = c.p["alpha"]
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.where(x > 0, x, al * np.expm1(x))
        d = np.where(x > 0, 1.0, al * np.exp(x))
    return dict(y=y, d=d)


def _f_selu(x, c):
    with np.errstate(over="ignore", invalid="ignore"):
        y = SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))
        d = SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(x))
    return dict(y=y, d=d)


def _f_celu(x, c):
    al = c.p["alpha"]
    with np.errstate(over="ignore", invalid="ignore"):
        u = x / al
        e = np.exp(u)
        y = np.where(x > 0, x, al * np.expm1(u))
        d = np.where(x > 0, 1.0, e)
        # x / alpha rounds: relative error of exp(u) is eps*|u|
        ey = np.where(x > 0, 0.0, np.abs(x) * e) if al not in (1.0, -1.0) else None
        ed = np.where(x > 0, 0.0, np.abs(u) * e) if al not in (1.0, -1.0) else None
    return dict(y=y, d=d, ey=ey, ed=ed)


def _gelu_parts(x, approximate: str, eps: float):
    """(y, d, ey, ed) of gelu."""
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if approximate == "tanh":
            u = GELU_K0 * (x + GELU_K1 * x * x * x)
            s = special.expit(2.0 * u)  # = (1 + tanh u) / 2
            sech2 = _sech2(u)
            poly = GELU_K0 * (1.0 + 3.0 * GELU_K1 * x * x)
            y = x * s
            term = np.where(sech2 == 0, 0.0, 0.5 * x * sech2 * poly)
            d = s + term
            # the documented form 0.5x(1 + tanh u) cancels for x < 0, and 1 - t^2 for large |u|:
            # a tanh one ulp short of +-1 leaves an absolute error of eps in either
            ey = np.abs(x)
            ed = 1.0 + 0.5 * np.abs(x) * poly
        else:
            # exp(-x^2/2) with x^2 in double-double: plain float64 loses eps * x^2 / 2
            g = _exp_neg_half_square(x)
            pdf = g / math.sqrt(2 * math.pi)
            # Phi(x) = erfcx(-x/sqrt2) exp(-x^2/2) / 2: erfcx varies slowly, so rounding
            # -x/sqrt2 costs only ~eps (erfc(-x/sqrt2) would lose 2 z^2 eps in the far tail)
            phi_cdf = np.where(x < -1.0, 0.5 * special.erfcx(-x / math.sqrt(2.0)) * g, special.ndtr(x))
            y = x * phi_cdf
            d = phi_cdf + np.where(pdf == 0, 0.0, x * pdf)
            # x/sqrt(2) and x*x round: relative error eps * x^2 in the tails
            ey = np.abs(y) * x * x
            ed = (phi_cdf + np.abs(x) * pdf) * (1.0 + x * x)
    y = _lim(x, y, 0.0, np.inf)
    d = _lim(x, d, 0.0, 1.0)
    return y, d, ey, ed


def _f_gelu(x, c):
    y, d, ey, ed = _gelu_parts(x, c.p["approximate"], c.eps)
    return dict(y=y, d=d, ey=ey, ed=ed)


def _f_sigmoid(x, c):
    s, r = special.expit(x), special.expit(-x)
    # backward from y: y * (1 - y), and 1 - y cancels as y -> 1
    return dict(y=s, d=s * r, ed=s)


def _f_hard_sigmoid(x, c):
    # clip((x + offset/slope) / (1/slope), 0, 1), the kinks at -offset/slope and (1 - offset)/slope
    # (docs/semantics.md), those three constants rounded to compute precision: the defaults are
    # relu6(x + 3) / 6, exactly.  The rest in exact rationals, rounded once (as float64 here).
    k, o = c.p["slope"], c.p["offset"]
    t = np.dtype(c.cdt).type
    with np.errstate(all="ignore"):
        shift, scale = Fraction(float(t(o) / t(k))), Fraction(float(t(1) / t(k)))
        lo, hi = -shift, Fraction(float((t(1) - t(o)) / t(k)))

    def one(v):
        if math.isnan(v):
            return math.nan, math.nan
        if math.isinf(v):
            return (1.0 if v > 0 else 0.0), 0.0
        t = (Fraction(v) + shift) / scale
        return float(min(max(t, Fraction(0)), Fraction(1))), (k if lo < Fraction(v) < hi else 0.0)

    flat = [one(float(v)) for v in np.asarray(x, np.float64).ravel()]
    y = np.array([a for a, _ in flat], np.float64).reshape(np.shape(x))
    d = np.array([b for _, b in flat], np.float64).reshape(np.shape(x))
    return dict(y=y, d=d, ey=np.abs(x) * k + abs(o))


def _f_log_sigmoid(x, c):
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))
    return dict(y=y, d=special.expit(-x))


def _f_softplus(x, c):
    beta, thr = c.p["beta"], c.p["threshold"]
    with np.errstate(over="ignore", invalid="ignore"):
        bx = beta * x
        tail = np.log1p(np.exp(-np.abs(bx))) / beta
        y = np.where(bx > 0, x + tail, tail)  # never overflows before the result does
        d = special.expit(bx)
    # beta * x overflowing in compute precision turns the documented form into inf
    y_alt = [((x > 0) & np.isfinite(x) & c.overflows(bx), np.inf)]
    if thr is not None:
        lin = c.gt(bx, thr, 2 * c.eps * np.abs(bx) if beta != 1.0 else 0.0)
        y = np.where(lin, x, y)
        d = np.where(lin, 1.0, d)
        y_alt = []
    ey = ed = None
    if beta != 1.0:  # beta * x rounds: relative error eps*|bx| in the exponential tail
        ey = np.abs(y) * np.abs(bx)
        ed = np.abs(d) * np.abs(bx)
    return dict(y=y, d=d, ey=ey, ed=ed, y_alt=y_alt)


def _f_softsign(x, c):
    with np.errstate(invalid="ignore"):
        y = x / (1.0 + np.abs(x))
        d = 1.0 / (1.0 + np.abs(x)) ** 2
    return dict(y=_lim(x, y, -1.0, 1.0), d=d)


def _f_silu(x, c):
    s, r = special.expit(x), special.expit(-x)
    with np.errstate(invalid="ignore"):
        y = x * s
        d = s + x * s * r
    ed = s * (1.0 + np.abs(x) * r) + np.abs(x) * s  # 1 - s cancels as s -> 1
    return dict(y=_lim(x, y, 0.0, np.inf), d=_lim(x, d, 0.0, 1.0), ed=ed)


def _f_hard_silu(x, c):
    with np.errstate(invalid="ignore"):
        y = np.where(x <= -3, 0.0, np.where(x >= 3, x, x * (x + 3.0) / 6.0))
        d = np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, (2.0 * x + 3.0) / 6.0))
    return dict(y=y, d=d, ed=(2 * np.abs(x) + 3.0) / 6.0)


def _f_mish(x, c):
    with np.errstate(over="ignore", invalid="ignore"):
        sp = _softplus1(x)
        t = np.tanh(sp)
        s = special.expit(x)
        sech2 = _sech2(sp)
        y = x * t
        d = t + np.where(sech2 == 0, 0.0, x * s * sech2)
    ed = np.abs(t) + np.abs(x) * s  # 1 - tanh(sp)^2 cancels
    return dict(y=_lim(x, y, 0.0, np.inf), d=_lim(x, d, 0.0, 1.0), ed=ed)


def _f_tanh(x, c):
    sech2 = _sech2(x)
    # backward from y: 1 - y^2 loses eps absolute
    return dict(y=np.tanh(x), d=sech2, ed=np.ones_like(x))


def _f_hard_tanh(x, c):
    lo, hi = c.p["min_val"], c.p["max_val"]
    return dict(y=np.clip(x, lo, hi), d=((x > lo) & (x < hi)).astype(F64))


def _tanh_series() -> np.ndarray:
    # tanh x = sum_n 2^2n (2^2n - 1) B_2n x^(2n-1) / (2n)!; x - tanh x drops the n = 1 term
    with mpmath.workdps(40):
        return np.array(
            [float(-(4**n) * (4**n - 1) * mpmath.bernoulli(2 * n) / mpmath.factorial(2 * n)) for n in range(2, 24)]
        )


_X_MINUS_TANH = _tanh_series()  # coefficients of x^3, x^5, ...


def _f_tanh_shrink(x, c):
    t = np.tanh(x)
    with np.errstate(invalid="ignore"):
        y = x - t  # cancels below |x| = 0.5 (at most a factor 13 there)
    small = np.abs(x) < 0.5
    if small.any():
        x2 = x * x
        acc = np.zeros_like(x)
        for coef in _X_MINUS_TANH[::-1]:
            acc = acc * x2 + coef
        y = np.where(small, acc * x2 * x, y)
    return dict(y=y, d=t * t, ey=np.abs(x))


def _f_soft_shrink(x, c):
    t = c.p["threshold"]
    with np.errstate(invalid="ignore"):
        y = np.where(x > t, x - t, np.where(x < -t, x + t, 0.0))
    return dict(y=y, d=(np.abs(x) > t).astype(F64), ey=np.where(np.abs(x) > t, np.abs(x) + t, 0.0))


def _f_hard_shrink(x, c):
    t = c.p["threshold"]
    return dict(y=np.where((x >= -t) & (x <= t), 0.0, x), d=(np.abs(x) > t).astype(F64))


def _f_threshold(x, c):
    t, v = c.p["threshold"], c.p["value"]
    return dict(y=np.where(x > t, x, v), d=(x > t).astype(F64))


def _f_sparse_plus(x, c):
    with np.errstate(invalid="ignore"):
        y = np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1.0) ** 2 / 4.0))
        d = np.where(x <= -1, 0.0, np.where(x >= 1, 1.0, (x + 1.0) / 2.0))
    return dict(y=y, d=d)


def _f_sparse_sigmoid(x, c):
    with np.errstate(invalid="ignore"):
        y = np.where(x <= -1, 0.0, np.where(x >= 1, 1.0, (x + 1.0) / 2.0))
    return dict(y=y, d=np.where((x > -1) & (x < 1), 0.5, 0.0))


def _f_squareplus(x, c):
    b = c.p["b"]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        h = np.hypot(x, math.sqrt(b))
        y = np.where(x >= 0, 0.5 * x + 0.5 * h, b / (2.0 * (h - x)))
        d = np.where(x >= 0, 0.5 * (1.0 + x / h), b / (2.0 * h) / (h - x))
        d = np.where((x == 0) & (h == 0), 0.5, d)  # b = 0: 1/2 at 0 by the spec
        ed = 0.5 * (1.0 + np.abs(x) / h)  # the documented (1 + x/h)/2 cancels for x < 0
        # the documented (x + h)/2 overflows in compute precision above max/2
        y_alt = [((x > 0) & np.isfinite(x) & c.overflows(x + h), np.inf)]
    return dict(y=_lim(x, y, 0.0, np.inf), d=_lim(x, d, 0.0, 1.0), ed=np.nan_to_num(ed, nan=0.5), y_alt=y_alt)


def _f_exponential(x, c):
    with np.errstate(over="ignore"):
        e = np.exp(x)
    # backward from y: y = exp(x) may already be inf in compute precision
    return dict(y=e, d=e, d_alt=[(np.isfinite(e) & c.overflows(e), np.inf)])


def _f_linear(x, c):
    return dict(y=x.copy(), d=np.ones_like(x))


def _f_log1mexp(x, c):
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        y = np.where(x < LN2, np.log(-np.expm1(-x)), np.log1p(-np.exp(-x)))
        y = np.where(x == 0, -np.inf, y)
        y = np.where(x < 0, np.nan, y)
        inv = 1.0 / np.expm1(x)
        d = np.where(x == 0, np.inf, inv)  # +inf at 0 (and at -0.0)
        neg = x < 0
        d = np.where(neg, np.nan, d)
    # the function is NaN for x < 0; its derivative there is NaN by the NaN
    # policy, and 1/expm1(x) (JAX's custom_jvp) is accepted too
    return dict(y=y, d=d, d_alt=[(neg, inv)])


def _f_lisht(x, c):
    t = np.tanh(x)
    sech2 = _sech2(x)
    with np.errstate(invalid="ignore"):
        y = x * t
        d = t + np.where(sech2 == 0, 0.0, x * sech2)
    ed = np.abs(t) + np.abs(x)  # 1 - tanh(x)^2 cancels
    return dict(y=y, d=_lim(x, d, -1.0, 1.0), ed=ed)


def _f_snake(x, c):
    f = c.p["frequency"]
    with np.errstate(invalid="ignore", over="ignore"):
        fx = f * x
        s, co = np.sin(fx), np.cos(fx)
        huge = np.isfinite(x) & np.isinf(fx)
        if huge.any():  # f*x beyond float64: exact product and reduction in mpmath
            s = np.where(huge, _mp_map(lambda v: mpmath.sin(mpmath.mpf(f) * v), x, huge), s)
            co = np.where(huge, _mp_map(lambda v: mpmath.cos(mpmath.mpf(f) * v), x, huge), co)
        y = np.where(np.isinf(x), x, x + s * s / f)  # +-inf: the limit
        d = 1.0 + 2.0 * s * co
        fin = np.isfinite(x)
        # f*x overflowing in compute precision makes sin() NaN (the CPU engine redoes it in double)
        y_alt = [(fin & c.overflows(fx), np.nan)]
        d_alt = [(fin & c.overflows(fx), np.nan)]
    # f*x rounds: absolute error eps*|f x| in the sine
    return dict(y=y, d=d, ey=np.abs(x) + 1.0 / abs(f), ed=1.0 + 2.0 * np.abs(fx), y_alt=y_alt, d_alt=d_alt)


_ELEMENTWISE: dict[str, Callable] = {
    "relu": _f_relu,
    "relu6": _f_relu6,
    "leaky_relu": _f_leaky_relu,
    "prelu": _f_prelu,
    "rrelu": _f_rrelu,
    "elu": _f_elu,
    "selu": _f_selu,
    "celu": _f_celu,
    "gelu": _f_gelu,
    "sigmoid": _f_sigmoid,
    "hard_sigmoid": _f_hard_sigmoid,
    "log_sigmoid": _f_log_sigmoid,
    "softplus": _f_softplus,
    "softsign": _f_softsign,
    "silu": _f_silu,
    "hard_silu": _f_hard_silu,
    "mish": _f_mish,
    "tanh": _f_tanh,
    "hard_tanh": _f_hard_tanh,
    "tanh_shrink": _f_tanh_shrink,
    "soft_shrink": _f_soft_shrink,
    "hard_shrink": _f_hard_shrink,
    "threshold": _f_threshold,
    "sparse_plus": _f_sparse_plus,
    "sparse_sigmoid": _f_sparse_sigmoid,
    "squareplus": _f_squareplus,
    "exponential": _f_exponential,
    "linear": _f_linear,
    "log1mexp": _f_log1mexp,
    "lisht": _f_lisht,
    "snake": _f_snake,
}


# -------------------------------------------------------------- rrelu hash
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def hash_uniform(seed: int, index: Any) -> np.ndarray:
    """The documented counter-based draw u(seed, i) in [0, 1) (float64, exact)."""
    i = np.asarray(index, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (i + np.uint64(1)) * _GOLDEN  # uint64 arithmetic wraps mod 2^64
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(F64) * 2.0**-24


def rrelu_slopes(shape, lower: float, upper: float, seed: int) -> np.ndarray:
    """Training-mode slopes for an input of ``shape`` (flat C-order index)."""
    n = int(np.prod(shape, dtype=np.int64))
    u = hash_uniform(seed, np.arange(n, dtype=np.uint64)).reshape(shape)
    return lower + (upper - lower) * u


# ------------------------------------------------------------ public API
def _bind(name: str, params: dict):
    rec = REGISTRY.get(name)
    return rec, dict(rec.bind(params).values)


def _prepare(x, bias, dtype_hint=None):
    xa = np.asarray(x)
    dt = _input_dtype(xa) if dtype_hint is None else dtype_hint
    if xa.dtype != dt:
        xa = xa.astype(dt)
    cdt = compute_dtype(dt)
    if bias is None:
        return _to64(xa), dt, cdt
    b = np.asarray(bias).astype(dt).astype(cdt)
    with np.errstate(over="ignore", invalid="ignore"):
        z = xa.astype(cdt) + b  # the fused add happens in compute precision
    return z.astype(F64), dt, cdt


def _rounded(values: dict, cdt: np.dtype, dt: np.dtype) -> dict:
    out = {}
    for k, v in values.items():
        if k == "weight" and not isinstance(v, float):
            out[k] = np.asarray(v).astype(dt).astype(F64)  # the interface casts it to x's dtype
        else:
            out[k] = _round(v, cdt)
    return out


def _first_alt(primary: np.ndarray, candidates: list[np.ndarray]):
    alt = np.full(primary.shape, np.nan)
    has = np.zeros(primary.shape, bool)
    for cand in candidates:
        # a parameter rounded differently moves continuous values by ~1 ulp:
        # only branch changes count as alternatives
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.abs(cand - primary) <= 1e-5 * np.abs(primary)
        same = (cand == primary) | close | (np.isnan(cand) & np.isnan(primary))
        take = ~same & ~has
        alt = np.where(take, cand, alt)
        has |= take
    return alt, has


def _eval_elementwise(rec, values: dict, x: np.ndarray, dt, cdt) -> dict:
    fn = _ELEMENTWISE[rec.name]
    rounded = _rounded(values, cdt, dt)
    ctx = _Ctx(0, cdt, rounded, values)
    with np.errstate(all="ignore"):
        res = fn(x, ctx)
        alts = []
        if ctx.uncertain:
            alts.append(fn(x, _Ctx(1, cdt, rounded, values)))
            alts.append(fn(x, _Ctx(-1, cdt, rounded, values)))
        if cdt != F64 and any(isinstance(v, float) and v != rounded[k] for k, v in values.items()):
            alts.append(fn(x, _Ctx(2, cdt, rounded, values)))
    nan = np.isnan(x)
    out = {}
    for key in ("y", "d"):
        v = np.where(nan, np.nan, np.broadcast_to(res[key], x.shape))
        alt, has = _first_alt(v, [np.where(nan, np.nan, np.broadcast_to(a[key], x.shape)) for a in alts])
        for mask, vals in res.get(key + "_alt", ()):
            mask = np.broadcast_to(mask, x.shape) & ~nan & ~has
            alt = np.where(mask, vals, alt)
            has = has | mask
        out[key] = v
        out[key + "_alt"] = (alt, has)
        e = res.get("e" + key)
        out["e" + key] = None if e is None else np.where(nan, 0.0, np.broadcast_to(e, x.shape))
    out["eps"] = float(np.finfo(cdt).eps)
    return out


def _slack(extra, eps, factor=None):
    if extra is None:
        return None
    s = SLACK_ULPS * eps * np.abs(extra)
    return s if factor is None else s * np.abs(factor)


def forward(name: str, x: Any, axis: int = -1, where: Any = None, bias: Any = None, **params) -> Expected:
    """Expected ``apply(name, x, axis=axis, where=where, bias=bias, **params)``.

    ``x`` in the kernel's dtype (lists and scalars: float64).  Float64 values
    with slack/alternatives as described in the module doc.
    """
    rec, values = _bind(name, params)
    z, dt, cdt = _prepare(x, bias)
    inputs = {"x": _to64(np.asarray(x).astype(dt))}
    if bias is not None:
        inputs["x+bias"] = z
    if rec.kind is Kind.ELEMENTWISE:
        r = _eval_elementwise(rec, values, z, dt, cdt)
        alt, has = r["y_alt"]
        return _expected(r["y"], rec.name, dt, slack=_slack(r["ey"], r["eps"]), alt=alt, has_alt=has, inputs=inputs)
    if rec.kind is Kind.GATED:
        r = _gated(rec, values, z, None, axis, dt, cdt)
        return _expected(r["y"], rec.name, dt, slack=r["sy"], inputs={"a": r["a"], "b": r["b"]})
    y, sy, _ = _rowwise(rec, z, None, axis, where, cdt, values)
    return _expected(y, rec.name, dt, slack=sy, inputs=inputs)


def backward(name: str, x: Any, dy: Any, axis: int = -1, where: Any = None, bias: Any = None, **params):
    """Expected ``dx`` of ``grad(name, x, dy, ...)`` (the gradient with respect
    to ``x + bias`` when ``bias`` is given; see :func:`dbias`).  For prelu:
    ``(dx, dweight)``, dweight shaped like the weight (0-d for a float)."""
    rec, values = _bind(name, params)
    z, dt, cdt = _prepare(x, bias)
    g = _to64(np.asarray(dy).astype(dt))
    inputs = {"x": _to64(np.asarray(x).astype(dt))}
    if bias is not None:
        inputs["x+bias"] = z
    if rec.kind is Kind.ELEMENTWISE:
        if g.shape != z.shape:
            raise ValueError(f"dy has shape {g.shape}, expected {z.shape}")
        inputs["dy"] = g
        r = _eval_elementwise(rec, values, z, dt, cdt)
        with np.errstate(invalid="ignore", over="ignore"):
            dx = g * r["d"]
            alt, has = r["d_alt"]
            alt = g * alt
        dx = np.where(np.isnan(z), np.nan, dx)
        out = _expected(dx, rec.name, dt, slack=_slack(r["ed"], r["eps"], g), alt=alt, has_alt=has, inputs=inputs)
        if rec.name == "prelu":
            return out, _dweight(values["weight"], z, g, dt, cdt)
        return out
    if rec.kind is Kind.GATED:
        r = _gated(rec, values, z, g, axis, dt, cdt)
        ax, lay = axis % z.ndim, r["layout"]
        dx = gated_join(r["da"], r["db"], ax, lay)
        sx = gated_join(r["sa"], r["sb"], ax, lay)
        has = gated_join(r["da_alt"][0], r["db_alt"][0], ax, lay)
        alt = gated_join(r["da_alt"][1], r["db_alt"][1], ax, lay)
        return _expected(dx, rec.name, dt, slack=sx, alt=alt, has_alt=has, inputs=inputs)
    if g.shape != z.shape:
        raise ValueError(f"dy has shape {g.shape}, expected {z.shape}")
    inputs["dy"] = g
    _, _, (dx, sx) = _rowwise(rec, z, g, axis, where, cdt, values)
    return _expected(dx, rec.name, dt, slack=sx, inputs=inputs)


def _reduction_slack(terms: np.ndarray, n: int, dt, cdt) -> np.ndarray:
    """Allowance of a sum of ``n`` terms accumulated in compute precision, whose
    terms may be rounded to ``dt`` first."""
    rtol, _ = tolerance(dt)
    eps = float(np.finfo(cdt).eps)
    return (rtol + (SLACK_ULPS + n) * eps) * terms


def dbias(dx: Any, dtype: Any = None) -> Expected:
    """Expected dbias from an expected dx: the sum over all but the last axis."""
    d = np.asarray(dx, F64)
    dt = as_dtype(dtype) if dtype is not None else getattr(dx, "dtype_in", F64)
    lead = tuple(range(d.ndim - 1))
    n = int(np.prod(d.shape[:-1], dtype=np.int64))
    with np.errstate(invalid="ignore", over="ignore"):
        total = d.sum(axis=lead)
        mag = np.abs(d).sum(axis=lead)
        sl = getattr(dx, "slack", None)
        if sl is not None:  # the terms' own allowances add up too
            mag = mag + sl.sum(axis=lead) / (SLACK_ULPS * float(np.finfo(compute_dtype(dt)).eps))
    return _expected(total, getattr(dx, "name", ""), dt, slack=_reduction_slack(mag, n, dt, compute_dtype(dt)))


def _dweight(weight, z, g, dt, cdt) -> Expected:
    with np.errstate(invalid="ignore", over="ignore"):
        terms = np.where(z > 0, 0.0, g * z)
    with np.errstate(invalid="ignore", over="ignore"):
        return _dweight_sum(weight, z, terms, dt, cdt)


def _dweight_sum(weight, z, terms, dt, cdt) -> Expected:
    if isinstance(weight, float):
        red: tuple[int, ...] = tuple(range(z.ndim))
        total = np.asarray(terms.sum(axis=red))
        mag = np.asarray(np.abs(terms).sum(axis=red))
        n = z.size
    else:
        w = np.asarray(weight)
        if w.size == 1:
            total = np.asarray(terms.sum()).reshape(w.shape)
            mag = np.asarray(np.abs(terms).sum()).reshape(w.shape)
            n = z.size
        else:
            red = tuple(range(z.ndim - 1))
            total = terms.sum(axis=red)
            mag = np.abs(terms).sum(axis=red)
            n = max(1, z.size // max(1, z.shape[-1]))
    return _expected(total, "prelu", dt, slack=_reduction_slack(mag, n, dt, cdt))


# ---------------------------------------------------------------- gated
def gated_split(z: np.ndarray, ax: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """The halves (a, b) of z along ax: a | b ('concat') or a = z[0::2], b = z[1::2] ('interleaved')."""
    if layout == "interleaved":
        n = z.shape[ax]
        return np.take(z, np.arange(0, n, 2), axis=ax), np.take(z, np.arange(1, n, 2), axis=ax)
    return tuple(np.split(z, 2, axis=ax))


def gated_join(a: np.ndarray, b: np.ndarray, ax: int, layout: str) -> np.ndarray:
    """The inverse of :func:`gated_split`: an array of x's shape from the two halves."""
    if layout == "interleaved":
        both = np.stack([a, b], axis=ax + 1)
        shape = list(a.shape)
        shape[ax] *= 2
        return both.reshape(shape)
    return np.concatenate([a, b], axis=ax)


def _gated(rec, values, z, g, axis, dt, cdt) -> dict:
    """y = f(gate) * linear with the gate half clamped above at limit, the linear half to
    [-limit, limit] plus offset; the derivative through a clamp is 0 where it cuts, the bounds
    included in what passes (torch.clamp).  glu's gate is b, the others' a."""
    if z.ndim == 0:
        raise ValueError("gated activations need an axis")
    ax = axis % z.ndim
    if z.shape[ax] % 2:
        raise ValueError(f"axis {axis} has odd length {z.shape[ax]}")
    a0, b0 = gated_split(z, ax, values["layout"])
    eps = float(np.finfo(cdt).eps)
    rounded = _rounded(values, cdt, dt)
    ctx = _Ctx(0, cdt, rounded, values)
    limit = np.inf if rounded["limit"] is None else rounded["limit"]
    offset, alpha = rounded["offset"], rounded.get("alpha", 1.0)
    gate0, lin0 = (b0, a0) if rec.name == "glu" else (a0, b0)
    with np.errstate(all="ignore"):
        gate = np.minimum(gate0, limit)
        lin = np.clip(lin0, -limit, limit) + offset
        gate_in, lin_in = gate0 <= limit, np.abs(lin0) <= limit
    # a and b as the unit sees them (after the clamps)
    a, b = (lin, gate) if rec.name == "glu" else (gate, lin)
    zero = np.zeros_like(a)
    with np.errstate(all="ignore"):
        if rec.name == "glu":  # y = a * s(alpha b)
            zb = alpha * b
            s, r = special.expit(zb), special.expit(-zb)
            y = a * s
            # alpha * b rounded in compute precision moves s by s (1 - s) |alpha b| eps
            ey = np.abs(a) * s * r * np.abs(zb)
            eda = s * r * np.abs(zb)
            edb = np.abs(a * alpha) * s * (1.0 + np.abs(zb))  # s * (1 - s): 1 - s cancels as s -> 1
            lead_b, tail_b = a, s * r * alpha  # db = (dy * a) * s(1-s) alpha
            lead_a = tail_a = None
        else:  # y = f(a) * b
            if rec.name == "swiglu":
                if alpha == 1.0:
                    r_ = _f_silu(a, ctx)
                    f, df, ef, edf = r_["y"], r_["d"], None, r_["ed"]
                else:  # a s(alpha a), d/da = silu'(alpha a); alpha a rounded first
                    za = alpha * a
                    r_ = _f_silu(za, ctx)
                    sa, ra = special.expit(za), special.expit(-za)
                    f = _lim(a, a * sa, 0.0 if alpha > 0 else -np.inf, np.inf if alpha > 0 else 0.0)
                    f = np.where(alpha == 0.0, a * 0.5, f)
                    df = r_["d"]
                    ef = np.abs(a) * sa * (1.0 + ra * np.abs(za))
                    edf = r_["ed"] * (1.0 + np.abs(za))
            elif rec.name == "geglu":
                f, df, ef, edf = _gelu_parts(a, ctx.p["approximate"], eps)
            else:  # reglu
                f = np.where(a > 0, a, 0.0)
                df = (a > 0).astype(F64)
                ef = edf = None
            y = f * b
            ey = zero if ef is None else np.abs(b) * ef
            eda = zero if edf is None else np.abs(b) * edf
            edb = zero if ef is None else ef
            lead_a, tail_a = b, df  # da = (dy * b) * f'(a)
            lead_b = tail_b = None
    nan = np.isnan(a0) | np.isnan(b0)
    out = {"a": a0, "b": b0, "y": np.where(nan, np.nan, y), "sy": SLACK_ULPS * eps * np.where(nan, 0.0, ey)}
    if g is None:
        return out
    pass_a, pass_b = (lin_in, gate_in) if rec.name == "glu" else (gate_in, lin_in)
    with np.errstate(invalid="ignore", over="ignore"):
        # small factors first: no intermediate overflow in float64 before the result overflows
        if rec.name == "glu":
            da = g * s
            db = (g * (s * r * alpha)) * a
        else:
            da = (g * df) * b
            db = g * f
        out["da"] = np.where(nan, np.nan, np.where(pass_a, da, 0.0))
        out["db"] = np.where(nan, np.nan, np.where(pass_b, db, 0.0))
        for key, lead, tail, passes in (("da", lead_a, tail_a, pass_a), ("db", lead_b, tail_b, pass_b)):
            # dy times the factor overflowing in compute precision before the rest multiplies in
            first = g * lead if lead is not None else None
            if first is not None:
                over = ~nan & passes & np.isfinite(g) & np.isfinite(lead) & np.isinf(first.astype(cdt))
                out[key + "_alt"] = (over, first.astype(cdt).astype(F64) * tail)
            else:
                out[key + "_alt"] = (np.zeros(a.shape, bool), zero)
    out["sa"] = SLACK_ULPS * eps * np.where(nan | ~pass_a, 0.0, np.abs(g) * eda)
    out["sb"] = SLACK_ULPS * eps * np.where(nan | ~pass_b, 0.0, np.abs(g) * edb)
    out["layout"] = values["layout"]
    return out


# -------------------------------------------------------------- rowwise
def sparsemax_row(z: np.ndarray) -> tuple[np.ndarray, float]:
    """(max(z - tau, 0), tau) for one row of finite values (Martins & Astudillo)."""
    zs = np.sort(z)[::-1]
    k = np.arange(1, zs.size + 1)
    css = np.cumsum(zs)
    support = 1.0 + k * zs > css
    kz = int(k[support][-1])
    tau = (css[kz - 1] - 1.0) / kz
    return np.maximum(z - tau, 0.0), float(tau)


def entmax15_row(z: np.ndarray) -> tuple[np.ndarray, float]:
    """(max(u - tau, 0)^2, tau), u = (z - max z) / 2, for one row of finite values: tau bracketed
    by bisection of f(t) = sum max(u - t, 0)^2 - 1 (decreasing, f(-1) >= 0 > f(0)), then solved in
    closed form on the support the bracket gives (the smaller root of a quadratic)."""
    u = (z - z.max()) / 2.0
    lo, hi = -1.0, 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if (np.maximum(u - mid, 0.0) ** 2).sum() >= 1.0:
            lo = mid
        else:
            hi = mid
    s = u[u > lo]
    # sum (s - tau)^2 = 1: k tau^2 - 2 tau sum s + (sum s^2 - 1) = 0, the root below the mean
    k, a, b = s.size, s.sum(), (s * s).sum()
    tau = (a - math.sqrt(max(a * a - k * (b - 1.0), 0.0))) / k
    return np.maximum(u - tau, 0.0) ** 2, float(tau)


def _rowwise(rec, z, g, axis, where, cdt, values=None):
    if z.ndim == 0:
        raise ValueError("row-wise activations need an axis")
    ax = axis % z.ndim
    eps = float(np.finfo(cdt).eps)
    mask = np.ones(z.shape, bool) if where is None else np.broadcast_to(np.asarray(where, bool), z.shape)
    zm = np.moveaxis(z, ax, -1)
    mm = np.moveaxis(mask, ax, -1)
    rows_z = zm.reshape(-1, zm.shape[-1]) if zm.size else np.zeros((0, zm.shape[-1]))
    rows_m = mm.reshape(-1, mm.shape[-1]) if mm.size else np.zeros((0, mm.shape[-1]), bool)
    y = np.zeros(rows_z.shape)
    sy = np.zeros(rows_z.shape)
    dx = np.zeros(rows_z.shape)
    sx = np.zeros(rows_z.shape)
    rows_g = None
    if g is not None:
        gm = np.moveaxis(g, ax, -1)
        rows_g = gm.reshape(rows_z.shape)
    name = rec.name
    values = values or {}
    temperature = float(values.get("temperature", 1.0))
    quiet = bool(values.get("quiet", False))
    for i in range(rows_z.shape[0]):
        m = rows_m[i]
        if not m.any():
            continue  # fully masked: 0 output, 0 gradient
        v = rows_z[i][m]
        n = v.size
        if name == "softmin":
            v = -v
        # quiet adds a value 0 to the row, whose output is dropped (its cotangent is 0)
        if quiet:
            v = np.append(v, 0.0)
        # NaN anywhere, +inf anywhere, or nothing but -inf: a NaN row (as torch and JAX)
        nan_row = np.isnan(v).any() or (v == np.inf).any() or (v == -np.inf).all()
        if nan_row:
            y[i][m] = np.nan
            dx[i][m] = np.nan
            continue
        if temperature != 1.0:
            # the logits z = v / T, shifted by the row max before the division (docs/semantics.md):
            # z - max z = (v - max v) / T, finite for finite v unless the spread overflows float64,
            # where v / T - max v / T is the same number; dx gets 1 / T
            top = v.max()
            with np.errstate(all="ignore"):
                d = v - top
                v = np.where(np.isfinite(d) | ~np.isfinite(v), d / temperature, v / temperature - top / temperature)
        grow = 4.0 + 2.0 * math.sqrt(n)  # accumulation error of the row sums
        gv = None if rows_g is None else rows_g[i][m]
        if gv is not None and quiet:
            gv = np.append(gv, 0.0)
        with np.errstate(all="ignore"):
            if name == "entmax" and values.get("alpha", 1.5) != 1.5:
                raise NotImplementedError("entmax's reference here is alpha = 1.5 only (tests/test_entmax.py has "
                                          "the oracle of every alpha)")
            if name in ("entmax15", "entmax"):  # entmax at its default alpha = 1.5 is entmax15
                fin = np.isfinite(v)
                out = np.zeros(n)
                out[fin], tau = entmax15_row(v[fin])
                mx = float(v[fin].max())
                w = np.sqrt(out)  # g = max(u - tau, 0)
                # u = (v - max) / 2 and tau in compute precision, eps units
                e_w = np.where(fin, (0.5 * (np.abs(v) + abs(mx)) + abs(tau) + 1.0) * grow, 0.0)
                yv = out
                syv = SLACK_ULPS * eps * (2.0 * w * e_w + out) + (SLACK_ULPS * eps * e_w) ** 2
                if gv is not None:
                    sg = float(w.sum())
                    ms = float((w * gv).sum()) / sg
                    dxv = w * (gv - ms)
                    supp = w > 0
                    err_s = eps * (grow * float(np.abs(w * gv).sum()) / sg
                                   + float((e_w * (np.abs(gv) + abs(ms)))[supp].sum()) / sg)
                    sxv = SLACK_ULPS * (eps * e_w * (np.abs(gv) + abs(ms)) + w * (eps * np.abs(gv) + err_s))
            elif name == "sparsemax":
                fin = np.isfinite(v)
                out = np.zeros(n)
                out[fin], tau = sparsemax_row(v[fin])
                supp = out > 0
                k = max(1, int(supp.sum()))
                mean_abs = float(np.abs(v[fin][supp[fin]]).sum()) / k if supp.any() else 0.0
                e_y = np.where(np.isfinite(v), np.abs(v) + abs(tau) + mean_abs + 1.0, 0.0) * grow
                yv, syv = out, SLACK_ULPS * eps * e_y * supp
                if gv is not None:
                    mk = supp.astype(F64)
                    tot = float((gv * mk).sum())
                    dxv = mk * (gv - tot / k)
                    sxv = SLACK_ULPS * eps * mk * (np.abs(gv) + grow * float(np.abs(gv * mk).sum()) / k)
            else:
                mx = v.max()
                e = np.exp(v - mx)
                s = e.sum()
                p = e / s
                dist = np.where(np.isfinite(v), np.abs(v - mx), 0.0)
                if temperature != 1.0:  # (x - max) / T: two roundings in the compute precision
                    dist = 2.0 * dist
                wmean = float((dist * p).sum())
                rel = dist + wmean + grow  # relative error of p (in eps units)
                if name == "log_softmax":
                    ls = math.log(s)
                    yv = np.where(np.isfinite(v), (v - mx) - ls, -np.inf)
                    syv = SLACK_ULPS * eps * (dist + abs(ls) + wmean + grow)
                else:
                    yv = p
                    syv = SLACK_ULPS * eps * p * rel
                if gv is not None:
                    if name == "log_softmax":
                        tot = float(gv.sum())
                        dxv = gv - p * tot
                        sxv = SLACK_ULPS * eps * (np.abs(gv) + p * (abs(tot) * (1 + np.abs(yv) + rel) + grow * np.abs(gv).sum()))
                        sxv = np.where(np.isfinite(sxv), sxv, 0.0)
                    else:
                        tot = float((gv * p).sum())
                        sgn = -1.0 if name == "softmin" else 1.0
                        dxv = sgn * p * (gv - tot)
                        mag = float(np.abs(gv * p).sum())
                        # the largest relative error of a p that reaches the sum (p = 0 adds nothing,
                        # however far below the max its logit lies)
                        rel_top = float(rel[p > 0].max())
                        sxv = SLACK_ULPS * eps * p * ((np.abs(gv) + abs(tot)) * (1 + rel) + grow * mag * (1 + rel_top))
        y[i][m] = yv[:n]
        sy[i][m] = syv[:n]
        if gv is not None:
            dx[i][m] = dxv[:n] / temperature
            sx[i][m] = sxv[:n] / temperature

    def back(a):
        return np.moveaxis(a.reshape(zm.shape), -1, ax)

    if g is None:
        return back(y), back(sy), None
    return back(y), back(sy), (back(dx), back(sx))


# ------------------------------------------------------------ edge values
def _neighbours(values) -> list[float]:
    """Each value rounded to every dtype, with its float neighbours there."""
    out: list[float] = []
    for v in values:
        v = float(v)
        out.append(v)
        if not math.isfinite(v):
            continue
        for dt in DTYPES:
            r = cast(v, dt)
            if not np.isfinite(r):
                continue
            up = np.nextafter(r, np.asarray(np.inf, dt))
            down = np.nextafter(r, np.asarray(-np.inf, dt))
            out += [float(r), float(up), float(down)]
    return out


def kinks(name: str, **params) -> list[float]:
    """Inputs where this activation (or its derivative) changes branch or
    where implementations commonly switch formulas (overflow points included)."""
    rec, p = _bind(name, params)
    n = rec.name
    k: list[float] = [0.0]
    # where exp overflows / underflows: float32, float64, and float16's 11.09
    exp_points = [
        88.72283935546875, -87.33654475, -103.97207708,
        709.782712893384, -708.3964185322641, -745.1332191019411, 11.089866488461016,
    ]
    if n == "relu":
        k += [p["threshold"]] + ([p["max_value"]] if p["max_value"] is not None else [])
    elif n == "relu6":
        k += [6.0]
    elif n in ("elu", "selu", "celu"):
        k += [-1.0, -20.0, -40.0] + ([] if n != "celu" else [40.0 * p["alpha"], -40.0 * p["alpha"]])
    elif n == "gelu":
        k += [-0.7517916, -3.0, -5.0, -6.0, -8.0, -10.0, -13.0, -13.5, -20.0, -38.0, -38.5, 3.0, 5.0, 10.0]
    elif n in ("sigmoid", "log_sigmoid", "silu", "mish", "exponential"):
        k += [15.0, -15.0, 17.0, -17.0, 36.7, -36.7, 20.0, -20.0, -1.2784645, -1.1924] + exp_points
        k += [-p for p in exp_points]
    elif n == "hard_sigmoid":
        k += [-p["offset"] / p["slope"], (1.0 - p["offset"]) / p["slope"]]
    elif n == "softplus":
        b = p["beta"]
        if p["threshold"] is not None:
            k += [p["threshold"] / b]
        k += [v / b for v in exp_points + [-v for v in exp_points] + [20.0, -20.0, 36.7, -36.7]]
    elif n == "hard_silu":
        k += [-3.0, 3.0, -1.5]
    elif n in ("tanh", "lisht", "tanh_shrink"):
        k += [0.55, -0.55, 0.625, -0.625, 1e-4, -1e-4, 9.01, -9.01, 19.06, -19.06, 4.97, -4.97]
    elif n == "hard_tanh":
        k += [p["min_val"], p["max_val"]]
    elif n in ("soft_shrink", "hard_shrink"):
        k += [p["threshold"], -p["threshold"]]
    elif n == "threshold":
        k += [p["threshold"]]
    elif n in ("sparse_plus", "sparse_sigmoid"):
        k += [-1.0, 1.0]
    elif n == "squareplus":
        r = math.sqrt(p["b"])
        k += [r, -r, 1.8e19, -1.8e19, 1.3e154, -1.3e154]
    elif n == "log1mexp":
        k += [LN2, 1e-8, 1e-30, 1e-300, 40.0, 745.0, -1.0]
    elif n == "snake":
        f = abs(p["frequency"])
        k += [math.pi / (2 * f), -math.pi / (2 * f), math.pi / f, -math.pi / f, -math.pi / (4 * f)]
    if rec.kind is Kind.GATED and p.get("limit") is not None:  # the clamps' corners
        k += [p["limit"], -p["limit"]]
    return [float(v) for v in k]


def edge_values(name: str, **params) -> np.ndarray:
    """Interesting float64 inputs for ``name``: zeros, kinks and their
    neighbours in every dtype, tiny/denormal/huge values, infinities, NaN and
    a dense sweep.  Cast to the kernel's dtype with :func:`cast`."""
    vals: list[float] = [0.0, -0.0, math.inf, -math.inf, math.nan]
    general = [0.5, 1.0, 2.0, 1e-3, 1e-8, 100.0, 1e4, 65504.0, 65520.0, 1e30, 3.3e38, 3.4e38, 1e300, 1.7e308]
    for dt in DTYPES:
        fi = finfo(dt)
        general += [float(fi.tiny), float(fi.smallest_subnormal), 3 * float(fi.smallest_subnormal), float(fi.max)]
    vals += general + [-v for v in general]
    vals += _neighbours(kinks(name, **params) + [1.0, -1.0])
    vals += list(np.linspace(-12.0, 12.0, 97))  # step 0.25: exact in every dtype
    vals += list(np.linspace(-7.3, 7.3, 61))
    arr = np.array(vals, dtype=F64)
    # drop exact duplicates (by bit pattern, so -0.0 and 0.0 both stay)
    _, first = np.unique(arr.view(np.int64), return_index=True)
    return arr[np.sort(first)]


# ------------------------------------------------------------ test inputs
#: activations whose domain is x >= 0 (random inputs are folded onto it)
NONNEGATIVE_DOMAIN = ("log1mexp",)


def random_inputs(rng: np.random.Generator, shape, name: str, dtype: Any) -> np.ndarray:
    """Random inputs in ``dtype``: mostly N(0, 3), some wide (|x| < 20), some near 0."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    n = int(np.prod(shape, dtype=np.int64))
    pick = rng.random(n)
    x = np.where(pick < 0.7, rng.normal(0.0, 3.0, n), np.where(pick < 0.9, rng.uniform(-20, 20, n), rng.normal(0, 0.05, n)))
    if REGISTRY.get(name).name in NONNEGATIVE_DOMAIN:
        x = np.abs(x)
    return cast(x.reshape(shape), dtype)


def random_cotangent(rng: np.random.Generator, shape, dtype: Any) -> np.ndarray:
    """dy in ``dtype``: magnitudes in [0.5, 2], random signs (never 0, inf or NaN)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    g = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return cast(g, dtype)


def with_allowances(values: Any, like: Expected) -> Expected:
    """``values`` (e.g. another backend's float64 result) as an :class:`Expected`
    carrying the slack and alternatives of ``like`` (same shape)."""
    return _expected(
        np.asarray(values, F64), like.name, like.dtype_in, slack=like.slack, alt=like.alt, has_alt=like.has_alt,
        inputs=like.inputs,
    )
