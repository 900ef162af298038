"""`notation verify` for referrers of type `application/vnd.cncf.notary.signature`.

For each signature and each authority with a `notation:` section: pick the trust policy statement for the
repository, then run the Notary Project validations — integrity, authenticity, authentic timestamp,
expiry, revocation — each enforced, logged (a warning in the facts) or skipped as the statement's level
and overrides say.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from provider.config import Authority, NotationAuthority
from provider.facts import rfc3339
from provider.stores.base import ArtifactError, ResolvedImage, SignatureArtifact, Store
from provider.stores.fetch import Outbound
from provider.stores.manifests import descriptor_from_json
from provider.verifiers.base import SignatureResult, Signer, VerifierOutcome
from provider.verifiers.notation.chain import ChainError, trusted_root, validate_structure
from provider.verifiers.notation.envelope import (
    COSE_MEDIA_TYPE,
    JWS_MEDIA_TYPE,
    SCHEME_SIGNING_AUTHORITY,
    Envelope,
    EnvelopeError,
    parse_envelope,
)
from provider.verifiers.notation.revocation import RevocationChecker
from provider.verifiers.notation.timestamp import Timestamp, TimestampError, verify_timestamp
from provider.verifiers.notation.trustpolicy import TrustPolicy

log = logging.getLogger("sigwarden.notation")

NOTARY_ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
ENVELOPE_MEDIA_TYPES = (JWS_MEDIA_TYPE, COSE_MEDIA_TYPE)
_ONE_LAYER = ("a notation signature manifest must have exactly one layer of type application/jose+json or "
              "application/cose")


@dataclass(frozen=True)
class SignatureBlob:
    """One notation signature as found next to an image: the envelope bytes and its media type."""

    artifact: str
    media_type: str
    data: bytes = b""
    problem: str = ""


@dataclass
class _Outcome:
    """Validation results for one envelope under one trust policy statement."""

    failure: str = ""
    warnings: list[str] = field(default_factory=list)
    timestamp: Timestamp | None = None
    # check → passed | failed | logged | skipped; checks after an enforced failure are not run and not listed.
    checks: dict[str, str] = field(default_factory=dict)

    def apply(self, check: str, action: str, problem: str | Callable[[], str]) -> None:
        """Run one validation under its action; a callable problem is only evaluated when the check runs."""
        if self.failure:
            return
        if action == "skip":
            self.checks[check] = "skipped"
            return
        reason = problem() if callable(problem) else problem
        if not reason:
            self.checks[check] = "passed"
        elif action == "enforce":
            self.failure = reason
            self.checks[check] = "failed"
        else:
            self.warnings.append(reason)
            self.checks[check] = "logged"


class NotationVerifier:
    name = "notation"

    def __init__(self, revocation: RevocationChecker | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.revocation = revocation or RevocationChecker()
        self.clock = clock

    def applies_to(self, authority: Authority) -> bool:
        return authority.notation is not None

    def verify(self, image: ResolvedImage, artifacts: Sequence[SignatureArtifact],
               authorities: Sequence[Authority], store: Store, deadline: float) -> VerifierOutcome:
        results = []
        # Revocation URLs are chosen by the signer: fetched under the store's egress policy, within the job.
        outbound = getattr(store, "signer_outbound", None)
        for blob in self._signatures(image, artifacts, store, deadline):
            for authority in authorities:
                assert authority.notation is not None
                results.append(self.isolated_check(image, blob, authority.name, authority.notation,
                                                   deadline=deadline, outbound=outbound))
        return VerifierOutcome(signatures=tuple(results))

    def isolated_check(self, image: ResolvedImage, blob: SignatureBlob, authority: str,
                       settings: NotationAuthority, deadline: float | None = None,
                       outbound: Outbound | None = None) -> SignatureResult:
        """`check`, with anything unforeseen in one signature kept to that signature (never the whole image)."""
        try:
            return self.check(image, blob, authority, settings, deadline=deadline, outbound=outbound)
        except Exception as exc:  # registry content must never turn the image into INTERNAL
            log.exception("notation signature %s of %s could not be checked", blob.artifact, image.digest)
            return SignatureResult("notation", blob.artifact, authority, False,
                                   f"signature could not be checked ({type(exc).__name__}); it is not trusted",
                                   artifact_type=NOTARY_ARTIFACT_TYPE)

    def _signatures(self, image: ResolvedImage, artifacts: Sequence[SignatureArtifact], store: Store,
                    deadline: float) -> list[SignatureBlob]:
        blobs = []
        for artifact in artifacts:
            if artifact.source != "referrers" or artifact.descriptor.artifact_type not in ("", NOTARY_ARTIFACT_TYPE):
                continue
            digest = artifact.descriptor.digest
            try:
                manifest = artifact.manifest or store.fetch_manifest(image.reference, artifact.descriptor, deadline)
            except ArtifactError as exc:
                if artifact.descriptor.artifact_type == NOTARY_ARTIFACT_TYPE:
                    blobs.append(SignatureBlob(digest, "", problem=f"signature manifest could not be fetched: {exc}"))
                continue
            config = manifest.get("config")
            config_type = config.get("mediaType") if isinstance(config, dict) else None
            if NOTARY_ARTIFACT_TYPE not in (manifest.get("artifactType"), config_type):
                continue
            layers = [d for d in map(descriptor_from_json, manifest.get("layers") or []) if d is not None]
            if len(layers) != 1 or layers[0].media_type not in ENVELOPE_MEDIA_TYPES:
                blobs.append(SignatureBlob(digest, "", problem=_ONE_LAYER))
                continue
            try:
                data = store.fetch_blob(image.reference, layers[0], deadline)
            except ArtifactError as exc:
                problem = f"envelope could not be fetched: {exc}"
                blobs.append(SignatureBlob(digest, layers[0].media_type, problem=problem))
                continue
            blobs.append(SignatureBlob(digest, layers[0].media_type, data))
        return blobs

    def check(self, image: ResolvedImage, blob: SignatureBlob, authority: str, settings: NotationAuthority,
              deadline: float | None = None, outbound: Outbound | None = None) -> SignatureResult:
        """All notation validations of one signature for one authority (revocation fetched through `outbound`,
        under `deadline`)."""
        def result(verified: bool, reason: str, signer: Signer | None = None, envelope: Envelope | None = None,
                   outcome: _Outcome | None = None) -> SignatureResult:
            extensions = {}
            if envelope is not None:
                extensions = {"Issuer": envelope.leaf.issuer.rfc4514_string(),
                              "SN": envelope.leaf.subject.rfc4514_string(), "envelope": envelope.format}
            signed = envelope.authentic_signing_time or envelope.signing_time if envelope else None
            stamp = outcome.timestamp if outcome else None
            return SignatureResult("notation", blob.artifact, authority, verified, reason, signer or Signer(),
                                   signed_at=rfc3339(signed) if signed else None,
                                   timestamp=rfc3339(stamp.time) if stamp else None,
                                   warnings=tuple(outcome.warnings) if outcome else (),
                                   artifact_type=NOTARY_ARTIFACT_TYPE, extensions=extensions,
                                   checks=dict(outcome.checks) if outcome else {})

        policy = settings.trust_policy.policy_for(image.reference.name)
        if policy is None:
            return result(False, f"artifact {image.reference.name} has no applicable trust policy statement")
        if policy.level == "skip":
            return result(False, f'trust policy statement "{policy.name}" skips verification for this repository')
        if blob.problem:
            return result(False, blob.problem)
        try:
            envelope = parse_envelope(blob.media_type, blob.data)
        except EnvelopeError as exc:
            return result(False, f"malformed signature envelope: {exc}")
        leaf = envelope.leaf
        signer = Signer(key_id=hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest(),
                        subject=leaf.subject.rfc4514_string(), issuer=leaf.issuer.rfc4514_string())
        outcome = self.validate(image, envelope, policy, settings, deadline=deadline, outbound=outbound)
        if outcome.failure:
            return result(False, outcome.failure, signer, envelope, outcome)
        return result(True, "", signer, envelope, outcome)

    def validate(self, image: ResolvedImage, envelope: Envelope, policy: TrustPolicy, settings: NotationAuthority,
                 deadline: float | None = None, outbound: Outbound | None = None) -> _Outcome:
        outcome = _Outcome()
        now = self.clock()
        # Integrity: always enforced. Like notation-go (the envelope's Verify), it covers the certificate chain's
        # structure and the Notary Project's certificate requirements, not only the signature.
        outcome.apply("integrity", "enforce", lambda: envelope.check_signature() or _target_problem(image, envelope)
                      or _structure_problem(envelope))
        if outcome.failure:
            return outcome
        # Like notation-go: a signature that asks for a verification plugin cannot be verified without it,
        # whatever the level says.
        if envelope.plugin_problem:
            outcome.failure = envelope.plugin_problem
            outcome.checks["verificationPlugin"] = "failed"
            return outcome
        # Authenticity: a chain to a trust store of the scheme's type, and a trusted identity.
        store_type = "signingAuthority" if envelope.signing_scheme == SCHEME_SIGNING_AUTHORITY else "ca"
        roots = [c for name in policy.trust_stores if name.startswith(f"{store_type}:")
                 for c in settings.trust_stores.get(name, ())]
        authenticity = ""
        anchored = False  # the chain verified to a configured trust anchor
        if not roots:
            authenticity = f'trust policy statement "{policy.name}" has no {store_type} trust store for this signature'
        else:
            try:
                trusted_root(envelope.certificates, roots, at=None)
                anchored = True
            except ChainError as exc:
                authenticity = f"signature is not produced by a trusted signer: {exc}"
        if not authenticity and not policy.identity_matches(envelope.leaf.subject):
            authenticity = (f"signing certificate subject {envelope.leaf.subject.rfc4514_string()} is not a trusted "
                            f'identity of trust policy statement "{policy.name}"')
        outcome.apply("authenticity", policy.actions["authenticity"], authenticity)
        if outcome.failure:
            return outcome
        # Expiry of the signature itself.
        expiry = envelope.expiry
        outcome.apply("expiry", policy.actions["expiry"],
                      f"signature expired at {rfc3339(expiry)}" if expiry is not None and expiry < now else "")
        if outcome.failure:
            return outcome
        outcome.apply("authenticTimestamp", policy.actions["authenticTimestamp"],
                      lambda: self._authentic_time(envelope, policy, settings, outcome, now, deadline, outbound))
        if outcome.failure:
            return outcome
        if not anchored and policy.actions["revocation"] != "skip":
            # Deliberately unlike notation-go at level audit: an unanchored chain's URLs are the signer's
            # choice, so nothing is fetched for it.
            outcome.checks["revocation"] = "skipped"
            outcome.warnings.append("revocation not checked: the certificate chain does not verify to a trust anchor")
            return outcome
        outcome.apply("revocation", policy.actions["revocation"],
                      lambda: self.revocation.problem(envelope.certificates, deadline=deadline, outbound=outbound))
        return outcome

    def _authentic_time(self, envelope: Envelope, policy: TrustPolicy, settings: NotationAuthority,
                        outcome: _Outcome, now: datetime, deadline: float | None,
                        outbound: Outbound | None) -> str:
        """The signing certificates must be valid at a time the verifier can trust (notation-go
        `verifyAuthenticTimestamp` and `verifyTimestamp`)."""
        chain = envelope.certificates
        if envelope.signing_scheme == SCHEME_SIGNING_AUTHORITY:
            return _validity_problem(chain, envelope.authentic_signing_time, "the authentic signing time")
        tsa_stores = [name for name in policy.trust_stores if name.startswith("tsa:")]
        # A timestamp is required when the statement names a tsa store, unless verifyTimestamp is
        # afterCertExpiry and no certificate of the chain has expired yet; otherwise the chain must be valid now.
        expired = any(now > cert.not_valid_after_utc for cert in chain)
        if not tsa_stores or (policy.verify_timestamp == "afterCertExpiry" and not expired):
            return _validity_problem(chain, now, "verification time")
        if not envelope.timestamp_token:
            return (f'no timestamp countersignature was found in the signature envelope (trust policy statement '
                    f'"{policy.name}" names a tsa trust store and verifyTimestamp is {policy.verify_timestamp})')
        tsa_roots = [c for name in tsa_stores for c in settings.trust_stores.get(name, ())]
        try:
            outcome.timestamp = verify_timestamp(envelope.timestamp_token, envelope.signature, tsa_roots)
        except TimestampError as exc:
            return f"timestamp countersignature rejected: {exc}"
        for moment in (outcome.timestamp.earliest, outcome.timestamp.latest):
            problem = _validity_problem(chain, moment, "the authentic timestamp")
            if problem:
                return problem
        # The TSA's chain goes through the same revocation check as the signing chain; a revoked TSA's
        # timestamp proves nothing. notation-go checks it here, whatever the revocation action says.
        revoked = self.revocation.problem(outcome.timestamp.chain, deadline=deadline, outbound=outbound)
        if revoked:
            return f"the timestamp authority's certificate chain failed the revocation check: {revoked}"
        return ""


def _target_problem(image: ResolvedImage, envelope: Envelope) -> str:
    target = envelope.target
    if target.digest != image.digest:
        return f"signature is for {target.digest}, not for {image.digest}"
    if target.size != image.size:
        return f"signature is for an artifact of {target.size} bytes, but {image.digest} is {image.size} bytes"
    if target.media_type != image.media_type:
        return f"signature is for media type {target.media_type}, but the image is {image.media_type}"
    return ""


def _structure_problem(envelope: Envelope) -> str:
    try:
        validate_structure(envelope.certificates)
    except ChainError as exc:
        return f"the signature's certificate chain is invalid: {exc}"
    return ""


def _validity_problem(chain: Sequence[x509.Certificate], moment: datetime | None, what: str) -> str:
    if moment is None:
        return f"{what} is missing"
    for cert in chain:
        if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            return (f"certificate {cert.subject.rfc4514_string()} is not valid at {what} {rfc3339(moment)} (valid "
                    f"{rfc3339(cert.not_valid_before_utc)} to {rfc3339(cert.not_valid_after_utc)})")
    return ""
