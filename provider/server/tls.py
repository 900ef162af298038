"""TLS for the provider port: a context rebuilt when certificate files change, and client-name pinning.

The front door asks for an SSL context per connection; we hand out a cached one and rebuild it only when the
certificate, key or client CA file changed on disk (cert-manager and Secret rotation need no restart).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import json

from provider.config import TLSConfig
from provider.metrics import Metrics
from provider.server.handshakes import report_client_name
from provider.server.protocol import provider_response
from provider.server.wsgi import PEER_CERT
from provider.state import Fingerprint, fingerprint

log = logging.getLogger("sigwarden.tls")


def build_server_context(tls: TLSConfig) -> ssl.SSLContext:
    """TLS 1.2+ server context; with a client CA, a verified client certificate is required."""
    if tls.cert is None or tls.key is None:
        raise ValueError("server.tls.cert and server.tls.key are required to serve")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(tls.cert), keyfile=str(tls.key))
    if tls.client_ca is not None:
        context.load_verify_locations(cafile=str(tls.client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    return context


class ReloadingContext:
    """Hands out the current SSL context; rebuilds it after the files named by `tls()` change."""

    def __init__(self, tls: Callable[[], TLSConfig], metrics: Metrics) -> None:
        self._tls = tls
        self._metrics = metrics
        self._lock = threading.Lock()
        settings = tls()
        self._marks: tuple[TLSConfig, Fingerprint] = (settings, fingerprint(settings.files))
        self._context = build_server_context(settings)

    def get(self) -> ssl.SSLContext:
        settings = self._tls()
        marks = (settings, fingerprint(settings.files))
        if marks != self._marks:
            with self._lock:
                if marks != self._marks:
                    self._rebuild(settings, marks)
        return self._context

    def _rebuild(self, settings: TLSConfig, marks: tuple[TLSConfig, Fingerprint]) -> None:
        self._marks = marks  # a broken file is reported once, not on every connection
        try:
            self._context = build_server_context(settings)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._metrics.tls_reloads.labels("failure").inc()
            log.error("TLS reload failed; the previous certificates stay in use", extra={"error": str(exc)})
            return
        self._metrics.tls_reloads.labels("success").inc()
        self._metrics.observe_tls_files(settings.cert, settings.client_ca)
        log.info("TLS certificates reloaded")


def peer_names(cert: dict[str, Any] | None) -> set[str]:
    """Common names and DNS/URI SANs of a verified peer certificate (as `ssl.getpeercert()` gives it)."""
    if not cert:
        return set()
    names = {value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"}
    names.update(value for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "URI"))
    return names


class ClientNamePinning:
    """WSGI middleware: when names are pinned, refuse clients whose certificate names none of them."""

    def __init__(self, app: Callable[..., Iterable[bytes]], allowed: Callable[[], tuple[str, ...]],
                 metrics: Metrics) -> None:
        self.app = app
        self.allowed = allowed
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        allowed = self.allowed()
        if allowed:
            presented = peer_names(environ.get(PEER_CERT))
            if not presented & set(allowed):
                self.metrics.bad_requests.labels("client_name").inc()
                report_client_name(environ.get("REMOTE_ADDR", ""), sorted(presented), allowed)
                body = json.dumps(provider_response(system_error=(
                    f"client certificate names {sorted(presented)} are not in server.tls.clientNames"))).encode()
                start_response("403 Forbidden", [("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(body)))])
                return [body]
        return self.app(environ, start_response)
