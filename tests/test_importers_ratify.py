"""`sigwarden import ratify`: the vendored Ratify inputs, the report and `--check`, and the imported config at work —
real notation and cosign signatures in an OCI layout, and the shipped Rego templates scoping namespaced verifiers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from provider.cli import main
from provider.config import ConfigError, load_config
from provider.config.placeholders import PREFIX, find_placeholders
from provider.devkit import cosign, notation
from provider.devkit.kube import deployment
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.importers.ratify import convert
from provider.policy.external import EngineExternalData
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from tests.helpers import VECTORS, write_yaml

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ROOT / "tests/migration/ratify"
TEMPLATES = ROOT / "constraints/templates"
IMAGE = "registry.example/prod/app"


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fill(config: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """Replace each TODO placeholder with the answer whose key its instruction mentions (every one must match)."""
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value.startswith(PREFIX):
            matches = [answer for key, answer in answers.items() if key in value]
            assert matches, f"no answer for {value}"
            return matches[0]
        return value
    return walk(config)


# --- the vendored inputs, the report, --check ---------------------------------------------------------------

def test_aks_image_integrity_config_imports_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = INPUTS / "aks-image-integrity.yaml"
    assert run("import", "ratify", "--check", str(source), capsys=capsys)[0] == 0
    code, out, _ = run("import", "ratify", "-o", str(tmp_path / "out"), str(source), capsys=capsys)
    assert code == 0 and out.endswith("needing attention: 0\n")
    config = yaml.safe_load((tmp_path / "out/config.yaml").read_text())
    (authority,) = config["authorities"]
    assert authority["name"] == "verifier-notary-inline"
    assert authority["notation"]["trustStores"] == {"ca:certs": ["certs/certstore-inline.pem"]}
    assert authority["notation"]["trustPolicy"]["inline"]["trustPolicies"][0]["trustStores"] == ["ca:certs"]
    documented = yaml.safe_load_all(source.read_text())
    assert (tmp_path / "out/certs/certstore-inline.pem").read_text() == next(documented)["spec"]["parameters"]["value"]
    assert run("config", "check", "--for", "verify", str(tmp_path / "out/config.yaml"), capsys=capsys)[0] == 0
    (constraint,) = yaml.safe_load_all((tmp_path / "out/kubernetes.yaml").read_text())
    assert constraint["kind"] == "K8sSignedImages" and constraint["metadata"]["name"] == "ratify-constraint"
    assert constraint["spec"]["parameters"] == {"authorities": ["verifier-notary-inline"]}


def test_every_v1beta1_shape_is_reported_and_check_exits_1(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = run("import", "ratify", "--check", str(INPUTS / "ratify-v1beta1-shapes.yaml"), capsys=capsys)
    assert code == 1
    expected = [
        "!! Verifier verifier-sbom: spec.name sbom\n     -> not converted: the sbom verifier checks SBOM contents",
        "ok KeyManagementProvider kmp-akv: spec.parameters.certificates signing-cert\n     -> trust store entry "
        "keyVault {'vaultURI': 'https://example-vault.vault.azure.net', 'certificateName': 'signing-cert'}",
        "ok KeyManagementProvider kmp-akv: spec.parameters.clientID\n     -> the pod's Azure workload identity: chart "
        "value cloudIdentity.azure.clientId 00000000-0000-0000-0000-000000000000",
        "!! Store store-oras-acr: spec.parameters.authProvider\n     -> alibabacloudAcrBasic: the input names no "
        "alibaba registry host exactly",
        "{'provider': 'alibaba', 'instanceId': 'cri-ccccccccc', 'instances': {'name1': 'cri-aaaaaaaaaaaa'}}",
        "ok Store store-oras: spec.parameters.authProvider\n     -> auth.kubernetesSecrets [{'namespace': "
        "'gatekeeper-system', 'name': 'ratify-dockerconfig'}]",
        "!! NamespacedVerifier team-a/verifier-notation-team-a: spec.parameters.trustPolicyDoc\n     -> copied "
        "verbatim, but notation rejects it and so will `config check`: oci trust policy: trust policy statement "
            "\"team-a\" has "
        "trusted identity",
        "trustPolicies[keyless].keyless\n     -> TODO in the config: path of a Sigstore trusted_root.json",
        "!! Policy ratify-policy: spec.parameters.artifactVerificationPolicies.default: all\n     -> not reproduced "
        "exactly",
        "ok Namespaced verifiers of team-a\n     -> K8sSignedImages ratify-constraint-team-a: only namespace team-a, "
        "authorities ['verifier-notation-team-a'] (left out of the cluster-wide constraint)",
    ]
    for line in expected:
        assert line in report
    # Written out, the placeholders stop `config check` with the instruction.
    assert run("import", "ratify", "-o", str(tmp_path), str(INPUTS / "ratify-v1beta1-shapes.yaml"),
               capsys=capsys)[0] == 0
    code, _, err = run("config", "check", "--for", "verify", str(tmp_path / "config.yaml"), capsys=capsys)
    assert code == 2
    assert "placeholder left by `sigwarden import`: fill in path of a PEM file with the CA certificate(s) of " \
           "KeyManagementProvider kmp-notation-ca" in err


def test_v1alpha1_lists_directories_and_unknown_things_are_reported_not_fatal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    group = "config.ratify.deislabs.io"
    items = [
        {"apiVersion": f"{group}/v1alpha1", "kind": "Verifier", "metadata": {"name": "vuln"},
         "spec": {"name": "vulnerabilityreport", "artifactTypes": "application/sarif+json"}},
        {"apiVersion": f"{group}/v1alpha1", "kind": "Verifier", "metadata": {"name": "licences"},
         "spec": {"name": "licensechecker"}},
        {"apiVersion": f"{group}/v1alpha1", "kind": "Policy", "metadata": {"name": "ratify-policy"},
         "spec": {"type": "rego-policy", "parameters": {"policy": "package ratify.policy"}}},
        {"apiVersion": f"{group}/v1alpha1", "kind": "Store", "metadata": {"name": "s"},
         "spec": {"name": "oras", "parameters": {"useHttp": True, "cosignEnabled": True}}},
        {"apiVersion": f"{group}/v2", "kind": "Verifier", "metadata": {"name": "future"}, "spec": {}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated"}},
    ]
    (tmp_path / "dump").mkdir()
    write_yaml(tmp_path / "dump/list.yaml", {"apiVersion": "v1", "kind": "List", "items": items})
    code, report, _ = run("import", "ratify", "--check", str(tmp_path / "dump"), capsys=capsys)
    assert code == 1
    assert "!! Verifier vuln: spec.name vulnerabilityreport\n     -> not converted: the vulnerabilityreport verifier " \
           "checks vulnerability scan reports" in report
    assert "!! Verifier licences: spec.name licensechecker" in report
    assert "!! Policy ratify-policy: spec.parameters.policy\n     -> not converted: Rego over Ratify's verifier " \
           "reports" in report
    assert "!! Store s: spec.parameters.useHttp\n     -> TODO in the config: the registry hosts to reach over " \
           "plain HTTP" in report
    assert "!! Verifier future\n     -> Ratify API version v2 is not supported (v1beta1, v1alpha1), skipped" in report
    assert "!! ConfigMap unrelated\n     -> apiVersion 'v1' is not a Ratify resource, skipped" in report
    assert "ok Store s: spec.parameters.cosignEnabled" in report
    # Nothing converted to trust: no constraint, so nothing is admitted by an empty authority list.
    conversion = convert([i for i in items])
    assert conversion.kubernetes == [] and conversion.authority_names() == []


def test_ratify_provider_is_written_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run("import", "ratify", "--ratify-provider", "-o", str(tmp_path),
                     str(INPUTS / "aks-image-integrity.yaml"), capsys=capsys)
    assert code == 0
    objects = list(yaml.safe_load_all((tmp_path / "kubernetes.yaml").read_text()))
    provider = objects[-1]
    assert provider["kind"] == "Provider" and provider["metadata"]["name"] == "ratify-provider"
    assert provider["spec"]["url"].endswith("/ratify/gatekeeper/v1/verify")
    # Certificates are files: printing everything to stdout is refused with the fix.
    code, _, err = run("import", "ratify", str(INPUTS / "aks-image-integrity.yaml"), capsys=capsys)
    assert code == 2 and "pass --output-dir DIR" in err


# --- the imported config at work --------------------------------------------------------------------------

def signed_layout(tmp_path: Path, signers: dict[str, notation.SigningIdentity]) -> dict[str, str]:
    """One image per tag in an OCI layout for registry.example/prod/app, each notation-signed by its identity."""
    writer = LayoutWriter(tmp_path / "layouts/registry.example", "prod/app")
    for tag, identity in signers.items():
        image = writer.add_image(tag, f"app {tag}".encode())
        notation.attach(writer, image, notation.sign(notation.target_of(image), identity))
    return {tag: f"{IMAGE}:{tag}" for tag in signers}


def with_layout_store(config_path: Path, tmp_path: Path) -> Path:
    """The test's registry is an OCI layout: put it in front of the imported stores."""
    config = yaml.safe_load(config_path.read_text())
    config["stores"] = [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["registry.example/*"]},
                        *config.get("stores", [])]
    return write_yaml(config_path.parent / "with-layout.yaml", config)


