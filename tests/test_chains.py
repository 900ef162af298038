"""Hostile X.509 chains against the library-backed path validation of notation, TSA and cosign certificates."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provider.devkit import notation
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.verifiers import certificates as cosign_chain
from provider.verifiers.base import SignatureResult
from provider.verifiers.notation import certrules
from provider.verifiers.notation import chain as notation_chain
from provider.verifiers.notation.envelope import COSE_MEDIA_TYPE, JWS_MEDIA_TYPE
from provider.verifiers.notation.verifier import NotationVerifier, SignatureBlob
from tests.helpers import VECTORS, with_negative_serial
from tests.test_notation import IMAGE, authority, policy_with

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
CODE_SIGNING = (ExtendedKeyUsageOID.CODE_SIGNING,)


@dataclass
class Spec:
    """One certificate of a test chain; the defaults make a good code-signing chain."""

    name: str
    ca: bool = False
    path_length: int | None = None
    ekus: tuple[x509.ObjectIdentifier, ...] = CODE_SIGNING
    key_cert_sign: bool | None = None
    not_before: datetime.datetime = NOW - DAY
    not_after: datetime.datetime = NOW + 30 * DAY
    sans: tuple[x509.GeneralName, ...] = ()
    extra: tuple[tuple[x509.ExtensionType, bool], ...] = ()
    subject: x509.Name | None = None
    eku_critical: bool = False
    key: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))


def build(spec: Spec, issuer: tuple[x509.Certificate, Any] | None = None) -> tuple[x509.Certificate, Any]:
    subject = spec.subject or x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                                         x509.NameAttribute(NameOID.COMMON_NAME, spec.name)])
    issuer_cert, issuer_key = issuer or (None, spec.key)
    signs_certs = spec.ca if spec.key_cert_sign is None else spec.key_cert_sign
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert else subject)
               .public_key(spec.key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(spec.not_before).not_valid_after(spec.not_after)
               .add_extension(x509.BasicConstraints(ca=spec.ca, path_length=spec.path_length), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not spec.ca, key_cert_sign=signs_certs,
                                            crl_sign=spec.ca, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(spec.key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if spec.ekus and not spec.ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(spec.ekus)), critical=spec.eku_critical)
    if spec.sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(spec.sans)), critical=False)
    for extension, critical in spec.extra:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256()), spec.key


def chain_of(*specs: Spec) -> list[x509.Certificate]:
    """Root first in `specs`; the chain comes back leaf first, as an envelope carries it."""
    issued: list[tuple[x509.Certificate, Any]] = []
    for spec in specs:
        issued.append(build(spec, issued[-1] if issued else None))
    return [cert for cert, _ in reversed(issued)]


def root() -> Spec:
    return Spec("Acme Root", ca=True)


def intermediate(**changes: Any) -> Spec:
    return Spec("Acme Signing CA", **{"ca": True, **changes})


def leaf(**changes: Any) -> Spec:
    return Spec("Acme Release Signer", **{"sans": (x509.RFC822Name("release@acme.example"),), **changes})


def notation_check(tmp_path: Any, identity: notation.SigningIdentity, envelope: str = "jws") -> SignatureResult:
    """A notation signature by `identity` over IMAGE, checked under a strict policy trusting its root."""
    (tmp_path / "root.pem").write_bytes(identity.root_pem)
    auth = authority(tmp_path, {"ca:acme": [tmp_path / "root.pem"]}, policy_with(["ca:acme"]))
    image = ResolvedImage(parse_reference(f"registry.example/app@{IMAGE['digest']}"), IMAGE["digest"],
                          IMAGE["mediaType"], IMAGE["size"], b"")
    media_type = JWS_MEDIA_TYPE if envelope == "jws" else COSE_MEDIA_TYPE
    blob = SignatureBlob("sha256:" + "0" * 64, media_type, notation.sign(IMAGE, identity, envelope))
    return NotationVerifier().check(image, blob, auth.name, auth.notation)


def notation_problem(chain: list[x509.Certificate], at: datetime.datetime | None = None,
                     purpose: str = "codeSigning") -> str:
    try:
        notation_chain.verify_chain(chain, [chain[-1]], at, purpose)
    except notation_chain.ChainError as exc:
        return str(exc)
    return ""


def cosign_problem(chain: list[x509.Certificate]) -> str:
    try:
        cosign_chain.verify_chain(chain[0], chain[1:-1], [chain[-1]], NOW)
    except cosign_chain.CertificateError as exc:
        return str(exc)
    return ""


def test_good_chains_validate() -> None:
    chain = chain_of(root(), intermediate(), leaf())
    assert notation_problem(chain) == "" and notation_problem(chain, NOW) == "" and cosign_problem(chain) == ""
    self_signed = chain_of(leaf())
    assert notation_problem(self_signed) == ""  # a self-signed signing certificate may be the whole chain


NAME_CONSTRAINTS = x509.NameConstraints(permitted_subtrees=[x509.DNSName("acme.example")], excluded_subtrees=None)
UNKNOWN_CRITICAL = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
# case: (chain maker, what notation says, what cosign says); notation's rules are notation-core-go's
# x509/codesigning_cert_validations.go (validateCodeSigningExtendedKeyUsage, validateCABasicConstraints,
# validateCodeSigningCAKeyUsage), the others RFC 5280 path validation.
HOSTILE: dict[str, tuple[Callable[[], list[x509.Certificate]], str, str]] = {
    "wrong EKU (serverAuth)": (lambda: chain_of(root(), intermediate(), leaf(ekus=(ExtendedKeyUsageOID.SERVER_AUTH,))),
                               "the extended key usage must not contain ServerAuth",
                               "extended key usage does not include codeSigning"),
    "CA:false intermediate": (lambda: chain_of(root(), intermediate(ca=False, key_cert_sign=True, ekus=()), leaf()),
                              "a CA certificate must have basic constraints with ca set to true",
                              "basicConstraints.cA must be asserted"),
    "intermediate without keyCertSign": (lambda: chain_of(root(), intermediate(key_cert_sign=False), leaf()),
                                         "a CA certificate's key usage must include keyCertSign",
                                         "key usage does not allow signing certificates"),
    "path length exceeded": (lambda: chain_of(Spec("Acme Root", ca=True, path_length=0), intermediate(), leaf()),
                             "path length", "path length"),
    "name constraints violated": (
        lambda: chain_of(root(), intermediate(extra=((NAME_CONSTRAINTS, True),)),
                         leaf(sans=(x509.DNSName("release.evil.example"),))), "name constraint", "name constraint"),
    "unknown critical extension": (lambda: chain_of(root(), intermediate(), leaf(extra=((UNKNOWN_CRITICAL, True),))),
                                   "unaccounted-for critical extensions", "unaccounted-for critical extensions"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_chains_are_rejected_by_notation_and_cosign(case: str) -> None:
    make, notation_says, cosign_says = HOSTILE[case]
    chain = make()
    assert notation_says.lower() in notation_problem(chain).lower()
    assert notation_says.lower() in notation_problem(chain, NOW).lower()
    assert cosign_says.lower() in cosign_problem(chain).lower()


def test_name_constraints_allow_names_inside_the_subtree() -> None:
    chain = chain_of(root(), intermediate(extra=((NAME_CONSTRAINTS, True),)),
                     leaf(sans=(x509.DNSName("release.acme.example"),)))
    assert notation_problem(chain) == "" and cosign_problem(chain) == ""


def test_expired_intermediate() -> None:
    chain = chain_of(root(), intermediate(not_before=NOW - 10 * DAY, not_after=NOW - 2 * DAY), leaf())
    for problem in (notation_problem(chain, NOW), cosign_problem(chain)):
        assert "expired or not yet valid: CN=Acme Signing CA,O=Acme" in problem
    # Without a verification time: no moment exists at which the intermediate and the leaf are both valid.
    assert "never valid at the same time" in notation_problem(chain)


def test_notation_chain_must_be_carried_in_order_and_complete() -> None:
    chain = chain_of(root(), intermediate(), leaf())
    stranger = chain_of(Spec("Stranger CA", ca=True))[0]
    # notation-core-go ValidateCodeSigningCertChain: each certificate issued by the next, only the last
    # self-signed, and the last one a self-signed root.
    assert "is not issued by the next certificate" in notation_problem([chain[0], chain[2], chain[1]])
    assert "is not issued by the next certificate of the chain, CN=Stranger CA" in notation_problem(
        [chain[0], stranger, chain[1], chain[2]])
    under_stranger = chain_of(Spec("Stranger CA", ca=True), leaf())
    assert "the intermediate certificate CN=Stranger CA,O=Acme is self-signed" in notation_problem(
        [*under_stranger, chain[2]])
    assert "is not a self-signed root" in notation_problem(chain[:2])


def test_timestamping_purpose_needs_exactly_the_timestamping_eku() -> None:
    code_signing = chain_of(root(), leaf())
    # notation-core-go validateTimestampingExtendedKeyUsage / validateCodeSigningExtendedKeyUsage
    assert "must have exactly the timeStamping extended key usage" in notation_problem(code_signing,
                                                                                     purpose="timeStamping")
    tsa = chain_of(root(), leaf(ekus=(ExtendedKeyUsageOID.TIME_STAMPING,), eku_critical=True))
    assert notation_problem(tsa, purpose="timeStamping") == ""
    assert "the extended key usage must not contain Timestamping" in notation_problem(tsa)
    not_critical = chain_of(root(), leaf(ekus=(ExtendedKeyUsageOID.TIME_STAMPING,)))
    assert "extended key usage extension marked critical" in notation_problem(not_critical, purpose="timeStamping")


def test_duplicate_subject_attributes_are_rejected() -> None:
    twice = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                       x509.NameAttribute(NameOID.COMMON_NAME, "Acme Release Signer"),
                       x509.NameAttribute(NameOID.COMMON_NAME, "Someone Else")])
    chain = chain_of(root(), intermediate(), leaf(subject=twice))
    assert "names the subject attribute commonName more than once" in notation_problem(chain)


def test_chain_length_and_size_are_bounded() -> None:
    long_chain = chain_of(root(), *[Spec(f"Acme CA {n}", ca=True) for n in range(10)], leaf())
    assert len(long_chain) == 12
    assert "12 certificates, over the limit of 10" in notation_problem(long_chain)
    pem = "".join(c.public_bytes(Encoding.PEM).decode() for c in long_chain)
    with pytest.raises(cosign_chain.CertificateError, match="over the limit of 10"):
        cosign_chain.load_certificates(pem)
    padding = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.2"),
                                         b"\x04\x82\xfd\xe8" + bytes(65000))
    fat = chain_of(root(), intermediate(extra=((padding, False),)), leaf(extra=((padding, False),)))
    assert "bytes, over the limit of 131072" in notation_problem(fat)


def test_oversized_rsa_modulus_is_rejected_before_use() -> None:
    # A public key needs no private half: an odd 9000-bit modulus is enough to be refused on size.
    modulus = (1 << 8999) | 0xF1
    huge = rsa.RSAPublicNumbers(65537, modulus).public_key()
    issuer = build(intermediate())
    signer = Spec("Acme Release Signer")
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Big")]))
            .issuer_name(issuer[0].subject).public_key(huge).serial_number(7)
            .not_valid_before(signer.not_before).not_valid_after(signer.not_after)
            .sign(issuer[1], hashes.SHA256()))
    assert "RSA key of 9000 bits, over the limit of 8192" in notation_problem([cert, issuer[0]])
    pem = cert.public_bytes(Encoding.PEM).decode()
    with pytest.raises(cosign_chain.CertificateError, match="RSA key of 9000 bits, over the limit of 8192"):
        cosign_chain.load_certificates(pem)


def bit_string_locality(der: bytes) -> bytes:
    """`der` with its `L=Seattle` name attributes re-typed as BIT STRINGs: it still parses, but cryptography
    raises TypeError when such a name is read (only X500UniqueIdentifier may be a BIT STRING)."""
    assert b"\x0c\x07Seattle" in der
    return der.replace(b"\x0c\x07Seattle", b"\x03\x07Seattle")


SEATTLE = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Acme"), x509.NameAttribute(NameOID.LOCALITY_NAME,
                                                                                        "Seattle")])


def test_a_name_that_cannot_be_read_is_a_certificate_that_does_not_parse() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(SEATTLE).issuer_name(SEATTLE).public_key(key.public_key())
            .serial_number(9).not_valid_before(NOW - DAY).not_valid_after(NOW + DAY).sign(key, hashes.SHA256()))
    hostile = x509.load_der_x509_certificate(bit_string_locality(cert.public_bytes(Encoding.DER)))
    with pytest.raises(cosign_chain.CertificateError, match="certificate does not parse: oid must be"):
        cosign_chain.load_certificates(hostile.public_bytes(Encoding.PEM).decode())


@pytest.mark.parametrize("envelope", ["jws", "cose"])
def test_a_name_that_cannot_be_read_in_a_notation_chain_is_an_envelope_that_does_not_parse(tmp_path: Any,
                                                                                         envelope: str) -> None:
    signer = leaf(subject=SEATTLE)
    chain = chain_of(root(), intermediate(), signer)
    chain[0] = x509.load_der_x509_certificate(bit_string_locality(chain[0].public_bytes(Encoding.DER)))
    result = notation_check(tmp_path, notation.SigningIdentity(signer.key, chain, chain[-1]), envelope)
    assert result.verified is False
    assert "certificate 0 of the envelope's chain does not parse: oid must be" in result.reason, result.reason


def test_a_negative_serial_number_is_a_certificate_that_does_not_parse() -> None:
    """Go's crypto/x509 parser.go (since Go 1.23) refuses a negative serial number, so cosign does."""
    cert, key = build(root())
    hostile = with_negative_serial(cert, key)
    with pytest.raises(cosign_chain.CertificateError, match=r"certificate does not parse: serial number -\d+ is "
                                                            r"negative \(RFC 5280 4\.1\.2\.2\)"):
        cosign_chain.load_certificates(hostile.public_bytes(Encoding.PEM).decode())


