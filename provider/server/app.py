"""The Flask app Gatekeeper talks to: thin handlers that validate the envelope and call the engine.

POST to the provider endpoints is answered by `handle` straight from the WSGI environ, in front of Flask:
Flask's request context, routing and response objects cost as much as a warm one-key answer. Everything else
(wrong method, unknown path, errors) goes through Flask and its error handlers, which answer in the same shape.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_content_length, get_input_stream

from provider.engine import transient_system_error
from provider.serialised import response_bytes
from provider.server.decisions import decisions
from provider.server.protocol import BadRequest, parse_provider_request, provider_response, refused
from provider.state import ProviderState

log = logging.getLogger("sigwarden.request")

_TRACE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ENDPOINTS = {"/verify": "verify", "/ratify/gatekeeper/v1/verify": "verify",
             "/mutate": "mutate", "/ratify/gatekeeper/v1/mutate": "mutate"}
INTERNAL_ERROR = "internal error; see the provider log"

Answer = tuple[int, bytes]


def _document(system_error: str) -> bytes:
    # Plain json.dumps: Flask's provider sorts keys, which costs a lot on 100-item answers.
    return json.dumps(provider_response((), system_error), separators=(",", ":")).encode()


def _reply(status: int, system_error: str = "") -> Response:
    return Response(_document(system_error), status=status, mimetype="application/json")


def handler(state: ProviderState) -> Callable[[str, dict[str, Any]], Answer]:
    """`handle(endpoint, environ)`: the status and body answering one provider request."""
    metrics = state.metrics

    def handle(endpoint: str, environ: dict[str, Any]) -> Answer:
        started = time.perf_counter()
        supplied = environ.get("HTTP_X_REQUEST_ID", "")
        trace_id = supplied if _TRACE_ID.match(supplied) else uuid.uuid4().hex
        runtime = state.runtime
        if runtime is None:
            return 503, _document("provider is starting: configuration not loaded yet")
        server = runtime.config.server
        declared = get_content_length(environ)
        if declared is not None and declared > server.max_body_bytes:
            metrics.bad_requests.labels("body_too_large").inc()
            return 400, _document(refused(f"request body is {declared} bytes, over the limit of "
                                          f"{server.max_body_bytes}"))
        body = get_input_stream(environ).read(server.max_body_bytes + 1)
        if len(body) > server.max_body_bytes:
            metrics.bad_requests.labels("body_too_large").inc()
            return 400, _document(refused(f"request body is over the limit of {server.max_body_bytes} bytes"))
        try:
            keys = parse_provider_request(body, server.max_keys, allow_empty=endpoint == "mutate")
        except BadRequest as exc:
            metrics.bad_requests.labels("malformed").inc()
            log.info("bad request", extra={"endpoint": endpoint, "traceID": trace_id, "error": str(exc)})
            return 400, _document(refused(str(exc)))
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
                                   "durationMs": round(elapsed * 1000, 2), **decisions(items)})
        # Gatekeeper caches every item, errors included, but never a systemError: an unfinished item is
        # reported there, so the next admission asks again and gets the answer the work has cached by then.
        return 200, response_bytes((item.to_bytes() for item in items if not item.transient),
                                   transient_system_error(items))

    return handle


class ProviderEndpoints:
    """WSGI middleware in front of Flask: POST to an endpoint of ENDPOINTS goes straight to `handle`."""

    def __init__(self, flask_app: Callable[..., Iterable[bytes]],
                 handle: Callable[[str, dict[str, Any]], Answer]) -> None:
        self.flask_app = flask_app
        self.handle = handle

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        endpoint = ENDPOINTS.get(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") == "POST" else None
        if endpoint is None:
            return self.flask_app(environ, start_response)
        try:
            status, body = self.handle(endpoint, environ)
        except Exception:  # what Flask's error handler below does for the other routes
            log.exception("unhandled error", extra={"path": environ.get("PATH_INFO", "")})
            status, body = 500, _document(INTERNAL_ERROR)
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def create_app(state: ProviderState) -> Flask:
    """The provider app for `state`; routes read `state.runtime` once per request."""
    app = Flask("sigwarden")
    handle = handler(state)
    app.wsgi_app = ProviderEndpoints(app.wsgi_app, handle)  # type: ignore[method-assign]

    def routed(endpoint: str) -> Response:
        status, body = handle(endpoint, request.environ)
        return Response(body, status=status, mimetype="application/json")

    # Flask knows the routes too, so another method on them is a 405, not a 404.
    for path, endpoint in ENDPOINTS.items():
        app.add_url_rule(path, path, functools.partial(routed, endpoint), methods=["POST"])

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # 404/405 and friends answer in the protocol's shape, never as an HTML page.
        return _reply(exc.code or 400, f"{exc.name}: {request.method} {request.path} "
                                       "(use POST /verify or POST /mutate)")

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.path})
        return _reply(500, INTERNAL_ERROR)

    return app
