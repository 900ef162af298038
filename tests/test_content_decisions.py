"""What the shipped templates decide on multi-arch indexes and on content, with real signatures and the real
engine as external data: platforms in containerd's normal form, index entries without a platform, each
platform's own reports, counted-but-unlisted findings, cut lists, licences, audit-level signatures, VEX and
report times taken from signatures."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from provider.config import build_config
from provider.content import kinds
from provider.devkit import content, cosign, notation, rekor
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.facts import facts_schema
from provider.policy.external import EngineExternalData
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from provider.stores.base import OCI_INDEX
from tests.helpers import write_yaml

TEMPLATES = Path(__file__).resolve().parents[1] / "constraints" / "templates"
HOST = "registry.example"
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
TODAY = NOW.isoformat().replace("+00:00", "Z")
TRUSTED = notation.identity_with_intermediate("ec-256")  # the root the audited authority trusts
STRANGER = notation.identity_with_intermediate("ec-256")  # same subject, a root nobody trusts
SARIF = (Path(__file__).parent / "vectors" / "content" / "trivy-alpine-310.sarif.json").read_bytes()


class Scene:
    """Keys, an OCI layout per repository and a config: `release` signs images, `scanner` reports (with a
    Rekor key), `security` has no purposes (so it serves all four), `audited` is notation at level audit."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.release, self.scanner = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        self.security, self.log = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        self._engine: Engine | None = None

    def writer(self, repository: str) -> LayoutWriter:
        return LayoutWriter(self.tmp / "layouts" / HOST, repository)

    def image(self, repository: str, data: bytes = b"") -> tuple[LayoutWriter, dict[str, Any]]:
        """A single-platform image tagged v1 and signed by release."""
        writer = self.writer(repository)
        image = writer.add_image("v1", data or repository.encode())
        cosign.sign_image(writer, image["digest"], f"{HOST}/{repository}", self.release)
        return writer, image

    def engine(self) -> Engine:
        if self._engine is None:
            for name in ("release", "scanner", "security", "log"):
                (self.tmp / f"{name}.pub").write_bytes(cosign.public_pem(getattr(self, name)))
            (self.tmp / "root.pem").write_bytes(TRUSTED.root_pem)
            policy = {"version": "1.0", "trustPolicies": [{"name": "audit-first", "registryScopes": ["*"],
                                                           "signatureVerification": {"level": "audit"},
                                                           "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}
            data = {"stores": [{"type": "oci-layout", "path": str(self.tmp / "layouts"), "match": ["*"]}],
                    "authorities": [
                        {"name": "release", "purposes": ["image"],
                         "cosign": {"publicKeys": [str(self.tmp / "release.pub")]}},
                        {"name": "scanner", "purposes": ["vulnerability-report", "sbom", "vex"],
                         "cosign": {"publicKeys": [str(self.tmp / "scanner.pub")], "tlog": "optional",
                                    "rekorKeys": [str(self.tmp / "log.pub")]}},
                        {"name": "security", "cosign": {"publicKeys": [str(self.tmp / "security.pub")]}},
                        {"name": "audited", "notation": {"trustStores": {"ca:acme": [str(self.tmp / "root.pem")]},
                                                         "trustPolicy": {"inline": policy}}}]}
            self._engine = Engine(build_config(data, write_yaml(self.tmp / "config.yaml", data)))
        return self._engine

    def facts(self, repository: str) -> dict[str, Any]:
        item = self.engine().verify([f"{HOST}/{repository}:v1"], "t")[0]
        assert not item.error, item.error
        jsonschema.validate(item.value, facts_schema())
        return item.value

    def denied(self, kind: str, parameters: dict[str, Any], repository: str) -> list[str]:
        constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
                      "metadata": {"name": "c"}, "spec": {"parameters": parameters}}
        checks = PolicySet.from_paths([TEMPLATES, write_yaml(self.tmp / f"{kind}.yaml", constraint)],
                                      EngineExternalData(self.engine()))
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
               "spec": {"containers": [{"name": "main", "image": f"{HOST}/{repository}:v1"}]}}
        return sorted(v.message for v in admit(checks, pod).denied)

    def shutdown(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()


@pytest.fixture()
def scene(tmp_path: Path) -> Iterator[Scene]:
    world = Scene(tmp_path)
    yield world
    world.shutdown()


def index_of(scene: Scene, repository: str,
             entries: list[tuple[bytes, dict[str, str] | None, bool]]) -> tuple[str, list[str]]:
    """An index tagged v1, signed by release, of manifests (content, platform field or None, signed?);
    returns the index's digest and the manifests'."""
    writer = scene.writer(repository)
    manifests, digests = [], []
    for data, platform, signed in entries:
        image = writer.add_image(None, data)
        if signed:
            cosign.sign_image(writer, image["digest"], f"{HOST}/{repository}", scene.release)
        manifests.append({**image, **({"platform": platform} if platform is not None else {})})
        digests.append(image["digest"])
    index = writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, "v1", OCI_INDEX)
    cosign.sign_image(writer, index["digest"], f"{HOST}/{repository}", scene.release)
    return index["digest"], digests


def report(findings: list[tuple[str, str, str]], made: str = TODAY) -> dict[str, Any]:
    return content.vuln_predicate(content.trivy_report(findings, made), made)


# --- 33.2: index entries without a platform, platform names in containerd's normal form -------------------

def test_an_index_entry_without_a_platform_is_required_for_every_listed_platform(scene: Scene) -> None:
    # OCI image-spec: `platform` is optional in an index entry; a runtime may pick such an entry on any node.
    _, (_, bare) = index_of(scene, "bare", [(b"amd64", {"os": "linux", "architecture": "amd64"}, True),
                                            (b"no platform", None, False)])
    facts = scene.facts("bare")
    entry = next(p for p in facts["platforms"] if p["digest"] == bare)
    assert entry["platformSpecified"] is False and entry["platform"] == "" and entry["verified"] is False
    for parameters in ({"platforms": ["linux/amd64"]}, {"platformSignatures": "every"}):
        assert scene.denied("K8sSignedImages", parameters, "bare") == [
            f"image {HOST}/bare:v1 is not attested: platform (no platform in the index) ({bare}) is not signed: "
            f"no signatures found for {bare}"]


@pytest.mark.parametrize(("platform", "listed"), [
    # containerd/platforms database.go normalizeArch: aarch64 is arm64, variant 8/v8 of arm64 is dropped.
    ({"os": "linux", "architecture": "aarch64"}, "linux/arm64"),
    ({"os": "linux", "architecture": "arm64", "variant": "v8"}, "linux/arm64"),
    ({"os": "linux", "architecture": "arm64"}, "linux/arm64/v8"),
    ({"os": "linux", "architecture": "arm64"}, "linux/aarch64"),
    # normalizeArch: x86_64 and x86-64 are amd64; armhf is arm/v7; arm without a variant is arm/v7.
    ({"os": "linux", "architecture": "x86_64"}, "linux/amd64"),
    ({"os": "linux", "architecture": "armhf"}, "linux/arm/v7"),
    ({"os": "linux", "architecture": "arm"}, "linux/arm/v7"),
    # normalizeOS: lowercased.
    ({"os": "Linux", "architecture": "amd64"}, "linux/amd64"),
])
def test_platform_names_are_compared_in_containerds_normal_form(scene: Scene, platform: dict[str, str],
                                                                listed: str) -> None:
    _, (unsigned,) = index_of(scene, "spelled", [(b"unsigned platform", platform, False)])
    denied = scene.denied("K8sSignedImages", {"platforms": [listed]}, "spelled")
    assert len(denied) == 1 and f"({unsigned}) is not signed: no signatures found" in denied[0]


def test_a_platform_name_that_is_not_os_and_architecture_denies(scene: Scene) -> None:
    index_of(scene, "typo", [(b"amd64", {"os": "linux", "architecture": "amd64"}, True)])
    assert scene.denied("K8sSignedImages", {"platforms": ["arm64"]}, "typo") == [
        f"image {HOST}/typo:v1 is not attested: parameter platforms entry arm64 is not os/architecture[/variant]"]


# --- 33.3: each platform manifest's own reports --------------------------------------------------------------

def test_a_platform_manifests_own_report_is_checked(scene: Scene) -> None:
    index_digest, (_, arm64) = index_of(scene, "multi", [(b"amd64", {"os": "linux", "architecture": "amd64"}, True),
                                                         (b"arm64", {"os": "linux", "architecture": "arm64"}, True)])
    writer = scene.writer("multi")
    content.attest(writer, index_digest, [(scene.scanner, kinds.VULN_PREDICATE, report([]))])
    content.attest(writer, arm64, [(scene.scanner, kinds.VULN_PREDICATE,
                                    report([("CVE-2024-1111", "CRITICAL", "2.0")]))])
    facts = scene.facts("multi")
    by_arch = {p["architecture"]: p for p in facts["platforms"]}
    assert by_arch["arm64"]["content"]["vulnerabilityReports"][0]["trusted"] is True
    assert by_arch["amd64"]["content"]["vulnerabilityReports"] == []
    parameters = {"requireVulnerabilityReport": True, "maximumSeverity": "HIGH"}
    assert scene.denied("K8sImageContent", parameters, "multi") == [
        f"image {HOST}/multi:v1 platform linux/arm64 ({arm64}) has CVE-2024-1111 (CRITICAL, fixable) over "
        f"maximumSeverity HIGH (report {by_arch['arm64']['content']['vulnerabilityReports'][0]['artifact']} by "
        "scanner)"]
    # Only the platforms the constraint names are checked; the index's report covers amd64's requirement.
    assert scene.denied("K8sImageContent", {**parameters, "platforms": ["linux/amd64"]}, "multi") == []


def test_a_platform_over_the_per_index_limit_has_unknown_content(scene: Scene) -> None:
    # provider.facts.MAX_PLATFORMS platform manifests are looked at; the content of the next is unknown.
    entries: list[tuple[bytes, dict[str, str] | None, bool]] = [
        (f"platform {n}".encode(), {"os": "linux", "architecture": "amd64", "variant": f"v{n}"}, True)
        for n in range(17)]
    _, digests = index_of(scene, "wide", entries)
    facts = scene.facts("wide")
    assert digests[-1] not in {p["digest"] for p in facts["platforms"]}  # only what was checked is listed
    assert facts["platformLimit"]["omitted"] == 1
    assert scene.denied("K8sImageContent", {}, "wide") == [
        f"image {HOST}/wide:v1 content of 1 platform manifest(s) could not be checked: over the provider's limit "
        "of 16 per index"]
    assert scene.denied("K8sImageContent", {"platforms": ["linux/amd64/v16"]}, "wide") == [
        f"image {HOST}/wide:v1 content of platform linux/amd64/v16 could not be checked: not among the 16 "
        "platform manifests checked (1 more not checked)"]
    assert scene.denied("K8sImageContent", {"platforms": ["linux/amd64/v1"]}, "wide") == []


# --- 33.4: counts, not only the listed ids --------------------------------------------------------------------

def attested(scene: Scene, repository: str, predicates: list[tuple[Any, str, Any]]) -> None:
    writer, image = scene.image(repository)
    content.attest(writer, image["digest"], predicates)


def test_an_unknown_severity_finding_is_counted_though_not_listed(scene: Scene) -> None:
    # verification.vulnerabilityFloor LOW: UNKNOWN findings are counted, never listed by id.
    attested(scene, "fresh-cve", [(scene.scanner, kinds.VULN_PREDICATE, report([("CVE-2026-0001", "UNKNOWN", "")]))])
    facts = scene.facts("fresh-cve")
    (entry,) = facts["content"]["vulnerabilityReports"]
    assert entry["vulnerabilities"] == [] and entry["counts"]["unfixable"]["UNKNOWN"] == 1
    denied = scene.denied("K8sImageContent", {"maximumSeverity": "BLOCK_ALL"}, "fresh-cve")
    assert len(denied) == 1 and denied[0].startswith(
        f"image {HOST}/fresh-cve:v1 has 1 UNKNOWN unfixable vulnerabilities over maximumSeverity BLOCK_ALL that "
        "the report does not list by id (ids are listed down to LOW, 0 more omitted), so allowlistCVEs cannot be "
        "checked for them")
    denied = scene.denied("K8sImageContent", {"denylistCVEs": ["CVE-2026-0001"]}, "fresh-cve")
    assert len(denied) == 1
    assert "cannot be checked against denylistCVEs: the report lists 0 of its 1 vulnerabilities by id" in denied[0]
    assert "so CVE-2026-0001 may be among the rest" in denied[0]
    assert scene.denied("K8sImageContent", {"maximumSeverity": "LOW"}, "fresh-cve") == []  # UNKNOWN < LOW


def test_a_denylisted_id_beyond_the_listed_200_denies(scene: Scene) -> None:
    findings = [(f"CVE-2024-{n:04d}", "LOW", "") for n in range(201)]
    attested(scene, "long", [(scene.scanner, kinds.VULN_PREDICATE, report(findings))])
    (entry,) = scene.facts("long")["content"]["vulnerabilityReports"]
    assert entry["vulnerabilitiesOmitted"] == 1 and "CVE-2024-0200" not in {v["id"] for v in entry["vulnerabilities"]}
    denied = scene.denied("K8sImageContent", {"denylistCVEs": ["CVE-2024-0200"]}, "long")
    assert len(denied) == 1
    assert ("lists 200 of its 201 vulnerabilities by id (ids are listed down to LOW, 1 more omitted), so "
            "CVE-2024-0200 may be among the rest") in denied[0]
    # A listed denylisted id is still named as before.
    assert scene.denied("K8sImageContent", {"denylistCVEs": ["CVE-2024-0001"]}, "long") == [
        f"image {HOST}/long:v1 has denylisted CVE-2024-0001 (CVE-2024-0001, LOW) (report {entry['artifact']} by "
        "scanner)"]


# --- 33.5: licences ---------------------------------------------------------------------------------------------

def test_licences_match_case_insensitively(scene: Scene) -> None:
    # SPDX specification, Annex D: license identifiers are matched case-insensitively.
    attested(scene, "lower", [(scene.scanner, kinds.CYCLONEDX_PREDICATE,
                               content.cyclonedx({"readline": "gpl-3.0-only"}, TODAY))])
    denied = scene.denied("K8sImageContent", {"disallowedLicenses": ["GPL-3.0-only"]}, "lower")
    assert len(denied) == 1 and "contains disallowed licence gpl-3.0-only (SBOM" in denied[0]


def test_a_cut_licence_list_cannot_clear_an_sbom(scene: Scene) -> None:
    # 200 licence ids sorting before GPL-3.0-only push it off the list.
    licences = {f"pkg-{n}": f"AAA-{n:03d}" for n in range(200)} | {"readline": "GPL-3.0-only"}
    attested(scene, "many-licences", [(scene.scanner, kinds.CYCLONEDX_PREDICATE, content.cyclonedx(licences, TODAY))])
    (bom,) = scene.facts("many-licences")["content"]["sboms"]
    assert bom["licensesTruncated"] is True and "GPL-3.0-only" not in bom["licenses"]
    assert scene.denied("K8sImageContent", {"disallowedLicenses": ["GPL-3.0-only"]}, "many-licences") == [
        f"image {HOST}/many-licences:v1 cannot be checked against disallowedLicenses: SBOM {bom['artifact']} lists "
        "only its first 200 licences and a disallowed one may be among the rest (by scanner)"]
    assert scene.denied("K8sImageContent", {}, "many-licences") == []


# --- 33.6: one definition of "vouched for", for platforms and VEX -----------------------------------------------

def test_an_audit_level_signature_does_not_vouch_for_a_platform(scene: Scene) -> None:
    writer = scene.writer("audited")
    amd64 = writer.add_image(None, b"amd64 signed by a stranger")
    notation.attach(writer, amd64, notation.sign(notation.target_of(amd64), STRANGER))
    index = writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**amd64, "platform": {"os": "linux", "architecture": "amd64"}}]}, "v1", OCI_INDEX)
    cosign.sign_image(writer, index["digest"], f"{HOST}/audited", scene.release)
    (platform,) = scene.facts("audited")["platforms"]
    assert platform["verified"] is True and platform["auditLevelAuthorities"] == ["audited"]
    unsigned = f"platform linux/amd64 ({amd64['digest']}) is not signed"
    assert scene.denied("K8sSignedImages", {"platformSignatures": "every"}, "audited") == [
        f"image {HOST}/audited:v1 is not attested: {unsigned}: signed only at the notation audit level, "
        "authenticity failed (audited); set acceptAuditLevel to accept"]
    assert scene.denied("K8sSignedImages", {"platformSignatures": "every", "acceptAuditLevel": True}, "audited") == []
    # Named authorities: the index is release's, the platform audited's only at the audit level.
    parameters = {"platforms": ["linux/amd64"], "authorities": ["release", "audited"]}
    assert scene.denied("K8sSignedImages", parameters, "audited") == [
        f"image {HOST}/audited:v1 is not attested: {unsigned}: not verified by any of audited, release"]
    assert scene.denied("K8sSignedImages", {**parameters, "acceptAuditLevel": True}, "audited") == []


