"""`python -m activations bench --overhead`: what a call costs in Python, measured without a GPU.

Two numbers (median over many calls on a tiny array):

* ``cupy host overhead``: ``activations.apply`` into the CuPy backend (argument checks, dispatch,
  the launch layer of ``backends.cuda.ops``, argument packing, the output allocation) with a stand-in for
  CuPy whose arrays are NumPy memory and whose kernel launch does nothing.  A real CuPy adds its
  own cost to the allocation and the launch (a few microseconds; not ours to cut).
  The stand-in's own share (its allocation and device context, :func:`standin_share`) is printed
  beneath it.
* ``front end``: ``activations.apply`` on a tiny NumPy array into a backend that returns at once:
  the shared code in front of every backend (name lookup, parameter binding, backend selection,
  validation, the Call).

The stand-in (:func:`standin_cupy`, :class:`StandinCupyBackend`) is also how the tests check the
CuPy backend's device handling on machines without a GPU (several pretend devices).
"""
from __future__ import annotations

import contextlib
import platform
import statistics
import time
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np

from ...backends import Backend

#: the device properties the launch layer reads (an H100 SXM)
H100_ATTRIBUTES = {
    "MultiProcessorCount": 132, "MaxThreadsPerBlock": 1024, "MaxThreadsPerMultiProcessor": 2048,
    "MaxSharedMemoryPerBlock": 48 * 1024, "MaxSharedMemoryPerBlockOptin": 227 * 1024,
}


class StandinDevice:
    """``cupy.cuda.Device`` of the stand-in: an id, its attributes, and a current device that the
    context manager switches (one per process: the stand-in is single-threaded)."""

    current = 0
    attributes = H100_ATTRIBUTES

    def __init__(self, device: int | None = None):
        self.id = StandinDevice.current if device is None else int(device)
        self._previous: list[int] = []

    def __enter__(self) -> "StandinDevice":
        self._previous.append(StandinDevice.current)
        StandinDevice.current = self.id
        return self

    def __exit__(self, *exc) -> None:
        StandinDevice.current = self._previous.pop()


class _Pointer:
    __slots__ = ("ptr",)

    def __init__(self, ptr: int):
        self.ptr = ptr


class StandinArray(np.ndarray):
    """A CuPy array as the backend sees one: NumPy memory, ``.device`` (the device current when it
    was made) and ``.data.ptr``.  Its module is CuPy's, so that the front end takes the path it
    takes for a CuPy array (a type test, not the ``__cuda_array_interface__`` probe)."""

    def __array_finalize__(self, obj: Any) -> None:
        self._device = getattr(obj, "_device", None) or StandinDevice()
        self._data = _Pointer(self.__array_interface__["data"][0])

    @property
    def device(self) -> StandinDevice:  # type: ignore[override]
        return self._device

    @property
    def data(self) -> _Pointer:  # type: ignore[override]
        return self._data

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.data.ptr, False), "version": 3}


StandinArray.__module__ = "cupy"


def _standin(a: Any) -> StandinArray:
    return a.view(StandinArray)


class _Function:
    def __init__(self, name: str, on_launch: Callable | None):
        self.name = name
        self.on_launch = on_launch
        self.max_dynamic_shared_size_bytes = 0

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        if self.on_launch is not None:
            self.on_launch(self.name, StandinDevice.current, grid, block, args)


def standin_cupy(on_launch: Callable | None = None) -> SimpleNamespace:
    """The part of the ``cupy`` module the CuPy backend uses, on NumPy; kernels launch as
    ``on_launch(name, current_device, grid, block, args)`` (nothing when None)."""

    class RawModule:
        def __init__(self, code: str, options: tuple = ()):
            self.code = code

        def get_function(self, name: str) -> _Function:
            return _Function(name, on_launch)

    return SimpleNamespace(
        __version__="stand-in", ndarray=StandinArray, RawModule=RawModule,
        cuda=SimpleNamespace(Device=StandinDevice, runtime=SimpleNamespace(getDeviceCount=lambda: 2),
                             nvrtc=SimpleNamespace(getVersion=lambda: (0, 0))),
        empty=lambda shape, dtype=np.float64: _standin(np.empty(shape, dtype)),
        asarray=lambda a, dtype=None: _standin(np.asarray(a, dtype)),
        ascontiguousarray=lambda a: _standin(np.ascontiguousarray(a)),
        broadcast_to=lambda a, shape: _standin(np.broadcast_to(a, shape)),
        may_share_memory=np.may_share_memory,
    )


