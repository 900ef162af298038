"""Run the provider under gunicorn: front-door workers, TLS (and mTLS) from the config, one side port.

gunicorn's master binds the port, supervises `server.workers` worker processes and serves the side port
(/healthz, /readyz, /metrics) for the whole pod. Each worker accepts connections, does TLS handshakes and
reads requests on an asyncio event loop (provider.server.frontdoor), and runs the Flask app on
`server.threads` threads for complete requests only. Each worker keeps its own facts cache and in-flight
de-duplication within its share of the pod's budgets (provider.config.budgets); the shared cache on Redis,
when configured, shares results between workers and replicas.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from provider.config import Config, ConfigError
from provider.logs import configure_logging
from provider.metrics import Metrics, enable_multiprocess
from provider.server.app import create_app
from provider.server.connections import ConnectionTable
from provider.server.cpus import cpu_quota, default_workers
from provider.server.frontdoor import FrontDoor, Limits
from provider.server.gunicornlog import ProviderLogger
from provider.server.health import bind_side_port, create_health_app, serve_health
from provider.server.pod import StatusBoard, StatusPublisher, pod_registry
from provider.server.tls import ClientNamePinning, ReloadingContext
from provider.server.worker import FrontDoorWorker, raise_open_file_limit
from provider.state import ProviderState

log = logging.getLogger("sigwarden.server")


class ProviderServer(BaseApplication):  # type: ignore[misc]
    """gunicorn application: the master serves the side port; each worker loads the config and serves."""

    def __init__(self, config: Config, workers: int, board: StatusBoard, side_port: socket.socket,
                 log_level: str = "info", log_format: str = "json") -> None:
        self.initial = config
        self.workers = workers
        self.board = board
        self.side_port = side_port
        self.log_level = log_level
        self.log_format = log_format
        self.front_door: FrontDoor | None = None  # built in the worker by load()
        super().__init__()

    def load_config(self) -> None:
        server = self.initial.server
        tls = server.tls
        if tls.cert is None or tls.key is None:
            raise ValueError(f"{self.initial.path}: server.tls.cert and server.tls.key are required to serve")
        board, workers, listen, bound = self.board, self.workers, server.metrics_listen, self.side_port

        def start_side_port(arbiter: Any) -> None:
            serve_health(create_health_app(lambda: board.readiness(workers), pod_registry(board)), listen, bound)

        def worker_exited(arbiter: Any, worker: Any) -> None:
            board.forget(worker.pid)

        # TLS is not configured in gunicorn: the front door wraps each connection with the current context.
        settings: dict[str, Any] = {
            "bind": [server.listen],
            "workers": workers,
            "worker_class": FrontDoorWorker,
            "timeout": 60,
            "graceful_timeout": 10,
            "loglevel": self.log_level,
            "logger_class": ProviderLogger,
            "accesslog": None,
            "proc_name": "sigwarden",
            "when_ready": start_side_port,
            "child_exit": worker_exited,
        }
        if "control_socket_disable" in self.cfg.settings:
            settings["control_socket_disable"] = True  # no runtime control socket on a read-only filesystem
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        configure_logging(self.log_level.upper(), self.log_format)
        metrics = Metrics()
        metrics.workers.set(1)
        state = ProviderState(Path(self.initial.path), metrics, workers=self.workers)
        runtime = state.load()
        state.watch(runtime.config.server.reload_interval)
        StatusPublisher(self.board, state).start()

        def current_tls() -> Any:
            return state.runtime.config.server.tls if state.runtime else runtime.config.server.tls

        def limits() -> Limits:
            return Limits.of(state.runtime.config.server if state.runtime else runtime.config.server)

        context = ReloadingContext(current_tls, metrics)
        app = ClientNamePinning(create_app(state), lambda: current_tls().client_names, metrics)
        table = ConnectionTable(raise_open_file_limit(runtime.config.server.max_connections), metrics)
        self.front_door = FrontDoor(app, context.get, limits, table, metrics, runtime.config.server.threads)
        return app


def worker_count(config: Config, override: int | None = None) -> int:
    """`--workers`, else `server.workers`, else one per CPU of the container's cgroup quota."""
    if override:
        return override
    if config.server.workers:
        return config.server.workers
    quota = cpu_quota()
    workers = default_workers(quota)
    log.info("server.workers from the CPU quota", extra={"quota": quota, "workers": workers})
    return workers


def serve(config: Config, log_level: str = "info", workers: int | None = None, log_format: str = "json") -> None:
    """Block serving the provider until gunicorn is told to stop."""
    configure_logging(log_level.upper(), log_format)
    listen = config.server.metrics_listen
    try:
        side_port = bind_side_port(listen)
    except OSError as exc:
        raise ConfigError(config.path, "server.metricsListen",
                          f"cannot listen on {listen}: {os.strerror(exc.errno) if exc.errno else exc}") from None
    run_directory = Path(tempfile.mkdtemp(prefix="sigwarden-"))
    master = os.getpid()
    # Every metric the workers create from here on goes to per-process files in the run directory.
    enable_multiprocess(run_directory)
    try:
        ProviderServer(config, worker_count(config, workers), StatusBoard(run_directory), side_port, log_level,
                       log_format).run()
    finally:
        if os.getpid() == master:  # a worker leaves through here too when it exits
            shutil.rmtree(run_directory, ignore_errors=True)
