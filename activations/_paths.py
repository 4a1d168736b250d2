"""Where the CUDA C sources are: inside the installed package, or beside it in a checkout."""
from __future__ import annotations

from pathlib import Path


def kernels_dir() -> Path:
    """The directory holding ``activations.cuh``: inside the package when installed from a wheel,
    else the repository's ``kernels/`` next to the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "kernels", here.parent / "kernels"):
        if (candidate / "activations.cuh").is_file():
            return candidate
    raise FileNotFoundError(f"CUDA kernel sources not found (looked in {here / 'kernels'} and {here.parent / 'kernels'})")
