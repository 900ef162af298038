"""RFC 3161 timestamp countersignatures (`io.cncf.notary.timestampSignature`).

asn1crypto parses the token (it accepts the real GlobalSign tokens, whose certificate SET is not in DER
order); cryptography checks the CMS signature and builds and validates the TSA's path to a tsa trust store
certificate under the Notary Project's timestamping rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import cms, tsp  # noqa: F401  (importing tsp registers the TSTInfo content type)
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from provider.verifiers.notation.chain import ChainError, build_path

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


class TimestampError(ValueError):
    """The timestamp token does not prove a time; the message says why."""


@dataclass(frozen=True)
class Timestamp:
    time: datetime
    accuracy: timedelta

    @property
    def earliest(self) -> datetime:
        return self.time - self.accuracy

    @property
    def latest(self) -> datetime:
        return self.time + self.accuracy


def _accuracy(value: dict | None) -> timedelta:
    value = value or {}
    return timedelta(seconds=value.get("seconds") or 0, milliseconds=value.get("millis") or 0,
                     microseconds=value.get("micros") or 0)


def _signer(signed_data: cms.SignedData, certificates: list[x509.Certificate]) -> x509.Certificate:
    sid = signed_data["signer_infos"][0]["sid"]
    for cert, parsed in zip(certificates, signed_data["certificates"], strict=True):
        inner = parsed.chosen
        if sid.name == "issuer_and_serial_number":
            if inner.serial_number == sid.chosen["serial_number"].native and inner.issuer == sid.chosen["issuer"]:
                return cert
        elif inner.key_identifier == sid.chosen.native:
            return cert
    raise TimestampError("the timestamp token does not include its signer's certificate")


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


def verify_timestamp(token: bytes, signature: bytes, trust_store: Sequence[x509.Certificate]) -> Timestamp:
    """Verify a countersignature over `signature` (the envelope's raw signature bytes) against TSA roots."""
    if not trust_store:
        raise TimestampError("no tsa trust store is configured to check the timestamp")
    try:
        info = cms.ContentInfo.load(token)
        signed_data = info["content"]
        encapsulated = signed_data["encap_content_info"]
        if encapsulated["content_type"].native != "tst_info":
            raise TimestampError("the timestamp token does not carry a TSTInfo")
        content = encapsulated["content"].contents
        tst_info = encapsulated["content"].parsed
        imprint = tst_info["message_imprint"]
        imprint_hash = imprint["hash_algorithm"]["algorithm"].native
        gen_time = tst_info["gen_time"].native
        accuracy = _accuracy(tst_info["accuracy"].native)
        certificates = [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed_data["certificates"]]
        signer_info = signed_data["signer_infos"][0]
    except TimestampError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise TimestampError(f"the timestamp token does not parse: {exc}") from None
    if imprint_hash not in _HASHES:
        raise TimestampError(f"timestamp message imprint uses {imprint_hash}, which is not supported")
    if imprint["hashed_message"].native != hashlib.new(imprint_hash, signature).digest():
        raise TimestampError("the timestamp is for other signature bytes (message imprint mismatch)")
    signer = _signer(signed_data, certificates)
    _check_cms_signature(signer_info, signer, content)
    try:
        # Path building as RFC 3161 clients do it: the token's certificates are candidate intermediates.
        others = [c for c in certificates if c != signer]
        build_path(signer, others, trust_store, gen_time, purpose="timeStamping")
    except ChainError as exc:
        raise TimestampError(f"the timestamp authority is not trusted: {exc}") from None
    return Timestamp(gen_time, accuracy)
