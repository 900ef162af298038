"""Who signed: check a signature against an authority's cosign trust (keys, keyless, your own PKI).

Shared by image signatures (signed bytes = the simple-signing payload) and attestations (signed bytes =
the DSSE pre-authentication encoding). The content check (does it claim this image?) is passed in, so
that its reason is reported only for a signature the authority would otherwise accept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from provider.config import CosignAuthority, PublicKey
from provider.verifiers.base import Signer, TlogEntry
from provider.verifiers.certificates import (
    CertificateError,
    certificate_issuer,
    certificate_subject,
    identity_problem,
    load_certificates,
    verify_chain,
)
from provider.verifiers.keys import key_id, verify_signature
from provider.verifiers.rekor import TlogError, integrated_at, verify_bundle

NO_BUNDLE = "no transparency log bundle, and authority requires one (tlog: required)"


@dataclass(frozen=True)
class SignedBlob:
    """Signed bytes, their signature, and the material that may come with it."""

    signed: bytes
    signature: bytes
    certificate: str = ""
    chain: str = ""
    bundle: str = ""  # the dev.sigstore.cosign/bundle annotation


@dataclass(frozen=True)
class Authenticated:
    signer: Signer
    tlog: TlogEntry | None


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
    tlog, tlog_problem = log_entry(blob, key.key, settings.rekor_keys)
    if tlog is None and settings.tlog == "required":
        raise Rejected(tlog_problem or NO_BUNDLE, signer)
    return Authenticated(signer, tlog)


def _by_certificate(blob: SignedBlob, settings: CosignAuthority, content_problem: str) -> Authenticated:
    """Keyless (Fulcio + Rekor) or your own PKI: the key comes from a certificate that must chain."""
    try:
        leaf, *rest = load_certificates(blob.certificate)
        chain = rest + (load_certificates(blob.chain) if blob.chain else [])
    except (CertificateError, ValueError) as exc:
        raise Rejected(str(exc) or "certificate annotation is empty") from None
    signer = Signer(key_id=key_id(leaf.public_key()), subject=certificate_subject(leaf),
                    issuer=certificate_issuer(leaf))
    if not verify_signature(leaf.public_key(), blob.signature, blob.signed):
        raise Rejected("signature does not verify with the key of its certificate", signer)
    if content_problem:
        raise Rejected(content_problem, signer)
    reasons = []
    for kind, trust in (("keyless", settings.keyless), ("pki", settings.pki)):
        if trust is None:
            continue
        rekor_keys = settings.keyless.rekor_keys if kind == "keyless" and settings.keyless else settings.rekor_keys
        tlog, tlog_problem = log_entry(blob, leaf.public_key(), rekor_keys)
        if tlog is None and (kind == "keyless" or settings.tlog == "required"):
            # A short-lived Fulcio certificate can only be checked at the time the log vouches for.
            reasons.append(tlog_problem or (NO_BUNDLE if kind == "pki" else
                                            "keyless signature without a verified transparency log entry"))
            continue
        at = integrated_at(tlog) if tlog else datetime.now(UTC)
        try:
            verify_chain(leaf, [*trust.intermediates, *chain], trust.roots, at)
        except CertificateError as exc:
            reasons.append(str(exc))
            continue
        problem = identity_problem(trust.identities, signer.subject, signer.issuer)
        if problem:
            reasons.append(problem)
            continue
        return Authenticated(signer, tlog)
    raise Rejected("; ".join(reasons), signer)


def log_entry(blob: SignedBlob, signer_key: PublicKeyTypes,
              rekor_keys: Sequence[PublicKey]) -> tuple[TlogEntry | None, str]:
    """The verified Rekor entry, or None and why not (empty reason when there is no bundle at all)."""
    if not blob.bundle:
        return None, ""
    if not rekor_keys:
        return None, "a Rekor bundle is attached but the authority has no rekorKeys to check it"
    try:
        return verify_bundle(blob.bundle, blob.signature, blob.signed, signer_key, rekor_keys), ""
    except TlogError as exc:
        return None, f"transparency log entry rejected: {exc}"
