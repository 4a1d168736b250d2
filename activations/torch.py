"""Training with torch: autograd, ``torch.compile`` and ``torch.export`` through two custom ops.

    import activations.torch as at

    y = at.apply("gelu", x, bias=b)        # records autograd; backward is activations.grad
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), at.GELU(), torch.nn.Linear(32, 1))

Two operators are registered with ``torch.library.custom_op``:

* ``activations::apply(x, bias, weight, where, name, axis, params) -> y``
* ``activations::grad(x, dy, bias, weight, where, name, axis, params) -> (dx, dbias, dweight)``

``params`` is the activation's validated scalar parameters as a JSON string, so the
operators have one fixed schema for the whole catalogue.  ``register_fake`` gives both
their output shapes (``torch.compile(fullgraph=True)`` traces them without graph breaks,
``torch.export`` records them), and ``register_autograd`` makes the backward of the first
one call the second: the fused pass of :func:`activations.grad`, which returns dx, dbias
and prelu's dweight together.  The computing is :func:`activations.apply` /
:func:`activations.grad`: the compiled CPU engine for CPU tensors, the CUDA kernels (CuPy,
on torch's current stream) for CUDA tensors.

Saved for backward: the input ``x`` (plus ``bias``, ``weight`` and ``where`` when given),
never the output.  The fused backward takes ``x`` and recomputes what it needs from it
in the same pass (``y`` where the derivative is written in ``y``: the softmax family), so the
memory held per activation is one tensor of ``x``'s size, as torch's own GELU, SiLU and
Mish hold; see docs/training.md.
"""
from __future__ import annotations

import json
import math
import operator
import warnings
from functools import lru_cache
from typing import Any, Optional

import torch
import torch.autograd.forward_ad as _fwad
from torch import Tensor

from . import _interface
from .catalogue import REGISTRY
from .registry import Activation as _Record
from .registry import Kind

__all__ = [
    "apply",
    "quantize",
    "Activation",
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "Sigmoid",
    "Hardsigmoid", "LogSigmoid", "Softplus", "Softsign", "SiLU", "Hardswish", "Mish", "Tanh",
    "Hardtanh", "Tanhshrink", "Softshrink", "Hardshrink", "Threshold",
    "Softmax", "LogSoftmax", "Softmin", "Sparsemax", "Entmax15", "Entmax", "GLU", "SwiGLU", "GEGLU", "ReGLU",
]

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# ----------------------------------------------------------------- parameters
@torch.compiler.assume_constant_result  # pure Python on constants: torch.compile runs it while tracing
def _spec(name: str, axis: Any, items: tuple, tensor_weight: bool) -> tuple[str, str, str, int]:
    """Validate name, axis and the scalar parameters -> (name, kind, parameters as JSON, axis).

    Errors name the parameter (the registry's messages).  A tensor parameter (prelu's weight,
    entmax's alpha) is passed to the operators as a tensor (it gets a gradient), not in the JSON.
    """
    record = REGISTRY.get(name)
    key = _tensor_key(record)
    axes = None
    if isinstance(axis, (tuple, list)):
        if record.kind is not Kind.ROWWISE:
            raise TypeError(f"{record.name}(): axis must be an int (tuples of axes are for the softmax family), "
                            f"got {axis!r}")
        if not axis:
            raise ValueError(f"{record.name}(): axis is an empty tuple; name at least one axis")
        axes = [_one_axis(record.name, a) for a in axis]
        axis = axes[0]
    else:
        axis = _one_axis(record.name, axis)
    params = dict(items)
    if record.weighted and "weight" in params and not tensor_weight:
        w = params["weight"]
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise TypeError(f"prelu(): parameter 'weight' must be a float or a torch.Tensor, got {type(w).__name__}")
    if tensor_weight:
        if key is None:
            raise TypeError(f"{record.name}() got an unexpected parameter 'weight'")
        params[key] = 0.0 if key == "weight" else 2.0  # placeholder for validation; the tensor goes separately
    bound = record.bind(params)
    values = {k: v for k, v in bound.values.items() if not (k == key and tensor_weight)}
    if axes is not None and len(axes) > 1:
        values[_AXES] = axes  # the operators' schema has one int axis; a tuple travels with the parameters
    return record.name, record.kind.value, json.dumps(values, allow_nan=True), axis


_AXES = "axes"  # no activation has a parameter of this name (the registry's names are checked at import)
assert all(p.name != _AXES for r in REGISTRY for p in r.params)


