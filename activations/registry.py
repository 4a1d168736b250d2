"""The record type of the catalogue, parameter validation, and name lookup.

A record (:class:`Activation`) is pure data: name, aliases, kind, parameters,
formula text, range and which value its backward pass consumes.  Backends
look activations up by ``record.name``; nothing here knows about arrays.
"""
from __future__ import annotations

import functools

import difflib
import math
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

__all__ = [
    "Kind",
    "Param",
    "Rows",
    "Activation",
    "BoundParams",
    "REQUIRED",
    "Registry",
]


#: id(record) -> (record, its BoundParams of the defaults), filled by Activation.bind
_DEFAULT_BOUND: dict[int, tuple] = {}

class Kind(str, Enum):
    """How an activation maps its input to its output."""

    ELEMENTWISE = "elementwise"  # y[i] = f(x[i])
    ROWWISE = "rowwise"  # y[row] = f(x[row]) along `axis`
    GATED = "gated"  # `axis` split in halves a|b, y = f(a, b), half the size


class _Required:
    """Marker default for parameters the caller must give (e.g. ``threshold``)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

#: smallest normal float32: parameters used as divisors must survive float32 compute
FLOAT32_TINY = 1.1754943508222875e-38


@dataclass(frozen=True)
class Param:
    """One scalar parameter of an activation.

    ``type`` is one of ``"float"``, ``"optional_float"`` (``None`` allowed),
    ``"bool"``, ``"int"``, ``"choice"``, ``"weight"`` (a float or a 1-D array
    along the last axis, used by prelu) or ``"row"`` (a float or an array
    broadcastable to a row-wise call's row shape: one value per row, entmax's
    alpha; the interface layer checks the array and its values).  ``low``/``high`` bound a float;
    ``low_open``/``high_open`` make the bound strict.  ``nonzero`` rejects 0.
    ``choices`` maps every accepted spelling to its canonical value (the
    canonical values' order gives the kernel code).  ``kernel=False`` marks a
    parameter the host reads (how the loops index x, e.g. the gated layout):
    it is not one of the kernel floats.
    """

    name: str
    default: Any
    type: str = "float"
    doc: str = ""
    aliases: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nonzero: bool = False
    choices: tuple[tuple[Any, str], ...] = ()
    kernel: bool = True

    # ------------------------------------------------------------------ checks
    def canonical_choices(self) -> tuple[str, ...]:
        seen: list[str] = []
        for _, canon in self.choices:
            if canon not in seen:
                seen.append(canon)
        return tuple(seen)

    def validate(self, value: Any, owner: str) -> Any:
        """Return the normalized value, or raise TypeError/ValueError naming it."""
        where = f"{owner}(): parameter {self.name!r}"
        if self.type == "choice":
            for spelling, canon in self.choices:
                if type(spelling) is type(value) and spelling == value:
                    return canon
            options = ", ".join(repr(s) for s, _ in self.choices)
            raise ValueError(f"{where} must be one of {options}, got {value!r}")
        if self.type == "bool":
            if isinstance(value, bool) or (_is_number(value) and value in (0, 1)):
                return bool(value)
            raise TypeError(f"{where} must be a bool, got {type(value).__name__} {value!r}")
        if self.type == "int":
            if isinstance(value, bool) or not _is_integer(value):
                raise TypeError(f"{where} must be an int, got {type(value).__name__} {value!r}")
            value = int(value)
            if not 0 <= value < 2**64:
                raise ValueError(f"{where} must be in [0, 2**64), got {value}")
            return value
        if self.type in ("weight", "row") and not _is_number(value):
            return value  # an array: checked against x by the interface layer
        if self.type == "row" and hasattr(value, "shape") and not _is_scalar_type(value):
            return value  # a 0-d array stays an array (its gradient is asked for)
        if self.type == "optional_float" and value is None:
            return None
        if isinstance(value, bool) or not _is_number(value):
            raise TypeError(f"{where} must be a real number, got {type(value).__name__} {value!r}")
        try:
            value = float(value)
        except OverflowError:
            raise ValueError(f"{where} is too large for a float") from None
        if math.isnan(value):
            raise ValueError(f"{where} must not be NaN")
        self.check_value(value, where)
        return value

    def check_value(self, value: float, where: str) -> None:
        """Raise ValueError naming ``where`` unless the float ``value`` is in this parameter's range
        (the test of :meth:`validate` after the type checks; callers pass a value rounded to the
        precision it will be used in when that matters)."""
        # nonzero: also representable as a nonzero normal float32, the kernels' compute precision
        if self.nonzero and abs(value) < FLOAT32_TINY:
            raise ValueError(f"{where} must be nonzero (|value| >= {FLOAT32_TINY:.6g}), got {value!r}")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            op = ">" if self.low_open else ">="
            raise ValueError(f"{where} must be {op} {self.low}, got {value!r}")
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            op = "<" if self.high_open else "<="
            raise ValueError(f"{where} must be {op} {self.high}, got {value!r}")
        if not math.isfinite(value) and self.type != "optional_float":  # optional: inf means none
            raise ValueError(f"{where} must be finite, got {value!r}")

    def check_elements(self, values: Any, where: str) -> None:
        """:meth:`check_value` for every element of the array ``values`` (a host array of floats,
        already rounded to the precision they will be used in); NaN is refused.  One message,
        for the smallest bad value."""
        values = np.asarray(values, np.float64)
        if np.isnan(values).any():
            raise ValueError(f"{where} must not hold NaN")
        for v in np.unique(values):  # distinct values: an array parameter holds one per row
            self.check_value(float(v), where)

    # ------------------------------------------------------------ kernel view
    def as_kernel_float(self, value: Any) -> float:
        """The value as the float a kernel receives (None -> +inf, choice -> index, a per-row
        array -> NaN: the kernels read the array instead)."""
        if self.type == "row" and not isinstance(value, float):
            return math.nan
        if self.type == "choice":
            return float(self.canonical_choices().index(value))
        if self.type == "optional_float":
            return math.inf if value is None else float(value)
        return float(value)


def _is_number(value: Any) -> bool:
    try:
        import numbers

        return isinstance(value, numbers.Real) or (
            hasattr(value, "dtype") and getattr(value, "shape", None) == () and value.dtype.kind in "fiu"
        )
    except Exception:  # pragma: no cover - defensive
        return False


def _is_scalar_type(value: Any) -> bool:
    import numbers

    import numpy as np

    return isinstance(value, (numbers.Real, np.generic))


def _is_integer(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) or (
        hasattr(value, "dtype") and getattr(value, "shape", None) == () and value.dtype.kind in "iu"
    )


@dataclass(frozen=True)
class Rows:
    """How a row-wise record maps its row: the facts every backend's one row loop reads.

    ``family``: ``"softmax"`` (exp of the shifted row over the row's sum, a sum that reduces chunk
    by chunk, so a chunked row is never gathered) or a threshold family, ``"sparsemax"``,
    ``"entmax15"``, ``"entmax"`` (a threshold tau found from the whole row; each has its own
    macros in kernels/softmax.cuh).  ``log``: the output is the log of the family's
    (log_softmax).  ``negate``: the row is -x (softmin(x) = softmax(-x)), so dx changes sign.
    """

    family: str
    log: bool = False
    negate: bool = False

    def __post_init__(self) -> None:
        if self.family not in ("softmax", "sparsemax", "entmax15", "entmax"):
            raise ValueError(f"unknown row-wise family {self.family!r}")

    @property
    def threshold(self) -> bool:
        """A threshold family: the whole row is needed at once."""
        return self.family != "softmax"


@dataclass(frozen=True)
class Activation:
    """One catalogue entry.  Data only: backends key their functors by ``name``."""

    name: str
    kind: Kind
    summary: str
    formula: str
    derivative: str
    output_range: str
    grad_from: str = "x"  # which value the backward functor consumes: "x" or "y"
    aliases: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    # Cross-parameter rules: (left, op, right) with op in {"<", "<="}.
    constraints: tuple[tuple[str, str, str], ...] = ()
    defaults_note: str = ""  # where defaults differ between Keras, torch and JAX
    notes: str = ""  # numerics, edge cases, policies
    references: tuple[str, ...] = ()
    rows: Rows | None = None  # row-wise records: how the row is mapped
    gate: int = 0  # gated records: the half of x = a | b that is the gate, 0 (a) or 1 (b: glu)
    # A negative-branch slope drawn per element: the (lower, upper, flag) parameter names; with
    # the flag set, lower + (upper - lower) u, u from the counter hash of (seed, the element's
    # flat index in the whole array); without it (lower + upper) / 2 (rrelu).
    drawn_slope: tuple[str, str, str] | tuple[()] = ()

    def __post_init__(self) -> None:
        if self.grad_from not in ("x", "y"):
            raise ValueError(f"{self.name}: grad_from must be 'x' or 'y'")
        if (self.rows is None) == (self.kind is Kind.ROWWISE):
            raise ValueError(f"{self.name}: a row-wise record, and only one, says how it maps its rows")
        if self.gate not in (0, 1):
            raise ValueError(f"{self.name}: gate must be 0 or 1")
        if self.drawn_slope and not set(self.drawn_slope) <= {p.name for p in self.params}:
            raise ValueError(f"{self.name}: drawn_slope names parameters it does not have")
        names = [p.name for p in self.params] + [a for p in self.params for a in p.aliases]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate parameter names {names}")

    # ------------------------------------------------------------- binding
    # facts of the frozen record, computed once (every call asks)
    @functools.cached_property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @functools.cached_property
    def weighted(self) -> bool:
        """Does a call take a learnable weight (a ``"weight"`` parameter: prelu's slope), whose
        gradient the backward returns?"""
        return any(p.type == "weight" for p in self.params)

    @functools.cached_property
    def row_param(self) -> "Param | None":
        """The ``"row"`` parameter (entmax's alpha: a float or one value per row), if any."""
        return next((p for p in self.params if p.type == "row"), None)

    def bind(self, params: Mapping[str, Any]) -> "BoundParams":
        """Merge defaults, map parameter aliases, validate values.

        Unknown names raise TypeError listing the valid ones; bad values raise
        ValueError (or TypeError for a wrong type) naming the parameter.
        """
        if not params:  # the defaults: validated once per record
            bound = _DEFAULT_BOUND.get(id(self))
            if bound is not None and bound[0] is self:
                return bound[1]
        by_name = {p.name: p for p in self.params}
        alias_of = {a: p.name for p in self.params for a in p.aliases}
        given: dict[str, Any] = {}
        for key, value in params.items():
            canon = key if key in by_name else alias_of.get(key)
            if canon is None:
                valid = ", ".join(self._param_spellings()) or "none"
                raise TypeError(f"{self.name}() got an unexpected parameter {key!r}; valid parameters: {valid}")
            if canon in given:
                raise TypeError(f"{self.name}() got parameter {canon!r} twice (through an alias)")
            given[canon] = value
        values: dict[str, Any] = {}
        for p in self.params:
            if p.name in given:
                values[p.name] = p.validate(given[p.name], self.name)
            elif p.default is REQUIRED:
                raise TypeError(f"{self.name}() missing required parameter {p.name!r}")
            else:
                values[p.name] = p.default
        for left, op, right in self.constraints:
            a, b = values[left], values[right]
            ok = a < b if op == "<" else a <= b
            if not ok:
                raise ValueError(f"{self.name}(): parameter {left!r} ({a!r}) must be {op} {right!r} ({b!r})")
        if not params:
            bound = BoundParams(self, MappingProxyType(values))
            _DEFAULT_BOUND[id(self)] = (self, bound)
            return bound
        return BoundParams(self, values)

    def _param_spellings(self) -> list[str]:
        out = []
        for p in self.params:
            out.append(p.name + (f" (alias {', '.join(p.aliases)})" if p.aliases else ""))
        return out

    def describe(self) -> str:
        """A human-readable page: formula, derivative, parameters, notes."""
        lines = [f"{self.name}  ({self.kind.value})", "", self.summary, ""]
        if self.aliases:
            lines.append("aliases:    " + ", ".join(self.aliases))
        lines.append("formula:    " + self.formula)
        lines.append("derivative: " + self.derivative)
        lines.append("range:      " + self.output_range)
        lines.append("backward:   from " + ("the input x" if self.grad_from == "x" else "the output y"))
        if self.kind is not Kind.ROWWISE:
            lines.append("fp8 output: apply(..., out_dtype=float8_e4m3fn | float8_e5m2, scale=, amax=, rounding=) "
                         "-> Quantized(values, amax) in one pass (docs/semantics.md, FP8 output)")
        if self.params:
            lines.append("parameters:")
            for p in self.params:
                default = "required" if p.default is REQUIRED else repr(p.default)
                alias = f" (alias: {', '.join(p.aliases)})" if p.aliases else ""
                lines.append(f"  {p.name}{alias} = {default}: {p.doc}")
        if self.defaults_note:
            lines += ["", "defaults: " + self.defaults_note]
        if self.notes:
            lines += ["", "notes: " + self.notes]
        if self.references:
            lines += ["", "references:"] + [f"  - {r}" for r in self.references]
        return "\n".join(lines)


@dataclass(frozen=True)
class BoundParams:
    """Validated parameter values of one call, in the record's parameter order."""

    activation: Activation
    values: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def kernel_floats(self) -> tuple[float, ...]:
        """Scalar parameters as kernel floats, in record order (weights and ints skipped)."""
        got = self.__dict__.get("_kernel_floats")
        if got is None:  # worked out once: the defaults' BoundParams is shared by every call
            got = tuple(
                p.as_kernel_float(self.values[p.name])
                for p in self.activation.params
                if p.type not in ("weight", "int") and p.kernel
            )
            object.__setattr__(self, "_kernel_floats", got)
        return got

    def draws(self) -> bool:
        """Does this call draw a slope per element (the record's drawn_slope flag set)?  The draw
        keys on the element's flat index in the whole array."""
        slope = self.activation.drawn_slope
        return bool(slope) and bool(self.values[slope[2]])

    def seed(self) -> int:
        """The integer (seed) parameter, 0 when the record has none."""
        got = self.__dict__.get("_seed")
        if got is None:  # worked out once, as kernel_floats
            got = next((int(self.values[p.name]) for p in self.activation.params if p.type == "int"), 0)
            object.__setattr__(self, "_seed", got)
        return got


class Registry:
    """Name -> record, with aliases; lookups that fail suggest close names."""

    def __init__(self, records: tuple[Activation, ...]):
        self._records: dict[str, Activation] = {}
        self._lookup: dict[str, Activation] = {}
        for rec in records:
            for key in (rec.name, *rec.aliases):
                if key in self._lookup:
                    raise ValueError(f"duplicate activation name or alias {key!r}")
                self._lookup[key] = rec
            self._records[rec.name] = rec

    def __iter__(self):
        return iter(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _normalize(name) in self._lookup

    def names(self, kind: Kind | str | None = None) -> list[str]:
        return [r.name for r in self._records.values() if kind is None or r.kind == Kind(kind)]

    def all_spellings(self) -> list[str]:
        return list(self._lookup)

    def get(self, name: Any) -> Activation:
        if type(name) is str:  # the common case first: a spelling as given, no normalizing
            rec = self._lookup.get(name)
            if rec is not None:
                return rec
        if isinstance(name, Activation):
            return name
        if not isinstance(name, str):
            raise TypeError(f"activation name must be a str, got {type(name).__name__}")
        rec = self._lookup.get(name)  # a canonical spelling as given: no normalizing
        if rec is None:
            rec = self._lookup.get(_normalize(name))
        if rec is None:
            close = difflib.get_close_matches(_normalize(name), list(self._lookup), n=4, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            shown = name if len(name) <= 60 else name[:57] + "..."
            raise ValueError(
                f"unknown activation {shown!r}{hint} (activations.names() lists all {len(self)})"
            )
        return rec


def _normalize(name: str) -> str:
    # Accept "LeakyReLU"-ish spellings from users only through explicit aliases;
    # here just case and dashes: "Leaky-ReLU" -> "leaky_relu".
    return name.strip().lower().replace("-", "_")
