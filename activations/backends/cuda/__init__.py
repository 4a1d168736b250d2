"""The CuPy backend: the hand-written CUDA C kernels of ``kernels/`` compiled by NVRTC.

Arrays: CuPy arrays, and any object with ``__cuda_array_interface__`` or a CUDA DLPack
capsule, taken zero-copy (``cupy.asarray`` / ``cupy.from_dlpack``); a call runs on the device
``x`` lives on (made current for the call) and its results are CuPy arrays on that device.  Host NumPy arrays are refused with a ValueError (no hidden transfers);
Python lists and scalars (``bias=[...]``, ``where=True``) are copied to the device.

Kernels: one ``cupy.RawModule`` per (activation, dtype, device), compiled on first use from the
generated source of ``source`` (our own identifiers only, never a user value) and cached
by CuPy on disk (``~/.cupy/kernel_cache``), so later processes skip NVRTC.  Compilation is
guarded by a lock: concurrent first calls compile once.  Launch shapes come from the device's
properties (``ops``), read once per device; kernels run on CuPy's current stream and
nothing is synchronized.

Requirements: ``pip install 'activations[cuda13]'`` (CuPy, NVRTC and the CUDA headers for
CUDA 13; ``[cuda12]`` for CUDA 12) and an NVIDIA driver.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .ops import DeviceInfo, KernelBackend, Launcher
from ..._paths import kernels_dir
from .source import KernelModule, compile_options

INSTALL_HINT = "pip install 'activations[cuda13]' (or [cuda12])"

# DLPack device types that CuPy can read in place (dlpack.h: CUDA, CUDA host, CUDA managed)
_DLPACK_CUDA = (2, 3, 13)


class CupyLauncher:
    """Compiles and launches the kernels of one device (the :class:`Launcher` of ``ops``)."""

    def __init__(self, cupy: Any, device_id: int):
        self.xp = cupy
        self.device_id = device_id
        attrs = cupy.cuda.Device(device_id).attributes
        self.info = DeviceInfo(
            sm_count=attrs["MultiProcessorCount"],
            max_threads_per_block=attrs["MaxThreadsPerBlock"],
            max_threads_per_sm=attrs["MaxThreadsPerMultiProcessor"],
            shared_per_block=attrs["MaxSharedMemoryPerBlock"],
            shared_per_block_optin=attrs.get("MaxSharedMemoryPerBlockOptin", attrs["MaxSharedMemoryPerBlock"]),
        )
        self._functions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def scope(self) -> Any:
        # current for the call, the previous device after; a new object per call, as a Device
        # keeps its stack of previous devices in the object (shared by threads otherwise)
        return self.xp.cuda.Device(self.device_id)

    def _function(self, module: KernelModule, name: str) -> Any:
        fn = self._functions.get(name)
        if fn is None:
            with self._lock:
                if name not in self._functions:
                    raw = self.xp.RawModule(code=module.source(), options=compile_options())
                    with self.xp.cuda.Device(self.device_id):
                        for e in module.entries():
                            self._functions[e] = raw.get_function(e)  # compiles (or hits the disk cache)
                fn = self._functions[name]
        return fn

    def launch(self, module: KernelModule, name: str, grid, block, args: tuple, shared_mem: int = 0) -> None:
        fn = self._functions.get(name)
        if fn is None:
            fn = self._function(module, name)
        if shared_mem and shared_mem > self.info.shared_per_block and fn.max_dynamic_shared_size_bytes < shared_mem:
            fn.max_dynamic_shared_size_bytes = shared_mem  # opting in above the default 48 KiB
        fn(grid, block, args, shared_mem=shared_mem)  # grid and block: tuples (ops builds them so)

    @staticmethod
    def address(array: Any) -> int:
        return int(array.data.ptr)


class CupyBackend(KernelBackend):
    name = "cupy"
    description = "hand-written CUDA C kernels (kernels/) compiled by NVRTC through cupy.RawModule"

    def __init__(self) -> None:
        super().__init__(self._launcher_for)
        self._launchers: dict[int, CupyLauncher] = {}
        self._lock = threading.Lock()
        self._available: tuple[bool, str] | None = None
        self._array_type: Any = None

    @property
    def array_type(self) -> Any:
        """``cupy.ndarray``, looked up once (the backend is asked about x only once CuPy is loaded)."""
        tp = self._array_type
        if tp is None:
            tp = self._array_type = self._cupy().ndarray
        return tp

    @staticmethod
    def _cupy() -> Any:
        import cupy

        return cupy

    def _launcher_for(self, x: Any = None) -> Launcher:
        """The launcher of the device ``x`` lives on (the current device when ``x`` has none)."""
        device = getattr(x, "device", None)
        device = self._cupy().cuda.Device().id if device is None else device.id
        launcher = self._launchers.get(device)
        if launcher is None:
            with self._lock:
                launcher = self._launchers.get(device)
                if launcher is None:
                    launcher = self._launchers[device] = CupyLauncher(self._cupy(), device)
        return launcher

    _current_launcher = _launcher_for  # the current device's launcher (x=None)

    # ------------------------------------------------------------ protocol
    def available(self) -> tuple[bool, str]:
        if self._available is None or not self._available[0]:
            self._available = self._probe()
        return self._available

    def _probe(self) -> tuple[bool, str]:
        try:
            cupy = self._cupy()
        except Exception as exc:  # ImportError, or a CuPy build that cannot load
            return False, f"cupy cannot be imported ({type(exc).__name__}: {exc}); {INSTALL_HINT}"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            return False, f"no usable CUDA device ({type(exc).__name__}: {exc})"
        if count == 0:
            return False, "no CUDA device"
        try:
            kernels_dir()
            nvrtc = ".".join(map(str, cupy.cuda.nvrtc.getVersion()))
            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}; {INSTALL_HINT}"
        gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return True, (f"CuPy {cupy.__version__}, NVRTC {nvrtc}, {count} device(s); "
                      f"current: {gpu} (sm_{props['major']}{props['minor']})")

    def owns(self, obj: Any) -> bool:
        module = type(obj).__module__.partition(".")[0]
        if module == "cupy":
            return True
        # Numba device arrays belong to the Numba backend; other CUDA arrays (torch, JAX, ...) are ours.
        return module != "numba" and hasattr(obj, "__cuda_array_interface__")

    def asarray(self, obj: Any, what: str, dtype: Any = None) -> Any:
        cupy = self._cupy()
        if isinstance(obj, cupy.ndarray):
            arr = obj
        elif hasattr(obj, "__cuda_array_interface__"):
            arr = cupy.asarray(obj)
        elif hasattr(obj, "__dlpack_device__") and obj.__dlpack_device__()[0] in _DLPACK_CUDA:
            arr = cupy.from_dlpack(obj)
        elif isinstance(obj, np.ndarray) or hasattr(obj, "__array_interface__"):
            raise ValueError(
                f"{what} is a host (NumPy) array, but the cupy backend works on GPU arrays: "
                f"move it with cupy.asarray({what}) first"
            )
        else:  # Python lists and scalars: float64 unless a dtype is asked for
            arr = cupy.asarray(np.asarray(obj, dtype=np.float64 if dtype is None else dtype))
        if dtype is not None and arr.dtype != np.dtype(dtype):
            try:
                arr = arr.astype(dtype)
            except Exception as exc:
                raise ValueError(f"{what}: cannot cast {arr.dtype} to {np.dtype(dtype)} on the GPU ({exc})") from exc
        return arr


BACKEND = CupyBackend()
