"""RFC 3161 timestamp countersignatures (`io.cncf.notary.timestampSignature`), checked as tspclient-go does.

asn1crypto parses the token (it accepts the real GlobalSign tokens, whose certificate SET is not in DER
order); cryptography checks the CMS signature and builds and validates the TSA's path to a tsa trust store
certificate. The order and the rules follow tspclient-go: the TSTInfo (`TSTInfo.Validate`: version 1, message
imprint over the envelope's signature), then each SignerInfo until one verifies (`SignedToken.Verify`): the
ESS signingCertificateV2 attribute must name the TSA certificate by hash (`SigningCertificate`), the
SignerInfo is version 1, its signature and signed attributes (content type, message digest, signing time)
hold, and the path meets notation-core-go's timestamping requirements (`ValidateTimestampingCertChain`:
exactly the timeStamping EKU, marked critical).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asn1crypto import cms, tsp  # noqa: F401  (importing tsp registers the TSTInfo content type)
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from provider.verifiers.certparse import check_serial_numbers
from provider.verifiers.notation.certrules import TIME_STAMPING, CertificateRuleError, validate_usage_nesting
from provider.verifiers.notation.chain import ChainError, build_path

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
# ETSI EN 319 422 baseline time-stamp policy: a token under it without accuracy means one second.
BASELINE_TIMESTAMP_POLICY = "0.4.0.2023.1.1"


class TimestampError(ValueError):
    """The timestamp token does not prove a time; the message says why."""


@dataclass(frozen=True)
class Timestamp:
    time: datetime
    accuracy: timedelta
    # The TSA's validated path, leaf first: its revocation is checked like the signing chain's.
    chain: tuple[x509.Certificate, ...] = field(default=(), compare=False)

    @property
    def earliest(self) -> datetime:
        return self.time - self.accuracy

    @property
    def latest(self) -> datetime:
        return self.time + self.accuracy


def _accuracy(value: dict | None, policy: str) -> timedelta:
    value = value or {}
    accuracy = timedelta(seconds=value.get("seconds") or 0, milliseconds=value.get("millis") or 0,
                         microseconds=value.get("micros") or 0)
    if not accuracy and policy == BASELINE_TIMESTAMP_POLICY:
        return timedelta(seconds=1)
    return accuracy


def _signing_certificate(signer_info: cms.SignerInfo, signed_data: cms.SignedData,
                         certificates: list[x509.Certificate]) -> x509.Certificate:
    """tspclient-go `SigningCertificate`: the certificate the ESS signingCertificateV2 attribute binds by hash
    (found by its IssuerSerial, else by the SignerInfo's issuer and serial number)."""
    attributes = {a["type"].native: a["values"] for a in signer_info["signed_attrs"]}
    if "signing_certificate_v2" not in attributes or not len(attributes["signing_certificate_v2"]):
        raise TimestampError("the timestamp token has no ESS signingCertificateV2 attribute binding the TSA "
                             "certificate")
    ess = attributes["signing_certificate_v2"][0]["certs"]
    if not len(ess):
        raise TimestampError("the timestamp token's signingCertificateV2 attribute names no certificate")
    first = ess[0]
    issuer_serial = first["issuer_serial"]
    if issuer_serial.native is not None:
        names = issuer_serial["issuer"]
        if not len(names) or names[0].name != "directory_name":
            raise TimestampError("the timestamp token's signingCertificateV2 IssuerSerial has no issuer name")
        issuer, serial = names[0].chosen, issuer_serial["serial_number"].native
    else:
        sid = signer_info["sid"]
        if sid.name != "issuer_and_serial_number":
            raise TimestampError("the timestamp token's signer is not identified by issuer and serial number")
        issuer, serial = sid.chosen["issuer"], sid.chosen["serial_number"].native
    candidate = None
    for cert, parsed in zip(certificates, signed_data["certificates"], strict=True):
        inner = parsed.chosen
        if inner.serial_number == serial and inner.issuer == issuer:
            candidate = cert
            break
    if candidate is None:
        raise TimestampError("the timestamp token does not include its signer's certificate")
    hash_name = first["hash_algorithm"]["algorithm"].native
    if hash_name not in _HASHES:
        raise TimestampError(f"the signingCertificateV2 certificate hash uses {hash_name}, which is not supported")
    if hashlib.new(hash_name, candidate.public_bytes(Encoding.DER)).digest() != first["cert_hash"].native:
        raise TimestampError("the timestamp signer's certificate does not match the hash in its "
                             "signingCertificateV2 attribute")
    return candidate


def _check_cms_signature(signer_info: cms.SignerInfo, signer: x509.Certificate, content: bytes) -> None:
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise TimestampError(f"timestamp digest algorithm {digest_name} is not supported")
    hash_type = _HASHES[digest_name]
    attributes = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
    if attributes.get("content_type") is None or attributes["content_type"].native != "tst_info":
        raise TimestampError("the timestamp's signed content type is not TSTInfo")
    expected = hashlib.new(digest_name, content).digest()
    if attributes.get("message_digest") is None or attributes["message_digest"].native != expected:
        raise TimestampError("the timestamp's message digest does not match its TSTInfo")
    # The signature covers the signed attributes encoded as a SET OF (tag 0x31), not as [0].
    signed = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    key = signer.public_key()
    signature = signer_info["signature"].native
    algorithm = signer_info["signature_algorithm"].signature_algo
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm == "rsassa_pss":
            key.verify(signature, signed, padding.PSS(padding.MGF1(hash_type()), padding.PSS.AUTO), hash_type())
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hash_type())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(hash_type()))
        else:
            raise TimestampError("the timestamp signer's key type is not supported")
    except InvalidSignature:
        raise TimestampError("the timestamp token's signature does not verify") from None