@pytest.mark.parametrize("envelope", ["jws", "cose"])
def test_a_negative_serial_number_in_a_notation_chain_is_an_envelope_that_does_not_parse(tmp_path: Any,
                                                                                       envelope: str) -> None:
    """notation-go reads the x5chain with Go's crypto/x509, which refuses a negative serial (parser.go)."""
    signer, signing_ca = leaf(), intermediate()
    chain = chain_of(root(), signing_ca, signer)
    chain[0] = with_negative_serial(chain[0], signing_ca.key)
    result = notation_check(tmp_path, notation.SigningIdentity(signer.key, chain, chain[-1]), envelope)
    assert result.verified is False
    assert "certificate 0 of the envelope's chain does not parse: serial number -" in result.reason, result.reason


def test_hostile_chain_reason_reaches_the_notation_result(tmp_path: Any) -> None:
    signer = leaf(sans=(x509.DNSName("release.evil.example"),))
    chain = chain_of(root(), intermediate(extra=((NAME_CONSTRAINTS, True),)), signer)
    result = notation_check(tmp_path, notation.SigningIdentity(signer.key, chain, chain[-1]))
    assert result.verified is False
    assert result.reason.startswith("signature is not produced by a trusted signer: certificate chain does not "
                                    "validate:")
    assert "name constraint" in result.reason and "<Certificate" not in result.reason


