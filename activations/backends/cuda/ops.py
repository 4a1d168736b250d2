"""Launch layer of the CUDA C kernels: argument packing, launch shapes, path choice.

Written once against a small :class:`Launcher` interface (an array module, the device's
properties, ``launch``), so that the same code drives CuPy on a GPU
(``activations.backends.cuda``) and, in the tests, the CPU harness of ``tests/cuda_host``, which runs
the very same kernel entry points on NumPy arrays.

Layout policy: inputs that are not C-contiguous are copied once (a documented cost; the
kernels index flat arrays).  ``out=`` follows the backends' one policy (``backends.out_target``:
written directly when C-contiguous and apart from every input or exactly ``x`` or ``dy``, else
through a temporary copied into it).  Copies move raw bits (unsigned views), so they never depend on the array library's support
for bfloat16.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Protocol

import numpy as np

from ... import _dtypes, _fp8
from ...registry import Kind
from .. import Backend, Call, Grads, deliver, out_target
from .source import THRESHOLD_FAMILIES, KernelModule, colsum_entry, entry, warp_path, warp_shapes

#: threads per block of the elementwise, gated and column-sum kernels
ELEMENTWISE_THREADS = 256
#: grid-stride loops are capped at this many waves of resident blocks (OneFlow's choice)
WAVES = 32
#: threads per block of the warp path (128 / lanes rows per block)
WARP_BLOCK_THREADS = 128
#: block and long paths: at most this many threads on one row one element at a time, and with
#: 16-byte packs (the kernels' launch bounds)
ROW_THREADS_MAX = 512
PACKED_ROW_THREADS_MAX = 1024
#: column path: threads per block, and the row stride from which it is chosen
COLUMN_THREADS = 128
COLUMN_MIN_INNER = 32
#: shared memory the block-path kernels declare statically (reduction scratch), kept free
STATIC_SHARED_RESERVE = 1024
#: global reads of a row (x, and dy in the backward) per path where more than one (the perf model)
ROW_GLOBAL_READS = {"long": 2}

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}

# the kinds as module constants: reading a member off the Enum class costs about 0.2 us
_ELEMENTWISE = Kind.ELEMENTWISE
_GATED = Kind.GATED


@dataclass(frozen=True)
class DeviceInfo:
    """What launch shapes and path choices depend on."""

    sm_count: int
    max_threads_per_block: int
    max_threads_per_sm: int
    shared_per_block: int  # bytes of dynamic shared memory without opting in
    shared_per_block_optin: int  # bytes a kernel may opt in to

    @functools.cached_property
    def elementwise_grid_max(self) -> int:
        """The grid cap of :func:`_grid` for ELEMENTWISE_THREADS, worked out once per device (every
        elementwise and gated launch asks)."""
        return _grid(2**31 - 1, ELEMENTWISE_THREADS, self)

    def elementwise_grid(self, units: int) -> int:
        """:func:`_grid` for ``units`` work items of ELEMENTWISE_THREADS-thread blocks."""
        blocks = -(-units // ELEMENTWISE_THREADS)
        cap = self.elementwise_grid_max
        return cap if blocks > cap else blocks or 1  # max(1, min(blocks, cap)) without two calls


class Launcher(Protocol):
    """Runs kernel entry points of one device.  ``xp`` is the array module (cupy, or numpy for the
    harness); ``scope()`` makes that device current while a call allocates and launches."""

    xp: Any
    info: DeviceInfo

    def scope(self) -> Any: ...

    def launch(self, module: KernelModule, name: str, grid: tuple[int, ...], block: tuple[int, ...],
               args: tuple, shared_mem: int = 0) -> None: ...

    def address(self, array: Any) -> int: ...


@dataclass(frozen=True)
class RowPath:
    """One row-wise launch: the entry's path tag, threads per block, dynamic shared memory."""

    name: str
    threads: int
    shared: int = 0
    rows_per_block: int = 1  # warp path: several rows per block; column path: one per thread


