"""`sigwarden audit` on a fixture cluster dump: workload view, image inventory, what was not evaluated and why,
the diff against a baseline, and the JSON (schema-valid), JUnit, CSV and self-contained HTML reports."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from provider.audit.html import render_html
from provider.devkit import cosign
from provider.devkit.fixtures import (
    ALPINE,
    CONTENT_NO_REPORT,
    DEBUG_TOOL,
    REGISTRY,
    RELEASE_ONLY,
    SIGNED,
    TAMPERED,
    UNREACHABLE,
    UNSIGNED,
    World,
    build_world,
)
from provider.devkit.layout import LayoutWriter
from provider.devkit.process import ProviderProcess
from tests.crds import validate_object
from tests.helpers import ProviderPKI, write_yaml
from tests.integration.html_checks import Tables, page_width, render_in_chromium

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "provider/schemas/audit-report.schema.json").read_text())
OPT_IN = {"sigwarden.dev/verify": "enabled"}


def pod_spec(*images: str) -> dict[str, Any]:
    return {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}


def meta(name: str, namespace: str, owner: tuple[str, str] | None = None, uid: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "namespace": namespace}
    if uid:
        data["uid"] = uid
    if owner:
        data["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True}]
    return data


def deployment(name: str, namespace: str, *images: str) -> list[dict[str, Any]]:
    """A Deployment with the ReplicaSet and Pod its controller made (the Pod refers to its owner by name)."""
    replicaset, template = f"{name}-5d8f", {"template": {"spec": pod_spec(*images)}}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, namespace), "spec": template},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta(replicaset, namespace, ("Deployment", name)),
         "spec": template},
        {"apiVersion": "v1", "kind": "Pod", "spec": pod_spec(*images),
         "metadata": meta(f"{replicaset}-x2x", namespace, ("ReplicaSet", replicaset))},
    ]


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def cluster_objects() -> list[dict[str, Any]]:
    """11 workloads over 6 namespaces, as `kubectl get ns,deploy,rs,sts,cronjob,job,pod -A` would list them."""
    nightly_spec = {"initContainers": [{"name": "i", "image": UNSIGNED}],
                    "containers": [{"name": "m", "image": SIGNED}]}
    return [
        namespace("prod", OPT_IN), namespace("dev"), namespace("legacy"), namespace("kube-system"),
        namespace("sandbox", {"admission.gatekeeper.sh/ignore": "no-self-managing"}), namespace("monitoring"),
        *deployment("web", "prod", SIGNED),
        *deployment("legacy-app", "prod", ALPINE),
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("db", "prod", uid="uid-db"),
         "spec": {"template": {"spec": pod_spec(TAMPERED)}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {**meta("db-0", "prod"), "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "renamed", "uid": "uid-db", "controller": True}]},
         "spec": pod_spec(TAMPERED)},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("nightly", "dev"),
         "spec": {"jobTemplate": {"spec": {"template": {"spec": nightly_spec}}}}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("nightly-2911", "dev", ("CronJob", "nightly")),
         "spec": {"template": {"spec": nightly_spec}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta("nightly-2911-abc", "dev", ("Job", "nightly-2911")),
         "spec": nightly_spec},
        # Image volumes (Kubernetes KEP-4639, spec.volumes[].image.reference): one of an image a container runs
        # elsewhere, one of an image nothing else uses.
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta("offline", "dev"),
         "spec": {**pod_spec(UNREACHABLE), "volumes": [{"name": "config", "image": {"reference": SIGNED}}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta("ok", "dev"), "spec": pod_spec(SIGNED)},
        *deployment("api", "dev", RELEASE_ONLY),
        *deployment("old", "legacy", ALPINE),
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta("coredns", "kube-system"),
         "spec": {**pod_spec(UNSIGNED), "volumes": [{"name": "models", "image": {"reference": CONTENT_NO_REPORT}}]}},
        *deployment("play", "sandbox", UNSIGNED),
        *deployment("prom", "monitoring", DEBUG_TOOL),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("settings", "dev"), "data": {"a": "b"}},
    ]


def write_cluster(directory: Path, objects: list[dict[str, Any]]) -> Path:
    """Split over a `kind: List` and a multi-document file, with Gatekeeper's Config among them."""
    directory.mkdir(exist_ok=True)
    half = len(objects) // 2
    write_yaml(directory / "list.yaml", {"apiVersion": "v1", "kind": "List", "items": objects[:half]})
    config = {"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
              "metadata": {"name": "config", "namespace": "gatekeeper-system"},
              "spec": {"match": [{"excludedNamespaces": ["monitoring"], "processes": ["*"]}]}}
    (directory / "more.yaml").write_text("---\n".join(json.dumps(o) + "\n" for o in [*objects[half:], config]))
    return directory


