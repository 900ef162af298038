"""What a verifier is, and the values it returns: one result per signature or attestation, with a reason.

A rejected signature is a value, not an exception (see sigstore-python): the facts carry every reason so a
user can see why an image did not pass. Exceptions are for operational trouble only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from provider.config import Authority
from provider.stores.base import ResolvedImage, SignatureArtifact, Store


@dataclass(frozen=True)
class Signer:
    key_id: str = ""
    subject: str = ""
    issuer: str = ""


@dataclass(frozen=True)
class TlogEntry:
    log_index: int
    integrated_time: str  # RFC 3339; empty for Rekor v2 entries, which record no time


@dataclass(frozen=True)
class SignatureResult:
    """One signature checked against one authority."""

    format: str  # cosign | notation | simplesigning | sigstore-bundle
    artifact: str  # digest of the manifest that carried the signature
    authority: str
    verified: bool
    reason: str = ""
    signer: Signer = field(default_factory=Signer)
    signed_at: str | None = None
    tlog: TlogEntry | None = None
    timestamp: str | None = None
    warnings: tuple[str, ...] = ()
    artifact_type: str = ""
    extensions: Mapping[str, Any] = field(default_factory=dict)
    # Per validation (notation: integrity, authenticity, …): passed | failed | logged | skipped.
    checks: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtifactTime:
    """When a signed document was made, taken from its signature or manifest (for documents that do not say).

    `source`: `timestamp` (RFC 3161) or `tlog` (Rekor integrated time), both authenticated; `signingTime`
    (notation, asserted by the signer) or `annotation` (the manifest's `org.opencontainers.image.created`).
    """

    time: str
    source: str
    authenticated: bool


def authenticated_time(tlog: TlogEntry | None, timestamp: str | None) -> ArtifactTime | None:
    """The time a timestamp authority (RFC 3161, first) or Rekor (integrated time) vouches a signature existed."""
    if timestamp:
        return ArtifactTime(timestamp, "timestamp", True)
    if tlog and tlog.integrated_time:
        return ArtifactTime(tlog.integrated_time, "tlog", True)
    return None


@dataclass(frozen=True)
class AttestationResult:
    predicate_type: str
    authority: str
    verified: bool
    reason: str = ""
    artifact: str = ""
    predicate: Any = None
    # The whole predicate of a verified statement, for content summaries (`predicate` may be capped).
    statement_predicate: Any = field(default=None, compare=False, repr=False)
    # Verified only because notation's audit level logs a failed authenticity check.
    audit_level: bool = False
    signed_time: ArtifactTime | None = None


@dataclass(frozen=True)
class VerifierOutcome:
    signatures: tuple[SignatureResult, ...] = ()
    attestations: tuple[AttestationResult, ...] = ()


class Verifier(Protocol):
    """The plug-in point for a signature format."""

    name: str

    def applies_to(self, authority: Authority) -> bool:
        """True when the authority has trust material for this verifier."""
        ...

    def verify(self, image: ResolvedImage, artifacts: Sequence[SignatureArtifact],
               authorities: Sequence[Authority], store: Store, deadline: float) -> VerifierOutcome:
        """Check every artifact of this verifier's format against every given authority."""
        ...
