"""The plain-HTTP side port: liveness, readiness and Prometheus metrics, served by gunicorn's master.

The master outlives its workers, so liveness means "the pod's supervisor runs" and readiness and metrics
come from what the workers publish (provider.server.pod).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from werkzeug.serving import BaseWSGIServer, make_server

Readiness = Callable[[], tuple[bool, str]]


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


def serve_health(app: Flask, listen: str) -> BaseWSGIServer:
    """Start the side port in a daemon thread and return the server (call `.shutdown()` to stop)."""
    host, _, port = listen.rpartition(":")
    server = make_server(host.strip("[]"), int(port), app, threaded=True)
    threading.Thread(target=server.serve_forever, name="sigwarden-health", daemon=True).start()
    return server
