"""Benchmark of the compiled CPU loops (docs/cpu-native.md, "Performance").

    python bench/native_vs_torch.py [--names relu,gelu] [--softmax] [--backward] [--json out.json]

The NumPy backend with out= (1 and 2 threads, ACTIVATIONS_NUM_THREADS) against torch's ATen
kernels with out= (torch.set_num_threads 1 and 2; a torch composite where ATen has no kernel)
and the naive NumPy formula of activations.benchmarks.formulas, float32 N(0, 3) inputs of
2^24 elements.  Every implementation of a group is timed once per round, rounds in shuffled
order, each timed call preceded by an untimed one (pools awake, as in back-to-back use);
the median is reported in ms.  Needs torch (a peer for timing only).
"""
import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402
import activations  # noqa: E402
from activations.benchmarks import formulas as FM  # noqa: E402
from activations.backends import _native_cpu as N  # noqa: E402
from activations.catalogue import REGISTRY  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--names", default="")
ap.add_argument("--rounds", type=int, default=9)
ap.add_argument("--log2n", type=int, default=24)
ap.add_argument("--json", default="")
ap.add_argument("--no-naive", action="store_true")
ap.add_argument("--softmax", action="store_true")
ap.add_argument("--backward", action="store_true")
args = ap.parse_args()
assert N.usable(), N.WHY_NOT
n = 1 << args.log2n
rng = np.random.default_rng(0)
x = rng.normal(0, 3, n).astype(np.float32)
xpos = np.abs(x) + np.float32(1e-3)
y = np.empty_like(x)
dy = rng.normal(0, 1, n).astype(np.float32)
NS = FM.numpy_namespace()
F = torch.nn.functional
C = torch._C._nn

def T(a):
    return torch.from_numpy(a)

def torch_peer(name, xa, ya):
    xt, yt = T(xa), T(ya)
    m = {
        "relu": lambda: torch.clamp_min(xt, 0, out=yt),
        "relu6": lambda: C.hardtanh(xt, 0.0, 6.0, out=yt),
        "leaky_relu": lambda: C.leaky_relu(xt, 0.2, out=yt),
        "rrelu": lambda: C.leaky_relu(xt, (1 / 8 + 1 / 3) / 2, out=yt),  # eval-mode rrelu is this
        "elu": lambda: C.elu(xt, 1.0, 1.0, 1.0, out=yt),
        "selu": lambda: C.elu(xt, 1.6732632423543772, 1.0507009873554805, 1.0, out=yt),
        "celu": lambda: C.elu(xt, 1.0, 1.0, 1.0, out=yt),
        "gelu": lambda: C.gelu(xt, out=yt),
        "sigmoid": lambda: torch.sigmoid(xt, out=yt),
        "hard_sigmoid": lambda: C.hardsigmoid(xt, out=yt),
        "log_sigmoid": lambda: C.log_sigmoid(xt, out=yt),
        "softplus": lambda: C.softplus(xt, 1.0, 20.0, out=yt),
        "silu": lambda: C.silu(xt, out=yt),
        "hard_silu": lambda: C.hardswish(xt, out=yt),
        "mish": lambda: C.mish(xt, out=yt),
        "tanh": lambda: torch.tanh(xt, out=yt),
        "hard_tanh": lambda: C.hardtanh(xt, -1.0, 1.0, out=yt),
        "soft_shrink": lambda: C.softshrink(xt, 0.5, out=yt),
        "hard_shrink": lambda: torch.hardshrink(xt, 0.5, out=yt),
        "threshold": lambda: torch.threshold(xt, 0.5, 0.0, out=yt),
        "exponential": lambda: torch.exp(xt, out=yt),
        "linear": lambda: yt.copy_(xt),
        "prelu": lambda: C.leaky_relu(xt, 0.25, out=yt),  # scalar-weight prelu is this kernel
        # no ATen kernel: the composite a torch user writes, out= on the last op
        "softsign": lambda: torch.div(xt, torch.abs(xt).add_(1), out=yt),
        "tanh_shrink": lambda: torch.sub(xt, torch.tanh(xt), out=yt),
        "sparse_plus": lambda: torch.where(xt <= -1, torch.zeros(()), torch.where(xt >= 1, xt, (xt + 1).square_().mul_(0.25)), out=yt),
        "sparse_sigmoid": lambda: torch.clamp(xt, -1, 1, out=yt).add_(1).mul_(0.5),
        "squareplus": lambda: torch.add(xt, torch.sqrt(xt * xt + 4), out=yt).mul_(0.5),
        "log1mexp": lambda: torch.log(-torch.expm1(-xt), out=yt),
        "lisht": lambda: torch.mul(xt, torch.tanh(xt), out=yt),
        "snake": lambda: torch.add(xt, torch.sin(xt).square_(), out=yt),
    }
    return m.get(name)

A = torch.ops.aten

