"""Sigstore bundles attached as OCI referrers (cosign v3's default): verified with sigstore-python.

sigstore-python checks the bundle completely offline against a `trusted_root.json`: the Fulcio chain at
the log's time, the transparency-log entry (inclusion proof or promise), the signed timestamp evidence and
the DSSE signature. We add the identity policy (exact, or cosign's unanchored RE2 regexps) and the image
checks: the in-toto subject must be this digest; predicate `https://sigstore.dev/cosign/sign/v1` is a signature,
anything else an attestation.

Rekor v1 entries carry an integrated time; Rekor v2 entries do not (their proof is the inclusion proof and
signed checkpoint, which sigstore-python checks), so the signing time of a v2 bundle is its verified RFC 3161
timestamp. The verifier is built once per config generation (see `KeylessConfig.bundle_verifier`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from cryptography.x509 import Certificate
from sigstore import dsse
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError
from sigstore.models import Bundle
from sigstore.verify import Verifier
from sigstore.verify.verifier import TimestampSource, TimestampVerificationResult

from provider.config import Authority, Identity, KeylessConfig
from provider.facts import rfc3339
from provider.stores.base import ArtifactError, ResolvedImage, SignatureArtifact, Store
from provider.stores.manifests import descriptor_from_json
from provider.verifiers.base import (
    AttestationResult,
    SignatureResult,
    Signer,
    TlogEntry,
    VerifierOutcome,
    authenticated_time,
)
from provider.verifiers.certificates import (
    CertificateError,
    certificate_issuer,
    certificate_sans,
    certificate_subject,
    identity_problem,
    trusted_chain,
)
from provider.verifiers.certparse import check_serial_numbers
from provider.verifiers.dsse import (
    COSIGN_SIGN_PREDICATE,
    capped_predicate,
    parse_statement,
    subject_problem,
)
from provider.verifiers.keys import key_id
from provider.verifiers.rekor import LoggedSignature, TlogError, check_body
from provider.verifiers.signers import CERTIFICATE_PARSE_ERRORS

BUNDLE_ARTIFACT_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_MEDIA_TYPES = ("application/vnd.dev.sigstore.bundle.v0.3+json", "application/vnd.dev.sigstore.bundle+json")

log = logging.getLogger("sigwarden.verifiers.bundle")


class _IdentityPolicy:
    """sigstore-python policy adapter for our identities (cosign's CheckCertificatePolicy rule)."""

    def __init__(self, identities: Sequence[Identity]) -> None:
        self.identities = identities

    def verify(self, cert: Certificate) -> None:
        problem = identity_problem(self.identities, certificate_sans(cert), certificate_issuer(cert))
        if problem:
            raise VerificationError(problem)


class LibraryVerifier(Verifier):
    """sigstore-python's offline verifier, taking Rekor v1 `intoto` 0.0.2 entries as sigstore-go takes them.

    sigstore-python refuses the integrated time of any entry kind but dsse and hashedrekord 0.0.1; sigstore-go
    (`pkg/tlog/entry.go`, `pkg/verify/tlog.go`) accepts `intoto` 0.0.2 too, its time vouched for by the
    inclusion promise and its body bound by payload hash, signature and key. Every other kind is left to
    the library unchanged.
    """

    def _establish_time(self, bundle: Bundle) -> list[TimestampVerificationResult]:
        if not _is_intoto_v2(bundle):
            return super()._establish_time(bundle)
        times: list[TimestampVerificationResult] = []
        if bundle.verification_material.timestamp_verification_data:
            if not self._trusted_root.get_timestamp_authorities():
                raise VerificationError("the bundle has a signed timestamp but the trusted root no timestamp "
                                        "authority")
            times.extend(self._verify_timestamp_authority(bundle))
        entry = bundle.log_entry._inner
        if entry.integrated_time and entry.inclusion_promise:
            times.append(TimestampVerificationResult(source=TimestampSource.TRANSPARENCY_SERVICE,
                                                     time=datetime.fromtimestamp(entry.integrated_time, UTC)))
        return times

    def verify_dsse(self, bundle: Bundle, policy: Any) -> tuple[str, bytes]:
        if not _is_intoto_v2(bundle):
            return super().verify_dsse(bundle, policy)
        self._verify_common_signing_cert(bundle, policy)  # time, chain, SCT, identity, inclusion proof and promise
        envelope = bundle._dsse_envelope
        if envelope is None:
            raise VerificationError("an intoto log entry needs a DSSE envelope in the bundle")
        key = bundle.signing_certificate.public_key()
        dsse._verify(key, envelope)  # type: ignore[arg-type]
        inner = envelope._inner
        logged = LoggedSignature(inner.signatures[0].sig, b"", key, envelope.to_json().encode(), inner.payload)
        try:
            check_body(bundle.log_entry._inner.canonicalized_body, logged)
        except TlogError as exc:
            raise VerificationError(f"log entry does not match the bundle: {exc}") from None
        return inner.payload_type, inner.payload


def _is_intoto_v2(bundle: Bundle) -> bool:
    kind = bundle.log_entry._inner.kind_version
    return (kind.kind, kind.version) == ("intoto", "0.0.2")


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
                signature, attestation = self._isolated(image, artifact.descriptor.digest, bundle_or_reason,
                                                        authority)
                if signature is not None:
                    signatures.append(signature)
                if attestation is not None:
                    attestations.append(attestation)
        return VerifierOutcome(tuple(signatures), tuple(attestations))

    def _isolated(self, image: ResolvedImage, artifact: str, bundle: Bundle | str,
                  authority: Authority) -> tuple[SignatureResult | None, AttestationResult | None]:
        # A bundle is registry input: whatever the library raises on it is this bundle's result, never the image's.
        try:
            return self.check(image, artifact, bundle, authority)
        except Exception as exc:
            log.warning("Sigstore bundle %s could not be checked", artifact, exc_info=True)
            return SignatureResult("sigstore-bundle", artifact, authority.name, False,
                                   f"Sigstore bundle could not be checked: {type(exc).__name__}: {exc}",
                                   artifact_type=BUNDLE_ARTIFACT_TYPE), None

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
            data = store.fetch_blob(image.reference, layer, deadline)
        except ArtifactError as exc:
            return f"bundle could not be fetched: {exc}"
        return parse_bundle(data)

    def check(self, image: ResolvedImage, artifact: str, bundle: Bundle | str,
              authority: Authority) -> tuple[SignatureResult | None, AttestationResult | None]:
        """Verify one bundle for one authority: a signature result, or an attestation result."""
        def rejected(reason: str, signer: Signer | None = None) -> tuple[SignatureResult, None]:
            return SignatureResult("sigstore-bundle", artifact, authority.name, False, reason, signer or Signer(),
                                   artifact_type=BUNDLE_ARTIFACT_TYPE), None

        if isinstance(bundle, str):
            return rejected(bundle)
        keyless = authority.cosign.keyless if authority.cosign else None
        if keyless is None or keyless.bundle_verifier is None:
            return rejected(f"authority {authority.name} has no keyless trustedRoot to check Sigstore bundles")
        try:
            cert = bundle.signing_certificate
        except (SigstoreError, ValueError, AttributeError):
            return rejected("bundles signed with a bare public key are not supported (no certificate)")
        try:  # the key and extensions are parsed lazily
            check_serial_numbers(cert)
            signer = Signer(key_id=key_id(cert.public_key()), subject=certificate_subject(cert),
                            issuer=certificate_issuer(cert))
        except CERTIFICATE_PARSE_ERRORS as exc:
            return rejected(f"the bundle's signing certificate cannot be used: {exc}")
        verifier: Verifier = keyless.bundle_verifier
        try:
            payload_type, payload = verifier.verify_dsse(bundle, _IdentityPolicy(keyless.identities))
            statement = parse_statement(payload_type, payload)
            tlog, timestamp = signing_time(verifier, bundle)
            trust_problem = trust_window_problem(keyless, bundle, cert, tlog, timestamp)
        except (SigstoreError, ValueError) as exc:
            return rejected(f"Sigstore bundle rejected: {exc}", signer)
        if trust_problem:
            return rejected(f"Sigstore bundle rejected: {trust_problem}", signer)
        problem = subject_problem(statement, image.digest)
        if statement.predicate_type == COSIGN_SIGN_PREDICATE:
            return SignatureResult("sigstore-bundle", artifact, authority.name, not problem, problem, signer,
                                   signed_at=tlog.integrated_time or timestamp, tlog=tlog, timestamp=timestamp,
                                   artifact_type=BUNDLE_ARTIFACT_TYPE, checks={"sct": "passed"}), None
        return None, AttestationResult(statement.predicate_type, authority.name, not problem, problem, artifact,
                                       None if problem else capped_predicate(statement.predicate,
                                                                             self.max_predicate_bytes),
                                       None if problem else statement.predicate,
                                       signed_time=authenticated_time(tlog, timestamp))


def trust_window_problem(keyless: KeylessConfig, bundle: Bundle, cert: Certificate, tlog: TlogEntry,
                         timestamp: str | None) -> str:
    """What sigstore-go checks and sigstore-python does not: "" when every rule holds.

    At each verified time, the certificate must chain through one CA of the trusted root, inside that CA's
    `validFor` window, with that CA's own intermediates and EKU nesting (`FulcioCertificateAuthority.Verify`);
    the Rekor key must be valid at the integrated time (`VerifySET`).
    """
    for text in (t for t in (tlog.integrated_time, timestamp) if t):
        try:
            trusted_chain(cert, [], replace(keyless, roots=(), intermediates=()), _parse_time(text))
        except CertificateError as exc:
            return str(exc)
    if tlog.integrated_time:
        log_id = bundle.log_entry._inner.log_id.key_id.hex()
        key = next((k for k in keyless.rekor_keys if key_id(k.key) == log_id), None)
        if key is not None and not key.valid_at(_parse_time(tlog.integrated_time)):
            return f"Rekor key {key.origin} is not valid at the entry's integrated time {tlog.integrated_time}"
    return ""


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_bundle(data: bytes) -> Bundle | str:
    """The bundle, or why it is not one."""
    try:
        return Bundle.from_json(data)
    except Exception as exc:  # the library raises many types (ValueError, InvalidVersion, …) on bad input
        # pydantic's messages span lines and end in a help URL; a reason is one line.
        detail = " ".join(line.strip() for line in str(exc).splitlines() if "errors.pydantic.dev" not in line)
        return f"not a valid Sigstore bundle: {type(exc).__name__}: {detail}"


def signing_time(verifier: Verifier, bundle: Bundle) -> tuple[TlogEntry, str | None]:
    """The verified log entry and the earliest verified RFC 3161 time, for a bundle that already verified.

    Rekor v1 entries have an integrated time; Rekor v2 entries have none, and the timestamp authority's
    time is the signing time (sigstore-python requires one for them).
    """
    entry = bundle.log_entry._inner
    # The integrated time is only vouched for by an inclusion promise (the SET); without one it is ignored,
    # as sigstore-python ignores it.
    integrated = entry.integrated_time if entry.inclusion_promise else None
    try:
        integrated_time = rfc3339(datetime.fromtimestamp(int(integrated), UTC)) if integrated else ""
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"the log entry's integrated time {integrated} is not a usable time") from None
    # sigstore-python keeps the verified times to itself; ask it again for them rather than reading
    # the bundle's timestamps unverified (a bundle may carry one bad timestamp beside a good one).
    times = [t.time for t in verifier._establish_time(bundle) if t.source.name == "TIMESTAMP_AUTHORITY"]
    timestamp = rfc3339(min(times)) if times else None
    if not integrated_time and timestamp is None:
        raise ValueError("the log entry has no integrated time and the bundle no verified timestamp")
    return TlogEntry(int(entry.log_index), integrated_time), timestamp
