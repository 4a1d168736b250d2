"""Fuzzing apply/grad: random names, parameters, dtypes, shapes, layouts, out=/bias=/where=/axis=.

Each example is one call built from independent random choices, some of them faults (an unknown
or hostile name, a bad parameter value or type, a bool or complex array, a bias of the wrong
length, a mask that does not broadcast, an axis out of range or repeated in a tuple, an out= of
the wrong shape...); integer arrays (read as float64) and tuples of axes are valid draws.  A small
model of the documented rules (README "Errors", docs/semantics.md, the catalogue's parameter
ranges) says which faults the call has.  Then:

* no fault: the call succeeds and matches tests/reference.py within its tolerances (dx, dbias
  and dweight for grad), out= is the returned object and holds the result;
* faults: it raises one of the documented exceptions (ValueError, TypeError,
  activations.BackendUnavailable), of a type one of the faults allows, whose message names the
  offending argument; nothing else ever escapes.

Budget: ``ACTIVATIONS_FUZZ_EXAMPLES`` examples per test (default 150, well under a minute in
all); a larger value (and ``ACTIVATIONS_FUZZ_SEED`` or no seed for fresh random cases) is the
long-running mode.  The count of calls made, by outcome, is printed at the end of the module
and written to ``.hypothesis/activations-fuzz-counts.json``.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st

import activations
import reference
from activations import dispatch
from activations.catalogue import REGISTRY
from activations.registry import FLOAT32_TINY, REQUIRED, Kind
from conftest import CPU_PATHS, use_cpu_path
from test_tuple_axes import joint_expected

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED = (ValueError, TypeError, activations.BackendUnavailable)

EXAMPLES = int(os.environ.get("ACTIVATIONS_FUZZ_EXAMPLES", "150"))
_SEED = os.environ.get("ACTIVATIONS_FUZZ_SEED")
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The CI budget is reproducible; the long mode explores fresh cases unless a seed is given.
    derandomize="ACTIVATIONS_FUZZ_EXAMPLES" not in os.environ and _SEED is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
    print_blob=True,
)


def fuzz_seed(test):
    return seed(int(_SEED))(test) if _SEED is not None else test

COUNTS: Counter = Counter()

RECORDS = list(REGISTRY)
SPELLINGS = REGISTRY.all_spellings()
FLOAT_DTYPES = [d for d in reference.DTYPES]
INT_DTYPES = [np.dtype(t) for t in (np.int8, np.int32, np.int64, np.uint8)]  # read as float64 (NumPy's ufuncs)
BAD_DTYPES = [np.dtype(t) for t in (np.bool_, np.complex64, np.complex128)]

HOSTILE = [
    "__import__('os').system('id')",
    "relu\"); system(\"id\"); //",
    "relu */ extern \"C\" __global__ void x() {} /*",
    "relu\n#include </etc/passwd>",
    "$(id)",
    "`id`",
    "../../etc/passwd",
    "{0.__class__}",
    "%s%n",
    "relu\x00",
    "\u202erelu",
    "ＧＥＬＵ",
    "\ud800",
    "x" * 300,
    "",
]


# ---------------------------------------------------------------- the model
def _normalize(name: str) -> str:
    # case, surrounding blanks and dashes are not significant ("Leaky-ReLU" is leaky_relu)
    return name.strip().lower().replace("-", "_")


def _is_real(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (int, float, Fraction, np.integer, np.floating)):
        return True
    return isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "fiu"


def param_fault(p, value) -> type[Exception] | None:
    """The exception the documented rules give for ``value`` of parameter ``p`` (None: valid)."""
    if p.type == "choice":
        ok = any(type(s) is type(value) and s == value for s, _ in p.choices)
        return None if ok else ValueError
    if p.type == "bool":
        if isinstance(value, bool) or (_is_real(value) and value in (0, 1)):
            return None
        return TypeError
    if p.type == "int":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            return TypeError
        return None if 0 <= int(value) < 2**64 else ValueError
    if p.type == "weight" and not _is_real(value) and not isinstance(value, (bool, np.bool_)):
        return None  # an array: checked against x (see weight_faults)
    if p.type == "optional_float" and value is None:
        return None
    if not _is_real(value):
        return TypeError
    try:
        v = float(value)
    except OverflowError:  # an int too large for a float
        return ValueError
    if math.isnan(v):
        return ValueError
    if p.nonzero and abs(v) < FLOAT32_TINY:  # a divisor must stay nonzero in float32
        return ValueError
    if p.low is not None and (v < p.low or (p.low_open and v == p.low)):
        return ValueError
    if p.high is not None and (v > p.high or (p.high_open and v == p.high)):
        return ValueError
    if p.low is None and p.high is None and not math.isfinite(v) and p.type != "optional_float":
        return ValueError
    return None


def _broadcasts(mshape, shape) -> bool:
    return len(mshape) <= len(shape) and all(m in (1, s) for m, s in zip(mshape[::-1], shape[::-1]))


class Case:
    """One fuzzed call (a plain class: Hypothesis prints it with ``describe``)."""

    def __init__(self, fn, name, record, x, x_host, dtype, params, kwargs, dy, in_place, faults):
        self.fn = fn  # "apply" or "grad"
        self.name = name
        self.record = record  # the record the rest of the call was built for
        self.x = x
        self.x_host = x_host  # x as a host array, as the backend sees it (None for a bad dtype)
        self.dtype = dtype  # x's dtype when valid
        self.params = params
        self.kwargs = kwargs  # out, bias, where, axis, backend
        self.dy = dy
        self.in_place = in_place
        self.faults = faults  # [(argument, exception type)]

    def __repr__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        def short(v):
            if isinstance(v, np.ndarray):
                return f"array(shape={v.shape}, dtype={v.dtype}, contiguous={v.flags.c_contiguous})"
            r = repr(v)
            return r if len(r) < 80 else r[:77] + "..."

        kw = {k: short(v) for k, v in self.kwargs.items()}
        return (f"{self.fn}({short(self.name)}, x={short(self.x)}, dy={short(self.dy)}, params={ {k: short(v) for k, v in self.params.items()} }, "
                f"{kw}, in_place={self.in_place}) faults={self.faults}")


# --------------------------------------------------------------- strategies
def _values(rng: np.random.Generator, shape, dtype: np.dtype, scale: float, special: float) -> np.ndarray:
    """Normal values times ``scale``, a fraction ``special`` of them replaced by edge values of ``dtype``."""
    x = rng.standard_normal(shape) * scale
    if special and x.size:
        fi = reference.finfo(dtype)
        specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 3.0, -3.0,
                    float(fi.max), -float(fi.max), float(fi.tiny), -float(fi.tiny), float(fi.smallest_subnormal)]
        mask = rng.random(shape) < special
        x = np.where(mask, rng.choice(specials, size=shape), x)
    return x


@st.composite
def names(draw, clean: bool):
    """(what is passed as name, its record or None, the fault)."""
    good = ["canonical"] * 6 + ["alias", "spelled", "record"]
    kind = draw(st.sampled_from(good if clean else good + ["mutated", "hostile", "text", "not_str"] * 3))
    if kind in ("canonical", "alias", "record", "spelled"):
        rec = draw(st.sampled_from(RECORDS))
        if kind == "record":
            return rec, rec, None
        name = rec.name if kind == "canonical" or not rec.aliases else draw(st.sampled_from(rec.aliases))
        if kind == "spelled":
            name = draw(st.sampled_from([name.upper(), f"  {name} ", name.replace("_", "-"), name.title()]))
    elif kind == "mutated":
        base = draw(st.sampled_from(SPELLINGS))
        i = draw(st.integers(0, len(base)))
        op = draw(st.sampled_from(["drop", "insert", "swap"]))
        ch = draw(st.sampled_from("aeiourlsx_-0"))
        if op == "drop" and i < len(base):
            name = base[:i] + base[i + 1:]
        elif op == "swap" and i + 1 < len(base):
            name = base[:i] + base[i + 1] + base[i] + base[i + 2:]
        else:
            name = base[:i] + ch + base[i:]
    elif kind == "hostile":
        name = draw(st.sampled_from(HOSTILE))
    elif kind == "text":
        name = draw(st.text(max_size=20))
    else:
        return draw(st.sampled_from([None, 1, 2.5, b"relu", ["relu"], object()])), None, ("activation", TypeError)
    norm = _normalize(name)
    if norm in SPELLINGS:
        return name, REGISTRY.get(norm), None
    return name, None, ("activation", ValueError)


def _valid_float(draw, p) -> Any:
    lo = p.low if p.low is not None else -10.0
    hi = p.high if p.high is not None else 10.0
    candidates = [v for v in (0.0, 0.25, 0.5, 1.0, 2.0, -1.0, -0.5, 3.0, 1e-3, 20.0) if lo <= v <= hi]
    v = draw(st.one_of(st.sampled_from(candidates), st.floats(lo, hi, allow_nan=False, allow_infinity=False)))
    if (p.low_open and v == p.low) or (p.high_open and v == p.high) or (p.nonzero and v == 0):
        v = (lo + hi) / 2 or 0.5
    wrap = draw(st.sampled_from(["float"] * 5 + ["int", "np32", "np64", "0d", "fraction"]))
    if wrap == "int" and float(v).is_integer():
        return int(v)
    if wrap == "np32" and float(np.float32(v)) == v:
        return np.float32(v)
    if wrap == "np64":
        return np.float64(v)
    if wrap == "0d":
        return np.array(v)
    if wrap == "fraction":
        return Fraction(v)
    return float(v)


BAD_VALUES = [float("nan"), float("inf"), float("-inf"), "0.5", "relu", None, [1.0], 1j, True, {"a": 1}, -1e300, 1e300, -1.0,
              0.0, 1e-40, 10**400]


def weight_faults(value, channels: int) -> list[type[Exception]]:
    """What prelu's weight raises when it is not a number: it must be a 1-D float array (or list) of
    length 1 or ``channels``."""
    if value is None or isinstance(value, (str, dict)):
        return [TypeError, ValueError]
    arr = np.asarray(value)
    if arr.dtype.kind != "f" and arr.dtype != reference.BFLOAT16:
        return [TypeError]
    return [] if arr.ndim == 1 and arr.shape[0] in (1, channels) else [ValueError]


@st.composite
def param_sets(draw, rec, channels: int, clean: bool, floats: list):
    """(kwargs as passed, faults) for the parameters of ``rec``."""
    params: dict[str, Any] = {}
    faults = []
    for p in rec.params:
        required = p.default is REQUIRED
        options = ["omit", "valid", "valid"] if not required else ["valid"]
        choice = draw(st.sampled_from(options if clean else options + ["bad", "omit"]))
        if choice == "omit":
            if required:
                faults.append((p.name, TypeError))
            continue
        key = draw(st.sampled_from([p.name, *p.aliases]))
        if choice == "valid":
            if p.type == "choice":
                value = draw(st.sampled_from([s for s, _ in p.choices]))
            elif p.type == "bool":
                value = draw(st.sampled_from([True, False, 0, 1, 1.0]))
            elif p.type == "int":
                value = draw(st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, np.uint64(5), np.int64(7)])))
            elif p.type == "optional_float":
                # relu's max_value=inf is not drawn: the kernels receive None as +inf, so inf is "no
                # cap" for them, while tests/reference.py gives relu'(+inf) = 0 under an inf cap
                value = draw(st.sampled_from([None, "finite"] + ([math.inf] if p.name != "max_value" else [])))
                value = _valid_float(draw, p) if value == "finite" else value
            elif p.type == "weight" and draw(st.booleans()):
                n = draw(st.sampled_from([1, channels]))
                value = draw(st.sampled_from(["array", "list"]))
                w = np.linspace(0.05, 0.6, n)
                value = w.tolist() if value == "list" else w.astype(draw(st.sampled_from(floats)))
            else:
                value = _valid_float(draw, p)
        else:
            bad_weights = [np.ones(channels + 1), np.ones((1, 1)), np.ones(2, np.int32)] if p.type == "weight" else []
            value = draw(st.sampled_from(BAD_VALUES + bad_weights))
        params[key] = value
        if p.type == "weight" and not _is_real(value) and not isinstance(value, bool):
            faults += [(p.name, exc) for exc in weight_faults(value, channels)]
            continue
        exc = param_fault(p, value)
        if exc is not None:
            faults.append((p.name, exc))
    # cross-parameter rules, when both values are valid
    for left, op, right in rec.constraints:
        if any(f[0] in (left, right) for f in faults):
            continue
        a = next((float(v) for k, v in params.items() if k == left), None)
        b = next((float(v) for k, v in params.items() if k == right), None)
        p_left = next(p for p in rec.params if p.name == left)
        p_right = next(p for p in rec.params if p.name == right)
        a = p_left.default if a is None else a
        b = p_right.default if b is None else b
        if not (a < b if op == "<" else a <= b):
            faults.append((left, ValueError))
    if not clean and draw(st.integers(0, 9)) == 0:
        key = draw(st.sampled_from(["alpah", "x_", "__class__", "threshold2", *HOSTILE[:4]]))
        if key not in {p.name for p in rec.params} | {a for p in rec.params for a in p.aliases}:
            params[key] = 1.0
            faults.append((key, TypeError))
    return params, faults


def _pick(draw, clean: bool, good: list, bad: list):
    """One of ``good``, or when faults are allowed, of ``good + bad``."""
    return draw(st.sampled_from(good if clean else good + bad))


@st.composite
def cases(draw, device: str):
    # about half the calls are valid: the others may have a fault in any argument
    clean = draw(st.booleans())
    name, rec, name_fault = draw(names(clean))
    faults = [name_fault] if name_fault else []
    record = rec or draw(st.sampled_from(RECORDS))
    kind = record.kind
    fn = draw(st.sampled_from(["apply", "grad"]))

    # --- x: dtype, shape, layout, values
    floats = FLOAT_DTYPES
    if device == "numba" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        floats = [d for d in FLOAT_DTYPES if d != reference.BFLOAT16]  # the simulator has no bfloat16
    mode = _pick(draw, clean, ["array"] * 10 + ["list", "scalar", "int"], ["bad_dtype"] * 2)
    dtype = draw(st.sampled_from(floats)) if mode == "array" else np.dtype(np.float64)
    if mode == "bad_dtype":
        dtype = draw(st.sampled_from(BAD_DTYPES))
    elif mode == "int":
        dtype = draw(st.sampled_from(INT_DTYPES))
    ndim = 0 if mode == "scalar" else draw(st.sampled_from([0, 1, 1, 2, 2, 2, 3]))
    shape = tuple(draw(st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8]), min_size=ndim, max_size=ndim)))
    if draw(st.integers(0, 3)) and 0 in shape:  # empty arrays, but not too often
        shape = tuple(s or 2 for s in shape)
    layout = draw(st.sampled_from(["c", "c", "c", "strided", "transposed", "reversed", "fortran"])) if ndim else "c"
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 0.5, 1.0, 3.0, 30.0, 1e4]))
    special = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3]))
    raw = _values(rng, shape, dtype if dtype.kind == "f" else np.dtype(np.float64), scale, special)
    if dtype.kind in "biu":
        raw = np.nan_to_num(raw, nan=0, posinf=1, neginf=-1).clip(-100, 100)
    with np.errstate(all="ignore"):
        base = raw.astype(dtype)
    if layout == "strided":
        big = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)
        big[..., ::2] = base
        xa = big[..., ::2]
    elif layout == "transposed":
        xa = np.ascontiguousarray(base.T).T
    elif layout == "reversed":
        xa = np.ascontiguousarray(base[::-1])[::-1]
    elif layout == "fortran":
        xa = np.asfortranarray(base)
    else:
        xa = base
    if mode == "list" and xa.size == 0:
        mode = "array"  # an empty nested list loses its inner dimensions
    if mode == "list":
        x, x_host = xa.tolist(), xa.astype(np.float64)
    elif mode == "scalar":
        x, x_host = float(xa), xa.astype(np.float64)
    else:
        x, x_host = xa, xa
    if mode == "bad_dtype":
        faults.append(("x", TypeError))
    elif mode == "int":  # from here on x is the float64 array it is read as
        x_host = xa.astype(np.float64)
        dtype = np.dtype(np.float64)
    shape = xa.shape
    ndim = len(shape)
    channels = shape[-1] if ndim else None

    # --- parameters
    # a 0-d x takes a prelu weight of length 1
    params, pfaults = draw(param_sets(record, channels if channels is not None else 1, clean, floats))
    faults += pfaults

    kwargs: dict[str, Any] = {}
    # --- axis
    ax = None
    if kind is not Kind.ELEMENTWISE:
        choice = _pick(draw, clean, ["default"] * 3 + ["valid", "valid"], ["out_of_range", "wrong_type"])
        if choice == "valid" and ndim:
            a = draw(st.integers(-ndim, ndim - 1))
            kwargs["axis"] = draw(st.sampled_from([a, np.int64(a)]))
        elif choice == "out_of_range":
            kwargs["axis"] = draw(st.sampled_from([ndim, ndim + 3, -ndim - 1, 10**6]))
        elif choice == "wrong_type":
            kwargs["axis"] = draw(st.sampled_from([1.0, "0", None, [0], True, np.False_, (0.0, 1)]))
        if kind is Kind.ROWWISE and ndim and draw(st.integers(0, 3)) == 0:
            # a tuple of axes: one, several, all; in range or not, repeated or not
            picks = draw(st.lists(st.integers(-ndim - 1, ndim), min_size=0 if not clean else 1, max_size=ndim + 1))
            if clean:
                picks = sorted({p % ndim for p in picks if -ndim <= p < ndim}) or [0]
            kwargs["axis"] = tuple(picks)
        axis = kwargs.get("axis", -1)
        if ndim == 0:
            faults.append(("axis", ValueError))
        elif isinstance(axis, tuple) and kind is Kind.ROWWISE:
            if any(not isinstance(a, (int, np.integer)) or isinstance(a, (bool, np.bool_)) for a in axis):
                faults.append(("axis", TypeError))
            elif not axis or any(not -ndim <= a < ndim for a in axis) or len({a % ndim for a in axis}) < len(axis):
                faults.append(("axis", ValueError))
            else:
                ax = tuple(sorted(int(a) % ndim for a in axis))
        elif not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
            faults.append(("axis", TypeError))
        elif not -ndim <= axis < ndim:
            faults.append(("axis", ValueError))
        else:
            ax = int(axis) % ndim
            if kind is Kind.GATED and shape[ax] % 2:
                faults.append(("axis", ValueError))
    elif draw(st.integers(0, 5)) == 0:
        kwargs["axis"] = draw(st.sampled_from([0, 5, "ignored", None]))  # elementwise: ignored
    out_shape = shape
    if kind is Kind.GATED and ax is not None and shape[ax] % 2 == 0:
        out_shape = shape[:ax] + (shape[ax] // 2,) + shape[ax + 1:]

    # --- where
    if draw(st.integers(0, 2)) == 0:
        if kind is Kind.ROWWISE:
            wshape = tuple(s if draw(st.booleans()) else 1 for s in shape)
            if not clean and draw(st.integers(0, 3)) == 0:
                wshape = tuple(s + 1 for s in wshape) or (2,)
            if draw(st.integers(0, 3)) == 0 and wshape:
                wshape = wshape[draw(st.integers(0, len(wshape))):]
            kwargs["where"] = rng.random(wshape) < 0.7
            if not _broadcasts(wshape, shape):
                faults.append(("where", ValueError))
        elif not clean:
            kwargs["where"] = np.ones(shape, bool)
            faults.append(("where", TypeError))

    # --- bias
    if draw(st.integers(0, 2)) == 0:
        choice = _pick(draw, clean, ["same", "same", "other_float", "list", "int"], ["wrong_length", "2d", "bool"])
        n = channels if channels is not None else 1
        b = np.linspace(-0.5, 0.5, max(n, 0)) if choice not in ("wrong_length",) else np.linspace(-0.5, 0.5, n + 1)
        if choice == "2d":
            b = b.reshape(1, -1)
        if choice == "same" and dtype.kind == "f" or choice == "same" and dtype == reference.BFLOAT16:
            b = b.astype(dtype)
        elif choice == "other_float":
            b = b.astype(draw(st.sampled_from(floats)))
        elif choice == "int":  # read as float64, then cast to x's dtype
            b = np.arange(n, dtype=np.int32) - n // 2
        elif choice == "bool":
            b = np.ones(n, bool)
        kwargs["bias"] = b.tolist() if choice == "list" else b
        if ndim == 0:
            faults.append(("bias", ValueError))
        elif choice == "bool":
            faults.append(("bias", TypeError))
        elif choice in ("wrong_length", "2d"):
            faults.append(("bias", ValueError))

    # --- dy
    dy = None
    result_shape = out_shape if fn == "apply" else shape
    if fn == "grad":
        choice = _pick(draw, clean, ["good"] * 6 + ["list"], ["wrong_shape", "wrong_dtype"])
        if choice == "list" and (clean and dtype != np.float64 or 0 in out_shape):
            choice = "good"  # a list is float64 (it only matches float64 inputs) and loses empty dimensions
        dshape = out_shape if choice != "wrong_shape" else tuple(s + 1 for s in out_shape) or (3,)
        dvals = _values(rng, dshape, np.dtype(np.float64), 1.0, 0.0)
        ddt = dtype if dtype.kind == "f" or dtype == reference.BFLOAT16 else np.dtype(np.float32)
        if choice == "wrong_dtype":
            ddt = np.dtype(np.float16) if ddt != np.float16 else np.dtype(np.float32)
        dy = dvals.astype(ddt)
        if choice == "list":
            dy = dy.tolist() if dshape else float(dy)
            ddt = np.dtype(np.float64)
        if not any(f[0] == "axis" for f in faults):
            if choice == "wrong_shape":
                faults.append(("dy", ValueError))
            elif ddt != dtype and dtype.kind == "f" or ddt != dtype and dtype == reference.BFLOAT16:
                faults.append(("dy", ValueError))

    # --- out
    in_place = False
    bad_outs = ["wrong_shape", "wrong_dtype", "list"] + (["read_only"] if device == "numpy" else [])  # device arrays have no flag
    choice = _pick(draw, clean, ["none"] * 4 + ["good", "strided", "in_place"], bad_outs)
    odt = dtype if dtype.kind == "f" or dtype == reference.BFLOAT16 else np.dtype(np.float32)
    if choice == "good":
        kwargs["out"] = np.full(result_shape, 7, odt)
    elif choice == "strided" and result_shape:
        kwargs["out"] = np.full(result_shape[:-1] + (2 * result_shape[-1],), 7, odt)[..., ::2]
    elif choice == "in_place" and isinstance(x, np.ndarray) and result_shape == shape and x.dtype == odt:
        kwargs["out"] = x
        in_place = True
    elif choice == "wrong_shape":
        kwargs["out"] = np.zeros(tuple(s + 1 for s in result_shape) or (2,), odt)
        faults.append(("out", ValueError))
    elif choice == "wrong_dtype":
        kwargs["out"] = np.zeros(result_shape, np.float16 if odt != np.float16 else np.float32)
        faults.append(("out", ValueError))
    elif choice == "list":
        kwargs["out"] = np.zeros(result_shape).tolist() if result_shape else [0.0]
        faults.append(("out", ValueError))
    elif choice == "read_only":
        kwargs["out"] = np.zeros(result_shape, odt)
        kwargs["out"].setflags(write=False)
        faults.append(("out", ValueError))

    # --- backend
    choice = _pick(draw, clean, ["given"] * 6 + ["none"], ["unknown", "unavailable"])
    if choice == "given" or device != "numpy":
        kwargs["backend"] = device
    elif choice == "unknown":
        kwargs["backend"] = draw(st.sampled_from(["cuda", "", "NumPy", 1, None, "numpy "]))
        if kwargs["backend"] is not None:
            faults.append(("backend", ValueError))
    elif choice == "unavailable":
        missing = [n for n in dispatch.names() if not dispatch.status(n)[0]]
        if missing:
            kwargs["backend"] = draw(st.sampled_from(missing))
            faults.append(("backend", activations.BackendUnavailable))

    if fn == "grad" and dy is None:
        dy = np.ones(out_shape)
    return Case(fn, name, record, x, x_host, dtype if mode != "bad_dtype" else None, params, kwargs, dy, in_place, faults)


# ------------------------------------------------------------------ checking
TOKENS = {
    "activation": r"activation",
    "x": r"\bx\b",
    "out": r"\bout\b|output",
    "dy": r"\bdy\b",
    "bias": r"\bbias\b",
    "where": r"\bwhere\b",
    "axis": r"\baxis\b",
    "backend": r"\bbackend\b",
}


def _names_argument(message: str, argument: str) -> bool:
    pattern = TOKENS.get(argument)
    if pattern is None:  # a parameter: its name, quoted or not
        return argument in message or repr(argument) in message
    return re.search(pattern, message) is not None


def _is_array(v) -> bool:
    return isinstance(v, np.ndarray) or hasattr(v, "__cuda_array_interface__")


def _snapshot(case: Case, host) -> dict[str, bytes]:
    arrays = {"x": case.x, "dy": case.dy, **{k: case.kwargs.get(k) for k in ("bias", "where")}}
    if not case.in_place:
        arrays["out"] = case.kwargs.get("out")
    return {k: np.ascontiguousarray(host(v)).tobytes() for k, v in arrays.items() if _is_array(v)}


def on_device(case: Case, to_dev) -> Case:
    """The same call with every NumPy array moved to a device (x_host stays the host original)."""
    def move(v):  # (host views are copied whole: strided device views are not built here)
        return to_dev(v if v.flags.c_contiguous else v.copy()) if isinstance(v, np.ndarray) else v

    def scalar_as_array(v):  # NumPy scalars go over as 0-d arrays (test_numba_keeps_the_dtype_of_numpy_scalars)
        return np.asarray(v) if isinstance(v, np.generic) else v

    x = move(scalar_as_array(case.x))
    kwargs = {k: move(v) for k, v in case.kwargs.items()}
    if case.in_place:
        kwargs["out"] = x
    # parameters stay host scalars (a 0-d device array is no number to the registry); prelu's weight
    # array moves like the other arrays
    params = {k: move(v) if isinstance(v, np.ndarray) and v.ndim else v for k, v in case.params.items()}
    return Case(case.fn, case.name, case.record, x, case.x_host, case.dtype, params, kwargs, move(scalar_as_array(case.dy)),
                case.in_place, case.faults)


def check(case: Case, host=np.asarray) -> None:
    """Run one fuzzed call; ``host`` copies a result or argument of the backend to a NumPy array."""
    COUNTS["calls"] += 1
    fn = activations.apply if case.fn == "apply" else activations.grad
    args = [case.name, case.x] + ([case.dy] if case.fn == "grad" else [])
    x_before = None if case.x_host is None else np.array(case.x_host, copy=True)
    before = _snapshot(case, host)
    try:
        got = fn(*args, **case.params, **case.kwargs)
    except DOCUMENTED as exc:
        COUNTS["rejected"] += 1
        message = str(exc)
        assert case.faults, f"a valid call raised {type(exc).__name__}: {message}\n{case.describe()}"
        allowed = [(arg, t) for arg, t in case.faults if isinstance(exc, t)]
        assert allowed, f"{type(exc).__name__} ({message}) is not what any fault allows\n{case.describe()}"
        assert any(_names_argument(message, arg) for arg, _ in allowed), (
            f"the message does not name the offending argument: {message!r}\n{case.describe()}"
        )
        after = _snapshot(case, host)
        for k in before:
            assert after[k] == before[k], f"{k} was modified by a call that raised: {message}\n{case.describe()}"
        if case.in_place and x_before is not None:
            assert np.array_equal(np.asarray(case.x_host), x_before, equal_nan=True), f"x was modified\n{case.describe()}"
        return
    except Exception as exc:  # anything else escaping is the bug this file looks for
        pytest.fail(f"undocumented exception {type(exc).__name__}: {exc}\n{case.describe()}")
    assert not case.faults, f"the call succeeded although it has faults\n{case.describe()}"
    COUNTS["valid"] += 1
    _check_values(case, got, x_before, host)


def _expected(name, x, dy, ref_kw, params):
    """reference.forward (dy None) or backward; over a tuple of axes, Keras's construction of it."""
    if isinstance(ref_kw.get("axis"), tuple):
        kw = dict(ref_kw)
        axes = kw.pop("axis")
        return joint_expected(name, np.asarray(x), axes, dy=dy, **kw, **params)
    if dy is None:
        return reference.forward(name, x, **ref_kw, **params)
    return reference.backward(name, x, dy, **ref_kw, **params)


