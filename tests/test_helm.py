"""The Helm chart, rendered by the real Helm engine (helm-python-sdk; no helm binary).

Kubernetes objects are checked against the Kubernetes OpenAPI schemas that kubernetes-validate ships (offline),
Gatekeeper, cert-manager and Prometheus Operator objects against their CRDs vendored in tests/crds/.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import celpy
import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from provider import catalog
from provider.config import MutationConfig, ServerConfig, load_config
from provider.config.reader import SCHEMA
from provider.devkit.pki import issue, make_ca
from provider.metrics import Metrics
from tests.crds import _schemas, constraint_schema, validate_object

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "sigwarden"
DEPLOY = ROOT / "deploy"
NAMESPACE = "sigwarden-system"
KUBERNETES = "1.30"   # ValidatingAdmissionPolicy is GA from 1.30
CA_BUNDLE = base64.b64encode(make_ca("operator CA").cert_pem).decode()
GATEKEEPER_CA = make_ca("gatekeeper CA").cert_pem.decode()
PLACEHOLDER = base64.b64encode((CHART / "files/placeholder-ca.pem").read_bytes()).decode()
LABEL = "sigwarden.dev/enforcement"

CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "cert-manager": {"tls": {"mode": "certManager", "caBundle": CA_BUNDLE,
                             "certManager": {"issuerRef": {"name": "platform-ca", "kind": "ClusterIssuer"}}}},
    "existing-secret": {"tls": {"mode": "existingSecret", "existingSecret": "my-tls", "caBundle": CA_BUNDLE}},
    "client-ca-value": {"mtls": {"clientCA": {"source": "value", "pem": GATEKEEPER_CA}}},
    "declarative": {"tls": {"mode": "existingSecret", "existingSecret": "my-tls", "caBundle": CA_BUNDLE},
                    "mtls": {"clientCA": {"source": "value", "pem": GATEKEEPER_CA}}},
    "mtls-off": {"mtls": {"enabled": False}},
    "deny": {"policy": {"enforcementAction": "deny", "authorities": ["release"], "requireAll": True,
                        "exemptImages": ["registry.example/tools/*"], "namespaceOverrides": {"sandbox": "warn"}}},
    "scoped": {"policy": {"enforcementAction": "scoped", "digestPinning": {"enabled": True}}},
    "manifests": {"policy": {"delivery": "manifests", "digestPinning": {"enabled": True}}},
    "flux": {"policy": {"delivery": "none"}},
    "label": {"policy": {"namespaceOverrides": {"payments": "deny"},
                         "namespaceLabel": {"key": LABEL, "actions": {"warn": "warn", "deny": "deny"},
                                            "guard": {"enabled": True, "allowedGroups": ["platform-admins"]}}}},
    "mutation": {"mutation": {"enabled": True}, "autoscaling": {"enabled": True},
                 "serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                 "grafanaDashboard": {"enabled": True}},
    "audit": {"audit": {"cronJob": {"enabled": True}, "policyReports": {"installCRDs": True}},
              "trustMaterial": {"inline": {"cosign.pub": "PLACEHOLDER"}}, "registryCredentials": {
                  "existingSecret": "regcred"}},
    "full": {"authorities": [{"name": "release", "cosign": {"publicKeys": [
        {"file": "/etc/sigwarden/trust/inline/cosign.pub"}]}}],
             "trustMaterial": {"inline": {"cosign.pub": "PLACEHOLDER"}, "existingSecrets": ["notation-certs"]},
             "registryCredentials": {"existingSecret": "regcred"}, "mtls": {"clientNames": ["gk.example"]}},
    "clouds": {"cloudIdentity": {"azure": {"clientId": "0b4a6d5e-7d43-4b8a-9b60-2f3c1d6a1111"},
                                 "aws": {"roleArn": "arn:aws:iam::123456789012:role/sigwarden"},
                                 "alibaba": {"roleName": "sigwarden"},
                                 "google": {"serviceAccount": "sigwarden@project.iam.gserviceaccount.com"}},
               "config": {"stores": [
                   {"type": "registry", "match": ["myacr.azurecr.io/*"], "auth": {"cloud": {"provider": "azure"}}},
                   {"type": "registry", "match": ["registry.internal/*"], "auth": {"kubernetesSecrets": [
                       {"namespace": "ci", "name": "regcred"}, {"namespace": "ci", "serviceAccount": "builder"}]}},
                   {"type": "registry", "match": ["*"]}]}},
}
EXAMPLES = sorted((DEPLOY / "examples").glob("*.yaml")) + sorted((DEPLOY / "rollout").glob("*.yaml"))


def render_text(values: dict[str, Any]) -> dict[str, str]:
    chart = helm.Chart.load(str(CHART))
    return chart.render(values, name="sigwarden", namespace=NAMESPACE, is_install=True)


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc for path, text in sorted(render_text(values).items()) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def constraints(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The constraints a render delivers, whether as objects or through the delivery Job's ConfigMap."""
    found = [d for d in docs if d["apiVersion"].startswith("constraints.gatekeeper.sh/")]
    for configmap in of_kind(docs, "ConfigMap"):
        if "constraints.yaml" in configmap.get("data", {}):
            found += [d for d in yaml.safe_load_all(configmap["data"]["constraints.yaml"]) if d]
    return found


def validate(doc: dict[str, Any], templates: dict[str, dict[str, Any]]) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if doc["apiVersion"].startswith("constraints.gatekeeper.sh/"):
        jsonschema.validate(doc, constraint_schema(templates[doc["kind"]]))
    elif key in _schemas():
        validate_object(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_lint_is_clean() -> None:
    report = helm.lint(str(CHART), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_default_render_is_byte_identical_across_runs() -> None:
    first, second = render_text({}), render_text({})
    assert first == second
    # Nothing in the default render comes from the cluster or from randomness: no private key at all.
    assert "PRIVATE KEY" not in "".join(first.values())


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_object_fits_its_schema(case: str) -> None:
    docs = render(CASES[case])
    templates = {t["spec"]["crd"]["spec"]["names"]["kind"]: t for t in of_kind(docs, "ConstraintTemplate")}
    for doc in docs + constraints(docs):
        validate(doc, templates)
    assert len(of_kind(docs, "Provider")) == 2


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_documented_examples_render_and_validate(example: Path) -> None:
    docs = render(yaml.safe_load(example.read_text()))
    templates = {t["spec"]["crd"]["spec"]["names"]["kind"]: t for t in of_kind(docs, "ConstraintTemplate")}
    for doc in docs + constraints(docs):
        validate(doc, templates)
    referenced = "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    assert f"{example.parent.name}/{example.name}" in referenced, "every example is documented"


def _values_blocks() -> list[tuple[str, dict[str, Any]]]:
    """YAML blocks in the docs whose top-level keys are all chart values: examples users copy."""
    keys = set(yaml.safe_load((CHART / "values.yaml").read_text()))
    blocks = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for index, text in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)):
            documents = list(yaml.safe_load_all(text))
            data = documents[0] if len(documents) == 1 else None  # a multi-document block is not a values file
            if isinstance(data, dict) and set(data) <= keys:
                blocks.append((f"{doc.name}#{index}", data))
    return blocks