def test_a_report_signed_only_at_the_audit_level_does_not_count(scene: Scene) -> None:
    writer, image = scene.image("audited-report")
    sarif = content.attach_referrer(writer, image, SARIF)
    notation.attach(writer, sarif, notation.sign(notation.target_of(sarif), STRANGER))
    (entry,) = scene.facts("audited-report")["content"]["vulnerabilityReports"]
    assert entry["trusted"] is True and entry["auditLevelAuthorities"] == ["audited"]
    assert scene.denied("K8sImageContent", {"requireVulnerabilityReport": True}, "audited-report") == [
        f"image {HOST}/audited-report:v1 has no signed vulnerability report (found: {sarif['digest']} signed by "
        "audited only at the notation audit level (authenticity failed); set acceptAuditLevel to accept)"]
    assert scene.denied("K8sImageContent", {"requireVulnerabilityReport": True, "acceptAuditLevel": True},
                        "audited-report") == []


def test_vex_counts_only_from_an_accepted_authority(scene: Scene) -> None:
    writer, image = scene.image("vexed")
    product = f"pkg:oci/vexed@{image['digest'].replace(':', '%3A')}"
    content.attest(writer, image["digest"], [
        (scene.scanner, kinds.VULN_PREDICATE, report([("CVE-2024-1111", "CRITICAL", "2.0")])),
        # security has no purposes, so it serves vex too; the constraint trusts only scanner for reports.
        (scene.security, kinds.OPENVEX_PREDICATES[1], content.openvex(["CVE-2024-1111"], "a team", TODAY, product))])
    (entry,) = scene.facts("vexed")["content"]["vulnerabilityReports"]
    assert entry["suppressed"][0]["authority"] == "security" and entry["counts"]["fixable"]["CRITICAL"] == 0
    parameters = {"vulnerabilityReportAuthorities": ["scanner"], "maximumSeverity": "HIGH"}
    denied = scene.denied("K8sImageContent", parameters, "vexed")
    assert len(denied) == 1 and "has CVE-2024-1111 (CRITICAL, fixable) over maximumSeverity HIGH" in denied[0]
    assert scene.denied("K8sImageContent", {**parameters, "vexAuthorities": ["security"]}, "vexed") == []


