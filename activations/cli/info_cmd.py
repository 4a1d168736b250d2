"""`python -m activations info`: which backends work here, and why not."""
from __future__ import annotations

import platform

HELP = "show which backends are available on this machine and why the others are not"


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    import numpy as np

    from .. import __version__, _dtypes, dispatch

    print(f"activations {__version__} on Python {platform.python_version()}, numpy {np.__version__}")
    print("dtypes: " + ", ".join(d.name for d in _dtypes.SUPPORTED))
    print()
    width = max(len(n) for n in dispatch.names())
    for name in dispatch.names():
        ok, detail = dispatch.status(name)
        print(f"{name.ljust(width)}  {'yes' if ok else 'no '}  {detail}")
    print(f"\nautomatic selection follows where x lives; {dispatch.ENV_VAR}=NAME or backend=NAME forces one")
    print(_engine_line())
    return 0


def _engine_line() -> str:
    """The compiled CPU engine the numpy backend uses when it is installed."""
    import os

    from ..backends.cpu import engine

    if os.environ.get("ACTIVATIONS_NATIVE", "1") == "0":
        return "numpy backend's compiled CPU engine: off (ACTIVATIONS_NATIVE=0): plain NumPy instead"
    if engine.module() is not None:
        return f"numpy backend's compiled CPU engine: in use, {engine.DETAIL}; {engine.threads()} thread(s)"
    return f"numpy backend's compiled CPU engine: not in use ({engine.WHY_NOT}); plain NumPy instead"
