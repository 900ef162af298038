"""A gunicorn worker that runs the front door on an asyncio event loop.

gunicorn's master still binds the port, restarts a worker that dies or stops heartbeating, and handles
signals; this worker replaces the thread-per-connection model of gthread, where a client that stalled in its
TLS handshake or request head held one of the few worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import socket
from typing import Any

from gunicorn.workers.base import Worker

from provider.server.frontdoor import FrontDoor, shrink_tls_buffers

log = logging.getLogger("sigwarden.server")

# File descriptors kept for everything that is not a client connection (registries, Redis, files, the side port).
FD_RESERVE = 256


def raise_open_file_limit(connections: int) -> int:
    """Raise RLIMIT_NOFILE towards `connections` + a reserve; return how many connections fit under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit", extra={"error": str(exc), "wanted": wanted})
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return connections
    fitting = max(16, soft - FD_RESERVE)
    log.warning("server.maxConnections lowered to fit the open-file limit",
                extra={"configured": connections, "effective": fitting, "limit": soft})
    return fitting


class FrontDoorWorker(Worker):  # type: ignore[misc]
    """Serves gunicorn's listening sockets with the FrontDoor the application built in `load()`."""

    def init_process(self) -> None:
        shrink_tls_buffers()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        super().init_process()

    def init_signals(self) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        self.loop.add_signal_handler(signal.SIGTERM, self._stop)
        self.loop.add_signal_handler(signal.SIGINT, self._stop)
        self.loop.add_signal_handler(signal.SIGQUIT, self._stop)
        self.loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        self.loop.add_signal_handler(signal.SIGWINCH, lambda: None)

    def _stop(self) -> None:
        self.alive = False

    def run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        front: FrontDoor = self.app.front_door
        self.loop.set_exception_handler(_quiet_connection_errors)
        connections: set[asyncio.Task[None]] = set()
        acceptors = [asyncio.create_task(_accept(listener.sock, front, connections)) for listener in self.sockets]
        while self.alive and self.ppid == os.getppid():
            self.notify()
            await asyncio.sleep(0.5)
        for acceptor in acceptors:
            acceptor.cancel()
        await self._drain(front)
        front.shutdown()

    async def _drain(self, front: FrontDoor) -> None:
        """Let answers in progress finish (up to the graceful timeout), then close everything."""
        deadline = self.loop.time() + self.cfg.graceful_timeout
        while self.loop.time() < deadline and any(c.phase.value == "busy" for c in front.table.all()):
            await asyncio.sleep(0.1)
        for connection in front.table.all():
            front.table.remove(connection, "shutdown")
            connection.abort()
        await asyncio.sleep(0)


async def _accept(listener: socket.socket, front: FrontDoor, connections: set[asyncio.Task[None]]) -> None:
    """Accept connections forever, one task each (kept in `connections` so none is collected mid-flight)."""
    loop = asyncio.get_running_loop()
    listener.setblocking(False)
    while True:
        try:
            sock, _ = await loop.sock_accept(listener)
        except OSError as exc:  # out of file descriptors, or the peer reset before accept
            log.warning("accept failed", extra={"error": str(exc)})
            await asyncio.sleep(0.1)
            continue
        task = asyncio.create_task(front.handle(sock))
        connections.add(task)
        task.add_done_callback(connections.discard)


def _quiet_connection_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Peers that vanish mid-handshake are normal on an exposed port; they are counted, not logged as errors.
    if isinstance(context.get("exception"), (ConnectionError, OSError)):
        log.debug("connection error", extra={"error": str(context.get("exception"))})
        return
    loop.default_exception_handler(context)