# ---------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=None)
def _kernel_module(name: str, dtype: str, path: str | None) -> KernelModule:
    """The module of a call, validated once (a per-call cost otherwise)."""
    return KernelModule(name, dtype, path)


@functools.lru_cache(maxsize=None)
def _entry(name: str, direction: str, dtype: str, path: str | None = None) -> str:
    return entry(name, direction, dtype, path)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _grid(blocks: int, threads: int, info: DeviceInfo) -> int:
    """``blocks`` for a grid-stride loop, capped at WAVES waves of resident blocks."""
    resident = max(1, info.sm_count * max(1, info.max_threads_per_sm // threads))
    return max(1, min(blocks, resident * WAVES, 2**31 - 1))


def _bits(a: Any) -> Any:
    return a.view(_UNSIGNED[a.dtype.itemsize])


def _contiguous(xp: Any, a: Any) -> Any:
    if a is None or a.flags.c_contiguous:
        return a
    return xp.ascontiguousarray(_bits(a)).view(a.dtype)


def _widened(xp: Any, a: Any, compute: np.dtype) -> Any:
    """``a`` in the compute precision (exact).  bfloat16 through its bits: the upper half of a
    float32, whatever the array library's support for the type."""
    if a.dtype == compute:
        return a
    if _dtypes.is_bfloat16(a.dtype):
        return (_bits(a).astype(np.uint32) << np.uint32(16)).view(np.float32)
    return a.astype(compute)


def _narrowed(xp: Any, a: Any, dtype: np.dtype) -> Any:
    """The compute-precision ``a`` rounded once (to nearest even) to ``dtype``; NaN stays NaN."""
    if a.dtype == dtype:
        return a
    if not _dtypes.is_bfloat16(dtype):
        return a.astype(dtype)
    u = _bits(a)
    rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    quiet = (u >> np.uint32(16)) | np.uint32(0x40)
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    return xp.where(nan, quiet, rounded).astype(np.uint16).view(dtype)


def _empty(L: Launcher, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    return L.xp.empty(shape, dtype=dtype)


def _copy_bits(dst: Any, src: Any) -> None:
    _bits(dst)[...] = _bits(src)


def _compute_scalar(dtype: np.dtype) -> type:
    return np.float64 if _dtypes.compute_dtype(dtype) == np.float64 else np.float32


#: (id(params), dtype) -> (params, (kernel floats, seed)) for the parameters a record binds once
#: (its defaults: immutable, as long-lived as the record), so a default call does not rebuild them
_DEFAULT_SCALARS: dict[tuple, tuple] = {}


def _kernel_scalars(call: Call, dtype: np.dtype) -> tuple[tuple, Any]:
    """(p0, p1, p2 in the compute precision, the seed as uint64); prelu's float weight travels in p0."""
    params = call.params
    key = (id(params), dtype)
    hit = _DEFAULT_SCALARS.get(key)
    if hit is not None and hit[0] is params:
        return hit[1]
    scalars = (_floats_of(call, dtype), np.uint64(params.seed()))
    if not call.record.weighted and isinstance(params.values, MappingProxyType):
        _DEFAULT_SCALARS[key] = (params, scalars)
    return scalars


def _kernel_floats(call: Call, dtype: np.dtype) -> tuple:
    """p0, p1, p2 in the compute precision; prelu's float weight travels in p0."""
    return _kernel_scalars(call, dtype)[0]


#: (name, dtype, direction, path) -> (module, entry point): a finite set (registry names, kernel
#: dtypes, paths), each worked out and validated once
_NAMES: dict[tuple, tuple] = {}


def _kernel_names(name: str, dtype: np.dtype, direction: str, path: str | None = None) -> tuple[KernelModule, str]:
    key = (name, dtype, direction, path)
    got = _NAMES.get(key)
    if got is None:
        module = _kernel_module(name, _dtypes.short_name(dtype), path)
        got = _NAMES[key] = (module, _entry(name, direction, module.dtype, path))
    return got


#: (id(params), dtype, direction) -> (params, plan) of :func:`_elementwise_plan`, for the
#: parameters a record binds once (as ``_DEFAULT_SCALARS``)
_PLANS: dict[tuple, tuple] = {}


def _elementwise_plan(call: Call, dtype: np.dtype, direction: str) -> tuple:
    """(module, entry point, kernel floats, seed, elements per 16-byte pack) of an elementwise
    launch: one lookup per call for a record's default parameters (the launch layer's facts that
    depend on the activation, dtype and direction alone)."""
    params = call.params
    key = (id(params), dtype, direction)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is params:
        return hit[1]
    floats, seed = _kernel_scalars(call, dtype)
    plan = (*_kernel_names(call.record.name, dtype, direction), floats, seed, 16 // dtype.itemsize)
    if not call.record.weighted and isinstance(params.values, MappingProxyType):
        _PLANS[key] = (params, plan)
    return plan


#: (a, b, c) -> the three as int64 kernel arguments; bounded (cleared when full): sizes vary
_INT64S: dict[tuple[int, int, int], tuple] = {}
_INT64S_MAX = 256


def _int64s(a: int, b: int, c: int) -> tuple:
    key = (a, b, c)
    got = _INT64S.get(key)
    if got is None:
        if len(_INT64S) >= _INT64S_MAX:
            _INT64S.clear()
        got = _INT64S[key] = (np.int64(a), np.int64(b), np.int64(c))
    return got


def _floats_of(call: Call, dtype: np.dtype) -> tuple:
    floats = list(call.params.kernel_floats())
    if call.record.weighted and isinstance(call.weight, float):
        floats = [call.weight]
    floats += [0.0] * (3 - len(floats))
    scalar = _compute_scalar(dtype)
    return tuple(scalar(v) for v in floats)


def _row_floats(call: Call, dtype: np.dtype) -> tuple:
    """The row kernels' (temperature, quiet) in the compute precision; (1, 0) for the records
    without them; entmax: (alpha, 0), alpha NaN when it comes one per row."""
    values = call.params.values
    scalar = _compute_scalar(dtype)
    if "alpha" in values:
        return scalar(call.params.kernel_floats()[0]), scalar(0.0)
    return scalar(values.get("temperature", 1.0)), scalar(1.0 if values.get("quiet", False) else 0.0)


def row_cache_bytes(dtype: np.dtype, packed: bool = False) -> int:
    """Bytes per element of a row cached in shared memory by the block path: the compute type one
    element at a time, the dtype itself with 16-byte packs (16-bit rows stay 16-bit)."""
    if packed:
        return np.dtype(dtype).itemsize
    return 8 if _dtypes.short_name(dtype) == "f64" else 4


def packed_rows(n: int, inner: int, dtype: np.dtype, arrays: tuple, mask: Any, launcher: "Launcher") -> bool:
    """Whether the block and long kernels take their 16-byte-pack path: the test of
    ``softmax_rows`` in softmax.cuh (last axis, no mask, n a multiple of the pack, aligned)."""
    return (inner == 1 and mask is None and n % (16 // np.dtype(dtype).itemsize) == 0
            and all(launcher.address(a) % 16 == 0 for a in arrays if a is not None))


# ------------------------------------------------------------ path tables
def row_path(name: str, n: int, inner: int, dtype: np.dtype, info: DeviceInfo, backward: bool = False,
             packed: bool = False) -> RowPath:
    """The kernel that runs rows of ``n`` elements, ``inner`` apart, of ``name`` (the table in
    docs/gpu-backend.md): column for rows far apart, warp for short rows, block while the row fits
    in shared memory, long otherwise (sparsemax, entmax15: block or long).  ``packed``: the block and long
    kernels will take their 16-byte-pack path (``packed_rows``), which caches the row as its dtype
    (and dy too in the backward) and sizes the block to fill the SM."""
    dt = _dtypes.short_name(dtype)
    threshold = name in THRESHOLD_FAMILIES  # sparsemax, entmax15: block or long only
    packed = packed and not threshold
    threads = min(ROW_THREADS_MAX, info.max_threads_per_block, max(32, _pow2_at_least(_cdiv(n, 8))))
    cache = n * row_cache_bytes(dtype, packed) * (2 if packed and backward else 1)
    fits = cache + STATIC_SHARED_RESERVE <= info.shared_per_block_optin
    if not threshold:
        if inner >= COLUMN_MIN_INNER:
            return RowPath("column", COLUMN_THREADS, rows_per_block=COLUMN_THREADS)
        for items, lanes in warp_shapes(dt):
            if n <= items * lanes:
                return RowPath(warp_path(items, lanes), WARP_BLOCK_THREADS, rows_per_block=WARP_BLOCK_THREADS // lanes)
    if packed:
        # blocks per SM that shared memory allows, and the threads per block that fill the SM with
        # them (no more than the row has packs)
        blocks = max(1, info.shared_per_block_optin // (cache + STATIC_SHARED_RESERVE)) if fits else 1
        want = max(32, min(_cdiv(n * np.dtype(dtype).itemsize, 16), _cdiv(info.max_threads_per_sm, blocks)))
        threads = min(PACKED_ROW_THREADS_MAX, info.max_threads_per_block, _pow2_at_least(want))
    return RowPath("block", threads, cache) if fits else RowPath("long", threads)


# ---------------------------------------------------------------- backend
class KernelBackend(Backend):
    """forward/backward of every kind through a :class:`Launcher`; arrays are ``launcher.xp``'s.
    ``launcher(x)`` gives the launcher of the device ``x`` lives on: a call runs there, whatever
    device is current."""

    def __init__(self, launcher: Callable[[Any], Launcher]):
        self._launcher = launcher

    # --------------------------------------------------------- plumbing
    @staticmethod
    def _output(L: Launcher, call: Call, shape: tuple[int, ...], inputs: tuple) -> Any:
        """The array the kernels write (``out`` itself where the policy allows)."""
        return out_target(call.out, shape, call.x.dtype, inputs, functools.partial(_empty, L))

    @staticmethod
    def _deliver(result: Any, call: Call) -> Any:
        return deliver(result, call.out, _copy_bits)

    def _prelu_weight(self, L: Launcher, call: Call) -> tuple[Any, int]:
        w = call.weight
        if not call.record.weighted or isinstance(w, float):
            return None, 0
        return _contiguous(L.xp, w), int(w.shape[0])

    def _module(self, call: Call, path: str | None = None) -> KernelModule:
        return _kernel_module(call.name, _dtypes.short_name(call.x.dtype), path)

    # ------------------------------------------------------------- entry
    def forward(self, call: Call) -> Any:
        record = call.record
        if record.kind is _ELEMENTWISE and call.out is None and call.bias is None and call.fp8 is None \
                and not record.weighted:  # the common call, without _run's questions
            L = self._launcher(call.x)  # on the device of call.x
            with L.scope():
                return self._elementwise_plain(L, call)
        return self._run(call, False)

    def backward(self, call: Call) -> Grads:
        return self._run(call, True)

    def _run(self, call: Call, backward: bool):
        L = self._launcher(call.x)  # on the device of call.x
        with L.scope():
            kind = call.record.kind
            if call.fp8 is not None:
                return self._quantize(L, call)
            if kind is _ELEMENTWISE:
                return self._elementwise(L, call, backward)
            if kind is _GATED:
                return self._gated(L, call, backward)
            if call.bias is not None:
                return self._rowwise_biased(L, call, backward)
            result, dalpha = self._rowwise(L, call, backward)
            return Grads(result, None, None, dalpha) if backward else result

    # ------------------------------------------------------- elementwise
    @staticmethod
    def _elementwise_plain(L: Launcher, call: Call):
        """The forward of :meth:`_elementwise` without out, bias or weight (the common call),
        written out: each step here is a per-call cost."""
        x = call.x
        dtype = x.dtype
        if not x.flags.c_contiguous:
            x = _contiguous(L.xp, x)
        shape = x.shape
        result = L.xp.empty(shape, dtype=dtype)
        n = x.size
        if not n:
            return result
        module, fn, floats, seed, pack = _elementwise_plan(call, dtype, "fwd")
        address = L.address
        units = -(-n // pack) if address(x) % 16 == 0 and address(result) % 16 == 0 else n
        L.launch(module, fn, (L.info.elementwise_grid(units),), (ELEMENTWISE_THREADS,),
                 (x, result, None, None, *_int64s(n, shape[-1] if shape else 1, 0), *floats, seed))
        return result

    def _elementwise(self, L: Launcher, call: Call, backward: bool):
        xp, dtype = L.xp, call.x.dtype
        x = call.x
        if not x.flags.c_contiguous:
            x = _contiguous(xp, x)
        dy = _contiguous(xp, call.dy) if backward else None
        bias = call.bias
        if bias is not None:
            bias = _contiguous(xp, bias)
        weight, weight_len = self._prelu_weight(L, call) if call.record.weighted else (None, 0)
        if call.out is None:
            result = xp.empty(x.shape, dtype=dtype)
        else:
            result = self._output(L, call, x.shape, (x, dy, bias, weight))
        n = int(x.size)
        channels = int(x.shape[-1]) if x.ndim else 1
        floats, seed = _kernel_scalars(call, dtype)
        module, fn = _kernel_names(call.record.name, dtype, "bwd" if backward else "fwd")
        pack = 16 // dtype.itemsize
        vector = L.address(x) % 16 == 0 and L.address(result) % 16 == 0 and (
            not backward or L.address(dy) % 16 == 0)
        units = -(-n // pack) if vector else n
        grid = (L.info.elementwise_grid(units),)
        block = (ELEMENTWISE_THREADS,)
        sizes = _int64s(n, channels, weight_len)
        if not backward:
            if n:
                L.launch(module, fn, grid, block, (x, result, bias, weight, *sizes, *floats, seed))
            return result if call.out is None else self._deliver(result, call)
        dz = self._dz_buffer(L, x, bias)
        terms = xp.empty(n, dtype=_dtypes.compute_dtype(dtype)) if call.record.weighted else None
        if n:
            L.launch(module, fn, grid, block, (x, dy, result, bias, weight, dz, terms, *sizes, *floats, seed))
        dbias = None if bias is None else self._dbias(L, result, dz, channels)
        dweight = None
        if call.record.weighted:
            cols = weight_len if weight_len > 1 else 1
            dweight = self._column_sums(L, terms, n // cols, cols, dtype)
            dweight = dweight.reshape(() if weight is None else weight.shape)
        return Grads(self._deliver(result, call), dbias, dweight)

    # ------------------------------------------------------------ gated
    def _gated(self, L: Launcher, call: Call, backward: bool):
        xp, dtype = L.xp, call.x.dtype
        x = _contiguous(xp, call.x)
        dy = _contiguous(xp, call.dy) if backward else None
        bias = _contiguous(xp, call.bias)
        n_out = math.prod(call.out_shape)
        hi = call.gated_rows()[1]  # the distance from a to b
        channels = int(x.shape[-1])
        result = self._output(L, call, x.shape if backward else call.out_shape, (x, dy, bias))
        module, fn = _kernel_names(call.name, dtype, "bwd" if backward else "fwd")
        pack = 16 // dtype.itemsize
        arrays = (x, result) if not backward else (x, dy, result)
        vector = hi % pack == 0 and all(L.address(a) % 16 == 0 for a in arrays)
        units = _cdiv(n_out, pack) if vector else n_out
        grid = (L.info.elementwise_grid(units),)
        tail = (*_int64s(n_out, hi, channels), *_kernel_floats(call, dtype))
        dz = self._dz_buffer(L, x, bias) if backward else None
        head = (x, dy, result, bias, dz) if backward else (x, result, bias)
        if n_out:
            L.launch(module, fn, grid, (ELEMENTWISE_THREADS,), head + tail)
        if not backward:
            return self._deliver(result, call)
        dbias = None if bias is None else self._dbias(L, result, dz, channels)
        return Grads(self._deliver(result, call), dbias)

    # -------------------------------------------------------- FP8 output
    def _quantize(self, L: Launcher, call: Call) -> _fp8.Quantized:
        """Elementwise or gated forward written as FP8 codes by act_<name>_fp8_<dt>, amax reduced
        per block and folded with atomicMax on the float bits of |f| (kernels/quantize.cuh)."""
        req = call.fp8
        xp, dtype = L.xp, call.x.dtype
        x = _contiguous(xp, call.x)
        bias = _contiguous(xp, call.bias)
        values = xp.empty(call.out_shape, dtype=np.uint8)
        amax = xp.zeros(req.amax_shape(call.out_shape), dtype=np.uint32)
        n_out = math.prod(call.out_shape)
        cols, groups = req.segments(call.out_shape)
        sink = (np.float64(req.scale), np.uint64(req.noise_seed), np.int64(cols), np.int64(groups),
                np.int32(req.format.code), np.int32(req.mode), np.int32(int(req.stochastic)))
        floats = _kernel_floats(call, dtype)
        module = self._module(call)
        pack = 16 // dtype.itemsize
        if call.record.kind is _ELEMENTWISE:
            weight, weight_len = self._prelu_weight(L, call)
            channels = int(x.shape[-1]) if x.ndim else 1
            vector = L.address(x) % 16 == 0
            args = (x, values, amax, bias, weight, np.int64(n_out), np.int64(channels), np.int64(weight_len),
                    *floats, np.uint64(call.params.seed()), *sink)
        else:
            hi = call.gated_rows()[1]
            vector = hi % pack == 0 and L.address(x) % 16 == 0
            args = (x, values, amax, bias, np.int64(n_out), np.int64(hi), np.int64(x.shape[-1]), *floats, *sink)
        units = _cdiv(n_out, pack) if vector else n_out
        grid = (L.info.elementwise_grid(units),)
        if n_out:
            L.launch(module, _entry(call.name, "fp8", module.dtype), grid, (ELEMENTWISE_THREADS,), args)
        return _fp8.Quantized(_fp8.as_format(values, req.format), amax.view(np.float32))

    # ---------------------------------------------------------- rowwise
    def _rowwise(self, L: Launcher, call: Call, backward: bool):
        xp, dtype = L.xp, call.x.dtype
        x = _contiguous(xp, call.x)
        dy = _contiguous(xp, call.dy) if backward else None
        mask = None
        if call.where is not None:
            mask = xp.ascontiguousarray(xp.broadcast_to(call.where, x.shape)).view(np.uint8)
        result = self._output(L, call, x.shape, (x, dy, mask))
        dalpha = None
        if x.size:
            ax = call.axis
            n = int(x.shape[ax])
            inner = math.prod(x.shape[ax + 1:])
            rows = x.size // n
            packed = packed_rows(n, inner, dtype, (x, result, dy), mask, L)
            path = row_path(call.name, n, inner, dtype, L.info, backward, packed)
            grid = _grid(_cdiv(rows, path.rows_per_block), path.threads, L.info)
            module = self._module(call, path.name)
            direction = "bwd" if backward else "fwd"
            head = (x, dy, result) if backward else (x, result)
            tail = ()
            if any(p.type == "row" for p in call.record.params):  # entmax: per-row alphas, dalpha
                alphas = None if call.per_row is None else xp.asarray(call.per_row)  # host values to the device
                if backward and alphas is not None:
                    dalpha = xp.empty(tuple(call.per_row.shape), dtype=np.float64)
                tail = (alphas, dalpha)
            L.launch(module, _entry(call.name, direction, module.dtype, path.name), (grid,), (path.threads,),
                     head + (mask, np.int64(rows), np.int64(n), np.int64(inner)) + _row_floats(call, dtype) + tail,
                     shared_mem=path.shared)
        elif backward and call.per_row is not None:
            dalpha = xp.zeros(tuple(call.per_row.shape), dtype=np.float64)
        return self._deliver(result, call), dalpha

    def _rowwise_biased(self, L: Launcher, call: Call, backward: bool):
        """A row-wise call with ``bias``: the row kernels read x alone, so ``z = x + bias`` (along
        x's last axis) is formed first in the compute precision, as every backend adds it, the
        compute-precision kernel runs on z, and its result is rounded once to x's dtype (the 16-bit
        kernels compute in float and round once too).  dbias sums dz (= dx) in that precision."""
        xp, dtype = L.xp, call.x.dtype
        compute = np.dtype(_dtypes.compute_dtype(dtype))
        z = _widened(xp, call.x, compute) + _widened(xp, call.bias, compute)
        dy = None if call.dy is None else _widened(xp, call.dy, compute)
        result, dalpha = self._rowwise(L, call._replace(x=z, dy=dy, bias=None, out=None), backward)
        y = _narrowed(xp, result, dtype)
        y = self._deliver(y, call)
        if not backward:
            return y
        channels = int(z.shape[-1])
        dbias = self._column_sums(L, result, result.size // max(channels, 1), channels, dtype)
        return Grads(y, dbias, None, dalpha)

    # --------------------------------------------------------- reductions
    @staticmethod
    def _dz_buffer(L: Launcher, x: Any, bias: Any) -> Any:
        """For 16-bit data with a bias: dx in float32 as well, the source of dbias (docs/semantics.md:
        reductions in float32), which dx's own range might have rounded to inf."""
        if bias is None or x.dtype.itemsize > 2:
            return None
        return L.xp.empty(x.shape, dtype=np.float32)

    def _dbias(self, L: Launcher, dx: Any, dz: Any, channels: int) -> Any:
        src = dx if dz is None else dz
        return self._column_sums(L, src, src.size // max(channels, 1), channels, dx.dtype)

    def _column_sums(self, L: Launcher, src: Any, rows: int, cols: int, dtype: np.dtype) -> Any:
        """Sums over the rows of ``src`` (compute precision, viewed as (rows, cols)), in ``dtype``."""
        xp = L.xp
        out = xp.empty(cols, dtype=dtype)
        if cols == 0:
            return out
        module = _kernel_module("colsum", _dtypes.short_name(dtype), None)
        tx = min(32, _pow2_at_least(cols))
        ty = ELEMENTWISE_THREADS // tx
        gx = _cdiv(cols, tx)
        # enough blocks to fill the device, each folding at least a few row groups
        gy = max(1, min(_cdiv(rows, ty * 4), _cdiv(4 * L.info.sm_count, gx), 1024))
        block = (tx, ty)
        if gy > 1:
            partial = xp.empty((gy, cols), dtype=_dtypes.compute_dtype(dtype))
            L.launch(module, colsum_entry("partial", module.dtype), (gx, gy), block,
                     (src, partial, np.int64(rows), np.int64(cols)))
            src, rows = partial, gy
        L.launch(module, colsum_entry("final", module.dtype), (gx, 1), block,
                 (src, out, np.int64(rows), np.int64(cols)))
        return out
