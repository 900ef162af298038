"""Clients that cost a server without ever finishing a request: idle TCP connections, ClientHellos sent a
byte at a time, request heads and bodies that stop half-way. Shared by the tests and the benchmark."""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.helpers import ProviderPKI


def allow_open_files(count: int) -> None:
    """Raise this process's open-file limit so the test itself can hold `count` sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count + 256, hard), hard))


def client_hello() -> bytes:
    """The first flight of a real TLS client, as bytes."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


@dataclass
class Crowd:
    """Idle connections (nothing sent) and dribblers (a ClientHello, a byte at a time) held open."""

    idle: list[socket.socket] = field(default_factory=list)
    dribblers: list[socket.socket] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def sockets(self) -> list[socket.socket]:
        return self.idle + self.dribblers

    def still_open(self) -> int:
        """How many connections the server has not closed (no EOF, no reset)."""
        alive = 0
        for sock in self.sockets:
            sock.setblocking(False)  # with a timeout set, recv would wait that long for data
            try:
                alive += sock.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                alive += 1  # nothing to read and not closed
            except OSError:
                pass
        return alive


@contextlib.contextmanager
def crowd(port: int, idle: int, dribblers: int, interval: float = 1.0) -> Iterator[Crowd]:
    """Open the connections, keep the dribblers dribbling in a thread, close everything on exit."""
    allow_open_files(idle + dribblers + 64)
    hello = client_hello()
    held = Crowd()
    try:
        for _ in range(idle):
            held.idle.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        for _ in range(dribblers):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(hello[:6])
            held.dribblers.append(sock)

        def dribble() -> None:
            sent = 6
            while not held.stop.wait(interval) and sent < len(hello) - 1:
                for sock in held.dribblers:
                    with contextlib.suppress(OSError):
                        sock.send(hello[sent:sent + 1])
                sent += 1

        thread = threading.Thread(target=dribble, daemon=True)
        thread.start()
        yield held
    finally:
        held.stop.set()
        for sock in held.sockets:
            sock.close()


def mtls_socket(port: int, pki: ProviderPKI, cert: tuple[str, str] | None = None) -> ssl.SSLSocket:
    """A TLS connection to the provider with the Gatekeeper-like client certificate."""
    context = ssl.create_default_context(cafile=pki.path("ca.crt"))
    context.load_cert_chain(*(cert or pki.client_pair))
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    """Read one HTTP answer until the server closes: status, JSON body (or {}), raw bytes."""
    data = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        document = {}
    return status, document, data
