"""Kritis-style authorities: GPG and PKIX simple signing, lookaside storage, and keys by file."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from provider.config import ConfigError, build_config
from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.facts import facts_schema
from tests.helpers import VECTORS, write_yaml

CI = VECTORS / "containers-image"
GPG_KEY = base64.b64encode((CI / "public-key.gpg").read_bytes()).decode()


def gpg_vector(tmp_path: Path, repository: str = "testing/manifest") -> str:
    """The containers-image GPG vector: its manifest in a layout, its signature in a file:// lookaside."""
    manifest = (CI / "dir-img-valid/manifest.json").read_bytes()
    writer = LayoutWriter(tmp_path / "layouts/docker.io", repository)
    digest = writer.add_manifest(manifest, "latest", json.loads(manifest)["mediaType"])["digest"]
    signatures = tmp_path / "sigstore" / f"{repository}@{digest.replace(':', '=')}"
    signatures.mkdir(parents=True)
    shutil.copy(CI / "dir-img-valid/signature-1", signatures / "signature-1")
    return digest


def verify(tmp_path: Path, image: str, attestation: dict[str, Any], name: str = "kritis-key") -> Any:
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": [{"name": name, "attestation": attestation}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    try:
        item = engine.verify([image], "t")[0]
    finally:
        engine.shutdown()
    if item.value is not None:
        jsonschema.validate(item.value, facts_schema())
    return item


def test_gpg_vector_verifies_from_a_file_lookaside(tmp_path: Path) -> None:
    digest = gpg_vector(tmp_path)
    item = verify(tmp_path, "testing/manifest:latest", {"publicKeyData": GPG_KEY,
                                                        "lookaside": f"file://{tmp_path}/sigstore"})
    facts = item.value
    assert facts["digest"] == digest and facts["verified"] is True and facts["authorities"] == ["kritis-key"]
    (signature,) = facts["signatures"]
    assert signature["format"] == "simplesigning"
    assert signature["signer"]["keyId"] == "08CD26E446E2E95249B7A405E932F44B23E8DD43"


def test_gpg_signature_by_another_key_and_for_another_repository(tmp_path: Path) -> None:
    gpg_vector(tmp_path, "testing/other")
    other = verify(tmp_path, "testing/other:latest", {"publicKeyData": GPG_KEY,
                                                      "lookaside": f"file://{tmp_path}/sigstore"})
    assert other.value["verified"] is False
    assert other.value["signatures"][0]["reason"] == ("signature is for repository 'testing/manifest:latest', "
                                                      "not docker.io/testing/other")
    kritis_key = (VECTORS / "kritis/test-attestor-1.yaml").read_text()
    stranger = kritis_key.split("asciiArmoredPgpPublicKey: ")[1].split()[0]
    wrong = verify(tmp_path, "testing/other:latest", {"publicKeyData": stranger,
                                                      "lookaside": f"file://{tmp_path}/sigstore"})
    assert wrong.value["signatures"][0]["reason"] == "signed by a key not trusted by authority kritis-key"


def test_gpg_signature_for_another_digest(tmp_path: Path) -> None:
    gpg_vector(tmp_path)
    writer = LayoutWriter(tmp_path / "layouts/docker.io", "testing/manifest")
    moved = writer.add_image("latest", b"a different build")["digest"]
    signatures = tmp_path / "sigstore" / f"testing/manifest@{moved.replace(':', '=')}"
    signatures.mkdir(parents=True)
    shutil.copy(CI / "dir-img-valid/signature-1", signatures / "signature-1")
    item = verify(tmp_path, "testing/manifest:latest", {"publicKeyData": GPG_KEY,
                                                        "lookaside": f"file://{tmp_path}/sigstore"})
    assert item.value["verified"] is False
    assert item.value["signatures"][0]["reason"].startswith("signature is for sha256:20bf21ed")


def test_pkix_signature_in_sigstore_json_lookaside_form(tmp_path: Path) -> None:
    manifest = (CI / "dir-img-cosign-valid/manifest.json").read_bytes()
    writer = LayoutWriter(tmp_path / "layouts/192.168.64.2:5000", "cosign-signed-single-sample")
    digest = writer.add_manifest(manifest, "v1", json.loads(manifest)["mediaType"])["digest"]
    signatures = tmp_path / "sigstore" / f"cosign-signed-single-sample@{digest.replace(':', '=')}"
    signatures.mkdir(parents=True)
    shutil.copy(CI / "dir-img-cosign-valid/signature-1", signatures / "signature-1")
    pem = base64.b64encode((CI / "cosign.pub").read_bytes()).decode()
    item = verify(tmp_path, "192.168.64.2:5000/cosign-signed-single-sample:v1",
                  {"publicKeyData": pem, "publicKeyId": "team-key", "lookaside": f"file://{tmp_path}/sigstore"})
    assert item.value["verified"] is True, item.value["signatures"]
    assert item.value["signatures"][0]["signer"]["keyId"] == "team-key"


