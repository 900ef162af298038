"""The Notary Project's certificate requirements, checked on exactly the chain a signature or timestamp carries.

These follow notation-core-go `x509/codesigning_cert_validations.go` (`ValidateCodeSigningCertChain`) and
`x509/timestamp_cert_validations.go` (`ValidateTimestampingCertChain`): the chain runs leaf first, each
certificate issued by the next, ending in a self-signed root (a self-signed leaf may be the whole chain);
the leaf and the CAs must carry the extensions and key usages a signing (or timestamping) certificate
needs. notation-go runs them as part of the integrity validation, so a violation fails the signature at
every verification level.

Validity times are not checked here: the verifier checks them against the authentic signing time.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from provider.verifiers.certificates import CERTIFICATE_PARSE_ERRORS

CODE_SIGNING = "codeSigning"
TIME_STAMPING = "timeStamping"

# validateCodeSigningExtendedKeyUsage: these purposes make a certificate unfit to sign artifacts.
EXCLUDED_SIGNING_EKUS = {ExtendedKeyUsageOID.SERVER_AUTH: "ServerAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "ClientAuth",
                         ExtendedKeyUsageOID.EMAIL_PROTECTION: "EmailProtection",
                         ExtendedKeyUsageOID.TIME_STAMPING: "Timestamping",
                         ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning"}
# validateLeafKeyUsage: a leaf may assert digitalSignature (required) and nonRepudiation, nothing else.
LEAF_KEY_USAGES_REFUSED = (("key_encipherment", "KeyEncipherment"), ("data_encipherment", "DataEncipherment"),
                           ("key_agreement", "KeyAgreement"), ("key_cert_sign", "CertSign"),
                           ("crl_sign", "CRLSign"), ("encipher_only", "EncipherOnly"),
                           ("decipher_only", "DecipherOnly"))
# internal/algorithm ExtractKeySpec: the key sizes a signing or timestamping leaf may have.
LEAF_RSA_SIZES = (2048, 3072, 4096)
LEAF_EC_SIZES = (256, 384, 521)


class CertificateRuleError(ValueError):
    """A certificate of the chain breaks a Notary Project requirement; the message says which."""


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension | None:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None
    except CERTIFICATE_PARSE_ERRORS as exc:  # e.g. a pathLenConstraint on a certificate that is not a CA
        raise CertificateRuleError(f"certificate {_name(cert)}: its extensions do not parse ({exc})") from None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Signed by `issuer`'s key, and naming `issuer`'s subject as its issuer."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _key_usage(cert: x509.Certificate, must_be_critical: bool) -> x509.KeyUsage:
    """validateCodeSigningKeyUsagePresent / validateTimestampingKeyUsagePresent."""
    extension = _extension(cert, x509.KeyUsage)
    if extension is None:
        raise CertificateRuleError(f"certificate {_name(cert)}: the key usage extension must be present")
    if must_be_critical and not extension.critical:
        raise CertificateRuleError(f"certificate {_name(cert)}: the key usage extension must be marked critical")
    return extension.value


def _leaf_basic_constraints(cert: x509.Certificate) -> None:
    extension = _extension(cert, x509.BasicConstraints)
    if extension is not None and extension.value.ca:
        raise CertificateRuleError(f"certificate {_name(cert)}: the signing certificate must not be a CA (basic "
                                   "constraints ca is true)")


def _leaf_key_usage(cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    """validateLeafKeyUsage: digitalSignature, and no usage beyond it but nonRepudiation."""
    if not usage.digital_signature:
        raise CertificateRuleError(f"certificate {_name(cert)}: the key usage must include digitalSignature")
    extra = [label for attribute, label in LEAF_KEY_USAGES_REFUSED if _usage_bit(usage, attribute)]
    if extra:
        raise CertificateRuleError(f"certificate {_name(cert)}: the key usage must be digitalSignature only, but "
                                   f"also allows {', '.join(extra)}")


def _usage_bit(usage: x509.KeyUsage, attribute: str) -> bool:
    # cryptography refuses to read encipherOnly/decipherOnly unless keyAgreement is set.
    if attribute in ("encipher_only", "decipher_only") and not usage.key_agreement:
        return False
    return bool(getattr(usage, attribute))


def _leaf_key_spec(cert: x509.Certificate) -> None:
    """validateSignatureAlgorithm: RSA 2048/3072/4096 or ECDSA P-256/P-384/P-521, nothing else."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in LEAF_RSA_SIZES:
            raise CertificateRuleError(f"certificate {_name(cert)}: an RSA key of {key.key_size} bits is not "
                                       "supported (2048, 3072 or 4096)")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size not in LEAF_EC_SIZES:
            raise CertificateRuleError(f"certificate {_name(cert)}: an EC key of {key.curve.key_size} bits is not "
                                       "supported (256, 384 or 521)")
    else:
        raise CertificateRuleError(f"certificate {_name(cert)}: the public key type is not supported")