def _one_axis(name: str, axis: Any) -> int:
    if isinstance(axis, bool):
        raise TypeError(f"{name}(): axis must be an int, got bool {axis!r}")
    try:
        return operator.index(axis)
    except TypeError:
        raise TypeError(f"{name}(): axis must be an int, got {type(axis).__name__} {axis!r}") from None


def _tensor_key(record: _Record) -> Optional[str]:
    """The parameter that may come as a tensor and gets a gradient: prelu's weight, entmax's alpha."""
    for p in record.params:
        if p.type in ("weight", "row"):
            return p.name
    return None


@lru_cache(maxsize=512)
def _decode(params: str) -> tuple[tuple[str, Any], ...]:
    return tuple(json.loads(params).items())


def _output_shape(name: str, kind: str, shape: tuple, axis: int) -> list:
    """The forward's output shape, with the checks the interface makes (also on fake tensors)."""
    shape = list(shape)
    if kind == "elementwise":
        return shape
    ndim = len(shape)
    if ndim == 0:
        raise ValueError(f"{name}(): needs an array with at least one axis, got a 0-d array")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}(): axis {axis} is out of range for an array with {ndim} dimensions")
    if kind == "gated":
        ax = axis % ndim
        if shape[ax] % 2:
            raise ValueError(
                f"{name}(): axis {axis} has odd length {shape[ax]}; gated activations split it in two halves"
            )
        shape[ax] = shape[ax] // 2
    return shape


def _check_tensor(value: Any, what: str, name: str, *, floating: bool = True) -> None:
    if value is None:
        return
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}(): {what} must be a torch.Tensor, got {type(value).__name__}")
    if floating and value.dtype not in _FLOATS:
        raise TypeError(
            f"{name}(): {what} has dtype {value.dtype}; use float16, bfloat16, float32 or float64 (cast first)"
        )


# ------------------------------------------------------------------ operators
def _plain(t: Optional[Tensor]) -> Optional[Tensor]:
    # The interface refuses tensors that require grad while grad mode is on (outside these operators
    # that would cut the graph); inside them autograd is handled by register_autograd.
    return None if t is None else t.detach()


def _fresh(result: Tensor, *inputs: Optional[Tensor]) -> Tensor:
    # A custom op's outputs may not alias its inputs.
    if any(t is not None and t.numel() and result.data_ptr() == t.data_ptr() for t in inputs):
        return result.clone()
    return result


def _call_params(name: str, params: str, weight: Optional[Tensor], axis: int) -> dict:
    """The keyword arguments of one op call: the encoded scalars, the tensor parameter (prelu's
    weight, entmax's alpha) and the axis (a tuple of axes when the parameters carry one)."""
    kw = dict(_decode(params))
    if weight is not None:
        kw[_tensor_key(REGISTRY.get(name))] = _plain(weight)
    axes = kw.pop(_AXES, None)
    kw["axis"] = axis if axes is None else tuple(axes)
    return kw


@torch.library.custom_op("activations::apply", mutates_args=())
def _apply_op(
    x: Tensor,
    bias: Optional[Tensor],
    weight: Optional[Tensor],
    where: Optional[Tensor],
    name: str,
    axis: int,
    params: str,
) -> Tensor:
    kw = _call_params(name, params, weight, axis)
    y = _interface.apply(name, _plain(x), bias=_plain(bias), where=where, **kw)
    return _fresh(y, x)


@_apply_op.register_fake
def _apply_fake(x, bias, weight, where, name, axis, params):
    record = REGISTRY.get(name)
    return x.new_empty(_output_shape(record.name, record.kind.value, tuple(x.shape), axis))


@torch.library.custom_op("activations::grad", mutates_args=())
def _grad_op(
    x: Tensor,
    dy: Tensor,
    bias: Optional[Tensor],
    weight: Optional[Tensor],
    where: Optional[Tensor],
    name: str,
    axis: int,
    params: str,
) -> tuple[Tensor, Tensor, Tensor]:
    kw = _call_params(name, params, weight, axis)
    if dy.dtype != x.dtype:
        dy = dy.to(x.dtype)
    got = _interface.grad(name, _plain(x), _plain(dy), bias=_plain(bias), where=where, **kw)
    got = got if isinstance(got, tuple) else (got,)
    dx = _fresh(got[0], x, dy)
    rest = list(got[1:])
    dbias = rest.pop(0) if bias is not None else x.new_empty(0)
    dweight = rest.pop(0) if weight is not None else x.new_empty(0)
    return dx, dbias, dweight


