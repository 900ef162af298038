"""Hostile registries never produce `verified: true`; each misbehaviour gets a clear, specific error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provider.config import build_config
from provider.engine import Engine
from tests.helpers import VECTORS, write_yaml
from tests.hostile import MANIFEST_DIGEST, OTHER_DIGEST, REFERRER_DIGESTS, HostileRegistry


@pytest.fixture
def hostile() -> Iterator[HostileRegistry]:
    server = HostileRegistry()
    yield server
    server.stop()


def engine(tmp_path: Path, registry: HostileRegistry, deadline: str = "2s", **store: Any) -> Engine:
    data = {"server": {"requestDeadline": deadline},
            "stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host], **store}],
            "authorities": [{"name": "any", "cosign": {"publicKeys": [str(VECTORS / "containers-image/cosign.pub")]}}]}
    return Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))


def check(tmp_path: Path, registry: HostileRegistry, repo_ref: str, **kwargs: Any) -> str:
    e = engine(tmp_path, registry, **kwargs)
    try:
        item = e.verify([f"{registry.host}/{repo_ref}"], "t")[0]
    finally:
        e.shutdown()
    assert item.value is None, f"a hostile registry produced facts: {item.value}"
    return item.error


def test_manifest_whose_claimed_digest_differs_from_its_bytes(tmp_path: Path, hostile: HostileRegistry) -> None:
    error = check(tmp_path, hostile, "mismatch:v1")
    assert error == (f"REGISTRY_UNAVAILABLE: registry {hostile.host} claims {OTHER_DIGEST} for "
                     f"{hostile.host}/mismatch:v1 but the manifest bytes hash to {MANIFEST_DIGEST}")


def test_manifest_by_digest_whose_bytes_do_not_match(tmp_path: Path, hostile: HostileRegistry) -> None:
    error = check(tmp_path, hostile, f"mismatch@{OTHER_DIGEST}")
    assert error.startswith(f"REGISTRY_UNAVAILABLE: registry {hostile.host} served a manifest for {OTHER_DIGEST}")
    assert f"hashes to {MANIFEST_DIGEST}" in error


@pytest.mark.parametrize("repo", ["big", "bigchunked"])
def test_oversize_manifests_are_refused(tmp_path: Path, hostile: HostileRegistry, repo: str) -> None:
    error = check(tmp_path, hostile, f"{repo}:v1")
    assert error.startswith("REGISTRY_UNAVAILABLE: ") and "over the 4194304-byte limit" in error


def test_redirect_loop(tmp_path: Path, hostile: HostileRegistry) -> None:
    error = check(tmp_path, hostile, "loop:v1")
    assert error.startswith("REGISTRY_UNAVAILABLE: ") and "redirect loop" in error


@pytest.mark.parametrize("repo", ["slow", "drip"])
def test_slower_than_the_deadline(tmp_path: Path, hostile: HostileRegistry, repo: str) -> None:
    error = check(tmp_path, hostile, f"{repo}:v1", deadline="500ms")
    assert error.startswith("TIMEOUT: ")
    assert hostile.in_flight >= 1  # answered while the registry is still sending
    hostile.release.set()


def test_bearer_token_flow(tmp_path: Path, hostile: HostileRegistry) -> None:
    e = engine(tmp_path, hostile, auth={"static": {hostile.host: {"username": "ci", "password": "pw"}}})
    item = e.resolve([f"{hostile.host}/private:v1"], "t")[0]
    e.shutdown()
    assert item.value == f"{hostile.host}/private:v1@{MANIFEST_DIGEST}"
    assert hostile.hits["/token?scope=repository%3Aprivate%3Apull&service=hostile"] == 1
    error = check(tmp_path, hostile, "private:v1", auth={"static": {hostile.host: {"username": "ci",
                                                                                   "password": "nope"}}})
    assert error == f"UNAUTHORIZED: token service for {hostile.host} refused the credentials (401)"


def test_retries_503_then_succeeds(tmp_path: Path, hostile: HostileRegistry) -> None:
    e = engine(tmp_path, hostile)
    item = e.resolve([f"{hostile.host}/flaky:v1"], "t")[0]
    e.shutdown()
    assert item.value == f"{hostile.host}/flaky:v1@{MANIFEST_DIGEST}"
    assert hostile.hits["/v2/flaky/manifests/v1"] == 3  # two 503s, then the answer


@pytest.mark.parametrize("retry_after", [
    "soon", "", "-1", "1.5", "in a while",     # garbage: ignored, the client's own backoff applies
    "Sun, 06 Nov 1994 08:49:37 GMT",            # the three HTTP-date forms of RFC 9110 5.6.7, in the past:
    "Sunday, 06-Nov-94 08:49:37 GMT",           # ignored as containers/image docker/docker_client.go
    "Sun Nov  6 08:49:37 1994",                 # parseRetryAfter ignores a past date
])
def test_any_retry_after_is_retried_without_an_internal_error(tmp_path: Path, hostile: HostileRegistry,
                                                              retry_after: str) -> None:
    hostile.retry_after = retry_after
    e = engine(tmp_path, hostile)
    item = e.resolve([f"{hostile.host}/retryafter:v1"], "t")[0]
    e.shutdown()
    assert not item.error and item.value == f"{hostile.host}/retryafter:v1@{MANIFEST_DIGEST}"
    assert hostile.hits["/v2/retryafter/manifests/v1"] == 3


@pytest.mark.parametrize("retry_after", ["3600", "Fri, 31 Dec 2100 23:59:59 GMT"])
def test_a_retry_after_past_the_deadline_is_not_waited_for(tmp_path: Path, hostile: HostileRegistry,
                                                          retry_after: str) -> None:
    hostile.retry_after = retry_after
    error = check(tmp_path, hostile, "retryafter:v1", deadline="10s")
    # The registry's own answer, at once: not a TIMEOUT after sleeping, and no second request.
    assert error.startswith(f"REGISTRY_UNAVAILABLE: registry {hostile.host} answered 503")
    assert hostile.hits["/v2/retryafter/manifests/v1"] == 1


def test_persistent_503_carries_the_registry_message(tmp_path: Path, hostile: HostileRegistry) -> None:
    error = check(tmp_path, hostile, "down:v1")
    assert error == f"REGISTRY_UNAVAILABLE: registry {hostile.host} answered 503 for down/manifests/v1: " \
                    "UNAVAILABLE maintenance"


def test_referrers_api_with_link_pagination(tmp_path: Path, hostile: HostileRegistry) -> None:
    from provider.reference import parse_reference

    e = engine(tmp_path, hostile)
    store = e.router.select(parse_reference(f"{hostile.host}/referred:v1"))
    image = store.resolve(parse_reference(f"{hostile.host}/referred:v1"), time.monotonic() + 5)
    found = store.discover(image, time.monotonic() + 5)
    e.shutdown()
    assert [a.descriptor.digest for a in found] == REFERRER_DIGESTS
    assert {a.source for a in found} == {"referrers"}
    assert hostile.hits[f"/v2/referred/referrers/{MANIFEST_DIGEST}?page=2"] == 1
    # The referrers-tag fallback is not asked when the API answered; cosign's tags still are.
    assert not any(path.endswith(MANIFEST_DIGEST.replace(":", "-")) for path in hostile.hits)
    assert any(path.endswith(".sig") for path in hostile.hits)


def test_identity_token_is_exchanged_at_the_token_service(tmp_path: Path, hostile: HostileRegistry) -> None:
    import json as json_module

    config = tmp_path / "dockerconfig.json"
    config.write_text(json_module.dumps({"auths": {hostile.host: {"identitytoken": "refresh-me"}}}))
    e = engine(tmp_path, hostile, auth={"dockerConfig": str(config)})
    item = e.resolve([f"{hostile.host}/oauth:v1"], "t")[0]
    e.shutdown()
    assert item.value == f"{hostile.host}/oauth:v1@{MANIFEST_DIGEST}"
    assert hostile.hits["/oauth2/token"] == 1
