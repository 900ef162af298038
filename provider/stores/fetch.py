"""The one way sigwarden fetches over the network: egress-checked, concurrency-limited, under a total deadline.

Registries, token services, lookaside stores, CRL distribution points and timestamp services are all
reached through `Outbound.fetch`. A fetch never outlives its deadline: socket timeouts bound each wait,
and a watchdog shuts the socket down when the wall-clock budget is spent, so a server that drips one byte
per second (headers, TLS handshake or body) frees its thread on time.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar, get_cookie_header
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.response import BaseHTTPResponse
from urllib3.util import Timeout

from provider.capacity import STALLED  # a server whose oldest fetch is this old is slow: no waiting for it
from provider.errors import ErrorCode, ItemError
from provider.metrics import Metrics
from provider.stores.egress import AddrInfo, EgressPolicy, EgressRefused, ResolutionFailed

USER_AGENT = "sigwarden"
CONNECT_TIMEOUT = 5.0
MAX_PENDING_LOOKUPS = 256
# How long (seconds) a name's resolved addresses are reused, and for how many names at most.
ADDRESS_TTL = 5.0
MAX_KEPT_ANSWERS = 1024
MAX_KEPT_POOLS = 64
# URLs sent as they are, without requests' requoting and IDNA encoding: what sigwarden builds from parsed
# references always is; a URL from signed material (a CRL distribution point) may not be.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*(\?[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*)?")


class FetchFailed(ItemError):
    """The connection failed (refused, reset); worth a retry, unlike a TIMEOUT or an egress refusal."""


class Saturated(ItemError):
    """Too many fetches to one address (or through wildcard stores) are already in flight."""


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes
    headers: Mapping[str, str]  # case-insensitive
    url: str


# --- the watchdog: shuts sockets down when their fetch's budget is spent ----------------------------------

class _Scope:
    """One fetch's budget and the connections it used."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.connections: set[_Guarded] = set()
        self.expired = False
        self.done = False
        self.lock = threading.Lock()

    def attach(self, connection: _Guarded) -> None:
        with self.lock:
            if self.expired:
                connection.abort()
            self.connections.add(connection)

    def expire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.expired = True
            connections, self.connections = self.connections, set()
        for connection in connections:
            connection.abort()


class _Watchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Scope]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._local = threading.local()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> _Scope | None:
        return getattr(self._local, "scope", None)

    @contextlib.contextmanager
    def scope(self, deadline: float) -> Iterator[_Scope]:
        scope = _Scope(deadline)
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sigwarden-fetch-watchdog", daemon=True)
                self._thread.start()
            # Woken only when this deadline comes before the one it sleeps towards: a wake-up per fetch would
            # cost a thread switch each time, and the earlier deadline's wake-up finds this one anyway.
            if not self._heap or deadline < self._heap[0][0]:
                self._wake.notify()
            heapq.heappush(self._heap, (deadline, next(self._counter), scope))
        self._local.scope = scope
        try:
            yield scope
        finally:
            self._local.scope = None
            with scope.lock:
                scope.done = True
                scope.connections.clear()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._wake.wait(wait)
                    continue
                _, _, scope = heapq.heappop(self._heap)
            scope.expire()


WATCHDOG = _Watchdog()