def test_vex_suppressions_cut_by_the_bound_cannot_be_counted_again(scene: Scene) -> None:
    writer, image = scene.image("many-vexed")
    product = f"pkg:oci/many-vexed@{image['digest'].replace(':', '%3A')}"
    ids = [f"CVE-2024-{n:04d}" for n in range(201)]
    content.attest(writer, image["digest"], [
        (scene.scanner, kinds.VULN_PREDICATE, report([(i, "CRITICAL", "") for i in ids])),
        (scene.security, kinds.OPENVEX_PREDICATES[1], content.openvex(ids, "a team", TODAY, product))])
    (entry,) = scene.facts("many-vexed")["content"]["vulnerabilityReports"]
    assert entry["suppressedOmitted"] == 1 and sum(entry["counts"]["unfixable"].values()) == 0
    denied = scene.denied("K8sImageContent", {"vulnerabilityReportAuthorities": ["scanner"],
                                              "maximumSeverity": "HIGH"}, "many-vexed")
    assert len(denied) == 201  # the 200 listed, counted again, and the cut
    assert any(f"cannot be checked: report {entry['artifact']} lists only the first 200 findings VEX took out"
               in message for message in denied)
    assert scene.denied("K8sImageContent", {"vexAuthorities": ["security"], "maximumSeverity": "HIGH"},
                        "many-vexed") == []