KINDS = [{"apiGroups": ["", "apps", "batch"], "kinds": ["Pod", "Deployment", "ReplicaSet", "StatefulSet", "Job",
                                                       "CronJob"]}]


def write_constraints(directory: Path) -> Path:
    directory.mkdir()
    for name, action, match in (
            ("prod-deny", "deny", {"namespaceSelector": {"matchLabels": OPT_IN}}),
            ("all-warn", "warn", {"excludedNamespaces": ["legacy"]}),
            ("dev-prod-dryrun", "dryrun", {"namespaces": ["prod", "dev"]})):
        write_yaml(directory / f"{name}.yaml", {
            "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages", "metadata": {"name": name},
            "spec": {"enforcementAction": action, "match": {"kinds": KINDS, **match},
                     "parameters": {"exemptImages": ["example.invalid/*"]}}})
    return directory


def run_audit(tmp: Path, world: World, dump: Path, constraints: Path, name: str, *extra: str) \
        -> subprocess.CompletedProcess[str]:
    outputs = [f"--{kind}={tmp / f'{name}.{suffix}'}" for kind, suffix in
               (("json", "json"), ("junit", "xml"), ("html", "html"), ("csv", "csv"),
                ("policy-report", "policyreports.yaml"))]
    return subprocess.run([sys.executable, "-m", "provider", "audit", "--config", str(world.config), "--no-progress",
                           "--manifests", str(dump), "--constraints", str(constraints),
                           "--exempt-namespace", "kube-*", *outputs, *extra],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


@dataclass
class Audited:
    world: World
    tmp: Path
    dump: Path
    constraints: Path
    result: subprocess.CompletedProcess[str]

    def report(self, name: str = "report") -> dict[str, Any]:
        return json.loads((self.tmp / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Audited:
    tmp = tmp_path_factory.mktemp("audit")
    world = build_world(tmp / "world")
    dump = write_cluster(tmp / "dump", cluster_objects())
    constraints = write_constraints(tmp / "constraints")
    return Audited(world, tmp, dump, constraints, run_audit(tmp, world, dump, constraints, "report"))


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["id"]: w for w in report["workloads"]}


def test_workloads_are_counted_by_top_level_owner_and_state(audited: Audited) -> None:
    assert audited.result.returncode == 1, audited.result.stderr  # non-compliant workloads, --fail-on violations
    report = audited.report()
    jsonschema.validate(report, SCHEMA)
    summary = report["summary"]
    assert summary["workloads"] == {"total": 11, "blocked": 2, "wouldBlock": 2, "compliant": 3, "notEvaluated": 4}
    assert summary["verifications"] == 8  # each distinct image once, whatever the number of objects using it
    workloads = by_id(report)
    assert {i: w["state"] for i, w in workloads.items()} == {
        "Deployment/prod/web": "compliant", "Deployment/prod/legacy-app": "blocked",
        "StatefulSet/prod/db": "blocked", "CronJob/dev/nightly": "wouldBlock", "Pod/dev/offline": "wouldBlock",
        "Pod/dev/ok": "compliant", "Deployment/dev/api": "compliant", "Deployment/legacy/old": "notEvaluated",
        "Pod/kube-system/coredns": "notEvaluated", "Deployment/sandbox/play": "notEvaluated",
        "Deployment/monitoring/prom": "notEvaluated"}
    # The Pod of a ReplicaSet of a Deployment is that Deployment; a Pod finds its StatefulSet by uid.
    assert workloads["Deployment/prod/legacy-app"]["objects"] == [
        "Deployment/prod/legacy-app", "ReplicaSet/prod/legacy-app-5d8f", "Pod/prod/legacy-app-5d8f-x2x"]
    assert workloads["StatefulSet/prod/db"]["objects"] == ["StatefulSet/prod/db", "Pod/prod/db-0"]
    assert len(workloads["CronJob/dev/nightly"]["objects"]) == 3
    legacy = {f["constraint"]: f for f in workloads["Deployment/prod/legacy-app"]["failures"]}
    assert set(legacy) == {"K8sSignedImages/prod-deny", "K8sSignedImages/all-warn", "K8sSignedImages/dev-prod-dryrun"}
    assert legacy["K8sSignedImages/prod-deny"]["denies"] is True
    # Three objects fail the same way: the workload says it once.
    assert len(legacy["K8sSignedImages/prod-deny"]["messages"]) == 1
    assert legacy["K8sSignedImages/prod-deny"]["messages"][0].startswith(
        "image alpine:3.11 is not attested: no signatures found for sha256:")
    nightly = workloads["CronJob/dev/nightly"]
    assert {f["constraint"] for f in nightly["failures"]} == {"K8sSignedImages/all-warn",
                                                              "K8sSignedImages/dev-prod-dryrun"}
    assert nightly["excludedBy"] == [{"constraint": "K8sSignedImages/prod-deny",
                                      "reason": "namespace dev is not selected by match.namespaceSelector"}]
    assert nightly["containers"] == [{"name": "i", "image": UNSIGNED}, {"name": "m", "image": SIGNED}]
    assert "REGISTRY_UNAVAILABLE" in workloads["Pod/dev/offline"]["failures"][0]["messages"][0]
    # Results keep every object x constraint evaluation, each naming its workload; blocked-now only under deny.
    results = [r for r in report["results"] if r["object"]["name"] == "legacy-app-5d8f-x2x"]
    assert {r["workload"] for r in results} == {"Deployment/prod/legacy-app"}
    assert {r["constraint"]: r["blockedNow"] for r in results} == {
        "K8sSignedImages/prod-deny": True, "K8sSignedImages/all-warn": False, "K8sSignedImages/dev-prod-dryrun": False}
    assert all(r["blockedIfDeny"] for r in results)
    assert report["byNamespace"][2] == {"namespace": "legacy", "total": 1, "compliant": 0, "blocked": 0,
                                        "wouldBlock": 0, "notEvaluated": 1}


def test_not_evaluated_workloads_say_why(audited: Audited) -> None:
    reasons = {entry["workload"]: entry["reasons"] for entry in audited.report()["notEvaluated"]}
    assert reasons == {
        "Deployment/legacy/old": [
            "K8sSignedImages/all-warn: namespace legacy is in match.excludedNamespaces",
            "K8sSignedImages/dev-prod-dryrun: namespace legacy is not in match.namespaces",
            "K8sSignedImages/prod-deny: namespace legacy is not selected by match.namespaceSelector"],
        "Pod/kube-system/coredns": [
            "namespace kube-system is exempt from Gatekeeper (--exempt-namespace: kube-*)"],
        "Deployment/sandbox/play": [
            "namespace sandbox carries the admission.gatekeeper.sh/ignore label: Gatekeeper's webhook skips it"],
        "Deployment/monitoring/prom": [
            "namespace monitoring is exempt from Gatekeeper (Gatekeeper Config gatekeeper-system/config "
            "(processes: *): monitoring)"]}


def test_image_inventory_has_one_row_per_digest(audited: Audited) -> None:
    report = audited.report()
    digests = audited.world.digests
    images = {i["references"][0]: i for i in report["images"]}
    assert report["summary"]["images"] == {"total": 8, "verified": 3, "unverified": 4, "error": 1, "unchecked": 0}
    signed = images[SIGNED]
    assert signed["key"] == signed["digest"] == digests[SIGNED] and signed["state"] == "verified"
    assert signed["workloads"] == ["CronJob/dev/nightly", "Deployment/prod/web", "Pod/dev/offline", "Pod/dev/ok"]
    assert {"workload": "Pod/dev/offline", "name": "config", "imageVolume": True} in signed["usedBy"]
    assert {"workload": "Pod/dev/ok", "name": "c0", "imageVolume": False} in signed["usedBy"]
    assert signed["namespaces"] == ["dev", "prod"]
    assert signed["authorities"] == ["kritis-authority", "release", "security"] and signed["reasons"] == []
    signers = {(s["authority"], s["format"]): s for s in signed["signers"]}
    assert signers[("release", "cosign")]["identity"] == "release.pub"
    assert signers[("security", "cosign")]["identity"] == "security.pub"
    assert ("kritis-authority", "simplesigning") in signers
    assert images[RELEASE_ONLY]["authorities"] == ["release"]
    tampered = images[TAMPERED]
    assert tampered["key"] == digests[TAMPERED] and tampered["state"] == "unverified"
    assert tampered["signers"] == [] and "signature is for sha256:" in tampered["reasons"][0]
    assert images[ALPINE]["workloads"] == ["Deployment/legacy/old", "Deployment/prod/legacy-app"]
    assert images[UNSIGNED]["namespaces"] == ["dev", "kube-system", "sandbox"]
    offline = images[UNREACHABLE]
    assert offline["state"] == "error" and offline["key"] == UNREACHABLE and offline["digest"] == ""
    assert offline["reasons"][0].startswith("REGISTRY_UNAVAILABLE")
    assert images[DEBUG_TOOL]["workloads"] == ["Deployment/monitoring/prom"]
    # An image only an image volume uses has its row, judged like a container's, named by the volume.
    volume = images[CONTENT_NO_REPORT]
    assert volume["key"] == digests[CONTENT_NO_REPORT] and volume["state"] == "verified"
    assert volume["usedBy"] == [{"workload": "Pod/kube-system/coredns", "name": "models", "imageVolume": True}]
    coredns = by_id(report)["Pod/kube-system/coredns"]
    assert coredns["containers"][1] == {"name": "models", "image": CONTENT_NO_REPORT, "imageVolume": True}
    assert coredns["images"] == [UNSIGNED, CONTENT_NO_REPORT]


def test_metadata_names_version_config_authorities_constraints_and_inputs(audited: Audited) -> None:
    metadata = audited.report()["metadata"]
    from provider import __version__

    assert metadata["sigwardenVersion"] == __version__
    assert metadata["config"]["path"] == str(audited.world.config)
    assert metadata["config"]["fingerprint"].startswith("sha256:") and metadata["config"]["files"] >= 3
    assert metadata["authorities"] == [
        {"name": "release", "kinds": ["cosign-key"], "scopes": ["*"]},
        {"name": "scanner", "kinds": ["cosign-key"], "scopes": ["registry.sigwarden.test/content/*"]},
        {"name": "security", "kinds": ["cosign-key"], "scopes": ["*"]},
        {"name": "kritis-authority", "kinds": ["attestation-pkix"], "scopes": ["*"]},
        {"name": "notation-skip", "kinds": ["notation"], "scopes": ["registry.sigwarden.test/skipped/*"]},
        {"name": "notation-release", "kinds": ["notation"], "scopes": ["registry.sigwarden.test/notation/*"]},
        {"name": "keyless-ci", "kinds": ["cosign-keyless"], "scopes": ["registry.sigwarden.test/keyless/*"]},
        {"name": "gpg-release", "kinds": ["attestation-pgp"], "scopes": ["registry.sigwarden.test/gpg/*"]}]
    constraints = {c["name"]: c for c in metadata["constraints"]}
    assert constraints["all-warn"]["enforcementAction"] == "warn"
    assert constraints["all-warn"]["match"]["excludedNamespaces"] == ["legacy"]
    assert constraints["prod-deny"]["parameters"] == {"exemptImages": ["example.invalid/*"]}
    assert constraints["prod-deny"]["admissionActions"] == ["deny"]
    roles = {(i["role"], Path(i["path"]).name) for i in metadata["inputs"]}
    assert {("manifests", "list.yaml"), ("manifests", "more.yaml"), ("constraints", "prod-deny.yaml")} <= roles
    assert {"pattern": "kube-*", "source": "--exempt-namespace"} in metadata["exemptions"]


def test_junit_has_one_case_per_workload_and_constraint(audited: Audited) -> None:
    root = ET.parse(audited.tmp / "report.xml").getroot()
    prod = root.find("testsuite[@name='K8sSignedImages/prod-deny']")
    assert prod is not None and prod.get("tests") == "3" and prod.get("failures") == "2"
    legacy = prod.find("testcase[@name='Deployment/prod/legacy-app']/failure")
    assert legacy is not None and legacy.get("type") == "deny"
    assert "image alpine:3.11 is not attested" in str(legacy.get("message"))
    skipped = root.find("testsuite[@name='not evaluated']")
    assert skipped is not None and skipped.get("skipped") == "4"
    # warn: 7 evaluated workloads (all but legacy and the three Gatekeeper never sees), 4 failing.
    warn = root.find("testsuite[@name='K8sSignedImages/all-warn']")
    assert warn is not None and (warn.get("tests"), warn.get("failures")) == ("7", "4")
    # Each case lists the workload's images, a container's and an image volume's each named as such.
    properties = {p.get("name"): p.get("value") for p in
                  warn.findall("testcase[@name='Pod/dev/offline']/properties/property")}
    assert properties == {"container c0": UNREACHABLE, "image volume config": SIGNED}
    coredns = skipped.findall("testcase[@name='Pod/kube-system/coredns']/properties/property")
    assert [(p.get("name"), p.get("value")) for p in coredns] == [("container c0", UNSIGNED),
                                                                  ("image volume models", CONTENT_NO_REPORT)]


def test_csv_has_one_row_per_workload_and_failing_constraint(audited: Audited) -> None:
    rows = list(csv.DictReader(io.StringIO((audited.tmp / "report.csv").read_text())))
    # legacy-app and db fail all three; nightly and offline fail warn and dryrun.
    assert len(rows) == 10
    assert {(r["kind"], r["name"]) for r in rows} == {("Deployment", "legacy-app"), ("StatefulSet", "db"),
                                                      ("CronJob", "nightly"), ("Pod", "offline")}
    deny = [r for r in rows if r["constraint"] == "K8sSignedImages/prod-deny"]
    assert {r["state"] for r in deny} == {"blocked"} and {r["enforcementAction"] for r in deny} == {"deny"}
    offline = [r for r in rows if r["name"] == "offline"]
    assert {(r["images"], r["imageVolumes"]) for r in offline} == {(f"{UNREACHABLE} {SIGNED}", f"config={SIGNED}")}
    assert {r["imageVolumes"] for r in rows if r["name"] != "offline"} == {""}


def test_policy_reports_fit_the_crds_and_follow_the_workload_view(audited: Audited) -> None:
    reports = list(yaml.safe_load_all((audited.tmp / "report.policyreports.yaml").read_text()))
    for report in reports:
        validate_object(report)  # the Policy WG's CRDs, tests/crds
    assert {(r["kind"], r["metadata"].get("namespace")) for r in reports} == {
        ("PolicyReport", ns) for ns in ("prod", "dev", "legacy", "kube-system", "sandbox", "monitoring")}
    rows = {(e["resources"][0]["kind"], e["resources"][0]["name"], e["policy"]): e["result"]
            for r in reports for e in r["results"]}
    assert rows[("Deployment", "legacy-app", "K8sSignedImages/prod-deny")] == "fail"
    assert rows[("Deployment", "legacy-app", "K8sSignedImages/all-warn")] == "warn"
    assert rows[("Deployment", "web", "K8sSignedImages/prod-deny")] == "pass"
    assert rows[("Pod", "offline", "K8sSignedImages/all-warn")] == "error"  # REGISTRY_UNAVAILABLE
    assert rows[("Pod", "coredns", "K8sSignedImages/prod-deny")] == "skip"  # exempt namespace
    assert sum(1 for key in rows if key[1] == "legacy-app") == 3  # one per constraint, not per object
    summary = audited.report()["summary"]["workloads"]
    failing = {(k[0], k[1]) for k, v in rows.items() if v in ("fail", "warn", "error")}
    assert len(failing) == summary["blocked"] + summary["wouldBlock"]


def test_html_report_lists_every_non_compliant_workload(audited: Audited) -> None:
    html = (audited.tmp / "report.html").read_text()
    report = audited.report()
    parser = Tables()
    parser.feed(html)
    assert parser.external == []  # self-contained
    assert parser.cards["blocked"] == "2" and parser.cards["wouldBlock"] == "2"
    assert parser.cards["notEvaluated"] == "4" and parser.cards["imagesVerified"] == "3"
    listed = {row[1] for row in parser.tables["noncompliant"][1:]}
    expected = {f"{w['kind']}/{w['name']}" for w in report["workloads"] if w["state"] in ("blocked", "wouldBlock")}
    assert listed == expected
    assert [row[2] for row in parser.tables["noncompliant"][1:3]] == ["blocked now", "blocked now"]
    # Reasons are grouped: each distinct message once, with its workload count.
    reasons = parser.tables["reasons"][1:]
    messages = [row[3] for row in reasons]
    assert len(messages) == len(set(messages))
    alpine = next(row for row in reasons if row[3].startswith("image alpine:3.11"))
    assert alpine[1] == "1" and "K8sSignedImages/prod-deny" in alpine[2]
    assert len(parser.tables["images"]) - 1 == 8
    assert parser.tables["images"][0][3] == "used by"
    assert any("Pod/kube-system/coredns image volume models" in row[3] for row in parser.tables["images"][1:])
    assert {row[1] for row in parser.tables["notevaluated"][1:]} == {
        "Deployment/old", "Pod/coredns", "Deployment/play", "Deployment/prom"}
    assert "FailedCreate" in html and "Gatekeeper" not in parser.tables["noncompliant"][0]
    assert html.count('class="bar-blocked"') == 1  # only prod has blocked workloads
    assert 'id="diff"' not in html  # no baseline given


def test_html_renders_in_headless_chromium_without_broken_words(audited: Audited) -> None:
    dom, findings, console = render_in_chromium(audited.tmp / "report.html", audited.tmp / "chromium")
    assert 'data-ready="1"' in dom  # the inline script ran to its end
    assert console == []
    assert findings["problems"] == []
    assert findings["sorted"] == ["CronJob/nightly", "Deployment/legacy-app", "Pod/offline", "StatefulSet/db"]
    report = audited.report()
    for workload in report["workloads"]:
        if workload["state"] in ("blocked", "wouldBlock"):
            assert workload["name"] in dom


@pytest.mark.parametrize("width", [1400, 390])
def test_the_page_keeps_to_the_window_on_a_desktop_and_a_phone(audited: Audited, tmp_path: Path, width: int) -> None:
    """Wide tables scroll inside their own box; the page never scrolls sideways (issue: columns lost at 1400 px,
    unusable on a phone). Also with names far longer than any real one."""
    from tests.test_audit_renderers import report_of

    long_reference = "registry.example.internal/" + "x" * 150 + "/a-very-long-hyphenated-name-" + "y" * 60 + ":v1"
    strings = ["K8sAVeryLongKindName" * 3, "constraint-name-" * 8, "2026-11-29T19:25:54Z", "/path/" + "d" * 120,
               "namespace-" * 6, "deployment-" + "z" * 180, "obj", "container", long_reference,
               "message " * 40 + long_reference, "second " + long_reference, "ns2", "pod-" + "q" * 100,
               long_reference, "excluded because " + long_reference, "sha256:" + "a" * 64, "reason " + long_reference,
               "authority-" + "b" * 80, "CN=" + "c" * 200, "issuer", "volume-" + "v" * 60, long_reference]
    (tmp_path / "long.html").write_text(render_html(report_of(strings)))
    for report in (audited.tmp / "report.html", tmp_path / "long.html"):
        measured = page_width(report, width, tmp_path / "profile")
        assert measured["client"] <= width and measured["scroll"] <= measured["client"], (report.name, measured)


def test_baseline_diff_after_an_image_got_signed_and_a_workload_was_added(audited: Audited,
                                                                          tmp_path: Path) -> None:
    # A world of its own: signing an image here must not change what the other tests see.
    world = build_world(tmp_path / "world")
    assert run_audit(tmp_path, world, audited.dump, audited.constraints, "before").returncode == 1
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "late.pub").write_bytes(cosign.public_pem(key))
    writer = LayoutWriter(world.root / "layouts" / REGISTRY, "team/unsigned")
    cosign.sign_image(writer, world.digests[UNSIGNED], f"{REGISTRY}/team/unsigned", key)
    config = yaml.safe_load(world.config.read_text())
    config["authorities"].append({"name": "late", "cosign": {"publicKeys": [str(tmp_path / "late.pub")]}})
    later = World(world.root, write_yaml(tmp_path / "config-late.yaml", config), world.digests)
    dump = write_cluster(tmp_path / "dump-next", [*cluster_objects(), *deployment("newcomer", "dev", ALPINE)])
    baseline = tmp_path / "before.json"
    result = run_audit(tmp_path, later, dump, audited.constraints, "next", "--baseline", str(baseline))
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "next.json").read_text())
    before = json.loads(baseline.read_text())
    jsonschema.validate(report, SCHEMA)
    diff = report["diff"]
    assert diff["baseline"] == str(baseline)
    assert diff["baselineGeneratedAt"] == before["metadata"]["generatedAt"]
    assert diff["verificationChanged"] == [{"id": world.digests[UNSIGNED], "before": "unverified",
                                            "after": "verified"}]
    assert diff["addedWorkloads"] == ["Deployment/dev/newcomer"] and diff["removedWorkloads"] == []
    assert diff["newlyNonCompliant"] == [{"id": "Deployment/dev/newcomer", "before": "absent", "after": "wouldBlock"}]
    assert diff["fixed"] == [{"id": "CronJob/dev/nightly", "before": "wouldBlock", "after": "compliant"}]
    assert diff["newImages"] == [] and diff["removedImages"] == []
    assert report["metadata"]["config"]["fingerprint"] != before["metadata"]["config"]["fingerprint"]
    html = (tmp_path / "next.html").read_text()
    assert html.index('id="diff"') < html.index("<h2>Summary</h2>")  # changes come first
    parser = Tables()
    parser.feed(html)
    assert [row[0] for row in parser.tables["diff-newly"][1:]] == ["Deployment/dev/newcomer"]
    assert [row[0] for row in parser.tables["diff-fixed"][1:]] == ["CronJob/dev/nightly"]
    assert [row[1:] for row in parser.tables["diff-images"][1:]] == [["unverified", "verified"]]


