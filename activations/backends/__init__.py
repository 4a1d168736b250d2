"""The backend protocol.

A backend turns a validated :class:`Call` into arrays.  Every backend has
forward and backward for the three kinds (elementwise, rowwise, gated) and
owns the arrays of one device/library.  ``activations.dispatch`` holds the
table of backends; adding one means adding a module here and a row there.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

from .._layout import overlap
from ..registry import Activation, BoundParams


class Call(NamedTuple):
    """One validated request (immutable; a named tuple, built on every call).  Arrays are the
    backend's own type.

    ``axis`` is non-negative for rowwise and gated records and None for
    elementwise ones.  ``weight`` (prelu only) is a float or a 1-D array of
    length 1 or ``x.shape[-1]`` with ``x``'s dtype.  ``bias`` is 1-D of length
    ``x.shape[-1]`` with ``x``'s dtype.  ``where`` is a bool array of
    ``x.shape``.  ``dy`` (backward only) has ``out_shape`` and ``x``'s dtype.
    ``out`` has ``out_shape`` (``x.shape`` for the backward's dx) and
    ``x``'s dtype; it may be ``x`` itself.  With ``fp8`` (elementwise and gated forward only) the
    backend returns :class:`activations._fp8.Quantized` and ``out``, when given, is an FP8 array of
    ``out_shape`` that the front end has checked and that shares no memory with an input.
    ``per_row`` (row-wise records with a ``"row"`` parameter given as an array, entmax's alpha): float64 values of the row shape (x's shape
    with ``axis`` of size 1), a C-contiguous NumPy array on the host (one value per row: small;
    each backend moves it where its kernels run), already rounded to the compute precision; None
    when the parameter is a float (then it is one of the kernel floats).
    """

    record: Activation
    params: BoundParams
    x: Any
    out_shape: tuple[int, ...]
    axis: int | None = None
    out: Any = None
    bias: Any = None
    weight: Any = None
    where: Any = None
    dy: Any = None
    fp8: Any = None  # an activations._fp8.Request: FP8 values and amax instead of y (forward only)
    per_row: Any = None

    @property
    def name(self) -> str:
        return self.record.name

    def gated_rows(self) -> tuple[int, int]:
        """A gated call's C-contiguous x as (rows, 2, period): the halves a and b of row r are
        x.flat[2r period + k] and x.flat[(2r + 1) period + k], k < period; y is (rows, period).

        layout 'concat' (x = a | b along axis): rows = prod(shape[:axis]), period = L/2 times the
        size of the axes after it; 'interleaved' (a = x[0::2], b = x[1::2]): rows take the L/2
        pairs as well, period = the size of the axes after axis.
        """
        shape, ax = tuple(self.x.shape), self.axis
        outer, half, inner = math.prod(shape[:ax]), shape[ax] // 2, math.prod(shape[ax + 1 :])
        if self.params["layout"] == "interleaved":
            return outer * half, inner
        return outer, half * inner


class Grads(NamedTuple):
    """What a backward returns: dx always; dbias when bias was given; dweight for prelu; dalpha
    (float64, the row shape: one value per row; the backend's array, a NumPy array from the Numba
    backend) when the call has ``per_row`` values."""

    dx: Any
    dbias: Any = None
    dweight: Any = None
    dalpha: Any = None


class Backend:
    """Base class: subclasses set ``name`` and implement the methods below."""

    name: str = "?"
    #: short text for `python -m activations info`
    description: str = ""
    #: the backend's own array class, exactly (no subclass): an array of it with a native float
    #: dtype is taken by the front end as it is, without the general checks (None: always checked)
    array_type: Any = None

    def available(self) -> tuple[bool, str]:
        """(True, detail) when usable here, else (False, why not).  May be slow (probes, text)."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Can calls run here now?  Asked on every call that names the backend, so a backend
        whose answer is cheaper than :meth:`available`'s overrides it."""
        return self.available()[0]

    def owns(self, obj: Any) -> bool:
        """Does ``obj`` live on this backend (cheap; must not import heavy modules)?"""
        raise NotImplementedError

    def asarray(self, obj: Any, what: str, dtype: Any = None) -> Any:
        """``obj`` as this backend's array, zero-copy where possible.

        Python lists and scalars become float64 arrays.  An array that lives on
        another device raises ValueError naming ``what``.  With ``dtype``, cast
        to it (or raise ValueError where the backend cannot cast).
        """
        raise NotImplementedError

    def forward(self, call: Call) -> Any:
        raise NotImplementedError

    def backward(self, call: Call) -> Grads:
        raise NotImplementedError


# ------------------------------------------------------------------- out=
# One policy for every backend, so that ``out=`` is written whole or not at all: the kernels
# write ``out`` itself only when that is safe, else a temporary that one copy then moves into
# ``out`` once everything that can fail (validation, allocation, the kernels) is behind.  What
# differs per array library is passed in: how to allocate, whether an array is C-contiguous,
# how to copy.  Overlap is read from the arrays' memory ranges (``_layout.overlap``).
def c_contiguous(a: Any) -> bool:
    """C-contiguity of a NumPy or CuPy array (their ``flags``)."""
    return a.flags.c_contiguous


def out_target(out: Any, shape: tuple[int, ...], dtype: Any, inputs: tuple,
               empty: Callable[[tuple[int, ...], Any], Any], contiguous: Callable[[Any], bool] = c_contiguous) -> Any:
    """The array the kernels write: ``out`` itself when it is C-contiguous and every input
    (arrays, or None and floats, which are skipped) is apart from it or exactly it (``out=x``,
    ``out=dy``: each kernel reads an element before it writes it), else ``empty(shape, dtype)``.
    The front end already copies an input that overlaps ``out`` (``_interface._apart_from_out``);
    the test here keeps a backend safe when called directly."""
    if out is not None and contiguous(out) and not any(
        a is not None and not isinstance(a, float) and overlap(out, a) == "overlap" for a in inputs
    ):
        return out
    return empty(shape, dtype)


def deliver(result: Any, out: Any, copy_into: Callable[[Any, Any], None]) -> Any:
    """The call's return value: ``result``, copied first into ``out`` (``copy_into(out,
    result)``, raw bits) when ``out`` is given and ``result`` is a temporary."""
    if out is None or result is out:
        return result
    copy_into(out, result)
    return out
