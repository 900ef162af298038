"""The real server's log, as an operator reads it: refused handshakes at the default level with the reason in words,
one format for every line (gunicorn's too), probes at debug, and a request line that names each image's decision."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from provider.devkit.layout import LayoutWriter
from provider.devkit.pki import Issued, issue
from provider.devkit.process import ProviderProcess
from tests.helpers import GATEKEEPER_NAME, ProviderPKI, free_port, provider_request, write_yaml

REG = "logs.example"


def expired(ca: Issued) -> Issued:
    """Gatekeeper's client certificate, from the trusted CA, that expired yesterday."""
    fresh = issue(ca, GATEKEEPER_NAME, (GATEKEEPER_NAME,), client=True)
    now = datetime.datetime.now(datetime.UTC)
    builder = x509.CertificateBuilder(fresh.cert.issuer, fresh.cert.subject, fresh.cert.public_key(),
                                      x509.random_serial_number(), now - datetime.timedelta(days=30),
                                      now - datetime.timedelta(days=1), list(fresh.cert.extensions))
    return Issued(builder.sign(ca.key, hashes.SHA256()), fresh.key)


def start(root: Path, options: tuple[str, ...] = ()) -> tuple[ProviderProcess, ProviderPKI]:
    pki = ProviderPKI.create(root / "pki")
    issue(pki.client_ca, "someone-else.example", ("someone-else.example",), client=True).write(root / "pki", "other")
    expired(pki.client_ca).write(root / "pki", "expired")
    LayoutWriter(root / "layouts" / REG, "team/app").add_image("v1", b"app")
    port, metrics_port = free_port(), free_port()
    config = write_yaml(root / "config.yaml", {
        "server": {"listen": f"127.0.0.1:{port}", "metricsListen": f"127.0.0.1:{metrics_port}",
                   "tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key"),
                           "clientCA": pki.path("client-ca.crt"), "clientNames": [GATEKEEPER_NAME]}},
        "stores": [{"type": "oci-layout", "path": str(root / "layouts"), "match": [f"{REG}/*"]}]})
    provider = ProviderProcess(config, port, metrics_port, options=options)
    provider.wait_ready()
    return provider, pki


def post(provider: ProviderProcess, pki: ProviderPKI, cert: tuple[str, str] | None, ca: str = "ca.crt",
         keys: list[str] | None = None, trace: str = "") -> requests.Response | None:
    session = requests.Session()
    session.trust_env = False
    session.cert, session.verify = cert, pki.path(ca)
    headers = {"X-Request-ID": trace} if trace else {}
    try:
        return session.post(f"{provider.url}/verify", json=provider_request(keys or [f"{REG}/team/app:v1"]),
                            headers=headers, timeout=10)
    except requests.exceptions.RequestException:
        return None


def entries(provider: ProviderProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in provider.log().splitlines() if line.strip()]


def wait_for(provider: ProviderProcess, predicate: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The log once some line satisfies `predicate` (lines are written by another process)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = [entry for entry in entries(provider) if predicate(entry)]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no such log line in:\n{provider.log()}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProviderProcess, ProviderPKI]]:
    provider, pki = start(tmp_path_factory.mktemp("operator-logs"))
    try:
        yield provider, pki
    finally:
        provider.stop()


