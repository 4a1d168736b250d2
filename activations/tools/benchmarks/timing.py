"""Interleaved timing: every provider of a case, in shuffled order, round after round.

A slow phase of the host (another tenant, a frequency dip) then slows all
providers of a case alike, so the ratios within a case are more trustworthy
than the absolute times.  Protocol per case:

1. warm-up: ``warmup`` untimed calls per provider (JIT compiles, page faults,
   thread pools, kernel caches);
2. calibration: one timed call each; providers faster than ``min_sample_s``
   are timed as a loop of ``inner`` calls, reported per call;
3. rounds: between ``min_rounds`` and ``max_rounds``, as many as fit
   ``budget_s``; each round times every provider once, in a new random order;
   ``prepare`` (thread count) runs untimed before each sample.  GC is off.

Reported: median and the 20th/80th percentiles of the samples.  On a GPU a
sample is bracketed by CUDA events (GPU time) and by ``perf_counter`` around
the launches without synchronizing (CPU time: what the Python side costs).
With the L2 flush on, every call is timed on its own after a 256 MiB write
that evicts its inputs from L2 (a sample of several calls would let the later
ones find the inputs cached); such a sample times at most FLUSHED_CALLS calls.
"""
from __future__ import annotations

import gc
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np


@dataclass
class Stats:
    p50: float  # seconds per call
    p20: float
    p80: float
    samples: int
    inner: int
    cpu_p50: float | None = None  # GPU runs: host seconds per call (launch cost)


def quantiles(values: Sequence[float]) -> tuple[float, float, float]:
    a = np.asarray(values, dtype=np.float64)
    p20, p50, p80 = np.percentile(a, [20, 50, 80])
    return float(p20), float(p50), float(p80)


class CpuTimer:
    name = "perf_counter"

    def sample(self, fn: Callable[[], Any], inner: int) -> tuple[float, None]:
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - t0) / inner, None

    def sync(self) -> None:
        pass


class GpuTimer:
    """CUDA events for GPU time, perf_counter for the host side, L2 flushed first."""

    name = "cuda_event"
    FLUSH_BYTES = 256 << 20

    def __init__(self, flush: bool = True):
        import cupy as cp

        self.cp = cp
        self.start = cp.cuda.Event()
        self.end = cp.cuda.Event()
        self.scratch = cp.empty(self.FLUSH_BYTES, dtype=cp.uint8) if flush else None
        try:  # torch runs on its own current stream: wait for it too
            import torch

            self._torch_sync = torch.cuda.synchronize if torch.cuda.is_available() else None
        except Exception:
            self._torch_sync = None

    def sync(self) -> None:
        self.cp.cuda.Device().synchronize()
        if self._torch_sync is not None:
            self._torch_sync()

    #: calls per sample when every call gets its own flush (each flush is a 256 MiB write)
    FLUSHED_CALLS = 8

    def sample(self, fn: Callable[[], Any], inner: int) -> tuple[float, float]:
        if self.scratch is not None:
            return self._flushed(fn, min(inner, self.FLUSHED_CALLS))
        self.sync()
        t0 = time.perf_counter()
        self.start.record()
        for _ in range(inner):
            fn()
        self.end.record()
        t1 = time.perf_counter()
        self.end.synchronize()
        if self._torch_sync is not None:
            self._torch_sync()
        gpu_ms = self.cp.cuda.get_elapsed_time(self.start, self.end)
        return gpu_ms / 1e3 / inner, (t1 - t0) / inner

    def _flushed(self, fn: Callable[[], Any], calls: int) -> tuple[float, float]:
        gpu_ms = host_s = 0.0
        for _ in range(calls):
            self.scratch.fill(0)  # evict this call's inputs from L2
            self.sync()
            t0 = time.perf_counter()
            self.start.record()
            fn()
            self.end.record()
            host_s += time.perf_counter() - t0
            self.end.synchronize()
            if self._torch_sync is not None:
                self._torch_sync()
            gpu_ms += self.cp.cuda.get_elapsed_time(self.start, self.end)
        return gpu_ms / 1e3 / calls, host_s / calls


@dataclass
class Outcome:
    stats: Stats | None = None
    error: str = ""
    first: Any = None  # output of the first warm-up call (for the agreement check)


def time_group(
    items: Sequence[tuple[Callable[[], Any], Callable[[], None] | None]],
    timer,
    *,
    warmup: int = 1,
    min_rounds: int = 3,
    max_rounds: int = 15,
    budget_s: float = 1.5,
    min_sample_s: float = 0.002,
    max_inner: int = 100_000,
    seed: int = 0,
    keep_first: Callable[[Any], Any] | None = None,
) -> list[Outcome]:
    """Time ``items`` = [(fn, prepare), ...] interleaved; one Outcome per item."""
    outcomes = [Outcome() for _ in items]
    alive = list(range(len(items)))

    def guarded(i: int, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as exc:  # one broken provider must not stop the others
            outcomes[i].error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            if i in alive:
                alive.remove(i)
            return None

    def prepared(i: int) -> None:
        prep = items[i][1]
        if prep is not None:
            prep()

    # 1. warm-up
    for i in list(alive):
        fn = items[i][0]
        for k in range(max(1, warmup)):
            ok = guarded(i, lambda: (prepared(i), fn())[1])
            if i not in alive:
                break
            if k == 0 and keep_first is not None:
                outcomes[i].first = guarded(i, lambda: keep_first(ok))
            del ok
    timer.sync()

    # 2. calibration
    inner = {}
    per_call = {}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for i in list(alive):
            fn = items[i][0]
            got = guarded(i, lambda: (prepared(i), timer.sample(fn, 1))[1])
            if got is None:
                continue
            t = max(got[0], got[1] or 0.0, 1e-9)
            per_call[i] = t
            inner[i] = 1 if t >= min_sample_s else min(max_inner, math.ceil(min_sample_s / t))
        round_cost = sum(per_call[i] * inner[i] for i in alive) or 1e-9
        rounds = int(min(max_rounds, max(min_rounds, budget_s // round_cost)))

        # 3. interleaved rounds
        samples: dict[int, list[tuple[float, float | None]]] = {i: [] for i in alive}
        order_rng = random.Random(seed)
        for _ in range(rounds):
            order = list(alive)
            order_rng.shuffle(order)
            for i in order:
                if i not in alive:
                    continue
                fn = items[i][0]
                got = guarded(i, lambda: (prepared(i), timer.sample(fn, inner[i]))[1])
                if got is not None:
                    samples[i].append(got)
    finally:
        if gc_was:
            gc.enable()

    for i in alive:
        wall = [s[0] for s in samples[i]]
        if not wall:
            outcomes[i].error = outcomes[i].error or "no samples"
            continue
        p20, p50, p80 = quantiles(wall)
        cpu = [s[1] for s in samples[i] if s[1] is not None]
        outcomes[i].stats = Stats(p50, p20, p80, len(wall), inner[i], quantiles(cpu)[1] if cpu else None)
    return outcomes
