"""apply / grad: look up, bind, dispatch, validate, call the backend.

Everything a user can get wrong is checked here, before any backend writes a
byte, so ``out=`` is never left half-written by bad input.
"""
from __future__ import annotations

import operator
from typing import Any

from . import _dtypes, _interop, dispatch
from .backends import Backend, Call, Grads
from .catalogue import REGISTRY
from .registry import Activation, Kind

__all__ = ["apply", "grad"]


def apply(name, x, *, out=None, bias=None, axis=-1, where=None, backend=None, **params):
    """``name(x + bias)`` on the backend where ``x`` lives.

    Args:
        name: activation name or alias (``activations.names()``).
        x: input array: NumPy, CuPy, Numba device array, any
            ``__cuda_array_interface__`` object, Dask array; lists and scalars
            become float64.  float16, bfloat16, float32 or float64.
        out: optional output array (same type, shape and dtype as the result);
            ``out=x`` works in place.
        bias: optional 1-D array along the last axis of ``x``, fused: ``f(x + bias)``.
        axis: the axis of row-wise (softmax family) and gated (glu family)
            activations; ignored by elementwise ones.
        where: row-wise only: boolean mask (broadcastable to ``x``); masked
            entries are left out of the row and their outputs are 0.
        backend: ``"numpy"``, ``"cupy"``, ``"numba"``, ``"dask"`` or None (auto;
            the ``ACTIVATIONS_BACKEND`` environment variable also sets it).
        **params: the activation's parameters (``describe(name)`` lists them).

    Returns:
        The output array (``out`` when given).
    """
    (x, out, bias, where), rewrap, given_out = _unwrap(x, out, bias, where, params)
    record, call, be = _prepare(name, x, None, out, bias, axis, where, backend, params)
    with _interop.scope(rewrap):  # torch CUDA: the kernels run on torch's current stream
        result = be.forward(call)
    return _wrap(result, rewrap, given_out)


def grad(name, x, dy, *, out=None, bias=None, axis=-1, where=None, backend=None, **params):
    """Vector-Jacobian product of ``apply(name, x, ...)`` with the cotangent ``dy``.

    Returns ``dx`` (shape of ``x``); ``(dx, dbias)`` when ``bias`` is given;
    for prelu ``(dx, dweight)`` or ``(dx, dbias, dweight)``.  ``out`` receives
    ``dx``.  Other arguments as in :func:`apply`.
    """
    if dy is None:
        raise TypeError("grad() needs the cotangent dy (an array shaped like the output), got None")
    (x, out, bias, where), rewrap, given_out = _unwrap(x, out, bias, where, params)
    dy, _ = _interop.unwrap(dy, "dy")
    record, call, be = _prepare(name, x, dy, out, bias, axis, where, backend, params)
    with _interop.scope(rewrap):
        grads: Grads = be.backward(call)
    result = [_wrap(grads.dx, rewrap, given_out)]
    extra = [] if bias is None else [grads.dbias]
    if record.name == "prelu":
        extra.append(grads.dweight)
    result += [_wrap(g, rewrap, None) for g in extra]
    return result[0] if len(result) == 1 else tuple(result)


def _unwrap(x, out, bias, where, params):
    """Arrays of other libraries (torch, JAX, ...) as backend arrays; how to convert back."""
    x, rewrap = _interop.unwrap(x, "x")
    given_out = out
    out = _interop.unwrap(out, "out", writable=True)[0] if out is not None else None
    bias = _interop.unwrap(bias, "bias")[0] if bias is not None else None
    where = _interop.unwrap(where, "where")[0] if where is not None else None
    if "weight" in params:  # prelu's weight array may be a tensor too
        params["weight"] = _interop.unwrap(params["weight"], "weight")[0]
    return (x, out, bias, where), rewrap, given_out


def _wrap(result, rewrap, given_out):
    if given_out is not None:
        _interop.written(given_out)
        return given_out  # written in place: hand back the caller's own object
    if rewrap is None or result is None:
        return result
    return rewrap(result)


