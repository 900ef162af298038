from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provider.devkit.process import ProviderProcess
from tests.helpers import ProviderPKI, free_port, write_yaml
from tests.registry import RegistryServer


@pytest.fixture
def start_provider(tmp_path: Path, pki: ProviderPKI) -> Iterator[Callable[..., ProviderProcess]]:
    """Start `sigwarden serve` with TLS from `pki` (mTLS unless client_ca=False) and the given config."""
    started: list[ProviderProcess] = []

    def start(config: dict[str, Any] | None = None, client_ca: bool = True,
              client_names: list[str] | None = None, workers: int | None = 1) -> ProviderProcess:
        config = dict(config or {})
        port, metrics_port = free_port(), free_port()
        tls: dict[str, Any] = {"cert": pki.path("server.crt"), "key": pki.path("server.key")}
        if client_ca:
            tls["clientCA"] = pki.path("client-ca.crt")
        if client_names:
            tls["clientNames"] = client_names
        config["server"] = {"listen": f"127.0.0.1:{port}", "metricsListen": f"127.0.0.1:{metrics_port}",
                            "reloadInterval": "200ms", "tls": tls, **config.get("server", {})}
        path = write_yaml(tmp_path / f"config-{len(started)}.yaml", config)
        provider = ProviderProcess(path, port, metrics_port, workers)
        started.append(provider)
        provider.wait_ready()
        return provider

    yield start
    for provider in started:
        provider.stop()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A plain-HTTP docker-registry on loopback."""
    server = RegistryServer(tmp_path / "registry")
    yield server
    server.stop()