@_grad_op.register_fake
def _grad_fake(x, dy, bias, weight, where, name, axis, params):
    dbias = x.new_empty(0) if bias is None else x.new_empty(bias.shape)
    dweight = x.new_empty(0) if weight is None else x.new_empty(weight.shape)
    return x.new_empty(x.shape), dbias, dweight


def _setup_context(ctx, inputs, output):
    x, bias, weight, where, name, axis, params = inputs
    ctx.save_for_backward(x, bias, weight, where)
    ctx.call = (name, axis, params)


def _backward(ctx, dy):
    x, bias, weight, where = ctx.saved_tensors
    name, axis, params = ctx.call
    dx, dbias, dweight = _grad_op(x, dy, bias, weight, where, name, axis, params)
    dbias = None if bias is None else dbias.to(bias.dtype)
    dweight = None if weight is None else dweight.to(weight.dtype)
    return dx, dbias, dweight, None, None, None, None


_apply_op.register_autograd(_backward, setup_context=_setup_context)


# ----------------------------------------------------------------- functional
def apply(name, x: Tensor, *, bias: Optional[Tensor] = None, axis: int = -1, where: Optional[Tensor] = None,
          **params) -> Tensor:
    """``name(x + bias)`` as a differentiable torch operation.

    Args:
        name: activation name or alias (``activations.names()``).
        x: a float16, bfloat16, float32 or float64 tensor on the CPU or a CUDA device.
        bias: optional 1-D tensor along the last axis, fused: ``f(x + bias)``; gets a gradient.
        axis: the axis of row-wise and gated activations (ignored by elementwise ones); row-wise
            ones also take a tuple of axes and normalize over all of them at once.
        where: row-wise only: boolean mask broadcastable to ``x``; masked entries give 0.
        **params: the activation's parameters; prelu's ``weight`` may be a tensor (a float or
            one slope per last-axis channel), and entmax's ``alpha`` a tensor broadcastable to the
            row shape (x's shape with ``axis`` of size 1), which then get a gradient too.

    Returns:
        A new tensor that records autograd when any input requires grad; its backward is the
        fused :func:`activations.grad` (dx, dbias and prelu's dweight in one pass).
    """
    key = _tensor_key(REGISTRY.get(name))
    weight = params.pop(key) if key is not None and isinstance(params.get(key), Tensor) else None
    given_axis = tuple(axis) if isinstance(axis, list) else axis
    name, kind, encoded, axis = _spec(name, given_axis, tuple(params.items()), weight is not None)
    if not torch.compiler.is_compiling():
        _refuse_forward_mode(name, x, bias, weight)
    _check_tensor(x, "x", name)
    _check_tensor(bias, "bias", name)
    _check_tensor(weight, key or "weight", name)
    _check_tensor(where, "where", name, floating=False)
    _output_shape(name, kind, tuple(x.shape), axis)
    if isinstance(given_axis, tuple) and len(given_axis) > 1:  # every axis in range, none twice
        for a in given_axis:
            _output_shape(name, kind, tuple(x.shape), a)
        if len({a % x.dim() for a in given_axis}) != len(given_axis):
            raise ValueError(f"{name}(): axis {given_axis!r} names an axis twice")
    if bias is not None and (bias.dim() != 1 or x.dim() == 0 or bias.shape[0] != x.shape[-1]):
        need = f"({x.shape[-1]},)" if x.dim() else "(x is 0-d)"
        raise ValueError(f"{name}(): bias must be 1-D along the last axis of x with shape {need}, "
                         f"got {tuple(bias.shape)}")
    if where is not None and kind != "rowwise":
        raise TypeError(f"{name}(): where= is only accepted by row-wise activations (softmax family)")
    if where is not None and where.dtype != torch.bool:
        raise ValueError(f"where must be a boolean mask, got dtype {where.dtype}")
    if weight is not None and key == "weight":
        c = x.shape[-1] if x.dim() else 1
        if weight.dim() != 1 or weight.shape[0] not in (1, c):
            raise ValueError(f"weight must be 1-D along the last axis of x with shape ({c},) or (1,), "
                             f"got {tuple(weight.shape)}")
    return _apply_op(x, bias, weight, where, name, axis, encoded)


