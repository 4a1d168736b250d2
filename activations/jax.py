"""Training with JAX: ``jax.grad``, ``jit``, ``vmap`` and ``pmap`` through a ``custom_vjp``.

    import activations.jax as aj

    y = aj.apply("gelu", x, bias=b)          # differentiable; traceable under jit/vmap/pmap
    jax.grad(lambda x: aj.apply("swiglu", x).sum())(x)
    q = aj.quantize("swiglu", x, out_dtype=jnp.float8_e4m3fn, scale=4.0)   # FP8 values + amax

The forward is :func:`activations.apply`, the backward (``custom_vjp``) the fused
:func:`activations.grad` (dx, dbias and prelu's dweight in one pass).  Both run as XLA
custom calls through ``jax.experimental.buffer_callback``: an XLA FFI call whose handler
hands the computation's own buffers to Python, so on the CPU the compiled engine reads the
inputs and writes the output in XLA's memory, with no copy in either direction; on a GPU
the buffers go to the CUDA kernels (CuPy) on XLA's stream.  Where ``buffer_callback`` is
missing (older jax) ``jax.pure_callback`` is used instead (the result is then copied once).
:data:`MODE` says which.  docs/training.md has the per-call costs.

Residuals saved for the backward: ``x`` (plus ``bias``, ``weight`` and ``where``), as in
:mod:`activations.torch`.  Activation parameters are static Python values (part of the
traced computation); ``bias`` and prelu's array ``weight`` are differentiable arguments.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _fp8, _interface
from .catalogue import REGISTRY
from .registry import Kind

try:
    from jax.experimental.buffer_callback import buffer_callback as _buffer_callback
except ImportError:  # pragma: no cover - jax older than buffer_callback
    _buffer_callback = None

__all__ = ["apply", "quantize", "MODE"]

#: how the computation enters XLA: "buffer_callback" (zero-copy FFI) or "pure_callback"
MODE = "buffer_callback" if _buffer_callback is not None else "pure_callback"

_FLOATS = ("float16", "bfloat16", "float32", "float64")


class _Spec(NamedTuple):
    """Everything static about one call (hashable: it keys the callbacks)."""

    name: str
    kind: str
    axis: int | tuple | None  # non-negative, in the unbatched x (row-wise: a tuple of axes); None for elementwise
    ndim: int  # the unbatched x's ndim (vmap adds leading dimensions in the callbacks)
    params: tuple  # validated scalar parameters, (name, value) in record order
    bias: bool
    weight: bool  # prelu's weight is an array argument
    where: bool
    fp8: tuple = ()  # quantize(): (out_dtype name, scale, amax, rounding, seed) as given, validated


# ------------------------------------------------------------------ public
def apply(name, x, *, bias=None, axis=-1, where=None, **params):
    """``name(x + bias)`` as a differentiable JAX operation.

    Args:
        name: activation name or alias (``activations.names()``).
        x: float16, bfloat16, float32 or float64 array (a traced value inside transformations).
        bias: optional 1-D array along the last axis, fused: ``f(x + bias)``; differentiable.
        axis: the axis of row-wise and gated activations (ignored by elementwise ones); row-wise
            ones also take a tuple of axes and normalize over all of them at once.
        where: row-wise only: boolean mask broadcastable to ``x``; masked entries give 0.
        **params: the activation's parameters as static Python values; prelu's ``weight``
            may be an array (one slope, or one per last-axis channel), and entmax's ``alpha`` an
            array broadcastable to the row shape (x's shape with ``axis`` of size 1), both
            differentiable.

    Returns:
        A ``jax.Array`` whose VJP is :func:`activations.grad`.
    """
    spec, x, bias, weight, where = _validated(name, x, bias, axis, where, params)
    return _differentiable(spec, x, bias, weight, where)


def quantize(name, x, *, out_dtype=None, scale=1.0, amax="tensor", rounding="nearest", seed=None, bias=None,
             axis=-1, **params):
    """``name(x + bias)`` written as FP8 with its amax, in one pass (docs/semantics.md, "FP8 output").

    The JAX form of ``activations.apply(..., out_dtype=...)``, traceable under ``jit`` and
    ``vmap`` (under ``vmap`` each batch element is quantized on its own: its own amax, and
    stochastic rounding counts its elements from 0).

    Args:
        name: an elementwise or gated activation (``activations.names("elementwise")``, ``"gated"``).
        x: float16, bfloat16, float32 or float64 array (a traced value inside transformations).
        out_dtype: ``jnp.float8_e4m3fn`` (default) or ``jnp.float8_e5m2`` (or the ml_dtypes
            types, or their names).
        scale: the factor applied before rounding, a static Python number (finite, > 0).
        amax: ``"tensor"`` (default), ``"row"`` (over the last axis of the output) or ``"group"``
            (groups of 128 along it): float32 max |f(x)| before scaling.
        rounding: ``"nearest"`` (ties to even) or ``"stochastic"``, which needs an int ``seed``.
        bias: optional 1-D array along the last axis, fused: ``f(x + bias)``.
        axis: the axis of gated activations.
        **params: the activation's parameters, as in :func:`apply`.

    Returns:
        ``activations.Quantized(values, amax)``: a JAX FP8 array of the output's shape and a
        float32 array (shape (), the rows, or the groups of 128).  Forward only: the inputs are
        read as data (``stop_gradient``; the rounding has no useful derivative).
    """
    record = REGISTRY.get(name)
    if record.kind is Kind.ROWWISE:
        raise ValueError(f"{record.name}(): quantize (FP8 output) is for elementwise and gated activations; "
                         f"{record.name} is row-wise")
    for key, value in (("scale", scale), ("seed", seed)):
        if isinstance(value, jax.core.Tracer):
            raise TypeError(f"{record.name}(): {key} is a traced JAX value; it is static: pass a Python number")
    own_seed = "seed" in record.param_names
    if own_seed and seed is not None:
        params["seed"] = seed  # the record's own seed (rrelu's) also seeds the rounding
    elif own_seed:
        seed = params.get("seed")
    fmt = _fp8.format_of("float8_e4m3fn" if out_dtype is None else out_dtype)
    spec, x, bias, weight, _ = _validated(record.name, x, bias, axis, None, params)
    req = _fp8.request(record.name, np.dtype(x.dtype), fmt.dtype.name, scale, amax, rounding, seed)
    if req.amax != "tensor" and x.ndim == 0:
        raise ValueError(f"{record.name}(): amax={req.amax!r} needs x with at least one axis (x is 0-d)")
    spec = spec._replace(fp8=(fmt.dtype.name, 1.0 if scale is None else float(scale), req.amax, "stochastic" if req.stochastic else "nearest",
                              req.seed if req.stochastic else None))
    out_shape = _out_shape(spec, x.shape)
    results = (jax.ShapeDtypeStruct(out_shape, fmt.dtype),
               jax.ShapeDtypeStruct(req.amax_shape(out_shape), jnp.float32))
    operands = [jax.lax.stop_gradient(a) for a in _present(x, bias, weight)]  # read as data, as torch's
    values, amax_out = _callback(spec, "quantize", results)(*operands)
    return _fp8.Quantized(values, amax_out)


def _validated(name, x, bias, axis, where, params):
    """Check every argument of one call (errors name the argument) -> (spec, x, bias, weight, where)."""
    record = REGISTRY.get(name)
    x = _as_array(x, "x", record.name)
    dtype = np.dtype(x.dtype)
    if dtype.name not in _FLOATS:
        raise TypeError(
            f"{record.name}(): x has dtype {dtype}; use float16, bfloat16, float32 or float64 (cast first)"
        )
    weight = None
    if record.weighted and "weight" in params and not _is_scalar(params["weight"]):
        weight = _as_array(params.pop("weight"), "weight", record.name)
        if weight.ndim == 0:
            weight = weight.reshape(1)
        c = x.shape[-1] if x.ndim else 1
        if weight.ndim != 1 or weight.shape[0] not in (1, c):
            raise ValueError(f"weight must be 1-D along the last axis of x with shape ({c},) or (1,), "
                             f"got {tuple(weight.shape)}")
        _float_dtype(weight, "weight", record.name)
        weight = weight.astype(dtype)
    key = _tensor_key(record.name)
    if key == "alpha" and "alpha" in params and not _is_scalar(params["alpha"]):
        weight = _as_array(params.pop("alpha"), "alpha", record.name)  # its own dtype: dalpha has it
        _float_dtype(weight, "alpha", record.name)
    for key, value in params.items():
        if isinstance(value, jax.core.Tracer):
            raise TypeError(f"{record.name}(): parameter {key!r} is a traced JAX value; activation parameters "
                            "are static: pass a Python number")
    bound = record.bind(params)
    values = tuple((k, v) for k, v in bound.values.items()
                   if not (k == _tensor_key(record.name) and weight is not None))

    ax = None
    out_shape = tuple(x.shape)
    if record.kind is not Kind.ELEMENTWISE:
        ax = _normalize_axis(record.name, axis, x.ndim)
        if record.kind is Kind.GATED:
            if x.shape[ax] % 2:
                raise ValueError(f"{record.name}(): axis {axis} has odd length {x.shape[ax]}; "
                                 "gated activations split it in two halves")
            out_shape = out_shape[:ax] + (x.shape[ax] // 2,) + out_shape[ax + 1:]
    if weight is not None and _tensor_key(record.name) == "alpha":
        _check_row_shape(record.name, weight, x.shape, ax)
    if bias is not None:
        bias = _as_array(bias, "bias", record.name)
        if x.ndim == 0:
            raise ValueError(f"{record.name}(): bias needs x with at least one axis (x is 0-d)")
        if bias.ndim != 1 or bias.shape[0] != x.shape[-1]:
            raise ValueError(f"bias must be 1-D along the last axis of x with shape ({x.shape[-1]},), "
                             f"got {tuple(bias.shape)}")
        _float_dtype(bias, "bias", record.name)
        bias = bias.astype(dtype)
    if where is not None:
        if record.kind is not Kind.ROWWISE:
            raise TypeError(f"{record.name}(): where= is only accepted by row-wise activations (softmax family)")
        where = _as_array(where, "where", record.name)
        if where.dtype != jnp.bool_:
            raise ValueError(f"where must be a boolean mask, got dtype {where.dtype}")
        try:
            where = jnp.broadcast_to(where, x.shape)  # full shape: vmap then batches it like x
        except ValueError:
            raise ValueError(f"where has shape {tuple(where.shape)}, which does not broadcast to x's shape "
                             f"{tuple(x.shape)}") from None
    spec = _Spec(record.name, record.kind.value, ax, x.ndim, values, bias is not None, weight is not None,
                 where is not None)
    return spec, x, bias, weight, where


# ------------------------------------------------------------------- checks
@functools.lru_cache(maxsize=None)
def _tensor_key(name: str):
    """The parameter that may be an array and gets a gradient: prelu's weight, entmax's alpha."""
    return next((p.name for p in REGISTRY.get(name).params if p.type in ("weight", "row")), None)


def _check_row_shape(name: str, alpha, shape: tuple, ax) -> None:
    """An array alpha broadcasts to the row shape (x's shape with the axis, or axes, of size 1):
    checked while tracing, as the front end checks it (its values are checked when it runs)."""
    axes = ax if isinstance(ax, tuple) else (ax,)
    row_shape = tuple(1 if d in axes else s for d, s in enumerate(shape))
    got = tuple(alpha.shape)
    if len(got) > len(shape) or any(v not in (1, r) for v, r in zip(got[::-1], row_shape[::-1])):
        raise ValueError(f"{name}(): parameter 'alpha' has shape {got}, which does not broadcast to the row shape "
                         f"{row_shape} (x's shape {tuple(shape)} with axis {ax} of size 1)")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_array(value: Any, what: str, name: str):
    if isinstance(value, (jax.Array, jax.core.Tracer)):
        return value
    if isinstance(value, (np.ndarray, np.generic, list, tuple, int, float)) and not isinstance(value, bool):
        return jnp.asarray(value)
    raise TypeError(f"{name}(): {what} must be a JAX or NumPy array, got {type(value).__name__}")


def _float_dtype(a, what: str, name: str) -> None:
    if np.dtype(a.dtype).name not in _FLOATS:
        raise TypeError(f"{name}(): {what} has dtype {a.dtype}; use a floating dtype")


def _normalize_axis(name: str, axis: Any, ndim: int) -> int | tuple[int, ...]:
    if isinstance(axis, list):
        axis = tuple(axis)
    return _interface._normalize_axis(REGISTRY.get(name), axis, ndim)  # the front end's rule


# -------------------------------------------------------------- custom_vjp
@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _differentiable(spec: _Spec, x, bias, weight, where):
    return _forward(spec, x, bias, weight, where)


def _vjp_forward(spec: _Spec, x, bias, weight, where):
    return _forward(spec, x, bias, weight, where), (x, bias, weight, where)


def _vjp_backward(spec: _Spec, residuals, dy):
    x, bias, weight, where = residuals
    dx, dbias, dweight = _backward(spec, x, dy, bias, weight, where)
    return dx, dbias, dweight, None


_differentiable.defvjp(_vjp_forward, _vjp_backward)


def _present(*arrays):
    return tuple(a for a in arrays if a is not None)


def _out_shape(spec: _Spec, shape: tuple) -> tuple:
    shape = list(shape)
    if spec.kind == "gated":
        shape[spec.axis] //= 2
    return tuple(shape)


def _forward(spec: _Spec, x, bias, weight, where):
    result = jax.ShapeDtypeStruct(_out_shape(spec, x.shape), x.dtype)
    return _callback(spec, "forward", result)(*_present(x, bias, weight, where))


def _backward(spec: _Spec, x, dy, bias, weight, where):
    results = [jax.ShapeDtypeStruct(x.shape, x.dtype)]
    if bias is not None:
        results.append(jax.ShapeDtypeStruct(bias.shape, bias.dtype))
    if weight is not None:
        results.append(jax.ShapeDtypeStruct(weight.shape, weight.dtype))
    got = list(_callback(spec, "backward", tuple(results))(*_present(x, dy.astype(x.dtype), bias, weight, where)))
    dx = got.pop(0)
    dbias = got.pop(0) if bias is not None else None
    dweight = got.pop(0) if weight is not None else None
    return dx, dbias, dweight


@functools.lru_cache(maxsize=1024)
def _callback(spec: _Spec, direction: str, result):
    """The XLA call for one spec (cached: one callable per spec keeps jit's caches warm)."""
    run = {"forward": _run_forward, "backward": _run_backward, "quantize": _run_quantize}[direction]
    # quantize's amax and rounding counter span the whole array: under vmap, one call per element
    vmap_method = "sequential" if direction == "quantize" else "expand_dims"

    if _buffer_callback is not None:
        def on_buffers(ctx, out, *args):
            stream = _gpu_stream(ctx)
            if stream is None:
                outs = [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]
                run(spec, np, outs, [np.asarray(a) for a in args])
                return
            import cupy

            with cupy.cuda.ExternalStream(stream):
                outs = [_cupy_view(cupy, o) for o in (out if isinstance(out, tuple) else (out,))]
                run(spec, cupy, outs, [cupy.asarray(a) for a in args])

        return _buffer_callback(on_buffers, result, vmap_method=vmap_method)

    def on_host(*args):  # pragma: no cover - jax without buffer_callback
        shapes = result if isinstance(result, tuple) else (result,)
        outs = [np.empty(r.shape, r.dtype) for r in shapes]
        run(spec, np, outs, [np.asarray(a) for a in args])
        return tuple(outs) if isinstance(result, tuple) else outs[0]

    return functools.partial(jax.pure_callback, on_host, result, vmap_method=vmap_method)


def _cupy_view(cupy, buffer):
    """A CuPy view of an XLA output buffer; FP8 buffers as uint8 (CuPy has no FP8 dtype: the
    kernels write the codes)."""
    if np.dtype(buffer.dtype).name not in _fp8.FORMAT_NAMES:
        return cupy.asarray(buffer)
    shape = tuple(buffer.shape)
    size = int(np.prod(shape, dtype=np.int64))
    pointer = buffer.__cuda_array_interface__["data"][0]
    memory = cupy.cuda.UnownedMemory(pointer, size, buffer)
    return cupy.ndarray(shape, cupy.uint8, cupy.cuda.MemoryPointer(memory, 0))


def _gpu_stream(ctx) -> int | None:
    try:
        return ctx.stream  # XLA's compute stream on a GPU; the CPU has none
    except Exception:
        return None


# ------------------------------------------------------- the host side
# Inside the callbacks the arrays are XLA's buffers (NumPy or CuPy views).  Under vmap
# ("expand_dims") every argument has extra leading dimensions, of the batch size where the
# argument is batched and 1 where it is not, and the outputs have the full batch shape.
def _split(spec: _Spec, args: list, backward: bool):
    it = iter(args)
    x = next(it)
    dy = next(it) if backward else None
    bias = next(it) if spec.bias else None
    weight = next(it) if spec.weight else None
    where = next(it) if spec.where else None
    return x, dy, bias, weight, where


def _kwargs(spec: _Spec, where, weight) -> dict:
    kw = dict(spec.params)
    if spec.axis is not None:
        # negative: the same axes with leading batch dimensions
        kw["axis"] = tuple(a - spec.ndim for a in spec.axis) if isinstance(spec.axis, tuple) else spec.axis - spec.ndim
    if where is not None:
        kw["where"] = where
    if weight is not None:
        kw[_tensor_key(spec.name)] = weight
    return kw


def _pick(a, idx: tuple):
    """One batch element of a broadcast argument (size-1 batch dimensions index 0)."""
    if a is None:
        return None
    return a[tuple(i if a.shape[k] != 1 else 0 for k, i in enumerate(idx))]


def _unbatched(a, nb: int):
    """a without its leading batch dimensions when they are all 1 (else None)."""
    if a is None or all(n == 1 for n in a.shape[:nb]):
        return a if a is None else a.reshape(a.shape[nb:])
    return None


def _run_forward(spec: _Spec, xp, outs: list, args: list) -> None:
    (out,) = outs
    x, _, bias, weight, where = _split(spec, args, backward=False)
    nb = x.ndim - spec.ndim
    if nb == 0:
        _interface.apply(spec.name, x, out=out, bias=bias, **_kwargs(spec, where, weight))
        return
    batch = out.shape[:nb]
    b1, w1 = _unbatched(bias, nb), _unbatched(weight, nb)
    if (bias is None or b1 is not None) and (weight is None or w1 is not None):
        x = xp.broadcast_to(x, batch + x.shape[nb:])
        _interface.apply(spec.name, x, out=out, bias=b1, **_kwargs(spec, where, w1))
        return
    for idx in np.ndindex(*batch):  # a bias or weight per batch element: one fused call each
        _interface.apply(spec.name, _pick(x, idx), out=out[idx], bias=_pick(bias, idx),
                         **_kwargs(spec, _pick(where, idx), _pick(weight, idx)))


def _run_backward(spec: _Spec, xp, outs: list, args: list) -> None:
    dx = outs[0]
    x, dy, bias, weight, where = _split(spec, args, backward=True)
    nb = x.ndim - spec.ndim
    if nb == 0:
        got = _interface.grad(spec.name, x, dy, out=dx, bias=bias, **_kwargs(spec, where, weight))
        for out, g in zip(outs[1:], got[1:] if isinstance(got, tuple) else ()):
            out[...] = g
        return
    batch = dx.shape[:nb]
    if bias is None and weight is None:
        x = xp.broadcast_to(x, batch + x.shape[nb:])
        dy = xp.broadcast_to(dy, batch + dy.shape[nb:])
        _interface.grad(spec.name, x, dy, out=dx, **_kwargs(spec, where, None))
        return
    for idx in np.ndindex(*batch):  # dbias and dweight per batch element
        got = _interface.grad(spec.name, _pick(x, idx), _pick(dy, idx), out=dx[idx], bias=_pick(bias, idx),
                              **_kwargs(spec, _pick(where, idx), _pick(weight, idx)))
        for out, g in zip(outs[1:], got[1:]):
            out[idx] = g


def _run_quantize(spec: _Spec, xp, outs: list, args: list) -> None:
    values, amax = outs
    x, _, bias, weight, _ = _split(spec, args, backward=False)
    out_dtype, scale, amax_mode, rounding, seed = spec.fp8
    kw = _kwargs(spec, None, weight)
    if seed is not None and "seed" not in REGISTRY.get(spec.name).param_names:
        kw["seed"] = seed
    got = _interface.apply(spec.name, x, out=values, bias=bias, out_dtype=out_dtype, scale=scale, amax=amax_mode,
                           rounding=rounding, **kw)
    amax[...] = got.amax
