"""Shares of the verification pool: no registry host, no store and not the wildcard-reached hosts together
can hold more than their share of the threads, so a slow registry never starves the others.

A verification job holds its thread for as long as its registry takes (up to the job budget). Anyone who
can create a Pod chooses image names, hence registry hosts and ports: left to one shared queue, names that
drip one byte per second take every thread and a named registry's image answers TIMEOUT. Jobs are
therefore admitted by lane — the store that serves the image and the registry host (whatever its port or
addresses) — against four caps: the pool (`total`), each host (`total // 4`), all hosts no store names
together (`total // 2`) and each store when there are several (`total - total // 4`). A job over a cap
waits in the partition's own queue, not on a thread; a job that waited longer than its budget, or finds its
lane's queue full, is answered without running (the caller has long been answered TIMEOUT).

A host a store names may borrow idle threads beyond its quarter, as much as it has earned by keeping up:
each of its jobs that finishes within `STALLED` seconds earns it one more thread, up to all but a quarter
of the pool (the quarter is always left for the other hosts). One job that took longer takes back
everything the host had earned, and while any of its running jobs is older than `STALLED` the host gets
only its quarter. A registry that drips bytes never finishes a job in time, so it never borrows; a fast
registry with a cold batch of images soon runs on most of the pool. Hosts reached through a wildcard never
borrow: names and ports cost an attacker nothing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

# A job, or a fetch, in flight this long (seconds) counts as slow: its host borrows no threads, its address
# makes no fetch wait for a slot. (Here rather than in provider.stores.fetch, which imports this module.)
STALLED = 1.0
# Jobs one host (or the wildcard-reached hosts together) may have waiting, per thread of the pool.
WAITING_PER_THREAD = 4


@dataclass(frozen=True)
class Lane:
    """Where a job's time goes: the store serving the image and the registry host (no port; "" for a store
    that reads no network, such as a directory), and whether that host is reached only through a wildcard."""

    store: int
    host: str
    wildcard: bool


@dataclass(frozen=True)
class Shares:
    total: int
    per_host: int
    wildcard: int
    per_store: int

    @classmethod
    def of(cls, total: int, stores: int) -> Shares:
        total = max(1, total)
        quarter = max(1, total // 4)
        return cls(total=total, per_host=quarter, wildcard=max(1, total // 2),
                   per_store=max(1, total - quarter) if stores > 1 else total)

    @property
    def ceiling(self) -> int:
        """The most jobs one named host may run, earned threads included: all but a quarter of the pool."""
        return max(self.per_host, self.total - self.per_host)


@dataclass
class _Waiting:
    lane: Lane
    run: Callable[[], Any]
    expire: Callable[[], Any]
    future: Future[Any]
    since: float
    started: float = 0.0


class Capacity:
    """Admits jobs onto `pool` by lane; `submit` returns at once with the job's future."""

    def __init__(self, pool: ThreadPoolExecutor, shares: Shares, max_wait: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = pool
        self.shares = shares
        self.max_wait = max_wait
        self._clock = clock
        self._running = 0
        self._hosts: Counter[str] = Counter()
        self._stores: Counter[int] = Counter()
        self._wildcard = 0
        self._waiting: deque[_Waiting] = deque()
        self._queued: Counter[str] = Counter()  # waiting jobs by host ("*" for the wildcard lane)
        # Named hosts only (no more than the stores name): a host is dropped from each when it has no running
        # job, or nothing earned.
        self._started: dict[str, list[float]] = {}  # start times of a host's running jobs
        self._earned: dict[str, int] = {}  # threads a host may run beyond its share
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, lane: Lane, run: Callable[[], Any], expire: Callable[[], Any]) -> Future[Any] | None:
        """Run `run` when the lane's share allows; `expire` answers instead when the job waited too long.
        None when the lane already has its fill of waiting jobs (or the pool is closed): not taken at all."""
        entry = _Waiting(lane, run, expire, Future(), since=self._clock())
        with self._lock:
            if self._closed:
                return None
            if self._fits(lane):
                self._start(entry)
                return entry.future
            queue = self._queue_key(lane)
            if self._queued[queue] >= self.shares.total * WAITING_PER_THREAD:
                return None
            self._queued[queue] += 1
            self._waiting.append(entry)
            return entry.future

    def close(self) -> None:
        """Stop admitting: jobs still waiting are answered by their `expire`."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = list(self._waiting), deque()
            self._queued.clear()
        for entry in waiting:
            self._finish(entry.future, entry.expire)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def running(self, host: str) -> int:
        with self._lock:
            return self._hosts[host]

    def earned(self, host: str) -> int:
        """Threads `host` has earned beyond its share (it runs them only while none of its jobs is stalled)."""
        with self._lock:
            return self._earned.get(host, 0)

    # --- bookkeeping (under the lock) ------------------------------------------------------------------

    def _queue_key(self, lane: Lane) -> str:
        return "*" if lane.wildcard else lane.host

    @staticmethod
    def _borrows(lane: Lane) -> bool:
        return bool(lane.host) and not lane.wildcard

    def _fits(self, lane: Lane) -> bool:
        shares = self.shares
        return (self._running < shares.total and (not lane.host or self._hosts[lane.host] < self._host_cap(lane))
                and self._stores[lane.store] < shares.per_store
                and (not lane.wildcard or self._wildcard < shares.wildcard))

    def _host_cap(self, lane: Lane) -> int:
        """The host's share, plus what it has earned unless one of its running jobs is stalled."""
        share = self.shares.per_host
        if not self._borrows(lane):
            return share
        started = self._started.get(lane.host)  # oldest first
        if started and self._clock() - started[0] > STALLED:
            return share
        return share + self._earned.get(lane.host, 0)

    def _start(self, entry: _Waiting) -> None:
        lane = entry.lane
        self._running += 1
        self._hosts[lane.host] += 1
        self._stores[lane.store] += 1
        self._wildcard += lane.wildcard
        entry.started = self._clock()
        if self._borrows(lane):
            self._started.setdefault(lane.host, []).append(entry.started)
        self.pool.submit(self._run, entry)

    def _run(self, entry: _Waiting) -> None:
        try:
            self._finish(entry.future, entry.run)
        finally:
            self._release(entry)

    def _release(self, done: _Waiting) -> None:
        lane = done.lane
        expired = []
        with self._lock:
            self._running -= 1
            self._hosts[lane.host] -= 1
            if not self._hosts[lane.host]:
                del self._hosts[lane.host]
            self._stores[lane.store] -= 1
            self._wildcard -= lane.wildcard
            now = self._clock()
            if self._borrows(lane):
                self._settle(lane.host, done.started, now)
            kept: deque[_Waiting] = deque()
            full: set[Lane] = set()  # lanes that did not fit: starting others only fills the pool further
            for entry in self._waiting:
                if now - entry.since > self.max_wait:
                    expired.append(entry)
                elif not self._closed and entry.lane not in full and self._fits(entry.lane):
                    self._start(entry)
                else:
                    full.add(entry.lane)
                    kept.append(entry)
                    continue
                self._queued[self._queue_key(entry.lane)] -= 1
            self._waiting = kept
        for entry in expired:
            self._finish(entry.future, entry.expire)

    def _settle(self, host: str, started: float, now: float) -> None:
        """A named host's job ended: in time, it earns the host one more thread (up to the ceiling); late, it
        takes back all the host had earned."""
        running = self._started[host]
        running.remove(started)
        if not running:
            del self._started[host]
        earned = 0
        if now - started <= STALLED:
            earned = min(self._earned.get(host, 0) + 1, self.shares.ceiling - self.shares.per_host)
        if earned:
            self._earned[host] = earned
        else:
            self._earned.pop(host, None)

    @staticmethod
    def _finish(future: Future[Any], call: Callable[[], Any]) -> None:
        try:
            future.set_result(call())
        except BaseException as exc:  # handed to whoever waits on the future
            future.set_exception(exc)
