"""pytest-benchmark suites: `pytest bench/ --benchmark-only` (never part of tests/).

The grid comes from environment variables, see activations/tools/benchmarks/suite.py:
ACTIVATIONS_BENCH_SIZES (default 16,20), ACTIVATIONS_BENCH_SHAPES, ACTIVATIONS_BENCH_DTYPES,
ACTIVATIONS_BENCH_THREADS (default 1), ACTIVATIONS_BENCH_DEVICE.
"""
import importlib.util

import pytest

if importlib.util.find_spec("pytest_benchmark") is None:
    # without the plugin there is no `benchmark` fixture: collect nothing rather than error
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def measure(benchmark):
    """measure(case, provider): time one provider on one case, or skip with the reason."""
    from activations.tools.benchmarks import suite

    def run(case, provider):
        suite.measure(benchmark, case, provider, pytest.skip)

    return run
