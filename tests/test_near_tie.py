"""The near-tie test of 16-bit stores (kernels/functors.cuh, near_tie; the GPU kernels and the CPU
engine both take it) against the value test it replaced: reading the rounding boundary off the
float's bits must flag every result the value test flagged (else a result within a few float ulps
of a 16-bit tie could keep the wrong rounding).  (How many more it flags on real data, each flag
a redo in double, is tests/test_cuda_host.py's check of the window's share.)
tests/near_tie/harness.cpp is compiled as the CPU engine compiles the CUDA headers (near_tie in a
vectorized loop) and run over a strided sample of all 2^32 floats and over every float of the edge
ranges: float16's smallest tie (2^-25), its subnormal and normal boundary (2^-14), its overflow
tie (65520) and bfloat16's subnormals and FLT_MIN.  (tests/test_cuda_host.py checks the CUDA build
near every boundary.)  The whole 2^32 with stride 1 takes about a minute:
    python tests/test_near_tie.py --all
"""
from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CXX = os.environ.get("CXX", "g++")
FLAGS = ["-std=c++17", "-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
INCLUDES = ["-I", str(ROOT / "kernels" / "cpu" / "cuda_shim"), "-I", str(ROOT / "kernels" / "cpu"), "-I", str(ROOT / "kernels")]


def bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def around(x: float, half_width: int) -> tuple[int, int, int]:
    b = bits(x)
    return b - half_width, b + half_width, 1


#: (first, last, stride) bit patterns: a strided sample of everything, then the edges densely
RANGES = [(0, 1 << 32, 4099),
          around(2.0 ** -25, 1 << 20), around(2.0 ** -14, 1 << 19), around(65520.0, 1 << 19),
          around(-(2.0 ** -25), 1 << 18), around(-65520.0, 1 << 18),
          (0, 1 << 21, 1), around(2.0 ** -126, 1 << 19)]


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    if not any((Path(p) / CXX).exists() for p in os.environ.get("PATH", "").split(os.pathsep)) and \
            not Path(CXX).exists():
        pytest.skip(f"no C++ compiler ({CXX}) to build the near-tie harness")
    out = tmp_path_factory.mktemp("near_tie") / "near_tie"
    cmd = [CXX, *FLAGS, *INCLUDES, str(ROOT / "tests" / "near_tie" / "harness.cpp"), "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def run(harness, first, last, stride) -> dict[str, dict[str, int]]:
    r = subprocess.run([str(harness), str(first), str(last), str(stride)], capture_output=True, text=True,
                       check=True)
    found = {}
    for m in re.finditer(r"^(\w+) both (\d+) gpu_only (\d+) ours_only (\d+)$", r.stdout, re.M):
        found[m.group(1)] = {"both": int(m.group(2)), "gpu_only": int(m.group(3)), "ours_only": int(m.group(4)),
                             "missed": re.findall(rf"^{m.group(1)} missed (\S+)$", r.stdout, re.M)}
    assert set(found) == {"float16", "bfloat16"}, r.stdout
    return found


@pytest.mark.parametrize("first,last,stride", RANGES)
def test_engine_flags_what_the_gpu_flags(harness, first, last, stride):
    first, last = max(first, 0), min(last, 1 << 32)
    for name, c in run(harness, first, last, stride).items():
        assert c["gpu_only"] == 0, f"{name}: {c['gpu_only']} results the GPU's test flags are not flagged: {c['missed']}"


def test_the_check_can_fail(harness):
    """A narrower window (bfloat16's 34 ulps cut to 15) misses results the value test flags: the
    comparison above would see it."""
    src = (ROOT / "kernels" / "functors.cuh").read_text()
    assert "constexpr unsigned TIE_ULPS = 34;" in src  # the window this test narrows
    narrow = harness.parent / "narrow"
    narrow.mkdir(exist_ok=True)
    (narrow / "functors.cuh").write_text(src.replace("constexpr unsigned TIE_ULPS = 34;", "constexpr unsigned TIE_ULPS = 15;"))
    out = harness.parent / "near_tie_narrow"
    cmd = [CXX, *FLAGS, "-I", str(narrow), *INCLUDES, str(ROOT / "tests" / "near_tie" / "harness.cpp"), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    found = run(out, *RANGES[0])
    assert found["bfloat16"]["gpu_only"] > 0


if __name__ == "__main__" and "--all" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        exe = Path(d) / "near_tie"
        subprocess.run([CXX, *FLAGS, "-march=native", *INCLUDES, str(ROOT / "tests" / "near_tie" / "harness.cpp"),
                        "-o", str(exe)], check=True)
        print(subprocess.run([str(exe), "0", str(1 << 32), "1"], capture_output=True, text=True).stdout)
