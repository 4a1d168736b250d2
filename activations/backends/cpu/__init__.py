"""The CPU backend (``backend="numpy"``): NumPy arrays, lists and scalars, CPU tensors.

Every call runs in the compiled engine (:mod:`.engine`, C++ built with the
package) when it is installed, else in the plain NumPy fallback
(:mod:`.fallback`); ``ACTIVATIONS_NATIVE=0`` chooses the fallback.  Both
compute into ``out`` directly when that is safe, else into an array of their
own that is then copied into it (the policy of ``backends.out_target``), so
that ``out=`` is written whole or not at all.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import _environ
from .. import Backend, Call, Grads, deliver, out_target
from . import engine

NATIVE_VAR = "ACTIVATIONS_NATIVE"


def _from_python(obj: Any, what: str) -> np.ndarray:
    """Python numbers and (nested) lists as float64; strings and other objects refused by name."""
    if isinstance(obj, (str, bytes)):
        raise TypeError(f"{what} must be an array or a number, got a string {obj!r:.40}")
    arr = np.asarray(obj)
    if arr.dtype.kind in "USV":
        raise TypeError(f"{what} must contain numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "O":  # ints beyond int64, or mixed objects
        try:
            return arr.astype(np.float64)
        except OverflowError:
            raise ValueError(f"{what} holds a value too large for float64") from None
        except (TypeError, ValueError):
            raise TypeError(f"{what} must contain only numbers") from None
    if arr.dtype.kind in "iu":
        return arr.astype(np.float64)
    return arr  # float64; bool (a where= mask, refused as x); complex (refused with a hint)


def active_engine():
    """The engine module when calls run in it, else None (fallback)."""
    if _environ.get(NATIVE_VAR) == "0":
        return None
    return engine.module()


class CpuBackend(Backend):
    name = "numpy"
    description = "CPU: the compiled engine (SIMD, threads), or plain NumPy without it"

    def available(self) -> tuple[bool, str]:
        if active_engine() is not None:
            return True, f"compiled engine, {engine.DETAIL}, {engine.threads()} thread(s)"
        why = f"{NATIVE_VAR}=0" if _environ.get(NATIVE_VAR) == "0" else engine.WHY_NOT
        return True, f"NumPy fallback ({why}); numpy {np.__version__}"

    def ready(self) -> bool:
        return True  # the NumPy fallback runs wherever NumPy does

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, np.ndarray)

    def asarray(self, obj: Any, what: str, dtype: Any = None) -> np.ndarray:
        if hasattr(obj, "__cuda_array_interface__") and not isinstance(obj, np.ndarray):
            raise ValueError(
                f"{what} lives on a GPU ({type(obj).__module__}.{type(obj).__name__}); the numpy backend "
                "needs host memory: pass a host copy, or use backend='cupy' / 'numba'"
            )
        if isinstance(obj, np.ndarray):
            arr = obj
        elif isinstance(obj, (list, tuple, int, float, bool, complex, str, bytes)):
            arr = _from_python(obj, what)
        else:
            arr = np.asarray(obj)  # NumPy scalars, torch CPU tensors, anything with __array__
        if dtype is not None and arr.dtype != np.dtype(dtype):
            arr = arr.astype(dtype)
        return arr

    def forward(self, call: Call) -> np.ndarray:
        if call.fp8 is not None:
            return self._quantize(call)
        if active_engine() is None:
            from . import fallback  # imported on first use: it needs SciPy

            with np.errstate(all="ignore"):  # overflow to inf on the final cast is the intended result
                return _deliver(fallback.forward(call), call.out)
        target = _target(call, call.out_shape)  # the engine does no NumPy arithmetic: no errstate
        engine.forward(call, target)
        return _deliver(target, call.out)

    def _quantize(self, call: Call):
        if active_engine() is None:
            from . import fallback

            with np.errstate(all="ignore"):
                return fallback.quantize(call)
        return engine.quantize(call)

    def backward(self, call: Call) -> Grads:
        if active_engine() is None:
            from . import fallback

            with np.errstate(all="ignore"):
                grads = fallback.backward(call)
                return grads._replace(dx=_deliver(grads.dx, call.out))
        target = _target(call, call.x.shape)
        grads = engine.backward(call, target)  # its float64 sums cast under their own errstate
        return grads._replace(dx=_deliver(target, call.out))


# ------------------------------------------------------------------- out=
def _target(call: Call, shape: tuple[int, ...]) -> np.ndarray:
    """The array the engine writes (``out`` itself where the policy allows)."""
    return out_target(call.out, shape, call.x.dtype, (call.x, call.dy, call.bias, call.weight, call.where),
                      np.empty)


def _copy_into(out: np.ndarray, result: np.ndarray) -> None:
    np.copyto(out, result, casting="unsafe")  # one uninterruptible copy


def _deliver(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    return deliver(result, out, _copy_into)


BACKEND = CpuBackend()
