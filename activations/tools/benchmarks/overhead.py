"""`python -m activations bench --overhead`: what a call costs in Python, measured without a GPU.

Two numbers (:func:`measure`: the fastest of many short rounds, the variants taken in turns):

* ``cupy host overhead``: ``activations.apply`` into the CuPy backend (argument checks, dispatch,
  the launch layer of ``backends.cuda.ops``, argument packing) with a stand-in for CuPy whose
  arrays are NumPy memory and whose kernel launch does nothing.  The figure compared with the goal
  is ours: the whole call less the stand-in's own operations in it (its device context, the
  output's allocation, the addresses read, the no-op launch: :func:`_standin_ops`, which a test
  checks against what a call does), timed in turns with the call.  Both are printed.  A real
  CuPy has its own cost at those places (a few microseconds; not ours to cut).
* ``front end``: ``activations.apply`` on a tiny NumPy array into a backend that returns at once:
  the shared code in front of every backend (name lookup, parameter binding, backend selection,
  validation, the Call).

The stand-in (:func:`standin_cupy`, :class:`StandinCupyBackend`) is also how the tests check the
CuPy backend's device handling on machines without a GPU (several pretend devices).  Where a
real CuPy works in C (allocating an array, reading its device and address) the stand-in does as
little Python as it can, so that its share stays small next to ours.
"""
from __future__ import annotations

import collections
import contextlib
import ctypes
import math
import platform
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

    __slots__ = ("id", "_previous")
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


#: device id -> the Device object that arrays made there report as ``.device`` (one per id, as
#: the allocation of a real CuPy does in C: not a Python object built per array)
_ARRAY_DEVICES: dict[int, StandinDevice] = {}


def _array_device() -> StandinDevice:
    device = StandinDevice.current
    got = _ARRAY_DEVICES.get(device)
    if got is None:
        got = _ARRAY_DEVICES[device] = StandinDevice(device)
    return got


class _Pointer:
    __slots__ = ("ptr",)

    def __init__(self, ptr: int):
        self.ptr = ptr


class _Data:
    """``.data`` of a :class:`StandinArray`: its address, read on first use and then kept in the
    instance (a non-data descriptor: the instance's dict wins once filled)."""

    def __get__(self, obj: Any, tp: Any = None) -> Any:
        if obj is None:
            return self
        try:  # a quarter of the time of __array_interface__, for writable C-contiguous memory
            ptr = ctypes.addressof(ctypes.c_char.from_buffer(obj))
        except (TypeError, ValueError, BufferError):
            ptr = obj.__array_interface__["data"][0]
        data = obj.__dict__["data"] = _Pointer(ptr)
        return data


class StandinArray(np.ndarray):
    """A CuPy array as the backend sees one: NumPy memory, ``.device`` (the device current when it
    was made) and ``.data.ptr``.  Its module is CuPy's, so that the front end takes the path it
    takes for a CuPy array (a type test, not the ``__cuda_array_interface__`` probe)."""

    def __array_finalize__(self, obj: Any) -> None:
        self._device = getattr(obj, "_device", None) or _array_device()

    @property
    def device(self) -> StandinDevice:  # type: ignore[override]
        return self._device

    data = _Data()  # type: ignore[assignment]

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
        empty=_empty,
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


def per_call_us(fns: dict[str, Callable[[], Any]], calls: int = 2000, rounds: int = 15,
                scopes: dict[str, Callable[[], Any]] | None = None) -> dict[str, float]:
    """The fastest over ``rounds`` of the mean time of ``calls`` calls of each of ``fns``, in
    microseconds.  The functions take turns within each round, so that a busy machine slows them
    alike (the fastest round is the one least disturbed); ``scopes[key]()``, when given, is a
    context entered around the calls of ``fns[key]`` (outside the timing)."""
    scopes = scopes or {}
    best = {key: math.inf for key in fns}
    clock = time.perf_counter_ns
    for round_ in range(rounds + 1):
        for key, fn in fns.items():
            with scopes.get(key, contextlib.nullcontext)():
                if not round_:  # a warm-up round: first calls compile, fill caches
                    for _ in range(min(calls, 200)):
                        fn()
                    continue
                t0 = clock()
                for _ in range(calls):
                    fn()
                best[key] = min(best[key], (clock() - t0) / calls / 1e3)
    return best


