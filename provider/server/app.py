"""The Flask app Gatekeeper talks to: thin handlers that validate the envelope and call the engine."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections import Counter
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from provider.engine import transient_system_error
from provider.serialised import response_bytes
from provider.server.protocol import BadRequest, parse_provider_request, provider_response
from provider.state import ProviderState

log = logging.getLogger("sigwarden.request")

_TRACE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _reply(status: int, system_error: str = "", items: list[dict[str, Any]] | None = None) -> Response:
    # Plain json.dumps: Flask's provider sorts keys, which costs a lot on 100-item answers.
    body = json.dumps(provider_response(items or [], system_error), separators=(",", ":"))
    return Response(body, status=status, mimetype="application/json")


def create_app(state: ProviderState) -> Flask:
    """The provider app for `state`; routes read `state.runtime` once per request."""
    app = Flask("sigwarden")
    metrics = state.metrics

    def handle(endpoint: str) -> Response:
        started = time.perf_counter()
        supplied = request.headers.get("X-Request-Id", "")
        trace_id = supplied if _TRACE_ID.match(supplied) else uuid.uuid4().hex
        runtime = state.runtime
        if runtime is None:
            return _reply(503, "provider is starting: configuration not loaded yet")
        server = runtime.config.server
        if request.content_length is not None and request.content_length > server.max_body_bytes:
            metrics.bad_requests.labels("body_too_large").inc()
            return _reply(400, f"request body is {request.content_length} bytes, over the limit of "
                               f"{server.max_body_bytes}")
        body = request.stream.read(server.max_body_bytes + 1)
        if len(body) > server.max_body_bytes:
            metrics.bad_requests.labels("body_too_large").inc()
            return _reply(400, f"request body is over the limit of {server.max_body_bytes} bytes")
        try:
            keys = parse_provider_request(body, server.max_keys)
        except BadRequest as exc:
            metrics.bad_requests.labels("malformed").inc()
            log.info("bad request", extra={"endpoint": endpoint, "traceID": trace_id, "error": str(exc)})
            return _reply(400, str(exc))
        run = runtime.engine.verify if endpoint == "verify" else runtime.engine.resolve
        items = run(keys, trace_id)
        outcomes = Counter(item.outcome for item in items)
        for outcome, count in outcomes.items():
            metrics.items.labels(endpoint, outcome).inc(count)
            if outcome not in ("verified", "unverified", "resolved"):
                metrics.item_errors.labels(outcome).inc(count)
        metrics.count_verified(item.vouched_by for item in items)
        elapsed = time.perf_counter() - started
        metrics.request_seconds.labels(endpoint).observe(elapsed)
        log.info("request", extra={"endpoint": endpoint, "traceID": trace_id, "keys": len(keys),
                                   "items": len(items), "outcomes": dict(outcomes),
                                   "durationMs": round(elapsed * 1000, 2)})
        # Gatekeeper caches every item, errors included, but never a systemError: an unfinished item is
        # reported there, so the next admission asks again and gets the answer the work has cached by then.
        body = response_bytes((item.to_bytes() for item in items if not item.transient),
                              transient_system_error(items))
        return Response(body, status=200, mimetype="application/json")

    @app.post("/verify")
    @app.post("/ratify/gatekeeper/v1/verify")
    def verify() -> Response:
        return handle("verify")

    @app.post("/mutate")
    @app.post("/ratify/gatekeeper/v1/mutate")
    def mutate() -> Response:
        return handle("mutate")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # 404/405 and friends answer in the protocol's shape, never as an HTML page.
        return _reply(exc.code or 400, f"{exc.name}: {request.method} {request.path} "
                                       "(use POST /verify or POST /mutate)")

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.path})
        return _reply(500, "internal error; see the provider log")

    return app