def _core_go_certificate(name: str) -> x509.Certificate:
    path = VECTORS / "notation/notation-core-go" / f"timestamp_{name}.crt"
    return x509.load_der_x509_certificate(path.read_bytes())


# notation-core-go x509/timestamp_cert_validations_test.go, TestValidTimestampingChain and
# TestInvalidTimestampingChain, on its DigiCert timestamping chain (testdata/timestamp_*.crt).
@pytest.mark.parametrize(("names", "reason"), [
    (("leaf", "intermediate", "root"), ""),
    (("leaf",), "CN=DigiCert Timestamp 2023,O=DigiCert\\, Inc.,C=US is alone in the chain but is not self-signed"),
    (("leaf", "intermediate"), "the chain's last certificate CN=DigiCert Trusted G4 RSA4096 SHA256 TimeStamping "
                               "CA,O=DigiCert\\, Inc.,C=US is not a self-signed root"),
    (("root", "root"), "the leaf certificate CN=DigiCert Trusted Root G4,OU=www.digicert.com,O=DigiCert Inc,C=US is "
                       "self-signed"),
    (("leaf", "intermediate", "root", "root"), "the intermediate certificate CN=DigiCert Trusted Root G4,"
                                               "OU=www.digicert.com,O=DigiCert Inc,C=US is self-signed"),
])
def test_validate_timestamping_cert_chain_upstream_table(names: tuple[str, ...], reason: str) -> None:
    chain = [_core_go_certificate(name) for name in names]
    if not reason:
        notation_chain.validate_structure(chain, "timeStamping")
        return
    with pytest.raises(notation_chain.ChainError) as caught:
        notation_chain.validate_structure(chain, "timeStamping")
    assert reason in str(caught.value)
    with pytest.raises(notation_chain.ChainError, match="the certificate chain is empty"):
        notation_chain.validate_structure([], "timeStamping")


