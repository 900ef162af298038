"""The Helm chart, rendered by the real Helm engine (helm-python-sdk; no helm binary)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml
from cryptography import x509

from provider import catalog
from provider.config import load_config
from provider.devkit.pki import issue, make_ca
from tests.crds import constraint_schema, validate_object

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "sigwarden"
NAMESPACE = "sigwarden-system"
CA_BUNDLE = base64.b64encode(make_ca("operator CA").cert_pem).decode()

CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "cert-manager": {"certManager": {"enabled": True}, "tls": {"caBundle": CA_BUNDLE}},
    "existing-secret": {"tls": {"existingSecret": "my-tls", "caBundle": CA_BUNDLE}},
    "mtls-off": {"mtls": {"enabled": False}},
    "deny": {"policy": {"enforcementAction": "deny", "authorities": ["release"], "requireAll": True,
                        "exemptImages": ["registry.example/tools/*"], "namespaceOverrides": {"sandbox": "warn"}}},
    "scoped": {"policy": {"enforcementAction": "scoped", "digestPinning": {"enabled": True}}},
    "mutation": {"mutation": {"enabled": True}, "networkPolicy": {"enabled": True},
                 "autoscaling": {"enabled": True}, "serviceMonitor": {"enabled": True}},
    "full": {"authorities": [{"name": "release", "cosign": {"publicKeys": [
        {"file": "/etc/sigwarden/trust/inline/cosign.pub"}]}}],
             "trustMaterial": {"inline": {"cosign.pub": "PLACEHOLDER"}, "existingSecrets": ["notation-certs"]},
             "registryCredentials": {"existingSecret": "regcred"}, "mtls": {"clientNames": ["gk.example"]}},
}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = helm.Chart.load(str(CHART))
    chart.validate_schema(values)
    rendered = chart.render(values, name="sigwarden", namespace=NAMESPACE, is_install=True)
    return [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_lint_is_clean() -> None:
    report = helm.lint(str(CHART), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_gatekeeper_objects_fit_the_crds(case: str) -> None:
    docs = render(CASES[case])
    templates = {t["spec"]["crd"]["spec"]["names"]["kind"]: t for t in of_kind(docs, "ConstraintTemplate")}
    for doc in docs:
        group = doc["apiVersion"].split("/")[0]
        if group in ("externaldata.gatekeeper.sh", "templates.gatekeeper.sh", "mutations.gatekeeper.sh"):
            validate_object(doc)
        elif group == "constraints.gatekeeper.sh":
            jsonschema.validate(doc, constraint_schema(templates[doc["kind"]]))
    assert len(of_kind(docs, "Provider")) == 2


@pytest.mark.parametrize("case", sorted(CASES))
def test_pod_security_settings(case: str) -> None:
    (deployment,) = of_kind(render(CASES[case]), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["livenessProbe"]["httpGet"]["port"] == "metrics"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["limits"]["memory"]
        writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
        assert [m["mountPath"] for m in writable] == ["/tmp"]
    emptydirs = [v for v in pod["volumes"] if "emptyDir" in v]
    assert [v["name"] for v in emptydirs] == ["tmp"]
    assert pod["topologySpreadConstraints"]
    if case != "mutation":
        assert deployment["spec"]["replicas"] == 2
    assert of_kind(render(CASES[case]), "PodDisruptionBudget")


def test_provider_ca_bundle_signed_the_server_certificate() -> None:
    docs = render({})
    (secret,) = [d for d in of_kind(docs, "Secret") if d["type"] == "kubernetes.io/tls"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert f"sigwarden.{NAMESPACE}" in sans and f"sigwarden.{NAMESPACE}.svc" in sans
    for provider in of_kind(docs, "Provider"):
        assert base64.b64decode(provider["spec"]["caBundle"]) == base64.b64decode(secret["data"]["ca.crt"])
        host = provider["spec"]["url"].split("//", 1)[1].split(":", 1)[0]
        assert host in sans
        assert provider["spec"]["timeout"] == 3
    assert {p["spec"]["url"].rsplit("/", 1)[1] for p in of_kind(docs, "Provider")} == {"verify", "mutate"}


def test_cert_manager_and_existing_secret_use_the_given_ca_bundle() -> None:
    for case in ("cert-manager", "existing-secret"):
        docs = render(CASES[case])
        assert not [d for d in of_kind(docs, "Secret") if d["type"] == "kubernetes.io/tls"]
        assert {p["spec"]["caBundle"] for p in of_kind(docs, "Provider")} == {CA_BUNDLE}
    certificates = of_kind(render(CASES["cert-manager"]), "Certificate")
    serving = next(c for c in certificates if not c["spec"].get("isCA"))
    assert f"sigwarden.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
    with pytest.raises(helm.errors.HelmError, match=r"tls\.caBundle is needed"):
        render({"tls": {"existingSecret": "my-tls"}})


def rendered_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (configmap,) = of_kind(docs, "ConfigMap")
    return yaml.safe_load(configmap["data"]["config.yaml"])


@pytest.mark.parametrize("case", ["default", "mtls-off", "full"])
def test_rendered_config_passes_config_check(case: str, tmp_path: Path) -> None:
    docs = render(CASES[case])
    text = json.dumps(rendered_config(docs))
    # Lay the mounted files out under tmp_path, as the pod would see them under /etc/sigwarden.
    ca = make_ca("gatekeeper")
    server_ca = make_ca("server")
    leaf = issue(server_ca, "sigwarden", ("sigwarden.sigwarden-system.svc",), server=True)
    files = {"tls/tls.crt": leaf.cert_pem, "tls/tls.key": leaf.key_pem, "client-ca/ca.crt": ca.cert_pem,
             "regcred/.dockerconfigjson": b'{"auths": {}}', "trust/inline/cosign.pub": b""}
    from provider.devkit.cosign import public_pem

    files["trust/inline/cosign.pub"] = public_pem(leaf.key)
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(text.replace("/etc/sigwarden/", f"{tmp_path}/"))
    config = load_config(config_path)
    assert config.server.request_deadline == 2.5
    assert (config.server.tls.client_ca is not None) is (case != "mtls-off")
    if case == "full":
        assert config.stores[0].auth.docker_config == tmp_path / "regcred/.dockerconfigjson"
        assert config.server.tls.client_names == ("gk.example",)
        assert [a.name for a in config.authorities] == ["release"]


def test_rendered_templates_equal_the_project_templates() -> None:
    rendered = {t["metadata"]["name"]: t for t in of_kind(render({}), "ConstraintTemplate")}
    project = {p.parent.name: yaml.safe_load(p.read_text()) for p in catalog.template_files()}
    assert rendered == project


def test_policy_values_drive_the_constraints() -> None:
    docs = render(CASES["deny"])
    constraints = {c["metadata"]["name"]: c for c in of_kind(docs, "K8sSignedImages")}
    main, sandbox = constraints["sigwarden-signed-images"], constraints["sigwarden-signed-images-warn"]
    assert main["spec"]["enforcementAction"] == "deny"
    assert main["spec"]["parameters"]["authorities"] == ["release"] and main["spec"]["parameters"]["requireAll"]
    assert "sandbox" in main["spec"]["match"]["excludedNamespaces"]
    assert NAMESPACE in main["spec"]["match"]["excludedNamespaces"]
    assert sandbox["spec"]["enforcementAction"] == "warn" and sandbox["spec"]["match"]["namespaces"] == ["sandbox"]
    default = of_kind(render({}), "K8sSignedImages")
    assert [c["spec"]["enforcementAction"] for c in default] == ["dryrun"]
    scoped = of_kind(render(CASES["scoped"]), "K8sSignedImages")[0]["spec"]
    assert scoped["enforcementAction"] == "scoped" and len(scoped["scopedEnforcementActions"]) == 2
    assert of_kind(render(CASES["scoped"]), "K8sDigestPinnedImages")
    assignments = of_kind(render(CASES["mutation"]), "Assign")
    assert {a["spec"]["location"] for a in assignments} == {f"spec.{f}[name:*].image" for f in
                                                            ("containers", "initContainers", "ephemeralContainers")}


def test_values_schema_rejects_bad_values() -> None:
    chart = helm.Chart.load(str(CHART))
    for bad in ({"policy": {"enforcementAction": "block"}}, {"replicaCount": "two"},
                {"provider": {"timeout": 30}}, {"policy": {"namespaceOverrides": {"x": "allow"}}}):
        with pytest.raises(helm.errors.HelmError):
            chart.validate_schema(bad)


def test_network_policy_admits_only_gatekeeper_to_the_provider_port() -> None:
    (policy,) = of_kind(render(CASES["mutation"]), "NetworkPolicy")
    provider_rule, metrics_rule = policy["spec"]["ingress"]
    assert provider_rule["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "gatekeeper-system"}}}]
    assert provider_rule["ports"] == [{"port": 8443, "protocol": "TCP"}]
    assert "from" not in metrics_rule and metrics_rule["ports"] == [{"port": 9090, "protocol": "TCP"}]
