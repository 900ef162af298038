"""Content facts and multi-arch checks through Debian's docker-registry (no referrers API: the referrers tag)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import jsonschema
from cryptography.hazmat.primitives.asymmetric import ec

from provider.config import build_config
from provider.content import kinds
from provider.devkit import content, cosign, notation
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.facts import MAX_PLATFORMS, facts_schema
from provider.policy.external import EngineExternalData
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from provider.stores.base import MAX_MANIFEST_BYTES, OCI_INDEX
from tests.helpers import VECTORS, facts_for, write_yaml
from tests.registry import RegistryServer

CONTENT = VECTORS / "content"
TEMPLATES = Path(__file__).resolve().parents[2] / "constraints" / "templates"


def verify(tmp_path: Path, registry: RegistryServer, keys: dict[str, Any], image: str) -> dict[str, Any]:
    for name, key in keys.items():
        (tmp_path / f"{name}.pub").write_bytes(cosign.public_pem(key))
    data = {"stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host]}],
            "authorities": [{"name": "release", "purposes": ["image"],
                             "cosign": {"publicKeys": [str(tmp_path / "release.pub")]}},
                            {"name": "scanner", "purposes": ["vulnerability-report", "sbom"],
                             "cosign": {"publicKeys": [str(tmp_path / "scanner.pub")]}}]}
    return facts_for(tmp_path, data, f"{registry.host}/{image}")


def test_signed_report_and_unsigned_sarif_referrer(tmp_path: Path, registry: RegistryServer) -> None:
    release, scanner = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    writer = LayoutWriter(tmp_path / "staging", "team/scanned")
    image = writer.add_image("v1", b"scanned image")
    name = f"{registry.host}/team/scanned"
    cosign.sign_image(writer, image["digest"], name, release)
    trivy = json.loads((CONTENT / "trivy-alpine-310.json").read_text())
    content.attest(writer, image["digest"], [
        (scanner, kinds.VULN_PREDICATE, content.vuln_predicate(trivy, "2024-03-10T14:57:31Z")),
        (scanner, kinds.CYCLONEDX_PREDICATE, json.loads((CONTENT / "trivy-license-cyclonedx.json").read_text()))])
    sarif = content.attach_referrer(writer, image, (CONTENT / "trivy-alpine-310.sarif.json").read_bytes())
    writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [sarif]},
                        image["digest"].replace(":", "-"), OCI_INDEX)
    registry.push_layout(writer.path, "team/scanned")
    facts = verify(tmp_path, registry, {"release": release, "scanner": scanner}, "team/scanned:v1")
    assert facts["verified"] is True and facts["authorities"] == ["release"]
    reports = {r["source"]: r for r in facts["content"]["vulnerabilityReports"]}
    assert reports["attestation"]["trusted"] is True
    assert [v["id"] for v in reports["attestation"]["vulnerabilities"]] == ["CVE-2019-1549", "CVE-2019-1551"]
    assert reports["referrer"]["trusted"] is False and reports["referrer"]["artifact"] == sarif["digest"]
    assert reports["referrer"]["reason"] == "not verified: not signed: no signature on the referrer"
    (bom,) = facts["content"]["sboms"]
    assert bom["trusted"] is True and "EPL-1.0" in bom["licenses"]


def test_notation_signed_sarif_referrer_through_the_referrers_tag(tmp_path: Path, registry: RegistryServer) -> None:
    release = ec.generate_private_key(ec.SECP256R1())
    identity = notation.identity_with_intermediate("ec-256")
    writer = LayoutWriter(tmp_path / "staging", "team/sarif")
    image = writer.add_image("v1", b"image with a signed SARIF report")
    cosign.sign_image(writer, image["digest"], f"{registry.host}/team/sarif", release)
    sarif = content.attach_referrer(writer, image, (CONTENT / "trivy-alpine-310.sarif.json").read_bytes())
    signature = notation.attach(writer, sarif, notation.sign(notation.target_of(sarif), identity))
    # No referrers API: the image's referrers tag lists the report, the report's lists its signature.
    for subject, referrers in ((image, [sarif]), (sarif, [signature])):
        writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": referrers},
                            subject["digest"].replace(":", "-"), OCI_INDEX)
    registry.push_layout(writer.path, "team/sarif")
    (tmp_path / "root.pem").write_bytes(identity.root_pem)
    policy = {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                                   "signatureVerification": {"level": "strict"},
                                                   "trustStores": ["ca:scan"], "trustedIdentities": ["*"]}]}
    (tmp_path / "release.pub").write_bytes(cosign.public_pem(release))
    data = {"stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host]}],
            "authorities": [{"name": "release", "purposes": ["image"],
                             "cosign": {"publicKeys": [str(tmp_path / "release.pub")]}},
                            {"name": "scanner", "purposes": ["vulnerability-report"],
                             "notation": {"trustStores": {"ca:scan": [str(tmp_path / "root.pem")]},
                                          "trustPolicy": {"inline": policy}}}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    try:
        item = engine.verify([f"{registry.host}/team/sarif:v1"], "t")[0]
    finally:
        engine.shutdown()
    assert not item.error, item.error
    jsonschema.validate(item.value, facts_schema())
    assert item.value["authorities"] == ["release"]  # the scanner's notation key signs no image
    (report,) = item.value["content"]["vulnerabilityReports"]
    assert report["trusted"] is True and report["authorities"] == ["scanner"], report["reason"]
    assert report["source"] == "referrer" and report["artifact"] == sarif["digest"]
    assert report["counts"]["fixable"]["MEDIUM"] == 2


def test_index_with_one_of_two_platforms_signed(tmp_path: Path, registry: RegistryServer) -> None:
    release = ec.generate_private_key(ec.SECP256R1())
    writer = LayoutWriter(tmp_path / "staging", "team/multi")
    amd64 = writer.add_image(None, b"amd64", "linux/amd64")
    arm64 = writer.add_image(None, b"arm64", "linux/arm64")
    provenance = writer.add_image(None, b"attestation manifest", "unknown/unknown")
    index = writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**amd64, "platform": {"os": "linux", "architecture": "amd64"}},
        {**arm64, "platform": {"os": "linux", "architecture": "arm64"}},
        {**provenance, "platform": {"os": "unknown", "architecture": "unknown"}}]}, "v1", OCI_INDEX)
    name = f"{registry.host}/team/multi"
    cosign.sign_image(writer, index["digest"], name, release)
    cosign.sign_image(writer, amd64["digest"], name, release)
    registry.push_layout(writer.path, "team/multi")
    facts = verify(tmp_path, registry, {"release": release, "scanner": ec.generate_private_key(ec.SECP256R1())},
                   "team/multi:v1")
    assert facts["verified"] is True  # the index's own signature
    by_arch = {p["architecture"]: p for p in facts["platforms"]}
    assert by_arch["amd64"]["verified"] is True and by_arch["amd64"]["authorities"] == ["release"]
    assert by_arch["arm64"]["verified"] is False
    assert by_arch["arm64"]["reason"] == f"no signatures found for {arm64['digest']}"
    assert by_arch["unknown"]["attestationManifest"] is True and "verified" not in by_arch["unknown"]


def test_platform_reports_and_a_sarif_dated_by_its_signature(tmp_path: Path, registry: RegistryServer) -> None:
    """An index whose arm64 manifest carries a scanner-signed CRITICAL report, next to a clean report on the
    index and a notation-signed SARIF on amd64 (no time of its own: dated by its signing time)."""
    release, scanner = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    identity = notation.identity_with_intermediate("ec-256")
    writer = LayoutWriter(tmp_path / "staging", "team/multi-content")
    amd64 = writer.add_image(None, b"amd64", "linux/amd64")
    arm64 = writer.add_image(None, b"arm64", "linux/arm64")
    index = writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**amd64, "platform": {"os": "linux", "architecture": "amd64"}},
        {**arm64, "platform": {"os": "linux", "architecture": "aarch64"}}]}, "v1", OCI_INDEX)
    name = f"{registry.host}/team/multi-content"
    for digest in (index["digest"], amd64["digest"], arm64["digest"]):
        cosign.sign_image(writer, digest, name, release)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    made = now.isoformat().replace("+00:00", "Z")
    trivy = content.trivy_report([("CVE-2024-1111", "CRITICAL", "2.0")], made)
    content.attest(writer, index["digest"], [(scanner, kinds.VULN_PREDICATE,
                                              content.vuln_predicate(content.trivy_report([], made), made))])
    content.attest(writer, arm64["digest"], [(scanner, kinds.VULN_PREDICATE, content.vuln_predicate(trivy, made))])
    sarif = content.attach_referrer(writer, amd64, (CONTENT / "trivy-alpine-310.sarif.json").read_bytes())
    signing = now - datetime.timedelta(hours=3)
    signature = notation.attach(writer, sarif, notation.sign(notation.target_of(sarif), identity, signing_time=signing))
    for subject, referrers in ((amd64, [sarif]), (sarif, [signature])):  # no referrers API: the referrers tag
        writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": referrers},
                            subject["digest"].replace(":", "-"), OCI_INDEX)
    registry.push_layout(writer.path, "team/multi-content")
    (tmp_path / "root.pem").write_bytes(identity.root_pem)
    for key_name, key in (("release", release), ("scanner", scanner)):
        (tmp_path / f"{key_name}.pub").write_bytes(cosign.public_pem(key))
    policy = {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                                   "signatureVerification": {"level": "strict"},
                                                   "trustStores": ["ca:scan"], "trustedIdentities": ["*"]}]}
    data = {"stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host]}],
            "authorities": [{"name": "release", "purposes": ["image"],
                             "cosign": {"publicKeys": [str(tmp_path / "release.pub")]}},
                            {"name": "scanner", "purposes": ["vulnerability-report"],
                             "cosign": {"publicKeys": [str(tmp_path / "scanner.pub")]}},
                            {"name": "notary-scanner", "purposes": ["vulnerability-report"],
                             "notation": {"trustStores": {"ca:scan": [str(tmp_path / "root.pem")]},
                                          "trustPolicy": {"inline": policy}}}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    try:
        item = engine.verify([f"{name}:v1"], "t")[0]
        assert not item.error, item.error
        jsonschema.validate(item.value, facts_schema())
        by_arch = {p["architecture"]: p for p in item.value["platforms"]}
        assert by_arch["aarch64"]["platform"] == "linux/arm64"
        (critical,) = by_arch["aarch64"]["content"]["vulnerabilityReports"]
        assert critical["trusted"] is True and critical["counts"]["fixable"]["CRITICAL"] == 1
        (dated,) = by_arch["amd64"]["content"]["vulnerabilityReports"]
        assert dated["trusted"] is True and dated["authorities"] == ["notary-scanner"], dated["reason"]
        assert (dated["producedAt"], dated["producedAtSource"]) == (
            signing.isoformat().replace("+00:00", "Z"), "signingTime")
        constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sImageContent",
                      "metadata": {"name": "c"}, "spec": {"parameters": {
                          "requireVulnerabilityReport": True, "maximumSeverity": "HIGH", "maximumReportAge": "24h",
                          "platforms": ["linux/arm64"]}}}
        checks = PolicySet.from_paths([TEMPLATES, write_yaml(tmp_path / "constraint.yaml", constraint)],
                                      EngineExternalData(engine))
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
               "spec": {"containers": [{"name": "main", "image": f"{name}:v1"}]}}
        denied = [v.message for v in admit(checks, pod).denied]
        assert denied == [f"image {name}:v1 platform linux/arm64 ({arm64['digest']}) has CVE-2024-1111 (CRITICAL, "
                          f"fixable) over maximumSeverity HIGH (report {critical['artifact']} by scanner)"]
        constraint["spec"]["parameters"]["platforms"] = ["linux/amd64"]
        checks = PolicySet.from_paths([TEMPLATES, write_yaml(tmp_path / "constraint.yaml", constraint)],
                                      EngineExternalData(engine))
        assert [v.message for v in admit(checks, pod).denied] == []
    finally:
        engine.shutdown()



def test_a_huge_index_answers_with_what_was_checked_and_a_count(tmp_path: Path, registry: RegistryServer) -> None:
    """An index of 20,000 entries (under the 4 MiB manifest cap) used to be copied whole into every answer."""
    release = ec.generate_private_key(ec.SECP256R1())
    writer = LayoutWriter(tmp_path / "staging", "team/huge")
    signed = writer.add_image(None, b"huge signed platform", "linux/amd64")
    unsigned = writer.add_image(None, b"huge unsigned platform", "linux/arm64")
    provenance = writer.add_image(None, b"huge attestation manifest", "unknown/unknown")
    entries = []
    for i in range(10_000):  # real platforms, two manifests each listed many times under other names
        entries.append({**(signed if i % 2 == 0 else unsigned), "platform": {"os": "linux", "architecture": f"a{i}"}})
        entries.append({**provenance, "platform": {"os": "unknown", "architecture": "unknown"}})
    index = writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, "v1", OCI_INDEX)
    assert 3 * 1024 * 1024 < index["size"] < MAX_MANIFEST_BYTES
    name = f"{registry.host}/team/huge"
    cosign.sign_image(writer, index["digest"], name, release)
    cosign.sign_image(writer, signed["digest"], name, release)
    registry.push_layout(writer.path, "team/huge")
    facts = verify(tmp_path, registry, {"release": release, "scanner": ec.generate_private_key(ec.SECP256R1())},
                   "team/huge:v1")
    jsonschema.validate(facts, facts_schema())
    assert facts["verified"] is True  # the index's own signature
    platforms = [p for p in facts["platforms"] if not p["attestationManifest"]]
    attestations = [p for p in facts["platforms"] if p["attestationManifest"]]
    assert [p["architecture"] for p in platforms] == [f"a{i}" for i in range(MAX_PLATFORMS)]
    assert [p["verified"] for p in platforms] == [i % 2 == 0 for i in range(MAX_PLATFORMS)]
    assert len(attestations) == MAX_PLATFORMS
    assert facts["platformLimit"] == {"maxPlatforms": MAX_PLATFORMS, "found": 10_000,
                                      "omitted": 10_000 - MAX_PLATFORMS,
                                      "attestationManifestsOmitted": 10_000 - MAX_PLATFORMS}
    assert len(json.dumps(facts)) < 64 * 1024  # was 4.7 MiB per key for a 4 MiB index