def _check_values(case: Case, got, x_before, host) -> None:
    rec = case.record
    dtype = case.dtype
    ref_kw = {k: host(v) if _is_array(v) else v for k, v in case.kwargs.items() if k in ("axis", "where", "bias")}
    if rec.kind is Kind.ELEMENTWISE:
        ref_kw.pop("axis", None)
        ref_kw.pop("where", None)
    x_ref = x_before if x_before is not None else case.x_host
    out = case.kwargs.get("out")
    with np.errstate(all="ignore"):
        if case.fn == "apply":
            params = {k: host(v) if _is_array(v) else v for k, v in case.params.items()}
            expected = _expected(rec.name, x_ref, None, ref_kw, params)
            if out is not None:
                assert got is out, "apply(out=...) did not return out"
            y = host(got)
            assert np.asarray(y).dtype == dtype and np.shape(y) == expected.shape, (np.asarray(y).dtype, np.shape(y), expected.shape)
            reference.assert_close(np.asarray(y), expected, dtype, what=f"fuzzed forward\n{case.describe()}")
            COUNTS["compared"] += 1
            return
        dy = np.asarray(host(case.dy) if _is_array(case.dy) else case.dy).astype(dtype)
        params = {k: host(v) if _is_array(v) else v for k, v in case.params.items()}
        expected = _expected(rec.name, x_ref, dy, ref_kw, params)
    parts = [host(g) for g in (got if isinstance(got, tuple) else (got,))]
    if out is not None:
        assert (got[0] if isinstance(got, tuple) else got) is out, "grad(out=...) did not return out as dx"
    exp_dx, exp_dw = (expected if rec.name == "prelu" else (expected, None))
    dx = parts.pop(0)
    assert np.asarray(dx).dtype == dtype and np.shape(dx) == exp_dx.shape
    reference.assert_close(np.asarray(dx), exp_dx, dtype, what=f"fuzzed dx\n{case.describe()}")
    if "bias" in case.kwargs:
        # dbias is the column sum of dz (in compute precision); where the reference accepts two
        # values of dx (e.g. log1mexp' below 0) the sum of the dx returned is right too
        db = parts.pop(0)
        what = f"fuzzed dbias\n{case.describe()}"
        try:
            reference.assert_close(np.asarray(db), reference.dbias(exp_dx, dtype), dtype, what=what)
        except AssertionError:
            reference.assert_close(np.asarray(db), reference.dbias(np.asarray(dx).astype(np.float64), dtype), dtype, what=what)
    if rec.name == "prelu":
        dw = parts.pop(0)
        assert np.shape(dw) == exp_dw.shape, (np.shape(dw), exp_dw.shape)
        reference.assert_close(np.asarray(dw), exp_dw, dtype, what=f"fuzzed dweight\n{case.describe()}")
    assert not parts, f"grad returned {len(parts)} unexpected extra values"
    COUNTS["compared"] += 1


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    counts = dict(COUNTS)
    line = (f"fuzz: {counts.get('calls', 0)} calls, {counts.get('valid', 0)} valid "
            f"({counts.get('compared', 0)} compared with the reference), {counts.get('rejected', 0)} rejected; "
            f"{EXAMPLES} examples per test")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("\n" + line)
    try:
        path = ROOT / ".hypothesis" / "activations-fuzz-counts.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({**counts, "examples_per_test": EXAMPLES}) + "\n")
    except OSError:
        pass


