"""Gated activations (glu, swiglu, geglu, reglu), rows of 4096 split in two halves."""
import pytest

from activations.tools.benchmarks import suite


@pytest.mark.parametrize("provider", suite.providers(), ids=suite.provider_id)
@pytest.mark.parametrize("case", suite.cases("gated"), ids=suite.case_id)
def test_gated(measure, case, provider):
    measure(case, provider)