def torch_bwd_peer(name, xa, dya, ya):
    xt, dt, yt = T(xa), T(dya), T(ya)
    m = {
        "gelu": lambda: A.gelu_backward.grad_input(dt, xt, approximate="none", grad_input=yt),
        "sigmoid": lambda: A.sigmoid_backward.grad_input(dt, xt, grad_input=yt),  # takes y; x stands in
        "silu": lambda: A.silu_backward.grad_input(dt, xt, grad_input=yt),
        "tanh": lambda: A.tanh_backward.grad_input(dt, xt, grad_input=yt),  # takes y; x stands in
        "relu": lambda: A.threshold_backward.grad_input(dt, xt, 0.0, grad_input=yt),
        "elu": lambda: A.elu_backward.grad_input(dt, 1.0, 1.0, 1.0, False, xt, grad_input=yt),
        "softplus": lambda: A.softplus_backward.grad_input(dt, xt, 1.0, 20.0, grad_input=yt),
        "leaky_relu": lambda: A.leaky_relu_backward.grad_input(dt, xt, 0.2, False, grad_input=yt),
        "hard_silu": lambda: A.hardswish_backward.out(dt, xt, out=yt),
        "hard_sigmoid": lambda: A.hardsigmoid_backward.grad_input(dt, xt, grad_input=yt),
        "hard_tanh": lambda: A.hardtanh_backward.grad_input(dt, xt, -1.0, 1.0, grad_input=yt),
        "mish": lambda: A.mish_backward(dt, xt),  # no out= variant: allocates
    }
    return m.get(name)

COMPOSITE = {"softsign", "tanh_shrink", "sparse_plus", "sparse_sigmoid", "squareplus", "log1mexp", "lisht", "snake"}

def params(name):
    return dict(threshold=0.5, value=0.0) if name == "threshold" else {}

def timed(fn):
    t0 = time.perf_counter(); fn(); return time.perf_counter() - t0

def with_threads(k, fn):
    def run():
        os.environ["ACTIVATIONS_NUM_THREADS"] = str(k)
        torch.set_num_threads(k)
        return fn()
    return run

def bench_group(impls, rounds):
    for f in impls.values():  # warm up: page faults, pools, JIT
        f(); f()
    samples = {k: [] for k in impls}
    keys = list(impls)
    for _ in range(rounds):
        random.shuffle(keys)
        for k in keys:
            impls[k]()  # untimed call: wakes the pool as in back-to-back use
            samples[k].append(timed(impls[k]))
    return {k: float(np.median(v)) * 1e3 for k, v in samples.items()}

results = {}
names = [s for s in args.names.split(",") if s] or REGISTRY.names("elementwise")
if not args.softmax:
    for name in names:
        xa = xpos if name == "log1mexp" else x
        kw = params(name)
        impls = {}
        for k in (1, 2):
            if args.backward:
                impls[f"ours_{k}T"] = with_threads(k, lambda: activations.grad(name, xa, dy, out=y, **kw))
            else:
                impls[f"ours_{k}T"] = with_threads(k, lambda: activations.apply(name, xa, out=y, **kw))
            tp = torch_bwd_peer(name, xa, dy, y) if args.backward else torch_peer(name, xa, y)
            if tp is not None:
                impls[f"torch_{k}T"] = with_threads(k, tp)
        if not args.no_naive:
            p = dict(REGISTRY.get(name).bind(kw).values)
            if args.backward:
                impls["naive"] = with_threads(1, lambda: FM.backward(name, NS, xa, dy, p))
            else:
                impls["naive"] = with_threads(1, lambda: FM.forward(name, NS, xa, p))
        if args.backward:  # the NumPy path without the compiled loops, for reference
            from activations.backends import numpy_backend
            def plain(name=name, xa=xa, kw=kw):
                saved = numpy_backend._NATIVE
                numpy_backend._NATIVE = None
                try:
                    activations.grad(name, xa, dy, out=y, **kw)
                finally:
                    numpy_backend._NATIVE = saved
            impls["numpy_path_2T"] = with_threads(2, plain)
        r = bench_group(impls, args.rounds)
        results[name] = r
        line = " ".join(f"{k}={v:7.2f}" for k, v in sorted(r.items()))
        print(f"{name:15s} {line}", flush=True)
else:
    for shape in [(4096, 4096), (65536, 256), (256, 65536)]:
        xs = x.reshape(shape)
        ys = y.reshape(shape)
        impls = {}
        for name in ("softmax", "log_softmax", "softmin"):
            for k in (1, 2):
                impls[f"{name}_ours_{k}T"] = with_threads(k, lambda name=name: activations.apply(name, xs, out=ys))
        for k in (1, 2):
            impls[f"softmax_torch_{k}T"] = with_threads(k, lambda: torch.softmax(T(xs), -1, out=T(ys)))
            impls[f"log_softmax_torch_{k}T"] = with_threads(k, lambda: torch.log_softmax(T(xs), -1, out=T(ys)))
        impls["softmax_naive"] = with_threads(1, lambda: FM.forward("softmax", NS, xs, {}))
        r = bench_group(impls, args.rounds)
        results[str(shape)] = r
        print(shape, " ".join(f"{k}={v:.2f}" for k, v in sorted(r.items())), flush=True)
if args.json:
    json.dump(results, open(args.json, "w"), indent=1)