def _standin_ops(be: Any, x: Any, name: str = "gelu") -> Callable[[], None]:
    """What the stand-in itself does in one ``activations.apply(name, x)`` on ``be`` (elementwise,
    forward, no out): x's ``.device``, the device context, the output's allocation, the two
    addresses read for the alignment test, and the launch (of a function that does nothing): the
    same operations on the same objects, without the package's code around them.  The test of the
    overhead machinery checks that a call makes exactly these (:func:`standin_operations`)."""
    launches: list = []
    traced = standin_backend(on_launch=lambda *launch: launches.append(launch))
    with registered(traced, "cupy"):
        import activations

        activations.apply(name, x)
    _, device_id, grid, block, args = launches[-1]
    xp = be._cupy()
    fn = _Function("noop", None)
    shape, dtype = x.shape, x.dtype
    device_class = xp.cuda.Device

    def ops() -> None:
        x.device
        with device_class(device_id):
            y = xp.empty(shape, dtype=dtype)
            x.data.ptr
            y.data.ptr
            fn(grid, block, args, shared_mem=0)

    return ops


@contextlib.contextmanager
def standin_operations() -> Iterator[collections.Counter]:
    """Counts the stand-in's own operations made inside (the test of :func:`_standin_ops`):
    devices made, entered and left, ``.device`` read, arrays allocated by ``empty``, addresses
    worked out, kernels launched."""
    global _counts
    counts: collections.Counter = collections.Counter()
    saved = {}

    def count(owner: Any, attr: str, key: str) -> None:
        original = saved[owner, attr] = owner.__dict__[attr]
        if isinstance(original, property):
            wrapped: Any = property(lambda obj: (counts.update((key,)), original.fget(obj))[1])
        else:
            def wrapped(self, *args, **kwargs):
                if key != "address worked out" or args[0] is not None:
                    counts[key] += 1
                return original(self, *args, **kwargs)
        setattr(owner, attr, wrapped)

    count(StandinDevice, "__init__", "device made")
    count(StandinDevice, "__enter__", "device entered")
    count(StandinDevice, "__exit__", "device left")
    count(StandinArray, "device", ".device read")
    count(_Data, "__get__", "address worked out")
    count(_Function, "__call__", "launch")
    _counts = counts
    try:
        yield counts
    finally:
        _counts = None
        for (owner, attr), original in saved.items():
            setattr(owner, attr, original)


_counts: collections.Counter | None = None  # set inside standin_operations: _empty counts there


def _empty(shape: Any, dtype: Any = np.float64) -> StandinArray:
    if _counts is not None:
        _counts["empty"] += 1
    return _standin(np.empty(shape, dtype))


def measure(name: str = "gelu", calls: int = 200, rounds: int = 150) -> dict[str, float]:
    """us per call, each the fastest of ``rounds`` rounds taken in turns (short rounds, many of
    them: on a shared machine some fall between other processes' time slices):

    * ``total``: ``activations.apply(name, x)`` on the stand-in CuPy backend, x float32[256];
    * ``standin``: the stand-in's own operations in that call (:func:`_standin_ops`), and
      ``ours`` = total - standin, the package's Python (the figure of the goal);
    * ``front``: ``activations.apply(name, x)`` on a float32[8] NumPy array into a backend that
      returns at once, and ``numpy``: the same call on the NumPy backend, compute included;
    * ``yardstick``: ``np.add`` on float32[8].
    """
    import activations
    from ... import dispatch

    be = standin_backend()
    x = be._cupy().empty(256, np.float32)
    x[...] = 0.5
    small = np.full(8, 0.5, np.float32)
    with registered(be, "cupy"):
        standin = _standin_ops(be, x, name)
    at_once = _ReturnAtOnce(dispatch.load("numpy"))
    got = per_call_us(
        {
            "total": lambda: activations.apply(name, x),
            "standin": standin,
            "front": lambda: activations.apply(name, small),
            "numpy": lambda: activations.apply(name, small),
            "yardstick": lambda: np.add(small, 1.0),
        },
        calls, rounds,
        scopes={"total": lambda: registered(be, "cupy"), "front": lambda: registered(at_once, "numpy")},
    )
    got["ours"] = got["total"] - got["standin"]
    return got


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
    got = measure(name)
    return [
        f"cupy host overhead: {got['ours']:.1f} us ours  ({name}, float32[256], the CuPy backend on a stand-in for "
        "CuPy with a no-op launch; goal <= 5 us)",
        f"  = the whole call {got['total']:.1f} us less the stand-in's own {got['standin']:.1f} us (its device switch, "
        "output allocation, addresses and no-op launch, timed in turns with the call; a real CuPy costs its own there)",
        f"front end: {got['front']:.1f} us  ({name}, float32[8] NumPy array, into a backend that returns at once; "
        "goal <= 3 us)",
        f"numpy apply: {got['numpy']:.1f} us  (the same call on the NumPy backend, compute included)",
        f"cpu: {cpu_model()}, Python {platform.python_version()}, NumPy {np.__version__}; "
        f"np.add on float32[8] takes {got['yardstick']:.2f} us here (a yardstick for a busy or slow machine); "
        "each figure is the fastest of 150 rounds of 200 calls, taken in turns",
    ]
