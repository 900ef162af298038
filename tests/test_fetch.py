"""Outbound fetches: the total deadline (connect, TLS handshake, every byte), concurrency limits, token cache."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from provider.errors import ItemError
from provider.stores.auth import TOKEN_ENTRY_OVERHEAD, TokenCache, TokenKey
from provider.stores.egress import EgressPolicy, parse_networks
from provider.stores.fetch import LOOKUPS, ConcurrencyLimits, Outbound, Saturated


class Stall:
    """A loopback server that accepts and then sends `script` one byte every 0.2 s (or nothing at all)."""

    def __init__(self, script: bytes = b"") -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.closed_by_peer = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(0.2)
        sent = 0
        while True:
            if sent < len(self.script):
                try:
                    conn.send(self.script[sent:sent + 1])
                except OSError:
                    break
                sent += 1
            try:
                if conn.recv(65536) == b"":
                    break  # the client shut the connection down
            except TimeoutError:
                continue
            except OSError:
                break
        self.closed_by_peer.set()
        conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def outbound() -> Iterator[Outbound]:
    client = Outbound(EgressPolicy(allow_networks=parse_networks(["127.0.0.1/32"]), api_server=()))
    yield client
    client.close()


@pytest.mark.parametrize("scheme, script", [
    ("https", b""),  # the TLS handshake never gets an answer
    ("http", b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody" * 10),  # headers drip in, a byte at a time
])
def test_a_fetch_never_outlives_its_deadline(outbound: Outbound, scheme: str, script: bytes) -> None:
    stall = Stall(script)
    try:
        with pytest.raises(ItemError) as caught:
            outbound.fetch("GET", f"{scheme}://127.0.0.1:{stall.port}/v2/", time.monotonic() + 0.6, 1024,
                           what="slow server")
        assert str(caught.value) == f"TIMEOUT: slow server did not answer in time ({scheme}://127.0.0.1:" \
                                    f"{stall.port}/v2/)"
        assert stall.closed_by_peer.wait(10), "the provider kept the connection open past its deadline"
    finally:
        stall.close()


def test_each_fetch_is_cut_at_its_own_deadline_whichever_came_first(outbound: Outbound) -> None:
    """The watchdog is woken only for a deadline earlier than the one it sleeps towards: a later fetch is
    still cut at its own deadline, an earlier one started while a later one stalls is cut at its own."""
    stalls = [Stall(), Stall(), Stall()]
    outcomes: dict[str, str] = {}

    def stalled(name: str, stall: Stall, budget: float) -> None:
        try:
            outbound.fetch("GET", f"https://127.0.0.1:{stall.port}/v2/", time.monotonic() + budget, 1024, what=name)
        except ItemError as exc:
            outcomes[name] = str(exc).split(":", 1)[0]

    try:
        first = threading.Thread(target=stalled, args=("first", stalls[0], 0.6))
        later = threading.Thread(target=stalled, args=("later", stalls[1], 1.2))  # after the one it sleeps for
        first.start()
        later.start()
        stalled("earlier", stalls[2], 0.3)  # before it: the watchdog must wake for this one
        first.join(10)
        later.join(10)
        assert outcomes == {"earlier": "TIMEOUT", "first": "TIMEOUT", "later": "TIMEOUT"}
        assert all(stall.closed_by_peer.wait(10) for stall in stalls)
    finally:
        for stall in stalls:
            stall.close()


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the request's headers (and its path) as JSON; sets a cookie on the first."""

    def do_GET(self) -> None:
        body = json.dumps({**{k.lower(): v for k, v in self.headers.items()}, ":path": self.path}).encode()
        self.send_response(200)
        if self.path == "/set":
            self.send_header("Set-Cookie", "lb=node-2; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_plain_fetch_sends_what_the_session_would_send(outbound: Outbound,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Fetches without a body or credentials go straight to urllib3's pool, not through the session; they
    still carry the session's User-Agent and the caller's headers, and keep a cookie a registry sets (as the
    session did). A URL that needs requoting (one from signed material) goes through the session."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    through_session: list[str] = []
    request = outbound.session.request
    monkeypatch.setattr(outbound.session, "request",
                        lambda method, url, **kw: through_session.append(url) or request(method, url, **kw))
    try:
        first = outbound.fetch("GET", f"{base}/set", time.monotonic() + 5, 4096, headers={"Accept": "x/y"})
        sent = json.loads(first.body)
        assert (sent["user-agent"], sent["accept"], "cookie" in sent) == ("sigwarden", "x/y", False)
        assert first.headers["set-cookie"] == first.headers["Set-Cookie"] == "lb=node-2; Path=/"
        again = json.loads(outbound.fetch("GET", f"{base}/again?n=1", time.monotonic() + 5, 4096).body)
        assert (again["user-agent"], again["accept"], again["cookie"]) == ("sigwarden", "*/*", "lb=node-2")
        assert again[":path"] == "/again?n=1" and through_session == []
        outbound.adapter.poolmanager.clear()  # the adapter closes the pools it no longer keeps
        after = json.loads(outbound.fetch("GET", f"{base}/after", time.monotonic() + 5, 4096).body)
        assert after[":path"] == "/after" and after["cookie"] == "lb=node-2"
        odd = json.loads(outbound.fetch("GET", f"{base}/crl/a b.crl", time.monotonic() + 5, 4096).body)
        assert odd[":path"] == "/crl/a%20b.crl" and odd["cookie"] == "lb=node-2"
        assert through_session == [f"{base}/crl/a b.crl"]
    finally:
        server.shutdown()
        server.server_close()


def test_per_address_limit_answers_saturated_and_frees_on_release() -> None:
    limits = ConcurrencyLimits(per_address=2, wildcard=100)
    deadline = time.monotonic() + 5
    with limits.slot("10.0.0.1:443", False, deadline), limits.slot("10.0.0.1:443", False, deadline):
        with pytest.raises(Saturated, match=r"2 fetches to 10\.0\.0\.1:443 are in flight and not finishing"), \
                limits.slot("10.0.0.1:443", False, deadline):
            pass
        with limits.slot("10.0.0.2:443", False, deadline):  # another address is not affected
            pass
    with limits.slot("10.0.0.1:443", False, deadline):  # released
        pass


def test_a_busy_but_healthy_address_makes_fetches_wait_for_a_slot_not_fail() -> None:
    limits = ConcurrencyLimits(per_address=1, wildcard=100)
    deadline = time.monotonic() + 30
    order: list[str] = []

    def holder() -> None:
        with limits.slot("10.0.0.1:443", False, deadline):
            order.append("holder")
            time.sleep(0.1)  # a quick fetch

    thread = threading.Thread(target=holder)
    thread.start()
    while not order:
        time.sleep(0.01)
    with limits.slot("10.0.0.1:443", False, deadline):  # waits for the holder, then gets the slot
        order.append("waiter")
    thread.join()
    assert order == ["holder", "waiter"]


def test_wildcard_cap_counts_every_address() -> None:
    limits = ConcurrencyLimits(per_address=8, wildcard=2)
    deadline = time.monotonic() + 5
    with limits.slot("10.0.0.1:1", True, deadline), limits.slot("10.0.0.2:2", True, deadline):
        with pytest.raises(Saturated, match="2 fetches to hosts reached through a wildcard store"), \
                limits.slot("10.0.0.3:3", True, deadline):
            pass
        with limits.slot("10.0.0.3:3", False, deadline):  # a host a store names is outside the wildcard cap
            pass


def test_token_cache_is_bounded_in_bytes_least_recently_used_first() -> None:
    cache = TokenCache(max_bytes=1024 * 1024)
    token = "t" * 60_000  # registry tokens of this size exist

    def key(index: int) -> TokenKey:
        return TokenKey("registry.example", "https://registry.example/token", "r", f"repository:r{index:02}:pull", "")

    for index in range(100):
        cache.put(key(index), token, 300)
    assert cache.size_bytes <= 1024 * 1024
    key_chars = len("registry.example") + len("https://registry.example/token") + 1 + len("repository:r00:pull")
    kept = 1024 * 1024 // (len(token) + key_chars + TOKEN_ENTRY_OVERHEAD)
    assert [cache.get(key(i)) is not None for i in range(100)].count(True) == kept
    assert cache.get(key(99)) == token
    assert cache.get(key(0)) is None


def test_a_token_is_only_found_under_the_realm_service_and_identity_that_issued_it() -> None:
    cache = TokenCache()
    issued = TokenKey("registry.example", "https://registry.example/token", "reg", "repository:a:pull", "ci#1")
    cache.put(issued, "secret-token", 300)
    assert cache.get(issued) == "secret-token"
    for other in (replace(issued, realm="https://evil.example/token"), replace(issued, service="evil"),
                  replace(issued, identity=""), replace(issued, host="evil.example"),
                  replace(issued, scope="repository:b:pull")):
        assert cache.get(other) is None


def test_dns_rebinding_between_check_and_connect_is_caught_at_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first answer passes the early check; the name then rebinds to a refused address (with no answer
    kept between lookups, the connection resolves again and checks what it got)."""
    monkeypatch.setattr(LOOKUPS, "ttl", 0.0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    answers = iter([["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]])

    def rebinding(host: str, port_: int, family: int = 0, kind: int = 0) -> list:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port_)) for a in next(answers)]

    policy = EgressPolicy(allow_networks=parse_networks(["127.0.0.2/32"]), api_server=(), resolver=rebinding)
    client = Outbound(policy)
    try:
        with pytest.raises(ItemError) as caught:
            client.fetch("GET", f"http://rebind.test:{port}/v2/", time.monotonic() + 5, 1024)
        assert str(caught.value) == (f"REGISTRY_UNAVAILABLE: egress policy refuses rebind.test:{port}: 127.0.0.1 is a "
                                     "loopback address; name the host in a store's match or insecure list (or "
                                     "allowNetworks) to allow it")
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected
    finally:
        client.close()
        listener.close()


class Counting:
    """A resolver answering `addresses` for every name, counting the questions; `addresses` may change."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.asked = 0

    def __call__(self, host: str, port: int, family: int = 0, kind: int = 0) -> list:
        self.asked += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in self.addresses]


