"""Assemble the facts object for one image: the contract between the provider and Rego.

The JSON Schema in `schemas/facts.schema.json` documents every field; templates may only read those.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from provider.stores.base import Platform, ResolvedImage
from provider.stores.platforms import normalized_platform
from provider.verifiers.base import AttestationResult, SignatureResult

MAX_REASONS_IN_SUMMARY = 3
MAX_PLATFORMS = 16  # platform manifests of an index whose signatures are checked


@dataclass(frozen=True)
class PlatformCheck:
    """One platform manifest of an index: whether a signature of its own verified, and its own content."""

    verified: bool
    authorities: tuple[str, ...]
    reason: str
    audit_level: tuple[str, ...] = ()
    content: Mapping[str, Any] | None = None


def empty_content() -> dict[str, list[Any]]:
    return {"vulnerabilityReports": [], "sboms": [], "vex": []}


def is_platform(platform: Platform) -> bool:
    """BuildKit's attestation manifests sit in the index as `unknown/unknown`: they are not platforms."""
    return not (platform.os == "unknown" and platform.architecture == "unknown")


def audit_level_authorities(signatures: Sequence[SignatureResult]) -> tuple[str, ...]:
    """Authorities whose every verified signature passed only because notation's `audit` level logs a
    failed authenticity check: they vouch only where a constraint accepts the audit level."""
    verified = {s.authority for s in signatures if s.verified}
    authentic = {s.authority for s in signatures if s.verified and s.checks.get("authenticity") != "logged"}
    return tuple(sorted(verified - authentic))


def platform_check(image: ResolvedImage, signatures: Sequence[SignatureResult], artifact_count: int,
                   authorities_in_scope: int, content: Mapping[str, Any] | None = None) -> PlatformCheck:
    by = tuple(sorted({s.authority for s in signatures if s.verified}))
    reason = "" if by else unverified_reason(image, signatures, artifact_count, authorities_in_scope)
    return PlatformCheck(bool(by), by, reason, audit_level_authorities(signatures), content)


def checked_platforms(platforms: Sequence[Platform]) -> list[Platform]:
    """The platform manifests of an index whose signatures are checked: the first MAX_PLATFORMS, in index order."""
    return [p for p in platforms if is_platform(p)][:MAX_PLATFORMS]


def _platform_json(platform: Platform, check: PlatformCheck | None) -> dict[str, Any]:
    data: dict[str, Any] = {"digest": platform.digest, "os": platform.os, "architecture": platform.architecture,
                            "variant": platform.variant,
                            "platform": normalized_platform(platform.os, platform.architecture, platform.variant),
                            "platformSpecified": platform.specified,
                            "attestationManifest": not is_platform(platform)}
    if check is not None:
        data.update(verified=check.verified, authorities=list(check.authorities), reason=check.reason,
                    auditLevelAuthorities=list(check.audit_level), content=dict(check.content or empty_content()))
    elif is_platform(platform):
        data.update(verified=False, authorities=[], auditLevelAuthorities=[], content=empty_content(),
                    contentChecked=False, reason="not checked")
    return data


