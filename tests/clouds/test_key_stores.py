"""Trust material from cloud key stores: cosign's KMS URIs (AWS KMS through moto, Vault transit, Cloud KMS and
Key Vault keys through stand-ins) and Azure Key Vault certificates as notation trust stores (Ratify's
azurekeyvault key management provider), fetched at load over TLS inside a private network namespace, with
real signatures (moto's KMS signs; local keys whose public halves the stand-ins hold)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from provider.config import ConfigError, build_config
from provider.config.remote import REFRESH_INTERVAL, REMOTE_TRUST
from provider.devkit import cosign, notation
from provider.devkit.layout import LayoutWriter
from provider.metrics import Metrics
from tests.clouds.standins import (
    CloudKmsStandIn,
    EntraStandIn,
    GoogleStsStandIn,
    KeyVaultStandIn,
    VaultTransitStandIn,
)
from tests.clouds.test_azure import CLIENT_ID, FEDERATED_TOKEN, TENANT
from tests.clouds.test_google import AUDIENCE, SUBJECT_TOKEN
from tests.cloudworld import WorldCA, in_world, serve_wsgi
from tests.helpers import facts_for, metric_value, with_negative_serial, write_yaml
from tests.test_notation_isolation import policy

REG = "registry.example"
VAULT_TOKEN = "hvs.CAESIsigwardentesttoken"
KEY_VERSION = "projects/p/locations/global/keyRings/release/cryptoKeys/cosign/cryptoKeyVersions/"


def signed_image(tmp_path: Path, name: str, sign: Any) -> str:
    """A cosign-signed image in an OCI layout; `sign(payload)` returns the signature bytes."""
    writer = LayoutWriter(tmp_path / "layouts" / REG, name)
    digest = writer.add_image("v1", name.encode())["digest"]
    body = cosign.payload(digest, f"{REG}/{name}")
    cosign.attach(writer, digest, [cosign.signature_layer(writer, body, sign(body))])
    return f"{REG}/{name}:v1"


def kms_facts(tmp_path: Path, image: str, uri: str) -> dict[str, Any]:
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": [{"name": "release", "cosign": {"publicKeys": [{"kms": uri}]}}]}
    return facts_for(tmp_path, data, image)


def entra_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[WorldCA, EntraStandIn]:
    world = WorldCA.create(tmp_path / "ca")
    world.trust(monkeypatch)
    entra = EntraStandIn(TENANT, CLIENT_ID, FEDERATED_TOKEN)
    serve_wsgi(entra, "login.microsoftonline.com", world)
    token = tmp_path / "azure-identity-token"
    token.write_text(FEDERATED_TOKEN)
    for name, value in {"AZURE_CLIENT_ID": CLIENT_ID, "AZURE_TENANT_ID": TENANT,
                        "AZURE_FEDERATED_TOKEN_FILE": str(token),
                        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/"}.items():
        monkeypatch.setenv(name, value)
    return world, entra


@in_world
def test_awskms_key_verifies_what_kms_signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from tests.clouds.test_aws import aws_world

    world = aws_world(tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url="https://aws.emulator.example",
                       verify=world.bundle, aws_access_key_id="signer", aws_secret_access_key="signer")
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.create_alias(AliasName="alias/release", TargetKeyId=key["KeyId"])
    image = signed_image(tmp_path, "kms", lambda body: kms.sign(
        KeyId=key["KeyId"], Message=body, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")["Signature"])
    # cosign's forms (sigstore pkg/signature/kms/aws): a key ARN, and an alias with the region from AWS_REGION.
    for uri in (f"awskms:///{key['Arn']}", "awskms:///alias/release"):
        facts = kms_facts(tmp_path, image, uri)
        assert facts["verified"] is True and facts["authorities"] == ["release"], (uri, facts)
    other = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert kms_facts(tmp_path, image, f"awskms:///{other['Arn']}")["verified"] is False


@in_world
def test_hashivault_transit_key_and_its_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = WorldCA.create(tmp_path / "ca")
    world.trust(monkeypatch)
    old, new = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    vault = VaultTransitStandIn(VAULT_TOKEN, {"release": [cosign.public_pem(old)]})
    serve_wsgi(vault, "vault.internal.example", world)
    monkeypatch.setenv("VAULT_ADDR", "https://vault.internal.example")
    monkeypatch.setenv("VAULT_TOKEN", VAULT_TOKEN)
    before = signed_image(tmp_path, "before", lambda body: cosign.sign(old, body))
    after = signed_image(tmp_path, "after", lambda body: cosign.sign(new, body))
    assert kms_facts(tmp_path, before, "hashivault://release")["verified"] is True
    assert kms_facts(tmp_path, after, "hashivault://release")["verified"] is False
    # The key rotates in Vault: the next refresh swaps the material and moves the generation on (which the
    # config watcher reloads on); until then the loaded material is unchanged.
    vault.keys["release"].append(cosign.public_pem(new))
    metrics, generation = Metrics(), REMOTE_TRUST.generation
    assert REMOTE_TRUST.refresh_if_due(metrics, now=time.monotonic()) is False  # not due yet
    assert REMOTE_TRUST.refresh_if_due(metrics, now=time.monotonic() + REFRESH_INTERVAL) is True
    assert REMOTE_TRUST.generation == generation + 1
    assert kms_facts(tmp_path, after, "hashivault://release")["verified"] is True
    # A refresh that fails (the token was revoked) keeps the last good material, and is counted.
    vault.token = "revoked"
    assert REMOTE_TRUST.refresh_if_due(metrics, now=time.monotonic() + 3 * REFRESH_INTERVAL) is False
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    assert metric_value(text, "sigwarden_trust_refreshes_total", {"result": "failure"}) == 1
    assert "permission denied" in REMOTE_TRUST.last_error
    assert kms_facts(tmp_path, after, "hashivault://release")["verified"] is True


@in_world
def test_gcpkms_newest_enabled_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = WorldCA.create(tmp_path / "ca")
    world.trust(monkeypatch)
    sts = GoogleStsStandIn(AUDIENCE, SUBJECT_TOKEN)
    serve_wsgi(sts, "sts.googleapis.com", world)
    first, second = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    serve_wsgi(CloudKmsStandIn(sts, {KEY_VERSION + "1": cosign.public_pem(first),
                                     KEY_VERSION + "2": cosign.public_pem(second)}), "cloudkms.googleapis.com", world)
    token = tmp_path / "federated-token"
    token.write_text(SUBJECT_TOKEN)
    credentials = tmp_path / "google.json"
    credentials.write_text(json.dumps({"type": "external_account", "audience": AUDIENCE,
                                       "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                                       "token_url": "https://sts.googleapis.com/v1/token",
                                       "credential_source": {"file": str(token)}}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    image = signed_image(tmp_path, "gcp", lambda body: cosign.sign(second, body))
    key = KEY_VERSION.removesuffix("/cryptoKeyVersions/")
    assert kms_facts(tmp_path, image, f"gcpkms://{key}")["verified"] is True  # version 2, the newest
    assert kms_facts(tmp_path, image, f"gcpkms://{KEY_VERSION}1")["verified"] is False


@in_world
def test_azurekms_key_vault_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world, entra = entra_world(tmp_path, monkeypatch)
    vault = KeyVaultStandIn(entra)
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    vault.keys["release"] = {"kty": "EC", "crv": "P-256", "kid": "https://myvault.vault.azure.net/keys/release/1",
                             "x": _b64url(numbers.x.to_bytes(32, "big")), "y": _b64url(numbers.y.to_bytes(32, "big"))}
    serve_wsgi(vault, "myvault.vault.azure.net", world)
    image = signed_image(tmp_path, "azure", lambda body: cosign.sign(key, body))
    assert kms_facts(tmp_path, image, "azurekms://myvault.vault.azure.net/release")["verified"] is True


def notation_image(tmp_path: Path, identity: notation.SigningIdentity, name: str) -> str:
    writer = LayoutWriter(tmp_path / "layouts" / REG, name)
    image = writer.add_image("v1", name.encode())
    notation.attach(writer, image, notation.sign(notation.target_of(image), identity, "jws"), "jws")
    return f"{REG}/{name}:v1"


def notation_facts(tmp_path: Path, image: str, key_vault: dict[str, str], name: str = "config.yaml") -> Any:
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": [{"name": "aks-release", "notation": {
                "trustStores": {"ca:acme": [{"keyVault": key_vault}]}, "trustPolicy": {"inline": policy()}}}]}
    return facts_for(tmp_path, data, image)


@in_world
def test_key_vault_certificates_as_a_notation_trust_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # AKS Image Integrity's path: the CA certificate kept in Key Vault, read through its secret (PEM, or PKCS#12
    # as Key Vault stores imported certificates), as Ratify's azurekeyvault key management provider does.
    world, entra = entra_world(tmp_path, monkeypatch)
    vault = KeyVaultStandIn(entra)
    serve_wsgi(vault, "myvault.vault.azure.net", world)
    previous, current = (notation.identity_with_intermediate("ec-256"), notation.identity_with_intermediate("ec-256"))
    now = int(time.time())
    bundle = pkcs12.serialize_key_and_certificates(None, None, None, [previous.root],
                                                   serialization.NoEncryption())
    vault.add_certificate("release-ca", "v1", base64.b64encode(bundle).decode(), "application/x-pkcs12",
                          now - 7200, now + 86400)
    vault.add_certificate("release-ca", "v2", current.root_pem.decode(), "application/x-pem-file", now - 60,
                          now + 86400)
    old_image = notation_image(tmp_path, previous, "signed-before-rotation")
    new_image = notation_image(tmp_path, current, "signed-after-rotation")
    unpinned = {"vaultURI": "https://myvault.vault.azure.net", "certificateName": "release-ca"}
    # Unpinned: the current version, and the one it replaced while still valid (a deliberate difference from
    # Ratify, which keeps only the latest: images signed just before a rotation keep verifying).
    assert notation_facts(tmp_path, new_image, unpinned)["verified"] is True
    assert notation_facts(tmp_path, old_image, unpinned)["verified"] is True
    # Pinned to a version: that version only.
    pinned = {**unpinned, "version": "v2"}
    assert notation_facts(tmp_path, new_image, pinned)["verified"] is True
    assert notation_facts(tmp_path, old_image, pinned)["verified"] is False
    assert any(p == "/secrets/release-ca/v1" for p in vault.recorder.paths())


@in_world
def test_a_key_store_that_refuses_is_a_config_error_naming_the_field(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    world, entra = entra_world(tmp_path, monkeypatch)
    serve_wsgi(KeyVaultStandIn(entra), "myvault.vault.azure.net", world)
    data = {"authorities": [{"name": "release", "cosign": {"publicKeys": [
        {"kms": "azurekms://myvault.vault.azure.net/missing"}]}}]}
    with pytest.raises(ConfigError) as raised:
        build_config(data, write_yaml(tmp_path / "config.yaml", data))
    assert raised.value.field_path == "authorities[0].cosign.publicKeys[0].kms"
    assert "answered 404" in raised.value.problem and "\n" not in raised.value.problem


@in_world
def test_a_key_vault_certificate_go_refuses_is_a_config_error_naming_the_field(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Go's crypto/x509 (parser.go, since Go 1.23), with which Ratify and notation read the certificate, refuses a
    # negative serial number: the store would not load there, so it does not here.
    world, entra = entra_world(tmp_path, monkeypatch)
    vault = KeyVaultStandIn(entra)
    serve_wsgi(vault, "myvault.vault.azure.net", world)
    identity = notation.identity_with_intermediate("ec-256")
    root = with_negative_serial(identity.root, identity.root_key)
    now = int(time.time())
    vault.add_certificate("release-ca", "v1", root.public_bytes(serialization.Encoding.PEM).decode(),
                          "application/x-pem-file", now - 60, now + 86400)
    data = {"authorities": [{"name": "aks-release", "notation": {"trustStores": {"ca:acme": [{"keyVault": {
        "vaultURI": "https://myvault.vault.azure.net", "certificateName": "release-ca"}}]},
        "trustPolicy": {"inline": policy()}}}]}
    with pytest.raises(ConfigError) as raised:
        build_config(data, write_yaml(tmp_path / "config.yaml", data))
    assert raised.value.field_path == "authorities[0].notation.trustStores.ca:acme[0].keyVault"
    assert raised.value.problem.startswith("a certificate's serial number -"), raised.value.problem


def test_kms_uri_forms_follow_sigstore(tmp_path: Path) -> None:
    from provider.stores.cloud.keys import kms_problem

    # sigstore/sigstore pkg/signature/kms/{aws,azure,gcp,hashivault}: the URI shapes each provider accepts.
    for good in ("awskms:///arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                 "awskms://localhost:4566/1234abcd-12ab-34cd-56ef-1234567890ab", "awskms:///alias/release",
                 "awskms:///mrk-1234567890abcdef1234567890abcdef",
                 "azurekms://myvault.vault.azure.net/release", "azurekms://myvault.vault.azure.net/release/0123",
                 "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
                 "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3",
                 "hashivault://release"):
        assert kms_problem(good) == "", good
    for bad, reason in (("awskms:///not-a-key", "not a valid awskms URI"),
                        ("azurekms://evil.example/release", "must be a Key Vault host"),
                        ("gcpkms://projects/p/keyRings/r", "not a valid gcpkms URI"),
                        ("file:///cosign.pub", "is not a KMS URI")):
        assert reason in kms_problem(bad), bad
    data = {"authorities": [{"name": "release", "cosign": {"publicKeys": [{"kms": "awskms:///not-a-key"}]}}]}
    with pytest.raises(ConfigError) as raised:
        build_config(data, write_yaml(tmp_path / "config.yaml", data))
    assert raised.value.field_path == "authorities[0].cosign.publicKeys[0].kms"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_changed_remote_material_reloads_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The config watcher: no file changed, but a refresh found new material in a key store (the generation moved
    # on), so the next poll builds a new generation from the new snapshot.
    from provider.state import ProviderState

    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "cosign.pub").write_bytes(cosign.public_pem(key))
    path = write_yaml(tmp_path / "config.yaml", {"authorities": [
        {"name": "release", "cosign": {"publicKeys": ["cosign.pub"]}}]})
    state = ProviderState(path)
    first = state.load()
    assert state.reload_if_changed() is False
    monkeypatch.setattr(REMOTE_TRUST, "generation", REMOTE_TRUST.generation + 1)
    assert state.reload_if_changed() is True
    assert state.runtime is not None and state.runtime is not first
    assert state.reload_if_changed() is False
    state.runtime.engine.shutdown()