@pytest.fixture
def echo_on_127_0_0_2() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_named_hosts_answer_is_kept_briefly_and_checked_on_every_use(echo_on_127_0_0_2: int) -> None:
    """Fetches to a named registry ask DNS once per ADDRESS_TTL, not twice per fetch; the kept answer is
    still checked by each policy that uses it (a signer URL's policy trusts no host by name)."""
    resolver = Counting("127.0.0.2")
    named = EgressPolicy(explicit=frozenset({f"registry.test:{echo_on_127_0_0_2}"}), api_server=(),
                         resolver=resolver)
    client, signer = Outbound(named), Outbound(named.for_signer_urls())
    url = f"http://registry.test:{echo_on_127_0_0_2}/v2/"
    try:
        for _ in range(3):
            assert client.fetch("GET", url, time.monotonic() + 5, 4096).status == 200
        assert resolver.asked == 1
        with pytest.raises(ItemError) as caught:
            signer.fetch("GET", url, time.monotonic() + 5, 4096)
        assert str(caught.value).startswith(f"REGISTRY_UNAVAILABLE: egress policy refuses registry.test:"
                                            f"{echo_on_127_0_0_2}: 127.0.0.2 is a loopback address")
        assert resolver.asked == 1  # the kept answer, refused by the other policy
    finally:
        client.close()
        signer.close()