def known_bug(case: Case) -> str | None:
    """Cases that hit a reported bug (of the package: the test that pins it; or of the oracle), not
    drawn so that the fuzz keeps looking for new ones.  Delete a line when its bug is fixed."""
    x = case.x_host
    if case.faults or x is None or case.dtype is None:
        return None
    rec = case.record
    big = float(np.finfo(np.float64 if case.dtype == np.float64 else np.float32).max) / 2
    largest = np.nanmax(np.abs(np.where(np.isinf(x), 0, np.asarray(x, np.float64))), initial=0)
    if rec.name == "log_softmax" and case.kwargs.get("where") is None and largest >= 16:
        return "test_log_softmax_of_rows_far_from_zero"
    if rec.name == "sparsemax" and largest > 2.0**53:
        return "tests/reference.py: sparsemax_row finds no support when 1 + z == z (IndexError)"
    if rec.kind is Kind.GATED and case.fn == "grad" and largest > big / 4:
        return "not a bug: dy * b * f'(a) may overflow in its first product within a factor 2 of the largest float"
    return None


# ---------------------------------------------------------------------- tests
@fuzz_seed
@FUZZ
@given(case=cases("numpy"))
def test_fuzz_numpy(case):
    assume(known_bug(case) is None)
    check(case)


# The other backends take their own arrays: every NumPy array of a case is moved there first.
# Numba's simulator runs kernels as Python threads, so it gets a tenth of the budget.
@pytest.fixture(scope="module", params=["numba", "cupy"])
def device(request):
    name = request.param
    ok, why = dispatch.status(name)
    if not ok:
        pytest.skip(f"{name} backend not available here: {why}")
    if name == "numba":
        from numba import cuda

        return name, cuda.to_device, lambda a: a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)
    import cupy

    return name, cupy.asarray, cupy.asnumpy