def test_a_baseline_that_is_not_a_v2_report_is_refused(audited: Audited) -> None:
    (audited.tmp / "v1.json").write_text(json.dumps({"apiVersion": "sigwarden.dev/v1", "kind": "AuditReport"}))
    result = run_audit(audited.tmp, audited.world, audited.dump, audited.constraints, "refused",
                       "--baseline", str(audited.tmp / "v1.json"))
    assert result.returncode == 2
    assert "apiVersion is 'sigwarden.dev/v1', not sigwarden.dev/v2" in result.stderr
    assert not (audited.tmp / "refused.json").exists()


def test_fail_on_chooses_the_exit_code(audited: Audited) -> None:
    blocked = run_audit(audited.tmp, audited.world, audited.dump, audited.constraints, "b", "--fail-on", "blocked")
    never = run_audit(audited.tmp, audited.world, audited.dump, audited.constraints, "n", "--fail-on", "never")
    assert (blocked.returncode, never.returncode) == (1, 0), blocked.stderr + never.stderr
    assert "2 blocked now, 2 would be blocked by deny, 4 not evaluated, 3 compliant" in never.stdout


def gatekeeper_status(total: int, *violations: tuple[str, str, str, str, str]) -> dict[str, Any]:
    """`kubectl get constraints -A -o json` with one constraint whose status lists these violations."""
    return {"apiVersion": "v1", "kind": "List", "items": [{
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages",
        "metadata": {"name": "prod-deny"}, "spec": {"enforcementAction": "deny"},
        "status": {"totalViolations": total, "violations": [
            {"enforcementAction": "deny", "group": group, "version": "v1", "kind": kind, "namespace": ns,
             "name": name, "message": message} for group, kind, ns, name, message in violations]}}]}


