"""The CPU harness: kernels/ compiled by g++ with the fiber shim, driven through ctypes.

``build()`` generates one translation unit per dtype (the same ``ACT_*`` entry lines the GPU
modules get, from ``activations.backends.cuda.source``), compiles them in parallel with the
launcher into ``tests/cuda_host/build/libcuda_host-<hash>.so`` and reuses that library until a
source, a flag or the compiler changes.  :class:`HostLauncher` implements the launch interface of
``activations.backends.cuda.ops`` on NumPy arrays, so :class:`HostBackend` is the package's
CUDA backend with the CPU in place of the GPU: same argument packing, same launch shapes, same
path choices, same kernel text.  :func:`registered` puts it behind ``activations.apply``.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from activations.backends.cuda import source as _cuda_source
from activations.backends.cuda.ops import DeviceInfo, KernelBackend

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
INCLUDE = HERE / "include"
CXX = os.environ.get("CXX", "g++")
#: hand-written units: the ctypes entry points and the shim's own test kernels
HARNESS_UNITS = ("launcher.cpp", "selftest.cu")
CXXFLAGS = ("-std=c++20", "-O1", "-fPIC", "-Wall", "-Wno-unknown-pragmas", "-Wno-unused-function")

#: a small pretend device: grids are capped early (so grid-stride loops iterate), blocks have at
#: most 256 threads (fibers are cheap but not free), and 16 KiB of shared memory move the softmax
#: block/long switch down to 4096 floats
HOST_DEVICE = DeviceInfo(
    sm_count=2, max_threads_per_block=256, max_threads_per_sm=512,
    shared_per_block=16 * 1024, shared_per_block_optin=16 * 1024,
)

# `extern __shared__ T name[];` -> a pointer to the launch's dynamic shared memory buffer
_EXTERN_SHARED = re.compile(r"extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?([A-Za-z_][\w:<> ]*?)\s+(\w+)\[\];")


def _rewrite(text: str) -> str:
    return _EXTERN_SHARED.sub(r"\1* \2 = reinterpret_cast<\1*>(::act_host::dynamic_smem());", text)


def translation_units() -> dict[str, str]:
    """Generated sources: one per dtype, every module's entry lines."""
    units = {}
    for dt in _cuda_source.KERNEL_DTYPES:
        lines = [line for mod in _cuda_source.all_modules((dt,)) for line in mod.lines()]
        units[f"entries_{dt}.cpp"] = '#include "cuda_host_shim.h"\n#include "activations.cuh"\n\n' + "\n".join(lines) + "\n"
    return units


def _inputs() -> dict[str, str]:
    """Every file the library is built from, by name (kernel headers already rewritten)."""
    files = {f"kernels/{p.name}": _rewrite(p.read_text()) for p in _cuda_source.kernel_files()}
    files.update({f"include/{p.name}": p.read_text() for p in sorted(INCLUDE.glob("*.h"))})
    for name in HARNESS_UNITS:
        files[name] = _rewrite((HERE / name).read_text())
    files.update(translation_units())
    return files


def _compiler_id() -> str:
    return subprocess.run([CXX, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def build() -> Path:
    """The harness library, compiled on first use (and whenever an input changes)."""
    files = _inputs()
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    digest.update(" ".join(CXXFLAGS).encode() + _compiler_id().encode())
    lib = BUILD / f"libcuda_host-{digest.hexdigest()[:16]}.so"
    if lib.exists():
        return lib
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test processes build once
        if lib.exists():
            return lib
        with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
            src = Path(tmp)
            for name, text in files.items():
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                (src / name).write_text(text)
            units = [*HARNESS_UNITS, *sorted(n for n in files if n.startswith("entries_"))]
            flags = [*CXXFLAGS, f"-I{src / 'include'}", f"-I{src / 'kernels'}"]

            def compile_one(unit: str) -> Path:
                obj = src / (unit + ".o")
                _run([CXX, *flags, "-x", "c++", "-c", str(src / unit), "-o", str(obj)])
                return obj

            with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
                objects = list(pool.map(compile_one, units))
            tmp_lib = src / lib.name
            _run([CXX, "-shared", "-o", str(tmp_lib), *map(str, objects)])
            shutil.move(str(tmp_lib), lib)
        for old in BUILD.glob("libcuda_host-*.so"):
            if old != lib:
                old.unlink(missing_ok=True)
    return lib


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:2])} ... failed:\n{done.stderr[-8000:]}")


# ----------------------------------------------------------------- ctypes
_CTYPES = {
    np.dtype(np.float32): (ctypes.c_float, "f"),
    np.dtype(np.float64): (ctypes.c_double, "d"),
    np.dtype(np.int32): (ctypes.c_int32, "i"),
    np.dtype(np.uint32): (ctypes.c_uint32, "I"),
    np.dtype(np.int64): (ctypes.c_int64, "q"),
    np.dtype(np.uint64): (ctypes.c_uint64, "Q"),
}


