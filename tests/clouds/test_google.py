"""Artifact Registry credentials from google-auth application default credentials: workload identity
federation (an external_account file, Google STS) and the GKE metadata server, against stand-ins and the real
docker-registry with token auth behind an Artifact Registry front, inside a private network namespace."""

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
    BasicTokenFront,
    GkeMetadataStandIn,
    GoogleStsStandIn,
    RegistryTokenSigner,
    Unexpired,
)
from tests.cloudworld import WorldCA, address, in_world, serve_plain, serve_wsgi
from tests.registry import RegistryServer

pytest.importorskip("google.auth")

AR = "europe-docker.pkg.dev"
AUDIENCE = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/sigwarden/providers/eks"
SUBJECT_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2lnd2FyZGVuIn0.Z2tl"


@dataclass
class GoogleWorld:
    world: WorldCA
    sts: GoogleStsStandIn
    metadata: GkeMetadataStandIn
    front: BasicTokenFront
    registry: RegistryServer
    signer: RegistryTokenSigner

    def publish(self, tmp_path: Path, repository: str) -> str:
        return publish(tmp_path, self.registry, repository, AR, self.signer.session(AR, repository))


def google_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, federation: bool = True,
                 audience: str = AUDIENCE, lifetime: int = 3600) -> GoogleWorld:
    world = WorldCA.create(tmp_path / "ca")
    world.trust(monkeypatch)
    sts = GoogleStsStandIn(AUDIENCE, SUBJECT_TOKEN, lifetime)
    serve_wsgi(sts, "sts.googleapis.com", world)
    metadata = GkeMetadataStandIn("sigwarden@project.iam.gserviceaccount.com")
    serve_plain(metadata, "metadata.google.internal")
    signer = RegistryTokenSigner(tmp_path / "ar-signer")
    registry = RegistryServer(tmp_path / "ar", token_realm=f"https://{AR}/v2/token", token_service=AR,
                              token_signer=signer.bundle, address=address(AR), port=5000)
    # The access tokens either stand-in issues are the passwords Artifact Registry's realm takes.
    front = BasicTokenFront(AR, registry.url, signer, "/v2/token", "oauth2accesstoken", sts.issued)
    front.passwords = _Union(Unexpired(sts.expiry), metadata.issued)  # type: ignore[assignment]
    serve_wsgi(front, AR, world)
    monkeypatch.delenv("GCE_METADATA_HOST", raising=False)
    if federation:
        token = tmp_path / "federated-token"
        token.write_text(SUBJECT_TOKEN)
        config = tmp_path / "google-credentials.json"
        config.write_text(json.dumps({
            "type": "external_account", "audience": audience,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": "https://sts.googleapis.com/v1/token", "credential_source": {"file": str(token)}}))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(config))
    else:
        monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return GoogleWorld(world, sts, metadata, front, registry, signer)


class _Union:
    def __init__(self, *sets: Any) -> None:
        self.sets = sets

    def __contains__(self, item: object) -> bool:
        return any(item in s for s in self.sets)


def cloud_store(world: WorldCA, node_identity: bool = False) -> dict[str, object]:
    return {"type": "registry", "match": [f"{AR}/*"], "ca": world.bundle,
            "auth": {"cloud": {"provider": "google", "nodeIdentity": node_identity}}}


@in_world
def test_workload_identity_federation_pulls_from_artifact_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    google = google_world(tmp_path, monkeypatch)
    try:
        digest = google.publish(tmp_path, "project/repo/app")
        caplog.set_level(logging.DEBUG)
        item = verify_once(tmp_path, [cloud_store(google.world)], f"{AR}/project/repo/app:v1")
        assert_verified(item, digest)
        (token,) = google.sts.issued
        # docker-credential-gcr's convention: user oauth2accesstoken, the access token as password.
        assert google.front.recorder.seen(token) and token not in product_logs(caplog)
        assert google.metadata.recorder.paths() == [], "the metadata server was asked without nodeIdentity"
    finally:
        google.registry.stop()


@in_world
def test_gke_metadata_server_when_the_store_asks_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    google = google_world(tmp_path, monkeypatch, federation=False)
    try:
        digest = google.publish(tmp_path, "project/repo/app")
        item = verify_once(tmp_path, [cloud_store(google.world, node_identity=True)], f"{AR}/project/repo/app:v1")
        assert_verified(item, digest)
        assert any(p.endswith("/token") for p in google.metadata.recorder.paths())
    finally:
        google.registry.stop()


@in_world
def test_the_metadata_server_is_not_borrowed_silently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    google = google_world(tmp_path, monkeypatch, federation=False)
    try:
        item = verify_once(tmp_path, [cloud_store(google.world)], f"{AR}/project/repo/app:v1")
        message = str(item.error)
        assert message.startswith("UNAUTHORIZED: no Google identity for this pod"), message
        assert google.metadata.recorder.paths() == []
    finally:
        google.registry.stop()


@in_world
def test_a_denied_identity_is_a_one_line_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    google = google_world(tmp_path, monkeypatch, audience=AUDIENCE.replace("eks", "elsewhere"))
    try:
        item = verify_once(tmp_path, [cloud_store(google.world)], f"{AR}/project/repo/app:v1")
        message = str(item.error)
        assert message.startswith("UNAUTHORIZED: google identity for europe-docker.pkg.dev:"), message
        assert "invalid_grant" in message and "\n" not in message
    finally:
        google.registry.stop()


@in_world
def test_an_expired_access_token_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Access tokens that live 2 s (the realm refuses them after that; registry tokens live 1 s): the next image,
    # after the first token expired, still verifies with a new one from STS.
    google = google_world(tmp_path, monkeypatch, lifetime=2)
    google.front.access_lifetime = 1
    try:
        google.publish(tmp_path, "project/repo/app")
        google.publish(tmp_path, "project/repo/other")
        engine = engine_for(tmp_path, [cloud_store(google.world)])
        try:
            first = verify(engine, f"{AR}/project/repo/app:v1")
            time.sleep(max(max(google.sts.expiry.values()) - time.time(), 0) + 0.5)
            second = verify(engine, f"{AR}/project/repo/other:v1")
        finally:
            engine.shutdown()
        assert not first.error and first.value["verified"] is True, first
        assert not second.error and second.value["verified"] is True, second
        assert len(google.sts.issued) >= 2
    finally:
        google.registry.stop()