def standin_backend(on_launch: Callable | None = None):
    """The CuPy backend over :func:`standin_cupy`."""
    from ...backends.cuda import CupyBackend

    class StandinCupyBackend(CupyBackend):
        description = "the CuPy backend on a stand-in for CuPy (NumPy memory, no-op launches)"

        def __init__(self) -> None:
            super().__init__()
            self._standin = standin_cupy(on_launch)

        def _cupy(self) -> Any:
            return self._standin

        def available(self) -> tuple[bool, str]:
            return True, "stand-in"

    return StandinCupyBackend()


@contextlib.contextmanager
def registered(backend: Any, name: str | None = None) -> Iterator[Any]:
    """Inside, automatic and explicit selection of ``name`` (default: backend.name) give ``backend``."""
    from ... import dispatch

    name = name or backend.name
    saved = dispatch._loaded.get(name)
    dispatch._loaded[name] = backend
    try:
        yield backend
    finally:
        if saved is None:
            dispatch._loaded.pop(name, None)
        else:
            dispatch._loaded[name] = saved


class _ReturnAtOnce(Backend):
    """A backend that does nothing: what is left of a call is the front end."""

    name = "numpy"

    def __init__(self, real: Any):
        self.real = real

    def available(self) -> tuple[bool, str]:
        return True, "returns at once"

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, np.ndarray)

    def asarray(self, obj: Any, what: str, dtype: Any = None) -> Any:
        return self.real.asarray(obj, what, dtype)

    def forward(self, call: Any) -> Any:
        return call.x


def per_call_us(fn: Callable[[], Any], calls: int = 2000, rounds: int = 7) -> float:
    """Median over ``rounds`` of the mean time of ``calls`` calls, in microseconds."""
    for _ in range(min(calls, 200)):
        fn()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(samples)


def cupy_host_overhead(name: str = "gelu", n: int = 256, calls: int = 2000) -> float:
    """us per ``activations.apply(name, x)`` on the stand-in CuPy backend (no-op launch)."""
    import activations

    be = standin_backend()
    x = be._cupy().empty(n, np.float32)
    x[...] = 0.5
    with registered(be, "cupy"):
        return per_call_us(lambda: activations.apply(name, x), calls)


def standin_share(n: int = 256, calls: int = 2000) -> float:
    """us per call that the stand-in itself adds to :func:`cupy_host_overhead`: its allocation of
    the output (a NumPy array viewed as :class:`StandinArray`) inside its device context, timed
    alone (a real CuPy has costs of its own there instead)."""
    be = standin_backend()
    xp = be._cupy()
    launcher = be._launcher_for(xp.empty(n, np.float32))

    def allocate() -> None:
        with launcher.scope():
            xp.empty((n,), dtype=np.float32)

    return per_call_us(allocate, calls)


def front_end_overhead(name: str = "gelu", n: int = 8, calls: int = 4000) -> tuple[float, float]:
    """(us of the front end alone, us of the whole call on the NumPy backend) for a tiny array."""
    import activations
    from ... import dispatch

    x = np.full(n, 0.5, np.float32)
    whole = per_call_us(lambda: activations.apply(name, x), calls)
    real = dispatch.load("numpy")
    with registered(_ReturnAtOnce(real), "numpy"):
        front = per_call_us(lambda: activations.apply(name, x), calls)
    return front, whole


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(name: str = "gelu") -> list[str]:
    cupy = cupy_host_overhead(name)
    share = standin_share()
    front, whole = front_end_overhead(name)
    x = np.ones(8, np.float32)
    ref = per_call_us(lambda: np.add(x, 1.0), 4000)
    return [
        f"cupy host overhead: {cupy:.1f} us  ({name}, float32[256], the CuPy backend on a stand-in for CuPy "
        "with a no-op launch; goal <= 5 us)",
        f"  of which the stand-in: {share:.1f} us  (its output allocation and device switch, timed alone; "
        "a real CuPy costs its own there)",
        f"front end: {front:.1f} us  ({name}, float32[8] NumPy array, into a backend that returns at once; "
        "goal <= 3 us)",
        f"numpy apply: {whole:.1f} us  (the same call on the NumPy backend, compute included)",
        f"cpu: {cpu_model()}, Python {platform.python_version()}, NumPy {np.__version__}; "
        f"np.add on float32[8] takes {ref:.2f} us here (a yardstick for a busy or slow machine)",
    ]
