"""Array operations the front end needs on every backend's arrays.

The front end (``_interface``) applies its rules the same way on every backend: it
copies an input that overlaps ``out=``, and it runs a row-wise activation over several
axes as one axis (the axes moved to the end and merged).  Both need a few operations
on the arrays of the backend that runs the call:

* NumPy, CuPy and Dask arrays share an API (``transpose``, ``reshape``, ``broadcast_to``,
  ``tile``, ``sum``); 2-byte dtypes are moved as raw bits (``uint16`` views), so nothing
  here depends on an array library's support for bfloat16;
* Numba device arrays have no such API: the Numba backend supplies the same operations
  (:meth:`~activations.backends.numba.NumbaBackend.layout_ops`), built on its own
  copy kernels.

:func:`extent` reads the memory range of any array with ``__array_interface__`` or
``__cuda_array_interface__`` (Numba's simulator arrays expose the former).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def ops(be: Any) -> Any:
    """The operations for arrays of backend ``be``."""
    own = getattr(be, "layout_ops", None)
    return own() if own is not None else _ARRAY_API


def _bits(a: Any) -> Any:
    return a.view(_UNSIGNED[a.dtype.itemsize]) if a.dtype.itemsize == 2 and a.dtype != np.float16 else a


def _module(a: Any) -> Any:
    root = type(a).__module__.partition(".")[0]
    if root == "dask":
        import dask.array as da

        return da
    if root == "cupy":
        import cupy

        return cupy
    return np


class ArrayAPI:
    """NumPy, CuPy and Dask arrays."""

    #: can the result be copied into an out= of this backend (Dask arrays are immutable)
    writes_out = True

    @staticmethod
    def copy(a: Any) -> Any:
        """A C-contiguous copy of ``a``."""
        return _bits(a).copy(order="C").view(a.dtype)

    @staticmethod
    def rearranged(a: Any, perm: tuple[int, ...], shape: tuple[int, ...], src_shape: tuple[int, ...] | None = None) -> Any:
        """``a.reshape(src_shape).transpose(perm).reshape(shape)``, C-contiguous (a copy unless
        that is a view)."""
        xp = _module(a)
        b = _bits(a)
        if src_shape is not None:
            b = b.reshape(src_shape)
        b = b.transpose(perm)
        if xp.__name__ != "dask.array":
            b = xp.ascontiguousarray(b)
        return b.reshape(shape).view(a.dtype)

    @staticmethod
    def broadcast(a: Any, shape: tuple[int, ...]) -> Any:
        """``a`` broadcast to ``shape`` (a view where the library allows)."""
        return _module(a).broadcast_to(a, shape)

    @staticmethod
    def tiled(a: Any, reps: int) -> Any:
        """The 1-D ``a`` repeated ``reps`` times: ``[a, a, ...]``."""
        xp = _module(a)
        return xp.tile(_bits(a), reps).view(a.dtype)

    @staticmethod
    def folded(a: Any, cols: int) -> Any:
        """Column sums of the 1-D ``a`` viewed as ``(a.size // cols, cols)``, in ``a``'s dtype
        (accumulated in float64)."""
        rows = a.reshape((-1, cols)) if cols else a.reshape((0, 0))
        return rows.astype(np.float64).sum(axis=0).astype(a.dtype)

    @staticmethod
    def copy_into(dst: Any, src: Any) -> None:
        """``dst[...] = src`` (same shape and dtype), moving raw bits."""
        _bits(dst)[...] = _bits(src)


_ARRAY_API = ArrayAPI()


# ------------------------------------------------------------------ memory
def _interface(a: Any) -> dict | None:
    if isinstance(a, np.ndarray):
        return a.__array_interface__
    for name in ("__cuda_array_interface__", "__array_interface__"):
        try:
            got = getattr(a, name)
        except Exception:  # e.g. CuPy refuses __array_interface__
            continue
        if isinstance(got, dict):
            return got
    return None


def extent(a: Any) -> tuple[int, int, tuple] | None:
    """``(first byte, one past the last byte, identity)`` of an array's memory, or None when
    unknown (a lazy array) or empty.  Two arrays with the same identity are the same view."""
    iface = _interface(a)
    if iface is None:
        return None
    shape = tuple(int(n) for n in iface["shape"])
    if any(n == 0 for n in shape):
        return None
    itemsize = np.dtype(iface["typestr"]).itemsize
    strides = iface.get("strides")
    if strides is None:  # C-contiguous
        strides, step = [], itemsize
        for n in reversed(shape):
            strides.append(step)
            step *= n
        strides = tuple(reversed(strides))
    strides = tuple(int(s) for s in strides)
    start = int(iface["data"][0])
    lo = start + sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
    hi = start + sum(max(0, (n - 1) * s) for n, s in zip(shape, strides)) + itemsize
    return lo, hi, (start, shape, strides, iface["typestr"])


def overlap(a: Any, b: Any) -> str:
    """``"apart"``, ``"same"`` (the same view of the same memory) or ``"overlap"``."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and not np.may_share_memory(a, b, max_work=0):
        return "apart"  # NumPy's bounds test, in C: the common case costs a microsecond
    ea, eb = extent(a), extent(b)
    if ea is None or eb is None:
        return "apart"
    if ea[2] == eb[2]:
        return "same"
    return "overlap" if ea[0] < eb[1] and eb[0] < ea[1] else "apart"


def size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
