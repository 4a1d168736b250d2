"""Where does x live -> which backend.

The table below is the only place that knows the backends.  A backend module
exposes ``BACKEND`` (a :class:`~activations.backends.Backend`); it is imported
the first time it is needed.  Selection:

1. ``backend=`` argument, else the ``ACTIVATIONS_BACKEND`` environment
   variable: that backend, or a clear error if it is not available here;
2. otherwise the first backend in ``AUTO_ORDER`` that owns ``x``;
3. otherwise NumPy.
"""
from __future__ import annotations

import importlib
import threading
from typing import Any

from . import _environ
from .backends import Backend

ENV_VAR = "ACTIVATIONS_BACKEND"

#: name -> module that defines BACKEND
BACKEND_MODULES: dict[str, str] = {
    "numpy": "activations.backends.cpu",
    "cupy": "activations.backends.cuda",
    "numba": "activations.backends.numba",
    "dask": "activations.backends.dask",
}

#: order in which automatic selection asks "do you own x?"
AUTO_ORDER: tuple[str, ...] = ("dask", "cupy", "numba", "numpy")

_loaded: dict[str, Backend | BaseException] = {}
_lock = threading.Lock()


class BackendUnavailable(RuntimeError):
    """An explicitly requested backend cannot run here."""


def load(name: str) -> Backend | BaseException:
    """The backend object, or the exception that prevented importing it."""
    got = _loaded.get(name)
    if got is None:
        with _lock:
            got = _loaded.get(name)
            if got is None:
                try:
                    got = importlib.import_module(BACKEND_MODULES[name]).BACKEND
                except Exception as exc:  # ImportError, or a broken install
                    got = exc
                _loaded[name] = got
    return got


def names() -> list[str]:
    return list(BACKEND_MODULES)


def status(name: str) -> tuple[bool, str]:
    """(available, detail) for `python -m activations info`."""
    be = load(name)
    if isinstance(be, BaseException):
        return False, f"cannot import: {type(be).__name__}: {be}"
    try:
        return be.available()
    except Exception as exc:  # a probe must never crash `info`
        return False, f"{type(exc).__name__}: {exc}"


def explicit(name: Any) -> Backend:
    if not isinstance(name, str) or name not in BACKEND_MODULES:
        raise ValueError(f"unknown backend {name!r}; valid: {', '.join(BACKEND_MODULES)}")
    be = load(name)
    if isinstance(be, BaseException):
        raise BackendUnavailable(f"backend {name!r} is not available: {type(be).__name__}: {be}") from be
    if not be.ready():
        ok, why = be.available()
        if not ok:
            raise BackendUnavailable(f"backend {name!r} is not available here: {why}")
    return be


def select(x: Any, backend: Any = None) -> Backend:
    """The backend for ``x`` (see the module docstring)."""
    if backend is None:
        backend = _environ.get(ENV_VAR) or None
    if backend is not None:
        return explicit(backend)
    module = type(x).__module__.partition(".")[0]
    if module != "numpy":  # NumPy arrays are no other backend's: straight to the fallback
        for name in _candidates(x, module):
            be = _loaded.get(name) or load(name)
            if not isinstance(be, BaseException) and be.owns(x):
                return be
    be = _loaded.get("numpy")  # explicit("numpy")'s answer, without its checks of the name
    if be is None or isinstance(be, BaseException) or not be.ready():
        return explicit("numpy")
    return be


_GPU_MODULES = frozenset(("cupy", "numba", "torch", "jax", "jaxlib"))
#: the backends of AUTO_ORDER before NumPy, by (x is Dask's, x may be a GPU array)
_CANDIDATES = {
    (dask, gpu): tuple(n for n in AUTO_ORDER[:-1] if (dask if n == "dask" else gpu))
    for dask in (False, True) for gpu in (False, True)
}
#: the same for GPU libraries' types, looked up by the module alone
_CANDIDATES_OF = {module: _CANDIDATES[False, True] for module in _GPU_MODULES}


def _candidates(x: Any, module: str) -> tuple[str, ...]:
    """The backends of AUTO_ORDER that may own ``x`` (``module``: its type's top-level module), in
    that order: a cheap pre-filter so that plain NumPy calls never import GPU stacks (Dask only
    for Dask's types; the others for GPU libraries' types and ``__cuda_array_interface__``)."""
    got = _CANDIDATES_OF.get(module)
    if got is None:
        got = _CANDIDATES[module == "dask", hasattr(x, "__cuda_array_interface__")]
    return got
