"""The Rego library's helpers for vouching and report completeness, evaluated by regorus on facts in the
shapes the provider writes (and, for vouching, the shape of facts from a provider that predates
`auditLevelAuthorities`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import rego_library

REGO = rego_library()


def call(package: str, function: str, *arguments: Any) -> Any:
    text = ", ".join(json.dumps(a) for a in arguments)
    rows = REGO.eval_query(f"x := data.lib.sigwarden.{package}.{function}({text})").get("result") or []
    return rows[0]["bindings"]["x"] if rows else None


LOGGED = {"authority": "audited", "verified": True, "checks": {"authenticity": "logged"}}
STRICT = {"authority": "release", "verified": True, "checks": {"authenticity": "passed"}}


@pytest.mark.parametrize(("subject", "accept", "expected"), [
    # Facts as the provider writes them: auditLevelAuthorities names the audit-only authority.
    ({"authorities": ["audited", "release"], "auditLevelAuthorities": ["audited"]}, False, ["release"]),
    ({"authorities": ["audited", "release"], "auditLevelAuthorities": ["audited"]}, True, ["audited", "release"]),
    # Older facts: derived from the signatures (a strict signature by the same authority makes it vouch).
    ({"authorities": ["audited", "release"], "signatures": [LOGGED, STRICT]}, False, ["release"]),
    ({"authorities": ["audited"], "signatures": [LOGGED, {**LOGGED, "checks": {"authenticity": "passed"}}]}, False,
     ["audited"]),
    # A platform entry of an index and a content entry have the same fields.
    ({"digest": "sha256:" + "a" * 64, "authorities": [], "auditLevelAuthorities": []}, False, []),
])
def test_vouching_authorities(subject: dict[str, Any], accept: bool, expected: list[str]) -> None:
    assert sorted(call("vouching", "authorities", subject, accept)) == expected


def test_an_untrusted_content_entry_has_no_vouchers() -> None:
    entry = {"trusted": False, "authorities": ["scanner"], "auditLevelAuthorities": []}
    assert call("vouching", "content_authorities", entry, True) == set()
    assert call("vouching", "content_authorities", {**entry, "trusted": True}, False) == {"scanner"}


@pytest.mark.parametrize(("vouchers", "wanted", "expected"), [
    (["a"], [], True), ([], [], None), (["a"], ["b"], None), (["a", "b"], ["b"], True)])
def test_vouched_by_any(vouchers: list[str], wanted: list[str], expected: bool | None) -> None:
    def rego_set(names: list[str]) -> str:
        return "{" + ", ".join(json.dumps(n) for n in names) + "}" if names else "set()"

    rows = REGO.eval_query(f"data.lib.sigwarden.vouching.vouched_by_any({rego_set(vouchers)}, "
                           f"{rego_set(wanted)})").get("result") or []
    assert (True if rows else None) == expected


def counts(**cells: int) -> dict[str, dict[str, int]]:
    table = {kind: dict.fromkeys(("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"), 0)
             for kind in ("fixable", "unfixable")}
    for key, value in cells.items():
        kind, severity = key.split("_")
        table[kind][severity.upper()] = value
    return table


REPORT = {"counts": counts(fixable_low=1, unfixable_unknown=2), "listFloor": "LOW", "vulnerabilitiesOmitted": 0,
          "vulnerabilities": [{"id": "CVE-1", "severity": "LOW", "fixable": True, "aliases": ["GHSA-1"]}],
          "suppressed": [{"id": "CVE-9", "severity": "CRITICAL", "fixable": True}]}


def test_a_report_that_counts_more_than_it_lists_is_incomplete() -> None:
    assert call("completeness", "total", REPORT, []) == 3
    assert call("completeness", "unlisted", REPORT, [], "unfixable", "UNKNOWN") == 2
    assert call("completeness", "unlisted", REPORT, [], "fixable", "LOW") == 0
    rows = REGO.eval_query(f"data.lib.sigwarden.completeness.incomplete({json.dumps(REPORT)}, [])")
    assert rows.get("result")
    complete = {**REPORT, "counts": counts(fixable_low=1)}
    assert not REGO.eval_query(f"data.lib.sigwarden.completeness.incomplete({json.dumps(complete)}, [])").get("result")


def test_findings_counted_again_are_listed_and_counted() -> None:
    extra = [REPORT["suppressed"][0]]
    assert call("completeness", "counted", REPORT, extra, "fixable", "CRITICAL") == 1
    assert call("completeness", "unlisted", REPORT, extra, "fixable", "CRITICAL") == 0
    assert call("completeness", "known_ids", REPORT) == {"CVE-1", "GHSA-1", "CVE-9"}


def test_a_cut_licence_list() -> None:
    assert REGO.eval_query('data.lib.sigwarden.completeness.licences_cut({"licensesTruncated": true})').get("result")
    assert not REGO.eval_query('data.lib.sigwarden.completeness.licences_cut({"licenses": []})').get("result")


def test_platforms_over_the_limit_are_counted_and_listed_ones_found() -> None:
    arm = {"digest": "sha256:" + "1" * 64, "os": "linux", "architecture": "aarch64", "variant": "",
           "attestationManifest": False}
    facts = {"platforms": [arm], "platformLimit": {"maxPlatforms": 16, "found": 19, "omitted": 3,
                                                   "attestationManifestsOmitted": 0}}
    assert call("platforms", "omitted", facts) == 3
    assert call("platforms", "omitted", {"platforms": [arm]}) == 0
    assert call("platforms", "listed", facts, "linux/arm64") is True  # containerd's name for aarch64
    assert call("platforms", "listed", facts, "linux/amd64") is None
