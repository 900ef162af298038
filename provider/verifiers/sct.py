"""Embedded signed certificate timestamps (RFC 6962 §3.2) in Fulcio certificates.

A Fulcio certificate carries SCTs from the CT logs it was submitted to; a valid one shows the certificate
was made public, which exposes one a compromised Fulcio issued in secret. Checked as sigstore-go
(`pkg/verify/sct.go`, `VerifySignedCertificateTimestamp`) checks them: SCTs from unknown logs, or from a log
outside its key's `validFor` window, are skipped; at least one must verify over the precertificate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.certificate_transparency import LogEntryType, SignatureAlgorithm, SignedCertificateTimestamp

from provider.config import PublicKey
from provider.verifiers.keys import key_id

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


class SCTError(ValueError):
    """The certificate carries no SCT that a configured CT log key verifies; the message says why."""


def _milliseconds(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _MILLISECOND


def signed_data(leaf: x509.Certificate, issuer: x509.Certificate, sct: SignedCertificateTimestamp) -> bytes:
    """The RFC 6962 `digitally-signed` struct of a precertificate SCT: what the CT log signed."""
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    tbs = leaf.tbs_precertificate_bytes
    extensions = sct.extension_bytes
    return (b"\x00\x00" + _milliseconds(sct.timestamp).to_bytes(8, "big") + b"\x00\x01"
            + hashlib.sha256(spki).digest() + len(tbs).to_bytes(3, "big") + tbs
            + len(extensions).to_bytes(2, "big") + extensions)


def _verifies(key: PublicKeyTypes, sct: SignedCertificateTimestamp, data: bytes) -> bool:
    """The SCT's signature with exactly the algorithm it declares (RFC 6962 `digitally-signed`), as Go's ctutil."""
    algorithm = sct.signature_hash_algorithm
    if not isinstance(algorithm, hashes.SHA256):
        return False  # RFC 6962 §2.1.4: CT logs sign with SHA-256
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and sct.signature_algorithm == SignatureAlgorithm.ECDSA:
            key.verify(sct.signature, data, ec.ECDSA(algorithm))
            return True
        if isinstance(key, rsa.RSAPublicKey) and sct.signature_algorithm == SignatureAlgorithm.RSA:
            key.verify(sct.signature, data, padding.PKCS1v15(), algorithm)
            return True
    except InvalidSignature:
        return False
    return False


def verify_embedded_sct(leaf: x509.Certificate, issuer: x509.Certificate, ct_keys: Sequence[PublicKey]) -> None:
    """Raise SCTError unless some embedded SCT verifies with a CT log key valid at the SCT's time."""
    try:
        scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    except x509.ExtensionNotFound:
        raise SCTError("certificate does not include the required embedded SCT") from None
    except ValueError as exc:
        raise SCTError(f"certificate's SCT list does not parse: {exc}") from None
    logs = {bytes.fromhex(key_id(k.key)): k for k in ct_keys}
    for sct in scts:
        log = logs.get(sct.log_id)
        if log is None or sct.entry_type != LogEntryType.PRE_CERTIFICATE:
            continue
        try:
            moment = sct.timestamp if sct.timestamp.tzinfo else sct.timestamp.replace(tzinfo=UTC)
            if not log.valid_at(moment):
                continue  # sigstore-go skips SCTs made outside the CT log key's window
            if _verifies(log.key, sct, signed_data(leaf, issuer, sct)):
                return
        except (ValueError, UnsupportedAlgorithm):  # a time past year 9999, an unknown algorithm: not valid
            continue
    raise SCTError(f"none of the certificate's {len(scts)} embedded SCTs verifies with a configured CT log key")
