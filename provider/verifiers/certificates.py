"""Certificate checks for cosign keyless (Fulcio) and bring-your-own-PKI signatures.

Chains are built and checked with pyca/cryptography's verifier. Its client profile expects a TLS
clientAuth EKU on the leaf; code-signing leaves carry codeSigning instead, so the end-entity policy is
swapped for one that requires codeSigning (the same adjustment sigstore-python makes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from provider.config import Identity, KeylessConfig, PKIConfig
from provider.config.model import within
from provider.verifiers.certparse import check_serial_numbers
from provider.verifiers.limits import MAX_CHAIN_BYTES, LimitError, check_certificate_chain, check_public_key

# What cryptography raises for a certificate it cannot read (InvalidVersion and the others are no ValueError).
CERTIFICATE_PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion, x509.DuplicateExtension,
                            x509.UnsupportedGeneralNameType)

FULCIO_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
FULCIO_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
FULCIO_OTHERNAME = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")  # sigstore cryptoutils OIDOtherName (usernames)
# Intermediates the path may go through (Fulcio has one; private PKIs rarely more than three).
MAX_INTERMEDIATES = 8


class CertificateError(ValueError):
    """The certificate cannot vouch for the signature; the message says why."""


def load_certificates(pem: str) -> list[x509.Certificate]:
    """Certificates a signature carries (annotation PEM), bounded in number and size."""
    if len(pem) > 2 * MAX_CHAIN_BYTES:  # PEM is base64 of the DER and a few header lines
        raise CertificateError(f"certificate annotation is {len(pem)} characters, over the limit for "
                               f"{MAX_CHAIN_BYTES} bytes of certificates")
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
        check_certificate_chain(certificates)
        for cert in certificates:  # before any signature is checked with these keys
            check_serial_numbers(cert)
            check_public_key(cert.public_key(), f"certificate {cert.subject.rfc4514_string()}")
    except LimitError as exc:
        raise CertificateError(str(exc)) from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # names are decoded when read: TypeError too
        raise CertificateError(f"certificate does not parse: {exc}") from None
    return certificates


_ENCOUNTERED = re.compile(r" \(encountered processing <Certificate\(subject=<Name\((?P<name>.*?)\)>, \.\.\.\)>\)")


def verification_reason(exc: VerificationError, candidates: Sequence[x509.Certificate], at: datetime) -> str:
    """The library's reason, readable: no Python-object dump, and naming the certificates not valid at `at`."""
    text = str(exc).removeprefix("validation failed: ")
    text = re.sub(r"Python extension validator failed: \w+: ", "", text)
    text = _ENCOUNTERED.sub(lambda m: f" (certificate {m.group('name')})", text)
    if "not valid at validation time" in text:
        stale = [f"{c.subject.rfc4514_string()} (valid {c.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
                 f"{c.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})" for c in candidates
                 if not c.not_valid_before_utc <= at <= c.not_valid_after_utc]
        if stale:
            text += "; expired or not yet valid: " + ", ".join(stale)
    return text


