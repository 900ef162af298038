"""Several worker processes in one pod: each serves, the side port speaks for all of them, budgets are divided,
a worker that dies is replaced without losing the counts, and the shared cache shares results between workers.

Which worker answers is made certain by stopping the other one (SIGSTOP): the kernel then hands every new
connection to the worker that still runs.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.devkit.process import ProviderProcess
from tests.helpers import ProviderPKI, child_pids, metric_value, provider_request, wait_for, write_yaml
from tests.redisserver import RedisServer

Start = Callable[..., ProviderProcess]
REG = "workers.example"
KEY = ec.generate_private_key(ec.SECP256R1())


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def signed_layout(tmp_path: Path) -> str:
    writer = LayoutWriter(tmp_path / "layouts" / REG, "team/app")
    digest = writer.add_image("v1", b"served by several workers")["digest"]
    cosign.sign_image(writer, digest, f"{REG}/team/app", KEY)
    return f"{REG}/team/app@{digest}"


def two_worker_config(tmp_path: Path, extra_cache: dict[str, Any] | None = None) -> dict[str, Any]:
    (tmp_path / "cosign.pub").write_bytes(cosign.public_pem(KEY))
    return {"server": {"workers": 2},
            "stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": [f"{REG}/*"]}],
            "authorities": [{"name": "release", "cosign": {"publicKeys": [str(tmp_path / "cosign.pub")]}}],
            "verification": {"cache": {"maxBytes": "8MiB", **(extra_cache or {})}}}


def verified(provider: ProviderProcess, pki: ProviderPKI, key: str) -> bool:
    """One request on a new connection (requests.post closes it afterwards)."""
    response = requests.post(provider.url + "/verify", json=provider_request([key]), cert=pki.client_pair,
                             verify=pki.path("ca.crt"), timeout=30)
    assert response.status_code == 200, response.text
    value = response.json()["response"]["items"][0]["value"]
    return bool(value["verified"])


def scrape(provider: ProviderProcess) -> str:
    return requests.get(provider.metrics_url + "/metrics", timeout=10).text


def readiness(provider: ProviderProcess) -> str:
    return requests.get(provider.metrics_url + "/readyz", timeout=10).text


def two_workers(provider: ProviderProcess) -> tuple[int, int]:
    wait_for(lambda: readiness(provider).startswith("ready: 2/2 workers"), "both workers ready")
    first, second = sorted(child_pids(provider.process.pid))
    return first, second


def ask_each_worker(provider: ProviderProcess, pki: ProviderPKI, key: str) -> tuple[int, int]:
    """Ask the first worker about `key` while the second is stopped, then the reverse; both say verified."""
    first, second = two_workers(provider)
    with stopped(second):
        assert verified(provider, pki, key)
    with stopped(first):
        assert verified(provider, pki, key)
    return first, second


def test_two_workers_each_serve_and_the_side_port_speaks_for_both(start_provider: Start, pki: ProviderPKI,
                                                                   tmp_path: Path) -> None:
    key = signed_layout(tmp_path)
    provider = start_provider(two_worker_config(tmp_path), workers=None)
    first, second = ask_each_worker(provider, pki, key)
    text = scrape(provider)
    assert metric_value(text, "sigwarden_request_duration_seconds_count", {"endpoint": "verify"}) == 2
    # Without a shared cache each worker keeps its own: the second worker verified the image again.
    assert metric_value(text, "sigwarden_cache_misses_total", {"cache": "verify"}) == 2
    assert metric_value(text, "sigwarden_verified_items_total", {"authority": "release"}) == 2
    assert metric_value(text, "sigwarden_workers") == 2
    # The pod's cache budget is divided: the workers' shares add up to the configured 8 MiB.
    assert metric_value(text, "sigwarden_cache_max_bytes") == 8 * 1024 * 1024
    assert metric_value(text, "sigwarden_config_last_reload_success") == 1
    assert metric_value(text, "sigwarden_certificate_expiry_timestamp_seconds", {"kind": "serving"}) > 0

    # A worker killed outright is replaced; its counts stay in the pod's totals, its live gauges do not.
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: first not in child_pids(provider.process.pid)
             and len(child_pids(provider.process.pid)) == 2, "a replacement worker")
    replacement = (child_pids(provider.process.pid) - {second}).pop()
    two_workers(provider)
    with stopped(second):
        assert verified(provider, pki, key)
    text = scrape(provider)
    assert metric_value(text, "sigwarden_request_duration_seconds_count", {"endpoint": "verify"}) == 3
    assert metric_value(text, "sigwarden_workers") == 2
    assert metric_value(text, "sigwarden_cache_max_bytes") == 8 * 1024 * 1024
    assert replacement != first and provider.process.poll() is None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


def test_workers_share_results_through_the_shared_cache(start_provider: Start, pki: ProviderPKI, tmp_path: Path,
                                                        redis_server: RedisServer) -> None:
    key = signed_layout(tmp_path)
    (tmp_path / "hmac.key").write_text("k" * 64)
    redis = {"redis": {"url": redis_server.url, "hmacKeyFile": str(tmp_path / "hmac.key")}}
    provider = start_provider(two_worker_config(tmp_path, redis), workers=None)
    ask_each_worker(provider, pki, key)
    text = scrape(provider)
    assert metric_value(text, "sigwarden_shared_cache_events_total", {"event": "stored"}) == 1
    assert metric_value(text, "sigwarden_shared_cache_events_total", {"event": "hit"}) == 1
    # Only the first worker ran the verifier; the second answered from the entry the first stored.
    assert metric_value(text, "sigwarden_verifier_duration_seconds_count", {"verifier": "cosign"}) == 1


def test_a_config_edit_reaches_every_worker_and_replaces_the_expiry_series(start_provider: Start, pki: ProviderPKI,
                                                                          tmp_path: Path) -> None:
    from provider.devkit.pki import make_ca

    key = signed_layout(tmp_path)
    corp = make_ca("corp root", days=400)
    (tmp_path / "corp.pem").write_bytes(corp.cert_pem)
    settings = two_worker_config(tmp_path)
    settings["authorities"].append({"name": "corp", "cosign": {"pki": {"roots": [str(tmp_path / "corp.pem")]}}})
    provider = start_provider(settings, workers=None)
    two_workers(provider)
    name = "sigwarden_trust_certificate_expiry_timestamp_seconds"
    assert metric_value(scrape(provider), name, {"authority": "corp"}) == corp.cert.not_valid_after_utc.timestamp()

    # Drop the corp authority: each worker reloads, and its series leaves the pod's metrics (a multiprocess
    # gauge would have kept it in the worker's file until the worker exits).
    edited = yaml.safe_load(provider.config_path.read_text())
    edited["authorities"] = edited["authorities"][:1]
    write_yaml(provider.config_path, edited)
    wait_for(lambda: metric_value(scrape(provider), "sigwarden_config_reloads_total", {"result": "success"}) == 2,
             "both workers to reload")
    # Workers publish their status within half a second of a change.
    wait_for(lambda: metric_value(scrape(provider), name, {"authority": "corp"}) == 0, "the corp series to go")
    assert readiness(provider) == "ready: 2/2 workers, 1 authorities, 1 stores\n"
    ask_each_worker(provider, pki, key)  # both still serve, on the new config
