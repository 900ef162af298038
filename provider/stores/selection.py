"""Which discovered artifacts are signatures, and which of them are checked within `maxSignatures`.

Only signature artifacts count toward `maxSignatures`: referrers whose artifact type names a Notary Project
signature or a Sigstore bundle (or that give no type, which cannot be told apart without fetching them), and
cosign's signature and attestation tags. Content referrers (SARIF reports, SBOMs, VEX documents: see
provider.content.kinds) are kept apart, at most `MAX_CONTENT_REFERRERS`, and never counted; other referrers
are dropped.

Stores enumerate cosign's tags and up to `DISCOVERY_FACTOR` times the limit of referrers; the engine checks
`maxSignatures` of them, the tags first and the referrers a cheap look can already reject last: a notation
signature manifest names the thumbprints of its certificate chain in an annotation, and one naming no
certificate of any trust store in scope cannot verify. Anyone with push rights can still copy a trusted
thumbprint into fake signatures; pushing more than `maxSignatures` of those pushes a valid signature out,
which the facts then say (`signatureLimit`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.serialization import Encoding

from provider.config import Authority
from provider.content.kinds import ARTIFACT_PURPOSES
from provider.stores.base import SignatureArtifact

NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
THUMBPRINTS_ANNOTATION = "io.cncf.notary.x509chain.thumbprint#S256"
# How many signature artifacts a store lists per image, as a multiple of maxSignatures.
DISCOVERY_FACTOR = 8
MAX_CONTENT_REFERRERS = 16


@dataclass(frozen=True)
class Selection:
    """The artifacts to check, and how many signature artifacts were found but left unchecked."""

    artifacts: tuple[SignatureArtifact, ...]
    found: int
    limit: int

    @property
    def omitted(self) -> int:
        return self.found - len(self.artifacts)


def artifact_type(artifact: SignatureArtifact) -> str:
    """The artifact type from the descriptor, else from the manifest discovery already read."""
    if artifact.descriptor.artifact_type:
        return artifact.descriptor.artifact_type
    manifest = artifact.manifest or {}
    config = manifest.get("config")
    kind = manifest.get("artifactType") or (config.get("mediaType") if isinstance(config, dict) else "")
    return kind if isinstance(kind, str) else ""


def is_signature(artifact: SignatureArtifact) -> bool:
    if artifact.source != "referrers":
        return True  # cosign's .sig / .att tags hold signatures by construction
    kind = artifact_type(artifact)
    return kind in ("", NOTARY_SIGNATURE) or kind.startswith(SIGSTORE_BUNDLE_PREFIX)


def signatures_only(found: Iterable[SignatureArtifact], max_signatures: int) -> list[SignatureArtifact]:
    """What a store returns from discovery: signature artifacts only, cosign's tags first (one each, already
    read), then referrers up to DISCOVERY_FACTOR times the limit."""
    signatures = [a for a in found if is_signature(a)]
    tags = [a for a in signatures if a.source != "referrers"]
    referrers = [a for a in signatures if a.source == "referrers"]
    return tags + referrers[: max(1, max_signatures) * DISCOVERY_FACTOR]


def is_content(artifact: SignatureArtifact) -> bool:
    """A referrer whose artifact type names a report, SBOM or VEX document sigwarden understands."""
    return artifact.source == "referrers" and artifact_type(artifact) in ARTIFACT_PURPOSES


def discovered(found: Sequence[SignatureArtifact], max_signatures: int) -> list[SignatureArtifact]:
    """What a store returns from discovery: `signatures_only`, then the first content referrers."""
    content = [a for a in found if is_content(a)][:MAX_CONTENT_REFERRERS]
    return signatures_only(found, max_signatures) + content


def content_referrers(found: Iterable[SignatureArtifact]) -> list[SignatureArtifact]:
    return [a for a in found if is_content(a)]


def trusted_thumbprints(authorities: Iterable[Authority]) -> frozenset[str]:
    """SHA-256 thumbprints (hex) of every certificate in the notation trust stores of `authorities`."""
    return frozenset(hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
                     for authority in authorities if authority.notation is not None
                     for certs in authority.notation.trust_stores.values() for cert in certs)


def _signer_unknown(artifact: SignatureArtifact, trusted: frozenset[str]) -> bool:
    """True when the artifact's own thumbprint annotation rules out every trusted certificate."""
    if artifact.source != "referrers" or artifact_type(artifact) != NOTARY_SIGNATURE:
        return False
    annotations = dict((artifact.manifest or {}).get("annotations") or {}) if artifact.manifest else {}
    raw = artifact.descriptor.annotations.get(THUMBPRINTS_ANNOTATION) or annotations.get(THUMBPRINTS_ANNOTATION)
    if not isinstance(raw, str):
        return False
    try:
        thumbprints = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    if not isinstance(thumbprints, list) or not thumbprints or not all(isinstance(t, str) for t in thumbprints):
        return False  # no usable hint: the signature is looked at properly
    return not {t.lower() for t in thumbprints} & trusted


def select(found: Sequence[SignatureArtifact], max_signatures: int,
           authorities: Sequence[Authority] = ()) -> Selection:
    """Signature artifacts to check, at most `max_signatures`; ones with an untrusted signer go last."""
    signatures = [a for a in found if is_signature(a)]
    trusted = trusted_thumbprints(authorities)
    # Stable, discovery order among equals: cosign's tags (referrers cannot push them out), then referrers,
    # those whose signer is ruled out last.
    ordered = sorted(signatures, key=lambda a: (a.source == "referrers", bool(trusted) and _signer_unknown(a, trusted)))
    return Selection(tuple(ordered[: max(0, max_signatures)]), len(signatures), max_signatures)
