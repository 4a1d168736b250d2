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
        typed = name.strip() or rec.name  # an alias stays as typed: "silu = swish" when both are drawn
        curves.append((f"{typed}({shown})" if shown else typed, rec, params))
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


#: more distinct curves than this: small multiples (one panel per activation) instead of one chart
SINGLE_MAX = 4
#: panels per row in the small multiples
PANEL_COLUMNS = 4


def merge_identical(evaluated):
    """[(label, kind, y, d)] -> [(labels, kind, y, d)]: curves equal on the whole grid drawn once.

    An alias next to its name (silu and swish), or softmax of [x, 0] next to sigmoid,
    would otherwise hide under each other; they are drawn once as 'silu = swish'.
    """
    import numpy as np

    groups = []
    for label, kind, y, d in evaluated:
        for g in groups:
            same_d = (d is None and g[3] is None) or (
                d is not None and g[3] is not None and np.allclose(d, g[3], rtol=1e-9, atol=1e-12, equal_nan=True))
            if same_d and np.allclose(y, g[2], rtol=1e-9, atol=1e-12, equal_nan=True):
                g[0].append(label)
                break
        else:
            groups.append(([label], kind, y, d))
    return groups


_HOW_DRAWN = {"rowwise": " of [x, 0]", "gated": " (other half = 1)"}


def shown_label(label: str, kind: str) -> str:
    """What a curve is called on the chart: row-wise and gated ones say how they are drawn."""
    return label + _HOW_DRAWN.get(kind, "")


def _bare(label: str) -> str:
    for suffix in _HOW_DRAWN.values():
        label = label.removesuffix(suffix)
    return label


def figure(x, groups, *, derivative: bool, title: str | None = None):
    """The chart: one axes for a few curves, a grid of small panels for more.  Returns the figure."""
    import textwrap

    import matplotlib.pyplot as plt
    import numpy as np

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lo, hi = float(x[0]), float(x[-1])
    ylabel = "f(x)" + (" and f'(x) (dashed)" if derivative else "")

    def decorate(ax):
        ax.axhline(0, color="black", lw=0.7)
        ax.axvline(0, color="black", lw=0.7)
        ax.set_xlim(lo, hi)
        ax.grid(True, alpha=0.3)

    if len(groups) <= SINGLE_MAX:
        fig, ax = plt.subplots(figsize=(8, 5.5), layout="constrained")
        n = len(groups)
        for i, (labels, kind, y, d) in enumerate(groups):
            color = colors[i % len(colors)]
            name = " = ".join(labels)
            # earlier curves wider: where two nearly coincide, the one below still shows at the edges
            wide = 1.0 + 0.6 * (n - 1 - i)
            ax.plot(x, y, color=color, lw=1.6 * wide, label=name, solid_capstyle="butt")
            if d is not None:
                ax.plot(x, d, color=color, lw=1.1 * wide, ls="--", label=f"{name}, derivative")
        decorate(ax)
        ax.set_xlabel("x")
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", fontsize=9)
        text = title or ", ".join(" = ".join(_bare(lab) for lab in labels) for labels, *_ in groups)
        fig.suptitle(textwrap.fill(text, 70), fontsize=12)
        return fig

    n = len(groups)
    cols = min(PANEL_COLUMNS, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows + 0.9), squeeze=False, sharex=True,
                             layout="constrained")
    for i, (ax, (labels, kind, y, d)) in enumerate(zip(axes.flat, groups)):
        color = colors[i % len(colors)]
        ax.plot(x, y, color=color, lw=2)
        if d is not None:
            ax.plot(x, d, color=color, lw=1.2, ls="--")
        decorate(ax)
        # a panel's y range follows its curves, clipped where they run off to infinity
        finite = np.concatenate([v[np.isfinite(v)] for v in (y, d) if v is not None])
        if finite.size:
            top, bottom = min(float(finite.max()), 50.0), max(float(finite.min()), -50.0)
            pad = 0.08 * max(top - bottom, 1e-3)
            ax.set_ylim(bottom - pad, top + pad)
        ax.set_title(textwrap.fill(" = ".join(labels), 34), fontsize=9.5)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
        axes.flat[list(axes.flat).index(ax) - cols].xaxis.set_tick_params(labelbottom=True)
    text = title or f"{n} activations"
    fig.suptitle(textwrap.fill(f"{text}: f(x) solid" + (", f'(x) dashed" if derivative else ""), 90), fontsize=12)
    return fig


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
    evaluated = []
    with np.errstate(all="ignore"):
        for label, rec, params in curves:
            try:
                y, d = _evaluate(activations, rec, params, x, args.derivative)
            except Exception as exc:
                print(f"plot: {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
            evaluated.append((shown_label(label, rec.kind.value), rec.kind.value, np.asarray(y, dtype=np.float64),
                              None if d is None else np.asarray(d, dtype=np.float64)))
    groups = merge_identical(evaluated)
    fig = figure(x, groups, derivative=args.derivative, title=args.title)
    try:
        fig.savefig(args.output, dpi=120)
    except OSError as exc:
        print(f"plot: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    finally:
        plt.close(fig)
    same = [" = ".join(labels) for labels, *_ in groups if len(labels) > 1]
    note = f" ({'; '.join(same)}: identical on [{lo:g}, {hi:g}], drawn once)" if same else ""
    print(f"plot: wrote {args.output}{note}", file=sys.stderr)
    return 0
