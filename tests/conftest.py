from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ProviderPKI


@pytest.fixture
def pki(tmp_path: Path) -> ProviderPKI:
    return ProviderPKI.create(tmp_path / "pki")