def _platforms_json(platforms: Sequence[Platform],
                    checks: Mapping[str, PlatformCheck]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The listed entries of an index and, when entries were left out, the `platformLimit` fact.

    Only what was checked is listed (and as many attestation manifests): an index may hold thousands of
    entries, and copying each into every answer made one 4 MiB index a 4.7 MiB answer per key.
    """
    listed: list[dict[str, Any]] = []
    counts = {True: 0, False: 0}  # platform manifests, attestation manifests seen
    for platform in platforms:
        real = is_platform(platform)
        counts[real] += 1
        if counts[real] <= MAX_PLATFORMS:
            listed.append(_platform_json(platform, checks.get(platform.digest)))
    omitted, attestations_omitted = (max(0, counts[kind] - MAX_PLATFORMS) for kind in (True, False))
    if not (omitted or attestations_omitted):
        return listed, {}
    return listed, {"platformLimit": {"maxPlatforms": MAX_PLATFORMS, "found": counts[True], "omitted": omitted,
                                      "attestationManifestsOmitted": attestations_omitted}}


def rfc3339(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _signature_json(sig: SignatureResult) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format": sig.format, "artifact": sig.artifact, "authority": sig.authority,
        "verified": sig.verified, "reason": sig.reason,
        "signer": {"keyId": sig.signer.key_id, "subject": sig.signer.subject, "issuer": sig.signer.issuer},
    }
    if sig.signed_at:
        data["signedAt"] = sig.signed_at
    if sig.tlog:
        data["tlog"] = {"logIndex": sig.tlog.log_index}
        if sig.tlog.integrated_time:
            data["tlog"]["integratedTime"] = sig.tlog.integrated_time
    if sig.timestamp:
        data["timestamp"] = {"time": sig.timestamp}
    if sig.warnings:
        data["warnings"] = list(sig.warnings)
    if sig.checks:
        data["checks"] = dict(sig.checks)
    return data


def _attestation_json(att: AttestationResult) -> dict[str, Any]:
    data: dict[str, Any] = {"predicateType": att.predicate_type, "authority": att.authority,
                            "verified": att.verified, "reason": att.reason, "artifact": att.artifact}
    if att.predicate is not None:
        data["predicate"] = att.predicate
    return data


def _verifier_report(image: ResolvedImage, sig: SignatureResult) -> dict[str, Any]:
    """Ratify's report shape, so templates written for Ratify keep working."""
    message = "signature verified" if sig.verified else sig.reason
    return {
        "subject": image.reference.pinned(image.digest), "isSuccess": sig.verified,
        "name": sig.format, "verifierName": sig.format, "type": sig.format, "verifierType": sig.format,
        "artifactType": sig.artifact_type, "referenceDigest": sig.artifact, "message": message,
        "extensions": {"authority": sig.authority, **sig.extensions},
    }


def unverified_reason(image: ResolvedImage, signatures: Sequence[SignatureResult], artifact_count: int,
                      authorities_in_scope: int) -> str:
    """One sentence for Rego messages: why no signature verified."""
    if authorities_in_scope == 0:
        return f"no configured authority covers {image.reference.name}"
    if artifact_count == 0 and not signatures:
        return f"no signatures found for {image.digest}"
    if not signatures:
        return f"{artifact_count} signature artifact(s) found, none in a format a covering authority trusts"
    reasons = list(dict.fromkeys(f"{s.authority}: {s.reason}" for s in signatures))
    shown = "; ".join(reasons[:MAX_REASONS_IN_SUMMARY])
    more = f" (+{len(reasons) - MAX_REASONS_IN_SUMMARY} more)" if len(reasons) > MAX_REASONS_IN_SUMMARY else ""
    return f"no signature verified: {shown}{more}"


@dataclass(frozen=True)
class Skip:
    """A notation authority whose trust policy statement for the image has level `skip`."""

    authority: str
    statement: str


def build_facts(image: ResolvedImage, signatures: Sequence[SignatureResult],
                attestations: Sequence[AttestationResult], artifact_count: int,
                authorities_in_scope: int, omitted: int = 0, max_signatures: int = 0,
                content: Mapping[str, Any] | None = None,
                platform_checks: Mapping[str, PlatformCheck] | None = None,
                skipped: Sequence[Skip] = ()) -> dict[str, Any]:
    """The per-image facts, without the per-request fields (`image`, `cached`, `traceID`).

    `content` is the summary of signed reports, SBOMs and VEX (provider.content.summary); `platform_checks`
    the signature checks of an index's platform manifests, by digest.

    `omitted` signature artifacts were found but not checked: over the `max_signatures` limit. `skipped` lists
    the authorities whose notation statement skips verification: recorded, never counted as verified.
    """
    verified_by = sorted({s.authority for s in signatures if s.verified})
    verified = bool(verified_by)
    reason = "" if verified else unverified_reason(image, signatures, artifact_count, authorities_in_scope)
    platforms, extras = _platforms_json(image.platforms, platform_checks or {})
    if omitted:
        extras["signatureLimit"] = {"maxSignatures": max_signatures, "found": artifact_count, "omitted": omitted}
        if not verified:
            reason += (f" ({omitted} more signature artifact(s) not checked: over verification.maxSignatures "
                       f"{max_signatures})")
    if skipped:
        extras["skipped"] = [{"authority": skip.authority, "statement": skip.statement} for skip in skipped]
        if not verified:
            reason += "; " + "; ".join(f'{skip.authority}: trust policy statement "{skip.statement}" skips '
                                       "verification (level skip)" for skip in skipped)
    return {
        "reference": str(image.reference),
        "digest": image.digest,
        "pinned": image.reference.pinned(image.digest),
        "mediaType": image.media_type,
        "platforms": platforms,
        "verified": verified,
        "isSuccess": verified,
        "reason": reason,
        "authorities": verified_by,
        "auditLevelAuthorities": list(audit_level_authorities(signatures)),
        "signatures": [_signature_json(s) for s in signatures],
        "attestations": [_attestation_json(a) for a in attestations],
        "verifierReports": [_verifier_report(image, s) for s in signatures],
        "content": dict(content or empty_content()),
        "checkedAt": rfc3339(),
        **extras,
    }


@cache
def facts_schema() -> dict[str, Any]:
    """The JSON Schema of a facts object."""
    text = resources.files("provider").joinpath("schemas/facts.schema.json").read_text()
    return json.loads(text)
