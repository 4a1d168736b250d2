"""Who is timed on a case: our backends, the peers, and the copy ceiling.

One setup factory (:func:`make_inputs`) builds the arrays of a case once;
:func:`runners` turns them into zero-argument callables, one per
(provider, thread count).  A provider that cannot run here (library not
installed, no such function in it, unsupported dtype) is returned as a
:class:`Skipped` with the reason, never replaced by something else.

Providers (``role``):

* ours: ``numpy``, ``dask`` (CPU), ``cupy``, ``numba`` (GPU): ``activations.apply``
  / ``grad`` with ``backend=``, writing into a preallocated ``out=``.
* peer, CPU: ``naive_numpy`` (the formula as a user writes it, allocating),
  ``torch`` (``torch.nn.functional.*``, allocating), ``torch_out`` (the same
  ATen kernel writing into ``out=``), ``jax`` (``jax.jit(jax.nn.*)``, default
  XLA threads), ``torch_compile`` (``torch.compile`` of the torch call:
  Inductor's generated C++ kernel, bias add fused; compiled per case and
  thread count before timing, so only on request: ``--peers``).
* peer, GPU: ``naive_cupy`` (composed CuPy ops), ``torch_cuda``,
  ``torch_cuda_out``, ``cupyx`` (``cupyx.scipy.special.softmax``/``log_softmax``),
  ``torch_cuda_compile`` (``torch.compile``: Inductor's Triton kernel).
* ceiling: ``copy`` (CPU: ``x * 1.0 -> out``, ``np.copyto`` for 16-bit types,
  split over the same threads) and ``copy_sm`` (GPU: a 16-byte vectorized
  grid-stride copy kernel, not ``cudaMemcpy``).
"""
from __future__ import annotations

import importlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ... import _dtypes
from ...registry import Kind
from . import formulas
from .cases import BACKWARD, FORWARD, POSITIVE_DOMAIN, Case

OURS, PEER, CEILING = "ours", "peer", "ceiling"
CPU_BACKENDS = ("numpy", "dask")
GPU_BACKENDS = ("cupy", "numba")
CPU_PEERS = ("naive_numpy", "torch", "torch_out", "jax", "torch_compile")
GPU_PEERS = ("naive_cupy", "torch_cuda", "torch_cuda_out", "cupyx", "torch_cuda_compile")
#: run only when named (Context.peers): compiling every case costs seconds each on a CPU
ON_REQUEST_PEERS = ("torch_compile",)
THREADS_ENV = "ACTIVATIONS_NUM_THREADS"


class Skip(Exception):
    """This provider cannot run this case here; the message says why."""


@dataclass
class Runner:
    provider: str
    role: str
    threads: int | None
    fn: Callable[[], Any]
    prepare: Callable[[], None] | None = None
    bytes: int | None = None  # None: the case's bytes
    note: str = ""


@dataclass
class Skipped:
    provider: str
    role: str
    threads: int | None
    reason: str


@dataclass
class Context:
    """What to run: device, our backends, CPU thread counts, which peers."""

    device: str = "cpu"
    backends: tuple[str, ...] = ("numpy",)
    threads: tuple[int, ...] = (1,)
    peers: tuple[str, ...] | None = None  # None: every peer of the device but ON_REQUEST_PEERS
    ceiling: bool = True
    _cache: dict = field(default_factory=dict, repr=False)


