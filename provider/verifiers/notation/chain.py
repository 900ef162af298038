"""Certificate chains as the Notary Project specifies them, validated by pyca/cryptography.

The chain in an envelope runs leaf first, each certificate issued by the next, ending in a self-signed root
that must be one of the trust store's certificates (a self-signed signing certificate may be the whole
chain). RFC 5280 path validation (signatures, CA basic constraints, path length, name constraints, validity,
unknown critical extensions) is the library's; the Notary Project's extension rules are validators in its
extension policies: codeSigning (or exactly timeStamping for a TSA) and digitalSignature on the leaf,
keyCertSign on CAs.

What the library cannot express stays here and is small: the envelope's chain must be exactly the path the
library built (notation does not search for paths); with no verification time, validity is checked at a
moment inside every certificate's validity window (notation checks validity in a later step); key sizes
(RSA >= 2048, EC >= 256) and no SHA-1, for clear reasons; a leaf subject naming an attribute twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, Policy, PolicyBuilder, Store, VerificationError

from provider.verifiers.certificates import verification_reason
from provider.verifiers.limits import LimitError, check_certificate_chain, check_public_key

FORBIDDEN_SIGNING_EKUS = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION,
                          ExtendedKeyUsageOID.OCSP_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
# The Notary Project allows chains of a leaf, intermediates and a root; the library counts intermediates.
MAX_INTERMEDIATES = 8


class ChainError(ValueError):
    """The chain does not meet the Notary Project's requirements; the message says which."""


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _check_key_and_algorithm(cert: x509.Certificate) -> None:
    try:
        key = cert.public_key()
        hash_algorithm = cert.signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError):
        raise ChainError(f"certificate {_name(cert)} uses a key or signature algorithm that is not supported") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise ChainError(f"certificate {_name(cert)} has an RSA key of {key.key_size} bits (at least 2048)")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
        raise ChainError(f"certificate {_name(cert)} has an EC key of {key.curve.key_size} bits (at least 256)")
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ChainError(f"certificate {_name(cert)} has an unsupported key type")
    if isinstance(hash_algorithm, hashes.SHA1 | hashes.MD5):
        raise ChainError(f"certificate {_name(cert)} is signed with {hash_algorithm.name}, "
                         "which is not allowed")
    try:
        check_public_key(key, f"certificate {_name(cert)}")
    except LimitError as exc:
        raise ChainError(str(exc)) from None


# --- extension validators: called by the library while it validates the path --------------------------------

def _leaf_not_ca(_policy: Policy, cert: x509.Certificate, constraints: x509.BasicConstraints | None) -> None:
    if constraints is not None and constraints.ca:
        raise ValueError(f"signing certificate {_name(cert)} is a CA certificate")


def _leaf_digital_signature(_policy: Policy, cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    if not usage.digital_signature:
        raise ValueError(f"signing certificate {_name(cert)} lacks the digitalSignature key usage")


def _code_signing_ekus(_policy: Policy, cert: x509.Certificate, ekus: x509.ExtendedKeyUsage | None) -> None:
    forbidden = set(ekus or ()) & (FORBIDDEN_SIGNING_EKUS | {ExtendedKeyUsageOID.TIME_STAMPING})
    if forbidden:
        names = ", ".join(sorted(oid._name for oid in forbidden))
        raise ValueError(f"signing certificate {_name(cert)} has extended key usages not allowed for signing: {names}")


def _time_stamping_eku(_policy: Policy, cert: x509.Certificate, ekus: x509.ExtendedKeyUsage) -> None:
    if list(ekus) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise ValueError(f"timestamping certificate {_name(cert)} must have exactly the timeStamping EKU")


def _ca_key_cert_sign(_policy: Policy, cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    if not usage.key_cert_sign:
        raise ValueError(f"CA certificate {_name(cert)} lacks the keyCertSign key usage")


def _ca_policy() -> ExtensionPolicy:
    # basicConstraints (cA asserted, pathLenConstraint) and nameConstraints are checked by the library itself.
    return (ExtensionPolicy.permit_all()
            .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
            .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_cert_sign))


def _leaf_policy(purpose: str) -> ExtensionPolicy:
    policy = (ExtensionPolicy.permit_all()
              .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _leaf_not_ca)
              .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _leaf_digital_signature))
    if purpose == "timeStamping":
        return policy.require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _time_stamping_eku)
    return policy.may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _code_signing_ekus)