def _code_signing_ekus(cert: x509.Certificate) -> None:
    """validateCodeSigningExtendedKeyUsage: no EKU means any purpose; listed ones must not be excluded."""
    extension = _extension(cert, x509.ExtendedKeyUsage)
    excluded = [EXCLUDED_SIGNING_EKUS[oid] for oid in (extension.value if extension else ())
                if oid in EXCLUDED_SIGNING_EKUS]
    if excluded:
        raise CertificateRuleError(f"certificate {_name(cert)}: the extended key usage must not contain "
                                   f"{', '.join(excluded)}")


def _time_stamping_ekus(cert: x509.Certificate) -> None:
    """validateTimestampingExtendedKeyUsage (RFC 3161 2.3): exactly timeStamping, in a critical extension."""
    extension = _extension(cert, x509.ExtendedKeyUsage)
    if extension is None or list(extension.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise CertificateRuleError(f"timestamping certificate {_name(cert)} must have exactly the timeStamping "
                                   "extended key usage")
    if not extension.critical:
        raise CertificateRuleError(f"timestamping certificate {_name(cert)} must have its extended key usage "
                                   "extension marked critical")


def validate_leaf(cert: x509.Certificate, purpose: str = CODE_SIGNING) -> None:
    """validateCodeSigningLeafCertificate / validateTimestampingLeafCertificate."""
    _leaf_basic_constraints(cert)
    _leaf_key_usage(cert, _key_usage(cert, must_be_critical=purpose == CODE_SIGNING))
    if purpose == CODE_SIGNING:
        _code_signing_ekus(cert)
    else:
        _time_stamping_ekus(cert)
    _leaf_key_spec(cert)


def validate_ca(cert: x509.Certificate, certificates_below: int, purpose: str = CODE_SIGNING) -> None:
    """validateCodeSigningCACertificate / validateTimestampingCACertificate; `certificates_below` CAs sit under
    it in the chain."""
    extension = _extension(cert, x509.BasicConstraints)
    if extension is None or not extension.value.ca:
        raise CertificateRuleError(f"certificate {_name(cert)}: a CA certificate must have basic constraints with "
                                   "ca set to true")
    path_length = extension.value.path_length
    if path_length is not None and path_length < certificates_below:
        raise CertificateRuleError(f"certificate {_name(cert)}: its path length constraint is {path_length}, but "
                                   f"{certificates_below} CA certificates follow it in the chain")
    if not _key_usage(cert, must_be_critical=purpose == CODE_SIGNING).key_cert_sign:
        raise CertificateRuleError(f"certificate {_name(cert)}: a CA certificate's key usage must include "
                                   "keyCertSign")


def validate_usage_nesting(chain: Sequence[x509.Certificate], usage: x509.ObjectIdentifier) -> None:
    """Every certificate of `chain` that has an EKU extension allows `usage` (or any usage), as Go's
    `x509.Certificate.Verify` requires for the KeyUsages it is given (tspclient-go `SignedToken.Verify` asks it
    for timeStamping on the TSA's whole path)."""
    for cert in chain:
        extension = _extension(cert, x509.ExtendedKeyUsage)
        if extension is not None and not {usage, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(extension.value):
            raise CertificateRuleError(f"certificate {_name(cert)}: its extended key usage does not allow "
                                       f"{usage._name}, which its chain is used for")


def validate_chain(chain: Sequence[x509.Certificate], purpose: str = CODE_SIGNING) -> None:
    """Raise CertificateRuleError unless `chain` (leaf first) meets the Notary Project's requirements."""
    if not chain:
        raise CertificateRuleError("the certificate chain is empty")
    if len(chain) == 1:
        if not _issued_by(chain[0], chain[0]):
            raise CertificateRuleError(f"certificate {_name(chain[0])} is alone in the chain but is not "
                                       "self-signed")
        validate_leaf(chain[0], purpose)
        return
    for index, cert in enumerate(chain):
        if index == len(chain) - 1:
            if not _issued_by(cert, cert):
                raise CertificateRuleError(f"the chain's last certificate {_name(cert)} is not a self-signed root "
                                           "(the chain must end with its root)")
        else:
            if _issued_by(cert, cert):
                what = "leaf" if index == 0 else "intermediate"
                raise CertificateRuleError(f"the {what} certificate {_name(cert)} is self-signed; only the last "
                                           "certificate of the chain may be")
            if not _issued_by(cert, chain[index + 1]):
                raise CertificateRuleError(f"certificate {_name(cert)} is not issued by the next certificate of "
                                           f"the chain, {_name(chain[index + 1])} (leaf first, each certificate "
                                           "issued by the next)")
        if index == 0:
            validate_leaf(cert, purpose)
        else:
            validate_ca(cert, index - 1, purpose)