def test_gatekeeper_status_merges_into_the_workload_view(audited: Audited) -> None:
    status = gatekeeper_status(
        30, ("", "Pod", "prod", "legacy-app-5d8f-x2x", "image alpine:3.11 is not attested: no signatures found"),
        ("apps", "Deployment", "prod", "web", "image registry.sigwarden.test/team/app:v1 is not attested: stale"),
        ("", "Pod", "prod", "ghost", "image ghost:1 is not attested: no signatures found"))
    (audited.tmp / "status.json").write_text(json.dumps(status))
    result = run_audit(audited.tmp, audited.world, audited.dump, audited.constraints, "merged",
                       "--gatekeeper-status", str(audited.tmp / "status.json"))
    assert result.returncode == 1, result.stderr
    report = audited.report("merged")
    jsonschema.validate(report, SCHEMA)
    workloads = by_id(report)
    # Gatekeeper's Pod violation lands on the Deployment that owns the Pod, beside sigwarden's own result.
    legacy = workloads["Deployment/prod/legacy-app"]
    assert legacy["gatekeeper"] == ["K8sSignedImages/prod-deny"]
    deny = next(f for f in legacy["failures"] if f["constraint"] == "K8sSignedImages/prod-deny")
    assert deny["sources"] == ["gatekeeper", "sigwarden"]
    # Where the two disagree, the workload is not reported compliant.
    web = workloads["Deployment/prod/web"]
    assert web["state"] == "blocked" and web["failures"][0]["sources"] == ["gatekeeper"]
    assert workloads["Pod/prod/ghost"]["state"] == "blocked" and workloads["Pod/prod/ghost"]["objects"] == [
        "Pod/prod/ghost"]
    assert workloads["Pod/dev/ok"]["gatekeeper"] == []
    assert report["metadata"]["gatekeeper"]["constraints"] == [
        {"constraint": "K8sSignedImages/prod-deny", "listed": 3, "totalViolations": 30, "truncated": True}]
    parser = Tables()
    parser.feed((audited.tmp / "merged.html").read_text())
    assert parser.tables["noncompliant"][0][-1] == "Gatekeeper"
    assert 'id="gatekeeper-truncated"' in (audited.tmp / "merged.html").read_text()
    ghost = next(row for row in parser.tables["noncompliant"] if row[1] == "Pod/ghost")
    assert ghost[-1] == "K8sSignedImages/prod-deny"
    _, findings, console = render_in_chromium(audited.tmp / "merged.html", audited.tmp / "chromium-merged")
    assert findings["problems"] == [] and console == []  # the extra column still fits at 1280 px


