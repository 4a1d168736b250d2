"""Where the CUDA C sources are: inside the installed package, or beside it in a checkout."""
from __future__ import annotations

from pathlib import Path


def kernels_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "kernels", here.parent / "kernels"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"CUDA kernel sources not found next to {here}")