def test_aks_config_verifies_a_notation_signature_and_refuses_another_ca(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release = notation.identity_with_intermediate("ec-256")
    stranger = notation.identity_with_intermediate("ec-256")
    documented = (INPUTS / "aks-image-integrity.yaml").read_text()
    sample_ca = next(yaml.safe_load_all(documented))["spec"]["parameters"]["value"]
    ours = "\n".join("      " + line for line in release.root_pem.decode().strip().splitlines()) + "\n"
    theirs = "\n".join("      " + line for line in sample_ca.strip().splitlines()) + "\n"
    assert theirs in documented
    source = tmp_path / "aks.yaml"
    source.write_text(documented.replace(theirs, ours))
    assert run("import", "ratify", "--enforcement-action", "deny", "-o", str(tmp_path / "out"), str(source),
               capsys=capsys)[0] == 0
    images = signed_layout(tmp_path, {"v1": release, "v2": stranger})
    engine = Engine(load_config(with_layout_store(tmp_path / "out/config.yaml", tmp_path)))
    try:
        good, bad = (item.value for item in engine.verify([images["v1"], images["v2"]], "t"))
        policies = PolicySet.from_paths([TEMPLATES, tmp_path / "out/kubernetes.yaml"], EngineExternalData(engine))
        admitted = admit(policies, deployment("app", images["v1"], "prod"))
        refused = admit(policies, deployment("app", images["v2"], "prod"))
    finally:
        engine.shutdown()
    assert good["verified"] is True and good["authorities"] == ["verifier-notary-inline"]
    assert good["signatures"][0]["format"] == "notation"
    assert bad["verified"] is False and bad["authorities"] == []
    assert "signature is not produced by a trusted signer" in bad["signatures"][0]["reason"]
    assert admitted.allowed, admitted.kubectl()
    assert not refused.allowed
    assert f"[ratify-constraint] image {images['v2']} is not attested" in refused.kubectl()


def shapes_with_test_material(tmp_path: Path, cluster_ca: bytes, team_ca: bytes, cosign_key: bytes) -> Path:
    """The v1beta1 shapes with the test's PEMs for REPLACE-ME, and team-a's fixes the report asked for."""
    documents = list(yaml.safe_load_all((INPUTS / "ratify-v1beta1-shapes.yaml").read_text()))
    by_name = {d["metadata"]["name"]: d for d in documents}
    by_name["kmp-notation-ca"]["spec"]["parameters"]["value"] = cluster_ca.decode()
    by_name["kmp-cosign-key"]["spec"]["parameters"]["value"] = cosign_key.decode()
    team_a_ca = {"apiVersion": "config.ratify.deislabs.io/v1beta1", "kind": "NamespacedKeyManagementProvider",
                 "metadata": {"name": "kmp-team-a-ca", "namespace": "team-a"},
                 "spec": {"type": "inline", "parameters": {"contentType": "certificate", "value": team_ca.decode()}}}
    team_a = by_name["verifier-notation-team-a"]["spec"]["parameters"]
    team_a["verificationCertStores"]["ca"]["team-a-certs"] = ["kmp-team-a-ca"]
    # notation requires C, ST and O in an x509.subject identity; the report said so.
    team_a["trustPolicyDoc"]["trustPolicies"][0]["trustedIdentities"] = ["x509.subject: C=US, ST=WA, O=Acme, CN=team-a"]
    path = tmp_path / "ratify.yaml"
    path.write_text(yaml.safe_dump_all([team_a_ca, *documents], sort_keys=False))
    return path


def test_namespaced_verifier_admits_only_in_its_namespace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = notation.identity_with_intermediate("ec-256")
    team_a = notation.identity_with_intermediate("ec-256", leaf=notation.CertSpec("team-a"))
    cosign_key = ec.generate_private_key(ec.SECP256R1())
    source = shapes_with_test_material(tmp_path, cluster.root_pem, team_a.root_pem, cosign.public_pem(cosign_key))
    out = tmp_path / "out"
    assert run("import", "ratify", "--enforcement-action", "deny", "-o", str(out), str(source), capsys=capsys)[0] == 0
    imported = yaml.safe_load((out / "config.yaml").read_text())
    with pytest.raises(ConfigError, match="placeholder left by `sigwarden import`"):
        load_config(out / "config.yaml")
    docker_config = tmp_path / "docker-config.json"
    docker_config.write_text('{"auths": {}}')
    (tmp_path / "akv.pem").write_bytes(cluster.root_pem)
    filled = fill(imported, {
        "kmp-akv": str(tmp_path / "akv.pem"),
        "trusted_root.json": str(VECTORS / "cosign/trusted_root_pgi.json"),
        ".dockerconfigjson": str(docker_config),
        "docker config with a registry token": str(docker_config),
        "registry hosts these credentials are for": "acr-registry.cn-hangzhou.aliyuncs.com/*",
    })
    assert list(find_placeholders(filled)) == []
    write_yaml(out / "config.yaml", filled)
    code, _, err = run("config", "check", "--for", "verify", str(out / "config.yaml"), capsys=capsys)
    assert code == 0, err
    # Cluster-signed, team-a-signed, and a cosign-signed image in the cosign verifier's scope.
    images = signed_layout(tmp_path, {"cluster": cluster, "team-a": team_a})
    writer = LayoutWriter(tmp_path / "layouts/registry.example", "cosign/builder")
    digest = writer.add_image("v1", b"builder")["digest"]
    cosign.sign_image(writer, digest, "registry.example/cosign/builder", cosign_key)
    engine = Engine(load_config(with_layout_store(out / "config.yaml", tmp_path)))
    try:
        keys = ["registry.example/cosign/builder:v1", images["team-a"]]
        builder, team_facts = (item.value for item in engine.verify(keys, "t"))
        policies = PolicySet.from_paths([TEMPLATES, out / "kubernetes.yaml"], EngineExternalData(engine))
        answers = {(tag, namespace): admit(policies, deployment("app", images[tag], namespace))
                   for tag in images for namespace in ("team-a", "team-b")}
    finally:
        engine.shutdown()
    assert builder["verified"] is True and builder["authorities"] == ["verifier-cosign-default"]
    assert answers[("cluster", "team-b")].allowed
    assert answers[("team-a", "team-a")].allowed
    refused = answers[("team-a", "team-b")]
    assert not refused.allowed
    assert (f"[ratify-constraint] image {images['team-a']} is not attested: not verified by any of "
            "verifier-cosign-default, verifier-cosign-keyless, verifier-notation (verifier-notation: signature is not "
            "produced by a trusted signer") in refused.kubectl()
    # team-a's authority did verify it: only the namespace keeps it from counting in team-b.
    assert team_facts["verified"] is True and team_facts["authorities"] == ["verifier-notation-team-a"]


def test_malformed_objects_and_the_key_vault_certificate_store_shape(tmp_path: Path) -> None:
    group = "config.ratify.deislabs.io/v1beta1"
    akv = {"apiVersion": group, "kind": "CertificateStore", "metadata": {"name": "certstore-akv"},
           "spec": {"provider": "azurekeyvault", "parameters": {
               "vaultURI": "https://vault.example/",
               "certificates": "array:\n  - |\n    certificateName: release-cert\n    certificateVersion: 1\n"}}}
    verifier = {"apiVersion": group, "kind": "Verifier", "metadata": {"name": "uses-akv"},
                "spec": {"name": "notation", "parameters": {
                    "verificationCertStores": {"certs": ["certstore-akv"]},
                    "trustPolicyDoc": {"version": "1.0", "trustPolicies": [{
                        "name": "p", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
                        "trustStores": ["ca:certs"], "trustedIdentities": ["*"]}]}}}}
    broken = [{"apiVersion": group, "kind": "Verifier", "metadata": {"name": "bad-params"},
               "spec": {"name": "notation", "parameters": ["not", "a", "mapping"]}},
              {"apiVersion": group, "kind": "Store", "metadata": {"name": "bad-store"}, "spec": "oras"}]
    conversion = convert([akv, verifier, *broken])
    (authority,) = conversion.config["authorities"]
    (placeholder,) = authority["notation"]["trustStores"]["ca:certs"]
    assert placeholder.startswith("TODO: path of a PEM file with release-cert of CertificateStore certstore-akv "
                                  "exported from azurekeyvault https://vault.example/")
    lines = {f.source: f.became for f in conversion.findings if f.attention}
    assert lines["Verifier bad-params"].startswith("malformed, skipped (AttributeError")
    assert lines["Store bad-store"].startswith("malformed, skipped")
    # The verifier whose certificate is a placeholder is still the only trust in the constraint, and the
    # config does not load until the certificate is there.
    assert conversion.kubernetes[0]["spec"]["parameters"]["authorities"] == ["uses-akv"]
    with pytest.raises(ConfigError, match="fill in path of a PEM file with release-cert"):
        load_config(write_yaml(tmp_path / "c.yaml", conversion.config))


def test_host_bound_cloud_stores_come_before_the_catch_all_store() -> None:
    """First match wins: a cloud store after the `*` store would never be used. The shapes file names no ACR EE
    host, so its alibaba store is flagged rather than written; k8Secrets becomes kubernetesSecrets."""
    documents = list(yaml.safe_load_all((INPUTS / "ratify-v1beta1-shapes.yaml").read_text()))
    stores = convert(documents).config["stores"]
    assert [s["match"] for s in stores] == [["*"]]
    assert stores[0]["auth"] == {"kubernetesSecrets": [{"namespace": "gatekeeper-system",
                                                        "name": "ratify-dockerconfig"}]}


def _store(auth: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "config.ratify.deislabs.io/v1beta1", "kind": "Store", "metadata": {"name": "oras"},
            "spec": {"name": "oras", "parameters": {"authProvider": auth}}}


def _verifier(scopes: list[str]) -> dict[str, Any]:
    return {"apiVersion": "config.ratify.deislabs.io/v1beta1", "kind": "Verifier", "metadata": {"name": "notation"},
            "spec": {"name": "notation", "parameters": {
                "verificationCertStores": {"certs": ["akv"]},
                "trustPolicyDoc": {"version": "1.0", "trustPolicies": [{
                    "name": "p", "registryScopes": scopes, "signatureVerification": {"level": "strict"},
                    "trustStores": ["ca:certs"], "trustedIdentities": ["*"]}]}}}}


AKV = {"apiVersion": "config.ratify.deislabs.io/v1beta1", "kind": "KeyManagementProvider", "metadata": {"name": "akv"},
       "spec": {"type": "azurekeyvault", "parameters": {
           "vaultURI": "https://myvault.vault.azure.net/", "clientID": "0b4a6d5e-7d43-4b8a-9b60-2f3c1d6a1111",
           "tenantID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
           "certificates": [{"name": "release-ca"}, {"name": "old-ca", "version": "0123abcd"}],
           "keys": [{"name": "cosign-key"}]}}}


@pytest.mark.parametrize(("auth", "scopes", "store"), [
    # Ratify's azureWorkloadIdentity with its default endpoints (wildcards): expanded to the hosts the input names.
    ({"name": "azureWorkloadIdentity", "clientID": "0b4a6d5e-7d43-4b8a-9b60-2f3c1d6a1111"},
     ["myacr.azurecr.io/app", "docker.io/library/nginx"],
     {"type": "registry", "match": ["myacr.azurecr.io/*"], "auth": {"cloud": {"provider": "azure"}}}),
    ({"name": "azureWorkloadIdentity", "endpoints": ["*.azurecr.io", "exact.azurecr.io"]},
     ["myacr.azurecr.io/app", "myacr.azurecr.io.evil.example/app"],
     {"type": "registry", "match": ["exact.azurecr.io/*", "myacr.azurecr.io/*"],
      "auth": {"cloud": {"provider": "azure"}}}),
    ({"name": "azureManagedIdentity"}, ["myacr.azurecr.io/app"],
     {"type": "registry", "match": ["myacr.azurecr.io/*"],
      "auth": {"cloud": {"provider": "azure", "nodeIdentity": True}}}),
    ({"name": "awsEcrBasic"}, ["123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app"],
     {"type": "registry", "match": ["123456789012.dkr.ecr.us-east-1.amazonaws.com/*"],
      "auth": {"cloud": {"provider": "aws"}}}),
    ({"name": "alibabacloudAcrBasic", "defaultInstanceId": "cri-default",
      "acrInstancesConfig": [{"instanceName": "myinstance", "instanceId": "cri-mine"}]},
     ["myinstance-registry.cn-hangzhou.cr.aliyuncs.com/team/app"],
     {"type": "registry", "match": ["myinstance-registry.cn-hangzhou.cr.aliyuncs.com/*"],
      "auth": {"cloud": {"provider": "alibaba", "instanceId": "cri-default",
                         "instances": {"myinstance": "cri-mine"}}}}),
])
def test_cloud_auth_providers_map_to_auth_cloud(tmp_path: Path, auth: dict[str, Any], scopes: list[str],
                                                store: dict[str, Any]) -> None:
    # Ratify's auth providers (pkg/common/oras/authprovider: azure, aws, alibabacloud): the same cloud identity,
    # bound to exact hosts, with no placeholder left.
    conversion = convert([_store(auth), AKV, _verifier(scopes)])
    assert conversion.config["stores"][0] == store
    assert conversion.config["stores"][1]["match"] == ["*"]
    assert "TODO" not in yaml.safe_dump(conversion.config)
    assert not [f for f in conversion.findings if "TODO" in f.became]


def test_azurekeyvault_key_management_provider_maps_to_key_vault_references() -> None:
    cosign_verifier = {"apiVersion": "config.ratify.deislabs.io/v1beta1", "kind": "Verifier",
                       "metadata": {"name": "cosign"}, "spec": {"name": "cosign", "parameters": {"trustPolicies": [
                           {"name": "default", "scopes": ["myacr.azurecr.io/*"], "keys": [{"provider": "akv"}],
                            "tLogVerify": False}]}}}
    conversion = convert([AKV, _verifier(["myacr.azurecr.io/app"]), cosign_verifier])
    notation_authority, cosign_authority = conversion.config["authorities"]
    assert notation_authority["notation"]["trustStores"] == {"ca:certs": [
        {"keyVault": {"vaultURI": "https://myvault.vault.azure.net", "certificateName": "release-ca"}},
        {"keyVault": {"vaultURI": "https://myvault.vault.azure.net", "certificateName": "old-ca",
                      "version": "0123abcd"}}]}
    assert cosign_authority["cosign"]["publicKeys"] == [{"kms": "azurekms://myvault.vault.azure.net/cosign-key"}]
    assert not [f for f in conversion.findings if "TODO" in f.became]


def test_k8secrets_maps_to_kubernetes_secrets() -> None:
    conversion = convert([_store({"name": "k8Secrets", "serviceAccountName": "ratify-puller",
                                  "secrets": [{"secretName": "regcred", "namespace": "ci"}]})])
    assert conversion.config["stores"] == [{"type": "registry", "match": ["*"], "auth": {"kubernetesSecrets": [
        {"namespace": "ci", "name": "regcred"},
        {"namespace": "gatekeeper-system", "serviceAccount": "ratify-puller"}]}}]
    assert not [f for f in conversion.findings if "TODO" in f.became]


@pytest.mark.parametrize(("auth", "named"), [
    ({"name": "gcpWorkloadIdentity"}, "the auth provider 'gcpWorkloadIdentity' is not one"),
    ({}, "no auth provider name is given; it must be one"),
])
def test_an_unknown_auth_provider_names_the_supported_ones(auth: dict[str, Any], named: str) -> None:
    # Ratify pkg/common/oras/authprovider registers dockerConfig, k8Secrets, azureWorkloadIdentity,
    # azureManagedIdentity, awsEcrBasic and alibabacloudAcrBasic; any other name gets no credentials here.
    conversion = convert([_store(auth)])
    (finding,) = [f for f in conversion.findings if f.source == "Store oras: spec.parameters.authProvider"]
    assert finding.attention
    assert finding.became == (f"{named} the import converts (dockerConfig, k8Secrets, azureWorkloadIdentity, "
                              "azureManagedIdentity, awsEcrBasic, alibabacloudAcrBasic), so this store gets no "
                              "credentials and pulls anonymously")
    assert "auth" not in conversion.config["stores"][0]