def duplicate_subject_attribute(cert: x509.Certificate) -> str:
    """The dotted OID of an attribute type the subject names twice, or empty.

    Identity matching reads the subject as one value per attribute type; a second CN or O would have to be
    dropped or chosen, so such a certificate cannot name a trusted identity (notation-go rejects it too).
    """
    seen: set[str] = set()
    for attribute in cert.subject:
        oid = attribute.oid.dotted_string
        if oid in seen:
            return oid if attribute.oid._name == "Unknown OID" else attribute.oid._name
        seen.add(oid)
    return ""


def _validation_time(chain: Sequence[x509.Certificate], at: datetime | None) -> datetime:
    if at is not None:
        return at
    start = max(cert.not_valid_before_utc for cert in chain)
    end = min(cert.not_valid_after_utc for cert in chain)
    if start > end:
        raise ChainError("the certificates of the chain are never valid at the same time (their validity "
                         "periods do not overlap)")
    return start


def _check_certificates(chain: Sequence[x509.Certificate]) -> None:
    try:
        check_certificate_chain(chain)
    except LimitError as exc:
        raise ChainError(str(exc)) from None
    for cert in chain:
        _check_key_and_algorithm(cert)


def build_path(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
               roots: Sequence[x509.Certificate], at: datetime, purpose: str = "codeSigning") -> list[x509.Certificate]:
    """The library's validated path (leaf first) from `leaf` through `intermediates` to one of `roots` at `at`."""
    verifier = (PolicyBuilder().store(Store(list(roots))).time(at)
                .max_chain_depth(MAX_INTERMEDIATES)
                .extension_policies(ca_policy=_ca_policy(), ee_policy=_leaf_policy(purpose))
                .build_client_verifier())
    try:
        path = list(verifier.verify(leaf, list(intermediates)).chain)
    except VerificationError as exc:
        reason = verification_reason(exc, [leaf, *intermediates, *roots], at)
        raise ChainError(f"certificate chain does not validate: {reason}") from None
    _check_certificates(path)  # the Notary Project's key and algorithm rules, on every certificate used
    return path


def verify_chain(chain: Sequence[x509.Certificate], trust_store: Sequence[x509.Certificate], at: datetime | None,
                 purpose: str = "codeSigning") -> x509.Certificate:
    """Check `chain` (leaf first, as an envelope carries it) against `trust_store`.

    Validity is checked at `at`; None means at a moment inside every certificate's validity window (the
    caller checks times itself). Returns the trusted root. Raises ChainError with the reason.
    """
    if not chain:
        raise ChainError("the certificate chain is empty")
    _check_certificates(chain)
    duplicate = duplicate_subject_attribute(chain[0])
    if duplicate:
        raise ChainError(f"certificate {_name(chain[0])} names the subject attribute {duplicate} more than once")
    root = chain[-1]
    if root.issuer != root.subject:
        what = "the signing certificate" if len(chain) == 1 else "the chain's last certificate"
        raise ChainError(f"{what} {_name(root)} is not a self-signed root (the envelope must carry the whole chain)")
    if not any(root == trusted for trusted in trust_store):
        raise ChainError(f"the chain's root {_name(root)} is not in the trust store")
    # Anchored at the chain's own root: the library must validate exactly the chain the envelope carries.
    built = build_path(chain[0], chain[1:-1], [root], _validation_time(chain, at), purpose)
    if built != list(chain):
        raise ChainError("the envelope's certificate chain is not in order (leaf first, each certificate issued "
                         "by the next) or carries certificates that are not part of it")
    return root