@pytest.mark.parametrize(("where", "values"), _values_blocks(), ids=[w for w, _ in _values_blocks()])
def test_values_examples_in_the_docs_render(where: str, values: dict[str, Any]) -> None:
    docs = render(values)
    assert of_kind(docs, "Deployment"), where


def test_docs_show_values_examples() -> None:
    assert "install.md#0" in [w for w, _ in _values_blocks()]


@pytest.mark.parametrize("case", ["default", "manifests", "label", "mutation"])
def test_only_the_delivery_job_is_a_hook(case: str) -> None:
    docs = render(CASES[case])
    hooks = [d for d in docs if "helm.sh/hook" in (d["metadata"].get("annotations") or {})]
    assert [(d["kind"], d["metadata"]["name"]) for d in hooks] == (
        [("Job", "sigwarden-constraints")] if CASES[case].get("policy", {}).get("delivery", "job") == "job" else [])
    for doc in docs + constraints(docs):
        assert "helm.sh/hook" not in (doc["metadata"].get("annotations") or {}) or doc["kind"] == "Job"


def test_job_delivery_applies_the_constraints_after_install_and_upgrade() -> None:
    docs = render({})
    (job,) = of_kind(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert "before-hook-creation" in job["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:4] == ["python", "-m", "provider.kube", "constraints"]
    assert command[command.index("--release") + 1] == "sigwarden"
    (configmap,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "sigwarden-constraints"]
    assert {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v} == {"sigwarden-constraints"}
    assert [c["metadata"]["name"] for c in constraints(docs)] == ["sigwarden-signed-images"]
    # The Job's account may touch only the project's constraint kinds.
    (role,) = [r for r in of_kind(docs, "ClusterRole") if r["metadata"]["name"] == "sigwarden-constraints"]
    assert role["rules"] == [{"apiGroups": ["constraints.gatekeeper.sh"],
                              "resources": ["k8ssignedimages", "k8sdigestpinnedimages"],
                              "verbs": ["get", "list", "create", "patch", "delete"]}]
    assert configmap["metadata"].get("annotations") is None


def test_manifest_delivery_orders_constraints_after_templates_for_argo_cd() -> None:
    docs = render(CASES["manifests"])
    assert not of_kind(docs, "Job")
    for constraint in constraints(docs):
        annotations = constraint["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/sync-wave"] == "1"
        assert annotations["argocd.argoproj.io/sync-options"] == "SkipDryRunOnMissingResource=true"
    for template in of_kind(docs, "ConstraintTemplate"):
        assert int((template["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave", "0")) < 1
    assert {c["kind"] for c in constraints(docs)} == {"K8sSignedImages", "K8sDigestPinnedImages"}
    assert constraints(render(CASES["flux"])) == []


def test_pod_mode_renders_a_placeholder_the_pod_replaces() -> None:
    docs = render({})
    assert {p["spec"]["caBundle"] for p in of_kind(docs, "Provider")} == {PLACEHOLDER}
    assert not [s for s in of_kind(docs, "Secret") if s.get("type") == "kubernetes.io/tls"]
    (deployment,) = of_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    keeper = next(c for c in pod["containers"] if c["name"] == "certs")
    assert init["command"] == [*keeper["command"], "--once"]
    args = keeper["command"]
    assert args[args.index("--secret") + 1] == "sigwarden-tls"
    hosts = [args[i + 1] for i, a in enumerate(args) if a == "--host"]
    providers = [args[i + 1] for i, a in enumerate(args) if a == "--provider"]
    assert f"sigwarden.{NAMESPACE}.svc" in hosts
    assert sorted(providers) == sorted(p["metadata"]["name"] for p in of_kind(docs, "Provider"))
    for provider in of_kind(docs, "Provider"):
        assert provider["spec"]["url"].split("//", 1)[1].split(":", 1)[0] in hosts
    # The serving container reads what the keeper writes, from a memory volume, read-only.
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tls"] and "emptyDir" in volumes["client-ca"]


def test_given_ca_modes_use_the_given_bundle_and_fail_clearly_without_it() -> None:
    for case in ("cert-manager", "existing-secret"):
        docs = render(CASES[case])
        assert {p["spec"]["caBundle"] for p in of_kind(docs, "Provider")} == {CA_BUNDLE}
        (deployment,) = of_kind(docs, "Deployment")
        (tls,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"]
        assert tls["secret"]["secretName"] == ("sigwarden-tls" if case == "cert-manager" else "my-tls")
    (certificate,) = of_kind(render(CASES["cert-manager"]), "Certificate")
    assert certificate["spec"]["issuerRef"] == {"name": "platform-ca", "kind": "ClusterIssuer"}
    assert f"sigwarden.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    assert not of_kind(render(CASES["cert-manager"]), "Issuer")
    with pytest.raises(helm.errors.HelmError, match=r"tls\.caBundle is needed with tls\.mode=existingSecret"):
        render({"tls": {"mode": "existingSecret", "existingSecret": "my-tls"}})
    with pytest.raises(helm.errors.HelmError, match=r"needs tls\.certManager\.issuerRef"):
        render({"tls": {"mode": "certManager", "caBundle": CA_BUNDLE}})
    # Fully declarative values need no certificate keeper and no API access at all.
    docs = render(CASES["declarative"])
    (deployment,) = of_kind(docs, "Deployment")
    assert [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]] == ["sigwarden"]
    assert not of_kind(docs, "ClusterRole") or all(
        r["metadata"]["name"] == "sigwarden-constraints" for r in of_kind(docs, "ClusterRole"))


def test_client_ca_comes_from_the_webhook_configuration_or_a_value_never_from_gatekeepers_secret() -> None:
    # Renders are deterministic: the exceptions are the opt-in generated shared-cache Secret (tested below) and
    # the opt-in PolicyReport CRDs, which a `lookup` leaves out where the cluster has a copy already.
    sources = "".join(p.read_text() for p in (CHART / "templates").iterdir()
                      if p.name not in ("sharedcache-secret.yaml", "policyreport-crds.yaml"))
    for word in ("gatekeeper-webhook-server-cert", "lookup", "genCA", "genSignedCert", "randAlphaNum", "now"):
        assert not re.search(rf"\b{word}\b", sources), word
    docs = render({})
    (role,) = [r for r in of_kind(docs, "ClusterRole") if r["metadata"]["name"] == "sigwarden-certs"]
    assert {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"],
            "resourceNames": ["gatekeeper-validating-webhook-configuration"], "verbs": ["get"]} in role["rules"]
    assert not [r for r in role["rules"] + of_kind(docs, "Role")[0]["rules"]
                if "secrets" in r.get("resources", []) and "gatekeeper" in json.dumps(r)]
    docs = render(CASES["client-ca-value"])
    (secret,) = [s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == "sigwarden-client-ca"]
    assert base64.b64decode(secret["data"]["ca.crt"]).decode() == GATEKEEPER_CA
    with pytest.raises(helm.errors.HelmError, match=r"mtls\.clientCA\.source=value needs mtls\.clientCA\.pem"):
        render({"mtls": {"clientCA": {"source": "value"}}})


def test_rbac_names_the_objects_it_may_touch() -> None:
    docs = render({})
    (role,) = of_kind(docs, "Role")
    by_verb = {tuple(r["verbs"]): r for r in role["rules"]}
    assert by_verb[("get", "update")]["resourceNames"] == ["sigwarden-tls"]
    assert by_verb[("create",)]["resources"] == ["secrets"]  # RBAC cannot limit create by name
    (cluster,) = [r for r in of_kind(docs, "ClusterRole") if r["metadata"]["name"] == "sigwarden-certs"]
    (providers,) = [r for r in cluster["rules"] if r["resources"] == ["providers"]]
    assert providers["resourceNames"] == ["sigwarden", "sigwarden-mutation"] and providers["verbs"] == ["get", "patch"]
    for binding in of_kind(docs, "RoleBinding") + of_kind(docs, "ClusterRoleBinding"):
        (subject,) = binding["subjects"]
        assert subject["namespace"] == NAMESPACE


@pytest.mark.parametrize("case", sorted(CASES))
def test_pod_security_settings(case: str) -> None:
    docs = render(CASES[case])
    (deployment,) = of_kind(docs, "Deployment")
    pods = [deployment["spec"]["template"]["spec"]] + [j["spec"]["template"]["spec"] for j in of_kind(docs, "Job")]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert container["resources"]["limits"]["memory"]
    pod = pods[0]
    (server,) = [c for c in pod["containers"] if c["name"] == "sigwarden"]
    assert server["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    writable = [m for m in server["volumeMounts"] if not m.get("readOnly")]
    assert [m["mountPath"] for m in writable] == ["/tmp"]
    # Only the certificate keeper holds an API token, and only when it runs; the provider too only when a store
    # reads docker config Secrets through the API (auth.kubernetesSecrets).
    token_mounts = [c["name"] for c in pod["containers"] + pod.get("initContainers", [])
                    for m in c["volumeMounts"] if m["name"] == "kube-api"]
    reads_secrets = any((s.get("auth") or {}).get("kubernetesSecrets")
                        for s in CASES[case].get("config", {}).get("stores", []))
    assert set(token_mounts) <= {"certs", "certs-init"} | ({"sigwarden"} if reads_secrets else set())
    assert pod["topologySpreadConstraints"]
    if case != "mutation":
        assert deployment["spec"]["replicas"] == 2
    (pdb,) = of_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"][
        "labels"].items()


@pytest.mark.parametrize("case", ["default", "mutation"])
def test_selectors_pick_only_the_provider_pods(case: str) -> None:
    docs = render(CASES[case])
    (deployment,) = of_kind(docs, "Deployment")
    other_pods = [j["spec"]["template"]["metadata"]["labels"] for j in of_kind(docs, "Job")]
    assert other_pods or case != "default"
    selectors = [s["spec"]["selector"] for s in of_kind(docs, "Service")]
    selectors += [p["spec"]["selector"]["matchLabels"] for p in of_kind(docs, "PodDisruptionBudget")]
    selectors += [n["spec"]["podSelector"]["matchLabels"] for n in of_kind(docs, "NetworkPolicy")]
    for selector in selectors:
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        for labels in other_pods:
            assert not selector.items() <= labels.items()


def test_network_policy_is_on_and_selects_the_provider_pods() -> None:
    docs = render({})
    (policy,) = of_kind(docs, "NetworkPolicy")
    (deployment,) = of_kind(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    provider_rule, metrics_rule = policy["spec"]["ingress"]
    assert provider_rule["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "gatekeeper-system"}}}]
    assert provider_rule["ports"] == [{"port": 8443, "protocol": "TCP"}]
    assert metrics_rule["from"] == [{"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}]}}]
    assert metrics_rule["ports"] == [{"port": 9090, "protocol": "TCP"}]
    (none,) = of_kind(render({"networkPolicy": {"metricsNamespaces": []}}), "NetworkPolicy")
    assert len(none["spec"]["ingress"]) == 1
    assert not of_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def rendered_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (configmap,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "sigwarden-config"]
    return yaml.safe_load(configmap["data"]["config.yaml"])


@pytest.mark.parametrize("case", ["default", "mtls-off", "full"])
def test_rendered_config_passes_config_check(case: str, tmp_path: Path) -> None:
    from provider.devkit.cosign import public_pem

    docs = render(CASES[case])
    text = json.dumps(rendered_config(docs))
    # Lay the mounted files out under tmp_path, as the pod would see them under /etc/sigwarden.
    ca = make_ca("gatekeeper")
    leaf = issue(make_ca("server"), "sigwarden", ("sigwarden.sigwarden-system.svc",), server=True)
    files = {"tls/tls.crt": leaf.cert_pem, "tls/tls.key": leaf.key_pem, "client-ca/ca.crt": ca.cert_pem,
             "regcred/.dockerconfigjson": b'{"auths": {}}', "trust/inline/cosign.pub": public_pem(leaf.key)}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(text.replace("/etc/sigwarden/", f"{tmp_path}/"))
    config = load_config(config_path)
    assert config.server.request_deadline == 1.5 and config.mutation.deadline == 0.5
    assert (config.server.tls.client_ca is not None) is (case != "mtls-off")
    if case == "full":
        assert config.stores[0].auth.docker_config == tmp_path / "regcred/.dockerconfigjson"
        assert config.server.tls.client_names == ("gk.example",)
        assert [a.name for a in config.authorities] == ["release"]


def provider_timeouts(docs: list[dict[str, Any]]) -> dict[str, int]:
    return {p["metadata"]["name"]: p["spec"]["timeout"] for p in of_kind(docs, "Provider")}


def deadlines(docs: list[dict[str, Any]]) -> tuple[str, str]:
    config = rendered_config(docs)
    return config["server"]["requestDeadline"], config["mutation"]["deadline"]


@pytest.mark.parametrize(("gatekeeper", "provider", "timeouts", "expected"), [
    # Gatekeeper's chart defaults (3 s validating, 1 s mutating): the verify Provider one second inside the
    # webhook, the provider 500 ms inside that; mutation's 1 s leaves a 500 ms answer.
    ({}, {}, {"sigwarden": 2, "sigwarden-mutation": 1}, ("1500ms", "500ms")),
    ({"mutatingWebhookTimeoutSeconds": 3}, {}, {"sigwarden": 2, "sigwarden-mutation": 2}, ("1500ms", "1500ms")),
    ({"validatingWebhookTimeoutSeconds": 10, "mutatingWebhookTimeoutSeconds": 5}, {"timeout": 9},
     {"sigwarden": 9, "sigwarden-mutation": 4}, ("8500ms", "3500ms")),
    ({"validatingWebhookTimeoutSeconds": 2, "mutatingWebhookTimeoutSeconds": 2}, {"timeout": 1},
     {"sigwarden": 1, "sigwarden-mutation": 1}, ("500ms", "500ms")),
])
def test_timeouts_fit_inside_gatekeepers_webhook_timeouts(gatekeeper: dict[str, int], provider: dict[str, int],
                                                          timeouts: dict[str, int],
                                                          expected: tuple[str, str]) -> None:
    values = {"gatekeeper": gatekeeper, "provider": provider, "mutation": {"enabled": True}}
    docs = render(values)
    assert provider_timeouts(docs) == timeouts and deadlines(docs) == expected
    validating = {"validatingWebhookTimeoutSeconds": 3, "mutatingWebhookTimeoutSeconds": 1, **gatekeeper}
    assert timeouts["sigwarden"] <= validating["validatingWebhookTimeoutSeconds"] - 1
    # A mutating webhook of 1 s cannot hold a Provider timeout one second shorter (whole seconds, at least 1):
    # there the provider's own answer is sub-second instead.
    mutating = validating["mutatingWebhookTimeoutSeconds"]
    assert timeouts["sigwarden-mutation"] <= max(1, mutating - 1)
    request_deadline, mutation_deadline = (float(d.removesuffix("ms")) / 1000 for d in expected)
    assert request_deadline < timeouts["sigwarden"]
    assert mutation_deadline < min(timeouts["sigwarden-mutation"], mutating)
    # The verify deadline no longer shrinks when mutation is on: each endpoint has its own.
    assert deadlines(render({**values, "mutation": {"enabled": False}}))[0] == expected[0]


@pytest.mark.parametrize(("values", "message"), [
    # The values schema refuses these (one rule per webhook timeout, scripts/build_values_schema.py).
    ({"provider": {"timeout": 3}}, r"/provider/timeout': maximum: got 3, want 2"),
    ({"gatekeeper": {"validatingWebhookTimeoutSeconds": 5}, "provider": {"timeout": 5}},
     r"/provider/timeout': maximum: got 5, want 4"),
    ({"gatekeeper": {"validatingWebhookTimeoutSeconds": 1}, "provider": {"timeout": 1}},
     r"/gatekeeper/validatingWebhookTimeoutSeconds': minimum: got 1, want 2"),
    ({"mutation": {"failurePolicy": "UseDefault"}}, r"/mutation/failurePolicy'"),
    ({"config": {"mutation": {"deadline": "900ms"}}}, r"config\.mutation\.deadline"),
])
def test_timeouts_outside_the_webhooks_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.errors.HelmError, match=message):
        render(values)
    schema = json.loads((CHART / "values.schema.json").read_text())
    chart_defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    merged = {**chart_defaults, **{k: {**chart_defaults.get(k, {}), **v} for k, v in values.items()}}
    if "config" not in values:  # the chart itself refuses config.mutation.deadline; the rest the schema does
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(schema).validate(merged)
    render({"gatekeeper": {"validatingWebhookTimeoutSeconds": 5}, "provider": {"timeout": 4}})


def test_policy_build_writes_the_charts_values() -> None:
    """`sigwarden policy build` (provider/catalog) and the chart's defaults agree on every timeout and policy."""
    docs = render({"mutation": {"enabled": True}})
    built = {d["metadata"]["name"]: d["spec"] for d in yaml.safe_load_all(catalog.PROVIDER.read_text()) if d}
    assert {name: spec["timeout"] for name, spec in built.items()} == provider_timeouts(docs)
    assigns = [d for path in sorted(catalog.MUTATION.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text())
               if d]
    rendered = of_kind(docs, "Assign")
    assert {a["spec"]["location"] for a in assigns} == {a["spec"]["location"] for a in rendered}
    for assign in [*assigns, *rendered]:
        assert assign["spec"]["parameters"]["assign"]["externalData"]["failurePolicy"] == "Fail"
    # The provider's own defaults are the deadlines the chart derives for those Providers.
    request_deadline, mutation_deadline = deadlines(docs)
    assert ServerConfig().request_deadline == float(request_deadline.removesuffix("ms")) / 1000
    assert MutationConfig().deadline == float(mutation_deadline.removesuffix("ms")) / 1000
    # The Gatekeeper values file the project ships keeps these promises.
    gatekeeper = yaml.safe_load((DEPLOY / "gatekeeper-values.yaml").read_text())
    assert gatekeeper["validatingWebhookFailurePolicy"] == "Fail"
    docs = render({"mutation": {"enabled": True}, "gatekeeper": {
        "validatingWebhookTimeoutSeconds": gatekeeper["validatingWebhookTimeoutSeconds"],
        "mutatingWebhookTimeoutSeconds": gatekeeper["mutatingWebhookTimeoutSeconds"]}})
    timeouts = provider_timeouts(docs)
    assert timeouts["sigwarden"] <= gatekeeper["validatingWebhookTimeoutSeconds"] - 1
    assert timeouts["sigwarden-mutation"] <= gatekeeper["mutatingWebhookTimeoutSeconds"] - 1
    ttl = gatekeeper["externaldataProviderResponseCacheTTL"]
    assert re.fullmatch(r"\d+s", ttl) and int(ttl[:-1]) <= 5  # no longer than the tag TTL


def test_gatekeeper_values_file_sets_what_sigwardens_chart_expects() -> None:
    """Gatekeeper's real chart (vendored in tests/charts/) rendered with deploy/gatekeeper-values.yaml."""
    chart = helm.Chart.load(str(ROOT / "tests/charts/gatekeeper"))
    values = yaml.safe_load((DEPLOY / "gatekeeper-values.yaml").read_text())
    rendered = chart.render(values, name="gatekeeper", namespace="gatekeeper-system", is_install=True)
    docs = [d for text in rendered.values() for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    ours = yaml.safe_load((CHART / "values.yaml").read_text())["gatekeeper"]
    (validating,) = of_kind(docs, "ValidatingWebhookConfiguration")
    assert validating["metadata"]["name"] == ours["validatingWebhookConfiguration"]
    webhook = next(w for w in validating["webhooks"] if w["name"] == "validation.gatekeeper.sh")
    assert webhook["failurePolicy"] == "Fail" and webhook["timeoutSeconds"] == ours["validatingWebhookTimeoutSeconds"]
    (mutating,) = of_kind(docs, "MutatingWebhookConfiguration")
    (mutation_webhook,) = mutating["webhooks"]
    mutation_values = yaml.safe_load((DEPLOY / "examples/mutation.yaml").read_text())
    assert mutation_webhook["timeoutSeconds"] == mutation_values["gatekeeper"]["mutatingWebhookTimeoutSeconds"]
    providers = of_kind(render(mutation_values), "Provider")
    assert max(p["spec"]["timeout"] for p in providers) <= mutation_webhook["timeoutSeconds"]
    # `kubectl debug` adds an ephemeral container with an UPDATE of pods/ephemeralcontainers: both webhooks
    # must see it, or the templates' ephemeral-container rules never run for it.
    for hook in (webhook, mutation_webhook):
        assert any("UPDATE" in rule["operations"] and "pods/ephemeralcontainers" in rule["resources"]
                   for rule in hook["rules"]), hook["name"]
    for deployment in of_kind(docs, "Deployment"):
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--external-data-provider-response-cache-ttl=5s" in args
        assert f"--exempt-namespace={NAMESPACE}" in args
        assert deployment["metadata"]["namespace"] == ours["namespace"]


def test_rendered_templates_equal_the_project_templates() -> None:
    rendered = {t["metadata"]["name"]: t for t in of_kind(render({}), "ConstraintTemplate")}
    project = {p.parent.name: yaml.safe_load(p.read_text()) for p in catalog.template_files()}
    assert rendered == project


def test_policy_values_drive_the_constraints() -> None:
    found = {c["metadata"]["name"]: c for c in constraints(render(CASES["deny"]))}
    main, sandbox = found["sigwarden-signed-images"], found["sigwarden-signed-images-warn"]
    assert main["spec"]["enforcementAction"] == "deny"
    assert main["spec"]["parameters"]["authorities"] == ["release"] and main["spec"]["parameters"]["requireAll"]
    assert "sandbox" in main["spec"]["match"]["excludedNamespaces"]
    assert NAMESPACE in main["spec"]["match"]["excludedNamespaces"]
    assert sandbox["spec"]["enforcementAction"] == "warn" and sandbox["spec"]["match"]["namespaces"] == ["sandbox"]
    assert [c["spec"]["enforcementAction"] for c in constraints(render({}))] == ["dryrun"]
    scoped = constraints(render(CASES["scoped"]))
    assert scoped[0]["spec"]["enforcementAction"] == "scoped"
    assert len(scoped[0]["spec"]["scopedEnforcementActions"]) == 2
    assert [c["kind"] for c in scoped] == ["K8sSignedImages", "K8sDigestPinnedImages"]


def test_the_charts_assigns_are_the_catalogs() -> None:
    """The chart pins the same image fields of the same kinds as mutation/pin-image-digests.yaml."""
    def shape(assign: dict[str, Any]) -> tuple[Any, ...]:
        spec = assign["spec"]
        return (assign["metadata"]["name"], spec["location"], json.dumps(spec["applyTo"]),
                json.dumps(spec["match"]["kinds"]), json.dumps(spec["parameters"].get("pathTests")))

    shipped = [d for d in yaml.safe_load_all((catalog.MUTATION / "pin-image-digests.yaml").read_text()) if d]
    chart = of_kind(render(CASES["mutation"]), "Assign")
    assert sorted(map(shape, chart)) == sorted(map(shape, shipped))
    locations = {a["spec"]["location"] for a in chart}
    assert "spec.volumes[name:*].image.reference" in locations  # image volumes (KEP-4639)
    assert "spec.jobTemplate.spec.template.spec.volumes[name:*].image.reference" in locations
    assert "spec.template.spec.ephemeralContainers[name:*].image" not in locations  # refused in templates


def test_the_mutation_leaves_the_exempt_images_alone() -> None:
    """policy.exemptImages reaches the provider's mutation.exemptImages unless the config sets its own."""
    exempt = ["registry.example/tools/*", "registry.example/private/app:v1"]
    config = rendered_config(render({**CASES["mutation"], "policy": {"exemptImages": exempt}}))
    assert config["mutation"]["exemptImages"] == exempt
    own = rendered_config(render({"policy": {"exemptImages": exempt},
                                  "config": {"mutation": {"keepTag": True, "exemptImages": ["other/*"]}}}))
    assert own["mutation"]["exemptImages"] == ["other/*"]
    assert "exemptImages" not in rendered_config(render({}))["mutation"]


def _selects(match: dict[str, Any], name: str, labels: dict[str, str]) -> bool:
    """Gatekeeper's namespace matching for the fields the chart uses."""
    if name in match.get("excludedNamespaces", []) or ("namespaces" in match and name not in match["namespaces"]):
        return False
    for expression in match.get("namespaceSelector", {}).get("matchExpressions", []):
        present = labels.get(expression["key"])
        inside = present is not None and present in expression["values"]
        if (expression["operator"] == "In") != inside:
            return False
    return True


@pytest.mark.parametrize("preset", ["label", *(p.name for p in sorted((DEPLOY / "rollout").glob("*.yaml")))])
def test_each_namespace_gets_exactly_one_signed_images_constraint(preset: str) -> None:
    values = CASES["label"] if preset == "label" else yaml.safe_load((DEPLOY / "rollout" / preset).read_text())
    found = [c for c in constraints(render(values)) if c["kind"] == "K8sSignedImages"]
    policy = values["policy"]
    label = policy.get("namespaceLabel", {})
    namespaces = [("plain", {}), ("payments", {LABEL: "warn"}), ("legacy-batch", {}), ("vendor-appliance", {})]
    namespaces += [(f"labelled-{v}", {label["key"]: v}) for v in label.get("actions", {})]
    namespaces += [("labelled-unknown", {label.get("key", LABEL): "nonsense"})]
    for name, labels in namespaces:
        matching = [c for c in found if _selects(c["spec"]["match"], name, labels)]
        assert len(matching) == 1, (name, [c["metadata"]["name"] for c in matching])
        (constraint,) = matching
        expected = policy.get("namespaceOverrides", {}).get(name) or (
            label.get("actions", {}).get(labels.get(label.get("key", ""), ""))) or policy.get("enforcementAction",
                                                                                          "dryrun")
        assert constraint["spec"]["enforcementAction"] == expected, name
    for excluded in ("kube-system", "gatekeeper-system", NAMESPACE):
        assert not [c for c in found if _selects(c["spec"]["match"], excluded, {})]


def test_label_guard_lets_only_the_platform_groups_change_the_enforcement_label() -> None:
    docs = render(CASES["label"])
    (policy,) = of_kind(docs, "ValidatingAdmissionPolicy")
    (binding,) = of_kind(docs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"] and binding["spec"]["validationActions"] == [
        "Deny"]
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert variables["key"] == f"'{LABEL}'"
    (rule,) = policy["spec"]["validations"]
    assert rule["expression"] == ('variables.before == variables.after || '
                                  'request.userInfo.groups.exists(g, g in ["platform-admins"])')
    assert policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"] == ["namespaces"]
    assert not of_kind(render({"policy": {"namespaceLabel": {"key": LABEL, "actions": {"deny": "deny"}}}}),
                       "ValidatingAdmissionPolicy")


def _admit(policy: dict[str, Any], old: dict[str, str] | None, new: dict[str, str], groups: list[str]) -> str:
    """Evaluate the policy's CEL with a real CEL engine; returns "" when admitted, else the message."""
    env = celpy.Environment()

    def run(expression: str, activation: dict[str, Any]) -> Any:
        return env.program(env.compile(expression)).evaluate(activation)

    activation = {"object": celpy.json_to_cel({"metadata": {"name": "team-a", "labels": new}}),
                  "oldObject": celpy.json_to_cel(None if old is None else {"metadata": {"name": "team-a",
                                                                                        "labels": old}}),
                  "request": celpy.json_to_cel({"operation": "CREATE" if old is None else "UPDATE",
                                                "userInfo": {"username": "someone", "groups": groups}})}
    variables: dict[str, Any] = {}
    for variable in policy["spec"]["variables"]:
        activation["variables"] = celpy.json_to_cel(variables)
        variables[variable["name"]] = celpy.json_to_cel(run(variable["expression"], activation))
    activation["variables"] = celpy.json_to_cel(variables)
    for rule in policy["spec"]["validations"]:
        if not run(rule["expression"], activation):
            return str(run(rule["messageExpression"], activation))
    return ""


def test_label_guard_decisions_under_a_cel_engine() -> None:
    (policy,) = of_kind(render(CASES["label"]), "ValidatingAdmissionPolicy")
    developer, platform = ["system:authenticated", "team-a"], ["system:authenticated", "platform-admins"]
    assert _admit(policy, None, {"team": "a"}, developer) == ""
    assert "only platform-admins may change it" in _admit(policy, None, {LABEL: "deny"}, developer)
    assert _admit(policy, None, {LABEL: "deny"}, platform) == ""
    assert LABEL in _admit(policy, {LABEL: "deny"}, {}, developer)                     # opting out by removal
    assert _admit(policy, {LABEL: "deny"}, {LABEL: "warn"}, developer) != ""          # or by weakening
    assert _admit(policy, {LABEL: "deny"}, {LABEL: "deny", "cost-centre": "42"}, developer) == ""
    assert _admit(policy, {LABEL: "deny"}, {}, platform) == ""


def _metric_names(expression: str) -> set[str]:
    return set(re.findall(r"\b(sigwarden_[a-z_]+?)(?:_bucket|_count|_sum)?\b", expression))


def test_alerts_and_dashboard_use_metrics_the_provider_exports() -> None:
    exported = {m.name for m in Metrics().registry.collect()}
    exported |= {f"{n}_total" for n in exported}
    docs = render(CASES["mutation"])
    (rule,) = of_kind(docs, "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"SigwardenItemErrors", "SigwardenDeadlineMisses", "SigwardenConfigReloadFailing",
            "SigwardenCertificateExpiring", "SigwardenTrustMaterialExpiring"} <= set(alerts)
    for name, expression in alerts.items():
        assert _metric_names(expression) and _metric_names(expression) <= exported, name
        assert f'namespace="{NAMESPACE}"' in expression
    (configmap,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "sigwarden-dashboard"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["sigwarden.json"])
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set().union(*(_metric_names(e) for e in expressions))
    assert used <= exported
    assert {"sigwarden_request_duration_seconds", "sigwarden_cache_hits_total", "sigwarden_items_total",
            "sigwarden_verified_items_total", "sigwarden_registry_requests_total"} <= used
    assert not of_kind(render({}), "PrometheusRule")


def test_gitops_snippets_carry_the_settings_they_need() -> None:
    (application,) = yaml.safe_load_all((DEPLOY / "argocd/sigwarden-application.yaml").read_text())
    spec = application["spec"]
    assert {"group": "externaldata.gatekeeper.sh", "kind": "Provider", "jsonPointers": ["/spec/caBundle"]} in spec[
        "ignoreDifferences"]
    assert "RespectIgnoreDifferences=true" in spec["syncPolicy"]["syncOptions"]
    assert spec["source"]["helm"]["valuesObject"]["policy"]["delivery"] == "manifests"
    flux = {(d["kind"], d["metadata"]["name"]): d
            for d in yaml.safe_load_all((DEPLOY / "flux/sigwarden.yaml").read_text())}
    assert flux[("Kustomization", "sigwarden-constraints")]["spec"]["dependsOn"] == [{"name": "sigwarden"}]
    assert flux[("Kustomization", "sigwarden")]["spec"]["wait"] is True
    release = flux[("HelmRelease", "sigwarden")]
    assert release["spec"]["values"]["policy"]["delivery"] == "none"
    # Both values render (the snippets' values are real chart values).
    render(spec["source"]["helm"]["valuesObject"])
    render(release["spec"]["values"])


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("build_values_schema", ROOT / "scripts/build_values_schema.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_values_schema_is_generated_from_the_loader_schema() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts/build_values_schema.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    schema = json.loads((CHART / "values.schema.json").read_text())

    def keys_of(node: dict[str, Any], prefix: str) -> set[str]:
        found = set()
        for key, sub in node.get("properties", {}).items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            for nested in (sub, sub.get("items", {}), sub.get("additionalProperties") or {}):
                if isinstance(nested, dict) and "properties" in nested:
                    suffix = "[]" if nested is sub.get("items") else (".<host>" if nested is sub.get(
                        "additionalProperties") else "")
                    found |= keys_of(nested, path + suffix)
            # Notation trust stores: by store name, file paths or {keyVault: …} entries.
            for pattern in (sub.get("patternProperties") or {}).values():
                for option in (pattern.get("items") or {}).get("anyOf", []):
                    if "properties" in option:
                        found |= keys_of(option, path + ".<store>[]")
        return found

    generated = keys_of(schema["properties"]["authorities"]["items"], "authorities[]")
    loader = {f"{section}.{key}" for section, keys in SCHEMA.items() if section.startswith("authorities[]")
              for key in keys}
    assert loader <= generated
    assert keys_of(schema["properties"]["config"], "") >= {f"{s}.{k}" for s, keys in SCHEMA.items()
                                                           if s.split(".")[0] in ("verification", "mutation",
                                                                                  "stores[]") for k in keys}


def test_generator_refuses_a_loader_key_without_a_type(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _load_generator()
    monkeypatch.setitem(generator.SCHEMA, "authorities[].cosign",
                        generator.SCHEMA["authorities[].cosign"] | {"newKey"})
    with pytest.raises(KeyError, match=r"authorities\[\]\.cosign\.newKey"):
        generator.chart_schema()


@pytest.mark.parametrize(("authority", "message"), [
    ({"name": "release", "cosgin": {}}, r"/authorities/0.*cosgin"),
    ({"name": "release", "cosign": {"publicKey": ["/k.pub"]}}, r"/authorities/0/cosign.*publicKey"),
    ({"name": "release", "cosign": {"publicKeys": ["/k.pub"], "tlog": "always"}}, r"/authorities/0/cosign/tlog"),
    ({"name": "Release!", "cosign": {"publicKeys": ["/k.pub"]}}, r"/authorities/0/name"),
    ({"name": "release"}, r"/authorities/0"),
    ({"name": "nb", "notation": {"trustStores": {"root": ["/r.pem"]}, "trustPolicy": {"file": "/p.json"}}},
     r"/authorities/0/notation/trustStores"),
    ({"name": "kl", "cosign": {"keyless": {"fulcioRoots": ["/f.pem"], "identities": [{"issuer": "x"}]}}},
     r"/authorities/0/cosign/keyless/identities/0"),
])
def test_an_invalid_authority_fails_the_render_naming_the_field(authority: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.errors.HelmError, match=message):
        render({"authorities": [authority]})


def test_values_schema_rejects_bad_chart_values() -> None:
    for bad in ({"policy": {"enforcementAction": "block"}}, {"replicaCount": "two"},
                {"provider": {"timeout": 30}}, {"policy": {"namespaceOverrides": {"x": "allow"}}},
                {"tls": {"mode": "generated"}}, {"policy": {"delivery": "hook"}},
                {"config": {"verification": {"cache": {"ttl": "five minutes"}}}},
                {"config": {"stores": [{"type": "registry", "match": ["*"], "insecur": ["x"]}]}},
                {"tls": {"mode": "existingSecret", "caBundle": CA_BUNDLE}},
                {"provider": {"server": {"workers": 0}}}, {"provider": {"server": {"workers": "many"}}}):
        with pytest.raises(helm.errors.HelmError):
            render(bad)


def test_shared_cache_and_front_door_values_reach_the_config(tmp_path: Path) -> None:
    values = {"sharedCache": {"enabled": True, "existingSecret": "cache-keys", "redis": {"enabled": True}},
              "provider": {"server": {"idleTimeout": "45s", "maxConnections": 2000, "headerTimeout": "4s",
                                      "workers": 3}}}
    docs = render(values)
    for doc in docs:
        if doc["metadata"]["name"] == "sigwarden-redis":
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    config = rendered_config(docs)
    assert config["server"]["idleTimeout"] == "45s" and config["server"]["maxConnections"] == 2000
    assert config["server"]["workers"] == 3
    assert config["server"]["threads"] == 16  # the chart's own keys stay
    redis = config["verification"]["cache"]["redis"]
    assert redis == {"url": "redis://sigwarden-redis:6379/0", "hmacKeyFile": "/etc/sigwarden/shared-cache/hmac-key",
                     "passwordFile": "/etc/sigwarden/shared-cache/password", "prefix": "sigwarden",
                     "timeout": "200ms"}
    assert config["verification"]["cache"]["ttl"] == "5m"  # merged into the cache settings, not replacing them
    (deployment,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "sigwarden"]
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "shared-cache", "secret": {"secretName": "cache-keys"}} in pod["volumes"]
    (redis_pod,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "sigwarden-redis"]
    redis_labels = redis_pod["spec"]["template"]["metadata"]["labels"]
    # The provider's selectors (Service, PDB, NetworkPolicy) never pick the Redis pod, and the reverse.
    assert not deployment["spec"]["selector"]["matchLabels"].items() <= redis_labels.items()
    (service,) = [s for s in of_kind(docs, "Service") if s["metadata"]["name"] == "sigwarden-redis"]
    assert service["spec"]["selector"] == redis_labels
    (policy,) = [p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"] == "sigwarden-redis"]
    assert policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"].items() <= \
        deployment["spec"]["template"]["metadata"]["labels"].items()
    assert "--requirepass" in redis_pod["spec"]["template"]["spec"]["containers"][0]["args"][0]

    # The rendered config loads with the Secret's files where the pod mounts them.
    leaf = issue(make_ca("server"), "sigwarden", ("sigwarden.sigwarden-system.svc",), server=True)
    files = {"tls/tls.crt": leaf.cert_pem, "tls/tls.key": leaf.key_pem, "client-ca/ca.crt": make_ca("gk").cert_pem,
             "shared-cache/hmac-key": b"k" * 64, "shared-cache/password": b"secret"}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "config.yaml").write_text(json.dumps(config).replace("/etc/sigwarden/", f"{tmp_path}/"))
    loaded = load_config(tmp_path / "config.yaml")
    assert loaded.server.idle_timeout == 45 and loaded.server.max_connections == 2000
    assert loaded.verification.cache.redis is not None
    assert loaded.verification.cache.redis.password_file == tmp_path / "shared-cache/password"


def test_shared_cache_needs_a_secret_and_a_url() -> None:
    with pytest.raises(Exception, match=r"sharedCache\.existingSecret"):
        render({"sharedCache": {"enabled": True, "url": "redis://redis.cache:6379/0"}})
    with pytest.raises(Exception, match=r"sharedCache\.url"):
        render({"sharedCache": {"enabled": True, "existingSecret": "cache-keys"}})
    external = render({"sharedCache": {"enabled": True, "existingSecret": "k", "url": "rediss://r.cache:6380/0",
                                       "passwordKey": ""}})
    assert not [d for d in external if d["metadata"]["name"] == "sigwarden-redis"]
    redis = rendered_config(external)["verification"]["cache"]["redis"]
    assert redis["url"] == "rediss://r.cache:6380/0" and "passwordFile" not in redis


def test_a_generated_shared_cache_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    import base64

    values = {"sharedCache": {"enabled": True, "generateSecret": True, "redis": {"enabled": True}}}
    docs = render(values)
    (secret,) = [d for d in of_kind(docs, "Secret") if d["metadata"]["name"] == "sigwarden-shared-cache"]
    kubernetes_validate.validate(secret, KUBERNETES, strict=True)
    assert secret["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    hmac_key = base64.b64decode(secret["data"]["hmac-key"])
    assert len(hmac_key) == 64 and hmac_key.isalnum()
    assert len(base64.b64decode(secret["data"]["password"])) == 32
    # Not GitOps-stable, as documented: a second render draws new values.
    (again,) = [d for d in of_kind(render(values), "Secret") if d["metadata"]["name"] == "sigwarden-shared-cache"]
    assert again["data"]["hmac-key"] != secret["data"]["hmac-key"]
    # The provider and the bundled Redis read that Secret.
    volume = {"name": "shared-cache", "secret": {"secretName": "sigwarden-shared-cache"}}
    (deployment,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "sigwarden"]
    assert volume in deployment["spec"]["template"]["spec"]["volumes"]
    (redis,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "sigwarden-redis"]
    assert {"name": "auth", "secret": {"secretName": "sigwarden-shared-cache"}} in \
        redis["spec"]["template"]["spec"]["volumes"]
    assert rendered_config(docs)["verification"]["cache"]["redis"]["hmacKeyFile"] == \
        "/etc/sigwarden/shared-cache/hmac-key"

    # A named Secret wins and nothing is generated; naming neither is an error that says what to set.
    named = render({"sharedCache": {**values["sharedCache"], "existingSecret": "mine"}})
    assert not [d for d in of_kind(named, "Secret") if d["metadata"]["name"] == "sigwarden-shared-cache"]
    with pytest.raises(helm.errors.HelmError, match=r"sharedCache\.generateSecret"):
        render({"sharedCache": {"enabled": True, "redis": {"enabled": True}}})


def test_the_catch_all_store_keeps_wildcard_names_out_of_private_ranges(tmp_path: Path) -> None:
    """An image name is the Pod author's choice: through the chart's catch-all store it never reaches a
    private, Pod or Service address, unless the registry is named in egress.inClusterRegistries."""
    from provider.config import build_config
    from provider.stores.registry import outbound_for

    def policy(values: dict[str, Any]) -> Any:
        config = {"stores": rendered_config(render(values))["stores"]}  # the chart's TLS files are not here
        loaded = build_config(config, tmp_path / "config.yaml")
        return outbound_for(loaded.stores[0], Metrics(), loaded.verification).policy

    default = policy({})
    for address in ("10.96.0.10", "172.20.1.1", "192.168.1.5", "100.64.3.3", "fd12::1", "::ffff:10.0.0.1"):
        assert "wildcardDenyNetworks" in default.refusal("registry.attacker.example", 443, address), address
    assert default.refusal("registry.attacker.example", 443, "203.0.113.7") == ""
    named = policy({"egress": {"inClusterRegistries": ["registry.registry.svc.cluster.local:5000"]}})
    assert named.refusal("registry.registry.svc.cluster.local", 5000, "10.96.0.10") == ""
    assert "wildcardDenyNetworks" in named.refusal("registry.registry.svc.cluster.local", 5001, "10.96.0.10")
    assert "wildcardDenyNetworks" in named.refusal("other.svc.cluster.local", 5000, "10.96.0.10")
    # Signer-chosen URLs (CRL, OCSP) never inherit the name.
    assert "wildcardDenyNetworks" in named.for_signer_urls().refusal("registry.registry.svc.cluster.local", 5000,
                                                                     "10.96.0.10")
    opened = policy({"egress": {"wildcardDenyNetworks": []}})
    assert opened.refusal("registry.attacker.example", 443, "10.96.0.10") == ""
    # A store the operator writes with its own list keeps it.
    own = policy({"config": {"stores": [{"type": "registry", "match": ["*"], "wildcardDenyNetworks": ["10.0.0.0/8"]}]}})
    assert own.refusal("registry.attacker.example", 443, "192.168.1.5") == ""


@pytest.mark.parametrize(("egress", "field"), [
    ({"wildcardDenyNetworks": ["ten/8"]}, "wildcardDenyNetworks"),
    ({"inClusterRegistries": ["https://registry.svc/"]}, "inClusterRegistries"),
])
def test_egress_values_are_checked_by_the_schema(egress: dict[str, Any], field: str) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values["egress"].update(egress)
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.validate(values, schema)
    assert field in str(caught.value.absolute_path) or field in caught.value.message


def test_cloud_identity_annotations_and_secret_rbac() -> None:
    """Each cloud's identity webhook finds its annotation on the ServiceAccount (AKS also its pod label), and a
    store reading Secrets through the API gets `get` on exactly those objects and the API token mounted."""
    docs = render(CASES["clouds"])
    (account,) = [d for d in of_kind(docs, "ServiceAccount") if d["metadata"]["name"] == "sigwarden"]
    assert account["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": "0b4a6d5e-7d43-4b8a-9b60-2f3c1d6a1111",
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/sigwarden",
        "pod-identity.alibabacloud.com/role-name": "sigwarden",
        "iam.gke.io/gcp-service-account": "sigwarden@project.iam.gserviceaccount.com"}
    (deployment,) = of_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    (provider,) = [c for c in pod["spec"]["containers"] if c["name"] == "sigwarden"]
    assert {"name": "kube-api", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True} in provider["volumeMounts"]
    (role,) = [d for d in of_kind(docs, "Role") if d["metadata"]["name"] == "sigwarden-registry-credentials"]
    assert role["metadata"]["namespace"] == "ci"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["regcred"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "resourceNames": ["builder"], "verbs": ["get"]}]
    (binding,) = [d for d in of_kind(docs, "RoleBinding") if d["metadata"]["name"] == "sigwarden-registry-credentials"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sigwarden", "namespace": NAMESPACE}]
    # Without cloud identity or Secret-reading stores: no annotations, no label, no token in the provider.
    plain = render({})
    (account,) = [d for d in of_kind(plain, "ServiceAccount") if d["metadata"]["name"] == "sigwarden"]
    assert "annotations" not in account["metadata"]
    (deployment,) = of_kind(plain, "Deployment")
    assert "azure.workload.identity/use" not in deployment["spec"]["template"]["metadata"]["labels"]
    (provider,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "sigwarden"]
    assert all(m["name"] != "kube-api" for m in provider["volumeMounts"])


def test_values_schema_takes_alibaba_kms_trust_store_entries() -> None:
    # The loader's rules for {alibabaKms: …} (provider.config.reader), checked by the chart before any render.
    validator = jsonschema.Draft7Validator(json.loads((CHART / "values.schema.json").read_text()))

    def values(entry: dict[str, Any]) -> dict[str, Any]:
        return {"authorities": [{"name": "ack", "notation": {"trustStores": {"ca:ack": [entry]},
                                                             "trustPolicy": {"file": "trustpolicy.json"}}}]}

    good = {"alibabaKms": {"certificateId": "9a28de48-8d8b-484d-a766-dec4a1b2c3d4", "region": "cn-hangzhou"}}
    validator.validate(values(good))
    for bad in ({"alibabaKms": {"certificateId": "c"}}, {"alibabaKms": {"region": "cn-hangzhou"}},
                {"alibabaKms": {"certificateId": "c", "region": "evil.example/x"}},
                {**good, "keyVault": {"vaultURI": "https://v.vault.azure.net", "certificateName": "c"}}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(values(bad))