def _core_go_pem(name: str) -> x509.Certificate:
    path = VECTORS / "notation/notation-core-go" / f"codesigning_cert_validations_test.go-{name}.pem"
    return x509.load_pem_x509_certificate(path.read_bytes())


# notation-core-go x509/codesigning_cert_validations_test.go, on its certificates: CA rows call
# validateCodeSigningCACertificate(cert, pathLen), leaf rows validateCodeSigningLeafCertificate(cert).
@pytest.mark.parametrize(("test", "name", "path_length", "reason"), [
    ("TestValidCa", "rootCert", 2, ""),
    ("TestFailInvalidPathLenCa", "rootCert", 3, "its path length constraint is 2, but 3 CA certificates follow it"),
    ("TestFailNoBasicConstraintsCa", "noBasicConstraintsCa", 3, "must have basic constraints with ca set to true"),
    # cA false with a pathLenConstraint, which cryptography refuses to read (upstream: the basic constraints error).
    ("TestFailBasicConstraintsNotCa", "basicConstraintsNotCa", 3, "its extensions do not parse"),
    ("TestFailKuNotCriticalCertSignCa", "kuNotCriticalCertSignCa", 3,
     "the key usage extension must be marked critical"),
    ("TestFailKuMissingCa", "kuMissingCa", 3, "the key usage extension must be present"),
    ("TestFailKuNotCertSignCa", "kuNotCertSignCa", 3, "a CA certificate's key usage must include keyCertSign"),
    ("TestValidNoOptionsLeaf", "validNoOptionsLeaf", None, ""),
    ("TestValidFullOptionsCodeLeaf", "codeSigningLeaf", None, ""),
    ("TestFailCaTrueLeaf", "caTrueLeaf", None, "the signing certificate must not be a CA"),
    ("TestFailKuNoDigitalSignatureLeaf", "kuNoDigitalSignatureLeaf", None, "must include digitalSignature"),
    ("TestFailKuWrongValuesLeaf", "kuWrongValuesLeaf", None,
     "digitalSignature only, but also allows CertSign, CRLSign"),
    ("TestFailRsaKeyTooSmallLeaf", "rsaKeyTooSmallLeaf", None, "an RSA key of 1024 bits is not supported"),
    ("TestFailEcdsaKeyTooSmallLeaf", "ecdsaKeyTooSmallLeaf", None, "an EC key of 224 bits is not supported"),
    ("TestFailEkuWrongValuesCodeLeaf", "ekuWrongValuesCodeLeaf", None,
     "extended key usage must not contain ServerAuth"),
    ("TestFailEkuMissingCodeSigningLeaf", "ekuMissingCodeSigningLeaf", None,
     "extended key usage must not contain OCSPSigning"),
])
def test_codesigning_cert_validations_upstream_table(test: str, name: str, path_length: int | None,
                                                     reason: str) -> None:
    cert = _core_go_pem(name)

    def run() -> None:
        if path_length is None:
            certrules.validate_leaf(cert)
        else:
            certrules.validate_ca(cert, path_length)
    if not reason:
        run()
        return
    with pytest.raises(certrules.CertificateRuleError) as caught:
        run()
    assert reason in str(caught.value), test


