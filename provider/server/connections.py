"""The open-connection table: a cap on connections, and which ones to close first when it is reached.

Connections are kept in order of last activity. At the cap a new client still gets in: the connection that
has been quiet longest and is not being answered right now (a handshake that stalls, a keep-alive that
idles, a request head that dribbles) is closed to make room. Only when every connection is busy is the new
one refused.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from provider.metrics import Metrics


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    WAITING = "waiting"   # between requests: nothing of the next one received yet
    READING = "reading"   # part of a request head or body received
    BUSY = "busy"         # the app is answering, or the answer is being written


@dataclass(eq=False)
class Connection:
    """One accepted connection; `abort` closes it at once (used for eviction)."""

    abort: Callable[[], None]
    phase: Phase = Phase.HANDSHAKE
    peer: str = ""
    closed: bool = field(default=False, repr=False)


class ConnectionTable:
    """Tracks open connections under `cap`; the metrics show how many are in each phase."""

    def __init__(self, cap: int, metrics: Metrics) -> None:
        self.cap = cap
        self._metrics = metrics
        # Each request moves its connection through three phases: the labelled gauges are looked up once.
        self._gauges = {phase: metrics.connections.labels(phase.value) for phase in Phase}
        self._open: OrderedDict[Connection, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: Connection) -> bool:
        """Add a new connection, evicting the idlest one at the cap; False when all are busy."""
        if len(self._open) >= self.cap:
            victim = next((c for c in self._open if c.phase is not Phase.BUSY), None)
            if victim is None:
                self._metrics.connections_closed.labels("refused").inc()
                return False
            self.remove(victim, "evicted")
            victim.abort()
        self._open[connection] = None
        self._gauges[connection.phase].inc()
        return True

    def enter(self, connection: Connection, phase: Phase) -> None:
        """Record activity: the connection moves to `phase` and to the back of the eviction order."""
        if connection.closed:
            return
        if phase is not connection.phase:  # a request enters READING twice: once counted is enough
            self._gauges[connection.phase].dec()
            self._gauges[phase].inc()
            connection.phase = phase
        self._open.move_to_end(connection)

    def remove(self, connection: Connection, reason: str) -> None:
        """Forget a connection (idempotent) and count why it closed."""
        if connection.closed:
            return
        connection.closed = True
        self._open.pop(connection, None)
        self._gauges[connection.phase].dec()
        self._metrics.connections_closed.labels(reason).inc()

    def all(self) -> list[Connection]:
        return list(self._open)
