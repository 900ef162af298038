"""A provider replica for the benchmarks: mTLS, one registry store, the release key, optionally Redis."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from provider.devkit.process import ProviderProcess
from tests.helpers import ProviderPKI, free_port, write_yaml
from tests.registry import RegistryServer


def start_replica(root: Path, pki: ProviderPKI, registry: RegistryServer, redis_url: str, name: str,
                  request_deadline: str = "") -> ProviderProcess:
    """A provider process verifying `registry`'s images with `root/cosign.pub`, sharing its cache through
    `redis_url` when given (HMAC key `root/hmac.key`); its config is written as `root/<name>.yaml`."""
    port, metrics_port = free_port(), free_port()
    server: dict[str, Any] = {"listen": f"127.0.0.1:{port}", "metricsListen": f"127.0.0.1:{metrics_port}",
                              "tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key"),
                                      "clientCA": pki.path("client-ca.crt")}}
    if request_deadline:
        server["requestDeadline"] = request_deadline
    config: dict[str, Any] = {
        "server": server,
        "stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host],
                    "allowNetworks": ["127.0.0.1/32"]}],
        "authorities": [{"name": "release", "cosign": {"publicKeys": [str(root / "cosign.pub")]}}]}
    if redis_url:
        config["verification"] = {"cache": {"redis": {"url": redis_url, "hmacKeyFile": str(root / "hmac.key")}}}
    provider = ProviderProcess(write_yaml(root / f"{name}.yaml", config), port, metrics_port)
    provider.wait_ready()
    return provider


def settled_requests(registry: RegistryServer) -> int:
    """The provider's requests in the registry's access log once it stops growing (lines are written after
    each response)."""
    count = -1
    while True:
        time.sleep(0.3)
        now = len(registry.requests_from("sigwarden"))
        if now == count:
            return now
        count = now
