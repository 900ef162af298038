"""`sigwarden audit --policy-report`: wgpolicyk8s.io/v1alpha2 PolicyReports and ClusterPolicyReports, validated
against the Policy WG's CRDs (tests/crds, see SOURCES), one result per (workload, constraint)."""

from __future__ import annotations

import json

import yaml
from hypothesis import given

from provider.audit.model import (
    ConstraintInfo,
    Failure,
    ImageRow,
    Metadata,
    ReferenceCheck,
    Report,
    Workload,
)
from provider.audit.objects import Container, ObjectRef
from provider.audit.policyreport import policy_reports, policy_reports_yaml
from tests.crds import validate_object
from tests.test_audit_renderers import report_of, strings

DENY = ConstraintInfo("K8sSignedImages", "prod-deny", "deny", ("deny",), ("deny",))
WARN = ConstraintInfo("K8sSignedImages", "all-warn", "warn", ("warn",), ("warn",))
DRYRUN = ConstraintInfo("K8sSignedImages", "dev-dryrun", "dryrun", ("dryrun",), ("dryrun",))
SIGNED, UNSIGNED, OFFLINE = "reg.example/signed:v1", "reg.example/unsigned:v1", "offline.example/app:v1"


def workload(kind: str, namespace: str, name: str, image: str, evaluated: tuple[ConstraintInfo, ...] = (),
             failing: tuple[ConstraintInfo, ...] = (), **extra: object) -> Workload:
    return Workload(ObjectRef(kind, namespace, name, "apps/v1" if kind == "Deployment" else "v1"),
                    containers=[Container("c", image)], evaluated={c.id for c in evaluated},
                    failures={c.id: Failure(c, [f"image {image} is not attested"], {"sigwarden"}) for c in failing},
                    **extra)  # type: ignore[arg-type]


def sample() -> Report:
    images = [ImageRow("sha256:1", "sha256:1", [ReferenceCheck(SIGNED, "verified")], authorities={"release"}),
              ImageRow("sha256:2", "sha256:2", [ReferenceCheck(UNSIGNED, "unverified", "no signatures found")]),
              ImageRow(OFFLINE, "", [ReferenceCheck(OFFLINE, "error", "REGISTRY_UNAVAILABLE: connection refused")])]
    workloads = [
        workload("Deployment", "prod", "web", SIGNED, (DENY, WARN)),
        workload("Deployment", "prod", "legacy", UNSIGNED, (DENY, WARN), (DENY, WARN)),
        workload("Pod", "dev", "offline", OFFLINE, (WARN, DRYRUN), (WARN, DRYRUN)),
        workload("Pod", "dev", "nightly", UNSIGNED, (DRYRUN,), (DRYRUN,)),
        workload("Pod", "kube-system", "coredns", UNSIGNED,
                 exempt="namespace kube-system is exempt from Gatekeeper (--exempt-namespace: kube-*)"),
        workload("Pod", "legacy", "old", UNSIGNED,
                 excluded={DENY.id: "namespace legacy is not selected by match.namespaceSelector"}),
        workload("Pod", "", "static", UNSIGNED, (WARN,), (WARN,)),  # cluster-scoped as the dump gave it
    ]
    metadata = Metadata("1.0", "2026-11-29T19:25:54.250000Z", {}, [], [DENY, WARN, DRYRUN], [])
    return Report(metadata, workloads, images, [], 9, 3)