def _verify_signer(signer_info: cms.SignerInfo, signed_data: cms.SignedData, certificates: list[x509.Certificate],
                   content: bytes, trust_store: Sequence[x509.Certificate],
                   gen_time: datetime) -> list[x509.Certificate]:
    """One SignerInfo as tspclient-go `SignedToken.Verify` checks it; the TSA's path, leaf first."""
    signer = _signing_certificate(signer_info, signed_data, certificates)
    if signer_info["version"].native != "v1":
        raise TimestampError(f"the timestamp's SignerInfo has version {signer_info['version'].native} (only v1 "
                             "is supported)")
    _check_cms_signature(signer_info, signer, content)
    try:
        # Path building as RFC 3161 clients do it: the token's certificates are candidate intermediates.
        others = [c for c in certificates if c != signer]
        path = build_path(signer, others, trust_store, gen_time, purpose=TIME_STAMPING)
        validate_usage_nesting(path, ExtendedKeyUsageOID.TIME_STAMPING)
    except (ChainError, CertificateRuleError) as exc:
        raise TimestampError(f"the timestamp authority is not trusted: {exc}") from None
    signing_time = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}.get("signing_time")
    if signing_time is not None:
        moment = signing_time.native
        if any(not c.not_valid_before_utc <= moment <= c.not_valid_after_utc for c in path):
            raise TimestampError(f"the timestamp's signing time {moment:%Y-%m-%dT%H:%M:%SZ} is outside the "
                                 "validity of the TSA's certificates")
    return path


def verify_timestamp(token: bytes, signature: bytes, trust_store: Sequence[x509.Certificate]) -> Timestamp:
    """Verify a countersignature over `signature` (the envelope's raw signature bytes) against TSA roots."""
    try:
        info = cms.ContentInfo.load(token)
        if info["content_type"].native != "signed_data":
            raise TimestampError("the timestamp token is not CMS SignedData")
        signed_data = info["content"]
        if signed_data["version"].native != "v3":
            raise TimestampError(f"the timestamp token's SignedData has version {signed_data['version'].native} "
                                 "(only v3 is supported)")
        encapsulated = signed_data["encap_content_info"]
        if encapsulated["content_type"].native != "tst_info":
            raise TimestampError("the timestamp token does not carry a TSTInfo")
        content = encapsulated["content"].contents
        tst_info = encapsulated["content"].parsed
        version = tst_info["version"].native
        imprint = tst_info["message_imprint"]
        imprint_hash = imprint["hash_algorithm"]["algorithm"].native
        gen_time = tst_info["gen_time"].native
        accuracy = _accuracy(tst_info["accuracy"].native, tst_info["policy"].dotted)
        certificates = [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed_data["certificates"]]
        check_serial_numbers(*certificates)
        signer_infos = list(signed_data["signer_infos"])
    except TimestampError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise TimestampError(f"the timestamp token does not parse: {exc}") from None
    # TSTInfo.Validate
    if version != "v1":
        raise TimestampError(f"the timestamp's TSTInfo has version {version} (only v1 is supported)")
    if imprint_hash not in _HASHES:
        raise TimestampError(f"timestamp message imprint uses {imprint_hash}, which is not supported")
    if imprint["hashed_message"].native != hashlib.new(imprint_hash, signature).digest():
        raise TimestampError("the timestamp is for other signature bytes (message imprint mismatch)")
    if not trust_store:
        raise TimestampError("no tsa trust store is configured to check the timestamp")
    if not signer_infos:
        raise TimestampError("the timestamp token has no SignerInfo")
    # SignedToken.Verify: the first SignerInfo that verifies decides.
    problem = TimestampError("the timestamp token has no SignerInfo")
    for signer_info in signer_infos:
        try:
            path = _verify_signer(signer_info, signed_data, certificates, content, trust_store, gen_time)
        except TimestampError as exc:
            problem = exc
            continue
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, UnsupportedAlgorithm) as exc:
            problem = TimestampError(f"the timestamp token does not parse: {exc}")
            continue
        return Timestamp(gen_time, accuracy, tuple(path))
    raise problem
