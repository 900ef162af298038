"""Kritis-style authorities: GPG and PKIX simple signing, lookaside storage, and keys by file."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pysequoia
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
    assert other.value["signatures"][0]["reason"] == (
        "signature is for 'testing/manifest:latest', which does not match docker.io/testing/other:latest "
        "(signedIdentity matchRepoDigestOrExact)")
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
    authority = {"publicKeyData": pem, "publicKeyId": "team-key", "lookaside": f"file://{tmp_path}/sigstore"}
    item = verify(tmp_path, "192.168.64.2:5000/cosign-signed-single-sample:v1", authority)
    # containers-policy.json(5): cosign's payload names only the repository, which only matchRepository accepts.
    assert item.value["verified"] is False
    assert item.value["signatures"][0]["reason"].endswith("needs signedIdentity matchRepository")
    item = verify(tmp_path, "192.168.64.2:5000/cosign-signed-single-sample:v1",
                  {**authority, "signedIdentity": {"type": "matchRepository"}})
    assert item.value["verified"] is True, item.value["signatures"]
    assert item.value["signatures"][0]["signer"]["keyId"] == "team-key"


def test_pkix_key_verifies_cosign_attached_signatures(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer = LayoutWriter(tmp_path / "layouts/registry.example", "team/app")
    digest = writer.add_image("v1", b"pkix")["digest"]
    cosign.sign_image(writer, digest, "registry.example/team/app", key)
    facts = verify(tmp_path, "registry.example/team/app:v1", {"signedIdentity": {"type": "matchRepository"},
                                                              "publicKeys": [
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


PGP_SIGNER = pysequoia.Tsk.generate("Release <release@shop.example>")
PGP_STRANGER = pysequoia.Tsk.generate("Stranger <stranger@shop.example>")


def atomic(digest: str, docker_reference: str) -> bytes:
    return json.dumps({"critical": {"type": "atomic container signature",
                                    "image": {"docker-manifest-digest": digest},
                                    "identity": {"docker-reference": docker_reference}}, "optional": {}}).encode()


def shop_image(tmp_path: Path, identities: list[str]) -> str:
    """registry.example/shop/web:1.0, with one GPG signature per claimed identity in a file lookaside."""
    writer = LayoutWriter(tmp_path / "layouts/registry.example", "shop/web")
    digest = writer.add_image("1.0", b"web 1.0")["digest"]
    signatures = tmp_path / "sigstore" / f"shop/web@{digest.replace(':', '=')}"
    signatures.mkdir(parents=True)
    for index, identity in enumerate(identities, start=1):
        message = pysequoia.sign(PGP_SIGNER.signer(), atomic(digest, identity), armor=False)
        (signatures / f"signature-{index}").write_bytes(message)
    return digest


def release_authority(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    armour = str(PGP_SIGNER.extract_certificate()).encode()
    return {"publicKeyData": base64.b64encode(armour).decode(), "lookaside": f"file://{tmp_path}/sigstore",
            **settings}


IDENTITIES = ["registry.example/shop/web:1.0-debug", "registry.example/shop/web", "registry.example/shop/web:1.0"]


# containers/image signature/policy_reference_match.go, prmMatchRepoDigestOrExact (policy.json's default): a tag
# needs a signature for that tag; a signature naming only the repository never matches.
def test_matchRepoDigestOrExactReferenceValues_by_default(tmp_path: Path) -> None:
    shop_image(tmp_path, IDENTITIES)
    facts = verify(tmp_path, "registry.example/shop/web:1.0", release_authority(tmp_path)).value
    verdicts = {s["artifact"]: (s["verified"], s["reason"]) for s in facts["signatures"]}
    assert verdicts["lookaside signature-1"] == (False, "signature is for 'registry.example/shop/web:1.0-debug', "
                                                 "which does not match registry.example/shop/web:1.0 "
                                                 "(signedIdentity matchRepoDigestOrExact)")
    assert verdicts["lookaside signature-2"][0] is False
    assert verdicts["lookaside signature-3"] == (True, "")
    shutil.rmtree(tmp_path / "sigstore")
    shop_image(tmp_path / "only-other", IDENTITIES[:2])
    other = verify(tmp_path / "only-other", "registry.example/shop/web:1.0",
                   release_authority(tmp_path / "only-other")).value
    assert other["verified"] is False


# containers/image prmMatchRepoDigestOrExact, reference.Canonical case: an image named by digest accepts a
# signature for any tag of the repository (the digest is checked against the payload), never a bare repository.
def test_matchRepoDigestOrExact_digest_reference_accepts_any_tag_of_the_repository(tmp_path: Path) -> None:
    digest = shop_image(tmp_path, IDENTITIES[:2])
    facts = verify(tmp_path, f"registry.example/shop/web@{digest}", release_authority(tmp_path)).value
    assert [s["verified"] for s in facts["signatures"]] == [True, False]


# containers/image prmMatchRepository, prmExactReference, prmRemapIdentity: only when the authority says so.
@pytest.mark.parametrize(("identity", "expected"), [
    ({"type": "matchRepository"}, [True, True, True]),
    ({"type": "exactReference", "dockerReference": "registry.example/shop/web:1.0-debug"}, [True, False, False]),
    ({"type": "remapIdentity", "prefix": "registry.example/shop", "signedPrefix": "registry.example/shop"},
     [False, False, True]),
    ({"type": "matchExact"}, [False, False, True]),
])
def test_explicit_signed_identity_rules(tmp_path: Path, identity: dict[str, str], expected: list[bool]) -> None:
    shop_image(tmp_path, IDENTITIES)
    facts = verify(tmp_path, "registry.example/shop/web:1.0", release_authority(tmp_path, signedIdentity=identity))
    assert [s["verified"] for s in facts.value["signatures"]] == expected


def test_remap_identity_admits_a_mirror_signed_under_the_vendor_name(tmp_path: Path) -> None:
    writer = LayoutWriter(tmp_path / "layouts/mirror.example", "shop/web")
    digest = writer.add_image("1.0", b"mirrored")["digest"]
    signatures = tmp_path / "sigstore" / f"shop/web@{digest.replace(':', '=')}"
    signatures.mkdir(parents=True)
    (signatures / "signature-1").write_bytes(pysequoia.sign(
        PGP_SIGNER.signer(), atomic(digest, "vendor.example/shop/web:1.0"), armor=False))
    remapped = release_authority(tmp_path, signedIdentity={"type": "remapIdentity", "prefix": "mirror.example",
                                                           "signedPrefix": "vendor.example"})
    assert verify(tmp_path, "mirror.example/shop/web:1.0", remapped).value["verified"] is True
    assert verify(tmp_path, "mirror.example/shop/web:1.0", release_authority(tmp_path)).value["verified"] is False


@pytest.mark.parametrize(("identity", "field", "message"), [
    ({"type": "matchAnything"}, "signedIdentity.type", "must be one of"),
    ({"type": "exactReference"}, "signedIdentity.dockerReference", "is required"),
    ({"type": "exactReference", "dockerReference": "registry.example/shop/web"}, "signedIdentity.dockerReference",
     "names no tag or digest"),
    ({"type": "matchRepository", "prefix": "x.example"}, "signedIdentity.prefix", "is not used by type"),
    ({"type": "remapIdentity", "prefix": "mirror.example", "signedPrefix": "vendor.example/app:1"},
     "signedIdentity.signedPrefix", "is not a host"),
])
def test_signed_identity_config_errors_name_the_field(tmp_path: Path, identity: dict[str, str], field: str,
                                                      message: str) -> None:
    data = {"authorities": [{"name": "k", "attestation": release_authority(tmp_path, signedIdentity=identity)}]}
    with pytest.raises(ConfigError, match=message) as caught:
        build_config(data, write_yaml(tmp_path / "c.yaml", data))
    assert caught.value.field_path == f"authorities[0].attestation.{field}"


def _packets(message: bytes) -> list[bytes]:
    """Split a binary OpenPGP message into its packets (new-format headers, as Sequoia writes them)."""
    packets, offset = [], 0
    while offset < len(message):
        first = message[offset + 1]
        if first < 192:
            header, length = 2, first
        elif first < 224:
            header, length = 3, ((first - 192) << 8) + message[offset + 2] + 192
        else:
            assert first == 255, "partial lengths are not produced for these small messages"
            header, length = 6, int.from_bytes(message[offset + 2:offset + 6], "big")
        packets.append(message[offset:offset + header + length])
        offset += header + length
    return packets


# containers/image signature/mechanism_gpgme.go, gpgmeSigningMechanism.Verify: "Unexpected GPG signature count".
def test_gpgmeSigningMechanism_Verify_refuses_a_message_with_two_signatures(tmp_path: Path) -> None:
    digest = shop_image(tmp_path, ["registry.example/shop/web:1.0"])
    payload = atomic(digest, "registry.example/shop/web:1.0")
    ops_a, literal, sig_a = _packets(pysequoia.sign(PGP_SIGNER.signer(), payload, armor=False))
    ops_b, literal_b, sig_b = _packets(pysequoia.sign(PGP_STRANGER.signer(), payload, armor=False))
    assert literal == literal_b
    # The outer one-pass packet says another one follows (last octet 0); Sequoia then checks both signatures.
    double = ops_b[:-1] + b"\x00" + ops_a + literal + sig_a + sig_b
    checked = pysequoia.verify(bytes=double, store=lambda _ids: [PGP_SIGNER.extract_certificate()])
    assert len(checked.valid_sigs) == 1  # the trusted signature alone would verify
    signature = next((tmp_path / "sigstore").glob("shop/web@*/signature-1"))
    signature.write_bytes(double)
    facts = verify(tmp_path, "registry.example/shop/web:1.0", release_authority(tmp_path)).value
    assert facts["verified"] is False
    assert facts["signatures"][0]["reason"] == "the OpenPGP message carries 2 signatures; exactly one is accepted"


# kritis pkg/kritis/container/container.go newCritical signs the bare repository as docker-reference, and
# pkg/attestlib/authenticated_attestation.go checkAuthenticatedAttestation compares it with the image's repository:
# kritis authorities (included or imported) match the repository, not containers/image's default.
def test_kritis_authorities_accept_the_repository_only_identity_kritis_signs(tmp_path: Path) -> None:
    from provider.importers.kritis import KritisOptions, Source, convert

    digest = shop_image(tmp_path, ["registry.example/shop/web"])
    armour = base64.b64encode(str(PGP_SIGNER.extract_certificate()).encode()).decode()
    document = {"apiVersion": "kritis.grafeas.io/v1beta1", "kind": "AttestationAuthority",
                "metadata": {"name": "qa-attestor", "namespace": "default"},
                "spec": {"noteReference": "projects/p/notes/qa", "publicKeyData": armour}}
    write_yaml(tmp_path / "kritis/qa.yaml", document)
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "include": [{"path": "kritis/*.yaml", "lookaside": f"file://{tmp_path}/sigstore"}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    try:
        by_tag, by_digest = engine.verify(["registry.example/shop/web:1.0", f"registry.example/shop/web@{digest}"],
                                          "t")
    finally:
        engine.shutdown()
    assert by_tag.value["verified"] is True and by_digest.value["verified"] is True
    (imported,) = convert([Source(document, tmp_path / "kritis/qa.yaml")],
                          KritisOptions(lookaside=f"file://{tmp_path}/sigstore")).config["authorities"]
    assert imported["attestation"]["signedIdentity"] == {"type": "matchRepository"}
    assert verify(tmp_path, "registry.example/shop/web:1.0", imported["attestation"]).value["verified"] is True
    # The same key as a plain attestation authority follows containers/image's default and refuses it.
    assert verify(tmp_path, "registry.example/shop/web:1.0", release_authority(tmp_path)).value["verified"] is False
