"""A small hostile registry on loopback: wrong digests, oversize bodies, redirect loops, slow answers,
Bearer tokens and flaky 503s. It speaks just enough of the distribution API for each case."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers import free_port

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": "sha256:" + "1" * 64, "size": 2}, "layers": []}).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
OTHER_DIGEST = "sha256:" + hashlib.sha256(b"something else").hexdigest()
TOKEN = "good-token"
REFERRER_DIGESTS = ["sha256:" + "a" * 64, "sha256:" + "b" * 64]
HOSTILE_MESSAGE = '<script>alert("registry")</script>"><img src=x onerror=alert(1)>'


class HostileRegistry:
    def __init__(self, slow_seconds: float = 30.0, tls: ssl.SSLContext | None = None,
                 address: str = "127.0.0.1") -> None:
        self.address = address
        self.port = free_port(address)
        self.scheme = "https" if tls else "http"
        self.slow_seconds = slow_seconds
        self.hits: Counter[str] = Counter()
        self.authorization: list[str | None] = []  # the Authorization header of every request, in order
        # `/v2/redirect/…` answers 302 to this URL; `/v2/realm/…` challenges with this token realm.
        self.redirect_to = ""
        self.realm = ""
        # `/v2/retryafter/…` answers 503 with this Retry-After twice, then the manifest.
        self.retry_after = "0"
        # Connections of `/v2/drip1/…` (one byte per second) now open, and those the client closed on us.
        self.dripping = 0
        self.drips = 0
        self.dropped = 0
        self.lock = threading.Lock()
        # Slow answers wait for this (or slow_seconds): a test can see a request still in flight.
        self.release = threading.Event()
        self.in_flight = 0
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_POST(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                registry.hits[self.path] += 1
                registry.authorization.append(self.headers.get("Authorization"))
                registry.route(self)

        self.server = ThreadingHTTPServer((address, self.port), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()

    def _drip(self) -> Iterator[bytes]:
        """One byte every 0.2 s until released: headers come fast, the body never finishes in time."""
        for _ in range(int(self.slow_seconds * 5)):
            self.release.wait(0.2)
            yield b" "

    def route(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path
        if path == "/v2/":
            return send(h, 200, b"{}")
        if path.startswith("/v2/mismatch/manifests/v1"):
            return send(h, 200, MANIFEST, {"Docker-Content-Digest": OTHER_DIGEST})
        if path.startswith("/v2/mismatch/manifests/sha256:"):
            return send(h, 200, MANIFEST)  # whatever digest was asked for, these bytes come back
        if path.startswith("/v2/big/manifests/"):
            return send(h, 200, b" " * (5 * 1024 * 1024))
        if path.startswith("/v2/bigchunked/manifests/"):
            return send_chunked(h, (b" " * 65536 for _ in range(80)))
        if path.startswith("/v2/loop/manifests/"):
            return send(h, 302, b"", {"Location": "/v2/loop2/manifests/v1"})
        if path.startswith("/v2/loop2/manifests/"):
            return send(h, 302, b"", {"Location": "/v2/loop/manifests/v1"})
        if path.startswith("/v2/slow/manifests/"):
            self.in_flight += 1
            self.release.wait(self.slow_seconds)
            self.in_flight -= 1
            return send(h, 200, MANIFEST)
        if path.startswith("/v2/drip1/"):
            return self._drip_one_byte_per_second(h)
        if path.startswith("/v2/private-redirect/"):
            if h.headers.get("Authorization") != f"Bearer {TOKEN}":
                challenge = f'Bearer realm="{self.url}/token",service="hostile"'
                return send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
            return send(h, 302, b"", {"Location": self.redirect_to})
        if path.startswith("/v2/redirect/"):
            return send(h, 302, b"", {"Location": self.redirect_to})
        if path.startswith("/v2/realm/"):
            challenge = f'Bearer realm="{self.realm}",service="hostile"'
            return send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
        if path.startswith("/v2/drip/manifests/"):
            self.in_flight += 1
            send_chunked(h, ((self.release.wait(0.2) and b" ") or b" " for _ in range(int(self.slow_seconds * 5))))
            self.in_flight -= 1
            return None
        if path.startswith("/token"):
            expected = "Basic " + base64.b64encode(b"ci:pw").decode()
            if h.headers.get("Authorization") != expected:
                return send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
            return send(h, 200, json.dumps({"token": TOKEN, "expires_in": 300}).encode())
        if path.startswith("/v2/private/"):
            if h.headers.get("Authorization") != f"Bearer {TOKEN}":
                realm = f"http://{self.host}/token"
                challenge = f'Bearer realm="{realm}",service="hostile",scope="repository:private:pull"'
                return send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
            if "/manifests/" in path:
                return send(h, 200, MANIFEST)
            return send(h, 404, b"{}")
        if path == "/v2/referred/manifests/v1":
            return send(h, 200, MANIFEST)
        if path.startswith(f"/v2/referred/referrers/{MANIFEST_DIGEST}"):
            page = 2 if "page=2" in path else 1
            index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": REFERRER_DIGESTS[page - 1],
                "size": 100, "artifactType": "application/vnd.cncf.notary.signature"}]}
            link = {"Link": f'</v2/referred/referrers/{MANIFEST_DIGEST}?page=2>; rel="next"'} if page == 1 else {}
            return send(h, 200, json.dumps(index).encode(), link)
        if path.startswith("/oauth2/token"):
            form = h.rfile.read(int(h.headers.get("Content-Length", "0"))).decode()
            if "grant_type=refresh_token" in form and "refresh_token=refresh-me" in form:
                return send(h, 200, json.dumps({"access_token": TOKEN}).encode())
            return send(h, 401, b"{}")
        if path.startswith("/v2/oauth/"):
            if h.headers.get("Authorization") != f"Bearer {TOKEN}":
                challenge = f'Bearer realm="http://{self.host}/oauth2/token",service="hostile"'
                return send(h, 401, b"{}", {"WWW-Authenticate": challenge})
            return send(h, 200, MANIFEST)
        if path.startswith("/v2/flaky/manifests/v1"):
            if self.hits[path] < 3:
                return send(h, 503, b'{"errors":[{"code":"UNAVAILABLE"}]}', {"Retry-After": "0"})
            return send(h, 200, MANIFEST)
        if path.startswith("/v2/retryafter/manifests/v1"):
            if self.hits[path] < 3:
                return send(h, 503, b'{"errors":[{"code":"UNAVAILABLE"}]}', {"Retry-After": self.retry_after})
            return send(h, 200, MANIFEST)
        if path.startswith("/v2/markup/"):  # a registry message meant to run in whatever displays it
            return send(h, 503, json.dumps({"errors": [{"code": "UNAVAILABLE", "message": HOSTILE_MESSAGE}]}).encode())
        if path.startswith("/v2/down/"):
            return send(h, 503, b'{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}')
        return send(h, 404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}')


    def _drip_one_byte_per_second(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.dripping += 1
            self.drips += 1
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            h.send_header("Content-Length", str(int(self.slow_seconds)))
            h.end_headers()
            h.wfile.flush()
            for _ in range(int(self.slow_seconds)):
                if self.release.wait(1.0):
                    return
                h.wfile.write(b" ")
                h.wfile.flush()
        except OSError:
            with self.lock:
                self.dropped += 1
        finally:
            with self.lock:
                self.dripping -= 1


def send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    h.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
    h.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.end_headers()
    if h.command != "HEAD":
        # The client may give up on an oversize body, as it should.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.wfile.write(body)


def send_chunked(h: BaseHTTPRequestHandler, chunks: object) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    try:
        for chunk in chunks:  # type: ignore[attr-defined]
            h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            h.wfile.flush()
        h.wfile.write(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
