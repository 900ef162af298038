"""ACR Enterprise Edition credentials from RRSA, as on ACK: alibabacloud-credentials' OIDC role provider against
an STS stand-in, alibabacloud-cr20181201's GetAuthorizationToken against an ACR OpenAPI stand-in, and the real
docker-registry with token auth behind the instance's endpoint, inside a private network namespace."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.clouds.common import assert_verified, engine_for, product_logs, publish, verify, verify_once
from tests.clouds.standins import (
    AcrOpenApiStandIn,
    AlibabaStsStandIn,
    BasicTokenFront,
    RegistryTokenSigner,
    Unexpired,
)
from tests.cloudworld import WorldCA, address, in_world, serve_wsgi
from tests.registry import RegistryServer

pytest.importorskip("alibabacloud_credentials")
pytest.importorskip("alibabacloud_cr20181201")

EE = "myinstance-registry.cn-hangzhou.cr.aliyuncs.com"
EE_VPC = "myinstance-registry-vpc.cn-hangzhou.cr.aliyuncs.com"
INSTANCE = "cri-a1b2c3d4e5f6g7h8"
ROLE = "acs:ram::1234567890123456:role/sigwarden"
OIDC_PROVIDER = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0123456789"
OIDC_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2lnd2FyZGVuIn0.YWNr"


@dataclass
class AlibabaWorld:
    world: WorldCA
    sts: AlibabaStsStandIn
    openapi: AcrOpenApiStandIn
    front: BasicTokenFront
    registry: RegistryServer
    signer: RegistryTokenSigner
    host: str

    def publish(self, tmp_path: Path, repository: str) -> str:
        return publish(tmp_path, self.registry, repository, self.host, self.signer.session(self.host, repository))


def alibaba_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vpc: bool = False,
                  oidc_token: str = OIDC_TOKEN, lifetime: int = 3600) -> AlibabaWorld:
    world = WorldCA.create(tmp_path / "ca")
    world.trust(monkeypatch)
    sts = AlibabaStsStandIn(ROLE, OIDC_PROVIDER, OIDC_TOKEN)
    serve_wsgi(sts, f"sts{'-vpc' if vpc else ''}.cn-hangzhou.aliyuncs.com", world)
    openapi = AcrOpenApiStandIn(sts, {INSTANCE}, lifetime)
    serve_wsgi(openapi, f"cr{'-vpc' if vpc else ''}.cn-hangzhou.aliyuncs.com", world)
    host = EE_VPC if vpc else EE
    signer = RegistryTokenSigner(tmp_path / "ee-signer")
    registry = RegistryServer(tmp_path / "ee", token_realm=f"https://{host}/service/token", token_service=host,
                              token_signer=signer.bundle, address=address(host), port=5000)
    front = BasicTokenFront(host, registry.url, signer, "/service/token", "cr_temp_user",
                            Unexpired(openapi.expiry))  # type: ignore[arg-type]
    serve_wsgi(front, host, world)
    rrsa_pod(tmp_path, monkeypatch, vpc, oidc_token)
    return AlibabaWorld(world, sts, openapi, front, registry, signer, host)


def rrsa_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vpc: bool = False, oidc_token: str = OIDC_TOKEN) -> None:
    """What ACK's pod-identity webhook injects for a ServiceAccount annotated pod-identity.alibabacloud.com/role-name
    in a namespace labelled pod-identity.alibabacloud.com/injection."""
    token = tmp_path / "rrsa-token"
    token.write_text(oidc_token)
    monkeypatch.setenv("ALIBABA_CLOUD_ROLE_ARN", ROLE)
    monkeypatch.setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", OIDC_PROVIDER)
    monkeypatch.setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", str(token))
    monkeypatch.setenv("ALIBABA_CLOUD_STS_REGION", "cn-hangzhou")
    monkeypatch.setenv("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true" if vpc else "false")
    for variable in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"):
        monkeypatch.delenv(variable, raising=False)


def cloud_store(alibaba: AlibabaWorld, **cloud: object) -> dict[str, object]:
    return {"type": "registry", "match": [f"{alibaba.host}/*"], "ca": alibaba.world.bundle,
            "auth": {"cloud": {"provider": "alibaba", **(cloud or {"instances": {"myinstance": INSTANCE}})}}}


@in_world
def test_rrsa_pulls_from_acr_enterprise_edition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    # Ratify's alibabacloudAcrBasic provider: instance name from the host, its id from acrInstancesConfig.
    alibaba = alibaba_world(tmp_path, monkeypatch)
    try:
        digest = alibaba.publish(tmp_path, "team/app")
        caplog.set_level(logging.DEBUG)
        item = verify_once(tmp_path, [cloud_store(alibaba)], f"{EE}/team/app:v1")
        assert_verified(item, digest)
        (authorization,) = alibaba.openapi.issued
        assert alibaba.front.recorder.seen(authorization)
        for secret in [authorization, OIDC_TOKEN, *alibaba.sts.issued.values()]:
            assert secret not in product_logs(caplog), "a credential reached a log line"
    finally:
        alibaba.registry.stop()


@in_world
def test_vpc_endpoints_and_the_default_instance_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Inside a VPC: STS and the ACR OpenAPI at their -vpc endpoints, the registry's -vpc host; an instance name
    # not listed falls back to instanceId (Ratify's defaultInstanceId).
    alibaba = alibaba_world(tmp_path, monkeypatch, vpc=True)
    try:
        digest = alibaba.publish(tmp_path, "team/app")
        item = verify_once(tmp_path, [cloud_store(alibaba, instanceId=INSTANCE)], f"{EE_VPC}/team/app:v1")
        assert_verified(item, digest)
        assert {host for host, _ in alibaba.sts.recorder.requests} == {"sts-vpc.cn-hangzhou.aliyuncs.com"}
    finally:
        alibaba.registry.stop()


@in_world
def test_a_denied_identity_is_a_one_line_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alibaba = alibaba_world(tmp_path, monkeypatch, oidc_token="a-token-sts-does-not-accept")
    try:
        item = verify_once(tmp_path, [cloud_store(alibaba)], f"{EE}/team/app:v1")
        message = str(item.error)
        assert message.startswith(f"UNAUTHORIZED: alibaba identity for {EE}:"), message
        assert "AuthenticationFail.OIDCToken.Invalid" in message and "\n" not in message
        assert alibaba.openapi.recorder.requests == []
    finally:
        alibaba.registry.stop()


def test_an_instance_without_an_id_names_the_setting() -> None:
    from provider.config import CloudAuth
    from provider.stores.cloud.alibaba import AlibabaIdentity
    from provider.stores.cloud.issued import CloudIdentityError
    from provider.stores.cloud.transport import SdkTransport
    from provider.stores.fetch import Outbound

    identity = AlibabaIdentity(CloudAuth("alibaba", instances={"other": "cri-1"}), SdkTransport(Outbound()))
    assert identity.instance_id("other-registry.cn-beijing.cr.aliyuncs.com") == ("cri-1", "cn-beijing")
    with pytest.raises(CloudIdentityError, match=r"set auth\.cloud\.instances or auth\.cloud\.instanceId"):
        identity.instance_id(EE)


@in_world
def test_the_ack_seed_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The ACK deployment sigwarden replaces: an image in ACR EE signed through the
    # notation-alibabacloud-secret-manager plugin (a notation JWS whose chain is the self-signed certificate the
    # plugin issues from the KMS key, written with output_cert_dir), pulled with RRSA, verified with that
    # certificate installed as a trust store.
    from provider.devkit import notation

    alibaba = alibaba_world(tmp_path, monkeypatch)
    key = notation.new_key("ec-256")
    certificate = notation.certificate(notation.CertSpec("notation-alibabacloud-secret-manager"), key)
    identity = notation.SigningIdentity(key, [certificate], certificate)
    try:
        digest = push_notation_signed(alibaba, tmp_path, identity)
        (tmp_path / "plugin-output.crt").write_bytes(identity.root_pem)
        item = verify_seed(alibaba, tmp_path, ["plugin-output.crt"])
        assert not item.error, item.error
        assert item.value["verified"] is True and item.value["authorities"] == ["ack-release"]
        assert item.value["digest"] == digest
        assert alibaba.openapi.issued, "the pull did not go through RRSA and GetAuthorizationToken"
    finally:
        alibaba.registry.stop()


def push_notation_signed(alibaba: AlibabaWorld, tmp_path: Path, identity: Any) -> str:
    """Push team/app:v1 to the ACR EE instance with a notation JWS signature made by `identity`; its digest."""
    from provider.devkit import notation
    from provider.devkit.layout import LayoutWriter

    writer = LayoutWriter(tmp_path / "staging", "repo")
    image = writer.add_image("v1", b"ack seed")
    notation.attach(writer, image, notation.sign(notation.target_of(image), identity, "jws"), "jws")
    # docker-registry 2.8 has no referrers API: the referrers tag index, as notation pushes it there.
    referrers = [m for m in json.loads((writer.path / "index.json").read_text())["manifests"]
                 if m.get("artifactType") == notation.NOTARY_ARTIFACT_TYPE]
    index = "application/vnd.oci.image.index.v1+json"
    writer.add_manifest({"schemaVersion": 2, "mediaType": index, "manifests": referrers},
                        image["digest"].replace(":", "-"), index)
    alibaba.registry.push_layout(writer.path, "team/app", alibaba.signer.session(EE, "team/app"))
    return str(image["digest"])


def verify_seed(alibaba: AlibabaWorld, tmp_path: Path, trust_store: list[Any]) -> Any:
    """Verify team/app:v1 from ACR EE (pulled with RRSA) against the notation trust store `ca:ack`."""
    policy = {"version": "1.0", "trustPolicies": [{
        "name": "ack", "registryScopes": [f"{EE}/team/app"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:ack"], "trustedIdentities": ["*"]}]}
    engine = engine_for(tmp_path, [cloud_store(alibaba)], authorities=[
        {"name": "ack-release", "notation": {"trustStores": {"ca:ack": trust_store},
                                             "trustPolicy": {"inline": policy}}}])
    try:
        return verify(engine, f"{EE}/team/app:v1")
    finally:
        engine.shutdown()


@in_world
def test_an_expired_authorization_token_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ACR EE authorization tokens that live 2 s (the realm refuses them after that): the next image still
    # verifies with a new one from GetAuthorizationToken.
    alibaba = alibaba_world(tmp_path, monkeypatch, lifetime=2)
    alibaba.front.access_lifetime = 1
    try:
        alibaba.publish(tmp_path, "team/app")
        alibaba.publish(tmp_path, "team/other")
        engine = engine_for(tmp_path, [cloud_store(alibaba)])
        try:
            first = verify(engine, f"{EE}/team/app:v1")
            time.sleep(max(max(alibaba.openapi.expiry.values()) - time.time(), 0) + 0.5)
            second = verify(engine, f"{EE}/team/other:v1")
        finally:
            engine.shutdown()
        assert not first.error and first.value["verified"] is True, first
        assert not second.error and second.value["verified"] is True, second
        assert len(alibaba.openapi.issued) >= 2
    finally:
        alibaba.registry.stop()


@in_world
def test_the_nodes_ram_role_only_when_the_store_asks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from tests.clouds.standins import EcsMetadataStandIn
    from tests.cloudworld import serve_plain_at

    alibaba = alibaba_world(tmp_path, monkeypatch)
    for variable in ("ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"):
        monkeypatch.delenv(variable)
    subprocess.run(["ip", "addr", "add", "100.100.100.200/32", "dev", "lo"], check=True)
    metadata = EcsMetadataStandIn(alibaba.sts)
    serve_plain_at(metadata, "100.100.100.200", 80)
    try:
        digest = alibaba.publish(tmp_path, "team/app")
        refused = verify_once(tmp_path, [cloud_store(alibaba)], f"{EE}/team/app:v1")
        assert "no RRSA identity in this pod" in str(refused.error) and metadata.recorder.requests == []
        engine = engine_for(tmp_path, [cloud_store(alibaba, instanceId=INSTANCE, nodeIdentity=True)],
                            name="config-node.yaml")
        try:
            item = verify(engine, f"{EE}/team/app:v1")
        finally:
            engine.shutdown()
        assert_verified(item, digest)
        assert "GET /latest/meta-data/ram/security-credentials/ack-node-role" in metadata.recorder.paths()
    finally:
        alibaba.registry.stop()
