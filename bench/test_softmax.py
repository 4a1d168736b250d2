"""The softmax family along the last axis (forward and backward)."""
import pytest

from activations.tools.benchmarks import suite


@pytest.mark.parametrize("provider", suite.providers(), ids=suite.provider_id)
@pytest.mark.parametrize("case", suite.cases("rowwise"), ids=suite.case_id)
def test_softmax(measure, case, provider):
    measure(case, provider)