def test_vex_about_another_image_suppresses_nothing(scene: Scene) -> None:
    writer, image = scene.image("other-product")
    content.attest(writer, image["digest"], [
        (scene.scanner, kinds.VULN_PREDICATE, report([("CVE-2024-1111", "CRITICAL", "2.0")])),
        (scene.scanner, kinds.OPENVEX_PREDICATES[1], content.openvex(["CVE-2024-1111"], "a team", TODAY,
                                                                     "pkg:oci/other@sha256%3A" + "0" * 64))])
    denied = scene.denied("K8sImageContent", {"maximumSeverity": "HIGH"}, "other-product")
    assert len(denied) == 1 and "has CVE-2024-1111 (CRITICAL, fixable)" in denied[0]


# --- 25.10: report times from signatures ------------------------------------------------------------------------


def test_a_sarif_report_is_dated_by_its_notation_signing_time(scene: Scene) -> None:
    writer, image = scene.image("sarif-notation")
    sarif = content.attach_referrer(writer, image, SARIF)
    signing = NOW - datetime.timedelta(hours=1)
    notation.attach(writer, sarif, notation.sign(notation.target_of(sarif), TRUSTED, signing_time=signing))
    (entry,) = scene.facts("sarif-notation")["content"]["vulnerabilityReports"]
    assert entry["trusted"] is True and entry["authorities"] == ["audited"]
    assert (entry["producedAt"], entry["producedAtSource"], entry["producedAtAuthenticated"]) == (
        signing.isoformat().replace("+00:00", "Z"), "signingTime", False)
    assert entry["authenticatedAt"] == ""
    assert scene.denied("K8sImageContent", {"maximumReportAge": "168h"}, "sarif-notation") == []
    assert scene.denied("K8sImageContent", {"maximumReportAge": "168h", "requireAuthenticatedReportTime": True},
                        "sarif-notation") == [
        f"image {HOST}/sarif-notation:v1 has no signed vulnerability report that says an authenticated time "
        "(RFC 3161 timestamp or Rekor entry) (maximumReportAge 168h)"]