class _Lookups:
    """Name resolution under the fetch's deadline. getaddrinfo cannot be interrupted, so a slow lookup
    runs on its own thread and is abandoned at the deadline (its thread ends when the resolver gives up);
    a bounded number may be pending, so slow DNS cannot pile up threads either.

    A name's answer is kept `ttl` seconds (per resolver, name and port), so fetches to a named registry do not
    each start a thread and ask DNS again. What is kept is the resolver's answer, never the decision: the
    policy checks it on every use, and a connection goes only to an address of the answer just checked. A
    name that rebinds changes where connections go once the kept answer expires, and the new answer is
    checked like the first."""

    def __init__(self, limit: int = MAX_PENDING_LOOKUPS, ttl: float = ADDRESS_TTL) -> None:
        self.limit = limit
        self.ttl = ttl
        self._pending = 0
        self._answers: dict[tuple[object, str, int], tuple[float, list[AddrInfo]]] = {}
        self._lock = threading.Lock()

    def resolve(self, policy: EgressPolicy, host: str, port: int, deadline: float) -> list[AddrInfo]:
        """The addresses of `host` the policy allows; raises EgressRefused, ResolutionFailed or ItemError."""
        return policy.check(host, port, self._lookup(policy, host, port, deadline))

    def _lookup(self, policy: EgressPolicy, host: str, port: int, deadline: float) -> list[AddrInfo]:
        try:
            ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
            return policy.lookup(host, port)  # a literal address: no lookup, nothing to wait for
        except ValueError:
            pass
        key = (policy.resolver, host, port)
        with self._lock:
            kept = self._answers.get(key)
            if kept is not None and kept[0] > time.monotonic():
                return kept[1]
            if self._pending >= self.limit:
                raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"{self.limit} name lookups are already pending; "
                                                                f"not resolving {host}")
            self._pending += 1
        outcome: dict[str, Any] = {}

        def lookup() -> None:
            try:
                outcome["addresses"] = policy.lookup(host, port)
            except BaseException as exc:  # handed to the waiting fetch
                outcome["error"] = exc
            finally:
                with self._lock:
                    self._pending -= 1

        thread = threading.Thread(target=lookup, name="sigwarden-lookup", daemon=True)
        thread.start()
        thread.join(max(deadline - time.monotonic(), 0.0))
        if thread.is_alive():
            raise ItemError(ErrorCode.TIMEOUT, f"resolving {host} did not finish in time")
        if "error" in outcome:
            raise outcome["error"]  # failures are not kept: the next fetch asks again
        addresses: list[AddrInfo] = outcome["addresses"]
        if self.ttl > 0:
            self._keep(key, addresses)
        return addresses

    def _keep(self, key: tuple[object, str, int], addresses: list[AddrInfo]) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._answers) >= MAX_KEPT_ANSWERS:
                self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
                if len(self._answers) >= MAX_KEPT_ANSWERS:
                    self._answers.clear()  # names invented faster than they expire: back to asking DNS
            self._answers[key] = (now + self.ttl, addresses)


LOOKUPS = _Lookups()


# --- connections that check the egress policy on the address they connect to --------------------------------

class _Guarded(HTTPConnection):
    """Resolves, checks every address against the policy, connects only to an allowed one."""

    policy: EgressPolicy = EgressPolicy()
    _watch: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        scope = WATCHDOG.current
        deadline = scope.deadline if scope is not None else time.monotonic() + CONNECT_TIMEOUT
        # Raises EgressRefused before any connection when an address is not allowed.
        addresses = LOOKUPS.resolve(self.policy, self._dns_host, self.port, deadline)
        last: OSError | None = None
        for family, socktype, proto, _, address in addresses:
            sock = socket.socket(family, socktype, proto)
            try:
                sock.settimeout(self.timeout if isinstance(self.timeout, int | float) else CONNECT_TIMEOUT)
                sock.connect(address)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A second descriptor for the watchdog: TLS wrapping detaches the original socket object.
            self._watch = socket.socket(fileno=os.dup(sock.fileno()))
            if scope is not None:
                scope.attach(self)
            return sock
        if isinstance(last, TimeoutError):
            raise ConnectTimeoutError(self, f"connecting to {self.host}:{self.port} timed out")
        raise NewConnectionError(self, f"cannot connect to {self.host}:{self.port}: "
                                       f"{getattr(last, 'strerror', None) or last}")

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        scope = WATCHDOG.current
        if scope is not None and self._watch is not None:
            scope.attach(self)  # a pooled connection serves this fetch now
        super().request(*args, **kwargs)

    def abort(self) -> None:
        """Unblock whatever thread is reading or writing this connection (called by the watchdog)."""
        watch = self._watch
        if watch is not None:
            with contextlib.suppress(OSError):
                watch.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        super().close()
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()


