"""Signed vulnerability reports, SBOMs and VEX as facts: real tool output (tests/vectors/content/), signed in
cosign's attestation format and attached in OCI layouts; trust rules, summaries and hostile documents."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from provider.config import ConfigError, build_config
from provider.content import kinds, sbom, vex, vulns
from provider.content.limits import MAX_FINDINGS, ContentError
from provider.content.referrers import signature_time
from provider.content.summary import VexSource, content_facts, vulnerability_summary
from provider.devkit import content, cosign, notation
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.facts import facts_schema
from provider.stores.selection import MAX_CONTENT_REFERRERS
from provider.verifiers.base import ArtifactTime, AttestationResult, SignatureResult, TlogEntry
from provider.verifiers.dsse import pae
from tests.helpers import VECTORS, facts_for, write_yaml

CONTENT = VECTORS / "content"
REPO = "team/app"
SCANNED = "2024-03-10T14:57:31Z"


def vector(name: str) -> Any:
    return json.loads((CONTENT / name).read_text())


def trivy_vuln_predicate() -> dict[str, Any]:
    return content.vuln_predicate(vector("trivy-alpine-310.json"), SCANNED)


def vex_for(ident: str, digest: str = "") -> dict[str, Any]:
    """Trivy's OpenVEX fixture, its statement pointed at a CVE of the alpine report and, given a digest, at
    that image as its product (an OCI purl, as vexctl writes it)."""
    document = vector("trivy-openvex.json")
    document["statements"][0]["vulnerability"] = {"name": ident}
    if digest:
        document["statements"][0]["products"] = [{"@id": f"pkg:oci/app@{digest.replace(':', '%3A')}"}]
    return document


# --- summaries of real tool output -------------------------------------------------------------------------

def test_trivy_json_in_a_cosign_vuln_predicate() -> None:
    report = vulns.from_cosign_vuln(trivy_vuln_predicate())
    assert (report.format, report.scanner, report.scanned_at) == ("cosign-vuln", "trivy", SCANNED)
    # Four findings (two CVEs in two packages each), merged per id.
    assert len(report.findings) == 4
    summary = vulnerability_summary(report, [], "LOW")
    assert summary["counts"]["fixable"]["MEDIUM"] == 2 and sum(summary["counts"]["unfixable"].values()) == 0
    assert [v["id"] for v in summary["vulnerabilities"]] == ["CVE-2019-1549", "CVE-2019-1551"]
    assert vulnerability_summary(report, [], "HIGH")["vulnerabilities"] == []  # counted, not listed


def test_trivy_sarif_maps_severity_tags_and_fixed_versions() -> None:
    report = vulns.from_sarif(vector("trivy-alpine-310.sarif.json"))
    summary = vulnerability_summary(report, [], "LOW")
    assert summary["scanner"]["name"] == "trivy"
    assert summary["counts"]["fixable"]["MEDIUM"] == 2
    assert {v["id"]: v["fixable"] for v in summary["vulnerabilities"]} == {"CVE-2019-1549": True,
                                                                          "CVE-2019-1551": True}


def test_grype_sarif_maps_the_help_text() -> None:
    report = vulns.from_sarif(vector("grype-sarif-image.json"))
    assert (report.scanner, report.scanner_version) == ("grype", "0.0.0-dev")
    # Rule ids name the package too; the finding is the vulnerability. security-severity (a CVSS score) is
    # not Grype's severity.
    assert report.findings == (vulns.Finding("CVE-1999-0001", "LOW", True),
                               vulns.Finding("CVE-1999-0002", "CRITICAL", False))


def test_sarif_from_another_producer_is_refused_by_name() -> None:
    document = vector("trivy-alpine-310.sarif.json")
    document["runs"][0]["tool"]["driver"]["name"] = "Snyk"
    with pytest.raises(ContentError, match="SARIF from 'Snyk' is not supported: severity and fix fields are "
                                           "mapped for trivy and grype only"):
        vulns.from_sarif(document)


def test_cyclonedx_and_spdx_sboms() -> None:
    cdx = sbom.from_cyclonedx(vector("trivy-license-cyclonedx.json"))
    assert cdx.format == "CycloneDX 1.5" and cdx.component_count == 4 and cdx.tool == "trivy dev"
    assert cdx.licenses == ("BSD-3-Clause", "EPL-1.0", "MIT License")
    spdx = sbom.from_spdx(vector("trivy-conda-spdx.json"))
    assert spdx.format == "SPDX-2.3" and spdx.component_count == 3
    assert spdx.licenses == ("MIT", "OpenSSL")
    assert {c.purl for c in spdx.components} >= {"pkg:conda/openssl@1.1.1q", "pkg:conda/pip@22.2.2"}


def test_vex_not_affected_removes_a_cve_and_names_its_author() -> None:
    report = vulns.from_cosign_vuln(trivy_vuln_predicate())
    statements = vex.from_openvex(vex_for("CVE-2019-1551"))
    source = VexSource("sha256:" + "b" * 64, "security")
    summary = vulnerability_summary(report, [(s, source) for s in statements], "LOW")
    assert [v["id"] for v in summary["vulnerabilities"]] == ["CVE-2019-1549"]
    assert summary["counts"]["fixable"]["MEDIUM"] == 1
    # Severity and fix stay with the suppressed finding: a constraint not accepting the VEX counts it again.
    assert summary["suppressed"] == [{"id": "CVE-2019-1551", "severity": "MEDIUM", "fixable": True,
                                      "author": "Aqua Security", "authority": "security", "vex": source.artifact,
                                      "justification": "vulnerable_code_not_in_execute_path"}]


def test_vex_statements_other_than_not_affected_change_nothing() -> None:
    document = vex_for("CVE-2019-1551")
    document["statements"][0]["status"] = "affected"
    assert vex.from_openvex(document) == ()


def test_aliases_match_allow_and_vex_lists() -> None:
    report = vulns.VulnerabilityReport("cosign-vuln", "trivy", "", "", (
        vulns.Finding("CVE-2024-1", "HIGH", False, ("GHSA-aaaa-bbbb-cccc",)),
        vulns.Finding("CVE-2024-1", "CRITICAL", True)))
    statements = vex.from_openvex({"@context": "https://openvex.dev/ns/v0.2.0", "author": "a", "statements": [
        {"vulnerability": {"name": "GHSA-aaaa-bbbb-cccc"}, "status": "not_affected"}]})
    summary = vulnerability_summary(report, [(s, VexSource("sha256:" + "b" * 64, "x")) for s in statements], "LOW")
    assert summary["vulnerabilities"] == [] and summary["suppressed"][0]["id"] == "CVE-2024-1"
    merged = vulnerability_summary(report, [], "LOW")["vulnerabilities"]
    assert merged == [{"id": "CVE-2024-1", "severity": "CRITICAL", "fixable": True,
                       "aliases": ["GHSA-aaaa-bbbb-cccc"]}]


# --- hostile documents -------------------------------------------------------------------------------------

def verified(predicate_type: str, predicate: Any, authority: str = "scanner") -> AttestationResult:
    return AttestationResult(predicate_type, authority, True, "", "sha256:" + "a" * 64, None, predicate)


SCANNER = {"scanner": ("vulnerability-report", "sbom", "vex")}


@pytest.mark.parametrize(("predicate_type", "predicate", "reason"), [
    (kinds.VULN_PREDICATE, {"scanner": {"result": {"Results": [{"Vulnerabilities": [
        {"VulnerabilityID": f"CVE-2024-{n}", "Severity": "LOW"} for n in range(MAX_FINDINGS + 1)]}]}}},
     f"over the limit of {MAX_FINDINGS}"),
    (kinds.VULN_PREDICATE, {"scanner": {"result": {"runs": []}}}, "not a Trivy JSON report"),
    (kinds.VULN_PREDICATE, ["not", "an", "object"], "vuln predicate is not a JSON object"),
    (kinds.VULN_PREDICATE, {"scanner": {"result": {"Results": [{"Vulnerabilities": [{"Severity": "HIGH"}]}]}}},
     "has no VulnerabilityID"),
    (kinds.CYCLONEDX_PREDICATE, {"bomFormat": "SPDX"}, "not a CycloneDX JSON document"),
    (kinds.CYCLONEDX_PREDICATE, {"bomFormat": "CycloneDX", "components": {"a": 1}}, "components is not a list"),
    (kinds.SPDX_PREDICATE, {"packages": []}, "not an SPDX JSON document"),
    (kinds.OPENVEX_PREDICATES[0], {"@context": "https://example.com"}, "not an OpenVEX document"),
])
def test_a_signed_but_unreadable_document_is_listed_untrusted(predicate_type: str, predicate: Any,
                                                                reason: str) -> None:
    facts = content_facts([verified(predicate_type, predicate)], SCANNER, "LOW")
    entries = [e for group in facts.values() for e in group]
    assert len(entries) == 1
    assert entries[0]["trusted"] is False and "counts" not in entries[0] and "licenses" not in entries[0]
    assert reason in entries[0]["reason"] and entries[0]["reason"].startswith("signed by scanner but unreadable")


def test_a_report_vouched_for_by_an_authority_without_the_purpose_is_untrusted() -> None:
    facts = content_facts([verified(kinds.VULN_PREDICATE, trivy_vuln_predicate(), "release")],
                          {"release": ("image",)}, "LOW")
    (entry,) = facts["vulnerabilityReports"]
    assert entry["trusted"] is False and "counts" not in entry
    assert entry["reason"] == "signed by release, not trusted for vulnerability-report (purposes: image)"


def test_a_vex_document_without_the_vex_purpose_suppresses_nothing() -> None:
    statements = verified(kinds.OPENVEX_PREDICATES[1], vex_for("CVE-2019-1551"), "builder")
    facts = content_facts([verified(kinds.VULN_PREDICATE, trivy_vuln_predicate()), statements],
                          {**SCANNER, "builder": ("image", "sbom")}, "LOW")
    assert facts["vex"][0]["trusted"] is False
    assert [v["id"] for v in facts["vulnerabilityReports"][0]["vulnerabilities"]] == ["CVE-2019-1549",
                                                                                      "CVE-2019-1551"]


# --- through the engine, from an OCI layout ----------------------------------------------------------------

class World:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.release = ec.generate_private_key(ec.SECP256R1())
        self.scanner = ec.generate_private_key(ec.SECP256R1())
        self.writer = LayoutWriter(tmp_path / "layouts" / "registry.example", REPO)
        self.image = self.writer.add_image("v1", b"an image with content")
        self.digest = self.image["digest"]
        cosign.sign_image(self.writer, self.digest, f"registry.example/{REPO}", self.release)
        self.notary = notation.identity_with_intermediate("ec-256")

    def facts(self, **verification: Any) -> dict[str, Any]:
        for name, key in (("release", self.release), ("scanner", self.scanner)):
            (self.tmp / f"{name}.pub").write_bytes(cosign.public_pem(key))
        (self.tmp / "notation-root.pem").write_bytes(self.notary.root_pem)
        policy = {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                                       "signatureVerification": {"level": "strict"},
                                                       "trustStores": ["ca:scan"], "trustedIdentities": ["*"]}]}
        data = {"stores": [{"type": "oci-layout", "path": str(self.tmp / "layouts"), "match": ["*"]}],
                "verification": verification,
                "authorities": [
                    {"name": "release", "purposes": ["image"],
                     "cosign": {"publicKeys": [str(self.tmp / "release.pub")]}},
                    {"name": "scanner", "purposes": ["vulnerability-report", "sbom", "vex"],
                     "cosign": {"publicKeys": [str(self.tmp / "scanner.pub")]}},
                    {"name": "notary-scanner", "purposes": ["vulnerability-report", "sbom"],
                     "notation": {"trustStores": {"ca:scan": [str(self.tmp / "notation-root.pem")]},
                                  "trustPolicy": {"inline": policy}}}]}
        return facts_for(self.tmp, data, f"registry.example/{REPO}:v1")


def test_signed_real_reports_become_facts(tmp_path: Path) -> None:
    world = World(tmp_path)
    content.attest(world.writer, world.digest, [
        (world.scanner, kinds.VULN_PREDICATE, trivy_vuln_predicate()),
        (world.scanner, kinds.CYCLONEDX_PREDICATE, vector("trivy-license-cyclonedx.json")),
        (world.scanner, kinds.SPDX_PREDICATE, vector("trivy-conda-spdx.json")),
        (world.scanner, kinds.OPENVEX_PREDICATES[1], vex_for("CVE-2019-1551", world.digest))])
    facts = world.facts()
    assert facts["verified"] is True and facts["authorities"] == ["release"]
    (report,) = facts["content"]["vulnerabilityReports"]
    assert report["trusted"] is True and report["authorities"] == ["scanner"] and report["producedAt"] == SCANNED
    assert [v["id"] for v in report["vulnerabilities"]] == ["CVE-2019-1549"]
    assert report["suppressed"][0]["id"] == "CVE-2019-1551" and report["suppressed"][0]["authority"] == "scanner"
    assert sorted(s["format"] for s in facts["content"]["sboms"]) == ["CycloneDX 1.5", "SPDX-2.3"]
    assert all(s["trusted"] for s in facts["content"]["sboms"])
    assert facts["content"]["vex"][0]["statements"][0]["author"] == "Aqua Security"


def test_vex_suppresses_only_for_the_products_it_names(tmp_path: Path) -> None:
    # Trivy's fixture as written: its product is a Go module, not this image, so the finding stands.
    world = World(tmp_path)
    content.attest(world.writer, world.digest, [
        (world.scanner, kinds.VULN_PREDICATE, trivy_vuln_predicate()),
        (world.scanner, kinds.OPENVEX_PREDICATES[1], vex_for("CVE-2019-1551"))])
    facts = world.facts()
    (report,) = facts["content"]["vulnerabilityReports"]
    assert [v["id"] for v in report["vulnerabilities"]] == ["CVE-2019-1549", "CVE-2019-1551"]
    assert report["suppressed"] == []
    assert facts["content"]["vex"][0]["trusted"] is True
    assert facts["content"]["vex"][0]["statements"][0]["namesThisImage"] is False


@pytest.mark.parametrize(("product", "names"), [
    ("pkg:oci/app@sha256%3A{hex}?repository_url=registry.example/team/app", True),  # vexctl's OCI purl
    ("registry.example/team/app@sha256:{hex}", True),
    ("sha256:{hex}", True),
    ("pkg:oci/app@sha256%3A{hex}0", False),  # a longer digest is another one
    ("pkg:oci/app@sha256%3A" + "0" * 64, False),
    ("pkg:oci/app", False),
])
def test_vex_product_names_a_digest(product: str, names: bool) -> None:
    digest = "sha256:" + "ab" * 32
    statement = vex.from_openvex({"@context": "https://openvex.dev/ns/v0.2.0", "author": "a", "statements": [
        {"vulnerability": {"name": "CVE-1"}, "status": "not_affected",
         "products": [{"@id": product.format(hex="ab" * 32)}]}]})[0]
    assert statement.names(digest) is names
    hashed = vex.from_openvex({"@context": "https://openvex.dev/ns/v0.2.0", "author": "a", "statements": [
        {"vulnerability": "CVE-1", "status": "not_affected",
         "products": [{"@id": "x", "hashes": {"sha-256": "ab" * 32}}]}]})[0]
    assert hashed.names(digest)


def test_no_report(tmp_path: Path) -> None:
    facts = World(tmp_path).facts()
    assert facts["content"] == {"vulnerabilityReports": [], "sboms": [], "vex": []}


def test_unsigned_sarif_referrer_is_listed_untrusted(tmp_path: Path) -> None:
    world = World(tmp_path)
    content.attach_referrer(world.writer, world.image, (CONTENT / "trivy-alpine-310.sarif.json").read_bytes())
    (entry,) = world.facts()["content"]["vulnerabilityReports"]
    assert entry["source"] == "referrer" and entry["type"] == "application/sarif+json"
    assert entry["trusted"] is False and "counts" not in entry
    assert entry["reason"] == "not verified: not signed: no signature on the referrer"


def test_notation_signed_sarif_referrer_is_trusted(tmp_path: Path) -> None:
    world = World(tmp_path)
    sarif = content.attach_referrer(world.writer, world.image,
                                    (CONTENT / "trivy-alpine-310.sarif.json").read_bytes())
    notation.attach(world.writer, sarif, notation.sign(notation.target_of(sarif), world.notary))
    cdx = content.attach_referrer(world.writer, world.image, (CONTENT / "trivy-license-cyclonedx.json").read_bytes(),
                                  kinds.CYCLONEDX_ARTIFACT)
    notation.attach(world.writer, cdx, notation.sign(notation.target_of(cdx), world.notary, envelope="cose"), "cose")
    facts = world.facts()
    (report,) = facts["content"]["vulnerabilityReports"]
    assert report["source"] == "referrer" and report["trusted"] is True, report["reason"]
    assert report["authorities"] == ["notary-scanner"] and report["format"] == "sarif"
    assert [v["id"] for v in report["vulnerabilities"]] == ["CVE-2019-1549", "CVE-2019-1551"]
    (bom,) = facts["content"]["sboms"]
    assert bom["trusted"] is True and bom["licenses"] == ["BSD-3-Clause", "EPL-1.0", "MIT License"]
    # The referrers' signatures are not the image's.
    assert facts["authorities"] == ["release"] and facts["signatures"][0]["format"] == "cosign"


def test_notation_signature_over_another_referrer_does_not_count(tmp_path: Path) -> None:
    world = World(tmp_path)
    sarif = content.attach_referrer(world.writer, world.image,
                                    (CONTENT / "trivy-alpine-310.sarif.json").read_bytes())
    other = content.attach_referrer(world.writer, world.image, b'{"version": "2.1.0", "runs": []}')
    # A signature for `other`, attached to `sarif`: the envelope names the wrong target.
    envelope = notation.sign(notation.target_of(other), world.notary)
    layer = world.writer.add_blob(envelope, notation.JWS_MEDIA_TYPE)
    world.writer.add_manifest({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "artifactType": "application/vnd.cncf.notary.signature",
                               "config": world.writer.add_blob(b"{}", "application/vnd.oci.empty.v1+json"),
                               "layers": [layer], "subject": notation.target_of(sarif)})
    reports = {r["artifact"]: r for r in world.facts()["content"]["vulnerabilityReports"]}
    assert reports[sarif["digest"]]["trusted"] is False
    assert f"signature is for {other['digest']}, not for {sarif['digest']}" in reports[sarif["digest"]]["reason"]


def test_hostile_referrer_with_the_wrong_layer_media_type(tmp_path: Path) -> None:
    world = World(tmp_path)
    sarif = content.attach_referrer(world.writer, world.image, b"<xml/>", kinds.SARIF_ARTIFACT)
    manifest = json.loads((world.writer.path / "blobs/sha256" / sarif["digest"].split(":")[1]).read_text())
    manifest["layers"][0]["mediaType"] = "application/xml"
    bad = world.writer.add_manifest(manifest)
    notation.attach(world.writer, bad, notation.sign(notation.target_of(bad), world.notary))
    reports = {r["artifact"]: r for r in world.facts()["content"]["vulnerabilityReports"]}
    assert reports[bad["digest"]]["trusted"] is False
    assert "must have one layer of that media type (layers: application/xml)" in reports[bad["digest"]]["reason"]


def test_hostile_signed_referrer_nested_too_deep(tmp_path: Path) -> None:
    world = World(tmp_path)
    sarif = content.attach_referrer(world.writer, world.image, json.dumps(nested(500)).encode())
    notation.attach(world.writer, sarif, notation.sign(notation.target_of(sarif), world.notary))
    (report,) = world.facts()["content"]["vulnerabilityReports"]
    assert report["trusted"] is False and "counts" not in report
    assert "signed, but the document could not be read" in report["reason"]
    assert "deeper than the limit" in report["reason"]


def test_report_signed_by_an_unknown_key(tmp_path: Path) -> None:
    world = World(tmp_path)
    stranger = ec.generate_private_key(ec.SECP256R1())
    content.attest(world.writer, world.digest, [(stranger, kinds.VULN_PREDICATE, trivy_vuln_predicate())])
    (entry,) = world.facts()["content"]["vulnerabilityReports"]
    assert entry["trusted"] is False and "not trusted by authority scanner" in entry["reason"]


def test_report_signed_by_the_image_signer_is_not_a_scan(tmp_path: Path) -> None:
    world = World(tmp_path)
    content.attest(world.writer, world.digest, [(world.release, kinds.VULN_PREDICATE, trivy_vuln_predicate())])
    (entry,) = world.facts()["content"]["vulnerabilityReports"]
    assert entry["trusted"] is False
    assert entry["reason"] == "signed by release, not trusted for vulnerability-report (purposes: image)"


def test_a_scanner_key_cannot_sign_images(tmp_path: Path) -> None:
    world = World(tmp_path)
    other = world.writer.add_image("v1", b"signed by the scanner only")
    cosign.sign_image(world.writer, other["digest"], f"registry.example/{REPO}", world.scanner)
    facts = world.facts()
    assert facts["verified"] is False
    assert "authority scanner may not sign images (purposes: vulnerability-report, sbom, vex)" in facts["reason"]


def test_report_about_another_digest(tmp_path: Path) -> None:
    world = World(tmp_path)
    content.attest(world.writer, world.digest, [(world.scanner, kinds.VULN_PREDICATE, trivy_vuln_predicate())],
                   subject="sha256:" + "b" * 64)
    (entry,) = world.facts()["content"]["vulnerabilityReports"]
    assert entry["trusted"] is False and f"statement is about sha256:{'b' * 64}, not {world.digest}" in entry["reason"]


def test_payload_type_must_be_in_toto_exactly(tmp_path: Path) -> None:
    world = World(tmp_path)
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1", "predicateType": kinds.VULN_PREDICATE,
                            "subject": [{"digest": {"sha256": world.digest.split(":")[1]}}],
                            "predicate": trivy_vuln_predicate()}).encode()
    signature = cosign.sign(world.scanner, pae("application/json", statement))
    envelope = json.dumps({"payloadType": "application/json", "payload": base64.b64encode(statement).decode(),
                           "signatures": [{"sig": base64.b64encode(signature).decode()}]}).encode()
    cosign.attach_attestations(world.writer, world.digest, [envelope])
    facts = world.facts()
    assert facts["content"]["vulnerabilityReports"] == []  # never read as a report
    assert all(not a["verified"] and "not 'application/vnd.in-toto+json'" in a["reason"]
               for a in facts["attestations"])


def test_a_near_miss_predicate_type_is_not_content(tmp_path: Path) -> None:
    world = World(tmp_path)
    content.attest(world.writer, world.digest,
                   [(world.scanner, kinds.VULN_PREDICATE.replace("v1", "v2"), trivy_vuln_predicate())])
    facts = world.facts()
    assert facts["content"]["vulnerabilityReports"] == []
    assert [a["verified"] for a in facts["attestations"] if a["authority"] == "scanner"] == [True]


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_hostile_deeply_nested_report(tmp_path: Path) -> None:
    world = World(tmp_path)
    predicate = copy.deepcopy(trivy_vuln_predicate())
    predicate["scanner"]["result"]["Metadata"] = nested(200)
    content.attest(world.writer, world.digest, [(world.scanner, kinds.VULN_PREDICATE, predicate)])
    facts = world.facts()
    # Too deep to even read the statement: no report (its type is unknown), every authority says why.
    assert facts["content"]["vulnerabilityReports"] == []
    assert all("nests JSON deeper than the limit" in a["reason"] and not a["verified"]
               for a in facts["attestations"])


def test_hostile_huge_report(tmp_path: Path) -> None:
    world = World(tmp_path)
    predicate = copy.deepcopy(trivy_vuln_predicate())
    predicate["scanner"]["result"]["Padding"] = "x" * 300_000
    content.attest(world.writer, world.digest, [(world.scanner, kinds.VULN_PREDICATE, predicate)])
    facts = world.facts(maxBlobBytes=128 * 1024)
    assert facts["content"]["vulnerabilityReports"] == []
    assert all(not a["verified"] and "over the 131072-byte limit" in a["reason"] for a in facts["attestations"])
    assert len(json.dumps(facts)) < 16 * 1024


def test_hostile_wrong_media_type(tmp_path: Path) -> None:
    world = World(tmp_path)
    envelope = cosign.attestation_envelope(world.scanner, world.digest, kinds.VULN_PREDICATE, trivy_vuln_predicate())
    layer = world.writer.add_blob(envelope, kinds.SARIF_ARTIFACT)  # a signed envelope under the wrong media type
    world.writer.add_manifest(cosign.signature_manifest(world.writer, [layer]),
                              world.digest.replace(":", "-") + ".att")
    facts = world.facts()
    assert facts["content"]["vulnerabilityReports"] == []
    assert facts["attestations"] and all(
        a["reason"] == "attestation layer is not a DSSE envelope descriptor" for a in facts["attestations"])


def test_listed_vulnerabilities_are_bounded(tmp_path: Path) -> None:
    world = World(tmp_path)
    findings = [(f"CVE-2024-{n:05d}", "HIGH", "") for n in range(600)]
    predicate = content.vuln_predicate(content.trivy_report(findings, SCANNED), SCANNED)
    content.attest(world.writer, world.digest, [(world.scanner, kinds.VULN_PREDICATE, predicate)])
    (report,) = world.facts()["content"]["vulnerabilityReports"]
    assert report["counts"]["unfixable"]["HIGH"] == 600
    assert len(report["vulnerabilities"]) == 200 and report["vulnerabilitiesOmitted"] == 400


# --- config ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("purposes", "message"), [
    (["images"], "unknown purpose 'images': use image, vulnerability-report, sbom, vex"),
    ([], "must name at least one of image"),
])
def test_purposes_are_checked(tmp_path: Path, purposes: list[str], message: str) -> None:
    (tmp_path / "k.pub").write_bytes(cosign.public_pem(ec.generate_private_key(ec.SECP256R1())))
    data = {"authorities": [{"name": "a", "purposes": purposes, "cosign": {"publicKeys": [str(tmp_path / "k.pub")]}}]}
    with pytest.raises(ConfigError, match=message):
        build_config(data, write_yaml(tmp_path / "config.yaml", data))


def test_platforms_of_an_index_no_authority_covers_are_not_fetched(tmp_path: Path) -> None:
    writer = LayoutWriter(tmp_path / "layouts" / "registry.example", REPO)
    index = writer.add_index("v1", {"linux/amd64": b"amd64", "linux/arm64": b"arm64"})
    (tmp_path / "k.pub").write_bytes(cosign.public_pem(ec.generate_private_key(ec.SECP256R1())))
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": [{"name": "other", "scopes": ["elsewhere.example/*"],
                             "cosign": {"publicKeys": [str(tmp_path / "k.pub")]}}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    try:
        facts = engine.verify([f"registry.example/{REPO}:v1"], "t")[0].value
    finally:
        engine.shutdown()
    jsonschema.validate(facts, facts_schema())
    assert facts["digest"] == index["digest"] and len(facts["platforms"]) == 2
    assert {(p["verified"], p["reason"]) for p in facts["platforms"]} == {
        (False, f"no configured authority covers registry.example/{REPO}")}


def test_content_referrers_are_bounded_and_never_count_as_signatures(tmp_path: Path) -> None:
    world = World(tmp_path)
    for n in range(MAX_CONTENT_REFERRERS + 4):
        content.attach_referrer(world.writer, world.image, json.dumps({"version": "2.1.0", "n": n}).encode())
    facts = world.facts(maxSignatures=1)
    assert len(facts["content"]["vulnerabilityReports"]) == MAX_CONTENT_REFERRERS
    assert facts["verified"] is True and "signatureLimit" not in facts


# --- when a document without a time of its own was made ------------------------------------------------------

@pytest.mark.parametrize(("signature", "created", "expected"), [
    # An RFC 3161 timestamp over the signature (notation-go: authenticTimestamp) is authenticated and wins.
    (SignatureResult("notation", "a", "x", True, signed_at="2026-01-01T00:00:00Z", timestamp="2026-01-01T00:00:05Z"),
     "2025-01-01T00:00:00Z", ArtifactTime("2026-01-01T00:00:05Z", "timestamp", True)),
    # A Rekor integrated time (cosign: the SET over the entry) is authenticated.
    (SignatureResult("cosign", "a", "x", True, signed_at="2026-01-02T00:00:00Z",
                     tlog=TlogEntry(1, "2026-01-02T00:00:00Z")),
     "2025-01-01T00:00:00Z", ArtifactTime("2026-01-02T00:00:00Z", "tlog", True)),
    # notation's signingTime is what the signer says.
    (SignatureResult("notation", "a", "x", True, signed_at="2026-01-03T00:00:00Z"), "2025-01-01T00:00:00Z",
     ArtifactTime("2026-01-03T00:00:00Z", "signingTime", False)),
    # Else the referrer manifest's org.opencontainers.image.created (what Ratify reads).
    (SignatureResult("cosign", "a", "x", True), "2025-01-01T00:00:00Z",
     ArtifactTime("2025-01-01T00:00:00Z", "annotation", False)),
    (SignatureResult("cosign", "a", "x", True), "yesterday", None),
    (SignatureResult("cosign", "a", "x", True), None, None),
])
def test_a_referrers_time_comes_from_its_signature_first(signature: SignatureResult, created: object,
                                                         expected: ArtifactTime | None) -> None:
    assert signature_time(signature, created) == expected


def test_a_documents_own_time_is_kept_and_an_authenticated_one_is_added() -> None:
    signed = AttestationResult(kinds.VULN_PREDICATE, "scanner", True, "", "sha256:" + "a" * 64, None,
                               trivy_vuln_predicate(), signed_time=ArtifactTime("2026-01-01T00:00:00Z", "tlog", True))
    (entry,) = content_facts([signed], SCANNER, "LOW")["vulnerabilityReports"]
    assert (entry["producedAt"], entry["producedAtSource"], entry["producedAtAuthenticated"]) == (
        SCANNED, "document", False)
    assert entry["authenticatedAt"] == "2026-01-01T00:00:00Z"

