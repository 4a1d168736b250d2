"""The CUDA C kernels: where their source is, which entry points exist, how a module's text is built.

One generated module per (activation, dtype), per path for the row-wise ones (plus ``colsum``
per dtype for the dbias/dweight sums).  Its text is the expanded ``kernels/activations.cuh``
followed by ``ACT_*`` macro lines that name our own identifiers only (registry names, functor
names derived from them, dtype short names, path names): no user value ever becomes source text.
The same list drives the CuPy backend, ``python -m activations check-kernels`` and the CPU
harness of the tests.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..._paths import kernels_dir
from ...catalogue import REGISTRY
from ...registry import Kind

#: dtype short names with a kernel instantiation (activations._dtypes.SHORT_NAMES values)
KERNEL_DTYPES: tuple[str, ...] = ("f16", "bf16", "f32", "f64")

#: warp-path shapes (items per lane, lanes per row): rows of up to items * lanes elements
WARP_SHAPES: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 4), (1, 8), (1, 16), (1, 32), (2, 32), (4, 32), (8, 32), (16, 32), (32, 32),
)
#: float64 rows keep at most 16 values per lane (32 registers, twice that in the backward)
WARP_MAX_VALUES_F64 = 16

ROWWISE_PATHS = ("block", "long", "column")  # besides warp<items>x<lanes>
SPARSEMAX_PATHS = ("block", "long")
#: the row-wise maps with a threshold search (one block per row, block and long paths): the macro
#: family of each in kernels/softmax.cuh, from its record
THRESHOLD_FAMILIES = {r.name: r.rows.family.upper() for r in REGISTRY if r.rows is not None and r.rows.threshold}
COLSUM_STAGES = ("partial", "final")
#: modules that are no activation: the dbias/dweight column sums, the FP8 conversion alone
_UTILITY_MODULES = ("colsum", "fp8")

_IDENT = re.compile(r"[a-z][a-z0-9_]*\Z")
_INCLUDE = re.compile(r'^#include "([A-Za-z0-9_.]+)"\s*$', re.M)


def kernel_files() -> list[Path]:
    return sorted(kernels_dir().glob("*.cuh"))


@functools.lru_cache(maxsize=1)
def header_text() -> str:
    """``activations.cuh`` with our own ``#include "..."`` lines expanded (each file once), so a
    module is one self-contained text: CuPy's on-disk cache keys on it and sees every edit."""
    root = kernels_dir()
    seen: set[str] = set()

    def expand(name: str) -> str:
        if name in seen:
            return ""
        seen.add(name)
        text = (root / name).read_text()
        text = text.replace("#pragma once\n", "")
        return _INCLUDE.sub(lambda m: expand(m.group(1)), text)

    return expand("activations.cuh")


def functor_name(name: str) -> str:
    """Registry name -> functor struct in kernels/ (``leaky_relu`` -> ``LeakyRelu``)."""
    return "".join(part.capitalize() for part in name.split("_"))


def warp_shapes(dtype: str) -> tuple[tuple[int, int], ...]:
    return tuple(s for s in WARP_SHAPES if dtype != "f64" or s[0] <= WARP_MAX_VALUES_F64)


def warp_path(items: int, lanes: int) -> str:
    return f"warp{items}x{lanes}"


def entry(name: str, direction: str, dtype: str, path: str | None = None) -> str:
    """``act_<name>_<fwd|bwd>[_<path>]_<dtype>``, the extern "C" name of a kernel."""
    _check(name, dtype)
    if direction not in ("fwd", "bwd", "fp8"):
        raise ValueError(f"direction must be 'fwd', 'bwd' or 'fp8', got {direction!r}")
    middle = f"{direction}_{path}" if path else direction
    return f"act_{name}_{middle}_{dtype}"


def colsum_entry(stage: str, dtype: str) -> str:
    """``act_colsum_partial_<dt>`` (compute type out) or ``act_colsum_final_<dt>`` (the dtype out)."""
    if stage not in COLSUM_STAGES:
        raise ValueError(f"no column-sum stage {stage!r}")
    _check("colsum", dtype)
    return f"act_colsum_{stage}_{dtype}"


def fp8_encode_entry(dtype: str) -> str:
    """``act_fp8_encode_<dt>``: the FP8 conversion alone, for the tests."""
    _check("fp8", dtype)
    return f"act_fp8_encode_{dtype}"


def _check(name: str, dtype: str) -> None:
    if not _IDENT.match(name):
        raise ValueError(f"not a kernel identifier: {name!r}")
    if dtype not in KERNEL_DTYPES:
        raise ValueError(f"no kernels for dtype {dtype!r}; valid: {', '.join(KERNEL_DTYPES)}")


