"""The in-pod Kubernetes jobs (provider/kube) against a real HTTPS API stand-in on loopback.

The stand-in enforces the RBAC rules the chart renders, so these tests also show those rules are enough.
There is no cluster here: Gatekeeper itself (reading the Providers, serving constraint kinds) is played by the
test putting objects into the stand-in.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from cryptography import x509

from provider.devkit.pki import issue, make_ca
from provider.devkit.process import ProviderProcess
from provider.kube import certs
from provider.kube.__main__ import main
from provider.kube.client import KubeClient, KubeError, provider_path, secret_path, webhook_configuration_path
from provider.kube.constraints import ConstraintError, deliver
from provider.kube.tlssync import ClientCA, ServingCertificate, SyncError
from tests.helpers import ProviderPKI, free_port, provider_request, write_yaml
from tests.kubeapi import FakeKubeAPI, KubeAPIServer
from tests.test_helm import PLACEHOLDER, render

NAMESPACE = "sigwarden-system"
HOSTS = ("sigwarden.sigwarden-system", "sigwarden.sigwarden-system.svc")
WEBHOOK = "gatekeeper-validating-webhook-configuration"
SECRET = secret_path(NAMESPACE, "sigwarden-tls")


def chart_rules(values: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """The RBAC rules the chart grants the provider's service account."""
    docs = render(values)
    rules: list[tuple[str | None, dict[str, Any]]] = []
    for kind in ("Role", "ClusterRole"):
        for role in (d for d in docs if d["kind"] == kind and d["metadata"]["name"] == "sigwarden-certs"):
            rules += [(role["metadata"].get("namespace"), rule) for rule in role["rules"]]
    return rules


def gatekeeper_objects(api: FakeKubeAPI, ca_pem: bytes) -> None:
    for name in ("sigwarden", "sigwarden-mutation"):
        api.put(provider_path(name), {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "Provider",
                                      "metadata": {"name": name}, "spec": {"caBundle": PLACEHOLDER, "timeout": 3}})
    encoded = base64.b64encode(ca_pem).decode()
    api.put(webhook_configuration_path(WEBHOOK), {"kind": "ValidatingWebhookConfiguration",
                                                  "metadata": {"name": WEBHOOK}, "webhooks": [
        {"name": "validation.gatekeeper.sh", "clientConfig": {"caBundle": encoded}},
        {"name": "check-ignore-label.gatekeeper.sh", "clientConfig": {"caBundle": encoded}}]})


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeAPIServer]:
    api = FakeKubeAPI(tmp_path / "apiserver", rules=chart_rules({}))
    server = api.start()
    yield server
    server.stop()


def client_for(server: KubeAPIServer) -> KubeClient:
    return KubeClient(server.url, server.account_dir / "token", server.account_dir / "ca.crt")


def serving(server: KubeAPIServer, directory: Path) -> ServingCertificate:
    return ServingCertificate(client_for(server), NAMESPACE, "sigwarden-tls", HOSTS, directory,
                              ("sigwarden", "sigwarden-mutation"))


def test_first_replica_creates_the_certificate_and_patches_the_providers(kube: KubeAPIServer, tmp_path: Path) -> None:
    gatekeeper_objects(kube.api, make_ca("gatekeeper").cert_pem)
    material = serving(kube, tmp_path / "a").sync()
    leaf = x509.load_pem_x509_certificate((tmp_path / "a/tls.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((tmp_path / "a/ca.crt").read_bytes())
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == set(HOSTS)
    assert (tmp_path / "a/tls.key").stat().st_mode & 0o077 == 0
    for name in ("sigwarden", "sigwarden-mutation"):
        assert kube.api.objects[provider_path(name)]["spec"]["caBundle"] == material.ca_bundle_b64
        assert kube.api.objects[provider_path(name)]["spec"]["timeout"] == 3  # only caBundle is touched
    stored = kube.api.objects[SECRET]["data"]
    assert base64.b64decode(stored["tls.crt"]) == (tmp_path / "a/tls.crt").read_bytes()

    # Files are published together: links into one versioned directory, swapped at once.
    assert all((tmp_path / "a" / n).is_symlink() for n in ("tls.crt", "tls.key", "ca.crt"))
    (version,) = (tmp_path / "a").glob("..version-*")
    assert (tmp_path / "a/..data").resolve() == version.resolve()

    # A second replica serves the same certificate: no new Secret, no Provider patch.
    kube.api.log.clear()
    serving(kube, tmp_path / "b").sync()
    assert (tmp_path / "b/tls.crt").read_bytes() == (tmp_path / "a/tls.crt").read_bytes()
    assert [m for m, _ in kube.api.log if m != "GET"] == []


def _store(api: FakeKubeAPI, material: certs.ServingMaterial) -> None:
    api.put(SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sigwarden-tls",
                                                                         "namespace": NAMESPACE},
                     "data": material.secret_data()})


