"""The plain-HTTP side port: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import threading

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.serving import BaseWSGIServer, make_server

from provider.state import ProviderState


def create_health_app(state: ProviderState) -> Flask:
    app = Flask("sigwarden-health")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def readyz() -> Response:
        runtime = state.runtime
        if runtime is None:
            return Response("not ready: configuration and trust material not loaded\n", status=503,
                            mimetype="text/plain")
        return Response(f"ready: {len(runtime.config.authorities)} authorities, "
                        f"{len(runtime.config.stores)} stores\n", mimetype="text/plain")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), mimetype=CONTENT_TYPE_LATEST)

    return app


def serve_health(state: ProviderState, listen: str) -> BaseWSGIServer:
    """Start the side port in a daemon thread and return the server (call `.shutdown()` to stop)."""
    host, _, port = listen.rpartition(":")
    server = make_server(host.strip("[]"), int(port), create_health_app(state), threaded=True)
    threading.Thread(target=server.serve_forever, name="sigwarden-health", daemon=True).start()
    return server
