"""Certificate chains as the Notary Project specifies them.

The chain in an envelope runs leaf first, each certificate issued by the next, ending in a self-signed root
that must be one of the trust store's certificates (a self-signed signing certificate may be the whole
chain). The spec's own requirements apply instead of the web PKI's: codeSigning (or timeStamping for a
TSA), digitalSignature on the leaf, CA constraints on the rest, RSA >= 2048, EC >= 256, no SHA-1.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

FORBIDDEN_SIGNING_EKUS = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION,
                          ExtendedKeyUsageOID.OCSP_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}


class ChainError(ValueError):
    """The chain does not meet the Notary Project's requirements; the message says which."""


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _check_key_and_algorithm(cert: x509.Certificate) -> None:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise ChainError(f"certificate {_name(cert)} has an RSA key of {key.key_size} bits (at least 2048)")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
        raise ChainError(f"certificate {_name(cert)} has an EC key of {key.curve.key_size} bits (at least 256)")
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ChainError(f"certificate {_name(cert)} has an unsupported key type")
    if isinstance(cert.signature_hash_algorithm, hashes.SHA1 | hashes.MD5):
        raise ChainError(f"certificate {_name(cert)} is signed with {cert.signature_hash_algorithm.name}, "
                         "which is not allowed")


def check_leaf(cert: x509.Certificate, purpose: str = "codeSigning") -> None:
    """Leaf requirements for a signing certificate (`codeSigning`) or a timestamping one (`timeStamping`)."""
    _check_key_and_algorithm(cert)
    constraints = _ext(cert, x509.BasicConstraints)
    if constraints is not None and constraints.ca:  # type: ignore[attr-defined]
        raise ChainError(f"signing certificate {_name(cert)} is a CA certificate")
    usage = _ext(cert, x509.KeyUsage)
    if usage is None or not usage.digital_signature:  # type: ignore[attr-defined]
        raise ChainError(f"signing certificate {_name(cert)} lacks the digitalSignature key usage")
    ekus = _ext(cert, x509.ExtendedKeyUsage)
    if purpose == "timeStamping":
        if ekus is None or list(ekus) != [ExtendedKeyUsageOID.TIME_STAMPING]:  # type: ignore[arg-type]
            raise ChainError(f"timestamping certificate {_name(cert)} must have exactly the timeStamping EKU")
        return
    forbidden = set(ekus or ()) & (FORBIDDEN_SIGNING_EKUS | {ExtendedKeyUsageOID.TIME_STAMPING})  # type: ignore[arg-type]
    if forbidden:
        names = ", ".join(sorted(oid._name for oid in forbidden))
        raise ChainError(f"signing certificate {_name(cert)} has extended key usages not allowed for signing: {names}")


def _check_ca(cert: x509.Certificate, depth_below: int) -> None:
    _check_key_and_algorithm(cert)
    constraints = _ext(cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:  # type: ignore[attr-defined]
        raise ChainError(f"certificate {_name(cert)} issues others but is not a CA (basicConstraints)")
    path_length = constraints.path_length  # type: ignore[attr-defined]
    if path_length is not None and depth_below > path_length:
        raise ChainError(f"CA certificate {_name(cert)} allows {path_length} intermediate(s) below it")
    usage = _ext(cert, x509.KeyUsage)
    if usage is None or not usage.key_cert_sign:  # type: ignore[attr-defined]
        raise ChainError(f"CA certificate {_name(cert)} lacks the keyCertSign key usage")


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def verify_chain(chain: Sequence[x509.Certificate], trust_store: Sequence[x509.Certificate], at: datetime | None,
                 purpose: str = "codeSigning") -> x509.Certificate:
    """Check `chain` (leaf first) against `trust_store`; validity at `at` (None skips the time check).

    Returns the trusted root. Raises ChainError with the reason.
    """
    if not chain:
        raise ChainError("the certificate chain is empty")
    check_leaf(chain[0], purpose)
    for index in range(len(chain) - 1):
        if not _signed_by(chain[index], chain[index + 1]):
            raise ChainError(f"certificate {_name(chain[index])} is not issued by {_name(chain[index + 1])}: "
                             "the chain is out of order or broken")
        _check_ca(chain[index + 1], index)
    root = chain[-1]
    if len(chain) > 1 and not _signed_by(root, root):
        raise ChainError(f"the chain ends in {_name(root)}, which is not a self-signed root")
    if len(chain) == 1 and not _signed_by(root, root):
        raise ChainError(f"the signing certificate {_name(root)} is not self-signed and comes without its issuers")
    if not any(root == trusted for trusted in trust_store):
        raise ChainError(f"the chain's root {_name(root)} is not in the trust store")
    if at is not None:
        for cert in chain:
            if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
                raise ChainError(f"certificate {_name(cert)} is not valid at {at:%Y-%m-%dT%H:%M:%SZ} (valid "
                                 f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
                                 f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})")
    return root