def test_a_kept_answer_is_what_the_connection_uses_and_a_new_one_is_checked(
        echo_on_127_0_0_2: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name rebinding while its answer is kept cannot move a connection off the checked address; once the
    answer expires, the new one is checked before anything connects."""
    resolver = Counting("127.0.0.2")
    client = Outbound(EgressPolicy(allow_networks=parse_networks(["127.0.0.2/32"]), api_server=(),
                                   resolver=resolver))
    url = f"http://rebinding.test:{echo_on_127_0_0_2}/v2/"
    try:
        assert client.fetch("GET", url, time.monotonic() + 5, 4096).status == 200
        client.close()  # the next fetch opens a new connection, which resolves again
        resolver.addresses = ["127.0.0.1"]
        assert client.fetch("GET", url, time.monotonic() + 5, 4096).status == 200  # still 127.0.0.2
        assert resolver.asked == 1
        monkeypatch.setattr(LOOKUPS, "ttl", 0.0)
        LOOKUPS._answers.clear()
        with pytest.raises(ItemError) as caught:
            client.fetch("GET", url, time.monotonic() + 5, 4096)
        assert str(caught.value).startswith(f"REGISTRY_UNAVAILABLE: egress policy refuses rebinding.test:"
                                            f"{echo_on_127_0_0_2}: 127.0.0.1 is a loopback address")
        assert resolver.asked == 2
    finally:
        client.close()


def test_a_slow_name_lookup_is_abandoned_at_the_deadline() -> None:
    answered = threading.Event()

    def slow_dns(host: str, port: int, family: int = 0, kind: int = 0) -> list:
        answered.wait(30)  # a resolver that takes as long as the test lets it
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    client = Outbound(EgressPolicy(api_server=(), resolver=slow_dns))
    try:
        with pytest.raises(ItemError) as caught:
            client.fetch("GET", "http://slow-dns.test/v2/", time.monotonic() + 0.3, 1024)
        # Had the fetch waited for the resolver, it would have got an answer (and an egress refusal).
        assert str(caught.value) == "TIMEOUT: resolving slow-dns.test did not finish in time"
        assert not answered.is_set()
    finally:
        answered.set()
        client.close()
