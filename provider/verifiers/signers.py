"""Who signed: check a signature against an authority's cosign trust (keys, keyless, your own PKI).

Shared by image signatures (signed bytes = the simple-signing payload) and attestations (signed bytes =
the DSSE pre-authentication encoding). The content check (does it claim this image?) is passed in, so
that its reason is reported only for a signature the authority would otherwise accept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from provider.config import CosignAuthority, KeylessConfig, PublicKey
from provider.verifiers.base import Signer, TlogEntry
from provider.verifiers.certificates import (
    CERTIFICATE_PARSE_ERRORS,
    CertificateError,
    certificate_issuer,
    certificate_sans,
    certificate_subject,
    identity_problem,
    load_certificates,
    trusted_chain,
)
from provider.verifiers.keys import key_id, verify_signature
from provider.verifiers.rekor import LoggedSignature, TlogError, integrated_at, verify_bundle
from provider.verifiers.sct import SCTError, verify_embedded_sct

# What reading a certificate's key and extensions can raise: cryptography parses them lazily, and not all
# of its parse errors are ValueErrors.
NO_BUNDLE = "no transparency log bundle, and authority requires one (tlog: required)"


@dataclass(frozen=True)
class SignedBlob:
    """Signed bytes, their signature, and the material that may come with it."""

    signed: bytes
    signature: bytes
    certificate: str = ""
    chain: str = ""
    bundle: str = ""  # the dev.sigstore.cosign/bundle annotation
    envelope: bytes = b""  # for a DSSE signature: the raw envelope and its payload (what log entries bind)
    payload: bytes = b""


@dataclass(frozen=True)
class Authenticated:
    signer: Signer
    tlog: TlogEntry | None
    warnings: tuple[str, ...] = ()
    checks: Mapping[str, str] = field(default_factory=dict)  # e.g. {"sct": "passed"} for keyless


@dataclass(frozen=True)
class LogCheck:
    """The outcome of a signature's Rekor bundle: an entry, a rejection, or nothing to check."""

    entry: TlogEntry | None = None
    problem: str = ""  # the bundle is there and proves nothing: the signature fails, whatever `tlog` says
    note: str = ""  # the bundle is there but could not be checked (no Rekor keys)


class Rejected(Exception):
    """The authority does not accept this signature; `reason` says why, `signer` who it was (if known)."""

    def __init__(self, reason: str, signer: Signer | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.signer = signer or Signer()


def authenticate(blob: SignedBlob, authority: str, settings: CosignAuthority, content_problem: str) -> Authenticated:
    """The signer and log entry when `settings` trust this signature; raises Rejected with the reason."""
    key = next((k for k in settings.public_keys if verify_signature(k.key, blob.signature, blob.signed)), None)
    if key is None and blob.certificate and (settings.keyless or settings.pki):
        return _by_certificate(blob, settings, content_problem)
    if key is None:
        raise Rejected(f"signed by a key not trusted by authority {authority}")
    signer = Signer(key_id=key_id(key.key), subject=key.origin)
    if content_problem:
        raise Rejected(content_problem, signer)
    logged = log_entry(blob, key.key, settings.rekor_keys)
    if logged.problem:
        raise Rejected(logged.problem, signer)
    if logged.entry is None and settings.tlog == "required":
        raise Rejected(logged.note or NO_BUNDLE, signer)
    return Authenticated(signer, logged.entry, (logged.note,) if logged.note else ())


def _by_certificate(blob: SignedBlob, settings: CosignAuthority, content_problem: str) -> Authenticated:
    """Keyless (Fulcio + Rekor) or your own PKI: the key comes from a certificate that must chain."""
    try:
        leaf, *rest = load_certificates(blob.certificate)
        chain = rest + (load_certificates(blob.chain) if blob.chain else [])
    except (CertificateError, ValueError) as exc:
        raise Rejected(str(exc) or "certificate annotation is empty") from None
    except x509.InvalidVersion as exc:  # not a ValueError in cryptography
        raise Rejected(f"certificate does not parse: {exc}") from None
    try:  # key and extensions are parsed lazily; a certificate from a registry may carry anything
        signer = Signer(key_id=key_id(leaf.public_key()), subject=certificate_subject(leaf),
                        issuer=certificate_issuer(leaf))
        sans = certificate_sans(leaf)
    except CERTIFICATE_PARSE_ERRORS as exc:
        raise Rejected(f"the signing certificate cannot be used: {exc}") from None
    if not verify_signature(leaf.public_key(), blob.signature, blob.signed):
        raise Rejected("signature does not verify with the key of its certificate", signer)
    if content_problem:
        raise Rejected(content_problem, signer)
    reasons = []
    for kind, trust in (("keyless", settings.keyless), ("pki", settings.pki)):
        if trust is None:
            continue
        rekor_keys = settings.keyless.rekor_keys if kind == "keyless" and settings.keyless else settings.rekor_keys
        logged = log_entry(blob, leaf.public_key(), rekor_keys)
        tlog = logged.entry
        if logged.problem or (tlog is None and (kind == "keyless" or settings.tlog == "required")):
            # A short-lived Fulcio certificate can only be checked at the time the log vouches for.
            reasons.append(logged.problem or logged.note or (
                NO_BUNDLE if kind == "pki" else "keyless signature without a verified transparency log entry"))
            continue
        at = integrated_at(tlog) if tlog else datetime.now(UTC)
        try:
            built = trusted_chain(leaf, chain, trust, at)
            checks = _sct(leaf, built, trust) if isinstance(trust, KeylessConfig) else {}
        except (CertificateError, SCTError) as exc:
            reasons.append(str(exc))
            continue
        problem = identity_problem(trust.identities, sans, signer.issuer)
        if problem:
            reasons.append(problem)
            continue
        return Authenticated(signer, tlog, (logged.note,) if logged.note else (), checks)
    raise Rejected("; ".join(reasons), signer)


def _sct(leaf: x509.Certificate, chain: list[x509.Certificate], trust: KeylessConfig) -> dict[str, str]:
    """The SCT check of a keyless certificate: required and verified when CT log keys are known (cosign)."""
    if trust.sct != "required":
        return {"sct": "skipped"}
    if len(chain) < 2:
        raise SCTError("certificate has no issuer in its chain to check its SCT against")
    verify_embedded_sct(leaf, chain[1], trust.ct_keys)
    return {"sct": "passed"}


def log_entry(blob: SignedBlob, signer_key: PublicKeyTypes, rekor_keys: Sequence[PublicKey]) -> LogCheck:
    """Check the signature's Rekor bundle, if it has one.

    A bundle that is present but does not verify, or does not bind this signature, fails the signature
    even under `tlog: optional` (cosign does the same): "optional" means a bundle may be absent, not that
    a broken one may be ignored. Without Rekor keys the bundle cannot be judged and is only noted.
    """
    if not blob.bundle:
        return LogCheck()
    if not rekor_keys:
        return LogCheck(note="a Rekor bundle is attached but the authority has no rekorKeys to check it")
    logged = LoggedSignature(blob.signature, blob.signed, signer_key, blob.envelope, blob.payload)
    try:
        return LogCheck(verify_bundle(blob.bundle, logged, rekor_keys))
    except TlogError as exc:
        return LogCheck(problem=f"transparency log entry rejected: {exc}")
