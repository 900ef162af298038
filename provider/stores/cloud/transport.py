"""Cloud SDK requests through sigwarden's one way out: the store's egress policy and the job's deadline.

Each SDK is handed this transport (botocore's `before-send` hook, azure-core's transport, google-auth's
request callable, the Alibaba clients' endpoints are reached through it too), so an SDK call is egress-checked,
concurrency-limited and bound by the deadline of the job that needs the credential. The service hosts an
SDK talks to are chosen by the operator (the SDK's defaults and its standard environment variables, never
an image name), so each is trusted by name, like a lookaside URL: `denyNetworks` still apply.

TLS trusts the system store, or the standard CA-bundle variables the SDKs themselves honour
(`REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`), for proxies that re-sign TLS.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlparse

from provider.errors import ErrorCode, ItemError
from provider.stores.fetch import Fetched, Outbound

MAX_SDK_RESPONSE_BYTES = 1024 * 1024
MAX_SDK_HOSTS = 64
DEFAULT_BUDGET = 30.0


class _NoQueryStrings(logging.Filter):
    """urllib3 logs each request line at DEBUG, query string included; some cloud APIs carry the pod's identity
    token there (Alibaba's AssumeRoleWithOIDC). Those lines keep only the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and a.startswith("/") and "?" in a
                                                  for a in record.args):
            record.args = tuple(a.split("?", 1)[0] + "?…" if isinstance(a, str) and a.startswith("/") and "?" in a
                                else a for a in record.args)
        return True


_QUERY_FILTER = _NoQueryStrings()


def quiet_sdk_logs() -> None:
    """Keep tokens out of the logs whatever the log level: SDK debug output (botocore logs response bodies,
    azure-identity and the Alibaba cores request details) stays off, and urllib3 lines lose their query."""
    for name in ("botocore", "boto3", "azure", "msal", "google.auth", "alibabacloud_credentials", "Tea",
                 "darabonba", "alibabacloud_tea_openapi"):
        logging.getLogger(name).setLevel(logging.WARNING)
    pool = logging.getLogger("urllib3.connectionpool")
    if _QUERY_FILTER not in pool.filters:
        pool.addFilter(_QUERY_FILTER)


def ca_bundle() -> str | bool:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True


class SdkTransport:
    """Sends an SDK's requests with `Outbound.fetch`, under the deadline set by `within(deadline)`."""

    def __init__(self, outbound: Outbound) -> None:
        quiet_sdk_logs()
        self._base = outbound
        self._by_host: dict[str, Outbound] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def close(self) -> None:
        with self._lock:
            outbounds, self._by_host = list(self._by_host.values()), {}
        for outbound in outbounds:
            outbound.close()

    @contextlib.contextmanager
    def within(self, deadline: float) -> Iterator[None]:
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = previous

    @property
    def registry(self) -> Outbound:
        """The store's own client: for a registry host's token exchange, with the store's CA and policy."""
        return self._base

    @property
    def deadline(self) -> float:
        deadline = getattr(self._local, "deadline", None)
        return deadline if deadline is not None else time.monotonic() + DEFAULT_BUDGET

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
             metadata_server: bool = False) -> Fetched:
        """One SDK request. Plain http only to a cloud's metadata server (`metadata_server`: the node-local
        endpoint that has no TLS), which is reached only when a store asks for the node's identity."""
        parsed = urlparse(url)
        if parsed.scheme != "https" and not (metadata_server and parsed.scheme == "http"):
            # Identity tokens and signed requests travel to cloud services over TLS only.
            raise ItemError(ErrorCode.UNAUTHORIZED, f"refusing to send a cloud identity request over plain "
                                                    f"http to {parsed.netloc}")
        return self._outbound(parsed.netloc).fetch(method, url, self.deadline, MAX_SDK_RESPONSE_BYTES,
                                                   what=f"cloud service {parsed.hostname}",
                                                   headers=dict(headers), data=body)

    def _outbound(self, netloc: str) -> Outbound:
        netloc = netloc.lower()
        with self._lock:
            outbound = self._by_host.get(netloc)
            if outbound is None:
                if len(self._by_host) >= MAX_SDK_HOSTS:
                    raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"cloud SDK asked for more than {MAX_SDK_HOSTS} "
                                                                    f"service hosts; not reaching {netloc}")
                outbound = self._base.with_policy(self._base.policy.naming(netloc))
                outbound.session.verify = ca_bundle()
                self._by_host[netloc] = outbound
        return outbound


