"""Worst float32 error of the engine over every float32 input (or every k-th bit pattern).

    python bench/exhaustive_f32.py squareplus [--step 5] [--backward] [--param b=2]

Walks the 2^32 bit patterns in chunks (NaN patterns skipped), computes `activations.apply` (or
`grad` with dy = 1) with the compiled engine, and compares with a float64 formula written here
(stable forms, independent of the package): ulp = |got - ref| / spacing(float32(|ref|)).
Prints the worst case and where it is.  A full walk takes minutes per activation on one core.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import activations  # noqa: E402

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _squareplus(x, b):
    h = np.sqrt(x * x + b)
    return np.where(x >= 0, 0.5 * (x + h), b / (2.0 * (h - x)))


def _dsquareplus(x, b):
    h = np.sqrt(x * x + b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x >= 0, np.where(h > 0, 0.5 * (1.0 + x / h), 0.5), b / (2.0 * h * (h - x)))


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


#: name -> (forward, backward) float64 formulas of x (float64) and the bound parameters
FORMULAS = {
    "squareplus": (lambda x, p: _squareplus(x, p["b"]), lambda x, p: _dsquareplus(x, p["b"])),
    "elu": (lambda x, p: np.where(x > 0, x, p["alpha"] * np.expm1(np.minimum(x, 0))),
            lambda x, p: np.where(x > 0, 1.0, p["alpha"] * np.exp(np.minimum(x, 0)))),
    "selu": (lambda x, p: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
             lambda x, p: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0)))),
    "celu": (lambda x, p: np.where(x > 0, x, p["alpha"] * np.expm1(np.minimum(x, 0) / p["alpha"])),
             lambda x, p: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0) / p["alpha"]))),
    "sigmoid": (lambda x, p: _sigmoid(x), lambda x, p: _sigmoid(x) * _sigmoid(-x)),
    "silu": (lambda x, p: x * _sigmoid(x), lambda x, p: _sigmoid(x) * (1.0 + x * _sigmoid(-x))),
    "gelu": (lambda x, p: 0.5 * x * special.erfc(-x / np.sqrt(2.0)),
             lambda x, p: 0.5 * special.erfc(-x / np.sqrt(2.0)) + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)),
}


def ulps(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| in ulps of float32 at ref; matching infinities and NaNs count 0."""
    got64 = got.astype(np.float64)
    sp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(got64 - ref) / sp
    same = (got64 == ref) | (np.isnan(got64) & np.isnan(ref))
    rounds_to_inf = np.isinf(got64) & (np.abs(ref) > np.finfo(np.float32).max) & (np.sign(got64) == np.sign(ref))
    err[same | rounds_to_inf] = 0.0
    return np.where(np.isnan(err), np.inf, err)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(FORMULAS))
    ap.add_argument("--step", type=int, default=1, help="every k-th bit pattern (1: all)")
    ap.add_argument("--backward", action="store_true")
    ap.add_argument("--param", action="append", default=[], help="NAME=VALUE")
    args = ap.parse_args()
    kw = {k: float(v) for k, v in (s.split("=", 1) for s in args.param)}
    p = {k: float(np.float32(v)) for k, v in activations.catalogue.REGISTRY.get(args.name).bind(kw).values.items()}
    fwd, bwd = FORMULAS[args.name]
    worst, where = 0.0, None
    chunk = 1 << 24
    for start in range(0, 1 << 32, chunk * args.step):
        u = np.arange(start, min(start + chunk * args.step, 1 << 32), args.step, dtype=np.uint64).astype(np.uint32)
        x = u.view(np.float32)
        x = x[~np.isnan(x)]
        x64 = x.astype(np.float64)
        with np.errstate(all="ignore"):
            if args.backward:
                got = activations.grad(args.name, x, np.ones_like(x), **kw)
                ref = bwd(x64, p)
            else:
                got = activations.apply(args.name, x, **kw)
                ref = fwd(x64, p)
        e = ulps(got, ref)
        k = int(np.argmax(e))
        if e[k] > worst:
            worst, where = float(e[k]), (float(x[k]), float(got[k]), float(ref[k]))
    direction = "backward" if args.backward else "forward"
    print(f"{args.name} {direction} float32, every {args.step}. pattern: max {worst:.4f} ulp"
          + (f" at x = {where[0]!r} (got {where[1]!r}, float64 formula {where[2]!r})" if where else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
