"""GPU-accelerated activation functions with one interface for every device.

    >>> import numpy as np, activations
    >>> activations.apply("relu", np.array([-5., -8., 0., 3., 9.]), threshold=7)
    array([0., 0., 0., 0., 9.])

``apply(name, x, **params)`` computes an activation, ``grad(name, x, dy, ...)``
its vector-Jacobian product, on the backend where ``x`` lives (NumPy on the
CPU, CuPy or Numba CUDA kernels on the GPU, Dask for chunked arrays).
"""
from __future__ import annotations

from ._fp8 import Quantized
from ._interface import apply, grad
from .catalogue import GPT_OSS_SWIGLU, REGISTRY
from .dispatch import BackendUnavailable
from .registry import Activation, Kind

__version__ = "0.1.0"

__all__ = ["apply", "grad", "Quantized", "get", "names", "describe", "Activation", "Kind", "BackendUnavailable", "REGISTRY", "GPT_OSS_SWIGLU"]


def names(kind: str | Kind | None = None, aliases: bool = False) -> list[str]:
    """Canonical activation names (optionally of one kind: 'elementwise', 'rowwise', 'gated').

    With ``aliases=True``, every accepted spelling instead.
    """
    if aliases:
        return [s for s in REGISTRY.all_spellings() if kind is None or REGISTRY.get(s).kind == Kind(kind)]
    return REGISTRY.names(kind)


def describe(name: str) -> str:
    """Formula, derivative, parameters, defaults and notes of one activation."""
    return REGISTRY.get(name).describe()


class ActivationFunction:
    """``activations.get(name)``: a callable bound to one activation, with ``.grad``."""

    def __init__(self, record: Activation):
        self.record = record
        self.__name__ = record.name
        self.__qualname__ = record.name
        self.__doc__ = record.describe()

    def __call__(self, x, **kwargs):
        return apply(self.record, x, **kwargs)

    def grad(self, x, dy, **kwargs):
        return grad(self.record, x, dy, **kwargs)

    def __repr__(self) -> str:
        return f"<activation {self.record.name}>"


_functions: dict[str, ActivationFunction] = {}


def get(name: str | None) -> ActivationFunction:
    """A callable for ``name`` (``get(None)`` is ``linear``, as in Keras)."""
    record = REGISTRY.get("linear" if name is None else name)
    fn = _functions.get(record.name)
    if fn is None:
        fn = _functions.setdefault(record.name, ActivationFunction(record))
    return fn


def __getattr__(attr: str):
    # activations.gelu(x), activations.softmax(x, axis=0), ... for every name and alias
    if attr in REGISTRY and not attr.startswith("_"):
        return get(attr)
    raise AttributeError(f"module 'activations' has no attribute {attr!r}")


def __dir__():
    return sorted(set(globals()) | set(REGISTRY.all_spellings()))
