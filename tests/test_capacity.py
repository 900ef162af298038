"""Shares of the verification pool: a host, the wildcard-reached hosts and a store each hold at most their
share of threads, and the rest keeps running; a named host that keeps up borrows idle threads. Jobs block on
events or on a pool the test plays, and time is a clock the test moves: nothing here depends on timing (the
`timeout`s only keep a broken run from hanging)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from provider.capacity import STALLED, WAITING_PER_THREAD, Capacity, Lane, Shares
from tests.helpers import ManualClock

HANG_GUARD = 30


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=8)
    yield executor
    executor.shutdown(wait=False, cancel_futures=True)


class HeldPool(ThreadPoolExecutor):
    """A pool whose threads the test plays: an admitted job is held (running, for the capacity) until the
    test finishes it, in the test's own thread."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.held: list[Callable[[], Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.held.append(functools.partial(fn, *args, **kwargs))
        return Future()

    def finish(self, count: int = 1) -> None:
        """The `count` oldest held jobs end now."""
        for _ in range(count):
            self.held.pop(0)()


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
    assert (Shares.of(32, 1).ceiling, Shares.of(8, 1).ceiling, Shares.of(1, 1).ceiling) == (24, 6, 1)


def test_one_host_on_many_ports_holds_only_its_share(pool: ThreadPoolExecutor) -> None:
    capacity = Capacity(pool, Shares.of(8, 1), max_wait=3600)
    release, started = threading.Event(), []
    try:
        # The lane is the host, whatever port an image names: 12 names on 4 ports are one host's jobs. They
        # never finish (a drip), so the host earns no threads beyond its share.
        futures = [capacity.submit(Lane(0, "127.0.0.2", wildcard=False), blocked(release, started, f"drip{i}"),
                                   lambda: "expired") for i in range(12)]
        assert capacity.running("127.0.0.2") == 2 and capacity.waiting == 10
        assert capacity.earned("127.0.0.2") == 0
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


def held_jobs(count: int, host: str = "registry.example", wildcard: bool = False) -> tuple[
        HeldPool, ManualClock, Capacity, Lane, list[Future[Any] | None]]:
    """`count` jobs of one host on a pool of 8 whose threads finish only when the test says, on a clock that
    moves only when the test moves it."""
    pool, clock = HeldPool(), ManualClock()
    capacity = Capacity(pool, Shares.of(8, 1), max_wait=3600, clock=clock)
    lane = Lane(0, host, wildcard=wildcard)
    futures = [capacity.submit(lane, functools.partial(str, i), lambda: "expired") for i in range(count)]
    return pool, clock, capacity, lane, futures


def test_a_fast_named_host_earns_a_thread_per_job_up_to_all_but_a_quarter() -> None:
    pool, _, capacity, _, futures = held_jobs(20)
    running = [capacity.running("registry.example")]
    for _ in range(8):
        pool.finish()  # in time: the clock does not move
        running.append(capacity.running("registry.example"))
    assert running == [2, 3, 4, 5, 6, 6, 6, 6, 6]  # 6 of 8: a quarter stays for the other hosts
    assert capacity.earned("registry.example") == 4
    other = capacity.submit(Lane(0, "other.example", wildcard=False), lambda: "verified", lambda: "expired")
    assert other is not None and capacity.running("other.example") == 1
    while pool.held:
        pool.finish()
    assert [f.result(0) for f in futures if f is not None] == [str(i) for i in range(20)]
    assert other.result(0) == "verified"


def test_a_host_with_a_stalled_job_borrows_nothing() -> None:
    pool, clock, capacity, lane, _ = held_jobs(3)
    pool.finish(2)  # two jobs in time: two threads earned
    assert capacity.earned("registry.example") == 2 and capacity.running("registry.example") == 1
    clock.now += STALLED + 0.5  # the job still running is stalled now
    for i in range(4):
        capacity.submit(lane, functools.partial(str, i), lambda: "expired")
    assert capacity.running("registry.example") == 2 and capacity.waiting == 3  # its share, not 2 + 2
    assert capacity.earned("registry.example") == 2


def test_a_late_job_takes_back_what_its_host_earned() -> None:
    pool, clock, capacity, _, _ = held_jobs(12)
    pool.finish(2)
    assert capacity.earned("registry.example") == 2 and capacity.running("registry.example") == 4
    clock.now += STALLED + 0.5  # the four running jobs end late
    seen = []
    for _ in range(5):
        pool.finish()
        seen.append((capacity.running("registry.example"), capacity.earned("registry.example")))
    # Late: back to the share (2), refilled only once no stalled job runs; the first job in time earns again.
    assert seen == [(3, 0), (2, 0), (2, 0), (2, 0), (3, 1)]
    clock.now += STALLED + 0.5
    while pool.held:
        pool.finish()
        clock.now += STALLED + 0.5  # every job ends late
    assert capacity.running("registry.example") == capacity.earned("registry.example") == 0
    assert not capacity._started and not capacity._earned  # nothing kept for a host with nothing to keep


def test_a_wildcard_host_never_borrows() -> None:
    pool, _, capacity, _, _ = held_jobs(12, "fast.attacker.example", wildcard=True)
    running = []
    for _ in range(10):
        pool.finish()  # every job in time
        running.append(capacity.running("fast.attacker.example"))
    assert running == [2] * 10 and capacity.earned("fast.attacker.example") == 0


def test_waiting_jobs_start_on_threads_as_the_allowance_grows(pool: ThreadPoolExecutor) -> None:
    capacity = Capacity(pool, Shares.of(8, 1), max_wait=3600, clock=ManualClock())  # every job ends in time
    lane = Lane(0, "registry.example", wildcard=False)
    started = [threading.Event() for _ in range(8)]
    release = [threading.Event() for _ in range(8)]

    def job(i: int) -> int:
        started[i].set()
        release[i].wait(HANG_GUARD)
        return i

    futures = [capacity.submit(lane, functools.partial(job, i), lambda: "expired") for i in range(8)]
    try:
        assert started[0].wait(HANG_GUARD) and started[1].wait(HANG_GUARD)
        release[0].set()  # one thread earned: its own and one more go to waiting jobs
        assert started[2].wait(HANG_GUARD) and started[3].wait(HANG_GUARD)
        release[1].set()
        assert started[4].wait(HANG_GUARD) and started[5].wait(HANG_GUARD)
        assert capacity.running("registry.example") == 4 and capacity.waiting == 2
    finally:
        for event in release:
            event.set()
    assert [f.result(HANG_GUARD) for f in futures if f is not None] == list(range(8))
