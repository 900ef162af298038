"""Content facts: every content artifact found, which authority vouched for it, and bounded summaries.

A report counts (`trusted`) only when an authority serving its purpose verified it (signature, exact
payload and predicate types, subject = this digest); one that is not signed, or signed by the wrong
authority, is listed with the reason and no summary a policy could mistake for a verified one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provider.content import kinds, sbom, vex, vulns
from provider.content.limits import MAX_LISTED_VULNERABILITIES, ContentError
from provider.verifiers.base import ArtifactTime, AttestationResult

_RANK = {s: i for i, s in enumerate(vulns.SEVERITIES)}


def _severity_counts(findings: Sequence[vulns.Finding]) -> dict[str, dict[str, int]]:
    counts = {kind: dict.fromkeys(vulns.SEVERITIES, 0) for kind in ("fixable", "unfixable")}
    for finding in findings:
        counts["fixable" if finding.fixable else "unfixable"][finding.severity] += 1
    return counts


def merge_findings(findings: Sequence[vulns.Finding]) -> list[vulns.Finding]:
    """One finding per vulnerability id: its highest severity, fixable when any affected package has a fix."""
    merged: dict[str, vulns.Finding] = {}
    for f in findings:
        seen = merged.get(f.id)
        if seen is None:
            merged[f.id] = f
            continue
        worse = f.severity if _RANK[f.severity] < _RANK[seen.severity] else seen.severity
        merged[f.id] = vulns.Finding(f.id, worse, seen.fixable or f.fixable,
                                     tuple(dict.fromkeys(seen.aliases + f.aliases)))
    return list(merged.values())


@dataclass(frozen=True)
class VexSource:
    """A trusted VEX document: the artifact that carried it and the authority that signed it."""

    artifact: str
    authority: str


def vulnerability_summary(report: vulns.VulnerabilityReport,
                          suppressions: Sequence[tuple[vex.Suppression, VexSource]], floor: str) -> dict[str, Any]:
    """Counts by severity (fixable and unfixable apart) and the ids at or over `floor`, after VEX.

    Each suppressed finding keeps its severity, fix availability and the VEX artifact, so a constraint that
    does not accept that VEX document's authority can count it again.
    """
    findings = merge_findings(report.findings)
    by_name: dict[str, tuple[vex.Suppression, VexSource]] = {}
    for suppression, source in suppressions:
        for name in (suppression.id, *suppression.aliases):
            by_name.setdefault(name, (suppression, source))
    kept, suppressed = [], []
    for finding in findings:
        match = next((by_name[n] for n in (finding.id, *finding.aliases) if n in by_name), None)
        if match is None:
            kept.append(finding)
        else:
            statement, source = match
            suppressed.append({"id": finding.id, "severity": finding.severity, "fixable": finding.fixable,
                               "author": statement.author, "authority": source.authority, "vex": source.artifact,
                               "justification": statement.justification})
    listed = sorted((f for f in kept if _RANK[f.severity] <= _RANK[floor]),
                    key=lambda f: (_RANK[f.severity], f.id))
    return {
        "format": report.format, "scanner": {"name": report.scanner, "version": report.scanner_version},
        "scannedAt": report.scanned_at, "counts": _severity_counts(kept), "listFloor": floor,
        "vulnerabilities": [{"id": f.id, "severity": f.severity, "fixable": f.fixable, "aliases": list(f.aliases)}
                            for f in listed[:MAX_LISTED_VULNERABILITIES]],
        "vulnerabilitiesOmitted": max(0, len(listed) - MAX_LISTED_VULNERABILITIES),
        "suppressed": suppressed[:MAX_LISTED_VULNERABILITIES],
        "suppressedOmitted": max(0, len(suppressed) - MAX_LISTED_VULNERABILITIES),
    }


def _read(predicate_type: str, predicate: Any) -> vulns.VulnerabilityReport | sbom.Sbom | tuple[vex.Suppression, ...]:
    if predicate_type == kinds.VULN_PREDICATE:
        return vulns.from_cosign_vuln(predicate)
    if predicate_type == kinds.SARIF_ARTIFACT:
        return vulns.from_sarif(predicate)
    if predicate_type in (kinds.CYCLONEDX_PREDICATE, kinds.CYCLONEDX_ARTIFACT):
        return sbom.from_cyclonedx(predicate)
    if predicate_type in (kinds.SPDX_PREDICATE, kinds.SPDX_ARTIFACT):
        return sbom.from_spdx(predicate)
    return vex.from_openvex(predicate)


def content_facts(attestations: Sequence[AttestationResult], purposes: Mapping[str, tuple[str, ...]],
                  floor: str, digest: str = "") -> dict[str, list[dict[str, Any]]]:
    """`vulnerabilityReports`, `sboms` and `vex` for the facts of the manifest `digest`.

    `attestations` are in-toto attestations and checked content referrers (provider.content.referrers: their
    type is the artifact type); `purposes` maps each authority in scope to its purposes. Results are grouped
    per (artifact, type), as every authority in scope checks every one. A VEX statement applies only when
    one of its products names `digest`.
    """
    groups: dict[tuple[str, str], list[AttestationResult]] = {}
    for att in attestations:
        if kinds.purpose_of_predicate(att.predicate_type):
            groups.setdefault((att.artifact, att.predicate_type), []).append(att)
    out: dict[str, list[dict[str, Any]]] = {kinds.VULNERABILITY_REPORT: [], kinds.SBOM: [], kinds.VEX: []}
    parsed: list[tuple[dict[str, Any], Any]] = []
    for (artifact, predicate_type), results in groups.items():
        purpose = kinds.purpose_of_predicate(predicate_type)
        vouched = [r for r in results if r.verified and purpose in purposes.get(r.authority, ())]
        source = "referrer" if predicate_type in kinds.ARTIFACT_PURPOSES else "attestation"
        authentic = {r.authority for r in vouched if not r.audit_level}
        entry: dict[str, Any] = {"artifact": artifact, "source": source, "type": predicate_type,
                                 "trusted": False, "authorities": sorted({r.authority for r in vouched}),
                                 "auditLevelAuthorities": sorted({r.authority for r in vouched} - authentic),
                                 "producedAt": "", "producedAtSource": "", "producedAtAuthenticated": False,
                                 "authenticatedAt": "", "reason": ""}
        if not vouched:
            entry["reason"] = _why_untrusted(results, purposes, purpose)
            out[purpose].append(entry)
            continue
        try:
            content = _read(predicate_type, vouched[0].statement_predicate)
        except (ContentError, RecursionError) as exc:
            entry["reason"] = f"signed by {', '.join(entry['authorities'])} but unreadable: {exc}"
            out[purpose].append(entry)
            continue
        entry["trusted"] = True
        parsed.append((entry, content))
        out[purpose].append(entry)
    suppressions = [(s, VexSource(entry["artifact"], entry["authorities"][0])) for entry, content in parsed
                    if isinstance(content, tuple) for s in content if s.names(digest)]
    for entry, content in parsed:
        vouchers = set(entry["authorities"])
        signed = _signed_time([r for r in groups[(entry["artifact"], entry["type"])] if r.authority in vouchers])
        if isinstance(content, vulns.VulnerabilityReport):
            entry.update(vulnerability_summary(content, suppressions, floor))
            _produced(entry, content.scanned_at, signed)
        elif isinstance(content, sbom.Sbom):
            entry.update(content.to_json())
            _produced(entry, content.created, signed)
        else:
            entry["statements"] = [{"id": s.id, "author": s.author, "justification": s.justification,
                                    "namesThisImage": s.names(digest)} for s in content[:MAX_LISTED_VULNERABILITIES]]
    return {"vulnerabilityReports": out[kinds.VULNERABILITY_REPORT], "sboms": out[kinds.SBOM],
            "vex": out[kinds.VEX]}


def _signed_time(results: Sequence[AttestationResult]) -> ArtifactTime | None:
    """The best time among the verified signatures of one document: an authenticated one first."""
    times = [r.signed_time for r in results if r.verified and r.signed_time is not None]
    return min(times, key=lambda t: not t.authenticated, default=None)


def _produced(entry: dict[str, Any], own: str, signed: ArtifactTime | None) -> None:
    """When the document was made: its own time when it says, else its signature's or manifest's."""
    if own:
        entry.update(producedAt=own, producedAtSource="document")
    elif signed is not None:
        entry.update(producedAt=signed.time, producedAtSource=signed.source,
                     producedAtAuthenticated=signed.authenticated)
    if signed is not None and signed.authenticated:
        entry["authenticatedAt"] = signed.time


def _why_untrusted(results: Sequence[AttestationResult], purposes: Mapping[str, tuple[str, ...]],
                   purpose: str) -> str:
    wrong_purpose = sorted({r.authority for r in results if r.verified})
    if wrong_purpose:
        return (f"signed by {', '.join(wrong_purpose)}, not trusted for {purpose} "
                f"(purposes: {', '.join(purposes.get(wrong_purpose[0], ()))})")
    reasons = list(dict.fromkeys(f"{r.authority}: {r.reason}" if r.authority else r.reason for r in results))
    return "not verified: " + "; ".join(reasons[:3]) + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else "")
