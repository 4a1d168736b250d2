"""Numba CUDA kernels: one factory per loop, a spec per compiled kernel, a cache.

Every kernel the backend launches is named by a :class:`Spec` ``(kind, name,
dtype, variant)`` and built by :func:`build` into ``(python function,
argument types)``.  The backend compiles a spec once (:func:`get`, in memory
and, on the real target, on disk with ``cache=True``); ``check``
compiles the very same pair with ``cuda.compile_ptx`` and no device.

Storage and compute types: float16 and bfloat16 are loaded, converted to
float32, computed in float32 and rounded once on store; float32 and float64
compute in their own type.  bfloat16 arrays reach the kernels as uint16 views
and are converted with bit operations (round to nearest even), so the PTX is
self-contained (Numba's own bfloat16 type calls into a C++ shim linked at load
time) and ptxas can check it.

16-bit results are rounded once: a float32 result within 16 float32 ulps of a
16-bit rounding boundary is computed again by the float64 device functions,
rounded to float32 with round-to-odd and then to the 16-bit type, i.e. the
exact value rounded once (as ``store_once`` in kernels/functors.cuh).  A rare
branch (about 0.4% of float16 results); not for prelu and hard_sigmoid, whose
slopes and constants are defined in float32 (:func:`_redoes`).

Flags that only select a uniform branch (bias or not, mask or not, prelu's
scalar or per-channel weight, rrelu's training mode) are kernel arguments, not
variants: one compiled kernel per (name, dtype, direction) keeps the first-call
compile cost and the number of cached kernels down.
"""
from __future__ import annotations

import functools
import math
import threading
import time
import types as _pytypes
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import numba
from numba import cuda

from ...catalogue import REGISTRY
from ...registry import Kind
from . import functions as NF
from .functions import SIMULATOR

try:  # bit casts for bfloat16; libdevice is not part of the simulator
    from numba.cuda import libdevice as _libdevice
except Exception:  # pragma: no cover - simulator or an unusual install
    _libdevice = None

try:
    from numba.cuda import types as _nbtypes  # numba-cuda's own type objects
except Exception:  # pragma: no cover - the built-in numba.cuda of older numba
    from numba.core import types as _nbtypes

#: largest block of the shared-memory reductions (row-wise, dbias/dweight)
MAX_BLOCK = 256

ROWWISE: tuple[str, ...] = tuple(REGISTRY.names(Kind.ROWWISE))
DTYPES = ("f16", "bf16", "f32", "f64")
_STORAGE = {"f16": _nbtypes.float16, "bf16": _nbtypes.uint16, "f32": _nbtypes.float32, "f64": _nbtypes.float64}


@dataclass(frozen=True)
class Spec:
    """One compiled kernel.

    kind: ``elementwise`` | ``gated`` | ``rowwise`` (name = activation),
    ``colsum`` (name ``sum`` for dbias, ``prelu_dweight``), ``finalize``,
    ``cast`` (name = source dtype), ``gather`` / ``scatter`` (name =
    ``"<dst ndim>_<src ndim>"``).  variant: ``fwd`` / ``bwd`` or ``-``.
    """

    kind: str
    name: str
    dtype: str
    variant: str = "-"

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}:{self.dtype}:{self.variant}"


def compute_type(dtype: str):
    return numba.float64 if dtype == "f64" else numba.float32


def storage_type(dtype: str):
    if dtype in _STORAGE:
        return _STORAGE[dtype]
    return numba.from_dtype(np.dtype(dtype))


def _arr(dtype: str, ndim: int = 1, layout: str = "C"):
    return _nbtypes.Array(storage_type(dtype), ndim, layout)


# ----------------------------------------------------------- load / store
def _view_float_as_int(f):
    return np.float32(f).view(np.int32)


def _view_int_as_float(i):
    return np.int32(i).view(np.float32)


@functools.lru_cache(maxsize=None)
def _bitcasts(target: str) -> tuple[Callable, Callable]:
    """(float_as_int, int_as_float) of float32: libdevice on the GPU, a NumPy scalar view elsewhere."""
    if target == "cuda" and not SIMULATOR:
        return _libdevice.float_as_int, _libdevice.int_as_float
    return NF.device(_view_float_as_int, target), NF.device(_view_int_as_float, target)


def _f16_bits_to_float(h):
    """float16 bits -> float32, exactly (numba.njit has no float16 type)."""
    h = numba.int64(h)
    sign = (h & 0x8000) << 16
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:  # zero or subnormal: m 2^-24, exact in float32
        v = numba.float32(m) * numba.float32(2.0**-24)
        return -v if sign else v
    if e == 31:
        return int_as_float(numba.int32(sign | 0x7F800000 | (m << 13)))
    return int_as_float(numba.int32(sign | ((e + 112) << 23) | (m << 13)))


def _float_to_f16_bits(y):
    """float32 -> float16 bits, round to nearest even (as the GPU's cvt.rn.f16.f32)."""
    u = numba.int64(float_as_int(y)) & 0xFFFFFFFF
    sign = (u >> 16) & 0x8000
    a = u & 0x7FFFFFFF
    if a > 0x7F800000:
        return numba.uint16(sign | 0x7E00)
    if a >= 0x477FF000:  # 65520 and up (inf too): the tie above 65504 rounds to even, inf
        return numba.uint16(sign | 0x7C00)
    if a >= 0x38800000:  # normal: rebias, round the 13 dropped bits; a carry moves the exponent
        return numba.uint16(sign | ((a - 0x38000000 + 0x0FFF + ((a >> 13) & 1)) >> 13))
    if a <= 0x33000000:  # at most 2^-25, half the least subnormal: 0 (the tie to even)
        return numba.uint16(sign)
    s = 126 - (a >> 23)  # subnormal: (1.m 2^23) >> s, rounded to nearest even
    mant = (a & 0x7FFFFF) | 0x800000
    h = mant >> s
    rem = mant & ((1 << s) - 1)
    half = 1 << (s - 1)
    if rem > half or (rem == half and (h & 1) == 1):
        h += 1
    return numba.uint16(sign | h)


def _with(fn, target: str, **names):
    """``fn`` with ``names`` bound in its globals, as a device function of ``target``."""
    scope = dict(fn.__globals__, **names)
    return NF.device(_pytypes.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__), target)


