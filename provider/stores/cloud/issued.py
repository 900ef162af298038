"""Cloud-issued registry credentials: what an identity hands out, and the cache that holds it until shortly
before it expires, refreshing in the background so a request rarely waits for a token service."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from provider.config import Credentials
from provider.errors import ErrorCode, ItemError
from provider.metrics import Metrics

# Renew this long before the reported expiry (or a quarter of the lifetime, when that is shorter).
REFRESH_MARGIN = 300.0
# A background refresh gets this long; a request that has to wait uses its own deadline instead.
REFRESH_BUDGET = 30.0


class CloudIdentityError(ItemError):
    """The cloud refused or could not issue a credential; the message is one line without secrets. A refusal
    is UNAUTHORIZED; a token service that could not be reached keeps its fetch's code (TIMEOUT,
    REGISTRY_UNAVAILABLE), as a registry that cannot be reached does."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.UNAUTHORIZED) -> None:
        super().__init__(code, message)


@dataclass(frozen=True)
class Issued:
    credentials: Credentials
    expires_at: float  # wall clock (seconds since the epoch), as the cloud reported it


class CloudIdentity(Protocol):
    provider: str

    def describe(self) -> str:
        """Which identity this will use, for `config check` (no secrets)."""

    def issue(self, host: str, deadline: float) -> Issued:
        """A credential for registry `host`, fetched before `deadline` (monotonic); raises ItemError."""


@dataclass
class _Entry:
    issued: Issued
    refresh_at: float  # wall clock
    refreshing: bool = False


@dataclass
class CredentialCache:
    """Issued credentials by registry host. A credential is reused until shortly before its expiry; past
    its refresh point (and still valid) it is served while one background thread fetches the next one. A
    credential whose reported expiry has already passed (clock skew, an emulator) serves the request that
    fetched it and is not kept: skew costs extra token requests, never failures."""

    identity: CloudIdentity
    metrics: Metrics | None = None
    clock: Callable[[], float] = time.time  # the wall clock expiries are reported in
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _flights: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    last_error: str = ""

    def get(self, host: str, deadline: float) -> Credentials:
        now = self.clock()
        with self._lock:
            entry = self._entries.get(host)
            if entry is not None and now >= entry.issued.expires_at:
                del self._entries[host]
                entry = None
            if entry is not None and now >= entry.refresh_at and not entry.refreshing:
                entry.refreshing = True
                threading.Thread(target=self._refresh, args=(host,), name="sigwarden-cloud-refresh",
                                 daemon=True).start()
        if entry is not None:
            return entry.issued.credentials
        # One token request per host at a time: the others wait for it (within their deadline), then reuse it.
        with self._lock:
            flight = self._flights.setdefault(host, threading.Lock())
        if not flight.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise ItemError(ErrorCode.TIMEOUT, f"{self.identity.provider} identity for {host}: the token request "
                                               "in flight did not finish in time")
        try:
            with self._lock:
                entry = self._entries.get(host)
            if entry is not None and self.clock() < entry.issued.expires_at:
                return entry.issued.credentials
            return self._issue(host, deadline, "failed").credentials
        finally:
            flight.release()

    def _issue(self, host: str, deadline: float, failure: str) -> Issued:
        try:
            issued = self.identity.issue(host, deadline)
        except ItemError as exc:
            self.last_error = exc.message
            self._count(failure)
            raise
        self._count("issued")
        self.last_error = ""
        now = self.clock()
        lifetime = issued.expires_at - now
        if lifetime > 0:
            refresh_at = issued.expires_at - min(REFRESH_MARGIN, lifetime / 4)
            with self._lock:
                self._entries[host] = _Entry(issued, refresh_at)
        return issued

    def _refresh(self, host: str) -> None:
        try:
            self._issue(host, time.monotonic() + REFRESH_BUDGET, "refresh_failed")
        except ItemError:
            with self._lock:  # keep serving the old credential while it lasts; try again on the next use
                entry = self._entries.get(host)
                if entry is not None:
                    entry.refreshing = False

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.cloud_credentials.labels(self.identity.provider, result).inc()
