"""ECR credentials from the pod's AWS identity, against moto (server mode, over TLS) as STS and ECR, and a real
docker-registry with htpasswd auth standing at the ECR host name, inside a private network namespace."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from tests.clouds.common import assert_verified, engine_for, product_logs, publish, verify, verify_once
from tests.cloudworld import WorldCA, address, in_world, serve_wsgi
from tests.registry import RegistryServer

pytest.importorskip("boto3")
pytest.importorskip("moto")

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
OTHER_ECR = "999999999999.dkr.ecr.us-east-1.amazonaws.com"
# moto's ECR GetAuthorizationToken answers `AWS:<registry id>-auth-token`, with an expiry in 2015.
PASSWORD = "123456789012-auth-token"


def aws_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, irsa: bool = True) -> WorldCA:
    from moto.server import DomainDispatcherApplication, create_backend_app

    world = WorldCA.create(tmp_path / "ca")
    world.trust(monkeypatch)
    serve_wsgi(DomainDispatcherApplication(create_backend_app), "aws.emulator.example", world)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://aws.emulator.example")
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    if irsa:
        # What EKS's pod identity webhook injects for a ServiceAccount annotated eks.amazonaws.com/role-arn.
        token = tmp_path / "eks-token"
        token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2lnd2FyZGVuIn0.c2ln")
        monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/sigwarden")
        monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    else:
        monkeypatch.delenv("AWS_ROLE_ARN", raising=False)
        monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    return world


def ecr_registry(tmp_path: Path, world: WorldCA, name: str, password: str) -> RegistryServer:
    return RegistryServer(tmp_path / name, pki=world.server(name), users={"AWS": password},  # type: ignore[arg-type]
                          name=name, address=address(name), port=443)


def cloud_store(world: WorldCA, host: str = ECR) -> dict[str, object]:
    return {"type": "registry", "match": [f"{host}/*"], "ca": world.bundle, "auth": {"cloud": {"provider": "aws"}}}


@in_world
def test_irsa_web_identity_pulls_from_ecr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    # The role's web identity (IRSA) is exchanged at STS, then ECR GetAuthorizationToken for the registry id
    # and region read from the host name, as amazon-ecr-credential-helper (ecr-login/api/client.go) does.
    world = aws_world(tmp_path, monkeypatch)
    registry = ecr_registry(tmp_path, world, ECR, PASSWORD)
    try:
        digest = publish(tmp_path, registry, "team/app")
        engine = engine_for(tmp_path, [cloud_store(world)])
        caplog.set_level(logging.DEBUG)
        try:
            first = verify(engine, f"{ECR}/team/app:v1")
            # moto's token reports an expiry in the past: it serves the request that fetched it and is not
            # kept, so the next request asks ECR again instead of failing.
            second = verify(engine, f"{ECR}/team/app@{digest}")
        finally:
            engine.shutdown()
        assert not first.error, first.error
        assert first.value["verified"] is True and first.value["digest"] == digest
        assert not second.error and second.value["verified"] is True
        # Neither the password nor ECR's base64 `AWS:password` answer (botocore logs response bodies at DEBUG).
        encoded = base64.b64encode(f"AWS:{PASSWORD}".encode()).decode()
        logs = product_logs(caplog)
        assert PASSWORD not in logs and encoded not in logs, "a registry credential reached a log line"
    finally:
        registry.stop()


@in_world
def test_ecr_token_never_reaches_a_registry_the_store_does_not_name(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Another ECR registry that would accept the same password: reached through a store without cloud auth, it
    # is asked anonymously and refuses, so the token was never sent there.
    world = aws_world(tmp_path, monkeypatch)
    other = ecr_registry(tmp_path, world, OTHER_ECR, PASSWORD)
    try:
        publish(tmp_path, other, "team/app")
        engine = engine_for(tmp_path, [cloud_store(world),
                                       {"type": "registry", "match": ["*"], "ca": world.bundle,
                                        "allowNetworks": ["127.0.0.0/8"]}])
        try:
            item = verify(engine, f"{OTHER_ECR}/team/app:v1")
        finally:
            engine.shutdown()
        assert item.error and "UNAUTHORIZED" in str(item.error), item
    finally:
        other.stop()


@in_world
def test_no_pod_identity_is_a_one_line_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Neither IRSA nor Pod Identity, and the node's identity (instance metadata) is not borrowed unless asked.
    world = aws_world(tmp_path, monkeypatch, irsa=False)
    engine = engine_for(tmp_path, [cloud_store(world)])
    try:
        item = verify(engine, f"{ECR}/team/app:v1")
        problems = engine.router.credential_problems()
    finally:
        engine.shutdown()
    assert item.error, item
    message = str(item.error)
    assert "aws identity for 123456789012.dkr.ecr.us-east-1.amazonaws.com" in message
    assert "credentials" in message.lower() and "\n" not in message
    # What /readyz shows next to "ready" (the pod keeps serving other stores).
    assert problems == [f"stores[0]: {message.removeprefix('UNAUTHORIZED: ')}"]


@in_world
def test_eks_pod_identity_through_the_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # EKS Pod Identity: the agent on 169.254.170.23 (what the EKS webhook points AWS_CONTAINER_CREDENTIALS_FULL_URI
    # at) hands out the role's credentials; botocore's container provider reaches it through sigwarden's transport.
    import subprocess

    from tests.clouds.standins import PodIdentityAgentStandIn
    from tests.cloudworld import serve_plain_at

    world = aws_world(tmp_path, monkeypatch, irsa=False)
    token = tmp_path / "eks-pod-identity-token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.cG9kLWlkZW50aXR5.c2ln")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token))
    subprocess.run(["ip", "addr", "add", "169.254.170.23/32", "dev", "lo"], check=True)
    agent = PodIdentityAgentStandIn(token.read_text())
    serve_plain_at(agent, "169.254.170.23", 80)
    registry = ecr_registry(tmp_path, world, ECR, PASSWORD)
    try:
        digest = publish(tmp_path, registry, "team/app")
        item = verify_once(tmp_path, [cloud_store(world)], f"{ECR}/team/app:v1")
        assert_verified(item, digest)
        assert agent.recorder.paths() == ["/v1/credentials"]
    finally:
        registry.stop()
