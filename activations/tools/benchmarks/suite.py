"""Support for the pytest-benchmark suites in the repository's ``bench/``.

The suites parametrize over (case, provider, threads) and call
:func:`measure` with pytest-benchmark's ``benchmark`` fixture, so they share
the setup factory and provider list of ``python -m activations bench``.
Environment variables pick the grid (the suites never run with ``tests/``):

* ``ACTIVATIONS_BENCH_SIZES``: elementwise/gated sizes, default ``16,20``
  (exponents of 2; ``2^24`` and element counts work too);
* ``ACTIVATIONS_BENCH_SHAPES``: softmax-family shapes, default ``1024x1024,64x16384``;
* ``ACTIVATIONS_BENCH_DTYPES``: default ``float32``;
* ``ACTIVATIONS_BENCH_THREADS``: CPU thread counts, default ``1``;
* ``ACTIVATIONS_BENCH_DEVICE``: ``cpu`` or ``gpu`` (default: gpu when CuPy sees one).
"""
from __future__ import annotations

import os
from typing import Any, Callable

from ...catalogue import REGISTRY
from ...registry import Kind
from .cases import BACKWARD, FORWARD, Case, _variants, overhead_cases, parse_shape, parse_size
from .providers import (
    CPU_BACKENDS, CPU_PEERS, GPU_BACKENDS, GPU_PEERS, THREADS_ENV, Context, Skipped, gpu_available, make_inputs,
    runners,
)


def _env_list(name: str, default: str) -> list[str]:
    return [s for s in os.environ.get(name, default).replace(",", " ").split() if s]


def device() -> str:
    chosen = os.environ.get("ACTIVATIONS_BENCH_DEVICE")
    if chosen:
        return chosen
    return "gpu" if gpu_available()[0] else "cpu"


def sizes() -> list[int]:
    return [parse_size(s) for s in _env_list("ACTIVATIONS_BENCH_SIZES", "16,20")]


def shapes() -> list[tuple[int, int]]:
    return [parse_shape(s) for s in _env_list("ACTIVATIONS_BENCH_SHAPES", "1024x1024,64x16384")]


def dtypes() -> list[str]:
    return _env_list("ACTIVATIONS_BENCH_DTYPES", "float32")


def threads() -> list[int]:
    return [int(t) for t in _env_list("ACTIVATIONS_BENCH_THREADS", "1")]


def providers() -> list[tuple[str, int | None]]:
    """(provider, threads) pairs of this device: our backends, the peers, the copy ceiling."""
    if device() == "gpu":
        return [(p, None) for p in GPU_BACKENDS + GPU_PEERS + ("copy_sm",)]
    out: list[tuple[str, int | None]] = []
    for p in CPU_BACKENDS + CPU_PEERS + ("copy",):
        if p in ("naive_numpy", "jax"):
            out.append((p, None))
        else:
            out += [(p, t) for t in threads()]
    return out


def cases(kind: str, directions=(FORWARD, BACKWARD)) -> list[Case]:
    k = Kind(kind)
    out = []
    for name, params in _variants(REGISTRY.names(k)):
        for direction in directions:
            for dtype in dtypes():
                if k is Kind.ROWWISE:
                    for shape in shapes():
                        out.append(Case(name, direction, dtype, shape, params))
                elif k is Kind.GATED:
                    for n in sizes():
                        cols = min(4096, n)
                        out.append(Case(name, direction, dtype, (max(1, n // cols), cols), params))
                else:
                    for n in sizes():
                        out.append(Case(name, direction, dtype, (n,), params))
    return out


def overhead() -> list[Case]:
    return overhead_cases()


def case_id(case: Case) -> str:
    call = "" if case.out else "-alloc"
    return f"{case.label}-{case.direction[:3]}{call}-{case.dtype}-{case.size_label}"


def provider_id(p: tuple[str, int | None]) -> str:
    return p[0] if p[1] is None else f"{p[0]}-{p[1]}t"


_inputs_cache: dict[tuple, Any] = {}


def measure(benchmark, case: Case, provider: tuple[str, int | None], skip: Callable[[str], Any]) -> None:
    """Time one provider on one case with pytest-benchmark; ``skip(reason)`` when it cannot run."""
    name, t = provider
    dev = device()
    if case.tag == "overhead" and name in ("copy", "copy_sm"):
        skip("no copy ceiling for the overhead cases")
    key = (case, dev)
    inputs = _inputs_cache.get(key)
    if inputs is None:
        _inputs_cache.clear()  # one case's arrays at a time
        inputs = _inputs_cache[key] = make_inputs(case, dev)
    backends = tuple(b for b in CPU_BACKENDS + GPU_BACKENDS if b == name)
    ctx = Context(device=dev, backends=backends, threads=(t or 1,),
                  peers=(name,) if not backends else (), ceiling=name in ("copy", "copy_sm"))
    got, skipped = runners(case, inputs, ctx)
    match = [r for r in got if r.provider == name and r.threads == t]
    if not match:
        why = [s.reason for s in skipped if isinstance(s, Skipped) and s.provider == name]
        skip(why[0] if why else f"{name} does not run this case")
    runner = match[0]
    saved = os.environ.get(THREADS_ENV)
    try:
        if runner.prepare is not None:
            runner.prepare()
        if dev == "gpu":
            import cupy as cp

            def target():
                runner.fn()
                cp.cuda.Device().synchronize()
        else:
            target = runner.fn
        benchmark.group = f"{case_id(case)}"
        benchmark.extra_info.update(
            provider=name, threads=t, role=runner.role, bytes=runner.bytes or case.bytes(), note=runner.note,
        )
        benchmark(target)
        median = getattr(getattr(benchmark, "stats", None), "stats", None)
        if median is not None and getattr(median, "median", 0):
            benchmark.extra_info["gbps"] = (runner.bytes or case.bytes()) / median.median / 1e9
    finally:
        if saved is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = saved
