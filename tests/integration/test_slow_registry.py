"""A registry that drips one byte per second cannot take the verification pool, and gets hung up on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from provider.config import build_config
from provider.devkit import cosign
from provider.engine import Engine
from tests.helpers import metric_value, write_yaml
from tests.hostile import HostileRegistry
from tests.integration.test_registry import KEY, publish
from tests.registry import RegistryServer


@pytest.fixture
def drip() -> Iterator[HostileRegistry]:
    server = HostileRegistry(slow_seconds=120)
    yield server
    server.stop()


def eventually(condition: Callable[[], bool], limit: float = 60.0) -> bool:
    """Poll for an outcome (never a timing assertion: the limit only keeps a broken run from hanging)."""
    give_up = time.monotonic() + limit
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.1)
    return True


def test_healthy_registry_is_verified_while_64_images_drip(tmp_path: Path, drip: HostileRegistry,
                                                           registry: RegistryServer) -> None:
    digests = publish(tmp_path, registry, "team/app")
    (tmp_path / "cosign.pub").write_bytes(cosign.public_pem(KEY))
    data = {"stores": [{"type": "registry", "match": ["*"], "insecure": [drip.host, registry.host]}],
            "authorities": [{"name": "release", "cosign": {"publicKeys": ["cosign.pub"]}}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    metrics = engine.metrics
    try:
        dripping = [f"{drip.host}/drip1/n{i}:v1" for i in range(64)]
        first = engine.verify(dripping, "t", deadline=time.monotonic() + 0.5)  # answered; the work goes on
        assert all(item.error for item in first)
        assert eventually(lambda: drip.dripping > 0)
        assert drip.dripping <= 8  # concurrencyPerAddress: the rest are refused, not queued behind the drip

        healthy = engine.verify([f"{registry.host}/team/app:v1"], "t")[0]  # the default 2.5 s deadline
        assert healthy.error == "", healthy.error
        assert healthy.value["verified"] is True and healthy.value["digest"] == digests["image"]

        # Every drip connection is closed by the provider when its budget is spent (4 x 2.5 s), long
        # before the drip server would finish (120 s): the server sees each write fail.
        assert eventually(lambda: drip.dripping == 0), f"{drip.dripping} drip connections still open"
        assert drip.dropped == drip.drips >= 1
        text = generate_latest(metrics.registry).decode()
        assert metric_value(text, "sigwarden_outbound_requests_in_flight") == 0
        assert metric_value(text, "sigwarden_registry_requests_total", {"status": "saturated"}) >= 1
        assert metric_value(text, "sigwarden_registry_requests_total", {"status": "timeout"}) >= 1
        later = engine.verify(dripping[:1], "t", deadline=time.monotonic() + 30)[0]
        assert later.error.startswith(("TIMEOUT: ", "REGISTRY_UNAVAILABLE: ")), later.error
    finally:
        engine.shutdown()
