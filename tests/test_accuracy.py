"""Every activation stays within its documented accuracy bound (docs/accuracy.md, accuracy.BOUNDS).

The measurement is ``activations.tools.accuracy`` on its "smoke" sweep, a subset of the "full" sweep
behind the documented table: on the machine that measured the table it can only find smaller
errors, and the bounds leave room for other CPUs (other libm / SIMD code paths).  Both paths of
the NumPy backend are held to the bounds: the compiled CPU loops (where they build) and the
ufunc chains.  The mpmath reference itself is checked against the float64 oracle of
tests/reference.py, and the metrics on values whose errors are known.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import reference
from activations import _dtypes
from activations.tools import accuracy
from activations.catalogue import REGISTRY
from conftest import CPU_PATHS, use_cpu_path
from activations.registry import Kind

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=CPU_PATHS + ("engine-baseline",))
def numpy_path(request, monkeypatch):
    """The CPU backend's compiled engine (the best build this CPU runs, and the baseline x86-64
    build without FMA), or its NumPy fallback."""
    use_cpu_path(request.param, monkeypatch)
    return request.param


@pytest.mark.parametrize("variant", accuracy.VARIANTS, ids=lambda v: v.label)
def test_within_documented_bounds(variant, numpy_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the far tails is part of the sweep
        results = accuracy.measure_all([variant], density="smoke")
    for r in results:
        r.backend = f"numpy/{numpy_path}"
    bad = accuracy.violations(results)
    assert not bad, "\n".join(bad)


def test_every_variant_dtype_and_direction_has_a_bound():
    labels = {v.label for v in accuracy.VARIANTS}
    assert set(accuracy.BOUNDS) == labels
    for label in labels:
        assert set(accuracy.BOUNDS[label]) == set(accuracy.DTYPE_NAMES), label
        for dtype, by_dir in accuracy.BOUNDS[label].items():
            assert set(by_dir) == {"forward", "backward"}, (label, dtype)
            for ulp, cond, rel in by_dir.values():
                assert 0 <= cond <= ulp or math.isinf(ulp), (label, dtype, by_dir)
                assert rel >= 0


def test_documented_table_lists_every_variant():
    text = (ROOT / "docs" / "accuracy.md").read_text()
    for v in accuracy.VARIANTS:
        assert f"`{v.label}`" in text, f"docs/accuracy.md has no row for {v.label}"


@pytest.mark.parametrize("dtype", accuracy.DTYPE_NAMES)
def test_sweeps_are_nested_exact_and_reach_the_tails(dtype):
    dt = _dtypes.from_name(dtype)
    smoke, quick, full = (accuracy.sweep(dtype, "gelu", d) for d in ("smoke", "quick", "full"))
    assert set(smoke) <= set(quick) <= set(full)
    for xs in (smoke, full):
        assert np.array_equal(xs.astype(dt).astype(np.float64), xs), "points not representable in the dtype"
        assert np.all(np.isfinite(xs)) and np.all(np.diff(xs) > 0)
    fi = accuracy._finfo(dt)
    for v in (float(fi.max), -float(fi.max), float(fi.tiny), float(fi.smallest_subnormal)):
        assert v in set(full), v
    assert full.size > 5 * smoke.size


def test_metrics_on_known_errors():
    f32 = np.dtype(np.float32)
    exact = np.array([1.0 + 2.0**-30, 3.0, 1e-40, 5.0, np.nan, np.inf, 3.5e38])
    lo = np.zeros_like(exact)
    got = np.array([1.0, 3.0 + 2.0**-22, 0.0, np.nan, np.nan, np.inf, np.inf])
    e = accuracy._errors(got, exact, lo, f32)
    np.testing.assert_allclose(e.ulp[:2], [2.0**-7, 1.0])  # 2^-30 is 1/128 of an ulp at 1
    assert e.ulp[2] < 1  # a subnormal result flushed to zero is within the smallest normal
    assert math.isinf(e.ulp[3])  # NaN for a number
    assert e.ulp[4] == 0 and e.ulp[5] == 0  # NaN for NaN, inf for inf
    assert e.ulp[6] == 0  # past float32's overflow threshold: inf is the rounded value
    assert math.isinf(accuracy._errors(np.array([np.inf]), np.array([3.0e38]), np.zeros(1), f32).ulp[0])
    # the conditioned metric allows for the input's own rounding
    e = accuracy._errors(np.array([0.0]), np.array([1e-9]), np.zeros(1), f32, spread=lambda i: np.array([1e-8]))
    assert e.ulp[0] > 1e6 and e.cond[0] <= 1 and e.rel[0] == 1


def _finite_edges(name: str, params: dict) -> np.ndarray:
    xs = reference.edge_values(name, **params)
    return xs[np.isfinite(xs)]


@pytest.mark.parametrize("variant", [v for v in accuracy.VARIANTS if REGISTRY.get(v.name).kind is Kind.ELEMENTWISE], ids=lambda v: v.label)
def test_mpmath_reference_agrees_with_the_float64_oracle(variant):
    """Two independent references: activations.tools.accuracy (mpmath) and tests/reference.py (float64)."""
    params = variant.kwargs
    rec = REGISTRY.get(variant.name)
    ref = accuracy._Reference(rec.name, dict(rec.bind(params).values), np.dtype(np.float64))
    xs = _finite_edges(rec.name, params)
    points = xs.tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference.assert_close(ref.values(points, 0)[0], reference.forward(rec.name, xs, **params), "float64",
                               what="mpmath forward vs float64 oracle")
        expected = reference.backward(rec.name, xs, np.ones_like(xs), **params)
        expected = expected[0] if isinstance(expected, tuple) else expected
        reference.assert_close(ref.values(points, 1)[0], expected, "float64", what="mpmath derivative vs float64 oracle")


def test_command_line_check():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "activations", "accuracy", "relu", "softplus", "--dtype", "float32", "--density", "smoke", "--check"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4 and all(" ulp " in line and " cond " in line for line in lines), done.stdout