def test_a_sarif_report_is_dated_by_the_rekor_entry_of_its_signature(scene: Scene) -> None:
    writer, image = scene.image("sarif-rekor")
    sarif = content.attach_referrer(writer, image, SARIF, created="2020-01-01T00:00:00Z")
    body = cosign.payload(sarif["digest"], f"{HOST}/sarif-rekor")
    signature = cosign.sign(scene.scanner, body)
    logged = int((NOW - datetime.timedelta(hours=2)).timestamp())
    bundle = rekor.hashedrekord_bundle(scene.log, body, signature, cosign.public_pem(scene.scanner), logged)
    cosign.attach(writer, sarif["digest"], [cosign.signature_layer(writer, body, signature,
                                                                   {"dev.sigstore.cosign/bundle": bundle})])
    (entry,) = scene.facts("sarif-rekor")["content"]["vulnerabilityReports"]
    when = datetime.datetime.fromtimestamp(logged, datetime.UTC).isoformat().replace("+00:00", "Z")
    # The authenticated time wins over the manifest's annotation.
    assert (entry["producedAt"], entry["producedAtSource"], entry["producedAtAuthenticated"]) == (when, "tlog", True)
    assert entry["authenticatedAt"] == when
    assert scene.denied("K8sImageContent", {"maximumReportAge": "168h", "requireAuthenticatedReportTime": True},
                        "sarif-rekor") == []