def test_a_leaf_near_expiry_is_renewed_from_the_same_ca(kube: KubeAPIServer, tmp_path: Path) -> None:
    gatekeeper_objects(kube.api, make_ca("gatekeeper").cert_pem)
    ca = make_ca("sigwarden serving CA", days=3650)
    expiring = issue(ca, HOSTS[0], HOSTS, server=True, days=5)
    _store(kube.api, certs.ServingMaterial(ca, expiring, ca.cert_pem))
    serving(kube, tmp_path).sync()
    before = (tmp_path / "tls.crt").read_bytes()
    assert x509.load_pem_x509_certificate(before).serial_number != expiring.cert.serial_number
    _store(kube.api, certs.ServingMaterial(ca, expiring, ca.cert_pem))
    material = serving(kube, tmp_path).sync()
    assert material.ca.cert == ca.cert and material.ca_bundle == ca.cert_pem
    # The new pair replaced the old one on disk, and only one version directory is left.
    assert len(list(tmp_path.glob("..version-*"))) == 1
    assert (tmp_path / "tls.crt").read_bytes() == material.leaf.cert_pem != before
    assert (tmp_path / "tls.key").read_bytes() == material.leaf.key_pem
    assert material.leaf.cert.serial_number != expiring.cert.serial_number
    assert (material.leaf.cert.not_valid_after_utc - expiring.cert.not_valid_after_utc).days >= 80
    assert base64.b64decode(kube.api.objects[SECRET]["data"]["tls.crt"]) == material.leaf.cert_pem
    assert kube.api.objects[provider_path("sigwarden")]["spec"]["caBundle"] == base64.b64encode(ca.cert_pem).decode()


def test_a_ca_near_expiry_rolls_over_keeping_the_old_ca_trusted(kube: KubeAPIServer, tmp_path: Path) -> None:
    gatekeeper_objects(kube.api, make_ca("gatekeeper").cert_pem)
    old = make_ca("sigwarden serving CA", days=100)
    _store(kube.api, certs.ServingMaterial(old, issue(old, HOSTS[0], HOSTS, server=True, days=60), old.cert_pem))
    material = serving(kube, tmp_path).sync()
    bundle = x509.load_pem_x509_certificates(material.ca_bundle)
    assert bundle[0] == material.ca.cert and old.cert in bundle and material.ca.cert != old.cert
    material.leaf.cert.verify_directly_issued_by(material.ca.cert)
    provider_bundle = base64.b64decode(kube.api.objects[provider_path("sigwarden")]["spec"]["caBundle"])
    assert provider_bundle == material.ca_bundle
    # Read back, the rolled-over Secret is accepted as it is.
    assert certs.renewal_reason(certs.from_secret(kube.api.objects[SECRET]["data"]), HOSTS) == ""


def test_a_broken_secret_is_replaced_and_a_renamed_service_gets_a_new_leaf(kube: KubeAPIServer,
                                                                            tmp_path: Path) -> None:
    kube.api.put(SECRET, {"kind": "Secret", "metadata": {"name": "sigwarden-tls"}, "data": {"tls.crt": "eA=="}})
    first = serving(kube, tmp_path).sync()
    assert certs.renewal_reason(first, HOSTS) == ""
    moved = ("sigwarden.other", *HOSTS)
    assert "does not name sigwarden.other" in certs.renewal_reason(first, moved)


