"""Hostile registries never produce `verified: true`; each misbehaviour gets a clear, specific error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from provider.config import build_config
from provider.engine import Engine
from provider.reference import parse_reference
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
    fallback = f"/v2/referred/manifests/{MANIFEST_DIGEST.replace(':', '-')}"
    # Not yet knowing whether this registry has the API, discovery asked the referrers tag beside it (no
    # round trip more for a registry without one); the API answered, so only its answer counts.
    assert hostile.hits[fallback] == 1
    again = store.discover(image, time.monotonic() + 5)
    e.shutdown()
    for artifacts in (found, again):
        assert [a.descriptor.digest for a in artifacts] == REFERRER_DIGESTS
        assert {a.source for a in artifacts} == {"referrers"}
    assert hostile.hits[f"/v2/referred/referrers/{MANIFEST_DIGEST}?page=2"] == 2
    # Once the registry is known to have the API, the referrers-tag fallback is not asked; cosign's tags are.
    assert hostile.hits[fallback] == 1
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


@pytest.fixture
def other_host() -> Iterator[HostileRegistry]:
    """A second registry on another loopback address: another host as far as any host rule is concerned."""
    server = HostileRegistry(address="127.0.0.2")
    yield server
    server.stop()


def two_host_engine(tmp_path: Path, origin: HostileRegistry, other: HostileRegistry, *more: str,
                    **auth: Any) -> Engine:
    # Every host is named in `insecure`, so the egress policy lets all be reached: what stops the
    # credentials is the credential rule alone.
    data = {"server": {"requestDeadline": "2s"},
            "stores": [{"type": "registry", "match": ["*"], "insecure": [origin.host, other.host, *more],
                        "auth": {"static": {origin.host: {"username": "ci", "password": "pw"}}, **auth}}],
            "authorities": [{"name": "any", "cosign": {"publicKeys": [str(VECTORS / "containers-image/cosign.pub")]}}]}
    return Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))


def resolved_once(engine: Engine, image: str) -> Any:
    """The engine's /mutate item for `image`; the engine is shut down afterwards."""
    try:
        return engine.resolve([image], "t")[0]
    finally:
        engine.shutdown()


def basic_sent(registry: HostileRegistry) -> bool:
    return any(value and value.startswith("Basic ") for value in registry.authorization)


def test_a_redirect_targets_challenge_never_gets_the_origins_credentials(
        tmp_path: Path, hostile: HostileRegistry, other_host: HostileRegistry) -> None:
    """Registry A redirects to host B, whose 401 names B's own realm: A's credentials must not go there, and
    no token B issues may be presented to A. The class of Ratify's CVE-2025-27403 (its Azure auth providers
    exchanged credentials with whatever registry host an image named); the token flow is the one of
    distribution's docs/spec/auth/token.md, where the client answers the challenge of the registry it asked."""
    hostile.redirect_to = f"{other_host.url}/v2/realm/manifests/v1"
    other_host.realm = f"{other_host.url}/token"
    item = resolved_once(two_host_engine(tmp_path, hostile, other_host), f"{hostile.host}/redirect:v1")
    assert item.error == (f"UNAUTHORIZED: registry {hostile.host} redirected redirect/manifests/v1 to "
                          f"{other_host.host}, which asked for credentials; credentials are only sent to "
                          f"{hostile.host} and its token realm")
    assert not any(path.startswith("/token") for path in other_host.hits)
    assert not basic_sent(other_host)
    assert not any(value for value in hostile.authorization)  # A never saw a token from B


def test_a_realm_on_another_host_gets_credentials_only_when_named(
        tmp_path: Path, hostile: HostileRegistry, other_host: HostileRegistry) -> None:
    hostile.realm = f"{other_host.url}/token"
    item = resolved_once(two_host_engine(tmp_path, hostile, other_host), f"{hostile.host}/realm:v1")
    assert item.error == (f"UNAUTHORIZED: registry {hostile.host} named the token realm {other_host.host}; its "
                          f"credentials go only to {hostile.host} or a realm host listed in the store's "
                          "auth.tokenRealms")
    assert not any(path.startswith("/token") for path in other_host.hits)
    # Named in auth.tokenRealms: the credentials go to that realm (and the registry still refuses: its
    # /v2/realm/ always challenges, so the answer is the registry's 401 after one token).
    item = resolved_once(two_host_engine(tmp_path, hostile, other_host, tokenRealms=[other_host.host]),
                         f"{hostile.host}/realm:v1")
    assert basic_sent(other_host)
    assert item.error.startswith(f"UNAUTHORIZED: registry {hostile.host} denied access to realm/manifests/v1 (401)")


def test_tokens_are_cached_per_realm(tmp_path: Path, hostile: HostileRegistry) -> None:
    """A token the registry's realm issued is reused for the same (host, realm, service, scope, identity)."""
    e = engine(tmp_path, hostile, auth={"static": {hostile.host: {"username": "ci", "password": "pw"}}})
    try:
        store = e.router.select(parse_reference(f"{hostile.host}/private:v1"))
        for _ in range(2):
            store.client.get(hostile.host, "private", "private/manifests/v1", time.monotonic() + 5, 1 << 20)
    finally:
        e.shutdown()
    assert hostile.hits["/token?scope=repository%3Aprivate%3Apull&service=hostile"] == 1
    assert hostile.authorization[-1] == "Bearer good-token"


def test_an_oversized_challenge_is_refused_before_any_token_request(tmp_path: Path, hostile: HostileRegistry) -> None:
    """Challenges are remembered per host to find cached tokens: their size is bounded (MAX_CHALLENGE_CHARS)."""
    from provider.stores.registry_client import MAX_CHALLENGE_CHARS

    hostile.realm = f"{hostile.url}/token?pad=" + "x" * MAX_CHALLENGE_CHARS
    error = check(tmp_path, hostile, "realm:v1")
    assert error == (f"UNAUTHORIZED: registry {hostile.host} sent a Bearer challenge whose realm and service are "
                     f"over {MAX_CHALLENGE_CHARS} characters")
    assert not any(path.startswith("/token") for path in hostile.hits)


def test_a_real_registry_behind_a_redirect_never_sees_the_origins_credentials(
        tmp_path: Path, hostile: HostileRegistry, other_host: HostileRegistry) -> None:
    """The same attack with a real docker-registry as host B: token auth, whose 401 names a token realm
    (here a second server that records what it is sent)."""
    from tests.registry import RegistryServer

    realm = f"{other_host.url}/token"
    behind = RegistryServer(tmp_path / "registry-b", token_realm=realm)
    try:
        challenge = requests.get(f"{behind.url}/v2/team/app/manifests/v1", timeout=10)
        assert challenge.status_code == 401 and f'realm="{realm}"' in challenge.headers["WWW-Authenticate"]
        hostile.redirect_to = f"{behind.url}/v2/team/app/manifests/v1"
        item = resolved_once(two_host_engine(tmp_path, hostile, other_host, behind.host), f"{hostile.host}/redirect:v1")
    finally:
        behind.stop()
    assert item.error == (f"UNAUTHORIZED: registry {hostile.host} redirected redirect/manifests/v1 to "
                          f"{behind.host}, which asked for credentials; credentials are only sent to "
                          f"{hostile.host} and its token realm")
    assert not any(path.startswith("/token") for path in other_host.hits)
    assert not basic_sent(other_host)