def test_a_sarif_report_falls_back_to_the_manifests_created_annotation(scene: Scene) -> None:
    # Ratify reads org.opencontainers.image.created of the referrer manifest; oras attach writes it.
    writer, image = scene.image("sarif-created")
    sarif = content.attach_referrer(writer, image, SARIF, created="2020-01-01T00:00:00Z")
    cosign.sign_image(writer, sarif["digest"], f"{HOST}/sarif-created", scene.scanner)
    (entry,) = scene.facts("sarif-created")["content"]["vulnerabilityReports"]
    assert (entry["producedAt"], entry["producedAtSource"], entry["producedAtAuthenticated"]) == (
        "2020-01-01T00:00:00Z", "annotation", False)
    assert scene.denied("K8sImageContent", {"maximumReportAge": "168h"}, "sarif-created") == [
        f"image {HOST}/sarif-created:v1 has a stale vulnerability report: the newest signed one was made "
        "2020-01-01T00:00:00Z, over maximumReportAge 168h"]


def test_an_attested_report_keeps_its_own_time_and_gains_its_rekor_time(scene: Scene) -> None:
    # A cosign vuln attestation says when the scan finished; its Rekor entry says when it was signed, and only
    # the latter is authenticated (cosign verify-attestation checks the SET over the entry).
    writer, image = scene.image("attested-rekor")
    envelope = cosign.attestation_envelope(scene.scanner, image["digest"], kinds.VULN_PREDICATE,
                                           report([], "2020-01-01T00:00:00Z"))
    logged = int((NOW - datetime.timedelta(hours=1)).timestamp())
    bundle = rekor.entry_bundle(scene.log, rekor.intoto_body(envelope, cosign.public_pem(scene.scanner)), logged)
    cosign.attach_attestations(writer, image["digest"], [envelope], [{"dev.sigstore.cosign/bundle": bundle}])
    (entry,) = scene.facts("attested-rekor")["content"]["vulnerabilityReports"]
    when = datetime.datetime.fromtimestamp(logged, datetime.UTC).isoformat().replace("+00:00", "Z")
    assert (entry["producedAt"], entry["producedAtSource"], entry["authenticatedAt"]) == (
        "2020-01-01T00:00:00Z", "document", when)
    stale = [f"image {HOST}/attested-rekor:v1 has a stale vulnerability report: the newest signed one was made "
             "2020-01-01T00:00:00Z, over maximumReportAge 168h"]
    assert scene.denied("K8sImageContent", {"maximumReportAge": "168h"}, "attested-rekor") == stale
    # Signed an hour ago, but the scan it carries is as old as it says.
    assert scene.denied("K8sImageContent", {"maximumReportAge": "168h", "requireAuthenticatedReportTime": True},
                        "attested-rekor") == stale


def test_an_authenticated_time_bounds_a_fresh_looking_report(scene: Scene) -> None:
    # The document says today, its Rekor entry says two weeks ago: the report existed two weeks ago.
    writer, image = scene.image("backdated")
    envelope = cosign.attestation_envelope(scene.scanner, image["digest"], kinds.VULN_PREDICATE, report([]))
    logged = int((NOW - datetime.timedelta(days=14)).timestamp())
    bundle = rekor.entry_bundle(scene.log, rekor.intoto_body(envelope, cosign.public_pem(scene.scanner)), logged)
    cosign.attach_attestations(writer, image["digest"], [envelope], [{"dev.sigstore.cosign/bundle": bundle}])
    when = datetime.datetime.fromtimestamp(logged, datetime.UTC).isoformat().replace("+00:00", "Z")
    assert scene.denied("K8sImageContent", {"maximumReportAge": "168h"}, "backdated") == []
    assert scene.denied("K8sImageContent", {"maximumReportAge": "168h", "requireAuthenticatedReportTime": True},
                        "backdated") == [
        f"image {HOST}/backdated:v1 has a stale vulnerability report: the newest signed one was made {when}, over "
        "maximumReportAge 168h"]