def test_the_client_ca_follows_gatekeepers_webhook_configuration(kube: KubeAPIServer, tmp_path: Path) -> None:
    client = client_for(kube)
    target = tmp_path / "client-ca" / "ca.crt"
    with pytest.raises(SyncError, match="not found: install Gatekeeper first"):
        ClientCA(client, WEBHOOK, target).sync()
    kube.api.put(webhook_configuration_path(WEBHOOK), {"metadata": {"name": WEBHOOK}, "webhooks": [
        {"name": "validation.gatekeeper.sh", "clientConfig": {}}]})
    with pytest.raises(SyncError, match="has no caBundle yet"):
        ClientCA(client, WEBHOOK, target).sync()
    assert not target.exists()
    first, rotated = make_ca("gatekeeper 1"), make_ca("gatekeeper 2")
    gatekeeper_objects(kube.api, first.cert_pem)
    assert ClientCA(client, WEBHOOK, target).sync() is True
    assert target.read_bytes() == first.cert_pem  # two webhooks, one CA: written once
    assert ClientCA(client, WEBHOOK, target).sync() is False
    gatekeeper_objects(kube.api, rotated.cert_pem)
    assert ClientCA(client, WEBHOOK, target).sync() is True
    assert target.read_bytes() == rotated.cert_pem
    webhooks = kube.api.objects[webhook_configuration_path(WEBHOOK)]["webhooks"]
    webhooks[0]["clientConfig"]["caBundle"] = base64.b64encode(b"not a certificate").decode()
    with pytest.raises(SyncError, match="not base64 PEM certificates"):
        ClientCA(client, WEBHOOK, target).sync()
    assert target.read_bytes() == rotated.cert_pem  # a broken bundle never replaces a good file


def test_rbac_from_the_chart_allows_only_the_named_objects(kube: KubeAPIServer) -> None:
    client = client_for(kube)
    gatekeeper_objects(kube.api, make_ca("gatekeeper").cert_pem)
    kube.api.put(secret_path("gatekeeper-system", "gatekeeper-webhook-server-cert"), {"data": {}})
    kube.api.put(provider_path("someone-else"), {"metadata": {"name": "someone-else"}, "spec": {}})
    for path in (secret_path("gatekeeper-system", "gatekeeper-webhook-server-cert"), provider_path("someone-else"),
                 webhook_configuration_path("another-webhook"), secret_path(NAMESPACE, "other-secret")):
        with pytest.raises(KubeError) as raised:
            client.get(path)
        assert raised.value.status == 403, path
    with pytest.raises(KubeError, match="HTTP 403"):
        client.merge_patch(provider_path("someone-else"), {"spec": {"caBundle": "eA=="}})
    wrong = kube.account_dir.parent / "wrong-token"
    wrong.write_text("not-the-token")
    bad_token = KubeClient(kube.url, wrong, kube.account_dir / "ca.crt")
    with pytest.raises(KubeError, match="HTTP 401"):
        bad_token.get(provider_path("sigwarden"))


def test_certs_command_once_exits_when_everything_is_in_place(kube: KubeAPIServer, tmp_path: Path) -> None:
    gatekeeper_objects(kube.api, make_ca("gatekeeper").cert_pem)
    args = ["--server", kube.url, "--service-account-dir", str(kube.account_dir), "certs", "--namespace", NAMESPACE,
            "--secret", "sigwarden-tls", "--dir", str(tmp_path / "tls"), "--provider", "sigwarden",
            *[a for h in HOSTS for a in ("--host", h)], "--client-ca-webhook", WEBHOOK,
            "--client-ca-file", str(tmp_path / "client-ca/ca.crt"), "--once", "--interval", "0.1"]
    assert main(args) == 0
    assert {p.name for p in (tmp_path / "tls").iterdir() if not p.name.startswith("..")} == {
        "tls.crt", "tls.key", "ca.crt"}
    assert (tmp_path / "client-ca/ca.crt").exists()


def _constraint(name: str, release: str = "sigwarden", kind: str = "K8sSignedImages") -> dict[str, Any]:
    return {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
            "metadata": {"name": name, "labels": {"app.kubernetes.io/instance": release}},
            "spec": {"enforcementAction": "dryrun"}}


