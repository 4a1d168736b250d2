"""`python -m activations list`: the catalogue as a table."""
from __future__ import annotations

HELP = "list every activation: kind, aliases, parameters, output range"


def add_arguments(parser) -> None:
    parser.add_argument("--kind", choices=["elementwise", "rowwise", "gated"], help="only this kind")
    parser.add_argument("--names-only", action="store_true", help="one canonical name per line")


def _params_text(record) -> str:
    from ..registry import REQUIRED

    parts = []
    for p in record.params:
        default = "required" if p.default is REQUIRED else repr(p.default)
        name = p.name + "".join(f"|{a}" for a in p.aliases)
        parts.append(f"{name}={default}")
    return ", ".join(parts) or "-"


def run(args) -> int:
    from ..catalogue import REGISTRY

    records = [r for r in REGISTRY if args.kind is None or r.kind.value == args.kind]
    if args.names_only:
        print("\n".join(r.name for r in records))
        return 0
    rows = [("name", "kind", "aliases", "parameters", "range")]
    rows += [(r.name, r.kind.value, ", ".join(r.aliases) or "-", _params_text(r), r.output_range) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
        if i == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 5)
    print(f"\n{len(records)} activations")
    return 0
