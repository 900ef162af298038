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
    server = HostileRegistry(slow_seconds=120, address="127.0.0.2")  # another host than the registry's
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
        # The drip host's share of the pool, a quarter of 32: none of its jobs ends in time, so it earns no
        # threads beyond that share; each job waits on one dripping fetch, and the rest wait in that host's
        # queue, not on a verification thread.
        assert drip.dripping <= 8

        healthy = engine.verify([f"{registry.host}/team/app:v1"], "t")[0]  # the default 2.5 s deadline
        assert healthy.error == "", healthy.error
        assert healthy.value["verified"] is True and healthy.value["digest"] == digests["image"]

        # Every drip connection is closed by the provider when its budget is spent (4 x 2.5 s), long
        # before the drip server would finish (120 s): the server sees each write fail.
        assert eventually(lambda: drip.dripping == 0), f"{drip.dripping} drip connections still open"
        assert drip.dropped == drip.drips >= 1
        text = generate_latest(metrics.registry).decode()
        assert metric_value(text, "sigwarden_outbound_requests_in_flight") == 0
        assert metric_value(text, "sigwarden_registry_requests_total", {"status": "timeout"}) >= 1
        later = engine.verify(dripping[:1], "t", deadline=time.monotonic() + 30)[0]
        assert later.error.startswith(("TIMEOUT: ", "REGISTRY_UNAVAILABLE: ")), later.error
    finally:
        engine.shutdown()


def test_one_host_on_many_ports_cannot_take_the_verification_pool(tmp_path: Path, registry: RegistryServer) -> None:
    """32 dripping image names on 4 ports of one host used to hold all 32 verification threads (each port its
    own concurrencyPerAddress, then 8): a named registry's image then answered TIMEOUT. That host now holds a
    quarter of the pool, whatever its ports (it ends no job in time, so it borrows no more), and the named
    registry's image verifies."""
    drips = [HostileRegistry(slow_seconds=120, address="127.0.0.2") for _ in range(4)]
    digests = publish(tmp_path, registry, "team/app")
    (tmp_path / "cosign.pub").write_bytes(cosign.public_pem(KEY))
    data = {"verification": {"concurrency": 32},
            "stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host, *(d.host for d in drips)]}],
            "authorities": [{"name": "release", "cosign": {"publicKeys": ["cosign.pub"]}}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    try:
        dripping = [f"{drips[i % 4].host}/drip1/n{i}:v1" for i in range(32)]
        first = engine.verify(dripping, "t", deadline=time.monotonic() + 0.5)  # answered; the work goes on
        assert all(item.error for item in first)
        assert eventually(lambda: sum(d.dripping for d in drips) > 0)
        assert engine._capacity.running("127.0.0.2") == 8  # a quarter of 32, across the four ports
        assert engine._capacity.earned("127.0.0.2") == 0
        for _ in range(3):  # the reproduction: 3 rounds, each TIMEOUT before
            healthy = engine.verify([f"{registry.host}/team/app:v1"], "t")[0]
            assert healthy.error == "", healthy.error
            assert healthy.value["verified"] is True and healthy.value["digest"] == digests["image"]
            engine._cache.clear()  # a cold verification each round
    finally:
        engine.shutdown()
        for drip in drips:
            drip.stop()
