"""`sigwarden audit --cluster --apply-policy-reports` against the loopback API server stand-in (tests/kubeapi.py),
which enforces the RBAC rules the chart's audit ClusterRole grants: reads are paginated lists only, the
PolicyReports are applied with field manager sigwarden, stale ones of sigwarden's are deleted, others' kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import provider.kube.cluster
from provider.cli import main
from provider.devkit.fixtures import SIGNED, UNSIGNED, World, build_world
from provider.policy.build import rendered_templates
from tests.crds import validate_object
from tests.kubeapi import FakeKubeAPI, KubeAPIServer
from tests.test_helm import render

REPORTS = "/apis/wgpolicyk8s.io/v1alpha2"


def audit_rules(values: dict[str, Any] | None = None) -> list[tuple[str | None, dict[str, Any]]]:
    """The rules the chart grants the audit CronJob's ServiceAccount (cluster-wide)."""
    docs = render(values or {"audit": {"cronJob": {"enabled": True}}})
    (role,) = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "sigwarden-audit"]
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"] == "sigwarden-audit"]
    (cronjob,) = [d for d in docs if d["kind"] == "CronJob"]
    account = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "sigwarden-system"}]
    return [(None, rule) for rule in role["rules"]]


def pod(name: str, namespace: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": image}]}}


def populate(api: FakeKubeAPI) -> None:
    for namespace in ("prod", "dev", "tools"):
        api.put(f"/api/v1/namespaces/{namespace}", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": namespace}})
    api.put("/apis/apps/v1/namespaces/prod/deployments/web", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": SIGNED}]}}}})
    # Gatekeeper's Config exempts namespace tools: its workloads are not evaluated (skip in the reports).
    api.put("/apis/config.gatekeeper.sh/v1alpha1/namespaces/gatekeeper-system/configs/config", {
        "apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
        "metadata": {"name": "config", "namespace": "gatekeeper-system"},
        "spec": {"match": [{"excludedNamespaces": ["tools"], "processes": ["*"]}]}})
    api.put("/api/v1/namespaces/tools/pods/debug", pod("debug", "tools", UNSIGNED))
    for index in range(5):  # more than one page at the page size the test sets
        api.put(f"/api/v1/namespaces/dev/pods/job-{index}", pod(f"job-{index}", "dev", UNSIGNED))
    template = yaml.safe_load(rendered_templates()["k8ssignedimages"])  # the shipped template, as installed
    api.put("/apis/templates.gatekeeper.sh/v1/constrainttemplates/k8ssignedimages", template)
    api.put("/apis/constraints.gatekeeper.sh/v1beta1/k8ssignedimages/signed", {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages", "metadata": {"name": "signed"},
        "spec": {"enforcementAction": "deny", "match": {"kinds": [{"apiGroups": ["", "apps"],
                                                                   "kinds": ["Pod", "Deployment"]}]}}})
    api.constraint_kinds["K8sSignedImages"] = "k8ssignedimages"
    # A report sigwarden wrote for a namespace since deleted, and one another tool wrote.
    stale = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
             "metadata": {"name": "sigwarden", "namespace": "gone",
                          "labels": {"app.kubernetes.io/managed-by": "sigwarden"}}, "results": []}
    api.put(f"{REPORTS}/namespaces/gone/policyreports/sigwarden", stale)
    api.put(f"{REPORTS}/namespaces/dev/policyreports/kyverno-pol", {
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {"name": "kyverno-pol", "namespace": "dev",
                     "labels": {"app.kubernetes.io/managed-by": "kyverno"}}, "results": []})


def kubeconfig(server: KubeAPIServer, path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "loopback", "cluster": {"server": server.url,
                                                      "certificate-authority": str(server.account_dir / "ca.crt")}}],
        "users": [{"name": "auditor", "user": {"token": server.api.token}}],
        "contexts": [{"name": "test", "context": {"cluster": "loopback", "user": "auditor"}}]}))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeAPIServer]:
    api = FakeKubeAPI(tmp_path / "apiserver", rules=audit_rules())
    populate(api)
    server = api.start()
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(server, tmp_path / "kubeconfig")))
    monkeypatch.setattr(provider.kube.cluster, "PAGE", 2)
    yield server
    server.stop()


