from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers import ProviderPKI

# Bounded in CI; `make fuzz` selects "fuzz". Tests that fix max_examples themselves keep their number.
settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("fuzz", max_examples=int(os.environ.get("SIGWARDEN_FUZZ_EXAMPLES", "5000")),
                          deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def pki(tmp_path: Path) -> ProviderPKI:
    return ProviderPKI.create(tmp_path / "pki")
