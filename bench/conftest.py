"""pytest-benchmark suites: `pytest bench/ --benchmark-only` (never part of tests/).

The grid comes from environment variables, see activations/benchmarks/suite.py:
ACTIVATIONS_BENCH_SIZES (default 16,20), ACTIVATIONS_BENCH_SHAPES, ACTIVATIONS_BENCH_DTYPES,
ACTIVATIONS_BENCH_THREADS (default 1), ACTIVATIONS_BENCH_DEVICE.
"""
import pytest

pytest.importorskip("pytest_benchmark")

from activations.benchmarks import suite  # noqa: E402


@pytest.fixture
def measure(benchmark):
    """measure(case, provider): time one provider on one case, or skip with the reason."""

    def run(case, provider):
        suite.measure(benchmark, case, provider, pytest.skip)

    return run
