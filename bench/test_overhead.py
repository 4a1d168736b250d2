"""What one call costs on a tiny array (8 elements): Python, validation and dispatch per backend."""
import pytest

from activations.tools.benchmarks import suite


@pytest.mark.parametrize("provider", suite.providers(), ids=suite.provider_id)
@pytest.mark.parametrize("case", suite.overhead(), ids=suite.case_id)
def test_overhead(measure, case, provider):
    measure(case, provider)
