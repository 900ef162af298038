"""Sigstore bundles attached as OCI referrers (cosign v3's default): verified with sigstore-python.

sigstore-python checks the bundle completely offline against a `trusted_root.json`: the Fulcio chain at
the log's time, the transparency-log entry (inclusion proof or promise), the signed timestamp evidence and
the DSSE signature. We add the identity policy (exact or anchored regexps) and the image checks: the
in-toto subject must be this digest; predicate `https://sigstore.dev/cosign/sign/v1` is a signature,
anything else an attestation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from cryptography.x509 import Certificate
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier

from provider.config import Authority, Identity
from provider.facts import rfc3339
from provider.stores.base import ArtifactError, ResolvedImage, SignatureArtifact, Store
from provider.stores.manifests import descriptor_from_json
from provider.verifiers.base import AttestationResult, SignatureResult, Signer, TlogEntry, VerifierOutcome
from provider.verifiers.certificates import certificate_issuer, certificate_subject, identity_problem
from provider.verifiers.dsse import (
    COSIGN_SIGN_PREDICATE,
    capped_predicate,
    parse_statement,
    subject_problem,
)
from provider.verifiers.keys import key_id

BUNDLE_ARTIFACT_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_MEDIA_TYPES = ("application/vnd.dev.sigstore.bundle.v0.3+json", "application/vnd.dev.sigstore.bundle+json")


@lru_cache(maxsize=16)
def _verifier(trusted_root: Path, _mtime: float) -> Verifier:
    return Verifier(trusted_root=TrustedRoot.from_file(str(trusted_root)))


class _IdentityPolicy:
    """sigstore-python policy adapter for our identities (anchored regexps, subject and issuer)."""

    def __init__(self, identities: Sequence[Identity]) -> None:
        self.identities = identities

    def verify(self, cert: Certificate) -> None:
        problem = identity_problem(self.identities, certificate_subject(cert), certificate_issuer(cert))
        if problem:
            raise VerificationError(problem)


class SigstoreBundleVerifier:
    name = "sigstore-bundle"

    def __init__(self, max_predicate_bytes: int = 64 * 1024) -> None:
        self.max_predicate_bytes = max_predicate_bytes

    def applies_to(self, authority: Authority) -> bool:
        return bool(authority.cosign and authority.cosign.keyless and authority.cosign.keyless.trusted_root)

    def verify(self, image: ResolvedImage, artifacts: Sequence[SignatureArtifact],
               authorities: Sequence[Authority], store: Store, deadline: float) -> VerifierOutcome:
        signatures: list[SignatureResult] = []
        attestations: list[AttestationResult] = []
        for artifact in artifacts:
            if artifact.source != "referrers" or artifact.descriptor.artifact_type not in ("", BUNDLE_ARTIFACT_TYPE):
                continue
            bundle_or_reason = self._bundle(image, artifact, store, deadline)
            if bundle_or_reason is None:
                continue  # a referrer of another kind
            for authority in authorities:
                signature, attestation = self.check(image, artifact.descriptor.digest, bundle_or_reason, authority)
                if signature is not None:
                    signatures.append(signature)
                if attestation is not None:
                    attestations.append(attestation)
        return VerifierOutcome(tuple(signatures), tuple(attestations))

    def _bundle(self, image: ResolvedImage, artifact: SignatureArtifact, store: Store,
                deadline: float) -> Bundle | str | None:
        try:
            manifest = artifact.manifest or store.fetch_manifest(image.reference, artifact.descriptor, deadline)
        except ArtifactError as exc:
            return f"bundle manifest could not be fetched: {exc}"
        if manifest.get("artifactType") != BUNDLE_ARTIFACT_TYPE:
            return None
        layers = [d for d in map(descriptor_from_json, manifest.get("layers") or []) if d is not None]
        layer = next((d for d in layers if d.media_type in BUNDLE_MEDIA_TYPES), None)
        if layer is None:
            return "bundle manifest has no bundle layer"
        try:
            return Bundle.from_json(store.fetch_blob(image.reference, layer, deadline))
        except ArtifactError as exc:
            return f"bundle could not be fetched: {exc}"
        except (SigstoreError, ValueError) as exc:
            return f"not a valid Sigstore bundle: {exc}"

    def check(self, image: ResolvedImage, artifact: str, bundle: Bundle | str,
              authority: Authority) -> tuple[SignatureResult | None, AttestationResult | None]:
        """Verify one bundle for one authority: a signature result, or an attestation result."""
        def rejected(reason: str, signer: Signer | None = None) -> tuple[SignatureResult, None]:
            return SignatureResult("sigstore-bundle", artifact, authority.name, False, reason, signer or Signer(),
                                   artifact_type=BUNDLE_ARTIFACT_TYPE), None

        if isinstance(bundle, str):
            return rejected(bundle)
        keyless = authority.cosign.keyless if authority.cosign else None
        if keyless is None or keyless.trusted_root is None:
            return rejected(f"authority {authority.name} has no keyless trustedRoot to check Sigstore bundles")
        try:
            cert = bundle.signing_certificate
        except (SigstoreError, ValueError, AttributeError):
            return rejected("bundles signed with a bare public key are not supported (no certificate)")
        signer = Signer(key_id=key_id(cert.public_key()), subject=certificate_subject(cert),
                        issuer=certificate_issuer(cert))
        try:
            verifier = _verifier(keyless.trusted_root, keyless.trusted_root.stat().st_mtime)
            payload_type, payload = verifier.verify_dsse(bundle, _IdentityPolicy(keyless.identities))
            statement = parse_statement(payload_type, payload)
        except (SigstoreError, ValueError) as exc:
            return rejected(f"Sigstore bundle rejected: {exc}", signer)
        problem = subject_problem(statement, image.digest)
        entry = bundle.log_entry._inner
        tlog = TlogEntry(int(entry.log_index), rfc3339(datetime.fromtimestamp(int(entry.integrated_time), UTC)))
        if statement.predicate_type == COSIGN_SIGN_PREDICATE:
            return SignatureResult("sigstore-bundle", artifact, authority.name, not problem, problem, signer,
                                   signed_at=tlog.integrated_time, tlog=tlog, artifact_type=BUNDLE_ARTIFACT_TYPE), None
        return None, AttestationResult(statement.predicate_type, authority.name, not problem, problem, artifact,
                                       None if problem else capped_predicate(statement.predicate,
                                                                             self.max_predicate_bytes))


