"""Two real provider processes on one real redis-server and one docker-registry: results shared across processes,
isolation by trust configuration, forged entries refused end to end, cross-process single flight, and Redis
killed mid-run."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.devkit.process import ProviderProcess
from tests.helpers import ProviderPKI, metric_value, provider_request
from tests.redisserver import RedisServer
from tests.registry import RegistryServer

Start = Callable[..., ProviderProcess]
KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", password="s3cret")
    yield server
    server.stop()


def publish(tmp_path: Path, registry: RegistryServer, repository: str, signed: bool = True) -> str:
    """Push one image (cosign-signed by KEY unless `signed` is False); its digest reference."""
    writer = LayoutWriter(tmp_path / "staging" / repository.replace("/", "_"), "repo")
    digest = writer.add_image("v1", repository.encode())["digest"]
    if signed:
        cosign.sign_image(writer, digest, f"{registry.host}/{repository}", KEY)
    registry.push_layout(writer.path, repository)
    return f"{registry.host}/{repository}@{digest}"


def config(tmp_path: Path, registry: RegistryServer, redis_server: RedisServer, key: Any = KEY,
           deadline: str = "20s") -> dict[str, Any]:
    key_file = tmp_path / ("cosign.pub" if key is KEY else "other.pub")
    key_file.write_bytes(cosign.public_pem(key))
    (tmp_path / "hmac.key").write_text("h" * 64)
    (tmp_path / "redis.password").write_text("s3cret\n")
    return {"server": {"requestDeadline": deadline},
            "stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host],
                        "allowNetworks": ["127.0.0.1/32"]}],
            "authorities": [{"name": "release", "cosign": {"publicKeys": [str(key_file)]}}],
            "verification": {"cache": {"redis": {"url": redis_server.url, "hmacKeyFile": str(tmp_path / "hmac.key"),
                                                 "passwordFile": str(tmp_path / "redis.password")}}}}


def verify(provider: ProviderProcess, pki: ProviderPKI, keys: list[str]) -> dict[str, Any]:
    response = requests.post(provider.url + "/verify", json=provider_request(keys), cert=pki.client_pair,
                             verify=pki.path("ca.crt"), timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()["response"]
    assert body["systemError"] == "", body["systemError"]
    return {item["key"]: item.get("value", item.get("error")) for item in body["items"]}


def verdicts(answers: dict[str, Any]) -> dict[str, bool]:
    return {key: value["verified"] for key, value in answers.items()}


def seen(registry: RegistryServer) -> list[str]:
    """The provider's requests, once the registry's access log stops growing (it writes after answering)."""
    before: list[str] | None = None
    while True:
        now = registry.requests_from("sigwarden")
        if now == before:
            return now
        before = now
        time.sleep(0.3)


def fetches(registry: RegistryServer) -> dict[str, Counter[str]]:
    """Per repository, the provider's requests by kind (a referrers probe is made once per registry, not image)."""
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for request in seen(registry):
        path = request.split(" ", 1)[1]
        repository, _, rest = path.removeprefix("/v2/").partition("/")
        repository = f"{repository}/{rest.split('/', 1)[0]}"
        kind = rest.split("/", 2)[1]
        if kind == "manifests" and path.endswith((".sig", ".att")):
            kind = path[-4:]
        if kind != "referrers":
            kinds[repository][kind] += 1
    return kinds


def shared_events(provider: ProviderProcess, event: str) -> float:
    text = requests.get(provider.metrics_url + "/metrics", timeout=10).text
    return metric_value(text, "sigwarden_shared_cache_events_total", {"event": event})


def test_a_second_process_answers_from_the_first_ones_verification(
        tmp_path: Path, start_provider: Start, pki: ProviderPKI, registry: RegistryServer,
        redis_server: RedisServer) -> None:
    signed = [publish(tmp_path, registry, f"team/app{i}") for i in range(3)]
    unsigned = publish(tmp_path, registry, "team/unsigned", signed=False)
    settings = config(tmp_path, registry, redis_server)
    first, second = start_provider(settings), start_provider(settings)
    expected = {**{key: True for key in signed}, unsigned: False}

    fresh = verify(first, pki, [*signed, unsigned])
    assert verdicts(fresh) == expected
    assert not any(value["cached"] for value in fresh.values())
    count = len(seen(registry))
    assert count > 0
    answers = verify(second, pki, [*signed, unsigned])
    assert verdicts(answers) == expected
    # Answered from the shared cache: the facts say so, although the second process had not seen the images.
    assert all(value["cached"] for value in answers.values())
    assert answers[signed[0]]["authorities"] == ["release"]
    assert len(seen(registry)) == count  # the registry saw one verification
    assert shared_events(second, "hit") >= 4

    # By tag, the second process only resolves the tag (a manifest request) and reuses the facts.
    tag = f"{registry.host}/team/app0:v1"
    assert verdicts(verify(first, pki, [tag])) == {tag: True}
    before = len(seen(registry))
    assert verdicts(verify(second, pki, [tag])) == {tag: True}
    new = seen(registry)[before:]
    assert new and all(request.endswith("/v2/team/app0/manifests/v1") for request in new), new


