"""Fetching revocation sources (CRL distribution points, OCSP responders) for notation chains.

The URLs come from certificates, so whoever issued them chooses where the provider connects: every fetch goes
through the egress policy it is handed (the store's, for signer-chosen URLs), under the job's deadline as well
as its own per-URL timeout. A certificate's sources are fetched side by side, so several slow ones cost one
wait, not their sum. A source that could not be reached is remembered for `UNREACHABLE_TTL` seconds, so an
image whose result expires soon after does not wait for it again. Why a fetch failed (the remote's status,
its text, a refused connection) is logged, never returned: the facts only say "revocation status
unavailable", so admission messages cannot be used to probe what answers where.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from cachetools import TTLCache

from provider.errors import ErrorCode, ItemError
from provider.stores.egress import EgressPolicy
from provider.stores.fetch import Fetched, Outbound, Saturated

log = logging.getLogger("sigwarden.revocation")

UNAVAILABLE = "revocation status unavailable"
# How long a source that could not be reached is not asked again.
UNREACHABLE_TTL = 30.0
MAX_UNREACHABLE = 1024
# Sources of one kind a certificate may name; one naming more is "unknown" without any fetch.
MAX_SOURCES = 8
# Longer URLs are not fetched (they would also be cache keys).
MAX_URL_CHARS = 2048
# Revocation fetches in flight at once per process, across all verifications; more wait (under their deadline).
# With MAX_CRL_BYTES each, this bounds the CRL bodies held at once to 160 MiB.
FETCH_THREADS = 16

T = TypeVar("T")


class SourceUnavailable(ValueError):
    """A revocation source could not be fetched; the message is the category, never the remote's words."""


# One pool per process: engines replaced by a config reload leave no idle threads behind.
_POOL = ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="sigwarden-revocation")


class Sources:
    """The fetcher: the process's revocation threads and a short memory of unreachable sources."""

    def __init__(self) -> None:
        self._pool = _POOL
        self._unreachable: TTLCache[tuple[str, EgressPolicy], bool] = TTLCache(MAX_UNREACHABLE, UNREACHABLE_TTL)
        self._lock = threading.Lock()

    def start(self, calls: Sequence[Callable[[], T]]) -> list[Future[T]]:
        """Start every call at once; a call still queued at its deadline fails at its first fetch."""
        return [self._pool.submit(call) for call in calls]

    def fetch(self, outbound: Outbound, method: str, url: str, timeout: float, deadline: float, max_bytes: int,
              what: str, source: str = "", **kwargs: Any) -> Fetched:
        """One source (`source` names it when the URL carries a request): a 2xx answer, else SourceUnavailable."""
        key = (source or url, outbound.policy)
        with self._lock:
            if key in self._unreachable:
                raise SourceUnavailable(f"{what}: {UNAVAILABLE}")
        if len(source or url) > MAX_URL_CHARS:
            raise SourceUnavailable(f"{what[:80]}…: {UNAVAILABLE} (URL over {MAX_URL_CHARS} characters)")
        own = time.monotonic() + timeout
        try:
            fetched = outbound.fetch(method, url, min(own, deadline), max_bytes, what=what, **kwargs)
        except ItemError as exc:
            # Cut short by the job's deadline rather than the source's own timeout, or turned away because other
            # fetches hold the concurrency limits: that says nothing about the source.
            if not isinstance(exc, Saturated) and not (exc.code == ErrorCode.TIMEOUT and deadline < own):
                self._remember(key)
            log.info("%s could not be fetched: %s", what, exc.message)
            raise SourceUnavailable(f"{what}: {UNAVAILABLE}") from None
        if not 200 <= fetched.status < 300:
            self._remember(key)
            log.info("%s answered HTTP %d", what, fetched.status)
            raise SourceUnavailable(f"{what}: {UNAVAILABLE}")
        return fetched

    def _remember(self, key: tuple[str, EgressPolicy]) -> None:
        with self._lock:
            self._unreachable[key] = True


def wait_for(future: Future[T], deadline: float) -> T:
    """The future's result, or SourceUnavailable when it is not ready by the deadline."""
    try:
        return future.result(timeout=max(deadline - time.monotonic(), 0.0))
    except TimeoutError:
        raise SourceUnavailable(UNAVAILABLE) from None
