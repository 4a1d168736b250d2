"""The compiled CPU engine (``kernels/cpu/engine.cpp``): loading it and calling it.

The package's build compiles the engine three times, as the extension modules
``_engine_avx512`` (x86-64-v4), ``_engine_avx2`` (x86-64-v3: AVX2 and FMA) and
``_engine_baseline`` (x86-64), all inside this package.  The baseline module
says which of them this CPU runs; the best one is imported, or a lower one
named by ``ACTIVATIONS_CPU_ISA`` (``avx512``, ``avx2`` or ``baseline``).  Nothing
is compiled, written or loaded from anywhere else at run time.  When the
modules are missing (the package was installed where no C++ compiler was
found), :func:`module` is None, :data:`WHY_NOT` says why, and the backend uses
the NumPy fallback.

The engine covers every call of the catalogue: every dtype, 0-d and empty
arrays, any axis, masks, bias, prelu's weight.  It takes C-contiguous arrays
and writes a C-contiguous output that does not overlap its inputs other than
being one of them exactly (the backend arranges both).  A call releases the
GIL, and a KeyboardInterrupt arrives when it has finished: an output is
written whole or not at all.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import os
import threading
from types import ModuleType
from typing import Any

import numpy as np

from ... import _environ, _fp8
from ...registry import Kind
from .. import Call, Grads

#: instruction sets the engine is built for, best first
ISAS: tuple[str, ...] = ("avx512", "avx2", "baseline")
ISA_VAR = "ACTIVATIONS_CPU_ISA"
THREADS_VAR = "ACTIVATIONS_NUM_THREADS"

#: why the engine is not in use ("" while it is, or before the first call)
WHY_NOT: str = ""
#: for `python -m activations info`: the instruction set in use and the ones available
DETAIL: str = ""

_KIND_CODES = {Kind.ELEMENTWISE: 0, Kind.GATED: 1, Kind.ROWWISE: 2}
_DTYPE_CODES: dict[str, int] = {"float16": 0, "bfloat16": 1, "float32": 2, "float64": 3}  # by dtype name
_CODE_OF: dict[np.dtype, int] = {}  # by dtype (dtype.name is slow to compute per call)


def _dtype_code(dtype: np.dtype) -> int:
    code = _CODE_OF.get(dtype)
    if code is None:
        code = _CODE_OF[dtype] = _DTYPE_CODES[dtype.name]
    return code

_module: ModuleType | None = None
_ops: dict[Kind, dict[str, int]] = {}
_state: tuple[str | None, bool] | None = None  # (ACTIVATIONS_CPU_ISA it was loaded for, usable)
_lock = threading.Lock()


def _import(isa: str) -> ModuleType:
    return importlib.import_module(f"{__package__}._engine_{isa}")


def supported_isas() -> tuple[str, ...]:
    """The instruction sets of the engine this CPU can run, best first (empty without the engine)."""
    try:
        return tuple(_import("baseline").cpu_supports())
    except ImportError:
        return ()


def _choose(forced: str | None) -> tuple[str, str]:
    """(instruction set to load, note for `info`)."""
    supported = supported_isas()
    if not supported:
        raise ImportError("the engine's baseline module is missing")
    if forced is None:
        return supported[0], ""
    if forced not in ISAS:
        raise ValueError(f"{ISA_VAR}={forced!r} is not one of {', '.join(ISAS)}")
    allowed = ISAS[ISAS.index(forced):]
    for isa in supported:
        if isa in allowed:
            note = "" if isa == forced else f" ({ISA_VAR}={forced}, which this CPU does not run)"
            return isa, note
    return "baseline", ""


def module() -> ModuleType | None:
    """The engine's extension module for this CPU (and ACTIVATIONS_CPU_ISA), or None."""
    global _state
    forced = _environ.get(ISA_VAR) or None
    if _state is None or _state[0] != forced:
        with _lock:
            if _state is None or _state[0] != forced:
                _state = (forced, _load(forced))
    return _module if _state[1] else None


def _load(forced: str | None) -> bool:
    global _module, _ops, WHY_NOT, DETAIL
    try:
        isa, note = _choose(forced)
        mod = _import(isa)
    except ImportError as exc:
        _module, WHY_NOT = None, (
            f"the compiled CPU engine is not installed ({exc}); the package was built without it, most "
            "likely because no C++ compiler was found at install time: install g++ (or clang++) and "
            "reinstall the package"
        )
        return False
    ops = {kind: {name: i for i, name in enumerate(mod.op_names(code))} for kind, code in _KIND_CODES.items()}
    _module, _ops = mod, ops
    WHY_NOT = ""
    DETAIL = f"{isa}{note}; built for {', '.join(i for i in ISAS if _available(i))}"
    return True


def _available(isa: str) -> bool:
    try:
        return importlib.util.find_spec(f"{__package__}._engine_{isa}") is not None
    except (ImportError, ValueError):
        return False


# ------------------------------------------------------------------- threads
_threads: tuple[str | None, int] = ("", 0)  # (ACTIVATIONS_NUM_THREADS as last read, thread count)


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads() -> int:
    """ACTIVATIONS_NUM_THREADS clamped to [1, 4 x cores] (default: the cores), read again only when
    the variable changes."""
    global _threads
    env = _environ.get(THREADS_VAR)
    if env != _threads[0] or not _threads[1]:
        limit = 4 * cores()
        try:
            count = int(env) if env else cores()
        except ValueError:
            count = cores()
        _threads = (env, max(1, min(count, limit)))
    return _threads[1]