def quantize(name, x: Tensor, *, out_dtype: Any = None, scale: float = 1.0, amax: str = "tensor",
             rounding: str = "nearest", seed: Optional[int] = None, bias: Optional[Tensor] = None, axis: int = -1,
             **params):
    """``name(x + bias)`` written as FP8 with its amax, in one pass (docs/semantics.md, "FP8 output").

    Args:
        out_dtype: ``torch.float8_e4m3fn`` (default) or ``torch.float8_e5m2`` (or the ml_dtypes types).
        scale, amax, rounding, seed: as in :func:`activations.apply`.

    Returns:
        ``activations.Quantized(values, amax)``: an FP8 tensor of the output's shape and a float32
        tensor (shape (), the rows, or the groups of 128) on x's device.  Forward only: no autograd
        (the rounding has no useful derivative); a tensor requiring grad is read as data.
    """
    _check_tensor(x, "x", str(name))
    _check_tensor(bias, "bias", str(name))
    if out_dtype is None:
        out_dtype = torch.float8_e4m3fn
    if isinstance(out_dtype, torch.dtype):
        out_dtype = str(out_dtype).replace("torch.", "")
    if seed is not None:
        params["seed"] = seed
    return _interface.apply(name, x.detach(), bias=None if bias is None else bias.detach(), axis=axis,
                            out_dtype=out_dtype, scale=scale, amax=amax, rounding=rounding, **params)


def _refuse_forward_mode(name: str, *tensors: Optional[Tensor]) -> None:
    # Without this check torch would return a zero tangent, silently.
    interpreter = torch._C._functorch.peek_interpreter_stack()
    jvp = interpreter is not None and interpreter.key() == torch._C._functorch.TransformType.Jvp
    if jvp or any(t is not None and _fwad.unpack_dual(t).tangent is not None for t in tensors):
        raise NotImplementedError(
            f"{name}(): forward-mode AD (torch.func.jvp, forward_ad dual tensors) is not supported by "
            "activations.torch; use reverse mode (backward, torch.autograd.grad)"
        )


# -------------------------------------------------------------------- modules
class Activation(torch.nn.Module):
    """Any activation of the catalogue as a module: ``Activation("squareplus", b=1.0)``.

    ``forward(x, where=None)``; ``axis`` is the axis of row-wise and gated activations.
    Parameters are validated when the module is built.
    """

    def __init__(self, name: str, *, axis: int = -1, **params):
        super().__init__()
        self.record = REGISTRY.get(name)
        self.axis = axis
        self.params = dict(params)
        weight = self.params.get("weight")
        # validate now, not at the first forward
        _spec(self.record.name, axis, tuple((k, v) for k, v in self.params.items() if k != "weight"
                                            or not isinstance(weight, Tensor)), isinstance(weight, Tensor))

    def forward(self, x: Tensor, where: Optional[Tensor] = None) -> Tensor:
        return apply(self.record.name, x, axis=self.axis, where=where, **self.params)

    def extra_repr(self) -> str:
        parts = [repr(self.record.name)] if type(self) is Activation else []
        if self.record.kind is not Kind.ELEMENTWISE:
            parts.append(f"axis={self.axis}")
        parts += [f"{k}={v!r}" for k, v in self.params.items()]
        return ", ".join(parts)


def _module(name: str, doc: str, signature: tuple[tuple[str, str, Any], ...] = (), inplace: bool = False,
            dim: Any = None, keywords: tuple[str, ...] = ()):
    """A torch-named module class: ``signature`` is (torch argument, our parameter, default);
    ``keywords`` are more of our parameters, accepted by keyword only (torch has no such argument)."""

    def __init__(self, *args, **kwargs):
        names = [arg for arg, _, _ in signature] + (["dim"] if dim is not None else []) + (
            ["inplace"] if inplace else [])
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes at most {len(names)} arguments ({len(args)} given)")
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names and key not in keywords:
                valid = ", ".join(names + list(keywords)) or "none"
                raise TypeError(f"{type(self).__name__}() got an unexpected argument {key!r}; valid: {valid}")
            if key in given:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument {key!r}")
            given[key] = value
        params = {ours: given.get(arg, default) for arg, ours, default in signature
                  if arg in given or default is not _MISSING}
        params.update({key: given[key] for key in keywords if key in given})
        axis = given.get("dim", dim if dim is not None else -1)
        Activation.__init__(self, name, axis=-1, **params)
        self.dim = None if axis is _IMPLICIT else axis
        self.axis = axis
        # torch's inplace=True is accepted for drop-in use; the result is computed out of place
        self.inplace = bool(given.get("inplace", False))

    cls_doc = doc + "\n\nSame arguments as torch's module of this name" + (
        "; ``inplace`` is accepted and the result computed out of place" if inplace else "") + "." + (
        "  Keyword only: " + ", ".join(keywords) + " (``activations.describe`` explains them)." if keywords else "")
    return {"__init__": __init__, "__doc__": cls_doc}


