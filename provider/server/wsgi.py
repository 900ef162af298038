"""Hand one complete HTTP request to the Flask app (PEP 3333) and collect its whole answer.

The front door reads the request head and body on the event loop; only then does a worker thread run the
app, so a slow client never holds a thread. Answers are small JSON documents, collected in memory.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from provider.server.protocol import provider_response

log = logging.getLogger("sigwarden.server")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Where the verified client certificate (as `ssl.getpeercert()` gives it) is put for the app.
PEER_CERT = "sigwarden.peer_cert"


@dataclass(frozen=True)
class HTTPRequest:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    peer: tuple[str, int]
    server: tuple[str, int]
    peer_cert: dict[str, Any] | None


@dataclass(frozen=True)
class HTTPAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def environ_for(request: HTTPRequest) -> dict[str, Any]:
    path, _, query = request.target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": request.server[0],
        "SERVER_PORT": str(request.server[1]),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": request.peer[0],
        "REMOTE_PORT": str(request.peer[1]),
        "CONTENT_LENGTH": str(len(request.body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        PEER_CERT: request.peer_cert,
    }
    for name, value in request.headers:
        if "_" in name or name in ("content-length", "transfer-encoding"):
            continue  # underscores could spoof another header's CGI name; the body is already de-chunked
        key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def call_app(app: WSGIApp, request: HTTPRequest) -> HTTPAnswer:
    """Run the app on one request; an exception that escapes it becomes a JSON 500 (never a stack trace)."""
    started: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
        started["status"], started["headers"] = status, headers
        return written.append

    try:
        result = app(environ_for(request), start_response)
        try:
            written.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return HTTPAnswer(int(started["status"].split(" ", 1)[0]), list(started["headers"]), b"".join(written))
    except Exception:
        log.exception("the app failed outside its own error handling")
        return json_answer(500, "internal error; see the provider log")


def json_answer(status: int, system_error: str) -> HTTPAnswer:
    """A ProviderResponse carrying `system_error`, for answers the front door gives itself."""
    body = json.dumps(provider_response(system_error=system_error), separators=(",", ":")).encode()
    return HTTPAnswer(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body)
