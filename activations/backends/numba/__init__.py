"""The Numba CUDA backend: the whole catalogue as ``numba.cuda.jit`` kernels.

Arrays: it works on Numba device arrays and takes any object with
``__cuda_array_interface__`` (CuPy, PyTorch, JAX, ...) zero-copy through
``cuda.as_cuda_array``.  Host NumPy arrays are refused with a ValueError: no
hidden transfers.  The only host-to-device copies it makes are of Python
lists and scalars and NumPy scalars (``bias=[...]``, ``np.float16(x)``), which
have no device to live on.  Results are Numba device arrays on the same device.

Streams: kernels are queued on, in this order of precedence, the stream of
:func:`use_stream`, the stream ``x`` carries (``DeviceNDArray.stream``: set
by ``cuda.to_device(a, stream=s)`` and by ``as_cuda_array`` from the producer's
``__cuda_array_interface__``), else the default stream.  Outputs are
allocated on that stream and nothing is synchronized: results are ready when
the stream is.

Kernels (``kernels``) are compiled on first use per (activation,
dtype, direction) and cached in memory and on disk.  Under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) everything runs as Python threads, for tests:
grids are capped (see :class:`LaunchConfig`) and bfloat16 is not available.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from dataclasses import dataclass, replace
from typing import Any, Iterator

import numpy as np

from ... import _dtypes, _fp8
from ...registry import Kind
from .. import Backend, Call, Grads, deliver, out_target


@dataclass(frozen=True)
class LaunchConfig:
    """Launch shapes.  ``None`` means "chosen from the device and the data".

    threads: block size of the elementwise and gated loops.
    max_blocks: grid cap of every grid-stride loop (default 32 blocks per SM).
    row_threads: threads per row of the softmax family (power of two <= 256;
        default by row length, 32 to 256).
    reduce_threads: block size of the dbias/dweight reductions (power of two <= 256).
    """

    threads: int = 256
    max_blocks: int | None = None
    row_threads: int | None = None
    reduce_threads: int = 256

    def __post_init__(self):
        # the reductions index a 256-entry shared array and halve the block each step
        for field, value in (("row_threads", self.row_threads), ("reduce_threads", self.reduce_threads)):
            if value is not None and not (0 < value <= 256 and value & (value - 1) == 0):
                raise ValueError(f"LaunchConfig.{field} must be a power of two <= 256, got {value!r}")
        if not 0 < self.threads <= 1024:
            raise ValueError(f"LaunchConfig.threads must be in 1..1024, got {self.threads!r}")
        if self.max_blocks is not None and self.max_blocks < 1:
            raise ValueError(f"LaunchConfig.max_blocks must be >= 1, got {self.max_blocks!r}")


#: the simulator runs one Python thread per CUDA thread: keep grids tiny there
SIMULATOR_CONFIG = LaunchConfig(threads=32, max_blocks=2, row_threads=32, reduce_threads=64)

_config: contextvars.ContextVar[LaunchConfig | None] = contextvars.ContextVar("activations_numba_launch", default=None)
_stream: contextvars.ContextVar[Any] = contextvars.ContextVar("activations_numba_stream", default=None)


@contextlib.contextmanager
def launch_config(**changes) -> Iterator[LaunchConfig]:
    """Override launch shapes in this context (tests, tuning): ``with launch_config(threads=64): ...``."""
    token = _config.set(replace(current_config(), **changes))
    try:
        yield _config.get()
    finally:
        _config.reset(token)


def current_config() -> LaunchConfig:
    got = _config.get()
    if got is not None:
        return got
    return SIMULATOR_CONFIG if _simulator() else LaunchConfig()


@contextlib.contextmanager
def use_stream(stream) -> Iterator[Any]:
    """Queue this context's kernels (and allocations) on ``stream`` (a ``numba.cuda`` stream)."""
    token = _stream.set(stream)
    try:
        yield stream
    finally:
        _stream.reset(token)


# ------------------------------------------------------------ environment
def _cuda():
    from numba import cuda

    return cuda


def _simulator() -> bool:
    from .functions import SIMULATOR

    return SIMULATOR


def _kernels():
    from . import kernels as _numba_kernels

    return _numba_kernels