def test_pkix_key_verifies_cosign_attached_signatures(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer = LayoutWriter(tmp_path / "layouts/registry.example", "team/app")
    digest = writer.add_image("v1", b"pkix")["digest"]
    cosign.sign_image(writer, digest, "registry.example/team/app", key)
    facts = verify(tmp_path, "registry.example/team/app:v1", {"publicKeys": [
        {"keyType": "PKIX", "keyId": "kms-key", "pkixPublicKey": {"publicKeyPem": cosign.public_pem(key).decode(),
                                                                 "signatureAlgorithm": "ECDSA_P256_SHA256"}}]}).value
    assert facts["verified"] is True and facts["signatures"][0]["format"] == "simplesigning"
    other = verify(tmp_path, "registry.example/team/app:v1",
                   {"publicKeyData": base64.b64encode(cosign.public_pem(ec.generate_private_key(
                       ec.SECP256R1()))).decode()}).value
    assert other["verified"] is False


def test_corrupt_armour_is_a_config_error(tmp_path: Path) -> None:
    armour = (CI / "public-key.gpg").read_bytes()
    corrupt = armour.replace(b"mQ", b"mX", 1) if armour.startswith(b"-----") else b"-----BEGIN PGP PUBLIC KEY " \
        b"BLOCK-----\n\nnot base64 at all!!\n-----END PGP PUBLIC KEY BLOCK-----\n"
    data = {"authorities": [{"name": "k", "attestation": {"publicKeyData": base64.b64encode(corrupt).decode()}}]}
    with pytest.raises(ConfigError, match="corrupt OpenPGP public key") as caught:
        build_config(data, write_yaml(tmp_path / "c.yaml", data))
    assert caught.value.field_path == "authorities[0].attestation.publicKeyData"


def test_unreachable_lookaside_is_an_error_not_a_verdict(tmp_path: Path) -> None:
    gpg_vector(tmp_path)
    item = verify(tmp_path, "testing/manifest:latest", {"publicKeyData": GPG_KEY,
                                                        "lookaside": "http://127.0.0.1:9/sigstore/"})
    assert item.value is None
    assert item.error.startswith("REGISTRY_UNAVAILABLE: cannot reach lookaside 127.0.0.1:9")


def test_gpg_key_by_file_reference_armoured_or_binary(tmp_path: Path) -> None:
    """kritis v1beta1 `publicKeys: [{file: …}]`: an armoured key, then a binary keyring holding it and another."""
    import pysequoia

    digest = gpg_vector(tmp_path)
    armoured = (CI / "public-key.gpg").read_bytes()
    (tmp_path / "key.asc").write_bytes(armoured)
    lookaside = f"file://{tmp_path}/sigstore"
    item = verify(tmp_path, "testing/manifest:latest", {"publicKeys": [{"file": "key.asc"}], "lookaside": lookaside})
    assert item.value["verified"] is True and item.value["digest"] == digest
    attestor = (VECTORS / "kritis/test-attestor-1.yaml").read_text().split("asciiArmoredPgpPublicKey: ")[1].split()[0]
    other = pysequoia.Cert.from_bytes(base64.b64decode(attestor))  # kritis' test attestor: a different key
    (tmp_path / "keyring.gpg").write_bytes(bytes(pysequoia.Cert.from_bytes(armoured)) + bytes(other))
    data = {"authorities": [{"name": "ring", "attestation": {"publicKeys": [{"file": "keyring.gpg"}],
                                                              "lookaside": lookaside}}]}
    keys = build_config(data, write_yaml(tmp_path / "ring.yaml", data)).authorities[0].attestation.keys
    assert [k.key_id for k in keys] == ["08CD26E446E2E95249B7A405E932F44B23E8DD43", other.fingerprint.upper()]
    assert all(k.kind == "pgp" for k in keys)
    item = verify(tmp_path, "testing/manifest:latest", {"publicKeys": [{"file": "keyring.gpg"}],
                                                        "lookaside": lookaside})
    assert item.value["verified"] is True
    # Only the other key in the keyring: the signature is refused.
    (tmp_path / "other.gpg").write_bytes(bytes(other))
    item = verify(tmp_path, "testing/manifest:latest", {"publicKeys": [{"file": "other.gpg"}], "lookaside": lookaside})
    assert item.value["verified"] is False


def test_key_files_that_are_not_keys_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "junk.gpg").write_bytes(b"\x99 not a key")
    data = {"authorities": [{"name": "k", "attestation": {"publicKeys": [{"file": "junk.gpg"}], "lookaside": "file:///x"}}]}
    with pytest.raises(ConfigError, match=r"junk\.gpg: not an OpenPGP key or keyring") as caught:
        build_config(data, write_yaml(tmp_path / "c.yaml", data))
    assert caught.value.field_path == "authorities[0].attestation.publicKeys[0].file"


def test_gpg_authority_without_a_lookaside_is_a_config_error(tmp_path: Path) -> None:
    """A GPG-only authority with nowhere to read signatures from would verify nothing."""
    data = {"authorities": [{"name": "k", "attestation": {"publicKeyData": GPG_KEY}}]}
    with pytest.raises(ConfigError, match="is required for PGP keys: GPG simple signatures are only read from a "
                                          "lookaside") as caught:
        build_config(data, write_yaml(tmp_path / "c.yaml", data))
    assert caught.value.field_path == "authorities[0].attestation.lookaside"
