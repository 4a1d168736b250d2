"""The CPU engine's near-tie test for 16-bit results (kernels/cpu/near_tie.h) against the GPU's
(kernels/functors.cuh, store_once), which the engine's test replaced: reading the rounding
boundary off the float's bits must flag every result the GPU's value test flags (else a result
within a few float ulps of a 16-bit tie could keep the wrong rounding), and not many more (each
flag is a redo in double).  tests/near_tie/harness.cpp is compiled with the engine's flags and
run over a strided sample of all 2^32 floats and over every float of the edge ranges: float16's
smallest tie (2^-25), its subnormal and normal boundary (2^-14), its overflow tie (65520) and
bfloat16's subnormals and FLT_MIN.  The whole 2^32 with stride 1 takes about a minute:
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
    cmd = [CXX, *FLAGS, "-I", str(ROOT / "kernels" / "cpu"), "-I", str(ROOT / "kernels" / "cpu" / "cuda_shim"),
           str(ROOT / "tests" / "near_tie" / "harness.cpp"), "-o", str(out)]
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
        if c["both"] > 1000:  # a few more flags than the GPU's test, not many (each is a redo)
            assert c["ours_only"] <= 0.1 * c["both"], (name, c)


def test_the_check_can_fail(harness):
    """A test of one ulp less (the window of 16 ulps flat, too narrow above 1.0 x 2^e) misses
    results the GPU's test flags: the comparison above would see it."""
    src = (ROOT / "kernels" / "cpu" / "near_tie.h").read_text()
    assert "17u + ((u >> 19) & 15u)" in src  # the window this test narrows
    narrow = harness.parent / "narrow"
    (narrow / "near_tie.h").parent.mkdir(exist_ok=True)
    (narrow / "near_tie.h").write_text(src.replace("17u + ((u >> 19) & 15u)", "16u"))
    out = harness.parent / "near_tie_narrow"
    cmd = [CXX, *FLAGS, "-I", str(narrow), "-I", str(ROOT / "kernels" / "cpu" / "cuda_shim"),
           str(ROOT / "tests" / "near_tie" / "harness.cpp"), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    found = run(out, *RANGES[0])
    assert found["float16"]["gpu_only"] > 0 and found["bfloat16"]["gpu_only"] > 0


if __name__ == "__main__" and "--all" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        exe = Path(d) / "near_tie"
        subprocess.run([CXX, *FLAGS, "-march=native", "-I", str(ROOT / "kernels" / "cpu"), "-I",
                        str(ROOT / "kernels" / "cpu" / "cuda_shim"), str(ROOT / "tests" / "near_tie" / "harness.cpp"),
                        "-o", str(exe)], check=True)
        print(subprocess.run([str(exe), "0", str(1 << 32), "1"], capture_output=True, text=True).stdout)
