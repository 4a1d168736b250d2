"""`python -m activations describe NAME`: formula, derivative, parameters, notes."""
from __future__ import annotations

import sys

HELP = "show the formula, derivative, parameters and defaults of one activation"


def add_arguments(parser) -> None:
    parser.add_argument("name", help="activation name or alias")


def run(args) -> int:
    from ..catalogue import REGISTRY

    try:
        print(REGISTRY.get(args.name).describe())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
