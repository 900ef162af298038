"""The plain-HTTP side port: liveness, readiness and Prometheus metrics, served by gunicorn's master.

The master outlives its workers, so liveness means "the pod's supervisor runs" and readiness and metrics
come from what the workers publish (provider.server.pod).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

Readiness = Callable[[], tuple[bool, str]]
log = logging.getLogger("sigwarden.probe")


class ProbeRequestLog(WSGIRequestHandler):
    """Probes and scrapes arrive every few seconds: their lines are `debug`, in the provider's format."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("side port request", extra={"method": self.command, "path": self.path,
                                                  "status": getattr(code, "value", code),
                                                  "peer": self.client_address[0]})

    def log_error(self, format: str, *args: object) -> None:
        log.info("side port error: " + format % args, extra={"peer": self.client_address[0]})


def create_health_app(readiness: Readiness, registry: CollectorRegistry) -> Flask:
    app = Flask("sigwarden-health")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def readyz() -> Response:
        ready, message = readiness()
        return Response(message + "\n", status=200 if ready else 503, mimetype="text/plain")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    return app


def bind_side_port(listen: str) -> socket.socket:
    """Listen on `host:port` (raises OSError): done before anything starts, so a port in use is a clear error."""
    host, _, port = listen.rpartition(":")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host.strip("[]"), int(port)), family=family)


def serve_health(app: Flask, listen: str, bound: socket.socket | None = None) -> BaseWSGIServer:
    """Serve the side port on `bound` (or a new socket on `listen`) in a daemon thread; `.shutdown()` stops it."""
    host, _, port = listen.rpartition(":")
    sock = bound or bind_side_port(listen)
    server = make_server(host.strip("[]"), int(port), app, threaded=True, fd=sock.fileno(),
                         request_handler=ProbeRequestLog)
    sock.close()  # the server holds its own duplicate of the socket
    threading.Thread(target=server.serve_forever, name="sigwarden-health", daemon=True).start()
    return server