_IMPLICIT = object()  # torch's Softmax(dim=None): the legacy implicit dimension
_MISSING = object()  # a required argument (Threshold's threshold and value)


def _implicit_dim(ndim: int) -> int:
    # torch.nn.functional._get_softmax_dim
    warnings.warn("Implicit dimension choice for softmax has been deprecated. Change the call to include dim=X "
                  "as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


class _RowModule(Activation):
    def forward(self, x: Tensor, where: Optional[Tensor] = None) -> Tensor:
        axis = self.axis
        if axis is _IMPLICIT or axis is None:
            axis = _implicit_dim(x.dim())
        return apply(self.record.name, x, axis=axis, where=where, **self.params)

    def extra_repr(self) -> str:
        return ", ".join([f"dim={self.dim}"] + [f"{k}={v!r}" for k, v in self.params.items()])


def _define(cls_name: str, name: str, doc: str, signature=(), inplace=False, dim=None, base=Activation, keywords=()):
    cls = type(cls_name, (base,), _module(name, doc, signature, inplace, dim, keywords))
    cls.__module__ = __name__
    cls.__qualname__ = cls_name
    globals()[cls_name] = cls
    return cls


_define("ReLU", "relu", "max(x, 0).", inplace=True)
_define("ReLU6", "relu6", "min(max(x, 0), 6).", inplace=True)
_define("LeakyReLU", "leaky_relu", "x > 0: x; else negative_slope * x (torch's default slope 0.01).",
        (("negative_slope", "negative_slope", 0.01),), inplace=True)
_define("RReLU", "rrelu", "Randomized leaky ReLU: a fresh slope draw per element and forward in training mode.",
        (("lower", "lower", 1.0 / 8.0), ("upper", "upper", 1.0 / 3.0)), inplace=True)
_define("ELU", "elu", "x > 0: x; else alpha * expm1(x).", (("alpha", "alpha", 1.0),), inplace=True)
_define("SELU", "selu", "Scaled ELU with the self-normalizing constants.", inplace=True)
_define("CELU", "celu", "x > 0: x; else alpha * expm1(x / alpha).", (("alpha", "alpha", 1.0),), inplace=True)
_define("GELU", "gelu", "x * Phi(x); approximate='tanh' for the tanh form.",
        (("approximate", "approximate", "none"),))
_define("Sigmoid", "sigmoid", "1 / (1 + exp(-x)).")
_define("Hardsigmoid", "hard_sigmoid", "relu6(x + 3) / 6.", inplace=True)
_define("LogSigmoid", "log_sigmoid", "log(sigmoid(x)).")
_define("Softplus", "softplus", "log1p(exp(beta * x)) / beta, x where beta * x > threshold (torch's default 20).",
        (("beta", "beta", 1.0), ("threshold", "threshold", 20.0)))
_define("Softsign", "softsign", "x / (1 + |x|).")
_define("SiLU", "silu", "x * sigmoid(x).", inplace=True)
_define("Hardswish", "hard_silu", "x * relu6(x + 3) / 6.", inplace=True)
_define("Mish", "mish", "x * tanh(softplus(x)).", inplace=True)
_define("Tanh", "tanh", "tanh(x).")
_define("Hardtanh", "hard_tanh", "clip(x, min_val, max_val).",
        (("min_val", "min_val", -1.0), ("max_val", "max_val", 1.0)), inplace=True)
_define("Tanhshrink", "tanh_shrink", "x - tanh(x).")
_define("Softshrink", "soft_shrink", "x > lambd: x - lambd; x < -lambd: x + lambd; else 0.",
        (("lambd", "threshold", 0.5),))
_define("Hardshrink", "hard_shrink", "x if |x| > lambd else 0.", (("lambd", "threshold", 0.5),))
_define("Threshold", "threshold", "x > threshold: x; else value.",
        (("threshold", "threshold", _MISSING), ("value", "value", _MISSING)), inplace=True)
# the softmax family's temperature and quiet ("+1") form, keyword only
_SOFTMAX_KEYWORDS = ("temperature", "quiet")
_define("Softmax", "softmax", "exp(x/T - max) / sum(exp(x/T - max)) along dim.", dim=_IMPLICIT, base=_RowModule,
        keywords=_SOFTMAX_KEYWORDS)
_define("LogSoftmax", "log_softmax", "log(softmax(x)) along dim.", dim=_IMPLICIT, base=_RowModule,
        keywords=_SOFTMAX_KEYWORDS)
_define("Softmin", "softmin", "softmax(-x) along dim.", dim=_IMPLICIT, base=_RowModule,
        keywords=_SOFTMAX_KEYWORDS)
_define("Sparsemax", "sparsemax", "Euclidean projection onto the simplex along dim (torch has no module).",
        dim=-1, base=_RowModule)
_define("Entmax15", "entmax15", "1.5-entmax along dim, exact (torch has no module).", dim=-1, base=_RowModule)


class Entmax(torch.nn.Module):
    """alpha-entmax along ``dim`` (torch has no module).

    ``alpha``: a float (fixed), or with ``learnable=True`` a parameter of shape ``shape`` (default
    ``()``: one alpha for every row; e.g. ``(heads, 1, 1)`` for one per attention head), started at
    ``alpha`` and trained through the exact gradient (Correia et al. 2019).  Keep it above 1: the
    forward refuses alpha <= 1 (``clamp`` it, e.g. ``1 + softplus``, when it may get there).
    """

    def __init__(self, alpha: float = 1.5, dim: int = -1, *, learnable: bool = False, shape: tuple = (),
                 device=None, dtype=None):
        super().__init__()
        self.dim = dim
        if learnable:
            self.alpha = torch.nn.Parameter(torch.full(tuple(shape), float(alpha), device=device, dtype=dtype))
        else:
            REGISTRY.get("entmax").bind({"alpha": alpha})  # checked now, not at the first call
            self.alpha = float(alpha)

    def forward(self, x: Tensor, where: Optional[Tensor] = None) -> Tensor:
        return apply("entmax", x, axis=self.dim, where=where, alpha=self.alpha)

    def extra_repr(self) -> str:
        alpha = f"learnable {tuple(self.alpha.shape)}" if isinstance(self.alpha, Tensor) else self.alpha
        return f"alpha={alpha}, dim={self.dim}"
# the gated family's clamp, offset and layout (and glu/swiglu's gate slope alpha), keyword only
_GATED_KEYWORDS = ("limit", "offset", "layout")
_define("GLU", "glu", "a * sigmoid(alpha * b), x = a | b halves along dim.", dim=-1, base=_RowModule,
        keywords=_GATED_KEYWORDS + ("alpha",))
_define("SwiGLU", "swiglu", "a * sigmoid(alpha * a) * b (silu(a) * b), x = a | b halves along dim (torch has no "
        "module); SwiGLU(**activations.GPT_OSS_SWIGLU) is GPT-OSS's.", dim=-1, base=_RowModule,
        keywords=_GATED_KEYWORDS + ("alpha",))
_define("GEGLU", "geglu", "gelu(a) * b, x = a | b halves along dim (torch has no module).",
        (("approximate", "approximate", "none"),), dim=-1, base=_RowModule, keywords=_GATED_KEYWORDS)
_define("ReGLU", "reglu", "relu(a) * b, x = a | b halves along dim (torch has no module).",
        dim=-1, base=_RowModule, keywords=_GATED_KEYWORDS)


class PReLU(torch.nn.Module):
    """Parametric ReLU with a learnable slope, torch's signature.

    ``num_parameters`` slopes run along the **last** axis (as ``bias`` does here); torch's
    ``nn.PReLU`` runs them along dim 1.  The two agree for (batch, features) inputs.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) or num_parameters < 1:
            raise ValueError(f"PReLU(): num_parameters must be a positive int, got {num_parameters!r}")
        if not isinstance(init, (int, float)) or isinstance(init, bool) or not math.isfinite(init):
            raise ValueError(f"PReLU(): init must be a finite real number, got {init!r}")
        self.num_parameters = num_parameters
        self.init = float(init)
        self.weight = torch.nn.Parameter(torch.empty(num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        torch.nn.init.constant_(self.weight, self.init)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight if self.weight.dtype == x.dtype else self.weight.to(x.dtype)
        return apply("prelu", x, weight=weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


def _rrelu_forward(self, x: Tensor, where: Optional[Tensor] = None) -> Tensor:
    if not self.training:
        return apply("rrelu", x, **self.params)
    # a fresh counter-based draw per forward, seeded from torch's generator (torch.manual_seed applies)
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    return apply("rrelu", x, training=True, seed=seed, **self.params)


RReLU.forward = _rrelu_forward  # type: ignore[name-defined]  # noqa: F821
