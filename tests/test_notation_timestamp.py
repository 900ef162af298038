"""Authentic timestamps of notation signatures, with tokens from the devkit's TSA and tspclient-go's vectors.

notation-go verifier/verifier.go `verifyTimestamp` decides when a timestamp is required and checks the TSA's
chain for revocation; tspclient-go token.go (`SignedToken.Verify`, `SigningCertificate`) and notation-core-go
x509/timestamp_cert_validations.go decide which tokens count.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from provider.devkit import notation
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.verifiers.base import SignatureResult
from provider.verifiers.notation.timestamp import TimestampError, verify_timestamp
from provider.verifiers.notation.verifier import NotationVerifier, SignatureBlob
from tests.helpers import VECTORS, resigned, with_negative_serial
from tests.test_notation import IMAGE, CRLServer, authority, policy_with, reaching

NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
HOUR = datetime.timedelta(hours=1)
TSPCLIENT = VECTORS / "notation/tspclient"


@pytest.fixture
def crl_server() -> Iterator[CRLServer]:
    server = CRLServer()
    yield server
    server.httpd.shutdown()


def expired_signer() -> notation.SigningIdentity:
    """A signing certificate that expired an hour ago; only an authentic timestamp can vouch for it."""
    return notation.identity_with_intermediate("ec-256", notation.CertSpec("Acme Release Signer",
                                                                          not_before=NOW - 3 * HOUR,
                                                                          not_after=NOW - HOUR))


def check(tmp_path: Path, signer: notation.SigningIdentity, tsa: notation.SigningIdentity | None, envelope: bytes,
          kind: str = "jws", level: str = "strict", verifier: NotationVerifier | None = None,
          **verification: Any) -> SignatureResult:
    (tmp_path / "ca.pem").write_bytes(signer.root_pem)
    stores = {"ca:acme": [tmp_path / "ca.pem"]}
    if tsa is not None:
        (tmp_path / "tsa.pem").write_bytes(tsa.root_pem)
        stores["tsa:acme"] = [tmp_path / "tsa.pem"]
    auth = authority(tmp_path, stores, policy_with(sorted(stores), level, **verification))
    image = ResolvedImage(parse_reference(f"registry.example/app@{IMAGE['digest']}"), IMAGE["digest"],
                          IMAGE["mediaType"], IMAGE["size"], b"")
    media = "application/jose+json" if kind == "jws" else "application/cose"
    return (verifier or NotationVerifier()).check(image, SignatureBlob("sha256:" + "0" * 64, media, envelope),
                                                  auth.name, auth.notation)


def stamped(signer: notation.SigningIdentity, tsa: notation.SigningIdentity, at: datetime.datetime,
            kind: str = "jws", ess: bool = True) -> bytes:
    return notation.sign(IMAGE, signer, kind, signing_time=at,
                         timestamper=lambda signature: notation.timestamp_token(signature, tsa, at, ess=ess))


# --- 32.2 verifyTimestamp: a tsa store with verifyTimestamp always requires a countersignature -------------

@pytest.mark.parametrize("kind", ["jws", "cose"])
def test_verify_timestamp_requires_a_countersignature(tmp_path: Path, kind: str) -> None:
    signer, tsa = notation.identity_with_intermediate("ec-256"), notation.tsa_identity()
    missing = check(tmp_path, signer, tsa, notation.sign(IMAGE, signer, kind), kind)
    assert missing.verified is False
    assert missing.reason.startswith("no timestamp countersignature was found in the signature envelope")
    present = check(tmp_path, signer, tsa, stamped(signer, tsa, NOW - HOUR, kind), kind)
    assert present.verified is True, present.reason
    assert present.timestamp == (NOW - HOUR).isoformat().replace("+00:00", "Z")
    # afterCertExpiry: while the chain is valid, no timestamp is needed; once it expired, one is.
    assert check(tmp_path, signer, tsa, notation.sign(IMAGE, signer, kind), kind,
                 verifyTimestamp="afterCertExpiry").verified is True
    expired = expired_signer()
    late = check(tmp_path, expired, tsa, notation.sign(IMAGE, expired, kind, signing_time=NOW - 2 * HOUR), kind,
                 verifyTimestamp="afterCertExpiry")
    assert late.verified is False and late.reason.startswith("no timestamp countersignature was found")


# --- 32.3 verifyTimestamp: the TSA's chain goes through the revocation check --------------------------------

def test_verify_timestamp_checks_the_tsa_chain_for_revocation(tmp_path: Path, crl_server: CRLServer) -> None:
    """A revoked TSA's backdated timestamp must not revive an expired signing certificate under strict."""
    signer, tsa = expired_signer(), notation.tsa_identity(crl_url=crl_server.url)
    envelope = stamped(signer, tsa, NOW - 2 * HOUR)
    crl_server.publish(tsa, revoked_serials=[12345])
    good = check(tmp_path, signer, tsa, envelope, verifier=reaching(crl_server))
    assert good.verified is True, good.reason
    assert good.checks["authenticTimestamp"] == "passed"
    crl_server.publish(tsa, revoked_serials=[tsa.chain[0].serial_number])
    revoked = check(tmp_path, signer, tsa, envelope, verifier=reaching(crl_server))
    assert revoked.verified is False
    assert revoked.reason.startswith("the timestamp authority's certificate chain failed the revocation check: "
                                     "certificate CN=Acme Timestamping Authority,O=Acme,L=Seattle,ST=WA,C=US was "
                                     "revoked at")
    # notation-go checks the TSA chain inside authenticTimestamp: skipping the signing chain's revocation check
    # does not skip it; logging authenticTimestamp logs it.
    skipped = check(tmp_path, signer, tsa, envelope, verifier=reaching(crl_server), override={"revocation": "skip"})
    assert skipped.verified is False and "was revoked at" in skipped.reason
    logged = check(tmp_path, signer, tsa, envelope, level="permissive", verifier=reaching(crl_server))
    assert logged.verified is True and "was revoked at" in logged.warnings[0]