def _loader(dtype: str, ct, target: str = "cuda") -> Callable:
    """Storage element -> compute type.  On the CPU float16 is stored as its bits (uint16)."""
    return _loader_for(dtype, ct, target)


def _storer(dtype: str, target: str = "cuda") -> Callable:
    """Compute type -> storage element (round to nearest even)."""
    return _storer_for(dtype, target)


@functools.lru_cache(maxsize=None)  # one dispatcher per conversion: each compiles once
def _loader_for(dtype: str, ct, target: str) -> Callable:
    if dtype == "bf16":
        int_as_float = _bitcasts(target)[1]
        i32, i64 = numba.int32, numba.int64

        def load_bf16(v):
            return int_as_float(i32(i64(v) << 16))  # bfloat16 is the top half of a float32

        return NF.device(load_bf16, target)
    if dtype == "f16" and target == "cpu":
        return _with(_f16_bits_to_float, target, int_as_float=_bitcasts(target)[1])

    def load(v):
        return ct(v)

    return NF.device(load, target)


@functools.lru_cache(maxsize=None)
def _storer_for(dtype: str, target: str) -> Callable:
    if dtype == "bf16":
        float_as_int = _bitcasts(target)[0]
        i64, u16 = numba.int64, numba.uint16

        def store_bf16(y):
            if y != y:
                return u16(0x7FC0)
            u = i64(float_as_int(y)) & 0xFFFFFFFF
            u += 0x7FFF + ((u >> 16) & 1)  # carries into the exponent exactly as RNE requires
            return u16(u >> 16)

        return NF.device(store_bf16, target)
    if dtype == "f16" and target == "cpu":
        return _with(_float_to_f16_bits, target, float_as_int=_bitcasts(target)[0])
    st = storage_type(dtype)

    def store(y):
        return st(y)

    return NF.device(store, target)


# ----------------------------------------------------- 16-bit, rounded once
def _redoes(name: str, dtype: str) -> bool:
    """Is a 16-bit result near a rounding boundary computed again in float64?  Not for a weighted
    record (prelu: its slope is given in float32) nor for device functions that say their values
    are defined in float32 (``redo_in_double = False``: hard_sigmoid's derived constants), as the
    functors of kernels/functors.cuh."""
    return (dtype in ("f16", "bf16") and not REGISTRY.get(name).weighted
            and getattr(getattr(NF, f"{name}_fwd"), "redo_in_double", True))


@functools.lru_cache(maxsize=None)
def _near_and_odd(dtype: str, target: str) -> tuple[Callable, Callable]:
    """(near(r, m), to_float_odd(e)) for a 16-bit storage type.

    near: float32 r is within 16 float32 ulps (|r| 2^-19, plus 2^-60 m) of a
    rounding boundary of the 16-bit type, where its own error could round it
    the wrong way.  m is 1, or for gated results the largest input: a result
    below 2^-60 of its inputs came from a tiny factor, perhaps a float32
    subnormal (glu's sigmoid(b) at b < -87) with few significant bits.
    to_float_odd: float64 -> float32 with round-to-odd, so that rounding
    that float32 to 16 bits rounds once.
    """
    load, store = _loader(dtype, numba.float32, target), _storer(dtype, target)
    float_as_int, int_as_float = _bitcasts(target)
    f32, f64, i32 = numba.float32, numba.float64, numba.int32
    rel, tiny = np.float32(2.0**-19), np.float32(2.0**-60)

    def near(r, m):
        d = abs(r) * rel + tiny * m
        return r == r and load(store(r - d)) != load(store(r + d))

    def to_float_odd(e):
        f = f32(e)
        if f64(f) == e or f != f:
            return f
        b = float_as_int(f)
        if abs(f64(f)) > abs(e):  # rounded away from zero: one step back toward it
            b = i32(b - i32(1))
        return int_as_float(i32(b | i32(1)))

    return NF.device(near, target), NF.device(to_float_odd, target)


def _widen(p):
    return (numba.float64(p[0]), numba.float64(p[1]), numba.float64(p[2]))


def _finisher(name: str, dtype: str, backward: bool, target: str) -> Callable:
    """finish(r, z, dy, p, a, i, seed) -> storage element of an elementwise result r (f(z), or dy f'(.));
    a is the element's slope (prelu, rrelu), i its index and seed rrelu's."""
    store = _storer(dtype, target)
    if not _redoes(name, dtype):

        def finish(r, z, dy, p, a, i, seed):
            return store(r)

        return NF.device(finish, target)
    f64 = numba.float64
    fns = NF.functions(f64, target)
    fwd, bwd = fns.fwd[name], fns.bwd[name]
    from_y = REGISTRY.get(name).grad_from == "y"
    near, odd = _near_and_odd(dtype, target)
    widen = NF.device(_widen, target)
    one = np.float32(1.0)
    # rrelu's slope is a real number of the float32 parameters: drawn again in float64
    wide_slope = _slope_kind(name) == 2
    slope64 = fns.rrelu_slope

    def finish(r, z, dy, p, a, i, seed):
        if near(r, one):  # rare: f again in float64, rounded once
            q = widen(p)
            if wide_slope:
                a = slope64(i, q, seed)
            z2 = f64(z)
            if backward:
                r = odd(bwd(f64(dy), fwd(z2, q, f64(a)) if from_y else z2, q, f64(a)))
            else:
                r = odd(fwd(z2, q, f64(a)))
        return store(r)

    return NF.device(finish, target)


def _gated_finisher(name: str, dtype: str, backward: bool, target: str) -> Callable:
    """Forward finish(y, a, b, p) -> storage of y; backward finish(da, db, a, b, dy, p) -> both stored."""
    store = _storer(dtype, target)
    redo = _redoes(name, dtype)
    f64 = numba.float64
    fns = NF.functions(f64, target) if redo else None
    near, odd = _near_and_odd(dtype, target) if redo else (None, None)
    widen = NF.device(_widen, target)
    one = np.float32(1.0)
    if backward and redo:
        gbwd = fns.bwd[name]

        def finish(da, db, a, b, dy, p):
            m = max(one, abs(a), abs(b), abs(dy))
            na, nb = near(da, m), near(db, m)
            if na or nb:  # rare: both again in float64, the near ones rounded once
                da2, db2 = gbwd(f64(dy), f64(a), f64(b), widen(p))
                if na:
                    da = odd(da2)
                if nb:
                    db = odd(db2)
            return store(da), store(db)

    elif backward:

        def finish(da, db, a, b, dy, p):
            return store(da), store(db)

    elif redo:
        gfwd = fns.fwd[name]

        def finish(y, a, b, p):
            if near(y, max(one, abs(a), abs(b))):
                y = odd(gfwd(f64(a), f64(b), widen(p)))
            return store(y)

    else:

        def finish(y, a, b, p):
            return store(y)

    return NF.device(finish, target)