# --------------------------------------------------------------------- checks
def _prepare(name, x, dy, out, bias, axis, where, backend, params) -> tuple[Activation, Call, Backend]:
    record = REGISTRY.get(name)
    bound = record.bind(params)
    be = dispatch.select(x, backend)
    x = be.asarray(x, "x")
    dtype = _dtypes.check_supported(x.dtype, "x")
    shape = tuple(x.shape)

    ax = None
    out_shape = shape
    if record.kind is not Kind.ELEMENTWISE:
        ax = _normalize_axis(record, axis, len(shape))
        if record.kind is Kind.GATED:
            if shape[ax] % 2:
                raise ValueError(
                    f"{record.name}(): axis {axis} has odd length {shape[ax]}; gated activations split it in two halves"
                )
            out_shape = shape[:ax] + (shape[ax] // 2,) + shape[ax + 1 :]
    if where is not None:
        if record.kind is not Kind.ROWWISE:
            raise TypeError(f"{record.name}(): where= is only accepted by row-wise activations (softmax family)")
        where = _mask(be, where, shape)

    if bias is not None:
        if len(shape) == 0:
            raise ValueError(f"{record.name}(): bias needs x with at least one axis (x is 0-d)")
        bias = _vector(be, bias, "bias", dtype, shape[-1], allow_one=False)

    weight = None
    if record.name == "prelu":
        weight = bound["weight"]
        if not isinstance(weight, float):
            weight = _vector(be, weight, "weight", dtype, shape[-1] if shape else 1, allow_one=True)

    if dy is not None:
        dy = be.asarray(dy, "dy")
        if tuple(dy.shape) != out_shape:
            raise ValueError(f"{record.name}(): dy has shape {tuple(dy.shape)}, expected {out_shape}")
        if dy.dtype != dtype:
            raise ValueError(f"{record.name}(): dy has dtype {dy.dtype}, expected x's dtype {dtype}")

    result_shape = shape if dy is not None else out_shape
    if out is not None:
        if not be.owns(out):
            raise ValueError(
                f"{record.name}(): out is a {type(out).__module__}.{type(out).__name__}, "
                f"but the {be.name} backend writes {be.name} arrays"
            )
        if tuple(out.shape) != result_shape:
            raise ValueError(f"{record.name}(): out has shape {tuple(out.shape)}, expected {result_shape}")
        if out.dtype != dtype:
            raise ValueError(f"{record.name}(): out has dtype {out.dtype}, expected {dtype}")
        if getattr(getattr(out, "flags", None), "writeable", True) is False:
            raise ValueError(f"{record.name}(): out is read-only")

    call = Call(record, bound, x, out_shape, ax, out, bias, weight, where, dy)
    return record, call, be


def _normalize_axis(record: Activation, axis: Any, ndim: int) -> int:
    if ndim == 0:
        raise ValueError(f"{record.name}(): needs an array with at least one axis, got a 0-d array")
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"{record.name}(): axis must be an int, got {type(axis).__name__} {axis!r}") from None
    if not -ndim <= ax < ndim:
        raise ValueError(f"{record.name}(): axis {ax} is out of range for an array with {ndim} dimensions")
    return ax % ndim


def _vector(be: Backend, value: Any, what: str, dtype, length: int, allow_one: bool):
    arr = be.asarray(value, what)
    _dtypes.check_supported(arr.dtype, what)
    n = tuple(arr.shape)
    ok = len(n) == 1 and (n[0] == length or (allow_one and n[0] == 1))
    if not ok:
        need = f"({length},)" + (" or (1,)" if allow_one else "")
        raise ValueError(f"{what} must be 1-D along the last axis of x with shape {need}, got {n}")
    if arr.dtype != dtype:
        arr = be.asarray(arr, what, dtype=dtype)
    return arr


def _mask(be: Backend, where: Any, shape: tuple[int, ...]):
    mask = be.asarray(where, "where")
    if mask.dtype != bool:
        raise ValueError(f"where must be a boolean mask, got dtype {mask.dtype}")
    mshape = tuple(mask.shape)
    if len(mshape) > len(shape) or any(m not in (1, s) for m, s in zip(mshape[::-1], shape[::-1])):
        raise ValueError(f"where has shape {mshape}, which does not broadcast to x's shape {shape}")
    return mask