def test_tsa_revocation_goes_through_the_egress_policy(tmp_path: Path, crl_server: CRLServer) -> None:
    signer, tsa = expired_signer(), notation.tsa_identity(crl_url=crl_server.url)
    crl_server.publish(tsa, revoked_serials=[])
    refused = check(tmp_path, signer, tsa, stamped(signer, tsa, NOW - 2 * HOUR))  # the default egress policy
    assert refused.verified is False
    # The refusal reaches the facts as a category, never the policy's or the remote's words (issue 26.2).
    assert refused.reason.endswith(f"CRL {crl_server.url}: revocation status unavailable")
    assert crl_server.hits == 0  # nothing was sent to the loopback address


# --- 32.4 tspclient-go SigningCertificate and notation-core-go validateTimestampingExtendedKeyUsage ------------

@pytest.mark.parametrize("kind", ["jws", "cose"])
def test_signing_certificate_v2_is_required(tmp_path: Path, kind: str) -> None:
    signer, tsa = expired_signer(), notation.tsa_identity()
    result = check(tmp_path, signer, tsa, stamped(signer, tsa, NOW - 2 * HOUR, kind, ess=False), kind)
    assert result.verified is False
    assert result.reason == ("timestamp countersignature rejected: the timestamp token has no ESS "
                             "signingCertificateV2 attribute binding the TSA certificate")


@pytest.mark.parametrize("kind", ["jws", "cose"])
def test_validate_timestamping_extended_key_usage_must_be_critical(tmp_path: Path, kind: str) -> None:
    signer = expired_signer()
    tsa = notation.tsa_identity(notation.CertSpec("Acme Timestamping Authority",
                                                  ekus=(ExtendedKeyUsageOID.TIME_STAMPING,), eku_critical=False))
    result = check(tmp_path, signer, tsa, stamped(signer, tsa, NOW - 2 * HOUR, kind), kind)
    assert result.verified is False
    assert result.reason == ("timestamp countersignature rejected: the timestamp authority is not trusted: "
                             "timestamping certificate CN=Acme Timestamping Authority,O=Acme,L=Seattle,ST=WA,C=US "
                             "must have its extended key usage extension marked critical")


@pytest.mark.parametrize(("changes", "reason"), [
    ({"ekus": (ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING), "eku_critical": True},
     "must have exactly the timeStamping extended key usage"),
    ({"ekus": (ExtendedKeyUsageOID.TIME_STAMPING,), "eku_critical": True,
      "key_usage": ("digital_signature", "key_encipherment")}, "also allows KeyEncipherment"),
])
def test_validate_timestamping_cert_chain(tmp_path: Path, changes: dict, reason: str) -> None:
    """notation-core-go ValidateTimestampingCertChain on the path the token's certificates build."""
    signer = expired_signer()
    tsa = notation.tsa_identity(notation.CertSpec("Acme Timestamping Authority", **changes))
    result = check(tmp_path, signer, tsa, stamped(signer, tsa, NOW - 2 * HOUR))
    assert result.verified is False and reason in result.reason, result.reason


@pytest.mark.parametrize(("ekus", "verified"), [
    ((ExtendedKeyUsageOID.CODE_SIGNING,), False), ((ExtendedKeyUsageOID.TIME_STAMPING,), True),
    ((ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,), True),
])
def test_tsa_intermediate_eku_must_allow_time_stamping(tmp_path: Path, ekus: tuple, verified: bool) -> None:
    """tspclient-go SignedToken.Verify asks Go's x509 Verify for timeStamping: an intermediate whose EKU
    extension allows only other usages cannot issue a TSA certificate."""
    signer = expired_signer()
    tsa = notation.tsa_identity(intermediate=notation.CertSpec("Acme Timestamping CA", ca=True, extensions=(
        (x509.ExtendedKeyUsage(list(ekus)), False),)))
    result = check(tmp_path, signer, tsa, stamped(signer, tsa, NOW - 2 * HOUR))
    assert result.verified is verified, result.reason
    if not verified:
        assert result.reason == ("timestamp countersignature rejected: the timestamp authority is not trusted: "
                                 "certificate CN=Acme Timestamping CA,O=Acme,L=Seattle,ST=WA,C=US: its extended key "
                                 "usage does not allow timeStamping, which its chain is used for")


