"""Run the provider under gunicorn: one front-door worker, TLS (and mTLS) from the config.

gunicorn's master binds the port and supervises one worker process. The worker accepts connections, does
TLS handshakes and reads requests on an asyncio event loop (provider.server.frontdoor), and runs the Flask
app on `server.threads` threads for complete requests only. One process, because the facts cache and the
in-flight de-duplication live in process memory: every request for an image shares them. Scale out with
replicas, not workers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from provider.config import Config
from provider.logs import configure_logging
from provider.metrics import Metrics
from provider.server.app import create_app
from provider.server.connections import ConnectionTable
from provider.server.frontdoor import FrontDoor, Limits
from provider.server.health import serve_health
from provider.server.tls import ClientNamePinning, ReloadingContext
from provider.server.worker import FrontDoorWorker, raise_open_file_limit
from provider.state import ProviderState


class ProviderServer(BaseApplication):  # type: ignore[misc]
    """gunicorn application whose worker loads the config, starts the side port and serves the app."""

    def __init__(self, config: Config, log_level: str = "info") -> None:
        self.initial = config
        self.log_level = log_level
        self.front_door: FrontDoor | None = None  # built in the worker by load()
        super().__init__()

    def load_config(self) -> None:
        server = self.initial.server
        tls = server.tls
        if tls.cert is None or tls.key is None:
            raise ValueError(f"{self.initial.path}: server.tls.cert and server.tls.key are required to serve")
        # TLS is not configured in gunicorn: the front door wraps each connection with the current context.
        settings: dict[str, Any] = {
            "bind": [server.listen],
            "workers": 1,
            "worker_class": FrontDoorWorker,
            "timeout": 60,
            "graceful_timeout": 10,
            "loglevel": self.log_level,
            "accesslog": None,
            "proc_name": "sigwarden",
        }
        if "control_socket_disable" in self.cfg.settings:
            settings["control_socket_disable"] = True  # no runtime control socket on a read-only filesystem
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        configure_logging(self.log_level.upper())
        metrics = Metrics()
        state = ProviderState(Path(self.initial.path), metrics)
        # The side port comes up first so /readyz can say "not ready" while trust material loads.
        serve_health(state, self.initial.server.metrics_listen)
        runtime = state.load()
        state.watch(runtime.config.server.reload_interval)

        def current_tls() -> Any:
            return state.runtime.config.server.tls if state.runtime else runtime.config.server.tls

        def limits() -> Limits:
            return Limits.of(state.runtime.config.server if state.runtime else runtime.config.server)

        context = ReloadingContext(current_tls, metrics)
        app = ClientNamePinning(create_app(state), lambda: current_tls().client_names, metrics)
        table = ConnectionTable(raise_open_file_limit(runtime.config.server.max_connections), metrics)
        self.front_door = FrontDoor(app, context.get, limits, table, metrics, runtime.config.server.threads)
        return app


def serve(config: Config, log_level: str = "info") -> None:
    """Block serving the provider until gunicorn is told to stop."""
    ProviderServer(config, log_level).run()