def ca_eku(*usages: x509.ObjectIdentifier) -> tuple[tuple[x509.ExtensionType, bool], ...]:
    return ((x509.ExtendedKeyUsage(list(usages)), False),)


# Go crypto/x509 verify.go checkChainForKeyUsage (Verify with KeyUsages [CodeSigning], as cosign TrustedCert and
# sigstore-go call it): every certificate of the chain, root included, with an EKU must allow codeSigning or any.
@pytest.mark.parametrize(("chain", "ok"), [
    (lambda: chain_of(root(), intermediate(extra=ca_eku(ExtendedKeyUsageOID.SERVER_AUTH,
                                                        ExtendedKeyUsageOID.CLIENT_AUTH)), leaf()), False),
    (lambda: chain_of(root(), intermediate(extra=ca_eku(ExtendedKeyUsageOID.CODE_SIGNING)), leaf()), True),
    (lambda: chain_of(root(), intermediate(extra=ca_eku(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)), leaf()), True),
    (lambda: chain_of(Spec("Acme Root", ca=True, extra=ca_eku(ExtendedKeyUsageOID.SERVER_AUTH)), intermediate(),
                      leaf()), False),
    (lambda: chain_of(root(), intermediate(), leaf(ekus=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,))), True),
], ids=["TLS-only intermediate", "codeSigning intermediate", "anyEKU intermediate", "TLS-only root",
        "anyEKU leaf"])
def test_checkChainForKeyUsage_nests_code_signing_for_cosign(chain: Callable[[], list[x509.Certificate]],
                                                             ok: bool) -> None:
    problem = cosign_problem(chain())
    assert (problem == "") is ok, problem
    if not ok:
        assert "extended key usage without codeSigning" in problem
