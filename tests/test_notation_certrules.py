"""notation-core-go's certificate requirements on the signing chain, with signatures made by the devkit.

Each rule follows notation-core-go x509/codesigning_cert_validations.go (and x509/helper.go,
internal/algorithm/algorithm.go); notation-go runs them inside the integrity validation (verifier/verifier.go
`verifyIntegrity`, through the envelope's `Verify`), so they fail the signature at every level, `audit` too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from provider.devkit import notation
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.verifiers.base import SignatureResult
from provider.verifiers.notation.verifier import NotationVerifier, SignatureBlob
from tests.test_notation import IMAGE, authority, policy_with

# The finding: a trusted identity naming only the organisation, so any certificate its CA issued matches.
ORGANISATION = "x509.subject: C=US, ST=WA, O=Acme"
LEVELS = ["strict", "audit"]


def check(tmp_path: Path, identity: notation.SigningIdentity, envelope: bytes, level: str = "strict",
          kind: str = "jws", trusted_root: bytes = b"") -> SignatureResult:
    (tmp_path / "root.pem").write_bytes(trusted_root or identity.root_pem)
    auth = authority(tmp_path, {"ca:acme": [tmp_path / "root.pem"]}, policy_with(["ca:acme"], level, [ORGANISATION]))
    image = ResolvedImage(parse_reference(f"registry.example/app@{IMAGE['digest']}"), IMAGE["digest"],
                          IMAGE["mediaType"], IMAGE["size"], b"")
    media = "application/jose+json" if kind == "jws" else "application/cose"
    return NotationVerifier().check(image, SignatureBlob("sha256:" + "0" * 64, media, envelope), auth.name,
                                    auth.notation)


def signed_by(leaf: notation.CertSpec | None = None, intermediate: notation.CertSpec | None = None,
              kind: str = "ec-256") -> tuple[notation.SigningIdentity, bytes]:
    identity = notation.identity_with_intermediate(kind, leaf, intermediate=intermediate)
    return identity, notation.sign(IMAGE, identity)


def leaf(**changes: Any) -> notation.CertSpec:
    return notation.CertSpec("Acme Release Signer", **changes)


def ca(**changes: Any) -> notation.CertSpec:
    return notation.CertSpec("Acme Signing CA", ca=True, **changes)


def assert_integrity_failure(result: SignatureResult, reason: str) -> None:
    assert result.verified is False
    assert result.checks == {"integrity": "failed"}, result.checks
    assert result.reason.startswith("the signature's certificate chain is invalid: ") and reason in result.reason, \
        result.reason


# validateCodeSigningExtendedKeyUsage: ServerAuth, ClientAuth, EmailProtection, Timestamping and OCSPSigning are
# excluded; any other EKU (codeSigning, anyExtendedKeyUsage, private ones) or none at all is fine.
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("ekus", "excluded"), [
    ((ExtendedKeyUsageOID.CLIENT_AUTH,), "ClientAuth"),  # an mTLS client certificate from the organisation's CA
    ((ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.CLIENT_AUTH), "ClientAuth"),
    ((ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH), "ServerAuth, ClientAuth"),
    ((ExtendedKeyUsageOID.EMAIL_PROTECTION,), "EmailProtection"),
    ((ExtendedKeyUsageOID.TIME_STAMPING,), "Timestamping"),
    ((ExtendedKeyUsageOID.OCSP_SIGNING,), "OCSPSigning"),
])
def test_validate_code_signing_extended_key_usage_refuses(tmp_path: Path, level: str, ekus: tuple,
                                                          excluded: str) -> None:
    identity, envelope = signed_by(leaf(ekus=ekus))
    assert_integrity_failure(check(tmp_path, identity, envelope, level),
                             f"the extended key usage must not contain {excluded}")


@pytest.mark.parametrize("ekus", [(ExtendedKeyUsageOID.CODE_SIGNING,), (),
                                  (ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,),
                                  (ObjectIdentifier("1.3.6.1.4.1.311.10.3.13"),)])
def test_validate_code_signing_extended_key_usage_accepts(tmp_path: Path, ekus: tuple) -> None:
    identity, envelope = signed_by(leaf(ekus=ekus))
    result = check(tmp_path, identity, envelope)
    assert result.verified is True, result.reason


# validateLeafKeyUsage: digitalSignature is required; only nonRepudiation (contentCommitment) may join it.
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("bits", "reason"), [
    (("digital_signature", "key_encipherment"), "digitalSignature only, but also allows KeyEncipherment"),
    (("digital_signature", "data_encipherment"), "also allows DataEncipherment"),
    (("digital_signature", "key_agreement"), "also allows KeyAgreement"),
    (("digital_signature", "key_agreement", "encipher_only"), "also allows KeyAgreement, EncipherOnly"),
    (("digital_signature", "key_cert_sign"), "also allows CertSign"),
    (("digital_signature", "crl_sign"), "also allows CRLSign"),
    (("content_commitment",), "the key usage must include digitalSignature"),
])
def test_validate_leaf_key_usage_refuses(tmp_path: Path, level: str, bits: tuple[str, ...], reason: str) -> None:
    identity, envelope = signed_by(leaf(key_usage=bits))
    assert_integrity_failure(check(tmp_path, identity, envelope, level), reason)


def test_validate_leaf_key_usage_accepts_non_repudiation(tmp_path: Path) -> None:
    identity, envelope = signed_by(leaf(key_usage=("digital_signature", "content_commitment")))
    assert check(tmp_path, identity, envelope).verified is True


# validateCodeSigningKeyUsagePresent: on the leaf and on every CA, keyUsage must be present and critical.
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("where", "changes", "reason"), [
    ("leaf", {"key_usage_critical": False}, "the key usage extension must be marked critical"),
    ("leaf", {"key_usage": ()}, "the key usage extension must be present"),
    ("ca", {"key_usage_critical": False}, "the key usage extension must be marked critical"),
    ("ca", {"key_usage": ()}, "the key usage extension must be present"),
])
def test_validate_code_signing_key_usage_present(tmp_path: Path, level: str, where: str, changes: dict,
                                                 reason: str) -> None:
    identity, envelope = signed_by(leaf(**changes)) if where == "leaf" else signed_by(intermediate=ca(**changes))
    result = check(tmp_path, identity, envelope, level)
    assert_integrity_failure(result, reason)
    name = "Acme Release Signer" if where == "leaf" else "Acme Signing CA"
    assert f"certificate CN={name}," in result.reason


@pytest.mark.parametrize("level", LEVELS)
def test_validate_code_signing_ca_key_usage_needs_key_cert_sign(tmp_path: Path, level: str) -> None:
    identity, envelope = signed_by(intermediate=ca(key_usage=("digital_signature", "crl_sign")))
    assert_integrity_failure(check(tmp_path, identity, envelope, level),
                             "a CA certificate's key usage must include keyCertSign")


def test_validate_code_signing_ca_key_usage_may_have_more_bits(tmp_path: Path) -> None:
    identity, envelope = signed_by(intermediate=ca(key_usage=("key_cert_sign", "crl_sign", "digital_signature")))
    assert check(tmp_path, identity, envelope).verified is True


# internal/algorithm ExtractKeySpec (validateSignatureAlgorithm): a leaf's RSA key is 2048, 3072 or 4096 bits.
@pytest.mark.parametrize("kind", ["jws", "cose"])
def test_extract_key_spec_refuses_other_rsa_sizes(tmp_path: Path, kind: str) -> None:
    identity = notation.identity_with_intermediate("rsa-2560")
    # PS384 is the algorithm the signature check pairs with a key of up to 3072 bits: it verifies.
    envelope = notation.sign(IMAGE, identity, kind, algorithm="PS384")
    assert_integrity_failure(check(tmp_path, identity, envelope, "audit", kind),
                             "an RSA key of 2560 bits is not supported (2048, 3072 or 4096)")


# ValidateCodeSigningCertChain: the chain's structure is integrity too; under audit it is not only logged.
def test_validate_code_signing_cert_chain_structure_fails_under_audit(tmp_path: Path) -> None:
    identity = notation.identity_with_intermediate("ec-256")
    reordered = notation.SigningIdentity(identity.key, [identity.chain[0], identity.chain[2], identity.chain[1]],
                                         identity.root)
    assert_integrity_failure(check(tmp_path, reordered, notation.sign(IMAGE, reordered), "audit"),
                             "is not issued by the next certificate of the chain")
    truncated = notation.SigningIdentity(identity.key, identity.chain[:2], identity.root)
    assert_integrity_failure(check(tmp_path, truncated, notation.sign(IMAGE, truncated), "audit"),
                             "is not a self-signed root")
    # An untrusted but well-formed chain stays an authenticity matter: logged under audit.
    stranger = notation.identity_with_intermediate("ec-256")
    logged = check(tmp_path, stranger, notation.sign(IMAGE, stranger), "audit", trusted_root=identity.root_pem)
    assert logged.verified is True and logged.checks["authenticity"] == "logged"
    assert "is not in the trust store" in logged.warnings[0]
