"""The CPU engine against torch's CPU kernels, measured in one process (docs/cpu-native.md).

    python bench/cpu_vs_torch.py [--names relu,gelu] [--log2n 22] [--rounds 9] [--backward]
                                 [--dtype float32|bfloat16|float16] [--threads 1,2] [--inductor]
                                 [--markdown bench/results/FILE.md]

Every element-wise activation in float32 or --dtype (N(0, 3) inputs, 2^22 elements by default), out=, at
each thread count (ACTIVATIONS_NUM_THREADS and torch.set_num_threads): our engine, torch's
ATen kernel with out= (the allocating torch call, or torch's composite, where ATen has no
out= kernel: marked "alloc"), and the naive NumPy formula (one thread).  softmax (2048, 2048)
too.  The implementations of a row are timed in shuffled order every round, each timed call
preceded by an untimed one (thread pools awake, as in back-to-back use); the median is
reported.  The torch calls are activations.tools.benchmarks.providers' peer table, the naive
formulas activations.tools.benchmarks.formulas.  --inductor adds torch.compile'd torch calls (Inductor's
generated C++ kernels, compiled per activation and thread count before timing).  Prints a table with the ratios (torch time / ours:
above 1 means we are faster), their geometric means, the time of a first call in a fresh
process, and the CPU model; --markdown also writes it to a file.  Needs torch.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import torch  # noqa: E402

import activations  # noqa: E402
from activations.backends.cpu import engine  # noqa: E402
from activations.tools.benchmarks import formulas as FM  # noqa: E402
from activations.tools.benchmarks.providers import Skip, _torch_backward, _torch_forward, inductor_compile  # noqa: E402
from activations import _dtypes  # noqa: E402
from activations.catalogue import REGISTRY  # noqa: E402


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown CPU"


def params(name: str) -> dict:
    return dict(threshold=0.5, value=0.0) if name == "threshold" else {}


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def with_threads(k: int, fn):
    def run():
        os.environ["ACTIVATIONS_NUM_THREADS"] = str(k)
        torch.set_num_threads(k)
        return fn()

    return run


def bench_group(impls: dict, rounds: int) -> dict[str, float]:
    for f in impls.values():  # warm up: page faults, pools
        f()
        f()
    samples: dict[str, list[float]] = {k: [] for k in impls}
    keys = list(impls)
    for _ in range(rounds):
        random.shuffle(keys)
        for k in keys:
            impls[k]()  # untimed call: wakes the pools as in back-to-back use
            samples[k].append(timed(impls[k]))
    return {k: float(np.median(v)) * 1e3 for k, v in samples.items()}


def torch_call(name: str, p: dict, xt, dyt, vt, ot, backward: bool):
    """(callable, note) for torch: out= kernel when there is one, else the allocating call."""
    if backward:
        alloc, out = _torch_backward(torch, name, p)
        return ((lambda: out(dyt, vt, ot)), "") if out is not None else ((lambda: alloc(dyt, vt)), "alloc")
    alloc, out = _torch_forward(torch, name, p)
    return ((lambda: out(xt, ot)), "") if out is not None else ((lambda: alloc(xt)), "alloc")


def inductor_call(name: str, p: dict, xt, dyt, vt, threads: int, backward: bool):
    """torch.compile (Inductor) of torch's own call: the generated, fused C++ kernel, a fairer peer
    for a fused activation than eager; compiled for this thread count."""
    alloc = (_torch_backward if backward else _torch_forward)(torch, name, p)[0]
    return inductor_compile(torch, alloc, (dyt, vt) if backward else (xt,), threads)


def first_call_ms() -> float:
    code = ("import time; t0 = time.perf_counter(); import numpy as np, activations; "
            "activations.apply('gelu', np.ones(1000, np.float32)); print((time.perf_counter() - t0) * 1e3)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                 timeout=120).stdout) for _ in range(3)]
    return min(runs)


def as_torch(a: np.ndarray):
    """torch's view of a (bfloat16: ml_dtypes' array through its bits; torch has no such NumPy type)."""
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.uint16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--names", default="", help="comma-separated activations (default: every element-wise one)")
    ap.add_argument("--log2n", type=int, default=22)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--backward", action="store_true", help="time grad() against torch's backward kernels")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                    help="element type (16-bit: computed in float, each result rounded once)")
    ap.add_argument("--no-softmax", action="store_true")
    ap.add_argument("--inductor", action="store_true",
                    help="also time torch.compile'd torch calls (Inductor's fused C++ kernels; compiles each one)")
    ap.add_argument("--markdown", default="", help="also write the report to this file")
    args = ap.parse_args()
    if engine.module() is None:
        print(f"the compiled engine is not in use: {engine.WHY_NOT}")
        return 1
    threads = [int(t) for t in args.threads.split(",")]
    n = 1 << args.log2n
    rng = np.random.default_rng(0)
    dtype = _dtypes.from_name(args.dtype)
    x32 = rng.normal(0, 3, n).astype(np.float32)
    x = x32.astype(dtype)
    xpos = (np.abs(x32) + np.float32(1e-3)).astype(dtype)
    dy = rng.normal(0, 1, n).astype(np.float32).astype(dtype)
    out = np.empty_like(x)
    ns = FM.numpy_namespace()
    names = [s for s in args.names.split(",") if s] or REGISTRY.names("elementwise")
    direction = "backward" if args.backward else "forward"
    lines = [
        f"CPU: {cpu_model()} ({engine.cores()} cores), engine {engine.DETAIL}; torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}); numpy {np.__version__}",
        f"{args.dtype}, 2^{args.log2n} elements, out=, {direction}, median of {args.rounds} interleaved rounds; "
        "ratio = torch ms / our ms (above 1: we are faster)",
        "",
        "| activation | " + " | ".join(f"ours {t}T ms | torch {t}T ms | ratio {t}T" for t in threads)
        + "".join(f" | inductor {t}T ms | vs inductor {t}T" for t in threads if args.inductor)
        + " | naive NumPy 1T ms | vs naive |",
        "|---|" + "---:|" * ((5 if args.inductor else 3) * len(threads) + 2),
    ]
    if args.inductor:
        lines[1] += "; inductor = torch.compile of the torch call (allocating), compiled per thread count"
    print("\n".join(lines), flush=True)
    ratios: dict[int, list[float]] = {t: [] for t in threads}
    inductor_ratios: dict[int, list[float]] = {t: [] for t in threads}
    naive_ratios = []
    for name in names:
        xa = xpos if name == "log1mexp" else x
        kw = params(name)
        p = dict(REGISTRY.get(name).bind(kw).values)
        rec = REGISTRY.get(name)
        impls, note = {}, ""
        xt, dyt, ot = as_torch(xa), as_torch(dy), as_torch(out)
        vt = as_torch(activations.apply(name, xa, **kw)) if rec.grad_from == "y" else xt
        for t in threads:
            if args.backward:
                impls[f"ours{t}"] = with_threads(t, lambda: activations.grad(name, xa, dy, out=out, **kw))
            else:
                impls[f"ours{t}"] = with_threads(t, lambda: activations.apply(name, xa, out=out, **kw))
            try:
                fn, note = torch_call(name, p, xt, dyt, vt, ot, args.backward)
                impls[f"torch{t}"] = with_threads(t, fn)
                if args.backward and name in FM.FROM_Y:
                    # torch differentiates from the saved output: a few multiplies, no exp, and
                    # inaccurate in the tails; grad() here takes x (docs/training.md)
                    note = ", ".join(filter(None, [note, "torch's kernel takes y"]))
            except Skip as why:
                note = str(why)
            if args.inductor and f"torch{t}" in impls:
                try:
                    impls[f"inductor{t}"] = with_threads(t, inductor_call(name, p, xt, dyt, vt, t, args.backward))
                except Exception as exc:  # an op Inductor cannot compile: reported, not fatal
                    note = ", ".join(filter(None, [note, f"inductor: {type(exc).__name__}"]))
        if args.backward:
            impls["naive"] = with_threads(1, lambda: FM.backward(name, ns, xa, dy, p))
        else:
            impls["naive"] = with_threads(1, lambda: FM.forward(name, ns, xa, p))
        r = bench_group(impls, args.rounds)
        cells = []
        for t in threads:
            ours, theirs = r[f"ours{t}"], r.get(f"torch{t}")
            ratio = theirs / ours if theirs else None
            if ratio:
                ratios[t].append(ratio)
            cells += [f"{ours:.2f}", "—" if theirs is None else f"{theirs:.2f}",
                      "—" if ratio is None else f"{ratio:.2f}x"]
        for t in threads if args.inductor else ():
            ind = r.get(f"inductor{t}")
            if ind:
                inductor_ratios[t].append(ind / r[f"ours{t}"])
            cells += ["—" if ind is None else f"{ind:.2f}", "—" if ind is None else f"{ind / r[f'ours{t}']:.2f}x"]
        naive_ratios.append(r["naive"] / r[f"ours{threads[0]}"])
        label = f"{name} ({note})" if note else name
        line = f"| {label} | " + " | ".join(cells) + f" | {r['naive']:.2f} | {naive_ratios[-1]:.1f}x |"
        lines.append(line)
        print(line, flush=True)

    def geo(v):
        return math.exp(sum(map(math.log, v)) / len(v)) if v else float("nan")

    summary = ["", "| summary | " + " | ".join(f"{t} thread(s)" for t in threads) + " |",
               "|---|" + "---:|" * len(threads),
               "| geometric mean vs torch | " + " | ".join(f"{geo(ratios[t]):.2f}x" for t in threads) + " |",
               "| slowest vs torch | " + " | ".join(f"{min(ratios[t]):.2f}x" if ratios[t] else "—" for t in threads) + " |",
               f"| geometric mean vs naive NumPy (1 thread) | {geo(naive_ratios):.1f}x |" + " |" * (len(threads) - 1)]
    if args.inductor:
        summary.insert(5, "| geometric mean vs torch.compile (Inductor) | "
                       + " | ".join(f"{geo(inductor_ratios[t]):.2f}x" for t in threads) + " |")
    if not args.no_softmax and not args.backward:
        xs = x[: 2048 * 2048].reshape(2048, 2048)
        os_ = out[: 2048 * 2048].reshape(2048, 2048)
        impls = {}
        for t in threads:
            impls[f"ours{t}"] = with_threads(t, lambda: activations.apply("softmax", xs, out=os_))
            impls[f"torch{t}"] = with_threads(t, lambda: torch.softmax(as_torch(xs), -1, out=as_torch(os_)))
        r = bench_group(impls, args.rounds)
        summary.append("| softmax (2048, 2048) vs torch | " + " | ".join(
            f"{r[f'torch{t}'] / r[f'ours{t}']:.2f}x ({r[f'ours{t}']:.2f} vs {r[f'torch{t}']:.2f} ms)" for t in threads) + " |")
    summary.append(f"\nfirst call in a fresh process (import + gelu of 1000 elements): {first_call_ms():.0f} ms")
    print("\n".join(summary), flush=True)
    lines += summary
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
