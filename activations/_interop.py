"""Arrays from other libraries: unwrap to an array a backend understands, wrap results back.

``unwrap(obj)`` returns ``(array, rewrap)``: ``array`` is what the backends
accept (NumPy, CuPy, Numba, Dask, ...), ``rewrap(result)`` converts a result
back to the caller's type and device, or is None when nothing needs converting.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

Rewrap = Optional[Callable[[Any], Any]]


def unwrap(obj: Any) -> tuple[Any, Rewrap]:
    return obj, None
