"""The audit's pure parts: owners, match reasons, Gatekeeper exemptions, image rows, baselines, escaping."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from provider.audit.csv_report import neutralise
from provider.audit.diff import load_baseline
from provider.audit.html import text
from provider.audit.inventory import build_images
from provider.audit.memo import MemoExternalData
from provider.audit.model import ImageRow, ReferenceCheck, Workload
from provider.audit.objects import Container, Ownership, containers, image_users, object_ref
from provider.audit.scope import Exemptions, mismatch_reason
from provider.policy.external import gatekeeper_shape
from provider.policy.gatekeeper import parse_constraint

DIGEST = "sha256:" + "ab" * 32


def obj(kind: str, name: str, namespace: str = "ns", owner: dict[str, Any] | None = None, uid: str = "",
        labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if uid:
        metadata["uid"] = uid
    if owner:
        metadata["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata}


def test_owner_references_are_climbed_to_the_top() -> None:
    deployment = obj("Deployment", "web")
    replicaset = obj("ReplicaSet", "web-1", owner={"kind": "Deployment", "name": "web", "controller": True})
    pod = obj("Pod", "web-1-a", owner={"kind": "ReplicaSet", "name": "web-1", "controller": True})
    by_uid = obj("Pod", "db-0", owner={"kind": "StatefulSet", "name": "stale-name", "uid": "u1"})
    orphan = obj("Pod", "job-pod", owner={"apiVersion": "batch/v1", "kind": "Job", "name": "gone"})
    looped = obj("Pod", "a", owner={"kind": "Pod", "name": "b"})
    other = obj("Pod", "b", owner={"kind": "Pod", "name": "a"})
    owners = Ownership([deployment, replicaset, pod, obj("StatefulSet", "db", uid="u1"), by_uid, looped, other])
    assert owners.workload_of(pod).id == "Deployment/ns/web"
    assert owners.workload_of(by_uid).id == "StatefulSet/ns/db"
    assert owners.workload_of(orphan) == object_ref({"apiVersion": "batch/v1", "kind": "Job",
                                                     "metadata": {"name": "gone", "namespace": "ns"}})
    assert owners.workload_of(looped).kind == "Pod"  # a cycle in the input ends instead of spinning


def test_containers_in_start_order_and_only_with_images() -> None:
    cronjob = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "m", "image": "m:1"}, {"name": "empty"}, "junk"],
        "initContainers": [{"name": "i", "image": "i:1"}]}}}}}}
    assert [(c.name, c.image) for c in containers(cronjob)] == [("i", "i:1"), ("m", "m:1")]
    assert containers({"kind": "Service", "spec": {"containers": [{"image": "x"}]}}) == []


def test_image_volumes_get_inventory_rows_like_containers() -> None:
    # Kubernetes KEP-4639 image volumes (core/v1 ImageVolumeSource: spec.volumes[].image.reference) are images the
    # node pulls like a container's: each gets an inventory row naming the volume where a container's name goes.
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "containers": [{"name": "app", "image": "app:1"}],
        "volumes": [{"name": "models", "image": {"reference": "models:1"}}, {"name": "tmp", "emptyDir": {}},
                    {"name": "weights", "image": {"reference": "app:1"}}]}}
    assert image_users(pod) == [Container("app", "app:1"), Container("models", "models:1", volume=True),
                                Container("weights", "app:1", volume=True)]
    memo = MemoExternalData(lambda request: gatekeeper_shape(
        [{"key": k, "value": {"verified": k == "app:1"}} for k in request["keys"]]), batch=10)
    memo.prefetch("sigwarden", ["app:1", "models:1"])
    rows = {row.key: row.to_json() for row in build_images([Workload(object_ref(pod), containers=image_users(pod))],
                                                             memo)}
    assert rows["models:1"]["state"] == "unverified" and rows["models:1"]["workloads"] == ["Pod/ns/p"]
    assert rows["models:1"]["usedBy"] == [{"workload": "Pod/ns/p", "name": "models", "imageVolume": True}]
    assert rows["app:1"]["usedBy"] == [{"workload": "Pod/ns/p", "name": "app", "imageVolume": False},
                                       {"workload": "Pod/ns/p", "name": "weights", "imageVolume": True}]


def constraint(match: dict[str, Any]) -> Any:
    return parse_constraint({"kind": "K8sSignedImages", "metadata": {"name": "c"}, "spec": {"match": match}}, "c.yaml")


@pytest.mark.parametrize(("match", "reason"), [
    ({"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]}, "kind Pod is not in match.kinds"),
    ({"scope": "Cluster"}, "match.scope Cluster leaves out namespaced objects"),
    ({"name": "web-*"}, "name does not match match.name web-*"),
    ({"namespaces": ["prod"]}, "namespace ns is not in match.namespaces"),
    ({"excludedNamespaces": ["n*"]}, "namespace ns is in match.excludedNamespaces"),
    ({"labelSelector": {"matchLabels": {"team": "a"}}}, "labels do not satisfy match.labelSelector"),
    ({"namespaceSelector": {"matchLabels": {"x": "y"}}},
     "namespace ns is unknown (no Namespace object given), so match.namespaceSelector cannot select it"),
])
def test_mismatch_reason_names_the_clause(match: dict[str, Any], reason: str) -> None:
    assert mismatch_reason(constraint(match), obj("Pod", "p"), {}) == reason


def test_namespace_selector_reason_with_a_known_namespace() -> None:
    namespaces = {"ns": obj("Namespace", "ns", labels={"x": "z"})}
    assert mismatch_reason(constraint({"namespaceSelector": {"matchLabels": {"x": "y"}}}), obj("Pod", "p"),
                           namespaces) == "namespace ns is not selected by match.namespaceSelector"


def test_gatekeeper_exemptions() -> None:
    config = {"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config", "metadata": {"name": "config"},
              "spec": {"match": [{"excludedNamespaces": ["audit-only"], "processes": ["audit"]},
                                 {"excludedNamespaces": ["sync-only"], "processes": ["sync"]}]}}
    namespaces = {"quiet": obj("Namespace", "quiet", labels={"admission.gatekeeper.sh/ignore": "x"})}
    exemptions = Exemptions.build(["kube-*"], [config], namespaces)
    assert exemptions.reason("kube-public").endswith("(--exempt-namespace: kube-*)")
    assert "Gatekeeper Config gatekeeper-system/config (processes: audit)" in exemptions.reason("audit-only")
    assert exemptions.reason("sync-only") == ""  # sync exclusions do not stop audit or admission
    assert "admission.gatekeeper.sh/ignore" in exemptions.reason("quiet")
    assert exemptions.reason("") == exemptions.reason("prod") == ""


def test_an_image_is_verified_only_when_every_reference_to_it_is() -> None:
    row = ImageRow(DIGEST, DIGEST, [ReferenceCheck("a/b:1", "verified"),
                                    ReferenceCheck("mirror/b:1", "unverified", "authority scope")])
    assert row.state == "unverified" and row.reasons == ["authority scope"]
    assert ImageRow("x", references=[ReferenceCheck("x", "error", "TIMEOUT"),
                                     ReferenceCheck("y", "unchecked")]).state == "error"


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "cannot read a JSON report"),
    (json.dumps({"apiVersion": "sigwarden.dev/v1"}), "apiVersion is 'sigwarden.dev/v1', not sigwarden.dev/v2"),
    (json.dumps([1]), "apiVersion is 'list'"),
    (json.dumps({"apiVersion": "sigwarden.dev/v2", "workloads": [{"id": "x"}], "images": []}),
     "`workloads` is not a list of entries with a state"),
])
def test_a_bad_baseline_is_refused_with_the_reason(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "b.json").write_text(content)
    with pytest.raises(ValueError, match="--baseline") as caught:
        load_baseline(tmp_path / "b.json")
    assert message in str(caught.value)


@pytest.mark.parametrize(("cell", "written"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("web", "web"), ("a=b", "a=b")])
def test_csv_cells_that_look_like_formulas_are_neutralised(cell: str, written: str) -> None:
    assert neutralise(cell) == written


def test_html_text_escapes_and_breaks_only_between_parts() -> None:
    assert text('<b a="1">') == "&lt;b a=&quot;1&quot;&gt;"
    assert text("registry.example/team/app:v1") == "registry.example/<wbr>team/<wbr>app:<wbr>v1"
    assert text(DIGEST) == f'<span title="{DIGEST}">sha256:{"ab" * 6}…</span>'
    assert text("legacy-app is bad") == '<span class="nw">legacy-app</span> is bad'


def test_the_audit_page_documents_the_schema_fields_and_is_linked() -> None:
    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs/audit.md").read_text()
    schema = json.loads((root / "provider/schemas/audit-report.schema.json").read_text())
    properties = schema["properties"]
    fields = {*properties, *properties["metadata"]["properties"], *properties["summary"]["properties"],
              *properties["workloads"]["items"]["properties"], *properties["images"]["items"]["properties"],
              *properties["results"]["items"]["properties"], *properties["diff"]["properties"]}
    inline = re.sub(r"```.*?```", "", doc, flags=re.S)
    quoted = {word for code in re.findall(r"`([^`]+)`", inline) for word in re.findall(r"\w+", code)}
    missing = sorted(fields - {"apiVersion", "kind"} - quoted)
    assert missing == []
    assert "(docs/audit.md)" in (root / "README.md").read_text()
    screenshot = root / "docs/audit-report.png"
    assert "(audit-report.png)" in doc and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
