"""apply / grad: look up, bind, dispatch, validate, call the backend.

Everything a user can get wrong is checked here, before any backend writes a
byte, so ``out=`` is never left half-written by bad input.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import operator
from typing import Any

import numpy as np

from . import _dtypes, _fp8, _interop, _layout, dispatch
from .backends import Backend, Call, Grads
from .catalogue import REGISTRY
from .registry import Activation, Kind

__all__ = ["apply", "grad"]

# the kinds as module constants: reading a member off the Enum class costs about 0.2 us
_ELEMENTWISE = Kind.ELEMENTWISE
_GATED = Kind.GATED
_ROWWISE = Kind.ROWWISE


def apply(name, x, *, out=None, bias=None, axis=-1, where=None, backend=None, out_dtype=None, scale=None,
          amax=None, rounding=None, **params):
    """``name(x + bias)`` on the backend where ``x`` lives.

    Args:
        name: activation name or alias (``activations.names()``).
        x: input array: NumPy, CuPy, Numba device array, any
            ``__cuda_array_interface__`` object, Dask array; lists, scalars and
            integer arrays become float64 (as with NumPy's ufuncs).  float16,
            bfloat16, float32 or float64.
        out: optional output array (same type, shape and dtype as the result);
            ``out=x`` works in place.
        bias: optional 1-D array along the last axis of ``x``, fused: ``f(x + bias)``.
        axis: the axis of row-wise (softmax family) and gated (glu family)
            activations; ignored by elementwise ones.  Row-wise activations also
            take a tuple of axes and normalize over all of them at once (Keras).
        where: row-wise only: boolean mask (broadcastable to ``x``); masked
            entries are left out of the row and their outputs are 0.
        backend: ``"numpy"``, ``"cupy"``, ``"numba"``, ``"dask"`` or None (auto;
            the ``ACTIVATIONS_BACKEND`` environment variable also sets it).
        out_dtype: ``ml_dtypes.float8_e4m3fn`` or ``ml_dtypes.float8_e5m2`` (or their names):
            elementwise and gated activations write ``saturate(round(f(x) * scale))`` in that
            format and return ``Quantized(values, amax)`` (docs/semantics.md, "FP8 output").
            ``out`` is then an array of that dtype.
        scale: with out_dtype: the factor applied before rounding (finite, > 0; default 1).
        amax: with out_dtype: ``"tensor"`` (default), ``"row"`` (over the last axis of the
            output) or ``"group"`` (groups of 128 along it); float32 max |f(x)| before scaling.
        rounding: with out_dtype: ``"nearest"`` (default, ties to even) or ``"stochastic"``,
            which needs an int ``seed=`` (the noise of element i is a counter hash of (seed, i)).
        **params: the activation's parameters (``describe(name)`` lists them).

    Returns:
        The output array (``out`` when given); ``Quantized(values, amax)`` with out_dtype.
    """
    if out_dtype is not None or scale is not None or amax is not None or rounding is not None:
        return _quantized(name, x, out, bias, axis, backend, out_dtype, scale, amax, rounding, params)
    if out is None and bias is None and where is None and not params:  # the common call: x alone
        x, rewrap = _interop.unwrap(x, "x")
        if rewrap is None:
            name = REGISTRY.get(name)
            if name.kind is _ELEMENTWISE and not name.weighted and name.row_param is None:
                return _plain(name, x, backend, params)
        given_out = None
    else:
        (x, out, bias, where), rewrap, given_out = _unwrap(x, out, bias, where, params)
    run = _prepare(name, x, None, out, bias, axis, where, backend, params)
    if rewrap is None:  # the backend's own array type: nothing to enter
        if given_out is None:
            return run.forward()
        return _wrap(run.forward(), None, given_out)
    with _interop.scope(rewrap):  # torch CUDA: the kernels run on torch's current stream
        result = run.forward()
    return _wrap(result, rewrap, given_out)


def grad(name, x, dy, *, out=None, bias=None, axis=-1, where=None, backend=None, **params):
    """Vector-Jacobian product of ``apply(name, x, ...)`` with the cotangent ``dy``.

    Returns ``dx`` (shape of ``x``); ``(dx, dbias)`` when ``bias`` is given;
    for prelu ``(dx, dweight)`` or ``(dx, dbias, dweight)``; for entmax with
    ``alpha`` an array, ``(dx, dalpha)`` or ``(dx, dbias, dalpha)``, dalpha with
    alpha's shape and dtype.  ``out`` receives ``dx``.  Other arguments as in
    :func:`apply`.
    """
    if params and not _FP8_OPTIONS.isdisjoint(params):
        option = sorted(_FP8_OPTIONS.intersection(params))[0]
        raise TypeError(f"grad() takes no {option}= (FP8 output is forward only: apply(..., out_dtype=...))")
    if dy is None:
        raise TypeError("grad() needs the cotangent dy (an array shaped like the output), got None")
    (x, out, bias, where), rewrap, given_out = _unwrap(x, out, bias, where, params)
    dy, _ = _interop.unwrap(dy, "dy")
    run = _prepare(name, x, dy, out, bias, axis, where, backend, params)
    record = run.call.record
    if rewrap is None:
        grads: Grads = run.backward()
    else:
        with _interop.scope(rewrap):
            grads = run.backward()
    result = [_wrap(grads.dx, rewrap, given_out)]
    extra = [] if bias is None else [grads.dbias]
    if record.weighted:
        extra.append(grads.dweight)
    if run.call.per_row is not None:
        extra.append(_per_row_sums(grads.dalpha, run.row_value))
    result += [_wrap(g, rewrap, None) for g in extra]
    return result[0] if len(result) == 1 else tuple(result)


_FP8_OPTIONS = frozenset(("out_dtype", "scale", "amax", "rounding"))


def _quantized(name, x, out, bias, axis, backend, out_dtype, scale, amax, rounding, params):
    """apply() with FP8 output: every argument checked before the backend writes a byte; with
    ``out=`` the backend writes a private array that is then copied into it whole."""
    record = REGISTRY.get(name)
    if out_dtype is None:
        raise TypeError(f"{record.name}(): scale=, amax= and rounding= go with out_dtype= (an FP8 dtype)")
    if record.kind is _ROWWISE:
        raise ValueError(
            f"{record.name}(): out_dtype= (FP8 output) is for elementwise and gated activations; "
            f"{record.name} is row-wise"
        )
    # a record's own seed (rrelu's) also seeds the rounding; the others take it here
    seed = params.get("seed") if "seed" in record.param_names else params.pop("seed", None)
    (x, fp8_out, bias, _), rewrap, given_out = _unwrap(x, out, bias, None, params)
    run = _prepare(record, x, None, None, bias, axis, None, backend, params)
    call = run.call
    req = _fp8.request(record.name, np.dtype(call.x.dtype), out_dtype, scale, amax, rounding, seed)
    if req.amax != "tensor" and not call.out_shape:
        raise ValueError(f"{record.name}(): amax={req.amax!r} needs x with at least one axis (x is 0-d)")
    if fp8_out is not None:
        _check_out(record, run.be, fp8_out, call.out_shape, req.format.dtype, fp8=True)
    run.call = call._replace(fp8=req)
    if rewrap is None:
        result = run.forward()
    else:
        with _interop.scope(rewrap):
            result = run.forward()
    if fp8_out is not None:
        _layout.ops(run.be).copy_into(fp8_out, result.values)
        result = _fp8.Quantized(fp8_out, result.amax)
    if rewrap is not None:
        return _interop.wrap_quantized(result, rewrap, given_out, req.format)
    return result


def _unwrap(x, out, bias, where, params):
    """Arrays of other libraries (torch, JAX, ...) as backend arrays; how to convert back."""
    x, rewrap = _interop.unwrap(x, "x")
    given_out = out
    out = _interop.unwrap(out, "out", writable=True)[0] if out is not None else None
    bias = _interop.unwrap(bias, "bias")[0] if bias is not None else None
    where = _interop.unwrap(where, "where")[0] if where is not None else None
    if params:
        for key in ("weight", "alpha"):  # prelu's weight and entmax's alpha arrays may be tensors too
            if key in params and not isinstance(params[key], (numbers.Real, np.generic)):
                params[key] = _interop.unwrap(params[key], key)[0]
    return (x, out, bias, where), rewrap, given_out


def _wrap(result, rewrap, given_out):
    if given_out is not None:
        _interop.written(given_out)
        return given_out  # written in place: hand back the caller's own object
    if rewrap is None or result is None:
        return result
    return rewrap(result)


# --------------------------------------------------------------------- checks
def _plain(record: Activation, x, backend, params):
    """:func:`_prepare` and :meth:`_Run.forward` for the common call, an elementwise activation
    (without a weight or row parameter) of x alone: the same checks in the same order, written
    out (each step is a per-call cost).  ``params`` is empty."""
    bound = record.bind(params)
    be = dispatch.select(x, backend)
    x = _numbers(be, x, "x")
    shape = tuple(x.shape)
    try:
        return be.forward(_new_tuple(Call, (record, bound, x, shape, None, None, None, None, None, None, None, None)))
    except MemoryError as exc:
        raise _no_memory(record, shape, exc) from None


def _prepare(name, x, dy, out, bias, axis, where, backend, params) -> "_Run":
    record = REGISTRY.get(name)
    bound = record.bind(params)
    be = dispatch.select(x, backend)
    x = _numbers(be, x, "x")
    dtype = x.dtype
    if not isinstance(dtype, np.dtype):
        dtype = np.dtype(dtype)
    shape = tuple(x.shape)
    if params:  # the defaults fit every dtype
        _check_params_fit(record, bound, dtype)

    ax = None
    out_shape = shape
    if record.kind is not _ELEMENTWISE:
        ax = _normalize_axis(record, axis, len(shape))
        if record.kind is _GATED:
            if shape[ax] % 2:
                raise ValueError(
                    f"{record.name}(): axis {axis} has odd length {shape[ax]}; gated activations split it in two halves"
                )
            out_shape = shape[:ax] + (shape[ax] // 2,) + shape[ax + 1 :]
    if where is not None:
        if record.kind is not _ROWWISE:
            raise TypeError(f"{record.name}(): where= is only accepted by row-wise activations (softmax family)")
        where = _mask(be, where, shape)

    if bias is not None:
        if len(shape) == 0:
            raise ValueError(f"{record.name}(): bias needs x with at least one axis (x is 0-d)")
        bias = _vector(be, bias, "bias", dtype, shape[-1], allow_one=False)

    weight = None
    if record.weighted:
        weight = bound["weight"]
        if not isinstance(weight, float):
            weight = _vector(be, weight, "weight", dtype, shape[-1] if shape else 1, allow_one=True)

    if dy is not None:
        given = dy
        dy = _numbers(be, dy, "dy")
        if tuple(dy.shape) != out_shape:
            raise ValueError(f"{record.name}(): dy has shape {tuple(dy.shape)}, expected {out_shape}")
        if dy.dtype != dtype:
            got = getattr(given, "dtype", None)
            got = dy.dtype if got is None else got
            read = f" (read as {dy.dtype})" if np.dtype(got) != dy.dtype else ""
            raise ValueError(f"{record.name}(): dy has dtype {got}{read}, expected x's dtype {dtype}")

    row_value, per_row = None, None
    row_param = record.row_param
    if row_param is not None:
        row_value, per_row = _row_values(record, row_param, bound[row_param.name], shape, ax, dtype, be)

    result_shape = shape if dy is not None else out_shape
    if out is not None:
        _check_out(record, be, out, result_shape, dtype)

    if isinstance(ax, tuple):
        run = _Joint(record, bound, be, x, ax, out, bias, where, dy, per_row)
    else:
        if out is not None:
            x, dy, bias, weight, where = _apart_from_out(be, out, x, dy, bias, weight, where)
        # tuple.__new__: the Call with every field in order, without the generated __new__'s
        # keyword handling (a per-call cost)
        run = _Run(be, _new_tuple(Call, (record, bound, x, out_shape, ax, out, bias, weight, where, dy, None, per_row)))
    run.row_value = row_value
    return run


_new_tuple = tuple.__new__
assert Call._fields[-2:] == ("fp8", "per_row") and len(Call._fields) == 12  # the order _prepare builds


def _row_values(record: Activation, param, value, shape, ax, dtype, be):
    """A ``"row"`` parameter (entmax's alpha): a float is checked in the compute precision (it
    must keep its bound once rounded: alpha = 1 + 1e-9 is 1 in float32); an array must broadcast
    to the row shape (x's shape with the axis, or axes, of size 1) and hold valid values.  Returns
    (the array as given or None, its float64 values rounded to the compute precision and
    broadcast to the row shape as a host NumPy array, or None)."""
    cdt = _dtypes.compute_dtype(dtype)
    where = f"{record.name}(): parameter {param.name!r}"
    if isinstance(value, float):
        param.check_value(float(np.asarray(value).astype(cdt)), where + f" rounded to {cdt.name}")
        return None, None
    axes = ax if isinstance(ax, tuple) else (ax,)
    row_shape = tuple(1 if d in axes else s for d, s in enumerate(shape))
    host = _host_floats(value, where)
    vshape = host.shape
    if len(vshape) > len(shape) or any(v not in (1, r) for v, r in zip(vshape[::-1], row_shape[::-1])):
        raise ValueError(
            f"{where} has shape {vshape}, which does not broadcast to the row shape {row_shape} "
            f"(x's shape {shape} with axis {ax} of size 1)"
        )
    if np.isnan(host).any():
        raise ValueError(f"{where} must not hold NaN")
    rounded = host.astype(cdt).astype(np.float64)
    param.check_elements(rounded, where + f" (an element, rounded to {cdt.name})")
    return value, np.ascontiguousarray(np.broadcast_to(rounded, row_shape))  # host: one value per row


def _host_floats(value, where):
    """An array parameter's values on the host as float64 (CuPy arrays are copied over)."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{where} must be a float or an array, got {type(value).__name__}")
    if hasattr(value, "compute") and hasattr(value, "chunks"):  # Dask: small (one per row at most)
        value = value.compute()
    if hasattr(value, "get") and type(value).__module__.startswith("cupy"):
        value = value.get()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where} must be a float or an array of floats: {exc}") from None
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        if arr.dtype.kind == "V" or "bfloat16" in str(arr.dtype):
            arr = arr.astype(np.float64)
        else:
            raise TypeError(f"{where} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _per_row_sums(dalpha, value):
    """The per-row gradient (row shape, float64) summed to the parameter's shape and dtype."""
    shape = tuple(np.shape(value))
    pad = dalpha.ndim - len(shape)
    axes = tuple(range(pad)) + tuple(pad + d for d, s in enumerate(shape) if s == 1 and dalpha.shape[pad + d] != 1)
    total = dalpha.sum(axis=axes, keepdims=True) if axes else dalpha
    vdt = getattr(value, "dtype", None)
    vdt = np.dtype(np.float64) if vdt is None or np.dtype(vdt).kind != "f" else np.dtype(vdt)
    with np.errstate(over="ignore"):
        return total.reshape(shape).astype(vdt)


_LARGEST_COMPUTED: dict[np.dtype, float] = {}  # dtype -> the largest float of its compute precision


def _check_params_fit(record: Activation, bound, dtype: np.dtype) -> None:
    """Float parameters must be finite in the precision x is computed in (float32 for 16- and
    32-bit input): 1e300 would reach a float32 kernel as inf and give NaN for finite x."""
    big = _LARGEST_COMPUTED.get(dtype)
    if big is None:
        big = _LARGEST_COMPUTED[dtype] = float(np.finfo(_dtypes.compute_dtype(dtype)).max)
    for p in record.params:
        v = bound[p.name]
        if p.type in ("float", "optional_float", "weight") and isinstance(v, float) and math.isfinite(v) and abs(v) > big:
            cdt = _dtypes.compute_dtype(dtype)
            raise ValueError(
                f"{record.name}(): parameter {p.name!r} = {v!r} is beyond the largest {cdt.name} ({big:.6g}), "
                f"the precision {dtype} input is computed in"
            )


def _check_out(record: Activation, be: Backend, out: Any, shape: tuple[int, ...], dtype: np.dtype, *,
               fp8: bool = False) -> None:
    if not be.owns(out):
        raise ValueError(
            f"{record.name}(): out is a {type(out).__module__}.{type(out).__name__}, "
            f"but the {be.name} backend writes {be.name} arrays"
        )
    _refuse_masked(out, "out")
    if tuple(out.shape) != shape:
        raise ValueError(f"{record.name}(): out has shape {tuple(out.shape)}, expected {shape}")
    if fp8:  # GPU array libraries without FP8 dtypes (CuPy, Numba) hold the codes as uint8
        if np.dtype(out.dtype) != dtype and not (be.name != "numpy" and np.dtype(out.dtype) == np.uint8):
            raise ValueError(f"{record.name}(): out has dtype {out.dtype}, expected {dtype} (out_dtype)")
    elif out.dtype != dtype:
        odt = np.dtype(out.dtype)
        if odt.kind == "f" and not odt.isnative and odt.newbyteorder("=") == dtype:
            raise ValueError(
                f"{record.name}(): out has dtype {odt.str} (non-native byte order); results are written "
                f"in native order: pass an out of dtype {dtype}"
            )
        raise ValueError(f"{record.name}(): out has dtype {out.dtype}, expected {dtype}")
    if getattr(getattr(out, "flags", None), "writeable", True) is False:
        raise ValueError(f"{record.name}(): out is read-only")


# ---------------------------------------------------------------- running
class _Run:
    """A validated call and the backend that runs it."""

    row_value = None  # a "row" parameter given as an array (its gradient is summed to its shape)

    def __init__(self, be: Backend, call: Call):
        self.be = be
        self.call = call

    def forward(self):
        try:
            return self.be.forward(self.call)
        except MemoryError as exc:
            raise _no_memory(self.call.record, tuple(self.call.x.shape), exc) from None

    def backward(self) -> Grads:
        try:
            return self.be.backward(self.call)
        except MemoryError as exc:
            raise _no_memory(self.call.record, tuple(self.call.x.shape), exc) from None


class _Joint(_Run):
    """A row-wise activation over several axes: those axes moved next to each other and merged
    into one (``x.transpose(perm).reshape(merged)``), the backend run over that one axis, the
    result put back in ``x``'s layout and, with ``out=``, copied into it whole.

    The merged axis goes last when the reduced axes include x's last one (the bias, along that
    axis, is then tiled over the merged axis and dbias folded back), else just before x's last
    axis (the bias keeps its axis)."""

    def __init__(self, record, bound, be, x, axes, out, bias, where, dy, per_row=None):
        shape = tuple(x.shape)
        n = len(shape)
        last = n - 1
        merged = math.prod(shape[a] for a in axes)
        rest = [d for d in range(n) if d not in axes]
        if last in axes:
            perm = rest + list(axes)
            new_shape = tuple(shape[d] for d in rest) + (merged,)
            axis = len(rest)
        else:
            perm = rest[:-1] + list(axes) + [last]
            new_shape = tuple(shape[d] for d in rest[:-1]) + (merged, shape[last])
            axis = len(rest) - 1
        self.ops = ops = _layout.ops(be)
        if out is not None and not ops.writes_out:
            raise ValueError(
                f"{record.name}(): out= is not supported by the {be.name} backend (its arrays are immutable): "
                "use the returned array"
            )
        self.shape = shape
        self.perm_shape = tuple(shape[p] for p in perm)
        self.inverse = tuple(int(i) for i in np.argsort(perm))
        self.out = out
        self.channels = shape[last] if last in axes and bias is not None else None
        with _allocation_of(record, shape):
            x_r = ops.rearranged(x, tuple(perm), new_shape)
            dy_r = None if dy is None else ops.rearranged(dy, tuple(perm), new_shape)
            where_r = None
            if where is not None:
                where_r = ops.rearranged(ops.broadcast(where, shape), tuple(perm), new_shape)
            if self.channels is not None:
                c = self.channels
                bias = ops.tiled(bias, merged // c if c else 0)
            self.row_shape = None
            if per_row is not None:  # the row shape has 1 at every axis of the tuple: moved alike
                self.row_shape = tuple(per_row.shape)
                self.row_perm_shape = tuple(self.row_shape[p] for p in perm)
                new_rows = tuple(1 if d == axis else s for d, s in enumerate(new_shape))
                per_row = _layout.ArrayAPI.rearranged(per_row, tuple(perm), new_rows)  # a host array
        super().__init__(be, Call(record, bound, x_r, new_shape, axis, None, bias, None, where_r, dy_r, per_row=per_row))

    def _restore(self, result):
        back = self.ops.rearranged(result, self.inverse, self.shape, src_shape=self.perm_shape)
        if self.out is None:
            return back
        self.ops.copy_into(self.out, back)
        return self.out

    def forward(self):
        with _allocation_of(self.call.record, tuple(self.call.x.shape)):
            return self._restore(self.be.forward(self.call))

    def backward(self) -> Grads:
        with _allocation_of(self.call.record, tuple(self.call.x.shape)):
            grads = self.be.backward(self.call)
            dbias = grads.dbias
            if dbias is not None and self.channels is not None:
                dbias = self.ops.folded(dbias, self.channels)
            dalpha = grads.dalpha
            if dalpha is not None:
                # NumPy, CuPy or Dask (the Numba backend hands it back on the host)
                dalpha = _layout.ArrayAPI.rearranged(dalpha, self.inverse, self.row_shape, src_shape=self.row_perm_shape)
            return Grads(self._restore(grads.dx), dbias, None, dalpha)


def _no_memory(record: Activation, shape: tuple[int, ...], exc: MemoryError) -> ValueError:
    """A result or temporary that cannot be allocated is a ValueError naming x (raised before
    anything is written: every backend allocates before it writes ``out``)."""
    return ValueError(
        f"{record.name}(): x has shape {shape} ({math.prod(shape)} elements); the memory for the "
        f"result or its temporaries cannot be allocated ({exc})"
    )


@contextlib.contextmanager
def _allocation_of(record: Activation, shape: tuple[int, ...]):
    try:
        yield
    except MemoryError as exc:
        raise _no_memory(record, shape, exc) from None


def _apart_from_out(be: Backend, out: Any, x, dy, bias, weight, where):
    """The inputs, with a private copy of each one that shares memory with ``out`` other than
    being exactly it (``out=x`` and ``out=dy`` are in place: every kernel reads an element
    before it writes it)."""
    ops = None

    def apart(a, may_be_out: bool):
        nonlocal ops
        if a is None or isinstance(a, float):
            return a
        relation = _layout.overlap(out, a)
        if relation == "apart" or (relation == "same" and may_be_out):
            return a
        ops = ops or _layout.ops(be)
        return ops.copy(a)

    return apart(x, True), apart(dy, True), apart(bias, False), apart(weight, False), apart(where, False)


# ------------------------------------------------------------------ inputs
def _python_array(value: Any, what: str) -> np.ndarray | None:
    """A Python value (number, nested list or tuple) as a NumPy array of float64 or bool; None for
    anything else (arrays, which the backend reads).  Refused by name: None, strings, bytes,
    ragged lists, non-numbers; a value too large for float64 is a ValueError."""
    if isinstance(value, np.generic):
        if value.dtype.kind in "USO":
            raise TypeError(f"{what} must be an array or a number, got {type(value).__name__} {_shown(value)}")
        return None
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{what} must be an array or a number, got {type(value).__name__} {_shown(value)}")
    if not isinstance(value, (list, tuple, numbers.Number)):
        return None
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what} is a nested list of unequal lengths (ragged), which is no array: {exc}") from None
    except OverflowError:
        raise ValueError(f"{what} holds a value too large for float64") from None
    kind = arr.dtype.kind
    if kind in "USV":
        raise TypeError(f"{what} must contain numbers, got strings (dtype {arr.dtype}): convert them first")
    if kind == "O":
        arr = _objects_as_float64(arr, what)
    elif kind in "iu":
        arr = arr.astype(np.float64)
    elif kind == "c":
        _dtypes.check_supported(arr.dtype, what)  # complex: a TypeError saying what to do
    return arr


def _objects_as_float64(arr: np.ndarray, what: str) -> np.ndarray:
    flat = arr.reshape(-1)
    result = np.empty(flat.shape, np.float64)
    for i, v in enumerate(flat):
        if isinstance(v, (list, tuple)):
            raise ValueError(f"{what} is a nested list of unequal lengths (ragged), which is no array")
        if v is None or isinstance(v, (str, bytes, complex)) or not isinstance(v, numbers.Real):
            raise TypeError(f"{what} must contain only real numbers, got {type(v).__name__} {_shown(v)}")
        try:
            result[i] = float(v)
        except OverflowError:
            raise ValueError(f"{what} holds a value too large for float64") from None
    return result.reshape(arr.shape)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _refuse_masked(arr: Any, what: str) -> None:
    """NumPy masked arrays (also as Dask chunks): their mask would be ignored, so they are refused."""
    if isinstance(arr, np.ma.MaskedArray) or isinstance(getattr(arr, "_meta", None), np.ma.MaskedArray):
        hint = " (for the softmax family: where=~mask)" if what == "x" else ""
        raise TypeError(
            f"{what} is a NumPy masked array, whose mask activations would ignore: pass "
            f"{what}.filled(value) or {what}.data{hint}"
        )


def _numbers(be: Backend, value: Any, what: str):
    """``value`` as a floating array of ``be``: Python values and integer arrays become float64,
    byte-swapped arrays native; bool, complex and the rest are refused naming ``what``."""
    tp = type(value)
    if (tp is be.array_type or (tp is np.ndarray and be.owns(value))) and value.dtype in _dtypes.NATIVE_FLOATS:
        return value  # the common case, with nothing to convert or refuse (not a masked subclass)
    host = _python_array(value, what)
    arr = be.asarray(value, what) if host is None else be.asarray(host.tolist(), what, dtype=host.dtype)
    _refuse_masked(arr, what)
    dt = np.dtype(arr.dtype)
    if dt.kind in "iu":
        arr = be.asarray(arr, what, dtype=np.float64)  # as NumPy's ufuncs do
    elif dt.kind == "f" and not dt.isnative:
        arr = be.asarray(arr, what, dtype=dt.newbyteorder("="))
    _dtypes.check_supported(arr.dtype, what)
    return arr


def _normalize_axis(record: Activation, axis: Any, ndim: int) -> int | tuple[int, ...]:
    """An int in [0, ndim); for row-wise activations a tuple of two or more sorted axes."""
    if ndim == 0:
        raise ValueError(f"{record.name}(): needs an array with at least one axis, got a 0-d array")
    if not isinstance(axis, tuple):
        return _one_axis(record, axis, ndim)
    if record.kind is not _ROWWISE:
        raise TypeError(f"{record.name}(): axis must be an int (tuples of axes are for the softmax family), got {axis!r}")
    if not axis:
        raise ValueError(f"{record.name}(): axis is an empty tuple; name at least one axis")
    axes = [_one_axis(record, a, ndim) for a in axis]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{record.name}(): axis {axis!r} names an axis twice")
    return axes[0] if len(axes) == 1 else tuple(sorted(axes))


def _one_axis(record: Activation, axis: Any, ndim: int) -> int:
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{record.name}(): axis must be an int, got bool {axis!r}")
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"{record.name}(): axis must be an int, got {type(axis).__name__} {_shown(axis)}") from None
    if not -ndim <= ax < ndim:
        raise ValueError(f"{record.name}(): axis {ax} is out of range for an array with {ndim} dimensions")
    return ax % ndim


def _vector(be: Backend, value: Any, what: str, dtype, length: int, allow_one: bool):
    arr = _numbers(be, value, what)
    n = tuple(arr.shape)
    ok = len(n) == 1 and (n[0] == length or (allow_one and n[0] == 1))
    if not ok:
        need = f"({length},)" + (" or (1,)" if allow_one else "")
        raise ValueError(f"{what} must be 1-D along the last axis of x with shape {need}, got {n}")
    if arr.dtype != dtype:
        arr = be.asarray(arr, what, dtype=dtype)
    return arr


def _mask(be: Backend, where: Any, shape: tuple[int, ...]):
    host = _python_array(where, "where")
    mask = be.asarray(where, "where") if host is None else be.asarray(host.tolist(), "where", dtype=host.dtype)
    _refuse_masked(mask, "where")
    if mask.dtype != bool:
        raise ValueError(f"where must be a boolean mask, got dtype {mask.dtype}")
    mshape = tuple(mask.shape)
    if len(mshape) > len(shape) or any(m not in (1, s) for m, s in zip(mshape[::-1], shape[::-1])):
        raise ValueError(f"where has shape {mshape}, which does not broadcast to x's shape {shape}")
    return mask