@functools.lru_cache(maxsize=None)
def _sm_count() -> int:
    try:
        return int(_cuda().get_current_device().MULTIPROCESSOR_COUNT)
    except Exception:  # the simulator's fake device has no such attribute
        return 1


class _Launch:
    """Launch context of one call: dtype names, stream, config, the kernel table."""

    def __init__(self, x):
        self.cuda = _cuda()
        self.dtype = np.dtype(x.dtype)
        self.short = _storage_name(self.dtype)
        if self.short == "bf16" and _simulator():
            raise TypeError(
                "bfloat16 is not supported by the Numba CUDA simulator (it has no bit casts); "
                "use float16/float32/float64 there, or a real GPU"
            )
        self.ct = np.dtype(np.float64 if self.short == "f64" else np.float32)
        self.cfg = current_config()
        self.stream = _pick_stream(self.cuda, x)
        self.K = _kernels()

    def kernel(self, kind: str, name: str, dtype: str | None = None, variant: str = "-"):
        return self.K.get(self.K.Spec(kind, name, dtype or self.short, variant))

    def blocks(self, n: int, threads: int) -> int:
        cap = self.cfg.max_blocks or 32 * _sm_count()
        return max(1, min(-(-n // threads), cap))

    def empty(self, shape, dtype) -> Any:
        try:
            return self.cuda.device_array(tuple(shape), dtype=dtype, stream=self.stream)
        except MemoryError:
            raise
        except Exception as exc:  # the driver's CUDA_ERROR_OUT_OF_MEMORY: a MemoryError, as on the host
            if "OUT_OF_MEMORY" in str(exc):
                raise MemoryError(str(exc)) from exc
            raise

    def params(self, call: Call, first: float | None = None) -> tuple:
        p = list(call.params.kernel_floats())
        if first is not None:
            p.insert(0, first)
        p += [0.0] * (3 - len(p))
        return tuple(self.ct.type(v) for v in p)


def _pick_stream(cuda, x):
    chosen = _stream.get()
    if chosen is not None:
        return chosen
    own = getattr(x, "stream", 0)
    if own is not None and not isinstance(own, int):
        return own
    return cuda.default_stream()


# ------------------------------------------------------------ array views
def _flat(a):
    """1-D view of a C-contiguous device array; bfloat16 as uint16 (the kernels' view of it)."""
    v = a.reshape((a.size,)) if a.ndim != 1 else a
    return v.view(np.uint16) if _dtypes.is_bfloat16(v.dtype) else v


def _is_contiguous(a) -> bool:
    return a.size == 0 or a.is_c_contiguous()


def _contiguous(run: _Launch, a):
    """``a`` itself when C-contiguous, else a contiguous device copy (one gather kernel)."""
    if _is_contiguous(a):
        return a
    return _gather(run, a, tuple(a.shape), a.dtype)


def _gather(run: _Launch, src, shape: tuple[int, ...], dtype):
    """Contiguous array of ``shape`` from ``src`` (strided, or broadcast like NumPy)."""
    out = run.empty(shape, dtype)
    n = out.size
    if n:
        short = _storage_name(dtype)
        k = run.kernel("gather", f"{len(shape)}_{src.ndim}", short)
        k[run.blocks(n, run.cfg.threads), run.cfg.threads, run.stream](_as_u16(src), _flat(out), n, shape)
    return out


def _scatter(run: _Launch, src, dst) -> None:
    n = src.size
    if n:
        k = run.kernel("scatter", f"{dst.ndim}_1", _storage_name(dst.dtype))
        k[run.blocks(n, run.cfg.threads), run.cfg.threads, run.stream](_flat(src), _as_u16(dst), n, tuple(dst.shape))


def _storage_name(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype in _dtypes.SHORT_NAMES:
        return _dtypes.short_name(dtype)
    return "bool" if dtype == np.bool_ else dtype.name


def _as_u16(a):
    return a.view(np.uint16) if _dtypes.is_bfloat16(a.dtype) else a


def _output(run: _Launch, call: Call, shape: tuple[int, ...], inputs: tuple):
    """(the array the kernels write, ``out`` as a device array or None): the backends' one
    policy (``backends.out_target``)."""
    out = None if call.out is None else BACKEND.asarray(call.out, "out")
    return out_target(out, shape, run.dtype, inputs, run.empty, _is_contiguous), out


def _finish(run: _Launch, target, out, call: Call):
    """The result, copied into ``out`` by the scatter kernel when it was written elsewhere; the
    caller's own ``out`` object when given."""
    deliver(target, out, lambda dst, src: _scatter(run, src, dst))
    return call.out if call.out is not None else target


# ---------------------------------------------------------------- reductions
def _column_sums(run: _Launch, term: str, x, dy, bias, K: int, C: int, shape) -> Any:
    """Sums over the rows of the (n/K, K) view of a term (``sum``: x; ``prelu_dweight``: dy*x
    where x <= 0), into a new array of ``shape`` with x's dtype.  Two launches, no host sync."""
    out = run.empty(shape, run.dtype)
    if K == 0:
        return out
    n = x.size
    R = n // K
    cfg = run.cfg
    tx = min(32, K)
    ty = 1
    while tx * ty * 2 <= min(cfg.reduce_threads, run.K.MAX_BLOCK):
        ty *= 2
    gx = -(-K // tx)
    budget = cfg.max_blocks or 8 * _sm_count()
    gy = max(1, min(-(-R // ty), budget // gx)) if R else 0
    partial = run.empty((max(gy, 1) * K,), run.ct)
    xf = _flat(x)
    if gy:
        k = run.kernel("colsum", term)
        dyf = _flat(dy) if dy is not None else xf
        bf = _flat(bias) if bias is not None else xf
        k[(gx, gy), (tx, ty), run.stream](xf, dyf, bf, partial, R, K, C, bias is not None)
    fin = run.kernel("finalize", "-")
    fin[run.blocks(K, cfg.threads), cfg.threads, run.stream](partial, _flat(out), gy, K)
    return out


# ------------------------------------------------------------------- backend
class NumbaBackend(Backend):
    name = "numba"
    description = "Numba CUDA kernels (numba.cuda.jit) on Numba device arrays and __cuda_array_interface__ objects"

    def available(self) -> tuple[bool, str]:
        try:
            cuda = _cuda()
        except Exception as exc:
            return False, f"numba / numba-cuda cannot be imported ({type(exc).__name__}: {exc}); pip install '.[numba]'"
        try:
            if _simulator():
                return True, "Numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1): Python threads, for tests; no bfloat16"
            if not cuda.is_available():
                return False, f"numba.cuda finds no usable GPU: {_driver_problem(cuda)}"
            dev = cuda.get_current_device()
            name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
            major, minor = dev.compute_capability
            import numba

            return True, f"{name} (compute capability {major}.{minor}), numba {numba.__version__}"
        except Exception as exc:  # a probe never raises: `info` lists the reason
            return False, f"{type(exc).__name__}: {exc}"

    def owns(self, obj: Any) -> bool:
        return bool(getattr(type(obj), "__cuda_ndarray__", False)) or hasattr(obj, "__cuda_array_interface__")

    def asarray(self, obj: Any, what: str, dtype: Any = None) -> Any:
        cuda = _cuda()
        if getattr(type(obj), "__cuda_ndarray__", False):
            arr = obj
        elif hasattr(obj, "__cuda_array_interface__") and not isinstance(obj, np.ndarray):
            if not hasattr(cuda, "as_cuda_array"):
                raise ValueError(f"{what}: the Numba CUDA simulator cannot import __cuda_array_interface__ objects")
            arr = cuda.as_cuda_array(obj)  # zero-copy; syncs the producer's stream if it names one
            own = getattr(obj, "dtype", None)
            if _dtypes.is_bfloat16(own) and arr.dtype != own:
                arr = arr.view(_dtypes.BFLOAT16)  # the interface has no bfloat16 typestr ('<V2')
        elif isinstance(obj, np.ndarray):
            raise ValueError(
                f"{what} is a NumPy array in host memory; the numba backend does not copy behind your back: "
                f"move it first with numba.cuda.to_device({what}) (or pass backend='numpy')"
            )
        elif isinstance(obj, (list, tuple, int, float, bool, np.generic)):
            # small host values with no device of their own: the one documented copy.
            # Python values are float64; a NumPy scalar keeps its dtype (as on the NumPy backend).
            default = obj.dtype if isinstance(obj, np.generic) else np.float64
            host = np.asarray(obj, dtype=default if dtype is None else dtype)
            arr = cuda.to_device(host, stream=_stream.get() or 0)
        else:
            raise ValueError(
                f"{what} is a {type(obj).__module__}.{type(obj).__name__}; the numba backend takes Numba device "
                "arrays and objects with __cuda_array_interface__"
            )
        if dtype is not None and arr.dtype != np.dtype(dtype):
            arr = self._cast(arr, np.dtype(dtype), what)
        return arr

    def _cast(self, arr, dtype: np.dtype, what: str):
        if dtype != np.bool_:
            _dtypes.check_supported(dtype, what)
        if _dtypes.BFLOAT16 in (arr.dtype, dtype) and _simulator():
            raise TypeError(f"{what}: bfloat16 is not supported by the Numba CUDA simulator")
        run = _Launch(arr)
        try:
            run.K.storage_type(run.short)
        except Exception as exc:
            raise ValueError(f"{what} has dtype {arr.dtype}, which the numba backend cannot cast to {dtype}") from exc
        arr = _contiguous(run, arr)
        out = run.empty(arr.shape, dtype)
        n = arr.size
        if n:
            k = run.kernel("cast", run.short, _storage_name(dtype))
            k[run.blocks(n, run.cfg.threads), run.cfg.threads, run.stream](_flat(arr), _flat(out), n)
        return out

    def layout_ops(self) -> "_Layout":
        """The array operations the front end needs (``activations._layout``) on device arrays."""
        return _LAYOUT

    # ------------------------------------------------------------ dispatch
    def forward(self, call: Call) -> Any:
        if call.fp8 is not None:
            return _quantize(_Launch(call.x), call)
        return _LOOPS[call.record.kind](_Launch(call.x), call, backward=False)

    def backward(self, call: Call) -> Grads:
        return _LOOPS[call.record.kind](_Launch(call.x), call, backward=True)


def _driver_problem(cuda) -> str:
    try:
        cuda.current_context()
    except Exception as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return " ".join(lines[:3]) or type(exc).__name__
    return "no CUDA device"


def _bias_and_c(run: _Launch, call: Call, x):
    """(bias flat or x as a placeholder, has bias, C = length of the last axis)."""
    C = tuple(x.shape)[-1] if x.ndim else 1
    if call.bias is None:
        return _flat(x), False, max(C, 1)
    return _flat(_contiguous(run, call.bias)), True, max(C, 1)


def _dbias(run: _Launch, call: Call, x, dx):
    """dbias = column sums of dx (the gradient with respect to x + bias), or None without bias."""
    if call.bias is None:
        return None
    C = tuple(x.shape)[-1]
    return _column_sums(run, "sum", dx, None, None, C, C, (C,))


def _dweight(run: _Launch, call: Call, x, dy):
    """prelu's dweight = sum of dy * (x + bias) where that is not > 0, shaped like the weight."""
    w = call.weight
    C = tuple(x.shape)[-1] if x.ndim else 1
    per_channel = not isinstance(w, float) and w.size > 1
    shape = () if isinstance(w, float) else tuple(w.shape)
    bias = None if call.bias is None else _contiguous(run, call.bias)
    return _column_sums(run, "prelu_dweight", x, dy, bias, C if per_channel else 1, max(C, 1), shape)


# ---------------------------------------------------------------- the loops
def _elementwise(run: _Launch, call: Call, backward: bool):
    x = _contiguous(run, call.x)
    shape = tuple(x.shape)
    dy = _contiguous(run, call.dy) if backward else None
    target, out = _output(run, call, shape, (x, dy, call.bias, call.weight))
    # before dx: out= may be x or dy
    dweight = _dweight(run, call, x, dy) if backward and call.record.weighted else None
    n = x.size
    if n:
        xf = _flat(x)
        bf, has_bias, C = _bias_and_c(run, call, x)
        w, Cw, first = xf, 0, None
        if call.record.weighted:
            if isinstance(call.weight, float):
                first = call.weight  # scalar weight rides in p[0], Cw = 0
            else:
                w = _flat(_contiguous(run, call.weight))
                Cw = w.size
        p = run.params(call, first)
        seed = np.uint64(call.params.seed())
        k = run.kernel("elementwise", call.name, variant="bwd" if backward else "fwd")
        threads = run.cfg.threads
        dyf = _flat(dy) if backward else xf
        k[run.blocks(n, threads), threads, run.stream](xf, dyf, bf, w, _flat(target), n, C, Cw, p, seed, has_bias)
    result = _finish(run, target, out, call)
    return Grads(result, _dbias(run, call, x, target), dweight) if backward else result


def _quantize(run: _Launch, call: Call):
    """FP8 codes and amax through the elementwise_fp8 / gated_fp8 kernels (one pass); the amax of
    a segment holding a NaN is NaN."""
    req = call.fp8
    x = _contiguous(run, call.x)
    cuda = run.cuda
    n = math.prod(call.out_shape)
    q = run.empty((max(n, 1),), np.uint8)
    amax_shape = req.amax_shape(call.out_shape)
    segments = max(1, math.prod(amax_shape))
    amax = cuda.to_device(np.zeros(segments, np.float32), stream=run.stream)
    nan_seen = cuda.to_device(np.zeros(segments, np.int32), stream=run.stream)
    fmt = req.format
    fp8 = (q, amax, nan_seen, np.float64(req.scale),
           (fmt.mant, fmt.emin, fmt.max_code, fmt.nan_code, int(req.stochastic)), np.uint64(req.noise_seed),
           *req.segments(call.out_shape), req.mode)
    if n:
        threads = run.cfg.threads
        xf = _flat(x)
        bf, has_bias, C = _bias_and_c(run, call, x)
        if call.record.kind is Kind.ELEMENTWISE:
            w, Cw, first = xf, 0, None
            if call.record.weighted:
                if isinstance(call.weight, float):
                    first = call.weight
                else:
                    w = _flat(_contiguous(run, call.weight))
                    Cw = w.size
            k = run.kernel("elementwise", call.name, variant="fp8")
            k[run.blocks(n, threads), threads, run.stream](xf, bf, w, n, C, Cw, run.params(call, first),
                                                           np.uint64(call.params.seed()), has_bias, *fp8)
        else:
            period = call.gated_rows()[1]
            k = run.kernel("gated", call.name, variant="fp8")
            k[run.blocks(n, threads), threads, run.stream](xf, bf, n, period, C, run.params(call), has_bias, *fp8)
    amax_host = np.where(nan_seen.copy_to_host(stream=run.stream) != 0, np.float32(np.nan),
                         amax.copy_to_host(stream=run.stream))
    values = q[:n].reshape(call.out_shape) if n else run.empty(call.out_shape, np.uint8)
    return _fp8.Quantized(values, cuda.to_device(amax_host.reshape(amax_shape), stream=run.stream))


def _split_axis(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :])


def _gated(run: _Launch, call: Call, backward: bool):
    x = _contiguous(run, call.x)
    rows, period = call.gated_rows()
    dy = _contiguous(run, call.dy) if backward else None
    target, out = _output(run, call, tuple(x.shape) if backward else call.out_shape, (x, dy, call.bias))
    n = rows * period
    if n:
        bf, has_bias, C = _bias_and_c(run, call, x)
        p = run.params(call)
        k = run.kernel("gated", call.name, variant="bwd" if backward else "fwd")
        threads = run.cfg.threads
        xf = _flat(x)
        dyf = _flat(dy) if backward else xf
        k[run.blocks(n, threads), threads, run.stream](xf, dyf, bf, _flat(target), n, period, C, p, has_bias)
    result = _finish(run, target, out, call)
    return Grads(result, _dbias(run, call, x, target)) if backward else result


def _row_threads(run: _Launch, L: int) -> int:
    if run.cfg.row_threads:
        return run.cfg.row_threads
    for limit, threads in ((64, 32), (512, 64), (2048, 128)):
        if L <= limit:
            return threads
    return 256


def _host(a) -> np.ndarray:
    """A (small) device array's values on the host."""
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


def _rowwise(run: _Launch, call: Call, backward: bool):
    x = _contiguous(run, call.x)
    shape = tuple(x.shape)
    outer, L, inner = _split_axis(shape, call.axis)
    dy = _contiguous(run, call.dy) if backward else None
    target, out = _output(run, call, shape, (x, dy, call.bias, call.where))
    nrows = outer * inner
    dalpha = None
    if backward and call.per_row is not None and not x.size:
        dalpha = np.zeros(tuple(call.per_row.shape))
    if x.size:
        xf = _flat(x)
        bf, has_bias, C = _bias_and_c(run, call, x)
        mask = x.reshape((x.size,)).view(np.bool_)  # placeholder, never read without has_mask
        if call.where is not None:
            w = call.where
            full = tuple(w.shape) == shape and _is_contiguous(w)
            mask = _flat(w if full else _gather(run, w, shape, np.bool_))
        threads = _row_threads(run, L)
        k = run.kernel("rowwise", call.name, variant="bwd" if backward else "fwd")
        dyf = _flat(dy) if backward else xf
        grid = max(1, min(nrows, run.cfg.max_blocks or 32 * _sm_count()))
        values = call.params.values
        ct = _dtypes.compute_dtype(x.dtype).type
        # entmax: alpha in the temperature's place, or one per row (float64) with the per-row dalpha
        first = values.get("alpha", values.get("temperature", 1.0))
        # per-row alphas and dalphas in the compute type: the values are rounded to it already
        alphas = dalpha_rows = run.empty((1,), ct)  # placeholders, never read without has_alphas
        if call.per_row is not None:
            alphas = run.cuda.to_device(np.asarray(_host(call.per_row), ct).reshape(-1), stream=run.stream)
            first = 2.0
            if backward:
                dalpha_rows = run.empty((nrows,), ct)
        k[grid, threads, run.stream](
            xf, dyf, bf, mask, _flat(target), nrows, L, inner, C, has_bias, call.where is not None,
            ct(first), ct(1.0 if values.get("quiet", False) else 0.0), alphas, dalpha_rows,
            call.per_row is not None,
        )
    result = _finish(run, target, out, call)
    if backward and call.per_row is not None and x.size:  # float64 on the host: the front end sums it
        dalpha = dalpha_rows.copy_to_host(stream=run.stream).astype(np.float64).reshape(tuple(call.per_row.shape))
    return Grads(result, _dbias(run, call, x, target), None, dalpha) if backward else result


# ------------------------------------------------ layout operations of the front end
def _transposed(a, perm: tuple[int, ...]):
    """A view of ``a`` with its axes permuted (Numba's own transpose handles 2-D only)."""
    if tuple(perm) == tuple(range(a.ndim)):
        return a
    if _simulator() or a.ndim == 2:
        return a.transpose(perm)
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    shape = tuple(a.shape[p] for p in perm)
    strides = tuple(a.strides[p] for p in perm)
    return DeviceNDArray(shape, strides, a.dtype, stream=a.stream, gpu_data=a.gpu_data)


class _Layout:
    """copy, rearrange, broadcast, tile, fold and copy into ``out`` with the gather, scatter and
    column-sum kernels (see ``activations._layout.ArrayAPI`` for what each one does)."""

    writes_out = True

    @staticmethod
    def copy(a):
        run = _Launch(a)
        if _is_contiguous(a):
            out = run.empty(tuple(a.shape), a.dtype)
            if a.size:
                out.copy_to_device(a, stream=run.stream)
            return out
        return _gather(run, a, tuple(a.shape), a.dtype)

    @staticmethod
    def rearranged(a, perm, shape, src_shape=None):
        run = _Launch(a)
        if src_shape is not None:
            a = _contiguous(run, a).reshape(src_shape)
        view = _transposed(a, tuple(perm))
        flat = _gather(run, view, tuple(view.shape), a.dtype) if view.size else run.empty(tuple(view.shape), a.dtype)
        return flat.reshape(tuple(shape))

    @staticmethod
    def broadcast(a, shape):
        return _gather(_Launch(a), a, tuple(shape), a.dtype)

    @staticmethod
    def tiled(a, reps: int):
        n = a.shape[0]
        return _gather(_Launch(a), a, (reps, n), a.dtype).reshape((reps * n,))

    @staticmethod
    def folded(a, cols: int):
        run = _Launch(a)
        return _column_sums(run, "sum", _contiguous(run, a), None, None, cols, cols, (cols,))

    @staticmethod
    def copy_into(dst, src) -> None:
        run = _Launch(src)
        _scatter(run, _contiguous(run, src), dst)


_LAYOUT = _Layout()

_LOOPS = {Kind.ELEMENTWISE: _elementwise, Kind.GATED: _gated, Kind.ROWWISE: _rowwise}

BACKEND = NumbaBackend()
