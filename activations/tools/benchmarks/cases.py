"""The case grid: what is measured, on which shapes, and how many bytes it moves.

A :class:`Case` is one (activation, parameters, direction, dtype, shape)
cell.  Every provider (our backends, the peers, the copy ceiling) is timed on
the same inputs of a case, interleaved, so ratios within a case are robust to
a noisy host.  Presets:

* ``quick``: float32 at 2^20, forward and backward, for the whole
  catalogue, two softmax shapes and the call overhead; about a minute.
* ``default``: what fits a few minutes on a CPU (forward and backward,
  2^16..2^24, softmax shapes, 16-bit dtypes on a few activations), or the
  same with 2^26 elements on a GPU.
* ``full``: 2^10..2^28 (2^26 on a CPU), every dtype, fused bias.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ... import _dtypes
from ...catalogue import REGISTRY
from ...registry import REQUIRED, Kind

FORWARD, BACKWARD = "forward", "backward"
DIRECTIONS = (FORWARD, BACKWARD)
PRESETS = ("quick", "default", "full")

#: parameters for activations whose record has required ones (others use their defaults)
REQUIRED_PARAMS: dict[str, dict[str, Any]] = {"threshold": {"threshold": 0.0, "value": -1.0}}
#: extra variants measured besides the defaults: (name, params)
VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (("gelu", {"approximate": "tanh"}),)
#: activations defined only on part of the line: the inputs are drawn there
POSITIVE_DOMAIN = frozenset({"log1mexp"})

#: softmax-family shapes (rows, row length), from many short rows to a few long ones
SOFTMAX_SHAPES: tuple[tuple[int, int], ...] = (
    (65536, 32),
    (65536, 256),
    (16384, 1024),
    (4096, 4096),
    (1024, 16384),
    (256, 65536),
    (64, 262144),
)
#: activations swept over every size (bandwidth-vs-size plots) in the default grid
SWEEP_NAMES = ("relu", "sigmoid", "tanh", "gelu", "silu")
#: activations measured in the 16-bit and float64 dtypes in the default grid
DTYPE_NAMES = ("relu", "gelu", "silu", "softmax", "swiglu")
#: activations measured with a fused bias in the default and full grids
BIAS_NAMES = ("relu", "gelu", "silu")
#: row length of the fused-bias and gated cases (rows follow from the size)
ROW = 4096


@dataclass(frozen=True)
class Case:
    """One measured cell.  ``shape`` is the input's shape (gated: both halves)."""

    name: str
    direction: str
    dtype: str
    shape: tuple[int, ...]
    params: tuple[tuple[str, Any], ...] = ()
    bias: bool = False
    out: bool = True  # our backends write into a preallocated output
    tag: str = ""  # "overhead" for the tiny-array call-cost cases

    @property
    def record(self):
        return REGISTRY.get(self.name)

    @property
    def kind(self) -> str:
        return self.record.kind.value

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return _dtypes.from_name(self.dtype).itemsize

    @property
    def label(self) -> str:
        """Name with its non-default parameters: ``gelu[approximate=tanh]``."""
        shown = [(k, v) for k, v in self.params if k not in REQUIRED_PARAMS.get(self.name, {})]
        if not shown:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in shown)}]"

    @property
    def size_label(self) -> str:
        if len(self.shape) == 1:
            n = self.shape[0]
            return f"2^{n.bit_length() - 1}" if n > 0 and n & (n - 1) == 0 else str(n)
        return "x".join(str(s) for s in self.shape)

    @property
    def title(self) -> str:
        """What the progress bar shows: ``gelu backward float32 2^20`` (the call-cost cases say so)."""
        what = "call cost" if self.tag == "overhead" else self.size_label
        return f"{self.label} {self.direction} {self.dtype} {what}"

    def bytes(self) -> int:
        """Bytes read once plus bytes written once (the effective-bandwidth convention).

        Forward: x in, y out.  Backward: x and dy in, dx out.  Gated outputs are
        half the input.  A fused bias adds one row of reads (and of dbias
        writes in the backward).  Temporaries are never counted.
        """
        n, s = self.numel, self.itemsize
        kind = self.record.kind
        if kind is Kind.GATED:
            elems = n + n // 2 if self.direction == FORWARD else n + n // 2 + n
        else:
            elems = 2 * n if self.direction == FORWARD else 3 * n
        if self.bias:
            elems += self.shape[-1] * (1 if self.direction == FORWARD else 2)
        return elems * s

    def key(self) -> tuple:
        return (self.label, self.direction, self.dtype, self.shape, self.bias, self.out, self.tag)