_CPU_GRID = _pytypes.ModuleType("cpu_grid")  # `cuda` of a kernel run on the CPU: a grid of one thread
_CPU_GRID.grid = numba.njit(lambda dim: 0)
_CPU_GRID.gridsize = numba.njit(lambda dim: 1)


def _on_cpu(kernel):
    """The kernel's own code, compiled by numba.njit with a one-thread grid."""
    scope = dict(kernel.__globals__, cuda=_CPU_GRID)
    fn = _pytypes.FunctionType(kernel.__code__, scope, kernel.__name__, kernel.__defaults__, kernel.__closure__)
    return numba.njit(fn)


# ---------------------------------------------------------------- elementwise
def _slope_kind(name: str) -> int:
    """Where the `a` of the device functions comes from: 1 the weight (prelu), 2 a slope drawn
    per element (rrelu), 0 nowhere."""
    rec = REGISTRY.get(name)
    return 1 if rec.weighted else 2 if rec.drawn_slope else 0


def _element_input(name: str, dtype: str, target: str) -> Callable:
    """input(x, bias, w, i, c, Cw, p, seed, has_bias) -> (z, a): the prologue of every element-wise
    kernel.  z = x[i] + bias[c] in the compute type; a is prelu's slope (weight[c], weight[0], or
    the scalar in p[0] when Cw == 0), rrelu's drawn slope, else 0."""
    ct = compute_type(dtype)
    fns = NF.functions(ct, target)
    slope_kind = _slope_kind(name)
    rrelu_slope = fns.rrelu_slope
    load = _loader(dtype, ct, target)
    zero = fns.ZERO

    def element_input(x, bias, w, i, c, Cw, p, seed, has_bias):
        z = load(x[i])
        if has_bias:
            z += load(bias[c])
        a = zero
        if slope_kind == 1:
            if Cw == 0:
                a = p[0]
            else:
                a = load(w[c if Cw > 1 else 0])
        elif slope_kind == 2:
            a = rrelu_slope(i, p, seed)
        return z, a

    return NF.device(element_input, target)


def elementwise(name: str, dtype: str, backward: bool, target: str = "cuda"):
    """out[i] = f(x[i] + bias[i % C]), or dy[i] * f'(.) for the backward; grid-stride.

    C is the length of the last axis (1 for 0-d x); Cw the length of prelu's
    weight (C or 1), 0 when the weight is the scalar p[0].  ``target="cpu"``:
    the same kernel compiled by numba.njit (float16 as uint16 bits), see :func:`cpu_kernel`.
    """
    ct = compute_type(dtype)
    fns = NF.functions(ct, target)
    fwd, bwd = fns.fwd[name], fns.bwd[name]
    from_y = REGISTRY.get(name).grad_from == "y"
    element_input = _element_input(name, dtype, target)
    load = _loader(dtype, ct, target)
    finish = _finisher(name, dtype, backward, target)
    zero = fns.ZERO

    def kernel(x, dy, bias, w, out, n, C, Cw, p, seed, has_bias):
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        # column of i (bias and per-channel weight index) kept incrementally:
        # one 64-bit modulo per thread instead of one per element
        c = start % C
        dc = step % C
        for i in range(start, n, step):
            z, a = element_input(x, bias, w, i, c, Cw, p, seed, has_bias)
            g = zero
            if backward:
                g = load(dy[i])
                v = fwd(z, p, a) if from_y else z
                r = bwd(g, v, p, a)
            else:
                r = fwd(z, p, a)
            if z != z:  # NaN in, NaN out, whatever the branch structure of f
                r = z
            out[i] = finish(r, z, g, p, a, i, seed)
            c += dc
            if c >= C:
                c -= C

    if target == "cpu":
        return _on_cpu(kernel), None
    a = _arr(dtype)
    sig = (a, a, a, a, a, numba.int64, numba.int64, numba.int64, _nbtypes.UniTuple(ct, 3), numba.uint64, numba.boolean)
    return kernel, sig


# --------------------------------------------------------------- FP8 output
def _fp8_store(target: str):
    """store(q, amax, nan_seen, i, r, scale, fmt, noise_seed, cols, groups, mode): the FP8 code of
    r * scale into q[i] (fp8_encode, the port of kernels/fp8.cuh) and |r| (float32) into the amax
    of i's segment: an atomic max per element, NaN recorded apart (nan_seen[segment] = 1) because
    the atomic max of floats does not propagate NaN; the launcher folds the two."""
    fns = NF.functions(numba.float64, target)
    encode, counter_hash = fns.fp8_encode, fns.counter_hash

    def code_and_segment(q, i, r, scale, fmt, noise_seed, cols, groups, mode):
        noise = counter_hash(noise_seed, i) if fmt[4] != 0 else numba.uint64(0)
        q[i] = numba.uint8(encode(numba.float64(r) * scale, fmt[0], fmt[1], numba.uint64(fmt[2]),
                                  numba.uint64(fmt[3]), fmt[4] != 0, noise))
        if mode == 0:
            return 0
        row = i // cols
        return row if mode == 1 else row * groups + (i - row * cols) // 128

    code_and_segment = NF.device(code_and_segment, target)

    if target == "cuda":
        def store(q, amax, nan_seen, i, r, scale, fmt, noise_seed, cols, groups, mode):
            s = code_and_segment(q, i, r, scale, fmt, noise_seed, cols, groups, mode)
            m = numba.float32(abs(r))
            if m != m:
                nan_seen[s] = 1
            else:
                cuda.atomic.max(amax, s, m)
    else:  # one thread: a plain max
        def store(q, amax, nan_seen, i, r, scale, fmt, noise_seed, cols, groups, mode):
            s = code_and_segment(q, i, r, scale, fmt, noise_seed, cols, groups, mode)
            m = numba.float32(abs(r))
            if m != m:
                nan_seen[s] = 1
            elif m > amax[s]:
                amax[s] = m

    return NF.device(store, target)