# --------------------------------------------------------------------- calls
def _shape3(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :])


def _contiguous(a: Any, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def _run(call: Call, x: np.ndarray, out: np.ndarray, dy: np.ndarray | None, backward: bool):
    """Run ``call`` with x (C-contiguous), writing ``out``; (dbias, dweight) float64 sums or None."""
    mod = _module
    kind = call.record.kind
    dtype = x.dtype
    shape = x.shape if x.ndim else (1,)
    channels = shape[-1] or 1
    if kind is Kind.ELEMENTWISE:
        outer, mid, inner = 1, x.size, 1
    elif kind is Kind.GATED:
        (outer, mid), inner = call.gated_rows(), 1
    else:
        outer, mid, inner = _shape3(shape, call.axis)
    p = call.params.kernel_floats()
    p0, p1, p2 = (tuple(p) + (0.0, 0.0, 0.0))[:3]
    bias = None if call.bias is None else _contiguous(call.bias, dtype)
    weight = call.weight
    if weight is not None and isinstance(weight, float):
        p0, weight = weight, None  # a float weight is the kernel's first float
    elif weight is not None:
        weight = _contiguous(weight, dtype)
    if call.per_row is not None:  # entmax's alpha, one float64 per row (rows in (outer, inner) order)
        weight = _contiguous(call.per_row, np.float64).reshape(-1)
    where = None
    if call.where is not None:
        where = np.ascontiguousarray(np.broadcast_to(call.where, x.shape))
        if np.may_share_memory(where, out):
            where = where.copy()
    dbias = dweight = None
    if backward:
        if bias is not None:
            dbias = np.zeros(bias.size, np.float64)
        if call.weight is not None or call.per_row is not None:
            dweight = np.zeros(1 if weight is None else weight.size, np.float64)
    if x.size == 0:
        return dbias, dweight
    mod.run(_KIND_CODES[kind], _ops[kind][call.name], _dtype_code(dtype), int(backward), threads(),
            x, out, dy, bias, weight, where, dbias, dweight, outer, mid, inner, channels,
            p0, p1, p2, call.params.seed() & 0xFFFFFFFFFFFFFFFF)
    return dbias, dweight


def quantize(call: Call) -> "_fp8.Quantized":
    """``call`` (elementwise or gated, with ``call.fp8``) as FP8 codes and amax, in one pass."""
    req = call.fp8
    x = np.ascontiguousarray(call.x)
    dtype = x.dtype
    kind = call.record.kind
    values = np.empty(call.out_shape, req.format.dtype)
    amax = np.zeros(req.amax_shape(call.out_shape), np.uint32)
    if x.size == 0 or values.size == 0:
        return _fp8.Quantized(values, amax.view(np.float32))
    if kind is Kind.ELEMENTWISE:
        outer, mid = 1, x.size
    else:
        outer, mid = call.gated_rows()
    p = call.params.kernel_floats()
    p0, p1, p2 = (tuple(p) + (0.0, 0.0, 0.0))[:3]
    bias = None if call.bias is None else _contiguous(call.bias, dtype)
    weight = call.weight
    if weight is not None and isinstance(weight, float):
        p0, weight = weight, None
    elif weight is not None:
        weight = _contiguous(weight, dtype)
    cols, groups = req.segments(call.out_shape)
    _module.run_fp8(_KIND_CODES[kind], _ops[kind][call.name], _dtype_code(dtype), threads(), x, values.view(np.uint8),
                    amax.reshape(-1), bias, weight, outer, mid, x.shape[-1] if x.ndim and x.shape[-1] else 1,
                    p0, p1, p2, call.params.seed() & 0xFFFFFFFFFFFFFFFF, req.scale, req.noise_seed, cols, groups,
                    req.format.code, req.mode, int(req.stochastic))
    return _fp8.Quantized(values, amax.view(np.float32))


def _cast(sums: np.ndarray, dtype: np.dtype) -> np.ndarray:
    with np.errstate(over="ignore"):  # a float64 sum past the dtype's range rounds to inf
        return sums.astype(dtype)


def forward(call: Call, out: np.ndarray) -> None:
    """Compute ``call`` into ``out`` (C-contiguous, x's dtype, ``call.out_shape``)."""
    x = np.ascontiguousarray(call.x)
    _run(call, x, out, None, backward=False)


def backward(call: Call, dx: np.ndarray) -> Grads:
    """Fill ``dx`` (C-contiguous, x's shape and dtype) and return the gradients."""
    x = np.ascontiguousarray(call.x)
    dy = np.ascontiguousarray(call.dy)
    dbias, dweight = _run(call, x, dx, dy, backward=True)  # zeros for an empty x
    if call.per_row is not None:  # entmax's dalpha, one float64 per row
        dbias = None if dbias is None else _cast(dbias, x.dtype)
        return Grads(dx, dbias, None, dweight.reshape(np.shape(call.per_row)))
    if dbias is None and dweight is None:
        return Grads(dx)
    with np.errstate(over="ignore"):  # a float64 sum past the dtype's range rounds to inf
        if dbias is not None:
            dbias = dbias.astype(x.dtype)
        if dweight is not None:
            w = call.weight
            if isinstance(w, float):
                dweight = np.asarray(dweight[0], dtype=x.dtype)
            else:
                dweight = dweight.astype(x.dtype).reshape(np.shape(w))
    return Grads(dx, dbias, dweight)