def default_params(name: str) -> dict[str, Any]:
    rec = REGISTRY.get(name)
    params = dict(REQUIRED_PARAMS.get(rec.name, {}))
    missing = [p.name for p in rec.params if p.default is REQUIRED and p.name not in params]
    if missing:  # a new record with a required parameter needs an entry above
        raise ValueError(f"benchmarks: no value for the required parameters {missing} of {rec.name}")
    return params


def _variants(names: Iterable[str]) -> list[tuple[str, tuple[tuple[str, Any], ...]]]:
    out = []
    for name in names:
        base = default_params(name)
        out.append((name, tuple(sorted(base.items()))))
        for vname, vparams in VARIANTS:
            if vname == name:
                out.append((name, tuple(sorted({**base, **vparams}.items()))))
    return out


def pow2(exponents: Iterable[int]) -> list[int]:
    return [1 << int(e) for e in exponents]


@dataclass
class GridSpec:
    """Knobs of a grid; None means the preset's choice."""

    preset: str = "default"
    device: str = "cpu"  # "cpu" or "gpu"
    names: Sequence[str] | None = None
    dtypes: Sequence[str] | None = None
    sizes: Sequence[int] | None = None  # elements (elementwise, gated)
    shapes: Sequence[tuple[int, int]] | None = None  # softmax family
    directions: Sequence[str] | None = None
    overhead: bool = True
    bias: bool | None = None
    extra: dict = field(default_factory=dict)


def _canonical_names(names: Sequence[str] | None) -> list[str] | None:
    if names is None:
        return None
    out: list[str] = []
    for n in names:
        canon = REGISTRY.get(n).name  # ValueError with suggestions for a typo
        if canon not in out:
            out.append(canon)
    return out


def build_grid(spec: GridSpec) -> list[Case]:
    """The list of cases of a preset, filtered by the spec's names/dtypes/sizes."""
    if spec.preset not in PRESETS:
        raise ValueError(f"unknown preset {spec.preset!r}; valid: {', '.join(PRESETS)}")
    gpu = spec.device == "gpu"
    chosen = _canonical_names(spec.names)
    dirs = tuple(spec.directions) if spec.directions else DIRECTIONS
    p = _preset(spec.preset, gpu)
    # explicit sizes or shapes replace the preset's, including where the extra dtypes run
    if spec.sizes is not None:
        sizes = sorted(set(spec.sizes))
        p.update(ew={d: sizes for d in DIRECTIONS}, gated={d: sizes for d in DIRECTIONS}, sweep=[],
                 bias=[n for n in sizes if n >= ROW] if spec.bias else [], extra_dtypes=[])
    if spec.shapes is not None:
        p.update(rw={d: [tuple(s) for s in spec.shapes] for d in DIRECTIONS}, extra_dtypes=[])
    if spec.bias is False:
        p.update(bias=[])
    if spec.bias and not p["bias"]:
        p.update(bias=[1 << 20])

    cases: list[Case] = []

    def add(name, params, direction, dtype, shape, bias=False):
        cases.append(Case(name, direction, dtype, tuple(int(s) for s in shape), params, bias))

    def dtype_cells(name: str, base: list[str], extra_at) -> list[tuple[str, Any]]:
        """(dtype, where): base dtypes everywhere (None), the extra dtypes at one size/shape."""
        if spec.dtypes is not None:
            return [(d, None) for d in spec.dtypes if _dtype_ok(d)]
        cells = [(d, None) for d in base]
        if name in p["dtype_names"] and extra_at is not None:
            cells += [(d, extra_at) for d in p["extra_dtypes"] if d not in base]
        return [(d, at) for d, at in cells if _dtype_ok(d)]

    for kind, table_key, to_shape in (
        (Kind.ELEMENTWISE, "ew", lambda n: (n,)),
        (Kind.GATED, "gated", _rows),
        (Kind.ROWWISE, "rw", tuple),
    ):
        for name, params in _variants(REGISTRY.names(kind)):
            if chosen is not None and name not in chosen:
                continue
            for direction in dirs:
                where = list(p[table_key].get(direction, ()))
                if kind is Kind.ELEMENTWISE and direction == FORWARD and name in SWEEP_NAMES:
                    where = sorted(set(where) | set(p["sweep"]))
                if kind is Kind.ROWWISE and name in SORTED_ROWS and spec.shapes is None and spec.preset != "full":
                    where = [s for s in where if s in SPARSEMAX_SHAPES] or where[:1]  # sort-based: slow
                if not where:
                    continue
                extra_at = p["extra_at"].get(table_key) if direction == FORWARD else None
                for dtype, at in dtype_cells(name, p["base_dtypes"][table_key], extra_at):
                    for w in ([at] if at is not None else where):
                        add(name, params, direction, dtype, to_shape(w))
    for name in BIAS_NAMES:
        if chosen is not None and name not in chosen:
            continue
        params = tuple(sorted(default_params(name).items()))
        for direction in dirs:
            for n in p["bias"]:
                add(name, params, direction, "float32", _rows(n), bias=True)

    if spec.overhead and FORWARD in dirs:
        cases += overhead_cases(chosen)
    return cases