class HostLibrary:
    """The compiled harness: launch kernels by name on NumPy arrays."""

    def __init__(self, path: Path):
        self.path = path
        lib = ctypes.CDLL(str(path))
        lib.act_host_launch.argtypes = [ctypes.c_char_p] + [ctypes.c_uint] * 6 + [ctypes.c_ulonglong,
                                                                                   ctypes.POINTER(ctypes.c_void_p)]
        lib.act_host_launch.restype = ctypes.c_int
        lib.act_host_error.restype = ctypes.c_char_p
        lib.act_host_signature.argtypes = [ctypes.c_char_p]
        lib.act_host_signature.restype = ctypes.c_char_p
        lib.act_host_entries.restype = ctypes.c_char_p
        self._lib = lib
        self._signatures: dict[str, str] = {}

    def entries(self) -> list[str]:
        return self._lib.act_host_entries().decode().split()

    def signature(self, name: str) -> str:
        sig = self._signatures.get(name)
        if sig is None:
            raw = self._lib.act_host_signature(name.encode())
            if raw is None:
                raise KeyError(f"the harness has no kernel {name!r}")
            sig = self._signatures[name] = raw.decode()
        return sig

    def launch(self, name: str, grid, block, args: tuple, shared_mem: int = 0) -> None:
        """Like ``RawKernel(grid, block, args, shared_mem=...)``: arrays and None become pointers,
        NumPy scalars their C type; the packing must match the kernel's signature exactly."""
        sig = self.signature(name)
        codes, holders = [], []
        for a in args:
            if a is None or isinstance(a, np.ndarray):
                codes.append("p")
                holders.append(ctypes.c_void_p(None if a is None else a.ctypes.data))
            elif isinstance(a, np.generic) and a.dtype in _CTYPES:
                ctype, code = _CTYPES[a.dtype]
                codes.append(code)
                holders.append(ctype(a.item()))
            else:
                raise TypeError(f"{name}: argument {a!r} of type {type(a).__name__} cannot be packed")
        if "".join(codes) != sig:
            raise TypeError(f"{name}: packed arguments {''.join(codes)!r} do not match the signature {sig!r}")
        argv = (ctypes.c_void_p * len(holders))(*[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in holders])
        g = tuple(grid) + (1,) * (3 - len(grid))
        b = tuple(block) + (1,) * (3 - len(block))
        if self._lib.act_host_launch(name.encode(), *g, *b, int(shared_mem), argv) != 0:
            raise RuntimeError(f"{name}: {self._lib.act_host_error().decode()}")


@dataclass
class LaunchRecord:
    name: str
    grid: tuple
    block: tuple
    shared_mem: int


class HostLauncher:
    """The :class:`~activations.backends.cuda.ops.Launcher` of the harness (NumPy arrays)."""

    xp = np

    def __init__(self, library: HostLibrary, info: DeviceInfo = HOST_DEVICE):
        self.library = library
        self.info = info
        self.launches: list[LaunchRecord] = []  # what ran, for tests that check path choices

    @staticmethod
    def scope() -> contextlib.nullcontext:
        return contextlib.nullcontext()  # one device

    def launch(self, module, name, grid, block, args, shared_mem=0) -> None:
        if name not in module.entries():
            raise KeyError(f"{name} is not an entry of module {module.key}")
        limit = self.info.shared_per_block_optin
        if shared_mem > limit:
            raise ValueError(f"{name}: {shared_mem} bytes of shared memory, the device has {limit}")
        self.launches.append(LaunchRecord(name, tuple(grid), tuple(block), shared_mem))
        self.library.launch(name, grid, block, args, shared_mem)

    @staticmethod
    def address(array: Any) -> int:
        return array.ctypes.data


class HostBackend(KernelBackend):
    """The CUDA backend on NumPy arrays through the harness (tests only)."""

    name = "cuda_host"
    description = "CUDA C kernels on the CPU (tests/cuda_host)"

    def __init__(self, launcher: HostLauncher):
        super().__init__(lambda x: launcher)
        self.launcher = launcher

    def available(self) -> tuple[bool, str]:
        return True, str(self.launcher.library.path)

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, np.ndarray)

    def asarray(self, obj: Any, what: str, dtype: Any = None) -> Any:
        if not isinstance(obj, np.ndarray):  # lists and scalars: float64 unless a dtype is asked for
            obj = np.asarray(obj, dtype=np.float64 if dtype is None else dtype)
        return obj if dtype is None or obj.dtype == np.dtype(dtype) else obj.astype(dtype)


@contextlib.contextmanager
def registered(backend: HostBackend) -> Iterator[HostBackend]:
    """Inside, ``activations.apply(..., backend="cuda_host")`` runs through ``backend``: the public
    interface, its validation included, in front of the harness."""
    from activations import dispatch

    saved = [(table, table.get(backend.name)) for table in (dispatch.BACKEND_MODULES, dispatch._loaded)]
    dispatch.BACKEND_MODULES[backend.name] = __name__
    dispatch._loaded[backend.name] = backend
    try:
        yield backend
    finally:  # put back what was there (registrations may nest)
        for table, value in saved:
            if value is None:
                table.pop(backend.name, None)
            else:
                table[backend.name] = value
