"""Attestations: legacy `.att` DSSE envelopes (own signer) and the real Sigstore bundle vector."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore.models import Bundle

from provider.config import build_config
from provider.devkit import cosign
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.verifiers.bundle import SigstoreBundleVerifier
from tests.helpers import VECTORS, write_yaml
from tests.test_cosign import REG, own_image, verify, write_key

SLSA = "https://slsa.dev/provenance/v1"
BUNDLE_SUBJECT = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"


def test_attestation_signed_with_the_authority_key(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer, digest = own_image(tmp_path)
    cosign.sign_image(writer, digest, f"{REG}/own", key)
    envelopes = [cosign.attestation_envelope(key, digest, SLSA, {"builder": {"id": "https://ci.example"}}),
                 cosign.attestation_envelope(key, "sha256:" + "f" * 64, SLSA, {}),
                 cosign.attestation_envelope(ec.generate_private_key(ec.SECP256R1()), digest, SLSA, {})]
    cosign.attach_attestations(writer, digest, envelopes)
    facts = verify(tmp_path, f"{REG}/own:v1", [{"name": "ci", "cosign": {"publicKeys": [str(write_key(tmp_path,
                                                                                                       key))]}}])
    assert facts["verified"] is True  # the image signature; attestations are reported beside it
    good, other_subject, other_key = facts["attestations"]
    assert good == {"predicateType": SLSA, "authority": "ci", "verified": True, "reason": "",
                    "artifact": good["artifact"], "predicate": {"builder": {"id": "https://ci.example"}}}
    assert other_subject["verified"] is False
    assert other_subject["reason"] == f"statement is about sha256:{'f' * 64}, not {digest}"
    assert other_key["verified"] is False and other_key["reason"] == "signed by a key not trusted by authority ci"


def test_large_predicates_are_capped(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer, digest = own_image(tmp_path)
    cosign.attach_attestations(writer, digest, [cosign.attestation_envelope(key, digest, SLSA, {"x": "y" * 5000})])
    authorities = [{"name": "ci", "cosign": {"publicKeys": [str(write_key(tmp_path, key))]}}]
    data = {"verification": {"maxPredicateBytes": 1000},
            "stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": authorities}
    from provider.engine import Engine

    engine = Engine(build_config(data, write_yaml(tmp_path / "capped.yaml", data)))
    facts = engine.verify([f"{REG}/own:v1"], "t")[0].value
    engine.shutdown()
    (attestation,) = facts["attestations"]
    assert attestation["verified"] is True
    assert attestation["predicate"]["omitted"].endswith("over the 1000-byte limit")


def bundle_check(tmp_path: Path, digest: str, identities: list[dict]) -> tuple:
    data = {"authorities": [{"name": "pgi", "cosign": {"keyless": {
        "trustedRoot": str(VECTORS / "cosign/trusted_root_pgi.json"), "identities": identities}}}]}
    (authority,) = build_config(data, write_yaml(tmp_path / "c.yaml", data)).authorities
    image = ResolvedImage(parse_reference(f"127.0.0.1:60943/repo@{digest}"), digest,
                          "application/vnd.oci.image.manifest.v1+json", 0, b"")
    bundle = Bundle.from_json((VECTORS / "cosign/oci-attestation.sigstore.json").read_bytes())
    return SigstoreBundleVerifier().check(image, "sha256:" + "0" * 64, bundle, authority)


def test_real_sigstore_bundle_attestation_verifies_offline(tmp_path: Path) -> None:
    signature, attestation = bundle_check(tmp_path, BUNDLE_SUBJECT, [
        {"subject": "cody@soyland.com", "issuer": "https://github.com/login/oauth"}])
    assert signature is None
    assert attestation.verified is True and attestation.reason == ""
    assert attestation.predicate_type == "https://cosign.sigstore.dev/attestation/v1"


@pytest.mark.parametrize(("digest", "identities", "reason"), [
    ("sha256:" + "a" * 64, [{"subject": "cody@soyland.com"}], "statement is about sha256:7321122"),
    (BUNDLE_SUBJECT, [{"subject": "alice@example.com"}],
     "certificate identity cody@soyland.com (issuer https://github.com/login/oauth) does not match"),
    (BUNDLE_SUBJECT, [{"subjectRegExp": "^cody@soyland$", "issuer": "https://github.com/login/oauth"}],
     "does not match"),
])
def test_real_sigstore_bundle_negatives(tmp_path: Path, digest: str, identities: list[dict], reason: str) -> None:
    signature, attestation = bundle_check(tmp_path, digest, identities)
    result = attestation if attestation is not None else signature
    assert result.verified is False and reason in result.reason