#: sparsemax sorts every row: the shapes it is measured on outside the full grid
SPARSEMAX_SHAPES = ((65536, 256), (4096, 4096), (1024, 1024), (64, 16384))
#: the row-wise maps whose CPU paths sort every row (slow: measured on SPARSEMAX_SHAPES)
SORTED_ROWS = ("sparsemax", "entmax15")


def _preset(preset: str, gpu: bool) -> dict[str, Any]:
    """Sizes per kind and direction, dtypes, and where the extra dtypes are measured."""
    f32 = ["float32"]
    if preset == "quick":
        return dict(
            ew={FORWARD: pow2([20]), BACKWARD: pow2([20])}, sweep=[],
            gated={FORWARD: pow2([20]), BACKWARD: pow2([20])},
            rw={FORWARD: [(1024, 1024), (64, 16384)], BACKWARD: [(1024, 1024)]}, bias=[],
            base_dtypes={"ew": f32, "gated": f32, "rw": f32}, dtype_names=(), extra_dtypes=[], extra_at={},
        )
    if preset == "default":
        big = 26 if gpu else 24
        base = ["float32", "bfloat16"] if gpu else f32
        return dict(
            ew={FORWARD: pow2([16, big]), BACKWARD: pow2([big])},
            sweep=pow2(range(10, big + 1, 2)),
            gated={FORWARD: pow2([big]), BACKWARD: pow2([big])},
            rw={FORWARD: list(SOFTMAX_SHAPES), BACKWARD: [(4096, 4096)]},
            bias=pow2([24]),
            base_dtypes={"ew": base, "gated": base, "rw": base},
            dtype_names=DTYPE_NAMES,
            extra_dtypes=["bfloat16", "float16", "float64"],
            # 16-bit NumPy peers are slow (ml_dtypes loops): one mid size on a CPU
            extra_at={"ew": 1 << (big if gpu else 22), "gated": 1 << 22, "rw": (4096, 4096)},
        )
    top = 28 if gpu else 26
    every = pow2(range(10, top + 1, 2))
    all_dtypes = [d.name for d in _dtypes.SUPPORTED]
    return dict(
        ew={FORWARD: every, BACKWARD: every}, sweep=[],
        gated={FORWARD: every[3:], BACKWARD: every[3:]},
        rw={FORWARD: list(SOFTMAX_SHAPES), BACKWARD: list(SOFTMAX_SHAPES)},
        bias=pow2([20, 24] + ([28] if gpu else [])),
        base_dtypes={"ew": all_dtypes, "gated": all_dtypes, "rw": all_dtypes},
        dtype_names=(), extra_dtypes=[], extra_at={},
    )


def overhead_cases(names: Sequence[str] | None = None) -> list[Case]:
    """Tiny arrays: what one call costs in Python and dispatch, per backend."""
    picked = [n for n in ("relu", "gelu", "softmax") if names is None or n in names]
    if names is not None and not picked:
        picked = [names[0]]
    cases = []
    for name in picked:
        rec = REGISTRY.get(name)
        shape = (1, 8) if rec.kind is not Kind.ELEMENTWISE else (8,)
        params = tuple(sorted(default_params(name).items()))
        cases.append(Case(name, FORWARD, "float32", shape, params, out=True, tag="overhead"))
        cases.append(Case(name, FORWARD, "float32", shape, params, out=False, tag="overhead"))
        cases.append(Case(name, BACKWARD, "float32", shape, params, out=True, tag="overhead"))
    return cases


def _rows(n: int) -> tuple[int, int]:
    """A 2-D shape of n elements with rows of ROW (or n for small n)."""
    cols = min(ROW, n)
    return (max(1, n // cols), cols)


def _dtype_ok(name: str) -> bool:
    try:
        _dtypes.from_name(name)
    except ValueError:
        return False
    return True


def parse_size(text: str) -> int:
    """'2^20', '20' (an exponent when <= 40), '1048576' -> elements."""
    t = text.strip().lower().replace("**", "^")
    if t.startswith("2^"):
        return 1 << int(t[2:])
    v = int(t)
    return 1 << v if v <= 40 else v


def parse_shape(text: str) -> tuple[int, int]:
    parts = text.lower().replace(",", "x").split("x")
    if len(parts) != 2:
        raise ValueError(f"shape {text!r}: expected ROWSxCOLS, e.g. 4096x4096")
    return int(parts[0]), int(parts[1])
