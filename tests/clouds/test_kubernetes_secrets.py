"""Registry credentials from docker config Secrets read through the Kubernetes API (Ratify's k8Secrets), with
exactly the RBAC the chart grants (`get` by resourceNames), against the API server stand-in and a real
docker-registry with htpasswd auth, inside a private network and mount namespace (the pod's service account
files where a pod has them)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from provider.config import Credentials, SecretRef
from provider.stores.fetch import Outbound
from provider.stores.kubesecrets import REREAD, KubernetesSecrets
from tests.clouds.common import engine_for, publish, verify, verify_once
from tests.cloudworld import in_world, pod_service_account
from tests.helpers import ProviderPKI, wait_for
from tests.kubeapi import FakeKubeAPI
from tests.registry import RegistryServer
from tests.test_helm import render

STORE_SECRETS = [{"namespace": "ci", "name": "regcred"}, {"namespace": "ops", "serviceAccount": "puller"}]


def chart_rules(store: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """The Role rules the chart renders for a store reading Secrets through the API."""
    docs = render({"config": {"stores": [store]}})
    return [(d["metadata"]["namespace"], rule) for d in docs
            if d["kind"] == "Role" and d["metadata"]["name"] == "sigwarden-registry-credentials" for rule in d["rules"]]


def docker_secret(namespace: str, name: str, host: str, user: str, password: str, legacy: bool = False) -> dict:
    entry = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    document = {host: entry} if legacy else {"auths": {host: entry}}
    key, kind = (".dockercfg", "kubernetes.io/dockercfg") if legacy else (".dockerconfigjson",
                                                                        "kubernetes.io/dockerconfigjson")
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "type": kind,
            "data": {key: base64.b64encode(json.dumps(document).encode()).decode()}}


@in_world
def test_named_secrets_and_a_service_accounts_pull_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = ProviderPKI.create(tmp_path / "pki")
    first = RegistryServer(tmp_path / "first", pki=pki, users={"ci": "from-regcred"})
    second = RegistryServer(tmp_path / "second", pki=pki, users={"ops": "from-the-service-account"})
    store = {"type": "registry", "match": [f"{first.host}/*", f"{second.host}/*"], "ca": pki.path("ca.crt"),
             "auth": {"kubernetesSecrets": STORE_SECRETS}}
    api = FakeKubeAPI(tmp_path / "apiserver", rules=chart_rules(store))
    api.put("/api/v1/namespaces/ci/secrets/regcred",
            docker_secret("ci", "regcred", first.host, "ci", "from-regcred"))
    api.put("/api/v1/namespaces/ops/serviceaccounts/puller",
            {"kind": "ServiceAccount", "metadata": {"name": "puller"}, "imagePullSecrets": [{"name": "legacy"}]})
    # The ServiceAccount's pull Secret is not named in the config: the chart does not grant it, so it is refused.
    api.put("/api/v1/namespaces/ops/secrets/legacy",
            docker_secret("ops", "legacy", second.host, "ops", "from-the-service-account", legacy=True))
    server = api.start()
    pod_service_account(api.token, (server.account_dir / "ca.crt").read_bytes())
    host, port = server.url.removeprefix("https://").split(":")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    try:
        publish(tmp_path, first, "team/app")
        item = verify_once(tmp_path, [store], f"{first.host}/team/app:v1")
        message = str(item.error)
        # The ServiceAccount is readable but its pull Secret is not (resourceNames): the one-line reason says so.
        assert message.startswith("UNAUTHORIZED: kubernetesSecrets: GET /api/v1/namespaces/ops/secrets/legacy: "
                                  "forbidden"), message
        # Named in the store too, the chart grants it, and both Secrets serve their registries.
        store["auth"]["kubernetesSecrets"] = [*STORE_SECRETS, {"namespace": "ops", "name": "legacy"}]
        api.rules = chart_rules(store)
        publish(tmp_path, second, "team/app")
        engine = engine_for(tmp_path, [store], name="config-2.yaml")
        try:
            ours, theirs = verify(engine, f"{first.host}/team/app:v1"), verify(engine, f"{second.host}/team/app:v1")
        finally:
            engine.shutdown()
        assert not ours.error and ours.value["verified"] is True, ours
        assert not theirs.error and theirs.value["verified"] is True, theirs
        assert ("GET", "/api/v1/namespaces/ci/secrets/regcred") in api.log
    finally:
        first.stop()
        second.stop()
        server.stop()


@in_world
def test_a_rotated_secret_is_read_again(tmp_path: Path) -> None:
    # The credentials in use are served while the Secret is read again in the background, every REREAD seconds.
    api = FakeKubeAPI(tmp_path / "apiserver", rules=chart_rules(
        {"type": "registry", "match": ["registry.internal/*"],
         "auth": {"kubernetesSecrets": [{"namespace": "ci", "name": "regcred"}]}}))
    api.put("/api/v1/namespaces/ci/secrets/regcred",
            docker_secret("ci", "regcred", "registry.internal", "ci", "old-password"))
    server = api.start()
    host, port = server.url.removeprefix("https://").split(":")
    clock = [1000.0]
    secrets = KubernetesSecrets((SecretRef("ci", "regcred"),), Outbound(), account_dir=server.account_dir,
                                clock=lambda: clock[0])
    environment = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in environment.items():
                patch.setenv(name, value)
            deadline = time.monotonic() + 10
            assert secrets.get("registry.internal", deadline) == Credentials("ci", "old-password")
            api.put("/api/v1/namespaces/ci/secrets/regcred",
                    docker_secret("ci", "regcred", "registry.internal", "ci", "new-password"))
            assert secrets.get("registry.internal", deadline) == Credentials("ci", "old-password")  # not yet due
            clock[0] += REREAD
            assert secrets.get("registry.internal", deadline).password in ("old-password", "new-password")
            wait_for(lambda: secrets.get("registry.internal", deadline) == Credentials("ci", "new-password"),
                     "the rotated Secret")
            assert api.log.count(("GET", "/api/v1/namespaces/ci/secrets/regcred")) == 2
            assert secrets.get("other.example", deadline) is None
    finally:
        secrets.close()
        server.stop()