def _code_signing_allowed(_policy: Policy, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
    # cosign's (Go's) rule: no EKU extension means any usage; one that is present must allow codeSigning.
    if eku is not None and not ({ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
                                & set(eku)):
        raise ValueError("leaf certificate's extended key usage does not include codeSigning")


def _ca_may_issue_code_signing(_policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
    # Go's x509.Verify with KeyUsages [CodeSigning] (cosign TrustedCert, sigstore-go): EKU nests down the chain, so
    # a CA whose EKU is present must allow codeSigning (or any usage) to issue a code-signing leaf.
    if eku is not None and not ({ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
                                & set(eku)):
        raise ValueError(f"CA certificate {cert.subject.rfc4514_string()} has an extended key usage without "
                         "codeSigning, so it cannot issue code-signing certificates")


def eku_nesting_problem(chain: Sequence[x509.Certificate]) -> str:
    """Go's checkChainForKeyUsage for codeSigning over a built chain, trust anchor included; "" when it holds."""
    for cert in chain:
        try:
            usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        except x509.ExtensionNotFound:
            continue
        if not usages & {ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}:
            return (f"certificate {cert.subject.rfc4514_string()} in the chain has an extended key usage without "
                    "codeSigning (extended key usage does not nest)")
    return ""


def _can_sign_certificates(_policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("CA certificate's key usage does not allow signing certificates")


def verify_chain(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
                 roots: Sequence[x509.Certificate], at: datetime) -> list[x509.Certificate]:
    """The chain (leaf first) from `leaf` to one of `roots`, valid at `at`, usable for code signing.

    Raises CertificateError when there is none.
    """
    if not roots:
        raise CertificateError("no trusted root certificates are configured")
    # Web-PKI defaults with cosign's (Go's) leniency: CAs may omit keyUsage (when present it must allow
    # certificate signing) and EKU (when present it must allow codeSigning); leaves must allow codeSigning.
    ca_policy = (ExtensionPolicy.webpki_defaults_ca()
                 .may_be_present(x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, _ca_may_issue_code_signing)
                 .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _can_sign_certificates))
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC,
                                                                     _code_signing_allowed)
    verifier = (PolicyBuilder().store(Store(list(roots))).time(at).max_chain_depth(MAX_INTERMEDIATES)
                .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
                .build_client_verifier())
    try:
        chain = verifier.verify(leaf, list(intermediates)).chain
    except VerificationError as exc:
        reason = verification_reason(exc, [leaf, *intermediates, *roots], at)
        raise CertificateError(f"certificate chain does not verify to a trusted root at {at:%Y-%m-%dT%H:%M:%SZ}: "
                               f"{reason}") from None
    problem = eku_nesting_problem(chain)  # the trust anchor too, as Go checks it
    if problem:
        raise CertificateError(f"certificate chain does not verify to a trusted root: {problem}")
    return list(chain)


def trusted_chain(leaf: x509.Certificate, annotated: Sequence[x509.Certificate], trust: KeylessConfig | PKIConfig,
                  at: datetime) -> list[x509.Certificate]:
    """The verified chain, leaf first, from the trust material that vouches for `leaf` at `at`.

    A trusted root's CA counts only inside its `validFor` window and only with its own intermediates
    (sigstore-go `FulcioCertificateAuthority.Verify`); for roots given as files, the signature's chain
    annotation supplies intermediates only when none are configured (cosign `pkg/cosign/verify.go`).
    """
    problems = []
    for ca in trust.authorities if isinstance(trust, KeylessConfig) else ():
        if not within(at, ca.valid_from, ca.valid_until):
            problems.append(f"trusted root CA {ca.root.subject.rfc4514_string()} is valid "
                            f"{_window(ca.valid_from, ca.valid_until)}, not at {at:%Y-%m-%dT%H:%M:%SZ}")
            continue
        try:
            return verify_chain(leaf, ca.intermediates, [ca.root], at)
        except CertificateError as exc:
            problems.append(str(exc))
    if trust.roots:
        try:
            return verify_chain(leaf, trust.intermediates or annotated, trust.roots, at)
        except CertificateError as exc:
            problems.append(str(exc))
    raise CertificateError("; ".join(problems) or "no trusted root certificates are configured")


def _window(start: datetime | None, end: datetime | None) -> str:
    return (f"from {f'{start:%Y-%m-%dT%H:%M:%SZ}' if start else 'any time'} "
            f"until {f'{end:%Y-%m-%dT%H:%M:%SZ}' if end else 'any time'}")


def certificate_subject(cert: x509.Certificate) -> str:
    """The identity a signing certificate names: its first email or URI SAN (Fulcio), else its subject DN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        for kind in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
            values = san.get_values_for_type(kind)
            if values:
                return str(values[0])
    return cert.subject.rfc4514_string()


def certificate_sans(cert: x509.Certificate) -> list[str]:
    """Every SAN an identity is tried against, as sigstore's cryptoutils.GetSubjectAlternateNames lists them
    (cosign CheckCertificatePolicy): DNS names, emails, IP addresses, URIs, and Fulcio's OtherName username."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [*san.get_values_for_type(x509.DNSName), *san.get_values_for_type(x509.RFC822Name),
             *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
             *san.get_values_for_type(x509.UniformResourceIdentifier)]
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == FULCIO_OTHERNAME:
            value = _der_utf8(other.value)
            if value is not None:
                names.append(value)
    return [str(n) for n in names]


def _der_utf8(raw: bytes) -> str | None:
    """The text of a DER UTF8String, or None when `raw` is not one."""
    if len(raw) < 2 or raw[0] != 0x0C:
        return None
    length, offset = raw[1], 2
    if length & 0x80:  # long-form length
        count = length & 0x7F
        length, offset = int.from_bytes(raw[2:2 + count], "big"), 2 + count
    return raw[offset:offset + length].decode(errors="replace")


def certificate_issuer(cert: x509.Certificate) -> str:
    """The OIDC issuer Fulcio recorded (OID .1.8, DER UTF8String; or the legacy .1.1, raw bytes)."""
    for oid, der in ((FULCIO_ISSUER_V2, True), (FULCIO_ISSUER_V1, False)):
        try:
            raw = cert.extensions.get_extension_for_oid(oid).value.value  # type: ignore[attr-defined]
        except x509.ExtensionNotFound:
            continue
        text = _der_utf8(raw) if der else None
        return text if text is not None else raw.decode(errors="replace")
    return ""


def identity_problem(identities: Sequence[Identity], sans: Sequence[str], issuer: str) -> str:
    """Empty when some identity matches; else the reason. cosign's CheckCertificatePolicy: an identity's subject
    (exact, or an unanchored RE2 search) must match one of the SANs and its issuer the Fulcio issuer."""
    if not identities:
        return ""
    for identity in identities:
        if _subject_matches(identity, sans) and _issuer_matches(identity, issuer):
            return ""
    wanted = "; ".join(_describe(i) for i in identities)
    return (f"certificate identity {', '.join(sans) or 'none'} (issuer {issuer or 'none'}) does not match "
            f"{wanted}")


def _subject_matches(identity: Identity, sans: Sequence[str]) -> bool:
    if identity.subject_regexp is not None:
        return any(identity.subject_regexp.search(san) for san in sans)
    if identity.subject is not None:
        return identity.subject in sans
    return True


def _issuer_matches(identity: Identity, issuer: str) -> bool:
    if identity.issuer_regexp is not None:
        return identity.issuer_regexp.search(issuer)
    if identity.issuer is not None:
        return identity.issuer == issuer
    return True


def _describe(identity: Identity) -> str:
    parts = []
    if identity.subject is not None:
        parts.append(f"subject {identity.subject}")
    if identity.subject_regexp is not None:
        parts.append(f"subject ~ {identity.subject_regexp.pattern}")
    if identity.issuer is not None:
        parts.append(f"issuer {identity.issuer}")
    if identity.issuer_regexp is not None:
        parts.append(f"issuer ~ {identity.issuer_regexp.pattern}")
    return ", ".join(parts)
