"""What one differentiable call costs: this package through torch and JAX against their own GELU.

    python examples/call_overhead.py

Prints microseconds per call (best of 5 repeats) for a small tensor, where the fixed cost of a
call dominates, and a large one, where the memory traffic does.  Frameworks that are not
installed are skipped.
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np

import activations

SIZES = {"small (128 x 32)": (128, 32), "large (1024 x 1024)": (1024, 1024)}


def best(fn, number: int) -> float:
    fn()
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def report(label: str, fn, number: int) -> None:
    print(f"  {label:<58} {best(fn, number):10.1f} us")


def numpy_rows(shape, number) -> None:
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out = np.empty_like(x)
    report("numpy: activations.apply('gelu', x, out=out)", lambda: activations.apply("gelu", x, out=out), number)


def torch_rows(shape, number) -> None:
    try:
        import torch
    except ImportError:
        return
    import activations.torch as at

    x = torch.randn(shape)
    xg = x.clone().requires_grad_()
    dy = torch.ones(shape)
    gelu = torch.nn.functional.gelu
    report("torch: F.gelu(x), no grad", lambda: gelu(x), number)
    report("torch: activations.torch.apply('gelu', x), no grad", lambda: at.apply("gelu", x), number)
    report("torch: F.gelu(x).backward(dy)", lambda: gelu(xg).backward(dy), number)
    report("torch: activations.torch.apply('gelu', x).backward(dy)", lambda: at.apply("gelu", xg).backward(dy), number)


def jax_rows(shape, number) -> None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return
    import activations.jax as aj

    x = jnp.asarray(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    ours = jax.jit(lambda v: aj.apply("gelu", v))
    theirs = jax.jit(lambda v: jax.nn.gelu(v, approximate=False))
    via_pure = jax.jit(lambda v: jax.pure_callback(lambda a: activations.apply("gelu", a),
                                                   jax.ShapeDtypeStruct(v.shape, v.dtype), v))
    g_ours = jax.jit(jax.grad(lambda v: aj.apply("gelu", v).sum()))
    g_theirs = jax.jit(jax.grad(lambda v: jax.nn.gelu(v, approximate=False).sum()))
    report("jax: jit(jax.nn.gelu)", lambda: theirs(x).block_until_ready(), number)
    report(f"jax: jit(activations.jax.apply) [{aj.MODE}]", lambda: ours(x).block_until_ready(), number)
    report("jax: jit(pure_callback(activations.apply))", lambda: via_pure(x).block_until_ready(), number)
    report("jax: jit(grad(jax.nn.gelu))", lambda: g_theirs(x).block_until_ready(), number)
    report("jax: jit(grad(activations.jax.apply))", lambda: g_ours(x).block_until_ready(), number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("numpy", "torch", "jax"), action="append",
                        help="measure only these (repeatable); each framework alone keeps the others' threads out")
    args = parser.parse_args()
    table = {"numpy": numpy_rows, "torch": torch_rows, "jax": jax_rows}
    for label, shape in SIZES.items():
        number = 200 if shape[0] * shape[1] < 100_000 else 10
        print(f"{label}, float32:")
        for key in args.only or table:
            table[key](shape, number)


if __name__ == "__main__":
    main()
