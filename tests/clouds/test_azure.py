"""ACR credentials from AKS workload identity: azure-identity's WorkloadIdentityCredential against an Entra ID
stand-in, ACR's token exchange against an ACR stand-in, and the real docker-registry with token auth behind it,
all over TLS inside a private network namespace."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clouds.common import assert_verified, engine_for, product_logs, publish, verify, verify_once
from tests.clouds.standins import AcrStandIn, EntraStandIn, RegistryTokenSigner
from tests.cloudworld import WorldCA, address, in_world, serve_wsgi
from tests.registry import RegistryServer

pytest.importorskip("azure.identity")

ACR = "myacr.azurecr.io"
OTHER_ACR = "otheracr.azurecr.io"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0b4a6d5e-7d43-4b8a-9b60-2f3c1d6a1111"
FEDERATED_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2lnd2FyZGVuIn0.YWtz"


@dataclass
class AzureWorld:
    world: WorldCA
    entra: EntraStandIn
    acr: AcrStandIn
    registry: RegistryServer
    signer: RegistryTokenSigner

    def publish(self, tmp_path: Path, repository: str) -> str:
        return publish(tmp_path, self.registry, repository, ACR, self.signer.session(ACR, repository))

    def stop(self) -> None:
        self.registry.stop()


def acr(tmp_path: Path, world: WorldCA, name: str, entra: EntraStandIn | None, port: int,
        refresh_lifetime: float = 3 * 3600, access_lifetime: float = 300) -> tuple[AcrStandIn, RegistryServer,
                                                                                   RegistryTokenSigner]:
    signer = RegistryTokenSigner(tmp_path / f"{name}-signer")
    registry = RegistryServer(tmp_path / name, token_realm=f"https://{name}/oauth2/token", token_service=name,
                              token_signer=signer.bundle, address=address(name), port=port)
    stand_in = AcrStandIn(name, registry.url, signer, entra, refresh_lifetime, access_lifetime)
    serve_wsgi(stand_in, name, world)
    return stand_in, registry, signer


def azure_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client_id: str = CLIENT_ID,
                refresh_lifetime: float = 3 * 3600, access_lifetime: float = 300) -> AzureWorld:
    world = WorldCA.create(tmp_path / "ca")
    world.trust(monkeypatch)
    entra = EntraStandIn(TENANT, CLIENT_ID, FEDERATED_TOKEN)
    serve_wsgi(entra, "login.microsoftonline.com", world)
    # What the AKS workload identity webhook injects into a pod labelled azure.workload.identity/use: "true"
    # whose ServiceAccount is annotated azure.workload.identity/client-id.
    token = tmp_path / "azure-identity-token"
    token.write_text(FEDERATED_TOKEN)
    monkeypatch.setenv("AZURE_CLIENT_ID", client_id)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/")
    stand_in, registry, signer = acr(tmp_path, world, ACR, entra, 5000, refresh_lifetime, access_lifetime)
    return AzureWorld(world, entra, stand_in, registry, signer)


def cloud_store(world: WorldCA) -> dict[str, object]:
    return {"type": "registry", "match": [f"{ACR}/*"], "ca": world.bundle, "auth": {"cloud": {"provider": "azure"}}}


@in_world
def test_workload_identity_pulls_from_acr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    # Ratify's azureWorkloadIdentity provider (pkg/common/oras/authprovider/azure/azureworkloadidentity.go): an
    # Entra token for ACR's resource, exchanged at the registry for a refresh token, user 00000000-….
    azure = azure_world(tmp_path, monkeypatch)
    try:
        digest = azure.publish(tmp_path, "team/app")
        caplog.set_level(logging.DEBUG)
        item = verify_once(tmp_path, [cloud_store(azure.world)], f"{ACR}/team/app:v1")
        assert_verified(item, digest)
        paths = azure.acr.recorder.paths()
        assert paths.count("/oauth2/exchange") == 1 and "/oauth2/token" in paths
        exchange = dict(azure.acr.recorder.requests)["/oauth2/exchange"]
        assert exchange["service"] == ACR and exchange["tenant"] == TENANT
        assert azure.entra.recorder.requests[0][1]["scope"] == "https://containerregistry.azure.net/.default"
        for secret in [*azure.entra.issued, *azure.acr.refresh_tokens, FEDERATED_TOKEN]:
            assert secret not in product_logs(caplog), "a credential reached a log line"
    finally:
        azure.stop()


@in_world
def test_an_expired_refresh_token_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ACR refresh tokens that live 3 s and access tokens that live 2 s: after both have expired, the next image
    # still verifies, because the cached refresh token is dropped at its `exp` and a new exchange is made.
    azure = azure_world(tmp_path, monkeypatch, refresh_lifetime=3, access_lifetime=2)
    try:
        azure.publish(tmp_path, "team/app")
        azure.publish(tmp_path, "team/other")
        engine = engine_for(tmp_path, [cloud_store(azure.world)])
        try:
            first = verify(engine, f"{ACR}/team/app:v1")
            expiry = max(azure.acr.refresh_tokens.values())
            time.sleep(max(expiry - time.time(), 0) + 0.5)
            second = verify(engine, f"{ACR}/team/other:v1")
        finally:
            engine.shutdown()
        assert not first.error and first.value["verified"] is True, first
        assert not second.error and second.value["verified"] is True, second
        assert azure.acr.recorder.paths().count("/oauth2/exchange") == 2
    finally:
        azure.stop()


@in_world
def test_acr_tokens_never_reach_a_registry_the_store_does_not_name(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # CVE-2025-27403: Ratify sent its ACR token to any registry an image named. Another ACR, reached through a
    # wildcard store, sees no exchange, no refresh token and no Entra token.
    azure = azure_world(tmp_path, monkeypatch)
    other, other_registry, other_signer = acr(tmp_path, azure.world, OTHER_ACR, azure.entra, 5001)
    try:
        publish(tmp_path, other_registry, "team/app", OTHER_ACR, other_signer.session(OTHER_ACR, "team/app"))
        engine = engine_for(tmp_path, [cloud_store(azure.world),
                                       {"type": "registry", "match": ["*"], "ca": azure.world.bundle,
                                        "allowNetworks": ["127.0.0.0/8"]}])
        try:
            item = verify(engine, f"{OTHER_ACR}/team/app:v1")
            ours = verify(engine, f"{ACR}/team/app:v1")
        finally:
            engine.shutdown()
        assert item.error and "UNAUTHORIZED" in str(item.error), item
        assert "/oauth2/exchange" not in other.recorder.paths()
        for secret in [*azure.entra.issued, *azure.acr.refresh_tokens, FEDERATED_TOKEN]:
            assert not other.recorder.seen(secret)
        assert ours.error, "the store's own registry has no image: the point is what the other one saw"
    finally:
        other_registry.stop()
        azure.stop()


@in_world
def test_a_denied_identity_is_a_one_line_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    azure = azure_world(tmp_path, monkeypatch, client_id="11111111-2222-3333-4444-555555555555")
    try:
        item = verify_once(tmp_path, [cloud_store(azure.world)], f"{ACR}/team/app:v1")
        message = str(item.error)
        assert message.startswith("UNAUTHORIZED: azure identity for myacr.azurecr.io:"), message
        assert "AADSTS700016" in message and "\n" not in message
        assert "/oauth2/exchange" not in azure.acr.recorder.paths()
    finally:
        azure.stop()


@in_world
def test_managed_identity_only_when_the_store_asks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ratify's azureManagedIdentity: the node's managed identity through IMDS, plain http on the link-local
    # address. sigwarden asks IMDS only with nodeIdentity: true.
    import subprocess

    from tests.clouds.standins import ImdsStandIn
    from tests.cloudworld import serve_plain_at

    azure = azure_world(tmp_path, monkeypatch)
    for variable in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(variable)
    subprocess.run(["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"], check=True)
    imds = ImdsStandIn(azure.entra)
    serve_plain_at(imds, "169.254.169.254", 80)
    try:
        digest = azure.publish(tmp_path, "team/app")
        store = cloud_store(azure.world)
        refused = verify_once(tmp_path, [store], f"{ACR}/team/app:v1")
        assert str(refused.error).startswith("UNAUTHORIZED: azure identity for myacr.azurecr.io: no Azure workload "
                                         "identity in this pod"), refused
        assert imds.recorder.requests == []
        store["auth"]["cloud"]["nodeIdentity"] = True  # type: ignore[index]
        engine = engine_for(tmp_path, [store], name="config-node.yaml")
        try:
            item = verify(engine, f"{ACR}/team/app:v1")
        finally:
            engine.shutdown()
        assert_verified(item, digest)
        assert ("/metadata/identity/oauth2/token", {"api-version": "2018-02-01",
                                                    "resource": "https://containerregistry.azure.net"}) \
            in imds.recorder.requests
    finally:
        azure.stop()


@in_world
def test_an_unreachable_token_service_is_transient_not_a_refusal(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens where Entra ID is expected: the answer is REGISTRY_UNAVAILABLE, as for a registry that
    # cannot be reached, not an UNAUTHORIZED that would read as a refused identity.
    azure = azure_world(tmp_path, monkeypatch)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com:8443/")
    try:
        item = verify_once(tmp_path, [cloud_store(azure.world)], f"{ACR}/team/app:v1")
        message = str(item.error)
        assert message.startswith("REGISTRY_UNAVAILABLE: azure identity for myacr.azurecr.io: cannot reach cloud "
                                  "service login.microsoftonline.com"), message
    finally:
        azure.stop()
