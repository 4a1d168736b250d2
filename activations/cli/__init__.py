"""The command-line interface: one module per subcommand.

Each module in ``COMMANDS`` defines ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``.  Modules import heavy dependencies inside ``run``
so that ``python -m activations list`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> module (under activations.cli)
COMMANDS: dict[str, str] = {
    "list": "list_cmd",
    "describe": "describe_cmd",
    "info": "info_cmd",
    "bench": "bench_cmd",
    "plot": "plot_cmd",
    "check-kernels": "check_kernels_cmd",
    "accuracy": "accuracy_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m activations",
        description="GPU-accelerated activation functions: catalogue, backends, benchmarks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ImportError:
            continue  # a subcommand whose module is not part of this build
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:  # `python -m activations list | head`
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
