from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import is_hypothesis_test, settings

from tests.helpers import ProviderPKI

# Bounded and derandomized in CI (each test draws the same examples on every run, so a submission is judged on
# its own change, and a failure reproduces); `make fuzz` selects "fuzz": many more examples, new ones each run.
# Tests that fix max_examples themselves keep their number.
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True)
settings.register_profile("fuzz", max_examples=int(os.environ.get("SIGWARDEN_FUZZ_EXAMPLES", "5000")),
                          deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every property-based test is a `fuzz` test, so `make fuzz` (`-m fuzz`) runs all of them."""
    for item in items:
        if is_hypothesis_test(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.fuzz)


@pytest.fixture
def pki(tmp_path: Path) -> ProviderPKI:
    return ProviderPKI.create(tmp_path / "pki")