def _fp8_sig() -> tuple:
    """q, amax, nan_seen, scale, fmt (mant, emin, max_code, nan_code, stochastic), noise seed, cols,
    groups, mode: the FP8 arguments every FP8 kernel takes after its own."""
    return (_nbtypes.Array(numba.uint8, 1, "C"), _nbtypes.Array(numba.float32, 1, "C"),
            _nbtypes.Array(numba.int32, 1, "C"), numba.float64, _nbtypes.UniTuple(numba.int64, 5), numba.uint64,
            numba.int64, numba.int64, numba.int64)


def elementwise_fp8(name: str, dtype: str, target: str = "cuda"):
    """The forward of :func:`elementwise` written as FP8 codes with the amax (docs/semantics.md)."""
    fwd = NF.functions(compute_type(dtype), target).fwd[name]
    element_input = _element_input(name, dtype, target)
    store = _fp8_store(target)

    def kernel(x, bias, w, n, C, Cw, p, seed, has_bias, q, amax, nan_seen, scale, fmt, noise_seed, cols, groups, mode):
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        c = start % C
        dc = step % C
        for i in range(start, n, step):
            z, a = element_input(x, bias, w, i, c, Cw, p, seed, has_bias)
            r = fwd(z, p, a)
            if z != z:
                r = z
            store(q, amax, nan_seen, i, r, scale, fmt, noise_seed, cols, groups, mode)
            c += dc
            if c >= C:
                c -= C

    if target == "cpu":
        return _on_cpu(kernel), None
    a = _arr(dtype)
    sig = (a, a, a, numba.int64, numba.int64, numba.int64, _nbtypes.UniTuple(compute_type(dtype), 3), numba.uint64,
           numba.boolean, *_fp8_sig())
    return kernel, sig