def test_audit_reads_the_cluster_and_applies_policy_reports(cluster: KubeAPIServer, world: World, tmp_path: Path,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    api = cluster.api
    code = main(["audit", "--cluster", "--config", str(world.config), "--apply-policy-reports", "--no-progress",
                 "--json", str(tmp_path / "report.json"), "--fail-on", "never"])
    err = capfd.readouterr().err
    assert code == 0, err
    assert "PolicyReports: 3 applied (field manager sigwarden), 1 stale ones deleted" in err
    # Read-only but for the PolicyReports; lists in pages of the limit asked (kubectl's --chunk-size).
    writes = [(method, path) for method, path in api.log if method != "GET"]
    assert writes and all(path.startswith(REPORTS) for _, path in writes), writes
    assert max(api.pages) <= 2 and api.pages.count(2) >= 3  # five dev Pods came in three pages
    prod = api.objects[f"{REPORTS}/namespaces/prod/policyreports/sigwarden"]
    dev = api.objects[f"{REPORTS}/namespaces/dev/policyreports/sigwarden"]
    for report in (prod, dev):
        validate_object({k: v for k, v in report.items() if k != "metadata"} | {"metadata": {
            "name": report["metadata"]["name"], "namespace": report["metadata"]["namespace"]}})
    assert [(r["resources"][0]["name"], r["result"]) for r in prod["results"]] == [("web", "pass")]
    assert sorted((r["resources"][0]["name"], r["result"]) for r in dev["results"]) == [
        (f"job-{i}", "fail") for i in range(5)]
    tools = api.objects[f"{REPORTS}/namespaces/tools/policyreports/sigwarden"]
    assert [(r["resources"][0]["name"], r["result"]) for r in tools["results"]] == [("debug", "skip")]
    assert "Gatekeeper Config gatekeeper-system/config" in tools["results"][0]["message"]
    assert f"{REPORTS}/namespaces/gone/policyreports/sigwarden" not in api.objects  # pruned
    assert f"{REPORTS}/namespaces/dev/policyreports/kyverno-pol" in api.objects  # not sigwarden's: kept
    # Applied, not created or replaced: a second run leaves the same objects.
    assert main(["audit", "--cluster", "--config", str(world.config), "--apply-policy-reports", "--no-progress",
                 "--fail-on", "never"]) == 0
    assert "3 applied (field manager sigwarden), 0 stale ones deleted" in capfd.readouterr().err


@pytest.mark.parametrize(("drop", "message"), [
    # kubernetes/kubernetes staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go (PatchResource,
    # createAuthorizerAttributes): an apply that creates its object is authorized as a create as well.
    (("wgpolicyk8s.io", "create"), "forbidden: create policyreports"),
    (("", "list"), "forbidden: list namespaces"),
])
def test_the_stand_in_enforces_the_rules(tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch,
                                         capfd: pytest.CaptureFixture[str], drop: tuple[str, str],
                                         message: str) -> None:
    """Without a verb the chart grants, the run fails in one line: the chart's rules are what make it work."""
    rules = []
    for namespace, rule in audit_rules():
        if drop[0] in rule["apiGroups"]:
            rule = {**rule, "verbs": [v for v in rule["verbs"] if v != drop[1]]}
        rules.append((namespace, rule))
    api = FakeKubeAPI(tmp_path / "apiserver", rules=rules)
    populate(api)
    server = api.start()
    try:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(server, tmp_path / "kubeconfig")))
        code = main(["audit", "--cluster", "--config", str(world.config), "--apply-policy-reports", "--no-progress",
                     "--fail-on", "never"])
    finally:
        server.stop()
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("sigwarden: --cluster: ") and message in err, err


@pytest.mark.parametrize(("document", "problem"), [
    ({"current-context": "x", "contexts": []}, "contexts: no entry named 'x'"),
    ({"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
      "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],
      "users": [{"name": "u", "user": {"exec": {"command": "gke-gcloud-auth-plugin"}}}]}, "exec and auth-provider"),
    ({"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
      "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:1"}}],
      "users": [{"name": "u", "user": {"token": "t"}}]}, "must be an https:// URL"),
])
def test_a_kubeconfig_it_cannot_use_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capfd: pytest.CaptureFixture[str], document: dict[str, Any],
                                                problem: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert main(["audit", "--cluster", "--no-progress"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and problem in err, err


def test_apply_needs_cluster(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--apply-policy-reports", "--manifests", "/dev/null"]) == 2
    assert "give --cluster too" in capfd.readouterr().err


def test_the_chart_installs_the_crds_only_when_asked() -> None:
    plain = render({"audit": {"cronJob": {"enabled": True}}})
    assert not [d for d in plain if d["kind"] == "CustomResourceDefinition"]
    asked = render({"audit": {"cronJob": {"enabled": True}, "policyReports": {"installCRDs": True}}})
    crds = [d for d in asked if d["kind"] == "CustomResourceDefinition"]
    # `helm template` cannot look the cluster up; against a cluster with a copy (Kyverno's) `lookup` finds it and
    # nothing is rendered. Kept on uninstall either way.
    assert sorted(d["metadata"]["name"] for d in crds) == ["clusterpolicyreports.wgpolicyk8s.io",
                                                          "policyreports.wgpolicyk8s.io"]
    assert all(d["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"} for d in crds)
    assert not [d for d in render({}) if "audit" in d["metadata"]["name"]]
