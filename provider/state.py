"""The live configuration and engine, swapped atomically when the config or a file it references changes.

A config that fails to load on reload is logged and counted; the previous one keeps serving. So is one that
would silently drop authorities, stores or client-certificate checks (provider.config.guard).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from provider.config import Config, ConfigError, load_config
from provider.config.budgets import worker_share
from provider.config.guard import check_replacement
from provider.config.remote import REMOTE_TRUST
from provider.engine import Engine
from provider.metrics import Metrics

log = logging.getLogger("sigwarden.config")

Fingerprint = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True)
class Runtime:
    """One consistent generation: a config and the engine built from it."""

    config: Config
    engine: Engine
    fingerprint: Fingerprint


def fingerprint(paths: tuple[Path, ...], remote_generation: int | None = None) -> Fingerprint:
    """What changes when a file is rewritten or swapped (Kubernetes swaps ConfigMap symlinks), or when trust
    material kept in a cloud key store changed at its last refresh (provider.config.remote)."""
    marks = [("remote trust material", REMOTE_TRUST.generation if remote_generation is None else remote_generation,
              0, 0)]
    for path in paths:
        try:
            st = os.stat(path)
            marks.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            marks.append((str(path), -1, -1, -1))
    return tuple(marks)


class ProviderState:
    """Holds the current Runtime; readers take `state.runtime` once per request and use that snapshot."""

    def __init__(self, config_path: str | Path, metrics: Metrics | None = None, workers: int = 1) -> None:
        self.config_path = Path(config_path)
        self.metrics = metrics or Metrics()
        # This process is one of `workers` serving the pod: it takes its share of the pod's budgets.
        self.workers = workers
        self.runtime: Runtime | None = None
        self._failed: Fingerprint | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.runtime is not None

    def load(self) -> Runtime:
        """Load the config and build an engine; raises ConfigError. Used at start and on every reload."""
        generation = REMOTE_TRUST.generation  # before loading: a refresh meanwhile means another reload
        config = worker_share(load_config(self.config_path), self.workers)
        if self.runtime is not None:
            check_replacement(self.runtime.config, config)
        runtime = Runtime(config, Engine(config, self.metrics), fingerprint(config.sources, generation))
        with self._lock:
            previous, self.runtime = self.runtime, runtime
        if previous is not None:
            previous.engine.shutdown()
        self.metrics.config_loaded.set(1)
        self.metrics.cache_budget.set(config.verification.cache.max_bytes)
        self.metrics.observe_trust_material(config)
        self.metrics.observe_tls_files(config.server.tls.cert, config.server.tls.client_ca)
        return runtime

    def reload_if_changed(self) -> bool:
        """Reload when any source file changed; return True when a new config is now serving."""
        current = self.runtime
        paths = current.config.sources if current else (self.config_path.resolve(),)
        REMOTE_TRUST.refresh_if_due(self.metrics)  # KMS keys, Key Vault certificates: on their own interval
        now = fingerprint(paths)
        if current is not None and now == current.fingerprint:
            return False
        if now == self._failed:
            return False  # already reported; wait for the next edit
        try:
            runtime = self.load()
        except ConfigError as exc:
            self._failed = now
            self.metrics.config_reloads.labels("failure").inc()
            self.metrics.config_loaded.set(0)
            log.error("config reload failed; the previous config keeps serving",
                      extra={"error": str(exc), "file": exc.source, "field": exc.field_path})
            return False
        self._failed = None
        self.metrics.config_reloads.labels("success").inc()
        log.info("config reloaded", extra={"authorities": len(runtime.config.authorities),
                                           "stores": len(runtime.config.stores)})
        return True

    def watch(self, interval: float) -> threading.Thread:
        """Poll the config's files every `interval` seconds in a daemon thread."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.reload_if_changed()
                except Exception:  # the watcher must survive anything a reload throws
                    log.exception("config watcher error")

        thread = threading.Thread(target=loop, name="sigwarden-config-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