GLOBALSIGN_R3 = x509.load_pem_x509_certificates((TSPCLIENT / "GlobalSignRootCA.crt").read_bytes())


# tspclient-go token_test.go (TestVerify, TestGetSigningCertificate, TestValidateInfo, TestParseSignedToken,
# TestInfo): every token is over the bytes "notation"; the reason is the first rule it breaks in tspclient-go's
# order, where upstream names that rule.
@pytest.mark.parametrize(("token", "reason"), [
    ("TimeStampToken.p7s", ""),  # TestVerify
    ("TimeStampTokenWithValidAndInvalidSignerInfos.p7s", ""),  # TestVerify: the first SignerInfo that verifies
    ("TimeStampTokenWithoutCertificate.p7s", "does not include its signer's certificate"),  # TestVerify
    ("TimeStampTokenWithInvalidSignature.p7s", "signature does not verify"),  # TestVerify
    ("TimeStampTokenWithoutSigningCertificate.p7s", "no ESS signingCertificateV2 attribute"),  # TestGetSigning...
    ("TimeStampTokenWithSigningCertificateV2NoCert.p7s", "signingCertificateV2 attribute names no certificate"),
    ("TimeStampTokenWithSHA1CertHash.p7s", "certificate hash uses sha1, which is not supported"),
    ("TimeStampTokenWithMismatchCertHash.p7s", "does not match the hash in its signingCertificateV2 attribute"),
    ("TimeStampTokenWithInvalidSigningCertificateV2.p7s", "does not parse"),
    # Upstream: "issuer name is missing in IssuerSerial"; asn1crypto refuses the wrong CHOICE tag while parsing.
    ("TimeStampTokenWithWrongSigningCertificateV2IssuerChoiceTag.p7s", "does not parse"),
    # Upstream's SigningCertificate accepts it (no IssuerSerial: the sid decides); the edited token's signature
    # then fails, the next step.
    ("TimeStampTokenWithoutSigningCertificateV2IssuerSerial.p7s", "signature does not verify"),
    ("TimeStampTokenWithTSTInfoVersion2.p7s", "TSTInfo has version v2 (only v1 is supported)"),  # TestValidateInfo
    ("SHA1TimeStampToken.p7s", "message imprint uses 1.2.840.113549.1.1.5, which is not supported"),
    ("TimeStampTokenWithInvalidTSTInfo.p7s", "does not parse"),  # TestInfo
    ("TimeStampTokenWithInvalideContentType.p7s", "does not carry a TSTInfo"),  # TestParseSignedToken
])
def test_tspclient_go_tokens(token: str, reason: str) -> None:
    data = (TSPCLIENT / token).read_bytes()
    if not reason:
        stamp = verify_timestamp(data, b"notation", GLOBALSIGN_R3)
        assert stamp.time == datetime.datetime(2021, 9, 17, 14, 9, 10, tzinfo=datetime.UTC)
        assert stamp.accuracy == datetime.timedelta(seconds=1)
        assert stamp.chain[0].subject.rfc4514_string() == ("CN=Globalsign TSA for Advanced - G4,O=GlobalSign nv-sa,"
                                                            "C=BE")
        # TestValidate: another message is a mismatched imprint.
        with pytest.raises(TimestampError, match="message imprint mismatch"):
            verify_timestamp(data, b"invalid", GLOBALSIGN_R3)
        return
    with pytest.raises(TimestampError) as caught:
        verify_timestamp(data, b"notation", GLOBALSIGN_R3)
    assert reason in str(caught.value)


def test_a_tsa_certificate_whose_name_cannot_be_read_is_a_token_that_does_not_parse() -> None:
    """cryptography reads names lazily and raises TypeError for an attribute typed as a BIT STRING (only
    X500UniqueIdentifier may be one): a TSA certificate its CA issued with such a subject is the token's
    fault, a reason, not an internal error."""
    tsa = notation.tsa_identity()
    name = b"\x0c\x1bAcme Timestamping Authority"
    tsa.chain[0] = resigned(tsa.chain[0], tsa.intermediate_key, name, b"\x03" + name[1:])
    token = notation.timestamp_token(b"signature", tsa)
    with pytest.raises(TimestampError, match="the timestamp token does not parse: oid must be"):
        verify_timestamp(token, b"signature", [tsa.root])


def test_a_tsa_certificate_with_a_negative_serial_number_is_a_token_that_does_not_parse() -> None:
    """Go's crypto/x509 parser.go (since Go 1.23) refuses a negative serial number, so tspclient-go does."""
    tsa = notation.tsa_identity()
    tsa.chain[0] = with_negative_serial(tsa.chain[0], tsa.intermediate_key)
    token = notation.timestamp_token(b"signature", tsa)
    with pytest.raises(TimestampError, match=r"the timestamp token does not parse: serial number -\d+ is negative"):
        verify_timestamp(token, b"signature", [tsa.root])
