"""The provider port's front door: TLS handshakes and request reads on one event loop, never on a thread.

An idle or slow connection costs a few kilobytes, not a worker: the handshake, the request head and the body
are read here, each under its own timeout, and only a complete request is handed to the app's thread pool.
Anything the front door refuses itself (a head over the size limit, a body too large, a timeout mid-request,
malformed HTTP) is answered as a ProviderResponse with `systemError`, like the app's own 4xx answers.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import h11

from provider.config import ServerConfig
from provider.metrics import Metrics
from provider.server.connections import Connection, ConnectionTable, Phase
from provider.server.handshakes import report_handshake_failure
from provider.server.protocol import REFUSED_STATUSES, refused
from provider.server.wsgi import HTTPAnswer, HTTPRequest, WSGIApp, call_app, json_answer

log = logging.getLogger("sigwarden.server")

READ_CHUNK = 64 * 1024
WRITE_BUFFER = 1024 * 1024
# Connections that end this way get no TLS close_notify: the peer is gone or is not worth waiting for.
_ABRUPT = frozenset({"evicted", "reset", "send_timeout", "handshake_timeout", "handshake_failed"})
# How long a refused client may keep sending before the connection is closed under it.
_LINGER = 2.0
# How long a graceful close may wait for a peer that does not read what is still buffered for it.
_CLOSE_GRACE = 5.0


# asyncio gives every TLS connection a 256 KiB read buffer up front: 1 GiB for 4096 mostly idle connections.
# One TLS record (16 KiB plus overhead) per read is plenty for requests of a few kilobytes.
TLS_READ_BUFFER = 17 * 1024


def shrink_tls_buffers() -> None:
    """Make every TLS connection asyncio creates in this process allocate TLS_READ_BUFFER, not 256 KiB."""
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


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

    async def handle(self, sock: socket.socket) -> None:
        """Serve one accepted connection until it closes, times out or is evicted."""
        task = asyncio.current_task()
        connection = Connection(abort=task.cancel if task is not None else sock.close, peer=_peer(sock))
        if not self.table.admit(connection):
            sock.close()
            return
        writer: asyncio.StreamWriter | None = None
        reason = "done"
        try:
            limits = self._limits()
            try:
                async with asyncio.timeout(limits.handshake_timeout):
                    # No TLS state (tens of kilobytes) for a connection until its client says something.
                    await _readable(sock)
                    reader, writer = await _open_tls(sock, self._tls(), limits.handshake_timeout + 1)
            except TimeoutError:
                reason = "handshake_timeout"
                return
            except (ssl.SSLError, ConnectionError, OSError) as exc:
                report_handshake_failure(connection.peer, exc)
                reason = "handshake_failed"
                return
            reason = await self._converse(reader, writer, connection, limits)
        except asyncio.CancelledError:
            reason = "evicted"  # counted by the table already; a shutdown cancels this way too
        except TimeoutError:
            reason = "send_timeout"
        except (ConnectionError, OSError, ssl.SSLError, h11.ProtocolError) as exc:
            log.debug("connection ended", extra={"peer": connection.peer, "error": str(exc)})
            reason = "reset"
        finally:
            self.table.remove(connection, reason)
            if writer is not None:
                _close(writer, graceful=reason not in _ABRUPT)
            else:
                sock.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        connection: Connection, limits: Limits) -> str:
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
                    message = refused(refusal.message) if refusal.status in REFUSED_STATUSES else refusal.message
                    await self._send(writer, http, json_answer(refusal.status, message), limits, True)
                    await _discard_input(reader)
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
        # h11 bounds only a head still incomplete; one that arrives whole in a single read is counted here.
        received = len(http.trailing_data[0])  # pipelined bytes already buffered for this request
        while (event := _next_event(http, limits)) is h11.NEED_DATA:
            data = await _read(reader, deadline, timeout)
            received += len(data)
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
        if received - len(http.trailing_data[0]) > limits.max_header_bytes:
            raise _head_too_large(limits)
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
            raise _head_too_large(limits) from None
        raise Refusal("malformed_http", exc.error_status_hint, f"malformed HTTP request: {exc}") from None


def _head_too_large(limits: Limits) -> Refusal:
    """The request line, header fields and blank line together are over server.maxHeaderBytes."""
    return Refusal("header_too_large", 431, f"request head is over the limit of {limits.max_header_bytes} "
                                            "bytes (server.maxHeaderBytes)")


async def _read(reader: asyncio.StreamReader, deadline: float, timeout: Refusal) -> bytes:
    try:
        async with asyncio.timeout_at(deadline):
            return await reader.read(READ_CHUNK)
    except TimeoutError:
        raise timeout from None


async def _discard_input(reader: asyncio.StreamReader) -> None:
    """Read and drop what the client is still sending, briefly, so closing does not reset the connection
    (and destroy the answer) while the client is still writing the rest of a refused request."""
    with contextlib.suppress(TimeoutError, ConnectionError, OSError, ssl.SSLError):
        async with asyncio.timeout(_LINGER):
            while await reader.read(READ_CHUNK):
                pass


async def _readable(sock: socket.socket) -> None:
    """Wait until the client sends its first bytes, without reading them."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


async def _open_tls(sock: socket.socket, context: ssl.SSLContext,
                    handshake_timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_CHUNK)
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock, ssl=context,
                                                      ssl_handshake_timeout=handshake_timeout)
    # A 100-item answer is ~65 KiB: over asyncio's default 64 KiB mark every such answer paused the writer
    # for a round of the loop. A client that does not read is still cut off by server.bodyTimeout.
    transport.set_write_buffer_limits(high=WRITE_BUFFER)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def _peer(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername())
    except OSError:
        return ""


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
