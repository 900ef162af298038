"""The provider port's front door: TLS handshakes and request reads on one event loop, never on a thread.

An idle or slow connection costs a few kilobytes, not a worker: the handshake, the request head and the body
are read here, each under its own timeout, and only a complete request is handed to the app's thread pool.
Anything the front door refuses itself (a head over the size limit, a body too large, a timeout mid-request,
malformed HTTP) is answered as a ProviderResponse with `systemError`, like the app's own 4xx answers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import h11

from provider.config import ServerConfig
from provider.metrics import Metrics
from provider.server.connections import Connection, ConnectionTable, Phase
from provider.server.wsgi import HTTPAnswer, HTTPRequest, WSGIApp, call_app, json_answer

log = logging.getLogger("sigwarden.server")

READ_CHUNK = 64 * 1024
# Connections that end this way get no TLS close_notify: the peer is gone or is not worth waiting for.
_ABRUPT = frozenset({"evicted", "reset", "send_timeout", "handshake_timeout", "handshake_failed"})
# How long a graceful close may wait for a peer that does not read what is still buffered for it.
_CLOSE_GRACE = 5.0


@dataclass(frozen=True)
class Limits:
    """The per-connection budgets, read from the live config for every new connection."""

    handshake_timeout: float
    header_timeout: float
    body_timeout: float
    idle_timeout: float
    max_header_bytes: int
    max_body_bytes: int

    @classmethod
    def of(cls, server: ServerConfig) -> Limits:
        return cls(server.handshake_timeout, server.header_timeout, server.body_timeout, server.idle_timeout,
                   server.max_header_bytes, server.max_body_bytes)


class Refusal(Exception):
    """The connection ends here; with a status, the client first gets a JSON answer saying why."""

    def __init__(self, reason: str, status: int = 0, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.status = status
        self.message = message


class FrontDoor:
    """Serves one listening socket's connections; `handle` is the asyncio client callback."""

    def __init__(self, app: WSGIApp, tls: Callable[[], ssl.SSLContext], limits: Callable[[], Limits],
                 table: ConnectionTable, metrics: Metrics, threads: int) -> None:
        self._app = app
        self._tls = tls
        self._limits = limits
        self.table = table
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="sigwarden-app")

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()

        def abort() -> None:
            writer.transport.abort()
            if task is not None:
                task.cancel()

        connection = Connection(abort=abort, peer=str(writer.get_extra_info("peername")))
        if not self.table.admit(connection):
            writer.transport.abort()
            return
        reason = "done"
        try:
            reason = await self._converse(reader, writer, connection)
        except asyncio.CancelledError:
            reason = "evicted"  # counted by the table already; a shutdown cancels this way too
        except TimeoutError:
            reason = "send_timeout"
        except (ConnectionError, OSError, ssl.SSLError, h11.ProtocolError) as exc:
            log.debug("connection ended", extra={"peer": connection.peer, "error": str(exc)})
            reason = "reset"
        finally:
            self.table.remove(connection, reason)
            _close(writer, graceful=reason not in _ABRUPT)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        connection: Connection) -> str:
        limits = self._limits()
        try:
            async with asyncio.timeout(limits.handshake_timeout):
                await writer.start_tls(self._tls(), ssl_handshake_timeout=limits.handshake_timeout + 1)
        except TimeoutError:
            return "handshake_timeout"
        except (ssl.SSLError, ConnectionError, OSError) as exc:
            log.debug("TLS handshake failed", extra={"peer": connection.peer, "error": str(exc)})
            return "handshake_failed"
        ssl_object = writer.get_extra_info("ssl_object")
        peer_cert = ssl_object.getpeercert() if ssl_object is not None else None
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        wait, quiet_reason = limits.header_timeout, "header_timeout"
        loop = asyncio.get_running_loop()
        while True:
            self.table.enter(connection, Phase.WAITING)
            try:
                request = await self._read_request(http, reader, writer, connection, limits, wait, quiet_reason,
                                                   peer_cert)
            except Refusal as refusal:
                if refusal.status:
                    self._metrics.bad_requests.labels(refusal.reason).inc()
                    await self._send(writer, http, json_answer(refusal.status, refusal.message), limits, True)
                return refusal.reason
            if request is None:
                return "done"
            self.table.enter(connection, Phase.BUSY)
            answer = await loop.run_in_executor(self._executor, call_app, self._app, request)
            await self._send(writer, http, answer, limits)
            if http.our_state is not h11.DONE or http.their_state is not h11.DONE:
                return "done"
            http.start_next_cycle()
            limits = self._limits()
            wait, quiet_reason = limits.idle_timeout, "idle_timeout"

    async def _read_request(self, http: h11.Connection, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter, connection: Connection, limits: Limits,
                            wait: float, quiet_reason: str, peer_cert: dict | None) -> HTTPRequest | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        timeout = Refusal(quiet_reason)  # nothing of a request arrived: close without a word
        while (event := _next_event(http, limits)) is h11.NEED_DATA:
            data = await _read(reader, deadline, timeout)
            if timeout.status == 0 and data:
                # The first bytes of a request: from now on the whole head must arrive in time.
                self.table.enter(connection, Phase.READING)
                deadline = loop.time() + limits.header_timeout
                timeout = Refusal("header_timeout", 408, f"request head not received within "
                                                         f"{limits.header_timeout:g}s (server.headerTimeout)")
            http.receive_data(data)
        if isinstance(event, h11.ConnectionClosed):
            return None
        assert isinstance(event, h11.Request)
        self.table.enter(connection, Phase.READING)
        headers = tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers)
        declared = dict(headers).get("content-length")
        if declared is not None and int(declared) > limits.max_body_bytes:
            raise Refusal("body_too_large", 400, f"request body is {declared} bytes, over the limit of "
                                                 f"{limits.max_body_bytes} bytes (server.maxBodyBytes)")
        if http.they_are_waiting_for_100_continue:
            writer.write(http.send(h11.InformationalResponse(status_code=100, headers=[])))
        body = await self._read_body(http, reader, limits)
        return HTTPRequest(method=event.method.decode("ascii"), target=event.target.decode("latin-1"),
                           headers=headers, body=body, peer=_address(writer.get_extra_info("peername")),
                           server=_address(writer.get_extra_info("sockname")), peer_cert=peer_cert)

    async def _read_body(self, http: h11.Connection, reader: asyncio.StreamReader, limits: Limits) -> bytes:
        deadline = asyncio.get_running_loop().time() + limits.body_timeout
        timeout = Refusal("body_timeout", 408, f"request body not received within {limits.body_timeout:g}s "
                                               "(server.bodyTimeout)")
        chunks: list[bytes] = []
        size = 0
        while not isinstance(event := _next_event(http, limits), h11.EndOfMessage):
            if event is h11.NEED_DATA:
                http.receive_data(await _read(reader, deadline, timeout))
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > limits.max_body_bytes:
                    raise Refusal("body_too_large", 400, f"request body is over the limit of "
                                                         f"{limits.max_body_bytes} bytes (server.maxBodyBytes)")
                chunks.append(event.data)
        return b"".join(chunks)

    async def _send(self, writer: asyncio.StreamWriter, http: h11.Connection, answer: HTTPAnswer,
                    limits: Limits, close: bool = False) -> None:
        if http.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        headers = [*answer.headers, ("Connection", "close")] if close else answer.headers
        writer.write(http.send(h11.Response(status_code=answer.status, headers=headers))
                     + http.send(h11.Data(data=answer.body)) + http.send(h11.EndOfMessage()))
        async with asyncio.timeout(limits.body_timeout):  # a client that does not read its answer
            await writer.drain()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _next_event(http: h11.Connection, limits: Limits) -> object:
    try:
        return http.next_event()
    except h11.RemoteProtocolError as exc:
        if exc.error_status_hint == 431:
            raise Refusal("header_too_large", 431, f"request head is over the limit of {limits.max_header_bytes} "
                                                   "bytes (server.maxHeaderBytes)") from None
        raise Refusal("malformed_http", exc.error_status_hint, f"malformed HTTP request: {exc}") from None


async def _read(reader: asyncio.StreamReader, deadline: float, timeout: Refusal) -> bytes:
    try:
        async with asyncio.timeout_at(deadline):
            return await reader.read(READ_CHUNK)
    except TimeoutError:
        raise timeout from None


def _close(writer: asyncio.StreamWriter, graceful: bool) -> None:
    transport = writer.transport
    if not graceful or transport.is_closing():
        transport.abort()
        return
    writer.close()
    asyncio.get_running_loop().call_later(_CLOSE_GRACE, transport.abort)


def _address(name: object) -> tuple[str, int]:
    if isinstance(name, tuple) and len(name) >= 2:
        return str(name[0]), int(name[1])
    return "", 0
