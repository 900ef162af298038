from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from provider.server.worker import FD_RESERVE, raise_open_file_limit


@pytest.fixture
def restored_limit() -> Iterator[tuple[int, int]]:
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_the_open_file_limit_is_raised_to_fit_the_connection_cap(restored_limit: tuple[int, int]) -> None:
    _, hard = restored_limit
    wanted = 1000
    if hard != resource.RLIM_INFINITY and hard < wanted + FD_RESERVE:
        pytest.fail(f"this machine's hard open-file limit {hard} is too low for the test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))
    assert raise_open_file_limit(wanted) == wanted
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= wanted + FD_RESERVE


def test_a_cap_above_the_hard_limit_is_lowered_to_fit(restored_limit: tuple[int, int]) -> None:
    _, hard = restored_limit
    if hard == resource.RLIM_INFINITY:  # no ceiling: any cap fits
        assert raise_open_file_limit(1_000_000) == 1_000_000
        return
    fitting = raise_open_file_limit(hard * 2)
    assert fitting == max(16, hard - FD_RESERVE) and resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