def test_another_trust_configuration_never_uses_the_entries(
        tmp_path: Path, start_provider: Start, pki: ProviderPKI, registry: RegistryServer,
        redis_server: RedisServer) -> None:
    image = publish(tmp_path, registry, "team/app")
    first = start_provider(config(tmp_path, registry, redis_server))
    # Same Redis, same HMAC key, but trusting another key: KEY's signature does not count here.
    other = start_provider(config(tmp_path, registry, redis_server, key=OTHER_KEY))
    assert verdicts(verify(first, pki, [image])) == {image: True}
    count = len(seen(registry))
    assert verdicts(verify(other, pki, [image])) == {image: False}
    assert len(seen(registry)) > count  # it verified for itself
    assert shared_events(other, "hit") == 0


def test_a_forged_entry_does_not_make_an_image_verified(
        tmp_path: Path, start_provider: Start, pki: ProviderPKI, registry: RegistryServer,
        redis_server: RedisServer) -> None:
    image = publish(tmp_path, registry, "team/app")
    unsigned = [publish(tmp_path, registry, f"team/unsigned{i}", signed=False) for i in range(2)]
    settings = config(tmp_path, registry, redis_server)
    first = start_provider(settings)
    verified = verify(first, pki, [image])[image]
    assert verified["verified"] is True

    # What a process with Redis access but without the HMAC key can do: read the names, copy a genuine entry
    # onto another image's name, or write its own entry.
    attacker = redis.Redis(host="127.0.0.1", port=redis_server.port, password=redis_server.password)
    names = [name.decode() for name in attacker.keys("sigwarden:*:facts:*")]
    assert len(names) == 1
    genuine = attacker.get(names[0])
    prefix = names[0].rsplit(":", 1)[0]

    def name_of(reference: str) -> str:
        repository, digest = reference.split("@")
        return f"{prefix}:{hashlib.sha256(f'{repository} {digest}'.encode()).hexdigest()}"

    attacker.set(name_of(unsigned[0]), genuine)
    facts = {**verified, "digest": unsigned[1].split("@")[1]}
    payload = json.dumps({"exp": time.time() + 600, "value": {"v": json.dumps(facts), "d": facts["digest"]},
                          "error": None}).encode()
    attacker.set(name_of(unsigned[1]), b"sw1." + hashlib.sha256(payload).hexdigest().encode() + b"." + payload)

    second = start_provider(settings)
    assert verdicts(verify(second, pki, unsigned)) == {key: False for key in unsigned}
    assert shared_events(second, "rejected") >= 2


def test_processes_asked_at_once_verify_each_image_once(
        tmp_path: Path, start_provider: Start, pki: ProviderPKI, registry: RegistryServer,
        redis_server: RedisServer) -> None:
    alone = [publish(tmp_path, registry, f"team/alone{i}") for i in range(4)]
    together = [publish(tmp_path, registry, f"team/together{i}") for i in range(4)]
    settings = config(tmp_path, registry, redis_server)
    first, second = start_provider(settings), start_provider(settings)
    verify(first, pki, alone)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda provider: verify(provider, pki, together), (first, second)))
    assert all(verdicts(a) == {key: True for key in together} for a in answers)
    fetched = fetches(registry)
    one_process = fetched["team/alone0"]
    assert one_process[".sig"] == 1 and one_process["blobs"] == 1
    for i in range(4):
        assert fetched[f"team/together{i}"] == one_process, i  # what one process verifying it alone asks for
    # Each of the eight images was led (verified) by exactly one process; the other waited or found it stored.
    assert shared_events(first, "led") + shared_events(second, "led") == 8


def test_redis_killed_mid_run_still_gives_correct_answers(
        tmp_path: Path, start_provider: Start, pki: ProviderPKI, registry: RegistryServer,
        redis_server: RedisServer) -> None:
    signed = [publish(tmp_path, registry, f"team/app{i}") for i in range(2)]
    unsigned = publish(tmp_path, registry, "team/unsigned", signed=False)
    settings = config(tmp_path, registry, redis_server, deadline="10s")
    first, second = start_provider(settings), start_provider(settings)
    assert verdicts(verify(first, pki, signed[:1])) == {signed[0]: True}

    redis_server.stop()
    expected = {signed[0]: True, signed[1]: True, unsigned: False}
    assert verdicts(verify(second, pki, list(expected))) == expected
    assert verdicts(verify(first, pki, list(expected))) == expected
    assert shared_events(second, "error") >= 1
    assert requests.get(second.metrics_url + "/readyz", timeout=10).status_code == 200
    assert "shared cache unavailable" in second.log()


def test_a_reload_changing_trust_material_starts_a_new_generation(
        tmp_path: Path, start_provider: Start, pki: ProviderPKI, registry: RegistryServer,
        redis_server: RedisServer) -> None:
    image = publish(tmp_path, registry, "team/app")
    provider = start_provider(config(tmp_path, registry, redis_server))
    assert verdicts(verify(provider, pki, [image])) == {image: True}
    # The key file changes under the running process: a new config generation, a new fingerprint, so the
    # verified entry it wrote to Redis under the old key is not used.
    (tmp_path / "cosign.pub").write_bytes(cosign.public_pem(OTHER_KEY))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and verdicts(verify(provider, pki, [image]))[image]:
        time.sleep(0.3)
    assert verdicts(verify(provider, pki, [image])) == {image: False}
    assert len(redis.Redis(host="127.0.0.1", port=redis_server.port,
                           password=redis_server.password).keys("sigwarden:*:facts:*")) == 2
