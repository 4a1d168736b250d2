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
"""
from __future__ import annotations

from typing import Any

import keras

from . import _interface
from .catalogue import REGISTRY
from .registry import Kind

__all__ = ["Activation", "get"]

# keyword arguments that belong to keras.layers.Layer, not to the activation
_LAYER_KWARGS = frozenset({"name", "dtype", "trainable", "autocast", "input_shape", "input_dim",
                           "batch_input_shape", "batch_size", "activity_regularizer"})
_BACKENDS = ("torch", "jax", "numpy")


def _validated(name: str, params: dict[str, Any]):
    record = REGISTRY.get(name)
    weight = params.get("weight")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))):
        raise TypeError(f"{record.name}(): parameter 'weight' must be a float here (a learnable slope per "
                        "channel needs a weight variable: use keras.layers.PReLU)")
    record.bind(params)  # TypeError/ValueError naming the parameter, now rather than at the first call
    return record


def _call(name: str, x, axis: int, params: dict[str, Any]):
    backend = keras.backend.backend()
    if backend == "torch":
        from . import torch as framework
    elif backend == "jax":
        from . import jax as framework
    elif backend == "numpy":
        return _interface.apply(name, x, axis=axis, **params)
    else:
        raise ValueError(f"activations.keras runs on Keras's {', '.join(_BACKENDS)} backends; this Keras runs "
                         f"{backend!r} (set KERAS_BACKEND)")
    return framework.apply(name, x, axis=axis, **params)


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

    ``axis`` is the axis of row-wise and gated activations.  The other keyword arguments are
    the activation's parameters, except the usual layer arguments (``name``, ``dtype``,
    ``trainable``, ...), which go to ``keras.layers.Layer``.
    """

    def __init__(self, activation: str, /, axis: int = -1, **kwargs):
        layer_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _LAYER_KWARGS}
        super().__init__(**layer_kwargs)
        self.record = _validated(activation, kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"{self.record.name}(): axis must be an int, got {type(axis).__name__} {axis!r}")
        self.axis = axis
        self.params = dict(kwargs)
        self.supports_masking = self.record.kind is Kind.ELEMENTWISE

    def call(self, inputs):
        return _call(self.record.name, inputs, self.axis, self.params)

    def compute_output_shape(self, input_shape):
        return _output_shape(self.record, tuple(input_shape), self.axis)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"activation": self.record.name, "axis": self.axis, "params": dict(self.params)})
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

    def __init__(self, activation: str, axis: int = -1, **params):
        self.record = _validated(activation, params)
        self.axis = axis
        self.params = dict(params)
        self.__name__ = self.record.name

    def __call__(self, x):
        return _call(self.record.name, x, self.axis, self.params)

    def get_config(self) -> dict:
        return {"activation": self.record.name, "axis": self.axis, "params": dict(self.params)}

    @classmethod
    def from_config(cls, config: dict) -> "ActivationFunction":
        config = dict(config)
        return cls(config.pop("activation"), axis=config.pop("axis", -1), **config.pop("params", {}))

    def __repr__(self) -> str:
        return f"<activations.keras {self.record.name}>"


def get(name: str | None, axis: int = -1, **params) -> ActivationFunction:
    """A callable for Keras's ``activation=`` arguments (``get(None)`` is ``linear``)."""
    return ActivationFunction("linear" if name is None else name, axis=axis, **params)