def _pool_classes(policy: EgressPolicy) -> dict[str, type[HTTPConnectionPool]]:
    plain = type("GuardedHTTPConnection", (_Guarded,), {"policy": policy})
    tls = type("GuardedHTTPSConnection", (_Guarded, HTTPSConnection), {"policy": policy})
    return {"http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": plain}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": tls})}


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: EgressPolicy, pool_size: int) -> None:
        self._pools = _pool_classes(policy)
        super().__init__(pool_connections=8, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools  # type: ignore[assignment]


# --- concurrency limits ------------------------------------------------------------------------------------

class ConcurrencyLimits:
    """At most `per_address` fetches in flight to one resolved address and port, and at most `wildcard`
    in flight to hosts no store names explicitly (an attacker can invent any number of names and ports).

    A fetch that finds the limit reached waits while the fetches holding it make progress (a healthy
    registry frees slots within milliseconds); once the oldest of them has been in flight for `STALLED`
    seconds the server counts as slow, and waiting stops: the item answers at once, so fetches for a
    slow server never pile up on the verification threads.
    """

    def __init__(self, per_address: int, wildcard: int) -> None:
        self.per_address = per_address
        self.wildcard = wildcard
        self._started: dict[str, list[float]] = {}  # address → start times of the fetches in flight
        self._wildcard_started: list[float] = []
        self._free = threading.Condition()

    @contextlib.contextmanager
    def slot(self, address: str, wildcard: bool, deadline: float) -> Iterator[None]:
        with self._free:
            while True:
                holders = self._holders(address, wildcard)
                if holders is None:
                    break
                now = time.monotonic()
                give_up = min(deadline, min(holders) + STALLED)
                if now >= give_up:
                    raise Saturated(ErrorCode.REGISTRY_UNAVAILABLE, self._saturated(address, wildcard))
                self._free.wait(give_up - now)
            started = time.monotonic()
            self._started.setdefault(address, []).append(started)
            if wildcard:
                self._wildcard_started.append(started)
        try:
            yield
        finally:
            with self._free:
                running = self._started[address]
                running.remove(started)
                if not running:
                    del self._started[address]
                if wildcard:
                    self._wildcard_started.remove(started)
                self._free.notify_all()

    def _holders(self, address: str, wildcard: bool) -> list[float] | None:
        """Start times of the fetches holding the limit this one is waiting on; None when a slot is free."""
        running = self._started.get(address, [])
        if len(running) >= self.per_address:
            return running
        if wildcard and len(self._wildcard_started) >= self.wildcard:
            return self._wildcard_started
        return None

    def _saturated(self, address: str, wildcard: bool) -> str:
        if len(self._started.get(address, [])) >= self.per_address:
            return (f"{self.per_address} fetches to {address} are in flight and not finishing "
                    "(concurrencyPerAddress); that server is slow, other registries are unaffected")
        return (f"{self.wildcard} fetches to hosts reached through a wildcard store are in flight and not "
                "finishing (concurrencyWildcard)")


# --- the fetch ---------------------------------------------------------------------------------------------

class Outbound:
    """An HTTP client bound to one egress policy and one set of concurrency limits."""

    def __init__(self, policy: EgressPolicy | None = None, limits: ConcurrencyLimits | None = None,
                 ca: str | None = None, metrics: Metrics | None = None, pool_size: int = 32) -> None:
        self.policy = policy or EgressPolicy()
        self.limits = limits or ConcurrencyLimits(32, 64)
        self.metrics = metrics
        self.pool_size = pool_size
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy variables, no .netrc credentials for arbitrary hosts
        self.session.verify = ca or True
        self.session.headers["User-Agent"] = USER_AGENT
        self.adapter = _GuardedAdapter(self.policy, pool_size)
        self._pools: dict[tuple[Any, ...], HTTPConnectionPool] = {}
        self.session.mount("https://", self.adapter)
        self.session.mount("http://", self.adapter)

    def close(self) -> None:
        self.session.close()

    def with_policy(self, policy: EgressPolicy) -> Outbound:
        """A client for another policy that shares this one's concurrency limits, CA and metrics."""
        outbound = Outbound(policy, self.limits, metrics=self.metrics, pool_size=self.pool_size)
        outbound.session.verify = self.session.verify
        return outbound

    def fetch(self, method: str, url: str, deadline: float, max_bytes: int, *, what: str = "",
              headers: Mapping[str, str] | None = None, **kwargs: Any) -> Fetched:
        """One request, no redirects followed; the body is read whole, up to `max_bytes`.

        Raises ItemError: TIMEOUT past the deadline, REGISTRY_UNAVAILABLE for an egress refusal, a
        saturated address, TLS errors or an oversize body, FetchFailed when the connection failed.
        """
        parsed = urlparse(url)
        what = what or parsed.netloc
        host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
        if parsed.scheme not in ("http", "https") or not host:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"{what}: {url!r} is not an http(s) URL")
        if deadline - time.monotonic() <= 0:
            raise self._timeout(what, url)
        try:
            # Checked before any connection; the connection checks again on the address it really uses.
            first = LOOKUPS.resolve(self.policy, host, port, deadline)[0][4]
        except EgressRefused as exc:
            self._count("egress_refused")
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, str(exc)) from None
        except ResolutionFailed as exc:
            self._count("connection_error")
            raise FetchFailed(ErrorCode.REGISTRY_UNAVAILABLE, f"cannot reach {what}: {exc}") from None
        address = f"[{first[0]}]:{port}" if ":" in str(first[0]) else f"{first[0]}:{port}"
        try:
            with self.limits.slot(address, not self.policy.is_explicit(host, port), deadline):
                return self._fetch(method, url, deadline, max_bytes, what, headers, kwargs)
        except Saturated:
            self._count("saturated")
            raise

    def _fetch(self, method: str, url: str, deadline: float, max_bytes: int, what: str,
               headers: Mapping[str, str] | None, kwargs: dict[str, Any]) -> Fetched:
        gauge = self.metrics.outbound_in_flight if self.metrics else None
        if gauge is not None:
            gauge.inc()
        try:
            with WATCHDOG.scope(deadline) as scope:
                try:
                    raw, body = self._exchange(method, url, deadline, max_bytes, headers, kwargs)
                except EgressRefused as exc:
                    self._count("egress_refused")
                    raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, str(exc)) from None
                except (requests.exceptions.SSLError, urllib3.exceptions.SSLError) as exc:
                    if scope.expired:
                        raise self._timeout(what, url) from None
                    self._count("tls_error")
                    raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"TLS error talking to {what}: "
                                                                    f"{short_error(exc)}") from None
                except NewConnectionError as exc:  # urllib3 files it under connect timeouts; it is a refusal
                    self._count("connection_error")
                    raise FetchFailed(ErrorCode.REGISTRY_UNAVAILABLE, f"cannot reach {what}: "
                                                                      f"{short_error(exc)}") from None
                except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
                    raise self._timeout(what, url) from None
                except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                    if scope.expired:
                        raise self._timeout(what, url) from None
                    self._count("connection_error")
                    raise FetchFailed(ErrorCode.REGISTRY_UNAVAILABLE, f"cannot reach {what}: "
                                                                      f"{short_error(exc)}") from None
                # A shut-down socket can look like a complete body that ends at the close: never trust it.
                if scope.expired:
                    raise self._timeout(what, url)
        finally:
            if gauge is not None:
                gauge.dec()
        if self.metrics is not None:
            self.metrics.registry_requests.labels(str(raw.status)).inc()
        return Fetched(raw.status, body, raw.headers, url)  # urllib3 keeps them case-insensitive

    def _exchange(self, method: str, url: str, deadline: float, max_bytes: int,
                  headers: Mapping[str, str] | None, kwargs: dict[str, Any]) -> tuple[BaseHTTPResponse, bytes]:
        remaining = max(deadline - time.monotonic(), 0.001)
        timeout = (min(remaining, CONNECT_TIMEOUT), remaining)
        if kwargs or not _PLAIN_URL.fullmatch(url):  # a body, credentials or a URL to requote: the session
            raw = self.session.request(method, url, headers=dict(headers or {}), stream=True, allow_redirects=False,
                                       timeout=timeout, **kwargs).raw
        else:
            raw = self._send(method, url, headers, timeout)
        try:
            body = b"" if method == "HEAD" else _read(raw, url, max_bytes)
        except BaseException:
            raw.close()  # closes the connection too: the server sees it go, the pool never reuses it
            raw.release_conn()
            raise
        raw.release_conn()
        return raw, body

    def _send(self, method: str, url: str, headers: Mapping[str, str] | None,
              timeout: tuple[float, float]) -> BaseHTTPResponse:
        """A request without body or credentials, handed to the urllib3 pool requests would pick for the URL
        and the session's TLS settings: the session's headers and cookies go out, cookies that come back are
        kept. requests' per-call preparation (URL requoting, hooks, response wrapping) would cost as much CPU as
        the exchange itself, and a cold image makes five of these."""
        session = self.session
        merged = CaseInsensitiveDict(session.headers)
        if headers:
            merged.update(headers)
        request = requests.PreparedRequest()
        request.method, request.url, request.headers = method, url, merged
        if session.cookies:  # a registry behind a load balancer that pins clients by cookie
            cookie = get_cookie_header(session.cookies, request)
            if cookie:
                merged["Cookie"] = cookie
        scheme, _, rest = url.partition("://")
        origin, _, path = rest.partition("/")
        raw = self._pool(request, scheme, origin).urlopen(
            method, "/" + path, headers=merged, redirect=False, assert_same_host=False, preload_content=False,
            decode_content=False, retries=False, timeout=Timeout(connect=timeout[0], read=timeout[1]))
        if "Set-Cookie" in raw.headers:
            extract_cookies_to_jar(session.cookies, request, raw)
        return raw

    def _pool(self, request: requests.PreparedRequest, scheme: str, origin: str) -> HTTPConnectionPool:
        """The adapter's pool for the request's origin and the session's TLS settings, remembered while it is
        open (the adapter closes the least recently used of its pools beyond a few)."""
        session = self.session
        key = (scheme, origin, session.verify, session.cert)
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:
            pool = self.adapter.get_connection_with_tls_context(request, session.verify, proxies={},
                                                                cert=session.cert)
            self.adapter.cert_verify(pool, request.url, session.verify, session.cert)
            if len(self._pools) >= MAX_KEPT_POOLS:
                self._pools.clear()
            self._pools[key] = pool
        return pool

    def _timeout(self, what: str, url: str) -> ItemError:
        self._count("timeout")
        return ItemError(ErrorCode.TIMEOUT, f"{what} did not answer in time ({url})")

    def _count(self, status: str) -> None:
        if self.metrics is not None:
            self.metrics.registry_requests.labels(status).inc()


