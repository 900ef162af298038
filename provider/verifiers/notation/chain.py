"""Certificate chains as the Notary Project specifies them, validated by pyca/cryptography.

The chain in an envelope runs leaf first, each certificate issued by the next, ending in a self-signed root
that must be one of the trust store's certificates (a self-signed signing certificate may be the whole
chain). Two steps, as notation-go has them:

- structure (`validate_structure`, part of integrity): size limits, key sizes (RSA >= 2048, EC >= 256) and no
  SHA-1 on every certificate, and the Notary Project's certificate requirements of certrules.py;
- trust (`trusted_root`, part of authenticity): the root is in the trust store, and RFC 5280 path validation
  by the library (signatures, validity, name constraints, unknown critical extensions) accepts exactly the
  chain the envelope carries (notation does not search for paths). With no verification time, validity is
  checked at a moment inside every certificate's validity window (notation checks validity in a later
  step). A leaf subject naming an attribute twice cannot be matched against trusted identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

from provider.verifiers.certificates import verification_reason
from provider.verifiers.limits import LimitError, check_certificate_chain, check_public_key
from provider.verifiers.notation.certrules import CODE_SIGNING, CertificateRuleError, validate_chain

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


# The Notary Project's extension rules live in certrules.py and run on the exact chain; the library checks what
# RFC 5280 path validation adds (signatures, validity, CA basic constraints, name constraints, unknown critical
# extensions).
_CA_POLICY = ExtensionPolicy.permit_all().require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
_LEAF_POLICY = ExtensionPolicy.permit_all()


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


def validate_structure(chain: Sequence[x509.Certificate], purpose: str = CODE_SIGNING) -> None:
    """The chain as carried (leaf first) meets the size limits, the key and algorithm rules and the Notary
    Project's certificate requirements (certrules.py). notation-go checks this as part of integrity."""
    if not chain:
        raise ChainError("the certificate chain is empty")
    _check_certificates(chain)
    try:
        validate_chain(chain, purpose)
    except CertificateRuleError as exc:
        raise ChainError(str(exc)) from None


def _library_path(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
                  roots: Sequence[x509.Certificate], at: datetime) -> list[x509.Certificate]:
    verifier = (PolicyBuilder().store(Store(list(roots))).time(at)
                .max_chain_depth(MAX_INTERMEDIATES)
                .extension_policies(ca_policy=_CA_POLICY, ee_policy=_LEAF_POLICY)
                .build_client_verifier())
    try:
        return list(verifier.verify(leaf, list(intermediates)).chain)
    except VerificationError as exc:
        reason = verification_reason(exc, [leaf, *intermediates, *roots], at)
        raise ChainError(f"certificate chain does not validate: {reason}") from None


def build_path(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
               roots: Sequence[x509.Certificate], at: datetime, purpose: str = CODE_SIGNING) -> list[x509.Certificate]:
    """The validated path (leaf first) from `leaf` through `intermediates` to one of `roots` at `at`, meeting
    the Notary Project's requirements for `purpose` (as notation-go checks a TSA's chain once Go built it)."""
    path = _library_path(leaf, intermediates, roots, at)
    validate_structure(path, purpose)
    return path


def trusted_root(chain: Sequence[x509.Certificate], trust_store: Sequence[x509.Certificate],
                 at: datetime | None) -> x509.Certificate:
    """Authenticity of a chain `validate_structure` accepted: its root is in `trust_store` and the library
    validates exactly this chain at `at` (None: at a moment inside every certificate's validity window; the
    caller checks times itself). Returns the trusted root; raises ChainError with the reason."""
    duplicate = duplicate_subject_attribute(chain[0])
    if duplicate:
        raise ChainError(f"certificate {_name(chain[0])} names the subject attribute {duplicate} more than once")
    root = chain[-1]
    if not any(root == trusted for trusted in trust_store):
        raise ChainError(f"the chain's root {_name(root)} is not in the trust store")
    # Anchored at the chain's own root: the library must validate exactly the chain the envelope carries.
    built = _library_path(chain[0], chain[1:-1], [root], _validation_time(chain, at))
    if built != list(chain):
        raise ChainError("the envelope's certificate chain is not in order (leaf first, each certificate issued "
                         "by the next) or carries certificates that are not part of it")
    return root


def verify_chain(chain: Sequence[x509.Certificate], trust_store: Sequence[x509.Certificate], at: datetime | None,
                 purpose: str = CODE_SIGNING) -> x509.Certificate:
    """`validate_structure` and `trusted_root` in one: the whole check of an envelope's chain."""
    validate_structure(chain, purpose)
    return trusted_root(chain, trust_store, at)
