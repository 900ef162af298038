"""Content facts: every content artifact found, which authority vouched for it, and bounded summaries.

A report counts (`trusted`) only when an authority serving its purpose verified it (signature, exact
payload and predicate types, subject = this digest); one that is not signed, or signed by the wrong
authority, is listed with the reason and no summary a policy could mistake for a verified one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from provider.content import kinds, sbom, vex, vulns
from provider.content.limits import MAX_LISTED_VULNERABILITIES, ContentError
from provider.verifiers.base import AttestationResult

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


def vulnerability_summary(report: vulns.VulnerabilityReport, suppressions: Sequence[tuple[vex.Suppression, str]],
                          floor: str) -> dict[str, Any]:
    """Counts by severity (fixable and unfixable apart) and the ids at or over `floor`, after VEX."""
    findings = merge_findings(report.findings)
    by_name: dict[str, tuple[vex.Suppression, str]] = {}
    for suppression, authority in suppressions:
        for name in (suppression.id, *suppression.aliases):
            by_name.setdefault(name, (suppression, authority))
    kept, suppressed = [], []
    for finding in findings:
        match = next((by_name[n] for n in (finding.id, *finding.aliases) if n in by_name), None)
        if match is None:
            kept.append(finding)
        else:
            statement, authority = match
            suppressed.append({"id": finding.id, "author": statement.author, "authority": authority,
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
                  floor: str) -> dict[str, list[dict[str, Any]]]:
    """`vulnerabilityReports`, `sboms` and `vex` for the facts.

    `attestations` are in-toto attestations and checked content referrers (provider.content.referrers: their
    type is the artifact type); `purposes` maps each authority in scope to its purposes. Results are grouped
    per (artifact, type), as every authority in scope checks every one.
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
        entry: dict[str, Any] = {"artifact": artifact, "source": source, "type": predicate_type,
                                 "trusted": False, "authorities": sorted({r.authority for r in vouched}),
                                 "producedAt": "", "reason": ""}
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
    suppressions = [(s, entry["authorities"][0]) for entry, content in parsed if isinstance(content, tuple)
                    for s in content]
    for entry, content in parsed:
        if isinstance(content, vulns.VulnerabilityReport):
            entry.update(vulnerability_summary(content, suppressions, floor))
            entry["producedAt"] = content.scanned_at
        elif isinstance(content, sbom.Sbom):
            entry.update(content.to_json())
            entry["producedAt"] = content.created
        else:
            entry["statements"] = [{"id": s.id, "author": s.author, "justification": s.justification}
                                   for s in content[:MAX_LISTED_VULNERABILITIES]]
    return {"vulnerabilityReports": out[kinds.VULNERABILITY_REPORT], "sboms": out[kinds.SBOM],
            "vex": out[kinds.VEX]}


def _why_untrusted(results: Sequence[AttestationResult], purposes: Mapping[str, tuple[str, ...]],
                   purpose: str) -> str:
    wrong_purpose = sorted({r.authority for r in results if r.verified})
    if wrong_purpose:
        return (f"signed by {', '.join(wrong_purpose)}, not trusted for {purpose} "
                f"(purposes: {', '.join(purposes.get(wrong_purpose[0], ()))})")
    reasons = list(dict.fromkeys(f"{r.authority}: {r.reason}" if r.authority else r.reason for r in results))
    return "not verified: " + "; ".join(reasons[:3]) + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else "")
