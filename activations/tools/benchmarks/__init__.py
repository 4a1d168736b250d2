"""Benchmarks of the package against its peers, shipped with it.

``python -m activations bench`` runs them; ``bench/`` in the repository wraps
the same pieces for pytest-benchmark.  Modules:

* :mod:`.cases`: the case grid (presets quick / default / full) and bytes moved;
* :mod:`.formulas`: the naive formulas (NumPy / CuPy peers);
* :mod:`.providers`: the setup factory and every provider: our backends, the
  peers (torch, JAX, CuPy) and the copy ceiling, skipped with a reason when
  they cannot run;
* :mod:`.timing`: interleaved rounds, medians and percentiles, CUDA events;
* :mod:`.runner`: runs a grid into records, JSON lines / CSV output;
* :mod:`.report`: ratios, geometric means, goals, Markdown and plots.

Nothing here is imported by ``import activations``.
"""
from __future__ import annotations

from .cases import Case, GridSpec, build_grid
from .providers import Context, gpu_available
from .runner import Settings, append_csv, append_jsonl, load, run, settings_for

__all__ = [
    "Case", "GridSpec", "build_grid", "Context", "gpu_available", "Settings", "settings_for", "run",
    "append_jsonl", "append_csv", "load",
]
