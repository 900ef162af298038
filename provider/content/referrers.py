"""Content documents attached as OCI referrers (`oras attach`, then `notation sign` on the referrer).

Such a document counts only when a signature over the referrer manifest itself verifies (a Notary Project
signature, or any other format sigwarden verifies, found the same way as an image's); the referrer's
`subject` must be this image's digest, and its one layer must carry the artifact type's own media type.
Each referrer gives one result per checking authority, in the shape of an attestation result, so the
content summary treats both the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime

from provider.stores.base import ArtifactError, ResolvedImage, SignatureArtifact, Store
from provider.stores.manifests import descriptor_from_json
from provider.stores.selection import artifact_type
from provider.verifiers.base import ArtifactTime, AttestationResult, SignatureResult, authenticated_time
from provider.verifiers.limits import load_json

CREATED = "org.opencontainers.image.created"
# A date-time with a zone, as Rego's time.parse_rfc3339_ns reads it.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

# Checks the signatures attached to a manifest (the referrer) and returns them, per authority.
SignatureCheck = Callable[[ResolvedImage], Sequence[SignatureResult]]


def check_referrer(image: ResolvedImage, artifact: SignatureArtifact, store: Store, signatures: SignatureCheck,
                   deadline: float) -> list[AttestationResult]:
    kind = artifact_type(artifact)
    digest = artifact.descriptor.digest

    def failed(reason: str) -> list[AttestationResult]:
        return [AttestationResult(kind, "", False, reason, digest)]

    try:
        manifest = artifact.manifest or store.fetch_manifest(image.reference, artifact.descriptor, deadline)
    except ArtifactError as exc:
        return failed(f"referrer manifest could not be fetched: {exc}")
    subject = descriptor_from_json(manifest.get("subject"))
    if subject is None or subject.digest != image.digest:
        return failed(f"referrer's subject is {subject.digest if subject else 'missing'}, not {image.digest}")
    layers = [d for d in map(descriptor_from_json, manifest.get("layers") or []) if d is not None]
    if len(layers) != 1 or layers[0].media_type != kind:
        shown = ", ".join(d.media_type for d in layers[:3]) or "none"
        return failed(f"a {kind} referrer must have one layer of that media type (layers: {shown})")
    referrer = ResolvedImage(image.reference.with_digest(digest, keep_tag=False), digest,
                             artifact.descriptor.media_type, artifact.descriptor.size, b"")
    checked = signatures(referrer)
    if not checked:
        return failed("not signed: no signature on the referrer")
    if not any(s.verified for s in checked):
        return [AttestationResult(kind, s.authority, False, s.reason, digest) for s in checked]
    try:
        document = load_json(store.fetch_blob(image.reference, layers[0], deadline), kind)
    except (ArtifactError, ValueError) as exc:
        return failed(f"signed, but the document could not be read: {exc}")
    created = manifest.get("annotations", {}).get(CREATED) if isinstance(manifest.get("annotations"), dict) else None
    return [AttestationResult(kind, s.authority, s.verified, s.reason, digest, None,
                              document if s.verified else None, s.checks.get("authenticity") == "logged",
                              signature_time(s, created) if s.verified else None) for s in checked]


def signature_time(signature: SignatureResult, created: object) -> ArtifactTime | None:
    """When a signed referrer was made, for documents without a time of their own (Trivy's and Grype's SARIF):
    an RFC 3161 timestamp or a Rekor integrated time over its signature (authenticated), else the notation
    signing time (asserted by the signer), else the referrer manifest's `org.opencontainers.image.created`
    annotation (what Ratify reads)."""
    authenticated = authenticated_time(signature.tlog, signature.timestamp)
    if authenticated is not None:
        return authenticated
    if signature.format == "notation" and signature.signed_at:
        return ArtifactTime(signature.signed_at, "signingTime", False)
    if isinstance(created, str) and _is_rfc3339(created):
        return ArtifactTime(created, "annotation", False)
    return None


def _is_rfc3339(value: str) -> bool:
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True

