"""cosign attestations attached under `sha256-<hex>.att`: DSSE envelopes signed like cosign signatures."""

from __future__ import annotations

from collections.abc import Sequence

from provider.config import Authority
from provider.stores.base import ArtifactError, ResolvedImage, SignatureArtifact, Store
from provider.stores.manifests import descriptor_from_json
from provider.verifiers.base import AttestationResult, VerifierOutcome, authenticated_time
from provider.verifiers.cosign import BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION
from provider.verifiers.dsse import capped_predicate, parse_envelope, parse_statement, subject_problem
from provider.verifiers.signers import Rejected, SignedBlob, authenticate

DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"
MAX_LAYERS = 32


class CosignAttestationVerifier:
    """`cosign verify-attestation` for the legacy `.att` tag: every layer is one DSSE envelope."""

    name = "cosign-attestation"

    def __init__(self, max_predicate_bytes: int = 64 * 1024) -> None:
        self.max_predicate_bytes = max_predicate_bytes

    def applies_to(self, authority: Authority) -> bool:
        return authority.cosign is not None

    def verify(self, image: ResolvedImage, artifacts: Sequence[SignatureArtifact],
               authorities: Sequence[Authority], store: Store, deadline: float) -> VerifierOutcome:
        results: list[AttestationResult] = []
        for artifact in artifacts:
            if artifact.source != "cosign-attestation-tag" or artifact.manifest is None:
                continue
            for entry in (artifact.manifest.get("layers") or [])[:MAX_LAYERS]:
                results.extend(self._layer(image, artifact.descriptor.digest, entry, authorities, store, deadline))
        return VerifierOutcome(attestations=tuple(results))

    def _layer(self, image: ResolvedImage, artifact: str, entry: object, authorities: Sequence[Authority],
               store: Store, deadline: float) -> list[AttestationResult]:
        def everyone(reason: str, predicate_type: str = "") -> list[AttestationResult]:
            return [AttestationResult(predicate_type, a.name, False, reason, artifact) for a in authorities]

        descriptor = descriptor_from_json(entry)
        if descriptor is None or descriptor.media_type != DSSE_LAYER:
            return everyone("attestation layer is not a DSSE envelope descriptor")
        try:
            raw = store.fetch_blob(image.reference, descriptor, deadline)
            envelope = parse_envelope(raw)
            statement = parse_statement(envelope.payload_type, envelope.payload)
        except ArtifactError as exc:
            return everyone(f"envelope could not be fetched: {exc}")
        except ValueError as exc:
            return everyone(str(exc))
        content = subject_problem(statement, image.digest)
        notes = descriptor.annotations
        results = []
        for authority in authorities:
            assert authority.cosign is not None
            reasons = []
            for signature in envelope.signatures:
                blob = SignedBlob(envelope.signed, signature, notes.get(CERTIFICATE_ANNOTATION, ""),
                                  notes.get(CHAIN_ANNOTATION, ""), notes.get(BUNDLE_ANNOTATION, ""),
                                  envelope=raw, payload=envelope.payload)
                try:
                    outcome = authenticate(blob, authority.name, authority.cosign, content)
                except Rejected as rejected:
                    reasons.append(rejected.reason)
                    continue
                results.append(AttestationResult(statement.predicate_type, authority.name, True, "", artifact,
                                                 capped_predicate(statement.predicate, self.max_predicate_bytes),
                                                 statement.predicate,
                                                 signed_time=authenticated_time(outcome.tlog, None)))
                break
            else:
                results.append(AttestationResult(statement.predicate_type, authority.name, False,
                                                 "; ".join(dict.fromkeys(reasons)), artifact))
        return results