@pytest.fixture
def gatekeeper_api(tmp_path: Path) -> Iterator[KubeAPIServer]:
    docs = render({})
    (role,) = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "sigwarden-constraints"]
    api = FakeKubeAPI(tmp_path / "apiserver", rules=[(None, rule) for rule in role["rules"]])
    server = api.start()
    yield server
    server.stop()


def test_constraints_wait_for_their_kinds_then_apply_and_prune(gatekeeper_api: KubeAPIServer) -> None:
    api, client = gatekeeper_api.api, client_for(gatekeeper_api)
    documents = [_constraint("sigwarden-signed-images"), _constraint("sigwarden-signed-images-deny")]
    waits: list[float] = []
    with pytest.raises(ConstraintError, match="Gatekeeper does not serve K8sSignedImages"):
        deliver(client, documents, "sigwarden", {"K8sDigestPinnedImages"}, timeout=0, sleep=waits.append)

    def gatekeeper_catches_up(_seconds: float) -> None:
        waits.append(_seconds)
        api.constraint_kinds.update(K8sSignedImages="k8ssignedimages", K8sDigestPinnedImages="k8sdigestpinnedimages")

    done = deliver(client, documents, "sigwarden", {"K8sDigestPinnedImages"}, timeout=60, sleep=gatekeeper_catches_up)
    assert waits and done.applied == ["K8sSignedImages/sigwarden-signed-images",
                                      "K8sSignedImages/sigwarden-signed-images-deny"]
    base = "/apis/constraints.gatekeeper.sh/v1beta1"
    # Gatekeeper writes status; a later run with the same constraints leaves it (no delete and recreate).
    api.objects[f"{base}/k8ssignedimages/sigwarden-signed-images"]["status"] = {"totalViolations": 4}
    api.put(f"{base}/k8ssignedimages/other-team", _constraint("other-team", release="other"))
    api.put(f"{base}/k8sdigestpinnedimages/sigwarden-digest-pinned-images",
            _constraint("sigwarden-digest-pinned-images", kind="K8sDigestPinnedImages"))
    done = deliver(client, documents[:1], "sigwarden", {"K8sDigestPinnedImages"})
    assert sorted(done.deleted) == ["K8sDigestPinnedImages/sigwarden-digest-pinned-images",
                                    "K8sSignedImages/sigwarden-signed-images-deny"]
    remaining = sorted(p.rsplit("/", 1)[1] for p in api.objects)
    assert remaining == ["other-team", "sigwarden-signed-images"]
    assert api.objects[f"{base}/k8ssignedimages/sigwarden-signed-images"]["status"] == {"totalViolations": 4}
    assert not [m for m, _ in api.log if m == "POST"]  # server-side apply only


def test_constraints_command_reads_the_rendered_configmap(gatekeeper_api: KubeAPIServer, tmp_path: Path) -> None:
    gatekeeper_api.api.constraint_kinds.update(K8sSignedImages="k8ssignedimages")
    docs = render({"policy": {"namespaceOverrides": {"payments": "deny"}}})
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "sigwarden-constraints"]
    (job,) = [d for d in docs if d["kind"] == "Job"]
    path = tmp_path / "constraints.yaml"
    path.write_text(configmap["data"]["constraints.yaml"])
    command = job["spec"]["template"]["spec"]["containers"][0]["command"][4:]
    command[command.index("--file") + 1] = str(path)
    assert main(["--server", gatekeeper_api.url, "--service-account-dir", str(gatekeeper_api.account_dir),
                 "constraints", *command]) == 0
    applied = {p.rsplit("/", 1)[1]: o for p, o in gatekeeper_api.api.objects.items()}
    assert set(applied) == {"sigwarden-signed-images", "sigwarden-signed-images-deny"}
    assert applied["sigwarden-signed-images-deny"]["spec"]["match"]["namespaces"] == ["payments"]
    path.write_text("kind: ConfigMap\n")
    assert main(["--server", gatekeeper_api.url, "--service-account-dir", str(gatekeeper_api.account_dir),
                 "constraints", "--file", str(path), "--release", "sigwarden"]) == 1
    assert yaml.safe_load(configmap["data"]["constraints.yaml"].split("---")[1])["kind"] == "K8sSignedImages"


