from __future__ import annotations

from provider.metrics import Metrics
from provider.server.connections import Connection, ConnectionTable, Phase


def opened(table: ConnectionTable, aborted: list[int], count: int, start: int = 0) -> list[Connection]:
    connections = []
    for n in range(start, start + count):
        connection = Connection(abort=lambda n=n: aborted.append(n), peer=str(n))
        assert table.admit(connection)
        connections.append(connection)
    return connections


def gauge(metrics: Metrics, phase: str) -> float:
    return metrics.registry.get_sample_value("sigwarden_connections", {"phase": phase}) or 0.0


def closed(metrics: Metrics, reason: str) -> float:
    return metrics.registry.get_sample_value("sigwarden_connections_closed_total", {"reason": reason}) or 0.0


def test_at_the_cap_the_connection_quiet_longest_makes_room() -> None:
    metrics, aborted = Metrics(), []
    table = ConnectionTable(3, metrics)
    first, second, _third = opened(table, aborted, 3)
    table.enter(first, Phase.WAITING)  # activity: first is now the most recently active
    opened(table, aborted, 1, start=3)
    assert aborted == [1] and len(table) == 3 and second.closed
    assert closed(metrics, "evicted") == 1
    assert gauge(metrics, "handshake") == 2 and gauge(metrics, "waiting") == 1


def test_busy_connections_are_never_evicted_and_a_full_busy_table_refuses() -> None:
    metrics, aborted = Metrics(), []
    table = ConnectionTable(2, metrics)
    busy = opened(table, aborted, 2)
    for connection in busy:
        table.enter(connection, Phase.BUSY)
    assert not table.admit(Connection(abort=lambda: aborted.append(99)))
    assert aborted == [] and closed(metrics, "refused") == 1 and gauge(metrics, "busy") == 2
    table.enter(busy[1], Phase.WAITING)
    opened(table, aborted, 1, start=2)
    assert aborted == [1] and not busy[0].closed


def test_remove_is_idempotent_and_keeps_the_gauges_right() -> None:
    metrics, aborted = Metrics(), []
    table = ConnectionTable(8, metrics)
    (connection,) = opened(table, aborted, 1)
    table.enter(connection, Phase.READING)
    table.remove(connection, "done")
    table.remove(connection, "done")
    table.enter(connection, Phase.BUSY)  # a late transition after close changes nothing
    assert len(table) == 0 and closed(metrics, "done") == 1
    assert all(gauge(metrics, phase.value) == 0 for phase in Phase)


def test_entering_the_same_phase_again_is_activity_without_moving_the_gauges() -> None:
    metrics, aborted = Metrics(), []
    table = ConnectionTable(2, metrics)
    first, second = opened(table, aborted, 2)
    for _ in range(3):
        table.enter(first, Phase.READING)
    assert gauge(metrics, "reading") == 1 and gauge(metrics, "handshake") == 1
    opened(table, aborted, 1, start=2)  # first was active last: second makes room
    assert aborted == [1] and not first.closed and second.closed
