"""One view of a pod's worker processes for its side port: readiness and metrics summed over workers.

Each worker publishes a small status file (ready or not, what it serves, the expiry series of its trust
material) into the pod's run directory, next to the per-process metric files prometheus_client writes there.
gunicorn's master serves /healthz, /readyz and /metrics from that directory, so a probe or a scrape sees the
pod, not whichever worker happened to accept the connection. A worker that exits has its status file and
live gauges removed by the master (`forget`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from provider.metrics import CERTIFICATE_EXPIRY, TRUST_EXPIRY, expiry_family
from provider.state import ProviderState, Runtime

log = logging.getLogger("sigwarden.server")

STATUS_PREFIX = "status-"
PUBLISH_INTERVAL = 0.5
Series = list[tuple[list[str], float]]


@dataclass(frozen=True)
class WorkerStatus:
    """What one worker tells the side port about itself."""

    pid: int
    ready: bool
    authorities: int = 0
    stores: int = 0
    certificate_expiry: Series = field(default_factory=list)
    trust_expiry: Series = field(default_factory=list)
    # Cloud credentials and remote trust material whose last refresh failed (the pod still serves).
    credential_problems: list[str] = field(default_factory=list)


class StatusBoard:
    """The pod's run directory: one status file per live worker."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def publish(self, status: WorkerStatus) -> None:
        """Replace this worker's status file atomically (a reader never sees half a file)."""
        path = self._path(status.pid)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(status)))
        os.replace(temporary, path)

    def forget(self, pid: int) -> None:
        """A worker exited: drop its status and its live gauges (counters and histograms stay in the sums)."""
        self._path(pid).unlink(missing_ok=True)
        self._path(pid).with_suffix(".tmp").unlink(missing_ok=True)  # killed while publishing
        multiprocess.mark_process_dead(pid, str(self.directory))

    def live(self) -> list[WorkerStatus]:
        """Status of every live worker, the most recently published first."""
        found: list[tuple[float, WorkerStatus]] = []
        for path in self.directory.glob(f"{STATUS_PREFIX}*.json"):
            try:
                written = path.stat().st_mtime
                status = WorkerStatus(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue  # being replaced, or left by a worker killed mid-write
            if _alive(status.pid):
                found.append((written, status))
        return [status for _, status in sorted(found, key=lambda pair: pair[0], reverse=True)]

    def readiness(self, expected: int) -> tuple[bool, str]:
        """Ready while at least one worker serves (a worker still loading accepts no connections yet)."""
        workers = self.live()
        ready = [status for status in workers if status.ready]
        if not ready:
            return False, (f"not ready: configuration and trust material not loaded "
                           f"(0 of {expected} workers ready)")
        newest = ready[0]
        detail = "".join(f"; credential refresh failing: {problem}" for problem in newest.credential_problems)
        return True, (f"ready: {len(ready)}/{expected} workers, {newest.authorities} authorities, "
                      f"{newest.stores} stores{detail}")

    def _path(self, pid: int) -> Path:
        return self.directory / f"{STATUS_PREFIX}{pid}.json"


class ExpiryCollector(Collector):  # type: ignore[misc]
    """The expiry series of the worker that published last (all workers load the same files)."""

    def __init__(self, board: StatusBoard) -> None:
        self.board = board

    def collect(self) -> Iterator[GaugeMetricFamily]:
        workers = self.board.live()
        newest = workers[0] if workers else None
        yield expiry_family(*CERTIFICATE_EXPIRY, newest.certificate_expiry if newest else [])
        yield expiry_family(*TRUST_EXPIRY, newest.trust_expiry if newest else [])


def pod_registry(board: StatusBoard) -> CollectorRegistry:
    """Every worker's metrics added up, plus the expiry series from their status files."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(board.directory))
    registry.register(ExpiryCollector(board))
    return registry


class StatusPublisher:
    """Publishes this worker's status whenever it changes (config reloads, readiness)."""

    def __init__(self, board: StatusBoard, state: ProviderState) -> None:
        self.board = board
        self.state = state
        self._last: WorkerStatus | None = None
        self._stop = threading.Event()

    def current(self) -> WorkerStatus:
        runtime = self.state.runtime
        metrics = self.state.metrics
        return WorkerStatus(
            pid=os.getpid(), ready=runtime is not None,
            authorities=len(runtime.config.authorities) if runtime else 0,
            stores=len(runtime.config.stores) if runtime else 0,
            certificate_expiry=metrics.certificate_expiry.series(), trust_expiry=metrics.trust_expiry.series(),
            credential_problems=credential_problems(runtime))

    def publish_if_changed(self) -> None:
        status = self.current()
        if status != self._last:
            self.board.publish(status)
            self._last = status

    def start(self) -> None:
        self.publish_if_changed()

        def loop() -> None:
            while not self._stop.wait(PUBLISH_INTERVAL):
                try:
                    self.publish_if_changed()
                except OSError as exc:  # a full or vanished run directory must not stop the worker
                    log.warning("cannot publish worker status", extra={"error": str(exc)})

        threading.Thread(target=loop, name="sigwarden-status", daemon=True).start()


def credential_problems(runtime: Runtime | None) -> list[str]:
    """One line per store credential or trust material whose last refresh failed."""
    from provider.config.remote import REMOTE_TRUST

    problems = runtime.engine.router.credential_problems() if runtime is not None else []
    if REMOTE_TRUST.last_error:
        problems.append(f"trust material: {REMOTE_TRUST.last_error}")
    return [p[:300] for p in problems[:8]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists (PermissionError: it does)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
