"""Keras 3: a layer and an ``activation=`` callable that train on the torch and JAX backends.

    import activations.keras as ak

    model = keras.Sequential([
        keras.layers.Dense(32, activation=ak.get("gelu")),    # a callable for activation=
        ak.Activation("swiglu"),                               # a layer (halves the last axis)
        keras.layers.Dense(1, activation=ak.get("sigmoid")),
    ])

On Keras's torch backend the call goes through :mod:`activations.torch` (autograd,
``torch.compile``), on the JAX backend through :mod:`activations.jax` (``custom_vjp``,
``jit``), on the numpy backend (inference only) through :func:`activations.apply`.
Both objects serialize with ``get_config`` (``model.save`` / ``keras.models.load_model``).

Every argument of :func:`activations.apply` reaches the kernels: the activation's parameters
(the softmax family's ``temperature`` and ``quiet``, entmax's ``alpha`` as a float or one per
row, the gated units' ``limit``, ``offset``, ``layout``), a tuple ``axis`` for the row-wise
family, and, at call time, ``layer(x, bias=b, where=mask)``.
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np

from . import _interface
from .catalogue import REGISTRY
from .registry import Kind

__all__ = ["Activation", "get"]

# keyword arguments that belong to keras.layers.Layer, not to the activation
_LAYER_KWARGS = frozenset({"name", "dtype", "trainable", "autocast", "input_shape", "input_dim",
                           "batch_input_shape", "batch_size", "activity_regularizer"})
_BACKENDS = ("torch", "jax", "numpy")


def _validated(name: str, params: dict[str, Any], axis: Any):
    """Check the parameters and axis now rather than at the first call (errors name them);
    returns the record, the axis (a tuple of axes as a tuple) and the parameters, a per-row
    parameter given as a list (from a saved config) as a float32 array."""
    record = REGISTRY.get(name)
    weight = params.get("weight")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))):
        raise TypeError(f"{record.name}(): parameter 'weight' must be a float here (a learnable slope per "
                        "channel needs a weight variable: use keras.layers.PReLU)")
    params = dict(params)
    for p in record.params:
        if p.type == "row" and isinstance(params.get(p.name), (list, tuple)):
            params[p.name] = np.asarray(params[p.name], np.float32)
        if p.type == "row" and isinstance(params.get(p.name), np.ndarray):  # its values, as a float would be
            p.check_elements(params[p.name].astype(np.float32), f"{record.name}(): parameter {p.name!r} (an element)")
    record.bind(params)
    if isinstance(axis, list):
        axis = tuple(axis)
    for a in axis if isinstance(axis, tuple) else (axis,):
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{record.name}(): axis must be an int or, for the softmax family, a tuple of ints; "
                            f"got {axis!r}")
    if isinstance(axis, tuple) and record.kind is not Kind.ROWWISE:
        raise TypeError(f"{record.name}(): axis must be an int (tuples of axes are for the softmax family), "
                        f"got {axis!r}")
    if isinstance(axis, tuple) and not axis:
        raise ValueError(f"{record.name}(): axis is an empty tuple; name at least one axis")
    return record, axis, params


def _call(name: str, x, axis, params: dict[str, Any], bias=None, where=None):
    backend = keras.backend.backend()
    if backend == "torch":
        from . import torch as framework
    elif backend == "jax":
        from . import jax as framework
    elif backend == "numpy":
        return _interface.apply(name, x, axis=axis, bias=bias, where=where, **params)
    else:
        raise ValueError(f"activations.keras runs on Keras's {', '.join(_BACKENDS)} backends; this Keras runs "
                         f"{backend!r} (set KERAS_BACKEND)")
    dtype = keras.backend.standardize_dtype(x.dtype)
    # arrays become the backend's tensors (torch wants tensors where it gives gradients)
    params = {k: keras.ops.convert_to_tensor(v, dtype) if _is_array(v) else v for k, v in params.items()}
    if bias is not None:
        bias = keras.ops.convert_to_tensor(bias)
    if where is not None:
        where = keras.ops.convert_to_tensor(where, "bool")
    return framework.apply(name, x, axis=axis, bias=bias, where=where, **params)


def _is_array(value: Any) -> bool:
    return not isinstance(value, (str, bytes, bool, int, float, type(None))) and hasattr(value, "shape")


def _serializable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: np.asarray(v).tolist() if _is_array(v) else v for k, v in params.items()}


def _output_shape(record, shape: tuple, axis: int) -> tuple:
    if record.kind is not Kind.GATED:
        return tuple(shape)
    shape = list(shape)
    ax = axis % len(shape)
    if shape[ax] is not None:
        if shape[ax] % 2:
            raise ValueError(f"{record.name}(): axis {axis} has odd length {shape[ax]}; "
                             "gated activations split it in two halves")
        shape[ax] //= 2
    return tuple(shape)


@keras.saving.register_keras_serializable(package="activations")
class Activation(keras.layers.Layer):
    """A layer applying one activation of the catalogue: ``Activation("gelu", approximate="tanh")``.

    ``axis`` is the axis of row-wise and gated activations (a tuple of axes for the row-wise
    family).  The other keyword arguments are the activation's parameters, except the usual layer
    arguments (``name``, ``dtype``, ``trainable``, ...), which go to ``keras.layers.Layer``.

    ``learnable=True`` (entmax) makes ``alpha`` a trained weight of shape ``shape`` (default
    ``()``: one for every row; ``(heads, 1, 1)`` one per attention head), started at the given
    ``alpha`` and trained through its exact gradient; keep it above 1 (the forward refuses
    alpha <= 1).
    """

    def __init__(self, activation: str, /, axis: int | tuple[int, ...] = -1, *, learnable: bool = False,
                 shape: tuple[int, ...] = (), **kwargs):
        layer_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _LAYER_KWARGS}
        super().__init__(**layer_kwargs)
        self.record, self.axis, self.params = _validated(activation, kwargs, axis)
        self.supports_masking = self.record.kind is Kind.ELEMENTWISE
        self.learnable = bool(learnable)
        self.learned_shape = tuple(int(n) for n in shape)
        self.learned = None
        if self.learnable:
            key = next((p.name for p in self.record.params if p.type == "row"), None)
            if key is None:
                raise TypeError(f"{self.record.name}(): learnable=True is for entmax's alpha; "
                                f"{self.record.name} has no per-row parameter")
            value = self.record.bind(self.params)[key]
            if not isinstance(value, float):
                raise TypeError(f"{self.record.name}(): with learnable=True, {key} is the starting value: a float")
            self.learned_key, self.learned_start = key, value

    def build(self, input_shape):
        if self.learnable:
            self.learned = self.add_weight(name=self.learned_key, shape=self.learned_shape,
                                           initializer=keras.initializers.Constant(self.learned_start))

    def call(self, inputs, bias=None, where=None):
        """``f(inputs + bias)``; ``bias`` a 1-D tensor along the last axis (differentiable),
        ``where`` a boolean mask for the row-wise family (masked entries give 0)."""
        params = self.params if self.learned is None else {**self.params, self.learned_key: self.learned}
        return _call(self.record.name, inputs, self.axis, params, bias=bias, where=where)

    def compute_output_shape(self, input_shape):
        return _output_shape(self.record, tuple(input_shape), self.axis)

    def get_config(self) -> dict:
        config = super().get_config()
        axis = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        config.update({"activation": self.record.name, "axis": axis, "params": _serializable(self.params)})
        if self.learnable:
            config.update({"learnable": True, "shape": list(self.learned_shape)})
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Activation":
        config = dict(config)
        activation = config.pop("activation")
        params = config.pop("params", {})
        return cls(activation, **params, **config)


@keras.saving.register_keras_serializable(package="activations")
class ActivationFunction:
    """``get(name, **params)``: a callable for ``keras.layers.Dense(..., activation=...)``."""

    def __init__(self, activation: str, axis: int | tuple[int, ...] = -1, **params):
        self.record, self.axis, self.params = _validated(activation, params, axis)
        self.__name__ = self.record.name

    def __call__(self, x):
        return _call(self.record.name, x, self.axis, self.params)

    def get_config(self) -> dict:
        axis = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        return {"activation": self.record.name, "axis": axis, "params": _serializable(self.params)}

    @classmethod
    def from_config(cls, config: dict) -> "ActivationFunction":
        config = dict(config)
        return cls(config.pop("activation"), axis=config.pop("axis", -1), **config.pop("params", {}))

    def __repr__(self) -> str:
        return f"<activations.keras {self.record.name}>"


def get(name: str | None, axis: int = -1, **params) -> ActivationFunction:
    """A callable for Keras's ``activation=`` arguments (``get(None)`` is ``linear``)."""
    return ActivationFunction("linear" if name is None else name, axis=axis, **params)
