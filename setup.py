"""Builds the compiled CPU engine: kernels/cpu/engine.cpp as three extension modules of
activations.backends.cpu, one per x86-64 instruction-set level (the package picks the best
one the CPU runs, at import).  setuptools, because the package is pure Python otherwise and
needs nothing but a C++ compiler and NumPy's headers; everything else is in pyproject.toml.

Without a C++ compiler (or on another architecture) the modules are skipped with a warning and
the package installs all the same: it then computes with its NumPy fallback, and
`python -m activations info` says why.
"""
from __future__ import annotations

import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Flags of every build.  -ffp-contract=off: multiply-adds are fused only where the source asks
# (vmath.h), so that the AVX-512 and AVX2 builds compute the same numbers.  No -ffast-math:
# NaN and infinities behave as IEEE says.
COMMON = [
    "-std=c++17", "-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off",
    "-fno-semantic-interposition", "-fvisibility=hidden", "-Wno-unused-function",
]
LEVELS = {"avx512": ["-march=x86-64-v4"], "avx2": ["-march=x86-64-v3"], "baseline": []}


class BuildEngine(build_ext):
    """build_ext that builds the engine modules in parallel and never fails the install."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1
        import numpy

        for ext in self.extensions:
            ext.include_dirs.append(numpy.get_include())

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # no compiler, an old one, a broken toolchain: fall back to NumPy
            print(f"warning: not building {ext.name} ({type(exc).__name__}: {exc}); "
                  "the package will use its NumPy fallback", file=sys.stderr)


def engine_modules() -> list[Extension]:
    if platform.machine().lower() not in ("x86_64", "amd64") or sys.platform == "win32":
        print("warning: the compiled CPU engine is built for x86-64 Linux/macOS only; "
              "this install uses the NumPy fallback", file=sys.stderr)
        return []
    return [
        Extension(
            f"activations.backends.cpu._engine_{isa}",
            sources=[f"kernels/cpu/engine_{isa}.cpp"],  # one file (and object) per level
            include_dirs=["kernels/cpu/cuda_shim", "kernels/cpu", "kernels"],
            define_macros=[("ACT_ENGINE_MODULE", f"_engine_{isa}"), ("ACT_ENGINE_ISA", f'"{isa}"')],
            extra_compile_args=COMMON + flags,
            depends=["kernels/cpu/engine.cpp", "kernels/cpu/prelude.h", "kernels/cpu/vmath.h", "kernels/common.cuh", "kernels/functors.cuh", "kernels/fp8.cuh",
                     "kernels/cpu/cuda_shim/cuda_fp16.h", "kernels/cpu/cuda_shim/cuda_bf16.h"],
            language="c++",
            optional=True,
        )
        for isa, flags in LEVELS.items()
    ]


setup(ext_modules=engine_modules(), cmdclass={"build_ext": BuildEngine})
