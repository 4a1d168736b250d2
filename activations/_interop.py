"""Arrays from other libraries: unwrap to an array a backend understands, wrap results back.

``unwrap(obj)`` returns ``(array, rewrap)``: ``array`` is what the backends
accept (NumPy, CuPy, Numba, Dask, ...), ``rewrap(result)`` converts a result
back to the caller's type and device, or is None when nothing needs converting.

What is converted, and how (zero-copy everywhere the layout allows):

* torch, CPU: ``tensor.numpy()`` (a view; bfloat16 through an int16 view
  re-typed as ``ml_dtypes.bfloat16``); back with ``torch.from_numpy``.
* torch, CUDA: ``cupy.from_dlpack`` when CuPy can use a GPU here, else the
  tensor itself for the Numba backend (``__cuda_array_interface__``); back
  with ``torch.from_dlpack`` / ``torch.as_tensor``.
* JAX: CPU arrays as read-only NumPy views, GPU arrays through DLPack into
  CuPy; back with ``jax.dlpack.from_dlpack`` (``jax.device_put`` for
  bfloat16, which NumPy cannot export through DLPack).
* any other object with ``__dlpack__``: ``numpy.from_dlpack`` (CPU) or
  ``cupy.from_dlpack`` (CUDA); back through its ``__array_namespace__()``
  when it has one, else the NumPy/CuPy result is returned.

Everything else (NumPy, CuPy, Numba, Dask, lists, scalars) passes through
untouched, decided from ``type(obj).__module__`` alone, so plain NumPy calls
import nothing and cost one string split.

torch autograd: a tensor with ``requires_grad=True`` is refused while grad
mode is on (the result could not carry a graph, so the loss would silently
stop there); under ``torch.no_grad()`` / ``torch.inference_mode()`` it is
detached.  ``activations.torch`` records autograd (its operators pass detached
tensors here).

CUDA streams (torch): DLPack orders the hand-over in both directions
(``cupy.from_dlpack`` passes CuPy's current stream to ``tensor.__dlpack__``,
which makes it wait for torch's current stream; ``torch.from_dlpack`` does the
reverse).  :func:`scope` goes one step further and runs the kernels on torch's
current stream itself (``cupy.cuda.ExternalStream``), which also orders
in-place writes into an ``out=`` tensor with later torch work.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Optional

import numpy as np

from . import _dtypes

Rewrap = Optional[Callable[[Any], Any]]

# Types the backends take as they are; checked first so NumPy stays cheap.
_PASS = frozenset({"builtins", "numpy", "cupy", "cupyx", "numba", "dask", "ml_dtypes"})

# DLPack device types (dlpack.h)
_DL_CPU, _DL_CUDA, _DL_CUDA_HOST, _DL_CUDA_MANAGED = 1, 2, 3, 13


def unwrap(obj: Any, what: str = "x", writable: bool = False) -> tuple[Any, Rewrap]:
    """``(array, rewrap)`` for ``obj``; ``writable=True`` for ``out=`` (refuses immutable arrays)."""
    root = type(obj).__module__.partition(".")[0]
    if root in _PASS:
        return obj, None
    if root == "torch":
        return _torch(obj, what, writable)
    if root in ("jax", "jaxlib"):
        return _jax(obj, what, writable)
    if hasattr(obj, "__cuda_array_interface__") or not hasattr(obj, "__dlpack_device__"):
        return obj, None  # the GPU backends take CAI objects; np.asarray takes the rest
    return _dlpack(obj, what)


def written(obj: Any) -> None:
    """Tell the caller's library that ``obj`` (an ``out=`` array) was written through a view.

    torch: bumps the tensor's version counter, so autograd still notices an
    in-place change to a tensor it saved for backward.
    """
    if type(obj).__module__.partition(".")[0] == "torch":
        torch = sys.modules["torch"]
        if isinstance(obj, torch.Tensor):
            torch.autograd.graph.increment_version(obj)


def scope(rewrap: Rewrap) -> contextlib.AbstractContextManager:
    """Context in which the backend call runs (torch CUDA: on torch's current stream)."""
    enter = getattr(rewrap, "scope", None)
    return enter() if enter is not None else contextlib.nullcontext()


# ---------------------------------------------------------------------- CuPy
_cupy_state: Any = None  # None: not probed yet; False: unusable; else the module


def _cupy():
    """The cupy module when it can allocate on a GPU here, else None (probed once)."""
    global _cupy_state
    if _cupy_state is None:
        try:
            import cupy

            cupy.cuda.runtime.getDeviceCount()
            cupy.empty(1)  # a driver that loads but has no usable device fails here
            _cupy_state = cupy
        except Exception:
            _cupy_state = False
    return _cupy_state or None


def _from_dlpack_cupy(obj: Any, bf16_view: Callable[[], Any] | None = None):
    cp = _cupy()
    try:
        return cp.from_dlpack(obj)
    except (BufferError, TypeError, ValueError, RuntimeError):
        if bf16_view is None:
            raise
        return cp.from_dlpack(bf16_view()).view(_dtypes.BFLOAT16)


# --------------------------------------------------------------------- torch
class _TorchRewrap:
    """Back to torch on the input's device; ``scope()`` runs CuPy work on torch's stream."""

    def __init__(self, device: Any, via: str):
        self.device = device
        self.via = via  # "numpy", "cupy" or "cai"

    def __call__(self, result: Any) -> Any:
        torch = sys.modules["torch"]
        if isinstance(result, torch.Tensor):
            return result
        if isinstance(result, np.generic):
            result = np.asarray(result)
        if isinstance(result, np.ndarray):
            return _numpy_to_torch(torch, result)
        module = type(result).__module__.partition(".")[0]
        if module == "cupy":
            return _cupy_to_torch(torch, result)
        if hasattr(result, "__cuda_array_interface__"):
            return torch.as_tensor(result, device=self.device)
        return result  # e.g. a lazy Dask array from a forced backend="dask"

    def scope(self):
        if self.via != "cupy":
            return contextlib.nullcontext()
        torch = sys.modules["torch"]
        cp = _cupy()
        stream = torch.cuda.current_stream(self.device)
        return _on_device_stream(cp, self.device.index, stream.cuda_stream)


@contextlib.contextmanager
def _on_device_stream(cp, index, handle):
    with cp.cuda.Device(index):
        with cp.cuda.ExternalStream(handle):
            yield


def _torch(t: Any, what: str, writable: bool) -> tuple[Any, Rewrap]:
    torch = sys.modules["torch"]
    if not isinstance(t, torch.Tensor):
        return t, None
    if t.layout != torch.strided:
        raise TypeError(f"{what} is a {t.layout} torch tensor; pass a dense one (tensor.to_dense())")
    if t.is_nested:
        raise TypeError(f"{what} is a nested (ragged) torch tensor; pass a dense one (e.g. tensor.to_padded_tensor(0))")
    if t.is_complex():  # also a conjugate view, which torch cannot export
        raise TypeError(f"{what} has complex torch dtype {t.dtype}; activations need a floating tensor: cast first")
    if t.requires_grad:
        if torch.is_grad_enabled():
            raise ValueError(
                f"{what} is a torch tensor that requires grad: activations.apply and activations.grad do not "
                "record autograd graphs. To train through an activation use activations.torch.apply (or its "
                "modules); else pass tensor.detach() (or call under torch.no_grad())"
            )
        t = t.detach()
    if t.is_neg():
        t = t.resolve_neg()
    kind = t.device.type
    if kind == "cpu":
        return _torch_cpu_to_numpy(torch, t, what), _TorchRewrap(t.device, "numpy")
    if kind == "cuda":
        if _cupy() is not None:
            arr = _from_dlpack_cupy(t, (lambda: t.view(torch.int16)) if t.dtype == torch.bfloat16 else None)
            return arr, _TorchRewrap(t.device, "cupy")
        return t, _TorchRewrap(t.device, "cai")  # the Numba backend reads __cuda_array_interface__
    raise ValueError(
        f"{what} is a torch tensor on {t.device}; supported devices are the CPU and CUDA: "
        "move it with .cpu() or .cuda()"
    )


def _torch_cpu_to_numpy(torch, t, what: str) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        if _dtypes.BFLOAT16 is None:
            raise TypeError(f"{what} is a bfloat16 tensor, which needs the ml_dtypes package")
        # NumPy has no bfloat16: same bits through int16, then re-typed (still a view)
        return t.view(torch.int16).numpy().view(_dtypes.BFLOAT16)
    try:
        return t.numpy()
    except TypeError as exc:
        raise TypeError(
            f"{what} has torch dtype {t.dtype}, which is not supported; "
            "use float16, bfloat16, float32 or float64"
        ) from exc


def _numpy_to_torch(torch, arr: np.ndarray):
    if any(s < 0 for s in arr.strides) or not arr.flags.writeable:
        arr = arr.copy()  # torch.from_numpy takes neither
    if _dtypes.is_bfloat16(arr.dtype):
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(arr)


def _cupy_to_torch(torch, arr):
    try:
        return torch.from_dlpack(arr)
    except (BufferError, TypeError, ValueError, RuntimeError):
        if not _dtypes.is_bfloat16(arr.dtype):
            raise
        return torch.from_dlpack(arr.view("int16")).view(torch.bfloat16)


# ----------------------------------------------------------------------- JAX
class _JaxRewrap:
    def __init__(self, device: Any):
        self.device = device

    def __call__(self, result: Any) -> Any:
        import jax

        if isinstance(result, jax.Array):
            return result
        module = type(result).__module__.partition(".")[0]
        if module not in ("numpy", "cupy"):
            return result
        if not _dtypes.is_bfloat16(result.dtype):
            try:
                out = jax.dlpack.from_dlpack(result)  # zero-copy when JAX accepts the buffer
                if self.device in out.devices():
                    return out
            except (BufferError, TypeError, ValueError, RuntimeError):
                pass
        host = result if module == "numpy" else result.get()
        return jax.device_put(host, self.device)


def _jax(a: Any, what: str, writable: bool) -> tuple[Any, Rewrap]:
    import jax

    if not isinstance(a, jax.Array):
        return a, None
    if isinstance(a, jax.core.Tracer):
        raise TypeError(
            f"{what} is a traced JAX value (inside jit/grad/vmap); activations runs eagerly on concrete arrays: "
            "inside transformations use activations.jax.apply, which is differentiable and traceable"
        )
    if writable:
        raise ValueError(f"{what} is a JAX array, and JAX arrays are immutable: drop out= and use the returned array")
    devices = a.devices()
    if len(devices) != 1:
        raise ValueError(f"{what} is a JAX array sharded over {len(devices)} devices; pass a single-device array")
    device = next(iter(devices))
    if device.platform == "cpu":
        return np.asarray(a), _JaxRewrap(device)  # a read-only view of JAX's buffer
    if device.platform in ("gpu", "cuda") and _cupy() is not None:
        return _from_dlpack_cupy(a), _JaxRewrap(device)
    raise ValueError(f"{what} is a JAX array on {device}, which no backend here can read")


# -------------------------------------------------------------- any DLPack
class _NamespaceRewrap:
    def __init__(self, namespace: Any):
        self.namespace = namespace

    def __call__(self, result: Any) -> Any:
        module = type(result).__module__.partition(".")[0]
        if module not in ("numpy", "cupy"):
            return result
        try:
            return self.namespace.from_dlpack(result)
        except Exception:  # the namespace cannot import it (dtype, device): keep ours
            return result


def _dlpack(obj: Any, what: str) -> tuple[Any, Rewrap]:
    try:
        kind = int(obj.__dlpack_device__()[0])
    except Exception:
        return obj, None
    if kind in (_DL_CPU, _DL_CUDA_HOST):
        arr = np.from_dlpack(obj)
    elif kind in (_DL_CUDA, _DL_CUDA_MANAGED):
        if _cupy() is None:
            raise ValueError(f"{what} is a CUDA DLPack array ({type(obj).__name__}), but CuPy cannot use a GPU here")
        arr = _from_dlpack_cupy(obj)
    else:
        return obj, None  # unknown device: the backends say what is wrong
    namespace = getattr(obj, "__array_namespace__", None)
    return arr, (_NamespaceRewrap(namespace()) if namespace is not None else None)


# ------------------------------------------------------------------ FP8 results
def wrap_quantized(result: Any, rewrap: Rewrap, given_out: Any, fmt: Any) -> Any:
    """``Quantized(values, amax)`` of a backend as the input's library: torch gets its own FP8
    dtype (torch.float8_e4m3fn / float8_e5m2, a bit view of the codes), JAX the ml_dtypes one."""
    values, amax = result
    if given_out is not None:
        written(given_out)
        values = given_out
    elif isinstance(rewrap, _TorchRewrap):
        torch = sys.modules["torch"]
        codes = values.view(np.uint8)
        values = rewrap(codes).view(getattr(torch, fmt.dtype.name))
    else:
        values = rewrap(values)
    return type(result)(values, rewrap(amax))
