"""The provider port against slow and idle clients, oversized heads and bodies, at its connection cap."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from provider.config import ServerConfig
from provider.devkit.layout import LayoutWriter
from provider.devkit.process import ProviderProcess
from tests.helpers import ProviderPKI, metric_value, provider_request, wait_for
from tests.slowclients import crowd, mtls_socket, read_answer

REG = "airgap.example"
KEY = f"{REG}/team/app:v1"
Start = Callable[..., ProviderProcess]


@pytest.fixture
def layouts(tmp_path: Path) -> Path:
    root = tmp_path / "layouts"
    LayoutWriter(root / REG, "team/app").add_image("v1", b"app")
    return root


def config(layouts: Path, **server: object) -> dict:
    return {"server": server, "stores": [{"type": "oci-layout", "path": str(layouts), "match": [f"{REG}/*"]}]}


def metrics(provider: ProviderProcess) -> str:
    return requests.get(provider.metrics_url + "/metrics", timeout=10).text



def verify(session: requests.Session, provider: ProviderProcess, body: object) -> requests.Response:
    return session.post(provider.url + "/verify", json=body, timeout=30)


def mtls_session(pki: ProviderPKI) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.cert, session.verify = pki.client_pair, pki.path("ca.crt")
    return session


@pytest.mark.timeout(300)
def test_idle_and_dribbling_connections_cost_no_worker(start_provider: Start, pki: ProviderPKI,
                                                       layouts: Path) -> None:
    # Long timeouts: the server must hold every attacker connection while it keeps answering.
    provider = start_provider(config(layouts, handshakeTimeout="10m", headerTimeout="10m", threads=4))
    session = mtls_session(pki)
    assert verify(session, provider, provider_request([KEY])).status_code == 200  # warm the cache
    with crowd(provider.port, idle=1000, dribblers=200) as held:
        wait_for(lambda: metric_value(metrics(provider), "sigwarden_connections", {"phase": "handshake"}) >= 1200,
                 "the server to hold all 1,200 connections")
        for round_ in range(20):
            client = session if round_ % 2 else mtls_session(pki)  # kept-alive and fresh connections alike
            item = verify(client, provider, provider_request([KEY])).json()["response"]["items"][0]
            assert item["value"]["cached"] is True and item["value"]["digest"].startswith("sha256:")
        with mtls_socket(provider.port, pki) as tls:
            assert tls.version() == "TLSv1.3"
        assert held.still_open() == 1200
    text = metrics(provider)
    assert metric_value(text, "sigwarden_connections_closed_total", {"reason": "evicted"}) == 0


def test_stalled_handshakes_heads_and_bodies_are_cut_off(start_provider: Start, pki: ProviderPKI,
                                                         layouts: Path) -> None:
    provider = start_provider(config(layouts, handshakeTimeout="1s", headerTimeout="1s", bodyTimeout="1s"))
    with crowd(provider.port, idle=5, dribblers=5, interval=0.3) as held:
        wait_for(lambda: held.still_open() == 0, "the server to close stalled handshakes")
    with mtls_socket(provider.port, pki) as head:
        head.sendall(b"POST /verify HTTP/1.1\r\nHost: sigwarden\r\nContent-Type: application/json\r\n")
        status, document, _ = read_answer(head)
    assert status == 408 and "server.headerTimeout" in document["response"]["systemError"]
    with mtls_socket(provider.port, pki) as body:
        body.sendall(b"POST /verify HTTP/1.1\r\nHost: sigwarden\r\nContent-Length: 100\r\n\r\n{\"kind\":")
        status, document, _ = read_answer(body)
    assert status == 408 and "server.bodyTimeout" in document["response"]["systemError"]
    text = metrics(provider)
    assert metric_value(text, "sigwarden_connections_closed_total", {"reason": "handshake_timeout"}) >= 10
    assert metric_value(text, "sigwarden_connections_closed_total", {"reason": "header_timeout"}) >= 1
    assert metric_value(text, "sigwarden_connections_closed_total", {"reason": "body_timeout"}) >= 1
    assert verify(mtls_session(pki), provider, provider_request([KEY])).status_code == 200


def test_at_the_connection_cap_idle_connections_make_room(start_provider: Start, pki: ProviderPKI,
                                                          layouts: Path) -> None:
    provider = start_provider(config(layouts, maxConnections=16, handshakeTimeout="10m"))
    with crowd(provider.port, idle=16, dribblers=0) as held:
        wait_for(lambda: metric_value(metrics(provider), "sigwarden_connections", {"phase": "handshake"}) >= 16,
                 "the server to hold 16 idle connections")
        response = verify(mtls_session(pki), provider, provider_request([KEY]))
        assert response.status_code == 200 and "value" in response.json()["response"]["items"][0]
        assert held.still_open() < 16
    assert metric_value(metrics(provider), "sigwarden_connections_closed_total", {"reason": "evicted"}) >= 1


def test_oversized_heads_and_bodies_get_json_answers(start_provider: Start, pki: ProviderPKI,
                                                     layouts: Path) -> None:
    provider = start_provider(config(layouts, maxBodyBytes=4096))
    cases = [
        (b"POST /verify HTTP/1.1\r\nHost: sigwarden\r\nX-Padding: " + b"a" * 65536 + b"\r\n\r\n",
         431, "server.maxHeaderBytes"),
        # Refused on the declared length: the body is never read.
        (b"POST /verify HTTP/1.1\r\nHost: sigwarden\r\nContent-Length: 999999999\r\n\r\n",
         400, "over the limit of 4096"),
        (b"POST /verify HTTP/1.1\r\nHost: sigwarden\r\nTransfer-Encoding: chunked\r\n\r\n"
         + b"1000\r\n" + b"x" * 4096 + b"\r\n10\r\n" + b"y" * 16 + b"\r\n0\r\n\r\n", 400, "over the limit of 4096"),
        (b"BR\x00KEN / HTTP/1.1\r\n\r\n", 400, "malformed HTTP request"),
    ]
    for request, expected_status, expected_error in cases:
        with mtls_socket(provider.port, pki) as tls:
            tls.sendall(request)
            status, document, _ = read_answer(tls)
        assert status == expected_status and expected_error in document["response"]["systemError"], request[:40]
        assert document["response"]["systemError"].startswith("REQUEST_REFUSED: "), request[:40]


def test_deeply_nested_json_is_a_400(start_provider: Start, pki: ProviderPKI, layouts: Path) -> None:
    provider = start_provider(config(layouts))
    session = mtls_session(pki)
    for body in (b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000,
                 json.dumps(provider_request([KEY])).encode()[:-2] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}}"):
        response = session.post(provider.url + "/verify", data=body, timeout=30)
        assert response.status_code == 400, response.text[:200]
        assert "nested" in response.json()["response"]["systemError"]


def test_keep_alive_serves_many_requests_on_one_connection(start_provider: Start, pki: ProviderPKI,
                                                           layouts: Path) -> None:
    provider = start_provider(config(layouts))
    body = json.dumps(provider_request([KEY])).encode()
    request = (b"POST /verify HTTP/1.1\r\nHost: sigwarden\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    last = request.replace(b"Host: sigwarden\r\n", b"Host: sigwarden\r\nConnection: close\r\n")
    with mtls_socket(provider.port, pki) as tls:
        tls.sendall(request * 2 + last)  # pipelined: answered one after the other, in order
        _, _, raw = read_answer(tls)
    assert raw.count(b"HTTP/1.1 200 ") == 3 and raw.count(b'"digest":"sha256:') == 3


def test_expect_100_continue_is_answered_before_the_body(start_provider: Start, pki: ProviderPKI,
                                                         layouts: Path) -> None:
    provider = start_provider(config(layouts))
    body = json.dumps(provider_request([KEY])).encode()
    with mtls_socket(provider.port, pki) as tls:
        tls.sendall(b"POST /verify HTTP/1.1\r\nHost: sigwarden\r\nExpect: 100-continue\r\nConnection: close\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        interim = tls.recv(1024)
        tls.sendall(body)
        status, document, _ = read_answer(tls)
    assert interim.startswith(b"HTTP/1.1 100 ")
    assert status == 200 and document["response"]["items"][0]["value"]["digest"].startswith("sha256:")


def head_of_exactly(size: int, body: bytes) -> bytes:
    """A request whose head (request line, fields and blank line) is `size` bytes, then `body`."""
    start = (b"POST /verify HTTP/1.1\r\nHost: sigwarden\r\nContent-Type: application/json\r\nConnection: close\r\n"
             b"Content-Length: " + str(len(body)).encode() + b"\r\nX-Padding: ")
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n" + body


@pytest.mark.parametrize("pipelined", [False, True])
def test_the_head_limit_is_exact(start_provider: Start, pki: ProviderPKI, layouts: Path, pipelined: bool) -> None:
    limit = ServerConfig().max_header_bytes  # the default, 16 KiB
    provider = start_provider(config(layouts))
    body = json.dumps(provider_request([KEY])).encode()
    # A 20 KiB head sent at once reached the app before: h11 bounds only a head it is still waiting for.
    for size, expected in ((limit - 1, 200), (limit, 200), (limit + 1, 431), (20 * 1024, 431)):
        request = head_of_exactly(size, body)
        if pipelined:  # behind a first request on the same connection, its head already buffered
            first = head_of_exactly(200, body).replace(b"Connection: close\r\n", b"X-Pad: a\r\n")
            request = first + request
        assert len(request) - len(body) == size + (len(first) if pipelined else 0)
        with mtls_socket(provider.port, pki) as tls:
            tls.sendall(request)
            status, document, raw = read_answer(tls)
        if pipelined:
            assert raw.startswith(b"HTTP/1.1 200 ")
            status = int(raw.rsplit(b"HTTP/1.1 ", 1)[1][:3])
            document = json.loads(raw.rsplit(b"\r\n\r\n", 1)[1])
        assert status == expected, size
        if expected == 431:
            assert f"over the limit of {limit} bytes" in document["response"]["systemError"]
        else:
            assert document["response"]["items"][0]["value"]["digest"].startswith("sha256:")