def test_audit_through_a_live_provider_over_mtls(audited: Audited, start_provider: Callable[..., ProviderProcess],
                                                 pki: ProviderPKI) -> None:
    config = yaml.safe_load(audited.world.config.read_text())
    config["server"] = {"requestDeadline": "60s"}  # a loaded test machine must not turn answers into TIMEOUTs
    provider = start_provider(config)
    result = subprocess.run([sys.executable, "-m", "provider", "audit", "--provider", provider.url,
                             "--cert", pki.path("client.crt"), "--key", pki.path("client.key"),
                             "--ca", pki.path("ca.crt"), "--no-progress", "--manifests", str(audited.dump),
                             "--constraints", str(audited.constraints), "--exempt-namespace", "kube-*",
                             "--json", str(audited.tmp / "remote.json")],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    remote, local = audited.report("remote"), audited.report()
    jsonschema.validate(remote, SCHEMA)
    assert remote["metadata"]["config"] == {"provider": provider.url} and remote["metadata"]["authorities"] == []
    assert remote["summary"] == local["summary"]
    assert remote["images"] == local["images"]


def test_gatekeeper_status_alone(tmp_path: Path) -> None:
    status = gatekeeper_status(2, ("apps", "Deployment", "shop", "cart", "image shop/cart:1 is not attested"))
    status["items"][0]["spec"]["enforcementAction"] = "dryrun"
    (tmp_path / "status.json").write_text(json.dumps(status))
    command = [sys.executable, "-m", "provider", "audit", "--gatekeeper-status", str(tmp_path / "status.json"),
               "--json", str(tmp_path / "gk.json"), "--html", str(tmp_path / "gk.html")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "gk.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["summary"]["workloads"]["wouldBlock"] == 1 and report["summary"]["workloads"]["total"] == 1
    (cart,) = report["workloads"]
    assert cart["id"] == "Deployment/shop/cart" and cart["apiVersion"] == "apps/v1"
    assert cart["gatekeeper"] == ["K8sSignedImages/prod-deny"]
    assert report["metadata"]["gatekeeper"]["constraints"][0]["truncated"] is True  # 1 listed of 2
    assert report["results"][0]["source"] == "gatekeeper"
    assert "cart" in (tmp_path / "gk.html").read_text()
    # Only dryrun fails: nothing is blocked now.
    relaxed = subprocess.run([*command, "--fail-on", "blocked"], capture_output=True, text=True, timeout=60,
                             cwd=ROOT)
    assert relaxed.returncode == 0, relaxed.stderr


def test_gatekeeper_config_given_on_its_own(audited: Audited) -> None:
    config = {"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
              "metadata": {"name": "config", "namespace": "gatekeeper-system"},
              "spec": {"match": [{"excludedNamespaces": ["leg*"], "processes": ["webhook"]}]}}
    write_yaml(audited.tmp / "gatekeeper-config.yaml", config)
    result = run_audit(audited.tmp, audited.world, audited.dump, audited.constraints, "configured",
                       "--gatekeeper-config", str(audited.tmp / "gatekeeper-config.yaml"))
    assert result.returncode == 1, result.stderr
    report = audited.report("configured")
    reasons = {entry["workload"]: entry["reasons"] for entry in report["notEvaluated"]}
    assert reasons["Deployment/legacy/old"] == [
        "namespace legacy is exempt from Gatekeeper (Gatekeeper Config gatekeeper-system/config "
        "(processes: webhook): leg*)"]
    assert {"pattern": "leg*", "source": "Gatekeeper Config gatekeeper-system/config (processes: webhook)"} in \
        report["metadata"]["exemptions"]
    assert report["summary"]["workloads"]["notEvaluated"] == 4
