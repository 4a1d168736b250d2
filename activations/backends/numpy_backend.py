"""The NumPy (CPU) backend: fused, chunked evaluation with in-place ufuncs.

One generic loop per kind:

* elementwise: the array is walked in cache-sized blocks; each block is
  converted to compute precision (float32 for 16-bit types) with the bias
  added, passed through the activation's functor (``_numpy_functors``) and
  rounded once into the output.  No full-size temporaries.
* gated: the same, on the two halves of ``axis``.
* rowwise: blocks of whole rows (``axis`` moved last), reduced in compute
  precision.

Large arrays are split over a small thread pool: NumPy releases the GIL in
its ufunc loops, so the blocks of different threads run in parallel.
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import numpy as np

from .. import _dtypes
from ..registry import Kind
from . import Backend, Call, Grads
from . import _numpy_functors as F
from . import _numpy_rowwise as RW

#: elements per block: five float32 buffers of this size stay in a 1 MiB L2
BLOCK = 1 << 15
#: below this many elements one thread is faster than waking the pool
PARALLEL_MIN = 1 << 20


def _num_threads() -> int:
    env = os.environ.get("ACTIVATIONS_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    return max(1, min(os.cpu_count() or 1, 8))


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    """A pool with at least ``workers`` threads (grown when ACTIVATIONS_NUM_THREADS grows)."""
    global _pool, _pool_size
    if _pool is None or _pool_size < workers:
        with _pool_lock:
            if _pool is None or _pool_size < workers:
                old, _pool = _pool, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="activations")
                _pool_size = workers
                if old is not None:
                    old.shutdown(wait=False)
    return _pool


def run_parallel(tasks: list, work: Callable[[list], Any], total: int) -> list:
    """Run ``work`` on contiguous slices of ``tasks``; the caller's thread takes one slice."""
    n = min(_num_threads(), len(tasks)) if total >= PARALLEL_MIN else 1
    if n <= 1:
        return [work(tasks)]
    bounds = [len(tasks) * i // n for i in range(n + 1)]
    parts = [tasks[bounds[i] : bounds[i + 1]] for i in range(n)]
    pool = _executor(n - 1)
    futures = [pool.submit(work, part) for part in parts[1:]]
    results = [work(parts[0])]
    results += [f.result() for f in futures]
    return results


class Block:
    """Scratch buffers of one worker thread, re-viewed (views cached) for every block shape."""

    def __init__(self, dtype: np.dtype, size: int):
        self.size = size
        self._float = [np.empty(size, dtype) for _ in range(7)]
        self._bool = [np.empty(size, bool) for _ in range(3)]
        self._views: dict[tuple[int, ...], tuple] = {}
        self.big = float(np.finfo(dtype).max)
        self.seed = 0
        self.weight: Any = None
        self._shape: tuple[int, ...] = ()
        self._origin = (0, 0, 1)  # (row0, col0, row length) of the block in the 2-D view

    def view(self, shape: tuple[int, ...], origin: tuple[int, int, int]) -> "Block":
        views = self._views.get(shape)
        if views is None:
            n = math.prod(shape)
            views = tuple(b[:n].reshape(shape) for b in self._float + self._bool)
            if len(self._views) > 64:  # many odd shapes: do not grow without bound
                self._views.clear()
            self._views[shape] = views
        (self.t1, self.t2, self.t3, self.zbuf, self.obuf, self.ybuf, self.dybuf, self.b1, self.b2, self.b3) = views
        self._shape, self._origin = shape, origin
        return self

    def flat_index(self) -> np.ndarray:
        """C-order index in x of every element of the block (rrelu's noise counter)."""
        r0, c0, width = self._origin
        rows, cols = self._shape if len(self._shape) == 2 else (1, self._shape[0])
        r = np.arange(r0, r0 + rows, dtype=np.uint64)[:, None]
        c = np.arange(c0, c0 + cols, dtype=np.uint64)[None, :]
        return (r * np.uint64(width) + c).reshape(self._shape)


_scratch_local = threading.local()


def scratch(dtype: np.dtype, call: Call) -> Block:
    """This thread's Block for ``dtype`` (allocated once per thread and dtype)."""
    blocks = getattr(_scratch_local, "blocks", None)
    if blocks is None:
        blocks = _scratch_local.blocks = {}
    s = blocks.get(dtype)
    if s is None:
        s = blocks[dtype] = Block(dtype, BLOCK)
    s.seed = call.params.seed()
    return s


def _blocks(rows: int, cols: int) -> list[tuple[int, int, int, int]]:
    """(r0, r1, c0, c1) blocks of about BLOCK elements covering a (rows, cols) array."""
    if cols >= BLOCK:
        return [(r, r + 1, c, min(c + BLOCK, cols)) for r in range(rows) for c in range(0, cols, BLOCK)]
    step = max(1, BLOCK // max(cols, 1))
    return [(r, min(r + step, rows), 0, cols) for r in range(0, rows, step)]


def _as_2d(a: np.ndarray, cols: int) -> np.ndarray:
    return a.reshape(-1, cols) if a.size else a.reshape(0, cols)


def _from_python(obj: Any, what: str) -> np.ndarray:
    """Python numbers and (nested) lists as float64; strings and other objects refused by name."""
    if isinstance(obj, (str, bytes)):
        raise TypeError(f"{what} must be an array or a number, got a string {obj!r:.40}")
    arr = np.asarray(obj)
    if arr.dtype.kind in "USV":
        raise TypeError(f"{what} must contain numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "O":  # ints beyond int64, or mixed objects
        try:
            return arr.astype(np.float64)
        except OverflowError:
            raise ValueError(f"{what} holds a value too large for float64") from None
        except (TypeError, ValueError):
            raise TypeError(f"{what} must contain only numbers") from None
    if arr.dtype.kind in "iu":
        return arr.astype(np.float64)
    return arr  # float64; bool (a where= mask, refused as x); complex (refused with a hint)


class NumpyBackend(Backend):
    name = "numpy"
    description = "NumPy on the CPU: chunked in-place ufuncs, threads for large arrays"

    def available(self) -> tuple[bool, str]:
        return True, f"numpy {np.__version__}, {_num_threads()} thread(s)"

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, np.ndarray)

    def asarray(self, obj: Any, what: str, dtype: Any = None) -> np.ndarray:
        if hasattr(obj, "__cuda_array_interface__") and not isinstance(obj, np.ndarray):
            raise ValueError(
                f"{what} lives on a GPU ({type(obj).__module__}.{type(obj).__name__}); the numpy backend "
                "needs host memory: pass a host copy, or use backend='cupy' / 'numba'"
            )
        if isinstance(obj, np.ndarray):
            arr = obj
        elif isinstance(obj, (list, tuple, int, float, bool, complex, str, bytes)):
            arr = _from_python(obj, what)
        else:
            arr = np.asarray(obj)  # NumPy scalars, torch CPU tensors, anything with __array__
        if dtype is not None and arr.dtype != np.dtype(dtype):
            arr = arr.astype(dtype)
        return arr

    # ------------------------------------------------------------ dispatch
    def forward(self, call: Call) -> np.ndarray:
        with np.errstate(all="ignore"):  # overflow to inf on the final cast is the intended result
            return self._forward(call)

    def backward(self, call: Call) -> Grads:
        with np.errstate(all="ignore"):
            return self._backward(call)

    def _forward(self, call: Call) -> np.ndarray:
        native = _native()
        if native is not None:
            out, returned = _result(call, call.out_shape)
            if native.forward(call, out):
                return _finish(out, returned)
        return _KIND[call.record.kind][0](call)

    def _backward(self, call: Call) -> Grads:
        native = _native()
        if native is not None:
            dx, returned = _result(call, call.x.shape)
            grads = native.backward(call, dx)
            if grads is not None:
                return grads._replace(dx=_finish(dx, returned))
        return _KIND[call.record.kind][1](call)


def _native():
    """The compiled CPU kernels (``_native_cpu``), or None when they cannot be used here.

    ``ACTIVATIONS_NATIVE=0`` turns them off, leaving the pure NumPy path.
    """
    global _NATIVE
    if _NATIVE is False:
        if os.environ.get("ACTIVATIONS_NATIVE", "1") == "0":
            return None
        try:
            from . import _native_cpu
        except ImportError:
            _NATIVE = None
        else:
            _NATIVE = _native_cpu if _native_cpu.usable() else None
    return _NATIVE


_NATIVE: Any = False


# ----------------------------------------------------------------- helpers
def _result(call: Call, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(array the loop writes, array returned).

    They differ when out is not C-contiguous, or overlaps an input without being
    exactly it (an in-place call reads each block before writing it; a shifted
    overlap would overwrite input not yet read).
    """
    out = call.out
    if out is None:
        target = np.empty(shape, call.x.dtype)
        return target, target
    inputs = [a for a in (call.x, call.dy, call.bias) if isinstance(a, np.ndarray)]
    if out.flags.c_contiguous and all(_same_or_apart(out, a) for a in inputs):
        return out, out
    return np.empty(shape, call.x.dtype), out


def _same_or_apart(out: np.ndarray, a: np.ndarray) -> bool:
    if not np.may_share_memory(out, a):
        return True
    return (
        out.__array_interface__["data"][0] == a.__array_interface__["data"][0]
        and out.strides == a.strides
        and out.shape == a.shape
        and out.dtype == a.dtype
    )


def _finish(written: np.ndarray, returned: np.ndarray) -> np.ndarray:
    if written is not returned:
        np.copyto(returned, written)
    return returned


def _load(src: np.ndarray, dst: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """src (+ bias) in compute precision, in dst."""
    if bias is None:
        np.copyto(dst, src, casting="unsafe")
    else:
        np.add(src, bias, out=dst, casting="unsafe")
    return dst


def _sum_rows(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, a.shape[-1]).sum(axis=0, dtype=np.float64)


# ---------------------------------------------------------------- elementwise
def _elementwise_forward(call: Call) -> np.ndarray:
    fwd = F.FORWARD[call.name]
    out, returned = _result(call, call.out_shape)
    if call.x.size == 0:
        return returned
    run = _ElementwiseRun(call, out)

    def block(s: Block, xb, ob):
        target = run.target(s, ob)
        fwd(xb, target, run.p, s)
        run.write(target, s, ob)

    run.each(block)
    return _finish(out, returned)


def _elementwise_backward(call: Call) -> Grads:
    rec = call.record
    fwd, bwd = F.FORWARD[rec.name], F.BACKWARD[rec.name]
    dx, returned = _result(call, call.x.shape)
    if call.x.size == 0:
        return _empty_grads(call, returned)
    run = _ElementwiseRun(call, dx)
    dy2 = _as_2d(np.ascontiguousarray(call.dy), run.cols)
    want_bias = call.bias is not None
    want_weight = rec.name == "prelu"

    def block(s: Block, xb, ob):
        r0, r1, c0, c1 = s.span
        dyb = _load(dy2[r0:r1, c0:c1], s.dybuf, None)
        v = xb
        if rec.grad_from == "y":
            v = s.ybuf
            fwd(xb, v, run.p, s)
        target = run.target(s, ob)
        bwd(v, dyb, target, run.p, s)
        sums = []
        if want_bias:
            sums.append(_sum_rows(target) if target.ndim == 2 else target.sum(dtype=np.float64))
        if want_weight:  # dweight = sum(dy * x) where x <= 0
            np.multiply(dyb, xb, out=s.t1)
            np.greater(xb, 0.0, out=s.b1)
            np.copyto(s.t1, 0.0, where=s.b1)
            sums.append(_sum_rows(s.t1) if run.per_column_weight else s.t1.sum(dtype=np.float64))
        run.write(target, s, ob)
        return sums

    partials = run.each(block, collect=True)
    dbias = dweight = None
    if want_bias:
        dbias = _combine(partials, 0, call.x.shape[-1]).astype(call.x.dtype)
    if want_weight:
        total = _combine(partials, int(want_bias), call.x.shape[-1] if run.per_column_weight else 1)
        dweight = _weight_grad(call, total)
    return Grads(_finish(dx, returned), dbias, dweight)


def _combine(partials: list, index: int, length: int) -> np.ndarray:
    """Add up the per-block sums of one reduction (per column, or one total when length is 1)."""
    acc = np.zeros(length, np.float64)
    for (r0, r1, c0, c1), sums in partials:
        if length == 1:
            acc[0] += np.sum(sums[index])
        else:
            acc[c0:c1] += sums[index]
    return acc


def _weight_grad(call: Call, total: np.ndarray):
    w = call.weight
    if isinstance(w, float):
        return np.asarray(total.sum(), dtype=call.x.dtype)
    if w.shape[0] == 1:
        return np.asarray([total.sum()], dtype=call.x.dtype)
    return total.astype(call.x.dtype)


def _empty_grads(call: Call, dx: np.ndarray) -> Grads:
    dbias = np.zeros(call.x.shape[-1], call.x.dtype) if call.bias is not None else None
    dweight = None
    if call.record.name == "prelu":
        w = call.weight
        dweight = np.zeros((), call.x.dtype) if isinstance(w, float) else np.zeros(w.shape, call.x.dtype)
    return Grads(dx, dbias, dweight)


class _ElementwiseRun:
    """Walks x (and the output) in blocks, each worker with its own scratch."""

    def __init__(self, call: Call, target: np.ndarray):
        self.call = call
        x = np.ascontiguousarray(call.x)
        self.cdtype = _dtypes.compute_dtype(x.dtype)
        self.p = call.params.kernel_floats()
        weight = call.weight
        self.per_column_weight = weight is not None and not isinstance(weight, float) and weight.shape[0] > 1
        needs_columns = call.bias is not None or self.per_column_weight or (
            call.name == "rrelu" and call.params["training"]
        )
        # Without per-column data the array is one long row: the longest blocks.
        self.cols = (x.shape[-1] if x.ndim else 1) if needs_columns else x.size
        self.x2 = _as_2d(x, self.cols)
        self.out2 = _as_2d(target, self.cols)
        self.bias = None if call.bias is None else call.bias.astype(self.cdtype, copy=False)
        if weight is None or isinstance(weight, float):
            self.weight = weight
        else:
            self.weight = weight.astype(self.cdtype, copy=False)
        # x must not be overwritten while a functor still reads it
        self.in_place = np.may_share_memory(x, target)
        self.direct = target.dtype == self.cdtype
        self.spans = _blocks(*self.x2.shape)

    def each(self, fn, collect: bool = False) -> list:
        call = self.call
        def work(spans):
            s = scratch(self.cdtype, call)
            out = []
            with np.errstate(all="ignore"):
                for span in spans:
                    r0, r1, c0, c1 = span
                    xs = self.x2[r0:r1, c0:c1]
                    s.view(xs.shape, (r0, c0, self.x2.shape[1]))
                    s.span = span
                    if self.weight is None or isinstance(self.weight, float):
                        s.weight = self.weight
                    else:
                        s.weight = self.weight if self.weight.shape[0] == 1 else self.weight[c0:c1]
                    xb = xs
                    if self.bias is not None or xs.dtype != self.cdtype or self.in_place:
                        xb = _load(xs, s.zbuf, None if self.bias is None else self.bias[c0:c1])
                    result = fn(s, xb, self.out2[r0:r1, c0:c1])
                    if collect:
                        out.append((span, result))
            return out

        parts = run_parallel(self.spans, work, self.x2.size)
        return [item for part in parts for item in part]

    def target(self, s: Block, ob: np.ndarray) -> np.ndarray:
        return ob if self.direct else s.obuf

    def write(self, result: np.ndarray, s: Block, ob: np.ndarray) -> None:
        if result is not ob:
            np.copyto(ob, result, casting="unsafe")


# -------------------------------------------------------------------- gated
def _gated_parts(call: Call):
    """x with axis last as (rows, 2H) in compute precision, bias added."""
    x = call.x
    cdtype = _dtypes.compute_dtype(x.dtype)
    z = x.astype(cdtype, copy=True) if call.bias is None else np.add(x, call.bias, dtype=cdtype)
    z = np.moveaxis(z, call.axis, -1)
    two_h = z.shape[-1]
    z2 = np.ascontiguousarray(z).reshape(-1, two_h) if z.size else np.empty((0, two_h), cdtype)
    return z2, two_h // 2, cdtype


def _rows_to_axis(a2: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Undo the (rows, axis) layout: a view of ``a2`` shaped ``shape`` with its last axis at ``axis``."""
    moved = list(shape)
    moved.append(moved.pop(axis))
    return np.moveaxis(a2.reshape(moved), -1, axis)


_GATE = {  # name -> (index of the half the activation gates, elementwise functor)
    "glu": (1, "sigmoid"),
    "swiglu": (0, "silu"),
    "geglu": (0, "gelu"),
    "reglu": (0, "relu"),
}


def _gate_params(call: Call) -> tuple[float, ...]:
    if call.name == "reglu":
        return (0.0, math.inf, 0.0)
    return call.params.kernel_floats()


def _gated_forward(call: Call) -> np.ndarray:
    out, returned = _result(call, call.out_shape)
    if out.size == 0:
        return returned
    z2, h, cdtype = _gated_parts(call)
    which, act = _GATE[call.name]
    fwd, p = F.FORWARD[act], _gate_params(call)
    y2 = np.empty((z2.shape[0], h), cdtype)

    def work(spans):
        s = scratch(cdtype, call)
        with np.errstate(all="ignore"):
            for r0, r1, c0, c1 in spans:
                a, b = z2[r0:r1, c0:c1], z2[r0:r1, h + c0 : h + c1]
                gate, other = (a, b) if which == 0 else (b, a)
                yb = y2[r0:r1, c0:c1]
                s.view(yb.shape, (r0, c0, h))
                fwd(gate, yb, p, s)
                np.multiply(yb, other, out=yb)
                _nan_either(a, b, yb, s)

    run_parallel(_blocks(z2.shape[0], h), work, y2.size)
    y = _rows_to_axis(y2, call.out_shape, call.axis)
    np.copyto(out, y, casting="unsafe")
    return _finish(out, returned)


def _nan_either(a, b, target, s) -> None:
    np.isnan(a, out=s.b1)
    np.isnan(b, out=s.b2)
    np.logical_or(s.b1, s.b2, out=s.b1)
    np.copyto(target, np.nan, where=s.b1)


def _gated_backward(call: Call) -> Grads:
    dx, returned = _result(call, call.x.shape)
    if call.x.size == 0:
        return _empty_grads(call, returned)
    z2, h, cdtype = _gated_parts(call)
    which, act = _GATE[call.name]
    fwd, bwd, p = F.FORWARD[act], F.BACKWARD[act], _gate_params(call)
    from_y = act == "sigmoid"
    dy2 = np.ascontiguousarray(np.moveaxis(call.dy, call.axis, -1)).reshape(-1, h)
    g2 = np.empty_like(z2)  # [da | db]

    def work(spans):
        s = scratch(cdtype, call)
        with np.errstate(all="ignore"):
            for r0, r1, c0, c1 in spans:
                a, b = z2[r0:r1, c0:c1], z2[r0:r1, h + c0 : h + c1]
                gate, other = (a, b) if which == 0 else (b, a)
                da, db = g2[r0:r1, c0:c1], g2[r0:r1, h + c0 : h + c1]
                dgate, dother = (da, db) if which == 0 else (db, da)
                s.view(da.shape, (r0, c0, h))
                dyb = _load(dy2[r0:r1, c0:c1], s.dybuf, None)
                act_out = s.obuf
                fwd(gate, act_out, p, s)
                np.multiply(dyb, act_out, out=dother)  # d other = dy * act(gate)
                np.multiply(dyb, other, out=s.zbuf)  # d act = dy * other
                bwd(act_out if from_y else gate, s.zbuf, dgate, p, s)
                _nan_either(a, b, da, s)
                _nan_either(a, b, db, s)

    run_parallel(_blocks(z2.shape[0], h), work, z2.size)
    g = _rows_to_axis(g2, call.x.shape, call.axis)
    np.copyto(dx, g, casting="unsafe")
    dbias = None
    if call.bias is not None:
        dbias = _sum_rows(g).astype(call.x.dtype) if g.ndim else g.astype(call.x.dtype)
    return Grads(_finish(dx, returned), dbias)


# ------------------------------------------------------------------ rowwise
def _rowwise_parts(call: Call):
    """Rows along axis as a (R, N) compute-precision array (bias added) and the mask."""
    x = call.x
    cdtype = _dtypes.compute_dtype(x.dtype)
    z = x if call.bias is None else np.add(x, call.bias, dtype=cdtype)
    z = np.moveaxis(z, call.axis, -1)
    n = z.shape[-1]
    z2 = np.ascontiguousarray(z, dtype=cdtype).reshape(-1, n) if z.size else np.empty((math.prod(z.shape[:-1]), n), cdtype)
    mask2 = None
    if call.where is not None:
        m = np.moveaxis(np.broadcast_to(call.where, x.shape), call.axis, -1)
        mask2 = np.ascontiguousarray(m).reshape(z2.shape)
    return z2, mask2, cdtype


def _row_spans(rows: int, n: int) -> list[tuple[int, int]]:
    step = max(1, BLOCK // max(n, 1))
    return [(r, min(r + step, rows)) for r in range(0, rows, step)]


def _rowwise_forward(call: Call) -> np.ndarray:
    out, returned = _result(call, call.out_shape)
    z2, mask2, cdtype = _rowwise_parts(call)
    if out.size == 0:
        return returned
    last = call.axis == call.x.ndim - 1
    direct = last and out.dtype == cdtype and not np.may_share_memory(out, z2)
    y2 = out.reshape(z2.shape) if direct else np.empty_like(z2)
    fn = RW.FORWARD[call.name]

    def work(spans):
        with np.errstate(all="ignore"):
            for r0, r1 in spans:
                fn(z2[r0:r1], None if mask2 is None else mask2[r0:r1], y2[r0:r1])

    run_parallel(_row_spans(*z2.shape), work, z2.size)
    if not direct:
        np.copyto(out, _rows_to_axis(y2, call.x.shape, call.axis), casting="unsafe")
    return _finish(out, returned)


def _rowwise_backward(call: Call) -> Grads:
    dx, returned = _result(call, call.x.shape)
    z2, mask2, cdtype = _rowwise_parts(call)
    if call.x.size == 0:
        return _empty_grads(call, returned)
    dy2 = np.ascontiguousarray(np.moveaxis(call.dy, call.axis, -1), dtype=cdtype).reshape(z2.shape)
    g2 = np.empty_like(z2)
    fwd, bwd = RW.FORWARD[call.name], RW.BACKWARD[call.name]

    def work(spans):
        with np.errstate(all="ignore"):
            for r0, r1 in spans:
                m = None if mask2 is None else mask2[r0:r1]
                y = np.empty_like(z2[r0:r1])
                fwd(z2[r0:r1], m, y)
                bwd(y, dy2[r0:r1], m, g2[r0:r1])

    run_parallel(_row_spans(*z2.shape), work, z2.size)
    g = _rows_to_axis(g2, call.x.shape, call.axis)
    np.copyto(dx, g, casting="unsafe")
    dbias = None
    if call.bias is not None:
        dbias = _sum_rows(g).astype(call.x.dtype)
    return Grads(_finish(dx, returned), dbias)


_KIND: dict[Kind, tuple[Callable, Callable]] = {
    Kind.ELEMENTWISE: (_elementwise_forward, _elementwise_backward),
    Kind.GATED: (_gated_forward, _gated_backward),
    Kind.ROWWISE: (_rowwise_forward, _rowwise_backward),
}

BACKEND = NumpyBackend()
