"""`python -m activations accuracy`: max error of every activation against an mpmath reference."""
from __future__ import annotations

import os
import sys

HELP = "measure the max error (ulps, relative) of every activation against an mpmath reference"


def add_arguments(parser) -> None:
    parser.add_argument("names", nargs="*", help="activations (names or labels such as \"gelu(approximate='tanh')\"); default all")
    parser.add_argument("--dtype", action="append", help="float16, bfloat16, float32, float64 (repeatable; default all)")
    parser.add_argument("--direction", choices=["forward", "backward"], help="only this direction")
    parser.add_argument(
        "--density", choices=["full", "quick", "smoke"], default="full",
        help="sweep density: full (docs/accuracy.md, minutes), quick (about 10x fewer points), smoke (the tests')",
    )
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy", "numba"], help="backend to measure")
    parser.add_argument("--no-native", action="store_true", help="the CPU backend's NumPy fallback instead of its compiled engine")
    parser.add_argument("--markdown", action="store_true", help="print the tables of docs/accuracy.md")
    parser.add_argument("--json", metavar="PATH", help="write every result to PATH as JSON")
    parser.add_argument("--suggest-bounds", action="store_true", help="print the bounds table (activations/tools/accuracy_bounds.txt) for this run")
    parser.add_argument("--check", action="store_true", help="exit 1 when a result exceeds its bound in accuracy.BOUNDS")


def run(args) -> int:
    if args.no_native:
        os.environ["ACTIVATIONS_NATIVE"] = "0"  # read at the first call
    import warnings

    from ..tools import accuracy

    warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the far tails is part of the sweep
    try:
        variants = [accuracy.variant(n) for n in args.names] if args.names else None
        dtypes = args.dtype or None
        for d in dtypes or ():
            if d not in accuracy.DTYPE_NAMES:
                raise ValueError(f"unknown dtype {d!r}; valid: {', '.join(accuracy.DTYPE_NAMES)}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    directions = [args.direction] if args.direction else list(accuracy.DIRECTIONS)

    def show(r) -> None:
        print(
            f"{r.variant:40s} {r.dtype:9s} {r.direction:8s} ulp {r.ulp:<10.4g} cond {r.cond:<10.4g} "
            f"rel {r.rel:<9.3g} worst at {r.worst}",
            file=sys.stderr if args.markdown else sys.stdout,
            flush=True,
        )

    results = accuracy.measure_all(
        variants, dtypes, directions, density=args.density, backend=args.backend, progress=show
    )
    if args.markdown:
        print(accuracy.markdown(results))
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(accuracy.to_json(results))
    if args.suggest_bounds:
        print(accuracy.format_bounds(accuracy.suggest_bounds(results)))
    if args.check:
        bad = accuracy.violations(results)
        for line in bad:
            print("over bound: " + line, file=sys.stderr)
        return 1 if bad else 0
    return 0