def test_replicas_racing_for_the_secret_all_serve_the_winners_certificate(kube: KubeAPIServer,
                                                                          tmp_path: Path) -> None:
    gatekeeper_objects(kube.api, make_ca("gatekeeper").cert_pem)
    winner_ca = make_ca("sigwarden serving CA", days=3650)
    winner = certs.ServingMaterial(winner_ca, issue(winner_ca, HOSTS[0], HOSTS, server=True), winner_ca.cert_pem)

    def other_replica_writes_first(method: str, path: str) -> None:
        if method == "POST" and path == secret_path(NAMESPACE) and SECRET not in kube.api.objects:
            _store(kube.api, winner)

    kube.api.before = other_replica_writes_first
    material = serving(kube, tmp_path).sync()
    assert material.leaf.cert == winner.leaf.cert
    assert (tmp_path / "tls.crt").read_bytes() == winner.leaf.cert_pem
    assert [m for m, _ in kube.api.log].count("POST") == 1
    assert kube.api.objects[provider_path("sigwarden")]["spec"]["caBundle"] == winner.ca_bundle_b64

    # A renewal that loses to another replica's renewal (stale resourceVersion) uses the other one too.
    expiring = certs.ServingMaterial(winner_ca, issue(winner_ca, HOSTS[0], HOSTS, server=True, days=3),
                                     winner_ca.cert_pem)
    _store(kube.api, expiring)
    renewed_elsewhere = certs.renew(expiring, HOSTS)

    def other_replica_renews_first(method: str, path: str) -> None:
        if method == "PUT" and path == SECRET:
            _store(kube.api, renewed_elsewhere)

    kube.api.before = other_replica_renews_first
    material = serving(kube, tmp_path).sync()
    assert material.leaf.cert == renewed_elsewhere.leaf.cert


def test_what_the_keeper_writes_is_what_gatekeeper_can_call(kube: KubeAPIServer, tmp_path: Path,
                                                            pki: ProviderPKI) -> None:
    """Keeper output → a real `sigwarden serve` → a Gatekeeper-like mTLS client trusting the patched caBundle."""
    gatekeeper_objects(kube.api, pki.client_ca.cert_pem)
    args = ["--server", kube.url, "--service-account-dir", str(kube.account_dir), "certs", "--namespace", NAMESPACE,
            "--secret", "sigwarden-tls", "--dir", str(tmp_path / "tls"), "--provider", "sigwarden",
            "--host", "localhost", "--client-ca-webhook", WEBHOOK, "--client-ca-file",
            str(tmp_path / "client-ca/ca.crt"), "--once"]
    assert main(args) == 0
    port, metrics_port = free_port(), free_port()
    config = write_yaml(tmp_path / "config.yaml", {"server": {
        "listen": f"127.0.0.1:{port}", "metricsListen": f"127.0.0.1:{metrics_port}",
        "tls": {"cert": "tls/tls.crt", "key": "tls/tls.key", "clientCA": "client-ca/ca.crt"}}})
    provider = ProviderProcess(config, port, metrics_port)
    try:
        provider.wait_ready()
        bundle = tmp_path / "provider-ca-bundle.pem"
        bundle.write_bytes(base64.b64decode(kube.api.objects[provider_path("sigwarden")]["spec"]["caBundle"]))
        url = f"https://localhost:{port}/verify"
        answer = requests.post(url, json=provider_request(["not a reference!"]), cert=pki.client_pair,
                               verify=str(bundle), timeout=10)
        assert answer.status_code == 200
        assert answer.json()["response"]["items"][0]["error"].startswith("INVALID_REFERENCE")
        # TLS 1.3 may report the refused client certificate as a reset rather than an alert.
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
            requests.post(url, json=provider_request(["alpine"]), verify=str(bundle), timeout=10,
                          cert=(pki.path("stranger.crt"), pki.path("stranger.key")))
    finally:
        provider.stop()