@fuzz_seed
@settings(FUZZ, max_examples=max(10, EXAMPLES // 10))
@given(data=st.data())
def test_fuzz_other_backends(device, data):
    name, to_dev, host = device
    case = data.draw(cases(name))
    assume(known_bug(case) is None)
    check(on_device(case, to_dev), host)


# ------------------------------------------------ regressions found by fuzzing
BIG = 10**400  # a Python int that no float can hold


@pytest.mark.parametrize("call", [
    lambda x: activations.apply("elu", x, alpha=BIG),
    lambda x: activations.apply("prelu", x, weight=BIG),
    lambda x: activations.apply("relu", BIG),
    lambda x: activations.apply("relu", x, bias=[BIG] * 4),
    lambda x: activations.grad("relu", np.float64(1.0), BIG),
], ids=["param", "weight", "x", "bias", "dy"])
def test_huge_python_ints_raise_value_error(call):
    with pytest.raises(ValueError):
        call(np.ones(4))


@pytest.mark.parametrize("name,x", [("relu", np.float32(1.0)), ("relu", np.ones(4)), ("softmax", np.ones(4)), ("glu", np.ones(4))])
def test_grad_without_dy_names_dy(name, x):
    with pytest.raises((TypeError, ValueError), match=r"\bdy\b"):
        activations.grad(name, x, None)


@pytest.mark.parametrize("call,argument", [
    (lambda: activations.apply("relu", "abc"), "x"),
    (lambda: activations.apply("relu", "1.5"), "x"),
    (lambda: activations.apply("relu", [["a"]]), "x"),
    (lambda: activations.apply("relu", np.ones(3), bias="abc"), "bias"),
    (lambda: activations.grad("relu", np.ones(3), "abc"), "dy"),
    (lambda: activations.apply("prelu", np.ones(3), weight="abc"), "weight"),
    (lambda: activations.apply("relu", 1j), "x"),
], ids=["x-abc", "x-1.5", "x-list-of-str", "bias", "dy", "weight", "x-complex-scalar"])
def test_strings_are_not_numbers(call, argument):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert re.search(rf"\b{argument}\b", str(info.value)), str(info.value)


@pytest.mark.parametrize("where", ["abc", object(), np.array(["a", "b", "c"])])
def test_where_of_the_wrong_dtype_is_refused(where):
    with pytest.raises((TypeError, ValueError), match="where"):
        activations.apply("softmax", np.ones(3), where=where)


@pytest.mark.parametrize("path", CPU_PATHS)
def test_relu_negative_max_value_is_refused_or_consistent(path, monkeypatch):
    use_cpu_path(path, monkeypatch)
    x = np.array([-1.0, 2.0])
    try:
        y = activations.apply("relu", x, max_value=-1.0)
    except ValueError:
        return
    assert y[0] == 0.0, f"relu(-1, max_value=-1) = {y[0]}, expected 0 (below the threshold)"


@pytest.mark.parametrize("name,bad", [("softmax", np.nan), ("softmax", np.inf), ("softmin", np.nan), ("softmin", -np.inf),
                                      ("sparsemax", np.nan), ("sparsemax", np.inf)])
def test_masked_outputs_stay_zero_in_a_nan_row(name, bad):
    x = np.array([[1.0, bad, 2.0, 0.5]], np.float32)
    where = np.array([True, True, False, False])
    y = activations.apply(name, x, where=where)
    dx = activations.grad(name, x, np.ones_like(x), where=where)
    assert np.all(y[:, 2:] == 0) and np.all(dx[:, 2:] == 0), (y.tolist(), dx.tolist())


@pytest.mark.parametrize("row", [[1.0, np.inf, 2.0, 0.5], [-np.inf] * 4], ids=["plus_inf", "all_minus_inf"])
def test_sparsemax_rows_with_infinities_are_nan(row):
    x = np.array([row], np.float32)
    assert np.all(np.isnan(activations.apply("sparsemax", x)))
    assert np.all(np.isnan(activations.grad("sparsemax", x, np.ones_like(x))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparsemax_of_large_logits(dtype):
    big = 2e7 if dtype == np.float32 else 1e17
    y = activations.apply("sparsemax", np.array([big, 0.0, 1.0], dtype))
    np.testing.assert_array_equal(y, [1.0, 0.0, 0.0])


@pytest.mark.parametrize("name,params", [("snake", {"frequency": 1e-50})])
def test_tiny_nonzero_parameters(name, params):
    x = np.array([0.5, -1.0], np.float32)
    try:
        y = activations.apply(name, x, **params)
    except ValueError:
        return
    assert np.all(np.isfinite(y)), y


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_overflow_below_the_largest_float(dtype, path, monkeypatch):
    """squareplus near the largest float is about x (x > 0) and b / 4|x| (x < 0); snake' stays in
    [0, 2] however large f x is."""
    use_cpu_path(path, monkeypatch)
    x = np.array([np.finfo(dtype).max / 1.5, -np.finfo(dtype).max / 1.5], dtype)
    y = activations.apply("squareplus", x)
    assert y[0] == x[0], y
    expected = 1.0 / abs(float(x[1]))  # b / 4|x|, b = 4
    assert abs(float(y[1]) - expected) <= 0.01 * expected, (y, expected)
    dx = activations.grad("squareplus", x, np.ones_like(x))
    assert dx[0] == 1 and 0 <= float(dx[1]) < 1e-300, dx
    d = activations.grad("snake", x, np.ones_like(x))
    assert np.all(np.isfinite(d)) and np.all((d >= 0) & (d <= 2)), d


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_with_beta_near_the_largest_float(dtype, path, monkeypatch):
    """softplus(beta=2) at 0.6 times the largest float is about x (beta x overflows, the result
    does not); softsign' where (1 + |x|)^2 overflows is 1/x^2, not 0."""
    use_cpu_path(path, monkeypatch)
    big = np.finfo(dtype).max * 0.6
    x = np.array([big, -big], dtype)
    np.testing.assert_array_equal(activations.apply("softplus", x, beta=2.0), [big, 0.0])
    x = np.array([np.sqrt(np.finfo(dtype).max) * 1.5], dtype)
    d = activations.grad("softsign", x, np.ones_like(x))
    np.testing.assert_allclose(d, (1.0 / (1.0 + float(x[0]))) ** 2, rtol=1e-6)


def test_numba_keeps_the_dtype_of_numpy_scalars():
    ok, why = dispatch.status("numba")
    if not ok:
        pytest.skip(why)
    y = activations.apply("relu6", np.float16(0.5), backend="numba")
    assert np.dtype(y.dtype) == np.float16, y.dtype


def test_where_as_a_list_of_bools():
    x = np.array([1.0, 2.0, 3.0])
    expected = activations.apply("softmax", x, where=np.array([True, False, True]))
    np.testing.assert_array_equal(activations.apply("softmax", x, where=[True, False, True]), expected)


@pytest.mark.parametrize("path", CPU_PATHS)
def test_log_softmax_of_rows_far_from_zero(path, monkeypatch):
    use_cpu_path(path, monkeypatch)
    x = np.array([[-1e4, -1e4 - 8, -1e4 - 16, -1e4 + 4]], np.float32)
    reference.assert_close(activations.apply("log_softmax", x), reference.forward("log_softmax", x), np.float32)
    dy = np.array([[0.5, -1.0, 2.0, 0.25]], np.float32)
    reference.assert_close(activations.grad("log_softmax", x, dy), reference.backward("log_softmax", x, dy), np.float32)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_shrink_near_zero(path, dtype, monkeypatch):
    use_cpu_path(path, monkeypatch)
    import mpmath

    x = np.array([3e-4, -1e-3, 2e-2, 1e-8], dtype)
    with mpmath.workdps(60):
        exact = [float(mpmath.mpf(float(v)) - mpmath.tanh(mpmath.mpf(float(v)))) for v in x]
    np.testing.assert_allclose(activations.apply("tanh_shrink", x), exact, rtol=1e-5 if dtype == np.float32 else 1e-13)
