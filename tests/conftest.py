from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TestPKI


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    return TestPKI.create(tmp_path / "pki")