@dataclass(frozen=True)
class KernelModule:
    """The kernels of one activation (or ``colsum``) for one dtype: forward and backward.  Row-wise
    activations have one module per path, so a call compiles only the path it runs."""

    name: str
    dtype: str
    path: str | None = None

    def __post_init__(self) -> None:
        _check(self.name, self.dtype)
        if self.name not in _UTILITY_MODULES and self.name not in REGISTRY.names():
            raise ValueError(f"{self.name!r} is not a registry name")
        if self.path not in paths_of(self.name, self.dtype):
            raise ValueError(f"{self.name} ({self.dtype}) has no path {self.path!r}")

    @property
    def key(self) -> str:
        return "_".join(p for p in (self.name, self.path, self.dtype) if p)

    @property
    def kind(self) -> str:
        if self.name in _UTILITY_MODULES or self.name in THRESHOLD_FAMILIES:
            return self.name
        return REGISTRY.get(self.name).kind.value

    def lines(self) -> tuple[str, ...]:
        n, f, dt, kind = self.name, functor_name(self.name), self.dtype, self.kind
        if kind == "colsum":
            return (f"ACT_COLSUM({dt})",)
        if kind == "fp8":
            return (f"ACT_FP8_ENCODE({dt})",)
        if kind in (Kind.ELEMENTWISE.value, Kind.GATED.value):
            return (f"ACT_{kind.upper()}({n}, {f}, {dt})", f"ACT_{kind.upper()}_FP8({n}, {f}, {dt})")
        family = THRESHOLD_FAMILIES.get(kind, "SOFTMAX")
        if self.path.startswith("warp"):
            items, lanes = self.path[4:].split("x")
            return (f"ACT_SOFTMAX_WARP({n}, {f}, {dt}, {items}, {lanes})",)
        return (f"ACT_{family}_{self.path.upper()}({n}, {f}, {dt})",)

    def entries(self) -> tuple[str, ...]:
        if self.name == "colsum":
            return tuple(colsum_entry(stage, self.dtype) for stage in COLSUM_STAGES)
        if self.name == "fp8":
            return (fp8_encode_entry(self.dtype),)
        directions = ("fwd", "bwd") if self.path else ("fwd", "bwd", "fp8")
        return tuple(entry(self.name, d, self.dtype, self.path) for d in directions)

    def source(self) -> str:
        return header_text() + "\n// ---- generated entry points\n" + "\n".join(self.lines()) + "\n"


def paths_of(name: str, dtype: str) -> tuple[str | None, ...]:
    """The paths (module variants) of a module name: None for all but the row-wise ones."""
    if name in THRESHOLD_FAMILIES:
        return SPARSEMAX_PATHS
    if name not in _UTILITY_MODULES and REGISTRY.get(name).kind is Kind.ROWWISE:
        return tuple(warp_path(i, l) for i, l in warp_shapes(dtype)) + ROWWISE_PATHS
    return (None,)


def module_names() -> list[str]:
    return REGISTRY.names() + list(_UTILITY_MODULES)


def all_modules(dtypes: tuple[str, ...] = KERNEL_DTYPES) -> list[KernelModule]:
    """Every module the package can compile: all activations (every path) and colsum, per dtype."""
    return [KernelModule(name, dt, path) for dt in dtypes for name in module_names() for path in paths_of(name, dt)]


@functools.lru_cache(maxsize=1)
def cuda_include_dirs() -> tuple[str, ...]:
    """Directories holding cuda_fp16.h / cuda_bf16.h for NVRTC, which has no default include path:
    the CUDA runtime headers wheel (nvidia-cuda-runtime), else a local toolkit."""
    dirs: list[str] = []
    try:
        from cuda.pathfinder import find_nvidia_header_directory

        found = find_nvidia_header_directory("cudart")
        if found:
            dirs.append(str(found))
    except Exception:  # cuda-pathfinder missing or too old: fall back to a toolkit
        pass
    if not dirs:
        for root in (os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
            if root and (Path(root) / "include" / "cuda_fp16.h").is_file():
                dirs.append(str(Path(root) / "include"))
                break
    return tuple(dirs)


def compile_options() -> tuple[str, ...]:
    """NVRTC options of every module.  No fast math: the functors are written for IEEE
    expf/erfcf/... and test NaN with x != x."""
    return ("-std=c++17", *(f"-I{d}" for d in cuda_include_dirs()))