def _pair_input(dtype: str, target: str) -> Callable:
    """input(x, bias, i, Hi, C, has_bias) -> (ia, ib, a, b): the prologue of every gated kernel.
    Output element i reads a = x[ia] and b = x[ib] (ia = i + (i // Hi) Hi, ib = ia + Hi), each
    with its bias (along the last axis of the input, both halves) in the compute type."""
    load = _loader(dtype, compute_type(dtype), target)

    def pair_input(x, bias, i, Hi, C, has_bias):
        ia = i + (i // Hi) * Hi
        ib = ia + Hi
        a = load(x[ia])
        b = load(x[ib])
        if has_bias:
            a += load(bias[ia % C])
            b += load(bias[ib % C])
        return ia, ib, a, b

    return NF.device(pair_input, target)


def gated_fp8(name: str, dtype: str, target: str = "cuda"):
    """The forward of :func:`gated` written as FP8 codes with the amax."""
    fns = NF.functions(compute_type(dtype), target)
    gfwd = fns.fwd[name]
    pair_input = _pair_input(dtype, target)
    store = _fp8_store(target)
    nan = fns.NAN

    def kernel(x, bias, n, Hi, C, p, has_bias, q, amax, nan_seen, scale, fmt, noise_seed, cols, groups, mode):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            _, _, a, b = pair_input(x, bias, i, Hi, C, has_bias)
            y = gfwd(a, b, p)
            if a != a or b != b:
                y = nan
            store(q, amax, nan_seen, i, y, scale, fmt, noise_seed, cols, groups, mode)

    if target == "cpu":
        return _on_cpu(kernel), None
    a = _arr(dtype)
    sig = (a, a, numba.int64, numba.int64, numba.int64, _nbtypes.UniTuple(compute_type(dtype), 3), numba.boolean,
           *_fp8_sig())
    return kernel, sig


# -------------------------------------------------------------------- gated
def gated(name: str, dtype: str, backward: bool, target: str = "cuda"):
    """x viewed as (outer, 2H, inner): a = x[o, j, k], b = x[o, H + j, k]; any axis by strides.

    One thread per output element (o, j, k), flat index i; ``Hi = H * inner``
    gives ia = i + o * Hi and ib = ia + Hi.  The backward writes da and db.
    """
    ct = compute_type(dtype)
    fns = NF.functions(ct, target)
    gfwd, gbwd = fns.fwd[name], fns.bwd[name]
    load = _loader(dtype, ct, target)
    pair_input = _pair_input(dtype, target)
    finish = _gated_finisher(name, dtype, backward, target)
    nan = fns.NAN

    def kernel(x, dy, bias, out, n, Hi, C, p, has_bias):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            ia, ib, a, b = pair_input(x, bias, i, Hi, C, has_bias)
            bad = a != a or b != b
            if backward:
                g = load(dy[i])
                da, db = gbwd(g, a, b, p)
                if bad:
                    da = nan
                    db = nan
                out[ia], out[ib] = finish(da, db, a, b, g, p)
            else:
                y = gfwd(a, b, p)
                if bad:
                    y = nan
                out[i] = finish(y, a, b, p)

    if target == "cpu":
        return _on_cpu(kernel), None
    a = _arr(dtype)
    sig = (a, a, a, a, numba.int64, numba.int64, numba.int64, _nbtypes.UniTuple(ct, 3), numba.boolean)
    return kernel, sig


# ------------------------------------------------------------------ rowwise
def _block_sum(sh, v):
    """Sum of ``v`` over the block, through the shared array ``sh``; every thread gets it.

    A tree in shared memory, no warp shuffles (the simulator has none).  Every
    thread of the block must call it (it synchronizes); blockDim.x must be a
    power of two <= MAX_BLOCK.
    """
    t = cuda.threadIdx.x
    sh[t] = v
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if t < s:
            sh[t] += sh[t + s]
        cuda.syncthreads()
        s //= 2
    r = sh[0]
    cuda.syncthreads()  # sh is reused by the next reduction
    return r


def _block_max(sh, v):
    """Maximum of ``v`` over the block, NaN winning; as :func:`_block_sum`."""
    t = cuda.threadIdx.x
    sh[t] = v
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if t < s:
            o = sh[t + s]
            if o > sh[t] or o != o:
                sh[t] = o
        cuda.syncthreads()
        s //= 2
    r = sh[0]
    cuda.syncthreads()
    return r


block_sum, block_max = NF.device(_block_sum), NF.device(_block_max)


def rowwise(name: str, dtype: str, backward: bool):
    """One block per row (grid-stride over rows), rows along any axis.

    x is viewed as (outer, L, inner); row r = (o, k) has its j-th element at
    o*L*inner + k + j*inner.  Passes over the row re-read global memory:
    max, then the sum (softmax family) or the exact sparsemax threshold, then
    the output; the backward adds one reduction of dy.  The mask and the bias
    are kernel flags.  Masked entries are left out and get 0.  The softmax
    family's temperature and quiet flag are arguments: the row's values are
    v = +-x and its max m, the logits are shifted before the division,
    (v - m) / temp (softmax.cuh, ``shifted``), dx gets 1 / temp, and quiet adds an implicit
    value 0 (shift max(m, 0), exp((0 - shift) / temp) more in the sum).  entmax reads its alpha from
    ``temp`` (one for every row) or ``alphas[r]`` (``has_alphas``), and its backward writes the
    row's dalpha to ``dalpha[r]`` (kernels/softmax.cuh, entmax_rows, has the formulas).
    """
    ct = compute_type(dtype)
    fns = NF.functions(ct)
    load, store = _loader(dtype, ct), _storer(dtype)
    ZERO, ONE, INF, NAN = fns.ZERO, fns.ONE, fns.INF, fns.NAN
    rows = REGISTRY.get(name).rows
    sign = -ONE if rows.negate else ONE  # softmin(x) = softmax(-x)
    is_log, is_sparse, is_entmax = rows.log, rows.family == "sparsemax", rows.family == "entmax15"
    is_alpha = rows.family == "entmax"
    sqrt, HALF = NF.M.sqrt, fns.HALF
    exp, log, log1p, expm1 = NF.M.exp, NF.M.log, NF.M.log1p, NF.M.expm1
    steps = 30 if ct is numba.float32 else 60  # bisection steps of entmax (softmax.cuh kEntmaxSteps)
    nb = MAX_BLOCK
    i32 = numba.int32

    def _value(x, bias, i, C, has_bias):  # element i of the row's input, bias added
        v = load(x[i])
        if has_bias:
            v += load(bias[i % C])
        return v

    value = NF.device(_value)

    def _mass(x, bias, i, C, has_bias, a, inv, m, t):  # entmax: (1 + w)^(1/a), w = a (v - m) - t
        w = a * (value(x, bias, i, C, has_bias) - m) - t
        return exp(log1p(w) * inv) if w > -ONE else ZERO

    mass = NF.device(_mass)

    def _shifted(a, b, t):  # (a - b) / t, b >= a; a spread beyond the range halved: (a/2 - b/2) / t * 2
        d = a - b
        if t == ONE:
            return d
        return d / t if d > -INF else (a * HALF - b * HALF) / t * (ONE + ONE)

    shifted = NF.device(_shifted)
    # The softmax family works in float64 past each element's exp, in every dtype (softmax.cuh says
    # why; its 16-bit rows get the same accuracy from float and float pairs): e =
    # exp((v - m) / t) as a float64, from the float exp of the shifted logit rounded to the compute
    # type and the rounding put back, exp(q + c) = exp(q) (1 + c); the sums, y and dx in float64.
    f64 = numba.float64
    ONE64, INF64 = np.float64(1.0), np.float64(np.inf)

    def _shifted_exp(a, b, t):  # exp((a - b) / t) as a float64; b >= a
        d = f64(a) - f64(b)
        if not abs(d) < INF64:  # NaN, or -inf (masked): as the compute type gives it
            return f64(exp(shifted(a, b, t)))
        q = d if t == ONE else d / f64(t)
        qc = ct(q)
        if not qc > -INF:  # beyond the compute type's range: 0
            return f64(0.0)
        return f64(exp(qc)) * (ONE64 + (q - f64(qc)))

    shifted_exp = NF.device(_shifted_exp)

    def _shifted64(a, b, t):  # (a - b) / t in float64 (log_softmax's forward)
        d = f64(a) - f64(b)
        if not d > -INF64:  # NaN, or a float64 spread beyond the range: shifted halves it
            return f64(shifted(a, b, t))
        return d if t == ONE else d / f64(t)

    shifted64 = NF.device(_shifted64)

    def kernel(x, dy, bias, mask, out, nrows, L, inner, C, has_bias, has_mask, temp, quiet, alphas, dalpha,
               has_alphas):
        sh = cuda.shared.array(nb, ct)
        sh2 = cuda.shared.array(nb, ct)
        sh64 = cuda.shared.array(nb, numba.float64)
        t0 = cuda.threadIdx.x
        nt = cuda.blockDim.x
        for r in range(cuda.blockIdx.x, nrows, cuda.gridDim.x):
            o = r // inner
            base = o * L * inner + (r - o * inner)
            # pass 1: max of the unmasked entries; does the row have any?
            m = -INF
            mine = 0
            for j in range(t0, L, nt):
                i = base + j * inner
                if has_mask and not mask[i]:
                    continue
                v = value(x, bias, i, C, has_bias)
                if not is_alpha:  # entmax's temp is its alpha
                    v = sign * v
                mine = 1
                if v > m or v != v:
                    m = v
            m = block_max(sh, m)
            if cuda.syncthreads_or(i32(mine)) == 0:  # fully masked: outputs and gradients 0
                for j in range(t0, L, nt):
                    out[base + j * inner] = store(ZERO)
                if is_alpha and backward and has_alphas and t0 == 0:
                    dalpha[r] = ZERO
                continue
            if (is_sparse or is_entmax or is_alpha) and (m != m or m == INF or m == -INF):
                # the sparse family: NaN, +inf or all -inf give a NaN row
                for j in range(t0, L, nt):
                    out[base + j * inner] = store(NAN)
                if is_alpha and backward and has_alphas and t0 == 0:
                    dalpha[r] = NAN
                continue
            if is_alpha:
                # alpha-entmax: bisection on t in [0, 1 - n^-a], y = (1 + w)^(1/a), w = a (v - m) - t
                alpha = alphas[r] if has_alphas else temp
                a = alpha - ONE
                inv = ONE / a
                cnt = ZERO
                for j in range(t0, L, nt):
                    i = base + j * inner
                    if has_mask and not mask[i]:
                        continue
                    if value(x, bias, i, C, has_bias) > -INF:
                        cnt += ONE
                cnt = block_sum(sh, cnt)
                lo = ZERO
                hi = -expm1(-a * log(cnt))
                for step in range(steps + 1):  # the last pass: the sum at lo
                    mid = (lo + hi) * HALF if step < steps else lo
                    acc = ZERO
                    for j in range(t0, L, nt):
                        i = base + j * inner
                        if not has_mask or mask[i]:
                            acc += mass(x, bias, i, C, has_bias, a, inv, m, mid)
                    acc = block_sum(sh, acc)
                    if step < steps:
                        if acc >= ONE:
                            lo = mid
                        else:
                            hi = mid
                scale = ONE / acc
                mean = ZERO
                if backward:  # sum(g dy) / sum(g), g = y^(2 - alpha); dalpha's sums
                    e = ct(2.0) - alpha
                    gsum = gdy = ylogy = dyy = dyylogy = ZERO
                    for j in range(t0, L, nt):
                        i = base + j * inner
                        y = ZERO
                        if not has_mask or mask[i]:
                            y = mass(x, bias, i, C, has_bias, a, inv, m, lo) * scale
                        if y > ZERO:  # the support
                            d = load(dy[i])
                            ly = log(y)
                            g = exp(e * ly)
                            gsum += g
                            gdy += g * d
                            ylogy += y * ly
                            dyy += d * y
                            dyylogy += d * y * ly
                    gsum = block_sum(sh, gsum)
                    gdy = block_sum(sh2, gdy)
                    if gsum > ZERO:
                        mean = gdy / gsum
                    if has_alphas:
                        ylogy = block_sum(sh, ylogy)
                        dyy = block_sum(sh2, dyy)
                        dyylogy = block_sum(sh, dyylogy)
                        if t0 == 0:
                            dalpha[r] = (dyy - mean) / (a * a) - (dyylogy - mean * ylogy) / a if gsum > ZERO else ZERO
                for j in range(t0, L, nt):
                    i = base + j * inner
                    r_out = ZERO
                    if not has_mask or mask[i]:
                        y = mass(x, bias, i, C, has_bias, a, inv, m, lo) * scale
                        if not backward:
                            r_out = y
                        elif y > ZERO:
                            r_out = exp((ct(2.0) - alpha) * log(y)) * (load(dy[i]) - mean)
                    out[i] = store(r_out)
                continue
            if is_sparse:
                # tau: Newton on f(t) = sum max(z - t, 0) - 1 from t = -1 (z = v - m <= 0);
                # each step is (sum of z > t - 1) / count, the support shrinks monotonically
                # and the loop ends when it stops changing: the exact tau of the sorted form.
                tau = -ONE
                prev = -ONE
                for _ in range(L + 1):
                    cnt = ZERO
                    tot = ZERO
                    for j in range(t0, L, nt):
                        i = base + j * inner
                        if has_mask and not mask[i]:
                            continue
                        v = value(x, bias, i, C, has_bias)
                        z = v - m
                        if z > tau:
                            cnt += ONE
                            tot += z
                    cnt = block_sum(sh, cnt)
                    tot = block_sum(sh2, tot)
                    if cnt == prev:
                        break
                    prev = cnt
                    tau = (tot - ONE) / cnt
                s = ZERO
                if backward:  # sum of dy over the support, and its size
                    acc = ZERO
                    for j in range(t0, L, nt):
                        i = base + j * inner
                        if has_mask and not mask[i]:
                            continue
                        v = value(x, bias, i, C, has_bias)
                        if v - m > tau:
                            acc += load(dy[i])
                    s = block_sum(sh, acc) / prev
                for j in range(t0, L, nt):
                    i = base + j * inner
                    r_out = ZERO
                    if not has_mask or mask[i]:
                        v = value(x, bias, i, C, has_bias)
                        z = v - m - tau
                        if backward:
                            if z > ZERO:
                                r_out = load(dy[i]) - s
                        elif z > ZERO:
                            r_out = z
                    out[i] = store(r_out)
                continue
            if is_entmax:
                # tau of sum max(u - tau, 0)^2 = 1, u = (v - max) / 2: Newton's steps from t = -1
                # stay below tau; the closed form on S = {u > t} (the smaller root r of
                # sum_S (u - t - r)^2 = 1) is tau once every element of S lies above t + r
                # (softmax.cuh, entmax15_rows, has the argument)
                t = -ONE
                tau = -ONE
                for _ in range(200):
                    cnt = ZERO
                    a = ZERO
                    b = ZERO
                    lo = INF
                    for j in range(t0, L, nt):
                        i = base + j * inner
                        if has_mask and not mask[i]:
                            continue
                        v = value(x, bias, i, C, has_bias)
                        w = (v - m) * HALF - t
                        if w > ZERO:
                            cnt += ONE
                            a += w
                            b += w * w
                            if w < lo:
                                lo = w
                    cnt = block_sum(sh, cnt)
                    a = block_sum(sh2, a)
                    b = block_sum(sh, b)
                    lo = -block_max(sh2, -lo)
                    f = b - ONE
                    disc = a * a - cnt * f
                    root = f / (a + sqrt(disc)) if disc >= ZERO else INF
                    nxt = t + f / (a + a)
                    if lo > root or not nxt > t:
                        tau = t + (root if disc >= ZERO else ZERO)
                        break
                    t = nxt
                    tau = t
                s = ZERO
                if backward:  # sum(g dy) / sum(g), g = max(u - tau, 0)
                    acc = ZERO
                    gsum = ZERO
                    for j in range(t0, L, nt):
                        i = base + j * inner
                        if has_mask and not mask[i]:
                            continue
                        v = value(x, bias, i, C, has_bias)
                        g = (v - m) * HALF - tau
                        if g > ZERO:
                            gsum += g
                            acc += g * load(dy[i])
                    s = block_sum(sh, acc) / block_sum(sh2, gsum)
                for j in range(t0, L, nt):
                    i = base + j * inner
                    r_out = ZERO
                    if not has_mask or mask[i]:
                        v = value(x, bias, i, C, has_bias)
                        g = (v - m) * HALF - tau
                        if g > ZERO:
                            r_out = g * (load(dy[i]) - s) if backward else g * g
                    out[i] = store(r_out)
                continue
            # softmax family: sum of exp((v - max) / temp); quiet: the implicit value 0 joins the max
            if quiet and m < ZERO:
                m = ZERO
            acc = f64(0.0)
            for j in range(t0, L, nt):
                i = base + j * inner
                if has_mask and not mask[i]:
                    continue
                v = value(x, bias, i, C, has_bias)
                acc += shifted_exp(sign * v, m, temp)
            total = block_sum(sh64, acc)
            if quiet:
                total += shifted_exp(ZERO, m, temp)
            inv = ONE64 / total
            # log_softmax only; log(0) is -inf as on a GPU (Python's math.log, which the simulator
            # runs, raises there)
            logtotal = (math.log(total) if total > f64(0.0) else -INF64) if is_log else f64(0.0)
            s = f64(0.0)
            if backward:  # sum(dy * e) / total, or sum(dy) for log_softmax
                acc = f64(0.0)
                for j in range(t0, L, nt):
                    i = base + j * inner
                    if has_mask and not mask[i]:
                        continue
                    g = f64(load(dy[i]))
                    if is_log:
                        acc += g
                    else:
                        acc += g * shifted_exp(sign * value(x, bias, i, C, has_bias), m, temp)
                s = block_sum(sh64, acc)
                if not is_log:
                    s *= inv
            for j in range(t0, L, nt):
                i = base + j * inner
                r_out = ZERO
                if not has_mask or mask[i]:
                    v = sign * value(x, bias, i, C, has_bias)
                    if backward:
                        p = shifted_exp(v, m, temp) * inv
                        g = f64(load(dy[i]))
                        w = g - p * s if is_log else sign * p * (g - s)
                        r_out = ct(w if temp == ONE else w / f64(temp))
                    elif is_log:
                        r_out = ct(shifted64(v, m, temp) - logtotal)
                    else:
                        r_out = ct(shifted_exp(v, m, temp) * inv)
                out[i] = store(r_out)

    a = _arr(dtype)
    i64 = numba.int64
    # entmax's per-row alphas and dalphas in the compute type (the host's float64 values are already
    # rounded to it): no float64 instruction in a float32 kernel
    cta = _nbtypes.Array(ct, 1, "C")
    sig = (a, a, a, _arr("bool"), a, i64, i64, i64, i64, numba.boolean, numba.boolean, ct, ct, cta, cta, numba.boolean)
    return kernel, sig


# ------------------------------------------------------- dbias / dweight
def colsum(name: str, dtype: str):
    """Partial column sums of a (R, K) view: partial[g, k] = sum over the rows of block row g.

    ``sum``: of x (dbias = column sums of dx).  ``prelu_dweight``: of dy * z
    where z = x + bias is not > 0 (NaN in x propagates, as in the NumPy
    backend).  Block (TX, TY): TX consecutive columns, TY row lanes reduced
    in shared memory; gridDim.y blocks split the rows, :func:`finalize` adds
    their partials.  Deterministic (no atomics).  Accumulates in the compute
    type: float32 for 16-bit inputs.
    """
    ct = compute_type(dtype)
    fns = NF.functions(ct)
    load = _loader(dtype, ct)
    ZERO = fns.ZERO
    weight_term = name == "prelu_dweight"
    nb = MAX_BLOCK

    def kernel(x, dy, bias, partial, R, K, C, has_bias):
        sh = cuda.shared.array(nb, ct)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        TX = cuda.blockDim.x
        TY = cuda.blockDim.y
        k = cuda.blockIdx.x * TX + tx
        acc = ZERO
        if k < K:
            for r in range(cuda.blockIdx.y * TY + ty, R, cuda.gridDim.y * TY):
                i = r * K + k
                if weight_term:
                    z = load(x[i])
                    if has_bias:
                        z += load(bias[i % C])
                    if not z > ZERO:
                        acc += load(dy[i]) * z
                else:
                    acc += load(x[i])
        sh[ty * TX + tx] = acc
        cuda.syncthreads()
        s = TY // 2
        while s > 0:
            if ty < s:
                sh[ty * TX + tx] += sh[(ty + s) * TX + tx]
            cuda.syncthreads()
            s //= 2
        if ty == 0 and k < K:
            partial[cuda.blockIdx.y * K + k] = sh[tx]

    a = _arr(dtype)
    part = _nbtypes.Array(ct, 1, "C")
    i64 = numba.int64
    return kernel, (a, a, a, part, i64, i64, i64, numba.boolean)


def finalize(dtype: str):
    """out[k] = sum over g of partial[g, k], rounded once to the storage type."""
    ct = compute_type(dtype)
    store = _storer(dtype)
    zero = NF.functions(ct).ZERO

    def kernel(partial, out, G, K):
        for k in range(cuda.grid(1), K, cuda.gridsize(1)):
            acc = zero
            for g in range(G):
                acc += partial[g * K + k]
            out[k] = store(acc)

    return kernel, (_nbtypes.Array(ct, 1, "C"), _arr(dtype), numba.int64, numba.int64)


# ------------------------------------------------------- casts and copies
def cast(src: str, dst: str):
    """dst[i] = src[i] converted (bool: != 0; bfloat16 through float32)."""
    if dst == "bool" and src == "bf16":  # any bit pattern but +-0.0 is true

        def kernel(s, d, n):
            for i in range(cuda.grid(1), n, cuda.gridsize(1)):
                d[i] = (s[i] & 0x7FFF) != 0

    elif dst == "bool" and src in _STORAGE:  # floats: compared in their compute type
        load = _loader(src, compute_type(src))
        zero = compute_type(src)(0)

        def kernel(s, d, n):
            for i in range(cuda.grid(1), n, cuda.gridsize(1)):
                d[i] = load(s[i]) != zero

    elif dst == "bool":  # bool and integers
        zero = np.dtype(src).type(0)

        def kernel(s, d, n):
            for i in range(cuda.grid(1), n, cuda.gridsize(1)):
                d[i] = s[i] != zero

    else:
        ct = compute_type(dst)
        load = _loader(src, numba.float32 if src == "bf16" else ct)
        store = _storer(dst)

        def kernel(s, d, n):
            for i in range(cuda.grid(1), n, cuda.gridsize(1)):
                d[i] = store(ct(load(s[i])))

    return kernel, (_arr(src), _arr(dst), numba.int64)


def _strided_source(kind: str, dst_ndim: int, src_ndim: int) -> str:
    """Source of a copy between a flat C-contiguous array and an N-d strided one.

    gather: flat[i] = src[index of i in `shape`], with NumPy broadcasting of
    src (fewer dims, or dims of 1).  scatter: nd[index of i] = flat[i].
    Generated per number of dimensions: Numba indexes with a fixed tuple.
    """
    lines = [
        "def kernel(src, dst, n, shape):",
        "    for i in range(cuda.grid(1), n, cuda.gridsize(1)):",
        "        r = i",
    ]
    for d in range(dst_ndim - 1, 0, -1):
        lines += [f"        i{d} = r % shape[{d}]", f"        r = r // shape[{d}]"]
    lines.append("        i0 = r")
    if kind == "gather":
        off = dst_ndim - src_ndim
        idx = ", ".join(f"min(i{off + d}, src.shape[{d}] - 1)" for d in range(src_ndim)) or "()"
        lines.append(f"        dst[i] = src[{idx}]")
    else:
        idx = ", ".join(f"i{d}" for d in range(dst_ndim))
        lines.append(f"        dst[{idx}] = src[i]")
    return "\n".join(lines) + "\n"


def strided(kind: str, dtype: str, dst_ndim: int, src_ndim: int):
    scope: dict[str, Any] = {"cuda": cuda, "min": min}
    exec(compile(_strided_source(kind, dst_ndim, src_ndim), f"<numba {kind} {dst_ndim}d>", "exec"), scope)
    shape = _nbtypes.UniTuple(numba.int64, dst_ndim) if dst_ndim else _nbtypes.Tuple(())
    if kind == "gather":
        sig = (_arr(dtype, src_ndim, "A"), _arr(dtype), numba.int64, shape)
    else:
        sig = (_arr(dtype), _arr(dtype, dst_ndim, "A"), numba.int64, shape)
    return scope["kernel"], sig


# --------------------------------------------------------------- the table
@functools.lru_cache(maxsize=None)
def cpu_kernel(spec: Spec):
    """An elementwise or gated kernel compiled for the CPU by numba.njit, run as a grid of one thread.

    The same Python source as the CUDA kernel, device functions included;
    only the primitives differ (libm for libdevice, NumPy views for the bit
    casts, float16 passed as its uint16 bits).  Takes the kernel's arguments
    as NumPy arrays.  For exhaustive tests: the simulator is far too slow.
    """
    if spec.kind == "elementwise":
        if spec.variant == "fp8":
            return elementwise_fp8(spec.name, spec.dtype, "cpu")[0]
        return elementwise(spec.name, spec.dtype, spec.variant == "bwd", "cpu")[0]
    if spec.kind == "gated":
        if spec.variant == "fp8":
            return gated_fp8(spec.name, spec.dtype, "cpu")[0]
        return gated(spec.name, spec.dtype, spec.variant == "bwd", "cpu")[0]
    raise ValueError(f"no CPU build of {spec.kind} kernels")


def build(spec: Spec):
    """(python function, argument types) of a spec."""
    kind, name, dtype, variant = spec.kind, spec.name, spec.dtype, spec.variant
    if kind == "elementwise":
        return elementwise_fp8(name, dtype) if variant == "fp8" else elementwise(name, dtype, variant == "bwd")
    if kind == "gated":
        return gated_fp8(name, dtype) if variant == "fp8" else gated(name, dtype, variant == "bwd")
    if kind == "rowwise":
        return rowwise(name, dtype, variant == "bwd")
    if kind == "colsum":
        return colsum(name, dtype)
    if kind == "finalize":
        return finalize(dtype)
    if kind == "cast":
        return cast(name, dtype)
    if kind in ("gather", "scatter"):
        dst_ndim, src_ndim = (int(v) for v in name.split("_"))
        return strided(kind, dtype, dst_ndim, src_ndim)
    raise ValueError(f"unknown kernel kind {kind!r}")


def all_specs() -> list[Spec]:
    """Every kernel of the catalogue and of the helpers, for the PTX check."""
    specs: list[Spec] = []
    for dt in DTYPES:
        for d in ("fwd", "bwd", "fp8"):
            specs += [Spec("elementwise", n, dt, d) for n in NF.ELEMENTWISE]
            specs += [Spec("gated", n, dt, d) for n in NF.GATED]
            specs += [Spec("rowwise", n, dt, d) for n in ROWWISE]
        specs += [Spec("colsum", "sum", dt), Spec("colsum", "prelu_dweight", dt), Spec("finalize", "-", dt)]
        specs += [Spec("cast", src, dt) for src in DTYPES if src != dt]
        specs += [Spec("cast", dt, "bool")]
        specs += [Spec("gather", "2_2", dt), Spec("scatter", "2_2", dt)]
    specs += [Spec("cast", "int64", "bool"), Spec("cast", "uint8", "bool")]
    specs += [Spec("gather", "3_1", "bool"), Spec("gather", "2_0", "bool")]
    specs += [Spec("gather", "4_4", "f32"), Spec("scatter", "3_3", "f32")]
    return specs


# ------------------------------------------------------------ compile cache
_compiled: dict[Spec, Any] = {}
_compile_seconds: dict[Spec, float] = {}
_lock = threading.Lock()


def get(spec: Spec):
    """The compiled kernel of ``spec``: built and compiled on first use, then cached.

    Compilation is eager (explicit signature) and happens under a lock, so
    concurrent first calls compile once.  ``cache=True`` also keeps the
    compiled code on disk (Numba's cache, keyed by the function, its closure
    and the compute capability); the exec-generated strided copies have no
    source file and are cached in memory only.
    """
    got = _compiled.get(spec)
    if got is not None:
        return got
    with _lock:
        got = _compiled.get(spec)
        if got is None:
            fn, sig = build(spec)
            start = time.perf_counter()
            if SIMULATOR:
                got = cuda.jit(fn)
            elif spec.kind in ("gather", "scatter"):
                got = cuda.jit(sig)(fn)
            else:
                try:
                    got = cuda.jit(sig, cache=True)(fn)
                except Exception:  # an unwritable or broken cache must not cost the kernel
                    got = cuda.jit(sig)(fn)
            _compile_seconds[spec] = time.perf_counter() - start
            _compiled[spec] = got
    return got


def compile_times() -> dict[str, float]:
    """Seconds each kernel compiled so far took (first call, in this process)."""
    return {str(s): t for s, t in _compile_seconds.items()}
