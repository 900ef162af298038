"""The registry store against a real docker-registry on loopback (plain HTTP, and TLS + htpasswd)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from provider.config import build_config
from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.facts import facts_schema
from provider.metrics import Metrics
from provider.reference import parse_reference
from provider.stores.registry import RegistryStore
from tests.helpers import ProviderPKI, write_yaml
from tests.registry import RegistryServer

KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def secure_registry(tmp_path: Path, pki: ProviderPKI) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path / "secure-registry", pki=pki, users={"ci": "s3cret"})
    yield server
    server.stop()


def engine_for(tmp_path: Path, store: dict[str, Any], authorities: list[dict[str, Any]] | None = None) -> Engine:
    (tmp_path / "cosign.pub").write_bytes(cosign.public_pem(KEY))
    # The test registries listen on loopback, which a wildcard store reaches only when allowNetworks says so.
    store = {"type": "registry", "match": ["*"], "allowNetworks": ["127.0.0.1/32"], **store}
    data = {"server": {"requestDeadline": "5s"}, "stores": [store],
            "authorities": authorities if authorities is not None else
            [{"name": "release", "cosign": {"publicKeys": ["cosign.pub"]}}]}
    return Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))


def publish(tmp_path: Path, server: RegistryServer, repository: str, sign: bool = True) -> dict[str, str]:
    """A tagged image, a multi-arch index and (optionally) a cosign signature, pushed to `server`."""
    writer = LayoutWriter(tmp_path / "staging" / repository.replace("/", "_"), "repo")
    digests = {"image": writer.add_image("v1", repository.encode())["digest"],
               "index": writer.add_index("multi", {"linux/amd64": b"amd", "linux/arm64": b"arm"})["digest"]}
    if sign:
        cosign.sign_image(writer, digests["image"], f"{server.host}/{repository}", KEY)
    server.push_layout(writer.path, repository)
    return digests


def verify_one(engine: Engine, key: str) -> Any:
    try:
        return engine.verify([key], "t")[0]
    finally:
        engine.shutdown()


def test_tags_digests_indexes_and_cosign_tags(tmp_path: Path, registry: RegistryServer) -> None:
    digests = publish(tmp_path, registry, "team/app")
    engine = engine_for(tmp_path, {"insecure": [registry.host]})
    by_tag, by_digest, index = engine.verify([f"{registry.host}/team/app:v1",
                                              f"{registry.host}/team/app@{digests['image']}",
                                              f"{registry.host}/team/app:multi"], "t")
    for item in (by_tag, by_digest, index):
        assert not item.error, item.error
        jsonschema.validate(item.value, facts_schema())
    assert by_tag.value["digest"] == digests["image"] and by_tag.value["verified"] is True
    assert by_digest.value["verified"] is True and by_digest.value["authorities"] == ["release"]
    assert index.value["digest"] == digests["index"] and index.value["verified"] is False
    assert [p["architecture"] for p in index.value["platforms"]] == ["amd64", "arm64"]
    resolved = engine.resolve([f"{registry.host}/team/app:v1"], "t")[0]
    assert resolved.value == f"{registry.host}/team/app:v1@{digests['image']}"
    engine.shutdown()


def test_missing_tag_and_repository_are_not_found(tmp_path: Path, registry: RegistryServer) -> None:
    publish(tmp_path, registry, "team/app", sign=False)
    engine = engine_for(tmp_path, {"insecure": [registry.host]})
    missing_tag, missing_repo = engine.verify([f"{registry.host}/team/app:v9", f"{registry.host}/nope:v1"], "t")
    assert missing_tag.error.startswith("NOT_FOUND: ") and "MANIFEST_UNKNOWN" in missing_tag.error
    assert missing_repo.error.startswith("NOT_FOUND: ")
    engine.shutdown()


def test_unsigned_image_is_unverified_not_an_error(tmp_path: Path, registry: RegistryServer) -> None:
    digests = publish(tmp_path, registry, "team/unsigned", sign=False)
    item = verify_one(engine_for(tmp_path, {"insecure": [registry.host]}), f"{registry.host}/team/unsigned:v1")
    assert item.value["verified"] is False
    assert item.value["reason"] == f"no signatures found for {digests['image']}"


def test_referrers_tag_fallback_finds_artifacts(tmp_path: Path, registry: RegistryServer) -> None:
    writer = LayoutWriter(tmp_path / "staging", "repo")
    image = writer.add_image("v1", b"with referrer")
    config = writer.add_blob(b"{}", "application/vnd.oci.empty.v1+json")
    layer = writer.add_blob(b"signature bytes", "application/jose+json")
    artifact = writer.add_manifest({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                    "artifactType": "application/vnd.cncf.notary.signature", "config": config,
                                    "layers": [layer], "subject": image})
    writer.add_manifest({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": [artifact]}, image["digest"].replace(":", "-"),
                        "application/vnd.oci.image.index.v1+json")
    registry.push_layout(writer.path, "team/referred")
    engine = engine_for(tmp_path, {"insecure": [registry.host]})
    store = engine.router.select(parse_reference(f"{registry.host}/team/referred:v1"))
    assert isinstance(store, RegistryStore)
    resolved = store.resolve(parse_reference(f"{registry.host}/team/referred:v1"), time.monotonic() + 5)
    (found,) = store.discover(resolved, time.monotonic() + 5)
    assert found.source == "referrers" and found.descriptor.digest == artifact["digest"]
    assert found.descriptor.artifact_type == "application/vnd.cncf.notary.signature"
    fetched = store.fetch_manifest(resolved.reference, found.descriptor, time.monotonic() + 5)
    assert fetched["subject"]["digest"] == image["digest"]
    facts = engine.verify([f"{registry.host}/team/referred:v1"], "t")[0].value
    assert facts["reason"] == "1 signature artifact(s) found, none in a format a covering authority trusts"
    engine.shutdown()


def test_tls_registry_with_basic_auth(tmp_path: Path, secure_registry: RegistryServer, pki: ProviderPKI) -> None:
    digests = publish(tmp_path, secure_registry, "team/app")
    key = f"{secure_registry.host}/team/app:v1"
    ca = pki.path("ca.crt")
    static = verify_one(engine_for(tmp_path, {"ca": ca, "auth": {"static": {
        secure_registry.host: {"username": "ci", "password": "s3cret"}}}}), key)
    assert static.value["digest"] == digests["image"] and static.value["verified"] is True

    docker_config = tmp_path / "dockerconfig.json"
    docker_config.write_text(json.dumps({"auths": {secure_registry.host: {
        "auth": base64.b64encode(b"ci:s3cret").decode()}}}))
    from_file = verify_one(engine_for(tmp_path, {"ca": ca, "auth": {"dockerConfig": str(docker_config)}}), key)
    assert from_file.value["verified"] is True

    wrong = verify_one(engine_for(tmp_path, {"ca": ca, "auth": {"static": {
        secure_registry.host: {"username": "ci", "password": "wrong"}}}}), key)
    assert wrong.error.startswith("UNAUTHORIZED: ") and "401" in wrong.error
    anonymous = verify_one(engine_for(tmp_path, {"ca": ca}), key)
    assert anonymous.error.startswith("UNAUTHORIZED: ")
    untrusted = verify_one(engine_for(tmp_path, {}), key)  # no CA configured: the registry cert is not trusted
    assert untrusted.error.startswith("REGISTRY_UNAVAILABLE: TLS error")


def test_stopped_registry_is_unavailable(tmp_path: Path, registry: RegistryServer) -> None:
    publish(tmp_path, registry, "team/app", sign=False)
    registry.stop()
    metrics = Metrics()
    engine = engine_for(tmp_path, {"insecure": [registry.host]})
    engine.metrics = metrics
    item = verify_one(engine, f"{registry.host}/team/app:v1")
    assert item.error.startswith("REGISTRY_UNAVAILABLE: cannot reach registry")


def test_tag_cache_revalidates_with_head_and_sees_a_moved_tag(tmp_path: Path, registry: RegistryServer) -> None:
    publish(tmp_path, registry, "team/app", sign=False)
    engine = engine_for(tmp_path, {"insecure": [registry.host]})
    store = engine.router.select(parse_reference(f"{registry.host}/team/app:v1"))
    ref = parse_reference(f"{registry.host}/team/app:v1")
    first = store.resolve(ref, time.monotonic() + 5)
    assert store.resolve(ref, time.monotonic() + 5).digest == first.digest  # HEAD said: unchanged
    writer = LayoutWriter(tmp_path / "staging2", "repo")
    writer.add_image("v1", b"a new build")
    registry.push_layout(writer.path, "team/app")
    moved = store.resolve(ref, time.monotonic() + 5)
    assert moved.digest != first.digest
    session = registry.session()
    assert moved.digest == "sha256:" + hashlib.sha256(session.get(
        f"{registry.url}/v2/team/app/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).content).hexdigest()
    engine.shutdown()


def test_notation_signature_found_through_the_referrers_tag(tmp_path: Path, registry: RegistryServer) -> None:
    from provider.devkit import notation

    writer = LayoutWriter(tmp_path / "staging", "repo")
    image = writer.add_image("v1", b"notation-signed")
    identity = notation.identity_with_intermediate("rsa-2048")
    for kind in ("jws", "cose"):
        signature = notation.attach(writer, image, notation.sign(notation.target_of(image), identity, kind), kind)
        signature["artifactType"] = notation.NOTARY_ARTIFACT_TYPE
    referrers = [dict(m) for m in json.loads((writer.path / "index.json").read_text())["manifests"]
                 if m.get("artifactType") == notation.NOTARY_ARTIFACT_TYPE]
    writer.add_manifest({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": referrers}, image["digest"].replace(":", "-"),
                        "application/vnd.oci.image.index.v1+json")
    registry.push_layout(writer.path, "team/notation")
    (tmp_path / "acme-root.pem").write_bytes(identity.root_pem)
    policy = {"version": "1.0", "trustPolicies": [{"name": "acme", "registryScopes": [f"{registry.host}/team/notation"],
                                                   "signatureVerification": {"level": "strict"},
                                                   "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}
    engine = engine_for(tmp_path, {"insecure": [registry.host]}, [{"name": "acme", "notation": {
        "trustStores": {"ca:acme": [str(tmp_path / "acme-root.pem")]}, "trustPolicy": {"inline": policy}}}])
    facts = verify_one(engine, f"{registry.host}/team/notation:v1").value
    assert facts["verified"] is True and facts["authorities"] == ["acme"]
    assert sorted(s["format"] for s in facts["signatures"]) == ["notation", "notation"]
