"""Elementwise activations (forward and backward): our backends, the peers, the copy ceiling."""
import pytest

from activations.tools.benchmarks import suite


@pytest.mark.parametrize("provider", suite.providers(), ids=suite.provider_id)
@pytest.mark.parametrize("case", suite.cases("elementwise"), ids=suite.case_id)
def test_elementwise(measure, case, provider):
    measure(case, provider)
