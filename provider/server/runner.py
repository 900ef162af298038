"""Run the provider under gunicorn: one gthread worker, TLS (and mTLS) from the config.

One worker process with many threads, because the facts cache and the in-flight de-duplication live in
process memory: every request for an image shares them. Scale out with replicas, not workers.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from provider.config import Config
from provider.logs import configure_logging
from provider.metrics import Metrics
from provider.server.app import create_app
from provider.server.health import serve_health
from provider.server.tls import ClientNamePinning, ReloadingContext
from provider.state import ProviderState


class ProviderServer(BaseApplication):  # type: ignore[misc]
    """gunicorn application whose worker loads the config, starts the side port and serves the app."""

    def __init__(self, config: Config, log_level: str = "info") -> None:
        self.initial = config
        self.log_level = log_level
        self.context: ReloadingContext | None = None
        super().__init__()

    def load_config(self) -> None:
        server = self.initial.server
        tls = server.tls
        if tls.cert is None or tls.key is None:
            raise ValueError(f"{self.initial.path}: server.tls.cert and server.tls.key are required to serve")

        def ssl_context(_conf: Any, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
            assert self.context is not None, "TLS context is created when the worker loads"
            return self.context.get()

        settings: dict[str, Any] = {
            "bind": [server.listen],
            "workers": 1,
            "worker_class": "gthread",
            "threads": server.threads,
            "certfile": str(tls.cert),
            "keyfile": str(tls.key),
            "ssl_context": ssl_context,
            "keepalive": 30,
            "timeout": 60,
            "graceful_timeout": 10,
            "loglevel": self.log_level,
            "accesslog": None,
            "proc_name": "sigwarden",
        }
        if "control_socket_disable" in self.cfg.settings:
            settings["control_socket_disable"] = True  # no runtime control socket on a read-only filesystem
        if tls.client_ca is not None:
            settings.update(ca_certs=str(tls.client_ca), cert_reqs=ssl.CERT_REQUIRED)
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

        self.context = ReloadingContext(current_tls, metrics)
        return ClientNamePinning(create_app(state), lambda: current_tls().client_names, metrics)


def serve(config: Config, log_level: str = "info") -> None:
    """Block serving the provider until gunicorn is told to stop."""
    ProviderServer(config, log_level).run()