# --------------------------------------------------------------- libraries
def optional(module: str):
    """Import an optional peer library or raise Skip('<module> is not installed')."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Skip(f"{module.split('.')[0]} is not installed") from exc
    except Exception as exc:  # a broken install must not stop the benchmark
        raise Skip(f"{module} failed to import: {type(exc).__name__}: {exc}") from exc


def gpu_available() -> tuple[bool, str]:
    """(True, device name) when CuPy sees a CUDA device."""
    try:
        cp = importlib.import_module("cupy")
        if cp.cuda.runtime.getDeviceCount() < 1:
            return False, "no CUDA device"
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        name = props["name"]
        return True, name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}".splitlines()[0]


# ------------------------------------------------------------------ inputs
@dataclass
class Inputs:
    """Arrays of one case on its device.  ``y`` = f(x + bias) for peers whose backward takes y."""

    x: Any
    dy: Any = None
    bias: Any = None
    y: Any = None
    out: Any = None
    xp: Any = np


def make_inputs(case: Case, device: str = "cpu", seed: int = 0) -> Inputs:
    """The one setup factory: x ~ N(0, 3^2) (|x| where the domain is x >= 0), dy ~ N(0, 1)."""
    dtype = _dtypes.from_name(case.dtype)
    gen_dtype = np.float64 if dtype == np.float64 else np.float32
    out_shape = case.shape
    if case.record.kind is Kind.GATED and case.direction == FORWARD:
        out_shape = case.shape[:-1] + (case.shape[-1] // 2,)
    if case.record.kind is Kind.GATED and case.direction == BACKWARD:
        dy_shape = case.shape[:-1] + (case.shape[-1] // 2,)
    else:
        dy_shape = case.shape
    if device == "gpu":
        xp = importlib.import_module("cupy")
        rng = xp.random.default_rng(seed)
        def normal(shape, scale):  # noqa: E306
            return (rng.standard_normal(shape, dtype=gen_dtype) * scale)
    else:
        xp = np
        rng = np.random.default_rng(seed)
        def normal(shape, scale):  # noqa: E306
            return rng.standard_normal(shape, dtype=gen_dtype) * gen_dtype(scale)
    x = normal(case.shape, 3.0)
    if case.name in POSITIVE_DOMAIN:
        x = xp.abs(x)
    inputs = Inputs(x=x.astype(dtype), xp=xp)
    if case.bias:
        inputs.bias = normal((case.shape[-1],), 0.1).astype(dtype)
    if case.direction == BACKWARD:
        inputs.dy = normal(dy_shape, 1.0).astype(dtype)
        inputs.out = xp.empty(case.shape, dtype)
        if case.name in formulas.FROM_Y:
            ns = formulas.cupy_namespace() if device == "gpu" else formulas.numpy_namespace()
            p = bound_params(case)
            xc = inputs.x.astype(gen_dtype)
            yc = formulas.forward(case.name, ns, xc, p, None if inputs.bias is None else inputs.bias.astype(gen_dtype))
            inputs.y = yc.astype(dtype)
    else:
        inputs.out = xp.empty(out_shape, dtype)
    return inputs


def bound_params(case: Case) -> dict[str, Any]:
    return dict(case.record.bind(case.kwargs).values)


# ------------------------------------------------------------------ runners
def runners(case: Case, inputs: Inputs, ctx: Context) -> tuple[list[Runner], list[Skipped]]:
    """Every provider of the case: the ones that can run, and the skipped ones with reasons."""
    got: list[Runner] = []
    skipped: list[Skipped] = []
    threads: tuple[int | None, ...]
    if ctx.device == "gpu":
        threads = (None,)
    else:
        threads = (1,) if case.tag == "overhead" else tuple(ctx.threads)

    def attempt(provider: str, role: str, t: int | None, build: Callable[[], Runner]) -> None:
        try:
            got.append(build())
        except Skip as exc:
            skipped.append(Skipped(provider, role, t, str(exc)))
        except Exception as exc:  # a peer that breaks on this case is reported, not fatal
            skipped.append(Skipped(provider, role, t, f"setup failed: {type(exc).__name__}: {exc}"))

    for be in ctx.backends:
        for t in threads:
            attempt(be, OURS, t, lambda be=be, t=t: _ours(case, inputs, be, t, ctx))
    peers = CPU_PEERS if ctx.device == "cpu" else GPU_PEERS
    wanted = ctx.peers if ctx.peers is not None else tuple(p for p in peers if p not in ON_REQUEST_PEERS)
    for peer in peers:
        if peer not in wanted:
            continue
        builder = _PEER_BUILDERS[peer]
        for t in (None,) if peer in ("naive_numpy", "jax") else threads:
            attempt(peer, PEER, t, lambda builder=builder, t=t: builder(case, inputs, t, ctx))
    if ctx.ceiling and case.tag != "overhead":
        name = "copy_sm" if ctx.device == "gpu" else "copy"
        for t in threads:
            attempt(name, CEILING, t, lambda t=t: _ceiling(case, inputs, t, ctx))
    return got, skipped


# ---------------------------------------------------------------- our code
def _set_threads(n: int | None) -> Callable[[], None] | None:
    if n is None:
        return None

    def prepare() -> None:
        os.environ[THREADS_ENV] = str(n)

    return prepare


def _ours(case: Case, inputs: Inputs, backend: str, t: int | None, ctx: Context) -> Runner:
    from ... import apply, dispatch, grad

    ok, why = dispatch.status(backend)
    if not ok:
        raise Skip(f"backend {backend} is not available here: {why}")
    want_gpu = backend in GPU_BACKENDS
    if want_gpu != (ctx.device == "gpu"):
        raise Skip(f"backend {backend} runs on the {'GPU' if want_gpu else 'CPU'}; this run measures the {ctx.device}")
    kw = dict(case.kwargs, backend=backend)
    if case.bias:
        kw["bias"] = inputs.bias
    if case.record.kind is not Kind.ELEMENTWISE:
        kw["axis"] = -1
    name = case.name
    x, dy = inputs.x, inputs.dy
    note = ""
    if backend == "dask":
        da = optional("dask.array")
        x = da.from_array(x, chunks=_dask_chunks(case))
        if dy is not None:
            dy = da.from_array(dy, chunks=_dask_chunks(case, dy.shape))
        workers = t or 1

        dask = optional("dask")

        def compute(v):
            parts = v if isinstance(v, tuple) else (v,)
            got = dask.compute(*parts, scheduler="threads", num_workers=workers)  # one graph for dx and dbias
            return got if isinstance(v, tuple) else got[0]

        if case.direction == FORWARD:
            fn = lambda: compute(apply(name, x, **kw))  # noqa: E731
        else:
            fn = lambda: compute(grad(name, x, dy, **kw))  # noqa: E731
        # Chunks run one per worker; each chunk single-threaded inside
        return Runner(backend, OURS, t, fn, prepare=_set_threads(1), note="allocating (dask arrays have no out=)")
    if case.out:
        kw["out"] = inputs.out
    else:
        note = "allocating"
    if case.direction == FORWARD:
        fn = lambda: apply(name, x, **kw)  # noqa: E731
    else:
        fn = lambda: grad(name, x, dy, **kw)  # noqa: E731
    return Runner(backend, OURS, t, fn, prepare=_set_threads(t), note=note)


def _dask_chunks(case: Case, shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """About 2^22 elements per chunk, whole rows; dy (gated: half as wide) gets x's row blocks."""
    target = 1 << 22  # 16 MiB of float32
    if len(case.shape) == 1:
        return (min(case.shape[0], target),)
    rows = max(1, min(case.shape[0], target // max(case.shape[-1], 1)))
    return (rows, (shape or case.shape)[-1])


# ------------------------------------------------------------------- naive
def _naive_numpy(case: Case, inputs: Inputs, t: int | None, ctx: Context) -> Runner:
    return _naive(case, inputs, formulas.numpy_namespace(), "naive_numpy")


def _naive_cupy(case: Case, inputs: Inputs, t: int | None, ctx: Context) -> Runner:
    optional("cupy")
    return _naive(case, inputs, formulas.cupy_namespace(), "naive_cupy")


def _naive(case: Case, inputs: Inputs, ns: formulas.Namespace, provider: str) -> Runner:
    p = bound_params(case)
    name = case.name
    if name not in formulas.FORWARD:
        raise Skip(f"no naive formula for {name}")
    if name == "gelu" and p["approximate"] == "none" or name == "geglu" and p["approximate"] == "none":
        if ns.erf is None:
            raise Skip("no erf (scipy.special / cupyx.scipy.special) for the exact GELU")
    if name == "rrelu" and p["training"]:
        raise Skip("training-mode rrelu has no naive formula")
    if name == "prelu" and not isinstance(p["weight"], float):
        raise Skip("array weight")
    x, dy, b = inputs.x, inputs.dy, inputs.bias
    if case.direction == FORWARD:
        fn = lambda: formulas.forward(name, ns, x, p, b)  # noqa: E731
    else:
        from_y = case.name in formulas.FROM_Y
        v = inputs.y if from_y else x
        fn = lambda: formulas.backward(name, ns, v, dy, p, b, v_is_y=from_y)  # noqa: E731
    return Runner(provider, PEER, None, fn, note="allocating")


# ------------------------------------------------------------------- torch
def _to_torch(torch, arr, device: str):
    """A zero-copy torch view of a NumPy or CuPy array (bfloat16 through an int16 view)."""
    bf16 = _dtypes.is_bfloat16(arr.dtype)
    if device == "gpu":
        src = arr.view("int16") if bf16 else arr
        t = torch.from_dlpack(src)
    else:
        t = torch.from_numpy(arr.view(np.int16) if bf16 else arr)
    return t.view(torch.bfloat16) if bf16 else t


def _torch_forward(torch, name: str, p: dict[str, Any]):
    """(allocating F.* call, out= ATen call or None) for one activation, or Skip."""
    F = torch.nn.functional
    nn = torch._C._nn
    inf = math.inf
    if name == "relu":
        if (p["negative_slope"], p["max_value"], p["threshold"]) != (0.0, None, 0.0):
            raise Skip("torch relu has no slope/cap/threshold parameters")
        return F.relu, lambda t, o: torch.clamp_min(t, 0, out=o)
    if name == "relu6":
        return F.relu6, lambda t, o: nn.hardtanh(t, 0.0, 6.0, out=o)
    if name in ("leaky_relu", "rrelu"):
        if name == "rrelu" and p["training"]:
            raise Skip("training-mode rrelu draws different random slopes in torch")
        s = p["negative_slope"] if name == "leaky_relu" else (p["lower"] + p["upper"]) / 2
        alloc = (lambda t: F.leaky_relu(t, s)) if name == "leaky_relu" else (lambda t: F.rrelu(t, p["lower"], p["upper"], training=False))
        # eval-mode rrelu is ATen's leaky_relu with the mean slope
        return alloc, lambda t, o: nn.leaky_relu(t, s, out=o)
    if name == "prelu":
        w = p["weight"]
        if not isinstance(w, float):
            raise Skip("array weight")
        wt = {}

        def prelu(t):
            if t.dtype not in wt:
                wt[t.dtype] = torch.tensor([w], dtype=t.dtype, device=t.device)
            return F.prelu(t, wt[t.dtype])

        return prelu, None
    if name in ("elu", "selu", "celu"):
        if name == "elu":
            a, scale, inscale = p["alpha"], 1.0, 1.0
        elif name == "selu":
            from ...catalogue import SELU_ALPHA, SELU_SCALE

            a, scale, inscale = SELU_ALPHA, SELU_SCALE, 1.0
        else:
            a, scale, inscale = p["alpha"], 1.0, 1.0 / p["alpha"]
        alloc = {"elu": lambda t: F.elu(t, a), "selu": F.selu, "celu": lambda t: F.celu(t, a)}[name]
        # ATen defines selu and celu through elu(x, alpha, scale, input_scale)
        return alloc, lambda t, o: nn.elu(t, a, scale, inscale, out=o)
    if name == "gelu":
        ap = p["approximate"]
        return (lambda t: F.gelu(t, approximate=ap)), (lambda t, o: nn.gelu(t, approximate=ap, out=o))
    if name == "sigmoid":
        return torch.sigmoid, lambda t, o: torch.sigmoid(t, out=o)
    if name == "hard_sigmoid":
        if (p["slope"], p["offset"]) != (1.0 / 6.0, 0.5):
            raise Skip("torch hardsigmoid has fixed slope 1/6 and offset 1/2")
        return F.hardsigmoid, lambda t, o: nn.hardsigmoid(t, out=o)
    if name == "log_sigmoid":
        return F.logsigmoid, lambda t, o: nn.log_sigmoid(t, out=o)
    if name == "softplus":
        b, th = p["beta"], p["threshold"]
        th = inf if th is None else th
        return (lambda t: F.softplus(t, b, th)), (lambda t, o: nn.softplus(t, b, th, out=o))
    if name == "softsign":
        return F.softsign, None
    if name == "silu":
        return F.silu, lambda t, o: nn.silu(t, out=o)
    if name == "hard_silu":
        return F.hardswish, lambda t, o: nn.hardswish(t, out=o)
    if name == "mish":
        return F.mish, lambda t, o: nn.mish(t, out=o)
    if name == "tanh":
        return torch.tanh, lambda t, o: torch.tanh(t, out=o)
    if name == "hard_tanh":
        lo, hi = p["min_val"], p["max_val"]
        return (lambda t: F.hardtanh(t, lo, hi)), (lambda t, o: nn.hardtanh(t, lo, hi, out=o))
    if name == "tanh_shrink":
        return F.tanhshrink, None
    if name == "soft_shrink":
        th = p["threshold"]
        return (lambda t: F.softshrink(t, th)), (lambda t, o: nn.softshrink(t, th, out=o))
    if name == "hard_shrink":
        th = p["threshold"]
        return (lambda t: F.hardshrink(t, th)), (lambda t, o: torch.hardshrink(t, th, out=o))
    if name == "threshold":
        th, v = p["threshold"], p["value"]
        return (lambda t: F.threshold(t, th, v)), (lambda t, o: torch.threshold(t, th, v, out=o))
    if name == "exponential":
        return torch.exp, lambda t, o: torch.exp(t, out=o)
    if name == "linear":
        return (lambda t: t.clone()), (lambda t, o: o.copy_(t))
    # no torch function: the composite a torch user writes (allocating, several passes)
    if name == "sparse_plus":
        return (lambda t: torch.where(t <= -1, 0.0, torch.where(t >= 1, t, (t + 1).square_().mul_(0.25)))), None
    if name == "sparse_sigmoid":
        return (lambda t: torch.clamp(t, -1, 1).add_(1).mul_(0.5)), None
    if name == "squareplus":
        b = p["b"]
        return (lambda t: torch.sqrt(t * t + b).add_(t).mul_(0.5)), None
    if name == "log1mexp":
        return (lambda t: torch.log(-torch.expm1(-t))), None
    if name == "lisht":
        return (lambda t: t * torch.tanh(t)), None
    if name == "snake":
        f = p["frequency"]
        return (lambda t: torch.sin(t * f).square_().div_(f).add_(t)), None
    if name in ("softmax", "log_softmax"):
        f = getattr(torch, name)
        return (lambda t: f(t, -1)), (lambda t, o: f(t, -1, out=o))
    if name == "softmin":
        return (lambda t: F.softmin(t, -1)), None
    if name == "glu":
        return (lambda t: F.glu(t, -1)), (lambda t, o: nn.glu(t, -1, out=o))
    if name in ("swiglu", "geglu", "reglu"):
        act = {"swiglu": F.silu, "reglu": F.relu, "geglu": lambda a: F.gelu(a, approximate=p["approximate"])}[name]

        def gated(t):
            a, b = t.chunk(2, dim=-1)
            return act(a) * b

        return gated, None
    raise Skip(f"torch has no {name}")


def _torch_backward(torch, name: str, p: dict[str, Any]):
    """(allocating aten backward, grad_input= out variant or None); args (dy, v), v = x or y."""
    A = torch.ops.aten
    inf = math.inf

    def pair(op, *extra, out_kw="grad_input", overload="grad_input"):
        alloc = lambda dy, v: op(dy, v, *extra)  # noqa: E731
        variant = getattr(op, overload, None)
        out = None if variant is None else (lambda dy, v, o: variant(dy, v, *extra, **{out_kw: o}))
        return alloc, out

    if name == "relu":
        if (p["negative_slope"], p["max_value"], p["threshold"]) != (0.0, None, 0.0):
            raise Skip("torch relu has no slope/cap/threshold parameters")
        return pair(A.threshold_backward, 0.0)
    if name == "relu6":
        return pair(A.hardtanh_backward, 0.0, 6.0)
    if name in ("leaky_relu", "rrelu"):
        if name == "rrelu" and p["training"]:
            raise Skip("training-mode rrelu draws different random slopes in torch")
        s = p["negative_slope"] if name == "leaky_relu" else (p["lower"] + p["upper"]) / 2
        return pair(A.leaky_relu_backward, s, False)
    if name in ("elu", "selu", "celu"):
        from ...catalogue import SELU_ALPHA, SELU_SCALE

        a, scale, inscale = {
            "elu": (p.get("alpha"), 1.0, 1.0),
            "selu": (SELU_ALPHA, SELU_SCALE, 1.0),
            "celu": (p.get("alpha"), 1.0, 1.0 / p["alpha"] if "alpha" in p else 1.0),
        }[name]
        alloc = lambda dy, x: A.elu_backward(dy, a, scale, inscale, False, x)  # noqa: E731
        out = lambda dy, x, o: A.elu_backward.grad_input(dy, a, scale, inscale, False, x, grad_input=o)  # noqa: E731
        return alloc, out
    if name == "gelu":
        ap = p["approximate"]
        return (
            lambda dy, x: A.gelu_backward(dy, x, approximate=ap),
            lambda dy, x, o: A.gelu_backward.grad_input(dy, x, approximate=ap, grad_input=o),
        )
    if name == "sigmoid":
        return pair(A.sigmoid_backward)
    if name == "tanh":
        return pair(A.tanh_backward)
    if name == "hard_sigmoid":
        if (p["slope"], p["offset"]) != (1.0 / 6.0, 0.5):
            raise Skip("torch hardsigmoid has fixed slope 1/6 and offset 1/2")
        return pair(A.hardsigmoid_backward)
    if name == "softplus":
        th = inf if p["threshold"] is None else p["threshold"]
        return pair(A.softplus_backward, p["beta"], th)
    if name == "silu":
        return pair(A.silu_backward)
    if name == "hard_silu":
        return pair(A.hardswish_backward, out_kw="out", overload="out")
    if name == "mish":
        return (lambda dy, x: A.mish_backward(dy, x)), None
    if name == "hard_tanh":
        return pair(A.hardtanh_backward, p["min_val"], p["max_val"])
    if name == "soft_shrink":
        return pair(A.softshrink_backward, p["threshold"])
    if name == "hard_shrink":
        return pair(A.hardshrink_backward, p["threshold"])
    if name == "threshold":
        return pair(A.threshold_backward, p["threshold"])
    if name == "exponential":
        return (lambda dy, y: dy * y), (lambda dy, y, o: torch.mul(dy, y, out=o))
    if name == "linear":
        return (lambda dy, x: dy.clone()), (lambda dy, x, o: o.copy_(dy))
    if name in ("softmax", "log_softmax"):
        # the out= overloads name their output differently: grad_input (softmax), out (log_softmax)
        op, out_kw = ((A._softmax_backward_data, "grad_input") if name == "softmax"
                      else (A._log_softmax_backward_data, "out"))
        alloc = lambda dy, y: op(dy, y, -1, y.dtype)  # noqa: E731
        out = lambda dy, y, o: op.out(dy, y, -1, y.dtype, **{out_kw: o})  # noqa: E731
        return alloc, out
    if name == "glu":
        return pair(A.glu_backward, -1)
    raise Skip(f"torch has no backward kernel for {name}")


def _torch_runner(case: Case, inputs: Inputs, t: int | None, ctx: Context, use_out: bool, provider: str,
                  compiled: bool = False) -> Runner:
    torch = optional("torch")
    device = ctx.device
    if device == "gpu" and not torch.cuda.is_available():
        raise Skip("torch has no CUDA here")
    p = bound_params(case)
    prepare = None
    if t is not None:
        prepare = lambda: torch.set_num_threads(t)  # noqa: E731
    tt = lambda a: None if a is None else _to_torch(torch, a, device)  # noqa: E731
    x, dy, b, y = tt(inputs.x), tt(inputs.dy), tt(inputs.bias), tt(inputs.y)
    name = case.name
    if compiled:
        return _compiled_torch_runner(torch, case, p, (x, dy, b, y), t, provider, prepare)
    note = "out=" if use_out else "allocating"
    if case.direction == FORWARD:
        alloc, out_fn = _torch_forward(torch, name, p)
        if not use_out:
            fn = (lambda: alloc(x)) if b is None else (lambda: alloc(x + b))
        else:
            if out_fn is None:
                raise Skip(f"torch has no out= kernel for {name}")
            o = tt(inputs.xp.empty_like(inputs.out))
            if b is None:
                fn = lambda: out_fn(x, o)  # noqa: E731
            else:  # x + b into o, then the activation in place: two passes, no allocation
                def fn():
                    torch.add(x, b, out=o)
                    return out_fn(o, o)
                note = "out=, bias added in a separate pass"
    else:
        if case.record.kind is Kind.ROWWISE and name not in ("softmax", "log_softmax"):
            raise Skip(f"torch has no backward kernel for {name}")
        alloc, out_fn = _torch_backward(torch, name, p)
        from_y = case.name in formulas.FROM_Y
        v = y if from_y else x
        if b is not None:
            if use_out:
                raise Skip("the bias backward (dbias reduction) has no out= form in torch")
            def fn():
                dx = alloc(dy, v if from_y else v + b)
                return dx, dx.reshape(-1, dx.shape[-1]).sum(0)
        elif not use_out:
            fn = lambda: alloc(dy, v)  # noqa: E731
        else:
            if out_fn is None:
                raise Skip(f"torch has no out= backward kernel for {name}")
            o = tt(inputs.xp.empty_like(inputs.out))
            fn = lambda: out_fn(dy, v, o)  # noqa: E731
    return Runner(provider, PEER, t, fn, prepare=prepare, note=note)


def _torch_alloc(case, inputs, t, ctx):
    return _torch_runner(case, inputs, t, ctx, False, "torch")


def _torch_out(case, inputs, t, ctx):
    return _torch_runner(case, inputs, t, ctx, True, "torch_out")


def _torch_compile(case, inputs, t, ctx):
    return _torch_runner(case, inputs, t, ctx, False, "torch_compile", compiled=True)


def _torch_cuda_compile(case, inputs, t, ctx):
    return _torch_runner(case, inputs, None, ctx, False, "torch_cuda_compile", compiled=True)


def _torch_cuda(case, inputs, t, ctx):
    return _torch_runner(case, inputs, None, ctx, False, "torch_cuda")


def _torch_cuda_out(case, inputs, t, ctx):
    return _torch_runner(case, inputs, None, ctx, True, "torch_cuda_out")


_COMPILED = [0]  # a fresh code object per compiled peer: dynamo caches graphs per code object


def inductor_compile(torch, fn: Callable[..., Any], args: tuple, threads: int | None) -> Callable[[], Any]:
    """torch.compile (Inductor) of ``fn(*args)``, compiled now: a zero-argument callable.

    Inductor bakes the CPU thread count into its kernel and dynamo caches graphs per code
    object, so each call compiles a code object of its own, under ``threads``.
    """
    def peer(*a):
        return fn(*a)

    _COMPILED[0] += 1
    peer.__code__ = peer.__code__.replace(co_name=f"activations_peer_{_COMPILED[0]}")
    compiled = torch.compile(peer, dynamic=False, fullgraph=True)
    if threads is not None:
        torch.set_num_threads(threads)
    compiled(*args)  # compile before timing
    return lambda: compiled(*args)


def _compiled_torch_runner(torch, case: Case, p: dict[str, Any], arrays, t, provider, prepare) -> Runner:
    """The allocating torch call (with the bias add, and the dbias sum) through Inductor: one fused kernel."""
    x, dy, b, y = arrays
    name = case.name
    if case.direction == FORWARD:
        alloc = _torch_forward(torch, name, p)[0]
        fn, args = ((alloc, (x,)) if b is None else ((lambda x, b: alloc(x + b)), (x, b)))
    else:
        if case.record.kind is Kind.ROWWISE and name not in ("softmax", "log_softmax"):
            raise Skip(f"torch has no backward kernel for {name}")
        alloc = _torch_backward(torch, name, p)[0]
        from_y = name in formulas.FROM_Y
        if b is None:
            fn, args = alloc, (dy, y if from_y else x)
        else:
            def fn(dy, v, b):
                dx = alloc(dy, v if from_y else v + b)
                return dx, dx.reshape(-1, dx.shape[-1]).sum(0)
            args = (dy, y if from_y else x, b)
    return Runner(provider, PEER, t, inductor_compile(torch, fn, args, t), prepare=prepare,
                  note="torch.compile (Inductor), allocating")


# --------------------------------------------------------------------- jax
def _jax_fn(jax, name: str, p: dict[str, Any]):
    nn, jnp = jax.nn, jax.numpy
    simple = {
        "relu": "relu", "relu6": "relu6", "selu": "selu", "sigmoid": "sigmoid", "log_sigmoid": "log_sigmoid",
        "softsign": "soft_sign", "silu": "silu", "hard_silu": "hard_silu", "mish": "mish",
        "sparse_plus": "sparse_plus", "sparse_sigmoid": "sparse_sigmoid", "log1mexp": "log1mexp",
    }
    if name == "relu" and (p["negative_slope"], p["max_value"], p["threshold"]) != (0.0, None, 0.0):
        raise Skip("jax relu has no slope/cap/threshold parameters")
    if name in simple:
        f = getattr(nn, simple[name], None)
        if f is None:
            raise Skip(f"jax.nn has no {simple[name]}")
        return f
    if name == "leaky_relu":
        return lambda x: nn.leaky_relu(x, p["negative_slope"])
    if name == "elu":
        return lambda x: nn.elu(x, p["alpha"])
    if name == "celu":
        return lambda x: nn.celu(x, p["alpha"])
    if name == "gelu":
        return lambda x: nn.gelu(x, approximate=p["approximate"] == "tanh")
    if name == "hard_sigmoid":
        if (p["slope"], p["offset"]) != (1.0 / 6.0, 0.5):
            raise Skip("jax hard_sigmoid has fixed slope and offset")
        return nn.hard_sigmoid
    if name == "softplus":
        if p["beta"] != 1.0 or p["threshold"] is not None:
            raise Skip("jax softplus has no beta/threshold")
        return nn.softplus
    if name == "hard_tanh":
        if (p["min_val"], p["max_val"]) != (-1.0, 1.0):
            raise Skip("jax hard_tanh has fixed bounds")
        return nn.hard_tanh
    if name == "squareplus":
        return lambda x: nn.squareplus(x, p["b"])
    if name == "tanh":
        return jnp.tanh
    if name == "exponential":
        return jnp.exp
    if name in ("softmax", "log_softmax"):
        f = getattr(nn, name)
        return lambda x: f(x, axis=-1)
    if name == "softmin":
        return lambda x: nn.softmax(-x, axis=-1)
    if name == "glu":
        return lambda x: nn.glu(x, axis=-1)
    raise Skip(f"jax.nn has no {name}")


def _jax(case: Case, inputs: Inputs, t: int | None, ctx: Context) -> Runner:
    if ctx.device != "cpu":
        raise Skip("the jax peer is measured on the CPU only")
    jax = optional("jax")
    f = _jax_fn(jax, case.name, bound_params(case))
    cpu = jax.devices("cpu")[0]
    put = lambda a: None if a is None else jax.device_put(a, cpu)  # noqa: E731
    x, dy, b = put(inputs.x), put(inputs.dy), put(inputs.bias)
    g = f if b is None else (lambda v, bb: f(v + bb))
    args = (x,) if b is None else (x, b)
    if case.direction == FORWARD:
        jitted = jax.jit(g)
        fn = lambda: jitted(*args).block_until_ready()  # noqa: E731
    else:
        def vjp(*a):
            dyv = a[-1]
            _, pull = jax.vjp(g, *a[:-1])
            return pull(dyv)
        jitted = jax.jit(vjp)
        fn = lambda: jax.block_until_ready(jitted(*args, dy))  # noqa: E731

        def fn_check():
            res = fn()
            return res[0] if b is None else (res[0], res[1])
        return Runner("jax", PEER, None, fn_check, note="jit, XLA's own threads, allocating")
    return Runner("jax", PEER, None, fn, note="jit, XLA's own threads, allocating")


# -------------------------------------------------------------------- cupyx
def _cupyx(case: Case, inputs: Inputs, t: int | None, ctx: Context) -> Runner:
    if case.record.kind is not Kind.ROWWISE or case.name not in ("softmax", "log_softmax"):
        raise Skip("cupyx.scipy.special has softmax and log_softmax only")
    if case.direction != FORWARD:
        raise Skip("cupyx.scipy.special has no softmax backward")
    if case.bias:
        raise Skip("no fused bias")
    special = optional("cupyx.scipy.special")
    f = getattr(special, case.name)
    x = inputs.x
    return Runner("cupyx", PEER, None, lambda: f(x, axis=-1), note="allocating")


_PEER_BUILDERS: dict[str, Callable[..., Runner]] = {
    "naive_numpy": _naive_numpy,
    "torch": _torch_alloc,
    "torch_out": _torch_out,
    "jax": _jax,
    "naive_cupy": _naive_cupy,
    "torch_cuda": _torch_cuda,
    "torch_cuda_out": _torch_cuda_out,
    "cupyx": _cupyx,
    "torch_compile": _torch_compile,
    "torch_cuda_compile": _torch_cuda_compile,
}


# ----------------------------------------------------------------- ceiling
_copy_pool: ThreadPoolExecutor | None = None


def _split_run(parts: list[Callable[[], Any]]) -> None:
    global _copy_pool
    if len(parts) == 1:
        parts[0]()
        return
    if _copy_pool is None or _copy_pool._max_workers < len(parts) - 1:
        _copy_pool = ThreadPoolExecutor(max_workers=len(parts) - 1, thread_name_prefix="bench-copy")
    futures = [_copy_pool.submit(f) for f in parts[1:]]
    parts[0]()
    for f in futures:
        f.result()


def _ceiling(case: Case, inputs: Inputs, t: int | None, ctx: Context) -> Runner:
    x = inputs.x
    nbytes = 2 * x.size * x.itemsize
    if ctx.device == "gpu":
        return Runner("copy_sm", CEILING, None, _sm_copy(x, ctx), bytes=nbytes, note="16-byte vectorized SM copy")
    dst = np.empty_like(x)
    xf, df = x.reshape(-1), dst.reshape(-1)
    n = t or 1
    bounds = [xf.size * i // n for i in range(n + 1)]
    use_mul = x.dtype in (np.float32, np.float64)  # x*1.0 -> out streams faster than copyto here

    def part(a: int, b: int) -> Callable[[], Any]:
        src, dst_ = xf[a:b], df[a:b]
        if use_mul:
            return lambda: np.multiply(src, 1.0, out=dst_)
        return lambda: np.copyto(dst_, src)

    parts = [part(bounds[i], bounds[i + 1]) for i in range(n)]
    return Runner("copy", CEILING, t, lambda: _split_run(parts), bytes=nbytes,
                  note="x*1.0 -> out" if use_mul else "np.copyto")


_COPY_KERNEL = r"""
// 16-byte words: the widest load/store per thread on Hopper (LDG.128 / STG.128)
struct alignas(16) activations_v16 { unsigned long long lo, hi; };

extern "C" __global__ void activations_bench_copy16(const activations_v16* __restrict__ src,
                                                    activations_v16* __restrict__ dst,
                                                    unsigned long long n) {
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    // up to four independent 16-byte loads in flight per thread before the stores, in every
    // iteration (the last one too): 64 bytes a thread, 128 KiB an SM, far above the ~15 KiB that
    // cover DRAM latency on an H100
    for (; i < n; i += 4 * stride) {
        const bool b1 = i + stride < n, b2 = i + 2 * stride < n, b3 = i + 3 * stride < n;
        activations_v16 a = src[i], b, c, d;
        if (b1) b = src[i + stride];
        if (b2) c = src[i + 2 * stride];
        if (b3) d = src[i + 3 * stride];
        dst[i] = a;
        if (b1) dst[i + stride] = b;
        if (b2) dst[i + 2 * stride] = c;
        if (b3) dst[i + 3 * stride] = d;
    }
}
"""


def _sm_copy(x, ctx: Context) -> Callable[[], Any]:
    cp = optional("cupy")
    kernel = ctx._cache.get("copy16")
    if kernel is None:
        kernel = ctx._cache["copy16"] = cp.RawKernel(_COPY_KERNEL, "activations_bench_copy16")
    src = x.reshape(-1).view(cp.uint8)
    dst = cp.empty_like(src)
    n16 = src.size // 16
    tail = n16 * 16
    if src.data.ptr % 16 or dst.data.ptr % 16:
        raise Skip("copy buffers are not 16-byte aligned")
    sms = cp.cuda.Device().attributes["MultiProcessorCount"]
    threads = 256
    blocks = max(1, min((n16 + 4 * threads - 1) // (4 * threads), sms * 8))  # 4 words a thread, 8 blocks an SM
    n_arg = np.uint64(n16)

    def run():
        if n16:
            kernel((blocks,), (threads,), (src, dst, n_arg))
        if tail < src.size:
            dst[tail:] = src[tail:]
        return dst

    return run


# ------------------------------------------------------------------- checks
SAMPLE = 1 << 16


def snapshot(v) -> tuple[tuple[int, ...], np.ndarray] | None:
    """(shape, float64 sample of at most SAMPLE values) of any provider's output.

    A tuple output (dx, dbias) is represented by its first array.
    """
    if isinstance(v, (tuple, list)):
        v = v[0] if v else None
    if v is None:
        return None
    mod = type(v).__module__.split(".")[0]
    shape = tuple(int(s) for s in v.shape)
    size = math.prod(shape)
    step = max(1, size // SAMPLE)
    if mod == "torch":
        flat = v.detach().reshape(-1)[::step]
        if flat.dtype.is_floating_point and flat.element_size() == 2:
            flat = flat.float()
        return shape, flat.cpu().numpy().astype(np.float64)
    if mod == "cupy":
        import cupy as cp

        return shape, cp.asnumpy(v.reshape(-1)[::step]).astype(np.float64)
    return shape, np.asarray(v).reshape(-1)[::step].astype(np.float64)


def agree(out, ref, dtype: str) -> tuple[bool, str]:
    """Loose agreement of two snapshots: catches a peer that computes something else, not rounding."""
    if out is None or ref is None:
        return True, ""
    (shape_a, a), (shape_b, b) = out, ref
    if shape_a != shape_b:
        return False, f"shape {shape_a} != {shape_b}"
    both = np.isfinite(a) & np.isfinite(b)
    rtol, atol = (5e-2, 5e-2) if dtype in ("float16", "bfloat16") else (1e-2, 1e-3)
    with np.errstate(all="ignore"):
        bad = both & (np.abs(a - b) > atol + rtol * np.abs(b))
    frac = bad.sum() / max(both.sum(), 1)
    if frac > 1e-3:
        i = int(np.argmax(bad))
        return False, f"{frac:.1%} of sampled values differ (e.g. {a[i]:.6g} vs {b[i]:.6g})"
    return True, ""
