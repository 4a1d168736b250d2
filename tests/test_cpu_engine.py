"""The compiled CPU engine (activations/backends/cpu/engine.py, kernels/cpu/engine.cpp).

The kind tests (test_elementwise, test_gated, test_rowwise) already run every activation
through the CPU backend with and without the engine.  This file checks what is specific to the
engine: that it takes every call, its tiling and threads, the float64 reductions and their
independence from the thread count and the vector width, the 16-bit conversions, aliasing,
the choice of instruction set, and its behaviour under fork, interrupts, thread-count abuse and
lack of memory.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import activations
import reference as R
from activations.backends import cpu
from activations.backends.cpu import engine as E
from activations.catalogue import REGISTRY
from conftest import use_cpu_path

ROOT = Path(__file__).resolve().parent.parent
ELEMENTWISE = REGISTRY.names("elementwise")

# Tests that run whether or not the engine is installed here.
WITHOUT_ENGINE = {"test_installed_where_a_compiler_exists", "test_missing_engine_means_fallback_with_a_reason"}


@pytest.fixture(autouse=True)
def _needs_engine(request, monkeypatch):
    if request.node.originalname in WITHOUT_ENGINE:
        return
    use_cpu_path("engine", monkeypatch)


# non-default parameters that take each activation off its default branches
PARAMS = {
    "relu": dict(negative_slope=0.1, max_value=6.0, threshold=0.5),
    "leaky_relu": dict(negative_slope=0.3),
    "rrelu": dict(training=True, seed=12345),
    "elu": dict(alpha=0.7),
    "celu": dict(alpha=-1.5),
    "gelu": dict(approximate="tanh"),
    "hard_sigmoid": dict(slope=0.2, offset=0.4),
    "softplus": dict(beta=2.0, threshold=20.0),
    "hard_tanh": dict(min_val=-2.0, max_val=0.5),
    "soft_shrink": dict(threshold=1.0),
    "hard_shrink": dict(threshold=1.0),
    "threshold": dict(threshold=0.5, value=-2.0),
    "squareplus": dict(b=0.0),
    "snake": dict(frequency=3.0),
    "prelu": dict(weight=-0.5),
}


def _needed(name: str) -> dict:
    return dict(threshold=0.5, value=-2.0) if name == "threshold" else {}


@pytest.fixture
def spy(monkeypatch):
    """Counts the calls the engine ran."""
    counts = {"engine": 0}
    fwd, bwd = E.forward, E.backward

    def forward(call, out):
        counts["engine"] += 1
        return fwd(call, out)

    def backward(call, dx):
        counts["engine"] += 1
        return bwd(call, dx)

    monkeypatch.setattr(E, "forward", forward)
    monkeypatch.setattr(E, "backward", backward)
    return counts


def _grads(name, x, dy, **kw):
    got = activations.grad(name, x, dy, backend="numpy", **kw)
    return got if isinstance(got, tuple) else (got,)


def _check(name, x, dy, dtype, what, **kw):
    y = activations.apply(name, x, backend="numpy", **kw)
    R.assert_close(y, R.forward(name, x, **kw), dtype, what=f"forward, {what}")
    got = _grads(name, x, dy, **kw)
    exp = R.backward(name, x, dy, **kw)
    exp_dx = exp[0] if name == "prelu" else exp
    R.assert_close(got[0], exp_dx, dtype, what=f"backward, {what}")
    k = 1
    if kw.get("bias") is not None:
        R.assert_close(got[k], R.dbias(exp_dx), dtype, what=f"dbias, {what}")
        k += 1
    if name == "prelu":
        R.assert_close(got[k], exp[1], dtype, what=f"dweight, {what}")


# ------------------------------------------------------------ elementwise
@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_edge_values(name, dtype, rng, spy):
    """Edge values (NaN, +-inf, -0.0, kinks and their neighbours, denormals, huge) then random
    inputs, odd total length so that every vector loop has a tail; defaults and other params."""
    for kw in ({**_needed(name)}, PARAMS.get(name)):
        if kw is None:
            continue
        x = np.concatenate([R.cast(R.edge_values(name, **kw), dtype), R.random_inputs(rng, 1001, name, dtype)])
        dy = R.random_cotangent(rng, x.shape, dtype)
        _check(name, x, dy, dtype, f"edge values {kw}", **kw)
    assert spy["engine"] > 0


@pytest.mark.parametrize("dtype", [R.F16, R.F32, R.F64], ids=["float16", "float32", "float64"])
@pytest.mark.parametrize("channels", [1, 3, 7, 2047, 2048, 2049, 5000])
def test_bias_and_weight_patterns(channels, dtype, rng):
    """Per-column data over short rows (walked as super-rows of whole rows) and long rows (split in
    column ranges), with an incomplete last super-row; dbias and dweight from float64 sums."""
    rows = max(2, 9000 // channels)
    x = R.random_inputs(rng, (rows, channels), "prelu", dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    bias = R.cast(rng.normal(0, 1, channels), dtype)
    weight = R.cast(rng.normal(0.2, 0.3, channels), dtype)
    _check("prelu", x, dy, dtype, f"{channels} channels", bias=bias, weight=weight)
    _check("prelu", x, dy, dtype, f"{channels} channels, weight[1]", weight=weight[:1])
    _check("prelu", x, dy, dtype, f"{channels} channels, float weight", bias=bias, weight=0.3)
    _check("gelu", x, dy, dtype, f"{channels} channels", bias=bias)
    _check("rrelu", x, dy, dtype, f"{channels} channels", bias=bias, training=True, seed=99)


CASES = [  # (name, shape, keywords): every kind, axis and extra input, large enough to be split
    ("silu", (703, 611), dict(bias=True)),
    ("prelu", (703, 611), dict(bias=True, weight="channels")),
    ("prelu", (703, 611), dict(weight=0.1)),
    ("rrelu", (703, 611), dict(bias=True, training=True, seed=5)),
    ("swiglu", (41, 2, 3002), dict(axis=1, bias=True)),
    ("geglu", (401, 1402), dict(bias=True)),
    ("softmax", (97, 3001), dict(bias=True)),
    ("log_softmax", (2001, 3, 70), dict(axis=0, bias=True, where=True)),
    ("sparsemax", (301, 1200), dict(where=True)),
]


def _case(case, rng):
    name, shape, kw = case
    x = R.random_inputs(rng, shape, name, R.F32)
    kw = dict(kw)
    if kw.get("bias"):
        kw["bias"] = R.cast(rng.normal(0, 1, shape[-1]), R.F32)
    if kw.get("weight") == "channels":
        kw["weight"] = R.cast(rng.uniform(0, 0.5, shape[-1]), R.F32)
    if kw.get("where"):
        kw["where"] = rng.random(shape) > 0.2
    out_shape = activations.apply(name, x, backend="numpy", **kw).shape
    return name, x, R.random_cotangent(rng, out_shape, R.F32), kw


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{'x'.join(map(str, c[1]))}")
def test_results_do_not_depend_on_the_thread_count(case, rng, monkeypatch):
    """Large calls are split in tiles that depend on the sizes only, and every reduction (dbias,
    dweight, row sums) folds the same partial sums in the same order: bit-identical results for
    any thread count."""
    name, x, dy, kw = _case(case, rng)
    results = []
    for threads in ("1", "2", "3", "8"):
        monkeypatch.setenv("ACTIVATIONS_NUM_THREADS", threads)
        results.append((activations.apply(name, x, backend="numpy", **kw), *_grads(name, x, dy, **kw)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    _check(name, x, dy, R.F32, f"{x.size} elements", **kw)


@pytest.mark.skipif(len(E.supported_isas()) < 2, reason="this CPU runs only the baseline engine")
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{'x'.join(map(str, c[1]))}")
def test_vector_widths_give_identical_results(case, rng, monkeypatch):
    """The AVX-512 and AVX2 builds compute the same numbers, bit for bit (fused multiply-adds
    only where vmath.h writes them, reductions with a fixed number of partial sums).  The
    baseline build (no FMA) may differ within the accuracy bounds (test_accuracy)."""
    wide = [isa for isa in E.supported_isas() if isa != "baseline"]
    if len(wide) < 2:
        pytest.skip(f"this CPU runs one vector build only ({wide[0]}): nothing to compare")
    name, x, dy, kw = _case(case, rng)
    results = []
    for isa in wide:
        monkeypatch.setenv("ACTIVATIONS_CPU_ISA", isa)
        assert E.module().ISA == isa
        results.append((activations.apply(name, x, backend="numpy", **kw), *_grads(name, x, dy, **kw)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [R.F32, R.F64], ids=["float32", "float64"])
def test_vector_widths_agree_on_every_activation(dtype, rng, monkeypatch):
    """Every elementwise and gated activation, forward and backward, on edge values and random
    inputs: the AVX-512 and AVX2 builds agree bit for bit (skipped on CPUs that lack one)."""
    wide = [isa for isa in E.supported_isas() if isa != "baseline"]
    if len(wide) < 2:
        pytest.skip(f"this CPU runs one vector build only ({', '.join(wide) or 'none'}): nothing to compare")
    for name in ELEMENTWISE + REGISTRY.names("gated"):
        kw = PARAMS.get(name, _needed(name))
        x = np.concatenate([R.cast(R.edge_values(name, **kw), dtype), R.random_inputs(rng, 4001, name, dtype)])
        if name in REGISTRY.names("gated"):
            x = x[: x.size // 2 * 2]
        dy = R.random_cotangent(rng, activations.apply(name, x, **kw).shape, dtype)
        got = []
        for isa in wide:
            monkeypatch.setenv("ACTIVATIONS_CPU_ISA", isa)
            got.append((activations.apply(name, x, **kw), activations.grad(name, x, dy, **kw)))
        for a, b in zip(*got):
            a, b = (v[0] if isinstance(v, tuple) else v for v in (a, b))
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8), err_msg=name)


@pytest.mark.parametrize("fn", ["exp", "expm1", "log", "log1p", "tanh", "erfc", "normcdf", "gauss", "sin", "sigmoid"])
def test_vector_widths_agree_on_the_math(fn, rng):
    """The math primitives of every vector build the CPU runs agree bit for bit, on every float32
    binade and random float64 inputs (and the shipped modules really are the builds they say)."""
    wide = [isa for isa in E.supported_isas() if isa != "baseline"]
    mods = {isa: E._import(isa) for isa in E.supported_isas()}
    for isa, mod in mods.items():
        assert mod.ISA == isa
    if len(wide) < 2:
        pytest.skip(f"this CPU runs one vector build only ({', '.join(wide) or 'none'}): nothing to compare")
    bits = rng.integers(0, 1 << 32, 1 << 18, dtype=np.uint64).astype(np.uint32)
    for x in (bits.view(np.float32), rng.normal(0, 30, 1 << 16)):
        got = []
        for isa in wide:
            y = np.empty_like(x)
            mods[isa].math(fn, x, y)
            got.append(y)
        np.testing.assert_array_equal(got[0].view(np.uint8), got[1].view(np.uint8))


def test_one_exp_sigmoid_matches_the_shared_template():
    """prelude.h's sigmoid (one exp) gives the numbers of common.cuh's template, bit for bit."""
    for isa in E.supported_isas():
        assert E._import(isa).sigmoid_mismatches() == 0, isa


def test_float_sigmoid_is_rounded_once(rng):
    """The sigmoid activation's float result (vmath's sigmoid, the engine's math("sigmoid")): within
    1.5 ulps of float64 everywhere (the template's form, three roundings, reaches 2.4): every 64th
    float of (-104, 104), the tails and the exp's breakpoints."""
    from scipy.special import expit

    bits = np.arange(0, 1 << 32, 64, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = np.concatenate([x[np.abs(x) < 104], np.float32([-5.5427551, -87.33, -88.72, 0.0, -0.0])])
    for isa in E.supported_isas():
        y = np.empty_like(x)
        E._import(isa).math("sigmoid", x, y)
        r = expit(x.astype(np.float64))
        ok = r >= 2.0 ** -126
        err = np.abs(y[ok] - r[ok]) / np.spacing(r[ok].astype(np.float32)).astype(np.float64)
        assert err.max() <= 1.5, (isa, float(err.max()), float(x[ok][np.argmax(err)]))


@pytest.mark.parametrize("b", [4.0, 1e-3, 3e30, 0.0])
def test_float_squareplus_accuracy(b, monkeypatch):
    """squareplus in float (vmath.h: sqrt(x^2 + b) rounded once, |x| + h as a pair, one corrected
    division for x < 0): within 2.5 ulps forward (over every 13th float with b = 4: 2.0) and 4.5
    backward (3.5) of the float64 formula, on every 4099th float32, both signs, at each level this
    CPU runs; b = 0 is max(x, 0) and its slope, exactly, down to the subnormals."""
    bits = np.arange(0, 1 << 32, 4099, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = np.concatenate([x[~np.isnan(x)], np.float32([0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 3.4e38, -3.4e38])])
    xd, bd = x.astype(np.float64), float(np.float32(b))
    h = np.sqrt(xd * xd + bd)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.where(xd >= 0, np.where(np.isinf(xd), xd, 0.5 * (xd + h)), bd / (2.0 * (h - xd)))
        dref = np.where(xd >= 0, np.where(np.isinf(xd), 1.0, np.where(h > 0, 0.5 * (1.0 + xd / h), 0.5)),
                        bd / (2.0 * h * (h - xd)))
    if b == 0.0:  # the exact values: max(x, 0) and its slope
        ref, dref = np.maximum(xd, 0.0), np.where(xd > 0, 1.0, np.where(xd == 0, 0.5, 0.0))
    dref = np.nan_to_num(dref, nan=0.0)  # -inf: 0
    for isa in E.supported_isas():
        monkeypatch.setenv("ACTIVATIONS_CPU_ISA", isa)
        for got, want, bound in ((activations.apply("squareplus", x, b=b), ref, 2.5),
                                 (activations.grad("squareplus", x, np.ones_like(x), b=b), dref, 4.5)):
            sp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
            with np.errstate(invalid="ignore"):
                err = np.where(got.astype(np.float64) == want, 0.0, np.abs(got - want) / sp)
            if b == 0.0:
                bound = 0.0
            k = int(np.argmax(err))
            assert err[k] <= bound, (isa, b, float(x[k]), float(got[k]), float(want[k]), float(err[k]))


@pytest.mark.parametrize("kind", ["elementwise", "gated"])
def test_functor_facts_agree_with_the_records(kind):
    # each fact lives in its owner: the functor (functors.cuh) says what its code does, the record
    # (catalogue.py) what the activation is; they must say the same thing where they overlap
    facts = E.module().functor_facts(E._KIND_CODES[E.Kind(kind)])
    assert sorted(f["name"] for f in facts) == sorted(REGISTRY.names(kind))
    for f in facts:
        rec = REGISTRY.get(f["name"])
        kernel_params = [p for p in rec.params if p.type not in ("weight", "int")]
        assert f["from_y"] == (rec.grad_from == "y"), f"{rec.name}: functor from_y vs record grad_from"
        assert f["weighted"] == any(p.type == "weight" for p in rec.params), f"{rec.name}: weighted"
        assert f["periodic"] == ("sin" in rec.formula), f"{rec.name}: periodic (calls sin/cos)"
        if f["choice"] >= 0:  # the parameter the code branches on is a two-valued one
            p = kernel_params[f["choice"]]
            assert p.type == "bool" or (p.type == "choice" and len(p.canonical_choices()) == 2), (rec.name, p)
        if f["nan_through"]:  # claimed: f(NaN) is NaN without the loop's own test
            x = np.full(16 if kind == "elementwise" else (2, 16), np.nan, np.float32)
            y = activations.apply(rec.name, x, **PARAMS.get(rec.name, {}))
            assert np.isnan(y).all(), f"{rec.name}: nan_through, but f(NaN) = {y}"


def test_streaming_stores_for_large_outputs(rng):
    """Outputs of 16 MiB and more are written with non-temporal stores (unaligned start here):
    the same values as the same data computed in small pieces with plain stores."""
    n = (1 << 22) + 13
    x = R.random_inputs(rng, n, "gelu", R.F32)
    dy = R.random_cotangent(rng, n, R.F32)
    buf = np.empty(n + 1, np.float32)
    out = buf[1:]  # not 64-byte aligned
    pieces = [slice(i, min(i + 100003, n)) for i in range(0, n, 100003)]
    for name in ("gelu", "relu"):
        activations.apply(name, x, out=out, backend="numpy")
        want = np.concatenate([activations.apply(name, x[p], backend="numpy") for p in pieces])
        np.testing.assert_array_equal(out, want)
        activations.grad(name, x, dy, out=out, backend="numpy")
        want = np.concatenate([activations.grad(name, x[p], dy[p], backend="numpy") for p in pieces])
        np.testing.assert_array_equal(out, want)
    rows = x[: (n // 1000) * 1000].reshape(-1, 1000)
    for name in ("softmax", "swiglu"):
        got = activations.apply(name, rows, backend="numpy")
        want = np.concatenate([activations.apply(name, rows[i : i + 97], backend="numpy") for i in range(0, len(rows), 97)])
        np.testing.assert_array_equal(got, want)


def test_float16_bfloat16_conversions_are_exact(rng):
    """Loads are exact and stores round once to nearest even, like NumPy / ml_dtypes casts."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    for dt in [d for d in R.DTYPES if d.itemsize == 2]:
        x = bits.view(dt)
        y = activations.apply("linear", x, backend="numpy")
        same = (y.view(np.uint16) == bits) | (np.isnan(x.astype(np.float32)) & np.isnan(y.astype(np.float32)))
        assert same.all(), f"{dt}: linear is not the identity on every bit pattern"
        xs = R.cast(rng.normal(0, 100, 4099), dt).reshape(-1, 1)
        b = R.cast([0.0037], dt)
        want = (xs.astype(np.float32) + b.astype(np.float32)).astype(dt)
        got = activations.apply("linear", xs, bias=b, backend="numpy")
        np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))


@pytest.mark.parametrize("dtype", [R.F32, R.F64, R.F16], ids=["float32", "float64", "float16"])
@pytest.mark.parametrize("name,shape,kw", [("silu", (3001,), {}), ("softmax", (31, 97), {}),
                                           ("log_softmax", (31, 5, 7), dict(axis=1)), ("swiglu", (31, 96), {}),
                                           ("sparsemax", (5, 200), {})])
def test_in_place_and_aliasing(name, shape, kw, dtype, rng):
    x = R.random_inputs(rng, shape, name, dtype)
    want = R.forward(name, x, **kw)
    dy = R.random_cotangent(rng, want.shape, dtype)
    want_dx = R.backward(name, x, dy, **kw)
    if want.shape == x.shape:
        xc = x.copy()
        assert activations.apply(name, xc, out=xc, backend="numpy", **kw) is xc
        R.assert_close(xc, want, dtype, what="out=x")
    xc = x.copy()
    activations.grad(name, xc, dy, out=xc, backend="numpy", **kw)
    R.assert_close(xc, want_dx, dtype, what="grad out=x")
    if dy.shape == x.shape:
        dyc = dy.copy()
        activations.grad(name, x, dyc, out=dyc, backend="numpy", **kw)
        R.assert_close(dyc, want_dx, dtype, what="grad out=dy")
    # an overlapping, shifted view is computed into a new array and then copied
    flat = x.reshape(-1)
    buf = np.concatenate([flat, flat[:1]])
    y = activations.apply(name, buf[:-1].reshape(shape), out=buf[1:].reshape(want.shape) if want.shape == x.shape
                          else None, backend="numpy", **kw)
    R.assert_close(y, want, dtype, what="shifted overlap")


def test_non_contiguous_input_and_output(rng):
    x = R.random_inputs(rng, (64, 48), "gelu", R.F32)
    bias = R.cast(rng.normal(0, 1, 64), R.F32)
    xt = x.T  # (48, 64), not C-contiguous
    out = np.zeros((64, 48), np.float32).T
    y = activations.apply("gelu", xt, bias=bias, out=out, backend="numpy")
    assert y is out
    R.assert_close(y, R.forward("gelu", np.ascontiguousarray(xt), bias=bias), R.F32, what="transposed")


# ------------------------------------------------------------ every case in the engine
@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize("name", REGISTRY.names("gated"))
def test_gated_any_axis(name, dtype, rng, spy):
    for shape, axis in [((3, 10), -1), ((5, 4100), 1), ((300, 2), 1), ((6, 3, 5), 0), ((4, 8, 3), 1), ((2, 6, 2, 5), 1)]:
        x = R.random_inputs(rng, shape, name, dtype)
        x.reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
        bias = R.cast(rng.normal(0, 1, shape[-1]), dtype)
        ax = axis % len(shape)
        out_shape = shape[:ax] + (shape[ax] // 2,) + shape[ax + 1:]
        dy = R.random_cotangent(rng, out_shape, dtype)
        for b in (None, bias):
            y = activations.apply(name, x, bias=b, axis=axis, backend="numpy")
            R.assert_close(y, R.forward(name, x, bias=b, axis=axis), dtype, what=f"forward {shape} axis {axis}")
            got = _grads(name, x, dy, bias=b, axis=axis)
            exp_dx = R.backward(name, x, dy, bias=b, axis=axis)
            R.assert_close(got[0], exp_dx, dtype, what=f"backward {shape} axis {axis}")
            if b is not None:
                R.assert_close(got[1], R.dbias(exp_dx), dtype, what=f"dbias {shape} axis {axis}")
    assert spy["engine"] > 0


@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize("name", REGISTRY.names("rowwise"))
def test_rowwise_any_axis_masks_and_bias(name, dtype, rng, spy):
    # (6, 1) axis 0 and (5, 7, 1) axis 1: rows over another axis than the bias's, the axes after
    # them of length 1
    for shape, axis in [((4, 1), -1), ((7, 33), -1), ((3, 5000), 1), ((2, 3, 129), 1), ((40, 3), 0), ((5, 6, 7), 0),
                        ((6, 1), 0), ((5, 7, 1), 1)]:
        x = R.random_inputs(rng, shape, name, dtype)
        dy = R.random_cotangent(rng, shape, dtype)
        bias = R.cast(rng.normal(0, 1, shape[-1]), dtype)
        where = rng.random(shape) > 0.3
        where.reshape(-1)[:1] = False
        for kw in (dict(), dict(bias=bias), dict(where=where), dict(where=where[:1]), dict(bias=bias, where=where)):
            what = f"{shape} axis {axis} {sorted(kw)}"
            y = activations.apply(name, x, axis=axis, backend="numpy", **kw)
            R.assert_close(y, R.forward(name, x, axis=axis, **kw), dtype, what=f"forward {what}")
            got = _grads(name, x, dy, axis=axis, **kw)
            exp_dx = R.backward(name, x, dy, axis=axis, **kw)
            R.assert_close(got[0], exp_dx, dtype, what=f"backward {what}")
            if "bias" in kw:
                R.assert_close(got[1], R.dbias(exp_dx), dtype, what=f"dbias {what}")
    special = R.cast([[1.0, np.nan, 2.0, 0.5], [0.0, -np.inf, 1.0, -np.inf], [np.inf, 0.0, 1.0, 2.0],
                      [-np.inf] * 4, [60000.0, -60000.0, 0.0, 1.0]], dtype)
    for axis in (-1, 0):
        R.assert_close(activations.apply(name, special, axis=axis, backend="numpy"), R.forward(name, special, axis=axis),
                       dtype, what=f"special rows axis {axis}")
    assert spy["engine"] > 0


@pytest.mark.parametrize("name", ["gelu", "softmax", "swiglu"])
def test_zero_dimensional_and_empty(name, spy):
    if name == "gelu":
        for dt in R.DTYPES:
            x = R.cast(0.7, dt).reshape(())
            y = activations.apply(name, x, backend="numpy")
            assert y.shape == () and y.dtype == dt
            R.assert_close(y, R.forward(name, x), dt, what="0-d")
            R.assert_close(activations.grad(name, x, np.ones_like(x)), R.backward(name, x, np.ones_like(x)), dt,
                           what="0-d backward")
        assert spy["engine"] > 0
    for shape in [(0,), (0, 4), (3, 0, 4), (4, 0)]:
        if name == "swiglu" and shape[-1] % 2:
            continue
        x = np.zeros(shape, np.float32)
        y = activations.apply(name, x, backend="numpy")
        assert y.size == 0
        g = activations.grad(name, x, np.zeros(y.shape, np.float32), bias=np.zeros(shape[-1], np.float32))
        assert g[0].shape == x.shape and g[1].shape == (shape[-1],) and not g[1].any()


def test_log_softmax_keeps_the_largest_entries_exact():
    """(x - m) - log(s), not x - (m + log s): the entries near the max keep their relative accuracy."""
    for dtype in (np.float32, np.float64):
        x = np.array([1000.0, 990.0], dtype)
        y = activations.apply("log_softmax", x, backend="numpy")
        exact = [-np.log1p(np.exp(-10.0)), -10.0 - np.log1p(np.exp(-10.0))]
        np.testing.assert_allclose(y, exact, rtol=4 * np.finfo(dtype).eps)
    y = activations.apply("log_softmax", np.array([1e12, 1e12 - 10]), backend="numpy")
    assert y[0] == -np.log1p(np.exp(-10.0)) and y[0] != 0


@pytest.mark.slow
def test_long_rows_are_summed_in_float64(rng):
    """A row of 10^7 float32 values: the row sum in float64 keeps softmax within a few ulps
    (a float32 sum loses about 1e-3 relative here)."""
    x = rng.normal(0, 1, 10**7).astype(np.float32)
    y = activations.apply("softmax", x, backend="numpy")
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max())
    exact = e / e.sum()
    rel = np.abs(y - exact) / exact
    assert rel.max() < 4 * np.finfo(np.float32).eps, rel.max()
    ls = activations.apply("log_softmax", x, backend="numpy")
    exact_ls = (x64 - x64.max()) - np.log(e.sum())
    assert np.max(np.abs(ls - exact_ls) / np.maximum(np.abs(exact_ls), 1)) < 4 * np.finfo(np.float32).eps


# ------------------------------------------------------------ agreement with the fallback
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_agrees_with_the_fallback(name, rng, monkeypatch):
    """The engine and the NumPy fallback answer the same input the same way: same NaNs and
    infinities, finite values within the oracle's allowance of the oracle."""
    kw = PARAMS.get(name, _needed(name))
    x = R.random_inputs(rng, (37, 29), name, R.F32)
    x.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, -0.0]
    dy = R.random_cotangent(rng, x.shape, R.F32)
    bias = R.cast(rng.normal(0, 0.5, 29), R.F32) if name != "log1mexp" else None
    got = {}
    for path in ("engine", "fallback"):
        use_cpu_path(path, monkeypatch)
        got[path] = (activations.apply(name, x, bias=bias, backend="numpy", **kw), *_grads(name, x, dy, bias=bias, **kw))
    for a, b in zip(got["engine"], got["fallback"]):
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        fin = np.isfinite(a)
        assert np.array_equal(fin, np.isfinite(b)), name
        assert np.array_equal(a[~fin & ~np.isnan(a)], b[~fin & ~np.isnan(b)]), name


def test_concurrent_callers(rng):
    """Python threads calling at once (the engine releases the GIL): one runs on the pool, the
    others run their own tiles; every result is right."""
    x = R.random_inputs(rng, 1 << 18, "gelu", R.F32)
    want = activations.apply("gelu", x, backend="numpy")
    errors = []

    def work():
        for _ in range(5):
            if not np.array_equal(activations.apply("gelu", x, backend="numpy"), want):
                errors.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ------------------------------------------------------------ instruction sets and threads
def test_instruction_set_choice(monkeypatch):
    supported = E.supported_isas()
    assert supported[-1] == "baseline" and set(supported) <= set(E.ISAS)
    monkeypatch.delenv("ACTIVATIONS_CPU_ISA", raising=False)
    assert E.module().ISA == supported[0]
    for isa in E.ISAS:  # a forced level: that one, or the best this CPU runs below it
        monkeypatch.setenv("ACTIVATIONS_CPU_ISA", isa)
        want = next(i for i in supported if E.ISAS.index(i) >= E.ISAS.index(isa))
        assert E.module().ISA == want
        assert want in E.DETAIL
        y = activations.apply("gelu", np.array([-1.0, 0.5], np.float32))
        np.testing.assert_allclose(y, [-0.15865526, 0.34573123], rtol=1e-6)
    monkeypatch.setenv("ACTIVATIONS_CPU_ISA", "avx3")
    with pytest.raises(ValueError, match="ACTIVATIONS_CPU_ISA"):
        activations.apply("gelu", np.ones(3, np.float32))


@pytest.mark.parametrize("value,expected", [("1", 1), ("3", 3), ("0", 1), ("-7", 1), ("2147483648", "max"),
                                            ("99999999999999999999", "max"), ("abc", "cores"), ("", "cores")])
def test_thread_count_is_clamped(value, expected, monkeypatch):
    monkeypatch.setenv("ACTIVATIONS_NUM_THREADS", value)
    want = {"max": 4 * E.cores(), "cores": E.cores()}.get(expected, expected)
    assert E.threads() == want
    x = np.linspace(-3, 3, 1 << 18, dtype=np.float32)
    before = threading.active_count()
    y = activations.apply("silu", x)
    np.testing.assert_allclose(y, x / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)
    assert threading.active_count() == before  # the pool's threads are not Python threads


def test_nothing_outside_the_package_is_loaded_or_written(tmp_path):
    """A fresh process with an empty HOME and no compiler on PATH: the engine is the package's own
    extension module, and nothing is written anywhere (no cache, no build)."""
    code = """
        import json, sys, numpy as np, activations
        from activations.backends.cpu import engine
        x = np.linspace(-3, 3, 1 << 16, dtype=np.float32)
        for name in activations.names():
            kw = {"threshold": 0.5, "value": 0.0} if name == "threshold" else {}
            activations.grad(name, x, np.ones_like(activations.apply(name, x, **kw)), **kw)
        mods = [m.__file__ for n, m in sys.modules.items() if n.startswith("activations.backends.cpu._engine")]
        print(json.dumps({"engine": engine.module() is not None, "why": engine.WHY_NOT, "modules": mods}))
    """
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "PATH": str(tmp_path / "bin"),
           "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("CXX", None)
    env.pop("ACTIVATIONS_NATIVE", None)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["engine"], got["why"]
    package = Path(E.__file__).resolve().parent
    assert got["modules"] and all(Path(m).resolve().parent == package for m in got["modules"]), got["modules"]
    assert not any(home.rglob("*")), sorted(home.rglob("*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def _python(code: str, timeout: float = 300, env: dict | None = None) -> dict:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]), **(env or {})}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("path", ["engine", "fallback"])
def test_fork_while_the_pool_is_busy(path):
    """A child forked while another thread is inside a parallel call (the pool busy, its locks
    held) computes with a pool of its own; the parent is unaffected."""
    got = _python("""
        import json, os, threading, numpy as np, activations
        x = np.linspace(-4, 4, 1 << 22, dtype=np.float32)
        want = activations.apply("gelu", x)
        rows, keep = x.reshape(64, -1), x.reshape(64, -1) > -1
        want_rows = activations.apply("softmax", rows, where=keep)
        stop = threading.Event()
        def busy():
            while not stop.is_set():
                activations.apply("gelu", x)
        t = threading.Thread(target=busy)
        t.start()
        codes = []
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                import signal
                signal.alarm(60)  # a hang kills the child
                ok = np.array_equal(activations.apply("gelu", x), want)
                ok &= np.array_equal(activations.apply("softmax", rows, where=keep), want_rows)
                os._exit(0 if ok else 3)
            codes.append(os.waitpid(pid, 0)[1])
        stop.set()
        t.join()
        print(json.dumps({"codes": codes, "parent": bool(np.array_equal(activations.apply("gelu", x), want))}))
    """, env={"ACTIVATIONS_NATIVE": "1" if path == "engine" else "0", "ACTIVATIONS_NUM_THREADS": "2"})
    assert got["codes"] == [0] * 5, got
    assert got["parent"]


@pytest.mark.parametrize("path", ["engine", "fallback"])
def test_keyboard_interrupt_completes_the_call_or_leaves_out_alone(path):
    """SIGINT during a long call with out=: out is either the whole result (the interrupt arrives
    after the call) or untouched, and the next call is right."""
    got = _python("""
        import json, signal, threading, time, numpy as np, activations
        x = np.linspace(-4, 4, 1 << 23, dtype=np.float32)
        want = activations.apply("gelu", x)
        outcomes = []
        for delay in (0.0005, 0.002, 0.005, 0.01, 0.02):
            out = np.full_like(x, 7.0)
            timer = threading.Timer(delay, signal.raise_signal, (signal.SIGINT,))
            state = "no interrupt"
            try:  # the signal may land anywhere in here: before, during or after the call
                timer.start()
                activations.apply("gelu", x, out=out)
                time.sleep(0.05)
            except KeyboardInterrupt:
                state = "interrupted"
            timer.join()
            whole = bool(np.array_equal(out, want))
            untouched = bool(np.all(out == 7.0))
            outcomes.append([state, whole, untouched])
        again = bool(np.array_equal(activations.apply("gelu", x), want))
        print(json.dumps({"outcomes": outcomes, "again": again}))
    """, env={"ACTIVATIONS_NATIVE": "1" if path == "engine" else "0"})
    for state, whole, untouched in got["outcomes"]:
        assert whole or untouched, got
    assert got["again"]


@pytest.mark.slow
def test_out_of_memory_is_detected_before_any_write():
    """The engine allocates its buffers before it writes: with the address space limited so that
    sparsemax's row buffers of a 2^25-element row cannot be had, the call raises the documented
    ValueError naming x (docs/semantics.md: never a MemoryError) and out (also out=x) keeps its
    bytes."""
    got = _python("""
        import json, resource, numpy as np, activations
        n = 1 << 25
        x = np.linspace(-1, 1, n, dtype=np.float32)
        out = np.full(n, 7.0, np.float32)
        activations.apply("sparsemax", x[:1000])  # engine loaded, pool made
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (96 << 20), resource.RLIM_INFINITY))
        result = []
        for target in (out, x):
            try:
                activations.apply("sparsemax", x, out=target)
                result.append("no error")
            except ValueError as exc:
                result.append("ValueError" if "x has shape" in str(exc) and "memory" in str(exc) else repr(exc))
            resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            same = bool(np.all(target == 7.0)) if target is out else bool(np.array_equal(x, np.linspace(-1, 1, n, dtype=np.float32)))
            result.append(same)
            resource.setrlimit(resource.RLIMIT_AS, (vm + (96 << 20), resource.RLIM_INFINITY))
        print(json.dumps({"result": result}))
    """, env={"ACTIVATIONS_NATIVE": "1"})
    assert got["result"] == ["ValueError", True, "ValueError", True], got


# ------------------------------------------------------------ install
def test_installed_where_a_compiler_exists():
    """On x86-64 Linux with a C++ compiler the package's build makes the engine: a failure here
    usually means that kernels/functors.cuh or common.cuh started using something prelude.h or
    vmath.h does not provide (rebuild: pip install -e . or python setup.py build_ext --inplace)."""
    import platform
    import shutil

    if platform.machine() not in ("x86_64", "AMD64") or not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        pytest.skip("no C++ compiler or not x86-64: the NumPy fallback runs everything")
    assert E.module() is not None, E.WHY_NOT
    assert set(E.supported_isas()) <= {isa for isa in E.ISAS if E._available(isa)}


def test_each_level_is_its_own_module():
    """Every instruction-set level's file holds that level's module (their builds never share an
    object file: one module in another's name does not import, or runs the wrong code)."""
    from pathlib import Path

    here = Path(E.__file__).parent
    found = {isa: list(here.glob(f"_engine_{isa}.*")) for isa in E.ISAS}
    if not any(found.values()):
        pytest.skip("the engine is not built")
    for isa, files in found.items():
        assert len(files) == 1, (isa, files)
        data = files[0].read_bytes()
        assert f"PyInit__engine_{isa}".encode() in data, isa
        others = [o for o in E.ISAS if o != isa and f"PyInit__engine_{o}".encode() in data]
        assert not others, (isa, others)


def test_missing_engine_means_fallback_with_a_reason():
    """Without the engine's modules (an install without a compiler) calls run in the fallback and
    `info` says why."""
    got = _python("""
        import json, sys, numpy as np
        class Block:  # the engine's modules cannot be imported, as in an install without them
            def find_spec(self, name, path=None, target=None):
                if name.startswith("activations.backends.cpu._engine"):
                    raise ImportError(f"No module named {name!r}")
        sys.meta_path.insert(0, Block())
        import activations
        from activations.backends.cpu import engine
        from activations import dispatch
        y = activations.apply("gelu", np.array([-1.0, 0.5]))
        print(json.dumps({"y": y.tolist(), "module": engine.module() is not None, "info": dispatch.status("numpy")[1]}))
    """)
    assert not got["module"]
    np.testing.assert_allclose(got["y"], [-0.15865525393145707, 0.34573123063700656], rtol=1e-12)
    assert "fallback" in got["info"] and "compiler" in got["info"], got["info"]
