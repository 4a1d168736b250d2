"""The Dask backend: lazy, blockwise, every chunk computed by its own backend.

``apply``/``grad`` on a Dask array return a lazy Dask array (nothing is
computed until ``.compute()``, ``da.store`` or a ``distributed`` client asks).
The call is validated once, on the whole arrays; each chunk then goes straight
to ``forward``/``backward`` of the backend of the chunk type (NumPy chunks ->
``numpy``, CuPy chunks -> ``cupy``) with the validated call's arrays replaced
by the chunk's blocks, so the Dask path adds scheduling, not arithmetic nor a
second validation.  A task finds that backend by name (``dispatch.load``, on
this process or on a distributed worker).

Per kind:

* elementwise: one task per chunk; ``bias``/prelu ``weight`` sliced per chunk
  along the last axis; ``dbias`` and ``dweight`` are Dask reductions.  A slope
  drawn per element (rrelu in training mode, ``BoundParams.draws``) comes from
  the element's index in the *whole* array, so that case is computed here per
  chunk from the global index.
* gated: when ``axis`` is one chunk, one task per chunk; otherwise the halves
  ``a | b`` are sliced, ``b`` is rechunked like ``a`` (only along ``axis``) and
  each task gets a matching pair.
* rowwise: when ``axis`` is one chunk, one task per chunk.  The softmax family
  (softmax, log_softmax, softmin) along a *chunked* axis uses a two-pass reduction
  that never gathers a row: pass 1 computes per chunk ``(max, sum exp(z - max),
  any unmasked)``, which are combined per row as ``M = max_c m_c`` and
  ``S = sum_c s_c exp(m_c - M)``; pass 2 normalizes blockwise.  The backward
  reduces ``sum(dy * y)`` (``sum(dy)`` for log_softmax) the same way.
  The threshold families (sparsemax, entmax15, entmax) need the whole row, so
  they rechunk ``axis`` into one chunk (other axes keep their chunks).

``out=`` is refused (``ValueError``): Dask arrays are immutable.  To write a
result into an existing NumPy/Zarr/HDF5 array use ``da.store(result, target)``.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import dask
import dask.array as da
import numpy as np

from .. import _dtypes, _fp8, dispatch
from .._layout import ArrayAPI
from ..registry import Kind
from . import Backend, Call, Grads
from .cpu.fallback import counter_hash, rrelu_uniform, shifted


# The backend each chunk type goes to, named explicitly so that ACTIVATIONS_BACKEND=dask
# does not send a chunk back here.
_CHUNK_BACKENDS = {"numpy": "numpy", "cupy": "cupy"}


def _chunk_backend(x: da.Array) -> str:
    module = type(x._meta).__module__.partition(".")[0]
    try:
        return _CHUNK_BACKENDS[module]
    except KeyError:
        raise TypeError(
            f"Dask arrays of {type(x._meta).__module__}.{type(x._meta).__name__} chunks are not supported; "
            "the chunks must be NumPy or CuPy arrays"
        ) from None


def _xp(a):
    if type(a).__module__.partition(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def _meta(x: da.Array, dtype) -> Any:
    return x._meta.astype(dtype)


def _index(ndim: int) -> tuple[str, ...]:
    return tuple(f"d{i}" for i in range(ndim))


def _along(ndim: int, axis: int, sl) -> tuple:
    return (slice(None),) * axis + (sl,)


# ----------------------------------------------------------------- tasks
def _chunk_task(backend: str, template: Call, names: tuple[str, ...], select, upcast, *blocks):
    """``template`` (the validated call, its arrays taken out) on one chunk, by the forward (or,
    with a "dy" block, the backward) of the chunk backend named ``backend``.

    ``names`` says which field of the call each block is ("x", "dy", "bias", "weight", "where",
    and "alpha": entmax's per-row values broadcast like x, of which one per row is kept);
    ``upcast`` (a dtype or None) casts the float blocks first; ``select`` names the field of the
    backward's :class:`Grads` to return, or a tuple of them.
    """
    bound = dict(zip(names, blocks))
    if upcast is not None:
        for key in ("x", "dy", "bias", "weight"):
            if key in bound:
                bound[key] = bound[key].astype(upcast)
    x = bound["x"]
    per_row = None
    if "alpha" in bound:  # float64, rounded to the compute precision by the front end already
        rows = bound.pop("alpha")[_along(x.ndim, template.axis, slice(0, 1))]
        per_row = np.ascontiguousarray(rows.get() if hasattr(rows, "get") else rows, np.float64)
    shape = tuple(x.shape)
    if template.record.kind is Kind.GATED:
        ax = template.axis
        shape = shape[:ax] + (shape[ax] // 2,) + shape[ax + 1 :]
    call = template._replace(out_shape=shape, per_row=per_row, **bound)
    be = dispatch.load(backend)
    try:
        if call.dy is None:
            return be.forward(call)
        grads = be.backward(call)
    except MemoryError as exc:
        from .._interface import _no_memory

        raise _no_memory(call.record, shape, exc) from None
    if isinstance(select, tuple):
        return tuple(getattr(grads, k) for k in select)
    return getattr(grads, select)


def _pick(block, k: int):
    """Element ``k`` of a chunk task's tuple result (dx, dalpha)."""
    return block[k]


def _gated_pair_task(backend: str, template: Call, axis: int, last: bool, names, select, upcast, *blocks):
    """One output chunk of a gated activation from the matching chunks of both halves."""
    bound = dict(zip(names, blocks))
    xp = _xp(bound["a"])
    x = xp.concatenate([bound.pop("a"), bound.pop("b")], axis=axis)
    if "bias_a" in bound:
        ba, bb = bound.pop("bias_a"), bound.pop("bias_b")
        bound["bias"] = xp.concatenate([ba, bb]) if last else ba
    bound["x"] = x
    order = ("x", "dy", "bias")
    keys = tuple(k for k in order if k in bound)
    return _chunk_task(backend, template, keys, select, upcast, *(bound[k] for k in keys))


def _whole_pairs(call: Call):
    """x chunked so that every chunk along axis holds whole pairs (a, b), or None when the
    halves must be paired across chunks ('concat' with axis in several chunks)."""
    x, ax = call.x, call.axis
    if x.numblocks[ax] == 1:
        return x
    if call.params["layout"] != "interleaved":
        return None
    chunks = x.chunks[ax]
    if all(c % 2 == 0 for c in chunks):
        return x
    return x.rechunk({ax: max(2, max(chunks) // 2 * 2)})  # even pieces; x.shape[ax] is even


def _half(block, axis: int, which: int):
    h = block.shape[axis] // 2
    return block[_along(block.ndim, axis, slice(0, h) if which == 0 else slice(h, None))]


def _fp8_chunk(y, req, block_info=None):
    """One chunk of f as FP8 codes: ml_dtypes after clipping (nearest), or the NumPy port of
    kernels/fp8.cuh with the noise of each element's flat index in the whole output."""
    v = np.asarray(y, np.float64) * req.scale
    fmt = req.format
    if not req.stochastic:
        return np.clip(v, -fmt.largest, fmt.largest).astype(fmt.dtype)
    noise = counter_hash(req.noise_seed, _flat_index(np, block_info, y.shape))
    return _fp8.encode(v, fmt, noise).view(fmt.dtype)


def _group_max(mag):
    """max over groups of 128 along the last axis of a chunk that starts at a group boundary."""
    n = mag.shape[-1]
    groups = -(-n // _fp8.GROUP)
    pad = groups * _fp8.GROUP - n
    if pad:
        mag = np.concatenate([mag, np.zeros(mag.shape[:-1] + (pad,), mag.dtype)], axis=-1)
    return mag.reshape(mag.shape[:-1] + (groups, _fp8.GROUP)).max(axis=-1, initial=0.0)


def _flat_index(xp, block_info, shape):
    """C-order index in the whole array of every element of one chunk (uint64)."""
    info = block_info[0]
    full = info["shape"]
    idx = xp.zeros(shape, dtype=np.uint64)
    stride = 1
    for d in range(len(full) - 1, -1, -1):
        start, stop = info["array-location"][d]
        r = xp.arange(start, stop, dtype=np.uint64) * np.uint64(stride)
        idx = idx + r.reshape((-1,) + (1,) * (len(full) - 1 - d))
        stride *= full[d]
    return idx


def _drawn_slope_task(x, *rest, lower, upper, seed, cdtype, has_bias, has_dy, keep_compute, block_info=None):
    """A leaky unit with per-element random slopes (rrelu in training mode, docs/semantics.md):
    y, or dx when dy is given."""
    xp = _xp(x)
    rest = list(rest)
    dy = rest.pop(0) if has_dy else None  # the order of `parts`: x, dy, bias
    bias = rest.pop(0) if has_bias else None
    u = rrelu_uniform(seed, _flat_index(xp, block_info, x.shape))
    slope = (lower + (upper - lower) * u).astype(cdtype)
    with np.errstate(all="ignore"):
        z = x.astype(cdtype)
        if bias is not None:
            z = z + bias.astype(cdtype)
        if dy is None:
            out = z * slope
            out = xp.where(xp.isnan(out) & ~xp.isnan(z), 0, out)  # 0 * -inf := 0
            out = xp.where(z > 0, z, out)
        else:
            dyc = dy.astype(cdtype)
            out = xp.where(z > 0, dyc, dyc * slope)
            out = xp.where(xp.isnan(z), z, out)  # NaN propagates to dx
    return out if keep_compute else out.astype(x.dtype)


def _row_inputs(blocks, has_bias: bool, has_mask: bool, cdtype, negate: bool):
    """From one chunk's blocks ``x[, bias][, mask], rest...``: z = +-(x + bias), the sum rounded in
    compute precision, as float64 (the temperature divides it once shifted by the row max), mask,
    rest.  The softmax family's passes run in float64 (statistics, y, the row's dot product and dx)
    and round once at the end, as the NumPy fallback: in float32 the chunks' partial sums and the
    rounded y cost up to 2.5 ulps of the row's terms."""
    blocks = list(blocks)
    z = blocks.pop(0).astype(cdtype, copy=False)  # only read below, never written
    if has_bias:
        z = z + blocks.pop(0).astype(cdtype, copy=False)
    if negate:
        z = -z
    z = z.astype(np.float64, copy=False)
    mask = blocks.pop(0) if has_mask else None
    return z, mask, blocks


def _softmax_stats(*blocks, axis, has_bias, has_mask, cdtype, negate, temperature):
    """Pass 1 per chunk: (max, sum exp((z - max) / T), any unmasked) stacked along axis, float64."""
    z, mask, _ = _row_inputs(blocks, has_bias, has_mask, cdtype, negate)
    t = np.float64(temperature)
    xp = _xp(z)
    keep = z.shape[:axis] + (1,) + z.shape[axis + 1 :]
    with np.errstate(all="ignore"):
        zm = z if mask is None else xp.where(mask, z, -np.inf)
        if z.shape[axis] == 0:
            m = xp.full(keep, -np.inf, z.dtype)
            s = xp.zeros(keep, z.dtype)
            seen = xp.zeros(keep, z.dtype)
        else:
            m = zm.max(axis=axis, keepdims=True)
            shift = xp.where(m == -np.inf, 0, m)  # nothing but -inf here: this chunk adds 0
            e = shifted(zm, shift, t, xp)
            s = xp.exp(e, out=e).sum(axis=axis, keepdims=True)
            seen = xp.ones(keep, z.dtype) if mask is None else mask.any(axis=axis, keepdims=True).astype(z.dtype)
    return xp.concatenate([m, s, seen], axis=axis)


def _softmax_combine(stats, *, axis, masked, quiet, temperature):
    """Pass 1 across the chunks of a row: M = max m_c, S = sum s_c exp((m_c - M) / T), stacked; the
    quiet form's implicit value 0 joins both (M >= 0, S += exp((0 - M) / T))."""
    xp = _xp(stats)
    t = stats.dtype.type(temperature)
    n = stats.ndim
    m = stats[_along(n, axis, slice(0, None, 3))]
    s = stats[_along(n, axis, slice(1, None, 3))]
    seen = stats[_along(n, axis, slice(2, None, 3))]
    with np.errstate(all="ignore"):
        big = m.max(axis=axis, keepdims=True)
        if masked:  # a fully masked row: nothing to shift (outputs 0, as the single-array path)
            big = xp.where(seen.max(axis=axis, keepdims=True) > 0, big, 0)
        if quiet:
            big = xp.maximum(big, 0)
        term = xp.where(s == 0, 0, s * xp.exp(shifted(m, big, t, xp)))
        total = term.sum(axis=axis, keepdims=True)
        if quiet:
            total = total + xp.exp(shifted(xp.zeros_like(big), big, t, xp))
    return xp.concatenate([big, total], axis=axis)


def _softmax_y(z, mask, big, total, log: bool, temperature: float):
    """Pass 2: exp((z - M) / T) / S, or (z - M) / T - log S, in float64 (0 where masked)."""
    xp = _xp(z)
    zm = z if mask is None else xp.where(mask, z, -np.inf)
    y = shifted(zm, big, z.dtype.type(temperature), xp)
    if log:
        y = y - xp.log(total)
        return y if mask is None else xp.where(mask, y, 0)
    if mask is not None:
        total = xp.where(total == 0, 1, total)  # fully masked: 0 / 1 = 0
    xp.exp(y, out=y)
    y = xp.divide(y, total, out=y)
    # masked entries stay 0 even when NaN/inf in the row's unmasked part poisons it
    return y if mask is None else xp.where(mask, y, 0)


def _softmax_forward_task(*blocks, has_bias, has_mask, cdtype, negate, temperature, log, out_dtype):
    z, mask, (big, total) = _row_inputs(blocks, has_bias, has_mask, cdtype, negate)
    with np.errstate(all="ignore"):
        return _softmax_y(z, mask, big, total, log, temperature).astype(out_dtype)


def _softmax_bwd_partial_task(*blocks, has_bias, has_mask, cdtype, negate, temperature, log):
    """What the backward reduces per row: dy * y (softmax, softmin) or dy (log_softmax)."""
    z, mask, (big, total, dy) = _row_inputs(blocks, has_bias, has_mask, cdtype, negate)
    xp = _xp(z)
    with np.errstate(all="ignore"):
        d = dy.astype(np.float64, copy=False)
        if mask is not None:
            d = xp.where(mask, d, 0)
        if log:
            return d
        y = _softmax_y(z, mask, big, total, log, temperature)
        return xp.multiply(y, d, out=y)


def _softmax_bwd_task(*blocks, has_bias, has_mask, cdtype, negate, temperature, log, out_dtype):
    """dx from y (recomputed from the row statistics), dy and the row reduction."""
    z, mask, (big, total, dy, red) = _row_inputs(blocks, has_bias, has_mask, cdtype, negate)
    xp = _xp(z)
    with np.errstate(all="ignore"):
        y = _softmax_y(z, mask, big, total, log, temperature)
        d = dy.astype(np.float64, copy=False)
        if mask is not None:
            d = xp.where(mask, d, 0)
        if log:  # dx = dy - softmax * sum(dy)
            p = xp.exp(y, out=y)
            if mask is not None:
                p = xp.where(mask, p, 0)
            dx = d - p * red
            if mask is not None:
                dx = xp.where(mask, dx, 0)
        else:  # dx = y (dy - sum(dy y)); softmin(x) = softmax(-x), so its dx changes sign
            dx = xp.subtract(d, red)
            xp.multiply(dx, y, out=dx)
            if negate:
                xp.negative(dx, out=dx)
            if mask is not None:  # 0 even when the row's reduction is NaN
                dx = xp.where(mask, dx, 0)
        if temperature != 1.0:  # d((x - M) / T) / dx
            dx = dx / np.float64(temperature)
        return dx.astype(out_dtype)  # past the dtype's range: inf, as the other backends


# --------------------------------------------------------------- backend
class DaskBackend(Backend):
    name = "dask"
    description = "Dask arrays: lazy and blockwise, each chunk on its own backend (NumPy or CuPy chunks)"

    def available(self) -> tuple[bool, str]:
        return True, f"dask {dask.__version__}"

    def ready(self) -> bool:
        return True

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, da.Array)

    def asarray(self, obj: Any, what: str, dtype: Any = None) -> da.Array:
        if isinstance(obj, da.Array):
            arr = obj
            if any(isinstance(n, float) and math.isnan(n) for n in arr.shape):
                raise ValueError(f"{what} has unknown chunk sizes; call {what}.compute_chunk_sizes() first")
        else:
            if hasattr(obj, "__cuda_array_interface__") and type(obj).__module__.partition(".")[0] == "cupy":
                host = obj
            elif isinstance(obj, (list, tuple, int, float, bool)) or (
                np.isscalar(obj) and not isinstance(obj, np.generic)
            ):
                host = np.asarray(obj, dtype=np.float64 if dtype is None else dtype)
            else:
                host = np.asarray(obj)
            # x forced onto Dask gets Dask's automatic chunks; operands stay one chunk and are
            # rechunked like x where they are used
            arr = da.from_array(host, chunks="auto" if what == "x" else -1, asarray=False)
        if dtype is not None and arr.dtype != np.dtype(dtype):
            arr = arr.astype(dtype)
        return arr

    def layout_ops(self):
        """The front end's array operations (``activations._layout``); results are never copied
        into an ``out=`` (refused: Dask arrays are immutable)."""
        return _LAYOUT

    # ------------------------------------------------------------ dispatch
    def forward(self, call: Call) -> da.Array:
        _refuse_out(call)
        if call.fp8 is not None:
            return self._quantize(call)
        kind = call.record.kind
        if kind is Kind.ELEMENTWISE:
            return self._elementwise(call, backward=False)
        if kind is Kind.GATED:
            return self._gated_forward(call)
        return self._rowwise(call, backward=False)

    def backward(self, call: Call) -> Grads:
        _refuse_out(call)
        kind = call.record.kind
        if kind is Kind.ELEMENTWISE:
            return self._elementwise(call, backward=True)
        if kind is Kind.GATED:
            return self._gated_backward(call)
        return self._rowwise(call, backward=True)

    # ----------------------------------------------------------- FP8 output
    def _quantize(self, call: Call) -> _fp8.Quantized:
        """f per chunk in the compute precision (the forward on x widened), then each chunk's codes
        (stochastic noise at global flat indices) and amax partials reduced by Dask: the tensor's
        max, each row's over the last axis, or each group's with the last axis chunked in whole
        groups.  Computing values and amax together (dask.compute) evaluates f once per chunk."""
        req = call.fp8
        cdt = _dtypes.compute_dtype(call.x.dtype)
        widen = lambda a: a if a is None or isinstance(a, float) else a.astype(cdt)  # noqa: E731
        y = self.forward(call._replace(x=widen(call.x), bias=widen(call.bias), weight=widen(call.weight), fp8=None))
        fmt = req.format
        values = y.map_blocks(_fp8_chunk, req, dtype=fmt.dtype, meta=np.empty((0,) * y.ndim, fmt.dtype),
                              token="fp8-values")
        mag = abs(y.astype(np.float32))
        if req.amax == "tensor":
            amax = mag.max() if y.size else da.zeros((), np.float32)
        elif req.amax == "row":
            amax = mag.max(axis=-1) if y.size else da.zeros(y.shape[:-1], np.float32)
        else:
            n = y.shape[-1]
            width = max(_fp8.GROUP, (max(y.chunks[-1]) // _fp8.GROUP) * _fp8.GROUP) if n else 1
            mag = mag.rechunk({y.ndim - 1: width})
            groups = tuple(-(-c // _fp8.GROUP) for c in mag.chunks[-1])
            amax = mag.map_blocks(_group_max, chunks=mag.chunks[:-1] + (groups,), dtype=np.float32,
                                  token="fp8-group-amax")
        return _fp8.Quantized(values, amax.astype(np.float32))

    # ---------------------------------------------------------- elementwise
    def _elementwise(self, call: Call, backward: bool):
        x = call.x
        dtype = x.dtype
        cdtype = _dtypes.compute_dtype(dtype)
        ind = _index(x.ndim)
        # dbias is summed from dx in compute precision, as the single-array path does
        upcast = cdtype if (backward and call.bias is not None and cdtype != dtype) else None
        out_dtype = upcast or dtype
        parts: list = [("x", x, ind)]
        if backward:
            parts.append(("dy", call.dy.rechunk(x.chunks), ind))
        if call.bias is not None:
            # x's chunks for every operand: the result keeps x's chunks
            parts.append(("bias", call.bias.rechunk((x.chunks[-1],)), ind[-1:]))

        if call.params.draws():
            dx = self._drawn_slope(call, parts, cdtype, keep_compute=upcast is not None)
        else:
            concatenate = None
            if call.record.weighted and not isinstance(call.weight, float):
                per_column = x.ndim > 0 and call.weight.shape[0] == x.shape[-1]
                w = call.weight.rechunk((x.chunks[-1],)) if per_column else call.weight
                parts.append(("weight", w, ind[-1:] if per_column else ("w",)))
                concatenate = True
            names = tuple(p[0] for p in parts)
            task = functools.partial(_chunk_task, *_chunk_call(call), names, "dx", upcast)
            dx = da.blockwise(
                task, ind, *_flatten(parts), dtype=out_dtype, meta=_meta(x, out_dtype),
                concatenate=concatenate, token=f"{call.name}-{'bwd' if backward else 'fwd'}",
            )
        if not backward:
            return dx
        dbias = dweight = None
        if call.bias is not None:
            dbias = _sum_rows(dx).astype(dtype)
        if call.record.weighted:
            dweight = _prelu_dweight(call, cdtype)
        return Grads(dx.astype(dtype) if upcast is not None else dx, dbias, dweight)

    def _drawn_slope(self, call: Call, parts: list, cdtype, keep_compute: bool) -> da.Array:
        x = call.x
        p = call.params
        lower, upper, _ = call.record.drawn_slope
        arrays = [a for _, a, _ in parts]  # map_blocks pairs blocks by index: all have x's chunks
        out_dtype = cdtype if keep_compute else x.dtype
        return da.map_blocks(
            _drawn_slope_task, *arrays,
            lower=float(p[lower]), upper=float(p[upper]), seed=p.seed(), cdtype=cdtype,
            has_bias=call.bias is not None, has_dy=call.dy is not None, keep_compute=keep_compute,
            dtype=out_dtype, meta=_meta(x, out_dtype), token=f"{call.name}-drawn",
        )

    # ---------------------------------------------------------------- gated
    def _gated_forward(self, call: Call) -> da.Array:
        x = _whole_pairs(call)
        if x is not None:
            return self._gated_whole(call, x, backward=False)
        return self._gated_pairs(call, backward=False)

    def _gated_backward(self, call: Call) -> Grads:
        x = _whole_pairs(call)
        cdtype = _dtypes.compute_dtype(call.x.dtype)
        upcast = cdtype if (call.bias is not None and cdtype != call.x.dtype) else None
        if x is not None:
            dx = self._gated_whole(call, x, backward=True, upcast=upcast)
        else:
            dx = self._gated_pairs(call, backward=True, upcast=upcast)
        dbias = None if call.bias is None else _sum_rows(dx).astype(call.x.dtype)
        return Grads(dx.astype(call.x.dtype) if upcast is not None else dx, dbias)

    def _gated_whole(self, call: Call, x: da.Array, backward: bool, upcast=None) -> da.Array:
        """Each chunk of ``x`` along ``axis`` holds whole pairs (a, b): the axis is one chunk, or
        the layout is interleaved and every chunk has even length.  dy is chunked as the halves."""
        ax = call.axis
        ind = _index(x.ndim)
        parts: list = [("x", x, ind)]
        if backward:
            dy_chunks = tuple(c if d != ax else tuple(n // 2 for n in c) for d, c in enumerate(x.chunks))
            parts.append(("dy", call.dy.rechunk(dy_chunks), ind))
        if call.bias is not None:
            parts.append(("bias", call.bias.rechunk((x.chunks[-1],)), ind[-1:]))
        names = tuple(p[0] for p in parts)
        task = functools.partial(_chunk_task, *_chunk_call(call), names, "dx", upcast)
        out_dtype = upcast or x.dtype
        return da.blockwise(
            task, ind, *_flatten(parts), dtype=out_dtype, meta=_meta(x, out_dtype),
            adjust_chunks=None if backward else {ind[ax]: lambda c: c // 2},
            # dy is half as long as x along axis (one chunk each): do not unify those chunks
            align_arrays=False,
            token=f"{call.name}-{'bwd' if backward else 'fwd'}",
        )

    def _gated_pairs(self, call: Call, backward: bool, upcast=None) -> da.Array:
        """``axis`` is chunked: pair chunk k of ``a`` with chunk k of ``b`` (rechunked like ``a``)."""
        x, ax = call.x, call.axis
        nd, h = x.ndim, x.shape[ax] // 2
        last = ax == nd - 1
        ind = _index(nd)
        a = x[_along(nd, ax, slice(0, h))]
        b = x[_along(nd, ax, slice(h, None))].rechunk({ax: a.chunks[ax]})
        parts: list = [("a", a, ind), ("b", b, ind)]
        if backward:
            parts.append(("dy", call.dy.rechunk(a.chunks), ind))
        if call.bias is not None:
            if last:
                parts.append(("bias_a", call.bias[:h].rechunk((a.chunks[ax],)), ind[-1:]))
                parts.append(("bias_b", call.bias[h:].rechunk((a.chunks[ax],)), ind[-1:]))
            else:
                bias = call.bias.rechunk((a.chunks[-1],))
                parts += [("bias_a", bias, ind[-1:]), ("bias_b", bias, ind[-1:])]
        names = tuple(p[0] for p in parts)
        task = functools.partial(_gated_pair_task, *_chunk_call(call), ax, last, names, "dx", upcast)
        out_dtype = upcast or x.dtype
        out = da.blockwise(
            task, ind, *_flatten(parts), dtype=out_dtype, meta=_meta(x, out_dtype),
            adjust_chunks={ind[ax]: (lambda c: 2 * c)} if backward else None,
            token=f"{call.name}-{'bwd' if backward else 'fwd'}",
        )
        if not backward:
            return out
        # each task returned [da_k | db_k]; put all da first, then all db
        halves = [
            out.map_blocks(_half, ax, which, chunks=a.chunks, dtype=out_dtype, meta=_meta(x, out_dtype))
            for which in (0, 1)
        ]
        return da.concatenate(halves, axis=ax)

    # -------------------------------------------------------------- rowwise
    def _rowwise(self, call: Call, backward: bool):
        x, ax = call.x, call.axis
        mask = None
        if call.where is not None:
            mask = da.broadcast_to(call.where, x.shape).rechunk(x.chunks)
        if x.numblocks[ax] > 1 and call.record.rows.threshold:
            x = x.rechunk({ax: -1})  # the exact threshold (sparsemax, entmax15, entmax) needs the whole row
            mask = None if mask is None else mask.rechunk(x.chunks)
        if x.numblocks[ax] == 1:
            return self._rowwise_whole(call, x, mask, backward)
        return self._rowwise_two_pass(call, mask, backward)

    def _rowwise_whole(self, call: Call, x: da.Array, mask, backward: bool):
        ax = call.axis
        ind = _index(x.ndim)
        cdtype = _dtypes.compute_dtype(x.dtype)
        upcast = cdtype if (backward and call.bias is not None and cdtype != x.dtype) else None
        parts: list = [("x", x, ind)]
        if backward:
            parts.append(("dy", call.dy.rechunk(x.chunks), ind))
        if call.bias is not None:
            # with x's own chunks blockwise has nothing to refine: a row is never split
            parts.append(("bias", call.bias.rechunk((x.chunks[-1],)), ind[-1:]))
        if mask is not None:
            parts.append(("where", mask, ind))
        per_row = call.per_row is not None
        if per_row:  # entmax's alpha as x's blocks (the task takes one value per row back)
            alpha = da.from_array(call.per_row, chunks=tuple((1,) if d == ax else c for d, c in enumerate(x.chunks)))
            parts.append(("alpha", da.broadcast_to(alpha, x.shape, chunks=x.chunks), ind))
        names = tuple(p[0] for p in parts)
        # with per-row values the backward task returns (dx, dalpha): two picks of one result
        select = ("dx", "dalpha") if per_row else "dx"
        task = functools.partial(_chunk_task, *_chunk_call(call), names, select, upcast)
        out_dtype = upcast or x.dtype
        out = da.blockwise(
            task, ind, *_flatten(parts), dtype=out_dtype, meta=_meta(x, out_dtype),
            token=f"{call.name}-{'bwd' if backward else 'fwd'}",
        )
        if not backward:
            return out
        dalpha = None
        if per_row:
            row_chunks = tuple((1,) if d == ax else c for d, c in enumerate(x.chunks))
            dalpha = out.map_blocks(_pick, 1, chunks=row_chunks, dtype=np.float64, meta=_meta(x, np.float64))
            out = out.map_blocks(_pick, 0, dtype=out_dtype, meta=_meta(x, out_dtype))
        dbias = None if call.bias is None else _sum_rows(out).astype(x.dtype)
        return Grads(out.astype(x.dtype) if upcast is not None else out, dbias, None, dalpha)

    def _rowwise_two_pass(self, call: Call, mask, backward: bool):
        x, ax = call.x, call.axis
        dtype = x.dtype
        cdtype = _dtypes.compute_dtype(dtype)
        # Every task recomputes z = +-(x + bias) from its own blocks (nothing row-sized is kept
        # between the passes); map_blocks pairs blocks by index, so all operands get x's chunks.
        inputs = [x]
        if call.bias is not None:
            inputs.append(call.bias.rechunk((x.chunks[-1],)))
        if mask is not None:
            inputs.append(mask)
        # the temperature as the other backends receive it (compute precision)
        rows = call.record.rows
        flags = dict(has_bias=call.bias is not None, has_mask=mask is not None, cdtype=cdtype,
                     negate=rows.negate, temperature=float(np.dtype(cdtype).type(call.params["temperature"])))
        log = rows.log
        wide = np.dtype(np.float64)  # the passes' precision (_row_inputs)
        meta = _meta(x, wide)

        stat_chunks = tuple(c if d != ax else (3,) * x.numblocks[ax] for d, c in enumerate(x.chunks))
        stats = da.map_blocks(
            _softmax_stats, *inputs, axis=ax, **flags, chunks=stat_chunks, dtype=wide, meta=meta,
            token=f"{call.name}-stats",
        )
        stats = stats.rechunk({ax: -1})  # 3 numbers per chunk of a row: small
        both_chunks = tuple(c if d != ax else (2,) for d, c in enumerate(stats.chunks))
        both = stats.map_blocks(
            _softmax_combine, axis=ax, masked=mask is not None, quiet=bool(call.params["quiet"]),
            temperature=flags["temperature"], chunks=both_chunks, dtype=wide, meta=meta,
            token=f"{call.name}-combine",
        )
        row = [both[_along(x.ndim, ax, slice(0, 1))], both[_along(x.ndim, ax, slice(1, 2))]]
        if not backward:
            return da.map_blocks(
                _softmax_forward_task, *inputs, *row, **flags, log=log, out_dtype=dtype, dtype=dtype,
                meta=_meta(x, dtype), token=f"{call.name}-fwd",
            )
        dy = call.dy.rechunk(x.chunks)
        partial = da.map_blocks(
            _softmax_bwd_partial_task, *inputs, *row, dy, **flags, log=log, dtype=wide, meta=meta,
            token=f"{call.name}-bwd-partial",
        )
        red = partial.sum(axis=ax, keepdims=True)
        # dbias is summed from dx in compute precision, as the single-array path does
        out_dtype = cdtype if call.bias is not None else dtype
        dx = da.map_blocks(
            _softmax_bwd_task, *inputs, *row, dy, red, **flags, log=log, out_dtype=out_dtype, dtype=out_dtype,
            meta=_meta(x, out_dtype), token=f"{call.name}-bwd",
        )
        if call.bias is None:
            return Grads(dx)
        return Grads(dx.astype(dtype), _sum_rows(dx).astype(dtype))


# ----------------------------------------------------------------- helpers
def _chunk_call(call: Call) -> tuple[str, Call]:
    """(the chunk backend's name, ``call`` without its arrays): what every chunk task starts from.
    The chunk backend is checked here, once, for the whole call."""
    backend = _chunk_backend(call.x)
    dispatch.explicit(backend)
    weight = call.weight if isinstance(call.weight, float) else None  # an array comes as blocks
    return backend, call._replace(x=None, dy=None, bias=None, weight=weight, where=None, per_row=None)


def _refuse_out(call: Call) -> None:
    if call.out is not None:
        raise ValueError(
            f"{call.name}(): out= is not supported for Dask arrays (they are immutable); "
            "use the returned lazy array, or da.store(result, target) to write into an existing array"
        )


def _flatten(parts: list) -> list:
    flat: list = []
    for _, arr, ind in parts:
        flat += [arr, ind]
    return flat


def _sum_rows(a: da.Array) -> da.Array:
    """Sum over all but the last axis, accumulated in float64 (as the NumPy backend)."""
    return a.sum(axis=tuple(range(a.ndim - 1)), dtype=np.float64)


def _prelu_dweight(call: Call, cdtype) -> da.Array:
    """sum(dy * z) over the entries with z = x (+ bias) <= 0: per column, or one total."""
    z = call.x.astype(cdtype)
    if call.bias is not None:
        z = z + call.bias.astype(cdtype)
    dy = call.dy.rechunk(call.x.chunks).astype(cdtype)
    contrib = da.where(z > 0, 0, dy * z)
    w = call.weight
    dtype = call.x.dtype
    if isinstance(w, float):
        return contrib.sum(dtype=np.float64).astype(dtype)
    if call.x.ndim > 0 and w.shape[0] == call.x.shape[-1]:
        return _sum_rows(contrib).astype(dtype)
    return contrib.sum(dtype=np.float64).astype(dtype).reshape(1)


class _Layout(ArrayAPI):
    writes_out = False


_LAYOUT = _Layout()

BACKEND = DaskBackend()
