"""Vulnerability reports read into findings: cosign vuln attestations (Trivy JSON inside) and Trivy SARIF.

Supported producers, mapped explicitly:
- cosign vuln attestation (`https://cosign.sigstore.dev/attestation/vuln/v1`) whose `scanner.result` is a
  Trivy JSON report (`trivy image --format cosign-vuln`): `Severity`, `FixedVersion`, `VendorIDs` as aliases.
- SARIF 2.1.0 has no standard severity or fix fields, so each producer is mapped on its own:
  Trivy (`--format sarif`): the severity is the rule's tag (`CRITICAL`…`LOW`), a finding is fixable when the
  rule's help text has a non-empty `Fixed Version:` line. Grype (`-o sarif`): rule ids are `<vulnerability>-
  <package>`, so the id is the help text's `Vulnerability` line, the severity its `Severity:` line (Grype's
  `security-severity` property is a CVSS score, not its severity), fixable when `Fix Version:` is not empty.
  SARIF from any other producer is refused by name, not guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from provider.content.limits import MAX_ALIASES, MAX_FINDINGS, ContentError, items, text

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
_SEVERITY_ALIASES = {"NEGLIGIBLE": "LOW", "MODERATE": "MEDIUM", "IMPORTANT": "HIGH", "NONE": "UNKNOWN"}
_FIXED_VERSION = re.compile(r"^Fixed Version:[ \t]*(\S.*)$", re.MULTILINE)
_GRYPE_LINES = {key: re.compile(rf"^{key}:?[ \t]*(\S*)", re.MULTILINE)
                for key in ("Vulnerability", "Severity", "Fix Version")}
SARIF_PRODUCERS = ("trivy", "grype")


def severity(value: object) -> str:
    word = value.upper() if isinstance(value, str) else ""
    word = _SEVERITY_ALIASES.get(word, word)
    return word if word in SEVERITIES else "UNKNOWN"


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    fixable: bool
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class VulnerabilityReport:
    format: str
    scanner: str
    scanner_version: str
    scanned_at: str
    findings: tuple[Finding, ...]


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ContentError(f"{what} is not a JSON object")
    return value


def from_cosign_vuln(predicate: object) -> VulnerabilityReport:
    """A cosign vuln predicate; only a Trivy JSON `scanner.result` is understood."""
    predicate = _object(predicate, "vuln predicate")
    scanner = _object(predicate.get("scanner"), "vuln predicate scanner")
    metadata = predicate.get("metadata") if isinstance(predicate.get("metadata"), dict) else {}
    uri = text(scanner.get("uri"))
    name = uri.split("/")[-1].split("@")[0] if uri else ""
    result = _object(scanner.get("result"), "vuln predicate scanner.result")
    if "Results" not in result and "SchemaVersion" not in result:
        raise ContentError(f"vuln predicate from {name or 'an unnamed scanner'}: scanner.result is not a Trivy "
                           "JSON report (the only result format supported)")
    return VulnerabilityReport("cosign-vuln", name or "trivy", text(scanner.get("version")),
                               text(metadata.get("scanFinishedOn")) or text(result.get("CreatedAt")),
                               tuple(_trivy_findings(result)))


def _trivy_findings(report: dict[str, Any]) -> Iterable[Finding]:
    count = 0
    for target in items(report.get("Results"), "Results", MAX_FINDINGS):
        if not isinstance(target, dict):
            raise ContentError("a Trivy result is not a JSON object")
        for entry in items(target.get("Vulnerabilities"), "Vulnerabilities", MAX_FINDINGS):
            count += 1
            if count > MAX_FINDINGS:
                raise ContentError(f"the report has more than {MAX_FINDINGS} findings")
            if not isinstance(entry, dict) or not text(entry.get("VulnerabilityID")):
                raise ContentError("a Trivy vulnerability has no VulnerabilityID")
            fixable = bool(text(entry.get("FixedVersion"))) or entry.get("Status") == "fixed"
            aliases = tuple(text(v) for v in items(entry.get("VendorIDs"), "VendorIDs", 64) if text(v))
            yield Finding(text(entry["VulnerabilityID"]), severity(entry.get("Severity")), fixable,
                          aliases[:MAX_ALIASES])


def from_sarif(document: object) -> VulnerabilityReport:
    """A SARIF 2.1.0 log written by Trivy (see the module notes for the mapping)."""
    document = _object(document, "SARIF log")
    if document.get("version") != "2.1.0":
        raise ContentError(f"SARIF version {text(str(document.get('version')))!r} is not 2.1.0")
    runs = items(document.get("runs"), "SARIF runs", 16)
    findings: list[Finding] = []
    scanner = version = scanned = ""
    for run in runs:
        run = _object(run, "SARIF run")
        driver = _object(_object(run.get("tool"), "SARIF run tool").get("driver"), "SARIF tool driver")
        scanner, version = text(driver.get("name")), text(driver.get("version"))
        if scanner.lower() not in SARIF_PRODUCERS:
            raise ContentError(f"SARIF from {scanner or 'an unnamed tool'!r} is not supported: severity and fix "
                               f"fields are mapped for {' and '.join(SARIF_PRODUCERS)} only")
        read = _grype_finding if scanner.lower() == "grype" else _sarif_finding
        rules = {}
        for rule in items(driver.get("rules"), "SARIF rules", MAX_FINDINGS):
            rule = _object(rule, "SARIF rule")
            rules[text(rule.get("id"))] = rule
        for invocation in items(run.get("invocations"), "SARIF invocations", 16):
            if isinstance(invocation, dict):
                scanned = text(invocation.get("endTimeUtc")) or scanned
        for result in items(run.get("results"), "SARIF results", MAX_FINDINGS):
            rule_id = text(_object(result, "SARIF result").get("ruleId"))
            if not rule_id:
                raise ContentError("a SARIF result has no ruleId")
            findings.append(read(rule_id, rules.get(rule_id, {})))
            if len(findings) > MAX_FINDINGS:
                raise ContentError(f"the report has more than {MAX_FINDINGS} findings")
    return VulnerabilityReport("sarif", scanner.lower(), version, scanned, tuple(findings))


def _help_text(rule: dict[str, Any]) -> str:
    help_block = rule.get("help")
    help_text = help_block.get("text") if isinstance(help_block, dict) else ""
    return help_text[:4096] if isinstance(help_text, str) else ""


def _sarif_finding(rule_id: str, rule: dict[str, Any]) -> Finding:
    """Trivy: the severity is a rule tag; the help text names the fixed version."""
    properties = rule.get("properties") if isinstance(rule.get("properties"), dict) else {}
    tags = [t.upper() for t in properties.get("tags") or [] if isinstance(t, str)]
    level = next((t for t in tags if t in SEVERITIES), "UNKNOWN")
    return Finding(rule_id, level, bool(_FIXED_VERSION.search(_help_text(rule))))


def _grype_finding(rule_id: str, rule: dict[str, Any]) -> Finding:
    """Grype: the rule id also names the package; the help text has the vulnerability, severity and fix."""
    lines = {key: pattern.search(_help_text(rule)) for key, pattern in _GRYPE_LINES.items()}
    ident = lines["Vulnerability"].group(1) if lines["Vulnerability"] else ""
    if not ident:
        raise ContentError(f"Grype SARIF rule {rule_id!r} has no Vulnerability line in its help text")
    level = severity(lines["Severity"].group(1)) if lines["Severity"] else "UNKNOWN"
    fix = lines["Fix Version"]
    return Finding(text(ident), level, bool(fix and fix.group(1)))