def test_reports_fit_the_policy_wg_crds_one_per_namespace() -> None:
    reports = policy_reports(sample())
    for report in reports:
        validate_object(report)  # jsonschema.ValidationError if a field is wrong, unknown or missing
    assert [(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in reports] == [
        ("ClusterPolicyReport", None, "sigwarden"), ("PolicyReport", "dev", "sigwarden"),
        ("PolicyReport", "kube-system", "sigwarden"), ("PolicyReport", "legacy", "sigwarden"),
        ("PolicyReport", "prod", "sigwarden")]
    assert all(r["apiVersion"] == "wgpolicyk8s.io/v1alpha2" for r in reports)
    assert all(r["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "sigwarden"} for r in reports)


def test_one_result_per_workload_and_constraint_following_the_action_and_state() -> None:
    reports = {r["metadata"].get("namespace", ""): r for r in policy_reports(sample())}
    rows = {(e["resources"][0]["name"], e["policy"]): e for r in reports.values() for e in r["results"]}
    assert {key: entry["result"] for key, entry in rows.items()} == {
        ("web", "K8sSignedImages/prod-deny"): "pass", ("web", "K8sSignedImages/all-warn"): "pass",
        ("legacy", "K8sSignedImages/prod-deny"): "fail",  # denies at admission
        ("legacy", "K8sSignedImages/all-warn"): "warn",  # warn and dryrun report without blocking
        ("nightly", "K8sSignedImages/dev-dryrun"): "warn",
        ("offline", "K8sSignedImages/all-warn"): "error",  # its registry did not answer: nothing was decided
        ("offline", "K8sSignedImages/dev-dryrun"): "error",
        ("coredns", "K8sSignedImages/prod-deny"): "skip", ("coredns", "K8sSignedImages/all-warn"): "skip",
        ("coredns", "K8sSignedImages/dev-dryrun"): "skip",  # an exempt namespace: every constraint skips it
        ("old", "K8sSignedImages/prod-deny"): "skip",
        ("static", "K8sSignedImages/all-warn"): "warn"}
    legacy = rows[("legacy", "K8sSignedImages/prod-deny")]
    assert legacy["resources"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "legacy",
                                    "namespace": "prod"}]
    assert legacy["message"] == f"image {UNSIGNED} is not attested" and legacy["scored"] is True
    assert legacy["properties"] == {"enforcementAction": "deny", "images": UNSIGNED, "reason": "no signatures found"}
    assert rows[("web", "K8sSignedImages/prod-deny")]["properties"]["authorities"] == "release"
    assert rows[("old", "K8sSignedImages/prod-deny")]["message"] == (
        "namespace legacy is not selected by match.namespaceSelector")
    assert legacy["source"] == "sigwarden"
    assert legacy["timestamp"] == {"seconds": 1795980354, "nanos": 250000000}
    assert reports["prod"]["summary"] == {"pass": 2, "fail": 1, "warn": 1, "error": 0, "skip": 0}
    assert reports["dev"]["summary"] == {"pass": 0, "fail": 0, "warn": 1, "error": 2, "skip": 0}


def test_a_report_is_split_before_the_size_limit() -> None:
    report = sample()
    constraint = report.metadata.constraints[0]
    report.workloads = [workload("Pod", "big", f"pod-{n:03}", UNSIGNED, (constraint,), (constraint,))
                        for n in range(300)]
    whole = policy_reports(report)
    assert len(whole) == 1 and len(whole[0]["results"]) == 300
    parts = policy_reports(report, max_bytes=20_000)
    assert [p["metadata"]["name"] for p in parts][:3] == ["sigwarden", "sigwarden-2", "sigwarden-3"]
    assert all(len(json.dumps(p, separators=(",", ":"))) < 20_000 for p in parts)
    assert [e for p in parts for e in p["results"]] == whole[0]["results"]  # nothing lost, order kept
    assert sum(p["summary"]["fail"] for p in parts) == 300
    for part in parts:
        validate_object(part)


@given(strings)
def test_any_string_gives_valid_yaml_that_fits_the_crds(s: list[str]) -> None:
    report = report_of(s)
    report.metadata.generated_at = "2026-11-29T19:25:54Z"  # the report's own clock, never an input's text
    text = policy_reports_yaml(report)
    text.encode("ascii")  # escapes only: no encoding can break it
    for document in yaml.safe_load_all(text):
        validate_object(document)


def test_the_file_is_the_stream_kubectl_apply_takes() -> None:
    assert list(yaml.safe_load_all(policy_reports_yaml(sample()))) == policy_reports(sample())