def azure_transport(transport: SdkTransport, metadata_hosts: frozenset[str] = frozenset()) -> Any:
    """An azure-core HttpTransport that sends through `transport` (so azure-identity's token requests are
    egress-checked and bound by the job's deadline); plain http only to `metadata_hosts` (IMDS)."""
    from azure.core.pipeline.transport import HttpTransport
    from azure.core.rest._http_response_impl import HttpResponseImpl

    class _Closed:
        def close(self) -> None:
            pass

    class OutboundTransport(HttpTransport):  # type: ignore[misc]
        def __enter__(self) -> OutboundTransport:
            return self

        def __exit__(self, *_: object) -> None:
            pass

        def open(self) -> None:
            pass

        def close(self) -> None:
            pass

        def send(self, request: Any, **_: Any) -> Any:
            body = request.content if hasattr(request, "content") else request.data
            if isinstance(body, dict):
                from urllib.parse import urlencode

                body = urlencode(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            host = (urlparse(request.url).hostname or "").lower()
            fetched = transport.send(request.method, request.url, dict(request.headers), body or None,
                                     metadata_server=host in metadata_hosts)
            response = HttpResponseImpl(
                request=request, internal_response=_Closed(), status_code=fetched.status, reason="",
                content_type=fetched.headers.get("Content-Type", ""), headers=dict(fetched.headers),
                stream_download_generator=lambda *a, **k: iter([fetched.body]))
            response._content = fetched.body  # read whole, under the deadline, by Outbound.fetch
            response._is_stream_consumed = True
            response._is_closed = True
            return response

    return OutboundTransport()


def google_request(transport: SdkTransport, metadata_hosts: frozenset[str]) -> Any:
    """A google-auth transport Request that sends through `transport`; plain http only to `metadata_hosts`."""
    from google.auth import transport as google_transport

    class _Response(google_transport.Response):  # type: ignore[misc]
        def __init__(self, fetched: Fetched) -> None:
            self._fetched = fetched

        @property
        def status(self) -> int:
            return self._fetched.status

        @property
        def headers(self) -> Mapping[str, str]:
            return self._fetched.headers

        @property
        def data(self) -> bytes:
            return self._fetched.body

    class _Request(google_transport.Request):  # type: ignore[misc]
        def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                     timeout: Any = None, **_: Any) -> _Response:
            data = body.encode() if isinstance(body, str) else body
            host = (urlparse(url).hostname or "").lower()
            return _Response(transport.send(method, url, dict(headers or {}), data or None,
                                            metadata_server=host in metadata_hosts))

    return _Request()


def requests_session(transport: SdkTransport) -> Any:
    """A requests.Session for SDKs built on requests (hvac): every request goes through `transport`."""
    import requests
    from requests.structures import CaseInsensitiveDict

    class OutboundSession(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
            prepared = requests.Request(str(method), str(url), headers=kwargs.get("headers"),
                                        params=kwargs.get("params"), data=kwargs.get("data"),
                                        json=kwargs.get("json")).prepare()
            body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
            fetched = transport.send(str(prepared.method), str(prepared.url), dict(prepared.headers), body)
            response = requests.Response()
            response.status_code = fetched.status
            response.headers = CaseInsensitiveDict(fetched.headers)
            response._content = fetched.body
            response.url = fetched.url
            response.request = prepared
            return response

    session = OutboundSession()
    session.trust_env = False
    return session
