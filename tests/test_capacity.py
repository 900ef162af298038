"""Shares of the verification pool: a host, the wildcard-reached hosts and a store each hold at most their
share of threads, and the rest keeps running. Jobs block on events: nothing here depends on timing (the
`timeout`s only keep a broken run from hanging)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from provider.capacity import WAITING_PER_THREAD, Capacity, Lane, Shares

HANG_GUARD = 30


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=8)
    yield executor
    executor.shutdown(wait=False, cancel_futures=True)


def blocked(release: threading.Event, started: list[str], name: str) -> object:
    def run() -> str:
        started.append(name)
        release.wait(HANG_GUARD)
        return name
    return run


def test_shares_of_a_pool() -> None:
    assert Shares.of(32, 1) == Shares(total=32, per_host=8, wildcard=16, per_store=32)
    assert Shares.of(32, 3) == Shares(total=32, per_host=8, wildcard=16, per_store=24)
    assert Shares.of(1, 2) == Shares(total=1, per_host=1, wildcard=1, per_store=1)


def test_one_host_on_many_ports_holds_only_its_share(pool: ThreadPoolExecutor) -> None:
    capacity = Capacity(pool, Shares.of(8, 1), max_wait=3600)
    release, started = threading.Event(), []
    try:
        # The lane is the host, whatever port an image names: 12 names on 4 ports are one host's jobs.
        futures = [capacity.submit(Lane(0, "127.0.0.2", wildcard=False), blocked(release, started, f"drip{i}"),
                                   lambda: "expired") for i in range(12)]
        assert capacity.running("127.0.0.2") == 2 and capacity.waiting == 10
        other = capacity.submit(Lane(0, "registry.example", wildcard=False), lambda: "verified", lambda: "expired")
        assert other is not None and other.result(HANG_GUARD) == "verified"
    finally:
        release.set()
    assert sorted(f.result(HANG_GUARD) for f in futures if f is not None) == sorted(f"drip{i}" for i in range(12))


def test_wildcard_hosts_together_hold_only_their_share(pool: ThreadPoolExecutor) -> None:
    capacity = Capacity(pool, Shares.of(8, 1), max_wait=3600)
    release, started = threading.Event(), []
    try:
        for i in range(6):  # names cost nothing: six hosts, one job each
            capacity.submit(Lane(0, f"h{i}.attacker.example", wildcard=True), blocked(release, started, str(i)),
                            lambda: "expired")
        assert len(started) <= 4 and capacity.waiting == 2
        named = capacity.submit(Lane(0, "registry.example", wildcard=False), lambda: "verified", lambda: "expired")
        assert named is not None and named.result(HANG_GUARD) == "verified"
    finally:
        release.set()


def test_a_store_holds_only_its_share_when_there_are_several(pool: ThreadPoolExecutor) -> None:
    capacity = Capacity(pool, Shares.of(8, 2), max_wait=3600)
    release, started = threading.Event(), []
    try:
        for i in range(8):
            capacity.submit(Lane(0, f"h{i}.example", wildcard=False), blocked(release, started, str(i)),
                            lambda: "expired")
        assert capacity.waiting == 2  # 6 of 8 threads for store 0
        other = capacity.submit(Lane(1, "layouts", wildcard=False), lambda: "verified", lambda: "expired")
        assert other is not None and other.result(HANG_GUARD) == "verified"
    finally:
        release.set()


def test_waiting_past_the_budget_or_a_full_queue_answers_without_running(pool: ThreadPoolExecutor) -> None:
    capacity = Capacity(pool, Shares.of(4, 1), max_wait=0.0)
    release, started = threading.Event(), []
    lane = Lane(0, "slow.example", wildcard=False)
    holder = capacity.submit(lane, blocked(release, started, "holder"), lambda: "expired")
    waiting = [capacity.submit(lane, blocked(release, started, f"w{i}"), lambda: "expired")
               for i in range(4 * WAITING_PER_THREAD)]
    assert all(f is not None for f in waiting)
    assert capacity.submit(lane, blocked(release, started, "over"), lambda: "expired") is None  # queue full
    release.set()
    assert holder is not None and holder.result(HANG_GUARD) == "holder"
    assert {f.result(HANG_GUARD) for f in waiting if f is not None} == {"expired"}  # waited past max_wait
    assert started == ["holder"]


def test_close_answers_the_waiting_jobs(pool: ThreadPoolExecutor) -> None:
    capacity = Capacity(pool, Shares.of(4, 1), max_wait=3600)
    release, started = threading.Event(), []
    lane = Lane(0, "slow.example", wildcard=False)
    capacity.submit(lane, blocked(release, started, "holder"), lambda: "expired")
    queued = capacity.submit(lane, blocked(release, started, "queued"), lambda: "expired")
    capacity.close()
    assert queued is not None and queued.result(HANG_GUARD) == "expired"
    assert capacity.submit(lane, lambda: "late", lambda: "expired") is None
    release.set()
