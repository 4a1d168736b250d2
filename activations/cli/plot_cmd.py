"""`python -m activations plot NAME... -o FILE.png`: activations (and derivatives) on one chart."""
from __future__ import annotations

import argparse
import sys

HELP = "draw activations (and their derivatives) over a range into a PNG"

_EPILOG = """\
examples:
  python -m activations plot relu gelu silu mish -o smooth.png
  python -m activations plot gelu gelu:approximate=tanh --derivative --range -4 4 -o gelu.png
  python -m activations plot leaky_relu --params negative_slope=0.01 -o leaky.png
NAME:k=v,k2=v2 sets parameters of one curve; --params k=v sets them on every curve that has them.
Row-wise activations (softmax family) are drawn as the first output of the row [x, 0] (softmax
is then the sigmoid); gated ones as a function of the gate with the other half fixed at 1.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("names", nargs="+", metavar="NAME", help="activation names or aliases, optionally NAME:k=v,...")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.png", help="the image to write")
    parser.add_argument("--derivative", action="store_true", help="also draw each derivative (dashed)")
    parser.add_argument("--range", nargs=2, type=float, default=(-5.0, 5.0), metavar=("LOW", "HIGH"),
                        help="x range (default: -5 5)")
    parser.add_argument("--params", nargs="+", default=[], metavar="K=V",
                        help="parameters for every curve that has them, e.g. alpha=0.5 approximate=tanh")
    parser.add_argument("--points", type=int, default=1001, help="samples over the range (default: 1001)")
    parser.add_argument("--title", help="chart title")


def parse_value(text: str):
    """'0.5' -> 0.5, '3' -> 3, 'none'/'None' -> None, 'true'/'false' -> bool, else the string."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_pairs(items) -> dict:
    out = {}
    for item in items:
        for part in (p for p in item.split(",") if p):
            if "=" not in part:
                raise ValueError(f"parameter {part!r}: expected KEY=VALUE")
            k, v = part.split("=", 1)
            out[k.strip()] = parse_value(v)
    return out


def _curves(args, REGISTRY):
    """[(label, record, params)], with --params applied where a record has them."""
    shared = parse_pairs(args.params)
    curves = []
    used = set()
    for spec in args.names:
        name, _, own = spec.partition(":")
        rec = REGISTRY.get(name)
        accepted = {p.name for p in rec.params} | {a for p in rec.params for a in p.aliases}
        params = {k: v for k, v in shared.items() if k in accepted}
        used |= set(params)
        params.update(parse_pairs([own]) if own else {})
        rec.bind(params)  # raise now, naming the activation, on a bad value
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        curves.append((f"{rec.name}({shown})" if shown else rec.name, rec, params))
    unused = set(shared) - used
    if unused:
        raise ValueError(f"no chosen activation has the parameter(s) {', '.join(sorted(unused))}")
    return curves


def _evaluate(activations, rec, params, x, derivative: bool):
    """(y, dy/dx or None) on the grid x, float64, via the NumPy backend."""
    import numpy as np

    from ..registry import Kind

    kind = rec.kind
    if kind is Kind.ELEMENTWISE:
        y = activations.apply(rec, x, backend="numpy", **params)
        d = activations.grad(rec, x, np.ones_like(x), backend="numpy", **params) if derivative else None
        return y, d
    if kind is Kind.ROWWISE:
        # the classic view: first output of the two-element row [x, 0]
        # (softmax gives the sigmoid, sparsemax the sparse sigmoid)
        pair = np.stack([x, np.zeros_like(x)], axis=-1)
        y = activations.apply(rec, pair, axis=-1, backend="numpy", **params)[:, 0]
        d = None
        if derivative:
            dy = np.zeros_like(pair)
            dy[:, 0] = 1.0
            d = activations.grad(rec, pair, dy, axis=-1, backend="numpy", **params)[:, 0]
        return y, d
    # gated: the gate varies, the other half is 1
    gate_first = rec.name != "glu"
    ones = np.ones_like(x)
    pair = np.stack([x, ones] if gate_first else [ones, x], axis=-1)  # (n, 2): a | b
    y = activations.apply(rec, pair, axis=-1, backend="numpy", **params)[:, 0]
    d = None
    if derivative:
        g = activations.grad(rec, pair, np.ones((x.size, 1)), axis=-1, backend="numpy", **params)
        d = g[:, 0] if gate_first else g[:, 1]
    return y, d


def run(args: argparse.Namespace) -> int:
    try:
        import matplotlib
    except ImportError:
        print("plot: needs matplotlib, which is not installed: pip install matplotlib "
              "(part of the [bench] extra)", file=sys.stderr)
        return 2
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import activations
    from ..catalogue import REGISTRY

    lo, hi = args.range
    if not lo < hi:
        print(f"plot: --range needs LOW < HIGH, got {lo} {hi}", file=sys.stderr)
        return 2
    if args.points < 2:
        print("plot: --points must be at least 2", file=sys.stderr)
        return 2
    try:
        curves = _curves(args, REGISTRY)
    except (ValueError, TypeError) as exc:
        print(f"plot: {exc}", file=sys.stderr)
        return 2

    x = np.linspace(lo, hi, args.points)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    with np.errstate(all="ignore"):
        for i, (label, rec, params) in enumerate(curves):
            try:
                y, d = _evaluate(activations, rec, params, x, args.derivative)
            except Exception as exc:
                print(f"plot: {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
            color = colors[i % len(colors)]
            suffix = {"rowwise": " of [x, 0]", "gated": " (other half = 1)"}.get(rec.kind.value, "")
            ax.plot(x, y, color=color, lw=2, label=label + suffix)
            if d is not None:
                ax.plot(x, d, color=color, lw=1.3, ls="--", label=f"{label}'")
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlim(lo, hi)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)" + (" and f'(x) (dashed)" if args.derivative else ""))
    ax.set_title(args.title or ", ".join(label for label, _, _ in curves))
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(args.output, dpi=120)
    except OSError as exc:
        print(f"plot: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    finally:
        plt.close(fig)
    print(f"plot: wrote {args.output}", file=sys.stderr)
    return 0