@pytest.mark.parametrize(("attempt", "reason", "words"), [
    ("no client certificate", "client_certificate_missing", "the client presented no certificate"),
    ("a stranger CA's certificate", "client_certificate_untrusted",
     "Gatekeeper's client certificate is signed by a CA this provider does not trust: check server.tls.clientCA"),
    ("an expired certificate", "client_certificate_expired", "Gatekeeper's client certificate has expired"),
    ("a client without the provider's CA", "server_certificate_untrusted", "spec.caBundle"),
    ("a name not in clientNames", "client_name_not_allowed", "names none of server.tls.clientNames"),
    ("plain HTTP", "plain_http", "plain HTTP to the HTTPS port"),
])
def test_a_refused_client_is_a_warning_with_the_reason_in_words(
        served: tuple[ProviderProcess, ProviderPKI], attempt: str, reason: str, words: str) -> None:
    provider, pki = served
    for _ in range(3):  # a misconfigured Gatekeeper retries: the reason is logged, not every retry
        if attempt == "no client certificate":
            answer = post(provider, pki, None)
        elif attempt == "a stranger CA's certificate":
            answer = post(provider, pki, (pki.path("stranger.crt"), pki.path("stranger.key")))
        elif attempt == "an expired certificate":
            answer = post(provider, pki, (pki.path("expired.crt"), pki.path("expired.key")))
        elif attempt == "a client without the provider's CA":
            answer = post(provider, pki, pki.client_pair, ca="client-ca.crt")
        elif attempt == "a name not in clientNames":
            answer = post(provider, pki, (pki.path("other.crt"), pki.path("other.key")))
            assert answer is not None and answer.status_code == 403
        else:
            with socket.create_connection(("127.0.0.1", provider.port), timeout=5) as plain:
                plain.sendall(b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                plain.recv(100)
            answer = None
        assert attempt == "a name not in clientNames" or answer is None
    (line, *more) = wait_for(provider, lambda e: e.get("reason") == reason)
    assert line["level"] == "warning" and words in line["msg"], line
    assert "127.0.0.1" in line["peer"] and line["suppressedSinceLast"] == 0
    # Held back within the minute; counted on the next line of the same reason (provider.logs.RateLimited).
    assert len(more) <= 2 and all(e["suppressedSinceLast"] >= 0 for e in more)


def test_every_line_is_json_without_colour_and_probes_are_debug(served: tuple[ProviderProcess, ProviderPKI]) -> None:
    provider, pki = served
    for path in ("/readyz", "/healthz", "/metrics"):
        assert requests.get(provider.metrics_url + path, timeout=5).status_code == 200
    assert post(provider, pki, pki.client_pair, trace="probe-check") is not None
    wait_for(provider, lambda e: e.get("traceID") == "probe-check")
    text = provider.log()
    assert "\x1b" not in text and "\\u001b" not in text
    lines = entries(provider)  # each line parses, or this raises
    assert any(e["logger"] == "gunicorn" and e["msg"] == "Starting gunicorn " + e["msg"].split()[-1] for e in lines)
    banner = next(e for e in lines if e["msg"].startswith("Listening at"))
    assert f"https://127.0.0.1:{provider.port}" in banner["msg"]
    assert not any(e["logger"] in ("werkzeug", "sigwarden.probe") for e in lines)


def test_a_request_line_names_each_image_decision_bounded(served: tuple[ProviderProcess, ProviderPKI]) -> None:
    provider, pki = served
    keys = [f"{REG}/team/app:v1", f"{REG}/team/absent:v1", "Not A Reference",
            *(f"{REG}/team/app{n}:v1" for n in range(20))]
    answer = post(provider, pki, pki.client_pair, keys=keys, trace="why-denied-1")
    assert answer is not None and answer.status_code == 200
    (line,) = wait_for(provider, lambda e: e.get("traceID") == "why-denied-1")
    assert line["level"] == "info" and line["endpoint"] == "verify"
    # provider.server.decisions: the first 16 references, the rest counted; reasons' categories for all.
    assert list(line["images"]) == keys[:16] and line["imagesNotListed"] == len(keys) - 16
    assert line["images"][f"{REG}/team/app:v1"] == "no_authority"  # no authority configured covers it
    assert line["images"][f"{REG}/team/absent:v1"] == "NOT_FOUND"
    assert line["images"]["Not A Reference"] == "INVALID_REFERENCE"
    assert line["reasons"]["NOT_FOUND"] == 21 and line["reasons"]["INVALID_REFERENCE"] == 1


def test_text_format_for_a_terminal(tmp_path: Path) -> None:
    provider, pki = start(tmp_path, ("--log-format", "text", "--log-level", "debug"))
    try:
        requests.get(provider.metrics_url + "/readyz", timeout=5)
        assert post(provider, pki, None) is None
        end = time.monotonic() + 10
        while "client_certificate_missing" not in provider.log() and time.monotonic() < end:
            time.sleep(0.1)
    finally:
        provider.stop()
    lines = provider.log().splitlines()
    assert not any(line.startswith("{") for line in lines), lines
    assert any(" info    gunicorn: Listening at: https://" in line for line in lines)
    assert any(" debug   sigwarden.probe: side port request" in line and "path=/readyz" in line for line in lines)
    assert any(" warning sigwarden.tls: TLS handshake refused" in line and "reason=client_certificate_missing"
               in line for line in lines)


def test_classify_maps_openssl_reasons_to_refusals() -> None:
    """Direct rows for the reasons a loopback client cannot provoke (protocol versions, proxies)."""
    from provider.server.handshakes import PLAIN_HTTP, TLS_VERSION, classify

    def error(reason: str) -> ssl.SSLError:
        exc = ssl.SSLError(1, f"[SSL: {reason}] x")
        exc.reason = reason  # what _ssl sets from the OpenSSL error
        return exc

    assert classify(error("UNSUPPORTED_PROTOCOL")) is TLS_VERSION
    assert classify(error("HTTPS_PROXY_REQUEST")) is PLAIN_HTTP
    assert classify(error("UNEXPECTED_EOF_WHILE_READING")) is None  # a peer that hung up: debug only
    assert classify(ConnectionResetError()) is None