def _read(raw: BaseHTTPResponse, url: str, max_bytes: int) -> bytes:
    try:
        declared = int(raw.headers.get("Content-Length", "-1"))
    except ValueError:
        declared = -1
    if declared > max_bytes:
        raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"{url} is {declared} bytes, over the {max_bytes}-byte limit")
    chunks, total = [], 0
    for chunk in raw.stream(65536, decode_content=True):
        total += len(chunk)
        if total > max_bytes:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"{url} is over the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def short_error(exc: BaseException) -> str:
    """The root cause of a requests error, without urllib3's wrapping ("Connection refused")."""
    inner = _innermost(exc)
    if isinstance(inner, NewConnectionError | ConnectTimeoutError):
        # Our own connection classes word these ("cannot connect to host:port: Connection refused").
        return str(inner).rsplit(": ", 1)[-1][:200]
    text = str(exc)
    cause = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if cause:
        return cause.group(1).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _innermost(exc: BaseException) -> BaseException:
    """Follow requests' and urllib3's wrapping (`args[0]`, `reason`, `__cause__`) to the error that happened."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nested = getattr(exc, "reason", None) or exc.__cause__ or next(
            (arg for arg in exc.args if isinstance(arg, BaseException)), None)
        if not isinstance(nested, BaseException):
            break
        exc = nested
    return exc
