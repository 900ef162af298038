"""`external_data` for the Rego harness: a real call to the provider, answered in Gatekeeper's shape.

Gatekeeper hands templates `{"responses": [[key, value], …], "errors": [[key, error], …],
"status_code": int, "system_error": str}`; templates written for Gatekeeper read exactly that.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests

from provider.engine import Engine
from provider.server.protocol import BadRequest, parse_provider_request, refused

MUTATION_PROVIDER = "sigwarden-mutation"


class ExternalData(Protocol):
    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer `external_data({"provider": name, "keys": [...]})` as Gatekeeper would."""
        ...


def gatekeeper_shape(items: Sequence[dict[str, Any]], system_error: str = "", status: int = 200) -> dict[str, Any]:
    responses = [[item["key"], item["value"]] for item in items if "value" in item]
    errors = [[item["key"], item["error"]] for item in items if item.get("error")]
    return {"responses": responses, "errors": errors, "status_code": status, "system_error": system_error}


def _keys(request: dict[str, Any]) -> list[str]:
    keys = request.get("keys") or []
    return list(dict.fromkeys(str(k) for k in keys))  # Gatekeeper de-duplicates before calling


def provider_request(keys: Sequence[str]) -> dict[str, Any]:
    """The ProviderRequest Gatekeeper sends for `keys`."""
    return {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
            "request": {"keys": list(keys)}}


@dataclass
class EngineExternalData:
    """The in-process engine (`--config`): the same code path as the server, without HTTP."""

    engine: Engine
    timeout: float = 30.0
    calls: int = 0

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        keys = _keys(request)
        if not keys:
            return gatekeeper_shape([])
        refusal = self._refusal(keys, allow_empty=request.get("provider") == MUTATION_PROVIDER)
        if refusal:
            return gatekeeper_shape([], refusal, 400)
        run = self.engine.resolve if request.get("provider") == MUTATION_PROVIDER else self.engine.verify
        items = run(keys, uuid.uuid4().hex, deadline=time.monotonic() + self.timeout)
        return gatekeeper_shape([item.to_json() for item in items])

    def _refusal(self, keys: Sequence[str], allow_empty: bool) -> str:
        """The server's answer to a request over its limits (maxBodyBytes, maxKeys), as the server words it."""
        server = self.engine.config.server
        body = json.dumps(provider_request(keys)).encode()
        if len(body) > server.max_body_bytes:
            return refused(f"request body is over the limit of {server.max_body_bytes} bytes")
        try:
            parse_provider_request(body, server.max_keys, allow_empty)
        except BadRequest as exc:
            return refused(str(exc))
        return ""


def check_client_files(cert: tuple[str, str] | None, ca: str | None) -> None:
    """Load --cert/--key/--ca once up front: a bad file is a usage error naming it (ValueError), not a failure of
    every external_data call raised from inside the Rego engine."""
    context = ssl.create_default_context()
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except OSError as exc:  # ssl.SSLError is an OSError
            raise ValueError(f"--ca {ca}: {_ssl_reason(exc, 'no PEM certificates found')}") from None
    if cert is not None:
        certfile, keyfile = cert
        if not keyfile:
            raise ValueError(f"--cert {certfile}: needs --key")
        for option, path in (("--cert", certfile), ("--key", keyfile)):
            try:
                Path(path).read_bytes()
            except OSError as exc:
                raise ValueError(f"{option} {path}: cannot read: {exc.strerror or exc}") from None
        try:
            context.load_cert_chain(certfile, keyfile)
        except OSError as exc:
            reason = _ssl_reason(exc, "not a PEM certificate and its matching private key")
            raise ValueError(f"--cert {certfile} / --key {keyfile}: {reason}") from None


def _ssl_reason(exc: OSError, default: str) -> str:
    if isinstance(exc, ssl.SSLError):
        return default
    return exc.strerror or str(exc)


@dataclass
class HTTPExternalData:
    """A running provider (`--provider URL`), over HTTPS with an optional client certificate."""

    url: str
    cert: tuple[str, str] | None = None
    ca: str | None = None
    timeout: float = 10.0
    calls: int = 0

    def __post_init__(self) -> None:
        check_client_files(self.cert, self.ca)
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.cert = self.cert
        self.session.verify = self.ca or True

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        keys = _keys(request)
        if not keys:
            return gatekeeper_shape([])
        path = "/mutate" if request.get("provider") == MUTATION_PROVIDER else "/verify"
        try:
            response = self.session.post(self.url.rstrip("/") + path, json=provider_request(keys),
                                         timeout=self.timeout)
            answer = response.json()["response"]
        except (requests.exceptions.RequestException, ValueError, KeyError, TypeError) as exc:
            # What Gatekeeper reports when it cannot reach the provider.
            return gatekeeper_shape([], f"failed to send external data request: {type(exc).__name__}: {exc}", 0)
        return gatekeeper_shape(answer.get("items") or [], answer.get("systemError") or "", response.status_code)
